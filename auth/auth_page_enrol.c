/* auth_page_enrol.c -- /_pbxgate/enrol?t=TOKEN: first password, TOTP, recovery codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth_priv.h"

struct enrol {
	char     hash[65];
	int64_t  uid;
	char     name[AUTH_NAME_MAX + 1];
	uint8_t  sealed[AUTH_TOTP_SECRET + AUTH_SEAL_OVER];
	bool     has_secret;
	uint32_t kid;
};

/* Caller holds db_mu. 0 when the token is live, -1 when it is not, -2
 * when the store did not answer. */
static int
enrol_get(struct auth_ctx *c, const char *tok, time_t now, struct enrol *e)
{
	struct auth_enrol_row row;

	memset(e, 0, sizeof(*e));
	if (auth_enrol_hash(c, tok, e->hash) < 0)
		return -1;
	switch (c->store->enrol_get(c, e->hash, (int64_t)now, &row)) {
	case 0:
		break;
	case 1:
		return -1;
	default:
		return -2;	/* the store did not answer */
	}
	e->uid = row.uid;
	memcpy(e->name, row.name, sizeof(e->name));
	memcpy(e->sealed, row.sealed, sizeof(e->sealed));
	e->has_secret = row.has_secret;
	e->kid = row.kid;
	OPENSSL_cleanse(&row, sizeof(row));
	return 0;
}

static void
link_bad(struct auth_page *pg)
{
	struct auth_buf b = { 0 };

	auth_page_begin(&b, pg->c, pg->lang, auth_msg(pg->lang, M_TITLE_ENROL));
	auth_buf_addf(&b, "<p class=\"err\">%s</p>", auth_msg(pg->lang, M_LINK_BAD));
	auth_page_end(&b, pg->lang, pg->req->request_id);
	auth_resp_html(pg->c, pg->resp, 404, &b);
}

static void show_page(struct auth_page *, const char *, struct enrol *, int,
    enum auth_msg);

/* totp_issuer holds only URI-safe bytes and blanks (auth_settings.c):
 * each blank becomes %20. */
static void
issuer_enc(const char *issuer, char *out, size_t len)
{
	size_t n = 0;

	for (; *issuer != '\0' && n + 4 <= len; issuer++) {
		if (*issuer == ' ') {
			memcpy(out + n, "%20", 3);
			n += 3;
		} else
			out[n++] = *issuer;
	}
	out[n] = '\0';
}

static void
otpauth_uri(struct auth_ctx *c, const char *name, const char *b32, char *out, size_t len)
{
	char iss[AUTH_ISSUER_MAX * 3 + 1];

	issuer_enc(c->s.totp_issuer, iss, sizeof(iss));
	snprintf(out, len, "otpauth://totp/%s:%s?secret=%s&issuer=%s"
	    "&algorithm=SHA1&digits=%u&period=%u", iss, name, b32, iss,
	    c->s.totp_digits, c->s.totp_step);
}

/* A fresh secret each time the page is shown: whoever saw an earlier QR
 * code cannot use it once the page was loaded again. */
static void
show_form(struct auth_page *pg, const char *tok, struct enrol *e, int status,
    enum auth_msg err)
{
	if (err != M_COUNT && e->has_secret) {
		show_page(pg, tok, e, status, err);
		return;
	}
	struct auth_ctx *c = pg->c;
	uint8_t sec[AUTH_TOTP_SECRET], sealed[sizeof(e->sealed)];
	uint32_t kid;
	int rc;

	if (auth_random(sec, sizeof(sec)) < 0 || auth_totp_seal(c, sec, e->uid, sealed, &kid) < 0)
		goto fail;
	auth_store_lock(c);
	rc = c->store->enrol_set_totp(c, e->hash, sealed, sizeof(sealed), kid);
	auth_store_unlock(c);
	if (rc < 0) {
		OPENSSL_cleanse(sec, sizeof(sec));
		auth_page_store_down(pg, M_TITLE_ENROL);
		return;
	}
	if (rc != 1)
		goto fail;
	memcpy(e->sealed, sealed, sizeof(sealed));
	e->kid = kid;
	e->has_secret = true;
	OPENSSL_cleanse(sec, sizeof(sec));
	show_page(pg, tok, e, status, err);
	return;
fail:
	OPENSSL_cleanse(sec, sizeof(sec));
	auth_resp_text(pg->resp, 500, "cannot prepare enrolment; try again\n");
}

