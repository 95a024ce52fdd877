/* relay_request.c -- judging a parsed request head (the checks llhttp leaves
 * to us) and writing the cleaned request to the upstream. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "gateway/gw_priv.h"

static void
request_begin(void *owner)
{
	struct gw_conn *c = owner;
	/* Each request is judged by the snapshot current when it began;
	 * a reload during it changes nothing for it. */
	if (c->cfg != c->w->cfg) {
		gw_config_unref(c->cfg);
		c->cfg = gw_worker_config(c->w);
	}
	gw_conn_site(c);
	c->rq->rp.lim = &c->site->lim;
	c->state = CS_HEAD;
	gw_conn_request_reset(c);
	c->nreq++;
	gw_now(&c->rq->t_start);
	event_del(&c->timer);
	gw_conn_arm(c, c->cfg->to.header);
	(void)gw_reqid_assign(c);	/* a failure is refused at the head */
}

/* Headers never passed upstream: hop-by-hop (RFC 9110 7.6.1), framing we
 * redo ourselves, forwarding headers we set from the real peer, our own
 * identity headers, which only the gateway may set, and the rewrite /
 * method-override / client-address class (relay_spoof.c) unless kept. */
static bool
drop_request_header(const struct gw_config *cfg, const struct gw_msg *m,
    const struct gw_hdr *h, const char *conn_v, size_t conn_n)
{
	static const struct gw_name drop[] = {
		GW_NAME("connection"), GW_NAME("keep-alive"),
		GW_NAME("proxy-connection"), GW_NAME("te"),
		GW_NAME("trailer"), GW_NAME("upgrade"),
		GW_NAME("transfer-encoding"), GW_NAME("content-length"),
		GW_NAME("proxy-authorization"),
		GW_NAME("proxy-authenticate"), GW_NAME("expect"),
		GW_NAME("x-forwarded-for"), GW_NAME("x-forwarded-proto"),
		GW_NAME("x-forwarded-host"), GW_NAME("x-forwarded-port"),
		GW_NAME("forwarded"), GW_NAME("x-real-ip"), GW_NAME("host"),
		GW_NAME("x-request-id"),
	};

	if (gw_hdr_in(m, h, drop, sizeof(drop) / sizeof(drop[0])))
		return true;
	if (h->name_len >= 10 && strncasecmp(m->buf + h->name, "x-pbxgate-", 10) == 0)
		return true;
	if (gw_spoof_drop(cfg, m->buf + h->name, h->name_len))
		return true;
	/* CGI-style back ends fold '_' and '-' into one name: an underscore
	 * twin (X_Forwarded_For, Transfer_Encoding) would spoof what we set
	 * or desync their framing. Dropped, as nginx does by default. */
	if (memchr(m->buf + h->name, '_', h->name_len) != NULL)
		return true;
	if (conn_v != NULL) {
		char name[64];
		if (h->name_len < sizeof(name)) {
			memcpy(name, m->buf + h->name, h->name_len);
			name[h->name_len] = '\0';
			if (gw_token_list_has(conn_v, conn_n, name))
				return true;
		}
	}
	return false;
}

/* The address the request comes from: the TCP peer, unless the peer is a
 * trusted proxy, in which case the right-most X-Forwarded-For entry that
 * is not itself trusted. -1 (answered 400) when a trusted proxy's list
 * cannot be read: several X-Forwarded-For fields, or a bad element. */
static int
resolve_client(struct gw_conn *c, const char **xff, size_t *xffn)
{
	const struct gw_config *cfg = c->cfg;
	unsigned cnt;

	*xff = NULL;
	*xffn = 0;
	if (cfg->ntrusted == 0 ||
	    !pol_cidr_list_contains(cfg->trusted, cfg->ntrusted,
	    (struct sockaddr *)&c->peer))
		return 0;
	if (gw_msg_get(&c->rq->rp.req, "x-forwarded-for", &cnt, xff,
	    xffn) == NULL)
		return 0;
	if (cnt != 1)
		return gw_relay_reject(c, 400, "several X-Forwarded-For fields "
		    "from a trusted proxy"), -1;
	if (gw_relay_xff_client(c, *xff, *xffn) < 0)
		return gw_relay_reject(c, 400, "unreadable X-Forwarded-For from a "
		    "trusted proxy"), -1;
	return 0;
}

