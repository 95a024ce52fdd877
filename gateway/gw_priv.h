/* gw_priv.h -- structures shared by the gateway's own files (runtime,
 * workers, client and upstream connections). Not an API for other modules.
 *
 * Threads: the main thread owns the runtime and swaps config snapshots;
 * each worker thread owns its event_base and everything hanging off it
 * (client connections, pooled upstream connections). Nothing of a worker is
 * touched by another thread except through event_active() on its events.
 */
#ifndef PBXGATE_GW_PRIV_H
#define PBXGATE_GW_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <llhttp.h>
#include <openssl/ssl.h>

#include "gateway/gateway.h"

/* Bytes queued towards a peer before we stop reading from the other side:
 * this is what keeps streamed bodies from being buffered whole. */
#define GW_HIGH_WATER   ((size_t)256 * 1024)
#define GW_LINGER_MS    2000		/* drain time after an error reply */
#define GW_LOCAL_MS     30000		/* bound on a /_pbxgate/ page's work */
#define GW_TRIM_MS      20		/* idle this long: give buffers back */
#define GW_MAX_HEADERS_HARD 1000	/* whatever the config says */

/* metrics.c: a latency histogram (per-bucket counts, not cumulative). */
#define GW_HIST_BUCKETS 14
struct gw_hist {
	atomic_ullong bucket[GW_HIST_BUCKETS];	/* last = +Inf */
	atomic_ullong sum_us;
};
enum gw_route { GW_ROUTE_PROXIED, GW_ROUTE_GATEWAY, GW_ROUTE_WEBSOCKET };
#define GW_ROUTES  3
#define GW_CLASSES 6	/* status / 100, 0 = other */
#define GW_ACTIONS 4	/* enum pol_action */
#define GW_AUTH_EVENTS 12	/* metrics.c: auth_events[], last = other */
#define GW_SMTP_OUTCOMES 10	/* metrics.c: smtp_outcomes[], last = other */
/* metrics.c: integrity[], bodies judged against the known_bad lists and
 * the integrity manifest; the pinned ones by mode (monitor, enforce). */
enum gw_integrity_count {
	GW_INTEGRITY_KB_CHECKED, GW_INTEGRITY_KB_BLOCKED,
	GW_INTEGRITY_PIN_CHECKED_MON, GW_INTEGRITY_PIN_CHECKED_ENF,
	GW_INTEGRITY_PIN_CHANGED_MON, GW_INTEGRITY_PIN_CHANGED_ENF,
	GW_INTEGRITY_UNPINNED_MON, GW_INTEGRITY_UNPINNED_ENF,
};
#define GW_INTEGRITY_COUNTS 8
/* Why the gateway closed a client connection before serving it: the
 * cause label of pbxgate_connections_refused_total (metrics.c's names). */
enum gw_refuse {
	GW_REFUSE_MAX_CONNECTIONS,	/* max_connections */
	GW_REFUSE_PER_IP,		/* max_connections_per_ip (unproven) */
	GW_REFUSE_ESTABLISHED_PER_IP,	/* max_established_per_ip */
	GW_REFUSE_TLS_HANDSHAKE,	/* handshake failed or timed out */
	GW_REFUSE_PROXY_PROTOCOL,	/* bad or missing PROXY header */
	GW_REFUSE_RESOURCES,		/* out of memory or TLS state */
	GW_REFUSE_SHUTDOWN,		/* accepted while stopping */
};
#define GW_REFUSE_CAUSES 7
/* metrics.c: scrub rule hits by (rule, action); rule names are
 * [A-Za-z0-9_-] (mail_rules.c). Slots are taken once and kept across
 * reloads; past the last, hits count under rule "other". */
#define GW_SCRUB_SLOTS 64
struct gw_scrub_slot {
	atomic_int    state;	/* 0 free, 1 being named, 2 named */
	char          rule[64];	/* MAIL_RULE_NAME */
	char          action[8];
	atomic_ullong hits;
};

/* One site's request counters, named by the main thread before a snapshot
 * naming the site is published (gw_metrics_site_slot) and never renamed:
 * a site a reload drops and brings back counts on. */
#define GW_SITE_SLOTS 1024	/* = CFG_MAX_SITES */
/* A site relay's own (rule, action) pairs, past them rule "other": 16 x
 * 88 bytes per site with a relay, at most 1.4 MiB and 17 series per site
 * for 1024 sites. */
#define GW_SITE_SCRUB_SLOTS 16
/* ready.c: when an upstream last accepted and last refused a connection
 * (monotonic ms, 0 = never). */
struct gw_ready_rec {
	atomic_llong ok_ms, fail_ms;
};

struct gw_site_slot {
	char          name[64];	/* a site name: [A-Za-z0-9_-], 1-63 */
	atomic_ullong requests[6];	/* as gw_metrics.requests */
	/* its relay's messages, as gw_metrics.smtp_outcomes; rendered once
	 * `smtp` is set (a snapshot gave the site an smtp_listen) */
	atomic_bool   smtp;
	atomic_ullong smtp_outcomes[GW_SMTP_OUTCOMES];
	/* its relay's scrub rule hits: GW_SITE_SCRUB_SLOTS pairs made with
	 * its first smtp_listen (main thread, before `smtp` is set and the
	 * snapshot published), NULL before that or when out of memory;
	 * freed by gw_metrics_free_sites(); atomic: a reload may make them
	 * for a relay that started without them while a scrape reads */
	struct gw_scrub_slot *_Atomic scrub;
	atomic_ullong scrub_other;
	/* the site's upstream for /readyz: kept here, where a site's record
	 * outlives reloads as its counters do */
	struct gw_ready_rec ready;
};

struct gw_metrics {
	atomic_ullong requests[6];	/* index = status / 100, 0 = other */
	/* GW_SITE_SLOTS of them (about 230 KiB), made by the first
	 * gw_metrics_site_slot() call: none without sites; NULL then, or
	 * when out of memory (sites count in the totals only). Freed by
	 * run_cleanup. */
	struct gw_site_slot *site;
	atomic_size_t nsite;		/* named slots, a prefix of site[] */
	struct gw_hist request_duration[GW_ROUTES][GW_CLASSES];
	struct gw_hist upstream_connect, upstream_response;
	atomic_ullong decisions[GW_ACTIONS];	/* by enum pol_action */
	atomic_ullong auth_events[GW_AUTH_EVENTS];	/* metrics.c's names */
	atomic_ullong smtp_outcomes[GW_SMTP_OUTCOMES];
	atomic_ullong integrity[GW_INTEGRITY_COUNTS];
	struct gw_scrub_slot scrub[GW_SCRUB_SLOTS];
	atomic_ullong scrub_other;
	atomic_llong  reload_ok_at;	/* Unix time of the last good load */
	atomic_ullong conns_total;
	atomic_ullong conns_refused[GW_REFUSE_CAUSES];
	atomic_llong  conns_active;
	atomic_llong  ws_active;
	atomic_ullong bytes_in;
	atomic_ullong bytes_out;
	atomic_ullong bad_requests;	/* answered 4xx by the gateway itself */
	atomic_ullong upstream_errors;	/* 502 */
	atomic_ullong upstream_timeouts;	/* 504 */
	atomic_ullong reload_ok;
	atomic_ullong reload_error;
	atomic_ullong tls_handshake_errors;
};

