/* test_decide.c -- decision table, need_session, lockdown narrowing, GeoIP, explain, index equivalence, threads. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <pthread.h>
#include <string.h>

#include "helpers.h"
#include "policy/policy_priv.h"

TestSuite(decide, .fini = th_cleanup);

static const char decision_policy[] =
    "list office   203.0.113.0/24 2001:db8:10::/48\n"		/* 1 */
    "list phones   192.0.2.0/24\n"
    "list blocked  198.51.100.0/25\n"
    "deny   from @blocked\n"					/* 4 */
    "allow  from @phones path ^/provisioning/\n"
    "mfa    role admin from @office path ^/(management|admin)(/|$) audit\n"
    "deny   path ^/(management|admin)(/|$)\n"			/* 7 */
    "allow  path ^/MyPhone/c2clogin$\n"
    "deny   method TRACE,TRACK\n"
    "deny   header X-Evil ^yes$\n"				/* 10 */
    "login  group sales from @office\n"
    "deny   user mallory\n"
    "login  from @office\n"					/* 13 */
    "mfa    from !@office path ^/api/\n"
    "default deny\n";						/* 15 */

struct hdr {
	const char *name, *value;
};

static const char *
hdr_cb(void *arg, const char *name)
{
	const struct hdr *h = arg;

	return h != NULL && strcasecmp(h->name, name) == 0 ? h->value : NULL;
}

static const struct dcase {
	const char *ip, *path, *method;
	const char *user;	/* non-NULL: session */
	const char *group;
	bool admin;
	struct hdr *hdr;
	enum pol_action action;
	bool need_session, audit;
	unsigned line;
} dcases[] = {
	{ "198.51.100.5", "/", 0, 0, 0, 0, 0, POL_DENY, 0, 1, 4 },
	{ "192.0.2.9", "/provisioning/x/cfg.xml", 0, 0, 0, 0, 0, POL_ALLOW, 0, 0, 5 },
	{ "::ffff:192.0.2.9", "/provisioning/x/cfg.xml", 0, 0, 0, 0, 0, POL_ALLOW, 0, 0, 5 },
	{ "192.0.2.9", "/PROVISIONING/x", 0, 0, 0, 0, 0, POL_ALLOW, 0, 0, 5 },
	{ "203.0.113.7", "/management/", 0, 0, 0, 0, 0, POL_LOGIN, 1, 0, 6 },
	{ "203.0.113.7", "/management/", 0, "root", 0, 1, 0, POL_MFA, 0, 1, 6 },
	{ "203.0.113.7", "/management/", 0, "bob", 0, 0, 0, POL_DENY, 0, 1, 7 },
	{ "8.8.8.8", "/Management", 0, "root", 0, 1, 0, POL_DENY, 0, 1, 7 },
	{ "8.8.8.8", "/x/../%61dmin/", 0, 0, 0, 0, 0, POL_DENY, 0, 1, 7 },
	{ "8.8.8.8", "/MyPhone/c2clogin", 0, 0, 0, 0, 0, POL_ALLOW, 0, 0, 8 },
	{ "8.8.8.8", "/MyPhone/c2clogin/x", "GET", 0, 0, 0, 0, POL_LOGIN, 1, 0, 12 },
	{ "8.8.8.8", "/", "TRACE", 0, 0, 0, 0, POL_DENY, 0, 1, 9 },
	{ "8.8.8.8", "/", "track", 0, 0, 0, 0, POL_DENY, 0, 1, 9 },
	{ "8.8.8.8", "/", 0, 0, 0, 0, &(struct hdr){ "x-evil", "yes" }, POL_DENY, 0, 1, 10 },
	{ "8.8.8.8", "/", 0, 0, 0, 0, &(struct hdr){ "X-Evil", "yes!" }, POL_LOGIN, 1, 0, 12 },
	{ "2001:db8:10::5", "/webclient/", 0, "bob", "sales", 0, 0, POL_LOGIN, 0, 0, 11 },
	{ "2001:db8:10::5", "/webclient/", 0, 0, 0, 0, 0, POL_LOGIN, 1, 0, 11 },
	{ "2001:db8:10::5", "/webclient/", 0, "mallory", 0, 0, 0, POL_DENY, 0, 1, 12 },
	{ "2001:db8:10::5", "/webclient/", 0, "alice", 0, 0, 0, POL_LOGIN, 0, 0, 13 },
	{ "8.8.8.8", "/api/x", 0, "alice", 0, 0, 0, POL_MFA, 0, 0, 14 },
	{ "8.8.8.8", "/webclient/", 0, "alice", 0, 0, 0, POL_DENY, 0, 1, 15 },
	{ "198.51.100.200", "/webclient/", 0, "alice", 0, 0, 0, POL_DENY, 0, 1, 15 },
};

