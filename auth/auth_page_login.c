/* auth_page_login.c -- /_pbxgate/login (password, then code) and /_pbxgate/logout. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth_priv.h"
#include "policy/policy.h"

#define MFA_COOKIE  "__Host-pbxgate-mfa"
#define MFA_PURPOSE "pbxgate-mfa"

struct pending {	/* sealed into MFA_COOKIE between the two steps */
	int64_t  uid;
	uint32_t epoch;
	int64_t  time;
	uint8_t  nonce[16];	/* spent in the store by the step it ends */
};

/* The redirect target from the form (POST) or the query (GET); "/" when
 * missing or unsafe. Copies into out. */
static void
get_rd(struct auth_page *pg, char *out, size_t len)
{
	const char *rd = auth_form_get(&pg->form, "rd");
	struct auth_form q = { 0 };

	if (rd == NULL && pg->req->query != NULL &&
	    auth_form_parse(pg->req->query, strlen(pg->req->query), &q) == 0)
		rd = auth_form_get(&q, "rd");
	snprintf(out, len, "%s", auth_rd_is_safe(rd) && strlen(rd) < len ? rd : "/");
	auth_form_free(&q);
}

static void
form_login(struct auth_page *pg, int status, const char *rd, const char *user,
    enum auth_msg err)
{
	struct auth_buf b = { 0 };
	enum auth_lang l = pg->lang;

	auth_page_begin(&b, pg->c, l, auth_msg(l, M_TITLE_LOGIN));
	if (err != M_COUNT)
		auth_buf_addf(&b, "<p class=\"err\" role=\"alert\">%s</p>", auth_msg(l, err));
	auth_buf_add(&b, "<form method=\"post\" action=\"/_pbxgate/login\">");
	auth_csrf_field(pg, &b);
	auth_buf_add(&b, "<input type=\"hidden\" name=\"rd\" value=\"");
	auth_buf_esc(&b, rd);
	auth_buf_addf(&b, "\"><label for=\"username\">%s</label>"
	    "<input id=\"username\" name=\"username\" autocomplete=\"username\" "
	    "autocapitalize=\"none\" required maxlength=\"64\" value=\"",
	    auth_msg(l, M_USERNAME));
	auth_buf_esc(&b, user != NULL ? user : "");
	auth_buf_addf(&b, "\"><label for=\"password\">%s</label>"
	    "<input id=\"password\" name=\"password\" type=\"password\" "
	    "autocomplete=\"current-password\" required maxlength=\"1024\">"
	    "<p><button type=\"submit\">%s</button></p></form>",
	    auth_msg(l, M_PASSWORD), auth_msg(l, M_SIGN_IN));
	auth_page_end(&b, l, pg->req->request_id);
	auth_resp_html(pg->c, pg->resp, status, &b);
}

static void
form_code(struct auth_page *pg, int status, const char *rd, enum auth_msg err)
{
	struct auth_buf b = { 0 };
	enum auth_lang l = pg->lang;

	auth_page_begin(&b, pg->c, l, auth_msg(l, M_TITLE_LOGIN));
	if (err != M_COUNT)
		auth_buf_addf(&b, "<p class=\"err\" role=\"alert\">%s</p>", auth_msg(l, err));
	auth_buf_add(&b, "<form method=\"post\" action=\"/_pbxgate/login\">");
	auth_csrf_field(pg, &b);
	auth_buf_add(&b, "<input type=\"hidden\" name=\"rd\" value=\"");
	auth_buf_esc(&b, rd);
	auth_buf_addf(&b, "\"><label for=\"code\">%s</label><p>%s</p>"
	    "<input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" "
	    "inputmode=\"numeric\" required maxlength=\"16\" autofocus>"
	    "<p><button type=\"submit\">%s</button></p></form>",
	    auth_msg(l, M_CODE), auth_msg(l, M_CODE_HINT), auth_msg(l, M_VERIFY));
	auth_page_end(&b, l, pg->req->request_id);
	auth_resp_html(pg->c, pg->resp, status, &b);
}

