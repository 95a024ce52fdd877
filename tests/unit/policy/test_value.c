/* test_value.c -- the config value grammar (policy_value.c) and the keyword
 * table driver (policy_keyword.c): each accepted spelling with its value,
 * each bad input with its exact message. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stddef.h>
#include <string.h>

#include "policy/policy.h"

/* Criterion re-executes the binary for each case: strings inside the
 * parameters would point into another process, so cases go by index. */
#define NCASES(arr) (sizeof(arr) / sizeof((arr)[0]))
static size_t case_idx[64];

static struct criterion_test_params
cases(size_t n)
{
	cr_assert_leq(n, NCASES(case_idx));
	for (size_t i = 0; i < n; i++)
		case_idx[i] = i;
	return cr_make_param_array(size_t, case_idx, n);
}

#define HINT "; use whole numbers with d, h, m, s or ms, largest unit " \
	"first (e.g. 30s, 1h30m, 250ms)"
#define SIZE_HINT "use a number of bytes with an optional k, m or g " \
	"(powers of 1024)"

struct good {
	enum pol_kind kind;
	const char   *in;
	uint64_t      want;
};

static const struct good good_cases[] = {
	{ POL_KIND_DURATION, "0", 0 },
	{ POL_KIND_DURATION, "30", 30000 },		/* bare = seconds */
	{ POL_KIND_DURATION, "250ms", 250 },
	{ POL_KIND_DURATION, "30s", 30000 },
	{ POL_KIND_DURATION, "5m", 300000 },
	{ POL_KIND_DURATION, "1h", 3600000 },
	{ POL_KIND_DURATION, "2d", 172800000 },
	{ POL_KIND_DURATION, "1h30m", 5400000 },
	{ POL_KIND_DURATION, "1d2h3m4s5ms", 93784005 },
	{ POL_KIND_DURATION, "1s500ms", 1500 },
	{ POL_KIND_DURATION, "90m", 5400000 },	/* no carry rule */
	{ POL_KIND_SIZE, "0", 0 },
	{ POL_KIND_SIZE, "512", 512 },
	{ POL_KIND_SIZE, "8k", 8192 },
	{ POL_KIND_SIZE, "8K", 8192 },
	{ POL_KIND_SIZE, "100m", 104857600 },
	{ POL_KIND_SIZE, "1G", 1073741824 },
	{ POL_KIND_SIZE, "18446744073709551615", UINT64_MAX },
	{ POL_KIND_COUNT, "0", 0 },
	{ POL_KIND_COUNT, "1000000", 1000000 },
	{ POL_KIND_COUNT, "007", 7 },
	{ POL_KIND_BOOL, "on", 1 },
	{ POL_KIND_BOOL, "yes", 1 },
	{ POL_KIND_BOOL, "off", 0 },
	{ POL_KIND_BOOL, "no", 0 },
};

ParameterizedTestParameters(value, good)
{
	return cases(NCASES(good_cases));
}

ParameterizedTest(size_t *ix, value, good)
{
	const struct good *c = &good_cases[*ix];
	char err[256] = "";
	uint64_t v = 12345;

	cr_assert_eq(pol_value_parse(c->kind, c->in, &v, err, sizeof(err)), 0,
	    "\"%s\" refused: %s", c->in, err);
	cr_expect_eq(v, c->want, "\"%s\": got %llu", c->in,
	    (unsigned long long)v);
}

struct bad {
	enum pol_kind kind;
	const char   *in;
	const char   *msg;
};

