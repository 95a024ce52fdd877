/* policy_rules.c -- keyword tables: the directives (list, include, default, actions) and the matchers. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_parse.h"

struct line {
	const char *file;
	unsigned line;
	struct pol_word *w;
	size_t n;
	const char *text;
	size_t textlen;
};

/* What a matcher handler gets: its argument words, already stripped of a
 * leading '!' (negate) on the first one. */
struct marg {
	struct pol_word *w;	/* nargs words */
	unsigned col0;		/* column of the first argument after '!' */
	char *regex;		/* path/header: pattern to compile later */
	unsigned regex_col;
};

typedef int (*matcher_fn)(struct pol_loader *, const struct line *,
    struct pol_matcher *, struct marg *);

static const char *const action_names[] = { "allow", "login", "mfa", "deny" };

static int
action_of(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, action_names[i]) == 0)
			return i;
	return -1;
}

static int
add_set(struct pol_policy *p, struct pol_cidrset *s)
{
	struct pol_cidrset **ns = reallocarray(p->sets, p->nsets + 1,
	    sizeof *ns);

	if (ns == NULL)
		return -1;
	p->sets = ns;
	p->sets[p->nsets++] = s;
	return 0;
}

static struct pol_cidrset *
new_set(struct pol_policy *p)
{
	struct pol_cidrset *s = pol_cidrset_new();

	if (s != NULL && add_set(p, s) == -1) {
		pol_cidrset_free(s);
		return NULL;
	}
	return s;
}

static const struct pol_list *
find_list(const struct pol_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nlists; i++)
		if (strcmp(p->lists[i].name, name) == 0)
			return &p->lists[i];
	return NULL;
}

/* Calls fn for each comma-separated item of word `w` (from `skip` bytes
 * on); empty items are errors. Returns the number of items with errors. */
static int
each_item(struct pol_loader *L, const struct line *c, const struct pol_word *w,
    size_t skip, int (*fn)(struct pol_loader *, const struct line *,
    struct pol_matcher *, const char *, unsigned), struct pol_matcher *m)
{
	char item[512];
	const char *s = w->s + skip;
	unsigned col = w->col + (unsigned)skip;
	int bad = 0;

	for (;;) {
		size_t len = strcspn(s, ",");

		if (len == 0) {
			pol_diag(L, false, c->file, c->line, col,
			    "empty item in comma-separated list");
			bad++;
		} else if (len >= sizeof item) {
			pol_diag(L, false, c->file, c->line, col,
			    "item longer than %zu bytes", sizeof item - 1);
			bad++;
		} else {
			memcpy(item, s, len);
			item[len] = '\0';
			if (fn(L, c, m, item, col) == -1)
				bad++;
		}
		if (s[len] == '\0')
			break;
		s += len + 1;
		col += (unsigned)len + 1;
	}
	return bad;
}

static int
item_from(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    const char *item, unsigned col)
{
	char err[256];

	if (item[0] == '@') {
		const struct pol_list *l = find_list(L->p, item + 1);

		if (l == NULL) {
			pol_diag(L, false, c->file, c->line, col, "unknown list "
			    "'%s' (define it with 'list' before this line)",
			    item);
			return -1;
		}
		for (size_t i = 0; i < m->nsets; i++)
			if (m->sets[i] == l->set)
				return 0;
		m->sets[m->nsets++] = l->set;
		return 0;
	}
	/* The addresses written in the rule share one set. */
	if (m->own == NULL) {
		if ((m->own = new_set(L->p)) == NULL)
			return -1;
		m->sets[m->nsets++] = m->own;
	}
	if (pol_cidrset_add(m->own, item, err, sizeof err) == -1) {
		pol_diag(L, false, c->file, c->line, col, "%s", err);
		return -1;
	}
	return 0;
}

static int
m_from(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    struct marg *a)
{
	size_t items = 1, skip = a->col0 - a->w[0].col;
	int bad;

	for (const char *s = a->w[0].s; *s != '\0'; s++)
		items += *s == ',';
	if ((m->sets = calloc(items + 1, sizeof *m->sets)) == NULL)
		return -1;
	bad = each_item(L, c, &a->w[0], skip, item_from, m);
	return bad != 0 ? -1 : 0;
}

