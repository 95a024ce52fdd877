/* auth_store.c -- the store seen by the login code: backend choice, the
 * transaction helpers and the in-memory tables the request checks read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_priv.h"

int
auth_users_known(const struct auth_settings *s, const char *const *names,
    size_t n, bool *known, char *err, size_t errlen)
{
	if (s->user_db == NULL) {
		snprintf(err, errlen, "no user_db configured");
		return -1;
	}
	return auth_store_is_pg(s->user_db) ?
	    auth_pg_users_known(s, names, n, known, err, errlen) :
	    auth_sq_users_known(s, names, n, known, err, errlen);
}

/* The identity is read here, once, for every backend and every caller
 * (gateway, CLI, migrate): a store without one is refused, never
 * served with a default that another store could share. */
int
auth_store_open(struct auth_ctx *c, char *err, size_t errlen)
{
	c->store = auth_store_is_pg(c->s.user_db) ? &auth_store_pg :
	    &auth_store_sqlite;
	if (c->store->open(c, err, errlen) < 0)
		return -1;
	switch (c->store->store_id(c, &c->store_id)) {
	case 0:
		return 0;
	case 1:
		snprintf(err, errlen, "%s: the store has no identity (meta "
		    "'store_id'), which its schema gave it: it was changed by "
		    "hand or damaged; restore it from a backup", c->s.user_db);
		return -1;
	default:
		snprintf(err, errlen, "%s: cannot read the store's identity (meta "
		    "'store_id'): %s: %s", c->s.user_db, auth_store_errmsg(c),
		    auth_store_hint(c));
		return -1;
	}
}

/* Drawn in C from the CSPRNG, not by SQL random(): the identity is what
 * keeps one store's cookies off another, so it must not be guessable. */
int
auth_store_id_new(int64_t *out)
{
	uint8_t b[8];
	uint64_t v = 0;

	if (auth_random(b, sizeof(b)) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(b); i++)
		v = v << 8 | b[i];
	memcpy(out, &v, sizeof(*out));	/* the bits as stored: any int64 */
	return 0;
}

void
auth_store_close(struct auth_ctx *c)
{
	if (c->store != NULL)
		c->store->close(c);
}

/* Opened by the serving gateway only: the CLI makes one call at a time. */
int
auth_store_pool_start(struct auth_ctx *c, char *err, size_t errlen)
{
	return c->store == &auth_store_pg ? auth_pg_pool_open(c, err, errlen) : 0;
}

void
auth_store_lock(struct auth_ctx *c)
{
	if (c->pgpool != NULL)
		auth_pg_pool_acquire(c);
	else
		pthread_mutex_lock(&c->db_mu);
}

void
auth_store_unlock(struct auth_ctx *c)
{
	if (c->pgpool != NULL)
		auth_pg_pool_release(c);
	else
		pthread_mutex_unlock(&c->db_mu);
}

int
auth_store_begin(struct auth_ctx *c)
{
	return c->store->begin(c);
}

int
auth_store_commit(struct auth_ctx *c)
{
	return c->store->commit(c);
}

void
auth_store_rollback(struct auth_ctx *c)
{
	c->store->rollback(c);
}

const char *
auth_store_errmsg(struct auth_ctx *c)
{
	return c->store->errmsg(c);
}

const char *
auth_store_hint(struct auth_ctx *c)
{
	return c->store->hint(c);
}

int
auth_user_get(struct auth_ctx *c, const char *folded, int64_t id,
    struct auth_user *u)
{
	return c->store->user_get(c, folded, id, u);
}

int
auth_bump_version(struct auth_ctx *c)
{
	return c->store->bump_version(c);
}

/* Every change that must end a user's sessions goes through here. */
int
auth_bump_epoch(struct auth_ctx *c, int64_t uid, int64_t now)
{
	return c->store->bump_epoch(c, uid, now);
}

