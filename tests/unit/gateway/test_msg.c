/* test_msg.c -- the one header store (msg.c) both parsers use: slot growth,
 * caseless lookup and the bounds, directly and through the request and
 * the response parser (http_head.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

static const struct gw_msg_lim wide = {
	.head = 65536, .line = 8192, .headers = 100,
};

/* One header through the three steps llhttp drives. */
static enum gw_msg_err
add(struct gw_msg *m, const char *name, const char *value,
    const struct gw_msg_lim *lim)
{
	enum gw_msg_err e;

	if ((e = gw_msg_add_name(m, name, strlen(name), lim)) != GW_MSG_OK)
		return e;
	if ((e = gw_msg_end_name(m)) != GW_MSG_OK)
		return e;
	return gw_msg_add_value(m, value, strlen(value), lim);
}

Test(msg, grows_past_the_first_slots)
{
	struct gw_msg m = { 0 };
	char name[32], value[32];
	const char *v;
	size_t vn;

	for (unsigned i = 0; i < 3 * GW_MSG_SLOTS + 1; i++) {
		snprintf(name, sizeof(name), "X-H%u", i);
		snprintf(value, sizeof(value), "v%u", i);
		cr_assert_eq(add(&m, name, value, &wide), GW_MSG_OK);
	}
	cr_assert_eq(m.nhdrs, 3 * GW_MSG_SLOTS + 1);
	cr_assert_geq(m.hdrs_cap, m.nhdrs);
	for (unsigned i = 0; i < m.nhdrs; i++) {
		snprintf(name, sizeof(name), "x-h%u", i);
		snprintf(value, sizeof(value), "v%u", i);
		cr_assert_not_null(gw_msg_get(&m, name, NULL, &v, &vn), "%s", name);
		cr_assert_eq(vn, strlen(value));
		cr_assert_eq(memcmp(v, value, vn), 0);
	}
	gw_msg_free(&m);
}

Test(msg, name_and_value_in_pieces_make_one_header)
{
	struct gw_msg m = { 0 };
	const char *v;
	size_t vn;

	cr_assert_eq(gw_msg_add_name(&m, "Sec-Web", 7, &wide), GW_MSG_OK);
	cr_assert_eq(gw_msg_add_name(&m, "Socket-Key", 10, &wide), GW_MSG_OK);
	cr_assert_eq(gw_msg_end_name(&m), GW_MSG_OK);
	cr_assert_eq(gw_msg_add_value(&m, "abc", 3, &wide), GW_MSG_OK);
	cr_assert_eq(gw_msg_add_value(&m, "def", 3, &wide), GW_MSG_OK);
	cr_assert_eq(m.nhdrs, 1);
	cr_assert_not_null(gw_msg_get(&m, "sec-websocket-key", NULL, &v, &vn));
	cr_assert_eq(vn, 6);
	cr_assert_eq(memcmp(v, "abcdef", 6), 0);
	gw_msg_free(&m);
}

Test(msg, lookup_is_caseless_and_counts)
{
	struct gw_msg m = { 0 };
	const char *v = NULL;
	size_t vn = 0;
	unsigned n;

	cr_assert_eq(add(&m, "CoNtEnT-TyPe", "text/html \t", &wide), GW_MSG_OK);
	cr_assert_eq(add(&m, "X-A", "1", &wide), GW_MSG_OK);
	cr_assert_eq(add(&m, "x-a", "2", &wide), GW_MSG_OK);
	cr_assert_not_null(gw_msg_get(&m, "content-type", &n, &v, &vn));
	cr_assert_eq(n, 1);
	cr_assert_eq(vn, 9, "trailing whitespace is not part of the value");
	cr_assert_eq(memcmp(v, "text/html", 9), 0);
	cr_assert_not_null(gw_msg_find(&m, "CONTENT-TYPE", NULL));
	cr_assert_not_null(gw_msg_get(&m, "x-a", &n, &v, &vn));
	cr_assert_eq(n, 2);
	cr_assert_eq(vn, 1);
	cr_assert_eq(v[0], '1', "the first of several");
	cr_assert_null(gw_msg_find(&m, "content-typ", &n));
	cr_assert_eq(n, 0);
	cr_assert_null(gw_msg_find(&m, "x-ab", NULL));
	gw_msg_free(&m);
}

/* ---- the bounds, one case each ---- */

/* `n` headers "X-i: v" under `lim`, then one more: what the store says. */
static void
bound(struct gw_msg_lim lim, unsigned n, const char *name, const char *value,
    enum gw_msg_err want)
{
	struct gw_msg m = { 0 };
	char nm[32];

