/* config_parse.c -- reads config files: tokenizer, include, error reporting
 * and the load driver. Keyword meanings live in config_keywords.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config_priv.h"

static atomic_uint_fast64_t generation;

/* ---- reporting ---- */

static void vreport(struct cfg_ctx *, bool, const struct cfg_pos *,
    const char *, va_list) __attribute__((format(printf, 4, 0)));

static void
vreport(struct cfg_ctx *ctx, bool warning, const struct cfg_pos *pos,
    const char *fmt, va_list ap)
{
	char loc[PATH_MAX + 32], msg[PATH_MAX + GW_ERRLEN];

	int n = 0;

	if (warning)
		ctx->warnings++;
	else
		ctx->errors++;
	if (ctx->site != NULL) {	/* a top-level line may be to blame */
		n = snprintf(msg, sizeof(msg), "site \"%s\": ", ctx->site);
		if (pos == NULL || pos->file == NULL)
			pos = &ctx->scope;
	}
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	if (pos == NULL || pos->file == NULL)
		snprintf(loc, sizeof(loc), "%s", ctx->main_name);
	else if (pos->line == 0)
		snprintf(loc, sizeof(loc), "%s", pos->file);
	else
		snprintf(loc, sizeof(loc), "%s:%u:%u", pos->file, pos->line,
		    pos->col);
	if (ctx->report != NULL)
		ctx->report(ctx->arg, warning, loc, msg);
}

const struct cfg_pos *
cfg_scope(struct cfg_ctx *ctx)
{
	if (ctx->site == NULL)
		ctx->scope = (struct cfg_pos){ ctx->main_name, 1, 1 };
	return &ctx->scope;
}

struct cfg_pos
cfg_pos_of(const struct cfg_line *l, int tok)
{
	struct cfg_pos p = { l->file->name, l->lineno, 1 };

	if (tok >= 0 && tok < l->ntok)
		p.col = l->tok[tok].col;
	else if (l->ntok > 0)
		p.col = l->tok[0].col;
	return p;
}

void
cfg_error(struct cfg_ctx *ctx, const struct cfg_line *l, int tok,
    const char *fmt, ...)
{
	struct cfg_pos p = cfg_pos_of(l, tok);
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, false, &p, fmt, ap);
	va_end(ap);
}

void
cfg_warn(struct cfg_ctx *ctx, const struct cfg_line *l, int tok,
    const char *fmt, ...)
{
	struct cfg_pos p = cfg_pos_of(l, tok);
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, true, &p, fmt, ap);
	va_end(ap);
}

void
cfg_error_at(struct cfg_ctx *ctx, const struct cfg_pos *pos,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, false, pos, fmt, ap);
	va_end(ap);
}

void
cfg_warn_at(struct cfg_ctx *ctx, const struct cfg_pos *pos,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, true, pos, fmt, ap);
	va_end(ap);
}

/* ---- owned strings that outlive one file (names in cfg_pos) ---- */

static const char *
keep_name(struct cfg_ctx *ctx, const char *s)
{
	size_t n = strlen(s) + 1;
	struct cfg_names *e = malloc(sizeof(*e) + n);

	if (e == NULL)
		return NULL;
	memcpy(e->s, s, n);
	e->next = ctx->names;
	ctx->names = e;
	return e->s;
}

static void
free_names(struct cfg_ctx *ctx)
{
	struct cfg_names *e, *next;

	for (e = ctx->names; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	ctx->names = NULL;
}

/* ---- byte checks ---- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid:
 * overlong forms, surrogates and code points past U+10FFFF included. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Rejects what has no place in a config line: NUL, control bytes other
 * than tab, DEL and invalid UTF-8. Returns 0 or -1 after one report. */
static int
check_bytes(struct cfg_ctx *ctx, const struct cfg_file *f, unsigned lineno,
    const unsigned char *p, size_t n)
{
	struct cfg_pos pos = { f->name, lineno, 1 };
	size_t i = 0, k;

	while (i < n) {
		pos.col = (unsigned)i + 1;
		if (p[i] == '\0') {
			cfg_error_at(ctx, &pos, "NUL byte in the configuration");
			return -1;
		}
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) {
			cfg_error_at(ctx, &pos, "control character 0x%02x in the "
			    "configuration", p[i]);
			return -1;
		}
		if ((k = utf8_seq(p + i, n - i)) == 0) {
			cfg_error_at(ctx, &pos, "invalid UTF-8 in the "
			    "configuration");
			return -1;
		}
		i += k;
	}
	return 0;
}

