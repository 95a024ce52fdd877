/* relay_reply.c -- answers the gateway makes itself (errors), the end of a
 * response, and closing a connection without losing what was said. */
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include "gateway/gw_priv.h"

/* Security headers on every answer that the gateway writes itself. */
static void
add_own_security_headers(struct gw_conn *c, struct evbuffer *out)
{
	if (c->site->hsts)
		evbuffer_add_printf(out,
		    "Strict-Transport-Security: max-age=%u; includeSubDomains\r\n",
		    c->site->hsts_max_age);
	evbuffer_add_printf(out, "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: same-origin\r\n"
	    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
	    "Cache-Control: no-store\r\n");
}

/* Counts and logs a refusal and lets go of the upstream; false when no
 * answer can be written any more (the connection goes or went). */
static bool
reject_begin(struct gw_conn *c, int status, const char *why)
{
	if (c->freeing || c->state == CS_LINGER)
		return false;
	if (status >= 400 && status < 500)
		atomic_fetch_add(&c->w->rt->m.bad_requests, 1);
	/* `why` is always one of our own constant strings: no client bytes
	 * reach the log from here. */
	gw_log(GW_LOG_INFO, "client %s: %d %s", c->peer_ip, status, why);
	if (c->rq->resp_started) {
		gw_relay_abort(c);
		return false;
	}
	if (c->up != NULL) {
		struct gw_upconn *up = c->up;
		c->up = NULL;
		up->c = NULL;
		gw_up_release(up, false);
	}
	return true;
}

/* The answer is written (bytes_out and status counted by its writer):
 * close once the client has it. */
static void
reject_end(struct gw_conn *c)
{
	if (c->rq->t_start.tv_sec == 0)
		gw_now(&c->rq->t_start);
	gw_access_log(c);
	gw_relay_close_after_flush(c);
}

void
gw_relay_reject_page(struct gw_conn *c, const struct auth_http_resp *rp,
    const char *why)
{
	if (!reject_begin(c, rp->status, why))
		return;
	c->keepalive = false;
	gw_local_write(c, rp);
	reject_end(c);
}

void
gw_relay_reject(struct gw_conn *c, int status, const char *why)
{
	struct evbuffer *out;
	char body[512], date[64];
	size_t before;
	int blen;

	if (!reject_begin(c, status, why))
		return;
	/* the id is [A-Za-z0-9._-] only (relay_reqid.c): safe in HTML as is;
	 * both languages, since this page does not read Accept-Language */
	blen = snprintf(body, sizeof(body), "<!doctype html>\n<meta charset=\"utf-8\">"
	    "\n<title>%d %s</title>\n<h1>%d %s</h1>\n<p>Reference: %s<br>"
	    "参照番号: %s</p>\n", status, gw_status_text(status),
	    status, gw_status_text(status), gw_reqid(c), gw_reqid(c));
	gw_http_date(date, sizeof(date));
	out = gw_io_output(c->io);
	before = evbuffer_get_length(out);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n"
	    "Content-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
	    "Connection: close\r\nX-Request-Id: %s\r\n", status,
	    gw_status_text(status), date, blen, gw_reqid(c));
	if (status == 405)
		evbuffer_add_printf(out,
		    "Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\n");
	add_own_security_headers(c, out);
	evbuffer_add(out, "\r\n", 2);
	if (!c->rq->is_head)
		evbuffer_add(out, body, (size_t)blen);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = status;
	c->rq->resp_started = true;
	reject_end(c);
}

/* Nothing more can come from the client: it said this request was its
 * last, the request was read to its end, and no byte after it has
 * arrived. Not after an answer that refused the request before its end
 * (the rest of its body is still coming), nor when we, not the client,
 * ended the connection (requests_per_conn, draining, an HTTP/1.0-style
 * answer): its next request may be on the way. */
static bool
client_done(struct gw_conn *c)
{
	return c->rq != NULL && c->rq->client_close && c->rq->req_done &&
	    !c->rq->upgrade && !c->late_input && gw_io_input_quiet(c->io);
}

/* Let the client read everything we wrote before the connection goes. */
void
gw_relay_close_after_flush(struct gw_conn *c)
{
	c->state = CS_LINGER;
	c->keepalive = false;
	event_del(&c->timer);
	/* Bound the flush: a client that never reads must not hold us. */
	gw_conn_arm(c, c->cfg->to.idle);
	gw_io_read(c->io, true);
	/* closing at once: the last record and close_notify in one write */
	if (client_done(c))
		(void)gw_io_seal_last(c->io);
	if (evbuffer_get_length(gw_io_output(c->io)) == 0)
		gw_relay_linger(c);
}

