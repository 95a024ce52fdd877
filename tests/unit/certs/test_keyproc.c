/* test_keyproc.c -- unit tests for the key process and its protocol: each
 * malformed request is refused with its own status, signatures verify with
 * the public key, reloads keep one previous generation and a failed reload
 * keeps the keys, a dead key process fails the sign and a restarted one
 * serves the same socket, channels' answers reach their sockets. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "certs/cert_priv.h"
#include "certs/cert_keymsg.h"

static char dir[64];
static char err[1024];

static void
setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/pbxgate-kp-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void
teardown(void)
{
	(void)nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(keymsg);
TestSuite(keyproc, .init = setup, .fini = teardown, .timeout = 60);

/* ---- the request format ------------------------------------------------- */

static struct cert_kp_req
good_req(void)
{
	struct cert_kp_req r;

	memset(&r, 0, sizeof r);
	r.magic = CERT_KP_MAGIC;
	r.op = CERT_KP_SIGN;
	r.id = 7;
	r.alg = CERT_KP_ECDSA;
	r.len = 32;
	return r;
}

static enum cert_kp_status
parse(const struct cert_kp_req *r, size_t n)
{
	struct cert_kp_req out;
	unsigned char buf[sizeof *r + 1] = { 0 };

	memcpy(buf, r, sizeof *r);
	return cert_kp_req_parse(buf, n, &out);
}

Test(keymsg, well_formed_request_accepted)
{
	struct cert_kp_req r = good_req();

	cr_assert_eq(parse(&r, sizeof r), CERT_KP_OK);
}

Test(keymsg, short_message_refused)
{
	struct cert_kp_req r = good_req();

	cr_assert_eq(parse(&r, sizeof r - 1), CERT_KP_EBADMSG);
	cr_assert_eq(parse(&r, 0), CERT_KP_EBADMSG);
}

Test(keymsg, long_message_refused)
{
	struct cert_kp_req r = good_req();

	cr_assert_eq(parse(&r, sizeof r + 1), CERT_KP_EBADMSG);
}

Test(keymsg, bad_magic_refused)
{
	struct cert_kp_req r = good_req();

	r.magic ^= 1;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
}

Test(keymsg, unknown_op_refused)
{
	struct cert_kp_req r = good_req();

	r.op = 3;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
	r.op = 0;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
}

/* The key process indexes its table of answer sockets by the channel. */
Test(keymsg, channel_beyond_the_table_refused)
{
	struct cert_kp_req r = good_req();

	r.chan = CERT_KP_CHAN_MAX;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_OK);
	r.chan = CERT_KP_CHAN_MAX + 1;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
	r.chan = UINT32_MAX;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
}

Test(keymsg, nonzero_padding_refused)
{
	struct cert_kp_req r = good_req();

	r.pad = 1;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
}

Test(keymsg, unknown_algorithm_refused)
{
	struct cert_kp_req r = good_req();

	r.alg = 0;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
	r.alg = CERT_KP_RSA_RAW + 1;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
}

Test(keymsg, data_length_zero_or_beyond_buffer_refused)
{
	struct cert_kp_req r = good_req();

	r.len = 0;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
	r.len = CERT_KP_DATA_MAX + 1;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
	r.len = UINT32_MAX;
	cr_assert_eq(parse(&r, sizeof r), CERT_KP_EBADMSG);
}

Test(keymsg, ecdsa_digest_lengths)
{
	static const struct { uint32_t len; bool ok; } t[] = {
		{ 20, true }, { 28, true }, { 32, true }, { 48, true },
		{ 64, true }, { 1, false }, { 31, false }, { 33, false },
		{ 65, false }, { 512, false },
	};
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		cr_assert_eq(cert_kp_len_fits(CERT_KP_ECDSA, 72, t[i].len),
		    t[i].ok, "ECDSA digest of %u bytes", t[i].len);
}

Test(keymsg, rsa_lengths)
{
	cr_assert(cert_kp_len_fits(CERT_KP_RSA_PKCS1, 256, 51));
	cr_assert(cert_kp_len_fits(CERT_KP_RSA_PKCS1, 256, 245));
	cr_assert_not(cert_kp_len_fits(CERT_KP_RSA_PKCS1, 256, 246));
	cr_assert_not(cert_kp_len_fits(CERT_KP_RSA_PKCS1, 8, 1));
	cr_assert(cert_kp_len_fits(CERT_KP_RSA_RAW, 256, 256));
	cr_assert_not(cert_kp_len_fits(CERT_KP_RSA_RAW, 256, 255));
	cr_assert_not(cert_kp_len_fits(CERT_KP_RSA_RAW, 256, 257));
	cr_assert_not(cert_kp_len_fits(0, 256, 32));
}

