/* auth_priv.h -- declarations shared inside the auth module (not public).
 *
 * Ownership: struct auth_ctx owns its sqlite handle, keys and tables; the
 * helpers below write into caller buffers and allocate nothing unless they
 * say so.
 */
#ifndef PBXGATE_AUTH_PRIV_H
#define PBXGATE_AUTH_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/auth.h"

#define AUTH_KEYS_MAX     4		/* current + previous ones in the key file */
#define AUTH_KEY_LEN      32
#define AUTH_GCM_NONCE    12
#define AUTH_GCM_TAG      16
#define AUTH_SEAL_OVER    (AUTH_GCM_NONCE + AUTH_GCM_TAG)
#define AUTH_PHC_MAX      160
#define AUTH_TOTP_SECRET  20		/* bytes, 160 bits as RFC 4226 advises */
#define AUTH_RECOVERY_N   10
#define AUTH_PW_MIN       10
#define AUTH_PW_MAX       1024
#define AUTH_MFA_PENDING  300		/* seconds to type the code */
#define AUTH_SCHEMA       1
#define AUTH_APP_ID       0x70627867	/* "pbxg" in PRAGMA application_id */

/* ---- auth_ctx.c ---- */
/* A ctx with only the store user_db open (no keys, no tables); free it
 * with auth_close. */
struct auth_ctx *auth_open_store(const struct auth_settings *,
    const char *user_db, char *err, size_t errlen);
extern const char auth_style[];
/* "sha256-BASE64" of auth_style, for the CSP style-src (auth_ctx.c). */
void auth_style_hash(char out[64]);

/* ---- auth_crypto.c ---- */
struct auth_key {
	uint32_t kid;
	uint8_t  cookie[AUTH_KEY_LEN];	/* HKDF(master, "pbxgate cookie v1") */
	uint8_t  totp[AUTH_KEY_LEN];	/* HKDF(master, "pbxgate totp v1") */
	uint8_t  mac[AUTH_KEY_LEN];	/* HKDF(master, "pbxgate mac v1"): CSRF, hashes */
};
struct auth_keys {
	struct auth_key k[AUTH_KEYS_MAX];	/* k[0] is current */
	size_t n;
};
/* auth_keys_load with `create` makes the file (one new key) when it is
 * missing, then reads it as auth_keys_read does, which never creates it.
 * The caller cleanses the keys; a failed read leaves them cleansed. */
int  auth_keys_load(const char *path, bool create, struct auth_keys *,
    char *err, size_t errlen);
int  auth_keys_read(const char *path, struct auth_keys *, char *err, size_t errlen);
bool auth_keys_equal(const struct auth_keys *, const struct auth_keys *);
const struct auth_key *auth_keys_find(const struct auth_keys *, uint32_t kid);
/* out must hold ptlen + AUTH_SEAL_OVER bytes: nonce | ciphertext | tag. */
int  auth_seal(const uint8_t key[AUTH_KEY_LEN], const void *aad, size_t aadlen,
    const void *pt, size_t ptlen, uint8_t *out);
/* in is nonce | ct | tag; out holds inlen - AUTH_SEAL_OVER bytes. */
int  auth_unseal(const uint8_t key[AUTH_KEY_LEN], const void *aad, size_t aadlen,
    const uint8_t *in, size_t inlen, uint8_t *out);
void auth_hmac256(const uint8_t key[AUTH_KEY_LEN], const void *d, size_t n,
    uint8_t out[32]);
void auth_hex(const uint8_t *in, size_t n, char *out);	/* out: 2n + 1 */
int  auth_unhex(const char *in, size_t inlen, uint8_t *out, size_t outlen);
int  auth_random(void *buf, size_t n);

/* ---- auth_password.c ---- */
struct auth_phc {
	uint32_t m, t, p, version;
	size_t   saltlen, hashlen;
};
int  auth_phc_parse(const char *s, struct auth_phc *out);
int  auth_pw_hash(uint32_t m, uint32_t t, uint32_t p, const char *pw,
    size_t pwlen, char out[AUTH_PHC_MAX], char *err, size_t errlen);
