/* auth_password.c -- Argon2id password hashes in PHC string form. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth_priv.h"

#define SALT_LEN 16
#define HASH_LEN 32

/* Reads "key=NUMBER" at *p, advancing past it. */
static int
phc_num(const char **p, char key, uint32_t *out)
{
	const char *s = *p;
	unsigned long long v = 0;
	size_t digits = 0;

	if (s[0] != key || s[1] != '=')
		return -1;
	for (s += 2; *s >= '0' && *s <= '9' && digits < 10; s++, digits++)
		v = v * 10 + (unsigned)(*s - '0');
	if (digits == 0 || v > UINT32_MAX || (digits > 1 && s[-(long)digits] == '0'))
		return -1;
	*out = (uint32_t)v;
	*p = s;
	return 0;
}

/* Length of an unpadded standard-base64 field up to '$' or end. */
static int
b64_field(const char **p, char stop, size_t *bytes)
{
	const char *s = *p;
	size_t n = 0;

	while (*s != stop && *s != '\0') {
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '+' || *s == '/'))
			return -1;
		s++, n++;
	}
	if (n == 0 || n % 4 == 1 || *s != stop)
		return -1;
	*bytes = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	*p = s;
	return 0;
}

/* "$argon2id$v=19$m=65536,t=3,p=4$SALT$HASH": the only form we write or
 * accept; anything else (argon2i, missing version, padding) is refused. */
int
auth_phc_parse(const char *s, struct auth_phc *o)
{
	const char *p = s;

	memset(o, 0, sizeof(*o));
	if (s == NULL || strlen(s) >= AUTH_PHC_MAX || strncmp(p, "$argon2id$", 10) != 0)
		return -1;
	p += 10;
	if (phc_num(&p, 'v', &o->version) < 0 || o->version != ARGON2_VERSION_13 ||
	    *p++ != '$')
		return -1;
	if (phc_num(&p, 'm', &o->m) < 0 || *p++ != ',' ||
	    phc_num(&p, 't', &o->t) < 0 || *p++ != ',' ||
	    phc_num(&p, 'p', &o->p) < 0 || *p++ != '$')
		return -1;
	if (o->t < 1 || o->p < 1 || o->m < 8 * o->p)
		return -1;
	if (b64_field(&p, '$', &o->saltlen) < 0 || *p++ != '$')
		return -1;
	if (b64_field(&p, '\0', &o->hashlen) < 0)
		return -1;
	if (o->saltlen < 8 || o->hashlen < 16 || o->hashlen > 64)
		return -1;
	return 0;
}

int
auth_pw_hash(uint32_t m, uint32_t t, uint32_t p, const char *pw, size_t pwlen,
    char out[AUTH_PHC_MAX], char *err, size_t errlen)
{
	uint8_t salt[SALT_LEN];
	int r;

	if (argon2_encodedlen(t, m, p, SALT_LEN, HASH_LEN, Argon2_id) > AUTH_PHC_MAX) {
		snprintf(err, errlen, "argon2 parameters too large to encode");
		return -1;
	}
	if (auth_random(salt, sizeof(salt)) < 0) {
		snprintf(err, errlen, "no randomness for a password salt");
		return -1;
	}
	r = argon2id_hash_encoded(t, m, p, pw, pwlen, salt, SALT_LEN, HASH_LEN,
	    out, AUTH_PHC_MAX);
	if (r != ARGON2_OK) {
		snprintf(err, errlen, "argon2id failed: %s", argon2_error_message(r));
		return -1;
	}
	return 0;
}

/* Unpadded standard base64 (PHC) into out; -1 unless exactly want bytes. */
static int
b64_decode(const char *s, size_t n, uint8_t *out, size_t want)
{
	char in[128];
	uint8_t tmp[96];
	size_t padded = (n + 3) / 4 * 4;
	int r;

	if (n == 0 || padded >= sizeof(in) || padded / 4 * 3 > sizeof(tmp))
		return -1;
	memcpy(in, s, n);
	memset(in + n, '=', padded - n);
	r = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)padded);
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (r < 0 || (size_t)r < want || (size_t)r - want > 2)
		return -1;
	memcpy(out, tmp, want);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return 0;
}

/* One Argon2id run as a verification makes it: one thread per hash
 * whatever p says (p still sets the lanes, so the hash is the same): the
 * pool already runs logins side by side, and libargon2's per-segment
 * threads (4 lanes x 4 slices x t) only add thread churn on cores the
 * event loops need. */
static void
run_ctx(argon2_context *ctx, uint8_t *out, size_t outlen, const char *pw,
    size_t pwlen, uint8_t *salt, size_t saltlen, uint32_t m, uint32_t t,
    uint32_t p)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->out = out;
	ctx->outlen = (uint32_t)outlen;
	ctx->pwd = (uint8_t *)(uintptr_t)pw;	/* libargon2 only reads it */
	ctx->pwdlen = (uint32_t)pwlen;
	ctx->salt = salt;
	ctx->saltlen = (uint32_t)saltlen;
	ctx->t_cost = t;
	ctx->m_cost = m;
	ctx->lanes = p;
	ctx->threads = 1;
	ctx->version = ARGON2_VERSION_13;
	ctx->flags = ARGON2_DEFAULT_FLAGS;
}

