"""test_pglive.py -- live updates of the PostgreSQL user store (issue 17
item 2): every version bump sends a NOTIFY at commit; each gateway's
listener (its own connection and thread) reloads its in-memory tables when
it hears one, so a logout or a disabled user on A is refused on B within
1 s; with the server stopped the listener says so in /readyz and the error
log, and after the server is back it catches up on what changed meanwhile;
a change nobody announced is read by the 30 s safety read; a reload keeps
one listener. user_db_pool lets a sign-in pass another one stuck on a row
lock. Uses test_pgstore's throwaway PostgreSQL 15.
"""

import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from auth_helpers import enrol, forms, login, make_auth_gateway  # noqa: F401
from helpers import wait_until
from test_pgstore import FAST, Postgres, _readyz, on, postgres  # noqa: F401
from test_sites_run import make_sites, site_block, site_certs  # noqa: F401

LIVE_S = 1.0    # the bound for a change to reach another gateway


@pytest.fixture
def live_pair(postgres, make_auth_gateway, upstream, workdir):  # noqa: F811
    """Two gateways on one fresh database, and its URL."""
    url = postgres.new_database()
    key = os.path.join(workdir, "live-%s.key" % uuid.uuid4().hex[:8])
    extra = FAST + ["user_db %s" % url, "secret_key %s" % key]
    a = make_auth_gateway(upstream.port, auth_extra=extra)
    b = make_auth_gateway(upstream.port, auth_extra=extra)
    return a, b, url


def _psql(url, sql):
    r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r
    return r.stdout.decode().strip()


def _channel(url, schema="public"):
    """The store's NOTIFY channel: pbxgate_store_ and its identity in hex."""
    sid = int(_psql(url, "SELECT v FROM %s.meta WHERE k = 'store_id'" % schema))
    return "pbxgate_store_%016x" % (sid & (1 << 64) - 1)


