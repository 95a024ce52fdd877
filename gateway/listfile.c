/* listfile.c -- the line-oriented lists the config names (known_bad
 * lists, the integrity manifest): read with a bound, split into lines,
 * every error reported as FILE:LINE:COL. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

void
gw_listfile_error(struct gw_listfile *lf, size_t line, size_t col,
    const char *fmt, ...)
{
	char msg[GW_ERRLEN], full[GW_ERRLEN + 300];
	va_list ap;

	lf->errors++;
	if (lf->report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s:%zu:%zu: %s", lf->name, line, col, msg);
	lf->report(lf->arg, full);
}

/* A NUL byte is refused rather than passed on: every line handler works
 * on C strings in the end, and a list holding one is not a text file. */
void
gw_listfile_lines(struct gw_listfile *lf, const char *data, size_t len,
    gw_listfile_line_fn fn, void *ctx)
{
	size_t off = 0, lineno = 0;

	while (off < len) {
		const char *s = data + off, *nl = memchr(s, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - s) : len - off;
		const char *nul = memchr(s, '\0', n);

		off += n + (nl != NULL);
		lineno++;
		if (nul != NULL) {
			gw_listfile_error(lf, lineno, (size_t)(nul - s) + 1,
			    "NUL byte: not a text file");
			continue;
		}
		if (n > 0 && s[n - 1] == '\r')
			n--;
		fn(ctx, s, n, lineno);
	}
}

int
gw_listfile_read(struct gw_listfile *lf, size_t max, const char *hint,
    char **data, size_t *len)
{
	char err[GW_ERRLEN], msg[GW_ERRLEN + PATH_MAX + 200];

	if (pol_file_read(lf->name, max, data, len, NULL, err,
	    sizeof(err)) == 0)
		return 0;
	lf->errors++;
	snprintf(msg, sizeof(msg), "%s: %s (%s)", lf->name, err, hint);
	if (lf->report != NULL)
		lf->report(lf->arg, msg);
	return -1;
}

void *
gw_listfile_grow(void *v, size_t *cap, size_t n, size_t max, size_t size)
{
	size_t c;
	void *nv;

	if (n < *cap)
		return v;
	c = *cap == 0 ? 64 : *cap * 2;
	if (c > max)
		c = max;
	if (n >= c || (nv = reallocarray(v, c, size)) == NULL)
		return NULL;
	*cap = c;
	return nv;
}
