/* test_session.c -- the session cookie: roundtrip, tampering, keys, expiry, revocation. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static struct th t;
static struct auth_user alice;
static const time_t T0 = 1700000000;

static void
setup(void)
{
	th_init(&t);
	th_open(&t);
	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_user_get(t.ctx, "alice", 0, &alice), 0);
	pthread_mutex_unlock(&t.ctx->db_mu);
}

static void
teardown(void)
{
	th_fini(&t);
}

/* Returns the "name=value" part of a Set-Cookie value in `cookie`. */
static void
login(char *cookie, size_t len)
{
	char sc[512];

	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_session_new(t.ctx, &alice, AUTH_LEVEL_MFA, NULL, T0, sc,
	    sizeof(sc), NULL), 0);
	pthread_mutex_unlock(&t.ctx->db_mu);
	snprintf(cookie, len, "%.*s", (int)strcspn(sc, ";"), sc);
}

static enum auth_check
check(const char *cookie, time_t now, struct auth_identity *id)
{
	return auth_session_check(t.ctx, cookie, strlen(cookie), now, id);
}

TestSuite(session, .init = setup, .fini = teardown);

Test(session, roundtrip)
{
	char c[512], hdr[600];
	struct auth_identity id;

	login(c, sizeof(c));
	snprintf(hdr, sizeof(hdr), "other=1; %s; x=y", c);
	cr_assert_eq(check(hdr, T0 + 5, &id), AUTH_OK);
	cr_expect_str_eq(id.user, "alice");
	cr_expect(id.mfa);
	cr_expect_eq(id.level, AUTH_LEVEL_MFA);
	cr_expect_eq(id.login_time, T0);
	cr_expect_eq(strlen(id.sid), 32);
	cr_expect_not(id.refresh);
}

Test(session, no_cookie)
{
	struct auth_identity id;

	cr_expect_eq(check("", T0, &id), AUTH_NONE);
	cr_expect_eq(check("__Host-pbxgatex=1", T0, &id), AUTH_NONE);
}

Test(session, every_byte_flip_rejected)
{
	char c[512];
	struct auth_identity id;
	size_t start;

	login(c, sizeof(c));
	start = strlen(AUTH_COOKIE_NAME) + 1;
	for (size_t i = start; c[i] != '\0'; i++) {
		char save = c[i];

		c[i] = (char)(save == '0' ? '1' : save == 'f' ? 'e' : save ^ 1);
		cr_expect_neq(check(c, T0 + 1, &id), AUTH_OK, "flip at %zu", i);
		c[i] = save;
	}
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_OK);
}

Test(session, truncated_and_garbage_rejected)
{
	char c[512];
	struct auth_identity id;
	const char *bad[] = { "__Host-pbxgate=", "__Host-pbxgate=1.", "__Host-pbxgate=1",
	    "__Host-pbxgate=99.00", "__Host-pbxgate=1.zz", "__Host-pbxgate=.abcd" };

	login(c, sizeof(c));
	c[strlen(c) - 2] = '\0';
	cr_expect_eq(check(c, T0, &id), AUTH_INVALID);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(check(bad[i], T0, &id), AUTH_INVALID, "%s", bad[i]);
}

Test(session, wrong_key_rejected)
{
	char c[512];
	struct auth_identity id;

	login(c, sizeof(c));
	th_close(&t);
	FILE *f = fopen(t.s.secret_key, "w");	/* mode kept: 0600 */

	cr_assert_not_null(f);
	fprintf(f, "1 %064d\n", 9);	/* another key, the same key id 1 */
	fclose(f);
	th_open(&t);
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_INVALID);
}

/* A key file lost beside a store with users is not made again: a new key
 * would leave their sessions and TOTP secrets unreadable. */
Test(session, missing_key_of_a_store_with_users_refused)
{
	char c[512], err[512] = "";
	struct stat st;

	login(c, sizeof(c));
	th_close(&t);
	cr_assert_eq(unlink(t.s.secret_key), 0);
	cr_assert_null(auth_open(&t.s, NULL, NULL, err, sizeof(err)));
	cr_expect(strstr(err, "secret key file: cannot open: No such file or "
	    "directory; the user store ") != NULL, "%s", err);
	cr_expect(strstr(err, "has users, whose sessions and TOTP secrets are "
	    "sealed with this key, so pbxgate does not make a new one in its "
	    "place: restore the file") != NULL, "%s", err);
	cr_expect_neq(stat(t.s.secret_key, &st), 0, "a key file was made");
}

