/* test_store.c -- settings keywords, store identity checks, key file, kill -9 durability. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* ---- settings ---- */

struct kw_case {
	const char *kw;
	const char *v[3];
	int argc, want, badarg;
};

static const struct kw_case kw_cases[] = {
	{ "argon2", { "m=65536", "t=3", "p=4" }, 3, 0, 0 },
	{ "argon2", { "m=65536", "t=0" }, 2, -1, 1 },
	{ "argon2", { "x=1" }, 1, -1, 0 },
	{ "argon2", { "m=4" }, 1, -1, 0 },
	{ "totp_skew", { "0" }, 1, 0, 0 },
	{ "totp_skew", { "4" }, 1, -1, 0 },
	{ "totp_skew", { "1", "2" }, 2, -1, 1 },
	{ "session_idle_timeout", { "30m" }, 1, 0, 0 },
	{ "session_idle_timeout", { "10x" }, 1, -1, 0 },
	{ "session_idle_timeout", { "-5" }, 1, -1, 0 },
	{ "session_max_lifetime", { "12h" }, 1, 0, 0 },
	{ "login_max_failures", { "5" }, 1, 0, 0 },
	{ "login_failure_window", { "10m" }, 1, 0, 0 },
	{ "login_ban_time", { "900" }, 1, 0, 0 },
	{ "login_threads", { "0" }, 1, -1, 0 },
	{ "login_queue", { "64" }, 1, 0, 0 },
	{ "enrol_link_lifetime", { "2d" }, 1, 0, 0 },
	{ "public_url", { "https://pbx.example.com" }, 1, 0, 0 },
	{ "public_url", { "http://pbx.example.com" }, 1, -1, 0 },
	{ "public_url", { "https://user@pbx.example.com" }, 1, -1, 0 },
	{ "user_db", { "users.db" }, 1, 0, 0 },
	/* PostgreSQL: never a password in the URL, always a verified server
	 * unless the only hosts are local sockets */
	{ "user_db", { "postgresql://gw@db.example.com/pbxgate" }, 1, 0, 0 },
	{ "user_db", { "postgres:///pbxgate?host=/run/postgresql" }, 1, 0, 0 },
	{ "user_db", { "postgresql:///pbxgate?host=/run/postgresql&sslmode=disable" },
	    1, 0, 0 },
	{ "user_db", { "postgresql://gw:hunter2@db.example.com/pbxgate" }, 1, -1, 0 },
	{ "user_db", { "postgresql://gw@db.example.com/pbxgate?password=hunter2" },
	    1, -1, 0 },
	{ "user_db", { "postgresql://db.example.com/pbxgate?sslmode=require" },
	    1, -1, 0 },
	{ "user_db", { "postgresql://db.example.com/pbxgate?sslmode=disable" },
	    1, -1, 0 },
	{ "user_db", { "postgresql:///pbxgate?host=/run/postgresql&hostaddr=192.0.2.1"
	    "&sslmode=prefer" }, 1, -1, 0 },
	{ "user_db", { "postgresql://[bad" }, 1, -1, 0 },
	{ "user_db_password_file", { "/nonexistent/pw" }, 1, -1, 0 },
	{ "user_db_pool", { "1" }, 1, 0, 0 },
	{ "user_db_pool", { "32" }, 1, 0, 0 },
	{ "user_db_pool", { "0" }, 1, -1, 0 },
	{ "user_db_pool", { "33" }, 1, -1, 0 },
	{ "user_db_pool", { "two" }, 1, -1, 0 },
	{ "user_db_pool", { "2", "3" }, 2, -1, 1 },
	{ "listen", { "0.0.0.0:443" }, 1, 1, 0 },
};

Test(settings, keyword_table)
{
	for (size_t i = 0; i < sizeof(kw_cases) / sizeof(kw_cases[0]); i++) {
		const struct kw_case *k = &kw_cases[i];
		struct auth_settings s;
		char err[256] = "";
		int bad = -9;

		auth_settings_defaults(&s);
		int r = pol_kw_run(&auth_kwtab, &s, "/etc/pbxgate", k->kw, k->argc,
		    (char **)k->v, &bad, err, sizeof(err));
		cr_expect_eq(r, k->want, "%s %s: %d (%s)", k->kw, k->v[0], r, err);
		if (k->want < 0)
			cr_expect_eq(bad, k->badarg, "%s %s: badarg %d", k->kw, k->v[0], bad);
		auth_settings_free(&s);
	}
}

