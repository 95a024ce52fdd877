#!/usr/bin/python3
"""gen_corpus.py -- writes the adversarial HTTP corpus: one raw-bytes file per
vector under vectors/ and manifest.json describing its expected outcome.

The raw files are the corpus (checked in, replayable with any TLS client:
`openssl s_client -quiet -connect 127.0.0.1:PORT < vectors/NAME.raw`); this
script is how they were made and is the place to add one. Run it from
anywhere: tests/adversarial/gen_corpus.py (it rewrites vectors/ and the
manifest; review the diff).

Manifest entry fields:
  name      unique id
  file      vectors/NAME.raw (the bytes sent, in one write unless "split")
  split     optional byte offset: send the bytes before it, wait for the
            response listed first (e.g. 100 Continue), then send the rest
  expect    the statuses the client must read, in order, or [] for none
  closed    true: the gateway must close the connection after them
  upstream  the exact requests the recording upstream must see, in order
            ([] = nothing may reach it): method, target, and for bodies the
            body the upstream must receive (checked via /sha256's answer)
  absent    header names that must not reach the upstream
  partial   true: the listed requests may (or may not) reach the upstream, only as a head
            and a cut body (streamed before the limit was hit), never answered
  known_bug the gateway's behaviour differs from the expected one in a way
            reported as a bug: the runner marks the vector xfail(strict), so
            it turns red the day the gateway is fixed (then drop this field)
  why       what the vector tries and why the outcome is the safe one

Limits of the gateway the runner starts: max_request_line 8k,
max_header_size 8k, max_headers 100, max_body_size 64k, header_timeout 2s.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
H = b"Host: localhost\r\n"
SMUG = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"

V = []


def vec(name, raw, expect, closed, upstream=(), why="", split=None, absent=(),
        partial=False, known_bug=None):
    V.append({"name": name, "raw": raw, "expect": list(expect), "closed": closed,
              "upstream": list(upstream), "why": why, "split": split,
              "absent": list(absent), "partial": partial, "known_bug": known_bug})


def post(hdrs, body=b"", target=b"/sha256", version=b"HTTP/1.1"):
    return b"POST " + target + b" " + version + b"\r\n" + H + hdrs + b"\r\n" + body


def get(hdrs=b"", target=b"/headers", version=b"HTTP/1.1", host=H):
    return b"GET " + target + b" " + version + b"\r\n" + host + hdrs + b"\r\n"


def up(method, target, body=None):
    d = {"method": method, "target": target}
    if body is not None:
        d["body"] = body.decode("latin-1")
    return d


TE = b"Transfer-Encoding: chunked\r\n"
REFUSED = dict(expect=[400], closed=True)

# ---------------------------------------------------------------- CL.TE / TE.CL
vec("clte_basic", post(b"Content-Length: 6\r\n" + TE, b"0\r\n\r\nG"), **REFUSED,
    why="front end by CL, back end by TE: 'G' would prefix the next request")
vec("clte_smuggle_get", post(b"Content-Length: 49\r\n" + TE, b"0\r\n\r\n" + SMUG), **REFUSED,
    why="CL.TE carrying a whole second request")
vec("tecl_basic", post(TE + b"Content-Length: 3\r\n", b"8\r\nSMUGGLED\r\n0\r\n\r\n"), **REFUSED,
    why="front end by TE, back end by CL")
vec("tecl_smuggle_get", post(TE + b"Content-Length: 4\r\n",
                             b"2c\r\n" + SMUG[:44] + b"\r\n0\r\n\r\n"), **REFUSED,
    why="TE.CL with the smuggled request inside the chunk")
vec("clte_cl_zero", post(b"Content-Length: 0\r\n" + TE, b"5\r\nhello\r\n0\r\n\r\n"), **REFUSED,
    why="CL 0 beside TE")
vec("cl_duplicate_differ", post(b"Content-Length: 5\r\nContent-Length: 50\r\n", b"hello"),
    **REFUSED, why="two lengths: which one the back end takes is a guess")
vec("cl_list_equal", post(b"Content-Length: 5,5\r\n", b"hello"), **REFUSED,
    why="a list form some servers fold into one value")
vec("cl_leading_zeros", post(b"Content-Length: 005\r\n", b"hello"), expect=[200], closed=False,
    upstream=[up("POST", "/sha256", b"hello")],
    why="leading zeros are valid digits; the gateway re-frames with its own length")
vec("cl_plus_sign", post(b"Content-Length: +5\r\n", b"hello"), **REFUSED,
    why="strtol would take it, a strict parser would not")
vec("cl_hex", post(b"Content-Length: 0x5\r\n", b"hello"), **REFUSED, why="hex length")
vec("cl_trailing_garbage", post(b"Content-Length: 5x\r\n", b"hello"), **REFUSED,
    why="atoi would read 5")
vec("cl_overflow_2e64", post(b"Content-Length: 18446744073709551621\r\n", b"hello"), **REFUSED,
    why="2^64+5 wraps to 5 in a careless parser")
vec("cl_with_te_http10", post(b"Content-Length: 5\r\n" + TE, b"0\r\n\r\n",
                              version=b"HTTP/1.0"), **REFUSED,
    why="CL.TE on HTTP/1.0, where TE is not even defined")

# ---------------------------------------------------------------- TE.TE spellings
for name, te in [
        ("te_xchunked", b"Transfer-Encoding: xchunked\r\n"),
        ("te_chunked_comma_gzip", b"Transfer-Encoding: chunked, gzip\r\n"),
        ("te_gzip_comma_chunked", b"Transfer-Encoding: gzip, chunked\r\n"),
        ("te_identity_chunked", b"Transfer-Encoding: identity, chunked\r\n"),
        ("te_quoted", b"Transfer-Encoding: \"chunked\"\r\n"),
        ("te_trailing_comma", b"Transfer-Encoding: chunked,\r\n"),
        ("te_leading_comma", b"Transfer-Encoding: ,chunked\r\n"),
        ("te_misspelt_chunk", b"Transfer-Encoding: chunk\r\n"),
        ("te_vtab_prefix", b"Transfer-Encoding:\x0bchunked\r\n"),
        ("te_formfeed_suffix", b"Transfer-Encoding: chunked\x0c\r\n"),
        ("te_kelvin_sign", b"Transfer-Encoding: chun\xe2\x84\xaaed\r\n"),
        ("te_name_space_before_colon", b"Transfer-Encoding : chunked\r\n"),
        ("te_name_tab_before_colon", b"Transfer-Encoding\t: chunked\r\n"),
        ("te_obs_fold_value", b"Transfer-Encoding:\r\n chunked\r\n"),
        ("te_two_headers", TE + TE),
        ("te_chunked_then_identity", TE + b"Transfer-Encoding: identity\r\n"),
        ("te_nul_inside", b"Transfer-Encoding: chun\x00ked\r\n"),
        ("te_cr_inside", b"Transfer-Encoding: chunked\rX: y\r\n"),
]:
    vec(name, post(te + b"Content-Length: 5\r\n", b"0\r\n\r\n"), **REFUSED,
        why="obfuscated Transfer-Encoding beside Content-Length: one side may "
            "ignore the TE and take the CL")

vec("te_uppercase", post(b"Transfer-Encoding: CHUNKED\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", b"hello")],
    why="coding names are case-insensitive (RFC 9112 7): the gateway de-chunks and re-frames")
vec("te_trailing_space", post(b"Transfer-Encoding: chunked \r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", b"hello")],
    why="OWS around a field value is not part of it")
vec("te_trailing_space_tab", post(b"Transfer-Encoding: chunked \t\r\n",
                                  b"5\r\nhello\r\n0\r\n\r\n"), **REFUSED,
    why="OWS with a tab after the coding: legal, but refused (fail closed) by the gateway")
vec("te_leading_tab", post(b"Transfer-Encoding:\tchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", b"hello")],
    why="a tab as the OWS before the value")
vec("te_underscore_name", post(b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n",
                               b"hello"),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", b"hello")],
    absent=["transfer_encoding"],
    why="CGI/WSGI/PHP back ends map _ and - to the same HTTP_TRANSFER_ENCODING variable: "
        "the underscore name must not reach the upstream beside a Content-Length")
vec("cl_underscore_name", post(b"Content_Length: 50\r\n" + TE, b"5\r\nhello\r\n0\r\n\r\n"),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", b"hello")],
    absent=["content_length"],
    why="Content_Length beside chunked: a CGI back end sees CONTENT_LENGTH=50")
vec("xff_underscore_name", get(b"X_Forwarded_For: 203.0.113.9\r\nX_Real_IP: 203.0.113.9\r\n"),
    expect=[200], closed=False, upstream=[up("GET", "/headers")],
    absent=["x_forwarded_for", "x_real_ip"],
    why="CGI/WSGI/PHP map X_Forwarded_For and X-Forwarded-For to the same HTTP_X_FORWARDED_FOR: "
        "an underscore twin of a header the gateway sets spoofs the client address")
vec("te_http10_chunked", post(TE, b"5\r\nhello\r\n0\r\n\r\n", version=b"HTTP/1.0"),
    expect=[200], closed=True, upstream=[up("POST", "/sha256", b"hello")],
    why="TE in an HTTP/1.0 request: RFC 9112 6.1 lets it be processed if the connection "
        "is closed after it; the gateway de-chunks, re-frames, and closes")
vec("te_http10_chunked_keepalive", post(b"Connection: keep-alive\r\n" + TE,
                                        b"5\r\nhello\r\n0\r\n\r\n",
                                        version=b"HTTP/1.0") + SMUG,
    expect=[200], closed=True, upstream=[up("POST", "/sha256", b"hello")],
    why="same with keep-alive asked: the connection must still close, nothing after it read")

# ---------------------------------------------------------------- chunk sizes and extensions
CH = TE
vec("chunk_ext_token", post(CH, b"5;name=value\r\nhello\r\n0\r\n\r\n"), expect=[200],
    closed=False, upstream=[up("POST", "/sha256", b"hello")],
    why="extensions are legal and must be dropped, not passed on (re-framed)")
vec("chunk_ext_quoted", post(CH, b"5;n=\"a;b\"\r\nhello\r\n0\r\n\r\n"), expect=[200],
    closed=False, upstream=[up("POST", "/sha256", b"hello")],
    why="quoted-string extension containing ';'")
vec("chunk_ext_bare_lf", post(CH, b"5;x\nhello\r\n0\r\n\r\n"), **REFUSED,
    why="a bare LF ending an extension: a lax parser ends the size line there")
vec("chunk_ext_bare_cr", post(CH, b"5;x\rhello\r\n0\r\n\r\n"), **REFUSED,
    why="a bare CR inside an extension")
vec("chunk_ext_huge", post(CH, b"5;" + b"x" * 20000 + b"\r\nhello\r\n0\r\n\r\n"),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", b"hello")],
    why="a 20 KB extension: parsed and dropped, never stored or forwarded")
vec("chunk_size_leading_zeros", post(CH, b"00000005\r\nhello\r\n0\r\n\r\n"), expect=[200],
    closed=False, upstream=[up("POST", "/sha256", b"hello")],
    why="leading zeros are valid hex digits")
vec("chunk_size_uppercase_hex", post(CH, b"A\r\n0123456789\r\n0\r\n\r\n"), expect=[200],
    closed=False, upstream=[up("POST", "/sha256", b"0123456789")], why="upper-case hex")
vec("chunk_size_space_before_crlf", post(CH, b"5 \r\nhello\r\n0\r\n\r\n"), **REFUSED,
    why="whitespace after the size (BWS) is not in RFC 9112's chunk-size")
vec("chunk_size_0x", post(CH, b"0x5\r\nhello\r\n0\r\n\r\n"), **REFUSED, why="0x prefix")
vec("chunk_size_negative", post(CH, b"-5\r\nhello\r\n0\r\n\r\n"), **REFUSED, why="sign")
vec("chunk_size_overflow_64bit", post(CH, b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    **REFUSED, why="wraps to 5 in 64 bits")
vec("chunk_data_longer_than_size", post(CH, b"3\r\nhello\r\n0\r\n\r\n"), **REFUSED,
    why="data runs past the size: the CRLF after the chunk is missing")
vec("chunk_data_lf_only_after", post(CH, b"5\r\nhello\n0\r\n\r\n"), **REFUSED,
    why="bare LF after chunk data")
vec("chunk_trailer_content_length", post(CH, b"5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n"),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", b"hello")],
    absent=["content-length"],
    why="a framing header in the trailer section must not be merged into the head")
vec("chunk_trailer_smuggle_request", post(CH, b"0\r\n" + SMUG), **REFUSED,
    why="a request line sent as a trailer field is not a field line: refused")
vec("chunk_trailer_fields_dropped", post(CH, b"0\r\nX-Trailer: 1\r\nHost: evil.test\r\n\r\n"),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", b"")],
    absent=["x-trailer"], why="valid trailer fields are dropped, never merged into the head")
vec("chunk_last_with_ext", post(CH, b"5\r\nhello\r\n0;last=1\r\n\r\n"), expect=[200],
    closed=False, upstream=[up("POST", "/sha256", b"hello")], why="extension on the last chunk")
vec("chunk_over_max_body", post(CH, b"10001\r\n" + b"a" * 0x10001 + b"\r\n0\r\n\r\n"),
    expect=[413], closed=True, upstream=[up("POST", "/sha256")], partial=True,
    why="chunked body over max_body_size 64k: no length up front, so the head and the "
        "first 64k are streamed; then 413 and both sides cut")
vec("cl_over_max_body", post(b"Content-Length: 65537\r\n", b"a" * 100), **dict(expect=[413],
    closed=True), why="Content-Length over max_body_size")

# ---------------------------------------------------------------- line ends
vec("lf_only_request", b"GET /headers HTTP/1.1\nHost: localhost\n\n", **REFUSED,
    why="LF-only line ends")
vec("cr_only_request", b"GET /headers HTTP/1.1\rHost: localhost\r\r", **REFUSED,
    why="CR-only line ends")
vec("lf_only_last_line", b"GET /headers HTTP/1.1\r\nHost: localhost\r\n\n", **REFUSED,
    why="head ending in CRLF LF")
vec("lf_inside_header_block", get(b"X-A: 1\nTransfer-Encoding: chunked\r\n"), **REFUSED,
    why="LF-only line hiding a TE header from a CRLF-only parser")
vec("cr_inside_value_smuggles_header", get(b"X-A: 1\rContent-Length: 5\r\n"), **REFUSED,
    why="bare CR as a header separator")
vec("leading_crlf_before_request", b"\r\n" + get(), expect=[200], closed=False,
    upstream=[up("GET", "/headers")],
    why="RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request")
vec("tab_in_request_line", b"GET\t/headers HTTP/1.1\r\n" + H + b"\r\n", **REFUSED,
    why="tab as request-line separator")
vec("trailing_space_request_line", b"GET /headers HTTP/1.1 \r\n" + H + b"\r\n", **REFUSED,
    why="space after the version")

# ---------------------------------------------------------------- header names
vec("name_space_inside", get(b"Content Length: 5\r\n"), **REFUSED, why="space inside a name")
vec("name_space_before_colon_cl", post(b"Content-Length : 5\r\n", b"hello"), **REFUSED,
    why="space before the colon (RFC 9112 5.1: MUST reject)")
vec("name_leading_space_first_header", b"GET /headers HTTP/1.1\r\n Host: localhost\r\n\r\n",
    **REFUSED, why="whitespace before the first header line")
vec("name_empty", get(b": value\r\n"), **REFUSED, why="empty field name")
vec("name_no_colon", get(b"Content-Length 5\r\n"), **REFUSED, why="no colon")

# ---------------------------------------------------------------- Host and targets
vec("host_duplicate_same", get(H), **REFUSED, why="two Host fields")
vec("host_duplicate_differ", get(b"Host: evil.test\r\n"), **REFUSED,
    why="two different Host fields: virtual-host confusion")
vec("host_missing_http11", b"GET /headers HTTP/1.1\r\n\r\n", **REFUSED, why="no Host in 1.1")
vec("host_empty_http11", get(host=b"Host:\r\n"), **REFUSED, why="empty Host")
vec("host_comma_list", get(host=b"Host: localhost, evil.test\r\n"), **REFUSED,
    why="a list in Host")
vec("host_userinfo", get(host=b"Host: user@localhost\r\n"), **REFUSED, why="userinfo in Host")
vec("host_with_path", get(host=b"Host: localhost/evil\r\n"), **REFUSED, why="path in Host")
vec("host_bad_port", get(host=b"Host: localhost:99999\r\n"), **REFUSED, why="port over 65535")
vec("host_with_port", get(host=b"Host: localhost:443\r\n"), expect=[200], closed=False,
    upstream=[up("GET", "/headers")], why="a valid port in Host")
vec("absolute_form_other_host", get(target=b"http://evil.test/headers"), **REFUSED,
    why="absolute-form target naming another host than Host")
vec("absolute_form_same_host", get(target=b"http://localhost/headers"), expect=[200],
    closed=False, upstream=[up("GET", "/headers")],
    why="absolute-form for our own host: sent upstream in origin form")
vec("absolute_form_userinfo", get(target=b"http://evil.test@localhost/headers"), **REFUSED,
    why="userinfo in the target authority")
vec("absolute_form_no_host_header", b"GET http://localhost/headers HTTP/1.1\r\n\r\n",
    **REFUSED, why="HTTP/1.1 without Host even with an absolute target (RFC 9112 3.2)")
vec("absolute_form_ftp", get(target=b"ftp://localhost/headers"), **REFUSED,
    why="a scheme that is not http(s)")
vec("target_fragment", get(target=b"/headers#frag"), **REFUSED, why="fragment in target")
vec("target_asterisk_get", get(target=b"*"), **REFUSED, why="asterisk-form with GET")

# ---------------------------------------------------------------- sizes, zero-length pieces
vec("request_line_over_max", get(target=b"/" + b"a" * 9000), expect=[414], closed=True,
    why="request line over max_request_line")
vec("header_value_over_max", get(b"X-Big: " + b"b" * 9000 + b"\r\n"), expect=[431],
    closed=True, why="one header line over max_header_size")
vec("header_name_over_max", get(b"X-" + b"n" * 9000 + b": v\r\n"), expect=[431], closed=True,
    why="a 9 KB field name")
vec("headers_over_count", get(b"".join(b"X-H%d: v\r\n" % i for i in range(101))),
    expect=[431], closed=True, why="more than max_headers fields")
vec("cl_zero_post", post(b"Content-Length: 0\r\n"), expect=[200], closed=False,
    upstream=[up("POST", "/sha256", b"")], why="empty body by length")
vec("chunked_zero_only", post(CH, b"0\r\n\r\n"), expect=[200], closed=False,
    upstream=[up("POST", "/sha256", b"")], why="empty body by chunks")
vec("empty_header_value", get(b"X-Empty:\r\n"), expect=[200], closed=False,
    upstream=[up("GET", "/headers")], why="a field with an empty value is legal")
vec("two_empty_lines_before_request", b"\r\n\r\n" + get(), expect=[200], closed=False,
    upstream=[up("GET", "/headers")],
    why="RFC 9112 2.2 says ignore at least one empty line: several are skipped, no desync")
vec("empty_method", b" /headers HTTP/1.1\r\n" + H + b"\r\n", **REFUSED, why="no method")
vec("empty_target", b"GET  HTTP/1.1\r\n" + H + b"\r\n", **REFUSED, why="no target")

# ---------------------------------------------------------------- versions, HTTP/1.0, pipelining
vec("version_http12", get(version=b"HTTP/1.2"), expect=[400], closed=True,
    why="an HTTP/1.x the gateway does not speak")
vec("version_http20_prior", get(version=b"HTTP/2.0"), expect=[505], closed=True,
    why="HTTP/2 version in an HTTP/1 request line")
vec("version_lowercase", get(version=b"http/1.1"), **REFUSED, why="lower-case version")
vec("version_http10_no_host", b"GET /headers HTTP/1.0\r\n\r\n", expect=[200], closed=True,
    upstream=[up("GET", "/headers")],
    why="HTTP/1.0 may omit Host; the gateway supplies its own and closes after")
vec("http10_pipelined_after_close", get(version=b"HTTP/1.0") + SMUG, expect=[200],
    closed=True, upstream=[up("GET", "/headers")],
    why="HTTP/1.0 without keep-alive: the bytes after it must not become a request")
vec("http10_post_without_length", post(b"", b"", version=b"HTTP/1.0"), expect=[200],
    closed=True, upstream=[up("POST", "/sha256", b"")],
    why="a request body is never close-delimited: no length means no body")
vec("pipeline_two_gets", get() + get(target=b"/headers?second"), expect=[200, 200],
    closed=False, upstream=[up("GET", "/headers"), up("GET", "/headers?second")],
    why="two pipelined requests, answered in order")
vec("pipeline_post_then_get", post(b"Content-Length: 5\r\n", b"hello") + get(),
    expect=[200, 200], closed=False,
    upstream=[up("POST", "/sha256", b"hello"), up("GET", "/headers")],
    why="a body followed at once by the next request")
vec("pipeline_chunked_then_get", post(CH, b"5\r\nhello\r\n0\r\n\r\n") + get(),
    expect=[200, 200], closed=False,
    upstream=[up("POST", "/sha256", b"hello"), up("GET", "/headers")],
    why="the request after a chunked body starts after its last CRLF")
vec("pipeline_body_looks_like_request", post(b"Content-Length: 43\r\n", SMUG[:43]),
    expect=[200], closed=False, upstream=[up("POST", "/sha256", SMUG[:43])],
    why="request-like bytes inside a body stay body")
vec("pipeline_get_then_smuggle", get() + post(b"Content-Length: 4\r\n" + TE, b"0\r\n\r\n"),
    expect=[200, 400], closed=True, upstream=[up("GET", "/headers")],
    why="a good request, then CL.TE on the same connection: only the first passes")
vec("pipeline_after_connection_close", get(b"Connection: close\r\n") + SMUG, expect=[200],
    closed=True, upstream=[up("GET", "/headers")],
    why="nothing after Connection: close is read as a request")
vec("get_with_body", b"GET /headers HTTP/1.1\r\n" + H + b"Content-Length: 43\r\n\r\n" +
    SMUG[:43], expect=[200], closed=False, upstream=[up("GET", "/headers")],
    why="a GET with a body: the body is framed, never read as the next request")

# ---------------------------------------------------------------- Upgrade without 101
WSH = (b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
BADSMUG = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\nHost: evil.test\r\n\r\n"
vec("upgrade_refused_then_smuggle", get(WSH, target=b"/ws-refuse") + BADSMUG,
    expect=[200], closed=True, upstream=[up("GET", "/ws-refuse")],
    why="upstream answers 200 to an Upgrade: the gateway answers and closes; the bytes "
        "after it are never tunnelled raw nor read as a request")
vec("upgrade_404_then_smuggle", get(WSH, target=b"/status/404") + BADSMUG,
    expect=[404], closed=True, upstream=[up("GET", "/status/404")],
    why="same with a 404 to the Upgrade")
vec("upgrade_h2c", get(b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n"),
    expect=[200], closed=True, upstream=[up("GET", "/headers")],
    absent=["upgrade", "http2-settings"],
    why="h2c upgrade must not be passed on (h2c smuggling through proxies); answered, "
        "then closed: after an Upgrade the parser reads no more HTTP on it")
vec("upgrade_without_connection_upgrade",
    get(b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n", target=b"/ws-refuse") + get(),
    expect=[200, 200], closed=False, upstream=[up("GET", "/ws-refuse"), up("GET", "/headers")],
    why="Upgrade without Connection: upgrade is no upgrade")
vec("upgrade_post_with_body", post(WSH + b"Content-Length: 5\r\n", b"hello") + get(),
    expect=[200], closed=True, upstream=[up("POST", "/sha256", b"hello")],
    why="Upgrade on a POST the upstream answers normally: answered, then closed at once "
        "(as for a GET with Upgrade), the pipelined GET never read")

# ---------------------------------------------------------------- Expect
vec("expect_100_body_at_once", post(b"Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello"),
    expect=[100, 200], closed=False, upstream=[up("POST", "/sha256", b"hello")],
    why="client sends the body without waiting: no desync either way")
e100 = post(b"Expect: 100-continue\r\nContent-Length: 5\r\n")
vec("expect_100_wait", e100 + b"hello", split=len(e100), expect=[100, 200], closed=False,
    upstream=[up("POST", "/sha256", b"hello")],
    why="client waits for 100 Continue before sending the body")
vec("expect_unknown", post(b"Expect: 200-ok\r\nContent-Length: 5\r\n", b"hello"),
    expect=[417], closed=True, why="unknown expectation (RFC 9110 10.1.1)")
vec("expect_100_then_smuggle", post(b"Expect: 100-continue\r\nContent-Length: 4\r\n" + TE,
                                    b"0\r\n\r\n"), **REFUSED,
    why="CL.TE behind an Expect")
vec("expect_100_get_no_body", get(b"Expect: 100-continue\r\n"), expect=[200], closed=False,
    upstream=[up("GET", "/headers")], why="Expect on a body-less request")

# ---------------------------------------------------------------- response side (issue 12)
# The vector asks the recording upstream for a hostile answer (/hostile/KIND,
# tests/integration/upstream.py), which then keeps reading its connection: a
# desync shows as a wrong status for the pipelined /status/404, as bytes after
# the answers, or as a request the upstream should never have seen.
NEXT404 = get(target=b"/status/404")


def hostile(kind):
    return b"/hostile/" + kind.encode()


for kind in ("204-cl", "204-chunked", "304-cl", "304-chunked"):
    vec("resp_%s_then_next" % kind.replace("-", "_"), get(target=hostile(kind)) + NEXT404,
        expect=[int(kind[:3]), 404], closed=False,
        upstream=[up("GET", "/hostile/" + kind), up("GET", "/status/404")],
        why="a %s answer carrying a forged response as its body: the bytes are dropped "
            "with the upstream connection, the next request gets its own answer" % kind[:3])
vec("resp_304_cl_nobody_then_next", get(target=hostile("304-cl-nobody")) + NEXT404,
    expect=[304, 404], closed=False,
    upstream=[up("GET", "/hostile/304-cl-nobody"), up("GET", "/status/404")],
    why="a conformant 304 with the representation's Content-Length and no body ends at its "
        "head: the keep-alive connection does not wait for bytes that never come")
for kind in ("100-cl", "103-chunked", "100-flood"):
    vec("resp_%s" % kind.replace("-", "_"), get(target=hostile(kind)) + NEXT404,
        expect=[502], closed=True, upstream=[up("GET", "/hostile/" + kind)],
        why="an interim answer that announces a body, or more than 8 of them: 502, closed")
WS_NOKEY = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
for name, hdrs, kind in (("resp_101_wrong_accept", WSH, "101-wrong-accept"),
                         ("resp_101_no_accept", WSH, "101-no-accept"),
                         ("resp_101_h2c", WSH, "101-h2c"),
                         ("resp_101_no_key_in_request", WS_NOKEY, "101-full"),
                         ("resp_101_to_plain_get", b"", "101-full")):
    vec(name, get(hdrs, target=hostile(kind)) + BADSMUG, expect=[502], closed=True,
        upstream=[up("GET", "/hostile/" + kind)],
        why="a 101 that does not complete the WebSocket handshake opens no tunnel: 502, and "
            "the request sent after it never reaches the upstream")


def main():
    vdir = os.path.join(HERE, "vectors")
    os.makedirs(vdir, exist_ok=True)
    for f in os.listdir(vdir):
        if f.endswith(".raw"):
            os.unlink(os.path.join(vdir, f))
    names = set()
    out = []
    for v in V:
        assert v["name"] not in names, v["name"]
        names.add(v["name"])
        fn = "vectors/%s.raw" % v["name"]
        with open(os.path.join(HERE, fn), "wb") as f:
            f.write(v["raw"])
        e = {"name": v["name"], "file": fn, "expect": v["expect"], "closed": v["closed"],
             "upstream": v["upstream"], "why": v["why"]}
        if v["split"] is not None:
            e["split"] = v["split"]
        if v["absent"]:
            e["absent"] = v["absent"]
        if v["partial"]:
            e["partial"] = True
        if v["known_bug"]:
            e["known_bug"] = v["known_bug"]
        out.append(e)
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(e, sort_keys=True) for e in out) + "\n]\n")
    print("wrote %d vectors" % len(out))


if __name__ == "__main__":
    main()