Test(session, previous_key_still_accepted_after_rotation)
{
	char c[512], line[200];
	struct auth_identity id;
	FILE *f;

	login(c, sizeof(c));
	th_close(&t);
	f = fopen(t.s.secret_key, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	fclose(f);
	f = fopen(t.s.secret_key, "w");
	cr_assert_not_null(f);
	fprintf(f, "2 %064d\n%s", 7, line);
	fclose(f);
	th_open(&t);
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_OK);
	char sc[512];
	cr_assert_gt(auth_session_reseal(t.ctx, &id, T0 + 2, sc, sizeof(sc)), 0);
	cr_expect_eq(strncmp(sc, "__Host-pbxgate=2.", 17), 0, "%s", sc);
}

Test(session, idle_expiry_and_reseal)
{
	char c[512], sc[512];
	struct auth_identity id;
	unsigned idle = t.s.session_idle;

	login(c, sizeof(c));
	cr_expect_eq(check(c, T0 + idle, &id), AUTH_OK);
	cr_expect(id.refresh);
	cr_expect_eq(check(c, T0 + idle + 1, &id), AUTH_EXPIRED);
	cr_assert_eq(check(c, T0 + idle - 1, &id), AUTH_OK);
	cr_assert_gt(auth_session_reseal(t.ctx, &id, T0 + idle - 1, sc, sizeof(sc)), 0);
	cr_expect(strstr(sc, "; Path=/; Secure; HttpOnly; SameSite=Lax") != NULL);
	sc[strcspn(sc, ";")] = '\0';
	cr_expect_eq(check(sc, T0 + 2 * idle - 2, &id), AUTH_OK);
}

Test(session, absolute_expiry)
{
	char c[512], sc[512];
	struct auth_identity id;
	time_t now = T0;

	login(c, sizeof(c));
	/* keep it alive by resealing; the absolute limit still ends it */
	for (int i = 0; i < 1000 && now - T0 < (time_t)t.s.session_max; i++) {
		cr_assert_eq(check(c, now, &id), AUTH_OK);
		cr_assert_gt(auth_session_reseal(t.ctx, &id, now, sc, sizeof(sc)), 0);
		snprintf(c, sizeof(c), "%.*s", (int)strcspn(sc, ";"), sc);
		now += t.s.session_idle / 2;
	}
	cr_expect_eq(check(c, T0 + t.s.session_max + 1, &id), AUTH_EXPIRED);
}

Test(session, from_the_future_rejected)
{
	char c[512];
	struct auth_identity id;

	login(c, sizeof(c));
	cr_expect_eq(check(c, T0 - 3600, &id), AUTH_INVALID);
}

Test(session, epoch_bump_revokes)
{
	char c[512], err[128];
	struct auth_identity id;

	login(c, sizeof(c));
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_bump_epoch(t.ctx, alice.id, T0), 0);
	pthread_mutex_unlock(&t.ctx->db_mu);
	cr_assert_eq(auth_store_reload(t.ctx, false, err, sizeof(err)), 0);
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_REVOKED);
}

Test(session, single_session_revoke)
{
	char c1[512], c2[512], err[128];
	struct auth_identity id;

	login(c1, sizeof(c1));
	login(c2, sizeof(c2));
	cr_assert_eq(check(c1, T0 + 1, &id), AUTH_OK);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_session_revoke(t.ctx, alice.id, id.sid), 1);
	pthread_mutex_unlock(&t.ctx->db_mu);
	cr_assert_eq(auth_store_reload(t.ctx, false, err, sizeof(err)), 0);
	cr_expect_eq(check(c1, T0 + 1, &id), AUTH_REVOKED);
	cr_expect_eq(check(c2, T0 + 1, &id), AUTH_OK);
}

/* Another process (here: a second ctx) changes the store; this ctx sees it
 * only after auth_refresh(). */
