"""test_disk_faults.py -- a full disk and a read-only user store: clear errors,
no crash. Each case runs in a private mount namespace (`unshare -m`) with a
small tmpfs, so nothing outside the test sees the mounts; needs root (CI and
the dev machines run as root), skipped otherwise.

Each case states the outcome the operator must see; the messages name the
cause (disk full, read-only) and never advise replacing an intact store.

Run: PBXGATE_BIN=build/pbxgate /usr/bin/python3 -m pytest -q tests/faults/test_disk_faults.py
Fast (about 10 s): fit for every CI run.
"""

import os
import shutil
import subprocess

import pytest

from faultlib import Client, Gateway, Upstream, client_context, mkcert, pbxgate_bin

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare for a private tmpfs")

PASSWORD = "correct horse battery"
CLEAR = ("no space", "disk full", "full", "read-only", "readonly", "read only")


def ns(script, timeout=60):
    """Runs a shell script in a private mount namespace; returns (rc, output)."""
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-ec", script],
                       capture_output=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


@pytest.fixture
def store(tmp_path):
    """A config whose user_db and secret_key live in DIR (mounted per test)."""
    d = tmp_path / "store"
    d.mkdir()
    cert, key = mkcert(str(tmp_path))
    conf = tmp_path / "pbxgate.conf"
    conf.write_text("listen 127.0.0.1:1\ntls_cert %s\ntls_key %s\nupstream http://127.0.0.1:1\n"
                    "user_db %s/users.db\nargon2 m=8 t=1 p=1\n" % (cert, key, d))
    return {"dir": str(d), "conf": str(conf), "bin": pbxgate_bin()}


def prologue(s, size="1m"):
    """Mounts the tmpfs and adds alice (which must work: the disk is not full yet)."""
    return ("B=%s; C=%s; D=%s\nmount -t tmpfs -o size=%s tmpfs $D\n"
            "echo '%s' | $B user add alice -c $C >/dev/null\n"
            % (s["bin"], s["conf"], s["dir"], size, PASSWORD))


FILL = "dd if=/dev/zero of=$D/fill bs=4k 2>/dev/null || true\n"
READONLY = "mount --bind $D $D\nmount -o remount,bind,ro $D\n"


def check_clean_failure(rc, out, what):
    assert rc == 1, "%s: exit %d (1 expected: a failure, not a crash):\n%s" % (what, rc, out)
    assert "AddressSanitizer" not in out and "runtime error" not in out, out


def test_user_add_on_full_disk_fails_cleanly(store):
    rc, out = ns(prologue(store) + FILL + "echo '%s' | $B user add bob -c $C\n" % PASSWORD)
    check_clean_failure(rc, out, "user add on a full disk")
    assert "users.db" in out, out


def test_user_add_on_full_disk_says_disk_full(store):
    rc, out = ns(prologue(store) + FILL + "echo '%s' | $B user add bob -c $C\n" % PASSWORD)
    assert any(w in out.lower() for w in CLEAR), out
    assert "new file" not in out, out


def test_user_list_on_full_disk_fails_cleanly_or_lists(store):
    rc, out = ns(prologue(store) + FILL + "$B user list -c $C\n")
    if rc == 0:
        assert "alice" in out
    else:
        check_clean_failure(rc, out, "user list on a full disk")


def test_store_survives_full_disk(store):
    """After the disk is freed again, alice is still there and bob can be added."""
    rc, out = ns(prologue(store) + FILL +
                 "echo '%s' | $B user add bob -c $C || true\nrm $D/fill\n"
                 "echo '%s' | $B user add carol -c $C\n$B user list -c $C\n"
                 % (PASSWORD, PASSWORD))
    assert rc == 0, out
    assert "alice" in out and "carol" in out, out


def test_user_add_on_readonly_store_fails_cleanly(store):
    rc, out = ns(prologue(store) + READONLY + "echo '%s' | $B user add bob -c $C\n" % PASSWORD)
    check_clean_failure(rc, out, "user add on a read-only store")


def test_user_add_on_readonly_store_says_read_only(store):
    rc, out = ns(prologue(store) + READONLY + "echo '%s' | $B user add bob -c $C\n" % PASSWORD)
    assert any(w in out.lower() for w in CLEAR), out
    assert "new file" not in out, out


def test_user_add_on_readonly_store_after_failed_write(store):
    rc, out = ns(prologue(store) + FILL + "echo '%s' | $B user add bob -c $C || true\n"
                 "rm $D/fill\n" % PASSWORD + READONLY +
                 "echo '%s' | $B user add bob -c $C\n" % PASSWORD)
    check_clean_failure(rc, out, "user add on a read-only store")
    assert "not an error" not in out, out
    assert any(w in out.lower() for w in CLEAR), out


def test_user_list_on_readonly_store_fails_cleanly_or_lists(store):
    rc, out = ns(prologue(store) + READONLY + "$B user list -c $C\n")
    if rc == 0:
        assert "alice" in out, out
    else:
        check_clean_failure(rc, out, "user list on a read-only store")


def _full_log_gateway(tmp_path):
    """Runs pbxgate with access_log on a full tmpfs, sends 200 requests, stops
    it; returns its stderr."""
    d = str(tmp_path)
    logdir = os.path.join(d, "logs")
    os.makedirs(logdir)
    wrapper = os.path.join(d, "pbxgate-fulldisk")
    with open(wrapper, "w") as f:
        # Gateway.start() runs `wrapper run -c CONF`; exec keeps the pid, so
        # its signals reach pbxgate.
        f.write("#!/bin/sh\nexec unshare -m --propagation private sh -c '"
                "mount -t tmpfs -o size=64k tmpfs \"$0\" && touch \"$0/access.log\" && "
                "{ dd if=/dev/zero of=\"$0/fill\" bs=4k 2>/dev/null || true; } && exec \"$@\"' "
                "%s %s \"$@\"\n" % (logdir, pbxgate_bin()))
    os.chmod(wrapper, 0o755)
    cert = mkcert(d)
    up = Upstream(d).start()
    gw = Gateway(wrapper, d, [cert], up.port)
    gw.access_log = os.path.join(logdir, "access.log")
    gw.write_config()
    try:
        gw.start()
        ctx = client_context(cert[0])
        with Client(gw.port, ctx) as c:
            for _ in range(200):
                assert c.request("GET", "/").status == 200
        assert gw.healthy()
    finally:
        rc = gw.stop()
        up.stop()
    assert not gw.sanitizer_reports(), gw.stderr()[-4000:]
    assert rc == 0, "pbxgate exited %s: %s" % (rc, gw.stderr()[-2000:])
    return gw.stderr()


def test_gateway_with_full_log_disk_keeps_serving(tmp_path):
    """access_log on a full tmpfs: requests are still answered, no crash, a
    clean exit on SIGTERM."""
    _full_log_gateway(tmp_path)


def test_gateway_with_full_log_disk_says_so(tmp_path):
    err = _full_log_gateway(tmp_path).lower()
    assert "access" in err and any(w in err for w in ("space", "full", "write")), err
