/* relay_response.c -- the upstream's response head, cleaned and hardened,
 * and its body re-framed for the client. */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "gateway/gw_priv.h"

/* Response headers the client never sees: hop-by-hop, framing we redo,
 * and what fingerprints the PBX behind us. */
static bool
drop_response_header(const struct gw_msg *m, const struct gw_hdr *h,
    bool switching, const char *conn_v, size_t conn_n)
{
	static const struct gw_name drop[] = {
		GW_NAME("keep-alive"), GW_NAME("proxy-connection"),
		GW_NAME("te"), GW_NAME("trailer"),
		GW_NAME("transfer-encoding"), GW_NAME("content-length"),
		GW_NAME("server"), GW_NAME("x-powered-by"),
		GW_NAME("x-aspnet-version"), GW_NAME("x-aspnetmvc-version"),
		/* ours replaces it: the client gets the id the logs carry */
		GW_NAME("x-request-id"),
	};

	if (gw_hdr_in(m, h, drop, sizeof(drop) / sizeof(drop[0])))
		return true;
	if (gw_hdr_is(m, h, "set-cookie") &&
	    gw_set_cookie_reserved(m->buf + h->value, h->value_len)) {
		/* only the gateway sets its session, MFA and CSRF cookies */
		gw_log(GW_LOG_WARN, "upstream response: dropped a Set-Cookie "
		    "for one of the gateway's own cookie names");
		return true;
	}
	if (switching)
		return false;	/* 101 keeps Connection/Upgrade as sent */
	if (gw_hdr_is(m, h, "connection") || gw_hdr_is(m, h, "upgrade"))
		return true;
	if (conn_v != NULL && h->name_len < 64) {
		char name[64];
		memcpy(name, m->buf + h->name, h->name_len);
		name[h->name_len] = '\0';
		if (gw_token_list_has(conn_v, conn_n, name))
			return true;
	}
	return false;
}

static bool
has_header(const struct gw_msg *m, const char *name)
{
	return gw_msg_find(m, name, NULL) != NULL;
}

/* Whether any Content-Security-Policy header already sets frame-ancestors. */
static bool
csp_has_frame_ancestors(const struct gw_msg *m)
{
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct gw_hdr *h = &m->hdrs[i];
		if (!gw_hdr_is(m, h, "content-security-policy"))
			continue;
		if (memmem(m->buf + h->value, h->value_len, "frame-ancestors", 15))
			return true;
	}
	return false;
}

static void
add_security_headers(struct gw_conn *c, const struct gw_msg *m,
    struct gw_hw *w)
{
	if (c->site->hsts && !has_header(m, "strict-transport-security")) {
		GW_HW_LIT(w, "Strict-Transport-Security: max-age=");
		gw_hw_u64(w, c->site->hsts_max_age);
		GW_HW_LIT(w, "; includeSubDomains\r\n");
	}
	if (!has_header(m, "x-content-type-options"))
		GW_HW_LIT(w, "X-Content-Type-Options: nosniff\r\n");
	if (!has_header(m, "referrer-policy"))
		GW_HW_LIT(w, "Referrer-Policy: same-origin\r\n");
	/* A second CSP header only narrows (browsers enforce every policy),
	 * so adding ours never loosens what the upstream set. */
	if (!csp_has_frame_ancestors(m))
		GW_HW_LIT(w, "Content-Security-Policy: frame-ancestors 'self'\r\n");
}

/* A response Transfer-Encoding other than exactly "chunked" (gzip,
 * chunked; two headers) would reach the client re-framed but still
 * encoded and unlabelled: refuse it rather than guess. */
static bool
framing_ok(const struct gw_msg *m)
{
	unsigned n;
	const char *v = NULL;
	size_t vn = 0;

	gw_msg_get(m, "transfer-encoding", &n, &v, &vn);
	if (n == 0)
		return true;
	if (n > 1)
		return false;
	return vn == 7 && strncasecmp(v, "chunked", 7) == 0;
}

static void
content_length(struct gw_hw *w, uint64_t n)
{
	GW_HW_LIT(w, "Content-Length: ");
	gw_hw_u64(w, n);
	GW_HW_LIT(w, "\r\n");
}

/* RFC 9112 6.3: responses to HEAD, and 1xx, 204 and 304, end with their
 * head whatever Content-Length or Transfer-Encoding say. */
bool
gw_relay_response_bodiless(const struct gw_conn *c, int status)
{
	return c->rq->is_head || status < 200 || status == 204 || status == 304;
}

/* Decides how the body reaches the client; writes the framing header.
 * A bodiless answer keeps the length it announces (HEAD, 304: the size
 * of the representation) and nothing else. */
