/* gateway.h -- the gateway module: configuration snapshot, listeners,
 * workers, the HTTP relay, logs and metrics.
 *
 * Ownership rules for the whole module:
 *  - A struct gw_config is immutable once gw_config_load() returned it.
 *    It is reference counted: gw_config_ref() / gw_config_unref(); the last
 *    unref frees it and everything it points to (policy, TLS contexts).
 *  - Strings inside a config are owned by the config.
 *  - Functions that can fail take `char *err, size_t errlen` and fill it with
 *    a message that says what failed and what to do; they never log.
 */
#ifndef PBXGATE_GATEWAY_H
#define PBXGATE_GATEWAY_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "auth/auth.h"
#include "certs/certs.h"
#include "mail/mail.h"
#include "policy/policy.h"

#define GW_ERRLEN        512
#define GW_MAX_LISTEN    16
#define GW_MAX_CERTS     16
#define GW_MAX_TRUSTED   64
#define GW_MAX_INCLUDE_DEPTH 8
#define GW_MAX_SMTP_LISTEN 64	/* smtp_listen addresses, all sites together */

/* One listening address as written in the config, resolved. */
struct gw_addr {
	struct sockaddr_storage ss;
	socklen_t               sslen;
	char                    text[64];	/* as written, for logs */
};

/* One "tls_cert FILE" / "tls_key FILE" pair, in order of appearance. */
struct gw_certpair {
	char *cert_file;
	char *key_file;
};

struct gw_upstream {
	char    *url;		/* as written */
	bool     tls;		/* https:// */
	char    *host;		/* hostname or address literal, no brackets */
	uint16_t port;
	char    *hostport;	/* value for Host: when rewriting; "host:port" */
	char    *ca_file;	/* upstream_ca; NULL = system store */
	bool     verify;	/* false only after an explicit "upstream_verify off" */
	char    *sni;		/* server name sent and verified; = host */
};

/* Timeouts in milliseconds. */
struct gw_timeouts {
	unsigned header;	/* first byte to end of request head */
	unsigned body;		/* between two reads of a request body */
	unsigned idle;		/* keep-alive wait for the next request */
	unsigned upstream_connect;
	unsigned upstream;	/* wait for the upstream's response head / data */
	unsigned ws_idle;	/* a WebSocket tunnel with no traffic either way */
	unsigned shutdown;	/* SIGTERM: bound on finishing in-flight work */
	unsigned tls_handshake;
};

struct gw_limits {
	size_t   request_line;	/* bytes; over -> 414 */
	size_t   header_size;	/* one header line; over -> 431 */
	size_t   header_total;	/* whole head; over -> 431 */
	unsigned headers;	/* count; over -> 431 */
	uint64_t body;		/* request body bytes; over -> 413; 0 = no limit */
	unsigned connections;	/* per worker process, all clients */
	unsigned connections_per_ip;	/* of one address, before a head */
	unsigned established_per_ip;	/* of one address, in all */
	unsigned upstream_keepalive;	/* idle pooled connections per worker */
	unsigned requests_per_conn;	/* keep-alive requests on one connection */
};

struct gw_config;

/* One "site NAME { ... }" block: its settings are a whole struct gw_config
 * whose site-scoped fields hold the site's values (its own lines, else the
 * top level's) and whose process-wide fields are unused defaults. */
struct gw_site {
	char             *name;
	char             *file;		/* where "site" is written */
	unsigned          line, col;
	struct gw_config *cfg;		/* owned */
};

/* One server name of one site, in the config's sorted name index. */
struct gw_site_name {
	const char *name;		/* lower case; the site's config owns it */
	size_t      site;		/* index in sites[] */
};

struct gw_config {
	atomic_int      refs;
	char           *path;			/* main config file, absolute */
	uint64_t        generation;		/* 1, 2, ... per successful load */

	struct gw_addr  listen[GW_MAX_LISTEN];
	size_t          nlisten;
	struct gw_addr  admin_listen;
	bool            has_admin;
	struct gw_certpair certs[GW_MAX_CERTS];
	size_t          ncerts;
	struct gw_upstream upstream;
	struct pol_cidr trusted[GW_MAX_TRUSTED];
	size_t          ntrusted;
	bool            proxy_protocol;		/* accept PROXY v2 from trusted */
	int             workers;		/* resolved: >= 1 */
	char           *user;			/* NULL: keep the current user */
	char           *access_log;		/* NULL: none; "-" stdout */
	char           *error_log;		/* NULL/"-": stderr */
	char           *audit_log;		/* NULL: none */
	char           *server_name;		/* public host name, for redirects */
	char          **server_names;		/* every name Host may carry, lower
						   case; [0] is server_name */
	size_t          nserver_names;		/* 0: the certificates' names */
	char          **fwd_keep;		/* forward_header: kept despite
						   gw_spoof_header(), lower case */
	size_t          nfwd_keep;
	bool            hsts;
	unsigned        hsts_max_age;
	struct gw_timeouts to;
	struct gw_limits lim;