static void
record_login(struct auth_ctx *c, int64_t uid, const struct sockaddr *peer,
    time_t now, bool ok)
{
	char ip[64];
	uint8_t r;

	pol_addr_peer_text(peer, ip, sizeof(ip));
	(void)c->store->login_add(c, uid, (int64_t)now, ip, ok);
	if (auth_random(&r, 1) == 0 && r % 64 == 0)	/* amortised pruning */
		(void)c->store->login_prune(c, (int64_t)now - 90 * 86400);
}

/* Counts one failure against the user name and the address; audits. */
static void
fail_count(struct auth_page *pg, const char *ukey, int64_t uid, const char *user)
{
	struct auth_ctx *c = pg->c;
	char akey[96];
	int ub, ab;

	auth_reg_addr_key(pg->req->peer, akey, sizeof(akey));
	auth_store_lock(c);
	if (auth_store_begin(c) == 0) {
		ub = auth_reg_fail(c, ukey, pg->now);
		ab = auth_reg_fail(c, akey, pg->now);
		if (uid > 0)
			record_login(c, uid, pg->req->peer, pg->now, false);
		if (auth_store_commit(c) < 0)
			auth_store_rollback(c);
		if (ub == 1)
			auth_audit(c, "login_ban", user, pg->req, "user");
		if (ab == 1)
			auth_audit(c, "login_ban", user, pg->req, "address");
	}
	auth_store_unlock(c);
	auth_audit(c, "login_failure", user, pg->req, NULL);
}

static void
set_session(struct auth_page *pg, const struct auth_user *u, enum auth_level lvl,
    const char *rd)
{
	struct auth_ctx *c = pg->c;
	char sc[512], ukey[96], err[128];
	int rc;

	snprintf(ukey, sizeof(ukey), "u:%s", u->name);
	auth_store_lock(c);
	rc = auth_store_begin(c);
	if (rc == 0) {
		/* only the name that proved itself: the address counter
		 * decays on its own, or any account holder could spray
		 * guesses at other names between logins of their own */
		auth_reg_clear(c, ukey);
		record_login(c, u->id, pg->req->peer, pg->now, true);
		rc = auth_session_new(c, u, lvl, pg->req->peer, pg->now, sc, sizeof(sc), NULL);
		if (rc == 0)
			rc = auth_store_commit(c);
		if (rc < 0)
			auth_store_rollback(c);
	}
	auth_store_unlock(c);
	if (rc < 0) {
		auth_resp_text(pg->resp, 500, "cannot record the session; try again\n");
		return;
	}
	/* a user the CLI added since the last refresh is not in the tables
	 * yet: without this the new session is refused until the next tick */
	(void)auth_store_reload(c, false, err, sizeof(err));
	auth_audit(c, "login_success", u->name, pg->req,
	    lvl == AUTH_LEVEL_MFA ? "mfa" : "password");
	auth_resp_redirect(pg->resp, 303, rd);
	auth_resp_header(pg->resp, "Set-Cookie", sc);
	auth_resp_header(pg->resp, "Set-Cookie", MFA_COOKIE "=; Path=/; Secure; "
	    "HttpOnly; SameSite=Strict; Max-Age=0");
	OPENSSL_cleanse(sc, sizeof(sc));
}

/* Argon2 again at the new cost, outside the lock; stored only if the hash
 * did not change meanwhile. */
static void
maybe_rehash(struct auth_ctx *c, const struct auth_user *u, const char *pw)
{
	char phc[AUTH_PHC_MAX], err[128];

	if (!auth_pw_needs_rehash(u->pw, c->s.argon2_m_kib, c->s.argon2_t, c->s.argon2_p))
		return;
	if (auth_pw_hash(c->s.argon2_m_kib, c->s.argon2_t, c->s.argon2_p, pw,
	    strlen(pw), phc, err, sizeof(err)) < 0)
		return;
	auth_store_lock(c);
	(void)c->store->pw_rehash(c, u->id, phc, u->pw);
	auth_store_unlock(c);
}

/* Step 1. Every path costs one Argon2 verification: unknown, disabled,
 * banned and wrong-password answers are the same page and status. */
