"""test_service.py -- pbxgate as a service: the readiness protocol read from
a NOTIFY_SOCKET the test listens on (READY after the port answers,
RELOADING/READY around SIGHUP, STOPPING on SIGTERM), and SIGUSR1 reopening
every log file without a reload, also when the config on disk is broken."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from helpers import Client, tls_connect, wait_until

BROKEN = "listen nowhere\nthis is not a keyword\n"


def start_with_env(gw, env):
    """Gateway.start() with extra environment variables."""
    e = dict(os.environ)
    e.update(env)
    gw.err = open(gw.stderr_path, "ab")
    gw.proc = subprocess.Popen([gw.binary, "run", "-c", gw.conf], stdin=subprocess.DEVNULL,
                               stdout=gw.err, stderr=gw.err, cwd=gw.dir, env=e)
    return gw


class NotifySocket:
    """The service manager's end: a datagram socket, one message each."""

    def __init__(self):
        # sun_path holds 108 bytes: a short folder, not pytest's tmp_path
        self.dir = tempfile.mkdtemp(prefix="pbxn", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=20):
        """The next message as a dict (KEY=VALUE lines)."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def port_answers(port, ctx):
    try:
        tls_connect(port, ctx).close()
        return True
    except OSError:
        return False


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_notify_ready_after_listeners(make_gateway, upstream, ctx, notify):
    gw = make_gateway(upstream.port, start=False)
    start_with_env(gw, {"NOTIFY_SOCKET": notify.path})
    m = notify.next()
    # the first word to the manager is READY=1, and the port answers by then
    assert m.get("READY") == "1", m
    assert port_answers(gw.port, ctx)
    assert m.get("STATUS") == "configuration generation 1 in force", m
    wait_until(gw.healthy, timeout=10, what="healthz")


def test_notify_reload_and_stop(make_gateway, upstream, ctx, notify):
    gw = make_gateway(upstream.port, start=False)
    start_with_env(gw, {"NOTIFY_SOCKET": notify.path})
    assert notify.next().get("READY") == "1"
    before = monotonic_usec()
    gw.proc.send_signal(signal.SIGHUP)
    m = notify.next()
    assert m.get("RELOADING") == "1", m
    usec = int(m["MONOTONIC_USEC"])
    assert before <= usec <= monotonic_usec(), (before, usec)
    m = notify.next()
    assert m.get("READY") == "1", m
    assert m.get("STATUS") == "configuration generation 2 in force", m
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/headers").status == 200

    # a broken reload still ends in READY=1: the old generation serves on
    good = open(gw.conf).read()
    with open(gw.conf, "w") as f:
        f.write(BROKEN)
    gw.proc.send_signal(signal.SIGHUP)
    assert notify.next().get("RELOADING") == "1"
    m = notify.next()
    assert m.get("READY") == "1", m
    assert "generation 2 stays in force" in m.get("STATUS", ""), m
    with open(gw.conf, "w") as f:
        f.write(good)

    gw.proc.send_signal(signal.SIGTERM)
    m = notify.next()
    assert m.get("STOPPING") == "1", m
    assert "STATUS" in m, m
    assert gw.proc.wait(15) == 0


def test_no_notify_socket_is_silent(make_gateway, upstream, ctx):
    """Without NOTIFY_SOCKET the gateway runs as before (nothing to tell)."""
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    gw = make_gateway(upstream.port, start=False)
    gw.err = open(gw.stderr_path, "ab")
    gw.proc = subprocess.Popen([gw.binary, "run", "-c", gw.conf], stdin=subprocess.DEVNULL,
                               stdout=gw.err, stderr=gw.err, cwd=gw.dir, env=env)
    wait_until(gw.healthy, timeout=20, what="healthz")


# ---- SIGUSR1: reopen the logs -------------------------------------------------

def lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def log_gateway(make_gateway, upstream, tmp_path):
    d = str(tmp_path)
    with open(os.path.join(d, "audit.policy"), "w") as f:
        f.write("allow path ^/ audit\n")
    paths = {k: os.path.join(d, k + ".log") for k in ("error", "audit")}
    gw = make_gateway(upstream.port, extra=[
        "error_log %s" % paths["error"], "audit_log %s" % paths["audit"],
        "policy %s" % os.path.join(d, "audit.policy")])
    paths["access"] = gw.access_log
    return gw, paths


def request(gw, ctx, tag):
    """One request whose path (the audit log has no query) carries tag."""
    with Client(gw.port, ctx) as c:
        r = c.request("GET", "/tag-" + tag)
        assert r.status in (200, 404), r


@pytest.mark.parametrize("config_on_disk", ["unchanged", "broken"])
def test_sigusr1_reopens_every_log(make_gateway, upstream, ctx, tmp_path, config_on_disk):
    gw, paths = log_gateway(make_gateway, upstream, tmp_path)
    request(gw, ctx, "before")
    for k in paths:
        wait_until(lambda k=k: any("before" in x for x in lines(paths[k]))
                   or k == "error" and lines(paths[k]),
                   timeout=10, what="a first line in the %s log" % k)
    gen, reloads = gw.generation(), gw.metric("pbxgate_config_reloads_total", 'result="ok"')
    for k, p in paths.items():
        os.rename(p, p + ".1")
    if config_on_disk == "broken":
        with open(gw.conf, "w") as f:
            f.write(BROKEN)
    old = {k: len(lines(p + ".1")) for k, p in paths.items()}

    gw.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: any("log files reopened" in x for x in lines(paths["error"])),
               timeout=10, what="the new error log to say so")
    request(gw, ctx, "after")
    for k in ("access", "audit"):
        wait_until(lambda k=k: any("after" in x for x in lines(paths[k])),
                   timeout=10, what="the request in the new %s log" % k)
    for k, p in paths.items():
        assert len(lines(p + ".1")) == old[k], (k, lines(p + ".1")[old[k]:])
        assert not any("after" in x for x in lines(p + ".1")), k
    # nothing was reloaded
    assert gw.generation() == gen
    assert gw.metric("pbxgate_config_reloads_total", 'result="ok"') == reloads
    assert gw.proc.poll() is None


def test_sigusr1_unwritable_path_keeps_old_file(make_gateway, upstream, ctx, tmp_path):
    """A log that cannot be opened again stays on its old file, and says why."""
    gw, paths = log_gateway(make_gateway, upstream, tmp_path)
    os.rename(paths["access"], paths["access"] + ".1")
    os.mkdir(paths["access"])  # a folder where the file was: open() fails
    gw.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: any("SIGUSR1: reopening logs: cannot open %s" % paths["access"] in x
                           for x in lines(paths["error"])),
               timeout=10, what="the error about the access log")
    n = len(lines(paths["access"] + ".1"))
    request(gw, ctx, "still")
    wait_until(lambda: len(lines(paths["access"] + ".1")) > n, timeout=10,
               what="the access line in the old file")
    os.rmdir(paths["access"])
