/* policy_client.c -- desktop-app builds named by the User-Agent: versions, OS tokens and the `desktop-app` matcher. */
#include <stdio.h>
#include <string.h>

#include "policy/policy_priv.h"

/* The version after the app's token (\K: the match is the version alone);
 * at most 64 bytes are looked at, which is more than any version that
 * parses (4 numbers of 9 digits and 3 dots). */
static const char app_pattern[] = "3CXDesktopApp/\\K[^\\s;(),]{0,64}";
/* Electron puts the platform in the first parenthesis; matching it
 * anywhere can only make a rule hold more often, never less. */
static const char os_pattern[] = "\\b(?:Windows NT|Macintosh)\\b";

int
pol_version_parse(const char *s, size_t n, struct pol_version *out)
{
	size_t i = 0;

	memset(out, 0, sizeof *out);
	for (int k = 0; k < POL_VERSION_PARTS; k++) {
		uint32_t v = 0;
		size_t digits = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 9) {
			v = v * 10 + (uint32_t)(s[i++] - '0');
			digits++;
		}
		if (digits == 0)
			return -1;
		out->part[k] = v;
		if (i == n)
			return 0;
		if (s[i] != '.')
			return -1;	/* a 10th digit, a letter, a sign */
		i++;
	}
	return -1;	/* a fifth number, or a trailing dot */
}

int
pol_version_cmp(const struct pol_version *a, const struct pol_version *b)
{
	for (int k = 0; k < POL_VERSION_PARTS; k++)
		if (a->part[k] != b->part[k])
			return a->part[k] < b->part[k] ? -1 : 1;
	return 0;
}

const char *
pol_os_name(unsigned os)
{
	switch (os & (POL_OS_WINDOWS | POL_OS_MACOS)) {
	case POL_OS_WINDOWS:
		return "windows";
	case POL_OS_MACOS:
		return "macos";
	case POL_OS_WINDOWS | POL_OS_MACOS:
		return "windows,macos";
	default:
		return "unknown";
	}
}

int
pol_client_compile(struct pol_policy *p)
{
	char err[128];
	size_t off;

	if (p->app_re.code != NULL)
		return 0;
	/* Constant patterns: a failure here is memory, not syntax. */
	if (pol_regex_compile(&p->app_re, app_pattern, true, err, sizeof err,
	    &off) == -1)
		return -1;
	if (pol_regex_compile(&p->os_re, os_pattern, true, err, sizeof err,
	    &off) == -1) {
		pcre2_code_free(p->app_re.code);
		p->app_re.code = NULL;
		return -1;
	}
	return 0;
}

/* The POL_OS_* bits `ua` names: 0 or -1 (match limit). */
static int
scan_os(const struct pol_policy *p, const char *ua, size_t n, unsigned *os)
{
	size_t at = 0, so, eo;
	int rc;

	*os = 0;
	while ((rc = pol_regex_find(p, &p->os_re, ua, n, at, &so, &eo)) == 1) {
		*os |= (ua[so] == 'w' || ua[so] == 'W') ? POL_OS_WINDOWS :
		    POL_OS_MACOS;
		at = eo;
	}
	return rc;
}

static bool
listed(const struct pol_matcher *m, const struct pol_version *v)
{
	for (size_t i = 0; i < m->n; i++)
		if (pol_version_cmp(&m->vers[i], v) == 0)
			return true;
	return false;
}

/* Every app token counts: a User-Agent that names two builds (or joins
 * two User-Agent headers) holds when either is listed. */
int
pol_client_match(const struct pol_policy *p, const struct pol_matcher *m,
    const char *ua)
{
	struct pol_version v;
	size_t n, at = 0, so, eo;
	unsigned os;
	int rc;

	if (ua == NULL || p->app_re.code == NULL)
		return 0;
	n = strlen(ua);
	if (scan_os(p, ua, n, &os) == -1)
		return -1;
	if ((os & m->os) == 0)
		return 0;
	while ((rc = pol_regex_find(p, &p->app_re, ua, n, at, &so, &eo)) == 1) {
		if (pol_version_parse(ua + so, eo - so, &v) == 0 &&
		    listed(m, &v))
			return 1;
		at = eo;
	}
	return rc;
}

static void
safe_text(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 1 < outlen; i++) {
		char ch = s[i];
		bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '_' ||
		    ch == '-';

		out[i] = ok ? ch : '?';
	}
	out[i] = '\0';
}

bool
pol_client_scan(const struct pol_policy *p, const char *ua,
    struct pol_client *out)
{
	struct pol_version v;
	size_t n, at = 0, so, eo;

	memset(out, 0, sizeof *out);
	if (p == NULL || p->app_re.code == NULL)
		return false;
	if (ua == NULL)
		return true;
	n = strlen(ua);
	(void)scan_os(p, ua, n, &out->os);
	while (pol_regex_find(p, &p->app_re, ua, n, at, &so, &eo) == 1) {
		if (!out->app)
			safe_text(out->version, sizeof out->version, ua + so,
			    eo - so);
		out->app = true;
		if (pol_version_parse(ua + so, eo - so, &v) == -1)
			out->bad_version = true;
		at = eo;
	}
	return true;
}
