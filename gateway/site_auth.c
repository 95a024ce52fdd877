/* site_auth.c -- the login contexts of the sites, and of the top level of
 * a config without sites (the one site such a config has): opened when a
 * snapshot first needs one, shared by the snapshots whose settings match,
 * and closed once none holds it, so that a reload changing a user_db or a
 * login setting serves new requests from the new store while the requests
 * of the old snapshot finish on the old one. The top level's entry has no
 * site name (NULL), so it cannot clash with a site's; the file keeps its
 * name since "site" reads as "where the logins are served", which the top
 * level is when the config has no sites.
 *
 * Lifetime. Each snapshot's site, or its top level, holds one count
 * (authctx_refs), dropped on any thread when the snapshot is freed; a
 * login job holds its snapshot, so it holds the context too. Everything
 * else here runs on the main thread: opening (in the reload, off the
 * workers' loops, as adding a site always was), marking which contexts
 * the snapshot in force uses, and the sweep of the others. A context no
 * snapshot holds, and that the snapshot in force does not name, is closed
 * over a few ticks, none of which waits: its change listener is asked to
 * stop; once its thread has ended (a later tick: it may be inside a host
 * name lookup libpq cannot interrupt, for as long as the resolver takes)
 * it is joined, at once, and a post is sent to the first worker's loop,
 * behind any delivery the listener posted there before it ended; once
 * that post ran, nothing can reach the context and it is closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

/* A context's way to its close; each step is taken by the sweep. */
enum sauth_state {
	SAUTH_OPEN,		/* serving, or held by older snapshots */
	SAUTH_STOPPING,		/* its listener is asked to stop */
	SAUTH_DRAINING		/* listener joined, drain post sent */
};

struct gw_site_auth {
	atomic_int       refs;		/* snapshots holding it */
	bool             current;	/* the snapshot in force names it */
	bool             warned;	/* its store failed once while retired */
	bool             stop_logged;	/* said its listener is still stopping */
	enum sauth_state state;
	atomic_bool      drained;	/* the drain post ran on the worker */
	char            *site;		/* NULL: the top level's */
	struct auth_ctx *auth;
};

