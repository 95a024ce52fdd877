/* cert_server.c -- server TLS contexts: certificates chosen by SNI, ALPN,
 * session tickets; one SSL per accepted connection. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>

#include "certs/cert_priv.h"

#define PAIRS_MAX 64

/* One SSL_CTX per set of names: an ECDSA and an RSA certificate for the same
 * names share it, so OpenSSL picks by the client's signature algorithms. */
struct name_ctx {
	SSL_CTX *ctx;
	struct cert_names names;
	int key_types[4];	/* EVP_PKEY_* base ids loaded into ctx */
	size_t nkey_types;
};

/* Refcounted: the owner holds one reference and every SSL made from it
 * another (through SSL ex_data), so the SNI callback never sees it freed
 * when a reload frees the server mid-handshake. */
struct cert_server {
	atomic_uint refs;
	struct name_ctx *v;		/* v[0] is the default */
	size_t n;
	struct cert_tickets *tickets;	/* may be NULL */
};

static int srv_idx = -1;	/* SSL ex_data: struct cert_server * */
static int smtp_idx = -1;	/* SSL ex_data: non-NULL for SMTP */
static int route_idx = -1;	/* SSL ex_data: const struct cert_route * */
static int site_idx = -1;	/* SSL ex_data: routed: the site's server */
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void server_unref(struct cert_server *);

static void
srv_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ptr != NULL)
		server_unref(ptr);
}

/* SSL_dup() copies ex_data pointers: count the copy. */
static int
srv_ex_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d,
    int idx, long argl, void *argp)
{
	struct cert_server *srv = *from_d;

	(void)to, (void)from, (void)idx, (void)argl, (void)argp;
	if (srv != NULL)
		atomic_fetch_add(&srv->refs, 1);
	return 1;
}

static void
idx_init(void)
{
	srv_idx = SSL_get_ex_new_index(0, NULL, NULL, srv_ex_dup, srv_ex_free);
	smtp_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	route_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	site_idx = SSL_get_ex_new_index(0, NULL, NULL, srv_ex_dup, srv_ex_free);
}

static SSL_CTX *
server_pick(const struct cert_server *srv, const char *host)
{
	size_t i, wild = srv->n;

	for (i = 0; i < srv->n; i++) {
		int m = cert_names_match(&srv->v[i].names, host);

		if (m == 2)
			return srv->v[i].ctx;
		if (m == 1 && wild == srv->n)
			wild = i;
	}
	return wild < srv->n ? srv->v[wild].ctx : NULL;
}

bool
cert_server_covers(const struct cert_server *srv, const char *host)
{
	return srv != NULL && server_pick(srv, host) != NULL;
}

static const char *
key_kind(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);

	if (k == NULL)
		return "unknown";
	return EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA ? "rsa" :
	    EVP_PKEY_get_base_id(k) == EVP_PKEY_EC ? "ec" : "other";
}

void
cert_server_each(const struct cert_server *srv, cert_leaf_fn fn, void *arg)
{
	for (size_t i = 0; srv != NULL && i < srv->n; i++) {
		SSL_CTX *ctx = srv->v[i].ctx;
		const struct cert_names *nm = &srv->v[i].names;
		long more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);

		/* an ECDSA and an RSA certificate may share one context */
		while (more == 1) {
			X509 *x = SSL_CTX_get0_certificate(ctx);
			struct tm tm;

			if (x != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(x),
			    &tm) == 1)
				fn(arg, nm->n > 0 ? nm->v[0] : "", key_kind(x),
				    (long long)timegm(&tm));
			more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT);
		}
	}
	ERR_clear_error();
}

/* The host_name of the ClientHello's server_name extension as OpenSSL
 * will accept it (cert_sni.c): 1 with host filled, 0 when the client sent
 * none, -1 when it cannot be one. */
static int
hello_sni(SSL *ssl, char *host, size_t hostlen)
{
	const unsigned char *p;
	size_t len;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p,
	    &len) != 1)
		return 0;
	return cert_sni_parse(p, len, host, hostlen);
}

