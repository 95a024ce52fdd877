"""test_mail_faults.py -- the mail relay when its smarthost drops the
connection in the middle of DATA (tests/faults/smarthost.py): the PBX side
gets a 4xx (never a 250), the smarthost has stored nothing, and the PBX's
retry is stored exactly once: no message lost, none duplicated.

Run: PBXGATE_BIN=build/pbxgate /usr/bin/python3 -m pytest -q tests/faults/test_mail_faults.py
Fast (about 10 s): fit for every CI run.
"""

import os
import smtplib
import subprocess
import sys
import uuid

import pytest

from faultlib import REPO, Gateway, free_port, mkcert, pbxgate_bin, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"


class Smarthost:
    def __init__(self, d, drop_after, drop_times=1):
        self.port = free_port()
        self.out = os.path.join(d, "sink-%d" % self.port)
        os.makedirs(self.out)
        self.p = subprocess.Popen([PYTHON, os.path.join(HERE, "smarthost.py"), "--port",
                                   str(self.port), "--out", self.out,
                                   "--drop-after", str(drop_after),
                                   "--drop-times", str(drop_times)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.p.stdout.readline().strip() == b"ready"

    def messages(self):
        return sorted(f for f in os.listdir(self.out) if f.endswith(".eml"))

    def read(self, name):
        with open(os.path.join(self.out, name), "rb") as f:
            return f.read()

    def stop(self):
        self.p.stdin.close()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)


def message(mid, size):
    body = ("Line of a voicemail notification, padded to size.\r\n" * (size // 52 + 1))
    return ("From: pbx@pbx.example.com\r\nTo: alice@example.com\r\nSubject: fault test\r\n"
            "Message-ID: <%s@fault.test>\r\n\r\n%s" % (mid, body)).encode()


def send(port, msg):
    """One SMTP transaction as the PBX does it; returns the final reply code."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("pbx.example.com")
        code, _ = s.mail("pbx@pbx.example.com")
        assert code == 250
        code, _ = s.rcpt("alice@example.com")
        assert code == 250
        code, resp = s.data(msg)
        return code, resp


@pytest.fixture
def relay(tmp_path):
    made = []

    def make(drop_after):
        d = str(tmp_path)
        sink = Smarthost(d, drop_after)
        smtp_port = free_port()
        gw = Gateway(pbxgate_bin(), d, [mkcert(d)], free_port(), name="gw-%d" % smtp_port,
                     extra=["smtp_listen 127.0.0.1:%d" % smtp_port, "smtp_hostname gw.test",
                            "smtp_relay 127.0.0.1:%d" % sink.port, "smtp_relay_tls none",
                            "smtp_timeout 20s", "smtp_relay_timeout 10s",
                            "scrub_rules %s" % os.path.join(REPO, "etc", "scrub.rules")])
        gw.start()
        gw.smtp_port = smtp_port
        made.append((gw, sink))
        return gw, sink

    yield make
    for gw, sink in made:
        rc = gw.stop()
        sink.stop()
        assert not gw.sanitizer_reports(), gw.stderr()[-4000:]
        assert rc == 0, "pbxgate exited %s: %s" % (rc, gw.stderr()[-2000:])


# drop_after: bytes of message data the smarthost reads before it cuts the
# connection (0: right after its 354; 40000: deep inside a 64 KB message).
@pytest.mark.parametrize("drop_after", [0, 2000, 40000])
def test_smarthost_drops_mid_data(relay, drop_after):
    gw, sink = relay(drop_after)
    mid = uuid.uuid4().hex
    msg = message(mid, 64 * 1024)
    code, resp = send(gw.smtp_port, msg)
    assert 400 <= code < 500, "PBX got %d %r for a message the smarthost never took" % (
        code, resp)
    assert sink.messages() == [], "smarthost stored a cut message"
    assert gw.healthy()
    # The PBX retries later: the message arrives exactly once.
    code, resp = send(gw.smtp_port, msg)
    assert code == 250, (code, resp)
    got = wait_until(lambda: sink.messages(), timeout=10, what="message at the smarthost")
    assert len(got) == 1, got
    assert (b"<%s@fault.test>" % mid.encode()) in sink.read(got[0])
    assert len(sink.messages()) == 1, "duplicate delivery"


def test_relay_serves_next_session_after_drop(relay):
    """A cut smarthost connection leaves nothing stuck: ten messages in a row
    after it are each stored once."""
    gw, sink = relay(100)
    assert 400 <= send(gw.smtp_port, message("first", 4096))[0] < 500
    mids = [uuid.uuid4().hex for _ in range(10)]
    for m in mids:
        assert send(gw.smtp_port, message(m, 4096))[0] == 250
    wait_until(lambda: len(sink.messages()) == 10, timeout=20, what="10 messages stored")
    stored = b"".join(sink.read(n) for n in sink.messages())
    for m in mids:
        assert stored.count(b"<%s@fault.test>" % m.encode()) == 1, m
