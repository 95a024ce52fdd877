/* gw_internal.h -- structures shared by the gateway's own files (runtime,
 * workers, client and upstream connections). Not an API for other modules.
 *
 * Threads: the main thread owns the runtime and swaps config snapshots;
 * each worker thread owns its event_base and everything hanging off it
 * (client connections, pooled upstream connections). Nothing of a worker is
 * touched by another thread except through event_active() on its events.
 */
#ifndef PBXGATE_GW_INTERNAL_H
#define PBXGATE_GW_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
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

struct gw_metrics {
	atomic_ullong requests[6];	/* index = status / 100, 0 = other */
	atomic_ullong conns_total;
	atomic_ullong conns_refused;	/* over a connection cap */
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
 * called from inside a callback; the SSL and the socket are the stream's. */
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
void gw_io_trim(struct gw_io *);

/* Connections per client address, shared by every worker. */
struct gw_peertab;
struct gw_peertab *gw_peertab_new(void);
void gw_peertab_free(struct gw_peertab *);
/* Counts one more (unproven) connection from `sa`; false (and nothing
 * counted) when the address already has `max_unproven` connections without
 * a complete request head, or `max_all` connections in all (0 = no cap).
 * Addresses are keyed as gw_peertab_key says. */
bool gw_peertab_enter(struct gw_peertab *, const struct sockaddr *sa,
    unsigned max_unproven, unsigned max_all);
/* The connection sent its first complete head: it is no longer unproven. */
void gw_peertab_proven(struct gw_peertab *, const struct sockaddr *sa);
/* The connection is gone; `proven` as gw_peertab_proven was called. */
void gw_peertab_leave(struct gw_peertab *, const struct sockaddr *sa,
    bool proven);
/* IPv4 and IPv4-mapped IPv6 as IPv4 (::ffff:a.b.c.d), other IPv6 per /64. */
void gw_peertab_key(const struct sockaddr *sa, uint8_t k[16]);

struct gw_worker;

struct gw_pool;
typedef void (*gw_job_fn)(void *arg);
/* Runs fn(arg) on the loop of `base` (from any thread); -1 if it cannot. */
typedef int (*gw_post_fn)(void *post_arg, const struct event_base *base,
    gw_job_fn fn, void *arg);
struct gw_pool *gw_pool_new(unsigned nthreads, unsigned queue_limit,
    gw_post_fn post, void *post_arg);
int  gw_pool_submit(struct gw_pool *, struct event_base *, gw_job_fn run,
    gw_job_fn done, void *arg);
void gw_pool_free(struct gw_pool *);

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
void gw_privsep_signals_ready(void);

struct gw_local;

struct gw_runtime {
	struct gw_pool     *pool;		/* blocking work; NULL without auth */
	struct auth_ctx    *auth;		/* NULL when no user_db */
	pthread_mutex_t     cfg_lock;
	struct gw_config   *cfg;		/* current snapshot, one ref held */
	struct gw_worker   *workers;
	int                 nworkers;
	struct cert_tickets *tickets;
	struct gw_peertab  *peers;
	struct gw_metrics   m;
	atomic_bool         stopping;
	atomic_llong        conns_all;	/* every worker's client connections */
	atomic_int          access_fd;	/* -1: no access log; reopened in place */
	atomic_ullong       access_lost;	/* lines that could not be written */
	atomic_llong        access_err_at;	/* last time we said so */
	atomic_int          audit_fd;	/* -1: no audit log; reopened in place */
	struct sockaddr_storage up_addr;	/* resolved upstream */
	socklen_t           up_addrlen;
	pthread_mutex_t     up_lock;	/* guards up_addr across reloads */
};

/* The current snapshot with a reference the caller must drop. */
struct gw_config *gw_runtime_config(struct gw_runtime *);

/* One parsed HTTP message head. All strings point into buf. */
struct gw_hdr {
	uint32_t name, name_len;
	uint32_t value, value_len;
};

struct gw_msg {
	char          *buf;		/* packed method/url/names/values */
	size_t         len, cap;
	uint32_t       url, url_len;
	uint32_t       status_text, status_text_len;
	struct gw_hdr *hdrs;
	unsigned       nhdrs, hdrs_cap;
	bool           in_value;	/* last callback was a value piece */
	size_t         line_len;	/* current header line, for 431 */
};

/* http_head.c: the request parser (llhttp + our checks), socket-free. */
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
};

