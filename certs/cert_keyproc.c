/* cert_keyproc.c -- the key process: holds the TLS private keys, away from
 * the process that parses network input, and signs for it (relayd's "ca"
 * process). It reads its key files itself, as the user that started it,
 * and reloads them when told; it reads nothing else but fixed-size sign
 * requests, each answered on the socket that came with it. Like every
 * module but gateway/ it never logs: a refused request's status and a
 * failed reload's message go back to the side that asked. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "certs/cert_priv.h"
#include "certs/cert_keymsg.h"

#define KP_MAX_KEYS	1024	/* every site's keys (pbxgate sites) */
#define KP_MAX_THREADS	64
#define KP_CTL_MAX	(64 * 1024)	/* a reload message: the key paths */
#define KP_CTL_FD	3
#define KP_SIGN_FD	4

struct kp_key {
	uint8_t   spki[CERT_KP_SPKI_LEN];
	EVP_PKEY *pkey;
	int       type;		/* EVP_PKEY_EC or EVP_PKEY_RSA */
	size_t    size;		/* EVP_PKEY_get_size */
	/* Set up for signing once, by algorithm (enum cert_kp_alg - 1; NULL
	 * where the key type does not do it): a request copies one instead
	 * of fetching the implementation again, a few microseconds each. */
	EVP_PKEY_CTX *sign[3];
};

struct kp_table {
	struct kp_key v[KP_MAX_KEYS];
	size_t n;
};

/* The key process's state. A reload stages the new keys (the certificates
 * are then loaded against them) and commits them once the new configuration
 * is in force: a reload that fails after the keys loaded leaves the keys of
 * the running configuration live, however many times it fails. After a
 * commit the keys live before stay usable for one more generation, so that
 * handshakes begun with the previous certificates finish. */
static struct kp_table *kp_staged, *kp_live, *kp_prev;
static pthread_rwlock_t kp_lock = PTHREAD_RWLOCK_INITIALIZER;

struct cert_keyproc {
	pid_t pid;
	int   ctl;		/* ours: reload messages */
	int   sign_kp;		/* the key process's end of the sign socket,
				   kept so a restarted key process serves the
				   same socket the network process holds */
	int   nthreads;
	char *staged;		/* the last good 'L' message */
	size_t stagedlen;
	char *live;		/* the last committed one */
	size_t livelen;
};

static void
key_free(struct kp_key *k)
{
	size_t i;

	for (i = 0; i < sizeof k->sign / sizeof k->sign[0]; i++)
		EVP_PKEY_CTX_free(k->sign[i]);
	EVP_PKEY_free(k->pkey);
}

static void
table_free(struct kp_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		key_free(&t->v[i]);
	free(t);
}

/* No signature digest set: the data is signed as given, a digest for
 * ECDSA, a DigestInfo or an encoded block for RSA. */
static EVP_PKEY_CTX *
sign_ctx(EVP_PKEY *pkey, int rsa_padding)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

	if (pc == NULL || EVP_PKEY_sign_init(pc) != 1 || (rsa_padding != 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(pc, rsa_padding) != 1)) {
		EVP_PKEY_CTX_free(pc);
		return NULL;
	}
	return pc;
}

static bool
sign_ctxs(struct kp_key *k)
{
	if (k->type == EVP_PKEY_EC)
		return (k->sign[CERT_KP_ECDSA - 1] = sign_ctx(k->pkey, 0)) != NULL;
	return (k->sign[CERT_KP_RSA_PKCS1 - 1] = sign_ctx(k->pkey,
	    RSA_PKCS1_PADDING)) != NULL &&
	    (k->sign[CERT_KP_RSA_RAW - 1] = sign_ctx(k->pkey,
	    RSA_NO_PADDING)) != NULL;
}

bool
cert_spki_hash(EVP_PKEY *pub, uint8_t out[CERT_KP_SPKI_LEN])
{
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len = i2d_PUBKEY(pub, &der);
	bool ok;

	if (len <= 0)
		return false;
	ok = EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == CERT_KP_SPKI_LEN;
	OPENSSL_free(der);
	return ok;
}