static void
choose_framing(struct gw_conn *c, struct gw_upconn *up, struct gw_hw *w)
{
	const llhttp_t *p = &up->rs.parser;
	int st = p->status_code;
	bool nobody = gw_relay_response_bodiless(c, st);
	bool http10 = c->rq->rp.parser.http_minor == 0;

	if (nobody) {
		if ((p->flags & F_CONTENT_LENGTH) && st != 204)
			content_length(w, p->content_length);
		return;
	}
	if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED)) {
		content_length(w, p->content_length);
		return;
	}
	/* chunked, or delimited by the upstream closing */
	if (http10) {
		c->rq->resp_until_close = true;
		c->keepalive = false;
	} else {
		c->rq->resp_chunked = true;
		GW_HW_LIT(w, "Transfer-Encoding: chunked\r\n");
	}
}

/* Called from the upstream parser's on_headers_complete for a final
 * answer (or a checked 101). 0 when the head is on its way to the client,
 * -1 for an unacceptable response (nothing sent: the client gets a 502). */
int
gw_relay_response_head(struct gw_conn *c, struct gw_upconn *up)
{
	const struct gw_msg *m = &up->rs.resp;
	struct evbuffer *out = gw_bodyhash_head_out(c);
	const struct gw_hdr *ch = gw_msg_find(m, "connection", NULL);
	const char *conn_v = NULL;
	size_t conn_n = 0;
	int st = up->rs.parser.status_code;
	bool switching = st == 101;
	size_t before = evbuffer_get_length(out);
	struct gw_hw w;

	if (!framing_ok(m)) {
		up->rs.reject = "Transfer-Encoding other than chunked";
		return -1;	/* nothing sent yet: the client gets a 502 */
	}
	if ((up->rs.reject = gw_bodyhash_head_refused(c, m, st)) != NULL)
		return -1;
	if (ch != NULL) {
		conn_v = m->buf + ch->value;
		conn_n = ch->value_len;
	}
	/* Room for the head and a small body in one chunk: the TLS layer
	 * writes a chunk per SSL_write, so this makes one record and one
	 * write(2) of a typical API answer instead of two. */
	evbuffer_expand(out, 2048 + (up->rs.parser.content_length < 16384 ?
	    up->rs.parser.content_length : 16384));
	gw_hw_init(&w, out);
	{
		/* llhttp accepts only three-digit status codes */
		char sl[13] = "HTTP/1.1 000 ";
		sl[9] = (char)('0' + st / 100 % 10);
		sl[10] = (char)('0' + st / 10 % 10);
		sl[11] = (char)('0' + st % 10);
		gw_hw_put(&w, sl, sizeof(sl));
	}
	/* Our own reason phrase, never the upstream's: its bytes (NUL, ESC,
	 * obs-text...) would reach the client's status line unchecked, and
	 * no client acts on the phrase (RFC 9112 4). */
	gw_hw_str(&w, gw_status_text(st));
	GW_HW_LIT(&w, "\r\n");
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct gw_hdr *h = &m->hdrs[i];
		if (drop_response_header(m, h, switching, conn_v, conn_n))
			continue;
		gw_hw_header(&w, m->buf + h->name, h->name_len, m->buf + h->value,
		    h->value_len);
	}
	GW_HW_LIT(&w, "X-Request-Id: ");
	gw_hw_str(&w, gw_reqid(c));
	GW_HW_LIT(&w, "\r\n");
	if (c->rq->set_cookie != NULL)
		gw_hw_header(&w, "Set-Cookie", 10, c->rq->set_cookie,
		    strlen(c->rq->set_cookie));
	if (!switching) {
		choose_framing(c, up, &w);
		if (!c->keepalive || c->rq->upgrade || !c->rq->req_done)
			GW_HW_LIT(&w, "Connection: close\r\n");
	}
	add_security_headers(c, m, &w);
	GW_HW_LIT(&w, "\r\n");
	gw_hw_flush(&w);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = st;
	c->rq->resp_started = true;
	c->rq->upstream_ms = gw_ms_since(&c->rq->t_up);
	return 0;
}

void
gw_relay_emit(struct gw_conn *c, const char *p, size_t n)
{
	struct evbuffer *out = gw_io_output(c->io);

	if (n == 0)
		return;
	if (c->rq->resp_chunked) {
		evbuffer_add_printf(out, "%zx\r\n", n);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
	} else
		evbuffer_add(out, p, n);
	c->rq->bytes_out += n;
}

void
gw_relay_emit_buffer(struct gw_conn *c, struct evbuffer *src, size_t n)
{
	struct evbuffer *out = gw_io_output(c->io);

	if (n == 0)
		return;
	if (c->rq->resp_chunked)
		evbuffer_add_printf(out, "%zx\r\n", n);
	evbuffer_remove_buffer(src, out, n);
	if (c->rq->resp_chunked)
		evbuffer_add(out, "\r\n", 2);
	c->rq->bytes_out += n;
}

void
gw_conn_response_body(struct gw_conn *c, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (c->rq->bh != NULL)
		gw_bodyhash_body(c, p, n);
	else
		gw_relay_emit(c, p, n);
}