static int
item_country(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    const char *item, unsigned col)
{
	char cc[3];

	if (strlen(item) != 2) {
		pol_diag(L, false, c->file, c->line, col, "unknown country "
		    "code '%s' (ISO 3166-1 alpha-2 expected, e.g. JP)", item);
		return -1;
	}
	cc[0] = (char)(item[0] >= 'a' && item[0] <= 'z' ? item[0] - 32 : item[0]);
	cc[1] = (char)(item[1] >= 'a' && item[1] <= 'z' ? item[1] - 32 : item[1]);
	cc[2] = '\0';
	if (!pol_country_known(cc)) {
		pol_diag(L, false, c->file, c->line, col, "unknown country "
		    "code '%s' (ISO 3166-1 alpha-2 expected, e.g. JP)", item);
		return -1;
	}
	memcpy(m->codes[m->n++], cc, 2);
	return 0;
}

static size_t
count_items(const char *s)
{
	size_t n = 1;

	for (; *s != '\0'; s++)
		n += *s == ',';
	return n;
}

static int
need_geoip(struct pol_loader *L, const struct line *c, const char *kw,
    unsigned col)
{
	if (L->geoip_db == NULL) {
		pol_diag(L, false, c->file, c->line, col, "'%s' needs a GeoIP "
		    "database: set geoip_db in the main configuration", kw);
		return -1;
	}
	if (L->geo_file == NULL) {
		L->geo_file = c->file;
		L->geo_line = c->line;
		L->geo_col = col;
	}
	return 0;
}

static int
m_country(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    struct marg *a)
{
	int bad = need_geoip(L, c, "country", a->w[-1].col);

	m->codes = calloc(count_items(a->w[0].s), sizeof *m->codes);
	if (m->codes == NULL)
		return -1;
	bad += each_item(L, c, &a->w[0], a->col0 - a->w[0].col, item_country, m);
	return bad != 0 ? -1 : 0;
}

static int
item_asn(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    const char *item, unsigned col)
{
	const char *s = item;
	unsigned long long v = 0;

	if ((s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's'))
		s += 2;
	if (*s == '\0')
		goto bad;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > UINT32_MAX)
			goto bad;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v == 0 || v > UINT32_MAX)
		goto bad;
	m->asns[m->n++] = (uint32_t)v;
	return 0;
bad:
	pol_diag(L, false, c->file, c->line, col, "bad AS number '%s' "
	    "(expected 1 to 4294967295, optionally written AS64500)", item);
	return -1;
}

static int
m_asn(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    struct marg *a)
{
	int bad = need_geoip(L, c, "asn", a->w[-1].col);

	m->asns = calloc(count_items(a->w[0].s), sizeof *m->asns);
	if (m->asns == NULL)
		return -1;
	bad += each_item(L, c, &a->w[0], a->col0 - a->w[0].col, item_asn, m);
	return bad != 0 ? -1 : 0;
}

/* Stored names are folded (pol_name_fold), so rules hold the folded form
 * too: `deny user Mallory` must match the user the store calls mallory. A
 * name that cannot exist is kept as written (it matches nobody) and
 * reported, since a deny that never matches fails open. */
static int
item_user(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    const char *item, unsigned col)
{
	char folded[POL_NAME_MAX + 1];
	bool ok = pol_name_fold(item, folded, sizeof folded) == 0;

	if (!ok)
		pol_diag(L, true, c->file, c->line, col, "user '%s' can never "
		    "match: not a valid user name (1 to %d ASCII letters, digits "
		    "and . _ @ -, starting with a letter or digit)", item,
		    POL_NAME_MAX);
	if ((m->names[m->n] = strdup(ok ? folded : item)) == NULL)
		return -1;
	m->cols[m->n++] = col;
	return 0;
}

