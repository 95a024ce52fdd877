/* http_head.c -- the request parser: llhttp (no lenient flags) plus the
 * checks it leaves to us, kept free of sockets so that unit tests and the
 * fuzzer drive exactly the code the relay runs. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw_internal.h"

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

static int
new_header(struct gw_reqparse *rp)
{
	struct gw_msg *m = &rp->req;
	unsigned max = rp->lim->headers;

	if (max > GW_MAX_HEADERS_HARD)
		max = GW_MAX_HEADERS_HARD;
	if (m->nhdrs >= max)
		return fail(rp, 431, "too many headers");
	if (m->nhdrs == m->hdrs_cap) {
		unsigned cap = m->hdrs_cap ? m->hdrs_cap * 2 : 16;
		struct gw_hdr *nh;
		if (cap > max)
			cap = max;
		nh = reallocarray(m->hdrs, cap, sizeof(*nh));
		if (nh == NULL)
			return fail(rp, 431, "out of memory for headers");
		m->hdrs = nh;
		m->hdrs_cap = cap;
	}
	memset(&m->hdrs[m->nhdrs], 0, sizeof(m->hdrs[0]));
	m->hdrs[m->nhdrs].name = (uint32_t)m->len;
	m->nhdrs++;
	m->in_value = false;
	m->line_len = 0;
	return 0;
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
	struct gw_msg *m = &rp->req;

	if (rp->head_done)
		return trailer(rp, n);
	if ((m->nhdrs == 0 || m->in_value) && new_header(rp) < 0)
		return -1;
	m->line_len += n;
	if (m->line_len > rp->lim->header_size)
		return fail(rp, 431, "header line too long");
	if (gw_msg_append(m, at, n, rp->lim->header_total) < 0)
		return fail(rp, 431, "request head too large");
	m->hdrs[m->nhdrs - 1].name_len += (uint32_t)n;
	return 0;
}

static int
rp_header_field_complete(llhttp_t *p)
{
	struct gw_reqparse *rp = p->data;
	struct gw_msg *m = &rp->req;
	const struct gw_hdr *h;

	if (rp->head_done)
		return 0;
	h = &m->hdrs[m->nhdrs - 1];
	if (!gw_relay_valid_name(m->buf + h->name, h->name_len))
		return fail(rp, 400, "invalid header name");
	m->in_value = true;
	m->hdrs[m->nhdrs - 1].value = (uint32_t)m->len;
	return 0;
}

static int
rp_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct gw_reqparse *rp = p->data;
	struct gw_msg *m = &rp->req;

	if (rp->head_done)
		return trailer(rp, n);
	m->line_len += n;
	if (m->line_len > rp->lim->header_size)
		return fail(rp, 431, "header line too long");
	if (gw_msg_append(m, at, n, rp->lim->header_total) < 0)
		return fail(rp, 431, "request head too large");
	m->hdrs[m->nhdrs - 1].value_len += (uint32_t)n;
	return 0;
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

/* ---- judging a complete head ---- */

/* RFC 9110 tchar; a switch, not strchr() on every byte of every name. */
static bool
tchar(unsigned char ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z'))
		return true;
	switch (ch) {
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '.': case '^': case '_':
	case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
}

/* RFC 9110 token characters. llhttp lets a space before the colon through
 * into the name; a name is only ever a token here. */
bool
gw_relay_valid_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!tchar((unsigned char)s[i]))
			return false;
	return true;
}

/* Value without the trailing whitespace llhttp keeps. */
size_t
gw_hval(const struct gw_msg *m, const struct gw_hdr *h, const char **v)
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
	size_t n = gw_hval(m, h, &v), wl = strlen(want);

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
	const struct gw_hdr *ch = gw_msg_find(m, "connection", NULL);
	unsigned n;
	const struct gw_hdr *uh = gw_msg_find(m, "upgrade", &n);
	const char *v;
	size_t vn;

	if (ch == NULL || uh == NULL || n != 1)
		return false;
	vn = gw_hval(m, ch, &v);
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
	const struct gw_hdr *h;
	unsigned nhost;
	int st;

	memset(hi, 0, sizeof(*hi));
	if (p->http_major != 1 || p->http_minor > 1)
		return *why = "HTTP version", 505;
	hi->method = llhttp_get_method(p);
	if (!method_allowed(hi->method))
		return *why = "method not allowed", 405;
	h = gw_msg_find(&rp->req, "host", &nhost);
	if (nhost > 1)
		return *why = "several Host headers", 400;
	if (nhost == 0 && p->http_minor == 1)
		return *why = "missing Host", 400;
	if (h != NULL) {
		hi->hlen = gw_hval(&rp->req, h, &hi->host);
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
	return 0;
}
