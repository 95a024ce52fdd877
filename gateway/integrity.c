/* integrity.c -- the integrity manifest (what the PBX served to browsers
 * when it was recorded: path, size, SHA-256, content type) and the path
 * prefixes under which every file must be in it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "gateway/gw_priv.h"

#define PIN_MAX_FILE    ((size_t)8 * 1024 * 1024)	/* manifest bytes */
#define PIN_MAX_ENTRIES 100000
#define PIN_MAX_PATH    2048
#define PIN_MAX_TYPE    255
#define PIN_MAX_SIZE    ((uint64_t)1 << 40)	/* 1 TiB: no client file is larger */

struct gw_pins {
	struct gw_pin *v;
	size_t         n, cap;
	char          *file;	/* the manifest's name, for audits */
};

struct pin_parse {
	struct gw_listfile lf;
	struct gw_pins    *pins;
};

struct gw_pins *
gw_pins_new(void)
{
	return calloc(1, sizeof(struct gw_pins));
}

void
gw_pins_free(struct gw_pins *pins)
{
	if (pins == NULL)
		return;
	for (size_t i = 0; i < pins->n; i++) {
		free(pins->v[i].path);
		free(pins->v[i].type);
	}
	free(pins->v);
	free(pins->file);
	free(pins);
}

size_t
gw_pins_count(const struct gw_pins *pins)
{
	return pins == NULL ? 0 : pins->n;
}

const struct gw_pin *
gw_pins_entry(const struct gw_pins *pins, size_t i)
{
	return pins == NULL || i >= pins->n ? NULL : &pins->v[i];
}

const char *
gw_pins_file(const struct gw_pins *pins)
{
	return pins == NULL || pins->file == NULL ? "" : pins->file;
}

/* The manifest is written lower-case: one spelling. */
static int
lower_hex(char c)
{
	return c >= 'A' && c <= 'F' ? -1 : OPENSSL_hexchar2int((unsigned char)c);
}

/* A field: the bytes up to the next space (or the line's end). */
static size_t
field_end(const char *s, size_t i, size_t n)
{
	while (i < n && s[i] != ' ')
		i++;
	return i;
}

static bool
visible(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return n > 0;
}

static int
pin_add(struct pin_parse *p, const struct gw_pin *e)
{
	struct gw_pins *pins = p->pins;
	struct gw_pin *v = gw_listfile_grow(pins->v, &pins->cap, pins->n,
	    PIN_MAX_ENTRIES, sizeof(*v));

	if (v == NULL)
		return -1;
	pins->v = v;
	pins->v[pins->n++] = *e;
	return 0;
}

static bool
pin_hash(struct pin_parse *p, const char *s, size_t n, size_t lineno,
    uint8_t *sha)
{
	for (size_t j = 0; j < 2 * GW_SHA256_LEN; j++) {
		int h = j < n ? lower_hex(s[j]) : -1;
		if (h < 0) {
			gw_listfile_error(&p->lf, lineno, j + 1, "expected the "
			    "64 lower-case hex digits of a SHA-256, found %s "
			    "after %zu", j < n ? "another character" :
			    "the line's end", j);
			return false;
		}
		if (j % 2 == 0)
			sha[j / 2] = (uint8_t)(h << 4);
		else
			sha[j / 2] |= (uint8_t)h;
	}
	if (n > 2 * GW_SHA256_LEN && s[2 * GW_SHA256_LEN] == ' ')
		return true;
	gw_listfile_error(&p->lf, lineno, 2 * GW_SHA256_LEN + 1, "expected one "
	    "space and the size after the hash");
	return false;
}

static bool
pin_size(struct pin_parse *p, const char *s, size_t i, size_t e,
    size_t lineno, uint64_t *size)
{
	uint64_t v = 0;

	if (i == e || (s[i] == '0' && e - i > 1)) {
		gw_listfile_error(&p->lf, lineno, i + 1, "expected the size in "
		    "bytes (a decimal number without leading zeros)");
		return false;
	}
	for (size_t k = i; k < e; k++) {
		if (s[k] < '0' || s[k] > '9' || v > PIN_MAX_SIZE / 10) {
			gw_listfile_error(&p->lf, lineno, k + 1, "the size "
			    "must be a decimal number of bytes up to 2^40");
			return false;
		}
		v = v * 10 + (uint64_t)(s[k] - '0');
	}
	if (v > PIN_MAX_SIZE) {
		gw_listfile_error(&p->lf, lineno, i + 1, "the size must be at "
		    "most 2^40");
		return false;
	}
	*size = v;
	return true;
}

/* HASH SIZE PATH TYPE: one space between fields; PATH starts with '/' and
 * has no space or control byte; TYPE is the rest of the line. */