/* The one way a session is revoked (logout, account page, `session
 * revoke`). The revocation that would leave the user more than
 * AUTH_REVOKED_PER_USER revoked rows bumps the epoch instead, which ends
 * the same session and the user's others and deletes the rows: without
 * it a user signing in and out in a loop would grow the table every
 * gateway loads until the load refuses the store. One transaction, so no
 * reload sees the rows over the bound or the rows gone without the bump. */
int
auth_revoke(struct auth_ctx *c, int64_t uid, const char *sid,
    const char *pid, int64_t now, char *err, size_t errlen)
{
	int64_t n = 0;
	int rc;

	if (auth_store_begin(c) < 0)
		goto fail;
	rc = sid != NULL ? c->store->session_revoke(c, uid, sid) :
	    c->store->session_revoke_pid(c, pid, &uid);
	if (rc < 0 || (rc > 0 && c->store->revoked_count(c, uid, &n) < 0))
		goto fail;
	if (n > AUTH_REVOKED_PER_USER) {
		if (auth_bump_epoch(c, uid, now) < 0)
			goto fail;
	} else if (rc > 0 && auth_bump_version(c) < 0)
		goto fail;
	if (auth_store_commit(c) < 0)
		goto fail;
	return rc;
fail:
	snprintf(err, errlen, "%s: %s", auth_store_errmsg(c), auth_store_hint(c));
	auth_store_rollback(c);
	return -1;
}

void
auth_tables_free(struct auth_tables *t)
{
	if (t == NULL)
		return;
	free(t->users);
	free(t->revoked);
	free(t);
}

/* Keeping the tables in force would freeze them: revocations, disabled
 * users and epoch bumps made since would be let through until the store
 * is back under its bounds. */
void
auth_tables_close(struct auth_tables *t)
{
	free(t->users);
	free(t->revoked);
	t->users = NULL, t->nusers = 0;
	t->revoked = NULL, t->nrevoked = 0;
	t->version = AUTH_TABLES_CLOSED;
	t->force = true;
}

/* Several readers race to install (pool threads after their own writes,
 * the listener): a read labelled older than the tables in force is
 * dropped, so the tables never step back in time. A pool reload reads the
 * version before the tables, so its label is never newer than what it
 * read: the comparison errs towards one more reload, never a lost one. */
void
auth_tables_install(struct auth_ctx *c, struct auth_tables *t, bool force)
{
	pthread_rwlock_wrlock(&c->mem_mu);
	if (force || t->version > c->mem_version) {
		struct auth_mem_user *ou = c->users;
		uint8_t (*orv)[16] = c->revoked;

		c->users = t->users, c->nusers = t->nusers;
		c->revoked = t->revoked, c->nrevoked = t->nrevoked;
		c->mem_version = t->version;
		t->users = ou;
		t->revoked = orv;
	}
	pthread_rwlock_unlock(&c->mem_mu);
	auth_tables_free(t);	/* the replaced or the refused tables */
}

int64_t
auth_tables_version(struct auth_ctx *c)
{
	int64_t v;

	pthread_rwlock_rdlock(&c->mem_mu);
	v = c->mem_version;
	pthread_rwlock_unlock(&c->mem_mu);
	return v;
}

static bool
listening(struct auth_ctx *c)
{
	bool on;

	pthread_mutex_lock(&c->live_mu);
	on = c->live_info.running;
	pthread_mutex_unlock(&c->live_mu);
	return on;
}

/* Both backends' loads, one rule and one message (AUTH_STORE_OVER_CAP). */
#define OVER_CAP_WHY "more users or revoked sessions than the in-memory " \
	"tables hold (" XSTR(AUTH_STORE_USERS_MAX) " users, " \
	XSTR(AUTH_REVOKED_PER_USER) " revoked sessions per user): refused " \
	"rather than cut short; `pbxgate session revoke --user U` deletes a " \
	"user's revoked rows (docs/auth.md, Known limits)"
#define XSTR(x)	STR(x)
#define STR(x)	#x

/* Holds db_mu while reading, then swaps the tables under the write lock so
 * that request checks wait only for the pointer swap. */
