/* cert_keysign.c -- private keys that live in the key process: a key built
 * from the certificate's public key whose signing operations are requests
 * to the key process, answered without blocking the worker's event loop
 * (the handshake runs in an OpenSSL async job that pauses until the answer
 * arrives).
 *
 * Why RSA_METHOD and EC_KEY_METHOD, deprecated in OpenSSL 3: a key with
 * such a method is a "foreign" legacy key that OpenSSL 3 signs with through
 * the method, which is what libtls and OpenSMTPD do; a provider with its
 * own key manager and signature implementations would be several times
 * the code for the same two hooks. The deprecated calls are confined to
 * this file. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "certs/cert_priv.h"
#include "certs/cert_keymsg.h"

/* The key process answers in well under a millisecond; this bounds a
 * handshake whose key process hangs or died with the request. */
#define SIGN_TIMEOUT_MS	3000

/* Set once by cert_keyproc_attach(), before any thread starts. */
static int sign_fd = -1;
static void (*report)(const char *msg);

static atomic_uint_fast64_t next_id;
static atomic_llong last_report;	/* CLOCK_MONOTONIC seconds */

static pthread_once_t meth_once = PTHREAD_ONCE_INIT;
static RSA_METHOD *rsa_meth;
static EC_KEY_METHOD *ec_meth;
static int rsa_idx = -1, ec_idx = -1;
/* The ASYNC_WAIT_CTX key under which a job publishes its answer socket. */
static const char wait_key[] = "pbxgate-keyproc";

bool
cert_keyproc_attached(void)
{
	return sign_fd >= 0;
}

void
cert_keyproc_attach(int fd, void (*report_fn)(const char *msg))
{
	sign_fd = fd;
	report = report_fn;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* At most one line a second: a dead key process fails every handshake. */
static void
report_failure(const char *what)
{
	long long s = now_ms() / 1000, last = atomic_load(&last_report);
	char msg[256];

	if (report == NULL || s == last ||
	    !atomic_compare_exchange_strong(&last_report, &last, s))
		return;
	snprintf(msg, sizeof msg, "TLS handshake refused: key process: %s",
	    what);
	report(msg);
}

/* The request, with answer_fd passed along unless it is -1. */
static int
send_request(const struct cert_kp_req *r, size_t len, int answer_fd)
{
	/* aligned for the struct cmsghdr at its start */
	_Alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)r, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (answer_fd >= 0) {
		memset(cbuf, 0, sizeof cbuf);
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &answer_fd, sizeof answer_fd);
	}
	/* Never wait for room: a key process that stopped reading fails
	 * the handshake now. */
	return sendmsg(sign_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)len ? 0 : -1;
}

/* 1: answer read, 0: not yet, -1: the socket closed or sent junk. On a
 * channel (skip_others) an answer to another request is passed over: one
 * a restarted key process sent for a request made before it knew the
 * channel. */
static int
try_answer(int fd, struct cert_kp_rep *rep, uint64_t id, bool skip_others)
{
	for (;;) {
		ssize_t n = recv(fd, rep, sizeof *rep, MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n != (ssize_t)sizeof *rep)
			return -1;
		if (!skip_others || rep->magic != CERT_KP_MAGIC ||
		    rep->status == CERT_KP_EBADMSG || rep->id == id)
			return 1;
	}
}

/* Inside an async job the job pauses (the worker waits for `fd` with its
 * event loop and resumes the handshake); outside one the thread polls.
 * watched: fd was in the thread's event loop before the request went out
 * (cert_keyproc_watch), so an answer already there has been announced and
 * the first look can wait for it: one recv(2) fewer per handshake. */
static int
wait_answer(int fd, struct cert_kp_rep *rep, uint64_t id, bool skip_others,
    bool watched, long long deadline)
{
	ASYNC_JOB *job = ASYNC_get_current_job();
	ASYNC_WAIT_CTX *wctx = job != NULL ? ASYNC_get_wait_ctx(job) : NULL;
	bool look = wctx == NULL || !watched;
	int got;

	if (wctx != NULL &&
	    ASYNC_WAIT_CTX_set_wait_fd(wctx, wait_key, fd, NULL, NULL) != 1)
		return -1;
	while ((got = look ? try_answer(fd, rep, id, skip_others) : 0) == 0) {
		look = true;
		long long left = deadline - now_ms();

		if (left <= 0) {
			got = -2;
			break;
		}
		if (wctx != NULL) {
			if (ASYNC_pause_job() != 1) {
				got = -1;
				break;
			}
		} else {
			struct pollfd p = { fd, POLLIN, 0 };

			(void)poll(&p, 1, (int)left);
		}
	}
	if (wctx != NULL)
		(void)ASYNC_WAIT_CTX_clear_fd(wctx, wait_key);
	return got;
}

