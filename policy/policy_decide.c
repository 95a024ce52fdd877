/* policy_decide.c -- first matching rule wins, then the user's lockdown narrows. */
#include <string.h>
#include <strings.h>

#include "policy/policy_priv.h"

static bool
in_names(char *const *names, size_t n, const char *v, bool nocase)
{
	if (v == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (nocase ? strcasecmp(names[i], v) == 0 :
		    strcmp(names[i], v) == 0)
			return true;
	return false;
}

static int
match_from(const struct pol_matcher *m, const struct sockaddr *peer)
{
	struct pol_addr k;

	if (!pol_addr_from_sockaddr(peer, &k))
		return 0;
	for (size_t i = 0; i < m->nsets; i++)
		if (pol_cidrset_contains_key(m->sets[i], &k))
			return 1;
	return 0;
}

static int
match_geo(const struct pol_policy *p, const struct pol_matcher *m,
    const struct sockaddr *peer)
{
	char cc[3];
	uint32_t asn;
	int rc;

	if (!p->mmdb_open)
		return -1;
	if (m->kind == M_COUNTRY) {
		if ((rc = pol_geoip_country(&p->mmdb, peer, cc)) != 1)
			return rc;
		for (size_t i = 0; i < m->n; i++)
			if (m->codes[i][0] == cc[0] && m->codes[i][1] == cc[1])
				return 1;
		return 0;
	}
	if ((rc = pol_geoip_asn(&p->mmdb, peer, &asn)) != 1)
		return rc;
	for (size_t i = 0; i < m->n; i++)
		if (m->asns[i] == asn)
			return 1;
	return 0;
}

/* 1 holds, 0 does not, -1 could not tell (before negation). */
static int
match_one(const struct pol_policy *p, const struct pol_matcher *m,
    const struct pol_request *r)
{
	const char *v;

	switch (m->kind) {
	case M_FROM:
		return match_from(m, r->peer);
	case M_COUNTRY:
	case M_ASN:
		return match_geo(p, m, r->peer);
	case M_PATH:
		return pol_regex_match(p, &m->re, r->path != NULL ? r->path : "");
	case M_METHOD:
		return in_names(m->names, m->n, r->method, true);
	case M_HEADER:
		v = r->header != NULL ? r->header(r->header_arg, m->hname) : NULL;
		return v == NULL ? 0 : pol_regex_match(p, &m->re, v);
	case M_CLIENT:
		v = r->header != NULL ? r->header(r->header_arg, "user-agent") :
		    NULL;
		return pol_client_match(p, m, v);
	case M_USER:
		return in_names(m->names, m->n, r->user, false);
	case M_GROUP:
		for (size_t i = 0; i < r->ngroups; i++)
			if (in_names(m->names, m->n, r->groups[i], false))
				return 1;
		return 0;
	case M_ROLE:
		return r->admin == m->admin;
	}
	return -1;
}

bool
pol_rule_eval(const struct pol_policy *p, const struct pol_rule *rule,
    const struct pol_request *r, bool *need_session,
    const struct pol_matcher **why)
{
	*need_session = false;
	*why = NULL;
	if (rule->any)
		return true;
	for (size_t i = 0; i < rule->nm; i++) {
		const struct pol_matcher *m = &rule->m[i];
		bool held;
		int rc;

		/* Identity matchers come last: everything else held. */
		if (m->kind >= M_USER && !r->has_session) {
			*need_session = true;
			return true;
		}
		rc = match_one(p, m, r);
		if (rc < 0)
			held = rule->action == POL_DENY;	/* fail closed */
		else
			held = (rc == 1) != m->negate;
		if (!held) {
			*why = m;
			return false;
		}
	}
	return true;
}

static void
from_rule(const struct pol_rule *rule, bool need_session, struct pol_verdict *v)
{
	v->action = need_session ? POL_LOGIN : rule->action;
	v->page = need_session ? POL_PAGE_NONE : rule->page;
	v->need_session = need_session;
	v->audit = (rule->audit && !need_session) || v->action == POL_DENY;
	v->file = rule->file;
	v->line = rule->line;
	v->reason = need_session ? "login needed" : "rule";
}

void
pol_finish_verdict(const struct pol_policy *p, const struct pol_request *r,
    struct pol_verdict *v)
{
	(void)p;
	if (r->has_session && !pol_lockdown_allows(r->lockdown, r->peer)) {
		v->action = POL_DENY;
		v->page = POL_PAGE_NONE;
		v->need_session = false;
		v->audit = true;
		v->reason = "user lockdown";
	}
}

static void
default_verdict(const struct pol_policy *p, struct pol_verdict *v)
{
	v->action = p->def;
	v->page = POL_PAGE_NONE;
	v->need_session = false;
	v->audit = p->def == POL_DENY;
	v->file = p->def_file;
	v->line = p->def_line;
	v->reason = "default";
}

static bool
try_rule(const struct pol_policy *p, size_t i, const struct pol_request *r,
    struct pol_verdict *v)
{
	const struct pol_matcher *why;
	bool need;

	if (!pol_rule_eval(p, &p->rules[i], r, &need, &why))
		return false;
	from_rule(&p->rules[i], need, v);
	return true;
}

bool
pol_verdict_permits(const struct pol_verdict *v, bool has_session, bool mfa)
{
	switch (v->action) {
	case POL_ALLOW:
		return true;
	case POL_LOGIN:
		return has_session && !v->need_session;
	case POL_MFA:
		return has_session && mfa;
	case POL_DENY:
		break;
	}
	return false;
}

void
pol_decide(const struct pol_policy *p, const struct pol_request *r,
    struct pol_verdict *v)
{
	uint64_t bits[POL_INDEX_MAXWORDS];
	size_t nwords = (p->nrules + 63) / 64;

	default_verdict(p, v);
	if (pol_pindex_candidates(p->index, r->path != NULL ? r->path : "",
	    bits, POL_INDEX_MAXWORDS)) {
		for (size_t w = 0; w < nwords; w++) {
			for (uint64_t b = bits[w]; b != 0; b &= b - 1) {
				size_t i = w * 64 + (size_t)__builtin_ctzll(b);

				if (try_rule(p, i, r, v))
					goto done;
			}
		}
	} else {
		for (size_t i = 0; i < p->nrules; i++)
			if (try_rule(p, i, r, v))
				goto done;
	}
	default_verdict(p, v);
done:
	pol_finish_verdict(p, r, v);
}
