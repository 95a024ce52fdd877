/* relay_gate.c -- who a request comes from and whether it may pass: the
 * trusted-proxy address chain, then lockdown policy and login. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include <openssl/crypto.h>

#include "event/event.h"
#include "gateway/gw_priv.h"

/* Walks X-Forwarded-For from the right: the first address that is not a
 * trusted proxy is the client. An element the walk reaches that is not a
 * bare IP address (garbage, empty, with a port, bracketed, a zone) fails
 * the request: guessing would make the client the proxy itself, or
 * whatever the last good element was. So does a chain of trusted proxies
 * longer than GW_XFF_MAX. Elements left of the client are never read. */
#define GW_XFF_MAX 64

int
gw_relay_xff_client(struct gw_conn *c, const char *v, size_t n)
{
	const struct gw_config *cfg = c->cfg;
	size_t end = n;

	for (int i = 0; i < GW_XFF_MAX; i++) {
		size_t s = end, e;
		struct sockaddr_storage ss;
		struct pol_addr a;

		while (s > 0 && v[s - 1] != ',')
			s--;
		e = end;
		end = s > 0 ? s - 1 : 0;
		while (s < e && (v[s] == ' ' || v[s] == '\t'))
			s++;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (pol_addr_parse(v + s, e - s, &a) == -1)
			return -1;
		/* The text logs and X-Real-IP carry is the address judged, in
		 * the one spelling every log uses (::ffff:a.b.c.d as IPv4). */
		pol_addr_format(&a, c->rq->client_ip, sizeof(c->rq->client_ip));
		(void)pol_addr_to_sockaddr(&a, 0, &ss);
		memcpy(&c->rq->client, &ss, sizeof(c->rq->client));
		if (!pol_cidr_list_contains(cfg->trusted, cfg->ntrusted,
		    (struct sockaddr *)&ss))
			return 0;
		if (s == 0)
			return 0;	/* all trusted: the left-most stands */
	}
	return -1;
}

/* Header lookup for `header NAME REGEX` rules: repeated headers joined with
 * ", ", copied NUL-terminated into a per-call scratch buffer. */
struct hdr_scratch {
	struct gw_conn *c;
	size_t          cap;
	char            buf[];	/* the whole head fits: max_headers_size + 1 */
};

static struct hdr_scratch *
scratch_new(struct gw_conn *c)
{
	size_t cap = c->cfg->lim.header_total + 1;
	struct hdr_scratch *hs = malloc(sizeof(*hs) + cap);

	if (hs != NULL) {
		hs->c = c;
		hs->cap = cap;
	}
	return hs;
}

static const char *
policy_header(void *arg, const char *name)
{
	struct hdr_scratch *hs = arg;
	const struct gw_msg *m = &hs->c->rq->rp.req;
	size_t o = 0;
	bool found = false;

	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct gw_hdr *h = &m->hdrs[i];
		size_t n = h->value_len;
		if (!gw_hdr_is(m, h, name))
			continue;
		if (found && o + 2 < hs->cap) {
			memcpy(hs->buf + o, ", ", 2);
			o += 2;
		}
		if (n > hs->cap - 1 - o)
			n = hs->cap - 1 - o;
		memcpy(hs->buf + o, m->buf + h->value, n);
		o += n;
		found = true;
	}
	hs->buf[o] = '\0';
	return found ? hs->buf : NULL;
}

/* Splits the target at '?', normalises the path (the string that is both
 * judged and sent upstream) and keeps path + query in c->rq->target. The path
 * alone, which the policy judges, follows in the same buffer (c->rq->path, not
 * separately owned): no second allocation per request. */
static int
normalise_target(struct gw_conn *c, const char *t, size_t n)
{
	const char *q = memchr(t, '?', n);
	size_t rawlen = q ? (size_t)(q - t) : n, qlen = q ? n - rawlen : 0;
	/* normalising never grows a path more than re-encoding every byte */
	size_t cap = 3 * rawlen + 2, plen;
	char err[256], *buf;

	free(c->rq->target);
	c->rq->path = NULL;
	c->rq->target = malloc(cap + qlen + 1);
	if (c->rq->target == NULL)
		return gw_relay_reject(c, 500, "out of memory"), -1;
	if (pol_normalise_path(t, rawlen, c->rq->target, cap, err,
	    sizeof(err)) < 0) {
		gw_log(GW_LOG_DEBUG, "client %s: path refused: %s", c->peer_ip, err);
		return gw_relay_reject(c, 400, "path refused by normalisation"), -1;
	}
	plen = strlen(c->rq->target);
	/* room for path + query + NUL + path + NUL; rarely more than made */
	if (2 * plen + qlen + 2 > cap + qlen + 1) {
		if ((buf = realloc(c->rq->target, 2 * plen + qlen + 2)) == NULL)
			return gw_relay_reject(c, 500, "out of memory"), -1;
		c->rq->target = buf;
	}
	memcpy(c->rq->target + plen, q ? q : "", qlen);
	c->rq->target_len = plen + qlen;
	c->rq->target[c->rq->target_len] = '\0';
	c->rq->path = c->rq->target + c->rq->target_len + 1;
	memcpy(c->rq->path, c->rq->target, plen);
	c->rq->path[plen] = '\0';
	return 0;
}