void gw_reqparse_init(struct gw_reqparse *, const struct gw_limits *,
    const struct gw_reqparse_hooks *, void *owner);
void gw_reqparse_free(struct gw_reqparse *);
enum gw_rp_event gw_reqparse_feed(struct gw_reqparse *, const char *, size_t,
    size_t *used);
bool gw_reqparse_finish_bodyless(struct gw_reqparse *);
int  gw_head_judge(struct gw_reqparse *, struct gw_head_info *, const char **why);
size_t gw_hval(const struct gw_msg *, const struct gw_hdr *, const char **v);
bool gw_relay_valid_name(const char *, size_t);

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

/* What a request needs and an idle keep-alive connection does not (most
 * connections are idle): allocated when a request's first bytes arrive
 * (gw_conn_request), given back by gw_relay_trim_idle after GW_TRIM_MS. */
struct gw_req {
	struct gw_reqparse  rp;
	struct gw_identity  id;			/* who the session says this is */
	union gw_sockaddr   client;		/* client_ip as an address */
	char                client_ip[48];	/* after trusted_proxy X-F-F */
	struct timespec     t_start, t_up;
	double              upstream_ms;
};

struct gw_conn {
	TAILQ_ENTRY(gw_conn) entry;
	struct gw_worker   *w;
	struct gw_config   *cfg;		/* snapshot for this request (ref) */
	struct gw_io       *io;
	struct event        timer;		/* the phase's timeout; also runs
						   the deferred free and resume */
	enum gw_cstate      state;
	union gw_sockaddr   peer;		/* TCP peer (or PROXY v2 source) */
	socklen_t           peerlen;
	char                peer_ip[48];	/* TCP peer, text */
	struct gw_req      *rq;			/* NULL while idle (trimmed) */
	struct gw_upconn   *up;

	/* the request in flight */
	unsigned            nreq;
	bool                req_done;		/* body fully read */
	bool                resp_started;	/* bytes of a response sent */
	bool                resp_chunked;	/* we frame the response body */
	bool                resp_until_close;	/* HTTP/1.0-style body */
	bool                keepalive;		/* client may send another */
	bool                upgrade;		/* asked for a WebSocket */
	bool                req_chunked;	/* we frame the request body */
	bool                is_head;
	bool                read_paused;	/* backpressure */
	bool                freeing;
	bool                lingering;
	bool                resume;		/* timer fired for the next request */
	bool                trimmed;		/* idle buffers given back */
	bool                counted;		/* in the per-address table */
	bool                proven;		/* ... and sent a complete head */
	bool                expect_continue;
	uint64_t            bytes_in, bytes_out;
	struct evbuffer    *up_head;		/* kept for one retry */
	char               *target;		/* normalised path + query (malloc) */
	char               *path;		/* the normalised path alone: in the
						   target's buffer, after it */
	size_t              target_len;
	char               *set_cookie;		/* session refresh to send (malloc) */
	bool                local;		/* a /_pbxgate/ page, not proxied */
	enum auth_level     rd_need;		/* what the policy asks of `rd` */
	struct evbuffer    *local_body;		/* its form body, bounded */
	struct gw_local    *job;		/* in the pool; NULL when none */
	int                 status;		/* status sent to the client */
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
	llhttp_t            parser;
	struct gw_msg       resp;
	bool                reused;
	bool                got_bytes;
	bool                head_done;
	bool                msg_done;
	bool                read_paused;
	bool                freeing;
	bool                switching;		/* 101 seen: tunnel next */
	bool                no_reuse;		/* framing in doubt: never pooled */
	unsigned            interim;		/* 1xx heads before the answer */
	const char         *reject;		/* why the response was refused
						   (constant string), for the log */
	unsigned            pool_max;		/* from the config it opened under */
	unsigned            idle_ms;
};

