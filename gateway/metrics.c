/* metrics.c -- the process's Prometheus series beyond plain counters:
 * request and upstream duration histograms, policy decisions by action,
 * and their text exposition for admin.c. Every count is an atomic that a
 * worker bumps without a lock; the admin listener reads them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/gw_priv.h"

/* Upper bounds in seconds (the last bucket is +Inf). A PBX answers its
 * API in milliseconds; a long poll or a download takes seconds. */
static const double bounds[GW_HIST_BUCKETS - 1] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

static const char *const route_names[GW_ROUTES] = {
	"proxied", "gateway", "websocket"
};
static const char *const class_names[GW_CLASSES] = {
	"other", "1xx", "2xx", "3xx", "4xx", "5xx"
};

/* The names the auth and mail modules give (auth_audit, finish_message);
 * one they add later counts as "other" until it is listed here. */
static const char *const auth_events[GW_AUTH_EVENTS] = {
	"login_success", "login_failure", "login_ban", "reauth_failure",
	"logout", "enrol", "mfa_self_enrol", "password_change",
	"lockdown_change", "session_revoke", "recovery_codes_new", "other"
};
static const char *const smtp_outcomes[GW_SMTP_OUTCOMES] = {
	"relayed", "scrubbed", "rejected", "tempfail", "refused_by_smarthost",
	"unchecked", "too_big", "line_too_long", "bad_line_end", "other"
};

static const char *const refuse_causes[GW_REFUSE_CAUSES] = {
	"max_connections", "max_connections_per_ip", "max_established_per_ip",
	"tls_handshake", "proxy_protocol", "resources", "shutdown"
};

static size_t
name_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (name != NULL && strcmp(names[i], name) == 0)
			return i;
	return n - 1;
}

void
gw_metrics_auth_event(struct gw_metrics *m, const char *event)
{
	atomic_fetch_add(&m->auth_events[name_index(auth_events,
	    GW_AUTH_EVENTS, event)], 1);
}

void
gw_metrics_refused(struct gw_metrics *m, enum gw_refuse why)
{
	if ((unsigned)why < GW_REFUSE_CAUSES)
		atomic_fetch_add(&m->conns_refused[why], 1);
}

void
gw_metrics_smtp_outcome(struct gw_metrics *m, const char *outcome)
{
	atomic_fetch_add(&m->smtp_outcomes[name_index(smtp_outcomes,
	    GW_SMTP_OUTCOMES, outcome)], 1);
}

void
gw_metrics_site_smtp(struct gw_metrics *m, size_t slot, const char *outcome)
{
	if (slot == 0 || slot > atomic_load(&m->nsite))
		return;
	atomic_fetch_add(&m->site[slot - 1].smtp_outcomes[name_index(
	    smtp_outcomes, GW_SMTP_OUTCOMES, outcome)], 1);
}

/* The slot of (rule, action) among the n of `tab`, naming a free one the
 * first time: a slot goes 0 -> 1 (one thread copies the name) -> 2
 * (readable) and is never freed, so the render and other threads read
 * only named slots. NULL when every slot holds another pair. */
static struct gw_scrub_slot *
scrub_slot(struct gw_scrub_slot *tab, size_t n, const char *rule,
    const char *action)
{
	for (size_t i = 0; i < n; i++) {
		struct gw_scrub_slot *s = &tab[i];
		int st = atomic_load(&s->state), free_st = 0;

		if (st == 0 && atomic_compare_exchange_strong(&s->state,
		    &free_st, 1)) {
			snprintf(s->rule, sizeof(s->rule), "%s", rule);
			snprintf(s->action, sizeof(s->action), "%s", action);
			atomic_store(&s->state, 2);
			return s;
		}
		/* another thread is naming it: the copy takes nanoseconds */
		while ((st = atomic_load(&s->state)) == 1)
			;
		if (strcmp(s->rule, rule) == 0 && strcmp(s->action, action) == 0)
			return s;
	}
	return NULL;
}

