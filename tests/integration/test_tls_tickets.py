"""test_tls_tickets.py -- session ticket keys shared by several gateways
(tls_ticket_key_file, issue 17 item 4): a session made on one instance
resumes on another given the same secret file, never with another file or
after two rotations, and the file is judged by `pbxgate check`."""

import os
import ssl
import subprocess
import time

import pytest

from helpers import client_context, tls_connect, wait_until

VERSIONS = [(ssl.TLSVersion.TLSv1_2, "1.2"), (ssl.TLSVersion.TLSv1_3, "1.3")]


def _secret(path, data=None, mode=0o600):
    with open(path, "wb") as f:
        f.write(os.urandom(48) if data is None else data)
    os.chmod(path, mode)
    return path


def _visit(port, ctx, session=None):
    import socket
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 "), data[:200]
        return s.session, s.session_reused
    finally:
        s.close()


def _pair(make_gateway, upstream, keyfile_a, keyfile_b, rotate=None):
    extra_a = ["tls_ticket_key_file %s" % keyfile_a]
    extra_b = ["tls_ticket_key_file %s" % keyfile_b]
    if rotate is not None:
        extra_a.append("tls_ticket_rotate %s" % rotate)
        extra_b.append("tls_ticket_rotate %s" % rotate)
    return (make_gateway(upstream.port, extra=extra_a),
            make_gateway(upstream.port, extra=extra_b))


