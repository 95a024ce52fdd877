/* relay_hash.c -- a response body hashed (SHA-256) while it streams to the
 * client, with its last bytes held back until the hash has been judged:
 * a body on a known_bad list, or a pinned one (integrity manifest) that
 * differs in enforce mode, is cut off before its tail, so the client never
 * holds the whole file; a small pinned body is held whole with its head
 * and a different one answered with the integrity page instead. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "event/event.h"
#include "gateway/gw_priv.h"

/* Held back until the end: a client missing these bytes holds a file
 * whose hash is not the listed one, whatever the framing told it. */
#define GW_HASH_TAIL ((size_t)16 * 1024)
/* Pinned bodies up to this size are held whole (with their head) in
 * enforce mode, so that a changed one can be answered with a page. */
#define GW_PIN_HOLD ((uint64_t)4 * 1024 * 1024)

struct gw_bodyhash {
	EVP_MD_CTX          *md;
	struct evbuffer     *hold;
	struct evbuffer     *head;	/* held with the body, or NULL */
	const struct gw_pin *pin;	/* the manifest's entry, or NULL */
	uint64_t             len;
	bool                 kb;	/* on a path known_bad covers */
	bool                 enforce;	/* the pin is enforced */
	bool                 overlong;	/* held whole: longer than pinned */
};

void
gw_bodyhash_free(struct gw_bodyhash *bh)
{
	if (bh == NULL)
		return;
	EVP_MD_CTX_free(bh->md);
	if (bh->hold != NULL)
		evbuffer_free(bh->hold);
	if (bh->head != NULL)
		evbuffer_free(bh->head);
	free(bh);
}

/* Whether this request's answer must be hashed: a body on a path the
 * known_bad lists cover or in the integrity manifest (a WebSocket carries
 * none). */
int
gw_bodyhash_begin(struct gw_conn *c)
{
	struct gw_bodyhash *bh;
	const struct gw_pin *pin;
	bool kb;

	if (c->rq->upgrade)
		return 0;
	kb = gw_knownbad_covers(c->site, c->rq->path);
	pin = gw_pins_find(c->site->pins, c->rq->path);
	if (!kb && pin == NULL)
		return 0;
	if ((bh = calloc(1, sizeof(*bh))) == NULL ||
	    (bh->md = EVP_MD_CTX_new()) == NULL ||
	    (bh->hold = evbuffer_new()) == NULL ||
	    EVP_DigestInit_ex(bh->md, EVP_sha256(), NULL) != 1) {
		gw_bodyhash_free(bh);
		return -1;
	}
	bh->kb = kb;
	bh->pin = pin;
	bh->enforce = pin != NULL && c->site->integrity_enforce;
	if (bh->enforce && pin->size <= GW_PIN_HOLD &&
	    (bh->head = evbuffer_new()) == NULL) {
		gw_bodyhash_free(bh);
		return -1;
	}
	c->rq->bh = bh;
	return 0;
}

struct evbuffer *
gw_bodyhash_head_out(struct gw_conn *c)
{
	struct gw_bodyhash *bh = c->rq->bh;

	return bh != NULL && bh->head != NULL ? bh->head :
	    gw_io_output(c->io);
}

/* The integrity page (502) with the request id, or a plain 502 when the
 * request has no id. */
static void
refuse_page(struct gw_conn *c, const char *why)
{
	struct auth_http_resp resp;
	const char *id = gw_reqid(c), *v = NULL;
	char lang[256];
	size_t n = 0;

	if (id == NULL || id[0] == '\0') {
		gw_relay_reject(c, 502, why);
		return;
	}
	/* the header's value is not NUL-terminated; a longer one is cut,
	 * which only loses the languages least preferred */
	gw_msg_get(&c->rq->rp.req, "accept-language", NULL, &v, &n);
	snprintf(lang, sizeof(lang), "%.*s", (int)(n < sizeof(lang) ? n :
	    sizeof(lang) - 1), v != NULL ? v : "");
	auth_page_integrity(lang, id, &resp);
	gw_relay_reject_page(c, &resp, why);
	auth_http_resp_free(&resp);
}

/* The record of a manifest finding: the pin's FILE:LINE (none for a file
 * the manifest does not hold), the mode, the body's size and SHA-256 (not
 * computed past the size limit). */
