/* relay_client.c -- the client connection: its start after accept, the
 * TLS handshake and the phase timers, feeding its bytes to the request
 * parser (http_head.c) whose hooks are in relay_request.c, its request
 * state, and its deferred free. */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include "gateway/gw_priv.h"

static void conn_read_cb(struct gw_io *, void *);
static void conn_write_cb(struct gw_io *, void *);
static void conn_event_cb(struct gw_io *, short, void *);
static void conn_timer_cb(evutil_socket_t, short, void *);

void
gw_conn_arm(struct gw_conn *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
	evtimer_add(&c->timer, &tv);
}

/* With sites the handshake starts on the default site's (else the
 * first site's) contexts and the SNI callback moves to the site of the
 * client's name (cmd_run.c's route; none: unrecognized_name). */
static SSL *
new_ssl(const struct gw_config *cfg)
{
	if (cfg->nsites == 0)
		return cert_server_ssl(cfg->tls);
	return cert_server_ssl_routed(gw_config_first_site(cfg)->cfg->tls,
	    &cfg->route);
}

void
gw_conn_start(struct gw_worker *w, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen, bool counted)
{
	struct gw_runtime *rt = w->rt;
	struct gw_conn *c = calloc(1, sizeof(*c));
	SSL *ssl;

	if (c == NULL) {
		gw_conn_refused(w, fd, sa, counted);
		return;
	}
	c->w = w;
	c->counted = counted;
	c->cfg = gw_worker_config(w);
	c->site = c->cfg;	/* until its first request names one */
	memcpy(&c->peer, sa, salen < sizeof(c->peer) ? salen : sizeof(c->peer));
	c->peerlen = salen;
	pol_addr_peer_text(sa, c->peer_ip, sizeof(c->peer_ip));
	c->state = CS_HANDSHAKE;
	evtimer_assign(&c->timer, w->base, conn_timer_cb, c);
	ssl = new_ssl(c->cfg);
	if (ssl == NULL) {
		gw_config_unref(c->cfg);
		free(c);
		gw_conn_refused(w, fd, sa, counted);
		return;
	}
	c->io = gw_io_new(w->base, fd, ssl, true);
	if (c->io == NULL) {
		SSL_free(ssl);
		gw_config_unref(c->cfg);
		free(c);
		gw_conn_refused(w, fd, sa, counted);
		return;
	}
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	atomic_fetch_add(&rt->m.conns_total, 1);
	atomic_fetch_add(&rt->m.conns_active, 1);
	gw_io_setcb(c->io, conn_read_cb, conn_write_cb, conn_event_cb, c);
	gw_io_read(c->io, true);
	gw_conn_arm(c, c->cfg->to.tls_handshake);
}

/* The request state, made when a request's first bytes arrive; -1 only
 * when out of memory. */
int
gw_conn_request(struct gw_conn *c)
{
	if (c->rq != NULL)
		return 0;
	if ((c->rq = calloc(1, sizeof(*c->rq))) == NULL)
		return -1;
	gw_reqparse_init(&c->rq->rp, &c->cfg->lim, &gw_relay_hooks, c);
	gw_conn_request_reset(c);
	return 0;
}

/* Gives back what one request owns: its gateway page (detached: the job
 * frees itself), form body, target and session refresh. */
static void
request_release(struct gw_conn *c)
{
	struct gw_req *rq = c->rq;

	gw_local_detach(c);
	gw_bodyhash_free(rq->bh);
	free(rq->target);	/* and rq->path, which lives in it */
	free(rq->set_cookie);
}

/* Ready for the next request, the one place that clears request state:
 * what the last one owned is freed and everything from `id` on is
 * zeroed; the client address starts as the TCP peer. The parser is left
 * alone (this runs inside its message-begin callback), and so is up_head,
 * whose buffer the next request reuses. */
