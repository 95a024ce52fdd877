/* smtp_auth.c -- the PBX's SMTP login: base64 responses (RFC 4954), SASL
 * PLAIN (RFC 4616) and the Argon2 check of the configured credential. */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth.h"
#include "mail/mail_priv.h"

int
smtp_b64_decode(const char *in, unsigned char *out, size_t outlen, size_t *n)
{
	size_t len = strlen(in), pad = 0;
	int r;

	if (len == 0) {
		*n = 0;
		return 0;
	}
	if (len % 4 != 0 || len / 4 * 3 > outlen || len > (size_t)INT32_MAX)
		return -1;
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	/* EVP_DecodeBlock accepts '=' only at the end; it counts the padding
	 * as zero bytes, which are taken off here. */
	for (size_t i = 0; i < len - pad; i++)
		if (in[i] == '=')
			return -1;
	r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (r < 0 || (size_t)r < pad)
		return -1;
	*n = (size_t)r - pad;
	return 0;
}

bool
smtp_auth_check(const struct mail_ctx *c, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	const char *cu = c->s.auth_user, *h = c->s.auth_hash;
	bool user_ok, pass_ok;

	if (cu == NULL || h == NULL)
		return false;
	user_ok = ulen == strlen(cu) && CRYPTO_memcmp(user, cu, ulen) == 0;
	/* Runs whatever the user name, so timing does not tell which part
	 * was wrong. The gateway's own verifier: Argon2id only, bounded
	 * cost, one thread per hash (the pool runs checks side by side). */
	pass_ok = auth_password_verify(h, pass, plen);
	return user_ok && pass_ok;
}

bool
smtp_auth_plain_split(const unsigned char *resp, size_t n, const char **user,
    size_t *ulen, const char **pass, size_t *plen)
{
	const unsigned char *z1 = memchr(resp, '\0', n), *z2;
	size_t azl, ul, pl;

	if (z1 == NULL)
		return false;
	azl = (size_t)(z1 - resp);
	z2 = memchr(z1 + 1, '\0', n - azl - 1);
	if (z2 == NULL)
		return false;
	ul = (size_t)(z2 - (z1 + 1));
	pl = n - azl - ul - 2;
	if (memchr(z2 + 1, '\0', pl) != NULL)
		return false;
	/* Acting as someone else (authzid) is not offered. */
	if (azl != 0 && (azl != ul || memcmp(resp, z1 + 1, ul) != 0))
		return false;
	*user = (const char *)z1 + 1;
	*ulen = ul;
	*pass = (const char *)z2 + 1;
	*plen = pl;
	return true;
}

bool
smtp_auth_plain(const struct mail_ctx *c, const unsigned char *resp, size_t n)
{
	const char *user, *pass;
	size_t ul, pl;

	if (!smtp_auth_plain_split(resp, n, &user, &ul, &pass, &pl))
		return false;
	return smtp_auth_check(c, user, ul, pass, pl);
}
