/* worker.c -- worker threads: one event_base each, its own SO_REUSEPORT
 * listeners, connection caps, and a bounded graceful stop. */
#include <errno.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/gw_priv.h"

static int  worker_post(struct gw_worker *, gw_job_fn, void *);
static void recheck_post(void *);

static void
accept_cb(evutil_socket_t lfd, evutil_socket_t fd, struct sockaddr *sa,
    socklen_t salen, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_runtime *rt = w->rt;
	struct gw_config *cfg;
	enum gw_refuse why = GW_REFUSE_MAX_CONNECTIONS;
	int one = 1;
	bool ok, trusted;

	if (atomic_load(&rt->stopping)) {
		gw_metrics_refused(&rt->m, GW_REFUSE_SHUTDOWN);
		close(fd);
		return;
	}
	cfg = gw_worker_config(w);
	/* trusted proxies carry many clients: only the total limits them */
	trusted = cfg->ntrusted > 0 &&
	    pol_cidr_list_contains(cfg->trusted, cfg->ntrusted, sa);
	/* the total is counted first; the per-address table only when the
	 * total admits the connection, so both are undone exactly once */
	ok = atomic_fetch_add(&rt->conns_all, 1) < (long long)cfg->lim.connections;
	if (ok && !trusted)
		ok = gw_peertab_enter(rt->peers, sa, cfg->lim.connections_per_ip,
		    cfg->lim.established_per_ip, &why);
	if (!ok) {
		atomic_fetch_sub(&rt->conns_all, 1);
		gw_metrics_refused(&rt->m, why);
		gw_config_unref(cfg);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (trusted && cfg->proxy_protocol)
		gw_proxy_accept(w, fd, sa, salen, cfg->to.tls_handshake);
	else
		gw_conn_start(w, fd, sa, salen, !trusted);
	gw_config_unref(cfg);
}

static void
admin_accept_cb(evutil_socket_t lfd, evutil_socket_t fd, struct sockaddr *sa,
    socklen_t salen, void *arg)
{
	gw_admin_accept(arg, fd);
}

static void
smtp_accept_cb(evutil_socket_t lfd, evutil_socket_t fd, struct sockaddr *sa,
    socklen_t salen, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_config *cfg = gw_runtime_config(w->rt);
	const struct gw_config *o = NULL;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);

	/* the address reached names the relay (a site's): by address, not
	 * by the listener's rank, which a reload may have moved */
	if (!atomic_load(&w->rt->stopping) && getsockname(
	    lfd, (struct sockaddr *)&local, &llen) == 0)
		o = gw_smtp_owner(cfg, (struct sockaddr *)&local, llen);
	if (o == NULL || o->mailctx == NULL)
		close(fd);
	else
		mail_session_start(o->mailctx, w->base, fd, sa, (socklen_t)salen);
	gw_config_unref(cfg);
}

/* Stop: no new connections; idle keep-alive connections go now, the rest
 * when their request is done or when shutdown_timeout expires. */
static void
drain_check(struct gw_worker *w)
{
	struct gw_conn *c, *n;

	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = n) {
		n = TAILQ_NEXT(c, entry);
		/* an idle connection may still hold an answer being flushed:
		 * it closes itself after the flush (keepalive is off now) */
		if ((c->state == CS_IDLE && !c->resume &&
		    evbuffer_get_length(gw_io_output(c->io)) == 0) ||
		    c->state == CS_HANDSHAKE)
			gw_conn_close(c);
	}
	gw_proxy_close_all(w);	/* still before their TLS handshake */
	gw_upool_flush(w);
	/* SMTP sessions end on their own (421, or after their transaction);
	 * the poll below notices when the last one is gone */
	if (TAILQ_EMPTY(&w->conns) && mail_sessions_count(w->base) == 0)
		event_base_loopexit(w->base, NULL);
}

static void
drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	drain_check(arg);
}

/* A connection that could not be set up: undo its counting, close. */
void
gw_conn_refused(struct gw_worker *w, evutil_socket_t fd,
    const struct sockaddr *sa, bool counted)
{
	gw_metrics_refused(&w->rt->m, GW_REFUSE_RESOURCES);
	if (counted)
		gw_peertab_leave(w->rt->peers, sa, false);
	atomic_fetch_sub(&w->rt->conns_all, 1);
	close(fd);
}

void
gw_worker_conn_done(struct gw_worker *w, struct gw_conn *unused)
{
	if (w->draining)
		drain_check(w);
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_conn *c;

	gw_log(GW_LOG_WARN, "worker %d: shutdown_timeout reached, closing "
	    "remaining connections", w->id);
	TAILQ_FOREACH(c, &w->conns, entry)
		gw_conn_close(c);
	event_base_loopexit(w->base, NULL);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_config *cfg = gw_runtime_config(w->rt);
	struct timeval tv = { cfg->to.shutdown / 1000,
	    (long)(cfg->to.shutdown % 1000) * 1000 }, poll = { 0, 100000 };

	gw_config_unref(cfg);
	w->draining = true;
	event_del(w->recheck_timer);
	for (int i = 0; i < w->nlev; i++)
		gw_listener_disable(w->lev[i]);
	if (w->admin)
		gw_listener_disable(w->admin);
	for (int i = 0; i < w->nsmtp; i++)
		gw_listener_disable(w->smtp[i]);
	w->drain_timer = evtimer_new(w->base, drain_timeout_cb, w);
	evtimer_add(w->drain_timer, &tv);
	w->drain_poll = event_new(w->base, -1, EV_PERSIST, drain_poll_cb, w);
	evtimer_add(w->drain_poll, &poll);
	mail_sessions_shutdown(w->base);
	drain_check(w);
}

