/* auth_store_sqlite.c -- the SQLite user store backend: schema, migrations, queries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include <stdarg.h>

#include "auth/auth_priv.h"
#include "policy/policy.h"

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
	/* 4: the store's identity, meta 'store_id', bound into the session
	 * cookie and the other values that name a user (auth_store_bind), so
	 * that they fail on any other store. The value comes from the CSPRNG
	 * in C (store_id_add), not from SQL; this clears what it replaces. */
	"DELETE FROM meta WHERE k = 'store_id';",
};
#define SCHEMA_LATEST ((int)(sizeof(migrations) / sizeof(migrations[0])) - 1)
#define SCHEMA_STORE_ID 4	/* the migration store_id_add completes */

static int
sq_exec(struct auth_ctx *c, const char *sql)
{
	return sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int
sq_begin(struct auth_ctx *c)
{
	return sq_exec(c, "BEGIN IMMEDIATE");
}

static int
sq_commit(struct auth_ctx *c)
{
	return sq_exec(c, "COMMIT");
}

static void
sq_rollback(struct auth_ctx *c)
{
	if (!sqlite3_get_autocommit(c->db))
		(void)sq_exec(c, "ROLLBACK");
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
static const char *
code_hint(int code)
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
			    path, sqlite3_errmsg(c->db), code_hint(code));
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

static int store_id_add(struct auth_ctx *);

/* `from` was read before the write lock: a process that opened the store
 * at the same moment (the CLI beside a starting gateway) may have taken
 * a step since, so each step reads the version again under the lock and
 * skips what is done. Run twice, step 4 would give the store a second
 * identity after the other process had read the first. */
static int
migrate(struct auth_ctx *c, int64_t from, char *err, size_t errlen)
{
	char sql[128];
	int64_t cur = 0;

	for (int64_t v = from + 1; v <= SCHEMA_LATEST; v++) {
		if (sq_begin(c) < 0 ||
		    pragma_int(c->db, "PRAGMA user_version", &cur) < 0)
			goto fail;
		if (cur >= v) {
			if (sq_commit(c) < 0)
				goto fail;
			continue;
		}
		if (sq_exec(c, migrations[v]) < 0 ||
		    (v == SCHEMA_STORE_ID && store_id_add(c) < 0))
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA application_id=%d; PRAGMA user_version=%lld",
		    AUTH_APP_ID, (long long)v);
		if (sq_exec(c, sql) < 0 || sq_commit(c) < 0)
			goto fail;
		continue;
fail:
		snprintf(err, errlen, "%s: schema migration to version %lld failed: %s",
		    c->s.user_db, (long long)v, sqlite3_errmsg(c->db));
		sq_rollback(c);
		return -1;
	}
	return 0;
}

static int
sq_open(struct auth_ctx *c, char *err, size_t errlen)
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
	if (sq_exec(c, "PRAGMA journal_mode=WAL") < 0 ||
	    sq_exec(c, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
	        "PRAGMA secure_delete=ON; PRAGMA trusted_schema=OFF") < 0) {
		snprintf(err, errlen, "%s: cannot set WAL mode: %s", c->s.user_db,
		    sqlite3_errmsg(c->db));
		return -1;
	}
	return migrate(c, version, err, errlen);
}

/* auth_users_known's SQLite half (auth_store.h). */
int
auth_sq_users_known(const struct auth_settings *s, const char *const *names,
    size_t n, bool *known, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t app = 0;
	int rc = -1;

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

static void
sq_close(struct auth_ctx *c)
{
	if (c->db != NULL)
		sqlite3_close_v2(c->db);
	c->db = NULL;
}

static const char *
sq_errmsg(struct auth_ctx *c)
{
	return c->db != NULL ? sqlite3_errmsg(c->db) : "no store open";
}

static const char *
sq_hint(struct auth_ctx *c)
{
	return code_hint(c->db != NULL ? sqlite3_errcode(c->db) : SQLITE_CANTOPEN);
}

/* Prepares sql and binds ?1..?N from `types`: 'i' int64_t, 't' text
 * (NULL binds SQL NULL), 'b' blob (pointer, size_t). NULL on error. */
static sqlite3_stmt *
prep(struct auth_ctx *c, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int i = 1;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	va_start(ap, types);
	for (const char *t = types; *t != '\0'; t++, i++) {
		if (*t == 'i')
			sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
		else if (*t == 't') {
			const char *v = va_arg(ap, const char *);

			if (v != NULL)
				sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
		} else {
			const void *p = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);

			sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC);
		}
	}
	va_end(ap);
	return st;
}

