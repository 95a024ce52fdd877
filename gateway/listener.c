/* listener.c -- a listening socket that takes one connection per wake-up.
 *
 * Why not libevent's evconnlistener: it accepts until accept4(2) says
 * EAGAIN, so under a steady stream of new connections, where each wake-up
 * finds one, every connection pays a second accept4 that finds nothing.
 * Taking one and going back to the loop (nginx's `multi_accept off`) lets
 * the level-triggered event say when the next is there, between the work
 * of the connections already taken. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>

#include "gateway/gw_priv.h"

struct gw_listener {
	struct event      ev;
	evutil_socket_t   fd;
	gw_accept_fn      cb;
	void             *arg;
	bool              added;
};

static void
listener_ready(evutil_socket_t fd, short what, void *arg)
{
	struct gw_listener *l = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int s;

	(void)what;
	s = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s >= 0) {
		l->cb(fd, s, (struct sockaddr *)&ss, len, l->arg);
		return;
	}
	/* nothing waiting (another wake-up took it), a signal, or a client
	 * gone before it was taken: nothing to say */
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
	    errno == ECONNABORTED)
		return;
	/* EMFILE, ENFILE, ENOBUFS...: the connection stays in the backlog and
	 * the next wake-up tries again, as libevent's listener did */
	gw_log(GW_LOG_WARN, "listener on fd %d: accept failed: %s (raise "
	    "LimitNOFILE or lower max_connections if it is EMFILE)", (int)fd,
	    strerror(errno));
}

/* The socket is the listener's from here on, closed by gw_listener_free
 * (and on failure). */
struct gw_listener *
gw_listener_new(struct event_base *base, evutil_socket_t fd, gw_accept_fn cb,
    void *arg)
{
	struct gw_listener *l = calloc(1, sizeof(*l));

	if (l == NULL || evutil_make_socket_nonblocking(fd) < 0 ||
	    evutil_make_socket_closeonexec(fd) < 0)
		goto fail;
	l->fd = fd;
	l->cb = cb;
	l->arg = arg;
	if (event_assign(&l->ev, base, fd, EV_READ | EV_PERSIST, listener_ready,
	    l) < 0 || event_add(&l->ev, NULL) < 0)
		goto fail;
	l->added = true;
	return l;
fail:
	free(l);
	close(fd);
	return NULL;
}

/* No more connections are taken (they wait in the backlog). */
void
gw_listener_disable(struct gw_listener *l)
{
	if (l->added)
		event_del(&l->ev);
	l->added = false;
}

void
gw_listener_free(struct gw_listener *l)
{
	if (l == NULL)
		return;
	gw_listener_disable(l);
	close(l->fd);
	free(l);
}
