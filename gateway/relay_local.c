/* relay_local.c -- the gateway's own pages under /_pbxgate/ (login,
 * enrolment, account): the form body is collected (bounded), handed to the
 * auth module on the blocking pool, and the answer comes back to the loop. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/gw_priv.h"

struct gw_local {
	struct gw_conn        *c;	/* NULL once the connection went away */
	/* the snapshot auth belongs to, held while the job runs: a login
	 * context closes once no snapshot holds it (site_auth.c), and the
	 * job may outlive its connection */
	struct gw_config      *cfg;
	struct auth_ctx       *auth;
	char                  *method, *path, *query, *cookie, *lang, *ctype;
	char                  *body;
	size_t                 body_len;
	char                   reqid[GW_REQID_MAX + 1];
	struct sockaddr_storage peer;
	enum auth_level        rd_need;
	struct auth_http_resp  resp;
};

static char *
hdup(struct gw_conn *c, const char *name)
{
	const struct gw_hdr *h = gw_msg_find(&c->rq->rp.req, name, NULL);

	return h ? gw_memdup_str(c->rq->rp.req.buf + h->value, h->value_len) : NULL;
}

void
gw_local_begin(struct gw_conn *c)
{
	c->rq->local = true;
	c->state = CS_FORWARD;
	if (gw_conn_auth(c) == NULL) {
		gw_relay_reject(c, 404, "no login configured");
		return;
	}
	if (c->rq->local_body == NULL)
		c->rq->local_body = evbuffer_new();
	else
		evbuffer_drain(c->rq->local_body,
		    evbuffer_get_length(c->rq->local_body));
	gw_conn_arm(c, c->cfg->to.body);
}

void
gw_local_body(struct gw_conn *c, const char *p, size_t n)
{
	if (c->state != CS_FORWARD)
		return;
	if (evbuffer_get_length(c->rq->local_body) + n > AUTH_BODY_MAX) {
		gw_relay_reject(c, 413, "form body too large");
		return;
	}
	evbuffer_add(c->rq->local_body, p, n);
}

static void
local_free(struct gw_local *l)
{
	free(l->method);
	free(l->path);
	free(l->query);
	free(l->cookie);
	free(l->lang);
	free(l->ctype);
	if (l->body != NULL)
		explicit_bzero(l->body, l->body_len);	/* passwords */
	free(l->body);
	auth_http_resp_free(&l->resp);
	gw_config_unref(l->cfg);
	free(l);
}

static void
local_run(void *arg)
{
	struct gw_local *l = arg;
	struct auth_http_req r = {
		.method = l->method, .path = l->path, .query = l->query,
		.peer = (struct sockaddr *)&l->peer, .cookie = l->cookie,
		.accept_language = l->lang, .content_type = l->ctype,
		.body = l->body, .body_len = l->body_len, .rd_need = l->rd_need,
		.request_id = l->reqid,
	};

	auth_http_handle(l->auth, &r, &l->resp);
}

/* An auth module page as an HTTP answer: its status, its own headers,
 * HSTS, framing and (not for HEAD) its body. `Connection: close` when the
 * connection will not be kept. Also writes the deny pages (relay_reply.c). */
void
gw_local_write(struct gw_conn *c, const struct auth_http_resp *rp)
{
	struct evbuffer *out = gw_io_output(c->io);
	size_t before = evbuffer_get_length(out);
	char date[64];

	gw_http_date(date, sizeof(date));
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n"
	    "X-Request-Id: %s\r\n", rp->status, gw_status_text(rp->status), date,
	    gw_reqid(c));
	for (size_t i = 0; i < rp->nhdr && i < AUTH_HDR_MAX; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", rp->hdr[i].name,
		    rp->hdr[i].value);
	/* the auth module sets its pages' own CSP, nosniff and referrer
	 * policy; only transport-level headers are ours */
	if (c->site->hsts)
		evbuffer_add_printf(out, "Strict-Transport-Security: max-age=%u; "
		    "includeSubDomains\r\n", c->site->hsts_max_age);
	evbuffer_add_printf(out, "Content-Length: %zu\r\n%s\r\n",
	    rp->body_len, c->keepalive ? "" : "Connection: close\r\n");
	if (rp->body_len > 0 && !c->rq->is_head)
		evbuffer_add(out, rp->body, rp->body_len);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = rp->status;
	c->rq->resp_started = true;
}

static void
local_done(void *arg)
{
	struct gw_local *l = arg;
	struct gw_conn *c = l->c;

	if (c != NULL) {
		c->rq->job = NULL;
		gw_local_write(c, &l->resp);
		gw_conn_response_done(c, false);
	}
	local_free(l);
}

