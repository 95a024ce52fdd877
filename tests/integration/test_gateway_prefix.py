"""test_gateway_prefix.py -- what is a gateway page (issue 12 item 6): the
normalised path /_pbxgate or /_pbxgate/..., in any case and any encoding
the normaliser folds, is answered by the gateway and never forwarded; the
documented `allow path ^/_pbxgate/` is caseless, so a case variant must not
reach the PBX without a session. Each variant is checked at the recording
upstream with a marker request sent afterwards."""

import pytest

from auth_helpers import AuthGateway
from conftest import _finish_gateway, upstream_marker
from helpers import Client, raw_exchange, request_bytes, ws_handshake_bytes


@pytest.fixture(scope="module")
def authgw(pbxgate_bin, workdir, certs, upstream):
    gw = AuthGateway(pbxgate_bin, workdir, [certs.main], upstream.port, name="gw-prefix")
    gw.start()
    yield gw
    _finish_gateway(gw)


def never_forwarded(upstream, plain, ctx):
    """Both gateways share the upstream; the marker goes through the one
    without a login policy."""
    before = upstream_marker(upstream, plain, ctx)
    leaked = [e.get("target") for e in before if "pbxgate" in e.get("target", "").lower()
              or "%5f" in e.get("target", "").lower()]
    assert not leaked, "the upstream saw gateway paths: %r" % leaked


# (path as sent, status with a login configured, status without one)
VARIANTS = [
    ("/_PBXGATE/login", 200, 404),
    ("/_PbXgAtE/login", 200, 404),
    ("/_Pbxgate/login?rd=/", 200, 404),
    ("/_PBXGATE/", 404, 404),
    ("/_PBXGATE", 404, 404),
    ("/_pbxgate", 404, 404),
    ("/_pbxgate/no-such-page", 404, 404),
    ("/_PBXGATE/no-such-page", 404, 404),
    ("/%5Fpbxgate/login", 200, 404),
    ("/%5fPBXGATE/login", 200, 404),
    ("/_pbxgat%45/login", 200, 404),
    ("/./_pbxgate/login", 200, 404),
    ("/x/../_PBXGATE/login", 200, 404),
    ("/_pbxgate;x=1/login", 200, 404),
    ("/_pbxgate//login", 200, 404),
    ("//_pbxgate/login", 400, 400),
]


@pytest.mark.parametrize("path,with_login,without", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variant_answered_by_gateway(authgw, gateway, upstream, ctx, path, with_login, without):
    for gw, want in ((authgw, with_login), (gateway, without)):
        r, _ = raw_exchange(gw.port, ctx, request_bytes("GET", path))
        assert r is not None and r.status == want, (gw.conf, r)
        assert r.get("server") != "recording-upstream/1"
        never_forwarded(upstream, gateway, ctx)


@pytest.mark.parametrize("path", ["/_PBXGATE/ws", "/_pbxgate/ws", "/%5Fpbxgate/ws",
                                  "/_PbXgAtE", "/x/../_PBXGATE/ws"])
def test_websocket_upgrade_to_gateway_path(authgw, gateway, upstream, ctx, path):
    for gw in (authgw, gateway):
        req, _ = ws_handshake_bytes(path)
        with Client(gw.port, ctx) as c:
            c.send(req)
            r = c.reader.response()
        assert r.status == 400, r
        never_forwarded(upstream, gateway, ctx)


def test_session_less_case_variant_post(authgw, gateway, upstream, ctx):
    # a POST to a case variant is a login form post, not an upstream call
    body = b"user=x&password=y"
    r, _ = raw_exchange(authgw.port, ctx, request_bytes(
        "POST", "/_PBXGATE/no-such-page", [("Content-Type", "application/x-www-form-urlencoded")],
        body))
    assert r is not None and r.status == 404, r
    never_forwarded(upstream, gateway, ctx)