static int
item_name(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    const char *item, unsigned col)
{
	if (m->kind == M_METHOD) {
		for (const char *s = item; *s != '\0'; s++) {
			if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' &&
			    *s <= 'z') || *s == '-' || *s == '_')) {
				pol_diag(L, false, c->file, c->line, col,
				    "bad method '%s' (letters only, e.g. GET)",
				    item);
				return -1;
			}
		}
	}
	if (m->kind == M_USER)
		return item_user(L, c, m, item, col);
	if ((m->names[m->n] = strdup(item)) == NULL)
		return -1;
	m->cols[m->n++] = col;
	return 0;
}

static int
m_names(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    struct marg *a)
{
	m->names = calloc(count_items(a->w[0].s), sizeof *m->names);
	m->cols = calloc(count_items(a->w[0].s), sizeof *m->cols);
	if (m->names == NULL || m->cols == NULL)
		return -1;
	return each_item(L, c, &a->w[0], a->col0 - a->w[0].col, item_name,
	    m) != 0 ? -1 : 0;
}

static int
m_role(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    struct marg *a)
{
	const char *v = a->w[0].s + (a->col0 - a->w[0].col);

	if (strcmp(v, "admin") == 0 || strcmp(v, "user") == 0) {
		m->admin = v[0] == 'a';
		return 0;
	}
	pol_diag(L, false, c->file, c->line, a->col0, "unknown role '%s' "
	    "(expected admin or user)", v);
	return -1;
}

static int
m_path(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    struct marg *a)
{
	a->regex = a->w[0].s + (a->col0 - a->w[0].col);
	a->regex_col = a->col0;
	return 0;
}

static int
item_os(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    const char *item, unsigned col)
{
	if (strcmp(item, "windows") == 0)
		m->os |= POL_OS_WINDOWS;
	else if (strcmp(item, "macos") == 0)
		m->os |= POL_OS_MACOS;
	else {
		pol_diag(L, false, c->file, c->line, col, "unknown OS '%s' "
		    "(expected windows or macos, comma-separated)", item);
		return -1;
	}
	return 0;
}

static int
item_version(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    const char *item, unsigned col)
{
	if (pol_version_parse(item, strlen(item), &m->vers[m->n]) == -1) {
		pol_diag(L, false, c->file, c->line, col, "bad version '%s' "
		    "(expected 1 to 4 numbers of at most 9 digits separated by "
		    "dots, e.g. 18.12.416)", item);
		return -1;
	}
	m->n++;
	return 0;
}

/* desktop-app OS[,OS] VERSION[,VERSION...]: exact builds, one list per
 * OS family, as the vendor's advisories name them. */
static int
m_client(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    struct marg *a)
{
	int bad;

	m->vers = calloc(count_items(a->w[1].s), sizeof *m->vers);
	if (m->vers == NULL || pol_client_compile(L->p) == -1)
		return -1;
	bad = each_item(L, c, &a->w[0], a->col0 - a->w[0].col, item_os, m);
	if (a->w[1].s[0] == '!') {
		pol_diag(L, false, c->file, c->line, a->w[1].col, "'!' negates "
		    "the whole matcher: write it before the OS");
		return -1;
	}
	bad += each_item(L, c, &a->w[1], 0, item_version, m);
	return bad != 0 ? -1 : 0;
}

static bool
is_tchar(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || (ch != 0 && strchr("!#$%&'*+-.^_`|~",
	    ch) != NULL);
}

static int
m_header(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    struct marg *a)
{
	const char *name = a->w[0].s + (a->col0 - a->w[0].col);

	for (const char *s = name; *s != '\0'; s++) {
		if (!is_tchar(*s)) {
			pol_diag(L, false, c->file, c->line, a->col0 +
			    (unsigned)(s - name), "bad character in header "
			    "name '%s'", name);
			return -1;
		}
	}
	if ((m->hname = strdup(name)) == NULL)
		return -1;
	a->regex = a->w[1].s;
	a->regex_col = a->w[1].col;
	return 0;
}

