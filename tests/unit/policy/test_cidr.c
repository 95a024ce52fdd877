/* test_cidr.c -- the radix trie against a brute-force oracle, and set membership (parsing: test_addr.c). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "policy/policy_priv.h"

/* xorshift64*: a fixed seed makes every run test the same sets. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

struct pfx {
	struct pol_addr key;
	unsigned len;
};

static struct pol_addr
mask(struct pol_addr k, unsigned len)
{
	if (len == 0)
		k.hi = k.lo = 0;
	else if (len < 64)
		k.hi &= ~0ULL << (64 - len), k.lo = 0;
	else if (len == 64)
		k.lo = 0;
	else if (len < 128)
		k.lo &= ~0ULL << (128 - len);
	return k;
}

static bool
oracle(const struct pfx *p, size_t n, struct pol_addr a)
{
	for (size_t i = 0; i < n; i++) {
		struct pol_addr m = mask(a, p[i].len);
		if (m.hi == p[i].key.hi && m.lo == p[i].key.lo)
			return true;
	}
	return false;
}

/* Random addresses clustered around a few bases, so that prefixes
 * overlap and nest; IPv4 (mapped) half of the time. */
static struct pol_addr
rnd_key(void)
{
	static const uint64_t bases[] = { 0x20010db800000000ULL,
	    0x20010db8ffff0000ULL, 0xfe80000000000000ULL };
	struct pol_addr k;

	if (rnd() % 2) {
		k.hi = 0;
		k.lo = 0xffff00000000ULL | (uint32_t)((rnd() % 4) << 30 |
		    (rnd() & 0x3fffffff) >> (rnd() % 24));
	} else {
		k.hi = bases[rnd() % 3] | (rnd() & 0xffff);
		k.lo = rnd() >> (rnd() % 64);
	}
	return k;
}

/* Mostly long prefixes, so that a random address is sometimes covered
 * and sometimes not; exact /32 and /128 now and then. */
static unsigned
rnd_len(struct pol_addr k)
{
	bool v4 = k.hi == 0 && (k.lo >> 32) == 0xffff;

	if (rnd() % 100 == 0)
		return 128;
	return v4 ? 96 + 16 + (unsigned)(rnd() % 17) : 60 + (unsigned)(rnd() % 69);
}

/* Second oracle for the big run: a hash set of (prefix, length), probed
 * once per possible length: a different algorithm from the trie. */
#define HBITS 19
#define HMASK ((1u << HBITS) - 1)
static struct pfx htab[1u << HBITS];
static bool hused[1u << HBITS];

static size_t
hslot(struct pol_addr k, unsigned len)
{
	uint64_t h = (k.hi * 0x9e3779b97f4a7c15ULL) ^
	    (k.lo * 0xc2b2ae3d27d4eb4fULL) ^ len;

	return (size_t)((h ^ (h >> 29)) & HMASK);
}

static void
hadd(struct pol_addr k, unsigned len)
{
	size_t i = hslot(k, len);

	while (hused[i] && !(htab[i].len == len && htab[i].key.hi == k.hi &&
	    htab[i].key.lo == k.lo))
		i = (i + 1) & HMASK;
	hused[i] = true;
	htab[i].key = k;
	htab[i].len = len;
}

static bool
horacle(struct pol_addr a)
{
	for (unsigned len = 0; len <= 128; len++) {
		struct pol_addr m = mask(a, len);

		for (size_t i = hslot(m, len); hused[i]; i = (i + 1) & HMASK)
			if (htab[i].len == len && htab[i].key.hi == m.hi &&
			    htab[i].key.lo == m.lo)
				return true;
	}
	return false;
}

#define NPFX 100000
#define NADDR 100000

static void
fill(struct pol_cidrset *s, struct pfx *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		p[i].key = rnd_key();
		p[i].len = rnd_len(p[i].key);
		p[i].key = mask(p[i].key, p[i].len);
		cr_assert_eq(pol_cidrset_add_key(s, &p[i].key, p[i].len), 0);
	}
}

Test(cidr, trie_matches_oracles_100k_prefixes_100k_addresses)
{
	static struct pfx p[NPFX];
	struct pol_cidrset *s = pol_cidrset_new();
	size_t hits = 0;

	struct pol_cidrset *lc = pol_cidrset_new();

	rng_state = 0x9e3779b97f4a7c15u;
	fill(s, p, NPFX);
	for (size_t i = 0; i < NPFX; i++) {
		hadd(p[i].key, p[i].len);
		pol_cidrset_add_key(lc, &p[i].key, p[i].len);
	}
	/* the same set with the level-compressed stride tables */
	cr_assert_eq(pol_cidrset_optimise(lc), 0);
	cr_assert_gt(pol_cidrset_memory(lc), pol_cidrset_memory(s));
	for (size_t j = 0; j < NADDR; j++) {
		struct pol_addr a = j % 3 == 0 ? p[rnd() % NPFX].key : rnd_key();
		bool want;

		if (j % 3 == 0)		/* near a prefix, inside or not */
			a.lo ^= rnd() & 0xff;
		want = horacle(a);
		/* the plain linear oracle double-checks the hash oracle */
		if (j % 50 == 0)
			cr_assert_eq(oracle(p, NPFX, a), want, "oracles disagree");
		hits += want;
		cr_assert_eq(pol_cidrset_contains_key(s, &a), want,
		    "address %zu: trie %d, oracle %d", j, !want, want);
		cr_assert_eq(pol_cidrset_contains_key(lc, &a), want,
		    "address %zu: optimised trie %d, oracle %d", j, !want, want);
	}
	cr_assert(hits > NADDR / 20 && hits < NADDR * 9 / 10,
	    "degenerate test: %zu hits", hits);
	pol_cidrset_free(s);
	pol_cidrset_free(lc);
}