@pytest.mark.parametrize("version,vname", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_session_from_a_resumes_on_b(make_gateway, upstream, certs, tmp_path, version, vname):
    key = _secret(tmp_path / "tickets.key")
    a, b = _pair(make_gateway, upstream, key, key)
    ctx = client_context(certs.cafile, minv=version, maxv=version)
    sess, reused = _visit(a.port, ctx)
    assert not reused and sess is not None
    _, reused = _visit(b.port, ctx, sess)
    assert reused, "a %s session from A did not resume on B" % vname


@pytest.mark.parametrize("version,vname", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_different_files_do_not_resume(make_gateway, upstream, certs, tmp_path, version,
                                       vname):
    """Another secret: the ticket's key name is unknown, a full handshake
    follows (no error) and the request is served."""
    a, b = _pair(make_gateway, upstream, _secret(tmp_path / "a.key"),
                 _secret(tmp_path / "b.key"))
    ctx = client_context(certs.cafile, minv=version, maxv=version)
    sess, _ = _visit(a.port, ctx)
    _, reused = _visit(b.port, ctx, sess)
    assert not reused
    _, reused = _visit(a.port, ctx, sess)
    assert reused, "control: the session still resumes where it was made"


def _window(period):
    return int(time.time() // period)


@pytest.mark.parametrize("version,vname", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_ticket_two_rotations_old_refused(make_gateway, upstream, certs, tmp_path, version,
                                          vname):
    """With tls_ticket_rotate 2s a ticket from window w opens in w + 1 (on
    the other instance too) and no longer in w + 2: a full handshake."""
    key = _secret(tmp_path / "tickets.key")
    a, b = _pair(make_gateway, upstream, key, key, rotate="2s")
    ctx = client_context(certs.cafile, minv=version, maxv=version)
    # start early in a window so that w + 1 is surely reached before w + 2
    wait_until(lambda: time.time() % 2 < 0.5, timeout=5, what="the start of a window")
    w = _window(2)
    sess, _ = _visit(a.port, ctx)
    wait_until(lambda: _window(2) == w + 1, timeout=5, what="the next window")
    _, reused = _visit(b.port, ctx, sess)
    assert reused, "a ticket of the previous window was not accepted"
    wait_until(lambda: _window(2) >= w + 2, timeout=5, what="two rotations")
    _, reused = _visit(b.port, ctx, sess)
    assert not reused, "a ticket two rotations old was accepted on B"
    _, reused = _visit(a.port, ctx, sess)
    assert not reused, "a ticket two rotations old was accepted on A"


def test_sighup_with_new_file_switches_keys(make_gateway, upstream, certs, tmp_path):
    """A reload reads the file named anew: B, switched to A's file by
    SIGHUP, resumes A's sessions; those it made before no longer resume."""
    ka, kb = _secret(tmp_path / "a.key"), _secret(tmp_path / "b.key")
    a, b = _pair(make_gateway, upstream, ka, kb)
    ctx = client_context(certs.cafile, minv=ssl.TLSVersion.TLSv1_2,
                         maxv=ssl.TLSVersion.TLSv1_2)
    sess_a, _ = _visit(a.port, ctx)
    sess_b, _ = _visit(b.port, ctx)
    assert not _visit(b.port, ctx, sess_a)[1]
    b.extra = ["tls_ticket_key_file %s" % ka]
    b.write_config()
    b.reload()
    assert _visit(b.port, ctx, sess_a)[1], "B did not take A's keys on SIGHUP"
    assert not _visit(b.port, ctx, sess_b)[1], "B kept its old keys"


def test_same_file_rewritten_is_read_again(make_gateway, upstream, certs, tmp_path):
    """The same path with new bytes: SIGHUP alone switches to them."""
    key = _secret(tmp_path / "tickets.key")
    (a,) = [make_gateway(upstream.port, extra=["tls_ticket_key_file %s" % key])]
    ctx = client_context(certs.cafile, minv=ssl.TLSVersion.TLSv1_3,
                         maxv=ssl.TLSVersion.TLSv1_3)
    sess, _ = _visit(a.port, ctx)
    _secret(key)
    a.reload()
    assert not _visit(a.port, ctx, sess)[1]


def _check(pbxgate_bin, conf):
    r = subprocess.run([pbxgate_bin, "check", "-c", conf], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, r.stderr


def _fifo(p):
    os.mkfifo(p, 0o600)
    return p


# (id, how to make the file, what the message says)
BAD_FILES = [
    ("short", lambda p: _secret(p, b"x" * 31), "31 bytes, at least 32"),
    ("empty", lambda p: _secret(p, b""), "0 bytes, at least 32"),
    ("mode_0644", lambda p: _secret(p, mode=0o644), "mode 0644"),
    ("mode_0604", lambda p: _secret(p, mode=0o604), "mode 0604"),
    ("mode_0660", lambda p: _secret(p, mode=0o660), "mode 0660"),
    ("fifo", _fifo, "not a regular file (fifo)"),
    ("missing", lambda p: p, "No such file or directory"),
    ("symlink", lambda p: (_secret(str(p) + ".real"), os.symlink(str(p) + ".real", p)),
     "symbolic link"),
    ("too_large", lambda p: _secret(p, b"x" * 1025), "larger than 1024 bytes"),
]


@pytest.mark.parametrize("make,says", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_key_file_refused_by_check(make_gateway, upstream, pbxgate_bin, tmp_path, make,
                                       says):
    path = str(tmp_path / "tickets.key")
    make(path)
    gw = make_gateway(upstream.port, extra=["tls_ticket_key_file %s" % path], start=False)
    line = gw.config_text().splitlines().index("tls_ticket_key_file %s" % path) + 1
    rc, err = _check(pbxgate_bin, gw.conf)
    assert rc == 1, err
    want = "%s:%d:21: " % (gw.conf, line)
    hits = [ln for ln in err.splitlines() if ln.startswith(want)]
    assert hits, "no %s error in:\n%s" % (want, err)
    assert says in hits[0], hits[0]


def test_good_key_file_mode_0640_passes_check(make_gateway, upstream, pbxgate_bin, tmp_path):
    path = _secret(tmp_path / "tickets.key", mode=0o640)
    gw = make_gateway(upstream.port, extra=["tls_ticket_key_file %s" % path], start=False)
    rc, err = _check(pbxgate_bin, gw.conf)
    assert rc == 0, err


def test_rotate_without_key_file_refused(make_gateway, upstream, pbxgate_bin):
    gw = make_gateway(upstream.port, extra=["tls_ticket_rotate 1h"], start=False)
    line = gw.config_text().splitlines().index("tls_ticket_rotate 1h") + 1
    rc, err = _check(pbxgate_bin, gw.conf)
    assert rc == 1
    want = "%s:%d:19: " % (gw.conf, line)
    hits = [ln for ln in err.splitlines() if ln.startswith(want)]
    assert hits and "tls_ticket_rotate needs tls_ticket_key_file" in hits[0], err


def test_secret_never_logged(make_gateway, upstream, tmp_path):
    data = b"S3cr3t-ticket-material-" + os.urandom(16).hex().encode()
    key = _secret(tmp_path / "tickets.key", data)
    gw = make_gateway(upstream.port, extra=["tls_ticket_key_file %s" % key])
    _secret(key, data[:20])		# too short now: the reload fails and says why
    gw.reload(expect="error")
    text = gw.stderr()
    assert "at least 32" in text
    assert data[:20].decode() not in text and data.decode() not in text


def _tls_reuse(pbxgate_bin, *args):
    tool = os.path.join(os.path.dirname(pbxgate_bin), "tests", "tools", "tls_reuse")
    assert os.access(tool, os.X_OK), "%s not built (meson -Dtests=true)" % tool
    p = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.split(" in ")[0]


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_one_ssl_object_alternating_a_and_b(make_gateway, upstream, pbxgate_bin, tmp_path,
                                            version):
    """A wrk-like client alternating between A and B: every resumption opens
    a ticket the other gateway made, and all but the first connection resume."""
    key = _secret(tmp_path / "tickets.key")
    a, b = _pair(make_gateway, upstream, key, key)
    assert _tls_reuse(pbxgate_bin, "-v", version, "-n", 20, "-p", b.port, a.port) == \
        "resumed 19 of 20"