static const struct mdef {
	const char *kw;
	enum pol_mkind kind;
	int nargs;
	matcher_fn fn;
	const char *args;
} matchers[] = {
	{ "from", M_FROM, 1, m_from, "a CIDR or @list, comma-separated" },
	{ "country", M_COUNTRY, 1, m_country, "ISO country codes, comma-separated" },
	{ "asn", M_ASN, 1, m_asn, "AS numbers, comma-separated" },
	{ "path", M_PATH, 1, m_path, "a regular expression" },
	{ "method", M_METHOD, 1, m_names, "HTTP methods, comma-separated" },
	{ "header", M_HEADER, 2, m_header, "a header name and a regular expression" },
	{ "desktop-app", M_CLIENT, 2, m_client, "an OS (windows, macos) and "
	    "versions, comma-separated" },
	{ "user", M_USER, 1, m_names, "user names, comma-separated" },
	{ "group", M_GROUP, 1, m_names, "group names, comma-separated" },
	{ "role", M_ROLE, 1, m_role, "admin or user" },
};

static const char *const flags[] = { "any", "audit", "case-sensitive", "page" };

static const struct mdef *
find_matcher(const char *kw)
{
	for (size_t i = 0; i < sizeof matchers / sizeof matchers[0]; i++)
		if (strcmp(matchers[i].kw, kw) == 0)
			return &matchers[i];
	return NULL;
}

static bool
is_keyword(const struct pol_word *w)
{
	if (w->quoted)
		return false;
	if (find_matcher(w->s) != NULL)
		return true;
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		if (strcmp(flags[i], w->s) == 0)
			return true;
	return false;
}

void
pol_matcher_clear(struct pol_matcher *m)
{
	free(m->text);
	free(m->sets);
	free(m->codes);
	free(m->asns);
	if (m->names != NULL)
		for (size_t i = 0; i < m->n; i++)
			free(m->names[i]);
	free(m->names);
	free(m->cols);
	free(m->hname);
	free(m->vers);
	pcre2_code_free(m->re.code);
	memset(m, 0, sizeof *m);
}

void
pol_rule_clear(struct pol_rule *r)
{
	for (size_t i = 0; i < r->nm; i++)
		pol_matcher_clear(&r->m[i]);
	free(r->m);
	free(r->text);
	free(r->prefix);
	memset(r, 0, sizeof *r);
}

/* Builds "kw arg..." as written, for explain. */
static char *
matcher_text(const struct pol_word *w, int nargs)
{
	size_t len = strlen(w[0].s) + 1;
	char *t;

	for (int i = 1; i <= nargs; i++)
		len += strlen(w[i].s) + 3;
	if ((t = malloc(len)) == NULL)
		return NULL;
	size_t o = (size_t)snprintf(t, len, "%s", w[0].s);
	for (int i = 1; i <= nargs && o < len; i++)
		o += (size_t)snprintf(t + o, len - o, " %s", w[i].s);
	return t;
}

/* Parses one matcher at w[i]; returns the words it used (0 = stop). */
static size_t
parse_matcher(struct pol_loader *L, const struct line *c, size_t i,
    struct pol_matcher *m, struct marg *a, bool *bad)
{
	const struct mdef *d = find_matcher(c->w[i].s);
	struct pol_word *w = &c->w[i];
	const char *arg;

	if (d == NULL) {
		pol_diag(L, false, c->file, c->line, w->col, "unknown matcher "
		    "'%s' (expected from, country, asn, user, group, role, "
		    "path, method, header, desktop-app, any, audit, "
		    "case-sensitive or page)",
		    w->s);
		*bad = true;
		return 0;
	}
	for (int k = 1; k <= d->nargs; k++) {
		arg = i + (size_t)k < c->n ? w[k].s : NULL;
		if (arg == NULL || is_keyword(&w[k]) || (k == 1 &&
		    strcmp(arg, "!") == 0)) {
			pol_diag(L, false, c->file, c->line, w->col, "'%s' "
			    "needs %s", d->kw, d->args);
			*bad = true;
			return 0;
		}
	}
	memset(m, 0, sizeof *m);
	memset(a, 0, sizeof *a);
	m->kind = d->kind;
	m->negate = w[1].s[0] == '!';
	a->w = &w[1];
	a->col0 = w[1].col + (m->negate ? 1 : 0);
	if ((m->text = matcher_text(w, d->nargs)) == NULL ||
	    d->fn(L, c, m, a) == -1)
		*bad = true;
	return 1 + (size_t)d->nargs;
}

