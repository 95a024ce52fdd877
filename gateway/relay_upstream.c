/* relay_upstream.c -- connections to the upstream: the per-worker keep-alive
 * pool, connecting (TCP or TLS), and parsing responses with llhttp. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gateway/gw_internal.h"

#define UP_HEAD_MAX     ((size_t)64 * 1024)	/* response head bytes */
#define UP_HEADERS_MAX  256
#define UP_LINE_MAX     ((size_t)16 * 1024)
#define UP_INTERIM_MAX  8	/* 1xx heads before the final answer */

static void up_read_cb(struct gw_io *, void *);
static void up_write_cb(struct gw_io *, void *);
static void up_event_cb(struct gw_io *, short, void *);
static void up_timer_cb(evutil_socket_t, short, void *);
static void up_parse(struct gw_upconn *);

static int rs_message_begin(llhttp_t *);
static int rs_header_field(llhttp_t *, const char *, size_t);
static int rs_header_field_complete(llhttp_t *);
static int rs_header_value(llhttp_t *, const char *, size_t);
static int rs_headers_complete(llhttp_t *);
static int rs_body(llhttp_t *, const char *, size_t);
static int rs_message_complete(llhttp_t *);

static llhttp_settings_t rs_settings;
static pthread_once_t rs_once = PTHREAD_ONCE_INIT;

static void
rs_settings_init(void)
{
	llhttp_settings_init(&rs_settings);
	rs_settings.on_message_begin = rs_message_begin;
	rs_settings.on_header_field = rs_header_field;
	rs_settings.on_header_field_complete = rs_header_field_complete;
	rs_settings.on_header_value = rs_header_value;
	rs_settings.on_headers_complete = rs_headers_complete;
	rs_settings.on_body = rs_body;
	rs_settings.on_message_complete = rs_message_complete;
}

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
	gw_msg_free(&up->resp);
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
	pthread_once(&rs_once, rs_settings_init);
	llhttp_init(&up->parser, HTTP_RESPONSE, &rs_settings);
	up->parser.data = up;
	gw_msg_reset(&up->resp);
	up->got_bytes = up->head_done = up->msg_done = up->switching = false;
	up->interim = 0;
	up->reject = NULL;
}

