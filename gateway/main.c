/* main.c -- pbxgate's command line: one binary, one table of commands. */
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "cli/cli.h"
#include "gateway/gateway.h"

#define ARGS_MAX 256

/* What main() takes out of argv before any command sees it. */
struct main_opts {
	const char *config;	/* -c FILE, or NULL for the default */
	const char *site;	/* --site NAME, or NULL */
};

static void
report(void *arg, bool warning, const char *msg)
{
	fprintf(stderr, "%s: %s\n", warning ? "warning" : "error", msg);
}

/* The value of option `name` ("-c"/"--config" style: NAME VALUE or
 * NAME=VALUE) at argv[*i], moving *i past it: 1 taken, 0 not this option,
 * -1 (a usage error) for a NAME with no value after it. */
static int
take_opt(int argc, char **argv, int *i, const char *shortn,
    const char *longn, const char **out)
{
	size_t n = strlen(longn);
	const char *a = argv[*i];

	if ((shortn != NULL && strcmp(a, shortn) == 0) || strcmp(a, longn) == 0) {
		if (*i + 1 == argc) {
			fprintf(stderr, "pbxgate: %s needs a %s\n", a,
			    strcmp(longn, "--site") == 0 ? "NAME" : "FILE");
			return -1;
		}
		if (*out == NULL)
			*out = argv[*i + 1];
		(*i)++;
		return 1;
	}
	if (strncmp(a, longn, n) == 0 && a[n] == '=') {
		if (*out == NULL)
			*out = a + n + 1;
		return 1;
	}
	return 0;
}

/* Takes "-c FILE", "--config FILE" or "--config=FILE", and "--site NAME"
 * or "--site=NAME" (the first of each, in any position after the command
 * word) out of argv, here and nowhere else: no command's own option
 * parsing has to know them. rest gets the other words, argv[0] first,
 * NULL-terminated. -1 (a usage error) for more than ARGS_MAX words or an
 * option with no value after it. */
static int
take_config(int argc, char **argv, struct main_opts *o,
    char *rest[ARGS_MAX + 1])
{
	int n = 0, r;

	o->config = o->site = NULL;
	if (argc > ARGS_MAX) {
		fprintf(stderr, "pbxgate: more than %d arguments\n", ARGS_MAX);
		return -1;
	}
	for (int i = 0; i < argc; i++) {
		if (i > 0 && ((r = take_opt(argc, argv, &i, "-c", "--config",
		    &o->config)) != 0 || (r = take_opt(argc, argv, &i, NULL,
		    "--site", &o->site)) != 0)) {
			if (r < 0)
				return -1;
			continue;
		}
		rest[n++] = argv[i];
	}
	rest[n] = NULL;
	return n;
}

/* Commands of other modules get the parsed settings, no runtime. With
 * sites, *settings is the --site's settings (which hold everything a site
 * may set, its login store included); the process-wide ones (user, mail)
 * stay in the returned config. */
static struct gw_config *
load_settings(const char *cmd, const struct main_opts *o, bool required,
    const struct gw_config **settings)
{
	const char *path = o->config;
	const struct gw_site *site = NULL;
	struct gw_config *cfg;

	if (path == NULL && !required && o->site == NULL)
		return NULL;
	if (path == NULL)
		path = PBXGATE_DEFAULT_CONF;
	cfg = gw_config_load_sites(path, report, NULL);
	if (cfg == NULL) {
		fprintf(stderr, "pbxgate %s: %s: configuration has errors\n",
		    cmd, path);
		return NULL;
	}
	if (o->site != NULL && (site = gw_config_site(cfg, o->site)) == NULL)
		fprintf(stderr, "pbxgate %s: %s has no site \"%s\"\n", cmd,
		    path, o->site);
	else if (o->site == NULL && cfg->nsites > 0 && settings != NULL)
		fprintf(stderr, "pbxgate %s: %s has site blocks: say which "
		    "site with --site NAME\n", cmd, path);
	else {
		if (settings != NULL)
			*settings = site != NULL ? site->cfg : cfg;
		return cfg;
	}
	gw_config_unref(cfg);
	return NULL;
}

