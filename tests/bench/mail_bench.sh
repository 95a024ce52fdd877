#!/bin/sh
# mail_bench.sh -- issue 5 item 7: messages per second for 50 KiB welcome
# emails through pbxgate's scrubbing relay, divided by messages per second
# sent straight to the same sink. Both legs use 4 parallel SMTP connections
# from the "PBX" (plaintext + AUTH to pbxgate on loopback; STARTTLS straight
# to the sink); pbxgate opens one verified STARTTLS connection to the sink
# per message, as it does in production.
# Usage: tests/bench/mail_bench.sh [MESSAGES] [DRIVER]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-400}
DRIVER=${2:-${PBXGATE_MAIL_DRIVER:-$ROOT/build-mail/tests/unit/mail/smtp_driver}}
[ -x "$DRIVER" ] || { echo "smtp_driver not found: $DRIVER (build it or pass its path)" >&2; exit 2; }
exec /usr/bin/python3 - "$ROOT" "$N" "$DRIVER" <<'PYEOF'
import os, signal, smtplib, socket, ssl, subprocess, sys, tempfile, threading, time
root, n, driver = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tmp = tempfile.mkdtemp(prefix="mailbench")
def sh(*c): subprocess.run(c, check=True, capture_output=True)
ca, cak, key, csr, crt = (os.path.join(tmp, x) for x in ("ca.pem", "ca.key", "k.pem", "c.csr", "c.pem"))
open(os.path.join(tmp, "ext"), "w").write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
   "-keyout", cak, "-out", ca, "-days", "1", "-subj", "/CN=bench CA")
sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
   "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
sh("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cak, "-CAcreateserial",
   "-out", crt, "-days", "1", "-extfile", os.path.join(tmp, "ext"))
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def start(cmd, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, **kw)
    assert p.stdout.readline().strip() == b"ready", cmd
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p
sport, gport = port(), port()
os.makedirs(os.path.join(tmp, "out"))
sink = start(["/usr/bin/python3", os.path.join(root, "tests/integration/mail_sink.py"), "--port", str(sport),
              "--cert", crt, "--key", key, "--out", os.path.join(tmp, "out")], stdin=subprocess.PIPE)
pw = "bench-pw"
h = subprocess.run([driver, "--hash", pw], check=True, capture_output=True).stdout.decode().strip()
conf = os.path.join(tmp, "gw.conf")
open(conf, "w").write("smtp_listen 127.0.0.1:%d\nsmtp_relay 127.0.0.1:%d\nsmtp_relay_ca %s\n"
                      "smtp_auth pbx %s\nscrub_rules %s/etc/scrub.rules\nsmtp_hostname gw.bench\n"
                      % (gport, sport, ca, h, root))
gw = start([driver, conf, crt, key])
filler = "<p>" + "This paragraph pads the welcome email to a realistic size. " * 8 + "</p>\n"
html = ("<html><body><p>Hello Alice,</p><p>Your extension number is 1001.</p>"
        "<p>Password: <b>Xq7</b>Secret1001</p><p>PIN: 482913</p>"
        "<p><a href='https://pbx.example.com:5001/provisioning/q8w7e6r5secret/1001.xml'>Provision</a></p>")
text = "Hello Alice,\nYour extension number is 1001.\nPassword: Xq7Secret1001\nPIN: 482913\n"
while len(html) + len(text) < 50 * 1024 - 1200:
    html += filler; text += "This paragraph pads the welcome email to a realistic size.\n" * 8
msg = ("From: pbx@pbx.example.com\r\nTo: alice@example.com\r\nSubject: Welcome to extension 1001\r\n"
       "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"B\"\r\n\r\n"
       "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--B\r\n"
       "Content-Type: text/html; charset=utf-8\r\n\r\n%s</body></html>\r\n--B--\r\n"
       % (text.replace("\n", "\r\n"), html.replace("\n", "\r\n"))).encode()
ctx = ssl.create_default_context(cafile=ca)
def leg(p, tls, auth, count):
    c = smtplib.SMTP("127.0.0.1", p, timeout=60)
    c.ehlo("pbx.bench")
    if tls: c.starttls(context=ctx); c.ehlo("pbx.bench")
    if auth: c.login("pbx", pw)
    for _ in range(count):
        c.sendmail("pbx@pbx.example.com", ["alice@example.com"], msg)
    c.quit()
def rate(p, tls, auth):
    conns = 4; per = n // conns
    ts = [threading.Thread(target=leg, args=(p, tls, auth, per)) for _ in range(conns)]
    t0 = time.monotonic()
    for t in ts: t.start()
    for t in ts: t.join()
    return conns * per / (time.monotonic() - t0)
try:
    direct = rate(sport, True, False)
    relay = rate(gport, False, True)
    print("message size: %d bytes, %d messages per leg, 4 connections" % (len(msg), n))
    print("straight to the sink:      %8.1f msg/s" % direct)
    print("through pbxgate (scrubbed): %8.1f msg/s" % relay)
    print("ratio relay/direct:         %8.2f" % (relay / direct))
finally:
    gw.send_signal(signal.SIGTERM); gw.wait(10)
    sink.stdin.close(); sink.wait(10)
PYEOF
