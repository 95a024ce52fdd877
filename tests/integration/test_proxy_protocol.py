"""test_proxy_protocol.py -- PROXY protocol v2 from a trusted load balancer:
the real client address is believed only from trusted_proxy addresses, and
a trusted peer that sends no header is refused; a partial header is closed
at tls_handshake_timeout without spinning a worker (issue 12 item 5)."""

import os
import socket
import ssl
import struct
import time

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


# ---- issue 12 item 5: a partial header must not spin a worker ------------

HANDSHAKE = 0.5     # tls_handshake_timeout below, in seconds
FULL = v2_tcp4("203.0.113.9")           # 16 + 12 bytes


@pytest.fixture(scope="module")
def pp_gateway(pbxgate_bin, workdir, certs, upstream):
    from conftest import _finish_gateway
    from helpers import Gateway
    gw = Gateway(pbxgate_bin, workdir, [certs.main], upstream.port, name="gw-pp",
                 extra=["trusted_proxy 127.0.0.1/32", "proxy_protocol on",
                        "tls_handshake_timeout %dms" % (HANDSHAKE * 1000)])
    gw.start()
    yield gw
    _finish_gateway(gw)


def closed_after(sock, limit):
    """Seconds until the gateway closes `sock` (EOF or reset), at most limit."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


@pytest.mark.parametrize("n", list(range(1, 16)) + list(range(16, len(FULL))))
def test_partial_header_closed_at_handshake_timeout(pp_gateway, n):
    s = socket.create_connection(("127.0.0.1", pp_gateway.port), timeout=5)
    try:
        s.sendall(FULL[:n])
        took = closed_after(s, HANDSHAKE + 4)
    finally:
        s.close()
    assert took is not None, "a %d-byte PROXY header was held past the timeout" % n
    assert HANDSHAKE * 0.8 <= took <= HANDSHAKE + 2, took


def worker_cpu_seconds(pid):
    """User + system CPU time of every thread of pid, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / tick


def cpu_over(pid, secs):
    a = worker_cpu_seconds(pid)
    t0 = time.monotonic()
    time.sleep(secs)        # the measured interval itself, not a wait
    return (worker_cpu_seconds(pid) - a) / (time.monotonic() - t0)


@pytest.mark.parametrize("then_close", [False, True], ids=["silent", "closed"])
def test_partial_header_does_not_spin(make_gateway, upstream, ctx, then_close):
    gw = make_gateway(upstream.port, extra=["trusted_proxy 127.0.0.1/32",
                                            "proxy_protocol on",
                                            "tls_handshake_timeout 30s"])
    pid = gw.child_pid()    # the workers' process
    socks = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(FULL[:15])
            socks.append(s)
        if then_close:
            for s in socks:
                s.close()
        share = cpu_over(pid, 1.5)
        # the gateway still serves (not wedged in one connection)
        s = tls_after(gw.port, ctx, v2_tcp4("203.0.113.10"))
        try:
            h = seen_headers(s)
        finally:
            s.close()
    finally:
        for s in socks:
            s.close()
    assert share < 0.2, "gateway used %.0f %% CPU with stalled PROXY headers" % (share * 100)
    assert h["x-real-ip"] == "203.0.113.10"


def test_header_in_single_bytes_is_read(pp_gateway, ctx):
    raw = socket.create_connection(("127.0.0.1", pp_gateway.port), timeout=5)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hdr = v2_tcp4("198.51.100.4")
    for i in range(len(hdr)):
        raw.sendall(hdr[i:i + 1])
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        h = seen_headers(s)
    finally:
        s.close()
    assert h["x-real-ip"] == "198.51.100.4"


def test_local_command_keeps_tcp_peer(pp_gateway, ctx):
    local = SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    s = tls_after(pp_gateway.port, ctx, local)
    try:
        h = seen_headers(s)
    finally:
        s.close()
    assert h["x-real-ip"] == "127.0.0.1"
