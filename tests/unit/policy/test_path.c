/* test_path.c -- path normalisation: disguised spellings of /management/ are normalised or refused, good paths pass. */
#include <criterion/criterion.h>
#include <string.h>

#include "policy/policy.h"

static int
norm(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
	return pol_normalise_path(in, strlen(in), out, outlen, err, errlen);
}

/* Paths that must come out exactly so (and are sent upstream so). */
static const struct {
	const char *in, *out;
} good[] = {
	{ "/", "/" },
	{ "/webclient/", "/webclient/" },
	{ "/webclient/#/login", "/webclient/%23/login" },
	{ "/provisioning/abc/cfg.xml", "/provisioning/abc/cfg.xml" },
	{ "/ws/webclient", "/ws/webclient" },
	{ "/MyPhone/c2clogin", "/MyPhone/c2clogin" },
	{ "/electron/windows/3CX-Setup.msi", "/electron/windows/3CX-Setup.msi" },
	{ "/files/%E6%97%A5%E6%9C%AC.txt", "/files/%E6%97%A5%E6%9C%AC.txt" },
	{ "/files/\xe6\x97\xa5.txt", "/files/%E6%97%A5.txt" },
	{ "/files/%e6%97%a5.txt", "/files/%E6%97%A5.txt" },
	{ "/a%20b", "/a%20b" },
	{ "/a b", "/a%20b" },
	{ "/%7Euser/", "/~user/" },
	{ "/api/Users(1)", "/api/Users(1)" },
	{ "/100%25", "/100%25" },
	{ "/q%3Fx", "/q%3Fx" },
	{ "/a/b/../c", "/a/c" },
	{ "/a/./b", "/a/b" },
	{ "/a/.", "/a/" },
	{ "/a/..", "/" },
	{ "/a//b///c", "/a/b/c" },
	{ "//a", "/a" },
	{ "/a\\b", "/a/b" },
	{ "/a;p=1/b;q", "/a/b" },
	{ "/a/b/", "/a/b/" },
	{ "/.well-known/x", "/.well-known/x" },
	{ "/a..b/c", "/a..b/c" },
};

Test(path, good_paths_pass_as_expected)
{
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char out[256], err[256] = "";

		cr_expect_eq(norm(good[i].in, out, sizeof out, err, sizeof err),
		    0, "%s: %s", good[i].in, err);
		cr_expect_str_eq(out, good[i].out, "%s", good[i].in);
	}
}

/* Disguised spellings of /management/: each must either normalise to a
 * path that `deny path ^/management(/|$)` (caseless) denies, or be
 * refused. `out` NULL means refused, with that exact error. */
static const struct {
	const char *in, *out, *err;
} disguised[] = {
	{ "/management/", "/management/", NULL },
	{ "/MANAGEMENT/", "/MANAGEMENT/", NULL },
	{ "/MaNaGeMeNt", "/MaNaGeMeNt", NULL },
	{ "/%6danagement/", "/management/", NULL },
	{ "/%6Danagement/", "/management/", NULL },
	{ "/%4d%41NAGEMENT/", "/MANAGEMENT/", NULL },
	{ "/%6d%61%6e%61%67%65%6d%65%6e%74/", "/management/", NULL },
	{ "/./management/", "/management/", NULL },
	{ "/x/../management/", "/management/", NULL },
	{ "/x/%2e%2e/management/", "/management/", NULL },
	{ "/x/.%2E/management/", "/management/", NULL },
	{ "//management//", "/management/", NULL },
	{ "\\management\\", "/management/", NULL },
	{ "/x\\..\\management/", "/management/", NULL },
	{ "/management;jsessionid=1/", "/management/", NULL },
	{ "/;x/management", "/management", NULL },
	{ "/x/..;/management/", "/management/", NULL },
	{ "/management", "/management", NULL },
	{ "/management%2F", NULL, "encoded '/' (%2F) in path at offset 11 is refused" },
	{ "/management%2f", NULL, "encoded '/' (%2f) in path at offset 11 is refused" },
	{ "/x%2F..%2Fmanagement/", NULL, "encoded '/' (%2F) in path at offset 2 is refused" },
	{ "/x%5C..%5Cmanagement/", NULL, "encoded '\\' (%5C) in path at offset 2 is refused" },
	{ "/%252e%252e/management/", NULL, "double %-encoding in path ('%252e')" },
	{ "/management%252f", NULL, "double %-encoding in path ('%252f')" },
	{ "/%256danagement/", NULL, "double %-encoding in path ('%256d')" },
	{ "/%25%36%64anagement/", NULL, "double %-encoding in path ('%256d')" },
	{ "/management%3B/", NULL, "encoded ';' (%3B) in path at offset 11 is refused" },
	{ "/management%00/", NULL, "encoded 'NUL' (%00) in path at offset 11 is refused" },
	{ "/management./", NULL, "path segment ending in '.' is refused" },
	{ "/management%20/", NULL, "path segment ending in ' ' is refused" },
	{ "/MANAGE~1/", NULL, "8.3 short name ('~1') in path is refused" },
	{ "/management::$DATA", NULL, "stream name (':$') in path is refused" },
	{ "/%EF%BD%8Danagement/", NULL, "character U+FF4D in path is refused (servers may read it as ASCII)" },
	{ "/x%E2%88%95..%E2%88%95management", NULL, "character U+2215 in path is refused (servers may read it as ASCII)" },
	{ "/../management/", NULL, "'..' above the root of the path" },
	{ "/%2e%2e/management/", NULL, "'..' above the root of the path" },
	{ "/management%", NULL, "truncated %-escape in path at offset 11" },
	{ "/management%g0", NULL, "bad %-escape in path at offset 11" },
	{ "/management%C0%AF", NULL, "invalid UTF-8 in path" },
	{ "/management%E0%80%AF", NULL, "invalid UTF-8 in path (overlong, surrogate or out of range)" },
	{ "/management%ED%A0%80", NULL, "invalid UTF-8 in path (overlong, surrogate or out of range)" },
	{ "/management%F4%90%80%80", NULL, "invalid UTF-8 in path (overlong, surrogate or out of range)" },
	{ "/management%E6%97", NULL, "truncated UTF-8 in path" },
	{ "/management%0a", NULL, "encoded control byte 0x0a in path" },
	{ "/management\t", NULL, "control byte 0x09 in path at offset 11" },
	{ "management/", NULL, "path does not start with '/'" },
};