static const struct bad bad_cases[] = {
	{ POL_KIND_DURATION, "", "bad duration \"\": empty value" HINT },
	{ POL_KIND_DURATION, "12x", "bad duration \"12x\": unknown unit \"x\""
	    HINT },
	{ POL_KIND_DURATION, "-1s", "bad duration \"-1s\": unexpected \"-\""
	    HINT },
	{ POL_KIND_DURATION, "+1s", "bad duration \"+1s\": unexpected \"+\""
	    HINT },
	{ POL_KIND_DURATION, "1h1h", "bad duration \"1h1h\": unit \"h\" given "
	    "twice" HINT },
	{ POL_KIND_DURATION, "1s1h", "bad duration \"1s1h\": unit \"h\" after "
	    "a smaller unit" HINT },
	{ POL_KIND_DURATION, "1h30", "bad duration \"1h30\": no unit after the "
	    "last number" HINT },
	{ POL_KIND_DURATION, "1.5s", "bad duration \"1.5s\": unexpected \".\""
	    HINT },
	{ POL_KIND_DURATION, "5k", "bad duration \"5k\": unknown unit \"k\""
	    HINT },
	{ POL_KIND_DURATION, "1H", "bad duration \"1H\": unknown unit \"H\""
	    HINT },
	{ POL_KIND_DURATION, "1 s", "bad duration \"1 s\": unexpected \" \""
	    HINT },
	{ POL_KIND_DURATION, "s", "bad duration \"s\": unexpected \"s\"" HINT },
	{ POL_KIND_DURATION, "18446744073709551616",
	    "bad duration \"18446744073709551616\": too large" },
	{ POL_KIND_DURATION, "18446744073709552s",
	    "bad duration \"18446744073709552s\": too large" },
	{ POL_KIND_DURATION, "213503982334d23h",	/* the sum overflows */
	    "bad duration \"213503982334d23h\": too large" },
	{ POL_KIND_SIZE, "", "bad size \"\": " SIZE_HINT },
	{ POL_KIND_SIZE, "8kb", "bad size \"8kb\": " SIZE_HINT },
	{ POL_KIND_SIZE, "8x", "bad size \"8x\": " SIZE_HINT },
	{ POL_KIND_SIZE, "-1", "bad size \"-1\": " SIZE_HINT },
	{ POL_KIND_SIZE, "1.5m", "bad size \"1.5m\": " SIZE_HINT },
	{ POL_KIND_SIZE, "1m512k", "bad size \"1m512k\": " SIZE_HINT },
	{ POL_KIND_SIZE, "30s", "bad size \"30s\": " SIZE_HINT },
	{ POL_KIND_SIZE, "k", "bad size \"k\": " SIZE_HINT },
	{ POL_KIND_SIZE, "17179869184g", "bad size \"17179869184g\": too large" },
	{ POL_KIND_SIZE, "18446744073709551616",
	    "bad size \"18446744073709551616\": too large" },
	{ POL_KIND_COUNT, "", "bad number \"\": use digits only, no sign or "
	    "unit" },
	{ POL_KIND_COUNT, "1k", "bad number \"1k\": use digits only, no sign "
	    "or unit" },
	{ POL_KIND_COUNT, "-1", "bad number \"-1\": use digits only, no sign "
	    "or unit" },
	{ POL_KIND_COUNT, "0x10", "bad number \"0x10\": use digits only, no "
	    "sign or unit" },
	{ POL_KIND_COUNT, "99999999999999999999",
	    "bad number \"99999999999999999999\": too large" },
	{ POL_KIND_BOOL, "", "expected on or off, not \"\"" },
	{ POL_KIND_BOOL, "On", "expected on or off, not \"On\"" },
	{ POL_KIND_BOOL, "true", "expected on or off, not \"true\"" },
	{ POL_KIND_BOOL, "1", "expected on or off, not \"1\"" },
};

ParameterizedTestParameters(value, bad)
{
	return cases(NCASES(bad_cases));
}

ParameterizedTest(size_t *ix, value, bad)
{
	const struct bad *c = &bad_cases[*ix];
	char err[256] = "";
	uint64_t v = 12345;

	cr_assert_eq(pol_value_parse(c->kind, c->in, &v, err, sizeof(err)), -1,
	    "\"%s\" accepted", c->in);
	cr_expect_str_eq(err, c->msg);
	cr_expect_eq(v, 12345, "\"%s\": value written on error", c->in);
}

struct fmt {
	enum pol_kind kind;
	uint64_t      v;
	const char   *want;
};

static const struct fmt fmt_cases[] = {
	{ POL_KIND_DURATION, 0, "0" },
	{ POL_KIND_DURATION, 100, "100ms" },
	{ POL_KIND_DURATION, 5400000, "1h30m" },
	{ POL_KIND_DURATION, 86400000, "1d" },
	{ POL_KIND_DURATION, 93784005, "1d2h3m4s5ms" },
	{ POL_KIND_SIZE, 0, "0" },
	{ POL_KIND_SIZE, 1000, "1000" },
	{ POL_KIND_SIZE, 65536, "64k" },
	{ POL_KIND_SIZE, 1ull << 40, "1024g" },
	{ POL_KIND_COUNT, 315360000, "315360000" },
};

Test(value, format)
{
	char buf[64];

	for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
		pol_value_format(fmt_cases[i].kind, fmt_cases[i].v, buf,
		    sizeof(buf));
		cr_expect_str_eq(buf, fmt_cases[i].want);
	}
}

/* ---- the keyword table driver ---- */

struct settings {
	unsigned secs;
	unsigned ms;
	uint64_t bytes;
	bool     flag;
	int      custom;
};

static int
set_custom(struct pol_kw_call *c)
{
	struct settings *s = c->obj;

	if (strcmp(c->argv[0], "bad") == 0) {
		snprintf(c->err, c->errlen, "custom refused");
		return -1;
	}
	s->custom = c->argc;
	return 0;
}

