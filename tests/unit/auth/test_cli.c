/* test_cli.c -- `pbxgate user ...` and `pbxgate hash`: exit codes and effects. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static struct th t;
static char outfile[200];

static void
setup(void)
{
	th_init(&t);
	snprintf(outfile, sizeof(outfile), "%s/out.txt", t.dir);
}

static void
teardown(void)
{
	th_fini(&t);
}

TestSuite(cli, .init = setup, .fini = teardown);

/* Runs `user ARGS` with `input` on stdin; stdout goes to outfile. */
static int
run(const char *input, int argc, char **argv)
{
	char in[200];
	FILE *f;
	int rc;

	snprintf(in, sizeof(in), "%s/in.txt", t.dir);
	f = fopen(in, "w");
	cr_assert_not_null(f);
	fputs(input ? input : "", f);
	fclose(f);
	cr_assert_not_null(freopen(in, "r", stdin));
	fflush(stdout);
	cr_assert_not_null(freopen(outfile, "w", stdout));
	rc = strcmp(argv[0], "hash") == 0 ? auth_cmd_hash(&t.s, argc, argv) :
	    auth_cmd_user(&t.s, argc, argv);
	fflush(stdout);
	return rc;
}

static void
output(char *buf, size_t len)
{
	FILE *f = fopen(outfile, "r");
	size_t n;

	cr_assert_not_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

#define RUN(input, ...) run(input, sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *), \
    (char *[]){ __VA_ARGS__ })

Test(cli, add_then_case_collision_refused)
{
	cr_expect_eq(RUN("correct horse battery\n", "user", "add", "Alice", "--role", "admin",
	    "--group", "sales", "--email", "alice@example.com"), 0);
	cr_expect_eq(RUN("correct horse battery\n", "user", "add", "alice"), 1);
	cr_expect_eq(RUN("", "user", "show", "ALICE"), 0);
	char buf[2048];
	output(buf, sizeof(buf));
	cr_expect(strstr(buf, "name: alice") != NULL, "%s", buf);
	cr_expect(strstr(buf, "role: admin") != NULL);
	cr_expect(strstr(buf, "groups: sales") != NULL);
}

Test(cli, add_bad_inputs)
{
	cr_expect_eq(RUN("short\n", "user", "add", "bob"), 1);
	cr_expect_eq(RUN("", "user", "add", "bob"), 1);
	cr_expect_eq(RUN("correct horse battery\n", "user", "add", "bob", "--role", "root"), 2);
	cr_expect_eq(RUN("correct horse battery\n", "user", "add", "b o b"), 1);
	cr_expect_eq(RUN("correct horse battery\n", "user", "add", "bob", "--email", "nope"), 2);
	cr_expect_eq(RUN("correct horse battery\n", "user", "add", "bob", "--bogus"), 2);
	cr_expect_eq(RUN("", "user", "frobnicate", "bob"), 2);
}

Test(cli, enrol_prints_one_time_link)
{
	char buf[1024];

	cr_assert_eq(RUN("", "user", "add", "carol", "--enrol"), 0);
	output(buf, sizeof(buf));
	cr_expect_eq(strncmp(buf, "carol,https://pbx.example.com/_pbxgate/enrol?t=", 47), 0, "%s", buf);
	cr_expect_eq(strlen(buf), 47 + 64 + 1);
}

Test(cli, passwd_disable_enable_del)
{
	cr_assert_eq(RUN("correct horse battery\n", "user", "add", "dave"), 0);
	cr_expect_eq(RUN("another long password\n", "user", "passwd", "dave"), 0);
	cr_expect_eq(RUN("", "user", "disable", "dave"), 0);
	cr_expect_eq(RUN("", "user", "enable", "dave"), 0);
	cr_expect_eq(RUN("", "user", "list"), 0);
	char buf[2048];
	output(buf, sizeof(buf));
	cr_expect(strstr(buf, "dave") != NULL);
	cr_expect_eq(RUN("", "user", "del", "dave"), 0);
	cr_expect_eq(RUN("", "user", "show", "dave"), 1);
	cr_expect_eq(RUN("", "user", "disable", "nobody"), 1);
}

