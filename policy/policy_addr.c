/* policy_addr.c -- the one IP address and CIDR vocabulary: parse, print, match. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy_priv.h"

#define V4_MAPPED_HI UINT64_C(0)
#define V4_MAPPED_TAG (UINT64_C(0xffff) << 32)

static struct pol_addr
from_bytes(const uint8_t b[16])
{
	struct pol_addr a = { 0, 0 };

	for (int i = 0; i < 8; i++) {
		a.hi = a.hi << 8 | b[i];
		a.lo = a.lo << 8 | b[i + 8];
	}
	return a;
}

static void
to_bytes(const struct pol_addr *a, uint8_t b[16])
{
	for (int i = 0; i < 8; i++) {
		b[i] = (uint8_t)(a->hi >> (56 - 8 * i));
		b[i + 8] = (uint8_t)(a->lo >> (56 - 8 * i));
	}
}

static struct pol_addr
from_v4(const struct in_addr *in)
{
	struct pol_addr a = { V4_MAPPED_HI, V4_MAPPED_TAG | ntohl(in->s_addr) };

	return a;
}

struct pol_addr
pol_addr_mask(const struct pol_addr *a, unsigned len)
{
	struct pol_addr m = *a;

	if (len == 0) {
		m.hi = m.lo = 0;
	} else if (len < 64) {
		m.hi &= ~UINT64_C(0) << (64 - len);
		m.lo = 0;
	} else if (len == 64) {
		m.lo = 0;
	} else if (len < 128) {
		m.lo &= ~UINT64_C(0) << (128 - len);
	}
	return m;
}

bool
pol_addr_covers(const struct pol_addr *net, unsigned len,
    const struct pol_addr *a)
{
	struct pol_addr m = pol_addr_mask(a, len);

	return m.hi == net->hi && m.lo == net->lo;
}

bool
pol_addr_from_sockaddr(const struct sockaddr *sa, struct pol_addr *out)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		*out = from_v4(&((const struct sockaddr_in *)(const void *)sa)->sin_addr);
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	*out = from_bytes(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	return true;
}

socklen_t
pol_addr_to_sockaddr(const struct pol_addr *a, uint16_t port,
    struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof *ss);
	if (pol_addr_is_v4(a)) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl((uint32_t)a->lo);
		return sizeof *s4;
	}
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	to_bytes(a, s6->sin6_addr.s6_addr);
	return sizeof *s6;
}

/* inet_pton is the parser: it refuses white space, brackets, ports, zones
 * and IPv4 octets with leading zeros (which some resolvers read as
 * octal), so what it accepts is one unambiguous address. */
int
pol_addr_parse(const char *s, size_t n, struct pol_addr *out)
{
	char buf[POL_ADDR_STRLEN];
	struct in6_addr a6;
	struct in_addr a4;

	if (n == 0 || n >= sizeof buf || memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		*out = from_v4(&a4);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		*out = from_bytes(a6.s6_addr);
		return 0;
	}
	return -1;
}

bool
pol_addr_is_v4(const struct pol_addr *a)
{
	return a->hi == V4_MAPPED_HI && (a->lo >> 32) << 32 == V4_MAPPED_TAG;
}

bool
pol_addr_is_loopback(const struct pol_addr *a)
{
	if (pol_addr_is_v4(a))
		return (a->lo >> 24 & 0xff) == 127;
	return a->hi == 0 && a->lo == 1;
}

unsigned
pol_addr_group(const struct pol_addr *a, struct pol_addr *out)
{
	unsigned len = pol_addr_is_v4(a) ? 128 : 64;

	*out = pol_addr_mask(a, len);
	return len;
}

/* `as_v6` prints an IPv4-mapped address as ::ffff:a.b.c.d, for a message
 * that quotes what the administrator wrote in IPv6 form. */