void
gw_metrics_scrub_hit(struct gw_metrics *m, const char *rule,
    const char *action, unsigned count)
{
	struct gw_scrub_slot *s = scrub_slot(m->scrub, GW_SCRUB_SLOTS, rule,
	    action);

	atomic_fetch_add(s != NULL ? &s->hits : &m->scrub_other, count);
}

bool
gw_metrics_site_scrub_init(struct gw_metrics *m, size_t slot)
{
	struct gw_site_slot *ss;

	if (slot == 0 || slot > atomic_load(&m->nsite))
		return false;
	ss = &m->site[slot - 1];
	if (atomic_load(&ss->scrub) == NULL)
		atomic_store(&ss->scrub, calloc(GW_SITE_SCRUB_SLOTS,
		    sizeof(struct gw_scrub_slot)));
	return atomic_load(&ss->scrub) != NULL;
}

void
gw_metrics_site_scrub_hit(struct gw_metrics *m, size_t slot,
    const char *rule, const char *action, unsigned count)
{
	struct gw_site_slot *ss;
	struct gw_scrub_slot *tab, *s;

	if (slot == 0 || slot > atomic_load(&m->nsite))
		return;
	ss = &m->site[slot - 1];
	if ((tab = atomic_load(&ss->scrub)) == NULL)
		return;
	s = scrub_slot(tab, GW_SITE_SCRUB_SLOTS, rule, action);
	atomic_fetch_add(s != NULL ? &s->hits : &ss->scrub_other, count);
}

void
gw_metrics_free_sites(struct gw_metrics *m)
{
	size_t n = atomic_load(&m->nsite);

	for (size_t i = 0; m->site != NULL && i < n; i++)
		free(atomic_load(&m->site[i].scrub));
	free(m->site);
	m->site = NULL;
	atomic_store(&m->nsite, 0);
}

static void
hist_observe(struct gw_hist *h, double seconds)
{
	size_t i = 0;

	if (seconds < 0)
		seconds = 0;
	while (i < GW_HIST_BUCKETS - 1 && seconds > bounds[i])
		i++;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->sum_us, (unsigned long long)(seconds * 1e6));
}

int
gw_status_class(int status)
{
	int cls = status / 100;

	return cls >= 1 && cls <= 5 ? cls : 0;
}

size_t
gw_metrics_site_slot(struct gw_metrics *m, const char *name)
{
	size_t n = atomic_load(&m->nsite);

	for (size_t i = 0; i < n; i++)
		if (strcmp(m->site[i].name, name) == 0)
			return i + 1;
	/* made with the first site, so a gateway without sites carries none */
	if (m->site == NULL && (m->site = calloc(GW_SITE_SLOTS,
	    sizeof(*m->site))) == NULL)
		return 0;
	if (n == GW_SITE_SLOTS)
		return 0;
	snprintf(m->site[n].name, sizeof(m->site[n].name), "%s", name);
	atomic_store(&m->nsite, n + 1);	/* published after the name */
	return n + 1;
}

void
gw_metrics_request(struct gw_metrics *m, enum gw_route route, int status,
    double seconds, double upstream_seconds)
{
	hist_observe(&m->request_duration[route][gw_status_class(status)],
	    seconds);
	if (upstream_seconds >= 0)
		hist_observe(&m->upstream_response, upstream_seconds);
}

void
gw_metrics_upstream_connect(struct gw_metrics *m, double seconds)
{
	hist_observe(&m->upstream_connect, seconds);
}

void
gw_metrics_decision(struct gw_metrics *m, enum pol_action action)
{
	if ((unsigned)action < GW_ACTIONS)
		atomic_fetch_add(&m->decisions[action], 1);
}

