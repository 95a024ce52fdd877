/* policy_lockdown.c -- a user's own network list, which can only narrow what the policy allows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

struct pol_lockdown {
	struct pol_cidrset *set;
};

static bool
is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
add_entry(struct pol_cidrset *set, const char *tok, char *err, size_t errlen)
{
	char why[256];

	if (pol_cidrset_add(set, tok, why, sizeof why) == -1) {
		snprintf(err, errlen, "lockdown: %s", why);
		return -1;
	}
	return 0;
}

int
pol_lockdown_parse(const char *text, struct pol_lockdown **out, char *err,
    size_t errlen)
{
	struct pol_lockdown *ld = NULL;
	size_t n = 0;
	const char *p = text != NULL ? text : "";

	*out = NULL;
	for (;;) {
		char tok[INET6_ADDRSTRLEN + 8];
		size_t len = 0;

		while (is_sep(*p))
			p++;
		if (*p == '\0')
			break;
		while (p[len] != '\0' && !is_sep(p[len]))
			len++;
		if (len >= sizeof tok) {
			snprintf(err, errlen, "lockdown: entry '%.*s...' is not "
			    "a CIDR", 20, p);
			goto fail;
		}
		if (++n > POL_LOCKDOWN_MAX) {
			snprintf(err, errlen, "lockdown: more than %d entries",
			    POL_LOCKDOWN_MAX);
			goto fail;
		}
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len;
		if (ld == NULL && ((ld = calloc(1, sizeof *ld)) == NULL ||
		    (ld->set = pol_cidrset_new()) == NULL)) {
			snprintf(err, errlen, "lockdown: out of memory");
			goto fail;
		}
		if (add_entry(ld->set, tok, err, errlen) == -1)
			goto fail;
	}
	*out = ld;
	return 0;
fail:
	pol_lockdown_free(ld);
	return -1;
}

void
pol_lockdown_free(struct pol_lockdown *ld)
{
	if (ld == NULL)
		return;
	pol_cidrset_free(ld->set);
	free(ld);
}

bool
pol_lockdown_allows(const struct pol_lockdown *ld, const struct sockaddr *peer)
{
	if (ld == NULL || ld->set == NULL || pol_cidrset_count(ld->set) == 0)
		return true;
	return pol_cidrset_contains(ld->set, peer);
}
