/* smtp_cmd.c -- parses one SMTP command line into a verb and, for MAIL and
 * RCPT, the address and ESMTP parameters (RFC 5321 4.1.1-4.1.2, RFC 1870,
 * RFC 6152). Pure: no I/O, so the fuzzer can drive it. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mail_priv.h"

static const struct {
	const char    *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_V_HELO }, { "EHLO", SMTP_V_EHLO },
	{ "STARTTLS", SMTP_V_STARTTLS }, { "AUTH", SMTP_V_AUTH },
	{ "MAIL", SMTP_V_MAIL }, { "RCPT", SMTP_V_RCPT },
	{ "DATA", SMTP_V_DATA }, { "RSET", SMTP_V_RSET },
	{ "NOOP", SMTP_V_NOOP }, { "QUIT", SMTP_V_QUIT },
	{ "VRFY", SMTP_V_VRFY }, { "EXPN", SMTP_V_EXPN },
	{ "HELP", SMTP_V_HELP }, { "BDAT", SMTP_V_BDAT },
};

/* An address as relayed verbatim to the smarthost: printable ASCII with no
 * space and no angle brackets, so it cannot smuggle a second command. */
static const char *
take_path(char **pp, char *out, bool allow_empty)
{
	char *p = *pp, *end;
	size_t n;

	if (*p == ' ')		/* "FROM: <a@b>" is common enough to accept */
		p++;
	if (*p != '<')
		return "501 5.5.4 Syntax: address must be in angle brackets";
	end = strchr(p + 1, '>');
	if (end == NULL)
		return "501 5.5.4 Syntax: missing '>' after the address";
	n = (size_t)(end - (p + 1));
	if (n == 0 && !allow_empty)
		return "501 5.1.3 Empty recipient address";
	if (n > SMTP_ADDR_MAX)
		return "501 5.1.3 Address longer than 256 characters";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[1 + i];
		if (c <= 0x20 || c >= 0x7f || c == '<')
			return "501 5.1.3 Address holds a character that is "
			    "not allowed (space, control, 8-bit or '<')";
	}
	/* A source route ("<@a,@b:u@c>") is obsolete (RFC 5321 C). */
	if (n > 0 && p[1] == '@')
		return "501 5.1.3 Source routes are not accepted";
	memcpy(out, p + 1, n);
	out[n] = '\0';
	*pp = end + 1;
	return NULL;
}

static const char *
mail_param(char *kv, struct smtp_cmd *c)
{
	char *v = strchr(kv, '=');
	char *end;
	unsigned long long n;

	if (v != NULL)
		*v++ = '\0';
	if (strcasecmp(kv, "SIZE") == 0 && v != NULL) {
		errno = 0;
		if (!isdigit((unsigned char)v[0]))
			return "501 5.5.4 Syntax: SIZE=<number>";
		n = strtoull(v, &end, 10);
		if (*end != '\0' || errno != 0 || strlen(v) > 20)
			return "501 5.5.4 Syntax: SIZE=<number>";
		c->size = n;
		return NULL;
	}
	if (strcasecmp(kv, "BODY") == 0 && v != NULL) {
		if (strcasecmp(v, "8BITMIME") == 0)
			c->body_8bit = true;
		else if (strcasecmp(v, "7BIT") != 0)
			return "501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME";
		return NULL;
	}
	/* RFC 4954 5: AUTH=<> or AUTH=addr is informational; ignored. */
	if (strcasecmp(kv, "AUTH") == 0 && v != NULL)
		return NULL;
	return "555 5.5.4 Unsupported MAIL parameter";
}

static const char *
parse_params(char *p, struct smtp_cmd *c, bool is_mail)
{
	unsigned count = 0;

	while (*p != '\0') {
		char *tok, save;
		const char *e;

		if (*p != ' ')
			return "501 5.5.4 Syntax: unexpected text after the "
			    "address";
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (++count > 8)
			return "501 5.5.4 Too many parameters";
		if (!is_mail)
			return "555 5.5.4 Unsupported RCPT parameter";
		tok = p;
		p += strcspn(p, " ");
		save = *p;
		*p = '\0';
		e = mail_param(tok, c);
		*p = save;
		if (e != NULL)
			return e;
	}
	return NULL;
}

static const char *
parse_mail_rcpt(char *arg, struct smtp_cmd *c)
{
	bool is_mail = c->verb == SMTP_V_MAIL;
	const char *kw = is_mail ? "FROM:" : "TO:";
	size_t kl = strlen(kw);
	const char *e;

	if (strncasecmp(arg, kw, kl) != 0)
		return is_mail ? "501 5.5.4 Syntax: MAIL FROM:<address>" :
		    "501 5.5.4 Syntax: RCPT TO:<address>";
	arg += kl;
	e = take_path(&arg, c->addr, is_mail);
	if (e != NULL)
		return e;
	return parse_params(arg, c, is_mail);
}

const char *
smtp_cmd_parse(char *line, struct smtp_cmd *c)
{
	size_t vl = strcspn(line, " ");
	char *arg = line + vl;

	memset(c, 0, sizeof(*c));
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return "500 5.5.2 Command holds control or 8-bit "
			    "characters";
	while (*arg == ' ')
		*arg++ = '\0';
	c->arg = arg;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (vl == strlen(verbs[i].name) &&
		    strncasecmp(line, verbs[i].name, vl) == 0)
			c->verb = verbs[i].verb;
	if (c->verb == SMTP_V_MAIL || c->verb == SMTP_V_RCPT)
		return parse_mail_rcpt(arg, c);
	return NULL;
}
