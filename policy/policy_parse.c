/* policy_parse.c -- the policy language: files, lines, words, keywords and list files. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/policy_parse.h"

#define MAX_FILE_BYTES	(16u << 20)	/* a policy file */
#define MAX_LIST_BYTES	(256u << 20)	/* a list file (100k+ lines) */
#define MAX_WORDS	1024
#define MAX_INCLUDE	8
#define MAX_LIST_ERRORS	100

void
pol_diag(struct pol_loader *L, bool warning, const char *file, unsigned line,
    unsigned col, const char *fmt, ...)
{
	char msg[1024];
	char full[1400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(full, sizeof full, "%s:%u:%u: %s", file, line, col, msg);
	if (!warning)
		L->errors++;
	if (L->report != NULL)
		L->report(L->arg, warning, full);
}

const char *
pol_intern(struct pol_loader *L, const char *name)
{
	struct pol_policy *p = L->p;
	char **nf, *s;

	for (size_t i = 0; i < p->nfiles; i++)
		if (strcmp(p->files[i], name) == 0)
			return p->files[i];
	if ((s = strdup(name)) == NULL)
		return NULL;
	nf = reallocarray(p->files, p->nfiles + 1, sizeof *nf);
	if (nf == NULL) {
		free(s);
		return NULL;
	}
	p->files = nf;
	p->files[p->nfiles++] = s;
	return s;
}

/* Reads a whole regular file (bounded) and NUL-terminates it. */
static char *
slurp(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	char *buf;

	if (pol_file_read(path, max, &buf, len, NULL, err, errlen) == -1)
		return NULL;
	return buf;
}

/* Splits one line into words. A word starting with '"' runs to the next
 * unescaped '"' (\" and \\ are the only escapes; other backslashes stay,
 * so regex escapes survive). '#' at the start of a word begins a comment.
 * Words are written into `buf` (NUL-separated). Returns the word count or
 * -1 after reporting. `*textend` is where the words end (for explain). */
static int
split_words(struct pol_loader *L, const char *file, unsigned lineno,
    const char *line, size_t len, char *buf, struct pol_word *w,
    size_t *textend)
{
	size_t i = 0, o = 0;
	int n = 0;

	*textend = 0;
	while (i < len) {
		while (i < len && (line[i] == ' ' || line[i] == '\t' ||
		    line[i] == '\r'))
			i++;
		if (i == len || line[i] == '#')
			break;
		if (n == MAX_WORDS) {
			pol_diag(L, false, file, lineno, (unsigned)i + 1,
			    "more than %d words on one line", MAX_WORDS);
			return -1;
		}
		w[n].s = buf + o;
		w[n].col = (unsigned)i + 1;
		w[n].quoted = line[i] == '"';
		if (w[n].quoted) {
			size_t q = i++;

			w[n].col = (unsigned)i + 1;
			while (i < len && line[i] != '"') {
				if (line[i] == '\\' && i + 1 < len &&
				    (line[i + 1] == '"' || line[i + 1] == '\\'))
					i++;
				buf[o++] = line[i++];
			}
			if (i == len) {
				pol_diag(L, false, file, lineno, (unsigned)q + 1,
				    "unterminated quoted word (add the closing "
				    "'\"')");
				return -1;
			}
			i++;
		} else {
			while (i < len && line[i] != ' ' && line[i] != '\t' &&
			    line[i] != '\r')
				buf[o++] = line[i++];
		}
		buf[o++] = '\0';
		*textend = i;
		n++;
	}
	return n;
}

static int
parse_line(struct pol_loader *L, const char *file, unsigned lineno,
    const char *line, size_t len)
{
	struct pol_word *w;
	char *buf;
	size_t textend;
	int n, rc = 0;

	if (memchr(line, '\0', len) != NULL) {
		pol_diag(L, false, file, lineno, 1, "NUL byte in line");
		return -1;
	}
	if (L->words == NULL)
		L->words = calloc(MAX_WORDS, sizeof *L->words);
	w = L->words;
	buf = malloc(len + 1);
	if (w == NULL || buf == NULL) {
		pol_diag(L, false, file, lineno, 1, "out of memory");
		rc = -1;
	} else if ((n = split_words(L, file, lineno, line, len, buf, w,
	    &textend)) > 0) {
		rc = pol_directive(L, file, lineno, w, (size_t)n, line,
		    textend);
	}
	free(buf);
	return rc;
}

static void
dirname_of(const char *path, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, dirlen, ".");
	else if (slash == path)
		snprintf(dir, dirlen, "/");
	else
		snprintf(dir, dirlen, "%.*s", (int)(slash - path), path);
}

