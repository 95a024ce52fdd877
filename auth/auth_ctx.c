/* auth_ctx.c -- opening the module: settings copy, keys, store, audit events. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth_priv.h"
#include "event/event.h"
#include "policy/policy.h"

/* The pages' only style; its hash goes into the CSP (style-src). */
const char auth_style[] =
    "body{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em}"
    "label{display:block;margin-top:1em}"
    /* a phone is 360-390 px wide: no control may be wider than the page */
    "input,textarea,button{font-size:1em;max-width:100%;box-sizing:border-box}"
    "textarea{width:100%}input[type=checkbox]{margin-right:.5em}"
    "li{overflow-wrap:anywhere}"
    ".err{color:#a00}.qr svg{width:14em;height:14em}code{word-break:break-all}";

static int
settings_copy(struct auth_settings *d, const struct auth_settings *s)
{
	*d = *s;
	d->user_db = s->user_db ? strdup(s->user_db) : NULL;
	d->secret_key = s->secret_key ? strdup(s->secret_key) : NULL;
	d->public_url = s->public_url ? strdup(s->public_url) : NULL;
	d->user_db_password_file = s->user_db_password_file ?
	    strdup(s->user_db_password_file) : NULL;
	d->cookie_name = AUTH_COOKIE_NAME;
	if ((s->user_db && !d->user_db) || (s->secret_key && !d->secret_key) ||
	    (s->public_url && !d->public_url) ||
	    (s->user_db_password_file && !d->user_db_password_file))
		return -1;
	return 0;
}

static bool
same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether the secret_key file still holds the keys c was opened with. A
 * file that cannot be read counts as changed: the context the reload then
 * opens says what is wrong with it (and refuses the reload). */
static bool
same_keys(const struct auth_ctx *c)
{
	struct auth_keys now;
	char err[512];
	bool same;

	if (auth_keys_read(c->s.secret_key, &now, err, sizeof(err)) < 0)
		return false;
	same = auth_keys_equal(&c->keys, &now);
	OPENSSL_cleanse(&now, sizeof(now));
	return same;
}

/* Every field a context is opened with, but the login pool's size
 * (login_threads, login_queue): the pool is the process's, not a
 * context's. The user store named by the same path counts as the same;
 * the secret_key file must also still hold the same keys, so that a key
 * added or removed in place (a rotation, a compromised key withdrawn)
 * takes effect at the reload as it would at a restart. */
bool
auth_settings_same(const struct auth_ctx *c, const struct auth_settings *s)
{
	const struct auth_settings *o = &c->s;

	return same_str(o->user_db, s->user_db) &&
	    same_str(o->user_db_password_file, s->user_db_password_file) &&
	    o->user_db_pool == s->user_db_pool &&
	    same_str(o->secret_key, s->secret_key) &&
	    o->argon2_m_kib == s->argon2_m_kib && o->argon2_t == s->argon2_t &&
	    o->argon2_p == s->argon2_p && o->totp_step == s->totp_step &&
	    o->totp_digits == s->totp_digits && o->totp_skew == s->totp_skew &&
	    o->session_idle == s->session_idle &&
	    o->session_max == s->session_max &&
	    o->login_max_failures == s->login_max_failures &&
	    o->login_failure_window == s->login_failure_window &&
	    o->login_ban_time == s->login_ban_time &&
	    same_str(o->public_url, s->public_url) &&
	    o->enrol_link_lifetime == s->enrol_link_lifetime &&
	    o->mfa_self_enrol == s->mfa_self_enrol &&
	    strcmp(o->title, s->title) == 0 &&
	    strcmp(o->totp_issuer, s->totp_issuer) == 0 &&
	    strcmp(o->site, s->site) == 0 && same_keys(c);
}

void
auth_style_hash(char out[64])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(auth_style, strlen(auth_style), md, &n, EVP_sha256(), NULL);
	out[0] = 's'; out[1] = 'h'; out[2] = 'a'; out[3] = '2';
	out[4] = '5'; out[5] = '6'; out[6] = '-';	/* CSP hash-source prefix */
	EVP_EncodeBlock((unsigned char *)out + 7, md, 32);	/* NUL-terminates */
}

