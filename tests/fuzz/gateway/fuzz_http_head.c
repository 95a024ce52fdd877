/* fuzz_http_head.c -- libFuzzer target: the relay's request parser and
 * head judge over arbitrary bytes, fed in two pieces at a fuzzed split. */
#include <stddef.h>
#include <stdint.h>

#include "gateway/gw_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
body(void *owner, const char *p, size_t n)
{
	(void)owner;
	(void)p;
	(void)n;
}

static const struct gw_reqparse_hooks hooks = { .body = body };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct gw_limits lim = {
		.request_line = 512, .header_size = 512, .header_total = 4096,
		.headers = 32, .body = 65536,
	};
	struct gw_reqparse rp;
	struct gw_head_info hi;
	const char *why, *p = (const char *)data;
	size_t split = size ? data[0] % (size + 1) : 0, off = 0;

	gw_reqparse_init(&rp, &lim, &hooks, NULL);
	for (int guard = 0; guard < 1000 && off < size; guard++) {
		size_t end = off < split ? split : size, used;
		enum gw_rp_event ev = gw_reqparse_feed(&rp, p + off, end - off, &used);
		off += used;
		if (ev == GW_RP_ERROR)
			break;
		if (ev == GW_RP_HEAD) {
			if (gw_head_judge(&rp, &hi, &why) != 0)
				break;
			if (!hi.upgrade)
				gw_reqparse_finish_bodyless(&rp);
			else
				break;
		}
		if (used == 0 && ev == GW_RP_MORE)
			break;
	}
	gw_reqparse_free(&rp);
	return 0;
}
