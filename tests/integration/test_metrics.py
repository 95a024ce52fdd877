"""test_metrics.py -- the Prometheus series issue 15 asks for move when
their event happens: request and upstream histograms, policy decisions by
action, logins by result, the certificate's notAfter, build info and the
last successful reload."""

import datetime
import signal
import socket
import subprocess
import time

import pytest

from auth_helpers import login, make_auth_gateway  # noqa: F401 (a fixture)
from helpers import Client, tls_connect, wait_until


def _bucket_count(gw, name, labels):
    return gw.metric(name + "_count", labels) or 0.0


def test_request_histogram_counts_each_proxied_request(gateway, ctx):
    labels = 'route="proxied",class="2xx"'
    before = _bucket_count(gateway, "pbxgate_request_duration_seconds", labels)
    with Client(gateway.port, ctx) as c:
        for _ in range(3):
            assert c.request("GET", "/").status == 200
    assert _bucket_count(gateway, "pbxgate_request_duration_seconds", labels) == before + 3
    # the +Inf bucket is the count, and the response histogram saw them too
    assert gateway.metric("pbxgate_request_duration_seconds_bucket",
                          labels + ',le="+Inf"') == before + 3
    assert gateway.metric("pbxgate_upstream_response_duration_seconds_count") >= 3
    assert gateway.metric("pbxgate_upstream_connect_duration_seconds_count") >= 1


def test_request_histogram_gateway_route(gateway, ctx):
    """An answer the gateway makes itself (its /_pbxgate/ pages) is counted
    under route="gateway", not as proxied."""
    labels = 'route="gateway",class="4xx"'
    before = _bucket_count(gateway, "pbxgate_request_duration_seconds", labels)
    proxied = _bucket_count(gateway, "pbxgate_request_duration_seconds",
                            'route="proxied",class="4xx"')
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/_pbxgate/no-such-page")
    assert r.status == 404
    assert _bucket_count(gateway, "pbxgate_request_duration_seconds", labels) == before + 1
    assert _bucket_count(gateway, "pbxgate_request_duration_seconds",
                         'route="proxied",class="4xx"') == proxied


def test_policy_decisions_by_action(make_auth_gateway, upstream, ctx):
    """auth_helpers.POLICY: /open/ is allowed, everything else needs MFA."""
    gw = make_auth_gateway(upstream.port)

    def count(action):
        return gw.metric("pbxgate_policy_decisions_total", 'action="%s"' % action)
    before = {a: count(a) for a in ("allow", "login", "mfa", "deny")}
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/open/x").status == 200
        assert c.request("GET", "/app").status in (302, 303)
    assert count("allow") == before["allow"] + 1
    assert count("mfa") == before["mfa"] + 1
    assert count("login") == before["login"] and count("deny") == before["deny"]


def test_login_failure_counted(make_auth_gateway, upstream, ctx):
    gw = make_auth_gateway(upstream.port)
    fail = 'event="login_failure"'
    before = gw.metric("pbxgate_auth_events_total", fail)
    assert before == 0.0
    _, r = login(gw, ctx, "nobody", None, password="wrong password 1")
    assert r.status == 401, r
    wait_until(lambda: gw.metric("pbxgate_auth_events_total", fail) == 1.0, timeout=10,
               what="login_failure counted")
    assert gw.metric("pbxgate_auth_events_total", 'event="login_success"') == 0.0


def test_certificate_not_after_is_the_certificates(gateway, certs):
    out = subprocess.run(["openssl", "x509", "-in", certs.main[0], "-noout", "-enddate",
                          "-dateopt", "iso_8601"], capture_output=True, text=True, check=True)
    when = out.stdout.strip().split("=", 1)[1]
    want = datetime.datetime.strptime(when, "%Y-%m-%d %H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert gateway.metric("pbxgate_certificate_not_after_timestamp_seconds",
                          'name="localhost",key="ec"') == want


def test_build_info_and_reload_timestamp(gateway):
    _, text = gateway.admin_get("/metrics")
    info = [l for l in text.splitlines() if l.startswith("pbxgate_build_info{")]
    assert len(info) == 1 and info[0].endswith(" 1"), info
    assert 'openssl="3.' in info[0] and 'libevent="2.1' in info[0], info[0]
    t0 = gateway.metric("pbxgate_config_last_reload_success_timestamp_seconds")
    assert t0 > 1.7e9
    gen = gateway.generation()
    wait_until(lambda: time.time() >= t0 + 1, timeout=3, what="a second")
    gateway.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: gateway.generation() == gen + 1, timeout=10, what="reload")
    assert gateway.metric("pbxgate_config_last_reload_success_timestamp_seconds") > t0


def test_exposition_passes_promtool(gateway, ctx, tmp_path):
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/").status == 200
    _, text = gateway.admin_get("/metrics")
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr


def _readyz(gw):
    import urllib.error
    try:
        return gw.admin_get("/readyz")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_readyz_follows_the_upstream(gateway, upstream, ctx):
    """/readyz probes the upstream when no connection succeeded recently:
    503 while it is down, 200 once it is back; /healthz stays 200."""
    assert _readyz(gateway) == (200, "ready\n")
    upstream.stop()
    # a proxied request fails and records the failure; /readyz then probes
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/").status == 502
    status, text = _readyz(gateway)
    assert status == 503 and text.startswith("upstream unreachable"), (status, text)
    assert gateway.admin_get("/healthz") == (200, "ok\n")
    upstream.start()
    wait_until(lambda: _readyz(gateway)[0] == 200, timeout=10, what="ready again")


