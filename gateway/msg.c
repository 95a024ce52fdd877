/* msg.c -- bounded storage of one HTTP message head as llhttp hands it over. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw_internal.h"

void
gw_msg_reset(struct gw_msg *m)
{
	m->len = 0;
	m->url = m->url_len = 0;
	m->status_text = m->status_text_len = 0;
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
