"""test_smtp_sites.py -- the SMTP relay beside sites (issue 17 item 1): each
site block's smtp_listen is that site's relay, with its own scrub rules,
its certificate for STARTTLS and its name in the audit lines; two
listeners on one address, a site's on the gateway's port and a top-level
smtp_listen beside sites are refused by `check` at FILE:LINE:COL."""

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers import free_port, free_ports, mkcert
from lock_helpers import run_cli
from test_mail import PASSWORD, PW_HASH

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
STEP = 15.0   # bound on any single wait


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def rules(d, name, pattern):
    return write(os.path.join(d, name + ".rules"),
                 "rule %s-secret\n  kind text\n  pattern %s\n"
                 "  action replace\nend\n" % (name, pattern))


@pytest.fixture(scope="module")
def pki(workdir):
    d = os.path.join(workdir, "smtp-sites")
    os.makedirs(d, exist_ok=True)
    return {"dir": d, "a": mkcert(d, "a", "a.example"),
            "b": mkcert(d, "b", "b.example"),
            "c": mkcert(d, "c", "c.example"),
            "a2": mkcert(d, "a2", "mail.a.example"),
            "c_rules": rules(d, "c", "CHARLIE-[0-9]+"),
            "sink": mkcert(d, "sink", "localhost"),
            "a_rules": rules(d, "a", "ALPHA-[0-9]+"),
            "b_rules": rules(d, "b", "BRAVO-[0-9]+")}