/* Steps a write; the number of rows changed, or -1. */
static int
done(struct auth_ctx *c, sqlite3_stmt *st)
{
	int r;

	if (st == NULL)
		return -1;
	r = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(c->db) : -1;
	sqlite3_finalize(st);
	return r;
}

static int
as_rc(int changes)
{
	return changes < 0 ? -1 : 0;
}

static const char *
col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t != NULL ? (const char *)t : "";
}

static void
copy_text(char *dst, size_t dstlen, sqlite3_stmt *st, int col)
{
	snprintf(dst, dstlen, "%s", col_text(st, col));
}

static int
sq_version(struct auth_ctx *c, int64_t *out)
{
	return pragma_int(c->db, "SELECT v FROM meta WHERE k = 'version'", out);
}

static int
sq_bump_version(struct auth_ctx *c)
{
	return sq_exec(c, "UPDATE meta SET v = v + 1 WHERE k = 'version'");
}

/* The user's revoked rows go with the bump: every session made before it
 * carries the old epoch, which the cookie check now refuses by itself. */
static int
sq_bump_epoch(struct auth_ctx *c, int64_t uid, int64_t now)
{
	if (done(c, prep(c, "UPDATE users SET epoch = epoch + 1, updated = ?2"
	    " WHERE id = ?1", "ii", uid, now)) < 0 ||
	    done(c, prep(c, "DELETE FROM sessions WHERE user_id = ?1 AND"
	    " revoked = 1", "i", uid)) < 0)
		return -1;
	return sq_bump_version(c);
}

static int
sq_user_get(struct auth_ctx *c, const char *folded, int64_t id,
    struct auth_user *u)
{
	static const char by_name[] = "SELECT id, name, email, admin, groups, pw,"
	    " totp, totp_kid, totp_last, lockdown, disabled, epoch, created FROM"
	    " users WHERE name = ?1";
	static const char by_id[] = "SELECT id, name, email, admin, groups, pw,"
	    " totp, totp_kid, totp_last, lockdown, disabled, epoch, created FROM"
	    " users WHERE id = ?1";
	sqlite3_stmt *st = folded != NULL ? prep(c, by_name, "t", folded) :
	    prep(c, by_id, "i", id);
	int r;

	if (st == NULL)
		return -1;
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
			memcpy(u->totp_sealed, sqlite3_column_blob(st, 6),
			    sizeof(u->totp_sealed));
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
	if ((st = prep(c, "SELECT id, epoch, admin, disabled, name, groups,"
	    " lockdown FROM users ORDER BY id", "")) == NULL)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < AUTH_STORE_USERS_MAX) {
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
		return r == SQLITE_ROW && *n == AUTH_STORE_USERS_MAX ?
		    AUTH_STORE_OVER_CAP : -1;
	}
	*out = v;
	return 0;
}

/* Expired sessions are pruned at each login (session_add), which keeps
 * this table small without a time filter here. */
static int
load_revoked(struct auth_ctx *c, uint8_t (**out)[16], size_t *n)
{
	sqlite3_stmt *st;
	uint8_t (*v)[16] = NULL;
	size_t cap = 0;
	int r;

	*n = 0;
	if ((st = prep(c, "SELECT sid FROM sessions WHERE revoked = 1"
	    " ORDER BY sid", "")) == NULL)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < AUTH_STORE_REVOKED_MAX) {
		const char *t = col_text(st, 0);

		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint8_t (*nv)[16] = realloc(v, ncap * sizeof(*v));

			if (nv == NULL)
				break;
			v = nv, cap = ncap;
		}
		if (auth_unhex(t, strlen(t), v[*n], 16) == 16)
			(*n)++;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		free(v);
		return r == SQLITE_ROW && *n == AUTH_STORE_REVOKED_MAX ?
		    AUTH_STORE_OVER_CAP : -1;
	}
	*out = v;
	return 0;
}

/* One read transaction, so users and revocations are of the same moment. */
static int
sq_load(struct auth_ctx *c, struct auth_mem_user **u, size_t *nu,
    uint8_t (**rv)[16], size_t *nr)
{
	int rc;

	*u = NULL, *rv = NULL;
	if ((rc = sq_exec(c, "BEGIN")) < 0 || (rc = load_users(c, u, nu)) < 0 ||
	    (rc = load_revoked(c, rv, nr)) < 0) {
		sq_rollback(c);
		free(*u);
		*u = NULL;
		return rc == AUTH_STORE_OVER_CAP ? rc : -1;
	}
	sq_rollback(c);
	return 0;
}