static struct gw_upconn *
up_connect(struct gw_conn *c, char *err, size_t errlen)
{
	struct gw_worker *w = c->w;
	struct gw_runtime *rt = w->rt;
	const struct gw_config *cfg = c->cfg;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct gw_upconn *up = calloc(1, sizeof(*up));

	if (up == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	up->w = w;
	up->c = c;
	gw_now(&up->t_open);
	up->generation = cfg->generation;
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
	pthread_mutex_lock(&rt->up_lock);
	ss = rt->up_addr;
	sslen = rt->up_addrlen;
	pthread_mutex_unlock(&rt->up_lock);
	up->state = US_CONNECTING;
	if (gw_io_connect(up->io, (struct sockaddr *)&ss, sslen) < 0) {
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
		if (up->generation != c->cfg->generation) {
			/* opened under another config: its upstream may differ */
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
		up_arm(up, up->c->cfg->to.upstream);
}

void
gw_up_release(struct gw_upconn *up, bool reusable)
{
	struct gw_worker *w = up->w;

	up->c = NULL;
	if (!reusable || w->draining || up->state != US_ACTIVE ||
	    !up->msg_done || up->freeing || up->no_reuse ||
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
	up_arm(up, up->c->cfg->to.upstream);
	up_parse(up);
}

void
gw_pool_flush(struct gw_worker *w)
{
	struct gw_upconn *up;

	while ((up = TAILQ_FIRST(&w->idle)) != NULL)
		up_defer_free(up);
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
	    up->c->cfg->upstream.url,
	    up->state == US_CONNECTING ? "connect" : "response");
	gw_conn_upstream_failed(up->c, 504);
}

static bool
retryable(const struct gw_upconn *up)
{
	const struct gw_conn *c = up->c;

	/* Only a request we can send again whole: no body streamed yet, and
	 * only when a pooled connection died under us before any answer. */
	return up->reused && !up->got_bytes && c->req_done && c->rq->rp.body_in == 0 &&
	    !c->upgrade && c->up_head != NULL;
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
		gw_log(GW_LOG_ERR, "upstream %s: %s", c->cfg->upstream.url, err);
		gw_conn_upstream_failed(c, 502);
		return;
	}
	c->up = n;
	gw_up_send_head(n, c->up_head);
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
		gw_ready_upstream(up->w->rt, true);
		if (c != NULL && gw_conn_request_sent(c))
			up_arm(up, c->cfg->to.upstream);
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
	if ((what & GW_IO_EOF) && up->head_done &&
	    llhttp_message_needs_eof(&up->parser)) {
		if (llhttp_finish(&up->parser) == HPE_OK && up->msg_done) {
			gw_conn_response_done(c, false);
			return;
		}
	}
	if (retryable(up)) {
		up_retry(up);
		return;
	}
	if (up->state == US_CONNECTING)
		gw_ready_upstream(up->w->rt, false);
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
		gw_log(GW_LOG_ERR, "upstream %s: %s", c->cfg->upstream.url,
		    e != 0 || (ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK) ?
		    buf : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	} else
		gw_log(GW_LOG_ERR, "upstream %s: closed the connection mid-response",
		    c->cfg->upstream.url);
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
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		up->got_bytes = true;
		up_arm(up, c->cfg->to.upstream);
		e = llhttp_execute(&up->parser, v.iov_base, v.iov_len);
		used = e == HPE_OK ? v.iov_len :
		    (size_t)(llhttp_get_error_pos(&up->parser) - (char *)v.iov_base);
		evbuffer_drain(in, used);
		if (e == HPE_OK)
			continue;
		if (e == HPE_PAUSED) {
			bool keep = llhttp_should_keep_alive(&up->parser);
			llhttp_resume(&up->parser);
			if (up->switching) {
				gw_tunnel_start(c);
				return;
			}
			if (up->msg_done) {
				gw_conn_response_done(c, keep);
				return;
			}
			continue;
		}
		if (up->reject != NULL)
			gw_log(GW_LOG_ERR, "upstream %s: refused response: %s",
			    c->cfg->upstream.url, up->reject);
		else
			gw_log(GW_LOG_ERR, "upstream %s: invalid response: %s",
			    c->cfg->upstream.url, llhttp_errno_name(e));
		gw_conn_upstream_failed(c, 502);
		return;
	}
}

/* ---- response parser callbacks ---- */

static int
rs_message_begin(llhttp_t *p)
{
	struct gw_upconn *up = p->data;

	gw_msg_reset(&up->resp);
	up->head_done = up->msg_done = false;
	return 0;
}

static int
rs_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct gw_upconn *up = p->data;
	struct gw_msg *m = &up->resp;

	if (up->head_done)
		return 0;	/* trailers: dropped */
	if (m->nhdrs == 0 || m->in_value) {
		if (m->nhdrs >= UP_HEADERS_MAX)
			return -1;
		if (m->nhdrs == m->hdrs_cap) {
			unsigned cap = m->hdrs_cap ? m->hdrs_cap * 2 : 16;
			struct gw_hdr *nh = reallocarray(m->hdrs, cap, sizeof(*nh));
			if (nh == NULL)
				return -1;
			m->hdrs = nh;
			m->hdrs_cap = cap;
		}
		memset(&m->hdrs[m->nhdrs], 0, sizeof(m->hdrs[0]));
		m->hdrs[m->nhdrs++].name = (uint32_t)m->len;
		m->in_value = false;
		m->line_len = 0;
	}
	m->line_len += n;
	if (m->line_len > UP_LINE_MAX || gw_msg_append(m, at, n, UP_HEAD_MAX) < 0)
		return -1;
	m->hdrs[m->nhdrs - 1].name_len += n;
	return 0;
}

