/* http_head.c -- the HTTP/1.1 parsers of both directions: llhttp (no
 * lenient flags) for the client's requests and the upstream's responses,
 * heads stored by msg.c, plus the request checks llhttp leaves to us. Kept
 * free of sockets so that unit tests and the fuzzers drive exactly the
 * code the relay runs. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw_priv.h"

static int rp_message_begin(llhttp_t *);
static int rp_url(llhttp_t *, const char *, size_t);
static int rp_header_field(llhttp_t *, const char *, size_t);
static int rp_header_field_complete(llhttp_t *);
static int rp_header_value(llhttp_t *, const char *, size_t);
static int rp_headers_complete(llhttp_t *);
static int rp_body(llhttp_t *, const char *, size_t);
static int rp_message_complete(llhttp_t *);

static llhttp_settings_t rp_settings;
static pthread_once_t rp_once = PTHREAD_ONCE_INIT;

static void
rp_settings_init(void)
{
	llhttp_settings_init(&rp_settings);
	rp_settings.on_message_begin = rp_message_begin;
	rp_settings.on_url = rp_url;
	rp_settings.on_header_field = rp_header_field;
	rp_settings.on_header_field_complete = rp_header_field_complete;
	rp_settings.on_header_value = rp_header_value;
	rp_settings.on_headers_complete = rp_headers_complete;
	rp_settings.on_body = rp_body;
	rp_settings.on_message_complete = rp_message_complete;
}

void
gw_reqparse_init(struct gw_reqparse *rp, const struct gw_limits *lim,
    const struct gw_reqparse_hooks *hooks, void *owner)
{
	pthread_once(&rp_once, rp_settings_init);
	memset(rp, 0, sizeof(*rp));
	llhttp_init(&rp->parser, HTTP_REQUEST, &rp_settings);
	rp->parser.data = rp;
	rp->lim = lim;
	rp->hooks = hooks;
	rp->owner = owner;
}

void
gw_reqparse_free(struct gw_reqparse *rp)
{
	gw_msg_free(&rp->req);
}

static int
fail(struct gw_reqparse *rp, int status, const char *why)
{
	if (rp->err_status == 0) {
		rp->err_status = status;
		rp->err_reason = why;
	}
	return -1;
}

/* The few head defects llhttp 8 accepts without any lenient flag: obs-fold
 * (a line starting with SP/HTAB), a bare LF line end, and more than one
 * space between request-line parts. Scanned over exactly the head bytes
 * llhttp consumed. */
static const char *
head_defect(struct gw_reqparse *rp, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (rp->prev_byte == '\n' && (p[i] == ' ' || p[i] == '\t'))
			return "obs-fold in header";
		if (p[i] == '\n' && rp->prev_byte != '\r')
			return "bare LF line end";
		if (!rp->past_first_line && p[i] == ' ' && rp->prev_byte == ' ')
			return "extra space in request line";
		if (p[i] == '\n')
			rp->past_first_line = true;
		rp->prev_byte = p[i];
	}
	return NULL;
}

/* Feeds one buffer. *used is how much was consumed; the rest must be fed
 * again after the event is handled (llhttp stops at the end of a head and
 * of a message so that pipelined requests wait their turn). */
enum gw_rp_event
gw_reqparse_feed(struct gw_reqparse *rp, const char *p, size_t n, size_t *used)
{
	bool in_head = !rp->head_done;
	llhttp_errno_t e = llhttp_execute(&rp->parser, p, n);
	const char *why;

	*used = e == HPE_OK ? n :
	    (size_t)(llhttp_get_error_pos(&rp->parser) - p);
	if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE) {
		*used = 0;
		fail(rp, 400, llhttp_errno_name(e));
		return GW_RP_ERROR;
	}
	if (in_head && (why = head_defect(rp, (const unsigned char *)p, *used))) {
		fail(rp, 400, why);
		return GW_RP_ERROR;
	}
	if (e == HPE_OK)
		return GW_RP_MORE;
	llhttp_resume(&rp->parser);
	if (e == HPE_PAUSED_UPGRADE) {
		/* a non-WebSocket Upgrade ended the message: serve, then close */
		rp->upgrade_end = true;
		rp_message_complete(&rp->parser);
		rp->msg_done = false;
		return GW_RP_DONE;
	}
	if (rp->msg_done) {
		rp->msg_done = false;
		/* a non-WebSocket Upgrade: llhttp will read nothing more on
		 * this connection, so it must close after the answer */
		if (llhttp_get_upgrade(&rp->parser))
			rp->upgrade_end = true;
		return GW_RP_DONE;
	}
	return GW_RP_HEAD;
}

