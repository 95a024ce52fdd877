/* auth_page_account.c -- /_pbxgate/account: sessions, logins, password, TOTP, lockdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth_priv.h"

#define LIST_MAX 20

struct list_arg {
	struct auth_page *pg;
	struct auth_buf *b;
	const struct auth_identity *id;
};

static void
when_text(int64_t t, char when[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(when, 32, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(when, 32, "-");
}

static void
session_item(void *arg, const struct auth_session_row *r)
{
	struct list_arg *la = arg;
	struct auth_buf *b = la->b;
	enum auth_lang l = la->pg->lang;
	char when[32];

	if (strlen(r->sid) != 32)
		return;
	when_text(r->created, when);
	auth_buf_addf(b, "<li>%s &middot; ", when);
	auth_buf_esc(b, r->ip);
	if (strcmp(r->sid, la->id->sid) == 0)
		auth_buf_addf(b, " (%s)", auth_msg(l, M_THIS_SESSION));
	auth_buf_add(b, "<form method=\"post\" action=\"/_pbxgate/account\">");
	auth_csrf_field(la->pg, b);
	auth_buf_addf(b, "<input type=\"hidden\" name=\"action\" value=\"revoke\">"
	    "<input type=\"hidden\" name=\"sid\" value=\"%s\">"
	    "<button type=\"submit\">%s</button></form></li>", r->sid,
	    auth_msg(l, M_REVOKE));
}

static void
list_sessions(struct auth_page *pg, struct auth_buf *b, const struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	struct list_arg la = { pg, b, id };
	struct auth_session_query q = { .since = (int64_t)pg->now - c->s.session_max,
	    .uid = id->uid, .limit = LIST_MAX, .newest_first = true };

	auth_buf_addf(b, "<h2>%s</h2><ul>", auth_msg(pg->lang, M_SESSIONS));
	auth_store_lock(c);
	(void)c->store->session_list(c, &q, session_item, &la);
	auth_store_unlock(c);
	auth_buf_add(b, "</ul>");
}

static void
login_item(void *arg, const struct auth_login_row *r)
{
	struct list_arg *la = arg;
	char when[32];

	when_text(r->time, when);
	auth_buf_addf(la->b, "<li>%s &middot; ", when);
	auth_buf_esc(la->b, r->ip);
	auth_buf_addf(la->b, " &middot; %s</li>", auth_msg(la->pg->lang,
	    r->ok ? M_OK : M_FAIL));
}

static void
list_logins(struct auth_page *pg, struct auth_buf *b, const struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	struct list_arg la = { pg, b, id };

	auth_buf_addf(b, "<h2>%s</h2><ul>", auth_msg(pg->lang, M_RECENT));
	auth_store_lock(c);
	(void)c->store->login_list(c, id->uid, LIST_MAX, login_item, &la);
	auth_store_unlock(c);
	auth_buf_add(b, "</ul>");
}

/* One labelled input. The same name is posted by several forms (each
 * asks for the current password and a code), so the element id is the
 * name under the form's own prefix: ids stay unique on the page. */
static void
field(struct auth_buf *b, const char *form, const char *name, const char *label,
    const char *type, const char *ac)
{
	auth_buf_addf(b, "<label for=\"%s-%s\">%s</label><input id=\"%s-%s\" "
	    "name=\"%s\" type=\"%s\" autocomplete=\"%s\" maxlength=\"1024\">",
	    form, name, label, form, name, name, type, ac);
}

/* The current password and a code: what every change asks for again. */
static void
reauth_fields(struct auth_buf *b, enum auth_lang l, const char *form)
{
	field(b, form, "current", auth_msg(l, M_CURRENT_PW), "password",
	    "current-password");
	field(b, form, "code", auth_msg(l, M_CODE), "text", "one-time-code");
}

