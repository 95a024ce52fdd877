/* test_store_ops.c -- the store interface (auth_store.h) as every backend
 * must implement it: the once-only writes, counters, sessions, listings;
 * and, with PostgreSQL, the change listener's stop in two steps.
 * SQLite by default; PostgreSQL when PBXGATE_TEST_PG holds a libpq URL
 * (meson test store_ops_pg, under tests/tools/with-postgres), each test in
 * a schema of its own, since Criterion runs them in parallel. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_store_pg.h"
#include "helpers.h"

static struct th t;
static char schema[24];

/* The PostgreSQL server under test, or NULL: SQLite. */
static const char *
pg_url(void)
{
	const char *u = getenv("PBXGATE_TEST_PG");

	return u != NULL && *u != '\0' ? u : NULL;
}

static void
pg_exec(const char *url, const char *sql)
{
	PGconn *db = PQconnectdb(url);
	PGresult *r;

	cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
	PQclear(PQexec(db, "SET client_min_messages = warning"));
	r = PQexec(db, sql);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s",
	    PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(db);
}

/* user_db becomes the server's URL with search_path set to a new schema. */
static void
use_pg(const char *url)
{
	char sql[160], *db[1], err[256];
	int bad;

	snprintf(schema, sizeof(schema), "t%ld", (long)getpid());
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE;"
	    " CREATE SCHEMA %s", schema, schema);
	pg_exec(url, sql);
	cr_assert_gt(asprintf(&db[0], "%s&options=-csearch_path%%3D%s", url,
	    schema), 0);
	cr_assert_eq(pol_kw_run(&auth_kwtab, &t.s, t.dir, "user_db", 1, db,
	    &bad, err, sizeof(err)), 0, "%s", err);
	free(db[0]);
}

static void
setup(void)
{
	const char *url = getenv("PBXGATE_TEST_PG");

	th_init(&t);
	if (url != NULL && *url != '\0')
		use_pg(url);
	th_open(&t);
	cr_assert_str_eq(t.ctx->store->name, url != NULL && *url != '\0' ?
	    "postgresql" : "sqlite");
	pthread_mutex_lock(&t.ctx->db_mu);
}

static void
teardown(void)
{
	const char *url = getenv("PBXGATE_TEST_PG");
	char sql[96];

	pthread_mutex_unlock(&t.ctx->db_mu);
	th_fini(&t);
	if (url != NULL && *url != '\0') {
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
		pg_exec(url, sql);
	}
}

TestSuite(store_ops, .init = setup, .fini = teardown);

static int64_t
add(const char *name)
{
	struct auth_user_new n = { .name = name, .email = "", .groups = "",
	    .pw = "", .now = 1000 };
	int64_t uid = 0;

	cr_assert_eq(t.ctx->store->user_add(t.ctx, &n, &uid), 0, "%s",
	    t.ctx->store->errmsg(t.ctx));
	cr_assert_gt(uid, 0);
	return uid;
}

Test(store_ops, user_add_twice_is_a_duplicate)
{
	struct auth_user_new n = { .name = "alice", .email = "", .groups = "",
	    .pw = "", .now = 1000 };
	int64_t uid;

	add("alice");
	cr_expect_eq(t.ctx->store->user_add(t.ctx, &n, &uid), 1);
}

Test(store_ops, user_get_by_name_and_id)
{
	int64_t uid = add("bob");
	struct auth_user u;

	cr_assert_eq(t.ctx->store->user_get(t.ctx, "bob", 0, &u), 0);
	cr_expect_eq(u.id, uid);
	cr_assert_eq(t.ctx->store->user_get(t.ctx, NULL, uid, &u), 0);
	cr_expect_str_eq(u.name, "bob");
	cr_expect_eq(u.totp_last, -1);
	cr_expect_eq(t.ctx->store->user_get(t.ctx, "nobody", 0, &u), 1);
}

/* The TOTP step only moves forward, once per step: a code is accepted
 * at most once whoever asks. */
Test(store_ops, totp_step_advances_once)
{
	int64_t uid = add("carol");
	struct auth_store_ops const *s = t.ctx->store;

	cr_expect_eq(s->totp_advance(t.ctx, uid, 100), 1);
	cr_expect_eq(s->totp_advance(t.ctx, uid, 100), 0);
	cr_expect_eq(s->totp_advance(t.ctx, uid, 99), 0);
	cr_expect_eq(s->totp_advance(t.ctx, uid, 101), 1);
}

Test(store_ops, recovery_code_used_once)
{
	int64_t uid = add("dave");
	struct auth_store_ops const *s = t.ctx->store;

	cr_assert_eq(s->recovery_add(t.ctx, uid, "h1"), 0);
	cr_expect_eq(s->recovery_use(t.ctx, uid, "h1"), 1);
	cr_expect_eq(s->recovery_use(t.ctx, uid, "h1"), 0);
	cr_expect_eq(s->recovery_use(t.ctx, uid, "h2"), 0);
	cr_assert_eq(s->recovery_clear(t.ctx, uid), 0);
}

Test(store_ops, enrol_token_used_once_and_expires)
{
	int64_t uid = add("erin");
	struct auth_store_ops const *s = t.ctx->store;
	struct auth_enrol_row e;

	cr_assert_eq(s->enrol_add(t.ctx, "tok1", uid, 2000), 0);
	cr_assert_eq(s->enrol_add(t.ctx, "tok2", uid, 2000), 0);
	cr_assert_eq(s->enrol_get(t.ctx, "tok1", 1500, &e), 0);
	cr_expect_eq(e.uid, uid);
	cr_expect_str_eq(e.name, "erin");
	cr_expect_not(e.has_secret);
	cr_expect_eq(s->enrol_get(t.ctx, "tok2", 2000, &e), 1, "expired");
	cr_expect_eq(s->enrol_use(t.ctx, "tok1"), 1);
	cr_expect_eq(s->enrol_use(t.ctx, "tok1"), 0);
	cr_expect_eq(s->enrol_get(t.ctx, "tok1", 1500, &e), 1, "used");
}

