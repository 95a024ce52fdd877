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
};

static void
report(void *arg, bool warning, const char *msg)
{
	fprintf(stderr, "%s: %s\n", warning ? "warning" : "error", msg);
}

/* Takes "-c FILE", "--config FILE" or "--config=FILE" (the first one, in
 * any position after the command word) out of argv, here and nowhere
 * else: no command's own option parsing has to know them. rest gets the
 * other words, argv[0] first, NULL-terminated. -1 (a usage error) for more
 * than ARGS_MAX words or a -c with no FILE after it. */
static int
take_config(int argc, char **argv, const char **path, char *rest[ARGS_MAX + 1])
{
	int n = 0;

	*path = NULL;
	if (argc > ARGS_MAX) {
		fprintf(stderr, "pbxgate: more than %d arguments\n", ARGS_MAX);
		return -1;
	}
	for (int i = 0; i < argc; i++) {
		const char *v;

		if (i > 0 && (strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0)) {
			if (i + 1 == argc) {
				fprintf(stderr, "pbxgate: %s needs a FILE\n",
				    argv[i]);
				return -1;
			}
			v = argv[++i];
		} else if (i > 0 && strncmp(argv[i], "--config=", 9) == 0)
			v = argv[i] + 9;
		else {
			rest[n++] = argv[i];
			continue;
		}
		if (*path == NULL)
			*path = v;
	}
	rest[n] = NULL;
	return n;
}

/* Commands of other modules get the parsed settings, no runtime. */
static struct gw_config *
load_settings(const char *cmd, const char *path, bool required)
{
	struct gw_config *cfg;

	if (path == NULL && !required)
		return NULL;
	if (path == NULL)
		path = PBXGATE_DEFAULT_CONF;
	cfg = gw_config_load(path, false, report, NULL);
	if (cfg == NULL)
		fprintf(stderr, "pbxgate %s: %s: configuration has errors\n",
		    cmd, path);
	return cfg;
}

/* `user` and `hash` run by root create and open what `run` opens after its
 * drop to the config's user: do it as that user, so the files are its own;
 * refuse files another owner holds, saying how to fix them. */
static int
as_service_user(const struct gw_config *cfg, const char *cmd)
{
	char err[GW_ERRLEN];

	if (cfg->user == NULL || geteuid() != 0)
		return 0;
	if (gw_check_owner(cfg->auth.user_db, cfg->user, err, sizeof(err)) < 0 ||
	    gw_check_owner(cfg->auth.secret_key, cfg->user, err,
	    sizeof(err)) < 0 ||
	    gw_drop_privileges(cfg->user, err, sizeof(err)) < 0) {
		fprintf(stderr, "pbxgate %s: %s\n", cmd, err);
		return -1;
	}
	return 0;
}

static int
cmd_run(void *arg, int argc, char **argv)
{
	return gw_cmd_run(((struct main_opts *)arg)->config, argc, argv);
}

static int
cmd_check(void *arg, int argc, char **argv)
{
	return gw_cmd_check(((struct main_opts *)arg)->config, argc, argv);
}

/* Exit status 2 also for a config without a usable policy: explain's 1
 * is a deny, so its errors keep the status its callers already test. */
