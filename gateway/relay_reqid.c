/* relay_reqid.c -- the request id: 128 random bits per request, or the one
 * a trusted proxy sent; it goes upstream, back to the client, onto the
 * gateway's own pages and into every log line of the request. */
#include <string.h>

#include <openssl/rand.h>

#include "gateway/gw_priv.h"

/* A placeholder no generator can make (not hex): seen only if the random
 * source failed, which refuses the request (gw_reqid_adopt). */
static const char unavailable[] = "unavailable";

static int
reqid_new(char out[GW_REQID_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[2 * sizeof(r)] = '\0';
	return 0;
}

/* 1..64 of [A-Za-z0-9._-]: safe in a header, a log field and a page as is. */
bool
gw_reqid_valid(const char *v, size_t n)
{
	if (n == 0 || n > GW_REQID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

int
gw_reqid_assign(struct gw_conn *c)
{
	if (reqid_new(c->rq->reqid) == 0)
		return 0;
	memcpy(c->rq->reqid, unavailable, sizeof(unavailable));
	return -1;
}

/* Only a trusted proxy's id is kept, and only exactly one valid field;
 * anything else keeps the fresh id (a client cannot choose the id that
 * helpdesk and logs will trust). -1 when the request has no usable id. */
int
gw_reqid_adopt(struct gw_conn *c)
{
	const struct gw_config *cfg = c->cfg;
	const char *v = NULL;
	size_t n = 0;
	unsigned cnt = 0;

	bool ok = strcmp(gw_reqid(c), unavailable) != 0;

	if (cfg->ntrusted == 0 ||
	    !pol_cidr_list_contains(cfg->trusted, cfg->ntrusted,
	    (struct sockaddr *)&c->peer))
		return ok ? 0 : -1;
	if (gw_msg_get(&c->rq->rp.req, "x-request-id", &cnt, &v, &n) == NULL ||
	    cnt != 1 || !gw_reqid_valid(v, n))
		return ok ? 0 : -1;
	memcpy(c->rq->reqid, v, n);
	c->rq->reqid[n] = '\0';
	return 0;
}

const char *
gw_reqid(struct gw_conn *c)
{
	if (c->rq->reqid[0] == '\0')
		(void)gw_reqid_assign(c);
	return c->rq->reqid;
}
