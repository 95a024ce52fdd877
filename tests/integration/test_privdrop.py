"""test_privdrop.py -- `user NAME` as a packaged service uses it: started as
root, pbxgate becomes NAME with NAME's supplementary groups (Debian's
ssl-cert); `pbxgate user` and `pbxgate hash` run by root create the user
store and the secret key as NAME, so that `run` can open them after its
drop, and refuse files owned by someone else with the command that fixes
them. Needs root (useradd); skipped otherwise."""

import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from helpers import Client, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"),
                                reason="needs root and useradd")

PASSWORD = b"a fine passphrase\n"


class SystemUser:
    """A throw-away system user NAME in its own group and in GROUP."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.name, self.group = "pbxgt-u" + tag, "pbxgt-g" + tag
        subprocess.run(["groupadd", "--system", self.group], check=True)
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", "--groups", self.group, self.name],
                       check=True)
        out = subprocess.run(["id", "-u", self.name], capture_output=True, check=True)
        self.uid = int(out.stdout)
        out = subprocess.run(["id", "-g", self.name], capture_output=True, check=True)
        self.gid = int(out.stdout)
        out = subprocess.run(["getent", "group", self.group], capture_output=True, check=True)
        self.extra_gid = int(out.stdout.decode().split(":")[2])

    def remove(self):
        subprocess.run(["userdel", self.name], check=False)
        subprocess.run(["groupdel", self.group], check=False)


@pytest.fixture(scope="module")
def svc():
    u = SystemUser()
    yield u
    u.remove()


@pytest.fixture
def state(svc):
    """A state folder the service user owns, reachable through /tmp (the
    test's own tmp_path is root's 0700)."""
    top = tempfile.mkdtemp(prefix="pbxgt-state", dir="/tmp")
    os.chmod(top, 0o755)
    d = os.path.join(top, "state")
    os.mkdir(d, 0o700)
    os.chown(d, svc.uid, svc.gid)
    yield d
    shutil.rmtree(top, ignore_errors=True)


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)


def test_run_keeps_supplementary_groups(make_gateway, upstream, ctx, svc):
    gw = make_gateway(upstream.port, extra=["user %s" % svc.name])
    st = proc_status(gw.child_pid())    # the workers' process (privsep.c)
    assert st["Uid"].split() == [str(svc.uid)] * 4, st["Uid"]
    assert st["Gid"].split() == [str(svc.gid)] * 4, st["Gid"]
    assert sorted(int(g) for g in st["Groups"].split()) == sorted({svc.gid, svc.extra_gid}), \
        st["Groups"]
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/headers").status == 200


def auth_lines(state):
    return ["user_db %s" % os.path.join(state, "users.db"),
            "public_url https://localhost"]


def cli(gw, *args, inp=b""):
    return subprocess.run([gw.binary] + list(args) + ["-c", gw.conf], input=inp,
                          capture_output=True, timeout=60)


@pytest.mark.parametrize("command", ["user", "hash"])
def test_cli_as_root_creates_files_as_the_service_user(make_gateway, upstream, ctx, svc,
                                                       state, command):
    gw = make_gateway(upstream.port, extra=["user %s" % svc.name] + auth_lines(state),
                      start=False)
    if command == "hash":
        r = cli(gw, "hash", inp=PASSWORD)
        assert r.returncode == 0 and r.stdout.startswith(b"$argon2id$"), r.stderr
    r = cli(gw, "user", "add", "alice", inp=PASSWORD)
    assert r.returncode == 0, r.stderr
    for name in os.listdir(state):
        st = os.stat(os.path.join(state, name))
        assert (st.st_uid, st.st_gid) == (svc.uid, svc.gid), name
    assert {"users.db", "pbxgate-secret.key"} <= set(os.listdir(state))
    # and `run` as root, dropping to the same user, opens them
    gw.start()
    r = cli(gw, "user", "show", "alice")
    assert r.returncode == 0 and b"alice" in r.stdout, r.stderr
    wait_until(gw.healthy, timeout=10, what="healthz")


@pytest.mark.parametrize("victim", ["users.db", "pbxgate-secret.key"])
def test_files_owned_by_root_are_refused_with_the_fix(make_gateway, upstream, svc, state,
                                                      victim):
    gw = make_gateway(upstream.port, extra=["user %s" % svc.name] + auth_lines(state),
                      start=False)
    r = cli(gw, "user", "add", "bob", inp=PASSWORD)
    assert r.returncode == 0, r.stderr
    path = os.path.join(state, victim)
    os.chown(path, 0, 0)
    fix = ("chown %s:%d %s" % (svc.name, svc.gid, path)).encode()
    r = cli(gw, "user", "list")
    assert r.returncode == 1 and fix in r.stderr, r.stderr
    # run refuses a store SQLite would open as the user, with the same
    # advice; a root-owned secret key it reads through its privileged
    # parent (gateway/privsep.c, test_privsep.py)
    if victim == "users.db":
        r = subprocess.run([gw.binary, "run", "-c", gw.conf], capture_output=True,
                           timeout=60)
        assert r.returncode == 1 and fix in r.stderr, r.stderr
    os.chown(path, svc.uid, svc.gid)
    r = cli(gw, "user", "list")
    assert r.returncode == 0 and b"bob" in r.stdout, r.stderr
