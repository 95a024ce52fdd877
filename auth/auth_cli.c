/* auth_cli.c -- `pbxgate user ...` and `pbxgate hash`: the admin's tools. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "auth/auth_priv.h"


/* One line from stdin without the newline; never echoed or kept. */
static int
read_password(char *buf, size_t len)
{
	size_t n;

	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password (one line): ");
	if (fgets(buf, (int)len, stdin) == NULL) {
		fprintf(stderr, "pbxgate: no password on standard input\n");
		return -1;
	}
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n == len - 1) {
		fprintf(stderr, "pbxgate: password longer than %d bytes\n", AUTH_PW_MAX);
		return -1;
	}
	buf[n] = '\0';
	if (n < AUTH_PW_MIN) {
		fprintf(stderr, "pbxgate: password shorter than %d characters\n", AUTH_PW_MIN);
		return -1;
	}
	return 0;
}

static int
hash_stdin(const struct auth_settings *s, char phc[AUTH_PHC_MAX])
{
	char pw[AUTH_PW_MAX + 2], err[256];
	int rc;

	if (read_password(pw, sizeof(pw)) < 0) {
		OPENSSL_cleanse(pw, sizeof(pw));
		return -1;
	}
	rc = auth_pw_hash(s->argon2_m_kib, s->argon2_t, s->argon2_p, pw, strlen(pw),
	    phc, err, sizeof(err));
	OPENSSL_cleanse(pw, sizeof(pw));
	if (rc < 0)
		fprintf(stderr, "pbxgate: %s\n", err);
	return rc;
}

int
auth_cmd_hash(const struct auth_settings *s, int argc, char **argv)
{
	char phc[AUTH_PHC_MAX];

	if (argc != 1) {
		fprintf(stderr, "pbxgate hash: unexpected argument \"%s\"; the "
		    "password is read from standard input\n", argv[1]);
		return 2;
	}
	if (hash_stdin(s, phc) < 0)
		return 1;
	printf("%s\n", phc);
	return 0;
}

struct add_opts {
	const char *role, *email;
	char groups[AUTH_GROUPS_MAX + 1];
	bool enrol;
};

static int
check_group(const char *g)
{
	if (*g == '\0' || strlen(g) > 64)
		return -1;
	for (; *g != '\0'; g++)
		if (!((*g >= 'a' && *g <= 'z') || (*g >= 'A' && *g <= 'Z') ||
		    (*g >= '0' && *g <= '9') || strchr("._-", *g) != NULL))
			return -1;
	return 0;
}

static int
add_group(struct add_opts *o, const char *g)
{
	size_t n = strlen(o->groups);

	if (check_group(g) < 0) {
		fprintf(stderr, "pbxgate: bad group \"%s\": use letters, digits, . _ -\n", g);
		return -1;
	}
	if (n + strlen(g) + 1 > AUTH_GROUPS_MAX) {
		fprintf(stderr, "pbxgate: too many groups (at most %d bytes)\n", AUTH_GROUPS_MAX);
		return -1;
	}
	snprintf(o->groups + n, sizeof(o->groups) - n, "%s%s", n ? "," : "", g);
	return 0;
}

static int
check_email(const char *e)
{
	const char *at = strchr(e, '@');

	if (strlen(e) > 254 || at == NULL || at == e || at[1] == '\0' ||
	    strpbrk(e, " \t\r\n<>\",;") != NULL)
		return -1;
	return 0;
}

static int
parse_add(int argc, char **argv, struct add_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->role = "user";
	o->email = "";
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--enrol") == 0)
			o->enrol = true;
		else if (i + 1 >= argc) {
			fprintf(stderr, "pbxgate: unknown option or missing value: %s\n", a);
			return -1;
		} else if (strcmp(a, "--role") == 0) {
			o->role = argv[++i];
			if (strcmp(o->role, "admin") != 0 && strcmp(o->role, "user") != 0) {
				fprintf(stderr, "pbxgate: --role must be admin or user\n");
				return -1;
			}
		} else if (strcmp(a, "--email") == 0) {
			o->email = argv[++i];
			if (check_email(o->email) < 0) {
				fprintf(stderr, "pbxgate: bad e-mail address \"%s\"\n", o->email);
				return -1;
			}
		} else if (strcmp(a, "--group") == 0) {
			if (add_group(o, argv[++i]) < 0)
				return -1;
		} else {
			fprintf(stderr, "pbxgate: unknown option %s\n", a);
			return -1;
		}
	}
	return 0;
}

