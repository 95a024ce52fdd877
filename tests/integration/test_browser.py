"""test_browser.py -- runs tests/browser/login.mjs (headless Chromium driven by
playwright-core) against a real gateway with a user store in front of the mock
PBX, and asserts what the script reports. Nothing is skipped: without node,
chromium, oathtool or tests/browser/node_modules the test fails and says how
to install them."""

import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from auth_helpers import SourceForwarder, make_auth_gateway  # noqa: F401
from helpers import PYTHON, REPO, free_port, wait_until

BROWSER_DIR = os.path.join(REPO, "tests", "browser")
CHROMIUM = "/usr/bin/chromium"
SCRIPT_TIMEOUT = 150

INSTALL = ("install them with: apt-get install -y chromium nodejs npm oathtool "
           "fonts-ipafont-gothic && (cd tests/browser && npm ci)")


def _require():
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Debian package nodejs)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM + " (Debian package chromium)")
    if shutil.which("oathtool") is None:
        missing.append("oathtool (Debian package oathtool)")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        missing.append("tests/browser/node_modules/playwright-core (run npm ci there)")
    if missing:
        pytest.fail("browser test cannot run, missing: %s; %s" % (", ".join(missing), INSTALL),
                    pytrace=False)


@pytest.fixture(scope="module")
def mockpbx(workdir):
    port = free_port()
    err = open(os.path.join(workdir, "mockpbx-browser.stderr"), "wb")
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


def test_browser_enrol_login_websocket_lockdown_account_logout(make_auth_gateway, mockpbx, workdir):
    _require()
    gw = make_auth_gateway(mockpbx)
    allowed = SourceForwarder(gw.port, "127.0.0.2")
    other = SourceForwarder(gw.port, "127.0.0.3")
    shots = tempfile.mkdtemp(prefix="pbxgate-shots-")
    conf = os.path.join(workdir, "browser.json")
    with open(conf, "w") as f:
        json.dump({"base": "https://localhost:%d" % allowed.port,
                   "other": "https://localhost:%d" % other.port,
                   "enrol": gw.enrol_link("judy"), "user": "judy",
                   "allow": "127.0.0.2/32", "shots": shots}, f)
    try:
        p = subprocess.run(["node", os.path.join(BROWSER_DIR, "login.mjs"), conf],
                           cwd=BROWSER_DIR, capture_output=True, timeout=SCRIPT_TIMEOUT)
    finally:
        allowed.close()
        other.close()
    out = p.stdout.decode("utf-8", "replace").strip().splitlines()
    assert out, "login.mjs printed nothing (exit %d); stderr:\n%s" % (
        p.returncode, p.stderr.decode("utf-8", "replace")[-4000:])
    res = json.loads(out[-1])
    print(json.dumps(res, indent=1, ensure_ascii=False))
    print("screenshots in", shots)
    assert res["ok"] and p.returncode == 0, "%s\nstderr:\n%s" % (
        json.dumps(res, indent=1, ensure_ascii=False), p.stderr.decode()[-4000:])
    by = {s["step"]: s for s in res["steps"]}
    assert by["enrol"]["recovery_codes"] == 10, by["enrol"]
    assert by["lockdown"]["other_status"] == 403 and by["lockdown"]["allowed_status"] == 200
    assert by["websocket"]["first_frame"], by["websocket"]
    for lang in ("en", "ja"):
        assert os.path.getsize(by["screenshots"][lang]["file"]) > 1000
        acc = by["account 390px"][lang]
        assert acc["width"] == 390 and acc["scroll_width"] <= 390, acc
        assert acc["controls"] >= 12 and acc["overflow"] == [], acc
        assert acc["duplicate_ids"] == [] and acc["unlabelled"] == [], acc
        assert acc["html_lang"] == lang and acc["not_in_language"] == [], acc
        assert os.path.getsize(acc["file"]) > 1000
