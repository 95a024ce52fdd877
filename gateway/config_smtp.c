/* config_smtp.c -- the SMTP relay's listeners across sites: the checks
 * that span them (one address, one listener) and the lookups `run` binds
 * and accepts by.
 *
 * Without sites the top level's smtp_listen lines are the relay's; with
 * sites each block's own, served with that site's mail settings, scrub
 * rules and certificate. A top-level smtp_listen beside sites is refused:
 * the relay knows which customer's PBX connected only by the address it
 * reached (SNI comes at STARTTLS, after the greeting, and a PBX may not
 * send one at all), so one listener for every site would scrub a
 * customer's mail by rules chosen for another. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "gateway/config_priv.h"

/* One listener as written. */
struct smtp_at {
	struct gw_addr a;
	struct cfg_pos pos;
	const char    *site;	/* NULL at the top level */
};

/* The block a built site came from: cfg->sites skips refused blocks, and
 * names are unique among those built. */
static const struct cfg_site_src *
site_src(const struct cfg_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->nsites; i++)
		if (!ctx->sites[i].broken &&
		    strcmp(ctx->sites[i].name, name) == 0)
			return &ctx->sites[i];
	return NULL;
}

/* The value of the block's nth smtp_listen line: a site's listeners are
 * its own lines only (cfg_site_inherits), one entry a line. */
static struct cfg_pos
site_listen_pos(const struct cfg_site_src *src, size_t nth)
{
	const struct cfg_saved *s;

	for (s = src->lines; s != NULL; s = s->next) {
		if (strcmp(s->tok[0].s, "smtp_listen") != 0 || s->ntok < 2)
			continue;
		if (nth-- == 0)
			return (struct cfg_pos){ s->file.name, s->lineno,
			    s->tok[1].col };
	}
	return src->pos;
}

static void
put(struct smtp_at *v, size_t *n, const struct mail_settings *m, size_t j,
    struct cfg_pos pos, const char *site)
{
	struct smtp_at *e;

	if (*n == GW_MAX_SMTP_LISTEN)
		return;
	e = &v[(*n)++];
	memset(e, 0, sizeof(*e));
	memcpy(&e->a.ss, &m->listen[j], sizeof(e->a.ss));
	e->a.sslen = m->listen_len[j];
	snprintf(e->a.text, sizeof(e->a.text), "%s", m->listen_text[j]);
	e->pos = pos;
	e->site = site;
}

/* Every listener as written, up to GW_MAX_SMTP_LISTEN; *total counts
 * them all. With sites, the top level's are not served (refused above). */
static size_t
collect(struct cfg_ctx *ctx, struct smtp_at *v, size_t *total)
{
	const struct gw_config *cfg = ctx->cfg, *s;
	const struct cfg_site_src *src;
	const struct cfg_pos *at;
	size_t n = 0, i, j;

	*total = 0;
	if (cfg->nsites == 0) {
		for (j = 0; j < cfg->mail.nlisten; j++, (*total)++)
			if ((at = cfg_where(ctx, "smtp_listen", j)) != NULL)
				put(v, &n, &cfg->mail, j, *at, NULL);
		return n;
	}
	for (i = 0; i < cfg->nsites; i++) {
		if ((s = cfg->sites[i].cfg) == NULL ||
		    (src = site_src(ctx, cfg->sites[i].name)) == NULL)
			continue;
		for (j = 0; j < s->mail.nlisten; j++, (*total)++) {
			struct cfg_pos pos = site_listen_pos(src, j);

			if (*total == GW_MAX_SMTP_LISTEN)
				cfg_error_at(ctx, &pos, "site \"%s\": more "
				    "than %d smtp_listen addresses in all "
				    "sites", cfg->sites[i].name,
				    GW_MAX_SMTP_LISTEN);
			put(v, &n, &s->mail, j, pos, cfg->sites[i].name);
		}
	}
	return n;
}

static void
who(char *buf, size_t len, const struct smtp_at *e)
{
	if (e->site != NULL)
		snprintf(buf, len, "site \"%s\": ", e->site);
	else
		buf[0] = '\0';
}

/* Two listeners on one address: the second bind would fail at start (or,
 * a wildcard and a host on one port, split the connections). */
