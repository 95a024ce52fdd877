/* main.c -- pbxgate's command line: one binary, one subcommand each. */
#include <stdio.h>
#include <string.h>

#include <getopt.h>
#include <unistd.h>

#include "gateway/gateway.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbxgate COMMAND [options]\n"
	    "  run [-c FILE]                  run the gateway in the foreground\n"
	    "  check [-c FILE]                validate a configuration (and its policy)\n"
	    "  policy explain [-c FILE] ...   show how the policy judges a request\n"
	    "  user SUBCOMMAND [-c FILE] ...  manage gateway users (see pbxgate(8))\n"
	    "  hash [-c FILE]                 print an Argon2id hash of stdin\n"
	    "  scrub [-c FILE] [--explain]    scrub one message from stdin to stdout\n"
	    "  version, -V                    print the version\n"
	    "FILE defaults to " PBXGATE_DEFAULT_CONF " (hash: built-in cost)\n");
}

static void
report(void *arg, bool warning, const char *msg)
{
	fprintf(stderr, "%s: %s\n", warning ? "warning" : "error", msg);
}

#define ARGS_MAX 256

/* Takes "-c FILE", "--config FILE" or "--config=FILE" (the first one, in
 * any position after the subcommand) out of argv, once, here: no module's
 * own option parser has to know them. rest gets the other words, argv[0]
 * first, NULL-terminated; -1 when there are more than ARGS_MAX. */
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
		const char *v = NULL;

		if (i > 0 && (strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			v = argv[++i];
		else if (i > 0 && strncmp(argv[i], "--config=", 9) == 0)
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

/* Subcommands of other modules get the parsed settings, no runtime. */
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

static int
cmd_policy(int argc, char **argv)
{
	struct gw_config *cfg;
	struct pol_policy *pol;
	char *av[ARGS_MAX + 1];
	const char *path;
	int rc, n = take_config(argc, argv, &path, av);

	if (n < 0)
		return 2;
	if (n < 2 || strcmp(av[1], "explain") != 0) {
		fprintf(stderr, "usage: pbxgate policy explain -c FILE --ip ADDR ...\n");
		return 2;
	}
	cfg = load_settings("explain", path, true);
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
	rc = pol_cmd_explain(pol, n - 2, av + 2);
	pol_free(pol);
	gw_config_unref(cfg);
	return rc;
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
cmd_module(int argc, char **argv)
{
	struct gw_config *cfg = NULL;
	struct auth_settings defaults;
	char *av[ARGS_MAX + 1];
	const char *path;
	int rc, n = take_config(argc, argv, &path, av);

	if (n < 0)
		return 2;
	if (strcmp(av[0], "hash") == 0) {
		/* hash works without a config (the default cost), not with a
		 * broken one */
		cfg = load_settings(av[0], path, false);
		if (cfg == NULL && path != NULL)
			return 2;
		if (cfg == NULL) {
			auth_settings_defaults(&defaults);
			rc = auth_cmd_hash(&defaults, n, av);
			auth_settings_free(&defaults);
			return rc;
		}
		rc = as_service_user(cfg, av[0]) < 0 ? 1 :
		    auth_cmd_hash(&cfg->auth, n, av);
	} else {
		cfg = load_settings(av[0], path, true);
		if (cfg == NULL)	/* scrub: 2 means "rejected by a rule" */
			return strcmp(av[0], "scrub") == 0 ? 3 : 2;
		if (strcmp(av[0], "user") == 0)
			rc = as_service_user(cfg, av[0]) < 0 ? 1 :
			    auth_cmd_user(&cfg->auth, n, av);
		else
			rc = mail_cmd_scrub(&cfg->mail, n, av);
	}
	gw_config_unref(cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (cmd == NULL) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "run") == 0)
		return gw_cmd_run(argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0)
		return gw_cmd_check(argc - 1, argv + 1);
	if (strcmp(cmd, "policy") == 0)
		return cmd_policy(argc - 1, argv + 1);
	if (strcmp(cmd, "user") == 0 || strcmp(cmd, "hash") == 0 ||
	    strcmp(cmd, "scrub") == 0)
		return cmd_module(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0 ||
	    strcmp(cmd, "-V") == 0) {
		printf("pbxgate %s\n", PBXGATE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "pbxgate: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}
