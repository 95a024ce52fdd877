/* test_password.c -- PHC strings, Argon2id verification, rehash decisions. */
#include <criterion/criterion.h>
#include <string.h>

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
