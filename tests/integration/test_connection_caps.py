"""test_connection_caps.py -- the per-address connection caps (issue 12
item 21): max_connections_per_ip counts only connections that have not yet
sent a complete request head (a slowloris is held to it), while established
connections count only against max_established_per_ip."""

import socket
import ssl

import pytest

from helpers import Client, ConnectionClosed, tls_connect, wait_until


def refused(gw, ctx):
    """Whether a new connection from 127.0.0.1 is turned away (closed before
    or instead of an answer)."""
    try:
        with Client(gw.port, ctx) as c:
            c.sock.settimeout(5)
            r = c.request("GET", "/")
            return r.status != 200
    except (ConnectionClosed, ssl.SSLError, OSError, socket.timeout):
        return True


def served(gw, ctx):
    return not refused(gw, ctx)


def test_unproven_connections_capped(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"max_connections_per_ip": "3",
                                                "header_timeout": "30s"},
                      extra=["max_established_per_ip 100"])
    # three TLS connections that never send a head: a slowloris
    idle = [tls_connect(gw.port, ctx) for _ in range(3)]
    try:
        wait_until(lambda: gw.metric("pbxgate_connections_active") == 3, timeout=10,
                   what="three connections open")
        assert refused(gw, ctx), "a 4th unproven connection was served"
        # one of them finishes a head: it is established, a slot frees
        idle[0].sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        wait_until(lambda: served(gw, ctx), timeout=10, what="a slot after a complete head")
    finally:
        for s in idle:
            s.close()


def test_established_connections_not_capped_per_ip(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"max_connections_per_ip": "3"},
                      extra=["max_established_per_ip 100"])
    held = []
    try:
        for i in range(30):
            c = Client(gw.port, ctx)
            held.append(c)
            assert c.request("GET", "/").status == 200, "connection %d" % i
        for c in held:
            assert c.request("GET", "/").status == 200
    finally:
        for c in held:
            c.close()


def test_established_ceiling(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"max_connections_per_ip": "3"},
                      extra=["max_established_per_ip 5"])
    held = []
    try:
        for _ in range(5):
            c = Client(gw.port, ctx)
            held.append(c)
            assert c.request("GET", "/").status == 200
        assert refused(gw, ctx), "a 6th connection was served"
        held.pop().close()
        wait_until(lambda: served(gw, ctx), timeout=10, what="a slot to free up")
    finally:
        for c in held:
            c.close()


@pytest.mark.parametrize("per_ip,established,warns", [
    ("300", "200", True), ("200", "300", False)])
def test_check_warns_when_caps_cross(pbxgate_bin, workdir, certs, upstream, per_ip,
                                     established, warns):
    import subprocess
    from helpers import Gateway
    gw = Gateway(pbxgate_bin, workdir, [certs.main], upstream.port, name="gw-caps",
                 overrides={"max_connections_per_ip": per_ip},
                 extra=["max_established_per_ip %s" % established])
    gw.write_config()
    p = subprocess.run([pbxgate_bin, "check", "-c", gw.conf], capture_output=True)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 0, out
    assert ("larger than max_established_per_ip" in out) == warns, out
