/* test_sample.c -- etc/lockdown.policy loads cleanly and protects the PBX layout as documented. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(sample, .fini = th_cleanup);

static const struct {
	const char *ip, *path, *method;
	int who;	/* 0 no session, 1 user, 2 admin, 3 admin of group ops */
	enum pol_action action;
	bool need_session;
} cases[] = {
	/* gateway pages: always, from anywhere */
	{ "8.8.8.8", "/_pbxgate/login", "GET", 0, POL_ALLOW, false },
	/* provisioning only from the phone network, and only GET/HEAD */
	{ "192.0.2.10", "/provisioning/s3cr3t/cfg.xml", "GET", 0, POL_ALLOW, false },
	{ "192.0.2.10", "/provisioning/s3cr3t/cfg.xml", "POST", 0, POL_DENY, false },
	{ "8.8.8.8", "/provisioning/s3cr3t/cfg.xml", "GET", 0, POL_DENY, false },
	{ "8.8.8.8", "/Provisioning/../provisioning/x", "GET", 0, POL_DENY, false },
	/* installers yes, the rest of /electron no (CVE-2022-28005) */
	{ "8.8.8.8", "/electron/windows/3CXDesktopApp-18.12.425.msi", "GET", 0, POL_ALLOW, false },
	{ "8.8.8.8", "/electron/osx/3CXDesktopApp.dmg", "HEAD", 0, POL_ALLOW, false },
	{ "8.8.8.8", "/Electron/download\\..\\..\\windows\\win.ini", "GET", 0, POL_DENY, false },
	{ "8.8.8.8", "/electron/download/x", "GET", 0, POL_DENY, false },
	/* click-to-call stays public */
	{ "8.8.8.8", "/MyPhone/c2clogin", "GET", 0, POL_ALLOW, false },
	{ "8.8.8.8", "/MyPhone/c2clogin", "DELETE", 0, POL_DENY, false },
	/* console API: office admins with MFA */
	{ "203.0.113.5", "/api/login", "POST", 0, POL_LOGIN, true },
	{ "203.0.113.5", "/api/login", "POST", 2, POL_MFA, false },
	{ "203.0.113.5", "/api/login", "POST", 1, POL_DENY, false },
	{ "8.8.8.8", "/api/login", "POST", 2, POL_DENY, false },
	{ "8.8.8.8", "/%61pi/login", "POST", 2, POL_DENY, false },
	/* web client: login from the office, MFA from elsewhere */
	{ "203.0.113.5", "/webclient/", "GET", 1, POL_LOGIN, false },
	{ "2001:db8:10::7", "/ws/webclient", "GET", 1, POL_LOGIN, false },
	{ "8.8.8.8", "/webclient/api/Login/GetAccessToken", "POST", 0, POL_MFA, false },
	{ "8.8.8.8", "/callcontrol/websocket", "GET", 1, POL_MFA, false },
	{ "8.8.8.8", "/connect/token", "POST", 1, POL_MFA, false },
	/* console SPA at /: office admins only */
	{ "203.0.113.5", "/", "GET", 2, POL_MFA, false },
	{ "203.0.113.5", "/", "GET", 1, POL_DENY, false },
	{ "8.8.8.8", "/", "GET", 2, POL_DENY, false },
	{ "8.8.8.8", "/", "TRACE", 0, POL_DENY, false },
};

Test(sample, lockdown_policy_protects_the_pbx_layout)
{
	const char *file = getenv("POL_SAMPLE_POLICY");
	struct pol_policy *p;

	cr_assert_not_null(file, "POL_SAMPLE_POLICY not set (run via meson test)");
	th_dir();
	p = th_load_path(file, NULL);
	cr_assert_not_null(p, "%s", th_diags);
	cr_assert_str_eq(th_diags, "");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct pol_request r = th_req(cases[i].ip, cases[i].path);
		struct pol_verdict v;

		r.method = cases[i].method;
		if (cases[i].who > 0) {
			r.has_session = true;
			r.user = "1000";
			r.admin = cases[i].who >= 2;
		}
		pol_decide(p, &r, &v);
		cr_expect_eq(v.action, cases[i].action, "%s %s %s (who %d): %s at "
		    "line %u", cases[i].ip, cases[i].method, cases[i].path,
		    cases[i].who, pol_action_name(v.action), v.line);
		cr_expect_eq(v.need_session, cases[i].need_session, "case %zu", i);
	}
	pol_free(p);
}