static bool
load_key(const char *file, struct kp_key *k, char *err, size_t errlen)
{
	BIO *bio = cert_pem_bio("tls_key", file, err, errlen);

	if (bio == NULL)
		return false;
	k->pkey = PEM_read_bio_PrivateKey(bio, NULL, cert_no_passwd_cb, NULL);
	BIO_free(bio);
	if (k->pkey == NULL) {
		cert_fail(err, errlen, "give an unencrypted PEM private key "
		    "(ECDSA or RSA)", "tls_key %s: no usable private key", file);
		return false;
	}
	k->type = EVP_PKEY_get_base_id(k->pkey);
	k->size = (size_t)EVP_PKEY_get_size(k->pkey);
	if ((k->type != EVP_PKEY_EC && k->type != EVP_PKEY_RSA) ||
	    k->size > CERT_KP_DATA_MAX) {
		snprintf(err, errlen, "tls_key %s: only ECDSA keys and RSA keys "
		    "of up to 4096 bits can be used", file);
		return false;
	}
	if (!cert_spki_hash(k->pkey, k->spki)) {
		cert_fail(err, errlen, "check the key", "tls_key %s: cannot "
		    "encode its public key", file);
		return false;
	}
	if (!sign_ctxs(k)) {
		cert_fail(err, errlen, "check the key", "tls_key %s: OpenSSL "
		    "cannot sign with it", file);
		return false;
	}
	return true;
}

/* msg: NUL-terminated paths. All load or nothing changes. */
static struct kp_table *
table_load(const char *msg, size_t len, char *err, size_t errlen)
{
	struct kp_table *t = calloc(1, sizeof *t);
	const char *p = msg, *end = msg + len;

	if (t == NULL) {
		snprintf(err, errlen, "key process: out of memory");
		return NULL;
	}
	while (p < end) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));

		if (nul == NULL || t->n == KP_MAX_KEYS) {
			snprintf(err, errlen, "key process: malformed key list");
			goto fail;
		}
		if (!load_key(p, &t->v[t->n], err, errlen)) {
			key_free(&t->v[t->n]);
			goto fail;
		}
		t->n++;
		p = nul + 1;
	}
	ERR_clear_error();
	return t;
fail:
	ERR_clear_error();
	table_free(t);
	return NULL;
}

static const struct kp_key *
table_find(const struct kp_table *t, const uint8_t spki[CERT_KP_SPKI_LEN])
{
	size_t i;

	for (i = 0; t != NULL && i < t->n; i++)
		if (memcmp(t->v[i].spki, spki, CERT_KP_SPKI_LEN) == 0)
			return &t->v[i];
	return NULL;
}

/* A copy of the key's prepared context per request: the prepared ones are
 * shared by the sign threads and only ever read. */
static enum cert_kp_status
sign_with(const struct kp_key *k, const struct cert_kp_req *r,
    struct cert_kp_rep *rep)
{
	EVP_PKEY_CTX *pc;
	size_t siglen = sizeof rep->sig;
	bool ok;

	if ((k->type == EVP_PKEY_EC) != (r->alg == CERT_KP_ECDSA) ||
	    !cert_kp_len_fits(r->alg, k->size, r->len))
		return CERT_KP_EBADLEN;
	if ((pc = EVP_PKEY_CTX_dup(k->sign[r->alg - 1])) == NULL)
		return CERT_KP_ESIGN;
	ok = EVP_PKEY_sign(pc, rep->sig, &siglen, r->data, r->len) == 1;
	EVP_PKEY_CTX_free(pc);
	ERR_clear_error();
	if (!ok)
		return CERT_KP_ESIGN;
	rep->len = (uint32_t)siglen;
	return CERT_KP_OK;
}

static enum cert_kp_status
answer(const struct cert_kp_req *r, struct cert_kp_rep *rep)
{
	const struct kp_key *k;
	enum cert_kp_status st;

	pthread_rwlock_rdlock(&kp_lock);
	if ((k = table_find(kp_staged, r->spki)) == NULL &&
	    (k = table_find(kp_live, r->spki)) == NULL)
		k = table_find(kp_prev, r->spki);
	if (k == NULL)
		st = CERT_KP_ENOKEY;
	else if (r->op == CERT_KP_HAVE)
		st = CERT_KP_OK;
	else
		st = sign_with(k, r, rep);
	pthread_rwlock_unlock(&kp_lock);
	return st;
}

