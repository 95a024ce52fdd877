/* auth_totp.c -- HOTP/TOTP (RFC 4226, RFC 6238) and base32 (RFC 4648). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth_priv.h"

static const uint32_t pow10_tab[] = { 1, 10, 100, 1000, 10000, 100000,
    1000000, 10000000, 100000000 };

uint32_t
auth_hotp(const uint8_t *key, size_t keylen, uint64_t counter, unsigned digits)
{
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	uint32_t bin;
	unsigned off;

	if (digits < 6 || digits > 8)
		return UINT32_MAX;
	for (int i = 7; i >= 0; i--, counter >>= 8)
		msg[i] = (uint8_t)(counter & 0xff);
	if (HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof(msg), mac, &maclen) == NULL ||
	    maclen != 20)
		return UINT32_MAX;
	off = mac[19] & 0x0f;
	bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
	    (uint32_t)mac[off + 2] << 8 | mac[off + 3];
	OPENSSL_cleanse(mac, sizeof(mac));
	return bin % pow10_tab[digits];
}

/* Tries every step in [T - skew, T + skew] without stopping early so the
 * time taken does not tell which step matched. */
int64_t
auth_totp_match(const uint8_t *key, size_t keylen, const char *code,
    time_t now, unsigned step, unsigned digits, unsigned skew, int64_t last_step)
{
	char want[12];
	int64_t t, found = -1;
	size_t n = code != NULL ? strlen(code) : 0;

	if (n != digits || step == 0 || now < 0 || skew > 10)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (code[i] < '0' || code[i] > '9')
			return -1;
	t = (int64_t)now / step;
	for (int64_t s = t - (int64_t)skew; s <= t + (int64_t)skew; s++) {
		uint32_t v;

		if (s < 0)
			continue;
		v = auth_hotp(key, keylen, (uint64_t)s, digits);
		snprintf(want, sizeof(want), "%0*u", (int)digits, v);
		if (CRYPTO_memcmp(want, code, digits) == 0 && s > last_step && found < 0)
			found = s;
	}
	OPENSSL_cleanse(want, sizeof(want));
	return found;
}

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* Unpadded base32, as authenticator apps expect in otpauth:// URIs. */
size_t
auth_base32(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	unsigned buf = 0, bits = 0;

	for (size_t i = 0; i < n; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			if (o + 1 >= outlen)
				return 0;
			out[o++] = b32[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0) {
		if (o + 1 >= outlen)
			return 0;
		out[o++] = b32[(buf << (5 - bits)) & 31];
	}
	out[o] = '\0';
	return o;
}

/* Returns bytes decoded or -1. Case-insensitive, no padding. */
int
auth_unbase32(const char *in, uint8_t *out, size_t outlen)
{
	size_t o = 0;
	unsigned buf = 0, bits = 0;

	for (; *in != '\0'; in++) {
		const char *p;
		char c = *in;

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		if (c == '=')
			break;
		if ((p = strchr(b32, c)) == NULL || c == '\0')
			return -1;
		buf = (buf << 5) | (unsigned)(p - b32);
		bits += 5;
		if (bits >= 8) {
			if (o == outlen)
				return -1;
			out[o++] = (uint8_t)(buf >> (bits - 8));
			bits -= 8;
		}
	}
	return (int)o;
}
