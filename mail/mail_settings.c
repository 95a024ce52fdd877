/* mail_settings.c -- the smtp_* and scrub_* config keywords: a keyword table,
 * one small handler each, defaults and the final consistency check. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "mail/mail.h"
#include "auth/auth.h"
#include "mail/mail_priv.h"
#include "policy/policy.h"

#define DEFAULT_MAX_SIZE   (50ull * 1024 * 1024)
#define DEFAULT_MAX_RCPT   100u
#define DEFAULT_MAX_LINE   4096u
#define DEFAULT_TIMEOUT    300000u
#define DEFAULT_RELAY_TMO  120000u

void
mail_settings_defaults(struct mail_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->relay_tls = MAIL_RELAY_STARTTLS;
	s->relay_verify = true;
	s->max_size = DEFAULT_MAX_SIZE;
	s->max_recipients = DEFAULT_MAX_RCPT;
	s->max_line = DEFAULT_MAX_LINE;
	s->timeout_ms = DEFAULT_TIMEOUT;
	s->relay_timeout_ms = DEFAULT_RELAY_TMO;
}

static void
wipe_free(char *p)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, strlen(p));
	free(p);
}

void
mail_settings_free(struct mail_settings *s)
{
	free(s->hostname);
	free(s->relay_host);
	free(s->relay_ca);
	free(s->relay_user);
	wipe_free(s->relay_password);
	free(s->auth_user);
	wipe_free(s->auth_hash);
	free(s->scrub_rules);
	free(s->scrub_notice);
	mail_settings_defaults(s);
}

/* Replaces *slot with a copy of val (the last occurrence of a keyword wins). */
static int
set_str(char **slot, const char *val, char *err, size_t errlen)
{
	char *copy = strdup(val);

	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

static int
set_path(char **slot, const char *basedir, const char *val, char *err,
    size_t errlen)
{
	char buf[PATH_MAX];

	if (val[0] == '/' || basedir == NULL || basedir[0] == '\0')
		return set_str(slot, val, err, errlen);
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", basedir, val) >=
	    sizeof(buf)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	return set_str(slot, buf, err, errlen);
}

/* Splits "HOST:PORT" or "[V6]:PORT". host gets the host without brackets. */
static int
split_hostport(const char *v, char *host, size_t hostlen, unsigned *port,
    char *err, size_t errlen)
{
	const char *colon, *hs = v, *he;
	char *end;
	unsigned long p;

	if (v[0] == '[') {
		hs = v + 1;
		he = strchr(hs, ']');
		if (he == NULL || he[1] != ':') {
			snprintf(err, errlen, "'%s': expected [IPV6]:PORT", v);
			return -1;
		}
		colon = he + 1;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || memchr(v, ':', (size_t)(colon - v))) {
			snprintf(err, errlen, "'%s': expected HOST:PORT "
			    "(write IPv6 addresses as [ADDR]:PORT)", v);
			return -1;
		}
		he = colon;
	}
	if (he == hs || (size_t)(he - hs) >= hostlen) {
		snprintf(err, errlen, "'%s': missing or overlong host", v);
		return -1;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p == 0 ||
	    p > 65535) {
		snprintf(err, errlen, "'%s': port must be 1-65535", v);
		return -1;
	}
	*port = (unsigned)p;
	return 0;
}

/* Resolves host:port once (numeric hosts never touch DNS). */
static int
resolve(const char *v, bool passive, struct sockaddr_storage *ss,
    socklen_t *sslen, char *hostout, size_t hostoutlen, char *err,
    size_t errlen)
{
	char host[256], portstr[8];
	unsigned port;
	struct addrinfo hints, *res = NULL;
	int rc;

	if (split_hostport(v, host, sizeof(host), &port, err, errlen) < 0)
		return -1;
	snprintf(portstr, sizeof(portstr), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (strcmp(host, "*") == 0 && passive)
		rc = getaddrinfo(NULL, portstr, &hints, &res);
	else
		rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "'%s': cannot resolve: %s", v,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	if (hostout != NULL)
		snprintf(hostout, hostoutlen, "%s", host);
	return 0;
}

/* Reads the first line of a small secret file; the copy is wiped on error. */
static char *
read_secret_file(const char *path, char *err, size_t errlen)
{
	char buf[1024], why[256];
	struct stat st;
	size_t n = 0;
	ssize_t r = 0;
	int fd, saved;

	if ((fd = pol_file_open(path, 0, &st, why, sizeof(why))) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		return NULL;
	}
	while (n < sizeof(buf) - 1) {
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	saved = errno;
	close(fd);
	if (r == -1) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    strerror(saved));
		OPENSSL_cleanse(buf, sizeof(buf));
		return NULL;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		snprintf(err, errlen, "%s: empty; put the secret on the "
		    "first line", path);
		return NULL;
	}
	char *copy = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (copy == NULL)
		snprintf(err, errlen, "out of memory");
	return copy;
}

