/* auth_session.c -- the __Host-pbxgate cookie: sealing, checking, revocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth_priv.h"
#include "policy/policy.h"

#define PAYLOAD_LEN  46		/* see put_payload() */
#define SEALED_LEN   (PAYLOAD_LEN + AUTH_SEAL_OVER)
#define CLOCK_SLACK  60		/* seconds a cookie may come from the future */
#define RESEAL_AFTER 60		/* seconds between idle-timer refreshes */

struct payload {
	uint8_t  level;
	int64_t  uid;
	uint32_t epoch;
	uint8_t  sid[16];
	int64_t  login, last;
};

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Layout: version 1 | level | uid 8 | epoch 4 | sid 16 | login 8 | last 8. */
static void
put_payload(const struct payload *pl, uint8_t b[PAYLOAD_LEN])
{
	b[0] = 1;
	b[1] = pl->level;
	put64(b + 2, (uint64_t)pl->uid);
	for (int i = 0; i < 4; i++)
		b[10 + i] = (uint8_t)(pl->epoch >> (24 - 8 * i));
	memcpy(b + 14, pl->sid, 16);
	put64(b + 30, (uint64_t)pl->login);
	put64(b + 38, (uint64_t)pl->last);
}

static int
get_payload(const uint8_t b[PAYLOAD_LEN], struct payload *pl)
{
	if (b[0] != 1 || (b[1] != AUTH_LEVEL_PASSWORD && b[1] != AUTH_LEVEL_MFA))
		return -1;
	pl->level = b[1];
	pl->uid = (int64_t)get64(b + 2);
	pl->epoch = (uint32_t)b[10] << 24 | (uint32_t)b[11] << 16 |
	    (uint32_t)b[12] << 8 | b[13];
	memcpy(pl->sid, b + 14, 16);
	pl->login = (int64_t)get64(b + 30);
	pl->last = (int64_t)get64(b + 38);
	return 0;
}

static int
aad_for(const struct auth_ctx *c, uint32_t kid, char *aad, size_t len)
{
	return auth_store_bind(c, aad, len, snprintf(aad, len, "%s:%u",
	    AUTH_COOKIE_NAME, kid));
}