void
gw_conn_request_reset(struct gw_conn *c)
{
	struct gw_req *rq = c->rq;
	size_t keep = offsetof(struct gw_req, id);

	request_release(c);
	memset((char *)rq + keep, 0, sizeof(*rq) - keep);
	memcpy(&rq->client, &c->peer, sizeof(rq->client));
	memcpy(rq->client_ip, c->peer_ip, sizeof(rq->client_ip));
	rq->upstream_ms = -1;
}

void
gw_conn_request_free(struct gw_conn *c)
{
	if (c->rq == NULL)
		return;
	request_release(c);
	if (c->rq->up_head != NULL)
		evbuffer_free(c->rq->up_head);
	gw_reqparse_free(&c->rq->rp);
	free(c->rq);
	c->rq = NULL;
}

/* Frees everything now. Only called from conn_timer_cb (deferred) or when
 * no callback of this connection is on the stack. */
void
gw_conn_free(struct gw_conn *c)
{
	struct gw_worker *w = c->w;

	if (c->state == CS_TUNNEL)
		gw_access_log(c);	/* the tunnel's one line, at its end */
	if (c->up) {
		struct gw_upconn *up = c->up;
		c->up = NULL;
		up->c = NULL;
		gw_up_release(up, false);
	}
	TAILQ_REMOVE(&w->conns, c, entry);
	if (c->io)
		gw_io_free(c->io);
	event_del(&c->timer);
	gw_conn_request_free(c);
	if (c->counted)
		gw_peertab_leave(w->rt->peers, (struct sockaddr *)&c->peer,
		    c->proven);
	atomic_fetch_sub(&w->rt->conns_all, 1);
	atomic_fetch_sub(&w->rt->m.conns_active, 1);
	if (c->state == CS_TUNNEL)
		atomic_fetch_sub(&w->rt->m.ws_active, 1);
	gw_config_unref(c->cfg);
	free(c);
	gw_worker_conn_done(w, NULL);
}

/* Defers the free to the next loop pass so no caller up the stack touches
 * freed memory (Redis-style deferred deletion). */
void
gw_conn_close(struct gw_conn *c)
{
	if (c->freeing)
		return;
	c->freeing = true;
	if (c->io)
		gw_io_freeze(c->io);
	event_del(&c->timer);
	event_active(&c->timer, EV_TIMEOUT, 0);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_conn *c = arg;

	if (c->freeing) {
		gw_conn_free(c);
		return;
	}
	if (c->resume) {
		c->resume = false;
		gw_relay_next_request(c);
		return;
	}
	switch (c->state) {
	case CS_HANDSHAKE:
	case CS_IDLE:
		if (!c->trimmed && c->nreq > 0) {
			gw_relay_trim_idle(c);
			break;
		}
		if (c->state == CS_HANDSHAKE)	/* tls_handshake_timeout */
			gw_metrics_refused(&c->w->rt->m, GW_REFUSE_TLS_HANDSHAKE);
		gw_conn_close(c);
		break;
	case CS_LINGER:
		gw_conn_close(c);
		break;
	case CS_HEAD:
		gw_relay_reject(c, 408, "request head timeout");
		break;
	case CS_FORWARD:
		if (!c->rq->req_done) {
			/* body stalled */
			if (c->rq->resp_started)
				gw_conn_close(c);
			else
				gw_relay_reject(c, 408, "request head timeout");
		} else
			gw_conn_upstream_failed(c, 504);
		break;
	case CS_TUNNEL:
		gw_conn_close(c);
		break;
	}
}

static void
conn_event_cb(struct gw_io *io, short what, void *arg)
{
	struct gw_conn *c = arg;

	if (what & GW_IO_CONNECTED) {
		c->state = CS_IDLE;
		event_del(&c->timer);
		gw_conn_arm(c, c->cfg->to.idle);
		return;
	}
	if (c->state == CS_HANDSHAKE && (what & GW_IO_ERROR)) {
		atomic_fetch_add(&c->w->rt->m.tls_handshake_errors, 1);
		gw_metrics_refused(&c->w->rt->m, GW_REFUSE_TLS_HANDSHAKE);
	}
	/* EOF or error from the client: nothing more can be said to it. */
	gw_conn_close(c);
}