static void
write_forwarding(struct gw_conn *c, struct gw_hw *w,
    const char *xff, size_t xffn, const char *host, size_t hlen)
{
	bool v6 = strchr(c->rq->client_ip, ':') != NULL;

	GW_HW_LIT(w, "X-Forwarded-For: ");
	if (xff != NULL && xffn > 0) {
		gw_hw_put(w, xff, xffn);
		GW_HW_LIT(w, ", ");
	}
	gw_hw_str(w, c->peer_ip);
	GW_HW_LIT(w, "\r\nX-Real-IP: ");
	gw_hw_str(w, c->rq->client_ip);
	GW_HW_LIT(w, "\r\nX-Forwarded-Proto: https\r\nForwarded: for=");
	if (v6)
		GW_HW_LIT(w, "\"[");
	gw_hw_str(w, c->rq->client_ip);
	if (v6)
		GW_HW_LIT(w, "]\"");
	GW_HW_LIT(w, ";proto=https");
	if (host != NULL) {
		GW_HW_LIT(w, ";host=\"");
		gw_hw_put(w, host, hlen);
		GW_HW_LIT(w, "\"\r\nX-Forwarded-Host: ");
		gw_hw_put(w, host, hlen);
	}
	GW_HW_LIT(w, "\r\nX-Request-Id: ");
	gw_hw_str(w, gw_reqid(c));
	GW_HW_LIT(w, "\r\n");
}

static void
write_upstream_head(struct gw_conn *c, struct evbuffer *out, const char *path,
    size_t plen, const char *host, size_t hlen, const char *xff, size_t xffn)
{
	const struct gw_msg *m = &c->rq->rp.req;
	const char *conn_v = NULL, *v;
	size_t conn_n = 0, n;
	struct gw_hw w;

	gw_msg_get(m, "connection", NULL, &conn_v, &conn_n);
	gw_hw_init(&w, out);
	gw_hw_str(&w, llhttp_method_name(llhttp_get_method(&c->rq->rp.parser)));
	GW_HW_LIT(&w, " ");
	gw_hw_put(&w, path, plen);
	GW_HW_LIT(&w, " HTTP/1.1\r\nHost: ");
	gw_hw_put(&w, host, hlen);
	GW_HW_LIT(&w, "\r\n");
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct gw_hdr *h = &m->hdrs[i];
		if (drop_request_header(c->site, m, h, conn_v, conn_n) ||
		    gw_bodyhash_drops(c, m, h))
			continue;
		n = gw_msg_value(m, h, &v);
		gw_hw_header(&w, m->buf + h->name, h->name_len, v, n);
	}
	write_forwarding(c, &w, xff, xffn, host, hlen);
	gw_bodyhash_request_headers(c, &w);
	gw_relay_identity_headers(c, &w);
	if (c->rq->upgrade) {
		v = NULL;
		n = 0;
		gw_msg_get(m, "upgrade", NULL, &v, &n);
		GW_HW_LIT(&w, "Connection: upgrade\r\n");
		gw_hw_header(&w, "Upgrade", 7, v, n);
	} else if (c->rq->rp.parser.flags & F_CHUNKED) {
		c->rq->req_chunked = true;
		GW_HW_LIT(&w, "Transfer-Encoding: chunked\r\n");
	} else if (c->rq->rp.parser.flags & F_CONTENT_LENGTH) {
		GW_HW_LIT(&w, "Content-Length: ");
		gw_hw_u64(&w, c->rq->rp.parser.content_length);
		GW_HW_LIT(&w, "\r\n");
	}
	GW_HW_LIT(&w, "\r\n");
	gw_hw_flush(&w);
}

