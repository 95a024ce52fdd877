/* auth_html.c -- page text in English and Japanese, escaping, response headers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_priv.h"

#define BODY_MAX (256 * 1024)	/* no page comes near this */

static const char *const msgs[M_COUNT][2] = {
	[M_TITLE_LOGIN] = { "Sign in", "サインイン" },
	[M_USERNAME] = { "User name", "ユーザー名" },
	[M_PASSWORD] = { "Password", "パスワード" },
	[M_CODE] = { "Authentication code", "認証コード" },
	[M_CODE_HINT] = { "Enter the 6-digit code from your authenticator app, or a recovery code.",
	    "認証アプリの6桁のコード、またはリカバリーコードを入力してください。" },
	[M_SIGN_IN] = { "Sign in", "サインイン" },
	[M_BAD_LOGIN] = { "The user name or password is incorrect, or signing in is temporarily blocked.",
	    "ユーザー名またはパスワードが正しくないか、サインインが一時的に制限されています。" },
	[M_BAD_CODE] = { "The code is incorrect or was already used.",
	    "コードが正しくないか、すでに使用されています。" },
	[M_VERIFY] = { "Verify", "確認" },
	[M_TITLE_ENROL] = { "Set up your account", "アカウントの設定" },
	[M_ENROL_INTRO] = { "Choose a password, add the key below to your authenticator app, then enter the code it shows.",
	    "パスワードを決め、下のキーを認証アプリに追加し、表示されたコードを入力してください。" },
	[M_PASSWORD2] = { "Password again", "パスワード(確認)" },
	[M_SECRET] = { "Key (if you cannot scan the code)", "キー(コードを読み取れない場合)" },
	[M_ENROL_DONE] = { "Your account is ready.", "アカウントの準備ができました。" },
	[M_RECOVERY_INTRO] = { "Recovery codes: each works once instead of a code. Store them safely now; they are not shown again.",
	    "リカバリーコード:各コードは認証コードの代わりに一度だけ使えます。今すぐ安全に保管してください。再表示されません。" },
	[M_LINK_BAD] = { "This link is invalid, expired or already used. Ask your administrator for a new one.",
	    "このリンクは無効、期限切れ、または使用済みです。管理者に新しいリンクを依頼してください。" },
	[M_PW_MISMATCH] = { "The two passwords differ.", "2つのパスワードが一致しません。" },
	[M_PW_SHORT] = { "The password must have 10 to 1024 characters.",
	    "パスワードは10文字以上1024文字以下にしてください。" },
	[M_TITLE_ACCOUNT] = { "Your account", "アカウント" },
	[M_SESSIONS] = { "Active sessions", "有効なセッション" },
	[M_THIS_SESSION] = { "this session", "このセッション" },
	[M_REVOKE] = { "Sign out", "サインアウト" },
	[M_RECENT] = { "Recent sign-ins", "最近のサインイン" },
	[M_CHANGE_PW] = { "Change password", "パスワードの変更" },
	[M_CURRENT_PW] = { "Current password", "現在のパスワード" },
	[M_NEW_PW] = { "New password", "新しいパスワード" },
	[M_SAVE] = { "Save", "保存" },
	[M_RECOVERY] = { "Recovery codes", "リカバリーコード" },
	[M_NEW_RECOVERY] = { "Create new recovery codes", "新しいリカバリーコードを作成" },
	[M_TOTP] = { "Authenticator app", "認証アプリ" },
	[M_REENROL] = { "Set up a new authenticator", "新しい認証アプリを設定" },
	[M_LOCKDOWN] = { "Allowed addresses", "許可するアドレス" },
	[M_LOCKDOWN_HINT] = { "Addresses or networks (CIDR) your account may be used from, one per line. Empty: any address.",
	    "アカウントを使用できるアドレスまたはネットワーク(CIDR)を1行に1つ。空欄:すべてのアドレス。" },
	[M_LOCKDOWN_CONFIRM] = { "I understand this list excludes the address I am using now",
	    "このリストに現在のアドレスが含まれないことを理解しました" },
	[M_LOCKDOWN_EXCLUDES] = { "This list excludes your current address; tick the box to confirm.",
	    "このリストには現在のアドレスが含まれていません。確認のチェックを入れてください。" },
	[M_LOCKDOWN_BAD] = { "The list has an invalid address or network.",
	    "リストに無効なアドレスまたはネットワークがあります。" },
	[M_SAVED] = { "Saved.", "保存しました。" },
	[M_TITLE_LOGOUT] = { "Sign out", "サインアウト" },
	[M_SIGN_OUT] = { "Sign out", "サインアウト" },
	[M_FORBIDDEN] = { "The form expired or did not come from this site. Reload the page and try again.",
	    "フォームの有効期限が切れたか、このサイトからの送信ではありません。再読み込みしてやり直してください。" },
	[M_SIGNED_OUT] = { "You are signed out.", "サインアウトしました。" },
	[M_FAILED] = { "Something went wrong; try again later.", "エラーが発生しました。しばらくしてからやり直してください。" },
	[M_OK] = { "success", "成功" },
	[M_FAIL] = { "failed", "失敗" },
	[M_BUSY] = { "Too many sign-ins at the moment; try again shortly.",
	    "現在サインインが集中しています。しばらくしてからやり直してください。" },
	[M_STORE_DOWN] = { "Sign-in is unavailable: the gateway cannot reach its user store. Pages you are already signed in to keep working. Try again in a minute.",
	    "ゲートウェイがユーザーストアに接続できないため、現在サインインできません。サインイン済みのページは引き続き利用できます。しばらくしてからやり直してください。" },
	[M_TITLE_MFA] = { "Authenticator needed", "認証アプリが必要です" },
	[M_MFA_MISSING] = { "The page you asked for needs a code from an authenticator app as a second step, and your account has no authenticator yet.",
	    "要求したページには、2段階目として認証アプリのコードが必要ですが、このアカウントにはまだ認証アプリが設定されていません。" },
	[M_MFA_ASK_ADMIN] = { "Ask your administrator for an enrolment link (they can make one with \u201cpbxgate user totp-reset\u201d); open it to add an authenticator, then sign in again.",
	    "管理者に登録用リンクを依頼してください(管理者は「pbxgate user totp-reset」で作成できます)。リンクを開いて認証アプリを追加し、もう一度サインインしてください。" },
	[M_MFA_SELF] = { "You can add one now: enter your password again to continue to the set-up page.",
	    "今すぐ追加できます。パスワードをもう一度入力して設定ページに進んでください。" },
	[M_MFA_SET_UP] = { "Set up an authenticator", "認証アプリを設定" },
	[M_TITLE_CLIENT] = { "This desktop app build is blocked", "このデスクトップアプリのビルドはブロックされています" },
	[M_CLIENT_BAD] = { "The version of the desktop app you are using is known to be compromised: its vendor shipped it with malware from a breached build system.",
	    "お使いのデスクトップアプリのバージョンは侵害されていることが判明しています。ベンダーの侵害されたビルド環境からマルウェア入りで配布されたものです。" },
	[M_CLIENT_FIX] = { "Uninstall it now, then install version 18.12.425 or later. The web client in a browser keeps working meanwhile.",
	    "今すぐアンインストールし、バージョン18.12.425以降をインストールしてください。その間もブラウザーのWebクライアントは使用できます。" },
	[M_CLIENT_TELL] = { "Tell your administrator, quoting this reference:",
	    "管理者に連絡し、次の参照番号を伝えてください:" },
	[M_CLIENT_SEEN] = { "Detected", "検出されたバージョン" },
	[M_REFERENCE] = { "Reference", "参照番号" },
	[M_TITLE_INTEGRITY] = { "This file was blocked", "このファイルはブロックされました" },
	[M_INTEGRITY_BAD] = { "A file of the phone system's web client differs from the version your administrator approved, so it was not delivered: it may have been tampered with.",
	    "電話システムのWebクライアントのファイルが、管理者が承認したバージョンと異なるため配信されませんでした。改ざんされている可能性があります。" },
	[M_INTEGRITY_FIX] = { "Do not try to work around this. If the phone system was just updated, your administrator has to review and approve the new files.",
	    "回避しようとしないでください。電話システムが更新された直後の場合は、管理者が新しいファイルを確認して承認する必要があります。" },
};

