/* mail_html.h -- spans of text to replace, and the tag-stripped,
 * entity-decoded view of HTML that maps every byte back to its source. */
#ifndef PBXGATE_MAIL_HTML_H
#define PBXGATE_MAIL_HTML_H

#include <stddef.h>
#include <stdint.h>

#define MAIL_SPANS_MAX 4096

struct mail_span {
	size_t start, end;	/* [start, end) in the text matched */
	size_t rule;		/* index of the rule whose notice replaces it */
};

/* Owned by the caller; mail_spans_free() releases v. */
struct mail_spans {
	struct mail_span *v;
	size_t            n, cap;
};

int mail_spans_add(struct mail_spans *, size_t start, size_t end,
    size_t rule);
void mail_spans_free(struct mail_spans *);
/* Sorts and merges the spans, then returns a malloc'd copy of s with each
 * merged span replaced by its first rule's notice (HTML-escaped when asked).
 * NULL only when out of memory. */
char *mail_spans_apply(struct mail_spans *, const char *s, size_t len,
    const char *const *notices, int html_escape, size_t *outlen);

/* The view: text[i] came from source bytes [src[i], src[i] + srclen[i]);
 * srclen 0 marks a separator standing for a block tag (nothing to delete). */
struct mail_html_view {
	char     *text;
	size_t    len;
	uint32_t *src;
	uint8_t  *srclen;
};

int mail_html_view(const char *html, size_t len, struct mail_html_view *);
void mail_html_view_free(struct mail_html_view *);
/* Deletes the source bytes behind each span of the view, keeps every tag,
 * and inserts the escaped notice where the first deleted byte was. */
char *mail_html_apply(const struct mail_html_view *, const char *html,
    size_t len, struct mail_spans *, const char *const *notices,
    size_t *outlen);

#endif
