/* test_password.c -- PHC strings, Argon2id verification, rehash decisions. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

Test(phc, parse_good)
{
	struct auth_phc p;

	cr_assert_eq(auth_phc_parse("$argon2id$v=19$m=65536,t=3,p=4$"
	    "c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU", &p), 0);
	cr_expect_eq(p.m, 65536);
	cr_expect_eq(p.t, 3);
	cr_expect_eq(p.p, 4);
	cr_expect_eq(p.saltlen, 16);
	cr_expect_eq(p.hashlen, 32);
}

struct bad { const char *name, *s; };
static const struct bad bad_phc[] = {
	{ "argon2i", "$argon2i$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "no version", "$argon2id$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "old version", "$argon2id$v=16$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "t=0", "$argon2id$v=19$m=65536,t=0,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "m too small", "$argon2id$v=19$m=8,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "leading zero", "$argon2id$v=19$m=065536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "padding", "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA==$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "short salt", "$argon2id$v=19$m=65536,t=3,p=4$c29tZQ$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "no hash", "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$" },
	{ "trailing", "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcA$" },
	{ "huge m", "$argon2id$v=19$m=99999999999,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcA" },
	{ "empty", "" },
};

Test(phc, parse_refuses_each_bad_form)
{
	struct auth_phc p;

	for (size_t i = 0; i < sizeof(bad_phc) / sizeof(bad_phc[0]); i++)
		cr_expect_eq(auth_phc_parse(bad_phc[i].s, &p), -1, "%s", bad_phc[i].name);
}

Test(phc, hash_then_verify_small_params)
{
	char phc[AUTH_PHC_MAX], err[128];

	cr_assert_eq(auth_pw_hash(64, 1, 1, "hunter22hunter", 14, phc, err, sizeof(err)), 0);
	cr_expect_eq(strncmp(phc, "$argon2id$v=19$m=64,t=1,p=1$", 28), 0, "%s", phc);
	cr_expect(auth_pw_verify(phc, "hunter22hunter", 14));
	cr_expect_not(auth_pw_verify(phc, "hunter22hunteR", 14));
	cr_expect_not(auth_pw_verify(phc, "hunter22hunte", 13));
	cr_expect_not(auth_pw_verify("garbage", "hunter22hunter", 14));
}

/* Strings made by Debian's reference `argon2` tool (echo -n PW | argon2 SALT
 * -id -t T -k M -p P -l LEN -e): our own verifier (one thread, p lanes)
 * must agree with it for every salt and hash length base64 can end on. */
static const struct { const char *phc, *pw; } ref_phc[] = {
	{ "$argon2id$v=19$m=256,t=2,p=2$c2FsdHNhbHQ$yoiFaHHl9pj5IsGfTXjfWA", "correct horse" },
	{ "$argon2id$v=19$m=64,t=1,p=4$c29tZXNhbHRzb21lc2FsdA$4/ZrDcdJ++z0jj95DoXgDE7B1VxKlG7x"
	  "+svz6vbR1xBrFtqCTzGoNn5bxhkEkqu0soSpRuCD2BxmDzi2MaaNiw", "correct horse" },
	{ "$argon2id$v=19$m=32,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$"
	  "IFk7gP26/4SQDCR/FhiV0ZHAGqogSNuS60NEQozej8w1", "x" },
};

Test(phc, verify_agrees_with_reference_tool)
{
	for (size_t i = 0; i < sizeof(ref_phc) / sizeof(ref_phc[0]); i++) {
		const char *pw = ref_phc[i].pw;

		cr_expect(auth_pw_verify(ref_phc[i].phc, pw, strlen(pw)), "vector %zu", i);
		cr_expect_not(auth_pw_verify(ref_phc[i].phc, "correct horsf", 13), "vector %zu", i);
	}
}

