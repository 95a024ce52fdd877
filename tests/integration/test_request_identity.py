"""test_request_identity.py -- what the upstream is told about a request's
URL, method, client and host (issue 12 item 4a): the rewrite, method-override
and client-address headers a client sends are dropped (unless kept by
`forward_header`), the forwarding headers carry only what the gateway saw,
and Host must be a name the gateway serves, agree with the TLS SNI, and
reaches the upstream in one canonical spelling (else 421, nothing sent)."""

import socket
import ssl
import subprocess

import pytest

from conftest import upstream_marker
from helpers import Client, Reader, raw_exchange, request_bytes

EVIL = "evil-7f3a.example"

# Each is dropped from a client's request; the value must not reach the
# upstream under any name.
DROPPED = [
    "X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Envoy-Original-Path",
    "X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method", "X-Original-Method",
    "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Scheme", "X-Forwarded-Ssl",
    "X-Forwarded-Uri", "X-Forwarded", "Forwarded-For",
    "True-Client-IP", "X-Client-IP", "X-Cluster-Client-IP", "CF-Connecting-IP",
    "CF-Connecting-IPv6", "Fastly-Client-IP", "X-Originating-IP", "X-Remote-IP",
    "X-Remote-Addr", "Client-IP", "X-ProxyUser-Ip", "WL-Proxy-Client-IP",
    "Proxy-Client-IP", "X-Original-Host", "X-Host", "X-HTTP-Host-Override",
    "Front-End-Https", "X-Url-Scheme", "X-Original-Forwarded-For",
]
# Set by the gateway itself: the client's value is replaced.
OWN = ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
       "X-Real-IP", "Forwarded"]


def seen(gw, ctx, headers, host="localhost", server_name="localhost", path="/headers"):
    with Client(gw.port, ctx, server_name=server_name) as c:
        c.send(request_bytes("GET", path, headers, host=host))
        r = c.reader.response()
    assert r.status == 200, r
    return r.json()["headers"]


@pytest.mark.parametrize("name", DROPPED + OWN)
def test_client_header_never_reaches_upstream(gateway, ctx, name):
    got = seen(gateway, ctx, [(name, EVIL)])
    assert not [(k, v) for k, v in got if EVIL in v], got
    assert not [k for k, _ in got if k.lower() == name.lower() and name not in OWN], got


def test_method_override_does_not_change_method(gateway, ctx):
    with Client(gateway.port, ctx) as c:
        c.send(request_bytes("GET", "/headers", [("X-HTTP-Method-Override", "DELETE")]))
        r = c.reader.response()
    assert r.json()["method"] == "GET"
    assert "x-http-method-override" not in [k.lower() for k, _ in r.json()["headers"]]


def test_forward_header_keeps_one(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, extra=["forward_header X-Forwarded-Prefix"])
    got = {k.lower(): v for k, v in seen(gw, ctx, [("X-Forwarded-Prefix", "/pbx"),
                                                   ("X-Original-URL", "/admin")])}
    assert got["x-forwarded-prefix"] == "/pbx"
    assert "x-original-url" not in got


@pytest.mark.parametrize("name", ["X-Forwarded-For", "X-Real-IP", "Forwarded", "Host",
                                  "Accept", "X-Forwarded-Proto"])
def test_forward_header_refuses_others(pbxgate_bin, workdir, certs, upstream, name):
    from helpers import Gateway
    gw = Gateway(pbxgate_bin, workdir, [certs.main], upstream.port, name="gw-fh",
                 extra=["forward_header %s" % name])
    gw.write_config()
    p = subprocess.run([pbxgate_bin, "check", "-c", gw.conf], capture_output=True)
    out = (p.stdout + p.stderr).decode()
    n = gw.config_text().splitlines().index("forward_header %s" % name) + 1
    assert p.returncode == 1, out
    assert "%s:%d:16: error: forward_header" % (gw.conf, n) in out, out


# ---- Host --------------------------------------------------------------

def exchange(gw, ctx, host, server_name="localhost", extra=b""):
    raw = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname=server_name)
    try:
        s.sendall(b"GET /headers?host HTTP/1.1\r\n" +
                  (b"Host: " + host.encode() + b"\r\n" if host is not None else b"") +
                  extra + b"Connection: close\r\n\r\n")
        return Reader(s).response()
    finally:
        s.close()


def nothing_forwarded(upstream, gw, ctx):
    before = upstream_marker(upstream, gw, ctx)
    assert not [e for e in before if e.get("target", "").endswith("?host")], before


