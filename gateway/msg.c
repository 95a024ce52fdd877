/* msg.c -- one HTTP message head, request or response, as llhttp hands it
 * over: bounded storage (packed bytes, header slots) and header lookup. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw_priv.h"

void
gw_msg_reset(struct gw_msg *m)
{
	m->len = 0;
	m->url = m->url_len = 0;
	m->nhdrs = 0;
	m->in_value = false;
	m->line_len = 0;
}

void
gw_msg_free(struct gw_msg *m)
{
	free(m->buf);
	free(m->hdrs);
	memset(m, 0, sizeof(*m));
}

/* Appends raw bytes to the packed buffer; -1 when `max` would be exceeded
 * (the caller turns that into 414/431). Growth is geometric and bounded. */
int
gw_msg_append(struct gw_msg *m, const char *p, size_t n, size_t max)
{
	if (n > max || m->len > max - n)
		return -1;
	if (m->len + n > m->cap) {
		size_t cap = m->cap ? m->cap : 1024;
		while (cap < m->len + n)
			cap *= 2;
		if (cap > max)
			cap = max;
		char *nb = realloc(m->buf, cap);
		if (nb == NULL)
			return -1;
		m->buf = nb;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
	return 0;
}

/* A NUL-terminated copy of n bytes that need not be a C string (header
 * values point into the head buffer); NULL when out of memory. */
char *
gw_memdup_str(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

bool
gw_hdr_is(const struct gw_msg *m, const struct gw_hdr *h, const char *name)
{
	size_t n = strlen(name);
	return h->name_len == n && strncasecmp(m->buf + h->name, name, n) == 0;
}

bool
gw_name_in(const char *name, size_t len, const struct gw_name *tab, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (len == tab[i].len && strncasecmp(name, tab[i].s, len) == 0)
			return true;
	return false;
}

bool
gw_hdr_in(const struct gw_msg *m, const struct gw_hdr *h,
    const struct gw_name *tab, size_t n)
{
	return gw_name_in(m->buf + h->name, h->name_len, tab, n);
}

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
gw_msg_valid_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!tchar((unsigned char)s[i]))
			return false;
	return true;
}

/* A new header slot; the slot array grows geometrically up to the count
 * the message may have, never above GW_MAX_HEADERS_HARD. */
static enum gw_msg_err
new_header(struct gw_msg *m, const struct gw_msg_lim *lim)
{
	unsigned max = lim->headers;

	if (max > GW_MAX_HEADERS_HARD)
		max = GW_MAX_HEADERS_HARD;
	if (m->nhdrs >= max)
		return GW_MSG_TOO_MANY;
	if (m->nhdrs == m->hdrs_cap) {
		unsigned cap = m->hdrs_cap ? m->hdrs_cap * 2 : GW_MSG_SLOTS;
		struct gw_hdr *nh;
		if (cap > max)
			cap = max;
		nh = reallocarray(m->hdrs, cap, sizeof(*nh));
		if (nh == NULL)
			return GW_MSG_NOMEM;
		m->hdrs = nh;
		m->hdrs_cap = cap;
	}
	memset(&m->hdrs[m->nhdrs], 0, sizeof(m->hdrs[0]));
	m->hdrs[m->nhdrs].name = (uint32_t)m->len;
	m->nhdrs++;
	m->in_value = false;
	m->line_len = 0;
	return GW_MSG_OK;
}

/* One more piece of the current header line, name or value: the line and
 * the head stay within their bounds. */
static enum gw_msg_err
add_piece(struct gw_msg *m, const char *p, size_t n,
    const struct gw_msg_lim *lim)
{
	m->line_len += n;
	if (m->line_len > lim->line)
		return GW_MSG_LINE;
	if (gw_msg_append(m, p, n, lim->head) < 0)
		return GW_MSG_HEAD;
	return GW_MSG_OK;
}

/* A piece of a header name (llhttp may split it); the first piece after a
 * value opens a new header. */