static int
sq_user_add(struct auth_ctx *c, const struct auth_user_new *n, int64_t *uid)
{
	/* the count and the insert in one statement of the write transaction
	 * (writers are serialised): never one user past the bound */
	sqlite3_stmt *st = prep(c, "INSERT INTO users(name, email, admin, groups,"
	    " pw, created, updated) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6 WHERE"
	    " (SELECT count(*) FROM users) < ?7", "ttittii", n->name, n->email,
	    (int64_t)n->admin, n->groups, n->pw, n->now,
	    (int64_t)AUTH_STORE_USERS_MAX);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return 1;
	if (rc != SQLITE_DONE)
		return -1;
	if (sqlite3_changes(c->db) == 0)
		return AUTH_STORE_FULL;
	*uid = sqlite3_last_insert_rowid(c->db);
	return sq_bump_version(c);
}

static int
sq_user_set(struct auth_ctx *c, int64_t uid, enum auth_user_field f,
    const char *text)
{
	static const char *const sql[] = {
		[AUTH_UF_PW] = "UPDATE users SET pw = ?2 WHERE id = ?1",
		[AUTH_UF_LOCKDOWN] = "UPDATE users SET lockdown = ?2 WHERE id = ?1",
		[AUTH_UF_TOTP_CLEAR] =
		    "UPDATE users SET totp = NULL, totp_kid = 0 WHERE id = ?1",
		[AUTH_UF_RECOVERY_CLEAR] = "DELETE FROM recovery WHERE user_id = ?1",
		[AUTH_UF_DISABLED] = "UPDATE users SET disabled = 1 WHERE id = ?1",
		[AUTH_UF_ENABLED] = "UPDATE users SET disabled = 0 WHERE id = ?1",
		[AUTH_UF_DELETE] = "DELETE FROM users WHERE id = ?1",
	};
	bool has_text = f == AUTH_UF_PW || f == AUTH_UF_LOCKDOWN;

	if ((size_t)f >= sizeof(sql) / sizeof(sql[0]))
		return -1;
	return as_rc(done(c, has_text ? prep(c, sql[f], "it", uid, text) :
	    prep(c, sql[f], "i", uid)));
}

static int
sq_user_list(struct auth_ctx *c, auth_user_row_fn fn, void *arg)
{
	sqlite3_stmt *st = prep(c, "SELECT name, admin, disabled, totp IS NOT NULL,"
	    " pw != '', email, groups FROM users ORDER BY name", "");
	int r;

	if (st == NULL)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct auth_user_row row = { .name = col_text(st, 0),
		    .admin = sqlite3_column_int(st, 1) != 0,
		    .disabled = sqlite3_column_int(st, 2) != 0,
		    .totp = sqlite3_column_int(st, 3) != 0,
		    .pw_set = sqlite3_column_int(st, 4) != 0,
		    .email = col_text(st, 5), .groups = col_text(st, 6) };

		fn(arg, &row);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : -1;
}

static int
sq_user_enrolled(struct auth_ctx *c, int64_t uid, const char *phc,
    const uint8_t *sealed, size_t sealed_len, uint32_t kid, int64_t step,
    int64_t now)
{
	return as_rc(done(c, prep(c, "UPDATE users SET pw = ?2, totp = ?3,"
	    " totp_kid = ?4, totp_last = ?5, updated = ?6 WHERE id = ?1", "itbiii",
	    uid, phc, sealed, sealed_len, (int64_t)kid, step, now)));
}

static int
sq_pw_rehash(struct auth_ctx *c, int64_t uid, const char *phc, const char *old)
{
	return as_rc(done(c, prep(c, "UPDATE users SET pw = ?2 WHERE id = ?1 AND"
	    " pw = ?3", "itt", uid, phc, old)));
}

static int
sq_totp_advance(struct auth_ctx *c, int64_t uid, int64_t step)
{
	return done(c, prep(c, "UPDATE users SET totp_last = ?2 WHERE id = ?1"
	    " AND totp_last < ?2", "ii", uid, step));
}

