"""test_upstream_tls.py -- an https:// upstream: its certificate is verified
against upstream_ca and must name the upstream host; only an explicit
`upstream_verify off` skips that (and the gateway warns)."""

import socket
import ssl
import threading

import pytest

from helpers import Client, Gateway, free_port

BODY = b"from the tls upstream\n"


class TlsUpstream:
    """A minimal HTTPS server answering every request with BODY."""

    def __init__(self, cert, key):
        self.port = free_port()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.handshakes = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.handle, args=(raw,), daemon=True).start()

    def handle(self, raw):
        raw.settimeout(5)
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        self.handshakes += 1
        try:
            buf = b""
            for _ in range(1000):
                d = s.recv(65536)
                if not d:
                    return
                buf += d
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                              % (len(BODY), BODY))
        except (ssl.SSLError, OSError):
            pass
        finally:
            s.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


class TlsGateway(Gateway):
    def __init__(self, *a, upstream_lines=(), **kw):
        self.upstream_lines = list(upstream_lines)
        super().__init__(*a, **kw)

    def config_text(self):
        lines = super().config_text().splitlines()
        out = []
        for line in lines:
            if line.startswith("upstream "):
                out += self.upstream_lines
            else:
                out.append(line)
        return "\n".join(out) + "\n"


@pytest.fixture
def tls_gateway(pbxgate_bin, workdir, certs):
    made = []

    def make(up, lines):
        gw = TlsGateway(pbxgate_bin, workdir, [certs.main], up.port,
                        name="tlsgw-%d" % len(made), upstream_lines=lines)
        made.append(gw)
        return gw.start()

    yield make
    for gw in made:
        if gw.proc and gw.proc.poll() is None:
            gw.proc.terminate()
            gw.proc.wait(10)


@pytest.fixture
def upstream_main(certs):
    up = TlsUpstream(*certs.main)
    yield up
    up.close()


@pytest.fixture
def upstream_alt(certs):
    up = TlsUpstream(*certs.alt)
    yield up
    up.close()


def get(gw, ctx):
    with Client(gw.port, ctx) as c:
        return c.request("GET", "/")


def test_verified_upstream_answers(tls_gateway, upstream_main, certs, ctx):
    gw = tls_gateway(upstream_main, ["upstream https://127.0.0.1:%d" % upstream_main.port,
                                     "upstream_ca %s" % certs.main[0]])
    r = get(gw, ctx)
    assert r.status == 200 and r.body == BODY


def test_upstream_signed_by_another_ca_is_502(tls_gateway, upstream_main, certs, ctx):
    gw = tls_gateway(upstream_main, ["upstream https://127.0.0.1:%d" % upstream_main.port,
                                     "upstream_ca %s" % certs.alt[0]])
    assert get(gw, ctx).status == 502
    assert "certificate verification failed" in gw.stderr()


def test_upstream_naming_another_host_is_502(tls_gateway, upstream_alt, certs, ctx):
    # trusted certificate, but for alt.test, not for 127.0.0.1
    gw = tls_gateway(upstream_alt, ["upstream https://127.0.0.1:%d" % upstream_alt.port,
                                    "upstream_ca %s" % certs.alt[0]])
    assert get(gw, ctx).status == 502


def test_verify_off_connects_and_warns(tls_gateway, upstream_alt, certs, ctx):
    gw = tls_gateway(upstream_alt, ["upstream https://127.0.0.1:%d" % upstream_alt.port,
                                    "upstream_verify off"])
    r = get(gw, ctx)
    assert r.status == 200 and r.body == BODY
    assert "upstream_verify off" in gw.stderr()


def test_upstream_connection_reused(tls_gateway, upstream_main, certs, ctx):
    gw = tls_gateway(upstream_main, ["upstream https://127.0.0.1:%d" % upstream_main.port,
                                     "upstream_ca %s" % certs.main[0]])
    with Client(gw.port, ctx) as c:
        for _ in range(5):
            assert c.request("GET", "/").status == 200
    assert upstream_main.handshakes == 1
