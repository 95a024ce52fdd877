/* config_keywords.c -- the gateway's config keywords: one table entry and
 * one small handler each, their defaults, and the whole-file cross-checks. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config_priv.h"

#define MS_S   1000ull
#define MS_M   (60ull * MS_S)
#define MS_H   (60ull * MS_M)
#define KIB    1024ull
#define MIB    (1024ull * KIB)
#define GIB    (1024ull * MIB)

/* ---- defaults ---- */

void
gw_config_defaults(struct gw_config *cfg)
{
	long n;

	memset(cfg, 0, sizeof(*cfg));
	cfg->refs = 1;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->workers = n < 1 ? 1 : n > 64 ? 64 : (int)n;
	cfg->upstream.verify = true;
	cfg->hsts = true;
	cfg->hsts_max_age = 31536000;
	cfg->to = (struct gw_timeouts){
		.header = 10 * MS_S, .body = 30 * MS_S, .idle = 60 * MS_S,
		.upstream_connect = 5 * MS_S, .upstream = 60 * MS_S,
		.ws_idle = MS_H, .shutdown = 10 * MS_S,
		.tls_handshake = 10 * MS_S,
	};
	cfg->lim = (struct gw_limits){
		.request_line = 8 * KIB, .header_size = 8 * KIB,
		.header_total = 32 * KIB, .headers = 100, .body = 100 * MIB,
		.connections = 10000, .connections_per_ip = 256,
		.established_per_ip = 4096,
		.upstream_keepalive = 64, .requests_per_conn = 1000,
	};
	auth_settings_defaults(&cfg->auth);
	mail_settings_defaults(&cfg->mail);
}

/* ---- value parsers ---- */

/* Decimal digits only; -1 with a message on anything else or overflow. */
static int
parse_u64(const char *s, uint64_t *v, const char **end, char *err,
    size_t errlen)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10) {
			snprintf(err, errlen, "number \"%s\" is too large", s);
			return -1;
		}
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0) {
		snprintf(err, errlen, "\"%s\" is not a number", s);
		return -1;
	}
	*v = x;
	*end = s + i;
	return 0;
}

static int
mul_checked(uint64_t v, uint64_t m, uint64_t *out, const char *s, char *err,
    size_t errlen)
{
	if (v != 0 && m > UINT64_MAX / v) {
		snprintf(err, errlen, "number \"%s\" is too large", s);
		return -1;
	}
	*out = v * m;
	return 0;
}

/* "250ms", "30s", "5m", "1h", or a bare number of seconds -> ms. */
static int
parse_duration(const char *s, uint64_t *ms, char *err, size_t errlen)
{
	static const struct { const char *u; uint64_t m; } units[] = {
		{ "", MS_S }, { "ms", 1 }, { "s", MS_S }, { "m", MS_M },
		{ "h", MS_H },
	};
	const char *end;
	uint64_t v;
	size_t i;

	if (parse_u64(s, &v, &end, err, errlen) == -1)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].u) == 0)
			return mul_checked(v, units[i].m, ms, s, err, errlen);
	snprintf(err, errlen, "bad duration \"%s\": use a number with ms, s, "
	    "m or h (e.g. 30s)", s);
	return -1;
}

/* "512", "8k", "100m", "1g" (powers of 1024) -> bytes. */
static int
parse_size(const char *s, uint64_t *bytes, char *err, size_t errlen)
{
	const char *end;
	uint64_t v, m;

	if (parse_u64(s, &v, &end, err, errlen) == -1)
		return -1;
	if (*end == '\0')
		m = 1;
	else if (strcasecmp(end, "k") == 0)
		m = KIB;
	else if (strcasecmp(end, "m") == 0)
		m = MIB;
	else if (strcasecmp(end, "g") == 0)
		m = GIB;
	else {
		snprintf(err, errlen, "bad size \"%s\": use a number of bytes "
		    "with an optional k, m or g", s);
		return -1;
	}
	return mul_checked(v, m, bytes, s, err, errlen);
}

static int
parse_count(const char *s, uint64_t *v, char *err, size_t errlen)
{
	const char *end;

	if (parse_u64(s, v, &end, err, errlen) == -1)
		return -1;
	if (*end != '\0') {
		snprintf(err, errlen, "\"%s\" is not a number", s);
		return -1;
	}
	return 0;
}

static int
set_bool(struct cfg_ctx *ctx, const struct cfg_line *l, bool *out)
{
	const char *v = l->tok[1].s;

	if (strcmp(v, "on") == 0)
		*out = true;
	else if (strcmp(v, "off") == 0)
		*out = false;
	else {
		cfg_error(ctx, l, 1, "%s: expected on or off, not \"%s\"",
		    l->tok[0].s, v);
		return -1;
	}
	return 0;
}