/* `user` and `hash` run by root create and open what `run` opens after its
 * drop to the config's user: do it as that user, so the files are its own;
 * refuse files another owner holds, saying how to fix them. */
static int
as_service_user(const struct gw_config *cfg, const struct auth_settings *s,
    const char *cmd)
{
	char err[GW_ERRLEN];

	if (cfg->user == NULL || geteuid() != 0)
		return 0;
	if (gw_check_owner(s->user_db, cfg->user, err, sizeof(err)) < 0 ||
	    gw_check_owner(s->secret_key, cfg->user, err,
	    sizeof(err)) < 0 ||
	    gw_drop_privileges(cfg->user, err, sizeof(err)) < 0) {
		fprintf(stderr, "pbxgate %s: %s\n", cmd, err);
		return -1;
	}
	return 0;
}

/* run serves and check validates the whole file, never one site. */
static int
no_site(const struct main_opts *o, const char *cmd)
{
	if (o->site == NULL)
		return 0;
	fprintf(stderr, "pbxgate %s: --site is not an option of %s: it "
	    "applies to the whole file\n", cmd, cmd);
	return -1;
}

static int
cmd_run(void *arg, int argc, char **argv)
{
	if (no_site(arg, "run") < 0)
		return CLI_USAGE;
	return gw_cmd_run(((struct main_opts *)arg)->config, argc, argv);
}

static int
cmd_check(void *arg, int argc, char **argv)
{
	if (no_site(arg, "check") < 0)
		return CLI_USAGE;
	return gw_cmd_check(((struct main_opts *)arg)->config, argc, argv);
}

/* Exit status 2 also for a config without a usable policy: explain's 1
 * is a deny, so its errors keep the status its callers already test. */
static int
cmd_explain(void *arg, int argc, char **argv)
{
	const struct gw_config *s = NULL;
	struct gw_config *cfg;
	struct pol_policy *pol;
	int rc;

	cfg = load_settings("policy explain", arg, true, &s);
	if (cfg == NULL)
		return 2;
	if (s->policy_file == NULL) {
		fprintf(stderr, "pbxgate policy explain: %s has no policy line%s\n",
		    cfg->path, s != cfg ? " for the site" : "");
		gw_config_unref(cfg);
		return 2;
	}
	pol = pol_load(s->policy_file, s->geoip_db, report, NULL);
	if (pol == NULL) {
		gw_config_unref(cfg);
		return 2;
	}
	rc = pol_cmd_explain(pol, argc - 1, argv + 1);
	pol_free(pol);
	gw_config_unref(cfg);
	return rc;
}

static const struct cli_cmd policy_cmds[] = {
	{ "explain", cmd_explain,
	    "--ip ADDR [--user U] [--group G]... [--role admin|user] [--mfa]\n"
	    "       [--path P] [--method M] [--header 'Name: value']... "
	    "[--lockdown CIDRS] [-c FILE] [--site NAME]",
	    "show which rule decides a request, and why the others do not",
	    "  exit status: 0 allow, login or mfa; 1 deny; 2 usage error, "
	    "refused path\n  or a configuration without a usable policy\n",
	    NULL, CLI_VERDICT },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};

static int
cmd_policy(void *arg, int argc, char **argv)
{
	return cli_dispatch(policy_cmds, "pbxgate policy", arg, argc - 1,
	    argv + 1);
}

/* integrity record and diff read the settings (the upstream, the entries
 * and downloads, the manifest) and fetch from the upstream. */
