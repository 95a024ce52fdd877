"""test_session_store.py -- a session cookie is valid on the user store that
made it only: two SQLite stores, each with a user of id 1 and the same epoch
(alice on one, admin on the other), under one secret_key. A cookie of the first is
refused on the second exactly as a forged one is (the store's identity is in
the cookie's AAD), whether a second gateway or the same one restarted on the
other store presents it, and still accepted on its own store."""

import os
import sqlite3
import uuid

from auth_helpers import Browser, enrol, login, make_auth_gateway  # noqa: F401
from test_pgstore import FAST

COOKIE = "__Host-pbxgate"


def read_only(path, sql):
    """All rows of `sql` on the SQLite store at path, opened read-only."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def ids_and_epochs(path):
    return read_only(path, "SELECT id, epoch FROM users ORDER BY id")


def store_id(path):
    return read_only(path, "SELECT v FROM meta WHERE k = 'store_id'")


def present(gw, ctx, cookie):
    """GET /app with only `cookie` as the session: (status, Location)."""
    t = Browser(gw.port, ctx)
    t.jar[COOKIE] = cookie
    r = t.get("/app")
    return r.status, r.get("location")


def two_stores(make_auth_gateway, upstream, workdir, ctx):
    """Gateways a (alice) and b (admin) on their own stores, one key; the
    cookie alice got on a."""
    key = os.path.join(workdir, "shared-%s.key" % uuid.uuid4().hex[:8])
    a = make_auth_gateway(upstream.port, auth_extra=FAST + ["secret_key %s" % key])
    b = make_auth_gateway(upstream.port, auth_extra=FAST + ["secret_key %s" % key])
    _, secret, _ = enrol(a, ctx, "alice")
    enrol(b, ctx, "admin")
    # what made the cookie replayable: the same id and epoch on both
    assert ids_and_epochs(a.db) == ids_and_epochs(b.db), ids_and_epochs(b.db)
    assert ids_and_epochs(a.db)[0][0] == 1, ids_and_epochs(a.db)
    assert store_id(a.db) != store_id(b.db)
    br, r = login(a, ctx, "alice", secret)
    assert r.status == 303, r
    assert br.get("/app").status == 200
    return a, b, br.jar[COOKIE]


def forged(cookie):
    """The same cookie with its last hex digit changed: what an invalid
    cookie gets is what a cookie of another store must get."""
    return cookie[:-1] + ("0" if cookie[-1] != "0" else "1")


def test_cookie_of_store_a_refused_by_a_gateway_on_store_b(make_auth_gateway, upstream,
                                                           workdir, ctx):
    a, b, cookie = two_stores(make_auth_gateway, upstream, workdir, ctx)
    status, location = present(b, ctx, cookie)
    assert (status, location) == present(b, ctx, forged(cookie)), (status, location)
    assert status == 302 and location == "/_pbxgate/login?rd=/app", (status, location)
    assert present(a, ctx, cookie) == (200, None)  # its own store still takes it


def test_cookie_refused_when_the_gateway_restarts_on_another_store(make_auth_gateway,
                                                                   upstream, workdir, ctx):
    a, b, cookie = two_stores(make_auth_gateway, upstream, workdir, ctx)
    b.stop()
    a.stop()
    a.auth_extra.append("user_db %s" % b.db)  # the later user_db wins
    a.write_config()
    a.start()
    status, location = present(a, ctx, cookie)
    assert (status, location) == present(a, ctx, forged(cookie)), (status, location)
    assert status == 302 and location == "/_pbxgate/login?rd=/app", (status, location)
    a.stop()
    a.auth_extra.pop()  # back on its own store: the cookie works again
    a.write_config()
    a.start()
    assert present(a, ctx, cookie) == (200, None)