/* The answer socket must be what the network process makes for it: a
 * SOCK_SEQPACKET socket. Anything else it might pass is not written to. */
static bool
is_answer_socket(int fd)
{
	struct stat st;
	int type = 0;
	socklen_t tl = sizeof type;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	    type == SOCK_SEQPACKET;
}

/* One request: its bytes and at most one descriptor; any other descriptor
 * that came with it is closed. Returns -1 when the socket is gone. */
static ssize_t
recv_request(int fd, unsigned char *buf, size_t len, int *answer_fd)
{
	/* aligned for the struct cmsghdr at its start */
	_Alignas(struct cmsghdr) char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *c;
	ssize_t n;

	*answer_fd = -1;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t i, nfd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int one;

			memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof one);
			if (*answer_fd == -1)
				*answer_fd = one;
			else
				close(one);
		}
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
		return 0;	/* oversized: answered as a bad message */
	return n;
}

/* The answer sockets of the channels (cert_keymsg.h), -1 where none was
 * passed yet. The lock also covers the send, so that a socket replaced by
 * another thread's registration is never written after its close (its
 * number may already name the new one). */
static int chan_fd[CERT_KP_CHAN_MAX + 1];
static pthread_mutex_t chan_mu = PTHREAD_MUTEX_INITIALIZER;

static void
chans_init(void)
{
	size_t i;

	for (i = 0; i <= CERT_KP_CHAN_MAX; i++)
		chan_fd[i] = -1;
}

/* Sends rep on the request's own socket (chan 0), or on its channel's:
 * a socket that came with a channel request replaces that channel's. A
 * channel without a socket has no one to answer: its request is dropped
 * and the asking thread times out. Takes afd. */