static void
post_password(struct auth_page *pg, const char *rd)
{
	struct auth_ctx *c = pg->c;
	const char *user = auth_form_get(&pg->form, "username");
	const char *pw = auth_form_get(&pg->form, "password");
	char folded[AUTH_NAME_MAX + 1] = "", ukey[96], akey[96];
	struct auth_user u;
	bool known = false, blocked = true, ok;
	int found;

	if (user == NULL || pw == NULL || strlen(pw) > AUTH_PW_MAX) {
		form_login(pg, 400, rd, user, M_BAD_LOGIN);
		return;
	}
	if (auth_name_fold(user, folded) < 0)
		snprintf(folded, sizeof(folded), "-invalid-");
	snprintf(ukey, sizeof(ukey), "u:%s", folded);
	auth_reg_addr_key(pg->req->peer, akey, sizeof(akey));
	auth_store_lock(c);
	blocked = auth_reg_blocked(c, ukey, pg->now) || auth_reg_blocked(c, akey, pg->now);
	found = auth_user_get(c, folded, 0, &u);
	known = found == 0 && u.pw[0] != '\0' && !u.disabled;
	auth_store_unlock(c);
	if (found < 0) {
		auth_page_store_down(pg, M_TITLE_LOGIN);
		return;
	}
	ok = known && auth_pw_verify(u.pw, pw, strlen(pw));
	/* the same Argon2 work for a name that cannot log in; refused
	 * whatever it returns (a failure, out of memory, only refuses) */
	if (!known)
		(void)auth_pw_burn(c->s.argon2_m_kib, c->s.argon2_t,
		    c->s.argon2_p, pw, strlen(pw));
	/* the lockdown is enforced per request too; refusing here as well keeps
	 * a session from being made where it could never be used */
	if (ok && known && !auth_ip_in_list(pg->req->peer, u.lockdown))
		ok = false;
	if (!ok || !known || blocked) {
		fail_count(pg, ukey, known ? u.id : 0, folded);
		form_login(pg, 401, rd, user, M_BAD_LOGIN);
		return;
	}
	maybe_rehash(c, &u, pw);
	if (!u.has_totp) {
		/* the target needs MFA this user cannot give yet: the page
		 * that says so (and what to do), never back into the login */
		set_session(pg, &u, AUTH_LEVEL_PASSWORD,
		    pg->req->rd_need == AUTH_LEVEL_MFA ? AUTH_PREFIX "mfa" : rd);
		return;
	}
	struct pending p = { .uid = u.id, .epoch = u.epoch, .time = pg->now };
	char tok[300], sc[400];
	int rc;

	auth_store_lock(c);
	rc = auth_mfa_pending_new(c, u.id, pg->now, p.nonce);
	auth_store_unlock(c);
	if (rc < 0 || auth_token_seal(c, MFA_PURPOSE, &p, sizeof(p), tok, sizeof(tok)) < 0) {
		auth_resp_text(pg->resp, 500, "internal error\n");
		return;
	}
	snprintf(sc, sizeof(sc), MFA_COOKIE "=%s; Path=/; Secure; HttpOnly; "
	    "SameSite=Strict; Max-Age=%d", tok, AUTH_MFA_PENDING);
	auth_resp_header(pg->resp, "Set-Cookie", sc);
	form_code(pg, 200, rd, M_COUNT);
}

/* Step 2: the pending cookie proves step 1 for this user within 5 min. */
static void
post_code(struct auth_page *pg, const char *rd)
{
	struct auth_ctx *c = pg->c;
	const char *code = auth_form_get(&pg->form, "code"), *v = NULL;
	const char *hdr = pg->req->cookie;
	ssize_t n = auth_cookie_find(hdr, hdr ? strlen(hdr) : 0, MFA_COOKIE, &v);
	struct pending p;
	struct auth_user u;
	char ukey[96], akey[96];
	bool ok = false;
	int found;

	if (n < 0 || auth_token_open(c, MFA_PURPOSE, v, (size_t)n, &p, sizeof(p)) < 0 ||
	    pg->now - p.time > AUTH_MFA_PENDING || p.time > pg->now + 60) {
		form_login(pg, 401, rd, NULL, M_BAD_LOGIN);
		return;
	}
	auth_reg_addr_key(pg->req->peer, akey, sizeof(akey));
	auth_store_lock(c);
	found = auth_user_get(c, NULL, p.uid, &u);
	if (found == 0 && u.epoch == p.epoch && !u.disabled) {
		snprintf(ukey, sizeof(ukey), "u:%s", u.name);
		/* the step cookie works once: a completed login spends its
		 * nonce, so the cookie and a later code cannot open another */
		ok = !auth_reg_blocked(c, ukey, pg->now) && !auth_reg_blocked(c, akey, pg->now) &&
		    auth_mfa_pending_live(c, u.id, pg->now, p.nonce) &&
		    auth_second_factor(c, &u, code, pg->now) &&
		    auth_mfa_pending_take(c, u.id, pg->now, p.nonce);
	} else
		snprintf(ukey, sizeof(ukey), "u:-gone-");
	auth_store_unlock(c);
	if (found < 0) {
		auth_page_store_down(pg, M_TITLE_LOGIN);
		return;
	}
	if (!ok) {
		fail_count(pg, ukey, u.id, u.name);
		form_code(pg, 401, rd, M_BAD_CODE);
		return;
	}
	set_session(pg, &u, AUTH_LEVEL_MFA, rd);
}

