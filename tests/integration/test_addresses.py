"""test_addresses.py -- one address vocabulary for the whole configuration:
every address list (trusted_proxy, smtp_allow, policy rules and list files)
refuses the same bad CIDR with the same message at its FILE:LINE:COL, a
host-bits CIDR included (`10.1.2.3/8` is an error everywhere, naming the
network probably meant), as `pbxgate check` reports it."""

import json
import os
import socket
import struct
import subprocess

import pytest

from auth_helpers import Browser, form_with, make_auth_gateway  # noqa: F401
from helpers import Client, Reader, wait_until

CHECK_DEADLINE = 10  # seconds; the real run takes milliseconds


def _check(pbxgate_bin, d, certs, line, policy=None, listfile=None):
    """`pbxgate check` of a config whose line 5 is `line`; returns
    (exit status, stderr lines)."""
    cert, key = certs.main
    conf = os.path.join(d, "addr.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write("listen 127.0.0.1:1\ntls_cert %s\ntls_key %s\n"
                "upstream http://127.0.0.1:2\n%s\n" % (cert, key, line))
    if policy is not None:
        with open(os.path.join(d, "addr.policy"), "w", encoding="utf-8") as f:
            f.write(policy)
    if listfile is not None:
        with open(os.path.join(d, "addr.list"), "w", encoding="utf-8") as f:
            f.write(listfile)
    r = subprocess.run([pbxgate_bin, "check", "-c", conf], capture_output=True,
                       text=True, timeout=CHECK_DEADLINE, check=False)
    return r.returncode, [l for l in r.stderr.splitlines() if l.strip()]


# (bad CIDR, the message every list gives for it)
BAD = [
    ("10.1.2.3/8", "'10.1.2.3/8' has host bits set: write 10.0.0.0/8 for the "
     "network, or 10.1.2.3 alone for the one address"),
    ("2001:db8::1/32", "'2001:db8::1/32' has host bits set: write "
     "2001:db8::/32 for the network, or 2001:db8::1 alone for the one address"),
    ("10.0.0.0/33", "bad prefix length in '10.0.0.0/33' (IPv4 takes /0 to "
     "/32, no leading zeros)"),
    ("10.0.0.0/08", "bad prefix length in '10.0.0.0/08' (IPv4 takes /0 to "
     "/32, no leading zeros)"),
    ("2001:db8::/129", "bad prefix length in '2001:db8::/129' (IPv6 takes /0 "
     "to /128, no leading zeros)"),
    ("010.0.0.1", "bad address '010.0.0.1' (expected an IPv4 or IPv6 "
     "address, optionally with /LEN)"),
    ("fe80::1%eth0", "bad address 'fe80::1%eth0' (a zone such as %eth0 names "
     "no network: drop it)"),
    ("example.com", "bad address 'example.com' (expected an IPv4 or IPv6 "
     "address, optionally with /LEN)"),
]


@pytest.mark.parametrize("keyword", ["trusted_proxy", "smtp_allow"])
@pytest.mark.parametrize("cidr,msg", BAD, ids=[b[0] for b in BAD])
def test_config_keyword_same_error(pbxgate_bin, certs, workdir, keyword, cidr,
                                   msg):
    d = os.path.join(workdir, "kw-%s-%s" % (keyword, cidr.replace("/", "_")))
    os.makedirs(d, exist_ok=True)
    rc, lines = _check(pbxgate_bin, d, certs, "%s %s" % (keyword, cidr))
    conf = os.path.join(d, "addr.conf")
    col = len(keyword) + 2
    assert rc != 0
    assert "%s:5:%d: error: %s: %s" % (conf, col, keyword, msg) in lines, lines