static void
audit_pin(struct gw_conn *c, const char *decision, const struct gw_pin *pin,
    uint64_t len, const char *shahex)
{
	struct ev_audit *ev = gw_relay_audit_begin(c, "integrity", decision,
	    pin != NULL ? gw_pins_file(c->site->pins) : NULL,
	    pin != NULL ? pin->line : 0);

	ev_audit_str(ev, "pbxgate.integrity.mode", c->site->integrity_enforce ?
	    "enforce" : "monitor");
	ev_audit_int(ev, "file.size", (long long)len);
	if (shahex != NULL)
		ev_audit_str(ev, "file.hash.sha256", shahex);
	gw_relay_audit_end(c, ev);
}

/* A file under integrity_paths that the manifest does not hold: new since
 * the recording, so nobody has reviewed it. */
int
gw_bodyhash_unpinned(struct gw_conn *c)
{
	struct gw_metrics *m = &c->w->rt->m;
	bool enforce = c->site->integrity_enforce;

	if (c->rq->upgrade || c->site->pins == NULL ||
	    !gw_pins_under_prefix(c->site, c->rq->path) ||
	    gw_pins_find(c->site->pins, c->rq->path) != NULL)
		return 0;
	atomic_fetch_add(&m->integrity[enforce ? GW_INTEGRITY_UNPINNED_ENF :
	    GW_INTEGRITY_UNPINNED_MON], 1);
	audit_pin(c, enforce ? "integrity-unpinned-refused" :
	    "integrity-unpinned", NULL, 0, NULL);
	if (!enforce)
		return 0;
	refuse_page(c, "integrity: a file under integrity_paths that the "
	    "manifest does not hold");
	return -1;
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
	/* a pinned body must come back whole to be judged: never a 304 */
	static const struct gw_name cond[] = {
		GW_NAME("if-none-match"), GW_NAME("if-modified-since"),
		GW_NAME("if-match"), GW_NAME("if-unmodified-since"),
	};

	if (c->rq->bh == NULL)
		return false;
	return gw_hdr_in(m, h, drop, sizeof(drop) / sizeof(drop[0])) ||
	    (c->rq->bh->pin != NULL &&
	    gw_hdr_in(m, h, cond, sizeof(cond) / sizeof(cond[0])));
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

	if (c->rq->bh == NULL || !(c->rq->bh->kb || c->rq->bh->enforce))
		return NULL;
	if (status == 206)
		return "206 on a hashed path (known_bad or pinned: Range was "
		    "not forwarded, a part cannot be judged)";
	if (status == 304 && c->rq->bh->enforce)
		return "304 on a pinned path (the conditional headers were "
		    "not forwarded: only a whole body can be judged)";
	gw_msg_get(m, "content-encoding", &n, &v, &vn);
	if (n > 1 || (n == 1 && !(vn == 8 && strncasecmp(v, "identity", 8) == 0)))
		return "Content-Encoding on a hashed path (known_bad or "
		    "pinned: identity was asked for, the hash is of what the "
		    "client decodes)";
	return NULL;
}