bool auth_pw_verify(const char *phc, const char *pw, size_t pwlen);
int  auth_pw_burn(uint32_t m, uint32_t t, uint32_t p, const char *pw,
    size_t pwlen);
bool auth_pw_needs_rehash(const char *phc, uint32_t m, uint32_t t, uint32_t p);

/* ---- auth_totp.c ---- */
uint32_t auth_hotp(const uint8_t *key, size_t keylen, uint64_t counter,
    unsigned digits);
/* Returns the matched step (> last_step) or -1. `code` is digits only. */
int64_t auth_totp_match(const uint8_t *key, size_t keylen, const char *code,
    time_t now, unsigned step, unsigned digits, unsigned skew, int64_t last_step);
size_t auth_base32(const uint8_t *in, size_t n, char *out, size_t outlen);
int    auth_unbase32(const char *in, uint8_t *out, size_t outlen);

/* ---- auth_form.c: application/x-www-form-urlencoded and Cookie ---- */
#define AUTH_FORM_MAX 16
struct auth_form {
	struct { char *name, *value; size_t vlen; } f[AUTH_FORM_MAX];
	size_t n;
	char  *buf;		/* owns all strings */
	size_t buflen;
};
int  auth_form_parse(const char *body, size_t len, struct auth_form *out);
const char *auth_form_get(const struct auth_form *, const char *name);
void auth_form_free(struct auth_form *);
/* Finds cookie `name` in a Cookie header; returns value length or -1. */
ssize_t auth_cookie_find(const char *hdr, size_t len, const char *name,
    const char **val);
bool auth_ip_in_list(const struct sockaddr *sa, const char *list);
int  auth_cidr_list_check(const char *list, char *err, size_t errlen);

/* ---- auth_store.c: the backend interface is auth_store.h ---- */
/* In-memory table bounds. A store over either is refused by the load
 * (both backends), never cut short: a revocation left out would be a
 * session let back in. Revoked rows are bounded per user (auth_revoke:
 * the one past AUTH_REVOKED_PER_USER bumps the user's epoch instead), so
 * a store written under the bound never reaches AUTH_STORE_REVOKED_MAX.
 * 32 revocations within session_max_lifetime (plus the hour before rows
 * are pruned) is several times what a person with a few devices signs
 * out; a flood of sign-ins and outs costs its own user the other
 * sessions and costs every gateway at most 32 rows x 16 bytes. */
#define AUTH_STORE_USERS_MAX   100000
#define AUTH_REVOKED_PER_USER  32
#define AUTH_STORE_REVOKED_MAX (AUTH_STORE_USERS_MAX * AUTH_REVOKED_PER_USER)
#include "auth/auth_store.h"
struct auth_user {
	int64_t  id;
	char     name[AUTH_NAME_MAX + 1];
	char     email[256];
	bool     admin;
	char     groups[AUTH_GROUPS_MAX + 1];
	char     pw[AUTH_PHC_MAX];
	bool     has_totp;
	uint8_t  totp_sealed[AUTH_TOTP_SECRET + AUTH_SEAL_OVER];
	uint32_t totp_kid;
	int64_t  totp_last;
	char     lockdown[AUTH_LOCKDOWN_MAX + 1];
	bool     disabled;
	uint32_t epoch;
	int64_t  created;
};

/* In-memory copy of what a request check needs. */
struct auth_mem_user {
	int64_t  id;
	uint32_t epoch;
	bool     admin, disabled;
	char     name[AUTH_NAME_MAX + 1];
	char     groups[AUTH_GROUPS_MAX + 1];
	char     lockdown[AUTH_LOCKDOWN_MAX + 1];
};

struct auth_ctx {
	struct auth_settings s;		/* deep copy */
	struct auth_keys keys;
	auth_audit_fn audit;
	void   *audit_arg;
	char    style_hash[64];		/* CSP hash of the inline style */

