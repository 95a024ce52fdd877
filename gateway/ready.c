/* ready.c -- the readiness answer (/readyz): the process serves, the user
 * store answers, and the upstream accepted a connection recently. Traffic
 * keeps the upstream's record fresh; without a recent success /readyz
 * probes it itself with one TCP connect, bounded by
 * upstream_connect_timeout, so an idle gateway still tells the truth. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "gateway/gw_priv.h"

#define FRESH_MS 10000	/* an upstream success this recent needs no probe */
#define PROBE_MAX_MS 4000	/* under the admin connection's 5 s */

struct gw_ready_probe {
	struct gw_runtime  *rt;
	struct bufferevent *bev;
	gw_ready_cb         cb;
	void               *arg;
};

static long long
now_ms(void)
{
	struct timespec ts;

	gw_now(&ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
gw_ready_upstream(struct gw_runtime *rt, bool ok)
{
	atomic_store(ok ? &rt->ready.up_ok_ms : &rt->ready.up_fail_ms, now_ms());
}

void
gw_ready_store(struct gw_runtime *rt, bool ok)
{
	atomic_store(&rt->ready.store_bad, !ok);
}

static void
probe_done(struct gw_ready_probe *p, bool ok)
{
	gw_ready_upstream(p->rt, ok);
	if (ok)
		p->cb(p->arg, 200, "ready\n");
	else
		p->cb(p->arg, 503, "upstream unreachable: no connection within "
		    "upstream_connect_timeout\n");
	bufferevent_free(p->bev);
	free(p);
}

static void
probe_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	probe_done(arg, (what & BEV_EVENT_CONNECTED) != 0);
}

static struct gw_ready_probe *
probe(struct gw_worker *w, gw_ready_cb cb, void *arg)
{
	struct gw_runtime *rt = w->rt;
	struct gw_config *cfg = gw_runtime_config(rt);
	unsigned ms = cfg->to.upstream_connect < PROBE_MAX_MS ?
	    cfg->to.upstream_connect : PROBE_MAX_MS;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct sockaddr_storage ss;
	socklen_t sl;
	struct gw_ready_probe *p = calloc(1, sizeof *p);

	gw_config_unref(cfg);
	if (p == NULL ||
	    (p->bev = bufferevent_socket_new(w->base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(p);
		cb(arg, 503, "cannot probe the upstream: out of memory\n");
		return NULL;
	}
	p->rt = rt, p->cb = cb, p->arg = arg;
	pthread_mutex_lock(&rt->up_lock);
	ss = rt->up_addr;
	sl = rt->up_addrlen;
	pthread_mutex_unlock(&rt->up_lock);
	bufferevent_setcb(p->bev, NULL, NULL, probe_event, p);
	bufferevent_set_timeouts(p->bev, &tv, &tv);
	/* a refused connect reports through probe_event, never here */
	if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&ss,
	    (int)sl) < 0) {
		probe_done(p, false);
		return NULL;
	}
	return p;
}

void
gw_ready_cancel(struct gw_ready_probe *p)
{
	if (p == NULL)
		return;
	bufferevent_free(p->bev);
	free(p);
}

#define LISTENER_DOWN "user store: change listener disconnected, " \
	"sign-outs from other gateways wait: see the error log\n"

/* With sites each site's store has its own change listener (the top
 * level then has none): the first one cut off answers, naming its site.
 * The snapshot in force says which sites, and holds their contexts. */
static bool
site_listener_down(struct gw_runtime *rt, gw_ready_cb cb, void *arg)
{
	struct gw_config *cfg = gw_runtime_config(rt);
	struct auth_live_info live;
	char text[256];
	bool down = false;

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
	long long ok = atomic_load(&rt->ready.up_ok_ms);
	struct auth_live_info live;

	if (atomic_load(&rt->stopping)) {
		cb(arg, 503, "stopping\n");
		return NULL;
	}
	if (auth_live_info(rt->auth, &live) && !live.connected) {
		cb(arg, 503, LISTENER_DOWN);
		return NULL;
	}
	if (site_listener_down(rt, cb, arg))
		return NULL;
	/* set by the store refresh only, which runs with a store: the top
	 * level's or, with sites, any site's */
	if (atomic_load(&rt->ready.store_bad)) {
		cb(arg, 503, "user store unreadable: see the error log\n");
		return NULL;
	}
	if (ok != 0 && ok >= atomic_load(&rt->ready.up_fail_ms) &&
	    now_ms() - ok < FRESH_MS) {
		cb(arg, 200, "ready\n");
		return NULL;
	}
	return probe(w, cb, arg);
}
