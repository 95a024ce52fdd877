"""test_mail.py -- the scrubbing SMTP relay end to end: swaks plays the PBX,
an aiosmtpd sink (mail_sink.py) plays the smarthost, both over STARTTLS with
certificates from a CA made here with the openssl CLI.

The SMTP side is, by default, tests/unit/mail/smtp_driver (the mail module
alone, with mail_session_start on its own event loop; PBXGATE_MAIL_DRIVER
names it, else build-mail/ then build/ are searched). With PBXGATE_BIN set
to the real binary (e.g. build/pbxgate), the same tests run against
`pbxgate run -c CONF` instead, reading the audit lines from its audit_log.

Run: /usr/bin/python3 -m pytest -q tests/integration/test_mail.py
"""
import base64
import email
import email.policy
import html
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import free_port, free_ports

from conftest import invalid_event_lines

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "data", "mail")
RULES = os.path.join(ROOT, "etc", "scrub.rules")
PYTHON = "/usr/bin/python3"
PASSWORD = "pw"
# argon2id of "pw" (salt "saltsalt", t=2, m=19 MiB: the floor smtp_auth accepts)
PW_HASH = ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$"
           "RYTSaq5wR1vyiFOpAFcPZ7GF1vb83OZ55tHW2rcQ8LA")
REAL_BIN = os.environ.get("PBXGATE_BIN")
NOTICE = "[removed: enrol at https://gw.test/enrol]"
STEP = 15.0  # bound on any single wait


def find_driver():
    env = os.environ.get("PBXGATE_MAIL_DRIVER")
    if env:
        return env
    for b in ("build-mail", "build"):
        p = os.path.join(ROOT, b, "tests", "unit", "mail", "smtp_driver")
        if os.access(p, os.X_OK):
            return p
    pytest.skip("smtp_driver not built (set PBXGATE_MAIL_DRIVER)")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = str(d / "ca.key"), str(d / "ca.pem")
    key, csr, crt = str(d / "srv.key"), str(d / "srv.csr"), str(d / "srv.pem")
    ext = d / "ext.cnf"
    ext.write_text("basicConstraints=CA:FALSE\n"
                   "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "extendedKeyUsage=serverAuth\n")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=pbxgate mail test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=localhost"])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", str(ext)])
    # A CA that signed nothing here: the relay must refuse the sink with it.
    other_key, other = str(d / "other.key"), str(d / "other.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", other_key, "-out",
         other, "-days", "2", "-subj", "/CN=unrelated CA",
         "-addext", "basicConstraints=critical,CA:TRUE"])
    return {"ca": ca, "key": key, "cert": crt, "other_ca": other, "dir": d}


class RealGateway:
    """`pbxgate run -c CONF`: ready when the SMTP port accepts; audit lines
    come from the audit_log file."""

    def __init__(self, conf, port, audit):
        self.p = subprocess.Popen([REAL_BIN, "run", "-c", conf],
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        self.audit, self.seen = audit, 0
        deadline = time.monotonic() + STEP
        while True:   # readiness probe: the listener either answers or not
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if self.p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pbxgate did not start: %r" %
                                       self.p.stderr.read())
                time.sleep(0.05)

    def audit_lines(self):
        if not os.path.exists(self.audit):
            return []
        with open(self.audit) as f:
            lines = f.read().splitlines()
        new, self.seen = lines[self.seen:], len(lines)
        return new

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(STEP)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def stop_clean(self):
        rc = self.stop()
        assert rc == 0, self.p.stderr.read().decode("utf-8", "replace")
        bad = invalid_event_lines(self.audit)
        assert not bad, "audit lines outside the event schema:\n" + "\n".join(bad[:20])


class Proc:
    """A child that prints "ready" when it listens; stdout kept for audit
    lines."""

    def __init__(self, cmd, stdin=None):
        self.p = subprocess.Popen(cmd, stdin=stdin or subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.buf = b""
        line = self.readline(STEP)
        if line != "ready":
            self.p.kill()
            raise RuntimeError("%s did not start: %r %r" % (
                cmd[0], line, self.p.stderr.read()))

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def audit_lines(self):
        """Audit lines already written (the driver writes them before the
        reply reaches the client)."""
        out = []
        while True:
            line = self.readline(0.5)
            if line is None:
                return out
            out.append(line)

    def stop(self):
        if self.p.poll() is None:
            if self.p.stdin:
                self.p.stdin.close()
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(STEP)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def stop_clean(self):
        """Stops and checks a clean exit: under ASan/UBSan a leak or error
        report makes the exit status non-zero."""
        rc = self.stop()
        err = self.p.stderr.read().decode("utf-8", "replace")
        assert rc == 0, "exit %s:\n%s" % (rc, err[-4000:])


@pytest.fixture(scope="module")
def sink(pki, tmp_path_factory):
    out = tmp_path_factory.mktemp("sink")
    port = free_port()
    s = Proc([PYTHON, os.path.join(ROOT, "tests", "integration",
                                   "mail_sink.py"),
              "--port", str(port), "--cert", pki["cert"], "--key", pki["key"],
              "--out", str(out)], stdin=subprocess.PIPE)
    s.port, s.out = port, str(out)
    yield s
    s.stop()


def rules_file(d):
    path = os.path.join(str(d), "test.rules")
    with open(RULES, encoding="utf-8") as f:
        shipped = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(shipped + "\nrule test-reject\n  pattern TUNNEL-SECRET-REJECT\n"
                "  action reject\nend\n")
    return path


def driver(pki, tmp, relay_port, extra="", ca=None, pw_hash=None,
           upstream_port=None):
    drv = None if REAL_BIN else find_driver()
    h = pw_hash or PW_HASH
    port, http_port = free_ports(2)
    conf = os.path.join(str(tmp), "mail-%d.conf" % port)
    with open(conf, "w") as f:
        f.write("smtp_listen 127.0.0.1:%d\n" % port)
        f.write("smtp_hostname gw.test\n")
        f.write("smtp_relay 127.0.0.1:%d\n" % relay_port)
        f.write("smtp_relay_tls starttls\n")
        f.write("smtp_relay_ca %s\n" % (ca or pki["ca"]))
        f.write("smtp_relay_verify on\n")
        f.write("smtp_auth pbx %s\n" % h)
        f.write("smtp_max_size 30m\nsmtp_timeout 20s\n")
        f.write("smtp_relay_timeout 20s\n")
        f.write("scrub_rules %s\n" % rules_file(tmp))
        f.write("scrub_notice %s\n" % NOTICE)
        f.write(extra)
        if REAL_BIN:
            audit = os.path.join(str(tmp), "audit-%d.log" % port)
            f.write("listen 127.0.0.1:%d\ntls_cert %s\ntls_key %s\n"
                    "upstream http://127.0.0.1:%d\nworkers 1\n"
                    "audit_log %s\n" % (http_port, pki["cert"], pki["key"],
                                         upstream_port or free_port(), audit))
    if REAL_BIN:
        d = RealGateway(conf, port, audit)
    else:
        d = Proc([drv, conf, pki["cert"], pki["key"]])
    d.port, d.http_port = port, http_port
    return d


@pytest.fixture(scope="module")
def gw(pki, sink, tmp_path_factory):
    d = driver(pki, tmp_path_factory.mktemp("gw"), sink.port,
               "smtp_max_recipients 3\nsmtp_max_line 1000\n")
    yield d
    d.stop_clean()


def swaks(gw, pki, data, to="alice@example.com", extra=()):
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(gw.port),
           "--tls", "--tls-verify", "--tls-ca-path", pki["ca"],
           "--auth", "PLAIN", "--auth-user", "pbx",
           "--auth-password", PASSWORD, "--from", "pbx@pbx.example.com",
           "--to", to, "--data", data, "--timeout", "60"] + list(extra)
    r = subprocess.run(cmd, capture_output=True, timeout=180)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def final_reply(transcript):
    """The server's reply to the end of DATA (the last reply before QUIT)."""
    replies = [l for l in transcript.splitlines() if re.match(r"^<[~*]? +\d{3}[ -]", l)
               or re.match(r"^<[~*]?\*? +\d{3}", l)]
    codes = [re.sub(r"^<\S*\s+", "", l) for l in replies]
    for i, c in enumerate(codes):
        if c.startswith("221"):
            return codes[i - 1]
    return codes[-1] if codes else ""