def _notifications(url, channels, change):
    """What a psql session LISTENing on channels hears while change() runs:
    psql prints what arrived before it answers the next query."""
    p = subprocess.Popen(["psql", "-X", "-A", "-t", url], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        p.stdin.write("".join("LISTEN %s;\n" % c for c in channels) +
                      "SELECT 'listening';\n")
        p.stdin.flush()
        wait_until(lambda: p.stdout.readline().strip() == "listening", timeout=10,
                   what="psql to listen")
        change()
        out, _ = p.communicate("SELECT 'done';\n", timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    return out


def _disable(gw, name):
    res = gw.cli("user", "disable", name)
    assert res.returncode == 0, res


def test_bump_sends_notify_with_the_version(live_pair):
    """A psql session LISTENs; a change through the CLI is announced on
    the store's own channel with the version it committed."""
    a, _, url = live_pair
    assert a.cli("user", "add", "nora", "--enrol").returncode == 0
    chan = _channel(url)
    out = _notifications(url, [chan, "pbxgate_store"], lambda: _disable(a, "nora"))
    version = _psql(url, "SELECT v FROM meta WHERE k = 'version'")
    assert ('Asynchronous notification "%s" with payload "%s"' % (chan, version)) in out, out
    assert out.count("Asynchronous notification") == 1, out


def test_stores_in_two_schemas_announce_on_their_own_channels(
        postgres, make_auth_gateway, upstream, workdir):  # noqa: F811
    """Two stores in two schemas of one database: a change in one is
    announced on its channel only, so the other's listeners are not woken
    for a read that finds nothing new."""
    db = postgres.new_database()
    gws, urls = [], []
    for schema in ("sa", "sb"):
        _psql(db, "CREATE SCHEMA %s" % schema)
        url = db + "&options=-csearch_path%%3D%s" % schema
        key = os.path.join(workdir, "schema-%s.key" % uuid.uuid4().hex[:8])
        gws.append(make_auth_gateway(upstream.port, auth_extra=FAST + [
            "user_db %s" % url, "secret_key %s" % key]))
        urls.append(url)
        assert gws[-1].cli("user", "add", "sam", "--enrol").returncode == 0
    ca, cb = _channel(db, "sa"), _channel(db, "sb")
    assert ca != cb
    out = _notifications(db, [ca, cb], lambda: _disable(gws[0], "sam"))
    version = _psql(db, "SELECT v FROM sa.meta WHERE k = 'version'")
    assert ('Asynchronous notification "%s" with payload "%s"' % (ca, version)) in out, out
    assert cb not in out, out
    out = _notifications(db, [ca, cb], lambda: _disable(gws[1], "sam"))
    assert cb in out and ca not in out, out


def _session_on_both(a, gb, ctx, name):
    """Enrolled through A, signed in on A; the cookie's copy works on B."""
    _, secret, _ = enrol(a, ctx, name)
    b, r = login(a, ctx, name, secret)
    assert r.status == 303, r
    kept = on(gb, ctx, b)
    wait_until(lambda: kept.get("/app").status == 200, timeout=10, interval=0.05,
               what="A's cookie to be accepted by B")
    return b, kept, secret


def _refused_within(kept, t0, what):
    wait_until(lambda: kept.get("/app").status == 302, timeout=5, interval=0.02, what=what)
    took = time.monotonic() - t0
    print("%s after %.3fs" % (what, took))
    assert took < LIVE_S, "%s took %.3fs" % (what, took)
    return took


def test_logout_on_a_refused_on_b_within_1s(live_pair, ctx):
    a, gb, _ = live_pair
    b, kept, _ = _session_on_both(a, gb, ctx, "lara")
    r = b.get("/_pbxgate/account")
    logout = [f for act, f in forms(r.body) if act == "/_pbxgate/logout"]
    assert logout, r.body
    t0 = time.monotonic()
    assert b.post_form("/_pbxgate/logout", logout[0]).status in (200, 303)
    _refused_within(kept, t0, "logout on A refused on B")


def test_user_disabled_on_a_refused_on_b_within_1s(live_pair, ctx):
    a, gb, _ = live_pair
    _, kept, _ = _session_on_both(a, gb, ctx, "mona")
    t0 = time.monotonic()
    res = a.cli("user", "disable", "mona")
    assert res.returncode == 0, res
    _refused_within(kept, t0, "user disabled through A refused on B")


def _listeners(url):
    return int(_psql(url, "SELECT count(*) FROM pg_stat_activity WHERE"
                          " application_name = 'pbxgate-listen'"))


def test_reload_keeps_one_listener_and_stop_closes_it(live_pair):
    """A reload neither starts a second listener nor drops the first; a
    stop closes it (and the fixture checks the exit status)."""
    a, gb, url = live_pair
    wait_until(lambda: _listeners(url) == 2, timeout=10, what="two listeners")
    for _ in range(3):
        a.reload()
    assert _listeners(url) == 2
    assert a.metric("pbxgate_user_store_listener_connected") == 1
    t0 = time.monotonic()
    assert a.stop() == 0
    assert time.monotonic() - t0 < 5
    wait_until(lambda: _listeners(url) == 1, timeout=10, what="A's listener to close")


def test_revocation_while_b_is_cut_off_is_caught_up(make_auth_gateway, upstream, workdir, ctx):  # noqa: F811
    """B reaches the server through its own socket directory (a symlink to
    the server's socket). The server stops: both listeners report it in
    /readyz, the error log and /metrics. The server starts again but B's
    link is gone, so only A gets back; a sign-out on A is made then, while
    B is cut off, and no NOTIFY can reach B. Once B's link is back, B's
    listener reconnects and its catch-up read refuses the cookie."""
    pg = Postgres()
    pg.start()
    bdir = os.path.join(workdir, "pgb-%s" % uuid.uuid4().hex[:8])
    os.mkdir(bdir)
    link = os.path.join(bdir, ".s.PGSQL.5432")
    os.symlink(os.path.join(pg.dir, ".s.PGSQL.5432"), link)
    try:
        url = pg.new_database()
        key = os.path.join(workdir, "cut-%s.key" % uuid.uuid4().hex[:8])
        a = make_auth_gateway(upstream.port, auth_extra=FAST + [
            "user_db %s" % url, "secret_key %s" % key])
        gb = make_auth_gateway(upstream.port, auth_extra=FAST + [
            "user_db %s" % url.replace("host=" + pg.dir, "host=" + bdir),
            "secret_key %s" % key])
        b, kept, _ = _session_on_both(a, gb, ctx, "olga")
        pg.stop()
        wait_until(lambda: _readyz(gb)[0] == 503, timeout=10, interval=0.1,
                   what="B's /readyz to report the listener")
        assert _readyz(gb) == (503, "user store: change listener disconnected, sign-outs"
                                    " from other gateways wait: see the error log\n")
        wait_until(lambda: "change listener disconnected" in gb.stderr(), timeout=10,
                   interval=0.1, what="B's error log to say the listener is down")
        assert gb.metric("pbxgate_user_store_listener_connected") == 0
        # sessions are still judged from memory meanwhile
        assert kept.get("/app").status == 200
        os.unlink(link)
        pg.start()
        wait_until(lambda: a.metric("pbxgate_user_store_listener_connected") == 1,
                   timeout=15, interval=0.1, what="A's listener back")
        r = b.get("/_pbxgate/account")
        logout = [f for act, f in forms(r.body) if act == "/_pbxgate/logout"]
        assert logout, r.body
        assert b.post_form("/_pbxgate/logout", logout[0]).status in (200, 303)
        assert gb.metric("pbxgate_user_store_listener_connected") == 0
        assert kept.get("/app").status == 200  # B cannot know yet
        reconnects = gb.metric("pbxgate_user_store_listener_reconnects_total")
        os.symlink(os.path.join(pg.dir, ".s.PGSQL.5432"), link)
        t0 = time.monotonic()
        # back-off is at most 5 s: B retries within that
        wait_until(lambda: kept.get("/app").status == 302, timeout=10, interval=0.05,
                   what="B to catch up on the sign-out made while it was cut off")
        print("B caught up %.2fs after its link came back" % (time.monotonic() - t0))
        assert gb.metric("pbxgate_user_store_listener_reconnects_total") == reconnects + 1
        wait_until(lambda: _readyz(gb)[0] == 200, timeout=10, interval=0.1,
                   what="B's /readyz ready again")
        assert "user store: answering again" in gb.stderr()
        # the error line is rate-limited: the outage lasted several ticks
        n = gb.stderr().count("change listener disconnected")
        assert 1 <= n <= 3, n
        # the server's own words on the way down reach the log's reason,
        # never stderr as raw libpq text outside the log format
        raw = [ln for ln in gb.stderr().splitlines() if ln.startswith(("FATAL:", "server closed"))]
        assert not raw, raw
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


def _password_step(gw, ctx, name):
    from auth_helpers import PASSWORD, Browser, form_with
    b = Browser(gw.port, ctx)
    r = b.get("/_pbxgate/login")
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password=PASSWORD)
    return b.post_form(act or "/_pbxgate/login", fields)


@pytest.mark.parametrize("pool", [1, 2])
def test_pool_lets_a_login_pass_one_stuck_on_a_lock(postgres, make_auth_gateway,  # noqa: F811
                                                   upstream, workdir, ctx, pool):
    """psql holds a row lock on user slow's row: slow's password step waits
    for it inside a store call (lock_timeout 5 s), holding a connection.
    With user_db_pool 2 (two login threads, the default) alice's password
    step on the same gateway takes the other connection and answers at
    once; with user_db_pool 1 it waits for slow's statement to give up."""
    url = postgres.new_database()
    key = os.path.join(workdir, "pool-%s.key" % uuid.uuid4().hex[:8])
    gw = make_auth_gateway(upstream.port, auth_extra=FAST + [
        "user_db %s" % url, "secret_key %s" % key, "user_db_pool %d" % pool])
    assert int(_psql(url, "SELECT count(*) FROM pg_stat_activity WHERE"
                          " application_name = 'pbxgate'")) == pool
    enrol(gw, ctx, "slow")
    enrol(gw, ctx, "alice")
    holder = subprocess.Popen(["psql", "-X", "-A", "-t", url], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              text=True)
    stuck, t = {}, None
    try:
        holder.stdin.write("BEGIN;\nSELECT 1 FROM users WHERE name = 'slow' FOR UPDATE;\n")
        holder.stdin.flush()
        wait_until(lambda: _psql(url, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity"
                                      " a USING (pid) WHERE a.application_name = 'psql'"
                                      " AND l.mode = 'RowShareLock'") != "0",
                   timeout=10, what="psql to hold the row")
        t = threading.Thread(target=lambda: stuck.update(r=_password_step(gw, ctx, "slow")))
        t.start()
        wait_until(lambda: _psql(url, "SELECT count(*) FROM pg_stat_activity WHERE"
                                      " application_name = 'pbxgate' AND"
                                      " wait_event_type = 'Lock'") == "1",
                   timeout=10, interval=0.05, what="slow's password step to wait on the row")
        t0 = time.monotonic()
        r = _password_step(gw, ctx, "alice")
        took = time.monotonic() - t0
        print("user_db_pool %d: alice's password step took %.2fs beside a stuck one"
              % (pool, took))
        assert r.status == 200, r
        if pool == 2:
            assert took < 2.0, took
        else:
            assert took > 3.0, took
    finally:
        holder.communicate("ROLLBACK;\n\\q\n", timeout=30)
        if t is not None:
            t.join(30)


def test_change_without_notify_read_by_the_safety_poll(live_pair, ctx):
    """A change written by hand with no NOTIFY (the version bumped by a
    plain UPDATE) is still read: the listener reads the version every 30 s."""
    a, gb, url = live_pair
    _, kept, _ = _session_on_both(a, gb, ctx, "pia")
    t0 = time.monotonic()
    _psql(url, "BEGIN; UPDATE sessions SET revoked = 1 WHERE user_id = (SELECT id FROM"
               " users WHERE name = 'pia'); UPDATE meta SET v = v + 1 WHERE k = 'version';"
               " COMMIT")
    wait_until(lambda: kept.get("/app").status == 302, timeout=40, interval=0.2,
               what="B's 30 s version read to pick up a change nobody announced")
    print("unannounced change read after %.1fs" % (time.monotonic() - t0))
    assert gb.metric("pbxgate_user_store_listener_reconnects_total") == 0


def test_site_listener_down_in_readyz(make_sites, make_upstream, site_certs, workdir):  # noqa: F811
    """With sites, each site's store has its own change listener: a site's
    listener cut off from PostgreSQL makes /readyz not ready, naming the
    site (the top level has no store of its own then), and ready again
    once it is back."""
    d, certs = site_certs
    up = make_upstream()
    pol = os.path.join(d, "pg-site.policy")
    with open(pol, "w") as f:
        f.write("allow path ^/_pbxgate/\ndefault allow\n")
    pg = Postgres()
    pg.start()
    try:
        url = pg.new_database()
        key = os.path.join(workdir, "site-%s.key" % uuid.uuid4().hex[:8])
        gw = make_sites([site_block("a", certs, up.port, pol, extra=(
            "user_db %s" % url, "secret_key %s" % key) + tuple(FAST))])
        wait_until(lambda: _readyz(gw)[0] == 200, timeout=15, interval=0.1,
                   what="the gateway ready with the site's store")
        pg.stop()
        wait_until(lambda: _readyz(gw)[0] == 503, timeout=10, interval=0.1,
                   what="/readyz to report the site's listener")
        assert _readyz(gw) == (503, "site a: user store: change listener disconnected,"
                                    " sign-outs from other gateways wait: see the error"
                                    " log\n")
        pg.start()
        wait_until(lambda: _readyz(gw)[0] == 200, timeout=15, interval=0.1,
                   what="/readyz ready again")
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


def test_site_listener_metrics_by_site(make_sites, make_upstream, site_certs, workdir):  # noqa: F811
    """With sites, each site's change listener has its series on /metrics
    with a `site` label (none without one): a change in a's store counts
    in a's reloads only; with the server stopped both report 0 connected,
    and once it is back each counts its reconnect."""
    d, certs = site_certs
    up = make_upstream()
    pol = os.path.join(d, "pg-site.policy")
    with open(pol, "w") as f:
        f.write("allow path ^/_pbxgate/\ndefault allow\n")
    pg = Postgres()
    pg.start()
    try:
        key = os.path.join(workdir, "sites-%s.key" % uuid.uuid4().hex[:8])
        gw = make_sites([site_block(n, certs, up.port, pol, extra=(
            "user_db %s" % pg.new_database(), "secret_key %s" % key) + tuple(FAST))
            for n in ("a", "b")])

        def m(name, site):
            return gw.metric("pbxgate_user_store_" + name, 'site="%s"' % site)
        # connected reads 1 from the start; the first read says it is
        wait_until(lambda: all(m("listener_connected", s) == 1 and
                               m("reloads_total", s) >= 1 for s in "ab"),
                   timeout=15, interval=0.1,
                   what="both sites' listeners connected and read")
        assert gw.metric("pbxgate_user_store_listener_connected") is None
        a0, b0 = m("reloads_total", "a"), m("reloads_total", "b")
        gw.user_add("a", "amy")
        wait_until(lambda: m("reloads_total", "a") > a0, timeout=10, interval=0.1,
                   what="a's listener to read a's change")
        assert m("reloads_total", "b") == b0
        assert m("listener_reconnects_total", "a") == 0
        pg.stop()
        wait_until(lambda: m("listener_connected", "a") == 0 and
                   m("listener_connected", "b") == 0, timeout=10, interval=0.1,
                   what="both listeners disconnected")
        pg.start()
        wait_until(lambda: m("listener_connected", "a") == 1 and
                   m("listener_connected", "b") == 1, timeout=15, interval=0.1,
                   what="both listeners back")
        assert m("listener_reconnects_total", "a") == 1
        assert m("listener_reconnects_total", "b") == 1
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


def _listeners_on(url):
    """The change listeners connected to url's database."""
    db = url.split("///", 1)[1].split("?")[0]    # Postgres.url's shape
    return int(_psql(url, "SELECT count(*) FROM pg_stat_activity WHERE"
                          " application_name = 'pbxgate-listen' AND"
                          " datname = '%s'" % db))


def test_reload_moving_a_site_to_another_database(make_sites, make_upstream,  # noqa: F811
                                                  site_certs, postgres, workdir):
    """A reload that gives site a another PostgreSQL database: the new
    store's listener starts with the reload, the old one's stops once
    nothing holds the old context, and the site's series follow the new
    listener."""
    d, certs = site_certs
    up = make_upstream()
    pol = os.path.join(d, "pg-site.policy")
    with open(pol, "w") as f:
        f.write("allow path ^/_pbxgate/\ndefault allow\n")
    old, new = postgres.new_database(), postgres.new_database()
    key = os.path.join(workdir, "move-%s.key" % uuid.uuid4().hex[:8])
    gw = make_sites([site_block("a", certs, up.port, pol, extra=(
        "user_db %s" % old, "secret_key %s" % key) + tuple(FAST))])
    wait_until(lambda: _listeners_on(old) == 1, timeout=10, interval=0.1,
               what="a's listener on the first database")
    gw.sites = [site_block("a", certs, up.port, pol, extra=(
        "user_db %s" % new, "secret_key %s" % key) + tuple(FAST))]
    gw.write_config()
    gw.reload()
    wait_until(lambda: _listeners_on(new) == 1 and _listeners_on(old) == 0,
               timeout=10, interval=0.1,
               what="the listener moved to the second database")
    # closed a sweep after its listener stopped (the drain, site_auth.c)
    wait_until(lambda: "site a: previous login context closed" in gw.stderr(),
               timeout=10, interval=0.1, what="the old context closed")
    assert gw.metric("pbxgate_user_store_listener_connected", 'site="a"') == 1


def _backends_on(url):
    """Every connection to url's database but the query's own."""
    db = url.split("///", 1)[1].split("?")[0]
    return int(_psql(url, "SELECT count(*) FROM pg_stat_activity WHERE"
                          " datname = '%s' AND pid <> pg_backend_pid()" % db))


def test_reload_moving_the_top_level_to_another_database(make_auth_gateway, upstream,  # noqa: F811
                                                         postgres, workdir):
    """Without sites, a reload that gives the top level another database:
    the new store's listener starts with the reload, and every connection
    to the old database (listener and store pool) closes once nothing
    holds the old context; the listener gauge follows the new one."""
    old, new = postgres.new_database(), postgres.new_database()
    key = os.path.join(workdir, "top-%s.key" % uuid.uuid4().hex[:8])
    gw = make_auth_gateway(upstream.port, auth_extra=FAST + [
        "user_db %s" % old, "secret_key %s" % key])
    wait_until(lambda: _listeners_on(old) == 1, timeout=10, interval=0.1,
               what="the listener on the first database")
    assert _backends_on(new) == 0
    gw.auth_extra = FAST + ["user_db %s" % new, "secret_key %s" % key]
    gw.write_config()
    gw.reload()
    wait_until(lambda: _listeners_on(new) == 1 and _backends_on(old) == 0,
               timeout=10, interval=0.1,
               what="the old database's connections closed")
    assert "top level: previous login context closed" in gw.stderr()
    assert gw.metric("pbxgate_user_store_listener_connected") == 1
