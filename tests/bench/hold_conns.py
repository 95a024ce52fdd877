#!/usr/bin/python3
"""hold_conns.py -- opens N keep-alive TLS connections to HOST:PORT, does one
GET on each, then holds them all idle until stdin closes. Prints
"READY <open> <failed>" on stdout once every connection is established, so
a benchmark can measure the proxy's memory with N idle connections.
Usage: hold_conns.py PORT N PATH"""

import asyncio
import ssl
import sys

CONCURRENCY = 64


async def one(port, path, ctx, sem, held, failed):
    async with sem:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                        server_hostname="localhost"), 20)
            w.write(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
            await w.drain()
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 20)
            n = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":", 1)[1])
            await asyncio.wait_for(r.readexactly(n), 20)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head[:40])
            held.append(w)
        except Exception as e:  # noqa: BLE001 - count and report
            failed.append(repr(e))


async def main():
    port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(CONCURRENCY)
    held, failed = [], []
    await asyncio.gather(*(one(port, path, ctx, sem, held, failed) for _ in range(n)))
    print("READY %d %d" % (len(held), len(failed)), flush=True)
    if failed:
        print("first failure: %s" % failed[0], file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for w in held:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
