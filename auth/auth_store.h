/* auth_store.h -- the user store interface: what the login code asks of a
 * backend (auth_store_sqlite.c, auth_store_pg.c), so that callers never
 * hold a database handle.
 *
 * Every operation takes the ctx with db_mu held by the caller (except open
 * and close), runs inside the caller's transaction when one is open, and
 * returns -1 on a store error (then errmsg/hint say what failed). The
 * conditional writes (TOTP step, recovery code, enrolment token, pending
 * nonce) return 1 when this call made the change and 0 when another one
 * had: that is what makes a code usable once across concurrent logins.
 * Included by auth_priv.h, whose sizes (AUTH_NAME_MAX, AUTH_SEAL_OVER)
 * it uses. */
#ifndef AUTH_STORE_H
#define AUTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_ctx;
struct auth_user;
struct auth_mem_user;

/* What `user passwd|lockdown|totp reset|disable|enable|del` change. */
enum auth_user_field {
	AUTH_UF_PW,		/* text: PHC string */
	AUTH_UF_LOCKDOWN,	/* text: CIDR list, "" to clear */
	AUTH_UF_TOTP_CLEAR,	/* authenticator removed */
	AUTH_UF_RECOVERY_CLEAR,	/* recovery codes removed */
	AUTH_UF_DISABLED,
	AUTH_UF_ENABLED,
	AUTH_UF_DELETE,		/* the user and, by cascade, its rows */
};

struct auth_user_new {
	const char *name, *email, *groups, *pw;
	bool admin;
	int64_t now;
};

struct auth_user_row {			/* `user list` */
	const char *name, *email, *groups;
	bool admin, disabled, totp, pw_set;
};

struct auth_enrol_row {
	int64_t  uid;
	char     name[AUTH_NAME_MAX + 1];
	bool     has_secret;		/* sealed holds the page's secret */
	uint8_t  sealed[AUTH_TOTP_SECRET + AUTH_SEAL_OVER];
	uint32_t kid;
};

struct auth_session_new_row {
	const char *sid, *pid, *ip;
	int64_t uid, created, epoch, prune_before;
	int level;
};

struct auth_session_row {		/* `session list`, account page */
	const char *sid, *pid, *user, *ip;
	int64_t created;
	int level;
};

struct auth_login_row {
	const char *ip;
	int64_t time;
	bool ok;
};

struct auth_reg_row {
	int64_t failures, first, last, banned_until;
};

struct auth_ban_row {
	const char *key;
	int64_t failures, until;
};

/* Copying a store (`pbxgate user migrate`, auth_migrate.c): every table
 * but meta (each store's own change counter and schema version; its
 * identity is copied by store_id_put), parents
 * before the rows that reference them, with the columns both backends'
 * current schema have (SQLite schema 4 is PostgreSQL schema 2). */
enum auth_tbl {
	AUTH_TBL_USERS, AUTH_TBL_RECOVERY, AUTH_TBL_ENROL, AUTH_TBL_MFA_PENDING,
	AUTH_TBL_SESSIONS, AUTH_TBL_LOGINS, AUTH_TBL_REGULATE, AUTH_TBL_COUNT
};
#define AUTH_TBL_COLS_MAX 16

struct auth_tbl_def {
	const char *name;
	const char *cols;	/* "id, name, ...", the order of a row's values */
	const char *types;	/* one per column: i integer, t text, b blob */
	bool        serial;	/* the first column is an id the store assigns */
};
extern const struct auth_tbl_def auth_tbls[AUTH_TBL_COUNT];

/* One column of a row: valid during the callback (or the put) only. */
struct auth_val {
	bool           null;
	int64_t        i;
	const char    *t;	/* NUL-terminated */
	const uint8_t *b;
	size_t         n;	/* bytes at b */
};
/* returns 0 to go on, -1 to stop the read (which then returns -1) */
typedef int (*auth_row_fn)(void *arg, const struct auth_val *row);