static int
cmd_integrity_one(void *arg, int argc, char **argv, bool diff)
{
	const struct gw_config *s = NULL;
	struct gw_config *cfg;
	int rc;

	cfg = load_settings(diff ? "integrity diff" : "integrity record", arg,
	    true, &s);
	if (cfg == NULL)
		return 2;
	rc = diff ? gw_cmd_integrity_diff(s, argc, argv) :
	    gw_cmd_integrity_record(s, argc, argv);
	gw_config_unref(cfg);
	return rc;
}

static int
cmd_integrity_record(void *arg, int argc, char **argv)
{
	return cmd_integrity_one(arg, argc, argv, false);
}

static int
cmd_integrity_diff(void *arg, int argc, char **argv)
{
	return cmd_integrity_one(arg, argc, argv, true);
}

static const struct cli_cmd integrity_cmds[] = {
	{ "record", cmd_integrity_record, "-o FILE [-c FILE] [--site NAME]",
	    "fetch the pinned client code from the upstream, write a manifest",
	    "  -o, --output FILE  the manifest to write (replaced atomically)\n"
	    "  exit status: 0 written, 1 a file could not be fetched or read "
	    "(nothing\n  written), 2 usage error or configuration errors\n",
	    NULL, 0 },
	{ "diff", cmd_integrity_diff, "[-c FILE] [--site NAME]",
	    "record afresh and print what differs from the manifest",
	    "  prints \"+ PATH SIZE SHA256\" (added), \"- PATH SIZE SHA256\" "
	    "(removed),\n  \"~ PATH SIZE SHA256 -> SIZE SHA256\" "
	    "(changed), sorted by path\n  exit status: 0 equal, 1 different, "
	    "2 usage error or a recording that failed\n", NULL, CLI_VERDICT },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};

static int
cmd_integrity(void *arg, int argc, char **argv)
{
	return cli_dispatch(integrity_cmds, "pbxgate integrity", arg, argc - 1,
	    argv + 1);
}

/* user, session and ban read and change the user store. */
static int
store_cmd(void *arg, int argc, char **argv, const char *name,
    int (*fn)(const struct auth_settings *, int, char **))
{
	const struct gw_config *s = NULL;
	struct gw_config *cfg;
	int rc;

	cfg = load_settings(name, arg, true, &s);
	if (cfg == NULL)
		return CLI_FAIL;
	rc = as_service_user(cfg, &s->auth, name) < 0 ? CLI_FAIL :
	    fn(&s->auth, argc, argv);
	gw_config_unref(cfg);
	return rc;
}

static int
cmd_user(void *arg, int argc, char **argv)
{
	return store_cmd(arg, argc, argv, "user", auth_cmd_user);
}

static int
cmd_session(void *arg, int argc, char **argv)
{
	return store_cmd(arg, argc, argv, "session", auth_cmd_session);
}

static int
cmd_ban(void *arg, int argc, char **argv)
{
	return store_cmd(arg, argc, argv, "ban", auth_cmd_ban);
}

/* hash works without a config (the built-in cost), not with a broken one. */
static int
cmd_hash(void *arg, int argc, char **argv)
{
	const struct main_opts *o = arg;
	const struct gw_config *s = NULL;
	struct auth_settings defaults;
	struct gw_config *cfg;
	int rc;

	cfg = load_settings("hash", o, false, &s);
	if (cfg == NULL && (o->config != NULL || o->site != NULL))
		return CLI_FAIL;
	if (cfg == NULL) {
		auth_settings_defaults(&defaults);
		rc = auth_cmd_hash(&defaults, argc, argv);
		auth_settings_free(&defaults);
		return rc;
	}
	rc = as_service_user(cfg, &s->auth, "hash") < 0 ? CLI_FAIL :
	    auth_cmd_hash(&s->auth, argc, argv);
	gw_config_unref(cfg);
	return rc;
}

