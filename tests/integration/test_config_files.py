"""test_config_files.py -- every file the configuration names must be a
regular file: a FIFO, directory, socket or character device is refused at
its path before any read, with the exact `FILE:LINE:COL` line, by `pbxgate
check` (promptly: a FIFO used to block it forever) and by a running
gateway's SIGHUP (the old snapshot keeps serving, and SIGTERM still stops
it)."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from helpers import Client, wait_until

CHECK_DEADLINE = 10  # seconds; the real run takes milliseconds


@pytest.fixture(scope="module")
def specials(workdir):
    """One file of each kind no loader may open, by kind name."""
    d = os.path.join(workdir, "specials")
    os.makedirs(d, exist_ok=True)
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    sdir = os.path.join(d, "dir")
    os.mkdir(sdir)
    sock_path = os.path.join(d, "sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(sock_path)
    yield {"fifo": fifo, "directory": sdir, "socket": sock_path,
           "character device": "/dev/zero"}
    sock.close()


def _conf(d, certs, line):
    """A config whose line 5 is `line`; returns its path."""
    conf = os.path.join(d, "files.conf")
    cert, key = certs.main
    with open(conf, "w", encoding="utf-8") as f:
        f.write("listen 127.0.0.1:1\ntls_cert %s\ntls_key %s\n"
                "upstream http://127.0.0.1:2\n%s\n" % (cert, key, line))
    return conf


def _policy(d, text):
    pol = os.path.join(d, "files.policy")
    with open(pol, "w", encoding="utf-8") as f:
        f.write(text)
    return pol


def _check(pbxgate_bin, conf):
    """`pbxgate check`, bounded; returns (exit status, error lines, seconds)."""
    start = time.monotonic()
    try:
        r = subprocess.run([pbxgate_bin, "check", "-c", conf], capture_output=True,
                           text=True, timeout=CHECK_DEADLINE, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("pbxgate check did not finish within %ds" % CHECK_DEADLINE)
    lines = [ln for ln in r.stderr.splitlines() if "configuration is" not in ln]
    return r.returncode, lines, time.monotonic() - start


# (id, line 5 of the config with {p} for the special file, column of {p},
# prefix of the message); "policy-include" and "policy-file" put {p} in the
# policy file instead (line 1 there).
KINDS = [
    ("include", "include {p}", 9, ""),
    ("tls_cert", "tls_cert {p}", 10, "tls_cert: "),
    ("tls_key", "tls_key {p}", 9, "tls_key: "),
    ("upstream_ca", "upstream_ca {p}", 13, "upstream_ca: "),
    ("policy", "policy {p}", 8, "policy: "),
    ("geoip_db", "geoip_db {p}", 10, "geoip_db: "),
    ("user_db", "user_db {p}", 9, "user_db: "),
    ("secret_key", "secret_key {p}", 12, "secret_key: "),
    ("scrub_rules", "scrub_rules {p}", 13, "scrub_rules: "),
    ("smtp_auth", "smtp_auth mailer {p}", 18, "smtp_auth: "),
    ("smtp_relay_auth", "smtp_relay_auth mailer {p}", 24, "smtp_relay_auth: "),
    ("policy-include", "include {p}\nallow any\n", 9, ""),
    ("policy-file", "list blocked file:{p}\n", 19, ""),
]
SPECIALS = ["fifo", "directory", "socket", "character device"]


@pytest.mark.parametrize("special", SPECIALS)
@pytest.mark.parametrize("kind,template,col,prefix", KINDS, ids=[k[0] for k in KINDS])
def test_check_refuses_non_regular_file(pbxgate_bin, certs, workdir, specials, kind,
                                        template, col, prefix, special):
    d = os.path.join(workdir, "check-%s-%s" % (kind, special.replace(" ", "-")))
    os.makedirs(d, exist_ok=True)
    p = specials[special]
    if kind.startswith("policy-"):
        where = _policy(d, template.format(p=p))
        conf = _conf(d, certs, "policy %s" % where)
        line = 1
    else:
        conf = where = _conf(d, certs, template.format(p=p))
        line = 5
    rc, lines, took = _check(pbxgate_bin, conf)
    assert rc == 1, lines
    assert lines == ["%s:%d:%d: error: %s%s: not a regular file (%s)"
                     % (where, line, col, prefix, p, special)]
    assert took < CHECK_DEADLINE


# ---------------------------------------------------------------- SIGHUP

def _get_ok(gw, ctx):
    with Client(gw.port, ctx) as c:
        return c.request("GET", "/").status == 200


def _swap_for_fifo(path):
    """Replaces the regular file at `path` with a FIFO."""
    os.unlink(path)
    os.mkfifo(path)


# How each reload is broken: a function(gw, files) that puts the FIFO in
# place and returns the exact error line expected in the gateway's log.
def _reload_include(gw, f):
    with open(gw.conf, "a", encoding="utf-8") as out:
        out.write("include %s\n" % f["fifo"])
    n = len(gw.config_text().splitlines()) + 1
    return "%s:%d:9: %s: not a regular file (fifo)" % (gw.conf, n, f["fifo"])


def _reload_policy_include(gw, f):
    with open(f["policy"], "w", encoding="utf-8") as out:
        out.write("include %s\nallow any\n" % f["fifo"])
    return "%s:1:9: %s: not a regular file (fifo)" % (f["policy"], f["fifo"])


def _reload_policy_file(gw, f):
    with open(f["policy"], "w", encoding="utf-8") as out:
        out.write("list ok file:%s\nallow any\n" % f["fifo"])
    return "%s:1:14: %s: not a regular file (fifo)" % (f["policy"], f["fifo"])


def _reload_tls_cert(gw, f):
    _swap_for_fifo(f["cert"])
    return "%s:4:10: tls_cert: %s: not a regular file (fifo)" % (gw.conf, f["cert"])


def _reload_tls_key(gw, f):
    _swap_for_fifo(f["key"])
    return "%s:5:9: tls_key: %s: not a regular file (fifo)" % (gw.conf, f["key"])


def _reload_scrub_rules(gw, f):
    with open(gw.conf, "a", encoding="utf-8") as out:
        out.write("scrub_rules %s\n" % f["fifo"])
    n = len(gw.config_text().splitlines()) + 1
    return "%s:%d:13: scrub_rules: %s: not a regular file (fifo)" % (
        gw.conf, n, f["fifo"])


RELOADS = [
    ("include", _reload_include),
    ("policy-include", _reload_policy_include),
    ("policy-file", _reload_policy_file),
    ("tls_cert", _reload_tls_cert),
    ("tls_key", _reload_tls_key),
    ("scrub_rules", _reload_scrub_rules),
]


@pytest.mark.parametrize("kind,breaker", RELOADS, ids=[r[0] for r in RELOADS])
def test_sighup_with_fifo_keeps_old_snapshot_and_stops(make_gateway, upstream, certs,
                                                         workdir, ctx, kind, breaker):
    d = os.path.join(workdir, "reload-%s" % kind)
    os.makedirs(d, exist_ok=True)
    f = {"fifo": os.path.join(d, "fifo"), "cert": os.path.join(d, "cert.pem"),
         "key": os.path.join(d, "key.pem"), "policy": _policy(d, "allow any\n")}
    os.mkfifo(f["fifo"])
    shutil.copy(certs.main[0], f["cert"])
    shutil.copy(certs.main[1], f["key"])
    gw = make_gateway(upstream.port, extra=["policy %s" % f["policy"]],
                      cert_pairs=[(f["cert"], f["key"])])
    assert _get_ok(gw, ctx)
    gen = gw.generation()
    want = breaker(gw, f)
    gw.reload("error")
    assert gw.generation() == gen
    assert _get_ok(gw, ctx)
    wait_until(lambda: want in gw.stderr(), timeout=5,
               what="the error line %r in the gateway's log" % want)
    gw.proc.send_signal(signal.SIGTERM)
    try:
        rc = gw.proc.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail("pbxgate did not stop within 10 s of SIGTERM after the failed reload")
    assert rc == 0
