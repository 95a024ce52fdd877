/* access.c -- one JSON access-log line per request, and its counters. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event/event.h"
#include "gateway/gw_priv.h"

static void
count_status(struct gw_metrics *m, int status)
{
	atomic_fetch_add(&m->requests[gw_status_class(status)], 1);
}

/* Lines that cannot be written are lost; say so (once a minute at most,
 * with the count), keep serving. */
static void
access_write_failed(struct gw_runtime *rt)
{
	int e = errno;
	long long now = (long long)time(NULL), last;
	unsigned long long lost = atomic_fetch_add(&rt->access_lost, 1) + 1;

	last = atomic_load(&rt->access_err_at);
	if (now - last < 60 || !atomic_compare_exchange_strong(&rt->access_err_at,
	    &last, now))
		return;
	gw_log(GW_LOG_ERR, "access_log: cannot write (%s): %llu line(s) lost so "
	    "far; free space or fix the log file, requests are still served",
	    e ? strerror(e) : "short write", lost);
}

/* For the duration histogram: a WebSocket upgrade whatever its answer;
 * proxied once the head went upstream (gw_up_send_head stamps t_up), so a
 * 502 or 504 counts there; else the gateway answered alone (its pages,
 * refusals). */
static enum gw_route
route_of(const struct gw_conn *c)
{
	if (c->rq->upgrade)
		return GW_ROUTE_WEBSOCKET;
	if (c->rq->t_up.tv_sec != 0 || c->rq->t_up.tv_nsec != 0)
		return GW_ROUTE_PROXIED;
	return GW_ROUTE_GATEWAY;
}

void
gw_access_log(struct gw_conn *c)
{
	struct gw_runtime *rt = c->w->rt;
	char line[4096], path[1024], user[300], when[40];
	struct timespec ts;
	struct tm tm;
	const char *method;
	int n;

	if (c->rq == NULL)
		return;		/* no request began: nothing to account */
	method = c->rq->rp.req.url_len ?
	    llhttp_method_name(llhttp_get_method(&c->rq->rp.parser)) : "-";
	count_status(&rt->m, c->rq->status);
	gw_metrics_request(&rt->m, route_of(c), c->rq->status,
	    gw_ms_since(&c->rq->t_start) / 1e3, c->rq->upstream_ms < 0 ? -1 :
	    c->rq->upstream_ms / 1e3);
	atomic_fetch_add(&rt->m.bytes_in, c->rq->bytes_in);
	atomic_fetch_add(&rt->m.bytes_out, c->rq->bytes_out);
	if (rt->access_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - (size_t)n, ".%03ldZ", ts.tv_nsec / 1000000);
	/* the path as received, escaped; the query string is left out
	 * because it may carry tokens (WebSocket ?pass=, enrolment links) */
	size_t plen = c->rq->rp.req.url_len;
	const char *u = c->rq->rp.req.buf ? c->rq->rp.req.buf + c->rq->rp.req.url : "";
	const char *q = memchr(u, '?', plen);
	if (q != NULL)
		plen = (size_t)(q - u);
	ev_json_escape(path, sizeof(path), u, plen);
	ev_json_escape(user, sizeof(user), c->rq->id.user,
	    c->rq->id.present ? strnlen(c->rq->id.user, sizeof(c->rq->id.user)) : 0);
	n = snprintf(line, sizeof(line),
	    "{\"time\":\"%s\",\"peer\":\"%s\",\"client\":\"%s\",\"method\":\"%s\","
	    "\"path\":\"%s\",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,"
	    "\"duration_ms\":%.3f,\"upstream_ms\":%.3f,\"user\":\"%s\","
	    "\"http.request.id\":\"%s\"}\n",
	    when, c->peer_ip, c->rq->client_ip, method, path, c->rq->status,
	    (unsigned long long)c->rq->bytes_in,
	    (unsigned long long)c->rq->bytes_out,
	    gw_ms_since(&c->rq->t_start), c->rq->upstream_ms < 0 ? 0.0 : c->rq->upstream_ms,
	    user, gw_reqid(c));
	if (n > 0 && n < (int)sizeof(line) &&
	    write(rt->access_fd, line, (size_t)n) != (ssize_t)n)
		access_write_failed(rt);
}