/* ---- channels: answer sockets a thread keeps -------------------------- */

/* Why: a socket pair made, passed and closed per handshake cost about 15 us
 * of the 300 a full ECDSA handshake takes (two more processes' system
 * calls). A thread keeps one registered socket per handshake it has waiting
 * at once, up to this many; more wait on sockets of their own. */
#define CHANS_PER_THREAD 16

struct kp_chan {
	uint32_t id;		/* 0: no channel number yet */
	int      fd;		/* -1: none registered with the key process */
	bool     busy;		/* a call waits on it */
	bool     watched;	/* fd is in the thread's event loop */
};

struct kp_chans {
	struct kp_chan   v[CHANS_PER_THREAD];
	cert_kp_watch_fn watch;	/* NULL: no event loop watches the sockets */
	void            *watch_arg;
};

static pthread_once_t chans_once = PTHREAD_ONCE_INIT;
static pthread_key_t chans_key;
static bool chans_ok;
static atomic_uint last_chan;	/* channel numbers handed out */

/* At the thread's exit; its event loop, if any, stopped watching first
 * (cert_keyproc_watch(NULL, NULL)). */
static void
chans_free(void *p)
{
	struct kp_chans *cs = p;
	size_t i;

	for (i = 0; i < CHANS_PER_THREAD; i++)
		if (cs->v[i].fd >= 0)
			close(cs->v[i].fd);
	free(cs);
}

static void
chans_key_init(void)
{
	chans_ok = pthread_key_create(&chans_key, chans_free) == 0;
}

static struct kp_chans *
thread_chans(void)
{
	struct kp_chans *cs;
	size_t i;

	pthread_once(&chans_once, chans_key_init);
	if (!chans_ok)
		return NULL;
	if ((cs = pthread_getspecific(chans_key)) != NULL)
		return cs;
	if ((cs = calloc(1, sizeof *cs)) == NULL)
		return NULL;
	for (i = 0; i < CHANS_PER_THREAD; i++)
		cs->v[i].fd = -1;
	if (pthread_setspecific(chans_key, cs) != 0) {
		free(cs);
		return NULL;
	}
	return cs;
}

/* A number for a new channel, 0 once the key process's table is full. */
static uint32_t
chan_number(void)
{
	unsigned n = atomic_load(&last_chan);

	do {
		if (n >= CERT_KP_CHAN_MAX)
			return 0;
	} while (!atomic_compare_exchange_weak(&last_chan, &n, n + 1));
	return n + 1;
}

/* The event loop forgets the socket before its number can be reused. */
static void
chan_close(struct kp_chan *c)
{
	struct kp_chans *cs = pthread_getspecific(chans_key);

	if (c->fd < 0)
		return;
	if (c->watched && cs != NULL && cs->watch != NULL)
		(void)cs->watch(c->fd, false, cs->watch_arg);
	c->watched = false;
	close(c->fd);
	c->fd = -1;
}

/* A new channel socket goes into the thread's event loop, if it has one,
 * before its first request is sent. */
static void
chan_watch(struct kp_chans *cs, struct kp_chan *c)
{
	c->watched = cs->watch != NULL && cs->watch(c->fd, true, cs->watch_arg);
}

void
cert_keyproc_watch(cert_kp_watch_fn fn, void *arg)
{
	struct kp_chans *cs;
	size_t i;

	if (sign_fd < 0 || (cs = thread_chans()) == NULL)
		return;		/* no key process, or no channels either */
	if (fn == NULL) {
		for (i = 0; i < CHANS_PER_THREAD; i++)
			chan_close(&cs->v[i]);
		cs->watch = NULL;
		cs->watch_arg = NULL;
		return;
	}
	cs->watch = fn;
	cs->watch_arg = arg;
	for (i = 0; i < CHANS_PER_THREAD; i++)
		if (cs->v[i].fd >= 0 && !cs->v[i].watched)
			chan_watch(cs, &cs->v[i]);
}