def sink_message(sink, marker):
    for name in sorted(os.listdir(sink.out)):
        if not name.endswith(".eml"):
            continue
        with open(os.path.join(sink.out, name), "rb") as f:
            raw = f.read()
        if marker.encode() in raw:
            with open(os.path.join(sink.out, name + ".env")) as f:
                env = f.read().split("\n")
            return raw, env
    return None, None


def visible(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = [str(msg["subject"] or "")]
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            continue
        if part.is_multipart():
            out.append(str(part.get("subject", "")))
            continue
        if part.get_content_maintype() == "text":
            t = part.get_content()
            out.append(t)
            if part.get_content_type() == "text/html":
                out.append(html.unescape(re.sub(r"<[^>]*>", "", t)))
        else:
            out.append((part.get_payload(decode=True) or b"").decode("latin-1"))
    return "\n".join(out)


CORPUS_NAMES = sorted(n[:-4] for n in os.listdir(CORPUS) if n.endswith(".eml"))


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_corpus_relayed_scrubbed_over_starttls(gw, sink, pki, name):
    rc, out = swaks(gw, pki, os.path.join(CORPUS, name + ".eml"))
    assert rc == 0, out
    assert final_reply(out).startswith("250 2.0.0 Ok: scrubbed and relayed"), out
    raw, env = sink_message(sink, "<%s@pbx.example.com>" % name)
    assert raw is not None, "the sink did not receive %s" % name
    assert env[2] == "tls", "relay to the smarthost was not over TLS"
    seen = visible(raw)
    with open(os.path.join(CORPUS, name + ".expect"), encoding="utf-8") as f:
        for line in f.read().splitlines():
            kind, text = line.split(" ", 1)
            if kind == "secret":
                assert text.encode("utf-8") not in raw, text
                assert text not in seen, text
            else:
                assert text in seen, "lost: %s" % text
    audit = [l for l in gw.audit_lines() if name in l]
    assert audit and '"event.action":"relayed"' in audit[-1], audit
    assert '"pbxgate.smtp.scrub":[{' in audit[-1]
    for line in open(os.path.join(CORPUS, name + ".expect"), encoding="utf-8"):
        if line.startswith("secret "):
            assert line[7:].strip() not in audit[-1]


def test_clean_message_passes_unchanged(gw, sink, pki, tmp_path):
    body = ("From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n"
            "Message-ID: <clean-1@x>\r\n\r\nJust saying hello.\r\n")
    p = tmp_path / "clean.eml"
    p.write_bytes(body.encode())
    rc, out = swaks(gw, pki, str(p))
    assert rc == 0, out
    raw, _ = sink_message(sink, "<clean-1@x>")
    assert raw is not None and b"Just saying hello." in raw


def test_reject_rule_gives_554(gw, sink, pki, tmp_path):
    p = tmp_path / "rej.eml"
    p.write_bytes(b"Subject: tunnel\r\nMessage-ID: <rej-1@x>\r\n\r\n"
                  b"Tunnel: TUNNEL-SECRET-REJECT\r\n")
    rc, out = swaks(gw, pki, str(p))
    assert rc != 0
    assert final_reply(out).startswith("554 5.7.1"), out
    assert sink_message(sink, "<rej-1@x>")[0] is None


def test_smarthost_refusal_is_forwarded(gw, sink, pki, tmp_path):
    p = tmp_path / "r.eml"
    p.write_bytes(b"Subject: x\r\nMessage-ID: <refused-1@x>\r\n\r\nHi\r\n")
    rc, out = swaks(gw, pki, str(p), to="refuse@example.com")
    assert final_reply(out).startswith("550 5.1.1"), out
    rc, out = swaks(gw, pki, str(p), to="later@example.com")
    assert final_reply(out).startswith("451 4.3.0"), out
    assert sink_message(sink, "<refused-1@x>")[0] is None


def big_message(path, size, marker):
    head = ("From: pbx@pbx.example.com\r\nTo: alice@example.com\r\n"
            "Subject: Welcome big\r\nMessage-ID: <%s@x>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n"
            "Content-Type: text/plain\r\n\r\nHello.\r\nPassword: Big1Secret\r\n"
            "Bye.\r\n--B\r\nContent-Type: application/pdf\r\n"
            "Content-Disposition: attachment; filename=\"m.pdf\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" % marker).encode()
    tail = b"\r\n--B--\r\n"
    # A PDF by its content (unknown binary would be refused as unreadable)
    first = base64.b64encode(b"%PDF-1.7\n%" + os.urandom(47)) + b"\r\n"
    line = base64.b64encode(os.urandom(57)) + b"\r\n"   # 78 bytes
    n = (size - len(head) - len(tail)) // len(line)
    with open(path, "wb") as f:
        f.write(head)
        f.write(first)
        f.write(line * (n - 1))
        f.write(tail)


def test_25mb_message_within_limit_passes(gw, sink, pki, tmp_path):
    p = str(tmp_path / "big.eml")
    big_message(p, 25 * 1024 * 1024, "big-25")
    rc, out = swaks(gw, pki, p, extra=["--silent", "2"])
    assert rc == 0, out[-2000:]
    raw, _ = sink_message(sink, "<big-25@x>")
    assert raw is not None
    assert len(raw) > 25 * 1000 * 1000
    assert b"Big1Secret" not in raw and b"Bye." in raw


def test_over_size_limit_gets_552(gw, sink, pki, tmp_path):
    p = str(tmp_path / "huge.eml")
    big_message(p, 31 * 1024 * 1024, "big-31")
    rc, out = swaks(gw, pki, p, extra=["--silent", "2"])
    assert rc != 0
    assert "552 5.3.4" in out, out[-2000:]
    assert sink_message(sink, "<big-31@x>")[0] is None


def test_smarthost_down_gives_451(pki, tmp_path):
    d = driver(pki, tmp_path, free_port())
    try:
        p = tmp_path / "m.eml"
        p.write_bytes(b"Subject: x\r\nMessage-ID: <down-1@x>\r\n\r\nHi\r\n")
        rc, out = swaks(d, pki, str(p))
        assert rc != 0
        assert final_reply(out).startswith("451 4.4.1"), out
        audit = d.audit_lines()
        assert audit and '"event.action":"tempfail"' in audit[-1]
    finally:
        d.stop_clean()


def test_smarthost_with_untrusted_certificate_gives_451(pki, sink, tmp_path):
    d = driver(pki, tmp_path, sink.port, ca=pki["other_ca"])
    try:
        p = tmp_path / "m.eml"
        p.write_bytes(b"Subject: x\r\nMessage-ID: <untrusted-1@x>\r\n\r\nHi\r\n")
        rc, out = swaks(d, pki, str(p))
        assert final_reply(out).startswith("451 4.4.1"), out
        assert "TLS" in final_reply(out)
        assert sink_message(sink, "<untrusted-1@x>")[0] is None
    finally:
        d.stop()


# ---- the SMTP conversation itself (plain TCP from loopback) ----

class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=STEP)
        self.f = self.s.makefile("rb")

    def reply(self):
        lines = []
        while True:
            l = self.f.readline().decode()
            assert l, "connection closed; got %r" % lines
            lines.append(l.rstrip("\r\n"))
            if len(l) < 4 or l[3] != "-":
                return "\n".join(lines)

    def send(self, line):
        self.s.sendall(line.encode() + b"\r\n")

    def say(self, line):
        self.send(line)
        return self.reply()

    def auth(self):
        tok = base64.b64encode(b"\0pbx\0" + PASSWORD.encode()).decode()
        assert self.say("AUTH PLAIN " + tok).startswith("235 2.7.0")

    def close(self):
        self.s.close()