static void
send_answer(uint32_t chan, int afd, const struct cert_kp_rep *rep)
{
	if (afd >= 0 && !is_answer_socket(afd)) {
		close(afd);
		afd = -1;
	}
	if (chan == 0) {
		if (afd >= 0) {
			(void)send(afd, rep, sizeof *rep,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			close(afd);
		}
		return;
	}
	pthread_mutex_lock(&chan_mu);
	if (afd >= 0) {
		if (chan_fd[chan] >= 0)
			close(chan_fd[chan]);
		chan_fd[chan] = afd;
	}
	if (chan_fd[chan] >= 0)
		(void)send(chan_fd[chan], rep, sizeof *rep,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	pthread_mutex_unlock(&chan_mu);
}

static void *
sign_thread(void *arg)
{
	int fd = *(int *)arg;
	unsigned char buf[sizeof(struct cert_kp_req) + 1];

	for (;;) {
		struct cert_kp_req r;
		struct cert_kp_rep rep;
		uint32_t chan = 0;
		int afd;
		ssize_t n = recv_request(fd, buf, sizeof buf, &afd);

		if (n < 0)
			break;
		memset(&rep, 0, sizeof rep);
		rep.magic = CERT_KP_MAGIC;
		rep.status = cert_kp_req_parse(buf, (size_t)n, &r);
		if (rep.status == CERT_KP_OK) {
			rep.id = r.id;
			chan = r.chan;
			rep.status = answer(&r, &rep);
		}
		/* the status says why; the asking side reports it */
		send_answer(chan, afd, &rep);
		OPENSSL_cleanse(&rep, sizeof rep);
	}
	return NULL;
}

/* 'L' and the paths: the new keys replace the staged ones; a failed load
 * changes nothing. 'C': the staged keys go live. The answer is "" or the
 * error. */
static void
ctl_message(int ctl, const char *msg, size_t len)
{
	char err[512] = "";
	struct kp_table *t = NULL;

	if (msg[0] == 'L')
		t = table_load(msg + 1, len - 1, err, sizeof err);
	else if (msg[0] != 'C' || len != 1)
		snprintf(err, sizeof err, "key process: unknown message");
	pthread_rwlock_wrlock(&kp_lock);
	if (t != NULL) {
		table_free(kp_staged);
		kp_staged = t;
	} else if (msg[0] == 'C' && kp_staged != NULL) {
		table_free(kp_prev);
		kp_prev = kp_live;
		kp_live = kp_staged;
		kp_staged = NULL;
	}
	pthread_rwlock_unlock(&kp_lock);
	(void)send(ctl, err, strlen(err) + 1, MSG_NOSIGNAL);
}

static bool
live_keys(void)
{
	bool live;

	pthread_rwlock_rdlock(&kp_lock);
	live = kp_live != NULL;
	pthread_rwlock_unlock(&kp_lock);
	return live;
}

static void
harden(void)
{
	static const int quiet[] = { SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2 };
	size_t i;

	/* It lives as long as its parent's control socket, not by signals
	 * sent to the whole process group: a Ctrl-C or a service stop lets
	 * the network process drain, with handshakes still signed. */
	for (i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
		signal(quiet[i], SIG_IGN);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	/* No core dumps and no ptrace by processes of the same user: the
	 * network process may run as the same uid. */
	(void)prctl(PR_SET_DUMPABLE, 0);
}

static void __attribute__((noreturn))
keyproc_main(int nthreads)
{
	static int sign_fd = KP_SIGN_FD;
	pthread_t th;
	char *msg;
	bool serving = false;
	int i;

	harden();
	chans_init();
	if ((msg = malloc(KP_CTL_MAX + 1)) == NULL)
		_exit(1);
	for (;;) {
		ssize_t n = recv(KP_CTL_FD, msg, KP_CTL_MAX + 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;		/* the parent is gone */
		if (n < 2 || n > KP_CTL_MAX || msg[n - 1] != '\0') {
			(void)send(KP_CTL_FD, "key process: malformed message",
			    31, MSG_NOSIGNAL);
			continue;
		}
		ctl_message(KP_CTL_FD, msg, (size_t)n - 1);
		/* Signing starts with the first keys: a request that waited
		 * in the socket while this process was being (re)started is
		 * answered with them, not refused for want of a key. */
		if (!serving && live_keys()) {
			for (i = 0; i < nthreads; i++)
				if (pthread_create(&th, NULL, sign_thread,
				    &sign_fd) != 0 || pthread_detach(th) != 0)
					_exit(1);
			serving = true;
		}
	}
	free(msg);
	_exit(0);
}

/* In the new process: its two sockets at fixed numbers, nothing else open
 * but stdin, stdout and stderr (no listener, no log file, no user store). */
static void __attribute__((noreturn))
child(int ctl, int sign, int nthreads)
{
	if ((ctl = fcntl(ctl, F_DUPFD_CLOEXEC, 10)) < 0 ||
	    (sign = fcntl(sign, F_DUPFD_CLOEXEC, 10)) < 0 ||
	    dup2(ctl, KP_CTL_FD) < 0 || dup2(sign, KP_SIGN_FD) < 0 ||
	    close_range(KP_SIGN_FD + 1, ~0U, 0) < 0)
		_exit(1);
	keyproc_main(nthreads);
}

static pid_t
spawn(struct cert_keyproc *kp, int ctl_child, char *err, size_t errlen)
{
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(err, errlen, "key process: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		child(ctl_child, kp->sign_kp, kp->nthreads);
	close(ctl_child);
	return pid;
}

/* Sends a control message and waits for the answer: "" or the error. */
static int
send_ctl(struct cert_keyproc *kp, const char *msg, size_t len, char *err,
    size_t errlen)
{
	char ans[512];
	ssize_t n;

	if (send(kp->ctl, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
		snprintf(err, errlen, "key process: cannot send to it: %s",
		    strerror(errno));
		return -1;
	}
	do
		n = recv(kp->ctl, ans, sizeof ans - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		snprintf(err, errlen, "key process: no answer (exited?): "
		    "restart pbxgate");
		return -1;
	}
	ans[n] = '\0';
	if (ans[0] != '\0') {
		snprintf(err, errlen, "%s", ans);
		return -1;
	}
	return 0;
}

/* 'L' and the paths, each NUL-terminated, then one more NUL. */
static char *
pack_paths(const char *const *files, size_t n, size_t *len, char *err,
    size_t errlen)
{
	size_t i, total = 2;
	char *msg, *p;

	if (n == 0 || n > KP_MAX_KEYS) {
		snprintf(err, errlen, "key process: %zu keys given: give 1 to %d",
		    n, KP_MAX_KEYS);
		return NULL;
	}
	for (i = 0; i < n; i++)
		total += strlen(files[i]) + 1;
	if (total > KP_CTL_MAX || (msg = malloc(total)) == NULL) {
		snprintf(err, errlen, "key process: the key paths are too long");
		return NULL;
	}
	msg[0] = 'L';
	for (p = msg + 1, i = 0; i < n; i++) {
		size_t l = strlen(files[i]) + 1;

		memcpy(p, files[i], l);
		p += l;
	}
	*p = '\0';
	*len = total;
	return msg;
}

int
cert_keyproc_reload(struct cert_keyproc *kp, const char *const *key_files,
    size_t n, char *err, size_t errlen)
{
	size_t len;
	char *msg = pack_paths(key_files, n, &len, err, errlen);

	if (msg == NULL)
		return -1;
	if (send_ctl(kp, msg, len, err, errlen) < 0) {
		free(msg);
		return -1;
	}
	free(kp->staged);
	kp->staged = msg;
	kp->stagedlen = len;
	return 0;
}

int
cert_keyproc_commit(struct cert_keyproc *kp, char *err, size_t errlen)
{
	if (send_ctl(kp, "C", 2, err, errlen) < 0)
		return -1;
	if (kp->staged != NULL) {
		free(kp->live);
		kp->live = kp->staged;
		kp->livelen = kp->stagedlen;
		kp->staged = NULL;
	}
	return 0;
}

static int
start_child(struct cert_keyproc *kp, char *err, size_t errlen)
{
	int ctl[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
		snprintf(err, errlen, "key process: socketpair: %s",
		    strerror(errno));
		return -1;
	}
	if ((kp->pid = spawn(kp, ctl[1], err, errlen)) < 0) {
		close(ctl[0]);
		close(ctl[1]);
		return -1;
	}
	kp->ctl = ctl[0];
	return 0;
}

struct cert_keyproc *
cert_keyproc_start(const char *const *key_files, size_t n, int nthreads,
    int *sign_fd, char *err, size_t errlen)
{
	struct cert_keyproc *kp = calloc(1, sizeof *kp);
	int sv[2];

	if (kp == NULL) {
		snprintf(err, errlen, "key process: out of memory");
		return NULL;
	}
	kp->ctl = kp->sign_kp = -1;
	kp->nthreads = nthreads < 1 ? 1 : nthreads > KP_MAX_THREADS ?
	    KP_MAX_THREADS : nthreads;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "key process: socketpair: %s",
		    strerror(errno));
		free(kp);
		return NULL;
	}
	kp->sign_kp = sv[1];
	if (start_child(kp, err, errlen) < 0 ||
	    cert_keyproc_reload(kp, key_files, n, err, errlen) < 0 ||
	    cert_keyproc_commit(kp, err, errlen) < 0) {
		close(sv[0]);
		cert_keyproc_stop(kp);
		return NULL;
	}
	*sign_fd = sv[0];
	return kp;
}

pid_t
cert_keyproc_pid(const struct cert_keyproc *kp)
{
	return kp->pid;
}

int
cert_keyproc_restart(struct cert_keyproc *kp, char *err, size_t errlen)
{
	if (kp->ctl >= 0)
		close(kp->ctl);
	kp->ctl = -1;
	if (kp->pid > 0)
		(void)waitpid(kp->pid, NULL, WNOHANG);
	if (start_child(kp, err, errlen) < 0)
		return -1;
	return kp->live == NULL ? 0 : send_ctl(kp, kp->live, kp->livelen, err,
	    errlen) < 0 ? -1 : send_ctl(kp, "C", 2, err, errlen);
}

void
cert_keyproc_stop(struct cert_keyproc *kp)
{
	if (kp == NULL)
		return;
	if (kp->ctl >= 0)
		close(kp->ctl);		/* its main loop ends on EOF */
	if (kp->sign_kp >= 0)
		close(kp->sign_kp);
	if (kp->pid > 0) {
		while (waitpid(kp->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	free(kp->staged);
	free(kp->live);
	free(kp);
}
