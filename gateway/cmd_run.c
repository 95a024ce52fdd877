/* cmd_run.c -- `pbxgate run`: load, bind, drop privileges, start workers,
 * and handle SIGHUP (reload beside the old snapshot), SIGUSR1 (reopen the
 * logs) and SIGTERM (drain), telling the service manager each step. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "event/event.h"
#include "gateway/gw_priv.h"

#define TICKET_ROTATE_S 3600	/* a ticket lives at most two periods */

struct gw_config *
gw_runtime_config(struct gw_runtime *rt)
{
	struct gw_config *c;

	pthread_mutex_lock(&rt->cfg_lock);
	c = gw_config_ref(rt->cfg);
	pthread_mutex_unlock(&rt->cfg_lock);
	return c;
}

static void
report_stderr(void *arg, bool warning, const char *msg)
{
	fprintf(stderr, "%s: %s\n", warning ? "warning" : "error", msg);
}

/* arg: NULL, or a GW_ERRLEN buffer that keeps the first error, which a
 * failed reload quotes in its audit line (the rest are in error_log). */
static void
report_log(void *arg, bool warning, const char *msg)
{
	char *first = arg;

	if (first != NULL && !warning && first[0] == '\0')
		snprintf(first, GW_ERRLEN, "%s", msg);
	gw_log(warning ? GW_LOG_WARN : GW_LOG_ERR, "%s", msg);
}

/* Audit lines (JSON, built by the modules) go to audit_log, one write each. */
static void
audit_write(struct gw_runtime *rt, const char *line)
{
	size_t n = strlen(line);
	struct iovec iov[2] = { { (void *)line, n }, { "\n", 1 } };

	/* one writev: the line and its end reach the file together (O_APPEND) */
	if (rt->audit_fd < 0 || n == 0 || n > 65536)
		return;
	(void)!writev(rt->audit_fd, iov, line[n - 1] == '\n' ? 1 : 2);
}

/* The audit line of a SIGHUP: which file, the generation in force after
 * it, and on failure why (the old generation stays). */
static void
audit_reload(struct gw_runtime *rt, const char *path,
    unsigned long long generation, const char *error)
{
	struct ev_audit *ev = ev_audit_new("config", "reload", error == NULL ?
	    "success" : "failure");
	char *line;
	size_t n;

	ev_audit_str(ev, "file.path", path);
	ev_audit_int(ev, "pbxgate.config.generation", (long long)generation);
	if (error != NULL)
		ev_audit_str(ev, "error.message", error);
	if ((line = ev_audit_line(ev, &n)) != NULL)
		audit_write(rt, line);
	free(line);
}

static void
auth_audit_cb(void *arg, const char *event, const char *line)
{
	struct gw_runtime *rt = arg;

	gw_metrics_auth_event(&rt->m, event);
	audit_write(rt, line);
}

static void
mail_audit_cb(void *arg, const char *outcome, const char *line)
{
	struct gw_runtime *rt = arg;

	gw_metrics_smtp_outcome(&rt->m, outcome);
	audit_write(rt, line);
}

/* A site relay's message: counted for its site too. */
static void
mail_site_audit_cb(void *arg, const char *outcome, const char *line)
{
	struct gw_mail_site *ms = arg;

	gw_metrics_site_smtp(&ms->rt->m, ms->slot, outcome);
	mail_audit_cb(ms->rt, outcome, line);
}

static void
mail_hit_cb(void *arg, const char *rule, const char *action, unsigned count)
{
	struct gw_runtime *rt = arg;

	gw_metrics_scrub_hit(&rt->m, rule, action, count);
}

/* A site relay's rule hit: counted for its site too. */
static void
mail_site_hit_cb(void *arg, const char *rule, const char *action,
    unsigned count)
{
	struct gw_mail_site *ms = arg;

	gw_metrics_site_scrub_hit(&ms->rt->m, ms->slot, rule, action, count);
	mail_hit_cb(ms->rt, rule, action, count);
}

