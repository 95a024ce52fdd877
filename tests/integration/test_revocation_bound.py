"""test_revocation_bound.py -- revocations are bounded per user (docs/auth.md,
Sessions): a user who signs in and out more than AUTH_REVOKED_PER_USER times
within the session lifetime is signed out everywhere once, instead of growing
the revocation table every gateway loads until a revocation is dropped (the
flood that un-revoked a stolen cookie). The same on SQLite and PostgreSQL.
"""

import os
import sqlite3
import uuid

import pytest

from auth_helpers import PASSWORD, Browser, forms, login, make_auth_gateway  # noqa: F401
from test_pgstore import FAST, postgres  # noqa: F401

N = 32  # AUTH_REVOKED_PER_USER, auth/auth_priv.h
ACCOUNT = "/_pbxgate/account"
REVOKED_SQL = ("SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id"
               " WHERE u.name = 'mallory' AND s.revoked = 1")


def _sign_in(gw, ctx, name, n):
    """A password-only sign-in from an address of its own (n), so that no
    per-address counter is what the test measures."""
    b = Browser(gw.port, ctx, "127.0.%d.%d" % (10 + n // 200, 1 + n % 200))
    _, r = login(gw, ctx, name, None, browser=b, rd=ACCOUNT)
    assert r.status == 303 and r.get("location") == ACCOUNT, r
    assert b.jar.get("__Host-pbxgate"), r
    return b


def _sign_out(b):
    r = b.get(ACCOUNT)
    assert r.status == 200, r
    logout = [f for act, f in forms(r.body) if act == "/_pbxgate/logout"]
    assert logout, r.body
    r = b.post_form("/_pbxgate/logout", logout[0])
    assert r.status == 303 and r.get("location") == "/_pbxgate/login", r


def _refused(r):
    """The account page asks a session: without one, the login page."""
    return r.status == 303 and r.get("location") == "/_pbxgate/login?rd=" + ACCOUNT


def _flood(gw, ctx):
    for name in ("mallory", "olga"):
        r = gw.cli("user", "add", name, input=(PASSWORD + "\n").encode())
        assert r.returncode == 0, r
    kept = _sign_in(gw, ctx, "mallory", 0)  # e.g. a cookie stolen earlier
    other = _sign_in(gw, ctx, "olga", 1)
    for i in range(N):
        _sign_out(_sign_in(gw, ctx, "mallory", 2 + i))
    assert kept.get(ACCOUNT).status == 200, "N sign-outs end only their own sessions"
    _sign_out(_sign_in(gw, ctx, "mallory", 2 + N))  # the N+1-th
    r = kept.get(ACCOUNT)
    assert _refused(r), ("the cookie made before the N+1-th sign-out", r, r.get("location"))
    fresh = _sign_in(gw, ctx, "mallory", 3 + N)
    assert fresh.get(ACCOUNT).status == 200, "a sign-in after the bump works"
    assert other.get(ACCOUNT).status == 200, "other users' sessions are untouched"
    return kept, fresh


def test_flood_of_sign_outs_ends_older_sessions_sqlite(make_auth_gateway, upstream, ctx):
    gw = make_auth_gateway(upstream.port, auth_extra=FAST)
    _flood(gw, ctx)
    # the bump deleted mallory's rows; the fresh session is not revoked
    assert _revoked_rows_sqlite(gw.db) == 0


def test_flood_of_sign_outs_ends_older_sessions_postgresql(postgres, make_auth_gateway,
                                                           upstream, ctx, workdir):
    url = postgres.new_database()
    key = os.path.join(workdir, "bound-%s.key" % uuid.uuid4().hex[:8])
    gw = make_auth_gateway(upstream.port, auth_extra=FAST + [
        "user_db %s" % url, "secret_key %s" % key])
    _flood(gw, ctx)
    # the bump deleted mallory's rows; the fresh session is not revoked
    assert postgres.psql(REVOKED_SQL, url.split("/")[3].split("?")[0]) == "0"


def _revoked_rows_sqlite(path):
    assert os.path.exists(path), path
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute(REVOKED_SQL).fetchone()[0]
    finally:
        db.close()


if __name__ == "__main__":
    pytest.main([__file__])
