/* test_smtp_cmd.c -- the SMTP command-line parser, one line per case. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>

#include <event2/buffer.h>
#include <string.h>

#include "mail/mail_priv.h"

struct cmd_case {
	const char    *line;
	enum smtp_verb verb;
	const char    *error;	/* NULL = accepted; else reply prefix */
	const char    *addr;
	unsigned long long size;
};

static const struct cmd_case cases[] = {
	{ "EHLO pbx.example.com", SMTP_V_EHLO, NULL, NULL, 0 },
	{ "ehlo x", SMTP_V_EHLO, NULL, NULL, 0 },
	{ "HELO x", SMTP_V_HELO, NULL, NULL, 0 },
	{ "STARTTLS", SMTP_V_STARTTLS, NULL, NULL, 0 },
	{ "QUIT", SMTP_V_QUIT, NULL, NULL, 0 },
	{ "XYZZY", SMTP_V_UNKNOWN, NULL, NULL, 0 },
	{ "MAIL FROM:<a@b.example>", SMTP_V_MAIL, NULL, "a@b.example", 0 },
	{ "mail from:<>", SMTP_V_MAIL, NULL, "", 0 },
	{ "MAIL FROM: <a@b>", SMTP_V_MAIL, NULL, "a@b", 0 },
	{ "MAIL FROM:<a@b> SIZE=12345 BODY=8BITMIME", SMTP_V_MAIL, NULL, "a@b",
	    12345 },
	{ "MAIL FROM:<a@b> AUTH=<>", SMTP_V_MAIL, NULL, "a@b", 0 },
	{ "MAIL FROM:a@b", SMTP_V_MAIL, "501 5.5.4 Syntax: address must", 0, 0 },
	{ "MAIL TO:<a@b>", SMTP_V_MAIL, "501 5.5.4 Syntax: MAIL FROM:", 0, 0 },
	{ "MAIL FROM:<a@b", SMTP_V_MAIL, "501 5.5.4 Syntax: missing '>'", 0, 0 },
	{ "MAIL FROM:<a@b> SIZE=x", SMTP_V_MAIL, "501 5.5.4 Syntax: SIZE", 0, 0 },
	{ "MAIL FROM:<a@b> SIZE=99999999999999999999999", SMTP_V_MAIL,
	    "501 5.5.4 Syntax: SIZE", 0, 0 },
	{ "MAIL FROM:<a@b> BODY=BINARYMIME", SMTP_V_MAIL, "501 5.5.4 Syntax: "
	    "BODY", 0, 0 },
	{ "MAIL FROM:<a@b> FOO=1", SMTP_V_MAIL, "555 5.5.4", 0, 0 },
	{ "MAIL FROM:<a@b>junk", SMTP_V_MAIL, "501 5.5.4 Syntax: unexpected",
	    0, 0 },
	{ "MAIL FROM:<a b@c>", SMTP_V_MAIL, "501 5.1.3 Address holds", 0, 0 },
	{ "MAIL FROM:<a<b@c>", SMTP_V_MAIL, "501 5.1.3 Address holds", 0, 0 },
	{ "MAIL FROM:<@relay:a@b>", SMTP_V_MAIL, "501 5.1.3 Source routes", 0,
	    0 },
	{ "RCPT TO:<u@example.com>", SMTP_V_RCPT, NULL, "u@example.com", 0 },
	{ "RCPT TO:<>", SMTP_V_RCPT, "501 5.1.3 Empty recipient", 0, 0 },
	{ "RCPT TO:<u@e> NOTIFY=NEVER", SMTP_V_RCPT, "555 5.5.4", 0, 0 },
	{ "RCPT FROM:<u@e>", SMTP_V_RCPT, "501 5.5.4 Syntax: RCPT TO:", 0, 0 },
	{ "NOOP \x01", SMTP_V_UNKNOWN, "500 5.5.2 Command holds control", 0, 0 },
	{ "RCPT TO:<\xc3\xa9@e>", SMTP_V_UNKNOWN, "500 5.5.2", 0, 0 },
};

static size_t idx_smtp_cmd_line[64];

ParameterizedTestParameters(smtp_cmd, line)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);

	for (size_t i = 0; i < n; i++)
		idx_smtp_cmd_line[i] = i;
	return cr_make_param_array(size_t, idx_smtp_cmd_line, n);
}

ParameterizedTest(size_t *ix, smtp_cmd, line)
{
	const struct cmd_case *c = &cases[*ix];
	char buf[600];
	struct smtp_cmd cmd;
	const char *e;

	snprintf(buf, sizeof(buf), "%s", c->line);
	e = smtp_cmd_parse(buf, &cmd);
	if (c->error == NULL) {
		cr_assert_null(e, "'%s': %s", c->line, e);
		cr_expect_eq(cmd.verb, c->verb, "'%s'", c->line);
		if (c->addr != NULL)
			cr_expect_str_eq(cmd.addr, c->addr);
		cr_expect_eq(cmd.size, c->size);
		return;
	}
	cr_assert_not_null(e, "'%s' accepted", c->line);
	cr_expect_eq(strncmp(e, c->error, strlen(c->error)), 0, "'%s': %s",
	    c->line, e);
}

Test(smtp_cmd, overlong_address_refused)
{
	char buf[600] = "RCPT TO:<";
	struct smtp_cmd cmd;

	memset(buf + 9, 'a', 300);
	snprintf(buf + 309, sizeof(buf) - 309, "@e>");
	cr_expect_str_eq(smtp_cmd_parse(buf, &cmd),
	    "501 5.1.3 Address longer than 256 characters");
}

Test(smtp_dot, stuffing_and_line_ends)
{
	struct evbuffer *b = evbuffer_new();
	const char in[] = ".a\nb\r\r\n.\r\nlast";
	const char want[] = "..a\r\nb\r\n\r\n..\r\nlast\r\n.\r\n";
	char out[64] = "";

	cr_assert_eq(smtp_dot_stuff(b, in, strlen(in)), 0);
	evbuffer_remove(b, out, sizeof(out) - 1);
	cr_expect_str_eq(out, want);
	evbuffer_free(b);
}
