/* certs.h -- TLS contexts: the server side (certificates chosen by SNI,
 * session tickets with rotating keys) and the upstream client side.
 *
 * Ownership: every object returned by a *_new() is freed by the matching
 * *_free(). An SSL returned by cert_*_ssl() belongs to the caller (usually
 * handed to a bufferevent with BEV_OPT_CLOSE_ON_FREE); it holds its own
 * reference to the SSL_CTX, so freeing a cert_server while connections still
 * use it is safe (that is how SIGHUP swaps certificates without drops).
 */
#ifndef PBXGATE_CERTS_H
#define PBXGATE_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

/* Session ticket keys, shared by every server context of the process so
 * that tickets survive a reload. Rotated by cert_tickets_rotate(); the
 * previous key still decrypts (and asks for renewal) for one period. */
struct cert_tickets;
struct cert_tickets *cert_tickets_new(char *err, size_t errlen);
void cert_tickets_rotate(struct cert_tickets *);
void cert_tickets_free(struct cert_tickets *);

struct cert_pair {
	const char *cert_file;	/* PEM: leaf first, then the chain */
	const char *key_file;	/* PEM private key (ECDSA or RSA) */
};

/* Server contexts: TLS 1.2-1.3 only, Mozilla intermediate ciphers, ALPN
 * "http/1.1", SSL_MODE_RELEASE_BUFFERS. The first pair is the default;
 * the others are chosen when the client's SNI matches one of their names
 * (subjectAltName DNS entries, wildcards of one label). An ECDSA and an RSA
 * certificate for the same names may both be given. `tickets` may be NULL
 * (no tickets). Returns NULL with err filled on any failure. */
struct cert_server;
struct cert_server *cert_server_new(const struct cert_pair *pairs, size_t n,
    struct cert_tickets *tickets, char *err, size_t errlen);
SSL *cert_server_ssl(struct cert_server *);
/* Same context, ALPN and SNI, but without http/1.1 ALPN (for SMTP STARTTLS). */
SSL *cert_server_ssl_smtp(struct cert_server *);
void cert_server_free(struct cert_server *);
/* Whether any certificate answers to `host` (lower case, no final dot),
 * exactly or by a one-label wildcard: the names the gateway serves when
 * the configuration names none. */
bool cert_server_covers(const struct cert_server *, const char *host);

/* Calls fn once per leaf certificate served (each SNI context, ECDSA and
 * RSA apart): its first DNS name, its key kind ("ec", "rsa") and its
 * notAfter as a Unix time. For the certificate-expiry metric. */
typedef void (*cert_leaf_fn)(void *arg, const char *name, const char *key,
    long long not_after);
void cert_server_each(const struct cert_server *, cert_leaf_fn, void *arg);

/* Whole days until cert_file's (first certificate's) notAfter, rounded
 * down, negative once expired; INT_MIN with err filled when unreadable.
 * For the gateway to warn about certificates that expire soon. */
int cert_file_days_left(const char *cert_file, char *err, size_t errlen);

/* Upstream (client) context. verify = true requires a certificate that
 * chains to ca_file (or the system store when ca_file is NULL) and names
 * `host`. */
struct cert_client;
struct cert_client *cert_client_new(const char *ca_file, bool verify,
    char *err, size_t errlen);
/* A new SSL for one connection to `host` (SNI + hostname check). */
SSL *cert_client_ssl(struct cert_client *, const char *host);
void cert_client_free(struct cert_client *);

#endif