/* ---- a real key process ------------------------------------------------- */

static EVP_PKEY *
write_key(const char *name, const char *type, char *path, size_t len)
{
	EVP_PKEY *k = strcmp(type, "EC") == 0 ?
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	FILE *f;

	cr_assert_not_null(k);
	snprintf(path, len, "%s/%s.key", dir, name);
	cr_assert_not_null(f = fopen(path, "w"));
	cr_assert_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	return k;
}

struct kp_env {
	struct cert_keyproc *kp;
	EVP_PKEY *ec, *rsa;
	char ec_path[128], rsa_path[128];
	int fd;			/* the network side's sign socket */
};

static void
start(struct kp_env *e)
{
	const char *files[2];

	e->ec = write_key("ec", "EC", e->ec_path, sizeof e->ec_path);
	e->rsa = write_key("rsa", "RSA", e->rsa_path, sizeof e->rsa_path);
	files[0] = e->ec_path;
	files[1] = e->rsa_path;
	e->fd = -1;
	e->kp = cert_keyproc_start(files, 2, 2, &e->fd, err, sizeof err);
	cr_assert_not_null(e->kp, "cert_keyproc_start: %s", err);
	cert_keyproc_attach(e->fd, NULL);
}

static void
stop(struct kp_env *e)
{
	cert_keyproc_stop(e->kp);
	EVP_PKEY_free(e->ec);
	EVP_PKEY_free(e->rsa);
}

static struct cert_kp_req
req_for(EVP_PKEY *k, uint32_t alg, uint32_t len)
{
	struct cert_kp_req r = good_req();

	r.id = 42;
	cr_assert(cert_spki_hash(k, r.spki));
	r.alg = alg;
	r.len = len;
	cr_assert_eq(RAND_bytes(r.data, (int)len), 1);
	return r;
}

static int
call(const struct cert_kp_req *r, struct cert_kp_rep *rep)
{
	memset(rep, 0, sizeof *rep);
	return cert_kp_call(r, sizeof *r, rep);
}

static bool
verifies(EVP_PKEY *k, const struct cert_kp_req *r, const struct cert_kp_rep *rep,
    int padding)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	unsigned char back[CERT_KP_DATA_MAX];
	size_t blen = sizeof back;
	bool ok;

	cr_assert_not_null(pc);
	if (padding < 0)
		ok = EVP_PKEY_verify_init(pc) == 1 && EVP_PKEY_verify(pc,
		    rep->sig, rep->len, r->data, r->len) == 1;
	else	/* RSA: the signature opens back to the data */
		ok = EVP_PKEY_verify_recover_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pc, padding) == 1 &&
		    EVP_PKEY_verify_recover(pc, back, &blen, rep->sig,
		    rep->len) == 1 && blen == r->len &&
		    memcmp(back, r->data, blen) == 0;
	EVP_PKEY_CTX_free(pc);
	return ok;
}

Test(keyproc, ecdsa_sign_verifies)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert_eq(rep.id, 42);
	cr_assert(verifies(e.ec, &r, &rep, -1));
	stop(&e);
}

Test(keyproc, rsa_pkcs1_and_raw_sign_verify)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.rsa, CERT_KP_RSA_PKCS1, 51);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert_eq(rep.len, 256);
	cr_assert(verifies(e.rsa, &r, &rep, RSA_PKCS1_PADDING));
	r = req_for(e.rsa, CERT_KP_RSA_RAW, 256);
	r.data[0] = 0;		/* below the modulus */
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert(verifies(e.rsa, &r, &rep, RSA_NO_PADDING));
	stop(&e);
}

Test(keyproc, unknown_key_refused)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	r.spki[0] ^= 0xff;
	cr_assert_eq(call(&r, &rep), CERT_KP_ENOKEY);
	cr_assert_eq(rep.len, 0);
	r.op = CERT_KP_HAVE;
	cr_assert_eq(call(&r, &rep), CERT_KP_ENOKEY);
	stop(&e);
}

Test(keyproc, have_query_for_held_key)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.rsa, CERT_KP_ECDSA, 32);
	r.op = CERT_KP_HAVE;
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert_eq(rep.len, 0);
	stop(&e);
}

Test(keyproc, wrong_ecdsa_digest_length_refused)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.ec, CERT_KP_ECDSA, 31);
	cr_assert_eq(call(&r, &rep), CERT_KP_EBADLEN);
	cr_assert_eq(rep.len, 0);
	stop(&e);
}

