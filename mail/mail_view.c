/* mail_view.c -- replacement spans, and the view the rules match on: text
 * as a reader sees it, each byte mapped back to its source so that a hit
 * deletes exactly the bytes behind it. The HTML view is built in
 * mail_html.c; this file holds what plain text and HTML share. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mail/mail_html.h"

int
mail_spans_add(struct mail_spans *sp, size_t start, size_t end, size_t rule)
{
	if (sp->n >= MAIL_SPANS_MAX)
		return -1;
	if (sp->n == sp->cap) {
		size_t cap = sp->cap ? sp->cap * 2 : 16;
		struct mail_span *v = realloc(sp->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		sp->v = v;
		sp->cap = cap;
	}
	sp->v[sp->n++] = (struct mail_span){ start, end, rule };
	return 0;
}

void
mail_spans_free(struct mail_spans *sp)
{
	free(sp->v);
	sp->v = NULL;
	sp->n = sp->cap = 0;
}

static int
span_cmp(const void *a, const void *b)
{
	const struct mail_span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Overlapping or touching spans become one, keeping the earliest rule. */
static void
spans_merge(struct mail_spans *sp)
{
	size_t o = 0;

	if (sp->n == 0)
		return;
	qsort(sp->v, sp->n, sizeof(sp->v[0]), span_cmp);
	for (size_t i = 1; i < sp->n; i++) {
		if (sp->v[i].start <= sp->v[o].end) {
			if (sp->v[i].end > sp->v[o].end)
				sp->v[o].end = sp->v[i].end;
		} else
			sp->v[++o] = sp->v[i];
	}
	sp->n = o + 1;
}

/* ---- building a view ---- */

void
mail_view_free(struct mail_view *v)
{
	free(v->text);
	free(v->seg);
	memset(v, 0, sizeof(*v));
}

static int
text_put(struct mail_view *v, const char *t, size_t n)
{
	if (v->cap - v->len <= n) {
		size_t cap = v->cap ? v->cap : 256;
		char *p;
		while (cap - v->len <= n) {
			if (cap > SIZE_MAX / 2)
				return -1;
			cap *= 2;
		}
		if ((p = realloc(v->text, cap)) == NULL)
			return -1;
		v->text = p;
		v->cap = cap;
	}
	memcpy(v->text + v->len, t, n);
	v->len += n;
	v->text[v->len] = '\0';
	return 0;
}

/* Adds a run for the view bytes [vs, v->len); exact runs that continue the
 * previous one in both view and source are merged into it. */
static int
seg_put(struct mail_view *v, size_t vs, size_t s, size_t slen, bool exact)
{
	struct mail_view_seg *last = v->nseg ? &v->seg[v->nseg - 1] : NULL;
	size_t vlen = v->len - vs;

	if (vlen == 0)
		return 0;
	if (exact && last != NULL && last->exact && last->v + last->vlen == vs &&
	    last->s + last->slen == s) {
		last->vlen += vlen;
		last->slen += slen;
		return 0;
	}
	if (v->nseg == v->segcap) {
		size_t cap = v->segcap ? v->segcap * 2 : 64;
		struct mail_view_seg *p = realloc(v->seg, cap * sizeof(*p));
		if (p == NULL)
			return -1;
		v->seg = p;
		v->segcap = cap;
	}
	v->seg[v->nseg++] = (struct mail_view_seg){ vs, vlen, s, slen, exact };
	return 0;
}

/* Characters a reader does not see, which would split a label for the
 * rules ("Pass<ZWSP>word"): Unicode format characters (Cf: soft hyphen,
 * ZWSP, ZWJ, ZWNJ, word joiner, BOM, bidi controls, ...), the combining
 * grapheme joiner, variation selectors and the Hangul fillers. */
static bool
invisible(gunichar c)
{
	return g_unichar_type(c) == G_UNICODE_FORMAT || c == 0x034f ||
	    (c >= 0x180b && c <= 0x180d) || c == 0x115f || c == 0x1160 ||
	    c == 0x3164 || c == 0xffa0 || (c >= 0xfe00 && c <= 0xfe0f) ||
	    (c >= 0xe0100 && c <= 0xe01ef);
}

/* No-break and other typographic spaces read as ' ' (U+3000, the
 * ideographic space, is kept: Japanese rules name it). */
static bool
odd_space(gunichar c)
{
	return c != ' ' && c != 0x3000 &&
	    g_unichar_type(c) == G_UNICODE_SPACE_SEPARATOR;
}

/* The code point at t[i] and its length (an invalid byte counts as one
 * byte of its own, never a reason to skip text). */
static gunichar
cp_at(const char *t, size_t tlen, size_t i, size_t *n)
{
	gunichar c;

	*n = 1;
	if ((unsigned char)t[i] < 0x80)
		return (unsigned char)t[i];
	c = g_utf8_get_char_validated(t + i, (gssize)(tlen - i < 4 ?
	    tlen - i : 4));
	if (c == (gunichar)-1 || c == (gunichar)-2)
		return 0xfffd;
	*n = (size_t)(g_utf8_next_char(t + i) - (t + i));
	return c;
}

/* A unit: its view text, filtered, stands for all of [s, s + slen). */
static int
emit_unit(struct mail_view *v, const char *t, size_t tlen, size_t s,
    size_t slen)
{
	size_t vs = v->len, n;

	for (size_t i = 0; i < tlen; i += n) {
		gunichar c = cp_at(t, tlen, i, &n);
		if (invisible(c))
			continue;
		if (text_put(v, odd_space(c) ? " " : t + i, odd_space(c) ? 1 :
		    n) < 0)
			return -1;
	}
	return seg_put(v, vs, s, slen, false);
}

