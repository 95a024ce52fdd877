/* auth_store.c -- the SQLite user store: schema, migrations, in-memory tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "auth/auth_priv.h"
#include "policy/policy.h"

#define USERS_MAX   100000	/* in-memory table bound */
#define REVOKED_MAX 100000

/* Migration N takes the store from schema N-1 to N, inside one transaction. */
static const char *const migrations[] = {
	NULL,
	"CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"INSERT INTO meta VALUES('version', 1);"
	"CREATE TABLE users("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, email TEXT NOT NULL DEFAULT '',"
	" admin INTEGER NOT NULL DEFAULT 0, groups TEXT NOT NULL DEFAULT '',"
	" pw TEXT NOT NULL DEFAULT '', totp BLOB, totp_kid INTEGER NOT NULL DEFAULT 0,"
	" totp_last INTEGER NOT NULL DEFAULT -1, lockdown TEXT NOT NULL DEFAULT '',"
	" disabled INTEGER NOT NULL DEFAULT 0, epoch INTEGER NOT NULL DEFAULT 1,"
	" created INTEGER NOT NULL, updated INTEGER NOT NULL);"
	"CREATE TABLE recovery(user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" hash TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE sessions(sid TEXT PRIMARY KEY,"
	" user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" created INTEGER NOT NULL, ip TEXT NOT NULL, level INTEGER NOT NULL,"
	" revoked INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE logins(id INTEGER PRIMARY KEY,"
	" user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" time INTEGER NOT NULL, ip TEXT NOT NULL, ok INTEGER NOT NULL);"
	"CREATE TABLE regulate(key TEXT PRIMARY KEY, failures INTEGER NOT NULL,"
	" first INTEGER NOT NULL, last INTEGER NOT NULL, banned_until INTEGER NOT NULL);"
	"CREATE TABLE enrol(hash TEXT PRIMARY KEY,"
	" user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0,"
	" totp BLOB, totp_kid INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX sessions_user ON sessions(user_id);"
	"CREATE INDEX logins_user ON logins(user_id, time);",
	/* 2: single-use nonces of the password step (see auth_factor.c) */
	"CREATE TABLE mfa_pending(nonce TEXT PRIMARY KEY,"
	" user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" expires INTEGER NOT NULL);",
	/* 3: what `pbxgate session list|revoke` shows and takes: a public id
	 * per session (never the sealed cookie's sid, which the revocation
	 * table is keyed on) and the epoch it was sealed under, so that
	 * sessions ended by an epoch bump are not listed as live */
	"ALTER TABLE sessions ADD COLUMN pid TEXT;"
	"ALTER TABLE sessions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;"
	"UPDATE sessions SET pid = lower(hex(randomblob(8)));"
	"CREATE UNIQUE INDEX sessions_pid ON sessions(pid);",
};
#define SCHEMA_LATEST ((int)(sizeof(migrations) / sizeof(migrations[0])) - 1)