Test(settings, relative_paths_and_derived_key)
{
	struct auth_settings s;
	char err[256];
	int bad;
	char *v[] = { "db/users.db" };

	auth_settings_defaults(&s);
	cr_assert_eq(pol_kw_run(&auth_kwtab, &s, "/etc/pbxgate", "user_db", 1, v, &bad, err,
	    sizeof(err)), 0);
	cr_expect_str_eq(s.user_db, "/etc/pbxgate/db/users.db");
	cr_assert_eq(auth_settings_finish(&s, err, sizeof(err)), 0);
	cr_expect_str_eq(s.secret_key, "/etc/pbxgate/db/pbxgate-secret.key");
	cr_expect_str_eq(s.cookie_name, "__Host-pbxgate");
	auth_settings_free(&s);
}

Test(settings, idle_longer_than_lifetime_refused)
{
	struct auth_settings s;
	char err[256];
	int bad;
	char *db[] = { "u.db" }, *idle[] = { "2d" }, *max[] = { "1d" };

	auth_settings_defaults(&s);
	pol_kw_run(&auth_kwtab, &s, "/x", "user_db", 1, db, &bad, err, sizeof(err));
	pol_kw_run(&auth_kwtab, &s, "/x", "session_idle_timeout", 1, idle, &bad, err, sizeof(err));
	pol_kw_run(&auth_kwtab, &s, "/x", "session_max_lifetime", 1, max, &bad, err, sizeof(err));
	cr_expect_eq(auth_settings_finish(&s, err, sizeof(err)), -1);
	auth_settings_free(&s);
}

static int
finish_with(const char *db, const char *key, const char *pwfile, char *err,
    size_t errlen)
{
	struct auth_settings s;
	char *v[1];
	int bad, r;

	auth_settings_defaults(&s);
	v[0] = (char *)db;
	cr_assert_eq(pol_kw_run(&auth_kwtab, &s, "/x", "user_db", 1, v, &bad, err,
	    errlen), 0, "%s", err);
	if (key != NULL)
		s.secret_key = strdup(key);
	if (pwfile != NULL)
		s.user_db_password_file = strdup(pwfile);
	r = auth_settings_finish(&s, err, errlen);
	auth_settings_free(&s);
	return r;
}

/* No directory to derive the key's place from, and it must be the same
 * on every gateway sharing the store: secret_key is required. */
Test(settings, postgresql_needs_secret_key)
{
	char err[256] = "";

	cr_expect_eq(finish_with("postgresql:///p?host=/run/postgresql", NULL,
	    NULL, err, sizeof(err)), -1);
	cr_expect(strstr(err, "set secret_key FILE") != NULL, "%s", err);
	cr_expect_eq(finish_with("postgresql:///p?host=/run/postgresql",
	    "/tmp/k", NULL, err, sizeof(err)), 0, "%s", err);
}

Test(settings, password_file_needs_postgresql)
{
	char err[256] = "";

	cr_expect_eq(finish_with("u.db", NULL, "/tmp/pw", err, sizeof(err)), -1);
	cr_expect(strstr(err, "not a postgresql:// URL") != NULL, "%s", err);
}

static int
finish_pool(const char *db, const char *pool, unsigned *out, char *err,
    size_t errlen)
{
	struct auth_settings s;
	char *v[1];
	int bad, r;

	auth_settings_defaults(&s);
	v[0] = (char *)db;
	if (db != NULL) {
		cr_assert_eq(pol_kw_run(&auth_kwtab, &s, "/x", "user_db", 1, v,
		    &bad, err, errlen), 0, "%s", err);
		s.secret_key = strdup("/tmp/k");
	}
	v[0] = (char *)pool;
	if (pool != NULL)
		cr_assert_eq(pol_kw_run(&auth_kwtab, &s, "/x", "user_db_pool", 1,
		    v, &bad, err, errlen), 0, "%s", err);
	r = auth_settings_finish(&s, err, errlen);
	*out = s.user_db_pool;
	auth_settings_free(&s);
	return r;
}

