/* test_mail_rules.c -- the rules file parser: what loads, and each bad
 * input with its exact FILE:LINE:COL message. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/mail.h"

Test(rules, shipped_file_loads)
{
	char err[1024];
	struct mail_rules *r = mail_rules_load(MAIL_RULES_FILE, NULL, err,
	    sizeof(err));

	cr_assert_not_null(r, "%s", err);
	cr_expect_geq(mail_rules_count(r), 10);
	mail_rules_free(r);
}

Test(rules, comments_blank_lines_and_all_keywords)
{
	const char *t = "# c\n\nnotice N\nrule a\n  kind attachment\n"
	    "  content_type ^image/\n  filename (?i)qr\n  min_size 2k\n"
	    "  header Subject welcome\n  action replace\n  notice qr gone\nend\n"
	    "rule b\n pattern x(?<secret>y)\n action reject\nend\n";
	char err[512];
	struct mail_rules *r = mail_rules_parse(t, strlen(t), "f", NULL, err,
	    sizeof(err));

	cr_assert_not_null(r, "%s", err);
	cr_expect_eq(mail_rules_count(r), 2);
	mail_rules_free(r);
}

Test(rules, missing_file_names_the_path)
{
	char err[512];

	cr_expect_null(mail_rules_load("/nonexistent/x.rules", NULL, err,
	    sizeof(err)));
	cr_expect_not_null(strstr(err, "/nonexistent/x.rules: cannot open"),
	    "%s", err);
}

/* A scrub_rules path that is not a regular file used to block in fopen
 * (FIFO) or read until the 4 MiB bound (/dev/zero): each is refused. */
static void
expect_not_regular(const char *path, const char *kind)
{
	char err[512], want[512];

	cr_expect_null(mail_rules_load(path, NULL, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: not a regular file (%s)", path, kind);
	cr_expect_str_eq(err, want);
}

Test(rules, not_regular_files_refused, .timeout = 10)
{
	char dir[] = "/tmp/pbxgate-rules-XXXXXX", fifo[64];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	expect_not_regular(fifo, "fifo");
	expect_not_regular(dir, "directory");
	expect_not_regular("/dev/zero", "character device");
	unlink(fifo);
	rmdir(dir);
}

struct bad {
	const char *name;
	const char *text;
	const char *error;	/* expected start of the message */
};

static const struct bad bad_cases[] = {
	{ "keyword_outside_rule", "pattern x\n",
	    "f:1:1: 'pattern' outside a rule" },
	{ "unclosed_rule", "rule a\n pattern x\n",
	    "f:2:1: rule 'a' (line 1) is not closed" },
	{ "no_pattern", "rule a\nend\n", "f:2:1: rule 'a' (line 1) has no "
	    "pattern" },
	{ "bad_regex_column", "rule a\n pattern ab(c\nend\n",
	    "f:2:14: bad pattern: missing closing parenthesis" },
	{ "bad_kind", "rule a\n kind blob\n pattern x\nend\n",
	    "f:2:7: 'blob': expected text, url or attachment" },
	{ "bad_action", "rule a\n pattern x\n action nuke\nend\n",
	    "f:3:9: 'nuke': expected replace, drop or reject" },
	{ "bad_name", "rule a b\n pattern x\nend\n", "f:1:6: rule names are" },
	{ "duplicate_name", "rule a\n pattern x\nend\nrule a\n pattern y\nend\n",
	    "f:4:6: rule 'a' already defined at line 1" },
	{ "nested_rule", "rule a\nrule b\n", "f:2:1: 'rule' inside rule 'a'" },
	{ "unknown_keyword", "rule a\n patern x\nend\n",
	    "f:2:1: unknown keyword 'patern' in rule 'a'" },
	{ "attachment_without_criteria", "rule a\n kind attachment\nend\n",
	    "f:3:1: attachment rule 'a' (line 1) needs" },
	{ "attachment_with_pattern",
	    "rule a\n kind attachment\n filename x\n pattern y\nend\n",
	    "f:5:1: attachment rule 'a' (line 1) cannot have a pattern" },
	{ "bad_size", "rule a\n kind attachment\n min_size 3x\nend\n",
	    "f:3:11: '3x': expected a size" },
	{ "header_without_regex", "rule a\n pattern x\n header Subject\nend\n",
	    "f:3:9: expected 'header NAME REGEX'" },
	{ "value_missing", "rule a\n pattern\nend\n", "f:2:2: 'pattern' needs "
	    "a value" },
	{ "nul_in_line", "rule a\n pattern x\0y\nend\n",
	    "f:2:1: line longer than" },
};

static size_t idx_rules_bad_input[64];

ParameterizedTestParameters(rules, bad_input)
{
	size_t n = sizeof(bad_cases) / sizeof(bad_cases[0]);

	for (size_t i = 0; i < n; i++)
		idx_rules_bad_input[i] = i;
	return cr_make_param_array(size_t, idx_rules_bad_input, n);
}

ParameterizedTest(size_t *ix, rules, bad_input)
{
	const struct bad *c = &bad_cases[*ix];
	char err[1024];
	size_t len = strlen(c->text);
	struct mail_rules *r;

	if (strcmp(c->name, "nul_in_line") == 0)
		len = 24;
	r = mail_rules_parse(c->text, len, "f", NULL, err, sizeof(err));
	cr_assert_null(r, "%s: loaded", c->name);
	cr_expect_eq(strncmp(err, c->error, strlen(c->error)), 0,
	    "%s: got '%s', want '%s...'", c->name, err, c->error);
}

Test(rules, every_error_is_counted)
{
	const char *t = "a\nb\nc\nd\ne\nf\ng\n";
	char err[2048];

	cr_assert_null(mail_rules_parse(t, strlen(t), "f", NULL, err,
	    sizeof(err)));
	cr_expect_not_null(strstr(err, "(7 errors in all)"), "%s", err);
}