# Read like a conversation: send this line, expect that reply.
CONVERSATION = [
    ("MAIL FROM:<a@b>", "503 5.5.1 Send EHLO or HELO first"),
    ("EHLO pbx.test", "250-gw.test Hello [127.0.0.1]"),
    ("RCPT TO:<x@y>", "503 5.5.1 Need MAIL before RCPT"),
    ("DATA", "503 5.5.1 Need MAIL and RCPT before DATA"),
    ("MAIL FROM:<a@b>", "530 5.7.0 Authentication required"),
    ("AUTH CRAM-MD5", "504 5.5.4"),
    ("AUTH PLAIN " + base64.b64encode(b"\0pbx\0wrong").decode(),
     "535 5.7.8 Authentication credentials invalid"),
    ("AUTH PLAIN !!!!", "501 5.5.2 Cannot decode"),
    ("XYZZY", "500 5.5.2 Command unrecognized"),
    ("NOOP", "250 2.0.0 Ok"),
    ("VRFY root", "252 2.5.2"),
    ("EXPN staff", "502 5.5.1"),
    ("BDAT 10 LAST", "502 5.5.1"),
    ("RSET", "250 2.0.0 Ok"),
    ("EHLO", "501 5.5.4 Syntax: EHLO hostname"),
    ("A" * 1200, "500 5.5.2 Line too long"),
    ("QUIT", "221 2.0.0 Bye"),
]


def test_conversation(gw):
    c = Client(gw.port)
    assert c.reply() == "220 gw.test ESMTP pbxgate"
    for line, want in CONVERSATION:
        got = c.say(line)
        assert got.startswith(want), "%s -> %s" % (line[:40], got)
    c.close()


def test_ehlo_capabilities(gw):
    c = Client(gw.port)
    c.reply()
    caps = c.say("EHLO pbx.test").split("\n")
    assert caps[-1] == "250 ENHANCEDSTATUSCODES"
    for cap in ("PIPELINING", "SIZE 31457280", "8BITMIME", "STARTTLS",
                "AUTH PLAIN LOGIN"):
        assert "250-" + cap in caps, caps
    c.say("QUIT")