Test(session, cross_process_revocation_after_refresh)
{
	char c[512], err[512];
	struct auth_identity id;
	struct auth_ctx *other = auth_open(&t.s, NULL, NULL, err, sizeof(err));

	cr_assert_not_null(other, "%s", err);
	login(c, sizeof(c));
	pthread_mutex_lock(&other->db_mu);
	cr_assert_eq(auth_bump_epoch(other, alice.id, T0), 0);
	pthread_mutex_unlock(&other->db_mu);
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_OK, "documented delay");
	cr_assert_eq(auth_refresh(t.ctx, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_REVOKED);
	auth_close(other);
}

struct race { char cookie[512]; _Atomic int bad; };

static void *
checker(void *arg)
{
	struct race *r = arg;
	struct auth_identity id;

	for (int i = 0; i < 20000; i++) {
		enum auth_check x = check(r->cookie, T0 + 1, &id);
		if (x != AUTH_OK && x != AUTH_REVOKED)
			r->bad++;
	}
	return NULL;
}

/* Checks on several threads while another thread changes and reloads. */
Test(session, concurrent_checks_and_reloads)
{
	pthread_t th[4];
	struct race r = { .bad = 0 };
	char err[128];

	login(r.cookie, sizeof(r.cookie));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, checker, &r), 0);
	for (int i = 0; i < 50; i++) {
		pthread_mutex_lock(&t.ctx->db_mu);
		cr_assert_eq(auth_bump_version(t.ctx), 0);
		pthread_mutex_unlock(&t.ctx->db_mu);
		cr_assert_eq(auth_store_reload(t.ctx, false, err, sizeof(err)), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	cr_expect_eq(r.bad, 0);
}

/* ---- sites: one site's cookies and tokens are refused on another ---- */

/* A context on the same store and secret key file as t.ctx, for `site`. */
static struct auth_ctx *
open_site(const char *site)
{
	struct auth_settings s = t.s;
	struct auth_ctx *c;
	char err[512];

	snprintf(s.site, sizeof(s.site), "%s", site);
	c = auth_open(&s, NULL, NULL, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	return c;
}

static void
login_on(struct auth_ctx *c, char *cookie, size_t len)
{
	struct auth_user u;
	char sc[512];

	pthread_mutex_lock(&c->db_mu);
	cr_assert_eq(auth_user_get(c, "alice", 0, &u), 0);
	cr_assert_eq(auth_session_new(c, &u, AUTH_LEVEL_MFA, NULL, T0, sc,
	    sizeof(sc), NULL), 0);
	pthread_mutex_unlock(&c->db_mu);
	snprintf(cookie, len, "%.*s", (int)strcspn(sc, ";"), sc);
}

Test(session, cookie_of_site_a_refused_on_site_b)
{
	struct auth_ctx *a = open_site("a"), *b = open_site("b");
	struct auth_identity id;
	char c[512];

	login_on(a, c, sizeof(c));
	cr_expect_eq(auth_session_check(a, c, strlen(c), T0 + 1, &id), AUTH_OK);
	cr_expect_eq(auth_session_check(b, c, strlen(c), T0 + 1, &id),
	    AUTH_INVALID, "same user, same key, other site");
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_INVALID, "the top level");
	auth_close(a);
	auth_close(b);
}

/* Cookies made before sites existed (no site) stay valid at the top level,
 * and are no site's. */
Test(session, top_level_cookie_refused_on_a_site)
{
	struct auth_ctx *a = open_site("a");
	struct auth_identity id;
	char c[512];

	login(c, sizeof(c));
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_OK);
	cr_expect_eq(auth_session_check(a, c, strlen(c), T0 + 1, &id),
	    AUTH_INVALID);
	auth_close(a);
}

Test(session, sealed_token_of_site_a_refused_on_site_b)
{
	struct auth_ctx *a = open_site("a"), *b = open_site("b");
	uint8_t pt[16] = "sixteen bytes!!", out[16];
	char tok[256];

	cr_assert_eq(auth_token_seal(a, "mfa", pt, sizeof(pt), tok,
	    sizeof(tok)), 0);
	cr_expect_eq(auth_token_open(a, "mfa", tok, strlen(tok), out,
	    sizeof(out)), 0);
	cr_expect_neq(auth_token_open(b, "mfa", tok, strlen(tok), out,
	    sizeof(out)), 0);
	cr_expect_neq(auth_token_open(t.ctx, "mfa", tok, strlen(tok), out,
	    sizeof(out)), 0);
	auth_close(a);
	auth_close(b);
}

