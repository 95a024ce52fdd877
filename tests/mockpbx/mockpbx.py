#!/usr/bin/python3
"""mockpbx.py -- a stand-in for the PBX behind pbxgate in the quick start and
browser tests: the same URL layout (console SPA and /api/, web client and its
JSON login API, the /ws/webclient WebSocket, provisioning files, installers),
with fixed demo credentials. Not a PBX; nothing here is secure on purpose.

Demo credentials: console admin/admin, web client extension 1000 / password
"demo1000". Provisioning secret: demo-provisioning-secret.
"""

import argparse
import asyncio
import json
import secrets
import sys
import time

from aiohttp import WSMsgType, web

PROV_SECRET = "demo-provisioning-secret"
CONSOLE_USERS = {"admin": "admin"}
WEBCLIENT_USERS = {"1000": "demo1000"}

CONSOLE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Mock PBX Management Console</title></head>
<body><div id="app"><h1>Mock PBX Management Console</h1>
<form id="login"><input name="Username" placeholder="user">
<input name="Password" type="password" placeholder="password">
<button type="submit">Login</button></form><p id="result"></p></div>
<script>
document.getElementById('login').onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const r = await fetch('/api/login', {method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({Username: f.get('Username'), Password: f.get('Password')})});
  document.getElementById('result').textContent = await r.text();
};
</script></body></html>
"""

WEBCLIENT_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Mock PBX Web Client</title></head>
<body><div id="app"><h1>Mock PBX Web Client</h1>
<form id="login"><input name="Username" placeholder="extension">
<input name="Password" type="password" placeholder="password">
<button type="submit">Login</button></form><p id="status"></p><ul id="events"></ul></div>
<script>
const log = (t) => { const li = document.createElement('li'); li.textContent = t;
  document.getElementById('events').appendChild(li); };
document.getElementById('login').onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const r = await fetch('/webclient/api/Login/GetAccessToken', {method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({Username: f.get('Username'), Password: f.get('Password'),
                          SecurityCode: ''})});
  const j = await r.json();
  document.getElementById('status').textContent = j.Status;
  if (j.Status !== 'AuthSuccess') return;
  const s = await fetch('/webclient/api/MyPhone/session', {method: 'POST',
    headers: {'Authorization': 'Bearer ' + j.Token.access_token}});
  const sk = await s.json();
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') +
    location.host + '/ws/webclient?sessionId=' + encodeURIComponent(sk.sessionKey) +
    '&pass=' + encodeURIComponent(sk.pass));
  ws.onopen = () => { log('websocket open'); ws.send('hello'); };
  ws.onmessage = (m) => log('message: ' + m.data);
  ws.onclose = () => log('websocket closed');
};
</script></body></html>
"""

PROV_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- mock PBX provisioning file: fake values only -->
<config>
  <extension>1000</extension>
  <sip_user>1000</sip_user>
  <sip_password>not-a-real-secret</sip_password>
  <server>pbx.example.test</server>