void
gw_local_body_done(struct gw_conn *c)
{
	struct gw_runtime *rt = c->w->rt;
	struct gw_local *l;
	const char *q;
	size_t plen;

	if (c->state != CS_FORWARD)
		return;
	/* c->rq->target is c->rq->path, then the query with its '?' */
	plen = strlen(c->rq->path);
	q = c->rq->target_len > plen ? c->rq->target + plen : NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		gw_relay_reject(c, 500, "out of memory");
		return;
	}
	l->c = c;
	l->cfg = gw_config_ref(c->cfg);
	l->auth = gw_conn_auth(c);
	l->method = strdup(llhttp_method_name(llhttp_get_method(&c->rq->rp.parser)));
	l->path = gw_memdup_str(c->rq->path, plen);
	l->query = q ? strdup(q + 1) : NULL;
	l->cookie = hdup(c, "cookie");
	l->lang = hdup(c, "accept-language");
	l->ctype = hdup(c, "content-type");
	l->body_len = evbuffer_get_length(c->rq->local_body);
	l->body = malloc(l->body_len + 1);
	if (l->body != NULL)
		evbuffer_remove(c->rq->local_body, l->body, l->body_len);
	memcpy(&l->peer, &c->rq->client, sizeof(c->rq->client));
	memcpy(l->reqid, gw_reqid(c), sizeof(l->reqid));
	l->rd_need = c->rq->rd_need;
	if (l->method == NULL || l->path == NULL || l->body == NULL) {
		local_free(l);
		gw_relay_reject(c, 500, "out of memory");
		return;
	}
	if (gw_tpool_submit(rt->pool, c->w->base, local_run, local_done, l) < 0) {
		/* the pool is full: a page in the user's language, now, from
		 * the loop (auth_http_busy does not block) */
		struct auth_http_req r = { .method = l->method, .path = l->path,
		    .accept_language = l->lang, .request_id = l->reqid };
		auth_http_busy(&r, &l->resp);
		gw_log(GW_LOG_WARN, "client %s: login queue full: 503", c->rq->client_ip);
		gw_local_write(c, &l->resp);
		local_free(l);
		c->keepalive = false;
		gw_conn_response_done(c, false);
		return;
	}
	c->rq->job = l;
	/* Argon2 waits in a bounded queue at idle priority: give the page
	 * longer than a proxied answer, but still a bound */
	gw_conn_arm(c, c->site->to.upstream > GW_LOCAL_MS ? c->site->to.upstream :
	    GW_LOCAL_MS);
}

/* The request goes away (a new one, a trim, the connection closing) while
 * its page may be being made: the job finishes on its own and frees
 * itself. The form body goes with the request. */
void
gw_local_detach(struct gw_conn *c)
{
	if (c->rq->job != NULL) {
		c->rq->job->c = NULL;
		c->rq->job = NULL;
	}
	if (c->rq->local_body != NULL) {
		evbuffer_free(c->rq->local_body);
		c->rq->local_body = NULL;
	}
}

/* 302 to the login page with the original target as `rd`; non-GET
 * requests (API calls) get 401 since a redirect would lose their body. */
void
gw_relay_redirect_login(struct gw_conn *c, bool mfa)
{
	struct evbuffer *out = gw_io_output(c->io);
	size_t before = evbuffer_get_length(out);
	int method = llhttp_get_method(&c->rq->rp.parser);
	char date[64], loc[3 * POL_PATH_MAX + 64];

	if (method != HTTP_GET && method != HTTP_HEAD) {
		gw_relay_reject(c, 401, "login required");
		return;
	}
	if (auth_login_location(c->rq->target, loc, sizeof(loc)) == 0)
		snprintf(loc, sizeof(loc), "%slogin", AUTH_PREFIX);
	gw_http_date(date, sizeof(date));
	evbuffer_add_printf(out, "HTTP/1.1 302 Found\r\nDate: %s\r\n"
	    "Location: %s\r\nContent-Length: 0\r\nCache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: same-origin\r\n"
	    "X-Request-Id: %s\r\n%s\r\n", date, loc, gw_reqid(c),
	    c->keepalive ? "" : "Connection: close\r\n");
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	(void)mfa;	/* the login page asks for the code when the account has one */
	c->rq->status = 302;
	c->rq->resp_started = true;
	c->state = CS_FORWARD;
	c->rq->local = true;	/* no upstream; a body, if any, is discarded */
	gw_conn_response_done(c, false);
}
