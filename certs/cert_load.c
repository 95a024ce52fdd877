/* cert_load.c -- reading and validating certificate/key pairs from PEM
 * files: key matches certificate, certificate currently valid, chain loaded. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/cert_priv.h"
#include "policy/policy.h"

/* PEM files are small; a CA bundle of a few hundred certificates fits. */
#define PEM_MAX_BYTES	(4u << 20)

BIO *
cert_pem_bio(const char *kw, const char *file, char *err, size_t errlen)
{
	char why[256], *data;
	size_t len;
	BIO *bio;

	if (file == NULL || file[0] == '\0') {
		snprintf(err, errlen, "%s: no file given: set %s to a PEM file",
		    kw, kw);
		return NULL;
	}
	/* Read by us, not by OpenSSL's fopen: a FIFO, device or directory
	 * named here is refused before any read. */
	if (pol_file_read(file, PEM_MAX_BYTES, &data, &len, NULL, why,
	    sizeof why) == -1) {
		snprintf(err, errlen, "%s %s: %s: %s", kw, file, why,
		    strncmp(why, "cannot open", 11) == 0 ? "fix the path or "
		    "the file's permissions" : "name a regular PEM file");
		return NULL;
	}
	/* A memory BIO's buffer is cleansed when freed: keys pass here. */
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    BIO_write(bio, data, (int)len) != (int)len) {
		BIO_free(bio);
		bio = NULL;
		cert_fail(err, errlen, "retry", "%s %s: out of memory", kw, file);
	}
	pol_file_free(data, len);
	return bio;
}

static X509 *
read_leaf(BIO *bio, const char *file, char *err, size_t errlen)
{
	X509 *x = PEM_read_bio_X509_AUX(bio, NULL, cert_no_passwd_cb, NULL);

	if (x == NULL)
		cert_fail(err, errlen, "expected PEM '-----BEGIN CERTIFICATE-----' "
		    "blocks, the server certificate first",
		    "tls_cert %s: no certificate", file);
	return x;
}

/* The certificates after the leaf, as SSL_CTX_use_certificate_chain_file
 * reads them: to the end of the data, where "no start line" is the
 * expected way out and anything else a broken block. */
static STACK_OF(X509) *
read_chain(BIO *bio, const char *file, char *err, size_t errlen)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	unsigned long e;
	X509 *x;

	if (chain == NULL) {
		cert_fail(err, errlen, "retry", "tls_cert %s: out of memory",
		    file);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, cert_no_passwd_cb,
	    NULL)) != NULL) {
		if (sk_X509_push(chain, x) == 0) {
			X509_free(x);
			goto fail;
		}
	}
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
		return chain;
	}
fail:
	cert_fail(err, errlen, "use a PEM file with the certificate first and "
	    "its intermediates after it", "tls_cert %s: cannot read the "
	    "certificate chain", file);
	sk_X509_pop_free(chain, X509_free);
	return NULL;
}

static EVP_PKEY *
read_key(const char *file, char *err, size_t errlen)
{
	BIO *bio = cert_pem_bio("tls_key", file, err, errlen);
	EVP_PKEY *k;

	if (bio == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(bio, NULL, cert_no_passwd_cb, NULL);
	BIO_free(bio);
	if (k == NULL)
		cert_fail(err, errlen, "give an unencrypted PEM private key "
		    "(ECDSA or RSA)", "tls_key %s: no usable private key", file);
	return k;
}

/* Leaf and chain from one read of the file: what is checked is what the
 * context gets. */
static bool
read_cert(const char *file, struct cert_material *m, char *err,
    size_t errlen)
{
	BIO *bio = cert_pem_bio("tls_cert", file, err, errlen);

	if (bio == NULL)
		return false;
	if ((m->leaf = read_leaf(bio, file, err, errlen)) != NULL)
		m->chain = read_chain(bio, file, err, errlen);
	BIO_free(bio);
	return m->chain != NULL;
}

void
cert_material_clear(struct cert_material *m)
{
	X509_free(m->leaf);
	sk_X509_pop_free(m->chain, X509_free);
	EVP_PKEY_free(m->key);
	memset(m, 0, sizeof *m);
}

static void
fmt_time(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "an unreadable date");
}

static bool
check_dates(X509 *x, const char *file, char *err, size_t errlen)
{
	char when[64];

	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		fmt_time(X509_get0_notAfter(x), when, sizeof when);
		snprintf(err, errlen, "tls_cert %s expired on %s: renew it and "
		    "point tls_cert at the new file", file, when);
		return false;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
		fmt_time(X509_get0_notBefore(x), when, sizeof when);
		snprintf(err, errlen, "tls_cert %s is not valid before %s: check "
		    "the system clock or the certificate", file, when);
		return false;
	}
	return true;
}