/* One SQLite connection is all a SQLite store has: a pool there is a
 * mistake, said at once; PostgreSQL defaults to 2. */
Test(settings, pool_needs_postgresql_and_defaults_to_2)
{
	char err[256] = "";
	unsigned n = 0;

	cr_expect_eq(finish_pool("u.db", "4", &n, err, sizeof(err)), -1);
	cr_expect(strstr(err, "user_db_pool is set but user_db is not a "
	    "postgresql:// URL") != NULL, "%s", err);
	cr_expect_eq(finish_pool(NULL, "4", &n, err, sizeof(err)), -1);
	cr_expect(strstr(err, "user_db_pool is set but user_db is not") != NULL,
	    "%s", err);
	cr_expect_eq(finish_pool("postgresql:///p?host=/run/postgresql", NULL, &n,
	    err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, 2);
	cr_expect_eq(finish_pool("postgresql:///p?host=/run/postgresql", "5", &n,
	    err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, 5);
}

/* The keyword's result for a password file holding the n bytes of
 * `text` with `mode`. */
static int
password_file_kw_n(const char *text, size_t n, mode_t mode, char *err,
    size_t errlen)
{
	struct auth_settings s;
	char path[] = "/tmp/pbxgate-pw-XXXXXX", *v[] = { path };
	int fd = mkstemp(path), bad, r;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, n), (ssize_t)n);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
	auth_settings_defaults(&s);
	r = pol_kw_run(&auth_kwtab, &s, "/x", "user_db_password_file", 1, v,
	    &bad, err, errlen);
	if (r == 0)
		cr_expect_str_eq(s.user_db_password_file, path);
	auth_settings_free(&s);
	unlink(path);
	return r;
}

static int
password_file_kw(const char *text, mode_t mode, char *err, size_t errlen)
{
	return password_file_kw_n(text, strlen(text), mode, err, errlen);
}