int
gw_relay_head_accept(struct gw_conn *c)
{
	struct gw_head_info hi;
	const char *why, *path, *xff;
	char host[300];		/* a Host value is at most 255 bytes */
	size_t plen, xffn;
	int st;

	/* before any answer, so that a refusal carries the proxy's id too;
	 * no random id, no request: two requests must never share one */
	if (gw_reqid_adopt(c) < 0)
		return gw_relay_reject(c, 503, "no random bytes for a request "
		    "id"), -1;
	st = gw_head_judge(&c->rq->rp, &hi, &why);
	if (st != 0)
		return gw_relay_reject(c, st, why), -1;
	/* a complete, well-formed head: the connection leaves the tight
	 * per-address cap on unproven connections (peertab.c) */
	if (c->counted && !c->proven) {
		gw_peertab_proven(c->w->rt->peers, (struct sockaddr *)&c->peer);
		c->proven = true;
	}
	c->rq->is_head = hi.method == HTTP_HEAD;
	c->rq->upgrade = hi.upgrade;
	c->rq->expect_continue = hi.expect_continue;
	c->rq->client_close = hi.client_close;
	c->keepalive = hi.keepalive && c->nreq < c->cfg->lim.requests_per_conn &&
	    !atomic_load(&c->w->rt->stopping);
	if ((st = gw_relay_host(c, hi.host, hi.hlen, host, sizeof(host), &why)) != 0)
		return gw_relay_reject(c, st, why), -1;
	path = hi.path;
	plen = hi.plen;
	if (resolve_client(c, &xff, &xffn) < 0)
		return -1;
	if (gw_relay_gate(c, &path, &plen) < 0)
		return -1;
	if (gw_relay_gateway_path(c->rq->path)) {
		if (c->rq->upgrade)
			return gw_relay_reject(c, 400, "upgrade to a gateway page"), -1;
		gw_local_begin(c);
		return 0;
	}
	return gw_relay_forward_head(c, path, plen, host, strlen(host), xff, xffn);
}

int
gw_relay_forward_head(struct gw_conn *c, const char *path, size_t plen,
    const char *host, size_t hlen, const char *xff, size_t xffn)
{
	char err[GW_ERRLEN];
	struct gw_upconn *up;

	c->state = CS_FORWARD;
	event_del(&c->timer);
	if (gw_bodyhash_unpinned(c) < 0)
		return -1;
	if (gw_bodyhash_begin(c) < 0)
		return gw_relay_reject(c, 503, "out of memory for a body's "
		    "hash"), -1;
	up = gw_up_acquire(c, err, sizeof(err));
	if (up == NULL) {
		gw_log(GW_LOG_ERR, "upstream %s: %s", c->site->upstream.url, err);
		gw_conn_upstream_failed(c, 502);
		return -1;
	}
	c->up = up;
	if (c->rq->up_head == NULL)
		c->rq->up_head = evbuffer_new();
	else
		evbuffer_drain(c->rq->up_head, evbuffer_get_length(c->rq->up_head));
	write_upstream_head(c, c->rq->up_head, path, plen, host, hlen, xff, xffn);
	gw_up_send_head(up, c->rq->up_head);
	if (c->rq->upgrade)
		gw_up_request_sent(up);
	if (c->rq->expect_continue)
		evbuffer_add(gw_io_output(c->io), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	gw_conn_arm(c, c->cfg->to.body);
	return 0;
}

static void
request_body(void *owner, const char *p, size_t n)
{
	struct gw_conn *c = owner;
	struct evbuffer *out;

	if (c->rq->local) {
		gw_local_body(c, p, n);
		return;
	}
	if (c->up == NULL || n == 0)
		return;
	out = gw_io_output(c->up->io);
	if (c->rq->req_chunked) {
		evbuffer_add_printf(out, "%zx\r\n", n);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
	} else
		evbuffer_add(out, p, n);
	gw_conn_arm(c, c->cfg->to.body);
}

static void
request_done(void *owner)
{
	struct gw_conn *c = owner;

	if (c->rq->req_done)
		return;
	c->rq->req_done = true;
	event_del(&c->timer);
	if (c->rq->local) {
		gw_local_body_done(c);
		return;
	}
	if (c->up != NULL) {
		if (c->rq->req_chunked)
			evbuffer_add(gw_io_output(c->up->io), "0\r\n\r\n", 5);
		gw_up_request_sent(c->up);
	}
}

/* Whether the upstream has everything it will get before it answers. */
bool
gw_conn_request_sent(const struct gw_conn *c)
{
	return c->rq->req_done || c->rq->upgrade;
}

const struct gw_reqparse_hooks gw_relay_hooks = {
	.begin = request_begin,
	.body = request_body,
	.done = request_done,
};
