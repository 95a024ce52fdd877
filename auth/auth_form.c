/* auth_form.c -- form bodies, Cookie headers and address lists from clients. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_priv.h"

#define CIDRS_MAX 32

static int
hexdig(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..n) in place into dst ('+' is space); returns length or -1
 * for a bad escape or an embedded NUL (which no field may contain). */
static ssize_t
url_decode(const char *s, size_t n, char *dst)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '+')
			c = ' ';
		else if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexdig(s[i + 1]);
			lo = hexdig(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return (ssize_t)o;
}

/* application/x-www-form-urlencoded. Duplicate names are refused: a
 * second "rd" or "csrf" would make the checked and the used value differ. */
int
auth_form_parse(const char *body, size_t len, struct auth_form *f)
{
	size_t pos = 0;

	memset(f, 0, sizeof(*f));
	if (len > AUTH_BODY_MAX)
		return -1;
	if ((f->buf = malloc(2 * len + 2)) == NULL)
		return -1;
	f->buflen = 2 * len + 2;
	char *out = f->buf;
	while (pos < len) {
		const char *pair = body + pos, *amp = memchr(pair, '&', len - pos);
		size_t plen = amp != NULL ? (size_t)(amp - pair) : len - pos;
		const char *eq = memchr(pair, '=', plen);
		size_t nlen = eq != NULL ? (size_t)(eq - pair) : plen;
		ssize_t a, b;

		pos += plen + 1;
		if (plen == 0)
			continue;
		if (f->n == AUTH_FORM_MAX)
			goto bad;
		f->f[f->n].name = out;
		if ((a = url_decode(pair, nlen, out)) <= 0)
			goto bad;
		out += a + 1;
		f->f[f->n].value = out;
		b = eq != NULL ? url_decode(eq + 1, plen - nlen - 1, out) : (*out = '\0', 0);
		if (b < 0)
			goto bad;
		out += b + 1;
		f->f[f->n].vlen = (size_t)b;
		if (auth_form_get(f, f->f[f->n].name) != NULL)
			goto bad;
		f->n++;
	}
	return 0;
bad:
	auth_form_free(f);
	return -1;
}

const char *
auth_form_get(const struct auth_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->f[i].name, name) == 0)
			return f->f[i].value;
	return NULL;
}

void
auth_form_free(struct auth_form *f)
{
	if (f->buf != NULL) {
		/* the buffer held passwords and codes */
		explicit_bzero(f->buf, f->buflen);
		free(f->buf);
	}
	memset(f, 0, sizeof(*f));
}

/* RFC 6265 cookie-string: "a=b; c=d". Returns the first match. */
ssize_t
auth_cookie_find(const char *hdr, size_t len, const char *name, const char **val)
{
	size_t nl = strlen(name), i = 0;

	if (hdr == NULL)
		return -1;
	while (i < len) {
		size_t start, end;

		while (i < len && (hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ';'))
			i++;
		start = i;
		while (i < len && hdr[i] != ';')
			i++;
		end = i;
		if (end - start > nl && memcmp(hdr + start, name, nl) == 0 &&
		    hdr[start + nl] == '=') {
			size_t vs = start + nl + 1;

			while (end > vs && (hdr[end - 1] == ' ' || hdr[end - 1] == '\t'))
				end--;
			*val = hdr + vs;
			return (ssize_t)(end - vs);
		}
	}
	return -1;
}

struct cidr {
	uint8_t a[16];
	unsigned plen;
};

/* "ADDR" or "ADDR/LEN"; IPv4 stored v4-mapped so one compare serves both. */
static int
cidr_parse(const char *s, size_t n, struct cidr *c)
{
	char buf[64], *slash, *end;
	struct in_addr v4;
	unsigned long len;
	bool is4;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	memset(c, 0, sizeof(*c));
	is4 = inet_pton(AF_INET, buf, &v4) == 1;
	if (is4) {
		c->a[10] = c->a[11] = 0xff;
		memcpy(c->a + 12, &v4, 4);
	} else if (inet_pton(AF_INET6, buf, c->a) != 1)
		return -1;
	c->plen = 128;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		len = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || len > (is4 ? 32u : 128u) || end - (slash + 1) > 3)
			return -1;
		c->plen = (unsigned)len + (is4 ? 96 : 0);
	}
	return 0;
}

static bool
cidr_match(const struct cidr *c, const uint8_t a[16])
{
	unsigned full = c->plen / 8, rest = c->plen % 8;

	if (memcmp(c->a, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((c->a[full] ^ a[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static int
sa_to16(const struct sockaddr *sa, uint8_t a[16])
{
	memset(a, 0, 16);
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* Calls fn for each space/comma separated CIDR; stops at the first error. */
static int
cidr_each(const char *list, int (*fn)(const struct cidr *, void *), void *arg)
{
	const char *p = list;
	unsigned count = 0;

	while (*p != '\0') {
		size_t n;
		struct cidr c;
		int r;

		p += strspn(p, " ,\t");
		n = strcspn(p, " ,\t");
		if (n == 0)
			break;
		if (++count > CIDRS_MAX || cidr_parse(p, n, &c) < 0)
			return -1;
		if ((r = fn(&c, arg)) != 0)
			return r;
		p += n;
	}
	return 0;
}

static int
match_one(const struct cidr *c, void *arg)
{
	return cidr_match(c, arg) ? 1 : 0;
}

static int
accept_any(const struct cidr *c, void *arg)
{
	return 0;
}

/* An empty list allows everything; a malformed list allows nothing. */
bool
auth_ip_in_list(const struct sockaddr *sa, const char *list)
{
	uint8_t a[16];

	if (list == NULL || list[strspn(list, " ,\t")] == '\0')
		return true;
	if (sa_to16(sa, a) < 0)
		return false;
	return cidr_each(list, match_one, a) == 1;
}

int
auth_cidr_list_check(const char *list, char *err, size_t errlen)
{
	if (strlen(list) > AUTH_LOCKDOWN_MAX || cidr_each(list, accept_any, NULL) < 0) {
		snprintf(err, errlen, "bad address list: expected up to %d "
		    "addresses or CIDRs like 192.0.2.0/24 or 2001:db8::/48", CIDRS_MAX);
		return -1;
	}
	return 0;
}

void
auth_peer_text(const struct sockaddr *sa, char *out, size_t outlen)
{
	uint8_t a[16];

	snprintf(out, outlen, "unknown");
	if (sa_to16(sa, a) < 0)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen);
	else
		inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
}
