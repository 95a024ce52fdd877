"""test_pgstore.py -- the PostgreSQL user store through the real binary: a
throwaway PostgreSQL 15 (initdb and pg_ctl in a temp dir as an unprivileged
user, Unix socket only, stopped at the end), `pbxgate user add` and login on
it, and two gateways sharing it behaving as one: a cookie of A works on B,
a TOTP code is accepted once whichever gateway gets it, failures on A count
towards a ban B enforces, a user disabled on A is refused on B, a cookie
logged out on A is refused by B.
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import uuid

import pytest

from auth_helpers import (PASSWORD, Browser, enrol, enrol_with_link, form_with,  # noqa: F401
                          forms, login, make_auth_gateway, otp_secret, safe_step, totp,
                          STEP)
from helpers import free_port, wait_until

PGBIN = "/usr/lib/postgresql/15/bin"
RUNAS = "nobody"
FAST = ["argon2 m=64 t=1 p=1"]	# the cost is not what is tested here


def _as_user(args):
    return (["runuser", "-u", RUNAS, "--"] if os.geteuid() == 0 else []) + args


class Postgres:
    """initdb + pg_ctl -w (bounded) in a temp dir; trust on the socket.
    tls=(CERT, KEY): also listens on 127.0.0.1:self.port with ssl=on and
    that certificate, and pg_hba.conf takes TCP only as hostssl with
    scram-sha-256 (the socket keeps trust, for the tests' own psql)."""

    def __init__(self, tls=None):
        self.dir = tempfile.mkdtemp(prefix="pbxgate-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, RUNAS)
        self.data = os.path.join(self.dir, "data")
        self.port = None
        subprocess.run(_as_user([PGBIN + "/initdb", "-D", self.data, "-A", "trust",
                                 "-U", "pbxgate", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        os.chmod(self.dir, 0o711)
        if tls is not None:
            self._tls(*tls)

    def _tls(self, cert, key):
        """The server's copies of cert and key (its own, 0600, as the server
        wants them), and a pg_hba.conf with no plain host line."""
        for src, name in ((cert, "server.crt"), (key, "server.key")):
            dst = os.path.join(self.data, name)
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o600)
            if os.geteuid() == 0:
                shutil.chown(dst, RUNAS)
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        self.port = free_port()

    def start(self):
        opts = "-k %s -c fsync=off" % self.dir
        opts += (" -c listen_addresses=127.0.0.1 -p %d -c ssl=on" % self.port
                 if self.port else " -c listen_addresses=''")
        subprocess.run(_as_user([PGBIN + "/pg_ctl", "-D", self.data, "-l",
                                 os.path.join(self.dir, "server.log"), "-w", "-t", "30",
                                 "-o", opts, "start"]),
                       check=True, capture_output=True, timeout=60)

    def stop(self):
        subprocess.run(_as_user([PGBIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w",
                                 "-t", "30", "stop"]), capture_output=True, timeout=60)

    def url(self, db="postgres"):
        return "postgresql:///%s?host=%s&user=pbxgate" % (db, self.dir) + (
            "&port=%d" % self.port if self.port else "")

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql,
                            self.url(db)], capture_output=True, timeout=30)
        assert r.returncode == 0, r
        return r.stdout.decode().strip()

    def new_database(self):
        name = "gw_%s" % uuid.uuid4().hex[:12]
        self.psql("CREATE DATABASE %s" % name)
        return self.url(name)


@pytest.fixture(scope="module")
def postgres():
    if not os.access(PGBIN + "/initdb", os.X_OK):
        pytest.skip("postgresql-15 is not installed (tests/install-deps)")
    pg = Postgres()
    pg.start()
    yield pg
    pg.stop()
    shutil.rmtree(pg.dir, ignore_errors=True)


@pytest.fixture
def pair(postgres, make_auth_gateway, upstream, workdir):
    """Two gateways on one fresh database, sharing one secret key (A makes it)."""
    url = postgres.new_database()
    key = os.path.join(workdir, "shared-%s.key" % uuid.uuid4().hex[:8])
    extra = FAST + ["user_db %s" % url, "secret_key %s" % key, "login_max_failures 3"]
    a = make_auth_gateway(upstream.port, auth_extra=extra)
    b = make_auth_gateway(upstream.port, auth_extra=extra)
    return a, b


def on(gw, ctx, browser):
    """The same cookies, sent to another gateway."""
    o = Browser(gw.port, ctx)
    o.jar = dict(browser.jar)
    return o


def test_user_add_and_login_on_postgresql(pair, ctx, postgres):
    a, _ = pair
    _, secret, _ = enrol(a, ctx, "alice")
    b, r = login(a, ctx, "alice", secret)
    assert r.status == 303, r
    assert b.get("/app").status == 200
    r = a.cli("user", "list")
    assert r.returncode == 0 and b"alice" in r.stdout, r


def test_cookie_of_a_works_on_b(pair, ctx):
    a, gb = pair
    _, secret, _ = enrol(a, ctx, "bob")
    b, r = login(a, ctx, "bob", secret)
    assert r.status == 303, r
    # B learns of the new user at its next store refresh (every 2 s)
    wait_until(lambda: on(gb, ctx, b).get("/app").status == 200, timeout=10,
               interval=0.1, what="A's cookie to be accepted by B")
    assert Browser(gb.port, ctx).get("/app").status == 302  # no cookie, no entry


def _code_form(gw, ctx, name, source):
    b = Browser(gw.port, ctx, source)
    r = b.get("/_pbxgate/login?rd=/app")
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password=PASSWORD)
    r = b.post_form(act or "/_pbxgate/login", fields)
    assert r.status == 200 and b'name="code"' in r.body, r
    act, fields = form_with(r.body, "code")
    return b, act or "/_pbxgate/login", fields


def test_totp_code_accepted_once_across_gateways(pair, ctx):
    a, gb = pair
    users = []
    for i in range(20):
        _, secret, _ = enrol(a, ctx, "tess%d" % i)
        users.append(("tess%d" % i, secret))
    # each user from its own address: the losers' failures must not add up
    # to an address ban (login_max_failures 3)
    for i, (name, secret) in enumerate(users):
        forms = [_code_form(gw, ctx, name, "127.0.6.%d" % (i + 1)) for gw in (a, gb)]
        code = totp(secret, safe_step())
        results = [None, None]
        go = threading.Barrier(2)

        def send(i, b, act, fields):
            fields = dict(fields, code=code)
            go.wait(timeout=10)
            results[i] = b.post_form(act, fields)
        ts = [threading.Thread(target=send, args=(i,) + f) for i, f in enumerate(forms)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=30)
        statuses = [r.status for r in results]
        assert statuses.count(303) == 1, (name, statuses)


def _fail(gw, ctx, name, source):
    b = Browser(gw.port, ctx, source)
    r = b.get("/_pbxgate/login")
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password="wrong password")
    return b.post_form(act or "/_pbxgate/login", fields)


