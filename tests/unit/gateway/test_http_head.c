/* test_http_head.c -- the request parser the relay runs, one hostile head
 * per case with the exact status it must get (0 = accepted). */
#include <criterion/criterion.h>
#include <string.h>

#include "gateway/gw_priv.h"

static struct gw_limits lim = {
	.request_line = 8192, .header_size = 8192, .header_total = 32768,
	.headers = 100, .body = 1024 * 1024,
};

/* Feeds `raw` in pieces of `step` bytes (0 = whole) and returns the status
 * the relay would answer: 0 when the head is accepted. `hi` points into
 * the parser's buffers, which are gone on return: only flags stay valid. */
static int
judge(const char *raw, size_t len, size_t step, struct gw_head_info *hi)
{
	struct gw_reqparse rp;
	const char *why;
	size_t off = 0;
	int st = -1;

	gw_reqparse_init(&rp, &lim, NULL, NULL);
	for (int guard = 0; guard < 100000 && off < len; guard++) {
		size_t n = step && len - off > step ? step : len - off, used;
		enum gw_rp_event ev = gw_reqparse_feed(&rp, raw + off, n, &used);
		off += used;
		if (ev == GW_RP_ERROR) {
			st = rp.err_status;
			break;
		}
		if (ev == GW_RP_HEAD) {
			st = gw_head_judge(&rp, hi, &why);
			break;
		}
	}
	gw_reqparse_free(&rp);
	return st;
}

struct vec {
	const char *name;
	const char *raw;
	int status;
};

#define V(n, r, s) { n, r, s }
static const struct vec vecs[] = {
	V("plain GET", "GET /webclient/ HTTP/1.1\r\nHost: pbx\r\n\r\n", 0),
	V("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 0),
	V("CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400),
	V("duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	    "Content-Length: 3\r\n\r\n", 400),
	V("CL with plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400),
	V("CL two numbers", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 3\r\n\r\n", 400),
	V("CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\n", 400),
	V("CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400),
	V("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n", 400),
	V("TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	V("TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
	V("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400),
	V("TE Chunked case", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", 0),
	V("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
	V("obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400),
	V("bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", 400),
	V("bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
	V("bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
	V("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400),
	V("control byte in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400),
	V("DEL in target", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	V("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
	V("double space in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	V("absolute-form other host", "GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	V("absolute-form same host", "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 0),
	V("two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
	V("no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400),
	V("Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
	V("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
	V("CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405),
	V("TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405),
	V("HTTP/2.0 line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
	V("fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	V("asterisk form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	V("starts with //", "GET //evil/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	V("Expect other", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
	    "Expect: 200-ok\r\n\r\n", 417),
	V("body over limit by CL", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 99999999\r\n\r\n", 413),
	V("websocket with body", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\nContent-Length: 5\r\n\r\n", 400),
};

Test(http_head, table)
{
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		struct gw_head_info hi;
		size_t len = strlen(vecs[i].raw);
		/* the NUL case needs its real length */
		if (strcmp(vecs[i].name, "NUL in value") == 0)
			len = sizeof("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n") - 1;
		for (size_t step = 0; step <= 3; step++) {
			int st = judge(vecs[i].raw, len, step, &hi);
			cr_expect_eq(st, vecs[i].status, "%s (step %zu): got %d, want %d",
			    vecs[i].name, step, st, vecs[i].status);
		}
	}
}

Test(http_head, oversize_request_line_is_414)
{
	char buf[10000];
	struct gw_head_info hi;
	int n = snprintf(buf, sizeof(buf), "GET /%0*d HTTP/1.1\r\nHost: a\r\n\r\n", 8200, 0);

	cr_assert_eq(judge(buf, (size_t)n, 0, &hi), 414);
}

Test(http_head, oversize_header_is_431)
{
	char buf[10000];
	struct gw_head_info hi;
	int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: %0*d\r\n\r\n",
	    8200, 0);

	cr_assert_eq(judge(buf, (size_t)n, 0, &hi), 431);
}

Test(http_head, too_many_headers_is_431)
{
	char buf[4096];
	struct gw_head_info hi;
	int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");

	for (int i = 0; i < 101; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "X%d: v\r\n", i);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\n");
	cr_assert_eq(judge(buf, (size_t)n, 0, &hi), 431);
}

Test(http_head, websocket_upgrade_is_recognised)
{
	static const char r[] = "GET /ws/webclient?sessionId=1 HTTP/1.1\r\nHost: a\r\n"
	    "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
	struct gw_head_info hi;

	cr_assert_eq(judge(r, sizeof(r) - 1, 0, &hi), 0);
	cr_assert(hi.upgrade);
}

Test(http_head, absolute_form_becomes_origin_form)
{
	static const char r[] = "GET https://a/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n";
	struct gw_reqparse rp;
	struct gw_head_info hi;
	const char *why;
	size_t used;

	gw_reqparse_init(&rp, &lim, NULL, NULL);
	cr_assert_eq(gw_reqparse_feed(&rp, r, sizeof(r) - 1, &used), GW_RP_HEAD);
	cr_assert_eq(gw_head_judge(&rp, &hi, &why), 0);
	cr_assert_eq(hi.plen, 6);
	cr_assert(memcmp(hi.path, "/x?y=1", 6) == 0);
	gw_reqparse_free(&rp);
}

/* A bad first chunk after a valid head is refused before a byte of it is
 * accepted: the relay forwards a body only as the parser validates it. */
Test(http_head, chunk_size_overflow_is_400)
{
	static const char r[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "\r\nfffffffffffffffffff\r\n";
	struct gw_reqparse rp;
	struct gw_head_info hi;
	const char *why;
	size_t used, off = 0;

	gw_reqparse_init(&rp, &lim, NULL, NULL);
	cr_assert_eq(gw_reqparse_feed(&rp, r, sizeof(r) - 1, &used), GW_RP_HEAD);
	cr_assert_eq(gw_head_judge(&rp, &hi, &why), 0);
	off += used;
	cr_assert_eq(gw_reqparse_feed(&rp, r + off, sizeof(r) - 1 - off, &used),
	    GW_RP_ERROR);
	cr_assert_eq(rp.err_status, 400);
	gw_reqparse_free(&rp);
}

Test(http_head, pipelined_requests_stop_at_each_message)
{
	static const char r[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /b HTTP/1.1\nHost: a\r\n\r\n";
	struct gw_reqparse rp;
	struct gw_head_info hi;
	const char *why;
	size_t used, off = 0;

	gw_reqparse_init(&rp, &lim, NULL, NULL);
	cr_assert_eq(gw_reqparse_feed(&rp, r, sizeof(r) - 1, &used), GW_RP_HEAD);
	off += used;
	cr_assert_eq(gw_head_judge(&rp, &hi, &why), 0);
	cr_assert(gw_reqparse_finish_bodyless(&rp));
	/* the second head has a bare LF: caught although it arrived together */
	cr_assert_eq(gw_reqparse_feed(&rp, r + off, sizeof(r) - 1 - off, &used),
	    GW_RP_ERROR);
	cr_assert_eq(rp.err_status, 400);
	gw_reqparse_free(&rp);
}