def test_auth_login_and_limits(gw):
    c = Client(gw.port)
    c.reply()
    c.say("EHLO pbx.test")
    assert c.say("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert c.say(base64.b64encode(b"pbx").decode()) == "334 UGFzc3dvcmQ6"
    assert c.say(base64.b64encode(PASSWORD.encode()).decode()).startswith("235")
    assert c.say("AUTH PLAIN =").startswith("503 5.5.1 Already authenticated")
    assert c.say("MAIL FROM:<a@b> SIZE=40000000").startswith("552 5.3.4")
    assert c.say("MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME").startswith("250 2.1.0")
    assert c.say("MAIL FROM:<a@b>").startswith("503 5.5.1 Nested MAIL")
    for i in range(3):
        assert c.say("RCPT TO:<u%d@example.com>" % i).startswith("250 2.1.5")
    assert c.say("RCPT TO:<u9@example.com>").startswith("452 4.5.3")
    assert c.say("STARTTLS").startswith("503 5.5.1")
    assert c.say("RSET").startswith("250")
    c.say("QUIT")


def test_pipelining_replies_in_order(gw, sink):
    c = Client(gw.port)
    c.reply()
    c.say("EHLO pbx.test")
    c.auth()
    c.s.sendall(b"MAIL FROM:<p@x>\r\nRCPT TO:<a@example.com>\r\n"
                b"RCPT TO:<b@example.com>\r\nDATA\r\n")
    assert c.reply().startswith("250 2.1.0")
    assert c.reply().startswith("250 2.1.5")
    assert c.reply().startswith("250 2.1.5")
    assert c.reply().startswith("354")
    c.s.sendall(b"Subject: pipe\r\nMessage-ID: <pipe-1@x>\r\n\r\n"
                b"..leading dot\r\nPassword: Pipe1Secret\r\n.\r\nNOOP\r\nQUIT\r\n")
    assert c.reply().startswith("250 2.0.0 Ok: scrubbed and relayed")
    assert c.reply().startswith("250 2.0.0 Ok")
    assert c.reply().startswith("221")
    raw, env = sink_message(sink, "<pipe-1@x>")
    assert raw is not None and b"Pipe1Secret" not in raw
    assert b"\n.leading dot" in raw
    assert env[1] == "a@example.com,b@example.com"


def test_starttls_discards_pipelined_plaintext(gw, pki):
    c = Client(gw.port)
    c.reply()
    c.say("EHLO pbx.test")
    c.s.sendall(b"STARTTLS\r\nNOOP\r\n")
    assert c.reply().startswith("220 2.0.0")
    ctx = ssl.create_default_context(cafile=pki["ca"])
    t = ctx.wrap_socket(c.s, server_hostname="localhost")
    t.sendall(b"EHLO again\r\n")
    f = t.makefile("rb")
    first = f.readline().decode()
    assert first.startswith("250-gw.test"), first   # not the NOOP's 250 Ok
    t.close()


def test_not_allowed_client_is_refused(pki, sink, tmp_path):
    d = driver(pki, tmp_path, sink.port, "smtp_allow 192.0.2.0/24\n")
    try:
        c = Client(d.port)
        assert c.reply().startswith("554 5.7.1 127.0.0.1 is not allowed")
        assert c.f.readline() == b""
    finally:
        d.stop()


def test_sigterm_sends_421_to_idle_sessions(pki, sink, tmp_path):
    d = driver(pki, tmp_path, sink.port)
    c = Client(d.port)
    c.reply()
    c.say("EHLO pbx.test")
    d.p.send_signal(signal.SIGTERM)
    assert c.reply().startswith("421 4.3.2")
    assert d.p.wait(STEP) == 0


# ---- `pbxgate scrub` (or the driver's copy of it) ----

def scrub_cmd(conf, *args):
    if REAL_BIN:
        return [REAL_BIN, "scrub", "-c", conf] + list(args)
    return [find_driver(), "scrub", conf] + list(args)


@pytest.fixture(scope="module")
def scrub_conf(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("scrub")
    conf = os.path.join(str(d), "scrub.conf")
    with open(conf, "w") as f:
        f.write("scrub_rules %s\nscrub_notice %s\n" % (rules_file(d), NOTICE))
        if REAL_BIN:   # the real binary wants a whole gateway config
            f.write("listen 127.0.0.1:%d\ntls_cert %s\ntls_key %s\n"
                    "upstream http://127.0.0.1:%d\n" % (
                        free_port(), pki["cert"], pki["key"], free_port()))
    return conf


@pytest.mark.parametrize("name", ["en_plain_7bit", "ja_sjis_b64",
                                  "attachments_mixed"])
def test_scrub_command_explains_without_secrets(scrub_conf, name):
    with open(os.path.join(CORPUS, name + ".eml"), "rb") as f:
        msg = f.read()
    r = subprocess.run(scrub_cmd(scrub_conf, "--explain"), input=msg,
                       capture_output=True, timeout=STEP)
    assert r.returncode == 1, r.stderr
    err = r.stderr.decode()
    assert "rule " in err and "matched part " in err
    secrets = [l[7:] for l in open(os.path.join(CORPUS, name + ".expect"),
                                   encoding="utf-8").read().splitlines()
               if l.startswith("secret ")]
    for s in secrets:
        assert s.encode() not in r.stdout
        assert s not in err
    assert b"\r\n" in r.stdout, "CRLF input keeps CRLF"


def test_scrub_command_exit_codes(scrub_conf):
    clean = subprocess.run(scrub_cmd(scrub_conf), input=b"Subject: hi\n\nhello\n",
                           capture_output=True, timeout=STEP)
    assert clean.returncode == 0 and clean.stdout == b"Subject: hi\n\nhello\n"
    rej = subprocess.run(scrub_cmd(scrub_conf), timeout=STEP,
                         input=b"Subject: t\n\nTUNNEL-SECRET-REJECT\n",
                         capture_output=True)
    assert rej.returncode == 2 and rej.stdout == b""
    assert b"test-reject" in rej.stderr
    bad = subprocess.run(scrub_cmd(scrub_conf, "--bogus"), input=b"",
                         capture_output=True, timeout=STEP)
    assert bad.returncode == 3


# ---- SMTP AUTH's Argon2 runs on the gateway's pool, not on its loop ----

REAL_PASSWORD = "correct horse battery staple"


def https_get(port, ca):
    """One HTTPS GET on a fresh connection; (status line, seconds)."""
    ctx = ssl.create_default_context(cafile=ca)
    t0 = time.monotonic()
    raw = socket.create_connection(("127.0.0.1", port), timeout=STEP)
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /async-probe HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode(), time.monotonic() - t0


def auth_plain_line(password):
    tok = base64.b64encode(b"\0pbx\0" + password.encode()).decode()
    return "AUTH PLAIN " + tok


def lone_auth_seconds(port):
    """One AUTH alone, as the PBX sees it: the cost of one Argon2 check."""
    c = Client(port)
    c.reply()
    c.say("EHLO pbx.test")
    t0 = time.monotonic()
    assert c.say(auth_plain_line(REAL_PASSWORD)).startswith("235")
    secs = time.monotonic() - t0
    c.say("QUIT")
    c.close()
    return secs


def storm(d, ca, nauth=4, nget=20):
    """nauth AUTHs in flight (more than the pool's threads) while nget
    HTTPS GETs go through the same worker. Returns the GET latencies and
    how many GETs finished before the last AUTH answer."""
    import threading
    clients = []
    for _ in range(nauth):
        c = Client(d.port)
        c.reply()
        c.say("EHLO pbx.test")
        clients.append(c)
    answers, done_at = [], []

    def collect():
        for cl in clients:
            answers.append(cl.reply())
            done_at.append(time.monotonic())
    for c in clients:
        c.send(auth_plain_line(REAL_PASSWORD))
    reader = threading.Thread(target=collect)
    reader.start()
    lat, finished = [], []
    for _ in range(nget):
        status, secs = https_get(d.http_port, ca)
        assert status.startswith("HTTP/1.1 200"), status
        lat.append(secs)
        finished.append(time.monotonic())
    reader.join(4 * STEP)
    assert not reader.is_alive()
    assert len(answers) == nauth
    assert all(a.startswith("235 2.7.0") for a in answers), answers
    for c in clients:
        c.say("QUIT")
        c.close()
    return lat, sum(1 for t in finished if t < max(done_at))


@pytest.mark.skipif(not REAL_BIN, reason="needs the gateway (PBXGATE_BIN)")
def test_auth_argon2_does_not_stall_https(pki, sink, tmp_path):
    """With the check on the loop, every GET waits for the queued checks
    (none finishes before the last 235, p100 >= several Argon2 times).
    Other work on a shared 2-core machine only ever adds latency, so a
    storm is tried up to 3 times; a stalled loop fails every time."""
    from helpers import Upstream
    real_hash = subprocess.run([REAL_BIN, "hash"], input=REAL_PASSWORD.encode(),
                               capture_output=True, check=True,
                               timeout=STEP).stdout.decode().strip()
    assert real_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    up = Upstream(str(tmp_path)).start()
    d = driver(pki, tmp_path, sink.port, pw_hash=real_hash,
               upstream_port=up.port)
    try:
        status, _ = https_get(d.http_port, pki["ca"])
        assert status.startswith("HTTP/1.1 200"), status
        tries = []
        for _ in range(3):
            argon2_s = sorted(lone_auth_seconds(d.port) for _ in range(3))[1]
            lat, during = storm(d, pki["ca"])
            tries.append("argon2 %.1f ms; HTTP p50 %.1f ms p100 %.1f ms; "
                         "%d of %d GETs done while AUTHs were in flight" % (
                             argon2_s * 1000, sorted(lat)[len(lat) // 2] * 1000,
                             max(lat) * 1000, during, len(lat)))
            if during >= 1 and max(lat) < argon2_s:
                break
        else:
            pytest.fail("the loop stalls during SMTP AUTH:\n" + "\n".join(tries))
        print("\n".join(tries))
    finally:
        d.stop_clean()
        up.stop()


@pytest.mark.skipif(not REAL_BIN, reason="needs the gateway (PBXGATE_BIN)")
def test_sigterm_while_auth_in_flight(pki, sink, tmp_path):
    real_hash = subprocess.run([REAL_BIN, "hash"], input=REAL_PASSWORD.encode(),
                               capture_output=True, check=True,
                               timeout=STEP).stdout.decode().strip()
    d = driver(pki, tmp_path, sink.port, pw_hash=real_hash)
    c = Client(d.port)
    c.reply()
    c.say("EHLO pbx.test")
    c.send(auth_plain_line(REAL_PASSWORD))
    gone = Client(d.port)          # this one hangs up mid-check
    gone.reply()
    gone.say("EHLO pbx.test")
    gone.send(auth_plain_line(REAL_PASSWORD))
    gone.close()
    d.p.send_signal(signal.SIGTERM)
    got = c.reply()
    # Either the check came back first (235, then 421 at the next command)
    # or the 421 came first; never a crash, always a clean exit.
    assert got.startswith("421 4.3.2") or got.startswith("235"), got
    c.close()
    d.stop_clean()


# ---- issue 12 #19: smtp_auth takes the gateway's own verifier rules ----

@pytest.mark.skipif(not REAL_BIN, reason="needs the gateway (PBXGATE_BIN)")
@pytest.mark.parametrize("phc,error", [
    ("$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$"
     "dQnDqauPCqDw3dyXWZYY2phLkZCWIGZAqEVJJjwNzJ8", "not an Argon2id hash"),
    ("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$"
     "V4H3HtTOx/OSF1MH0AOC7qYPwyx7EScAQXWSGhaLb7Q",
     "Argon2id cost m=8,t=1 is too weak"),
], ids=["argon2i", "argon2id_m8_t1"])
def test_check_refuses_weak_smtp_auth_hash(pki, tmp_path, phc, error):
    conf = tmp_path / "weak.conf"
    conf.write_text("listen 127.0.0.1:%d\ntls_cert %s\ntls_key %s\n"
                    "upstream http://127.0.0.1:%d\n"
                    "smtp_listen 127.0.0.1:%d\nsmtp_relay 127.0.0.1:%d\n"
                    "scrub_rules %s\nsmtp_auth pbx %s\n" % (
                        free_port(), pki["cert"], pki["key"], free_port(),
                        free_port(), free_port(), RULES, phc))
    r = subprocess.run([REAL_BIN, "check", "-c", str(conf)],
                       capture_output=True, timeout=STEP)
    assert r.returncode != 0
    err = r.stderr.decode()
    # FILE:LINE:COL, the column of the hash ("smtp_auth pbx " is 14 wide)
    assert "%s:8:15: error: smtp_auth: %s" % (conf, error) in err, err


# ---- issue 12 #14: bare CR / bare LF / NUL in DATA are refused ----

def send_data(port, data):
    """One authenticated transaction over loopback; the reply to the final
    dot."""
    c = Client(port)
    c.reply()
    c.say("EHLO pbx.test")
    c.auth()
    assert c.say("MAIL FROM:<pbx@pbx.example.com>").startswith("250")
    assert c.say("RCPT TO:<alice@example.com>").startswith("250")
    assert c.say("DATA").startswith("354")
    c.s.sendall(data + b".\r\n")
    got = c.reply()
    c.say("QUIT")
    c.close()
    return got


BARE = [   # (name, the message's lines joined by CRLF, bad line number)
    ("bare_cr_in_header", b"X-Note: a\r\rPassword: HdrCr1Secret", 3),
    ("bare_cr_in_body", b"\r\nhello\rPassword: BodyCr1Secret", 4),
    ("cr_cr_lf_line_end", b"\r\nPassword:\r\r\nCrCrLf1Secret", 4),
    ("bare_lf_in_header", b"X-Note: a\nPassword: HdrLf1Secret", 3),
    ("bare_lf_in_body", b"\r\nhello\nPassword: BodyLf1Secret", 4),
    ("nul_in_header", b"X-Note: a\0Password: HdrNul1Secret", 3),
    ("nul_in_body", b"\r\nPass\0word: BodyNul1Secret", 4),
]


@pytest.mark.parametrize("name,lines,bad", BARE, ids=[b[0] for b in BARE])
def test_bare_cr_lf_nul_refused(gw, sink, name, lines, bad):
    marker = "<bare-%s@x>" % name
    data = (b"Subject: bare\r\nMessage-ID: " + marker.encode() + b"\r\n" +
            lines + b"\r\nend\r\n")
    got = send_data(gw.port, data)
    assert got == ("554 5.6.0 Message refused: line %d holds a bare CR, a "
                   "bare LF or a NUL byte; send CRLF line ends only "
                   "(RFC 5321 2.3.8)" % bad), got
    assert sink_message(sink, marker) == (None, None)
    audit = [l for l in gw.audit_lines() if '"bad_line_end"' in l]
    assert audit, "no audit line for the refusal"


def test_crlf_only_twin_is_relayed_and_scrubbed(gw, sink):
    data = (b"Subject: bare\r\nMessage-ID: <bare-twin@x>\r\nX-Note: a\r\n"
            b"\r\nPassword: Twin1Secret\r\nend\r\n")
    got = send_data(gw.port, data)
    assert got.startswith("250 2.0.0 Ok: scrubbed and relayed"), got
    raw, _ = sink_message(sink, "<bare-twin@x>")
    assert raw is not None and b"Twin1Secret" not in raw
    assert NOTICE.encode() in raw


# ---- issue 12 #16: parts decided by content and name, not declared type ----

def mime(marker, parts, subject="Welcome to extension 1040"):
    """A multipart/mixed message: a text part, then each (headers, body)."""
    out = ["From: pbx@pbx.example.com", "To: alice@example.com",
           "Subject: " + subject, "Message-ID: " + marker,
           "MIME-Version: 1.0",
           'Content-Type: multipart/mixed; boundary="P"', "",
           "--P", "Content-Type: text/plain; charset=us-ascii", "",
           "Your extension number is 1040."]
    for headers, body in parts:
        out += ["--P"] + headers + [""] + body.split("\n")
    out += ["--P--", ""]
    return "\r\n".join(out).encode("latin-1")


def b64body(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))


INNER_EML = ("From: pbx@pbx.example.com\r\nSubject: inner\r\n"
             "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n" +
             b64body(b"Password: Em5Secret1044\r\n") + "\r\n")

SCANNED = [   # (name, headers, decoded content, the secret in it)
    ("octet_stream_named_txt",
     ["Content-Type: application/octet-stream; name=\"welcome.txt\"",
      "Content-Transfer-Encoding: base64"],
     b"Password: Ot1Secret1040\n", "Ot1Secret1040"),
    ("octet_stream_utf8_no_name",
     ["Content-Type: application/octet-stream",
      "Content-Transfer-Encoding: base64"],
     "パスワード：Ou2Secret1041\n".encode(), "Ou2Secret1041"),
    ("text_iso2022jp_no_charset",
     ["Content-Type: text/plain", "Content-Transfer-Encoding: 7bit"],
     "暗証番号：551402\n".encode("iso-2022-jp"), "551402"),
    ("text_iso2022jp_declared_us_ascii",
     ["Content-Type: text/plain; charset=us-ascii",
      "Content-Transfer-Encoding: 7bit"],
     "パスワード：Ij3Secret1042\n".encode("iso-2022-jp"), "Ij3Secret1042"),
    ("octet_stream_shift_jis",
     ["Content-Type: application/octet-stream; name=\"memo\"",
      "Content-Transfer-Encoding: base64"],
     "パスワード：Sj4Secret1043\n".encode("shift_jis"), "Sj4Secret1043"),
    ("octet_stream_named_csv",
     ["Content-Type: application/octet-stream; name=\"users.csv\"",
      "Content-Transfer-Encoding: base64"],
     b"ext,note\n1040,Password=Cs6Secret1045\n", "Cs6Secret1045"),
    ("octet_stream_named_html",
     ["Content-Type: application/octet-stream; name=\"welcome.html\"",
      "Content-Transfer-Encoding: base64"],
     b"<html><p>Pass&shy;word:&nbsp;Hm7Secret1046</p></html>",
     "Hm7Secret1046"),
    ("octet_stream_named_eml",
     ["Content-Type: application/octet-stream; name=\"fwd.eml\"",
      "Content-Transfer-Encoding: base64"],
     INNER_EML.encode(), "Em5Secret1044"),
    ("image_png_that_is_text",
     ["Content-Type: image/png; name=\"x.png\"",
      "Content-Transfer-Encoding: base64"],
     b"Password: Ip8Secret1047\n", "Ip8Secret1047"),
]


@pytest.mark.parametrize("name,headers,content,secret", SCANNED,
                         ids=[c[0] for c in SCANNED])
def test_part_read_by_content_and_name(gw, sink, name, headers, content,
                                       secret):
    marker = "<sniff-%s@x>" % name
    body = (b64body(content) if "base64" in headers[-1]
            else content.decode("latin-1"))
    # not a welcome subject: no attachment rule may drop the part instead
    got = send_data(gw.port, mime(marker, [(headers, body)],
                                  subject="Call report for 1040"))
    assert got.startswith("250 2.0.0 Ok: scrubbed and relayed"), got
    raw, _ = sink_message(sink, marker)
    assert raw is not None
    assert secret.encode() not in raw
    assert secret not in visible(raw)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for part in msg.walk():
        data = part.get_payload(decode=True) or b""
        assert secret.encode() not in data, part.get_content_type()
        if part.get_filename() == "fwd.eml":
            inner = email.message_from_bytes(data,
                                             policy=email.policy.default)
            assert secret not in inner.get_content()


TNEF = b"\x78\x9f\x3e\x22\x01\x00\x01\x06\x90\x08\x00Password: Tn1Secret"
REFUSED = [   # (name, headers, content, what the reply names)
    ("tnef_declared",
     ['Content-Type: application/ms-tnef; name="winmail.dat"',
      "Content-Transfer-Encoding: base64"], TNEF,
     "TNEF (winmail.dat) (application/ms-tnef, winmail.dat)"),
    ("tnef_as_octet_stream",
     ['Content-Type: application/octet-stream; name="winmail.dat"',
      "Content-Transfer-Encoding: base64"], TNEF,
     "TNEF (winmail.dat) (application/octet-stream, winmail.dat)"),
    ("tnef_by_magic_only",
     ["Content-Type: application/octet-stream",
      "Content-Transfer-Encoding: base64"], TNEF,
     "TNEF (winmail.dat) (application/octet-stream)"),
    ("smime_enveloped",
     ['Content-Type: application/pkcs7-mime; smime-type=enveloped-data; '
      'name="smime.p7m"', "Content-Transfer-Encoding: base64"],
     b"\x30\x80\x06\x09*\x86H\x86\xf7\r\x01\x07\x03",
     "encrypted or enveloped data (application/pkcs7-mime, smime.p7m)"),
    ("zip_archive",
     ['Content-Type: application/zip; name="cfg.zip"',
      "Content-Transfer-Encoding: base64"],
     b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(40)),
     "a ZIP archive (or an Office file) (application/zip, cfg.zip)"),
    ("ole_msg",
     ['Content-Type: application/vnd.ms-outlook; name="fwd.msg"',
      "Content-Transfer-Encoding: base64"],
     b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64),
     "an OLE compound file (.msg, .doc, .xls) "
     "(application/vnd.ms-outlook, fwd.msg)"),
    ("unknown_binary",
     ['Content-Type: application/octet-stream; name="blob.bin"',
      "Content-Transfer-Encoding: base64"],
     bytes((i * 37 + 11) % 256 for i in range(512)),
     "unknown binary content (application/octet-stream, blob.bin)"),
    ("pgp_armored_in_text",
     ["Content-Type: text/plain", "Content-Transfer-Encoding: 7bit"],
     b"-----BEGIN PGP MESSAGE-----\n\nhQEMA5\n-----END PGP MESSAGE-----",
     "PGP-encrypted data (text/plain)"),
]


