"""test_pglive_stop.py -- retiring a login context whose change listener
is stuck in a host name lookup never holds up the gateway's main thread.

The listener checks its stop signal only between poll()s; libpq resolves
the server's host name with getaddrinfo(), which blocks for the
resolver's whole timeout. The gateway runs in a private mount namespace
(`unshare --mount`) where /etc/hosts, /etc/resolv.conf and
/etc/nsswitch.conf are this test's files: the PostgreSQL host name is in
the hosts file at first, then removed, and the listener's backend is
terminated, so the listener reconnects and asks the one name server, a
UDP socket of this test on 127.0.0.1:53 that does not answer
(timeout:30, attempts:1). A reload then retires the site's context: the
main thread asks the listener to stop, says once that it is still
stopping, and a second reload completes at once while the lookup still
hangs. Once the name server answers, the listener ends and the old
context closes. Needs root (unshare, port 53); skipped otherwise.
"""

import errno
import os
import shlex
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

from conftest import _finish_gateway
from helpers import Timeout, wait_until
from test_pgstore import FAST, PGBIN, Postgres
from test_pgtls import ROLE, ROLE_PASSWORD, _ca, _server_cert
from test_sites_run import SitesGateway, site_block, site_certs  # noqa: F401

PG_NAME = "pg-live.pbxgate.test"   # only in the namespace's hosts file
RESOLV = "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n"
STOPPING = ("site a: the previous login context's change listener is still"
            " stopping")
CLOSED = "site a: previous login context closed"
RELOAD_S = 5.0      # a reload of this config takes well under one, ASan too
DNS_LIFE_S = 170    # the server thread's bound: the suite's test deadline


def _qname(query):
    """The question's name and where the question ends, or (None, 0)."""
    labels, i = [], 12
    while i < len(query) and len(labels) < 128:
        n = query[i]
        if n == 0:
            end = i + 5     # the zero byte, QTYPE and QCLASS
            return ".".join(labels).lower(), end if end <= len(query) else 0
        if n & 0xC0:
            return None, 0
        labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return None, 0


def _refused(query):
    """REFUSED for query, its question echoed (glibc matches on it)."""
    name, end = _qname(query)
    if name is None or end == 0:
        return None
    qid, flags = struct.unpack("!HH", query[:4])
    head = struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x0100) | 5, 1, 0, 0, 0)
    return head + query[12:end]


class SilentDns:
    """A name server on 127.0.0.1:53 that records each query's name and
    answers none until release(); after it, every query so far and later
    is answered REFUSED, which ends the lookup at once."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(("127.0.0.1", 53))
        except OSError as e:
            self.sock.close()
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                pytest.skip("cannot bind 127.0.0.1:53 for the silent name server: %s" % e)
            raise
        self.sock.settimeout(0.1)
        self.names, self.held = [], []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        deadline = time.monotonic() + DNS_LIFE_S
        while not self.done.is_set() and time.monotonic() < deadline:
            if self.released.is_set():
                with self.lock:
                    held, self.held = self.held, []
                for q, peer in held:
                    self._answer(q, peer)
            try:
                q, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            with self.lock:
                self.names.append(_qname(q)[0])
                if not self.released.is_set():
                    self.held.append((q, peer))
                    continue
            self._answer(q, peer)

    def _answer(self, q, peer):
        a = _refused(q)
        if a is not None:
            self.sock.sendto(a, peer)

    def asked(self, name):
        with self.lock:
            return self.names.count(name)

    def release(self):
        self.released.set()

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


def _namespace_files(d):
    """hosts (naming PG_NAME), resolv.conf, and nsswitch.conf with the
    machine's lines but `hosts: files dns`: the lookup order is ours."""
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.1 %s\n" % PG_NAME)
    resolv = os.path.join(d, "resolv.conf")
    with open(resolv, "w") as f:
        f.write(RESOLV)
    nss = os.path.join(d, "nsswitch.conf")
    try:
        with open("/etc/nsswitch.conf") as f:
            lines = [l for l in f if not l.split(":")[0].strip() == "hosts"]
    except FileNotFoundError:
        lines = ["passwd: files\n", "group: files\n"]
    with open(nss, "w") as f:
        f.writelines(lines + ["hosts: files dns\n"])
    return hosts, resolv, nss