/* ---- tokenizer ---- */

/* Reads one double-quoted token starting at s[*i] == '"' into *out;
 * only \" and \\ are escapes. */
static int
read_quoted(struct cfg_ctx *ctx, struct cfg_line *l, const char *s,
    size_t *i, char **out)
{
	struct cfg_pos pos = { l->file->name, l->lineno, (unsigned)*i + 1 };
	size_t j = *i + 1;

	for (;;) {
		if (s[j] == '\0') {
			cfg_error_at(ctx, &pos, "unterminated quoted string");
			return -1;
		}
		if (s[j] == '"')
			break;
		if (s[j] == '\\') {
			if (s[j + 1] != '"' && s[j + 1] != '\\') {
				pos.col = (unsigned)j + 1;
				cfg_error_at(ctx, &pos, "unknown escape \"\\%c\" "
				    "in quoted string (only \\\" and \\\\)",
				    s[j + 1] == '\0' ? ' ' : s[j + 1]);
				return -1;
			}
			j++;
		}
		*(*out)++ = s[j++];
	}
	j++;
	if (s[j] != '\0' && s[j] != ' ' && s[j] != '\t' && s[j] != '#') {
		pos.col = (unsigned)j + 1;
		cfg_error_at(ctx, &pos, "blank expected after closing quote");
		return -1;
	}
	*i = j;
	return 0;
}

/* Splits one checked line into tokens; buf (same size as the line + 1)
 * receives their text. Returns -1 after reporting. */
static int
tokenize(struct cfg_ctx *ctx, struct cfg_line *l, const char *s, char *buf)
{
	size_t i = 0;
	char *out = buf;

	l->ntok = 0;
	for (;;) {
		while (s[i] == ' ' || s[i] == '\t')
			i++;
		if (s[i] == '\0' || s[i] == '#')
			return 0;
		if (l->ntok == CFG_MAX_TOKENS) {
			struct cfg_pos pos = { l->file->name, l->lineno,
			    (unsigned)i + 1 };
			cfg_error_at(ctx, &pos, "too many values on one line "
			    "(max %d)", CFG_MAX_TOKENS - 1);
			return -1;
		}
		l->tok[l->ntok].col = (unsigned)i + 1;
		l->tok[l->ntok].s = out;
		if (s[i] == '"') {
			if (read_quoted(ctx, l, s, &i, &out) == -1)
				return -1;
		} else {
			while (s[i] != '\0' && s[i] != ' ' && s[i] != '\t') {
				if (s[i] == '"' || s[i] == '#') {
					struct cfg_pos pos = { l->file->name,
					    l->lineno, (unsigned)i + 1 };
					cfg_error_at(ctx, &pos, "'%c' inside a "
					    "value: quote the whole value%s",
					    s[i], s[i] == '#' ? " or put a "
					    "blank before the comment" : "");
					return -1;
				}
				*out++ = s[i++];
			}
		}
		*out++ = '\0';
		l->ntok++;
	}
}

/* ---- keyword dispatch ---- */

/* The keyword named `name` in the module tables: its entry, the table it
 * is in and its index in ctx->seen (tables one after the other). */
static const struct pol_keyword *
find_keyword(const char *name, const struct cfg_table **table, size_t *idx)
{
	const struct cfg_table *t;
	const struct pol_keyword *kw;
	size_t n, i, base = 0;

	t = cfg_tables(&n);
	for (i = 0; i < n; i++) {
		if ((kw = pol_kw_find(t[i].tab, name)) != NULL) {
			*table = &t[i];
			*idx = base + (size_t)(kw - t[i].tab->kw);
			return kw;
		}
		base += t[i].tab->n;
	}
	return NULL;
}

size_t
cfg_keyword_total(void)
{
	const struct cfg_table *t;
	size_t n, i, total = 0;

	t = cfg_tables(&n);
	for (i = 0; i < n; i++)
		total += t[i].tab->n;
	return total;
}

const struct cfg_pos *
cfg_where(const struct cfg_ctx *ctx, const char *name, size_t nth)
{
	const struct cfg_table *t;
	size_t idx;

	if (find_keyword(name, &t, &idx) == NULL || nth >= ctx->seen[idx].n)
		return NULL;
	return &ctx->seen[idx].at[nth];
}

