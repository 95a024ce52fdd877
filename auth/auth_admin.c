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

static const char *
col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t != NULL ? (const char *)t : "";
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

/* Live: not revoked, sealed under the user's current epoch (a password
 * change or `session revoke --user` bumps it), within session_max, and
 * the user enabled. Rows from before schema 3 (epoch 0) are shown: the
 * gateway may still accept them. */
#define SESSIONS_SQL \
	"SELECT s.pid, u.name, s.created, s.ip, s.level FROM sessions s" \
	" JOIN users u ON u.id = s.user_id WHERE s.revoked = 0" \
	" AND u.disabled = 0 AND (s.epoch = u.epoch OR s.epoch = 0)" \
	" AND s.created > ?1 AND (?2 IS NULL OR u.name = ?2)" \
	" ORDER BY s.created, s.pid"

static void
session_row(sqlite3_stmt *st, int64_t max, bool json, json_t *a)
{
	char created[TIME_TEXT], expires[TIME_TEXT];
	int64_t t = sqlite3_column_int64(st, 2);
	bool mfa = sqlite3_column_int(st, 4) == AUTH_LEVEL_MFA;

	if (json) {
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:s, s:b, s:I}",
		    "id", col_text(st, 0), "user", col_text(st, 1), "created",
		    (json_int_t)t, "source_address", col_text(st, 3), "mfa", mfa,
		    "expires", (json_int_t)(t + max)));
		return;
	}
	time_text(t, created);
	time_text(t + max, expires);
	printf("%-16s %-24s %-20s %-20s %-3s %s\n", col_text(st, 0),
	    col_text(st, 1), created, expires, mfa ? "yes" : "no",
	    col_text(st, 3));
}

static int
cmd_session_list(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	char folded[AUTH_NAME_MAX + 1];
	const char *user;
	sqlite3_stmt *st;
	json_t *a = NULL;
	bool json;
	int r, rc = 1;

	if (parse_list_opts(argc, argv, true, &json, &user) < 0)
		return 2;
	if (user != NULL && auth_name_fold(user, folded) < 0) {
		fprintf(stderr, "pbxgate: bad user name \"%s\"\n", user);
		return 1;
	}
	if (sqlite3_prepare_v2(c->db, SESSIONS_SQL, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "pbxgate: cannot read sessions: %s\n",
		    sqlite3_errmsg(c->db));
		return 1;
	}
	sqlite3_bind_int64(st, 1, (int64_t)time(NULL) - c->s.session_max);
	if (user != NULL)
		sqlite3_bind_text(st, 2, folded, -1, SQLITE_STATIC);
	if (json && (a = json_array()) == NULL)
		goto out;
	if (!json)
		printf("%-16s %-24s %-20s %-20s %-3s %s\n", "ID", "USER",
		    "CREATED", "EXPIRES", "MFA", "ADDRESS");
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		session_row(st, (int64_t)c->s.session_max, json, a);
	if (r != SQLITE_DONE)
		fprintf(stderr, "pbxgate: cannot read sessions: %s\n",
		    sqlite3_errmsg(c->db));
	else
		rc = json && json_print(a) < 0 ? 1 : 0;
out:
	json_decref(a);
	sqlite3_finalize(st);
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
	sqlite3_stmt *st;
	int n = -1;

	if (auth_store_begin(c) < 0)
		goto fail;
	if (sqlite3_prepare_v2(c->db, "UPDATE sessions SET revoked = 1 WHERE"
	    " pid = ?1 AND revoked = 0", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		n = sqlite3_changes(c->db);
	sqlite3_finalize(st);
	if (n < 0 || (n > 0 && auth_bump_version(c) < 0) || auth_store_commit(c) < 0)
		goto fail;
	if (n == 0) {
		fprintf(stderr, "pbxgate: no live session %s (see `pbxgate session "
		    "list`)\n", pid);
		return 1;
	}
	return 0;
fail:
	fprintf(stderr, "pbxgate: cannot revoke session %s: %s\n", pid,
	    sqlite3_errmsg(c->db));
	auth_store_rollback(c);
	return 1;
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
		    folded, sqlite3_errmsg(c->db));
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
ban_row(sqlite3_stmt *st, bool json, json_t *a)
{
	const char *key = col_text(st, 0);
	const char *kind = strncmp(key, "a:", 2) == 0 ? "address" : "name";
	int64_t until = sqlite3_column_int64(st, 2);
	char ut[TIME_TEXT];

	key += strlen(key) >= 2 ? 2 : strlen(key);
	if (json) {
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I}", "kind",
		    kind, "value", key, "failures",
		    (json_int_t)sqlite3_column_int64(st, 1), "until",
		    (json_int_t)until));
		return;
	}
	time_text(until, ut);
	printf("%-8s %-40s %-8lld %s\n", kind, key,
	    (long long)sqlite3_column_int64(st, 1), ut);
}

static int
cmd_ban_list(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	const char *unused;
	sqlite3_stmt *st;
	json_t *a = NULL;
	bool json;
	int r, rc = 1;

	if (parse_list_opts(argc, argv, false, &json, &unused) < 0)
		return 2;
	if (sqlite3_prepare_v2(c->db, "SELECT key, failures, banned_until FROM"
	    " regulate WHERE banned_until > ?1 ORDER BY key", -1, &st,
	    NULL) != SQLITE_OK) {
		fprintf(stderr, "pbxgate: cannot read bans: %s\n", sqlite3_errmsg(c->db));
		return 1;
	}
	sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
	if (json && (a = json_array()) == NULL)
		goto out;
	if (!json)
		printf("%-8s %-40s %-8s %s\n", "KIND", "NAME/ADDRESS", "FAILURES",
		    "UNTIL");
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		ban_row(st, json, a);
	if (r != SQLITE_DONE)
		fprintf(stderr, "pbxgate: cannot read bans: %s\n", sqlite3_errmsg(c->db));
	else
		rc = json && json_print(a) < 0 ? 1 : 0;
out:
	json_decref(a);
	sqlite3_finalize(st);
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
	sqlite3_stmt *st;
	int n = -1;

	if (argc != 2 || argv[1][0] == '-')
		return 2;
	if (ban_key(argv[1], key, sizeof(key)) < 0)
		return 1;
	if (sqlite3_prepare_v2(c->db, "DELETE FROM regulate WHERE key = ?1", -1,
	    &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE)
			n = sqlite3_changes(c->db);
		sqlite3_finalize(st);
	}
	if (n < 0) {
		fprintf(stderr, "pbxgate: cannot clear %s: %s\n", key + 2,
		    sqlite3_errmsg(c->db));
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