static void
pin_line(void *ctx, const char *s, size_t n, size_t lineno)
{
	struct pin_parse *p = ctx;
	struct gw_pin e = { .line = (uint32_t)lineno };
	size_t i, j;

	if (n == 0 || s[0] == '#')
		return;
	if (!pin_hash(p, s, n, lineno, e.sha))
		return;
	i = 2 * GW_SHA256_LEN + 1;
	j = field_end(s, i, n);
	if (!pin_size(p, s, i, j, lineno, &e.size))
		return;
	i = j + 1;
	j = field_end(s, i, n);
	if (i >= n || s[i] != '/' || j - i > PIN_MAX_PATH ||
	    !visible(s + i, j - i)) {
		gw_listfile_error(&p->lf, lineno, i + 1, "expected one space "
		    "and the path (starting with /, printable ASCII, at most "
		    "%d bytes)", PIN_MAX_PATH);
		return;
	}
	if (j + 1 >= n || n - j - 1 > PIN_MAX_TYPE) {
		gw_listfile_error(&p->lf, lineno, j + 1, "expected one space "
		    "and the content type (at most %d bytes; \"-\" when none "
		    "was given)", PIN_MAX_TYPE);
		return;
	}
	for (size_t k = j + 1; k < n; k++)
		if ((unsigned char)s[k] < 0x20 || (unsigned char)s[k] >= 0x7f) {
			gw_listfile_error(&p->lf, lineno, k + 1, "control or "
			    "non-ASCII byte in the content type");
			return;
		}
	if ((e.path = strndup(s + i, j - i)) == NULL ||
	    (e.type = strndup(s + j + 1, n - j - 1)) == NULL ||
	    pin_add(p, &e) < 0) {
		free(e.path);
		free(e.type);
		gw_listfile_error(&p->lf, lineno, 1, "more than %d entries (or "
		    "out of memory)", PIN_MAX_ENTRIES);
	}
}

static int
pin_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct gw_pin *)a)->path,
	    ((const struct gw_pin *)b)->path);
}

/* Sorted for the lookup. A path listed twice (in any case: a Windows PBX
 * serves /A and /a alike) is an error, as which hash holds is unclear. */
static void
pin_seal(struct pin_parse *p)
{
	struct gw_pins *pins = p->pins;

	if (pins->n == 0)
		return;
	qsort(pins->v, pins->n, sizeof(pins->v[0]), pin_cmp);
	for (size_t i = 1; i < pins->n; i++)
		if (pin_cmp(&pins->v[i - 1], &pins->v[i]) == 0) {
			uint32_t a = pins->v[i - 1].line, b = pins->v[i].line;

			gw_listfile_error(&p->lf, a > b ? a : b, 1, "path "
			    "listed twice (also at line %u)", a > b ? b : a);
		}
}

int
gw_pins_parse(struct gw_pins *pins, const char *name, const char *data,
    size_t len, gw_kb_report report, void *arg)
{
	struct pin_parse p = { { name, report, arg, 0 }, pins };

	free(pins->file);
	if ((pins->file = strdup(name)) == NULL) {
		gw_listfile_error(&p.lf, 1, 1, "out of memory");
		return -1;
	}
	gw_listfile_lines(&p.lf, data, len, pin_line, &p);
	pin_seal(&p);
	return p.lf.errors == 0 ? 0 : -1;
}

int
gw_pins_load(struct gw_pins *pins, const char *path, gw_kb_report report,
    void *arg)
{
	struct gw_listfile lf = { path, report, arg, 0 };
	char *data;
	size_t len;
	int r;

	if (gw_listfile_read(&lf, PIN_MAX_FILE, "fix the path of integrity or "
	    "the file's permissions; `pbxgate integrity record` writes it",
	    &data, &len) == -1)
		return -1;
	r = gw_pins_parse(pins, path, data, len, report, arg);
	pol_file_free(data, len);
	return r;
}

const struct gw_pin *
gw_pins_find(const struct gw_pins *pins, const char *path)
{
	struct gw_pin key = { .path = (char *)(uintptr_t)path };

	if (pins == NULL || pins->n == 0 || path == NULL)
		return NULL;
	return bsearch(&key, pins->v, pins->n, sizeof(pins->v[0]), pin_cmp);
}

/* Under a prefix integrity_paths names (caselessly, like known_bad_paths). */
bool
gw_pins_under_prefix(const struct gw_config *cfg, const char *path)
{
	if (path == NULL)
		return false;
	for (size_t i = 0; i < cfg->nintegrity_paths; i++)
		if (strncasecmp(path, cfg->integrity_paths[i],
		    strlen(cfg->integrity_paths[i])) == 0)
			return true;
	return false;
}