static int
compile_regex(struct pol_loader *L, const struct line *c, struct pol_matcher *m,
    const struct marg *a, bool caseless)
{
	char err[256];
	size_t off = 0;

	if (a->regex == NULL)
		return 0;
	if (pol_regex_compile(&m->re, a->regex, caseless, err, sizeof err,
	    &off) == 0)
		return 0;
	pol_diag(L, false, c->file, c->line, a->regex_col + (unsigned)off,
	    "bad regex: %s (at offset %zu of '%s')", err, off, a->regex);
	return -1;
}

static int
add_rule(struct pol_loader *L, const struct pol_rule *r)
{
	struct pol_policy *p = L->p;
	struct pol_rule *nr;

	if (p->nrules % 64 == 0) {
		nr = reallocarray(p->rules, p->nrules + 64, sizeof *nr);
		if (nr == NULL)
			return -1;
		p->rules = nr;
	}
	p->rules[p->nrules++] = *r;
	return 0;
}

/* Identity matchers (user, group, role) go last: the other matchers must
 * hold before a missing session is worth a login. */
static void
order_matchers(struct pol_rule *r)
{
	size_t k = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = k; i < r->nm; i++) {
			bool ident = r->m[i].kind >= M_USER;

			if (ident == (pass == 1) && i != k) {
				struct pol_matcher t = r->m[i];

				memmove(&r->m[k + 1], &r->m[k],
				    (i - k) * sizeof t);
				r->m[k] = t;
			}
			if (ident == (pass == 1))
				k++;
		}
	}
	for (size_t i = 0; i < r->nm; i++)
		r->identity |= r->m[i].kind >= M_USER;
}

static int
finish_rule(struct pol_loader *L, const struct line *c, struct pol_rule *r,
    unsigned anycol)
{
	if (r->nm == 0 && !r->any) {
		pol_diag(L, false, c->file, c->line, c->w[0].col, "'%s' rule "
		    "has no matcher (write 'any' to match every request)",
		    c->w[0].s);
		return -1;
	}
	if (r->nm > 0 && r->any) {
		pol_diag(L, false, c->file, c->line, anycol, "'any' cannot be "
		    "combined with other matchers");
		return -1;
	}
	if (L->any_file != NULL)
		pol_diag(L, true, c->file, c->line, c->w[0].col, "rule is never "
		    "reached: the 'any' rule at %s:%u matches every request",
		    L->any_file, L->any_line);
	else if (r->any) {
		L->any_file = c->file;
		L->any_line = c->line;
	}
	order_matchers(r);
	for (size_t i = 0; i < r->nm && r->prefix == NULL; i++) {
		if (r->m[i].kind == M_PATH && !r->m[i].negate)
			r->prefix = pol_regex_prefix(r->m[i].text +
			    strlen("path "));
	}
	if ((r->text = strndup(c->text, c->textlen)) == NULL)
		return -1;
	return 0;
}

static const char *const page_names[] = {
	[POL_PAGE_NONE] = NULL,
	[POL_PAGE_COMPROMISED_CLIENT] = "compromised-client",
};

const char *
pol_page_name(enum pol_page pg)
{
	if ((unsigned)pg >= sizeof page_names / sizeof page_names[0])
		return NULL;
	return page_names[pg];
}

/* `page NAME` at w[i]; returns the words used. A page on anything but
 * deny would be shown to requests that pass: refused. */
static size_t
parse_page(struct pol_loader *L, const struct line *c, size_t i,
    struct pol_rule *r, bool *bad)
{
	const struct pol_word *w = &c->w[i];

	*bad = true;
	if (i + 1 >= c->n || is_keyword(&w[1])) {
		pol_diag(L, false, c->file, c->line, w->col, "'page' needs a "
		    "page name (compromised-client)");
		return 1;
	}
	if (r->action != POL_DENY) {
		pol_diag(L, false, c->file, c->line, w->col, "'page' is only "
		    "for deny rules (a page explains a refusal)");
		return 2;
	}
	if (r->page != POL_PAGE_NONE) {
		pol_diag(L, false, c->file, c->line, w->col, "'page' given "
		    "twice in one rule");
		return 2;
	}
	for (size_t k = 1; k < sizeof page_names / sizeof page_names[0]; k++) {
		if (strcmp(w[1].s, page_names[k]) == 0) {
			r->page = (enum pol_page)k;
			*bad = false;
			return 2;
		}
	}
	pol_diag(L, false, c->file, c->line, w[1].col, "unknown page '%s' "
	    "(expected compromised-client)", w[1].s);
	return 2;
}

