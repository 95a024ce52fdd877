/* auth_admin.c -- `pbxgate session ...` and `pbxgate ban ...`: the admin's views of the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth/auth_priv.h"
#include "policy/policy.h"

#define TIME_TEXT 21	/* "2026-12-05T17:00:00Z" and NUL */

/* UTC, RFC 3339, seconds: the table's time columns. */
static void
time_text(int64_t t, char out[TIME_TEXT])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, TIME_TEXT, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, TIME_TEXT, "-");
}

/* Prints the array on stdout; 0, or -1 when it cannot be encoded. */
static int
json_print(json_t *a)
{
	char *s = json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s == NULL)
		return -1;
	printf("%s\n", s);
	free(s);
	return 0;
}

/* "--json" and "--user U" in any order; -1 on anything else. */
static int
parse_list_opts(int argc, char **argv, bool allow_user, bool *json,
    const char **user)
{
	*json = false;
	*user = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			*json = true;
		else if (allow_user && strcmp(argv[i], "--user") == 0 &&
		    i + 1 < argc && *user == NULL)
			*user = argv[++i];
		else {
			fprintf(stderr, "pbxgate: unexpected argument \"%s\"\n",
			    argv[i]);
			return -1;
		}
	}
	return 0;
}

/* ---- sessions ---- */

struct list_out {
	bool json;
	json_t *a;
	int64_t max;
};

static void
session_row(void *arg, const struct auth_session_row *r)
{
	struct list_out *o = arg;
	char created[TIME_TEXT], expires[TIME_TEXT];
	bool mfa = r->level == AUTH_LEVEL_MFA;

	if (o->json) {
		json_array_append_new(o->a, json_pack("{s:s, s:s, s:I, s:s, s:b, s:I}",
		    "id", r->pid, "user", r->user, "created", (json_int_t)r->created,
		    "source_address", r->ip, "mfa", mfa,
		    "expires", (json_int_t)(r->created + o->max)));
		return;
	}
	time_text(r->created, created);
	time_text(r->created + o->max, expires);
	printf("%-16s %-24s %-20s %-20s %-3s %s\n", r->pid, r->user, created,
	    expires, mfa ? "yes" : "no", r->ip);
}

/* Live sessions only: not revoked, of the user's current epoch, within
 * session_max, the user enabled (see the backends' session_list). */
static int
cmd_session_list(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	char folded[AUTH_NAME_MAX + 1];
	const char *user;
	struct list_out o = { .max = (int64_t)c->s.session_max };
	struct auth_session_query q = { 0 };
	int rc = 1;

	if (parse_list_opts(argc, argv, true, &o.json, &user) < 0)
		return 2;
	if (user != NULL && auth_name_fold(user, folded) < 0) {
		fprintf(stderr, "pbxgate: bad user name \"%s\"\n", user);
		return 1;
	}
	q.since = (int64_t)time(NULL) - c->s.session_max;
	q.user = user != NULL ? folded : NULL;
	if (o.json && (o.a = json_array()) == NULL)
		return 1;
	if (!o.json)
		printf("%-16s %-24s %-20s %-20s %-3s %s\n", "ID", "USER",
		    "CREATED", "EXPIRES", "MFA", "ADDRESS");
	if (c->store->session_list(c, &q, session_row, &o) < 0)
		fprintf(stderr, "pbxgate: cannot read sessions: %s\n",
		    auth_store_errmsg(c));
	else
		rc = o.json && json_print(o.a) < 0 ? 1 : 0;
	json_decref(o.a);
	return rc;
}

