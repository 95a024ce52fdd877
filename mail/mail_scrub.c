/* mail_scrub.c -- the MIME scrubber: walks a message parsed by GMime, applies
 * the rules to decoded text (and to a tag-stripped view of HTML) and to whole
 * parts, and writes the scrubbed message back as valid MIME. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "mail/mail.h"
#include "mail/mail_priv.h"
#include "mail/mail_html.h"

#define MAX_DEPTH  32		/* nested multiparts / messages */
#define MAX_SPANS  4096		/* secrets in one text: beyond, fail closed */

struct scrub {
	const struct mail_rules  *rs;
	struct mail_scrub_result *res;
	bool                      active[MAIL_RULES_MAX];
	bool                      changed;
	bool                      failed;
	bool                      verifying;	/* re-reading our own output */
	size_t                    residue;	/* hits found while verifying */
	char                     *err;
	size_t                    errlen;
};

enum disp { D_KEEP, D_DROP, D_REPLACE };

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static GMimeParserOptions *parser_opts;

static void
gmime_setup(void)
{
	/* Raw 8-bit headers are tried in this order (Japanese PBX templates). */
	static const char *fallback[] = { "UTF-8", "ISO-2022-JP", "Shift_JIS",
	    "EUC-JP", "ISO-8859-1", NULL };

	g_mime_init();
	parser_opts = g_mime_parser_options_new();
	g_mime_parser_options_set_fallback_charsets(parser_opts, fallback);
}

void
mail_gmime_init(void)
{
	pthread_once(&gmime_once, gmime_setup);
}

static void
fail(struct scrub *sc, const char *msg, const char *path)
{
	if (!sc->failed)
		snprintf(sc->err, sc->errlen, "%s (part %s)", msg,
		    path[0] ? path : "1");
	sc->failed = true;
}

static void
add_hit(struct scrub *sc, size_t ri, const char *path)
{
	const struct mail_rule *r = &sc->rs->rule[ri];
	struct mail_scrub_result *res = sc->res;

	if (r->action == MAIL_ACT_REJECT && res->reject_rule[0] == '\0')
		snprintf(res->reject_rule, sizeof(res->reject_rule), "%s",
		    r->name);
	for (size_t i = 0; i < res->nhits; i++)
		if (strcmp(res->hits[i].rule, r->name) == 0 &&
		    strcmp(res->hits[i].part, path) == 0) {
			res->hits[i].count++;
			return;
		}
	if (res->nhits >= MAIL_MAX_HITS)
		return;
	struct mail_hit *h = &res->hits[res->nhits++];
	snprintf(h->rule, sizeof(h->rule), "%s", r->name);
	snprintf(h->part, sizeof(h->part), "%s", path[0] ? path : "1");
	h->action = r->action;
	h->count = 1;
	h->line = r->line;
}

static const char *
rule_notice(const struct scrub *sc, size_t ri)
{
	const struct mail_rule *r = &sc->rs->rule[ri];

	return r->notice ? r->notice : sc->rs->notice;
}

/* ---- spans: what to replace in one text ---- */

static size_t
utf8_step(const char *s, size_t len, size_t i)
{
	size_t n = 1;

	while (i + n < len && ((unsigned char)s[i + n] & 0xc0) == 0x80 && n < 4)
		n++;
	return n;
}

/* Does a notice start at s[a]? Then the "secret" a rule found is our own
 * replacement text, and scrubbing stays idempotent. */
static bool
at_notice(const struct scrub *sc, const char *s, size_t len, size_t a)
{
	const struct mail_rules *rs = sc->rs;

	for (size_t i = 0; i <= rs->n; i++) {
		const char *n = i < rs->n ? rs->rule[i].notice : rs->notice;
		size_t nl = n ? strlen(n) : 0;
		if (nl > 0 && len - a >= nl && memcmp(s + a, n, nl) == 0)
			return true;
	}
	return false;
}

/* Runs every active rule of the given kinds over `s`; records spans to
 * replace in m->spans. Sets *drop when a drop rule matched. */
