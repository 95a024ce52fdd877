/* test_http.c -- the /_pbxgate/ pages as a conversation: request in, status and cookies out. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

static struct th t;
static const time_t T0 = 1700000000;
static struct sockaddr_in peer;
static char jar[2048];		/* "a=b; c=d" as a browser would send */
static const char *lang;

static void
setup(void)
{
	th_init(&t);
	th_open(&t);
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.10", &peer.sin_addr);
	jar[0] = '\0';
	lang = NULL;
}

static void
teardown(void)
{
	th_fini(&t);
}

TestSuite(http, .init = setup, .fini = teardown);

/* Stores each Set-Cookie in the jar (replacing a same-named one). */
static void
jar_update(const struct auth_http_resp *r)
{
	for (size_t i = 0; i < r->nhdr; i++) {
		char nv[600], name[64], out[2048] = "";
		const char *p = jar;
		bool del;

		if (strcmp(r->hdr[i].name, "Set-Cookie") != 0)
			continue;
		snprintf(nv, sizeof(nv), "%.*s", (int)strcspn(r->hdr[i].value, ";"), r->hdr[i].value);
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(nv, "="), nv);
		del = strstr(r->hdr[i].value, "Max-Age=0") != NULL;
		while (*p != '\0') {
			size_t n = strcspn(p, ";");
			if (!(strncmp(p, name, strlen(name)) == 0 && p[strlen(name)] == '='))
				snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%.*s",
				    out[0] ? "; " : "", (int)n, p);
			p += n;
			while (*p == ';' || *p == ' ')
				p++;
		}
		if (!del)
			snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
			    out[0] ? "; " : "", nv);
		snprintf(jar, sizeof(jar), "%s", out);
	}
}

static const char *
hdr(const struct auth_http_resp *r, const char *name)
{
	for (size_t i = 0; i < r->nhdr; i++)
		if (strcmp(r->hdr[i].name, name) == 0)
			return r->hdr[i].value;
	return NULL;
}

static void
req(const char *method, const char *path, const char *query, const char *body,
    time_t now, struct auth_http_resp *r)
{
	struct auth_http_req q = {
		.method = method, .path = path, .query = query,
		.peer = (const struct sockaddr *)&peer, .cookie = jar[0] ? jar : NULL,
		.accept_language = lang,
		.content_type = body ? "application/x-www-form-urlencoded" : NULL,
		.body = body, .body_len = body ? strlen(body) : 0, .now = now,
	};

	auth_http_handle(t.ctx, &q, r);
	jar_update(r);
}

/* The csrf field value of the last page. */
static void
csrf_of(const struct auth_http_resp *r, char out[65])
{
	const char *p = r->body ? strstr(r->body, "name=\"csrf\" value=\"") : NULL;

	cr_assert_not_null(p, "no csrf field");
	snprintf(out, 65, "%.64s", p + 19);
}

static void
get_login(char csrf[65])
{
	struct auth_http_resp r;

	req("GET", "/_pbxgate/login", "rd=/app", NULL, T0, &r);
	if (r.status == 303) {	/* already signed in: any form has the token */
		auth_http_resp_free(&r);
		req("GET", "/_pbxgate/logout", NULL, NULL, T0, &r);
	}
	cr_assert_eq(r.status, 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
}

static int
post_login(const char *user, const char *pw, time_t now, struct auth_http_resp *r)
{
	char csrf[65], body[512];

	get_login(csrf);
	snprintf(body, sizeof(body), "csrf=%s&rd=%%2Fapp&username=%s&password=%s", csrf, user, pw);
	req("POST", "/_pbxgate/login", NULL, body, now, r);
	return r->status;
}

Test(http, login_page_headers_and_form)
{
	struct auth_http_resp r;

	req("GET", "/_pbxgate/login", "rd=/x", NULL, T0, &r);
	cr_expect_eq(r.status, 200);
	cr_expect(strstr(hdr(&r, "Content-Security-Policy"), "default-src 'none'") != NULL);
	cr_expect_str_eq(hdr(&r, "Cache-Control"), "no-store");
	cr_expect(strstr(r.body, "<label for=\"username\">") != NULL);
	cr_expect(strstr(r.body, "<label for=\"password\">") != NULL);
	cr_expect(strstr(r.body, "<script") == NULL);
	cr_expect(strstr(r.body, "name=\"rd\" value=\"/x\"") != NULL);
	cr_expect(strstr(jar, "__Host-pbxgate-csrf=") != NULL);
	auth_http_resp_free(&r);
}

Test(http, japanese_by_accept_language)
{
	struct auth_http_resp r;

	lang = "ja-JP,ja;q=0.9,en;q=0.8";
	req("GET", "/_pbxgate/login", NULL, NULL, T0, &r);
	cr_expect(strstr(r.body, "lang=\"ja\"") != NULL);
	cr_expect(strstr(r.body, "パスワード") != NULL);
	auth_http_resp_free(&r);
	lang = "en-GB,ja;q=0.5";
	req("GET", "/_pbxgate/login", NULL, NULL, T0, &r);
	cr_expect(strstr(r.body, "lang=\"en\"") != NULL);
	auth_http_resp_free(&r);
}

Test(http, csrf_missing_is_403)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	get_login((char[65]){ 0 });
	req("POST", "/_pbxgate/login", NULL, "username=alice&password=correct+horse+battery",
	    T0, &r);
	cr_expect_eq(r.status, 403);
	auth_http_resp_free(&r);
}

Test(http, csrf_wrong_is_403)
{
	struct auth_http_resp r;
	char body[300];

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	get_login((char[65]){ 0 });
	snprintf(body, sizeof(body), "csrf=%064d&username=alice&password=correct+horse+battery", 0);
	req("POST", "/_pbxgate/login", NULL, body, T0, &r);
	cr_expect_eq(r.status, 403);
	auth_http_resp_free(&r);
}

Test(http, csrf_without_cookie_is_403)
{
	struct auth_http_resp r;
	char csrf[65], body[300];

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	get_login(csrf);
	jar[0] = '\0';
	snprintf(body, sizeof(body), "csrf=%s&username=alice&password=correct+horse+battery", csrf);
	req("POST", "/_pbxgate/login", NULL, body, T0, &r);
	cr_expect_eq(r.status, 403);
	auth_http_resp_free(&r);
}