@pytest.mark.parametrize("name,headers,content,what", REFUSED,
                         ids=[c[0] for c in REFUSED])
def test_part_that_cannot_be_checked_is_refused(gw, sink, name, headers,
                                                content, what):
    marker = "<refuse-%s@x>" % name
    body = (b64body(content) if "base64" in headers[-1]
            else content.decode("latin-1"))
    got = send_data(gw.port, mime(marker, [(headers, body)]))
    assert got == ("554 5.6.0 Message refused: it could not be checked: "
                   "%s cannot be checked (part 2)" % what), got
    assert sink_message(sink, marker) == (None, None)


def test_message_partial_is_refused(gw, sink):
    data = ("From: pbx@pbx.example.com\r\nTo: alice@example.com\r\n"
            "Subject: part 1\r\nMessage-ID: <partial-1@x>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: message/partial; "
            'id="abc@pbx"; number=1; total=2\r\n\r\n'
            "Subject: welcome\r\n\r\nPassword: Mp1Se\r\n").encode()
    got = send_data(gw.port, data)
    assert got == ("554 5.6.0 Message refused: it could not be checked: "
                   "message/partial (a fragment of a split message) cannot "
                   "be checked (part 1)"), got
    assert sink_message(sink, "<partial-1@x>") == (None, None)


