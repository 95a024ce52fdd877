/* auth_settings.c -- the auth keywords of the gateway config file. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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
	memcpy(s->totp_issuer, AUTH_ISSUER_DEFAULT,
	    sizeof(AUTH_ISSUER_DEFAULT));
}

void
auth_settings_free(struct auth_settings *s)
{
	if (s == NULL)
		return;
	free(s->user_db);
	free(s->secret_key);
	free(s->public_url);
	free(s->user_db_password_file);
	s->user_db = s->secret_key = s->public_url = NULL;
	s->user_db_password_file = NULL;
}

/* Digits only, within [min, max]: argon2's m=, t= and p= parts. */
static int
parse_uint(const char *v, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char err[128];
	uint64_t n;

	if (pol_value_parse(POL_KIND_COUNT, v, &n, err, sizeof(err)) == -1 ||
	    n < min || n > max)
		return -1;
	*out = (unsigned long)n;
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
set_path(char **slot, struct pol_kw_call *c)
{
	const char *v = c->argv[0];
	char *p;

	if (v[0] == '\0') {
		snprintf(c->err, c->errlen, "empty path");
		return -1;
	}
	if ((p = resolve_path(c->basedir, v)) == NULL) {
		snprintf(c->err, c->errlen, "out of memory");
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
set_file(char **slot, struct pol_kw_call *c)
{
	char why[256];

	if (set_path(slot, c) < 0)
		return -1;
	if (pol_file_check(*slot, true, why, sizeof(why)) < 0) {
		snprintf(c->err, c->errlen, "%s: %s", *slot, why);
		return -1;
	}
	return 0;
}

/* A file, or a PostgreSQL URL kept as written (libpq reads it). */
static int
kw_user_db(struct pol_kw_call *c)
{
	struct auth_settings *s = c->obj;
	char *u;

	if (!auth_store_is_pg(c->argv[0]))
		return set_file(&s->user_db, c);
	if (auth_store_pg_check(c->argv[0], c->err, c->errlen) < 0)
		return -1;
	if ((u = strdup(c->argv[0])) == NULL) {
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	free(s->user_db);
	s->user_db = u;
	return 0;
}

/* Read again when the store is opened; read now too so that `check`
 * reports a missing, empty or too open file at its line. */
static int
kw_user_db_password_file(struct pol_kw_call *c)
{
	struct auth_settings *s = c->obj;
	char pw[AUTH_PG_PASSWORD_MAX];
	int rc;

	if (set_path(&s->user_db_password_file, c) < 0)
		return -1;
	rc = auth_store_pg_password(s->user_db_password_file, pw, sizeof(pw),
	    c->err, c->errlen);
	OPENSSL_cleanse(pw, sizeof(pw));
	return rc;
}

static int
kw_secret_key(struct pol_kw_call *c)
{
	return set_file(&((struct auth_settings *)c->obj)->secret_key, c);
}

/* "argon2 m=65536 t=3 p=4": any subset, any order. */
static int
kw_argon2(struct pol_kw_call *c)
{
	struct auth_settings *s = c->obj;
	uint32_t m = s->argon2_m_kib, t = s->argon2_t, p = s->argon2_p;
	unsigned long n;

	for (int i = 0; i < c->argc; i++) {
		const char *a = c->argv[i];

		c->bad = i;
		if (strncmp(a, "m=", 2) == 0 && parse_uint(a + 2, 8, 4194304, &n) == 0)
			m = (uint32_t)n;
		else if (strncmp(a, "t=", 2) == 0 && parse_uint(a + 2, 1, 64, &n) == 0)
			t = (uint32_t)n;
		else if (strncmp(a, "p=", 2) == 0 && parse_uint(a + 2, 1, 64, &n) == 0)
			p = (uint32_t)n;
		else {
			snprintf(c->err, c->errlen, "bad argon2 parameter \"%s\": "
			    "expected m=KIB (8..4194304), t=PASSES (1..64) or "
			    "p=LANES (1..64)", a);
			return -1;
		}
	}
	if (m < 8 * p) {
		c->bad = 0;
		snprintf(c->err, c->errlen, "argon2 m=%u is below 8 KiB per lane "
		    "(p=%u)", m, p);
		return -1;
	}
	s->argon2_m_kib = m;
	s->argon2_t = t;
	s->argon2_p = p;
	return 0;
}

static int
kw_public_url(struct pol_kw_call *c)
{
	struct auth_settings *s = c->obj;
	const char *v = c->argv[0], *host;
	size_t n = strlen(v);

	if (strncmp(v, "https://", 8) != 0) {
		snprintf(c->err, c->errlen, "public_url must start with https:// "
		    "(the session cookie is __Host- and needs a secure origin)");
		return -1;
	}
	host = v + 8;
	if (*host == '\0' || *host == '/' || strpbrk(host, "?#@ \t\"<>'\\") != NULL) {
		snprintf(c->err, c->errlen, "public_url needs a host and no user "
		    "info, query, fragment or quotes");
		return -1;
	}
	while (n > 8 && v[n - 1] == '/')
		n--;
	free(s->public_url);
	if ((s->public_url = strndup(v, n)) == NULL) {
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Any text the config reader accepts (UTF-8, no control byte): pages
 * escape it. Quote it when it has blanks. */
static int
kw_title(struct pol_kw_call *c)
{
	struct auth_settings *s = c->obj;
	size_t n = strlen(c->argv[0]);

	if (n > AUTH_TITLE_MAX) {
		snprintf(c->err, c->errlen, "longer than %d bytes",
		    AUTH_TITLE_MAX);
		return -1;
	}
	memcpy(s->title, c->argv[0], n + 1);
	return 0;
}

/* It goes into the otpauth:// URI twice, as the label's prefix (before a
 * ':') and as issuer=: letters, digits, blanks, '.', '-' and '_' need no
 * escaping beyond the blank, and an app shows them as written. */
static int
kw_totp_issuer(struct pol_kw_call *c)
{
	struct auth_settings *s = c->obj;
	const char *v = c->argv[0];
	size_t n = strlen(v);

	if (n == 0 || n > AUTH_ISSUER_MAX ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789 ._-") != n || v[0] == ' ' || v[n - 1] == ' ') {
		snprintf(c->err, c->errlen, "\"%s\" is not an issuer: 1 to %d "
		    "letters, digits, blanks, '.', '-' or '_', no blank at "
		    "either end", v, AUTH_ISSUER_MAX);
		return -1;
	}
	memcpy(s->totp_issuer, v, n + 1);
	return 0;
}

#define S(f)     POL_KW_AT(struct auth_settings, f)
#define SEC      1000ull			/* parsed ms per stored second */
#define DAY      (86400ull * SEC)

/* Durations are parsed in ms and kept in seconds (scale SEC). Lines may
 * repeat: the last one wins, as it always did for these keywords. */
static const struct pol_keyword keywords[] = {
	{ "user_db", "FILE|URL", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_user_db },
	{ "user_db_password_file", "FILE", POL_KIND_OTHER, 1, 1, true, 0, 0, 0,
	    0, 0, kw_user_db_password_file },
	{ "user_db_pool", "COUNT", POL_KIND_COUNT, 1, 1, true, 1, 32, 0,
	    S(user_db_pool), NULL },
	{ "secret_key", "FILE", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_secret_key },
	{ "public_url", "URL", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_public_url },
	{ "argon2", "m=KIB t=PASSES p=LANES", POL_KIND_OTHER, 1, 3, true, 0, 0,
	    0, 0, 0, kw_argon2 },
	{ "session_idle_timeout", "DURATION", POL_KIND_DURATION, 1, 1, true,
	    60 * SEC, 7 * DAY, SEC, S(session_idle), NULL },
	{ "session_max_lifetime", "DURATION", POL_KIND_DURATION, 1, 1, true,
	    60 * SEC, 90 * DAY, SEC, S(session_max), NULL },
	{ "login_failure_window", "DURATION", POL_KIND_DURATION, 1, 1, true,
	    SEC, DAY, SEC, S(login_failure_window), NULL },
	{ "login_ban_time", "DURATION", POL_KIND_DURATION, 1, 1, true,
	    SEC, 7 * DAY, SEC, S(login_ban_time), NULL },
	{ "enrol_link_lifetime", "DURATION", POL_KIND_DURATION, 1, 1, true,
	    60 * SEC, 30 * DAY, SEC, S(enrol_link_lifetime), NULL },
	{ "totp_skew", "COUNT", POL_KIND_COUNT, 1, 1, true, 0, 3, 0,
	    S(totp_skew), NULL },
	{ "login_max_failures", "COUNT", POL_KIND_COUNT, 1, 1, true, 1, 1000,
	    0, S(login_max_failures), NULL },
	{ "login_threads", "COUNT", POL_KIND_COUNT, 1, 1, true, 1, 64, 0,
	    S(login_threads), NULL },
	{ "login_queue", "COUNT", POL_KIND_COUNT, 1, 1, true, 1, 65536, 0,
	    S(login_queue), NULL },
	{ "mfa_self_enrol", "on|off", POL_KIND_BOOL, 1, 1, true, 0, 1, 0,
	    S(mfa_self_enrol), NULL },
	{ "title", "TEXT", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_title },
	{ "totp_issuer", "NAME", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_totp_issuer },
};

#undef S

const struct pol_kwtab auth_kwtab = {
	keywords, sizeof(keywords) / sizeof(keywords[0])
};

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
		if (s->user_db_password_file != NULL || s->user_db_pool != 0) {
			snprintf(err, errlen, "%s is set but user_db is not",
			    s->user_db_password_file != NULL ?
			    "user_db_password_file" : "user_db_pool");
			return -1;
		}
		return 0;
	}
	if (auth_store_is_pg(s->user_db) && s->secret_key == NULL) {
		snprintf(err, errlen, "user_db is a PostgreSQL store: set "
		    "secret_key FILE too, the same key on every gateway sharing "
		    "it (there is no directory to keep one beside the store)");
		return -1;
	}
	if (s->user_db_pool != 0 && !auth_store_is_pg(s->user_db)) {
		snprintf(err, errlen, "user_db_pool is set but user_db is not a "
		    "postgresql:// URL: remove it (a SQLite store has one "
		    "connection)");
		return -1;
	}
	if (s->user_db_pool == 0)
		s->user_db_pool = 2;
	if (s->user_db_password_file != NULL && !auth_store_is_pg(s->user_db)) {
		snprintf(err, errlen, "user_db_password_file is set but user_db "
		    "is not a postgresql:// URL: remove it");
		return -1;
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
