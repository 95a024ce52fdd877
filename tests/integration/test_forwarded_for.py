"""test_forwarded_for.py -- X-Forwarded-For from a trusted proxy (issue 12
item 22): the client is the right-most address that is not itself a trusted
proxy; an element the walk must read that is not a bare IP address refuses
the request (400) instead of making the client the proxy's own address.
The test client connects from 127.0.0.1, which is the trusted proxy here."""

import pytest

from conftest import upstream_marker
from helpers import Client, raw_exchange, request_bytes

TRUSTED = "127.0.0.1"


@pytest.fixture(scope="module")
def lb(pbxgate_bin, workdir, certs, upstream):
    from conftest import _finish_gateway
    from helpers import Gateway
    gw = Gateway(pbxgate_bin, workdir, [certs.main], upstream.port, name="gw-xff",
                 extra=["trusted_proxy %s/32" % TRUSTED])
    gw.start()
    yield gw
    _finish_gateway(gw)


def head(xff_lines):
    return (b"GET /headers?xff HTTP/1.1\r\nHost: localhost\r\n" +
            b"".join(b"X-Forwarded-For: " + v + b"\r\n" for v in xff_lines) + b"\r\n")


CHAIN_65 = ", ".join(["203.0.113.9"] + [TRUSTED] * 65).encode()
CHAIN_64 = ", ".join(["203.0.113.9"] + [TRUSTED] * 63).encode()

# (id, X-Forwarded-For field lines) -> 400, nothing forwarded
BAD = [
    ("garbage", [b"not-an-address"]),
    ("empty_value", [b""]),
    ("empty_rightmost", [b"203.0.113.9,"]),
    ("empty_rightmost_spaces", [b"203.0.113.9, ,"]),
    ("empty_behind_trusted", [b"203.0.113.9, , " + TRUSTED.encode()]),
    ("port_v4", [b"203.0.113.9:4711"]),
    ("bracketed_v6", [b"[2001:db8::1]"]),
    ("bracketed_v6_port", [b"[2001:db8::1]:4711"]),
    ("zone_v6", [b"fe80::1%eth0"]),
    ("short_v4", [b"203.0.113"]),
    ("octal_v4", [b"0203.0.113.9"]),
    ("hostname", [b"client.example"]),
    ("unknown_token", [b"unknown"]),
    ("obfuscated_v4", [b"203.0.113.9 x"]),
    ("garbage_behind_trusted", [b"x, " + TRUSTED.encode()]),
    ("too_many_trusted", [CHAIN_65]),
    ("two_fields", [b"203.0.113.9", b"198.51.100.7"]),
]


@pytest.mark.parametrize("xff", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_unreadable_chain_refused(lb, upstream, ctx, xff):
    r, closed = raw_exchange(lb.port, ctx, head(xff))
    assert r is not None and r.status == 400, r
    assert closed
    before = upstream_marker(upstream, lb, ctx)
    assert not [e for e in before if e.get("target", "").endswith("?xff")]


def test_obs_fold_refused(lb, upstream, ctx):
    r, _ = raw_exchange(lb.port, ctx, b"GET /headers?xff HTTP/1.1\r\nHost: localhost\r\n"
                        b"X-Forwarded-For: 203.0.113.9\r\n 198.51.100.7\r\n\r\n")
    assert r is not None and r.status == 400, r
    before = upstream_marker(upstream, lb, ctx)
    assert not [e for e in before if e.get("target", "").endswith("?xff")]


# (id, X-Forwarded-For, the client the upstream is told of)
GOOD = [
    ("v4", b"203.0.113.9", "203.0.113.9"),
    ("v6", b"2001:db8::1", "2001:db8::1"),
    # the upstream is told the address judged, in the one spelling logs use
    ("v4_mapped", b"::ffff:203.0.113.9", "203.0.113.9"),
    ("v6_long_form", b"2001:0DB8:0:0:0:0:0:1", "2001:db8::1"),
    ("spaces", b" 203.0.113.9 ", "203.0.113.9"),
    ("garbage_left_of_client", b"junk, 198.51.100.7", "198.51.100.7"),
    ("behind_trusted", b"203.0.113.9, " + TRUSTED.encode(), "203.0.113.9"),
    ("chain_of_64", CHAIN_64, "203.0.113.9"),
    ("all_trusted", TRUSTED.encode(), TRUSTED),
]


@pytest.mark.parametrize("xff,client", [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_readable_chain_names_client(lb, ctx, xff, client):
    with Client(lb.port, ctx) as c:
        c.send(head([xff]))
        r = c.reader.response()
    assert r.status == 200, r
    h = {k.lower(): v for k, v in r.json()["headers"]}
    assert h["x-real-ip"] == client


def test_no_field_is_the_proxy_itself(lb, ctx):
    with Client(lb.port, ctx) as c:
        r = c.request("GET", "/headers")
    assert r.status == 200
    h = {k.lower(): v for k, v in r.json()["headers"]}
    assert h["x-real-ip"] == TRUSTED
