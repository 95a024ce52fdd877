"""test_auth.py -- login at the gateway end to end (issue 4): the real binary,
a real SQLite user store, enrolment through the CLI link and the pages, TOTP
codes from oathtool, sessions seen at the recording upstream, and the attacks
that must fail (replay, brute force, enumeration, cookie tampering)."""

import os
import re
import signal
import sqlite3
import statistics
import subprocess
import threading
import time

import pytest

from auth_helpers import (PASSWORD, Browser, enrol, enrol_with_link, form_with, forms,  # noqa: F401
                          login, make_auth_gateway, otp_secret, safe_step, totp)
from helpers import wait_until

LOGIN_SEEN = re.compile(r"^/_pbxgate/login\?rd=")


@pytest.fixture
def agw(make_auth_gateway, upstream):
    return make_auth_gateway(upstream.port)


def session_of(b):
    return b.jar.get("__Host-pbxgate")


def upstream_headers(r):
    """The request head the upstream saw, from its /headers answer."""
    assert r.status == 200, r
    return [(n.lower(), v) for n, v in r.json()["headers"]]


def redirected_to_login(r):
    return r.status == 302 and LOGIN_SEEN.match(r.get("location") or "")


def normalised(body, *names):
    """A login page without what differs per request (CSRF token, the name
    typed, the request id), so that two answers can be compared byte for byte."""
    s = re.sub(rb'name="csrf" value="[0-9a-f]+"', b'name="csrf" value=""', body)
    s = re.sub(rb'<p class="ref">([^<:]+): [0-9a-f]{32}</p>', rb'<p class="ref">\1: ID</p>', s)
    for n in names:
        s = s.replace(n.encode(), b"NAME")
    return s


# ---------------------------------------------------------------- the happy path

def test_no_session_redirects_to_login(agw, ctx):
    b = Browser(agw.port, ctx)
    r = b.get("/app/page?x=1")
    assert r.status == 302, r
    assert r.get("location") == "/_pbxgate/login?rd=/app/page%3Fx%3D1" or \
        LOGIN_SEEN.match(r.get("location")), r
    assert b.get("/open/thing").status == 200


def test_enrol_login_identity_headers(agw, ctx, upstream):
    _, secret, step = enrol(agw, ctx, "alice")
    b, r = login(agw, ctx, "Alice", secret, rd="/headers?x=1")
    assert r.status == 303, r
    assert r.get("location") == "/headers?x=1", r
    _, events = agw.audit()
    assert any(e["event.action"] == "login_success" and e["user.name"] == "alice" and e["event.reason"] == "mfa"
               for e in events), events
    sc = [v for v in r.get_all("set-cookie") if v.startswith("__Host-pbxgate=")]
    assert sc and all(a in sc[0] for a in ("Secure", "HttpOnly", "SameSite", "Path=/")), sc
    # a client's own identity headers never reach the upstream
    forged = [("X-Pbxgate-User", "mallory"), ("X-Pbxgate-Auth", "mfa"),
              ("x-pbxgate-user", "root")]
    hs = upstream_headers(b.get("/headers?x=1", headers=forged))
    assert [v for n, v in hs if n == "x-pbxgate-user"] == ["alice"], hs
    assert [v for n, v in hs if n == "x-pbxgate-auth"] == ["mfa"], hs
    anon = Browser(agw.port, ctx)
    r = anon.get("/open/x", headers=forged)
    assert r.status == 200
    seen = [e for e in upstream.requests() if e["target"] == "/open/x"]
    assert seen, upstream.requests()[-3:]
    names = [n.lower() for n, _ in seen[-1]["headers"]]
    assert "x-pbxgate-user" not in names and "x-pbxgate-auth" not in names, seen[-1]


def test_enrol_link_single_use(agw, ctx):
    link = agw.enrol_link("leo")
    b = Browser(agw.port, ctx)
    first = b.get(link)
    again = b.get(link)
    assert first.status == again.status == 200
    # every visit makes a new secret: an earlier screenshot is useless
    assert otp_secret(first.body) != otp_secret(again.body)
    _, secret, _ = enrol_with_link(agw, ctx, link)
    r = Browser(agw.port, ctx).get(link)  # spent
    assert r.status == 404, r
    r = Browser(agw.port, ctx).get(link[:-4] + "0000")  # never issued
    assert r.status == 404, r
    _, r = login(agw, ctx, "leo", secret)
    assert r.status == 303, r


def test_open_redirect_refused(agw, ctx):
    _, secret, step = enrol(agw, ctx, "rdtest")
    _, r = login(agw, ctx, "rdtest", secret, rd="//evil.example/x")
    assert r.status == 303, r
    assert r.get("location") == "/", r


