/* test_client.c -- `desktop-app` and `page`: every diagnostic exactly, the version reader, the User-Agent matcher. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "helpers.h"

TestSuite(client, .fini = th_cleanup);

#define WIN_UA(v) "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/" \
	"537.36 (KHTML, like Gecko) 3CXDesktopApp/" v " Chrome/102.0.5005.167 " \
	"Electron/19.1.9 Safari/537.36"
#define MAC_UA(v) "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) " \
	"AppleWebKit/537.36 (KHTML, like Gecko) 3CXDesktopApp/" v \
	" Chrome/102.0.5005.167 Electron/19.1.9 Safari/537.36"

static const char clients_policy[] =
    "deny desktop-app windows 18.12.407,18.12.416 page compromised-client\n"
    "deny desktop-app macos 18.11.1213,18.12.402,18.12.407,18.12.416 "
    "page compromised-client\n"
    "default allow\n";

/* ---- grammar: each bad input its own case, exact FILE:LINE:COL ---- */

static const struct {
	const char *name, *text, *want;
} bad[] = {
	{ "unknown_os", "deny desktop-app linux 18.12.416\n",
	  "E DIR/p.policy:1:18: unknown OS 'linux' (expected windows or macos, "
	  "comma-separated)" },
	{ "os_is_case_exact", "deny desktop-app Windows 18.12.416\n",
	  "E DIR/p.policy:1:18: unknown OS 'Windows' (expected windows or "
	  "macos, comma-separated)" },
	{ "second_os_unknown", "deny desktop-app windows,ios 18.12.416\n",
	  "E DIR/p.policy:1:26: unknown OS 'ios' (expected windows or macos, "
	  "comma-separated)" },
	{ "empty_os_item", "deny desktop-app windows, 18.12.416\n",
	  "E DIR/p.policy:1:26: empty item in comma-separated list" },
	{ "version_with_letter", "deny desktop-app windows 18.12.x\n",
	  "E DIR/p.policy:1:26: bad version '18.12.x' (expected 1 to 4 numbers "
	  "of at most 9 digits separated by dots, e.g. 18.12.416)" },
	{ "second_version_bad", "deny desktop-app windows 18.12.407,18..416\n",
	  "E DIR/p.policy:1:36: bad version '18..416' (expected 1 to 4 numbers "
	  "of at most 9 digits separated by dots, e.g. 18.12.416)" },
	{ "version_trailing_dot", "deny desktop-app macos 18.12.\n",
	  "E DIR/p.policy:1:24: bad version '18.12.' (expected 1 to 4 numbers "
	  "of at most 9 digits separated by dots, e.g. 18.12.416)" },
	{ "version_five_parts", "deny desktop-app macos 1.2.3.4.5\n",
	  "E DIR/p.policy:1:24: bad version '1.2.3.4.5' (expected 1 to 4 "
	  "numbers of at most 9 digits separated by dots, e.g. 18.12.416)" },
	{ "version_ten_digits", "deny desktop-app macos 18.1234567890\n",
	  "E DIR/p.policy:1:24: bad version '18.1234567890' (expected 1 to 4 "
	  "numbers of at most 9 digits separated by dots, e.g. 18.12.416)" },
	{ "version_signed", "deny desktop-app macos +18.12.416\n",
	  "E DIR/p.policy:1:24: bad version '+18.12.416' (expected 1 to 4 "
	  "numbers of at most 9 digits separated by dots, e.g. 18.12.416)" },
	{ "version_range_not_a_version", "deny desktop-app macos <18.12.425\n",
	  "E DIR/p.policy:1:24: bad version '<18.12.425' (expected 1 to 4 "
	  "numbers of at most 9 digits separated by dots, e.g. 18.12.416)" },
	{ "empty_version_item", "deny desktop-app macos 18.12.416,\n",
	  "E DIR/p.policy:1:34: empty item in comma-separated list" },
	{ "bang_on_versions", "deny desktop-app windows !18.12.416\n",
	  "E DIR/p.policy:1:26: '!' negates the whole matcher: write it before "
	  "the OS" },
	{ "missing_versions", "deny desktop-app windows\n",
	  "E DIR/p.policy:1:6: 'desktop-app' needs an OS (windows, macos) and "
	  "versions, comma-separated" },
	{ "missing_everything", "deny desktop-app\n",
	  "E DIR/p.policy:1:6: 'desktop-app' needs an OS (windows, macos) and "
	  "versions, comma-separated" },
	{ "versions_replaced_by_page",
	  "deny desktop-app windows page compromised-client\n",
	  "E DIR/p.policy:1:6: 'desktop-app' needs an OS (windows, macos) and "
	  "versions, comma-separated" },
	{ "page_without_name", "deny desktop-app windows 18.12.416 page\n",
	  "E DIR/p.policy:1:36: 'page' needs a page name (compromised-client)" },
	{ "page_name_is_keyword", "deny page audit any\n",
	  "E DIR/p.policy:1:6: 'page' needs a page name (compromised-client)" },
	{ "unknown_page", "deny any page compromised\n",
	  "E DIR/p.policy:1:15: unknown page 'compromised' (expected "
	  "compromised-client)" },
	{ "page_on_allow", "allow path ^/x page compromised-client\n",
	  "E DIR/p.policy:1:16: 'page' is only for deny rules (a page explains "
	  "a refusal)" },
	{ "page_on_login", "login any page compromised-client\n",
	  "E DIR/p.policy:1:11: 'page' is only for deny rules (a page explains "
	  "a refusal)" },
	{ "page_on_mfa", "mfa any page compromised-client\n",
	  "E DIR/p.policy:1:9: 'page' is only for deny rules (a page explains "
	  "a refusal)" },
	{ "page_twice",
	  "deny any page compromised-client page compromised-client\n",
	  "E DIR/p.policy:1:34: 'page' given twice in one rule" },
	{ "page_alone_is_no_matcher", "deny page compromised-client\n",
	  "E DIR/p.policy:1:1: 'deny' rule has no matcher (write 'any' to match "
	  "every request)" },
};