	pthread_mutex_t db_mu;		/* guards the store */
	const struct auth_store_ops *store;	/* the backend (auth_store.h) */
	sqlite3 *db;			/* the SQLite backend's connection */
	struct auth_pg *pg;		/* the PostgreSQL backend's (auth_store_pg.c) */
	struct auth_pg_pool *pgpool;	/* user_db_pool's (auth_store_pg_pool.c) */

	pthread_rwlock_t mem_mu;	/* guards the tables below */
	struct auth_mem_user *users;	/* sorted by id */
	size_t   nusers;
	uint8_t (*revoked)[16];		/* sorted revoked session ids */
	size_t   nrevoked;
	int64_t  mem_version;		/* store version the tables show */
	/* the store's identity (meta 'store_id'), read once at open: it
	 * never changes, and auth_store_bind seals it into what names a user */
	int64_t  store_id;

	/* the change listener (auth_store_pg_live.c); NULL without one */
	struct auth_live *live;
	pthread_mutex_t live_mu;	/* guards the four below */
	struct auth_tables *live_next;	/* read, not yet installed */
	bool     live_posted;		/* an install is on its way to a loop */
	struct auth_live_info live_info;
	auth_post_fn live_post;
	void    *live_post_arg;

	int64_t  gauges_at;		/* last count (auth_gauges.c), under db_mu */
	atomic_llong gauges[AUTH_GAUGES];
	atomic_bool  gauges_valid;
};

/* Opens the backend user_db names (creating or migrating its schema)
 * and reads the store's identity into c->store_id. */
int  auth_store_open(struct auth_ctx *, char *err, size_t errlen);
/* A new store identity from the CSPRNG, for a backend's migration that
 * adds it: 0, or -1 when the CSPRNG failed. */
int  auth_store_id_new(int64_t *out);
void auth_store_close(struct auth_ctx *);
/* One read of the in-memory tables and the store version it shows. */
struct auth_tables {
	struct auth_mem_user *users;
	size_t   nusers;
	uint8_t (*revoked)[16];
	size_t   nrevoked;
	int64_t  version;
	bool     force;		/* the store went back: see auth_tables_install */
};
/* Puts t in force when its version is newer than the tables' (or with
 * `force`: a store whose version went back, restored from a backup, and
 * the first read at open). Takes mem_mu for the swap
 * only, never db_mu, so an event loop may call it. Frees t and what it
 * replaced, or t when refused. */
void auth_tables_install(struct auth_ctx *, struct auth_tables *t, bool force);
void auth_tables_free(struct auth_tables *);
/* A load refused as AUTH_STORE_OVER_CAP: t emptied, to be installed with
 * `force`, so that every cookie is refused (no user is known) rather than
 * checked against tables that no longer follow the store; labelled with a
 * version no store has, so that every reload reads the store again. */
#define AUTH_TABLES_CLOSED	(-1)
void auth_tables_close(struct auth_tables *t);
int64_t auth_tables_version(struct auth_ctx *);	/* of the tables in force */
/* The listener's state as /readyz and the log see it: 0, or -1 with err. */
int  auth_live_status(struct auth_ctx *, char *err, size_t errlen);
/* Reload tables when meta version changed (or force). Takes both locks. */
int  auth_store_reload(struct auth_ctx *, bool force, char *err, size_t errlen);
/* Same without waiting for db_mu: returns 0 at once when it is taken. */
int  auth_store_reload_try(struct auth_ctx *, char *err, size_t errlen);
/* A store connection for the calling thread until auth_store_unlock():
 * one of user_db_pool's PostgreSQL connections, waiting while all are
 * taken, or db_mu without a pool (SQLite, the CLI). "Caller holds db_mu"
 * below means either. Never nested. */
void auth_store_lock(struct auth_ctx *);
void auth_store_unlock(struct auth_ctx *);
int  auth_pg_pool_open(struct auth_ctx *, char *err, size_t errlen);
void auth_pg_pool_close(struct auth_ctx *);
void auth_pg_pool_acquire(struct auth_ctx *);
void auth_pg_pool_release(struct auth_ctx *);
/* Caller holds db_mu for these. */
int  auth_store_begin(struct auth_ctx *);
int  auth_store_commit(struct auth_ctx *);
void auth_store_rollback(struct auth_ctx *);
/* The last store error, and what an operator can do about it: read them
 * before a rollback, which may replace them. */