def _wrapper(d, binary, hosts, resolv, nss):
    """A script run in place of the binary: the binary in a mount
    namespace of its own with our three files over the machine's."""
    path = os.path.join(d, "pbxgate-ns")
    binds = "".join("mount --bind %s %s\n" % (shlex.quote(src), dst) for src, dst in (
        (hosts, "/etc/hosts"), (resolv, "/etc/resolv.conf"),
        (nss, "/etc/nsswitch.conf")))
    with open(path, "w") as f:
        f.write("#!/bin/sh\n# written by test_pglive_stop.py\n"
                "exec unshare --mount --propagation private /bin/sh -ec %s sh \"$@\"\n"
                % shlex.quote(binds + "exec %s \"$@\"\n" % shlex.quote(binary)))
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def namespace(workdir, pbxgate_bin):
    """(wrapper, hosts file, silent name server)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: a mount namespace and port 53")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    d = os.path.join(workdir, "ns-%s" % uuid.uuid4().hex[:8])
    os.makedirs(d)
    hosts, resolv, nss = _namespace_files(d)
    wrapper = _wrapper(d, pbxgate_bin, hosts, resolv, nss)
    probe = subprocess.run([wrapper, "--version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("cannot run the binary in a mount namespace of its own: %s"
                    % probe.stderr.decode("utf-8", "replace").strip())
    dns = SilentDns()
    try:
        yield wrapper, hosts, dns
    finally:
        dns.release()   # a lookup still waiting ends, so the gateway can stop
        dns.close()


@pytest.fixture
def pg_by_name(workdir):
    """PostgreSQL over TLS on 127.0.0.1, its certificate for PG_NAME: a
    URL that names the host, and the password file."""
    if not os.access(PGBIN + "/initdb", os.X_OK):
        pytest.skip("postgresql-15 is not installed (tests/install-deps)")
    d = os.path.join(workdir, "pgname-%s" % uuid.uuid4().hex[:8])
    os.makedirs(d)
    ca = _ca(d, "pg-name-ca")
    pg = Postgres(tls=_server_cert(d, ca, PG_NAME))
    try:
        pg.start()
        pg.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (ROLE, ROLE_PASSWORD))
        db = "gw_%s" % uuid.uuid4().hex[:12]
        pg.psql("CREATE DATABASE %s OWNER %s" % (db, ROLE))
        pwfile = os.path.join(d, "pgpass")
        with open(pwfile, "w") as f:
            f.write(ROLE_PASSWORD + "\n")
        os.chmod(pwfile, 0o600)
        url = "postgresql://%s@%s:%d/%s?sslrootcert=%s" % (ROLE, PG_NAME, pg.port, db, ca[0])
        yield pg, url, pwfile
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


def test_listener_stuck_in_dns_does_not_hold_up_reloads(namespace, pg_by_name, site_certs,  # noqa: F811
                                                        make_upstream, workdir):
    wrapper, hosts, dns = namespace
    pg, url, pwfile = pg_by_name
    d, certs = site_certs
    up = make_upstream()
    pol = os.path.join(d, "pglive-stop.policy")
    with open(pol, "w") as f:
        f.write("allow path ^/_pbxgate/\ndefault allow\n")
    key = os.path.join(workdir, "stop-%s.key" % uuid.uuid4().hex[:8])
    gw = SitesGateway(wrapper, workdir, [], 1, name="gw-stop-%s" % uuid.uuid4().hex[:8],
                      sites=[site_block("a", certs, up.port, pol, extra=(
                          "user_db %s" % url, "user_db_password_file %s" % pwfile,
                          "secret_key %s" % key) + tuple(FAST))])
    try:
        gw.start()

        def m(name):
            return gw.metric("pbxgate_user_store_" + name, 'site="a"')
        wait_until(lambda: m("listener_connected") == 1 and m("reloads_total") >= 1,
                   timeout=15, interval=0.1, what="a's listener connected by name")
        assert dns.asked(PG_NAME) == 0      # the hosts file answered

        # the name goes; the listener's connection too: it reconnects and
        # asks the name server, which does not answer
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n")
        assert pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                       " WHERE application_name = 'pbxgate-listen'") == "1"
        wait_until(lambda: dns.asked(PG_NAME) >= 1, timeout=10, interval=0.05,
                   what="the listener to look up %s" % PG_NAME)

        # retire the context: a moves to a SQLite store
        gw.sites = [site_block("a", certs, up.port, pol, os.path.join(gw.dir, "a.db"))]
        gw.write_config()
        gw.reload()
        # a sweep asks the listener to stop; a later one finds it stopping
        # and says so. Without that line the second reload is still made
        # (8 s on, four ticks: the sweep has met the context by then), so
        # that a main thread stuck in the listener's join shows as the
        # reload's time, not only as a missing line.
        try:
            wait_until(lambda: STOPPING in gw.stderr(), timeout=8, interval=0.05,
                       what="the log to say a's listener is still stopping")
            said = True
        except Timeout:
            said = False

        t0 = time.monotonic()
        gw.reload(timeout=45)
        took = time.monotonic() - t0
        print("second reload took %.2fs with the listener in getaddrinfo" % took)
        assert said, "no line %r in the log:\n%s" % (STOPPING, gw.stderr()[-3000:])
        assert took < RELOAD_S, "the second reload took %.2fs" % took
        assert dns.asked(PG_NAME) >= 1 and not dns.released.is_set()
        assert CLOSED not in gw.stderr()

        # the name server answers: the lookup fails, the listener ends,
        # and the old context closes a sweep or two later
        dns.release()
        wait_until(lambda: CLOSED in gw.stderr(), timeout=15, interval=0.1,
                   what="a's old context closed once its listener ended")
        assert gw.stderr().count(STOPPING) == 1, gw.stderr()[-3000:]
        assert m("listener_connected") is None     # a's store is SQLite now
    finally:
        dns.release()
        _finish_gateway(gw)
