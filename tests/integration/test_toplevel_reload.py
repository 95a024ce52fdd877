"""test_toplevel_reload.py -- a reload that changes the top level's user_db
or login settings in a config without sites (issue 17 follow-up): the top
level's login context is taken per snapshot like a site's
(gateway/site_auth.c), so the new store serves new requests at once, an
unchanged one keeps its in-memory state, one that cannot be opened refuses
the reload, and the old store closes once nothing holds it."""

import os
import subprocess
import uuid

import pytest

from auth_helpers import PASSWORD, AuthGateway, Browser, form_with, forms
from helpers import wait_until

CLOSED = "top level: previous login context closed"
RETIRED = "top level: the login context in use before this reload closes"
POLICY = "allow path ^/_pbxgate/\nlogin path ^/app/\ndefault allow\n"
COOKIE = "__Host-pbxgate"


class TopGateway(AuthGateway):
    """An AuthGateway whose user_db is self.user_db (None: no user_db line,
    and no secret_key either, which needs one)."""

    def config_text(self):
        default = "user_db %s" % os.path.join(self.dir, "users.db")
        lines = super().config_text().splitlines()
        if self.user_db is None:
            lines = [l for l in lines if l != default]
        else:
            lines = ["user_db %s" % self.user_db if l == default else l for l in lines]
        return "\n".join(lines) + "\n"

    def use(self, db):
        self.user_db = db
        self.write_config()

    def user_add(self, name):
        r = subprocess.run([self.binary, "user", "add", name, "-c", self.conf],
                           input=PASSWORD + "\n", capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr


@pytest.fixture
def top(pbxgate_bin, workdir, certs, make_upstream):
    """A gateway without sites, user_db a.db with alice, started."""
    from conftest import _finish_gateway
    up = make_upstream()
    gw = TopGateway.__new__(TopGateway)
    gw.user_db = None
    AuthGateway.__init__(gw, pbxgate_bin, workdir, [certs.main], up.port,
                         policy=POLICY, name="gw-top-%s" % uuid.uuid4().hex[:8])
    gw.use(os.path.join(gw.dir, "a.db"))
    gw.user_add("alice")
    gw.start()
    yield gw
    _finish_gateway(gw)


def login(gw, ctx, name, password=PASSWORD):
    b = Browser(gw.port, ctx)
    r = b.get("/_pbxgate/login?rd=/app/")
    assert r.status == 200, r
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password=password)
    return b, b.post_form(act or "/_pbxgate/login", fields)


def signed_in(gw, ctx, name):
    b, r = login(gw, ctx, name)
    assert r.status in (302, 303), r
    assert b.get("/app/x").status == 200
    return b


def to_login(r):
    return r.status in (302, 303) and "/_pbxgate/login" in (r.get("location") or "")


def test_reload_switching_user_db_serves_the_new_store(top, ctx):
    """user_db a.db -> b/b.db (bob's, its own secret_key next to it): after
    the reload bob signs in, alice does not, alice's cookie made on a.db
    is sent to the login page; a.db's context closes."""
    alice = signed_in(top, ctx, "alice")
    os.mkdir(os.path.join(top.dir, "b"))
    top.use(os.path.join(top.dir, "b", "b.db"))
    top.user_add("bob")         # the file on disk names b.db now
    top.reload()
    signed_in(top, ctx, "bob")
    _, r = login(top, ctx, "alice")
    assert r.status == 401, r
    assert to_login(alice.get("/app/after")), "a.db's session passed on b.db"
    wait_until(lambda: CLOSED in top.stderr(), timeout=10, interval=0.1,
               what="a.db's context closed")


def test_store_switch_under_the_same_key_refuses_the_old_sessions(top, ctx):
    """a.db -> b.db in the same directory shares the default secret_key,
    and bob has id 1 on b.db as alice has on a.db: alice's cookie is still
    refused on b.db (each store's identity is sealed into its cookies),
    never taken for bob's; bob signs in."""
    alice = signed_in(top, ctx, "alice")
    top.use(os.path.join(top.dir, "b.db"))
    top.user_add("bob")
    top.reload()
    assert to_login(alice.get("/_pbxgate/account")), "a.db's session passed on b.db"
    assert to_login(alice.get("/app/after"))
    signed_in(top, ctx, "bob")