static void
form_open(struct auth_page *pg, struct auth_buf *b, const char *id)
{
	auth_buf_addf(b, "<form id=\"%s\" method=\"post\" "
	    "action=\"/_pbxgate/account\">", id);
	auth_csrf_field(pg, b);
}

static void
form_lockdown(struct auth_page *pg, struct auth_buf *b,
    const struct auth_identity *id)
{
	enum auth_lang l = pg->lang;

	auth_buf_addf(b, "<h2>%s</h2>", auth_msg(l, M_LOCKDOWN));
	form_open(pg, b, "lock");
	auth_buf_addf(b, "<input type=\"hidden\" name=\"action\" value=\"lockdown\">"
	    "<label for=\"lockdown\">%s</label><textarea id=\"lockdown\" "
	    "name=\"lockdown\" rows=\"4\" cols=\"40\">",
	    auth_msg(l, M_LOCKDOWN_HINT));
	for (const char *p = id->lockdown; *p != '\0'; p++) {
		char one[2] = { *p == ' ' ? '\n' : *p, '\0' };
		auth_buf_esc(b, one);
	}
	auth_buf_addf(b, "</textarea><label for=\"lock-confirm\"><input "
	    "id=\"lock-confirm\" type=\"checkbox\" name=\"confirm\" value=\"1\"> "
	    "%s</label>", auth_msg(l, M_LOCKDOWN_CONFIRM));
	reauth_fields(b, l, "lock");
	auth_buf_addf(b, "<p><button type=\"submit\">%s</button></p></form>",
	    auth_msg(l, M_SAVE));
}

static void
forms(struct auth_page *pg, struct auth_buf *b, const struct auth_identity *id)
{
	enum auth_lang l = pg->lang;

	auth_buf_addf(b, "<h2>%s</h2>", auth_msg(l, M_CHANGE_PW));
	form_open(pg, b, "pw");
	auth_buf_add(b, "<input type=\"hidden\" name=\"action\" value=\"password\">");
	field(b, "pw", "current", auth_msg(l, M_CURRENT_PW), "password",
	    "current-password");
	field(b, "pw", "new", auth_msg(l, M_NEW_PW), "password", "new-password");
	field(b, "pw", "new2", auth_msg(l, M_PASSWORD2), "password", "new-password");
	field(b, "pw", "code", auth_msg(l, M_CODE), "text", "one-time-code");
	auth_buf_addf(b, "<p><button type=\"submit\">%s</button></p></form>", auth_msg(l, M_SAVE));

	auth_buf_addf(b, "<h2>%s / %s</h2>", auth_msg(l, M_TOTP), auth_msg(l, M_RECOVERY));
	form_open(pg, b, "totp");
	reauth_fields(b, l, "totp");
	auth_buf_addf(b, "<p><button type=\"submit\" name=\"action\" value=\"recovery\">%s"
	    "</button> <button type=\"submit\" name=\"action\" value=\"totp\">%s</button>"
	    "</p></form>", auth_msg(l, M_NEW_RECOVERY), auth_msg(l, M_REENROL));

	form_lockdown(pg, b, id);
	auth_buf_addf(b, "<form id=\"logout\" method=\"post\" action=\"/_pbxgate/logout\">");
	auth_csrf_field(pg, b);
	auth_buf_addf(b, "<p><button type=\"submit\">%s</button></p></form>",
	    auth_msg(l, M_SIGN_OUT));
}

static void
show(struct auth_page *pg, const struct auth_identity *id, int status,
    enum auth_msg note, char codes[AUTH_RECOVERY_N][16])
{
	struct auth_buf b = { 0 };
	enum auth_lang l = pg->lang;

