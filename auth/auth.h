/* auth.h -- login at the gateway: user store, passwords, TOTP, sessions,
 * brute-force regulation, the /_pbxgate/ pages and the `user`/`hash` CLI.
 *
 * Ownership and threading rules for the whole module:
 *  - struct auth_settings is plain data filled by the config parser through
 *    the keyword table auth_kwtab; its strings are malloc'd and owned by it until
 *    auth_settings_free(). auth_open() copies what it needs, so a settings
 *    struct (and the config snapshot holding it) may die before the ctx.
 *  - struct auth_ctx is opaque. auth_open()/auth_close() are not
 *    thread-safe with respect to each other; every other function taking a
 *    ctx is thread-safe.
 *  - The store uses ONE SQLite connection per ctx, serialised by a mutex;
 *    a PostgreSQL store in a serving gateway, user_db_pool connections
 *    handed to one thread at a time (auth_store_pool_start). Argon2 and
 *    page rendering run outside them, so each is held only for short
 *    queries.
 *  - auth_session_check() and auth_session_reseal() never block on disk or
 *    on Argon2: they use AES-GCM and in-memory tables (user table with
 *    session epochs, revoked session ids) guarded by a rwlock held for
 *    microseconds. Call them from the event loop.
 *  - auth_http_handle() and the CLI BLOCK (Argon2, SQLite): call them from
 *    a worker thread, never from an event loop. auth_refresh(): see below.
 *  - Cross-process limit: the in-memory tables change immediately when a
 *    change goes through the same ctx. Changes made by another process
 *    (the `pbxgate user` CLI, another worker process) become visible to a
 *    ctx only after auth_refresh(), which the gateway should call from its
 *    pool every few seconds (cheap: one query on a version counter), or,
 *    with PostgreSQL, when the change listener hears of them
 *    (auth_live_start: its own thread and connection).
 *  - The module never logs. Failures fill `char *err, size_t errlen`; audit
 *    events go through the callback given to auth_open() as one JSON object
 *    per call (no newline), never containing a password, code or cookie.
 */
#ifndef PBXGATE_AUTH_H
#define PBXGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "cli/cli.h"

#define AUTH_COOKIE_NAME   "__Host-pbxgate"
#define AUTH_PREFIX        "/_pbxgate/"
#define AUTH_BODY_MAX      16384	/* form bodies; the gateway answers 413 above */
#define AUTH_NAME_MAX      64		/* user name bytes, see auth_name_fold() */
#define AUTH_GROUPS_MAX    256		/* "g1,g2,..." */
#define AUTH_LOCKDOWN_MAX  1024		/* "cidr cidr ..." */
#define AUTH_SID_HEX       33		/* 16 random bytes as hex + NUL */
#define AUTH_PID_LEN       8		/* public session id (session list) */
#define AUTH_PID_HEX       (2 * AUTH_PID_LEN + 1)

/* ---- settings (auth_settings.c) ---------------------------------------- */

#define AUTH_TITLE_MAX   64	/* bytes of the `title` keyword */
#define AUTH_ISSUER_MAX  32	/* bytes of the `totp_issuer` keyword */
#define AUTH_ISSUER_DEFAULT "pbxgate"
#define AUTH_SITE_MAX    63	/* bytes of a site name (gateway config) */