/* scrub's statuses are its verdict; 3 is its error (see mail.h). */
static int
cmd_scrub(void *arg, int argc, char **argv)
{
	const struct main_opts *o = arg;
	const struct gw_config *set = NULL;
	struct gw_config *cfg;
	int rc;

	/* --site: that site's relay settings (its own scrub rules, or the
	 * top level's it inherits); without it, the top level's */
	cfg = load_settings("scrub", arg, true, o->site != NULL ? &set : NULL);
	if (cfg == NULL)
		return 3;
	rc = mail_cmd_scrub(set != NULL ? &set->mail : &cfg->mail, argc, argv);
	gw_config_unref(cfg);
	return rc;
}

static int
cmd_version(void *arg, int argc, char **argv)
{
	(void)arg;
	(void)argv;
	if (argc != 1)
		return CLI_USAGE;
	printf("pbxgate %s\n", PBXGATE_VERSION);
	return CLI_OK;
}

#define CONF_HELP "  -c, --config FILE  configuration (default " \
    PBXGATE_DEFAULT_CONF ")\n"
#define SITE_HELP "  --site NAME        the site of the configuration's " \
    "site blocks to use\n"

static const struct cli_cmd commands[] = {
	{ "run", cmd_run, "[-d] [-c FILE]",
	    "run the gateway in the foreground",
	    CONF_HELP "  -d, --debug        log at debug level\n", NULL, 0 },
	{ "check", cmd_check, "[-c FILE]",
	    "validate a configuration, its TLS files and its policy",
	    CONF_HELP "  exit status: 0 valid, 1 not valid, 2 usage error\n",
	    NULL, 0 },
	{ "policy", cmd_policy, "SUBCOMMAND [-c FILE] [--site NAME] ...",
	    "ask the lockdown policy (policy explain)", NULL, policy_cmds, 0 },
	{ "integrity", cmd_integrity, "SUBCOMMAND [-c FILE] [--site NAME] ...",
	    "record or compare the pinned client code (record, diff)", NULL,
	    integrity_cmds, 0 },
	{ "user", cmd_user, "SUBCOMMAND [-c FILE] [--site NAME] ...",
	    "manage gateway users (add, import, lockdown, ...)", NULL,
	    auth_user_cmds, 0 },
	{ "session", cmd_session, "SUBCOMMAND [-c FILE] [--site NAME] ...",
	    "list or end the users' login sessions", NULL, auth_session_cmds, 0 },
	{ "ban", cmd_ban, "SUBCOMMAND [-c FILE] [--site NAME] ...",
	    "list or lift login bans of names and addresses", NULL,
	    auth_ban_cmds, 0 },
	{ "hash", cmd_hash, "[-c FILE] [--site NAME]",
	    "print an Argon2id hash of the password on standard input",
	    "  -c, --config FILE  take the Argon2 cost from FILE (default: "
	    "the built-in cost)\n" SITE_HELP, NULL, 0 },
	{ "scrub", cmd_scrub, "[-c FILE] [--site NAME] [--explain] < in.eml "
	    "> out.eml", "scrub one message from standard input to standard "
	    "output", CONF_HELP SITE_HELP "  --explain          say on standard error which rule "
	    "matched which part\n  exit status: 0 nothing scrubbed, 1 scrubbed, "
	    "2 rejected by a rule, 3 error\n", NULL, CLI_VERDICT },
	{ "version", cmd_version, "", "print the version (also -V, --version)",
	    NULL, NULL, 0 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};

int
main(int argc, char **argv)
{
	struct main_opts o;
	char *av[ARGS_MAX + 1];
	int n;

	if (argc > 1 && (strcmp(argv[1], "-V") == 0 ||
	    strcmp(argv[1], "--version") == 0) && argc == 2) {
		printf("pbxgate %s\n", PBXGATE_VERSION);
		return CLI_OK;
	}
	if ((n = take_config(argc - 1, argv + 1, &o, av)) < 0)
		return CLI_USAGE;
	return cli_dispatch(commands, "pbxgate", &o, n, av);
}