	auth_page_begin(&b, pg->c, l, auth_msg(l, M_TITLE_ACCOUNT));
	auth_buf_add(&b, "<p><strong>");
	auth_buf_esc(&b, id->user);
	auth_buf_add(&b, "</strong></p>");
	if (note != M_COUNT)
		auth_buf_addf(&b, "<p class=\"%s\" role=\"status\">%s</p>",
		    status >= 400 ? "err" : "ok", auth_msg(l, note));
	if (codes != NULL) {
		auth_buf_addf(&b, "<p>%s</p><ul>", auth_msg(l, M_RECOVERY_INTRO));
		for (int i = 0; i < AUTH_RECOVERY_N; i++)
			auth_buf_addf(&b, "<li><code>%s</code></li>", codes[i]);
		auth_buf_add(&b, "</ul>");
	}
	list_sessions(pg, &b, id);
	list_logins(pg, &b, id);
	forms(pg, &b, id);
	auth_page_end(&b, l, pg->req->request_id);
	auth_resp_html(pg->c, pg->resp, status, &b);
}

/* Current password (Argon2, outside the lock) and, if enrolled, a code.
 * Failures count towards the user's ban like login failures. */
int
auth_reauth(struct auth_page *pg, const struct auth_identity *id, struct auth_user *u)
{
	struct auth_ctx *c = pg->c;
	const char *pw = auth_form_get(&pg->form, "current");
	const char *code = auth_form_get(&pg->form, "code");
	char ukey[96];
	bool ok, blocked;
	int found;

	snprintf(ukey, sizeof(ukey), "u:%s", id->user);
	auth_store_lock(c);
	blocked = auth_reg_blocked(c, ukey, pg->now);
	found = auth_user_get(c, NULL, id->uid, u);
	auth_store_unlock(c);
	if (found < 0)
		return -1;
	if (found != 0 || pw == NULL || strlen(pw) > AUTH_PW_MAX)
		return 0;
	ok = auth_pw_verify(u->pw, pw, strlen(pw)) && !blocked;
	auth_store_lock(c);
	if (ok && u->has_totp)
		ok = auth_second_factor(c, u, code, pg->now);
	if (!ok && auth_store_begin(c) == 0) {
		if (auth_reg_fail(c, ukey, pg->now) == 1)
			auth_audit(c, "login_ban", id->user, pg->req, "user");
		if (auth_store_commit(c) < 0)
			auth_store_rollback(c);
	}
	auth_store_unlock(c);
	if (!ok)
		auth_audit(c, "reauth_failure", id->user, pg->req, NULL);
	return ok ? 1 : 0;
}

/* auth_reauth() with its refusal pages: true when the user proved it. */
static bool
reauthed(struct auth_page *pg, const struct auth_identity *id,
    struct auth_user *u)
{
	switch (auth_reauth(pg, id, u)) {
	case 1:
		return true;
	case 0:
		show(pg, id, 401, M_BAD_LOGIN, NULL);
		return false;
	default:
		auth_page_store_down(pg, M_TITLE_ACCOUNT);
		return false;
	}
}

/* After an epoch bump the current browser gets a new session at its level
 * so that changing one's own settings does not sign one out. */
static void
renew(struct auth_page *pg, struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	struct auth_user u;
	char sc[512], err[128], sid[AUTH_SID_HEX];

	auth_store_lock(c);
	if (auth_user_get(c, NULL, id->uid, &u) == 0 && auth_store_begin(c) == 0) {
		if (auth_session_new(c, &u, id->level, pg->req->peer, pg->now, sc,
		    sizeof(sc), sid) == 0 && auth_store_commit(c) == 0) {
			auth_resp_header(pg->resp, "Set-Cookie", sc);
			/* forms on the page shown now are posted with the
			 * new session: their token must be bound to it */
			memcpy(id->sid, sid, sizeof(id->sid));
			auth_csrf_rebind(pg, id->sid);
		} else
			auth_store_rollback(c);
		id->epoch = u.epoch;
	}
	auth_store_unlock(c);
	(void)auth_store_reload(c, false, err, sizeof(err));
}

