/* fuzz_integrity_refs.c -- libFuzzer target: the reference extraction of
 * `pbxgate integrity record` from an entry document (HTML, libgumbo) and
 * a web manifest (JSON, jansson). The first byte picks the reader. Every
 * reference handed over must be non-empty and lie inside the input's
 * parsed strings' bounds; never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
on_ref(void *arg, const char *ref, size_t n, enum gw_ref_kind kind)
{
	unsigned *count = arg;

	if (n == 0 || ref == NULL || kind > GW_REF_WORKER)
		abort();
	(*count)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned count = 0;

	if (size < 1 || size > 512 * 1024)
		return 0;
	if (data[0] & 1)
		(void)gw_refs_webmanifest((const char *)data + 1, size - 1,
		    on_ref, &count);
	else
		(void)gw_refs_html((const char *)data + 1, size - 1, on_ref,
		    &count);
	if (count > 4096 * 4)
		abort();
	return 0;
}
