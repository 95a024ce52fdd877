/* mail.h -- the scrubbing SMTP relay: settings, the MIME scrubber and the
 * SMTP sessions that relay scrubbed mail to the smarthost without a spool.
 *
 * Ownership rules for the whole module:
 *  - struct mail_settings is a plain value embedded by its owner (the gateway
 *    config). Strings in it are owned by it and freed by mail_settings_free();
 *    secrets in it (the relay password) are wiped there.
 *  - struct mail_rules is immutable once loaded; freed by mail_rules_free().
 *  - struct mail_ctx is reference counted (mail_ctx_ref / mail_ctx_unref). It
 *    copies what it needs from the settings and compiles its own rules, so
 *    the settings may be freed while sessions still run. Every session holds
 *    one reference.
 *  - A session owns its socket from mail_session_start() on and frees
 *    everything itself when it ends.
 *  - Blocking work (the Argon2 check of SMTP AUTH) goes through the ctx's
 *    runner when one is set (mail_ctx_set_runner). A job belongs to the
 *    mail module from submit until its `done` has run, which frees it; the
 *    runner must call `done` exactly once on the submitting base's loop.
 *  - struct mail_scrub_result owns `out` and `hits`; mail_scrub_result_free().
 *  - The module never logs: functions that can fail take `char *err, size_t
 *    errlen`; per-message audit lines go through the ctx's audit callback.
 */
#ifndef PBXGATE_MAIL_H
#define PBXGATE_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "policy/policy.h"

#define MAIL_MAX_LISTEN   8
#define MAIL_MAX_ALLOW    64
#define MAIL_RULE_NAME    64
#define MAIL_PART_PATH    48
#define MAIL_MAX_HITS     64

enum mail_relay_tls {
	MAIL_RELAY_STARTTLS = 0,	/* default: STARTTLS, refuse if not offered */
	MAIL_RELAY_TLS,			/* implicit TLS (port 465 style) */
	MAIL_RELAY_NONE,		/* plaintext: only after an explicit "none" */
};

struct mail_settings {
	/* smtp_listen: parsed here, bound by the gateway. */
	size_t                  nlisten;
	struct sockaddr_storage listen[MAIL_MAX_LISTEN];
	socklen_t               listen_len[MAIL_MAX_LISTEN];
	char                    listen_text[MAIL_MAX_LISTEN][64];

	char *hostname;		/* smtp_hostname; default gethostname() */

	/* smtp_relay HOST:PORT, resolved once when the config is loaded. */
	bool                    relay_set;
	char                   *relay_host;	/* as written: SNI and name check */
	struct sockaddr_storage relay;
	socklen_t               relay_len;
	char                    relay_text[64];
	enum mail_relay_tls     relay_tls;
	char                   *relay_ca;	/* NULL = system store */
	bool                    relay_verify;	/* default true */
	char                   *relay_user;	/* smtp_relay_auth USER FILE */
	char                   *relay_password;	/* read from FILE; wiped on free */

	/* smtp_auth USER HASH|FILE: the PBX's login (Argon2 PHC string). */
	char *auth_user;
	char *auth_hash;

	size_t           nallow;	/* 0 = loopback only */
	struct pol_cidr  allow[MAIL_MAX_ALLOW];	/* smtp_allow */

	uint64_t max_size;		/* bytes of message; default 50 MiB */
	unsigned max_recipients;	/* default 100 */
	size_t   max_line;		/* bytes incl. CRLF; default 4096 */
	unsigned timeout_ms;		/* client command timeout; default 300 s */
	unsigned relay_timeout_ms;	/* smarthost reply timeout; default 120 s */

	char *scrub_rules;		/* rules file; required when listening */
	char *scrub_notice;		/* default replacement text */
};

void mail_settings_defaults(struct mail_settings *);
/* The smtp_* and scrub_* keywords of the config file, in the shape every
 * module's table has (policy/policy.h, struct pol_kwtab); the gateway's
 * config parser applies them to a struct mail_settings. Relative paths are
 * taken against the directory of the file that names them. */
struct pol_kwtab;
extern const struct pol_kwtab mail_kwtab;
/* Checks the whole mail configuration (fills defaults, loads and compiles
 * the rules file to prove it). 0 = fine, -1 with err. */
int mail_settings_finish(struct mail_settings *, char *err, size_t errlen);
void mail_settings_free(struct mail_settings *);
/* Is `sa` allowed by smtp_allow? (exported for tests) */
bool mail_settings_allowed(const struct mail_settings *,
    const struct sockaddr *sa, socklen_t len);

/* ---- Rules and the scrubber (pure functions; see docs/mail.md) ---- */

enum mail_action {
	MAIL_ACT_REPLACE = 0,	/* replace the secret (or the part) with the notice */
	MAIL_ACT_DROP,		/* remove the part */
	MAIL_ACT_REJECT,	/* refuse the whole message (SMTP 554) */
};

struct mail_rules;
/* Parses a rules file; errors are "FILE:LINE:COL: message" (all of them
 * counted, the first few reported). `notice` is the default replacement
 * text (NULL = built-in). */
struct mail_rules *mail_rules_parse(const char *text, size_t len,
    const char *filename, const char *notice, char *err, size_t errlen);