Test(http, password_login_sets_session_and_redirects)
{
	struct auth_http_resp r;
	struct auth_identity id;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	cr_assert_eq(post_login("Alice", "correct+horse+battery", T0, &r), 303);
	cr_expect_str_eq(hdr(&r, "Location"), "/app");
	auth_http_resp_free(&r);
	cr_assert_eq(auth_session_check(t.ctx, jar, strlen(jar), T0 + 1, &id), AUTH_OK);
	cr_expect_str_eq(id.user, "alice");
	cr_expect_eq(id.level, AUTH_LEVEL_PASSWORD);
	cr_expect(strstr(t.audit, "\"login_success\"") != NULL);
	cr_expect(strstr(t.audit, "correct") == NULL, "password in audit log");
}

static void
code_now(const uint8_t *sec, time_t now, char out[8])
{
	snprintf(out, 8, "%06u", auth_hotp(sec, AUTH_TOTP_SECRET, (uint64_t)now / 30, 6));
}

Test(http, mfa_login_two_steps)
{
	struct auth_http_resp r;
	struct auth_identity id;
	uint8_t sec[AUTH_TOTP_SECRET];
	char csrf[65], body[300], code[8];

	th_add_user(&t, "bob", "correct horse battery", true, sec);
	cr_assert_eq(post_login("bob", "correct+horse+battery", T0, &r), 200);
	cr_expect(strstr(r.body, "<label for=\"code\">") != NULL);
	cr_expect(strstr(jar, "__Host-pbxgate-mfa=") != NULL);
	cr_expect(strstr(jar, "__Host-pbxgate=") == NULL);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	snprintf(body, sizeof(body), "csrf=%s&rd=/app&code=000000", csrf);
	req("POST", "/_pbxgate/login", NULL, body, T0 + 5, &r);
	cr_expect_eq(r.status, 401);
	auth_http_resp_free(&r);
	code_now(sec, T0 + 5, code);
	snprintf(body, sizeof(body), "csrf=%s&rd=/app&code=%s", csrf, code);
	req("POST", "/_pbxgate/login", NULL, body, T0 + 5, &r);
	cr_expect_eq(r.status, 303);
	auth_http_resp_free(&r);
	cr_assert_eq(auth_session_check(t.ctx, jar, strlen(jar), T0 + 6, &id), AUTH_OK);
	cr_expect(id.mfa);
	cr_expect(strstr(jar, "__Host-pbxgate-mfa=") == NULL);
}

Test(http, mfa_pending_cookie_expires)
{
	struct auth_http_resp r;
	uint8_t sec[AUTH_TOTP_SECRET];
	char csrf[65], body[300], code[8];

	th_add_user(&t, "bob", "correct horse battery", true, sec);
	cr_assert_eq(post_login("bob", "correct+horse+battery", T0, &r), 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	code_now(sec, T0 + 400, code);
	snprintf(body, sizeof(body), "csrf=%s&code=%s", csrf, code);
	req("POST", "/_pbxgate/login", NULL, body, T0 + 400, &r);
	cr_expect_eq(r.status, 401);
	auth_http_resp_free(&r);
}

/* Same status and same page for an unknown user and a wrong password. */
Test(http, unknown_user_same_answer_as_wrong_password)
{
	struct auth_http_resp a, b;
	char *pa, *pb;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	cr_assert_eq(post_login("alice", "wrong+password+1", T0, &a), 401);
	cr_assert_eq(post_login("zelda", "wrong+password+1", T0 + 100, &b), 401);
	pa = strstr(a.body, "value=\"alice\"");
	pb = strstr(b.body, "value=\"zelda\"");
	cr_assert(pa != NULL && pb != NULL);
	pb[7] = 'a'; pb[8] = 'l'; pb[9] = 'i'; pb[10] = 'c'; pb[11] = 'e';
	cr_expect_str_eq(a.body, b.body);
	cr_expect_eq(a.nhdr, b.nhdr);
	auth_http_resp_free(&a);
	auth_http_resp_free(&b);
}

/* The process's CPU time, all threads: these tests compare the work two
 * paths do, which wall time measures only on an idle machine (CI runs
 * other jobs beside; one answer stretched to twice its pair's time). */
static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reopens t.ctx at Argon2 cost m KiB, t passes, one lane. */
static void
reopen_at(uint32_t m, uint32_t passes)
{
	th_close(&t);
	t.s.argon2_m_kib = m;
	t.s.argon2_t = passes;
	t.s.argon2_p = 1;
	th_open(&t);
}

/* Opening a login context does no Argon2 work (it made one hash per
 * context: per site, at every start and reload): with a cost of about a
 * second, the open takes under a tenth of one hash. */
Test(http, open_does_no_argon2_work, .timeout = 60)
{
	char phc[AUTH_PHC_MAX], err[256];
	double t0, cost, open;

	th_close(&t);
	t0 = cpu_s();
	cr_assert_eq(auth_pw_hash(65536, 16, 1, "x", 1, phc, err, sizeof(err)), 0,
	    "%s", err);
	cost = cpu_s() - t0;
	cr_assert(cost > 0.2, "a hash took %.3f s: not a cost to measure against", cost);
	t0 = cpu_s();
	reopen_at(65536, 16);
	open = cpu_s() - t0;
	cr_expect(open < cost / 10, "auth_open took %.3f s, one hash %.3f s", open, cost);
}

/* An unknown name costs one full Argon2 run, as a wrong password does,
 * the first time after the open too (nothing is computed on first use). */
Test(http, unknown_user_costs_one_verification, .timeout = 60)
{
	struct auth_http_resp r;
	double unk[3], kn[3], t0, kmin = 1e9, kmax = 0, umin = 1e9;

	reopen_at(16384, 8);
	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "zelda%d", i);
		t0 = cpu_s();
		cr_assert_eq(post_login(name, "wrong+password+1", T0 + i * 1000, &r), 401);
		unk[i] = cpu_s() - t0;
		auth_http_resp_free(&r);
		t0 = cpu_s();
		cr_assert_eq(post_login("alice", "wrong+password+1", T0 + i * 1000 + 500, &r), 401);
		kn[i] = cpu_s() - t0;
		auth_http_resp_free(&r);
	}
	for (int i = 0; i < 3; i++) {
		kmin = kn[i] < kmin ? kn[i] : kmin;
		kmax = kn[i] > kmax ? kn[i] : kmax;
		umin = unk[i] < umin ? unk[i] : umin;
	}
	cr_expect(umin > kmin / 2, "unknown %.3f s, wrong password %.3f s", umin, kmin);
	cr_expect(unk[0] < kmax * 1.8, "first unknown %.3f s, wrong password %.3f s",
	    unk[0], kmax);
}