/* Letters, digits and inner hyphens per label; no trailing dot. */
static bool
valid_hostname(const char *s)
{
	size_t len = strlen(s), lab = 0, i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (lab == 0 || lab > 63 || s[i - 1] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c == '-' && lab > 0)))
			return false;
		lab++;
	}
	return true;
}

/* ---- paths ---- */

/* Absolute form of value tok of line l (relative to the file's dir). */
static char *
abs_path(struct cfg_ctx *ctx, const struct cfg_line *l, int tok)
{
	const char *v = l->tok[tok].s;
	char buf[PATH_MAX];
	int n;

	if (v[0] == '\0') {
		cfg_error(ctx, l, tok, "%s: empty path", l->tok[0].s);
		return NULL;
	}
	if (v[0] == '/')
		n = snprintf(buf, sizeof(buf), "%s", v);
	else
		n = snprintf(buf, sizeof(buf), "%s%s%s", l->file->dir,
		    strcmp(l->file->dir, "/") == 0 ? "" : "/", v);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		cfg_error(ctx, l, tok, "%s: path longer than %d bytes",
		    l->tok[0].s, PATH_MAX - 1);
		return NULL;
	}
	return strdup(buf);
}

/* Resolved path of a file that must exist and be readable now, so that
 * `check` catches a typo before a reload does. The module that reads it
 * later opens it through pol_file_open again: this only reports early,
 * with the keyword's position. */
static char *
readable_file(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	char *p = abs_path(ctx, l, 1), err[GW_ERRLEN];
	struct stat st;
	int fd;

	if (p == NULL)
		return NULL;
	if ((fd = pol_file_open(p, 0, &st, err, sizeof(err))) == -1) {
		cfg_error(ctx, l, 1, "%s: %s: %s", l->tok[0].s, p, err);
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

/* A log destination: "-" (standard stream), "off" when allowed (NULL),
 * or a path whose directory exists. */
static int
set_log(struct cfg_ctx *ctx, const struct cfg_line *l, char **out,
    bool allow_off)
{
	const char *v = l->tok[1].s;
	struct stat st;
	char *p, *slash;

	if (strcmp(v, "off") == 0) {
		if (!allow_off) {	/* not a file named "off" by surprise */
			cfg_error(ctx, l, 1, "%s cannot be off: give a PATH or "
			    "- for the standard stream", l->tok[0].s);
			return -1;
		}
		free(*out);
		*out = NULL;
		return 0;
	}
	if (strcmp(v, "-") == 0)
		p = strdup("-");
	else if ((p = abs_path(ctx, l, 1)) == NULL)
		return -1;
	if (p == NULL) {
		cfg_error(ctx, l, 1, "%s: out of memory", l->tok[0].s);
		return -1;
	}
	if ((slash = strrchr(p, '/')) != NULL && slash != p) {
		*slash = '\0';
		/* EACCES: the privsep child may not look into a root-only
		 * folder; the parent, which opens the file, judged it */
		if (stat(p, &st) == -1 ? errno != EACCES : !S_ISDIR(st.st_mode)) {
			cfg_error(ctx, l, 1, "%s: directory %s does not exist",
			    l->tok[0].s, p);
			free(p);
			return -1;
		}
		*slash = '/';
	}
	free(*out);
	*out = p;
	return 0;
}

/* ---- handlers: addresses and TLS ---- */

static int
kw_listen(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	struct gw_config *cfg = ctx->cfg;
	char err[GW_ERRLEN];
	struct gw_addr a;
	size_t i;

	if (cfg->nlisten == GW_MAX_LISTEN) {
		cfg_error(ctx, l, 0, "listen: too many listen lines (max %d)",
		    GW_MAX_LISTEN);
		return -1;
	}
	if (gw_parse_hostport(l->tok[1].s, &a, err, sizeof(err)) == -1) {
		cfg_error(ctx, l, 1, "listen: %s", err);
		return -1;
	}
	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].sslen == a.sslen &&
		    memcmp(&cfg->listen[i].ss, &a.ss, a.sslen) == 0) {
			cfg_error(ctx, l, 1, "listen: %s is already listed at "
			    "%s:%u", a.text, ctx->listen_pos[i].file,
			    ctx->listen_pos[i].line);
			return -1;
		}
	}
	ctx->listen_pos[cfg->nlisten] = cfg_pos_of(l, 1);
	cfg->listen[cfg->nlisten++] = a;
	return 0;
}

static int
kw_admin_listen(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	char err[GW_ERRLEN];

	if (gw_parse_hostport(l->tok[1].s, &ctx->cfg->admin_listen, err,
	    sizeof(err)) == -1) {
		cfg_error(ctx, l, 1, "admin_listen: %s", err);
		return -1;
	}
	ctx->cfg->has_admin = true;
	ctx->admin_pos = cfg_pos_of(l, 1);
	return 0;
}