/* Writes "NAME=KID.HEX; attributes" into buf; returns length or 0. */
static size_t
seal_cookie(struct auth_ctx *c, const struct payload *pl, char *buf, size_t len)
{
	const struct auth_key *k = &c->keys.k[0];
	uint8_t pt[PAYLOAD_LEN], sealed[SEALED_LEN];
	char aad[128], hex[2 * SEALED_LEN + 1];
	int n;

	put_payload(pl, pt);
	if ((n = aad_for(c, k->kid, aad, sizeof(aad))) < 0)
		return 0;
	if (auth_seal(k->cookie, aad, (size_t)n, pt, sizeof(pt), sealed) < 0)
		return 0;
	OPENSSL_cleanse(pt, sizeof(pt));
	auth_hex(sealed, sizeof(sealed), hex);
	n = snprintf(buf, len, "%s=%u.%s; Path=/; Secure; HttpOnly; SameSite=Lax",
	    AUTH_COOKIE_NAME, k->kid, hex);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* "KID." at the start of a cookie or token value: the id as seal_cookie
 * and auth_token_seal write it ("%u"), every id the key file takes
 * (1..4294967295, ten digits included), and one spelling per id: no
 * leading zero, no sign, no wrap past UINT32_MAX (4294967297 is not 1).
 * The offset past the '.', or 0 when v does not start so. */
static size_t
kid_parse(const char *v, size_t n, uint32_t *kid)
{
	uint64_t k = 0;
	size_t i = 0;

	while (i < n && i < 10 && v[i] >= '0' && v[i] <= '9')
		k = k * 10 + (uint64_t)(v[i++] - '0');
	if (i == 0 || v[0] == '0' || k > UINT32_MAX || i >= n || v[i] != '.')
		return 0;
	*kid = (uint32_t)k;
	return i + 1;
}

static int
unseal_cookie(struct auth_ctx *c, const char *v, size_t n, struct payload *pl)
{
	const struct auth_key *k;
	uint8_t sealed[SEALED_LEN], pt[PAYLOAD_LEN];
	char aad[128];
	size_t i;
	uint32_t kid = 0;
	int alen, r;

	if ((i = kid_parse(v, n, &kid)) == 0 ||
	    (k = auth_keys_find(&c->keys, kid)) == NULL)
		return -1;
	if (n - i != 2 * SEALED_LEN || auth_unhex(v + i, n - i, sealed, sizeof(sealed)) < 0)
		return -1;
	if ((alen = aad_for(c, kid, aad, sizeof(aad))) < 0)
		return -1;
	if (auth_unseal(k->cookie, aad, (size_t)alen, sealed, sizeof(sealed), pt) < 0)
		return -1;
	r = get_payload(pt, pl);
	OPENSSL_cleanse(pt, sizeof(pt));
	return r;
}

static const struct auth_mem_user *
mem_user(const struct auth_ctx *c, int64_t uid)
{
	size_t lo = 0, hi = c->nusers;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->users[mid].id == uid)
			return &c->users[mid];
		if (c->users[mid].id < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
cmp_sid(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Runs under the read lock: table lookups only. */
static enum auth_check
check_locked(struct auth_ctx *c, const struct payload *pl, time_t now,
    struct auth_identity *out)
{
	const struct auth_mem_user *u = mem_user(c, pl->uid);

	if (u == NULL || u->disabled || u->epoch != pl->epoch)
		return AUTH_REVOKED;
	if (c->nrevoked > 0 && bsearch(pl->sid, c->revoked, c->nrevoked, 16, cmp_sid) != NULL)
		return AUTH_REVOKED;
	memset(out, 0, sizeof(*out));
	snprintf(out->user, sizeof(out->user), "%s", u->name);
	snprintf(out->groups, sizeof(out->groups), "%s", u->groups);
	snprintf(out->lockdown, sizeof(out->lockdown), "%s", u->lockdown);
	out->admin = u->admin;
	return AUTH_OK;
}

enum auth_check
auth_session_check(struct auth_ctx *c, const char *hdr, size_t len, time_t now,
    struct auth_identity *out)
{
	const char *v;
	ssize_t n = auth_cookie_find(hdr, len, AUTH_COOKIE_NAME, &v);
	struct payload pl;
	enum auth_check r;

	if (n < 0)
		return AUTH_NONE;
	if (unseal_cookie(c, v, (size_t)n, &pl) < 0)
		return AUTH_INVALID;
	if (pl.login > (int64_t)now + CLOCK_SLACK || pl.last > (int64_t)now + CLOCK_SLACK ||
	    pl.last < pl.login)
		return AUTH_INVALID;
	if ((int64_t)now - pl.login > (int64_t)c->s.session_max ||
	    (int64_t)now - pl.last > (int64_t)c->s.session_idle)
		return AUTH_EXPIRED;
	pthread_rwlock_rdlock(&c->mem_mu);
	r = check_locked(c, &pl, now, out);
	pthread_rwlock_unlock(&c->mem_mu);
	if (r != AUTH_OK)
		return r;
	out->level = (enum auth_level)pl.level;
	out->mfa = pl.level == AUTH_LEVEL_MFA;
	out->login_time = (time_t)pl.login;
	out->last_seen = (time_t)pl.last;
	out->uid = pl.uid;
	out->epoch = pl.epoch;
	auth_hex(pl.sid, sizeof(pl.sid), out->sid);
	out->refresh = (int64_t)now - pl.last >= RESEAL_AFTER;
	return AUTH_OK;
}

size_t
auth_session_reseal(struct auth_ctx *c, const struct auth_identity *id,
    time_t now, char *buf, size_t buflen)
{
	struct payload pl = { .level = (uint8_t)id->level, .uid = id->uid,
	    .epoch = id->epoch, .login = id->login_time, .last = now };

	if (auth_unhex(id->sid, strlen(id->sid), pl.sid, sizeof(pl.sid)) != 16)
		return 0;
	return seal_cookie(c, &pl, buf, buflen);
}

const char *
auth_check_str(enum auth_check r)
{
	switch (r) {
	case AUTH_OK: return "ok";
	case AUTH_NONE: return "none";
	case AUTH_INVALID: return "invalid";
	case AUTH_EXPIRED: return "expired";
	case AUTH_REVOKED: return "revoked";
	}
	return "unknown";
}

/* Caller holds db_mu. Records the session and the login, then seals. */
int
auth_session_new(struct auth_ctx *c, const struct auth_user *u,
    enum auth_level lvl, const struct sockaddr *peer, time_t now,
    char *setcookie, size_t len, char sid_out[AUTH_SID_HEX])
{
	struct payload pl = { .level = (uint8_t)lvl, .uid = u->id, .epoch = u->epoch,
	    .login = now, .last = now };
	char sid[AUTH_SID_HEX], pid[AUTH_PID_HEX], ip[64];
	uint8_t praw[AUTH_PID_LEN];
	struct auth_session_new_row row;

	if (auth_random(pl.sid, sizeof(pl.sid)) < 0)
		return -1;
	auth_hex(pl.sid, sizeof(pl.sid), sid);
	pol_addr_peer_text(peer, ip, sizeof(ip));
	if (auth_random(praw, sizeof(praw)) < 0)
		return -1;
	auth_hex(praw, sizeof(praw), pid);
	row = (struct auth_session_new_row){ .sid = sid, .pid = pid, .ip = ip,
	    .uid = u->id, .created = now, .epoch = (int64_t)u->epoch,
	    .prune_before = (int64_t)now - c->s.session_max - 3600,
	    .level = (int)lvl };
	if (c->store->session_add(c, &row) < 0 ||
	    seal_cookie(c, &pl, setcookie, len) == 0)
		return -1;
	if (sid_out != NULL)
		memcpy(sid_out, sid, AUTH_SID_HEX);
	return 0;
}

/* Caller holds db_mu; tables are reloaded by the caller after commit. */
int
auth_session_revoke(struct auth_ctx *c, int64_t uid, const char *sid_hex)
{
	char err[256];

	return auth_revoke(c, uid, sid_hex, NULL, (int64_t)time(NULL), err,
	    sizeof(err));
}

int
auth_token_seal(struct auth_ctx *c, const char *purpose, const void *pt,
    size_t n, char *out, size_t outlen)
{
	const struct auth_key *k = &c->keys.k[0];
	uint8_t sealed[256];
	char aad[160], hex[2 * sizeof(sealed) + 1];
	int a, w;

	if (n + AUTH_SEAL_OVER > sizeof(sealed))
		return -1;
	a = auth_store_bind(c, aad, sizeof(aad), snprintf(aad, sizeof(aad),
	    "%s:%u", purpose, k->kid));
	if (a < 0 || auth_seal(k->cookie, aad, (size_t)a, pt, n, sealed) < 0)
		return -1;
	auth_hex(sealed, n + AUTH_SEAL_OVER, hex);
	w = snprintf(out, outlen, "%u.%s", k->kid, hex);
	return w > 0 && (size_t)w < outlen ? 0 : -1;
}

int
auth_token_open(struct auth_ctx *c, const char *purpose, const char *v,
    size_t vlen, void *pt, size_t n)
{
	const struct auth_key *k;
	uint8_t sealed[256];
	char aad[160];
	size_t i;
	uint32_t kid = 0;
	int a;

	if (n + AUTH_SEAL_OVER > sizeof(sealed))
		return -1;
	if ((i = kid_parse(v, vlen, &kid)) == 0 ||
	    (k = auth_keys_find(&c->keys, kid)) == NULL)
		return -1;
	if (vlen - i != 2 * (n + AUTH_SEAL_OVER) ||
	    auth_unhex(v + i, vlen - i, sealed, sizeof(sealed)) < 0)
		return -1;
	a = auth_store_bind(c, aad, sizeof(aad), snprintf(aad, sizeof(aad),
	    "%s:%u", purpose, kid));
	if (a < 0)
		return -1;
	return auth_unseal(k->cookie, aad, (size_t)a, sealed, n + AUTH_SEAL_OVER, pt);
}