Test(keyproc, rsa_pkcs1_data_too_long_refused)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.rsa, CERT_KP_RSA_PKCS1, 246);
	cr_assert_eq(call(&r, &rep), CERT_KP_EBADLEN);
	stop(&e);
}

Test(keyproc, rsa_raw_block_not_modulus_size_refused)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.rsa, CERT_KP_RSA_RAW, 255);
	cr_assert_eq(call(&r, &rep), CERT_KP_EBADLEN);
	stop(&e);
}

Test(keyproc, algorithm_of_other_key_type_refused)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.rsa, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_EBADLEN);
	r = req_for(e.ec, CERT_KP_RSA_PKCS1, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_EBADLEN);
	stop(&e);
}

Test(keyproc, short_message_answered_bad_message)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	memset(&rep, 0, sizeof rep);
	cr_assert_eq(cert_kp_call(&r, sizeof r - 1, &rep), CERT_KP_EBADMSG);
	cr_assert_eq(rep.len, 0);
	stop(&e);
}

Test(keyproc, bad_magic_answered_bad_message)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	r.magic = 0;
	cr_assert_eq(call(&r, &rep), CERT_KP_EBADMSG);
	stop(&e);
}

static void
kill_keyproc(struct cert_keyproc *kp)
{
	pid_t pid = cert_keyproc_pid(kp);

	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
}

Test(keyproc, dead_key_process_fails_the_sign)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	kill_keyproc(e.kp);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), -1);
	cr_assert_eq(rep.len, 0);
	stop(&e);
}

Test(keyproc, restarted_key_process_serves_the_same_socket)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	kill_keyproc(e.kp);
	cr_assert_eq(cert_keyproc_restart(e.kp, err, sizeof err), 0, "%s", err);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert(verifies(e.ec, &r, &rep, -1));
	stop(&e);
}

/* The thread's channel was registered with the key process that died: the
 * next call finds its socket closed and registers a new one with the
 * restarted process (else it would wait for an answer nobody sends). */
Test(keyproc, channel_registered_again_after_a_restart)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	kill_keyproc(e.kp);
	cr_assert_eq(cert_keyproc_restart(e.kp, err, sizeof err), 0, "%s", err);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert(verifies(e.ec, &r, &rep, -1));
	stop(&e);
}

/* A request straight on the sign socket, with `fd` passed when >= 0. */
static void
send_raw(int sign, const struct cert_kp_req *r, int fd)
{
	_Alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)r, sizeof *r };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd >= 0) {
		memset(cbuf, 0, sizeof cbuf);
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	cr_assert_eq(sendmsg(sign, &mh, 0), (ssize_t)sizeof *r);
}

static void
recv_answer(int fd, struct cert_kp_rep *rep)
{
	struct pollfd p = { fd, POLLIN, 0 };

	cr_assert_eq(poll(&p, 1, 10000), 1, "no answer on the channel");
	cr_assert_eq(recv(fd, rep, sizeof *rep, 0), (ssize_t)sizeof *rep);
}

/* The key process keeps the socket that came with a channel's request and
 * answers the channel's later requests, which come without one, on it. */
Test(keyproc, channel_answers_go_to_its_registered_socket)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;
	int sv[2];

	start(&e);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	r.chan = CERT_KP_CHAN_MAX;
	r.id = 1001;
	send_raw(e.fd, &r, sv[1]);
	close(sv[1]);
	recv_answer(sv[0], &rep);
	cr_assert_eq(rep.status, CERT_KP_OK);
	cr_assert_eq(rep.id, 1001);
	r.id = 1002;
	send_raw(e.fd, &r, -1);
	recv_answer(sv[0], &rep);
	cr_assert_eq(rep.status, CERT_KP_OK);
	cr_assert_eq(rep.id, 1002);
	cr_assert(verifies(e.ec, &r, &rep, -1));
	close(sv[0]);
	stop(&e);
}

struct pending_call {
	struct cert_kp_req r;
	struct cert_kp_rep rep;
	int status;
};

static void *
call_thread(void *arg)
{
	struct pending_call *p = arg;

	p->status = call(&p->r, &p->rep);
	return NULL;
}

/* Bytes the sign socket holds that no key process has read yet. */
static int
unread(int fd)
{
	int n = 0;

	cr_assert_eq(ioctl(fd, SIOCOUTQ, &n), 0);
	return n;
}