/* Routed (several sites): the site is chosen from the ClientHello, before
 * OpenSSL opens a session ticket (TLS 1.2: before it even parses the
 * server_name extension; TLS 1.3: the PSK extension, before the SNI
 * callback), so that the ticket callback uses that site's keys. The route
 * names the server of the client's SNI (NULL when none was sent); no
 * server means no site serves the name, refused with the alert RFC 6066 3
 * gives for it. A second ClientHello (TLS 1.3 HelloRetryRequest) routes
 * anew. */
static int
hello_cb(SSL *ssl, int *al, void *arg)
{
	const struct cert_route *rt = SSL_get_ex_data(ssl, route_idx);
	struct cert_server *srv, *old = SSL_get_ex_data(ssl, site_idx);
	char raw[256], host[256];
	int sent;

	(void)arg;
	if (rt == NULL)
		return SSL_CLIENT_HELLO_SUCCESS;
	if ((sent = hello_sni(ssl, raw, sizeof raw)) < 0 || (sent == 1 &&
	    !cert_host_normalize(raw, host, sizeof host))) {
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if ((srv = rt->fn(rt->arg, sent == 1 ? host : NULL)) == NULL ||
	    srv->n == 0) {
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (srv == old)
		return SSL_CLIENT_HELLO_SUCCESS;
	atomic_fetch_add(&srv->refs, 1);
	if (SSL_set_ex_data(ssl, site_idx, srv) != 1) {
		server_unref(srv);
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (old != NULL)
		server_unref(old);
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Routed: the site hello_cb chose answers with its context for the name. */
static int
sni_route(SSL *ssl, const char *name, int *al)
{
	struct cert_server *srv = SSL_get_ex_data(ssl, site_idx);
	char host[256];
	SSL_CTX *ctx = NULL;

	if (srv == NULL || (name != NULL &&
	    !cert_host_normalize(name, host, sizeof host))) {
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	if (name != NULL)
		ctx = server_pick(srv, host);
	if (ctx == NULL)
		ctx = srv->v[0].ctx;
	if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Unknown or absent SNI keeps the default (first) certificate. */
static int
sni_cb(SSL *ssl, int *al, void *arg)
{
	struct cert_server *srv = SSL_get_ex_data(ssl, srv_idx);
	const struct cert_route *rt = SSL_get_ex_data(ssl, route_idx);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	char host[256];
	SSL_CTX *ctx;

	(void)arg;
	if (rt != NULL)
		return sni_route(ssl, name, al);
	if (srv == NULL || name == NULL ||
	    !cert_host_normalize(name, host, sizeof host))
		return SSL_TLSEXT_ERR_NOACK;
	if ((ctx = server_pick(srv, host)) == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

static bool
alpn_offers(const unsigned char *in, unsigned int inlen, const char *proto,
    const unsigned char **out, unsigned char *outlen)
{
	size_t plen = strlen(proto);
	unsigned int i = 0;

	while (i < inlen) {
		unsigned int len = in[i];

		if (len == 0 || len > inlen - i - 1)
			return false;
		if (len == plen && memcmp(in + i + 1, proto, plen) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)len;
			return true;
		}
		i += 1 + len;
	}
	return false;
}

/* A client that offers ALPN but not our protocol gets the fatal
 * no_application_protocol alert (RFC 7301 3.2) rather than a silent
 * fallback: an h2-only client could not talk to us anyway, and refusing
 * foreign protocols closes cross-protocol attacks (ALPACA) between the
 * HTTPS and SMTP listeners that share these certificates. Clients that send
 * no ALPN never reach this callback and are served. */
static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const char *proto = SSL_get_ex_data(ssl, smtp_idx) != NULL ?
	    "smtp" : "http/1.1";

	(void)arg;
	return alpn_offers(in, inlen, proto, out, outlen) ?
	    SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int
ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	/* routed: the site's keys, never those of the listener's first */
	struct cert_server *srv = SSL_get_ex_data(ssl,
	    SSL_get_ex_data(ssl, route_idx) != NULL ? site_idx : srv_idx);
	int r;

	if (srv == NULL || srv->tickets == NULL)
		return 0;
	r = cert_tickets_crypt(srv->tickets, name, iv, cctx, hctx, enc);
	/* TLS 1.3: OpenSSL sends a ticket after a resumed handshake only when
	 * the decryption asks for a renewal (2). Without one, a client that
	 * keeps its SSL object (wrk, many HTTP libraries) holds no usable
	 * ticket after each resumption and every other connection was a full
	 * handshake. A fresh ticket per resumption also keeps tickets single
	 * use, as RFC 8446 (C.4) asks of clients for privacy. */
	if (!enc && r == 1 && SSL_version(ssl) == TLS1_3_VERSION)
		r = 2;
	return r;
}

/* ffdhe2048 (RFC 7919), as Mozilla intermediate asks, instead of
 * SSL_CTX_set_dh_auto(), which picks 3072 bits and more for big RSA keys
 * and so makes DHE handshakes several times slower. */
static bool
set_ffdhe2048(SSL_CTX *ctx)
{
	char group[] = "ffdhe2048";
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	EVP_PKEY *dh = NULL;
	bool ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    group, 0);
	params[1] = OSSL_PARAM_construct_end();
	ok = pc != NULL && EVP_PKEY_fromdata_init(pc) == 1 &&
	    EVP_PKEY_fromdata(pc, &dh, EVP_PKEY_KEY_PARAMETERS, params) == 1;
	EVP_PKEY_CTX_free(pc);
	if (ok && SSL_CTX_set0_tmp_dh_pkey(ctx, dh) == 1)
		return true;
	EVP_PKEY_free(dh);
	return false;
}

static const unsigned char sid_ctx[] = "pbxgate";

static SSL_CTX *
server_ctx_new(const struct cert_tickets *tickets, const char *file, char *err,
    size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		cert_fail(err, errlen, "check memory and the OpenSSL install",
		    "tls_cert %s: cannot create a TLS context", file);
		return NULL;
	}
	if (!cert_tls_setup(ctx, file, err, errlen))
		goto fail;
	if (!set_ffdhe2048(ctx)) {
		cert_fail(err, errlen, "check the OpenSSL install",
		    "tls_cert %s: cannot set DH group ffdhe2048", file);
		goto fail;
	}
	SSL_CTX_set_client_hello_cb(ctx, hello_cb, NULL);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
	/* The same id in every context: a session resumed after the SNI switch
	 * must still match. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
	/* Workers are threads sharing this context: a server-side cache would
	 * be one more lock on every handshake and memory per session, while
	 * tickets resume statelessly. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(ctx, CERT_SESSION_TIMEOUT);
	/* 0-RTT data can be replayed; nothing here may depend on it. */
	SSL_CTX_set_max_early_data(ctx, 0);
	if (tickets != NULL) {
		SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
		SSL_CTX_set_num_tickets(ctx, 1);
	} else {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static bool
has_type(const struct name_ctx *nc, int type)
{
	size_t i;

	for (i = 0; i < nc->nkey_types; i++)
		if (nc->key_types[i] == type)
			return true;
	return false;
}

static const char *
type_name(int type)
{
	switch (type) {
	case EVP_PKEY_EC:
		return "ECDSA";
	case EVP_PKEY_RSA:
		return "RSA";
	case EVP_PKEY_RSA_PSS:
		return "RSA-PSS";
	case EVP_PKEY_ED25519:
		return "Ed25519";
	default:
		return "same-type";
	}
}

/* Finds the context for these names or appends a new one. */
static struct name_ctx *
server_slot(struct cert_server *srv, struct cert_names *names, int type,
    const struct cert_pair *p, char *err, size_t errlen)
{
	struct name_ctx *nc;
	size_t i;

	for (i = 0; i < srv->n; i++) {
		nc = &srv->v[i];
		if (!cert_names_equal(&nc->names, names))
			continue;
		if (has_type(nc, type) || nc->nkey_types == 4) {
			snprintf(err, errlen, "tls_cert %s: another %s "
			    "certificate was given for the same names: give "
			    "one certificate per key type and names",
			    p->cert_file, type_name(type));
			return NULL;
		}
		cert_names_clear(names);
		return nc;
	}
	nc = &srv->v[srv->n];
	nc->ctx = server_ctx_new(srv->tickets, p->cert_file, err, errlen);
	if (nc->ctx == NULL)
		return NULL;
	nc->names = *names;
	names->v = NULL;
	names->n = 0;
	srv->n++;
	return nc;
}

static bool
server_add(struct cert_server *srv, const struct cert_pair *p, size_t i,
    char *err, size_t errlen)
{
	struct cert_material m;
	struct cert_names names;
	struct name_ctx *nc;
	bool ok = false;
	int type;

	if (!cert_pair_check(p, &m, &type, err, errlen))
		return false;
	if (!cert_names_get(m.leaf, p->cert_file, &names, err, errlen))
		goto out;
	if (i > 0 && names.n == 0) {
		snprintf(err, errlen, "tls_cert %s: no DNS name in "
		    "subjectAltName or CN, so SNI could never choose it: add "
		    "the names or list it first as the default", p->cert_file);
		cert_names_clear(&names);
		goto out;
	}
	nc = server_slot(srv, &names, type, p, err, errlen);
	cert_names_clear(&names);
	if (nc == NULL || !cert_pair_load(nc->ctx, p, &m, err, errlen))
		goto out;
	nc->key_types[nc->nkey_types++] = type;
	ok = true;
out:
	cert_material_clear(&m);
	return ok;
}

struct cert_server *
cert_server_new(const struct cert_pair *pairs, size_t n,
    struct cert_tickets *tickets, char *err, size_t errlen)
{
	struct cert_server *srv;
	size_t i;

	pthread_once(&idx_once, idx_init);
	if (srv_idx < 0 || smtp_idx < 0 || route_idx < 0 || site_idx < 0) {
		snprintf(err, errlen, "TLS: cannot register OpenSSL ex_data");
		return NULL;
	}
	if (n == 0 || n > PAIRS_MAX) {
		snprintf(err, errlen, "TLS: %zu certificate pairs given: give "
		    "1 to %d tls_cert/tls_key pairs", n, PAIRS_MAX);
		return NULL;
	}
	if ((srv = calloc(1, sizeof *srv)) == NULL ||
	    (srv->v = calloc(n, sizeof *srv->v)) == NULL) {
		free(srv);
		snprintf(err, errlen, "TLS: out of memory");
		return NULL;
	}
	atomic_init(&srv->refs, 1);
	if ((srv->tickets = tickets) != NULL)
		cert_tickets_ref(tickets);
	for (i = 0; i < n; i++) {
		if (!server_add(srv, &pairs[i], i, err, errlen)) {
			server_unref(srv);
			ERR_clear_error();
			return NULL;
		}
	}
	ERR_clear_error();
	return srv;
}

static void
server_unref(struct cert_server *srv)
{
	size_t i;

	if (atomic_fetch_sub(&srv->refs, 1) != 1)
		return;
	for (i = 0; i < srv->n; i++) {
		SSL_CTX_free(srv->v[i].ctx);
		cert_names_clear(&srv->v[i].names);
	}
	cert_tickets_free(srv->tickets);
	free(srv->v);
	free(srv);
}

static SSL *
server_ssl(struct cert_server *srv, bool smtp)
{
	SSL *ssl = SSL_new(srv->v[0].ctx);

	if (ssl == NULL) {
		ERR_clear_error();
		return NULL;
	}
	atomic_fetch_add(&srv->refs, 1);
	if (SSL_set_ex_data(ssl, srv_idx, srv) != 1) {
		server_unref(srv);
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	if (smtp && SSL_set_ex_data(ssl, smtp_idx, (void *)1) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	/* The signature may have to wait for the key process: the handshake
	 * runs as an async job the caller resumes (gateway/io.c). */
	if (!smtp && cert_keyproc_attached())
		SSL_set_mode(ssl, SSL_MODE_ASYNC);
	SSL_set_accept_state(ssl);
	return ssl;
}

SSL *
cert_server_ssl(struct cert_server *srv)
{
	return server_ssl(srv, false);
}

SSL *
cert_server_ssl_smtp(struct cert_server *srv)
{
	return server_ssl(srv, true);
}

SSL *
cert_server_ssl_routed(struct cert_server *first,
    const struct cert_route *route)
{
	SSL *ssl = server_ssl(first, false);

	if (ssl != NULL && SSL_set_ex_data(ssl, route_idx, (void *)route) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	return ssl;
}

void
cert_server_free(struct cert_server *srv)
{
	if (srv != NULL)
		server_unref(srv);
}