static int
d_rule(struct pol_loader *L, const struct line *c)
{
	struct pol_rule r = { 0 };
	struct marg *args;
	bool bad = false, caseless = true;
	unsigned anycol = 0;
	size_t i = 1;

	r.action = (enum pol_action)action_of(c->w[0].s);
	r.file = c->file;
	r.line = c->line;
	r.m = calloc(c->n, sizeof *r.m);
	args = calloc(c->n, sizeof *args);
	if (r.m == NULL || args == NULL)
		goto fail;
	while (i < c->n) {
		const char *kw = c->w[i].s;
		size_t used;
		bool pbad;

		if (strcmp(kw, "page") == 0 && !c->w[i].quoted) {
			i += parse_page(L, c, i, &r, &pbad);
			bad |= pbad;
			continue;
		}
		if (strcmp(kw, "any") == 0 || strcmp(kw, "audit") == 0 ||
		    strcmp(kw, "case-sensitive") == 0) {
			if (kw[0] == 'a' && kw[1] == 'n')
				r.any = true, anycol = c->w[i].col;
			else if (kw[0] == 'a')
				r.audit = true;
			else
				caseless = false;
			i++;
			continue;
		}
		used = parse_matcher(L, c, i, &r.m[r.nm], &args[r.nm], &bad);
		if (used == 0)
			break;
		r.nm++;
		i += used;
	}
	for (size_t k = 0; k < r.nm; k++)
		if (compile_regex(L, c, &r.m[k], &args[k], caseless) == -1)
			bad = true;
	if (bad || finish_rule(L, c, &r, anycol) == -1 || add_rule(L, &r) == -1)
		goto fail;
	free(args);
	return 0;
fail:
	free(args);
	pol_rule_clear(&r);
	return -1;
}

static bool
good_list_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
		    *s == '.'))
			return false;
	return true;
}

static int
list_item(struct pol_loader *L, const struct line *c, struct pol_cidrset *set,
    const char *item, unsigned col)
{
	char path[PATH_MAX], err[256];

	if (item[0] == '\0') {
		pol_diag(L, false, c->file, c->line, col,
		    "empty item in comma-separated list");
		return -1;
	}
	if (strncmp(item, "file:", 5) == 0) {
		if (item[5] == '\0') {
			pol_diag(L, false, c->file, c->line, col, "'file:' "
			    "needs a path");
			return -1;
		}
		pol_resolve(c->file, item + 5, path, sizeof path);
		return pol_parse_list_file(L, set, path, c->file, c->line,
		    col + 5);
	}
	if (item[0] == '@') {
		pol_diag(L, false, c->file, c->line, col, "a list cannot "
		    "contain another list ('%s'); name both in the rule: "
		    "from @a,@b", item);
		return -1;
	}
	if (pol_cidrset_add(set, item, err, sizeof err) == -1) {
		pol_diag(L, false, c->file, c->line, col, "%s", err);
		return -1;
	}
	return 0;
}

