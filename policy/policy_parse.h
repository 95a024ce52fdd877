/* policy_parse.h -- the loader's state, shared by policy_parse.c, policy_rules.c and policy_load.c. */
#ifndef PBXGATE_POLICY_PARSE_H
#define PBXGATE_POLICY_PARSE_H

#include "policy/policy_priv.h"

struct pol_word {
	char *s;
	unsigned col;	/* 1-based column of the first character of s */
	bool quoted;
};

struct pol_loader {
	struct pol_policy *p;
	pol_report_fn report;
	void *arg;
	const char *geoip_db;
	unsigned errors;
	char *stack[8];		/* real paths of the files being read */
	int depth;
	/* first `any` rule, to warn about the rules after it */
	const char *any_file;
	unsigned any_line;
	/* first country/asn matcher, where a GeoIP open failure is reported */
	const char *geo_file;
	unsigned geo_line, geo_col;
	struct pol_word *words;	/* scratch for one line, MAX_WORDS */
};

void pol_diag(struct pol_loader *, bool warning, const char *file,
    unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
const char *pol_intern(struct pol_loader *, const char *name);
void pol_resolve(const char *from_file, const char *name, char *out,
    size_t outlen);
/* from_file NULL for the top-level file. */
int pol_parse_file(struct pol_loader *, const char *path,
    const char *from_file, unsigned from_line, unsigned from_col);
int pol_parse_list_file(struct pol_loader *, struct pol_cidrset *,
    const char *path, const char *from_file, unsigned from_line,
    unsigned from_col);
/* policy_rules.c: one non-empty line */
int pol_directive(struct pol_loader *, const char *file, unsigned line,
    struct pol_word *w, size_t n, const char *text, size_t textlen);

#endif