const char *
auth_msg(enum auth_lang l, enum auth_msg m)
{
	if ((unsigned)m >= M_COUNT || msgs[m][l] == NULL)
		return "";
	return msgs[m][l];
}

/* Highest q between "ja" and "en" wins; ties and garbage give English. */
enum auth_lang
auth_lang_pick(const char *al)
{
	double best_ja = 0, best_en = 0;
	const char *p = al;

	for (int items = 0; p != NULL && *p != '\0' && items < 32; items++) {
		size_t n = strcspn(p, ",");
		char tag[16] = "";
		double q = 1.0;
		const char *semi = memchr(p, ';', n);
		size_t tl = semi != NULL ? (size_t)(semi - p) : n;

		while (tl > 0 && (*p == ' ' || *p == '\t'))
			p++, tl--, n--;
		snprintf(tag, sizeof(tag), "%.*s", (int)(tl < 15 ? tl : 15), p);
		tag[strcspn(tag, " \t")] = '\0';
		if (semi != NULL) {
			const char *qs = strstr(semi, "q=");
			if (qs != NULL && qs < p + n)
				q = strtod(qs + 2, NULL);
		}
		if (!(q >= 0 && q <= 1))
			q = 0;
		if ((strncasecmp(tag, "ja", 2) == 0 && (tag[2] == '\0' || tag[2] == '-')) &&
		    q > best_ja)
			best_ja = q;
		if ((strncasecmp(tag, "en", 2) == 0 && (tag[2] == '\0' || tag[2] == '-')) &&
		    q > best_en)
			best_en = q;
		p += n;
		if (*p == ',')
			p++;
	}
	return best_ja > best_en ? AUTH_JA : AUTH_EN;
}