/* libargon2 recomputes the hash and compares in constant time
 * (argon2_compare, inside argon2_verify_ctx); we refuse malformed strings
 * first so that no parameter in a stored string can make it allocate
 * unbounded memory. */
bool
auth_pw_verify(const char *phc, const char *pw, size_t pwlen)
{
	struct auth_phc ph;
	argon2_context ctx;
	uint8_t salt[48], want[64], got[64];
	const char *salt_b64, *hash_b64;
	int r;

	if (auth_phc_parse(phc, &ph) < 0 || ph.m > AUTH_PW_MAX_M_KIB ||
	    ph.t > AUTH_PW_MAX_T || ph.p > AUTH_PW_MAX_P)
		return false;
	/* auth_phc_parse checked the layout: the last two '$' fields */
	hash_b64 = strrchr(phc, '$') + 1;
	salt_b64 = hash_b64 - 1;
	while (salt_b64[-1] != '$')
		salt_b64--;
	if (ph.saltlen > sizeof(salt) ||
	    b64_decode(salt_b64, (size_t)(hash_b64 - 1 - salt_b64), salt, ph.saltlen) < 0 ||
	    b64_decode(hash_b64, strlen(hash_b64), want, ph.hashlen) < 0)
		return false;
	run_ctx(&ctx, got, ph.hashlen, pw, pwlen, salt, ph.saltlen, ph.m, ph.t, ph.p);
	r = pwlen > UINT32_MAX ? ARGON2_PWD_TOO_LONG :
	    argon2_verify_ctx(&ctx, (const char *)want, Argon2_id);
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return r == ARGON2_OK;
}

/* The work of one auth_pw_verify at cost m,t,p with nothing to compare:
 * a name that is not a user pays it, so the answer takes as long as a
 * wrong password does. Nothing is kept, so no hash has to be made in
 * advance (it was one per login context, at every start and reload). */
int
auth_pw_burn(uint32_t m, uint32_t t, uint32_t p, const char *pw, size_t pwlen)
{
	argon2_context ctx;
	uint8_t salt[SALT_LEN], got[HASH_LEN];
	int r;

	if (m > AUTH_PW_MAX_M_KIB || t > AUTH_PW_MAX_T || p > AUTH_PW_MAX_P ||
	    pwlen > UINT32_MAX || auth_random(salt, sizeof(salt)) < 0)
		return -1;
	run_ctx(&ctx, got, sizeof(got), pw, pwlen, salt, sizeof(salt), m, t, p);
	r = argon2_ctx(&ctx, Argon2_id);
	OPENSSL_cleanse(got, sizeof(got));
	return r == ARGON2_OK ? 0 : -1;
}

bool
auth_pw_needs_rehash(const char *phc, uint32_t m, uint32_t t, uint32_t p)
{
	struct auth_phc ph;

	if (auth_phc_parse(phc, &ph) < 0)
		return true;
	return ph.m != m || ph.t != t || ph.p != p || ph.hashlen != HASH_LEN;
}

int
auth_password_phc_check(const char *phc, char *err, size_t errlen)
{
	struct auth_phc ph;

	if (auth_phc_parse(phc, &ph) < 0) {
		snprintf(err, errlen, "not an Argon2id hash ($argon2id$v=19$"
		    "m=...,t=...,p=...$SALT$HASH; other variants are refused): "
		    "make one with `pbxgate hash`");
		return -1;
	}
	if (ph.m < AUTH_PW_MIN_M_KIB || ph.t < AUTH_PW_MIN_T) {
		snprintf(err, errlen, "Argon2id cost m=%u,t=%u is too weak (at "
		    "least m=%u,t=%u): make a new hash with `pbxgate hash`",
		    ph.m, ph.t, AUTH_PW_MIN_M_KIB, AUTH_PW_MIN_T);
		return -1;
	}
	if (ph.m > AUTH_PW_MAX_M_KIB || ph.t > AUTH_PW_MAX_T ||
	    ph.p > AUTH_PW_MAX_P) {
		snprintf(err, errlen, "Argon2id cost m=%u,t=%u,p=%u is above "
		    "the limit (m<=%u,t<=%u,p<=%u)", ph.m, ph.t, ph.p,
		    AUTH_PW_MAX_M_KIB, AUTH_PW_MAX_T, AUTH_PW_MAX_P);
		return -1;
	}
	return 0;
}

bool
auth_password_verify(const char *phc, const char *pw, size_t pwlen)
{
	return auth_pw_verify(phc, pw, pwlen);
}
