/* relay_request.c -- judging a parsed request head (the checks llhttp leaves
 * to us) and writing the cleaned request to the upstream. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "gateway/gw_internal.h"

void
gw_relay_request_begin(struct gw_conn *c)
{
	struct gw_config *cur = gw_runtime_config(c->w->rt);

	/* Each request is judged by the snapshot current when it began;
	 * a reload during it changes nothing for it. */
	gw_config_unref(c->cfg);
	c->cfg = cur;
	gw_msg_reset(&c->req);
	c->state = CS_HEAD;
	c->head_done = c->req_done = false;
	c->resp_started = c->resp_chunked = c->resp_until_close = false;
	c->upgrade = c->req_chunked = c->is_head = c->expect_continue = false;
	c->err_status = 0;
	c->err_reason = NULL;
	c->prev_byte = 0;
	c->past_first_line = false;
	c->body_in = c->trailer_len = 0;
	c->bytes_in = c->bytes_out = 0;
	c->status = 0;
	c->upstream_ms = -1;
	memcpy(&c->client, &c->peer, sizeof(c->client));
	memcpy(c->client_ip, c->peer_ip, sizeof(c->client_ip));
	memset(&c->id, 0, sizeof(c->id));
	free(c->set_cookie);
	c->set_cookie = NULL;
	c->local = false;
	c->nreq++;
	gw_now(&c->t_start);
	event_del(c->timer);
	gw_conn_arm(c, c->cfg->to.header);
}

int
gw_relay_new_header(struct gw_conn *c, struct gw_msg *m)
{
	unsigned max = c->cfg->lim.headers;

	if (max > GW_MAX_HEADERS_HARD)
		max = GW_MAX_HEADERS_HARD;
	if (m->nhdrs >= max)
		return gw_conn_fail(c, 431, "too many headers");
	if (m->nhdrs == m->hdrs_cap) {
		unsigned cap = m->hdrs_cap ? m->hdrs_cap * 2 : 16;
		struct gw_hdr *n;
		if (cap > max)
			cap = max;
		n = reallocarray(m->hdrs, cap, sizeof(*n));
		if (n == NULL)
			return gw_conn_fail(c, 431, "out of memory for headers");
		m->hdrs = n;
		m->hdrs_cap = cap;
	}
	memset(&m->hdrs[m->nhdrs], 0, sizeof(m->hdrs[0]));
	m->hdrs[m->nhdrs].name = (uint32_t)m->len;
	m->nhdrs++;
	m->in_value = false;
	m->line_len = 0;
	return 0;
}

/* RFC 9110 token characters. llhttp lets a space before the colon through
 * into the name; a name is only ever a token here. */
bool
gw_relay_valid_name(const char *s, size_t n)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z'))
			continue;
		if (ch == 0 || strchr(extra, ch) == NULL)
			return false;
	}
	return true;
}

/* Value without the trailing whitespace llhttp keeps. */
static size_t
hval(const struct gw_msg *m, const struct gw_hdr *h, const char **v)
{
	size_t n = h->value_len;

	*v = m->buf + h->value;
	while (n > 0 && ((*v)[n - 1] == ' ' || (*v)[n - 1] == '\t'))
		n--;
	return n;
}

static bool
hval_is(const struct gw_msg *m, const struct gw_hdr *h, const char *want)
{
	const char *v;
	size_t n = hval(m, h, &v), wl = strlen(want);

	return n == wl && strncasecmp(v, want, wl) == 0;
}