def test_reload_back_to_the_first_store_honours_its_sessions(top, ctx):
    """a.db -> b/b.db -> a.db: the last reload opens a.db again (its first
    context closed). A session lives in the store and under its key, not
    in the context: alice's cookie from before passes again, bob's from
    b.db (another key) does not."""
    alice = signed_in(top, ctx, "alice")
    os.mkdir(os.path.join(top.dir, "b"))
    top.use(os.path.join(top.dir, "b", "b.db"))
    top.user_add("bob")
    top.reload()
    bob = signed_in(top, ctx, "bob")
    assert to_login(alice.get("/app/on-b"))
    wait_until(lambda: CLOSED in top.stderr(), timeout=10, interval=0.1,
               what="a.db's first context closed")
    top.use(os.path.join(top.dir, "a.db"))
    top.reload()
    assert alice.get("/app/again").status == 200
    assert to_login(bob.get("/app/again"))


def test_unchanged_reload_keeps_the_context_and_its_revocations(top, ctx):
    """A sign-out made before a reload that changes nothing of the login
    settings is still in force after it: the context (its session table)
    was kept, and no context was retired or closed."""
    alice = signed_in(top, ctx, "alice")
    cookie = alice.jar[COOKIE]
    r = alice.get("/_pbxgate/account")
    assert r.status == 200, r
    logout = [f for a, f in forms(r.body) if a == "/_pbxgate/logout"][0]
    assert alice.post_form("/_pbxgate/logout", logout).status in (200, 303)
    top.extra.append("# a change that is not a login setting")
    top.write_config()
    gen = top.generation()
    top.reload()
    assert top.generation() == gen + 1
    thief = Browser(top.port, ctx)
    thief.jar[COOKIE] = cookie
    assert to_login(thief.get("/app/stolen"))
    other = signed_in(top, ctx, "alice")
    top.reload()
    assert other.get("/app/kept").status == 200
    err = top.stderr()
    assert RETIRED not in err and CLOSED not in err, err[-2000:]


def test_unchanged_reload_keeps_the_bans(top, ctx):
    """With login_max_failures 1, alice banned before an unchanged reload
    is still banned after it."""
    top.auth_extra.append("login_max_failures 1")
    top.write_config()
    top.reload()
    _, r = login(top, ctx, "alice", "not the password")
    assert r.status == 401, r
    top.reload()
    _, r = login(top, ctx, "alice")
    assert r.status != 303 and r.status != 302, r


def test_reload_with_a_store_that_cannot_open_is_refused(top, ctx):
    """user_db in a directory that does not exist: the reload fails naming
    the file, the generation stays, alice still signs in from a.db."""
    gen = top.generation()
    bad = os.path.join(top.dir, "no-such-dir", "a.db")
    top.use(bad)
    top.reload(expect="error")
    assert top.generation() == gen
    line = [l for l in top.stderr().splitlines() if "reload failed: " in l]
    assert len(line) == 1, top.stderr()[-2000:]
    assert "reload failed: %s: cannot open user store: " % bad in line[0], line
    signed_in(top, ctx, "alice")
    assert RETIRED not in top.stderr()


def test_reload_removing_then_adding_user_db(top, ctx):
    """Without user_db the login rule denies (403, as at start without
    one), a.db's context closes; adding user_db back opens it again."""
    alice = signed_in(top, ctx, "alice")
    top.use(None)
    top.reload()
    assert alice.get("/app/x").status == 403
    assert Browser(top.port, ctx).get("/app/y").status == 403
    wait_until(lambda: CLOSED in top.stderr(), timeout=10, interval=0.1,
               what="a.db's context closed")
    assert "no user_db: policy rules that need a login" in top.stderr()
    top.use(os.path.join(top.dir, "a.db"))
    top.reload()
    signed_in(top, ctx, "alice")


def test_started_without_user_db_gains_one_by_reload(pbxgate_bin, workdir, certs,
                                                     make_upstream, ctx):
    from conftest import _finish_gateway
    up = make_upstream()
    gw = TopGateway.__new__(TopGateway)
    gw.user_db = None
    AuthGateway.__init__(gw, pbxgate_bin, workdir, [certs.main], up.port,
                         policy=POLICY, name="gw-top-%s" % uuid.uuid4().hex[:8])
    try:
        gw.start()
        assert Browser(gw.port, ctx).get("/app/x").status == 403
        gw.use(os.path.join(gw.dir, "a.db"))
        gw.user_add("alice")
        gw.reload()
        signed_in(gw, ctx, "alice")
    finally:
        _finish_gateway(gw)


