#!/usr/bin/python3
"""upstream.py -- the recording upstream the integration tests put behind pbxgate.

Plain HTTP/1.1 over raw asyncio sockets with its own deliberately strict
parser: anything ambiguous it receives (both Content-Length and
Transfer-Encoding, bad line ends, control bytes, ...) is recorded as a
"violation" so that a test can prove the gateway never forwarded it.

Every request head received is appended as one JSON line to --log:
  {"conn": N, "seq": K, "peer": "...", "method": ..., "target": ...,
   "version": ..., "headers": [[name, value], ...]}
and every violation as {"conn": N, "violation": "why", "raw": "..."}.

Endpoints:
  GET  /bytes/N      N bytes, Content-Length
  GET  /chunked/N    N bytes, chunked
  POST /sha256       reads the whole body, answers {"length", "sha256"}
  POST /echo         echoes the body as it arrives (chunked in -> chunked out,
                     Content-Length in -> same Content-Length out)
  GET  /headers      the request head as JSON
  GET  /slow/MS      answers after MS milliseconds
  GET  /status/N     an empty response with status N
  GET  /sechdr       sets its own security headers (the gateway must keep them)
  GET  /ws           WebSocket echo (text, binary, ping, close)
  GET  /ws-refuse    answers 200 to an Upgrade request (no tunnel)
  GET  /bad/KIND     a malformed response (BAD_RESPONSES), then closes
  ANY  /hostile/KIND raw response-side attack bytes (hostile_response()),
                     then keeps reading requests on the connection, so that
                     anything the gateway lets through afterwards (a request
                     inside a bogus tunnel, the next request on a desynced
                     connection) is recorded
  anything else      200 "hello\n"
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import struct
import sys
import urllib.parse

MAX_HEAD = 256 * 1024
TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
TARGET = re.compile(rb"^[\x21-\x7e]+$")
VERSION = re.compile(rb"^HTTP/1\.[01]$")
DIGITS = re.compile(rb"^[0-9]{1,18}$")
HEXSIZE = re.compile(rb"^[0-9A-Fa-f]{1,15}$")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SERVER = b"recording-upstream/1"


class Violation(Exception):
    pass


class Recorder:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, obj):
        self.f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.f.flush()


def check_head(raw):
    """Strictly parse one request head (bytes up to and excluding the blank
    line). Returns (method, target, version, headers) or raises Violation."""
    if b"\x00" in raw:
        raise Violation("NUL in head")
    for i, b in enumerate(raw):
        if b == 0x0D and raw[i + 1:i + 2] != b"\n":
            raise Violation("bare CR")
        if b == 0x0A and (i == 0 or raw[i - 1] != 0x0D):
            raise Violation("bare LF")
        if (b < 0x20 and b not in (0x09, 0x0D, 0x0A)) or b == 0x7F:
            raise Violation("control byte 0x%02x in head" % b)
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise Violation("request line not 3 parts")
    method, target, version = parts
    if not TOKEN.match(method) or not TARGET.match(target) or not VERSION.match(version):
        raise Violation("bad request line")
    headers = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise Violation("obs-fold")
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN.match(name):
            raise Violation("bad header name %r" % name[:40])
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    low = [(n.lower(), v) for n, v in headers]
    hosts = [v for n, v in low if n == "host"]
    if version == b"HTTP/1.1" and len(hosts) != 1:
        raise Violation("%d Host headers" % len(hosts))
    cls = [v for n, v in low if n == "content-length"]
    tes = [v for n, v in low if n == "transfer-encoding"]
    if cls and tes:
        raise Violation("both Content-Length and Transfer-Encoding")
    if len(cls) > 1:
        raise Violation("several Content-Length")
    if cls and not DIGITS.match(cls[0].encode("latin-1")):
        raise Violation("malformed Content-Length %r" % cls[0])
    if len(tes) > 1 or (tes and tes[0].lower() != "chunked"):
        raise Violation("Transfer-Encoding %r" % tes)
    if target.startswith(b"http://") or target.startswith(b"https://"):
        raise Violation("absolute-form target reached the upstream")
    if method in (b"CONNECT", b"TRACE"):
        raise Violation("%s reached the upstream" % method.decode())
    return (method.decode(), target.decode("latin-1"), version.decode(), headers)


# Malformed responses for /bad/KIND: the gateway must not pass any of them
# on as a well-formed response (502, or a closed connection once a valid
# head has already gone out).
SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
BAD_RESPONSES = {
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"0\r\n\r\n",
    "dup-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "bad-cl": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "nul-header": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "header-split": b"HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n",
    "chunk-bad": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
    "cl-short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
    "extra": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + SMUGGLED,
}


# Response-side attacks for /hostile/KIND. FORGED is what a desynced
# gateway would hand the client as the answer to its next request.
FORGED = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 23\r\n"
          b"X-Forged: 1\r\n\r\n<h1>forged login</h1>\n\n")
FINAL = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nfinal\n"


def _chunked(data):
    return b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n"


def _bodiless(status):
    """A bodiless status that carries FORGED as a body, by each framing."""
    line = {"204": b"HTTP/1.1 204 No Content\r\n", "304": b"HTTP/1.1 304 Not Modified\r\n",
            "100": b"HTTP/1.1 100 Continue\r\n", "103": b"HTTP/1.1 103 Early Hints\r\n",
            "head": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"}[status]
    return {
        "cl": line + b"Content-Length: %d\r\n\r\n" % len(FORGED) + FORGED,
        "chunked": line + b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(FORGED),
        "trailing": line + b"Content-Length: 0\r\n\r\n" + FORGED,
    }


def _accept(key):
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + WS_GUID).digest())


def _switch(headers, kind):
    """101 answers to a WebSocket request, each wrong in one way (or, for
    "full", right as far as it can be without a key in the request)."""
    key = hget(headers, "sec-websocket-key") or ""
    acc = _accept(key)
    other = _accept("AAAAAAAAAAAAAAAAAAAAAA==")
    head = {
        "full": [b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + acc],
        "no-upgrade": [b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + acc],
        "no-connection": [b"Upgrade: websocket", b"Sec-WebSocket-Accept: " + acc],
        "wrong-accept": [b"Upgrade: websocket", b"Connection: Upgrade",
                         b"Sec-WebSocket-Accept: " + other],
        "no-accept": [b"Upgrade: websocket", b"Connection: Upgrade"],
        "two-accept": [b"Upgrade: websocket", b"Connection: Upgrade",
                       b"Sec-WebSocket-Accept: " + acc, b"Sec-WebSocket-Accept: " + other],
        "h2c": [b"Upgrade: h2c", b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + acc],
        "bare": [],
    }[kind]
    return b"HTTP/1.1 101 Switching Protocols\r\n" + b"".join(h + b"\r\n" for h in head) + b"\r\n"


def hostile_response(kind, query, headers):
    """The raw bytes for /hostile/KIND, or None for an unknown KIND."""
    status, _, frame = kind.partition("-")
    if status in ("204", "304", "100", "103", "head") and frame in ("cl", "chunked", "trailing"):
        return _bodiless(status)[frame]
    if kind == "304-cl-nobody":  # conformant: the length of the representation, no body
        return b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n"
    if kind == "204-cl-nobody":
        return b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
    if kind == "103-then-200":  # a conformant interim answer, then the real one
        return b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + FINAL
    if kind == "100-flood":
        return b"HTTP/1.1 100 Continue\r\n\r\n" * 9 + FINAL
    if status == "101":
        try:
            return _switch(headers, frame)
        except KeyError:
            return None
    if status == "reason":  # one byte (hex) inside the reason phrase
        b = bytes([int(frame, 16)])
        return b"HTTP/1.1 200 A" + b + b"B\r\nContent-Length: 6\r\n\r\nhello\n"
    if kind == "cookie":  # ?v=VALUE: one Set-Cookie with that value, beside a harmless one
        v = urllib.parse.unquote_to_bytes(query[2:]) if query.startswith("v=") else b""
        return (b"HTTP/1.1 200 OK\r\nSet-Cookie: theme=dark\r\nSet-Cookie: " + v +
                b"\r\nContent-Length: 3\r\n\r\nok\n")
    return None


def hget(headers, name):
    name = name.lower()
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


class Conn:
    counter = 0

    def __init__(self, srv, reader, writer):
        Conn.counter += 1
        self.id = Conn.counter
        self.srv = srv
        self.r = reader
        self.w = writer
        peer = writer.get_extra_info("peername")
        self.peer = "%s:%s" % (peer[0], peer[1]) if peer else "?"
        self.seq = 0
        self.is_head = False

    async def read_head(self):
        buf = b""
        while True:
            try:
                chunk = await self.r.readuntil(b"\n")
            except asyncio.IncompleteReadError as e:
                if buf or e.partial:
                    raise Violation("connection closed inside a head")
                return None
            except asyncio.LimitOverrunError:
                raise Violation("line too long")
            buf += chunk
            if len(buf) > MAX_HEAD:
                raise Violation("head too large")
            if buf.endswith(b"\r\n\r\n"):
                return buf[:-4]
            if buf in (b"\r\n",):
                raise Violation("empty line before request")

    async def body_chunks(self, headers):
        """Yields the request body in pieces, strictly de-chunking."""
        te = hget(headers, "transfer-encoding")
        cl = hget(headers, "content-length")
        if te is not None:
            while True:
                line = await self.r.readuntil(b"\n")
                if not line.endswith(b"\r\n"):
                    raise Violation("chunk size line without CRLF")
                size = line[:-2].split(b";", 1)[0]
                if not HEXSIZE.match(size):
                    raise Violation("bad chunk size %r" % size[:40])
                n = int(size, 16)
                if n == 0:
                    while True:  # trailers
                        t = await self.r.readuntil(b"\n")
                        if t == b"\r\n":
                            return
                        if not t.endswith(b"\r\n"):
                            raise Violation("trailer without CRLF")
                while n > 0:
                    data = await self.r.read(min(n, 65536))
                    if not data:
                        raise Violation("EOF inside chunk")
                    n -= len(data)
                    yield data
                if await self.r.readexactly(2) != b"\r\n":
                    raise Violation("chunk data not followed by CRLF")
        elif cl is not None:
            n = int(cl)
            while n > 0:
                data = await self.r.read(min(n, 65536))
                if not data:
                    raise Violation("EOF inside body")
                n -= len(data)
                yield data

    async def send(self, status, reason, headers, body=b""):
        head = ["HTTP/1.1 %d %s" % (status, reason), "Server: " + SERVER.decode()]
        for n, v in headers:
            head.append("%s: %s" % (n, v))
        if not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers):
            head.append("Content-Length: %d" % len(body))
        if self.is_head:
            body = b""
        self.w.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await self.w.drain()

    async def run(self):
        try:
            while True:
                raw = await self.read_head()
                if raw is None:
                    return
                method, target, version, headers = check_head(raw)
                self.seq += 1
                self.srv.rec.write({"conn": self.id, "seq": self.seq, "peer": self.peer,
                                    "method": method, "target": target,
                                    "version": version, "headers": headers})
                if (hget(headers, "expect") or "").lower() == "100-continue":
                    self.w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                keep = await self.dispatch(method, target, version, headers)
                if not keep:
                    return
        except Violation as v:
            self.srv.rec.write({"conn": self.id, "violation": str(v)})
            try:
                self.w.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                await self.w.drain()
            except OSError:
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.LimitOverrunError:
            self.srv.rec.write({"conn": self.id, "violation": "line too long"})
        finally:
            try:
                self.w.close()
            except Exception:
                pass

    async def drain_body(self, headers):
        total = 0
        async for piece in self.body_chunks(headers):
            total += len(piece)
        return total

    async def dispatch(self, method, target, version, headers):
        path = target.split("?", 1)[0]
        self.is_head = method == "HEAD"
        conn_hdr = (hget(headers, "connection") or "").lower()
        close = "close" in conn_hdr or version == "HTTP/1.0"
        extra = [("Connection", "close")] if close else []
        if path == "/echo":
            await self.echo(headers, extra)
            return not close
        if path.startswith("/bad/") and path[5:] in BAD_RESPONSES:
            self.w.write(BAD_RESPONSES[path[5:]])
            await self.w.drain()
            return False  # close: what follows on this connection is garbage
        if path.startswith("/hostile/"):
            await self.drain_body(headers)
            raw = hostile_response(path[9:], target.partition("?")[2], headers)
            if raw is None:
                await self.send(404, "Not Found", extra, b"no such hostile kind\n")
                return not close
            self.w.write(raw)
            await self.w.drain()
            return True  # read on: record whatever the gateway still sends
        if path == "/sha256":
            h, n = hashlib.sha256(), 0
            async for piece in self.body_chunks(headers):
                h.update(piece)
                n += len(piece)
            body = json.dumps({"length": n, "sha256": h.hexdigest()}).encode()
            await self.send(200, "OK", extra + [("Content-Type", "application/json")], body)
            return not close
        await self.drain_body(headers)
        m = re.match(r"^/(bytes|chunked|slow|status)/(\d{1,9})$", path)
        if m and m.group(1) == "bytes":
            n = int(m.group(2))
            self.w.write(("HTTP/1.1 200 OK\r\nServer: %s\r\nContent-Type: application/octet-stream"
                          "\r\nContent-Length: %d\r\n%s\r\n" % (
                              SERVER.decode(), n,
                              "Connection: close\r\n" if close else "")).encode())
            await self.stream_pattern(n, chunked=False)
        elif m and m.group(1) == "chunked":
            n = int(m.group(2))
            self.w.write(("HTTP/1.1 200 OK\r\nServer: %s\r\nContent-Type: application/octet-stream"
                          "\r\nTransfer-Encoding: chunked\r\n%s\r\n" % (
                              SERVER.decode(),
                              "Connection: close\r\n" if close else "")).encode())
            await self.stream_pattern(n, chunked=True)
        elif m and m.group(1) == "slow":
            await asyncio.sleep(int(m.group(2)) / 1000.0)
            await self.send(200, "OK", extra + [("Content-Type", "text/plain")], b"slow\n")
        elif m and m.group(1) == "status":
            code = int(m.group(2))
            await self.send(code, "Status", extra, b"" if code in (204, 304) else b"status\n")
        elif path == "/headers":
            body = json.dumps({"conn": self.id, "seq": self.seq, "peer": self.peer,
                               "method": method, "target": target, "version": version,
                               "headers": headers}).encode()
            await self.send(200, "OK", extra + [("Content-Type", "application/json")], body)
        elif path == "/sechdr":
            await self.send(200, "OK", extra + [
                ("Strict-Transport-Security", "max-age=5"),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
                ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")],
                b"own headers\n")
        elif path == "/ws" and (hget(headers, "upgrade") or "").lower() == "websocket":
            await self.websocket(headers)
            return False
        elif path == "/ws-refuse":
            await self.send(200, "OK", extra + [("Content-Type", "text/plain")], b"no upgrade\n")
        else:
            await self.send(200, "OK", extra + [("Content-Type", "text/plain")], b"hello\n")
        return not close

    async def stream_pattern(self, n, chunked):
        if self.is_head:
            await self.w.drain()
            return
        block = bytes(range(256)) * 256  # 64 KiB, deterministic
        sent = 0
        while sent < n:
            piece = block[:min(len(block), n - sent)]
            if chunked:
                self.w.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                self.w.write(piece)
            sent += len(piece)
            await self.w.drain()
        if chunked:
            self.w.write(b"0\r\n\r\n")
        await self.w.drain()

    async def echo(self, headers, extra):
        cl = hget(headers, "content-length")
        if hget(headers, "transfer-encoding") is not None:
            self.w.write(b"HTTP/1.1 200 OK\r\nServer: " + SERVER +
                         b"\r\nContent-Type: application/octet-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n" +
                         b"".join(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in extra) +
                         b"\r\n")
            async for piece in self.body_chunks(headers):
                self.w.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                await self.w.drain()
            self.w.write(b"0\r\n\r\n")
        else:
            n = int(cl) if cl is not None else 0
            self.w.write(b"HTTP/1.1 200 OK\r\nServer: " + SERVER +
                         b"\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n" % n +
                         b"".join(b"%s: %s\r\n" % (n_.encode(), v.encode()) for n_, v in extra) +
                         b"\r\n")
            async for piece in self.body_chunks(headers):
                self.w.write(piece)
                await self.w.drain()
        await self.w.drain()

    async def websocket(self, headers):
        key = hget(headers, "sec-websocket-key")
        if key is None:
            await self.send(400, "Bad Request", [("Connection", "close")], b"no key\n")
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.w.write(("HTTP/1.1 101 Switching Protocols\r\nServer: %s\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % (
                          SERVER.decode(), accept)).encode())
        await self.w.drain()
        msg_op, msg = None, b""
        while True:
            b0, b1 = await self.r.readexactly(2)
            fin, op = b0 & 0x80, b0 & 0x0F
            if not b1 & 0x80:
                raise Violation("unmasked client WebSocket frame")
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.r.readexactly(8))[0]
            if n > 64 * 1024 * 1024:
                raise Violation("WebSocket frame too large")
            mask = await self.r.readexactly(4)
            data = bytearray(await self.r.readexactly(n))
            for i in range(len(data)):
                data[i] ^= mask[i & 3]
            data = bytes(data)
            if op == 0x8:
                self.w.write(ws_frame(0x8, data[:2]))
                await self.w.drain()
                return
            if op == 0x9:
                self.w.write(ws_frame(0xA, data))
                await self.w.drain()
                continue
            if op == 0xA:
                continue
            if op in (0x1, 0x2):
                msg_op, msg = op, data
            elif op == 0x0:
                msg += data
            if fin and msg_op is not None:
                self.w.write(ws_frame(msg_op, msg))
                await self.w.drain()
                msg_op, msg = None, b""


def ws_frame(op, data, mask=None):
    head = bytes([0x80 | op])
    mbit = 0x80 if mask else 0
    n = len(data)
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        data = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
        head += mask
    return head + data


class Server:
    def __init__(self, log):
        self.rec = Recorder(log)

    async def handle(self, reader, writer):
        await Conn(self, reader, writer).run()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:5080")
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    srv = Server(a.log)
    server = await asyncio.start_server(srv.handle, host.strip("[]"), int(port),
                                        reuse_address=True, limit=MAX_HEAD,
                                        backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print("upstream listening on %s" % a.listen, file=sys.stderr, flush=True)
    async with server:
        await stop.wait()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
