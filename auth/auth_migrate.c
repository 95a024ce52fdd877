/* auth_migrate.c -- `pbxgate user migrate`: one user store copied into
 * another (SQLite to PostgreSQL, or back), row for row, in one transaction.
 *
 * Rows are copied as stored: ids kept (a TOTP secret is sealed with its
 * user's id as AAD), secrets still sealed and codes still hashed, so no
 * key is read; the gateways on the target need the same secret_key file.
 * The store's identity is copied too: the target is the same store to
 * the session cookies (auth_store_bind), which survive the move.
 * The source is locked against writes for the copy, the target must be
 * empty, and the row counts of every table are compared inside the
 * target's transaction before it commits: a copy is whole or absent. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth_priv.h"

#define MIGRATE_TEXT_MAX 4096	/* longest text pbxgate writes: lockdown 1024 */
#define MIGRATE_BLOB_MAX 1024	/* sealed TOTP secrets are 48 bytes */

struct store_arg {
	const char *spec;	/* as given: sqlite:FILE or postgresql://... */
	const char *user_db;	/* what auth_store_open takes: FILE or the URL */
	bool        sqlite;
	bool        created;	/* a SQLite target that did not exist */
};

struct copy {
	struct auth_ctx *src, *dst;
	enum auth_tbl    tbl;
	int64_t          rows;		/* of tbl, put so far */
	char             why[640];	/* what failed, set by the callback */
};

static const char cmd[] = "pbxgate user migrate";

/* 0, or -1 with the message printed: a scheme we do not know is a usage
 * error (2), a PostgreSQL URL that the config would refuse too is 1. */
static int
store_arg(const char *opt, const char *spec, struct store_arg *a, int *rc)
{
	char err[256];

	a->spec = spec;
	a->sqlite = strncmp(spec, "sqlite:", 7) == 0;
	a->user_db = a->sqlite ? spec + 7 : spec;
	if (a->sqlite && a->user_db[0] == '\0') {
		fprintf(stderr, "%s: %s %s: no file after \"sqlite:\"\n", cmd, opt,
		    spec);
		*rc = CLI_USAGE;
		return -1;
	}
	if (!a->sqlite && !auth_store_is_pg(spec)) {
		fprintf(stderr, "%s: %s \"%s\": unknown store: expected sqlite:FILE "
		    "or postgresql://...\n", cmd, opt, spec);
		*rc = CLI_USAGE;
		return -1;
	}
	if (!a->sqlite && auth_store_pg_check(spec, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s: %s\n", cmd, opt, err);
		*rc = CLI_FAIL;
		return -1;
	}
	return 0;
}

static int
parse_args(int argc, char **argv, struct store_arg *from, struct store_arg *to)
{
	const char *f = NULL, *t = NULL;
	int rc = CLI_USAGE;

	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--from") == 0 ? &f :
		    strcmp(argv[i], "--to") == 0 ? &t : NULL;

		if (slot == NULL || i + 1 >= argc || *slot != NULL) {
			fprintf(stderr, "%s: %s: unknown, repeated or without its "
			    "value\n", cmd, argv[i]);
			return CLI_USAGE;
		}
		*slot = argv[++i];
	}
	if (f == NULL || t == NULL) {
		fprintf(stderr, "%s: both --from and --to are needed\n", cmd);
		return CLI_USAGE;
	}
	if (store_arg("--from", f, from, &rc) < 0 || store_arg("--to", t, to,
	    &rc) < 0)
		return rc;
	return CLI_OK;
}

/* A source file must exist and not be empty (SQLite would make either a
 * new store), and the target must not be the source. Two URLs naming one
 * database are not told apart here; the copy then fails on the target's
 * lock (held by the source's, 5 s) or on the target not being empty. */
