/* cert_tickets.c -- session ticket keys shared by every server context and
 * used by worker threads: random ones (current + previous) rotated by the
 * gateway's timer, or ones derived from a secret file per clock window
 * (previous, current, next), the same on every gateway given that file;
 * and a site's view of either, its keys derived from them and its name. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "certs/cert_priv.h"

/* The layout cert_ticket_derive() fills, in this order. */
struct ticket_key {
	unsigned char name[16];		/* random or derived: reveals nothing */
	unsigned char aes[32];		/* AES-256-CBC */
	unsigned char hmac[32];		/* HMAC-SHA256 */
	bool valid;
};

/* Refcounted: the gateway holds one reference, every cert_server another,
 * so a context still finishing handshakes after a reload keeps its keys.
 * Derived keys follow the clock: the handshake that first sees a new
 * window derives its three keys (secret and period never change). */
struct cert_tickets {
	pthread_rwlock_t lock;		/* readers: handshakes; writer: rotate */
	struct ticket_key cur, prev, next;	/* next: derived only */
	atomic_uint refs;
	bool derived;
	uint64_t period_ms;		/* derived: window length */
	uint64_t window;		/* derived: that of cur */
	size_t secretlen;
	unsigned char secret[CERT_TICKET_SECRET_MAX];
	struct cert_tickets *parent;	/* a site's view: the keys it uses */
	char site[CERT_TICKET_SITE_MAX + 1];
};

static bool
key_make(struct ticket_key *k)
{
	k->valid = RAND_priv_bytes(k->name, sizeof k->name) == 1 &&
	    RAND_priv_bytes(k->aes, sizeof k->aes) == 1 &&
	    RAND_priv_bytes(k->hmac, sizeof k->hmac) == 1;
	ERR_clear_error();
	if (!k->valid)
		OPENSSL_cleanse(k, sizeof *k);
	return k->valid;
}

static struct cert_tickets *
tickets_alloc(char *err, size_t errlen)
{
	struct cert_tickets *t = calloc(1, sizeof *t);

	if (t == NULL) {
		snprintf(err, errlen, "session tickets: out of memory");
		return NULL;
	}
	if (pthread_rwlock_init(&t->lock, NULL) != 0) {
		free(t);
		snprintf(err, errlen, "session tickets: cannot create a lock");
		return NULL;
	}
	atomic_init(&t->refs, 1);
	return t;
}

struct cert_tickets *
cert_tickets_new(char *err, size_t errlen)
{
	struct cert_tickets *t = tickets_alloc(err, errlen);

	if (t == NULL)
		return NULL;
	if (!key_make(&t->cur)) {
		pthread_rwlock_destroy(&t->lock);
		free(t);
		snprintf(err, errlen, "session tickets: the random generator "
		    "failed: check that the kernel's getrandom() works");
		return NULL;
	}
	return t;
}

/* The CERT_TICKET_KEYLEN bytes a derivation gives or takes, in the order
 * of struct ticket_key: name, AES, HMAC. */
static void
key_from_bytes(struct ticket_key *k, const unsigned char *b)
{
	memcpy(k->name, b, sizeof k->name);
	memcpy(k->aes, b + sizeof k->name, sizeof k->aes);
	memcpy(k->hmac, b + sizeof k->name + sizeof k->aes, sizeof k->hmac);
}

static void
key_to_bytes(const struct ticket_key *k, unsigned char *b)
{
	memcpy(b, k->name, sizeof k->name);
	memcpy(b + sizeof k->name, k->aes, sizeof k->aes);
	memcpy(b + sizeof k->name + sizeof k->aes, k->hmac, sizeof k->hmac);
}

/* The keys of window w into k; invalid (no ticket made or accepted with
 * it) if the derivation fails. */
static void
key_derive(const struct cert_tickets *t, uint64_t w, struct ticket_key *k)
{
	unsigned char out[CERT_TICKET_KEYLEN];

	k->valid = cert_ticket_derive(t->secret, t->secretlen, w, out);
	key_from_bytes(k, out);
	OPENSSL_cleanse(out, sizeof out);
}

/* Caller holds the write lock. Window 0 has no previous window. */
static void
window_set(struct cert_tickets *t, uint64_t w)
{
	key_derive(t, w, &t->cur);
	if (w > 0)
		key_derive(t, w - 1, &t->prev);
	else
		OPENSSL_cleanse(&t->prev, sizeof t->prev);
	key_derive(t, w + 1, &t->next);
	t->window = w;
}