/* A key process that exited closed its end, and a restarted one does not
 * know the channel: it must be registered again. */
static bool
chan_alive(const struct kp_chan *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);

	return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
}

/* A free channel of this thread, marked busy; NULL when none is left. */
static struct kp_chan *
chan_take(void)
{
	struct kp_chans *cs = thread_chans();
	struct kp_chan *c = NULL;
	size_t i;

	if (cs == NULL)
		return NULL;
	/* numbered ones come first: they are numbered in order */
	for (i = 0; i < CHANS_PER_THREAD && c == NULL; i++)
		if (!cs->v[i].busy)
			c = &cs->v[i];
	if (c == NULL || (c->id == 0 && (c->id = chan_number()) == 0))
		return NULL;
	if (c->fd >= 0 && !chan_alive(c))
		chan_close(c);
	c->busy = true;
	return c;
}

/* A request on channel c, registering its socket first when it has none.
 * After any failure the socket is closed, so no late answer can reach a
 * later request. 1: answered, -1: closed or junk, -2: no answer in time,
 * -3: could not ask (reported). */
static int
chan_call(struct kp_chan *c, struct cert_kp_req *q, struct cert_kp_rep *rep)
{
	int sv[2] = { -1, -1 }, got;

	q->chan = c->id;
	if (c->fd < 0) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv) < 0) {
			c->busy = false;
			report_failure("socketpair failed");
			return -3;
		}
		c->fd = sv[0];
		chan_watch(pthread_getspecific(chans_key), c);
	}
	got = send_request(q, sizeof *q, sv[1]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (got < 0) {
		chan_close(c);
		c->busy = false;
		report_failure("cannot send a request (exited or stuck?)");
		return -3;
	}
	got = wait_answer(c->fd, rep, q->id, true, c->watched,
	    now_ms() + SIGN_TIMEOUT_MS);
	if (got < 0)
		chan_close(c);
	c->busy = false;
	return got;
}

/* A request on a socket pair of its own: the answer cannot go to another
 * request, and a late one after a timeout is dropped with the socket.
 * Returns as chan_call(). */
static int
own_socket_call(const struct cert_kp_req *r, size_t len,
    struct cert_kp_rep *rep)
{
	int sv[2], got;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		report_failure("socketpair failed");
		return -3;
	}
	if (send_request(r, len, sv[1]) < 0) {
		close(sv[0]);
		close(sv[1]);
		report_failure("cannot send a request (exited or stuck?)");
		return -3;
	}
	close(sv[1]);
	got = wait_answer(sv[0], rep, r->id, false, false,
	    now_ms() + SIGN_TIMEOUT_MS);
	close(sv[0]);
	return got;
}

/* Returns the answer's status, or -1 when the key process could not be
 * asked or did not answer. */
int
cert_kp_call(const struct cert_kp_req *r, size_t len, struct cert_kp_rep *rep)
{
	struct kp_chan *c;
	struct cert_kp_req q;
	int got;

	if (sign_fd < 0)
		return -1;
	if (len == sizeof *r && (c = chan_take()) != NULL) {
		q = *r;
		got = chan_call(c, &q, rep);
		OPENSSL_cleanse(&q, sizeof q);
	} else
		got = own_socket_call(r, len, rep);
	if (got == -3)
		return -1;	/* reported */
	if (got == -2) {
		report_failure("no answer in time");
		return -1;
	}
	/* a malformed request's answer cannot echo its id */
	if (got < 0 || rep->magic != CERT_KP_MAGIC ||
	    (rep->status != CERT_KP_EBADMSG && rep->id != r->id)) {
		report_failure("the answer socket closed (exited?)");
		return -1;
	}
	return (int)rep->status;
}

/* Signs `len` bytes; the signature goes to out[0..max). Returns its length
 * or -1. */