def test_failures_on_a_ban_on_b(pair, ctx):
    a, gb = pair
    _, secret, _ = enrol(a, ctx, "carol")
    for i in range(3):  # login_max_failures 3, each from its own address
        assert _fail(a, ctx, "carol", "127.0.5.%d" % (i + 1)).status == 401
    _, r = login(gb, ctx, "carol", secret, source="127.0.5.99")
    assert r.status == 401 and b'name="code"' not in r.body, r
    r = gb.cli("ban", "list")
    assert r.returncode == 0 and b"carol" in r.stdout, r


def test_user_disabled_on_a_refused_on_b(pair, ctx):
    a, gb = pair
    _, secret, _ = enrol(a, ctx, "dora")
    b, r = login(gb, ctx, "dora", secret)
    assert r.status == 303 and b.get("/app").status == 200
    res = a.cli("user", "disable", "dora")
    assert res.returncode == 0, res
    wait_until(lambda: b.get("/app").status == 302, timeout=10, interval=0.1,
               what="B to end the session of a user disabled through A")
    _, r = login(gb, ctx, "dora", secret)
    assert r.status == 401, r


def test_logout_on_a_ends_the_cookie_on_b(pair, ctx):
    a, gb = pair
    _, secret, _ = enrol(a, ctx, "erin")
    b, r = login(a, ctx, "erin", secret)
    assert r.status == 303, r
    kept = on(gb, ctx, b)  # an attacker's copy of the cookie, used on B
    wait_until(lambda: kept.get("/app").status == 200, timeout=10, interval=0.1,
               what="A's cookie to be accepted by B")
    r = b.get("/_pbxgate/account")
    logout = [f for act, f in forms(r.body) if act == "/_pbxgate/logout"]
    assert logout, r.body
    t0 = time.monotonic()
    assert b.post_form("/_pbxgate/logout", logout[0]).status in (200, 303)
    # B's change listener hears the NOTIFY (test_pglive.py holds it to 1 s)
    wait_until(lambda: kept.get("/app").status == 302, timeout=5, interval=0.05,
               what="B to refuse the cookie logged out on A")
    print("logout on A refused on B after %.2fs" % (time.monotonic() - t0))


def _readyz(gw):
    try:
        return gw.admin_get("/readyz")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def _password_step(gw, ctx, name):
    b = Browser(gw.port, ctx)
    r = b.get("/_pbxgate/login")
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password=PASSWORD)
    return b.post_form(act or "/_pbxgate/login", fields)


