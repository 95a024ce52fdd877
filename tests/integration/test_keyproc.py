"""test_keyproc.py -- the TLS private keys live in the key process: handshakes
with ECDSA and RSA certificates (TLS 1.2 with each signature scheme, TLS 1.3)
are signed there; the network process's memory holds no private key bytes; a
stuck key process fails handshakes closed and a dead one is restarted; a
rotated certificate and key are served after SIGHUP, and a certificate whose
key the key process does not hold is refused."""

import os
import shutil
import signal
import ssl
import threading

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from helpers import (Client, client_context, mkcert, openssl, request_bytes, tls_connect,
                     wait_until)


def key_process(gw):
    return gw.key_pid()


def secrets_of(key_file):
    """The private numbers of a key, big-endian (as in DER) and as OpenSSL's
    BIGNUMs hold them on a little-endian machine (reversed)."""
    with open(key_file, "rb") as f:
        k = load_pem_private_key(f.read(), None)
    nums = k.private_numbers()
    if hasattr(nums, "private_value"):  # EC
        vals = [(nums.private_value, (k.curve.key_size + 7) // 8)]
    else:  # RSA: the primes and the private exponent
        half = (k.key_size // 2 + 7) // 8
        vals = [(nums.p, half), (nums.q, half), (nums.d, k.key_size // 8)]
    out = []
    for v, n in vals:
        be = v.to_bytes(n, "big")
        out += [be, be[::-1]]
    return out


def memory_holds(pid, needles):
    """Whether any readable mapping of pid holds one of needles."""
    found = False
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if "r" not in fields[1] or hi - lo > (1 << 30):
                continue  # unreadable, or a sanitizer's reserved shadow
            if len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]"):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            if any(n in data for n in needles):
                found = True
                break
    return found


def stop_process(pid):
    """SIGSTOP pid and wait until every thread of it has stopped. kill(2)
    returns before that: a stop signal wakes one thread, which stops the
    others only once it runs, so on a loaded machine another thread can
    still take and answer a request in between."""
    os.kill(pid, signal.SIGSTOP)

    def all_stopped():
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                if f.read().rpartition(")")[2].split()[0] != "T":
                    return False
        return True
    wait_until(all_stopped, timeout=10, what="every thread of %d stopped" % pid)


def get(port, ctx, server_name="localhost"):
    with Client(port, ctx, server_name) as c:
        c.send(request_bytes("GET", "/bytes/10", [("Connection", "close")],
                             host=server_name))
        return c.reader.response("GET")


def served_cert(port, server_name, *args):
    """The PEM certificate a handshake with openssl s_client got, and its
    output (which names the signature type)."""
    r = openssl("s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
                server_name, "-showcerts", *args, input=b"Q\n", timeout=20)
    return r.stdout.decode(errors="replace"), r.returncode


@pytest.fixture(scope="module")
def third(certs):
    return mkcert(certs.dir, "third", "third.test", "ec")


@pytest.fixture
def kgw(make_gateway, upstream, certs, third):
    return make_gateway(upstream.port, cert_pairs=[certs.main, certs.alt, third])


# ---------------------------------------------------------------- handshakes

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("name,which", [("localhost", "main"), ("alt.test", "alt"),
                                        ("third.test", "third")])
def test_handshake_signed_by_key_process(kgw, certs, third, version, name, which):
    cafile = {"main": certs.main[0], "alt": certs.alt[0], "third": third[0]}[which]
    ctx = client_context(cafile, minv=version, maxv=version)
    r = get(kgw.port, ctx, name)
    assert r.status == 200
    with tls_connect(kgw.port, ctx, name) as s:
        assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                               ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


@pytest.mark.parametrize("name,sigalg,expect", [
    ("localhost", "ECDSA+SHA256", "ECDSA"),
    ("localhost", "ECDSA+SHA384", "ECDSA"),
    ("localhost", "ECDSA+SHA512", "ECDSA"),
    ("alt.test", "RSA+SHA256", "RSA"),          # PKCS#1 v1.5
    ("alt.test", "RSA+SHA512", "RSA"),
    ("alt.test", "rsa_pss_rsae_sha256", "RSA-PSS"),
    ("alt.test", "rsa_pss_rsae_sha384", "RSA-PSS"),
])
def test_tls12_signature_schemes(kgw, certs, name, sigalg, expect):
    out, rc = served_cert(kgw.port, name, "-tls1_2", "-sigalgs", sigalg,
                          "-CAfile", certs.cafile, "-verify_return_error")
    assert rc == 0, out
    assert "Peer signature type: %s\n" % expect in out, out
    assert "Verify return code: 0 (ok)" in out


# ---------------------------------------------------------------- memory

def test_network_process_memory_holds_no_private_key(kgw, certs, third, ctx):
    for name, c in (("localhost", ctx), ("alt.test", ctx)):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            cc = client_context(certs.cafile, minv=v, maxv=v)
            assert get(kgw.port, cc, name).status == 200
    needles = secrets_of(certs.main[1]) + secrets_of(certs.alt[1]) + secrets_of(third[1])
    # neither the network child nor the privileged parent (whose parse
    # took only the certificates: it is attached to the key process too)
    assert not memory_holds(kgw.child_pid(), needles)
    assert not memory_holds(kgw.proc.pid, needles)
    # the scan finds a key where there is one: the key process holds them
    kp = key_process(kgw)
    assert memory_holds(kp, secrets_of(certs.main[1]))
    assert memory_holds(kp, secrets_of(certs.alt[1]))
    assert memory_holds(kp, secrets_of(third[1]))


def test_key_process_keeps_nothing_else(kgw):
    kp = key_process(kgw)
    fds = sorted(int(f) for f in os.listdir("/proc/%d/fd" % kp))
    assert fds[:5] == [0, 1, 2, 3, 4]
    # beyond its control and sign sockets, only the answer sockets the
    # network threads registered (cert_keymsg.h channels): no file, no
    # listener, and at most one per channel
    extra = fds[5:]
    assert len(extra) <= 1024
    for fd in extra:
        assert os.readlink("/proc/%d/fd/%d" % (kp, fd)).startswith("socket:[")
    with open("/proc/%d/status" % kp) as f:
        status = f.read()
    assert "NoNewPrivs:\t1" in status


def test_concurrent_handshakes_each_get_their_own_signature(kgw, ctx):
    """40 clients at once, ECDSA and RSA certificates mixed, so that several
    handshakes wait for the key process together on the worker's channels
    (and, beyond its 16, on sockets of their own): each answer must wake
    the handshake it belongs to; a signature handed to the wrong one (the
    other certificate's key, or another transcript) fails the client's
    verification."""
    names = ("localhost", "alt.test")
    results = []

    def one(i):
        try:
            results.append(get(kgw.port, ctx, names[i % 2]).status)
        except Exception as e:  # noqa: BLE001 - reported below
            results.append(repr(e))

    for _ in range(3):
        threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert results == [200] * 120
    assert kgw.healthy()


# ---------------------------------------------------------------- failure

def test_stuck_key_process_fails_handshakes_closed(kgw, ctx, upstream):
    """A key process that does not answer (stopped here, so the parent does
    not restart it) fails each handshake after the signing timeout
    (certs/cert_keysign.c, 3 s) and nothing reaches the upstream."""
    assert get(kgw.port, ctx).status == 200
    kp = key_process(kgw)
    stop_process(kp)
    try:
        before = len(upstream.requests())
        for name in ("localhost", "alt.test"):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                get(kgw.port, ctx, name)
        assert len(upstream.requests()) == before
        wait_until(lambda: "key process" in kgw.stderr(), timeout=10,
                   what="the refused handshake logged")
        assert kgw.healthy()
    finally:
        os.kill(kp, signal.SIGCONT)
    assert get(kgw.port, ctx).status == 200


def test_dead_key_process_is_restarted(kgw, ctx, upstream):
    """The parent reaps a key process that died and forks a new one holding
    the same keys; the network child keeps its socket to it."""
    assert get(kgw.port, ctx).status == 200
    kp = key_process(kgw)
    os.kill(kp, signal.SIGKILL)
    wait_until(lambda: "key process exited (signal 9)" in kgw.stderr(), timeout=10,
               what="the parent to log the dead key process")
    new = wait_until(lambda: (lambda p: p if p != kp else None)(key_process(kgw)),
                     timeout=10, what="a new key process")
    assert new != kp
    for name in ("localhost", "alt.test"):
        assert get(kgw.port, ctx, name).status == 200
    assert kgw.healthy()


# ---------------------------------------------------------------- reload

def _ctx_pem(pem):
    return ssl.create_default_context(cadata=pem)


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_sighup_serves_rotated_certificate_and_key(make_gateway, upstream, tmp_path, kind):
    d = str(tmp_path)
    live = mkcert(d, "live", "localhost", kind)
    old_pem = open(live[0]).read()
    gw = make_gateway(upstream.port, cert_pairs=[live])
    assert get(gw.port, _ctx_pem(old_pem)).status == 200
    os.makedirs(os.path.join(d, "next"))
    new = mkcert(os.path.join(d, "next"), "live", "localhost", kind)
    # as certbot renews: new files at the same paths, the key root-only
    shutil.copyfile(new[1], live[1])
    os.chmod(live[1], 0o600)
    shutil.copyfile(new[0], live[0])
    gw.reload("ok")
    assert get(gw.port, client_context(new[0])).status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        get(gw.port, _ctx_pem(old_pem))


def test_sighup_with_certificate_whose_key_is_missing_keeps_old_pair(
        make_gateway, upstream, tmp_path):
    d = str(tmp_path)
    live = mkcert(d, "live", "localhost", "ec")
    old_pem = open(live[0]).read()
    gw = make_gateway(upstream.port, cert_pairs=[live])
    os.makedirs(os.path.join(d, "other"))
    other = mkcert(os.path.join(d, "other"), "live", "localhost", "ec")
    shutil.copyfile(other[0], live[0])  # a new certificate, the old key
    gw.reload("error")
    assert "holds no key matching" in gw.stderr()
    assert get(gw.port, _ctx_pem(old_pem)).status == 200


def test_sighup_with_broken_key_keeps_old_keys(make_gateway, upstream, tmp_path):
    d = str(tmp_path)
    live = mkcert(d, "live", "localhost", "rsa")
    pem = open(live[0]).read()
    gw = make_gateway(upstream.port, cert_pairs=[live])
    with open(live[1], "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    gw.reload("error")
    assert "no usable private key" in gw.stderr()
    assert get(gw.port, _ctx_pem(pem)).status == 200


def test_failed_reloads_after_key_rotation_keep_serving_old_pair(make_gateway, upstream,
                                                                 tmp_path):
    """The key file is renewed but the certificate beside it is broken: each
    SIGHUP loads the new key, then fails on the certificate. The running
    certificate's key must stay in the key process however often that
    happens."""
    d = str(tmp_path)
    live = mkcert(d, "live", "localhost", "ec")
    pem = open(live[0]).read()
    gw = make_gateway(upstream.port, cert_pairs=[live])
    os.makedirs(os.path.join(d, "next"))
    new = mkcert(os.path.join(d, "next"), "live", "localhost", "ec")
    shutil.copyfile(new[1], live[1])
    with open(live[0], "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    for _ in range(3):
        gw.reload("error")
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = _ctx_pem(pem)
        ctx.minimum_version = ctx.maximum_version = v
        assert get(gw.port, ctx).status == 200