static int
rs_header_field_complete(llhttp_t *p)
{
	struct gw_upconn *up = p->data;
	struct gw_msg *m = &up->resp;
	const struct gw_hdr *h;

	if (up->head_done)
		return 0;
	h = &m->hdrs[m->nhdrs - 1];
	if (!gw_relay_valid_name(m->buf + h->name, h->name_len))
		return -1;
	m->in_value = true;
	m->hdrs[m->nhdrs - 1].value = (uint32_t)m->len;
	return 0;
}

static int
rs_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct gw_upconn *up = p->data;
	struct gw_msg *m = &up->resp;

	if (up->head_done)
		return 0;
	m->line_len += n;
	if (m->line_len > UP_LINE_MAX || gw_msg_append(m, at, n, UP_HEAD_MAX) < 0)
		return -1;
	m->hdrs[m->nhdrs - 1].value_len += n;
	return 0;
}

/* Whether a head says body bytes follow (a length above zero, or any
 * Transfer-Encoding), which a bodiless status cannot have. */
static bool
announces_body(const llhttp_t *p)
{
	return ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) ||
	    (p->flags & (F_CHUNKED | F_TRANSFER_ENCODING));
}

/* A 101 becomes a tunnel only when it completes the WebSocket handshake
 * that the request was judged as: anything else would carry requests
 * past the gateway's checks, raw. */
static int
rs_switch(struct gw_upconn *up, struct gw_conn *c)
{
	const llhttp_t *p = &up->parser;

	if (!c->upgrade)
		up->reject = "101 to a request that asked for no WebSocket";
	else if (p->http_major != 1 || p->http_minor != 1)
		up->reject = "101 in a version other than HTTP/1.1";
	else
		up->reject = gw_ws_handshake_check(&c->rq->rp.req, &up->resp);
	if (up->reject != NULL)
		return -1;
	up->head_done = true;
	if (gw_relay_response_head(c, up) < 0)
		return -1;
	up->switching = true;
	return HPE_PAUSED;
}

/* Return values as llhttp reads them: 0 = parse the body its framing
 * announces, 1 = the message has no body, HPE_PAUSED = tunnel, -1 = 502.
 * llhttp 8 reads a body after 1xx, 204 and 304 if the head announces one:
 * 1 tells it the message ends here (RFC 9112 6.3), so such bytes are
 * never forwarded; they would be parsed as the answer to the next request
 * on this connection, hence `no_reuse`. */
static int
rs_headers_complete(llhttp_t *p)
{
	struct gw_upconn *up = p->data;
	struct gw_conn *c = up->c;
	int st = p->status_code;

	if (c == NULL)
		return -1;
	if (st == 101)
		return rs_switch(up, c);
	if (st < 200) {
		/* Interim answers (100, 102, 103, ...) are dropped: the gateway
		 * says 100 Continue itself. One with body bytes leaves which
		 * head is the final answer in doubt. */
		if (announces_body(p))
			up->reject = "1xx response announcing a body";
		else if (++up->interim > UP_INTERIM_MAX)
			up->reject = "too many 1xx responses";
		return up->reject != NULL ? -1 : 1;
	}
	up->head_done = true;
	if (gw_relay_response_head(c, up) < 0)
		return -1;
	if (!gw_relay_response_bodiless(c, st))
		return 0;
	if (announces_body(p))
		up->no_reuse = true;
	return 1;
}

static int
rs_body(llhttp_t *p, const char *at, size_t n)
{
	struct gw_upconn *up = p->data;

	if (up->c != NULL)
		gw_conn_response_body(up->c, at, n);
	return 0;
}

static int
rs_message_complete(llhttp_t *p)
{
	struct gw_upconn *up = p->data;
	int st = p->status_code;

	if (st >= 100 && st < 200)
		return 0;	/* the real answer follows */
	up->msg_done = true;
	return HPE_PAUSED;
}
