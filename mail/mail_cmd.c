/* mail_cmd.c -- `pbxgate scrub`: run the scrub rules over one message read
 * from stdin, write the result to stdout and, with --explain, the hits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail.h"

#define EXIT_CLEAN    0
#define EXIT_SCRUBBED 1
#define EXIT_REJECTED 2
#define EXIT_ERROR    3

static const char *
action_name(enum mail_action a)
{
	return a == MAIL_ACT_DROP ? "drop" : a == MAIL_ACT_REJECT ? "reject" :
	    "replace";
}

static char *
read_all(FILE *f, size_t max, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);

	while (buf != NULL) {
		size_t r;
		if (n == cap) {
			char *nb;
			if (cap > max) {
				free(buf);
				return NULL;
			}
			nb = realloc(buf, cap * 2 + 1);
			if (nb == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (buf == NULL || ferror(f) || n > max) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static void
explain(const struct mail_scrub_result *res)
{
	if (res->message_id[0])
		fprintf(stderr, "message-id <%s>\n", res->message_id);
	if (res->nhits == 0)
		fprintf(stderr, "no rule matched\n");
	for (size_t i = 0; i < res->nhits; i++) {
		const struct mail_hit *h = &res->hits[i];
		fprintf(stderr, "rule %s (line %u) matched part %s %u time%s: "
		    "%s\n", h->rule, h->line, h->part, h->count,
		    h->count == 1 ? "" : "s", action_name(h->action));
	}
}

int
mail_cmd_scrub(const struct mail_settings *s, int argc, char **argv)
{
	bool want_explain = false;
	char err[1024];
	struct mail_rules *rs;
	struct mail_scrub_result res;
	enum mail_verdict v;
	size_t len = 0;
	char *msg;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--explain") == 0)
			want_explain = true;
		else {
			fprintf(stderr, "scrub: unknown argument '%s'; usage: "
			    "pbxgate scrub -c CONF [--explain] < in.eml > "
			    "out.eml\n", argv[i]);
			return EXIT_ERROR;
		}
	}
	if (s->scrub_rules == NULL) {
		fprintf(stderr, "scrub: the config has no scrub_rules line\n");
		return EXIT_ERROR;
	}
	rs = mail_rules_load(s->scrub_rules, s->scrub_notice, err, sizeof(err));
	if (rs == NULL) {
		fprintf(stderr, "%s\n", err);
		return EXIT_ERROR;
	}
	msg = read_all(stdin, s->max_size ? s->max_size : (1u << 30), &len);
	if (msg == NULL) {
		fprintf(stderr, "scrub: cannot read the message from stdin "
		    "(read error, out of memory or over smtp_max_size)\n");
		mail_rules_free(rs);
		return EXIT_ERROR;
	}
	/* Keep the input's line ends: CRLF if its first line has one. */
	const char *nl = memchr(msg, '\n', len);
	unsigned flags = nl && nl > msg && nl[-1] == '\r' ? MAIL_SCRUB_CRLF : 0;
	v = mail_scrub(rs, msg, len, flags, &res, err, sizeof(err));
	if (want_explain)
		explain(&res);
	switch (v) {
	case MAIL_SCRUB_CLEAN:
		rc = fwrite(msg, 1, len, stdout) == len ? EXIT_CLEAN : EXIT_ERROR;
		break;
	case MAIL_SCRUB_CHANGED:
		rc = fwrite(res.out, 1, res.outlen, stdout) == res.outlen ?
		    EXIT_SCRUBBED : EXIT_ERROR;
		break;
	case MAIL_SCRUB_REJECT:
		fprintf(stderr, "scrub: rejected by rule %s\n",
		    res.reject_rule);
		rc = EXIT_REJECTED;
		break;
	default:
		fprintf(stderr, "scrub: %s\n", err);
		rc = EXIT_ERROR;
		break;
	}
	if (fflush(stdout) != 0)
		rc = EXIT_ERROR;
	mail_scrub_result_free(&res);
	mail_rules_free(rs);
	free(msg);
	return rc;
}
