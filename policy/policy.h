/* policy.h -- IP lockdown policy: parse, compile and decide who may reach which path.
 *
 * A policy is loaded once from a file (pol_load), is immutable afterwards
 * and may be used from any number of threads at once without locks: every
 * function taking a `const struct pol_policy *` is thread-safe. A reload
 * loads a new policy next to the old one and swaps pointers; the old one is
 * freed (pol_free) once no thread uses it any more.
 *
 * Ownership: everything returned by pol_load / pol_lockdown_parse /
 * pol_cidrset_new belongs to the caller and is released with the matching
 * *_free(). Strings in a pol_verdict (file, reason) belong to the policy
 * (or are static) and stay valid until pol_free(). Nothing in a
 * pol_request is retained after the call returns.
 *
 * The module does not log. Functions that can fail take `char *err, size_t
 * errlen`; pol_load reports every problem through a callback instead,
 * formatted as `FILE:LINE:COL: message`.
 */
#ifndef PBXGATE_POLICY_H
#define PBXGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* ---- policy_file.c: files the configuration names ---------------------
 * The one way every module opens a file an administrator named in the
 * configuration: gateway includes, policy includes and `file:` lists,
 * scrub rules and SMTP secret files, TLS certificates, keys and CAs, the
 * GeoIP database, the auth secret key and user store. It lives here, at
 * the bottom of the module graph, so that certs, auth, mail and gateway
 * can all reach it. Only regular files are accepted (a symbolic link to
 * one is fine unless O_NOFOLLOW is asked for): a FIFO, socket, directory
 * or device is refused before any read, so none can block a loader (and
 * with it `check` or a SIGHUP) or feed it endless bytes.
 *
 * Errors: err gets the reason without the path ("not a regular file
 * (fifo)", "cannot open: No such file or directory", "larger than N
 * bytes"); callers put the path and their FILE:LINE:COL in front.
 * Ownership: a descriptor returned belongs to the caller (close it); a
 * buffer from pol_file_read is released with pol_file_free, which wipes
 * it first (key files go through here too). Thread-safe. */
/* Returns an open descriptor in blocking mode on a regular file, with *st
 * filled, or -1 with err. oflags may only be 0 or O_NOFOLLOW. */
int pol_file_open(const char *path, int oflags, struct stat *st,
    char *err, size_t errlen);
/* Reads a whole regular file of at most `max` bytes into a new buffer,
 * NUL-terminated (the NUL is not counted in *len). st may be NULL. */
int pol_file_read(const char *path, size_t max, char **data, size_t *len,
    struct stat *st, char *err, size_t errlen);
void pol_file_free(char *data, size_t len);
/* For files another library opens by path (SQLite): 0 when `path` is a
 * regular file now, or does not exist and missing_ok (it will be created);
 * else -1 with err. */
int pol_file_check(const char *path, bool missing_ok, char *err,
    size_t errlen);
/* "fifo", "directory", "socket", "character device", ... */
const char *pol_file_kind(mode_t mode);
/* Privilege separation (gateway/privsep.c): every pol_file_open goes
 * through one opener. The unprivileged child sets one that asks the
 * privileged parent for the descriptor; the parent sets one that records
 * which files its own parse of the configuration named (those are the only
 * ones it hands out). The opener returns a descriptor or -1 with err, like
 * pol_file_open_local, which is the direct open. Set before any thread. */
typedef int pol_file_opener(void *arg, const char *path, int oflags,
    char *err, size_t errlen);
void pol_file_set_opener(pol_file_opener *fn, void *arg);
int pol_file_open_local(const char *path, int oflags, struct stat *st,
    char *err, size_t errlen);

/* ---- policy_addr.c: the address vocabulary -----------------------------
 * The one parser, printer and matcher of IP addresses and CIDRs that every
 * module uses: trusted_proxy, smtp_allow, policy rules and lists, user
 * lockdowns, X-Forwarded-For, the per-peer counters and the peer text in
 * every log. An address is 128 bits; IPv4 is held IPv4-mapped
 * (::ffff:a.b.c.d), so an IPv4 peer and the same peer seen through a
 * dual-stack socket are one value: both match IPv4 rules and both print
 * as dotted IPv4. Consequence: `::/0` covers IPv4 too, `0.0.0.0/0` covers
 * IPv4 only.
 *
 * Text accepted (everywhere the same): a bare address as inet_pton reads
 * it (IPv4 dotted quad without leading zeros, IPv6 in any RFC 4291 form),
 * optionally /LEN in decimal without leading zeros (0..32 for IPv4,
 * 0..128 for IPv6). Refused: empty text, white space, brackets, a port, a
 * zone (%eth0), and a CIDR with host bits set (`10.1.2.3/8`): the error
 * names the network probably meant. Errors have no position; callers put
 * their FILE:LINE:COL and keyword in front. Thread-safe, no allocation. */
struct pol_addr {
	uint64_t hi, lo;	/* most significant bits first */
};
struct pol_cidr {
	struct pol_addr net;	/* host bits clear */
	unsigned len;		/* over the 128-bit form: IPv4 /n is 96 + n */
};
#define POL_ADDR_STRLEN 46	/* INET6_ADDRSTRLEN: longest text plus NUL */
/* AF_INET or AF_INET6 (other families, or NULL: false). */
bool pol_addr_from_sockaddr(const struct sockaddr *sa, struct pol_addr *out);
/* A bare address of `n` bytes (need not be NUL-terminated): 0, or -1. */
int pol_addr_parse(const char *s, size_t n, struct pol_addr *out);
/* The socket address (IPv4-mapped becomes AF_INET); returns its length. */
socklen_t pol_addr_to_sockaddr(const struct pol_addr *a, uint16_t port,
    struct sockaddr_storage *ss);
bool pol_addr_is_v4(const struct pol_addr *);	/* IPv4 or IPv4-mapped */
bool pol_addr_is_loopback(const struct pol_addr *);	/* 127/8, ::1 */
/* The block one client is counted under: an IPv4 address alone, an IPv6
 * address by its /64 (one subscriber gets the whole /64). Returns the
 * prefix length over the 128-bit form (128 or 64). */
unsigned pol_addr_group(const struct pol_addr *a, struct pol_addr *out);
/* IPv4 (mapped or not) as dotted quad, IPv6 as RFC 5952 text. */
void pol_addr_format(const struct pol_addr *, char *buf, size_t buflen);
/* The text every log shows for a peer: pol_addr_format, or "unknown". */
void pol_addr_peer_text(const struct sockaddr *sa, char *buf, size_t buflen);
/* "ADDR" or "ADDR/LEN": 0, or -1 with err. */
int pol_cidr_parse(const char *s, struct pol_cidr *out, char *err,
    size_t errlen);
bool pol_cidr_contains(const struct pol_cidr *, const struct pol_addr *);
/* True when `sa` lies in one of the n CIDRs of `list`. */
bool pol_cidr_list_contains(const struct pol_cidr *list, size_t n,
    const struct sockaddr *sa);
/* ---- policy_value.c: the config file's value grammar ------------------
 * One grammar for every keyword of every module (gateway, auth, mail),
 * documented once in docs/configuration.md "Values":
 *   DURATION  whole numbers with units d h m s ms, largest first, each at
 *             most once ("1h30m", "250ms"); a bare number is seconds.
 *             Parsed to milliseconds.
 *   SIZE      a whole number of bytes with an optional k, m or g, either
 *             case, powers of 1024 ("8k" = 8192). Parsed to bytes.
 *   COUNT     digits only.
 *   BOOL      on|off (yes|no also accepted). Parsed to 1 or 0.
 * Signs, fractions, blanks and overflow are errors. Errors: err gets the
 * whole reason with the value quoted, no keyword and no position. */
enum pol_kind {
	POL_KIND_OTHER,		/* the keyword's setter reads argv itself */
	POL_KIND_DURATION,
	POL_KIND_SIZE,
	POL_KIND_COUNT,
	POL_KIND_BOOL,
};
int pol_value_parse(enum pol_kind, const char *s, uint64_t *v, char *err,
    size_t errlen);
/* The shortest spelling of v in the grammar ("1h30m", "64k", "0"). */
void pol_value_format(enum pol_kind, uint64_t v, char *buf, size_t len);

/* ---- policy_keyword.c: the shape of every module's keyword table ------
 * Each module (gateway, auth, mail) exports one struct pol_kwtab; the
 * gateway's config parser (gateway/config_parse.c) finds a line's keyword
 * in the tables, checks duplicates, remembers where each keyword was set
 * and calls pol_kw_apply, which checks the value count (usage text), parses
 * a typed value with the grammar above, checks its bounds and either stores
 * it at `off` in the module's settings or hands it to `set`. The parser
 * puts the FILE:LINE:COL in front of err. */
struct pol_kw_call {
	void        *obj;	/* the settings the table writes into */
	void        *parser;	/* the config parser's context, opaque here */
	const char  *basedir;	/* directory of the file, for relative paths */
	const char  *name;	/* the keyword */
	int          argc;	/* values after the keyword */
	char *const *argv;
	uint64_t     num;	/* a typed keyword's value, scaled */
	int          bad;	/* out: index in argv at fault, -1 the keyword */
	char        *err;	/* out: the reason, without the keyword */
	size_t       errlen;
};

struct pol_keyword {
	const char   *name;
	const char   *usage;	/* the values, for "usage: name USAGE" */
	enum pol_kind kind;	/* OTHER: only `set` reads the values */
	unsigned char min, max;	/* how many values */
	bool          repeat;	/* may appear on more than one line */
	uint64_t      lo, hi;	/* bounds in ms, bytes or units */
	uint64_t      scale;	/* stored = parsed / scale; 0 or 1 = as is */
	size_t        off;	/* where in obj a typed value goes ... */
	size_t        width;	/* ... and its size (1 = bool, 4 or 8) */
	int         (*set)(struct pol_kw_call *);	/* or NULL to store */
};
/* Storage of a typed keyword: POL_KW_AT(struct x, field). */
#define POL_KW_AT(type, field) \
	offsetof(type, field), sizeof(((type *)0)->field)

struct pol_kwtab {
	const struct pol_keyword *kw;
	size_t                    n;
};

/* The entry named `name`, or NULL. */
const struct pol_keyword *pol_kw_find(const struct pol_kwtab *,
    const char *name);
/* Applies one line: 0 applied, -1 with c->err and c->bad. c->name, argc,
 * argv, obj, basedir and err must be set. */
int pol_kw_apply(const struct pol_keyword *, struct pol_kw_call *);
/* find + apply for callers without a parser (tests, fuzz targets): 1 when
 * kw is not in the table. */
int pol_kw_run(const struct pol_kwtab *, void *obj, const char *basedir,
    const char *kw, int argc, char **argv, int *bad, char *err,
    size_t errlen);

/* ---- policy_cidr.c: compiled CIDR set ----------------------------------
 * One radix trie for IPv4 and IPv6: IPv4 is kept as IPv4-mapped IPv6
 * (::ffff:a.b.c.d, prefix 96 + n), so an IPv4-mapped IPv6 peer matches the
 * IPv4 entries. Consequence worth knowing: `::/0` covers IPv4 too, while
 * `0.0.0.0/0` covers IPv4 only. Lookups cost at most 129 node visits
 * whatever the set's size. Not thread-safe while adding; lookups on a set
 * nobody modifies are. */
struct pol_cidrset;
struct pol_cidrset *pol_cidrset_new(void);
void pol_cidrset_free(struct pol_cidrset *);
/* Adds "ADDR" or "ADDR/LEN" as pol_cidr_parse reads it. Returns 0, or -1
 * on a bad CIDR or allocation failure (err says which). */
int pol_cidrset_add(struct pol_cidrset *, const char *cidr,
    char *err, size_t errlen);
/* True when `sa` (AF_INET or AF_INET6; other families never match) lies in
 * one of the set's prefixes. */
bool pol_cidrset_contains(const struct pol_cidrset *, const struct sockaddr *sa);
size_t pol_cidrset_count(const struct pol_cidrset *);	/* prefixes added */
/* For sets of at least POL_CIDRSET_STRIDE_MIN prefixes: adds 512 KiB of
 * stride tables that make lookups a few cache misses instead of ~17.
 * Call after the last add (an add drops the tables). -1: out of memory
 * (the set still works, unoptimised). */
#define POL_CIDRSET_STRIDE_MIN 4096
int pol_cidrset_optimise(struct pol_cidrset *);
size_t pol_cidrset_memory(const struct pol_cidrset *);	/* bytes held */

/* ---- policy_lockdown.c: per-user lockdown -------------------------------
 * A user's own list of networks, stored as text by the auth module
 * ("203.0.113.0/24, 2001:db8::/48"; commas and/or white space separate).
 * Empty text gives an empty lockdown (no restriction). It can only narrow:
 * pol_decide turns any verdict into DENY ("user lockdown") when the request
 * has a session whose lockdown is non-empty and the peer lies outside it. */
struct pol_lockdown;
/* Returns 0 and *out (NULL for empty text), or -1 with err. Host bits set
 * are an error here: users are told exactly what to fix. At most
 * POL_LOCKDOWN_MAX entries. */
#define POL_LOCKDOWN_MAX 64
int pol_lockdown_parse(const char *text, struct pol_lockdown **out,
    char *err, size_t errlen);
void pol_lockdown_free(struct pol_lockdown *);
/* True when `ld` is NULL/empty or `peer` lies in it (use at login too). */
bool pol_lockdown_allows(const struct pol_lockdown *ld,
    const struct sockaddr *peer);

/* ---- policy_path.c: request path normalisation --------------------------
 * `raw` is the path part of the request-target (no query; need not be NUL-
 * terminated). On success writes the normalised, NUL-terminated path into
 * `out` and returns 0: it is the string rules are matched against AND the
 * string to send upstream. On any ambiguity returns -1 with err (answer
 * 400). Rules (docs/policy.md has the table):
 *  - must start with '/' (or '\'); at most POL_PATH_MAX bytes in;
 *  - percent-decoded exactly once; a '%' not followed by two hex digits,
 *    a decoded '%' followed by two hex digits (double encoding, %252e),
 *    and encoded '/', '\', ';', NUL (%2F %5C %3B %00) are refused;
 *  - NUL, control bytes (also decoded), invalid UTF-8 (overlong,
 *    surrogates, > U+10FFFF), and Unicode look-alikes of ASCII that
 *    servers fold (fullwidth forms, dot and slash look-alikes) refused;
 *  - '\' is '/'; ';' path parameters are cut from every segment;
 *    repeated '/' collapse; "." and ".." segments are removed per
 *    RFC 3986 5.2.4, a ".." above the root is refused;
 *  - segments ending in '.' or ' ' and 8.3 short names ("~1") are refused
 *    (Windows servers strip or expand them, so they would alias);
 *  - the result is re-encoded: bytes outside unreserved, sub-delims, ':',
 *    '@', '/' become %XX (upper-case hex); nothing else is encoded;
 *  - the result is at most POL_PATH_MAX bytes too, so `out` of
 *    POL_PATH_MAX + 1 bytes is always enough; normalising it again gives
 *    the same string. */
#define POL_PATH_MAX 8192
int pol_normalise_path(const char *raw, size_t rawlen, char *out,
    size_t outlen, char *err, size_t errlen);

/* ---- policy_load.c / policy_parse.c: loading ----------------------------- */
struct pol_policy;
typedef void (*pol_report_fn)(void *arg, bool warning, const char *msg);
/* Parses `file` (with its includes and list files), compiles it and returns
 * it, or NULL when there was any error. Every error and warning is passed
 * to `report` (may be NULL) as one "FILE:LINE:COL: message" line.
 * `geoip_db` (may be NULL) is the MaxMind DB used by `country` and `asn`
 * rules; a policy using them without one is an error. */
struct pol_policy *pol_load(const char *file, const char *geoip_db,
    pol_report_fn report, void *arg);
void pol_free(struct pol_policy *);
size_t pol_rule_count(const struct pol_policy *);

/* ---- policy_name.c: user names ------------------------------------------ */
#define POL_NAME_MAX 64	/* bytes */
/* Folds a user name to its canonical form, the one the user store keeps
 * and `user` rules match (ASCII only: see docs/auth.md). Returns 0 and
 * writes out (outlen >= POL_NAME_MAX + 1), -1 when it is not a valid name. */
int pol_name_fold(const char *name, char *out, size_t outlen);
/* Calls fn for each valid (folded) name in the policy's `user` rules, with
 * where it was written; `pbxgate check` looks them up in the user store. */
typedef void (*pol_name_fn)(void *arg, const char *name, const char *file,
    unsigned line, unsigned col);
void pol_user_names(const struct pol_policy *, pol_name_fn fn, void *arg);

/* ---- policy_decide.c: decisions ----------------------------------------- */
enum pol_action {
	POL_ALLOW,	/* pass, no login needed */
	POL_LOGIN,	/* pass with a session */
	POL_MFA,	/* pass with a session that passed MFA */
	POL_DENY	/* 403, no detail */
};
const char *pol_action_name(enum pol_action);

struct pol_request {
	const struct sockaddr *peer;	/* the TCP peer (never a header) */
	const char *path;	/* pol_normalise_path() output; NULL = "" */
	const char *method;	/* NULL = "" */
	/* Returns the value of header `name` (case-insensitive) or NULL when
	 * absent; repeated headers: the caller joins them with ", ". May be
	 * NULL (no headers). */
	const char *(*header)(void *arg, const char *name);
	void *header_arg;
	bool has_session;	/* the fields below are ignored without it */
	bool mfa;		/* the session passed MFA */
	const char *user;
	const char *const *groups;
	size_t ngroups;
	bool admin;		/* role admin (else role user) */
	const struct pol_lockdown *lockdown;	/* the user's, may be NULL */
};

/* A page a `deny` rule names (`deny ... page NAME`): the gateway answers
 * with it instead of the plain 403 page. */
enum pol_page {
	POL_PAGE_NONE,
	POL_PAGE_COMPROMISED_CLIENT	/* "compromised-client" */
};
/* "compromised-client", or NULL for POL_PAGE_NONE. */
const char *pol_page_name(enum pol_page);

struct pol_verdict {
	enum pol_action action;
	enum pol_page page;	/* DENY only: the rule's page, or NONE */
	/* A rule with user/group/role matchers was reached by a request
	 * without session and all its other matchers held: action is then
	 * POL_LOGIN; log in and call pol_decide again with the session. */
	bool need_session;
	/* The rule deserves an audit record: every DENY, and rules marked
	 * `audit` in the policy (admin paths in the sample). */
	bool audit;
	const char *file;	/* rule location; "(default)" / line 0 when */
	unsigned line;		/* no rule matched */
	const char *reason;	/* short, for logs: "rule", "default", ... */
};

/* First matching rule wins; `default` (DENY unless set) when none does;
 * then the user lockdown narrows. Never fails: internal errors (regex
 * match limit, GeoIP read error) count as a match on deny rules and as no
 * match on any other rule (fail closed). */
void pol_decide(const struct pol_policy *, const struct pol_request *,
    struct pol_verdict *);
/* Whether a request may pass under `v` given its session state: ALLOW
 * always, LOGIN with a session, MFA with a session that passed MFA, DENY
 * never. Use the same has_session/mfa that were put in the pol_request
 * (also when re-checking open WebSocket tunnels after a reload). */
bool pol_verdict_permits(const struct pol_verdict *v, bool has_session,
    bool mfa);

/* ---- policy_client.c: desktop-app builds named by the User-Agent -------
 * The PBX vendor's Electron desktop app says `3CXDesktopApp/VERSION` in its
 * User-Agent beside the OS token (`Windows NT 10.0`, `Macintosh; Intel Mac
 * OS X 10_15_7`); `desktop-app OS VERSIONS` rules match on them. A VERSION
 * is 1 to 4 decimal numbers of at most 9 digits each, separated by dots,
 * no signs or blanks; missing trailing numbers are 0 (18.12 = 18.12.0). */
#define POL_OS_WINDOWS 1u
#define POL_OS_MACOS   2u
#define POL_VERSION_PARTS 4
struct pol_version {
	uint32_t part[POL_VERSION_PARTS];
};
/* `n` bytes of `s` (need not be NUL-terminated): 0, or -1. */
int pol_version_parse(const char *s, size_t n, struct pol_version *out);
/* <0, 0, >0 like strcmp, number by number. */
int pol_version_cmp(const struct pol_version *, const struct pol_version *);

/* What a User-Agent says about the desktop app, for audit records. */
struct pol_client {
	bool app;		/* it carries a 3CXDesktopApp/ token */
	bool bad_version;	/* one such token's version does not parse */
	unsigned os;		/* POL_OS_* bits the User-Agent names */
	/* The first token's version as sent, bytes outside [0-9A-Za-z._-]
	 * shown as '?', at most 32 of them: safe to log. */
	char version[33];
};
/* Reads `ua` (NULL: no User-Agent) the way `desktop-app` rules do. Returns
 * false, reading nothing, when the policy has no `desktop-app` rule. */
bool pol_client_scan(const struct pol_policy *, const char *ua,
    struct pol_client *out);
/* "windows", "macos", "windows,macos" or "unknown". */
const char *pol_os_name(unsigned os);

/* ---- policy_explain.c: `pbxgate policy explain` -------------------------
 * Prints the decision, the rule that made it (FILE:LINE) and every rule
 * passed over with the matcher that failed. Same result as pol_decide. */
void pol_explain(const struct pol_policy *, const struct pol_request *,
    FILE *out);
/* argv (without the program/subcommand words): --ip ADDR [--user U]
 * [--group G]... [--role admin|user] [--mfa] [--path P] [--method M]
 * [--header 'Name: value']... [--lockdown CIDRS]. --path is normalised
 * first. Prints to stdout, errors to stderr. Returns the exit status:
 * 0 allow/login/mfa, 1 deny, 2 usage error or refused path. */
int pol_cmd_explain(const struct pol_policy *, int argc, char **argv);

#endif