/* The session cookie, if any, under login context a (NULL: none, so no
 * session). Never blocks (AES-GCM and memory only). With `apply`, the
 * identity becomes the request's and a due refresh of the cookie is
 * queued for the response. */
static void
check_session(struct gw_conn *c, struct auth_ctx *a, struct auth_identity *id,
    bool *ok, bool apply)
{
	const struct gw_hdr *h;
	char sc[600];
	enum auth_check r;

	*ok = false;
	if (a == NULL)
		return;
	h = gw_msg_find(&c->rq->rp.req, "cookie", NULL);
	if (h == NULL)
		return;
	r = auth_session_check(a, c->rq->rp.req.buf + h->value, h->value_len,
	    time(NULL), id);
	if (r != AUTH_OK)
		return;
	*ok = true;
	if (!apply)
		return;
	c->rq->id.present = true;
	c->rq->id.mfa = id->mfa;
	snprintf(c->rq->id.user, sizeof(c->rq->id.user), "%s", id->user);
	if (id->refresh &&
	    auth_session_reseal(a, id, time(NULL), sc, sizeof(sc)) > 0)
		c->rq->set_cookie = strdup(sc);
}

static int
fill_request(struct gw_conn *c, const struct auth_identity *id, bool session,
    struct pol_request *r, struct hdr_scratch *hs, const char **groups,
    size_t maxg, char *gbuf, struct pol_lockdown **ld)
{
	memset(r, 0, sizeof(*r));
	r->peer = &c->rq->client.sa;
	r->path = c->rq->path;
	r->method = llhttp_method_name(llhttp_get_method(&c->rq->rp.parser));
	r->header = policy_header;
	r->header_arg = hs;
	*ld = NULL;
	if (!session)
		return 0;
	r->has_session = true;
	r->mfa = id->mfa;
	r->user = id->user;
	r->admin = id->admin;
	snprintf(gbuf, AUTH_GROUPS_MAX + 1, "%s", id->groups);
	for (char *save = NULL, *g = strtok_r(gbuf, ",", &save);
	    g != NULL && r->ngroups < maxg; g = strtok_r(NULL, ",", &save))
		groups[r->ngroups++] = g;
	r->groups = groups;
	if (id->lockdown[0] != '\0') {
		char err[128];
		/* a stored list that no longer parses locks the user out */
		if (pol_lockdown_parse(id->lockdown, ld, err, sizeof(err)) < 0) {
			gw_log(GW_LOG_ERR, "user %s: stored lockdown unusable (%s): "
			    "denying", id->user, err);
			return -1;
		}
		r->lockdown = *ld;
	}
	return 0;
}

/* The `rd` parameter of a login request, decoded once; false if absent or
 * malformed (the page then goes to "/" after login). */
static bool
rd_param(const char *t, char *out, size_t outlen)
{
	const char *q = strchr(t, '?'), *p;
	size_t o = 0;

	for (p = q; p != NULL; p = strchr(p + 1, '&'))
		if (strncmp(p + 1, "rd=", 3) == 0)
			break;
	if (p == NULL)
		return false;
	for (p += 4; *p != '\0' && *p != '&' && o + 1 < outlen; p++) {
		int hi, lo;
		if (*p != '%') {
			out[o++] = *p == '+' ? ' ' : *p;
			continue;
		}
		if ((hi = OPENSSL_hexchar2int((unsigned char)p[1])) < 0 ||
		    (lo = OPENSSL_hexchar2int((unsigned char)p[2])) < 0)
			return false;
		out[o++] = (char)(hi << 4 | lo);
		p += 2;
	}
	out[o] = '\0';
	return o > 0 && out[0] == '/';
}

/* What the policy will ask of the page the login returns to: the login
 * form asks for the code (or sends to enrolment) when that is MFA. */
