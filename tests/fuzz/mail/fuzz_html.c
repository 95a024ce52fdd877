/* fuzz_html.c -- libFuzzer target: any bytes as an HTML part through the
 * view (libgumbo) and the span mapping. Invariants: no crash, no leak; every
 * run of the view points inside the source; deleting the source behind any
 * span of the view yields a string no longer than the source plus the
 * notices. The first byte picks the span to delete. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const notices[] = { "[removed]" };
	struct mail_view v;
	struct mail_spans sp = { 0 };
	const char *h;
	size_t len, outlen = 0, a, b;
	bool toobig;
	char *out;

	if (size < 1 || size > 256 * 1024)
		return 0;
	h = (const char *)data + 1;
	len = size - 1;
	if (mail_html_view(h, len, &v, &toobig) < 0)
		return 0;
	if (v.text == NULL ? v.len != 0 : v.text[v.len] != '\0')
		abort();
	for (size_t i = 0; i < v.nseg; i++) {
		const struct mail_view_seg *g = &v.seg[i];
		if (g->v + g->vlen > v.len || g->s + g->slen > len ||
		    (g->exact && (g->vlen != g->slen || (g->vlen != 0 &&
		    (v.text == NULL || memcmp(v.text + g->v, h + g->s,
		    g->vlen) != 0)))))
			abort();
	}
	a = v.len ? data[0] % v.len : 0;
	b = a + (v.len - a) / 2 + 1;
	if (v.len > 0 && mail_spans_add(&sp, a, b > v.len ? v.len : b, 0) == 0) {
		out = mail_view_apply(&v, h, len, &sp, notices, data[0] & 1,
		    &outlen);
		if (out != NULL && outlen > len + strlen(notices[0]) * 6)
			abort();
		free(out);
	}
	mail_spans_free(&sp);
	mail_view_free(&v);
	return 0;
}