</config>
"""


class State:
    def __init__(self):
        self.tokens = {}     # access_token -> extension
        self.sessions = {}   # session key -> (extension, pass)
        self.xsrf = set()


async def console(request):
    return web.Response(text=CONSOLE_HTML, content_type="text/html")


async def api_login(request):
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return web.Response(status=400, text="Bad request")
    user, pw = str(body.get("Username", "")), str(body.get("Password", ""))
    if CONSOLE_USERS.get(user) is None or not secrets.compare_digest(CONSOLE_USERS[user], pw):
        return web.Response(status=401, text="Incorrect username or password")
    token = secrets.token_urlsafe(24)
    request.app["state"].xsrf.add(token)
    resp = web.Response(text="AuthSuccess")
    resp.set_cookie("XSRF-TOKEN", token, path="/", samesite="Strict")
    return resp


async def api_logout(request):
    request.app["state"].xsrf.discard(request.headers.get("x-xsrf-token", ""))
    resp = web.Response(text="OK")
    resp.del_cookie("XSRF-TOKEN", path="/")
    return resp


async def api_other(request):
    token = request.headers.get("x-xsrf-token", "")
    if token not in request.app["state"].xsrf:
        return web.Response(status=401, text="Unauthorized")
    return web.json_response({"path": request.path, "ok": True})


async def webclient(request):
    return web.Response(text=WEBCLIENT_HTML, content_type="text/html")


async def get_access_token(request):
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return web.json_response({"Status": "BadRequest"}, status=400)
    user, pw = str(body.get("Username", "")), str(body.get("Password", ""))
    want = WEBCLIENT_USERS.get(user)
    if want is None or not secrets.compare_digest(want, pw):
        return web.json_response({"Status": "AuthFailed"}, status=401)
    access = secrets.token_urlsafe(32)
    request.app["state"].tokens[access] = user
    return web.json_response({"Status": "AuthSuccess", "Token": {
        "token_type": "Bearer", "expires_in": 60, "access_token": access,
        "refresh_token": secrets.token_urlsafe(32)}})


async def wc_logout(request):
    auth = request.headers.get("Authorization", "")
    request.app["state"].tokens.pop(auth.removeprefix("Bearer "), None)
    return web.json_response({"Status": "OK"})


async def myphone_session(request):
    auth = request.headers.get("Authorization", "")
    ext = request.app["state"].tokens.get(auth.removeprefix("Bearer "))
    if ext is None:
        return web.json_response({"Status": "Unauthorized"}, status=401)
    key, pw = secrets.token_hex(16), secrets.token_hex(8)
    request.app["state"].sessions[key] = (ext, pw)
    return web.json_response({"sessionKey": key, "pass": pw})


async def ws_webclient(request):
    key = request.query.get("sessionId", "")
    sess = request.app["state"].sessions.get(key)
    if sess is None or not secrets.compare_digest(sess[1], request.query.get("pass", sess[1])):
        return web.Response(status=403, text="unknown session")
    ws = web.WebSocketResponse(heartbeat=None)
    await ws.prepare(request)

    async def keepalive():
        while not ws.closed:
            await ws.send_str(json.dumps({"type": "keepalive", "time": int(time.time())}))
            await asyncio.sleep(request.app["keepalive"])
    task = asyncio.create_task(keepalive())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
    finally:
        task.cancel()
    return ws


async def provisioning(request):
    if not secrets.compare_digest(request.match_info["secret"], PROV_SECRET):
        raise web.HTTPNotFound()
    name = request.match_info["file"]
    if "/" in name or ".." in name or "\\" in name:
        raise web.HTTPNotFound()
    return web.Response(text=PROV_XML.replace("1000", "1000"), content_type="application/xml")


async def c2clogin(request):
    return web.Response(text="<!doctype html><title>Click to call</title><p>c2c %s</p>"
                        % ("ok" if request.query else "login"), content_type="text/html")


async def installer(request):
    return web.Response(body=b"MZ mock installer " + request.match_info["name"].encode(),
                        content_type="application/octet-stream")


async def healthz(request):
    return web.Response(text="ok\n")


def make_app(keepalive):
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app["state"] = State()
    app["keepalive"] = keepalive
    app.add_routes([
        web.get("/", console),
        web.post("/api/login", api_login),
        web.post("/api/logout", api_logout),
        web.route("*", "/api/{tail:.*}", api_other),
        web.get("/webclient", lambda r: web.HTTPFound("/webclient/")),
        web.get("/webclient/", webclient),
        web.post("/webclient/api/Login/GetAccessToken", get_access_token),
        web.post("/webclient/api/Logout", wc_logout),
        web.post("/webclient/api/MyPhone/session", myphone_session),
        web.get("/ws/webclient", ws_webclient),
        web.get("/provisioning/{secret}/{file}", provisioning),
        web.get("/MyPhone/c2clogin", c2clogin),
        web.get("/electron/windows/{name}", installer),
        web.get("/electron/osx/{name}", installer),
        web.get("/mockpbx/healthz", healthz),
    ])
    return app


def main():
    ap = argparse.ArgumentParser(description="mock PBX upstream for pbxgate demos and tests")
    ap.add_argument("--listen", default="127.0.0.1:5000", help="HOST:PORT (default %(default)s)")
    ap.add_argument("--keepalive", type=float, default=20.0,
                    help="seconds between WebSocket keep-alive frames")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    print("mock PBX on http://%s (console admin/admin, web client 1000/demo1000, "
          "provisioning /provisioning/%s/phone.xml)" % (a.listen, PROV_SECRET),
          file=sys.stderr, flush=True)
    web.run_app(make_app(a.keepalive), host=host.strip("[]"), port=int(port),
                print=None, access_log=None)


if __name__ == "__main__":
    main()