def open_files(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def test_old_store_file_is_closed_by_the_sweep(top, ctx):
    """The serving child holds a.db open until the sweep closes its
    context: after the switch to b.db no descriptor names a.db."""
    pid = top.child_pid()
    a = os.path.join(top.dir, "a.db")
    try:
        files = open_files(pid)
    except PermissionError:
        pytest.skip("the child's descriptors are not readable here")
    assert a in files, files
    top.use(os.path.join(top.dir, "b.db"))
    top.reload()
    wait_until(lambda: a not in open_files(pid), timeout=10, interval=0.1,
               what="a.db closed by the child")
    assert os.path.join(top.dir, "b.db") in open_files(pid)
    assert CLOSED in top.stderr()


def test_reload_changing_login_threads_says_it_needs_a_restart(top, ctx):
    """The login pool is made once: login_threads is restart-only, and the
    reload says so while the store itself is kept."""
    top.auth_extra.append("login_threads 3")
    top.write_config()
    top.reload()
    assert "login_threads and login_queue changes take effect only after a " \
        "restart" in top.stderr(), top.stderr()[-2000:]
    assert RETIRED not in top.stderr()
    signed_in(top, ctx, "alice")


def _readyz(gw):
    import urllib.error
    try:
        return gw.admin_get("/readyz")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _break_store(gw, db):
    """The store loses the table every refresh reads (test_metrics' way)."""
    import sqlite3
    c = sqlite3.connect(db)
    c.execute("DROP TABLE meta")
    c.commit()
    c.close()
    wait_until(lambda: _readyz(gw)[0] == 503, timeout=15, what="store seen unreadable")


@pytest.mark.parametrize("to", ["another store", "no user_db"])
def test_readyz_leaves_an_unreadable_store_behind(top, to):
    """/readyz said the store was unreadable; a reload away from it (to a
    good store, or to no user_db at all) makes it ready again once the old
    context is closed."""
    _break_store(top, os.path.join(top.dir, "a.db"))
    if to == "no user_db":
        top.use(None)
    else:
        os.mkdir(os.path.join(top.dir, "b"))
        top.use(os.path.join(top.dir, "b", "b.db"))
    top.reload()
    wait_until(lambda: CLOSED in top.stderr(), timeout=10, interval=0.1,
               what="a.db's context closed")
    wait_until(lambda: _readyz(top)[0] == 200, timeout=10, interval=0.1,
               what="ready again")
    assert _readyz(top) == (200, "ready\n")


def test_readyz_ignores_the_store_of_a_previous_context(top, ctx):
    """A tunnel of the old configuration keeps a.db's context open after a
    reload to b.db; a.db then becomes unreadable (the operator moved away
    from it): a warning once, and /readyz stays 200 (the store in force
    is fine), watched over more than two refresh ticks."""
    import time
    from test_sites_run import open_ws
    t = open_ws(top.port, ctx, "localhost")
    try:
        top.use(os.path.join(top.dir, "b.db"))
        top.reload()
        wait_until(lambda: RETIRED in top.stderr(), timeout=5, interval=0.1,
                   what="a.db's context retired")
        import sqlite3
        c = sqlite3.connect(os.path.join(top.dir, "a.db"))
        c.execute("DROP TABLE meta")
        c.commit()
        c.close()
        warn = "warning: user store refresh: top level (its previous login context"
        wait_until(lambda: warn in top.stderr(), timeout=10, interval=0.1,
                   what="the previous context's failure logged")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert _readyz(top) == (200, "ready\n")
            time.sleep(0.2)
        assert top.stderr().count(warn) == 1, top.stderr()[-3000:]
        assert "error: user store refresh" not in top.stderr()
    finally:
        t.close()
    wait_until(lambda: CLOSED in top.stderr(), timeout=10, interval=0.1,
               what="a.db's context closed once the tunnel ended")


def test_old_store_stays_open_while_a_tunnel_holds_it(top, ctx):
    """A WebSocket tunnel opened before the reload holds the snapshot it
    was opened under, and with it a.db's context: the context stays open
    over several sweeps (every 2 s) while the tunnel lives, and closes
    after it ends."""
    import time
    from helpers import ws_frame, ws_read
    from test_sites_run import open_ws
    t = open_ws(top.port, ctx, "localhost")
    try:
        top.use(os.path.join(top.dir, "b.db"))
        top.reload()
        wait_until(lambda: RETIRED in top.stderr(), timeout=5, interval=0.1,
                   what="a.db's context retired")
        # a negative: watched over a bounded window of two sweeps and more
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert CLOSED not in top.stderr(), "closed under a tunnel"
            time.sleep(0.2)
        t.sock.sendall(ws_frame(0x1, b"still"))
        assert ws_read(t.reader) == (0x1, b"still")
    finally:
        t.close()
    wait_until(lambda: CLOSED in top.stderr(), timeout=10, interval=0.1,
               what="a.db's context closed once the tunnel ended")


# ---------------------------------------------------------------- the key file changed in place

def _key_file(gw):
    return os.path.join(gw.dir, "pbxgate-secret.key")


def _write_keys(gw, lines):
    """The key file rewritten in place (same path, mode 0600)."""
    path = _key_file(gw)
    with open(path, "w") as f:
        f.write("".join("%d %s\n" % (kid, key) for kid, key in lines))
    os.chmod(path, 0o600)


def _keys(gw):
    with open(_key_file(gw)) as f:
        return [(int(l.split()[0]), l.split()[1]) for l in f
                if l.strip() and not l.startswith("#")]


def _with_cookie(gw, ctx, cookie):
    b = Browser(gw.port, ctx)
    b.jar[COOKIE] = cookie
    return b


def test_reload_with_a_key_added_then_the_old_removed(top, ctx):
    """A rotation in place: a new key on top, reload: the old cookie still
    opens (every line is accepted), a new sign-in works; the old line
    removed, reload: the old cookie is sent to the login page, the new one
    still opens. Each reload retires the context (the keys changed)."""
    old = _keys(top)
    assert [kid for kid, _ in old] == [1]
    before = signed_in(top, ctx, "alice").jar[COOKIE]
    _write_keys(top, [(2, os.urandom(32).hex())] + old)
    top.reload()
    wait_until(lambda: RETIRED in top.stderr(), timeout=10, what="the context retired")
    assert _with_cookie(top, ctx, before).get("/app/old").status == 200
    after = signed_in(top, ctx, "alice").jar[COOKIE]
    _write_keys(top, _keys(top)[:1])
    top.reload()
    assert to_login(_with_cookie(top, ctx, before).get("/app/old"))
    assert _with_cookie(top, ctx, after).get("/app/new").status == 200


def test_reload_with_the_key_replaced_refuses_the_old_sessions(top, ctx):
    """A compromised key replaced in place under the same key id: after the
    reload, cookies sealed with it are refused as a forged one is."""
    cookie = signed_in(top, ctx, "alice").jar[COOKIE]
    _write_keys(top, [(1, os.urandom(32).hex())])
    top.reload()
    assert to_login(_with_cookie(top, ctx, cookie).get("/app/stolen"))
    assert signed_in(top, ctx, "alice").get("/app/x").status == 200


def test_reload_with_the_same_keys_rewritten_keeps_the_context(top, ctx):
    """The file rewritten with the same keys (a comment added): the context
    and its sessions go on; nothing is retired."""
    cookie = signed_in(top, ctx, "alice").jar[COOKIE]
    keys = _keys(top)
    with open(_key_file(top), "w") as f:
        f.write("# rewritten\n" + "".join("%d %s\n" % k for k in keys))
    top.reload()
    assert _with_cookie(top, ctx, cookie).get("/app/x").status == 200
    assert RETIRED not in top.stderr()


def test_reload_with_an_unreadable_key_file_is_refused(top, ctx):
    """The key file made readable by others: the reload fails naming the
    file and what to do, the generation and the sessions stay."""
    cookie = signed_in(top, ctx, "alice").jar[COOKIE]
    gen = top.generation()
    os.chmod(_key_file(top), 0o644)
    top.reload(expect="error")
    assert top.generation() == gen
    line = [l for l in top.stderr().splitlines() if "reload failed: " in l]
    assert len(line) == 1, top.stderr()[-2000:]
    assert ("%s: secret key file must be readable only by its owner (chmod 600)"
            % _key_file(top)) in line[0], line
    assert _with_cookie(top, ctx, cookie).get("/app/x").status == 200


RESTORE = ("the user store %s has users, whose sessions and TOTP secrets are sealed "
           "with this key, so pbxgate does not make a new one in its place: restore "
           "the file")


def test_reload_with_the_key_file_missing_is_refused_and_makes_none(top, ctx):
    """The key file gone when the reload reads it (moved away, or an editor
    between unlink and rename): the reload fails, no new key is made (it
    would leave alice's TOTP secret and sessions unreadable), and the
    running keys go on serving alice's session."""
    cookie = signed_in(top, ctx, "alice").jar[COOKIE]
    gen = top.generation()
    os.rename(_key_file(top), _key_file(top) + ".moved")
    top.reload(expect="error")
    assert top.generation() == gen
    line = [l for l in top.stderr().splitlines() if "reload failed: " in l]
    assert len(line) == 1, top.stderr()[-2000:]
    assert RESTORE % top.user_db in line[0], line
    assert not os.path.exists(_key_file(top))
    assert _with_cookie(top, ctx, cookie).get("/app/x").status == 200
    os.rename(_key_file(top) + ".moved", _key_file(top))
    top.reload()
    assert _with_cookie(top, ctx, cookie).get("/app/y").status == 200
    assert RETIRED not in top.stderr()


def test_start_with_the_key_file_of_a_store_with_users_missing_fails(
        pbxgate_bin, workdir, certs, make_upstream):
    """At start too: a store with users and no key file is refused with the
    same words, and no key file is made."""
    up = make_upstream()
    gw = TopGateway.__new__(TopGateway)
    gw.user_db = None
    AuthGateway.__init__(gw, pbxgate_bin, workdir, [certs.main], up.port,
                         policy=POLICY, name="gw-top-%s" % uuid.uuid4().hex[:8])
    gw.use(os.path.join(gw.dir, "a.db"))
    gw.user_add("alice")
    os.unlink(_key_file(gw))
    r = subprocess.run([gw.binary, "run", "-c", gw.conf], capture_output=True,
                       text=True, timeout=60, cwd=gw.dir)
    assert r.returncode != 0, r
    assert RESTORE % gw.user_db in r.stderr, r.stderr
    assert not os.path.exists(_key_file(gw))


# ---------------------------------------------------------------- tunnels judged under the new context

WS_POLICY = "allow path ^/_pbxgate/\nlogin path ^/(app/|ws$)\ndefault allow\n"


def _tunnel(gw, ctx, cookie):
    """A WebSocket tunnel on /ws, login required (WS_POLICY in force),
    opened with cookie."""
    from helpers import ws_frame, ws_handshake_bytes, ws_read
    from test_sites_run import SiteClient
    c = SiteClient(gw.port, ctx, "localhost")
    req, _ = ws_handshake_bytes("/ws", host="localhost")
    c.sock.sendall(req.replace(b"\r\n\r\n", b"\r\nCookie: %s=%s\r\n\r\n"
                               % (COOKIE.encode(), cookie.encode()), 1))
    assert c.reader.response().status == 101
    c.sock.sendall(ws_frame(0x1, b"before"))
    assert ws_read(c.reader) == (0x1, b"before")
    return c


def _closed_by(top, ctx, change):
    """alice's tunnel, then change() and a reload: the tunnel ends, as an
    upgrade with the same cookie would be refused now."""
    from test_sites_run import closed_within
    top.policy = WS_POLICY
    top.write_config()
    top.reload()
    cookie = signed_in(top, ctx, "alice").jar[COOKIE]
    t = _tunnel(top, ctx, cookie)
    try:
        change()
        top.reload()
        assert closed_within(t, 15), "the tunnel outlived its session's context"
    finally:
        t.close()
    assert "WebSocket closed: no longer allowed" in top.stderr()
    return cookie


def test_tunnel_closed_when_its_key_is_withdrawn(top, ctx):
    cookie = _closed_by(top, ctx, lambda: _write_keys(top, [(1, os.urandom(32).hex())]))
    assert to_login(_with_cookie(top, ctx, cookie).get("/app/x"))


def test_tunnel_closed_when_the_store_is_switched(top, ctx):
    _closed_by(top, ctx, lambda: top.use(os.path.join(top.dir, "b.db")))


def test_tunnel_closed_when_user_db_is_removed(top, ctx):
    _closed_by(top, ctx, lambda: top.use(None))


def test_tunnel_kept_by_a_reload_that_changes_no_login_setting(top, ctx):
    from helpers import ws_frame, ws_read
    top.policy = WS_POLICY
    top.write_config()
    top.reload()
    cookie = signed_in(top, ctx, "alice").jar[COOKIE]
    t = _tunnel(top, ctx, cookie)
    try:
        top.extra.append("# not a login setting")
        top.write_config()
        top.reload()
        t.sock.sendall(ws_frame(0x1, b"after"))
        assert ws_read(t.reader) == (0x1, b"after")
    finally:
        t.close()
    assert "WebSocket closed" not in top.stderr()
