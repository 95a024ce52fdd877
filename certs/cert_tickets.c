/* cert_tickets.c -- session ticket keys (current + previous) shared by every
 * server context, rotated by the gateway's timer, used by worker threads. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "certs/cert_priv.h"

struct ticket_key {
	unsigned char name[16];		/* random: reveals nothing */
	unsigned char aes[32];		/* AES-256-CBC */
	unsigned char hmac[32];		/* HMAC-SHA256 */
	bool valid;
};

/* Refcounted: the gateway holds one reference, every cert_server another,
 * so a context still finishing handshakes after a reload keeps its keys. */
struct cert_tickets {
	pthread_rwlock_t lock;		/* readers: handshakes; writer: rotate */
	struct ticket_key cur, prev;
	atomic_uint refs;
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

struct cert_tickets *
cert_tickets_new(char *err, size_t errlen)
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
	if (!key_make(&t->cur)) {
		pthread_rwlock_destroy(&t->lock);
		free(t);
		snprintf(err, errlen, "session tickets: the random generator "
		    "failed: check that the kernel's getrandom() works");
		return NULL;
	}
	atomic_init(&t->refs, 1);
	return t;
}

/* If the random generator fails, both keys go: no ticket is issued or
 * accepted until a later rotation succeeds (forward secrecy over resumption). */
void
cert_tickets_rotate(struct cert_tickets *t)
{
	struct ticket_key fresh;
	bool ok = key_make(&fresh);

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
	pthread_rwlock_destroy(&t->lock);
	free(t);
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
	return EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv,
	    enc) == 1;
}

/* Encrypt (enc = 1): 1 = ticket made with the current key, 0 = no ticket.
 * Decrypt: 1 = current key, 2 = previous key (accepted, and OpenSSL sends a
 * fresh ticket), 0 = unknown key (full handshake). -1 = internal error. */
int
cert_tickets_crypt(struct cert_tickets *t, unsigned char name[16],
    unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct ticket_key *k = NULL;
	int r = 0;

	pthread_rwlock_rdlock(&t->lock);
	if (enc) {
		if (t->cur.valid &&
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc()))
		    == 1) {
			memcpy(name, t->cur.name, sizeof t->cur.name);
			k = &t->cur;
			r = 1;
		}
	} else if (t->cur.valid &&
	    CRYPTO_memcmp(name, t->cur.name, sizeof t->cur.name) == 0) {
		k = &t->cur;
		r = 1;
	} else if (t->prev.valid &&
	    CRYPTO_memcmp(name, t->prev.name, sizeof t->prev.name) == 0) {
		k = &t->prev;
		r = 2;
	}
	if (k != NULL && !key_apply(k, iv, cctx, hctx, enc))
		r = -1;
	pthread_rwlock_unlock(&t->lock);
	return r;
}
