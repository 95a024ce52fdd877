/* io_keywait.c -- a worker thread's answer sockets from the key process,
 * each in the event loop once for as long as it is open, and each wake-up
 * handed to the connection whose handshake waits on that socket.
 *
 * Why: adding a handshake's answer socket to the loop and removing it again
 * cost two epoll_ctl calls per full handshake. A thread has a few such
 * sockets (cert_keysign.c's channels, reused by its handshakes one at a
 * time), so each gets one persistent edge-triggered event here, and a
 * waiting handshake only names itself as the socket's waiter. The waiter
 * is cleared whenever its connection stops waiting or is freed, so a
 * wake-up for a connection gone meanwhile reaches nobody; the answer
 * itself is read by the handshake's job, never here. */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "gateway/gw_priv.h"

/* cert_keysign.c keeps at most 16 channels per thread; a socket beyond
 * these is refused (the connection then waits on it per handshake). */
#define KEYWAIT_MAX 16

struct keywait {
	int           fd;	/* -1: free slot */
	struct event  ev;	/* EV_READ|EV_ET|EV_PERSIST on fd */
	struct gw_io *waiter;	/* the handshake waiting on fd, or NULL */
};

/* Per thread, as the sockets are: cert_keysign.c's channels belong to the
 * thread that made them, and only that thread's loop may watch them. NULL:
 * not started in this thread. */
static _Thread_local struct keywait *kw;		/* [KEYWAIT_MAX] */
static _Thread_local struct event_base *kw_base;

static struct keywait *
find(int fd)
{
	size_t i;

	for (i = 0; i < KEYWAIT_MAX; i++)
		if (kw[i].fd == fd)
			return &kw[i];
	return NULL;
}

static void
ready(evutil_socket_t fd, short what, void *arg)
{
	struct keywait *k = arg;
	struct gw_io *io = k->waiter;

	(void)fd, (void)what;
	/* the handshake may close this socket (and reuse the slot) */
	k->waiter = NULL;
	if (io != NULL)
		gw_io_async_ready(io);
}

static bool
watch(int fd, bool on, void *arg)
{
	struct keywait *k;

	(void)arg;
	if (!on) {
		if ((k = find(fd)) != NULL) {
			event_del(&k->ev);
			k->fd = -1;
			k->waiter = NULL;
		}
		return true;
	}
	if (fd < 0 || (k = find(-1)) == NULL ||
	    event_assign(&k->ev, kw_base, fd, EV_READ | EV_ET | EV_PERSIST,
	    ready, k) < 0 || event_add(&k->ev, NULL) < 0)
		return false;
	k->fd = fd;
	k->waiter = NULL;
	return true;
}

/* Out of memory: the thread's handshakes wait for their sockets one-shot,
 * as before this file. */
void
gw_keywait_start(struct event_base *base)
{
	size_t i;

	if (kw != NULL || (kw = calloc(KEYWAIT_MAX, sizeof *kw)) == NULL)
		return;
	for (i = 0; i < KEYWAIT_MAX; i++)
		kw[i].fd = -1;
	kw_base = base;
	cert_keyproc_watch(watch, NULL);	/* nothing without a key process */
}

void
gw_keywait_end(void)
{
	if (kw == NULL)
		return;
	cert_keyproc_watch(NULL, NULL);	/* reports each socket closed */
	free(kw);
	kw = NULL;
	kw_base = NULL;
}

bool
gw_keywait_arm(struct gw_io *io, const struct event_base *base, int fd)
{
	struct keywait *k;

	if (kw == NULL || base != kw_base || fd < 0 ||
	    (k = find(fd)) == NULL)
		return false;
	k->waiter = io;
	return true;
}

void
gw_keywait_disarm(const struct gw_io *io, int fd)
{
	struct keywait *k;

	if (kw != NULL && fd >= 0 && (k = find(fd)) != NULL &&
	    k->waiter == io)
		k->waiter = NULL;
}