static struct pol_request
make_req(const struct dcase *c, const char **groups)
{
	struct pol_request r = th_req(c->ip, c->path);

	r.method = c->method != NULL ? c->method : "GET";
	r.header = hdr_cb;
	r.header_arg = c->hdr;
	if (c->user != NULL) {
		r.has_session = true;
		r.user = c->user;
		r.admin = c->admin;
		if (c->group != NULL) {
			groups[0] = c->group;
			r.groups = groups;
			r.ngroups = 1;
		}
	}
	return r;
}

Test(decide, decision_table)
{
	struct pol_policy *p = th_load(decision_policy, NULL);

	cr_assert_not_null(p, "%s", th_diags);
	for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
		const struct dcase *c = &dcases[i];
		const char *grp[1];
		struct pol_request r = make_req(c, grp);
		struct pol_verdict v;

		pol_decide(p, &r, &v);
		cr_expect_eq(v.action, c->action, "case %zu (%s %s): %s, want %s",
		    i, c->ip, c->path, pol_action_name(v.action),
		    pol_action_name(c->action));
		cr_expect_eq(v.need_session, c->need_session, "case %zu", i);
		cr_expect_eq(v.audit, c->audit, "case %zu", i);
		cr_expect_eq(v.line, c->line, "case %zu: line %u", i, v.line);
		cr_expect(strstr(v.file, "/p.policy") != NULL || c->line == 0);
	}
	pol_free(p);
}

Test(decide, default_is_deny_when_unset)
{
	struct pol_policy *p = th_load("allow path ^/public/\n", NULL);
	struct pol_request r = th_req("8.8.8.8", "/private");
	struct pol_verdict v;

	cr_assert_not_null(p);
	pol_decide(p, &r, &v);
	cr_assert_eq(v.action, POL_DENY);
	cr_assert_str_eq(v.file, "(default)");
	cr_assert_eq(v.line, 0);
	cr_assert_str_eq(v.reason, "default");
	pol_free(p);
}

Test(decide, null_peer_matches_no_from)
{
	struct pol_policy *p = th_load("allow from ::/0\ndeny from !::/0\n", NULL);
	struct pol_request r = { .path = "/" };
	struct pol_verdict v;

	cr_assert_not_null(p);
	pol_decide(p, &r, &v);
	cr_assert_eq(v.action, POL_DENY);
	cr_assert_eq(v.line, 2);
	pol_free(p);
}

Test(decide, case_sensitive_flag)
{
	struct pol_policy *p = th_load("deny path ^/Secret case-sensitive\n"
	    "allow any\n", NULL);
	struct pol_request a = th_req("8.8.8.8", "/Secret");
	struct pol_request b = th_req("8.8.8.8", "/secret");
	struct pol_verdict v;

	cr_assert_not_null(p);
	pol_decide(p, &a, &v);
	cr_assert_eq(v.action, POL_DENY);
	pol_decide(p, &b, &v);
	cr_assert_eq(v.action, POL_ALLOW);
	pol_free(p);
}

/* ---- lockdown ---- */

static struct pol_verdict
with_lockdown(struct pol_policy *p, const char *ip, const char *path,
    const char *ld_text, bool session)
{
	struct pol_request r = th_req(ip, path);
	struct pol_lockdown *ld;
	struct pol_verdict v;
	char err[256];

	cr_assert_eq(pol_lockdown_parse(ld_text, &ld, err, sizeof err), 0, "%s", err);
	r.has_session = session;
	r.user = "alice";
	r.lockdown = ld;
	pol_decide(p, &r, &v);
	pol_lockdown_free(ld);
	return v;
}

Test(decide, lockdown_narrows)
{
	struct pol_policy *p = th_load(decision_policy, NULL);
	struct pol_verdict v;

	cr_assert_not_null(p);
	v = with_lockdown(p, "203.0.113.7", "/webclient/", "2001:db8:10::/48", true);
	cr_assert_eq(v.action, POL_DENY);
	cr_assert_str_eq(v.reason, "user lockdown");
	cr_assert(v.audit);
	v = with_lockdown(p, "203.0.113.7", "/webclient/", "203.0.113.0/24, 10.0.0.0/8", true);
	cr_assert_eq(v.action, POL_LOGIN);
	/* the policy's own allow for phones is narrowed too */
	v = with_lockdown(p, "192.0.2.9", "/provisioning/a", "10.0.0.0/8", true);
	cr_assert_eq(v.action, POL_DENY);
	cr_assert_str_eq(v.reason, "user lockdown");
	/* mapped peers are IPv4 for the lockdown too */
	v = with_lockdown(p, "::ffff:203.0.113.7", "/webclient/", "203.0.113.0/24", true);
	cr_assert_eq(v.action, POL_LOGIN);
	pol_free(p);
}

