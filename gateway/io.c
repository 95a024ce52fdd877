/* io.c -- a byte stream over a socket, with or without TLS, driven by one
 * edge-triggered event registered once.
 *
 * Why not libevent's bufferevents: they wait for writability before every
 * write and toggle EV_WRITE for each response, which costs two epoll_ctl
 * calls per request and direction. Here a write is tried at once (from the
 * loop, right after the callback that queued it) and the kernel is only
 * asked to wait when a socket is really full; the event is never changed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gateway/gw_priv.h"

#define IO_READ_CHUNK   16384
#define IO_FIRST_READ   4096
#define IO_READ_ROUND   ((size_t)256 * 1024)	/* then let other connections run */
#define IO_WRITE_ROUND  ((size_t)1024 * 1024)
/* A handshake waiting for the key process is resumed at least this often;
 * the signing code keeps its own deadline and fails the handshake there. */
#define IO_ASYNC_RECHECK_S 1

struct gw_io {
	struct event_base *base;
	evutil_socket_t    fd;
	SSL               *ssl;
	struct evbuffer   *in, *out;
	struct event       ev;		/* EV_READ|EV_WRITE|EV_ET|EV_PERSIST;
					   activated with EV_TIMEOUT to run
					   io_process from the loop (a kick) */
	struct event       aev;		/* a paused handshake's wait: its
					   answer socket (one-shot), or only
					   the recheck timer when the socket
					   is the thread's (io_keywait.c) */
	int                async_fd;	/* the socket it waits on */
	gw_io_cb           read_cb, write_cb;
	gw_io_event_cb     event_cb;
	void              *arg;
	size_t             lowat;
	unsigned long      ssl_err;
	int                depth;	/* callbacks on the stack */
	bool               registered;
	bool               connecting, handshaking, server;
	bool               can_read, can_write;
	bool               reading;	/* reads enabled by the owner */
	bool               eof, failed, reported;
	bool               rdhup;	/* the peer's FIN has arrived */
	bool               dead;	/* freed while in a callback */
	bool               ended;	/* EOF or error reported */
	bool               frozen;	/* no more I/O, waiting to be freed */
	bool               kicked;	/* a kick is queued already */
	bool               drained;	/* the last read(2) was short */
	bool               async_armed;	/* aev is added */
	bool               async_kw;	/* io_keywait.c wakes it on async_fd */
	bool               async_wait;	/* the handshake job is paused */
	bool               sealed;	/* out holds the last records and
					   close_notify, encrypted: written
					   as they are (gw_io_seal_last) */
};

static void io_process(struct gw_io *);
static void clear_errors(void);

static void
io_event(evutil_socket_t fd, short what, void *arg)
{
	struct gw_io *io = arg;

	io->kicked = false;
	if (what & EV_CLOSED)
		io->rdhup = true;
	if (what & (EV_READ | EV_CLOSED))
		io->can_read = true;
	if (what & EV_WRITE)
		io->can_write = true;
	io_process(io);
}

/* Before the socket exists there is nothing to do: connect completion
 * runs io_process anyway. */
static void
io_kick(struct gw_io *io)
{
	/* many appends per answer: one activation (one base lock) */
	if (!io->dead && !io->frozen && io->registered && !io->kicked) {
		io->kicked = true;
		event_active(&io->ev, EV_TIMEOUT, 0);
	}
}

/* Data queued by the owner: write it from the loop, soon. */
static void
out_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	if (info->n_added > 0)
		io_kick(arg);
}

static int
io_register(struct gw_io *io)
{
	if (event_assign(&io->ev, io->base, io->fd,
	    EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST, io_event, io) < 0 ||
	    event_add(&io->ev, NULL) < 0)
		return -1;
	io->registered = true;
	return 0;
}

/* With read-ahead OpenSSL asks the socket for a whole buffer at a time:
 * fewer bytes than asked for mean the socket was empty after that read. */
static long
watch_reads(BIO *b, int oper, const char *argp, size_t len, int argi,
    long argl, int ret, size_t *processed)
{
	struct gw_io *io = (struct gw_io *)BIO_get_callback_arg(b);

	(void)argp, (void)argi, (void)argl;
	if (oper == (BIO_CB_READ | BIO_CB_RETURN))
		io->drained = ret > 0 && processed != NULL && *processed < len;
	return ret;
}