Test(store_ops, pending_nonce_taken_once)
{
	int64_t uid = add("frank");
	struct auth_store_ops const *s = t.ctx->store;

	cr_assert_eq(s->pending_add(t.ctx, "n1", uid, 1000, 1300), 0);
	cr_expect_eq(s->pending_live(t.ctx, "n1", uid, 1300), 1);
	cr_expect_eq(s->pending_live(t.ctx, "n1", uid + 1, 1300), 0);
	cr_expect_eq(s->pending_take(t.ctx, "n1", uid, 1301), 0, "expired");
	cr_expect_eq(s->pending_take(t.ctx, "n1", uid, 1200), 1);
	cr_expect_eq(s->pending_take(t.ctx, "n1", uid, 1200), 0);
	cr_expect_eq(s->pending_live(t.ctx, "n1", uid, 1200), 0);
}

Test(store_ops, regulation_counter_round_trip)
{
	struct auth_store_ops const *s = t.ctx->store;
	struct auth_reg_row r = { 3, 10, 20, 500 }, g;

	cr_assert_eq(s->reg_put(t.ctx, "u:gina", &r), 0);
	cr_assert_eq(s->reg_get(t.ctx, "u:gina", &g), 0);
	cr_expect_eq(memcmp(&r, &g, sizeof(r)), 0);
	cr_expect_eq(s->reg_del(t.ctx, "u:gina"), 1);
	cr_expect_eq(s->reg_del(t.ctx, "u:gina"), 0);
	cr_assert_eq(s->reg_get(t.ctx, "u:gina", &g), 0);
	cr_expect_eq(g.failures, 0);
	cr_expect_eq(g.banned_until, 0);
}

static void
count_ban(void *arg, const struct auth_ban_row *r)
{
	(void)r;
	(*(int *)arg)++;
}

Test(store_ops, ban_listed_until_it_ends)
{
	struct auth_store_ops const *s = t.ctx->store;
	struct auth_reg_row r = { 5, 10, 20, 500 };
	int n = 0;

	cr_assert_eq(s->reg_put(t.ctx, "a:192.0.2.7", &r), 0);
	cr_assert_eq(s->ban_list(t.ctx, 499, count_ban, &n), 0);
	cr_expect_eq(n, 1);
	n = 0;
	cr_assert_eq(s->ban_list(t.ctx, 500, count_ban, &n), 0);
	cr_expect_eq(n, 0);
	cr_assert_eq(s->reg_prune(t.ctx, 501, 21), 0);
	cr_expect_eq(s->reg_del(t.ctx, "a:192.0.2.7"), 0, "pruned");
}

static void
count_session(void *arg, const struct auth_session_row *r)
{
	(void)r;
	(*(int *)arg)++;
}

static int
live_sessions(int64_t uid)
{
	struct auth_session_query q = { .since = 0, .uid = uid };
	int n = 0;

	cr_assert_eq(t.ctx->store->session_list(t.ctx, &q, count_session, &n), 0);
	return n;
}

/* Revoked sessions leave the live list and enter the revocation table;
 * an epoch bump ends every session of the user. */
Test(store_ops, sessions_revoked_and_ended_by_epoch)
{
	int64_t uid = add("hank");
	struct auth_store_ops const *s = t.ctx->store;
	struct auth_session_new_row a = { .sid = "00112233445566778899aabbccddeeff",
	    .pid = "0011223344556677", .ip = "192.0.2.1", .uid = uid,
	    .created = 1000, .epoch = 1, .prune_before = 0, .level = 1 };
	struct auth_session_new_row b = a;
	struct auth_mem_user *u;
	uint8_t (*rv)[16];
	size_t nu, nr;
	int64_t who = 0;

	b.sid = "ffeeddccbbaa99887766554433221100";
	b.pid = "7766554433221100";
	cr_assert_eq(s->session_add(t.ctx, &a), 0, "%s", s->errmsg(t.ctx));
	cr_assert_eq(s->session_add(t.ctx, &b), 0);
	cr_expect_eq(live_sessions(uid), 2);
	cr_expect_eq(s->session_revoke(t.ctx, uid + 1, a.sid), 0, "other user");
	cr_expect_eq(s->session_revoke(t.ctx, uid, a.sid), 1);
	cr_expect_eq(live_sessions(uid), 1);
	cr_assert_eq(s->load(t.ctx, &u, &nu, &rv, &nr), 0);
	cr_expect_eq(nr, 1);
	cr_expect_eq(rv[0][0], 0x00);
	cr_expect_eq(rv[0][15], 0xff);
	free(u);
	free(rv);
	cr_expect_eq(s->session_revoke_pid(t.ctx, b.pid, &who), 1);
	cr_expect_eq(who, uid, "the revoked session's user");
	cr_expect_eq(s->session_revoke_pid(t.ctx, b.pid, &who), 0);
	cr_expect_eq(live_sessions(uid), 0);
}

/* Session i of user uid: sid and pid of its own, tagged with the user. */
static void
session_i(int64_t uid, int i, char sid[AUTH_SID_HEX], char pid[AUTH_PID_HEX])
{
	struct auth_session_new_row r = { .sid = sid, .pid = pid,
	    .ip = "192.0.2.1", .uid = uid, .created = 1000, .epoch = 1,
	    .prune_before = 0, .level = 1 };

	snprintf(sid, AUTH_SID_HEX, "%08x%024x", (unsigned)uid, (unsigned)i);
	snprintf(pid, AUTH_PID_HEX, "%04x%012x", (unsigned)uid, (unsigned)i);
	cr_assert_eq(t.ctx->store->session_add(t.ctx, &r), 0, "%s",
	    t.ctx->store->errmsg(t.ctx));
}

/* Revoked rows in the loaded table; the user's epoch there into *epoch. */
static size_t
loaded_revoked(int64_t uid, uint32_t *epoch)
{
	struct auth_mem_user *u;
	uint8_t (*rv)[16];
	size_t nu, nr;

	cr_assert_eq(t.ctx->store->load(t.ctx, &u, &nu, &rv, &nr), 0);
	for (size_t i = 0; i < nu; i++)
		if (u[i].id == uid)
			*epoch = u[i].epoch;
	free(u);
	free(rv);
	return nr;
}

/* The revocation past AUTH_REVOKED_PER_USER bumps the user's epoch and
 * deletes the user's revoked rows: the loaded table stays bounded, the
 * user's other sessions end, other users' do not. By sid (logout,
 * account page) and by public id (`session revoke`) alike. */
