/* auth_store_pg.c -- the PostgreSQL user store backend (libpq): schema,
 * migrations, queries, for gateways that share one store.
 *
 * One connection per ctx. Every operation runs with db_mu held, so the
 * connection is never used by two threads at once. The login pages' calls
 * run on the login pool, off the event loop; in a serving gateway the
 * change listener (auth_store_pg_live.c) reads the in-memory tables and
 * the /metrics counts on a connection and thread of its own. Without it
 * (a ctx nobody started one for) auth_refresh() reads the version and the
 * counts here: connect_timeout and statement_timeout bound how long a slow
 * or unreachable server can hold it (PG_TIMEOUT_S each).
 *
 * Values are always parameters (PQexecParams), never part of the SQL text.
 * The code-once writes are conditional UPDATEs (or a DELETE) whose row
 * count says who won: PostgreSQL re-checks the WHERE clause of a row a
 * concurrent transaction changed, so two gateways cannot both see 1.
 * A lost connection is reset before the next operation, which is how the
 * store comes back by itself after a server restart. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "auth/auth_priv.h"
#include "auth/auth_store_pg.h"
#include "policy/policy.h"

#define PG_TIMEOUT_S	"5"	/* connect and per-statement, seconds */
#define PG_PARAMS_MAX	8
#define PG_PASSWORD_MAX	AUTH_PG_PASSWORD_MAX

/* Migration N takes the store from schema N-1 to N, inside one transaction.
 * Version 1 is the SQLite store's schema 3 (the same tables and meaning),
 * version 2 its schema 4. */
static const char *const migrations[] = {
	NULL,
	"CREATE TABLE meta(k TEXT PRIMARY KEY, v BIGINT NOT NULL);"
	"INSERT INTO meta VALUES('version', 1);"
	"CREATE TABLE users("
	" id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, email TEXT NOT NULL DEFAULT '',"
	" admin INT NOT NULL DEFAULT 0, groups TEXT NOT NULL DEFAULT '',"
	" pw TEXT NOT NULL DEFAULT '', totp BYTEA, totp_kid BIGINT NOT NULL DEFAULT 0,"
	" totp_last BIGINT NOT NULL DEFAULT -1, lockdown TEXT NOT NULL DEFAULT '',"
	" disabled INT NOT NULL DEFAULT 0, epoch BIGINT NOT NULL DEFAULT 1,"
	" created BIGINT NOT NULL, updated BIGINT NOT NULL);"
	"CREATE TABLE recovery(user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" hash TEXT NOT NULL, used INT NOT NULL DEFAULT 0);"
	"CREATE TABLE sessions(sid TEXT PRIMARY KEY,"
	" user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" created BIGINT NOT NULL, ip TEXT NOT NULL, level INT NOT NULL,"
	" revoked INT NOT NULL DEFAULT 0, pid TEXT UNIQUE, epoch BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE logins(id BIGSERIAL PRIMARY KEY,"
	" user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" time BIGINT NOT NULL, ip TEXT NOT NULL, ok INT NOT NULL);"
	"CREATE TABLE regulate(key TEXT PRIMARY KEY, failures BIGINT NOT NULL,"
	" first BIGINT NOT NULL, last BIGINT NOT NULL, banned_until BIGINT NOT NULL);"
	"CREATE TABLE enrol(hash TEXT PRIMARY KEY,"
	" user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" expires BIGINT NOT NULL, used INT NOT NULL DEFAULT 0,"
	" totp BYTEA, totp_kid BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE mfa_pending(nonce TEXT PRIMARY KEY,"
	" user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" expires BIGINT NOT NULL);"
	"CREATE INDEX sessions_user ON sessions(user_id);"
	"CREATE INDEX logins_user ON logins(user_id, time);",
	/* 2: the store's identity (SQLite's schema 4): meta 'store_id', drawn
	 * in C from the CSPRNG by store_id_add; this clears what it replaces */
	"DELETE FROM meta WHERE k = 'store_id'",
};
#define SCHEMA_LATEST ((int)(sizeof(migrations) / sizeof(migrations[0])) - 1)
#define SCHEMA_STORE_ID 2	/* the migration store_id_add completes */

/* The connection this thread holds from the pool (auth_store_pg_pool.c),
 * or the ctx's own. */
static struct auth_pg *
pg(struct auth_ctx *c)
{
	struct auth_pg *p = auth_pg_pool_current(c);

	return p != NULL ? p : c->pg;
}

/* libpq's messages end with a newline and hold one line per host tried
 * (each maybe followed by a tab-indented hint), or DETAIL and HINT lines:
 * all of it into dst as one log line, "; " between lines, cut at dstlen. */
static void
one_line(char *dst, size_t dstlen, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 2 < dstlen; src++) {
		if (*src == '\n' && src[1] == '\t') {
			dst[o++] = ' ';
			src++;
		} else if (*src == '\n' && src[1] != '\0') {
			dst[o++] = ';';
			dst[o++] = ' ';
		} else if (*src != '\n')
			dst[o++] = *src == '\t' || *src == '\r' ? ' ' : *src;
	}
	dst[o] = '\0';
}

static void
set_err(struct auth_ctx *c, const PGresult *r)
{
	struct auth_pg *p = pg(c);
	const char *m = r != NULL ? PQresultErrorMessage(r) : "";
	const char *st = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (m == NULL || *m == '\0')
		m = PQerrorMessage(p->conn);
	one_line(p->err, sizeof(p->err), m != NULL && *m != '\0' ? m :
	    "PostgreSQL error");
	snprintf(p->sqlstate, sizeof(p->sqlstate), "%s", st != NULL ? st : "");
}

/* A connection lost since the last call is reset first: the server may
 * have restarted. Never inside a transaction, whose state died with it. */
static int
live(struct auth_ctx *c)
{
	struct auth_pg *p = pg(c);

	if (PQstatus(p->conn) == CONNECTION_OK)
		return 0;
	PQreset(p->conn);
	memset(p->put_ready, 0, sizeof(p->put_ready));	/* died with it */
	if (PQstatus(p->conn) == CONNECTION_OK)
		return 0;
	set_err(c, NULL);
	snprintf(p->sqlstate, sizeof(p->sqlstate), "08006");
	return -1;
}

/* Runs sql with n parameters as PQexecParams takes them, or the prepared
 * statement of that name when `prepared`. The result, or NULL (error
 * kept). */
static PGresult *
exec_params(struct auth_ctx *c, const char *sql, bool prepared, int n,
    const char *const *val, const int *len, const int *fmt)
{
	PGTransactionStatusType ts;
	PGresult *r;
	ExecStatusType s;

	/* a lost connection reports PQTRANS_UNKNOWN: reset it then, but
	 * never under an open transaction, whose state is the server's */
	ts = PQtransactionStatus(pg(c)->conn);
	if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR && live(c) < 0)
		return NULL;
	r = prepared ? PQexecPrepared(pg(c)->conn, sql, n, val, len, fmt, 0) :
	    PQexecParams(pg(c)->conn, sql, n, NULL, val, len, fmt, 0);
	s = PQresultStatus(r);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return r;
	set_err(c, r);
	PQclear(r);
	return NULL;
}

