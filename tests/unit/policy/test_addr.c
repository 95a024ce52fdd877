/* test_addr.c -- the address vocabulary: CIDR and address parsing, printing, matching. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>
#include <sys/un.h>

#include "policy/policy.h"

/* Criterion copies parameters into the test's own process, where pointers
 * into this one mean nothing: each table is passed by index. */
#define BY_INDEX(name, table)                                                  \
	static size_t idx_##name[sizeof(table) / sizeof((table)[0])];          \
	ParameterizedTestParameters(addr, name)                                \
	{                                                                      \
		size_t n = sizeof(table) / sizeof((table)[0]);                 \
                                                                               \
		for (size_t i = 0; i < n; i++)                                 \
			idx_##name[i] = i;                                     \
		return cr_make_param_array(size_t, idx_##name, n);             \
	}

struct bad_cidr {
	const char *in;
	const char *err;
};

/* One line per class of bad input, each with the exact message. */
static const struct bad_cidr bad[] = {
	{ "", "empty address (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "/8", "bad address '/8' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "example.com", "bad address 'example.com' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "10.0.0", "bad address '10.0.0' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "10.0.0.256", "bad address '10.0.0.256' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "010.0.0.1", "bad address '010.0.0.1' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "0x0a.0.0.1", "bad address '0x0a.0.0.1' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ " 10.0.0.0/8", "bad address ' 10.0.0.0/8' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "10.0.0.0 /8", "bad address '10.0.0.0 /8' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "[2001:db8::]/32", "bad address '[2001:db8::]/32' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "10.0.0.1:80", "bad address '10.0.0.1:80' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "fe80::1%eth0", "bad address 'fe80::1%eth0' (a zone such as %eth0 names no network: drop it)" },
	{ "fe80::%eth0/64", "bad address 'fe80::%eth0/64' (a zone such as %eth0 names no network: drop it)" },
	{ "10.0.0.0/33", "bad prefix length in '10.0.0.0/33' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "2001:db8::/129", "bad prefix length in '2001:db8::/129' (IPv6 takes /0 to /128, no leading zeros)" },
	{ "10.0.0.0/", "bad prefix length in '10.0.0.0/' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "10.0.0.0/-1", "bad prefix length in '10.0.0.0/-1' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "10.0.0.0/+8", "bad prefix length in '10.0.0.0/+8' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "10.0.0.0/08", "bad prefix length in '10.0.0.0/08' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "10.0.0.0/8x", "bad prefix length in '10.0.0.0/8x' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "10.0.0.0/8 ", "bad prefix length in '10.0.0.0/8 ' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "10.0.0.0/8/8", "bad prefix length in '10.0.0.0/8/8' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "10.0.0.0/0008", "bad prefix length in '10.0.0.0/0008' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "10.1.2.3/8", "'10.1.2.3/8' has host bits set: write 10.0.0.0/8 for the network, or 10.1.2.3 alone for the one address" },
	{ "192.0.2.7/24", "'192.0.2.7/24' has host bits set: write 192.0.2.0/24 for the network, or 192.0.2.7 alone for the one address" },
	{ "2001:db8::1/32", "'2001:db8::1/32' has host bits set: write 2001:db8::/32 for the network, or 2001:db8::1 alone for the one address" },
	{ "::ffff:10.0.0.1/104", "'::ffff:10.0.0.1/104' has host bits set: write ::ffff:10.0.0.0/104 for the network, or ::ffff:10.0.0.1 alone for the one address" },
	{ "0.0.0.1/0", "'0.0.0.1/0' has host bits set: write 0.0.0.0/0 for the network, or 0.0.0.1 alone for the one address" },
};

BY_INDEX(cidr_parse_error_exact, bad)

ParameterizedTest(size_t *ix, addr, cidr_parse_error_exact)
{
	const struct bad_cidr *b = &bad[*ix];
	struct pol_cidr c;
	char err[256] = "";

	cr_expect_eq(pol_cidr_parse(b->in, &c, err, sizeof err), -1, "'%s'", b->in);
	cr_expect_str_eq(err, b->err, "'%s'", b->in);
}

struct good_cidr {
	const char *in;
	const char *net;	/* pol_addr_format of the network */
	unsigned len;		/* over 128 bits */
};

static const struct good_cidr good[] = {
	{ "10.0.0.0/8", "10.0.0.0", 104 },
	{ "192.0.2.7", "192.0.2.7", 128 },
	{ "0.0.0.0/0", "0.0.0.0", 96 },
	{ "::/0", "::", 0 },
	{ "2001:db8::/32", "2001:db8::", 32 },
	{ "2001:DB8:0:0::1", "2001:db8::1", 128 },
	{ "::ffff:10.0.0.0/104", "10.0.0.0", 104 },	/* one value for both */
	{ "::ffff:10.0.0.0/120", "10.0.0.0", 120 },
	{ "10.0.0.0/32", "10.0.0.0", 128 },
	{ "2001:db8::1/128", "2001:db8::1", 128 },
};

BY_INDEX(cidr_parse_good, good)

ParameterizedTest(size_t *ix, addr, cidr_parse_good)
{
	const struct good_cidr *g = &good[*ix];
	struct pol_cidr c;
	char err[256] = "", text[POL_ADDR_STRLEN];

	cr_assert_eq(pol_cidr_parse(g->in, &c, err, sizeof err), 0, "'%s': %s", g->in, err);
	pol_addr_format(&c.net, text, sizeof text);
	cr_expect_str_eq(text, g->net, "'%s'", g->in);
	cr_expect_eq(c.len, g->len, "'%s'", g->in);
}

static struct sockaddr_storage
sa_of(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return ss;
	}
	cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1, "%s", ip);
	s6->sin6_family = AF_INET6;
	return ss;
}

Test(addr, mapped_peer_matches_v4_rule_and_v4_peer_matches_mapped_rule)
{
	struct pol_cidr c[2];
	struct sockaddr_storage mapped = sa_of("::ffff:10.1.2.3"), v4 = sa_of("10.1.2.3");
	struct sockaddr_storage other = sa_of("::ffff:11.1.2.3");
	char err[128];

	cr_assert_eq(pol_cidr_parse("10.0.0.0/8", &c[0], err, sizeof err), 0);
	cr_assert_eq(pol_cidr_parse("::ffff:10.0.0.0/104", &c[1], err, sizeof err), 0);
	for (size_t i = 0; i < 2; i++) {
		cr_expect(pol_cidr_list_contains(&c[i], 1, (struct sockaddr *)&mapped));
		cr_expect(pol_cidr_list_contains(&c[i], 1, (struct sockaddr *)&v4));
		cr_expect_not(pol_cidr_list_contains(&c[i], 1, (struct sockaddr *)&other));
	}
}

Test(addr, list_contains_refuses_non_ip_and_empty_list)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage v4 = sa_of("10.1.2.3");
	struct pol_cidr c;
	char err[128];

	cr_assert_eq(pol_cidr_parse("::/0", &c, err, sizeof err), 0);
	cr_expect_not(pol_cidr_list_contains(&c, 1, (struct sockaddr *)&un));
	cr_expect_not(pol_cidr_list_contains(&c, 1, NULL));
	cr_expect_not(pol_cidr_list_contains(&c, 0, (struct sockaddr *)&v4));
	cr_expect(pol_cidr_list_contains(&c, 1, (struct sockaddr *)&v4));	/* ::/0 covers IPv4 */
}

