/* mail_rules.c -- the scrub rules file: a line-based block format parsed in
 * full, every error counted as FILE:LINE:COL, patterns compiled by PCRE2. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail.h"
#include "mail/mail_priv.h"
#include "policy/policy.h"

#define RULES_MAX_FILE   (4 * 1024 * 1024)
#define MATCH_LIMIT      2000000u
#define DEPTH_LIMIT      10000u
#define BUILTIN_NOTICE \
	"[removed by pbxgate: set your password with the link from your administrator]"

struct parser {
	struct mail_rules *rules;
	struct mail_rule  *cur;		/* inside rule ... end */
	const char        *file;
	unsigned           line;
	unsigned           errors;
	char              *err;
	size_t             errlen;
	size_t             errused;
};

static void perr(struct parser *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
perr(struct parser *p, size_t col, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	int n;

	p->errors++;
	if (p->errors > 5)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->errused >= p->errlen)
		return;
	n = snprintf(p->err + p->errused, p->errlen - p->errused, "%s%s:%u:%zu: %s",
	    p->errused ? "\n" : "", p->file, p->line, col + 1, msg);
	if (n > 0)
		p->errused += (size_t)n;
	if (p->errused >= p->errlen)
		p->errused = p->errlen;
}

static pcre2_code *
compile(struct parser *p, const char *re, size_t col)
{
	int ec;
	PCRE2_SIZE off;
	pcre2_code *code;
	PCRE2_UCHAR msg[256];

	code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
	    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
	if (code == NULL) {
		pcre2_get_error_message(ec, msg, sizeof(msg));
		perr(p, col + off, "bad pattern: %s", (char *)msg);
		return NULL;
	}
	/* JIT is only a speed-up; the interpreter is the fallback. */
	(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	return code;
}

static void
rule_free(struct mail_rule *r)
{
	pcre2_code_free(r->pattern);
	pcre2_code_free(r->ctype);
	pcre2_code_free(r->fname);
	for (size_t i = 0; i < r->nhdr; i++)
		pcre2_code_free(r->hdr[i].re);
	free(r->notice);
	memset(r, 0, sizeof(*r));
}

void
mail_rules_free(struct mail_rules *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->rule[i]);
	free(rs->notice);
	pcre2_match_context_free(rs->mctx);
	free(rs);
}

size_t
mail_rules_count(const struct mail_rules *rs)
{
	return rs ? rs->n : 0;
}

int
mail_re_match(const struct mail_rules *rs, const pcre2_code *re,
    const char *s, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	int rc;

	if (md == NULL)
		return -1;
	rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, rs->mctx);
	pcre2_match_data_free(md);
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

static bool
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= MAIL_RULE_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
			return false;
	return true;
}

static char *
dup_or_err(struct parser *p, const char *s)
{
	char *c = strdup(s);

	if (c == NULL)
		perr(p, 0, "out of memory");
	return c;
}

static void
start_rule(struct parser *p, const char *name, size_t col)
{
	struct mail_rules *rs = p->rules;

	if (p->cur != NULL) {
		perr(p, 0, "'rule' inside rule '%s': close it with 'end'",
		    p->cur->name);
		return;
	}
	if (!valid_name(name)) {
		perr(p, col, "rule names are 1-%d letters, digits, '-', '_' "
		    "or '.'", MAIL_RULE_NAME - 1);
		return;
	}
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->rule[i].name, name) == 0) {
			perr(p, col, "rule '%s' already defined at line %u",
			    name, rs->rule[i].line);
			return;
		}
	if (rs->n >= MAIL_RULES_MAX) {
		perr(p, 0, "too many rules (at most %d)", MAIL_RULES_MAX);
		return;
	}
	p->cur = &rs->rule[rs->n++];
	snprintf(p->cur->name, sizeof(p->cur->name), "%s", name);
	p->cur->line = p->line;
	p->cur->kind = MAIL_KIND_TEXT;
	p->cur->action = MAIL_ACT_REPLACE;
}