static void
watch_socket(struct gw_io *io)
{
	BIO *b = SSL_get_rbio(io->ssl);

	if (b == NULL)
		return;
	BIO_set_callback_arg(b, (char *)io);
	BIO_set_callback_ex(b, watch_reads);
}

struct gw_io *
gw_io_new(struct event_base *base, evutil_socket_t fd, SSL *ssl, bool server)
{
	struct gw_io *io = calloc(1, sizeof(*io));

	if (io == NULL)
		return NULL;
	io->base = base;
	io->fd = fd;
	io->ssl = ssl;
	io->server = server;
	io->reading = true;
	io->lowat = GW_HIGH_WATER / 2;
	if (gw_io_input(io) == NULL || gw_io_output(io) == NULL)
		goto fail;
	if (ssl != NULL) {
		SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
		    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		/* one read(2) for a record's header and body, not two */
		SSL_set_read_ahead(ssl, 1);
	}
	if (fd >= 0) {
		/* fd is non-blocking already (gw_listener accepts with
		 * SOCK_NONBLOCK): no fcntl pair per connection */
		if (ssl != NULL) {
			SSL_set_fd(ssl, (int)fd);
			watch_socket(io);
			SSL_set_accept_state(ssl);
			io->handshaking = true;
		}
		if (io_register(io) < 0)
			goto fail;
	}
	return io;
fail:
	if (io->in)
		evbuffer_free(io->in);
	if (io->out)
		evbuffer_free(io->out);
	free(io);
	return NULL;
}

int
gw_io_connect(struct gw_io *io, const struct sockaddr *sa, socklen_t len)
{
	io->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (io->fd < 0)
		return -1;
	if (connect(io->fd, sa, len) < 0 && errno != EINPROGRESS)
		return -1;
	io->connecting = true;
	return io_register(io);
}

static void
async_disarm(struct gw_io *io)
{
	if (io->async_armed)
		event_del(&io->aev);
	if (io->async_kw)
		gw_keywait_disarm(io, io->async_fd);
	io->async_armed = io->async_kw = false;
}

static void
io_really_free(struct gw_io *io)
{
	if (io->registered)
		event_del(&io->ev);
	async_disarm(io);
	if (io->ssl != NULL) {
		cert_ssl_abandon(io->ssl);
		SSL_free(io->ssl);
	}
	if (io->fd >= 0)
		close(io->fd);
	if (io->in)
		evbuffer_free(io->in);
	if (io->out)
		evbuffer_free(io->out);
	free(io);
}

void
gw_io_free(struct gw_io *io)
{
	if (io == NULL)
		return;
	if (io->depth > 0) {
		io->dead = true;	/* freed when the callback returns */
		io->read_cb = io->write_cb = NULL;
		io->event_cb = NULL;
		return;
	}
	io_really_free(io);
}

/* Nothing more is read or written (queued output is dropped with the
 * stream): for a connection being abandoned, whose pending bytes must not
 * reach the peer. */
void
gw_io_freeze(struct gw_io *io)
{
	io->frozen = true;
	io->read_cb = io->write_cb = NULL;
	io->event_cb = NULL;
	if (io->registered)
		event_del(&io->ev);
	async_disarm(io);
}

void
gw_io_setcb(struct gw_io *io, gw_io_cb rd, gw_io_cb wr, gw_io_event_cb ev,
    void *arg)
{
	io->read_cb = rd;
	io->write_cb = wr;
	io->event_cb = ev;
	io->arg = arg;
}

/* The buffers exist while there is traffic: an idle keep-alive connection
 * gives them back (gw_io_trim), and they come back on first use. NULL only
 * when out of memory. */
struct evbuffer *
gw_io_input(struct gw_io *io)
{
	if (io->in == NULL)
		io->in = evbuffer_new();
	return io->in;
}

struct evbuffer *
gw_io_output(struct gw_io *io)
{
	if (io->out == NULL && (io->out = evbuffer_new()) != NULL)
		evbuffer_add_cb(io->out, out_cb, io);
	return io->out;
}

/* Frees the buffers when both are empty (about 400 bytes per idle
 * connection, which is most of them). */
void
gw_io_trim(struct gw_io *io)
{
	if (io->depth > 0 || io->in == NULL || io->out == NULL ||
	    evbuffer_get_length(io->in) != 0 || evbuffer_get_length(io->out) != 0)
		return;
	evbuffer_free(io->in);
	evbuffer_free(io->out);
	io->in = io->out = NULL;
}

