/* mail_html.h -- spans of text to replace, and views: the text the rules
 * match on (what a reader sees), each byte mapped back to the source bytes
 * that produced it, so a hit in the view deletes exactly those bytes.
 *
 * Ownership: a struct mail_spans or mail_view belongs to its caller and is
 * released by mail_spans_free() / mail_view_free(); a view does not point
 * into its source. All functions are thread-safe (no shared state). */
#ifndef PBXGATE_MAIL_HTML_H
#define PBXGATE_MAIL_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAIL_SPANS_MAX 4096

struct mail_span {
	size_t start, end;	/* [start, end) in the text matched */
	size_t rule;		/* index of the rule whose notice replaces it */
};

struct mail_spans {
	struct mail_span *v;
	size_t            n, cap;
};

int mail_spans_add(struct mail_spans *, size_t start, size_t end,
    size_t rule);
void mail_spans_free(struct mail_spans *);

/* One run of the view. `exact`: view byte v + i came from source byte
 * s + i (vlen == slen). Otherwise the run is one unit (a character
 * reference, a CRLF, a text node that could not be aligned byte by byte):
 * any of its view bytes stands for all of [s, s + slen). slen 0 marks a
 * separator that stands for markup (a block tag): nothing to delete. */
struct mail_view_seg {
	size_t v, vlen;
	size_t s, slen;
	bool   exact;
};

struct mail_view {
	char                 *text;	/* NUL-terminated, len bytes */
	size_t                len, cap;
	struct mail_view_seg *seg;	/* ordered by v */
	size_t                nseg, segcap;
};

void mail_view_free(struct mail_view *);
/* Plain text: the text itself, with invisible format characters (soft
 * hyphen, zero-width space/joiners, BOM, bidi controls, ...) left out and
 * every space separator (no-break spaces included) read as ' ', so
 * "Pass<U+200B>word:<U+00A0>X" reads "Password: X" to the rules. 0 or -1
 * (out of memory). */
int mail_view_plain(const char *s, size_t len, struct mail_view *);
/* HTML: what a browser renders, read by libgumbo's HTML5 parser (text,
 * character references decoded as a browser does), block elements as line
 * breaks, plus attribute values and comment text (they reach the
 * recipient too), format characters handled as for plain text. gumbo's
 * memory is bounded by MAIL_HTML_MAX_MEM: past it, -1 with *toobig set
 * (the part cannot be checked). 0, or -1. */
#define MAIL_HTML_MAX_MEM ((size_t)128 << 20)
int mail_html_view(const char *html, size_t len, struct mail_view *,
    bool *toobig);
/* Returns a malloc'd copy of src with each merged span's source bytes
 * removed and the first rule's notice put where the first of them was.
 * html: per-byte removal (every tag between the bytes is kept, so markup
 * stays balanced) and the notice HTML-escaped; plain: the whole source
 * range of each span goes (invisible characters inside it included).
 * NULL only when out of memory. */
char *mail_view_apply(const struct mail_view *, const char *src, size_t len,
    struct mail_spans *, const char *const *notices, bool html,
    size_t *outlen);

/* Internal to mail_view.c and mail_html.c: append to a view. */
int mail_view_emit(struct mail_view *, const char *t, size_t tlen, size_t s,
    size_t slen, bool exact);
int mail_view_sep(struct mail_view *, size_t s);

#endif
