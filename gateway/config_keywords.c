/* config_keywords.c -- the gateway's config keywords: their table (the
 * struct pol_keyword shape the auth and mail tables share), the handlers of
 * those that are not a plain DURATION, SIZE, COUNT or on|off, their
 * defaults, and the whole-file cross-checks. */
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
	cfg->ticket_rotate = 12 * MS_H;
	auth_settings_defaults(&cfg->auth);
	mail_settings_defaults(&cfg->mail);
}

/* ---- handlers' view of the parser ---- */

/* A setter of this table runs inside the gateway's parser: its context
 * (and the line being applied) reports errors at the right token. */
static struct cfg_ctx *
ctx_of(struct pol_kw_call *c)
{
	return c->parser;
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
 * with the keyword's position. `oflags` adds open flags (O_NOFOLLOW for a
 * secret, so that the privsep parent records the file itself). */
static char *
readable_file(struct pol_kw_call *c, int oflags)
{
	struct cfg_ctx *ctx = ctx_of(c);
	const struct cfg_line *l = ctx->line;
	char *p = abs_path(ctx, l, 1), err[GW_ERRLEN];
	struct stat st;
	int fd;

	if (p == NULL)
		return NULL;
	if ((fd = pol_file_open(p, oflags, &st, err, sizeof(err))) == -1) {
		cfg_error(ctx, l, 1, "%s: %s: %s", l->tok[0].s, p, err);
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

/* A FILE keyword: the file must be readable when the config is loaded. */
static int
set_file(struct pol_kw_call *c, char **out)
{
	free(*out);
	*out = readable_file(c, 0);
	return *out == NULL ? -1 : 0;
}

/* A log destination: "-" (standard stream), "off" when allowed (NULL),
 * or a path whose directory exists. */
static int
set_log(struct pol_kw_call *c, char **out, bool allow_off)
{
	struct cfg_ctx *ctx = ctx_of(c);
	const struct cfg_line *l = ctx->line;
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

/* A repeatable keyword that fills a fixed array: its line n + 1 of max. */
static int
room_for(struct pol_kw_call *c, size_t n, size_t max)
{
	if (n < max)
		return 0;
	c->bad = -1;
	snprintf(c->err, c->errlen, "too many %s lines (max %zu)", c->name,
	    max);
	return -1;
}

static int
kw_listen(struct pol_kw_call *c)
{
	struct cfg_ctx *ctx = ctx_of(c);
	struct gw_config *cfg = ctx->cfg;
	const struct cfg_pos *at;
	struct gw_addr a;
	size_t i;

	if (room_for(c, cfg->nlisten, GW_MAX_LISTEN) == -1)
		return -1;
	if (gw_parse_hostport(c->argv[0], &a, c->err, c->errlen) == -1)
		return -1;
	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].sslen == a.sslen &&
		    memcmp(&cfg->listen[i].ss, &a.ss, a.sslen) == 0 &&
		    (at = cfg_where(ctx, "listen", i)) != NULL) {
			snprintf(c->err, c->errlen, "%s is already listed at "
			    "%s:%u", a.text, at->file, at->line);
			return -1;
		}
	}
	cfg->listen[cfg->nlisten++] = a;
	return 0;
}

/* Setters that fill c->err get "KEYWORD: " and the value's position from
 * the parser; the others report through ctx themselves. */
static int
kw_admin_listen(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;

	if (gw_parse_hostport(c->argv[0], &cfg->admin_listen, c->err,
	    c->errlen) == -1)
		return -1;
	cfg->has_admin = true;
	return 0;
}

/* tls_cert and tls_key lines pair in order: the nth of each makes the
 * nth certificate (checked once the whole file is read). */
static int
add_tls_file(struct pol_kw_call *c, size_t *nlines, bool key)
{
	struct gw_certpair *slot;
	char *p;

	if (room_for(c, *nlines, GW_MAX_CERTS) == -1)
		return -1;
	if ((p = readable_file(c, 0)) == NULL)
		return -1;
	slot = &ctx_of(c)->cfg->certs[(*nlines)++];
	if (key)
		slot->key_file = p;
	else
		slot->cert_file = p;
	return 0;
}