#define FULL_WHY_(n) "the store holds " #n " users, the most a gateway " \
	"keeps in memory; remove users first (pbxgate user del)"
#define FULL_WHY_X(n) FULL_WHY_(n)
#define FULL_WHY FULL_WHY_X(AUTH_STORE_USERS_MAX)

/* 0 added, 1 the name exists, AUTH_STORE_FULL, -1 a store error. */
static int
insert_user(struct auth_ctx *c, const char *name, const struct add_opts *o,
    const char *phc, int64_t *uid)
{
	struct auth_user_new n = { .name = name, .email = o->email,
	    .groups = o->groups, .pw = phc, .admin = strcmp(o->role, "admin") == 0,
	    .now = (int64_t)time(NULL) };

	return c->store->user_add(c, &n, uid);
}

static int
print_link(struct auth_ctx *c, const char *name, int64_t uid)
{
	char tok[65];

	if (c->s.public_url == NULL) {
		fprintf(stderr, "pbxgate: enrolment links need \"public_url https://HOST\" "
		    "in the config\n");
		return -1;
	}
	if (auth_enrol_token_new(c, uid, time(NULL), tok) < 0)
		return -1;
	printf("%s,%s%senrol?t=%s\n", name, c->s.public_url, AUTH_PREFIX, tok);
	OPENSSL_cleanse(tok, sizeof(tok));
	return 0;
}

/* Adds one user in its own transaction; link printed only after commit
 * succeeded would be nicer, but the token row is part of the transaction,
 * so a failed commit leaves no usable link either way. */
static int
add_one(struct auth_ctx *c, const char *name, const struct add_opts *o, const char *phc)
{
	char folded[AUTH_NAME_MAX + 1];
	int64_t uid = 0;
	int rc;

	if (auth_name_fold(name, folded) < 0) {
		fprintf(stderr, "pbxgate: bad user name \"%s\": 1-%d characters from "
		    "a-z 0-9 . _ @ - (ASCII only), starting with a letter or digit\n",
		    name, AUTH_NAME_MAX);
		return -1;
	}
	if (auth_store_begin(c) < 0)
		return -1;
	rc = insert_user(c, folded, o, phc, &uid);
	if (rc == 1)
		fprintf(stderr, "pbxgate: user \"%s\" already exists (names are compared "
		    "ignoring case)\n", folded);
	if (rc == AUTH_STORE_FULL)
		fprintf(stderr, "pbxgate: cannot add \"%s\": %s\n", folded, FULL_WHY);
	if (rc == 0 && o->enrol)
		rc = print_link(c, folded, uid);
	if (rc == 0 && auth_store_commit(c) == 0)
		return 0;
	/* the error, before ROLLBACK (which succeeds) replaces it */
	char why[512];
	snprintf(why, sizeof(why), "%s: %s", auth_store_errmsg(c),
	    auth_store_hint(c));
	auth_store_rollback(c);
	if (rc != 1 && rc != AUTH_STORE_FULL)
		fprintf(stderr, "pbxgate: cannot add \"%s\": %s\n", folded, why);
	return -1;
}

static int
cmd_add(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	struct add_opts o;
	char phc[AUTH_PHC_MAX] = "";

	if (argc < 2 || parse_add(argc, argv, &o) < 0)
		return 2;
	if (!o.enrol && hash_stdin(&c->s, phc) < 0)
		return 1;
	return add_one(c, argv[1], &o, phc) == 0 ? 0 : 1;
}

/* Changes one field of the user and bumps the epoch (or only the
 * version); one transaction. */
static int
change_user(struct auth_ctx *c, const char *name, enum auth_user_field f,
    const char *text, bool bump)
{
	char folded[AUTH_NAME_MAX + 1];
	struct auth_user u;
	int rc = -1;

	if (auth_name_fold(name, folded) < 0 || auth_user_get(c, folded, 0, &u) != 0) {
		fprintf(stderr, "pbxgate: no user \"%s\"\n", name);
		return -1;
	}
	if (auth_store_begin(c) < 0)
		goto out;
	rc = c->store->user_set(c, u.id, f, text);
	if (rc == 0)
		rc = bump ? auth_bump_epoch(c, u.id, time(NULL)) : auth_bump_version(c);
	if (rc == 0)
		rc = auth_store_commit(c);
out:
	if (rc < 0) {
		fprintf(stderr, "pbxgate: cannot change \"%s\": %s\n", folded,
		    auth_store_errmsg(c));
		auth_store_rollback(c);
	}
	return rc;
}

