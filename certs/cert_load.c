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

#include "certs/cert_internal.h"

static FILE *
open_pem(const char *kw, const char *file, char *err, size_t errlen)
{
	FILE *fp;

	if (file == NULL || file[0] == '\0') {
		snprintf(err, errlen, "%s: no file given: set %s to a PEM file",
		    kw, kw);
		return NULL;
	}
	fp = fopen(file, "re");
	if (fp == NULL)
		snprintf(err, errlen, "%s %s: cannot open: %s: fix the path or "
		    "the file's permissions", kw, file, strerror(errno));
	return fp;
}

static X509 *
read_leaf(const char *file, char *err, size_t errlen)
{
	FILE *fp = open_pem("tls_cert", file, err, errlen);
	X509 *x;

	if (fp == NULL)
		return NULL;
	x = PEM_read_X509(fp, NULL, cert_no_passwd_cb, NULL);
	fclose(fp);
	if (x == NULL)
		cert_fail(err, errlen, "expected PEM '-----BEGIN CERTIFICATE-----' "
		    "blocks, the server certificate first",
		    "tls_cert %s: no certificate", file);
	return x;
}

static EVP_PKEY *
read_key(const char *file, char *err, size_t errlen)
{
	FILE *fp = open_pem("tls_key", file, err, errlen);
	EVP_PKEY *k;

	if (fp == NULL)
		return NULL;
	k = PEM_read_PrivateKey(fp, NULL, cert_no_passwd_cb, NULL);
	fclose(fp);
	if (k == NULL)
		cert_fail(err, errlen, "give an unencrypted PEM private key "
		    "(ECDSA or RSA)", "tls_key %s: no usable private key", file);
	return k;
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
cert_pair_check(const struct cert_pair *p, X509 **leaf, int *key_type,
    char *err, size_t errlen)
{
	X509 *x;
	EVP_PKEY *k;
	bool ok;

	*leaf = NULL;
	if ((x = read_leaf(p->cert_file, err, errlen)) == NULL)
		return false;
	if ((k = read_key(p->key_file, err, errlen)) == NULL) {
		X509_free(x);
		return false;
	}
	ok = X509_check_private_key(x, k) == 1;
	ERR_clear_error();
	if (!ok)
		snprintf(err, errlen, "tls_key %s does not match certificate %s: "
		    "regenerate the pair or fix the path", p->key_file,
		    p->cert_file);
	else
		ok = check_dates(x, p->cert_file, err, errlen);
	*key_type = EVP_PKEY_get_base_id(k);
	EVP_PKEY_free(k);
	if (!ok) {
		X509_free(x);
		return false;
	}
	*leaf = x;
	return true;
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

/* Called after cert_pair_check(): what can still fail here is what the
 * context adds (security level, chain parsing). */
bool
cert_pair_load(SSL_CTX *ctx, const struct cert_pair *p, char *err,
    size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, p->cert_file) != 1) {
		cert_fail(err, errlen, "use a PEM file with the certificate "
		    "first and its intermediates after it; RSA keys need at "
		    "least 2048 bits", "tls_cert %s: cannot load the "
		    "certificate chain", p->cert_file);
		return false;
	}
	if (!check_chain(ctx, p->cert_file, err, errlen))
		return false;
	if (SSL_CTX_use_PrivateKey_file(ctx, p->key_file,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
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
	X509 *x = read_leaf(cert_file, err, errlen);
	int days = 0, secs = 0;

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