static int
check_stores(const struct store_arg *from, struct store_arg *to)
{
	struct stat sf, st;

	if (from->sqlite && stat(from->user_db, &sf) < 0) {
		fprintf(stderr, "%s: --from %s: %s: name an existing user store "
		    "(nothing was created)\n", cmd, from->spec, strerror(errno));
		return CLI_FAIL;
	}
	/* opening would make an empty file a store: a write to the source */
	if (from->sqlite && S_ISREG(sf.st_mode) && sf.st_size == 0) {
		fprintf(stderr, "%s: --from %s: an empty file, not a user store: "
		    "name an existing one\n", cmd, from->spec);
		return CLI_FAIL;
	}
	to->created = to->sqlite && stat(to->user_db, &st) < 0 && errno == ENOENT;
	if ((!from->sqlite && strcmp(from->spec, to->spec) == 0) ||
	    (from->sqlite && to->sqlite && stat(to->user_db, &st) == 0 &&
	    sf.st_dev == st.st_dev && sf.st_ino == st.st_ino)) {
		fprintf(stderr, "%s: --from and --to name the same store: copy "
		    "into a new, empty one\n", cmd);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* The error of a failed store call, read before a rollback replaces it. */
static void
store_why(struct copy *cp, struct auth_ctx *c, const char *what)
{
	snprintf(cp->why, sizeof(cp->why), "%s %s: %s: %s", c == cp->src ?
	    "source" : "target", what, auth_store_errmsg(c), auth_store_hint(c));
}

/* Lengths are checked here, once for both backends: a value longer than
 * pbxgate ever writes means a damaged source, not something to copy. */
static int
put_row(void *arg, const struct auth_val *row)
{
	struct copy *cp = arg;
	const struct auth_tbl_def *d = &auth_tbls[cp->tbl];

	for (size_t i = 0; d->types[i] != '\0'; i++) {
		size_t n = d->types[i] == 't' ? strlen(row[i].t) : row[i].n;
		size_t max = d->types[i] == 't' ? MIGRATE_TEXT_MAX :
		    MIGRATE_BLOB_MAX;

		if (d->types[i] != 'i' && n > max) {
			snprintf(cp->why, sizeof(cp->why), "source %s, row %lld, "
			    "column %zu: %zu bytes, more than pbxgate writes (%zu): "
			    "the source store is damaged", d->name,
			    (long long)cp->rows + 1, i + 1, n, max);
			return -1;
		}
	}
	if (cp->dst->store->row_put(cp->dst, cp->tbl, row) < 0) {
		char what[64];

		snprintf(what, sizeof(what), "%s, row %lld", d->name,
		    (long long)cp->rows + 1);
		store_why(cp, cp->dst, what);
		return -1;
	}
	cp->rows++;
	return 0;
}

static int
target_empty(struct copy *cp)
{
	int64_t n = 0;

	for (int t = 0; t < AUTH_TBL_COUNT; t++) {
		if (cp->dst->store->row_count(cp->dst, (enum auth_tbl)t, &n) < 0) {
			store_why(cp, cp->dst, "count");
			return -1;
		}
		if (n > 0) {
			snprintf(cp->why, sizeof(cp->why), "the target is not empty "
			    "(%lld rows in %s): migrate copies into a new store only",
			    (long long)n, auth_tbls[t].name);
			return -1;
		}
	}
	return 0;
}

/* Source, rows put and target agree for every table, or nothing commits. */
static int
copy_tables(struct copy *cp, int64_t copied[AUTH_TBL_COUNT])
{
	int64_t ns = 0, nt = 0;

	for (int t = 0; t < AUTH_TBL_COUNT; t++) {
		cp->tbl = (enum auth_tbl)t, cp->rows = 0;
		if (cp->src->store->row_each(cp->src, cp->tbl, put_row, cp) < 0) {
			if (cp->why[0] == '\0')
				store_why(cp, cp->src, auth_tbls[t].name);
			return -1;
		}
		copied[t] = cp->rows;
	}
	if (cp->dst->store->copy_done(cp->dst) < 0) {
		store_why(cp, cp->dst, "id sequences");
		return -1;
	}
	if (cp->dst->store->store_id_put(cp->dst, cp->src->store_id) < 0) {
		store_why(cp, cp->dst, "store identity");
		return -1;
	}
	for (int t = 0; t < AUTH_TBL_COUNT; t++) {
		if (cp->src->store->row_count(cp->src, (enum auth_tbl)t, &ns) < 0) {
			store_why(cp, cp->src, "count");
			return -1;
		}
		if (cp->dst->store->row_count(cp->dst, (enum auth_tbl)t, &nt) < 0) {
			store_why(cp, cp->dst, "count");
			return -1;
		}
		if (ns != copied[t] || nt != copied[t]) {
			snprintf(cp->why, sizeof(cp->why), "%s: %lld rows in the "
			    "source, %lld copied, %lld in the target",
			    auth_tbls[t].name, (long long)ns, (long long)copied[t],
			    (long long)nt);
			return -1;
		}
	}
	return 0;
}

static int
copy_locked(struct copy *cp, int64_t copied[AUTH_TBL_COUNT])
{
	if (cp->src->store->copy_begin(cp->src, false) < 0) {
		store_why(cp, cp->src, "lock");
		return -1;
	}
	if (cp->dst->store->copy_begin(cp->dst, true) < 0) {
		store_why(cp, cp->dst, "lock");
		return -1;
	}
	if (target_empty(cp) < 0 || copy_tables(cp, copied) < 0)
		return -1;
	if (cp->dst->store->commit(cp->dst) < 0) {
		store_why(cp, cp->dst, "commit");
		return -1;
	}
	return 0;
}

static void
print_copied(const struct store_arg *from, const struct store_arg *to,
    const int64_t copied[AUTH_TBL_COUNT])
{
	printf("copied %s to %s:", from->spec, to->spec);
	for (int t = 0; t < AUTH_TBL_COUNT; t++)
		printf(" %s %lld", auth_tbls[t].name, (long long)copied[t]);
	printf("\n");
}

/* A SQLite target this command created goes again when nothing was
 * copied into it, with the files WAL mode put beside it. */
static void
remove_created(const struct store_arg *to)
{
	char side[4096];

	if (!to->created)
		return;
	(void)unlink(to->user_db);
	for (int i = 0; i < 2; i++)
		if (snprintf(side, sizeof(side), "%s-%s", to->user_db, i ? "shm" :
		    "wal") < (int)sizeof(side))
			(void)unlink(side);
}

static int
run_copy(const struct auth_settings *s, const struct store_arg *from,
    const struct store_arg *to)
{
	struct copy cp = { .why = "" };
	int64_t copied[AUTH_TBL_COUNT] = { 0 };
	char err[512];
	int rc;

	if ((cp.src = auth_open_store(s, from->user_db, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: source: %s; nothing was copied\n", cmd, err);
		return CLI_FAIL;
	}
	if ((cp.dst = auth_open_store(s, to->user_db, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: target: %s; nothing was copied\n", cmd, err);
		auth_close(cp.src);
		remove_created(to);
		return CLI_FAIL;
	}
	pthread_mutex_lock(&cp.src->db_mu);
	pthread_mutex_lock(&cp.dst->db_mu);
	rc = copy_locked(&cp, copied);
	if (rc < 0)
		auth_store_rollback(cp.dst);
	auth_store_rollback(cp.src);	/* read only: ends the lock */
	pthread_mutex_unlock(&cp.dst->db_mu);
	pthread_mutex_unlock(&cp.src->db_mu);
	auth_close(cp.dst);
	auth_close(cp.src);
	if (rc < 0) {
		fprintf(stderr, "%s: %s; rolled back, nothing was copied\n", cmd,
		    cp.why);
		remove_created(to);
		return CLI_FAIL;
	}
	print_copied(from, to, copied);
	return CLI_OK;
}

/* arg is the settings, not a ctx: auth_cli_run opens no store for this
 * command, which names its own two. */
int
auth_cmd_migrate(void *arg, int argc, char **argv)
{
	struct store_arg from, to;
	int rc;

	if ((rc = parse_args(argc, argv, &from, &to)) != CLI_OK ||
	    (rc = check_stores(&from, &to)) != CLI_OK)
		return rc;
	return run_copy(arg, &from, &to);
}