/* Runs sql with $1..$N from `types`: 'i' int64_t, 't' text (NULL is SQL
 * NULL), 'b' bytea (pointer, size_t). The result, or NULL (error kept). */
static PGresult *
vquery(struct auth_ctx *c, const char *sql, const char *types, va_list ap)
{
	char num[PG_PARAMS_MAX][24];
	const char *val[PG_PARAMS_MAX];
	int len[PG_PARAMS_MAX], fmt[PG_PARAMS_MAX], n = 0;

	for (const char *t = types; *t != '\0'; t++, n++) {
		if (n == PG_PARAMS_MAX) {
			snprintf(pg(c)->err, sizeof(pg(c)->err), "more than %d "
			    "query parameters", PG_PARAMS_MAX);
			return NULL;
		}
		len[n] = 0, fmt[n] = 0;
		if (*t == 'i') {
			snprintf(num[n], sizeof(num[n]), "%lld",
			    (long long)va_arg(ap, int64_t));
			val[n] = num[n];
		} else if (*t == 't')
			val[n] = va_arg(ap, const char *);
		else {
			/* read as passed (uint8_t *) through void *, which
			 * va_arg may take for any pointer to a character type */
			val[n] = (const char *)va_arg(ap, const void *);
			len[n] = (int)va_arg(ap, size_t);
			fmt[n] = 1;
		}
	}
	return exec_params(c, sql, false, n, val, len, fmt);
}

static PGresult *
query(struct auth_ctx *c, const char *sql, const char *types, ...)
{
	PGresult *r;
	va_list ap;

	va_start(ap, types);
	r = vquery(c, sql, types, ap);
	va_end(ap);
	return r;
}

/* A write: the number of rows it changed, or -1. */
static int
change(struct auth_ctx *c, const char *sql, const char *types, ...)
{
	PGresult *r;
	va_list ap;
	int n;

	va_start(ap, types);
	r = vquery(c, sql, types, ap);
	va_end(ap);
	if (r == NULL)
		return -1;
	n = (int)strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return n;
}

static int
as_rc(int changes)
{
	return changes < 0 ? -1 : 0;
}

static int64_t
col_i64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 :
	    strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static const char *
col_text(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col);	/* "" for NULL */
}

static void
copy_text(char *dst, size_t dstlen, const PGresult *r, int row, int col)
{
	snprintf(dst, dstlen, "%s", col_text(r, row, col));
}

/* A bytea column (text form) into dst when it has exactly dstlen bytes. */
static bool
copy_bytea(uint8_t *dst, size_t dstlen, const PGresult *r, int row, int col)
{
	unsigned char *b;
	size_t n = 0;
	bool ok;

	if (PQgetisnull(r, row, col))
		return false;
	b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
	if (b == NULL)
		return false;
	ok = n == dstlen;
	if (ok)
		memcpy(dst, b, n);
	OPENSSL_cleanse(b, n);
	PQfreemem(b);
	return ok;
}

static int
exec(struct auth_ctx *c, const char *sql)
{
	return as_rc(change(c, sql, ""));
}

static int
pg_begin(struct auth_ctx *c)
{
	return exec(c, "BEGIN");
}

/* COMMIT of a transaction an error aborted answers ROLLBACK: a failure. */
static int
pg_commit(struct auth_ctx *c)
{
	PGresult *r = query(c, "COMMIT", "");
	int ok;

	if (r == NULL)
		return -1;
	ok = strcmp(PQcmdStatus(r), "COMMIT") == 0;
	PQclear(r);
	if (!ok)
		snprintf(pg(c)->err, sizeof(pg(c)->err), "the transaction was "
		    "rolled back by an earlier error");
	return ok ? 0 : -1;
}

static void
pg_rollback(struct auth_ctx *c)
{
	PGresult *r;

	if (PQtransactionStatus(pg(c)->conn) != PQTRANS_INTRANS &&
	    PQtransactionStatus(pg(c)->conn) != PQTRANS_INERROR)
		return;
	r = PQexec(pg(c)->conn, "ROLLBACK");
	PQclear(r);
}

static const char *
pg_errmsg(struct auth_ctx *c)
{
	return pg(c) != NULL ? pg(c)->err : "no store open";
}

/* What an operator can do, by SQLSTATE class. */
static const char *
pg_hint(struct auth_ctx *c)
{
	const char *s = pg(c) != NULL ? pg(c)->sqlstate : "08";

	if (strncmp(s, "08", 2) == 0 || strncmp(s, "57", 2) == 0)
		return "the PostgreSQL server is unreachable or shutting down: "
		    "check that it runs; the gateway reconnects by itself; "
		    "nothing was changed";
	if (strncmp(s, "28", 2) == 0)
		return "PostgreSQL refused the credentials: check the user in "
		    "user_db and user_db_password_file";
	if (strncmp(s, "53", 2) == 0)
		return "the PostgreSQL server is out of resources (disk, memory "
		    "or connections); nothing was changed";
	if (strncmp(s, "40", 2) == 0 || strcmp(s, "55P03") == 0 ||
	    strcmp(s, "57014") == 0)
		return "the store is busy or the statement timed out; try again";
	if (strncmp(s, "42", 2) == 0)
		return "the database user lacks a privilege or the schema is "
		    "not a pbxgate store: check user_db";
	return "see the PostgreSQL error above";
}

/* Read through pol_file_open (the privsep parent opens it for the child);
 * the mode is judged on the descriptor read. */