/* Remembers the first value of a line just applied, for cross-checks. */
static void
remember(struct cfg_ctx *ctx, struct cfg_seen *seen, const struct cfg_line *l)
{
	struct cfg_pos *at;

	at = reallocarray(seen->at, seen->n + 1, sizeof(*at));
	if (at == NULL) {
		cfg_error(ctx, l, 0, "%s: out of memory", l->tok[0].s);
		return;
	}
	seen->at = at;
	seen->at[seen->n++] = cfg_pos_of(l, 1);
}

/* Runs the keyword's table entry. A setter of the gateway's table reports
 * through ctx itself; any other failure is reported here, at the value
 * the module blames. */
static void
apply(struct cfg_ctx *ctx, const struct cfg_line *l,
    const struct pol_keyword *kw, const struct cfg_table *t,
    struct cfg_seen *seen)
{
	char *argv[CFG_MAX_TOKENS], err[GW_ERRLEN] = "";
	struct pol_kw_call c = {
		.obj = (char *)ctx->cfg + t->off, .parser = ctx,
		.basedir = l->file->dir, .name = kw->name, .argc = l->ntok - 1,
		.argv = argv, .err = err, .errlen = sizeof(err),
	};
	const struct cfg_line *outer = ctx->line;	/* include nests */
	unsigned before = ctx->errors;
	int i, r;

	for (i = 1; i < l->ntok; i++)
		argv[i - 1] = l->tok[i].s;
	argv[l->ntok - 1] = NULL;
	ctx->line = l;
	r = pol_kw_apply(kw, &c);
	ctx->line = outer;
	if (r == 0) {
		remember(ctx, seen, l);
		return;
	}
	if (ctx->errors != before && err[0] == '\0')
		return;
	cfg_error(ctx, l, c.bad >= 0 && c.bad + 1 < l->ntok ? c.bad + 1 : 0,
	    "%s: %s", kw->name, err[0] != '\0' ? err : "invalid value");
}

/* A line inside a site block is kept for later (config_site.c): only
 * keywords a site may set are allowed there. */
static void
keep_for_site(struct cfg_ctx *ctx, const struct cfg_line *l,
    const struct pol_keyword *kw, size_t idx)
{
	if (strcmp(kw->name, "include") == 0) {
		cfg_error(ctx, l, 0, "include is not available inside a site "
		    "block: include whole site blocks from the top level");
		return;
	}
	if (!cfg_site_scoped(kw->name)) {
		cfg_error(ctx, l, 0, "\"%s\" applies to the whole gateway, "
		    "not to a site", kw->name);
		return;
	}
	cfg_site_keep(ctx, l, idx, false, false);
}

void
cfg_dispatch(struct cfg_ctx *ctx, const struct cfg_line *l)
{
	const struct pol_keyword *kw;
	const struct cfg_table *t;
	struct cfg_seen *seen;
	unsigned before;
	size_t idx;

	if (ctx->site == NULL && strcmp(l->tok[0].s, "site") == 0) {
		cfg_site_open(ctx, l);
		return;
	}
	if (ctx->site == NULL && strcmp(l->tok[0].s, "}") == 0) {
		cfg_site_close(ctx, l);
		return;
	}
	if ((kw = find_keyword(l->tok[0].s, &t, &idx)) == NULL) {
		cfg_error(ctx, l, 0, "unknown keyword \"%s\"", l->tok[0].s);
		return;
	}
	if (ctx->open != NULL) {
		keep_for_site(ctx, l, kw, idx);
		return;
	}
	seen = &ctx->seen[idx];
	if (!kw->repeat && seen->first.file != NULL) {
		cfg_error(ctx, l, 0, "duplicate \"%s\" (first set at %s:%u)",
		    kw->name, seen->first.file, seen->first.line);
		return;
	}
	if (seen->first.file == NULL)
		seen->first = cfg_pos_of(l, 0);
	before = ctx->errors;
	apply(ctx, l, kw, t, seen);
	/* every site gets it unless it sets the keyword itself */
	if (ctx->site == NULL && cfg_site_inherits(kw->name))
		cfg_site_keep(ctx, l, idx, true, ctx->errors != before);
}

/* ---- files ---- */

static void parse_data(struct cfg_ctx *, const char *data, size_t len);

/* Display name and absolute directory of a file named `value` from a
 * file whose display name is parent_name and directory parent_dir. */