/* Output flushed. When nothing more can come from the client, close_notify
 * and close at once (as nginx's lingering_close on does): no shutdown, no
 * wake-up for the client's close_notify and FIN. Otherwise send
 * close_notify and FIN, then read and discard what the client still sends
 * for a moment, so that closing with unread input does not turn into an
 * RST that destroys the answer in flight. */
void
gw_relay_linger(struct gw_conn *c)
{
	if (c->lingering || c->freeing)
		return;
	if (client_done(c)) {
		gw_io_close_notify(c->io);
		gw_conn_close(c);
		return;
	}
	c->lingering = true;
	gw_io_shutdown_write(c->io);
	event_del(&c->timer);
	gw_conn_arm(c, GW_LINGER_MS);
}

void
gw_relay_abort(struct gw_conn *c)
{
	if (c->freeing)
		return;
	if (c->rq->status == 0)
		c->rq->status = 499;
	gw_access_log(c);
	gw_conn_close(c);
}

void
gw_conn_upstream_failed(struct gw_conn *c, int status)
{
	struct gw_runtime *rt = c->w->rt;

	if (status == 504)
		atomic_fetch_add(&rt->m.upstream_timeouts, 1);
	else
		atomic_fetch_add(&rt->m.upstream_errors, 1);
	if (c->up != NULL) {
		struct gw_upconn *up = c->up;
		c->up = NULL;
		up->c = NULL;
		gw_up_release(up, false);
	}
	/* a pinned body held whole with its head has not reached the client:
	 * it gets the 502 a failure before the head would give */
	if (c->rq->resp_started && !gw_bodyhash_unsend(c)) {
		gw_relay_abort(c);
		return;
	}
	gw_relay_reject(c, status, status == 504 ? "upstream timed out" :
	    "upstream unavailable");
}

/* The upstream's response is complete. */
void
gw_conn_response_done(struct gw_conn *c, bool upstream_reusable)
{
	struct gw_upconn *up = c->up;

	if (up != NULL) {
		c->up = NULL;
		up->c = NULL;
		gw_up_release(up, upstream_reusable && c->rq->req_done);
	}
	/* a known-bad or refused pinned body ends without its tail and the
	 * chunked end, or is replaced by the integrity page */
	switch (c->rq->bh != NULL ? gw_bodyhash_finish(c) : GW_BH_PASS) {
	case GW_BH_PASS:
		break;
	case GW_BH_ABORT:
		gw_relay_abort(c);
		return;
	case GW_BH_ANSWERED:
		return;
	}
	if (c->rq->resp_chunked)
		evbuffer_add(gw_io_output(c->io), "0\r\n\r\n", 5);
	gw_access_log(c);
	if (atomic_load(&c->w->rt->stopping))
		c->keepalive = false;	/* draining: flush this answer, then close */
	if (!c->rq->req_done || !c->keepalive || c->rq->resp_until_close ||
	    c->rq->upgrade) {
		gw_relay_close_after_flush(c);
		return;
	}
	/* Parse the next (maybe pipelined) request from the event loop, not
	 * from inside the upstream's parser callback that called us. */
	c->state = CS_IDLE;
	c->resume = true;
	event_del(&c->timer);
	event_active(&c->timer, EV_TIMEOUT, 0);
}

void
gw_relay_next_request(struct gw_conn *c)
{
	if (c->freeing || c->state != CS_IDLE)
		return;
	event_del(&c->timer);
	c->read_paused = false;
	gw_io_read(c->io, true);
	if (evbuffer_get_length(gw_io_input(c->io)) == 0) {
		/* trim only a connection that stays idle: a busy keep-alive
		 * client would pay for freeing and reallocating every time */
		c->trimmed = false;
		gw_conn_arm(c, c->cfg->to.idle < GW_TRIM_MS ? c->cfg->to.idle :
		    GW_TRIM_MS);
		return;
	}
	gw_conn_arm(c, c->cfg->to.idle);
	gw_conn_parse(c);
}

/* An idle keep-alive connection (most of them) gives back what the next
 * request will allocate again: head buffers, target, TLS and stream
 * buffers. Then it waits out the rest of idle_timeout. */
void
gw_relay_trim_idle(struct gw_conn *c)
{
	if (c->trimmed)
		return;
	c->trimmed = true;
	gw_conn_request_free(c);
	SSL_free_buffers(gw_io_ssl(c->io));
	gw_io_trim(c->io);
	if (c->cfg->to.idle > GW_TRIM_MS)
		gw_conn_arm(c, c->cfg->to.idle - GW_TRIM_MS);
	else
		gw_conn_close(c);
}