static void
revoke_past_bound(bool by_pid)
{
	int64_t kate = add("kate"), leo = add("leo"), n = -1;
	char sid[AUTH_SID_HEX], pid[AUTH_PID_HEX], err[256];
	char keep[AUTH_SID_HEX], kpid[AUTH_PID_HEX];
	uint32_t epoch = 0;

	session_i(kate, 0, keep, kpid);
	session_i(leo, 0, sid, pid);
	cr_assert_eq(auth_revoke(t.ctx, leo, sid, NULL, 1001, err,
	    sizeof(err)), 1, "%s", err);
	session_i(leo, 1, sid, pid);
	for (int i = 1; i <= AUTH_REVOKED_PER_USER; i++) {
		session_i(kate, i, sid, pid);
		cr_assert_eq(auth_revoke(t.ctx, by_pid ? 0 : kate, by_pid ? NULL :
		    sid, pid, 1001, err, sizeof(err)), 1, "%s", err);
	}
	cr_expect_eq(loaded_revoked(kate, &epoch),
	    (size_t)AUTH_REVOKED_PER_USER + 1, "kate's and leo's rows");
	cr_expect_eq(epoch, 1, "no bump up to the bound");
	cr_expect_eq(live_sessions(kate), 1);
	session_i(kate, AUTH_REVOKED_PER_USER + 1, sid, pid);
	cr_assert_eq(auth_revoke(t.ctx, by_pid ? 0 : kate, by_pid ? NULL : sid,
	    pid, 1001, err, sizeof(err)), 1, "%s", err);
	cr_expect_eq(loaded_revoked(kate, &epoch), 1, "leo's row only");
	cr_expect_eq(epoch, 2, "kate's epoch bumped");
	cr_assert_eq(t.ctx->store->revoked_count(t.ctx, kate, &n), 0);
	cr_expect_eq(n, 0);
	cr_expect_eq(live_sessions(kate), 0, "kate's older session ended");
	cr_expect_eq(live_sessions(leo), 1, "leo's session untouched");
}

Test(store_ops, revocations_past_bound_bump_epoch_by_sid)
{
	revoke_past_bound(false);
}

Test(store_ops, revocations_past_bound_bump_epoch_by_pid)
{
	revoke_past_bound(true);
}

struct revoker {
	struct auth_ctx *ctx;
	int64_t uid;
	const char *sid, *pid;
	int rc;
	atomic_bool done;
	char err[256];
};

static void *
revoker_main(void *arg)
{
	struct revoker *r = arg;

	pthread_mutex_lock(&r->ctx->db_mu);
	r->rc = auth_revoke(r->ctx, r->sid != NULL ? r->uid : 0, r->sid, r->pid,
	    1001, r->err, sizeof(r->err));
	pthread_mutex_unlock(&r->ctx->db_mu);
	atomic_store(&r->done, true);
	return NULL;
}

/* Backends waiting for a lock the backend `holder` holds. */
static int
lock_waiters(const char *url, int holder)
{
	PGconn *db = PQconnectdb(url);
	PGresult *r;
	char sql[160];
	int n;

	cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity"
	    " WHERE %d = ANY(pg_blocking_pids(pid))", holder);
	r = PQexec(db, sql);
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s",
	    PQresultErrorMessage(r));
	n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(db);
	return n;
}

/* Two revocations of one user at once, on two connections, the first
 * leaving the user AUTH_REVOKED_PER_USER revoked rows: the second must see
 * the first's row and bump, not stay under the bound beside it. The first
 * is held open here between its UPDATE and its count; the second runs
 * whole on a thread meanwhile (on the code before the fix it finished
 * without waiting, counting AUTH_REVOKED_PER_USER, and the user kept one
 * row more than the bound). SQLite has one writer: nothing to race. */
static void
concurrent_revocations(bool by_pid)
{
	const char *url = pg_url();
	struct auth_store_ops const *s = t.ctx->store;
	char sid[AUTH_SID_HEX], pid[AUTH_PID_HEX], err[256];
	char sa[AUTH_SID_HEX], pa[AUTH_PID_HEX], sb[AUTH_SID_HEX], pb[AUTH_PID_HEX];
	struct revoker b = { .rc = -2 };
	pthread_t th;
	int64_t mia = add("mia"), n = -1;

	if (url == NULL)
		cr_skip_test("PostgreSQL only: SQLite serialises writers");
	for (int i = 0; i < AUTH_REVOKED_PER_USER - 1; i++) {
		session_i(mia, i, sid, pid);
		cr_assert_eq(auth_revoke(t.ctx, mia, sid, NULL, 1001, err,
		    sizeof(err)), 1, "%s", err);
	}
	session_i(mia, 100, sa, pa);
	session_i(mia, 101, sb, pb);
	b.ctx = auth_open_store(&t.s, t.s.user_db, err, sizeof(err));
	cr_assert_not_null(b.ctx, "%s", err);
	b.uid = mia;
	b.sid = by_pid ? NULL : sb;
	b.pid = pb;
	cr_assert_eq(auth_store_begin(t.ctx), 0);
	cr_assert_eq(by_pid ? s->session_revoke_pid(t.ctx, pa, &n) :
	    s->session_revoke(t.ctx, mia, sa), 1, "%s", s->errmsg(t.ctx));
	cr_assert_eq(pthread_create(&th, NULL, revoker_main, &b), 0);
	/* until the second waits for the first, or has finished without */
	for (int i = 0; i < 2000 && !atomic_load(&b.done) &&
	    lock_waiters(url, PQbackendPID(t.ctx->pg->conn)) == 0; i++)
		usleep(5000);
	cr_assert_eq(s->revoked_count(t.ctx, mia, &n), 0);
	cr_expect_eq(n, AUTH_REVOKED_PER_USER, "the first counts its own row");
	cr_assert_eq(auth_bump_version(t.ctx), 0);
	cr_assert_eq(auth_store_commit(t.ctx), 0, "%s", s->errmsg(t.ctx));
	pthread_join(th, NULL);
	cr_expect_eq(b.rc, 1, "%s", b.err);
	cr_assert_eq(s->revoked_count(t.ctx, mia, &n), 0);
	cr_expect_eq(n, 0, "the second saw the first's row and bumped the epoch"
	    " (not %lld rows, over the bound)", (long long)n);
	cr_expect_eq(live_sessions(mia), 0);
	auth_close(b.ctx);
}