/* Shows the secret sealed in e (the one the user will confirm). */
static void
show_page(struct auth_page *pg, const char *tok, struct enrol *e, int status,
    enum auth_msg err)
{
	struct auth_ctx *c = pg->c;
	struct auth_user tmp = { .id = e->uid, .has_totp = true, .totp_kid = e->kid };
	uint8_t sec[AUTH_TOTP_SECRET];
	char b32[64], uri[640];
	struct auth_buf b = { 0 };
	enum auth_lang l = pg->lang;

	memcpy(tmp.totp_sealed, e->sealed, sizeof(e->sealed));
	if (auth_totp_secret(c, &tmp, sec) < 0) {
		auth_resp_text(pg->resp, 500, "cannot prepare enrolment; try again\n");
		return;
	}
	auth_base32(sec, sizeof(sec), b32, sizeof(b32));
	OPENSSL_cleanse(sec, sizeof(sec));
	otpauth_uri(c, e->name, b32, uri, sizeof(uri));
	auth_page_begin(&b, pg->c, l, auth_msg(l, M_TITLE_ENROL));
	if (err != M_COUNT)
		auth_buf_addf(&b, "<p class=\"err\" role=\"alert\">%s</p>", auth_msg(l, err));
	auth_buf_addf(&b, "<p>%s</p><p><strong>", auth_msg(l, M_ENROL_INTRO));
	auth_buf_esc(&b, e->name);
	auth_buf_add(&b, "</strong></p><div class=\"qr\"><a href=\"");
	auth_buf_esc(&b, uri);
	auth_buf_add(&b, "\">");
	if (auth_qr_svg(&b, uri) < 0)
		b.oom = true;
	auth_buf_addf(&b, "</a></div><p>%s: <code>%s</code></p><p><code>", auth_msg(l, M_SECRET), b32);
	auth_buf_esc(&b, uri);
	auth_buf_add(&b, "</code></p>");
	OPENSSL_cleanse(b32, sizeof(b32));
	OPENSSL_cleanse(uri, sizeof(uri));
	auth_buf_add(&b, "<form method=\"post\" action=\"/_pbxgate/enrol\">");
	auth_csrf_field(pg, &b);
	auth_buf_addf(&b, "<input type=\"hidden\" name=\"t\" value=\"%s\">"
	    "<input type=\"hidden\" name=\"username\" autocomplete=\"username\" value=\"", tok);
	auth_buf_esc(&b, e->name);
	auth_buf_addf(&b, "\"><label for=\"password\">%s</label><input id=\"password\" "
	    "name=\"password\" type=\"password\" autocomplete=\"new-password\" required "
	    "minlength=\"%d\" maxlength=\"%d\"><label for=\"password2\">%s</label>"
	    "<input id=\"password2\" name=\"password2\" type=\"password\" "
	    "autocomplete=\"new-password\" required maxlength=\"%d\">"
	    "<label for=\"code\">%s</label><input id=\"code\" name=\"code\" "
	    "autocomplete=\"one-time-code\" inputmode=\"numeric\" required maxlength=\"8\">"
	    "<p><button type=\"submit\">%s</button></p></form>",
	    auth_msg(l, M_PASSWORD), AUTH_PW_MIN, AUTH_PW_MAX, auth_msg(l, M_PASSWORD2),
	    AUTH_PW_MAX, auth_msg(l, M_CODE), auth_msg(l, M_SAVE));
	auth_page_end(&b, l, pg->req->request_id);
	auth_resp_html(c, pg->resp, status, &b);
}

static void
show_recovery(struct auth_page *pg, char codes[AUTH_RECOVERY_N][16])
{
	struct auth_buf b = { 0 };
	enum auth_lang l = pg->lang;

	auth_page_begin(&b, pg->c, l, auth_msg(l, M_TITLE_ENROL));
	auth_buf_addf(&b, "<p>%s</p><p>%s</p><ul>", auth_msg(l, M_ENROL_DONE),
	    auth_msg(l, M_RECOVERY_INTRO));
	for (int i = 0; i < AUTH_RECOVERY_N; i++)
		auth_buf_addf(&b, "<li><code>%s</code></li>", codes[i]);
	auth_buf_addf(&b, "</ul><p><a href=\"/_pbxgate/login\">%s</a></p>",
	    auth_msg(l, M_SIGN_IN));
	auth_page_end(&b, l, pg->req->request_id);
	auth_resp_html(pg->c, pg->resp, 200, &b);
}

/* Everything in one transaction: the token is spent only if the password,
 * secret, recovery codes and epoch bump are all stored. 0 stored, -1 the
 * token was spent meanwhile, -2 the store failed (nothing written). */
