/* cli.c -- one dispatcher for every command table: lookup, --help, usage. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define CLI_PREFIX_MAX 128	/* "pbxgate user totp-reset" and then some */

static bool
is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* --help anywhere among the arguments, as getopt would find it; "--" ends
 * the options, so a value after it is never taken for one. */
static bool
wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (is_help(argv[i]))
			return true;
	}
	return false;
}

static const struct cli_cmd *
find(const struct cli_cmd *tab, const char *name)
{
	for (; tab->name != NULL; tab++)
		if (strcmp(tab->name, name) == 0)
			return tab;
	return NULL;
}

void
cli_usage(const struct cli_cmd *c, const char *prefix, FILE *f)
{
	fprintf(f, "usage: %s %s%s%s\n  %s\n", prefix, c->name,
	    c->args[0] != '\0' ? " " : "", c->args, c->summary);
	if (c->help != NULL)
		fputs(c->help, f);
}

void
cli_list(const struct cli_cmd *tab, const char *prefix, FILE *f)
{
	fprintf(f, "usage: %s COMMAND [ARGS]\ncommands:\n", prefix);
	for (; tab->name != NULL; tab++)
		fprintf(f, "  %-12s %s\n", tab->name, tab->summary);
	fprintf(f, "`%s COMMAND --help` describes one command.\n", prefix);
}

/* Unknown or missing command word: the list on stderr, a usage error. */
static int
bad_word(const struct cli_cmd *tab, const char *prefix, const char *word)
{
	if (word == NULL)
		fprintf(stderr, "%s: missing command\n", prefix);
	else
		fprintf(stderr, "%s: unknown command \"%s\"\n", prefix, word);
	cli_list(tab, prefix, stderr);
	return CLI_USAGE;
}

/* An entry with subcommands: the word and any --help are settled here, so
 * `pbxgate user add --help` needs neither a config nor a user store. */
static int
dispatch_parent(const struct cli_cmd *c, const char *path, void *arg,
    int argc, char **argv)
{
	const struct cli_cmd *s;

	if (argc < 2)
		return bad_word(c->sub, path, NULL);
	if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		cli_list(c->sub, path, stdout);
		return CLI_OK;
	}
	if ((s = find(c->sub, argv[1])) == NULL)
		return bad_word(c->sub, path, argv[1]);
	if (wants_help(argc - 2, argv + 2)) {
		cli_usage(s, path, stdout);
		return CLI_OK;
	}
	return c->fn(arg, argc, argv);
}

int
cli_dispatch(const struct cli_cmd *tab, const char *prefix, void *arg,
    int argc, char **argv)
{
	const struct cli_cmd *c;
	char path[CLI_PREFIX_MAX];
	int rc;

	if (argc < 1)
		return bad_word(tab, prefix, NULL);
	if (is_help(argv[0]) || strcmp(argv[0], "help") == 0) {
		cli_list(tab, prefix, stdout);
		return CLI_OK;
	}
	if ((c = find(tab, argv[0])) == NULL)
		return bad_word(tab, prefix, argv[0]);
	snprintf(path, sizeof(path), "%s %s", prefix, c->name);
	if (c->sub != NULL)
		return dispatch_parent(c, path, arg, argc, argv);
	if (wants_help(argc - 1, argv + 1)) {
		cli_usage(c, prefix, stdout);
		return CLI_OK;
	}
	rc = c->fn(arg, argc, argv);
	if (rc == CLI_USAGE && !(c->flags & CLI_VERDICT))
		cli_usage(c, prefix, stderr);
	return rc;
}