static int
resolve_upstream(struct gw_config *cfg, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV }, *res;
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", cfg->upstream.port);
	rc = getaddrinfo(cfg->upstream.host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "upstream %s: cannot resolve %s: %s",
		    cfg->upstream.url, cfg->upstream.host, gai_strerror(rc));
		return -1;
	}
	if (res->ai_addrlen > sizeof(cfg->up_addr)) {
		freeaddrinfo(res);
		return snprintf(err, errlen, "upstream %s: address too long",
		    cfg->upstream.url), -1;
	}
	memcpy(&cfg->up_addr, res->ai_addr, res->ai_addrlen);
	cfg->up_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int
open_log_fd(const char *path, atomic_int *fd, char *err, size_t errlen)
{
	int nfd;

	if (path == NULL) {
		nfd = -1;
	} else if (strcmp(path, "-") == 0) {
		nfd = dup(1);
	} else {
		nfd = gw_log_file_open(path);
		if (nfd < 0) {
			snprintf(err, errlen, "cannot open %s: %s; the previous "
			    "file stays in use", path, strerror(errno));
			return -1;
		}
	}
	if (gw_log_swap_fd(fd, nfd) < 0) {
		snprintf(err, errlen, "%s: dup2: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Every log, even when one fails: the others still move to their new files.
 * err holds the first failure. */
static int
open_logs(struct gw_runtime *rt, const struct gw_config *cfg, char *err,
    size_t errlen)
{
	char e2[GW_ERRLEN] = "";
	int rc = 0;

	if (gw_log_open(cfg, err, errlen) < 0)
		rc = -1;
	if (open_log_fd(cfg->access_log, &rt->access_fd,
	    rc < 0 ? e2 : err, rc < 0 ? sizeof(e2) : errlen) < 0)
		rc = -1;
	if (open_log_fd(cfg->audit_log, &rt->audit_fd,
	    rc < 0 ? e2 : err, rc < 0 ? sizeof(e2) : errlen) < 0)
		rc = -1;
	return rc;
}

/* SMTP AUTH's Argon2 check goes to the pool like a web login. rt->pool is
 * read at submit time: on start it is made (start_pool) after the first
 * snapshot; NULL there (shutting down) makes the session answer 454. */
static int
mail_submit(void *arg, struct event_base *base, mail_job_fn run,
    mail_job_fn done, void *job)
{
	struct gw_runtime *rt = arg;

	return gw_tpool_submit(rt->pool, base, run, done, job);
}

/* The route the SNI callback asks (certs.h): the site of the name, or
 * default_site, else NULL (unrecognized_name). arg: the snapshot, which
 * the connection holds through its handshake. */
static struct cert_server *
route_site(void *arg, const char *host)
{
	const struct gw_site *s = gw_site_for_name(arg, host);

	return s != NULL ? s->cfg->tls : NULL;
}

static int
auth_live_post(void *arg, auth_task_fn fn, void *fnarg);

static const struct gw_site_auth_ops site_auth_ops = {
	auth_audit_cb, auth_live_post
};

/* Each site's upstream address and login context; the SNI route. */
static int
finish_sites(struct gw_runtime *rt, struct gw_config *cfg, char *err,
    size_t errlen)
{
	char e2[GW_ERRLEN];

	for (size_t i = 0; i < cfg->nsites; i++) {
		struct gw_config *sc = cfg->sites[i].cfg;

		sc->metrics_slot = gw_metrics_site_slot(&rt->m,
		    cfg->sites[i].name);
		if (resolve_upstream(sc, e2, sizeof(e2)) < 0)
			return snprintf(err, errlen, "site %s: %.400s",
			    cfg->sites[i].name, e2), -1;
		if (sc->auth.user_db == NULL)
			continue;
		/* where the site is written: its user_db may be inherited */
		if (gw_site_auth_take(rt, cfg->sites[i].name, sc,
		    &site_auth_ops, e2, sizeof(e2)) < 0)
			return snprintf(err, errlen, "%s:%u:%u: site %s: user "
			    "store: %.400s", cfg->sites[i].file,
			    cfg->sites[i].line, cfg->sites[i].col,
			    cfg->sites[i].name, e2), -1;
	}
	cfg->route.fn = route_site;
	cfg->route.arg = cfg;
	return 0;
}

/* The audit argument of the relay of the site in metrics slot `slot`,
 * made once (main thread, before the snapshot is published); NULL
 * without a slot. */
static struct gw_mail_site *
site_mail_arg(struct gw_runtime *rt, size_t slot)
{
	struct gw_mail_site *ms;

	if (slot == 0 || slot > GW_SITE_SLOTS || rt->m.site == NULL)
		return NULL;
	if (rt->mail_sites == NULL && (rt->mail_sites = calloc(GW_SITE_SLOTS,
	    sizeof(*rt->mail_sites))) == NULL)
		return NULL;
	ms = &rt->mail_sites[slot - 1];
	if (ms->rt == NULL) {
		ms->rt = rt;
		ms->slot = slot;
	}
	return ms;
}

/* The relay of c's own smtp_listen lines: the top level's, or a site's
 * with that site's rules and its certificates for STARTTLS (chosen among
 * them by the client's SNI, the first without one). */
static int
start_mail(struct gw_runtime *rt, struct gw_config *c, const char *site,
    char *err, size_t errlen)
{
	struct gw_mail_site *ms;
	char e2[GW_ERRLEN];

	if (c->mail.nlisten == 0)
		return 0;
	ms = site != NULL ? site_mail_arg(rt, c->metrics_slot) : NULL;
	if (ms != NULL)
		c->mailctx = mail_ctx_new(&c->mail, c->tls, mail_site_audit_cb,
		    ms, e2, sizeof(e2));
	else	/* no slot (1024 named, or out of memory): totals only */
		c->mailctx = mail_ctx_new(&c->mail, c->tls, mail_audit_cb, rt,
		    e2, sizeof(e2));
	if (c->mailctx == NULL) {
		if (site != NULL)
			snprintf(err, errlen, "site %s: %.400s", site, e2);
		else
			snprintf(err, errlen, "%s", e2);
		return -1;
	}
	mail_ctx_set_runner(c->mailctx, mail_submit, rt);
	/* without its pairs (out of memory) the site's hits count in the
	 * totals only, as its messages do without a slot */
	if (ms != NULL && gw_metrics_site_scrub_init(&rt->m, ms->slot))
		mail_ctx_set_hit_counter(c->mailctx, mail_site_hit_cb, ms);
	else
		mail_ctx_set_hit_counter(c->mailctx, mail_hit_cb, rt);
	if (site != NULL)
		mail_ctx_set_site(c->mailctx, site);
	if (ms != NULL)
		atomic_store(&rt->m.site[ms->slot - 1].smtp, true);
	return 0;
}

/* The top level's login context, without sites: taken like a site's
 * (site_auth.c), so that a reload changing user_db or a login setting
 * opens the new store here, off the workers' loops, and one that cannot
 * open it fails. Without user_db: NULL, rules needing a login deny
 * (warn_no_user_db). */
static int
take_top_auth(struct gw_runtime *rt, struct gw_config *cfg, char *err,
    size_t errlen)
{
	char e2[GW_ERRLEN];

	if (cfg->auth.user_db == NULL ||
	    gw_site_auth_take(rt, NULL, cfg, &site_auth_ops, err, errlen) == 0)
		return 0;
	/* libpq's lines name the store; a key file beside it may not */
	if (strstr(err, cfg->auth.user_db) == NULL) {
		snprintf(e2, sizeof(e2), "%s", err);
		snprintf(err, errlen, "user store %.200s: %.280s",
		    cfg->auth.user_db, e2);
	}
	return -1;
}

/* Once the snapshot's error_log is open, at start and on each reload. */
static void
warn_no_user_db(const struct gw_config *cfg)
{
	if (cfg->nsites == 0 && cfg->auth.user_db == NULL && cfg->policy != NULL)
		gw_log(GW_LOG_WARN, "no user_db: policy rules that need a "
		    "login (login, mfa, user, group, role) will deny");
}

/* Runtime pieces that need the process (audit sink, login contexts): the
 * mail context, the upstream addresses, the login context of the top
 * level or of each site. */
static int
finish_snapshot(struct gw_runtime *rt, struct gw_config *cfg, char *err,
    size_t errlen)
{
	if (cfg->nsites > 0) {
		if (finish_sites(rt, cfg, err, errlen) < 0)
			return -1;
	} else {
		if (resolve_upstream(cfg, err, errlen) < 0 ||
		    take_top_auth(rt, cfg, err, errlen) < 0)
			return -1;
	}
	if (cfg->nsites == 0)
		return start_mail(rt, cfg, NULL, err, errlen);
	for (size_t i = 0; i < cfg->nsites; i++)
		if (start_mail(rt, cfg->sites[i].cfg, cfg->sites[i].name, err,
		    errlen) < 0)
			return -1;
	return 0;
}

/* SO_REUSEPORT would let this process join another one's listener (same
 * user) and split its connections: bind once without it, as a probe, so
 * that a second pbxgate on the same address fails like any other. */
static int
probe_free(const struct sockaddr_storage *ss, socklen_t len, const char *what,
    char *err, size_t errlen)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return 0;	/* the real socket() will say why */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) < 0) {
		snprintf(err, errlen, "%s: cannot listen: %s (is another process "
		    "using the port?)", what, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
make_listener(const struct sockaddr_storage *ss, socklen_t len, bool reuseport,
    const char *what, char *err, size_t errlen)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s: socket: %s", what, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* 511 as nginx and Redis use: the kernel clamps it to somaxconn */
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 511) < 0) {
		snprintf(err, errlen, "%s: cannot listen: %s (is another process "
		    "using the port?)", what, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct run_state {
	struct gw_runtime rt;
	struct event_base *base;
	struct event *ev_hup, *ev_term, *ev_int, *ev_usr1, *ev_tick, *ev_auth;
	int (*fds)[GW_MAX_LISTEN];
	int admin_fd;
	int smtp_fds[GW_MAX_SMTP_LISTEN];
	int nsmtp;
	const char *path;
	time_t store_logged;	/* last "user store" error line; 0: fine */
};

#define STORE_LOG_EVERY 30	/* seconds between repeats of a store error */

/* The relay's listeners, top level or sites, in the same order. */
static bool
same_smtp(const struct gw_config *o, const struct gw_config *n)
{
	const struct gw_config *a, *b;
	size_t i, j;

	for (size_t k = 0; ; k++) {
		a = gw_smtp_listener(o, k, &i);
		b = gw_smtp_listener(n, k, &j);
		if (a == NULL || b == NULL)
			return a == b;
		if (strcmp(a->mail.listen_text[i], b->mail.listen_text[j]) != 0)
			return false;
	}
}

static void
warn_restart_only(const struct gw_config *o, const struct gw_config *n)
{
	bool same = o->nlisten == n->nlisten && o->workers == n->workers &&
	    o->has_admin == n->has_admin && same_smtp(o, n) &&
	    o->auth.login_threads == n->auth.login_threads &&
	    o->auth.login_queue == n->auth.login_queue;

	for (size_t i = 0; same && i < n->nlisten; i++)
		same = strcmp(o->listen[i].text, n->listen[i].text) == 0;
	if (!same || (o->user == NULL) != (n->user == NULL))
		gw_log(GW_LOG_WARN, "reload: listen, admin_listen, smtp_listen, "
		    "workers, user, login_threads and login_queue changes take "
		    "effect only after a restart");
}

/* The next snapshot, or NULL with err set. Keys first (the parent's key
 * process): the new certificates are checked against them. When the
 * parent could not stage them and the file itself is broken, our own parse
 * says where (FILE:LINE:COL) instead of the parent's summary. */
static struct gw_config *
load_next(struct gw_runtime *rt, const char *path, char *err, size_t errlen)
{
	bool keys_ok = gw_privsep_keys(false, err, errlen) == 0;
	struct gw_config *n;
	char first[GW_ERRLEN] = "";

	n = gw_config_load_ex(path, true, rt->tickets, report_log, first);
	if (n == NULL) {
		snprintf(err, errlen, "%s", first[0] != '\0' ? first :
		    "configuration has errors (see above)");
		return NULL;
	}
	if (!keys_ok || finish_snapshot(rt, n, err, errlen) < 0) {
		gw_config_unref(n);
		return NULL;
	}
	return n;
}

static void
reload(struct run_state *s)
{
	struct gw_runtime *rt = &s->rt;
	struct gw_config *old = gw_runtime_config(rt), *n;
	char err[GW_ERRLEN];

	gw_notify_reloading();
	gw_log(GW_LOG_INFO, "SIGHUP: reloading %s", old->path);
	n = load_next(rt, old->path, err, sizeof(err));
	if (n == NULL) {
		gw_log(GW_LOG_ERR, "reload failed: %s; generation %llu stays in force",
		    err, (unsigned long long)old->generation);
		audit_reload(rt, old->path, old->generation, err);
		gw_notify_ready(old->generation, true);
		gw_config_unref(old);
		/* counted last: whoever sees the count (a monitor, the tests)
		 * finds the reload's log line and audit record written */
		atomic_fetch_add(&rt->m.reload_error, 1);
		return;
	}
	n->generation = old->generation + 1;
	/* the keys the new certificates were loaded against go live */
	if (gw_privsep_keys(true, err, sizeof(err)) < 0)
		gw_log(GW_LOG_ERR, "reload: %s", err);
	warn_restart_only(old, n);
	/* before the new generation shows in /metrics: whoever sees it
	 * sees its reload's time too */
	atomic_store(&rt->m.reload_ok_at, (long long)time(NULL));
	pthread_mutex_lock(&rt->cfg_lock);
	rt->cfg = n;
	pthread_mutex_unlock(&rt->cfg_lock);
	gw_site_auth_commit(rt, n);
	if (open_logs(rt, n, err, sizeof(err)) < 0)
		gw_log(GW_LOG_ERR, "reload: logs: %s; logging may be incomplete", err);
	warn_no_user_db(n);
	gw_workers_recheck(rt);
	/* in force only once every worker accepts under it: counted after */
	if (!gw_workers_serving(rt, n->generation, 2000))
		gw_log(GW_LOG_WARN, "reload: a worker is not serving generation "
		    "%llu yet", (unsigned long long)n->generation);
	audit_reload(rt, n->path, n->generation, NULL);
	gw_log(GW_LOG_INFO, "configuration generation %llu in force",
	    (unsigned long long)n->generation);
	gw_notify_ready(n->generation, false);
	atomic_fetch_add(&rt->m.reload_ok, 1);	/* last, as for a failure */
	gw_config_unref(old);	/* ours */
	gw_config_unref(old);	/* the runtime's */
}

/* SIGUSR1, as nginx: the running snapshot's log paths, opened again; the
 * config on disk is not read (it may be broken, or half edited). */
static void
reopen_logs(struct run_state *s)
{
	struct gw_config *cfg = gw_runtime_config(&s->rt);
	char err[GW_ERRLEN];

	if (open_logs(&s->rt, cfg, err, sizeof(err)) < 0)
		gw_log(GW_LOG_ERR, "SIGUSR1: reopening logs: %s", err);
	else
		gw_log(GW_LOG_INFO, "SIGUSR1: log files reopened");
	gw_config_unref(cfg);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct run_state *s = arg;

	if (sig == SIGHUP) {
		reload(s);
		return;
	}
	if (sig == SIGUSR1) {
		reopen_logs(s);
		return;
	}
	gw_notify_stopping();
	gw_log(GW_LOG_INFO, "signal %d: stopping; finishing requests in flight",
	    (int)sig);
	atomic_store(&s->rt.stopping, true);
	gw_workers_stop(&s->rt);
	event_base_loopexit(s->base, NULL);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run_state *s = arg;

	cert_tickets_rotate(s->rt.tickets);
}

/* Changes made by `pbxgate user` in another process reach the in-memory
 * session tables here (one cheap query when nothing changed): every open
 * store's refresh, a previous context's too, since requests and tunnels
 * of older snapshots still check sessions there. 0, or -1 with the first
 * error of a context in force in err: only those decide /readyz. A
 * previous context's store may well be gone (the reload moved away from
 * it), which must not take a serving gateway out of its balancer: its
 * failure is a warning, once per context. */
static int
refresh_all(struct gw_runtime *rt, char *err, size_t errlen)
{
	int rc = 0;

	for (size_t i = 0; i < rt->nsauth; i++) {
		char e2[GW_ERRLEN], lb[256];
		const char *site;
		struct auth_ctx *a = gw_site_auth_ctx(rt, i, &site);

		if (a == NULL || auth_refresh(a, e2, sizeof(e2)) == 0)
			continue;
		if (!gw_site_auth_current(rt, i)) {
			if (gw_site_auth_warn_once(rt, i))
				gw_log(GW_LOG_WARN, "user store refresh: %s "
				    "(its previous login context, kept for "
				    "connections of an older configuration; "
				    "not counted in /readyz): %.400s",
				    gw_site_auth_label(site, lb, sizeof(lb)), e2);
			continue;
		}
		/* the top level's errors read as they always did */
		if (rc == 0 && site == NULL)
			snprintf(err, errlen, "%s", e2);
		else if (rc == 0)
			snprintf(err, errlen, "%s: %.400s",
			    gw_site_auth_label(site, lb, sizeof(lb)), e2);
		rc = -1;
	}
	return rc;
}

static void
auth_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run_state *s = arg;
	char err[GW_ERRLEN];

	time_t now = time(NULL);

	/* contexts a reload replaced, once their last request is done */
	gw_site_auth_sweep(&s->rt);
	/* none left (a reload removed user_db): what an old store said of
	 * itself no longer holds the gateway back */
	if (s->rt.nsauth == 0) {
		gw_ready_store(&s->rt, true);
		s->store_logged = 0;
		return;
	}
	if (refresh_all(&s->rt, err, sizeof(err)) == 0) {
		gw_ready_store(&s->rt, true);
		if (s->store_logged != 0)
			gw_log(GW_LOG_INFO, "user store: answering again");
		s->store_logged = 0;
		return;
	}
	gw_ready_store(&s->rt, false);
	/* at once, then every STORE_LOG_EVERY s while it lasts: /readyz
	 * answers at every probe, the log need not at every tick */
	if (s->store_logged != 0 && now - s->store_logged < STORE_LOG_EVERY &&
	    now >= s->store_logged)
		return;
	gw_log(GW_LOG_ERR, "user store refresh: %s", err);
	s->store_logged = now;
}

/* The store's change listener hands its reads to the first worker's loop
 * (auth.h, auth_live_start): the tables are the process's, one swap is
 * enough, and the mailbox is the one pool completions travel by. */
static int
auth_live_post(void *arg, auth_task_fn fn, void *fnarg)
{
	struct gw_runtime *rt = arg;

	return gw_runtime_post(rt, rt->workers[0].base, fn, fnarg);
}

static int
bind_all(struct run_state *s, const struct gw_config *cfg, char *err, size_t errlen)
{
	const struct gw_config *o;
	size_t at;

	s->fds = calloc((size_t)cfg->workers, sizeof(*s->fds));
	if (s->fds == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	for (size_t j = 0; j < cfg->nlisten; j++)
		if (probe_free(&cfg->listen[j].ss, cfg->listen[j].sslen,
		    cfg->listen[j].text, err, errlen) < 0)
			return -1;
	for (int i = 0; i < cfg->workers; i++)
		for (size_t j = 0; j < cfg->nlisten; j++) {
			s->fds[i][j] = make_listener(&cfg->listen[j].ss,
			    cfg->listen[j].sslen, true, cfg->listen[j].text, err, errlen);
			if (s->fds[i][j] < 0)
				return -1;
		}
	s->admin_fd = -1;
	if (cfg->has_admin) {
		s->admin_fd = make_listener(&cfg->admin_listen.ss,
		    cfg->admin_listen.sslen, false, "admin_listen", err, errlen);
		if (s->admin_fd < 0)
			return -1;
	}
	for (size_t k = 0; k < GW_MAX_SMTP_LISTEN &&
	    (o = gw_smtp_listener(cfg, k, &at)) != NULL; k++) {
		s->smtp_fds[k] = make_listener(&o->mail.listen[at],
		    o->mail.listen_len[at], false, "smtp_listen", err, errlen);
		if (s->smtp_fds[k] < 0)
			return -1;
		s->nsmtp++;
	}
	return 0;
}

/* The login contexts were taken with the snapshot (finish_snapshot); the
 * pool serves them all, those a reload opens, and SMTP AUTH. It is made
 * even without any user_db, since a reload may add one. */
static int
start_pool(struct gw_runtime *rt, struct gw_config *cfg, char *err,
    size_t errlen)
{
	rt->pool = gw_tpool_new(cfg->auth.login_threads, cfg->auth.login_queue,
	    gw_runtime_post, rt);
	if (rt->pool == NULL)
		return snprintf(err, errlen, "cannot start the login threads"), -1;
	return 0;
}

/* In the privileged parent, before the child exists. */
static int
parent_bind(void *arg, const struct gw_config *cfg, char *err, size_t errlen)
{
	return bind_all(arg, cfg, err, errlen);
}

static int
run_setup(struct run_state *s, const char *path, char *err, size_t errlen)
{
	struct gw_runtime *rt = &s->rt;
	struct gw_config *cfg;

	pthread_mutex_init(&rt->cfg_lock, NULL);
	rt->access_fd = rt->audit_fd = -1;
	rt->tickets = cert_tickets_new(err, errlen);
	rt->peers = gw_peertab_new();
	if (rt->tickets == NULL || rt->peers == NULL)
		return -1;
	cfg = gw_config_load_ex(path, true, rt->tickets, report_stderr, NULL);
	if (cfg == NULL)
		return snprintf(err, errlen, "%s: configuration has errors", path), -1;
	rt->cfg = cfg;
	cfg->generation = 1;
	/* the listeners are the parent's (bind_all), inherited; the user
	 * and ownership checks were made there too (privsep.c) */
	if (finish_snapshot(rt, cfg, err, errlen) < 0 ||
	    open_logs(rt, cfg, err, errlen) < 0)
		return -1;
	gw_site_auth_commit(rt, cfg);
	warn_no_user_db(cfg);
	if (start_pool(rt, cfg, err, errlen) < 0)
		return -1;
	if (cfg->nsites == 0 && cfg->upstream.tls && !cfg->upstream.verify)
		gw_log(GW_LOG_WARN, "upstream_verify off: the upstream's certificate "
		    "is not checked; anyone on the path to %s can read and change "
		    "traffic", cfg->upstream.url);
	rt->nworkers = cfg->workers;
	rt->workers = calloc((size_t)cfg->workers, sizeof(*rt->workers));
	if (rt->workers == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	if (gw_workers_start(rt, s->fds, (int)cfg->nlisten, s->admin_fd,
	    s->smtp_fds, s->nsmtp, err, errlen) < 0)
		return -1;
	/* the stores a reload opens start theirs when opened (site_auth.c) */
	for (size_t i = 0; i < rt->nsauth; i++) {
		const char *site;
		struct auth_ctx *a = gw_site_auth_ctx(rt, i, &site);

		if (a != NULL && auth_live_start(a, auth_live_post, rt, err,
		    errlen) < 0)
			return -1;
	}
	rt->workers_up = true;
	return 0;
}

static int
run_loop(struct run_state *s)
{
	struct timeval tick = { TICKET_ROTATE_S, 0 }, refresh = { 2, 0 };

	s->base = event_base_new();
	if (s->base == NULL)
		return -1;
	s->ev_hup = evsignal_new(s->base, SIGHUP, signal_cb, s);
	s->ev_term = evsignal_new(s->base, SIGTERM, signal_cb, s);
	s->ev_int = evsignal_new(s->base, SIGINT, signal_cb, s);
	s->ev_usr1 = evsignal_new(s->base, SIGUSR1, signal_cb, s);
	s->ev_tick = event_new(s->base, -1, EV_PERSIST, tick_cb, s);
	evsignal_add(s->ev_hup, NULL);
	evsignal_add(s->ev_term, NULL);
	evsignal_add(s->ev_int, NULL);
	evsignal_add(s->ev_usr1, NULL);
	gw_privsep_signals_ready();
	evtimer_add(s->ev_tick, &tick);
	s->ev_auth = event_new(s->base, -1, EV_PERSIST, auth_refresh_cb, s);
	evtimer_add(s->ev_auth, &refresh);
	/* listeners listen, workers run, signals are handled: a SIGHUP sent
	 * right after READY=1 is a reload, not the default action */
	atomic_store(&s->rt.m.reload_ok_at, (long long)time(NULL));
	gw_notify_ready(s->rt.cfg->generation, false);
	event_base_dispatch(s->base);
	/* before the join frees the mailbox the listener posts to; a
	 * retired context's listener asked to stop by the sweep is waited
	 * for too (gw_site_auth_ctx no longer names it) */
	gw_site_auth_live_stop_all(&s->rt);
	gw_workers_join(&s->rt);
	event_free(s->ev_auth);
	event_free(s->ev_hup);
	event_free(s->ev_term);
	event_free(s->ev_int);
	event_free(s->ev_usr1);
	event_free(s->ev_tick);
	event_base_free(s->base);
	return 0;
}

static void
run_cleanup(struct run_state *s)
{
	struct gw_runtime *rt = &s->rt;

	gw_tpool_free(rt->pool);
	free(rt->mail_sites);
	free(rt->workers);
	/* before the contexts: freeing the snapshot drops its counts */
	if (rt->cfg)
		gw_config_unref(rt->cfg);
	gw_site_auth_free_all(rt);
	gw_metrics_free_sites(&rt->m);
	gw_peertab_free(rt->peers);
	if (rt->tickets)
		cert_tickets_free(rt->tickets);
	if (rt->access_fd >= 0)
		close(rt->access_fd);
	if (rt->audit_fd >= 0)
		close(rt->audit_fd);
}

/* The unprivileged child (privsep.c forked it and shed its privileges):
 * the workers, until SIGTERM. */
static int
run_child(void *arg)
{
	struct run_state *s = arg;
	char err[GW_ERRLEN] = "";
	int rc;

	if (run_setup(s, s->path, err, sizeof(err)) < 0) {
		gw_log(GW_LOG_ERR, "%s", err);
		rc = 1;
		if (s->rt.workers != NULL && s->rt.workers[0].base != NULL) {
			atomic_store(&s->rt.stopping, true);
			/* workers may be half started: nothing to join safely */
		}
	} else {
		gw_log(GW_LOG_INFO, "pbxgate %s: %d worker(s), %s %s",
		    PBXGATE_VERSION, s->rt.nworkers, s->rt.cfg->nsites > 0 ?
		    "sites, the first's upstream" : "upstream",
		    s->rt.cfg->nsites > 0 ? s->rt.cfg->sites[0].cfg->upstream.url :
		    s->rt.cfg->upstream.url);
		rc = run_loop(s) < 0 ? 1 : 0;
		gw_log(GW_LOG_INFO, "stopped");
	}
	run_cleanup(s);
	return rc;
}

int
gw_cmd_run(const char *path, int argc, char **argv)
{
	static const struct gw_privsep_ops ops = { parent_bind, run_child };
	struct run_state *s;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-d") != 0 && strcmp(argv[i], "--debug") != 0) {
			fprintf(stderr, "pbxgate run: unknown argument \"%s\"\n",
			    argv[i]);
			return 2;
		}
		gw_log_set_level(GW_LOG_DEBUG);
	}
	if (path == NULL)
		path = PBXGATE_DEFAULT_CONF;
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return 1;
	s->path = path;
	rc = gw_privsep_run(path, &ops, s);
	free(s->fds);
	free(s);
	return rc;
}