int
auth_exec(struct auth_ctx *c, const char *sql)
{
	return sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int
auth_store_begin(struct auth_ctx *c)
{
	return auth_exec(c, "BEGIN IMMEDIATE");
}

int
auth_store_commit(struct auth_ctx *c)
{
	return auth_exec(c, "COMMIT");
}

void
auth_store_rollback(struct auth_ctx *c)
{
	if (!sqlite3_get_autocommit(c->db))
		(void)auth_exec(c, "ROLLBACK");
}

static int
pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int r = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

/* What an operator can do about a failed store operation, by SQLite's
 * primary result code: the store itself is fine in all of these. */
const char *
auth_store_hint(int code)
{
	switch (code & 0xff) {
	case SQLITE_FULL:
		return "the disk is full: free some space; nothing was changed";
	case SQLITE_IOERR:
		return "disk I/O error: the disk may be full or failing; nothing "
		    "was changed";
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return "the store is read-only: check the permissions of the file "
		    "and its directory";
	case SQLITE_CANTOPEN:
		return "cannot open it: the file or its directory may be read-only "
		    "or missing (WAL mode also creates FILE-wal and FILE-shm "
		    "beside it)";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "the store is busy: another process holds a lock; try again";
	default:
		return "see the SQLite error above";
	}
}

/* A store is ours when application_id says so; an empty file (no tables,
 * id 0) becomes ours; anything else is refused untouched. */
static int
check_identity(struct auth_ctx *c, int64_t *version, char *err, size_t errlen)
{
	const char *path = c->s.user_db;
	int64_t app = 0, ntables = 0;

	if (pragma_int(c->db, "PRAGMA application_id", &app) < 0 ||
	    pragma_int(c->db, "SELECT count(*) FROM sqlite_master", &ntables) < 0) {
		int code = sqlite3_errcode(c->db);
		/* only a file that is not a database at all earns the advice
		 * to point elsewhere; a full disk or a read-only directory
		 * leaves an intact store that must not be replaced */
		if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
			snprintf(err, errlen, "%s: not a readable SQLite database "
			    "(%s); point user_db at a pbxgate user store or a new "
			    "file", path, sqlite3_errmsg(c->db));
		else
			snprintf(err, errlen, "%s: cannot read the user store (%s): %s",
			    path, sqlite3_errmsg(c->db), auth_store_hint(code));
		return -1;
	}
	if (app == 0 && ntables == 0) {
		*version = 0;
		return 0;
	}
	if (app != AUTH_APP_ID) {
		snprintf(err, errlen, "%s: SQLite database that is not a pbxgate "
		    "user store (application_id %lld); refusing to touch it",
		    path, (long long)app);
		return -1;
	}
	if (pragma_int(c->db, "PRAGMA user_version", version) < 0 ||
	    *version > SCHEMA_LATEST) {
		snprintf(err, errlen, "%s: schema version %lld is newer than this "
		    "pbxgate (%d): upgrade pbxgate", path, (long long)*version,
		    SCHEMA_LATEST);
		return -1;
	}
	return 0;
}

static int
quick_check_ok(struct auth_ctx *c)
{
	sqlite3_stmt *st;
	int ok = 0;

	if (sqlite3_prepare_v2(c->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		ok = t != NULL && strcmp((const char *)t, "ok") == 0;
	}
	sqlite3_finalize(st);
	return ok;
}

static int
migrate(struct auth_ctx *c, int64_t from, char *err, size_t errlen)
{
	char sql[128];

	for (int64_t v = from + 1; v <= SCHEMA_LATEST; v++) {
		if (auth_store_begin(c) < 0 || auth_exec(c, migrations[v]) < 0)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA application_id=%d; PRAGMA user_version=%lld",
		    AUTH_APP_ID, (long long)v);
		if (auth_exec(c, sql) < 0 || auth_store_commit(c) < 0)
			goto fail;
		continue;
fail:
		snprintf(err, errlen, "%s: schema migration to version %lld failed: %s",
		    c->s.user_db, (long long)v, sqlite3_errmsg(c->db));
		auth_store_rollback(c);
		return -1;
	}
	return 0;
}

int
auth_store_open(struct auth_ctx *c, char *err, size_t errlen)
{
	int64_t version = 0;
	int fl = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
	    SQLITE_OPEN_NOFOLLOW;
	char why[256];
	mode_t old;
	int r;

	/* SQLite opens by path and would block reading a FIFO: check the
	 * type first. Only whoever may write the store's directory could
	 * swap the file after this, and they could replace the store too. */
	if (pol_file_check(c->s.user_db, true, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: user store: %s", c->s.user_db, why);
		return -1;
	}
	old = umask(077);	/* the store holds hashes and sealed secrets */
	r = sqlite3_open_v2(c->s.user_db, &c->db, fl, NULL);
	umask(old);
	if (r != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open user store: %s", c->s.user_db,
		    c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
		return -1;
	}
	sqlite3_busy_timeout(c->db, 5000);
	sqlite3_extended_result_codes(c->db, 1);
	if (check_identity(c, &version, err, errlen) < 0)
		return -1;
	if (version > 0 && !quick_check_ok(c)) {
		snprintf(err, errlen, "%s: user store is corrupt (PRAGMA quick_check "
		    "failed): restore it from a backup", c->s.user_db);
		return -1;
	}
	if (auth_exec(c, "PRAGMA journal_mode=WAL") < 0 ||
	    auth_exec(c, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
	        "PRAGMA secure_delete=ON; PRAGMA trusted_schema=OFF") < 0) {
		snprintf(err, errlen, "%s: cannot set WAL mode: %s", c->s.user_db,
		    sqlite3_errmsg(c->db));
		return -1;
	}
	return migrate(c, version, err, errlen);
}

/* For `pbxgate check`: read-only, never creating, migrating or locking
 * the store for writing, so a check beside a running gateway is harmless. */
int
auth_users_known(const struct auth_settings *s, const char *const *names,
    size_t n, bool *known, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t app = 0;
	int rc = -1;

	if (s->user_db == NULL) {
		snprintf(err, errlen, "no user_db configured");
		return -1;
	}
	if (sqlite3_open_v2(s->user_db, &db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open user store read-only: %s",
		    s->user_db, db != NULL ? sqlite3_errmsg(db) : "out of memory");
		goto done;
	}
	sqlite3_busy_timeout(db, 2000);
	if (pragma_int(db, "PRAGMA application_id", &app) < 0 || app != AUTH_APP_ID) {
		snprintf(err, errlen, "%s: not a pbxgate user store (or not "
		    "readable)", s->user_db);
		goto done;
	}
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM users WHERE name = ?1", -1, &st,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot read the users table: %s",
		    s->user_db, sqlite3_errmsg(db));
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
		int r = sqlite3_step(st);

		if (r != SQLITE_ROW && r != SQLITE_DONE) {
			snprintf(err, errlen, "%s: cannot read the users table: %s",
			    s->user_db, sqlite3_errmsg(db));
			goto done;
		}
		known[i] = r == SQLITE_ROW;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	sqlite3_close_v2(db);
	return rc;
}

void
auth_store_close(struct auth_ctx *c)
{
	if (c->db != NULL)
		sqlite3_close_v2(c->db);
	c->db = NULL;
}

int
auth_bump_version(struct auth_ctx *c)
{
	return auth_exec(c, "UPDATE meta SET v = v + 1 WHERE k = 'version'");
}

/* Every change that must end a user's sessions goes through here. */
int
auth_bump_epoch(struct auth_ctx *c, int64_t uid, int64_t now)
{
	sqlite3_stmt *st;
	int r;

	if (sqlite3_prepare_v2(c->db, "UPDATE users SET epoch = epoch + 1, "
	    "updated = ?2 WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int64(st, 2, now);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return r < 0 ? -1 : auth_bump_version(c);
}

static void
copy_text(char *dst, size_t dstlen, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, dstlen, "%s", t != NULL ? (const char *)t : "");
}

int
auth_user_get(struct auth_ctx *c, const char *folded, int64_t id,
    struct auth_user *u)
{
	sqlite3_stmt *st;
	int r;
	const char *sql = "SELECT id, name, email, admin, groups, pw, totp, totp_kid,"
	    " totp_last, lockdown, disabled, epoch, created FROM users WHERE ";
	char q[256];

	snprintf(q, sizeof(q), "%s%s", sql, folded != NULL ? "name = ?1" : "id = ?2");
	if (sqlite3_prepare_v2(c->db, q, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (folded != NULL)
		sqlite3_bind_text(st, 1, folded, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 2, id);
	memset(u, 0, sizeof(*u));
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		u->id = sqlite3_column_int64(st, 0);
		copy_text(u->name, sizeof(u->name), st, 1);
		copy_text(u->email, sizeof(u->email), st, 2);
		u->admin = sqlite3_column_int(st, 3) != 0;
		copy_text(u->groups, sizeof(u->groups), st, 4);
		copy_text(u->pw, sizeof(u->pw), st, 5);
		if (sqlite3_column_bytes(st, 6) == (int)sizeof(u->totp_sealed)) {
			memcpy(u->totp_sealed, sqlite3_column_blob(st, 6), sizeof(u->totp_sealed));
			u->has_totp = true;
		}
		u->totp_kid = (uint32_t)sqlite3_column_int64(st, 7);
		u->totp_last = sqlite3_column_int64(st, 8);
		copy_text(u->lockdown, sizeof(u->lockdown), st, 9);
		u->disabled = sqlite3_column_int(st, 10) != 0;
		u->epoch = (uint32_t)sqlite3_column_int64(st, 11);
		u->created = sqlite3_column_int64(st, 12);
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : r == SQLITE_DONE ? 1 : -1;
}

static int
load_users(struct auth_ctx *c, struct auth_mem_user **out, size_t *n)
{
	sqlite3_stmt *st;
	struct auth_mem_user *v = NULL;
	size_t cap = 0;
	int r;

	*n = 0;
	if (sqlite3_prepare_v2(c->db, "SELECT id, epoch, admin, disabled, name, groups,"
	    " lockdown FROM users ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < USERS_MAX) {
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct auth_mem_user *nv = realloc(v, ncap * sizeof(*v));

			if (nv == NULL)
				break;
			v = nv, cap = ncap;
		}
		struct auth_mem_user *m = &v[(*n)++];
		m->id = sqlite3_column_int64(st, 0);
		m->epoch = (uint32_t)sqlite3_column_int64(st, 1);
		m->admin = sqlite3_column_int(st, 2) != 0;
		m->disabled = sqlite3_column_int(st, 3) != 0;
		copy_text(m->name, sizeof(m->name), st, 4);
		copy_text(m->groups, sizeof(m->groups), st, 5);
		copy_text(m->lockdown, sizeof(m->lockdown), st, 6);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*out = v;
	return 0;
}

/* Expired sessions are pruned at each login (auth_session_new), which
 * keeps this table small without a time filter here. */
static int
load_revoked(struct auth_ctx *c, uint8_t (**out)[16], size_t *n)
{
	sqlite3_stmt *st;
	uint8_t (*v)[16] = NULL;
	size_t cap = 0;
	int r;

	*n = 0;
	if (sqlite3_prepare_v2(c->db, "SELECT sid FROM sessions WHERE revoked = 1"
	    " ORDER BY sid", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < REVOKED_MAX) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint8_t (*nv)[16] = realloc(v, ncap * sizeof(*v));

			if (nv == NULL)
				break;
			v = nv, cap = ncap;
		}
		if (t != NULL && auth_unhex((const char *)t, strlen((const char *)t),
		    v[*n], 16) == 16)
			(*n)++;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*out = v;
	return 0;
}

/* Holds db_mu while reading, then swaps the tables under the write lock so
 * that request checks wait only for the pointer swap. */
static int
reload(struct auth_ctx *c, bool force, bool try, char *err, size_t errlen)
{
	struct auth_mem_user *u = NULL;
	uint8_t (*rv)[16] = NULL;
	size_t nu = 0, nr = 0;
	int64_t ver = 0;

	if (!try)
		pthread_mutex_lock(&c->db_mu);
	else if (pthread_mutex_trylock(&c->db_mu) != 0)
		return 0;	/* a pool thread is writing; it reloads itself */
	if (pragma_int(c->db, "SELECT v FROM meta WHERE k = 'version'", &ver) < 0) {
		pthread_mutex_unlock(&c->db_mu);
		snprintf(err, errlen, "%s: cannot read store version: %s",
		    c->s.user_db, sqlite3_errmsg(c->db));
		return -1;
	}
	if (!force && ver == c->db_version) {
		pthread_mutex_unlock(&c->db_mu);
		return 0;
	}
	if (auth_exec(c, "BEGIN") < 0 || load_users(c, &u, &nu) < 0 ||
	    load_revoked(c, &rv, &nr) < 0) {
		auth_store_rollback(c);
		pthread_mutex_unlock(&c->db_mu);
		free(u);
		snprintf(err, errlen, "%s: cannot load users: %s", c->s.user_db,
		    sqlite3_errmsg(c->db));
		return -1;
	}
	auth_store_rollback(c);
	pthread_rwlock_wrlock(&c->mem_mu);
	free(c->users);
	free(c->revoked);
	c->users = u, c->nusers = nu;
	c->revoked = rv, c->nrevoked = nr;
	pthread_rwlock_unlock(&c->mem_mu);
	c->db_version = ver;	/* only read under db_mu */
	pthread_mutex_unlock(&c->db_mu);
	return 0;
}

int
auth_store_reload(struct auth_ctx *c, bool force, char *err, size_t errlen)
{
	return reload(c, force, false, err, errlen);
}

int
auth_store_reload_try(struct auth_ctx *c, char *err, size_t errlen)
{
	return reload(c, false, true, err, errlen);
}
