/* auth_page_integrity.c -- the page a browser gets instead of client code that differs from what was pinned. */
#include <string.h>

#include "auth/auth_priv.h"

void
auth_page_integrity(const char *accept_language, const char *request_id,
    struct auth_http_resp *resp)
{
	struct auth_buf b = { 0 };
	enum auth_lang l = auth_lang_pick(accept_language);

	memset(resp, 0, sizeof(*resp));
	auth_page_begin(&b, NULL, l, auth_msg(l, M_TITLE_INTEGRITY));
	auth_buf_addf(&b, "<p class=\"err\">%s</p>\n<p>%s</p>\n",
	    auth_msg(l, M_INTEGRITY_BAD), auth_msg(l, M_INTEGRITY_FIX));
	auth_buf_addf(&b, "<p>%s <code id=\"reference\">", auth_msg(l,
	    M_CLIENT_TELL));
	auth_buf_esc(&b, request_id);
	auth_buf_add(&b, "</code></p>\n");
	auth_page_end(&b, l, NULL);	/* the reference is in the text above */
	auth_resp_html(NULL, resp, 502, &b);
}
