/* policy_regex.c -- PCRE2 patterns: compiled once with JIT, matched with per-thread match data. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static bool md_key_ok;
/* Match data is scratch space written by every match, so each thread has
 * its own; the key's destructor frees it when the thread ends. */
static _Thread_local pcre2_match_data *md;

static void
md_destroy(void *p)
{
	pcre2_match_data_free(p);
}

static void
md_init(void)
{
	md_key_ok = pthread_key_create(&md_key, md_destroy) == 0;
}

static pcre2_match_data *
thread_md(void)
{
	if (md != NULL)
		return md;
	pthread_once(&md_once, md_init);
	if (!md_key_ok)
		return NULL;
	/* One pair is enough: we only ask whether it matched. */
	md = pcre2_match_data_create(1, NULL);
	if (md != NULL && pthread_setspecific(md_key, md) != 0) {
		pcre2_match_data_free(md);
		md = NULL;
	}
	return md;
}

/* The unit PCRE2 reports as required (type 1), or -1. */
static int
required_unit(const pcre2_code *re, uint32_t what_type, uint32_t what_unit)
{
	uint32_t type = 0, unit = 0;

	if (pcre2_pattern_info(re, what_type, &type) != 0 || type != 1 ||
	    pcre2_pattern_info(re, what_unit, &unit) != 0 || unit > 255)
		return -1;
	return (int)unit;
}

int
pol_regex_compile(struct pol_re *out, const char *pat, bool caseless,
    char *err, size_t errlen, size_t *erroff)
{
	uint32_t opts = PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C;
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off = 0;
	pcre2_code *re;
	int rc;

	if (caseless)
		opts |= PCRE2_CASELESS;
	re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &rc,
	    &off, NULL);
	if (re == NULL) {
		pcre2_get_error_message(rc, msg, sizeof msg);
		snprintf(err, errlen, "%s", (char *)msg);
		*erroff = off;
		return -1;
	}
	/* Without JIT (e.g. no executable memory) pcre2_match interprets:
	 * slower, same results, so that is not an error. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	out->code = re;
	out->first = required_unit(re, PCRE2_INFO_FIRSTCODETYPE,
	    PCRE2_INFO_FIRSTCODEUNIT);
	out->last = required_unit(re, PCRE2_INFO_LASTCODETYPE,
	    PCRE2_INFO_LASTCODEUNIT);
	if (pcre2_pattern_info(re, PCRE2_INFO_MINLENGTH, &out->minlen) != 0)
		out->minlen = 0;
	return 0;
}

/* Whether `s` holds the unit in either ASCII case: PCRE2 does not say
 * whether a required unit is caseless, so both cases count. */
static bool
has_unit(const char *s, size_t n, int unit)
{
	int other = unit;

	if (unit >= 'a' && unit <= 'z')
		other = unit - 'a' + 'A';
	else if (unit >= 'A' && unit <= 'Z')
		other = unit - 'A' + 'a';
	return memchr(s, unit, n) != NULL ||
	    (other != unit && memchr(s, other, n) != NULL);
}

int
pol_regex_match(const struct pol_policy *p, const struct pol_re *re,
    const char *subject)
{
	pcre2_match_data *m;
	size_t n = strlen(subject);
	int rc;

	if (n < re->minlen || (re->first >= 0 && !has_unit(subject, n,
	    re->first)) || (re->last >= 0 && !has_unit(subject, n, re->last)))
		return 0;
	if ((m = thread_md()) == NULL)
		return -1;
	rc = pcre2_match(re->code, (PCRE2_SPTR)subject, n, 0, 0, m, p->mctx);
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* True when no '|' can act at the top level and no construct changes how
 * the rest of the pattern reads (\Q, inline options, verbs). Conservative:
 * any doubt means "unsafe", which only costs the index. */
static bool
prefix_safe(const char *p)
{
	int depth = 0;

	for (; *p != '\0'; p++) {
		switch (*p) {
		case '\\':
			if (p[1] == 'Q' || p[1] == '\0')
				return false;
			p++;
			break;
		case '[':
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			for (; *p != ']'; p++) {
				if (*p == '\0')
					return false;
				if (*p == '\\' && p[1] != '\0')
					p++;
				else if (*p == '[' && p[1] == ':') {
					const char *e = strstr(p, ":]");
					if (e == NULL)
						return false;
					p = e + 1;
				}
			}
			break;
		case '(':
			if (p[1] == '*' || (p[1] == '?' && p[2] != ':' &&
			    p[2] != '=' && p[2] != '!' && p[2] != '<' &&
			    p[2] != '>'))
				return false;
			if (p[1] == '?' && p[2] == '<' && p[3] != '=' &&
			    p[3] != '!' && !((p[3] >= 'a' && p[3] <= 'z') ||
			    (p[3] >= 'A' && p[3] <= 'Z')))
				return false;
			depth++;
			break;
		case ')':
			if (--depth < 0)
				return false;
			break;
		case '|':
			if (depth == 0)
				return false;
			break;
		default:
			break;
		}
	}
	return depth == 0;
}

/* The literal text every match must start with (lower-case), when the
 * pattern is anchored with '^' and that is provable; NULL otherwise. */
char *
pol_regex_prefix(const char *pat)
{
	char buf[256];
	size_t n = 0;
	const char *p;

	if (pat[0] != '^' || !prefix_safe(pat))
		return NULL;
	for (p = pat + 1; *p != '\0' && n < sizeof buf - 1; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '/' || c == '_' || c == '-') {
			buf[n++] = (char)c;
		} else if (c >= 'A' && c <= 'Z') {
			buf[n++] = (char)(c - 'A' + 'a');
		} else if (c == '\\' && p[1] != '\0' &&
		    strchr("./-_~", p[1]) != NULL) {
			buf[n++] = p[1];
			p++;
		} else {
			break;
		}
	}
	/* A quantifier after the last literal makes it optional. */
	if (n > 0 && (*p == '?' || *p == '*' || *p == '{'))
		n--;
	if (n < 2)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

int
pol_regex_find(const struct pol_policy *p, const struct pol_re *re,
    const char *subject, size_t n, size_t start, size_t *so, size_t *eo)
{
	pcre2_match_data *m;
	PCRE2_SIZE *ov;
	int rc;

	if (start > n)
		return 0;
	if ((m = thread_md()) == NULL)
		return -1;
	rc = pcre2_match(re->code, (PCRE2_SPTR)subject, n, start, 0, m,
	    p->mctx);
	if (rc < 0)
		return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
	ov = pcre2_get_ovector_pointer(m);
	/* \K may set the start after the end; an empty match at `start`
	 * would loop the caller: both are refused by its patterns, and
	 * checked here so no pattern can make them happen */
	if (ov[0] > ov[1] || ov[1] > n)
		return -1;
	*so = ov[0];
	*eo = ov[1];
	return 1;
}