Test(http, five_failures_then_ban_then_release)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(post_login("alice", "nope+nope+nope", T0 + i * 70, &r), 401);
		auth_http_resp_free(&r);
	}
	cr_expect(strstr(t.audit, "\"login_ban\"") != NULL);
	cr_expect_eq(post_login("alice", "correct+horse+battery", T0 + 400, &r), 401,
	    "banned user let in");
	auth_http_resp_free(&r);
	cr_expect_eq(post_login("alice", "correct+horse+battery",
	    T0 + 280 + t.s.login_ban_time + 1, &r), 303);
	auth_http_resp_free(&r);
}

Test(http, ban_survives_restart)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	for (int i = 0; i < 5; i++) {
		post_login("alice", "nope+nope+nope", T0 + i * 70, &r);
		auth_http_resp_free(&r);
	}
	th_close(&t);
	th_open(&t);
	cr_expect_eq(post_login("alice", "correct+horse+battery", T0 + 400, &r), 401);
	auth_http_resp_free(&r);
}

Test(http, backoff_blocks_rapid_retry)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	post_login("alice", "nope+nope+nope", T0, &r);
	auth_http_resp_free(&r);
	post_login("alice", "nope+nope+nope", T0, &r);
	auth_http_resp_free(&r);
	/* two failures: the next attempt within a second is refused */
	cr_expect_eq(post_login("alice", "correct+horse+battery", T0, &r), 401);
	auth_http_resp_free(&r);
}

Test(http, rehash_on_login_when_params_changed)
{
	struct auth_http_resp r;
	struct auth_user u;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	th_close(&t);
	t.s.argon2_m_kib = 128;
	th_open(&t);
	cr_assert_eq(post_login("alice", "correct+horse+battery", T0, &r), 303);
	auth_http_resp_free(&r);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_user_get(t.ctx, "alice", 0, &u), 0);
	pthread_mutex_unlock(&t.ctx->db_mu);
	cr_expect(strstr(u.pw, "m=128,") != NULL, "%s", u.pw);
}

struct rd_case { const char *rd; bool safe; };
static const struct rd_case rd_cases[] = {
	{ "/", true }, { "/app/x?y=1#z", true }, { "/%2F%2Fevil", true },
	{ "//evil", false }, { "/\\evil", false }, { "https://x", false },
	{ "http:/x", false }, { "%2F%2Fevil", false }, { "javascript:alert(1)", false },
	{ "", false }, { "evil", false }, { "/\tevil", false }, { "/x\r\nSet-Cookie:a=b", false },
	{ "/a\\b", false }, { "///evil", false }, { "/ evil", false }, { "/\x7f", false },
	{ "/caf\xc3\xa9", false },
};

Test(http, rd_open_redirect_table)
{
	for (size_t i = 0; i < sizeof(rd_cases) / sizeof(rd_cases[0]); i++)
		cr_expect_eq(auth_rd_is_safe(rd_cases[i].rd), rd_cases[i].safe, "rd=%s",
		    rd_cases[i].rd);
}

Test(http, unsafe_rd_becomes_root_after_login)
{
	struct auth_http_resp r;
	char csrf[65], body[300];

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	get_login(csrf);
	snprintf(body, sizeof(body), "csrf=%s&rd=%%2F%%2Fevil.example&username=alice"
	    "&password=correct+horse+battery", csrf);
	req("POST", "/_pbxgate/login", NULL, body, T0, &r);
	cr_expect_eq(r.status, 303);
	cr_expect_str_eq(hdr(&r, "Location"), "/");
	auth_http_resp_free(&r);
}

