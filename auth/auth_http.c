/* auth_http.c -- dispatch of /_pbxgate/ requests, CSRF tokens, redirect targets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <qrencode.h>

#include "auth/auth_priv.h"

#define CSRF_COOKIE "__Host-pbxgate-csrf"
#define RD_MAX      2048

void
auth_http_resp_free(struct auth_http_resp *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nhdr; i++)
		free(r->hdr[i].value);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Same-origin relative path only: "/x", never "//x", "/\x", "x", a
 * scheme, control bytes or non-ASCII (browsers fold "\" to "/" and
 * strip tabs and newlines, which is how "/\evil" and "/\t/evil" escape). */
bool
auth_rd_is_safe(const char *rd)
{
	size_t n;

	if (rd == NULL || rd[0] != '/' || rd[1] == '/' || rd[1] == '\\')
		return false;
	n = strlen(rd);
	if (n > RD_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)rd[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '\\')
			return false;
	}
	return true;
}

/* Double-submit: a random cookie, and in each form a MAC over it and the
 * session id. The key alone does not protect a planted cookie: whoever
 * plants one can fetch a page with it and read the token printed for it.
 * What such a token lacks is the victim's session id (sealed in our own
 * HttpOnly cookie), so once the victim is signed in it no longer matches,
 * and a token from one session is refused in every other. Before login
 * the binding is to the cookie alone (sid ""). */
void
auth_csrf_token(struct auth_ctx *c, const char *cookie, size_t n, const char *sid,
    char out[65])
{
	uint8_t mac[32];
	char msg[192];
	int m;

	if (n > 32 || strlen(sid) >= AUTH_SID_HEX) {	/* never a valid token */
		memset(out, 'x', 64);
		out[64] = '\0';
		return;
	}
	m = auth_site_bind(c, msg, sizeof(msg), snprintf(msg, sizeof(msg),
	    "pbxgate csrf v2%c%.*s%c%s", '\0', (int)n, cookie, '\0', sid));
	if (m < 0) {			/* never a valid token */
		memset(out, 'x', 64);
		out[64] = '\0';
		return;
	}
	auth_hmac256(c->keys.k[0].mac, msg, (size_t)m, mac);
	auth_hex(mac, sizeof(mac), out);
}

static bool
csrf_cookie_ok(const char *v, ssize_t n)
{
	if (n != 32)
		return false;
	for (ssize_t i = 0; i < n; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
			return false;
	return true;
}

/* The session this request carries, if valid: its id, else "". */
static void
csrf_sid(struct auth_page *pg, char sid[AUTH_SID_HEX])
{
	const char *h = pg->req->cookie;
	struct auth_identity id;

	sid[0] = '\0';
	if (h != NULL && auth_session_check(pg->c, h, strlen(h), pg->now, &id) == AUTH_OK)
		memcpy(sid, id.sid, AUTH_SID_HEX);
}

void
auth_csrf_rebind(struct auth_page *pg, const char *sid)
{
	if (pg->csrf_cookie[0] != '\0')
		auth_csrf_token(pg->c, pg->csrf_cookie, 32, sid, pg->csrf);
}

static void
csrf_setup(struct auth_page *pg)
{
	const char *v = NULL, *hdr = pg->req->cookie;
	ssize_t n = auth_cookie_find(hdr, hdr ? strlen(hdr) : 0, CSRF_COOKIE, &v);
	char sid[AUTH_SID_HEX], sc[128];
	uint8_t r[16];

	csrf_sid(pg, sid);
	if (csrf_cookie_ok(v, n)) {
		memcpy(pg->csrf_cookie, v, 32);
		pg->csrf_cookie[32] = '\0';
		auth_csrf_token(pg->c, v, (size_t)n, sid, pg->csrf);
		if (strcmp(pg->req->method, "POST") == 0) {
			const char *f = auth_form_get(&pg->form, "csrf");

			pg->csrf_ok = f != NULL && strlen(f) == 64 &&
			    CRYPTO_memcmp(f, pg->csrf, 64) == 0;
		}
		return;
	}
	if (auth_random(r, sizeof(r)) < 0)
		return;
	auth_hex(r, sizeof(r), pg->csrf_cookie);
	auth_csrf_token(pg->c, pg->csrf_cookie, 32, sid, pg->csrf);
	snprintf(sc, sizeof(sc), "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict",
	    CSRF_COOKIE, pg->csrf_cookie);
	auth_resp_header(pg->resp, "Set-Cookie", sc);
}

void
auth_csrf_field(struct auth_page *pg, struct auth_buf *b)
{
	auth_buf_addf(b, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", pg->csrf);
}

static bool
is_form(const char *ct)
{
	return ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 &&
	    (ct[33] == '\0' || ct[33] == ';');
}

static void
forbidden(struct auth_page *pg)
{
	struct auth_buf b = { 0 };

	auth_page_begin(&b, pg->c, pg->lang, "403");
	auth_buf_addf(&b, "<p class=\"err\">%s</p>", auth_msg(pg->lang, M_FORBIDDEN));
	auth_page_end(&b, pg->lang, pg->req->request_id);
	auth_resp_html(pg->c, pg->resp, 403, &b);
}

struct route {
	const char *path;
	void (*fn)(struct auth_page *);
};

static const struct route routes[] = {
	{ AUTH_PREFIX "login", auth_page_login },
	{ AUTH_PREFIX "logout", auth_page_logout },
	{ AUTH_PREFIX "enrol", auth_page_enrol },
	{ AUTH_PREFIX "account", auth_page_account },
	{ AUTH_PREFIX "mfa", auth_page_mfa },
};

void
auth_http_handle(struct auth_ctx *c, const struct auth_http_req *req,
    struct auth_http_resp *resp)
{
	struct auth_page pg = { .c = c, .req = req, .resp = resp };
	const struct route *rt = NULL;
	bool get, post;

	memset(resp, 0, sizeof(*resp));
	if (req->method == NULL || req->path == NULL || (req->body == NULL && req->body_len > 0)) {
		auth_resp_text(resp, 400, "bad request\n");
		return;
	}
	pg.lang = auth_lang_pick(req->accept_language);
	pg.now = req->now != 0 ? req->now : time(NULL);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(req->path, routes[i].path) == 0)
			rt = &routes[i];
	if (rt == NULL) {
		auth_resp_text(resp, 404, "not found\n");
		return;
	}
	get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	post = strcmp(req->method, "POST") == 0;
	if (!get && !post) {
		auth_resp_text(resp, 405, "method not allowed\n");
		auth_resp_header(resp, "Allow", "GET, HEAD, POST");
		return;
	}
	if (post && (!is_form(req->content_type) || req->body_len > AUTH_BODY_MAX ||
	    auth_form_parse(req->body, req->body_len, &pg.form) < 0)) {
		auth_resp_text(resp, 400, "expected a form (application/x-www-form-urlencoded)\n");
		return;
	}
	csrf_setup(&pg);
	if (post && !pg.csrf_ok)
		forbidden(&pg);
	else
		rt->fn(&pg);
	auth_form_free(&pg.form);
	OPENSSL_cleanse(pg.csrf, sizeof(pg.csrf));
	OPENSSL_cleanse(pg.csrf_cookie, sizeof(pg.csrf_cookie));
}

/* Module-private dark-module path: one "M x y h1v1h-1z" per dark module. */
int
auth_qr_svg(struct auth_buf *b, const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	int w;

	if (q == NULL)
		return -1;
	w = q->width;
	auth_buf_addf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
	    "role=\"img\" aria-label=\"QR\"><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
	    "<path fill=\"#000\" d=\"", w + 8, w + 8, w + 8, w + 8);
	for (int y = 0; y < w; y++)
		for (int x = 0; x < w; x++)
			if (q->data[y * w + x] & 1)
				auth_buf_addf(b, "M%d %dh1v1h-1z", x + 4, y + 4);
	auth_buf_add(b, "\"/></svg>");
	QRcode_free(q);
	return 0;
}