struct peer_text {
	const char *ip;
	const char *text;
};

static const struct peer_text texts[] = {
	{ "192.0.2.7", "192.0.2.7" },
	{ "::ffff:192.0.2.7", "192.0.2.7" },	/* as the IPv4 client it is */
	{ "2001:db8::1", "2001:db8::1" },
	{ "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1" },
	{ "::1", "::1" },
	{ "::", "::" },
};

BY_INDEX(peer_text_one_form, texts)

ParameterizedTest(size_t *ix, addr, peer_text_one_form)
{
	const struct peer_text *t = &texts[*ix];
	struct sockaddr_storage ss = sa_of(t->ip);
	char buf[POL_ADDR_STRLEN];

	pol_addr_peer_text((struct sockaddr *)&ss, buf, sizeof buf);
	cr_expect_str_eq(buf, t->text, "%s", t->ip);
}

Test(addr, peer_text_of_non_ip_and_small_buffer)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage ss = sa_of("2001:db8::1");
	char buf[POL_ADDR_STRLEN], tiny[4];

	pol_addr_peer_text((struct sockaddr *)&un, buf, sizeof buf);
	cr_expect_str_eq(buf, "unknown");
	pol_addr_peer_text(NULL, buf, sizeof buf);
	cr_expect_str_eq(buf, "unknown");
	pol_addr_peer_text((struct sockaddr *)&ss, tiny, sizeof tiny);
	cr_expect_str_eq(tiny, "?");
}