static void
collect(struct scrub *sc, const char *s, size_t len, unsigned kinds,
    const char *path, struct mail_spans *sp, bool *drop)
{
	const struct mail_rules *rs = sc->rs;

	for (size_t ri = 0; ri < rs->n && !sc->failed; ri++) {
		const struct mail_rule *r = &rs->rule[ri];
		pcre2_match_data *md;
		size_t off = 0;

		if (!sc->active[ri] || !(kinds & (1u << r->kind)) ||
		    r->pattern == NULL)
			continue;
		md = pcre2_match_data_create_from_pattern(r->pattern, NULL);
		if (md == NULL) {
			fail(sc, "out of memory", path);
			return;
		}
		while (off <= len) {
			int rc = pcre2_match(r->pattern, (PCRE2_SPTR)s, len,
			    off, 0, md, rs->mctx);
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
			size_t a, b;

			if (rc == PCRE2_ERROR_NOMATCH)
				break;
			if (rc < 0) {
				/* A pattern that hits the match limit must not
				 * let the text through unchecked. */
				fail(sc, "a scrub pattern exceeded its match "
				    "limit", path);
				break;
			}
			a = ov[0], b = ov[1];
			if (r->secret_group > 0 && (uint32_t)rc > r->secret_group &&
			    ov[2 * r->secret_group] != PCRE2_UNSET) {
				a = ov[2 * r->secret_group];
				b = ov[2 * r->secret_group + 1];
			}
			if (at_notice(sc, s, len, a)) {
				/* Already scrubbed (the message passed a
				 * scrubber before): not a new secret. */
				off = b > ov[0] ? b : ov[0] + 1;
				if (off > len)
					break;
				continue;
			}
			if (sc->verifying) {
				/* Our output: any replace hit left is a
				 * secret the source mapping did not remove. */
				if (r->action == MAIL_ACT_REPLACE && b > a)
					sc->residue++;
			} else {
				add_hit(sc, ri, path);
				if (r->action == MAIL_ACT_DROP)
					*drop = true;
			}
			if (!sc->verifying && r->action == MAIL_ACT_REPLACE &&
			    b > a && mail_spans_add(sp, a, b, ri) < 0) {
				fail(sc, "too many secrets in one part", path);
				break;
			}
			if (ov[1] > ov[0])
				off = ov[1];
			else if (ov[0] < len)
				off = ov[0] + utf8_step(s, len, ov[0]);
			else
				break;
		}
		pcre2_match_data_free(md);
	}
}

static void
notices_of(const struct scrub *sc, const char **notices)
{
	for (size_t i = 0; i < sc->rs->n; i++)
		notices[i] = rule_notice(sc, i);
}

/* Plain text (and the raw source of HTML for URL rules): rules see the
 * text without invisible format characters. Returns a new string or NULL
 * when nothing was replaced. */
static char *
scrub_plain(struct scrub *sc, const char *s, size_t len, unsigned kinds,
    bool html_escape, const char *path, bool *drop, size_t *outlen)
{
	struct mail_view v;
	struct mail_spans sp = { 0 };
	const char *notices[MAIL_RULES_MAX];
	char *out = NULL;

	if (mail_view_plain(s, len, &v) < 0) {
		fail(sc, "out of memory", path);
		return NULL;
	}
	collect(sc, v.text, v.len, kinds, path, &sp, drop);
	if (!sc->failed && sp.n > 0) {
		notices_of(sc, notices);
		out = mail_view_apply(&v, s, len, &sp, notices, html_escape,
		    outlen);
		if (out == NULL)
			fail(sc, "out of memory", path);
	}
	mail_spans_free(&sp);
	mail_view_free(&v);
	return out;
}

/* The HTML view (what a browser renders) of s, or fail. */
static bool
html_view(struct scrub *sc, const char *s, size_t len, const char *path,
    struct mail_view *v)
{
	bool toobig;

	if (mail_html_view(s, len, v, &toobig) == 0)
		return true;
	fail(sc, toobig ? "HTML too large or too deeply nested to check" :
	    "out of memory reading HTML", path);
	return false;
}

/* HTML: text rules run on the view and their hits are mapped back to the
 * source bytes; then URL rules run once more on the source so links
 * inside attributes (href, src) are caught too. */
static char *
scrub_html(struct scrub *sc, const char *s, size_t len, const char *path,
    bool *drop, size_t *outlen)
{
	struct mail_view v;
	struct mail_spans sp = { 0 };
	char *mid = NULL, *out;
	size_t midlen = len;
	const char *notices[MAIL_RULES_MAX];

	notices_of(sc, notices);
	if (!html_view(sc, s, len, path, &v))
		return NULL;
	collect(sc, v.text, v.len, (1u << MAIL_KIND_TEXT) |
	    (1u << MAIL_KIND_URL), path, &sp, drop);
	if (!sc->failed && sp.n > 0) {
		mid = mail_view_apply(&v, s, len, &sp, notices, true, &midlen);
		if (mid == NULL)
			fail(sc, "out of memory", path);
	}
	mail_spans_free(&sp);
	mail_view_free(&v);
	if (sc->failed) {
		free(mid);
		return NULL;
	}
	out = scrub_plain(sc, mid ? mid : s, midlen, 1u << MAIL_KIND_URL, true,
	    path, drop, outlen);
	if (out == NULL) {
		*outlen = midlen;
		return mid;
	}
	free(mid);
	return out;
}

