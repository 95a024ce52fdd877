/* cert_client.c -- the upstream (client) TLS context: verification of the
 * upstream's certificate and name, ALPN, and a small session cache so that
 * new upstream connections resume instead of doing a full handshake. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/cert_priv.h"
#include "policy/policy.h"

#define CACHE_SLOTS 16		/* distinct upstream hosts remembered */

struct sess_slot {
	char host[256];
	SSL_SESSION *sess;
};

/* Owned by the SSL_CTX (ex_data), so it lives as long as any SSL made from
 * it, even after cert_client_free(). Worker threads share it: mutex. */
struct sess_cache {
	pthread_mutex_t lock;
	struct sess_slot slot[CACHE_SLOTS];
	size_t next;		/* round-robin victim */
};

struct cert_client {
	SSL_CTX *ctx;
	bool verify;
};

static int cache_idx = -1;	/* SSL_CTX ex_data: struct sess_cache * */
static int host_idx = -1;	/* SSL ex_data: malloc'd lowercase host */
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void
cache_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	struct sess_cache *c = ptr;
	size_t i;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (c == NULL)
		return;
	for (i = 0; i < CACHE_SLOTS; i++)
		SSL_SESSION_free(c->slot[i].sess);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void
host_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

/* SSL_dup() would otherwise share (and doubly free) the host string. */
static int
host_ex_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d,
    int idx, long argl, void *argp)
{
	(void)to, (void)from, (void)idx, (void)argl, (void)argp;
	if (*from_d != NULL && (*from_d = strdup(*from_d)) == NULL)
		return 0;
	return 1;
}

static void
idx_init(void)
{
	cache_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
	    cache_ex_free);
	host_idx = SSL_get_ex_new_index(0, NULL, NULL, host_ex_dup,
	    host_ex_free);
}

/* Stores a copy: OpenSSL marks an SSL's own session unresumable when the
 * SSL is freed without close_notify (RFC 2246 rules; TLS 1.1+ dropped
 * them), and pooled upstream connections often end that way. */
static int
cache_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct sess_cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
	    cache_idx);
	const char *host = SSL_get_ex_data(ssl, host_idx);
	SSL_SESSION *copy, *old;
	struct sess_slot *s = NULL;
	size_t i;

	if (c == NULL || host == NULL || !SSL_SESSION_is_resumable(sess) ||
	    (copy = SSL_SESSION_dup(sess)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < CACHE_SLOTS && s == NULL; i++)
		if (strcmp(c->slot[i].host, host) == 0)
			s = &c->slot[i];
	if (s == NULL) {
		s = &c->slot[c->next];
		c->next = (c->next + 1) % CACHE_SLOTS;
		snprintf(s->host, sizeof s->host, "%s", host);
	}
	old = s->sess;
	s->sess = copy;
	pthread_mutex_unlock(&c->lock);
	SSL_SESSION_free(old);
	return 0;
}

/* The cache is keyed by the exact host the session was verified for, so a
 * resumed session (which skips certificate checks) never crosses names. */
static void
cache_resume(SSL_CTX *ctx, SSL *ssl, const char *host)
{
	struct sess_cache *c = SSL_CTX_get_ex_data(ctx, cache_idx);
	SSL_SESSION *sess = NULL;
	size_t i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < CACHE_SLOTS; i++) {
		if (c->slot[i].sess != NULL &&
		    strcmp(c->slot[i].host, host) == 0) {
			/* A private copy: see cache_new_session(). */
			sess = SSL_SESSION_dup(c->slot[i].sess);
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (sess == NULL)
		return;
	if (SSL_SESSION_is_resumable(sess))
		SSL_set_session(ssl, sess);
	SSL_SESSION_free(sess);
}

static bool
cache_attach(SSL_CTX *ctx)
{
	struct sess_cache *c = calloc(1, sizeof *c);

	if (c == NULL)
		return false;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return false;
	}
	if (SSL_CTX_set_ex_data(ctx, cache_idx, c) != 1) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return false;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, cache_new_session);
	return true;
}

/* The anchors are read by us into memory (regular file, bounded) and
 * added from there, as SSL_CTX_load_verify_locations would add them:
 * every certificate and CRL in the file; none at all is an error. */
static bool
load_ca(SSL_CTX *ctx, const char *ca_file, char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_INFO) *infos;
	BIO *bio;
	int i, n = 0, bad = 0;

	if ((bio = cert_pem_bio("upstream_ca", ca_file, err, errlen)) == NULL)
		return false;
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	BIO_free(bio);
	for (i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);

		if (xi->x509 != NULL && X509_STORE_add_cert(store, xi->x509) != 1)
			bad++;
		if (xi->crl != NULL && X509_STORE_add_crl(store, xi->crl) != 1)
			bad++;
		n += xi->x509 != NULL;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	if (infos == NULL || n == 0 || bad != 0) {
		cert_fail(err, errlen, "give a PEM file of CA certificates",
		    "upstream_ca %s: no usable CA certificate", ca_file);
		return false;
	}
	ERR_clear_error();
	return true;
}