struct bare {
	const char *in;
	int rc;
};

static const struct bare bares[] = {
	{ "192.0.2.7", 0 }, { "2001:db8::1", 0 }, { "::ffff:1.2.3.4", 0 },
	{ "", -1 }, { " 1.2.3.4", -1 }, { "1.2.3.4 ", -1 }, { "1.2.3.4/32", -1 },
	{ "[::1]", -1 }, { "1.2.3.4:80", -1 }, { "fe80::1%eth0", -1 },
	{ "01.2.3.4", -1 }, { "unknown", -1 },
	{ "1111:2222:3333:4444:5555:6666:255.255.255.255x", -1 },	/* too long */
};

BY_INDEX(bare_address_parse, bares)

ParameterizedTest(size_t *ix, addr, bare_address_parse)
{
	const struct bare *b = &bares[*ix];
	struct pol_addr a;

	cr_expect_eq(pol_addr_parse(b->in, strlen(b->in), &a), b->rc, "'%s'", b->in);
}

Test(addr, bare_address_not_nul_terminated_and_embedded_nul)
{
	struct pol_addr a;
	char buf[POL_ADDR_STRLEN];

	cr_assert_eq(pol_addr_parse("10.0.0.1, 10.0.0.2", 8, &a), 0);
	pol_addr_format(&a, buf, sizeof buf);
	cr_expect_str_eq(buf, "10.0.0.1");
	cr_expect_eq(pol_addr_parse("10.0.0.1\0junk", 13, &a), -1);
}

struct loop {
	const char *ip;
	bool loopback;
};

static const struct loop loops[] = {
	{ "127.0.0.1", true }, { "127.255.0.9", true }, { "::ffff:127.0.0.1", true },
	{ "::1", true }, { "128.0.0.1", false }, { "::2", false },
	{ "::127.0.0.1", false }, { "10.0.0.1", false }, { "::", false },
};

BY_INDEX(loopback_one_rule, loops)

ParameterizedTest(size_t *ix, addr, loopback_one_rule)
{
	const struct loop *l = &loops[*ix];
	struct pol_addr a;

	cr_assert_eq(pol_addr_parse(l->ip, strlen(l->ip), &a), 0);
	cr_expect_eq(pol_addr_is_loopback(&a), l->loopback, "%s", l->ip);
}

struct group {
	const char *ip;
	const char *key;
	unsigned len;
};

static const struct group groups[] = {
	{ "192.0.2.7", "192.0.2.7", 128 },
	{ "::ffff:192.0.2.7", "192.0.2.7", 128 },
	{ "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::", 64 },
	{ "2001:db8:1:2::", "2001:db8:1:2::", 64 },
};

BY_INDEX(client_group, groups)

ParameterizedTest(size_t *ix, addr, client_group)
{
	const struct group *g = &groups[*ix];
	struct pol_addr a, k;
	char buf[POL_ADDR_STRLEN];

	cr_assert_eq(pol_addr_parse(g->ip, strlen(g->ip), &a), 0);
	cr_expect_eq(pol_addr_group(&a, &k), g->len, "%s", g->ip);
	pol_addr_format(&k, buf, sizeof buf);
	cr_expect_str_eq(buf, g->key, "%s", g->ip);
}

Test(addr, sockaddr_round_trip_maps_v4)
{
	struct sockaddr_storage ss;
	struct pol_addr a, b;

	cr_assert_eq(pol_addr_parse("::ffff:10.0.0.1", 15, &a), 0);
	cr_expect_eq(pol_addr_to_sockaddr(&a, 80, &ss), sizeof(struct sockaddr_in));
	cr_expect_eq(ss.ss_family, AF_INET);
	cr_expect_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 80);
	cr_assert(pol_addr_from_sockaddr((struct sockaddr *)&ss, &b));
	cr_expect(a.hi == b.hi && a.lo == b.lo);
	cr_assert_eq(pol_addr_parse("2001:db8::1", 11, &a), 0);
	cr_expect_eq(pol_addr_to_sockaddr(&a, 0, &ss), sizeof(struct sockaddr_in6));
	cr_expect_eq(ss.ss_family, AF_INET6);
}