struct auth_settings {
	char    *user_db;		/* absolute path or postgresql:// URL; NULL = login disabled */
	char    *user_db_password_file;	/* PostgreSQL password; NULL = none */
	unsigned user_db_pool;		/* PostgreSQL connections (2); 0 unset */
	char    *secret_key;		/* absolute path; default beside user_db */
	uint32_t argon2_m_kib;		/* memory cost, KiB (default 65536) */
	uint32_t argon2_t;		/* passes (3) */
	uint32_t argon2_p;		/* lanes (4) */
	unsigned totp_step;		/* seconds (30); not a keyword */
	unsigned totp_digits;		/* 6; not a keyword */
	unsigned totp_skew;		/* steps accepted either side (1; 0..3) */
	unsigned session_idle;		/* seconds without a request (30m) */
	unsigned session_max;		/* seconds since login (12h) */
	unsigned login_max_failures;	/* failures before a ban (5) */
	unsigned login_failure_window;	/* seconds the failures count (10m) */
	unsigned login_ban_time;	/* seconds (15m) */
	unsigned login_threads;		/* Argon2 pool size (2) */
	unsigned login_queue;		/* queued logins before 503 (64) */
	char    *public_url;		/* "https://host[:port]", no trailing / */
	unsigned enrol_link_lifetime;	/* seconds (24h) */
	bool     mfa_self_enrol;	/* a user without an authenticator may
					   add one after the password (no) */
	const char *cookie_name;	/* fixed AUTH_COOKIE_NAME */
	/* Branding: `title` after each page's own title ("" = none);
	 * `totp_issuer` names the account in authenticator apps. */
	char     title[AUTH_TITLE_MAX + 1];
	char     totp_issuer[AUTH_ISSUER_MAX + 1];
	/* The site these settings are for ("" = the top level, no site):
	 * bound into session cookies, sealed tokens, CSRF tokens and
	 * enrolment links, so that one site's are refused on another even
	 * with the same key and user name. Set by the gateway's config. */
	char     site[AUTH_SITE_MAX + 1];
};

void auth_settings_defaults(struct auth_settings *);
/* The auth keywords of the config file, in the shape every module's table
 * has (policy/policy.h, struct pol_kwtab); the gateway's config parser
 * applies them to a struct auth_settings. Relative paths are resolved
 * against the directory of the file that names them. */
struct pol_kwtab;
extern const struct pol_kwtab auth_kwtab;
/* Cross-checks after the whole file; fills defaults that depend on others
 * (secret_key beside user_db). 0 = fine, -1 = error in `err`. */
int  auth_settings_finish(struct auth_settings *, char *err, size_t errlen);
void auth_settings_free(struct auth_settings *);
/* user_db names a PostgreSQL store (postgresql:// or postgres://). */
bool auth_store_is_pg(const char *user_db);
/* A PostgreSQL user_db as the config may give it: no password in it, the
 * server verified unless on a local socket. 0, or -1 with `err`. */
int  auth_store_pg_check(const char *url, char *err, size_t errlen);
/* The password of user_db_password_file, its one line, into out (at least
 * AUTH_PG_PASSWORD_MAX bytes, wiped by the caller); a file group or others
 * may access is refused, as libpq refuses such a ~/.pgpass. The config
 * reads it too, so that `check` reports a bad file at its line.
 * 0, or -1 with `err`, which never holds the password. */
#define AUTH_PG_PASSWORD_MAX	1024
int  auth_store_pg_password(const char *path, char *out, size_t outlen,
    char *err, size_t errlen);

/* ---- context (auth_ctx.c) ---------------------------------------------- */

struct auth_ctx;
/* `event` is the event's name (login_success, login_failure, login_ban,
 * logout, enrol, ...), for counting; `json_line` the whole record. */
typedef void (*auth_audit_fn)(void *arg, const char *event,
    const char *json_line);

/* Opens (creating when missing) the user store and the secret key file.
 * Refuses a file that is not a pbxgate user store, is corrupt, or has a
 * newer schema. `audit` may be NULL. Returns NULL with `err` on failure. */
struct auth_ctx *auth_open(const struct auth_settings *, auth_audit_fn audit,
    void *audit_arg, char *err, size_t errlen);
void auth_close(struct auth_ctx *);
/* Whether c was opened with settings s (login_threads and login_queue
 * aside: the pool is not the context's) and its secret_key file still
 * holds the same keys (read again here); a reload that changes either
 * needs a context of its own. */
