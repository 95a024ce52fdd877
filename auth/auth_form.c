/* auth_form.c -- form bodies, Cookie headers and address lists from clients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth_priv.h"
#include "policy/policy.h"

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
			hi = OPENSSL_hexchar2int((unsigned char)s[i + 1]);
			lo = OPENSSL_hexchar2int((unsigned char)s[i + 2]);
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

/* Lockdown lists are parsed by the policy module, the same code that
 * enforces them per request, so what we accept is exactly what it applies. */
bool
auth_ip_in_list(const struct sockaddr *sa, const char *list)
{
	struct pol_lockdown *ld = NULL;
	char err[128];
	bool ok;

	if (list == NULL || list[strspn(list, " ,\t\r\n")] == '\0')
		return true;
	if (pol_lockdown_parse(list, &ld, err, sizeof(err)) < 0)
		return false;	/* a malformed list allows nothing */
	ok = pol_lockdown_allows(ld, sa);
	pol_lockdown_free(ld);
	return ok;
}

int
auth_cidr_list_check(const char *list, char *err, size_t errlen)
{
	struct pol_lockdown *ld = NULL;

	if (strlen(list) > AUTH_LOCKDOWN_MAX) {
		snprintf(err, errlen, "address list longer than %d bytes", AUTH_LOCKDOWN_MAX);
		return -1;
	}
	if (pol_lockdown_parse(list, &ld, err, errlen) < 0)
		return -1;
	pol_lockdown_free(ld);
	return 0;
}
