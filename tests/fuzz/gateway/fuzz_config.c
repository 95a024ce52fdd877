/* fuzz_config.c -- libFuzzer target: any bytes as a config file, parsed
 * without runtime objects; must never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>

#include "gateway/gateway.h"

static void
ignore(void *arg, bool warning, const char *msg)
{
	(void)arg;
	(void)warning;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_config *cfg;

	cfg = gw_config_parse_buffer("fuzz.conf", data, size, ignore, NULL);
	gw_config_unref(cfg);
	return 0;
}