/* io.c: a socket stream, TLS or not, on one edge-triggered event. The
 * owner appends to the output buffer and the stream writes it from the
 * loop; callbacks: read (new input), write (output drained below half the
 * high-water mark), event (connected, EOF, error). gw_io_free() may be
 * called from inside a callback; the SSL and the socket are the stream's.
 * A socket given to gw_io_new must be non-blocking already. */
struct gw_io;
#define GW_IO_CONNECTED 1
#define GW_IO_EOF       2
#define GW_IO_ERROR     4
typedef void (*gw_io_cb)(struct gw_io *, void *arg);
typedef void (*gw_io_event_cb)(struct gw_io *, short what, void *arg);
struct gw_io *gw_io_new(struct event_base *, evutil_socket_t fd, SSL *ssl,
    bool server);
int  gw_io_connect(struct gw_io *, const struct sockaddr *, socklen_t);
void gw_io_setcb(struct gw_io *, gw_io_cb rd, gw_io_cb wr, gw_io_event_cb ev,
    void *arg);
void gw_io_free(struct gw_io *);
void gw_io_freeze(struct gw_io *);
struct evbuffer *gw_io_input(struct gw_io *);
struct evbuffer *gw_io_output(struct gw_io *);
SSL *gw_io_ssl(struct gw_io *);
evutil_socket_t gw_io_fd(struct gw_io *);
unsigned long gw_io_ssl_error(struct gw_io *);
void gw_io_read(struct gw_io *, bool on);
void gw_io_shutdown_write(struct gw_io *);
void gw_io_close_notify(struct gw_io *);
bool gw_io_seal_last(struct gw_io *);
bool gw_io_input_quiet(const struct gw_io *);
void gw_io_trim(struct gw_io *);
/* The key process's answer socket a paused handshake waits on turned
 * readable (io_keywait.c): resume it. */
void gw_io_async_ready(struct gw_io *);

/* io_keywait.c: the worker thread's answer sockets from the key process,
 * each in the loop once (cert_keyproc_watch). start before the thread's
 * loop runs, end after it returned (before the base is freed). arm: io's
 * handshake waits on fd; false when fd is not one of them (wait for it
 * per handshake). disarm: io no longer waits on fd (harmless if it
 * did not). */
void gw_keywait_start(struct event_base *);
void gw_keywait_end(void);
bool gw_keywait_arm(struct gw_io *, const struct event_base *, int fd);
void gw_keywait_disarm(const struct gw_io *, int fd);

/* listener.c: a listening socket of a worker, one accept4 per wake-up;
 * the accepted socket is non-blocking and close-on-exec and is the
 * callback's; lfd is the listening socket (the listener's: the SMTP relay
 * asks it which address was reached). */
typedef void (*gw_accept_fn)(evutil_socket_t lfd, evutil_socket_t fd,
    struct sockaddr *sa, socklen_t salen, void *arg);
struct gw_listener;
struct gw_listener *gw_listener_new(struct event_base *, evutil_socket_t fd,
    gw_accept_fn, void *arg);
void gw_listener_disable(struct gw_listener *);
void gw_listener_free(struct gw_listener *);

/* Connections per client address, shared by every worker. */
struct gw_peertab;
struct gw_peertab *gw_peertab_new(void);
void gw_peertab_free(struct gw_peertab *);
/* Counts one more (unproven) connection from `sa`; false (and nothing
 * counted) when the address already has `max_unproven` connections without
 * a complete request head, or `max_all` connections in all (0 = no cap).
 * Addresses are keyed as gw_peertab_key says. `why` (may be NULL) gets
 * the cap that refused, for the refusal counter. */
bool gw_peertab_enter(struct gw_peertab *, const struct sockaddr *sa,
    unsigned max_unproven, unsigned max_all, enum gw_refuse *why);
/* The connection sent its first complete head: it is no longer unproven. */
void gw_peertab_proven(struct gw_peertab *, const struct sockaddr *sa);
/* The connection is gone; `proven` as gw_peertab_proven was called. */
void gw_peertab_leave(struct gw_peertab *, const struct sockaddr *sa,
    bool proven);
/* IPv4 and IPv4-mapped IPv6 as IPv4 (::ffff:a.b.c.d), other IPv6 per /64. */
void gw_peertab_key(const struct sockaddr *sa, struct pol_addr *k);

struct gw_worker;

/* tpool.c: the thread pool for blocking work (Argon2, SQLite). */
struct gw_tpool;
typedef void (*gw_job_fn)(void *arg);
/* Runs fn(arg) on the loop of `base` (from any thread); -1 if it cannot. */
typedef int (*gw_post_fn)(void *post_arg, const struct event_base *base,
    gw_job_fn fn, void *arg);
struct gw_tpool *gw_tpool_new(unsigned nthreads, unsigned queue_limit,
    gw_post_fn post, void *post_arg);
int  gw_tpool_submit(struct gw_tpool *, struct event_base *, gw_job_fn run,
    gw_job_fn done, void *arg);
void gw_tpool_free(struct gw_tpool *);

/* metrics.c: observations from the workers, exposition for admin.c. */
int  gw_status_class(int status);	/* 1..5, 0 = other */
/* The slot of site `name` (1 + its index), naming the next free one the
 * first time; 0 once every slot is taken (the site then counts in the
 * totals only). Main thread only. */
size_t gw_metrics_site_slot(struct gw_metrics *, const char *name);
void gw_metrics_request(struct gw_metrics *, enum gw_route, int status,
    double seconds, double upstream_seconds);	/* upstream < 0: none */