static int
kw_tls_cert(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	char *p;

	if (ctx->ncert_lines == GW_MAX_CERTS) {
		cfg_error(ctx, l, 0, "tls_cert: too many certificates (max %d)",
		    GW_MAX_CERTS);
		return -1;
	}
	if ((p = readable_file(ctx, l)) == NULL)
		return -1;
	ctx->cert_pos[ctx->ncert_lines] = cfg_pos_of(l, 1);
	ctx->cfg->certs[ctx->ncert_lines++].cert_file = p;
	return 0;
}

static int
kw_tls_key(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	char *p;

	if (ctx->nkey_lines == GW_MAX_CERTS) {
		cfg_error(ctx, l, 0, "tls_key: too many keys (max %d)",
		    GW_MAX_CERTS);
		return -1;
	}
	if ((p = readable_file(ctx, l)) == NULL)
		return -1;
	ctx->key_pos[ctx->nkey_lines] = cfg_pos_of(l, 1);
	ctx->cfg->certs[ctx->nkey_lines++].key_file = p;
	return 0;
}

static int
kw_trusted_proxy(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	struct gw_config *cfg = ctx->cfg;
	char err[GW_ERRLEN];
	bool hostbits;

	if (cfg->ntrusted == GW_MAX_TRUSTED) {
		cfg_error(ctx, l, 0, "trusted_proxy: too many entries (max %d)",
		    GW_MAX_TRUSTED);
		return -1;
	}
	if (gw_parse_cidr(l->tok[1].s, &cfg->trusted[cfg->ntrusted],
	    &hostbits, err, sizeof(err)) == -1) {
		cfg_error(ctx, l, 1, "trusted_proxy: %s", err);
		return -1;
	}
	if (hostbits)
		cfg_warn(ctx, l, 1, "trusted_proxy: \"%s\" has host bits set "
		    "after the prefix; they are ignored", l->tok[1].s);
	cfg->ntrusted++;
	return 0;
}

static int
kw_proxy_protocol(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	ctx->proxy_pos = cfg_pos_of(l, 1);
	return set_bool(ctx, l, &ctx->cfg->proxy_protocol);
}

/* ---- handlers: upstream ---- */