/* A Host value: reg-name or IP literal, optional port; nothing else. */
static bool
valid_host(const char *v, size_t n)
{
	size_t i = 0;

	if (n == 0 || n > 255)
		return false;
	if (v[0] == '[') {
		while (i < n && v[i] != ']') {
			if (!strchr("[0123456789abcdefABCDEF:.", v[i]))
				return false;
			i++;
		}
		if (i == n)
			return false;
		i++;
	} else {
		for (; i < n && v[i] != ':'; i++) {
			unsigned char ch = (unsigned char)v[i];
			if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			    (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-' ||
			    ch == '_'))
				return false;
		}
		if (i == 0)
			return false;
	}
	if (i == n)
		return true;
	if (v[i] != ':' || i + 1 == n || n - i - 1 > 5)
		return false;
	for (i++; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

static bool
method_allowed(int method)
{
	switch (method) {
	case HTTP_GET: case HTTP_HEAD: case HTTP_POST: case HTTP_PUT:
	case HTTP_DELETE: case HTTP_PATCH: case HTTP_OPTIONS:
		return true;
	default:
		return false;
	}
}

/* Origin-form target, or absolute-form whose authority equals Host
 * (RFC 9112 3.2.2), rewritten to origin-form. Sets path and plen. */
static int
judge_target(struct gw_conn *c, const char *host, size_t hlen,
    const char **path, size_t *plen)
{
	const char *u = c->req.buf + c->req.url;
	size_t n = c->req.url_len, skip;

	if (memchr(u, '#', n) != NULL)
		return gw_relay_reject(c, 400, "fragment in request target"), -1;
	if (n > 0 && u[0] == '/') {
		if (n > 1 && u[1] == '/')
			return gw_relay_reject(c, 400, "request target starts with //"), -1;
		*path = u;
		*plen = n;
		return 0;
	}
	if (n > 8 && strncasecmp(u, "https://", 8) == 0)
		skip = 8;
	else if (n > 7 && strncasecmp(u, "http://", 7) == 0)
		skip = 7;
	else
		return gw_relay_reject(c, 400, "unsupported request target form"), -1;
	const char *auth = u + skip, *slash = memchr(auth, '/', n - skip);
	size_t alen = slash ? (size_t)(slash - auth) : n - skip;
	if (host == NULL || alen != hlen || strncasecmp(auth, host, hlen) != 0)
		return gw_relay_reject(c, 400, "absolute target differs from Host"), -1;
	*path = slash ? slash : "/";
	*plen = slash ? n - skip - alen : 1;
	return 0;
}

/* Headers never passed upstream: hop-by-hop (RFC 9110 7.6.1), framing we
 * redo ourselves, forwarding headers we set from the real peer, and our
 * own identity headers, which only the gateway may set. */
static bool
drop_request_header(const struct gw_msg *m, const struct gw_hdr *h,
    const char *conn_v, size_t conn_n)
{
	static const char *const drop[] = {
		"connection", "keep-alive", "proxy-connection", "te", "trailer",
		"upgrade", "transfer-encoding", "content-length",
		"proxy-authorization", "proxy-authenticate", "expect",
		"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
		"x-forwarded-port", "forwarded", "x-real-ip", "host", NULL
	};
	for (int i = 0; drop[i]; i++)
		if (gw_hdr_is(m, h, drop[i]))
			return true;
	if (h->name_len >= 10 && strncasecmp(m->buf + h->name, "x-pbxgate-", 10) == 0)
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
 * is not itself trusted. */
static void
resolve_client(struct gw_conn *c, const char **xff, size_t *xffn)
{
	const struct gw_config *cfg = c->cfg;
	unsigned cnt;
	const struct gw_hdr *h;

	*xff = NULL;
	*xffn = 0;
	if (cfg->ntrusted == 0 ||
	    !gw_cidr_match(cfg->trusted, cfg->ntrusted, (struct sockaddr *)&c->peer))
		return;
	h = gw_msg_find(&c->req, "x-forwarded-for", &cnt);
	if (h == NULL || cnt != 1)
		return;		/* several lists: believe none */
	*xffn = hval(&c->req, h, xff);
	gw_relay_xff_client(c, *xff, *xffn);
}

static void
write_forwarding(struct gw_conn *c, struct evbuffer *out,
    const char *xff, size_t xffn, const char *host, size_t hlen)
{
	bool v6 = strchr(c->client_ip, ':') != NULL;

	if (xff != NULL && xffn > 0)
		evbuffer_add_printf(out, "X-Forwarded-For: %.*s, %s\r\n",
		    (int)xffn, xff, c->peer_ip);
	else
		evbuffer_add_printf(out, "X-Forwarded-For: %s\r\n", c->peer_ip);
	evbuffer_add_printf(out, "X-Real-IP: %s\r\n", c->client_ip);
	evbuffer_add(out, "X-Forwarded-Proto: https\r\n", 26);
	evbuffer_add_printf(out, "Forwarded: for=%s%s%s%s;proto=https",
	    v6 ? "\"[" : "", c->client_ip, v6 ? "]" : "", v6 ? "\"" : "");
	if (host != NULL)
		evbuffer_add_printf(out, ";host=\"%.*s\"\r\nX-Forwarded-Host: %.*s\r\n",
		    (int)hlen, host, (int)hlen, host);
	else
		evbuffer_add(out, "\r\n", 2);
}

static void
write_upstream_head(struct gw_conn *c, struct evbuffer *out, const char *path,
    size_t plen, const char *host, size_t hlen, const char *xff, size_t xffn)
{
	const struct gw_msg *m = &c->req;
	const struct gw_hdr *ch = gw_msg_find(m, "connection", NULL);
	const char *conn_v = NULL, *v;
	size_t conn_n = 0, n;

	if (ch != NULL)
		conn_n = hval(m, ch, &conn_v);
	evbuffer_add_printf(out, "%s %.*s HTTP/1.1\r\n",
	    llhttp_method_name(llhttp_get_method(&c->parser)), (int)plen, path);
	if (host != NULL)
		evbuffer_add_printf(out, "Host: %.*s\r\n", (int)hlen, host);
	else
		evbuffer_add_printf(out, "Host: %s\r\n", c->cfg->upstream.hostport);
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct gw_hdr *h = &m->hdrs[i];
		if (drop_request_header(m, h, conn_v, conn_n))
			continue;
		n = hval(m, h, &v);
		evbuffer_add(out, m->buf + h->name, h->name_len);
		evbuffer_add(out, ": ", 2);
		evbuffer_add(out, v, n);
		evbuffer_add(out, "\r\n", 2);
	}
	write_forwarding(c, out, xff, xffn, host, hlen);
	gw_relay_identity_headers(c, out);
	if (c->upgrade) {
		const struct gw_hdr *uh = gw_msg_find(m, "upgrade", NULL);
		n = hval(m, uh, &v);
		evbuffer_add_printf(out, "Connection: upgrade\r\nUpgrade: %.*s\r\n",
		    (int)n, v);
	} else if (c->parser.flags & F_CHUNKED) {
		c->req_chunked = true;
		evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
	} else if (c->parser.flags & F_CONTENT_LENGTH)
		evbuffer_add_printf(out, "Content-Length: %llu\r\n",
		    (unsigned long long)c->parser.content_length);
	evbuffer_add(out, "\r\n", 2);
}

/* Framing and protocol checks llhttp does not make. -1: rejected. */
static int
judge_framing(struct gw_conn *c, bool *has_body)
{
	const struct gw_msg *m = &c->req;
	const llhttp_t *p = &c->parser;
	const struct gw_hdr *h;
	unsigned n;

	h = gw_msg_find(m, "transfer-encoding", &n);
	if (n > 1 || (n == 1 && !hval_is(m, h, "chunked")))
		return gw_relay_reject(c, 400, "Transfer-Encoding other than chunked"), -1;
	*has_body = (p->flags & F_CHUNKED) ||
	    ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
	if ((p->flags & F_CONTENT_LENGTH) && c->cfg->lim.body &&
	    p->content_length > c->cfg->lim.body)
		return gw_relay_reject(c, 413, "Content-Length over max_body_size"), -1;
	h = gw_msg_find(m, "expect", &n);
	if (n > 1 || (n == 1 && !hval_is(m, h, "100-continue")))
		return gw_relay_reject(c, 417, "unsupported Expect"), -1;
	c->expect_continue = n == 1 && *has_body;
	return 0;
}

static bool
wants_websocket(struct gw_conn *c)
{
	const struct gw_msg *m = &c->req;
	const struct gw_hdr *ch = gw_msg_find(m, "connection", NULL);
	unsigned n;
	const struct gw_hdr *uh = gw_msg_find(m, "upgrade", &n);
	const char *v;
	size_t vn;

	if (ch == NULL || uh == NULL || n != 1)
		return false;
	vn = hval(m, ch, &v);
	if (!gw_token_list_has(v, vn, "upgrade"))
		return false;
	return hval_is(m, uh, "websocket") &&
	    llhttp_get_method(&c->parser) == HTTP_GET;
}

int
gw_relay_head_accept(struct gw_conn *c)
{
	llhttp_t *p = &c->parser;
	const struct gw_hdr *h;
	const char *host = NULL, *path, *xff;
	size_t hlen = 0, plen, xffn;
	unsigned nhost;
	bool has_body;

	if (p->http_major != 1 || p->http_minor > 1)
		return gw_relay_reject(c, 505, "HTTP version"), -1;
	if (!method_allowed(llhttp_get_method(p)))
		return gw_relay_reject(c, 405, "method not allowed"), -1;
	c->is_head = llhttp_get_method(p) == HTTP_HEAD;
	h = gw_msg_find(&c->req, "host", &nhost);
	if (nhost > 1)
		return gw_relay_reject(c, 400, "several Host headers"), -1;
	if (nhost == 0 && p->http_minor == 1)
		return gw_relay_reject(c, 400, "missing Host"), -1;
	if (h != NULL) {
		hlen = hval(&c->req, h, &host);
		if (!valid_host(host, hlen))
			return gw_relay_reject(c, 400, "invalid Host"), -1;
	}
	if (judge_target(c, host, hlen, &path, &plen) < 0)
		return -1;
	if (judge_framing(c, &has_body) < 0)
		return -1;
	if (wants_websocket(c)) {
		if (has_body)
			return gw_relay_reject(c, 400, "upgrade with a body"), -1;
		c->upgrade = true;
	}
	c->keepalive = llhttp_should_keep_alive(p) && p->http_minor == 1 &&
	    c->nreq < c->cfg->lim.requests_per_conn &&
	    !atomic_load(&c->w->rt->stopping);
	resolve_client(c, &xff, &xffn);
	if (gw_relay_gate(c, &path, &plen) < 0)
		return -1;
	if (plen >= strlen(AUTH_PREFIX) &&
	    strncmp(path, AUTH_PREFIX, strlen(AUTH_PREFIX)) == 0) {
		if (c->upgrade)
			return gw_relay_reject(c, 400, "upgrade to a gateway page"), -1;
		gw_local_begin(c);
		return 0;
	}
	return gw_relay_forward_head(c, path, plen, host, hlen, xff, xffn);
}

int
gw_relay_forward_head(struct gw_conn *c, const char *path, size_t plen,
    const char *host, size_t hlen, const char *xff, size_t xffn)
{
	char err[GW_ERRLEN];
	struct gw_upconn *up;

	c->state = CS_FORWARD;
	event_del(c->timer);
	up = gw_up_acquire(c, err, sizeof(err));
	if (up == NULL) {
		gw_log(GW_LOG_ERR, "upstream %s: %s", c->cfg->upstream.url, err);
		gw_conn_upstream_failed(c, 502);
		return -1;
	}
	c->up = up;
	if (c->up_head == NULL)
		c->up_head = evbuffer_new();
	else
		evbuffer_drain(c->up_head, evbuffer_get_length(c->up_head));
	write_upstream_head(c, c->up_head, path, plen, host, hlen, xff, xffn);
	gw_up_send_head(up, c->up_head);
	if (c->upgrade)
		gw_up_request_sent(up);
	if (c->expect_continue)
		bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	gw_conn_arm(c, c->cfg->to.body);
	return 0;
}

void
gw_relay_body(struct gw_conn *c, const char *p, size_t n)
{
	struct evbuffer *out;

	if (c->local) {
		gw_local_body(c, p, n);
		return;
	}
	if (c->up == NULL || n == 0)
		return;
	out = bufferevent_get_output(c->up->bev);
	if (c->req_chunked) {
		evbuffer_add_printf(out, "%zx\r\n", n);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
	} else
		evbuffer_add(out, p, n);
	gw_conn_arm(c, c->cfg->to.body);
}

void
gw_relay_body_done(struct gw_conn *c)
{
	if (c->req_done)
		return;
	c->req_done = true;
	event_del(c->timer);
	if (c->local) {
		gw_local_body_done(c);
		return;
	}
	if (c->up != NULL) {
		if (c->req_chunked)
			bufferevent_write(c->up->bev, "0\r\n\r\n", 5);
		gw_up_request_sent(c->up);
	}
}

/* Whether the upstream has everything it will get before it answers. */
bool
gw_conn_request_sent(const struct gw_conn *c)
{
	return c->req_done || c->upgrade;
}
