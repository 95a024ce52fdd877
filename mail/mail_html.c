/* mail_html.c -- replacement spans, and the view of an HTML part that rules
 * match on: tags removed (block tags become a line break), character
 * references decoded, each view byte mapped back to the source bytes so a
 * secret split by tags or written as entities is still found and removed. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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

static size_t
escaped_len(const char *s, int html)
{
	size_t n = 0;

	for (; *s; s++)
		n += !html ? 1 : *s == '&' ? 5 : *s == '"' ? 6 :
		    (*s == '<' || *s == '>') ? 4 : 1;
	return n;
}

static char *
put_escaped(char *o, const char *s, int html)
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

static size_t
max_notice(const struct mail_spans *sp, const char *const *notices, int html)
{
	size_t m = 0;

	for (size_t i = 0; i < sp->n; i++) {
		size_t n = escaped_len(notices[sp->v[i].rule], html);
		if (n > m)
			m = n;
	}
	return m;
}

char *
mail_spans_apply(struct mail_spans *sp, const char *s, size_t len,
    const char *const *notices, int html_escape, size_t *outlen)
{
	char *out, *o;
	size_t pos = 0;

	spans_merge(sp);
	out = malloc(len + sp->n * max_notice(sp, notices, html_escape) + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (size_t i = 0; i < sp->n; i++) {
		const struct mail_span *x = &sp->v[i];
		memcpy(o, s + pos, x->start - pos);
		o += x->start - pos;
		o = put_escaped(o, notices[x->rule], html_escape);
		pos = x->end;
	}
	memcpy(o, s + pos, len - pos);
	o += len - pos;
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

/* ---- the view ---- */

static const struct {
	const char *name;
	uint32_t    cp;
} entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' }, { "nbsp", 0xa0 }, { "colon", ':' },
	{ "semi", ';' }, { "comma", ',' }, { "period", '.' },
	{ "excl", '!' }, { "num", '#' }, { "dollar", '$' },
	{ "percnt", '%' }, { "lpar", '(' }, { "rpar", ')' }, { "ast", '*' },
	{ "plus", '+' }, { "equals", '=' }, { "quest", '?' },
	{ "commat", '@' }, { "lsqb", '[' }, { "rsqb", ']' },
	{ "lowbar", '_' }, { "sol", '/' }, { "bsol", '\\' },
	{ "hyphen", 0x2010 }, { "ndash", 0x2013 }, { "mdash", 0x2014 },
	{ "copy", 0xa9 }, { "reg", 0xae }, { "yen", 0xa5 },
	{ "middot", 0xb7 }, { "shy", 0xad }, { "zwj", 0x200d },
	{ "zwnj", 0x200c }, { "ensp", 0x2002 }, { "emsp", 0x2003 },
	{ "thinsp", 0x2009 },
};

static const char *const block_tags[] = {
	"br", "p", "div", "tr", "td", "th", "li", "ul", "ol", "table",
	"tbody", "thead", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
	"blockquote", "pre", "title", "head", "body", "html", "dd", "dt",
	"section", "article", "header", "footer", "center", "img",
};

/* Invisible characters are dropped from the view so "ab&shy;cd" reads
 * "abcd" to the rules. */
static int
invisible(uint32_t cp)
{
	return cp == 0xad || cp == 0x200b || cp == 0x200c || cp == 0x200d ||
	    cp == 0x2060 || cp == 0xfeff;
}