Test(settings, password_file_read_at_its_keyword)
{
	char err[256] = "";

	cr_expect_eq(password_file_kw("pw\n", 0600, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(password_file_kw("pw", 0400, err, sizeof(err)), 0, "%s", err);
}

/* Like libpq's ~/.pgpass: nothing for the group or others. */
Test(settings, password_file_others_can_read_refused)
{
	static const mode_t modes[] = { 0640, 0604, 0620, 0602, 0610, 0601 };
	char err[256], want[64];

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(password_file_kw("hunter2\n", modes[i], err,
		    sizeof(err)), -1, "mode %04o", (unsigned)modes[i]);
		snprintf(want, sizeof(want), ": mode %04o: the password file must",
		    (unsigned)modes[i]);
		cr_expect(strstr(err, want) != NULL, "%s", err);
		cr_expect(strstr(err, "hunter2") == NULL, "%s", err);
	}
}

Test(settings, password_file_empty_or_too_long_refused)
{
	static const char *const texts[] = { "", "\n", "\r\n" };
	char err[256], big[AUTH_PG_PASSWORD_MAX + 1];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(password_file_kw(texts[i], 0600, err, sizeof(err)),
		    -1, "text %zu", i);
		cr_expect(strstr(err, "must hold one line of 1 to 1022 bytes")
		    != NULL, "%s", err);
	}
	memset(big, 'x', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	cr_expect_eq(password_file_kw(big, 0600, err, sizeof(err)), -1);
	cr_expect(strstr(err, "must hold one line") != NULL, "%s", err);
	/* the longest allowed: 1022 bytes and its newline */
	big[AUTH_PG_PASSWORD_MAX - 2] = '\n';
	big[AUTH_PG_PASSWORD_MAX - 1] = '\0';
	cr_expect_eq(password_file_kw(big, 0600, err, sizeof(err)), 0, "%s", err);
}

/* libpq takes a C string: a NUL would cut the password short silently. */
Test(settings, password_file_nul_byte_refused)
{
	char err[256] = "";

	cr_expect_eq(password_file_kw_n("pw\0rest\n", 8, 0600, err,
	    sizeof(err)), -1);
	cr_expect(strstr(err, "must hold one line") != NULL, "%s", err);
}

/* ---- store identity ---- */

static void
write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static void
expect_open_fails(struct th *t, const char *needle)
{
	char err[512] = "";
	struct auth_ctx *c = auth_open(&t->s, NULL, NULL, err, sizeof(err));

	cr_expect_null(c);
	cr_expect(strstr(err, needle) != NULL, "error was: %s", err);
	auth_close(c);
}

Test(store, not_a_database_refused)
{
	struct th t;

	th_init(&t);
	write_file(t.s.user_db, "hello, this is not sqlite at all.........", 41);
	expect_open_fails(&t, "not a readable SQLite database");
	th_fini(&t);
}

Test(store, foreign_database_refused)
{
	struct th t;
	sqlite3 *db;

	th_init(&t);
	cr_assert_eq(sqlite3_open(t.s.user_db, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "CREATE TABLE x(a)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_open_fails(&t, "not a pbxgate user store");
	th_fini(&t);
}

Test(store, newer_schema_refused)
{
	struct th t;
	sqlite3 *db;

	th_init(&t);
	th_open(&t);
	th_close(&t);
	cr_assert_eq(sqlite3_open(t.s.user_db, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_open_fails(&t, "newer than this pbxgate");
	th_fini(&t);
}

static int64_t
sq_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Changes the store behind pbxgate's back, as a hand edit would. */
static void
sq_run(const char *path, const char *sql)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* Schema 4 gave every store an identity: a store of schema 3 (none) gets
 * one when opened, a new one, and keeps it from then on. */
Test(store, schema_3_store_gets_identity_on_open)
{
	struct th t;
	int64_t old;

	th_init(&t);
	th_open(&t);
	old = t.ctx->store_id;
	th_close(&t);
	cr_expect_eq(sq_int(t.s.user_db, "PRAGMA user_version"), 4);
	cr_expect_eq(sq_int(t.s.user_db, "SELECT v FROM meta WHERE k ="
	    " 'store_id'"), old);
	sq_run(t.s.user_db, "DELETE FROM meta WHERE k = 'store_id';"
	    "PRAGMA user_version=3");
	cr_assert_eq(sq_int(t.s.user_db, "SELECT count(*) FROM meta WHERE k ="
	    " 'store_id'"), 0);
	th_open(&t);
	cr_expect_eq(sq_int(t.s.user_db, "PRAGMA user_version"), 4);
	cr_expect_eq(sq_int(t.s.user_db, "SELECT v FROM meta WHERE k ="
	    " 'store_id'"), t.ctx->store_id);
	cr_expect_neq(t.ctx->store_id, old, "a new identity, not a default");
	old = t.ctx->store_id;
	th_close(&t);
	th_open(&t);
	cr_expect_eq(t.ctx->store_id, old, "read, never made again");
	th_fini(&t);
}

struct opener {
	const struct auth_settings *s;
	struct auth_ctx *c;
	char err[512];
};

static void *
open_one(void *arg)
{
	struct opener *o = arg;

	o->c = auth_open(o->s, NULL, NULL, o->err, sizeof(o->err));
	return NULL;
}

/* Two processes opening a schema 3 store at once (the CLI beside a
 * starting gateway: here two threads, each with its own connection) both
 * read version 3 before either takes the write lock; the second must not
 * run step 4 again, which would replace the identity the first read. */
Test(store, concurrent_opens_of_a_schema_3_store_agree_on_its_identity)
{
	struct th t;
	int bad = 0;

	th_init(&t);
	th_open(&t);
	th_close(&t);
	for (int i = 0; i < 40; i++) {
		struct opener o[2] = { { .s = &t.s }, { .s = &t.s } };
		pthread_t th[2];
		int64_t stored;

		sq_run(t.s.user_db, "DELETE FROM meta WHERE k = 'store_id';"
		    " PRAGMA user_version=3");
		for (int j = 0; j < 2; j++)
			cr_assert_eq(pthread_create(&th[j], NULL, open_one, &o[j]), 0);
		for (int j = 0; j < 2; j++)
			pthread_join(th[j], NULL);
		cr_assert_not_null(o[0].c, "%s", o[0].err);
		cr_assert_not_null(o[1].c, "%s", o[1].err);
		stored = sq_int(t.s.user_db, "SELECT v FROM meta WHERE k = 'store_id'");
		bad += o[0].c->store_id != stored || o[1].c->store_id != stored;
		auth_close(o[0].c);
		auth_close(o[1].c);
	}
	cr_expect_eq(bad, 0, "%d of 40 rounds: a context holds an identity the "
	    "store no longer has", bad);
	th_fini(&t);
}

/* A store whose identity row went missing (not a schema 3 store) is
 * refused: serving it with some default would let another store's
 * cookies in. */
Test(store, store_without_identity_refused)
{
	struct th t;

	th_init(&t);
	th_open(&t);
	th_close(&t);
	sq_run(t.s.user_db, "DELETE FROM meta WHERE k = 'store_id'");
	expect_open_fails(&t, "the store has no identity (meta "
	    "'store_id')");
	th_fini(&t);
}

Test(store, corrupt_database_refused)
{
	struct th t;
	char buf[4096];
	int fd;

	th_init(&t);
	th_open(&t);
	for (int i = 0; i < 20; i++) {
		char n[16];
		snprintf(n, sizeof(n), "user%d", i);
		th_add_user(&t, n, "correct horse battery", false, NULL);
	}
	th_close(&t);
	/* checkpointed by close; scribble over page 2 onwards */
	fd = open(t.s.user_db, O_WRONLY);
	cr_assert_geq(fd, 0);
	memset(buf, 0xA5, sizeof(buf));
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 4096), (ssize_t)sizeof(buf));
	close(fd);
	char err[512] = "";
	struct auth_ctx *c = auth_open(&t.s, NULL, NULL, err, sizeof(err));
	cr_expect_null(c, "corrupt store opened");
	cr_expect(strstr(err, "corrupt") != NULL || strstr(err, "malformed") != NULL ||
	    strstr(err, "SQLite") != NULL, "error was: %s", err);
	auth_close(c);
	th_fini(&t);
}

Test(store, key_file_created_0600_and_loose_mode_refused)
{
	struct th t;
	struct stat st;

	th_init(&t);
	th_open(&t);
	cr_assert_eq(stat(t.s.secret_key, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(stat(t.s.user_db, &st), 0);
	cr_expect_eq(st.st_mode & 077, 0, "user store readable by others");
	th_close(&t);
	chmod(t.s.secret_key, 0644);
	expect_open_fails(&t, "chmod 600");
	th_fini(&t);
}

Test(store, bad_key_file_refused)
{
	struct th t;

	th_init(&t);
	write_file(t.s.secret_key, "1 abcd\n", 7);
	expect_open_fails(&t, "64 hex digits");
	th_fini(&t);
}

/* ---- files that are not regular files ----
 * The config checks both paths when it is parsed; auth_open checks again
 * because the path may have changed since (a blocking open of a FIFO used
 * to hang the start for ever). */
static void
expect_open_error(struct th *t, const char *path, const char *what,
    const char *kind)
{
	char want[512], err[512] = "";
	struct auth_ctx *c;

	snprintf(want, sizeof(want), "%s: %s: not a regular file (%s)", path,
	    what, kind);
	c = auth_open(&t->s, NULL, NULL, err, sizeof(err));
	cr_expect_null(c);
	cr_expect_str_eq(err, want);
	auth_close(c);
}

Test(store, secret_key_fifo_refused)
{
	struct th t;

	th_init(&t);
	cr_assert_eq(mkfifo(t.s.secret_key, 0600), 0);
	expect_open_error(&t, t.s.secret_key, "secret key file", "fifo");
	th_fini(&t);
}

Test(store, secret_key_directory_refused)
{
	struct th t;

	th_init(&t);
	cr_assert_eq(mkdir(t.s.secret_key, 0700), 0);
	expect_open_error(&t, t.s.secret_key, "secret key file", "directory");
	th_fini(&t);
}

Test(store, user_db_fifo_refused)
{
	struct th t;

	th_init(&t);
	cr_assert_eq(mkfifo(t.s.user_db, 0600), 0);
	expect_open_error(&t, t.s.user_db, "user store", "fifo");
	th_fini(&t);
}

Test(store, user_db_directory_refused)
{
	struct th t;

	th_init(&t);
	cr_assert_eq(mkdir(t.s.user_db, 0700), 0);
	expect_open_error(&t, t.s.user_db, "user store", "directory");
	th_fini(&t);
}

/* ---- kill -9 in the middle of writes ---- */

static void
child_writer(struct th *t, int wfd)
{
	char err[256], name[32];
	struct auth_ctx *c = auth_open(&t->s, NULL, NULL, err, sizeof(err));

	if (c == NULL)
		_exit(3);
	for (unsigned i = 0; i < 1000000; i++) {
		snprintf(name, sizeof(name), "u%u", i);
		pthread_mutex_lock(&c->db_mu);
		int ok = auth_store_begin(c) == 0;
		sqlite3_stmt *st;
		ok = ok && sqlite3_prepare_v2(c->db, "INSERT INTO users(name, created, updated)"
		    " VALUES(?1, 0, 0)", -1, &st, NULL) == SQLITE_OK;
		if (ok) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			ok = sqlite3_step(st) == SQLITE_DONE;
			sqlite3_finalize(st);
		}
		ok = ok && auth_reg_fail(c, "a:192.0.2.1", i) >= 0;
		ok = ok && auth_bump_version(c) == 0 && auth_store_commit(c) == 0;
		pthread_mutex_unlock(&c->db_mu);
		if (!ok)
			_exit(4);
		if (write(wfd, "c", 1) != 1)
			_exit(5);
	}
	_exit(0);
}

Test(store, kill_9_during_writes_leaves_consistent_store, .timeout = 60)
{
	struct th t;
	int p[2], status;
	unsigned commits = 0;
	char ch;
	pid_t pid;

	th_init(&t);
	th_open(&t);	/* create the schema first */
	th_close(&t);
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child_writer(&t, p[1]);
	}
	close(p[1]);
	while (commits < 200 && read(p[0], &ch, 1) == 1)
		commits++;
	cr_assert_eq(commits, 200, "writer stopped early");
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFSIGNALED(status));
	close(p[0]);

	th_open(&t);
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(t.ctx->db, "PRAGMA integrity_check", -1, &st, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	int64_t n = 0;
	cr_assert_eq(sqlite3_prepare_v2(t.ctx->db, "SELECT count(*) FROM users", -1, &st,
	    NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	cr_expect_geq(n, 200, "lost committed rows: %lld", (long long)n);
	th_fini(&t);
}

/* ---- the tables' hand-over (auth_tables_install) ---- */

static struct auth_tables *
tables(int64_t version, int64_t marker, bool force)
{
	struct auth_tables *t = calloc(1, sizeof(*t));

	cr_assert_not_null(t);
	t->users = calloc(1, sizeof(*t->users));
	t->revoked = calloc(1, sizeof(*t->revoked));
	cr_assert(t->users != NULL && t->revoked != NULL);
	t->users[0].id = marker;
	t->nusers = 1;
	t->version = version;
	t->force = force;
	return t;
}

static int64_t
marker_in_force(struct auth_ctx *c)
{
	return c->nusers == 1 ? c->users[0].id : -1;
}

/* Readers race to install: an older read never replaces a newer one; the
 * same version is not installed twice; a forced one (a store restored
 * from a backup, its version lower) is. */
Test(tables, install_newer_only_unless_forced)
{
	static const struct {
		int64_t dv;		/* version, from the one at open */
		bool force, taken;	/* taken: this read is in force after */
		int64_t want_dv;
	} steps[] = {
		{ 2, false, true, 2 },	/* newer: in force */
		{ 1, false, false, 2 },	/* older: dropped */
		{ 2, false, false, 2 },	/* same: dropped */
		{ 3, false, true, 3 },
		{ -5, true, true, -5 },	/* went back, forced: in force */
	};
	struct th t;
	int64_t v0, want_marker = -1;

	th_init(&t);
	th_open(&t);
	v0 = auth_tables_version(t.ctx);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int64_t marker = 1000 + (int64_t)i;

		auth_tables_install(t.ctx, tables(v0 + steps[i].dv, marker,
		    steps[i].force), steps[i].force);
		if (steps[i].taken)
			want_marker = marker;
		cr_expect_eq(auth_tables_version(t.ctx), v0 + steps[i].want_dv,
		    "step %zu", i);
		cr_expect_eq(marker_in_force(t.ctx), want_marker, "step %zu", i);
	}
	th_fini(&t);
}