Test(decide, lockdown_never_widens)
{
	struct pol_policy *p = th_load(decision_policy, NULL);
	struct pol_verdict v;

	cr_assert_not_null(p);
	v = with_lockdown(p, "8.8.8.8", "/webclient/", "8.8.8.0/24", true);
	cr_assert_eq(v.action, POL_DENY);
	cr_assert_str_eq(v.reason, "default");
	v = with_lockdown(p, "198.51.100.5", "/", "198.51.100.0/24", true);
	cr_assert_eq(v.action, POL_DENY);
	cr_assert_eq(v.line, 4);
	pol_free(p);
}

Test(decide, empty_lockdown_is_no_restriction)
{
	struct pol_lockdown *ld = (void *)1;
	char err[64];

	cr_assert_eq(pol_lockdown_parse(" , ", &ld, err, sizeof err), 0);
	cr_assert_null(ld);
	cr_assert(pol_lockdown_allows(NULL, NULL));
}

static const struct {
	const char *text, *err;
} ld_bad[] = {
	{ "10.0.0.1/8", "lockdown: '10.0.0.1/8' has host bits set: write "
	    "10.0.0.0/8 for the network, or 10.0.0.1 alone for the one "
	    "address" },
	{ "10.0.0.0/8,bogus", "lockdown: bad address 'bogus' (expected an IPv4 "
	    "or IPv6 address, optionally with /LEN)" },
	{ "10.0.0.0/99", "lockdown: bad prefix length in '10.0.0.0/99' (IPv4 "
	    "takes /0 to /32, no leading zeros)" },
	{ "2001:db8::/48;", "lockdown: bad prefix length in '2001:db8::/48;' "
	    "(IPv6 takes /0 to /128, no leading zeros)" },
};

Test(decide, lockdown_parse_errors_exact)
{
	for (size_t i = 0; i < sizeof ld_bad / sizeof ld_bad[0]; i++) {
		struct pol_lockdown *ld = (void *)1;
		char err[256] = "";

		cr_expect_eq(pol_lockdown_parse(ld_bad[i].text, &ld, err,
		    sizeof err), -1, "%s", ld_bad[i].text);
		cr_expect_null(ld);
		cr_expect_str_eq(err, ld_bad[i].err);
	}
}

Test(decide, lockdown_entry_limit)
{
	char text[POL_LOCKDOWN_MAX * 20 + 40] = "", err[128];
	struct pol_lockdown *ld;

	for (int i = 0; i <= POL_LOCKDOWN_MAX; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text),
		    "10.%d.0.0/16 ", i);
	cr_assert_eq(pol_lockdown_parse(text, &ld, err, sizeof err), -1);
	cr_assert_str_eq(err, "lockdown: more than 64 entries");
}

/* ---- GeoIP ---- */

Test(decide, geoip_country_and_asn)
{
	static const struct {
		const char *ip;
		enum pol_action action;
		unsigned line;
	} g[] = {
		{ "192.0.2.5", POL_DENY, 1 },		/* KP */
		{ "203.0.113.5", POL_LOGIN, 4 },	/* JP, AS64500 */
		{ "::ffff:203.0.113.5", POL_LOGIN, 4 },	/* mapped: still JP */
		{ "2001:db8:10::1", POL_LOGIN, 4 },	/* JP over IPv6 */
		{ "198.51.100.9", POL_LOGIN, 4 },	/* US */
		{ "2001:db8:66::1", POL_MFA, 2 },	/* RU */
		{ "192.0.2.200", POL_ALLOW, 3 },	/* no country, AS64504 */
		{ "8.8.8.8", POL_MFA, 2 },		/* not in the db */
	};
	struct pol_policy *p = th_load("deny country kp\n"
	    "mfa country !JP,US asn !AS64504\n"
	    "allow asn 64504\n"
	    "login any\n", th_mmdb());

	cr_assert_not_null(p, "%s", th_diags);
	for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
		struct pol_request r = th_req(g[i].ip, "/");
		struct pol_verdict v;

		pol_decide(p, &r, &v);
		cr_expect_eq(v.action, g[i].action, "%s: %s", g[i].ip,
		    pol_action_name(v.action));
		cr_expect_eq(v.line, g[i].line, "%s: line %u", g[i].ip, v.line);
	}
	pol_free(p);
}

