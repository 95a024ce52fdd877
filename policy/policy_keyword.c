/* policy_keyword.c -- applies one config line to a module's keyword table:
 * value count, typed value, bounds, then a store or the keyword's setter.
 * Every module's keywords go through here, so usage text and bounds errors
 * read the same whichever module owns the keyword. */
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

const struct pol_keyword *
pol_kw_find(const struct pol_kwtab *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->kw[i].name, name) == 0)
			return &t->kw[i];
	return NULL;
}

static int
check_count(const struct pol_keyword *kw, struct pol_kw_call *c)
{
	if (c->argc < kw->min) {
		c->bad = -1;
		snprintf(c->err, c->errlen, "missing value; usage: %s %s",
		    kw->name, kw->usage);
		return -1;
	}
	if (c->argc > kw->max) {
		c->bad = kw->max;
		snprintf(c->err, c->errlen, "unexpected extra value \"%s\"; "
		    "usage: %s %s", c->argv[kw->max], kw->name, kw->usage);
		return -1;
	}
	return 0;
}

/* Parses argv[0] as kw->kind, checks lo..hi and scales into c->num. */
static int
typed_value(const struct pol_keyword *kw, struct pol_kw_call *c)
{
	char lo[32], hi[32];
	uint64_t v;

	c->bad = 0;
	if (pol_value_parse(kw->kind, c->argv[0], &v, c->err, c->errlen) == -1)
		return -1;
	if (kw->kind != POL_KIND_BOOL && (v < kw->lo || v > kw->hi)) {
		pol_value_format(kw->kind, kw->lo, lo, sizeof(lo));
		pol_value_format(kw->kind, kw->hi, hi, sizeof(hi));
		snprintf(c->err, c->errlen, "%s is out of range (%s to %s)",
		    c->argv[0], lo, hi);
		return -1;
	}
	/* a setting kept in seconds cannot hold 1500ms: refuse, not round */
	if (kw->scale > 1 && v % kw->scale != 0) {
		snprintf(c->err, c->errlen, "%s is not a whole number of "
		    "seconds", c->argv[0]);
		return -1;
	}
	c->num = kw->scale > 1 ? v / kw->scale : v;
	return 0;
}

static int
store(const struct pol_keyword *kw, struct pol_kw_call *c)
{
	char *at = (char *)c->obj + kw->off;
	uint32_t v32;
	bool b;

	switch (kw->width) {
	case sizeof(bool):
		b = c->num != 0;
		memcpy(at, &b, sizeof(b));
		return 0;
	case sizeof(uint32_t):
		if (c->num <= UINT32_MAX) {
			v32 = (uint32_t)c->num;
			memcpy(at, &v32, sizeof(v32));
			return 0;
		}
		break;
	case sizeof(uint64_t):
		memcpy(at, &c->num, sizeof(c->num));
		return 0;
	default:
		break;
	}
	/* a table whose bounds do not fit its field: refuse the line */
	snprintf(c->err, c->errlen, "%s does not fit this setting (table "
	    "error: report it)", c->argv[0]);
	return -1;
}

int
pol_kw_apply(const struct pol_keyword *kw, struct pol_kw_call *c)
{
	c->bad = 0;
	c->num = 0;
	if (c->errlen > 0)
		c->err[0] = '\0';
	if (check_count(kw, c) == -1)
		return -1;
	if (kw->kind != POL_KIND_OTHER && typed_value(kw, c) == -1)
		return -1;
	if (kw->set != NULL)
		return kw->set(c) < 0 ? -1 : 0;
	if (kw->kind == POL_KIND_OTHER) {
		snprintf(c->err, c->errlen, "no setter (table error: report "
		    "it)");
		return -1;
	}
	return store(kw, c);
}

int
pol_kw_run(const struct pol_kwtab *t, void *obj, const char *basedir,
    const char *kw, int argc, char **argv, int *bad, char *err,
    size_t errlen)
{
	const struct pol_keyword *k = pol_kw_find(t, kw);
	struct pol_kw_call c = {
		.obj = obj, .basedir = basedir, .name = kw, .argc = argc,
		.argv = argv, .err = err, .errlen = errlen,
	};
	int r;

	if (k == NULL)
		return 1;
	r = pol_kw_apply(k, &c);
	if (bad != NULL)
		*bad = c.bad;
	return r;
}