int
auth_store_pg_password(const char *path, char *out, size_t outlen, char *err,
    size_t errlen)
{
	char why[256];
	struct stat st;
	size_t len;
	ssize_t n;
	bool bad;
	int fd;

	if ((fd = pol_file_open(path, O_NOFOLLOW, &st, why, sizeof(why))) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: mode %04o: the password file must be "
		    "readable only by its owner (chmod 600)", path,
		    (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	n = read(fd, out, outlen - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	/* The first line is the password: too long when no line end came
	 * in a full buffer; a NUL byte in it is no password libpq can send. */
	out[n] = '\0';
	len = strcspn(out, "\r\n");
	bad = len == 0 || (len < (size_t)n && out[len] == '\0') ||
	    (len == (size_t)n && (size_t)n == outlen - 1);
	out[len] = '\0';
	if (bad) {
		OPENSSL_cleanse(out, outlen);
		snprintf(err, errlen, "%s: the password file must hold one line "
		    "of 1 to %zu bytes", path, outlen - 2);
		return -1;
	}
	return 0;
}

/* The tables of the current schema: none (a new store), a pbxgate store
 * (meta has our id) or something else, refused untouched. */
static int
check_identity(struct auth_ctx *c, int64_t *version, char *err, size_t errlen)
{
	PGresult *r;
	int64_t ntables, has_meta, app = -1;

	*version = 0;
	if ((r = query(c, "SELECT count(*), coalesce(bool_or(tablename ="
	    " 'meta'), false)::int FROM pg_tables WHERE schemaname ="
	    " current_schema()", "")) == NULL)
		goto fail;
	ntables = col_i64(r, 0, 0);
	has_meta = col_i64(r, 0, 1);
	PQclear(r);
	if (ntables == 0)
		return 0;
	if (has_meta) {
		if ((r = query(c, "SELECT (SELECT v FROM meta WHERE k ="
		    " 'application_id'), (SELECT v FROM meta WHERE k = 'schema')",
		    "")) == NULL)
			goto fail;
		app = col_i64(r, 0, 0);
		*version = col_i64(r, 0, 1);
		PQclear(r);
	}
	if (app != AUTH_APP_ID) {
		snprintf(err, errlen, "%s: the database schema holds tables that "
		    "are not a pbxgate user store; refusing to touch it (point "
		    "user_db at an empty database or schema)", c->s.user_db);
		return -1;
	}
	if (*version > SCHEMA_LATEST) {
		snprintf(err, errlen, "%s: schema version %lld is newer than this "
		    "pbxgate (%d): upgrade pbxgate", c->s.user_db,
		    (long long)*version, SCHEMA_LATEST);
		return -1;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: cannot read the user store: %s: %s",
	    c->s.user_db, pg_errmsg(c), pg_hint(c));
	return -1;
}

/* Migration SCHEMA_STORE_ID's row, inside its transaction: two gateways
 * migrating together are serialised by migrate's advisory lock, so one
 * store gets one identity. */
static int
store_id_add(struct auth_ctx *c)
{
	int64_t id;

	if (auth_store_id_new(&id) < 0) {
		snprintf(pg(c)->err, sizeof(pg(c)->err), "the CSPRNG failed");
		return -1;
	}
	return change(c, "INSERT INTO meta VALUES('store_id', $1::bigint)", "i",
	    id) == 1 ? 0 : -1;
}

/* Two gateways starting together: the advisory lock makes the second wait
 * and then find the schema current. */
static int
migrate(struct auth_ctx *c, char *err, size_t errlen)
{
	int64_t v = 0;

	if (pg_begin(c) < 0 || exec(c, "SELECT pg_advisory_xact_lock(7062786701)") < 0)
		goto fail;
	if (check_identity(c, &v, err, errlen) < 0) {
		pg_rollback(c);
		return -1;
	}
	for (v = v + 1; v <= SCHEMA_LATEST; v++) {
		PGresult *r = PQexec(pg(c)->conn, migrations[v]);

		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			set_err(c, r);
			PQclear(r);
			goto fail;
		}
		PQclear(r);
		if (v == SCHEMA_STORE_ID && store_id_add(c) < 0)
			goto fail;
		if (change(c, "INSERT INTO meta VALUES('application_id', $1::bigint),"
		    " ('schema', $2::bigint) ON CONFLICT (k) DO UPDATE SET v ="
		    " excluded.v", "ii", (int64_t)AUTH_APP_ID, v) < 0)
			goto fail;
	}
	return pg_commit(c) < 0 ? (snprintf(err, errlen, "%s: schema migration "
	    "failed: %s", c->s.user_db, pg_errmsg(c)), -1) : 0;
fail:
	snprintf(err, errlen, "%s: schema migration to version %lld failed: %s: %s",
	    c->s.user_db, (long long)v, pg_errmsg(c), pg_hint(c));
	pg_rollback(c);
	return -1;
}

bool
auth_store_is_pg(const char *user_db)
{
	return user_db != NULL && (strncmp(user_db, "postgresql://", 13) == 0 ||
	    strncmp(user_db, "postgres://", 11) == 0);
}

static const char *
opt(const PQconninfoOption *o, const char *key)
{
	for (; o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val != NULL ? o->val : "";
	return "";
}

/* Every host a Unix socket directory (libpq's default when none is given),
 * and no numeric address. */
static bool
all_sockets(const PQconninfoOption *o)
{
	const char *h = opt(o, "host");

	if (*opt(o, "hostaddr") != '\0')
		return false;
	while (*h != '\0') {
		if (*h != '/')
			return false;
		h += strcspn(h, ",");
		h += *h == ',';
	}
	return true;
}

/* For the config: a URL libpq reads, with no password in it, and with
 * server verification unless every host is a local socket. */
int
auth_store_pg_check(const char *url, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *o = PQconninfoParse(url, &perr);
	const char *mode;
	int rc = -1;

	if (o == NULL) {
		snprintf(err, errlen, "not a PostgreSQL URL libpq accepts: %s",
		    perr != NULL ? perr : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfreemem(perr);
		return -1;
	}
	mode = opt(o, "sslmode");
	if (*opt(o, "password") != '\0')
		snprintf(err, errlen, "the user_db URL holds a password: remove it "
		    "and put it in a file named by user_db_password_file");
	else if (*mode != '\0' && strcmp(mode, "verify-full") != 0 &&
	    !all_sockets(o))
		snprintf(err, errlen, "sslmode=%s does not verify the PostgreSQL "
		    "server: use sslmode=verify-full (the default pbxgate sets) or "
		    "a Unix socket (host=/run/postgresql)", mode);
	else
		rc = 0;
	PQconninfoFree(o);
	return rc;
}

/* The URL as given, then what pbxgate insists on: later keywords win, so
 * the URL's own options (a search_path, say) are kept in front of ours.
 * verify-full is set whatever the URL says: libpq ignores sslmode on a
 * Unix socket, and a URL that names no host may still reach one over TCP
 * (PGHOST, PGHOSTADDR, a service file), where PGSSLMODE would otherwise
 * decide. GSSAPI encryption is off: libpq's default (prefer) would look
 * for Kerberos credentials first, listing /etc/gss/mech.d (getdents64, a
 * call the sandboxed child is killed for), and a GSSAPI-encrypted session
 * skips the TLS verification this store promises. */
PGconn *
auth_pg_connect(const struct auth_settings *s, const char *password,
    const char *application_name, bool start)
{
	static const char ours[] = "-c statement_timeout=" PG_TIMEOUT_S "s"
	    " -c lock_timeout=" PG_TIMEOUT_S "s";
	PQconninfoOption *o = PQconninfoParse(s->user_db, NULL);
	const char *k[9], *v[9];
	char *opts = NULL;
	PGconn *conn = NULL;
	int n = 0;

	if (o == NULL || asprintf(&opts, "%s %s", opt(o, "options"), ours) < 0)
		goto done;
	k[n] = "dbname", v[n++] = s->user_db;
	if (password != NULL)
		k[n] = "password", v[n++] = password;
	k[n] = "sslmode", v[n++] = "verify-full";
	k[n] = "gssencmode", v[n++] = "disable";
	k[n] = "connect_timeout", v[n++] = PG_TIMEOUT_S;
	k[n] = "options", v[n++] = opts;
	k[n] = "application_name", v[n++] = application_name;
	k[n] = NULL, v[n] = NULL;
	conn = start ? PQconnectStartParams(k, v, 1) : PQconnectdbParams(k, v, 1);
done:
	free(opts);
	if (o != NULL)
		PQconninfoFree(o);
	return conn;
}

int
auth_pg_password(const struct auth_settings *s, char *out, size_t outlen,
    char *err, size_t errlen)
{
	out[0] = '\0';
	if (s->user_db_password_file == NULL)
		return 0;
	return auth_store_pg_password(s->user_db_password_file, out, outlen, err,
	    errlen);
}

static void
pg_close(struct auth_ctx *c)
{
	if (pg(c) == NULL)
		return;
	PQfinish(pg(c)->conn);
	free(c->pg);
	c->pg = NULL;
}

/* c's own connection (c->pg), as application_name; pg_close frees it. */
static int
pg_connect(struct auth_ctx *c, const char *application_name, char *err,
    size_t errlen)
{
	char pw[AUTH_PG_PASSWORD_MAX];
	struct auth_pg *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->pg = p;
	if (auth_pg_password(&c->s, pw, sizeof(pw), err, errlen) < 0)
		return -1;
	p->conn = auth_pg_connect(&c->s, pw[0] != '\0' ? pw : NULL,
	    application_name, false);
	OPENSSL_cleanse(pw, sizeof(pw));
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
		one_line(p->err, sizeof(p->err), p->conn != NULL ?
		    PQerrorMessage(p->conn) : "out of memory");
		snprintf(err, errlen, "%s: cannot connect to PostgreSQL: %s",
		    c->s.user_db, p->err);
		return -1;
	}
	return 0;
}

static int
pg_open(struct auth_ctx *c, char *err, size_t errlen)
{
	if (pg_connect(c, "pbxgate", err, errlen) < 0)
		return -1;
	return migrate(c, err, errlen);
}

/* The lookups of auth_pg_users_known, in a READ ONLY transaction. */
static int
users_known(struct auth_ctx *c, const char *const *names, size_t n,
    bool *known, char *err, size_t errlen)
{
	int64_t version;

	if (exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
		goto fail;
	if (check_identity(c, &version, err, errlen) < 0)
		return -1;
	if (version == 0) {
		snprintf(err, errlen, "%s: holds no user store yet (pbxgate "
		    "creates it at its first start or `pbxgate user add`)",
		    c->s.user_db);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		PGresult *r = query(c, "SELECT 1 FROM users WHERE name = $1",
		    "t", names[i]);

		if (r == NULL)
			goto fail;
		known[i] = PQntuples(r) == 1;
		PQclear(r);
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: cannot read the users table: %s: %s",
	    c->s.user_db, pg_errmsg(c), pg_hint(c));
	return -1;
}

/* auth_users_known's PostgreSQL half (auth_store.h): a read-only
 * transaction, so a check beside running gateways is harmless. */
int
auth_pg_users_known(const struct auth_settings *s, const char *const *names,
    size_t n, bool *known, char *err, size_t errlen)
{
	struct auth_ctx *c = calloc(1, sizeof(*c));
	int rc = -1;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->s = *s;
	if (pg_connect(c, "pbxgate-check", err, errlen) == 0)
		rc = users_known(c, names, n, known, err, errlen);
	pg_close(c);
	free(c);
	return rc;
}

static int
pg_version(struct auth_ctx *c, int64_t *out)
{
	PGresult *r = query(c, AUTH_PG_VERSION_SQL, "");

	if (r == NULL)
		return -1;
	*out = PQntuples(r) == 1 ? col_i64(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

/* The NOTIFY rides on the bump's own statement: PostgreSQL delivers it at
 * commit, so no listener hears of a change it cannot read yet, and a bump
 * rolled back is never announced. */
static int
pg_bump_version(struct auth_ctx *c)
{
	char chan[AUTH_PG_CHANNEL_LEN];

	auth_pg_channel(c->store_id, chan);
	return change(c, "UPDATE meta SET v = v + 1 WHERE k = 'version'"
	    " RETURNING pg_notify($1::text, v::text)", "t", chan) < 0 ? -1 : 0;
}

void
auth_pg_channel(int64_t store_id, char out[AUTH_PG_CHANNEL_LEN])
{
	snprintf(out, AUTH_PG_CHANNEL_LEN, "pbxgate_store_%016" PRIx64,
	    (uint64_t)store_id);
}

/* The user's revoked rows go with the bump: every session made before it
 * carries the old epoch, which the cookie check now refuses by itself. */
static int
pg_bump_epoch(struct auth_ctx *c, int64_t uid, int64_t now)
{
	if (change(c, "UPDATE users SET epoch = epoch + 1, updated = $2::bigint"
	    " WHERE id = $1::bigint", "ii", uid, now) < 0 ||
	    change(c, "DELETE FROM sessions WHERE user_id = $1::bigint AND"
	    " revoked = 1", "i", uid) < 0)
		return -1;
	return pg_bump_version(c);
}

#define USER_COLS "SELECT id, name, email, admin, groups, pw, totp, totp_kid," \
	" totp_last, lockdown, disabled, epoch, created FROM users"

static int
pg_user_get(struct auth_ctx *c, const char *folded, int64_t id,
    struct auth_user *u)
{
	PGresult *r = folded != NULL ?
	    query(c, USER_COLS " WHERE name = $1::text", "t", folded) :
	    query(c, USER_COLS " WHERE id = $1::bigint", "i", id);
	int rc;

	memset(u, 0, sizeof(*u));
	if (r == NULL)
		return -1;
	if ((rc = PQntuples(r) == 1 ? 0 : 1) == 0) {
		u->id = col_i64(r, 0, 0);
		copy_text(u->name, sizeof(u->name), r, 0, 1);
		copy_text(u->email, sizeof(u->email), r, 0, 2);
		u->admin = col_i64(r, 0, 3) != 0;
		copy_text(u->groups, sizeof(u->groups), r, 0, 4);
		copy_text(u->pw, sizeof(u->pw), r, 0, 5);
		u->has_totp = copy_bytea(u->totp_sealed, sizeof(u->totp_sealed),
		    r, 0, 6);
		u->totp_kid = (uint32_t)col_i64(r, 0, 7);
		u->totp_last = col_i64(r, 0, 8);
		copy_text(u->lockdown, sizeof(u->lockdown), r, 0, 9);
		u->disabled = col_i64(r, 0, 10) != 0;
		u->epoch = (uint32_t)col_i64(r, 0, 11);
		u->created = col_i64(r, 0, 12);
	}
	PQclear(r);
	return rc;
}

int
auth_pg_users_decode(const PGresult *r, struct auth_mem_user **out, size_t *n)
{
	int rows = PQntuples(r);
	struct auth_mem_user *v;

	*n = 0;
	if (rows > AUTH_STORE_USERS_MAX)
		return AUTH_STORE_OVER_CAP;
	if ((v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v))) == NULL)
		return -1;
	for (int i = 0; i < rows; i++) {
		struct auth_mem_user *m = &v[i];

		m->id = col_i64(r, i, 0);
		m->epoch = (uint32_t)col_i64(r, i, 1);
		m->admin = col_i64(r, i, 2) != 0;
		m->disabled = col_i64(r, i, 3) != 0;
		copy_text(m->name, sizeof(m->name), r, i, 4);
		copy_text(m->groups, sizeof(m->groups), r, i, 5);
		copy_text(m->lockdown, sizeof(m->lockdown), r, i, 6);
	}
	*out = v, *n = (size_t)rows;
	return 0;
}

int
auth_pg_revoked_decode(const PGresult *r, uint8_t (**out)[16], size_t *n)
{
	int rows = PQntuples(r);
	uint8_t (*v)[16];

	*n = 0;
	if (rows > AUTH_STORE_REVOKED_MAX)
		return AUTH_STORE_OVER_CAP;
	if ((v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v))) == NULL)
		return -1;
	for (int i = 0; i < rows; i++) {
		const char *t = col_text(r, i, 0);

		if (auth_unhex(t, strlen(t), v[*n], 16) == 16)
			(*n)++;
	}
	*out = v;
	return 0;
}

void
auth_pg_counts_decode(const PGresult *r, long long *out)
{
	for (int i = 0; i < AUTH_GAUGES; i++)
		out[i] = col_i64(r, 0, i);
}

/* A decode's failure in words, as auth_pg_load_why() words it. */
static int
decode_err(struct auth_ctx *c, int rc, const char *what, long max)
{
	if (rc < 0)
		auth_pg_load_why(rc, what, max, pg(c)->err, sizeof(pg(c)->err));
	return rc;
}

static int
load_users(struct auth_ctx *c, struct auth_mem_user **out, size_t *n)
{
	PGresult *r = query(c, AUTH_PG_USERS_SQL, "i",
	    (int64_t)AUTH_STORE_USERS_MAX + 1);
	int rc;

	*n = 0;
	if (r == NULL)
		return -1;
	rc = auth_pg_users_decode(r, out, n);
	PQclear(r);
	return decode_err(c, rc, "users", AUTH_STORE_USERS_MAX);
}

static int
load_revoked(struct auth_ctx *c, uint8_t (**out)[16], size_t *n)
{
	PGresult *r = query(c, AUTH_PG_REVOKED_SQL, "i",
	    (int64_t)AUTH_STORE_REVOKED_MAX + 1);
	int rc;

	*n = 0;
	if (r == NULL)
		return -1;
	rc = auth_pg_revoked_decode(r, out, n);
	PQclear(r);
	return decode_err(c, rc, "revoked sessions", AUTH_STORE_REVOKED_MAX);
}

void
auth_pg_load_why(int rc, const char *what, long max, char *out,
    size_t outlen)
{
	if (rc == AUTH_STORE_OVER_CAP)
		snprintf(out, outlen, "more than %ld %s, the in-memory table's "
		    "bound: refused rather than cut short (see Known limits in "
		    "docs/auth.md)", max, what);
	else
		snprintf(out, outlen, "reading the %s: out of memory", what);
}

/* One snapshot, so users and revocations are of the same moment. */
static int
pg_load(struct auth_ctx *c, struct auth_mem_user **u, size_t *nu,
    uint8_t (**rv)[16], size_t *nr)
{
	int rc;

	*u = NULL, *rv = NULL;
	if ((rc = exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) < 0 ||
	    (rc = load_users(c, u, nu)) < 0 || (rc = load_revoked(c, rv, nr)) < 0) {
		pg_rollback(c);
		free(*u);
		*u = NULL;
		return rc == AUTH_STORE_OVER_CAP ? rc : -1;
	}
	pg_rollback(c);
	return 0;
}

/* ON CONFLICT rather than catching the unique violation: an error would
 * abort the caller's transaction. */
static int
pg_user_add(struct auth_ctx *c, const struct auth_user_new *n, int64_t *uid)
{
	PGresult *r;
	int64_t users;
	int rows;

	/* Adds are serialised by this lock (held to the end of the caller's
	 * transaction), so that two gateways' adds cannot both see room for
	 * one more: a store past the bound is refused by every load. */
	if (exec(c, "SELECT pg_advisory_xact_lock(7062786702)") < 0 ||
	    (r = query(c, "SELECT count(*) FROM users", "")) == NULL)
		return -1;
	users = col_i64(r, 0, 0);
	PQclear(r);
	if (users >= AUTH_STORE_USERS_MAX)
		return AUTH_STORE_FULL;
	r = query(c, "INSERT INTO users(name, email, admin, groups, pw,"
	    " created, updated) VALUES($1::text, $2::text, $3::int, $4::text,"
	    " $5::text, $6::bigint, $6::bigint) ON CONFLICT (name) DO NOTHING"
	    " RETURNING id", "ttitti", n->name, n->email, (int64_t)n->admin,
	    n->groups, n->pw, n->now);
	if (r == NULL)
		return -1;
	rows = PQntuples(r);
	if (rows == 1)
		*uid = col_i64(r, 0, 0);
	PQclear(r);
	if (rows == 0)
		return 1;
	return pg_bump_version(c);
}

static int
pg_user_set(struct auth_ctx *c, int64_t uid, enum auth_user_field f,
    const char *text)
{
	static const char *const sql[] = {
		[AUTH_UF_PW] = "UPDATE users SET pw = $2::text WHERE id = $1::bigint",
		[AUTH_UF_LOCKDOWN] =
		    "UPDATE users SET lockdown = $2::text WHERE id = $1::bigint",
		[AUTH_UF_TOTP_CLEAR] =
		    "UPDATE users SET totp = NULL, totp_kid = 0 WHERE id = $1::bigint",
		[AUTH_UF_RECOVERY_CLEAR] =
		    "DELETE FROM recovery WHERE user_id = $1::bigint",
		[AUTH_UF_DISABLED] =
		    "UPDATE users SET disabled = 1 WHERE id = $1::bigint",
		[AUTH_UF_ENABLED] =
		    "UPDATE users SET disabled = 0 WHERE id = $1::bigint",
		[AUTH_UF_DELETE] = "DELETE FROM users WHERE id = $1::bigint",
	};
	bool has_text = f == AUTH_UF_PW || f == AUTH_UF_LOCKDOWN;

	if ((size_t)f >= sizeof(sql) / sizeof(sql[0]))
		return -1;
	return as_rc(has_text ? change(c, sql[f], "it", uid, text) :
	    change(c, sql[f], "i", uid));
}

static int
pg_user_list(struct auth_ctx *c, auth_user_row_fn fn, void *arg)
{
	PGresult *r = query(c, "SELECT name, admin, disabled, (totp IS NOT NULL)"
	    "::int, (pw != '')::int, email, groups FROM users ORDER BY name", "");

	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct auth_user_row row = { .name = col_text(r, i, 0),
		    .admin = col_i64(r, i, 1) != 0,
		    .disabled = col_i64(r, i, 2) != 0,
		    .totp = col_i64(r, i, 3) != 0,
		    .pw_set = col_i64(r, i, 4) != 0,
		    .email = col_text(r, i, 5), .groups = col_text(r, i, 6) };

		fn(arg, &row);
	}
	PQclear(r);
	return 0;
}

static int
pg_user_enrolled(struct auth_ctx *c, int64_t uid, const char *phc,
    const uint8_t *sealed, size_t sealed_len, uint32_t kid, int64_t step,
    int64_t now)
{
	return as_rc(change(c, "UPDATE users SET pw = $2::text, totp = $3::bytea,"
	    " totp_kid = $4::bigint, totp_last = $5::bigint, updated = $6::bigint"
	    " WHERE id = $1::bigint", "itbiii", uid, phc, sealed, sealed_len,
	    (int64_t)kid, step, now));
}

static int
pg_pw_rehash(struct auth_ctx *c, int64_t uid, const char *phc, const char *old)
{
	return as_rc(change(c, "UPDATE users SET pw = $2::text WHERE id ="
	    " $1::bigint AND pw = $3::text", "itt", uid, phc, old));
}

static int
pg_totp_advance(struct auth_ctx *c, int64_t uid, int64_t step)
{
	return change(c, "UPDATE users SET totp_last = $2::bigint WHERE id ="
	    " $1::bigint AND totp_last < $2::bigint", "ii", uid, step);
}

static int
pg_recovery_use(struct auth_ctx *c, int64_t uid, const char *hash)
{
	return change(c, "UPDATE recovery SET used = 1 WHERE user_id = $1::bigint"
	    " AND hash = $2::text AND used = 0", "it", uid, hash);
}

static int
pg_recovery_clear(struct auth_ctx *c, int64_t uid)
{
	return as_rc(change(c, "DELETE FROM recovery WHERE user_id = $1::bigint",
	    "i", uid));
}

static int
pg_recovery_add(struct auth_ctx *c, int64_t uid, const char *hash)
{
	return as_rc(change(c, "INSERT INTO recovery(user_id, hash)"
	    " VALUES($1::bigint, $2::text)", "it", uid, hash));
}

static int
pg_enrol_add(struct auth_ctx *c, const char *hash, int64_t uid, int64_t expires)
{
	return as_rc(change(c, "INSERT INTO enrol(hash, user_id, expires)"
	    " VALUES($1::text, $2::bigint, $3::bigint)", "tii", hash, uid,
	    expires));
}

static int
pg_enrol_get(struct auth_ctx *c, const char *hash, int64_t now,
    struct auth_enrol_row *e)
{
	PGresult *r = query(c, "SELECT e.user_id, u.name, e.totp, e.totp_kid"
	    " FROM enrol e JOIN users u ON u.id = e.user_id WHERE e.hash ="
	    " $1::text AND e.used = 0 AND e.expires > $2::bigint AND"
	    " u.disabled = 0", "ti", hash, now);
	int rc;

	memset(e, 0, sizeof(*e));
	if (r == NULL)
		return -1;
	if ((rc = PQntuples(r) == 1 ? 0 : 1) == 0) {
		e->uid = col_i64(r, 0, 0);
		copy_text(e->name, sizeof(e->name), r, 0, 1);
		e->has_secret = copy_bytea(e->sealed, sizeof(e->sealed), r, 0, 2);
		e->kid = (uint32_t)col_i64(r, 0, 3);
	}
	PQclear(r);
	return rc;
}

static int
pg_enrol_set_totp(struct auth_ctx *c, const char *hash, const uint8_t *sealed,
    size_t sealed_len, uint32_t kid)
{
	return change(c, "UPDATE enrol SET totp = $2::bytea, totp_kid = $3::bigint"
	    " WHERE hash = $1::text AND used = 0", "tbi", hash, sealed, sealed_len,
	    (int64_t)kid);
}

static int
pg_enrol_use(struct auth_ctx *c, const char *hash)
{
	return change(c, "UPDATE enrol SET used = 1 WHERE hash = $1::text AND"
	    " used = 0", "t", hash);
}

static int
pg_pending_add(struct auth_ctx *c, const char *nonce, int64_t uid, int64_t now,
    int64_t expires)
{
	if (change(c, "DELETE FROM mfa_pending WHERE expires < $1::bigint", "i",
	    now) < 0)
		return -1;
	return as_rc(change(c, "INSERT INTO mfa_pending(nonce, user_id, expires)"
	    " VALUES($1::text, $2::bigint, $3::bigint)", "tii", nonce, uid,
	    expires));
}

static int
pg_pending_live(struct auth_ctx *c, const char *nonce, int64_t uid, int64_t now)
{
	PGresult *r = query(c, "SELECT 1 FROM mfa_pending WHERE nonce = $1::text"
	    " AND user_id = $2::bigint AND expires >= $3::bigint", "tii", nonce,
	    uid, now);
	int rc;

	if (r == NULL)
		return -1;
	rc = PQntuples(r) > 0 ? 1 : 0;
	PQclear(r);
	return rc;
}

static int
pg_pending_take(struct auth_ctx *c, const char *nonce, int64_t uid, int64_t now)
{
	return change(c, "DELETE FROM mfa_pending WHERE nonce = $1::text AND"
	    " user_id = $2::bigint AND expires >= $3::bigint", "tii", nonce, uid,
	    now);
}

static int
pg_session_add(struct auth_ctx *c, const struct auth_session_new_row *s)
{
	if (change(c, "DELETE FROM sessions WHERE created < $1::bigint", "i",
	    s->prune_before) < 0)
		return -1;
	return as_rc(change(c, "INSERT INTO sessions(sid, user_id, created, ip,"
	    " level, pid, epoch) VALUES($1::text, $2::bigint, $3::bigint,"
	    " $4::text, $5::int, $6::text, $7::bigint)", "tiititi", s->sid,
	    s->uid, s->created, s->ip, (int64_t)s->level, s->pid, s->epoch));
}

/* A revocation counts the user's revoked rows after its own (auth_revoke):
 * two at once under READ COMMITTED would each miss the other's row and
 * both stay under the bound. Locking the user's row first makes the second
 * wait for the first's commit, and its count, a statement of its own, sees
 * that row. Taken before the session row, in the order an epoch bump
 * takes them (user, then sessions), so the two never deadlock; NO KEY
 * UPDATE leaves a sign-in's foreign-key check (KEY SHARE) unblocked. */
static int
lock_user(struct auth_ctx *c, int64_t uid)
{
	return change(c, "SELECT 1 FROM users WHERE id = $1::bigint"
	    " FOR NO KEY UPDATE", "i", uid) < 0 ? -1 : 0;
}

static int
pg_session_revoke(struct auth_ctx *c, int64_t uid, const char *sid)
{
	if (lock_user(c, uid) < 0)
		return -1;
	return change(c, "UPDATE sessions SET revoked = 1 WHERE sid = $1::text"
	    " AND user_id = $2::bigint", "ti", sid, uid);
}

/* The session's user first, for lock_user(); a session never changes
 * user, and the UPDATE's own revoked = 0 settles a race with another
 * revocation of it. */
static int
pg_session_revoke_pid(struct auth_ctx *c, const char *pid, int64_t *uid)
{
	PGresult *r = query(c, "SELECT user_id FROM sessions WHERE"
	    " pid = $1::text AND revoked = 0", "t", pid);
	int64_t owner;
	int n;

	if (r == NULL)
		return -1;
	n = PQntuples(r);
	owner = n == 1 ? col_i64(r, 0, 0) : 0;
	PQclear(r);
	if (n != 1)
		return 0;
	if (lock_user(c, owner) < 0 ||
	    (r = query(c, "UPDATE sessions SET revoked = 1 WHERE pid = $1::text"
	    " AND user_id = $2::bigint AND revoked = 0 RETURNING user_id", "ti",
	    pid, owner)) == NULL)
		return -1;
	if ((n = PQntuples(r)) == 1)
		*uid = owner;
	PQclear(r);
	return n;
}

static int
pg_revoked_count(struct auth_ctx *c, int64_t uid, int64_t *n)
{
	PGresult *r = query(c, "SELECT count(*) FROM sessions WHERE"
	    " user_id = $1::bigint AND revoked = 1", "i", uid);

	if (r == NULL)
		return -1;
	*n = col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* Live as the SQLite backend defines it (see there). */
#define SESSION_SQL "SELECT s.sid, s.pid, u.name, s.ip, s.created, s.level" \
	" FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.revoked = 0" \
	" AND u.disabled = 0 AND (s.epoch = u.epoch OR s.epoch = 0) AND" \
	" s.created > $1::bigint AND ($2::bigint = 0 OR u.id = $2::bigint) AND" \
	" ($3::text IS NULL OR u.name = $3::text)"

static int
pg_session_list(struct auth_ctx *c, const struct auth_session_query *q,
    auth_session_row_fn fn, void *arg)
{
	static const char oldest[] = SESSION_SQL
	    " ORDER BY s.created, s.pid LIMIT $4::bigint";
	static const char newest[] = SESSION_SQL
	    " ORDER BY s.created DESC LIMIT $4::bigint";
	char lim[24];
	PGresult *r;

	snprintf(lim, sizeof(lim), "%d", q->limit);
	r = query(c, q->newest_first ? newest : oldest, "iitt", q->since, q->uid,
	    q->user, q->limit > 0 ? lim : NULL);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct auth_session_row row = { .sid = col_text(r, i, 0),
		    .pid = col_text(r, i, 1), .user = col_text(r, i, 2),
		    .ip = col_text(r, i, 3), .created = col_i64(r, i, 4),
		    .level = (int)col_i64(r, i, 5) };

		fn(arg, &row);
	}
	PQclear(r);
	return 0;
}

static int
pg_login_add(struct auth_ctx *c, int64_t uid, int64_t now, const char *ip,
    bool good)
{
	return as_rc(change(c, "INSERT INTO logins(user_id, time, ip, ok)"
	    " VALUES($1::bigint, $2::bigint, $3::text, $4::int)", "iiti", uid,
	    now, ip, (int64_t)good));
}

static int
pg_login_prune(struct auth_ctx *c, int64_t before)
{
	return as_rc(change(c, "DELETE FROM logins WHERE time < $1::bigint", "i",
	    before));
}

static int
pg_login_list(struct auth_ctx *c, int64_t uid, int limit, auth_login_row_fn fn,
    void *arg)
{
	PGresult *r = query(c, "SELECT time, ip, ok FROM logins WHERE user_id ="
	    " $1::bigint ORDER BY time DESC LIMIT $2::bigint", "ii", uid,
	    (int64_t)limit);

	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct auth_login_row row = { .time = col_i64(r, i, 0),
		    .ip = col_text(r, i, 1), .ok = col_i64(r, i, 2) != 0 };

		fn(arg, &row);
	}
	PQclear(r);
	return 0;
}

