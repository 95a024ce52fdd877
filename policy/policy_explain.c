/* policy_explain.c -- `pbxgate policy explain`: the decision, the rule behind it, and why the others passed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy_priv.h"

#define MAX_ARGS 32

static void
print_peer(const struct pol_policy *p, const struct pol_request *r, FILE *out)
{
	char buf[POL_ADDR_STRLEN] = "(none)", cc[3];
	uint32_t asn;

	if (r->peer != NULL)
		pol_addr_peer_text(r->peer, buf, sizeof buf);
	fprintf(out, "request: peer %s", buf);
	if (p->mmdb_open) {
		if (pol_geoip_country(&p->mmdb, r->peer, cc) == 1)
			fprintf(out, " country %s", cc);
		else
			fprintf(out, " country (unknown)");
		if (pol_geoip_asn(&p->mmdb, r->peer, &asn) == 1)
			fprintf(out, " AS%u", asn);
	}
	fprintf(out, ", %s %s", r->method != NULL ? r->method : "(no method)",
	    r->path != NULL ? r->path : "(no path)");
	if (!r->has_session) {
		fprintf(out, ", no session\n");
		return;
	}
	fprintf(out, ", user %s, role %s, mfa %s", r->user != NULL ? r->user :
	    "(none)", r->admin ? "admin" : "user", r->mfa ? "yes" : "no");
	for (size_t i = 0; i < r->ngroups; i++)
		fprintf(out, "%s%s", i == 0 ? ", groups " : ",", r->groups[i]);
	fprintf(out, "\n");
}

void
pol_explain(const struct pol_policy *p, const struct pol_request *r, FILE *out)
{
	struct pol_verdict v = { 0 };
	size_t i;

	print_peer(p, r, out);
	for (i = 0; i < p->nrules; i++) {
		const struct pol_rule *rule = &p->rules[i];
		const struct pol_matcher *why;
		bool need;

		if (!pol_rule_eval(p, rule, r, &need, &why)) {
			fprintf(out, "  passed %s:%u: %s\n    because '%s' does "
			    "not hold\n", rule->file, rule->line, rule->text,
			    why->text);
			continue;
		}
		fprintf(out, "  MATCH  %s:%u: %s\n", rule->file, rule->line,
		    rule->text);
		if (need)
			fprintf(out, "    it names a user, group or role and the "
			    "request has no session: log in, then decide "
			    "again\n");
		break;
	}
	/* pol_decide is the authority; the walk above only narrates it. */
	pol_decide(p, r, &v);
	if (i == p->nrules && p->def_line != 0)
		fprintf(out, "  no rule matched: default %s at %s:%u\n",
		    pol_action_name(p->def), p->def_file, p->def_line);
	else if (i == p->nrules)
		fprintf(out, "  no rule matched and no default: deny\n");
	if (strcmp(v.reason, "user lockdown") == 0)
		fprintf(out, "  user lockdown: the peer is outside the user's "
		    "own networks\n");
	if (v.line != 0)
		fprintf(out, "decision: %s (%s %s:%u)%s%s%s\n",
		    pol_action_name(v.action), v.reason, v.file, v.line,
		    v.audit ? " [audit]" : "", v.page != POL_PAGE_NONE ?
		    " page " : "", v.page != POL_PAGE_NONE ?
		    pol_page_name(v.page) : "");
	else
		fprintf(out, "decision: %s (%s)%s\n", pol_action_name(v.action),
		    v.reason, v.audit ? " [audit]" : "");
}

struct hdrs {
	char *name[MAX_ARGS];
	char *value[MAX_ARGS];
	size_t n;
};

static const char *
hdr_lookup(void *arg, const char *name)
{
	struct hdrs *h = arg;

	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->name[i], name) == 0)
			return h->value[i];
	return NULL;
}

static bool
parse_ip(const char *s, struct sockaddr_storage *ss)
{
	struct pol_addr a;

	if (pol_addr_parse(s, strlen(s), &a) == -1)
		return false;
	(void)pol_addr_to_sockaddr(&a, 0, ss);
	return true;
}

static int
usage(const char *why)
{
	fprintf(stderr, "policy explain: %s\nusage: policy explain --ip ADDR "
	    "[--user U] [--group G]... [--role admin|user] [--mfa] [--path P] "
	    "[--method M] [--header 'Name: value']... [--lockdown CIDRS]\n",
	    why);
	return 2;
}