void gw_metrics_upstream_connect(struct gw_metrics *, double seconds);
void gw_metrics_decision(struct gw_metrics *, enum pol_action);
void gw_metrics_auth_event(struct gw_metrics *, const char *event);
void gw_metrics_smtp_outcome(struct gw_metrics *, const char *outcome);
/* The same message counted for its site (slot: gw_metrics_site_slot(),
 * 0 = none). */
void gw_metrics_site_smtp(struct gw_metrics *, size_t slot,
    const char *outcome);
void gw_metrics_scrub_hit(struct gw_metrics *, const char *rule,
    const char *action, unsigned count);
/* Makes site slot `slot`'s scrub pairs (main thread, before the snapshot
 * that gives the site its relay is published); false when out of memory
 * (the site's hits then count in the totals only). */
bool gw_metrics_site_scrub_init(struct gw_metrics *, size_t slot);
/* The same hit counted for its site too (slot 0 or no pairs: totals only). */
void gw_metrics_site_scrub_hit(struct gw_metrics *, size_t slot,
    const char *rule, const char *action, unsigned count);
/* Frees the site slots and what they own (run_cleanup). */
void gw_metrics_free_sites(struct gw_metrics *);
void gw_metrics_refused(struct gw_metrics *, enum gw_refuse);
/* With sites: each site's store gauges, labelled site="NAME". */
void gw_metrics_site_stores(struct evbuffer *, const struct gw_config *);
/* With sites: each site's change listener series (label site). */
void gw_metrics_site_listeners(struct evbuffer *, const struct gw_config *);
void gw_metrics_render(const struct gw_metrics *, struct auth_ctx *,
    struct evbuffer *);
/* A label value in the exposition format (\\, \" and \n escaped),
 * truncated to fit dst; dst is always terminated. */
void gw_prom_escape(char *dst, size_t dstlen, const char *src);

/* ready.c: /readyz. cb gets 200 or 503 and a constant one-line text:
 * at once (then NULL is returned) or, when the upstream must be probed,
 * later from w's loop through the returned probe, which the caller
 * cancels with gw_ready_cancel() if it goes away first (cb is then never
 * called). */
typedef void (*gw_ready_cb)(void *arg, int status, const char *text);
struct gw_runtime;
struct gw_ready_probe;
struct gw_ready_probe *gw_ready_check(struct gw_worker *w, gw_ready_cb cb,
    void *arg);
void gw_ready_cancel(struct gw_ready_probe *);
/* slot: the site's metrics_slot (0: the top level's upstream) */
void gw_ready_upstream(struct gw_runtime *, size_t slot, bool ok);
void gw_ready_store(struct gw_runtime *, bool ok);

/* notify.c: the service manager's readiness protocol (no-ops without
 * NOTIFY_SOCKET). ready after the listeners and after each reload (with
 * the generation now in force), reloading before a reload, stopping when
 * the drain starts. */
void gw_notify_ready(unsigned long long generation, bool reload_failed);
void gw_notify_reloading(void);
void gw_notify_stopping(void);
/* In the privsep child, the readiness steps go to the parent (only the
 * main process may notify: NotifyAccess=main), which notifies for it. */
enum gw_notify_kind {
	GW_NOTIFY_READY, GW_NOTIFY_READY_FAILED, GW_NOTIFY_RELOADING,
	GW_NOTIFY_STOPPING
};
typedef void gw_notify_fwd(enum gw_notify_kind, unsigned long long generation);
void gw_notify_forward(gw_notify_fwd *);

/* privsep.c: `run` as a privileged parent and an unprivileged child.
 * The parent reads the config, calls bind (as started: root may bind low
 * ports), forks, and calls child in the child once it is unprivileged;
 * child returns the child's exit status. The parent brokers the files the
 * config names, forwards SIGHUP/SIGUSR1/SIGTERM, restarts a child that
 * died and returns the exit status of `run`. */
struct gw_privsep_ops {
	int (*bind)(void *arg, const struct gw_config *, char *err,
	    size_t errlen);
	int (*child)(void *arg);
};
int gw_privsep_run(const char *path, const struct gw_privsep_ops *, void *arg);
/* The child's signal handlers are installed: let the signals in. */
/* privsep_child.c: in the child's reload, the parent's key process loads
 * the keys of the configuration on disk (commit false) before the parse,
 * and makes them live (commit true) once the new snapshot is in force.
 * 0 outside privsep. */
int gw_privsep_keys(bool commit, char *err, size_t errlen);
void gw_privsep_signals_ready(void);

struct gw_local;

/* ready.c: what /readyz judges; written by workers and the main thread. */
struct gw_ready {
	struct gw_ready_rec up;		/* the top level's upstream */
	atomic_bool  store_bad;			/* the last store read failed */
};

struct gw_runtime {
	struct gw_tpool     *pool;		/* blocking work (logins, SMTP AUTH) */
	pthread_mutex_t     cfg_lock;
	struct gw_config   *cfg;		/* current snapshot, one ref held */
	struct gw_worker   *workers;
	int                 nworkers;
	struct cert_tickets *tickets;
	struct gw_peertab  *peers;
	struct gw_metrics   m;
	struct gw_ready     ready;
	atomic_bool         stopping;
	atomic_llong        conns_all;	/* every worker's client connections */
	atomic_int          access_fd;	/* -1: no access log; reopened in place */
	atomic_ullong       access_lost;	/* lines that could not be written */
	atomic_llong        access_err_at;	/* last time we said so */
	atomic_int          audit_fd;	/* -1: no audit log; reopened in place */
	/* The login contexts (site_auth.c) of each site, or of the top level
	 * without sites: those the snapshot in force names and those older
	 * snapshots still hold.
	 * The main thread's alone; a snapshot carries its own pointers. */
	struct gw_site_auth **sauth;
	size_t              nsauth;
	bool                workers_up;	/* change listeners may start */
	/* With sites: what each site's relay reports its messages to, by
	 * metrics slot (GW_SITE_SLOTS, made with the first site relay; an
	 * entry is written once, before the snapshot that uses it is
	 * published). The audit argument of the site's mail context: it
	 * outlives every context, as the runtime does. */
	struct gw_mail_site *mail_sites;
};

struct gw_mail_site {
	struct gw_runtime *rt;
	size_t             slot;	/* in rt->m.site, 1-based */
};