Test(client, every_grammar_error_exact)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct pol_policy *p = th_load(bad[i].text, NULL);

		cr_expect_null(p, "%s: policy loaded", bad[i].name);
		cr_expect_str_eq(th_diags, bad[i].want, "%s", bad[i].name);
		pol_free(p);
	}
}

Test(client, good_forms_load_without_warnings)
{
	static const char *const good[] = {
		clients_policy,
		"deny page compromised-client desktop-app windows,macos 18.12.416\n",
		"deny desktop-app !windows 1 audit\n",
		"deny desktop-app macos 18.12.416 path ^/webclient/ page "
		"compromised-client\n",
	};

	for (size_t i = 0; i < 4; i++) {
		struct pol_policy *p = th_load(good[i], NULL);

		cr_expect_not_null(p, "%s: %s", good[i], th_diags);
		cr_expect_str_eq(th_diags, "", "%s", good[i]);
		pol_free(p);
	}
}

/* ---- versions ---- */

Test(client, version_reader)
{
	static const struct {
		const char *s;
		int rc;
		uint32_t part[4];
	} cases[] = {
		{ "18.12.416", 0, { 18, 12, 416, 0 } },
		{ "18.11.1213", 0, { 18, 11, 1213, 0 } },
		{ "18", 0, { 18, 0, 0, 0 } },
		{ "1.2.3.4", 0, { 1, 2, 3, 4 } },
		{ "999999999.0", 0, { 999999999, 0, 0, 0 } },
		{ "018.12.416", 0, { 18, 12, 416, 0 } },
		{ "", -1, { 0 } },
		{ ".1", -1, { 0 } },
		{ "1.", -1, { 0 } },
		{ "1..2", -1, { 0 } },
		{ "1.2.3.4.5", -1, { 0 } },
		{ "1234567890", -1, { 0 } },
		{ "18.12.416-beta", -1, { 0 } },
		{ "18.12.416 ", -1, { 0 } },
		{ "-1", -1, { 0 } },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct pol_version v;
		int rc = pol_version_parse(cases[i].s, strlen(cases[i].s), &v);

		cr_expect_eq(rc, cases[i].rc, "'%s': %d", cases[i].s, rc);
		if (rc == 0)
			cr_expect_arr_eq(v.part, cases[i].part, sizeof v.part,
			    "'%s'", cases[i].s);
	}
}

