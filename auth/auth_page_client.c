/* auth_page_client.c -- the page a known-compromised desktop-app build gets instead of the PBX. */
#include <string.h>

#include "auth/auth_priv.h"

void
auth_page_client(const char *accept_language, const char *request_id,
    const char *version, const char *os, struct auth_http_resp *resp)
{
	struct auth_buf b = { 0 };
	enum auth_lang l = auth_lang_pick(accept_language);

	memset(resp, 0, sizeof(*resp));
	auth_page_begin(&b, NULL, l, auth_msg(l, M_TITLE_CLIENT));
	auth_buf_addf(&b, "<p class=\"err\">%s</p>\n<p>%s</p>\n",
	    auth_msg(l, M_CLIENT_BAD), auth_msg(l, M_CLIENT_FIX));
	if (version != NULL && version[0] != '\0') {
		auth_buf_addf(&b, "<p>%s: 3CXDesktopApp ", auth_msg(l,
		    M_CLIENT_SEEN));
		auth_buf_esc(&b, version);
		if (os != NULL && os[0] != '\0') {
			auth_buf_add(&b, " (");
			auth_buf_esc(&b, os);
			auth_buf_add(&b, ")");
		}
		auth_buf_add(&b, "</p>\n");
	}
	auth_buf_addf(&b, "<p>%s <code id=\"reference\">", auth_msg(l,
	    M_CLIENT_TELL));
	auth_buf_esc(&b, request_id);
	auth_buf_add(&b, "</code></p>\n");
	auth_page_end(&b, l, NULL);	/* the reference is in the text above */
	auth_resp_html(NULL, resp, 403, &b);
}