# (id, Host, SNI) -> 421: a name the gateway does not serve, or one that
# disagrees with the name the TLS handshake was made for
MISDIRECTED = [
    ("foreign_name", EVIL, "localhost"),
    ("foreign_name_port", EVIL + ":443", "localhost"),
    ("other_cert_name_other_sni", "alt.test", "localhost"),
    ("sni_other_cert_host_ours", "localhost", "alt.test"),
    ("subdomain", "x.localhost", "localhost"),
    ("foreign_ip", "192.0.2.1", None),
    ("loopback_not_ours", "127.0.0.2", None),
    ("foreign_v6", "[2001:db8::1]", None),
]


@pytest.mark.parametrize("host,sni", [m[1:] for m in MISDIRECTED], ids=[m[0] for m in MISDIRECTED])
def test_misdirected_host(gateway, upstream, nosni_ctx, ctx, host, sni):
    r = exchange(gateway, nosni_ctx if sni is None else ctx, host, sni)
    assert r.status == 421, r
    nothing_forwarded(upstream, gateway, ctx)


def test_absolute_form_with_foreign_host(gateway, upstream, ctx):
    r, _ = raw_exchange(gateway.port, ctx, b"GET https://%s/headers?host HTTP/1.1\r\n"
                        b"Host: %s\r\n\r\n" % (EVIL.encode(), EVIL.encode()))
    assert r is not None and r.status == 421, r
    nothing_forwarded(upstream, gateway, ctx)


@pytest.fixture(scope="module")
def nosni_ctx(certs):
    c = ssl.create_default_context(cafile=certs.cafile)
    c.check_hostname = False
    return c


def upstream_host(r):
    assert r.status == 200, r
    h = {k.lower(): v for k, v in r.json()["headers"]}
    return h["host"], h.get("x-forwarded-host"), h["forwarded"]


# (id, Host, SNI, the Host the upstream sees)
CANONICAL = [
    ("plain", "localhost", "localhost", "localhost"),
    ("upper_case", "LocalHost", "localhost", "localhost"),
    ("final_dot", "localhost.", "localhost", "localhost"),
    ("port_kept", "localhost:8443", "localhost", "localhost:8443"),
    ("sni_upper", "localhost", "LOCALHOST", "localhost"),
    ("second_cert", "alt.test", "alt.test", "alt.test"),
    ("local_ip_no_sni", "127.0.0.1", None, "127.0.0.1"),
    ("local_ip_port_no_sni", "127.0.0.1:9", None, "127.0.0.1:9"),
]


@pytest.mark.parametrize("host,sni,want", [c[1:] for c in CANONICAL], ids=[c[0] for c in CANONICAL])
def test_canonical_host(gateway, ctx, nosni_ctx, host, sni, want):
    got, xfh, fwd = upstream_host(exchange(gateway, nosni_ctx if sni is None else ctx, host, sni))
    assert got == want and xfh == want
    assert ';host="%s"' % want in fwd


def test_http10_without_host(gateway, ctx):
    raw = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(b"GET /headers HTTP/1.0\r\n\r\n")
        r = Reader(s).response()
    finally:
        s.close()
    assert r.status == 200, r
    h = {k.lower(): v for k, v in r.json()["headers"]}
    assert h["host"] == "127.0.0.1:%d" % gateway.upstream_port


@pytest.fixture(scope="module")
def named(pbxgate_bin, workdir, certs, upstream):
    from conftest import _finish_gateway
    from helpers import Gateway
    gw = Gateway(pbxgate_bin, workdir, [certs.main, certs.alt], upstream.port, name="gw-named",
                 extra=["server_name pbx.example.com Alt.Test"])
    gw.start()
    yield gw
    _finish_gateway(gw)


def test_server_name_listed(named, ctx, nosni_ctx):
    assert upstream_host(exchange(named, ctx, "ALT.test", "alt.test"))[0] == "alt.test"
    assert upstream_host(exchange(named, nosni_ctx, "pbx.example.com.:443", None))[0] == \
        "pbx.example.com:443"
    assert upstream_host(exchange(named, nosni_ctx, "127.0.0.1", None))[0] == "127.0.0.1"


def test_server_name_unlisted_cert_name(named, upstream, ctx):
    # localhost is on a certificate, but server_name lists the names served
    r = exchange(named, ctx, "localhost", "localhost")
    assert r.status == 421, r


def test_server_name_http10_without_host(named, ctx):
    raw = socket.create_connection(("127.0.0.1", named.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(b"GET /headers HTTP/1.0\r\n\r\n")
        r = Reader(s).response()
    finally:
        s.close()
    assert upstream_host(r)[0] == "pbx.example.com"