static void
hist_render(struct evbuffer *b, const char *name, const char *labels,
    const struct gw_hist *h)
{
	unsigned long long cum = 0;
	const char *sep = labels[0] != '\0' ? "," : "";

	for (size_t i = 0; i < GW_HIST_BUCKETS; i++) {
		cum += atomic_load(&h->bucket[i]);
		if (i < GW_HIST_BUCKETS - 1)
			evbuffer_add_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n",
			    name, labels, sep, bounds[i], cum);
		else
			evbuffer_add_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n",
			    name, labels, sep, cum);
	}
	if (labels[0] == '\0')
		evbuffer_add_printf(b, "%s_sum %.6f\n%s_count %llu\n", name,
		    (double)atomic_load(&h->sum_us) / 1e6, name, cum);
	else
		evbuffer_add_printf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n",
		    name, labels, (double)atomic_load(&h->sum_us) / 1e6, name,
		    labels, cum);
}

void
gw_prom_escape(char *dst, size_t dstlen, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 3 < dstlen; src++) {
		if (*src == '\\' || *src == '"' || *src == '\n') {
			dst[o++] = '\\';
			dst[o++] = *src == '\n' ? 'n' : *src;
		} else
			dst[o++] = *src;
	}
	if (dstlen > 0)
		dst[o < dstlen ? o : dstlen - 1] = '\0';
}

static void
head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* Counted from the store by auth_refresh(), never at scrape time; absent
 * without a user store or before the first count. */
static void
store_gauges(struct evbuffer *b, struct auth_ctx *auth)
{
	long long g[AUTH_GAUGES];

	if (!auth_gauges(auth, g))
		return;
	head(b, "pbxgate_bans_active", "gauge", "Login bans in force, by "
	    "kind (user name or client address).");
	evbuffer_add_printf(b, "pbxgate_bans_active{kind=\"name\"} %lld\n"
	    "pbxgate_bans_active{kind=\"address\"} %lld\n",
	    g[AUTH_GAUGE_BANS_NAME], g[AUTH_GAUGE_BANS_ADDRESS]);
	head(b, "pbxgate_sessions_active", "gauge", "Login sessions not "
	    "ended, revoked or past session_max.");
	evbuffer_add_printf(b, "pbxgate_sessions_active %lld\n",
	    g[AUTH_GAUGE_SESSIONS]);
	head(b, "pbxgate_enrolments_pending", "gauge", "Enrolment links "
	    "neither used nor expired.");
	evbuffer_add_printf(b, "pbxgate_enrolments_pending %lld\n",
	    g[AUTH_GAUGE_ENROLMENTS]);
}

/* With sites: the same gauges for each site with a store, one series per
 * site (label site), each family's samples together as the text format
 * asks; absent for a site before its first count. */
void
gw_metrics_site_stores(struct evbuffer *b, const struct gw_config *cfg)
{
	static const struct {
		const char *name, *help, *label;
		int gauge;
	} fam[] = {
		{ "pbxgate_bans_active", "Login bans in force, by kind (user "
		    "name or client address).", ",kind=\"name\"",
		    AUTH_GAUGE_BANS_NAME },
		{ "pbxgate_bans_active", NULL, ",kind=\"address\"",
		    AUTH_GAUGE_BANS_ADDRESS },
		{ "pbxgate_sessions_active", "Login sessions not ended, revoked "
		    "or past session_max.", "", AUTH_GAUGE_SESSIONS },
		{ "pbxgate_enrolments_pending", "Enrolment links neither used "
		    "nor expired.", "", AUTH_GAUGE_ENROLMENTS },
	};
	long long (*g)[AUTH_GAUGES];
	bool *have;
	size_t n = cfg->nsites, i, f;

	g = calloc(n > 0 ? n : 1, sizeof(*g));
	have = calloc(n > 0 ? n : 1, sizeof(*have));
	for (i = 0; g != NULL && have != NULL && i < n; i++)
		have[i] = cfg->sites[i].cfg->authctx != NULL &&
		    auth_gauges(cfg->sites[i].cfg->authctx, g[i]);
	for (f = 0; g != NULL && have != NULL &&
	    f < sizeof(fam) / sizeof(*fam); f++) {
		if (fam[f].help != NULL)
			head(b, fam[f].name, "gauge", fam[f].help);
		for (i = 0; i < n; i++)
			if (have[i])
				evbuffer_add_printf(b, "%s{site=\"%s\"%s} %lld\n",
				    fam[f].name, cfg->sites[i].name, fam[f].label,
				    g[i][fam[f].gauge]);
	}
	free(g);
	free(have);
}