/* The snapshot for new work on this worker, with a reference for the
 * caller. Lock-free on the request path: the worker's own copy changes
 * only on its thread, when recheck_cb runs after a reload. */
struct gw_config *
gw_worker_config(struct gw_worker *w)
{
	return gw_config_ref(w->cfg);
}

static void
refresh_config(struct gw_worker *w)
{
	struct gw_config *cur = gw_runtime_config(w->rt);

	if (cur == w->cfg) {
		gw_config_unref(cur);
		return;
	}
	gw_config_unref(w->cfg);
	w->cfg = cur;
	atomic_store(&w->serving, cur->generation);
}

/* Tunnels live for hours; the policy or a session may change under them.
 * Each one is judged again, as its upgrade request was. */
static void
recheck_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_config *cfg;
	struct gw_conn *c;

	refresh_config(w);
	cfg = gw_worker_config(w);
	TAILQ_FOREACH(c, &w->conns, entry) {
		if (c->state != CS_TUNNEL || c->freeing)
			continue;
		if (!gw_relay_recheck(c, cfg)) {
			gw_log(GW_LOG_INFO, "client %s: WebSocket closed: no longer "
			    "allowed", c->rq->client_ip);
			gw_conn_close(c);
		}
	}
	gw_config_unref(cfg);
}

void
gw_workers_recheck(struct gw_runtime *rt)
{
	for (int i = 0; i < rt->nworkers; i++)
		(void)worker_post(&rt->workers[i], recheck_post, &rt->workers[i]);
}

/* Whether every worker serves `generation` (or a later one), waiting up
 * to timeout_ms: a worker accepts under its own w->cfg, which only its
 * thread switches (recheck_cb, posted by gw_workers_recheck), so a reload
 * is not in force until each has run that. A short poll: the wait is
 * rare (one per reload) and a worker switches within a loop pass. */
bool
gw_workers_serving(struct gw_runtime *rt, uint64_t generation, int timeout_ms)
{
	const struct timespec tick = { 0, 1000000 };	/* 1 ms */

	for (int waited = 0;; waited++) {
		int i = 0;

		while (i < rt->nworkers &&
		    atomic_load(&rt->workers[i].serving) >= generation)
			i++;
		if (i == rt->nworkers)
			return true;
		if (waited >= timeout_ms || atomic_load(&rt->stopping))
			return false;
		(void)nanosleep(&tick, NULL);
	}
}

static void *
worker_main(void *arg)
{
	struct gw_worker *w = arg;

	gw_keywait_start(w->base);
	event_base_dispatch(w->base);
	gw_keywait_end();
	return NULL;
}

/* A worker's base is touched by its own thread only (other threads post
 * through the mailbox below), so it needs no lock: libevent otherwise
 * takes a mutex for every event_add, event_del and event_active. The
 * epoll changelist folds changes made in one loop pass into one call. */
static struct event_base *
new_base(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *b;

	if (ec == NULL)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	b = event_base_new_with_config(ec);
	event_config_free(ec);
	return b;
}

/* ---- the mailbox: the only way another thread reaches a worker ---- */

struct gw_post {
	struct gw_post *next;
	gw_job_fn       fn;
	void           *arg;
};

static int
worker_post(struct gw_worker *w, gw_job_fn fn, void *arg)
{
	struct gw_post *p = malloc(sizeof(*p));
	uint64_t one = 1;

	if (p == NULL)
		return -1;
	p->next = NULL;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&w->mbox_lock);
	if (w->mbox_tail)
		w->mbox_tail->next = p;
	else
		w->mbox = p;
	w->mbox_tail = p;
	pthread_mutex_unlock(&w->mbox_lock);
	(void)!write(w->wake_fd, &one, sizeof(one));
	return 0;
}

int
gw_runtime_post(void *post_arg, const struct event_base *base, gw_job_fn fn,
    void *arg)
{
	struct gw_runtime *rt = post_arg;

	for (int i = 0; i < rt->nworkers; i++)
		if (rt->workers[i].base == base)
			return worker_post(&rt->workers[i], fn, arg);
	return -1;
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_post *p, *n;
	uint64_t v;

	(void)!read(fd, &v, sizeof(v));
	if (atomic_exchange(&w->stop_requested, false))
		stop_cb(-1, 0, w);
	pthread_mutex_lock(&w->mbox_lock);
	p = w->mbox;
	w->mbox = w->mbox_tail = NULL;
	pthread_mutex_unlock(&w->mbox_lock);
	for (; p != NULL; p = n) {
		n = p->next;
		p->fn(p->arg);
		free(p);
	}
}