static int
resolve_file(struct cfg_ctx *ctx, const char *parent_name,
    const char *parent_dir, const char *value, const char **name,
    const char **dir, char **abs)
{
	char tmp[PATH_MAX * 2 + 2], *slash;
	const char *pslash = strrchr(parent_name, '/');

	if (value[0] == '/')
		snprintf(tmp, sizeof(tmp), "%s", value);
	else if (pslash != NULL)
		snprintf(tmp, sizeof(tmp), "%.*s/%s",
		    (int)(pslash - parent_name), parent_name, value);
	else
		snprintf(tmp, sizeof(tmp), "%s", value);
	*name = keep_name(ctx, tmp);
	if (value[0] == '/')
		snprintf(tmp, sizeof(tmp), "%s", value);
	else
		snprintf(tmp, sizeof(tmp), "%s/%s", parent_dir, value);
	*abs = strdup(tmp);
	slash = strrchr(tmp, '/');
	if (slash == tmp)
		slash[1] = '\0';
	else
		*slash = '\0';
	*dir = keep_name(ctx, tmp);
	if (*name == NULL || *dir == NULL || *abs == NULL) {
		free(*abs);
		return -1;
	}
	return 0;
}

/* Parses one file; pos (NULL for the main file) is the include line. */
static void
parse_file(struct cfg_ctx *ctx, const char *name, const char *dir,
    const char *abs, const struct cfg_pos *pos)
{
	char err[GW_ERRLEN], *data;
	struct cfg_file *f;
	struct stat st;
	size_t len;
	int i;

	if (pol_file_read(abs, (size_t)CFG_MAX_FILE, &data, &len, &st, err,
	    sizeof(err)) == -1) {
		if (pos != NULL)
			cfg_error_at(ctx, pos, "%s: %s", name, err);
		else
			cfg_error_at(ctx, &(struct cfg_pos){ name, 0, 0 },
			    "%s", err);
		return;
	}
	for (i = 0; i < ctx->depth; i++) {
		if (ctx->stack[i].dev == st.st_dev &&
		    ctx->stack[i].ino == st.st_ino) {
			cfg_error_at(ctx, pos, "include loop: %s is already "
			    "being read", name);
			free(data);
			return;
		}
	}
	if (st.st_mode & S_IWOTH)	/* anyone could add a listen or a key */
		cfg_warn_at(ctx, pos != NULL ? pos : &(struct cfg_pos){ name,
		    0, 0 }, "%s is writable by every user: chmod o-w", name);
	f = &ctx->stack[ctx->depth++];
	*f = (struct cfg_file){ name, dir, st.st_dev, st.st_ino };
	parse_data(ctx, data, len);
	cfg_site_eof(ctx);
	ctx->depth--;
	free(data);
}

int
cfg_kw_include(struct pol_kw_call *c)
{
	struct cfg_ctx *ctx = c->parser;
	const struct cfg_line *l = ctx->line;
	const char *name, *dir;
	struct cfg_pos pos = cfg_pos_of(l, 1);
	char *abs;

	if (ctx->no_include) {
		cfg_error(ctx, l, 0, "include: not available here");
		return -1;
	}
	if (l->tok[1].s[0] == '\0') {
		cfg_error(ctx, l, 1, "include: empty file name");
		return -1;
	}
	if (ctx->depth > GW_MAX_INCLUDE_DEPTH) {
		cfg_error(ctx, l, 0, "include: nested more than %d deep",
		    GW_MAX_INCLUDE_DEPTH);
		return -1;
	}
	if (resolve_file(ctx, l->file->name, l->file->dir, l->tok[1].s,
	    &name, &dir, &abs) == -1) {
		cfg_error(ctx, l, 1, "include: out of memory");
		return -1;
	}
	parse_file(ctx, name, dir, abs, &pos);
	free(abs);
	return 0;
}

static void
parse_line(struct cfg_ctx *ctx, const struct cfg_file *f, unsigned lineno,
    const char *p, size_t n)
{
	char text[CFG_MAX_LINE + 1], buf[CFG_MAX_LINE + 1];
	struct cfg_line l;

	if (n > 0 && p[n - 1] == '\r')	/* CRLF files from other editors */
		n--;
	if (n > CFG_MAX_LINE) {
		cfg_error_at(ctx, &(struct cfg_pos){ f->name, lineno,
		    CFG_MAX_LINE + 1 }, "line longer than %d bytes",
		    CFG_MAX_LINE);
		return;
	}
	if (check_bytes(ctx, f, lineno, (const unsigned char *)p, n) == -1)
		return;
	memcpy(text, p, n);
	text[n] = '\0';
	l.file = f;
	l.lineno = lineno;
	if (tokenize(ctx, &l, text, buf) == -1 || l.ntok == 0)
		return;
	cfg_dispatch(ctx, &l);
}

