/* cmd_check.c -- `pbxgate check [-c FILE]`: validate a configuration like
 * `nginx -t`, building its TLS contexts and policy too. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "gateway/config_priv.h"

struct check_state {
	unsigned errors;
	unsigned warnings;
};

/* Messages that carry their own location (the policy module's) get the
 * level inserted after their "FILE:LINE:COL: " prefix when there is one. */
static void
print_own_loc(const char *level, const char *msg)
{
	const char *p = msg;

	while ((p = strchr(p, ':')) != NULL) {
		size_t a = strspn(p + 1, "0123456789"), b;
		if (a > 0 && p[1 + a] == ':') {
			b = strspn(p + 2 + a, "0123456789");
			if (b > 0 && p[2 + a + b] == ':' && p[3 + a + b] == ' ') {
				int n = (int)(p + 3 + a + b - msg);
				fprintf(stderr, "%.*s %s: %s\n", n, msg, level,
				    p + 4 + a + b);
				return;
			}
		}
		p++;
	}
	fprintf(stderr, "%s: %s\n", level, msg);
}

static void
check_report(void *arg, bool warning, const char *loc, const char *msg)
{
	struct check_state *st = arg;
	const char *level = warning ? "warning" : "error";

	if (warning)
		st->warnings++;
	else
		st->errors++;
	if (loc != NULL)
		fprintf(stderr, "%s: %s: %s\n", loc, level, msg);
	else
		print_own_loc(level, msg);
}

static void
usage(void)
{
	fprintf(stderr, "usage: pbxgate check [-c FILE]\n"
	    "  -c, --config FILE  configuration file to check (default "
	    PBXGATE_DEFAULT_CONF ")\n"
	    "  -h, --help         this text\n");
}

int
gw_cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct check_state st = { 0, 0 };
	struct gw_config *cfg;
	const char *path = NULL;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (path == NULL)
		path = PBXGATE_DEFAULT_CONF;
	cfg = gw_config_load_loc(path, true, NULL, check_report, &st);
	if (cfg == NULL) {
		fprintf(stderr, "%s: configuration is NOT valid (%u error%s)\n",
		    path, st.errors, st.errors == 1 ? "" : "s");
		return 1;
	}
	gw_config_unref(cfg);
	fprintf(stderr, "%s: configuration is valid\n", path);
	return 0;
}
