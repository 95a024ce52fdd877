/* cmd_integrity.c -- `pbxgate integrity record|diff`: fetch what the PBX
 * serves to browsers (the integrity_entry documents, what they refer to,
 * the integrity_download files) straight from the configured upstream and
 * write the integrity manifest, or compare a fresh recording with it. */
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "gateway/gw_priv.h"

#define REC_MAX_FILES 10000			/* files in one recording */
#define REC_MAX_PARSED ((size_t)8 * 1024 * 1024)	/* a document read whole */
#define REC_MAX_BODY  ((curl_off_t)4 * 1024 * 1024 * 1024)
#define REC_TYPE_MAX  255

enum rec_what { REC_PLAIN, REC_HTML, REC_WEBMANIFEST };

struct rec_file {
	char          *path;		/* normalised */
	enum rec_what  what;
	bool           fetched;
	uint64_t       size;
	uint8_t        sha[GW_SHA256_LEN];
	char           type[REC_TYPE_MAX + 1];
};

struct rec {
	const struct gw_config *cfg;
	CURL            *curl;
	CURLU           *origin;	/* the upstream's scheme://host:port */
	char            *origin_s;
	struct rec_file *v;
	size_t           n, cap;
	const char      *doc;		/* the document being read, for notes */
	CURLU           *doc_url;
	unsigned         errors;
};

/* One body: hashed as it arrives, kept when it is to be parsed. */
struct rec_body {
	EVP_MD_CTX *md;
	uint64_t    len;
	char       *keep;
	size_t      keep_len;
	bool        want_keep, too_big;
};