static bool
is_pid(const char *s)
{
	size_t n = strlen(s);

	if (n != AUTH_PID_HEX - 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One session: marked revoked, so its sid joins the table the gateway
 * reloads when the store version moves (as the account page does). */
static int
revoke_one(struct auth_ctx *c, const char *pid)
{
	char err[512];
	int n = auth_revoke(c, 0, NULL, pid, (int64_t)time(NULL), err,
	    sizeof(err));

	if (n < 0) {
		fprintf(stderr, "pbxgate: cannot revoke session %s: %s\n", pid,
		    err);
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "pbxgate: no live session %s (see `pbxgate session "
		    "list`)\n", pid);
		return 1;
	}
	return 0;
}

/* Every session of a user: the epoch bump a password change makes. */
static int
revoke_user(struct auth_ctx *c, const char *name)
{
	char folded[AUTH_NAME_MAX + 1];
	struct auth_user u;

	if (auth_name_fold(name, folded) < 0 || auth_user_get(c, folded, 0, &u) != 0) {
		fprintf(stderr, "pbxgate: no user \"%s\"\n", name);
		return 1;
	}
	if (auth_store_begin(c) < 0 || auth_bump_epoch(c, u.id, time(NULL)) < 0 ||
	    auth_store_commit(c) < 0) {
		fprintf(stderr, "pbxgate: cannot end the sessions of \"%s\": %s\n",
		    folded, auth_store_errmsg(c));
		auth_store_rollback(c);
		return 1;
	}
	return 0;
}

static int
cmd_session_revoke(void *arg, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--user") == 0)
		return revoke_user(arg, argv[2]);
	if (argc != 2 || argv[1][0] == '-')
		return 2;
	if (!is_pid(argv[1])) {
		fprintf(stderr, "pbxgate: \"%s\" is not a session id: expected the "
		    "16 hex digits `pbxgate session list` shows\n", argv[1]);
		return 1;
	}
	return revoke_one(arg, argv[1]);
}

const struct cli_cmd auth_session_cmds[] = {
	{ "list", cmd_session_list, "[--user U] [--json]",
	    "print the live sessions of every user, or of one",
	    "  --json  one JSON array of {id, user, created, expires, mfa,\n"
	    "          source_address} (times in Unix seconds)\n", NULL, 0 },
	{ "revoke", cmd_session_revoke, "ID | --user U",
	    "end one session, or every session of a user",
	    "  the running gateway refuses the session's cookie within the\n"
	    "  store's reload interval\n", NULL, 0 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};

/* ---- bans ---- */

static void
ban_row(void *arg, const struct auth_ban_row *r)
{
	struct list_out *o = arg;
	const char *key = r->key;
	const char *kind = strncmp(key, "a:", 2) == 0 ? "address" : "name";
	char ut[TIME_TEXT];

	key += strlen(key) >= 2 ? 2 : strlen(key);
	if (o->json) {
		json_array_append_new(o->a, json_pack("{s:s, s:s, s:I, s:I}", "kind",
		    kind, "value", key, "failures", (json_int_t)r->failures,
		    "until", (json_int_t)r->until));
		return;
	}
	time_text(r->until, ut);
	printf("%-8s %-40s %-8lld %s\n", kind, key, (long long)r->failures, ut);
}

static int
cmd_ban_list(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	const char *unused;
	struct list_out o = { 0 };
	int rc = 1;

	if (parse_list_opts(argc, argv, false, &o.json, &unused) < 0)
		return 2;
	if (o.json && (o.a = json_array()) == NULL)
		return 1;
	if (!o.json)
		printf("%-8s %-40s %-8s %s\n", "KIND", "NAME/ADDRESS", "FAILURES",
		    "UNTIL");
	if (c->store->ban_list(c, (int64_t)time(NULL), ban_row, &o) < 0)
		fprintf(stderr, "pbxgate: cannot read bans: %s\n", auth_store_errmsg(c));
	else
		rc = o.json && json_print(o.a) < 0 ? 1 : 0;
	json_decref(o.a);
	return rc;
}

/* An address names its counter as the gateway keys it (IPv4-mapped as
 * IPv4, IPv6 by /64); anything else is a user name, folded. */
static int
ban_key(const char *what, char *key, size_t len)
{
	char folded[AUTH_NAME_MAX + 1];
	struct pol_addr a;

	if (pol_addr_parse(what, strlen(what), &a) == 0) {
		auth_reg_key_of(&a, key, len);
		return 0;
	}
	if (auth_name_fold(what, folded) < 0) {
		fprintf(stderr, "pbxgate: \"%s\" is neither an IP address nor a "
		    "user name\n", what);
		return -1;
	}
	snprintf(key, len, "u:%s", folded);
	return 0;
}

/* Deletes the counter: the gateway reads it from the store at each
 * login attempt, so the lift is immediate. */
static int
cmd_ban_clear(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	char key[96];
	int n;

	if (argc != 2 || argv[1][0] == '-')
		return 2;
	if (ban_key(argv[1], key, sizeof(key)) < 0)
		return 1;
	if ((n = c->store->reg_del(c, key)) < 0) {
		fprintf(stderr, "pbxgate: cannot clear %s: %s\n", key + 2,
		    auth_store_errmsg(c));
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "pbxgate: no ban or failure count for %s\n", key + 2);
		return 1;
	}
	return 0;
}

const struct cli_cmd auth_ban_cmds[] = {
	{ "list", cmd_ban_list, "[--json]",
	    "print the banned user names and client addresses",
	    "  --json  one JSON array of {kind (name|address), value, failures,\n"
	    "          until (Unix seconds)}\n", NULL, 0 },
	{ "clear", cmd_ban_clear, "NAME | ADDRESS",
	    "lift the ban and forget the failures of a name or an address",
	    "  an IPv6 address stands for its /64, as the gateway counts it\n",
	    NULL, 0 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};

int
auth_cmd_session(const struct auth_settings *s, int argc, char **argv)
{
	return auth_cli_run(s, auth_session_cmds, "pbxgate session", argc, argv);
}

int
auth_cmd_ban(const struct auth_settings *s, int argc, char **argv)
{
	return auth_cli_run(s, auth_ban_cmds, "pbxgate ban", argc, argv);
}
