/* admin.c -- the admin listener: /healthz and Prometheus /metrics, plain
 * HTTP on a loopback or management address, one request per connection. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/crypto.h>

#include "gateway/gw_priv.h"

#define ADMIN_TIMEOUT_S 5

/* The admin listener reads heads with the relay's own request parser
 * (http_head.c), under bounds of its own: scrapers send short heads. */
static const struct gw_limits admin_limits = {
	.request_line = 256,
	.header_size = 4096,
	.header_total = 8192,
	.headers = 64,
};

struct admin_conn {
	struct gw_worker   *w;
	struct bufferevent *bev;
	struct gw_reqparse  rp;
	bool                done;
	struct gw_ready_probe *probe;	/* /readyz waiting for the upstream */
};

static bool
url_is(const struct admin_conn *a, const char *path)
{
	size_t n = strlen(path);

	return a->rp.req.url_len == n &&
	    memcmp(a->rp.req.buf + a->rp.req.url, path, n) == 0;
}

static void
metric(struct evbuffer *out, const char *name, const char *type,
    const char *help, const char *labels, unsigned long long v)
{
	if (type != NULL)
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
		    name, help, name, type);
	evbuffer_add_printf(out, "%s%s %llu\n", name, labels ? labels : "", v);
}

static void
cert_line(void *arg, const char *name, const char *key, long long not_after)
{
	char esc[600];

	/* a certificate's DNS name: hostname characters, but escape anyway */
	gw_prom_escape(esc, sizeof esc, name);
	evbuffer_add_printf(arg, "pbxgate_certificate_not_after_timestamp_seconds"
	    "{name=\"%s\",key=\"%s\"} %lld\n", esc, key, not_after);
}

/* Series that describe the process and its configuration. */
static void
render_info(struct gw_runtime *rt, const struct gw_config *cfg,
    struct evbuffer *b)
{
	evbuffer_add_printf(b, "# HELP pbxgate_build_info The pbxgate build and "
	    "the libraries it runs with.\n# TYPE pbxgate_build_info gauge\n"
	    "pbxgate_build_info{version=\"%s\",openssl=\"%s\",libevent=\"%s\"} 1\n",
	    PBXGATE_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING),
	    event_get_version());
	metric(b, "pbxgate_config_last_reload_success_timestamp_seconds", "gauge",
	    "Unix time the configuration in force was loaded.", NULL,
	    (unsigned long long)atomic_load(&rt->m.reload_ok_at));
	evbuffer_add_printf(b, "# HELP pbxgate_certificate_not_after_timestamp_seconds "
	    "Unix time each served certificate expires.\n# TYPE "
	    "pbxgate_certificate_not_after_timestamp_seconds gauge\n");
	cert_server_each(cfg->tls, cert_line, b);
	for (size_t i = 0; i < cfg->nsites; i++)
		cert_server_each(cfg->sites[i].cfg->tls, cert_line, b);
}

/* With sites: each site's requests by status class (slots named once). */
static void
render_sites(const struct gw_metrics *m, struct evbuffer *b)
{
	static const char *const cls[] = { "other", "1xx", "2xx", "3xx", "4xx",
	    "5xx" };
	size_t n = atomic_load(&m->nsite);
	char lbl[128];

	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 6; k++) {
			snprintf(lbl, sizeof(lbl), "{site=\"%s\",class=\"%s\"}",
			    m->site[i].name, cls[k]);
			metric(b, "pbxgate_site_requests_total", i == 0 && k == 0 ?
			    "counter" : NULL, "Requests answered, by site and "
			    "status class.", lbl,
			    atomic_load(&m->site[i].requests[k]));
		}
}