static int
reload(struct auth_ctx *c, bool force, bool try, char *err, size_t errlen)
{
	struct auth_tables *t;
	int64_t ver = 0;
	int rc = -1;

	if (!try)
		pthread_mutex_lock(&c->db_mu);
	else if (pthread_mutex_trylock(&c->db_mu) != 0)
		return 0;	/* a pool thread is writing; it reloads itself */
	if (c->store->version(c, &ver) < 0) {
		snprintf(err, errlen, "%s: cannot read store version: %s",
		    c->s.user_db, c->store->errmsg(c));
		pthread_mutex_unlock(&c->db_mu);
		return -1;
	}
	if (!force && ver == auth_tables_version(c)) {
		pthread_mutex_unlock(&c->db_mu);
		return 0;
	}
	/* a version that went back is a store restored from a backup; with a
	 * listener, its catch-up follows it (a pool read older than the
	 * listener's must not win the race) */
	force = force || (ver < auth_tables_version(c) && !listening(c));
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (rc = c->store->load(c, &t->users, &t->nusers, &t->revoked,
	    &t->nrevoked)) < 0) {
		snprintf(err, errlen, "%s: cannot load users: %s", c->s.user_db,
		    t == NULL ? "out of memory" : rc == AUTH_STORE_OVER_CAP ?
		    OVER_CAP_WHY : c->store->errmsg(c));
		if (rc == AUTH_STORE_OVER_CAP) {
			auth_tables_close(t);
			auth_tables_install(c, t, true);	/* under db_mu, as below */
		} else
			free(t);
		pthread_mutex_unlock(&c->db_mu);
		return -1;
	}
	t->version = ver;
	/* still under db_mu: pool reloads install in the order they read */
	auth_tables_install(c, t, force);
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

const struct auth_tbl_def auth_tbls[AUTH_TBL_COUNT] = {
	[AUTH_TBL_USERS] = { "users", "id, name, email, admin, groups, pw, totp,"
	    " totp_kid, totp_last, lockdown, disabled, epoch, created, updated",
	    "ittittbiitiiii", true },
	[AUTH_TBL_RECOVERY] = { "recovery", "user_id, hash, used", "iti", false },
	[AUTH_TBL_ENROL] = { "enrol", "hash, user_id, expires, used, totp,"
	    " totp_kid", "tiiibi", false },
	[AUTH_TBL_MFA_PENDING] = { "mfa_pending", "nonce, user_id, expires", "tii",
	    false },
	[AUTH_TBL_SESSIONS] = { "sessions", "sid, user_id, created, ip, level,"
	    " revoked, pid, epoch", "tiitiiti", false },
	[AUTH_TBL_LOGINS] = { "logins", "id, user_id, time, ip, ok", "iiiti", true },
	[AUTH_TBL_REGULATE] = { "regulate", "key, failures, first, last,"
	    " banned_until", "tiiii", false },
};

/* "INSERT INTO t(cols) VALUES(?1, ...)" with the backend's parameter mark
 * ('?' SQLite, '$' PostgreSQL); -1 when out is too small. */
int
auth_tbl_insert_sql(enum auth_tbl t, char mark, char *out, size_t outlen)
{
	const struct auth_tbl_def *d = &auth_tbls[t];
	size_t ncols = strlen(d->types), n;
	int w;

	w = snprintf(out, outlen, "INSERT INTO %s(%s) VALUES(", d->name, d->cols);
	if (w < 0 || (size_t)w >= outlen || ncols > AUTH_TBL_COLS_MAX)
		return -1;
	n = (size_t)w;
	for (size_t i = 0; i < ncols; i++) {
		w = snprintf(out + n, outlen - n, "%s%c%zu", i ? ", " : "", mark,
		    i + 1);
		if (w < 0 || (size_t)w >= outlen - n)
			return -1;
		n += (size_t)w;
	}
	w = snprintf(out + n, outlen - n, ")");
	return w < 0 || (size_t)w >= outlen - n ? -1 : 0;
}