/* site_auth.c: the login contexts of the sites, or of the top level
 * without sites (lifetime at the top of the file). All on the main
 * thread. take: the context for sc's login settings (the one open with
 * the same settings for the same site, else a new one), held by sc from
 * now on; site is the site's name, NULL for the top level; -1 with err
 * when it cannot be opened. commit: cfg is in force; the contexts it does
 * not name close once no snapshot holds them, in sweep (each store
 * refresh tick). ctx: entry i's context and its site (NULL: the top
 * level), NULL once its closing began. current: whether the snapshot in
 * force names entry i (false for a context only older snapshots still
 * hold). live_stop_all: stops and joins every change listener, waiting
 * for one still inside a host name lookup; for shutdown, before the
 * workers' loops go. label: "site NAME" or "top level" for log lines, in
 * buf when it needs one. */
struct gw_site_auth;
struct gw_site_auth_ops {
	auth_audit_fn audit;	/* arg: the runtime */
	auth_post_fn  post;	/* the change listener's, arg: the runtime */
};
int  gw_site_auth_take(struct gw_runtime *, const char *site,
    struct gw_config *sc, const struct gw_site_auth_ops *, char *err,
    size_t errlen);
void gw_site_auth_commit(struct gw_runtime *, const struct gw_config *);
void gw_site_auth_sweep(struct gw_runtime *);
struct auth_ctx *gw_site_auth_ctx(struct gw_runtime *, size_t i,
    const char **site);
bool gw_site_auth_current(const struct gw_runtime *, size_t i);
/* true the first time it is asked for entry i, false after */
bool gw_site_auth_warn_once(struct gw_runtime *, size_t i);
void gw_site_auth_live_stop_all(struct gw_runtime *);
void gw_site_auth_free_all(struct gw_runtime *);
const char *gw_site_auth_label(const char *site, char *buf, size_t len);

/* The current snapshot with a reference the caller must drop. */
struct gw_config *gw_runtime_config(struct gw_runtime *);

/* msg.c: one HTTP message head, request or response, stored as llhttp
 * hands it over. Offsets point into buf; nothing is NUL-terminated. The
 * message owns buf and hdrs (gw_msg_free); gw_msg_reset keeps both for the
 * next head on the connection. */
struct gw_hdr {
	uint32_t name, name_len;
	uint32_t value, value_len;
};

struct gw_msg {
	char          *buf;		/* packed url/names/values */
	size_t         len, cap;
	uint32_t       url, url_len;
	struct gw_hdr *hdrs;
	unsigned       nhdrs, hdrs_cap;
	bool           in_value;	/* last callback was a value piece */
	size_t         line_len;	/* current header line, for 431 */
};

#define GW_MSG_SLOTS 16		/* header slots first allocated */

/* The bounds a head is stored under: the config's for a request, fixed
 * ones for the upstream's answer. */
struct gw_msg_lim {
	size_t   head;		/* bytes of the whole head */
	size_t   line;		/* bytes of one header line, name + value */
	unsigned headers;	/* count; GW_MAX_HEADERS_HARD whatever it says */
};

enum gw_msg_err {
	GW_MSG_OK = 0,
	GW_MSG_TOO_MANY,	/* one header more than lim.headers */
	GW_MSG_NOMEM,		/* no memory for the header slots */
	GW_MSG_LINE,		/* a header line over lim.line */
	GW_MSG_HEAD,		/* the head over lim.head (or no memory) */
	GW_MSG_NAME,		/* a name that is not a token */
};

void gw_msg_reset(struct gw_msg *);
void gw_msg_free(struct gw_msg *);
int  gw_msg_append(struct gw_msg *, const char *, size_t, size_t max);
/* The three steps of a header as llhttp reports them, for both directions. */
enum gw_msg_err gw_msg_add_name(struct gw_msg *, const char *, size_t,
    const struct gw_msg_lim *);
enum gw_msg_err gw_msg_end_name(struct gw_msg *);
enum gw_msg_err gw_msg_add_value(struct gw_msg *, const char *, size_t,
    const struct gw_msg_lim *);
bool gw_msg_valid_name(const char *, size_t);
/* Lookup, caseless. gw_msg_value trims the value's trailing whitespace;
 * gw_msg_get is find + value. */
const struct gw_hdr *gw_msg_find(const struct gw_msg *, const char *name,
    unsigned *count);
size_t gw_msg_value(const struct gw_msg *, const struct gw_hdr *,
    const char **v);
const struct gw_hdr *gw_msg_get(const struct gw_msg *, const char *name,
    unsigned *count, const char **v, size_t *vn);
bool gw_hdr_is(const struct gw_msg *, const struct gw_hdr *, const char *name);
/* A lower-case header name with its length, for tables matched per header
 * (lengths compared first: most names differ in length). */
struct gw_name {
	const char *s;
	size_t      len;
};
#define GW_NAME(lit) { "" lit, sizeof(lit) - 1 }
bool gw_name_in(const char *name, size_t len, const struct gw_name *,
    size_t n);
bool gw_hdr_in(const struct gw_msg *, const struct gw_hdr *,
    const struct gw_name *, size_t n);
char *gw_memdup_str(const char *, size_t);
bool gw_token_list_has(const char *v, size_t len, const char *token);
const char *gw_status_text(int status);

/* http_head.c: the llhttp parsers of both directions (no lenient flags)
 * with the checks llhttp leaves to us, socket-free so that unit tests and
 * the fuzzers drive exactly the code the relay runs. Each parser owns its
 * gw_msg; the owner's hooks act, the callbacks only store and bound. */
struct gw_reqparse_hooks {
	void (*begin)(void *owner);			/* a new message */
	void (*body)(void *owner, const char *, size_t);
	void (*done)(void *owner);			/* message complete */
};

struct gw_reqparse {
	llhttp_t            parser;
	struct gw_msg       req;
	const struct gw_limits *lim;
	const struct gw_reqparse_hooks *hooks;
	void               *owner;
	int                 err_status;		/* set by a callback */
	const char         *err_reason;
	bool                head_done;
	bool                msg_done;
	bool                upgrade_end;	/* non-WebSocket Upgrade ended it */
	bool                past_first_line;	/* head scan state */
	uint8_t             prev_byte;
	size_t              trailer_len;
	uint64_t            body_in;
};

enum gw_rp_event { GW_RP_MORE, GW_RP_HEAD, GW_RP_DONE, GW_RP_ERROR };

struct gw_head_info {
	int         method;
	const char *host;		/* NULL when absent (HTTP/1.0) */
	size_t      hlen;
	const char *path;		/* origin-form target */
	size_t      plen;
	bool        has_body, chunked, upgrade, expect_continue, keepalive;
	bool        client_close;	/* the client says no request follows */
};

