/* fuzz_csv.c -- libFuzzer target: the `user import` CSV reader (libcsv and
 * the record bounds and line numbers around it). */
#include <stdlib.h>
#include <string.h>

#include "auth/auth_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touches every byte handed over, so ASan sees any read past a field. */
static void
record(void *arg, unsigned line, char **f, size_t nf, const char *err)
{
	size_t *sum = arg;

	if (line == 0)
		abort();	/* every record starts on a line */
	for (size_t i = 0; i < nf && i < AUTH_CSV_FIELDS; i++)
		*sum += strlen(f[i]);
	if (err != NULL)
		*sum += strlen(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why;
	unsigned bad;
	size_t sum = 0;

	if (auth_csv_rows((const char *)data, size, record, &sum, &bad, &why) < 0 &&
	    (why == NULL || bad == 0))
		abort();	/* a failure always says where and why */
	return 0;
}