static int
cmd_passwd(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	const char *name = argv[1];
	char phc[AUTH_PHC_MAX];

	if (argc != 2)
		return 2;
	if (hash_stdin(&c->s, phc) < 0)
		return 1;
	return change_user(c, name, AUTH_UF_PW, phc, true) ? 1 : 0;
}

static int
cmd_lockdown(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	char list[AUTH_LOCKDOWN_MAX + 1] = "", err[200];
	size_t n = 0;

	if (argc == 3 && strcmp(argv[2], "--clear") == 0)
		return change_user(c, argv[1], AUTH_UF_LOCKDOWN, "", true) ? 1 : 0;
	if (argc < 4 || strcmp(argv[2], "--allow") != 0)
		return 2;
	for (int i = 3; i < argc; i++) {
		if (auth_cidr_list_check(argv[i], err, sizeof(err)) < 0 || strchr(argv[i], ' ') ||
		    n + strlen(argv[i]) + 1 > AUTH_LOCKDOWN_MAX) {
			fprintf(stderr, "pbxgate: lockdown: \"%s\": %s\n", argv[i],
			    "expected an address or CIDR such as 192.0.2.0/24 (list at most "
			    "1024 bytes)");
			return 1;
		}
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? " " : "", argv[i]);
	}
	return change_user(c, argv[1], AUTH_UF_LOCKDOWN, list, true) ? 1 : 0;
}

static int
cmd_totp_reset(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	const char *name = argv[1];
	char folded[AUTH_NAME_MAX + 1];
	struct auth_user u;

	if (argc != 2)
		return 2;
	if (change_user(c, name, AUTH_UF_TOTP_CLEAR, NULL, true) < 0)
		return 1;
	(void)change_user(c, name, AUTH_UF_RECOVERY_CLEAR, NULL, false);
	if (c->s.public_url == NULL)
		fprintf(stderr, "pbxgate: authenticator removed; set public_url in the "
		    "config to print an enrolment link for a new one\n");
	if (auth_name_fold(name, folded) == 0 && auth_user_get(c, folded, 0, &u) == 0 &&
	    c->s.public_url != NULL && auth_store_begin(c) == 0) {
		if (print_link(c, folded, u.id) == 0 && auth_store_commit(c) == 0)
			return 0;
		auth_store_rollback(c);
	}
	return 0;
}

static void
list_row(void *arg, const struct auth_user_row *r)
{
	json_t *a = arg;

	if (a != NULL) {
		json_array_append_new(a, json_pack("{s:s, s:s, s:b, s:b, s:b, s:s, s:s}",
		    "name", r->name, "role", r->admin ? "admin" : "user", "disabled",
		    r->disabled, "totp", r->totp, "password_set", r->pw_set, "email",
		    r->email, "groups", r->groups));
		return;
	}
	printf("%-24s %-5s %-8s %-4s %-8s %s\n", r->name, r->admin ? "admin" : "user",
	    r->disabled ? "disabled" : "enabled", r->totp ? "yes" : "no",
	    r->pw_set ? "set" : "enrol", r->email);
}

static int
cmd_list(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	json_t *a = NULL;
	char *out;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json") != 0))
		return 2;
	if (argc == 2 && (a = json_array()) == NULL)
		return 1;
	if (a == NULL)
		printf("%-24s %-5s %-8s %-4s %-8s %s\n", "NAME", "ROLE", "STATE", "TOTP",
		    "PASSWORD", "EMAIL");
	if (c->store->user_list(c, list_row, a) < 0) {
		fprintf(stderr, "pbxgate: cannot read users: %s\n", auth_store_errmsg(c));
		json_decref(a);
		return 1;
	}
	if (a == NULL)
		return 0;
	out = json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(a);
	if (out == NULL)
		return 1;
	printf("%s\n", out);
	free(out);
	return 0;
}