/* FOR UPDATE: inside the caller's transaction, a concurrent failure on
 * another gateway waits for this one's count instead of overwriting it. */
static int
pg_reg_get(struct auth_ctx *c, const char *key, struct auth_reg_row *g)
{
	PGresult *r = query(c, "SELECT failures, first, last, banned_until FROM"
	    " regulate WHERE key = $1::text FOR UPDATE", "t", key);

	memset(g, 0, sizeof(*g));
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		g->failures = col_i64(r, 0, 0);
		g->first = col_i64(r, 0, 1);
		g->last = col_i64(r, 0, 2);
		g->banned_until = col_i64(r, 0, 3);
	}
	PQclear(r);
	return 0;
}

static int
pg_reg_put(struct auth_ctx *c, const char *key, const struct auth_reg_row *g)
{
	return as_rc(change(c, "INSERT INTO regulate(key, failures, first, last,"
	    " banned_until) VALUES($1::text, $2::bigint, $3::bigint, $4::bigint,"
	    " $5::bigint) ON CONFLICT (key) DO UPDATE SET failures ="
	    " excluded.failures, first = excluded.first, last = excluded.last,"
	    " banned_until = excluded.banned_until", "tiiii", key, g->failures,
	    g->first, g->last, g->banned_until));
}

static int
pg_reg_del(struct auth_ctx *c, const char *key)
{
	return change(c, "DELETE FROM regulate WHERE key = $1::text", "t", key);
}