static size_t
out_len(const struct gw_io *io)
{
	return io->out ? evbuffer_get_length(io->out) : 0;
}
SSL *gw_io_ssl(struct gw_io *io) { return io->ssl; }
evutil_socket_t gw_io_fd(struct gw_io *io) { return io->fd; }
unsigned long gw_io_ssl_error(struct gw_io *io) { return io->ssl_err; }

void
gw_io_read(struct gw_io *io, bool on)
{
	if (io->reading == on)
		return;
	io->reading = on;
	if (on)
		io_kick(io);	/* the edge may have come while paused */
}

/* Sends close_notify (TLS) at once, without waiting for the peer's. */
void
gw_io_close_notify(struct gw_io *io)
{
	if (io->ssl != NULL && !io->handshaking && !io->failed && !io->sealed)
		(void)SSL_shutdown(io->ssl);
	ERR_clear_error();
}

/* Encrypts into memory what waits in out, then close_notify, and puts the
 * records back in out to be written as they are: the answer's last record
 * and the alert leave in one write(2) and one segment instead of two.
 * Only for a last piece that fits one record (16 KiB) with no TLS write
 * pending; false (nothing changed) otherwise, or when the SSL fails to
 * encrypt (then failed is set and the connection ends as on any error). */
bool
gw_io_seal_last(struct gw_io *io)
{
	size_t n = out_len(io), w = 0;
	BIO *sock, *mem;
	char *p;
	long len;
	bool ok;

	if (io->ssl == NULL || io->handshaking || io->failed || io->sealed ||
	    !io->can_write || n == 0 || n > 16384 ||
	    (sock = SSL_get_wbio(io->ssl)) == NULL ||
	    (mem = BIO_new(BIO_s_mem())) == NULL)
		return false;
	BIO_up_ref(sock);
	SSL_set0_wbio(io->ssl, mem);	/* the SSL owns mem now */
	clear_errors();
	ok = SSL_write_ex(io->ssl, evbuffer_pullup(io->out, (ssize_t)n), n,
	    &w) == 1 && w == n && SSL_shutdown(io->ssl) >= 0;
	len = BIO_get_mem_data(mem, &p);
	if (ok) {
		evbuffer_drain(io->out, n);
		ok = len > 0 && evbuffer_add(io->out, p, (size_t)len) == 0;
	}
	SSL_set0_wbio(io->ssl, sock);	/* frees mem, gives our ref back */
	ERR_clear_error();
	if (!ok) {
		io->failed = true;
		io_kick(io);
		return false;
	}
	io->sealed = true;
	return true;
}

/* Sends close_notify (TLS) and FIN; reading goes on. */
void
gw_io_shutdown_write(struct gw_io *io)
{
	gw_io_close_notify(io);
	if (io->fd >= 0)
		shutdown(io->fd, SHUT_WR);
}

/* Whether no input waits anywhere, as far as the stream knows without a
 * system call: nothing in the input buffer, nothing decrypted or read
 * ahead in OpenSSL, and no read edge since the socket was last found
 * empty (a short read or EAGAIN). Bytes may still be on the wire. */
bool
gw_io_input_quiet(const struct gw_io *io)
{
	if (io->in != NULL && evbuffer_get_length(io->in) != 0)
		return false;
	if (io->ssl != NULL && SSL_has_pending(io->ssl))
		return false;
	return !io->can_read && !io->rdhup && !io->eof;
}

static bool
call_event(struct gw_io *io, short what)
{
	if (io->event_cb == NULL)
		return !io->dead;
	io->depth++;
	io->event_cb(io, what, io->arg);
	io->depth--;
	return !io->dead;
}

static bool
call(struct gw_io *io, gw_io_cb cb)
{
	if (cb == NULL)
		return !io->dead;
	io->depth++;
	cb(io, io->arg);
	io->depth--;
	return !io->dead;
}

/* SSL_get_error() needs an empty error queue before each TLS call. It is
 * empty in the normal case (every failure path below clears it), and
 * ERR_clear_error() walks all its slots on every call: look first. */
static void
clear_errors(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}

/* -1: fatal (failed set), 0: would block, >0: bytes moved */
static int
ssl_result(struct gw_io *io, int r, bool writing)
{
	int e;

	if (r > 0)
		return r;
	e = SSL_get_error(io->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		io->can_read = false;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		io->can_write = false;
		return 0;
	case SSL_ERROR_WANT_ASYNC:
		io->async_wait = true;	/* the key process is signing */
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		io->eof = true;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (!writing && ERR_peek_error() == 0 && (r == 0 || errno == 0 ||
		    errno == ECONNRESET)) {
			io->eof = true;	/* closed without close_notify */
			return -1;
		}
		/* FALLTHROUGH */
	default:
		io->ssl_err = ERR_peek_last_error();
		ERR_clear_error();
		io->failed = true;
		return -1;
	}
}

