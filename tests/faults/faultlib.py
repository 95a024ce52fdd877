"""faultlib.py -- small shared pieces of the fault and load tests: the
integration helpers (imported read-only from tests/integration/helpers.py),
the binary under test, a throw-away certificate, and wrk's summary parser."""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from helpers import (REPO, Client, ConnectionClosed, Gateway, Upstream,  # noqa: E402,F401
                     client_context, free_port, mkcert, wait_until)


def pbxgate_bin():
    path = os.environ.get("PBXGATE_BIN", os.path.join(REPO, "build", "pbxgate"))
    if not os.access(path, os.X_OK):
        raise AssertionError("pbxgate binary not found at %s (build it, or set PBXGATE_BIN)"
                             % path)
    return os.path.abspath(path)


def wrk_summary(text):
    """requests, non-2xx/3xx, socket errors (connect+read+write+timeout) from
    wrk's output."""
    m = re.search(r"(\d+) requests in", text)
    reqs = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    sock = sum(int(x) for x in m.groups()) if m else 0
    return reqs, non2xx, sock
