/* auth_factor.c -- second factor (TOTP, recovery codes) and enrolment tokens. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth_priv.h"

static void
recovery_hash(const struct auth_key *k, int64_t uid, const char *code, char out[65])
{
	char msg[96];
	uint8_t mac[32];
	int n = snprintf(msg, sizeof(msg), "recovery:%lld:%s", (long long)uid, code);

	auth_hmac256(k->mac, msg, (size_t)n, mac);
	auth_hex(mac, sizeof(mac), out);
	OPENSSL_cleanse(msg, sizeof(msg));
}

/* Lower case, dashes and spaces removed; recovery codes are 10 base32. */
static int
recovery_norm(const char *in, char out[16])
{
	size_t o = 0;

	for (; *in != '\0'; in++) {
		char ch = *in;

		if (ch == '-' || ch == ' ')
			continue;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch + 32);
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '2' && ch <= '7')) || o == 10)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return o == 10 ? 0 : -1;
}

static bool
recovery_use(struct auth_ctx *c, const struct auth_user *u, const char *code)
{
	char norm[16], h[65];
	bool ok = false;

	if (recovery_norm(code, norm) < 0)
		return false;
	for (size_t i = 0; i < c->keys.n && !ok; i++) {
		recovery_hash(&c->keys.k[i], u->id, norm, h);
		ok = c->store->recovery_use(c, u->id, h) == 1;
	}
	OPENSSL_cleanse(norm, sizeof(norm));
	return ok;
}

/* The step is recorded with a conditional UPDATE so two concurrent logins
 * with the same code cannot both win, and it survives restarts. */
static bool
totp_use(struct auth_ctx *c, const struct auth_user *u, const char *code, time_t now)
{
	uint8_t key[AUTH_TOTP_SECRET];
	int64_t step;

	if (auth_totp_secret(c, u, key) < 0)
		return false;
	step = auth_totp_match(key, sizeof(key), code, now, c->s.totp_step,
	    c->s.totp_digits, c->s.totp_skew, u->totp_last);
	OPENSSL_cleanse(key, sizeof(key));
	if (step < 0)
		return false;
	return c->store->totp_advance(c, u->id, step) == 1;
}

bool
auth_second_factor(struct auth_ctx *c, const struct auth_user *u,
    const char *code, time_t now)
{
	if (code == NULL || !u->has_totp)
		return false;
	if (strlen(code) == c->s.totp_digits)
		return totp_use(c, u, code, now);
	return recovery_use(c, u, code);
}

/* Replaces the user's recovery codes; codes are written as "abcde-fghij". */
int
auth_recovery_new(struct auth_ctx *c, int64_t uid, char codes[AUTH_RECOVERY_N][16])
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz234567";
	int rc;

	rc = c->store->recovery_clear(c, uid);
	for (int i = 0; i < AUTH_RECOVERY_N && rc == 0; i++) {
		uint8_t r[10];
		char norm[16], h[65];

		if (auth_random(r, sizeof(r)) < 0) {
			rc = -1;
			break;
		}
		for (int j = 0; j < 10; j++)
			norm[j] = al[r[j] & 31];
		norm[10] = '\0';
		snprintf(codes[i], 16, "%.5s-%.5s", norm, norm + 5);
		recovery_hash(&c->keys.k[0], uid, norm, h);
		rc = c->store->recovery_add(c, uid, h);
		OPENSSL_cleanse(norm, sizeof(norm));
	}
	return rc;
}

/* Only SHA-256 of the token is stored: a copy of the store does not give
 * working enrolment links. The site is in the hash, so a link of one site
 * finds nothing in a store another site shares. */
int
auth_enrol_hash(const struct auth_ctx *c, const char *tok, char out[65])
{
	uint8_t md[32];
	char buf[160];
	unsigned int n = 0;
	int len;

	if (tok == NULL || strlen(tok) != 64)
		return -1;
	for (size_t i = 0; i < 64; i++)
		if (!((tok[i] >= '0' && tok[i] <= '9') || (tok[i] >= 'a' && tok[i] <= 'f')))
			return -1;
	memcpy(buf, tok, 64);
	if ((len = auth_site_bind(c, buf, sizeof(buf), 64)) < 0)
		return -1;
	EVP_Digest(buf, (size_t)len, md, &n, EVP_sha256(), NULL);
	auth_hex(md, sizeof(md), out);
	return 0;
}

int
auth_enrol_token_new(struct auth_ctx *c, int64_t uid, time_t now, char tok[65])
{
	uint8_t r[32];
	char h[65];

	if (auth_random(r, sizeof(r)) < 0)
		return -1;
	auth_hex(r, sizeof(r), tok);
	if (auth_enrol_hash(c, tok, h) < 0)
		return -1;
	return c->store->enrol_add(c, h, uid,
	    (int64_t)now + c->s.enrol_link_lifetime);
}

/* Expired rows are swept at each new one, so the table holds at most
 * the steps started in the last AUTH_MFA_PENDING seconds. */
int
auth_mfa_pending_new(struct auth_ctx *c, int64_t uid, time_t now, uint8_t nonce[16])
{
	char hex[33];

	if (auth_random(nonce, 16) < 0)
		return -1;
	auth_hex(nonce, 16, hex);
	return c->store->pending_add(c, hex, uid, (int64_t)now,
	    (int64_t)now + AUTH_MFA_PENDING);
}

bool
auth_mfa_pending_live(struct auth_ctx *c, int64_t uid, time_t now, const uint8_t nonce[16])
{
	char hex[33];

	auth_hex(nonce, 16, hex);
	return c->store->pending_live(c, hex, uid, (int64_t)now) == 1;
}

bool
auth_mfa_pending_take(struct auth_ctx *c, int64_t uid, time_t now, const uint8_t nonce[16])
{
	char hex[33];

	auth_hex(nonce, 16, hex);
	return c->store->pending_take(c, hex, uid, (int64_t)now) == 1;
}