static int
sq_recovery_use(struct auth_ctx *c, int64_t uid, const char *hash)
{
	return done(c, prep(c, "UPDATE recovery SET used = 1 WHERE user_id = ?1"
	    " AND hash = ?2 AND used = 0", "it", uid, hash));
}

static int
sq_recovery_clear(struct auth_ctx *c, int64_t uid)
{
	return as_rc(done(c, prep(c, "DELETE FROM recovery WHERE user_id = ?1", "i",
	    uid)));
}

static int
sq_recovery_add(struct auth_ctx *c, int64_t uid, const char *hash)
{
	return as_rc(done(c, prep(c, "INSERT INTO recovery(user_id, hash)"
	    " VALUES(?1, ?2)", "it", uid, hash)));
}

static int
sq_enrol_add(struct auth_ctx *c, const char *hash, int64_t uid, int64_t expires)
{
	return as_rc(done(c, prep(c, "INSERT INTO enrol(hash, user_id, expires)"
	    " VALUES(?1, ?2, ?3)", "tii", hash, uid, expires)));
}

static int
sq_enrol_get(struct auth_ctx *c, const char *hash, int64_t now,
    struct auth_enrol_row *e)
{
	sqlite3_stmt *st = prep(c, "SELECT e.user_id, u.name, e.totp, e.totp_kid"
	    " FROM enrol e JOIN users u ON u.id = e.user_id WHERE e.hash = ?1"
	    " AND e.used = 0 AND e.expires > ?2 AND u.disabled = 0", "ti", hash,
	    now);
	int r;