Test(store_ops, concurrent_revocations_keep_the_bound_by_sid, .timeout = 60)
{
	concurrent_revocations(false);
}

Test(store_ops, concurrent_revocations_keep_the_bound_by_pid, .timeout = 60)
{
	concurrent_revocations(true);
}

/* sql on the test's store, by a connection of its own for PostgreSQL. */
static void
store_exec(const char *sql)
{
	const char *url = getenv("PBXGATE_TEST_PG");
	char *q;

	if (url == NULL || *url == '\0') {
		cr_assert_eq(sqlite3_exec(t.ctx->db, sql, NULL, NULL, NULL),
		    SQLITE_OK, "%s", sqlite3_errmsg(t.ctx->db));
		return;
	}
	cr_assert_gt(asprintf(&q, "SET search_path = %s; %s", schema, sql), 0);
	pg_exec(url, q);
	free(q);
}

/* Both loads, one rule: a users table at its bound loads whole, one row
 * over it is refused (AUTH_STORE_OVER_CAP), never cut short, and the
 * reload puts empty tables in force (every cookie refused) rather than
 * keep the last ones, which would let the changes made since through. */
Test(store_ops, load_refuses_a_table_over_its_bound, .timeout = 120)
{
	struct auth_store_ops const *s = t.ctx->store;
	struct auth_mem_user *u = NULL;
	uint8_t (*rv)[16] = NULL;
	size_t nu = 0, nr = 0;
	char sql[256], err[512] = "";

	snprintf(sql, sizeof(sql), "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
	    " SELECT i + 1 FROM n WHERE i < %d) INSERT INTO users(name,"
	    " created, updated) SELECT 'u' || i, 0, 0 FROM n",
	    AUTH_STORE_USERS_MAX);
	store_exec(sql);
	cr_assert_eq(s->load(t.ctx, &u, &nu, &rv, &nr), 0, "%s",
	    s->errmsg(t.ctx));
	cr_expect_eq(nu, (size_t)AUTH_STORE_USERS_MAX);
	free(u);
	free(rv);
	/* user_add refuses it (below); a store an older pbxgate filled may
	 * still hold one more */
	store_exec("INSERT INTO users(name, created, updated) VALUES('one-more',"
	    " 0, 0)");
	u = NULL, rv = NULL;
	cr_expect_eq(s->load(t.ctx, &u, &nu, &rv, &nr), AUTH_STORE_OVER_CAP);
	cr_expect_null(u);
	cr_expect_null(rv);
	pthread_mutex_unlock(&t.ctx->db_mu);	/* the reload takes it */
	cr_expect_eq(auth_store_reload(t.ctx, true, err, sizeof(err)), -1);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_expect_not_null(strstr(err, ": cannot load users: more users or revoked"
	    " sessions than the in-memory tables hold (100000 users, "), "%s", err);
	/* closed, not frozen: no user known, so every cookie is refused */
	cr_expect_eq(auth_tables_version(t.ctx), AUTH_TABLES_CLOSED);
	cr_expect_eq(t.ctx->nusers, 0);
	cr_expect_eq(t.ctx->nrevoked, 0);
	/* back under the bound: the next reload, forced or not, opens them */
	store_exec("DELETE FROM users WHERE name = 'one-more'");
	pthread_mutex_unlock(&t.ctx->db_mu);
	cr_expect_eq(auth_store_reload(t.ctx, false, err, sizeof(err)), 0, "%s",
	    err);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_expect_eq(t.ctx->nusers, (size_t)AUTH_STORE_USERS_MAX);
	cr_expect_gt(auth_tables_version(t.ctx), 0);
}

/* user_add keeps a store within the load's bound: the last user that
 * fits is added, the next is AUTH_STORE_FULL with nothing written. */
Test(store_ops, user_add_stops_at_the_bound, .timeout = 120)
{
	struct auth_store_ops const *s = t.ctx->store;
	struct auth_user_new n = { .name = "past", .email = "", .groups = "",
	    .pw = "", .now = 1000 };
	int64_t uid = 0, v0, v1;
	char sql[256];

	snprintf(sql, sizeof(sql), "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
	    " SELECT i + 1 FROM n WHERE i < %d) INSERT INTO users(name,"
	    " created, updated) SELECT 'u' || i, 0, 0 FROM n",
	    AUTH_STORE_USERS_MAX - 1);
	store_exec(sql);
	cr_assert_gt(add("last"), 0);
	cr_assert_eq(s->version(t.ctx, &v0), 0);
	cr_expect_eq(s->user_add(t.ctx, &n, &uid), AUTH_STORE_FULL);
	cr_expect_eq(uid, 0);
	cr_assert_eq(s->version(t.ctx, &v1), 0);
	cr_expect_eq(v1, v0, "nothing written, so no version bump");
	cr_expect_eq(s->user_get(t.ctx, "past", 0, &(struct auth_user){ 0 }), 1);
	store_exec("DELETE FROM users WHERE name = 'u1'");
	cr_expect_gt(add("past"), 0);
}

/* A users result of `rows` rows, as AUTH_PG_USERS_SQL's columns. */
static PGresult *
users_result(int rows)
{
	PGresAttDesc att[7];
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	char id[24];

	memset(att, 0, sizeof(att));
	for (int i = 0; i < 7; i++)
		att[i].name = (char *)"c";
	cr_assert_not_null(r);
	cr_assert_eq(PQsetResultAttrs(r, 7, att), 1);
	for (int i = 0; i < rows; i++) {
		snprintf(id, sizeof(id), "%d", i + 1);
		cr_assert_eq(PQsetvalue(r, i, 0, id, (int)strlen(id)), 1);
		for (int col = 1; col < 7; col++)
			cr_assert_eq(PQsetvalue(r, i, col, (char *)"0", 1), 1);
	}
	return r;
}

/* PostgreSQL's loads read one row more than the bound and refuse it, as
 * SQLite's do: a table at the bound loads whole, one over it loads not
 * at all, never cut short (the query's LIMIT alone silently was). */
