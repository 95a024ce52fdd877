#!/usr/bin/python3
"""office.py -- an office behind one NAT address: N TLS connections to
127.0.0.1:PORT, all from one address, every one of them proven (a complete
request answered), one in --ws-every a WebSocket to /ws kept open. Once all
are up it prints "open N ws W" (N = connections that got their answer),
then uses every connection once more (a GET on the plain ones, an echoed
frame on the WebSockets) and prints "again A" (A = how many were served
again). Then it holds them until --secs pass or SIGTERM.
For tests/faults/test_load_faults.py; loopback only.

  office.py --port P [--conns 3000] [--ws-every 7] [--secs 60]
"""

import argparse
import asyncio
import base64
import os
import resource
import signal
import ssl
import struct
import sys

HEAD_END = b"\r\n\r\n"


async def read_response(r):
    head = await r.readuntil(HEAD_END)
    status = int(head.split(b" ", 2)[1])
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    if n:
        await r.readexactly(n)
    return status


def ws_request():
    key = base64.b64encode(os.urandom(16))
    return (b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
            b"\r\nSec-WebSocket-Version: 13\r\n\r\n")


def ws_text(data):
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bytes([0x81, 0x80 | len(data)]) + mask + body


async def ws_echo(r, w, data):
    w.write(ws_text(data))
    await w.drain()
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await r.readexactly(2))[0]
    return (await r.readexactly(n)) == data


async def open_one(port, ctx, ws):
    r, w = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="localhost"), 30)
    if ws:
        w.write(ws_request())
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(HEAD_END), 30)
        ok = head.startswith(b"HTTP/1.1 101")
    else:
        w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await w.drain()
        ok = await asyncio.wait_for(read_response(r), 30) == 200
    if not ok:
        w.close()
        return None
    return (r, w, ws)


async def use_again(c):
    r, w, ws = c
    try:
        if ws:
            return await asyncio.wait_for(ws_echo(r, w, b"presence"), 30)
        w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await w.drain()
        status = await asyncio.wait_for(read_response(r), 30)
        if status != 200:
            print("again: status %d" % status, file=sys.stderr, flush=True)
        return status == 200
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError) as e:
        # Said on stderr so that a failing test shows why a connection failed.
        print("again: %s %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
        return False


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--ws-every", type=int, default=7)
    ap.add_argument("--secs", type=float, default=60)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.conns + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.conns + 1024), hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    gate = asyncio.Semaphore(32)    # at most 32 handshakes at once

    async def gated(i):
        async with gate:
            try:
                return await open_one(a.port, ctx, i % a.ws_every == 0)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                    ssl.SSLError, ValueError, IndexError):
                return None

    conns = [c for c in await asyncio.gather(*(gated(i) for i in range(a.conns)))
             if c is not None]
    print("open %d ws %d" % (len(conns), sum(1 for c in conns if c[2])), flush=True)
    again = await asyncio.gather(*(use_again(c) for c in conns))
    print("again %d" % sum(1 for x in again if x), flush=True)
    loop.call_later(a.secs, stop.set)
    await stop.wait()
    for r, w, _ in conns:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
