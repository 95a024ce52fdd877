/* fuzz_http_response.c -- libFuzzer target: the relay's response parser
 * (llhttp + msg.c's bounded header store) over arbitrary upstream bytes,
 * fed in two pieces at a fuzzed split, answer after answer as on a pooled
 * connection. The head hook looks every header up as the relay does. */
#include <stddef.h>
#include <stdint.h>

#include "gateway/gw_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
head(void *owner)
{
	struct gw_respparse *rs = owner;
	const struct gw_msg *m = &rs->resp;
	const char *v = NULL;
	size_t vn = 0;
	unsigned n;

	for (unsigned i = 0; i < m->nhdrs; i++)
		(void)gw_msg_value(m, &m->hdrs[i], &v);
	(void)gw_msg_get(m, "transfer-encoding", &n, &v, &vn);
	/* HEAD-like answers end with their head, as 204/304 do */
	return rs->parser.status_code == 204 || rs->parser.status_code == 304;
}

static void
body(void *owner, const char *p, size_t n)
{
	(void)owner;
	(void)p;
	(void)n;
}

static const struct gw_respparse_hooks hooks = { .head = head, .body = body };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_respparse rs = { 0 };
	const char *p = (const char *)data;
	size_t split = size ? data[0] % (size + 1) : 0, off = 0;

	gw_respparse_init(&rs, &hooks, &rs);
	for (int guard = 0; guard < 1000 && off < size; guard++) {
		size_t end = off < split ? split : size, used;
		llhttp_errno_t e = gw_respparse_feed(&rs, p + off, end - off, &used);
		off += used;
		if (e != HPE_OK && e != HPE_PAUSED)
			break;
		if (e == HPE_PAUSED) {
			llhttp_resume(&rs.parser);
			if (rs.msg_done)
				gw_respparse_init(&rs, &hooks, &rs);
		} else if (off < split)
			continue;
		if (used == 0 && e == HPE_OK)
			break;
	}
	gw_respparse_free(&rs);
	return 0;
}