Test(http, case_folding_collision)
{
	char a[AUTH_NAME_MAX + 1], b[AUTH_NAME_MAX + 1];

	cr_assert_eq(auth_name_fold("Admin", a), 0);
	cr_assert_eq(auth_name_fold("admin", b), 0);
	cr_expect_str_eq(a, b);
	th_add_user(&t, "admin", "correct horse battery", false, NULL);
	pthread_mutex_lock(&t.ctx->db_mu);
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(t.ctx->db, "INSERT INTO users(name, created, updated)"
	    " VALUES(?1, 0, 0)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	cr_expect_eq(sqlite3_step(st), SQLITE_CONSTRAINT_UNIQUE);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&t.ctx->db_mu);
}

Test(http, names_outside_the_safe_set_refused)
{
	const char *bad[] = { "", "-lead", ".dot", "a b", "caf\xc3\xa9", "\357\274\241dmin",	/* fullwidth A + "dmin" */
	    "a/b", "a\"b", "0123456789012345678901234567890123456789012345678901234567890123456789" };
	char out[AUTH_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(auth_name_fold(bad[i], out), -1, "%s", bad[i]);
}

static void
login_ok(const char *user)
{
	struct auth_http_resp r;

	cr_assert_eq(post_login(user, "correct+horse+battery", T0, &r), 303);
	auth_http_resp_free(&r);
}

Test(http, password_change_revokes_other_sessions)
{
	struct auth_http_resp r;
	struct auth_identity id;
	char other[2048], csrf[65], body[400];

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	snprintf(other, sizeof(other), "%s", jar);
	login_ok("alice");
	req("GET", "/_pbxgate/account", NULL, NULL, T0 + 10, &r);
	cr_assert_eq(r.status, 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	snprintf(body, sizeof(body), "csrf=%s&action=password&current=correct+horse+battery"
	    "&new=another+long+one&new2=another+long+one", csrf);
	req("POST", "/_pbxgate/account", NULL, body, T0 + 20, &r);
	cr_expect_eq(r.status, 200);
	auth_http_resp_free(&r);
	cr_expect_eq(auth_session_check(t.ctx, other, strlen(other), T0 + 30, &id), AUTH_REVOKED);
	cr_expect_eq(auth_session_check(t.ctx, jar, strlen(jar), T0 + 30, &id), AUTH_OK,
	    "the browser that changed it keeps a fresh session");
}

Test(http, account_needs_session)
{
	struct auth_http_resp r;

	req("GET", "/_pbxgate/account", NULL, NULL, T0, &r);
	cr_expect_eq(r.status, 303);
	cr_expect_str_eq(hdr(&r, "Location"), "/_pbxgate/login?rd=/_pbxgate/account");
	auth_http_resp_free(&r);
}

static int
save_lockdown_pw(const char *list_enc, bool confirm, const char *pw_enc)
{
	struct auth_http_resp r;
	char csrf[65], body[400];
	int status;

	req("GET", "/_pbxgate/account", NULL, NULL, T0 + 10, &r);
	cr_assert_eq(r.status, 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	snprintf(body, sizeof(body), "csrf=%s&action=lockdown&lockdown=%s%s%s%s", csrf,
	    list_enc, confirm ? "&confirm=1" : "", pw_enc != NULL ? "&current=" : "",
	    pw_enc != NULL ? pw_enc : "");
	req("POST", "/_pbxgate/account", NULL, body, T0 + 20, &r);
	status = r.status;
	auth_http_resp_free(&r);
	return status;
}

static int
save_lockdown(const char *list_enc, bool confirm)
{
	return save_lockdown_pw(list_enc, confirm, "correct+horse+battery");
}

/* issue 12, item 10: the session alone does not change the list */
Test(http, lockdown_change_needs_password)
{
	struct auth_identity id;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	cr_expect_eq(save_lockdown_pw("192.0.2.0%2F24", false, NULL), 401);
	cr_expect_eq(save_lockdown_pw("192.0.2.0%2F24", false, "wrong+password+here"), 401);
	cr_assert_eq(auth_session_check(t.ctx, jar, strlen(jar), T0 + 30, &id), AUTH_OK);
	cr_expect_str_eq(id.lockdown, "");
	cr_expect_eq(save_lockdown("192.0.2.0%2F24", false), 200);
}

Test(http, lockdown_excluding_me_needs_confirm)
{
	struct auth_identity id;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	cr_expect_eq(save_lockdown("198.51.100.0%2F24", false), 409);
	cr_expect_eq(save_lockdown("198.51.100.0%2F24%0D%0A192.0.2.0%2F24", false), 200);
	cr_assert_eq(auth_session_check(t.ctx, jar, strlen(jar), T0 + 30, &id), AUTH_OK);
	cr_expect_str_eq(id.lockdown, "198.51.100.0/24 192.0.2.0/24");
	cr_expect_eq(save_lockdown("198.51.100.0%2F24", true), 200);
}

Test(http, lockdown_bad_cidr_refused)
{
	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	cr_expect_eq(save_lockdown("192.0.2.0%2F33", true), 400);
	cr_expect_eq(save_lockdown("not-an-address", true), 400);
	cr_expect_eq(save_lockdown("192.0.2.10%2F24", true), 400);	/* host bits */
}

Test(http, logout_revokes)
{
	struct auth_http_resp r;
	struct auth_identity id;
	char before[2048], csrf[65], body[200];

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	snprintf(before, sizeof(before), "%s", jar);
	req("GET", "/_pbxgate/logout", NULL, NULL, T0 + 1, &r);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	snprintf(body, sizeof(body), "csrf=%s", csrf);
	req("POST", "/_pbxgate/logout", NULL, body, T0 + 2, &r);
	cr_expect_eq(r.status, 303);
	auth_http_resp_free(&r);
	cr_expect_eq(auth_session_check(t.ctx, before, strlen(before), T0 + 3, &id), AUTH_REVOKED);
	cr_expect(strstr(jar, "__Host-pbxgate=") == NULL);
}

/* ---- enrolment ---- */

static int64_t
enrol_user(const char *name, time_t now, char tok[65])
{
	int64_t uid = th_add_user(&t, name, "unused-initial-pw", false, NULL);

	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(sqlite3_exec(t.ctx->db, "UPDATE users SET pw = ''", NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(auth_enrol_token_new(t.ctx, uid, now, tok), 0);
	pthread_mutex_unlock(&t.ctx->db_mu);
	return uid;
}

static int
enrol_flow(const char *tok, time_t now, struct auth_http_resp *r)
{
	char q[80], csrf[65], b32[64], body[400], code[8];
	uint8_t sec[AUTH_TOTP_SECRET];
	const char *p;

	snprintf(q, sizeof(q), "t=%s", tok);
	req("GET", "/_pbxgate/enrol", q, NULL, now, r);
	if (r->status != 200)
		return r->status;
	cr_expect(strstr(r->body, "<svg") != NULL);
	cr_expect(strstr(r->body, "<code>otpauth://totp/pbxgate:") != NULL);
	csrf_of(r, csrf);
	p = strstr(r->body, "<code>");
	cr_assert_not_null(p);
	snprintf(b32, sizeof(b32), "%.32s", p + 6);
	auth_http_resp_free(r);
	cr_assert_eq(auth_unbase32(b32, sec, sizeof(sec)), AUTH_TOTP_SECRET);
	code_now(sec, now, code);
	snprintf(body, sizeof(body), "csrf=%s&t=%s&password=brand+new+pass&password2="
	    "brand+new+pass&code=%s", csrf, tok, code);
	req("POST", "/_pbxgate/enrol", NULL, body, now, r);
	return r->status;
}

Test(http, enrolment_sets_password_totp_and_recovery)
{
	struct auth_http_resp r;
	struct auth_user u;
	char tok[65];

	enrol_user("carol", T0, tok);
	cr_assert_eq(enrol_flow(tok, T0, &r), 200);
	cr_expect(strstr(r.body, "<li><code>") != NULL);
	auth_http_resp_free(&r);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_user_get(t.ctx, "carol", 0, &u), 0);
	pthread_mutex_unlock(&t.ctx->db_mu);
	cr_expect(u.has_totp);
	cr_expect(auth_pw_verify(u.pw, "brand new pass", 14));
}

Test(http, enrolment_link_single_use)
{
	struct auth_http_resp r;
	char tok[65];

	enrol_user("carol", T0, tok);
	cr_assert_eq(enrol_flow(tok, T0, &r), 200);
	auth_http_resp_free(&r);
	cr_expect_eq(enrol_flow(tok, T0 + 60, &r), 404);
	auth_http_resp_free(&r);
}

Test(http, enrolment_link_expires)
{
	struct auth_http_resp r;
	char tok[65];

	enrol_user("carol", T0, tok);
	cr_expect_eq(enrol_flow(tok, T0 + t.s.enrol_link_lifetime + 1, &r), 404);
	auth_http_resp_free(&r);
}

Test(http, enrolment_bad_token_404)
{
	struct auth_http_resp r;

	req("GET", "/_pbxgate/enrol", "t=zz", NULL, T0, &r);
	cr_expect_eq(r.status, 404);
	auth_http_resp_free(&r);
	req("GET", "/_pbxgate/enrol", NULL, NULL, T0, &r);
	cr_expect_eq(r.status, 404);
	auth_http_resp_free(&r);
}

Test(http, unknown_path_and_method)
{
	struct auth_http_resp r;

	req("GET", "/_pbxgate/nope", NULL, NULL, T0, &r);
	cr_expect_eq(r.status, 404);
	auth_http_resp_free(&r);
	req("DELETE", "/_pbxgate/login", NULL, NULL, T0, &r);
	cr_expect_eq(r.status, 405);
	auth_http_resp_free(&r);
}

Test(http, post_that_is_not_a_form_is_400)
{
	struct auth_http_resp r;
	struct auth_http_req q = { .method = "POST", .path = "/_pbxgate/login",
	    .content_type = "application/json", .body = "{}", .body_len = 2, .now = T0 };

	auth_http_handle(t.ctx, &q, &r);
	cr_expect_eq(r.status, 400);
	auth_http_resp_free(&r);
}

struct loc_case { const char *target, *want; };
static const struct loc_case loc_cases[] = {
	{ "/", "/_pbxgate/login?rd=/" },	/* spelled out: the gateway judges rd */
	{ "/webclient/", "/_pbxgate/login?rd=/webclient/" },
	{ "/a?b=c&d=e", "/_pbxgate/login?rd=/a%3Fb%3Dc%26d%3De" },
	{ "//evil", "/_pbxgate/login" },
	{ "/\\evil", "/_pbxgate/login" },
};

Test(http, login_location_encodes_target)
{
	char buf[256];

	for (size_t i = 0; i < sizeof(loc_cases) / sizeof(loc_cases[0]); i++) {
		cr_assert_gt(auth_login_location(loc_cases[i].target, buf, sizeof(buf)), 0);
		cr_expect_str_eq(buf, loc_cases[i].want);
	}
	cr_expect_eq(auth_login_location("/abcdef", buf, 24), 0);
}

/* rd goes out encoded and comes back through the form decoder intact. */
Test(http, login_location_roundtrip_through_form)
{
	struct auth_http_resp r;
	char buf[256];

	auth_login_location("/a b", buf, sizeof(buf));
	cr_expect_str_eq(buf, "/_pbxgate/login", "a space is not a safe rd byte");
	auth_login_location("/x?y=1&z=%2F", buf, sizeof(buf));
	req("GET", "/_pbxgate/login", strchr(buf, '?') + 1, NULL, T0, &r);
	cr_expect(strstr(r.body, "name=\"rd\" value=\"/x?y=1&amp;z=%2F\"") != NULL, "%s", r.body);
	auth_http_resp_free(&r);
}

Test(http, busy_page_is_503)
{
	struct auth_http_resp r;
	struct auth_http_req q = { .method = "POST", .path = "/_pbxgate/login",
	    .accept_language = "ja" };

	auth_http_busy(&q, &r);
	cr_expect_eq(r.status, 503);
	cr_expect(strstr(r.body, "lang=\"ja\"") != NULL);
	auth_http_resp_free(&r);
}

Test(http, disabled_user_refused_like_wrong_password)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(sqlite3_exec(t.ctx->db, "UPDATE users SET disabled = 1", NULL, NULL, NULL), SQLITE_OK);
	pthread_mutex_unlock(&t.ctx->db_mu);
	cr_expect_eq(post_login("alice", "correct+horse+battery", T0, &r), 401);
	auth_http_resp_free(&r);
}

Test(http, login_from_outside_lockdown_refused)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(sqlite3_exec(t.ctx->db, "UPDATE users SET lockdown = '198.51.100.0/24'", NULL, NULL, NULL), SQLITE_OK);
	pthread_mutex_unlock(&t.ctx->db_mu);
	cr_expect_eq(post_login("alice", "correct+horse+battery", T0, &r), 401);
	auth_http_resp_free(&r);
	inet_pton(AF_INET, "198.51.100.7", &peer.sin_addr);
	cr_expect_eq(post_login("alice", "correct+horse+battery", T0 + 100, &r), 303);
	auth_http_resp_free(&r);
}

Test(http, recovery_code_login_works_once)
{
	struct auth_http_resp r;
	char codes[AUTH_RECOVERY_N][16], csrf[65], body[300];
	uint8_t sec[AUTH_TOTP_SECRET];
	int64_t uid = th_add_user(&t, "bob", "correct horse battery", true, sec);

	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_recovery_new(t.ctx, uid, codes), 0);
	pthread_mutex_unlock(&t.ctx->db_mu);
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(post_login("bob", "correct+horse+battery", T0 + round * 100, &r), 200);
		csrf_of(&r, csrf);
		auth_http_resp_free(&r);
		snprintf(body, sizeof(body), "csrf=%s&code=%s", csrf, codes[3]);
		req("POST", "/_pbxgate/login", NULL, body, T0 + round * 100 + 1, &r);
		cr_expect_eq(r.status, round == 0 ? 303 : 401, "round %d", round);
		auth_http_resp_free(&r);
	}
}

Test(http, totp_code_replay_refused_on_second_login)
{
	struct auth_http_resp r;
	uint8_t sec[AUTH_TOTP_SECRET];
	char csrf[65], body[300], code[8];

	th_add_user(&t, "bob", "correct horse battery", true, sec);
	code_now(sec, T0 + 1, code);
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(post_login("bob", "correct+horse+battery", T0, &r), 200);
		csrf_of(&r, csrf);
		auth_http_resp_free(&r);
		snprintf(body, sizeof(body), "csrf=%s&code=%s", csrf, code);
		req("POST", "/_pbxgate/login", NULL, body, T0 + 1, &r);
		cr_expect_eq(r.status, round == 0 ? 303 : 401, "round %d", round);
		auth_http_resp_free(&r);
	}
}

