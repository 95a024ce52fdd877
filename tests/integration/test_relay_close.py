"""test_relay_close.py -- how the gateway ends a connection after its last
answer (gateway/relay_reply.c): at once, after close_notify, when the client
said that request was its last, the request was read to its end and nothing
else arrived; lingering (close_notify, FIN, then reading and discarding
for a moment) when more input may still come, so that closing with unread
input does not become an RST that destroys the answer.

Whether the gateway still holds the connection is read from its own gauge,
pbxgate_connections_active: after a quick close it drops to 0 while the
client stays silent; a lingering connection stays open until the client
closes (or the linger time, 2 s, runs out)."""

import socket
import ssl

import pytest

from helpers import IO_TIMEOUT, Reader, pattern, request_bytes, sha256, wait_until

MiB = 1024 * 1024


def _active(gw):
    return gw.metric("pbxgate_connections_active")


@pytest.fixture
def gw(gateway):
    """The module's gateway with no client connection left open."""
    wait_until(lambda: _active(gateway) == 0, timeout=10,
               what="no open client connection before the test")
    return gateway


def _connect(gw, ctx):
    """A TLS connection that tells a close_notify (b"" from recv) from a
    FIN without one (SSLEOFError)."""
    raw = socket.create_connection(("127.0.0.1", gw.port), timeout=IO_TIMEOUT)
    return ctx.wrap_socket(raw, server_hostname="localhost",
                           suppress_ragged_eofs=False)


def _closed_cleanly(s):
    """The next recv returns the close_notify's end of stream."""
    return s.recv(1) == b""


def test_connection_close_answer_closes_at_once(gw, ctx):
    """Connection: close, the request read whole and nothing after it: the
    whole answer, then close_notify, and the gateway's side is gone while
    the client is still connected and silent (no linger)."""
    s = _connect(gw, ctx)
    try:
        s.sendall(request_bytes("GET", "/bytes/100000", [("Connection", "close")]))
        r = Reader(s).response()
        assert r.status == 200
        assert r.body == pattern(100000)
        assert _closed_cleanly(s)
        # the linger would hold it 2 s, until the client's close
        wait_until(lambda: _active(gw) == 0, timeout=1.0,
                   what="the gateway to close its side at once")
    finally:
        s.close()


def test_keepalive_request_stays_open(gw, ctx):
    """Without Connection: close nothing is closed (the control for the
    gauge: an open connection counts 1)."""
    s = _connect(gw, ctx)
    try:
        s.sendall(request_bytes("GET", "/bytes/10"))
        assert Reader(s).response().body == pattern(10)
        assert _active(gw) == 1
    finally:
        s.close()


def _send_all(s, data, piece=65536):
    """Sends data; the exception a reset gave, or None when all went."""
    try:
        for i in range(0, len(data), piece):
            s.sendall(data[i:i + piece])
    except OSError as e:
        return e
    return None


def test_unread_body_413_lingers_and_client_reads_answer(gw, ctx):
    """A body over max_body_size (refused at its head) larger than the
    socket buffers (4 MiB send + 128 KiB receive here): the client sends
    all of it and only then reads, like most clients. Closing at once would
    reset its sending half-way and it would never read the 413."""
    body = b"b" * (8 * MiB)
    s = _connect(gw, ctx)
    try:
        head = request_bytes("POST", "/sha256", [("Connection", "close"),
                                                 ("Content-Length", "200000000")])
        s.sendall(head)
        err = _send_all(s, body)
        assert err is None, "the gateway reset the upload: %r" % err
        r = Reader(s).response()
        assert r.status == 413
        assert len(r.body) == int(r.get("content-length"))
        assert b"413" in r.body
        # (whether it still lingers now depends on how long the upload took
        # against the 2 s linger: under valgrind it may be over)
    finally:
        s.close()
    wait_until(lambda: _active(gw) == 0, timeout=5,
               what="the lingering connection to end with the client's close")


def test_pipelined_after_close_answer_intact_and_lingers(gw, ctx):
    """A request after the Connection: close one, in the same write: the
    first answer arrives whole, the second request is not answered, and the
    gateway lingers (a quick close with input pending would reset later
    bytes of the answer still in flight)."""
    n = 3 * MiB
    s = _connect(gw, ctx)
    try:
        s.sendall(request_bytes("GET", "/bytes/%d" % n, [("Connection", "close")]) +
                  request_bytes("GET", "/bytes/10"))
        rd = Reader(s)
        r = rd.response()
        assert r.status == 200
        assert sha256(r.body) == sha256(pattern(n))
        assert rd.at_eof(timeout=IO_TIMEOUT)
        assert _active(gw) == 1
    finally:
        s.close()


def test_head_error_before_request_read_lingers(gw, ctx):
    """An error answer at the head of a request whose body is still to
    come (Content-Length over the limit, nothing of the body sent yet): the
    gateway lingers, even with Connection: close."""
    s = _connect(gw, ctx)
    try:
        s.sendall(request_bytes("POST", "/sha256", [("Connection", "close"),
                                                    ("Content-Length", "200000000")]))
        rd = Reader(s)
        r = rd.response()
        assert r.status == 413
        assert rd.at_eof(timeout=IO_TIMEOUT)
        assert _active(gw) == 1
    finally:
        s.close()


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_http10_or_close_without_keepalive_closes_at_once(gw, ctx, version):
    """HTTP/1.0 without keep-alive is the client's last request as much as
    Connection: close is."""
    s = _connect(gw, ctx)
    try:
        extra = b"" if version == "1.0" else b"Connection: close\r\n"
        s.sendall(b"GET /bytes/10 HTTP/%s\r\nHost: localhost\r\n%s\r\n"
                  % (version.encode(), extra))
        r = Reader(s).response()
        assert r.status == 200
        assert r.body == pattern(10)
        wait_until(lambda: _active(gw) == 0, timeout=1.0,
                   what="the gateway to close its side at once")
    finally:
        s.close()


def test_close_decided_by_gateway_lingers(make_gateway, upstream, ctx):
    """max_requests_per_connection ends the connection, not the client:
    its next request may already be on the way, so the gateway lingers."""
    gw = make_gateway(upstream.port, overrides={"max_requests_per_connection": "1"})
    s = _connect(gw, ctx)
    try:
        s.sendall(request_bytes("GET", "/bytes/10"))
        rd = Reader(s)
        r = rd.response()
        assert r.body == pattern(10)
        assert (r.get("connection") or "").lower() == "close"
        assert rd.at_eof(timeout=IO_TIMEOUT)
        assert _active(gw) == 1
    finally:
        s.close()