static size_t
utf8_put(char *o, uint32_t cp)
{
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes "&...;" at s[0]; returns its length (0 = not a reference). */
static size_t
entity(const char *s, size_t len, uint32_t *cp)
{
	size_t i = 1, max = len < 32 ? len : 32;
	uint32_t v = 0;

	if (max > 2 && s[1] == '#') {
		int hex = max > 3 && (s[2] == 'x' || s[2] == 'X');
		i = hex ? 3 : 2;
		size_t digits = 0;
		for (; i < max && isxdigit((unsigned char)s[i]); i++, digits++) {
			int d = isdigit((unsigned char)s[i]) ? s[i] - '0' :
			    (tolower((unsigned char)s[i]) - 'a' + 10);
			if (!hex && d > 9)
				break;
			if (v < 0x110000)
				v = v * (hex ? 16 : 10) + (uint32_t)d;
		}
		if (digits == 0 || i >= max || s[i] != ';')
			return 0;
		*cp = v;
		return i + 1;
	}
	while (i < max && isalnum((unsigned char)s[i]))
		i++;
	if (i >= max || s[i] != ';' || i == 1)
		return 0;
	for (size_t e = 0; e < sizeof(entities) / sizeof(entities[0]); e++)
		if (strlen(entities[e].name) == i - 1 &&
		    memcmp(entities[e].name, s + 1, i - 1) == 0) {
			*cp = entities[e].cp;
			return i + 1;
		}
	return 0;
}

/* Length of the markup starting at s[0] == '<' (0 = a literal '<'). */
static size_t
markup(const char *s, size_t len, int *block)
{
	size_t i = 1, nl = 0;
	char name[16];
	char q = 0;

	*block = 0;
	if (len < 2 || !(isalpha((unsigned char)s[1]) || s[1] == '/' ||
	    s[1] == '!' || s[1] == '?'))
		return 0;
	if (len >= 4 && memcmp(s, "<!--", 4) == 0) {
		const char *e = memmem(s + 4, len - 4, "-->", 3);
		return e ? (size_t)(e - s) + 3 : len;
	}
	if (s[1] == '/')
		i = 2;
	while (i < len && isalnum((unsigned char)s[i]) && nl < sizeof(name) - 1)
		name[nl++] = (char)tolower((unsigned char)s[i++]);
	name[nl] = '\0';
	for (size_t b = 0; b < sizeof(block_tags) / sizeof(block_tags[0]); b++)
		if (strcmp(name, block_tags[b]) == 0)
			*block = 1;
	for (; i < len; i++) {
		if (q != 0) {
			if (s[i] == q)
				q = 0;
		} else if (s[i] == '"' || s[i] == '\'')
			q = s[i];
		else if (s[i] == '>')
			return i + 1;
	}
	return len;
}

void
mail_html_view_free(struct mail_html_view *v)
{
	free(v->text);
	free(v->src);
	free(v->srclen);
	memset(v, 0, sizeof(*v));
}

int
mail_html_view(const char *h, size_t len, struct mail_html_view *v)
{
	size_t i = 0, o = 0;

	memset(v, 0, sizeof(*v));
	if (len >= UINT32_MAX)
		return -1;
	/* Every construct shrinks or keeps its size, so len + 1 suffices. */
	v->text = malloc(len + 1);
	v->src = malloc((len + 1) * sizeof(*v->src));
	v->srclen = malloc(len + 1);
	if (v->text == NULL || v->src == NULL || v->srclen == NULL) {
		mail_html_view_free(v);
		return -1;
	}
	while (i < len) {
		size_t n;
		int block;
		uint32_t cp;

		if (h[i] == '<' && (n = markup(h + i, len - i, &block)) > 0) {
			if (block && o > 0 && v->text[o - 1] != '\n') {
				v->text[o] = '\n';
				v->src[o] = (uint32_t)i;
				v->srclen[o++] = 0;
			}
			i += n;
			continue;
		}
		if (h[i] == '&' && (n = entity(h + i, len - i, &cp)) > 0) {
			char u[4];
			size_t k = invisible(cp) ? 0 : utf8_put(u, cp);
			for (size_t j = 0; j < k; j++) {
				v->text[o] = u[j];
				v->src[o] = (uint32_t)i;
				v->srclen[o++] = (uint8_t)n;
			}
			i += n;
			continue;
		}
		v->text[o] = h[i];
		v->src[o] = (uint32_t)i;
		v->srclen[o++] = 1;
		i++;
	}
	v->text[o] = '\0';
	v->len = o;
	return 0;
}

char *
mail_html_apply(const struct mail_html_view *v, const char *h, size_t len,
    struct mail_spans *sp, const char *const *notices, size_t *outlen)
{
	unsigned char *del;
	size_t *ins, nins = 0, k = 0;
	char *out, *o;

	spans_merge(sp);
	del = calloc(len + 1, 1);
	ins = calloc(sp->n + 1, sizeof(*ins));
	out = malloc(len + sp->n * max_notice(sp, notices, 1) + 1);
	if (del == NULL || ins == NULL || out == NULL) {
		free(del);
		free(ins);
		free(out);
		return NULL;
	}
	for (size_t s = 0; s < sp->n; s++) {
		size_t first = SIZE_MAX;
		for (size_t i = sp->v[s].start; i < sp->v[s].end && i < v->len;
		    i++) {
			if (v->srclen[i] == 0)
				continue;
			if (first == SIZE_MAX)
				first = v->src[i];
			memset(del + v->src[i], 1, v->srclen[i]);
		}
		/* del[] marks 1 = deleted, 2 = notice goes here (index in ins) */
		if (first != SIZE_MAX) {
			ins[nins++] = s;
			del[first] |= 2;
		}
	}
	o = out;
	for (size_t i = 0; i < len; i++) {
		if ((del[i] & 2) && k < nins)
			o = put_escaped(o, notices[sp->v[ins[k++]].rule], 1);
		if (!(del[i] & 1))
			*o++ = h[i];
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	free(del);
	free(ins);
	return out;
}