def test_postgresql_down_logins_503_sessions_flow(make_auth_gateway, upstream, workdir, ctx):
    """A server of its own, stopped and started under the gateway."""
    pg = Postgres()
    pg.start()
    try:
        key = os.path.join(workdir, "down-%s.key" % uuid.uuid4().hex[:8])
        a = make_auth_gateway(upstream.port, auth_extra=FAST + [
            "user_db %s" % pg.new_database(), "secret_key %s" % key])
        _, secret, _ = enrol(a, ctx, "frida")
        used = safe_step()
        b, r = login(a, ctx, "frida", secret, step=used)
        assert r.status == 303, r
        pg.stop()
        # the password step: 503 with the page saying why, no code form
        t0 = time.monotonic()
        r = _password_step(a, ctx, "frida")
        assert r.status == 503, r
        assert b"cannot reach its user store" in r.body and b'name="code"' not in r.body, r.body
        assert time.monotonic() - t0 < 10
        # a valid session keeps being proxied meanwhile
        for _ in range(5):
            assert b.get("/app").status == 200
        wait_until(lambda: _readyz(a)[0] == 503, timeout=10, interval=0.1,
                   what="/readyz to report the store")
        # back without restarting pbxgate: the password step answers again,
        # and a code of a later step than the one spent before signs in
        pg.start()
        wait_until(lambda: _password_step(a, ctx, "frida").status == 200, timeout=20,
                   interval=0.2, what="the password step to work after PostgreSQL restarted")
        wait_until(lambda: time.time() // STEP > used, timeout=STEP + 5, interval=0.2,
                   what="a TOTP step not used yet")
        _, r = login(a, ctx, "frida", secret)
        assert r.status == 303, r
        wait_until(lambda: _readyz(a)[0] == 200, timeout=10, interval=0.1,
                   what="/readyz to be ready again")
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


STORE_DOWN = b"cannot reach its user store"


def test_postgresql_down_enrolment_account_logout_503(make_auth_gateway, upstream, workdir,
                                                      ctx):
    """With the store down, enrolment, account changes and logout answer 503
    with the page saying why (they answered "link not valid", "wrong
    password" and a plain sign-out before); nothing is half-written: once
    the store is back, the enrolment link still works and the password is
    the old one."""
    pg = Postgres()
    pg.start()
    try:
        key = os.path.join(workdir, "down2-%s.key" % uuid.uuid4().hex[:8])
        a = make_auth_gateway(upstream.port, auth_extra=FAST + [
            "user_db %s" % pg.new_database(), "secret_key %s" % key])
        eb, secret, _ = enrol(a, ctx, "gus")
        b, r = login(a, ctx, "gus", secret)
        assert r.status == 303, r
        link = a.enrol_link("hanna")
        # the forms, fetched while the store answers
        r = b.get("/_pbxgate/account")
        assert r.status == 200, r
        pw = dict([f for _, f in forms(r.body) if f.get("action") == "password"][0],
                  current=PASSWORD, new="another long password",
                  new2="another long password", code=eb.recovery[0])
        logout = [f for act, f in forms(r.body) if act == "/_pbxgate/logout"][0]
        h = Browser(a.port, ctx)
        r = h.get(link)
        assert r.status == 200, r
        hsecret = otp_secret(r.body)
        act, ef = form_with(r.body, "password2")
        ef.update(password=PASSWORD, password2=PASSWORD, code=totp(hsecret, safe_step() - 1))
        pg.stop()

        r = Browser(a.port, ctx).get(link)
        assert r.status == 503 and STORE_DOWN in r.body, r
        assert r.get("retry-after") == "30", r.headers
        r = h.post_form(act, ef)
        assert r.status == 503 and STORE_DOWN in r.body, r
        r = b.post_form("/_pbxgate/account", pw)
        assert r.status == 503 and STORE_DOWN in r.body, r
        assert b.get("/app").status == 200  # the session keeps being proxied
        cookie = b.jar.get("__Host-pbxgate")
        r = b.post_form("/_pbxgate/logout", logout)
        assert r.status == 503 and STORE_DOWN in r.body, r
        assert b.jar.get("__Host-pbxgate") is None, b.jar  # the browser forgets it anyway

        pg.start()
        # nothing was half-written: the link still enrols, the password is the old one
        wait_until(lambda: Browser(a.port, ctx).get(link).status == 200, timeout=20,
                   interval=0.2, what="the enrolment link to answer after PostgreSQL restarted")
        enrol_with_link(a, ctx, link)
        _, r = login(a, ctx, "gus", secret, eb.recovery[1])
        assert r.status == 303, r
        # the logout the store never recorded left the session valid: it
        # was not claimed as ended (the page said so)
        t = Browser(a.port, ctx)
        t.jar["__Host-pbxgate"] = cookie
        assert t.get("/app").status == 200
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)