static int
pg_reg_prune(struct auth_ctx *c, int64_t now, int64_t last_before)
{
	return as_rc(change(c, "DELETE FROM regulate WHERE banned_until <"
	    " $1::bigint AND last < $2::bigint", "ii", now, last_before));
}

static int
pg_ban_list(struct auth_ctx *c, int64_t now, auth_ban_row_fn fn, void *arg)
{
	PGresult *r = query(c, "SELECT key, failures, banned_until FROM regulate"
	    " WHERE banned_until > $1::bigint ORDER BY key", "i", now);

	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct auth_ban_row row = { .key = col_text(r, i, 0),
		    .failures = col_i64(r, i, 1), .until = col_i64(r, i, 2) };

		fn(arg, &row);
	}
	PQclear(r);
	return 0;
}

/* One statement, so the four gauges are of the same moment. */
static int
pg_counts(struct auth_ctx *c, int64_t now, int64_t session_max, long long *out)
{
	_Static_assert(AUTH_GAUGES == 4, "AUTH_PG_COUNTS_SQL reads four gauges");
	PGresult *r = query(c, AUTH_PG_COUNTS_SQL, "ii", now, session_max);

	if (r == NULL)
		return -1;
	auth_pg_counts_decode(r, out);
	PQclear(r);
	return 0;
}