/* read(2) on a plain socket; sets drained when it came back short. */
static int
sock_read(struct gw_io *io, char *p, size_t n)
{
	ssize_t r = read(io->fd, p, n);

	if (r > 0) {
		io->drained = (size_t)r < n;
		return (int)r;
	}
	if (r == 0) {
		io->eof = true;
		return -1;
	}
	if (errno == EAGAIN || errno == EINTR) {
		io->can_read = false;
		return 0;
	}
	io->failed = true;
	return -1;
}

static int
raw_read(struct gw_io *io, char *p, size_t n)
{
	int got;

	io->drained = false;
	if (io->ssl != NULL) {
		clear_errors();
		got = ssl_result(io, SSL_read(io->ssl, p, (int)n), false);
	} else
		got = sock_read(io, p, n);
	/* A short read emptied the socket (TLS: OpenSSL's last read(2) was
	 * short and it holds nothing more): the next edge says when there is
	 * more, so the read(2) that would say EAGAIN is saved. Once the FIN is
	 * known (EPOLLRDHUP) reads go on to the 0 that reports it. */
	if (got > 0 && io->drained && !io->rdhup &&
	    (io->ssl == NULL || !SSL_has_pending(io->ssl)))
		io->can_read = false;
	return got;
}

/* The first read of an event goes through the stack and is copied in: a
 * request or an answer head then takes a chain of its own size from the
 * allocator's small-size caches, instead of a 16 KiB chain malloc'd and
 * freed again for every request. Bodies beyond it are read in place. */
static int
read_some(struct gw_io *io, size_t round)
{
	struct evbuffer_iovec v;
	int n;

	if (round == 0) {
		char first[IO_FIRST_READ];

		n = raw_read(io, first, sizeof(first));
		if (n > 0 && evbuffer_add(io->in, first, (size_t)n) < 0) {
			io->failed = true;	/* out of memory */
			return -1;
		}
		return n;
	}
	if (evbuffer_reserve_space(io->in, IO_READ_CHUNK, &v, 1) < 1) {
		io->failed = true;
		return -1;
	}
	n = raw_read(io, v.iov_base, v.iov_len < IO_READ_CHUNK ?
	    v.iov_len : IO_READ_CHUNK);
	v.iov_len = n > 0 ? (size_t)n : 0;
	evbuffer_commit_space(io->in, &v, 1);
	return n;
}

static void
do_read(struct gw_io *io, bool *got)
{
	size_t round = 0;

	while (io->reading && io->can_read && !io->eof && !io->failed) {
		int n;

		if (round >= IO_READ_ROUND) {
			io_kick(io);	/* more later: fairness */
			return;
		}
		if (gw_io_input(io) == NULL) {
			io->failed = true;
			return;
		}
		if ((n = read_some(io, round)) <= 0)
			return;
		round += (size_t)n;
		*got = true;
	}
}

static int
raw_write(struct gw_io *io)
{
	size_t len = out_len(io);
	ssize_t r;

	if (io->ssl != NULL && !io->sealed) {
		/* one TLS record of up to 16 KiB from contiguous bytes */
		size_t n = len < 16384 ? len : 16384;
		unsigned char *p = evbuffer_pullup(io->out, (ssize_t)n);
		int w;

		clear_errors();
		w = ssl_result(io, SSL_write(io->ssl, p, (int)n), true);
		if (w > 0)
			evbuffer_drain(io->out, (size_t)w);
		return w;
	}
	r = evbuffer_write_atmost(io->out, io->fd, (ev_ssize_t)len);
	if (r >= 0)
		return (int)r;
	if (errno == EAGAIN || errno == EINTR) {
		io->can_write = false;
		return 0;
	}
	io->failed = true;
	return -1;
}

static void
do_write(struct gw_io *io, bool *progress)
{
	size_t round = 0;

	while (io->can_write && !io->failed && out_len(io) > 0) {
		int n;

		if (round >= IO_WRITE_ROUND) {
			io_kick(io);
			return;
		}
		n = raw_write(io);
		if (n <= 0)
			return;
		round += (size_t)n;
		*progress = true;
	}
}

