"""test_admin.py -- /healthz, /metrics, the JSON access log, `pbxgate check`,
and the connection caps."""

import json
import socket
import ssl
import subprocess
import time

from helpers import Client, ConnectionClosed, tls_connect, wait_until

KEYS = {"@timestamp", "source.ip", "http.request.method", "url.path",
        "http.response.status_code", "http.request.bytes", "http.response.bytes",
        "event.duration", "pbxgate.upstream.duration"}


def test_healthz(gateway):
    assert gateway.admin_get("/healthz") == (200, "ok\n")


def test_metrics_names(gateway, ctx):
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/").status == 200
    status, text = gateway.admin_get("/metrics")
    assert status == 200
    for name in ["pbxgate_requests_total", "pbxgate_connections_active",
                 "pbxgate_config_generation",
                 'pbxgate_config_reloads_total{result="ok"}',
                 'pbxgate_config_reloads_total{result="error"}']:
        assert name in text, name
    assert gateway.generation() >= 1


def test_metrics_requests_total_counts(gateway, ctx):
    def total():
        _, text = gateway.admin_get("/metrics")
        return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
                   if line.startswith("pbxgate_requests_total"))
    before = total()
    with Client(gateway.port, ctx) as c:
        for _ in range(3):
            assert c.request("GET", "/").status == 200
    wait_until(lambda: total() >= before + 3, timeout=5, what="requests_total +3")


def test_access_log_lines_are_json(gateway, ctx):
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/bytes/123?q=access").status == 200
        assert c.request("POST", "/echo", body=b"12345").status == 200

    def lines():
        with open(gateway.access_log, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return rows if any(r.get("http.request.method") == "POST" and r.get("url.path") == "/echo"
                           for r in rows) else None
    rows = wait_until(lines, timeout=10, what="access log lines")
    for r in rows:
        assert KEYS <= set(r), sorted(KEYS - set(r))
    get = [r for r in rows if str(r["url.path"]).startswith("/bytes/123")][-1]
    assert get["http.response.status_code"] == 200 and get["http.request.method"] == "GET"
    assert get["source.ip"].startswith("127.0.0.1")
    assert get["http.response.bytes"] >= 123
    post = [r for r in rows if r["url.path"] == "/echo"][-1]
    assert post["http.request.bytes"] >= 5


def test_access_log_escapes_hostile_path(gateway, ctx):
    """Quotes and backslashes in a path must not break the JSON line (the
    gateway may refuse such a target instead; then there is nothing to log)."""
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", '/esc"x"\\y')
        assert r.status in (200, 400)
    if r.status == 400:
        return

    def found():
        with open(gateway.access_log, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return [row for row in rows if str(row.get("url.path")).startswith("/esc")]
    rows = wait_until(found, timeout=10, what="escaped path in the access log")
    assert rows[-1]["url.path"] == '/esc"x"\\y'


def test_check_valid_config(pbxgate_bin, gateway):
    p = subprocess.run([pbxgate_bin, "check", "-c", gateway.conf], capture_output=True)
    assert p.returncode == 0, p.stderr


def test_check_reports_file_line_col(pbxgate_bin, workdir):
    bad = workdir + "/bad.conf"
    with open(bad, "w") as f:
        f.write("# comment\nlisten 127.0.0.1:8443\nbogus_keyword 1\n")
    p = subprocess.run([pbxgate_bin, "check", "-c", bad], capture_output=True)
    assert p.returncode == 1
    assert ("%s:3:" % bad) in p.stderr.decode() + p.stdout.decode()


def test_per_ip_connection_cap(make_gateway, upstream, ctx):
    # established connections: max_established_per_ip is their ceiling
    # (max_connections_per_ip counts only those without a complete head,
    # tests/integration/test_connection_caps.py)
    gw = make_gateway(upstream.port, overrides={"max_connections_per_ip": "3"},
                      extra=["max_established_per_ip 3"])
    held = []
    try:
        for _ in range(3):
            c = Client(gw.port, ctx)
            assert c.request("GET", "/").status == 200
            held.append(c)
        refused = False
        try:
            c = Client(gw.port, ctx)
            held.append(c)
            c.sock.settimeout(5)
            r = c.request("GET", "/")
            refused = r.status in (429, 503) and c.reader.at_eof(5)
        except (ConnectionClosed, ssl.SSLError, OSError, socket.timeout):
            refused = True
        assert refused, "4th connection from one address was served"
        held.pop().close()
        held.pop(0).close()

        def served():
            with Client(gw.port, ctx) as c2:
                return c2.request("GET", "/").status == 200
        wait_until(served, timeout=10, what="a connection slot to free up")
    finally:
        for c in held:
            c.close()


def test_connections_active_gauge(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port)
    held = [tls_connect(gw.port, ctx) for _ in range(4)]
    try:
        wait_until(lambda: (gw.metric("pbxgate_connections_active") or 0) >= 4, timeout=5,
                   what="connections_active >= 4")
    finally:
        for s in held:
            s.close()
    wait_until(lambda: gw.metric("pbxgate_connections_active") == 0, timeout=10,
               what="connections_active back to 0")


def test_total_connection_cap(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"max_connections": "3"})
    held = []
    try:
        for _ in range(3):
            c = Client(gw.port, ctx)
            assert c.request("GET", "/").status == 200
            held.append(c)
        refused = False
        try:
            c = Client(gw.port, ctx)
            held.append(c)
            c.sock.settimeout(5)
            r = c.request("GET", "/")
            refused = r.status in (429, 503) and c.reader.at_eof(5)
        except (ConnectionClosed, ssl.SSLError, OSError, socket.timeout):
            refused = True
        assert refused, "4th connection over max_connections 3 was served"
    finally:
        for c in held:
            c.close()


def test_idle_keepalive_timeout_closes(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"idle_timeout": "1s"})
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        assert c.reader.at_eof(6), "idle keep-alive connection not closed"
        assert 0.5 <= time.monotonic() - t0 <= 5