/* ---- copying a store (auth_migrate.c) ---- */

/* LOCK before the first query, which is when a REPEATABLE READ snapshot is
 * taken: the source's SHARE lock waits for writers that are under way and
 * then keeps new ones out (its reads stay open); the target's EXCLUSIVE
 * lock also keeps out gateways' FOR UPDATE reads of the counters. */
static int
pg_copy_begin(struct auth_ctx *c, bool target)
{
	struct auth_buf lock = { 0 };
	int rc = -1;

	auth_buf_add(&lock, "LOCK TABLE meta");
	for (int t = 0; t < AUTH_TBL_COUNT; t++)
		auth_buf_addf(&lock, ", %s", auth_tbls[t].name);
	auth_buf_addf(&lock, " IN %s MODE", target ? "EXCLUSIVE" : "SHARE");
	if (lock.oom)
		snprintf(pg(c)->err, sizeof(pg(c)->err), "out of memory");
	else if (exec(c, target ? "BEGIN" :
	    "BEGIN ISOLATION LEVEL REPEATABLE READ") == 0) {
		if ((rc = exec(c, lock.p)) < 0)
			pg_rollback(c);
	}
	auth_buf_free(&lock);
	return rc;
}

/* One row of a single-row-mode result to fn; the bytea columns are
 * unescaped for the call and wiped after it. */
