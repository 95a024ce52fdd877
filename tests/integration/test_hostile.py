"""test_hostile.py -- hostile request heads and bodies (issue 2 item 6), each
sent as raw bytes over TLS: the gateway must answer with the exact status,
say `Connection: close`, close the socket, and forward nothing (checked at
the recording upstream with a marker request sent afterwards)."""

import time

import pytest

from conftest import upstream_marker
from helpers import Client, ConnectionClosed, raw_exchange

H = b"Host: localhost\r\n"


def post(headers, body=b""):
    return b"POST /echo HTTP/1.1\r\n" + H + headers + b"\r\n" + body


def get(extra=b"", line=b"GET / HTTP/1.1"):
    return line + b"\r\n" + H + extra + b"\r\n"


# (id, raw bytes, expected status). Limits are those of helpers.DEFAULTS:
# max_request_line 8k, max_header_size 8k, max_headers 100, max_body_size 100m.
VECTORS = [
    # Content-Length / Transfer-Encoding conflicts (CL.TE, TE.CL)
    ("cl_and_te", post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                       b"0\r\n\r\n"), 400),
    ("te_and_cl", post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                       b"0\r\n\r\n"), 400),
    ("cl_duplicate_equal", post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 400),
    ("cl_duplicate_differ", post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), 400),
    ("cl_comma_list", post(b"Content-Length: 5, 5\r\n", b"hello"), 400),
    ("cl_plus", post(b"Content-Length: +5\r\n", b"hello"), 400),
    ("cl_space_inside", post(b"Content-Length: 5 5\r\n", b"hello"), 400),
    ("cl_hex", post(b"Content-Length: 0x5\r\n", b"hello"), 400),
    ("cl_empty", post(b"Content-Length: \r\n", b"hello"), 400),
    ("cl_negative", post(b"Content-Length: -1\r\n", b"hello"), 400),
    ("cl_overflow", post(b"Content-Length: 99999999999999999999999\r\n", b"hello"), 400),
    # Transfer-Encoding other than exactly chunked (TE.TE obfuscations)
    ("te_gzip_chunked", post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 400),
    ("te_chunked_chunked", post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"), 400),
    ("te_two_headers", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                            b"0\r\n\r\n"), 400),
    ("te_xchunked", post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), 400),
    ("te_identity", post(b"Transfer-Encoding: identity\r\n", b""), 400),
    ("te_vtab_chunked", post(b"Transfer-Encoding: \x0bchunked\r\n", b"0\r\n\r\n"), 400),
    ("te_space_before_colon", post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), 400),
    ("te_obs_fold", post(b"X-Foo: a\r\n Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("te_space_before_first_header",
     b"POST /echo HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + H + b"\r\n0\r\n\r\n", 400),
    ("te_nul_after_chunked", post(b"Transfer-Encoding: chunked\x00\r\n", b"0\r\n\r\n"), 400),
    ("te_chunked_semicolon", post(b"Transfer-Encoding: chunked;x=1\r\n", b"0\r\n\r\n"), 400),
    # obs-fold, line ends, control bytes
    ("obs_fold_space", get(b"X-Foo: a\r\n b\r\n"), 400),
    ("obs_fold_tab", get(b"X-Foo: a\r\n\tb\r\n"), 400),
    ("bare_lf_everywhere", b"GET / HTTP/1.1\nHost: localhost\n\n", 400),
    ("bare_lf_request_line", b"GET / HTTP/1.1\nHost: localhost\r\n\r\n", 400),
    ("bare_lf_header", get(b"X-Foo: a\nX-Bar: b\r\n"), 400),
    ("bare_cr_everywhere", b"GET / HTTP/1.1\rHost: localhost\r\r", 400),
    ("bare_cr_in_value", get(b"X-Foo: a\rb\r\n"), 400),
    ("nul_in_value", get(b"X-Foo: a\x00b\r\n"), 400),
    ("nul_in_target", get(line=b"GET /a\x00b HTTP/1.1"), 400),
    ("nul_in_name", get(b"X-F\x00oo: a\r\n"), 400),
    ("ctl_0x01_in_value", get(b"X-Foo: a\x01b\r\n"), 400),
    ("ctl_0x1f_in_value", get(b"X-Foo: a\x1fb\r\n"), 400),
    ("del_0x7f_in_value", get(b"X-Foo: a\x7fb\r\n"), 400),
    ("ctl_in_target", get(line=b"GET /a\x07b HTTP/1.1"), 400),
    # bad chunk sizes, sent as the first chunk in the same write as the head
    ("chunk_size_not_hex", post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_overflow", post(b"Transfer-Encoding: chunked\r\n",
                                 b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_negative", post(b"Transfer-Encoding: chunked\r\n", b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_0x_prefix", post(b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_empty", post(b"Transfer-Encoding: chunked\r\n", b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_bare_lf", post(b"Transfer-Encoding: chunked\r\n", b"5\nhello\r\n0\r\n\r\n"), 400),
    # request targets and Host
    ("absolute_form_host_mismatch", get(line=b"GET http://evil.test/ HTTP/1.1"), 400),
    ("host_twice_equal", get(H), 400),
    ("host_twice_differ", get(b"Host: evil.test\r\n"), 400),
    ("host_missing_http11", b"GET / HTTP/1.1\r\nX-Foo: a\r\n\r\n", 400),
    ("request_line_double_space", get(line=b"GET  / HTTP/1.1"), 400),
    ("request_line_http09", b"GET /\r\n" + H + b"\r\n", 505),
    # header names
    ("space_before_colon", get(b"X-Foo : bar\r\n"), 400),
    ("host_space_before_colon", b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", 400),
    ("header_name_bad_char", get(b"X(Foo): bar\r\n"), 400),
    ("header_no_colon", get(b"X-Foo bar\r\n"), 400),
    # sizes
    ("request_line_over_max", get(line=b"GET /" + b"a" * 9000 + b" HTTP/1.1"), 414),
    ("header_over_max", get(b"X-Big: " + b"b" * 9000 + b"\r\n"), 431),
    ("headers_over_count", get(b"".join(b"X-H%d: v\r\n" % i for i in range(101))), 431),
    ("body_over_max_by_cl", post(b"Content-Length: 200000000\r\n", b"x" * 1000), 413),
    # methods
    ("method_connect", b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n", 405),
    ("method_trace", get(line=b"TRACE / HTTP/1.1"), 405),
]


@pytest.mark.parametrize("raw,status", [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS])
def test_hostile_vector(gateway, upstream, ctx, raw, status):
    before = len(upstream.entries())
    r, closed = raw_exchange(gateway.port, ctx, raw)
    assert r is not None, "gateway closed without an answer (expected %d)" % status
    assert r.status == status, r
    assert (r.get("connection") or "").lower() == "close", r
    assert closed, "socket left open after %d" % status
    forwarded = upstream_marker(upstream, gateway, ctx)[before:]
    assert forwarded == [], "gateway forwarded: %r" % forwarded


def test_hostile_after_valid_request_on_same_connection(gateway, upstream, ctx):
    """A valid request then a smuggling attempt on one keep-alive connection:
    the first is answered, the second refused, nothing of it forwarded."""
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/headers?first")
        assert r.status == 200
        before = len(upstream.entries())
        c.send(post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + H + b"\r\n"))
        r = c.reader.response()
        assert r.status == 400
        assert c.reader.at_eof(5)
    forwarded = upstream_marker(upstream, gateway, ctx)[before:]
    assert forwarded == []


def test_half_head_times_out(gateway, upstream, ctx):
    """header_timeout 2s: a client that stops mid-head gets 408 or a close."""
    with Client(gateway.port, ctx) as c:
        c.sock.settimeout(10)
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        t0 = time.monotonic()
        try:
            r = c.reader.response()
            assert r.status == 408, r
            assert c.reader.at_eof(5)
        except ConnectionClosed:
            pass
        elapsed = time.monotonic() - t0
        assert 1.0 <= elapsed <= 8.0, "closed after %.1fs, header_timeout is 2s" % elapsed


def test_valid_request_still_served_after_hostile_burst(gateway, ctx):
    for _, raw, _ in VECTORS[:10]:
        raw_exchange(gateway.port, ctx, raw)
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/").status == 200
