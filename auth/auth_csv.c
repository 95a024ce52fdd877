/* auth_csv.c -- RFC 4180 records of an import file, with the line each
 * record starts on: libcsv parses, this file bounds and locates. */
#include <string.h>

#include <csv.h>

#include "auth/auth_priv.h"

struct csv_state {
	auth_csv_row_fn      fn;
	void                *arg;
	char                *f[AUTH_CSV_FIELDS];	/* copies of this record's fields */
	size_t               nf;	/* fields seen, may exceed AUTH_CSV_FIELDS */
	const char          *err;	/* first problem of this record */
	unsigned             line;	/* line being fed */
	unsigned             start;	/* line the current record began on, 0 none */
	char                 buf[AUTH_CSV_FIELDS][AUTH_CSV_FIELD_MAX + 1];
};

/* RFC 4180: spaces belong to the field; what is judged is what is stored. */
static int
no_space(unsigned char c)
{
	return 0;
}

static void
on_field(void *s, size_t len, void *data)
{
	struct csv_state *st = data;
	size_t i = st->nf++;

	if (i >= AUTH_CSV_FIELDS)
		return;		/* counted; the caller says "too many" */
	if (len > AUTH_CSV_FIELD_MAX) {
		st->err = st->err ? st->err : "field longer than "
		    AUTH_CSV_FIELD_MAX_STR " bytes";
		len = 0;
	} else if (len > 0 && memchr(s, '\0', len) != NULL) {
		st->err = st->err ? st->err : "NUL byte in a field";
		len = 0;
	}
	if (len > 0)
		memcpy(st->buf[i], s, len);
	st->buf[i][len] = '\0';
	st->f[i] = st->buf[i];
}

static void
on_record(int term, void *data)
{
	struct csv_state *st = data;

	st->fn(st->arg, st->start ? st->start : st->line, st->f,
	    st->nf, st->err);
	st->nf = 0;
	st->err = NULL;
	st->start = 0;
}

/* A line that is only a line ending starts no record (libcsv skips it). */
static bool
blank(const char *p, size_t n)
{
	return n == 0 || (n == 1 && p[0] == '\n') ||
	    (n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\r');
}

/* Feeds the parser one physical line at a time, so that each record knows
 * the line it started on even when a quoted field spans lines. */
static int
feed(struct csv_parser *p, struct csv_state *st, const char *buf, size_t len)
{
	const char *end = buf + len, *nl;

	while (buf < end) {
		nl = memchr(buf, '\n', (size_t)(end - buf));
		size_t n = nl != NULL ? (size_t)(nl - buf) + 1 : (size_t)(end - buf);

		st->line++;
		if (st->start == 0 && !blank(buf, n))
			st->start = st->line;
		if (csv_parse(p, buf, n, on_field, on_record, st) != n)
			return -1;
		buf += n;
	}
	return 0;
}

int
auth_csv_rows(const char *buf, size_t len, auth_csv_row_fn fn, void *arg,
    unsigned *bad_line, const char **why)
{
	struct csv_parser p;
	struct csv_state *st;
	int rc = 0;

	*bad_line = 0;
	*why = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
		free(st);
		*why = "out of memory";
		return -1;
	}
	st->fn = fn;
	st->arg = arg;
	csv_set_space_func(&p, no_space);
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
		buf += 3;	/* the UTF-8 BOM spreadsheets write */
		len -= 3;
	}
	if (feed(&p, st, buf, len) < 0 ||
	    csv_fini(&p, on_field, on_record, st) != 0) {
		*bad_line = st->start ? st->start : st->line;
		*why = csv_error(&p) == CSV_EPARSE ? "malformed quoting (a quoted "
		    "field must end with a quote followed by a comma or the end "
		    "of the line; a quote inside it is written twice)" :
		    "out of memory";
		rc = -1;
	}
	csv_free(&p);
	free(st);
	return rc;
}