/* A flipped bit anywhere in the stored salt or hash must fail. */
Test(phc, verify_refuses_altered_salt_or_hash)
{
	const char *good = ref_phc[0].phc;
	size_t n = strlen(good), salt = (size_t)(strrchr(good, '$') - good) - 11;
	char s[AUTH_PHC_MAX];

	cr_assert(auth_pw_verify(good, "correct horse", 13));
	memcpy(s, good, n + 1);
	s[salt] = s[salt] == 'A' ? 'B' : 'A';
	cr_expect_not(auth_pw_verify(s, "correct horse", 13), "salt %s", s);
	memcpy(s, good, n + 1);
	s[n - 3] = s[n - 3] == 'A' ? 'B' : 'A';
	cr_expect_not(auth_pw_verify(s, "correct horse", 13), "hash %s", s);
}

Test(phc, rehash_needed_when_params_change)
{
	char phc[AUTH_PHC_MAX], err[128];

	cr_assert_eq(auth_pw_hash(64, 1, 1, "pw-pw-pw-pw", 11, phc, err, sizeof(err)), 0);
	cr_expect_not(auth_pw_needs_rehash(phc, 64, 1, 1));
	cr_expect(auth_pw_needs_rehash(phc, 128, 1, 1));
	cr_expect(auth_pw_needs_rehash(phc, 64, 2, 1));
	cr_expect(auth_pw_needs_rehash(phc, 64, 1, 2));
}

/* One test at the RFC 9106 defaults: the real cost works end to end. */
Test(phc, default_params_roundtrip, .timeout = 60)
{
	char phc[AUTH_PHC_MAX], err[128];
	struct auth_settings s;

	auth_settings_defaults(&s);
	cr_assert_eq(auth_pw_hash(s.argon2_m_kib, s.argon2_t, s.argon2_p, "a long pass",
	    11, phc, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(strncmp(phc, "$argon2id$v=19$m=65536,t=3,p=4$", 31), 0);
	cr_expect(auth_pw_verify(phc, "a long pass", 11));
}

/* The process's CPU time, all threads: these tests compare the work two
 * paths do, which wall time measures only on an idle machine (CI runs
 * other jobs beside; one answer stretched to twice its pair's time). */
static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Unknown names pay auth_pw_burn instead of a verification: it must cost
 * what one costs at the same parameters, or the answer time would tell
 * which names exist. Best of three of each, within a factor of two. */
Test(phc, burn_costs_one_verification, .timeout = 60)
{
	char phc[AUTH_PHC_MAX], err[256];
	double t0, d, v = 1e9, b = 1e9;

	cr_assert_eq(auth_pw_hash(16384, 8, 1, "secret", 6, phc, err, sizeof(err)), 0,
	    "%s", err);
	for (int i = 0; i < 3; i++) {
		t0 = cpu_s();
		cr_assert(!auth_pw_verify(phc, "wrong!", 6));
		d = cpu_s() - t0;
		v = d < v ? d : v;
		t0 = cpu_s();
		cr_assert_eq(auth_pw_burn(16384, 8, 1, "wrong!", 6), 0);
		d = cpu_s() - t0;
		b = d < b ? d : b;
	}
	cr_expect(b > v / 2 && b < v * 2, "burn %.3f s, verify %.3f s", b, v);
}

/* Parameters a stored hash could not have are refused before libargon2
 * allocates anything: each bound on its own. */
Test(phc, burn_refuses_each_absurd_cost)
{
	cr_expect_eq(auth_pw_burn(AUTH_PW_MAX_M_KIB + 1, 1, 1, "x", 1), -1);
	cr_expect_eq(auth_pw_burn(64, AUTH_PW_MAX_T + 1, 1, "x", 1), -1);
	cr_expect_eq(auth_pw_burn(1024, 1, AUTH_PW_MAX_P + 1, "x", 1), -1);
	cr_expect_eq(auth_pw_burn(64, 0, 1, "x", 1), -1);	/* libargon2's own */
	cr_expect_eq(auth_pw_burn(64, 1, 1, "x", 1), 0);
}
