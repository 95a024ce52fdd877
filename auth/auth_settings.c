/* auth_settings.c -- the auth keywords of the gateway config file. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "policy/policy.h"

#define DEFAULT_KEY_NAME "pbxgate-secret.key"

void
auth_settings_defaults(struct auth_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->argon2_m_kib = 65536;
	s->argon2_t = 3;
	s->argon2_p = 4;
	s->totp_step = 30;
	s->totp_digits = 6;
	s->totp_skew = 1;
	s->session_idle = 30 * 60;
	s->session_max = 12 * 3600;
	s->login_max_failures = 5;
	s->login_failure_window = 10 * 60;
	s->login_ban_time = 15 * 60;
	s->login_threads = 2;
	s->login_queue = 64;
	s->enrol_link_lifetime = 24 * 3600;
	s->cookie_name = AUTH_COOKIE_NAME;
}

void
auth_settings_free(struct auth_settings *s)
{
	if (s == NULL)
		return;
	free(s->user_db);
	free(s->secret_key);
	free(s->public_url);
	s->user_db = s->secret_key = s->public_url = NULL;
}

/* Parses "30s", "10m", "1h", "2d" or bare seconds into [min, max]. */
static int
parse_duration(const char *v, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long long n, mul = 1;

	if (v[0] < '0' || v[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		switch (*end) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		default: return -1;
		}
		if (end[1] != '\0')
			return -1;
	}
	if (n > UINT_MAX / mul || n * mul < min || n * mul > max)
		return -1;
	*out = (unsigned)(n * mul);
	return 0;
}