static void
parse_data(struct cfg_ctx *ctx, const char *data, size_t len)
{
	const struct cfg_file *f = &ctx->stack[ctx->depth - 1];
	size_t off = 0;
	unsigned lineno = 0;

	while (off < len) {
		const char *nl = memchr(data + off, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - (data + off)) : len - off;

		if (lineno == UINT_MAX)
			break;
		parse_line(ctx, f, ++lineno, data + off, n);
		off += n + 1;
	}
}

/* ---- load driver ---- */

int
cfg_ctx_init(struct cfg_ctx *ctx, struct gw_config *cfg, cfg_report_fn report,
    void *arg)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->report = report;
	ctx->arg = arg;
	ctx->nseen = cfg_keyword_total();
	ctx->seen = calloc(ctx->nseen, sizeof(*ctx->seen));
	return ctx->seen == NULL ? -1 : 0;
}

void
cfg_ctx_done(struct cfg_ctx *ctx)
{
	cfg_sites_free(ctx);
	for (size_t i = 0; ctx->seen != NULL && i < ctx->nseen; i++)
		free(ctx->seen[i].at);
	free(ctx->seen);
	ctx->seen = NULL;
	free_names(ctx);
}

/* With site blocks the login settings are each site's (config_site.c). */
static void
finish_modules(struct cfg_ctx *ctx)
{
	struct cfg_pos top = { ctx->main_name, 1, 1 };
	char err[GW_ERRLEN] = "";

	if (ctx->nsites == 0 &&
	    auth_settings_finish(&ctx->cfg->auth, err, sizeof(err)) != 0)
		cfg_error_at(ctx, &top, "%s", err[0] ? err : "auth settings "
		    "are inconsistent");
	err[0] = '\0';
	/* beside sites a top-level smtp_listen is refused on its own line
	 * (config_smtp.c): its relay's settings are never finished */
	if (ctx->nsites > 0 && ctx->cfg->mail.nlisten > 0)
		return;
	if (mail_settings_finish(&ctx->cfg->mail, err, sizeof(err)) != 0)
		cfg_error_at(ctx, &top, "%s", err[0] ? err : "mail settings "
		    "are inconsistent");
}

/* Common end of every load: cross-checks, runtime, verdict. Sites are
 * built even after a top-level error so that `check` reports theirs. */
static struct gw_config *
conclude(struct cfg_ctx *ctx, bool build_runtime)
{
	struct gw_config *cfg = ctx->cfg;
	bool sites = ctx->nsites > 0;

	if (ctx->errors == 0) {
		cfg_check_process(ctx);
		if (!sites)
			cfg_check_site(ctx);
	}
	if (ctx->errors == 0)
		finish_modules(ctx);
	if (ctx->errors == 0 && build_runtime)
		(void)cfg_build_runtime(ctx, true, !sites);
	if (sites)
		cfg_sites_build(ctx, build_runtime);
	cfg_smtp_check(ctx);
	cfg_ctx_done(ctx);
	if (ctx->errors != 0) {
		gw_config_unref(cfg);
		return NULL;
	}
	cfg->generation = atomic_fetch_add(&generation, 1) + 1;
	return cfg;
}

static char *
absolute_dir(const char *path)
{
	char cwd[PATH_MAX], tmp[PATH_MAX * 2 + 2], *slash;

	if (path[0] == '/') {
		snprintf(tmp, sizeof(tmp), "%s", path);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return NULL;
		snprintf(tmp, sizeof(tmp), "%s/%s", cwd, path);
	}
	slash = strrchr(tmp, '/');
	if (slash == tmp)
		slash[1] = '\0';
	else
		*slash = '\0';
	return strdup(tmp);
}

/* cfg->path is made absolute so that a reload after a chdir() still
 * finds the file. */
static struct gw_config *
new_config(const char *path)
{
	struct gw_config *cfg = calloc(1, sizeof(*cfg));
	char cwd[PATH_MAX];

	if (cfg == NULL)
		return NULL;
	gw_config_defaults(cfg);
	cfg->refs = 1;
	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		cfg->path = strdup(path);
	else if (asprintf(&cfg->path, "%s/%s", cwd, path) == -1)
		cfg->path = NULL;
	if (cfg->path == NULL) {
		gw_config_unref(cfg);
		return NULL;
	}
	return cfg;
}

