/* test_totp.c -- RFC 6238 vectors, oathtool agreement, base32, replay. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

static const uint8_t rfc_key[] = "12345678901234567890";

struct vec { int64_t t; uint32_t code8; };
static const struct vec rfc6238_sha1[] = {
	{ 59, 94287082 }, { 1111111109, 7081804 }, { 1111111111, 14050471 },
	{ 1234567890, 89005924 }, { 2000000000, 69279037 }, { 20000000000, 65353130 },
};

Test(totp, rfc6238_appendix_b_sha1_8_digits)
{
	for (size_t i = 0; i < sizeof(rfc6238_sha1) / sizeof(rfc6238_sha1[0]); i++)
		cr_expect_eq(auth_hotp(rfc_key, 20, (uint64_t)rfc6238_sha1[i].t / 30, 8),
		    rfc6238_sha1[i].code8, "T=%lld", (long long)rfc6238_sha1[i].t);
}

Test(totp, rfc6238_truncated_to_6_digits)
{
	for (size_t i = 0; i < sizeof(rfc6238_sha1) / sizeof(rfc6238_sha1[0]); i++)
		cr_expect_eq(auth_hotp(rfc_key, 20, (uint64_t)rfc6238_sha1[i].t / 30, 6),
		    rfc6238_sha1[i].code8 % 1000000);
}

Test(totp, match_accepts_skew_and_refuses_beyond)
{
	char code[8];

	snprintf(code, sizeof(code), "%06u", auth_hotp(rfc_key, 20, 1000, 6));
	cr_expect_eq(auth_totp_match(rfc_key, 20, code, 1000 * 30, 30, 6, 1, -1), 1000);
	cr_expect_eq(auth_totp_match(rfc_key, 20, code, 1001 * 30, 30, 6, 1, -1), 1000);
	cr_expect_eq(auth_totp_match(rfc_key, 20, code, 999 * 30, 30, 6, 1, -1), 1000);
	cr_expect_eq(auth_totp_match(rfc_key, 20, code, 1002 * 30, 30, 6, 1, -1), -1);
	cr_expect_eq(auth_totp_match(rfc_key, 20, code, 1001 * 30, 30, 6, 0, -1), -1);
}

Test(totp, match_refuses_step_already_used)
{
	char code[8];

	snprintf(code, sizeof(code), "%06u", auth_hotp(rfc_key, 20, 1000, 6));
	cr_expect_eq(auth_totp_match(rfc_key, 20, code, 1000 * 30, 30, 6, 1, 1000), -1);
}

Test(totp, match_refuses_malformed_codes)
{
	const char *bad[] = { "", "12345", "1234567", "12a456", " 23456", "-12345" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(auth_totp_match(rfc_key, 20, bad[i], 30000, 30, 6, 1, -1), -1,
		    "%s", bad[i]);
}

Test(totp, base32_roundtrip)
{
	char b[64];
	uint8_t back[32];

	cr_assert_eq(auth_base32(rfc_key, 20, b, sizeof(b)), 32);
	cr_expect_str_eq(b, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	cr_expect_eq(auth_unbase32("gezdgnbvgy3tqojqgezdgnbvgy3tqojq", back, sizeof(back)), 20);
	cr_expect_eq(memcmp(back, rfc_key, 20), 0);
	cr_expect_eq(auth_unbase32("GEZ1", back, sizeof(back)), -1);
}

/* oathtool is a separate implementation: agreement at several times. */
Test(totp, agrees_with_oathtool)
{
	const int64_t times[] = { 59, 1111111109, 1700000000, 2000000000 };
	char b32[64], cmd[256], out[32];

	auth_base32(rfc_key, 20, b32, sizeof(b32));
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		snprintf(cmd, sizeof(cmd), "oathtool --totp -b --now='@%lld' %s",
		    (long long)times[i], b32);
		FILE *p = popen(cmd, "r");
		cr_assert_not_null(p);
		cr_assert_not_null(fgets(out, sizeof(out), p));
		cr_assert_eq(pclose(p), 0, "oathtool failed (is it installed?)");
		out[strcspn(out, "\n")] = '\0';
		char mine[8];
		snprintf(mine, sizeof(mine), "%06u",
		    auth_hotp(rfc_key, 20, (uint64_t)times[i] / 30, 6));
		cr_expect_str_eq(mine, out, "T=%lld", (long long)times[i]);
	}
}

static void
code_at(const uint8_t *k, time_t now, char out[8])
{
	snprintf(out, 8, "%06u", auth_hotp(k, AUTH_TOTP_SECRET, (uint64_t)now / 30, 6));
}

Test(totp, replay_refused_and_remembered_after_reopen)
{
	struct th t;
	struct auth_user u;
	uint8_t sec[AUTH_TOTP_SECRET];
	char code[8];
	time_t now = 1700000000;

	th_init(&t);
	th_open(&t);
	th_add_user(&t, "alice", "correct horse battery", true, sec);
	code_at(sec, now, code);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_user_get(t.ctx, "alice", 0, &u), 0);
	cr_expect(auth_second_factor(t.ctx, &u, code, now));
	cr_assert_eq(auth_user_get(t.ctx, "alice", 0, &u), 0);
	cr_expect_not(auth_second_factor(t.ctx, &u, code, now), "replay accepted");
	pthread_mutex_unlock(&t.ctx->db_mu);
	th_close(&t);
	th_open(&t);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_user_get(t.ctx, "alice", 0, &u), 0);
	cr_expect_not(auth_second_factor(t.ctx, &u, code, now + 10),
	    "replay accepted after reopen");
	code_at(sec, now + 30, code);
	cr_expect(auth_second_factor(t.ctx, &u, code, now + 30));
	pthread_mutex_unlock(&t.ctx->db_mu);
	th_fini(&t);
}

Test(totp, secret_is_encrypted_at_rest)
{
	struct th t;
	struct auth_user u;
	uint8_t sec[AUTH_TOTP_SECRET];

	th_init(&t);
	th_open(&t);
	th_add_user(&t, "bob", "correct horse battery", true, sec);
	pthread_mutex_lock(&t.ctx->db_mu);
	cr_assert_eq(auth_user_get(t.ctx, "bob", 0, &u), 0);
	pthread_mutex_unlock(&t.ctx->db_mu);
	cr_expect(memmem(u.totp_sealed, sizeof(u.totp_sealed), sec, 8) == NULL);
	uint8_t back[AUTH_TOTP_SECRET];
	cr_expect_eq(auth_totp_secret(t.ctx, &u, back), 0);
	cr_expect_eq(memcmp(back, sec, sizeof(sec)), 0);
	u.id++;	/* sealed for another row: AAD differs */
	cr_expect_eq(auth_totp_secret(t.ctx, &u, back), -1);
	th_fini(&t);
}