static void
rec_error(struct rec *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rec_error(struct rec *r, const char *fmt, ...)
{
	va_list ap;

	r->errors++;
	fputs("pbxgate integrity: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Queues a normalised path once (caselessly, as the gateway looks it up);
 * a document found again as another kind keeps its first. */
static void
rec_add(struct rec *r, const char *path, enum rec_what what)
{
	struct rec_file *v;

	for (size_t i = 0; i < r->n; i++)
		if (strcasecmp(r->v[i].path, path) == 0)
			return;
	if (r->n == REC_MAX_FILES) {
		rec_error(r, "more than %d files: stopped at %s", REC_MAX_FILES,
		    path);
		return;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap == 0 ? 64 : r->cap * 2;
		if ((v = reallocarray(r->v, cap, sizeof(*v))) == NULL) {
			rec_error(r, "out of memory");
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	if ((r->v[r->n].path = strdup(path)) == NULL) {
		rec_error(r, "out of memory");
		return;
	}
	r->v[r->n++].what = what;
}

static void
rec_add_raw(struct rec *r, const char *raw, size_t n, enum rec_what what,
    const char *from)
{
	char norm[POL_PATH_MAX + 1], err[GW_ERRLEN];

	if (pol_normalise_path(raw, n, norm, sizeof(norm), err,
	    sizeof(err)) == -1) {
		rec_error(r, "%.*s (referred to by %s): %s: the gateway would "
		    "refuse this path", (int)(n > 200 ? 200 : n), raw, from, err);
		return;
	}
	rec_add(r, norm, what);
}

static bool
same_part(CURLU *a, CURLU *b, CURLUPart part)
{
	char *x = NULL, *y = NULL;
	bool same;

	(void)curl_url_get(a, part, &x, CURLU_DEFAULT_PORT);
	(void)curl_url_get(b, part, &y, CURLU_DEFAULT_PORT);
	same = x != NULL && y != NULL && strcasecmp(x, y) == 0;
	curl_free(x);
	curl_free(y);
	return same;
}

/* A reference resolved against its document's URL (libcurl's RFC 3986
 * resolver); only the upstream's own origin is pinned: another origin is
 * not served through the gateway. */
static void
on_ref(void *arg, const char *ref, size_t n, enum gw_ref_kind kind)
{
	struct rec *r = arg;
	CURLU *u;
	char *s, *path = NULL;

	if ((s = strndup(ref, n)) == NULL || (u = curl_url_dup(r->doc_url)) ==
	    NULL) {
		free(s);
		rec_error(r, "out of memory");
		return;
	}
	if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK) {
		fprintf(stderr, "pbxgate integrity: note: %s refers to \"%s\", "
		    "not an http(s) URL: not pinned\n", r->doc, s);
	} else if (!same_part(u, r->origin, CURLUPART_SCHEME) ||
	    !same_part(u, r->origin, CURLUPART_HOST) ||
	    !same_part(u, r->origin, CURLUPART_PORT)) {
		fprintf(stderr, "pbxgate integrity: note: %s refers to \"%s\" "
		    "on another origin: not pinned\n", r->doc, s);
	} else if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		rec_error(r, "%s: cannot read the path of \"%s\"", r->doc, s);
	} else
		rec_add_raw(r, path, strlen(path), kind == GW_REF_MANIFEST ?
		    REC_WEBMANIFEST : REC_PLAIN, r->doc);
	curl_free(path);
	curl_url_cleanup(u);
	free(s);
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct rec_body *b = arg;
	size_t n = size * nmemb;
	char *k;

	if (EVP_DigestUpdate(b->md, p, n) != 1)
		return 0;
	b->len += n;
	if (!b->want_keep || b->too_big)
		return n;
	if (b->keep_len + n > REC_MAX_PARSED) {
		b->too_big = true;
		return n;
	}
	if ((k = realloc(b->keep, b->keep_len + n + 1)) == NULL)
		return 0;
	memcpy(k + b->keep_len, p, n);
	b->keep = k;
	b->keep_len += n;
	b->keep[b->keep_len] = '\0';
	return n;
}

/* The upstream's Content-Encoding: anything but none or identity means the
 * bytes recorded are not the ones a browser runs. */
static bool
identity_encoded(CURL *c)
{
	struct curl_header *h;

	if (curl_easy_header(c, "Content-Encoding", 0, CURLH_HEADER, -1, &h) !=
	    CURLHE_OK)
		return true;
	return strcasecmp(h->value, "identity") == 0;
}

static int
fetch(struct rec *r, struct rec_file *f, struct rec_body *b)
{
	char url[PATH_MAX + POL_PATH_MAX], cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	char *ct = NULL;
	CURLcode rc;

	snprintf(url, sizeof(url), "%s%s", r->origin_s, f->path);
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, cerr);
	if ((rc = curl_easy_perform(r->curl)) != CURLE_OK) {
		rec_error(r, "GET %s: %s", url, cerr[0] != '\0' ? cerr :
		    curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		rec_error(r, "GET %s: status %ld, not 200 (a pinned path must "
		    "answer with its file: fix integrity_entry or "
		    "integrity_download)", url, status);
		return -1;
	}
	if (!identity_encoded(r->curl)) {
		rec_error(r, "GET %s: the upstream sent a Content-Encoding "
		    "although none was asked for", url);
		return -1;
	}
	curl_easy_getinfo(r->curl, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(f->type, sizeof(f->type), "%s", ct != NULL && ct[0] != '\0' ?
	    ct : "-");
	for (char *p = f->type; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';	/* the manifest is printable ASCII */
	return 0;
}

/* An entry or a web manifest is read for its references; an entry that is
 * not HTML (a worker named by integrity_entry) is only pinned. */
static void
parse_refs(struct rec *r, struct rec_file *f, const struct rec_body *b)
{
	char url[PATH_MAX + POL_PATH_MAX];
	int rc;

	if (b->too_big) {
		rec_error(r, "%s: larger than %zu bytes: not read for its "
		    "references", f->path, REC_MAX_PARSED);
		return;
	}
	snprintf(url, sizeof(url), "%s%s", r->origin_s, f->path);
	if ((r->doc_url = curl_url()) == NULL ||
	    curl_url_set(r->doc_url, CURLUPART_URL, url, 0) != CURLUE_OK) {
		rec_error(r, "%s: cannot make its URL", f->path);
		curl_url_cleanup(r->doc_url);
		r->doc_url = NULL;
		return;
	}
	/* on_ref grows r->v: f is not used past this point */
	r->doc = f->path;	/* its own allocation: stays put */
	if (f->what == REC_WEBMANIFEST)
		rc = gw_refs_webmanifest(b->keep != NULL ? b->keep : "",
		    b->keep_len, on_ref, r);
	else if (strncasecmp(f->type, "text/html", 9) == 0)
		rc = gw_refs_html(b->keep != NULL ? b->keep : "", b->keep_len,
		    on_ref, r);
	else
		rc = 0;
	if (rc < 0)
		rec_error(r, "%s: not a JSON object: not a web manifest",
		    r->doc);
	curl_url_cleanup(r->doc_url);
	r->doc_url = NULL;
}

static void
fetch_one(struct rec *r, size_t i)
{
	struct rec_file *f = &r->v[i];
	struct rec_body b = { .want_keep = f->what != REC_PLAIN };
	unsigned len = 0;

	if ((b.md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(b.md, EVP_sha256(), NULL) != 1) {
		rec_error(r, "out of memory");
		EVP_MD_CTX_free(b.md);
		return;
	}
	if (fetch(r, f, &b) == 0 &&
	    EVP_DigestFinal_ex(b.md, f->sha, &len) == 1 &&
	    len == GW_SHA256_LEN) {
		f->size = b.len;
		f->fetched = true;
		if (f->what != REC_PLAIN)
			parse_refs(r, &r->v[i], &b);	/* may move r->v */
	}
	EVP_MD_CTX_free(b.md);
	free(b.keep);
}

/* The upstream as the gateway reaches it: its URL, its CA file and
 * verification, and its SNI name (sent as the URL's host while the
 * connection goes to the configured address). */
static int
rec_setup(struct rec *r, const struct gw_config *cfg)
{
	const struct gw_upstream *up = &cfg->upstream;
	bool other_sni = up->tls && up->sni != NULL &&
	    strcasecmp(up->sni, up->host) != 0;
	const char *name = other_sni ? up->sni : up->host;
	bool v6 = strchr(name, ':') != NULL;
	size_t len = strlen(name) + 32;

	r->cfg = cfg;
	if ((r->origin_s = malloc(len)) == NULL)
		return -1;
	snprintf(r->origin_s, len, "%s://%s%s%s:%u", up->tls ? "https" : "http",
	    v6 ? "[" : "", name, v6 ? "]" : "", (unsigned)up->port);
	if ((r->origin = curl_url()) == NULL ||
	    curl_url_set(r->origin, CURLUPART_URL, r->origin_s, 0) != CURLUE_OK ||
	    (r->curl = curl_easy_init()) == NULL)
		return -1;
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->curl, CURLOPT_MAXFILESIZE_LARGE, REC_MAX_BODY);
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)cfg->to.upstream_connect);
	/* no progress for the upstream timeout: give up on that file */
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME,
	    (long)(cfg->to.upstream / 1000 + 1));
	curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "pbxgate-integrity/"
	    PBXGATE_VERSION);
	if (up->tls) {
		curl_easy_setopt(r->curl, CURLOPT_SSL_VERIFYPEER,
		    up->verify ? 1L : 0L);
		curl_easy_setopt(r->curl, CURLOPT_SSL_VERIFYHOST,
		    up->verify ? 2L : 0L);
		if (up->ca_file != NULL)
			curl_easy_setopt(r->curl, CURLOPT_CAINFO, up->ca_file);
	}
	return 0;
}

static void
rec_free(struct rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].path);
	free(r->v);
	if (r->curl != NULL)
		curl_easy_cleanup(r->curl);
	curl_url_cleanup(r->origin);
	free(r->origin_s);
}

