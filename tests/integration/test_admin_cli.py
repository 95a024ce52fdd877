"""test_admin_cli.py -- the admin's views of the user store (issue 15 item 5):
`pbxgate session list|revoke`, `pbxgate ban list|clear`, `pbxgate user list
--json`, run as separate processes beside a running gateway (real binary,
real TLS, real SQLite store), and their --help and exit statuses."""

import json
import os
import subprocess
import time

import pytest

from auth_helpers import Browser, enrol, form_with, login, make_auth_gateway  # noqa: F401
from helpers import wait_until


@pytest.fixture
def agw(make_auth_gateway, upstream):
    return make_auth_gateway(upstream.port)


def logged_in(b):
    return b.get("/app").status == 200


def on_login_page(b):
    r = b.get("/app")
    return r.status == 302 and (r.get("location") or "").startswith("/_pbxgate/login")


def sessions(gw, *args):
    r = gw.cli("session", "list", "--json", *args)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def bans(gw):
    r = gw.cli("ban", "list", "--json")
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def fail_login(gw, ctx, name, source):
    b = Browser(gw.port, ctx, source)
    _, fields = form_with(b.get("/_pbxgate/login").body, "password")
    fields.update(username=name, password="not the password at all")
    r = b.post_form("/_pbxgate/login", fields)
    assert r.status == 401, r


# ---------------------------------------------------------------- sessions

def test_session_list_shows_each_login(agw, ctx):
    eb, secret, _ = enrol(agw, ctx, "Alice")
    a, r = login(agw, ctx, "alice", secret)
    assert r.status == 303 and logged_in(a), r
    b, r = login(agw, ctx, "alice", secret, eb.recovery[0])  # a code is used once
    assert r.status == 303 and logged_in(b), r
    got = [s for s in sessions(agw) if s["user"] == "alice"]
    assert len(got) >= 2, got
    for s in got:
        assert set(s) == {"id", "user", "created", "expires", "mfa", "source_address"}, s
        assert len(s["id"]) == 16 and int(s["id"], 16) >= 0, s
        assert s["mfa"] is True and s["source_address"] == "127.0.0.1", s
        assert 0 < s["created"] <= time.time() + 1 and s["expires"] > s["created"], s
        # the public id is not the cookie's sealed session id
        assert s["id"] not in a.jar.get("__Host-pbxgate") + b.jar.get("__Host-pbxgate")
    assert sessions(agw, "--user", "ALICE") == sessions(agw, "--user", "alice")
    assert sessions(agw, "--user", "nobody") == []
    table = agw.cli("session", "list")
    assert table.returncode == 0 and table.stdout.startswith(b"ID "), table
    assert all(s["id"].encode() in table.stdout for s in got), table.stdout


def test_session_revoke_by_id_ends_that_cookie_only(agw, ctx):
    eb, secret, _ = enrol(agw, ctx, "bob")
    a, r = login(agw, ctx, "bob", secret)
    assert r.status == 303, r
    before = {s["id"] for s in sessions(agw, "--user", "bob")}
    b, r = login(agw, ctx, "bob", secret, eb.recovery[0])
    assert r.status == 303 and logged_in(a) and logged_in(b), r
    new = [s["id"] for s in sessions(agw, "--user", "bob") if s["id"] not in before]
    assert len(new) == 1, new
    r = agw.cli("session", "revoke", new[0])
    assert r.returncode == 0, r
    wait_until(lambda: on_login_page(b), timeout=10, interval=0.1,
               what="the revoked session's cookie to get the login page")
    assert logged_in(a)  # the user's other session survives
    assert new[0] not in {s["id"] for s in sessions(agw, "--user", "bob")}
    # a second revoke of the same id, and an unknown id: failures
    assert agw.cli("session", "revoke", new[0]).returncode == 1
    assert agw.cli("session", "revoke", "0123456789abcdef").returncode == 1


def test_session_revoke_user_ends_all(agw, ctx):
    eb, secret, _ = enrol(agw, ctx, "carl")
    browsers = []
    for code in eb.recovery[:2]:
        b, r = login(agw, ctx, "carl", secret, code)
        assert r.status == 303 and logged_in(b), r
        browsers.append(b)
    r = agw.cli("session", "revoke", "--user", "CARL")
    assert r.returncode == 0, r
    for b in browsers:
        wait_until(lambda: on_login_page(b), timeout=10, interval=0.1,
                   what="every session of the user to end")
    assert sessions(agw, "--user", "carl") == []
    assert agw.cli("session", "revoke", "--user", "nobody").returncode == 1


@pytest.mark.parametrize("bad", ["0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0",
                                 "x123456789abcdef", "../../etc"])
def test_session_revoke_malformed_id_fails(agw, bad):
    r = agw.cli("session", "revoke", bad)
    assert r.returncode == 1 and b"not a session id" in r.stderr, r


# ---------------------------------------------------------------- bans