static bool
client_trust(SSL_CTX *ctx, const char *ca_file, char *err, size_t errlen)
{
	X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx),
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file == NULL) {
		if (SSL_CTX_set_default_verify_paths(ctx) == 1)
			return true;
		cert_fail(err, errlen, "install ca-certificates or set "
		    "upstream_ca", "upstream TLS: cannot load the system CA "
		    "store");
		return false;
	}
	if (!load_ca(ctx, ca_file, err, errlen))
		return false;
	/* Every certificate in upstream_ca is an anchor, so an administrator
	 * may pin the PBX's own certificate or an intermediate; the name
	 * must still match. */
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx),
	    X509_V_FLAG_PARTIAL_CHAIN);
	return true;
}

struct cert_client *
cert_client_new(const char *ca_file, bool verify, char *err, size_t errlen)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	struct cert_client *cc;

	pthread_once(&idx_once, idx_init);
	if (cache_idx < 0 || host_idx < 0) {
		snprintf(err, errlen, "upstream TLS: cannot register OpenSSL "
		    "ex_data");
		return NULL;
	}
	if ((cc = calloc(1, sizeof *cc)) == NULL) {
		snprintf(err, errlen, "upstream TLS: out of memory");
		return NULL;
	}
	cc->verify = verify;
	if ((cc->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		cert_fail(err, errlen, "check memory and the OpenSSL install",
		    "upstream TLS: cannot create a TLS context");
		goto fail;
	}
	if (!cert_tls_setup(cc->ctx, "upstream TLS", err, errlen))
		goto fail;
	/* Returns 0 on success, unlike most of OpenSSL. */
	if (SSL_CTX_set_alpn_protos(cc->ctx, alpn, sizeof alpn - 1) != 0) {
		cert_fail(err, errlen, "check memory", "upstream TLS: cannot "
		    "set ALPN");
		goto fail;
	}
	if (verify && !client_trust(cc->ctx, ca_file, err, errlen))
		goto fail;
	if (!verify)
		SSL_CTX_set_verify(cc->ctx, SSL_VERIFY_NONE, NULL);
	if (!cache_attach(cc->ctx)) {
		snprintf(err, errlen, "upstream TLS: out of memory");
		goto fail;
	}
	ERR_clear_error();
	return cc;
fail:
	cert_client_free(cc);
	ERR_clear_error();
	return NULL;
}

/* Copies `in` to out without URL brackets ("[::1]" -> "::1"); returns
 * whether it is an address literal. false with out[0] = 0 when too long. */
static bool
host_split(const char *in, char *out, size_t outlen)
{
	struct pol_addr a;
	size_t len = strlen(in);
	bool bracket = len >= 2 && in[0] == '[' && in[len - 1] == ']';

	out[0] = '\0';
	if (bracket) {
		in++;
		len -= 2;
	}
	if (len >= outlen)
		return false;
	memcpy(out, in, len);
	out[len] = '\0';
	/* In brackets only IPv6 is an address ("[192.0.2.1]" is not). */
	return pol_addr_parse(out, len, &a) == 0 &&
	    (!bracket || strchr(out, ':') != NULL);
}

static bool
client_name(struct cert_client *cc, SSL *ssl, const char *host)
{
	char raw[256], name[256];
	bool is_ip = host_split(host, raw, sizeof raw);
	char *copy;

	if (!cert_host_normalize(raw, name, sizeof name))
		return false;
	/* Brackets or colons without an address (zone ids, ports): refuse
	 * rather than send them as a name. */
	if (!is_ip && strpbrk(host, "[]:") != NULL)
		return false;
	/* RFC 6066 3: no SNI for address literals. */
	if (!is_ip && SSL_set_tlsext_host_name(ssl, name) != 1)
		return false;
	if (cc->verify) {
		if (is_ip && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    name) != 1)
			return false;
		if (!is_ip && SSL_set1_host(ssl, name) != 1)
			return false;
	}
	if ((copy = strdup(name)) == NULL)
		return false;
	if (SSL_set_ex_data(ssl, host_idx, copy) != 1) {
		free(copy);
		return false;
	}
	return true;
}

SSL *
cert_client_ssl(struct cert_client *cc, const char *host)
{
	SSL *ssl;

	if (cc == NULL || host == NULL)
		return NULL;
	if ((ssl = SSL_new(cc->ctx)) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (!client_name(cc, ssl, host)) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	cache_resume(cc->ctx, ssl, SSL_get_ex_data(ssl, host_idx));
	SSL_set_connect_state(ssl);
	ERR_clear_error();
	return ssl;
}

void
cert_client_free(struct cert_client *cc)
{
	if (cc == NULL)
		return;
	SSL_CTX_free(cc->ctx);
	free(cc);
}
