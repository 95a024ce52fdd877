/* fuzz_policy_addr.c -- libFuzzer target: pol_addr_parse and pol_cidr_parse, and the properties of what they accept. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An accepted address prints to text that parses back to the same value. */
static void
check_addr(const char *s, size_t n)
{
	struct pol_addr a, b;
	char text[POL_ADDR_STRLEN];

	if (pol_addr_parse(s, n, &a) == -1)
		return;
	pol_addr_format(&a, text, sizeof text);
	if (pol_addr_parse(text, strlen(text), &b) == -1 || a.hi != b.hi ||
	    a.lo != b.lo)
		abort();
}

/* An accepted CIDR contains its own network and nothing outside it. */
static void
check_cidr(const char *s)
{
	struct pol_cidr c, again;
	char err[256], text[POL_ADDR_STRLEN + 8];
	char net[POL_ADDR_STRLEN];

	if (pol_cidr_parse(s, &c, err, sizeof err) == -1) {
		if (err[0] == '\0' || strlen(err) >= sizeof err)
			abort();
		return;
	}
	if (c.len > 128 || !pol_cidr_contains(&c, &c.net))
		abort();
	pol_addr_format(&c.net, net, sizeof net);
	snprintf(text, sizeof text, "%s/%u", net,
	    pol_addr_is_v4(&c.net) && c.len >= 96 ? c.len - 96 : c.len);
	if (pol_addr_is_v4(&c.net) && c.len < 96)
		return;	/* a v6 prefix above the mapped block: no v4 text */
	if (pol_cidr_parse(text, &again, err, sizeof err) == -1 ||
	    again.len != c.len || again.net.hi != c.net.hi ||
	    again.net.lo != c.net.lo)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[128];

	check_addr((const char *)data, size);
	if (size >= sizeof s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_cidr(s);
	return 0;
}
