/* addr.c -- numeric ADDR:PORT parsing for listen addresses. */
#include <stdio.h>
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
	const char *h;
	struct pol_addr a;
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
	h = !br && strcmp(host, "*") == 0 ? "0.0.0.0" : host;
	/* Without brackets there is no ':' left in host (split_hostport),
	 * so only IPv4 parses; in brackets only IPv6 text is taken. */
	if (pol_addr_parse(h, strlen(h), &a) == -1 ||
	    br != (strchr(h, ':') != NULL)) {
		snprintf(err, errlen, "bad address \"%s\": \"%s\" is not a "
		    "numeric %s address", s, host, br ? "IPv6" : "IPv4 (or *)");
		return -1;
	}
	out->sslen = pol_addr_to_sockaddr(&a, p, &out->ss);
	snprintf(out->text, sizeof(out->text), "%s", s);
	return 0;
}