/* No smtp_allow: loopback only (the PBX on the same machine). */
bool
mail_settings_allowed(const struct mail_settings *s, const struct sockaddr *sa,
    socklen_t len)
{
	struct pol_addr a;

	if (!pol_addr_from_sockaddr(sa, &a))
		return false;
	if (s->nallow == 0)
		return pol_addr_is_loopback(&a);
	return pol_cidr_list_contains(s->allow, s->nallow, sa);
}

/* ---- keyword handlers: argv holds the values only ---- */

/* The settings a keyword line writes into. */
static struct mail_settings *
settings_of(struct pol_kw_call *k)
{
	return k->obj;
}

static int
kw_listen(struct pol_kw_call *k)
{
	struct mail_settings *s = settings_of(k);
	size_t i = s->nlisten;

	if (i >= MAIL_MAX_LISTEN) {
		snprintf(k->err, k->errlen, "too many smtp_listen lines "
		    "(at most %d)", MAIL_MAX_LISTEN);
		return -1;
	}
	if (resolve(k->argv[0], true, &s->listen[i], &s->listen_len[i], NULL,
	    0, k->err, k->errlen) < 0)
		return -1;
	snprintf(s->listen_text[i], sizeof(s->listen_text[i]), "%s",
	    k->argv[0]);
	s->nlisten++;
	return 0;
}

