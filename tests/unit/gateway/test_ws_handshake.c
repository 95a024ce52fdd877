/* test_ws_handshake.c -- the check that lets a 101 become a tunnel
 * (gateway/ws_handshake.c): RFC 6455's own example, then one wrong piece
 * per case with the reason it must give. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

#define KEY    "dGhlIHNhbXBsZSBub25jZQ=="	/* RFC 6455 1.3 */
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* A message head from "Name: value" lines separated by '\n'. */
static void
build(struct gw_msg *m, const char *lines)
{
	const char *p = lines;

	memset(m, 0, sizeof(*m));
	m->hdrs_cap = 16;
	m->hdrs = calloc(m->hdrs_cap, sizeof(*m->hdrs));
	cr_assert_not_null(m->hdrs);
	while (*p != '\0') {
		const char *colon = strchr(p, ':'), *end = strchr(p, '\n');
		struct gw_hdr *h = &m->hdrs[m->nhdrs++];

		if (end == NULL)
			end = p + strlen(p);
		cr_assert(m->nhdrs <= m->hdrs_cap && colon != NULL && colon < end);
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		h->name = (uint32_t)m->len;
		h->name_len = (uint32_t)(colon - p);
		cr_assert_eq(gw_msg_append(m, p, h->name_len, 4096), 0);
		h->value = (uint32_t)m->len;
		h->value_len = (uint32_t)(end - v);
		cr_assert_eq(gw_msg_append(m, v, h->value_len, 4096), 0);
		p = *end ? end + 1 : end;
	}
}

static const char *
check(const char *req, const char *resp)
{
	struct gw_msg q, r;
	const char *why;

	build(&q, req);
	build(&r, resp);
	why = gw_ws_handshake_check(&q, &r);
	gw_msg_free(&q);
	gw_msg_free(&r);
	return why;
}

#define REQ  "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: " KEY
#define RESP "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: " ACCEPT

Test(ws_handshake, rfc6455_example_passes)
{
	cr_assert_null(check(REQ, RESP));
	cr_assert_null(check(REQ, "upgrade: WebSocket\nconnection: keep-alive, upgrade\n"
	    "sec-websocket-accept: " ACCEPT "  "));
	cr_assert(gw_ws_accept_matches(KEY, 24, ACCEPT, 28));
}

Test(ws_handshake, one_wrong_piece_each)
{
	static const struct { const char *req, *resp, *why; } cases[] = {
		{ "Upgrade: websocket", RESP,
		  "101 to a request without one Sec-WebSocket-Key" },
		{ REQ "\nSec-WebSocket-Key: " KEY, RESP,
		  "101 to a request without one Sec-WebSocket-Key" },
		{ "Sec-WebSocket-Key: short==", RESP,
		  "101 to a request with an invalid Sec-WebSocket-Key" },
		{ REQ, "Connection: Upgrade\nSec-WebSocket-Accept: " ACCEPT,
		  "101 without one Upgrade header" },
		{ REQ, RESP "\nUpgrade: websocket", "101 without one Upgrade header" },
		{ REQ, "Upgrade: h2c\nConnection: Upgrade\nSec-WebSocket-Accept: " ACCEPT,
		  "101 to a protocol other than websocket" },
		{ REQ, "Upgrade: websocket, h2c\nConnection: Upgrade\n"
		  "Sec-WebSocket-Accept: " ACCEPT, "101 to a protocol other than websocket" },
		{ REQ, "Upgrade: websocket\nSec-WebSocket-Accept: " ACCEPT,
		  "101 without Connection: upgrade" },
		{ REQ, "Upgrade: websocket\nConnection: keep-alive\n"
		  "Sec-WebSocket-Accept: " ACCEPT, "101 without Connection: upgrade" },
		{ REQ, "Upgrade: websocket\nConnection: Upgrade",
		  "101 without one Sec-WebSocket-Accept" },
		{ REQ, RESP "\nSec-WebSocket-Accept: " ACCEPT,
		  "101 without one Sec-WebSocket-Accept" },
		{ REQ, "Upgrade: websocket\nConnection: Upgrade\n"
		  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOO=",
		  "101 with a Sec-WebSocket-Accept that does not match the key" },
		{ REQ, "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: ",
		  "101 with a Sec-WebSocket-Accept that does not match the key" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = check(cases[i].req, cases[i].resp);
		cr_expect(why != NULL && strcmp(why, cases[i].why) == 0,
		    "case %zu: got \"%s\", want \"%s\"", i, why ? why : "(passed)",
		    cases[i].why);
	}
}

Test(ws_handshake, keys)
{
	static const struct { const char *key; bool ok; } cases[] = {
		{ KEY, true },
		{ "AAAAAAAAAAAAAAAAAAAAAA==", true },
		{ "dGhlIHNhbXBsZSBub25jZR==", false },	/* not canonical */
		{ "dGhlIHNhbXBsZSBub25jZQ=", false },
		{ "dGhlIHNhbXBsZSBub25jZQ===", false },
		{ "dGhlIHNhbXBsZSBub25jZQAA", false },
		{ "dGhlIHNhbXBsZSBub25j*Q==", false },
		{ "dGhlIHNhbXBsZSBub25jZQ", false },
		{ "", false },
		{ "dGhlIHNhbXBsZSBub25jZ Q=", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(gw_ws_key_valid(cases[i].key, strlen(cases[i].key)),
		    cases[i].ok, "key \"%s\"", cases[i].key);
	cr_assert_not(gw_ws_accept_matches("short==", 7, ACCEPT, 28));
}