struct mail_rules *mail_rules_load(const char *path, const char *notice,
    char *err, size_t errlen);
void mail_rules_free(struct mail_rules *);
size_t mail_rules_count(const struct mail_rules *);

enum mail_verdict {
	MAIL_SCRUB_CLEAN = 0,	/* nothing matched: relay the input unchanged */
	MAIL_SCRUB_CHANGED,	/* out/outlen hold the scrubbed message */
	MAIL_SCRUB_REJECT,	/* a reject rule matched: reject_rule names it */
	MAIL_SCRUB_ERROR,	/* the message could not be processed: refuse */
};

/* One rule that hit one part. Never carries the matched text. */
struct mail_hit {
	char             rule[MAIL_RULE_NAME];
	char             part[MAIL_PART_PATH];	/* "1.2", "header:Subject" */
	enum mail_action action;
	unsigned         count;
	unsigned         line;			/* rule's line in the rules file */
};

struct mail_scrub_result {
	enum mail_verdict verdict;
	char             *out;		/* malloc'd, CRLF or LF as the flags say */
	size_t            outlen;
	struct mail_hit   hits[MAIL_MAX_HITS];
	size_t            nhits;	/* distinct (rule, part) pairs, capped */
	char              reject_rule[MAIL_RULE_NAME];
	char              message_id[256];	/* from the parsed message */
};

#define MAIL_SCRUB_CRLF 0x1	/* write CRLF line ends (for SMTP) */

/* Scrubs one RFC 5322 message. Returns the verdict (also in res). */
enum mail_verdict mail_scrub(const struct mail_rules *, const char *msg,
    size_t len, unsigned flags, struct mail_scrub_result *res,
    char *err, size_t errlen);
void mail_scrub_result_free(struct mail_scrub_result *);

/* `pbxgate scrub -c CONF [--explain] < in.eml > out.eml`. argv[0] is
 * "scrub". Writes the (scrubbed) message to stdout, the explanation to
 * stderr. Exit status: 0 nothing scrubbed, 1 scrubbed, 2 rejected by a
 * rule (nothing written), 3 error. */
int mail_cmd_scrub(const struct mail_settings *, int argc, char **argv);

/* ---- SMTP sessions ---- */

struct cert_server;
struct event_base;
struct mail_ctx;

/* `outcome` is what became of the message (relayed, scrubbed, rejected,
 * tempfail, ...), for counting; `json_line` the whole record. */
typedef void (*mail_audit_fn)(void *arg, const char *outcome,
    const char *json_line);

/* `tls` may be NULL (then STARTTLS is not offered); the ctx does not own it
 * but every SSL made from it holds its own reference to the SSL_CTX, so the
 * caller must keep it alive only as long as it keeps the ctx. */
struct mail_ctx *mail_ctx_new(const struct mail_settings *,
    struct cert_server *tls, mail_audit_fn audit, void *audit_arg,
    char *err, size_t errlen);
/* The runner hook for blocking work, provided by the gateway's thread pool:
 * `run(job)` on a pool thread, then `done(job)` on `base`'s loop (never
 * inside the submit call). Returns 0 when queued, -1 when the pool is full
 * or cannot take the job (neither function is then called). */
typedef void (*mail_job_fn)(void *job);
typedef int (*mail_submit_fn)(void *arg, struct event_base *base,
    mail_job_fn run, mail_job_fn done, void *job);
/* Sets the runner before the ctx serves any session. Without one (the
 * default, unit tests, the smtp_driver) the check runs inline on the loop.
 * `arg` is not owned and must outlive the ctx. */
void mail_ctx_set_runner(struct mail_ctx *, mail_submit_fn submit, void *arg);
/* Scrub rule hits of a finished message, for counting: one call per
 * (rule, part) hit with its action ("drop", "reject", "replace") and the
 * number of matches. Set before the ctx serves any session; `arg` is not
 * owned and must outlive the ctx. Called on the session's loop. */
typedef void (*mail_hit_fn)(void *arg, const char *rule, const char *action,
    unsigned count);
void mail_ctx_set_hit_counter(struct mail_ctx *, mail_hit_fn count, void *arg);
/* The site the ctx relays for (a site block's smtp_listen): named in
 * every audit line as pbxgate.site. `name` is copied (at most 63 bytes,
 * [A-Za-z0-9_-], as the gateway checks site names). Set before the ctx
 * serves any session; without it the lines name no site. */
void mail_ctx_set_site(struct mail_ctx *, const char *name);
struct mail_ctx *mail_ctx_ref(struct mail_ctx *);
void mail_ctx_unref(struct mail_ctx *);

/* Takes over an accepted, connected socket (made non-blocking here). */
void mail_session_start(struct mail_ctx *, struct event_base *,
    evutil_socket_t fd, const struct sockaddr *peer, socklen_t peerlen);
/* Graceful stop: sessions on `base` that are between transactions get
 * "421" and close; those inside a transaction close after it. */
void mail_sessions_shutdown(const struct event_base *);
/* Sessions alive on `base`, plus AUTH checks still out on the runner for
 * sessions that already ended: the loop must keep running until they are
 * back, so that their jobs are freed (for drain, tests and metrics). */
size_t mail_sessions_count(const struct event_base *);

#endif
