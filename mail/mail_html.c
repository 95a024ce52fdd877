/* mail_html.c -- the view of an HTML part that rules match on, as a browser
 * renders it: libgumbo's HTML5 parser reads the markup (comments, bogus
 * comments, character references with or without ';', all 2,231 named
 * ones), and each text it hands back is aligned with its source bytes so a
 * hit in the view deletes exactly the bytes that render it. */
#include <ctype.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <gumbo.h>

#include "mail/mail_html.h"

/* ---- gumbo's memory: bounded, and freed in one sweep ----
 *
 * Every block gumbo allocates is linked here. Past the budget the
 * allocator jumps back to mail_html_view(), which frees all blocks: gumbo
 * holds nothing but memory, so nothing else is left behind. Freeing by
 * sweep also avoids gumbo_destroy_output(), which recurses once per
 * nesting level (a deep tree would exhaust the stack). */
struct blk {
	struct blk *prev, *next;
	size_t      size;
	_Alignas(max_align_t) unsigned char data[];
};

struct arena {
	struct blk *head;
	size_t      live, max;
	bool        toobig;
	jmp_buf     fail;
};

static void *
arena_alloc(void *ud, size_t size)
{
	struct arena *a = ud;
	struct blk *b;

	/* Counted with the block header and malloc's own (16 bytes): gumbo
	 * makes many tiny blocks, where the overhead is most of the cost. */
	if (size > SIZE_MAX / 2 || size + sizeof(*b) + 16 > a->max - a->live) {
		a->toobig = true;
		longjmp(a->fail, 1);
	}
	if ((b = malloc(sizeof(*b) + size)) == NULL)
		longjmp(a->fail, 1);
	b->size = size + sizeof(*b) + 16;
	b->prev = NULL;
	b->next = a->head;
	if (a->head != NULL)
		a->head->prev = b;
	a->head = b;
	a->live += b->size;
	return b->data;
}

static void
arena_free(void *ud, void *p)
{
	struct arena *a = ud;
	struct blk *b;

	if (p == NULL)
		return;
	b = (struct blk *)((unsigned char *)p - offsetof(struct blk, data));
	if (b->prev != NULL)
		b->prev->next = b->next;
	else
		a->head = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
	a->live -= b->size;
	free(b);
}

static void
arena_sweep(struct arena *a)
{
	while (a->head != NULL) {
		struct blk *n = a->head->next;
		free(a->head);
		a->head = n;
	}
	a->live = 0;
}

/* ---- aligning a decoded text with its source ---- */

/* The source bytes a character reference at O[i] == '&' can take: '&',
 * '#' and 'x' for a numeric one, then letters and digits, then one ';'.
 * What the browser decodes from them (the reference and any letters it
 * did not take) is one unit of the view. */
static size_t
ref_end(const char *o, size_t olen, size_t i)
{
	size_t e = i + 1;

	if (e < olen && o[e] == '#') {
		e++;
		if (e < olen && (o[e] == 'x' || o[e] == 'X'))
			e++;
	}
	while (e < olen && isalnum((unsigned char)o[e]))
		e++;
	if (e < olen && o[e] == ';')
		e++;
	return e;
}

/* How many decoded bytes T[j..] the unit O[i, e) became: at least one,
 * at most two code points more than its source, and followed by what
 * O[e] decodes to. 0 when that cannot be told. */
static size_t
ref_out(const char *t, size_t tlen, size_t j, const char *o, size_t olen,
    size_t i, size_t e)
{
	size_t most = (e - i) + 8, k;
	char want;

	if (e == olen)
		return tlen - j >= 1 && tlen - j <= most ? tlen - j : 0;
	if (o[e] == '\0')
		return 0;	/* dropped or replaced: ambiguous */
	want = o[e] == '\r' ? '\n' : o[e];
	for (k = 1; k <= most && j + k < tlen; k++)
		if (t[j + k] == want)
			return k;
	return 0;
}

/* 1 aligned and emitted, 0 not alignable (the caller emits the text as
 * one unit), -1 out of memory. */
static int
align(struct mail_view *v, const char *t, size_t tlen, const char *o,
    size_t olen, size_t off)
{
	size_t i = 0, j = 0, r, k;

	while (i < olen) {
		unsigned char c = (unsigned char)o[i];

		if (c == '&') {
			r = ref_end(o, olen, i);
			if ((k = ref_out(t, tlen, j, o, olen, i, r)) == 0)
				return 0;
			if (mail_view_emit(v, t + j, k, off + i, r - i,
			    false) < 0)
				return -1;
			i = r, j += k;
		} else if (c == '\r') {	/* CRLF and CR read as LF */
			r = i + 1 < olen && o[i + 1] == '\n' ? 2 : 1;
			if (j >= tlen || t[j] != '\n')
				return 0;
			if (mail_view_emit(v, "\n", 1, off + i, r, false) < 0)
				return -1;
			i += r, j++;
		} else if (c == '\0') {	/* dropped, or U+FFFD */
			if (tlen - j >= 3 && memcmp(t + j, "\xef\xbf\xbd", 3) == 0) {
				if (mail_view_emit(v, t + j, 3, off + i, 1,
				    false) < 0)
					return -1;
				j += 3;
			}
			i++;
		} else {
			for (r = i; r < olen && j + (r - i) < tlen &&
			    o[r] == t[j + (r - i)] && o[r] != '&' &&
			    o[r] != '\r' && o[r] != '\0'; r++)
				;
			if (r == i)
				return 0;
			if (mail_view_emit(v, t + j, r - i, off + i, r - i,
			    true) < 0)
				return -1;
			j += r - i, i = r;
		}
	}
	return j == tlen ? 1 : 0;
}