Test(store_ops, pg_load_refuses_a_table_over_its_bound)
{
	PGresult *r = users_result(AUTH_STORE_USERS_MAX);
	struct auth_mem_user *u = NULL;
	size_t n = 0;

	cr_expect_eq(auth_pg_users_decode(r, &u, &n), 0);
	cr_expect_eq(n, (size_t)AUTH_STORE_USERS_MAX);
	cr_expect_eq(u[AUTH_STORE_USERS_MAX - 1].id, AUTH_STORE_USERS_MAX);
	free(u);
	cr_assert_eq(PQsetvalue(r, AUTH_STORE_USERS_MAX, 0, (char *)"0", 1), 1);
	u = NULL;
	cr_expect_eq(auth_pg_users_decode(r, &u, &n), AUTH_STORE_OVER_CAP);
	cr_expect_null(u);
	cr_expect_eq(n, 0);
	PQclear(r);
	cr_expect_str_eq(strstr(AUTH_PG_USERS_SQL, "LIMIT"), "LIMIT $1::bigint");
	cr_expect_str_eq(strstr(AUTH_PG_REVOKED_SQL, "LIMIT"), "LIMIT $1::bigint");
}

Test(store_ops, epoch_bump_ends_listed_sessions)
{
	int64_t uid = add("ivy");
	struct auth_store_ops const *s = t.ctx->store;
	struct auth_session_new_row a = { .sid = "00112233445566778899aabbccddeeff",
	    .pid = "0011223344556677", .ip = "192.0.2.1", .uid = uid,
	    .created = 1000, .epoch = 1, .prune_before = 0, .level = 1 };
	int64_t v0, v1;

	cr_assert_eq(s->session_add(t.ctx, &a), 0, "%s", s->errmsg(t.ctx));
	cr_expect_eq(live_sessions(uid), 1);
	cr_assert_eq(s->version(t.ctx, &v0), 0);
	cr_assert_eq(s->bump_epoch(t.ctx, uid, 1001), 0);
	cr_assert_eq(s->version(t.ctx, &v1), 0);
	cr_expect_gt(v1, v0, "tables follow the version");
	cr_expect_eq(live_sessions(uid), 0);
}

/* The /metrics gauges: bans by kind, live sessions (revoked and aged ones
 * out), enrolment links until they are used or expire. */
Test(store_ops, counts_follow_bans_sessions_and_enrolments)
{
	int64_t uid = add("jane");
	struct auth_store_ops const *s = t.ctx->store;
	struct auth_reg_row ban = { 5, 10, 20, 500 };
	struct auth_session_new_row a = { .sid = "00112233445566778899aabbccddeeff",
	    .pid = "0011223344556677", .ip = "192.0.2.1", .uid = uid,
	    .created = 1000, .epoch = 0, .prune_before = 0, .level = 1 };
	long long g[AUTH_GAUGES];

	cr_assert_eq(s->reg_put(t.ctx, "u:jane", &ban), 0);
	cr_assert_eq(s->reg_put(t.ctx, "a:192.0.2.7", &ban), 0);
	cr_assert_eq(s->reg_put(t.ctx, "a:192.0.2.8", &ban), 0);
	cr_assert_eq(s->session_add(t.ctx, &a), 0, "%s", s->errmsg(t.ctx));
	cr_assert_eq(s->enrol_add(t.ctx, "e1", uid, 1100), 0);
	cr_assert_eq(s->counts(t.ctx, 400, 3600, g), 0);
	cr_expect_eq(g[AUTH_GAUGE_BANS_NAME], 1);
	cr_expect_eq(g[AUTH_GAUGE_BANS_ADDRESS], 2);
	cr_expect_eq(g[AUTH_GAUGE_SESSIONS], 1);
	cr_expect_eq(g[AUTH_GAUGE_ENROLMENTS], 1);
	cr_assert_eq(s->counts(t.ctx, 1200, 3600, g), 0);
	cr_expect_eq(g[AUTH_GAUGE_BANS_NAME], 0, "ban over");
	cr_expect_eq(g[AUTH_GAUGE_BANS_ADDRESS], 0);
	cr_expect_eq(g[AUTH_GAUGE_SESSIONS], 1);
	cr_expect_eq(g[AUTH_GAUGE_ENROLMENTS], 0, "link expired");
	cr_assert_eq(s->counts(t.ctx, 4601, 3600, g), 0);
	cr_expect_eq(g[AUTH_GAUGE_SESSIONS], 0, "past session_max");
}

struct racer {
	struct auth_ctx *ctx;
	int64_t uid;
	int won[50];
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	pthread_mutex_lock(&r->ctx->db_mu);
	for (int i = 0; i < 50; i++)
		r->won[i] = r->ctx->store->totp_advance(r->ctx, r->uid, 100 + i);
	pthread_mutex_unlock(&r->ctx->db_mu);
	return NULL;
}

/* Two gateways on one store (two contexts, two connections), each trying
 * every step: each step is taken exactly once, never by both. */