static int
cmd_show(void *arg, int argc, char **argv)
{
	struct auth_ctx *c = arg;
	const char *name = argv[1];
	char folded[AUTH_NAME_MAX + 1];
	struct auth_user u;

	if (argc != 2)
		return 2;
	if (auth_name_fold(name, folded) < 0 || auth_user_get(c, folded, 0, &u) != 0) {
		fprintf(stderr, "pbxgate: no user \"%s\"\n", name);
		return 1;
	}
	printf("name: %s\nrole: %s\nemail: %s\ngroups: %s\nstate: %s\npassword: %s\n"
	    "totp: %s\nlockdown: %s\nsession epoch: %u\n", u.name, u.admin ? "admin" : "user",
	    u.email, u.groups, u.disabled ? "disabled" : "enabled",
	    u.pw[0] ? "set" : "not set (enrolment pending)", u.has_totp ? "enrolled" : "none",
	    u.lockdown[0] ? u.lockdown : "(any address)", u.epoch);
	return 0;
}

/* ---- `user import`: one CSV file, one transaction ---- */

#define IMPORT_MAX       10000		/* users per file */
#define IMPORT_BYTES_MAX (8u << 20)	/* whole file, read at once */

struct import_row {
	unsigned line;
	char     name[AUTH_NAME_MAX + 1];
	char     tok[65];	/* enrolment token, printed after the commit */
};

struct import {
	struct auth_ctx   *c;
	const char        *file;
	struct import_row *rows;	/* IMPORT_MAX of them */
	size_t             n;
	unsigned           records, errors;
	time_t             now;
};