typedef void (*auth_user_row_fn)(void *arg, const struct auth_user_row *);
typedef void (*auth_session_row_fn)(void *arg, const struct auth_session_row *);
typedef void (*auth_login_row_fn)(void *arg, const struct auth_login_row *);
typedef void (*auth_ban_row_fn)(void *arg, const struct auth_ban_row *);

/* Which sessions session_list returns: live ones created after `since`,
 * of one user by id (uid > 0) or by name (user != NULL) or all, at most
 * `limit` (0: no limit), newest first when `newest_first`. */
struct auth_session_query {
	int64_t since, uid;
	const char *user;
	int limit;
	bool newest_first;
};

#define AUTH_STORE_OVER_CAP	(-2)
#define AUTH_STORE_FULL		2	/* user_add: no room for one more */

struct auth_store_ops {
	const char *name;
	int  (*open)(struct auth_ctx *, char *err, size_t errlen);
	void (*close)(struct auth_ctx *);
	int  (*begin)(struct auth_ctx *);
	int  (*commit)(struct auth_ctx *);
	void (*rollback)(struct auth_ctx *);
	/* the last error, and what an operator can do about it */
	const char *(*errmsg)(struct auth_ctx *);
	const char *(*hint)(struct auth_ctx *);

	/* The change counter the in-memory tables follow, and one consistent
	 * read of those tables (the caller owns *users and *revoked); load
	 * reads one row more than each table's bound (AUTH_STORE_USERS_MAX,
	 * AUTH_STORE_REVOKED_MAX) and returns AUTH_STORE_OVER_CAP when it gets
	 * it: a table is refused, never cut short. */
	int  (*version)(struct auth_ctx *, int64_t *out);
	int  (*bump_version)(struct auth_ctx *);
	int  (*load)(struct auth_ctx *, struct auth_mem_user **users, size_t *nusers,
	    uint8_t (**revoked)[16], size_t *nrevoked);

	/* users: user_get 0 found, 1 not found; user_add 1 when the name
	 * exists, AUTH_STORE_FULL when the store already holds
	 * AUTH_STORE_USERS_MAX users (a user more and every load would refuse
	 * the store), checked in the same transaction as the insert */
	int  (*user_get)(struct auth_ctx *, const char *folded, int64_t id,
	    struct auth_user *out);
	int  (*user_add)(struct auth_ctx *, const struct auth_user_new *, int64_t *uid);
	int  (*user_set)(struct auth_ctx *, int64_t uid, enum auth_user_field,
	    const char *text);
	int  (*user_list)(struct auth_ctx *, auth_user_row_fn, void *arg);
	int  (*user_enrolled)(struct auth_ctx *, int64_t uid, const char *phc,
	    const uint8_t *sealed, size_t sealed_len, uint32_t kid, int64_t step,
	    int64_t now);
	int  (*pw_rehash)(struct auth_ctx *, int64_t uid, const char *phc,
	    const char *old_phc);
	/* ends every session of the user made before, and deletes the
	 * user's revoked rows, which the new epoch covers */
	int  (*bump_epoch)(struct auth_ctx *, int64_t uid, int64_t now);
	int  (*totp_advance)(struct auth_ctx *, int64_t uid, int64_t step);

	int  (*recovery_use)(struct auth_ctx *, int64_t uid, const char *hash);
	int  (*recovery_clear)(struct auth_ctx *, int64_t uid);
	int  (*recovery_add)(struct auth_ctx *, int64_t uid, const char *hash);

	int  (*enrol_add)(struct auth_ctx *, const char *hash, int64_t uid,
	    int64_t expires);
	/* 0 live (row filled), 1 unknown, used, expired or user disabled */
	int  (*enrol_get)(struct auth_ctx *, const char *hash, int64_t now,
	    struct auth_enrol_row *);
	int  (*enrol_set_totp)(struct auth_ctx *, const char *hash,
	    const uint8_t *sealed, size_t sealed_len, uint32_t kid);
	int  (*enrol_use)(struct auth_ctx *, const char *hash);