static void
end_rule(struct parser *p)
{
	struct mail_rule *r = p->cur;

	p->cur = NULL;
	if (r->kind != MAIL_KIND_ATTACHMENT && r->pattern == NULL) {
		perr(p, 0, "rule '%s' (line %u) has no pattern", r->name,
		    r->line);
		return;
	}
	if (r->kind == MAIL_KIND_ATTACHMENT && r->ctype == NULL &&
	    r->fname == NULL && r->min_size == 0)
		perr(p, 0, "attachment rule '%s' (line %u) needs content_type, "
		    "filename or min_size", r->name, r->line);
	if (r->kind == MAIL_KIND_ATTACHMENT && r->pattern != NULL)
		perr(p, 0, "attachment rule '%s' (line %u) cannot have a "
		    "pattern; use content_type or filename", r->name, r->line);
}

static void
set_pattern(struct parser *p, struct mail_rule *r, const char *v, size_t col)
{
	uint32_t n = 0;
	int g;

	if (r->pattern != NULL) {
		perr(p, 0, "second 'pattern' in rule '%s'", r->name);
		return;
	}
	r->pattern = compile(p, v, col);
	if (r->pattern == NULL)
		return;
	g = pcre2_substring_number_from_name(r->pattern,
	    (PCRE2_SPTR)"secret");
	if (g > 0)
		r->secret_group = (uint32_t)g;
	(void)pcre2_pattern_info(r->pattern, PCRE2_INFO_CAPTURECOUNT, &n);
	(void)n;
}

static void
set_kind(struct parser *p, struct mail_rule *r, const char *v, size_t col)
{
	if (strcmp(v, "text") == 0)
		r->kind = MAIL_KIND_TEXT;
	else if (strcmp(v, "url") == 0)
		r->kind = MAIL_KIND_URL;
	else if (strcmp(v, "attachment") == 0) {
		r->kind = MAIL_KIND_ATTACHMENT;
		if (!r->action_set)
			r->action = MAIL_ACT_DROP;
	} else
		perr(p, col, "'%s': expected text, url or attachment", v);
}

static void
set_action(struct parser *p, struct mail_rule *r, const char *v, size_t col)
{
	r->action_set = true;
	if (strcmp(v, "replace") == 0)
		r->action = MAIL_ACT_REPLACE;
	else if (strcmp(v, "drop") == 0)
		r->action = MAIL_ACT_DROP;
	else if (strcmp(v, "reject") == 0)
		r->action = MAIL_ACT_REJECT;
	else
		perr(p, col, "'%s': expected replace, drop or reject", v);
}

static void
set_size(struct parser *p, struct mail_rule *r, const char *v, size_t col)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || errno != 0)
		goto bad;
	if (*end == 'k' || *end == 'K')
		n *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		n *= 1024 * 1024, end++;
	if (*end != '\0' || n == 0 || n > (1ull << 40))
		goto bad;
	r->min_size = n;
	return;
bad:
	perr(p, col, "'%s': expected a size such as 512, 20k or 1m", v);
}

/* header NAME REGEX */
static void
add_header(struct parser *p, struct mail_rule *r, const char *v, size_t col)
{
	size_t nl = strcspn(v, " \t");
	const char *re = v + nl;
	struct mail_hdr_cond *h;

	while (*re == ' ' || *re == '\t')
		re++;
	if (nl == 0 || nl >= sizeof(h->name) || *re == '\0') {
		perr(p, col, "expected 'header NAME REGEX'");
		return;
	}
	if (r->nhdr >= MAIL_RULE_MAX_HDR) {
		perr(p, col, "at most %d header conditions per rule",
		    MAIL_RULE_MAX_HDR);
		return;
	}
	h = &r->hdr[r->nhdr];
	memcpy(h->name, v, nl);
	h->name[nl] = '\0';
	h->re = compile(p, re, col + (size_t)(re - v));
	if (h->re != NULL)
		r->nhdr++;
}