# ---------------------------------------------------------------- attacks

def test_totp_replay_refused(agw, ctx):
    _, secret, step = enrol(agw, ctx, "bob")
    now = safe_step()
    b1, r = login(agw, ctx, "bob", secret, now)
    assert r.status == 303 and session_of(b1), r
    b2, r = login(agw, ctx, "bob", secret, now)  # the same code again
    assert r.status != 303 and session_of(b2) is None, r
    assert b'name="code"' in r.body, r
    # the code used at enrolment is spent too
    b3, r = login(agw, ctx, "bob", secret, step)
    assert r.status != 303 and session_of(b3) is None, r


def _cpu_seconds(pid):
    """User + system CPU time of process pid, its exited threads included
    (libargon2 starts and joins its lanes' threads for each hash)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_fail(gw, ctx, name, password, source):
    """One password step that fails: (answer, CPU seconds the serving
    process spent on it, the browser). CPU time, not wall time: it is the
    work the gateway does for the answer, which a loaded machine stretches
    on the clock but does not change."""
    b = Browser(gw.port, ctx, source)
    r = b.get("/_pbxgate/login")
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password=password)
    pid = gw.child_pid()
    cpu0 = _cpu_seconds(pid)
    r = b.post_form("/_pbxgate/login", fields)
    return r, _cpu_seconds(pid) - cpu0, b


def test_brute_force_ban_same_answer_for_unknown_user(agw, ctx):
    _, secret, step = enrol(agw, ctx, "carol")
    wrong, unknown = [], []
    # each attempt from its own address: only the name's counter counts
    for i in range(5):
        wrong.append(_timed_fail(agw, ctx, "carol", "wrong password %d" % i, "127.0.1.%d" % (i + 1)))
        unknown.append(_timed_fail(agw, ctx, "nobody%d" % i, "wrong password %d" % i,
                                   "127.0.2.%d" % (i + 1)))
    for (rw, _, _), (ru, _, _) in zip(wrong, unknown):
        assert rw.status == ru.status == 401, (rw, ru)
        assert normalised(rw.body, "carol") == normalised(ru.body, "nobody0", "nobody1",
                                                           "nobody2", "nobody3", "nobody4"), \
            (rw.body, ru.body)
        assert session_of_resp(rw) is None and session_of_resp(ru) is None
    # banned now: the right password gets the very same answer
    rb, tb, _ = _timed_fail(agw, ctx, "carol", PASSWORD, "127.0.1.99")
    assert rb.status == 401 and b'name="code"' not in rb.body, rb
    assert normalised(rb.body, "carol") == normalised(wrong[0][0].body, "carol")
    # same Argon2 work for all three: no answer costs much less or much
    # more CPU than another
    times = [t for _, t, _ in wrong + unknown] + [tb]
    med = statistics.median(times)
    assert all(t > med / 3 for t in times), times
    assert all(t < med * 4 for t in times), times
    # audited: failures, the ban, with names and addresses, never a password
    text, events = agw.audit()
    kinds = [(e["event.action"], e["user.name"]) for e in events if e.get("event.module") == "auth"]
    assert ("login_failure", "carol") in kinds and ("login_failure", "nobody0") in kinds, kinds
    assert any(k == "login_ban" and u == "carol" for k, u in kinds), kinds
    assert "wrong password" not in text and PASSWORD not in text
    # the ban outlives a restart (counters live in the store)
    agw.stop()
    agw.start()
    rb, _, _ = _timed_fail(agw, ctx, "carol", PASSWORD, "127.0.1.98")
    assert rb.status == 401 and b'name="code"' not in rb.body, rb


def session_of_resp(r):
    for v in r.get_all("set-cookie"):
        if v.startswith("__Host-pbxgate="):
            return v
    return None


def _threads(pid):
    """{thread id: (scheduling policy, allowed CPUs)} of pid, from /proc."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                policy = int(f.read().rpartition(")")[2].split()[38])
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                cpus = [l.split()[1] for l in f if l.startswith("Cpus_allowed_list:")][0]
        except FileNotFoundError:
            continue        # a thread that ended meanwhile
        out[int(tid)] = (policy, cpus)
    return out


