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
#define CFG_MAX_SITES    1024		/* site blocks per configuration */
#define CFG_SITE_NAME_MAX 63		/* bytes of a site's name */
#define CFG_MAX_SITE_LINES 4096		/* lines of one site block, and
					   top-level lines sites inherit */

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

/* A line kept after its file is gone: the lines of a site block, and the
 * top-level lines of site-scoped keywords a site inherits (config_site.c).
 * tok[i].s point into the bytes after tok[]; file names into ctx->names. */
struct cfg_saved {
	struct cfg_saved *next;
	struct cfg_file   file;
	unsigned          lineno;
	int               ntok;
	size_t            kw;		/* the keyword's index in ctx->seen */
	bool              failed;	/* refused at the top level already */
	struct cfg_tok    tok[];
};

/* One "site NAME {" block as read: applied once the whole file is read. */
struct cfg_site_src {
	char             *name;
	struct cfg_pos    pos;		/* the "site" word */
	int               depth;	/* file depth that opened it */
	bool              broken;	/* its "site" line was refused */
	size_t            nlines;
	struct cfg_saved *lines, **tail;
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

	/* Sites (config_site.c). Top level: the blocks read and the lines a
	 * site may inherit. A site's own context (applying its lines) has
	 * site set: its messages say which site, and a missing setting is
	 * blamed on its "site" line (scope) instead of the file's top. */
	struct cfg_site_src *sites;
	size_t            nsites;
	struct cfg_site_src *open;	/* the block being read, or NULL */
	struct cfg_saved *inherit, **inherit_tail;
	size_t            ninherit;
	const char       *site;
	struct cfg_pos    scope;
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

/* The position a missing setting is blamed on: the top of the main file,
 * or a site's "site" line. */
const struct cfg_pos *cfg_scope(struct cfg_ctx *);
/* Applies one line through the keyword tables (a site replays its lines
 * through it). */
void cfg_dispatch(struct cfg_ctx *, const struct cfg_line *);
size_t cfg_keyword_total(void);
int  cfg_ctx_init(struct cfg_ctx *, struct gw_config *, cfg_report_fn,
    void *);
void cfg_ctx_done(struct cfg_ctx *);

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
/* Whole-file cross-checks: of what the whole gateway shares, and of what a
 * site may set (run on the top level when there are no sites, on each
 * site otherwise). */
void   cfg_check_process(struct cfg_ctx *);
void   cfg_check_site(struct cfg_ctx *);
/* A keyword a site block may set, and one it inherits from the top
 * level (every one but smtp_listen: a listener is one site's). */
bool   cfg_site_scoped(const char *name);
bool   cfg_site_inherits(const char *name);
/* Same port and the same address, or a wildcard on either side. */
bool   cfg_addr_overlap(const struct gw_addr *, const struct gw_addr *);

/* config_smtp.c: the relay's listeners across sites, once the sites are
 * built: a top-level smtp_listen beside sites, two listeners on one
 * address, a site's on the gateway's ports, more than
 * GW_MAX_SMTP_LISTEN. */
void   cfg_smtp_check(struct cfg_ctx *);

/* config_site.c: "site NAME {" ... "}" blocks. */
void   cfg_site_open(struct cfg_ctx *, const struct cfg_line *);
void   cfg_site_close(struct cfg_ctx *, const struct cfg_line *);
/* Keeps a line of the open block, or a top-level line sites inherit
 * (`failed`: its top-level application was refused). */
void   cfg_site_keep(struct cfg_ctx *, const struct cfg_line *, size_t kw,
    bool inherit, bool failed);
/* A block still open at the end of the file that opened it. */
void   cfg_site_eof(struct cfg_ctx *);
/* Builds every site's settings (and runtime objects) into ctx->cfg->sites
 * and checks what spans sites (server names, default_site). */
void   cfg_sites_build(struct cfg_ctx *, bool build_runtime);
void   cfg_sites_free(struct cfg_ctx *);

/* config_runtime.c */
/* Builds what ctx->cfg's settings need: `process` the objects the whole
 * gateway shares (ticket keys from a file), `site` the per-site ones
 * (server TLS, upstream TLS, policy, known-bad, integrity). */
int  cfg_build_runtime(struct cfg_ctx *, bool process, bool site);
void cfg_free_contents(struct gw_config *);

#endif
