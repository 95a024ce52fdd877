"""test_migrate.py -- `pbxgate user migrate`: a SQLite store with every kind
of row (TOTP user, used recovery code, revoked session, lockdown, unused
enrolment link, ban) copied to PostgreSQL, then a gateway on the copy
behaving as the old one did; back from PostgreSQL to SQLite; and each bad
input refused with its exit status and message, nothing written.
"""

import os
import sqlite3
import time
import uuid

from auth_helpers import (PASSWORD, Browser, enrol, enrol_with_link, forms, login,  # noqa: F401
                          make_auth_gateway, safe_step, STEP)
from helpers import wait_until
from test_pgstore import FAST, Postgres, postgres  # noqa: F401 - a fixture

TABLES = ["users", "recovery", "enrol", "mfa_pending", "sessions", "logins", "regulate"]
PREFIX = "pbxgate user migrate: "


def sqlite_counts(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return {t: db.execute("SELECT count(*) FROM %s" % t).fetchone()[0] for t in TABLES}
    finally:
        db.close()


def pg_counts(pg, url):
    db = url.split("?")[0].rsplit("/", 1)[1]
    return {t: int(pg.psql("SELECT count(*) FROM %s" % t, db)) for t in TABLES}


def migrate(gw, src, dst):
    return gw.cli("user", "migrate", "--from", src, "--to", dst)


def _fail(gw, ctx, name, source):
    b = Browser(gw.port, ctx, source)
    r = b.get("/_pbxgate/login")
    act, fields = [(a, f) for a, f in forms(r.body) if "password" in f][0]
    fields.update(username=name, password="wrong password")
    return b.post_form(act or "/_pbxgate/login", fields)


def _logout(b):
    r = b.get("/_pbxgate/account")
    assert r.status == 200, r
    logout = [f for act, f in forms(r.body) if act == "/_pbxgate/logout"][0]
    assert b.post_form("/_pbxgate/logout", logout).status in (200, 303)


def filled_sqlite_gateway(make_auth_gateway, upstream, workdir, ctx):
    """A gateway on SQLite with one row of every kind the issue names."""
    key = os.path.join(workdir, "mig-%s.key" % uuid.uuid4().hex[:8])
    a = make_auth_gateway(upstream.port, auth_extra=FAST + [
        "secret_key %s" % key, "login_max_failures 3"])
    eb, secret, _ = enrol(a, ctx, "alice")
    live, r = login(a, ctx, "alice", secret, eb.recovery[0])
    assert r.status == 303, r
    used = safe_step()
    b, r = login(a, ctx, "alice", secret, step=used)
    assert r.status == 303, r
    cookie = b.jar["__Host-pbxgate"]
    _logout(b)
    assert a.cli("user", "add", "bob", "--enrol").returncode == 0
    r = a.cli("user", "lockdown", "bob", "--allow", "127.0.0.0/8")
    assert r.returncode == 0, r
    link = a.enrol_link("carol")
    for i in range(3):  # login_max_failures 3: a ban on the name
        assert _fail(a, ctx, "bob", "127.0.7.%d" % (i + 1)).status == 401
    return a, key, dict(secret=secret, recovery=eb.recovery, used=used, cookie=cookie,
                        link=link, live=live.jar["__Host-pbxgate"])


def test_sqlite_to_postgresql_then_a_gateway_on_the_copy(postgres, make_auth_gateway, upstream,
                                                         workdir, ctx):
    a, key, st = filled_sqlite_gateway(make_auth_gateway, upstream, workdir, ctx)
    url = postgres.new_database()
    r = migrate(a, "sqlite:" + a.db, url)
    assert r.returncode == 0, r
    assert r.stderr == b"", r
    before = sqlite_counts(a.db)
    assert pg_counts(postgres, url) == before
    assert before["users"] == 3 and before["recovery"] == 10 and before["enrol"] >= 1, before
    assert r.stdout.decode() == "copied sqlite:%s to %s: %s\n" % (
        a.db, url, " ".join("%s %d" % (t, before[t]) for t in TABLES)), r.stdout
    a.stop()

    g = make_auth_gateway(upstream.port, auth_extra=FAST + [
        "user_db %s" % url, "secret_key %s" % key, "login_max_failures 3"])
    # the revoked session stays revoked, a live one stays signed in
    t = Browser(g.port, ctx)
    t.jar["__Host-pbxgate"] = st["cookie"]
    assert t.get("/app").status == 302
    t.jar["__Host-pbxgate"] = st["live"]
    assert t.get("/app").status == 200
    # the TOTP step used before the copy stays used (totp_last copied);
    # one failure at a time: two in a row would make the name back off
    _, r = login(g, ctx, "alice", st["secret"], step=st["used"])
    assert r.status == 401 and b'name="code"' in r.body, r  # the code refused
    # an unused recovery code works (the same hashes), the used one stays used
    _, r = login(g, ctx, "alice", st["secret"], st["recovery"][1])
    assert r.status == 303, r
    _, r = login(g, ctx, "alice", st["secret"], st["recovery"][0])
    assert r.status == 401 and b'name="code"' in r.body, r
    # a fresh code signs in: the secret sealed under alice's id still opens
    wait_until(lambda: time.time() // STEP > st["used"], timeout=STEP + 5, interval=0.2,
               what="a TOTP step not used yet")
    b, r = login(g, ctx, "alice", st["secret"])
    assert r.status == 303, r
    assert b.get("/app").status == 200
    # the lockdown, the ban and the unused enrolment link came along
    r = g.cli("user", "show", "bob")
    assert r.returncode == 0 and b"lockdown: 127.0.0.0/8" in r.stdout, r
    r = g.cli("ban", "list")
    assert r.returncode == 0 and b"bob" in r.stdout, r
    enrol_with_link(g, ctx, st["link"])
    # a new user takes an id past the copied ones (the sequence was moved)
    r = g.cli("user", "add", "dora", "--enrol")
    assert r.returncode == 0, r
    db = url.split("?")[0].rsplit("/", 1)[1]
    assert postgres.psql("SELECT id FROM users WHERE name = 'dora'", db) == "4"


def test_postgresql_back_to_sqlite(postgres, make_auth_gateway, upstream, workdir, ctx):
    key = os.path.join(workdir, "back-%s.key" % uuid.uuid4().hex[:8])
    url = postgres.new_database()
    g = make_auth_gateway(upstream.port, auth_extra=FAST + [
        "user_db %s" % url, "secret_key %s" % key])
    _, secret, _ = enrol(g, ctx, "erin")
    g.enrol_link("fred")
    out = os.path.join(g.dir, "back.db")
    r = migrate(g, url, "sqlite:" + out)
    assert r.returncode == 0, r
    assert sqlite_counts(out) == pg_counts(postgres, url)
    assert sqlite_counts(out)["users"] == 2



def sqlite_store_id(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("SELECT v FROM meta WHERE k = 'store_id'").fetchone()[0]
    finally:
        db.close()


def test_store_identity_copied_so_sessions_survive(postgres, make_auth_gateway, upstream,
                                                   workdir, ctx):
    """The identity sealed into every cookie moves with the rows: a session
    of the SQLite store is valid on the PostgreSQL copy, and refused on a
    PostgreSQL store of the same key that was not copied from it, whose
    user 1 (same id, same epoch) is someone else."""
    key = os.path.join(workdir, "id-%s.key" % uuid.uuid4().hex[:8])
    a = make_auth_gateway(upstream.port, auth_extra=FAST + ["secret_key %s" % key])
    _, secret, _ = enrol(a, ctx, "alice")
    b, r = login(a, ctx, "alice", secret)
    assert r.status == 303, r
    cookie = b.jar["__Host-pbxgate"]
    url = postgres.new_database()
    assert migrate(a, "sqlite:" + a.db, url).returncode == 0
    a.stop()
    db = url.split("?")[0].rsplit("/", 1)[1]
    assert postgres.psql("SELECT v FROM meta WHERE k = 'store_id'", db) == \
        str(sqlite_store_id(a.db))

    other = postgres.new_database()
    o = make_auth_gateway(upstream.port, auth_extra=FAST + [
        "user_db %s" % other, "secret_key %s" % key])
    enrol(o, ctx, "admin")
    odb = other.split("?")[0].rsplit("/", 1)[1]
    assert postgres.psql("SELECT id, epoch FROM users", odb) == \
        postgres.psql("SELECT id, epoch FROM users", db)
    t = Browser(o.port, ctx)
    t.jar["__Host-pbxgate"] = cookie
    r = t.get("/app")
    assert r.status == 302 and r.get("location") == "/_pbxgate/login?rd=/app", r
    o.stop()

    g = make_auth_gateway(upstream.port, auth_extra=FAST + [
        "user_db %s" % url, "secret_key %s" % key])
    t = Browser(g.port, ctx)
    t.jar["__Host-pbxgate"] = cookie
    assert t.get("/app").status == 200
    r = g.cli("session", "list")
    assert r.returncode == 0 and b"alice" in r.stdout, r


# ---- each bad input: exit status, message, nothing written ----

def test_missing_source_file_refused_and_not_created(make_auth_gateway, upstream, postgres):
    g = make_auth_gateway(upstream.port, start=False)
    src = os.path.join(g.dir, "none.db")
    url = postgres.new_database()
    r = migrate(g, "sqlite:" + src, url)
    assert r.returncode == 1, r
    assert r.stderr.decode() == PREFIX + "--from sqlite:%s: No such file or directory: name " \
        "an existing user store (nothing was created)\n" % src
    assert not os.path.exists(src)
    assert r.stdout == b""


def test_empty_source_file_refused_and_left_empty(make_auth_gateway, upstream, postgres):
    g = make_auth_gateway(upstream.port, start=False)
    src = os.path.join(g.dir, "empty.db")
    open(src, "w").close()
    r = migrate(g, "sqlite:" + src, postgres.new_database())
    assert r.returncode == 1, r
    assert r.stderr.decode() == PREFIX + "--from sqlite:%s: an empty file, not a user store: " \
        "name an existing one\n" % src
    assert os.path.getsize(src) == 0


def test_non_empty_target_refused_untouched(postgres, make_auth_gateway, upstream, ctx):
    g = make_auth_gateway(upstream.port)
    enrol(g, ctx, "gina")
    url = postgres.new_database()
    assert migrate(g, "sqlite:" + g.db, url).returncode == 0
    g.cli("user", "add", "hugo", "--enrol")
    r = migrate(g, "sqlite:" + g.db, url)
    assert r.returncode == 1, r
    assert r.stderr.decode() == PREFIX + "the target is not empty (1 rows in users): migrate " \
        "copies into a new store only; rolled back, nothing was copied\n"
    db = url.split("?")[0].rsplit("/", 1)[1]
    assert postgres.psql("SELECT string_agg(name, ',') FROM users", db) == "gina"


def test_unknown_scheme_refused(make_auth_gateway, upstream):
    g = make_auth_gateway(upstream.port, start=False)
    r = migrate(g, "sqlite:" + g.db, "mysql://localhost/users")
    assert r.returncode == 2, r
    assert r.stderr.decode().startswith(
        PREFIX + "--to \"mysql://localhost/users\": unknown store: expected sqlite:FILE or "
        "postgresql://...\nusage: pbxgate user migrate --from STORE --to STORE\n"), r.stderr
    r = migrate(g, g.db, "sqlite:" + g.db + ".new")
    assert r.returncode == 2, r
    assert r.stderr.decode().startswith(PREFIX + "--from \"%s\": unknown store" % g.db), r
    assert not os.path.exists(g.db + ".new")


def test_same_store_as_source_and_target_refused(make_auth_gateway, upstream, ctx, postgres):
    g = make_auth_gateway(upstream.port)
    enrol(g, ctx, "ivan")
    before = sqlite_counts(g.db)
    same = PREFIX + "--from and --to name the same store: copy into a new, empty one\n"
    # the same file under another name
    r = migrate(g, "sqlite:" + g.db, "sqlite:" + os.path.join(g.dir, ".", "users.db"))
    assert r.returncode == 1 and r.stderr.decode() == same, r
    url = postgres.new_database()
    r = migrate(g, url, url)
    assert r.returncode == 1 and r.stderr.decode() == same, r
    assert sqlite_counts(g.db) == before


def test_unreachable_target_refused(make_auth_gateway, upstream, ctx, workdir):
    g = make_auth_gateway(upstream.port)
    enrol(g, ctx, "jack")
    nowhere = os.path.join(workdir, "no-server-%s" % uuid.uuid4().hex[:8])
    url = "postgresql:///postgres?host=%s&user=pbxgate" % nowhere
    t0 = time.monotonic()
    r = migrate(g, "sqlite:" + g.db, url)
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert err.startswith(PREFIX + "target: %s: cannot connect to PostgreSQL: " % url), err
    assert err.endswith("; nothing was copied\n"), err
    assert time.monotonic() - t0 < 15


def test_missing_to_is_a_usage_error(make_auth_gateway, upstream):
    g = make_auth_gateway(upstream.port, start=False)
    r = g.cli("user", "migrate", "--from", "sqlite:" + g.db)
    assert r.returncode == 2, r
    assert r.stderr.decode().startswith(PREFIX + "both --from and --to are needed\n"), r


def test_failure_late_in_the_copy_leaves_the_target_empty(postgres, make_auth_gateway, upstream,
                                                          ctx):
    """regulate is copied last: a damaged row there fails the copy after
    users, recovery codes and sessions were put, and all of it rolls back."""
    g = make_auth_gateway(upstream.port)
    enrol(g, ctx, "kate")
    db = sqlite3.connect(g.db)
    with db:
        db.execute("INSERT INTO regulate VALUES(?, 1, 1, 1, 0)", ("u:" + "x" * 5000,))
    db.close()
    url = postgres.new_database()
    r = migrate(g, "sqlite:" + g.db, url)
    assert r.returncode == 1, r
    assert r.stderr.decode() == PREFIX + "source regulate, row 1, column 1: 5002 bytes, more " \
        "than pbxgate writes (4096): the source store is damaged; rolled back, nothing was " \
        "copied\n"
    assert set(pg_counts(postgres, url).values()) == {0}
    # a SQLite target the command created is removed again
    out = os.path.join(g.dir, "copy.db")
    r = migrate(g, "sqlite:" + g.db, "sqlite:" + out)
    assert r.returncode == 1 and b"the source store is damaged" in r.stderr, r
    assert not [f for f in os.listdir(g.dir) if f.startswith("copy.db")]


def test_count_mismatch_rolls_back(make_auth_gateway, upstream, ctx):
    """A target that loses rows behind the inserts' backs (a trigger here):
    every put succeeds, the counts before the commit do not agree, and
    nothing stays."""
    g = make_auth_gateway(upstream.port)
    enrol(g, ctx, "lara")
    t = make_auth_gateway(upstream.port, start=False)
    assert t.cli("user", "list").returncode == 0  # an empty store at t.db
    db = sqlite3.connect(t.db)
    with db:
        db.execute("CREATE TRIGGER eat AFTER INSERT ON recovery BEGIN"
                   " DELETE FROM recovery WHERE rowid = new.rowid; END")
    db.close()
    r = migrate(g, "sqlite:" + g.db, "sqlite:" + t.db)
    assert r.returncode == 1, r
    assert r.stderr.decode() == PREFIX + "recovery: 10 rows in the source, 10 copied, 0 in " \
        "the target; rolled back, nothing was copied\n"
    assert set(sqlite_counts(t.db).values()) == {0}
    assert os.path.exists(t.db)  # not created by the command: kept