	memset(e, 0, sizeof(*e));
	if (st == NULL)
		return -1;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		e->uid = sqlite3_column_int64(st, 0);
		copy_text(e->name, sizeof(e->name), st, 1);
		if (sqlite3_column_bytes(st, 2) == (int)sizeof(e->sealed)) {
			memcpy(e->sealed, sqlite3_column_blob(st, 2), sizeof(e->sealed));
			e->has_secret = true;
		}
		e->kid = (uint32_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : r == SQLITE_DONE ? 1 : -1;
}

static int
sq_enrol_set_totp(struct auth_ctx *c, const char *hash, const uint8_t *sealed,
    size_t sealed_len, uint32_t kid)
{
	return done(c, prep(c, "UPDATE enrol SET totp = ?2, totp_kid = ?3 WHERE"
	    " hash = ?1 AND used = 0", "tbi", hash, sealed, sealed_len,
	    (int64_t)kid));
}

static int
sq_enrol_use(struct auth_ctx *c, const char *hash)
{
	return done(c, prep(c, "UPDATE enrol SET used = 1 WHERE hash = ?1 AND"
	    " used = 0", "t", hash));
}

static int
sq_pending_add(struct auth_ctx *c, const char *nonce, int64_t uid, int64_t now,
    int64_t expires)
{
	if (done(c, prep(c, "DELETE FROM mfa_pending WHERE expires < ?1", "i",
	    now)) < 0)
		return -1;
	return as_rc(done(c, prep(c, "INSERT INTO mfa_pending(nonce, user_id,"
	    " expires) VALUES(?1, ?2, ?3)", "tii", nonce, uid, expires)));
}

static int
sq_pending_live(struct auth_ctx *c, const char *nonce, int64_t uid, int64_t now)
{
	sqlite3_stmt *st = prep(c, "SELECT 1 FROM mfa_pending WHERE nonce = ?1 AND"
	    " user_id = ?2 AND expires >= ?3", "tii", nonce, uid, now);
	int r;

	if (st == NULL)
		return -1;
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -1;
}

static int
sq_pending_take(struct auth_ctx *c, const char *nonce, int64_t uid, int64_t now)
{
	return done(c, prep(c, "DELETE FROM mfa_pending WHERE nonce = ?1 AND"
	    " user_id = ?2 AND expires >= ?3", "tii", nonce, uid, now));
}

static int
sq_session_add(struct auth_ctx *c, const struct auth_session_new_row *s)
{
	if (done(c, prep(c, "DELETE FROM sessions WHERE created < ?1", "i",
	    s->prune_before)) < 0)
		return -1;
	return as_rc(done(c, prep(c, "INSERT INTO sessions(sid, user_id, created, ip,"
	    " level, pid, epoch) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", "tiititi",
	    s->sid, s->uid, s->created, s->ip, (int64_t)s->level, s->pid,
	    s->epoch)));
}

static int
sq_session_revoke(struct auth_ctx *c, int64_t uid, const char *sid)
{
	return done(c, prep(c, "UPDATE sessions SET revoked = 1 WHERE sid = ?1"
	    " AND user_id = ?2", "ti", sid, uid));
}

/* In the caller's transaction, so the row read is the row revoked. */
static int
sq_session_revoke_pid(struct auth_ctx *c, const char *pid, int64_t *uid)
{
	sqlite3_stmt *st = prep(c, "SELECT user_id FROM sessions WHERE pid = ?1"
	    " AND revoked = 0", "t", pid);
	int r;

	if (st == NULL)
		return -1;
	if ((r = sqlite3_step(st)) == SQLITE_ROW)
		*uid = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (r != SQLITE_ROW)
		return r == SQLITE_DONE ? 0 : -1;
	return done(c, prep(c, "UPDATE sessions SET revoked = 1 WHERE pid = ?1"
	    " AND revoked = 0", "t", pid));
}

static int
sq_revoked_count(struct auth_ctx *c, int64_t uid, int64_t *n)
{
	sqlite3_stmt *st = prep(c, "SELECT count(*) FROM sessions WHERE"
	    " user_id = ?1 AND revoked = 1", "i", uid);
	int r;

	if (st == NULL)
		return -1;
	if ((r = sqlite3_step(st)) == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : -1;
}

/* Live: not revoked, sealed under the user's current epoch (a password
 * change or `session revoke --user` bumps it), within session_max, and
 * the user enabled. Rows from before schema 3 (epoch 0) are listed: the
 * gateway may still accept them. */
static int
sq_session_list(struct auth_ctx *c, const struct auth_session_query *q,
    auth_session_row_fn fn, void *arg)
{
	static const char oldest[] = "SELECT s.sid, s.pid, u.name, s.ip,"
	    " s.created, s.level FROM sessions s JOIN users u ON u.id = s.user_id"
	    " WHERE s.revoked = 0 AND u.disabled = 0 AND (s.epoch = u.epoch OR"
	    " s.epoch = 0) AND s.created > ?1 AND (?2 = 0 OR u.id = ?2) AND"
	    " (?3 IS NULL OR u.name = ?3) ORDER BY s.created, s.pid LIMIT ?4";
	static const char newest[] = "SELECT s.sid, s.pid, u.name, s.ip,"
	    " s.created, s.level FROM sessions s JOIN users u ON u.id = s.user_id"
	    " WHERE s.revoked = 0 AND u.disabled = 0 AND (s.epoch = u.epoch OR"
	    " s.epoch = 0) AND s.created > ?1 AND (?2 = 0 OR u.id = ?2) AND"
	    " (?3 IS NULL OR u.name = ?3) ORDER BY s.created DESC LIMIT ?4";
	sqlite3_stmt *st = prep(c, q->newest_first ? newest : oldest, "iiti",
	    q->since, q->uid, q->user, (int64_t)(q->limit > 0 ? q->limit : -1));
	int r;

	if (st == NULL)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct auth_session_row row = { .sid = col_text(st, 0),
		    .pid = col_text(st, 1), .user = col_text(st, 2),
		    .ip = col_text(st, 3), .created = sqlite3_column_int64(st, 4),
		    .level = sqlite3_column_int(st, 5) };

		fn(arg, &row);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : -1;
}

static int
sq_login_add(struct auth_ctx *c, int64_t uid, int64_t now, const char *ip,
    bool good)
{
	return as_rc(done(c, prep(c, "INSERT INTO logins(user_id, time, ip, ok)"
	    " VALUES(?1, ?2, ?3, ?4)", "iiti", uid, now, ip, (int64_t)good)));
}

static int
sq_login_prune(struct auth_ctx *c, int64_t before)
{
	return as_rc(done(c, prep(c, "DELETE FROM logins WHERE time < ?1", "i",
	    before)));
}

static int
sq_login_list(struct auth_ctx *c, int64_t uid, int limit, auth_login_row_fn fn,
    void *arg)
{
	sqlite3_stmt *st = prep(c, "SELECT time, ip, ok FROM logins WHERE"
	    " user_id = ?1 ORDER BY time DESC LIMIT ?2", "ii", uid, (int64_t)limit);
	int r;

	if (st == NULL)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct auth_login_row row = { .time = sqlite3_column_int64(st, 0),
		    .ip = col_text(st, 1), .ok = sqlite3_column_int(st, 2) != 0 };

		fn(arg, &row);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : -1;
}

static int
sq_reg_get(struct auth_ctx *c, const char *key, struct auth_reg_row *r)
{
	sqlite3_stmt *st = prep(c, "SELECT failures, first, last, banned_until"
	    " FROM regulate WHERE key = ?1", "t", key);
	int rc;

	memset(r, 0, sizeof(*r));
	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->failures = sqlite3_column_int64(st, 0);
		r->first = sqlite3_column_int64(st, 1);
		r->last = sqlite3_column_int64(st, 2);
		r->banned_until = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
sq_reg_put(struct auth_ctx *c, const char *key, const struct auth_reg_row *r)
{
	return as_rc(done(c, prep(c, "INSERT OR REPLACE INTO regulate(key, failures,"
	    " first, last, banned_until) VALUES(?1, ?2, ?3, ?4, ?5)", "tiiii", key,
	    r->failures, r->first, r->last, r->banned_until)));
}

static int
sq_reg_del(struct auth_ctx *c, const char *key)
{
	return done(c, prep(c, "DELETE FROM regulate WHERE key = ?1", "t", key));
}

static int
sq_reg_prune(struct auth_ctx *c, int64_t now, int64_t last_before)
{
	return as_rc(done(c, prep(c, "DELETE FROM regulate WHERE banned_until < ?1"
	    " AND last < ?2", "ii", now, last_before)));
}

static int
sq_ban_list(struct auth_ctx *c, int64_t now, auth_ban_row_fn fn, void *arg)
{
	sqlite3_stmt *st = prep(c, "SELECT key, failures, banned_until FROM"
	    " regulate WHERE banned_until > ?1 ORDER BY key", "i", now);
	int r;

	if (st == NULL)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct auth_ban_row row = { .key = col_text(st, 0),
		    .failures = sqlite3_column_int64(st, 1),
		    .until = sqlite3_column_int64(st, 2) };

		fn(arg, &row);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : -1;
}

/* The same notion of "live" as session_list. */
static const char *const count_sql[AUTH_GAUGES] = {
	"SELECT count(*) FROM regulate WHERE key LIKE 'u:%' AND banned_until > ?1",
	"SELECT count(*) FROM regulate WHERE key LIKE 'a:%' AND banned_until > ?1",
	"SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id"
	" WHERE s.revoked = 0 AND u.disabled = 0 AND (s.epoch = u.epoch OR"
	" s.epoch = 0) AND s.created > ?1 - ?2",
	"SELECT count(*) FROM enrol WHERE used = 0 AND expires > ?1",
};

static int
sq_counts(struct auth_ctx *c, int64_t now, int64_t session_max, long long *out)
{
	for (size_t i = 0; i < AUTH_GAUGES; i++) {
		sqlite3_stmt *st = prep(c, count_sql[i], "ii", now, session_max);
		int r;

		if (st == NULL)
			return -1;
		r = sqlite3_step(st);
		if (r == SQLITE_ROW)
			out[i] = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		if (r != SQLITE_ROW)
			return -1;
	}
	return 0;
}

/* ---- copying a store (auth_migrate.c) ---- */

/* BEGIN IMMEDIATE takes the write lock for source and target alike: no
 * gateway writes either until the copy ends, and WAL readers go on. */
static int
sq_copy_begin(struct auth_ctx *c, bool target)
{
	(void)target;
	return sq_begin(c);
}

static int
sq_row_each(struct auth_ctx *c, enum auth_tbl t, auth_row_fn fn, void *arg)
{
	const struct auth_tbl_def *d = &auth_tbls[t];
	struct auth_val row[AUTH_TBL_COLS_MAX];
	size_t ncols = strlen(d->types);
	char sql[AUTH_TBL_SQL_MAX];
	sqlite3_stmt *st;
	int r, stop = 0;

	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY rowid", d->cols,
	    d->name);
	if (ncols > AUTH_TBL_COLS_MAX || (st = prep(c, sql, "")) == NULL)
		return -1;
	while (stop == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
		memset(row, 0, sizeof(row));
		for (size_t i = 0; i < ncols; i++) {
			struct auth_val *v = &row[i];
			int col = (int)i;

			v->null = sqlite3_column_type(st, col) == SQLITE_NULL;
			if (d->types[i] == 'i')
				v->i = sqlite3_column_int64(st, col);
			else if (d->types[i] == 't')
				v->t = col_text(st, col);
			else {
				v->b = sqlite3_column_blob(st, col);
				v->n = (size_t)sqlite3_column_bytes(st, col);
			}
		}
		stop = fn(arg, row);
	}
	sqlite3_finalize(st);
	return stop == 0 && r == SQLITE_DONE ? 0 : -1;
}

static int
sq_row_put(struct auth_ctx *c, enum auth_tbl t, const struct auth_val *row)
{
	const char *types = auth_tbls[t].types;
	char sql[AUTH_TBL_SQL_MAX];
	sqlite3_stmt *st;

	if (auth_tbl_insert_sql(t, '?', sql, sizeof(sql)) < 0 ||
	    sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (int i = 0; types[i] != '\0'; i++) {
		const struct auth_val *v = &row[i];

		if (v->null)
			continue;	/* unbound: NULL */
		if (types[i] == 'i')
			sqlite3_bind_int64(st, i + 1, v->i);
		else if (types[i] == 't')
			sqlite3_bind_text(st, i + 1, v->t, -1, SQLITE_STATIC);
		else
			sqlite3_bind_blob(st, i + 1, v->b != NULL ? (const void *)v->b :
			    "", (int)v->n, SQLITE_STATIC);
	}
	return done(c, st) == 1 ? 0 : -1;
}

static int
sq_row_count(struct auth_ctx *c, enum auth_tbl t, int64_t *n)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", auth_tbls[t].name);
	return pragma_int(c->db, sql, n);
}

/* An INTEGER PRIMARY KEY without AUTOINCREMENT takes max(id) + 1 by
 * itself: only the version moves. */
static int
sq_copy_done(struct auth_ctx *c)
{
	return sq_bump_version(c);
}

/* Migration SCHEMA_STORE_ID's row, inside its transaction. */
static int
store_id_add(struct auth_ctx *c)
{
	int64_t id;

	if (auth_store_id_new(&id) < 0)
		return -1;
	return done(c, prep(c, "INSERT INTO meta VALUES('store_id', ?1)", "i",
	    id)) == 1 ? 0 : -1;
}

static int
sq_store_id(struct auth_ctx *c, int64_t *out)
{
	sqlite3_stmt *st = prep(c, "SELECT v FROM meta WHERE k = 'store_id'", "");
	int r;

	if (st == NULL)
		return -1;
	if ((r = sqlite3_step(st)) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : r == SQLITE_DONE ? 1 : -1;
}

static int
sq_store_id_put(struct auth_ctx *c, int64_t id)
{
	return done(c, prep(c, "UPDATE meta SET v = ?1 WHERE k = 'store_id'",
	    "i", id)) == 1 ? 0 : -1;
}

const struct auth_store_ops auth_store_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.errmsg = sq_errmsg,
	.hint = sq_hint,
	.version = sq_version,
	.bump_version = sq_bump_version,
	.load = sq_load,
	.user_get = sq_user_get,
	.user_add = sq_user_add,
	.user_set = sq_user_set,
	.user_list = sq_user_list,
	.user_enrolled = sq_user_enrolled,
	.pw_rehash = sq_pw_rehash,
	.bump_epoch = sq_bump_epoch,
	.totp_advance = sq_totp_advance,
	.recovery_use = sq_recovery_use,
	.recovery_clear = sq_recovery_clear,
	.recovery_add = sq_recovery_add,
	.enrol_add = sq_enrol_add,
	.enrol_get = sq_enrol_get,
	.enrol_set_totp = sq_enrol_set_totp,
	.enrol_use = sq_enrol_use,
	.pending_add = sq_pending_add,
	.pending_live = sq_pending_live,
	.pending_take = sq_pending_take,
	.session_add = sq_session_add,
	.session_revoke = sq_session_revoke,
	.session_revoke_pid = sq_session_revoke_pid,
	.revoked_count = sq_revoked_count,
	.session_list = sq_session_list,
	.login_add = sq_login_add,
	.login_prune = sq_login_prune,
	.login_list = sq_login_list,
	.reg_get = sq_reg_get,
	.reg_put = sq_reg_put,
	.reg_del = sq_reg_del,
	.reg_prune = sq_reg_prune,
	.ban_list = sq_ban_list,
	.counts = sq_counts,
	.copy_begin = sq_copy_begin,
	.row_each = sq_row_each,
	.row_put = sq_row_put,
	.row_count = sq_row_count,
	.copy_done = sq_copy_done,
	.store_id = sq_store_id,
	.store_id_put = sq_store_id_put,
};