@pytest.fixture(scope="module")
def sink(pki):
    """The smarthost both sites relay to (STARTTLS, its own certificate)."""
    out = os.path.join(pki["dir"], "sink-out")
    os.makedirs(out, exist_ok=True)
    port = free_port()
    p = subprocess.Popen([sys.executable, os.path.join(
        ROOT, "tests", "integration", "mail_sink.py"), "--port", str(port),
        "--cert", pki["sink"][0], "--key", pki["sink"][1], "--out", out],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline().decode().strip()   # "ready" once listening
    assert line == "ready", p.stderr.read()
    yield {"port": port, "out": out}
    p.stdin.close()
    p.send_signal(signal.SIGTERM)
    p.wait(STEP)


def site(name, pki, smtp_port, extra=()):
    cert, key = pki[name]
    return ["site %s {" % name, "\tserver_name %s.example" % name,
            "\ttls_cert %s" % cert, "\ttls_key %s" % key,
            "\tupstream http://127.0.0.1:%d" % free_port(),
            "\tsmtp_listen 127.0.0.1:%d" % smtp_port,
            "\tscrub_rules %s" % pki[name + "_rules"],
            "\tscrub_notice [%s removed]" % name] + \
        ["\t" + e for e in extra] + ["}"]


def conf_with(pki, lines, name="smtp-sites.conf"):
    return write(os.path.join(pki["dir"], name), "\n".join(lines) + "\n")


def top(pki, sink_port, audit):
    """The mail settings both sites inherit: the smarthost and its CA."""
    return ["listen 127.0.0.1:%d" % free_port(), "workers 1",
            "audit_log %s" % audit, "smtp_hostname gw.test",
            "smtp_relay 127.0.0.1:%d" % sink_port, "smtp_relay_tls starttls",
            "smtp_relay_ca %s" % pki["sink"][0], "smtp_timeout 20s",
            "smtp_relay_timeout 20s"]


class Run:
    def __init__(self, pbxgate_bin, conf, ports):
        self.p = subprocess.Popen([pbxgate_bin, "run", "-c", conf],
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        deadline = time.monotonic() + STEP
        for port in ports:   # ready when every relay listener accepts
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if self.p.poll() is not None or \
                            time.monotonic() > deadline:
                        self.p.kill()
                        raise RuntimeError("pbxgate did not start: %r" %
                                           self.p.stderr.read())
                    time.sleep(0.05)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(STEP)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        err = self.p.stderr.read().decode("utf-8", "replace")
        assert rc == 0, err[-4000:]


@pytest.fixture(scope="module")
def two(pbxgate_bin, pki, sink):
    pa, pb, admin = free_ports(3)
    audit = os.path.join(pki["dir"], "audit.log")
    pc = free_port()   # c: its PBX must log in (smtp_auth of its own)
    conf = conf_with(pki, top(pki, sink["port"], audit) +
                     ["admin_listen 127.0.0.1:%d" % admin] +
                     site("a", pki, pa, extra=(
                         "tls_cert %s" % pki["a2"][0],
                         "tls_key %s" % pki["a2"][1])) +
                     site("b", pki, pb) +
                     site("c", pki, pc, extra=("smtp_auth pbx %s" % PW_HASH,)))
    gw = Run(pbxgate_bin, conf, (pa, pb, pc))
    yield {"a": pa, "b": pb, "c": pc, "audit": audit, "admin": admin}
    gw.stop()


class Smtp:
    """A conversation: send a line, read the whole reply (code, lines)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), STEP)
        self.buf = b""
        assert self.reply()[0] == 220

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed; had %r" % self.buf)
            self.buf += chunk
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode("utf-8", "replace")

    def reply(self):
        lines = [self.line()]
        while lines[-1][3:4] == "-":
            lines.append(self.line())
        return int(lines[-1][:3]), lines

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply()

    def starttls(self, ctx, sni):
        assert self.cmd("EHLO pbx.test")[0] == 250
        assert self.cmd("STARTTLS")[0] == 220
        self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)
        return self.sock.getpeercert()

    def close(self):
        self.sock.close()


def trusting(cert):
    ctx = ssl.create_default_context(cafile=cert)
    return ctx


def send(port, ctx, sni, body):
    s = Smtp(port)
    s.starttls(ctx, sni)
    assert s.cmd("EHLO pbx.test")[0] == 250
    assert s.cmd("MAIL FROM:<pbx@pbx.test>")[0] == 250
    assert s.cmd("RCPT TO:<alice@example.com>")[0] == 250
    assert s.cmd("DATA")[0] == 354
    s.sock.sendall(body.encode() + b"\r\n.\r\n")
    code, lines = s.reply()
    s.cmd("QUIT")
    s.close()
    return code, lines


def relayed(sink, marker):
    """The message the sink stored with `marker`, polled to a deadline."""
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline:
        for name in sorted(os.listdir(sink["out"])):
            if name.endswith(".eml"):
                with open(os.path.join(sink["out"], name), "rb") as f:
                    raw = f.read().decode("utf-8", "replace")
                if marker in raw:
                    return raw
        time.sleep(0.05)
    raise AssertionError("no message with %s at the sink" % marker)


def audit_for(path, marker_id):
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    ev = json.loads(line)
                    if ev.get("email.message_id") == marker_id:
                        return ev
        time.sleep(0.05)
    raise AssertionError("no audit line for %s" % marker_id)


def message(marker):
    return ("From: pbx@pbx.test\r\nTo: alice@example.com\r\n"
            "Subject: welcome %s\r\nMessage-ID: <%s@pbx.test>\r\n\r\n"
            "Your codes: ALPHA-1234 and BRAVO-5678\r\n" % (marker, marker))


@pytest.mark.parametrize("name,gone,kept", [("a", "ALPHA-1234", "BRAVO-5678"),
                                            ("b", "BRAVO-5678", "ALPHA-1234")])
def test_site_relay_scrubs_by_its_own_rules(two, sink, pki, name, gone, kept):
    marker = "m-%s-%d" % (name, two[name])
    code, lines = send(two[name], trusting(pki[name][0]), name + ".example",
                       message(marker))
    assert code == 250, lines
    raw = relayed(sink, marker)
    assert gone not in raw and "[%s removed]" % name in raw, raw
    assert kept in raw, raw
    ev = audit_for(two["audit"], "%s@pbx.test" % marker)
    assert ev["pbxgate.site"] == name, ev
    assert [h["rule"] for h in ev["pbxgate.smtp.scrub"]] == \
        ["%s-secret" % name], ev


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=STEP) as r:
        return r.read().decode()


def sample(text, name, labels):
    want = "%s{%s} " % (name, labels)
    for line in text.splitlines():
        if line.startswith(want):
            return int(line[len(want):])
    return None


def test_site_relay_messages_counted_per_site(two, sink, pki):
    """One message through a, two through b: each site's series counts its
    own, the total counts all."""
    before = metrics(two["admin"])
    for name, n in (("a", 1), ("b", 2)):
        for i in range(n):
            marker = "c-%s-%d-%d" % (name, i, two[name])
            code, lines = send(two[name], trusting(pki[name][0]),
                               name + ".example", message(marker))
            assert code == 250, lines
    after = metrics(two["admin"])

    def delta(name, labels):
        return sample(after, name, labels) - (sample(before, name, labels)
                                              or 0)
    assert delta("pbxgate_site_smtp_messages_total",
                 'site="a",outcome="scrubbed"') == 1, after
    assert delta("pbxgate_site_smtp_messages_total",
                 'site="b",outcome="scrubbed"') == 2, after
    assert delta("pbxgate_smtp_messages_total", 'outcome="scrubbed"') == 3
    assert "# TYPE pbxgate_site_smtp_messages_total counter" in after


def test_site_relay_rule_hits_counted_per_site(two, sink, pki):
    """Each message carries ALPHA-1234 and BRAVO-5678; site a's rule matches
    the first, b's the second. One through a, two through b: each hit under
    its own site only, the totals (labels as before sites) count all."""
    site_fam = "pbxgate_site_smtp_scrub_rule_hits_total"
    total = "pbxgate_smtp_scrub_rule_hits_total"
    before = metrics(two["admin"])
    for name, n in (("a", 1), ("b", 2)):
        for i in range(n):
            marker = "h-%s-%d-%d" % (name, i, two[name])
            code, lines = send(two[name], trusting(pki[name][0]),
                               name + ".example", message(marker))
            assert code == 250, lines
    after = metrics(two["admin"])

    def delta(name, labels):
        return sample(after, name, labels) - (sample(before, name, labels)
                                              or 0)
    assert delta(site_fam, 'site="a",rule="a-secret",action="replace"') \
        == 1, after
    assert delta(site_fam, 'site="b",rule="b-secret",action="replace"') \
        == 2, after
    assert sample(after, site_fam,
                  'site="a",rule="b-secret",action="replace"') is None
    assert sample(after, site_fam,
                  'site="b",rule="a-secret",action="replace"') is None
    assert delta(site_fam, 'site="a",rule="other",action="other"') == 0
    assert delta(site_fam, 'site="b",rule="other",action="other"') == 0
    assert delta(total, 'rule="a-secret",action="replace"') == 1, after
    assert delta(total, 'rule="b-secret",action="replace"') == 2, after
    assert "# TYPE %s counter" % site_fam in after
    assert after.count("# TYPE %s " % site_fam) == 1


def test_smtp_auth_is_the_sites_own(two, pki):
    """c sets smtp_auth: MAIL needs AUTH there (530), and its login works;
    a, without one (none inherited), takes MAIL without AUTH."""
    plain = "AUTH PLAIN " + base64.b64encode(
        b"\0pbx\0" + PASSWORD.encode()).decode()
    s = Smtp(two["c"])
    s.starttls(trusting(pki["c"][0]), "c.example")
    code, lines = s.cmd("EHLO pbx.test")
    assert code == 250 and any("AUTH" in l for l in lines), lines
    assert s.cmd("MAIL FROM:<pbx@pbx.test>")[0] == 530
    assert s.cmd(plain)[0] == 235
    assert s.cmd("MAIL FROM:<pbx@pbx.test>")[0] == 250
    s.close()
    s = Smtp(two["a"])
    s.starttls(trusting(pki["a"][0]), "a.example")
    code, lines = s.cmd("EHLO pbx.test")
    assert code == 250 and not any("AUTH" in l for l in lines), lines
    assert s.cmd("MAIL FROM:<pbx@pbx.test>")[0] == 250
    s.close()


@pytest.mark.parametrize("name", ["a", "b"])
def test_starttls_presents_the_sites_certificate(two, pki, name):
    s = Smtp(two[name])
    cert = s.starttls(trusting(pki[name][0]), name + ".example")
    assert dict(x[0] for x in cert["subject"])["commonName"] == \
        name + ".example"
    s.close()


@pytest.mark.parametrize("sni,cert", [("mail.a.example", "a2"),
                                      ("a.example", "a"),
                                      ("unknown.example", "a")])
def test_starttls_chooses_among_the_sites_certificates_by_sni(two, pki, sni,
                                                              cert):
    """a has two certificates: the SNI picks one as on the web side; an
    unknown name gets the site's first, never another site's."""
    ctx = trusting(pki[cert][0])
    ctx.check_hostname = False   # the unknown name is on no certificate
    s = Smtp(two["a"])
    got = s.starttls(ctx, sni)
    want = "mail.a.example" if cert == "a2" else "a.example"
    assert dict(x[0] for x in got["subject"])["commonName"] == want
    s.close()


@pytest.mark.parametrize("name,other", [("a", "b"), ("b", "a")])
def test_starttls_is_not_the_other_sites_certificate(two, pki, name, other):
    s = Smtp(two[name])
    with pytest.raises(ssl.SSLCertVerificationError):
        s.starttls(trusting(pki[other][0]), other + ".example")
    s.close()


def check(pbxgate_bin, conf):
    r = run_cli(pbxgate_bin, "check", "-c", conf)
    return r.returncode, r.stderr.splitlines()


def test_check_two_sites_valid(pbxgate_bin, pki):
    conf = conf_with(pki, top(pki, 25, "off") + site("a", pki, free_port()) +
                     site("b", pki, free_port()), "valid.conf")
    rc, lines = check(pbxgate_bin, conf)
    assert rc == 0, lines
    assert lines[-1] == "%s: configuration is valid" % conf


def test_check_same_address_in_two_sites(pbxgate_bin, pki):
    port = free_port()
    lines = top(pki, 25, "off")   # 9 lines; a: 10-18, b: 19-27
    conf = conf_with(pki, lines + site("a", pki, port) + site("b", pki, port),
                     "dup.conf")
    rc, out = check(pbxgate_bin, conf)
    assert rc == 1
    assert out == [
        "%s:24:14: error: site \"b\": smtp_listen 127.0.0.1:%d overlaps "
        "site \"a\": smtp_listen 127.0.0.1:%d at %s:15:14: an address has "
        "one listener; use another port" % (conf, port, port, conf),
        "%s: configuration is NOT valid (1 error)" % conf], out


def test_check_same_address_twice_in_one_site(pbxgate_bin, pki):
    port = free_port()
    conf = conf_with(pki, top(pki, 25, "off") + site(
        "a", pki, port, extra=("smtp_listen 127.0.0.1:%d" % port,)),
        "dup1.conf")
    rc, out = check(pbxgate_bin, conf)
    assert rc == 1
    assert out[0] == (
        "%s:18:14: error: site \"a\": smtp_listen 127.0.0.1:%d overlaps "
        "site \"a\": smtp_listen 127.0.0.1:%d at %s:15:14: an address has "
        "one listener; use another port" % (conf, port, port, conf)), out


def test_check_wildcard_overlaps_other_sites_address(pbxgate_bin, pki):
    port = free_port()
    lines = top(pki, 25, "off") + site("a", pki, port)
    lines += site("b", pki, port)
    lines[23] = "\tsmtp_listen *:%d" % port
    conf = conf_with(pki, lines, "wild.conf")
    rc, out = check(pbxgate_bin, conf)
    assert rc == 1
    assert out[0] == (
        "%s:24:14: error: site \"b\": smtp_listen *:%d overlaps site \"a\": "
        "smtp_listen 127.0.0.1:%d at %s:15:14: an address has one "
        "listener; use another port" % (conf, port, port, conf)), out


def test_check_site_listener_on_the_https_port(pbxgate_bin, pki):
    lines = top(pki, 25, "off") + site("a", pki, 1)
    lines[0] = "listen 127.0.0.1:1"
    conf = conf_with(pki, lines, "https.conf")
    rc, out = check(pbxgate_bin, conf)
    assert rc == 1
    assert out[0] == (
        "%s:15:14: error: site \"a\": smtp_listen 127.0.0.1:1 overlaps "
        "listen 127.0.0.1:1: use another port" % conf), out


def test_check_top_level_smtp_listen_beside_sites(pbxgate_bin, pki):
    lines = top(pki, 25, "off") + ["smtp_listen 127.0.0.1:%d" % free_port()]
    lines += site("a", pki, free_port())
    conf = conf_with(pki, lines, "top.conf")
    rc, out = check(pbxgate_bin, conf)
    assert rc == 1
    assert out == [
        "%s:10:13: error: smtp_listen at the top level is not served beside "
        "site blocks: the relay would not know which site's PBX connected; "
        "put smtp_listen inside each site block that relays mail" % conf,
        "%s: configuration is NOT valid (1 error)" % conf], out


def test_check_site_relay_without_smarthost(pbxgate_bin, pki):
    lines = ["listen 127.0.0.1:%d" % free_port()] + site("a", pki, 2525)
    conf = conf_with(pki, lines, "norelay.conf")
    rc, out = check(pbxgate_bin, conf)
    assert rc == 1
    assert out == [
        "%s:7:14: error: site \"a\": smtp_listen is set but smtp_relay is "
        "not: add 'smtp_relay HOST:PORT' (the smarthost)" % conf,
        "%s: configuration is NOT valid (1 error)" % conf], out


def test_check_site_mail_keyword_error_has_its_location(pbxgate_bin, pki):
    lines = top(pki, 25, "off") + site("a", pki, free_port(),
                                       extra=("smtp_max_line 10",))
    conf = conf_with(pki, lines, "badkw.conf")
    rc, out = check(pbxgate_bin, conf)
    assert rc == 1
    assert out[0].startswith("%s:18:16: error: site \"a\": smtp_max_line: "
                             % conf), out


def test_scrub_command_takes_the_sites_rules(pbxgate_bin, pki):
    conf = conf_with(pki, top(pki, 25, "off") + site("a", pki, free_port()) +
                     site("b", pki, free_port()), "scrub.conf")
    for name, gone in (("a", "ALPHA-1234"), ("b", "BRAVO-5678")):
        r = subprocess.run([pbxgate_bin, "scrub", "-c", conf, "--site", name],
                           input=message("scrub").encode(),
                           capture_output=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert gone.encode() not in r.stdout
        assert ("[%s removed]" % name).encode() in r.stdout


def reloaded(audit, n):
    """Waits for the nth successful reload's audit line."""
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline:
        if os.path.exists(audit):
            with open(audit, encoding="utf-8") as f:
                done = [l for l in f if '"event.module":"config"' in l and
                        '"event.outcome":"success"' in l]
            if len(done) >= n:
                return
        time.sleep(0.05)
    raise AssertionError("no reload %d in %s" % (n, audit))


def closed_without_greeting(port):
    s = socket.create_connection(("127.0.0.1", port), STEP)
    s.settimeout(STEP)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    finally:
        s.close()


def test_reload_takes_the_sites_new_rules_and_listeners(pbxgate_bin, pki,
                                                        sink):
    """SIGHUP: a's new notice applies to a's next message; a listener
    moved to another port leaves its old address without a relay (closed
    at once, never served by another site's) until a restart."""
    pa, pb, moved = free_ports(3)
    audit = os.path.join(pki["dir"], "audit-reload.log")
    lines = top(pki, sink["port"], audit) + site("a", pki, pa) + \
        site("b", pki, pb)
    conf = conf_with(pki, lines, "reload.conf")
    gw = Run(pbxgate_bin, conf, (pa, pb))
    try:
        lines = [l.replace("[a removed]", "[a renamed]") for l in lines]
        lines = [l.replace(":%d" % pb, ":%d" % moved) for l in lines]
        conf_with(pki, lines, "reload.conf")
        gw.p.send_signal(signal.SIGHUP)
        reloaded(audit, 1)
        marker = "r-a-%d" % pa
        code, out = send(pa, trusting(pki["a"][0]), "a.example",
                         message(marker))
        assert code == 250, out
        raw = relayed(sink, marker)
        assert "[a renamed]" in raw and "ALPHA-1234" not in raw, raw
        assert closed_without_greeting(pb)
    finally:
        gw.stop()