/* ---- explain ---- */

Test(decide, explain_names_rules_and_failing_matchers, .init = cr_redirect_stdout)
{
	struct pol_policy *p = th_load(decision_policy, NULL);
	char *argv[] = { "--ip", "203.0.113.7", "--user", "bob", "--path",
	    "/%6danagement/", NULL };
	char want[4096];

	cr_assert_not_null(p);
	cr_assert_eq(pol_cmd_explain(p, 6, argv), 1);
	fflush(stdout);
	snprintf(want, sizeof want,
	    "request: peer 203.0.113.7, GET /management/, user bob, role user, mfa no\n"
	    "  passed %1$s/p.policy:4: deny   from @blocked\n"
	    "    because 'from @blocked' does not hold\n"
	    "  passed %1$s/p.policy:5: allow  from @phones path ^/provisioning/\n"
	    "    because 'from @phones' does not hold\n"
	    "  passed %1$s/p.policy:6: mfa    role admin from @office path ^/(management|admin)(/|$) audit\n"
	    "    because 'role admin' does not hold\n"
	    "  MATCH  %1$s/p.policy:7: deny   path ^/(management|admin)(/|$)\n"
	    "decision: deny (rule %1$s/p.policy:7) [audit]\n", th_dir());
	cr_assert_stdout_eq_str(want);
	pol_free(p);
}

Test(decide, cmd_explain_exit_codes)
{
	struct pol_policy *p = th_load(decision_policy, NULL);
	char *ok[] = { "--ip", "192.0.2.1", "--path", "/provisioning/a", NULL };
	char *bad_ip[] = { "--ip", "999.1.1.1", NULL };
	char *no_ip[] = { "--path", "/", NULL };
	char *bad_path[] = { "--ip", "192.0.2.1", "--path", "/%252e", NULL };
	char *role_without_user[] = { "--ip", "192.0.2.1", "--role", "admin", NULL };
	char *unknown[] = { "--ip", "192.0.2.1", "--frobnicate", NULL };

	cr_assert_not_null(p);
	cr_redirect_stdout();
	cr_redirect_stderr();
	cr_expect_eq(pol_cmd_explain(p, 4, ok), 0);
	cr_expect_eq(pol_cmd_explain(p, 2, bad_ip), 2);
	cr_expect_eq(pol_cmd_explain(p, 2, no_ip), 2);
	cr_expect_eq(pol_cmd_explain(p, 4, bad_path), 2);
	cr_expect_eq(pol_cmd_explain(p, 4, role_without_user), 2);
	cr_expect_eq(pol_cmd_explain(p, 3, unknown), 2);
	pol_free(p);
}

/* ---- the path index never changes a decision ---- */

static uint64_t seed = 42;

static unsigned
rnd(unsigned n)
{
	seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(seed >> 33) % n;
}

Test(decide, index_equals_linear_evaluation)
{
	static const char *const segs[] = { "api", "Api", "management", "admin",
	    "webclient", "provisioning", "x", "a1", "a10", "MyPhone", "ws" };
	static const char *const ips[] = { "203.0.113.9", "8.8.8.8", "192.0.2.3",
	    "2001:db8:10::1", "198.51.100.1" };
	char *text = malloc(300 * 80), path[128];
	size_t o = 0;
	struct pol_policy *p;

	o += (size_t)sprintf(text + o, "list office 203.0.113.0/24\n");
	for (int i = 0; i < 300; i++) {
		static const char *const act[] = { "allow", "login", "mfa", "deny" };
		static const char *const pre[] = { "^/", "^/", "^/", "", "^/(",
		    "^/", "^/", "(?i)^/" };
		static const char *const post[] = { "/", "", "$", "", "|x)/",
		    "?/", "/.*\\.xml$", "" };
		unsigned pi = rnd(8);
		char re[64];

		snprintf(re, sizeof re, "%s%s%s", pre[pi], segs[rnd(11)], post[pi]);
		o += (size_t)sprintf(text + o, "%s path %s%s%s\n", act[rnd(4)],
		    rnd(5) == 0 ? "!" : "", re, rnd(3) == 0 ? " from @office" : "");
	}
	p = th_load(text, NULL);
	cr_assert_not_null(p, "%s", th_diags);
	for (int k = 0; k < 20000; k++) {
		struct pol_request r;
		struct pol_verdict v;
		size_t i, want_line = 0;
		int n = 1 + (int)rnd(3);

		path[0] = '\0';
		for (int j = 0; j < n; j++)
			snprintf(path + strlen(path), sizeof path - strlen(path),
			    "/%s", segs[rnd(11)]);
		if (rnd(2))
			snprintf(path + strlen(path), sizeof path - strlen(path),
			    "%s", rnd(2) ? "/" : "/c.xml");
		r = th_req(ips[rnd(5)], path);
		pol_decide(p, &r, &v);
		for (i = 0; i < p->nrules; i++) {
			const struct pol_matcher *why;
			bool need;

			if (pol_rule_eval(p, &p->rules[i], &r, &need, &why)) {
				want_line = p->rules[i].line;
				break;
			}
		}
		cr_assert_eq(v.line, want_line, "%s: index %u, linear %zu", path,
		    v.line, want_line);
	}
	pol_free(p);
	free(text);
}

