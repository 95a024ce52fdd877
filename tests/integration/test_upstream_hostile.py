"""test_upstream_hostile.py -- malformed responses from the upstream: the
gateway must never pass one on as a well-formed response (a desync towards
the client is as bad as one towards the upstream). A broken head gives 502;
a body that breaks after a valid head has gone out ends the connection."""

import time
import urllib.parse

import pytest

from conftest import upstream_marker
from helpers import Client, ConnectionClosed

BAD_HEADS = ["cl-te", "dup-cl", "bad-cl", "te-gzip", "status", "not-http", "nul-header",
             "bare-lf", "header-split"]


@pytest.mark.parametrize("kind", BAD_HEADS)
def test_bad_response_head_is_502(gateway, ctx, kind):
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/bad/" + kind)
        assert r.status == 502, r
        assert not r.get_all("set-cookie")
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/").status == 200


def test_obs_fold_in_response_rejected_or_unfolded(gateway, ctx):
    # RFC 9112 5.2: a proxy rejects obs-fold or replaces it with SP.
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/bad/obs-fold")
        assert r.status == 502 or (r.status == 200 and r.get_all("x-a") == ["a b"]), r


@pytest.mark.parametrize("kind", ["chunk-bad", "cl-short"])
def test_broken_response_body_ends_connection(gateway, ctx, kind):
    with Client(gateway.port, ctx) as c:
        try:
            r = c.request("GET", "/bad/" + kind)
        except (ConnectionClosed, ValueError, AssertionError):
            return  # the client sees a truncated response: correct
        # A complete response may only be an error page the gateway made
        # before any of the upstream's head went out.
        assert r.status == 502, r


