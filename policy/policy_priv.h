/* policy_priv.h -- structures shared by the policy module's files (not public). */
#ifndef PBXGATE_POLICY_PRIV_H
#define PBXGATE_POLICY_PRIV_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <maxminddb.h>
#include <pcre2.h>
#include <stdint.h>

#include "policy/policy.h"

/* policy_cidr.c */
bool pol_cidrset_contains_key(const struct pol_cidrset *, const struct pol_addr *);
int pol_cidrset_add_key(struct pol_cidrset *, const struct pol_addr *,
    unsigned len);

/* policy_addr.c: for policy_cidr.c's trie */
struct pol_addr pol_addr_mask(const struct pol_addr *, unsigned len);
bool pol_addr_covers(const struct pol_addr *net, unsigned len,
    const struct pol_addr *a);

/* policy_geoip.c */
bool pol_country_known(const char *code);	/* ISO 3166-1 alpha-2 */
/* Lookups: 1 found, 0 not in the database, -1 read error. */
int pol_geoip_country(const MMDB_s *, const struct sockaddr *, char cc[3]);
int pol_geoip_asn(const MMDB_s *, const struct sockaddr *, uint32_t *asn);

/* A compiled pattern plus what PCRE2 proved every match needs: checking
 * those first skips the call into PCRE2 (about 35 ns) for most rules. */
struct pol_re {
	pcre2_code *code;
	int first, last;	/* code units every match holds, or -1 */
	uint32_t minlen;
};

enum pol_mkind {
	M_FROM, M_COUNTRY, M_ASN, M_PATH, M_METHOD, M_HEADER, M_CLIENT,
	M_USER, M_GROUP, M_ROLE	/* identity matchers: need a session */
};

struct pol_matcher {
	enum pol_mkind kind;
	bool negate;
	char *text;		/* the matcher as written, for explain */
	/* from */
	const struct pol_cidrset **sets;	/* not owned (policy's sets) */
	size_t nsets;
	struct pol_cidrset *own;	/* the rule's own CIDRs (in sets) */
	/* country (2 chars each, no NUL), asn, user/group/method */
	char (*codes)[2];
	uint32_t *asns;
	char **names;
	unsigned *cols;		/* column of each name, for messages */
	size_t n;
	bool admin;		/* role */
	/* desktop-app: POL_OS_* bits and n versions */
	unsigned os;
	struct pol_version *vers;
	/* path, header */
	char *hname;
	struct pol_re re;
};

struct pol_rule {
	enum pol_action action;
	const char *file;	/* interned in the policy */
	unsigned line;
	bool any, audit, identity;
	enum pol_page page;	/* deny only */
	char *text;
	struct pol_matcher *m;	/* non-identity first, then identity */
	size_t nm;
	/* index: a literal, lower-case prefix every matching path starts with */
	char *prefix;
};

struct pol_list {
	char *name;
	const char *file;
	unsigned line;
	struct pol_cidrset *set;
};

struct pol_pindex;	/* policy_index.c */

struct pol_policy {
	struct pol_rule *rules;
	size_t nrules;
	enum pol_action def;
	const char *def_file;
	unsigned def_line;
	struct pol_list *lists;
	size_t nlists;
	struct pol_cidrset **sets;	/* every set, owned (lists + inline) */
	size_t nsets;
	char **files;			/* interned file names, owned */
	size_t nfiles;
	MMDB_s mmdb;
	bool mmdb_open;
	pcre2_match_context *mctx;
	/* desktop-app rules: the app's token and the OS tokens, compiled by
	 * the first such rule (code NULL without one) */
	struct pol_re app_re, os_re;
	struct pol_pindex *index;
};

/* policy_rules.c */
void pol_matcher_clear(struct pol_matcher *);
void pol_rule_clear(struct pol_rule *);

/* policy_decide.c: evaluate one rule; explain passes `why` to learn the
 * matcher that failed (NULL when the rule holds). Returns true when the
 * rule applies; *need_session when it only lacks a session. */
bool pol_rule_eval(const struct pol_policy *, const struct pol_rule *,
    const struct pol_request *, bool *need_session,
    const struct pol_matcher **why);
void pol_finish_verdict(const struct pol_policy *, const struct pol_request *,
    struct pol_verdict *);

/* policy_index.c: candidate rules for a path (a bitmap, 1 bit a rule). */
struct pol_pindex *pol_pindex_build(const struct pol_rule *, size_t n);
void pol_pindex_free(struct pol_pindex *);
/* Fills `bits` (nwords words) or returns false when the policy is too big
 * for the index (the caller then tries every rule). */
bool pol_pindex_candidates(const struct pol_pindex *, const char *path,
    uint64_t *bits, size_t nwords);
#define POL_INDEX_MAXWORDS 64	/* 4096 rules */

/* policy_regex.c */
int pol_regex_compile(struct pol_re *, const char *pat, bool caseless,
    char *err, size_t errlen, size_t *erroff);
/* 1 match, 0 none, -1 error (match limit) */
int pol_regex_match(const struct pol_policy *, const struct pol_re *,
    const char *subject);
char *pol_regex_prefix(const char *pat);
/* The first match at or after `start` in n bytes: 1 with [*so, *eo), 0
 * none, -1 error (match limit). */
int pol_regex_find(const struct pol_policy *, const struct pol_re *,
    const char *subject, size_t n, size_t start, size_t *so, size_t *eo);

/* policy_client.c */
int pol_client_compile(struct pol_policy *);	/* 0, or -1 out of memory */
/* 1 holds, 0 does not, -1 could not tell */
int pol_client_match(const struct pol_policy *, const struct pol_matcher *,
    const char *ua);

#endif