static void import_error(struct import *, unsigned, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* "FILE:LINE: message", counted: the import fails if there is any. */
static void
import_error(struct import *im, unsigned line, const char *fmt, ...)
{
	va_list ap;

	im->errors++;
	fprintf(stderr, "%s:%u: ", im->file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* role, email and groups of one record into o; -1 after saying why. */
static int
import_opts(struct import *im, unsigned line, char **f, size_t nf,
    struct add_opts *o)
{
	char *save = NULL;

	memset(o, 0, sizeof(*o));
	o->role = nf > 1 && *f[1] != '\0' ? f[1] : "user";
	o->email = nf > 2 ? f[2] : "";
	o->enrol = true;
	if (strcmp(o->role, "admin") != 0 && strcmp(o->role, "user") != 0) {
		import_error(im, line, "role \"%s\": expected admin or user (or "
		    "empty for user)", o->role);
		return -1;
	}
	if (*o->email != '\0' && check_email(o->email) < 0) {
		import_error(im, line, "bad e-mail address \"%s\"", o->email);
		return -1;
	}
	for (char *g = nf > 3 ? strtok_r(f[3], ";", &save) : NULL; g != NULL;
	    g = strtok_r(NULL, ";", &save)) {
		size_t n = strlen(o->groups);

		if (check_group(g) < 0 || n + strlen(g) + 1 > AUTH_GROUPS_MAX) {
			import_error(im, line, "group \"%s\": use letters, digits, "
			    ". _ - (groups at most %d bytes in all)", g, AUTH_GROUPS_MAX);
			return -1;
		}
		snprintf(o->groups + n, sizeof(o->groups) - n, "%s%s", n ? "," : "", g);
	}
	return 0;
}

/* The user of one record, inserted in the import's transaction. */
static void
import_user(struct import *im, unsigned line, const char *name,
    const struct add_opts *o)
{
	struct import_row *r = &im->rows[im->n];
	int64_t uid = 0;
	int rc;

	if (auth_name_fold(name, r->name) < 0) {
		import_error(im, line, "bad user name \"%s\": 1-%d characters from "
		    "a-z 0-9 . _ @ - (ASCII), starting with a letter or digit", name,
		    AUTH_NAME_MAX);
		return;
	}
	rc = insert_user(im->c, r->name, o, "", &uid);
	if (rc == AUTH_STORE_FULL) {
		import_error(im, line, "cannot add \"%s\": %s", r->name, FULL_WHY);
		return;
	}
	if (rc == 1) {
		for (size_t i = 0; i < im->n; i++)
			if (strcmp(im->rows[i].name, r->name) == 0) {
				import_error(im, line, "the same user as line %u (names "
				    "are compared ignoring case)", im->rows[i].line);
				return;
			}
		import_error(im, line, "user \"%s\" already exists", r->name);
		return;
	}
	if (rc < 0 || auth_enrol_token_new(im->c, uid, im->now, r->tok) < 0) {
		import_error(im, line, "cannot add the user: %s",
		    auth_store_errmsg(im->c));
		return;
	}
	r->line = line;
	im->n++;
}

/* One CSV record: name,role,email,groups (groups separated by ';'). A
 * first record naming the column "name" is a header; a record whose name
 * starts with '#' is a comment (no user name can). */
static void
import_record(void *arg, unsigned line, char **f, size_t nf, const char *err)
{
	struct import *im = arg;
	struct add_opts o;

	if (++im->records > IMPORT_MAX) {
		if (im->records == IMPORT_MAX + 1)
			import_error(im, line, "more than %d users in one file",
			    IMPORT_MAX);
		return;
	}
	if (err != NULL) {
		import_error(im, line, "%s", err);
		return;
	}
	if ((im->records == 1 && strcasecmp(f[0], "name") == 0) || f[0][0] == '#')
		return;
	if (nf > 4) {
		import_error(im, line, "%zu fields: expected name,role,email,groups "
		    "(quote a field that holds a comma)", nf);
		return;
	}
	if (f[0][0] == '\0') {
		import_error(im, line, "empty user name");
		return;
	}
	if (import_opts(im, line, f, nf, &o) == 0)
		import_user(im, line, f[0], &o);
}

/* The whole file in memory (bounded): libcsv is fed it line by line. */
static char *
import_read(const char *file, size_t *len)
{
	FILE *fp = fopen(file, "rb");
	char *buf;

	if (fp == NULL) {
		fprintf(stderr, "pbxgate: %s: cannot open: %m\n", file);
		return NULL;
	}
	if ((buf = malloc(IMPORT_BYTES_MAX + 1)) != NULL) {
		*len = fread(buf, 1, IMPORT_BYTES_MAX + 1, fp);
		if (ferror(fp) || *len > IMPORT_BYTES_MAX) {
			fprintf(stderr, "pbxgate: %s: %s\n", file, ferror(fp) ?
			    "read error" : "larger than 8 MiB: split the file");
			free(buf);
			buf = NULL;
		}
	}
	fclose(fp);
	return buf;
}

/* Prints name,link for every user once the transaction is committed. */
static void
import_print(struct import *im)
{
	for (size_t i = 0; i < im->n; i++)
		printf("%s,%s%senrol?t=%s\n", im->rows[i].name, im->c->s.public_url,
		    AUTH_PREFIX, im->rows[i].tok);
}

static int
import_file(struct import *im, const char *buf, size_t len)
{
	const char *why;
	unsigned bad;

	if (auth_store_begin(im->c) < 0) {
		fprintf(stderr, "pbxgate: %s: cannot start a transaction: %s\n",
		    im->file, auth_store_errmsg(im->c));
		return 1;
	}
	if (auth_csv_rows(buf, len, import_record, im, &bad, &why) < 0)
		import_error(im, bad, "%s", why);
	if (im->errors == 0 && im->n == 0) {
		fprintf(stderr, "pbxgate: %s: no users in the file\n", im->file);
		im->errors++;
	}
	if (im->errors == 0 && auth_store_commit(im->c) == 0) {
		import_print(im);
		return 0;
	}
	if (im->errors == 0)
		fprintf(stderr, "pbxgate: %s: cannot commit: %s\n", im->file,
		    auth_store_errmsg(im->c));
	auth_store_rollback(im->c);
	fprintf(stderr, "pbxgate: %s: nothing imported (%u error%s)\n",
	    im->file, im->errors ? im->errors : 1, im->errors == 1 ? "" : "s");
	return 1;
}

/* All or nothing: every record is checked and inserted in one transaction,
 * every bad line is reported, and links are printed only after the commit. */
static int
cmd_import(void *arg, int argc, char **argv)
{
	struct import im = { .c = arg, .file = argv[1], .now = time(NULL) };
	size_t len;
	char *buf;
	int rc;

	if (argc != 2)
		return 2;
	if (im.c->s.public_url == NULL) {
		fprintf(stderr, "pbxgate: user import prints enrolment links: set "
		    "\"public_url https://HOST\" in the config\n");
		return 1;
	}
	if ((buf = import_read(im.file, &len)) == NULL)
		return 1;
	if ((im.rows = calloc(IMPORT_MAX, sizeof(*im.rows))) == NULL) {
		free(buf);
		return 1;
	}
	rc = import_file(&im, buf, len);
	OPENSSL_cleanse(im.rows, IMPORT_MAX * sizeof(*im.rows));
	free(im.rows);
	free(buf);
	return rc;
}

static int
set_disabled(void *arg, int argc, char **argv, enum auth_user_field f)
{
	if (argc != 2)
		return 2;
	return change_user(arg, argv[1], f, NULL, true) ? 1 : 0;
}

static int
cmd_disable(void *arg, int argc, char **argv)
{
	return set_disabled(arg, argc, argv, AUTH_UF_DISABLED);
}

static int
cmd_enable(void *arg, int argc, char **argv)
{
	return set_disabled(arg, argc, argv, AUTH_UF_ENABLED);
}

static int
cmd_del(void *arg, int argc, char **argv)
{
	if (argc != 2)
		return 2;
	return change_user(arg, argv[1], AUTH_UF_DELETE, NULL, false) ? 1 : 0;
}

const struct cli_cmd auth_user_cmds[] = {
	{ "add", cmd_add, "NAME [--role admin|user] [--email E] [--group G]... [--enrol]",
	    "add a user; the password is read from standard input",
	    "  --enrol  no password: print an enrolment link (needs public_url)\n",
	    NULL, 0 },
	{ "import", cmd_import, "FILE.csv",
	    "add the users of a CSV file, all or none; prints enrolment links",
	    "  columns name,role,email,groups (RFC 4180 quoting; groups separated\n"
	    "  by ';'); a first line starting with \"name\" is a header\n", NULL, 0 },
	{ "passwd", cmd_passwd, "NAME", "set a password read from standard input",
	    NULL, NULL, 0 },
	{ "disable", cmd_disable, "NAME", "refuse the user's logins and end their sessions",
	    NULL, NULL, 0 },
	{ "enable", cmd_enable, "NAME", "allow a disabled user again", NULL, NULL, 0 },
	{ "del", cmd_del, "NAME", "delete a user", NULL, NULL, 0 },
	{ "show", cmd_show, "NAME", "print one user", NULL, NULL, 0 },
	{ "list", cmd_list, "[--json]", "print every user, one per line",
	    "  --json  one JSON array of {name, role, disabled, totp,\n"
	    "          password_set, email, groups}\n", NULL, 0 },
	{ "lockdown", cmd_lockdown, "NAME --allow CIDR... | NAME --clear",
	    "limit a user's sessions to source addresses, or lift the limit",
	    NULL, NULL, 0 },
	{ "totp-reset", cmd_totp_reset, "NAME",
	    "remove the user's authenticator and recovery codes", NULL, NULL, 0 },
	{ "migrate", auth_cmd_migrate, "--from STORE --to STORE",
	    "copy a whole user store into a new, empty one",
	    "  STORE is sqlite:FILE or postgresql://...; the source must exist,\n"
	    "  the target must be empty (a new SQLite file is created); every\n"
	    "  table is copied in one transaction and its rows counted on both\n"
	    "  sides; user_db_password_file gives a PostgreSQL password\n",
	    NULL, 0 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};

/* Opens the store only once the command words are known good, so that
 * a usage error neither needs nor creates it; one transaction lock for
 * the whole command. */
int
auth_cli_run(const struct auth_settings *s, const struct cli_cmd *tab,
    const char *prefix, int argc, char **argv)
{
	struct auth_ctx *c;
	char err[512];
	int rc;

	if (argc < 2)
		return cli_dispatch(tab, prefix, NULL, argc - 1, argv + 1);
	/* migrate opens the two stores it names, not the configured one */
	if (tab == auth_user_cmds && strcmp(argv[1], "migrate") == 0)
		return cli_dispatch(tab, prefix, (void *)s, argc - 1, argv + 1);
	if ((c = auth_open(s, NULL, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "pbxgate: %s\n", err);
		return 1;
	}
	pthread_mutex_lock(&c->db_mu);
	rc = cli_dispatch(tab, prefix, c, argc - 1, argv + 1);
	pthread_mutex_unlock(&c->db_mu);
	auth_close(c);
	return rc;
}

int
auth_cmd_user(const struct auth_settings *s, int argc, char **argv)
{
	return auth_cli_run(s, auth_user_cmds, "pbxgate user", argc, argv);
}