static int
cmd_explain(void *arg, int argc, char **argv)
{
	struct gw_config *cfg;
	struct pol_policy *pol;
	int rc;

	cfg = load_settings("policy explain", ((struct main_opts *)arg)->config,
	    true);
	if (cfg == NULL)
		return 2;
	if (cfg->policy_file == NULL) {
		fprintf(stderr, "pbxgate policy explain: %s has no policy line\n",
		    cfg->path);
		gw_config_unref(cfg);
		return 2;
	}
	pol = pol_load(cfg->policy_file, cfg->geoip_db, report, NULL);
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
	    "[--lockdown CIDRS] [-c FILE]",
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
	struct gw_config *cfg;
	int rc;

	cfg = load_settings(diff ? "integrity diff" : "integrity record",
	    ((struct main_opts *)arg)->config, true);
	if (cfg == NULL)
		return 2;
	rc = diff ? gw_cmd_integrity_diff(cfg, argc, argv) :
	    gw_cmd_integrity_record(cfg, argc, argv);
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
	{ "record", cmd_integrity_record, "-o FILE [-c FILE]",
	    "fetch the pinned client code from the upstream, write a manifest",
	    "  -o, --output FILE  the manifest to write (replaced atomically)\n"
	    "  exit status: 0 written, 1 a file could not be fetched or read "
	    "(nothing\n  written), 2 usage error or configuration errors\n",
	    NULL, 0 },
	{ "diff", cmd_integrity_diff, "[-c FILE]",
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
	struct gw_config *cfg;
	int rc;

	cfg = load_settings(name, ((struct main_opts *)arg)->config, true);
	if (cfg == NULL)
		return CLI_FAIL;
	rc = as_service_user(cfg, name) < 0 ? CLI_FAIL : fn(&cfg->auth, argc, argv);
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
	const char *path = ((struct main_opts *)arg)->config;
	struct auth_settings defaults;
	struct gw_config *cfg;
	int rc;

	cfg = load_settings("hash", path, false);
	if (cfg == NULL && path != NULL)
		return CLI_FAIL;
	if (cfg == NULL) {
		auth_settings_defaults(&defaults);
		rc = auth_cmd_hash(&defaults, argc, argv);
		auth_settings_free(&defaults);
		return rc;
	}
	rc = as_service_user(cfg, "hash") < 0 ? CLI_FAIL :
	    auth_cmd_hash(&cfg->auth, argc, argv);
	gw_config_unref(cfg);
	return rc;
}

/* scrub's statuses are its verdict; 3 is its error (see mail.h). */
static int
cmd_scrub(void *arg, int argc, char **argv)
{
	struct gw_config *cfg;
	int rc;

	cfg = load_settings("scrub", ((struct main_opts *)arg)->config, true);
	if (cfg == NULL)
		return 3;
	rc = mail_cmd_scrub(&cfg->mail, argc, argv);
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

static const struct cli_cmd commands[] = {
	{ "run", cmd_run, "[-d] [-c FILE]",
	    "run the gateway in the foreground",
	    CONF_HELP "  -d, --debug        log at debug level\n", NULL, 0 },
	{ "check", cmd_check, "[-c FILE]",
	    "validate a configuration, its TLS files and its policy",
	    CONF_HELP "  exit status: 0 valid, 1 not valid, 2 usage error\n",
	    NULL, 0 },
	{ "policy", cmd_policy, "SUBCOMMAND [-c FILE] ...",
	    "ask the lockdown policy (policy explain)", NULL, policy_cmds, 0 },
	{ "integrity", cmd_integrity, "SUBCOMMAND [-c FILE] ...",
	    "record or compare the pinned client code (record, diff)", NULL,
	    integrity_cmds, 0 },
	{ "user", cmd_user, "SUBCOMMAND [-c FILE] ...",
	    "manage gateway users (add, import, lockdown, ...)", NULL,
	    auth_user_cmds, 0 },
	{ "session", cmd_session, "SUBCOMMAND [-c FILE] ...",
	    "list or end the users' login sessions", NULL, auth_session_cmds, 0 },
	{ "ban", cmd_ban, "SUBCOMMAND [-c FILE] ...",
	    "list or lift login bans of names and addresses", NULL,
	    auth_ban_cmds, 0 },
	{ "hash", cmd_hash, "[-c FILE]",
	    "print an Argon2id hash of the password on standard input",
	    "  -c, --config FILE  take the Argon2 cost from FILE (default: "
	    "the built-in cost)\n", NULL, 0 },
	{ "scrub", cmd_scrub, "[-c FILE] [--explain] < in.eml > out.eml",
	    "scrub one message from standard input to standard output",
	    CONF_HELP "  --explain          say on standard error which rule "
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
	if ((n = take_config(argc - 1, argv + 1, &o.config, av)) < 0)
		return CLI_USAGE;
	return cli_dispatch(commands, "pbxgate", &o, n, av);
}
