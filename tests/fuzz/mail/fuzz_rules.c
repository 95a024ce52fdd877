/* fuzz_rules.c -- libFuzzer target: the scrub rules file parser. Any text
 * either loads or yields a FILE:LINE:COL error; never a crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct mail_rules *r;

	if (size > 64 * 1024)
		return 0;
	r = mail_rules_parse((const char *)data, size, "f", NULL, err,
	    sizeof(err));
	if (r == NULL && strncmp(err, "f:", 2) != 0 &&
	    strcmp(err, "out of memory") != 0)
		abort();
	mail_rules_free(r);
	return 0;
}