enum gw_msg_err
gw_msg_add_name(struct gw_msg *m, const char *p, size_t n,
    const struct gw_msg_lim *lim)
{
	enum gw_msg_err e;

	if ((m->nhdrs == 0 || m->in_value) && (e = new_header(m, lim)) != 0)
		return e;
	if ((e = add_piece(m, p, n, lim)) != 0)
		return e;
	m->hdrs[m->nhdrs - 1].name_len += (uint32_t)n;
	return GW_MSG_OK;
}

/* The name is complete: it must be a token; the value starts here. */
enum gw_msg_err
gw_msg_end_name(struct gw_msg *m)
{
	struct gw_hdr *h;

	if (m->nhdrs == 0)
		return GW_MSG_NAME;
	h = &m->hdrs[m->nhdrs - 1];
	if (!gw_msg_valid_name(m->buf + h->name, h->name_len))
		return GW_MSG_NAME;
	m->in_value = true;
	h->value = (uint32_t)m->len;
	return GW_MSG_OK;
}

/* A piece of the current header's value. */
enum gw_msg_err
gw_msg_add_value(struct gw_msg *m, const char *p, size_t n,
    const struct gw_msg_lim *lim)
{
	enum gw_msg_err e;

	if (m->nhdrs == 0 || !m->in_value)
		return GW_MSG_NAME;
	if ((e = add_piece(m, p, n, lim)) != 0)
		return e;
	m->hdrs[m->nhdrs - 1].value_len += (uint32_t)n;
	return GW_MSG_OK;
}

/* First header called `name`; *count (optional) gets how many there are.
 * Lengths are compared first: most names differ in length. */
const struct gw_hdr *
gw_msg_find(const struct gw_msg *m, const char *name, unsigned *count)
{
	const struct gw_hdr *first = NULL;
	size_t n = strlen(name);
	unsigned c = 0;

	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct gw_hdr *h = &m->hdrs[i];
		if (h->name_len != n || strncasecmp(m->buf + h->name, name, n) != 0)
			continue;
		if (first == NULL)
			first = h;
		c++;
	}
	if (count)
		*count = c;
	return first;
}

/* A header's value without the trailing whitespace llhttp keeps. */
size_t
gw_msg_value(const struct gw_msg *m, const struct gw_hdr *h, const char **v)
{
	size_t n = h->value_len;

	*v = m->buf + h->value;
	while (n > 0 && ((*v)[n - 1] == ' ' || (*v)[n - 1] == '\t'))
		n--;
	return n;
}

/* gw_msg_find and gw_msg_value in one: the first `name`'s value, trimmed,
 * in *v and *vn (untouched when absent). */
const struct gw_hdr *
gw_msg_get(const struct gw_msg *m, const char *name, unsigned *count,
    const char **v, size_t *vn)
{
	const struct gw_hdr *h = gw_msg_find(m, name, count);

	if (h != NULL)
		*vn = gw_msg_value(m, h, v);
	return h;
}

/* Whether a comma-separated header value lists `token` (case-insensitive,
 * optional whitespace around elements), as Connection and Upgrade do. */
bool
gw_token_list_has(const char *v, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < len && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
			return true;
	}
	return false;
}

/* The reason phrase the gateway writes for a status: the IANA registry's
 * (RFC 9110 15 and the RFCs it lists). Also the phrase of every proxied
 * status line, so an upstream's phrase never reaches the client; a code
 * outside the registry gets "Unknown". */
const char *
gw_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 102: return "Processing";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 207: return "Multi-Status";
	case 208: return "Already Reported";
	case 226: return "IM Used";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 423: return "Locked";
	case 424: return "Failed Dependency";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 506: return "Variant Also Negotiates";
	case 507: return "Insufficient Storage";
	case 508: return "Loop Detected";
	case 511: return "Network Authentication Required";
	default:  return "Unknown";
	}
}