Test(cidr, trie_with_v4_slash0_and_v6_prefixes)
{
	static struct pfx p[5001];
	struct pol_cidrset *s = pol_cidrset_new();
	struct pol_addr all4 = { 0, 0xffff00000000ULL };
	size_t hits = 0;

	rng_state = 12345;
	fill(s, p, 5000);
	p[5000].key = all4;
	p[5000].len = 96;	/* 0.0.0.0/0 */
	pol_cidrset_add_key(s, &all4, 96);
	cr_assert_eq(pol_cidrset_optimise(s), 0);	/* 5001 >= 4096 */
	for (size_t j = 0; j < NADDR / 5; j++) {
		struct pol_addr a = j % 3 == 0 ? p[rnd() % 5000].key : rnd_key();
		bool want = oracle(p, 5001, a);

		hits += want;
		cr_assert_eq(pol_cidrset_contains_key(s, &a), want, "address %zu", j);
	}
	/* an add after optimising drops the tables and stays correct */
	{
		struct pol_addr k = { 0x20010db8ffff0000ULL | 0xabcd, 0 };
		cr_assert_eq(pol_cidrset_add_key(s, &k, 64), 0);
		cr_assert(pol_cidrset_contains_key(s, &k));
	}
	cr_assert(hits > 0 && hits < NADDR / 5);
	pol_cidrset_free(s);
}

static bool
contains(struct pol_cidrset *s, const char *ip)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	if (inet_pton(AF_INET, ip, &in.sin_addr) == 1)
		return pol_cidrset_contains(s, (struct sockaddr *)&in);
	cr_assert_eq(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1, "%s", ip);
	return pol_cidrset_contains(s, (struct sockaddr *)&in6);
}

static const struct {
	const char *set, *ip;
	bool in;
} member[] = {
	{ "10.0.0.0/8", "10.255.1.2", true },
	{ "10.0.0.0/8", "11.0.0.0", false },
	{ "10.0.0.0/8", "::ffff:10.1.2.3", true },	/* mapped peer */
	{ "::ffff:10.0.0.0/104", "10.9.9.9", true },	/* mapped entry */
	{ "0.0.0.0/0", "1.2.3.4", true },
	{ "0.0.0.0/0", "2001:db8::1", false },		/* v4 /0 is v4 only */
	{ "::/0", "2001:db8::1", true },
	{ "::/0", "1.2.3.4", true },			/* documented */
	{ "192.0.2.7", "192.0.2.7", true },		/* bare = /32 */
	{ "192.0.2.7", "192.0.2.8", false },
	{ "192.0.2.7/32", "192.0.2.7", true },
	{ "2001:db8::1/128", "2001:db8::1", true },
	{ "2001:db8::1/128", "2001:db8::2", false },
	{ "2001:db8::/32", "2001:db8:ffff::1", true },
	{ "2001:db8::/32", "2001:db9::", false },
	{ "2001:db8:10::/48", "2001:db8:10:ffff::", true },
	{ "2001:db8:10::/48", "2001:db8:11::", false },
	{ "128.0.0.0/1", "127.255.255.255", false },
	{ "128.0.0.0/1", "128.0.0.0", true },
	{ "::/128", "::", true },
	{ "::/128", "::1", false },
};

Test(cidr, membership_table)
{
	char err[256];

	for (size_t i = 0; i < sizeof member / sizeof member[0]; i++) {
		struct pol_cidrset *s = pol_cidrset_new();

		cr_assert_eq(pol_cidrset_add(s, member[i].set, err, sizeof err),
		    0, "%s: %s", member[i].set, err);
		cr_expect_eq(contains(s, member[i].ip), member[i].in, "%s in %s",
		    member[i].ip, member[i].set);
		pol_cidrset_free(s);
	}
}

Test(cidr, duplicates_counted_once)
{
	struct pol_cidrset *s = pol_cidrset_new();
	char err[64];

	pol_cidrset_add(s, "10.0.0.0/8", err, sizeof err);
	pol_cidrset_add(s, "10.0.0.0/8", err, sizeof err);
	pol_cidrset_add(s, "10.0.0.0/16", err, sizeof err);
	cr_assert_eq(pol_cidrset_count(s), 2);
	pol_cidrset_free(s);
}

Test(cidr, other_family_never_matches)
{
	struct pol_cidrset *s = pol_cidrset_new();
	struct sockaddr sa = { .sa_family = AF_UNIX };
	char err[64];

	pol_cidrset_add(s, "::/0", err, sizeof err);
	cr_assert(!pol_cidrset_contains(s, &sa));
	cr_assert(!pol_cidrset_contains(s, NULL));
	pol_cidrset_free(s);
}