void
gw_bodyhash_body(struct gw_conn *c, const char *p, size_t n)
{
	struct gw_bodyhash *bh = c->rq->bh;
	size_t held;

	if (bh->overlong)
		return;
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
	if (bh->head != NULL) {
		/* held whole: past the pinned size it can only differ, and
		 * is kept no longer (the page answers it) */
		if (bh->len > bh->pin->size) {
			bh->overlong = true;
			evbuffer_drain(bh->hold, held);
		}
		return;
	}
	if (bh->pin != NULL && !bh->kb && !bh->enforce)
		gw_relay_emit_buffer(c, bh->hold, held);	/* monitor */
	else if (held > GW_HASH_TAIL)
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

/* The known_bad judgement: true when the body is on a list (audited). */
static bool
known_bad(struct gw_conn *c, const uint8_t *sha)
{
	struct gw_bodyhash *bh = c->rq->bh;
	struct gw_metrics *m = &c->w->rt->m;
	unsigned line = 0;
	const char *file = NULL;
	char shahex[2 * GW_SHA256_LEN + 1];
	struct ev_audit *ev;

	atomic_fetch_add(&m->integrity[GW_INTEGRITY_KB_CHECKED], 1);
	if (!gw_knownbad_find(c->site->knownbad, sha, &file, &line))
		return false;
	atomic_fetch_add(&m->integrity[GW_INTEGRITY_KB_BLOCKED], 1);
	hex(shahex, sha);
	gw_log(GW_LOG_WARN, "client %s: response body of %llu bytes has the "
	    "SHA-256 %s listed at %s:%u (known bad): transfer aborted before "
	    "its last %zu bytes", c->rq->client_ip,
	    (unsigned long long)bh->len, shahex, file, line,
	    evbuffer_get_length(bh->hold));
	ev = gw_relay_audit_begin(c, "integrity", "known-bad", file, line);
	ev_audit_int(ev, "file.size", (long long)bh->len);
	ev_audit_str(ev, "file.hash.sha256", shahex);
	gw_relay_audit_end(c, ev);
	return true;
}

/* The manifest's judgement: true when the body is the pinned one. A
 * different one is logged, audited and counted in either mode. */
static bool
pinned_ok(struct gw_conn *c, const uint8_t *sha)
{
	struct gw_bodyhash *bh = c->rq->bh;
	struct gw_metrics *m = &c->w->rt->m;
	char shahex[2 * GW_SHA256_LEN + 1];

	atomic_fetch_add(&m->integrity[bh->enforce ?
	    GW_INTEGRITY_PIN_CHECKED_ENF : GW_INTEGRITY_PIN_CHECKED_MON], 1);
	if (!bh->overlong && bh->len == bh->pin->size &&
	    CRYPTO_memcmp(sha, bh->pin->sha, GW_SHA256_LEN) == 0)
		return true;
	atomic_fetch_add(&m->integrity[bh->enforce ?
	    GW_INTEGRITY_PIN_CHANGED_ENF : GW_INTEGRITY_PIN_CHANGED_MON], 1);
	hex(shahex, sha);
	gw_log(GW_LOG_WARN, "client %s: response body for a path pinned at "
	    "%s:%u differs from the manifest (%s%llu bytes, SHA-256 %s): %s",
	    c->rq->client_ip, gw_pins_file(c->site->pins), bh->pin->line,
	    bh->overlong ? "more than " : "", (unsigned long long)bh->len,
	    bh->overlong ? "not computed" : shahex, bh->enforce ? "refused" :
	    "passed (monitor)");
	audit_pin(c, bh->enforce ? "integrity-refused" : "integrity-mismatch",
	    bh->pin, bh->len, bh->overlong ? NULL : shahex);
	return false;
}

/* A body held whole with its head goes out as the upstream framed it. */
static void
release_whole(struct gw_conn *c)
{
	struct gw_bodyhash *bh = c->rq->bh;

	evbuffer_add_buffer(gw_io_output(c->io), bh->head);
	gw_relay_emit_buffer(c, bh->hold, evbuffer_get_length(bh->hold));
}

/* A head held with its body never went out: both are dropped, and the
 * request can be answered afresh. */
bool
gw_bodyhash_unsend(struct gw_conn *c)
{
	struct gw_bodyhash *bh = c->rq->bh;

	if (bh == NULL || bh->head == NULL)
		return false;
	c->rq->bytes_out -= evbuffer_get_length(bh->head);
	evbuffer_drain(bh->head, evbuffer_get_length(bh->head));
	evbuffer_drain(bh->hold, evbuffer_get_length(bh->hold));
	c->rq->resp_started = false;
	c->rq->resp_chunked = false;
	c->rq->resp_until_close = false;
	return true;
}

static void
refuse_whole(struct gw_conn *c)
{
	(void)gw_bodyhash_unsend(c);
	refuse_page(c, "integrity: a pinned file differs from the manifest");
}

/* The body is complete: PASS when its held tail went to the client; ABORT
 * when it is on a list, a refused pin streamed in part, or could not be
 * judged (the caller aborts the transfer instead of ending it); ANSWERED
 * when the integrity page replaced it. */
enum gw_bh_end
gw_bodyhash_finish(struct gw_conn *c)
{
	struct gw_bodyhash *bh = c->rq->bh;
	uint8_t sha[EVP_MAX_MD_SIZE];
	unsigned shalen = 0;

	if (c->rq->is_head || (bh->pin == NULL &&
	    gw_relay_response_bodiless(c, c->rq->status))) {
		if (bh->head != NULL)
			evbuffer_add_buffer(gw_io_output(c->io), bh->head);
		return GW_BH_PASS;
	}
	if (EVP_DigestFinal_ex(bh->md, sha, &shalen) != 1 ||
	    shalen != GW_SHA256_LEN) {
		gw_log(GW_LOG_ERR, "client %s: cannot finish a response body's "
		    "hash: transfer aborted", c->peer_ip);
		return GW_BH_ABORT;
	}
	if (bh->kb && known_bad(c, sha))
		return GW_BH_ABORT;
	if (bh->pin == NULL || pinned_ok(c, sha) || !bh->enforce) {
		if (bh->head != NULL)
			release_whole(c);
		else
			gw_relay_emit_buffer(c, bh->hold,
			    evbuffer_get_length(bh->hold));
		return GW_BH_PASS;
	}
	if (bh->head == NULL)
		return GW_BH_ABORT;
	refuse_whole(c);
	return GW_BH_ANSWERED;
}
