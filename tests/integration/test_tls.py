"""test_tls.py -- TLS on the listener: 1.2 and 1.3 only (the refusal of 1.0 and
1.1 proven with a client that can speak them), ALPN http/1.1, SNI."""

import os
import re
import select
import socket
import ssl
import subprocess

import pytest

from helpers import client_context, openssl, tls_connect

# Debian's openssl.cnf forbids < TLS 1.2 for every program: without this the
# refusal would prove nothing about pbxgate itself.
LEGACY_ENV = {"OPENSSL_CONF": "/dev/null"}


def _s_client(port, *args):
    return openssl("s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
                   "-cipher", "DEFAULT@SECLEVEL=0", *args, env=LEGACY_ENV,
                   input=b"", timeout=20)


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_legacy_client_is_able_to_speak(flag, certs, tmp_path):
    """Control: the same client command succeeds against a server that allows
    the old protocol, so its failure against pbxgate means pbxgate refused."""
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0",
                            "-cert", certs.main[0], "-key", certs.main[1],
                            "-cipher", "DEFAULT@SECLEVEL=0", flag, "-naccept", "1"],
                           env=dict(os.environ, **LEGACY_ENV), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        # s_server prints "ACCEPT host:port" once it listens; probing the
        # port would use up its single accept.
        out = b""
        for _ in range(50):
            m = re.search(rb"ACCEPT [^\n]*:(\d+)\r?\n", out)
            if m:
                port = int(m.group(1))
                break
            ready, _, _ = select.select([srv.stdout], [], [], 10)
            assert ready, "openssl s_server did not start: %r" % out
            chunk = os.read(srv.stdout.fileno(), 4096)
            assert chunk, "openssl s_server exited: %r" % out
            out += chunk
        else:
            raise AssertionError("openssl s_server did not say ACCEPT: %r" % out)
        p = _s_client(port, flag)
        assert p.returncode == 0, p.stdout.decode()[-2000:] + p.stderr.decode()[-2000:]
    finally:
        srv.kill()
        srv.wait(5)


def _port_open(port):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_legacy_tls_refused(gateway, flag):
    p = _s_client(gateway.port, flag)
    out = p.stdout.decode(errors="replace")
    assert p.returncode != 0, out[-2000:]
    assert "Cipher is (NONE)" in out or "no peer certificate" in out or "New, (NONE)" in out


@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                          (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_modern_tls_accepted(gateway, certs, version, name):
    ctx = client_context(certs.cafile, minv=version, maxv=version)
    with tls_connect(gateway.port, ctx) as s:
        assert s.version() == name
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert s.recv(12).startswith(b"HTTP/1.1 200")


def test_alpn_http11_selected(gateway, certs):
    ctx = client_context(certs.cafile, alpn=["h2", "http/1.1"])
    with tls_connect(gateway.port, ctx) as s:
        assert s.selected_alpn_protocol() == "http/1.1"


def test_alpn_h2_only_refused_or_no_alpn(gateway, certs):
    """A client that only offers h2 must not get h2 (pbxgate speaks HTTP/1.1)."""
    ctx = client_context(certs.cafile, alpn=["h2"])
    try:
        with tls_connect(gateway.port, ctx) as s:
            assert s.selected_alpn_protocol() in (None, "http/1.1")
    except ssl.SSLError as e:
        assert "alert" in str(e).lower() or "no_application_protocol" in str(e).lower()


def _cn(port, ctx, server_name):
    with tls_connect(port, ctx, server_name=server_name) as s:
        subj = dict(x[0] for x in s.getpeercert()["subject"])
        return subj["commonName"]


def test_sni_selects_certificate(gateway, ctx):
    assert _cn(gateway.port, ctx, "localhost") == "localhost"
    assert _cn(gateway.port, ctx, "alt.test") == "alt.test"


def test_sni_unknown_name_gets_default_cert(gateway, certs):
    ctx = client_context(certs.cafile)
    ctx.check_hostname = False
    assert _cn(gateway.port, ctx, "unknown.test") == "localhost"


def test_weak_cipher_refused(gateway):
    p = openssl("s_client", "-connect", "127.0.0.1:%d" % gateway.port, "-tls1_2",
                "-cipher", "AES128-SHA:DES-CBC3-SHA:RC4-SHA@SECLEVEL=0",
                env=LEGACY_ENV, input=b"", timeout=20)
    assert p.returncode != 0, p.stdout.decode(errors="replace")[-2000:]



def _tls_reuse(pbxgate_bin, port, *args):
    tool = os.path.join(os.path.dirname(pbxgate_bin), "tests", "tools", "tls_reuse")
    assert os.access(tool, os.X_OK), "%s not built (meson -Dtests=true)" % tool
    p = subprocess.run([tool, *args, str(port)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    m = re.match(r"resumed (\d+) of (\d+) ", p.stdout)
    assert m, p.stdout
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_resumption_with_one_ssl_object(gateway, pbxgate_bin, version):
    """Issue 17 item 4: a client that keeps one SSL object across connections
    (as wrk does with Connection: close: SSL_shutdown, SSL_clear, connect
    again) resumes every connection after the first. With TLS 1.3 pbxgate
    sent no ticket after a resumed handshake, and every other connection was
    a full handshake (10 of 20 resumed, 19 of 20 with nginx)."""
    assert _tls_reuse(pbxgate_bin, gateway.port, "-v", version, "-n", "20") == (19, 20)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_fresh_client_never_resumes(gateway, pbxgate_bin, version):
    """Control for the test above: without a session to offer, no handshake
    counts as resumed (the tool's count is real)."""
    assert _tls_reuse(pbxgate_bin, gateway.port, "-f", "-v", version, "-n", "5") == (0, 5)