Test(client, version_order_is_numeric)
{
	struct pol_version a, b;

	pol_version_parse("18.12.416", 9, &a);
	pol_version_parse("18.12.425", 9, &b);
	cr_expect_lt(pol_version_cmp(&a, &b), 0);
	pol_version_parse("18.12.1000", 10, &b);
	cr_expect_lt(pol_version_cmp(&a, &b), 0);	/* not text order */
	pol_version_parse("18.12.416.0", 11, &b);
	cr_expect_eq(pol_version_cmp(&a, &b), 0);
}

/* ---- the matcher on real User-Agent strings ---- */

static const char *
ua_hdr(void *arg, const char *name)
{
	return strcasecmp(name, "User-Agent") == 0 ? arg : NULL;
}

static struct pol_verdict
decide_ua(const struct pol_policy *p, const char *ua)
{
	struct pol_request r = th_req("198.51.100.7", "/webclient/");
	struct pol_verdict v;

	r.header = ua_hdr;
	r.header_arg = (void *)ua;
	pol_decide(p, &r, &v);
	return v;
}

static const struct {
	const char *ua;
	unsigned line;	/* 0: passes (the default allow at line 3) */
} uas[] = {
	{ WIN_UA("18.12.407"), 1 },
	{ WIN_UA("18.12.416"), 1 },
	{ MAC_UA("18.11.1213"), 2 },
	{ MAC_UA("18.12.402"), 2 },
	{ MAC_UA("18.12.407"), 2 },
	{ MAC_UA("18.12.416"), 2 },
	/* fixed builds */
	{ WIN_UA("18.12.422"), 0 },
	{ WIN_UA("18.12.425"), 0 },
	{ MAC_UA("18.12.425"), 0 },
	{ MAC_UA("20.0.1"), 0 },
	/* macOS-only builds on Windows were never shipped compromised */
	{ WIN_UA("18.11.1213"), 0 },
	{ WIN_UA("18.12.402"), 0 },
	/* spelling the app and OS tokens in another case */
	{ "Mozilla/5.0 (windows nt 10.0) 3cxdesktopapp/18.12.416", 1 },
	/* numerically equal */
	{ WIN_UA("18.12.416.0"), 1 },
	{ WIN_UA("018.12.416"), 1 },
	/* two tokens, either listed: holds */
	{ "Mozilla/5.0 (Windows NT 10.0) 3CXDesktopApp/18.12.425 "
	  "3CXDesktopApp/18.12.416", 1 },
	/* unparsable versions match no version rule */
	{ WIN_UA("18.12.416beta"), 0 },
	{ WIN_UA("18.12.x"), 0 },
	{ WIN_UA(""), 0 },
	/* browsers, the web client, the PWA, phones */
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 0 },
	{ "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
	  " (KHTML, like Gecko) Version/17.1 Safari/605.1.15", 0 },
	{ "Yealink SIP-T46U 108.86.0.20", 0 },
	/* the token without an OS names no family */
	{ "3CXDesktopApp/18.12.416", 0 },
	{ "", 0 },
};

Test(client, user_agent_table)
{
	struct pol_policy *p = th_load(clients_policy, NULL);

	cr_assert_not_null(p, "%s", th_diags);
	for (size_t i = 0; i < sizeof uas / sizeof uas[0]; i++) {
		struct pol_verdict v = decide_ua(p, uas[i].ua);

		cr_expect_eq(v.line, uas[i].line ? uas[i].line : 3,
		    "'%s': line %u", uas[i].ua, v.line);
		cr_expect_eq(v.action, uas[i].line ? POL_DENY : POL_ALLOW,
		    "'%s'", uas[i].ua);
		cr_expect_eq(v.page, uas[i].line ? POL_PAGE_COMPROMISED_CLIENT :
		    POL_PAGE_NONE, "'%s'", uas[i].ua);
	}
	pol_free(p);
}