static void
recheck_post(void *arg)
{
	recheck_cb(-1, 0, arg);
}

/* The parent listens already (backlog 511): listen() is not called here,
 * and the seccomp filter refuses it. */
static struct gw_listener *
listen_on(struct gw_worker *w, int fd, gw_accept_fn cb)
{
	return gw_listener_new(w->base, fd, cb, w);
}

int
gw_workers_start(struct gw_runtime *rt, int fds[][GW_MAX_LISTEN], int nfds,
    int admin_fd, const int *smtp_fds, int nsmtp, char *err, size_t errlen)
{
	/* a revoked session loses its tunnels within this period */
	struct timeval recheck_every = { 10, 0 };

	for (int i = 0; i < rt->nworkers; i++) {
		struct gw_worker *w = &rt->workers[i];

		w->id = i;
		w->rt = rt;
		w->cfg = gw_runtime_config(rt);
		atomic_store(&w->serving, w->cfg->generation);
		TAILQ_INIT(&w->conns);
		TAILQ_INIT(&w->idle);
		LIST_INIT(&w->ppwaits);
		w->base = new_base();
		if (w->base == NULL) {
			snprintf(err, errlen, "worker %d: cannot create event base", i);
			return -1;
		}
		pthread_mutex_init(&w->mbox_lock, NULL);
		w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->wake_ev = w->wake_fd < 0 ? NULL : event_new(w->base, w->wake_fd,
		    EV_READ | EV_PERSIST, wake_cb, w);
		if (w->wake_ev == NULL || event_add(w->wake_ev, NULL) < 0) {
			snprintf(err, errlen, "worker %d: cannot create its wake-up "
			    "event: %s", i, strerror(errno));
			return -1;
		}
		w->recheck_timer = event_new(w->base, -1, EV_PERSIST, recheck_cb, w);
		evtimer_add(w->recheck_timer, &recheck_every);
		for (int j = 0; j < nfds; j++) {
			w->lev[j] = listen_on(w, fds[i][j], accept_cb);
			if (w->lev[j] == NULL) {
				snprintf(err, errlen, "worker %d: listener: %s", i,
				    strerror(errno));
				return -1;
			}
			w->nlev++;
		}
		/* the admin and SMTP listeners are few and quiet: worker 0 */
		if (i == 0 && admin_fd >= 0)
			w->admin = listen_on(w, admin_fd, admin_accept_cb);
		for (int j = 0; i == 0 && j < nsmtp && j < GW_MAX_SMTP_LISTEN; j++)
			w->smtp[w->nsmtp++] = listen_on(w, smtp_fds[j], smtp_accept_cb);
	}
	for (int i = 0; i < rt->nworkers; i++) {
		if (pthread_create(&rt->workers[i].thread, NULL, worker_main,
		    &rt->workers[i]) != 0) {
			snprintf(err, errlen, "cannot start worker thread %d", i);
			return -1;
		}
	}
	return 0;
}

void
gw_workers_stop(struct gw_runtime *rt)
{
	uint64_t one = 1;

	/* a flag, not a post: stopping must not depend on malloc */
	for (int i = 0; i < rt->nworkers; i++) {
		atomic_store(&rt->workers[i].stop_requested, true);
		(void)!write(rt->workers[i].wake_fd, &one, sizeof(one));
	}
}

void
gw_workers_join(struct gw_runtime *rt)
{
	for (int i = 0; i < rt->nworkers; i++)
		pthread_join(rt->workers[i].thread, NULL);
	/* pool jobs finish now, while the bases they report to still exist */
	gw_tpool_free(rt->pool);
	rt->pool = NULL;
	for (int i = 0; i < rt->nworkers; i++) {
		struct gw_worker *w = &rt->workers[i];
		struct gw_conn *c;

		/* loop exited: free what is left without callbacks */
		while ((c = TAILQ_FIRST(&w->conns)) != NULL)
			gw_conn_free(c);
		gw_proxy_close_all(w);
		gw_upool_free(w);
		for (int j = 0; j < w->nlev; j++)
			gw_listener_free(w->lev[j]);
		if (w->admin)
			gw_listener_free(w->admin);
		for (int j = 0; j < w->nsmtp; j++)
			gw_listener_free(w->smtp[j]);
		if (w->drain_timer)
			event_free(w->drain_timer);
		if (w->drain_poll)
			event_free(w->drain_poll);
		gw_config_unref(w->cfg);
		/* posts nobody ran (pool completions are delivered by
		 * gw_tpool_free above; recheck/stop need nothing now) */
		for (struct gw_post *p = w->mbox, *n; p != NULL; p = n) {
			n = p->next;
			free(p);
		}
		event_free(w->wake_ev);
		close(w->wake_fd);
		pthread_mutex_destroy(&w->mbox_lock);
		event_free(w->recheck_timer);
		event_base_free(w->base);
	}
}
