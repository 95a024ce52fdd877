/* auth_crypto.c -- the secret key file, key derivation, AES-256-GCM sealing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "auth/auth_priv.h"
#include "policy/policy.h"

#define KEYFILE_MAX 4096

int
auth_random(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

void
auth_hex(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Returns bytes written or -1; inlen must be even and fit outlen. */
int
auth_unhex(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	if (inlen % 2 != 0 || inlen / 2 > outlen)
		return -1;
	for (size_t i = 0; i < inlen / 2; i++) {
		int hi = OPENSSL_hexchar2int((unsigned char)in[2 * i]);
		int lo = OPENSSL_hexchar2int((unsigned char)in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(inlen / 2);
}

static int
hkdf(const uint8_t *master, size_t mlen, const char *info, uint8_t out[AUTH_KEY_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kc;
	OSSL_PARAM p[5], *q = p;
	int r = -1;

	if (kdf == NULL)
		return -1;
	kc = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (kc == NULL)
		return -1;
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)master, mlen);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)"pbxgate", 7);
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kc, out, AUTH_KEY_LEN, p) == 1)
		r = 0;
	EVP_KDF_CTX_free(kc);
	return r;
}

static int
derive(struct auth_key *k, uint32_t kid, const uint8_t master[AUTH_KEY_LEN])
{
	k->kid = kid;
	if (hkdf(master, AUTH_KEY_LEN, "pbxgate cookie v1", k->cookie) < 0 ||
	    hkdf(master, AUTH_KEY_LEN, "pbxgate totp v1", k->totp) < 0 ||
	    hkdf(master, AUTH_KEY_LEN, "pbxgate mac v1", k->mac) < 0)
		return -1;
	return 0;
}

/* New key file "1 <64 hex>\n", created 0600 with O_EXCL so that two
 * processes starting together cannot both write one. */
static int
keyfile_create(const char *path, char *err, size_t errlen)
{
	uint8_t m[AUTH_KEY_LEN];
	char line[2 * AUTH_KEY_LEN + 8], hex[2 * AUTH_KEY_LEN + 1];
	int fd, n;

	if (auth_random(m, sizeof(m)) < 0) {
		snprintf(err, errlen, "%s: no randomness for a new secret key", path);
		return -1;
	}
	auth_hex(m, sizeof(m), hex);
	OPENSSL_cleanse(m, sizeof(m));
	n = snprintf(line, sizeof(line), "1 %s\n", hex);
	OPENSSL_cleanse(hex, sizeof(hex));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		OPENSSL_cleanse(line, sizeof(line));
		/* EACCES: a root-only folder the privsep child cannot write
		 * into; the read that follows goes through the parent and
		 * names what is wrong if the file is not there either */
		if (errno == EEXIST || errno == EACCES)
			return 0;
		snprintf(err, errlen, "%s: cannot create secret key file: %s",
		    path, strerror(errno));
		return -1;
	}
	if (write(fd, line, (size_t)n) != n || fsync(fd) < 0) {
		snprintf(err, errlen, "%s: cannot write secret key file: %s",
		    path, strerror(errno));
		OPENSSL_cleanse(line, sizeof(line));
		close(fd);
		unlink(path);
		return -1;
	}
	OPENSSL_cleanse(line, sizeof(line));
	close(fd);
	return 0;
}

static int
keyfile_read(const char *path, char *buf, size_t buflen, char *err, size_t errlen)
{
	char why[256];
	struct stat st;
	ssize_t n;
	int fd;

	/* Symbolic links stay refused: the key is not to be shared. */
	if ((fd = pol_file_open(path, O_NOFOLLOW, &st, why, sizeof(why))) < 0) {
		snprintf(err, errlen, "%s: secret key file: %s", path, why);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: secret key file must be readable "
		    "only by its owner (chmod 600)", path);
		close(fd);
		return -1;
	}
	n = read(fd, buf, buflen - 1);
	close(fd);
	if (n < 0 || (size_t)n >= buflen - 1) {
		snprintf(err, errlen, "%s: cannot read secret key file, or it is "
		    "larger than %zu bytes", path, buflen - 2);
		return -1;
	}
	buf[n] = '\0';
	return 0;
}

