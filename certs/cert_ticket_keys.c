/* cert_ticket_keys.c -- ticket keys shared by several gateways: the secret
 * file (tls_ticket_key_file), the per-window key derivation (HKDF) and
 * the per-site keys derived from those of the process. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>

#include "certs/cert_priv.h"
#include "policy/policy.h"

/* The label every instance puts before the big-endian window number, so
 * that the keys of one window are the same wherever the file is. */
static const char ticket_label[] = "pbxgate ticket";

/* HKDF-SHA256 (no salt) of key with info, CERT_TICKET_KEYLEN bytes. */
static bool
hkdf(const unsigned char *key, size_t keylen, const unsigned char *info,
    size_t infolen, unsigned char out[CERT_TICKET_KEYLEN])
{
	char digest[] = "SHA256";
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kc = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM p[4];
	bool ok;

	EVP_KDF_free(kdf);
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest,
	    0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)key, keylen);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (void *)info, infolen);
	p[3] = OSSL_PARAM_construct_end();
	ok = kc != NULL &&
	    EVP_KDF_derive(kc, out, CERT_TICKET_KEYLEN, p) == 1;
	EVP_KDF_CTX_free(kc);
	ERR_clear_error();
	if (!ok)
		OPENSSL_cleanse(out, CERT_TICKET_KEYLEN);
	return ok;
}

bool
cert_ticket_derive(const unsigned char *secret, size_t len, uint64_t window,
    unsigned char out[CERT_TICKET_KEYLEN])
{
	unsigned char info[sizeof ticket_label - 1 + 8];

	memcpy(info, ticket_label, sizeof ticket_label - 1);
	for (int i = 0; i < 8; i++)
		info[sizeof ticket_label - 1 + i] =
		    (unsigned char)(window >> (56 - 8 * i));
	return hkdf(secret, len, info, sizeof info, out);
}

/* A label of its own, ended by a NUL so that no site name can make the
 * info of a window key (whose label is a prefix of this one's). */
static const char site_label[] = "pbxgate site ticket";

bool
cert_ticket_site_derive(const unsigned char key[CERT_TICKET_KEYLEN],
    const char *site, unsigned char out[CERT_TICKET_KEYLEN])
{
	unsigned char info[sizeof site_label + CERT_TICKET_SITE_MAX];
	size_t n = strnlen(site, CERT_TICKET_SITE_MAX + 1);

	if (n == 0 || n > CERT_TICKET_SITE_MAX) {
		OPENSSL_cleanse(out, CERT_TICKET_KEYLEN);
		return false;
	}
	memcpy(info, site_label, sizeof site_label);	/* with its NUL */
	memcpy(info + sizeof site_label, site, n);
	return hkdf(key, CERT_TICKET_KEYLEN, info, sizeof site_label + n, out);
}

/* Whoever reads the file can decrypt every ticket made from it, and so
 * the traffic of every resumed session: owner read-write, group read at
 * most (a group the gateways' administrators share), nothing for others. */
static bool
secret_mode_ok(mode_t mode)
{
	return (mode & (S_IWGRP | S_IXGRP | S_IRWXO)) == 0;
}

int
cert_ticket_secret_read(const char *path, unsigned char *buf, size_t buflen,
    size_t *len, char *err, size_t errlen)
{
	char why[256];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, saved;

	/* A symbolic link stays refused, as for secret_key: the file is
	 * copied to each gateway, never pointed at. */
	if ((fd = pol_file_open(path, O_NOFOLLOW, &st, why, sizeof why)) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	if (!secret_mode_ok(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: mode %04o: readable or writable by "
		    "others than its owner (and a group, read only): chmod 600",
		    path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	do {
		n = read(fd, got < buflen ? buf + got : (unsigned char *)why,
		    got < buflen ? buflen - got : 1);
		if (n > 0 && got == buflen) {	/* one byte too many */
			close(fd);
			OPENSSL_cleanse(buf, buflen);
			OPENSSL_cleanse(why, sizeof why);
			snprintf(err, errlen, "%s: larger than %zu bytes", path,
			    buflen);
			return -1;
		}
		got += n > 0 ? (size_t)n : 0;
	} while (n > 0);
	saved = n < 0 ? errno : 0;
	close(fd);
	if (n < 0) {
		OPENSSL_cleanse(buf, buflen);
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    strerror(saved));
		return -1;
	}
	if (got < CERT_TICKET_SECRET_MIN) {
		OPENSSL_cleanse(buf, buflen);
		snprintf(err, errlen, "%s: %zu bytes, at least %d random bytes "
		    "needed (openssl rand 32 > FILE)", path, got,
		    CERT_TICKET_SECRET_MIN);
		return -1;
	}
	*len = got;
	return 0;
}