static int
remote_sign(const uint8_t *spki, uint32_t alg, const unsigned char *in,
    size_t len, unsigned char *out, size_t max)
{
	struct cert_kp_req r;
	struct cert_kp_rep rep;
	int n = -1;

	if (spki == NULL || len == 0 || len > CERT_KP_DATA_MAX)
		return -1;
	memset(&r, 0, sizeof r);
	r.magic = CERT_KP_MAGIC;
	r.op = CERT_KP_SIGN;
	r.id = atomic_fetch_add(&next_id, 1);
	memcpy(r.spki, spki, CERT_KP_SPKI_LEN);
	r.alg = alg;
	r.len = (uint32_t)len;
	memcpy(r.data, in, len);
	switch (cert_kp_call(&r, sizeof r, &rep)) {
	case CERT_KP_OK:
		if (rep.len > 0 && rep.len <= max && rep.len <= sizeof rep.sig) {
			memcpy(out, rep.sig, rep.len);
			n = (int)rep.len;
		} else
			report_failure("a signature of the wrong size");
		break;
	case CERT_KP_ENOKEY:
		report_failure("no key for the certificate (two reloads during "
		    "the handshake?)");
		break;
	case CERT_KP_EBADLEN:
		report_failure("refused data that does not fit the key");
		break;
	case CERT_KP_ESIGN:
		report_failure("OpenSSL could not sign");
		break;
	case -1:
		break;		/* reported by cert_kp_call */
	default:
		report_failure("refused a malformed request");
		break;
	}
	OPENSSL_cleanse(&rep, sizeof rep);
	return n;
}

static int
rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
    int padding)
{
	uint32_t alg;

	if (padding == RSA_PKCS1_PADDING)
		alg = CERT_KP_RSA_PKCS1;
	else if (padding == RSA_NO_PADDING)
		alg = CERT_KP_RSA_RAW;	/* PSS, encoded by OpenSSL here */
	else
		return -1;
	if (flen <= 0)
		return -1;
	return remote_sign(RSA_get_ex_data(rsa, rsa_idx), alg, from,
	    (size_t)flen, to, (size_t)RSA_size(rsa));
}

/* Decryption would need the key process to decrypt for us: no TLS suite
 * we offer uses RSA key exchange, so refuse. */
static int
rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
    int padding)
{
	(void)flen, (void)from, (void)to, (void)rsa, (void)padding;
	return -1;
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
    unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	int n;

	(void)type, (void)kinv, (void)r;
	if (dlen <= 0)
		return 0;
	n = remote_sign(EC_KEY_get_ex_data(ec, ec_idx), CERT_KP_ECDSA, dgst,
	    (size_t)dlen, sig, (size_t)ECDSA_size(ec));
	if (n <= 0)
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static void
spki_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

static void
meth_init(void)
{
	const EC_KEY_METHOD *def = EC_KEY_get_default_method();
	int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;
	ECDSA_SIG *(*sign_sig)(const unsigned char *, int, const BIGNUM *,
	    const BIGNUM *, EC_KEY *) = NULL;

	rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, spki_free);
	ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, spki_free);
	if ((rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL ||
	    RSA_meth_set1_name(rsa_meth, "pbxgate key process") != 1 ||
	    RSA_meth_set_priv_enc(rsa_meth, rsa_priv_enc) != 1 ||
	    RSA_meth_set_priv_dec(rsa_meth, rsa_priv_dec) != 1) {
		RSA_meth_free(rsa_meth);
		rsa_meth = NULL;
	}
	if ((ec_meth = EC_KEY_METHOD_new(def)) != NULL) {
		EC_KEY_METHOD_get_sign(def, NULL, &sign_setup, &sign_sig);
		EC_KEY_METHOD_set_sign(ec_meth, ec_sign, sign_setup, sign_sig);
	}
}