/* A path that does not fit becomes "" so that opening it fails (a cut
 * path could name another file). */
void
pol_resolve(const char *from_file, const char *name, char *out, size_t outlen)
{
	char dir[PATH_MAX];
	int n;

	if (name[0] == '/') {
		n = snprintf(out, outlen, "%s", name);
	} else {
		dirname_of(from_file, dir, sizeof dir);
		n = snprintf(out, outlen, "%s/%s", dir, name);
	}
	if (n < 0 || (size_t)n >= outlen)
		out[0] = '\0';
}

int
pol_parse_file(struct pol_loader *L, const char *path, const char *from_file,
    unsigned from_line, unsigned from_col)
{
	char err[256], real[PATH_MAX];
	const char *file;
	size_t len, start = 0;
	unsigned lineno = 0;
	char *text;

	if ((file = pol_intern(L, path)) == NULL) {
		pol_diag(L, false, path, 0, 0, "out of memory");
		return -1;
	}
	if (L->depth == MAX_INCLUDE) {
		pol_diag(L, false, from_file, from_line, from_col,
		    "includes nested deeper than %d", MAX_INCLUDE);
		return -1;
	}
	if (realpath(path, real) == NULL)
		snprintf(real, sizeof real, "%s", path);
	for (int i = 0; i < L->depth; i++) {
		if (L->stack[i] != NULL && strcmp(L->stack[i], real) == 0) {
			pol_diag(L, false, from_file, from_line, from_col,
			    "'%s' includes itself", path);
			return -1;
		}
	}
	if ((text = slurp(path, MAX_FILE_BYTES, &len, err, sizeof err)) == NULL) {
		if (from_file == NULL)
			pol_diag(L, false, path, 0, 0, "policy file: %s", err);
		else
			pol_diag(L, false, from_file, from_line, from_col,
			    "%s: %s", path, err);
		return -1;
	}
	L->stack[L->depth++] = strdup(real);
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		start = 3;	/* a UTF-8 byte order mark from an editor */
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;

		lineno++;
		parse_line(L, file, lineno, text + start, end - start);
		start = end + 1;
		if (nl == NULL)
			break;
	}
	free(L->stack[--L->depth]);
	free(text);
	return 0;
}

/* A list file: one CIDR a line, '#' comments, blank lines. */
int
pol_parse_list_file(struct pol_loader *L, struct pol_cidrset *set,
    const char *path, const char *from_file, unsigned from_line,
    unsigned from_col)
{
	char err[256];
	const char *file;
	size_t len, start = 0;
	unsigned lineno = 0, nerr = 0;
	char *text;

	if ((text = slurp(path, MAX_LIST_BYTES, &len, err, sizeof err)) == NULL) {
		pol_diag(L, false, from_file, from_line, from_col,
		    "%s: %s", path, err);
		return -1;
	}
	if ((file = pol_intern(L, path)) == NULL) {
		pol_diag(L, false, from_file, from_line, from_col, "out of "
		    "memory");
		free(text);
		return -1;
	}
	while (start < len) {
		char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		char *ls = text + start, *s = ls, *e = text + end, *hash, *sp;

		lineno++;
		start = end + 1;
		*e = '\0';
		if ((hash = strchr(s, '#')) != NULL)
			*hash = '\0', e = hash;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (s == e)
			continue;
		if ((sp = strpbrk(s, " \t")) != NULL) {
			while (*sp == ' ' || *sp == '\t')
				sp++;
			if (nerr++ < MAX_LIST_ERRORS)
				pol_diag(L, false, file, lineno,
				    (unsigned)(sp - ls) + 1, "one CIDR a line "
				    "expected, found '%s' after it", sp);
			continue;
		}
		if (pol_cidrset_add(set, s, err, sizeof err) == -1 &&
		    nerr++ < MAX_LIST_ERRORS)
			pol_diag(L, false, file, lineno, (unsigned)(s - ls) + 1,
			    "%s", err);
	}
	if (nerr > MAX_LIST_ERRORS)
		pol_diag(L, false, file, lineno, 1, "%u more errors in this "
		    "list file not shown", nerr - MAX_LIST_ERRORS);
	free(text);
	return 0;
}
