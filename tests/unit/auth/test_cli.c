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

Test(cli, import_csv)
{
	char csv[200], buf[4096];
	FILE *f;

	snprintf(csv, sizeof(csv), "%s/users.csv", t.dir);
	f = fopen(csv, "w");
	cr_assert_not_null(f);
	fputs("name,role,email,groups\ngina,admin,gina@example.com,ops;sales\nhank,,,\n", f);
	fclose(f);
	cr_expect_eq(RUN("", "user", "import", csv), 0);
	output(buf, sizeof(buf));
	cr_expect(strstr(buf, "gina,https://") != NULL, "%s", buf);
	cr_expect(strstr(buf, "hank,https://") != NULL, "%s", buf);
	f = fopen(csv, "w");
	fputs("ivy,king,,\n\"q\",user,,\n", f);
	fclose(f);
	cr_expect_eq(RUN("", "user", "import", csv), 1);
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