static enum auth_level
rd_need(struct gw_conn *c, struct pol_request *r)
{
	char rd[2048], norm[3 * sizeof(rd) + 2], err[128];
	const char *q;
	struct pol_verdict v;
	const char *saved = r->path;

	if (!rd_param(c->rq->target, rd, sizeof(rd)))
		return AUTH_LEVEL_NONE;
	q = strchr(rd, '?');
	if (pol_normalise_path(rd, q ? (size_t)(q - rd) : strlen(rd), norm,
	    sizeof(norm), err, sizeof(err)) < 0)
		return AUTH_LEVEL_NONE;
	r->path = norm;
	r->has_session = true;	/* as it will be after the password step */
	r->mfa = false;
	pol_decide(c->site->policy, r, &v);
	r->path = saved;
	return v.action == POL_MFA ? AUTH_LEVEL_MFA : AUTH_LEVEL_NONE;
}

/* The one rule for what is a gateway page: the normalised path is
 * /_pbxgate or begins with /_pbxgate/, in any case (the documented policy
 * rule `allow path ^/_pbxgate/` is caseless, and so may the upstream be).
 * Such a path is answered by the gateway and never forwarded. */
bool
gw_relay_gateway_path(const char *path)
{
	size_t n = strlen(AUTH_PREFIX) - 1;	/* without the last '/' */

	return strncasecmp(path, AUTH_PREFIX, n) == 0 &&
	    (path[n] == '\0' || path[n] == '/');
}

/* A gateway page's prefix in one spelling, so that the auth module's page
 * table (exact names) sees /_PbXgAtE/login as /_pbxgate/login. The path
 * is also the start of c->rq->target. */
static void
canonical_prefix(struct gw_conn *c)
{
	size_t n = strlen(AUTH_PREFIX) - 1;

	memcpy(c->rq->path, AUTH_PREFIX, n);
	memcpy(c->rq->target, AUTH_PREFIX, n);
}

static int
act(struct gw_conn *c, const struct pol_verdict *v, const struct pol_request *r)
{
	bool local = gw_relay_gateway_path(c->rq->path);

	gw_metrics_decision(&c->w->rt->m, v->action);
	gw_relay_client_unparsable(c, v, r);
	if (v->action == POL_DENY && v->page != POL_PAGE_NONE) {
		gw_relay_deny_page(c, v, r);
		return -1;
	}
	if (v->action == POL_DENY) {
		gw_relay_audit(c, "deny", v->file, v->line);
		gw_relay_reject(c, 403, "denied by policy");
		return -1;
	}
	if (v->audit)
		gw_relay_audit(c, pol_action_name(v->action), v->file, v->line);
	c->rq->rd_need = AUTH_LEVEL_NONE;
	/* the login pages themselves only need the address to be allowed */
	if (local || v->action == POL_ALLOW)
		return 0;
	if (gw_conn_auth(c) == NULL) {
		gw_log(GW_LOG_ERR, "policy %s:%u asks for a login but no user_db "
		    "is configured: denying", v->file, v->line);
		gw_relay_reject(c, 403, "login required but unavailable");
		return -1;
	}
	if (!pol_verdict_permits(v, r->has_session, r->mfa)) {
		gw_relay_redirect_login(c, v->action == POL_MFA);
		return -1;
	}
	return 0;
}

int
gw_relay_gate(struct gw_conn *c, const char **path, size_t *plen)
{
	const struct gw_config *cfg = c->site;
	struct auth_identity id;
	struct pol_request r;
	struct pol_verdict v;
	struct hdr_scratch *hs;
	struct pol_lockdown *ld;
	const char *groups[32];
	char gbuf[AUTH_GROUPS_MAX + 1];
	bool session;
	int rc;

	if (normalise_target(c, *path, *plen) < 0)
		return -1;
	if (gw_relay_gateway_path(c->rq->path))
		canonical_prefix(c);
	*path = c->rq->target;
	*plen = c->rq->target_len;
	check_session(c, gw_conn_auth(c), &id, &session, true);
	if (cfg->policy == NULL)
		return 0;	/* a hardened reverse proxy without lockdown */
	hs = scratch_new(c);
	if (hs == NULL)
		return gw_relay_reject(c, 500, "out of memory"), -1;
	if (fill_request(c, &id, session, &r, hs, groups, 32, gbuf, &ld) < 0) {
		free(hs);
		gw_relay_reject(c, 403, "unusable stored lockdown");
		return -1;
	}
	pol_decide(cfg->policy, &r, &v);
	rc = act(c, &v, &r);
	if (rc == 0 && strcmp(c->rq->path, AUTH_PREFIX "login") == 0)
		c->rq->rd_need = rd_need(c, &r);
	pol_lockdown_free(ld);
	free(hs);
	return rc;
}

