"""test_proxy_protocol.py -- PROXY protocol v2 from a trusted load balancer:
the real client address is believed only from trusted_proxy addresses, and
a trusted peer that sends no header is refused."""

import socket
import ssl
import struct

import pytest

from helpers import Reader, request_bytes

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_tcp4(src, dst="192.0.2.1", sport=40000, dport=443):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def tls_after(port, ctx, preface, source="127.0.0.1"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5,
                                   source_address=(source, 0))
    raw.sendall(preface)
    return ctx.wrap_socket(raw, server_hostname="localhost")


@pytest.fixture
def lb_gateway(make_gateway, upstream):
    return make_gateway(upstream.port, extra=["trusted_proxy 127.0.0.1/32",
                                              "proxy_protocol on"])


def seen_headers(s):
    s.sendall(request_bytes("GET", "/headers"))
    r = Reader(s).response()
    assert r.status == 200, r
    return {k.lower(): v for k, v in r.json()["headers"]}


def test_trusted_peer_header_gives_client_address(lb_gateway, ctx):
    s = tls_after(lb_gateway.port, ctx, v2_tcp4("203.0.113.9"))
    try:
        h = seen_headers(s)
    finally:
        s.close()
    assert h["x-forwarded-for"] == "203.0.113.9"
    assert h["x-real-ip"] == "203.0.113.9"
    assert h["forwarded"].startswith("for=203.0.113.9;")


def test_trusted_peer_without_header_is_closed(lb_gateway, ctx):
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        s = tls_after(lb_gateway.port, ctx, b"")
        s.sendall(request_bytes("GET", "/headers"))
        Reader(s).response()


def test_untrusted_peer_header_is_not_believed(lb_gateway, ctx):
    # 127.0.0.2 is not a trusted proxy: its PROXY header is just bytes
    # before the TLS handshake, which therefore fails.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        s = tls_after(lb_gateway.port, ctx, v2_tcp4("203.0.113.9"), source="127.0.0.2")
        seen_headers(s)


def test_untrusted_peer_plain_tls_works(lb_gateway, ctx):
    s = tls_after(lb_gateway.port, ctx, b"", source="127.0.0.2")
    try:
        h = seen_headers(s)
    finally:
        s.close()
    assert h["x-forwarded-for"] == "127.0.0.2"
