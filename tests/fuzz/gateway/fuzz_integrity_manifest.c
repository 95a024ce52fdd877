/* fuzz_integrity_manifest.c -- libFuzzer target: the integrity manifest
 * reader. Any bytes either load or yield messages that start with
 * "f:LINE:COL: "; never a crash, a leak, or a loaded entry that the
 * lookup cannot find again. */
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
	struct gw_pins *pins;

	if (size > 256 * 1024)
		return 0;
	if ((pins = gw_pins_new()) == NULL)
		return 0;
	if (gw_pins_parse(pins, "f", (const char *)data, size, check_msg,
	    NULL) == 0)
		for (size_t i = 0; i < gw_pins_count(pins); i++) {
			const struct gw_pin *e = gw_pins_entry(pins, i);
			if (e == NULL || e->path[0] != '/' ||
			    gw_pins_find(pins, e->path) != e)
				abort();
		}
	gw_pins_free(pins);
	return 0;
}