static EVP_PKEY *
remote_rsa(EVP_PKEY *pub, uint8_t *spki)
{
	/* A copy: the certificate's own key is left as it is. */
	RSA *rsa = RSAPublicKey_dup(EVP_PKEY_get0_RSA(pub));
	EVP_PKEY *k = EVP_PKEY_new();

	if (rsa == NULL || k == NULL || RSA_set_method(rsa, rsa_meth) != 1 ||
	    RSA_set_ex_data(rsa, rsa_idx, spki) != 1) {
		free(spki);	/* not yet the key's */
		RSA_free(rsa);
		EVP_PKEY_free(k);
		return NULL;
	}
	if (EVP_PKEY_assign_RSA(k, rsa) != 1) {
		RSA_free(rsa);	/* frees spki */
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static EVP_PKEY *
remote_ec(EVP_PKEY *pub, uint8_t *spki)
{
	EC_KEY *ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(pub));
	EVP_PKEY *k = EVP_PKEY_new();

	if (ec == NULL || k == NULL || EC_KEY_set_method(ec, ec_meth) != 1 ||
	    EC_KEY_set_ex_data(ec, ec_idx, spki) != 1) {
		free(spki);
		EC_KEY_free(ec);
		EVP_PKEY_free(k);
		return NULL;
	}
	if (EVP_PKEY_assign_EC_KEY(k, ec) != 1) {
		EC_KEY_free(ec);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

/* A key with the certificate's public half whose private operations are
 * the key process's. The spki buffer is the key's (freed with it). */
static EVP_PKEY *
remote_key_new(EVP_PKEY *pub, const uint8_t hash[CERT_KP_SPKI_LEN])
{
	uint8_t *spki;

	pthread_once(&meth_once, meth_init);
	if (rsa_meth == NULL || ec_meth == NULL || rsa_idx < 0 || ec_idx < 0 ||
	    (spki = malloc(CERT_KP_SPKI_LEN)) == NULL)
		return NULL;
	memcpy(spki, hash, CERT_KP_SPKI_LEN);
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		return remote_rsa(pub, spki);
	case EVP_PKEY_EC:
		return remote_ec(pub, spki);
	default:
		free(spki);
		return NULL;
	}
}

static bool
key_held(const uint8_t spki[CERT_KP_SPKI_LEN], int *status)
{
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	memset(&r, 0, sizeof r);
	r.magic = CERT_KP_MAGIC;
	r.op = CERT_KP_HAVE;
	r.id = atomic_fetch_add(&next_id, 1);
	memcpy(r.spki, spki, CERT_KP_SPKI_LEN);
	*status = cert_kp_call(&r, sizeof r, &rep);
	return *status == CERT_KP_OK;
}

bool
cert_keyproc_use_key(SSL_CTX *ctx, X509 *leaf, const struct cert_pair *p,
    char *err, size_t errlen)
{
	EVP_PKEY *pub = X509_get0_pubkey(leaf), *remote;
	uint8_t spki[CERT_KP_SPKI_LEN];
	int status;
	bool ok;

	if (pub == NULL || !cert_spki_hash(pub, spki)) {
		cert_fail(err, errlen, "reissue the certificate", "tls_cert %s: "
		    "cannot read its public key", p->cert_file);
		return false;
	}
	if (!key_held(spki, &status)) {
		snprintf(err, errlen, "tls_key %s: %s certificate %s: %s",
		    p->key_file, status < 0 ? "the key process did not answer "
		    "for" : "the key process holds no key matching",
		    p->cert_file, status < 0 ? "see the error above and restart "
		    "pbxgate" : "regenerate the pair or fix the path");
		return false;
	}
	if ((remote = remote_key_new(pub, spki)) == NULL) {
		cert_fail(err, errlen, "retry", "tls_key %s: cannot make the "
		    "key process's key", p->key_file);
		return false;
	}
	ok = SSL_CTX_use_PrivateKey(ctx, remote) == 1 &&
	    SSL_CTX_check_private_key(ctx) == 1;
	EVP_PKEY_free(remote);
	if (!ok)
		cert_fail(err, errlen, "regenerate the pair or fix the path",
		    "tls_key %s: cannot use it with certificate %s",
		    p->key_file, p->cert_file);
	return ok;
}

/* A connection freed while its handshake waits for the key process: the
 * job is ended (its answer socket shut, so it resumes to a failure) rather
 * than left paused with its stack. */
void
cert_ssl_abandon(SSL *ssl)
{
	OSSL_ASYNC_FD fds[4];
	size_t n = 0, i;

	if (ssl == NULL || !SSL_waiting_for_async(ssl))
		return;
	if (SSL_get_all_async_fds(ssl, NULL, &n) != 1 ||
	    n > sizeof fds / sizeof fds[0] ||
	    SSL_get_all_async_fds(ssl, fds, &n) != 1)
		n = 0;
	for (i = 0; i < n; i++)
		(void)shutdown(fds[i], SHUT_RDWR);
	(void)SSL_do_handshake(ssl);
	ERR_clear_error();
}