bool auth_settings_same(const struct auth_ctx *, const struct auth_settings *);
/* Reloads the in-memory user and revocation tables when the store changed
 * (another process). Never waits for the store mutex (skips the round
 * when a pool thread holds it); when nothing changed it costs one indexed
 * SQLite read (a few microseconds from the page cache), a full table load
 * when something did. Safe on an event loop timer for small stores; on
 * the pool for large ones. 0 = ok, -1 = error in `err`. With a change
 * listener running (auth_live_start) it reads nothing and returns the
 * listener's state: -1 while it is disconnected, `err` saying why. */
int  auth_refresh(struct auth_ctx *, char *err, size_t errlen);

/* With a PostgreSQL store and user_db_pool N > 1: opens the N - 1 store
 * connections the login threads use besides the ctx's own, so that they do
 * not wait for each other's statements. Nothing otherwise. For the serving
 * process, before its login threads run. 0, or -1 with err. */
int  auth_store_pool_start(struct auth_ctx *, char *err, size_t errlen);

/* ---- live updates of a shared store (auth_store_pg_live.c) ------------- */

/* Runs fn(arg) later on one of the gateway's event loops: 0, or -1 when it
 * cannot (out of memory; the caller keeps the work and tries again). Called
 * from the listener's thread. */
typedef void (*auth_task_fn)(void *arg);
typedef int (*auth_post_fn)(void *post_arg, auth_task_fn fn, void *arg);

/* With a PostgreSQL store: starts the change listener, a thread with its
 * own connection that LISTENs for the store's version bumps, reads the
 * in-memory tables off the event loops and hands them to one through
 * `post` (at most one hand-over on its way at a time); it also takes the
 * /metrics counts. auth_refresh() then no longer reads the store: it
 * reports the listener's state. With SQLite: does nothing (0), and
 * auth_refresh() keeps polling. For the serving process only, after its
 * event loops run; the CLI never starts one. 0, or -1 with err. */
int  auth_live_start(struct auth_ctx *, auth_post_fn post, void *post_arg,
    char *err, size_t errlen);
/* Stops and joins the listener (bounded: every wait of the thread also
 * watches the stop signal; only a host name's DNS lookup inside libpq is
 * not interruptible, and the resolver bounds it, at 30 s or more). Call
 * it while the loop `post` delivers to still exists; idempotent,
 * auth_close() calls it. */
void auth_live_stop(struct auth_ctx *);
/* The same in two steps, for a thread that must not wait: ask returns at
 * once (idempotent); stopped is true without a listener, or once its
 * thread has ended: it posts nothing more and touches nothing of the ctx,
 * and every post it made is already in the loop's mailbox, so a post sent
 * to that loop afterwards runs behind them. auth_live_stop() then joins
 * at once. Both on the thread that starts and stops the listener. */
void auth_live_ask_stop(struct auth_ctx *);
bool auth_live_stopped(struct auth_ctx *);

struct auth_live_info {
	bool      running;		/* a listener exists */
	bool      connected;		/* LISTENing and caught up */
	long long reconnects;		/* connections made after the first */
	long long reloads;		/* tables read and handed over */
	int64_t   down_since;		/* time() of the loss; 0 when connected */
	char      why[256];		/* the last failure, one line */
};
/* false (out zeroed) without a listener. */
bool auth_live_info(struct auth_ctx *, struct auth_live_info *out);

/* Store counts for /metrics (auth_gauges.c), taken by auth_refresh() at
 * most every 5 s without waiting for the store: name bans, address bans,
 * live sessions (as `session list` shows them), unused enrolment links.
 * false until the first count (or with a NULL ctx). */
enum { AUTH_GAUGE_BANS_NAME, AUTH_GAUGE_BANS_ADDRESS, AUTH_GAUGE_SESSIONS,
	AUTH_GAUGE_ENROLMENTS, AUTH_GAUGES };
bool auth_gauges(struct auth_ctx *, long long out[AUTH_GAUGES]);

/* ---- session check on every proxied request (auth_session.c) ------------ */

enum auth_level { AUTH_LEVEL_NONE = 0, AUTH_LEVEL_PASSWORD = 1, AUTH_LEVEL_MFA = 2 };