int
mail_view_emit(struct mail_view *v, const char *t, size_t tlen, size_t s,
    size_t slen, bool exact)
{
	size_t run = 0, n, vs;

	if (!exact)
		return emit_unit(v, t, tlen, s, slen);
	for (size_t i = 0; i < tlen; i += n) {
		gunichar c = cp_at(t, tlen, i, &n);

		if (!invisible(c) && !odd_space(c))
			continue;
		vs = v->len;
		if (text_put(v, t + run, i - run) < 0 ||
		    seg_put(v, vs, s + run, i - run, true) < 0)
			return -1;
		if (odd_space(c)) {
			vs = v->len;
			if (text_put(v, " ", 1) < 0 ||
			    seg_put(v, vs, s + i, n, false) < 0)
				return -1;
		}
		run = i + n;
	}
	vs = v->len;
	if (text_put(v, t + run, tlen - run) < 0)
		return -1;
	return seg_put(v, vs, s + run, tlen - run, true);
}

int
mail_view_sep(struct mail_view *v, size_t s)
{
	size_t vs = v->len;

	if (v->len == 0 || v->text[v->len - 1] == '\n')
		return 0;
	if (text_put(v, "\n", 1) < 0)
		return -1;
	return seg_put(v, vs, s, 0, false);
}

int
mail_view_plain(const char *s, size_t len, struct mail_view *v)
{
	memset(v, 0, sizeof(*v));
	if (text_put(v, "", 0) < 0 || mail_view_emit(v, s, len, 0, len,
	    true) < 0) {
		mail_view_free(v);
		return -1;
	}
	return 0;
}

/* ---- applying spans ---- */

static size_t
escaped_len(const char *s, bool html)
{
	size_t n = 0;

	for (; *s; s++)
		n += !html ? 1 : *s == '&' ? 5 : *s == '"' ? 6 :
		    (*s == '<' || *s == '>') ? 4 : 1;
	return n;
}

static char *
put_escaped(char *o, const char *s, bool html)
{
	for (; *s; s++) {
		const char *e = NULL;
		if (html && *s == '&')
			e = "&amp;";
		else if (html && *s == '<')
			e = "&lt;";
		else if (html && *s == '>')
			e = "&gt;";
		else if (html && *s == '"')
			e = "&quot;";
		if (e != NULL) {
			for (const char *q = e; *q != '\0'; q++)
				*o++ = *q;
		} else
			*o++ = *s;
	}
	return o;
}

/* First run that ends after view offset `at`. */
static size_t
seg_find(const struct mail_view *v, size_t at)
{
	size_t lo = 0, hi = v->nseg;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->seg[mid].v + v->seg[mid].vlen <= at)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct ins {
	size_t at, rule;
};

static int
ins_cmp(const void *a, const void *b)
{
	const struct ins *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Marks the source bytes behind view span [a, b) in del (html: each run's
 * own bytes; plain: the whole range); returns the first one, or SIZE_MAX
 * when the span stands for no source byte. */
static size_t
mark_span(const struct mail_view *v, size_t a, size_t b, size_t len,
    unsigned char *del, bool html)
{
	size_t lo = SIZE_MAX, hi = 0;

	for (size_t i = seg_find(v, a); i < v->nseg && v->seg[i].v < b; i++) {
		const struct mail_view_seg *g = &v->seg[i];
		size_t x = g->s, y = g->s + g->slen;

		if (g->slen == 0)
			continue;
		if (g->exact) {
			x = g->s + (a > g->v ? a - g->v : 0);
			y = g->s + ((b < g->v + g->vlen ? b : g->v + g->vlen) -
			    g->v);
		}
		if (y > len)
			y = len;
		if (x >= y)
			continue;
		if (html)
			memset(del + x, 1, y - x);
		lo = x < lo ? x : lo;
		hi = y > hi ? y : hi;
	}
	if (!html && lo != SIZE_MAX)
		memset(del + lo, 1, hi - lo);
	return lo;
}

char *
mail_view_apply(const struct mail_view *v, const char *src, size_t len,
    struct mail_spans *sp, const char *const *notices, bool html,
    size_t *outlen)
{
	unsigned char *del;
	struct ins *ins;
	size_t nins = 0, k = 0, maxn = 0;
	char *out = NULL, *o;

	spans_merge(sp);
	del = calloc(len + 1, 1);
	ins = calloc(sp->n + 1, sizeof(*ins));
	if (del == NULL || ins == NULL)
		goto done;
	for (size_t i = 0; i < sp->n; i++) {
		size_t at = mark_span(v, sp->v[i].start, sp->v[i].end, len,
		    del, html);
		size_t n = escaped_len(notices[sp->v[i].rule], html);
		if (at == SIZE_MAX)
			continue;
		ins[nins++] = (struct ins){ at, sp->v[i].rule };
		maxn = n > maxn ? n : maxn;
	}
	qsort(ins, nins, sizeof(*ins), ins_cmp);
	if ((out = malloc(len + nins * maxn + 1)) == NULL)
		goto done;
	o = out;
	for (size_t i = 0; i <= len; i++) {
		/* One notice per place, the earliest rule's. */
		if (k < nins && ins[k].at == i)
			o = put_escaped(o, notices[ins[k].rule], html);
		while (k < nins && ins[k].at == i)
			k++;
		if (i < len && !del[i])
			*o++ = src[i];
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
done:
	free(del);
	free(ins);
	return out;
}