static void
buf_grow(struct auth_buf *b, size_t need)
{
	size_t cap;
	char *np;

	if (b->oom || b->len + need + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + need + 1)
		cap *= 2;
	if (cap > BODY_MAX || (np = realloc(b->p, cap)) == NULL) {
		b->oom = true;
		return;
	}
	b->p = np;
	b->cap = cap;
}

void
auth_buf_add(struct auth_buf *b, const char *s)
{
	size_t n = strlen(s);

	buf_grow(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

void
auth_buf_addf(struct auth_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	buf_grow(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
auth_buf_esc(struct auth_buf *b, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		char one[2] = { *s, '\0' };

		switch (*s) {
		case '&': auth_buf_add(b, "&amp;"); break;
		case '<': auth_buf_add(b, "&lt;"); break;
		case '>': auth_buf_add(b, "&gt;"); break;
		case '"': auth_buf_add(b, "&quot;"); break;
		case '\'': auth_buf_add(b, "&#39;"); break;
		default: auth_buf_add(b, one); break;
		}
	}
}

void
auth_buf_free(struct auth_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
auth_page_begin(struct auth_buf *b, const struct auth_ctx *c,
    enum auth_lang l, const char *title)
{
	const char *brand = c != NULL ? c->s.title : "";

	auth_buf_addf(b, "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	    "<title>", l == AUTH_JA ? "ja" : "en");
	auth_buf_esc(b, title);
	if (brand[0] != '\0') {
		auth_buf_add(b, " - ");
		auth_buf_esc(b, brand);
	}
	auth_buf_addf(b, "</title><style>%s</style></head><body>", auth_style);
	if (brand[0] != '\0') {	/* which of several PBXs this page is */
		auth_buf_add(b, "<p class=\"brand\">");
		auth_buf_esc(b, brand);
		auth_buf_add(b, "</p>");
	}
	auth_buf_add(b, "<h1>");
	auth_buf_esc(b, title);
	auth_buf_add(b, "</h1>\n");
}

void
auth_page_end(struct auth_buf *b, enum auth_lang l, const char *request_id)
{
	if (request_id != NULL && *request_id != '\0') {
		auth_buf_addf(b, "<p class=\"ref\">%s: ", auth_msg(l, M_REFERENCE));
		auth_buf_esc(b, request_id);
		auth_buf_add(b, "</p>\n");
	}
	auth_buf_add(b, "</body></html>\n");
}

void
auth_resp_header(struct auth_http_resp *r, const char *name, const char *value)
{
	if (r->nhdr == AUTH_HDR_MAX)
		return;
	if ((r->hdr[r->nhdr].value = strdup(value)) == NULL)
		return;
	r->hdr[r->nhdr++].name = name;
}

static void
security_headers(struct auth_ctx *c, struct auth_http_resp *r)
{
	char csp[200];

	char own[64];

	/* pages made without a ctx (busy, compromised client) still let
	 * their inline style, and only it, apply */
	if (c == NULL)
		auth_style_hash(own);
	snprintf(csp, sizeof(csp), "default-src 'none'; style-src '%s'; "
	    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	    c != NULL ? c->style_hash : own);
	auth_resp_header(r, "Content-Security-Policy", csp);
	auth_resp_header(r, "Cache-Control", "no-store");
	auth_resp_header(r, "X-Content-Type-Options", "nosniff");
	auth_resp_header(r, "X-Frame-Options", "DENY");
	auth_resp_header(r, "Referrer-Policy", "no-referrer");
}

void
auth_resp_html(struct auth_ctx *c, struct auth_http_resp *r, int status,
    struct auth_buf *b)
{
	if (b->oom) {
		auth_buf_free(b);
		auth_resp_text(r, 500, "internal error\n");
		return;
	}
	r->status = status;
	auth_resp_header(r, "Content-Type", "text/html; charset=utf-8");
	security_headers(c, r);
	r->body = b->p;
	r->body_len = b->len;
	memset(b, 0, sizeof(*b));
}

void
auth_resp_redirect(struct auth_http_resp *r, int status, const char *location)
{
	r->status = status;
	auth_resp_header(r, "Location", location);
	auth_resp_header(r, "Cache-Control", "no-store");
	auth_resp_header(r, "Content-Type", "text/plain; charset=utf-8");
}

void
auth_resp_text(struct auth_http_resp *r, int status, const char *text)
{
	r->status = status;
	free(r->body);
	r->body = strdup(text);
	r->body_len = r->body != NULL ? strlen(r->body) : 0;
	auth_resp_header(r, "Content-Type", "text/plain; charset=utf-8");
	auth_resp_header(r, "Cache-Control", "no-store");
}