struct gw_worker {
	int                 id;
	pthread_t           thread;
	struct gw_runtime  *rt;
	struct event_base  *base;
	struct evconnlistener *lev[GW_MAX_LISTEN];
	int                 nlev;
	struct evconnlistener *admin;
	struct evconnlistener *smtp[8];
	int                 nsmtp;
	int                 wake_fd;		/* eventfd: posts from other threads */
	atomic_bool         stop_requested;
	struct event       *wake_ev;
	pthread_mutex_t     mbox_lock;
	struct gw_post     *mbox, *mbox_tail;	/* posted, not run yet */
	struct gw_config   *cfg;		/* this worker's view of the current
					   snapshot (one ref), refreshed on
					   its own thread after each reload */
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
void gw_worker_conn_done(struct gw_worker *, struct gw_conn *);
void gw_conn_refused(struct gw_worker *, evutil_socket_t, const struct sockaddr *,
    bool counted);

/* relay_http.c: client side */
void gw_conn_start(struct gw_worker *, evutil_socket_t, const struct sockaddr *,
    socklen_t, bool counted);
void gw_conn_free(struct gw_conn *);
int  gw_conn_request(struct gw_conn *);
void gw_conn_request_free(struct gw_conn *);
void gw_conn_response_head(struct gw_conn *, struct gw_upconn *);
void gw_conn_response_body(struct gw_conn *, const char *, size_t);
bool gw_conn_request_sent(const struct gw_conn *);
void gw_conn_response_done(struct gw_conn *, bool upstream_reusable);
void gw_conn_upstream_failed(struct gw_conn *, int status);
void gw_conn_resume_read(struct gw_conn *);
void gw_conn_shutdown_idle(struct gw_conn *);
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
void gw_relay_audit(struct gw_conn *, const char *decision, const char *file,
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
int  gw_relay_host(struct gw_conn *, const char *host, size_t hlen, char *out,
    size_t outlen, const char **why);

/* relay_spoof.c: headers that make a back end act on another URL, method
 * or client address (rewrite, method override, client-IP headers). */
bool gw_spoof_header(const char *name, size_t n);
/* Dropped from a request: in the class and not kept by forward_header. */
bool gw_spoof_drop(const struct gw_config *, const char *name, size_t n);

/* relay_local.c: /_pbxgate/ pages, answered by the auth module on the pool */
void gw_local_begin(struct gw_conn *);
void gw_local_body(struct gw_conn *, const char *, size_t);
void gw_local_body_done(struct gw_conn *);
void gw_local_detach(struct gw_conn *);
void gw_relay_redirect_login(struct gw_conn *, bool mfa);

/* relay_response.c: the upstream's answer, cleaned, to the client */
int  gw_relay_response_head(struct gw_conn *, struct gw_upconn *);
bool gw_relay_response_bodiless(const struct gw_conn *, int status);

/* relay_reply.c: answers made by the gateway itself, closing, lingering */
void gw_relay_reject(struct gw_conn *, int status, const char *why);
void gw_relay_linger(struct gw_conn *);
void gw_relay_next_request(struct gw_conn *);
void gw_relay_trim_idle(struct gw_conn *);
void gw_relay_abort(struct gw_conn *);
void gw_relay_close_after_flush(struct gw_conn *);
void gw_http_date(char *, size_t);

/* relay_upstream.c */
struct gw_upconn *gw_up_acquire(struct gw_conn *, char *err, size_t errlen);
void gw_up_release(struct gw_upconn *, bool reusable);
void gw_up_pause_read(struct gw_upconn *, bool pause);
void gw_up_send_head(struct gw_upconn *, struct evbuffer *head);
void gw_up_request_sent(struct gw_upconn *);
void gw_pool_flush(struct gw_worker *);

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

/* msg.c: head accumulation shared by request and response parsing */
void gw_msg_reset(struct gw_msg *);
void gw_msg_free(struct gw_msg *);
int  gw_msg_append(struct gw_msg *, const char *, size_t, size_t max);
const struct gw_hdr *gw_msg_find(const struct gw_msg *, const char *name, unsigned *count);
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

/* access.c */
void gw_access_log(struct gw_conn *);
void gw_now(struct timespec *);
double gw_ms_since(const struct timespec *);

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
