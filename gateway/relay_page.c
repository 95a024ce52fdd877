/* relay_page.c -- a policy deny that names a page: the page, and the audit record of what the client said it was. */
#include <stdio.h>
#include <string.h>

#include "event/event.h"
#include "gateway/gw_priv.h"

static const char *
request_header(const struct pol_request *r, const char *name)
{
	return r->header != NULL ? r->header(r->header_arg, name) : NULL;
}

/* ,"app_version":"...","app_os":"..." (the version is already reduced to
 * [0-9A-Za-z._-?] by the policy module; escaped all the same). */
/* What the page and the audit record say of a desktop app's User-Agent
 * (ECS user_agent.version, user_agent.os.name). */
static void
client_members(struct ev_audit *ev, const struct pol_client *ci)
{
	ev_audit_str(ev, "user_agent.version", ci->version);
	ev_audit_str(ev, "user_agent.os.name", pol_os_name(ci->os));
}

void
gw_relay_deny_page(struct gw_conn *c, const struct pol_verdict *v,
    const struct pol_request *r)
{
	struct auth_http_resp resp;
	struct pol_client ci;
	struct ev_audit *ev;
	const char *page = pol_page_name(v->page);
	/* the reference the page quotes is the request's id, which the audit
	 * record carries as http.request.id (relay_reqid.c): an
	 * administrator finds the one from the other */
	const char *id = gw_reqid(c);

	(void)pol_client_scan(c->site->policy, request_header(r, "user-agent"),
	    &ci);
	if (id == NULL || id[0] == '\0') {
		gw_relay_audit(c, "deny", v->file, v->line);
		gw_relay_reject(c, 403, "denied by policy");
		return;
	}
	ev = gw_relay_audit_begin(c, "policy", "deny", v->file, v->line);
	ev_audit_str(ev, "pbxgate.page", page);
	if (ci.app)
		client_members(ev, &ci);
	gw_relay_audit_end(c, ev);
	/* the User-Agent's scratch copy is overwritten by this lookup: ci
	 * holds what the page needs */
	auth_page_client(request_header(r, "accept-language"), id,
	    ci.app ? ci.version : NULL, ci.app ? pol_os_name(ci.os) : NULL,
	    &resp);
	gw_relay_reject_page(c, &resp, "denied by policy: compromised client");
	auth_http_resp_free(&resp);
}

/* A desktop-app token whose version does not parse matches no version
 * rule (a rule cannot judge what it cannot read): the request is decided
 * as if it had none, and the administrator learns of it here. */
void
gw_relay_client_unparsable(struct gw_conn *c, const struct pol_verdict *v,
    const struct pol_request *r)
{
	struct pol_client ci;
	struct ev_audit *ev;

	if (!pol_client_scan(c->site->policy, request_header(r, "user-agent"),
	    &ci) || !ci.bad_version)
		return;
	ev = gw_relay_audit_begin(c, "policy", "client-version-unparsable",
	    v->file, v->line);
	client_members(ev, &ci);
	gw_relay_audit_end(c, ev);
}