@pytest.mark.parametrize("cidr,msg", BAD, ids=[b[0] for b in BAD])
def test_policy_rule_and_list_file_same_error(pbxgate_bin, certs, workdir,
                                              cidr, msg):
    d = os.path.join(workdir, "pol-%s" % cidr.replace("/", "_"))
    os.makedirs(d, exist_ok=True)
    rc, lines = _check(pbxgate_bin, d, certs, "policy addr.policy",
                       policy="deny from %s\nlist l file:addr.list\n"
                       "deny from @l\nallow any\n" % cidr,
                       listfile="192.0.2.0/24\n%s\n" % cidr)
    assert rc != 0
    assert "%s:1:11: error: %s" % (os.path.join(d, "addr.policy"), msg) in lines, lines
    assert "%s:2:1: error: %s" % (os.path.join(d, "addr.list"), msg) in lines, lines


@pytest.mark.parametrize("keyword", ["trusted_proxy", "smtp_allow"])
@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "::ffff:10.0.0.0/104",
                                  "2001:db8::/32", "192.0.2.7", "::/0"])
def test_config_keyword_accepts(pbxgate_bin, certs, workdir, keyword, cidr):
    d = os.path.join(workdir, "ok-%s-%s" % (keyword, cidr.replace("/", "_")))
    os.makedirs(d, exist_ok=True)
    rc, lines = _check(pbxgate_bin, d, certs, "%s %s" % (keyword, cidr))
    assert (rc, lines) == (0, ["%s: configuration is valid"
                               % os.path.join(d, "addr.conf")])


# ---- one peer text in every log ------------------------------------------

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def _v2_tcp6(src, dst="2001:db8::1", sport=40000, dport=443):
    body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport))
    return SIG + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body


class _ProxiedBrowser(Browser):
    """A browser behind a trusted load balancer that names the client in a
    PROXY v2 header on every connection."""

    def __init__(self, port, ctx, client):
        super().__init__(port, ctx)
        self.preface = _v2_tcp6(client)

    def request(self, method, path, headers=(), body=None, source=None):
        hs = list(headers)
        if self.jar:
            hs.append(("Cookie", self.cookie_header()))
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        raw.sendall(self.preface)
        c = Client.__new__(Client)
        c.sock = self.ctx.wrap_socket(raw, server_hostname="localhost")
        c.reader = Reader(c.sock)
        with c:
            r = c.request(method, path, headers=hs, body=body)
        self.take_cookies(r)
        return r


def _access(gw):
    with open(gw.access_log, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def _failed_login(b, hs):
    r = b.get("/_pbxgate/login", headers=hs)
    _, fields = form_with(r.body, "password")
    fields.update(username="ghost", password="not the password")
    return b.post_form("/_pbxgate/login", fields, headers=hs)


@pytest.mark.parametrize("how", ["proxy_v2", "x_forwarded_for"])
def test_mapped_client_same_text_in_access_log_audit_and_upstream(
        make_auth_gateway, upstream, ctx, how):
    """An IPv4 client seen as ::ffff:192.0.2.7 (a dual-stack load balancer)
    is 192.0.2.7 in the access log, the auth audit and X-Real-IP alike."""
    gw = make_auth_gateway(upstream.port, auth_extra=[
        "trusted_proxy 127.0.0.1/32"] + (["proxy_protocol on"] if how == "proxy_v2" else []))
    if how == "proxy_v2":
        b, hs = _ProxiedBrowser(gw.port, ctx, "::ffff:192.0.2.7"), []
    else:
        b, hs = Browser(gw.port, ctx), [("X-Forwarded-For", "::ffff:192.0.2.7")]
    assert _failed_login(b, hs).status == 401
    events = wait_until(lambda: [e for e in gw.audit()[1] if e["event.action"] == "login_failure"],
                        what="login_failure audited")
    assert [e["client.ip"] for e in events] == ["192.0.2.7"], events
    lines = wait_until(lambda: [l for l in _access(gw) if l["url.path"] == "/_pbxgate/login"
                                and l["http.request.method"] == "POST"], what="access log line")
    assert lines[0]["client.ip"] == "192.0.2.7", lines
    if how == "proxy_v2":
        assert lines[0]["source.ip"] == "192.0.2.7", lines
