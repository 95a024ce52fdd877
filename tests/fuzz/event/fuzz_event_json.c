/* fuzz_event_json.c -- libFuzzer target: the log-line escaper (event_json.c)
 * over arbitrary bytes, checked against jansson as an independent reader:
 * the escaped text always loads as a JSON string (so it is valid UTF-8), and
 * when the input was valid UTF-8 it reads back byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[4096 * 6 + 1], doc[sizeof(out) + 4];
	json_t *j, *orig;
	json_error_t err;

	if (size > 4096)
		return 0;
	size_t n = ev_json_escape(out, sizeof(out), (const char *)data, size);
	if (n >= sizeof(out) || out[n] != '\0')
		abort();
	doc[0] = '[';
	doc[1] = '"';
	memcpy(doc + 2, out, n);
	memcpy(doc + 2 + n, "\"]", 3);
	j = json_loads(doc, JSON_ALLOW_NUL, &err);
	if (j == NULL)
		abort();	/* not JSON, or not UTF-8 */
	orig = json_stringn((const char *)data, size);	/* NULL: not UTF-8 */
	if (orig != NULL && !json_equal(orig, json_array_get(j, 0)))
		abort();
	json_decref(orig);
	json_decref(j);
	return 0;
}