/* Emits decoded text t whose source is o[0, olen) at offset off: byte by
 * byte where it aligns, else as one unit (deleting any of it deletes the
 * whole source, the safe side). */
static int
emit_text(struct mail_view *v, const char *t, const char *o, size_t olen,
    size_t off)
{
	size_t tlen = strlen(t), len0 = v->len, nseg0 = v->nseg;
	int r = align(v, t, tlen, o, olen, off);

	if (r != 0)
		return r < 0 ? -1 : 0;
	v->len = len0;		/* undo the partial alignment */
	v->nseg = nseg0;
	if (v->text != NULL)
		v->text[len0] = '\0';
	return mail_view_emit(v, t, tlen, off, olen, false);
}

/* Where does a piece gumbo reports lie in the source? false when it does
 * not point into it (text the parser made up). */
static bool
in_source(const char *h, size_t len, const char *p, size_t n)
{
	return p != NULL && p >= h && (size_t)(p - h) <= len &&
	    n <= len - (size_t)(p - h);
}

/* Comments and CDATA: text without the delimiters, found inside the
 * original; not found (CRs, NULs), the whole node is the unit. */
static int
emit_delimited(struct mail_view *v, const char *h, size_t len,
    const GumboText *g)
{
	const char *o = g->original_text.data, *at;
	size_t olen = g->original_text.length, tlen = strlen(g->text);

	if (!in_source(h, len, o, olen))
		return 0;
	if (mail_view_sep(v, (size_t)(o - h)) < 0)
		return -1;
	at = tlen > 0 ? memmem(o, olen, g->text, tlen) : NULL;
	if (at != NULL && mail_view_emit(v, g->text, tlen, (size_t)(at - h),
	    tlen, true) < 0)
		return -1;
	if (at == NULL && tlen > 0 && mail_view_emit(v, g->text, tlen,
	    (size_t)(o - h), olen, false) < 0)
		return -1;
	return mail_view_sep(v, (size_t)(o - h) + olen);
}

/* Attribute values reach the reader too (alt and title text, form
 * values): each is a block of its own. */
static int
emit_attrs(struct mail_view *v, const char *h, size_t len,
    const GumboVector *attrs)
{
	for (unsigned i = 0; i < attrs->length; i++) {
		const GumboAttribute *a = attrs->data[i];
		const char *o = a->original_value.data;
		size_t olen = a->original_value.length;

		if (a->value == NULL || a->value[0] == '\0' ||
		    !in_source(h, len, o, olen))
			continue;
		if (olen >= 2 && (o[0] == '"' || o[0] == '\'') &&
		    o[olen - 1] == o[0])
			o++, olen -= 2;
		if (mail_view_sep(v, (size_t)(o - h)) < 0 ||
		    emit_text(v, a->value, o, olen, (size_t)(o - h)) < 0 ||
		    mail_view_sep(v, (size_t)(o - h) + olen) < 0)
			return -1;
	}
	return 0;
}

static bool
is_block(GumboTag tag)
{
	static const GumboTag block[] = {
		GUMBO_TAG_BR, GUMBO_TAG_P, GUMBO_TAG_DIV, GUMBO_TAG_TR,
		GUMBO_TAG_TD, GUMBO_TAG_TH, GUMBO_TAG_LI, GUMBO_TAG_UL,
		GUMBO_TAG_OL, GUMBO_TAG_TABLE, GUMBO_TAG_TBODY,
		GUMBO_TAG_THEAD, GUMBO_TAG_TFOOT, GUMBO_TAG_CAPTION,
		GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4,
		GUMBO_TAG_H5, GUMBO_TAG_H6, GUMBO_TAG_HR, GUMBO_TAG_BLOCKQUOTE,
		GUMBO_TAG_PRE, GUMBO_TAG_TITLE, GUMBO_TAG_HEAD, GUMBO_TAG_BODY,
		GUMBO_TAG_HTML, GUMBO_TAG_DD, GUMBO_TAG_DT, GUMBO_TAG_DL,
		GUMBO_TAG_SECTION, GUMBO_TAG_ARTICLE, GUMBO_TAG_HEADER,
		GUMBO_TAG_FOOTER, GUMBO_TAG_CENTER, GUMBO_TAG_IMG,
		GUMBO_TAG_ADDRESS, GUMBO_TAG_FORM, GUMBO_TAG_FIELDSET,
		GUMBO_TAG_NAV, GUMBO_TAG_ASIDE, GUMBO_TAG_MAIN,
		GUMBO_TAG_FIGURE, GUMBO_TAG_FIGCAPTION, GUMBO_TAG_OPTION,
		GUMBO_TAG_TEXTAREA, GUMBO_TAG_INPUT, GUMBO_TAG_BUTTON,
		GUMBO_TAG_SCRIPT, GUMBO_TAG_STYLE,
	};

	for (size_t i = 0; i < sizeof(block) / sizeof(block[0]); i++)
		if (block[i] == tag)
			return true;
	return false;
}