static void
conn_read_cb(struct gw_io *io, void *arg)
{
	struct gw_conn *c = arg;

	switch (c->state) {
	case CS_TUNNEL:
		gw_tunnel_client_read(c);
		break;
	case CS_LINGER:
		/* more input than the answered request: no quick close */
		c->late_input = true;
		evbuffer_drain(gw_io_input(io), (size_t)-1);
		break;
	default:
		gw_conn_parse(c);
		break;
	}
}

static void
conn_write_cb(struct gw_io *io, void *arg)
{
	struct gw_conn *c = arg;
	struct evbuffer *out = gw_io_output(io);

	if (c->state == CS_LINGER) {
		if (evbuffer_get_length(out) == 0)
			gw_relay_linger(c);
		return;
	}
	if (c->state == CS_TUNNEL) {
		gw_tunnel_client_drained(c);
		return;
	}
	if (c->up && c->up->read_paused &&
	    evbuffer_get_length(out) < GW_HIGH_WATER / 2)
		gw_up_pause_read(c->up, false);
}


/* The upstream drained its output: the client may send more body. */
void
gw_conn_resume_read(struct gw_conn *c)
{
	if (!c->read_paused || c->freeing)
		return;
	c->read_paused = false;
	gw_io_read(c->io, true);
	gw_conn_parse(c);
}

bool
gw_conn_upstream_writable(struct gw_conn *c)
{
	return c->up == NULL ||
	    evbuffer_get_length(gw_io_output(c->up->io)) < GW_HIGH_WATER;
}

void
gw_conn_parse(struct gw_conn *c)
{
	struct evbuffer *in = gw_io_input(c->io);

	for (int guard = 0; guard < 4096 && !c->freeing; guard++) {
		struct evbuffer_iovec v;
		enum gw_rp_event ev;
		size_t used;

		if (c->state == CS_FORWARD && (c->rq->req_done || c->rq->upgrade)) {
			/* pipelined bytes wait in `in` for this answer to end;
			 * past the high-water mark stop reading (the next
			 * request, the tunnel or the linger reads again), or a
			 * client could fill memory while a slow answer comes */
			if (evbuffer_get_length(in) >= GW_HIGH_WATER) {
				c->read_paused = true;
				gw_io_read(c->io, false);
			}
			return;
		}
		if (c->state == CS_LINGER || c->state == CS_TUNNEL)
			return;
		if (!gw_conn_upstream_writable(c)) {
			c->read_paused = true;
			gw_io_read(c->io, false);
			return;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		if (gw_conn_request(c) < 0) {
			gw_log(GW_LOG_WARN, "client %s: out of memory for a request: "
			    "closing", c->peer_ip);
			gw_conn_close(c);
			return;
		}
		ev = gw_reqparse_feed(&c->rq->rp, v.iov_base, v.iov_len, &used);
		c->rq->bytes_in += used;
		evbuffer_drain(in, used);
		if (c->freeing || c->state == CS_LINGER)
			return;
		switch (ev) {
		case GW_RP_MORE:
		case GW_RP_DONE:	/* hooks did the work */
			if (c->rq->rp.upgrade_end)
				c->keepalive = false;
			break;
		case GW_RP_HEAD:
			if (gw_relay_head_accept(c) < 0)
				return;
			if (!c->rq->upgrade)
				gw_reqparse_finish_bodyless(&c->rq->rp);
			break;
		case GW_RP_ERROR:
			gw_relay_reject(c, c->rq->rp.err_status ?
			    c->rq->rp.err_status : 400, c->rq->rp.err_reason ?
			    c->rq->rp.err_reason : "bad request");
			return;
		}
	}
}
