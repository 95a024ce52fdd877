/* ready.c -- the readiness answer (/readyz): the process serves, the user
 * store answers, and the upstream accepted a connection recently: the top
 * level's upstream or, with sites, every site's. Traffic keeps each
 * upstream's record fresh; without a recent success /readyz probes it
 * itself with one TCP connect, bounded by upstream_connect_timeout, so an
 * idle gateway still tells the truth. The probes of all sites run at
 * once: 100 idle sites cost one timeout, not 100. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "gateway/gw_priv.h"

#define FRESH_MS 10000	/* an upstream success this recent needs no probe */
#define PROBE_MAX_MS 4000	/* under the admin connection's 5 s */

#define UP_DOWN "upstream unreachable: no connection within " \
	"upstream_connect_timeout\n"

/* One upstream's connect; site is NULL for the top level's. */
struct probe_one {
	struct gw_ready_probe *p;
	struct bufferevent    *bev;
	struct gw_ready_rec   *rec;
	const char            *site;	/* in the snapshot p holds */
	bool                   done, ok;
};

struct gw_ready_probe {
	struct gw_config   *cfg;	/* the snapshot probed (a reference) */
	gw_ready_cb         cb;
	void               *arg;
	size_t              n, pending;
	struct probe_one    one[];
};

static long long
now_ms(void)
{
	struct timespec ts;

	gw_now(&ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The record of the upstream of the site in metrics slot `slot` (0: the
 * top level's, or a site's that got no slot). */
static struct gw_ready_rec *
rec_of(struct gw_runtime *rt, size_t slot)
{
	if (slot == 0 || rt->m.site == NULL || slot > GW_SITE_SLOTS)
		return &rt->ready.up;
	return &rt->m.site[slot - 1].ready;
}

void
gw_ready_upstream(struct gw_runtime *rt, size_t slot, bool ok)
{
	struct gw_ready_rec *r = rec_of(rt, slot);

	atomic_store(ok ? &r->ok_ms : &r->fail_ms, now_ms());
}

void
gw_ready_store(struct gw_runtime *rt, bool ok)
{
	atomic_store(&rt->ready.store_bad, !ok);
}

static bool
fresh(struct gw_ready_rec *r)
{
	long long ok = atomic_load(&r->ok_ms);

	return ok != 0 && ok >= atomic_load(&r->fail_ms) &&
	    now_ms() - ok < FRESH_MS;
}

static void
probe_free(struct gw_ready_probe *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->one[i].bev != NULL)
			bufferevent_free(p->one[i].bev);
	gw_config_unref(p->cfg);
	free(p);
}

/* Every probe has answered: the first upstream down, in the file's
 * order, names the answer. p is freed before cb runs (cb may free the
 * admin connection that would cancel it). */
static void
probe_finish(struct gw_ready_probe *p)
{
	gw_ready_cb cb = p->cb;
	void *arg = p->arg;
	char text[256] = "ready\n";
	int status = 200;

	for (size_t i = 0; i < p->n && status == 200; i++) {
		if (p->one[i].ok)
			continue;
		status = 503;
		if (p->one[i].site == NULL)
			snprintf(text, sizeof(text), "%s", UP_DOWN);
		else
			snprintf(text, sizeof(text), "site %.64s: %s",
			    p->one[i].site, UP_DOWN);
	}
	probe_free(p);
	cb(arg, status, text);
}

static void
one_done(struct probe_one *o, bool ok)
{
	struct gw_ready_probe *p = o->p;

	atomic_store(ok ? &o->rec->ok_ms : &o->rec->fail_ms, now_ms());
	o->done = true;
	o->ok = ok;
	if (--p->pending == 0)
		probe_finish(p);
}

static void
probe_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	one_done(arg, (what & BEV_EVENT_CONNECTED) != 0);
}

/* Starts one connect; false when it failed at once (recorded, not
 * counted as pending). */
