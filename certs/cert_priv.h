/* cert_priv.h -- declarations shared by the certs/ files; not part of the
 * module API (other modules include only certs/certs.h). */
#ifndef PBXGATE_CERT_PRIV_H
#define PBXGATE_CERT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "certs/certs.h"

/* Sessions (TLS 1.2 tickets and TLS 1.3 PSKs) live at most this long. With
 * the gateway rotating ticket keys hourly a ticket is accepted for one to
 * two rotation periods, never beyond this: two hours bound how long a
 * stolen ticket key can decrypt recorded traffic. */
#define CERT_SESSION_TIMEOUT 7200L

/* cert_tls.c */
bool cert_tls_setup(SSL_CTX *ctx, const char *what, char *err, size_t errlen);
void cert_fail(char *err, size_t errlen, const char *advice,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int cert_no_passwd_cb(char *buf, int size, int rwflag, void *u);

/* cert_load.c: read one pair once, validate it outside any SSL_CTX, then
 * load exactly what was validated. Files are read through pol_file_read
 * (regular files only, bounded), never opened by OpenSSL by path. */
struct cert_material {
	X509 *leaf;
	STACK_OF(X509) *chain;	/* the certificates after the leaf */
	EVP_PKEY *key;
};
/* A memory BIO holding `file` (a PEM file named by keyword kw), or NULL
 * with err. The caller frees it. */
BIO *cert_pem_bio(const char *kw, const char *file, char *err,
    size_t errlen);
/* Fills *m (the caller clears it with cert_material_clear) or returns
 * false with err and *m empty. */
bool cert_pair_check(const struct cert_pair *p, struct cert_material *m,
    int *key_type, char *err, size_t errlen);
bool cert_pair_load(SSL_CTX *ctx, const struct cert_pair *p,
    const struct cert_material *m, char *err, size_t errlen);
void cert_material_clear(struct cert_material *m);

/* cert_names.c: the DNS names a certificate answers to, lowercased, sorted,
 * without duplicates. */
struct cert_names {
	char **v;
	size_t n;
};
bool cert_names_get(X509 *x, const char *file, struct cert_names *out,
    char *err, size_t errlen);
void cert_names_clear(struct cert_names *);
bool cert_names_equal(const struct cert_names *, const struct cert_names *);
/* 2 = exact match, 1 = wildcard match, 0 = no match. `host` lowercased. */
int cert_names_match(const struct cert_names *, const char *host);
/* Lowercases `in` into out[outlen]; false when empty, too long, or not a
 * plausible host name (bytes outside printable ASCII). */
bool cert_host_normalize(const char *in, char *out, size_t outlen);
/* cert_sni.c: the raw server_name extension (p, len: its body, from
 * SSL_client_hello_get0_ext) into host[hostlen] as one C string: 1, or -1
 * when OpenSSL would refuse the extension or the name does not fit. */
int  cert_sni_parse(const unsigned char *p, size_t len, char *host,
    size_t hostlen);

/* cert_keyproc.c: SHA-256 of a key's DER SubjectPublicKeyInfo, the name
 * by which the key process knows a key. */
bool cert_spki_hash(EVP_PKEY *pub, uint8_t out[32]);

/* cert_keysign.c */
struct cert_kp_req;
struct cert_kp_rep;
/* Whether cert_keyproc_attach() was called: keys are then never read here. */
bool cert_keyproc_attached(void);
/* Installs in ctx, beside the leaf certificate loaded there, a key whose
 * signatures the key process makes; false with err when it holds no key
 * for that certificate. */
bool cert_keyproc_use_key(SSL_CTX *ctx, X509 *leaf, const struct cert_pair *p,
    char *err, size_t errlen);
/* One request of len bytes (sizeof *r unless a test sends a short one);
 * the answer's status, or -1 when there was none (key process gone, no
 * answer within the timeout). */
int cert_kp_call(const struct cert_kp_req *r, size_t len,
    struct cert_kp_rep *rep);

/* cert_tickets.c */
void cert_tickets_ref(struct cert_tickets *);
/* The body of an SSL_CTX_set_tlsext_ticket_key_evp_cb callback. */
int cert_tickets_crypt(struct cert_tickets *, unsigned char name[16],
    unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);
/* The same at a given time (ms since the epoch) for derived keys: what
 * cert_tickets_crypt() does with the real clock. */
int cert_tickets_crypt_at(struct cert_tickets *, uint64_t now_ms,
    unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc);
/* cert_tickets_from_file() once the secret is read, its first window
 * that of now_ms. */
struct cert_tickets *cert_tickets_from_secret(const unsigned char *secret,
    size_t len, uint64_t period_ms, uint64_t now_ms, char *err,
    size_t errlen);

/* cert_ticket_keys.c: the shared secret file and the keys of one window. */
#define CERT_TICKET_SECRET_MIN 32
#define CERT_TICKET_SECRET_MAX 1024
#define CERT_TICKET_KEYLEN     80	/* name 16, AES 32, HMAC 32 */
/* HKDF-SHA256, no salt, info "pbxgate ticket" + the window number as 8
 * big-endian bytes. False (out wiped) if OpenSSL fails. */
bool cert_ticket_derive(const unsigned char *secret, size_t len,
    uint64_t window, unsigned char out[CERT_TICKET_KEYLEN]);
/* A site's key from a key of the process (name, AES, HMAC in that order):
 * HKDF-SHA256, no salt, info "pbxgate site ticket" NUL + the site name. The
 * same key and site give the same key on every gateway; another site gives
 * an unrelated one. False (out wiped) for an empty or longer name, or if
 * OpenSSL fails. */
bool cert_ticket_site_derive(const unsigned char key[CERT_TICKET_KEYLEN],
    const char *site, unsigned char out[CERT_TICKET_KEYLEN]);
/* Reads the secret file into buf (buflen = CERT_TICKET_SECRET_MAX) after
 * checking its kind and mode; -1 with err ("PATH: reason"). */
int cert_ticket_secret_read(const char *path, unsigned char *buf,
    size_t buflen, size_t *len, char *err, size_t errlen);

#endif