struct cert_tickets *
cert_tickets_from_secret(const unsigned char *secret, size_t len,
    uint64_t period_ms, uint64_t now_ms, char *err, size_t errlen)
{
	struct cert_tickets *t;

	if (len < CERT_TICKET_SECRET_MIN || len > CERT_TICKET_SECRET_MAX ||
	    period_ms == 0) {
		snprintf(err, errlen, "session tickets: a secret of %d to %d "
		    "bytes and a rotation period are needed",
		    CERT_TICKET_SECRET_MIN, CERT_TICKET_SECRET_MAX);
		return NULL;
	}
	if ((t = tickets_alloc(err, errlen)) == NULL)
		return NULL;
	t->derived = true;
	t->period_ms = period_ms;
	memcpy(t->secret, secret, len);
	t->secretlen = len;
	window_set(t, now_ms / period_ms);
	if (!t->cur.valid) {
		cert_tickets_free(t);
		snprintf(err, errlen, "session tickets: HKDF-SHA256 is not "
		    "available from OpenSSL");
		return NULL;
	}
	return t;
}

/* Milliseconds since the epoch, or 0 when the clock cannot be read: window
 * 0's keys then match no other gateway's, so tickets only fail to resume. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct cert_tickets *
cert_tickets_from_file(const char *path, uint64_t period_ms, char *err,
    size_t errlen)
{
	unsigned char secret[CERT_TICKET_SECRET_MAX];
	struct cert_tickets *t;
	size_t len;

	if (cert_ticket_secret_read(path, secret, sizeof secret, &len, err,
	    errlen) < 0)
		return NULL;
	t = cert_tickets_from_secret(secret, len, period_ms, now_ms(), err,
	    errlen);
	OPENSSL_cleanse(secret, sizeof secret);
	return t;
}

struct cert_tickets *
cert_tickets_site(struct cert_tickets *all, const char *site, char *err,
    size_t errlen)
{
	struct cert_tickets *t;
	size_t n = strlen(site);

	if (all == NULL || all->parent != NULL || n == 0 ||
	    n > CERT_TICKET_SITE_MAX) {
		snprintf(err, errlen, "session tickets of site \"%.*s\": the "
		    "process's keys and a name of 1 to %d bytes are needed",
		    CERT_TICKET_SITE_MAX, site, CERT_TICKET_SITE_MAX);
		return NULL;
	}
	if ((t = tickets_alloc(err, errlen)) == NULL)
		return NULL;
	memcpy(t->site, site, n + 1);
	cert_tickets_ref(all);
	t->parent = all;
	return t;
}

/* If the random generator fails, both keys go: no ticket is issued or
 * accepted until a later rotation succeeds (forward secrecy over resumption). */
void
cert_tickets_rotate(struct cert_tickets *t)
{
	struct ticket_key fresh;
	bool ok;

	if (t->derived || t->parent != NULL)	/* clock, or the parent's */
		return;
	ok = key_make(&fresh);

	pthread_rwlock_wrlock(&t->lock);
	OPENSSL_cleanse(&t->prev, sizeof t->prev);
	if (ok)
		t->prev = t->cur;
	t->cur = fresh;
	pthread_rwlock_unlock(&t->lock);
	OPENSSL_cleanse(&fresh, sizeof fresh);
}

void
cert_tickets_ref(struct cert_tickets *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void
cert_tickets_free(struct cert_tickets *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	OPENSSL_cleanse(&t->cur, sizeof t->cur);
	OPENSSL_cleanse(&t->prev, sizeof t->prev);
	OPENSSL_cleanse(&t->next, sizeof t->next);
	OPENSSL_cleanse(t->secret, sizeof t->secret);
	cert_tickets_free(t->parent);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

/* AES-256-CBC fetched once for every ticket: given EVP_aes_256_cbc(),
 * OpenSSL 3's EVP_CipherInit_ex fetches the implementation again on each
 * call (a method-store lookup under its lock). The same cipher either way;
 * if the fetch failed, the implicit one is used. Never freed: one per
 * process. */
static EVP_CIPHER *aes_cbc;
static pthread_once_t aes_once = PTHREAD_ONCE_INIT;

static void
aes_fetch(void)
{
	aes_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	ERR_clear_error();
}

static const EVP_CIPHER *
ticket_cipher(void)
{
	(void)pthread_once(&aes_once, aes_fetch);
	return aes_cbc != NULL ? aes_cbc : EVP_aes_256_cbc();
}

static bool
key_apply(const struct ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)k->hmac, sizeof k->hmac);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    digest, 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return false;
	return EVP_CipherInit_ex(cctx, ticket_cipher(), NULL, k->aes, iv,
	    enc) == 1;
}

/* The key a ticket named `name` was made with among ks (current,
 * previous, next): current (1), previous or (derived only) next window
 * (2, accepted and renewed), none (0). */