/* What is relayed must be what was judged: the scrubbed text is read
 * again, the same way, and any secret still found in it (a mapping from
 * the view to the source that missed a byte) refuses the part. */
static void
verify(struct scrub *sc, const char *s, size_t len, bool html,
    const char *path)
{
	struct mail_spans sp = { 0 };
	struct mail_view v;
	bool drop = false;
	unsigned kinds = (1u << MAIL_KIND_TEXT) | (1u << MAIL_KIND_URL);

	sc->verifying = true;
	sc->residue = 0;
	if (html && html_view(sc, s, len, path, &v)) {
		collect(sc, v.text, v.len, kinds, path, &sp, &drop);
		mail_view_free(&v);
		kinds = 1u << MAIL_KIND_URL;
	}
	if (!sc->failed && mail_view_plain(s, len, &v) == 0) {
		collect(sc, v.text, v.len, kinds, path, &sp, &drop);
		mail_view_free(&v);
	}
	sc->verifying = false;
	mail_spans_free(&sp);
	if (sc->residue > 0)
		fail(sc, "a secret survived scrubbing (the text could not "
		    "be mapped back to its source)", path);
}

/* ---- text parts ---- */

static bool
is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* Puts UTF-8 text back into the part in its original charset when it can
 * be represented there, else in UTF-8; keeps base64/QP, else picks the
 * lightest encoding the original allowed. */
static void
set_text(GMimePart *part, const char *text, size_t len)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	const char *cs = g_mime_object_get_content_type_parameter(obj,
	    "charset");
	char *conv = NULL;
	const char *bytes = text;
	size_t n = len;
	GMimeContentEncoding enc = g_mime_part_get_content_encoding(part);
	GMimeStream *st;
	GMimeDataWrapper *w;

	if (cs != NULL && strcasecmp(cs, "utf-8") != 0 &&
	    strcasecmp(cs, "us-ascii") != 0 && memchr(text, '\0', len) == NULL) {
		iconv_t cd = g_mime_iconv_open(cs, "UTF-8");
		if (cd != (iconv_t)-1) {
			conv = g_mime_iconv_strndup(cd, text, len);
			g_mime_iconv_close(cd);
		}
		if (conv != NULL)
			bytes = conv, n = strlen(conv);
	}
	/* Not representable in the original charset: say it is UTF-8. */
	if (conv == NULL && !is_ascii(text, len) &&
	    (cs == NULL || strcasecmp(cs, "utf-8") != 0))
		g_mime_object_set_content_type_parameter(obj, "charset",
		    "utf-8");
	st = g_mime_stream_mem_new_with_buffer(bytes, n);
	w = g_mime_data_wrapper_new_with_stream(st,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(part, w);
	g_object_unref(w);
	g_object_unref(st);
	g_free(conv);
	if (enc != GMIME_CONTENT_ENCODING_BASE64 &&
	    enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE)
		enc = g_mime_part_get_best_content_encoding(part,
		    enc == GMIME_CONTENT_ENCODING_8BIT ||
		    enc == GMIME_CONTENT_ENCODING_BINARY ?
		    GMIME_ENCODING_CONSTRAINT_8BIT :
		    GMIME_ENCODING_CONSTRAINT_7BIT);
	g_mime_part_set_content_encoding(part, enc);
}

/* Raw content back into a part (an embedded message), in the lightest
 * transfer encoding its old one allowed. */
static void
set_bytes(GMimePart *part, const char *d, size_t len)
{
	GMimeContentEncoding enc = g_mime_part_get_content_encoding(part);
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(d, len);
	GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(st,
	    GMIME_CONTENT_ENCODING_DEFAULT);

	g_mime_part_set_content(part, w);
	g_object_unref(w);
	g_object_unref(st);
	if (enc != GMIME_CONTENT_ENCODING_BASE64 &&
	    enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE)
		enc = g_mime_part_get_best_content_encoding(part,
		    GMIME_ENCODING_CONSTRAINT_7BIT);
	g_mime_part_set_content_encoding(part, enc);
}