struct auth_identity {
	char     user[AUTH_NAME_MAX + 1];	/* folded name */
	bool     admin;
	char     groups[AUTH_GROUPS_MAX + 1];	/* comma separated, may be "" */
	enum auth_level level;
	bool     mfa;				/* level == AUTH_LEVEL_MFA */
	time_t   login_time;
	time_t   last_seen;			/* from the cookie */
	char     lockdown[AUTH_LOCKDOWN_MAX + 1];	/* "" = none; CIDRs space separated */
	char     sid[AUTH_SID_HEX];		/* session id, hex */
	bool     refresh;			/* caller should add auth_session_reseal() */
	int64_t  uid;				/* store row id, for reseal */
	uint32_t epoch;				/* for reseal */
};

enum auth_check {
	AUTH_OK = 0,
	AUTH_NONE,		/* no cookie */
	AUTH_INVALID,		/* malformed, tampered, unknown key */
	AUTH_EXPIRED,		/* idle or absolute timeout */
	AUTH_REVOKED,		/* epoch bumped, session revoked, user gone/disabled */
};

/* `cookie_header` is the raw Cookie header value (not NUL-terminated).
 * Fills `out` only on AUTH_OK. NON-BLOCKING. */
enum auth_check auth_session_check(struct auth_ctx *, const char *cookie_header,
    size_t len, time_t now, struct auth_identity *out);
/* Writes a complete Set-Cookie header VALUE for `id` with last_seen = now
 * into buf. Returns its length, or 0 if buf is too small (512 bytes is
 * always enough). NON-BLOCKING. */
size_t auth_session_reseal(struct auth_ctx *, const struct auth_identity *id,
    time_t now, char *buf, size_t buflen);
const char *auth_check_str(enum auth_check);

/* ---- the /_pbxgate/ pages (auth_http.c) ---------------------------------- */

#define AUTH_HDR_MAX 12

struct auth_http_req {
	const char *method;		/* "GET", "POST", ... NUL-terminated */
	const char *path;		/* decoded path, starts with AUTH_PREFIX */
	const char *query;		/* raw query without '?', may be NULL */
	const struct sockaddr *peer;	/* client address (after trusted proxy) */
	const char *cookie;		/* raw Cookie header, NULL if absent */
	const char *accept_language;	/* NULL if absent */
	const char *content_type;	/* NULL if absent */
	const char *body;		/* not NUL-terminated */
	size_t      body_len;		/* <= AUTH_BODY_MAX (gateway enforces) */
	enum auth_level rd_need;	/* what the policy needs for `rd`; NONE = login */
	time_t      now;		/* 0 = time(NULL); tests set it */
	const char *request_id;		/* [A-Za-z0-9._-]{1,64}, or NULL: shown
					   on pages, put in audit events */
};

struct auth_http_hdr {
	const char *name;		/* static string */
	char       *value;		/* malloc'd */
};

struct auth_http_resp {
	int    status;
	struct auth_http_hdr hdr[AUTH_HDR_MAX];	/* includes Content-Type, CSP,
						   Cache-Control, Set-Cookie... */
	size_t nhdr;
	char  *body;			/* malloc'd, may be NULL */
	size_t body_len;
};

/* Handles every request under AUTH_PREFIX. BLOCKING. Always fills `resp`
 * (500 on internal error); the caller frees it with auth_http_resp_free(). */
void auth_http_handle(struct auth_ctx *, const struct auth_http_req *,
    struct auth_http_resp *);
void auth_http_resp_free(struct auth_http_resp *);
/* true when `rd` (NUL-terminated, already percent-decoded once) is a
 * same-origin relative path safe to redirect to. */
bool auth_rd_is_safe(const char *rd);
/* The 503 page for a login the pool cannot take (queue full), in the
 * client's language. NON-BLOCKING: call it on the event loop. */
