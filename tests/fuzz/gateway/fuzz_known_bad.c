/* fuzz_known_bad.c -- libFuzzer target: the known_bad list parser
 * (sha256sum format). Any bytes either load or yield messages that start
 * with "f:LINE:COL: "; never a crash, a leak or an entry the lookup cannot
 * find again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_msg(void *arg, const char *msg)
{
	(void)arg;
	if (strncmp(msg, "f:", 2) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_knownbad *kb;
	uint8_t sha[GW_SHA256_LEN];

	if (size > 256 * 1024)
		return 0;
	if ((kb = gw_knownbad_new()) == NULL)
		return 0;
	(void)gw_knownbad_parse(kb, "f", (const char *)data, size, check_msg,
	    NULL);
	gw_knownbad_seal(kb);
	memset(sha, 0, sizeof(sha));
	if (size >= GW_SHA256_LEN)
		memcpy(sha, data, GW_SHA256_LEN);
	(void)gw_knownbad_find(kb, sha, NULL, NULL);
	gw_knownbad_free(kb);
	return 0;
}