/* A message without a body completes without another byte: ask llhttp. */
bool
gw_reqparse_finish_bodyless(struct gw_reqparse *rp)
{
	if (llhttp_execute(&rp->parser, "", 0) != HPE_PAUSED)
		return false;
	llhttp_resume(&rp->parser);
	rp->msg_done = false;
	return true;
}

/* ---- llhttp callbacks: store and bound, never act ---- */

static int
rp_message_begin(llhttp_t *p)
{
	struct gw_reqparse *rp = p->data;

	gw_msg_reset(&rp->req);
	rp->head_done = rp->msg_done = rp->past_first_line = false;
	rp->upgrade_end = false;
	rp->prev_byte = 0;
	rp->err_status = 0;
	rp->err_reason = NULL;
	rp->trailer_len = 0;
	rp->body_in = 0;
	if (rp->hooks && rp->hooks->begin)
		rp->hooks->begin(rp->owner);	/* may change rp->lim */
	return 0;
}

static int
rp_url(llhttp_t *p, const char *at, size_t n)
{
	struct gw_reqparse *rp = p->data;

	if (rp->req.url_len + n > rp->lim->request_line)
		return fail(rp, 414, "request line too long");
	if (gw_msg_append(&rp->req, at, n, rp->lim->header_total) < 0)
		return fail(rp, 431, "request head too large");
	rp->req.url_len += (uint32_t)n;
	return 0;
}

/* The request's head bounds, from the config snapshot of the request. */
static struct gw_msg_lim
req_lim(const struct gw_reqparse *rp)
{
	struct gw_msg_lim ml = {
		.head = rp->lim->header_total,
		.line = rp->lim->header_size,
		.headers = rp->lim->headers,
	};
	return ml;
}

/* What a request is answered when its head cannot be stored. */
static int
store_fail(struct gw_reqparse *rp, enum gw_msg_err e)
{
	switch (e) {
	case GW_MSG_OK:
		return 0;
	case GW_MSG_TOO_MANY:
		return fail(rp, 431, "too many headers");
	case GW_MSG_NOMEM:
		return fail(rp, 431, "out of memory for headers");
	case GW_MSG_LINE:
		return fail(rp, 431, "header line too long");
	case GW_MSG_HEAD:
		return fail(rp, 431, "request head too large");
	case GW_MSG_NAME:
		return fail(rp, 400, "invalid header name");
	}
	return fail(rp, 400, "bad request");
}

/* Chunked trailers are read, bounded and dropped: never forwarded. */
static int
trailer(struct gw_reqparse *rp, size_t n)
{
	rp->trailer_len += n;
	if (rp->trailer_len > rp->lim->header_size)
		return fail(rp, 400, "trailer too large");
	return 0;
}

static int
rp_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct gw_reqparse *rp = p->data;
	struct gw_msg_lim ml;

	if (rp->head_done)
		return trailer(rp, n);
	ml = req_lim(rp);
	return store_fail(rp, gw_msg_add_name(&rp->req, at, n, &ml));
}

static int
rp_header_field_complete(llhttp_t *p)
{
	struct gw_reqparse *rp = p->data;

	if (rp->head_done)
		return 0;
	return store_fail(rp, gw_msg_end_name(&rp->req));
}

static int
rp_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct gw_reqparse *rp = p->data;
	struct gw_msg_lim ml;

	if (rp->head_done)
		return trailer(rp, n);
	ml = req_lim(rp);
	return store_fail(rp, gw_msg_add_value(&rp->req, at, n, &ml));
}

static int
rp_headers_complete(llhttp_t *p)
{
	struct gw_reqparse *rp = p->data;

	rp->head_done = true;
	return HPE_PAUSED;	/* judged by the owner before any body moves */
}

static int
rp_body(llhttp_t *p, const char *at, size_t n)
{
	struct gw_reqparse *rp = p->data;

	rp->body_in += n;
	if (rp->lim->body && rp->body_in > rp->lim->body)
		return fail(rp, 413, "request body too large");
	if (rp->hooks && rp->hooks->body)
		rp->hooks->body(rp->owner, at, n);
	return 0;
}

static int
rp_message_complete(llhttp_t *p)
{
	struct gw_reqparse *rp = p->data;

	rp->msg_done = true;
	rp->head_done = false;	/* the next bytes are the next head */
	if (rp->hooks && rp->hooks->done)
		rp->hooks->done(rp->owner);
	return HPE_PAUSED;	/* hold pipelined requests until answered */
}

/* ---- the upstream's response ---- */

static int rs_message_begin(llhttp_t *);
static int rs_header_field(llhttp_t *, const char *, size_t);
static int rs_header_field_complete(llhttp_t *);
static int rs_header_value(llhttp_t *, const char *, size_t);
static int rs_headers_complete(llhttp_t *);
static int rs_body(llhttp_t *, const char *, size_t);
static int rs_message_complete(llhttp_t *);

