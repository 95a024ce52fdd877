"""test_request_id.py -- request ids (issue 15 item 2): every request gets a
fresh 128-bit id unless a trusted proxy sent a valid X-Request-Id; the id
reaches the upstream (exactly one header), comes back to the client on every
answer, is on the gateway's own pages ("Reference: ...") and in the access
line and audit events of that request. The gateway's own answers log the
bytes the client received."""

import json
import re

import pytest

from auth_helpers import make_auth_gateway  # noqa: F401 - a fixture
from helpers import Client, free_port, request_bytes, wait_until, ws_handshake_bytes
from lock_helpers import make_lockdown  # noqa: F401 - a fixture

FRESH = re.compile(r"^[0-9a-f]{32}$")


def upstream_ids(upstream, tag):
    """The X-Request-Id values of the upstream request whose target ends in tag."""
    def find():
        es = [e for e in upstream.requests() if e.get("target", "").endswith(tag)]
        return es[-1] if es else None
    e = wait_until(find, timeout=10, what="upstream request " + tag)
    return [v for n, v in e["headers"] if n.lower() == "x-request-id"]


def access_line(gw, rid):
    def find():
        with open(gw.access_log, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("http.request.id") == rid:
                    return rec
        return None
    return wait_until(find, timeout=10, what="access line of request " + rid)


def raw_until_eof(port, ctx, data):
    """Every byte the gateway sends on one connection until it closes."""
    with Client(port, ctx) as c:
        c.send(data)
        return c.reader.read_to_eof()


def head_of(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:])}


# ------------------------------------------------------------ untrusted

def test_spoofed_id_from_untrusted_client_replaced(gateway, upstream, ctx):
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/headers?spoof1", headers=[("X-Request-Id", "chosen-by-client")])
    assert r.status == 200, r
    sent = upstream_ids(upstream, "?spoof1")
    assert len(sent) == 1 and FRESH.match(sent[0]), sent
    assert r.get_all("x-request-id") == sent
    assert access_line(gateway, sent[0])["http.response.status_code"] == 200


def test_two_requests_on_one_connection_get_different_ids(gateway, upstream, ctx):
    with Client(gateway.port, ctx) as c:
        a = c.request("GET", "/headers?ka1")
        b = c.request("GET", "/headers?ka2")
    ids = [a.get("x-request-id"), b.get("x-request-id")]
    assert all(FRESH.match(i or "") for i in ids) and ids[0] != ids[1], ids
    assert upstream_ids(upstream, "?ka1") == ids[:1]
    assert upstream_ids(upstream, "?ka2") == ids[1:]


def test_upstream_own_request_id_replaced_in_answer(gateway, ctx):
    """An id the PBX sets in its answer never reaches the client: one id,
    the gateway's."""
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/headers?x", headers=[("X-Request-Id", "zzz")])
    assert len(r.get_all("x-request-id")) == 1 and FRESH.match(r.get("x-request-id"))


def test_websocket_upgrade_carries_id(gateway, upstream, ctx):
    c = Client(gateway.port, ctx)
    try:
        req, _ = ws_handshake_bytes("/ws")
        c.send(req.replace(b"\r\n\r\n", b"\r\nX-Request-Id: spoofed-ws\r\n\r\n", 1))
        r = c.reader.response()
        assert r.status == 101, r
    finally:
        c.close()
    sent = upstream_ids(upstream, "/ws")
    assert len(sent) == 1 and FRESH.match(sent[0]), sent
    assert r.get("x-request-id") == sent[0]


# ------------------------------------------------------------ trusted proxy

@pytest.fixture(scope="module")
def proxied(pbxgate_bin, workdir, certs, upstream):
    from conftest import _finish_gateway
    from helpers import Gateway
    gw = Gateway(pbxgate_bin, workdir, [certs.main], upstream.port, name="gw-rid",
                 extra=["trusted_proxy 127.0.0.1/32"])
    gw.start()
    yield gw
    _finish_gateway(gw)


KEPT = [("short", "a"), ("charset", "Az09._-"), ("uuid", "0b6e1f7c-3f2a-4c1e-9d7a-2b9d3c1e5f60"),
        ("max_len", "x" * 64)]


@pytest.mark.parametrize("rid", [k[1] for k in KEPT], ids=[k[0] for k in KEPT])
def test_trusted_proxy_id_kept(proxied, upstream, ctx, rid):
    tag = "?kept-%d-%s" % (len(rid), rid[:3])
    with Client(proxied.port, ctx) as c:
        r = c.request("GET", "/headers" + tag, headers=[("X-Request-Id", rid)])
    assert r.status == 200, r
    assert upstream_ids(upstream, tag) == [rid]
    assert r.get_all("x-request-id") == [rid]
    assert access_line(proxied, rid)["http.response.status_code"] == 200


# (id, the X-Request-Id field lines a trusted proxy sends) -> a fresh id
REPLACED = [
    ("empty", [b""]),
    ("too_long", [b"x" * 65]),
    ("space", [b"a b"]),
    ("html", [b"<script>"]),
    ("quote", [b'a"b']),
    ("slash", [b"a/b"]),
    ("colon", [b"a:b"]),
    ("utf8", ["r\u00e9f".encode()]),
    ("invalid_utf8", [b"ref\xff"]),
    ("two_fields", [b"one", b"two"]),
]


