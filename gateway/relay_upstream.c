/* relay_upstream.c -- connections to the upstream: the per-worker idle
 * keep-alive pool (gw_upool_*), connecting (TCP or TLS), and feeding the
 * answers to the response parser (http_head.c). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gateway/gw_priv.h"

static void up_read_cb(struct gw_io *, void *);
static void up_write_cb(struct gw_io *, void *);
static void up_event_cb(struct gw_io *, short, void *);
static void up_timer_cb(evutil_socket_t, short, void *);
static void up_parse(struct gw_upconn *);
static const struct gw_respparse_hooks up_hooks;

static void
up_arm(struct gw_upconn *up, unsigned ms)
{
	struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
	evtimer_add(up->timer, &tv);
}

static void
up_free_now(struct gw_upconn *up)
{
	if (up->io)
		gw_io_free(up->io);
	event_free(up->timer);
	gw_respparse_free(&up->rs);
	free(up);
}

/* Deferred free: callbacks of this connection may be on the stack. */
static void
up_defer_free(struct gw_upconn *up)
{
	if (up->freeing)
		return;
	if (up->state == US_IDLE) {
		TAILQ_REMOVE(&up->w->idle, up, entry);
		up->w->nidle--;
	}
	up->freeing = true;
	up->c = NULL;
	gw_io_freeze(up->io);
	event_del(up->timer);
	event_active(up->timer, EV_TIMEOUT, 0);
}

static void
up_reset_parser(struct gw_upconn *up)
{
	gw_respparse_init(&up->rs, &up_hooks, up);
	up->got_bytes = up->switching = false;
}

static struct gw_upconn *
up_connect(struct gw_conn *c, char *err, size_t errlen)
{
	struct gw_worker *w = c->w;
	const struct gw_config *cfg = c->site;
	struct gw_upconn *up = calloc(1, sizeof(*up));

	if (up == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	up->w = w;
	up->c = c;
	gw_now(&up->t_open);
	up->generation = c->cfg->generation;
	up->site = cfg;
	up->ready_slot = cfg->metrics_slot;	/* 0 at the top level */
	up->pool_max = cfg->lim.upstream_keepalive;
	up->idle_ms = cfg->to.idle;
	up->timer = evtimer_new(w->base, up_timer_cb, up);
	if (cfg->upstream.tls) {
		SSL *ssl = cert_client_ssl(cfg->upstream_tls, cfg->upstream.sni);
		if (ssl != NULL) {
			up->io = gw_io_new(w->base, -1, ssl, false);
			if (up->io == NULL)
				SSL_free(ssl);
		}
	} else
		up->io = gw_io_new(w->base, -1, NULL, false);
	if (up->io == NULL || up->timer == NULL) {
		snprintf(err, errlen, "cannot create a connection object");
		if (up->timer)
			event_free(up->timer);
		if (up->io)
			gw_io_free(up->io);
		free(up);
		return NULL;
	}
	up_reset_parser(up);
	gw_io_setcb(up->io, up_read_cb, up_write_cb, up_event_cb, up);
	gw_io_read(up->io, true);
	up->state = US_CONNECTING;
	if (gw_io_connect(up->io, (const struct sockaddr *)&cfg->up_addr,
	    cfg->up_addrlen) < 0) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		up_free_now(up);
		return NULL;
	}
	up_arm(up, cfg->to.upstream_connect);
	return up;
}

struct gw_upconn *
gw_up_acquire(struct gw_conn *c, char *err, size_t errlen)
{
	struct gw_worker *w = c->w;
	struct gw_upconn *up;

	while ((up = TAILQ_FIRST(&w->idle)) != NULL) {
		TAILQ_REMOVE(&w->idle, up, entry);
		w->nidle--;
		if (up->generation != c->cfg->generation || up->site != c->site) {
			/* opened under another config or for another site: its
			 * upstream may differ */
			up->state = US_ACTIVE;
			up_defer_free(up);
			continue;
		}
		event_del(up->timer);
		up->state = US_ACTIVE;
		up->c = c;
		up->reused = true;
		up_reset_parser(up);
		gw_io_read(up->io, true);
		return up;
	}
	return up_connect(c, err, errlen);
}

