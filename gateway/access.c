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

/* The first value of a request header, escaped ("" when absent). */
static void
header_json(const struct gw_conn *c, const char *name, char *out, size_t outlen)
{
	const char *v = NULL;
	size_t n = 0;
	unsigned cnt = 0;

	if (gw_msg_get(&c->rq->rp.req, name, &cnt, &v, &n) == NULL)
		n = 0;
	(void)ev_json_escape(out, outlen, v != NULL ? v : "", n);
}

/* "1.3" for TLSv1.3 (ECS tls.version), "" before the handshake ended. */
static const char *
tls_version(const struct gw_conn *c)
{
	SSL *ssl = c->io != NULL ? gw_io_ssl(c->io) : NULL;
	const char *v = ssl != NULL ? SSL_get_version(ssl) : "";

	return strncmp(v, "TLSv", 4) == 0 ? v + 4 : "";
}

/* The path as received, escaped; the query string is left out because it
 * may carry tokens (WebSocket ?pass=, enrolment links). */
static void
path_json(const struct gw_conn *c, char *out, size_t outlen)
{
	size_t plen = c->rq->rp.req.url_len;
	const char *u = c->rq->rp.req.buf ? c->rq->rp.req.buf + c->rq->rp.req.url : "";
	const char *q = memchr(u, '?', plen);

	if (q != NULL)
		plen = (size_t)(q - u);
	(void)ev_json_escape(out, outlen, u, plen);
}

/* One line of the event schema (docs/logging.md), assembled by hand on the
 * hot path with the shared escaper; the keys are those of
 * tests/schema/events.schema.json's access event. */
static int
access_line(struct gw_conn *c, const char *method, char *line, size_t len)
{
	char path[1024], user[300], host[300], ua[600], when[EV_TIME_MAX];
	char site[96] = "";
	/* the configured upstream, reached or not; a request no site serves
	 * (421) names the site its handshake would start on */
	const struct gw_upstream *up = c->no_site ?
	    &gw_config_first_site(c->cfg)->cfg->upstream : &c->site->upstream;
	double up_ms = c->rq->upstream_ms < 0 ? 0.0 : c->rq->upstream_ms;

	ev_timestamp(when);
	path_json(c, path, sizeof(path));
	(void)ev_json_escape(user, sizeof(user), c->rq->id.user,
	    c->rq->id.present ? strnlen(c->rq->id.user, sizeof(c->rq->id.user)) : 0);
	header_json(c, "host", host, sizeof(host));
	header_json(c, "user-agent", ua, sizeof(ua));
	/* a site name needs no escaping: [A-Za-z0-9_-] (config_site.c) */
	if (c->cfg->nsites > 0 && !c->no_site)
		snprintf(site, sizeof(site), "\"pbxgate.site\":\"%s\",",
		    c->site->auth.site);
	return snprintf(line, len,
	    "{\"@timestamp\":\"%s\",\"event.dataset\":\"pbxgate.access\","
	    "\"event.module\":\"http\",\"event.action\":\"request\","
	    "\"event.outcome\":\"%s\",\"event.duration\":%lld,"
	    "\"source.ip\":\"%s\",\"client.ip\":\"%s\",\"user.name\":\"%s\","
	    "\"http.request.id\":\"%s\",\"http.request.method\":\"%s\","
	    "\"url.path\":\"%s\",\"url.domain\":\"%s\","
	    "\"user_agent.original\":\"%s\",\"tls.version\":\"%s\","
	    "\"http.response.status_code\":%d,\"http.request.bytes\":%llu,"
	    "\"http.response.bytes\":%llu,\"destination.address\":\"%s\","
	    "\"destination.port\":%u,%s\"pbxgate.upstream.duration\":%lld}\n",
	    when, c->rq->status < 400 ? "success" : "failure",
	    (long long)(gw_ms_since(&c->rq->t_start) * 1e6), c->peer_ip,
	    c->rq->client_ip, user, gw_reqid(c), method, path, host, ua,
	    tls_version(c), c->rq->status, (unsigned long long)c->rq->bytes_in,
	    (unsigned long long)c->rq->bytes_out, up->host, (unsigned)up->port,
	    site, (long long)(up_ms * 1e6));
}

void
gw_access_log(struct gw_conn *c)
{
	struct gw_runtime *rt = c->w->rt;
	char line[4096];
	const char *method;
	int n;

	if (c->rq == NULL)
		return;		/* no request began: nothing to account */
	method = c->rq->rp.req.url_len ?
	    llhttp_method_name(llhttp_get_method(&c->rq->rp.parser)) : "-";
	count_status(&rt->m, c->rq->status);
	if (c->cfg->nsites > 0 && !c->no_site && c->site->metrics_slot > 0)
		atomic_fetch_add(&rt->m.site[c->site->metrics_slot - 1].requests[
		    gw_status_class(c->rq->status)], 1);
	gw_metrics_request(&rt->m, route_of(c), c->rq->status,
	    gw_ms_since(&c->rq->t_start) / 1e3, c->rq->upstream_ms < 0 ? -1 :
	    c->rq->upstream_ms / 1e3);
	atomic_fetch_add(&rt->m.bytes_in, c->rq->bytes_in);
	atomic_fetch_add(&rt->m.bytes_out, c->rq->bytes_out);
	if (rt->access_fd < 0)
		return;
	n = access_line(c, method, line, sizeof(line));
	if (n > 0 && n < (int)sizeof(line) &&
	    write(rt->access_fd, line, (size_t)n) != (ssize_t)n)
		access_write_failed(rt);
}
