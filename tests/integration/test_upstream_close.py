"""test_upstream_close.py -- an answer whose body ends when the upstream
closes (no Content-Length, no chunking) reaches the client whole, also when
it is larger than what the gateway buffers towards a slower client (the
upstream's FIN then arrives while part of the body still waits unparsed)."""

import hashlib
import os
import socket
import threading

import pytest

from helpers import tls_connect

SIZES = [10, 300 * 1024, 3 * 1024 * 1024 + 5]


class CloseServer:
    """Answers every connection with one close-delimited body, then closes."""

    def __init__(self, data):
        self.data = data
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                b = conn.recv(65536)
                if not b:
                    return
                buf += b
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Connection: close\r\n\r\n" + self.data)

    def close(self):
        self.sock.close()


def get_all(port, ctx, version):
    s = tls_connect(port, ctx)
    s.settimeout(30)
    s.sendall(b"GET /download/file.bin %s\r\nHost: localhost\r\n\r\n" % version)
    buf = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        buf += b
    s.close()
    return bytes(buf)


def dechunk(body):
    out, i = bytearray(), 0
    while True:
        j = body.index(b"\r\n", i)
        n = int(body[i:j], 16)
        if n == 0:
            assert body[j:] == b"\r\n\r\n"
            return bytes(out)
        out += body[j + 2:j + 2 + n]
        assert body[j + 2 + n:j + 4 + n] == b"\r\n"
        i = j + 4 + n


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
def test_close_delimited_body_arrives_whole(make_gateway, ctx, size, version):
    data = os.urandom(size)
    srv = CloseServer(data)
    try:
        gw = make_gateway(srv.port)
        raw = get_all(gw.port, ctx, version)
    finally:
        srv.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head[:100]
    if version == b"HTTP/1.1":
        assert b"\r\nTransfer-Encoding: chunked" in head
        body = dechunk(body)
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), \
        "got %d of %d bytes" % (len(body), size)
