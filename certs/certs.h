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
#include <stdint.h>
#include <sys/types.h>
#include <openssl/ssl.h>

/* Session ticket keys, shared by every server context of the process so
 * that tickets survive a reload. Rotated by cert_tickets_rotate(); the
 * previous key still decrypts (and asks for renewal) for one period. */
struct cert_tickets;
struct cert_tickets *cert_tickets_new(char *err, size_t errlen);
/* Keys shared by every gateway given the same secret file (at least 32
 * bytes, no access for others, group read at most, not a symbolic link;
 * read through pol_file_open): derived with HKDF-SHA256 for each window of
 * period_ms of the real clock. The current window's key makes tickets, the
 * previous and next windows' keys still open them (clock skew); any other
 * ticket is unknown (a full handshake). cert_tickets_rotate() does nothing
 * to them. NULL with err ("FILE: what is wrong") on any failure. */
struct cert_tickets *cert_tickets_from_file(const char *path,
    uint64_t period_ms, char *err, size_t errlen);
/* A site's view of the process's keys `all` (either kind above): its
 * tickets are made and opened with keys derived from all's current,
 * previous (and next) keys and the site's name, so that a ticket of one
 * site is unknown to every other (a full handshake there), while gateways
 * sharing a tls_ticket_key_file still agree on each site's keys. It
 * follows all's rotation and windows and holds a reference to it. */
#define CERT_TICKET_SITE_MAX 63	/* bytes of a site name */
struct cert_tickets *cert_tickets_site(struct cert_tickets *all,
    const char *site, char *err, size_t errlen);
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
/* Several sites on one listener: the SNI callback asks route->fn for the
 * server of the client's name (lower case, no final dot; NULL when the
 * client sent no SNI) and answers with that server's contexts, chosen by
 * the name as above; fn returning NULL refuses the handshake with the
 * alert unrecognized_name. The SSL starts on `first`'s default context
 * (all contexts share ALPN and ticket handling). The caller keeps route,
 * its arg and every server fn returns alive until the handshake is over
 * (the SSL then holds its own reference to the chosen context). */
struct cert_route {
	struct cert_server *(*fn)(void *arg, const char *host);
	void *arg;
};
SSL *cert_server_ssl_routed(struct cert_server *first,
    const struct cert_route *route);
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

/* The key process (cert_keyproc.c): the TLS private keys live in a process
 * of their own that signs for the network process during handshakes.
 *
 * cert_keyproc_start() runs on the privileged side, before any thread is
 * started: it forks the key process, which loads key_files (read by it, as
 * the user that started it) and serves `nthreads` signing threads. *sign_fd
 * is the socket the network process signs through (pass it to
 * cert_keyproc_attach() there).
 *
 * A reload is two steps. cert_keyproc_reload() stages a new list: the key
 * process loads it all or keeps what it had, and signs with staged keys
 * too, so the new certificates can be loaded against them. Once the new
 * configuration is in force, cert_keyproc_commit() makes the staged keys
 * the live ones; the keys live before stay usable for one more generation
 * (handshakes in flight). A configuration that fails after its keys were
 * staged is simply not committed: the running keys stay, however many
 * reloads fail. A key process that has exited is replaced by
 * cert_keyproc_restart() (same sign socket, the committed list read anew).
 * cert_keyproc_stop() ends it and frees kp. */
struct cert_keyproc;
struct cert_keyproc *cert_keyproc_start(const char *const *key_files, size_t n,
    int nthreads, int *sign_fd, char *err, size_t errlen);
int cert_keyproc_reload(struct cert_keyproc *, const char *const *key_files,
    size_t n, char *err, size_t errlen);
int cert_keyproc_commit(struct cert_keyproc *, char *err, size_t errlen);
int cert_keyproc_restart(struct cert_keyproc *, char *err, size_t errlen);
pid_t cert_keyproc_pid(const struct cert_keyproc *);
void cert_keyproc_stop(struct cert_keyproc *);

/* In the network process, before any thread starts and before the first
 * cert_server_new(): from then on the server contexts of this process take
 * only the certificates from the pairs, never read a key file, and sign
 * through the key process on sign_fd (a key it does not hold for a
 * certificate fails cert_server_new()). Handshakes driven by
 * cert_server_ssl() then run as OpenSSL async jobs: SSL_ERROR_WANT_ASYNC
 * means "wait for SSL_get_all_async_fds() to be readable (or a timeout)
 * and call SSL_do_handshake() again". STARTTLS (cert_server_ssl_smtp)
 * waits for the signature in the calling thread. report_fn, may be NULL,
 * receives a line (at most one a second) when a handshake failed because
 * the key process did not answer. */
void cert_keyproc_attach(int sign_fd, void (*report_fn)(const char *msg));
/* A thread whose handshakes wait for the key process in an event loop
 * keeps each of its channel sockets (one per handshake it has waiting at
 * once, a few) in that loop for as long as the socket is open, instead of
 * adding and removing it per handshake: fn(fd, true, arg) right after a
 * channel socket is made, before its first request (fn returns false when
 * it cannot watch it: that socket is then waited for per handshake as
 * before); fn(fd, false, arg) right before it is closed (after a failure,
 * or a key process found restarted). Sockets already open are reported at
 * the call. The job's wait fd (SSL_get_all_async_fds) is such a socket:
 * the loop resumes the handshake waiting on it when it turns readable.
 * fn NULL: the thread's channel sockets are reported closed and closed,
 * and no longer watched; call it before the event loop is freed. Does
 * nothing before cert_keyproc_attach(). */
typedef bool (*cert_kp_watch_fn)(int fd, bool on, void *arg);
void cert_keyproc_watch(cert_kp_watch_fn fn, void *arg);
/* An SSL freed while its handshake waits for the key process: ends the
 * paused job first. */
void cert_ssl_abandon(SSL *);

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