	for (unsigned i = 0; i < n; i++) {
		snprintf(nm, sizeof(nm), "X-%u", i);
		cr_assert_eq(add(&m, nm, "v", &lim), GW_MSG_OK, "%s", nm);
	}
	cr_assert_eq(add(&m, name, value, &lim), want);
	cr_assert_leq(m.len, lim.head);
	cr_assert_leq(m.hdrs_cap, GW_MAX_HEADERS_HARD);
	gw_msg_free(&m);
}

#define LIM(h, l, n) ((struct gw_msg_lim){ .head = (h), .line = (l), .headers = (n) })

Test(msg_bounds, count_at_the_limit)
{
	bound(LIM(65536, 8192, 3), 2, "X-Z", "z", GW_MSG_OK);
}

Test(msg_bounds, one_header_too_many)
{
	bound(LIM(65536, 8192, 3), 3, "X-Z", "z", GW_MSG_TOO_MANY);
}

Test(msg_bounds, count_capped_at_the_hard_limit)
{
	bound(LIM(1 << 20, 8192, 5000), GW_MAX_HEADERS_HARD, "X-Z", "z",
	    GW_MSG_TOO_MANY);
}

Test(msg_bounds, line_at_the_limit)
{
	bound(LIM(65536, 12, 100), 0, "X-Name", "123456", GW_MSG_OK);
}

Test(msg_bounds, line_one_byte_too_long)
{
	bound(LIM(65536, 12, 100), 0, "X-Name", "1234567", GW_MSG_LINE);
}

Test(msg_bounds, name_alone_too_long)
{
	bound(LIM(65536, 5, 100), 0, "X-Name", "", GW_MSG_LINE);
}

Test(msg_bounds, head_too_large)
{
	bound(LIM(16, 8192, 100), 4, "X-Z", "z", GW_MSG_HEAD);
}

Test(msg_bounds, space_in_a_name)
{
	bound(LIM(65536, 8192, 100), 0, "X-A ", "z", GW_MSG_NAME);
}

Test(msg_bounds, separator_in_a_name)
{
	bound(LIM(65536, 8192, 100), 0, "X(A)", "z", GW_MSG_NAME);
}

Test(msg, value_before_a_name_is_refused)
{
	struct gw_msg m = { 0 };

	cr_assert_eq(gw_msg_end_name(&m), GW_MSG_NAME);
	cr_assert_eq(gw_msg_add_value(&m, "v", 1, &wide), GW_MSG_NAME);
	gw_msg_free(&m);
}

/* ---- the same store through the request parser ---- */

/* "GET / HTTP/1.1", Host, then `n` headers "X-i: v", each `pad` value
 * bytes long; heap-allocated. */
static char *
head(const char *first, unsigned n, size_t pad, size_t *len)
{
	size_t cap = 256 + (size_t)n * (pad + 32), o = 0;
	char *s = malloc(cap);

	cr_assert_not_null(s);
	o += (size_t)snprintf(s + o, cap - o, "%s\r\n", first);
	if (strncmp(first, "GET", 3) == 0)
		o += (size_t)snprintf(s + o, cap - o, "Host: pbx\r\n");
	for (unsigned i = 0; i < n; i++) {
		o += (size_t)snprintf(s + o, cap - o, "X-Hdr-%u: ", i);
		memset(s + o, 'v', pad);
		o += pad;
		o += (size_t)snprintf(s + o, cap - o, "\r\n");
	}
	o += (size_t)snprintf(s + o, cap - o, "%s",
	    strncmp(first, "GET", 3) == 0 ? "\r\n" : "Content-Length: 0\r\n\r\n");
	*len = o;
	return s;
}

static const struct gw_limits req_lim = {
	.request_line = 8192, .header_size = 128, .header_total = 2048,
	.headers = 60, .body = 1024,
};

/* A GET with Host and `n` headers of `pad` value bytes through the request
 * parser: `status` 0 = head accepted, else the answer and its reason. */
static void
request(unsigned n, size_t pad, int status, const char *reason)
{
	struct gw_reqparse rp;
	size_t len, used;
	char *raw = head("GET / HTTP/1.1", n, pad, &len);
	enum gw_rp_event ev;

	gw_reqparse_init(&rp, &req_lim, NULL, NULL);
	ev = gw_reqparse_feed(&rp, raw, len, &used);
	if (status == 0) {
		cr_assert_eq(ev, GW_RP_HEAD);
		cr_assert_eq(rp.req.nhdrs, n + 1);
		cr_assert_not_null(gw_msg_find(&rp.req, "X-HDR-0", NULL));
		cr_assert_not_null(gw_msg_find(&rp.req, "host", NULL));
	} else {
		cr_assert_eq(ev, GW_RP_ERROR);
		cr_assert_eq(rp.err_status, status);
		cr_assert_str_eq(rp.err_reason, reason);
	}
	gw_reqparse_free(&rp);
	free(raw);
}