Test(session, csrf_token_differs_per_site)
{
	struct auth_ctx *a = open_site("a"), *b = open_site("b");
	const char *cookie = "0123456789abcdef0123456789abcdef";
	char ta[65], tb[65], top[65];

	auth_csrf_token(a, cookie, 32, "", ta);
	auth_csrf_token(b, cookie, 32, "", tb);
	auth_csrf_token(t.ctx, cookie, 32, "", top);
	cr_expect_str_neq(ta, tb);
	cr_expect_str_neq(ta, top);
	cr_expect_str_neq(tb, top);
	auth_close(a);
	auth_close(b);
}

/* An enrolment link of site a finds nothing through site b, even in the
 * store both share; the top level's hash is the token's plain SHA-256 (the
 * links made before sites still work). */
Test(session, enrolment_link_of_site_a_not_found_on_site_b)
{
	struct auth_ctx *a = open_site("a"), *b = open_site("b");
	struct auth_enrol_row row;
	char tok[65], ha[65], hb[65], top[65];

	pthread_mutex_lock(&a->db_mu);
	cr_assert_eq(auth_enrol_token_new(a, alice.id, T0, tok), 0);
	pthread_mutex_unlock(&a->db_mu);
	cr_assert_eq(auth_enrol_hash(a, tok, ha), 0);
	cr_assert_eq(auth_enrol_hash(b, tok, hb), 0);
	cr_assert_eq(auth_enrol_hash(t.ctx, tok, top), 0);
	cr_expect_str_neq(ha, hb);
	{
		uint8_t md[32];
		unsigned int n = 0;
		char plain[65];

		EVP_Digest(tok, 64, md, &n, EVP_sha256(), NULL);
		auth_hex(md, sizeof(md), plain);
		cr_expect_str_eq(top, plain);
	}
	pthread_mutex_lock(&b->db_mu);
	cr_expect_eq(b->store->enrol_get(b, ha, T0 + 1, &row), 0);
	cr_expect_neq(b->store->enrol_get(b, hb, T0 + 1, &row), 0);
	pthread_mutex_unlock(&b->db_mu);
	auth_close(a);
	auth_close(b);
}

/* ---- stores: one store's cookies and tokens are refused on another ---- */

/* A context on another SQLite store in t's directory, with the same
 * secret key file as t.ctx, holding a user of id 1 named `name`. */
static struct auth_ctx *
open_store(const char *file, const char *name)
{
	struct th o = t;	/* the settings only; o.ctx is replaced */
	char path[256], err[512];

	snprintf(path, sizeof(path), "%s/%s", t.dir, file);
	o.s.user_db = path;
	o.ctx = auth_open(&o.s, NULL, NULL, err, sizeof(err));
	cr_assert_not_null(o.ctx, "%s", err);
	cr_assert_eq(th_add_user(&o, name, "another password here", false,
	    NULL), 1);
	return o.ctx;
}

/* alice is user 1 of t's store and admin user 1 of the other: the same
 * key must not turn her cookie into admin's session. */
Test(session, cookie_of_store_a_refused_on_store_b)
{
	struct auth_ctx *b = open_store("b.db", "admin");
	struct auth_identity id;
	char c[512];

	cr_assert_eq(alice.id, 1);
	cr_assert_neq(t.ctx->store_id, b->store_id);
	login(c, sizeof(c));
	cr_expect_eq(auth_session_check(b, c, strlen(c), T0 + 1, &id),
	    AUTH_INVALID, "same uid, same key, same epoch, other store");
	cr_expect_eq(check(c, T0 + 1, &id), AUTH_OK, "its own store");
	auth_close(b);
}

Test(session, sealed_token_of_store_a_refused_on_store_b)
{
	struct auth_ctx *b = open_store("b.db", "admin");
	uint8_t pt[16] = "sixteen bytes!!", out[16];
	char tok[256];

	cr_assert_eq(auth_token_seal(t.ctx, "pbxgate-mfa", pt, sizeof(pt), tok,
	    sizeof(tok)), 0);
	cr_expect_neq(auth_token_open(b, "pbxgate-mfa", tok, strlen(tok), out,
	    sizeof(out)), 0);
	cr_expect_eq(auth_token_open(t.ctx, "pbxgate-mfa", tok, strlen(tok),
	    out, sizeof(out)), 0);
	auth_close(b);
}

