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

	struct cfg_pos   *seen;		/* first line of each table keyword */
	size_t            ncert_lines, nkey_lines;
	struct cfg_pos    cert_pos[GW_MAX_CERTS];
	struct cfg_pos    key_pos[GW_MAX_CERTS];
	struct cfg_pos    listen_pos[GW_MAX_LISTEN];
	struct cfg_pos    admin_pos, upstream_pos, ca_pos, verify_pos;
	struct cfg_pos    policy_pos, geoip_pos, workers_pos;
	struct cfg_pos    header_size_pos, conn_ip_pos, proxy_pos;
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
int cfg_kw_include(struct cfg_ctx *, const struct cfg_line *);

/* Loads like gw_config_load_ex() but reports location and message apart
 * (`pbxgate check` prints "LOC: error: MSG"). */
struct gw_config *gw_config_load_loc(const char *path, bool build_runtime,
    struct cert_tickets *tickets, cfg_report_fn report, void *arg);

/* config_keywords.c: the keyword table and cross-checks. */
/* relay_spoof.c: a header of the rewrite / method-override / client-address
 * class that is not one the gateway sets itself, so forward_header may keep
 * it. */
bool gw_spoof_keepable(const char *name);

struct cfg_keyword {
	const char *name;
	const char *usage;	/* values, for "usage: name USAGE" */
	unsigned char min, max;	/* number of values */
	bool        repeat;
	int       (*fn)(struct cfg_ctx *, const struct cfg_line *);
};
const struct cfg_keyword *cfg_keyword_find(const char *name, size_t *idx);
size_t cfg_keyword_count(void);
const struct cfg_keyword *cfg_keyword_at(size_t i);	/* NULL past the end */
void   cfg_check_all(struct cfg_ctx *);

/* config_runtime.c */
int  cfg_build_runtime(struct cfg_ctx *);
void cfg_free_contents(struct gw_config *);

#endif