static int
update_user(struct auth_ctx *c, enum auth_user_field f, int64_t uid,
    const char *text, time_t now)
{
	int rc;

	if (auth_store_begin(c) < 0)
		return -1;
	rc = c->store->user_set(c, uid, f, text);
	if (rc == 0)
		rc = auth_bump_epoch(c, uid, now);
	if (rc == 0)
		rc = auth_store_commit(c);
	if (rc < 0)
		auth_store_rollback(c);
	return rc;
}

static void
do_password(struct auth_page *pg, struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	const char *n1 = auth_form_get(&pg->form, "new"), *n2 = auth_form_get(&pg->form, "new2");
	struct auth_user u;
	char phc[AUTH_PHC_MAX], err[128];
	int rc;

	if (n1 == NULL || n2 == NULL || strcmp(n1, n2) != 0) {
		show(pg, id, 400, M_PW_MISMATCH, NULL);
		return;
	}
	if (strlen(n1) < AUTH_PW_MIN || strlen(n1) > AUTH_PW_MAX) {
		show(pg, id, 400, M_PW_SHORT, NULL);
		return;
	}
	if (!reauthed(pg, id, &u))
		return;
	if (auth_pw_hash(c->s.argon2_m_kib, c->s.argon2_t, c->s.argon2_p, n1, strlen(n1),
	    phc, err, sizeof(err)) < 0) {
		show(pg, id, 500, M_FAILED, NULL);
		return;
	}
	auth_store_lock(c);
	rc = update_user(c, AUTH_UF_PW, id->uid, phc, pg->now);
	auth_store_unlock(c);
	if (rc < 0) {
		auth_page_store_down(pg, M_TITLE_ACCOUNT);
		return;
	}
	auth_audit(c, "password_change", id->user, pg->req, NULL);
	renew(pg, id);
	show(pg, id, 200, M_SAVED, NULL);
}

static void
do_lockdown(struct auth_page *pg, struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	const char *raw = auth_form_get(&pg->form, "lockdown");
	const char *confirm = auth_form_get(&pg->form, "confirm");
	struct auth_user u;
	char list[AUTH_LOCKDOWN_MAX + 1], err[128];
	size_t o = 0;
	int rc;

	if (raw == NULL || strlen(raw) > AUTH_LOCKDOWN_MAX) {
		show(pg, id, 400, M_LOCKDOWN_BAD, NULL);
		return;
	}
	for (const char *p = raw; *p != '\0'; p++) {	/* one line per entry -> "a b c" */
		bool sep = *p == '\r' || *p == '\n' || *p == '\t' || *p == ',' || *p == ' ';

		if (!sep)
			list[o++] = *p;
		else if (o > 0 && list[o - 1] != ' ')
			list[o++] = ' ';
	}
	while (o > 0 && list[o - 1] == ' ')
		o--;
	list[o] = '\0';
	if (auth_cidr_list_check(list, err, sizeof(err)) < 0) {
		show(pg, id, 400, M_LOCKDOWN_BAD, NULL);
		return;
	}
	if (!auth_ip_in_list(pg->req->peer, list) && (confirm == NULL || strcmp(confirm, "1") != 0)) {
		show(pg, id, 409, M_LOCKDOWN_EXCLUDES, NULL);
		return;
	}
	/* the list decides where the account can be used from: like the
	 * password, a stolen session alone must not be enough to change it */
	if (!reauthed(pg, id, &u))
		return;
	auth_store_lock(c);
	rc = update_user(c, AUTH_UF_LOCKDOWN, id->uid, list, pg->now);
	auth_store_unlock(c);
	if (rc < 0) {
		auth_page_store_down(pg, M_TITLE_ACCOUNT);
		return;
	}
	auth_audit(c, "lockdown_change", id->user, pg->req, list);
	renew(pg, id);
	snprintf(id->lockdown, sizeof(id->lockdown), "%s", list);
	show(pg, id, 200, M_SAVED, NULL);
}