static int
d_list(struct pol_loader *L, const struct line *c)
{
	struct pol_policy *p = L->p;
	const struct pol_list *old;
	struct pol_list *nl, *l;
	bool bad = false;

	if (c->n < 3) {
		pol_diag(L, false, c->file, c->line, c->w[0].col, "'list' needs "
		    "a name and at least one CIDR or file:PATH");
		return -1;
	}
	if (!good_list_name(c->w[1].s)) {
		pol_diag(L, false, c->file, c->line, c->w[1].col, "bad list "
		    "name '%s' (letters, digits, '_', '-', '.'; at most 64)",
		    c->w[1].s);
		return -1;
	}
	if ((old = find_list(p, c->w[1].s)) != NULL) {
		pol_diag(L, false, c->file, c->line, c->w[1].col, "list '%s' "
		    "already defined at %s:%u", c->w[1].s, old->file, old->line);
		return -1;
	}
	if ((nl = reallocarray(p->lists, p->nlists + 1, sizeof *nl)) == NULL)
		return -1;
	p->lists = nl;
	l = &p->lists[p->nlists];
	memset(l, 0, sizeof *l);
	if ((l->set = new_set(p)) == NULL ||
	    (l->name = strdup(c->w[1].s)) == NULL)
		return -1;
	l->file = c->file;
	l->line = c->line;
	p->nlists++;
	for (size_t i = 2; i < c->n; i++) {
		char *s = c->w[i].s;
		unsigned col = c->w[i].col;

		for (;;) {
			size_t len = strcspn(s, ",");
			char save = s[len];

			s[len] = '\0';
			if (list_item(L, c, l->set, s, col) == -1)
				bad = true;
			if (save == '\0')
				break;
			s[len] = save;
			s += len + 1;
			col += (unsigned)len + 1;
		}
	}
	return bad ? -1 : 0;
}

static int
d_include(struct pol_loader *L, const struct line *c)
{
	char path[PATH_MAX];

	if (c->n != 2) {
		pol_diag(L, false, c->file, c->line, c->n < 2 ? c->w[0].col :
		    c->w[2].col, c->n < 2 ? "'include' needs a file name" :
		    "'include' takes one file name");
		return -1;
	}
	pol_resolve(c->file, c->w[1].s, path, sizeof path);
	return pol_parse_file(L, path, c->file, c->line, c->w[1].col);
}

static int
d_default(struct pol_loader *L, const struct line *c)
{
	struct pol_policy *p = L->p;
	int a;

	if (c->n != 2) {
		pol_diag(L, false, c->file, c->line, c->n < 2 ? c->w[0].col :
		    c->w[2].col, c->n < 2 ? "'default' needs an action (allow, "
		    "login, mfa or deny)" : "'default' takes one action");
		return -1;
	}
	if ((a = action_of(c->w[1].s)) < 0) {
		pol_diag(L, false, c->file, c->line, c->w[1].col, "unknown "
		    "action '%s' (expected allow, login, mfa or deny)",
		    c->w[1].s);
		return -1;
	}
	if (p->def_line != 0) {
		pol_diag(L, false, c->file, c->line, c->w[0].col, "default "
		    "already set at %s:%u", p->def_file, p->def_line);
		return -1;
	}
	p->def = (enum pol_action)a;
	p->def_file = c->file;
	p->def_line = c->line;
	return 0;
}

static const struct directive {
	const char *kw;
	int (*fn)(struct pol_loader *, const struct line *);
} directives[] = {
	{ "list", d_list },
	{ "include", d_include },
	{ "default", d_default },
	{ "allow", d_rule },
	{ "login", d_rule },
	{ "mfa", d_rule },
	{ "deny", d_rule },
};

int
pol_directive(struct pol_loader *L, const char *file, unsigned lineno,
    struct pol_word *w, size_t n, const char *text, size_t textlen)
{
	struct line c = { file, lineno, w, n, text, textlen };
	unsigned before = L->errors;

	for (size_t i = 0; i < sizeof directives / sizeof directives[0]; i++) {
		if (w[0].quoted || strcmp(w[0].s, directives[i].kw) != 0)
			continue;
		/* A failure nobody reported is an allocation failure: it
		 * must still refuse the policy, never drop a rule quietly. */
		if (directives[i].fn(L, &c) == -1 && L->errors == before)
			pol_diag(L, false, file, lineno, w[0].col, "out of "
			    "memory");
		return L->errors == before ? 0 : -1;
	}
	pol_diag(L, false, file, lineno, w[0].col, "unknown keyword '%s' "
	    "(expected list, include, default, allow, login, mfa or deny)",
	    w[0].s);
	return -1;
}

const char *
pol_action_name(enum pol_action a)
{
	return (unsigned)a < 4 ? action_names[a] : "deny";
}