static int
parse_uint(const char *v, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long n;

	if (v[0] < '0' || v[0] > '9')
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static char *
resolve_path(const char *basedir, const char *p)
{
	char *r;

	if (p[0] == '/' || basedir == NULL || basedir[0] == '\0')
		return strdup(p);
	if (asprintf(&r, "%s/%s", basedir, p) < 0)
		return NULL;
	return r;
}

static int
kw_path(char **slot, const char *basedir, const char *v, char *err, size_t errlen)
{
	char *p;

	if (v[0] == '\0') {
		snprintf(err, errlen, "empty path");
		return -1;
	}
	if ((p = resolve_path(basedir, v)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = p;
	return 0;
}

/* user_db and secret_key: both are created when missing, but an existing
 * one must be a regular file. Checked here so that `check` reports a FIFO
 * at its line; auth_open checks again when it opens them. */
static int
kw_file(char **slot, const char *basedir, const char *v, char *err,
    size_t errlen)
{
	char why[256];

	if (kw_path(slot, basedir, v, err, errlen) < 0)
		return -1;
	if (pol_file_check(*slot, true, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", *slot, why);
		return -1;
	}
	return 0;
}

/* "argon2 m=65536 t=3 p=4": any subset, any order. */
static int
kw_argon2(struct auth_settings *s, int argc, char **argv, int *badarg,
    char *err, size_t errlen)
{
	uint32_t m = s->argon2_m_kib, t = s->argon2_t, p = s->argon2_p;
	unsigned long n;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		*badarg = i;
		if (strncmp(a, "m=", 2) == 0 && parse_uint(a + 2, 8, 4194304, &n) == 0)
			m = (uint32_t)n;
		else if (strncmp(a, "t=", 2) == 0 && parse_uint(a + 2, 1, 64, &n) == 0)
			t = (uint32_t)n;
		else if (strncmp(a, "p=", 2) == 0 && parse_uint(a + 2, 1, 64, &n) == 0)
			p = (uint32_t)n;
		else {
			snprintf(err, errlen, "bad argon2 parameter \"%s\": expected "
			    "m=KIB (8..4194304), t=PASSES (1..64) or p=LANES (1..64)", a);
			return -1;
		}
	}
	if (m < 8 * p) {
		*badarg = 0;
		snprintf(err, errlen, "argon2 m=%u is below 8 KiB per lane (p=%u)", m, p);
		return -1;
	}
	s->argon2_m_kib = m;
	s->argon2_t = t;
	s->argon2_p = p;
	return 0;
}

static int
kw_public_url(struct auth_settings *s, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	const char *host;

	if (strncmp(v, "https://", 8) != 0) {
		snprintf(err, errlen, "public_url must start with https:// "
		    "(the session cookie is __Host- and needs a secure origin)");
		return -1;
	}
	host = v + 8;
	if (*host == '\0' || *host == '/' || strpbrk(host, "?#@ \t\"<>'\\") != NULL) {
		snprintf(err, errlen, "public_url needs a host and no user info, "
		    "query, fragment or quotes");
		return -1;
	}
	while (n > 8 && v[n - 1] == '/')
		n--;
	free(s->public_url);
	if ((s->public_url = strndup(v, n)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

struct dur_kw {
	const char *name;
	size_t      off;
	unsigned    min, max;
};

static const struct dur_kw dur_kws[] = {
	{ "session_idle_timeout", offsetof(struct auth_settings, session_idle), 60, 7 * 86400 },
	{ "session_max_lifetime", offsetof(struct auth_settings, session_max), 60, 90 * 86400 },
	{ "login_failure_window", offsetof(struct auth_settings, login_failure_window), 1, 86400 },
	{ "login_ban_time", offsetof(struct auth_settings, login_ban_time), 1, 7 * 86400 },
	{ "enrol_link_lifetime", offsetof(struct auth_settings, enrol_link_lifetime), 60, 30 * 86400 },
};

struct num_kw {
	const char *name;
	size_t      off;
	unsigned    min, max;
};

static const struct num_kw num_kws[] = {
	{ "totp_skew", offsetof(struct auth_settings, totp_skew), 0, 3 },
	{ "login_max_failures", offsetof(struct auth_settings, login_max_failures), 1, 1000 },
	{ "login_threads", offsetof(struct auth_settings, login_threads), 1, 64 },
	{ "login_queue", offsetof(struct auth_settings, login_queue), 1, 65536 },
};

struct bool_kw {
	const char *name;
	size_t      off;
};

static const struct bool_kw bool_kws[] = {
	{ "mfa_self_enrol", offsetof(struct auth_settings, mfa_self_enrol) },
};

static int
one_value(const char *kw, int argc, int *badarg, char *err, size_t errlen)
{
	if (argc == 1)
		return 0;
	*badarg = argc > 1 ? 1 : -1;
	snprintf(err, errlen, "%s takes exactly one value", kw);
	return -1;
}

static int
kw_table(struct auth_settings *s, const char *kw, int argc, char **argv,
    int *badarg, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(dur_kws) / sizeof(dur_kws[0]); i++) {
		const struct dur_kw *d = &dur_kws[i];

		if (strcmp(kw, d->name) != 0)
			continue;
		if (one_value(kw, argc, badarg, err, errlen) < 0)
			return -1;
		if (parse_duration(argv[0], d->min, d->max,
		    (unsigned *)(void *)((char *)s + d->off)) < 0) {
			*badarg = 0;
			snprintf(err, errlen, "bad duration \"%s\" for %s: use e.g. "
			    "30s, 10m, 1h, 2d (%u..%u seconds)", argv[0], kw, d->min, d->max);
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(num_kws) / sizeof(num_kws[0]); i++) {
		const struct num_kw *d = &num_kws[i];
		unsigned long n;

		if (strcmp(kw, d->name) != 0)
			continue;
		if (one_value(kw, argc, badarg, err, errlen) < 0)
			return -1;
		if (parse_uint(argv[0], d->min, d->max, &n) < 0) {
			*badarg = 0;
			snprintf(err, errlen, "bad number \"%s\" for %s: expected %u..%u",
			    argv[0], kw, d->min, d->max);
			return -1;
		}
		*(unsigned *)(void *)((char *)s + d->off) = (unsigned)n;
		return 0;
	}
	for (size_t i = 0; i < sizeof(bool_kws) / sizeof(bool_kws[0]); i++) {
		const struct bool_kw *d = &bool_kws[i];
		bool *v = (bool *)(void *)((char *)s + d->off);

		if (strcmp(kw, d->name) != 0)
			continue;
		if (one_value(kw, argc, badarg, err, errlen) < 0)
			return -1;
		if (strcmp(argv[0], "yes") != 0 && strcmp(argv[0], "no") != 0) {
			*badarg = 0;
			snprintf(err, errlen, "bad value \"%s\" for %s: expected yes "
			    "or no", argv[0], kw);
			return -1;
		}
		*v = argv[0][0] == 'y';
		return 0;
	}
	return 1;
}

int
auth_settings_keyword(struct auth_settings *s, const char *basedir,
    const char *kw, int argc, char **argv, int *badarg, char *err,
    size_t errlen)
{
	int r;

	*badarg = 0;
	if (strcmp(kw, "argon2") == 0) {
		if (argc < 1) {
			*badarg = -1;
			snprintf(err, errlen, "usage: argon2 m=KIB t=PASSES p=LANES");
			return -1;
		}
		return kw_argon2(s, argc, argv, badarg, err, errlen);
	}
	if ((r = kw_table(s, kw, argc, argv, badarg, err, errlen)) != 1)
		return r;
	if (strcmp(kw, "user_db") != 0 && strcmp(kw, "secret_key") != 0 &&
	    strcmp(kw, "public_url") != 0)
		return 1;
	if (one_value(kw, argc, badarg, err, errlen) < 0)
		return -1;
	if (strcmp(kw, "user_db") == 0)
		return kw_file(&s->user_db, basedir, argv[0], err, errlen);
	if (strcmp(kw, "secret_key") == 0)
		return kw_file(&s->secret_key, basedir, argv[0], err, errlen);
	return kw_public_url(s, argv[0], err, errlen);
}

int
auth_settings_finish(struct auth_settings *s, char *err, size_t errlen)
{
	char why[256];

	if (s->user_db == NULL) {
		if (s->secret_key != NULL) {
			snprintf(err, errlen, "secret_key is set but user_db is not: "
			    "add \"user_db FILE\" or remove secret_key");
			return -1;
		}
		return 0;
	}
	if (s->secret_key == NULL) {
		const char *slash = strrchr(s->user_db, '/');
		int dirlen = slash != NULL ? (int)(slash - s->user_db) : 0;

		if (asprintf(&s->secret_key, "%.*s%s%s", dirlen, s->user_db,
		    slash != NULL ? "/" : "", DEFAULT_KEY_NAME) < 0) {
			s->secret_key = NULL;
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (pol_file_check(s->secret_key, true, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "secret_key %s (next to user_db): %s",
		    s->secret_key, why);
		return -1;
	}
	if (strcmp(s->secret_key, s->user_db) == 0) {
		snprintf(err, errlen, "secret_key and user_db name the same file");
		return -1;
	}
	if (s->session_idle > s->session_max) {
		snprintf(err, errlen, "session_idle_timeout (%us) exceeds "
		    "session_max_lifetime (%us)", s->session_idle, s->session_max);
		return -1;
	}
	s->cookie_name = AUTH_COOKIE_NAME;
	return 0;
}