void gw_reqparse_init(struct gw_reqparse *, const struct gw_limits *,
    const struct gw_reqparse_hooks *, void *owner);
void gw_reqparse_free(struct gw_reqparse *);
enum gw_rp_event gw_reqparse_feed(struct gw_reqparse *, const char *, size_t,
    size_t *used);
bool gw_reqparse_finish_bodyless(struct gw_reqparse *);
int  gw_head_judge(struct gw_reqparse *, struct gw_head_info *, const char **why);

/* The upstream's answer. 1xx heads other than 101 are read, bounded and
 * dropped here; a final head (or a 101) goes to hooks->head, whose return
 * llhttp reads: 0 = read the body its framing announces, 1 = the message
 * ends with its head, HPE_PAUSED = a tunnel follows, -1 = refused. */
struct gw_respparse_hooks {
	int  (*head)(void *owner);
	void (*body)(void *owner, const char *, size_t);
};

struct gw_respparse {
	llhttp_t            parser;
	struct gw_msg       resp;
	const struct gw_respparse_hooks *hooks;
	void               *owner;
	const char         *reject;		/* why the response was refused
						   (constant string), for the log */
	unsigned            interim;		/* 1xx heads before the answer */
	bool                head_done;
	bool                msg_done;
};

#define GW_RESP_HEAD_MAX     ((size_t)64 * 1024)	/* response head bytes */
#define GW_RESP_LINE_MAX     ((size_t)16 * 1024)
#define GW_RESP_HEADERS_MAX  256
#define GW_RESP_INTERIM_MAX  8	/* 1xx heads before the final answer */

/* Ready for a new response on the connection (buffers kept). */
void gw_respparse_init(struct gw_respparse *,
    const struct gw_respparse_hooks *, void *owner);
void gw_respparse_free(struct gw_respparse *);
/* llhttp_execute with *used = the bytes consumed (all of them on HPE_OK). */
llhttp_errno_t gw_respparse_feed(struct gw_respparse *, const char *, size_t,
    size_t *used);
/* Whether the head says body bytes follow (a length above zero, or any
 * Transfer-Encoding), which a bodiless status cannot have. */
bool gw_respparse_announces_body(const struct gw_respparse *);

enum gw_cstate {
	CS_HANDSHAKE,	/* TLS handshake in progress */
	CS_IDLE,	/* keep-alive: waiting for the first byte of a request */
	CS_HEAD,	/* reading a request head */
	CS_FORWARD,	/* head judged; body (if any) and response flowing */
	CS_TUNNEL,	/* WebSocket: raw bytes both ways */
	CS_LINGER,	/* reply sent, draining before close */
};

struct gw_upconn;

/* An IPv4 or IPv6 address and port: 28 bytes where sockaddr_storage takes
 * 128, and there are two per connection. */
union gw_sockaddr {
	struct sockaddr     sa;
	struct sockaddr_in  in;
	struct sockaddr_in6 in6;
};

/* The authenticated user of a request, if any (filled by relay_gate.c). */
struct gw_identity {
	bool  present;
	bool  mfa;
	char  user[AUTH_NAME_MAX + 1];
};

/* One request of a connection: what a request needs and an idle
 * keep-alive connection does not (most connections are idle). Made when a
 * request's first bytes arrive (gw_conn_request), cleared for each new
 * request by gw_conn_request_reset, the one place that does, and given
 * back by gw_conn_request_free (gw_relay_trim_idle after GW_TRIM_MS idle,
 * gw_conn_free).
 *
 * Ownership: the request owns target (path lives in its buffer),
 * set_cookie, local_body and up_head, and frees them; `job` is the thread
 * pool's and is only detached (relay_local.c frees it when it comes back).
 * rp and up_head outlive a request: llhttp is inside rp's callback when
 * the next request begins, and up_head's buffer is reused. */
/* a request id: 1..64 of [A-Za-z0-9._-] (relay_reqid.c) */
#define GW_REQID_MAX 64

struct gw_req {
	struct gw_reqparse  rp;
	struct evbuffer    *up_head;		/* head sent upstream, kept for
						   one retry */

	/* ---- everything below is zeroed for each request ---- */
	struct gw_identity  id;			/* who the session says this is */
	union gw_sockaddr   client;		/* client_ip as an address */
	char                client_ip[48];	/* after trusted_proxy X-F-F */
	char                reqid[GW_REQID_MAX + 1]; /* relay_reqid.c; "" until
						   the request begins */
	struct timespec     t_start, t_up;
	double              upstream_ms;	/* -1 until an answer came */
	char               *target;		/* normalised path + query */
	char               *path;		/* the normalised path alone: in
						   target's buffer, after it */
	size_t              target_len;
	char               *set_cookie;		/* session refresh to send */
	struct evbuffer    *local_body;		/* a gateway page's form body */
	struct gw_local    *job;		/* the page being made, or NULL */
	struct gw_bodyhash *bh;			/* the body hashed (known_bad), or
						   NULL; owned */
	uint64_t            bytes_in, bytes_out;
	int                 status;		/* status sent to the client */
	enum auth_level     rd_need;		/* what the policy asks of `rd` */
	bool                req_done;		/* body fully read */
	bool                req_chunked;	/* we frame the request body */
	bool                resp_started;	/* bytes of a response sent */
	bool                resp_chunked;	/* we frame the response body */
	bool                resp_until_close;	/* HTTP/1.0-style body */
	bool                upgrade;		/* asked for a WebSocket */
	bool                client_close;	/* Connection: close (or HTTP/1.0
						   without keep-alive): the
						   client's last request */
	bool                is_head;
	bool                expect_continue;
	bool                local;		/* a /_pbxgate/ page, not proxied */
};

struct gw_conn {
	TAILQ_ENTRY(gw_conn) entry;
	struct gw_worker   *w;
	struct gw_config   *cfg;		/* snapshot for this request (ref) */
	/* The settings serving this request: cfg itself without sites, else
	 * its site of the connection's SNI (owned by cfg); with no_site
	 * (no site serves the SNI any more) it is cfg, and the request is
	 * refused with 421 before anything reads it (gw_relay_host). */
	const struct gw_config *site;
	bool                no_site;
	struct gw_io       *io;
	struct event        timer;		/* the phase's timeout; also runs
						   the deferred free and resume */
	enum gw_cstate      state;
	union gw_sockaddr   peer;		/* TCP peer (or PROXY v2 source) */
	socklen_t           peerlen;
	char                peer_ip[48];	/* TCP peer, text */
	struct gw_req      *rq;			/* NULL while idle (trimmed) */
	struct gw_upconn   *up;
	unsigned            nreq;		/* requests begun */
	bool                keepalive;		/* client may send another */
	bool                read_paused;	/* backpressure */
	bool                freeing;
	bool                lingering;
	bool                late_input;		/* bytes arrived after the answer
						   was decided: linger */
	bool                resume;		/* timer fired for the next request */
	bool                trimmed;		/* idle buffers given back */
	bool                counted;		/* in the per-address table */
	bool                proven;		/* ... and sent a complete head */
};