def test_extra_bytes_after_response_not_delivered(gateway, ctx):
    """The upstream sends a second, unsolicited response after the first: it
    must not be handed to the client's next pipelined request."""
    with Client(gateway.port, ctx) as c:
        c.send(b"GET /bad/extra HTTP/1.1\r\nHost: localhost\r\n\r\n"
               b"GET /headers?after-extra HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = c.reader.response()
        assert first.status in (200, 502)
        if first.status == 200:
            assert first.body == b"hello"
        try:
            second = c.reader.response()
        except ConnectionClosed:
            return
        assert second.body != b"smuggled", "unsolicited upstream bytes delivered as a response"
        assert second.status == 200 and second.json()["target"] == "/headers?after-extra"


# ---------------------------------------------------------------- issue 12: response side
# The recording upstream's /hostile/KIND modes (upstream.py) write raw bytes and
# then keep reading the connection, so whatever the gateway sends next is recorded.

FORGED_BODY = b"<h1>forged login</h1>\n\n"
NEXT = "GET /headers?next=%s HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _pipelined(c, method, kind, tag):
    """Sends METHOD /hostile/KIND and a GET /headers?next=TAG in one write;
    returns the first answer (read as an answer to METHOD)."""
    c.send(("%s /hostile/%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (method, kind)
            + NEXT % tag).encode())
    return c.reader.response(method)


def _assert_next_is_real(c, tag):
    r = c.reader.response()
    assert r.get("x-forged") is None and FORGED_BODY not in r.body, \
        "the upstream's extra bytes were delivered as the next answer: %r" % r
    assert r.status == 200 and r.json()["target"] == "/headers?next=" + tag, r


@pytest.mark.parametrize("method,kind,status", [
    ("GET", "204-cl", 204), ("GET", "204-chunked", 204), ("GET", "204-trailing", 204),
    ("GET", "304-cl", 304), ("GET", "304-chunked", 304), ("GET", "304-trailing", 304),
    ("HEAD", "head-cl", 200), ("HEAD", "head-chunked", 200), ("HEAD", "head-trailing", 200),
])
def test_bodiless_answer_bytes_never_reach_the_client(gateway, ctx, method, kind, status):
    """204, 304 and answers to HEAD have no body whatever their framing says
    (RFC 9112 6.3): the bytes after the head are dropped with the upstream
    connection, and the next request on the client connection gets its own
    answer."""
    with Client(gateway.port, ctx) as c:
        r = _pipelined(c, method, kind, kind)
        assert r.status == status and r.body == b"", r
        assert r.get("transfer-encoding") is None
        if status == 204:
            assert r.get("content-length") is None, r
        _assert_next_is_real(c, kind)


def test_forged_answer_to_login_page_not_delivered(gateway, ctx):
    """The attack as reported: a 204 carrying a whole response as its
    'body', followed by the browser's GET /_pbxgate/login on the same
    connection. The login request gets the gateway's own answer."""
    with Client(gateway.port, ctx) as c:
        c.send(b"GET /hostile/204-cl HTTP/1.1\r\nHost: localhost\r\n\r\n"
               b"GET /_pbxgate/login HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert c.reader.response().status == 204
        r = c.reader.response()
        assert r.get("x-forged") is None and FORGED_BODY not in r.body, r


@pytest.mark.parametrize("kind,status", [("304-cl-nobody", 304), ("204-cl-nobody", 204)])
def test_bodiless_answer_with_length_does_not_stall(gateway, ctx, kind, status):
    """A 304 with the representation's Content-Length (and no body) ends at
    its head: the next request is answered at once, not after
    upstream_timeout (2 s here)."""
    with Client(gateway.port, ctx) as c:
        t0 = time.monotonic()
        r = _pipelined(c, "GET", kind, kind)
        assert r.status == status and r.body == b"", r
        _assert_next_is_real(c, kind)
        assert time.monotonic() - t0 < 1.5, "keep-alive connection stalled"
    if status == 304:
        assert r.get("content-length") == "1234" and r.get("etag") == '"v1"', r


@pytest.mark.parametrize("kind", ["100-cl", "100-chunked", "103-cl", "103-chunked",
                                  "100-flood"])
def test_interim_answer_with_body_or_flood_is_502(gateway, upstream, ctx, kind):
    """1xx answers are dropped; one that announces a body leaves which head
    is the real answer in doubt, and more than 8 of them are a stall:
    both are 502 and close the client connection."""
    with Client(gateway.port, ctx) as c:
        r = _pipelined(c, "GET", kind, kind)
        assert r.status == 502, r
        assert r.get("x-forged") is None and FORGED_BODY not in r.body
        assert r.get("connection") == "close"
        assert c.reader.at_eof(5)
    assert not [e for e in upstream_marker(upstream, gateway, ctx)
                if e.get("target") == "/headers?next=" + kind]


@pytest.mark.parametrize("kind", ["100-trailing", "103-trailing", "103-then-200"])
def test_interim_answer_dropped_real_answer_passed(gateway, ctx, kind):
    """A conformant 1xx is not passed on; the final answer after it is,
    and the connection stays in step."""
    with Client(gateway.port, ctx) as c:
        r = _pipelined(c, "GET", kind, kind)
        assert r.status == 200, r
        if kind == "103-then-200":
            assert r.body == b"final\n" and r.get("link") is None, r
        else:  # the "trailing" bytes are FORGED itself: a well-formed final answer
            assert r.body == FORGED_BODY
        _assert_next_is_real(c, kind)


WS_REQ = ("GET /hostile/%s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\n%sSec-WebSocket-Version: 13\r\n\r\n")
WS_KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
TUNNELLED = (b"GET /smuggled-through-tunnel HTTP/1.1\r\nHost: localhost\r\n"
             b"Host: evil.test\r\n\r\n")


@pytest.mark.parametrize("kind,key", [
    ("101-full", ""),                     # no key in the request
    ("101-full", "Sec-WebSocket-Key: short==\r\n"),
    ("101-full", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n"),  # not canonical
    ("101-full", WS_KEY + WS_KEY),        # two keys
    ("101-no-upgrade", WS_KEY), ("101-no-connection", WS_KEY),
    ("101-wrong-accept", WS_KEY), ("101-no-accept", WS_KEY), ("101-two-accept", WS_KEY),
    ("101-h2c", WS_KEY), ("101-bare", WS_KEY),
], ids=["no-key", "short-key", "noncanonical-key", "two-keys", "no-upgrade",
        "no-connection", "wrong-accept", "no-accept", "two-accept", "h2c", "bare"])
def test_101_without_websocket_handshake_is_502(gateway, upstream, ctx, kind, key):
    """Only a complete WebSocket handshake opens a tunnel (RFC 6455 4): any
    other 101 is a 502, the upstream connection is closed, and a request
    sent after it never reaches the upstream."""
    with Client(gateway.port, ctx) as c:
        c.send((WS_REQ % (kind, key)).encode() + TUNNELLED)
        r = c.reader.response()
        assert r.status == 502, r
        assert c.reader.at_eof(5)
    seen = [e.get("target") for e in upstream_marker(upstream, gateway, ctx)]
    assert "/smuggled-through-tunnel" not in seen


def test_101_to_request_without_upgrade_is_502(gateway, upstream, ctx):
    with Client(gateway.port, ctx) as c:
        c.send(b"GET /hostile/101-full HTTP/1.1\r\nHost: localhost\r\n\r\n" + TUNNELLED)
        assert c.reader.response().status == 502
        assert c.reader.at_eof(5)
    seen = [e.get("target") for e in upstream_marker(upstream, gateway, ctx)]
    assert "/smuggled-through-tunnel" not in seen


def test_101_with_valid_handshake_still_tunnels(gateway, ctx):
    """The check lets the real thing through (RFC 6455 1.3 example key)."""
    with Client(gateway.port, ctx) as c:
        c.send((WS_REQ % ("101-full", WS_KEY)).encode())
        r = c.reader.response()
        assert r.status == 101, r
        assert r.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


REASON_BYTES = [0x00, 0x01, 0x07, 0x08, 0x09, 0x0B, 0x0C, 0x1B, 0x1F, 0x7F, 0x80, 0x9B,
                0xC3, 0xFF]


@pytest.mark.parametrize("byte", REASON_BYTES, ids=["%02x" % b for b in REASON_BYTES])
def test_reason_phrase_is_the_gateways_own(gateway, ctx, byte):
    """The upstream's reason phrase never reaches the client, whatever byte
    it holds (NUL, CTLs, ESC, DEL, HTAB, obs-text): the gateway writes the
    phrase for the code."""
    with Client(gateway.port, ctx) as c:
        c.send(b"GET /hostile/reason-%02x HTTP/1.1\r\nHost: localhost\r\n\r\n" % byte)
        line = c.reader.readline()
        assert line == b"HTTP/1.1 200 OK", line
        c.reader.buf = line + b"\r\n" + c.reader.buf
        r = c.reader.response()
        assert r.body == b"hello\n"


OWN_COOKIES = [
    "__Host-pbxgate=evil; Path=/; Secure; HttpOnly",
    "__Host-pbxgate-csrf=evil; Path=/; Secure",
    "__Host-pbxgate-mfa=evil; Path=/; Secure",
    "__host-pbxgate=evil; Path=/; Secure",
    "__HOST-PBXGATE=evil; Path=/; Secure",
    "__Host-PbxGate-anything=evil",
    "__Secure-pbxgate=evil; Secure",
    "__secure-PBXGATE-csrf=evil; Secure",
    "=__Host-pbxgate=evil; Path=/; Secure",
    "= __Host-pbxgate=evil",
    "__Host-pbxgate",
    "a=1, __Host-pbxgate=evil",
]


@pytest.mark.parametrize("value", OWN_COOKIES)
def test_upstream_cannot_set_the_gateways_cookies(gateway, ctx, value):
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/hostile/cookie?v=" + urllib.parse.quote(value, safe=""))
        assert r.status == 200 and r.body == b"ok\n", r
        assert r.get_all("set-cookie") == ["theme=dark"], r


@pytest.mark.parametrize("value", ["pbxgate=1", "__Host-session=1; Path=/; Secure",
                                   "x_pbxgate=1", "__Host-pbx=1; Path=/; Secure"])
def test_upstream_cookies_of_other_names_pass(gateway, ctx, value):
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/hostile/cookie?v=" + urllib.parse.quote(value, safe=""))
        assert r.get_all("set-cookie") == ["theme=dark", value], r