/* The PostgreSQL store's change listener (auth_store_pg_live.c): its
 * three families, the top level's without labels or each site's with
 * `site`. A store without a listener (SQLite, none) has no series. */
static const struct {
	const char *name, *type, *help;
} listener_fam[] = {
	{ "pbxgate_user_store_listener_connected", "gauge", "1 while the user "
	    "store's change listener is connected and caught up." },
	{ "pbxgate_user_store_listener_reconnects_total", "counter",
	    "Connections the change listener made again after losing one." },
	{ "pbxgate_user_store_reloads_total", "counter", "Reads of the "
	    "in-memory user and revocation tables the change listener made." },
};

static long long
listener_value(const struct auth_live_info *i, size_t f)
{
	if (f == 0)
		return i->connected ? 1 : 0;
	return f == 1 ? i->reconnects : i->reloads;
}

static void
store_listener(struct evbuffer *b, struct auth_ctx *auth)
{
	struct auth_live_info i;

	if (!auth_live_info(auth, &i))
		return;
	for (size_t f = 0; f < sizeof(listener_fam) / sizeof(*listener_fam);
	    f++) {
		head(b, listener_fam[f].name, listener_fam[f].type,
		    listener_fam[f].help);
		evbuffer_add_printf(b, "%s %lld\n", listener_fam[f].name,
		    listener_value(&i, f));
	}
}

/* With sites: each site's listener, one series per site, each family's
 * samples together (read once per scrape, so the three agree). */
void
gw_metrics_site_listeners(struct evbuffer *b, const struct gw_config *cfg)
{
	size_t n = cfg->nsites, i, f;
	struct auth_live_info *li = calloc(n > 0 ? n : 1, sizeof(*li));
	bool *have = calloc(n > 0 ? n : 1, sizeof(*have)), any = false;

	for (i = 0; li != NULL && have != NULL && i < n; i++) {
		have[i] = cfg->sites[i].cfg->authctx != NULL &&
		    auth_live_info(cfg->sites[i].cfg->authctx, &li[i]);
		any |= have[i];
	}
	for (f = 0; any && f < sizeof(listener_fam) / sizeof(*listener_fam);
	    f++) {
		head(b, listener_fam[f].name, listener_fam[f].type,
		    listener_fam[f].help);
		for (i = 0; i < n; i++)
			if (have[i])
				evbuffer_add_printf(b, "%s{site=\"%s\"} %lld\n",
				    listener_fam[f].name, cfg->sites[i].name,
				    listener_value(&li[i], f));
	}
	free(li);
	free(have);
}

/* With sites: each site relay's messages (the sites that never had an
 * smtp_listen show none). */
static void
render_site_smtp(const struct gw_metrics *m, struct evbuffer *b)
{
	size_t n = atomic_load(&m->nsite);
	bool first = true;

	for (size_t i = 0; i < n; i++) {
		if (!atomic_load(&m->site[i].smtp))
			continue;
		if (first)
			head(b, "pbxgate_site_smtp_messages_total", "counter",
			    "Messages each site's SMTP relay finished, by site "
			    "and outcome (as pbxgate_smtp_messages_total).");
		first = false;
		for (size_t k = 0; k < GW_SMTP_OUTCOMES; k++)
			evbuffer_add_printf(b, "pbxgate_site_smtp_messages_total"
			    "{site=\"%s\",outcome=\"%s\"} %llu\n",
			    m->site[i].name, smtp_outcomes[k],
			    atomic_load(&m->site[i].smtp_outcomes[k]));
	}
}

/* The named pairs of one table, then its "other" (always, so that the
 * series exists before the first hit). `site` is a label prefix such as
 * `site="a",` or "". Rule names need no label escaping: mail_rules.c
 * allows [A-Za-z0-9_-] only, as config.c does for site names. */