static llhttp_settings_t rs_settings;
static pthread_once_t rs_once = PTHREAD_ONCE_INIT;

/* The upstream is trusted more than a client but not blindly: its heads
 * are bounded too. */
static const struct gw_msg_lim rs_lim = {
	.head = GW_RESP_HEAD_MAX,
	.line = GW_RESP_LINE_MAX,
	.headers = GW_RESP_HEADERS_MAX,
};

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

void
gw_respparse_init(struct gw_respparse *rs,
    const struct gw_respparse_hooks *hooks, void *owner)
{
	pthread_once(&rs_once, rs_settings_init);
	llhttp_init(&rs->parser, HTTP_RESPONSE, &rs_settings);
	rs->parser.data = rs;
	rs->hooks = hooks;
	rs->owner = owner;
	gw_msg_reset(&rs->resp);
	rs->head_done = rs->msg_done = false;
	rs->interim = 0;
	rs->reject = NULL;
}

void
gw_respparse_free(struct gw_respparse *rs)
{
	gw_msg_free(&rs->resp);
}

llhttp_errno_t
gw_respparse_feed(struct gw_respparse *rs, const char *p, size_t n,
    size_t *used)
{
	llhttp_errno_t e = llhttp_execute(&rs->parser, p, n);

	*used = e == HPE_OK ? n :
	    (size_t)(llhttp_get_error_pos(&rs->parser) - p);
	return e;
}

bool
gw_respparse_announces_body(const struct gw_respparse *rs)
{
	const llhttp_t *p = &rs->parser;

	return ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) ||
	    (p->flags & (F_CHUNKED | F_TRANSFER_ENCODING));
}

static int
rs_message_begin(llhttp_t *p)
{
	struct gw_respparse *rs = p->data;

	gw_msg_reset(&rs->resp);
	rs->head_done = rs->msg_done = false;
	return 0;
}

static int
rs_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct gw_respparse *rs = p->data;

	if (rs->head_done)
		return 0;	/* trailers: dropped */
	return gw_msg_add_name(&rs->resp, at, n, &rs_lim) == GW_MSG_OK ? 0 : -1;
}

static int
rs_header_field_complete(llhttp_t *p)
{
	struct gw_respparse *rs = p->data;

	if (rs->head_done)
		return 0;
	return gw_msg_end_name(&rs->resp) == GW_MSG_OK ? 0 : -1;
}

static int
rs_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct gw_respparse *rs = p->data;

	if (rs->head_done)
		return 0;
	return gw_msg_add_value(&rs->resp, at, n, &rs_lim) == GW_MSG_OK ? 0 : -1;
}

/* Interim answers (100, 102, 103, ...) are dropped: the gateway says 100
 * Continue itself. One with body bytes leaves which head is the final
 * answer in doubt. 1 tells llhttp the message ends with its head: llhttp
 * 8 would read a body after a 1xx if the head announced one. */
static int
rs_headers_complete(llhttp_t *p)
{
	struct gw_respparse *rs = p->data;
	int st = p->status_code;

	if (st < 200 && st != 101) {
		if (gw_respparse_announces_body(rs))
			rs->reject = "1xx response announcing a body";
		else if (++rs->interim > GW_RESP_INTERIM_MAX)
			rs->reject = "too many 1xx responses";
		return rs->reject != NULL ? -1 : 1;
	}
	rs->head_done = true;	/* what follows is body, then trailers */
	if (rs->hooks == NULL || rs->hooks->head == NULL)
		return 0;
	return rs->hooks->head(rs->owner);
}

static int
rs_body(llhttp_t *p, const char *at, size_t n)
{
	struct gw_respparse *rs = p->data;

	if (rs->hooks != NULL && rs->hooks->body != NULL)
		rs->hooks->body(rs->owner, at, n);
	return 0;
}

static int
rs_message_complete(llhttp_t *p)
{
	struct gw_respparse *rs = p->data;
	int st = p->status_code;

	if (st >= 100 && st < 200)
		return 0;	/* the real answer follows */
	rs->msg_done = true;
	return HPE_PAUSED;
}

/* ---- judging a complete request head ---- */