static void
report_oom(cfg_report_fn report, void *arg, const char *path)
{
	if (report != NULL)
		report(arg, false, path, "out of memory while loading the "
		    "configuration");
}

struct gw_config *
gw_config_load_loc(const char *path, bool build_runtime,
    struct cert_tickets *tickets, cfg_report_fn report, void *arg)
{
	struct gw_config *cfg;
	struct cfg_ctx ctx;
	const char *name = NULL, *dir = NULL;
	char *adir;

	if ((cfg = new_config(path)) == NULL) {
		report_oom(report, arg, path);
		return NULL;
	}
	cfg->tickets = tickets;
	if (cfg_ctx_init(&ctx, cfg, report, arg) == 0 &&
	    (adir = absolute_dir(path)) != NULL) {
		name = keep_name(&ctx, path);
		dir = keep_name(&ctx, adir);
		free(adir);
	}
	if (name == NULL || dir == NULL) {
		cfg_ctx_done(&ctx);
		gw_config_unref(cfg);
		report_oom(report, arg, path);
		return NULL;
	}
	ctx.main_name = name;
	parse_file(&ctx, name, dir, path, NULL);
	return conclude(&ctx, build_runtime);
}

struct joined {
	gw_report_fn report;
	void        *arg;
};

static void
join_report(void *arg, bool warning, const char *loc, const char *msg)
{
	struct joined *j = arg;
	char line[PATH_MAX * 2 + GW_ERRLEN + 40];

	if (j->report == NULL)
		return;
	if (loc != NULL)
		snprintf(line, sizeof(line), "%s: %s", loc, msg);
	else
		snprintf(line, sizeof(line), "%s", msg);
	j->report(j->arg, warning, line);
}

struct gw_config *
gw_config_load_ex(const char *path, bool build_runtime,
    struct cert_tickets *tickets, gw_report_fn report, void *arg)
{
	struct joined j = { report, arg };

	return gw_config_load_loc(path, build_runtime, tickets, join_report,
	    &j);
}

struct gw_config *
gw_config_load_sites(const char *path, gw_report_fn report, void *arg)
{
	struct joined j = { report, arg };

	return gw_config_load_loc(path, false, NULL, join_report, &j);
}

const struct gw_site *
gw_config_site(const struct gw_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nsites; i++)
		if (strcmp(cfg->sites[i].name, name) == 0)
			return &cfg->sites[i];
	return NULL;
}

const struct gw_site *
gw_config_first_site(const struct gw_config *cfg)
{
	const struct gw_site *s = cfg->default_site != NULL ?
	    gw_config_site(cfg, cfg->default_site) : NULL;

	return s != NULL ? s : cfg->nsites > 0 ? &cfg->sites[0] : NULL;
}

struct gw_config *
gw_config_load(const char *path, bool build_runtime, gw_report_fn report,
    void *arg)
{
	return gw_config_load_ex(path, build_runtime, NULL, report, arg);
}

struct gw_config *
gw_config_parse_buffer(const char *name, const void *data, size_t len,
    gw_report_fn report, void *arg)
{
	struct joined j = { report, arg };
	struct gw_config *cfg;
	struct cfg_ctx ctx;
	char cwd[PATH_MAX];
	const char *n, *d;

	if ((cfg = new_config(name)) == NULL) {
		report_oom(join_report, &j, name);
		return NULL;
	}
	if (cfg_ctx_init(&ctx, cfg, join_report, &j) == -1 ||
	    getcwd(cwd, sizeof(cwd)) == NULL ||
	    (n = keep_name(&ctx, name)) == NULL ||
	    (d = keep_name(&ctx, cwd)) == NULL) {
		cfg_ctx_done(&ctx);
		gw_config_unref(cfg);
		report_oom(join_report, &j, name);
		return NULL;
	}
	ctx.main_name = n;
	ctx.no_include = true;
	ctx.stack[0] = (struct cfg_file){ n, d, 0, 0 };
	ctx.depth = 1;
	parse_data(&ctx, data, len);
	cfg_site_eof(&ctx);
	ctx.depth = 0;
	return conclude(&ctx, false);
}

struct gw_config *
gw_config_ref(struct gw_config *cfg)
{
	atomic_fetch_add(&cfg->refs, 1);
	return cfg;
}

void
gw_config_unref(struct gw_config *cfg)
{
	if (cfg == NULL || atomic_fetch_sub(&cfg->refs, 1) != 1)
		return;
	cfg_free_contents(cfg);
	free(cfg);
}