def test_readyz_503_when_the_user_store_is_unreadable(make_auth_gateway, upstream):
    gw = make_auth_gateway(upstream.port)
    assert _readyz(gw) == (200, "ready\n")
    # the store loses the table every refresh reads (as a bad restore or
    # a foreign tool would leave it)
    import sqlite3
    db = sqlite3.connect(gw.db)
    db.execute("DROP TABLE meta")
    db.commit()
    db.close()
    wait_until(lambda: _readyz(gw)[0] == 503, timeout=15, what="store seen unreadable")
    assert _readyz(gw) == (503, "user store unreadable: see the error log\n")


# ------------------------------------------- connections refused, by cause

CAUSES = ("max_connections", "max_connections_per_ip", "max_established_per_ip",
          "tls_handshake", "proxy_protocol", "resources", "shutdown")


def _refused(gw):
    return {c: gw.metric("pbxgate_connections_refused_total", 'cause="%s"' % c)
            for c in CAUSES}


def _expect_refused(gw, before, cause, what):
    """The cause's counter moves by exactly one; no other cause moves."""
    want = dict(before, **{cause: before[cause] + 1})
    wait_until(lambda: _refused(gw) == want, timeout=10, interval=0.1, what=what)


def _raw(gw, payload=b""):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    if payload:
        s.sendall(payload)
    return s


def _refused_while_holding(gw, ctx, held, cause):
    before = _refused(gw)
    try:
        wait_until(lambda: gw.metric("pbxgate_connections_active") == len(held),
                   timeout=10, what="%d connections open" % len(held))
        with _raw(gw):
            _expect_refused(gw, before, cause, "a refusal by " + cause)
    finally:
        for h in held:
            h.close()


def test_refused_by_max_connections(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"max_connections": "2"})
    held = [Client(gw.port, ctx) for _ in range(2)]
    for c in held:
        assert c.request("GET", "/").status == 200
    _refused_while_holding(gw, ctx, held, "max_connections")


def test_refused_by_max_connections_per_ip(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"max_connections_per_ip": "2",
                                                "header_timeout": "30s"},
                      extra=["max_established_per_ip 100"])
    held = [tls_connect(gw.port, ctx) for _ in range(2)]  # never send a head
    _refused_while_holding(gw, ctx, held, "max_connections_per_ip")


def test_refused_by_max_established_per_ip(make_gateway, upstream, ctx):
    gw = make_gateway(upstream.port, overrides={"max_connections_per_ip": "3"},
                      extra=["max_established_per_ip 2"])
    held = [Client(gw.port, ctx) for _ in range(2)]
    for c in held:
        assert c.request("GET", "/").status == 200
    _refused_while_holding(gw, ctx, held, "max_established_per_ip")


@pytest.mark.parametrize("payload", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""],
                         ids=["plain_http", "silent_past_timeout"])
def test_refused_by_tls_handshake(make_gateway, upstream, payload):
    gw = make_gateway(upstream.port, extra=["tls_handshake_timeout 500ms"])
    before = _refused(gw)
    with _raw(gw, payload):
        _expect_refused(gw, before, "tls_handshake", "a failed TLS handshake counted")


def test_refused_by_proxy_protocol(make_gateway, upstream):
    gw = make_gateway(upstream.port, extra=["trusted_proxy 127.0.0.1/32",
                                            "proxy_protocol on"])
    before = _refused(gw)
    # the v2 signature, then version 3: not a header the gateway accepts
    with _raw(gw, b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + bytes(12)):
        _expect_refused(gw, before, "proxy_protocol", "a bad PROXY header counted")


# --------------------------------------- store gauges (counted every 5 s)

def _gauge(gw, name, labels=None):
    return gw.metric(name, labels)


def _wait_gauge(gw, name, value, labels=None):
    wait_until(lambda: _gauge(gw, name, labels) == value, timeout=20, interval=0.2,
               what="%s{%s} == %s" % (name, labels or "", value))


def test_store_gauges_move(make_auth_gateway, upstream, ctx):
    from auth_helpers import Browser, enrol, form_with
    gw = make_auth_gateway(upstream.port)
    _wait_gauge(gw, "pbxgate_enrolments_pending", 0)
    _wait_gauge(gw, "pbxgate_sessions_active", 0)
    link = gw.enrol_link("pending")
    assert link
    _wait_gauge(gw, "pbxgate_enrolments_pending", 1)
    _, secret, _ = enrol(gw, ctx, "holly")  # its link is used: still one pending
    b, r = login(gw, ctx, "holly", secret)
    assert r.status == 303, r
    wait_until(lambda: _gauge(gw, "pbxgate_sessions_active") >= 1, timeout=20,
               interval=0.2, what="the login's session counted")
    assert _gauge(gw, "pbxgate_enrolments_pending") == 1
    assert gw.cli("session", "revoke", "--user", "holly").returncode == 0
    _wait_gauge(gw, "pbxgate_sessions_active", 0)
    _wait_gauge(gw, "pbxgate_bans_active", 0, 'kind="address"')
    for i in range(5):  # five names from one address: the address is banned
        fb = Browser(gw.port, ctx, "127.0.6.1")
        _, fields = form_with(fb.get("/_pbxgate/login").body, "password")
        fields.update(username="ghost%d" % i, password="not the password")
        assert fb.post_form("/_pbxgate/login", fields).status == 401
    _wait_gauge(gw, "pbxgate_bans_active", 1, 'kind="address"')
    assert _gauge(gw, "pbxgate_bans_active", 'kind="name"') == 0
    assert gw.cli("ban", "clear", "127.0.6.1").returncode == 0
    _wait_gauge(gw, "pbxgate_bans_active", 0, 'kind="address"')


def test_store_gauges_absent_without_user_store(gateway):
    assert _gauge(gateway, "pbxgate_sessions_active") is None
    assert _gauge(gateway, "pbxgate_bans_active", 'kind="name"') is None
