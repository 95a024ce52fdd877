"""test_mockpbx.py -- the quick start's path end to end: the mock PBX behind
pbxgate, its console and web-client logins, the /ws/webclient WebSocket with
keep-alive frames, and provisioning files."""

import json
import os
import socket
import subprocess

import pytest

from helpers import PYTHON, REPO, Client, free_port, wait_until, ws_frame, ws_handshake_bytes, ws_read


@pytest.fixture(scope="module")
def mockpbx(workdir):
    port = free_port()
    err = open(os.path.join(workdir, "mockpbx.stderr"), "wb")
    proc = subprocess.Popen([PYTHON, os.path.join(REPO, "tests", "mockpbx", "mockpbx.py"),
                             "--listen", "127.0.0.1:%d" % port, "--keepalive", "0.2"],
                            stdout=subprocess.DEVNULL, stderr=err)

    def up():
        assert proc.poll() is None, "mock PBX exited"
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    wait_until(up, timeout=15, what="mock PBX")
    yield port
    proc.terminate()
    proc.wait(10)
    err.close()


@pytest.fixture(scope="module")
def pbxgw(pbxgate_bin, workdir, certs, mockpbx):
    from conftest import _finish_gateway
    from helpers import Gateway
    gw = Gateway(pbxgate_bin, workdir, [certs.main], mockpbx, name="gw-mockpbx")
    gw.start()
    yield gw
    _finish_gateway(gw)


def _json_post(c, path, obj, headers=()):
    body = json.dumps(obj).encode()
    return c.request("POST", path, headers=[("Content-Type", "application/json")] + list(headers),
                     body=body)


def test_console_page_and_login(pbxgw, ctx):
    with Client(pbxgw.port, ctx) as c:
        r = c.request("GET", "/")
        assert r.status == 200 and b"Management Console" in r.body
        r = _json_post(c, "/api/login", {"Username": "admin", "Password": "admin"})
        assert r.status == 200 and r.body == b"AuthSuccess"
        assert any(v.startswith("XSRF-TOKEN=") for v in r.get_all("set-cookie"))
        r = _json_post(c, "/api/login", {"Username": "admin", "Password": "wrong"})
        assert r.status == 401


def test_webclient_login_session_and_websocket(pbxgw, ctx):
    with Client(pbxgw.port, ctx) as c:
        assert c.request("GET", "/webclient/").status == 200
        r = _json_post(c, "/webclient/api/Login/GetAccessToken",
                       {"Username": "1000", "Password": "demo1000", "SecurityCode": ""})
        assert r.status == 200 and r.json()["Status"] == "AuthSuccess"
        token = r.json()["Token"]["access_token"]
        r = c.request("POST", "/webclient/api/MyPhone/session",
                      headers=[("Authorization", "Bearer " + token)], body=b"")
        assert r.status == 200
        sess = r.json()
    with Client(pbxgw.port, ctx) as ws:
        req, want = ws_handshake_bytes("/ws/webclient?sessionId=%s&pass=%s"
                                       % (sess["sessionKey"], sess["pass"]))
        ws.send(req)
        r = ws.reader.response()
        assert r.status == 101, r
        op, data = ws_read(ws.reader)
        assert op == 0x1 and json.loads(data)["type"] == "keepalive"
        ws.send(ws_frame(0x1, b"presence?"))
        for _ in range(20):
            op, data = ws_read(ws.reader)
            if data == b"presence?":
                break
        else:
            raise AssertionError("echo not received")
        ws.send(ws_frame(0x8, b"\x03\xe8"))


def test_provisioning_secret(pbxgw, ctx):
    with Client(pbxgw.port, ctx) as c:
        r = c.request("GET", "/provisioning/demo-provisioning-secret/phone.xml")
        assert r.status == 200 and b"<config>" in r.body
        assert c.request("GET", "/provisioning/wrong/phone.xml").status == 404


def test_c2c_and_installer(pbxgw, ctx):
    with Client(pbxgw.port, ctx) as c:
        assert c.request("GET", "/MyPhone/c2clogin?c2cid=1").status == 200
        r = c.request("GET", "/electron/windows/3CXDesktopApp-18.12.425.msi")
        assert r.status == 200 and r.body.startswith(b"MZ")