Test(msg_request, many_headers_grow_the_slots)
{
	request(3 * GW_MSG_SLOTS, 4, 0, NULL);
}

Test(msg_request, count_at_the_limit)
{
	request(59, 4, 0, NULL);
}

Test(msg_request, one_header_too_many_is_431)
{
	request(60, 4, 431, "too many headers");
}

Test(msg_request, header_line_too_long_is_431)
{
	request(1, 200, 431, "header line too long");
}

Test(msg_request, head_too_large_is_431)
{
	request(30, 100, 431, "request head too large");
}

Test(msg, request_name_with_space_is_400)
{
	static const char r[] = "GET / HTTP/1.1\r\nHost: pbx\r\nX-A : b\r\n\r\n";
	struct gw_reqparse rp;
	size_t used;

	gw_reqparse_init(&rp, &req_lim, NULL, NULL);
	cr_assert_eq(gw_reqparse_feed(&rp, r, sizeof(r) - 1, &used), GW_RP_ERROR);
	cr_assert_eq(rp.err_status, 400);
	cr_assert_str_eq(rp.err_reason, "invalid header name");
	gw_reqparse_free(&rp);
}

/* ---- and through the response parser, under its fixed bounds ---- */

/* A 200 with `n` headers of `pad` value bytes and Content-Length: 0 (one
 * more header) through the response parser: accepted whole, or refused
 * with nothing stored past its bounds. */
static void
response(unsigned n, size_t pad, bool ok)
{
	struct gw_respparse rs = { 0 };
	size_t len, used;
	char *raw = head("HTTP/1.1 200 OK", n, pad, &len);
	llhttp_errno_t e;

	gw_respparse_init(&rs, NULL, NULL);
	e = gw_respparse_feed(&rs, raw, len, &used);
	if (ok) {
		cr_assert_eq(e, HPE_PAUSED, "%s", llhttp_errno_name(e));
		cr_assert(rs.msg_done);
		cr_assert_eq(rs.resp.nhdrs, n + 1);
		cr_assert_not_null(gw_msg_find(&rs.resp, "x-hdr-0", NULL));
		cr_assert_not_null(gw_msg_find(&rs.resp, "CONTENT-LENGTH", NULL));
	} else {
		cr_assert(e != HPE_OK && e != HPE_PAUSED, "%s",
		    llhttp_errno_name(e));
		cr_assert_leq(rs.resp.len, GW_RESP_HEAD_MAX);
	}
	gw_respparse_free(&rs);
	free(raw);
}

Test(msg_response, many_headers_grow_the_slots)
{
	response(3 * GW_MSG_SLOTS, 4, true);
}

Test(msg_response, count_at_the_limit)
{
	response(GW_RESP_HEADERS_MAX - 1, 4, true);
}

Test(msg_response, one_header_too_many_is_refused)
{
	response(GW_RESP_HEADERS_MAX, 4, false);
}

Test(msg_response, line_at_the_limit)
{
	response(1, GW_RESP_LINE_MAX - 7, true);
}

Test(msg_response, line_too_long_is_refused)
{
	response(1, GW_RESP_LINE_MAX - 6, false);
}

Test(msg_response, head_too_large_is_refused)
{
	response(5, GW_RESP_HEAD_MAX / 5, false);
}

Test(msg, response_name_with_space_is_refused)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nX-A : b\r\n"
	    "Content-Length: 0\r\n\r\n";
	struct gw_respparse rs = { 0 };
	size_t used;

	gw_respparse_init(&rs, NULL, NULL);
	cr_assert_eq(gw_respparse_feed(&rs, r, sizeof(r) - 1, &used),
	    HPE_CB_HEADER_FIELD_COMPLETE);
	gw_respparse_free(&rs);
}

/* The store is reset, not freed, between messages on a connection. */
Test(msg, response_store_reused_for_the_next_answer)
{
	static const char r[] = "HTTP/1.1 204 No Content\r\nX-First: 1\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nx-second: 2\r\nContent-Length: 0\r\n\r\n";
	struct gw_respparse rs = { 0 };
	size_t used, off;

	gw_respparse_init(&rs, NULL, NULL);
	cr_assert_eq(gw_respparse_feed(&rs, r, sizeof(r) - 1, &used), HPE_PAUSED);
	cr_assert_not_null(gw_msg_find(&rs.resp, "x-first", NULL));
	off = used;
	gw_respparse_init(&rs, NULL, NULL);
	cr_assert_eq(gw_respparse_feed(&rs, r + off, sizeof(r) - 1 - off, &used),
	    HPE_PAUSED);
	cr_assert_eq(rs.resp.nhdrs, 2);
	cr_assert_null(gw_msg_find(&rs.resp, "x-first", NULL));
	cr_assert_not_null(gw_msg_find(&rs.resp, "X-Second", NULL));
	gw_respparse_free(&rs);
}