/* Parts a reader (or a phone) reads as text: text/... and the structured
 * application types that carry configs (XML, JSON, YAML, forms). */
static bool
is_textual(GMimeContentType *ct)
{
	static const char *const app[] = { "xml", "json", "x-yaml", "yaml",
	    "x-www-form-urlencoded", "javascript", "x-sh", "x-ini" };
	const char *type = g_mime_content_type_get_media_type(ct);
	const char *sub = g_mime_content_type_get_media_subtype(ct);
	size_t sl;

	if (type == NULL || sub == NULL)
		return false;
	if (strcasecmp(type, "text") == 0)
		return true;
	if (strcasecmp(type, "application") != 0)
		return false;
	for (size_t i = 0; i < sizeof(app) / sizeof(app[0]); i++)
		if (strcasecmp(sub, app[i]) == 0)
			return true;
	sl = strlen(sub);
	return (sl > 4 && strcasecmp(sub + sl - 4, "+xml") == 0) ||
	    (sl > 5 && strcasecmp(sub + sl - 5, "+json") == 0);
}

/* A NUL-terminated malloc'd copy of a memory stream's bytes (their
 * length in *len), or NULL when out of memory. */
static unsigned char *
mem_copy(GMimeStream *mem, size_t *len)
{
	GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	unsigned char *out = malloc(ba->len + 1);

	if (out == NULL)
		return NULL;
	if (ba->len > 0)	/* data is NULL when empty */
		memcpy(out, ba->data, ba->len);
	out[ba->len] = '\0';
	*len = ba->len;
	return out;
}

/* The decoded content (transfer encoding undone), as bytes. malloc'd;
 * NULL when out of memory. */
static unsigned char *
content_bytes(GMimePart *part, size_t *len)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *mem = g_mime_stream_mem_new();
	unsigned char *out = NULL;

	if (w == NULL || g_mime_data_wrapper_write_to_stream(w, mem) >= 0)
		out = mem_copy(mem, len);
	g_object_unref(mem);
	return out;
}

/* Bytes in `cs` (NULL: UTF-8 already) as UTF-8, with their length: NUL
 * bytes inside do not hide the rest from the rules. malloc'd. */
static char *
to_utf8(const unsigned char *d, size_t len, const char *cs, size_t *outlen)
{
	GMimeStream *mem = g_mime_stream_mem_new(), *filt;
	GMimeFilter *f;
	char *out = NULL;

	filt = g_mime_stream_filter_new(mem);
	if (cs != NULL && strcasecmp(cs, "utf-8") != 0 &&
	    strcasecmp(cs, "us-ascii") != 0 &&
	    (f = g_mime_filter_charset_new(cs, "UTF-8")) != NULL) {
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(filt), f);
		g_object_unref(f);
	}
	if (g_mime_stream_write(filt, (const char *)d, len) == (ssize_t)len &&
	    g_mime_stream_flush(filt) == 0)
		out = (char *)mem_copy(mem, outlen);
	g_object_unref(filt);
	g_object_unref(mem);
	return out;
}

/* The charset to read a text part in: the declared one when it reads the
 * content cleanly, else what the content looks like (ISO-2022-JP sent as
 * "us-ascii" or with no charset at all, Shift_JIS declared as UTF-8). */
static const char *
text_charset(GMimePart *part, const unsigned char *d, size_t len,
    const char *sniffed)
{
	const char *decl = g_mime_object_get_content_type_parameter(
	    GMIME_OBJECT(part), "charset");
	bool known = false;

	if (decl != NULL) {
		iconv_t cd = g_mime_iconv_open("UTF-8", decl);
		known = cd != (iconv_t)-1;
		if (known)
			g_mime_iconv_close(cd);
	}
	if (sniffed != NULL && strcmp(sniffed, "ISO-2022-JP") == 0 &&
	    (decl == NULL || strncasecmp(decl, "iso-2022-jp", 11) != 0))
		return sniffed;
	if (known && mail_sniff_converts(d, len, decl))
		return decl;
	if (sniffed != NULL)
		return sniffed;
	return known ? decl : NULL;
}

