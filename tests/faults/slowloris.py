#!/usr/bin/python3
"""slowloris.py -- holds N TLS connections to 127.0.0.1:PORT, each with a
request head that never ends: one header line every --every seconds
(default 10, as the original slowloris tool does). Prints "open N"
once all are open (N = how many succeeded), then trickles until --secs pass
or SIGTERM. For tests/faults/test_load_faults.py; loopback only.

  slowloris.py --port P [--conns 1000] [--secs 40] [--every 10]
"""

import argparse
import asyncio
import resource
import signal
import ssl
import sys


async def one(port, ctx, ready, stop, opened, every):
    try:
        r, w = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost"),
            20)
        w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        await w.drain()
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        ready.release()
        return
    opened.append(1)
    ready.release()
    i = 0
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except asyncio.TimeoutError:
                pass
            i += 1
            w.write(b"X-Slow-%d: x\r\n" % (i % 50))
            await w.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        w.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--secs", type=float, default=40)
    ap.add_argument("--every", type=float, default=10)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.conns + 64:     # one descriptor per connection, plus slack
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.conns + 1024), hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(a.secs, stop.set)
    ready = asyncio.Semaphore(0)
    opened = []
    gate = asyncio.Semaphore(32)    # at most 32 handshakes at once

    tasks = []
    for _ in range(a.conns):
        async with gate:
            tasks.append(asyncio.create_task(one(a.port, ctx, ready, stop, opened, a.every)))
            await ready.acquire()
    print("open %d" % len(opened), flush=True)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