static void
rule_line(struct parser *p, const char *kw, const char *v, size_t col)
{
	struct mail_rule *r = p->cur;

	if (strcmp(kw, "kind") == 0)
		set_kind(p, r, v, col);
	else if (strcmp(kw, "pattern") == 0)
		set_pattern(p, r, v, col);
	else if (strcmp(kw, "action") == 0)
		set_action(p, r, v, col);
	else if (strcmp(kw, "content_type") == 0)
		r->ctype = r->ctype ? r->ctype : compile(p, v, col);
	else if (strcmp(kw, "filename") == 0)
		r->fname = r->fname ? r->fname : compile(p, v, col);
	else if (strcmp(kw, "min_size") == 0)
		set_size(p, r, v, col);
	else if (strcmp(kw, "header") == 0)
		add_header(p, r, v, col);
	else if (strcmp(kw, "notice") == 0) {
		free(r->notice);
		r->notice = dup_or_err(p, v);
	} else
		perr(p, 0, "unknown keyword '%s' in rule '%s' (kind, pattern, "
		    "action, content_type, filename, min_size, header, notice, "
		    "end)", kw, r->name);
}

/* One logical line: "KEYWORD VALUE-TO-END-OF-LINE" (no quoting, so regexes
 * are written exactly as PCRE2 takes them). */
static void
parse_line(struct parser *p, char *s)
{
	char *kw, *v;
	size_t kwlen, vcol;
	char *end = s + strlen(s);

	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	kw = s + strspn(s, " \t");
	if (*kw == '\0' || *kw == '#')
		return;
	kwlen = strcspn(kw, " \t");
	v = kw + kwlen;
	if (*v != '\0')
		*v++ = '\0';
	v += strspn(v, " \t");
	vcol = (size_t)(v - s);
	if (strcmp(kw, "rule") == 0)
		start_rule(p, v, vcol);
	else if (strcmp(kw, "end") == 0 && p->cur != NULL)
		end_rule(p);
	else if (*v == '\0')
		perr(p, (size_t)(kw - s), "'%s' needs a value", kw);
	else if (p->cur != NULL)
		rule_line(p, kw, v, vcol);
	else if (strcmp(kw, "notice") == 0) {
		free(p->rules->notice);
		p->rules->notice = dup_or_err(p, v);
	} else
		perr(p, (size_t)(kw - s), "'%s' outside a rule: expected "
		    "'rule NAME' or 'notice TEXT'", kw);
}

struct mail_rules *
mail_rules_parse(const char *text, size_t len, const char *filename,
    const char *notice, char *err, size_t errlen)
{
	struct parser p = { .file = filename ? filename : "rules",
	    .err = err, .errlen = errlen };
	char line[8192];
	size_t i = 0;

	if (errlen > 0)
		err[0] = '\0';
	p.rules = calloc(1, sizeof(*p.rules));
	if (p.rules == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p.rules->mctx = pcre2_match_context_create(NULL);
	p.rules->notice = strdup(BUILTIN_NOTICE);
	if (p.rules->mctx == NULL || p.rules->notice == NULL) {
		mail_rules_free(p.rules);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pcre2_set_match_limit(p.rules->mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(p.rules->mctx, DEPTH_LIMIT);
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) : len - i;

		p.line++;
		if (n >= sizeof(line) || memchr(text + i, '\0', n) != NULL)
			perr(&p, 0, "line longer than %zu bytes or holds a NUL",
			    sizeof(line) - 1);
		else {
			memcpy(line, text + i, n);
			line[n] = '\0';
			parse_line(&p, line);
		}
		i += n + 1;
	}
	if (p.cur != NULL) {
		perr(&p, 0, "rule '%s' (line %u) is not closed with 'end'",
		    p.cur->name, p.cur->line);
		p.cur = NULL;
	}
	if (p.errors == 0 && notice != NULL) {
		/* The config's scrub_notice wins over the file's "notice". */
		char *c = strdup(notice);
		if (c == NULL)
			perr(&p, 0, "out of memory");
		else {
			free(p.rules->notice);
			p.rules->notice = c;
		}
	}
	if (p.errors > 0) {
		if (p.errors > 5 && p.errused + 40 < errlen)
			snprintf(err + p.errused, errlen - p.errused,
			    "\n(%u errors in all)", p.errors);
		mail_rules_free(p.rules);
		return NULL;
	}
	return p.rules;
}

struct mail_rules *
mail_rules_load(const char *path, const char *notice, char *err,
    size_t errlen)
{
	char why[256], *buf;
	size_t n;
	struct mail_rules *rs;

	if (pol_file_read(path, RULES_MAX_FILE, &buf, &n, NULL, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		return NULL;
	}
	rs = mail_rules_parse(buf, n, path, notice, err, errlen);
	free(buf);
	return rs;
}