/* A GET with a session: well enough signed in for the target, go there;
 * short of MFA with no authenticator to give it, the page that says so
 * (a password form would only lead back here). */
static bool
get_signed_in(struct auth_page *pg, const char *rd)
{
	struct auth_ctx *c = pg->c;
	const char *h = pg->req->cookie;
	struct auth_identity id;
	struct auth_user u;
	bool has_totp = true;

	if (h == NULL || auth_session_check(c, h, strlen(h), pg->now, &id) != AUTH_OK)
		return false;
	if (id.level >= (pg->req->rd_need == AUTH_LEVEL_MFA ? AUTH_LEVEL_MFA :
	    AUTH_LEVEL_PASSWORD)) {
		auth_resp_redirect(pg->resp, 303, rd);
		return true;
	}
	auth_store_lock(c);
	if (auth_user_get(c, NULL, id.uid, &u) == 0)
		has_totp = u.has_totp;
	auth_store_unlock(c);
	if (has_totp)
		return false;
	auth_resp_redirect(pg->resp, 303, AUTH_PREFIX "mfa");
	return true;
}

void
auth_page_login(struct auth_page *pg)
{
	char rd[2100];

	get_rd(pg, rd, sizeof(rd));
	if (strcmp(pg->req->method, "POST") != 0) {
		if (!get_signed_in(pg, rd))
			form_login(pg, 200, rd, NULL, M_COUNT);
		return;
	}
	if (auth_form_get(&pg->form, "code") != NULL)
		post_code(pg, rd);
	else
		post_password(pg, rd);
}

void
auth_page_logout(struct auth_page *pg)
{
	struct auth_ctx *c = pg->c;
	struct auth_identity id;
	struct auth_buf b = { 0 };
	const char *hdr = pg->req->cookie;
	char err[128];
	enum auth_lang l = pg->lang;

	if (strcmp(pg->req->method, "POST") == 0) {
		int rc = 0;

		if (hdr != NULL && auth_session_check(c, hdr, strlen(hdr), pg->now, &id) == AUTH_OK) {
			auth_store_lock(c);
			rc = auth_session_revoke(c, id.uid, id.sid);
			auth_store_unlock(c);
			if (rc >= 0) {
				(void)auth_store_reload(c, false, err, sizeof(err));
				auth_audit(c, "logout", id.user, pg->req, NULL);
			}
		}
		/* The browser forgets the cookie either way; when the store did
		 * not record the revocation the page says so instead of
		 * pretending the session ended everywhere. */
		if (rc < 0)
			auth_page_store_down(pg, M_TITLE_LOGOUT);
		else
			auth_resp_redirect(pg->resp, 303, AUTH_PREFIX "login");
		auth_resp_header(pg->resp, "Set-Cookie", AUTH_COOKIE_NAME "=; Path=/; "
		    "Secure; HttpOnly; SameSite=Lax; Max-Age=0");
		return;
	}
	auth_page_begin(&b, pg->c, l, auth_msg(l, M_TITLE_LOGOUT));
	auth_buf_add(&b, "<form method=\"post\" action=\"/_pbxgate/logout\">");
	auth_csrf_field(pg, &b);
	auth_buf_addf(&b, "<button type=\"submit\">%s</button></form>", auth_msg(l, M_SIGN_OUT));
	auth_page_end(&b, l, pg->req->request_id);
	auth_resp_html(c, pg->resp, 200, &b);
}