/* A context with its locks and its own copy of s, nothing opened: what
 * auth_open and auth_open_store share. NULL with err when out of memory. */
static struct auth_ctx *
ctx_new(const struct auth_settings *s, char *err, size_t errlen)
{
	struct auth_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->db_mu, NULL);
	pthread_rwlock_init(&c->mem_mu, NULL);
	pthread_mutex_init(&c->live_mu, NULL);
	if (settings_copy(&c->s, s) < 0) {
		snprintf(err, errlen, "out of memory");
		auth_close(c);
		return NULL;
	}
	return c;
}

/* A missing key file is made only for a store without users: for one
 * with users it was lost (moved, deleted, or a reload caught an editor
 * replacing it), and a new key would leave every session, TOTP secret
 * and recovery code of theirs unreadable, locking MFA users out. */
static int
keys_load(struct auth_ctx *c, char *err, size_t errlen)
{
	char why[512];

	if (auth_keys_load(c->s.secret_key, c->nusers == 0, &c->keys, why,
	    sizeof(why)) == 0)
		return 0;
	if (c->nusers == 0)
		snprintf(err, errlen, "%s", why);
	else
		snprintf(err, errlen, "%s; the user store %s has users, whose "
		    "sessions and TOTP secrets are sealed with this key, so "
		    "pbxgate does not make a new one in its place: restore the "
		    "file", why, c->s.user_db);
	return -1;
}

struct auth_ctx *
auth_open(const struct auth_settings *s, auth_audit_fn audit, void *audit_arg,
    char *err, size_t errlen)
{
	struct auth_ctx *c = ctx_new(s, err, errlen);

	if (c == NULL)
		return NULL;
	c->audit = audit;
	c->audit_arg = audit_arg;
	if (c->s.user_db == NULL || c->s.secret_key == NULL) {
		snprintf(err, errlen, "login needs \"user_db FILE\" in the config");
		goto fail;
	}
	auth_style_hash(c->style_hash);
	if (auth_store_open(c, err, errlen) < 0 ||
	    auth_store_reload(c, true, err, errlen) < 0 ||
	    keys_load(c, err, errlen) < 0)
		goto fail;
	return c;
fail:
	auth_close(c);
	return NULL;
}

/* The store alone, for copying it (auth_migrate.c): no keys, since rows
 * are copied sealed, and no in-memory tables. user_db replaces the
 * settings' store; the password file, if any, is the settings' own. */
struct auth_ctx *
auth_open_store(const struct auth_settings *s, const char *user_db, char *err,
    size_t errlen)
{
	struct auth_settings one = *s;
	struct auth_ctx *c;

	one.user_db = (char *)user_db;	/* copied, never written */
	if ((c = ctx_new(&one, err, errlen)) == NULL)
		return NULL;
	if (auth_store_open(c, err, errlen) < 0) {
		auth_close(c);
		return NULL;
	}
	return c;
}

void
auth_close(struct auth_ctx *c)
{
	if (c == NULL)
		return;
	auth_live_stop(c);
	auth_pg_pool_close(c);
	auth_store_close(c);
	OPENSSL_cleanse(&c->keys, sizeof(c->keys));
	free(c->users);
	free(c->revoked);
	auth_tables_free(c->live_next);	/* read, never delivered */
	auth_settings_free(&c->s);
	pthread_mutex_destroy(&c->db_mu);
	pthread_rwlock_destroy(&c->mem_mu);
	pthread_mutex_destroy(&c->live_mu);
	free(c);
}

/* Never waits for the store mutex: when a pool thread holds it, that
 * thread's own change reloads the tables and the next tick catches up.
 * With a listener, the store is read on its thread, not here. */
int
auth_refresh(struct auth_ctx *c, char *err, size_t errlen)
{
	if (c->live != NULL)
		return auth_live_status(c, err, errlen);
	if (auth_store_reload_try(c, err, errlen) < 0)
		return -1;
	auth_gauges_refresh_try(c, time(NULL));
	return 0;
}