static void
format_as(const struct pol_addr *a, bool as_v6, char *buf, size_t buflen)
{
	uint8_t b[16];
	const char *r;

	if (buflen == 0)
		return;
	to_bytes(a, b);
	if (!as_v6 && pol_addr_is_v4(a))
		r = inet_ntop(AF_INET, b + 12, buf, (socklen_t)buflen);
	else
		r = inet_ntop(AF_INET6, b, buf, (socklen_t)buflen);
	if (r == NULL)
		snprintf(buf, buflen, "?");	/* buffer too small */
}

void
pol_addr_format(const struct pol_addr *a, char *buf, size_t buflen)
{
	format_as(a, false, buf, buflen);
}

void
pol_addr_peer_text(const struct sockaddr *sa, char *buf, size_t buflen)
{
	struct pol_addr a;

	if (!pol_addr_from_sockaddr(sa, &a)) {
		snprintf(buf, buflen, "unknown");
		return;
	}
	pol_addr_format(&a, buf, buflen);
}

/* Decimal 0..max, no sign, no leading zero ("/08" is refused like
 * "010.0.0.1": one spelling per network). */
static int
parse_len(const char *s, unsigned max, unsigned *len)
{
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 3 || (s[0] == '0' && n > 1))
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -1;
	*len = v;
	return 0;
}

static int
bad_address(const char *s, char *err, size_t errlen)
{
	if (*s == '\0')
		snprintf(err, errlen, "empty address (expected an IPv4 or "
		    "IPv6 address, optionally with /LEN)");
	else if (strchr(s, '%') != NULL)
		snprintf(err, errlen, "bad address '%s' (a zone such as "
		    "%%eth0 names no network: drop it)", s);
	else
		snprintf(err, errlen, "bad address '%s' (expected an IPv4 or "
		    "IPv6 address, optionally with /LEN)", s);
	return -1;
}

/* The one host-bits rule: `10.1.2.3/8` is refused, since the writer meant
 * either the network or the one address and a guess could open either. */
static int
host_bits(const char *s, const struct pol_cidr *c, bool v4, char *err,
    size_t errlen)
{
	char net[POL_ADDR_STRLEN], host[POL_ADDR_STRLEN];
	size_t alen = (size_t)(strchr(s, '/') - s);

	format_as(&c->net, !v4, net, sizeof net);
	snprintf(host, sizeof host, "%.*s", (int)alen, s);
	snprintf(err, errlen, "'%s' has host bits set: write %s/%u for the "
	    "network, or %s alone for the one address", s, net,
	    v4 ? c->len - 96 : c->len, host);
	return -1;
}

int
pol_cidr_parse(const char *s, struct pol_cidr *out, char *err, size_t errlen)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	struct pol_addr a;
	unsigned max;
	bool v4;

	if (pol_addr_parse(s, alen, &a) == -1)
		return bad_address(s, err, errlen);
	v4 = memchr(s, ':', alen) == NULL;
	max = v4 ? 32 : 128;
	out->len = max;
	if (slash != NULL && parse_len(slash + 1, max, &out->len) == -1) {
		snprintf(err, errlen, "bad prefix length in '%s' (IPv%s takes "
		    "/0 to /%u, no leading zeros)", s, v4 ? "4" : "6", max);
		return -1;
	}
	if (v4)
		out->len += 96;
	out->net = pol_addr_mask(&a, out->len);
	if (out->net.hi != a.hi || out->net.lo != a.lo)
		return host_bits(s, out, v4, err, errlen);
	return 0;
}

bool
pol_cidr_contains(const struct pol_cidr *c, const struct pol_addr *a)
{
	return pol_addr_covers(&c->net, c->len, a);
}

bool
pol_cidr_list_contains(const struct pol_cidr *list, size_t n,
    const struct sockaddr *sa)
{
	struct pol_addr a;

	if (!pol_addr_from_sockaddr(sa, &a))
		return false;
	for (size_t i = 0; i < n; i++)
		if (pol_cidr_contains(&list[i], &a))
			return true;
	return false;
}
