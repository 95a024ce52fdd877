/* proxy_proto.c -- PROXY protocol v2 from trusted load balancers: the real
 * client address, read before the TLS handshake and only from addresses
 * listed in trusted_proxy (from anyone else it would be a spoofing tool). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/gw_internal.h"

/* The 12-byte signature of version 2 (a fact of the protocol spec). */
static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define PP_HEAD     16
#define PP_MAX      (PP_HEAD + 512)	/* addresses + TLVs we accept */

/* Returns 1 with *hdrlen and (for PROXY over TCP) *src filled, 0 when more
 * bytes are needed, -1 when the bytes are not a v2 header we accept.
 * A LOCAL command (health checks from the balancer itself) leaves src's
 * family AF_UNSPEC: the TCP peer stands. */
int
gw_proxy_v2_parse(const uint8_t *b, size_t len, struct sockaddr_storage *src,
    socklen_t *srclen, size_t *hdrlen)
{
	size_t body;

	memset(src, 0, sizeof(*src));
	*srclen = 0;
	if (memcmp(b, sig, len < sizeof(sig) ? len : sizeof(sig)) != 0)
		return -1;
	if (len < PP_HEAD)
		return 0;
	if ((b[12] & 0xf0) != 0x20)
		return -1;		/* version 2 only */
	body = (size_t)b[14] << 8 | b[15];
	if (PP_HEAD + body > PP_MAX)
		return -1;
	if (len < PP_HEAD + body)
		return 0;
	*hdrlen = PP_HEAD + body;
	if ((b[12] & 0x0f) == 0x00)
		return 1;		/* LOCAL */
	if ((b[12] & 0x0f) != 0x01)
		return -1;
	if (b[13] == 0x11) {		/* TCP over IPv4 */
		struct sockaddr_in *s4 = (struct sockaddr_in *)src;
		if (body < 12)
			return -1;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, b + 16, 4);
		memcpy(&s4->sin_port, b + 24, 2);
		*srclen = sizeof(*s4);
		return 1;
	}
	if (b[13] == 0x21) {		/* TCP over IPv6 */
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;
		if (body < 36)
			return -1;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, b + 16, 16);
		memcpy(&s6->sin6_port, b + 48, 2);
		*srclen = sizeof(*s6);
		return 1;
	}
	return -1;			/* UDP, unix sockets, unspecified */
}

struct pp_wait {
	struct gw_worker       *w;
	evutil_socket_t         fd;
	struct sockaddr_storage peer;
	socklen_t               peerlen;
	struct event           *ev;
};

static void
pp_fail(struct pp_wait *p, const char *why)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (p->peer.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&p->peer)->sin_addr, ip, sizeof(ip));
	else if (p->peer.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&p->peer)->sin6_addr, ip, sizeof(ip));
	gw_log(GW_LOG_WARN, "trusted proxy %s: %s: connection closed", ip, why);
	close(p->fd);
	atomic_fetch_sub(&p->w->rt->conns_all, 1);
	event_free(p->ev);
	free(p);
}

static void
pp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pp_wait *p = arg;
	uint8_t buf[PP_MAX];
	struct sockaddr_storage src;
	socklen_t srclen;
	size_t hdrlen = 0;
	ssize_t n;
	int r;

	if (what & EV_TIMEOUT) {
		pp_fail(p, "no PROXY header in time");
		return;
	}
	n = recv(fd, buf, sizeof(buf), MSG_PEEK);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		pp_fail(p, "closed before the PROXY header");
		return;
	}
	r = gw_proxy_v2_parse(buf, (size_t)n, &src, &srclen, &hdrlen);
	if (r == 0)
		return;		/* wait for the rest (the event persists) */
	if (r < 0 || recv(fd, buf, hdrlen, 0) != (ssize_t)hdrlen) {
		pp_fail(p, "invalid PROXY v2 header");
		return;
	}
	event_free(p->ev);
	if (srclen > 0)
		gw_conn_start(p->w, fd, (struct sockaddr *)&src, srclen, false);
	else
		gw_conn_start(p->w, fd, (struct sockaddr *)&p->peer, p->peerlen, false);
	free(p);
}

/* A connection from a trusted proxy with proxy_protocol on: the header
 * must come first, within the TLS handshake timeout. */
void
gw_proxy_accept(struct gw_worker *w, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen, unsigned timeout_ms)
{
	struct pp_wait *p = calloc(1, sizeof(*p));
	struct timeval tv = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000 };

	if (p == NULL) {
		close(fd);
		atomic_fetch_sub(&w->rt->conns_all, 1);
		return;
	}
	p->w = w;
	p->fd = fd;
	memcpy(&p->peer, sa, salen < sizeof(p->peer) ? salen : sizeof(p->peer));
	p->peerlen = salen;
	p->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, pp_read_cb, p);
	if (p->ev == NULL || event_add(p->ev, &tv) < 0) {
		if (p->ev)
			event_free(p->ev);
		close(fd);
		atomic_fetch_sub(&w->rt->conns_all, 1);
		free(p);
	}
}
