/*
 * cli.h -- the shape of every command table of the pbxgate binary.
 *
 * `pbxgate CMD [SUB] ARGS`: each level is an array of struct cli_cmd ended
 * by an entry with a NULL name, walked by one dispatcher, so that help
 * texts, unknown-command errors and exit statuses are the same for every
 * command and subcommand. `--help` (or `-h`) anywhere after the command
 * words prints that command's usage on standard output and exits 0 before
 * its handler runs: no configuration is read for it.
 *
 * Exit statuses: CLI_OK, CLI_FAIL, CLI_USAGE. A command whose status is a
 * verdict (scrub, policy explain) sets CLI_VERDICT and documents its own.
 * The module keeps no state and allocates nothing.
 */
#ifndef PBXGATE_CLI_H
#define PBXGATE_CLI_H

#include <stdio.h>

#define CLI_OK     0
#define CLI_FAIL   1
#define CLI_USAGE  2

#define CLI_VERDICT 0x1	/* status 2 is an answer: print no usage after it */

struct cli_cmd {
	const char *name;
	/* argv[0] is the command's own name; returns the exit status. */
	int (*fn)(void *arg, int argc, char **argv);
	const char *args;	/* synopsis after the command words ("" none) */
	const char *summary;	/* one line, for the parent's list */
	const char *help;	/* option lines for --help, or NULL */
	const struct cli_cmd *sub;	/* subcommand table, or NULL */
	unsigned flags;
};

/* Runs the command argv[0] of `tab` (argv[0] "--help", "-h" or "help"
 * lists the table). `prefix` is the words before it ("pbxgate"), used in
 * messages; `arg` goes to the handler. For an entry with a subcommand
 * table, the subcommand word and its --help are checked here too, and the
 * handler is expected to call cli_dispatch on the subtable itself once it
 * has built the subcommands' `arg`. */
int  cli_dispatch(const struct cli_cmd *tab, const char *prefix, void *arg,
    int argc, char **argv);
/* "usage: PREFIX NAME ARGS" and the help lines of one command. */
void cli_usage(const struct cli_cmd *, const char *prefix, FILE *);
/* The table's commands, one per line with their summary. */
void cli_list(const struct cli_cmd *tab, const char *prefix, FILE *);

#endif