void auth_http_busy(const struct auth_http_req *, struct auth_http_resp *);
/* The 403 page for a desktop-app build known to be compromised (a policy
 * `deny ... page compromised-client`), in the language Accept-Language
 * prefers (NULL: English): uninstall, install 18.12.425 or later, and the
 * reference `request_id` to quote. `version` and `os` (may be NULL) are
 * what the User-Agent said, shown escaped. NON-BLOCKING. */
void auth_page_client(const char *accept_language, const char *request_id,
    const char *version, const char *os, struct auth_http_resp *);
/* The 502 page for client code that differs from the integrity manifest
 * (or is missing from it under integrity_paths), in the language
 * Accept-Language prefers, quoting `request_id`. NON-BLOCKING. */
void auth_page_integrity(const char *accept_language, const char *request_id,
    struct auth_http_resp *);
/* Writes "/_pbxgate/login?rd=ENCODED" for the original request target
 * `target` (path and query as received) into buf. Returns the length, or
 * 0 when buf is too small; an unsafe target gives plain ".../login". */
size_t auth_login_location(const char *target, char *buf, size_t buflen);

/* ---- CLI (auth_cli.c) -------------------------------------------------- */

/* argv[0] is "user" / "hash". Messages to stdout/stderr; exit status
 * 0 ok, 1 failure, 2 usage error. auth_user_cmds: the `user` subcommands,
 * each called with the opened auth_ctx; main.c lists them in its table so
 * `pbxgate user SUB --help` needs no config. */
extern const struct cli_cmd auth_user_cmds[];
int auth_cmd_user(const struct auth_settings *, int argc, char **argv);
int auth_cmd_hash(const struct auth_settings *, int argc, char **argv);
/* `session` and `ban` (auth_admin.c): live sessions and login bans in the
 * store, listed (table or --json) and ended/lifted. Same statuses. */
extern const struct cli_cmd auth_session_cmds[];
extern const struct cli_cmd auth_ban_cmds[];
int auth_cmd_session(const struct auth_settings *, int argc, char **argv);
int auth_cmd_ban(const struct auth_settings *, int argc, char **argv);

/* ---- `pbxgate check` (auth_store.c) -------------------------------------- */

/* Opens the store named in `s` READ-ONLY (never creating or changing it)
 * and sets known[i] when a user called names[i] (folded) exists. 0 when
 * looked up, -1 when the store cannot be read (`err` says why). */
int auth_users_known(const struct auth_settings *, const char *const *names,
    size_t n, bool *known, char *err, size_t errlen);

/* ---- helpers shared with tests and the gateway --------------------------- */

/* Folds a user name to its canonical form (pol_name_fold(): the policy's
 * `user` rules fold the same way; ASCII only, see docs/auth.md).
 * Returns 0 and writes out (AUTH_NAME_MAX + 1 bytes), -1 if not allowed. */
int auth_name_fold(const char *name, char *out);

/* ---- password hashes for other modules (auth_password.c) ----------------- */

/* The floor a configured hash must meet (OWASP's minimum for Argon2id:
 * 19 MiB, 2 passes); the ceiling bounds what a hash may make us allocate. */
#define AUTH_PW_MIN_M_KIB  19456u
#define AUTH_PW_MIN_T      2u
#define AUTH_PW_MAX_M_KIB  4194304u
#define AUTH_PW_MAX_T      64u
#define AUTH_PW_MAX_P      64u

/* Checks a PHC string for use as a stored credential: "$argon2id$v=19$"
 * only, cost within the bounds above. 0, or -1 with `err` saying what is
 * wrong and how to make a good one (`pbxgate hash`). Never logs the hash. */
int  auth_password_phc_check(const char *phc, char *err, size_t errlen);
/* Verifies `pw` against a PHC string: Argon2id only, bounded parameters,
 * one thread per hash, constant-time compare. BLOCKS for one Argon2 run:
 * call it from a pool thread. Thread-safe. */
bool auth_password_verify(const char *phc, const char *pw, size_t pwlen);

#endif