static void
check_pairs(struct cfg_ctx *ctx, const struct smtp_at *v, size_t n)
{
	char a[96], b[96];

	for (size_t i = 1; i < n; i++)
		for (size_t j = 0; j < i; j++) {
			if (!cfg_addr_overlap(&v[i].a, &v[j].a))
				continue;
			who(a, sizeof(a), &v[i]);
			who(b, sizeof(b), &v[j]);
			cfg_error_at(ctx, &v[i].pos, "%ssmtp_listen %s overlaps "
			    "%ssmtp_listen %s at %s:%u:%u: an address has one "
			    "listener; use another port", a, v[i].a.text, b,
			    v[j].a.text, v[j].pos.file, v[j].pos.line,
			    v[j].pos.col);
			break;
		}
}

/* A site's listener on the gateway's own ports (the top level's were
 * checked with listen, config_keywords.c). */
static void
check_gateway_ports(struct cfg_ctx *ctx, const struct smtp_at *v, size_t n)
{
	const struct gw_config *cfg = ctx->cfg;

	for (size_t i = 0; i < n; i++) {
		if (v[i].site == NULL)
			continue;
		for (size_t j = 0; j < cfg->nlisten; j++)
			if (cfg_addr_overlap(&v[i].a, &cfg->listen[j]))
				cfg_error_at(ctx, &v[i].pos, "site \"%s\": "
				    "smtp_listen %s overlaps listen %s: use "
				    "another port", v[i].site, v[i].a.text,
				    cfg->listen[j].text);
		if (cfg->has_admin &&
		    cfg_addr_overlap(&v[i].a, &cfg->admin_listen))
			cfg_error_at(ctx, &v[i].pos, "site \"%s\": smtp_listen "
			    "%s overlaps admin_listen %s: use another port",
			    v[i].site, v[i].a.text, cfg->admin_listen.text);
	}
}

void
cfg_smtp_check(struct cfg_ctx *ctx)
{
	const struct cfg_pos *top = cfg_where(ctx, "smtp_listen", 0);
	struct smtp_at *v;
	size_t n, total;

	if (ctx->nsites > 0 && top != NULL)
		cfg_error_at(ctx, top, "smtp_listen at the top level is not "
		    "served beside site blocks: the relay would not know "
		    "which site's PBX connected; put smtp_listen inside each "
		    "site block that relays mail");
	/* positions are those of the lines applied: only on a clean load */
	if (ctx->errors != 0)
		return;
	if ((v = calloc(GW_MAX_SMTP_LISTEN, sizeof(*v))) == NULL) {
		cfg_error_at(ctx, cfg_scope(ctx), "smtp_listen: out of memory");
		return;
	}
	n = collect(ctx, v, &total);
	if (total <= GW_MAX_SMTP_LISTEN) {
		check_pairs(ctx, v, n);
		check_gateway_ports(ctx, v, n);
	}
	free(v);
}

/* ---- at run time ---- */

const struct gw_config *
gw_smtp_listener(const struct gw_config *cfg, size_t k, size_t *j)
{
	const struct gw_config *s;

	if (cfg->nsites == 0) {
		*j = k;
		return k < cfg->mail.nlisten ? cfg : NULL;
	}
	for (size_t i = 0; i < cfg->nsites; i++) {
		if ((s = cfg->sites[i].cfg) == NULL)
			continue;
		if (k < s->mail.nlisten) {
			*j = k;
			return s;
		}
		k -= s->mail.nlisten;
	}
	return NULL;
}

/* The address a listener was bound to, as getsockname() gives it back:
 * family, port and address (the rest of a sockaddr is padding). */
static bool
same_addr(const struct sockaddr_storage *a, const struct sockaddr *b,
    socklen_t blen)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return blen >= sizeof(*y) && x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return blen >= sizeof(*y) && x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr,
		    sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

const struct gw_config *
gw_smtp_owner(const struct gw_config *cfg, const struct sockaddr *local,
    socklen_t len)
{
	const struct gw_config *o;
	size_t j;

	for (size_t k = 0; (o = gw_smtp_listener(cfg, k, &j)) != NULL; k++)
		if (same_addr(&o->mail.listen[j], local, len))
			return o;
	return NULL;
}