struct cmd {
	struct pol_request r;
	struct sockaddr_storage ss;
	struct hdrs h;
	const char *groups[MAX_ARGS];
	const char *path, *ip, *lockdown;
	char user[POL_NAME_MAX + 1];	/* folded like the store's names */
	bool identity;	/* --role, --group or --mfa given */
};

/* One option at argv[*i]; returns NULL or what is wrong. */
static const char *
cmd_option(struct cmd *c, int argc, char **argv, int *i)
{
	const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;

	if (strcmp(o, "--mfa") == 0) {
		c->r.mfa = c->identity = true;
		return NULL;
	}
	if (v == NULL)
		return "option needs a value";
	++*i;
	if (strcmp(o, "--ip") == 0)
		c->ip = v;
	else if (strcmp(o, "--user") == 0) {
		if (pol_name_fold(v, c->user, sizeof c->user) < 0)
			return "--user: not a valid user name (1 to 64 ASCII "
			    "letters, digits and . _ @ -)";
		c->r.user = c->user;
	}
	else if (strcmp(o, "--path") == 0)
		c->path = v;
	else if (strcmp(o, "--method") == 0)
		c->r.method = v;
	else if (strcmp(o, "--lockdown") == 0)
		c->lockdown = v;
	else if (strcmp(o, "--role") == 0) {
		if (strcmp(v, "admin") != 0 && strcmp(v, "user") != 0)
			return "--role takes admin or user";
		c->r.admin = v[0] == 'a';
		c->identity = true;
	} else if (strcmp(o, "--group") == 0) {
		if (c->r.ngroups == MAX_ARGS)
			return "too many --group";
		c->groups[c->r.ngroups++] = v;
		c->identity = true;
	} else if (strcmp(o, "--header") == 0) {
		char *colon = strchr(v, ':');

		if (colon == NULL || colon == v || c->h.n == MAX_ARGS)
			return "--header takes 'Name: value'";
		c->h.name[c->h.n] = strndup(v, (size_t)(colon - v));
		c->h.value[c->h.n] = strdup(colon + 1 + strspn(colon + 1, " \t"));
		if (c->h.name[c->h.n] == NULL || c->h.value[c->h.n] == NULL) {
			free(c->h.name[c->h.n]);
			free(c->h.value[c->h.n]);
			return "out of memory";
		}
		c->h.n++;
	} else {
		--*i;
		return "unknown option";
	}
	return NULL;
}

int
pol_cmd_explain(const struct pol_policy *p, int argc, char **argv)
{
	struct cmd c;
	struct pol_lockdown *ld = NULL;
	struct pol_verdict v;
	char norm[POL_PATH_MAX * 3 + 1], err[256];
	const char *why = NULL;
	int rc = 2;

	memset(&c, 0, sizeof c);
	for (int i = 0; i < argc && why == NULL; i++)
		if ((why = cmd_option(&c, argc, argv, &i)) != NULL)
			fprintf(stderr, "policy explain: %s: ", argv[i]);
	if (why != NULL)
		goto out_usage;
	if (c.identity && c.r.user == NULL) {
		why = "--role, --group and --mfa describe a session: give --user";
		goto out_usage;
	}
	if (c.ip == NULL || !parse_ip(c.ip, &c.ss)) {
		why = c.ip == NULL ? "--ip is required" : "--ip: bad address";
		goto out_usage;
	}
	if (c.path != NULL && pol_normalise_path(c.path, strlen(c.path), norm,
	    sizeof norm, err, sizeof err) == -1) {
		fprintf(stderr, "policy explain: path refused (the gateway "
		    "answers 400): %s\n", err);
		goto out;
	}
	if (c.lockdown != NULL && pol_lockdown_parse(c.lockdown, &ld, err,
	    sizeof err) == -1) {
		fprintf(stderr, "policy explain: --lockdown: %s\n", err);
		goto out;
	}
	c.r.peer = (struct sockaddr *)&c.ss;
	c.r.path = c.path != NULL ? norm : "/";
	c.r.method = c.r.method != NULL ? c.r.method : "GET";
	c.r.header = hdr_lookup;
	c.r.header_arg = &c.h;
	c.r.groups = c.groups;
	c.r.has_session = c.r.user != NULL;
	c.r.lockdown = ld;
	pol_explain(p, &c.r, stdout);
	pol_decide(p, &c.r, &v);
	rc = v.action == POL_DENY ? 1 : 0;
	goto out;
out_usage:
	rc = usage(why);
out:
	pol_lockdown_free(ld);
	for (size_t i = 0; i < c.h.n; i++) {
		free(c.h.name[i]);
		free(c.h.value[i]);
	}
	return rc;
}