	/* Runtime objects built from the settings above, owned here. */
	struct cert_server *tls;		/* server contexts (SNI) */
	struct cert_client *upstream_tls;	/* NULL for http:// upstreams */

	/* Lockdown (policy module). NULL when no "policy" line. */
	char           *policy_file;
	char           *geoip_db;
	struct pol_policy *policy;

	/* Known-bad files: the lists' paths, the set built from them (NULL
	 * without a known_bad line) and the path prefixes whose response
	 * bodies are checked (none given: the default, known_bad.c). */
	char          **known_bad_files;
	size_t          nknown_bad_files;
	struct gw_knownbad *knownbad;
	char          **known_bad_paths;
	size_t          nknown_bad_paths;

	/* Pinned client code (integrity.c): the manifest's path (NULL without
	 * an integrity line), the entries read from it, the mode, and the
	 * prefixes under which a file missing from it is refused. */
	char           *integrity_file;
	struct gw_pins *pins;
	bool            integrity_enforce;	/* else monitor */
	char          **integrity_paths;
	size_t          nintegrity_paths;
	/* What `pbxgate integrity record` fetches: entry documents (read for
	 * their references) and download files, normalised paths. */
	char          **integrity_entries;
	size_t          nintegrity_entries;
	char          **integrity_downloads;
	size_t          nintegrity_downloads;

	/* Session ticket keys handed to cert_server_new(); set by the caller of
	 * gw_config_load_ex(), not owned (they outlive every snapshot). */
	struct cert_tickets *tickets;
	/* tls_ticket_key_file: keys derived from it replace `tickets` in this
	 * snapshot's contexts (owned, built with them; a reload reads the
	 * file anew). tls_ticket_rotate: their window, in ms. In a site's
	 * config: the site's own keys, derived from the top level's (its
	 * file_tickets, else its tickets) and the site's name. */
	char           *ticket_key_file;
	unsigned        ticket_rotate;
	struct cert_tickets *file_tickets;

	/* Built by `run` from `mail` before the snapshot is published (it needs
	 * the process's audit sink); released by gw_config_unref(). */
	struct mail_ctx *mailctx;

	/* Site blocks (none: the top level is the only site). default_site:
	 * the site serving names no site lists; NULL = such names refused. */
	struct gw_site *sites;
	size_t          nsites;
	char           *default_site;
	/* Every site's server names sorted, for gw_site_for_name(). */
	struct gw_site_name *site_names;
	size_t          nsite_names;

	/* Set by `run` (cmd_run.c) before the snapshot is published, for the
	 * top level without sites, else for each site: the upstream's
	 * address, resolved; the login context (not owned; NULL without
	 * user_db): the top level's, or a site's, lives as long as a
	 * snapshot holds it (site_auth.c): authctx_refs counts
	 * the snapshots, one dropped when this one is freed. At the top level
	 * with sites: the route the SNI callback asks for a site's
	 * certificates (arg: this config). */
	struct sockaddr_storage up_addr;
	socklen_t       up_addrlen;
	struct auth_ctx *authctx;
	atomic_int     *authctx_refs;
	struct cert_route route;
	size_t          metrics_slot;	/* a site's: gw_metrics_site_slot() */

	/* Login (auth module) and mail (mail module) settings. */
	struct auth_settings auth;
	struct mail_settings mail;
};

/* config_parse.c: read FILE (and its includes), validate every keyword.
 * Errors are reported through `report` as "FILE:LINE:COL: message", one
 * call per problem; warnings likewise with warning = true. Returns a config
 * with refs = 1, or NULL if any error was reported.
 * When `build_runtime` is true, also loads certificates, the policy and the
 * upstream TLS context (what `run` and SIGHUP need); `check` passes true too,
 * so that a broken key file is caught before a reload. */
typedef void (*gw_report_fn)(void *arg, bool warning, const char *msg);
struct gw_config *gw_config_load(const char *path, bool build_runtime,
    gw_report_fn report, void *arg);
