/* head_write.c -- HTTP heads assembled in a stack buffer and handed to the
 * evbuffer in one piece. A proxied request and its response are written as
 * some forty small pieces; one evbuffer_add (and one printf) per piece was
 * the largest user-space cost after TLS and llhttp in a profile of 1 KiB
 * keep-alive GETs, and every add to a socket's output also ran its
 * callback. Numbers are formatted here too, without printf. */
#include <string.h>

#include <event2/buffer.h>

#include "gateway/gw_priv.h"

void
gw_hw_init(struct gw_hw *w, struct evbuffer *out)
{
	w->out = out;
	w->n = 0;
}

void
gw_hw_flush(struct gw_hw *w)
{
	if (w->n > 0)
		evbuffer_add(w->out, w->buf, w->n);
	w->n = 0;
}

void
gw_hw_put(struct gw_hw *w, const char *p, size_t n)
{
	if (n > sizeof(w->buf) - w->n) {
		gw_hw_flush(w);
		if (n > sizeof(w->buf)) {	/* a long header value */
			evbuffer_add(w->out, p, n);
			return;
		}
	}
	memcpy(w->buf + w->n, p, n);
	w->n += n;
}

void
gw_hw_str(struct gw_hw *w, const char *s)
{
	gw_hw_put(w, s, strlen(s));
}

void
gw_hw_u64(struct gw_hw *w, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && i > 0);
	gw_hw_put(w, d + i, sizeof(d) - i);
}

/* "Name: value\r\n" */
void
gw_hw_header(struct gw_hw *w, const char *name, size_t nlen, const char *v,
    size_t vlen)
{
	gw_hw_put(w, name, nlen);
	GW_HW_LIT(w, ": ");
	gw_hw_put(w, v, vlen);
	GW_HW_LIT(w, "\r\n");
}