static int
path_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct rec_file *)a)->path,
	    ((const struct rec_file *)b)->path);
}

/* Records into r (sorted by path); 0 when every file was fetched. */
static int
record(struct rec *r, const struct gw_config *cfg)
{
	struct curl_slist *connect_to = NULL;
	char ct[600];
	int rc = -1;

	if (cfg->nintegrity_entries == 0 && cfg->nintegrity_downloads == 0) {
		rec_error(r, "%s has no integrity_entry or integrity_download "
		    "line: nothing to record", cfg->path);
		return -1;
	}
	if (rec_setup(r, cfg) < 0) {
		rec_error(r, "cannot set up the HTTP client (out of memory)");
		return -1;
	}
	if (cfg->upstream.tls && strcasecmp(cfg->upstream.sni,
	    cfg->upstream.host) != 0) {
		snprintf(ct, sizeof(ct), "%s:%u:%s:%u", cfg->upstream.sni,
		    (unsigned)cfg->upstream.port, cfg->upstream.host,
		    (unsigned)cfg->upstream.port);
		if ((connect_to = curl_slist_append(NULL, ct)) == NULL)
			return -1;
		curl_easy_setopt(r->curl, CURLOPT_CONNECT_TO, connect_to);
	}
	for (size_t i = 0; i < cfg->nintegrity_entries; i++)
		rec_add(r, cfg->integrity_entries[i], REC_HTML);
	for (size_t i = 0; i < cfg->nintegrity_downloads; i++)
		rec_add(r, cfg->integrity_downloads[i], REC_PLAIN);
	for (size_t i = 0; i < r->n; i++)	/* r->n grows as refs are found */
		fetch_one(r, i);
	qsort(r->v, r->n, sizeof(r->v[0]), path_cmp);
	if (r->errors == 0)
		rc = 0;
	curl_slist_free_all(connect_to);
	return rc;
}

static void
shahex(char *dst, const uint8_t *sha)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < GW_SHA256_LEN; i++) {
		dst[2 * i] = digits[sha[i] >> 4];
		dst[2 * i + 1] = digits[sha[i] & 15];
	}
	dst[2 * GW_SHA256_LEN] = '\0';
}