static enum disp
scrub_text(struct scrub *sc, GMimePart *part, const unsigned char *raw,
    size_t rawlen, const char *cs, bool html, const char *path)
{
	bool drop = false;
	char *text, *out;
	size_t len = 0, outlen = 0;

	text = to_utf8(raw, rawlen, cs, &len);
	if (text == NULL) {
		fail(sc, "out of memory or undecodable part", path);
		return D_KEEP;
	}
	if (html)
		out = scrub_html(sc, text, len, path, &drop, &outlen);
	else
		out = scrub_plain(sc, text, len, (1u << MAIL_KIND_TEXT) |
		    (1u << MAIL_KIND_URL), false, path, &drop, &outlen);
	free(text);
	if (drop) {
		free(out);
		return D_DROP;
	}
	if (out != NULL)
		verify(sc, out, outlen, html, path);
	if (out != NULL && !sc->failed) {
		set_text(part, out, outlen);
		sc->changed = true;
	}
	free(out);
	return D_KEEP;
}

static void walk_message(struct scrub *, GMimeMessage *, const char *,
    unsigned);
static int serialize(GMimeMessage *, unsigned, struct mail_scrub_result *);

/* An .eml sent as an attachment of any type: parsed and scrubbed like a
 * forwarded message (message/rfc822), and written back when it changed. */
static void
scrub_embedded(struct scrub *sc, GMimePart *part, const unsigned char *d,
    size_t len, const char *path, unsigned depth)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer((const char *)d,
	    len);
	GMimeParser *parser = g_mime_parser_new_with_stream(st);
	GMimeMessage *m;
	struct mail_scrub_result tmp = { 0 };
	bool was = sc->changed;

	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, parser_opts);
	g_object_unref(parser);
	g_object_unref(st);
	if (m == NULL) {
		fail(sc, "an attached .eml cannot be parsed as a message", path);
		return;
	}
	sc->changed = false;
	walk_message(sc, m, path, depth + 1);
	if (sc->changed && !sc->failed) {
		if (serialize(m, MAIL_SCRUB_CRLF, &tmp) < 0)
			fail(sc, "out of memory", path);
		else
			set_bytes(part, tmp.out, tmp.outlen);
		mail_scrub_result_free(&tmp);
	}
	sc->changed = sc->changed || was;
	g_object_unref(m);
}

/* A leaf part the attachment rules kept: what it is decides how it is
 * read, whatever its Content-Type says (issue 12 #16). */
static enum disp
scrub_leaf(struct scrub *sc, GMimePart *part, const char *path,
    unsigned depth)
{
	GMimeContentType *ct = g_mime_object_get_content_type(
	    GMIME_OBJECT(part));
	char *ctype = g_mime_content_type_get_mime_type(ct), msg[200];
	const char *fname = g_mime_part_get_filename(part), *cs, *why;
	unsigned char *raw;
	size_t rawlen = 0;
	enum disp d = D_KEEP;

	for (char *c = ctype; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if ((raw = content_bytes(part, &rawlen)) == NULL) {
		fail(sc, "out of memory or undecodable part", path);
		g_free(ctype);
		return D_KEEP;
	}
	switch (mail_part_classify(ctype ? ctype : "", fname, is_textual(ct),
	    raw, rawlen, &cs, &why)) {
	case MAIL_PART_UNSCANNABLE:
		snprintf(msg, sizeof(msg), "%s (%.60s%s%.60s) cannot be checked",
		    why, ctype ? ctype : "?", fname ? ", " : "",
		    fname ? fname : "");
		fail(sc, msg, path);
		break;
	case MAIL_PART_MEDIA:
		break;
	case MAIL_PART_MESSAGE:
		scrub_embedded(sc, part, raw, rawlen, path, depth);
		break;
	case MAIL_PART_HTML:
		d = scrub_text(sc, part, raw, rawlen,
		    text_charset(part, raw, rawlen, cs), true, path);
		break;
	case MAIL_PART_TEXT:
		d = scrub_text(sc, part, raw, rawlen,
		    text_charset(part, raw, rawlen, cs), false, path);
		break;
	}
	free(raw);
	g_free(ctype);
	return d;
}

/* ---- attachments ---- */

static uint64_t
decoded_size(GMimePart *part)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *null;
	ssize_t n;

	if (w == NULL)
		return 0;
	null = g_mime_stream_null_new();
	n = g_mime_data_wrapper_write_to_stream(w, null);
	g_object_unref(null);
	return n > 0 ? (uint64_t)n : 0;
}

static int
attachment_matches(struct scrub *sc, const struct mail_rule *r,
    const char *ctype, const char *fname, GMimePart *part, uint64_t *size)
{
	int m;

	if (r->ctype != NULL &&
	    (m = mail_re_match(sc->rs, r->ctype, ctype, strlen(ctype))) != 1)
		return m;
	if (r->fname != NULL && (fname == NULL ||
	    (m = mail_re_match(sc->rs, r->fname, fname, strlen(fname))) != 1))
		return fname == NULL ? 0 : m;
	if (r->min_size > 0) {
		if (*size == UINT64_MAX)
			*size = decoded_size(part);
		if (*size < r->min_size)
			return 0;
	}
	return 1;
}