/* A handshake that asked while the key process was dead is signed by the
 * restarted one with the reloaded keys: the new process reads requests
 * only once it holds its keys (it answered "no key" before). */
Test(keyproc, request_waiting_for_a_restart_is_signed)
{
	struct kp_env e;
	struct pending_call p;
	pthread_t th;
	time_t t0;

	start(&e);
	kill_keyproc(e.kp);
	p.r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(pthread_create(&th, NULL, call_thread, &p), 0);
	for (t0 = time(NULL); unread(e.fd) == 0 && time(NULL) - t0 < 10;)
		sched_yield();		/* until the request is queued */
	cr_assert_gt(unread(e.fd), 0, "the request never reached the socket");
	cr_assert_eq(cert_keyproc_restart(e.kp, err, sizeof err), 0, "%s", err);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(p.status, CERT_KP_OK);
	cr_assert(verifies(e.ec, &p.r, &p.rep, -1));
	stop(&e);
}

Test(keyproc, failed_reload_keeps_the_keys)
{
	struct kp_env e;
	struct cert_kp_req r;
	struct cert_kp_rep rep;
	char junk[128];
	const char *files[2];
	FILE *f;

	start(&e);
	snprintf(junk, sizeof junk, "%s/junk.key", dir);
	cr_assert_not_null(f = fopen(junk, "w"));
	fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
	fclose(f);
	files[0] = e.rsa_path;
	files[1] = junk;
	cr_assert_eq(cert_keyproc_reload(e.kp, files, 2, err, sizeof err), -1);
	cr_assert(strstr(err, junk) != NULL, "%s", err);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	stop(&e);
}

static void
reload(struct cert_keyproc *kp, const char *path, bool commit)
{
	const char *files[1] = { path };

	cr_assert_eq(cert_keyproc_reload(kp, files, 1, err, sizeof err), 0,
	    "%s", err);
	if (commit)
		cr_assert_eq(cert_keyproc_commit(kp, err, sizeof err), 0, "%s",
		    err);
}

static int
sign_status(EVP_PKEY *k)
{
	struct cert_kp_req r = req_for(k, CERT_KP_ECDSA, 32);
	struct cert_kp_rep rep;

	return call(&r, &rep);
}

Test(keyproc, commit_keeps_one_previous_generation)
{
	struct kp_env e;
	char p2[128], p3[128];
	EVP_PKEY *k2, *k3;

	start(&e);
	k2 = write_key("gen2", "EC", p2, sizeof p2);
	reload(e.kp, p2, true);
	cr_assert_eq(sign_status(k2), CERT_KP_OK);
	cr_assert_eq(sign_status(e.ec), CERT_KP_OK);	/* previous */
	k3 = write_key("gen3", "EC", p3, sizeof p3);
	reload(e.kp, p3, true);
	cr_assert_eq(sign_status(e.ec), CERT_KP_ENOKEY);	/* two back */
	cr_assert_eq(sign_status(k2), CERT_KP_OK);
	cr_assert_eq(sign_status(k3), CERT_KP_OK);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	stop(&e);
}

/* Reloads whose configuration fails after the keys loaded are never
 * committed: the live keys stay, however many there are. */
Test(keyproc, uncommitted_reloads_keep_the_live_keys)
{
	struct kp_env e;
	char p2[128], p3[128];
	EVP_PKEY *k2, *k3;

	start(&e);
	k2 = write_key("gen2", "EC", p2, sizeof p2);
	reload(e.kp, p2, false);
	cr_assert_eq(sign_status(k2), CERT_KP_OK);	/* staged */
	k3 = write_key("gen3", "EC", p3, sizeof p3);
	reload(e.kp, p3, false);
	reload(e.kp, p3, false);
	cr_assert_eq(sign_status(k2), CERT_KP_ENOKEY);	/* replaced */
	cr_assert_eq(sign_status(k3), CERT_KP_OK);
	cr_assert_eq(sign_status(e.ec), CERT_KP_OK);	/* live */
	cr_assert_eq(cert_keyproc_commit(e.kp, err, sizeof err), 0, "%s", err);
	cr_assert_eq(sign_status(k3), CERT_KP_OK);
	cr_assert_eq(sign_status(e.ec), CERT_KP_OK);	/* previous */
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	stop(&e);
}

Test(keyproc, restart_loads_the_committed_keys)
{
	struct kp_env e;
	char p2[128];
	EVP_PKEY *k2;

	start(&e);
	k2 = write_key("gen2", "EC", p2, sizeof p2);
	reload(e.kp, p2, false);
	kill_keyproc(e.kp);
	cr_assert_eq(cert_keyproc_restart(e.kp, err, sizeof err), 0, "%s", err);
	cr_assert_eq(sign_status(e.ec), CERT_KP_OK);
	cr_assert_eq(sign_status(k2), CERT_KP_ENOKEY);
	EVP_PKEY_free(k2);
	stop(&e);
}