Test(cli, lockdown_allow_and_clear)
{
	char buf[2048];

	cr_assert_eq(RUN("correct horse battery\n", "user", "add", "erin"), 0);
	cr_expect_eq(RUN("", "user", "lockdown", "erin", "--allow", "192.0.2.0/24",
	    "2001:db8::/48"), 0);
	cr_expect_eq(RUN("", "user", "show", "erin"), 0);
	output(buf, sizeof(buf));
	cr_expect(strstr(buf, "lockdown: 192.0.2.0/24 2001:db8::/48") != NULL, "%s", buf);
	cr_expect_eq(RUN("", "user", "lockdown", "erin", "--allow", "192.0.2.0/40"), 1);
	cr_expect_eq(RUN("", "user", "lockdown", "erin", "--allow"), 2);
	cr_expect_eq(RUN("", "user", "lockdown", "erin", "--clear"), 0);
}

Test(cli, epoch_bumped_by_changes)
{
	char buf[2048];

	cr_assert_eq(RUN("correct horse battery\n", "user", "add", "fred"), 0);
	cr_expect_eq(RUN("", "user", "disable", "fred"), 0);
	cr_expect_eq(RUN("", "user", "totp-reset", "fred"), 0);
	cr_expect_eq(RUN("", "user", "show", "fred"), 0);
	output(buf, sizeof(buf));
	cr_expect(strstr(buf, "session epoch: 3") != NULL, "%s", buf);
}

/* Writes users.csv (len bytes of text) and runs `user import` on it with
 * stderr in errfile; returns the exit status. */