const char *auth_store_errmsg(struct auth_ctx *);
const char *auth_store_hint(struct auth_ctx *);
int  auth_user_get(struct auth_ctx *, const char *folded, int64_t id,
    struct auth_user *out);	/* 0 found, 1 not found, -1 error */
int  auth_bump_epoch(struct auth_ctx *, int64_t uid, int64_t now);
/* Revokes one session, by sid (of user uid) or else by public id, in a
 * transaction of its own: the sessions revoked (0 or 1), or -1 with the
 * store's error and hint in err (read before the rollback clears them). */
int  auth_revoke(struct auth_ctx *, int64_t uid, const char *sid,
    const char *pid, int64_t now, char *err, size_t errlen);
int  auth_bump_version(struct auth_ctx *);
/* The INSERT of one row of table t for row_put, marks '?' or '$'. */
int  auth_tbl_insert_sql(enum auth_tbl t, char mark, char *out, size_t outlen);
#define AUTH_TBL_SQL_MAX 512

/* ---- auth_regulate.c (caller holds db_mu, except for the key) ---- */
/* The address counter's key for a peer: "a:IPv4" (IPv4-mapped IPv6 too)
 * or "a:PREFIX::/64". */
void auth_reg_addr_key(const struct sockaddr *sa, char *out, size_t len);
struct pol_addr;
void auth_reg_key_of(const struct pol_addr *, char *out, size_t len);
/* true when key is banned or backing off at `now`. */
bool auth_reg_blocked(struct auth_ctx *, const char *key, int64_t now);
/* Counts a failure; returns 1 when it started a ban, 0 otherwise, -1 error. */
int  auth_reg_fail(struct auth_ctx *, const char *key, int64_t now);
void auth_reg_clear(struct auth_ctx *, const char *key);

/* ---- auth_csv.c: records of `pbxgate user import` ---- */
#define AUTH_CSV_FIELDS        8	/* kept per record; more are only counted */
#define AUTH_CSV_FIELD_MAX     1024
#define AUTH_CSV_FIELD_MAX_STR "1024"
/* One record: fields[0..min(nf, AUTH_CSV_FIELDS)) NUL-terminated, valid
 * during the call; err is NULL or what is wrong with the record (a field
 * too long or holding a NUL byte). line is where the record starts. */
typedef void (*auth_csv_row_fn)(void *arg, unsigned line, char **fields,
    size_t nf, const char *err);
/* Parses buf (RFC 4180: quoted fields, "" inside quotes, line breaks in
 * quotes, CRLF or LF, an optional UTF-8 BOM; blank lines skipped) and calls
 * fn for each record. -1 when the quoting is malformed: records after it
 * cannot be told apart, so parsing stops; *bad_line and *why say where. */
int  auth_csv_rows(const char *buf, size_t len, auth_csv_row_fn fn, void *arg,
    unsigned *bad_line, const char **why);

/* ---- auth_gauges.c ---- */
void auth_gauges_refresh_try(struct auth_ctx *, time_t now);
/* Counts taken elsewhere (the change listener), for /metrics. */
void auth_gauges_set(struct auth_ctx *, const long long v[AUTH_GAUGES]);

/* ---- auth_cli.c ---- */
/* Dispatches argv (argv[0] the command word) on tab with the store open. */
int  auth_cli_run(const struct auth_settings *, const struct cli_cmd *tab,
    const char *prefix, int argc, char **argv);

/* ---- auth_migrate.c: `user migrate`; arg is the settings, no ctx ---- */
int  auth_cmd_migrate(void *arg, int argc, char **argv);