bool
cert_pair_check(const struct cert_pair *p, struct cert_material *m,
    int *key_type, char *err, size_t errlen)
{
	bool ok;

	memset(m, 0, sizeof *m);
	if (!read_cert(p->cert_file, m, err, errlen)) {
		cert_material_clear(m);
		return false;
	}
	/* The key process holds the key: whether it matches is asked when
	 * it is installed (cert_pair_load). */
	if (cert_keyproc_attached()) {
		*key_type = EVP_PKEY_get_base_id(X509_get0_pubkey(m->leaf));
		ok = check_dates(m->leaf, p->cert_file, err, errlen);
		if (!ok)
			cert_material_clear(m);
		return ok;
	}
	if ((m->key = read_key(p->key_file, err, errlen)) == NULL) {
		cert_material_clear(m);
		return false;
	}
	ok = X509_check_private_key(m->leaf, m->key) == 1;
	ERR_clear_error();
	if (!ok)
		snprintf(err, errlen, "tls_key %s does not match certificate %s: "
		    "regenerate the pair or fix the path", p->key_file,
		    p->cert_file);
	else
		ok = check_dates(m->leaf, p->cert_file, err, errlen);
	*key_type = EVP_PKEY_get_base_id(m->key);
	if (!ok)
		cert_material_clear(m);
	return ok;
}

/* Clients reject a chain that is out of order or holds an expired
 * intermediate; better to refuse it here, with the file named. */
static bool
check_chain(SSL_CTX *ctx, const char *file, char *err, size_t errlen)
{
	STACK_OF(X509) *chain = NULL;
	X509 *child = SSL_CTX_get0_certificate(ctx);
	char when[64];
	int i;

	if (SSL_CTX_get0_chain_certs(ctx, &chain) != 1 || child == NULL) {
		cert_fail(err, errlen, "check the file", "tls_cert %s: cannot "
		    "read back the certificate chain", file);
		return false;
	}
	for (i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		if (X509_check_issued(x, child) != X509_V_OK) {
			snprintf(err, errlen, "tls_cert %s: certificate %d does "
			    "not issue the one before it: put the server "
			    "certificate first, then each issuer in order",
			    file, i + 2);
			return false;
		}
		if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
			fmt_time(X509_get0_notAfter(x), when, sizeof when);
			snprintf(err, errlen, "tls_cert %s: chain certificate %d "
			    "expired on %s: download the current intermediate "
			    "certificates from your CA", file, i + 2, when);
			return false;
		}
		child = x;
	}
	ERR_clear_error();
	return true;
}

/* Called after cert_pair_check() with what it read: what can still fail
 * here is what the context adds (security level, chain). */
bool
cert_pair_load(SSL_CTX *ctx, const struct cert_pair *p,
    const struct cert_material *m, char *err, size_t errlen)
{
	if (SSL_CTX_use_certificate(ctx, m->leaf) != 1 ||
	    SSL_CTX_set1_chain(ctx, m->chain) != 1) {
		cert_fail(err, errlen, "use a PEM file with the certificate "
		    "first and its intermediates after it; RSA keys need at "
		    "least 2048 bits", "tls_cert %s: cannot load the "
		    "certificate chain", p->cert_file);
		return false;
	}
	if (!check_chain(ctx, p->cert_file, err, errlen))
		return false;
	if (m->key == NULL)
		return cert_keyproc_use_key(ctx, m->leaf, p, err, errlen);
	if (SSL_CTX_use_PrivateKey(ctx, m->key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		cert_fail(err, errlen, "regenerate the pair or fix the path",
		    "tls_key %s: cannot use it with certificate %s",
		    p->key_file, p->cert_file);
		return false;
	}
	return true;
}

int
cert_file_days_left(const char *cert_file, char *err, size_t errlen)
{
	BIO *bio = cert_pem_bio("tls_cert", cert_file, err, errlen);
	int days = 0, secs = 0;
	X509 *x;

	if (bio == NULL)
		return INT_MIN;
	x = read_leaf(bio, cert_file, err, errlen);
	BIO_free(bio);
	if (x == NULL)
		return INT_MIN;
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1) {
		cert_fail(err, errlen, "reissue the certificate",
		    "tls_cert %s: unreadable expiry date", cert_file);
		X509_free(x);
		return INT_MIN;
	}
	X509_free(x);
	/* Round towards the past: "0 days left" must not hide "expired". */
	if (days <= 0 && secs < 0)
		days -= 1;
	return days;
}