/* ---- cert_keyproc_watch: a thread's channel sockets in its event loop -- */

struct watch_log {
	int  n;
	int  fd[8];
	bool on[8];
	bool accept;		/* what the watch function answers */
};

static bool
watch_rec(int fd, bool on, void *arg)
{
	struct watch_log *l = arg;

	cr_assert_lt(l->n, 8);
	l->fd[l->n] = fd;
	l->on[l->n++] = on;
	return l->accept;
}

static bool
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* The channel's socket is reported before its first request goes out, and
 * kept (not reported again) for the next requests. */
Test(keyproc, watched_channel_reported_once_for_its_life)
{
	struct kp_env e;
	struct watch_log l = { .accept = true };
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	cert_keyproc_watch(watch_rec, &l);
	cr_assert_eq(l.n, 0);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert(verifies(e.ec, &r, &rep, -1));
	cr_assert_eq(l.n, 1);
	cr_assert(l.on[0]);
	cr_assert(fd_open(l.fd[0]));
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert_eq(l.n, 1);
	cert_keyproc_watch(NULL, NULL);
	stop(&e);
}

/* A channel made before the loop watched: reported at the call. */
Test(keyproc, watch_reports_channels_already_open)
{
	struct kp_env e;
	struct watch_log l = { .accept = true };
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cert_keyproc_watch(watch_rec, &l);
	cr_assert_eq(l.n, 1);
	cr_assert(l.on[0]);
	cr_assert(fd_open(l.fd[0]));
	cert_keyproc_watch(NULL, NULL);
	stop(&e);
}

/* The key process restarted: the watched socket is reported closed before
 * its close, and the new one registered with the new process is reported
 * before its request (else the loop would watch a number the kernel may
 * give to another socket). */
Test(keyproc, watched_channel_replaced_after_a_restart)
{
	struct kp_env e;
	struct watch_log l = { .accept = true };
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	cert_keyproc_watch(watch_rec, &l);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	kill_keyproc(e.kp);
	cr_assert_eq(cert_keyproc_restart(e.kp, err, sizeof err), 0, "%s", err);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert(verifies(e.ec, &r, &rep, -1));
	cr_assert_eq(l.n, 3);
	cr_assert(l.on[0] && !l.on[1] && l.on[2]);
	cr_assert_eq(l.fd[1], l.fd[0]);
	cr_assert(fd_open(l.fd[2]));
	cert_keyproc_watch(NULL, NULL);
	stop(&e);
}

/* The watching thread's loop ends: each socket is reported, then closed. */
Test(keyproc, watch_end_closes_the_channels)
{
	struct kp_env e;
	struct watch_log l = { .accept = true };
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	cert_keyproc_watch(watch_rec, &l);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cert_keyproc_watch(NULL, NULL);
	cr_assert_eq(l.n, 2);
	cr_assert(l.on[0] && !l.on[1]);
	cr_assert_eq(l.fd[1], l.fd[0]);
	cr_assert_not(fd_open(l.fd[0]));
	/* a later request opens a new channel, unwatched */
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert_eq(l.n, 2);
	stop(&e);
}

/* A loop that cannot watch one more socket: the request is still answered
 * (the socket is looked at as before), and its close is not reported. */
Test(keyproc, channel_the_loop_refused_still_answered)
{
	struct kp_env e;
	struct watch_log l = { .accept = false };
	struct cert_kp_req r;
	struct cert_kp_rep rep;

	start(&e);
	cert_keyproc_watch(watch_rec, &l);
	r = req_for(e.ec, CERT_KP_ECDSA, 32);
	cr_assert_eq(call(&r, &rep), CERT_KP_OK);
	cr_assert(verifies(e.ec, &r, &rep, -1));
	cr_assert_eq(l.n, 1);
	cert_keyproc_watch(NULL, NULL);
	cr_assert_eq(l.n, 1);
	stop(&e);
}

/* Before cert_keyproc_attach() there is no channel to watch. */
Test(keymsg, watch_without_a_key_process_does_nothing)
{
	struct watch_log l = { .accept = true };

	cert_keyproc_watch(watch_rec, &l);
	cert_keyproc_watch(NULL, NULL);
	cr_assert_eq(l.n, 0);
}