/* ---- auth_session.c ---- */
/* sid_out (may be NULL) receives the new session id in hex. */
int  auth_session_new(struct auth_ctx *, const struct auth_user *u,
    enum auth_level lvl, const struct sockaddr *peer, time_t now,
    char *setcookie, size_t len, char sid_out[AUTH_SID_HEX]);
int  auth_session_revoke(struct auth_ctx *, int64_t uid, const char *sid_hex);

/* ---- auth_ctx.c: audit events; the request gives the client address
 * and the request id ---- */
void auth_audit(struct auth_ctx *, const char *event, const char *user,
    const struct auth_http_req *, const char *detail);
/* TOTP secret of u, decrypted. 0 ok. */
int  auth_totp_secret(struct auth_ctx *, const struct auth_user *u,
    uint8_t out[AUTH_TOTP_SECRET]);
int  auth_totp_seal(struct auth_ctx *, const uint8_t secret[AUTH_TOTP_SECRET],
    int64_t uid, uint8_t *out, uint32_t *kid);
/* Checks a TOTP code or recovery code and records its use. Caller holds db_mu. */
bool auth_second_factor(struct auth_ctx *, const struct auth_user *u,
    const char *code, time_t now);
int  auth_recovery_new(struct auth_ctx *, int64_t uid, char codes[AUTH_RECOVERY_N][16]);
/* Appends what binds a sealed or MACed value to c's site to buf[used..]:
 * nothing for the top level (values made before sites existed stay
 * valid), "\0site=NAME" for a site. Returns the new length, or -1 when
 * it does not fit. */
int  auth_site_bind(const struct auth_ctx *c, char *buf, size_t len,
    int used);
/* The same for a value that names a user of c's store (the session
 * cookie, the MFA step's token): auth_site_bind's part, then
 * "\0store=HEX", the store's identity, so that a value made on one store
 * is refused on every other, whatever the key. */
int  auth_store_bind(const struct auth_ctx *c, char *buf, size_t len,
    int used);
/* The stored form of an enrolment token (64 hex digits): SHA-256 in hex,
 * of the token and the site binding. -1 for a malformed token. */
int  auth_enrol_hash(const struct auth_ctx *, const char *tok, char out[65]);
int  auth_enrol_token_new(struct auth_ctx *, int64_t uid, time_t now,
    char tok[65]);
/* The password step's single-use nonce, kept in the store so that every
 * instance sharing it agrees: _new records one (caller holds db_mu),
 * _live says whether it is still unused, _take spends it (true only for
 * the one caller whose DELETE removed the row). */
int  auth_mfa_pending_new(struct auth_ctx *, int64_t uid, time_t now,
    uint8_t nonce[16]);
bool auth_mfa_pending_live(struct auth_ctx *, int64_t uid, time_t now,
    const uint8_t nonce[16]);
bool auth_mfa_pending_take(struct auth_ctx *, int64_t uid, time_t now,
    const uint8_t nonce[16]);

/* Sealed short-lived tokens for other cookies ("KID.HEX"), purpose in AAD. */
int  auth_token_seal(struct auth_ctx *, const char *purpose, const void *pt,
    size_t n, char *out, size_t outlen);
int  auth_token_open(struct auth_ctx *, const char *purpose, const char *v,
    size_t vlen, void *pt, size_t n);