MEDIA = [
    ("png", 'image/png; name="logo.png"',
     b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))),
    ("wav_voicemail", 'audio/wav; name="vm.wav"',
     b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(200))),
    ("pdf_fax", 'application/pdf; name="fax.pdf"',
     b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256))),
]


@pytest.mark.parametrize("name,ctype,content", MEDIA,
                         ids=[m[0] for m in MEDIA])
def test_media_part_is_relayed_unread(gw, sink, name, ctype, content):
    marker = "<media-%s@x>" % name
    got = send_data(gw.port, mime(marker, [(
        ["Content-Type: " + ctype, "Content-Transfer-Encoding: base64"],
        b64body(content))], subject="Voicemail and fax for 1040"))
    assert got.startswith("250 2.0.0 Ok: scrubbed and relayed"), got
    raw, _ = sink_message(sink, marker)
    assert raw is not None
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    got_parts = [p.get_payload(decode=True) for p in msg.walk()
                 if not p.is_multipart()]
    assert content in got_parts


# ---- issue 12 #18: scrubbing runs off the HTTP loops ----

def big_text_message(marker, size):
    head = ("From: pbx@pbx.example.com\r\nTo: alice@example.com\r\n"
            "Subject: Call report\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Password: Big3Secret\r\n" % marker).encode()
    line = b"This is a line of a long call report with many words in it.\r\n"
    return head + line * ((size - len(head)) // len(line))


@pytest.mark.skipif(not REAL_BIN, reason="needs the gateway (PBXGATE_BIN)")
def test_large_scrub_does_not_stall_https(pki, sink, tmp_path):
    """A 12 MB text message takes seconds of CPU to scrub. On the worker's
    loop every HTTPS request waited for it (the finding: 0.7 s for 24-39
    MB); on the pool, HTTPS through the same single worker keeps its
    latency: max under the baseline's max + 100 ms while the scrub runs.
    Other work on a shared 2-core machine only ever adds latency, so the
    run is tried up to 3 times; a stalled loop fails every time."""
    import threading
    from helpers import Upstream
    # Under ASan every allocation on the loop (DATA lines, relay slices)
    # costs several times more: the bound grows, still far below a stall
    # (the scrub itself takes about 7 s there).
    ldd = subprocess.run(["ldd", REAL_BIN], capture_output=True).stdout
    slack = 0.400 if b"libasan" in ldd else 0.100
    up = Upstream(str(tmp_path)).start()
    d = driver(pki, tmp_path, sink.port, upstream_port=up.port)
    tries = []
    try:
        for attempt in range(3):
            base = [https_get(d.http_port, pki["ca"]) for _ in range(10)]
            assert all(s.startswith("HTTP/1.1 200") for s, _ in base), base
            baseline = max(t for _, t in base)
            marker = "<big-scrub-%d@x>" % attempt
            c = Client(d.port)
            c.reply()
            c.say("EHLO pbx.test")
            c.auth()
            assert c.say("MAIL FROM:<pbx@pbx.example.com>").startswith("250")
            assert c.say("RCPT TO:<alice@example.com>").startswith("250")
            assert c.say("DATA").startswith("354")
            c.s.sendall(big_text_message(marker, 12 * 1024 * 1024))
            got = {}

            def final():
                c.s.settimeout(8 * STEP)   # seconds of CPU on a busy box
                t0 = time.monotonic()
                c.s.sendall(b".\r\n")
                got["reply"] = c.reply()
                got["secs"] = time.monotonic() - t0
            th = threading.Thread(target=final)
            th.start()
            lat = []
            while th.is_alive() and len(lat) < 5000:
                status, secs = https_get(d.http_port, pki["ca"])
                assert status.startswith("HTTP/1.1 200"), status
                lat.append(secs)
            th.join(4 * STEP)
            assert not th.is_alive()
            c.say("QUIT")
            c.close()
            assert got["reply"].startswith("250 2.0.0 Ok: scrubbed"), got
            raw, _ = sink_message(sink, marker)
            assert raw is not None and b"Big3Secret" not in raw
            tries.append("scrub+relay %.0f ms; baseline max %.1f ms; %d GETs "
                         "during it, max %.1f ms" % (
                             got["secs"] * 1000, baseline * 1000, len(lat),
                             max(lat) * 1000 if lat else 0))
            assert len(lat) >= 5, "too few GETs to judge: " + tries[-1]
            if max(lat) < baseline + slack:
                break
        else:
            pytest.fail("HTTPS stalls while a message is scrubbed:\n" +
                        "\n".join(tries))
        print("\n".join(tries))
    finally:
        d.stop_clean()
        up.stop()


def metrics_of(port):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=STEP) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@pytest.mark.skipif(not REAL_BIN, reason="metrics need the real binary (PBXGATE_BIN)")
def test_scrub_rule_hits_and_outcomes_are_counted(pki, sink, tmp_path):
    admin = free_port()
    d = driver(pki, tmp_path, sink.port, "admin_listen 127.0.0.1:%d\n" % admin)
    try:
        hits = 'pbxgate_smtp_scrub_rule_hits_total{rule="%s",action="%s"}'
        outcome = 'pbxgate_smtp_messages_total{outcome="%s"}'
        m = metrics_of(admin)
        assert m[hits % ("other", "other")] == 0
        assert hits % ("label-password", "replace") not in m
        assert m[outcome % "scrubbed"] == 0 and m[outcome % "rejected"] == 0
        # one password and one PIN line, one provisioning link
        rc, out = swaks(d, pki, os.path.join(CORPUS, "en_plain_7bit.eml"))
        assert rc == 0, out
        p = tmp_path / "rej.eml"
        p.write_bytes(b"Subject: tunnel\r\nMessage-ID: <rej-m@x>\r\n\r\n"
                      b"Tunnel: TUNNEL-SECRET-REJECT\r\n")
        rc, out = swaks(d, pki, str(p))
        assert final_reply(out).startswith("554 5.7.1"), out
        m = metrics_of(admin)
        assert m[hits % ("label-password", "replace")] == 1
        assert m[hits % ("label-pin", "replace")] == 1
        assert m[hits % ("provisioning-link", "replace")] == 1
        assert m[hits % ("test-reject", "reject")] == 1
        assert m[hits % ("other", "other")] == 0
        assert m[outcome % "scrubbed"] == 1
        assert m[outcome % "rejected"] == 1
    finally:
        d.stop_clean()