static void
do_revoke(struct auth_page *pg, struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	const char *sid = auth_form_get(&pg->form, "sid");
	char err[128];
	int rc;

	if (sid == NULL || strlen(sid) != 32) {
		show(pg, id, 400, M_FAILED, NULL);
		return;
	}
	auth_store_lock(c);
	rc = auth_session_revoke(c, id->uid, sid);
	auth_store_unlock(c);
	/* never "saved" when nothing was: the session would stay valid */
	if (rc < 0) {
		auth_page_store_down(pg, M_TITLE_ACCOUNT);
		return;
	}
	(void)auth_store_reload(c, false, err, sizeof(err));
	auth_audit(c, "session_revoke", id->user, pg->req, NULL);
	if (strcmp(sid, id->sid) == 0) {
		auth_resp_redirect(pg->resp, 303, AUTH_PREFIX "login");
		return;
	}
	show(pg, id, 200, M_SAVED, NULL);
}

static void
do_recovery(struct auth_page *pg, struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	struct auth_user u;
	char codes[AUTH_RECOVERY_N][16];
	int rc = -1;

	if (!reauthed(pg, id, &u))
		return;
	auth_store_lock(c);
	if (auth_store_begin(c) == 0) {
		rc = auth_recovery_new(c, id->uid, codes);
		if (rc == 0)
			rc = auth_store_commit(c);
		if (rc < 0)
			auth_store_rollback(c);
	}
	auth_store_unlock(c);
	if (rc < 0) {
		auth_page_store_down(pg, M_TITLE_ACCOUNT);
		return;
	}
	auth_audit(c, "recovery_codes_new", id->user, pg->req, NULL);
	show(pg, id, 200, M_COUNT, codes);
	OPENSSL_cleanse(codes, sizeof(codes));
}

/* Re-enrolment goes through a fresh enrolment link: the old authenticator
 * keeps working until the new one is confirmed there. */
static void
do_totp(struct auth_page *pg, struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	struct auth_user u;
	char tok[65], loc[128];
	int rc;

	if (!reauthed(pg, id, &u))
		return;
	/* a first authenticator on the password alone would let whoever has
	 * the password pass every MFA rule: only where the admin allows it */
	if (!u.has_totp && !c->s.mfa_self_enrol) {
		show(pg, id, 403, M_MFA_ASK_ADMIN, NULL);
		return;
	}
	auth_store_lock(c);
	rc = auth_enrol_token_new(c, id->uid, pg->now, tok);
	auth_store_unlock(c);
	if (rc < 0) {
		auth_page_store_down(pg, M_TITLE_ACCOUNT);
		return;
	}
	snprintf(loc, sizeof(loc), AUTH_PREFIX "enrol?t=%s", tok);
	auth_resp_redirect(pg->resp, 303, loc);
	OPENSSL_cleanse(tok, sizeof(tok));
}

struct action {
	const char *name;
	void (*fn)(struct auth_page *, struct auth_identity *);
};

static const struct action actions[] = {
	{ "password", do_password }, { "lockdown", do_lockdown },
	{ "revoke", do_revoke }, { "recovery", do_recovery }, { "totp", do_totp },
};

void
auth_page_account(struct auth_page *pg)
{
	struct auth_identity id;
	const char *hdr = pg->req->cookie, *act;

	if (hdr == NULL || auth_session_check(pg->c, hdr, strlen(hdr), pg->now, &id) != AUTH_OK ||
	    !auth_ip_in_list(pg->req->peer, id.lockdown)) {
		auth_resp_redirect(pg->resp, 303, AUTH_PREFIX "login?rd=/_pbxgate/account");
		return;
	}
	if (strcmp(pg->req->method, "POST") != 0) {
		show(pg, &id, 200, M_COUNT, NULL);
		return;
	}
	act = auth_form_get(&pg->form, "action");
	for (size_t i = 0; act != NULL && i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(act, actions[i].name) == 0) {
			actions[i].fn(pg, &id);
			return;
		}
	show(pg, &id, 400, M_FAILED, NULL);
}