static enum disp
check_attachment(struct scrub *sc, GMimePart *part, const char *path,
    size_t *rule)
{
	GMimeContentType *ct = g_mime_object_get_content_type(
	    GMIME_OBJECT(part));
	char *ctype = g_mime_content_type_get_mime_type(ct);
	const char *fname = g_mime_part_get_filename(part);
	uint64_t size = UINT64_MAX;
	enum disp d = D_KEEP;

	for (char *c = ctype; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	for (size_t ri = 0; ri < sc->rs->n && d == D_KEEP; ri++) {
		const struct mail_rule *r = &sc->rs->rule[ri];
		int m;

		if (!sc->active[ri] || r->kind != MAIL_KIND_ATTACHMENT)
			continue;
		m = attachment_matches(sc, r, ctype ? ctype : "", fname, part,
		    &size);
		if (m < 0)
			fail(sc, "a scrub pattern exceeded its match limit",
			    path);
		if (m != 1)
			continue;
		add_hit(sc, ri, path);
		if (r->action == MAIL_ACT_DROP)
			d = D_DROP;
		else if (r->action == MAIL_ACT_REPLACE)
			d = D_REPLACE, *rule = ri;
	}
	g_free(ctype);
	return d;
}

static GMimeObject *
notice_part(const char *notice)
{
	GMimeTextPart *tp = g_mime_text_part_new_with_subtype("plain");

	g_mime_text_part_set_text(tp, notice);
	return GMIME_OBJECT(tp);
}

/* ---- the walk ---- */

static enum disp walk(struct scrub *, GMimeObject *, const char *,
    unsigned, size_t *);

static void
child_path(char *out, size_t outlen, const char *base, int i)
{
	if (base[0] == '\0')
		snprintf(out, outlen, "%d", i);
	else
		snprintf(out, outlen, "%s.%d", base, i);
}

/* The text before the first and after the last boundary is shown by
 * readers that do not understand MIME: scrub it like plain text. */
static void
scrub_boundary_text(struct scrub *sc, GMimeMultipart *mp, const char *path)
{
	const char *texts[2] = { g_mime_multipart_get_prologue(mp),
	    g_mime_multipart_get_epilogue(mp) };
	char hp[MAIL_PART_PATH + 16];

	for (int i = 0; i < 2 && !sc->failed; i++) {
		bool drop = false;
		size_t outlen;
		char *out;

		if (texts[i] == NULL || texts[i][0] == '\0')
			continue;
		snprintf(hp, sizeof(hp), "%s%s%s", path, path[0] ? ":" : "",
		    i == 0 ? "prologue" : "epilogue");
		out = scrub_plain(sc, texts[i], strlen(texts[i]),
		    (1u << MAIL_KIND_TEXT) | (1u << MAIL_KIND_URL), false, hp,
		    &drop, &outlen);
		if (out == NULL && !drop)
			continue;
		if (i == 0)
			g_mime_multipart_set_prologue(mp, drop ? "" : out);
		else
			g_mime_multipart_set_epilogue(mp, drop ? "" : out);
		sc->changed = true;
		free(out);
	}
}

static void
walk_multipart(struct scrub *sc, GMimeMultipart *mp, const char *path,
    unsigned depth)
{
	int n = g_mime_multipart_get_count(mp);

	if (GMIME_IS_MULTIPART_ENCRYPTED(mp)) {
		fail(sc, "encrypted parts cannot be checked", path);
		return;
	}
	scrub_boundary_text(sc, mp, path);
	for (int i = n - 1; i >= 0 && !sc->failed; i--) {
		GMimeObject *child = g_mime_multipart_get_part(mp, i);
		char cp[MAIL_PART_PATH];
		size_t ri = 0;
		enum disp d;

		child_path(cp, sizeof(cp), path, i + 1);
		d = walk(sc, child, cp, depth + 1, &ri);
		if (d == D_DROP) {
			GMimeObject *old = g_mime_multipart_remove_at(mp, i);
			if (old != NULL)
				g_object_unref(old);
			sc->changed = true;
		} else if (d == D_REPLACE) {
			GMimeObject *np = notice_part(rule_notice(sc, ri));
			GMimeObject *old = g_mime_multipart_replace(mp, i, np);
			if (old != NULL)
				g_object_unref(old);
			g_object_unref(np);
			sc->changed = true;
		}
	}
	/* An empty multipart is not valid MIME: leave the notice instead. */
	if (g_mime_multipart_get_count(mp) == 0) {
		GMimeObject *np = notice_part(sc->rs->notice);
		g_mime_multipart_add(mp, np);
		g_object_unref(np);
	}
}

static void scrub_subject(struct scrub *, GMimeMessage *, const char *);

/* Scrubs an embedded message (message/rfc822) or the top-level one. */
static void
walk_message(struct scrub *sc, GMimeMessage *msg, const char *path,
    unsigned depth)
{
	GMimeObject *body = g_mime_message_get_mime_part(msg);
	char bp[MAIL_PART_PATH];
	size_t ri = 0;
	enum disp d;

	scrub_subject(sc, msg, path);
	if (body == NULL)
		return;
	if (GMIME_IS_MULTIPART(body))
		snprintf(bp, sizeof(bp), "%s", path);
	else
		child_path(bp, sizeof(bp), path, 1);
	d = walk(sc, body, bp, depth + 1, &ri);
	if (d != D_KEEP) {
		GMimeObject *np = notice_part(d == D_REPLACE ?
		    rule_notice(sc, ri) : sc->rs->notice);
		g_mime_message_set_mime_part(msg, np);
		g_object_unref(np);
		sc->changed = true;
	}
}

static enum disp
walk(struct scrub *sc, GMimeObject *obj, const char *path, unsigned depth,
    size_t *rule)
{
	enum disp d;

	if (depth > MAX_DEPTH) {
		fail(sc, "MIME nesting deeper than 32 levels", path);
		return D_KEEP;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		walk_multipart(sc, GMIME_MULTIPART(obj), path, depth);
		return D_KEEP;
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(obj));
		if (m != NULL)
			walk_message(sc, m, path, depth + 1);
		return D_KEEP;
	}
	if (GMIME_IS_MESSAGE_PARTIAL(obj)) {
		/* One fragment of a message split over several mails: the
		 * secret may straddle fragments we never see together. */
		fail(sc, "message/partial (a fragment of a split message) "
		    "cannot be checked", path);
		return D_KEEP;
	}
	if (!GMIME_IS_PART(obj)) {
		/* message/external-body and anything else GMime does not
		 * hand over as content: nothing we can read. */
		fail(sc, "a part of an unknown kind cannot be checked", path);
		return D_KEEP;
	}
	d = check_attachment(sc, GMIME_PART(obj), path, rule);
	if (d != D_KEEP || sc->failed)
		return d;
	return scrub_leaf(sc, GMIME_PART(obj), path, depth);
}

