/* fuzz_reqid.c -- libFuzzer target: the request id check (relay_reqid.c)
 * over arbitrary bytes, as a trusted proxy's X-Request-Id value reaches it:
 * not NUL-terminated, any length. Checks what the callers rely on when they
 * copy an accepted id into a header, a log field and an HTML page as is: at
 * most GW_REQID_MAX bytes, none of them a byte that would need escaping. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
needs_escape(unsigned char ch)
{
	return ch <= 0x20 || ch >= 0x7f || strchr("\"\\<>&'/:;,=%+", ch) != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: a read past `size` is an ASan report. */
	char *v = malloc(size > 0 ? size : 1);

	if (v == NULL)
		return 0;
	if (size > 0)
		memcpy(v, data, size);
	if (gw_reqid_valid(v, size)) {
		if (size == 0 || size > GW_REQID_MAX)
			abort();
		for (size_t i = 0; i < size; i++)
			if (needs_escape((unsigned char)v[i]))
				abort();
	}
	free(v);
	return 0;
}