	/* the password step's nonces; expired ones swept by pending_add */
	int  (*pending_add)(struct auth_ctx *, const char *nonce, int64_t uid,
	    int64_t now, int64_t expires);
	int  (*pending_live)(struct auth_ctx *, const char *nonce, int64_t uid,
	    int64_t now);
	int  (*pending_take)(struct auth_ctx *, const char *nonce, int64_t uid,
	    int64_t now);

	int  (*session_add)(struct auth_ctx *, const struct auth_session_new_row *);
	/* number of sessions marked revoked (the one's user into *uid); only
	 * through auth_revoke (auth_priv.h), which bounds them per user */
	int  (*session_revoke)(struct auth_ctx *, int64_t uid, const char *sid);
	int  (*session_revoke_pid)(struct auth_ctx *, const char *pid,
	    int64_t *uid);
	/* the user's rows marked revoked, as the loads read them */
	int  (*revoked_count)(struct auth_ctx *, int64_t uid, int64_t *n);
	int  (*session_list)(struct auth_ctx *, const struct auth_session_query *,
	    auth_session_row_fn, void *arg);

	int  (*login_add)(struct auth_ctx *, int64_t uid, int64_t now,
	    const char *ip, bool ok);
	int  (*login_prune)(struct auth_ctx *, int64_t before);
	int  (*login_list)(struct auth_ctx *, int64_t uid, int limit,
	    auth_login_row_fn, void *arg);

	/* regulation counters, keyed "u:NAME" or "a:ADDRESS" */
	int  (*reg_get)(struct auth_ctx *, const char *key, struct auth_reg_row *);
	int  (*reg_put)(struct auth_ctx *, const char *key, const struct auth_reg_row *);
	int  (*reg_del)(struct auth_ctx *, const char *key);	/* rows deleted */
	int  (*reg_prune)(struct auth_ctx *, int64_t now, int64_t last_before);
	int  (*ban_list)(struct auth_ctx *, int64_t now, auth_ban_row_fn, void *arg);

	/* /metrics gauges, out[AUTH_GAUGES] in auth.h's order: bans by name,
	 * bans by address, live sessions (as session_list counts them) and
	 * enrolment links neither used nor expired */
	int  (*counts)(struct auth_ctx *, int64_t now, int64_t session_max,
	    long long *out);

	/* Copying: copy_begin opens the transaction of a whole copy and locks
	 * the tables so that no gateway changes them until commit or
	 * rollback: the source against writes (it stays readable), the
	 * target (`target`) against writes and locking reads. row_each reads
	 * every row of a table in auth_tbls' column order; row_put inserts one
	 * verbatim, ids included; row_count counts a table's rows. copy_done,
	 * after the puts, moves the id sequences past the largest copied id
	 * and bumps the version. */
	int  (*copy_begin)(struct auth_ctx *, bool target);
	int  (*row_each)(struct auth_ctx *, enum auth_tbl, auth_row_fn, void *arg);
	int  (*row_put)(struct auth_ctx *, enum auth_tbl, const struct auth_val *row);
	int  (*row_count)(struct auth_ctx *, enum auth_tbl, int64_t *n);
	int  (*copy_done)(struct auth_ctx *);

	/* The store's identity, made once with the store (a migration adds
	 * it to an older one): store_id reads it (0, or 1 when the row is
	 * absent); store_id_put replaces it, in a copy's transaction only,
	 * so that the copy is the same store to the sealed values
	 * (auth_migrate.c). */
	int  (*store_id)(struct auth_ctx *, int64_t *out);
	int  (*store_id_put)(struct auth_ctx *, int64_t id);
};

extern const struct auth_store_ops auth_store_sqlite;
extern const struct auth_store_ops auth_store_pg;

/* Each backend's half of auth_users_known (auth.h, `pbxgate check`): the
 * store opened read-only by a connection of its own, never created,
 * migrated or locked for writing. */
int auth_sq_users_known(const struct auth_settings *, const char *const *names,
    size_t n, bool *known, char *err, size_t errlen);
int auth_pg_users_known(const struct auth_settings *, const char *const *names,
    size_t n, bool *known, char *err, size_t errlen);

#endif