def test_login_pool_not_pinned_to_one_core(agw, ctx):
    """The login pool runs at SCHED_IDLE on every core its process may use:
    pinned to the last one, a login waited as long as another program
    kept that core busy (the login page 504 after 30 s, the other core
    idle)."""
    _timed_fail(agw, ctx, "pinned", "wrong password", "127.0.4.1")
    pid = agw.child_pid()
    threads = _threads(pid)
    pool = [cpus for policy, cpus in threads.values() if policy == os.SCHED_IDLE]
    assert pool, threads
    assert set(pool) == {threads[pid][1]}, threads


def test_address_ban(agw, ctx):
    _, secret, step = enrol(agw, ctx, "dave")
    for i in range(5):
        r, _, _ = _timed_fail(agw, ctx, "ghost%d" % i, "nope nope nope", "127.0.3.1")
        assert r.status == 401, r
    # the address is banned: even dave's right password does not help there
    _, r = login(agw, ctx, "dave", secret, source="127.0.3.1")
    assert r.status == 401 and b'name="code"' not in r.body, r
    # from another address dave gets in
    b, r = login(agw, ctx, "dave", secret, source="127.0.3.2")
    assert r.status == 303 and session_of(b), r


def test_recovery_codes_and_password_change_revoke_other_sessions(agw, ctx):
    # (failures are kept to two: a third would meet the name's back-off)
    eb, secret, step = enrol(agw, ctx, "kate")
    a, r = login(agw, ctx, "kate", secret)
    assert r.status == 303, r
    b, r = login(agw, ctx, "kate", secret, eb.recovery[0])  # a recovery code
    assert r.status == 303 and session_of(b), r
    assert a.get("/app").status == 200 and b.get("/app").status == 200
    # A changes the password (current password and a code needed)
    r = a.get("/_pbxgate/account")
    pw = [f for _, f in forms(r.body) if f.get("action") == "password"]
    assert pw, r.body
    fields = dict(pw[0], current=PASSWORD, new="a brand new password",
                  new2="a brand new password", code=eb.recovery[1])
    r = a.post_form("/_pbxgate/account", fields)
    assert r.status in (200, 303), r
    assert a.get("/app").status == 200  # this browser got a fresh session
    assert redirected_to_login(b.get("/app"))  # every other one ended
    _, r = login(agw, ctx, "kate", secret, eb.recovery[2], password="a brand new password")
    assert r.status == 303, r
    c, r = login(agw, ctx, "kate", secret, eb.recovery[0], password="a brand new password")
    assert r.status != 303 and session_of(c) is None, r  # a recovery code works once
    _, r = login(agw, ctx, "kate", secret, eb.recovery[3])
    assert r.status == 401 and b'name="code"' not in r.body, r  # the old password