def smtp_record(action, outcome, message_id, size, reply, smarthost_reply, scrub=None):
    rec = {"event.dataset": "pbxgate.audit", "event.module": "smtp",
           "event.action": action, "event.outcome": outcome, "source.ip": "127.0.0.1",
           "tls.established": False, "user.name": "pbx", "email.message_id": message_id,
           "email.from.address": "pbx@pbx.example.com", "pbxgate.smtp.rcpt_count": 1,
           "pbxgate.smtp.size": size, "pbxgate.smtp.reply": reply,
           "pbxgate.smtp.smarthost_reply": smarthost_reply}
    if scrub is not None:
        rec["pbxgate.smtp.scrub"] = scrub
    return rec


@pytest.mark.skipif(not REAL_BIN, reason="the audit_log of the real binary")
def test_audit_record_of_a_relayed_message(gw, sink):
    """Every field of the relayed record (docs/logging.md)."""
    gw.audit_lines()
    data = b"Subject: hi\r\nMessage-ID: <audit-relayed@x>\r\n\r\nJust hello.\r\n"
    got = send_data(gw.port, data)
    assert got.startswith("250"), got
    recs = [json.loads(l) for l in gw.audit_lines()]
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["pbxgate.smtp.smarthost_reply"].startswith("250"), rec
    assert {k: v for k, v in rec.items() if k != "@timestamp"} == smtp_record(
        "relayed", "success", "audit-relayed@x", len(data), got,
        rec["pbxgate.smtp.smarthost_reply"]), rec


@pytest.mark.skipif(not REAL_BIN, reason="the audit_log of the real binary")
def test_audit_record_of_a_rejected_message(gw, sink):
    """A message refused before the smarthost (a bare LF): failure, no
    smarthost reply."""
    gw.audit_lines()
    data = b"Subject: hi\r\nMessage-ID: <audit-rejected@x>\r\n\r\nbare\nLF\r\n"
    got = send_data(gw.port, data)
    assert got.startswith("554"), got
    recs = [json.loads(l) for l in gw.audit_lines()]
    assert len(recs) == 1, recs
    rec = recs[0]
    assert {k: v for k, v in rec.items() if k != "@timestamp"} == smtp_record(
        "bad_line_end", "failure", "", len(data), got, ""), rec