static int
enrol_commit(struct auth_ctx *c, const struct enrol *e, const char *phc,
    int64_t step, time_t now, char codes[AUTH_RECOVERY_N][16])
{
	int rc;

	if (auth_store_begin(c) < 0)
		return -2;
	rc = c->store->enrol_use(c, e->hash);
	if (rc == 0) {
		auth_store_rollback(c);
		return -1;	/* spent or expired meanwhile */
	}
	rc = rc == 1 ? 0 : -2;
	if (rc == 0)
		rc = c->store->user_enrolled(c, e->uid, phc, e->sealed,
		    sizeof(e->sealed), e->kid, step, (int64_t)now);
	if (rc == 0)
		rc = auth_bump_epoch(c, e->uid, now);
	if (rc == 0)
		rc = auth_recovery_new(c, e->uid, codes);
	if (rc == 0)
		rc = auth_store_commit(c);
	if (rc < 0)
		auth_store_rollback(c);
	return rc < 0 ? -2 : 0;
}

static void
post_enrol(struct auth_page *pg, const char *tok, struct enrol *e)
{
	struct auth_ctx *c = pg->c;
	const char *pw = auth_form_get(&pg->form, "password");
	const char *pw2 = auth_form_get(&pg->form, "password2");
	const char *code = auth_form_get(&pg->form, "code");
	uint8_t sec[AUTH_TOTP_SECRET];
	struct auth_user tmp = { .id = e->uid, .has_totp = true, .totp_kid = e->kid };
	char phc[AUTH_PHC_MAX], err[128], codes[AUTH_RECOVERY_N][16];
	int64_t step;
	int rc;

	if (pw == NULL || pw2 == NULL || strcmp(pw, pw2) != 0) {
		show_form(pg, tok, e, 400, M_PW_MISMATCH);
		return;
	}
	if (strlen(pw) < AUTH_PW_MIN || strlen(pw) > AUTH_PW_MAX) {
		show_form(pg, tok, e, 400, M_PW_SHORT);
		return;
	}
	memcpy(tmp.totp_sealed, e->sealed, sizeof(e->sealed));
	if (!e->has_secret || auth_totp_secret(c, &tmp, sec) < 0) {
		show_form(pg, tok, e, 400, M_BAD_CODE);
		return;
	}
	step = auth_totp_match(sec, sizeof(sec), code, pg->now, c->s.totp_step,
	    c->s.totp_digits, c->s.totp_skew, -1);
	OPENSSL_cleanse(sec, sizeof(sec));
	if (step < 0) {
		/* keep the same secret: the user already scanned it */
		show_form(pg, tok, e, 400, M_BAD_CODE);
		return;
	}
	if (auth_pw_hash(c->s.argon2_m_kib, c->s.argon2_t, c->s.argon2_p, pw, strlen(pw),
	    phc, err, sizeof(err)) < 0) {
		auth_resp_text(pg->resp, 500, "cannot hash the password; try again\n");
		return;
	}
	auth_store_lock(c);
	rc = enrol_commit(c, e, phc, step, pg->now, codes);
	auth_store_unlock(c);
	if (rc == -2) {
		auth_page_store_down(pg, M_TITLE_ENROL);
		return;
	}
	if (rc < 0) {
		link_bad(pg);
		return;
	}
	(void)auth_store_reload(c, false, err, sizeof(err));
	auth_audit(c, "enrol", e->name, pg->req, NULL);
	show_recovery(pg, codes);
	OPENSSL_cleanse(codes, sizeof(codes));
}

void
auth_page_enrol(struct auth_page *pg)
{
	struct auth_ctx *c = pg->c;
	struct auth_form q = { 0 };
	const char *tok;
	struct enrol e;
	int rc;
	bool post = strcmp(pg->req->method, "POST") == 0;

	if (post)
		tok = auth_form_get(&pg->form, "t");
	else {
		const char *qs = pg->req->query;
		tok = qs != NULL && auth_form_parse(qs, strlen(qs), &q) == 0 ?
		    auth_form_get(&q, "t") : NULL;
	}
	auth_store_lock(c);
	rc = enrol_get(c, tok, pg->now, &e);
	auth_store_unlock(c);
	if (rc == -2)
		auth_page_store_down(pg, M_TITLE_ENROL);
	else if (rc < 0)
		link_bad(pg);
	else if (post)
		post_enrol(pg, tok, &e);
	else
		show_form(pg, tok, &e, 200, M_COUNT);
	auth_form_free(&q);
}