static int
kw_tls_cert(struct pol_kw_call *c)
{
	return add_tls_file(c, &ctx_of(c)->ncert_lines, false);
}

static int
kw_tls_key(struct pol_kw_call *c)
{
	return add_tls_file(c, &ctx_of(c)->nkey_lines, true);
}

/* The secret is read (and its size and mode judged) when the TLS contexts
 * are built, by `check` too; here only its path. */
static int
kw_tls_ticket_key_file(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;
	char *p = readable_file(c, O_NOFOLLOW);

	if (p == NULL)
		return -1;
	free(cfg->ticket_key_file);
	cfg->ticket_key_file = p;
	return 0;
}

static int
kw_trusted_proxy(struct pol_kw_call *c)
{
	struct cfg_ctx *ctx = ctx_of(c);
	struct gw_config *cfg = ctx->cfg;

	if (room_for(c, cfg->ntrusted, GW_MAX_TRUSTED) == -1)
		return -1;
	if (pol_cidr_parse(c->argv[0], &cfg->trusted[cfg->ntrusted], c->err,
	    c->errlen) == -1)
		return -1;
	cfg->ntrusted++;
	return 0;
}

/* ---- handlers: upstream ---- */

static int
parse_port16(const char *s, uint16_t *port)
{
	uint64_t v;
	char err[GW_ERRLEN];

	if (pol_value_parse(POL_KIND_COUNT, s, &v, err, sizeof(err)) == -1 ||
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
	struct pol_addr a;
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
		if (pol_addr_parse(*host, strlen(*host), &a) == -1 ||
		    strchr(*host, ':') == NULL) {
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
	struct pol_addr a;

	if (host[0] == '\0') {
		snprintf(err, errlen, "missing host");
		return -1;
	}
	if (strspn(host, "0123456789.") == strlen(host)) {
		if (pol_addr_parse(host, strlen(host), &a) == 0)
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
kw_upstream(struct pol_kw_call *c)
{
	return parse_upstream(c->argv[0], &ctx_of(c)->cfg->upstream, c->err,
	    c->errlen);
}

static int
kw_upstream_ca(struct pol_kw_call *c)
{
	return set_file(c, &ctx_of(c)->cfg->upstream.ca_file);
}

/* ---- handlers: process ---- */

static int
kw_workers(struct pol_kw_call *c)
{
	const char *v = c->argv[0];
	uint64_t n;

	if (strcmp(v, "auto") == 0)
		return 0;	/* the default already is the core count */
	if (pol_value_parse(POL_KIND_COUNT, v, &n, c->err, c->errlen) == -1) {
		snprintf(c->err, c->errlen, "\"%s\" is not a number; use 1 to 64 "
		    "or auto", v);
		return -1;
	}
	if (n < 1 || n > 64) {
		snprintf(c->err, c->errlen, "%s is out of range (1 to 64, or "
		    "auto)", v);
		return -1;
	}
	ctx_of(c)->cfg->workers = (int)n;
	return 0;
}

static int
kw_user(struct pol_kw_call *c)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(c->argv[0], &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		snprintf(c->err, c->errlen, "no such user \"%s\"", c->argv[0]);
		return -1;
	}
	if ((ctx_of(c)->cfg->user = strdup(c->argv[0])) == NULL) {
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* access_log and audit_log may be off; error_log may not. */
static int
kw_access_log(struct pol_kw_call *c)
{
	return set_log(c, &ctx_of(c)->cfg->access_log, true);
}

static int
kw_audit_log(struct pol_kw_call *c)
{
	return set_log(c, &ctx_of(c)->cfg->audit_log, true);
}

static int
kw_error_log(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;
	const char *v = c->argv[0];
	char *p;

	/* the system logger and the journal, not files in the config's folder */
	if (strcmp(v, "syslog") != 0 && strcmp(v, "journal") != 0)
		return set_log(c, &cfg->error_log, false);
	if ((p = strdup(v)) == NULL) {
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	free(cfg->error_log);
	cfg->error_log = p;
	return 0;
}

/* Every name a request's Host may carry; the first is the public name. */
static int
kw_server_name(struct pol_kw_call *c)
{
	struct cfg_ctx *ctx = ctx_of(c);
	const struct cfg_line *l = ctx->line;
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
kw_forward_header(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;
	const char *name = c->argv[0];
	char **v, *s;

	if (!gw_spoof_keepable(name)) {
		snprintf(c->err, c->errlen, "\"%s\" is not a header the gateway "
		    "drops by default, or is one it sets itself; see "
		    "forward_header in docs/configuration.md", name);
		return -1;
	}
	v = reallocarray(cfg->fwd_keep, cfg->nfwd_keep + 1, sizeof(*v));
	if (v == NULL || (s = strdup(name)) == NULL) {
		if (v != NULL)
			cfg->fwd_keep = v;
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	cfg->fwd_keep = v;
	cfg->fwd_keep[cfg->nfwd_keep++] = s;
	return 0;
}

/* ---- handlers: lockdown ---- */

static int
kw_policy(struct pol_kw_call *c)
{
	return set_file(c, &ctx_of(c)->cfg->policy_file);
}

static int
kw_geoip_db(struct pol_kw_call *c)
{
	return set_file(c, &ctx_of(c)->cfg->geoip_db);
}

/* ---- handlers: known-bad files ---- */

/* A list of hashes (sha256sum format); read into the snapshot by
 * config_runtime.c, so a reload picks up an edited list. */
static int
kw_known_bad(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;
	char **v, *p;

	if ((p = readable_file(c, 0)) == NULL)
		return -1;
	v = reallocarray(cfg->known_bad_files, cfg->nknown_bad_files + 1,
	    sizeof(*v));
	if (v == NULL) {
		free(p);
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	cfg->known_bad_files = v;
	cfg->known_bad_files[cfg->nknown_bad_files++] = p;
	return 0;
}

/* A list of path prefixes (matched caselessly against the normalised
 * path) replacing the previous one. */
static int
set_prefixes(struct pol_kw_call *c, char ***out, size_t *nout)
{
	char **v;

	if (c->argc < 1 || c->argc > 32)
		return -1;	/* the table's bounds; never reached */
	for (int i = 0; i < c->argc; i++)
		if (c->argv[i][0] != '/') {
			c->bad = i;
			snprintf(c->err, c->errlen, "\"%s\" is not a path "
			    "prefix: it must start with /", c->argv[i]);
			return -1;
		}
	if ((v = calloc((size_t)c->argc, sizeof(*v))) == NULL) {
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < c->argc; i++)
		if ((v[i] = strdup(c->argv[i])) == NULL) {
			while (i-- > 0)
				free(v[i]);
			free(v);
			snprintf(c->err, c->errlen, "out of memory");
			return -1;
		}
	for (size_t i = 0; i < *nout; i++)
		free((*out)[i]);
	free(*out);
	*out = v;
	*nout = (size_t)c->argc;
	return 0;
}

/* Path prefixes whose response bodies are checked; they replace the
 * default. */
static int
kw_known_bad_paths(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;

	return set_prefixes(c, &cfg->known_bad_paths, &cfg->nknown_bad_paths);
}

/* ---- handlers: pinned client code ---- */

/* The manifest `pbxgate integrity record` wrote; read into the snapshot
 * by config_runtime.c, so a reload picks up a re-recorded one. */
static int
kw_integrity(struct pol_kw_call *c)
{
	return set_file(c, &ctx_of(c)->cfg->integrity_file);
}

static int
kw_integrity_mode(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;

	if (strcmp(c->argv[0], "monitor") == 0)
		cfg->integrity_enforce = false;
	else if (strcmp(c->argv[0], "enforce") == 0)
		cfg->integrity_enforce = true;
	else {
		snprintf(c->err, c->errlen, "\"%s\" is not a mode: expected "
		    "monitor or enforce", c->argv[0]);
		return -1;
	}
	return 0;
}

/* Prefixes under which every file must be in the manifest. */
static int
kw_integrity_paths(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;

	return set_prefixes(c, &cfg->integrity_paths, &cfg->nintegrity_paths);
}

#define INTEGRITY_MAX_LISTED 256	/* entries, and downloads */

/* One path for `integrity record`, kept in the gateway's normalised form
 * (the form the manifest and the lookup use). */
static int
add_record_path(struct pol_kw_call *c, char ***list, size_t *n)
{
	char norm[POL_PATH_MAX + 1], err[GW_ERRLEN], **v, *p;

	if (pol_normalise_path(c->argv[0], strlen(c->argv[0]), norm,
	    sizeof(norm), err, sizeof(err)) == -1) {
		snprintf(c->err, c->errlen, "\"%s\": %s", c->argv[0], err);
		return -1;
	}
	if (*n == INTEGRITY_MAX_LISTED) {
		snprintf(c->err, c->errlen, "more than %d such lines",
		    INTEGRITY_MAX_LISTED);
		return -1;
	}
	if ((v = reallocarray(*list, *n + 1, sizeof(*v))) == NULL ||
	    (p = strdup(norm)) == NULL) {
		if (v != NULL)
			*list = v;
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	*list = v;
	v[(*n)++] = p;
	return 0;
}

static int
kw_integrity_entry(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;

	return add_record_path(c, &cfg->integrity_entries,
	    &cfg->nintegrity_entries);
}

static int
kw_integrity_download(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;

	return add_record_path(c, &cfg->integrity_downloads,
	    &cfg->nintegrity_downloads);
}

/* ---- handlers: sites ---- */

/* Checked against the site blocks once the whole file is read
 * (config_site.c): a block may come after this line. */
static int
kw_default_site(struct pol_kw_call *c)
{
	struct gw_config *cfg = ctx_of(c)->cfg;

	if ((cfg->default_site = strdup(c->argv[0])) == NULL) {
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* What a site block may set, every other keyword applying to the whole
 * gateway. Kept here rather than in struct pol_keyword: the modules'
 * tables do not know about sites, and a keyword a module adds is refused
 * inside a site until someone decides it belongs there. Timeouts and
 * header limits stay process-wide: they apply before Host names a site. */
static const char *const site_keywords[] = {
	/* gateway */
	"tls_cert", "tls_key", "server_name", "upstream", "upstream_ca",
	"upstream_verify", "upstream_connect_timeout", "upstream_timeout",
	"forward_header", "hsts", "hsts_max_age", "max_body_size", "policy",
	"geoip_db", "known_bad", "known_bad_paths", "integrity",
	"integrity_mode", "integrity_paths", "integrity_entry",
	"integrity_download",
	/* auth (login_threads and login_queue size the shared pool) */
	"user_db", "user_db_password_file", "secret_key", "public_url",
	"argon2", "session_idle_timeout", "session_max_lifetime",
	"login_failure_window", "login_ban_time", "enrol_link_lifetime",
	"totp_skew", "login_max_failures", "mfa_self_enrol", "title",
	"totp_issuer",
	/* mail: a site's relay listener and its rules (config_smtp.c) */
	"smtp_listen", "smtp_hostname", "smtp_relay", "smtp_relay_tls",
	"smtp_relay_ca", "smtp_relay_verify", "smtp_relay_auth", "smtp_auth",
	"smtp_allow", "smtp_max_size", "smtp_max_recipients", "smtp_max_line",
	"smtp_timeout", "smtp_relay_timeout", "scrub_rules", "scrub_notice",
};

bool
cfg_site_scoped(const char *name)
{
	for (size_t i = 0; i < sizeof(site_keywords) / sizeof(*site_keywords);
	    i++)
		if (strcmp(site_keywords[i], name) == 0)
			return true;
	return false;
}

/* A listener is one site's alone: inherited, the top level's would be
 * bound once per site. */
bool
cfg_site_inherits(const char *name)
{
	return cfg_site_scoped(name) && strcmp(name, "smtp_listen") != 0;
}

/* ---- the table ---- */

#define C(f)   POL_KW_AT(struct gw_config, f)
#define FN(n, u, min, max, rep, fn) \
	{ n, u, POL_KIND_OTHER, min, max, rep, 0, 0, 0, 0, 0, fn }
#define TYPED(n, u, kind, lo, hi, f) \
	{ n, u, kind, 1, 1, false, lo, hi, 0, C(f), NULL }
#define DUR(n, lo, hi, f)   TYPED(n, "DURATION", POL_KIND_DURATION, lo, hi, f)
#define SIZE(n, lo, hi, f)  TYPED(n, "SIZE", POL_KIND_SIZE, lo, hi, f)
#define COUNT(n, lo, hi, f) TYPED(n, "COUNT", POL_KIND_COUNT, lo, hi, f)
#define BOOL(n, f)          TYPED(n, "on|off", POL_KIND_BOOL, 0, 1, f)

static const struct pol_keyword keywords[] = {
	FN("include", "FILE", 1, 1, true, cfg_kw_include),
	FN("listen", "ADDR:PORT", 1, 1, true, kw_listen),
	FN("admin_listen", "ADDR:PORT", 1, 1, false, kw_admin_listen),
	FN("tls_cert", "FILE", 1, 1, true, kw_tls_cert),
	FN("tls_key", "FILE", 1, 1, true, kw_tls_key),
	FN("tls_ticket_key_file", "FILE", 1, 1, false,
	    kw_tls_ticket_key_file),
	DUR("tls_ticket_rotate", MS_S, 7 * 24 * MS_H, ticket_rotate),
	FN("upstream", "URL", 1, 1, false, kw_upstream),
	FN("upstream_ca", "FILE", 1, 1, false, kw_upstream_ca),
	BOOL("upstream_verify", upstream.verify),
	FN("trusted_proxy", "CIDR", 1, 1, true, kw_trusted_proxy),
	BOOL("proxy_protocol", proxy_protocol),
	FN("workers", "N|auto", 1, 1, false, kw_workers),
	FN("user", "NAME", 1, 1, false, kw_user),
	FN("access_log", "PATH|off|-", 1, 1, false, kw_access_log),
	FN("error_log", "PATH|-|syslog|journal", 1, 1, false, kw_error_log),
	FN("audit_log", "PATH|off", 1, 1, false, kw_audit_log),
	FN("server_name", "NAME...", 1, 16, false, kw_server_name),
	FN("forward_header", "NAME", 1, 1, true, kw_forward_header),
	BOOL("hsts", hsts),
	TYPED("hsts_max_age", "SECONDS", POL_KIND_COUNT, 0, 315360000,
	    hsts_max_age),
	DUR("header_timeout", 100, MS_H, to.header),
	DUR("body_timeout", 100, MS_H, to.body),
	DUR("idle_timeout", 100, MS_H, to.idle),
	DUR("upstream_connect_timeout", 100, 5 * MS_M, to.upstream_connect),
	DUR("upstream_timeout", 100, 24 * MS_H, to.upstream),
	DUR("websocket_idle_timeout", MS_S, 24 * MS_H, to.ws_idle),
	DUR("shutdown_timeout", 0, MS_H, to.shutdown),
	DUR("tls_handshake_timeout", 100, 5 * MS_M, to.tls_handshake),
	SIZE("max_request_line", 256, 64 * KIB, lim.request_line),
	SIZE("max_header_size", 256, 64 * KIB, lim.header_size),
	SIZE("max_headers_size", KIB, MIB, lim.header_total),
	COUNT("max_headers", 1, 1000, lim.headers),
	SIZE("max_body_size", 0, 1024 * GIB, lim.body),
	COUNT("max_connections", 1, 1000000, lim.connections),
	COUNT("max_connections_per_ip", 1, 1000000, lim.connections_per_ip),
	COUNT("max_established_per_ip", 1, 1000000, lim.established_per_ip),
	COUNT("upstream_keepalive", 0, 10000, lim.upstream_keepalive),
	COUNT("max_requests_per_connection", 1, 1000000,
	    lim.requests_per_conn),
	FN("policy", "FILE", 1, 1, false, kw_policy),
	FN("geoip_db", "FILE", 1, 1, false, kw_geoip_db),
	FN("known_bad", "FILE", 1, 1, true, kw_known_bad),
	FN("known_bad_paths", "PREFIX...", 1, 32, false, kw_known_bad_paths),
	FN("integrity", "FILE", 1, 1, false, kw_integrity),
	FN("integrity_mode", "monitor|enforce", 1, 1, false, kw_integrity_mode),
	FN("integrity_paths", "PREFIX...", 1, 32, false, kw_integrity_paths),
	FN("integrity_entry", "PATH", 1, 1, true, kw_integrity_entry),
	FN("integrity_download", "PATH", 1, 1, true, kw_integrity_download),
	FN("default_site", "NAME", 1, 1, false, kw_default_site),
};

const struct pol_kwtab gw_kwtab = {
	keywords, sizeof(keywords) / sizeof(keywords[0])
};

/* The gateway's own keywords first: a module cannot shadow one. */
static const struct cfg_table tables[] = {
	{ &gw_kwtab, 0 },
	{ &auth_kwtab, offsetof(struct gw_config, auth) },
	{ &mail_kwtab, offsetof(struct gw_config, mail) },
};

const struct cfg_table *
cfg_tables(size_t *n)
{
	*n = sizeof(tables) / sizeof(tables[0]);
	return tables;
}

/* Where a cross-check blames a keyword: its nth line, or the top of the
 * main file when the value is a default. */
static const struct cfg_pos *
where_or_top(struct cfg_ctx *ctx, const char *name, size_t nth,
    struct cfg_pos *top)
{
	const struct cfg_pos *p = cfg_where(ctx, name, nth);

	*top = (struct cfg_pos){ ctx->main_name, 1, 1 };
	return p != NULL ? p : top;
}

/* ---- cross-checks after the whole file ---- */

static void
check_certs(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	size_t i;

	for (i = ctx->nkey_lines; i < ctx->ncert_lines; i++)
		cfg_error_at(ctx, cfg_where(ctx, "tls_cert", i), "tls_cert %s "
		    "has no matching tls_key (certificates and keys pair in order)",
		    cfg->certs[i].cert_file);
	for (i = ctx->ncert_lines; i < ctx->nkey_lines; i++)
		cfg_error_at(ctx, cfg_where(ctx, "tls_key", i), "tls_key %s "
		    "has no matching tls_cert (certificates and keys pair in order)",
		    cfg->certs[i].key_file);
	cfg->ncerts = ctx->ncert_lines < ctx->nkey_lines ?
	    ctx->ncert_lines : ctx->nkey_lines;
	if (ctx->ncert_lines == 0 && ctx->nkey_lines == 0)
		cfg_error_at(ctx, cfg_scope(ctx), "no tls_cert/tls_key pair: pbxgate "
		    "serves HTTPS only; add tls_cert FILE and tls_key FILE");
}

/* Plain HTTP is fine to a PBX on the same machine, not across a network. */
static bool
host_is_loopback(const char *host)
{
	struct pol_addr a;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	return pol_addr_parse(host, strlen(host), &a) == 0 &&
	    pol_addr_is_loopback(&a);
}

static void
check_upstream(struct cfg_ctx *ctx)
{
	struct gw_upstream *up = &ctx->cfg->upstream;
	const struct cfg_pos *ca = cfg_where(ctx, "upstream_ca", 0);
	const struct cfg_pos *verify = cfg_where(ctx, "upstream_verify", 0);

	if (up->url == NULL) {
		cfg_error_at(ctx, cfg_scope(ctx), "no upstream: add e.g. "
		    "\"upstream http://127.0.0.1:5000\"");
		return;
	}
	if (!up->tls && up->ca_file != NULL)
		cfg_error_at(ctx, ca, "upstream_ca is set but upstream "
		    "%s does not use TLS", up->url);
	if (!up->tls && !host_is_loopback(up->host))
		cfg_warn_at(ctx, cfg_where(ctx, "upstream", 0), "upstream %s "
		    "is plain HTTP to another host: logins cross the network "
		    "in clear; use https:// unless the link is private",
		    up->url);
	if (!up->tls && !up->verify)
		cfg_warn_at(ctx, verify, "upstream_verify off has no "
		    "effect: upstream %s does not use TLS", up->url);
	if (up->tls && !up->verify)
		cfg_warn_at(ctx, verify, "upstream_verify off: the "
		    "certificate of %s is not checked, anyone on the path can "
		    "impersonate it", up->url);
	if (up->tls && !up->verify && up->ca_file != NULL)
		cfg_warn_at(ctx, ca, "upstream_ca is ignored while "
		    "upstream_verify is off");
}

/* Same port and the same address, or a wildcard on either side. */
bool
cfg_addr_overlap(const struct gw_addr *a, const struct gw_addr *b)
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
			if (cfg_addr_overlap(&a, &cfg->listen[i]))
				cfg_error_at(ctx, cfg_where(ctx, "listen", i),
				    "listen %s overlaps smtp_listen %s: use "
				    "another port",
				    cfg->listen[i].text, m->listen_text[j]);
		if (cfg->has_admin && cfg_addr_overlap(&a, &cfg->admin_listen))
			cfg_error_at(ctx, cfg_where(ctx, "admin_listen", 0),
			    "admin_listen %s overlaps smtp_listen %s: use "
			    "another port",
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
		const struct cfg_pos *at = cfg_where(ctx, "listen", i);

		if (at != NULL &&
		    cfg_addr_overlap(&cfg->admin_listen, &cfg->listen[i])) {
			cfg_error_at(ctx, cfg_where(ctx, "admin_listen", 0),
			    "admin_listen %s overlaps listen %s at %s:%u: use "
			    "another port", cfg->admin_listen.text,
			    cfg->listen[i].text, at->file, at->line);
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
		p = where_or_top(ctx, "max_header_size", 0, &top);
		cfg_error_at(ctx, p, "max_header_size (%zu) is larger than "
		    "max_headers_size (%zu)", cfg->lim.header_size,
		    cfg->lim.header_total);
	}
	if (cfg->lim.connections_per_ip > cfg->lim.connections) {
		p = where_or_top(ctx, "max_connections_per_ip", 0, &top);
		cfg_warn_at(ctx, p, "max_connections_per_ip (%u) is larger "
		    "than max_connections (%u)", cfg->lim.connections_per_ip,
		    cfg->lim.connections);
	}
	if (cfg->lim.connections_per_ip > cfg->lim.established_per_ip) {
		p = where_or_top(ctx, "max_connections_per_ip", 0, &top);
		cfg_warn_at(ctx, p, "max_connections_per_ip (%u) is larger "
		    "than max_established_per_ip (%u): the smaller caps both",
		    cfg->lim.connections_per_ip, cfg->lim.established_per_ip);
	}
	if (cfg->proxy_protocol && cfg->ntrusted == 0)
		cfg_error_at(ctx, cfg_where(ctx, "proxy_protocol", 0),
		    "proxy_protocol on needs at least one trusted_proxy: PROXY "
		    "headers are only read from them");
}

/* Per-process random keys rotate hourly (cmd_run.c): a period given for
 * them would be silently ignored. */
static void
check_tickets(struct cfg_ctx *ctx)
{
	const struct cfg_pos *at = cfg_where(ctx, "tls_ticket_rotate", 0);

	if (at != NULL && ctx->cfg->ticket_key_file == NULL)
		cfg_error_at(ctx, at, "tls_ticket_rotate needs "
		    "tls_ticket_key_file: without it each process makes its "
		    "own random ticket keys, rotated hourly");
}

void
cfg_check_process(struct cfg_ctx *ctx)
{
	if (ctx->cfg->default_site != NULL && ctx->nsites == 0)
		cfg_error_at(ctx, cfg_where(ctx, "default_site", 0),
		    "default_site without site blocks: remove it or add "
		    "site %s { ... }", ctx->cfg->default_site);
	check_tickets(ctx);
	check_listen(ctx);
	check_limits(ctx);
}

void
cfg_check_site(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;

	check_certs(ctx);
	check_upstream(ctx);
	if (cfg->geoip_db != NULL && cfg->policy_file == NULL)
		cfg_warn_at(ctx, cfg_where(ctx, "geoip_db", 0), "geoip_db is "
		    "set but there is no policy to use it");
}
