/* main.c -- pbxgate's command line: one binary, one subcommand each. */
#include <stdio.h>
#include <string.h>

#include <getopt.h>

#include "gateway/gateway.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbxgate COMMAND [options]\n"
	    "  run -c FILE                 run the gateway in the foreground\n"
	    "  check -c FILE               validate a configuration (and its policy)\n"
	    "  policy explain -c FILE ...  show how the policy judges a request\n"
	    "  user SUBCOMMAND -c FILE ... manage gateway users (see docs/auth.md)\n"
	    "  hash [-c FILE]              print an Argon2id hash of stdin\n"
	    "  scrub -c FILE [--explain]   scrub one message from stdin to stdout\n"
	    "  version                     print the version\n");
}

static void
report(void *arg, bool warning, const char *msg)
{
	fprintf(stderr, "%s: %s\n", warning ? "warning" : "error", msg);
}

/* Finds "-c FILE" / "--config FILE" / "--config=FILE" anywhere in argv
 * without disturbing the subcommand's own option parsing. */
static const char *
find_config(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
	}
	return NULL;
}

/* Subcommands of other modules get the parsed settings, no runtime. */
static struct gw_config *
load_settings(int argc, char **argv, bool required)
{
	const char *path = find_config(argc, argv);
	struct gw_config *cfg;

	if (path == NULL) {
		if (required) {
			fprintf(stderr, "pbxgate %s: -c FILE is required\n", argv[0]);
			return NULL;
		}
		return NULL;
	}
	cfg = gw_config_load(path, false, report, NULL);
	if (cfg == NULL)
		fprintf(stderr, "pbxgate %s: %s: configuration has errors\n",
		    argv[0], path);
	return cfg;
}

/* pol_cmd_explain takes the request options only: the words after
 * "explain" without -c FILE / --config FILE / --config=FILE. */
static int
request_options(int argc, char **argv, char **av, int max)
{
	int ac = 0;

	for (int i = 2; i < argc && ac < max; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0)
			continue;
		av[ac++] = argv[i];
	}
	return ac;
}

static int
cmd_policy(int argc, char **argv)
{
	struct gw_config *cfg;
	struct pol_policy *pol;
	char *av[64];
	int rc;

	if (argc < 2 || strcmp(argv[1], "explain") != 0) {
		fprintf(stderr, "usage: pbxgate policy explain -c FILE --ip ADDR ...\n");
		return 2;
	}
	cfg = load_settings(argc - 1, argv + 1, true);
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
	rc = pol_cmd_explain(pol, request_options(argc, argv, av, 64), av);
	pol_free(pol);
	gw_config_unref(cfg);
	return rc;
}

static int
cmd_module(int argc, char **argv)
{
	struct gw_config *cfg = NULL;
	struct auth_settings defaults;
	int rc;

	if (strcmp(argv[0], "hash") == 0) {
		cfg = load_settings(argc, argv, false);
		if (cfg == NULL && find_config(argc, argv) != NULL)
			return 2;
		if (cfg == NULL) {
			auth_settings_defaults(&defaults);
			rc = auth_cmd_hash(&defaults, argc, argv);
			auth_settings_free(&defaults);
			return rc;
		}
		rc = auth_cmd_hash(&cfg->auth, argc, argv);
	} else {
		cfg = load_settings(argc, argv, true);
		if (cfg == NULL)	/* scrub: 2 means "rejected by a rule" */
			return strcmp(argv[0], "scrub") == 0 ? 3 : 2;
		if (strcmp(argv[0], "user") == 0)
			rc = auth_cmd_user(&cfg->auth, argc, argv);
		else
			rc = mail_cmd_scrub(&cfg->mail, argc, argv);
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
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
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