/* ---- auth_html.c: response building, escaping, languages ---- */
struct auth_buf {
	char  *p;
	size_t len, cap;
	bool   oom;
};
void auth_buf_add(struct auth_buf *, const char *s);
void auth_buf_addf(struct auth_buf *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void auth_buf_esc(struct auth_buf *, const char *s);	/* HTML text/attribute */
void auth_buf_free(struct auth_buf *);

enum auth_lang { AUTH_EN = 0, AUTH_JA = 1 };
enum auth_msg {
	M_TITLE_LOGIN, M_USERNAME, M_PASSWORD, M_CODE, M_CODE_HINT, M_SIGN_IN,
	M_BAD_LOGIN, M_BAD_CODE, M_VERIFY, M_TITLE_ENROL, M_ENROL_INTRO,
	M_PASSWORD2, M_SECRET, M_ENROL_DONE, M_RECOVERY_INTRO, M_LINK_BAD,
	M_PW_MISMATCH, M_PW_SHORT, M_TITLE_ACCOUNT, M_SESSIONS, M_THIS_SESSION,
	M_REVOKE, M_RECENT, M_CHANGE_PW, M_CURRENT_PW, M_NEW_PW, M_SAVE,
	M_RECOVERY, M_NEW_RECOVERY, M_TOTP, M_REENROL, M_LOCKDOWN, M_LOCKDOWN_HINT,
	M_LOCKDOWN_CONFIRM, M_LOCKDOWN_EXCLUDES, M_LOCKDOWN_BAD, M_SAVED,
	M_TITLE_LOGOUT, M_SIGN_OUT, M_FORBIDDEN, M_SIGNED_OUT, M_FAILED, M_OK, M_FAIL,
	M_BUSY, M_TITLE_MFA, M_MFA_MISSING, M_MFA_ASK_ADMIN, M_MFA_SELF,
	M_MFA_SET_UP, M_TITLE_CLIENT, M_CLIENT_BAD, M_CLIENT_FIX, M_CLIENT_TELL,
	M_CLIENT_SEEN, M_REFERENCE, M_TITLE_INTEGRITY, M_INTEGRITY_BAD,
	M_INTEGRITY_FIX, M_STORE_DOWN, M_COUNT
};
const char *auth_msg(enum auth_lang, enum auth_msg);
enum auth_lang auth_lang_pick(const char *accept_language);

/* Page frame: starts html with title (after the site's `title`, when c
 * has one; c may be NULL); auth_page_end() finishes the body with the
 * request id (NULL: none) for the user to quote. */
void auth_page_begin(struct auth_buf *, const struct auth_ctx *c,
    enum auth_lang, const char *title);
void auth_page_end(struct auth_buf *, enum auth_lang, const char *request_id);
/* Response helpers: security headers always set. */
void auth_resp_html(struct auth_ctx *, struct auth_http_resp *, int status,
    struct auth_buf *body);
void auth_resp_redirect(struct auth_http_resp *, int status, const char *location);
void auth_resp_header(struct auth_http_resp *, const char *name, const char *value);
void auth_resp_text(struct auth_http_resp *, int status, const char *text);

/* ---- auth_http.c: shared by the pages ---- */
struct auth_page {
	struct auth_ctx *c;
	const struct auth_http_req *req;
	struct auth_http_resp *resp;
	enum auth_lang lang;
	time_t now;
	char csrf[65];			/* token for forms on this page */
	char csrf_cookie[33];		/* the double-submit cookie's value */
	bool csrf_ok;			/* POST carried a matching token */
	struct auth_form form;		/* parsed POST body */
};
void auth_csrf_field(struct auth_page *, struct auth_buf *);
/* The token for double-submit cookie `cookie` (n bytes) and session id
 * `sid` ("" before login): HMAC over a domain label and both. */
void auth_csrf_token(struct auth_ctx *, const char *cookie, size_t n,
    const char *sid, char out[65]);
/* Recomputes pg->csrf for a session made while handling this request. */
void auth_csrf_rebind(struct auth_page *, const char *sid);
void auth_page_login(struct auth_page *);
void auth_page_logout(struct auth_page *);
void auth_page_enrol(struct auth_page *);
void auth_page_account(struct auth_page *);
void auth_page_mfa(struct auth_page *);
/* Current password (form field "current") and, if enrolled, a code
 * ("code"); failures count towards the user's ban. Fills u. 1: proven,
 * 0: refused, -1: the store did not answer (nothing decided). */
int auth_reauth(struct auth_page *, const struct auth_identity *id,
    struct auth_user *u);
/* The 503 page of a sign-in, enrolment or account change when the user
 * store does not answer (auth_http.c); title names the page. */
void auth_page_store_down(struct auth_page *, enum auth_msg title);
/* Inline SVG QR code for text; appended to b. -1 on failure. */
int  auth_qr_svg(struct auth_buf *, const char *text);

#endif