enum gw_ustate { US_CONNECTING, US_ACTIVE, US_IDLE };

struct gw_upconn {
	TAILQ_ENTRY(gw_upconn) entry;		/* in the worker's idle pool */
	struct gw_worker   *w;
	struct gw_conn     *c;			/* NULL while idle */
	struct gw_io       *io;
	struct event       *timer;
	enum gw_ustate      state;
	uint64_t            generation;		/* config it was opened under */
	const struct gw_config *site;		/* ... and for which site */
	size_t              ready_slot;		/* its metrics_slot (ready.c) */
	struct gw_respparse rs;			/* the answer being read */
	bool                reused;
	bool                got_bytes;
	bool                read_paused;
	bool                freeing;
	bool                switching;		/* 101 seen: tunnel next */
	bool                no_reuse;		/* framing in doubt: never pooled */
	bool                eof_seen;		/* closed while part of its answer
						   still waited in our input */
	unsigned            pool_max;		/* from the config it opened under */
	unsigned            idle_ms;
	struct timespec     t_open;		/* connect() began, for metrics */
};

struct gw_worker {
	int                 id;
	pthread_t           thread;
	struct gw_runtime  *rt;
	struct event_base  *base;
	struct gw_listener *lev[GW_MAX_LISTEN];
	int                 nlev;
	struct gw_listener *admin;
	struct gw_listener *smtp[GW_MAX_SMTP_LISTEN];
	int                 nsmtp;
	int                 wake_fd;		/* eventfd: posts from other threads */
	atomic_bool         stop_requested;
	struct event       *wake_ev;
	pthread_mutex_t     mbox_lock;
	struct gw_post     *mbox, *mbox_tail;	/* posted, not run yet */
	struct gw_config   *cfg;		/* this worker's view of the current
					   snapshot (one ref), refreshed on
					   its own thread after each reload */
	atomic_ullong       serving;		/* cfg's generation, published for
					   reload() (gw_workers_serving) */
	struct event       *recheck_timer;	/* sessions of open tunnels */
	struct event       *drain_timer;
	struct event       *drain_poll;
	TAILQ_HEAD(, gw_conn) conns;
	TAILQ_HEAD(, gw_upconn) idle;
	LIST_HEAD(, gw_ppwait) ppwaits;		/* PROXY headers awaited */
	unsigned            nidle;
	bool                draining;
};

/* worker.c */
struct gw_post;
int  gw_runtime_post(void *post_arg, const struct event_base *base, gw_job_fn fn,
    void *arg);
struct gw_config *gw_worker_config(struct gw_worker *);
int  gw_workers_start(struct gw_runtime *, int fds[][GW_MAX_LISTEN], int nfds,
    int admin_fd, const int *smtp_fds, int nsmtp, char *err, size_t errlen);
void gw_workers_stop(struct gw_runtime *);
void gw_workers_join(struct gw_runtime *);
void gw_workers_recheck(struct gw_runtime *);
bool gw_workers_serving(struct gw_runtime *, uint64_t generation, int timeout_ms);
void gw_worker_conn_done(struct gw_worker *, struct gw_conn *);
void gw_conn_refused(struct gw_worker *, evutil_socket_t, const struct sockaddr *,
    bool counted);

/* relay_client.c: the client connection (accept, TLS, timers, feeding
 * the request parser, deferred free) and its request state */
void gw_conn_start(struct gw_worker *, evutil_socket_t, const struct sockaddr *,
    socklen_t, bool counted);
void gw_conn_free(struct gw_conn *);
int  gw_conn_request(struct gw_conn *);
void gw_conn_request_reset(struct gw_conn *);
void gw_conn_request_free(struct gw_conn *);
void gw_conn_response_body(struct gw_conn *, const char *, size_t);
bool gw_conn_request_sent(const struct gw_conn *);
void gw_conn_response_done(struct gw_conn *, bool upstream_reusable);
void gw_conn_upstream_failed(struct gw_conn *, int status);
void gw_conn_resume_read(struct gw_conn *);
void gw_conn_close(struct gw_conn *);
void gw_conn_parse(struct gw_conn *);
void gw_conn_arm(struct gw_conn *, unsigned ms);
bool gw_conn_upstream_writable(struct gw_conn *);

/* head_write.c: a head built on the stack, added to `out` in one piece
 * at gw_hw_flush (which the writer must call before `out` is read). */
struct gw_hw {
	struct evbuffer *out;
	size_t           n;
	char             buf[2048];
};
void gw_hw_init(struct gw_hw *, struct evbuffer *out);
void gw_hw_put(struct gw_hw *, const char *, size_t);
void gw_hw_str(struct gw_hw *, const char *);
#define GW_HW_LIT(w, lit) gw_hw_put((w), "" lit, sizeof(lit) - 1)
void gw_hw_u64(struct gw_hw *, uint64_t);
void gw_hw_header(struct gw_hw *, const char *name, size_t nlen,
    const char *value, size_t vlen);
void gw_hw_flush(struct gw_hw *);

/* relay_request.c: judging a request head and sending it upstream */
extern const struct gw_reqparse_hooks gw_relay_hooks;
int  gw_relay_head_accept(struct gw_conn *);
int  gw_relay_forward_head(struct gw_conn *, const char *path, size_t plen,
    const char *host, size_t hlen, const char *xff, size_t xffn);

/* relay_gate.c: the lockdown and login decision for one request; may
 * rewrite the path to its normalised form. -1: answered (denied). */
int  gw_relay_gate(struct gw_conn *, const char **path, size_t *plen);
/* The audit record of a decision about this request (docs/logging.md):
 * begin fills what every such record holds (addresses, user, method, path,
 * the deciding rule FILE:LINE, request id; `module` is "policy" or
 * "integrity", the outcome follows from `action`), the caller adds its
 * own fields through event/event.h, end writes the line and frees it.
 * begin returns NULL when there is no audit_log (the ev_audit_* calls
 * accept it). gw_relay_audit is begin + end for module "policy". */