static int
import(const char *text, size_t len, char *err, size_t errlen)
{
	char csv[200], errfile[200];
	FILE *f;
	size_t n;
	int rc;

	snprintf(csv, sizeof(csv), "%s/users.csv", t.dir);
	snprintf(errfile, sizeof(errfile), "%s/err.txt", t.dir);
	f = fopen(csv, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
	fflush(stderr);
	cr_assert_not_null(freopen(errfile, "w", stderr));
	rc = RUN("", "user", "import", csv);
	fflush(stderr);
	f = fopen(errfile, "r");
	cr_assert_not_null(f);
	n = fread(err, 1, errlen - 1, f);
	err[n] = '\0';
	fclose(f);
	return rc;
}

Test(cli, import_csv)
{
	static const char in[] = "\xEF\xBB\xBFname,role,email,groups\r\n"
	    "gina,admin,gina@example.com,ops;sales\r\n"
	    "hank,,,\r\n"
	    "\"ivy\",\"user\",\"ivy@example.com\",\"a;b\"\r\n"
	    "# a comment line\r\n";
	char buf[4096], err[1024];

	cr_expect_eq(import(in, sizeof(in) - 1, err, sizeof(err)), 0, "%s", err);
	output(buf, sizeof(buf));
	cr_expect(strncmp(buf, "gina,https://", 13) == 0, "%s", buf);
	cr_expect(strstr(buf, "\nhank,https://") != NULL, "%s", buf);
	cr_expect(strstr(buf, "\nivy,https://") != NULL, "%s", buf);
	cr_expect_eq(RUN("", "user", "show", "ivy"), 0);
	output(buf, sizeof(buf));
	cr_expect(strstr(buf, "groups: a,b\n") != NULL, "%s", buf);
	cr_expect(strstr(buf, "email: ivy@example.com\n") != NULL, "%s", buf);
}

/* One bad line among good ones: nothing is imported, the bad line is named
 * with its reason, exit 1. "ok1" and "ok2" are never added. */
struct bad_import {
	const char *name, *text, *want;
};

static const struct bad_import bad_imports[] = {
	{ "bad role", "ok1,,,\nivy,king,,\nok2\n",
	    ":2: role \"king\": expected admin or user (or empty for user)\n" },
	{ "bad email", "ok1\nivy,user,not-an-address,\nok2\n",
	    ":2: bad e-mail address \"not-an-address\"\n" },
	{ "bad group", "ok1\nivy,user,,ops;b@d\nok2\n",
	    ":2: group \"b@d\": use letters, digits, . _ - (groups at most 256 bytes in all)\n" },
	{ "bad name", "ok1\n-ivy\nok2\n",
	    ":2: bad user name \"-ivy\": 1-64 characters from a-z 0-9 . _ @ - (ASCII), "
	    "starting with a letter or digit\n" },
	{ "empty name", "ok1\n,user,,\nok2\n", ":2: empty user name\n" },
	{ "too many fields", "ok1\nivy,user,a@b.c,g,extra\nok2\n",
	    ":2: 5 fields: expected name,role,email,groups (quote a field that holds a comma)\n" },
	{ "unquoted comma in name", "ok1\nDoe, Jane,user,,\nok2\n",
	    ":2: 5 fields: expected name,role,email,groups (quote a field that holds a comma)\n" },
	{ "same user twice", "ok1\nIvy\nok2\nivy\n",
	    ":4: the same user as line 2 (names are compared ignoring case)\n" },
	{ "existing user", "ok1\nexisting\nok2\n", ":2: user \"existing\" already exists\n" },
	{ "unterminated quote", "ok1\nok2\n\"ivy,user\n",
	    ":3: malformed quoting (a quoted field must end with a quote followed by a "
	    "comma or the end of the line; a quote inside it is written twice)\n" },
	{ "text after quote", "ok1\n\"ivy\"x,user\nok2\n",
	    ":2: malformed quoting (a quoted field must end with a quote followed by a "
	    "comma or the end of the line; a quote inside it is written twice)\n" },
	{ "nul byte", "ok1\niv\0y\nok2\n", ":2: NUL byte in a field\n" },
	{ "spaces are kept", "ok1\n ivy ,user\nok2\n",
	    ":2: bad user name \" ivy \": 1-64 characters from a-z 0-9 . _ @ - (ASCII), "
	    "starting with a letter or digit\n" },
	{ "header only", "name,role,email,groups\n", NULL },
	{ "empty file", "", NULL },
};

Test(cli, import_bad_line_imports_nothing)
{
	char err[2048], want[1024];

	cr_assert_eq(RUN("correct horse battery\n", "user", "add", "existing"), 0);
	for (size_t i = 0; i < sizeof(bad_imports) / sizeof(bad_imports[0]); i++) {
		const struct bad_import *b = &bad_imports[i];
		size_t len = strlen(b->text);

		if (strcmp(b->name, "nul byte") == 0)
			len = 13;
		cr_expect_eq(import(b->text, len, err, sizeof(err)), 1, "%s", b->name);
		if (b->want != NULL) {
			snprintf(want, sizeof(want), "%s/users.csv%s", t.dir, b->want);
			cr_expect(strncmp(err, want, strlen(want)) == 0, "%s: %s", b->name, err);
			snprintf(want, sizeof(want), "pbxgate: %s/users.csv: nothing imported "
			    "(1 error)\n", t.dir);
		} else
			snprintf(want, sizeof(want), "pbxgate: %s/users.csv: no users in the "
			    "file\npbxgate: %s/users.csv: nothing imported (1 error)\n",
			    t.dir, t.dir);
		cr_expect(strstr(err, want) != NULL, "%s: %s", b->name, err);
		cr_expect_eq(RUN("", "user", "show", "ok1"), 1, "%s", b->name);
		cr_expect_eq(RUN("", "user", "show", "ok2"), 1, "%s", b->name);
		cr_expect_eq(RUN("", "user", "show", "ivy"), 1, "%s", b->name);
	}
}

/* Every bad line is listed, not only the first. */
Test(cli, import_lists_every_bad_line)
{
	char err[2048], want[2048];

	cr_expect_eq(import("ok1\nivy,king\nok2\njo,user,nope\n", 29, err, sizeof(err)), 1);
	snprintf(want, sizeof(want), "%s/users.csv:2: role \"king\": expected admin or "
	    "user (or empty for user)\n%s/users.csv:4: bad e-mail address \"nope\"\n"
	    "pbxgate: %s/users.csv: nothing imported (2 errors)\n", t.dir, t.dir, t.dir);
	cr_expect_str_eq(err, want);
	cr_expect_eq(RUN("", "user", "show", "ok1"), 1);
}

Test(cli, hash_prints_phc)
{
	char buf[512];

	cr_assert_eq(RUN("correct horse battery\n", "hash"), 0);
	output(buf, sizeof(buf));
	cr_expect_eq(strncmp(buf, "$argon2id$v=19$m=64,t=1,p=1$", 28), 0, "%s", buf);
	buf[strcspn(buf, "\n")] = '\0';
	cr_expect(auth_pw_verify(buf, "correct horse battery", 21));
	cr_expect_eq(RUN("correct horse battery\n", "hash", "extra"), 2);
}

/* The config options are main.c's: taken out before a module command
 * runs (tests/integration/test_auth.py::test_cli_config_option_anywhere),
 * so one reaching the user command is an unknown word, not a silent skip. */
Test(cli, config_option_is_not_the_modules)
{
	cr_expect_eq(RUN("", "user", "show", "jay", "--config", "/etc/x.conf"), 2);
	cr_expect_eq(RUN("correct horse battery\n", "hash", "-c", "/etc/x.conf"), 2);
}
