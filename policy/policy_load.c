/* policy_load.c -- pol_load/pol_free: parse everything, report every problem, then compile or refuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy_parse.h"

/* Bounds for one regex match: a pathological pattern fails (and fails
 * closed) instead of burning a worker. */
#define MATCH_LIMIT	200000
#define DEPTH_LIMIT	10000

/* libmaxminddb opens by path only. The database is judged on our own
 * descriptor and libmaxminddb then opens /proc/self/fd/N, which reaches
 * that same open file whatever the path names by then; a path swapped for
 * a FIFO after the check cannot block us. Without /proc the path is used
 * after the check: only someone who may write the database's directory
 * could swap it in between, and they could replace the database anyway. */
static int
mmdb_open_checked(const char *path, MMDB_s *db, char *err, size_t errlen)
{
	char proc[64];
	struct stat st;
	int fd, rc;

	if ((fd = pol_file_open(path, 0, &st, err, errlen)) == -1)
		return -1;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	rc = MMDB_open(proc, MMDB_MODE_MMAP, db);
	if (rc == MMDB_FILE_OPEN_ERROR && access("/proc/self/fd", F_OK) == -1)
		rc = MMDB_open(path, MMDB_MODE_MMAP, db);
	close(fd);
	if (rc != MMDB_SUCCESS) {
		snprintf(err, errlen, "not a usable GeoIP database: %s",
		    rc == MMDB_IO_ERROR ? "cannot read the file" :
		    MMDB_strerror(rc));
		return -1;
	}
	return 0;
}

static int
open_geoip(struct pol_loader *L)
{
	struct pol_policy *p = L->p;
	char err[256];

	if (L->geo_file == NULL)
		return 0;	/* no rule needs it: do not even open it */
	if (mmdb_open_checked(L->geoip_db, &p->mmdb, err, sizeof err) == -1) {
		pol_diag(L, false, L->geo_file, L->geo_line, L->geo_col,
		    "GeoIP database %s: %s", L->geoip_db, err);
		return -1;
	}
	p->mmdb_open = true;
	return 0;
}

static int
compile(struct pol_loader *L, const char *file)
{
	struct pol_policy *p = L->p;

	p->mctx = pcre2_match_context_create(NULL);
	if (p->mctx == NULL) {
		pol_diag(L, false, file, 0, 0, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < p->nsets; i++)
		(void)pol_cidrset_optimise(p->sets[i]);	/* -1: slower, fine */
	pcre2_set_match_limit(p->mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(p->mctx, DEPTH_LIMIT);
	if ((p->index = pol_pindex_build(p->rules, p->nrules)) == NULL) {
		pol_diag(L, false, file, 0, 0, "out of memory");
		return -1;
	}
	return 0;
}

struct pol_policy *
pol_load(const char *file, const char *geoip_db, pol_report_fn report,
    void *arg)
{
	struct pol_loader L = { 0 };
	struct pol_policy *p = calloc(1, sizeof *p);

	if (p == NULL) {
		if (report != NULL)
			report(arg, false, "policy: out of memory");
		return NULL;
	}
	p->def = POL_DENY;
	p->def_file = "(default)";
	L.p = p;
	L.report = report;
	L.arg = arg;
	L.geoip_db = geoip_db;
	pol_parse_file(&L, file, NULL, 0, 0);
	if (L.errors == 0)
		open_geoip(&L);
	if (L.errors == 0 && p->nrules == 0 && p->def_line == 0)
		pol_diag(&L, true, file, 1, 1, "no rules and no default: "
		    "every request is denied");
	if (L.errors == 0)
		compile(&L, file);
	free(L.words);
	if (L.errors != 0) {
		pol_free(p);
		return NULL;
	}
	return p;
}

void
pol_free(struct pol_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nrules; i++)
		pol_rule_clear(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; i < p->nlists; i++)
		free(p->lists[i].name);
	free(p->lists);
	for (size_t i = 0; i < p->nsets; i++)
		pol_cidrset_free(p->sets[i]);
	free(p->sets);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	if (p->mmdb_open)
		MMDB_close(&p->mmdb);
	pcre2_match_context_free(p->mctx);
	pcre2_code_free(p->app_re.code);
	pcre2_code_free(p->os_re.code);
	pol_pindex_free(p->index);
	free(p);
}

size_t
pol_rule_count(const struct pol_policy *p)
{
	return p->nrules;
}