void
gw_up_send_head(struct gw_upconn *up, struct evbuffer *head)
{
	size_t n = evbuffer_get_length(head);

	evbuffer_add(gw_io_output(up->io), evbuffer_pullup(head, -1), n);
	if (up->c != NULL)
		gw_now(&up->c->rq->t_up);
}

/* The whole request is on its way: from now on the upstream owes us an
 * answer within upstream_timeout. */
void
gw_up_request_sent(struct gw_upconn *up)
{
	if (up->state == US_ACTIVE && !up->read_paused && up->c != NULL)
		up_arm(up, up->c->site->to.upstream);
}

void
gw_up_release(struct gw_upconn *up, bool reusable)
{
	struct gw_worker *w = up->w;

	up->c = NULL;
	if (!reusable || w->draining || up->state != US_ACTIVE ||
	    !up->rs.msg_done || up->freeing || up->no_reuse ||
	    w->nidle >= up->pool_max ||
	    evbuffer_get_length(gw_io_input(up->io)) != 0) {
		up_defer_free(up);
		return;
	}
	up->state = US_IDLE;
	up->read_paused = false;
	TAILQ_INSERT_HEAD(&w->idle, up, entry);
	w->nidle++;
	event_del(up->timer);
	up_arm(up, up->idle_ms);
	gw_io_read(up->io, true);
}

void
gw_up_pause_read(struct gw_upconn *up, bool pause)
{
	if (pause) {
		up->read_paused = true;
		gw_io_read(up->io, false);
		event_del(up->timer);
		return;
	}
	if (!up->read_paused || up->freeing)
		return;
	up->read_paused = false;
	gw_io_read(up->io, true);
	if (up->c == NULL)
		return;
	if (up->c->state == CS_TUNNEL) {
		gw_tunnel_up_read(up);
		return;
	}
	up_arm(up, up->c->site->to.upstream);
	up_parse(up);
}

/* Closes every idle upstream connection of the worker (drain, reload). */
void
gw_upool_flush(struct gw_worker *w)
{
	struct gw_upconn *up;

	while ((up = TAILQ_FIRST(&w->idle)) != NULL)
		up_defer_free(up);
}

/* The worker's loop has exited: idle connections go now, no callback
 * can run any more. */
void
gw_upool_free(struct gw_worker *w)
{
	struct gw_upconn *up;

	while ((up = TAILQ_FIRST(&w->idle)) != NULL) {
		TAILQ_REMOVE(&w->idle, up, entry);
		w->nidle--;
		up_free_now(up);
	}
}

static void
up_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_upconn *up = arg;

	if (up->freeing) {
		up_free_now(up);
		return;
	}
	if (up->state == US_IDLE || up->c == NULL) {
		up_defer_free(up);
		return;
	}
	gw_log(GW_LOG_WARN, "upstream %s: %s timed out",
	    up->c->site->upstream.url,
	    up->state == US_CONNECTING ? "connect" : "response");
	gw_conn_upstream_failed(up->c, 504);
}

static bool
retryable(const struct gw_upconn *up)
{
	const struct gw_conn *c = up->c;

	/* Only a request we can send again whole: no body streamed yet, and
	 * only when a pooled connection died under us before any answer. */
	return up->reused && !up->got_bytes && c->rq->req_done &&
	    c->rq->rp.body_in == 0 && !c->rq->upgrade && c->rq->up_head != NULL;
}