static void
render_scrub_tab(struct evbuffer *b, const char *name, const char *site,
    const struct gw_scrub_slot *tab, size_t n, const atomic_ullong *other)
{
	for (size_t i = 0; i < n; i++) {
		const struct gw_scrub_slot *s = &tab[i];

		if (atomic_load(&s->state) != 2)
			continue;
		evbuffer_add_printf(b, "%s{%srule=\"%s\",action=\"%s\"} %llu\n",
		    name, site, s->rule, s->action, atomic_load(&s->hits));
	}
	evbuffer_add_printf(b, "%s{%srule=\"other\",action=\"other\"} %llu\n",
	    name, site, atomic_load(other));
}

/* All relays' hits together; then, with site relays, each site's own under
 * a family of its own, as pbxgate_site_smtp_messages_total does. */
static void
render_scrub_hits(const struct gw_metrics *m, struct evbuffer *b)
{
	static const char site_fam[] = "pbxgate_site_smtp_scrub_rule_hits_total";
	size_t n = atomic_load(&m->nsite);
	bool first = true;
	char lab[80];

	head(b, "pbxgate_smtp_scrub_rule_hits_total", "counter", "Matches of "
	    "each scrub rule in relayed or rejected mail, by rule and action "
	    "(rule=\"other\": past the first 64 rule and action pairs).");
	render_scrub_tab(b, "pbxgate_smtp_scrub_rule_hits_total", "", m->scrub,
	    GW_SCRUB_SLOTS, &m->scrub_other);
	for (size_t i = 0; i < n; i++) {
		const struct gw_site_slot *ss = &m->site[i];
		const struct gw_scrub_slot *tab = atomic_load(&ss->scrub);

		if (!atomic_load(&ss->smtp) || tab == NULL)
			continue;
		if (first)
			head(b, site_fam, "counter", "Matches of each site "
			    "relay's scrub rules, by site, rule and action "
			    "(rule=\"other\": past a site's first 16 pairs).");
		first = false;
		snprintf(lab, sizeof(lab), "site=\"%s\",", ss->name);
		render_scrub_tab(b, site_fam, lab, tab,
		    GW_SITE_SCRUB_SLOTS, &ss->scrub_other);
	}
}

/* Pinned client code (integrity manifest), by mode; the mismatches by path
 * class: a pinned file that changed, or an unpinned one under
 * integrity_paths. In enforce mode each mismatch is a refusal. */
static void
render_pinned(const struct gw_metrics *m, struct evbuffer *b)
{
	static const char *const mode[2] = { "monitor", "enforce" };

	head(b, "pbxgate_integrity_pinned_checked_total", "counter",
	    "Response bodies on pinned paths hashed whole and compared with "
	    "the integrity manifest, by integrity_mode.");
	for (int i = 0; i < 2; i++)
		evbuffer_add_printf(b, "pbxgate_integrity_pinned_checked_total"
		    "{mode=\"%s\"} %llu\n", mode[i], atomic_load(
		    &m->integrity[GW_INTEGRITY_PIN_CHECKED_MON + i]));
	head(b, "pbxgate_integrity_mismatch_total", "counter", "Client code "
	    "that differs from the integrity manifest, by class (changed: a "
	    "pinned file's body; unpinned: a file under integrity_paths the "
	    "manifest lacks) and integrity_mode (enforce: refused).");
	for (int i = 0; i < 2; i++)
		evbuffer_add_printf(b, "pbxgate_integrity_mismatch_total"
		    "{class=\"changed\",mode=\"%s\"} %llu\n", mode[i],
		    atomic_load(&m->integrity[GW_INTEGRITY_PIN_CHANGED_MON + i]));
	for (int i = 0; i < 2; i++)
		evbuffer_add_printf(b, "pbxgate_integrity_mismatch_total"
		    "{class=\"unpinned\",mode=\"%s\"} %llu\n", mode[i],
		    atomic_load(&m->integrity[GW_INTEGRITY_UNPINNED_MON + i]));
}

