/* cmd_check.c -- `pbxgate check [-c FILE]`: validate a configuration like
 * `nginx -t`, building its TLS contexts and policy too. */
#include <stdio.h>
#include <stdlib.h>
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

#define CHECK_NAMES_MAX 4096	/* `user` names looked up in the store */

struct rule_name {
	const char *name, *file;
	unsigned line, col;
};

struct rule_names {
	struct rule_name v[CHECK_NAMES_MAX];
	size_t n;
};

static void
collect_name(void *arg, const char *name, const char *file, unsigned line,
    unsigned col)
{
	struct rule_names *rn = arg;

	if (rn->n < CHECK_NAMES_MAX)
		rn->v[rn->n++] = (struct rule_name){ name, file, line, col };
}

/* A `user` rule for a name no user has never matches: a deny written that
 * way fails open. Said where the store can be read; never an error, since
 * the user may simply not be created yet. */
static void
check_user_names(const struct gw_config *cfg, struct check_state *st)
{
	struct rule_names *rn;
	const char **names = NULL;
	bool *known = NULL;
	char err[512];

	if (cfg->policy == NULL || cfg->auth.user_db == NULL ||
	    (rn = calloc(1, sizeof(*rn))) == NULL)
		return;
	pol_user_names(cfg->policy, collect_name, rn);
	if (rn->n > 0 && (names = calloc(rn->n, sizeof(*names))) != NULL &&
	    (known = calloc(rn->n, sizeof(*known))) != NULL) {
		for (size_t i = 0; i < rn->n; i++)
			names[i] = rn->v[i].name;
		if (auth_users_known(&cfg->auth, names, rn->n, known, err,
		    sizeof(err)) < 0)
			fprintf(stderr, "note: user names in the policy not "
			    "checked against the user store: %s\n", err);
		else
			for (size_t i = 0; i < rn->n; i++) {
				if (known[i])
					continue;
				st->warnings++;
				fprintf(stderr, "%s:%u:%u: warning: user '%s' "
				    "matches nobody: no such user in %s (add it "
				    "with `pbxgate user add` or fix the name)\n",
				    rn->v[i].file, rn->v[i].line, rn->v[i].col,
				    rn->v[i].name, cfg->auth.user_db);
			}
	}
	free(known);
	free(names);
	free(rn);
}

int
gw_cmd_check(const char *path, int argc, char **argv)
{
	struct check_state st = { 0, 0 };
	struct gw_config *cfg;

	if (argc != 1) {
		fprintf(stderr, "pbxgate check: unexpected argument \"%s\"\n",
		    argv[1]);
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
	check_user_names(cfg, &st);
	for (size_t i = 0; i < cfg->nsites; i++)	/* each its own store */
		check_user_names(cfg->sites[i].cfg, &st);
	gw_config_unref(cfg);
	fprintf(stderr, "%s: configuration is valid\n", path);
	return 0;
}