static bool
finish_connect(struct gw_io *io)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!io->can_write && !io->can_read)
		return false;
	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		errno = err;
		io->failed = true;
		return false;
	}
	io->connecting = false;
	if (io->ssl != NULL) {
		SSL_set_fd(io->ssl, (int)io->fd);
		watch_socket(io);
		SSL_set_connect_state(io->ssl);
		io->handshaking = true;
	}
	return true;
}

void
gw_io_async_ready(struct gw_io *io)
{
	io->async_kw = false;	/* io_keywait.c has forgotten it */
	io_process(io);
}

static void
async_event(evutil_socket_t fd, short what, void *arg)
{
	struct gw_io *io = arg;

	(void)fd, (void)what;
	io->async_armed = false;
	io_process(io);
}

/* The paused job published the socket its answer comes on: wait for it.
 * One of the thread's channel sockets is in the loop already
 * (io_keywait.c), and only the recheck timer is added, which costs no
 * system call; any other is waited for one-shot, so the job may close it
 * once resumed. */
static bool
async_arm(struct gw_io *io)
{
	struct timeval tv = { IO_ASYNC_RECHECK_S, 0 };
	OSSL_ASYNC_FD fd;
	size_t n = 0;
	int r;

	if (SSL_get_all_async_fds(io->ssl, NULL, &n) != 1 || n != 1 ||
	    SSL_get_all_async_fds(io->ssl, &fd, &n) != 1)
		goto fail;
	io->async_fd = fd;
	io->async_kw = gw_keywait_arm(io, io->base, fd);
	if (io->async_kw)
		r = evtimer_assign(&io->aev, io->base, async_event, io);
	else
		r = event_assign(&io->aev, io->base, fd, EV_READ, async_event,
		    io);
	if (r < 0 || event_add(&io->aev, &tv) < 0)
		goto fail;
	io->async_armed = true;
	return true;
fail:
	ERR_clear_error();
	async_disarm(io);
	io->failed = true;
	return false;
}

/* One step of the TLS handshake; false while it is not finished. A step
 * may resume a job paused for the key process: its wait is removed first,
 * as the job closes its socket when it ends. */
static bool
ssl_handshake_step(struct gw_io *io)
{
	async_disarm(io);
	io->async_wait = false;
	clear_errors();
	if (ssl_result(io, SSL_do_handshake(io->ssl), false) > 0) {
		/* reads and writes need no job: the mode costs a context
		 * switch on every call */
		SSL_clear_mode(io->ssl, SSL_MODE_ASYNC);
		return true;
	}
	if (io->async_wait)
		(void)async_arm(io);
	return false;
}

/* Returns false while the handshake (or connect) is not finished. */
static bool
handshake(struct gw_io *io)
{
	if (io->connecting && !finish_connect(io))
		return false;
	if (io->handshaking) {
		if (!ssl_handshake_step(io))
			return false;
		io->handshaking = false;
		/* the handshake reads from the socket whatever event ran it
		 * (a write edge, a kick), and with read-ahead the first
		 * request may now sit in OpenSSL's buffer, where no edge
		 * will announce it: read until OpenSSL says WANT_READ */
		io->can_read = true;
	} else if (io->ssl == NULL && !io->server && io->reported)
		return true;
	if (!io->reported) {
		io->reported = true;
		return call_event(io, GW_IO_CONNECTED);
	}
	return true;
}

static void
io_process(struct gw_io *io)
{
	bool got = false, progress = false;
	size_t before;

	if (io->dead || io->frozen)
		return;
	if (io->failed)
		goto failed;
	if ((io->connecting || io->handshaking || !io->reported) && !handshake(io)) {
		if (io->failed || io->eof)
			goto failed;
		return;
	}
	before = out_len(io);
	do_write(io, &progress);
	do_read(io, &got);
	if (got && !call(io, io->read_cb))
		goto out;
	/* what the callback queued goes out now, not an iteration later */
	do_write(io, &progress);
	if (progress && out_len(io) <= io->lowat &&
	    (before > 0 || out_len(io) == 0)) {
		if (!call(io, io->write_cb))
			goto out;
	}
	if (io->failed || io->eof)
		goto failed;
	return;
failed:
	if (!io->dead && !io->ended) {
		io->ended = true;
		call_event(io, io->failed ? GW_IO_ERROR : GW_IO_EOF);
	}
out:
	if (io->dead && io->depth == 0)
		io_really_free(io);
}