static int
kw_hostname(struct pol_kw_call *k)
{
	const char *v = k->argv[0];

	if (strlen(v) > 253 || strspn(v, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(v)) {
		snprintf(k->err, k->errlen, "'%s': not a host name", v);
		return -1;
	}
	return set_str(&settings_of(k)->hostname, v, k->err, k->errlen);
}

static int
kw_relay(struct pol_kw_call *k)
{
	struct mail_settings *s = settings_of(k);
	char host[256];

	if (resolve(k->argv[0], false, &s->relay, &s->relay_len, host,
	    sizeof(host), k->err, k->errlen) < 0)
		return -1;
	if (set_str(&s->relay_host, host, k->err, k->errlen) < 0)
		return -1;
	snprintf(s->relay_text, sizeof(s->relay_text), "%s", k->argv[0]);
	s->relay_set = true;
	return 0;
}

static int
kw_relay_tls(struct pol_kw_call *k)
{
	static const char *names[] = { "starttls", "tls", "none" };

	for (int i = 0; i < 3; i++)
		if (strcmp(k->argv[0], names[i]) == 0) {
			settings_of(k)->relay_tls = (enum mail_relay_tls)i;
			return 0;
		}
	snprintf(k->err, k->errlen, "'%s': expected starttls, tls or none",
	    k->argv[0]);
	return -1;
}

static int
kw_relay_ca(struct pol_kw_call *k)
{
	return set_path(&settings_of(k)->relay_ca, k->basedir, k->argv[0],
	    k->err, k->errlen);
}

/* USER of smtp_relay_auth and smtp_auth: 1-255 printable bytes. */
static int
check_user(struct pol_kw_call *k)
{
	const char *u = k->argv[0];
	size_t n = strlen(u);
	bool ok = n > 0 && n <= 255;

	for (size_t i = 0; ok && i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
			ok = false;
	if (ok)
		return 0;
	snprintf(k->err, k->errlen, "'%s': user names are 1-255 printable "
	    "characters", u);
	return -1;
}

/* The first line of the file named by value 1 (relative to the config). */
static char *
secret_from_file(struct pol_kw_call *k)
{
	char *path = NULL, *v;

	if (set_path(&path, k->basedir, k->argv[1], k->err, k->errlen) < 0)
		return NULL;
	v = read_secret_file(path, k->err, k->errlen);
	free(path);
	return v;
}

/* USER SECRET lines: smtp_relay_auth names a password file; smtp_auth
 * gives an inline "$argon2..." PHC string or a file whose first line is
 * one (so the hash need not sit in the config), held to the gateway's own
 * rules. The secret is wiped whenever it is not kept. */
static int
set_login(struct pol_kw_call *k, char **user, char **slot, bool phc)
{
	char *v;

	if (check_user(k) < 0)
		return -1;
	k->bad = 1;
	if (phc && strncmp(k->argv[1], "$argon2", 7) == 0)
		v = strdup(k->argv[1]);
	else if ((v = secret_from_file(k)) == NULL)
		return -1;
	if (v == NULL) {
		snprintf(k->err, k->errlen, "out of memory");
		return -1;
	}
	/* Argon2id, v=19, a cost no lower than the gateway's floor (an
	 * argon2i hash or m=8,t=1 is refused). */
	if (phc && auth_password_phc_check(v, k->err, k->errlen) < 0) {
		wipe_free(v);
		return -1;
	}
	k->bad = 0;
	if (set_str(user, k->argv[0], k->err, k->errlen) < 0) {
		wipe_free(v);
		return -1;
	}
	wipe_free(*slot);
	*slot = v;
	return 0;
}

static int
kw_relay_auth(struct pol_kw_call *k)
{
	struct mail_settings *s = settings_of(k);

	return set_login(k, &s->relay_user, &s->relay_password, false);
}

static int
kw_auth(struct pol_kw_call *k)
{
	struct mail_settings *s = settings_of(k);

	return set_login(k, &s->auth_user, &s->auth_hash, true);
}

static int
kw_allow(struct pol_kw_call *k)
{
	struct mail_settings *s = settings_of(k);

	if (s->nallow >= MAIL_MAX_ALLOW) {
		snprintf(k->err, k->errlen, "too many smtp_allow lines "
		    "(at most %d)", MAIL_MAX_ALLOW);
		return -1;
	}
	if (pol_cidr_parse(k->argv[0], &s->allow[s->nallow], k->err,
	    k->errlen) < 0)
		return -1;
	s->nallow++;
	return 0;
}

/* The file is read at the end of the load (mail_settings_finish, which
 * also reports a missing one); a FIFO, device or directory is refused
 * here already, so that the error points at this line. */
static int
kw_rules(struct pol_kw_call *k)
{
	char why[256];

	if (set_path(&settings_of(k)->scrub_rules, k->basedir, k->argv[0], k->err,
	    k->errlen) < 0)
		return -1;
	if (pol_file_check(settings_of(k)->scrub_rules, true, why, sizeof(why)) < 0) {
		snprintf(k->err, k->errlen, "%s: %s", settings_of(k)->scrub_rules, why);
		return -1;
	}
	return 0;
}

/* scrub_notice takes the rest of the line: the words are joined by spaces. */
static int
kw_notice(struct pol_kw_call *k)
{
	char buf[1024];
	size_t off = 0;

	for (int i = 0; i < k->argc; i++) {
		int n = snprintf(buf + off, sizeof(buf) - off, "%s%s",
		    i ? " " : "", k->argv[i]);
		if (n < 0 || (size_t)n >= sizeof(buf) - off) {
			k->bad = i;
			snprintf(k->err, k->errlen, "notice longer than %zu "
			    "bytes", sizeof(buf) - 1);
			return -1;
		}
		off += (size_t)n;
	}
	for (size_t i = 0; i < off; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			snprintf(k->err, k->errlen, "control characters are "
			    "not allowed in scrub_notice");
			return -1;
		}
	return set_str(&settings_of(k)->scrub_notice, buf, k->err, k->errlen);
}

#define S(f)  POL_KW_AT(struct mail_settings, f)

/* Lines may repeat: the last one wins, except the lists (smtp_listen,
 * smtp_allow), where each line adds one entry. */
static const struct pol_keyword keywords[] = {
	{ "smtp_listen", "HOST:PORT", POL_KIND_OTHER, 1, 1, true, 0, 0, 0,
	    0, 0, kw_listen },
	{ "smtp_hostname", "NAME", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_hostname },
	{ "smtp_relay", "HOST:PORT", POL_KIND_OTHER, 1, 1, true, 0, 0, 0,
	    0, 0, kw_relay },
	{ "smtp_relay_tls", "starttls|tls|none", POL_KIND_OTHER, 1, 1, true,
	    0, 0, 0, 0, 0, kw_relay_tls },
	{ "smtp_relay_ca", "FILE", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_relay_ca },
	{ "smtp_relay_verify", "on|off", POL_KIND_BOOL, 1, 1, true, 0, 1, 0,
	    S(relay_verify), NULL },
	{ "smtp_relay_auth", "USER FILE", POL_KIND_OTHER, 2, 2, true, 0, 0,
	    0, 0, 0, kw_relay_auth },
	{ "smtp_auth", "USER HASH|FILE", POL_KIND_OTHER, 2, 2, true, 0, 0, 0,
	    0, 0, kw_auth },
	{ "smtp_allow", "CIDR", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_allow },
	{ "smtp_max_size", "SIZE", POL_KIND_SIZE, 1, 1, true, 1024, 1ull << 30,
	    0, S(max_size), NULL },
	{ "smtp_max_recipients", "COUNT", POL_KIND_COUNT, 1, 1, true, 1,
	    10000, 0, S(max_recipients), NULL },
	/* RFC 5321 4.5.3.1: at least 512 for commands, 1000 for text. */
	{ "smtp_max_line", "SIZE", POL_KIND_SIZE, 1, 1, true, 1000,
	    1024 * 1024, 0, S(max_line), NULL },
	{ "smtp_timeout", "DURATION", POL_KIND_DURATION, 1, 1, true, 1,
	    86400000, 0, S(timeout_ms), NULL },
	{ "smtp_relay_timeout", "DURATION", POL_KIND_DURATION, 1, 1, true, 1,
	    86400000, 0, S(relay_timeout_ms), NULL },
	{ "scrub_rules", "FILE", POL_KIND_OTHER, 1, 1, true, 0, 0, 0, 0, 0,
	    kw_rules },
	/* the rest of the line: the words are joined by spaces */
	{ "scrub_notice", "TEXT...", POL_KIND_OTHER, 1, UINT8_MAX, true, 0, 0,
	    0, 0, 0, kw_notice },
};

#undef S

const struct pol_kwtab mail_kwtab = {
	keywords, sizeof(keywords) / sizeof(keywords[0])
};

int
mail_settings_finish(struct mail_settings *s, char *err, size_t errlen)
{
	struct mail_rules *r;

	if (s->hostname == NULL) {
		char h[256] = "localhost";
		if (gethostname(h, sizeof(h) - 1) != 0 || h[0] == '\0')
			snprintf(h, sizeof(h), "localhost");
		if (set_str(&s->hostname, h, err, errlen) < 0)
			return -1;
	}
	if (s->nlisten == 0)
		return 0;
	if (!s->relay_set) {
		snprintf(err, errlen, "smtp_listen is set but smtp_relay is "
		    "not: add 'smtp_relay HOST:PORT' (the smarthost)");
		return -1;
	}
	if (s->scrub_rules == NULL) {
		snprintf(err, errlen, "smtp_listen is set but scrub_rules is "
		    "not: add 'scrub_rules FILE' (see etc/scrub.rules)");
		return -1;
	}
	if (s->relay_user != NULL && s->relay_tls == MAIL_RELAY_NONE) {
		snprintf(err, errlen, "smtp_relay_auth with smtp_relay_tls "
		    "none would send the password in clear: use starttls "
		    "or tls");
		return -1;
	}
	r = mail_rules_load(s->scrub_rules, s->scrub_notice, err, errlen);
	if (r == NULL)
		return -1;
	mail_rules_free(r);
	return 0;
}