static void
up_retry(struct gw_upconn *up)
{
	struct gw_conn *c = up->c;
	char err[GW_ERRLEN];
	struct gw_upconn *n;

	up->c = NULL;
	up_defer_free(up);
	c->up = NULL;
	n = up_connect(c, err, sizeof(err));
	if (n == NULL) {
		gw_log(GW_LOG_ERR, "upstream %s: %s", c->site->upstream.url, err);
		gw_conn_upstream_failed(c, 502);
		return;
	}
	c->up = n;
	gw_up_send_head(n, c->rq->up_head);
}

/* The upstream closed and everything it sent is parsed: a close-delimited
 * body ends here. false when the answer is incomplete. */
static bool
up_finish_at_eof(struct gw_upconn *up)
{
	if (!up->rs.head_done || !llhttp_message_needs_eof(&up->rs.parser))
		return false;
	/* the message-complete hook pauses the parser, and llhttp_finish
	 * passes that on: HPE_PAUSED is the normal end here */
	switch (llhttp_finish(&up->rs.parser)) {
	case HPE_OK:
	case HPE_PAUSED:
		break;
	default:
		return false;
	}
	if (!up->rs.msg_done)
		return false;
	llhttp_resume(&up->rs.parser);
	gw_conn_response_done(up->c, false);
	return true;
}

