"""test_upstream_faults.py -- 502 when the upstream is down, 200 again once it
is back, 504 when it is slower than upstream_timeout."""

import time

from helpers import Client, wait_until


def test_upstream_down_then_back(make_gateway, make_upstream, ctx):
    up = make_upstream()
    gw = make_gateway(up.port)
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/").status == 200
    up.stop()
    with Client(gw.port, ctx) as c:
        r = c.request("GET", "/")
        assert r.status == 502, r
    up.start()

    def ok():
        with Client(gw.port, ctx) as c:
            return c.request("GET", "/").status == 200
    wait_until(ok, timeout=15, what="200 after the upstream came back")


def test_pooled_upstream_connection_closed_by_upstream(make_gateway, make_upstream, ctx):
    """The upstream restarts: the gateway's pooled connections are dead and it
    must not hand them a request that then fails."""
    up = make_upstream()
    gw = make_gateway(up.port)
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/").status == 200
    up.stop()
    up.start()
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/").status == 200


def test_slow_upstream_504(gateway, ctx):
    with Client(gateway.port, ctx) as c:
        t0 = time.monotonic()
        r = c.request("GET", "/slow/4000")
        elapsed = time.monotonic() - t0
        assert r.status == 504, r
        assert 1.5 <= elapsed <= 3.9, "504 after %.1fs, upstream_timeout is 2s" % elapsed


def test_after_504_gateway_keeps_serving(gateway, ctx):
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/slow/3000").status == 504
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/").status == 200