/* ---- headers ---- */

static void
scrub_subject(struct scrub *sc, GMimeMessage *msg, const char *path)
{
	const char *subj = g_mime_message_get_subject(msg);
	char hp[MAIL_PART_PATH + 16];
	bool drop = false;
	size_t outlen;
	char *out;

	if (subj == NULL)
		return;
	snprintf(hp, sizeof(hp), "%s%sheader:Subject", path, path[0] ? ":" : "");
	out = scrub_plain(sc, subj, strlen(subj), (1u << MAIL_KIND_TEXT) |
	    (1u << MAIL_KIND_URL), false, hp, &drop, &outlen);
	if (out != NULL) {
		g_mime_message_set_subject(msg, out, "utf-8");
		sc->changed = true;
		free(out);
	}
}

static const char *
header_value(GMimeMessage *msg, const char *name)
{
	if (strcasecmp(name, "Subject") == 0)
		return g_mime_message_get_subject(msg);
	return g_mime_object_get_header(GMIME_OBJECT(msg), name);
}

/* A rule limited by header conditions applies only when all match. */
static void
select_rules(struct scrub *sc, GMimeMessage *msg)
{
	for (size_t ri = 0; ri < sc->rs->n; ri++) {
		const struct mail_rule *r = &sc->rs->rule[ri];
		bool on = true;

		for (size_t h = 0; h < r->nhdr && on; h++) {
			const char *v = header_value(msg, r->hdr[h].name);
			int m = v ? mail_re_match(sc->rs, r->hdr[h].re, v,
			    strlen(v)) : 0;
			if (m < 0)
				fail(sc, "a header pattern exceeded its match "
				    "limit", "header");
			on = m == 1;
		}
		sc->active[ri] = on;
	}
}