static const struct ticket_key *
keys_find(const struct ticket_key *const ks[3], const unsigned char name[16],
    int *r)
{
	for (int i = 0; i < 3; i++)
		if (ks[i]->valid &&
		    CRYPTO_memcmp(name, ks[i]->name, sizeof ks[i]->name) == 0) {
			*r = i == 0 ? 1 : 2;
			return ks[i];
		}
	return NULL;
}

static const struct ticket_key *
key_find(const struct cert_tickets *t, const unsigned char name[16], int *r)
{
	const struct ticket_key *const ks[3] = { &t->cur, &t->prev, &t->next };

	return keys_find(ks, name, r);
}

/* Read-locks t with its keys set for the window of now_ms. */
static void
lock_window(struct cert_tickets *t, uint64_t now)
{
	uint64_t w;

	pthread_rwlock_rdlock(&t->lock);
	if (!t->derived || (w = now / t->period_ms) == t->window)
		return;
	pthread_rwlock_unlock(&t->lock);
	pthread_rwlock_wrlock(&t->lock);
	if (w != t->window)
		window_set(t, w);
	pthread_rwlock_unlock(&t->lock);
	/* a handshake of a later window may move it on meanwhile: its keys
	 * are as good, being the ones every other gateway uses now */
	pthread_rwlock_rdlock(&t->lock);
}

/* The site's key made from the process's key k (invalid if k is). */
static void
key_for_site(const struct ticket_key *k, const char *site,
    struct ticket_key *sk)
{
	unsigned char in[CERT_TICKET_KEYLEN], out[CERT_TICKET_KEYLEN];

	OPENSSL_cleanse(sk, sizeof *sk);
	if (!k->valid)
		return;
	key_to_bytes(k, in);
	sk->valid = cert_ticket_site_derive(in, site, out);
	key_from_bytes(sk, out);
	OPENSSL_cleanse(in, sizeof in);
	OPENSSL_cleanse(out, sizeof out);
}

/* A site's view: the parent's keys of now, each turned into the site's
 * (one HKDF per key tried, 4.3 us: docs/tls.md), then used as the parent's
 * would be: the same answers as cert_tickets_crypt_at(). */
static int
site_crypt(struct cert_tickets *t, uint64_t now, unsigned char name[16],
    unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct cert_tickets *p = t->parent;
	struct ticket_key sk[3];
	const struct ticket_key *k = NULL;
	int r = 0;

	lock_window(p, now);
	key_for_site(&p->cur, t->site, &sk[0]);
	if (enc)
		OPENSSL_cleanse(&sk[1], 2 * sizeof sk[1]);
	else {
		key_for_site(&p->prev, t->site, &sk[1]);
		key_for_site(&p->next, t->site, &sk[2]);
	}
	pthread_rwlock_unlock(&p->lock);
	if (enc) {
		if (sk[0].valid &&
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(ticket_cipher()))
		    == 1) {
			memcpy(name, sk[0].name, sizeof sk[0].name);
			k = &sk[0];
			r = 1;
		}
	} else {
		const struct ticket_key *const ks[3] = { &sk[0], &sk[1],
		    &sk[2] };

		k = keys_find(ks, name, &r);
	}
	if (k != NULL && !key_apply(k, iv, cctx, hctx, enc))
		r = -1;
	OPENSSL_cleanse(sk, sizeof sk);
	return r;
}

int
cert_tickets_crypt_at(struct cert_tickets *t, uint64_t now,
    unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc)
{
	const struct ticket_key *k = NULL;
	int r = 0;

	if (t->parent != NULL)
		return site_crypt(t, now, name, iv, cctx, hctx, enc);
	lock_window(t, now);
	if (enc) {
		if (t->cur.valid &&
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(ticket_cipher()))
		    == 1) {
			memcpy(name, t->cur.name, sizeof t->cur.name);
			k = &t->cur;
			r = 1;
		}
	} else
		k = key_find(t, name, &r);
	if (k != NULL && !key_apply(k, iv, cctx, hctx, enc))
		r = -1;
	pthread_rwlock_unlock(&t->lock);
	return r;
}

/* Encrypt (enc = 1): 1 = ticket made with the current key, 0 = no ticket.
 * Decrypt: 1 = current key, 2 = previous (or next) key (accepted, and
 * OpenSSL sends a fresh ticket), 0 = unknown key (full handshake).
 * -1 = internal error. */
int
cert_tickets_crypt(struct cert_tickets *t, unsigned char name[16],
    unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	/* a site's view follows its parent's clock */
	bool derived = t->parent != NULL ? t->parent->derived : t->derived;

	return cert_tickets_crypt_at(t, derived ? now_ms() : 0, name, iv,
	    cctx, hctx, enc);
}
