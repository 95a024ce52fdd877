/* proxy_proto.c -- PROXY protocol v2 from trusted load balancers: the real
 * client address, read before the TLS handshake and only from addresses
 * listed in trusted_proxy (from anyone else it would be a spoofing tool).
 * The header format itself is proxy_v2.c's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/gw_priv.h"

/* A connection from a trusted proxy whose header has not all arrived. The
 * bytes are consumed as they come (never peeked: a peek of a partial header
 * would leave the socket readable and the loop spinning), at most up to the
 * header's end so that the TLS bytes behind it stay in the socket. One
 * deadline covers the whole header; it is not re-armed by each read. */
struct gw_ppwait {
	LIST_ENTRY(gw_ppwait)   entry;
	struct gw_worker       *w;
	evutil_socket_t         fd;
	struct sockaddr_storage peer;
	socklen_t               peerlen;
	struct event           *ev, *deadline;
	size_t                  have;
	uint8_t                 buf[GW_PP_MAX];
};

static void
pp_free(struct gw_ppwait *p, bool close_fd)
{
	LIST_REMOVE(p, entry);
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->deadline != NULL)
		event_free(p->deadline);
	if (close_fd) {
		close(p->fd);
		atomic_fetch_sub(&p->w->rt->conns_all, 1);
	}
	free(p);
}

static void
pp_drop(struct gw_ppwait *p, enum gw_refuse cause, const char *why)
{
	char ip[POL_ADDR_STRLEN];

	pol_addr_peer_text((struct sockaddr *)&p->peer, ip, sizeof(ip));
	gw_log(GW_LOG_WARN, "trusted proxy %s: %s: connection closed", ip, why);
	gw_metrics_refused(&p->w->rt->m, cause);
	pp_free(p, true);
}

static void
pp_fail(struct gw_ppwait *p, const char *why)
{
	pp_drop(p, GW_REFUSE_PROXY_PROTOCOL, why);
}

static void
pp_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	pp_fail(arg, "no complete PROXY header within tls_handshake_timeout");
}

/* How many bytes the header has in all, as far as its first bytes tell:
 * the fixed part first, then the fixed part and its announced body. */
static size_t
pp_want(const struct gw_ppwait *p)
{
	if (p->have < GW_PP_HEAD)
		return GW_PP_HEAD;
	return GW_PP_HEAD + ((size_t)p->buf[14] << 8 | p->buf[15]);
}

static void
pp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_ppwait *p = arg;
	struct gw_worker *w = p->w;
	struct sockaddr_storage src;
	socklen_t srclen;
	size_t hdrlen = 0, want;
	ssize_t n;
	int r;

	/* at most two reads: the fixed part, then the body it announces */
	for (int round = 0; round < 2; round++) {
		want = pp_want(p);
		if (want > sizeof(p->buf))
			want = sizeof(p->buf);	/* the parser refuses it below */
		n = recv(fd, p->buf + p->have, want - p->have, 0);
		if (n == 0) {
			pp_fail(p, "closed before the end of its PROXY header");
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			pp_fail(p, "read error before the end of its PROXY header");
			return;
		}
		p->have += (size_t)n;
		r = gw_proxy_v2_parse(p->buf, p->have, &src, &srclen, &hdrlen);
		if (r < 0) {
			pp_fail(p, "invalid PROXY v2 header");
			return;
		}
		if (r == 1)
			break;
		if (p->have < pp_want(p) && p->have < want)
			return;		/* short read: wait for the next edge */
	}
	if (hdrlen == 0 || hdrlen != p->have)
		return;
	if (srclen > 0)
		gw_conn_start(w, fd, (struct sockaddr *)&src, srclen, false);
	else
		gw_conn_start(w, fd, (struct sockaddr *)&p->peer, p->peerlen, false);
	pp_free(p, false);
}

/* A connection from a trusted proxy with proxy_protocol on: the header
 * must come first, within the TLS handshake timeout. */
void
gw_proxy_accept(struct gw_worker *w, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen, unsigned timeout_ms)
{
	struct gw_ppwait *p = calloc(1, sizeof(*p));
	struct timeval tv = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000 };

	if (p == NULL) {
		gw_metrics_refused(&w->rt->m, GW_REFUSE_RESOURCES);
		close(fd);
		atomic_fetch_sub(&w->rt->conns_all, 1);
		return;
	}
	p->w = w;
	p->fd = fd;
	memcpy(&p->peer, sa, salen < sizeof(p->peer) ? salen : sizeof(p->peer));
	p->peerlen = salen;
	LIST_INSERT_HEAD(&w->ppwaits, p, entry);
	p->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, pp_read_cb, p);
	p->deadline = evtimer_new(w->base, pp_deadline_cb, p);
	if (p->ev == NULL || p->deadline == NULL || event_add(p->ev, NULL) < 0 ||
	    evtimer_add(p->deadline, &tv) < 0)
		pp_drop(p, GW_REFUSE_RESOURCES, "cannot wait for its PROXY "
		    "header (out of memory)");
}

/* Shutdown: the waits still open are closed; no callback runs after. */
void
gw_proxy_close_all(struct gw_worker *w)
{
	struct gw_ppwait *p, *next;

	for (p = LIST_FIRST(&w->ppwaits); p != NULL; p = next) {
		next = LIST_NEXT(p, entry);
		pp_free(p, true);
	}
}