/* One folding rule for the store and the policy's `user` rules, so that
 * a rule names users exactly as the store keeps them. */
_Static_assert(AUTH_NAME_MAX == POL_NAME_MAX, "user name bounds differ");

int
auth_name_fold(const char *name, char *out)
{
	return pol_name_fold(name, out, AUTH_NAME_MAX + 1);
}

/* The events that record a refusal (event.outcome "failure"). */
static const char *
audit_outcome(const char *event)
{
	return strcmp(event, "login_failure") == 0 ||
	    strcmp(event, "reauth_failure") == 0 ||
	    strcmp(event, "login_ban") == 0 ? "failure" : "success";
}

/* One audit line per event (event/event.h, docs/logging.md); callers pass
 * only names, addresses and fixed words, never passwords, codes or
 * cookies. */
void
auth_audit(struct auth_ctx *c, const char *event, const char *user,
    const struct auth_http_req *req, const char *detail)
{
	struct ev_audit *ev;
	char ip[64], *line;
	size_t n;

	if (c->audit == NULL)
		return;
	pol_addr_peer_text(req->peer, ip, sizeof(ip));
	ev = ev_audit_new("auth", event, audit_outcome(event));
	ev_audit_str(ev, "client.ip", ip);
	ev_audit_str(ev, "user.name", user);
	if (req->request_id != NULL && req->request_id[0] != '\0')
		ev_audit_str(ev, "http.request.id", req->request_id);
	if (detail != NULL)
		ev_audit_str(ev, "event.reason", detail);
	if (c->s.site[0] != '\0')	/* a site's store (gateway sites) */
		ev_audit_str(ev, "pbxgate.site", c->s.site);
	if ((line = ev_audit_line(ev, &n)) == NULL)
		return;
	c->audit(c->audit_arg, event, line);
	free(line);
}

int
auth_site_bind(const struct auth_ctx *c, char *buf, size_t len, int used)
{
	int n;

	if (used < 0 || (size_t)used >= len)
		return -1;
	if (c->s.site[0] == '\0')
		return used;
	n = snprintf(buf + used, len - (size_t)used, "%csite=%s", '\0',
	    c->s.site);
	if (n < 0 || (size_t)n >= len - (size_t)used)
		return -1;
	return used + n;
}

int
auth_store_bind(const struct auth_ctx *c, char *buf, size_t len, int used)
{
	int n;

	if ((used = auth_site_bind(c, buf, len, used)) < 0)
		return -1;
	n = snprintf(buf + used, len - (size_t)used, "%cstore=%016llx", '\0',
	    (unsigned long long)(uint64_t)c->store_id);
	if (n < 0 || (size_t)n >= len - (size_t)used)
		return -1;
	return used + n;
}

/* The TOTP secret is sealed with the user id as AAD, so a sealed secret
 * copied to another row does not decrypt. */
int
auth_totp_seal(struct auth_ctx *c, const uint8_t secret[AUTH_TOTP_SECRET],
    int64_t uid, uint8_t *out, uint32_t *kid)
{
	char aad[32];
	int n = snprintf(aad, sizeof(aad), "totp:%lld", (long long)uid);

	*kid = c->keys.k[0].kid;
	return auth_seal(c->keys.k[0].totp, aad, (size_t)n, secret, AUTH_TOTP_SECRET, out);
}

int
auth_totp_secret(struct auth_ctx *c, const struct auth_user *u,
    uint8_t out[AUTH_TOTP_SECRET])
{
	const struct auth_key *k = auth_keys_find(&c->keys, u->totp_kid);
	char aad[32];
	int n = snprintf(aad, sizeof(aad), "totp:%lld", (long long)u->id);

	if (!u->has_totp || k == NULL)
		return -1;
	return auth_unseal(k->totp, aad, (size_t)n, u->totp_sealed,
	    sizeof(u->totp_sealed), out);
}
