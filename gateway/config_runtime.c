/* config_runtime.c -- builds the runtime objects of a parsed config (TLS
 * contexts, policy) and frees everything a config owns. */
#include <stdlib.h>
#include <string.h>

#include "gateway/config_priv.h"
#include "gateway/gw_priv.h"

/* Reports err at the nth line of keyword kw, prefixed with the keyword
 * unless the module's message already starts so. */
static void
report_kw(struct cfg_ctx *ctx, const char *kw, size_t nth, const char *err)
{
	const struct cfg_pos *pos = cfg_where(ctx, kw, nth);
	size_t n = strlen(kw);

	if (strncmp(err, kw, n) == 0 && (err[n] == ' ' || err[n] == ':'))
		cfg_error_at(ctx, pos, "%s", err);
	else
		cfg_error_at(ctx, pos, "%s: %s", kw, err);
}

/* The certs module names the file it failed on; blame the line that
 * gave that file, the first tls_cert when it names none. */
static void
report_cert_error(struct cfg_ctx *ctx, const char *err)
{
	const struct gw_config *cfg = ctx->cfg;
	size_t i;

	for (i = 0; i < cfg->ncerts; i++) {
		if (strstr(err, cfg->certs[i].key_file) != NULL) {
			report_kw(ctx, "tls_key", i, err);
			return;
		}
		if (strstr(err, cfg->certs[i].cert_file) != NULL) {
			report_kw(ctx, "tls_cert", i, err);
			return;
		}
	}
	report_kw(ctx, "tls_cert", 0, err);
}

/* Built by `check` as well, so that a short or exposed secret file is
 * reported at its line before a reload meets it. */
static int
build_file_tickets(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	char err[GW_ERRLEN] = "";

	if (cfg->ticket_key_file == NULL)
		return 0;
	cfg->file_tickets = cert_tickets_from_file(cfg->ticket_key_file,
	    cfg->ticket_rotate, err, sizeof(err));
	if (cfg->file_tickets == NULL) {
		report_kw(ctx, "tls_ticket_key_file", 0, err);
		return -1;
	}
	return 0;
}

static int
build_server_tls(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	struct cert_pair pairs[GW_MAX_CERTS];
	char err[GW_ERRLEN] = "";
	size_t i;

	for (i = 0; i < cfg->ncerts; i++) {
		pairs[i].cert_file = cfg->certs[i].cert_file;
		pairs[i].key_file = cfg->certs[i].key_file;
	}
	cfg->tls = cert_server_new(pairs, cfg->ncerts, cfg->file_tickets != NULL
	    ? cfg->file_tickets : cfg->tickets, err, sizeof(err));
	if (cfg->tls == NULL) {
		report_cert_error(ctx, err[0] ? err : "cannot build the TLS "
		    "server context");
		return -1;
	}
	return 0;
}

static int
build_upstream_tls(struct cfg_ctx *ctx)
{
	struct gw_upstream *up = &ctx->cfg->upstream;
	char err[GW_ERRLEN] = "";

	if (!up->tls)
		return 0;
	ctx->cfg->upstream_tls = cert_client_new(up->ca_file, up->verify, err,
	    sizeof(err));
	if (ctx->cfg->upstream_tls == NULL) {
		if (up->ca_file != NULL)
			report_kw(ctx, "upstream_ca", 0, err[0] ? err :
			    "cannot load the CA file");
		else
			report_kw(ctx, "upstream", 0, err[0] ? err :
			    "cannot build the TLS client context");
		return -1;
	}
	return 0;
}

struct pol_report {
	struct cfg_ctx *ctx;
	unsigned        errors;
};

/* The policy module's messages carry their own FILE:LINE:COL. */
static void
policy_report(void *arg, bool warning, const char *msg)
{
	struct pol_report *pr = arg;
	struct cfg_ctx *ctx = pr->ctx;

	if (warning)
		ctx->warnings++;
	else {
		ctx->errors++;
		pr->errors++;
	}
	if (ctx->report != NULL)
		ctx->report(ctx->arg, warning, NULL, msg);
}

static int
build_policy(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	struct pol_report pr = { ctx, 0 };

	if (cfg->policy_file == NULL)
		return 0;
	cfg->policy = pol_load(cfg->policy_file, cfg->geoip_db, policy_report,
	    &pr);
	if (cfg->policy == NULL && pr.errors == 0)
		cfg_error_at(ctx, cfg_where(ctx, "policy", 0), "policy: cannot "
		    "load %s", cfg->policy_file);
	else if (cfg->policy != NULL && pr.errors != 0) {
		/* Never run a policy its own loader complained about. */
		pol_free(cfg->policy);
		cfg->policy = NULL;
	}
	return cfg->policy == NULL ? -1 : 0;
}

/* The known_bad lists' messages carry their own FILE:LINE:COL. */
static void
known_bad_report(void *arg, const char *msg)
{
	struct pol_report *pr = arg;

	pr->ctx->errors++;
	pr->errors++;
	if (pr->ctx->report != NULL)
		pr->ctx->report(pr->ctx->arg, false, NULL, msg);
}