void
gw_metrics_render(const struct gw_metrics *m, struct auth_ctx *auth,
    struct evbuffer *b)
{
	char lbl[64];

	head(b, "pbxgate_request_duration_seconds", "histogram", "Time from "
	    "the request's first byte to the end of the answer, by route "
	    "(proxied, gateway page, WebSocket upgrade) and status class.");
	for (int r = 0; r < GW_ROUTES; r++)
		for (int k = 0; k < GW_CLASSES; k++) {
			snprintf(lbl, sizeof lbl, "route=\"%s\",class=\"%s\"",
			    route_names[r], class_names[k]);
			hist_render(b, "pbxgate_request_duration_seconds", lbl,
			    &m->request_duration[r][k]);
		}
	head(b, "pbxgate_upstream_connect_duration_seconds", "histogram",
	    "Time to open a new upstream connection (TCP, and TLS when the "
	    "upstream is https).");
	hist_render(b, "pbxgate_upstream_connect_duration_seconds", "",
	    &m->upstream_connect);
	head(b, "pbxgate_upstream_response_duration_seconds", "histogram",
	    "Time from sending a request upstream to its response head.");
	hist_render(b, "pbxgate_upstream_response_duration_seconds", "",
	    &m->upstream_response);
	head(b, "pbxgate_policy_decisions_total", "counter",
	    "Lockdown policy decisions, by action.");
	for (int a = 0; a < GW_ACTIONS; a++)
		evbuffer_add_printf(b, "pbxgate_policy_decisions_total"
		    "{action=\"%s\"} %llu\n", pol_action_name((enum pol_action)a),
		    atomic_load(&m->decisions[a]));
	head(b, "pbxgate_auth_events_total", "counter", "Login and account "
	    "events, by name: login_success, login_failure and login_ban are "
	    "the logins by result.");
	for (size_t i = 0; i < GW_AUTH_EVENTS; i++)
		evbuffer_add_printf(b, "pbxgate_auth_events_total{event=\"%s\"} "
		    "%llu\n", auth_events[i], atomic_load(&m->auth_events[i]));
	head(b, "pbxgate_smtp_messages_total", "counter", "Messages the SMTP "
	    "relay finished, by outcome (scrubbed: relayed after a scrub rule "
	    "applied).");
	for (size_t i = 0; i < GW_SMTP_OUTCOMES; i++)
		evbuffer_add_printf(b, "pbxgate_smtp_messages_total{outcome=\"%s\"} "
		    "%llu\n", smtp_outcomes[i], atomic_load(&m->smtp_outcomes[i]));
	render_site_smtp(m, b);
	render_scrub_hits(m, b);
	head(b, "pbxgate_integrity_known_bad_checked_total", "counter",
	    "Response bodies on the paths known_bad covers that were hashed "
	    "whole and compared with the lists.");
	evbuffer_add_printf(b, "pbxgate_integrity_known_bad_checked_total %llu\n",
	    atomic_load(&m->integrity[GW_INTEGRITY_KB_CHECKED]));
	head(b, "pbxgate_integrity_known_bad_blocked_total", "counter",
	    "Transfers aborted before their last bytes because the body's "
	    "SHA-256 is on a known_bad list.");
	evbuffer_add_printf(b, "pbxgate_integrity_known_bad_blocked_total %llu\n",
	    atomic_load(&m->integrity[GW_INTEGRITY_KB_BLOCKED]));
	store_gauges(b, auth);
	store_listener(b, auth);
	render_pinned(m, b);
	head(b, "pbxgate_connections_refused_total", "counter", "Client "
	    "connections closed before a request was served, by cause.");
	for (size_t i = 0; i < GW_REFUSE_CAUSES; i++)
		evbuffer_add_printf(b, "pbxgate_connections_refused_total"
		    "{cause=\"%s\"} %llu\n", refuse_causes[i],
		    atomic_load(&m->conns_refused[i]));
}