static void
copy_message_id(struct mail_scrub_result *res, GMimeMessage *msg)
{
	const char *id = g_mime_message_get_message_id(msg);
	size_t j = 0;

	for (size_t i = 0; id && id[i] && j + 1 < sizeof(res->message_id); i++)
		if ((unsigned char)id[i] > 0x20 && (unsigned char)id[i] < 0x7f &&
		    id[i] != '"' && id[i] != '\\')
			res->message_id[j++] = id[i];
	res->message_id[j] = '\0';
}

static int
serialize(GMimeMessage *msg, unsigned flags, struct mail_scrub_result *res)
{
	GMimeFormatOptions *fo = g_mime_format_options_new();
	GMimeStream *st = g_mime_stream_mem_new();
	int rc = -1;

	g_mime_format_options_set_newline_format(fo, (flags & MAIL_SCRUB_CRLF) ?
	    GMIME_NEWLINE_FORMAT_DOS : GMIME_NEWLINE_FORMAT_UNIX);
	if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, st) >= 0 &&
	    (res->out = (char *)mem_copy(st, &res->outlen)) != NULL)
		rc = 0;
	g_object_unref(st);
	g_mime_format_options_free(fo);
	return rc;
}

enum mail_verdict
mail_scrub(const struct mail_rules *rs, const char *msg, size_t len,
    unsigned flags, struct mail_scrub_result *res, char *err, size_t errlen)
{
	struct scrub sc = { .rs = rs, .res = res, .err = err, .errlen = errlen };
	GMimeStream *st;
	GMimeParser *parser;
	GMimeMessage *m;

	memset(res, 0, sizeof(*res));
	if (errlen > 0)
		err[0] = '\0';
	mail_gmime_init();
	st = g_mime_stream_mem_new_with_buffer(msg, len);
	parser = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, parser_opts);
	g_object_unref(parser);
	g_object_unref(st);
	if (m == NULL) {
		snprintf(err, errlen, "the message could not be parsed as "
		    "RFC 5322 / MIME");
		return res->verdict = MAIL_SCRUB_ERROR;
	}
	copy_message_id(res, m);
	select_rules(&sc, m);
	if (!sc.failed)
		walk_message(&sc, m, "", 0);
	if (sc.failed)
		res->verdict = MAIL_SCRUB_ERROR;
	else if (res->reject_rule[0] != '\0')
		res->verdict = MAIL_SCRUB_REJECT;
	else if (!sc.changed)
		res->verdict = MAIL_SCRUB_CLEAN;
	else if (serialize(m, flags, res) < 0) {
		snprintf(err, errlen, "out of memory writing the message");
		res->verdict = MAIL_SCRUB_ERROR;
	} else
		res->verdict = MAIL_SCRUB_CHANGED;
	g_object_unref(m);
	return res->verdict;
}

void
mail_scrub_result_free(struct mail_scrub_result *res)
{
	free(res->out);
	res->out = NULL;
	res->outlen = 0;
}

/* ---- 8BITMIME downgrade (RFC 6152) for a smarthost without it ---- */

static void
part_to_7bit(GMimeObject *parent, GMimeObject *obj, gpointer arg)
{
	GMimePart *p;
	GMimeContentEncoding e;

	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(obj));
		if (m != NULL)
			g_mime_message_foreach(m, part_to_7bit, arg);
		return;
	}
	if (!GMIME_IS_PART(obj))
		return;
	p = GMIME_PART(obj);
	e = g_mime_part_get_content_encoding(p);
	if (e == GMIME_CONTENT_ENCODING_BASE64 ||
	    e == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    e == GMIME_CONTENT_ENCODING_UUENCODE)
		return;
	/* GMime re-encodes the content when the part's encoding changes. */
	g_mime_part_set_content_encoding(p,
	    g_mime_part_get_best_content_encoding(p,
	    GMIME_ENCODING_CONSTRAINT_7BIT));
}

int
mail_downgrade_7bit(const char *msg, size_t len, char **out, size_t *outlen)
{
	struct mail_scrub_result res = { 0 };
	GMimeStream *st;
	GMimeParser *parser;
	GMimeMessage *m;
	int rc;

	mail_gmime_init();
	st = g_mime_stream_mem_new_with_buffer(msg, len);
	parser = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, parser_opts);
	g_object_unref(parser);
	g_object_unref(st);
	if (m == NULL)
		return -1;
	g_mime_message_foreach(m, part_to_7bit, NULL);
	rc = serialize(m, MAIL_SCRUB_CRLF, &res);
	g_object_unref(m);
	*out = res.out;
	*outlen = res.outlen;
	return rc;
}
