"""The admin listener (/healthz, /readyz, /metrics) reads its heads with the
relay's own request parser (gateway/http_head.c), so it refuses what the
public listener refuses, with the same statuses, under its own bounds."""
import socket

import pytest


def _raw(gw, data, timeout=5):
    """Sends data on a fresh admin connection; returns the status code."""
    with socket.create_connection(("127.0.0.1", gw.admin_port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while not got.endswith(b"\n") or b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
            if len(got) > 65536:
                break
    line = got.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


OK = b"Host: 127.0.0.1\r\n\r\n"

CASES = [
    ("healthz", b"GET /healthz HTTP/1.1\r\n" + OK, 200),
    ("head", b"HEAD /metrics HTTP/1.1\r\n" + OK, 200),
    ("unknown path", b"GET /nope HTTP/1.1\r\n" + OK, 404),
    ("post", b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n" + OK, 405),
    ("long url", b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n" + OK, 414),
    ("long header line", b"GET /metrics HTTP/1.1\r\nX-A: " + b"a" * 5000 + b"\r\n" + OK, 431),
    ("too many headers", b"GET /metrics HTTP/1.1\r\n" +
     b"".join(b"X-%d: a\r\n" % i for i in range(70)) + OK, 431),
    ("garbage", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, 400),
    ("bare LF line ends", b"GET /metrics HTTP/1.1\nHost: 127.0.0.1\n\n", 400),
    ("bare CR in a value", b"GET /metrics HTTP/1.1\r\nX-A: a\rb\r\n" + OK, 400),
    ("obs-fold", b"GET /metrics HTTP/1.1\r\nX-A: a\r\n b\r\n" + OK, 400),
    ("NUL in a value", b"GET /metrics HTTP/1.1\r\nX-A: a\x00b\r\n" + OK, 400),
    ("space before colon", b"GET /metrics HTTP/1.1\r\nX-A : a\r\n" + OK, 400),
    ("two Content-Length", b"GET /metrics HTTP/1.1\r\nContent-Length: 0\r\n"
     b"Content-Length: 1\r\n" + OK, 400),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
]


@pytest.mark.parametrize("name,data,status", CASES, ids=[c[0] for c in CASES])
def test_admin_listener_answers(gateway, name, data, status):
    assert _raw(gateway, data) == status, name
    # and it stays up for the next scraper
    assert gateway.admin_get("/healthz") == (200, "ok\n")
