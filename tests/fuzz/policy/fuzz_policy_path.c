/* fuzz_policy_path.c -- libFuzzer target: pol_normalise_path and the properties of its output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
allowed(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != 0 && strchr("-._~!$&'()*+,=:@/%", c));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[3 * POL_PATH_MAX + 1], again[3 * POL_PATH_MAX + 1];
	char err[256];
	size_t n;

	if (pol_normalise_path((const char *)data, size, out, sizeof out, err,
	    sizeof err) == -1)
		return 0;
	n = strlen(out);
	/* starts with '/', only the re-encoded alphabet, no ';' */
	if (out[0] != '/')
		abort();
	for (size_t i = 0; i < n; i++)
		if (!allowed((unsigned char)out[i]))
			abort();
	/* no empty, "." or ".." segment survives */
	if (strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../"))
		abort();
	if ((n >= 2 && strcmp(out + n - 2, "/.") == 0) ||
	    (n >= 3 && strcmp(out + n - 3, "/..") == 0))
		abort();
	/* the upstream gets a fixed point: normalising again changes nothing */
	if (pol_normalise_path(out, n, again, sizeof again, err, sizeof err) == -1 ||
	    strcmp(out, again) != 0)
		abort();
	return 0;
}