/* ---- many threads, one policy ---- */

static struct pol_policy *shared;
#define NDC (sizeof dcases / sizeof dcases[0])
static struct pol_request reqs[NDC];
static struct sockaddr_storage peers[NDC];
static char paths[NDC][256];
static const char *groups[NDC][1];

static void *
worker(void *arg)
{
	size_t bad = 0;

	(void)arg;
	for (int k = 0; k < 20000; k++) {
		size_t i = (size_t)k % NDC;
		struct pol_verdict v;

		pol_decide(shared, &reqs[i], &v);
		bad += v.action != dcases[i].action || v.line != dcases[i].line;
	}
	return (void *)bad;
}

Test(decide, concurrent_decisions_agree)
{
	pthread_t t[4];

	shared = th_load(decision_policy, NULL);
	cr_assert_not_null(shared);
	/* th_req's static slots are not for threads: copy everything out */
	for (size_t i = 0; i < NDC; i++) {
		reqs[i] = make_req(&dcases[i], groups[i]);
		memcpy(&peers[i], reqs[i].peer, sizeof peers[i]);
		snprintf(paths[i], sizeof paths[i], "%s", reqs[i].path);
		reqs[i].peer = (struct sockaddr *)&peers[i];
		reqs[i].path = paths[i];
	}
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, worker, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *bad;

		pthread_join(t[i], &bad);
		cr_expect_eq((size_t)bad, 0, "thread %d: %zu wrong", i, (size_t)bad);
	}
	pol_free(shared);
}

Test(decide, explain_default_and_lockdown, .init = cr_redirect_stdout)
{
	struct pol_policy *p = th_load("login from 10.0.0.0/8\n", NULL);
	char *argv[] = { "--ip", "10.1.2.3", "--user", "alice", "--lockdown",
	    "192.0.2.0/24", NULL };
	char *argv2[] = { "--ip", "8.8.8.8", NULL };
	char want[2048];

	cr_assert_not_null(p);
	cr_assert_eq(pol_cmd_explain(p, 6, argv), 1);
	cr_assert_eq(pol_cmd_explain(p, 2, argv2), 1);
	fflush(stdout);
	snprintf(want, sizeof want,
	    "request: peer 10.1.2.3, GET /, user alice, role user, mfa no\n"
	    "  MATCH  %1$s/p.policy:1: login from 10.0.0.0/8\n"
	    "  user lockdown: the peer is outside the user's own networks\n"
	    "decision: deny (user lockdown %1$s/p.policy:1) [audit]\n"
	    "request: peer 8.8.8.8, GET /, no session\n"
	    "  passed %1$s/p.policy:1: login from 10.0.0.0/8\n"
	    "    because 'from 10.0.0.0/8' does not hold\n"
	    "  no rule matched and no default: deny\n"
	    "decision: deny (default) [audit]\n", th_dir());
	cr_assert_stdout_eq_str(want);
	pol_free(p);
}

Test(decide, verdict_permits_table)
{
	static const struct {
		enum pol_action a;
		bool need, session, mfa, ok;
	} t[] = {
		{ POL_ALLOW, 0, 0, 0, 1 },
		{ POL_LOGIN, 0, 0, 0, 0 },
		{ POL_LOGIN, 0, 1, 0, 1 },
		{ POL_LOGIN, 1, 1, 0, 0 },	/* decided without the session */
		{ POL_MFA, 0, 1, 0, 0 },
		{ POL_MFA, 0, 1, 1, 1 },
		{ POL_MFA, 0, 0, 1, 0 },
		{ POL_DENY, 0, 1, 1, 0 },	/* MFA never rescues a deny */
		{ POL_DENY, 0, 0, 0, 0 },
		{ (enum pol_action)7, 0, 1, 1, 0 },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct pol_verdict v = { .action = t[i].a, .need_session = t[i].need };

		cr_expect_eq(pol_verdict_permits(&v, t[i].session, t[i].mfa),
		    t[i].ok, "row %zu", i);
	}
}
