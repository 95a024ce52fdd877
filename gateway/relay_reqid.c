/* relay_reqid.c -- the request id: 128 random bits per request, or the one
 * a trusted proxy sent; it goes upstream, back to the client, onto the
 * gateway's own pages and into every log line of the request. */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "gateway/gw_priv.h"

/* Ids come from a per-thread pool of DRBG output, refilled REQID_POOL
 * bytes at a time: RAND_bytes costs 5-7 us a call here (the public DRBG's
 * lock and its fork check, a getpid(2)), far more than 16 bytes of its
 * output. Each id is still 128 bits straight from the DRBG, used once and
 * wiped from the pool as it is taken. A forked child starts with an empty
 * pool (pool_forked), so parent and child never hand out the same bytes. */
#define REQID_BYTES 16
#define REQID_POOL  (64 * REQID_BYTES)

static _Thread_local unsigned char pool[REQID_POOL];
static _Thread_local size_t pool_used = REQID_POOL;	/* bytes taken;
							   REQID_POOL: empty */
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void
pool_forked(void)
{
	/* the one thread of the child is the one that forked */
	OPENSSL_cleanse(pool, sizeof(pool));
	pool_used = REQID_POOL;
}

static void
pool_init(void)
{
	(void)pthread_atfork(NULL, NULL, pool_forked);
}

/* 16 unpredictable bytes into r; -1 when the DRBG fails (the pool stays
 * empty and the next call asks again). */
static int
pool_take(unsigned char r[REQID_BYTES])
{
	(void)pthread_once(&pool_once, pool_init);
	if (pool_used > REQID_POOL - REQID_BYTES) {
		if (RAND_bytes(pool, sizeof(pool)) != 1) {
			OPENSSL_cleanse(pool, sizeof(pool));
			pool_used = REQID_POOL;
			return -1;
		}
		pool_used = 0;
	}
	memcpy(r, pool + pool_used, REQID_BYTES);
	OPENSSL_cleanse(pool + pool_used, REQID_BYTES);
	pool_used += REQID_BYTES;
	return 0;
}

/* A placeholder no generator can make (not hex): seen only if the random
 * source failed, which refuses the request (gw_reqid_adopt). */
static const char unavailable[] = "unavailable";

int
gw_reqid_new(char out[GW_REQID_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[REQID_BYTES];

	if (pool_take(r) < 0)
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
	if (gw_reqid_new(c->rq->reqid) == 0)
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