def test_cookie_tampering_redirects_to_login(agw, ctx):
    _, secret, step = enrol(agw, ctx, "erin")
    b, r = login(agw, ctx, "erin", secret)
    assert r.status == 303, r
    good = session_of(b)
    assert b.get("/app").status == 200
    kid, _, hexpart = good.partition(".")
    # (upper-case hex is the same ciphertext, so not a tampering)
    variants = [good[:-2], good + "00", "9." + hexpart,
                kid + ".", "", good.replace(".", "")]
    for pos in range(0, len(hexpart), max(1, len(hexpart) // 24)):
        flipped = "%x" % (int(hexpart[pos], 16) ^ 1)
        variants.append(kid + "." + hexpart[:pos] + flipped + hexpart[pos + 1:])
    for v in variants:
        t = Browser(agw.port, ctx)
        t.jar["__Host-pbxgate"] = v
        r = t.get("/app")
        assert redirected_to_login(r), (v, r)
    assert b.get("/app").status == 200  # the untouched cookie still works


def test_logout(agw, ctx):
    _, secret, step = enrol(agw, ctx, "frank")
    b, r = login(agw, ctx, "frank", secret)
    assert r.status == 303, r
    cookie = session_of(b)
    r = b.get("/_pbxgate/account")
    assert r.status == 200 and b"frank" in r.body, r
    logout = [f for a, f in forms(r.body) if a == "/_pbxgate/logout"]
    assert logout, r.body
    r = b.post_form("/_pbxgate/logout", logout[0])
    assert r.status in (200, 303), r
    assert session_of(b) is None, b.jar
    # the old cookie, kept by an attacker, no longer works
    t = Browser(agw.port, ctx)
    t.jar["__Host-pbxgate"] = cookie
    assert redirected_to_login(t.get("/app"))


def test_cli_config_option_anywhere(agw):
    """-c FILE, --config FILE and --config=FILE work before, between and
    after a command's own words (gateway/main.c takes them out)."""
    conf, b = agw.conf, agw.binary
    run = lambda *a, inp=b"": subprocess.run([b] + list(a), input=inp,  # noqa: E731
                                              capture_output=True, timeout=60)
    r = run("user", "-c", conf, "add", "cfgpos", "--role", "admin", inp=b"a fine passphrase\n")
    assert r.returncode == 0, r.stderr
    r = run("user", "show", "--config=" + conf, "cfgpos")
    assert r.returncode == 0 and b"cfgpos" in r.stdout, r.stderr
    r = run("user", "show", "cfgpos", "--config", conf)
    assert r.returncode == 0 and b"admin" in r.stdout, (r.stdout, r.stderr)
    r = run("hash", "--config", conf, inp=b"a fine passphrase\n")
    assert r.returncode == 0 and r.stdout.startswith(b"$argon2id$"), r.stderr
    # without -c: the compiled-in default (not present on a test machine)
    r = run("user", "show", "cfgpos")
    assert r.returncode == 1 and b"/pbxgate/pbxgate.conf" in r.stderr, r.stderr


def test_cli_disable_revokes_session(agw, ctx):
    _, secret, step = enrol(agw, ctx, "grace")
    b, r = login(agw, ctx, "grace", secret)
    assert r.status == 303 and b.get("/app").status == 200
    t0 = time.monotonic()
    res = agw.cli("user", "disable", "grace")
    assert res.returncode == 0, res
    wait_until(lambda: redirected_to_login(b.get("/app")), timeout=10, interval=0.1,
               what="the disabled user's session to end")
    print("session of a disabled user ended after %.2fs" % (time.monotonic() - t0))
    # and the user cannot log in again
    _, r = login(agw, ctx, "grace", secret)
    assert r.status == 401, r


def test_per_user_lockdown(agw, ctx):
    eb, secret, step = enrol(agw, ctx, "heidi", source="127.0.0.2")
    b, r = login(agw, ctx, "heidi", secret, source="127.0.0.2")
    assert r.status == 303, r
    assert b.get("/app", source="127.0.0.3").status == 200  # no lockdown yet
    r = b.get("/_pbxgate/account")
    lock = [f for a, f in forms(r.body) if f.get("action") == "lockdown"]
    assert lock, r.body
    fields = dict(lock[0])
    # a list that shuts out the address in use needs the confirmation box
    fields["lockdown"] = "127.0.0.9/32"
    r = b.post_form("/_pbxgate/account", fields)
    assert r.status == 409, r
    # (changing the list needs the password and a code: issue 12)
    fields.update(lockdown="127.0.0.2/32", current=PASSWORD, code=eb.recovery[2])
    r = b.post_form("/_pbxgate/account", fields)
    assert r.status in (200, 303), r
    assert b.get("/app").status == 200  # from 127.0.0.2: allowed
    r = b.get("/app", source="127.0.0.3")
    assert r.status == 403, r
    res = agw.cli("user", "show", "heidi")
    assert b"127.0.0.2/32" in res.stdout, res
    # the ticked confirmation box saves a list without the address in use
    r = b.get("/_pbxgate/account")
    fields = dict([f for a, f in forms(r.body) if f.get("action") == "lockdown"][0])
    fields.update(lockdown="127.0.0.9/32", confirm="1", current=PASSWORD, code=eb.recovery[3])
    r = b.post_form("/_pbxgate/account", fields)
    assert r.status in (200, 303), r
    assert b.get("/app").status == 403
    # an administrator changes the list from another process: the user's
    # sessions end (epoch bump) within the gateway's refresh period
    res = agw.cli("user", "lockdown", "heidi", "--allow", "127.0.0.3/32")
    assert res.returncode == 0, res
    wait_until(lambda: redirected_to_login(b.get("/app", source="127.0.0.3")), timeout=10,
               interval=0.1, what="the session to end after the lockdown change")
    c, r = login(agw, ctx, "heidi", secret, eb.recovery[0], source="127.0.0.3")
    assert r.status == 303, r
    assert c.get("/app").status == 200
    assert c.get("/app", source="127.0.0.2").status == 403
    # a login from outside the list is refused (no session at all)
    d, r = login(agw, ctx, "heidi", secret, eb.recovery[1], source="127.0.0.2")
    assert r.status != 303 and session_of(d) is None, r
    assert redirected_to_login(d.get("/app"))


# ---------------------------------------------------------------- robustness

def test_kill9_during_logins_leaves_a_usable_store(agw, ctx):
    _, secret, step = enrol(agw, ctx, "ivan")
    stop = threading.Event()
    done = []

    def storm(k):
        for i in range(50):
            if stop.is_set():
                return
            try:
                r, _, _ = _timed_fail(agw, ctx, "ghost%d" % (k * 100 + i), "x" * 12,
                                      "127.0.4.%d" % (k * 50 + i + 1))
                done.append(r.status)
            except Exception:  # noqa: BLE001 - the gateway is being killed
                return
    r = agw.cli("user", "add", "pwonly", input=(PASSWORD + "\n").encode())
    assert r.returncode == 0, r

    def good():  # successful password-only logins write sessions and logins rows
        for i in range(50):
            if stop.is_set():
                return
            try:
                b = Browser(agw.port, ctx, "127.0.6.%d" % (i + 1))
                _, r = login(agw, ctx, "pwonly", None, browser=b, rd="/_pbxgate/account")
                done.append(r.status)
            except Exception:  # noqa: BLE001 - the gateway is being killed
                return
    threads = [threading.Thread(target=storm, args=(k,)) for k in range(3)]
    threads.append(threading.Thread(target=good))
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(done) >= 6, timeout=60, what="some logins to finish")
        # the child writes the store (gateway/privsep.c): kill it, then
        # the parent, hard, as a power cut would
        os.kill(agw.child_pid(), signal.SIGKILL)
        agw.proc.send_signal(signal.SIGKILL)
        agw.proc.wait(10)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert agw.proc.returncode == -signal.SIGKILL
    out = subprocess.run(["sqlite3", agw.db, "PRAGMA integrity_check;"],
                         capture_output=True, timeout=30)
    assert out.stdout.strip() == b"ok", out
    con = sqlite3.connect(agw.db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM users").fetchone()[0] == 2
    finally:
        con.close()
    assert 303 in done, done  # some successful logins were written
    agw.start()  # the gateway reopens the store
    b, r = login(agw, ctx, "ivan", secret)
    assert r.status == 303 and b.get("/app").status == 200, r


def test_login_pool_full_gets_503(make_auth_gateway, upstream, ctx):
    gw = make_auth_gateway(upstream.port, auth_extra=["login_threads 1", "login_queue 1"])
    n = 8
    statuses = []
    for attempt in range(3):
        prepared = []
        for i in range(n):
            b = Browser(gw.port, ctx, "127.0.5.%d" % (attempt * n + i + 1))
            r = b.get("/_pbxgate/login")
            _, fields = form_with(r.body, "password")
            fields.update(username="storm%d" % (attempt * n + i), password="y" * 12)
            prepared.append((b, fields))
        barrier = threading.Barrier(n + 1)
        res = [None] * n

        def go(i):
            b, fields = prepared[i]
            barrier.wait(10)
            res[i] = b.post_form("/_pbxgate/login", fields).status
        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        barrier.wait(10)
        # proxied traffic is not held up by the full login pool
        t0 = time.monotonic()
        assert Browser(gw.port, ctx).get("/open/during").status == 200
        proxied = time.monotonic() - t0
        for t in threads:
            t.join(60)
        statuses = res
        if 503 in res:
            break
    assert 503 in statuses, statuses
    assert 401 in statuses, statuses
    assert set(statuses) <= {401, 503}, statuses
    assert proxied < 1.0, proxied


# ---------------------------------------------------------------- issue 12: login and sessions

CSRF = "__Host-pbxgate-csrf"
MFA = "__Host-pbxgate-mfa"


def test_mfa_step_cookie_works_once(agw, ctx):
    """Item 7: the password step's cookie ends with the login it started;
    replayed with the next code it gives no second session."""
    _, secret, _ = enrol(agw, ctx, "stepper")
    b = Browser(agw.port, ctx)
    r = b.get("/_pbxgate/login?rd=/app")
    act, fields = form_with(r.body, "password")
    fields.update(username="stepper", password=PASSWORD)
    r = b.post_form("/_pbxgate/login", fields)
    assert r.status == 200 and b'name="code"' in r.body, r
    step_cookie = b.jar[MFA]
    _, fields = form_with(r.body, "code")
    now = safe_step()
    r = b.post_form("/_pbxgate/login", dict(fields, code=totp(secret, now)))
    assert r.status == 303 and session_of(b), r
    # an attacker holding the step cookie (no password) and the next code
    m = Browser(agw.port, ctx)
    r = m.get("/_pbxgate/login?rd=/app")
    _, fields = form_with(r.body, "password")
    m.jar[MFA] = step_cookie
    fields.pop("username", None)
    fields.pop("password", None)
    r = m.post_form("/_pbxgate/login", dict(fields, code=totp(secret, now + 1)))
    assert r.status == 401, r
    assert session_of_resp(r) is None and session_of(m) is None, m.jar
    assert redirected_to_login(m.get("/app"))


@pytest.fixture
def xff_gw(make_auth_gateway, upstream):
    """Logins reach the gateway through a trusted proxy at 127.0.0.1 that
    names the client in X-Forwarded-For."""
    return make_auth_gateway(upstream.port, auth_extra=["trusted_proxy 127.0.0.1/32"])


def _fail_as(gw, ctx, name, client):
    b = Browser(gw.port, ctx)
    hs = [("X-Forwarded-For", client)]
    r = b.get("/_pbxgate/login", headers=hs)
    _, fields = form_with(r.body, "password")
    fields.update(username=name, password="not the password")
    return b.post_form("/_pbxgate/login", fields, headers=hs)


def _login_as(gw, ctx, name, secret, client, code):
    b = Browser(gw.port, ctx)
    hs = [("X-Forwarded-For", client)]
    r = b.get("/_pbxgate/login?rd=/app", headers=hs)
    _, fields = form_with(r.body, "password")
    fields.update(username=name, password=PASSWORD)
    r = b.post_form("/_pbxgate/login", fields, headers=hs)
    if r.status != 200 or b'name="code"' not in r.body:
        return b, r
    _, fields = form_with(r.body, "code")
    return b, b.post_form("/_pbxgate/login", dict(fields, code=code), headers=hs)


@pytest.mark.parametrize("banned,other,other_status", [
    # IPv4-mapped clients are each their own IPv4 address...
    ("::ffff:192.0.2.7", "::ffff:192.0.2.8", 303),
    ("::ffff:192.0.2.7", "192.0.2.8", 303),
    # ...and the same client however it is written
    ("::ffff:192.0.2.7", "192.0.2.7", 401),
    ("192.0.2.7", "::ffff:192.0.2.7", 401),
    # IPv6 stays per /64
    ("2001:db8:1:2::7", "2001:db8:1:2::8", 401),
    ("2001:db8:1:2::7", "2001:db8:1:3::7", 303),
])
def test_address_counter_keying(xff_gw, ctx, banned, other, other_status):
    """Item 8a: five failures ban the address they came from, not every
    IPv4 client behind a dual-stack proxy."""
    eb, secret, _ = enrol(xff_gw, ctx, "keyed")
    for i in range(5):
        r = _fail_as(xff_gw, ctx, "ghost%d" % i, banned)
        assert r.status == 401, r
    _, events = xff_gw.audit()
    assert any(e["event.action"] == "login_ban" and e["event.reason"] == "address" for e in events), events
    b, r = _login_as(xff_gw, ctx, "keyed", secret, other, eb.recovery[0])
    assert r.status == other_status, (other, r)
    if other_status == 401:
        assert b'name="code"' not in r.body and session_of(b) is None, r
    else:
        assert session_of(b), r


def test_own_login_leaves_address_counter(make_auth_gateway, upstream, ctx):
    """Item 9: an account holder's own login between guesses at other names
    does not reset the address counter."""
    gw = make_auth_gateway(upstream.port, auth_extra=["login_max_failures 3"])
    _, secret, _ = enrol(gw, ctx, "sprayer", source="127.0.4.2")
    src = "127.0.4.1"
    r, _, _ = _timed_fail(gw, ctx, "victim1", "guess number one", src)
    assert r.status == 401, r
    b, r = login(gw, ctx, "sprayer", secret, source=src)
    assert r.status == 303 and session_of(b), r
    for name in ("victim2", "victim3"):
        r, _, _ = _timed_fail(gw, ctx, name, "another guess", src)
        assert r.status == 401, r
    _, events = gw.audit()
    bans = [e for e in events if e["event.action"] == "login_ban" and e["event.reason"] == "address"]
    assert len(bans) == 1, events
    # the address is banned now, for its own account holder too
    _, r = login(gw, ctx, "sprayer", secret, source=src)
    assert r.status == 401 and b'name="code"' not in r.body, r


def _lockdown_fields(b):
    r = b.get("/_pbxgate/account")
    assert r.status == 200, r
    lock = [f for _, f in forms(r.body) if f.get("action") == "lockdown"]
    assert lock, r.body
    return dict(lock[0])


@pytest.mark.parametrize("current,code", [
    (None, None),                       # the session alone
    ("not the password", "recovery"),   # a wrong password
    (PASSWORD, None),                   # the password without a code
    (PASSWORD, "000000"),               # a wrong code
])
def test_lockdown_change_needs_reauthentication(agw, ctx, current, code):
    """Item 10: replacing the lockdown list needs the password and, for a
    user with an authenticator, a code; the session alone gets 401."""
    eb, secret, _ = enrol(agw, ctx, "locker")
    b, r = login(agw, ctx, "locker", secret)
    assert r.status == 303, r
    fields = _lockdown_fields(b)
    fields.update(lockdown="127.0.0.1/32")
    for k in ("current", "code"):
        fields.pop(k, None)
    if current is not None:
        fields["current"] = current
    if code is not None:
        fields["code"] = eb.recovery[0] if code == "recovery" else code
    r = b.post_form("/_pbxgate/account", fields)
    assert r.status == 401, r
    assert b"127.0.0.1/32" not in agw.cli("user", "show", "locker").stdout
    assert b.get("/app").status == 200  # the session itself is untouched
    # with both the change goes through
    fields = _lockdown_fields(b)
    fields.update(lockdown="127.0.0.1/32", current=PASSWORD, code=eb.recovery[1])
    r = b.post_form("/_pbxgate/account", fields)
    assert r.status == 200, r
    assert b"127.0.0.1/32" in agw.cli("user", "show", "locker").stdout


def _logout_form(b):
    r = b.get("/_pbxgate/account")
    assert r.status == 200, r
    return [f for a, f in forms(r.body) if a == "/_pbxgate/logout"][0]


def test_csrf_token_of_one_session_refused_in_another(agw, ctx):
    """Item 12: a's cookie and token, sent with b's session, are refused."""
    eb, secret, _ = enrol(agw, ctx, "twice")
    a, r = login(agw, ctx, "twice", secret)
    assert r.status == 303, r
    b, r = login(agw, ctx, "twice", secret, eb.recovery[0])
    assert r.status == 303, r
    token = _logout_form(a)["csrf"]
    b.jar[CSRF] = a.jar[CSRF]
    r = b.post_form("/_pbxgate/logout", {"csrf": token})
    assert r.status == 403, r
    assert b.get("/app").status == 200  # b's session was not ended
    # b's own token still works
    r = b.post_form("/_pbxgate/logout", _logout_form(b))
    assert r.status == 303, r
    assert redirected_to_login(b.get("/app"))


def test_csrf_planted_pre_session_token_fails_after_login(agw, ctx):
    """Item 12: an attacker reads the token printed for a cookie of their
    choosing, plants the cookie, and waits for the victim to sign in."""
    _, secret, _ = enrol(agw, ctx, "planted")
    m = Browser(agw.port, ctx)
    r = m.get("/_pbxgate/login")
    _, fields = form_with(r.body, "password")
    planted, token = m.jar[CSRF], fields["csrf"]
    v = Browser(agw.port, ctx)
    v.jar[CSRF] = planted
    v, r = login(agw, ctx, "planted", secret, browser=v)
    assert r.status == 303 and v.jar[CSRF] == planted, (r, v.jar)
    r = v.post_form("/_pbxgate/logout", {"csrf": token})
    assert r.status == 403, r
    assert v.get("/app").status == 200


DENY_MALLORY_POLICY = """\
allow path ^/_pbxgate/
allow path ^/open/
deny  user Mallory
mfa   path ^/
default deny
"""


def test_deny_user_rule_folds_like_the_store(make_auth_gateway, upstream, ctx):
    """Item 11: `deny user Mallory` denies the user the store calls mallory
    (names are folded the same way on both sides)."""
    gw = make_auth_gateway(upstream.port, policy=DENY_MALLORY_POLICY)
    _, msecret, _ = enrol(gw, ctx, "Mallory")
    _, asecret, _ = enrol(gw, ctx, "alice")
    m, r = login(gw, ctx, "mallory", msecret)
    assert r.status == 303, r
    r = m.get("/app")
    assert r.status == 403, r
    a, r = login(gw, ctx, "alice", asecret)
    assert r.status == 303, r
    assert a.get("/app").status == 200


def _check(gw):
    r = subprocess.run([gw.binary, "check", "-c", gw.conf], capture_output=True, timeout=60)
    return r.returncode, r.stderr.decode("utf-8", "replace")


def test_check_warns_about_user_names_that_match_nobody(make_auth_gateway, upstream):
    """Item 11: `pbxgate check` names each `user` value that cannot exist,
    and, the store being readable, each one no user has."""
    gw = make_auth_gateway(upstream.port, start=False, policy=(
        "allow path ^/_pbxgate/\n"
        "deny  user Mallory,Mal!ory,nobody\n"
        "mfa   path ^/\n"
        "default deny\n"))
    pol = gw.conf.replace("pbxgate.conf", "auth.policy")
    r = gw.cli("user", "add", "mallory", input=b"a fine passphrase\n")
    assert r.returncode == 0, r
    rc, err = _check(gw)
    assert rc == 0, err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert lines == [
        "%s:2:20: warning: user 'Mal!ory' can never match: not a valid user name "
        "(1 to 64 ASCII letters, digits and . _ @ -, starting with a letter or digit)" % pol,
        "%s:2:28: warning: user 'nobody' matches nobody: no such user in %s "
        "(add it with `pbxgate user add` or fix the name)" % (pol, gw.db),
    ], err
    assert err.rstrip().endswith("configuration is valid"), err


def test_check_never_creates_the_user_store(make_auth_gateway, upstream):
    gw = make_auth_gateway(upstream.port, start=False, policy=(
        "allow path ^/_pbxgate/\ndeny user nobody\ndefault deny\n"))
    assert not os.path.exists(gw.db)
    rc, err = _check(gw)
    assert rc == 0, err
    assert "note: user names in the policy not checked against the user store" in err, err
    assert "warning" not in err, err
    assert not os.path.exists(gw.db)


def _follow(b, path, limit=8):
    """GETs path and follows redirects (bounded); returns [(path, status)]."""
    seen = []
    for _ in range(limit):
        r = b.get(path)
        seen.append((path, r.status))
        if r.status not in (302, 303):
            return seen, r
        path = r.get("location")
        assert path not in [p for p, _ in seen], "redirect loop: %r -> %s" % (seen, path)
    raise AssertionError("more than %d redirects: %r" % (limit, seen))


def _password_only(gw, ctx, name, lang=None):
    r = gw.cli("user", "add", name, input=(PASSWORD + "\n").encode())
    assert r.returncode == 0, r
    b = Browser(gw.port, ctx, lang=lang)
    chain, r = _follow(b, "/")
    assert chain[0] == ("/", 302) and chain[-1][1] == 200, chain
    assert chain[-1][0].startswith("/_pbxgate/login"), chain
    _, fields = form_with(r.body, "password")
    fields.update(username=name, password=PASSWORD)
    r = b.post_form("/_pbxgate/login", fields)
    assert r.status == 303 and session_of(b), r
    return b, r.get("location")


@pytest.mark.parametrize("lang,text", [
    (None, b"your account has no authenticator yet"),
    ("ja", "認証アプリが設定されていません".encode()),
])
def test_mfa_without_authenticator_is_a_page_not_a_loop(agw, ctx, lang, text):
    """Item 13: password but no authenticator under an `mfa` rule: the
    redirects end on a page saying what is missing and what to do."""
    b, loc = _password_only(agw, ctx, "nototp", lang)
    chain, r = _follow(b, loc)
    assert chain == [("/", 302), ("/_pbxgate/login?rd=/", 303), ("/_pbxgate/mfa", 403)], chain
    assert text in r.body, r.body
    assert b"pbxgate user totp-reset" in r.body, r.body
    assert b'name="current"' not in r.body  # no self-enrolment by default
    # nor through the account page: a first authenticator needs the admin
    r = b.get("/_pbxgate/account")
    fields = [f for _, f in forms(r.body) if "current" in f and "action" not in f][0]
    r = b.post_form("/_pbxgate/account", dict(fields, action="totp", current=PASSWORD))
    assert r.status == 403, r
    # the open paths still work with that session
    assert b.get("/open/x").status == 200


def test_mfa_self_enrol_adds_an_authenticator_after_the_password(make_auth_gateway,
                                                                 upstream, ctx):
    """Item 13 with `mfa_self_enrol yes`: the page asks for the password
    again and leads to enrolment; afterwards MFA works."""
    gw = make_auth_gateway(upstream.port, auth_extra=["mfa_self_enrol yes"])
    b, loc = _password_only(gw, ctx, "selfie")
    chain, r = _follow(b, loc)
    assert chain[-1] == ("/_pbxgate/mfa", 200), chain
    act, fields = form_with(r.body, "current")
    assert act == "/_pbxgate/mfa"
    r = b.post_form(act, dict(fields, current="not the password"))
    assert r.status == 401, r
    r = b.post_form(act, dict(fields, current=PASSWORD))
    assert r.status == 303 and r.get("location").startswith("/_pbxgate/enrol?t="), r
    _, secret, _ = enrol_with_link(gw, ctx, r.get("location"))
    m, r = login(gw, ctx, "selfie", secret, rd="/")
    assert r.status == 303 and r.get("location") == "/", r
    assert m.get("/app").status == 200
