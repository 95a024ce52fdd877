#!/usr/bin/python3
"""smarthost.py -- a plaintext SMTP smarthost for the fault tests that can
drop the connection in the middle of DATA, built on aiosmtpd (Debian
python3-aiosmtpd).

  smarthost.py --port N --out DIR [--drop-after BYTES] [--drop-times K]

Every accepted message is stored as DIR/N.eml (written to a temp name, then
renamed: a stored file is a whole message). With --drop-after, the first K
DATA transfers (default 1) are cut: once BYTES of message data have arrived,
the socket is closed without a reply. Prints "ready" once listening.
"""

import argparse
import asyncio
import os
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class DroppingSMTP(SMTP):
    """aiosmtpd's SMTP with a DATA that can be cut after some bytes."""

    async def smtp_DATA(self, arg):
        st = self.event_handler.state
        if st["drops_left"] <= 0 or not self.envelope.rcpt_tos:
            return await super().smtp_DATA(arg)
        st["drops_left"] -= 1
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        got = 0
        while got < st["drop_after"]:
            line = await self._reader.readline()
            if not line:
                break
            got += len(line)
        # Cut without a reply, as a crashing or partitioned smarthost would.
        self.transport.abort()


class Store:
    def __init__(self, out, drop_after, drops):
        self.out = out
        self.count = 0
        self.state = {"drop_after": drop_after, "drops_left": drops if drop_after >= 0 else 0}

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.out, "%d.eml" % self.count)
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as FAULT%d" % self.count


class DroppingController(Controller):
    def factory(self):
        return DroppingSMTP(self.handler, **self.SMTP_kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--drop-after", type=int, default=-1)
    ap.add_argument("--drop-times", type=int, default=1)
    a = ap.parse_args()
    store = Store(a.out, a.drop_after, a.drop_times)
    c = DroppingController(store, hostname="127.0.0.1", port=a.port)
    c.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()    # runs until the test closes our stdin
    finally:
        c.stop()


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    main()
