"""test_privsep.py -- `pbxgate run` as a privileged parent and an
unprivileged child (gateway/privsep.c): started as root with `user` set and
root-only 0600 certificate, key and secret key, the child runs as the user
with its supplementary groups, no capability, no_new_privs and the seccomp
filter; renewed root-only certificates are served after SIGHUP; a killed
child is replaced and serves again within 2 s; a broken config on SIGHUP
keeps serving; SIGTERM drains and the parent exits 0; the readiness
protocol holds with the split. Needs root (useradd); skipped otherwise."""

import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

import pytest

from helpers import Client, tls_connect, wait_until
from test_privdrop import SystemUser, proc_status
from test_service import NotifySocket, port_answers, start_with_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"),
                                reason="needs root and useradd")

BROKEN = "listen nowhere\nthis is not a keyword\n"


@pytest.fixture(scope="module")
def svc():
    u = SystemUser()
    yield u
    u.remove()


@pytest.fixture
def rootdir():
    """A root-only folder (0700) for the certificate, key and secret key."""
    d = tempfile.mkdtemp(prefix="pbxgt-root", dir="/tmp")
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def state(svc):
    """The user store's folder, the service user's (SQLite writes there)."""
    top = tempfile.mkdtemp(prefix="pbxgt-state", dir="/tmp")
    os.chmod(top, 0o755)
    d = os.path.join(top, "state")
    os.mkdir(d, 0o700)
    os.chown(d, svc.uid, svc.gid)
    yield d
    shutil.rmtree(top, ignore_errors=True)


def install(src, dst):
    """Copies src to dst as root:root 0600 (certbot's layout)."""
    tmp = dst + ".new"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o600)
    os.chown(tmp, 0, 0)
    os.rename(tmp, dst)


def root_pair(rootdir, pair):
    cert, key = os.path.join(rootdir, "cert.pem"), os.path.join(rootdir, "key.pem")
    install(pair[0], cert)
    install(pair[1], key)
    return cert, key


def secret_key(rootdir):
    path = os.path.join(rootdir, "secret.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"1 " + os.urandom(32).hex().encode() + b"\n")
    os.close(fd)
    return path


def privsep_gateway(make_gateway, upstream, certs, svc, rootdir, state, start=True):
    pair = root_pair(rootdir, certs.main)
    extra = ["user %s" % svc.name,
             "user_db %s" % os.path.join(state, "users.db"),
             "secret_key %s" % secret_key(rootdir),
             "public_url https://localhost"]
    return make_gateway(upstream.port, extra=extra, cert_pairs=[pair], start=start)


def served_cert(port):
    """The DER certificate new connections get."""
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    s = tls_connect(port, c)
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def serves(gw, ctx):
    try:
        with Client(gw.port, ctx) as c:
            return c.request("GET", "/headers").status == 200
    except OSError:
        return False


def test_child_is_unprivileged(make_gateway, upstream, ctx, certs, svc, rootdir, state):
    gw = privsep_gateway(make_gateway, upstream, certs, svc, rootdir, state)
    parent = proc_status(gw.proc.pid)
    st = proc_status(gw.child_pid())
    assert parent["Uid"].split()[0] == "0", parent["Uid"]
    assert st["Uid"].split() == [str(svc.uid)] * 4, st["Uid"]
    assert st["Gid"].split() == [str(svc.gid)] * 4, st["Gid"]
    assert sorted(int(g) for g in st["Groups"].split()) == sorted({svc.gid, svc.extra_gid}), \
        st["Groups"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    assert st["NoNewPrivs"].strip() == "1"
    assert st["Seccomp"].strip() == "2"
    # the child cannot open the root-only files itself, yet it serves them
    assert serves(gw, ctx)
    assert served_cert(gw.port) == pem_der(os.path.join(rootdir, "cert.pem"))


def test_root_without_user_keeps_no_capability(make_gateway, upstream, ctx):
    """No `user`: the child stays uid 0 but with no capability, filtered."""
    gw = make_gateway(upstream.port)
    st = proc_status(gw.child_pid())
    assert st["Uid"].split()[0] == "0"
    for cap in ("CapPrm", "CapEff", "CapAmb", "CapBnd"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    assert st["NoNewPrivs"].strip() == "1"
    assert st["Seccomp"].strip() == "2"
    assert serves(gw, ctx)


def test_sighup_serves_renewed_root_only_certificate(make_gateway, upstream, ctx, certs,
                                                     svc, rootdir, state):
    gw = privsep_gateway(make_gateway, upstream, certs, svc, rootdir, state)
    assert served_cert(gw.port) == pem_der(certs.main[0])
    # certbot renews: new files, still root:root 0600
    root_pair(rootdir, certs.alt)
    gw.reload()
    assert served_cert(gw.port) == pem_der(certs.alt[0])
    assert gw.generation() == 2


def test_killed_child_is_restarted_within_2s(make_gateway, upstream, ctx, certs, svc,
                                            rootdir, state):
    gw = privsep_gateway(make_gateway, upstream, certs, svc, rootdir, state)
    old = gw.child_pid()
    os.kill(old, signal.SIGKILL)
    t0 = time.monotonic()
    wait_until(lambda: serves(gw, ctx), timeout=2.0, interval=0.05,
               what="a request served by the restarted child")
    assert time.monotonic() - t0 <= 2.0
    new = gw.child_pid(other_than=old)
    assert new != old and gw.proc.poll() is None
    assert proc_status(new)["Seccomp"].strip() == "2"
    wait_until(lambda: "child exited on signal 9" in gw.stderr(), timeout=5,
               what="the parent to log why the child died")


def test_broken_config_on_sighup_keeps_serving(make_gateway, upstream, ctx, certs, svc,
                                              rootdir, state):
    gw = privsep_gateway(make_gateway, upstream, certs, svc, rootdir, state)
    child = gw.child_pid()
    with open(gw.conf, "w") as f:
        f.write(BROKEN)
    gw.reload(expect="error")
    assert serves(gw, ctx)
    assert gw.generation() == 1
    assert gw.child_pid() == child and gw.proc.poll() is None


def test_sigterm_drains_and_parent_exits_0(make_gateway, upstream, ctx, certs, svc,
                                          rootdir, state):
    gw = privsep_gateway(make_gateway, upstream, certs, svc, rootdir, state)
    child = gw.child_pid()
    assert gw.stop() == 0
    assert not os.path.exists("/proc/%d/status" % child) or \
        proc_status(child).get("State", "").split()[0] == "Z"


def test_readiness_with_the_split(make_gateway, upstream, ctx, certs, svc, rootdir, state):
    notify = NotifySocket()
    try:
        gw = privsep_gateway(make_gateway, upstream, certs, svc, rootdir, state, start=False)
        start_with_env(gw, {"NOTIFY_SOCKET": notify.path})
        m = notify.next()
        assert m.get("READY") == "1", m
        assert port_answers(gw.port, ctx)
        gw.proc.send_signal(signal.SIGHUP)
        assert notify.next().get("RELOADING") == "1"
        m = notify.next()
        assert m.get("READY") == "1", m
        assert m.get("STATUS") == "configuration generation 2 in force", m
        gw.proc.send_signal(signal.SIGTERM)
        assert notify.next().get("STOPPING") == "1"
        assert gw.proc.wait(15) == 0
    finally:
        notify.close()
