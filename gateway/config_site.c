/* config_site.c -- "site NAME {" ... "}" blocks: reading them, and building
 * each site's settings through the same keyword handlers as the top level.
 *
 * Inheritance: a site gets every site-scoped keyword's top-level lines,
 * wherever they stand in the file (before or after the block), unless the
 * block has a line of that keyword: then only the block's lines count. The
 * top-level lines are kept as read and applied again to each site, so a
 * site's settings are made by the one handler of each keyword. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/config_priv.h"

_Static_assert(CFG_SITE_NAME_MAX <= AUTH_SITE_MAX, "a site name must fit "
    "the auth settings' site");
_Static_assert(CFG_SITE_NAME_MAX <= CERT_TICKET_SITE_MAX, "a site name "
    "must fit its ticket key derivation");

/* ---- reading ---- */

/* 1..63 letters, digits, '-' or '_', starting with a letter or digit:
 * safe in a metrics label, a log field and a file name. */
static bool
valid_site_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CFG_SITE_NAME_MAX ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_") != n)
		return false;
	return s[0] != '-' && s[0] != '_';
}

/* The name and brace of "site NAME {"; 0 when fine, after one report
 * otherwise. */
static int
check_site_line(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	if (l->ntok < 2) {
		cfg_error(ctx, l, 0, "site: missing name; usage: site NAME {");
		return -1;
	}
	if (l->ntok < 3 || strcmp(l->tok[2].s, "{") != 0) {
		cfg_error(ctx, l, l->ntok < 3 ? 1 : 2, "site: \"{\" expected "
		    "after the name; usage: site NAME {");
		return -1;
	}
	if (l->ntok > 3) {
		cfg_error(ctx, l, 3, "site: unexpected \"%s\" after \"{\": a "
		    "site's settings go on the lines below it", l->tok[3].s);
		return -1;
	}
	if (!valid_site_name(l->tok[1].s)) {
		cfg_error(ctx, l, 1, "site: \"%s\" is not a valid site name: 1 "
		    "to %d letters, digits, '-' or '_', starting with a letter "
		    "or digit", l->tok[1].s, CFG_SITE_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < ctx->nsites; i++)
		if (strcmp(ctx->sites[i].name, l->tok[1].s) == 0) {
			cfg_error(ctx, l, 1, "site \"%s\" is already defined "
			    "at %s:%u", l->tok[1].s, ctx->sites[i].pos.file,
			    ctx->sites[i].pos.line);
			return -1;
		}
	if (ctx->nsites == CFG_MAX_SITES) {
		cfg_error(ctx, l, 0, "too many sites (max %d)", CFG_MAX_SITES);
		return -1;
	}
	return 0;
}

static bool
has_brace(const struct cfg_line *l)
{
	for (int i = 1; i < l->ntok; i++)
		if (strcmp(l->tok[i].s, "{") == 0)
			return true;
	return false;
}

/* A refused "site" line still opens a block (when it has a "{") so that
 * its lines are not read as top-level ones; the block is never built, and
 * may be past CFG_MAX_SITES (the file's size bounds how many). */
void
cfg_site_open(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	struct cfg_site_src *v, *s;
	bool broken;

	if (ctx->open != NULL) {
		cfg_error(ctx, l, 0, "site blocks do not nest: close site \"%s\" "
		    "(opened at %s:%u) with \"}\" first", ctx->open->name,
		    ctx->open->pos.file, ctx->open->pos.line);
		return;
	}
	broken = check_site_line(ctx, l) == -1;
	if (broken && !has_brace(l))
		return;
	v = reallocarray(ctx->sites, ctx->nsites + 1, sizeof(*v));
	if (v == NULL) {
		cfg_error(ctx, l, 0, "site: out of memory");
		return;
	}
	ctx->sites = v;
	s = &v[ctx->nsites];
	memset(s, 0, sizeof(*s));
	if ((s->name = strdup(l->ntok > 1 ? l->tok[1].s : "")) == NULL) {
		cfg_error(ctx, l, 0, "site: out of memory");
		return;
	}
	ctx->nsites++;
	s->pos = cfg_pos_of(l, 0);
	s->depth = ctx->depth;
	s->broken = broken;
	s->tail = &s->lines;
	ctx->open = s;
}

void
cfg_site_close(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	if (ctx->open == NULL) {
		cfg_error(ctx, l, 0, "\"}\" without an open site block");
		return;
	}
	if (l->ntok > 1)
		cfg_error(ctx, l, 1, "unexpected \"%s\" after \"}\"",
		    l->tok[1].s);
	ctx->open = NULL;
}

/* A block must end in the file that opened it: an include cannot close
 * it, since include is refused inside a block. */
void
cfg_site_eof(struct cfg_ctx *ctx)
{
	if (ctx->open == NULL || ctx->open->depth != ctx->depth)
		return;
	cfg_error_at(ctx, &ctx->open->pos, "site \"%s\" is not closed: add "
	    "\"}\" after its last line", ctx->open->name);
	ctx->open->broken = true;
	ctx->open = NULL;
}

static struct cfg_saved *
save_line(const struct cfg_line *l, size_t kw)
{
	struct cfg_saved *s;
	size_t text = 0, head;
	char *p;
	int i;

	for (i = 0; i < l->ntok; i++)
		text += strlen(l->tok[i].s) + 1;	/* <= CFG_MAX_LINE + ntok */
	head = sizeof(*s) + (size_t)l->ntok * sizeof(s->tok[0]);
	if ((s = malloc(head + text)) == NULL)
		return NULL;
	s->next = NULL;
	s->file = *l->file;
	s->lineno = l->lineno;
	s->ntok = l->ntok;
	s->kw = kw;
	p = (char *)s + head;
	for (i = 0; i < l->ntok; i++) {
		size_t n = strlen(l->tok[i].s) + 1;

		memcpy(p, l->tok[i].s, n);
		s->tok[i] = (struct cfg_tok){ p, l->tok[i].col };
		p += n;
	}
	return s;
}

void
cfg_site_keep(struct cfg_ctx *ctx, const struct cfg_line *l, size_t kw,
    bool inherit, bool failed)
{
	struct cfg_site_src *o = ctx->open;
	size_t *n = inherit ? &ctx->ninherit : &o->nlines;
	struct cfg_saved *s;

	if (*n == CFG_MAX_SITE_LINES) {
		if (inherit)
			cfg_error(ctx, l, 0, "more than %d top-level lines of "
			    "keywords sites inherit", CFG_MAX_SITE_LINES);
		else
			cfg_error(ctx, l, 0, "site \"%s\" has more than %d "
			    "lines", o->name, CFG_MAX_SITE_LINES);
		return;
	}
	if ((s = save_line(l, kw)) == NULL) {
		cfg_error(ctx, l, 0, "%s: out of memory", l->tok[0].s);
		return;
	}
	(*n)++;
	s->failed = failed;
	if (inherit) {
		if (ctx->inherit_tail == NULL)
			ctx->inherit_tail = &ctx->inherit;
		*ctx->inherit_tail = s;
		ctx->inherit_tail = &s->next;
	} else {
		*o->tail = s;
		o->tail = &s->next;
	}
}

static void
free_saved(struct cfg_saved *s)
{
	struct cfg_saved *next;

	for (; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
}

void
cfg_sites_free(struct cfg_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nsites; i++) {
		free(ctx->sites[i].name);
		free_saved(ctx->sites[i].lines);
	}
	free(ctx->sites);
	ctx->sites = NULL;
	ctx->nsites = 0;
	ctx->open = NULL;
	free_saved(ctx->inherit);
	ctx->inherit = NULL;
	ctx->inherit_tail = NULL;
	ctx->ninherit = 0;
}

/* ---- building ---- */

static void
replay(struct cfg_ctx *sc, const struct cfg_saved *s)
{
	struct cfg_line l;

	l.file = &s->file;
	l.lineno = s->lineno;
	l.ntok = s->ntok;
	memcpy(l.tok, s->tok, (size_t)s->ntok * sizeof(l.tok[0]));
	cfg_dispatch(sc, &l);
}

/* The site's own lines, after the inherited lines of every keyword the
 * block does not set. An inherited line refused at the top level was
 * reported there: it fails again here in silence (the site's checks are
 * then skipped, not reported as missing settings). */
static void
apply_lines(struct cfg_ctx *ctx, struct cfg_ctx *sc,
    const struct cfg_site_src *src)
{
	const struct cfg_saved *s;
	bool *own = calloc(sc->nseen, sizeof(*own));

	if (own == NULL) {
		cfg_error_at(sc, &src->pos, "out of memory");
		return;
	}
	for (s = src->lines; s != NULL; s = s->next)
		own[s->kw] = true;
	for (s = ctx->inherit; s != NULL; s = s->next) {
		if (own[s->kw])
			continue;
		sc->report = s->failed ? NULL : ctx->report;
		replay(sc, s);
	}
	sc->report = ctx->report;
	for (s = src->lines; s != NULL; s = s->next)
		replay(sc, s);
	free(own);
}

/* An enrolment link leads to public_url: inherited from the top level, or
 * copied from another site, it would send the user to another site, where
 * the link (bound to this one) is not valid. */
static void
check_public_url(struct cfg_ctx *sc)
{
	const struct gw_config *cfg = sc->cfg;
	const char *url = cfg->auth.public_url, *host;
	char name[256];
	size_t n;

	if (url == NULL || strncmp(url, "https://", 8) != 0)
		return;
	host = url + 8;
	n = strcspn(host, ":/");
	if (n == 0 || n >= sizeof(name))
		return;
	for (size_t i = 0; i < n; i++)
		name[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ?
		    host[i] - 'A' + 'a' : host[i]);
	name[n] = '\0';
	for (size_t i = 0; i < cfg->nserver_names; i++)
		if (strcmp(cfg->server_names[i], name) == 0)
			return;
	cfg_warn_at(sc, cfg_where(sc, "public_url", 0), "public_url %s is "
	    "not one of the site's server_name: its enrolment links would "
	    "lead to another site; set public_url in the site's block", url);
}

/* The process-wide values a request meets after its site is known (the
 * limits and timeouts it is read and answered under, the trusted
 * proxies), copied from the top level so that a site's settings are
 * whole: only the site-scoped ones are the site's own. */
static void
inherit_process(struct gw_config *scfg, const struct gw_config *top)
{
	struct gw_limits lim = top->lim;
	struct gw_timeouts to = top->to;

	lim.body = scfg->lim.body;			/* max_body_size */
	to.upstream_connect = scfg->to.upstream_connect;
	to.upstream = scfg->to.upstream;
	scfg->lim = lim;
	scfg->to = to;
	memcpy(scfg->trusted, top->trusted, sizeof(scfg->trusted));
	scfg->ntrusted = top->ntrusted;
	scfg->proxy_protocol = top->proxy_protocol;
}

static void
finish_site(struct cfg_ctx *sc, const struct gw_config *top,
    bool build_runtime)
{
	char err[GW_ERRLEN] = "";

	if (sc->errors == 0)
		cfg_check_site(sc);
	if (sc->errors == 0 &&
	    auth_settings_finish(&sc->cfg->auth, err, sizeof(err)) != 0)
		cfg_error_at(sc, &sc->scope, "%s", err[0] ? err : "auth "
		    "settings are inconsistent");
	if (sc->errors == 0 && sc->cfg->nserver_names == 0)
		cfg_error_at(sc, &sc->scope, "no server_name: a site serves "
		    "the names it lists (TLS SNI and Host); add server_name "
		    "NAME... inside the block");
	if (sc->errors == 0)
		check_public_url(sc);
	err[0] = '\0';
	/* its relay: blamed on its smtp_listen (the rules may be inherited) */
	if (sc->errors == 0 &&
	    mail_settings_finish(&sc->cfg->mail, err, sizeof(err)) != 0)
		cfg_error_at(sc, cfg_where(sc, "smtp_listen", 0), "%s",
		    err[0] ? err : "mail settings are inconsistent");
	inherit_process(sc->cfg, top);
	if (sc->errors == 0 && build_runtime)
		(void)cfg_build_runtime(sc, false, true);
}

/* One site's settings into *out (its cfg NULL when it cannot be built). */
static void
build_one(struct cfg_ctx *ctx, const struct cfg_site_src *src,
    bool build_runtime, struct gw_site *out)
{
	struct gw_config *scfg = calloc(1, sizeof(*scfg));
	char err[GW_ERRLEN];
	struct cfg_ctx sc;

	if (scfg != NULL)
		gw_config_defaults(scfg);
	out->name = strdup(src->name);
	out->file = strdup(src->pos.file);
	out->line = src->pos.line;
	out->col = src->pos.col;
	if (scfg == NULL || out->name == NULL || out->file == NULL ||
	    cfg_ctx_init(&sc, scfg, ctx->report, ctx->arg) == -1) {
		free(scfg);
		cfg_error_at(ctx, &src->pos, "site \"%s\": out of memory",
		    src->name);
		return;
	}
	/* keys of its own, derived from the top level's and its name (owned
	 * as file_tickets are): another site's tickets never resume here */
	scfg->tickets = ctx->cfg->file_tickets != NULL ?
	    ctx->cfg->file_tickets : ctx->cfg->tickets;
	if (scfg->tickets != NULL && (scfg->file_tickets = cert_tickets_site(
	    scfg->tickets, src->name, err, sizeof(err))) == NULL)
		cfg_error_at(ctx, &src->pos, "site \"%s\": %s", src->name,
		    err);
	/* bound into its sessions and tokens (auth module) */
	snprintf(scfg->auth.site, sizeof(scfg->auth.site), "%s", src->name);
	sc.main_name = ctx->main_name;
	sc.site = src->name;
	sc.scope = src->pos;
	sc.no_include = true;
	apply_lines(ctx, &sc, src);
	finish_site(&sc, ctx->cfg, build_runtime);
	ctx->errors += sc.errors;
	ctx->warnings += sc.warnings;
	cfg_ctx_done(&sc);
	out->cfg = scfg;
}

/* ---- what spans sites ---- */

static int
cmp_site_name(const void *a, const void *b)
{
	const struct gw_site_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->site < y->site ? -1 : x->site > y->site;
}

/* The sorted index of every site's names (cfg->site_names), which
 * gw_site_for_name() searches and check_names() reads for overlaps. */
static void
index_names(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	const struct gw_config *s;
	size_t n = 0, i, j;

	for (i = 0; i < cfg->nsites; i++)
		if (cfg->sites[i].cfg != NULL)
			n += cfg->sites[i].cfg->nserver_names;
	if (n == 0)
		return;
	if ((cfg->site_names = calloc(n, sizeof(*cfg->site_names))) == NULL) {
		cfg_error_at(ctx, &ctx->sites[0].pos, "sites: out of memory");
		return;
	}
	for (i = 0; i < cfg->nsites; i++)
		for (j = 0; (s = cfg->sites[i].cfg) != NULL &&
		    j < s->nserver_names; j++)
			cfg->site_names[cfg->nsite_names++] =
			    (struct gw_site_name){ s->server_names[j], i };
	qsort(cfg->site_names, cfg->nsite_names, sizeof(*cfg->site_names),
	    cmp_site_name);
}

/* Where a site lists `name` (lower case) on its server_name line, else
 * its "site" line. */
static struct cfg_pos
name_pos(const struct cfg_ctx *ctx, size_t site, const char *name)
{
	const struct cfg_site_src *src = NULL;
	const struct cfg_saved *s;

	/* cfg->sites skips refused blocks: find the block by its name,
	 * unique among those built */
	for (size_t i = 0; i < ctx->nsites && src == NULL; i++)
		if (!ctx->sites[i].broken && strcmp(ctx->sites[i].name,
		    ctx->cfg->sites[site].name) == 0)
			src = &ctx->sites[i];
	if (src == NULL)
		return ctx->sites[0].pos;
	for (s = src->lines; s != NULL; s = s->next) {
		if (strcmp(s->tok[0].s, "server_name") != 0)
			continue;
		for (int i = 1; i < s->ntok; i++)
			if (strcasecmp(s->tok[i].s, name) == 0)
				return (struct cfg_pos){ s->file.name,
				    s->lineno, s->tok[i].col };
	}
	return src->pos;
}

/* A name two sites list would be served by whichever is looked up first:
 * equal names sit side by side in the sorted index. */
static void
check_names(struct cfg_ctx *ctx)
{
	const struct gw_config *cfg = ctx->cfg;
	const struct gw_site_name *v = cfg->site_names;

	for (size_t i = 1; i < cfg->nsite_names; i++) {
		struct cfg_pos a, b;

		if (strcmp(v[i - 1].name, v[i].name) != 0 ||
		    v[i - 1].site == v[i].site)
			continue;
		a = name_pos(ctx, v[i - 1].site, v[i].name);
		b = name_pos(ctx, v[i].site, v[i].name);
		cfg_error_at(ctx, &b, "server_name %s of site \"%s\" is also "
		    "served by site \"%s\" (%s:%u): a name belongs to one site",
		    v[i].name, cfg->sites[v[i].site].name,
		    cfg->sites[v[i - 1].site].name, a.file, a.line);
	}
}

static int
cmp_key(const void *key, const void *elt)
{
	return strcmp(key, ((const struct gw_site_name *)elt)->name);
}

const struct gw_site *
gw_site_for_name(const struct gw_config *cfg, const char *name)
{
	const struct gw_site_name *hit;
	char low[254];
	size_t n, i;

	if (name == NULL)		/* no SNI */
		return cfg->default_site != NULL ?
		    gw_config_site(cfg, cfg->default_site) : NULL;
	if ((n = strlen(name)) >= sizeof(low))	/* longer than any host name */
		return NULL;
	for (i = 0; i <= n; i++)
		low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
		    name[i] - 'A' + 'a' : name[i]);
	hit = cfg->nsite_names == 0 ? NULL : bsearch(low, cfg->site_names,
	    cfg->nsite_names, sizeof(*cfg->site_names), cmp_key);
	if (hit != NULL)
		return &cfg->sites[hit->site];
	return cfg->default_site != NULL ?
	    gw_config_site(cfg, cfg->default_site) : NULL;
}