struct ev_audit;
struct ev_audit *gw_relay_audit_begin(struct gw_conn *, const char *module,
    const char *action, const char *file, unsigned line);
void gw_relay_audit_end(struct gw_conn *, struct ev_audit *);
void gw_relay_audit(struct gw_conn *, const char *action, const char *file,
    unsigned line);
void gw_relay_identity_headers(struct gw_conn *, struct gw_hw *);
bool gw_relay_recheck(struct gw_conn *, const struct gw_config *);
/* Sets the request's client from a trusted proxy's X-Forwarded-For; -1
 * when an element it must believe is not a bare IP address (answer 400). */
int  gw_relay_xff_client(struct gw_conn *, const char *xff, size_t n);
/* Whether a normalised path is a gateway page (/_pbxgate, any case). */
bool gw_relay_gateway_path(const char *path);

/* relay_host.c: the request's Host against the names the gateway serves
 * (server_name, else the certificates' names, or the local address) and
 * the TLS SNI. 0 with the Host the upstream sees in `out` (NUL-terminated),
 * or the status to answer (421, 400) with *why. */
/* relay_host.c: the settings serving connection c under snapshot cfg
 * (cfg without sites; else the site of its SNI, or default_site; NULL
 * when none), and gw_conn_site() setting c->site and c->no_site from
 * c->cfg at each request's start. */
const struct gw_config *gw_site_of(struct gw_conn *, const struct gw_config *);
void gw_conn_site(struct gw_conn *);
/* The login context of c's site; NULL without user_db. */
static inline struct auth_ctx *
gw_conn_auth(const struct gw_conn *c)
{
	return c->site->authctx;
}
int  gw_relay_host(struct gw_conn *, const char *host, size_t hlen, char *out,
    size_t outlen, const char **why);

/* relay_spoof.c: headers that make a back end act on another URL, method
 * or client address (rewrite, method override, client-IP headers). */
bool gw_spoof_header(const char *name, size_t n);
/* Dropped from a request: in the class and not kept by forward_header. */
bool gw_spoof_drop(const struct gw_config *, const char *name, size_t n);

/* relay_page.c: a deny whose rule names a page (`page compromised-client`)
 * is answered with that page, audited with what the User-Agent said. The
 * request's header lookup `r` is the one the policy judged. */
void gw_relay_deny_page(struct gw_conn *, const struct pol_verdict *,
    const struct pol_request *);
/* Audits a desktop-app User-Agent whose version no rule could read. */
void gw_relay_client_unparsable(struct gw_conn *, const struct pol_verdict *,
    const struct pol_request *);
/* relay_reqid.c: the request id (X-Request-Id). assign: a fresh random
 * one, -1 if the random source failed; adopt: a trusted proxy's valid
 * X-Request-Id replaces it, -1 when the request is left with no usable id
 * (refuse it); gw_reqid: the id, assigned if still unset. */
bool gw_reqid_valid(const char *v, size_t n);
/* A fresh id (32 hex digits, 128 bits from the DRBG); -1 without one. */
int  gw_reqid_new(char out[GW_REQID_MAX + 1]);
int  gw_reqid_assign(struct gw_conn *);
int  gw_reqid_adopt(struct gw_conn *);
const char *gw_reqid(struct gw_conn *);

/* relay_local.c: /_pbxgate/ pages, answered by the auth module on the pool */
void gw_local_begin(struct gw_conn *);
void gw_local_write(struct gw_conn *, const struct auth_http_resp *);
void gw_local_body(struct gw_conn *, const char *, size_t);
void gw_local_body_done(struct gw_conn *);
void gw_local_detach(struct gw_conn *);
void gw_relay_redirect_login(struct gw_conn *, bool mfa);

/* relay_response.c: the upstream's answer, cleaned, to the client */
int  gw_relay_response_head(struct gw_conn *, struct gw_upconn *);
bool gw_relay_response_bodiless(const struct gw_conn *, int status);

/* Appends body bytes to the client's output in the response's framing
 * (n bytes moved out of src for the _buffer form). */
void gw_relay_emit(struct gw_conn *, const char *, size_t);
void gw_relay_emit_buffer(struct gw_conn *, struct evbuffer *src, size_t n);

/* listfile.c: the line-oriented list files the config names. `name` is
 * the path (read by gw_listfile_read) and the FILE of every message. */