/* ---- the walk, in document order, without recursion ---- */

struct frame {
	const GumboNode *n;
	unsigned         next;	/* next child to visit */
};

static const GumboVector *
children(const GumboNode *n)
{
	if (n->type == GUMBO_NODE_DOCUMENT)
		return &n->v.document.children;
	if (n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE)
		return &n->v.element.children;
	return NULL;
}

static size_t
node_pos(const GumboNode *n, bool end)
{
	if (n->type != GUMBO_NODE_ELEMENT && n->type != GUMBO_NODE_TEMPLATE)
		return 0;
	return end ? n->v.element.end_pos.offset : n->v.element.start_pos.offset;
}

/* Visiting a node: its own text, or an element's block break and
 * attributes before its children. */
static int
visit(struct mail_view *v, const char *h, size_t len, const GumboNode *n)
{
	const GumboText *g = &n->v.text;

	switch (n->type) {
	case GUMBO_NODE_TEXT:
	case GUMBO_NODE_WHITESPACE:
		if (!in_source(h, len, g->original_text.data,
		    g->original_text.length))
			return 0;
		return emit_text(v, g->text, g->original_text.data,
		    g->original_text.length,
		    (size_t)(g->original_text.data - h));
	case GUMBO_NODE_CDATA:
	case GUMBO_NODE_COMMENT:
		return emit_delimited(v, h, len, g);
	case GUMBO_NODE_ELEMENT:
	case GUMBO_NODE_TEMPLATE:
		if (is_block(n->v.element.tag) &&
		    mail_view_sep(v, node_pos(n, false)) < 0)
			return -1;
		return emit_attrs(v, h, len, &n->v.element.attributes);
	default:
		return 0;
	}
}

static int
walk(struct mail_view *v, const char *h, size_t len, const GumboNode *root)
{
	struct frame *st = NULL;
	size_t depth = 0, cap = 0;
	int rc = 0;

	if (visit(v, h, len, root) < 0)
		return -1;
	if ((st = malloc(64 * sizeof(*st))) == NULL)
		return -1;
	cap = 64;
	st[depth++] = (struct frame){ root, 0 };
	while (depth > 0 && rc == 0) {
		struct frame *f = &st[depth - 1];
		const GumboVector *ch = children(f->n);
		const GumboNode *c;

		if (ch == NULL || f->next >= ch->length) {
			if ((f->n->type == GUMBO_NODE_ELEMENT ||
			    f->n->type == GUMBO_NODE_TEMPLATE) &&
			    is_block(f->n->v.element.tag))
				rc = mail_view_sep(v, node_pos(f->n, true));
			depth--;
			continue;
		}
		c = ch->data[f->next++];
		if ((rc = visit(v, h, len, c)) < 0)
			break;
		if (children(c) == NULL)
			continue;
		if (depth == cap) {
			struct frame *p = realloc(st, 2 * cap * sizeof(*st));
			if (p == NULL) {
				rc = -1;
				break;
			}
			st = p, cap *= 2;
		}
		st[depth++] = (struct frame){ c, 0 };
	}
	free(st);
	return rc;
}

/* The parse alone, so that the jump back lands in a frame that is still
 * live: nothing after it allocates from the arena. NULL when the arena
 * ran out. */
static GumboOutput *
parse(struct arena *a, const GumboOptions *opt, const char *h, size_t len)
{
	if (setjmp(a->fail) != 0)
		return NULL;
	return gumbo_parse_with_options(opt, h, len);
}

int
mail_html_view(const char *h, size_t len, struct mail_view *v, bool *toobig)
{
	GumboOptions opt = kGumboDefaultOptions;
	struct arena *a;
	GumboOutput *out;
	int rc = -1;

	memset(v, 0, sizeof(*v));
	*toobig = false;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	/* gumbo's tree for ordinary mail HTML is a few times its size;
	 * nesting and formatting-element tricks that blow it up end here
	 * instead of in the process. */
	a->max = MAIL_HTML_MAX_MEM;
	opt.allocator = arena_alloc;
	opt.deallocator = arena_free;
	opt.userdata = a;
	opt.max_errors = 0;	/* parse errors are not kept */
	if ((out = parse(a, &opt, h, len)) != NULL)
		rc = walk(v, h, len, out->document);
	*toobig = a->toobig;
	arena_sweep(a);
	free(a);
	if (rc < 0)
		mail_view_free(v);
	return rc;
}