/* One key per line "KID HEX64", newest first; '#' comments allowed. */
static int
keyfile_parse(const char *path, char *buf, struct auth_keys *ks, char *err,
    size_t errlen)
{
	char *save = NULL;
	unsigned lineno = 0;

	ks->n = 0;
	for (char *l = strtok_r(buf, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		uint8_t m[AUTH_KEY_LEN];
		char *end;
		unsigned long kid;

		lineno++;
		if (l[0] == '#' || l[0] == '\0')
			continue;
		kid = strtoul(l, &end, 10);
		if (end == l || *end != ' ' || kid == 0 || kid > UINT32_MAX ||
		    strlen(end + 1) != 2 * AUTH_KEY_LEN ||
		    auth_unhex(end + 1, 2 * AUTH_KEY_LEN, m, sizeof(m)) < 0) {
			OPENSSL_cleanse(m, sizeof(m));	/* a part may be read */
			snprintf(err, errlen, "%s:%u: expected \"KEY-ID HEX\" with a "
			    "positive key id and 64 hex digits", path, lineno);
			return -1;
		}
		if (ks->n == AUTH_KEYS_MAX || auth_keys_find(ks, (uint32_t)kid) != NULL) {
			OPENSSL_cleanse(m, sizeof(m));
			snprintf(err, errlen, "%s:%u: duplicate key id or more than %d keys",
			    path, lineno, AUTH_KEYS_MAX);
			return -1;
		}
		if (derive(&ks->k[ks->n], (uint32_t)kid, m) < 0) {
			OPENSSL_cleanse(m, sizeof(m));
			snprintf(err, errlen, "%s: key derivation failed", path);
			return -1;
		}
		OPENSSL_cleanse(m, sizeof(m));
		ks->n++;
	}
	if (ks->n == 0) {
		snprintf(err, errlen, "%s: no key in secret key file", path);
		return -1;
	}
	return 0;
}

int
auth_keys_load(const char *path, bool create, struct auth_keys *ks, char *err,
    size_t errlen)
{
	if (create && keyfile_create(path, err, errlen) < 0)
		return -1;
	return auth_keys_read(path, ks, err, errlen);
}

int
auth_keys_read(const char *path, struct auth_keys *ks, char *err, size_t errlen)
{
	char buf[KEYFILE_MAX];
	int r;

	if (keyfile_read(path, buf, sizeof(buf), err, errlen) < 0)
		return -1;
	r = keyfile_parse(path, buf, ks, err, errlen);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (r < 0)	/* keys derived from the lines before the bad one */
		OPENSSL_cleanse(ks, sizeof(*ks));
	return r;
}

/* The same key ids in the same order, each with the same derived keys
 * (which are functions of the master key alone). */
bool
auth_keys_equal(const struct auth_keys *a, const struct auth_keys *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->k[i].kid != b->k[i].kid ||
		    CRYPTO_memcmp(a->k[i].cookie, b->k[i].cookie,
		    AUTH_KEY_LEN) != 0 ||
		    CRYPTO_memcmp(a->k[i].totp, b->k[i].totp, AUTH_KEY_LEN) != 0 ||
		    CRYPTO_memcmp(a->k[i].mac, b->k[i].mac, AUTH_KEY_LEN) != 0)
			return false;
	return true;
}

const struct auth_key *
auth_keys_find(const struct auth_keys *ks, uint32_t kid)
{
	for (size_t i = 0; i < ks->n; i++)
		if (ks->k[i].kid == kid)
			return &ks->k[i];
	return NULL;
}

int
auth_seal(const uint8_t key[AUTH_KEY_LEN], const void *aad, size_t aadlen,
    const void *pt, size_t ptlen, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len, ok;

	if (c == NULL || auth_random(out, AUTH_GCM_NONCE) < 0) {
		EVP_CIPHER_CTX_free(c);
		return -1;
	}
	ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
	    EVP_EncryptUpdate(c, NULL, &len, aad, (int)aadlen) == 1 &&
	    EVP_EncryptUpdate(c, out + AUTH_GCM_NONCE, &len, pt, (int)ptlen) == 1 &&
	    EVP_EncryptFinal_ex(c, out + AUTH_GCM_NONCE + len, &len) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AUTH_GCM_TAG,
	        out + AUTH_GCM_NONCE + ptlen) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

int
auth_unseal(const uint8_t key[AUTH_KEY_LEN], const void *aad, size_t aadlen,
    const uint8_t *in, size_t inlen, uint8_t *out)
{
	EVP_CIPHER_CTX *c;
	size_t ctlen;
	int len, ok;

	if (inlen < AUTH_SEAL_OVER)
		return -1;
	ctlen = inlen - AUTH_SEAL_OVER;
	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
	    EVP_DecryptUpdate(c, NULL, &len, aad, (int)aadlen) == 1 &&
	    EVP_DecryptUpdate(c, out, &len, in + AUTH_GCM_NONCE, (int)ctlen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AUTH_GCM_TAG,
	        (void *)(in + AUTH_GCM_NONCE + ctlen)) == 1 &&
	    EVP_DecryptFinal_ex(c, out + len, &len) == 1;
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		OPENSSL_cleanse(out, ctlen);
	return ok ? 0 : -1;
}

void
auth_hmac256(const uint8_t key[AUTH_KEY_LEN], const void *d, size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	if (HMAC(EVP_sha256(), key, AUTH_KEY_LEN, d, n, out, &len) == NULL)
		abort();	/* only on OOM; a zero MAC would let forgeries match */
}