static void
check_default_site(struct cfg_ctx *ctx)
{
	const struct gw_config *cfg = ctx->cfg;
	const struct cfg_pos *at = cfg_where(ctx, "default_site", 0);

	if (cfg->default_site == NULL || at == NULL)
		return;
	for (size_t i = 0; i < cfg->nsites; i++)
		if (strcmp(cfg->sites[i].name, cfg->default_site) == 0)
			return;
	cfg_error_at(ctx, at, "default_site: no site is named \"%s\"",
	    cfg->default_site);
}

/* A server_name line outside the blocks would be every site's name. */
static void
check_top_names(struct cfg_ctx *ctx)
{
	const struct cfg_pos *at = cfg_where(ctx, "server_name", 0);

	if (at != NULL)
		cfg_error_at(ctx, at, "server_name at the top level does not "
		    "apply once there are site blocks: give each site its own");
}

void
cfg_sites_build(struct cfg_ctx *ctx, bool build_runtime)
{
	struct gw_config *cfg = ctx->cfg;
	size_t i;

	if ((cfg->sites = calloc(ctx->nsites, sizeof(*cfg->sites))) == NULL) {
		cfg_error_at(ctx, &ctx->sites[0].pos, "sites: out of memory");
		return;
	}
	check_top_names(ctx);
	for (i = 0; i < ctx->nsites; i++) {
		if (ctx->sites[i].broken)
			continue;
		build_one(ctx, &ctx->sites[i], build_runtime,
		    &cfg->sites[cfg->nsites++]);
	}
	index_names(ctx);
	check_names(ctx);
	check_default_site(ctx);
}