void
auth_http_busy(const struct auth_http_req *req, struct auth_http_resp *resp)
{
	struct auth_buf b = { 0 };
	enum auth_lang l = auth_lang_pick(req != NULL ? req->accept_language : NULL);

	memset(resp, 0, sizeof(*resp));
	auth_page_begin(&b, NULL, l, "503");
	auth_buf_addf(&b, "<p class=\"err\">%s</p>", auth_msg(l, M_BUSY));
	auth_page_end(&b, l, req != NULL ? req->request_id : NULL);
	auth_resp_html(NULL, resp, 503, &b);
	auth_resp_header(resp, "Retry-After", "5");
}

/* The store did not answer (PostgreSQL down, say): nothing was decided
 * or written, so no failure is counted and no form offered; the gateway's
 * refresh logs what is wrong and /readyz reports it. */
void
auth_page_store_down(struct auth_page *pg, enum auth_msg title)
{
	struct auth_buf b = { 0 };
	enum auth_lang l = pg->lang;

	auth_page_begin(&b, pg->c, l, auth_msg(l, title));
	auth_buf_addf(&b, "<p class=\"err\" role=\"alert\">%s</p>",
	    auth_msg(l, M_STORE_DOWN));
	auth_page_end(&b, l, pg->req->request_id);
	auth_resp_html(pg->c, pg->resp, 503, &b);
	auth_resp_header(pg->resp, "Retry-After", "30");
}

/* Everything but unreserved characters and '/' is percent-encoded, so the
 * target survives the query string intact and decodes back exactly once. */
size_t
auth_login_location(const char *target, char *buf, size_t buflen)
{
	static const char pre[] = AUTH_PREFIX "login";
	static const char hexd[] = "0123456789ABCDEF";
	size_t o;

	if (buflen < sizeof(pre) + 4)
		return 0;
	memcpy(buf, pre, sizeof(pre));
	o = sizeof(pre) - 1;
	/* "/" is spelled out too: the gateway judges what the login returns
	 * to from `rd` alone, and an MFA page at "/" must not look like one
	 * a password session may enter (that was a redirect loop) */
	if (!auth_rd_is_safe(target))
		return o;
	memcpy(buf + o, "?rd=", 5);
	o += 4;
	for (const char *p = target; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~/", ch) != NULL;

		if (o + (keep ? 1 : 3) + 1 > buflen)
			return 0;
		if (keep)
			buf[o++] = (char)ch;
		else {
			buf[o++] = '%';
			buf[o++] = hexd[ch >> 4];
			buf[o++] = hexd[ch & 15];
		}
	}
	buf[o] = '\0';
	return o;
}