static void
up_event_cb(struct gw_io *io, short what, void *arg)
{
	struct gw_upconn *up = arg;
	struct gw_conn *c = up->c;

	if (what & GW_IO_CONNECTED) {
		int one = 1;
		setsockopt(gw_io_fd(io), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof(one));
		up->state = US_ACTIVE;
		event_del(up->timer);
		gw_metrics_upstream_connect(&up->w->rt->m,
		    gw_ms_since(&up->t_open) / 1e3);
		gw_ready_upstream(up->w->rt, up->ready_slot, true);
		if (c != NULL && gw_conn_request_sent(c))
			up_arm(up, c->site->to.upstream);
		return;
	}
	if (up->state == US_IDLE || c == NULL || up->freeing) {
		up_defer_free(up);
		return;
	}
	if (c->state == CS_TUNNEL) {
		gw_tunnel_up_closed(up);
		return;
	}
	if ((what & GW_IO_EOF) && up->rs.head_done &&
	    evbuffer_get_length(gw_io_input(io)) > 0) {
		/* The upstream closed while the client was slower (reading
		 * paused at the high-water mark): what it sent is still to be
		 * parsed and relayed; up_parse ends the answer after that. */
		up->eof_seen = true;
		up->no_reuse = true;
		up_parse(up);
		return;
	}
	if ((what & GW_IO_EOF) && up_finish_at_eof(up))
		return;
	if (retryable(up)) {
		up_retry(up);
		return;
	}
	if (up->state == US_CONNECTING)
		gw_ready_upstream(up->w->rt, up->ready_slot, false);
	if (what & GW_IO_ERROR) {
		unsigned long e = gw_io_ssl_error(io);
		SSL *ssl = gw_io_ssl(io);
		char buf[256];
		if (e != 0)
			ERR_error_string_n(e, buf, sizeof(buf));
		/* the reason an operator can act on: expired, unknown CA, name */
		if (ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK)
			snprintf(buf, sizeof(buf), "certificate verification failed: %s",
			    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
		gw_log(GW_LOG_ERR, "upstream %s: %s", c->site->upstream.url,
		    e != 0 || (ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK) ?
		    buf : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	} else
		gw_log(GW_LOG_ERR, "upstream %s: closed the connection mid-response",
		    c->site->upstream.url);
	gw_conn_upstream_failed(c, 502);
}

static void
up_read_cb(struct gw_io *io, void *arg)
{
	struct gw_upconn *up = arg;

	if (up->freeing)
		return;
	if (up->state == US_IDLE || up->c == NULL) {
		/* an idle upstream must say nothing; whatever it said, the
		 * connection can no longer be trusted to be in sync */
		up_defer_free(up);
		return;
	}
	if (up->c->state == CS_TUNNEL) {
		gw_tunnel_up_read(up);
		return;
	}
	up_parse(up);
}

static void
up_write_cb(struct gw_io *io, void *arg)
{
	struct gw_upconn *up = arg;

	if (up->c == NULL || up->freeing)
		return;
	if (up->c->state == CS_TUNNEL)
		gw_tunnel_up_drained(up);
	else
		gw_conn_resume_read(up->c);
}

static void
up_parse(struct gw_upconn *up)
{
	struct evbuffer *in = gw_io_input(up->io);

	for (int guard = 0; guard < 4096; guard++) {
		struct gw_conn *c = up->c;
		struct evbuffer_iovec v;
		llhttp_errno_t e;
		size_t used;

		if (c == NULL || up->freeing || c->freeing)
			return;
		if (evbuffer_get_length(gw_io_output(c->io)) > GW_HIGH_WATER) {
			gw_up_pause_read(up, true);
			return;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
			if (up->eof_seen && !up_finish_at_eof(up)) {
				gw_log(GW_LOG_ERR, "upstream %s: closed the "
				    "connection mid-response", c->site->upstream.url);
				gw_conn_upstream_failed(c, 502);
			}
			return;
		}
		up->got_bytes = true;
		up_arm(up, c->site->to.upstream);
		e = gw_respparse_feed(&up->rs, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (e == HPE_OK)
			continue;
		if (e == HPE_PAUSED) {
			bool keep = llhttp_should_keep_alive(&up->rs.parser);
			llhttp_resume(&up->rs.parser);
			if (up->switching) {
				gw_tunnel_start(c);
				return;
			}
			if (up->rs.msg_done) {
				gw_conn_response_done(c, keep);
				return;
			}
			continue;
		}
		if (up->rs.reject != NULL)
			gw_log(GW_LOG_ERR, "upstream %s: refused response: %s",
			    c->site->upstream.url, up->rs.reject);
		else
			gw_log(GW_LOG_ERR, "upstream %s: invalid response: %s",
			    c->site->upstream.url, llhttp_errno_name(e));
		gw_conn_upstream_failed(c, 502);
		return;
	}
}

/* ---- the response parser's hooks ---- */

/* A 101 becomes a tunnel only when it completes the WebSocket handshake
 * that the request was judged as: anything else would carry requests
 * past the gateway's checks, raw. */
static int
up_switch(struct gw_upconn *up, struct gw_conn *c)
{
	const llhttp_t *p = &up->rs.parser;

	if (!c->rq->upgrade)
		up->rs.reject = "101 to a request that asked for no WebSocket";
	else if (p->http_major != 1 || p->http_minor != 1)
		up->rs.reject = "101 in a version other than HTTP/1.1";
	else
		up->rs.reject = gw_ws_handshake_check(&c->rq->rp.req,
		    &up->rs.resp);
	if (up->rs.reject != NULL)
		return -1;
	if (gw_relay_response_head(c, up) < 0)
		return -1;
	up->switching = true;
	return HPE_PAUSED;
}

/* A final head (or a 101); return values as gw_respparse_hooks says.
 * Responses to HEAD and 204/304 end with their head (RFC 9112 6.3), so
 * body bytes such a head announces are never forwarded; they would be
 * parsed as the answer to the next request on this connection, hence
 * `no_reuse`. */
static int
up_head(void *owner)
{
	struct gw_upconn *up = owner;
	struct gw_conn *c = up->c;
	int st = up->rs.parser.status_code;

	if (c == NULL)
		return -1;
	if (st == 101)
		return up_switch(up, c);
	if (gw_relay_response_head(c, up) < 0)
		return -1;
	if (!gw_relay_response_bodiless(c, st))
		return 0;
	if (gw_respparse_announces_body(&up->rs))
		up->no_reuse = true;
	return 1;
}

static void
up_body(void *owner, const char *p, size_t n)
{
	struct gw_upconn *up = owner;

	if (up->c != NULL)
		gw_conn_response_body(up->c, p, n);
}

static const struct gw_respparse_hooks up_hooks = {
	.head = up_head,
	.body = up_body,
};