static int
parse_port16(const char *s, uint16_t *port)
{
	uint64_t v;
	const char *end;
	char err[64];

	if (parse_u64(s, &v, &end, err, sizeof(err)) == -1 || *end != '\0' ||
	    v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Splits the authority "host", "host:port", "[v6]" or "[v6]:port". */
static int
split_authority(char *auth, char **host, char **port, bool *v6, char *err,
    size_t errlen)
{
	struct in6_addr a6;
	char *c;

	*port = NULL;
	*v6 = auth[0] == '[';
	if (*v6) {
		if ((c = strchr(auth, ']')) == NULL) {
			snprintf(err, errlen, "missing ']' after IPv6 address");
			return -1;
		}
		*c++ = '\0';
		*host = auth + 1;
		if (*c == ':')
			*port = c + 1;
		else if (*c != '\0') {
			snprintf(err, errlen, "':' expected after ']'");
			return -1;
		}
		if (inet_pton(AF_INET6, *host, &a6) != 1) {
			snprintf(err, errlen, "\"%s\" is not an IPv6 address",
			    *host);
			return -1;
		}
		return 0;
	}
	*host = auth;
	if ((c = strchr(auth, ':')) != NULL) {
		if (strchr(c + 1, ':') != NULL) {
			snprintf(err, errlen, "an IPv6 address must be in "
			    "brackets: http://[::1]:5000");
			return -1;
		}
		*c = '\0';
		*port = c + 1;
	}
	return 0;
}

static int
check_upstream_host(const char *host, char *err, size_t errlen)
{
	struct in_addr a4;

	if (host[0] == '\0') {
		snprintf(err, errlen, "missing host");
		return -1;
	}
	if (strspn(host, "0123456789.") == strlen(host)) {
		if (inet_pton(AF_INET, host, &a4) == 1)
			return 0;
		snprintf(err, errlen, "\"%s\" is not an IPv4 address", host);
		return -1;
	}
	if (!valid_hostname(host)) {
		snprintf(err, errlen, "\"%s\" is not a valid host name", host);
		return -1;
	}
	return 0;
}

/* http[s]://host[:port][/] only: the gateway forwards paths unchanged,
 * so a base path, credentials or a query would be silently lost. */
static int
parse_upstream(const char *url, struct gw_upstream *up, char *err,
    size_t errlen)
{
	char buf[256], *auth, *slash, *host, *port;
	size_t skip;
	bool v6;

	if (strncasecmp(url, "http://", 7) == 0)
		up->tls = false, skip = 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		up->tls = true, skip = 8;
	else {
		snprintf(err, errlen, "\"%s\" must start with http:// or "
		    "https://", url);
		return -1;
	}
	if (strlen(url) >= sizeof(buf)) {
		snprintf(err, errlen, "URL longer than %zu bytes",
		    sizeof(buf) - 1);
		return -1;
	}
	if (strpbrk(url, "?#") != NULL) {
		snprintf(err, errlen, "a query or fragment is not allowed in "
		    "\"%s\"", url);
		return -1;
	}
	memcpy(buf, url + skip, strlen(url + skip) + 1);	/* checked above */
	auth = buf;
	if ((slash = strchr(auth, '/')) != NULL) {
		if (slash[1] != '\0') {
			snprintf(err, errlen, "path \"%s\" is not supported: "
			    "give only scheme, host and port", slash);
			return -1;
		}
		*slash = '\0';
	}
	if (strchr(auth, '@') != NULL) {
		snprintf(err, errlen, "user info (user@) is not allowed in "
		    "\"%s\"", url);
		return -1;
	}
	if (split_authority(auth, &host, &port, &v6, err, errlen) == -1)
		return -1;
	if (!v6 && check_upstream_host(host, err, errlen) == -1)
		return -1;
	up->port = up->tls ? 443 : 80;
	if (port != NULL && parse_port16(port, &up->port) == -1) {
		snprintf(err, errlen, "bad port \"%s\": expected a number from "
		    "1 to 65535", port);
		return -1;
	}
	up->url = strdup(url);
	up->host = strdup(host);
	up->sni = strdup(host);
	if (asprintf(&up->hostport, v6 ? "[%s]:%u" : "%s:%u", host,
	    up->port) == -1)
		up->hostport = NULL;
	if (!up->url || !up->host || !up->sni || !up->hostport) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
kw_upstream(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	char err[GW_ERRLEN];

	if (parse_upstream(l->tok[1].s, &ctx->cfg->upstream, err,
	    sizeof(err)) == -1) {
		cfg_error(ctx, l, 1, "upstream: %s", err);
		return -1;
	}
	ctx->upstream_pos = cfg_pos_of(l, 1);
	return 0;
}

static int
kw_upstream_ca(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	if ((ctx->cfg->upstream.ca_file = readable_file(ctx, l)) == NULL)
		return -1;
	ctx->ca_pos = cfg_pos_of(l, 1);
	return 0;
}

static int
kw_upstream_verify(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	ctx->verify_pos = cfg_pos_of(l, 1);
	return set_bool(ctx, l, &ctx->cfg->upstream.verify);
}

/* ---- handlers: process ---- */

static int
kw_workers(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	char err[GW_ERRLEN];
	uint64_t v;

	if (strcmp(l->tok[1].s, "auto") == 0)
		return 0;	/* the default already is the core count */
	if (parse_count(l->tok[1].s, &v, err, sizeof(err)) == -1) {
		cfg_error(ctx, l, 1, "workers: %s; use 1 to 64 or auto", err);
		return -1;
	}
	if (v < 1 || v > 64) {
		cfg_error(ctx, l, 1, "workers: %s is out of range (1 to 64, "
		    "or auto)", l->tok[1].s);
		return -1;
	}
	ctx->cfg->workers = (int)v;
	return 0;
}

static int
kw_user(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(l->tok[1].s, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		cfg_error(ctx, l, 1, "user: no such user \"%s\"", l->tok[1].s);
		return -1;
	}
	if ((ctx->cfg->user = strdup(l->tok[1].s)) == NULL) {
		cfg_error(ctx, l, 1, "user: out of memory");
		return -1;
	}
	return 0;
}

static int
kw_access_log(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	return set_log(ctx, l, &ctx->cfg->access_log, true);
}

static int
kw_error_log(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	const char *v = l->tok[1].s;
	char *p;

	/* the system logger and the journal, not files in the config's folder */
	if (strcmp(v, "syslog") != 0 && strcmp(v, "journal") != 0)
		return set_log(ctx, l, &ctx->cfg->error_log, false);
	if ((p = strdup(v)) == NULL) {
		cfg_error(ctx, l, 1, "error_log: out of memory");
		return -1;
	}
	free(ctx->cfg->error_log);
	ctx->cfg->error_log = p;
	return 0;
}

static int
kw_audit_log(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	return set_log(ctx, l, &ctx->cfg->audit_log, true);
}

/* Every name a request's Host may carry; the first is the public name. */
static int
kw_server_name(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	struct gw_config *cfg = ctx->cfg;
	int n = l->ntok - 1;

	if ((cfg->server_names = calloc((size_t)n, sizeof(char *))) == NULL) {
		cfg_error(ctx, l, 1, "server_name: out of memory");
		return -1;
	}
	for (int i = 1; i <= n; i++) {
		char *s;
		if (!valid_hostname(l->tok[i].s)) {
			cfg_error(ctx, l, i, "server_name: \"%s\" is not a valid "
			    "host name", l->tok[i].s);
			return -1;
		}
		if ((s = strdup(l->tok[i].s)) == NULL) {
			cfg_error(ctx, l, i, "server_name: out of memory");
			return -1;
		}
		for (char *p = s; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		cfg->server_names[cfg->nserver_names++] = s;
	}
	if (n < 1 || (cfg->server_name = strdup(cfg->server_names[0])) == NULL) {
		cfg_error(ctx, l, 1, "server_name: out of memory");
		return -1;
	}
	return 0;
}

/* A header of the rewrite / method-override / client-address class that
 * the upstream must see anyway (relay_spoof.c lists the class). */
static int
kw_forward_header(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	struct gw_config *cfg = ctx->cfg;
	const char *name = l->tok[1].s;
	char **v, *s;

	if (!gw_spoof_keepable(name)) {
		cfg_error(ctx, l, 1, "forward_header: \"%s\" is not a header the "
		    "gateway drops by default, or is one it sets itself; see "
		    "forward_header in docs/configuration.md", name);
		return -1;
	}
	v = reallocarray(cfg->fwd_keep, cfg->nfwd_keep + 1, sizeof(*v));
	if (v == NULL || (s = strdup(name)) == NULL) {
		if (v != NULL)
			cfg->fwd_keep = v;
		cfg_error(ctx, l, 1, "forward_header: out of memory");
		return -1;
	}
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	cfg->fwd_keep = v;
	cfg->fwd_keep[cfg->nfwd_keep++] = s;
	return 0;
}

static int
kw_hsts(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	return set_bool(ctx, l, &ctx->cfg->hsts);
}

/* ---- handlers: numbers ---- */

enum numkind { NUM_DURATION, NUM_SIZE, NUM_COUNT };

/* Parses value 1 as `kind` and checks lo..hi; range is the human text. */
static int
set_num(struct cfg_ctx *ctx, const struct cfg_line *l, enum numkind kind,
    uint64_t lo, uint64_t hi, const char *range, uint64_t *out)
{
	char err[GW_ERRLEN];
	int r;

	if (kind == NUM_DURATION)
		r = parse_duration(l->tok[1].s, out, err, sizeof(err));
	else if (kind == NUM_SIZE)
		r = parse_size(l->tok[1].s, out, err, sizeof(err));
	else
		r = parse_count(l->tok[1].s, out, err, sizeof(err));
	if (r == -1) {
		cfg_error(ctx, l, 1, "%s: %s", l->tok[0].s, err);
		return -1;
	}
	if (*out < lo || *out > hi) {
		cfg_error(ctx, l, 1, "%s: %s is out of range (%s)", l->tok[0].s,
		    l->tok[1].s, range);
		return -1;
	}
	return 0;
}

#define NUM_KW(fn, kind, lo, hi, range, type, field)			\
static int								\
fn(struct cfg_ctx *ctx, const struct cfg_line *l)			\
{									\
	uint64_t v;							\
	if (set_num(ctx, l, kind, lo, hi, range, &v) == -1)		\
		return -1;						\
	ctx->cfg->field = (type)v;					\
	return 0;							\
}

NUM_KW(kw_hsts_max_age, NUM_COUNT, 0, 315360000, "0 to 315360000",
    unsigned, hsts_max_age)
NUM_KW(kw_header_timeout, NUM_DURATION, 100, MS_H, "100ms to 1h",
    unsigned, to.header)
NUM_KW(kw_body_timeout, NUM_DURATION, 100, MS_H, "100ms to 1h",
    unsigned, to.body)
NUM_KW(kw_idle_timeout, NUM_DURATION, 100, MS_H, "100ms to 1h",
    unsigned, to.idle)
NUM_KW(kw_upstream_connect_timeout, NUM_DURATION, 100, 5 * MS_M,
    "100ms to 5m", unsigned, to.upstream_connect)
NUM_KW(kw_upstream_timeout, NUM_DURATION, 100, 24 * MS_H, "100ms to 24h",
    unsigned, to.upstream)
NUM_KW(kw_websocket_idle_timeout, NUM_DURATION, MS_S, 24 * MS_H,
    "1s to 24h", unsigned, to.ws_idle)
NUM_KW(kw_shutdown_timeout, NUM_DURATION, 0, MS_H, "0 to 1h",
    unsigned, to.shutdown)
NUM_KW(kw_tls_handshake_timeout, NUM_DURATION, 100, 5 * MS_M,
    "100ms to 5m", unsigned, to.tls_handshake)
NUM_KW(kw_max_request_line, NUM_SIZE, 256, 64 * KIB, "256 to 64k",
    size_t, lim.request_line)
NUM_KW(kw_max_header_size, NUM_SIZE, 256, 64 * KIB, "256 to 64k",
    size_t, lim.header_size)
NUM_KW(kw_max_headers_size, NUM_SIZE, KIB, MIB, "1k to 1m",
    size_t, lim.header_total)
NUM_KW(kw_max_headers, NUM_COUNT, 1, 1000, "1 to 1000",
    unsigned, lim.headers)
NUM_KW(kw_max_body_size, NUM_SIZE, 0, 1024 * GIB, "0 to 1024g",
    uint64_t, lim.body)
NUM_KW(kw_max_connections, NUM_COUNT, 1, 1000000, "1 to 1000000",
    unsigned, lim.connections)
NUM_KW(kw_max_connections_per_ip, NUM_COUNT, 1, 1000000, "1 to 1000000",
    unsigned, lim.connections_per_ip)
NUM_KW(kw_max_established_per_ip, NUM_COUNT, 1, 1000000, "1 to 1000000",
    unsigned, lim.established_per_ip)
NUM_KW(kw_upstream_keepalive, NUM_COUNT, 0, 10000, "0 to 10000",
    unsigned, lim.upstream_keepalive)
NUM_KW(kw_max_requests_per_connection, NUM_COUNT, 1, 1000000,
    "1 to 1000000", unsigned, lim.requests_per_conn)

/* Remembers where the two limits that cross-checks compare were set. */
static int
kw_max_header_size_pos(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	ctx->header_size_pos = cfg_pos_of(l, 1);
	return kw_max_header_size(ctx, l);
}

static int
kw_max_connections_per_ip_pos(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	ctx->conn_ip_pos = cfg_pos_of(l, 1);
	return kw_max_connections_per_ip(ctx, l);
}

/* ---- handlers: lockdown ---- */

static int
kw_policy(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	if ((ctx->cfg->policy_file = readable_file(ctx, l)) == NULL)
		return -1;
	ctx->policy_pos = cfg_pos_of(l, 1);
	return 0;
}

static int
kw_geoip_db(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	if ((ctx->cfg->geoip_db = readable_file(ctx, l)) == NULL)
		return -1;
	ctx->geoip_pos = cfg_pos_of(l, 1);
	return 0;
}

/* ---- the table ---- */

static const struct cfg_keyword keywords[] = {
	{ "include", "FILE", 1, 1, true, cfg_kw_include },
	{ "listen", "ADDR:PORT", 1, 1, true, kw_listen },
	{ "admin_listen", "ADDR:PORT", 1, 1, false, kw_admin_listen },
	{ "tls_cert", "FILE", 1, 1, true, kw_tls_cert },
	{ "tls_key", "FILE", 1, 1, true, kw_tls_key },
	{ "upstream", "URL", 1, 1, false, kw_upstream },
	{ "upstream_ca", "FILE", 1, 1, false, kw_upstream_ca },
	{ "upstream_verify", "on|off", 1, 1, false, kw_upstream_verify },
	{ "trusted_proxy", "CIDR", 1, 1, true, kw_trusted_proxy },
	{ "proxy_protocol", "on|off", 1, 1, false, kw_proxy_protocol },
	{ "workers", "N|auto", 1, 1, false, kw_workers },
	{ "user", "NAME", 1, 1, false, kw_user },
	{ "access_log", "PATH|off|-", 1, 1, false, kw_access_log },
	{ "error_log", "PATH|-|syslog|journal", 1, 1, false, kw_error_log },
	{ "audit_log", "PATH|off", 1, 1, false, kw_audit_log },
	{ "server_name", "NAME...", 1, 16, false, kw_server_name },
	{ "forward_header", "NAME", 1, 1, true, kw_forward_header },
	{ "hsts", "on|off", 1, 1, false, kw_hsts },
	{ "hsts_max_age", "SECONDS", 1, 1, false, kw_hsts_max_age },
	{ "header_timeout", "DURATION", 1, 1, false, kw_header_timeout },
	{ "body_timeout", "DURATION", 1, 1, false, kw_body_timeout },
	{ "idle_timeout", "DURATION", 1, 1, false, kw_idle_timeout },
	{ "upstream_connect_timeout", "DURATION", 1, 1, false,
	    kw_upstream_connect_timeout },
	{ "upstream_timeout", "DURATION", 1, 1, false, kw_upstream_timeout },
	{ "websocket_idle_timeout", "DURATION", 1, 1, false,
	    kw_websocket_idle_timeout },
	{ "shutdown_timeout", "DURATION", 1, 1, false, kw_shutdown_timeout },
	{ "tls_handshake_timeout", "DURATION", 1, 1, false,
	    kw_tls_handshake_timeout },
	{ "max_request_line", "SIZE", 1, 1, false, kw_max_request_line },
	{ "max_header_size", "SIZE", 1, 1, false, kw_max_header_size_pos },
	{ "max_headers_size", "SIZE", 1, 1, false, kw_max_headers_size },
	{ "max_headers", "COUNT", 1, 1, false, kw_max_headers },
	{ "max_body_size", "SIZE", 1, 1, false, kw_max_body_size },
	{ "max_connections", "COUNT", 1, 1, false, kw_max_connections },
	{ "max_connections_per_ip", "COUNT", 1, 1, false,
	    kw_max_connections_per_ip_pos },
	{ "max_established_per_ip", "COUNT", 1, 1, false,
	    kw_max_established_per_ip },
	{ "upstream_keepalive", "COUNT", 1, 1, false, kw_upstream_keepalive },
	{ "max_requests_per_connection", "COUNT", 1, 1, false,
	    kw_max_requests_per_connection },
	{ "policy", "FILE", 1, 1, false, kw_policy },
	{ "geoip_db", "FILE", 1, 1, false, kw_geoip_db },
};

const struct cfg_keyword *
cfg_keyword_find(const char *name, size_t *idx)
{
	size_t i;

	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strcmp(keywords[i].name, name) == 0) {
			*idx = i;
			return &keywords[i];
		}
	}
	return NULL;
}

size_t
cfg_keyword_count(void)
{
	return sizeof(keywords) / sizeof(keywords[0]);
}

const struct cfg_keyword *
cfg_keyword_at(size_t i)
{
	return i < cfg_keyword_count() ? &keywords[i] : NULL;
}

/* ---- cross-checks after the whole file ---- */

static void
check_certs(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	struct cfg_pos top = { ctx->main_name, 1, 1 };
	size_t i;

	for (i = ctx->nkey_lines; i < ctx->ncert_lines; i++)
		cfg_error_at(ctx, &ctx->cert_pos[i], "tls_cert %s has no "
		    "matching tls_key (certificates and keys pair in order)",
		    cfg->certs[i].cert_file);
	for (i = ctx->ncert_lines; i < ctx->nkey_lines; i++)
		cfg_error_at(ctx, &ctx->key_pos[i], "tls_key %s has no "
		    "matching tls_cert (certificates and keys pair in order)",
		    cfg->certs[i].key_file);
	cfg->ncerts = ctx->ncert_lines < ctx->nkey_lines ?
	    ctx->ncert_lines : ctx->nkey_lines;
	if (ctx->ncert_lines == 0 && ctx->nkey_lines == 0)
		cfg_error_at(ctx, &top, "no tls_cert/tls_key pair: pbxgate "
		    "serves HTTPS only; add tls_cert FILE and tls_key FILE");
}

/* Plain HTTP is fine to a PBX on the same machine, not across a network. */
static bool
host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

static void
check_upstream(struct cfg_ctx *ctx)
{
	struct gw_upstream *up = &ctx->cfg->upstream;
	struct cfg_pos top = { ctx->main_name, 1, 1 };

	if (up->url == NULL) {
		cfg_error_at(ctx, &top, "no upstream: add e.g. "
		    "\"upstream http://127.0.0.1:5000\"");
		return;
	}
	if (!up->tls && up->ca_file != NULL)
		cfg_error_at(ctx, &ctx->ca_pos, "upstream_ca is set but "
		    "upstream %s does not use TLS", up->url);
	if (!up->tls && !host_is_loopback(up->host))
		cfg_warn_at(ctx, &ctx->upstream_pos, "upstream %s is plain HTTP "
		    "to another host: logins cross the network in clear; use "
		    "https:// unless the link is private", up->url);
	if (!up->tls && !up->verify)
		cfg_warn_at(ctx, &ctx->verify_pos, "upstream_verify off has no "
		    "effect: upstream %s does not use TLS", up->url);
	if (up->tls && !up->verify)
		cfg_warn_at(ctx, &ctx->verify_pos, "upstream_verify off: the "
		    "certificate of %s is not checked, anyone on the path can "
		    "impersonate it", up->url);
	if (up->tls && !up->verify && up->ca_file != NULL)
		cfg_warn_at(ctx, &ctx->ca_pos, "upstream_ca is ignored while "
		    "upstream_verify is off");
}

/* Same port and the same address, or a wildcard on either side. */
static bool
addr_overlap(const struct gw_addr *a, const struct gw_addr *b)
{
	const struct sockaddr_in *a4 = (const void *)&a->ss, *b4 = (const void *)&b->ss;
	const struct sockaddr_in6 *a6 = (const void *)&a->ss, *b6 = (const void *)&b->ss;
	bool awild, bwild;
	uint16_t ap, bp;

	ap = a->ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port;
	bp = b->ss.ss_family == AF_INET ? b4->sin_port : b6->sin6_port;
	if (ap != bp)
		return false;
	awild = a->ss.ss_family == AF_INET ?
	    a4->sin_addr.s_addr == htonl(INADDR_ANY) :
	    IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
	bwild = b->ss.ss_family == AF_INET ?
	    b4->sin_addr.s_addr == htonl(INADDR_ANY) :
	    IN6_IS_ADDR_UNSPECIFIED(&b6->sin6_addr);
	if (awild || bwild)
		return true;
	return a->sslen == b->sslen && memcmp(&a->ss, &b->ss, a->sslen) == 0;
}

/* The mail module binds smtp_listen beside our sockets: the same port
 * would make one of the two binds fail at start, or share it silently. */
static void
check_smtp_overlap(struct cfg_ctx *ctx)
{
	const struct mail_settings *m = &ctx->cfg->mail;
	struct gw_config *cfg = ctx->cfg;
	struct gw_addr a;
	size_t i, j;

	for (j = 0; j < m->nlisten && j < MAIL_MAX_LISTEN; j++) {
		memset(&a, 0, sizeof(a));
		memcpy(&a.ss, &m->listen[j], sizeof(a.ss));
		a.sslen = m->listen_len[j];
		for (i = 0; i < cfg->nlisten; i++)
			if (addr_overlap(&a, &cfg->listen[i]))
				cfg_error_at(ctx, &ctx->listen_pos[i], "listen %s "
				    "overlaps smtp_listen %s: use another port",
				    cfg->listen[i].text, m->listen_text[j]);
		if (cfg->has_admin && addr_overlap(&a, &cfg->admin_listen))
			cfg_error_at(ctx, &ctx->admin_pos, "admin_listen %s "
			    "overlaps smtp_listen %s: use another port",
			    cfg->admin_listen.text, m->listen_text[j]);
	}
}

static void
check_listen(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	struct cfg_pos top = { ctx->main_name, 1, 1 };
	size_t i;

	if (cfg->nlisten == 0)
		cfg_error_at(ctx, &top, "no listen address: add e.g. "
		    "\"listen 127.0.0.1:8443\"");
	check_smtp_overlap(ctx);
	if (!cfg->has_admin)
		return;
	for (i = 0; i < cfg->nlisten; i++) {
		if (addr_overlap(&cfg->admin_listen, &cfg->listen[i])) {
			cfg_error_at(ctx, &ctx->admin_pos, "admin_listen %s "
			    "overlaps listen %s at %s:%u: use another port",
			    cfg->admin_listen.text, cfg->listen[i].text,
			    ctx->listen_pos[i].file, ctx->listen_pos[i].line);
			return;
		}
	}
}

static void
check_limits(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	struct cfg_pos top = { ctx->main_name, 1, 1 };
	const struct cfg_pos *p;

	if (cfg->lim.header_size > cfg->lim.header_total) {
		p = ctx->header_size_pos.file ? &ctx->header_size_pos : &top;
		cfg_error_at(ctx, p, "max_header_size (%zu) is larger than "
		    "max_headers_size (%zu)", cfg->lim.header_size,
		    cfg->lim.header_total);
	}
	if (cfg->lim.connections_per_ip > cfg->lim.connections) {
		p = ctx->conn_ip_pos.file ? &ctx->conn_ip_pos : &top;
		cfg_warn_at(ctx, p, "max_connections_per_ip (%u) is larger "
		    "than max_connections (%u)", cfg->lim.connections_per_ip,
		    cfg->lim.connections);
	}
	if (cfg->lim.connections_per_ip > cfg->lim.established_per_ip) {
		p = ctx->conn_ip_pos.file ? &ctx->conn_ip_pos : &top;
		cfg_warn_at(ctx, p, "max_connections_per_ip (%u) is larger "
		    "than max_established_per_ip (%u): the smaller caps both",
		    cfg->lim.connections_per_ip, cfg->lim.established_per_ip);
	}
	if (cfg->proxy_protocol && cfg->ntrusted == 0)
		cfg_error_at(ctx, &ctx->proxy_pos, "proxy_protocol on needs "
		    "at least one "
		    "trusted_proxy: PROXY headers are only read from them");
	if (cfg->geoip_db != NULL && cfg->policy_file == NULL)
		cfg_warn_at(ctx, &ctx->geoip_pos, "geoip_db is set but there is "
		    "no policy to use it");
}

void
cfg_check_all(struct cfg_ctx *ctx)
{
	check_listen(ctx);
	check_certs(ctx);
	check_upstream(ctx);
	check_limits(ctx);
}