static int
row_call(struct auth_ctx *c, const PGresult *r, const struct auth_tbl_def *d,
    auth_row_fn fn, void *arg)
{
	struct auth_val row[AUTH_TBL_COLS_MAX];
	unsigned char *bytes[AUTH_TBL_COLS_MAX] = { NULL };
	int ncols = (int)strlen(d->types), rc = 0;

	memset(row, 0, sizeof(row));
	for (int i = 0; i < ncols && rc == 0; i++) {
		struct auth_val *v = &row[i];

		v->null = PQgetisnull(r, 0, i);
		if (d->types[i] == 'i')
			v->i = col_i64(r, 0, i);
		else if (d->types[i] == 't')
			v->t = col_text(r, 0, i);
		else if (!v->null && (bytes[i] = PQunescapeBytea((const unsigned
		    char *)PQgetvalue(r, 0, i), &v->n)) == NULL) {
			snprintf(pg(c)->err, sizeof(pg(c)->err), "%s.%d: cannot "
			    "decode a bytea value", d->name, i + 1);
			rc = -1;
		} else
			v->b = bytes[i];
	}
	if (rc == 0)
		rc = fn(arg, row);
	for (int i = 0; i < ncols; i++)
		if (bytes[i] != NULL) {
			OPENSSL_cleanse(bytes[i], row[i].n);
			PQfreemem(bytes[i]);
		}
	return rc;
}