static int
build_known_bad(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	struct pol_report pr = { ctx, 0 };

	if (cfg->nknown_bad_files == 0)
		return 0;
	if ((cfg->knownbad = gw_knownbad_new()) == NULL) {
		cfg_error_at(ctx, cfg_where(ctx, "known_bad", 0), "known_bad: "
		    "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->nknown_bad_files; i++)
		(void)gw_knownbad_load(cfg->knownbad, cfg->known_bad_files[i],
		    known_bad_report, &pr);
	if (pr.errors != 0)
		return -1;
	gw_knownbad_seal(cfg->knownbad);
	return 0;
}

static int
build_integrity(struct cfg_ctx *ctx)
{
	struct gw_config *cfg = ctx->cfg;
	struct pol_report pr = { ctx, 0 };

	if (cfg->integrity_file == NULL) {
		if (cfg->nintegrity_paths != 0)
			cfg_error_at(ctx, cfg_where(ctx, "integrity_paths", 0),
			    "integrity_paths without an integrity manifest: "
			    "add `integrity FILE` (pbxgate integrity record "
			    "writes it)");
		return cfg->nintegrity_paths != 0 ? -1 : 0;
	}
	if ((cfg->pins = gw_pins_new()) == NULL) {
		cfg_error_at(ctx, cfg_where(ctx, "integrity", 0), "integrity: "
		    "out of memory");
		return -1;
	}
	(void)gw_pins_load(cfg->pins, cfg->integrity_file, known_bad_report,
	    &pr);
	return pr.errors != 0 ? -1 : 0;
}

/* Every step runs even after a failure so that `check` reports all. */
int
cfg_build_runtime(struct cfg_ctx *ctx, bool process, bool site)
{
	int r = process ? build_file_tickets(ctx) : 0;

	if (!site)
		return r;
	if (r == 0)	/* else the server contexts would lack their keys */
		r |= build_server_tls(ctx);
	r |= build_upstream_tls(ctx);
	r |= build_policy(ctx);
	r |= build_known_bad(ctx);
	r |= build_integrity(ctx);
	return r == 0 ? 0 : -1;
}

static void
free_upstream(struct gw_upstream *up)
{
	free(up->url);
	free(up->host);
	free(up->hostport);
	free(up->ca_file);
	free(up->sni);
}

void
cfg_free_contents(struct gw_config *cfg)
{
	size_t i;

	/* sessions hold their own reference: the context outlives us if a
	 * mail transaction is still in flight */
	if (cfg->mailctx != NULL)
		mail_ctx_unref(cfg->mailctx);
	if (cfg->tls != NULL)
		cert_server_free(cfg->tls);
	if (cfg->upstream_tls != NULL)
		cert_client_free(cfg->upstream_tls);
	cert_tickets_free(cfg->file_tickets);
	free(cfg->ticket_key_file);
	if (cfg->policy != NULL)
		pol_free(cfg->policy);
	for (i = 0; i < GW_MAX_CERTS; i++) {
		free(cfg->certs[i].cert_file);
		free(cfg->certs[i].key_file);
	}
	free_upstream(&cfg->upstream);
	free(cfg->path);
	free(cfg->user);
	free(cfg->access_log);
	free(cfg->error_log);
	free(cfg->audit_log);
	free(cfg->server_name);
	for (i = 0; i < cfg->nserver_names; i++)
		free(cfg->server_names[i]);
	free(cfg->server_names);
	for (i = 0; i < cfg->nfwd_keep; i++)
		free(cfg->fwd_keep[i]);
	free(cfg->fwd_keep);
	free(cfg->policy_file);
	free(cfg->geoip_db);
	gw_knownbad_free(cfg->knownbad);
	for (i = 0; i < cfg->nknown_bad_files; i++)
		free(cfg->known_bad_files[i]);
	free(cfg->known_bad_files);
	for (i = 0; i < cfg->nknown_bad_paths; i++)
		free(cfg->known_bad_paths[i]);
	free(cfg->known_bad_paths);
	gw_pins_free(cfg->pins);
	free(cfg->integrity_file);
	for (i = 0; i < cfg->nintegrity_paths; i++)
		free(cfg->integrity_paths[i]);
	free(cfg->integrity_paths);
	for (i = 0; i < cfg->nintegrity_entries; i++)
		free(cfg->integrity_entries[i]);
	free(cfg->integrity_entries);
	for (i = 0; i < cfg->nintegrity_downloads; i++)
		free(cfg->integrity_downloads[i]);
	free(cfg->integrity_downloads);
	for (i = 0; i < cfg->nsites; i++) {
		free(cfg->sites[i].name);
		free(cfg->sites[i].file);
		if (cfg->sites[i].cfg != NULL)
			gw_config_unref(cfg->sites[i].cfg);
	}
	free(cfg->sites);
	free(cfg->site_names);
	free(cfg->default_site);
	auth_settings_free(&cfg->auth);
	mail_settings_free(&cfg->mail);
	/* a login context closes once no snapshot holds it (site_auth.c) */
	if (cfg->authctx_refs != NULL)
		atomic_fetch_sub(cfg->authctx_refs, 1);
}
