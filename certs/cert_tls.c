/* cert_tls.c -- TLS parameters shared by server and client contexts, and the
 * one way this module turns a failure into an error message. */
#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

#include "certs/cert_priv.h"

/* Mozilla "intermediate" (guideline v5.7): AEAD + forward secrecy only. The
 * DHE suites matter only for old clients talking to an RSA certificate; they
 * use the fixed RFC 7919 group ffdhe2048 (see cert_server.c). */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
    "DHE-RSA-CHACHA20-POLY1305";
/* OpenSSL's TLS 1.3 default, spelled out so that openssl.cnf cannot change
 * it behind our back. */
static const char tls13_suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
    "TLS_CHACHA20_POLY1305_SHA256";
static const char groups[] = "X25519:prime256v1:secp384r1";

void
cert_fail(char *err, size_t errlen, const char *advice, const char *fmt, ...)
{
	char what[768];
	char reason[256] = "";
	unsigned long e = ERR_peek_error();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (e != 0)
		ERR_error_string_n(e, reason, sizeof reason);
	ERR_clear_error();
	if (err == NULL || errlen == 0)
		return;
	if (reason[0] != '\0')
		snprintf(err, errlen, "%s (%s): %s", what, reason, advice);
	else
		snprintf(err, errlen, "%s: %s", what, advice);
}

/* An encrypted key would make OpenSSL prompt on the terminal; a daemon must
 * fail instead. */
int
cert_no_passwd_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* Everything here is set explicitly: Debian's openssl.cnf happens to agree
 * today, but the system configuration is not ours to rely on. */
bool
cert_tls_setup(SSL_CTX *ctx, const char *what, char *err, size_t errlen)
{
	const char *fix = "this OpenSSL build lacks a required feature; "
	    "install Debian's OpenSSL 3";

	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		cert_fail(err, errlen, fix, "%s: cannot limit TLS versions "
		    "to 1.2-1.3", what);
		return false;
	}
	/* Level 2: RSA/DH >= 2048 bits, ECC >= 224 bits, no SHA-1 signatures. */
	SSL_CTX_set_security_level(ctx, 2);
	if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1) {
		cert_fail(err, errlen, fix, "%s: cannot set the cipher list",
		    what);
		return false;
	}
	if (SSL_CTX_set1_groups_list(ctx, groups) != 1) {
		cert_fail(err, errlen, fix, "%s: cannot set groups %s", what,
		    groups);
		return false;
	}
	/* Intermediate leaves the choice to the client: every suite on the
	 * list is strong, and clients know whether they have AES hardware. */
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	/* RELEASE_BUFFERS: an idle connection keeps no 16 KiB record buffers.
	 * ACCEPT_MOVING_WRITE_BUFFER: evbuffers may move between retries. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_passwd_cb(ctx, cert_no_passwd_cb);
	ERR_clear_error();
	return true;
}