Test(http, login_page_redirects_when_already_signed_in)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	cr_assert_eq(post_login("alice", "correct+horse+battery", T0, &r), 303);
	auth_http_resp_free(&r);
	req("GET", "/_pbxgate/login", "rd=/webclient/", NULL, T0 + 5, &r);
	cr_expect_eq(r.status, 303);
	cr_expect_str_eq(hdr(&r, "Location"), "/webclient/");
	auth_http_resp_free(&r);
}

Test(http, mfa_target_without_totp_goes_to_mfa_page)
{
	struct auth_http_resp r;
	char csrf[65], body[300];
	struct auth_http_req q;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	get_login(csrf);
	snprintf(body, sizeof(body), "csrf=%s&rd=/admin&username=alice"
	    "&password=correct+horse+battery", csrf);
	q = (struct auth_http_req){ .method = "POST", .path = "/_pbxgate/login",
	    .peer = (const struct sockaddr *)&peer, .cookie = jar,
	    .content_type = "application/x-www-form-urlencoded", .body = body,
	    .body_len = strlen(body), .rd_need = AUTH_LEVEL_MFA, .now = T0 };
	auth_http_handle(t.ctx, &q, &r);
	cr_expect_eq(r.status, 303);
	cr_expect_str_eq(hdr(&r, "Location"), "/_pbxgate/mfa");
	auth_http_resp_free(&r);
}

/* ---- account page actions ---- */