typedef void (*gw_kb_report)(void *arg, const char *msg);
struct gw_listfile {
	const char   *name;
	gw_kb_report  report;		/* NULL: errors only counted */
	void         *arg;
	unsigned      errors;
};
void gw_listfile_error(struct gw_listfile *, size_t line, size_t col,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Each line of data without its LF or CRLF, numbered from 1; a line with
 * a NUL byte is reported and skipped. */
typedef void (*gw_listfile_line_fn)(void *ctx, const char *s, size_t n,
    size_t lineno);
void gw_listfile_lines(struct gw_listfile *, const char *data, size_t len,
    gw_listfile_line_fn, void *ctx);
/* Reads lf->name, at most max bytes (pol_file_read's rules: regular
 * file, no FIFO); on failure reports "PATH: why (hint)" and returns -1.
 * The caller frees *data with pol_file_free. */
int gw_listfile_read(struct gw_listfile *, size_t max, const char *hint,
    char **data, size_t *len);
/* Room for entry n of an array of *cap entries of `size` bytes: doubles
 * *cap up to max. Returns the array (moved or not), or NULL when it holds
 * max entries or memory ran out (then v is unchanged and still owned). */
void *gw_listfile_grow(void *v, size_t *cap, size_t n, size_t max,
    size_t size);

/* known_bad.c: the known_bad lists (sha256sum format), one set per config
 * snapshot, and the paths they cover. Errors reach `report` as
 * "FILE:LINE:COL: message". The set owns its copies of the file names. */
#define GW_SHA256_LEN 32
struct gw_knownbad *gw_knownbad_new(void);
void gw_knownbad_free(struct gw_knownbad *);
int  gw_knownbad_parse(struct gw_knownbad *, const char *name,
    const char *data, size_t len, gw_kb_report, void *arg);
int  gw_knownbad_load(struct gw_knownbad *, const char *path, gw_kb_report,
    void *arg);
void gw_knownbad_seal(struct gw_knownbad *);	/* after the last load */
size_t gw_knownbad_count(const struct gw_knownbad *);
bool gw_knownbad_find(const struct gw_knownbad *, const uint8_t *sha,
    const char **file, unsigned *line);
bool gw_knownbad_covers(const struct gw_config *, const char *path);

/* integrity.c: the integrity manifest, one per config snapshot. Lines
 * "SHA256 SIZE PATH TYPE"; errors reach `report` as "FILE:LINE:COL:
 * message". Paths are looked up caselessly. */
struct gw_pin {
	uint8_t   sha[GW_SHA256_LEN];
	uint64_t  size;
	char     *path;
	char     *type;
	uint32_t  line;
};
struct gw_pins *gw_pins_new(void);
void gw_pins_free(struct gw_pins *);
int  gw_pins_parse(struct gw_pins *, const char *name, const char *data,
    size_t len, gw_kb_report, void *arg);
int  gw_pins_load(struct gw_pins *, const char *path, gw_kb_report,
    void *arg);
size_t gw_pins_count(const struct gw_pins *);
const struct gw_pin *gw_pins_entry(const struct gw_pins *, size_t);
const char *gw_pins_file(const struct gw_pins *);
const struct gw_pin *gw_pins_find(const struct gw_pins *, const char *path);
bool gw_pins_under_prefix(const struct gw_config *, const char *path);

/* integrity_refs.c: the references of an entry document (HTML, libgumbo)
 * or a web manifest (JSON, jansson), handed to `fn` as written (not NUL-
 * terminated, unresolved). -1: not parsable (the web manifest). */
enum gw_ref_kind { GW_REF_SCRIPT, GW_REF_STYLE, GW_REF_MANIFEST, GW_REF_ICON,
	GW_REF_WORKER };
typedef void (*gw_ref_fn)(void *arg, const char *ref, size_t n,
    enum gw_ref_kind);
int gw_refs_html(const char *data, size_t len, gw_ref_fn, void *arg);
int gw_refs_webmanifest(const char *data, size_t len, gw_ref_fn, void *arg);

/* relay_hash.c: a response body hashed as it streams, its tail held back
 * until gw_bodyhash_finish has judged it (begin: -1 out of memory). */
struct gw_bodyhash;
int  gw_bodyhash_begin(struct gw_conn *);
void gw_bodyhash_free(struct gw_bodyhash *);
/* True when the response's head and body were held whole and are now
 * dropped (nothing reached the client: it may be answered afresh). */
bool gw_bodyhash_unsend(struct gw_conn *);
bool gw_bodyhash_drops(const struct gw_conn *, const struct gw_msg *,
    const struct gw_hdr *);
void gw_bodyhash_request_headers(const struct gw_conn *, struct gw_hw *);
const char *gw_bodyhash_head_refused(const struct gw_conn *,
    const struct gw_msg *, int status);
void gw_bodyhash_body(struct gw_conn *, const char *, size_t);
/* Where the response head goes: the client's output, or a buffer held
 * with a pinned body until it has been judged. */
struct evbuffer *gw_bodyhash_head_out(struct gw_conn *);
enum gw_bh_end { GW_BH_PASS, GW_BH_ABORT, GW_BH_ANSWERED };
enum gw_bh_end gw_bodyhash_finish(struct gw_conn *);
/* A request for an unpinned file under integrity_paths: -1 when it was
 * refused (answered), 0 to forward it. */
int  gw_bodyhash_unpinned(struct gw_conn *);

/* relay_reply.c: answers made by the gateway itself, closing, lingering */
void gw_relay_reject(struct gw_conn *, int status, const char *why);
/* Like gw_relay_reject, with a page made by the auth module (its status,
 * headers and body) instead of the plain one. */
void gw_relay_reject_page(struct gw_conn *, const struct auth_http_resp *,
    const char *why);
void gw_relay_linger(struct gw_conn *);
void gw_relay_next_request(struct gw_conn *);
void gw_relay_trim_idle(struct gw_conn *);
void gw_relay_abort(struct gw_conn *);
void gw_relay_close_after_flush(struct gw_conn *);

/* relay_upstream.c: upstream connections and the worker's idle pool of
 * them (gw_upool_*: flush closes them deferred, free at once once the
 * loop has exited). */
struct gw_upconn *gw_up_acquire(struct gw_conn *, char *err, size_t errlen);
void gw_up_release(struct gw_upconn *, bool reusable);
void gw_up_pause_read(struct gw_upconn *, bool pause);
void gw_up_send_head(struct gw_upconn *, struct evbuffer *head);
void gw_up_request_sent(struct gw_upconn *);
void gw_upool_flush(struct gw_worker *);
void gw_upool_free(struct gw_worker *);

/* ws_handshake.c: whether a 101 completes the WebSocket handshake the
 * client asked for (RFC 6455 4.1, 4.2.2). NULL when it does, else what is
 * wrong (a constant string). */
const char *gw_ws_handshake_check(const struct gw_msg *req,
    const struct gw_msg *resp);
bool gw_ws_key_valid(const char *key, size_t n);
bool gw_ws_accept_matches(const char *key, size_t kn, const char *accept,
    size_t an);

/* set_cookie.c: whether an upstream Set-Cookie value would set one of the
 * gateway's own cookies (__Host-pbxgate*, __Secure-pbxgate*), caselessly. */
bool gw_set_cookie_reserved(const char *v, size_t n);

/* relay_ws.c */
void gw_tunnel_start(struct gw_conn *);
void gw_tunnel_client_read(struct gw_conn *);
void gw_tunnel_client_drained(struct gw_conn *);
void gw_tunnel_up_read(struct gw_upconn *);
void gw_tunnel_up_drained(struct gw_upconn *);
void gw_tunnel_up_closed(struct gw_upconn *);

/* access.c */
void gw_access_log(struct gw_conn *);

/* clock.c: monotonic time for durations and timeouts, wall time for the
 * Date header. */
void gw_now(struct timespec *);
double gw_ms_since(const struct timespec *);
void gw_http_date(char *, size_t);

/* proxy_v2.c: the header format; proxy_proto.c: waiting for it */
#define GW_PP_HEAD 16			/* signature, command, family, length */
#define GW_PP_MAX  (GW_PP_HEAD + 512)	/* addresses + TLVs we accept */
int  gw_proxy_v2_parse(const uint8_t *, size_t, struct sockaddr_storage *src,
    socklen_t *srclen, size_t *hdrlen);
void gw_proxy_accept(struct gw_worker *, evutil_socket_t, const struct sockaddr *,
    socklen_t, unsigned timeout_ms);
void gw_proxy_close_all(struct gw_worker *);

/* admin.c */
void gw_admin_accept(struct gw_worker *, evutil_socket_t);

#endif