def test_ban_list_and_clear_address(agw, ctx):
    _, secret, _ = enrol(agw, ctx, "dora")
    for i in range(5):
        fail_login(agw, ctx, "ghost%d" % i, "127.0.4.1")
    got = [x for x in bans(agw) if x["kind"] == "address"]
    assert len(got) == 1 and got[0]["value"] == "127.0.4.1", got
    assert set(got[0]) == {"kind", "value", "failures", "until"}
    assert got[0]["failures"] == 5 and got[0]["until"] > time.time(), got
    _, r = login(agw, ctx, "dora", secret, source="127.0.4.1")
    assert r.status == 401, r  # banned there
    # the IPv4-mapped spelling names the same counter
    r = agw.cli("ban", "clear", "::ffff:127.0.4.1")
    assert r.returncode == 0, r
    assert [x for x in bans(agw) if x["kind"] == "address"] == []
    b, r = login(agw, ctx, "dora", secret, source="127.0.4.1")
    assert r.status == 303 and logged_in(b), r
    assert agw.cli("ban", "clear", "127.0.4.1").returncode == 1  # nothing left


def test_ban_list_and_clear_name(agw, ctx):
    _, secret, _ = enrol(agw, ctx, "eve")
    for i in range(5):
        fail_login(agw, ctx, "eve", "127.0.5.%d" % (i + 1))
    got = [x for x in bans(agw) if x["kind"] == "name"]
    assert [x["value"] for x in got] == ["eve"], got
    _, r = login(agw, ctx, "eve", secret, source="127.0.5.9")
    assert r.status == 401, r
    table = agw.cli("ban", "list")
    assert table.returncode == 0 and b"name" in table.stdout and b"eve" in table.stdout
    r = agw.cli("ban", "clear", "EVE")  # folded as names are
    assert r.returncode == 0, r
    assert bans(agw) == []
    b, r = login(agw, ctx, "eve", secret, source="127.0.5.9")
    assert r.status == 303 and logged_in(b), r


def test_user_list_json(agw, ctx):
    assert agw.cli("user", "add", "Frank", "--role", "admin", "--email", "f@example.org",
                   "--group", "ops", input=b"a long enough password\n").returncode == 0
    assert agw.cli("user", "add", "gina", "--enrol").returncode == 0
    r = agw.cli("user", "list", "--json")
    assert r.returncode == 0, r
    users = {u["name"]: u for u in json.loads(r.stdout)}
    assert users["frank"] == {"name": "frank", "role": "admin", "disabled": False,
                              "totp": False, "password_set": True,
                              "email": "f@example.org", "groups": "ops"}
    assert users["gina"]["password_set"] is False and users["gina"]["role"] == "user"


# ---------------------------------------------------------------- conventions

HELP = [("session",), ("session", "list"), ("session", "revoke"), ("ban",),
        ("ban", "list"), ("ban", "clear"), ("user", "list")]


@pytest.mark.parametrize("words", HELP, ids=" ".join)
def test_help_without_config(pbxgate_bin, words):
    r = subprocess.run([pbxgate_bin] + list(words) + ["--help"], capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(b"usage: pbxgate "), r
    assert r.stderr == b"", r


USAGE = [("session",), ("session", "frob"), ("session", "list", "extra"),
         ("session", "list", "--user"), ("session", "revoke"),
         ("session", "revoke", "a", "b"), ("session", "revoke", "--user"),
         ("ban",), ("ban", "frob"), ("ban", "list", "--user", "x"), ("ban", "clear"),
         ("ban", "clear", "a", "b"), ("user", "list", "--yaml")]


@pytest.mark.parametrize("words", USAGE, ids=" ".join)
def test_usage_error_exit_2(agw, words):
    r = agw.cli(*words)
    assert r.returncode == 2 and b"usage: pbxgate" in r.stderr, r
    assert r.stdout == b"", r


def test_user_add_refuses_a_store_at_its_bound(make_auth_gateway, upstream):  # noqa: F811
    """A store holding 100,000 users (the in-memory tables' bound) takes no
    more: `user add` and `user import` fail naming the bound and what to
    do, and nothing is written (one user more and every gateway's load
    would refuse the whole store). After one is deleted, add works."""
    import sqlite3
    gw = make_auth_gateway(upstream.port, start=False)
    assert gw.cli("user", "add", "first", "--enrol").returncode == 0
    db = sqlite3.connect(gw.db)
    db.execute("WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n"
               " WHERE i < 100000) INSERT INTO users(name, created, updated)"
               " SELECT 'u' || i, 0, 0 FROM n")
    db.commit()
    why = ("the store holds 100000 users, the most a gateway keeps in memory; "
           "remove users first (pbxgate user del)")
    r = gw.cli("user", "add", "one-more", "--enrol")
    assert r.returncode == 1, r
    assert r.stderr.decode().strip().splitlines() == [
        'pbxgate: cannot add "one-more": %s' % why], r.stderr
    csv = os.path.join(gw.dir, "more.csv")
    with open(csv, "w") as f:
        f.write("name\nanother\n")
    r = gw.cli("user", "import", csv)
    assert r.returncode != 0, r
    assert ('cannot add "another": %s' % why) in r.stderr.decode(), r.stderr
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 100000
    db.close()
    assert gw.cli("user", "del", "first").returncode == 0
    assert gw.cli("user", "add", "one-more", "--enrol").returncode == 0