#define AT(f) POL_KW_AT(struct settings, f)
static const struct pol_keyword kws[] = {
	{ "secs", "DURATION", POL_KIND_DURATION, 1, 1, false, 1000, 86400000,
	    1000, AT(secs), NULL },
	{ "ms", "DURATION", POL_KIND_DURATION, 1, 1, false, 100, 3600000, 0,
	    AT(ms), NULL },
	{ "bytes", "SIZE", POL_KIND_SIZE, 1, 1, false, 1024, 1ull << 30, 0,
	    AT(bytes), NULL },
	{ "flag", "on|off", POL_KIND_BOOL, 1, 1, false, 0, 1, 0, AT(flag),
	    NULL },
	{ "custom", "A [B]", POL_KIND_OTHER, 1, 2, true, 0, 0, 0, 0, 0,
	    set_custom },
	{ "wide", "COUNT", POL_KIND_COUNT, 1, 1, false, 0, UINT64_MAX, 0,
	    AT(secs), NULL },
};
static const struct pol_kwtab tab = { kws, sizeof(kws) / sizeof(kws[0]) };

static int
run(struct settings *s, const char *kw, int argc, const char *a,
    const char *b, int *bad, char *err)
{
	char *argv[3] = { (char *)a, (char *)b, NULL };

	return pol_kw_run(&tab, s, "/", kw, argc, argv, bad, err, 256);
}

Test(keyword, stores_typed_values)
{
	struct settings s = { 0 };
	char err[256];
	int bad;

	cr_assert_eq(run(&s, "secs", 1, "1h30m", NULL, &bad, err), 0, "%s", err);
	cr_expect_eq(s.secs, 5400);
	cr_assert_eq(run(&s, "ms", 1, "1s500ms", NULL, &bad, err), 0, "%s", err);
	cr_expect_eq(s.ms, 1500);
	cr_assert_eq(run(&s, "bytes", 1, "64k", NULL, &bad, err), 0, "%s", err);
	cr_expect_eq(s.bytes, 65536);
	cr_assert_eq(run(&s, "flag", 1, "yes", NULL, &bad, err), 0, "%s", err);
	cr_expect(s.flag);
	cr_assert_eq(run(&s, "custom", 2, "x", "y", &bad, err), 0, "%s", err);
	cr_expect_eq(s.custom, 2);
}

struct kwbad {
	const char *kw;
	int         argc;
	const char *a, *b;
	int         bad;
	const char *msg;
};

static const struct kwbad kwbad_cases[] = {
	{ "secs", 0, NULL, NULL, -1, "missing value; usage: secs DURATION" },
	{ "secs", 2, "1s", "2s", 1, "unexpected extra value \"2s\"; usage: "
	    "secs DURATION" },
	{ "secs", 1, "500ms", NULL, 0, "500ms is out of range (1s to 1d)" },
	{ "secs", 1, "1500ms", NULL, 0, "1500ms is not a whole number of "
	    "seconds" },
	{ "secs", 1, "2d", NULL, 0, "2d is out of range (1s to 1d)" },
	{ "ms", 1, "99ms", NULL, 0, "99ms is out of range (100ms to 1h)" },
	{ "ms", 1, "10x", NULL, 0, "bad duration \"10x\": unknown unit \"x\""
	    HINT },
	{ "bytes", 1, "1023", NULL, 0, "1023 is out of range (1k to 1g)" },
	{ "bytes", 1, "30s", NULL, 0, "bad size \"30s\": " SIZE_HINT },
	{ "flag", 1, "maybe", NULL, 0, "expected on or off, not \"maybe\"" },
	{ "custom", 1, "bad", NULL, 0, "custom refused" },
	{ "custom", 0, NULL, NULL, -1, "missing value; usage: custom A [B]" },
	/* a table bound wider than the field is refused, never truncated */
	{ "wide", 1, "4294967296", NULL, 0, "4294967296 does not fit this "
	    "setting (table error: report it)" },
};

ParameterizedTestParameters(keyword, refused)
{
	return cases(NCASES(kwbad_cases));
}

ParameterizedTest(size_t *ix, keyword, refused)
{
	const struct kwbad *c = &kwbad_cases[*ix];
	struct settings s = { 7, 7, 7, false, 7 };
	char err[256] = "";
	int bad = -9;

	cr_assert_eq(run(&s, c->kw, c->argc, c->a, c->b, &bad, err), -1,
	    "%s %s accepted", c->kw, c->a ? c->a : "");
	cr_expect_str_eq(err, c->msg);
	cr_expect_eq(bad, c->bad, "%s: bad %d", c->kw, bad);
	cr_expect_eq(s.secs, 7);
	cr_expect_eq(s.ms, 7);
	cr_expect_eq(s.bytes, 7);
}

Test(keyword, unknown_is_not_an_error)
{
	struct settings s = { 0 };
	char err[256] = "";
	int bad;

	cr_expect_eq(run(&s, "nope", 1, "x", NULL, &bad, err), 1);
	cr_expect_eq(err[0], '\0');
}
