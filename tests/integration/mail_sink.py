"""mail_sink.py -- the smarthost for the mail integration tests: an aiosmtpd
server that requires STARTTLS, stores each message it accepts as N.eml in
--out, and refuses recipients whose local part starts with "refuse" (550)
or "later" (451) so the tests can see the smarthost's own replies.
Prints "ready" once listening."""
import argparse
import asyncio
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        local = address.split("@", 1)[0]
        if local.startswith("refuse"):
            return "550 5.1.1 Mailbox unavailable (sink)"
        if local.startswith("later"):
            return "451 4.3.0 Try again later (sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.out, "%d.eml" % self.count)
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(path + ".env", "w") as f:
            f.write("%s\n%s\n%s\n" % (envelope.mail_from,
                                      ",".join(envelope.rcpt_tos),
                                      "tls" if session.ssl else "plain"))
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as SINK%d" % self.count


def auth_ok(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == b"relayuser"
                      and auth_data.password == b"relaypass")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--auth", action="store_true")
    a = ap.parse_args()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    kw = {}
    if a.auth:
        kw = dict(authenticator=auth_ok, auth_require_tls=True)
    c = Controller(Sink(a.out), hostname="127.0.0.1", port=a.port,
                   tls_context=ctx, require_starttls=True,
                   data_size_limit=64 * 1024 * 1024, ready_timeout=10,
                   **kw)
    c.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()       # runs until the test closes our stdin
    finally:
        c.stop()


if __name__ == "__main__":
    main()