@pytest.mark.parametrize("lines", [r[1] for r in REPLACED], ids=[r[0] for r in REPLACED])
def test_trusted_proxy_invalid_id_replaced(proxied, upstream, ctx, lines):
    tag = "?bad-%s" % re.sub(r"[^a-z0-9]", "", repr(lines))[:40]
    raw = (b"GET /headers" + tag.encode() + b" HTTP/1.1\r\nHost: localhost\r\n" +
           b"".join(b"X-Request-Id: " + v + b"\r\n" for v in lines) + b"\r\n")
    with Client(proxied.port, ctx) as c:
        c.send(raw)
        r = c.reader.response()
    assert r.status == 200, r
    sent = upstream_ids(upstream, tag)
    assert len(sent) == 1 and FRESH.match(sent[0]), sent
    assert r.get_all("x-request-id") == sent


# ------------------------------------------------------------ the gateway's own answers

DENY_POLICY = "deny path ^/secret(/|$)\nallow path ^/\n"


def test_403_page_audit_and_access_line_share_the_id(make_lockdown, upstream, ctx):
    lk = make_lockdown(upstream.port, DENY_POLICY)
    raw = raw_until_eof(lk.gw.port, ctx, request_bytes(
        "GET", "/secret/x", headers=[("X-Request-Id", "spoofed")]))
    assert raw.startswith(b"HTTP/1.1 403 "), raw[:80]
    rid = head_of(raw)["x-request-id"]
    assert FRESH.match(rid), rid
    assert ("Reference: %s" % rid).encode() in raw
    assert ("参照番号: %s" % rid).encode() in raw
    audit = lk.wait_audit(lambda a: a.get("http.request.id") == rid, "audit line of the 403")
    assert audit["event.action"] == "deny"
    acc = access_line(lk.gw, rid)
    assert acc["http.response.status_code"] == 403
    # the bytes the client received, head and page
    assert acc["http.response.bytes"] == len(raw)


def test_502_page_has_reference(make_gateway, ctx):
    gw = make_gateway(free_port())   # nothing listens there
    raw = raw_until_eof(gw.port, ctx, request_bytes("GET", "/"))
    assert raw.startswith(b"HTTP/1.1 502 "), raw[:80]
    rid = head_of(raw)["x-request-id"]
    assert FRESH.match(rid) and ("Reference: %s" % rid).encode() in raw
    acc = access_line(gw, rid)
    assert acc["http.response.status_code"] == 502 and acc["http.response.bytes"] == len(raw)


def test_504_page_has_reference(gateway, ctx):
    raw = raw_until_eof(gateway.port, ctx, request_bytes("GET", "/slow/4000"))
    assert raw.startswith(b"HTTP/1.1 504 "), raw[:80]
    rid = head_of(raw)["x-request-id"]
    assert FRESH.match(rid) and ("Reference: %s" % rid).encode() in raw
    assert access_line(gateway, rid)["http.response.status_code"] == 504


# ------------------------------------------------------------ login pages

@pytest.fixture
def agw(make_auth_gateway, upstream):
    return make_auth_gateway(upstream.port)


@pytest.mark.parametrize("lang,label", [("en", "Reference"), ("ja", "参照番号")])
def test_login_page_reference_and_bytes(agw, ctx, lang, label):
    raw = raw_until_eof(agw.port, ctx, request_bytes(
        "GET", "/_pbxgate/login", headers=[("Accept-Language", lang), ("Connection", "close")]))
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:80]
    rid = head_of(raw)["x-request-id"]
    assert FRESH.match(rid), rid
    assert ('<p class="ref">%s: %s</p>' % (label, rid)).encode() in raw
    acc = access_line(agw, rid)
    assert acc["http.response.status_code"] == 200 and acc["http.response.bytes"] == len(raw)


def test_login_redirect_carries_id_and_bytes(agw, ctx):
    raw = raw_until_eof(agw.port, ctx, request_bytes(
        "GET", "/app", headers=[("Connection", "close")]))
    assert raw.startswith(b"HTTP/1.1 302 "), raw[:80]
    rid = head_of(raw)["x-request-id"]
    acc = access_line(agw, rid)
    assert acc["http.response.status_code"] == 302 and acc["http.response.bytes"] == len(raw)


def test_login_failure_audit_has_request_id(agw, ctx):
    from auth_helpers import Browser, form_with
    b = Browser(agw.port, ctx)
    r = b.get("/_pbxgate/login")
    _, fields = form_with(r.body, "password")
    fields.update(username="nobody", password="wrong password 1")
    r = b.post_form("/_pbxgate/login", fields)
    rid = r.get("x-request-id")
    assert FRESH.match(rid or ""), r
    audit_path = [l.split(" ", 1)[1] for l in agw.config_text().splitlines()
                  if l.startswith("audit_log ")][0]

    def find():
        with open(audit_path, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("http.request.id") == rid:
                    return rec
        return None
    rec = wait_until(find, timeout=10, what="audit event of the failed login")
    assert rec["event.action"] == "login_failure" and rec["user.name"] == "nobody"
