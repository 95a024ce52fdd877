/* addr.c -- numeric ADDR:PORT and CIDR parsing, and CIDR set matching. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "gateway/gateway.h"

/* Decimal port 1..65535: digits only, so "+80", " 80" and "0x50" fail. */
static int
parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (*s == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static void
set_v4(struct gw_addr *out, const struct in_addr *a, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

	memset(&out->ss, 0, sizeof(out->ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr = *a;
	out->sslen = sizeof(*sin);
}

static void
set_v6(struct gw_addr *out, const struct in6_addr *a, uint16_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

	memset(&out->ss, 0, sizeof(out->ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = *a;
	out->sslen = sizeof(*sin6);
}

/* Splits "host:port" / "[v6]:port" into host and port text (in buf). */
static int
split_hostport(const char *s, char *buf, size_t buflen, char **host,
    char **port, bool *bracketed, char *err, size_t errlen)
{
	char *colon;

	if (strlen(s) >= buflen) {
		snprintf(err, errlen, "address \"%s\" is too long", s);
		return -1;
	}
	memcpy(buf, s, strlen(s) + 1);	/* length checked above */
	*bracketed = buf[0] == '[';
	if (*bracketed) {
		char *close = strchr(buf, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "bad address \"%s\": expected "
			    "[IPV6]:PORT", s);
			return -1;
		}
		*close = '\0';
		*host = buf + 1;
		*port = close + 2;
		return 0;
	}
	colon = strrchr(buf, ':');
	if (colon == NULL || strchr(buf, ':') != colon) {
		snprintf(err, errlen, "bad address \"%s\": expected ADDR:PORT "
		    "(IPv6 in brackets: [::1]:PORT)", s);
		return -1;
	}
	*colon = '\0';
	*host = buf;
	*port = colon + 1;
	return 0;
}

int
gw_parse_hostport(const char *s, struct gw_addr *out, char *err,
    size_t errlen)
{
	char buf[sizeof(out->text)], *host, *port;
	struct in_addr a4;
	struct in6_addr a6;
	uint16_t p;
	bool br;

	if (split_hostport(s, buf, sizeof(buf), &host, &port, &br, err,
	    errlen) == -1)
		return -1;
	if (parse_port(port, &p) == -1) {
		snprintf(err, errlen, "bad port \"%s\" in \"%s\": expected a "
		    "number from 1 to 65535", port, s);
		return -1;
	}
	if (!br && strcmp(host, "*") == 0) {
		a4.s_addr = htonl(INADDR_ANY);
		set_v4(out, &a4, p);
	} else if (!br && inet_pton(AF_INET, host, &a4) == 1) {
		set_v4(out, &a4, p);
	} else if (br && inet_pton(AF_INET6, host, &a6) == 1) {
		set_v6(out, &a6, p);
	} else {
		snprintf(err, errlen, "bad address \"%s\": \"%s\" is not a "
		    "numeric %s address", s, host, br ? "IPv6" : "IPv4 (or *)");
		return -1;
	}
	snprintf(out->text, sizeof(out->text), "%s", s);
	return 0;
}

/* Masks addr beyond plen bits; tells whether any bit was set there. */
static bool
mask_host_bits(uint8_t addr[16], unsigned plen)
{
	bool had = false;
	unsigned i;

	for (i = 0; i < 16; i++) {
		unsigned keep = plen >= (i + 1) * 8 ? 8 :
		    plen > i * 8 ? plen - i * 8 : 0;
		uint8_t m = (uint8_t)(keep == 0 ? 0 : 0xff << (8 - keep));
		if (addr[i] & (uint8_t)~m)
			had = true;
		addr[i] &= m;
	}
	return had;
}

static int
parse_plen(const char *s, unsigned max, unsigned *plen)
{
	unsigned v = 0;
	size_t i;

	if (*s == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 3)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*plen = v;
	return 0;
}

int
gw_parse_cidr(const char *s, struct gw_cidr *out, bool *hostbits, char *err,
    size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	struct in_addr a4;
	struct in6_addr a6;
	unsigned plen, max;
	bool v4;

	*hostbits = false;
	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "bad CIDR \"%s\": too long", s);
		return -1;
	}
	memcpy(buf, s, strlen(s) + 1);	/* length checked above */
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		v4 = true;
		max = 32;
		out->addr[10] = out->addr[11] = 0xff;
		memcpy(out->addr + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, buf, &a6) == 1) {
		v4 = false;
		max = 128;
		memcpy(out->addr, &a6, 16);
	} else {
		snprintf(err, errlen, "bad CIDR \"%s\": \"%s\" is not a numeric "
		    "IPv4 or IPv6 address", s, buf);
		return -1;
	}
	plen = max;
	if (slash != NULL && parse_plen(slash + 1, max, &plen) == -1) {
		snprintf(err, errlen, "bad CIDR \"%s\": prefix length must be "
		    "a number from 0 to %u", s, max);
		return -1;
	}
	out->plen = (uint8_t)(v4 ? plen + 96 : plen);
	*hostbits = mask_host_bits(out->addr, out->plen);
	return 0;
}

static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned plen)
{
	unsigned full = plen / 8, rest = plen % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* IPv4 peers and v4-mapped IPv6 peers both match a v4 CIDR because v4 is
 * always compared in its mapped form. */
bool
gw_cidr_match(const struct gw_cidr *set, size_t n, const struct sockaddr *sa)
{
	uint8_t a[16] = { 0 };
	size_t i;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		memcpy(a, &s6->sin6_addr, 16);
	} else {
		return false;
	}
	for (i = 0; i < n; i++)
		if (set[i].plen <= 128 && prefix_equal(a, set[i].addr,
		    set[i].plen))
			return true;
	return false;
}
