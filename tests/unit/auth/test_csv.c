/* test_csv.c -- auth_csv_rows: RFC 4180 records and the line each starts on. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth_priv.h"

/* Each record as "LINE:f1|f2|...[!err]" joined by newlines. */
struct got {
	char text[4096];
};

static void
collect(void *arg, unsigned line, char **f, size_t nf, const char *err)
{
	struct got *g = arg;
	size_t n = strlen(g->text);

	n += (size_t)snprintf(g->text + n, sizeof(g->text) - n, "%u:", line);
	for (size_t i = 0; i < nf && i < AUTH_CSV_FIELDS; i++)
		n += (size_t)snprintf(g->text + n, sizeof(g->text) - n, "%s%s",
		    i ? "|" : "", f[i]);
	if (nf > AUTH_CSV_FIELDS)
		n += (size_t)snprintf(g->text + n, sizeof(g->text) - n, "|+%zu",
		    nf - AUTH_CSV_FIELDS);
	if (err != NULL)
		n += (size_t)snprintf(g->text + n, sizeof(g->text) - n, "!%s", err);
	snprintf(g->text + n, sizeof(g->text) - n, "\n");
}

static int
parse(const char *in, size_t len, struct got *g, unsigned *bad)
{
	const char *why;

	memset(g, 0, sizeof(*g));
	return auth_csv_rows(in, len, collect, g, bad, &why);
}

struct ok_case {
	const char *name, *in, *want;
};

static const struct ok_case ok_cases[] = {
	{ "lf", "a,b\nc,d\n", "1:a|b\n2:c|d\n" },
	{ "crlf", "a,b\r\nc,d\r\n", "1:a|b\n2:c|d\n" },
	{ "no final newline", "a,b\nc,d", "1:a|b\n2:c|d\n" },
	{ "bom", "\xEF\xBB\xBFname,role\r\nx,y\r\n", "1:name|role\n2:x|y\n" },
	{ "quoted comma", "\"Doe, Jane\",user\n", "1:Doe, Jane|user\n" },
	{ "doubled quote", "\"say \"\"hi\"\"\",x\n", "1:say \"hi\"|x\n" },
	{ "newline in quotes", "a,\"l1\nl2\"\nb,c\n", "1:a|l1\nl2\n3:b|c\n" },
	{ "crlf in quotes", "\"l1\r\nl2\",x\r\nb\r\n", "1:l1\r\nl2|x\n3:b\n" },
	{ "blank lines skipped", "\na\n\r\n\nb\n", "2:a\n5:b\n" },
	{ "empty fields", "a,,,\n", "1:a|||\n" },
	{ "spaces kept", " a , b \n", "1: a | b \n" },
	{ "empty quoted", "\"\",x\n", "1:|x\n" },
	{ "more fields counted", "1,2,3,4,5,6,7,8,9,10\n", "1:1|2|3|4|5|6|7|8|+2\n" },
	{ "multiline record after blank", "\n\n\"a\nb\nc\",d\ne\n", "3:a\nb\nc|d\n6:e\n" },
};

Test(csv, records_and_lines)
{
	struct got g;
	unsigned bad;

	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];

		cr_expect_eq(parse(c->in, strlen(c->in), &g, &bad), 0, "%s", c->name);
		cr_expect_str_eq(g.text, c->want, "%s", c->name);
	}
}

struct bad_case {
	const char *name, *in;
	unsigned line;
};

/* Malformed quoting stops the parse at the record that holds it. */
static const struct bad_case bad_cases[] = {
	{ "unterminated quote", "a,b\n\"open,x\nc,d\n", 2 },
	{ "text after closing quote", "a\nb\n\"x\"y,z\n", 3 },
	{ "quote inside unquoted field", "a,b\"c\n", 1 },
	{ "unterminated at eof", "a\n\"x", 2 },
};

Test(csv, malformed_quoting)
{
	struct got g;
	unsigned bad;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];

		cr_expect_eq(parse(c->in, strlen(c->in), &g, &bad), -1, "%s", c->name);
		cr_expect_eq(bad, c->line, "%s: line %u", c->name, bad);
	}
}

Test(csv, nul_byte_is_an_error_of_its_record)
{
	struct got g;
	unsigned bad;

	cr_assert_eq(parse("a\nb\0c,d\ne\n", 10, &g, &bad), 0);
	cr_expect_str_eq(g.text, "1:a\n2:|d!NUL byte in a field\n3:e\n");
}

Test(csv, long_field_is_an_error_of_its_record)
{
	static char in[AUTH_CSV_FIELD_MAX + 64];
	struct got g;
	unsigned bad;

	memset(in, 'x', AUTH_CSV_FIELD_MAX + 1);
	memcpy(in + AUTH_CSV_FIELD_MAX + 1, ",y\nz\n", 6);
	cr_assert_eq(parse(in, strlen(in), &g, &bad), 0);
	cr_expect_str_eq(g.text, "1:|y!field longer than 1024 bytes\n2:z\n");
}
