/* fuzz_event_audit.c -- libFuzzer target: the audit-line writer
 * (event_audit.c) with arbitrary bytes as its string values (what a client
 * controls: path, user name, User-Agent, SMTP sender). The line always
 * loads as one JSON object (so it is valid UTF-8) and ends with its only
 * newline; a value that was valid UTF-8 within the bound reads back
 * byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ev_audit *ev, *it;
	json_t *j, *orig;
	json_error_t err;
	size_t n, half = size / 2;
	char *line;

	if (size > 3 * EV_AUDIT_STR_MAX)
		return 0;
	ev = ev_audit_new("policy", "deny", "failure");
	ev_audit_strn(ev, "url.path", (const char *)data, size);
	it = ev_audit_item(ev, "list");
	ev_audit_strn(it, "a", (const char *)data, half);
	ev_audit_strn(it, "b", (const char *)data + half, size - half);
	if ((line = ev_audit_line(ev, &n)) == NULL)
		abort();
	if (n == 0 || line[n - 1] != '\n' || memchr(line, '\n', n - 1) != NULL)
		abort();
	if ((j = json_loadb(line, n, JSON_ALLOW_NUL, &err)) == NULL)
		abort();	/* not JSON, or not UTF-8 */
	orig = size <= EV_AUDIT_STR_MAX ? json_stringn((const char *)data,
	    size) : NULL;	/* NULL: not UTF-8 */
	if (orig != NULL && !json_equal(orig, json_object_get(j, "url.path")))
		abort();
	json_decref(orig);
	json_decref(j);
	free(line);
	return 0;
}
