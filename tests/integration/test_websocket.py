"""test_websocket.py -- WebSocket upgrades through pbxgate: tunnelled only
when the upstream answers 101; echo of text, binary, 1 MiB and close."""

import os

from conftest import upstream_marker
from helpers import Client, ConnectionClosed, ws_frame, ws_handshake_bytes, ws_read


def _open_ws(gateway, ctx):
    c = Client(gateway.port, ctx)
    req, want = ws_handshake_bytes("/ws")
    c.send(req)
    r = c.reader.response()
    assert r.status == 101, r
    assert r.get("sec-websocket-accept") == want
    assert (r.get("upgrade") or "").lower() == "websocket"
    return c


def test_ws_echo_text_binary_large_and_close(gateway, ctx):
    c = _open_ws(gateway, ctx)
    try:
        c.send(ws_frame(0x1, "héllo".encode()))
        assert ws_read(c.reader) == (0x1, "héllo".encode())
        blob = os.urandom(300)
        c.send(ws_frame(0x2, blob))
        assert ws_read(c.reader) == (0x2, blob)
        big = os.urandom(1024 * 1024)
        c.send(ws_frame(0x2, big))
        assert ws_read(c.reader) == (0x2, big)
        c.send(ws_frame(0x9, b"ping"))
        assert ws_read(c.reader) == (0xA, b"ping")
        c.send(ws_frame(0x8, b"\x03\xe8"))
        assert ws_read(c.reader) == (0x8, b"\x03\xe8")
        assert c.reader.at_eof(5)
    finally:
        c.close()


def test_ws_fragmented_message(gateway, ctx):
    c = _open_ws(gateway, ctx)
    try:
        c.send(ws_frame(0x1, b"abc", fin=False) + ws_frame(0x0, b"def"))
        assert ws_read(c.reader) == (0x1, b"abcdef")
    finally:
        c.close()


def test_ws_upgrade_headers_reach_upstream(gateway, upstream, ctx):
    c = _open_ws(gateway, ctx)
    c.close()
    last = [e for e in upstream.requests() if e["target"] == "/ws"][-1]
    names = {n.lower(): v for n, v in last["headers"]}
    assert names.get("upgrade", "").lower() == "websocket"
    assert "upgrade" in names.get("connection", "").lower()
    assert "sec-websocket-key" in names


def test_upgrade_answered_200_is_not_tunnelled(gateway, upstream, ctx):
    with Client(gateway.port, ctx) as c:
        req, _ = ws_handshake_bytes("/ws-refuse")
        c.send(req)
        r = c.reader.response()
        assert r.status == 200
        assert r.body == b"no upgrade\n"
        before = len(upstream.entries())
        # Bytes that are a WebSocket frame, not HTTP: the gateway must parse
        # them as HTTP (and refuse them), never pass them through raw.
        c.send(ws_frame(0x1, b"should not be tunnelled"))
        try:
            r2 = c.reader.response()
            assert r2.status == 400, r2
        except (ConnectionClosed, AssertionError) as e:
            if not isinstance(e, ConnectionClosed) and "bad status line" not in str(e):
                raise
            assert "bad status line" not in str(e), "raw bytes came back: tunnelled"
    forwarded = upstream_marker(upstream, gateway, ctx)[before:]
    assert forwarded == [], forwarded


def test_ws_to_missing_endpoint_not_tunnelled(gateway, ctx):
    with Client(gateway.port, ctx) as c:
        req, _ = ws_handshake_bytes("/nows")
        c.send(req)
        r = c.reader.response()
        assert r.status == 200  # the upstream's catch-all, no 101
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            r2 = c.reader.response()
            assert r2.status == 200 and r2.body == b"hello\n"
        except ConnectionClosed:
            pass  # closing after a refused upgrade is acceptable


def test_ws_tunnel_survives_reload(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port)
    c = _open_ws(gw, ctx)
    try:
        c.send(ws_frame(0x1, b"before"))
        assert ws_read(c.reader) == (0x1, b"before")
        gw.reload("ok")
        c.send(ws_frame(0x1, b"after"))
        assert ws_read(c.reader) == (0x1, b"after")
    finally:
        c.close()
