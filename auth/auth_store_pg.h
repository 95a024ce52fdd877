/* auth_store_pg.h -- what the PostgreSQL backend (auth_store_pg.c) shares
 * with its change listener (auth_store_pg_live.c): how to connect, the
 * reads of the in-memory tables and gauges, and how their rows decode, so
 * that both connections read the store one way. Private to the module. */
#ifndef AUTH_STORE_PG_H
#define AUTH_STORE_PG_H

#include <libpq-fe.h>

#include "auth/auth_priv.h"

/* One connection, its last error, and which of row_put's statements
 * (user migrate) it has prepared: a prepared statement lives and dies
 * with its connection. */
struct auth_pg {
	PGconn *conn;
	char    err[512];	/* the last error, one line */
	char    sqlstate[6];
	bool    put_ready[AUTH_TBL_COUNT];	/* row_put's statement prepared */
};

/* The login threads' connections (auth_store_pg_pool.c): see
 * auth_store_lock() in auth_priv.h. auth_pg_pool_current: the connection
 * the calling thread holds from c's pool, NULL when it holds none or the
 * ctx's own (c->pg, under db_mu). */
#define AUTH_PG_POOL_MAX	32
struct auth_pg *auth_pg_pool_current(struct auth_ctx *);

/* NOTIFY channel of every version bump; the payload is the new version.
 * One per store, named after its identity (meta 'store_id', c->store_id):
 * stores in several schemas of one database do not wake each other's
 * listeners. "pbxgate_store_" and 16 lower-case hex digits: an identifier
 * of 30 bytes (at most 63 are allowed) that needs no quoting in LISTEN. */
#define AUTH_PG_CHANNEL_LEN	31	/* with its NUL */
void auth_pg_channel(int64_t store_id, char out[AUTH_PG_CHANNEL_LEN]);

#define AUTH_PG_VERSION_SQL	"SELECT v FROM meta WHERE k = 'version'"
/* $1: the table's bound plus one, so that a store over the bound is told
 * from one at it and refused (AUTH_STORE_OVER_CAP), as SQLite's load does:
 * never a table silently cut short */
#define AUTH_PG_USERS_SQL	"SELECT id, epoch, admin, disabled, name," \
	" groups, lockdown FROM users ORDER BY id LIMIT $1::bigint"
#define AUTH_PG_REVOKED_SQL	"SELECT sid FROM sessions WHERE revoked = 1" \
	" ORDER BY sid LIMIT $1::bigint"
/* $1: now, $2: session_max; the four gauges in one row */
#define AUTH_PG_COUNTS_SQL	"SELECT" \
	" (SELECT count(*) FROM regulate WHERE key LIKE 'u:%' AND" \
	"  banned_until > $1::bigint)," \
	" (SELECT count(*) FROM regulate WHERE key LIKE 'a:%' AND" \
	"  banned_until > $1::bigint)," \
	" (SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id" \
	"  WHERE s.revoked = 0 AND u.disabled = 0 AND (s.epoch = u.epoch OR" \
	"  s.epoch = 0) AND s.created > $1::bigint - $2::bigint)," \
	" (SELECT count(*) FROM enrol WHERE used = 0 AND expires > $1::bigint)"

/* A connection as user_db names it, with what pbxgate insists on
 * (verify-full off sockets, connect and statement timeouts).
 * `application_name` tells the connections apart in pg_stat_activity.
 * With `start`, PQconnectStartParams: the caller drives PQconnectPoll.
 * NULL only when out of memory. */
PGconn *auth_pg_connect(const struct auth_settings *, const char *password,
    const char *application_name, bool start);
/* user_db_password_file's one line into out (AUTH_PG_PASSWORD_MAX bytes,
 * auth.h), or "" without one: auth_store_pg_password() when there is a
 * file. 0, or -1 with err. The caller cleanses out. */
int  auth_pg_password(const struct auth_settings *, char *out, size_t outlen,
    char *err, size_t errlen);

/* Rows of AUTH_PG_USERS_SQL / AUTH_PG_REVOKED_SQL into a new array the
 * caller frees; AUTH_PG_COUNTS_SQL's row into out[AUTH_GAUGES]. The result
 * stays the caller's. -1 when out of memory, AUTH_STORE_OVER_CAP (nothing
 * decoded) when there are more rows than AUTH_STORE_USERS_MAX or
 * AUTH_STORE_REVOKED_MAX; auth_pg_load_why words either failure for the
 * table `what` of bound `max`. */
int  auth_pg_users_decode(const PGresult *, struct auth_mem_user **out,
    size_t *n);
int  auth_pg_revoked_decode(const PGresult *, uint8_t (**out)[16], size_t *n);
void auth_pg_counts_decode(const PGresult *, long long *out);
void auth_pg_load_why(int rc, const char *what, long max, char *out,
    size_t outlen);

#endif
