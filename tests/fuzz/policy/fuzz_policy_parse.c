/* fuzz_policy_parse.c -- libFuzzer target: the input is a policy file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"

static char path[64];

static void
ignore(void *arg, bool warning, const char *msg)
{
	(void)arg;
	(void)warning;
	/* every diagnostic is one bounded line */
	if (strlen(msg) > 2000 || strchr(msg, '\n') != NULL)
		abort();
}

/* desktop-app rules read the User-Agent: one naming both OSes, a listed
 * and an unreadable build */
static const char *
header(void *arg, const char *name)
{
	(void)arg;
	return strcmp(name, "user-agent") == 0 ? "Mozilla/5.0 (Windows NT "
	    "10.0; Macintosh) 3CXDesktopApp/18.12.416 3CXDesktopApp/1..x" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol_policy *p;
	struct pol_verdict v;
	struct pol_request r = { .path = "/management/", .method = "GET",
	    .header = header };
	struct pol_client ci;
	FILE *f;

	/* Keep the target inside its own files: no /proc, /sys or /dev
	 * (huge or endless files are the loader's limits, not news). */
	if (memmem(data, size, "proc", 4) || memmem(data, size, "sys", 3) ||
	    memmem(data, size, "dev", 3))
		return 0;
	if (path[0] == '\0') {
		int fd;

		snprintf(path, sizeof path, "/tmp/fuzz-policy-XXXXXX");
		if ((fd = mkstemp(path)) == -1)
			abort();
		close(fd);
	}
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	p = pol_load(path, NULL, ignore, NULL);
	if (p != NULL) {
		pol_decide(p, &r, &v);
		if ((unsigned)v.action > POL_DENY || (v.page != POL_PAGE_NONE &&
		    v.action != POL_DENY))
			abort();
		if (pol_client_scan(p, header(NULL, "user-agent"), &ci) &&
		    (!ci.app || !ci.bad_version))
			abort();
		pol_free(p);
	}
	return 0;
}