/* The identity is the store's, not the process's: a second context on
 * the same store (another gateway, the CLI) accepts the cookie. */
Test(session, cookie_valid_on_another_ctx_of_the_same_store)
{
	char c[512], err[512];
	struct auth_identity id;
	struct auth_ctx *other = auth_open(&t.s, NULL, NULL, err, sizeof(err));

	cr_assert_not_null(other, "%s", err);
	cr_expect_eq(other->store_id, t.ctx->store_id);
	login(c, sizeof(c));
	cr_expect_eq(auth_session_check(other, c, strlen(c), T0 + 1, &id),
	    AUTH_OK);
	auth_close(other);
}

/* ---- key ids: the parsers take every id the key file does ---- */

/* The key file becomes the key of id `kid`, which seals, then key 1. */
static void
use_kid(const char *kid)
{
	FILE *f;

	th_close(&t);
	cr_assert_not_null(f = fopen(t.s.secret_key, "w"));
	fprintf(f, "%s %064d\n", kid, 7);
	if (strcmp(kid, "1") != 0)
		fprintf(f, "1 %064d\n", 8);
	fclose(f);
	th_open(&t);
}

/* Every id of keyfile_parse's range, ten digits included, seals a cookie
 * and a token that open: 1..4294967295. */
Test(session, kid_boundaries_accepted)
{
	const char *ok[] = { "1", "999999999", "1000000000", "1700000000",
	    "4294967295" };
	uint8_t pt[16] = "sixteen bytes!!", out[16];
	char c[512], prefix[64], tok[256];
	struct auth_identity id;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		use_kid(ok[i]);
		login(c, sizeof(c));
		snprintf(prefix, sizeof(prefix), "__Host-pbxgate=%s.", ok[i]);
		cr_expect_eq(strncmp(c, prefix, strlen(prefix)), 0, "%s", c);
		cr_expect_eq(check(c, T0 + 1, &id), AUTH_OK, "kid %s", ok[i]);
		cr_assert_eq(auth_token_seal(t.ctx, "mfa", pt, sizeof(pt), tok,
		    sizeof(tok)), 0);
		cr_expect_eq(strncmp(tok, ok[i], strlen(ok[i])), 0, "%s", tok);
		cr_expect_eq(auth_token_open(t.ctx, "mfa", tok, strlen(tok), out,
		    sizeof(out)), 0, "kid %s", ok[i]);
	}
}

/* A cookie and a token of key 1 with their id respelt: 0, past
 * UINT32_MAX (4294967297 would wrap to 1, whose key would open it),
 * eleven digits, a leading zero (one spelling per id: "%u"'s). */
Test(session, kid_out_of_range_refused)
{
	const char *bad[] = { "0", "01", "4294967296", "4294967297",
	    "10000000001", "42949672951", "00000000001" };
	uint8_t pt[16] = "sixteen bytes!!", out[16];
	char c[512], tok[256], forged[600];
	const char *hex, *thex;
	struct auth_identity id;

	login(c, sizeof(c));
	cr_assert_eq(strncmp(c, "__Host-pbxgate=1.", 17), 0, "%s", c);
	hex = c + 17;
	cr_assert_eq(auth_token_seal(t.ctx, "mfa", pt, sizeof(pt), tok,
	    sizeof(tok)), 0);
	cr_assert_eq(strncmp(tok, "1.", 2), 0, "%s", tok);
	thex = tok + 2;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(forged, sizeof(forged), "__Host-pbxgate=%s.%s", bad[i],
		    hex);
		cr_expect_eq(check(forged, T0 + 1, &id), AUTH_INVALID, "kid %s",
		    bad[i]);
		snprintf(forged, sizeof(forged), "%s.%s", bad[i], thex);
		cr_expect_eq(auth_token_open(t.ctx, "mfa", forged, strlen(forged),
		    out, sizeof(out)), -1, "kid %s", bad[i]);
	}
}
