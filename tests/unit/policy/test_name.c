/* test_name.c -- user names: one folding rule for the store and `user`
 * rules, and the warning for a name in a rule that cannot exist. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"

TestSuite(name, .fini = th_cleanup);

Test(name, fold_table)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "Mallory", "mallory" }, { "mallory", "mallory" },
		{ "ALICE.B-C_D@EXAMPLE", "alice.b-c_d@example" }, { "1000", "1000" },
	};
	static const char *const bad[] = {
		"", ".dot", "-dash", "_under", "@at", "Mal!ory", "mal ory",
		"Malłory", "m\tx",
		"a23456789012345678901234567890123456789012345678901234567890123456",
	};
	char out[POL_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		cr_assert_eq(pol_name_fold(ok[i].in, out, sizeof out), 0, "%s", ok[i].in);
		cr_expect_str_eq(out, ok[i].out);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(pol_name_fold(bad[i], out, sizeof out), -1, "%s", bad[i]);
	cr_expect_eq(pol_name_fold("alice", out, 5), -1);	/* no room for NUL */
	cr_expect_eq(pol_name_fold(NULL, out, sizeof out), -1);
}

static enum pol_action
decide_for(const struct pol_policy *p, const char *user)
{
	struct pol_request r = th_req("192.0.2.1", "/x");
	struct pol_verdict v;

	r.has_session = true;
	r.user = user;	/* sessions carry the folded name */
	pol_decide(p, &r, &v);
	return v.action;
}

/* `deny user Mallory` denies the user the store calls mallory */
Test(name, user_rule_folds_like_the_store)
{
	struct pol_policy *p = th_load("deny user Mallory,BOB.Smith\n"
	    "allow any\n", NULL);

	cr_assert_not_null(p, "%s", th_diags);
	cr_expect_str_eq(th_diags, "");
	cr_expect_eq(decide_for(p, "mallory"), POL_DENY);
	cr_expect_eq(decide_for(p, "bob.smith"), POL_DENY);
	cr_expect_eq(decide_for(p, "alice"), POL_ALLOW);
	pol_free(p);
}

/* a name that cannot exist is a warning at its column */
Test(name, impossible_user_name_warned)
{
	struct pol_policy *p = th_load("deny user alice,Mal!ory\n"
	    "deny user -x\n"
	    "allow any\n", NULL);

	cr_assert_not_null(p, "%s", th_diags);
	cr_expect_str_eq(th_diags,
	    "W DIR/p.policy:1:17: user 'Mal!ory' can never match: not a valid "
	    "user name (1 to 64 ASCII letters, digits and . _ @ -, starting with "
	    "a letter or digit)\n"
	    "W DIR/p.policy:2:11: user '-x' can never match: not a valid user "
	    "name (1 to 64 ASCII letters, digits and . _ @ -, starting with a "
	    "letter or digit)");
	cr_expect_eq(decide_for(p, "alice"), POL_DENY);
	pol_free(p);
}

struct seen {
	char buf[512];
};

static void
seen_name(void *arg, const char *name, const char *file, unsigned line, unsigned col)
{
	struct seen *s = arg;
	size_t o = strlen(s->buf);

	(void)file;
	snprintf(s->buf + o, sizeof s->buf - o, "%s@%u:%u ", name, line, col);
}

Test(name, user_names_listed_folded_with_position)
{
	struct pol_policy *p = th_load("allow path ^/open/\n"
	    "deny user Mallory,bad!,Eve\n"
	    "mfa group sales user Bob\n"
	    "allow any\n", NULL);
	struct seen s = { "" };

	cr_assert_not_null(p, "%s", th_diags);
	pol_user_names(p, seen_name, &s);
	cr_expect_str_eq(s.buf, "mallory@2:11 eve@2:24 bob@3:22 ");
	pol_free(p);
}