Test(path, disguised_management_is_denied_or_refused)
{
	struct pol_policy *p;
	const char *file = "/tmp/pbxgate-test-path.policy";
	FILE *f = fopen(file, "w");

	cr_assert_not_null(f);
	fputs("deny path ^/management(/|$)\nallow any\n", f);
	fclose(f);
	p = pol_load(file, NULL, NULL, NULL);
	remove(file);
	cr_assert_not_null(p);
	for (size_t i = 0; i < sizeof disguised / sizeof disguised[0]; i++) {
		char out[256] = "", err[256] = "";
		int rc = norm(disguised[i].in, out, sizeof out, err, sizeof err);
		struct pol_verdict v;
		struct pol_request r = { .path = out };

		if (disguised[i].out == NULL) {
			cr_expect_eq(rc, -1, "%s accepted as %s", disguised[i].in, out);
			cr_expect_str_eq(err, disguised[i].err, "%s", disguised[i].in);
			continue;
		}
		cr_expect_eq(rc, 0, "%s: %s", disguised[i].in, err);
		cr_expect_str_eq(out, disguised[i].out, "%s", disguised[i].in);
		pol_decide(p, &r, &v);
		cr_expect_eq(v.action, POL_DENY, "%s -> %s not denied",
		    disguised[i].in, out);
	}
	pol_free(p);
}

Test(path, output_buffer_too_small_is_refused)
{
	char out[8], err[128];

	cr_assert_eq(norm("/webclient/", out, sizeof out, err, sizeof err), -1);
	cr_assert_str_eq(err, "normalised path longer than 7 bytes");
	cr_assert_str_eq(out, "/webcli");	/* never used: rc is -1 */
}

Test(path, too_long_is_refused)
{
	static char in[POL_PATH_MAX + 2], out[3 * POL_PATH_MAX + 1];
	char err[128];

	memset(in, 'a', sizeof in - 1);
	in[0] = '/';
	cr_assert_eq(pol_normalise_path(in, POL_PATH_MAX + 1, out, sizeof out,
	    err, sizeof err), -1);
	cr_assert_str_eq(err, "path longer than 8192 bytes");
	cr_assert_eq(pol_normalise_path(in, POL_PATH_MAX, out, sizeof out,
	    err, sizeof err), 0);
}

Test(path, embedded_nul_is_refused)
{
	char out[64], err[128];

	cr_assert_eq(pol_normalise_path("/a\0b", 4, out, sizeof out, err,
	    sizeof err), -1);
	cr_assert_str_eq(err, "control byte 0x00 in path at offset 2");
}

Test(path, normalisation_is_idempotent)
{
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char a[256], b[256], err[128];

		cr_assert_eq(norm(good[i].in, a, sizeof a, err, sizeof err), 0);
		cr_assert_eq(norm(a, b, sizeof b, err, sizeof err), 0, "%s", a);
		cr_expect_str_eq(a, b);
	}
}

Test(path, re_encoding_growth_is_bounded)
{
	static char in[3002], out[POL_PATH_MAX + 1];
	char err[128];

	memset(in, '>', sizeof in - 1);
	in[0] = '/';
	cr_assert_eq(norm(in, out, sizeof out, err, sizeof err), -1);
	cr_assert_str_eq(err, "normalised path longer than 8192 bytes");
}
