/* config_priv.h -- shared between the config parser, its keyword table and
 * the runtime builder; not part of the gateway's public API.
 *
 * Ownership: a struct cfg_ctx lives for one gw_config_load*() call. File
 * names recorded in struct cfg_pos point into ctx->names and die with the
 * context; everything stored in ctx->cfg is owned by the config.
 */
#ifndef PBXGATE_CONFIG_PRIV_H
#define PBXGATE_CONFIG_PRIV_H

#include <sys/types.h>

#include "gateway/gateway.h"

#define CFG_MAX_LINE     4096		/* bytes per line, newline excluded */
#define CFG_MAX_TOKENS   64		/* keyword + values on one line */
#define CFG_MAX_FILE     (1024L * 1024)	/* bytes per config file */

/* Where something was written: for messages after the line is gone. */
struct cfg_pos {
	const char *file;	/* display name; NULL = never seen */
	unsigned    line;
	unsigned    col;
};

struct cfg_tok {
	char    *s;		/* NUL-terminated, quotes and escapes removed */
	unsigned col;		/* 1-based byte column of the token's start */
};

/* One file being read; a stack of these is the include chain. */
struct cfg_file {
	const char *name;	/* as shown in messages */
	const char *dir;	/* absolute directory, for relative paths */
	dev_t       dev;
	ino_t       ino;
};

struct cfg_line {
	const struct cfg_file *file;
	unsigned       lineno;
	int            ntok;	/* tok[0] is the keyword */
	struct cfg_tok tok[CFG_MAX_TOKENS];
};

/* Extended report: `loc` is "FILE:LINE:COL" or "FILE" or NULL (a message
 * that carries its own location, e.g. from the policy module). */
typedef void (*cfg_report_fn)(void *arg, bool warning, const char *loc,
    const char *msg);

/* Where one keyword was set: the parser's bookkeeping, which cross-checks
 * read through cfg_where() instead of fields of their own. */
struct cfg_seen {
	struct cfg_pos  first;	/* the keyword on its first line */
	struct cfg_pos *at;	/* the first value of each line applied */
	size_t          n;
};

struct cfg_names {
	struct cfg_names *next;
	char              s[];
};

struct cfg_ctx {
	struct gw_config *cfg;
	cfg_report_fn     report;
	void             *arg;
	unsigned          errors;
	unsigned          warnings;
	bool              no_include;	/* parse_buffer: include refused */
	const char       *main_name;
	struct cfg_file   stack[GW_MAX_INCLUDE_DEPTH + 1];
	int               depth;	/* files on the stack */
	struct cfg_names *names;	/* owned strings for cfg_pos.file */

	struct cfg_seen  *seen;		/* per keyword of every table */
	size_t            nseen;
	const struct cfg_line *line;	/* the line being applied */
	size_t            ncert_lines, nkey_lines;
};

/* config_parse.c */
void cfg_error(struct cfg_ctx *, const struct cfg_line *, int tok,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void cfg_warn(struct cfg_ctx *, const struct cfg_line *, int tok,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void cfg_error_at(struct cfg_ctx *, const struct cfg_pos *,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cfg_warn_at(struct cfg_ctx *, const struct cfg_pos *,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
struct cfg_pos cfg_pos_of(const struct cfg_line *, int tok);
int cfg_kw_include(struct pol_kw_call *);
/* Where the value of the nth applied line of keyword `name` is (0 = the
 * first), or NULL when there is none. */
const struct cfg_pos *cfg_where(const struct cfg_ctx *, const char *name,
    size_t nth);

/* Loads like gw_config_load_ex() but reports location and message apart
 * (`pbxgate check` prints "LOC: error: MSG"). */
struct gw_config *gw_config_load_loc(const char *path, bool build_runtime,
    struct cert_tickets *tickets, cfg_report_fn report, void *arg);

/* config_keywords.c: the keyword table and cross-checks. */
/* relay_spoof.c: a header of the rewrite / method-override / client-address
 * class that is not one the gateway sets itself, so forward_header may keep
 * it. */
bool gw_spoof_keepable(const char *name);

/* The keyword tables of the gateway, auth and mail modules, searched in
 * this order; `off` is where the module's settings sit in struct gw_config
 * (the object its typed keywords are stored into). */
struct cfg_table {
	const struct pol_kwtab *tab;
	size_t                  off;
};
extern const struct pol_kwtab gw_kwtab;
const struct cfg_table *cfg_tables(size_t *n);
void   cfg_check_all(struct cfg_ctx *);

/* config_runtime.c */
int  cfg_build_runtime(struct cfg_ctx *);
void cfg_free_contents(struct gw_config *);

#endif
