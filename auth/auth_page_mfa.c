/* auth_page_mfa.c -- /_pbxgate/mfa: where a signed-in user without an
 * authenticator lands when a page needs MFA, instead of a login loop. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth_priv.h"

/* Says what is missing and what to do. With mfa_self_enrol the user may
 * prove the password again and go on to a fresh enrolment link (200);
 * without it only an administrator can help (403: the page asked for
 * stays out of reach). */
static void
show(struct auth_page *pg, enum auth_msg err)
{
	struct auth_ctx *c = pg->c;
	struct auth_buf b = { 0 };
	enum auth_lang l = pg->lang;
	bool self = c->s.mfa_self_enrol;

	auth_page_begin(&b, pg->c, l, auth_msg(l, M_TITLE_MFA));
	if (err != M_COUNT)
		auth_buf_addf(&b, "<p class=\"err\" role=\"alert\">%s</p>", auth_msg(l, err));
	auth_buf_addf(&b, "<p>%s</p><p>%s</p>", auth_msg(l, M_MFA_MISSING),
	    auth_msg(l, self ? M_MFA_SELF : M_MFA_ASK_ADMIN));
	if (self) {
		auth_buf_add(&b, "<form method=\"post\" action=\"/_pbxgate/mfa\">");
		auth_csrf_field(pg, &b);
		auth_buf_addf(&b, "<label for=\"current\">%s</label><input id=\"current\" "
		    "name=\"current\" type=\"password\" autocomplete=\"current-password\" "
		    "required maxlength=\"1024\"><p><button type=\"submit\">%s</button>"
		    "</p></form>", auth_msg(l, M_CURRENT_PW), auth_msg(l, M_MFA_SET_UP));
	}
	auth_buf_add(&b, "<form method=\"post\" action=\"/_pbxgate/logout\">");
	auth_csrf_field(pg, &b);
	auth_buf_addf(&b, "<p><button type=\"submit\">%s</button></p></form>",
	    auth_msg(l, M_SIGN_OUT));
	auth_page_end(&b, l, pg->req->request_id);
	auth_resp_html(c, pg->resp, err != M_COUNT ? 401 : self ? 200 : 403, &b);
}

/* Password again, then a fresh enrolment link (the same page an
 * administrator's link opens: it confirms the new authenticator). */
static void
post_self_enrol(struct auth_page *pg, const struct auth_identity *id)
{
	struct auth_ctx *c = pg->c;
	struct auth_user u;
	char tok[65], loc[128];
	int rc;

	if (!c->s.mfa_self_enrol) {
		show(pg, M_COUNT);
		return;
	}
	if (!auth_reauth(pg, id, &u)) {
		show(pg, M_BAD_LOGIN);
		return;
	}
	if (u.has_totp) {	/* added meanwhile: a normal sign-in now works */
		auth_resp_redirect(pg->resp, 303, AUTH_PREFIX "login");
		return;
	}
	auth_store_lock(c);
	rc = auth_enrol_token_new(c, id->uid, pg->now, tok);
	auth_store_unlock(c);
	if (rc < 0) {
		auth_resp_text(pg->resp, 500, "cannot make an enrolment link; try again\n");
		return;
	}
	auth_audit(c, "mfa_self_enrol", id->user, pg->req, NULL);
	snprintf(loc, sizeof(loc), AUTH_PREFIX "enrol?t=%s", tok);
	auth_resp_redirect(pg->resp, 303, loc);
	OPENSSL_cleanse(tok, sizeof(tok));
	OPENSSL_cleanse(loc, sizeof(loc));
}

void
auth_page_mfa(struct auth_page *pg)
{
	struct auth_ctx *c = pg->c;
	struct auth_identity id;
	struct auth_user u;
	const char *hdr = pg->req->cookie;
	bool found;

	if (hdr == NULL || auth_session_check(c, hdr, strlen(hdr), pg->now, &id) != AUTH_OK ||
	    !auth_ip_in_list(pg->req->peer, id.lockdown)) {
		auth_resp_redirect(pg->resp, 303, AUTH_PREFIX "login");
		return;
	}
	auth_store_lock(c);
	found = auth_user_get(c, NULL, id.uid, &u) == 0;
	auth_store_unlock(c);
	if (!found || u.has_totp) {	/* nothing missing: the code step works */
		auth_resp_redirect(pg->resp, 303, AUTH_PREFIX "login");
		return;
	}
	if (strcmp(pg->req->method, "POST") == 0)
		post_self_enrol(pg, &id);
	else
		show(pg, M_COUNT);
}