static bool
same_site(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

const char *
gw_site_auth_label(const char *site, char *buf, size_t len)
{
	if (site == NULL)
		return "top level";
	snprintf(buf, len, "site %.200s", site);
	return buf;
}

static struct gw_site_auth *
find(struct gw_runtime *rt, const char *site, const struct auth_settings *as)
{
	for (size_t i = 0; i < rt->nsauth; i++) {
		struct gw_site_auth *e = rt->sauth[i];

		if (e->state == SAUTH_OPEN && same_site(e->site, site) &&
		    auth_settings_same(e->auth, as))
			return e;
	}
	return NULL;
}

static struct gw_site_auth *
open_one(struct gw_runtime *rt, const char *site,
    const struct auth_settings *as, const struct gw_site_auth_ops *ops,
    char *err, size_t errlen)
{
	struct gw_site_auth **v, *e = calloc(1, sizeof(*e));

	if (e == NULL || (site != NULL && (e->site = strdup(site)) == NULL)) {
		free(e);
		return snprintf(err, errlen, "out of memory"), NULL;
	}
	if ((e->auth = auth_open(as, ops->audit, rt, err, errlen)) == NULL ||
	    auth_store_pool_start(e->auth, err, errlen) < 0 ||
	    (rt->workers_up && auth_live_start(e->auth, ops->post, rt, err,
	    errlen) < 0) ||
	    (v = reallocarray(rt->sauth, rt->nsauth + 1, sizeof(*v))) == NULL) {
		if (e->auth != NULL && err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		auth_close(e->auth);
		free(e->site);
		free(e);
		return NULL;
	}
	rt->sauth = v;
	rt->sauth[rt->nsauth++] = e;
	return e;
}

int
gw_site_auth_take(struct gw_runtime *rt, const char *site,
    struct gw_config *sc, const struct gw_site_auth_ops *ops, char *err,
    size_t errlen)
{
	struct gw_site_auth *e = find(rt, site, &sc->auth);

	err[0] = '\0';
	if (e == NULL &&
	    (e = open_one(rt, site, &sc->auth, ops, err, errlen)) == NULL)
		return -1;
	atomic_fetch_add(&e->refs, 1);
	sc->authctx = e->auth;
	sc->authctx_refs = &e->refs;
	return 0;
}

static bool
named_by(const struct gw_config *cfg, const struct gw_site_auth *e)
{
	if (cfg->authctx_refs == &e->refs)
		return true;
	for (size_t i = 0; i < cfg->nsites; i++)
		if (cfg->sites[i].cfg->authctx_refs == &e->refs)
			return true;
	return false;
}

void
gw_site_auth_commit(struct gw_runtime *rt, const struct gw_config *cfg)
{
	for (size_t i = 0; i < rt->nsauth; i++) {
		struct gw_site_auth *e = rt->sauth[i];
		bool now = named_by(cfg, e);
		char lb[256];

		if (e->current && !now)
			gw_log(GW_LOG_INFO, "%s: the login context in use "
			    "before this reload closes once its requests are "
			    "done", gw_site_auth_label(e->site, lb, sizeof(lb)));
		e->current = now;
		if (now)
			e->warned = false;	/* warn again if retired again */
	}
}

static void
drained(void *arg)
{
	struct gw_site_auth *e = arg;

	atomic_store(&e->drained, true);
}

static void
close_one(struct gw_runtime *rt, size_t i)
{
	struct gw_site_auth *e = rt->sauth[i];
	char lb[256];

	gw_log(GW_LOG_INFO, "%s: previous login context closed",
	    gw_site_auth_label(e->site, lb, sizeof(lb)));
	auth_close(e->auth);
	free(e->site);
	free(e);
	rt->sauth[i] = rt->sauth[--rt->nsauth];
}

/* Once the listener has ended: joins it and sends the drain post. 0, or
 * -1 to try again on the next tick. The tick that asked does not log: a
 * listener between two polls ends within microseconds of the ask, which
 * that tick cannot see without waiting. */
static int
post_drain(struct gw_runtime *rt, struct gw_site_auth *e, bool asked_now)
{
	char lb[256];

	if (!auth_live_stopped(e->auth)) {
		if (!asked_now && !e->stop_logged) {
			gw_log(GW_LOG_INFO, "%s: the previous login context's "
			    "change listener is still stopping (inside a "
			    "connection attempt it cannot interrupt, such as a "
			    "host name lookup); the context closes once it has",
			    gw_site_auth_label(e->site, lb, sizeof(lb)));
			e->stop_logged = true;
		}
		return -1;
	}
	auth_live_stop(e->auth);	/* its thread has ended: no wait */
	/* without workers nothing was posted: drained now */
	if (!rt->workers_up)
		atomic_store(&e->drained, true);
	else if (gw_runtime_post(rt, rt->workers[0].base, drained, e) < 0)
		return -1;	/* out of memory: next tick */
	e->state = SAUTH_DRAINING;
	return 0;
}

void
gw_site_auth_sweep(struct gw_runtime *rt)
{
	for (size_t i = rt->nsauth; i-- > 0;) {
		struct gw_site_auth *e = rt->sauth[i];
		bool asked_now = e->state == SAUTH_OPEN;

		if (e->current || atomic_load(&e->refs) != 0)
			continue;
		if (asked_now) {
			auth_live_ask_stop(e->auth);
			e->state = SAUTH_STOPPING;
		}
		if (e->state == SAUTH_STOPPING && post_drain(rt, e, asked_now) < 0)
			continue;
		if (atomic_load(&e->drained))
			close_one(rt, i);
	}
}

struct auth_ctx *
gw_site_auth_ctx(struct gw_runtime *rt, size_t i, const char **site)
{
	struct gw_site_auth *e = rt->sauth[i];

	*site = e->site;
	return e->state == SAUTH_OPEN ? e->auth : NULL;
}

/* Waits for each listener, even one stuck in a lookup: at process exit
 * nothing else is left to do, and the loop its posts go to must outlive
 * it. */
void
gw_site_auth_live_stop_all(struct gw_runtime *rt)
{
	for (size_t i = 0; i < rt->nsauth; i++)
		auth_live_stop(rt->sauth[i]->auth);
}

bool
gw_site_auth_current(const struct gw_runtime *rt, size_t i)
{
	return rt->sauth[i]->current;
}

bool
gw_site_auth_warn_once(struct gw_runtime *rt, size_t i)
{
	bool first = !rt->sauth[i]->warned;

	rt->sauth[i]->warned = true;
	return first;
}

void
gw_site_auth_free_all(struct gw_runtime *rt)
{
	for (size_t i = 0; i < rt->nsauth; i++) {
		auth_close(rt->sauth[i]->auth);
		free(rt->sauth[i]->site);
		free(rt->sauth[i]);
	}
	free(rt->sauth);
	rt->sauth = NULL;
	rt->nsauth = 0;
}
