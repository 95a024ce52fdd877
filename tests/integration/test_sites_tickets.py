"""test_sites_tickets.py -- session tickets per site (issue 17 sites): a
session made on one site resumes on that site (of this gateway, or of
another sharing tls_ticket_key_file) and never on another site, where the
client gets a full handshake and is served. TLS 1.2 and 1.3 each."""

import os
import socket
import ssl

import pytest

from test_sites_run import (make_sites, site_block, site_certs,  # noqa: F401
                            write)

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
IDS = ["tls1.2", "tls1.3"]


def _ctx(certs, version):
    ctx = ssl.create_default_context()
    for n in ("a.example", "b.example"):
        ctx.load_verify_locations(cafile=certs[n][0])
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def _visit(port, ctx, sni, session=None):
    """One request to site `sni`; returns (session, resumed). Reads to the
    end, so that a TLS 1.3 ticket (sent after the handshake) is in."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                  % sni.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        return s.session, s.session_reused
    finally:
        s.close()


def _secret(path):
    with open(path, "wb") as f:
        f.write(os.urandom(48))
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def sites_gw(make_sites, make_upstream, site_certs):  # noqa: F811
    """make(top=()) -> a running gateway serving a.example and b.example."""
    d, certs = site_certs
    up = make_upstream()
    pol = write(os.path.join(d, "tickets.policy"), "default allow\n")

    def make(top=()):
        return make_sites([site_block("a", certs, up.port, pol),
                           site_block("b", certs, up.port, pol)], top=top)
    return make


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
def test_session_resumes_on_its_site_only(sites_gw, site_certs, version):
    gw = sites_gw()
    ctx = _ctx(site_certs[1], version)
    sess, reused = _visit(gw.port, ctx, "a.example")
    assert not reused and sess is not None
    _, reused = _visit(gw.port, ctx, "a.example", sess)
    assert reused, "site a's session did not resume on a"
    sess, _ = _visit(gw.port, ctx, "a.example")
    _, reused = _visit(gw.port, ctx, "b.example", sess)
    assert not reused, "site a's session resumed on b"
    # and the other way round, b's own session resumes on b
    sess_b, _ = _visit(gw.port, ctx, "b.example")
    _, reused = _visit(gw.port, ctx, "b.example", sess_b)
    assert reused


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
def test_shared_key_file_per_site_across_gateways(sites_gw, site_certs,
                                                  tmp_path, version):
    key = _secret(tmp_path / "tickets.key")
    top = ["tls_ticket_key_file %s" % key]
    g1, g2 = sites_gw(top), sites_gw(top)
    ctx = _ctx(site_certs[1], version)
    sess, _ = _visit(g1.port, ctx, "a.example")
    _, reused = _visit(g2.port, ctx, "a.example", sess)
    assert reused, "site a's session of gateway 1 did not resume on 2's a"
    sess, _ = _visit(g1.port, ctx, "a.example")
    _, reused = _visit(g2.port, ctx, "b.example", sess)
    assert not reused, "site a's session of gateway 1 resumed on 2's b"


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
def test_site_session_survives_reload(sites_gw, site_certs, version):
    """Random keys are the process's, kept across SIGHUP; the new snapshot's
    site views derive the same per-site keys from them."""
    gw = sites_gw()
    ctx = _ctx(site_certs[1], version)
    sess, _ = _visit(gw.port, ctx, "a.example")
    gw.reload()
    _, reused = _visit(gw.port, ctx, "a.example", sess)
    assert reused, "site a's session did not resume after a reload"
    sess, _ = _visit(gw.port, ctx, "a.example")
    _, reused = _visit(gw.port, ctx, "b.example", sess)
    assert not reused
