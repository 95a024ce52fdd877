/* fuzz_response_guards.c -- libFuzzer target: the response-side checks that
 * read upstream bytes (gateway/ws_handshake.c, gateway/set_cookie.c). The
 * input is split at its first blank line into a request head and a 101
 * head, each "Name: value" lines; the whole input is also a Set-Cookie
 * value, a WebSocket key, and a key/accept pair split at its first '\n'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
build(struct gw_msg *m, struct gw_hdr *hdrs, unsigned cap, const char *p,
    size_t n)
{
	size_t off = 0;

	memset(m, 0, sizeof(*m));
	m->hdrs = hdrs;
	m->hdrs_cap = cap;
	while (off < n && m->nhdrs < cap) {
		const char *line = p + off, *nl = memchr(line, '\n', n - off);
		size_t len = nl ? (size_t)(nl - line) : n - off;
		const char *colon = memchr(line, ':', len);
		struct gw_hdr *h;

		off += len + 1;
		if (colon == NULL)
			continue;
		h = &m->hdrs[m->nhdrs++];
		h->name = (uint32_t)m->len;
		h->name_len = (uint32_t)(colon - line);
		if (gw_msg_append(m, line, h->name_len, 65536) < 0)
			break;
		h->value = (uint32_t)m->len;
		h->value_len = (uint32_t)(len - h->name_len - 1);
		if (gw_msg_append(m, colon + 1, h->value_len, 65536) < 0)
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *blank = memmem(p, size, "\n\n", 2);
	const char *nl = memchr(p, '\n', size);
	size_t qn = blank ? (size_t)(blank - p) : size;
	struct gw_hdr qh[32], rh[32];
	struct gw_msg q, r;

	(void)gw_set_cookie_reserved(p, size);
	(void)gw_ws_key_valid(p, size);
	if (nl != NULL)
		(void)gw_ws_accept_matches(p, (size_t)(nl - p), nl + 1,
		    size - (size_t)(nl - p) - 1);
	build(&q, qh, 32, p, qn);
	build(&r, rh, 32, p + qn, size - qn);
	(void)gw_ws_handshake_check(&q, &r);
	free(q.buf);
	free(r.buf);
	return 0;
}
