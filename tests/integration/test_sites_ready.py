"""test_sites_ready.py -- /readyz with sites (issue 17 item 1): every
site's upstream is probed, not only the first's, and a 503 names the site
whose upstream is down; the probes run together, so many idle sites cost
one connect timeout, not one each."""

import os
import socket
import time
import urllib.error

import pytest

from helpers import free_port, wait_until
from test_sites_run import make_sites, site_block, site_certs, write  # noqa: F401


def readyz(gw):
    try:
        return gw.admin_get("/readyz")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def open_policy(certs_dir):
    return write(os.path.join(certs_dir, "open.policy"), "default allow\n")


def test_readyz_names_the_site_whose_upstream_is_down(make_sites, make_upstream,
                                                      site_certs):
    """a's upstream answers, b's port has nobody: 503 naming b; once b's
    upstream listens, 200. The first site's probe alone said 200 before."""
    d, certs = site_certs
    up_a, b_port = make_upstream(), free_port()
    pol = open_policy(d)
    gw = make_sites([site_block("a", certs, up_a.port, pol),
                     site_block("b", certs, b_port, pol)])
    assert readyz(gw) == (503, "site b: upstream unreachable: no connection "
                          "within upstream_connect_timeout\n")
    make_upstream(port=b_port)
    wait_until(lambda: readyz(gw)[0] == 200, timeout=10, interval=0.1,
               what="ready once b's upstream listens")
    assert readyz(gw) == (200, "ready\n")


def test_readyz_both_sites_up_is_200(make_sites, make_upstream, site_certs):
    d, certs = site_certs
    up_a, up_b = make_upstream(), make_upstream()
    pol = open_policy(d)
    gw = make_sites([site_block("a", certs, up_a.port, pol),
                     site_block("b", certs, up_b.port, pol)])
    assert readyz(gw) == (200, "ready\n")


@pytest.fixture
def silent_port():
    """A port whose SYNs go unanswered: a listener with a full accept queue
    (backlog 0, never accepting) drops them, so a connect there waits out
    its timeout, as to a host that is down."""
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(0)
    held = []
    for _ in range(8):
        c = socket.socket()
        c.settimeout(0.3)
        held.append(c)
        try:
            c.connect(lsn.getsockname())
        except (socket.timeout, BlockingIOError):
            break
    else:
        pytest.skip("the kernel answered every SYN: no silent port here")
    yield lsn.getsockname()[1]
    for c in held:
        c.close()
    lsn.close()


def test_readyz_probes_sites_together(make_sites, make_upstream, site_certs,
                                      silent_port):
    """Two sites whose upstreams never answer (connect timeout 1 s): one
    /readyz takes about one timeout, not two, and names the first."""
    d, certs = site_certs
    up = make_upstream()
    pol = open_policy(d)
    sites = [site_block("a", certs, up.port, pol)]
    for name in ("b", "c"):
        sites.append(site_block(name, certs, silent_port, pol,
                                extra=["upstream_connect_timeout 1s"]))
    gw = make_sites(sites)
    t0 = time.monotonic()
    status, text = readyz(gw)
    took = time.monotonic() - t0
    assert (status, text) == (503, "site b: upstream unreachable: no "
                              "connection within upstream_connect_timeout\n")
    print("two silent upstreams probed in %.2fs" % took)
    assert 0.9 < took < 1.9, took