/* Single-row mode: a table of any size is read a row at a time. */
static int
pg_row_each(struct auth_ctx *c, enum auth_tbl t, auth_row_fn fn, void *arg)
{
	const struct auth_tbl_def *d = &auth_tbls[t];
	PGconn *conn = pg(c)->conn;
	char sql[AUTH_TBL_SQL_MAX];
	bool end = false;
	PGresult *r;
	int rc = 0;

	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY 1", d->cols,
	    d->name);
	if (strlen(d->types) > AUTH_TBL_COLS_MAX ||
	    !PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0)) {
		set_err(c, NULL);
		return -1;
	}
	if (!PQsetSingleRowMode(conn)) {
		set_err(c, NULL);
		rc = -1;
	}
	/* every result is read, even after a failure, to free the connection */
	while ((r = PQgetResult(conn)) != NULL) {
		ExecStatusType s = PQresultStatus(r);

		if (s == PGRES_SINGLE_TUPLE && rc == 0)
			rc = row_call(c, r, d, fn, arg);
		else if (s == PGRES_TUPLES_OK)
			end = true;
		else if (s != PGRES_SINGLE_TUPLE) {
			if (rc == 0)
				set_err(c, r);
			rc = -1;
		}
		PQclear(r);
	}
	return rc == 0 && end ? 0 : -1;
}

/* The INSERT of table t, prepared once per connection: parsing it for
 * each row took about half of a copy's time. */
static int
put_prepare(struct auth_ctx *c, enum auth_tbl t, char *name, size_t namelen)
{
	PGTransactionStatusType ts = PQtransactionStatus(pg(c)->conn);
	char sql[AUTH_TBL_SQL_MAX];
	PGresult *r;

	snprintf(name, namelen, "pbxgate_put_%s", auth_tbls[t].name);
	/* a reset (as exec_params would do) forgets what was prepared */
	if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR && live(c) < 0)
		return -1;
	if (pg(c)->put_ready[t])
		return 0;
	if (auth_tbl_insert_sql(t, '$', sql, sizeof(sql)) < 0)
		return -1;
	r = PQprepare(pg(c)->conn, name, sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_err(c, r);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	pg(c)->put_ready[t] = true;
	return 0;
}

static int
pg_row_put(struct auth_ctx *c, enum auth_tbl t, const struct auth_val *row)
{
	const char *types = auth_tbls[t].types;
	char name[64], num[AUTH_TBL_COLS_MAX][24];
	const char *val[AUTH_TBL_COLS_MAX];
	int len[AUTH_TBL_COLS_MAX], fmt[AUTH_TBL_COLS_MAX], n = 0;
	PGresult *r;
	bool one;

	if (put_prepare(c, t, name, sizeof(name)) < 0)
		return -1;
	for (; types[n] != '\0'; n++) {
		const struct auth_val *v = &row[n];

		len[n] = 0, fmt[n] = 0, val[n] = NULL;
		if (v->null)
			continue;
		if (types[n] == 'i') {
			snprintf(num[n], sizeof(num[n]), "%lld", (long long)v->i);
			val[n] = num[n];
		} else if (types[n] == 't')
			val[n] = v->t;
		else {
			val[n] = v->b != NULL ? (const char *)v->b : "";
			len[n] = (int)v->n, fmt[n] = 1;
		}
	}
	if ((r = exec_params(c, name, true, n, val, len, fmt)) == NULL)
		return -1;
	one = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	return one ? 0 : -1;
}

static int
pg_row_count(struct auth_ctx *c, enum auth_tbl t, int64_t *n)
{
	char sql[96];
	PGresult *r;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", auth_tbls[t].name);
	if ((r = query(c, sql, "")) == NULL)
		return -1;
	*n = col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* Rows put with their ids leave the BIGSERIAL sequences where they were:
 * the next user_add would take id 1 again. */
static int
pg_copy_done(struct auth_ctx *c)
{
	char sql[192];

	for (int t = 0; t < AUTH_TBL_COUNT; t++) {
		const char *name = auth_tbls[t].name;

		if (!auth_tbls[t].serial)
			continue;
		snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence("
		    "'%s', 'id'), coalesce(max(id), 0) + 1, false) FROM %s", name,
		    name);
		if (exec(c, sql) < 0)
			return -1;
	}
	return pg_bump_version(c);
}

static int
pg_store_id(struct auth_ctx *c, int64_t *out)
{
	PGresult *r = query(c, "SELECT v FROM meta WHERE k = 'store_id'", "");
	int rc;

	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
		*out = col_i64(r, 0, 0);
		rc = 0;
	} else
		rc = 1;
	PQclear(r);
	return rc;
}

static int
pg_store_id_put(struct auth_ctx *c, int64_t id)
{
	return change(c, "UPDATE meta SET v = $1::bigint WHERE k = 'store_id'",
	    "i", id) == 1 ? 0 : -1;
}

const struct auth_store_ops auth_store_pg = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.errmsg = pg_errmsg,
	.hint = pg_hint,
	.version = pg_version,
	.bump_version = pg_bump_version,
	.load = pg_load,
	.user_get = pg_user_get,
	.user_add = pg_user_add,
	.user_set = pg_user_set,
	.user_list = pg_user_list,
	.user_enrolled = pg_user_enrolled,
	.pw_rehash = pg_pw_rehash,
	.bump_epoch = pg_bump_epoch,
	.totp_advance = pg_totp_advance,
	.recovery_use = pg_recovery_use,
	.recovery_clear = pg_recovery_clear,
	.recovery_add = pg_recovery_add,
	.enrol_add = pg_enrol_add,
	.enrol_get = pg_enrol_get,
	.enrol_set_totp = pg_enrol_set_totp,
	.enrol_use = pg_enrol_use,
	.pending_add = pg_pending_add,
	.pending_live = pg_pending_live,
	.pending_take = pg_pending_take,
	.session_add = pg_session_add,
	.session_revoke = pg_session_revoke,
	.session_revoke_pid = pg_session_revoke_pid,
	.revoked_count = pg_revoked_count,
	.session_list = pg_session_list,
	.login_add = pg_login_add,
	.login_prune = pg_login_prune,
	.login_list = pg_login_list,
	.reg_get = pg_reg_get,
	.reg_put = pg_reg_put,
	.reg_del = pg_reg_del,
	.reg_prune = pg_reg_prune,
	.ban_list = pg_ban_list,
	.counts = pg_counts,
	.copy_begin = pg_copy_begin,
	.row_each = pg_row_each,
	.row_put = pg_row_put,
	.row_count = pg_row_count,
	.copy_done = pg_copy_done,
	.store_id = pg_store_id,
	.store_id_put = pg_store_id_put,
};