static void
account_csrf(char csrf[65])
{
	struct auth_http_resp r;

	req("GET", "/_pbxgate/account", NULL, NULL, T0 + 10, &r);
	cr_assert_eq(r.status, 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
}

Test(http, account_post_without_csrf_is_403)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	req("POST", "/_pbxgate/account", NULL, "action=lockdown&lockdown=&confirm=1", T0 + 20, &r);
	cr_expect_eq(r.status, 403);
	auth_http_resp_free(&r);
}

Test(http, account_new_recovery_codes_need_password_and_code)
{
	struct auth_http_resp r;
	uint8_t sec[AUTH_TOTP_SECRET];
	char csrf[65], body[300], code[8];

	th_add_user(&t, "bob", "correct horse battery", true, sec);
	cr_assert_eq(post_login("bob", "correct+horse+battery", T0, &r), 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	code_now(sec, T0, code);
	snprintf(body, sizeof(body), "csrf=%s&code=%s", csrf, code);
	req("POST", "/_pbxgate/login", NULL, body, T0, &r);
	cr_assert_eq(r.status, 303);
	auth_http_resp_free(&r);
	account_csrf(csrf);
	snprintf(body, sizeof(body), "csrf=%s&action=recovery&current=correct+horse+battery"
	    "&code=000000", csrf);
	req("POST", "/_pbxgate/account", NULL, body, T0 + 40, &r);
	cr_expect_eq(r.status, 401);
	auth_http_resp_free(&r);
	code_now(sec, T0 + 60, code);
	snprintf(body, sizeof(body), "csrf=%s&action=recovery&current=correct+horse+battery"
	    "&code=%s", csrf, code);
	req("POST", "/_pbxgate/account", NULL, body, T0 + 60, &r);
	cr_expect_eq(r.status, 200);
	cr_expect(strstr(r.body, "<li><code>") != NULL);
	auth_http_resp_free(&r);
}

Test(http, account_totp_reenrol_redirects_to_fresh_link)
{
	struct auth_http_resp r;
	uint8_t sec[AUTH_TOTP_SECRET];
	char csrf[65], body[300], code[8];

	th_add_user(&t, "bob", "correct horse battery", true, sec);
	cr_assert_eq(post_login("bob", "correct+horse+battery", T0, &r), 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	code_now(sec, T0, code);
	snprintf(body, sizeof(body), "csrf=%s&rd=/app&code=%s", csrf, code);
	req("POST", "/_pbxgate/login", NULL, body, T0, &r);
	cr_assert_eq(r.status, 303);
	auth_http_resp_free(&r);
	account_csrf(csrf);
	code_now(sec, T0 + 20, code);
	snprintf(body, sizeof(body), "csrf=%s&action=totp&current=correct+horse+battery"
	    "&code=%s", csrf, code);
	req("POST", "/_pbxgate/account", NULL, body, T0 + 40, &r);
	cr_expect_eq(r.status, 303);
	cr_expect_eq(strncmp(hdr(&r, "Location"), "/_pbxgate/enrol?t=", 18), 0);
	auth_http_resp_free(&r);
}

/* item 13: a first authenticator on the password alone only where the
 * administrator allows it */
static int
first_totp_from_account(bool self_enrol)
{
	struct auth_http_resp r;
	char csrf[65], body[300];
	int status;

	t.s.mfa_self_enrol = self_enrol;
	th_close(&t);
	th_open(&t);
	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	account_csrf(csrf);
	snprintf(body, sizeof(body), "csrf=%s&action=totp&current=correct+horse+battery", csrf);
	req("POST", "/_pbxgate/account", NULL, body, T0 + 20, &r);
	status = r.status;
	if (status == 303)
		cr_expect_eq(strncmp(hdr(&r, "Location"), "/_pbxgate/enrol?t=", 18), 0);
	auth_http_resp_free(&r);
	return status;
}

Test(http, account_first_totp_refused_by_default)
{
	cr_expect_eq(first_totp_from_account(false), 403);
}

Test(http, account_first_totp_with_self_enrol)
{
	cr_expect_eq(first_totp_from_account(true), 303);
}

static int
mfa_page(const char *method, const char *body, struct auth_http_resp *r)
{
	req(method, "/_pbxgate/mfa", NULL, body, T0 + 30, r);
	return r->status;
}

/* item 13: a password session short of MFA, no authenticator: the login
 * page sends to /_pbxgate/mfa, never back to the target */
Test(http, login_get_without_totp_goes_to_mfa_page)
{
	struct auth_http_resp r;
	struct auth_http_req q;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	q = (struct auth_http_req){ .method = "GET", .path = "/_pbxgate/login",
	    .query = "rd=/", .peer = (const struct sockaddr *)&peer, .cookie = jar,
	    .rd_need = AUTH_LEVEL_MFA, .now = T0 + 10 };
	auth_http_handle(t.ctx, &q, &r);
	cr_expect_eq(r.status, 303);
	cr_expect_str_eq(hdr(&r, "Location"), "/_pbxgate/mfa");
	auth_http_resp_free(&r);
	cr_expect_eq(mfa_page("GET", NULL, &r), 403);
	cr_expect(strstr(r.body, "pbxgate user totp-reset") != NULL);
	cr_expect(strstr(r.body, "name=\"current\"") == NULL);
	auth_http_resp_free(&r);
	lang = "ja";
	cr_expect_eq(mfa_page("GET", NULL, &r), 403);
	cr_expect(strstr(r.body, "認証アプリ") != NULL);
	auth_http_resp_free(&r);
}

Test(http, mfa_page_self_enrol_needs_password)
{
	struct auth_http_resp r;
	char csrf[65], body[300];

	t.s.mfa_self_enrol = true;
	th_close(&t);
	th_open(&t);
	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	cr_assert_eq(mfa_page("GET", NULL, &r), 200);
	csrf_of(&r, csrf);
	cr_expect(strstr(r.body, "name=\"current\"") != NULL);
	auth_http_resp_free(&r);
	snprintf(body, sizeof(body), "csrf=%s&current=wrong+password+here", csrf);
	cr_expect_eq(mfa_page("POST", body, &r), 401);
	auth_http_resp_free(&r);
	snprintf(body, sizeof(body), "csrf=%s&current=correct+horse+battery", csrf);
	cr_expect_eq(mfa_page("POST", body, &r), 303);
	cr_expect_eq(strncmp(hdr(&r, "Location"), "/_pbxgate/enrol?t=", 18), 0);
	auth_http_resp_free(&r);
}

Test(http, mfa_page_needs_session_and_a_missing_authenticator)
{
	struct auth_http_resp r;
	uint8_t sec[AUTH_TOTP_SECRET];
	char csrf[65], body[300], code[8];

	cr_expect_eq(mfa_page("GET", NULL, &r), 303);
	cr_expect_str_eq(hdr(&r, "Location"), "/_pbxgate/login");
	auth_http_resp_free(&r);
	th_add_user(&t, "bob", "correct horse battery", true, sec);
	cr_assert_eq(post_login("bob", "correct+horse+battery", T0, &r), 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	cr_expect_eq(mfa_page("GET", NULL, &r), 303);	/* no session yet */
	auth_http_resp_free(&r);
	code_now(sec, T0, code);
	snprintf(body, sizeof(body), "csrf=%s&rd=/app&code=%s", csrf, code);
	req("POST", "/_pbxgate/login", NULL, body, T0, &r);
	cr_assert_eq(r.status, 303);
	auth_http_resp_free(&r);
	/* bob has an authenticator: nothing is missing, the code step works */
	cr_expect_eq(mfa_page("GET", NULL, &r), 303);
	cr_expect_str_eq(hdr(&r, "Location"), "/_pbxgate/login");
	auth_http_resp_free(&r);
}

Test(http, account_revoke_other_session)
{
	struct auth_http_resp r;
	struct auth_identity id;
	char other[2048], csrf[65], body[300];

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	snprintf(other, sizeof(other), "%s", jar);
	cr_assert_eq(auth_session_check(t.ctx, other, strlen(other), T0 + 1, &id), AUTH_OK);
	jar[0] = '\0';
	login_ok("alice");
	account_csrf(csrf);
	snprintf(body, sizeof(body), "csrf=%s&action=revoke&sid=%s", csrf, id.sid);
	req("POST", "/_pbxgate/account", NULL, body, T0 + 20, &r);
	cr_expect_eq(r.status, 200);
	auth_http_resp_free(&r);
	cr_expect_eq(auth_session_check(t.ctx, other, strlen(other), T0 + 30, &id), AUTH_REVOKED);
	cr_expect_eq(auth_session_check(t.ctx, jar, strlen(jar), T0 + 30, &id), AUTH_OK);
}

/* ---- issue 12: step cookie, CSRF binding, address keys ---- */

/* item 7: after a completed login the step cookie is spent */
Test(http, mfa_step_cookie_works_once)
{
	struct auth_http_resp r;
	uint8_t sec[AUTH_TOTP_SECRET];
	char csrf[65], body[300], code[8], step[1024];
	const char *m;

	th_add_user(&t, "bob", "correct horse battery", true, sec);
	cr_assert_eq(post_login("bob", "correct+horse+battery", T0, &r), 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	m = strstr(jar, "__Host-pbxgate-mfa=");
	cr_assert_not_null(m);
	snprintf(step, sizeof(step), "%.*s", (int)strcspn(m, ";"), m);
	code_now(sec, T0 + 5, code);
	snprintf(body, sizeof(body), "csrf=%s&rd=/app&code=%s", csrf, code);
	req("POST", "/_pbxgate/login", NULL, body, T0 + 5, &r);
	cr_assert_eq(r.status, 303);
	auth_http_resp_free(&r);
	/* the same step cookie and the next step's code: no second session */
	jar[0] = '\0';
	get_login(csrf);
	snprintf(jar + strlen(jar), sizeof(jar) - strlen(jar), "; %s", step);
	code_now(sec, T0 + 35, code);
	snprintf(body, sizeof(body), "csrf=%s&rd=/app&code=%s", csrf, code);
	req("POST", "/_pbxgate/login", NULL, body, T0 + 35, &r);
	cr_expect_eq(r.status, 401);
	cr_expect(strstr(jar, "__Host-pbxgate=") == NULL);
	auth_http_resp_free(&r);
}

/* item 7: a wrong code leaves the step for another try */
Test(http, mfa_step_survives_a_typo)
{
	struct auth_http_resp r;
	uint8_t sec[AUTH_TOTP_SECRET];
	char csrf[65], body[300], code[8];

	th_add_user(&t, "bob", "correct horse battery", true, sec);
	cr_assert_eq(post_login("bob", "correct+horse+battery", T0, &r), 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	snprintf(body, sizeof(body), "csrf=%s&rd=/app&code=000000", csrf);
	req("POST", "/_pbxgate/login", NULL, body, T0 + 2, &r);
	cr_expect_eq(r.status, 401);
	auth_http_resp_free(&r);
	code_now(sec, T0 + 5, code);
	snprintf(body, sizeof(body), "csrf=%s&rd=/app&code=%s", csrf, code);
	req("POST", "/_pbxgate/login", NULL, body, T0 + 5, &r);
	cr_expect_eq(r.status, 303);
	auth_http_resp_free(&r);
}

/* item 12: the token depends on the cookie AND the session id */
Test(http, csrf_token_bound_to_session)
{
	const char *ck = "0123456789abcdef0123456789abcdef";
	char a[65], b[65], c[65], d[65];

	auth_csrf_token(t.ctx, ck, 32, "", a);
	auth_csrf_token(t.ctx, ck, 32, "00112233445566778899aabbccddeeff", b);
	auth_csrf_token(t.ctx, ck, 32, "ffeeddccbbaa99887766554433221100", c);
	auth_csrf_token(t.ctx, "1123456789abcdef0123456789abcdef", 32, "", d);
	cr_expect_eq(strlen(a), 64);
	cr_expect_str_neq(a, b);
	cr_expect_str_neq(b, c);
	cr_expect_str_neq(a, d);
	auth_csrf_token(t.ctx, ck, 32, "00112233445566778899aabbccddeeff", d);
	cr_expect_str_eq(b, d);
}

/* item 12: a token minted for a planted cookie before login is refused
 * once the victim is signed in */
Test(http, csrf_planted_before_login_fails_after)
{
	struct auth_http_resp r;
	char planted[65], body[200];

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	get_login(planted);	/* what the attacker read with the cookie */
	login_ok("alice");	/* the victim signs in with that cookie */
	snprintf(body, sizeof(body), "csrf=%s", planted);
	req("POST", "/_pbxgate/logout", NULL, body, T0 + 2, &r);
	cr_expect_eq(r.status, 403);
	auth_http_resp_free(&r);
}

/* item 12: after an account change renews the session, the page shown
 * carries tokens for the new session */
Test(http, csrf_token_follows_renewed_session)
{
	struct auth_http_resp r;
	char csrf[65], body[300];

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	login_ok("alice");
	account_csrf(csrf);
	snprintf(body, sizeof(body), "csrf=%s&action=lockdown&lockdown=192.0.2.0%%2F24"
	    "&current=correct+horse+battery", csrf);
	req("POST", "/_pbxgate/account", NULL, body, T0 + 20, &r);
	cr_assert_eq(r.status, 200);
	csrf_of(&r, csrf);
	auth_http_resp_free(&r);
	snprintf(body, sizeof(body), "csrf=%s&action=revoke&sid=%032d", csrf, 0);
	req("POST", "/_pbxgate/account", NULL, body, T0 + 25, &r);
	cr_expect_eq(r.status, 200);
	auth_http_resp_free(&r);
}

static void
key_of(const char *ip, char out[96])
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else {
		cr_assert_eq(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		ss.ss_family = AF_INET6;
	}
	auth_reg_addr_key((const struct sockaddr *)&ss, out, 96);
}

/* item 8a: IPv4-mapped peers are keyed as the IPv4 client they are */
Test(http, regulation_keys)
{
	static const struct { const char *ip, *key; } tab[] = {
		{ "192.0.2.1", "a:192.0.2.1" },
		{ "::ffff:192.0.2.1", "a:192.0.2.1" },
		{ "::ffff:192.0.2.2", "a:192.0.2.2" },
		{ "2001:db8:1:2:3:4:5:6", "a:2001:db8:1:2::/64" },
		{ "2001:db8:1:2:ffff:ffff:ffff:ffff", "a:2001:db8:1:2::/64" },
		{ "2001:db8:1:3::1", "a:2001:db8:1:3::/64" },
		{ "::192.0.2.1", "a:::/64" },	/* deprecated compatible form: IPv6 */
		{ "::1", "a:::/64" },
	};
	char k[96];

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		key_of(tab[i].ip, k);
		cr_expect_str_eq(k, tab[i].key, "%s", tab[i].ip);
	}
	auth_reg_addr_key(NULL, k, sizeof(k));
	cr_expect_str_eq(k, "a:unknown");
}

/* item 9: one's own successful login leaves the address counter alone */
Test(http, own_login_does_not_clear_address_counter)
{
	struct auth_http_resp r;

	th_add_user(&t, "alice", "correct horse battery", false, NULL);
	t.s.login_max_failures = 3;
	th_close(&t);
	th_open(&t);
	cr_expect_eq(post_login("ghost1", "wrong+password+one", T0, &r), 401);
	auth_http_resp_free(&r);
	jar[0] = '\0';
	cr_expect_eq(post_login("alice", "correct+horse+battery", T0 + 1, &r), 303);
	auth_http_resp_free(&r);
	jar[0] = '\0';
	cr_expect_eq(post_login("ghost2", "wrong+password+two", T0 + 2, &r), 401);
	auth_http_resp_free(&r);
	jar[0] = '\0';
	cr_expect_eq(post_login("ghost3", "wrong+password+three", T0 + 10, &r), 401);
	auth_http_resp_free(&r);
	cr_expect(strstr(t.audit, "\"login_ban\"") != NULL, "no address ban: %s", t.audit);
	jar[0] = '\0';
	cr_expect_eq(post_login("alice", "correct+horse+battery", T0 + 20, &r), 401);
	auth_http_resp_free(&r);
}

Test(http, mfa_self_enrol_keyword)
{
	struct auth_settings s;
	char err[256], *yes[] = { "yes" }, *no[] = { "no" }, *on[] = { "on" },
	    *off[] = { "off" }, *bad[] = { "maybe" };
	int badarg;

	auth_settings_defaults(&s);
	cr_expect(!s.mfa_self_enrol);
	cr_expect_eq(pol_kw_run(&auth_kwtab, &s, "/", "mfa_self_enrol", 1, yes,
	    &badarg, err, sizeof(err)), 0);
	cr_expect(s.mfa_self_enrol);
	cr_expect_eq(pol_kw_run(&auth_kwtab, &s, "/", "mfa_self_enrol", 1, no,
	    &badarg, err, sizeof(err)), 0);
	cr_expect(!s.mfa_self_enrol);
	/* one boolean grammar for the whole file: on/off as for hsts */
	cr_expect_eq(pol_kw_run(&auth_kwtab, &s, "/", "mfa_self_enrol", 1, on,
	    &badarg, err, sizeof(err)), 0, "%s", err);
	cr_expect(s.mfa_self_enrol);
	cr_expect_eq(pol_kw_run(&auth_kwtab, &s, "/", "mfa_self_enrol", 1, off,
	    &badarg, err, sizeof(err)), 0, "%s", err);
	cr_expect(!s.mfa_self_enrol);
	cr_expect_eq(pol_kw_run(&auth_kwtab, &s, "/", "mfa_self_enrol", 1, bad,
	    &badarg, err, sizeof(err)), -1);
	cr_expect_eq(badarg, 0);
	cr_expect_str_eq(err, "expected on or off, not \"maybe\"");
	auth_settings_free(&s);
}

/* ---- branding: title and totp_issuer ---- */

Test(http, title_shown_escaped_on_pages)
{
	struct auth_http_resp r;

	snprintf(t.ctx->s.title, sizeof(t.ctx->s.title), "Acme <PBX>");
	req("GET", "/_pbxgate/login", NULL, NULL, T0, &r);
	cr_assert_eq(r.status, 200);
	cr_expect(strstr(r.body, "<title>Sign in - Acme &lt;PBX&gt;</title>")
	    != NULL, "%s", r.body);
	cr_expect(strstr(r.body, "<p class=\"brand\">Acme &lt;PBX&gt;</p><h1>"
	    "Sign in</h1>") != NULL, "%s", r.body);
	auth_http_resp_free(&r);
}

Test(http, no_title_leaves_pages_as_they_were)
{
	struct auth_http_resp r;

	req("GET", "/_pbxgate/login", NULL, NULL, T0, &r);
	cr_assert_eq(r.status, 200);
	cr_expect(strstr(r.body, "<title>Sign in</title>") != NULL);
	cr_expect(strstr(r.body, "class=\"brand\"") == NULL);
	auth_http_resp_free(&r);
}

Test(http, totp_issuer_in_the_enrolment_uri)
{
	struct auth_http_resp r;
	char tok[65], q[80];

	snprintf(t.ctx->s.totp_issuer, sizeof(t.ctx->s.totp_issuer),
	    "Acme PBX");
	enrol_user("carol", T0, tok);
	snprintf(q, sizeof(q), "t=%s", tok);
	req("GET", "/_pbxgate/enrol", q, NULL, T0, &r);
	cr_assert_eq(r.status, 200);
	cr_expect(strstr(r.body, "otpauth://totp/Acme%20PBX:carol?secret=")
	    != NULL, "%s", r.body);
	cr_expect(strstr(r.body, "issuer=Acme%20PBX&amp;algorithm=") != NULL,
	    "%s", r.body);
	auth_http_resp_free(&r);
}