static bool
hval_is(const struct gw_msg *m, const struct gw_hdr *h, const char *want)
{
	const char *v;
	size_t n = gw_msg_value(m, h, &v), wl = strlen(want);

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
	unsigned port = 0;
	for (i++; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		port = port * 10 + (unsigned)(v[i] - '0');
	}
	return port >= 1 && port <= 65535;
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
 * (RFC 9112 3.2.2), rewritten to origin-form. Sets path and plen; returns
 * NULL or why the target is refused (400). */
static const char *
judge_target(const struct gw_msg *m, const char *host, size_t hlen,
    const char **path, size_t *plen)
{
	const char *u = m->buf + m->url;
	size_t n = m->url_len, skip;

	if (memchr(u, '#', n) != NULL)
		return "fragment in request target";
	if (n > 0 && u[0] == '/') {
		if (n > 1 && u[1] == '/')
			return "request target starts with //";
		*path = u;
		*plen = n;
		return NULL;
	}
	if (n > 8 && strncasecmp(u, "https://", 8) == 0)
		skip = 8;
	else if (n > 7 && strncasecmp(u, "http://", 7) == 0)
		skip = 7;
	else
		return "unsupported request target form";
	const char *auth = u + skip, *slash = memchr(auth, '/', n - skip);
	size_t alen = slash ? (size_t)(slash - auth) : n - skip;
	if (host == NULL || alen != hlen || strncasecmp(auth, host, hlen) != 0)
		return "absolute target differs from Host";
	*path = slash ? slash : "/";
	*plen = slash ? n - skip - alen : 1;
	return NULL;
}

/* Framing and protocol checks llhttp does not make. Returns the status to
 * answer (0 = fine) with *why. */
static int
judge_framing(struct gw_reqparse *rp, struct gw_head_info *hi, const char **why)
{
	const struct gw_msg *m = &rp->req;
	const llhttp_t *p = &rp->parser;
	const struct gw_hdr *h;
	unsigned n;

	h = gw_msg_find(m, "transfer-encoding", &n);
	if (n > 1 || (n == 1 && !hval_is(m, h, "chunked")))
		return *why = "Transfer-Encoding other than chunked", 400;
	hi->chunked = (p->flags & F_CHUNKED) != 0;
	hi->has_body = hi->chunked ||
	    ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
	if ((p->flags & F_CONTENT_LENGTH) && rp->lim->body &&
	    p->content_length > rp->lim->body)
		return *why = "Content-Length over max_body_size", 413;
	h = gw_msg_find(m, "expect", &n);
	if (n > 1 || (n == 1 && !hval_is(m, h, "100-continue")))
		return *why = "unsupported Expect", 417;
	hi->expect_continue = n == 1 && hi->has_body;
	return 0;
}

static bool
wants_websocket(struct gw_reqparse *rp)
{
	const struct gw_msg *m = &rp->req;
	const char *v = NULL;
	size_t vn = 0;
	const struct gw_hdr *ch = gw_msg_get(m, "connection", NULL, &v, &vn);
	unsigned n;
	const struct gw_hdr *uh = gw_msg_find(m, "upgrade", &n);

	if (ch == NULL || uh == NULL || n != 1)
		return false;
	if (!gw_token_list_has(v, vn, "upgrade"))
		return false;
	return hval_is(m, uh, "websocket") &&
	    llhttp_get_method(&rp->parser) == HTTP_GET;
}

/* Everything about a complete head that llhttp does not judge. Returns 0
 * with `hi` filled, or the status to answer with *why. */
int
gw_head_judge(struct gw_reqparse *rp, struct gw_head_info *hi, const char **why)
{
	llhttp_t *p = &rp->parser;
	unsigned nhost;
	int st;

	memset(hi, 0, sizeof(*hi));
	if (p->http_major != 1 || p->http_minor > 1)
		return *why = "HTTP version", 505;
	hi->method = llhttp_get_method(p);
	if (!method_allowed(hi->method))
		return *why = "method not allowed", 405;
	gw_msg_get(&rp->req, "host", &nhost, &hi->host, &hi->hlen);
	if (nhost > 1)
		return *why = "several Host headers", 400;
	if (nhost == 0 && p->http_minor == 1)
		return *why = "missing Host", 400;
	if (nhost == 1) {
		if (!valid_host(hi->host, hi->hlen))
			return *why = "invalid Host", 400;
	}
	if ((*why = judge_target(&rp->req, hi->host, hi->hlen, &hi->path,
	    &hi->plen)) != NULL)
		return 400;
	if ((st = judge_framing(rp, hi, why)) != 0)
		return st;
	if (wants_websocket(rp)) {
		if (hi->has_body)
			return *why = "upgrade with a body", 400;
		hi->upgrade = true;
	}
	/* an Upgrade we do not tunnel leaves llhttp in upgrade mode after the
	 * message: answer it with Connection: close */
	hi->keepalive = llhttp_should_keep_alive(p) && p->http_minor == 1 &&
	    (hi->upgrade || !llhttp_get_upgrade(p));
	/* the client itself ends the connection with this request: nothing
	 * it sends after it is expected (relay_reply.c closes at once) */
	hi->client_close = !llhttp_should_keep_alive(p) && !llhttp_get_upgrade(p);
	return 0;
}