static int
write_manifest(const struct rec *r, const char *out)
{
	char tmp[PATH_MAX], hex[2 * GW_SHA256_LEN + 1];
	FILE *f;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", out) >= (int)sizeof(tmp) ||
	    (fd = mkstemp(tmp)) == -1) {
		fprintf(stderr, "pbxgate integrity record: %s: cannot create a "
		    "file beside it: %s\n", out, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0644) == -1 || (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "pbxgate integrity record: %s: %s\n", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	fprintf(f, "# pbxgate integrity manifest, recorded from %s\n"
	    "# SHA256 SIZE PATH CONTENT-TYPE (docs/integrity.md)\n",
	    r->origin_s);
	for (size_t i = 0; i < r->n; i++) {
		shahex(hex, r->v[i].sha);
		fprintf(f, "%s %llu %s %s\n", hex,
		    (unsigned long long)r->v[i].size, r->v[i].path, r->v[i].type);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 ||
	    rename(tmp, out) != 0) {
		fprintf(stderr, "pbxgate integrity record: %s: cannot write: "
		    "%s\n", out, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static const char *
take_out(int argc, char **argv)
{
	if (argc == 3 && (strcmp(argv[1], "-o") == 0 ||
	    strcmp(argv[1], "--output") == 0))
		return argv[2];
	return NULL;
}

int
gw_cmd_integrity_record(const struct gw_config *cfg, int argc, char **argv)
{
	struct rec r = { 0 };
	const char *out = take_out(argc, argv);
	int rc = 1;

	if (out == NULL)
		return CLI_USAGE;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (record(&r, cfg) == 0 && write_manifest(&r, out) == 0) {
		fprintf(stderr, "pbxgate integrity record: %zu files written to "
		    "%s\n", r.n, out);
		rc = 0;
	}
	rec_free(&r);
	curl_global_cleanup();
	return rc;
}

static void
print_line(char sign, const char *path, uint64_t size, const uint8_t *sha)
{
	char hex[2 * GW_SHA256_LEN + 1];

	shahex(hex, sha);
	printf("%c %s %llu %s", sign, path, (unsigned long long)size, hex);
}

/* Both lists are sorted caselessly by path: one merge pass. */
static int
compare(const struct gw_pins *pins, const struct rec *r)
{
	size_t i = 0, j = 0, np = gw_pins_count(pins);
	int differ = 0;

	while (i < np || j < r->n) {
		const struct gw_pin *p = i < np ? gw_pins_entry(pins, i) : NULL;
		const struct rec_file *f = j < r->n ? &r->v[j] : NULL;
		int c;

		if (p == NULL && f == NULL)
			break;		/* an entry the manifest could not give */
		c = p == NULL ? 1 : f == NULL ? -1 :
		    strcasecmp(p->path, f->path);
		if (c < 0 && p != NULL) {
			print_line('-', p->path, p->size, p->sha);
			putchar('\n');
			i++;
		} else if (f != NULL && (c > 0 || p == NULL)) {
			print_line('+', f->path, f->size, f->sha);
			putchar('\n');
			j++;
		} else if (p != NULL && f != NULL) {
			if (p->size != f->size ||
			    memcmp(p->sha, f->sha, GW_SHA256_LEN) != 0) {
				char hex[2 * GW_SHA256_LEN + 1];
				print_line('~', p->path, p->size, p->sha);
				shahex(hex, f->sha);
				printf(" -> %llu %s\n",
				    (unsigned long long)f->size, hex);
				differ = 1;
			}
			i++;
			j++;
			continue;
		}
		differ = 1;
	}
	return differ;
}

static void
pins_report(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "pbxgate integrity diff: %s\n", msg);
}

int
gw_cmd_integrity_diff(const struct gw_config *cfg, int argc, char **argv)
{
	struct rec r = { 0 };
	struct gw_pins *pins;
	int rc = 2;

	(void)argv;
	if (argc != 1)
		return CLI_USAGE;
	if (cfg->integrity_file == NULL) {
		fprintf(stderr, "pbxgate integrity diff: %s has no integrity "
		    "line: nothing to compare with\n", cfg->path);
		return 2;
	}
	if ((pins = gw_pins_new()) == NULL ||
	    gw_pins_load(pins, cfg->integrity_file, pins_report, NULL) != 0) {
		gw_pins_free(pins);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (record(&r, cfg) == 0)
		rc = compare(pins, &r);
	rec_free(&r);
	curl_global_cleanup();
	gw_pins_free(pins);
	return rc;
}
