/* set_cookie.c -- which upstream Set-Cookie headers would plant one of the
 * gateway's own cookies (session, MFA, CSRF: auth/auth.h) in the browser. */
#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

#include "gateway/gw_priv.h"

static const struct gw_name reserved[] = {
	GW_NAME("__host-pbxgate"), GW_NAME("__secure-pbxgate"),
};

/* Browsers trim SP and HTAB around a cookie name; a nameless cookie
 * ("=__Host-pbxgate=x", RFC 6265bis 5.6) is sent back as its bare value,
 * which reads as that name again. Be stricter than any of them: skip
 * every byte up to and including space, and every '=', before the name. */
static size_t
skip_lead(const char *v, size_t n, size_t i)
{
	while (i < n && ((unsigned char)v[i] <= ' ' || v[i] == '=' ||
	    (unsigned char)v[i] == 0x7f))
		i++;
	return i;
}

static bool
reserved_at(const char *v, size_t n)
{
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (n >= reserved[i].len &&
		    strncasecmp(v, reserved[i].s, reserved[i].len) == 0)
			return true;
	return false;
}

/* The name is checked at the start of the value and after every comma:
 * a client or intermediary that splits a Set-Cookie on commas (as some
 * do) must not find one of our names either. Names compare caselessly
 * although browsers do not: a near-miss is dropped, never forwarded. */
bool
gw_set_cookie_reserved(const char *v, size_t n)
{
	size_t i = skip_lead(v, n, 0);

	for (;;) {
		if (reserved_at(v + i, n - i))
			return true;
		while (i < n && v[i] != ',')
			i++;
		if (i == n)
			return false;
		i = skip_lead(v, n, i + 1);
	}
}
