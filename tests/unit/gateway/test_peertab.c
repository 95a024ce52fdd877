/* test_peertab.c -- connections per client address: the key each address
 * is counted under (IPv6 per /64, IPv4-mapped IPv6 as IPv4, as login
 * regulation keys them) and the two caps (unproven, all). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "gateway/gw_priv.h"

static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		cr_assert_fail("bad test address %s", s);
	return ss;
}

static bool
same_key(const char *a, const char *b)
{
	struct sockaddr_storage x = addr(a), y = addr(b);
	struct pol_addr kx, ky;

	gw_peertab_key((struct sockaddr *)&x, &kx);
	gw_peertab_key((struct sockaddr *)&y, &ky);
	return kx.hi == ky.hi && kx.lo == ky.lo;
}

/* one line per edge: (a, b, counted as one address?) */
static const struct {
	const char *a, *b;
	bool same;
} keys[] = {
	{ "2001:db8:1:2::1", "2001:db8:1:2::2", true },
	{ "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true },
	{ "2001:db8:1:2::1", "2001:db8:1:3::1", false },
	{ "2001:db8:1:2::1", "2001:db8:1:2:8000::1", true },
	{ "192.0.2.1", "::ffff:192.0.2.1", true },
	{ "192.0.2.1", "::ffff:192.0.2.2", false },
	{ "192.0.2.1", "192.0.2.2", false },
	{ "::ffff:192.0.2.1", "::ffff:192.0.2.2", false },
	{ "192.0.2.1", "::192.0.2.1", false },
	{ "::1", "::2", true },
	{ "::ffff:0.0.0.0", "::", false },
};

Test(peertab, keys)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		cr_expect_eq(same_key(keys[i].a, keys[i].b), keys[i].same,
		    "%s vs %s: expected %s", keys[i].a, keys[i].b,
		    keys[i].same ? "one address" : "two addresses");
}

static bool
enter(struct gw_peertab *t, const char *s, unsigned unproven, unsigned all)
{
	struct sockaddr_storage ss = addr(s);

	return gw_peertab_enter(t, (struct sockaddr *)&ss, unproven, all, NULL);
}

static void
proven(struct gw_peertab *t, const char *s)
{
	struct sockaddr_storage ss = addr(s);

	gw_peertab_proven(t, (struct sockaddr *)&ss);
}

static void
leave(struct gw_peertab *t, const char *s, bool was_proven)
{
	struct sockaddr_storage ss = addr(s);

	gw_peertab_leave(t, (struct sockaddr *)&ss, was_proven);
}

Test(peertab, one_v6_slash64_shares_the_cap)
{
	struct gw_peertab *t = gw_peertab_new();

	cr_assert(enter(t, "2001:db8:1:2::1", 2, 100));
	cr_assert(enter(t, "2001:db8:1:2::2", 2, 100));
	cr_assert_not(enter(t, "2001:db8:1:2::3", 2, 100));
	cr_assert_not(enter(t, "2001:db8:1:2:dead:beef:0:1", 2, 100));
	cr_assert(enter(t, "2001:db8:1:3::1", 2, 100));	/* next /64 */
	gw_peertab_free(t);
}

Test(peertab, mapped_v4_is_v4)
{
	struct gw_peertab *t = gw_peertab_new();

	cr_assert(enter(t, "192.0.2.1", 1, 100));
	cr_assert_not(enter(t, "::ffff:192.0.2.1", 1, 100));
	leave(t, "::ffff:192.0.2.1", false);	/* the same entry */
	cr_assert(enter(t, "::ffff:192.0.2.1", 1, 100));
	gw_peertab_free(t);
}

Test(peertab, proven_connections_leave_the_unproven_cap)
{
	struct gw_peertab *t = gw_peertab_new();

	for (int i = 0; i < 10; i++) {
		cr_assert(enter(t, "198.51.100.7", 2, 10), "connection %d", i);
		proven(t, "198.51.100.7");
	}
	/* ten established: the ceiling on all of them holds */
	cr_assert_not(enter(t, "198.51.100.7", 2, 10));
	leave(t, "198.51.100.7", true);
	cr_assert(enter(t, "198.51.100.7", 2, 10));
	gw_peertab_free(t);
}

Test(peertab, unproven_cap_under_the_ceiling)
{
	struct gw_peertab *t = gw_peertab_new();

	cr_assert(enter(t, "198.51.100.7", 2, 10));
	cr_assert(enter(t, "198.51.100.7", 2, 10));
	cr_assert_not(enter(t, "198.51.100.7", 2, 10));
	proven(t, "198.51.100.7");
	cr_assert(enter(t, "198.51.100.7", 2, 10));
	leave(t, "198.51.100.7", false);
	cr_assert(enter(t, "198.51.100.7", 2, 10));
	cr_assert_not(enter(t, "198.51.100.7", 2, 10));
	gw_peertab_free(t);
}

Test(peertab, leave_of_an_unknown_address_is_ignored)
{
	struct gw_peertab *t = gw_peertab_new();

	leave(t, "203.0.113.1", false);
	cr_assert(enter(t, "203.0.113.1", 1, 1));
	cr_assert_not(enter(t, "203.0.113.1", 1, 1));
	leave(t, "203.0.113.1", false);
	leave(t, "203.0.113.1", false);	/* unknown now: ignored */
	cr_assert(enter(t, "203.0.113.1", 1, 1));
	gw_peertab_free(t);
}