/* Same, with the process-wide ticket keys for the server TLS contexts
 * (may be NULL: no tickets). gw_config_load() passes NULL. */
struct gw_config *gw_config_load_ex(const char *path, bool build_runtime,
    struct cert_tickets *tickets, gw_report_fn report, void *arg);
/* Parse an in-memory file named `name` (for fuzzing and tests): no runtime
 * objects, relative paths resolved against the current directory, and
 * `include` refused. Same reporting and result as gw_config_load(). */
struct gw_config *gw_config_parse_buffer(const char *name, const void *data,
    size_t len, gw_report_fn report, void *arg);
/* Loads like gw_config_load() without runtime objects, but accepts site
 * blocks: for the commands that take --site (main.c). */
struct gw_config *gw_config_load_sites(const char *path, gw_report_fn report,
    void *arg);
/* The site serving host `name` (a TLS SNI or a Host without its port; any
 * case): the site listing it in server_name, else default_site, else NULL
 * (to be refused). Binary search: 1024 sites of 16 names cost 14 compares.
 * NULL name (a client that sent no SNI): default_site, else NULL. */
const struct gw_site *gw_site_for_name(const struct gw_config *,
    const char *name);
/* The site a handshake starts on before its SNI is read: default_site,
 * else the first site; NULL without sites. */
const struct gw_site *gw_config_first_site(const struct gw_config *);
/* The SMTP relay's kth listener (0 = the first): the config whose mail
 * settings hold it (the top level without sites, else a site's) with its
 * index there in *j; NULL past the last. At most GW_MAX_SMTP_LISTEN. */
const struct gw_config *gw_smtp_listener(const struct gw_config *,
    size_t k, size_t *j);
/* The config (top level or site) whose smtp_listen is the local address
 * `local` (a listener's getsockname()); NULL when this snapshot has none
 * there (changed by a reload: smtp_listen takes a restart). Its mailctx
 * serves the connection. */
const struct gw_config *gw_smtp_owner(const struct gw_config *,
    const struct sockaddr *local, socklen_t len);
/* The site named `name` of cfg, or NULL. */
const struct gw_site *gw_config_site(const struct gw_config *,
    const char *name);
struct gw_config *gw_config_ref(struct gw_config *);
void              gw_config_unref(struct gw_config *);
/* Default values, used by the parser before the file is read and by tests. */
void              gw_config_defaults(struct gw_config *);

/* Listen addresses (numeric ADDR:PORT); CIDRs are the policy module's. */
int  gw_parse_hostport(const char *s, struct gw_addr *out, char *err, size_t errlen);

/* log.c: error log (human text) and JSON access/audit logs.
 * All are thread safe; each line is written with one write(2). */
enum gw_loglevel { GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERR };
void gw_log(enum gw_loglevel, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int  gw_log_open(const struct gw_config *, char *err, size_t errlen);
int  gw_log_swap_fd(atomic_int *fd, int newfd);
/* Opens a log file for appending (creates it 0640): directly, or through
 * the opener the privsep child sets (the parent opens it). -1 with errno. */
int  gw_log_file_open(const char *path);
void gw_log_set_opener(int (*fn)(const char *path));
void gw_log_set_level(enum gw_loglevel);
/* cmd_integrity.c: `pbxgate integrity record -o FILE` and `diff` (argv[0]
 * is the subcommand). Exit statuses as their --help says. */
int gw_cmd_integrity_record(const struct gw_config *, int argc, char **argv);
int gw_cmd_integrity_diff(const struct gw_config *, int argc, char **argv);

/* `pbxgate run` (cmd_run.c) and `pbxgate check` (cmd_check.c), called from
 * main.c's command table. `path` is the -c FILE main.c took out of argv, or
 * NULL for PBXGATE_DEFAULT_CONF; argv[0] is the command word. Exit status:
 * 0 ok, 1 failure, 2 usage error. */
int gw_cmd_run(const char *path, int argc, char **argv);
int gw_cmd_check(const char *path, int argc, char **argv);
/* privdrop.c: become `user` (uid, gid, its supplementary groups); a no-op
 * for NULL or when already that user. gw_check_owner: -1 with a message
 * saying how to fix it when PATH exists and `user` does not own it. */
int gw_drop_privileges(const char *user, char *err, size_t errlen);
int gw_check_owner(const char *path, const char *user, char *err, size_t errlen);

#endif