Test(store_ops, totp_step_taken_once_across_two_connections)
{
	int64_t uid = add("kim");
	char err[512] = "";
	struct auth_ctx *b = auth_open(&t.s, NULL, NULL, err, sizeof(err));
	struct racer ra = { .ctx = t.ctx, .uid = uid }, rb = { .uid = uid };
	pthread_t ta, tb;

	cr_assert_not_null(b, "%s", err);
	rb.ctx = b;
	pthread_mutex_unlock(&t.ctx->db_mu);	/* race() takes it */
	cr_assert_eq(pthread_create(&ta, NULL, race, &ra), 0);
	cr_assert_eq(pthread_create(&tb, NULL, race, &rb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_mutex_lock(&t.ctx->db_mu);
	for (int i = 0; i < 50; i++) {
		cr_expect(ra.won[i] >= 0 && rb.won[i] >= 0, "step %d: error", i);
		cr_expect_eq(ra.won[i] + rb.won[i], 1, "step %d taken %d times", i,
		    ra.won[i] + rb.won[i]);
	}
	auth_close(b);
}

static void
expect_reopen_fails(const char *sql, const char *needle)
{
	char q[256], err[512] = "";
	struct auth_ctx *c;

	snprintf(q, sizeof(q), "SET search_path = %s; %s", schema, sql);
	pg_exec(pg_url(), q);
	c = auth_open(&t.s, NULL, NULL, err, sizeof(err));
	cr_expect_null(c);
	cr_expect(strstr(err, needle) != NULL, "error was: %s", err);
	auth_close(c);
}

/* As for SQLite: a store a newer pbxgate migrated is refused. */
Test(store_ops, pg_newer_schema_refused)
{
	if (pg_url() == NULL)
		cr_skip_test("PostgreSQL only (PBXGATE_TEST_PG)");
	expect_reopen_fails("UPDATE meta SET v = 99 WHERE k = 'schema'",
	    "newer than this pbxgate");
}

Test(store_ops, pg_foreign_tables_refused)
{
	if (pg_url() == NULL)
		cr_skip_test("PostgreSQL only (PBXGATE_TEST_PG)");
	expect_reopen_fails("DELETE FROM meta WHERE k = 'application_id'",
	    "not a pbxgate user store");
}

/* ---- the store's identity (schema 4 / PostgreSQL 2) ---- */

/* Read once at open; store_id_put (the copy's) replaces it for good. */
Test(store_ops, store_id_read_at_open_and_put_replaces_it)
{
	struct auth_ctx *c;
	char err[512];
	int64_t id = 0;

	cr_assert_eq(t.ctx->store->store_id(t.ctx, &id), 0);
	cr_expect_neq(id, 0);
	cr_expect_eq(id, t.ctx->store_id);
	cr_assert_eq(t.ctx->store->store_id_put(t.ctx, id ^ 0x5a5a), 0);
	c = auth_open(&t.s, NULL, NULL, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect_eq(c->store_id, id ^ 0x5a5a);
	auth_close(c);
}

static int64_t
pg_int(const char *sql)
{
	char q[256];
	PGconn *db = PQconnectdb(pg_url());
	PGresult *r;
	int64_t v = -1;

	cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
	snprintf(q, sizeof(q), "SET search_path = %s", schema);
	PQclear(PQexec(db, q));
	r = PQexec(db, sql);
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s",
	    PQresultErrorMessage(r));
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(db);
	return v;
}

/* A store of schema 1 (before the identity) gets a new one when opened,
 * and its schema goes to 2. */
Test(store_ops, pg_schema_1_store_gets_identity_on_open)
{
	struct auth_ctx *c;
	char q[256], err[512];
	int64_t old = t.ctx->store_id;

	if (pg_url() == NULL)
		cr_skip_test("PostgreSQL only (PBXGATE_TEST_PG)");
	cr_expect_eq(pg_int("SELECT v FROM meta WHERE k = 'schema'"), 2);
	cr_expect_eq(pg_int("SELECT v FROM meta WHERE k = 'store_id'"), old);
	snprintf(q, sizeof(q), "SET search_path = %s; DELETE FROM meta WHERE"
	    " k = 'store_id'; UPDATE meta SET v = 1 WHERE k = 'schema'", schema);
	pg_exec(pg_url(), q);
	c = auth_open(&t.s, NULL, NULL, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect_eq(pg_int("SELECT v FROM meta WHERE k = 'schema'"), 2);
	cr_expect_eq(pg_int("SELECT v FROM meta WHERE k = 'store_id'"),
	    c->store_id);
	cr_expect_neq(c->store_id, old, "a new identity, not a default");
	auth_close(c);
}

/* Only a migration makes one: a current store without it is refused. */
Test(store_ops, pg_store_without_identity_refused)
{
	if (pg_url() == NULL)
		cr_skip_test("PostgreSQL only (PBXGATE_TEST_PG)");
	expect_reopen_fails("DELETE FROM meta WHERE k = 'store_id'",
	    "the store has no identity (meta 'store_id')");
}

/* ---- copying (`user migrate`): rows read and put verbatim ---- */

static const uint8_t sealed[48] = { 1, 2, 3, 0, 5 };	/* a NUL inside */

#define I(v)	{ .i = (v) }
#define T(v)	{ .t = (v) }
#define NUL	{ .null = true }

/* One row per table, as a store holds them, ids chosen by the copy. */
static const struct auth_val rows[AUTH_TBL_COUNT][AUTH_TBL_COLS_MAX] = {
	[AUTH_TBL_USERS] = { I(41), T("lena"), T("l@example.org"), I(1),
	    T("ops"), T("$argon2id$x"), { .b = sealed, .n = sizeof(sealed) },
	    I(7), I(55555), T("192.0.2.0/24"), I(0), I(3), I(1000), I(1001) },
	[AUTH_TBL_RECOVERY] = { I(41), T("rhash"), I(1) },
	[AUTH_TBL_ENROL] = { T("ehash"), I(41), I(2000), I(0), NUL, I(0) },
	[AUTH_TBL_MFA_PENDING] = { T("nonce"), I(41), I(1300) },
	[AUTH_TBL_SESSIONS] = { T("00112233445566778899aabbccddeeff"), I(41),
	    I(1000), T("192.0.2.1"), I(2), I(1), NUL, I(3) },
	[AUTH_TBL_LOGINS] = { I(7), I(41), I(1000), T("192.0.2.1"), I(1) },
	[AUTH_TBL_REGULATE] = { T("a:192.0.2.9"), I(5), I(10), I(20), I(500) },
};

static void
put_all(void)
{
	for (int i = 0; i < AUTH_TBL_COUNT; i++)
		cr_assert_eq(t.ctx->store->row_put(t.ctx, (enum auth_tbl)i, rows[i]),
		    0, "%s: %s", auth_tbls[i].name, t.ctx->store->errmsg(t.ctx));
}

struct seen {
	enum auth_tbl tbl;
	int n;
};

static int
same_row(void *arg, const struct auth_val *got)
{
	struct seen *s = arg;
	const struct auth_val *want = rows[s->tbl];
	const char *types = auth_tbls[s->tbl].types;

	for (int i = 0; types[i] != '\0'; i++) {
		cr_expect_eq(got[i].null, want[i].null, "%s col %d null",
		    auth_tbls[s->tbl].name, i + 1);
		if (want[i].null)
			continue;
		if (types[i] == 'i')
			cr_expect_eq(got[i].i, want[i].i, "%s col %d",
			    auth_tbls[s->tbl].name, i + 1);
		else if (types[i] == 't')
			cr_expect_str_eq(got[i].t, want[i].t);
		else {
			cr_assert_eq(got[i].n, want[i].n);
			cr_expect_eq(memcmp(got[i].b, want[i].b, want[i].n), 0);
		}
	}
	s->n++;
	return 0;
}

/* Each column named once with its type: a type string out of step with
 * the names would copy a text as a number. */
Test(store_ops, copy_tables_type_every_column)
{
	for (int i = 0; i < AUTH_TBL_COUNT; i++) {
		const struct auth_tbl_def *d = &auth_tbls[i];
		size_t ncols = 1;

		for (const char *p = d->cols; *p != '\0'; p++)
			ncols += *p == ',';
		cr_expect_eq(ncols, strlen(d->types), "%s", d->name);
		cr_expect_leq(ncols, AUTH_TBL_COLS_MAX, "%s", d->name);
		cr_expect_eq(strspn(d->types, "itb"), strlen(d->types), "%s", d->name);
	}
	cr_expect_str_eq(auth_tbls[AUTH_TBL_USERS].types, "ittittbiitiiii");
}

Test(store_ops, rows_put_and_read_back_verbatim)
{
	struct auth_user u;
	int64_t n;

	put_all();
	for (int i = 0; i < AUTH_TBL_COUNT; i++) {
		struct seen s = { .tbl = (enum auth_tbl)i };

		cr_assert_eq(t.ctx->store->row_each(t.ctx, s.tbl, same_row, &s), 0,
		    "%s", t.ctx->store->errmsg(t.ctx));
		cr_expect_eq(s.n, 1, "%s", auth_tbls[i].name);
		cr_assert_eq(t.ctx->store->row_count(t.ctx, s.tbl, &n), 0);
		cr_expect_eq(n, 1, "%s", auth_tbls[i].name);
	}
	/* what the login code reads of the copied user */
	cr_assert_eq(t.ctx->store->user_get(t.ctx, "lena", 0, &u), 0);
	cr_expect_eq(u.id, 41);
	cr_expect_str_eq(u.email, "l@example.org");
	cr_expect(u.admin);
	cr_expect_str_eq(u.groups, "ops");
	cr_expect_str_eq(u.pw, "$argon2id$x");
	cr_expect_str_eq(u.lockdown, "192.0.2.0/24");
	cr_expect_not(u.disabled);
	cr_expect_eq(u.created, 1000);
	cr_expect(u.has_totp);
	cr_expect_eq(memcmp(u.totp_sealed, sealed, sizeof(sealed)), 0);
	cr_expect_eq(u.totp_kid, 7);
	cr_expect_eq(u.totp_last, 55555);
	cr_expect_eq(u.epoch, 3);
}

static int
max_login_id(void *arg, const struct auth_val *row)
{
	int64_t *max = arg;

	if (row[0].i > *max)
		*max = row[0].i;
	return 0;
}

/* After copy_done, new users and sign-in rows take ids past the copied
 * ones (PostgreSQL's sequences do not move by themselves). */
Test(store_ops, copy_done_moves_ids_past_the_copied)
{
	int64_t v0, v1, max = 0;

	put_all();
	cr_assert_eq(t.ctx->store->version(t.ctx, &v0), 0);
	cr_assert_eq(t.ctx->store->copy_done(t.ctx), 0, "%s",
	    t.ctx->store->errmsg(t.ctx));
	cr_assert_eq(t.ctx->store->version(t.ctx, &v1), 0);
	cr_expect_gt(v1, v0, "gateways reload after a copy");
	cr_expect_eq(add("mona"), 42);
	cr_assert_eq(t.ctx->store->login_add(t.ctx, 41, 1100, "192.0.2.2", true),
	    0, "%s", t.ctx->store->errmsg(t.ctx));
	cr_assert_eq(t.ctx->store->row_each(t.ctx, AUTH_TBL_LOGINS, max_login_id,
	    &max), 0);
	cr_expect_eq(max, 8);
}

static int
stop_at_first(void *arg, const struct auth_val *row)
{
	(void)row;
	(*(int *)arg)++;
	return -1;
}

Test(store_ops, row_each_stops_when_the_callback_fails)
{
	int n = 0;

	add("nina");
	add("olga");
	cr_expect_eq(t.ctx->store->row_each(t.ctx, AUTH_TBL_USERS, stop_at_first,
	    &n), -1);
	cr_expect_eq(n, 1);
	add("paula");	/* the store is usable after the stopped read */
}

/* A put the target refuses (a recovery code of no user) fails the put;
 * rolling back the copy's transaction leaves the target empty. */
Test(store_ops, copy_rolled_back_leaves_nothing)
{
	static const struct auth_val orphan[] = { I(99), T("h"), I(0) };
	int64_t n = -1;

	cr_assert_eq(t.ctx->store->copy_begin(t.ctx, true), 0, "%s",
	    t.ctx->store->errmsg(t.ctx));
	cr_assert_eq(t.ctx->store->row_put(t.ctx, AUTH_TBL_USERS,
	    rows[AUTH_TBL_USERS]), 0);
	cr_expect_eq(t.ctx->store->row_put(t.ctx, AUTH_TBL_RECOVERY, orphan), -1);
	t.ctx->store->rollback(t.ctx);
	cr_assert_eq(t.ctx->store->row_count(t.ctx, AUTH_TBL_USERS, &n), 0);
	cr_expect_eq(n, 0);
}

/* The source's lock is a read: it reads what is there and ends cleanly. */
Test(store_ops, copy_begin_source_reads)
{
	int64_t n = -1;

	add("quinn");
	cr_assert_eq(t.ctx->store->copy_begin(t.ctx, false), 0, "%s",
	    t.ctx->store->errmsg(t.ctx));
	cr_assert_eq(t.ctx->store->row_count(t.ctx, AUTH_TBL_USERS, &n), 0);
	cr_expect_eq(n, 1);
	t.ctx->store->rollback(t.ctx);
}

/* Another writer's attempt while the copy holds the source: refused at
 * once (no wait), and a read still answers. 1 written, 0 refused. */
static int
other_writer(void)
{
	int written;

	if (pg_url() != NULL) {
		PGconn *db = PQconnectdb(t.ctx->s.user_db);
		PGresult *r;

		cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
		PQclear(PQexec(db, "SET lock_timeout = '100ms'"));
		r = PQexec(db, "SELECT count(*) FROM users");
		cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "a read waits");
		PQclear(r);
		r = PQexec(db, "INSERT INTO regulate VALUES('u:x', 1, 1, 1, 0)");
		written = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		PQfinish(db);
		return written;
	}
	sqlite3 *db;

	cr_assert_eq(sqlite3_open_v2(t.ctx->s.user_db, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	cr_expect_eq(sqlite3_exec(db, "SELECT count(*) FROM users", NULL, NULL,
	    NULL), SQLITE_OK, "a read waits");
	written = sqlite3_exec(db, "INSERT INTO regulate VALUES('u:x', 1, 1, 1, 0)",
	    NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(db);
	return written;
}

/* The source cannot change during a copy: a gateway's write waits for the
 * copy's end (here refused at once), and is accepted after it. */
Test(store_ops, copy_begin_source_keeps_writers_out)
{
	add("rita");
	cr_assert_eq(t.ctx->store->copy_begin(t.ctx, false), 0, "%s",
	    t.ctx->store->errmsg(t.ctx));
	cr_expect_eq(other_writer(), 0, "written during the copy");
	t.ctx->store->rollback(t.ctx);
	cr_expect_eq(other_writer(), 1, "refused after the copy");
}

/* ---- the copy's table list against the store's real schema ---- */

/* "name:col,col,..." of each table the store holds, sorted by name: what
 * `user migrate` must copy (all but meta). A table or column added to a
 * schema and not to auth_tbls would be left behind without a word. */
static size_t
schema_tables(char out[][512], size_t max)
{
	size_t n = 0;

	if (pg_url() != NULL) {
		char sql[512];
		PGconn *db = PQconnectdb(pg_url());
		PGresult *r;

		cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
		snprintf(sql, sizeof(sql), "SELECT table_name || ':' ||"
		    " string_agg(column_name, ',' ORDER BY ordinal_position)"
		    " FROM information_schema.columns WHERE table_schema = '%s'"
		    " GROUP BY table_name ORDER BY table_name", schema);
		r = PQexec(db, sql);
		cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s",
		    PQresultErrorMessage(r));
		for (int i = 0; i < PQntuples(r) && n < max; i++)
			snprintf(out[n++], 512, "%s", PQgetvalue(r, i, 0));
		PQclear(r);
		PQfinish(db);
		return n;
	}
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s/users.db", t.dir);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT m.name || ':' ||"
	    " group_concat(p.name, ',') FROM sqlite_schema m,"
	    " pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name"
	    " NOT LIKE 'sqlite\\_%' ESCAPE '\\' GROUP BY m.name ORDER BY m.name",
	    -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW && n < max)
		snprintf(out[n++], 512, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

Test(store_ops, copy_tables_are_every_table_of_the_store)
{
	char got[AUTH_TBL_COUNT + 8][512], want[512];
	size_t n = schema_tables(got, AUTH_TBL_COUNT + 8), seen = 0;

	for (size_t i = 0; i < n; i++) {
		bool found = strncmp(got[i], "meta:", 5) == 0;

		for (int k = 0; k < AUTH_TBL_COUNT && !found; k++) {
			size_t w = (size_t)snprintf(want, sizeof(want), "%s:",
			    auth_tbls[k].name);
			for (const char *p = auth_tbls[k].cols; *p != '\0' &&
			    w + 1 < sizeof(want); p++)
				if (*p != ' ')
					want[w++] = *p;
			want[w] = '\0';
			if (strncmp(got[i], want, strlen(auth_tbls[k].name) + 1) != 0)
				continue;
			cr_expect_str_eq(got[i], want, "columns of %s",
			    auth_tbls[k].name);
			found = true;
			seen++;
		}
		cr_expect(found, "table not in auth_tbls (user migrate would"
		    " leave it behind): %s", got[i]);
	}
	cr_expect_eq(seen, (size_t)AUTH_TBL_COUNT, "auth_tbls names a table the"
	    " store does not have");
}

/* ---- the change listener's stop in two steps (auth_store_pg_live.c) ---- */

/* What the listener posted, kept to be run by the test as a loop would. */
struct posts {
	pthread_mutex_t mu;
	size_t          n;
	auth_task_fn    fn[64];
	void           *arg[64];
};

static int
keep_post(void *post_arg, auth_task_fn fn, void *arg)
{
	struct posts *p = post_arg;
	int rc = -1;

	pthread_mutex_lock(&p->mu);
	if (p->n < 64) {
		p->fn[p->n] = fn;
		p->arg[p->n++] = arg;
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ask returns at once; stopped turns true once the thread ended (polled,
 * bounded); nothing is posted after it, and the join is then immediate.
 * Without a listener (SQLite) stopped is true from the start. */
Test(store_ops, listener_ask_stop_then_stopped)
{
	struct posts p = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct timespec ms = { 0, 1000000 };
	struct auth_live_info li;
	struct auth_ctx *c;
	char err[512];
	long long t0;
	size_t n;
	int i;

	c = auth_open(&t.s, NULL, NULL, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(auth_live_start(c, keep_post, &p, err, sizeof(err)), 0,
	    "%s", err);
	if (pg_url() == NULL) {
		cr_expect(auth_live_stopped(c), "no listener with SQLite");
		auth_live_ask_stop(c);
		auth_close(c);
		return;
	}
	cr_expect_not(auth_live_stopped(c));
	/* the first read is handed over (posted) before the ask */
	for (i = 0; i < 5000 && (auth_live_info(c, &li), li.reloads == 0); i++)
		nanosleep(&ms, NULL);
	t0 = mono_ms();
	auth_live_ask_stop(c);
	auth_live_ask_stop(c);		/* idempotent */
	cr_expect_lt(mono_ms() - t0, 100, "ask waited");
	for (i = 0; i < 5000 && !auth_live_stopped(c); i++)
		nanosleep(&ms, NULL);
	cr_assert(auth_live_stopped(c), "listener not ended within 5 s");
	pthread_mutex_lock(&p.mu);
	n = p.n;
	pthread_mutex_unlock(&p.mu);
	cr_expect_geq(n, 1, "the first read was posted");
	t0 = mono_ms();
	auth_live_stop(c);
	cr_expect_lt(mono_ms() - t0, 100, "the join of an ended thread waited");
	cr_expect_eq(p.n, n, "posted after it ended");
	for (size_t k = 0; k < n; k++)	/* as the loop would, before close */
		p.fn[k](p.arg[k]);
	auth_close(c);
}