static bool
start_one(struct gw_worker *w, struct probe_one *o,
    const struct gw_config *up)
{
	unsigned ms = up->to.upstream_connect < PROBE_MAX_MS ?
	    up->to.upstream_connect : PROBE_MAX_MS;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	o->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (o->bev == NULL)
		return false;
	bufferevent_setcb(o->bev, NULL, NULL, probe_event, o);
	bufferevent_set_timeouts(o->bev, &tv, &tv);
	/* a refused connect reports through probe_event, never here */
	if (bufferevent_socket_connect(o->bev,
	    (const struct sockaddr *)&up->up_addr, (int)up->up_addrlen) < 0) {
		atomic_store(&o->rec->fail_ms, now_ms());
		return false;
	}
	return true;
}

/* The upstreams without a recent success, probed together; NULL when
 * cb was answered at once. */
static struct gw_ready_probe *
probe(struct gw_worker *w, gw_ready_cb cb, void *arg)
{
	struct gw_config *cfg = gw_runtime_config(w->rt);
	size_t n = cfg->nsites > 0 ? cfg->nsites : 1, k = 0;
	struct gw_ready_probe *p = calloc(1, sizeof(*p) + n * sizeof(p->one[0]));

	if (p == NULL) {
		gw_config_unref(cfg);
		cb(arg, 503, "cannot probe the upstream: out of memory\n");
		return NULL;
	}
	p->cfg = cfg, p->cb = cb, p->arg = arg;
	for (size_t i = 0; i < n; i++) {
		const struct gw_config *up = cfg->nsites > 0 ?
		    cfg->sites[i].cfg : cfg;
		struct probe_one *o = &p->one[k];

		o->rec = rec_of(w->rt, cfg->nsites > 0 ? up->metrics_slot : 0);
		if (fresh(o->rec))
			continue;
		o->p = p;
		o->site = cfg->nsites > 0 ? cfg->sites[i].name : NULL;
		k++;
		if (start_one(w, o, up))
			p->pending++;
		else
			o->done = true;
	}
	p->n = k;
	if (p->pending > 0)
		return p;
	probe_finish(p);
	return NULL;
}

void
gw_ready_cancel(struct gw_ready_probe *p)
{
	if (p != NULL)
		probe_free(p);
}

#define LISTENER_DOWN "user store: change listener disconnected, " \
	"sign-outs from other gateways wait: see the error log\n"

/* The first store of the snapshot in force whose change listener is cut
 * off answers: the top level's, or with sites the site's, named. The
 * snapshot holds the contexts while we read them. */
static bool
listener_down(struct gw_runtime *rt, gw_ready_cb cb, void *arg)
{
	struct gw_config *cfg = gw_runtime_config(rt);
	struct auth_live_info live;
	char text[256];
	bool down = false;

	if (cfg != NULL && cfg->nsites == 0 && cfg->authctx != NULL &&
	    auth_live_info(cfg->authctx, &live) && !live.connected) {
		snprintf(text, sizeof(text), "%s", LISTENER_DOWN);
		down = true;
	}
	for (size_t i = 0; cfg != NULL && i < cfg->nsites && !down; i++) {
		struct auth_ctx *a = cfg->sites[i].cfg->authctx;

		if (a == NULL || !auth_live_info(a, &live) || live.connected)
			continue;
		snprintf(text, sizeof(text), "site %.64s: %s", cfg->sites[i].name,
		    LISTENER_DOWN);
		down = true;
	}
	if (cfg != NULL)
		gw_config_unref(cfg);
	if (down)
		cb(arg, 503, text);
	return down;
}

struct gw_ready_probe *
gw_ready_check(struct gw_worker *w, gw_ready_cb cb, void *arg)
{
	struct gw_runtime *rt = w->rt;

	if (atomic_load(&rt->stopping)) {
		cb(arg, 503, "stopping\n");
		return NULL;
	}
	if (listener_down(rt, cb, arg))
		return NULL;
	/* set by the store refresh only, which runs with a store: the top
	 * level's or, with sites, any site's */
	if (atomic_load(&rt->ready.store_bad)) {
		cb(arg, 503, "user store unreadable: see the error log\n");
		return NULL;
	}
	return probe(w, cb, arg);
}
