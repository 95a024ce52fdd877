/* helpers.c -- shared setup for the auth unit tests. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static void
audit_cb(void *arg, const char *event, const char *line)
{
	(void)event;
	struct th *t = arg;
	size_t n = strlen(t->audit);

	snprintf(t->audit + n, sizeof(t->audit) - n, "%s\n", line);
}

void
th_init(struct th *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/pbxgate-auth-XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	auth_settings_defaults(&t->s);
	char *v[] = { "m=64", "t=1", "p=1" };
	int bad;
	cr_assert_eq(pol_kw_run(&auth_kwtab, &t->s, t->dir, "argon2", 3, v,
	    &bad, err, sizeof(err)), 0, "%s", err);
	char *db[] = { "users.db" };
	cr_assert_eq(pol_kw_run(&auth_kwtab, &t->s, t->dir, "user_db", 1, db,
	    &bad, err, sizeof(err)), 0);
	char *pu[] = { "https://pbx.example.com/" };
	cr_assert_eq(pol_kw_run(&auth_kwtab, &t->s, t->dir, "public_url", 1,
	    pu, &bad, err, sizeof(err)), 0);
	cr_assert_eq(auth_settings_finish(&t->s, err, sizeof(err)), 0, "%s", err);
}

void
th_open(struct th *t)
{
	char err[512] = "";

	t->ctx = auth_open(&t->s, audit_cb, t, err, sizeof(err));
	cr_assert_not_null(t->ctx, "auth_open: %s", err);
}

void
th_close(struct th *t)
{
	auth_close(t->ctx);
	t->ctx = NULL;
}

void
th_fini(struct th *t)
{
	char cmd[256];

	th_close(t);
	auth_settings_free(&t->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	cr_assert_eq(system(cmd), 0);
}

int64_t
th_add_user(struct th *t, const char *name, const char *pw, bool totp,
    uint8_t secret[AUTH_TOTP_SECRET])
{
	struct auth_ctx *c = t->ctx;
	char phc[AUTH_PHC_MAX], err[256], folded[AUTH_NAME_MAX + 1];
	sqlite3_stmt *st;
	int64_t id;

	cr_assert_eq(auth_name_fold(name, folded), 0);
	cr_assert_eq(auth_pw_hash(c->s.argon2_m_kib, c->s.argon2_t, c->s.argon2_p,
	    pw, strlen(pw), phc, err, sizeof(err)), 0, "%s", err);
	pthread_mutex_lock(&c->db_mu);
	cr_assert_eq(sqlite3_prepare_v2(c->db, "INSERT INTO users(name, pw, created,"
	    " updated) VALUES(?1, ?2, 0, 0)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, folded, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, phc, -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	id = sqlite3_last_insert_rowid(c->db);
	if (totp) {
		uint8_t sealed[AUTH_TOTP_SECRET + AUTH_SEAL_OVER];
		uint32_t kid;

		cr_assert_eq(auth_random(secret, AUTH_TOTP_SECRET), 0);
		cr_assert_eq(auth_totp_seal(c, secret, id, sealed, &kid), 0);
		cr_assert_eq(sqlite3_prepare_v2(c->db, "UPDATE users SET totp = ?2,"
		    " totp_kid = ?3 WHERE id = ?1", -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_blob(st, 2, sealed, sizeof(sealed), SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, kid);
		cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
	}
	cr_assert_eq(auth_bump_version(c), 0);
	pthread_mutex_unlock(&c->db_mu);
	cr_assert_eq(auth_store_reload(c, false, err, sizeof(err)), 0);
	return id;
}
