"""test_reload.py -- SIGHUP reloads under traffic without failed requests, a
broken certificate keeps the old one, SIGTERM finishes in-flight work and
exits 0."""

import hashlib
import shutil
import ssl
import threading

from helpers import Client, pattern, tls_connect

RELOADS = 5
MAX_REQUESTS = 5000


def _traffic(port, ctx, stop, stats, keepalive):
    """Requests in a loop, bounded; counts failures."""
    c = None
    for i in range(MAX_REQUESTS):
        if stop.is_set():
            break
        try:
            if c is None:
                c = Client(port, ctx)
            r = c.request("GET", "/bytes/%d" % (1000 + i % 7))
            if r.status != 200 or r.body != pattern(1000 + i % 7):
                stats["fail"].append("status %d" % r.status)
            else:
                stats["ok"] += 1
            if not keepalive or (r.get("connection") or "").lower() == "close":
                c.close()
                c = None
        except Exception as e:  # noqa: BLE001 - every failure is a finding
            stats["fail"].append(repr(e))
            if c:
                c.close()
            c = None
    if c:
        c.close()


def test_sighup_under_traffic_no_failed_request(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port)
    stop = threading.Event()
    stats = [{"ok": 0, "fail": []} for _ in range(2)]
    threads = [threading.Thread(target=_traffic, args=(gw.port, ctx, stop, stats[i], i == 0))
               for i in range(2)]
    for t in threads:
        t.start()
    try:
        gen0 = gw.generation()
        for _ in range(RELOADS):
            gw.reload("ok")
        assert gw.generation() == gen0 + RELOADS
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    for s in stats:
        assert s["fail"] == [], s["fail"][:5]
        assert s["ok"] > 0


def test_reload_applies_new_config(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"max_request_line": "8k"})
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/" + "a" * 3000).status == 200
    gw.overrides["max_request_line"] = "2k"
    gw.write_config()
    gw.reload("ok")
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/" + "a" * 3000).status == 414


def _peer_cert_digest(port, ctx):
    with tls_connect(port, ctx) as s:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def test_reload_with_broken_cert_keeps_old(make_gateway, upstream, certs, workdir, ctx):
    cert = workdir + "/reload-cert.pem"
    key = workdir + "/reload-cert.key"
    shutil.copy(certs.main[0], cert)
    shutil.copy(certs.main[1], key)
    gw = make_gateway(upstream.port, cert_pairs=[(cert, key)])
    before = _peer_cert_digest(gw.port, ctx)
    gen = gw.generation()
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    gw.reload("error")
    assert "reload failed" in gw.stderr()
    assert gw.generation() == gen
    assert _peer_cert_digest(gw.port, ctx) == before
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/").status == 200


def test_reload_with_broken_config_keeps_old(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port)
    gen = gw.generation()
    with open(gw.conf, "a") as f:
        f.write("no_such_keyword 1\n")
    gw.reload("error")
    assert "reload failed" in gw.stderr()
    assert gw.generation() == gen
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/").status == 200


def test_sigterm_finishes_in_flight_and_exits_0(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"upstream_timeout": "5s"})
    c = Client(gw.port, ctx)
    try:
        c.send(b"GET /slow/700 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # Wait until the request is in flight at the upstream, then stop.
        from helpers import wait_until
        wait_until(lambda: any(e.get("target") == "/slow/700" for e in upstream.requests()),
                   timeout=10, what="slow request at the upstream")
        gw.proc.send_signal(15)
        r = c.reader.response()
        assert r.status == 200 and r.body == b"slow\n"
    finally:
        c.close()
    assert gw.proc.wait(15) == 0
    # New connections are refused once it has exited.
    try:
        tls_connect(gw.port, ctx, timeout=2).close()
        refused = False
    except (OSError, ssl.SSLError):
        refused = True
    assert refused