static void
render_metrics(struct gw_runtime *rt, struct evbuffer *b)
{
	struct gw_metrics *m = &rt->m;
	struct gw_config *cfg = gw_runtime_config(rt);
	static const char *const cls[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	char lbl[48];

	for (int i = 0; i < 6; i++) {
		snprintf(lbl, sizeof(lbl), "{class=\"%s\"}", cls[i]);
		metric(b, "pbxgate_requests_total", i == 0 ? "counter" : NULL,
		    "Requests answered, by status class.", lbl,
		    atomic_load(&m->requests[i]));
	}
	render_sites(m, b);
	metric(b, "pbxgate_connections_total", "counter",
	    "Client connections accepted.", NULL, atomic_load(&m->conns_total));
	metric(b, "pbxgate_connections_active", "gauge",
	    "Client connections open now.", NULL,
	    (unsigned long long)atomic_load(&m->conns_active));
	metric(b, "pbxgate_websockets_active", "gauge",
	    "WebSocket tunnels open now.", NULL,
	    (unsigned long long)atomic_load(&m->ws_active));
	metric(b, "pbxgate_bytes_received_total", "counter",
	    "Bytes received from clients.", NULL, atomic_load(&m->bytes_in));
	metric(b, "pbxgate_bytes_sent_total", "counter",
	    "Bytes sent to clients.", NULL, atomic_load(&m->bytes_out));
	metric(b, "pbxgate_bad_requests_total", "counter",
	    "Requests refused by the gateway with a 4xx.", NULL,
	    atomic_load(&m->bad_requests));
	metric(b, "pbxgate_upstream_errors_total", "counter",
	    "Requests answered 502.", NULL, atomic_load(&m->upstream_errors));
	metric(b, "pbxgate_upstream_timeouts_total", "counter",
	    "Requests answered 504.", NULL, atomic_load(&m->upstream_timeouts));
	metric(b, "pbxgate_tls_handshake_errors_total", "counter",
	    "Failed TLS handshakes.", NULL, atomic_load(&m->tls_handshake_errors));
	metric(b, "pbxgate_config_reloads_total", "counter",
	    "Configuration reloads, by result.", "{result=\"ok\"}",
	    atomic_load(&m->reload_ok));
	metric(b, "pbxgate_config_reloads_total", NULL, NULL,
	    "{result=\"error\"}", atomic_load(&m->reload_error));
	metric(b, "pbxgate_config_generation", "gauge",
	    "Generation of the configuration in force.", NULL, cfg->generation);
	render_info(rt, cfg, b);
	/* the snapshot's top-level context (NULL with sites, whose stores
	 * follow): this reference keeps it open while we read it */
	gw_metrics_render(&rt->m, cfg->authctx, b);
	if (cfg->nsites > 0) {
		gw_metrics_site_stores(b, cfg);
		gw_metrics_site_listeners(b, cfg);
	}
	gw_config_unref(cfg);
}

static void
admin_reply(struct admin_conn *a, int status, const char *ctype,
    struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(a->bev);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	    "Connection: close\r\n\r\n", status, gw_status_text(status), ctype,
	    body ? evbuffer_get_length(body) : 0);
	if (body)
		evbuffer_add_buffer(out, body);
}

static void
admin_free(struct admin_conn *a)
{
	gw_ready_cancel(a->probe);
	bufferevent_free(a->bev);
	gw_reqparse_free(&a->rp);
	free(a);
}

static void
admin_write_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *a = arg;

	/* a /readyz probe still running will write the answer later */
	if (a->done && a->probe == NULL &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		admin_free(a);
}

static void
admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	admin_free(arg);
}

static void
ready_answer(void *arg, int status, const char *text)
{
	struct admin_conn *a = arg;
	struct evbuffer *body = evbuffer_new();

	a->probe = NULL;
	if (body == NULL) {
		admin_free(a);
		return;
	}
	evbuffer_add(body, text, strlen(text));
	admin_reply(a, status, "text/plain", body);
	evbuffer_free(body);
}

static void
admin_answer(struct admin_conn *a)
{
	struct evbuffer *body = evbuffer_new();
	int method = llhttp_get_method(&a->rp.parser);

	bufferevent_disable(a->bev, EV_READ);
	if (body == NULL) {
		admin_free(a);
		return;
	}
	if (method != HTTP_GET && method != HTTP_HEAD) {
		evbuffer_add_printf(body, "method not allowed\n");
		admin_reply(a, 405, "text/plain", body);
	} else if (url_is(a, "/healthz")) {
		evbuffer_add_printf(body, "%s\n",
		    atomic_load(&a->w->rt->stopping) ? "stopping" : "ok");
		admin_reply(a, atomic_load(&a->w->rt->stopping) ? 503 : 200,
		    "text/plain", body);
	} else if (url_is(a, "/readyz")) {
		a->probe = gw_ready_check(a->w, ready_answer, a);
	} else if (url_is(a, "/metrics")) {
		render_metrics(a->w->rt, body);
		admin_reply(a, 200, "text/plain; version=0.0.4", body);
	} else {
		evbuffer_add_printf(body, "not found\n");
		admin_reply(a, 404, "text/plain", body);
	}
	evbuffer_free(body);
}

static void
admin_read_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *a = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in), used;
	enum gw_rp_event e;

	if (a->done)
		return;
	e = gw_reqparse_feed(&a->rp, (const char *)evbuffer_pullup(in, -1), n,
	    &used);
	evbuffer_drain(in, n);
	if (e == GW_RP_MORE)
		return;
	a->done = true;
	if (e == GW_RP_ERROR) {
		bufferevent_disable(bev, EV_READ);
		admin_reply(a, a->rp.err_status ? a->rp.err_status : 400,
		    "text/plain", NULL);
		return;
	}
	admin_answer(a);	/* one request per connection: a body is unread */
}

void
gw_admin_accept(struct gw_worker *w, evutil_socket_t fd)
{
	struct admin_conn *a = calloc(1, sizeof(*a));
	struct timeval tv = { ADMIN_TIMEOUT_S, 0 };

	if (a == NULL) {
		close(fd);
		return;
	}
	a->w = w;
	a->bev = bufferevent_socket_new(w->base, fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (a->bev == NULL) {
		close(fd);
		free(a);
		return;
	}
	gw_reqparse_init(&a->rp, &admin_limits, NULL, NULL);
	bufferevent_setcb(a->bev, admin_read_cb, admin_write_cb, admin_event_cb, a);
	bufferevent_set_timeouts(a->bev, &tv, &tv);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
}