/* A WebSocket tunnel under a new snapshot (SIGHUP) or after a session
 * change: would its upgrade request still pass? Judged entirely under
 * cfg: its policy and its login context, the one a new request would
 * meet (another store, keys withdrawn, user_db removed), not the context
 * the tunnel began under, which its old snapshot keeps open. */
bool
gw_relay_recheck(struct gw_conn *c, const struct gw_config *cfg)
{
	struct auth_identity id;
	struct pol_request r;
	struct pol_verdict v;
	struct hdr_scratch *hs;
	struct pol_lockdown *ld;
	const char *groups[32];
	char gbuf[AUTH_GROUPS_MAX + 1];
	bool session, ok;

	if ((cfg = gw_site_of(c, cfg)) == NULL)
		return false;	/* its site is gone */
	check_session(c, cfg->authctx, &id, &session, false);
	if (c->rq->id.present && !session)
		return false;	/* revoked, expired, its user disabled, or
				 * not valid under this context at all */
	if (cfg->policy == NULL)
		return true;
	hs = scratch_new(c);
	if (hs == NULL)
		return false;
	if (fill_request(c, &id, session, &r, hs, groups, 32, gbuf, &ld) < 0) {
		free(hs);
		return false;
	}
	pol_decide(cfg->policy, &r, &v);
	ok = pol_verdict_permits(&v, r.has_session, r.mfa);
	if (!ok)
		gw_relay_audit(c, "close-tunnel", v.file, v.line);
	pol_lockdown_free(ld);
	free(hs);
	return ok;
}

void
gw_relay_identity_headers(struct gw_conn *c, struct gw_hw *w)
{
	if (!c->rq->id.present)
		return;
	GW_HW_LIT(w, "X-Pbxgate-User: ");
	gw_hw_str(w, c->rq->id.user);
	gw_hw_str(w, c->rq->id.mfa ? "\r\nX-Pbxgate-Auth: mfa\r\n" :
	    "\r\nX-Pbxgate-Auth: password\r\n");
}

/* The actions after which the client did not get what it asked for: the
 * record's event.outcome is "failure"; every other action let the request
 * through (an audited allow, a monitor-mode integrity finding). */
static const char *
audit_outcome(const char *action)
{
	static const char *const refused[] = { "deny", "close-tunnel",
	    "known-bad", "integrity-refused", "integrity-unpinned-refused" };

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strcmp(action, refused[i]) == 0)
			return "failure";
	return "success";
}

struct ev_audit *
gw_relay_audit_begin(struct gw_conn *c, const char *module,
    const char *action, const char *file, unsigned line)
{
	struct ev_audit *ev;

	if (c->w->rt->audit_fd < 0)
		return NULL;
	ev = ev_audit_new(module, action, audit_outcome(action));
	ev_audit_str(ev, "source.ip", c->peer_ip);
	ev_audit_str(ev, "client.ip", c->rq->client_ip);
	ev_audit_str(ev, "user.name", c->rq->id.present ? c->rq->id.user : "");
	ev_audit_str(ev, "http.request.id", gw_reqid(c));
	ev_audit_str(ev, "http.request.method",
	    llhttp_method_name(llhttp_get_method(&c->rq->rp.parser)));
	ev_audit_str(ev, "url.path", c->rq->path);
	ev_audit_rule(ev, "rule.name", file, line);
	if (c->cfg->nsites > 0 && !c->no_site)	/* the site's name */
		ev_audit_str(ev, "pbxgate.site", c->site->auth.site);
	return ev;
}

void
gw_relay_audit_end(struct gw_conn *c, struct ev_audit *ev)
{
	size_t n;
	char *line = ev_audit_line(ev, &n);

	/* one write: the whole line lands at the end of the file (O_APPEND) */
	if (line != NULL && c->w->rt->audit_fd >= 0)
		(void)!write(c->w->rt->audit_fd, line, n);
	free(line);
}

/* One JSON audit line per deny and per audited allow (admin paths). */
void
gw_relay_audit(struct gw_conn *c, const char *action, const char *file,
    unsigned line)
{
	gw_relay_audit_end(c, gw_relay_audit_begin(c, "policy", action, file,
	    line));
}
