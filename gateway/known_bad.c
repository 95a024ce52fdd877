/* known_bad.c -- the lists of known-bad file hashes (`sha256sum` format)
 * and the request paths whose response bodies are checked against them. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "gateway/gw_priv.h"

#define KB_MAX_FILE    ((size_t)4 * 1024 * 1024)	/* bytes per list */
#define KB_MAX_ENTRIES 200000			/* hashes over every list */
#define KB_MAX_FILES   64

struct kb_entry {
	uint8_t  sha[GW_SHA256_LEN];
	uint32_t file;		/* index in files[] */
	uint32_t line;
};

struct gw_knownbad {
	struct kb_entry *v;
	size_t           n, cap;
	char            *files[KB_MAX_FILES];	/* names as given, for audits */
	size_t           nfiles;
};

/* What the default covers: the desktop app's installers and updates
 * (.msi and .nupkg under /electron/windows/, .dmg and .zip under
 * /electron/osx/) and the old /Electron/download tree; matched
 * caselessly, since a Windows PBX serves /Electron/ and /electron/ alike. */
static const char *const default_paths[] = { "/electron/" };

struct gw_knownbad *
gw_knownbad_new(void)
{
	return calloc(1, sizeof(struct gw_knownbad));
}

void
gw_knownbad_free(struct gw_knownbad *kb)
{
	if (kb == NULL)
		return;
	for (size_t i = 0; i < kb->nfiles; i++)
		free(kb->files[i]);
	free(kb->v);
	free(kb);
}

size_t
gw_knownbad_count(const struct gw_knownbad *kb)
{
	return kb == NULL ? 0 : kb->n;
}

struct kb_parse {
	struct gw_listfile  lf;
	struct gw_knownbad *kb;
	uint32_t            file;
};

static int
kb_add(struct kb_parse *p, const uint8_t *sha, size_t line)
{
	struct gw_knownbad *kb = p->kb;
	struct kb_entry *v = gw_listfile_grow(kb->v, &kb->cap, kb->n,
	    KB_MAX_ENTRIES, sizeof(*v));

	if (v == NULL)
		return -1;
	kb->v = v;
	memcpy(kb->v[kb->n].sha, sha, GW_SHA256_LEN);
	kb->v[kb->n].file = p->file;
	kb->v[kb->n].line = (uint32_t)line;
	kb->n++;
	return 0;
}

/* One line of `sha256sum` output: an optional '\' (GNU marks names it had
 * to escape so), 64 hex digits, a space, ' ' (text) or '*' (binary), and a
 * non-empty name, which only documents the entry. */
static void
kb_line(void *ctx, const char *s, size_t n, size_t lineno)
{
	struct kb_parse *p = ctx;
	uint8_t sha[GW_SHA256_LEN];
	size_t i = 0, j;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == n || s[i] == '#')
		return;		/* blank, or the comment that names an entry */
	if (s[i] == '\\')
		i++;
	for (j = 0; j < 2 * GW_SHA256_LEN; j++) {
		int hi = i + j < n ?
		    OPENSSL_hexchar2int((unsigned char)s[i + j]) : -1;
		if (hi < 0) {
			gw_listfile_error(&p->lf, lineno, i + j + 1, "expected "
			    "the 64 hex digits of a SHA-256, found %s after %zu",
			    i + j < n ? "another character" : "the line's end",
			    j);
			return;
		}
		if (j % 2 == 0)
			sha[j / 2] = (uint8_t)(hi << 4);
		else
			sha[j / 2] |= (uint8_t)hi;
	}
	i += 2 * GW_SHA256_LEN;
	if (i + 2 >= n || s[i] != ' ' || (s[i + 1] != ' ' && s[i + 1] != '*')) {
		gw_listfile_error(&p->lf, lineno, i + 1, "expected two spaces "
		    "(or a space and '*') and the file's name after the hash, "
		    "as sha256sum writes them");
		return;
	}
	if (kb_add(p, sha, lineno) < 0)
		gw_listfile_error(&p->lf, lineno, 1, "more than %d hashes in "
		    "all known_bad lists (or out of memory)", KB_MAX_ENTRIES);
}

int
gw_knownbad_parse(struct gw_knownbad *kb, const char *name, const char *data,
    size_t len, gw_kb_report report, void *arg)
{
	struct kb_parse p = { { name, report, arg, 0 }, kb, 0 };

	if (kb->nfiles == KB_MAX_FILES) {
		gw_listfile_error(&p.lf, 1, 1, "more than %d known_bad lists",
		    KB_MAX_FILES);
		return -1;
	}
	if ((kb->files[kb->nfiles] = strdup(name)) == NULL) {
		gw_listfile_error(&p.lf, 1, 1, "out of memory");
		return -1;
	}
	p.file = (uint32_t)kb->nfiles++;
	gw_listfile_lines(&p.lf, data, len, kb_line, &p);
	return p.lf.errors == 0 ? 0 : -1;
}

int
gw_knownbad_load(struct gw_knownbad *kb, const char *path,
    gw_kb_report report, void *arg)
{
	struct gw_listfile lf = { path, report, arg, 0 };
	char *data;
	size_t len;
	int r;

	if (gw_listfile_read(&lf, KB_MAX_FILE, "fix the path of known_bad or "
	    "the file's permissions", &data, &len) == -1)
		return -1;
	r = gw_knownbad_parse(kb, path, data, len, report, arg);
	pol_file_free(data, len);
	return r;
}

static int
kb_cmp(const void *a, const void *b)
{
	return memcmp(((const struct kb_entry *)a)->sha,
	    ((const struct kb_entry *)b)->sha, GW_SHA256_LEN);
}

/* Sorted for the lookup; a hash listed twice keeps its first entry. */
void
gw_knownbad_seal(struct gw_knownbad *kb)
{
	size_t o = 0;

	if (kb->n == 0)
		return;
	qsort(kb->v, kb->n, sizeof(kb->v[0]), kb_cmp);
	for (size_t i = 1; i < kb->n; i++)
		if (kb_cmp(&kb->v[o], &kb->v[i]) != 0)
			kb->v[++o] = kb->v[i];
	kb->n = o + 1;
}

bool
gw_knownbad_find(const struct gw_knownbad *kb, const uint8_t *sha,
    const char **file, unsigned *line)
{
	struct kb_entry key = { .file = 0 };
	const struct kb_entry *e;

	if (kb == NULL || kb->n == 0)
		return false;
	memcpy(key.sha, sha, GW_SHA256_LEN);
	e = bsearch(&key, kb->v, kb->n, sizeof(kb->v[0]), kb_cmp);
	if (e == NULL)
		return false;
	if (file != NULL)
		*file = kb->files[e->file];
	if (line != NULL)
		*line = e->line;
	return true;
}

static bool
prefix_caseless(const char *path, const char *prefix)
{
	return strncasecmp(path, prefix, strlen(prefix)) == 0;
}

bool
gw_knownbad_covers(const struct gw_config *cfg, const char *path)
{
	if (cfg->knownbad == NULL || gw_knownbad_count(cfg->knownbad) == 0 ||
	    path == NULL)
		return false;
	if (cfg->nknown_bad_paths == 0) {
		for (size_t i = 0; i < sizeof(default_paths) /
		    sizeof(default_paths[0]); i++)
			if (prefix_caseless(path, default_paths[i]))
				return true;
		return false;
	}
	for (size_t i = 0; i < cfg->nknown_bad_paths; i++)
		if (prefix_caseless(path, cfg->known_bad_paths[i]))
			return true;
	return false;
}