/* The shipped etc/clients.policy (next to the sample lockdown.policy)
 * decides the same table, its rules at lines 23 and 28. */
Test(client, shipped_clients_policy)
{
	const char *sample = getenv("POL_SAMPLE_POLICY");
	char path[4096];
	struct pol_policy *p;

	cr_assert_not_null(sample);
	snprintf(path, sizeof path, "%.*s/clients.policy",
	    (int)(strrchr(sample, '/') - sample), sample);
	p = th_load_path(path, NULL);
	cr_assert_not_null(p, "%s", th_diags);
	cr_expect_str_eq(th_diags, "");
	for (size_t i = 0; i < sizeof uas / sizeof uas[0]; i++) {
		struct pol_verdict v = decide_ua(p, uas[i].ua);
		unsigned want = uas[i].line == 1 ? 23 : uas[i].line == 2 ? 28 : 0;

		cr_expect_eq(v.line, want, "'%s': line %u", uas[i].ua, v.line);
		cr_expect_eq(v.action, POL_DENY, "'%s'", uas[i].ua);
		cr_expect_eq(v.page, want ? POL_PAGE_COMPROMISED_CLIENT :
		    POL_PAGE_NONE, "'%s'", uas[i].ua);
	}
	pol_free(p);
}

Test(client, no_user_agent_never_matches)
{
	struct pol_policy *p = th_load(clients_policy, NULL);
	struct pol_request r = th_req("198.51.100.7", "/");
	struct pol_verdict v;

	cr_assert_not_null(p);
	pol_decide(p, &r, &v);
	cr_expect_eq(v.action, POL_ALLOW);
	cr_expect_eq(v.page, POL_PAGE_NONE);
	pol_free(p);
}

Test(client, scan_reports_version_os_and_unparsable)
{
	struct pol_policy *p = th_load(clients_policy, NULL);
	struct pol_policy *none = th_load("default allow\n", NULL);
	struct pol_client ci;

	cr_assert_not_null(p);
	cr_assert_not_null(none);
	cr_expect_not(pol_client_scan(none, WIN_UA("18.12.416"), &ci));
	cr_expect(pol_client_scan(p, WIN_UA("18.12.416"), &ci));
	cr_expect(ci.app);
	cr_expect_not(ci.bad_version);
	cr_expect_str_eq(ci.version, "18.12.416");
	cr_expect_str_eq(pol_os_name(ci.os), "windows");
	cr_expect(pol_client_scan(p, MAC_UA("18.12.4\"16<x>"), &ci));
	cr_expect(ci.bad_version);
	cr_expect_str_eq(ci.version, "18.12.4?16?x?");
	cr_expect_str_eq(pol_os_name(ci.os), "macos");
	cr_expect(pol_client_scan(p, "curl/8.5.0", &ci));
	cr_expect_not(ci.app);
	cr_expect_str_eq(pol_os_name(ci.os), "unknown");
	pol_free(p);
	pol_free(none);
}

Test(client, explain_shows_rule_and_page, .init = cr_redirect_stdout)
{
	struct pol_policy *p = th_load(clients_policy, NULL);
	char *argv[] = { "--ip", "198.51.100.7", "--path", "/webclient/",
	    "--header", "User-Agent: " MAC_UA("18.12.402"), NULL };
	char want[4096];

	cr_assert_not_null(p);
	cr_assert_eq(pol_cmd_explain(p, 6, argv), 1);
	fflush(stdout);
	snprintf(want, sizeof want,
	    "request: peer 198.51.100.7, GET /webclient/, no session\n"
	    "  passed %1$s/p.policy:1: deny desktop-app windows "
	    "18.12.407,18.12.416 page compromised-client\n"
	    "    because 'desktop-app windows 18.12.407,18.12.416' does not "
	    "hold\n"
	    "  MATCH  %1$s/p.policy:2: deny desktop-app macos "
	    "18.11.1213,18.12.402,18.12.407,18.12.416 page compromised-client\n"
	    "decision: deny (rule %1$s/p.policy:2) [audit] page "
	    "compromised-client\n", th_dir());
	cr_assert_stdout_eq_str(want);
	pol_free(p);
}
