/* fuzz_policy_value.c -- libFuzzer target: the config value grammar. Any
 * input parses or fails with a message; a value that parses prints back
 * to a spelling that parses to the same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum pol_kind kinds[] = {
	POL_KIND_DURATION, POL_KIND_SIZE, POL_KIND_COUNT, POL_KIND_BOOL,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[256], err[256], out[64];
	uint64_t v, again;
	size_t i;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		err[0] = '\0';
		if (pol_value_parse(kinds[i], s, &v, err, sizeof(err)) == -1) {
			if (err[0] == '\0')	/* every refusal says why */
				abort();
			continue;
		}
		if (kinds[i] == POL_KIND_BOOL)
			continue;
		pol_value_format(kinds[i], v, out, sizeof(out));
		if (pol_value_parse(kinds[i], out, &again, err,
		    sizeof(err)) == -1 || again != v)
			abort();
	}
	return 0;
}
