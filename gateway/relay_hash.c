/* relay_hash.c -- a response body hashed (SHA-256) while it streams to the
 * client, with its last bytes held back until the hash has been judged:
 * a body on a known_bad list is cut off before its tail, so the client
 * never holds the whole file. */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "gateway/gw_priv.h"

/* Held back until the end: a client missing these bytes holds a file
 * whose hash is not the listed one, whatever the framing told it. */
#define GW_HASH_TAIL ((size_t)16 * 1024)

struct gw_bodyhash {
	EVP_MD_CTX      *md;
	struct evbuffer *hold;
	uint64_t         len;
};

void
gw_bodyhash_free(struct gw_bodyhash *bh)
{
	if (bh == NULL)
		return;
	EVP_MD_CTX_free(bh->md);
	if (bh->hold != NULL)
		evbuffer_free(bh->hold);
	free(bh);
}

/* Whether this request's answer must be hashed: a body on a path the
 * known_bad lists cover (a WebSocket carries none). */
static bool
wanted(const struct gw_conn *c)
{
	return !c->rq->upgrade && gw_knownbad_covers(c->cfg, c->rq->path);
}

int
gw_bodyhash_begin(struct gw_conn *c)
{
	struct gw_bodyhash *bh;

	if (!wanted(c))
		return 0;
	if ((bh = calloc(1, sizeof(*bh))) == NULL ||
	    (bh->md = EVP_MD_CTX_new()) == NULL ||
	    (bh->hold = evbuffer_new()) == NULL ||
	    EVP_DigestInit_ex(bh->md, EVP_sha256(), NULL) != 1) {
		gw_bodyhash_free(bh);
		return -1;
	}
	c->rq->bh = bh;
	return 0;
}

/* The request headers that would let a covered body reach the client in
 * a form other than the one hashed: parts of it (Range) or encoded
 * (Accept-Encoding, replaced by identity in gw_bodyhash_request_headers). */
bool
gw_bodyhash_drops(const struct gw_conn *c, const struct gw_msg *m,
    const struct gw_hdr *h)
{
	static const struct gw_name drop[] = {
		GW_NAME("range"), GW_NAME("if-range"),
		GW_NAME("accept-encoding"),
	};

	return c->rq->bh != NULL &&
	    gw_hdr_in(m, h, drop, sizeof(drop) / sizeof(drop[0]));
}

void
gw_bodyhash_request_headers(const struct gw_conn *c, struct gw_hw *w)
{
	if (c->rq->bh != NULL)
		GW_HW_LIT(w, "Accept-Encoding: identity\r\n");
}

/* NULL when the answer's head lets the body be judged whole as the
 * client will decode it; else why not (the client then gets a 502). */
const char *
gw_bodyhash_head_refused(const struct gw_conn *c, const struct gw_msg *m,
    int status)
{
	unsigned n;
	const char *v = NULL;
	size_t vn = 0;

	if (c->rq->bh == NULL)
		return NULL;
	if (status == 206)
		return "206 on a path the known_bad lists cover (Range was "
		    "not forwarded: a part cannot be judged)";
	gw_msg_get(m, "content-encoding", &n, &v, &vn);
	if (n > 1 || (n == 1 && !(vn == 8 && strncasecmp(v, "identity", 8) == 0)))
		return "Content-Encoding on a path the known_bad lists cover "
		    "(identity was asked for: the hash is of what the client "
		    "decodes)";
	return NULL;
}

void
gw_bodyhash_body(struct gw_conn *c, const char *p, size_t n)
{
	struct gw_bodyhash *bh = c->rq->bh;
	size_t held;

	if (EVP_DigestUpdate(bh->md, p, n) != 1 ||
	    evbuffer_add(bh->hold, p, n) != 0) {
		/* cannot judge it: the client must not get it whole */
		gw_log(GW_LOG_ERR, "client %s: cannot hash a response body "
		    "(out of memory): transfer aborted", c->peer_ip);
		gw_relay_abort(c);
		return;
	}
	bh->len += n;
	held = evbuffer_get_length(bh->hold);
	if (held > GW_HASH_TAIL)
		gw_relay_emit_buffer(c, bh->hold, held - GW_HASH_TAIL);
}

static void
hex(char *dst, const uint8_t *sha)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < GW_SHA256_LEN; i++) {
		dst[2 * i] = digits[sha[i] >> 4];
		dst[2 * i + 1] = digits[sha[i] & 15];
	}
	dst[2 * GW_SHA256_LEN] = '\0';
}

/* The body is complete: true when its held tail went to the client; false
 * when it is on a list (or could not be judged) and the caller must abort
 * the transfer instead of ending it. */
bool
gw_bodyhash_finish(struct gw_conn *c)
{
	struct gw_bodyhash *bh = c->rq->bh;
	struct gw_metrics *m = &c->w->rt->m;
	uint8_t sha[EVP_MAX_MD_SIZE];
	unsigned shalen = 0, line = 0;
	const char *file = NULL;
	char shahex[2 * GW_SHA256_LEN + 1];

	if (gw_relay_response_bodiless(c, c->rq->status))
		return true;
	if (EVP_DigestFinal_ex(bh->md, sha, &shalen) != 1 ||
	    shalen != GW_SHA256_LEN) {
		gw_log(GW_LOG_ERR, "client %s: cannot finish a response body's "
		    "hash: transfer aborted", c->peer_ip);
		return false;
	}
	atomic_fetch_add(&m->integrity[GW_INTEGRITY_KB_CHECKED], 1);
	if (!gw_knownbad_find(c->cfg->knownbad, sha, &file, &line)) {
		gw_relay_emit_buffer(c, bh->hold, evbuffer_get_length(bh->hold));
		return true;
	}
	atomic_fetch_add(&m->integrity[GW_INTEGRITY_KB_BLOCKED], 1);
	hex(shahex, sha);
	gw_log(GW_LOG_WARN, "client %s: response body of %llu bytes has the "
	    "SHA-256 %s listed at %s:%u (known bad): transfer aborted before "
	    "its last %zu bytes", c->rq->client_ip,
	    (unsigned long long)bh->len, shahex, file, line,
	    evbuffer_get_length(bh->hold));
	gw_relay_audit(c, "known-bad", file, line);
	return false;
}
