/* test_parse.c -- every policy diagnostic, exactly, with FILE:LINE:COL. */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"

TestSuite(parse, .fini = th_cleanup);

/* A policy that must be refused with exactly these diagnostics. */
static void
refused(const char *text, bool geoip, const char *want)
{
	struct pol_policy *p = th_load(text, geoip ? th_mmdb() : NULL);

	cr_expect_null(p, "policy loaded: %s", text);
	cr_expect_str_eq(th_diags, want);
	pol_free(p);
}

/* A policy that must load, with exactly these warnings (maybe none). */
static struct pol_policy *
loaded(const char *text, bool geoip, const char *want)
{
	struct pol_policy *p = th_load(text, geoip ? th_mmdb() : NULL);

	cr_expect_not_null(p, "policy refused: %s", th_diags);
	cr_expect_str_eq(th_diags, want);
	return p;
}

#define REFUSED(name, text, geoip, want) \
	Test(parse, name) { refused(text, geoip, want); }

REFUSED(unknown_keyword, "permit any\n", false,
    "E DIR/p.policy:1:1: unknown keyword 'permit' (expected list, include, "
    "default, allow, login, mfa or deny)")
REFUSED(unknown_matcher, "deny frm 10.0.0.0/8\n", false,
    "E DIR/p.policy:1:6: unknown matcher 'frm' (expected from, country, asn, "
    "user, group, role, path, method, header, desktop-app, any, audit, "
    "case-sensitive or page)")
REFUSED(missing_argument_at_end, "deny from\n", false,
    "E DIR/p.policy:1:6: 'from' needs a CIDR or @list, comma-separated")
REFUSED(missing_argument_before_keyword, "deny from path ^/x\n", false,
    "E DIR/p.policy:1:6: 'from' needs a CIDR or @list, comma-separated")
REFUSED(missing_argument_after_bang, "deny from !\n", false,
    "E DIR/p.policy:1:6: 'from' needs a CIDR or @list, comma-separated")
REFUSED(header_needs_name_and_regex, "deny header X-Foo\n", false,
    "E DIR/p.policy:1:6: 'header' needs a header name and a regular expression")
REFUSED(unknown_list, "deny from @nope\n", false,
    "E DIR/p.policy:1:11: unknown list '@nope' (define it with 'list' before "
    "this line)")
REFUSED(list_used_before_definition,
    "deny from @late\nlist late 10.0.0.0/8\n", false,
    "E DIR/p.policy:1:11: unknown list '@late' (define it with 'list' before "
    "this line)")
REFUSED(bad_cidr, "deny from 10.0.0.256\n", false,
    "E DIR/p.policy:1:11: bad address '10.0.0.256' (expected an IPv4 or IPv6 "
    "address, optionally with /LEN)")
REFUSED(bad_prefix_length_in_comma_list, "deny from 10.0.0.0/8,10.0.0.0/40\n",
    false, "E DIR/p.policy:1:22: bad prefix length in '10.0.0.0/40' (IPv4 "
    "takes /0 to /32, no leading zeros)")
REFUSED(empty_items, "deny from 10.0.0.0/8,,\n", false,
    "E DIR/p.policy:1:22: empty item in comma-separated list\n"
    "E DIR/p.policy:1:23: empty item in comma-separated list")
REFUSED(bad_regex_column_from_pcre2_offset, "deny path ^/(a\n", false,
    "E DIR/p.policy:1:15: bad regex: missing closing parenthesis (at offset "
    "4 of '^/(a')")
REFUSED(bad_regex_negated, "deny path !^/[a\n", false,
    "E DIR/p.policy:1:16: bad regex: missing terminating ] for character "
    "class (at offset 4 of '^/[a')")
REFUSED(bad_regex_in_header, "deny header User-Agent a{2,1}\n", false,
    "E DIR/p.policy:1:29: bad regex: numbers out of order in {} quantifier "
    "(at offset 5 of 'a{2,1}')")
REFUSED(unknown_country, "deny country JP,XY\n", true,
    "E DIR/p.policy:1:17: unknown country code 'XY' (ISO 3166-1 alpha-2 "
    "expected, e.g. JP)")
REFUSED(country_name_not_code, "deny country Japan\n", true,
    "E DIR/p.policy:1:14: unknown country code 'Japan' (ISO 3166-1 alpha-2 "
    "expected, e.g. JP)")
REFUSED(country_without_geoip_db, "deny country !JP,US\n", false,
    "E DIR/p.policy:1:6: 'country' needs a GeoIP database: set geoip_db in "
    "the main configuration")
REFUSED(asn_without_geoip_db, "deny asn 64500\n", false,
    "E DIR/p.policy:1:6: 'asn' needs a GeoIP database: set geoip_db in the "
    "main configuration")
REFUSED(bad_asn, "deny asn AS64500,ASX\n", true,
    "E DIR/p.policy:1:18: bad AS number 'ASX' (expected 1 to 4294967295, "
    "optionally written AS64500)")
REFUSED(asn_too_big, "deny asn 4294967296\n", true,
    "E DIR/p.policy:1:10: bad AS number '4294967296' (expected 1 to "
    "4294967295, optionally written AS64500)")
REFUSED(duplicate_list, "list a 10.0.0.0/8\nlist a 10.0.0.0/8\nallow any\n",
    false, "E DIR/p.policy:2:6: list 'a' already defined at DIR/p.policy:1")
REFUSED(list_without_items, "list a\n", false,
    "E DIR/p.policy:1:1: 'list' needs a name and at least one CIDR or "
    "file:PATH")
REFUSED(bad_list_name, "list a/b 10.0.0.0/8\n", false,
    "E DIR/p.policy:1:6: bad list name 'a/b' (letters, digits, '_', '-', "
    "'.'; at most 64)")
REFUSED(list_in_list, "list a 10.0.0.0/8\nlist b @a\n", false,
    "E DIR/p.policy:2:8: a list cannot contain another list ('@a'); name "
    "both in the rule: from @a,@b")
REFUSED(list_file_missing, "list a file:nope.txt\n", false,
    "E DIR/p.policy:1:13: DIR/nope.txt: cannot open: No such file or "
    "directory")
REFUSED(unknown_action_in_default, "default permit\n", false,
    "E DIR/p.policy:1:9: unknown action 'permit' (expected allow, login, mfa "
    "or deny)")
REFUSED(default_without_action, "default\n", false,
    "E DIR/p.policy:1:1: 'default' needs an action (allow, login, mfa or deny)")
REFUSED(default_twice, "default deny\ndefault allow\n", false,
    "E DIR/p.policy:2:1: default already set at DIR/p.policy:1")
REFUSED(rule_without_matcher, "deny\n", false,
    "E DIR/p.policy:1:1: 'deny' rule has no matcher (write 'any' to match "
    "every request)")
REFUSED(any_with_other_matchers, "deny any from 10.0.0.0/8\n", false,
    "E DIR/p.policy:1:6: 'any' cannot be combined with other matchers")
REFUSED(unknown_role, "deny role root\n", false,
    "E DIR/p.policy:1:11: unknown role 'root' (expected admin or user)")
REFUSED(bad_method, "deny method GE1\n", false,
    "E DIR/p.policy:1:13: bad method 'GE1' (letters only, e.g. GET)")
REFUSED(bad_header_name, "deny header X:Y ^a\n", false,
    "E DIR/p.policy:1:14: bad character in header name 'X:Y'")
REFUSED(unterminated_quote, "deny header X-A \"abc\n", false,
    "E DIR/p.policy:1:17: unterminated quoted word (add the closing '\"')")
REFUSED(include_missing, "include nope.policy\n", false,
    "E DIR/p.policy:1:9: DIR/nope.policy: cannot open: No such file or "
    "directory")
REFUSED(include_itself, "include p.policy\nallow any\n", false,
    "E DIR/p.policy:1:9: 'DIR/p.policy' includes itself")
REFUSED(include_extra_word, "include a b\n", false,
    "E DIR/p.policy:1:11: 'include' takes one file name")
REFUSED(every_error_reported,
    "allow frm 1.2.3.4\n"
    "deny from 300.1.1.1\n"
    "# fine\n"
    "mfa path (\n", false,
    "E DIR/p.policy:1:7: unknown matcher 'frm' (expected from, country, asn, "
    "user, group, role, path, method, header, desktop-app, any, audit, "
    "case-sensitive or page)\n"
    "E DIR/p.policy:2:11: bad address '300.1.1.1' (expected an IPv4 or IPv6 "
    "address, optionally with /LEN)\n"
    "E DIR/p.policy:4:11: bad regex: missing closing parenthesis (at offset "
    "1 of '(')")

Test(parse, nul_byte_in_line)
{
	struct pol_policy *p = th_load_bytes("allow any\ndeny any\0x\n", 20, NULL);

	cr_assert_null(p);
	cr_assert_str_eq(th_diags, "E DIR/p.policy:2:1: NUL byte in line");
}

Test(parse, missing_policy_file)
{
	char path[300];

	snprintf(path, sizeof path, "%s/none.policy", th_dir());
	cr_assert_null(th_load_path(path, NULL));
	cr_assert_str_eq(th_diags, "E DIR/none.policy:0:0: policy file: cannot "
	    "open: No such file or directory");
}

Test(parse, geoip_db_unreadable)
{
	char db[300];
	struct pol_policy *p;

	snprintf(db, sizeof db, "%s/none.mmdb", th_dir());
	p = th_load("deny country KP\nallow any\n", db);
	cr_assert_null(p);
	cr_assert_str_eq(th_diags, "E DIR/p.policy:1:6: GeoIP database "
	    "DIR/none.mmdb: cannot open: No such file or directory");
}

Test(parse, list_file_errors)
{
	th_write("l.txt", "# blocklist\n198.51.100.0/24\n\n  x.y  # bad\n"
	    "10.0.0.1/8\n1.2.3.4 5.6.7.8\n");
	refused("list a file:l.txt\ndeny from @a\n", false,
	    "E DIR/l.txt:4:3: bad address 'x.y' (expected an IPv4 or IPv6 "
	    "address, optionally with /LEN)\n"
	    "E DIR/l.txt:5:1: '10.0.0.1/8' has host bits set: write 10.0.0.0/8 "
	    "for the network, or 10.0.0.1 alone for the one address\n"
	    "E DIR/l.txt:6:9: one CIDR a line expected, found '5.6.7.8' after it");
}

/* One host-bits rule for every address list of the configuration. */
Test(parse, host_bits_are_an_error)
{
	refused("deny from 10.0.0.1/8\nallow any\n", false,
	    "E DIR/p.policy:1:11: '10.0.0.1/8' has host bits set: write "
	    "10.0.0.0/8 for the network, or 10.0.0.1 alone for the one "
	    "address");
}

Test(parse, rules_after_any_warn)
{
	pol_free(loaded("mfa any\ndeny from 10.0.0.0/8\nallow path ^/x\n"
	    "default deny\n", false,
	    "W DIR/p.policy:2:1: rule is never reached: the 'any' rule at "
	    "DIR/p.policy:1 matches every request\n"
	    "W DIR/p.policy:3:1: rule is never reached: the 'any' rule at "
	    "DIR/p.policy:1 matches every request"));
}

Test(parse, empty_policy_warns)
{
	pol_free(loaded("# nothing\n", false, "W DIR/p.policy:1:1: no rules and "
	    "no default: every request is denied"));
}

Test(parse, draft_from_the_issue_loads_cleanly)
{
	struct pol_policy *p;

	th_write("blocklist.txt", "198.51.100.0/25\n2001:db8:66::/48\n");
	p = loaded(
	    "list office   203.0.113.0/24 2001:db8:10::/48\n"
	    "list blocked  file:blocklist.txt   # one CIDR a line\n"
	    "list phones   192.0.2.0/24\n"
	    "deny   from @blocked\n"
	    "allow  from @phones path ^/provisioning/            # phones\n"
	    "mfa    role admin from @office path ^/(management|admin)(/|$)\n"
	    "deny   path ^/(management|admin)(/|$)\n"
	    "deny   country !JP,US\n"
	    "login  from @office\n"
	    "mfa    any\n"
	    "default deny\n", true, "");
	cr_assert_eq(pol_rule_count(p), 7);
	pol_free(p);
}

Test(parse, include_and_quoted_words)
{
	struct pol_policy *p;
	struct pol_request r;
	struct pol_verdict v;

	th_write("lists.inc", "list office 203.0.113.0/24\n");
	p = loaded("include lists.inc\n"
	    "deny header \"User-Agent\" \"bad \\\"bot\\\"\"\n"
	    "allow from @office\n", false, "");
	cr_assert_not_null(p);
	r = th_req("203.0.113.7", "/");
	pol_decide(p, &r, &v);
	cr_assert_eq(v.action, POL_ALLOW);
	cr_assert_eq(v.line, 3);
	pol_free(p);
}

Test(parse, utf8_bom_and_crlf_are_accepted)
{
	pol_free(loaded("\xef\xbb\xbf" "list a 10.0.0.0/8\r\n"
	    "deny from @a\r\nallow any\r\n", false, ""));
}

Test(parse, not_a_regular_file)
{
	refused("include .\n", false,
	    "E DIR/p.policy:1:9: DIR/.: not a regular file (directory)");
}

/* Before pol_file_*, a FIFO named by include or file: blocked the loader
 * (and `check`, and a reload) forever; each kind is refused at its word. */
static void
refused_fifo(const char *text, bool geoip_fifo, const char *want)
{
	char fifo[300];
	struct pol_policy *p;

	snprintf(fifo, sizeof fifo, "%s/fifo", th_dir());
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	p = th_load(text, geoip_fifo ? fifo : NULL);
	cr_expect_null(p);
	cr_expect_str_eq(th_diags, want);
	pol_free(p);
}

Test(parse, include_fifo_refused, .timeout = 10)
{
	refused_fifo("include fifo\nallow any\n", false,
	    "E DIR/p.policy:1:9: DIR/fifo: not a regular file (fifo)");
}

Test(parse, list_file_fifo_refused, .timeout = 10)
{
	refused_fifo("list a file:fifo\n", false,
	    "E DIR/p.policy:1:13: DIR/fifo: not a regular file (fifo)");
}

Test(parse, include_char_device_refused, .timeout = 10)
{
	refused("include /dev/zero\n", false,
	    "E DIR/p.policy:1:9: /dev/zero: not a regular file (character "
	    "device)");
}

Test(parse, list_file_char_device_refused, .timeout = 10)
{
	refused("list a file:/dev/zero\n", false,
	    "E DIR/p.policy:1:13: /dev/zero: not a regular file (character "
	    "device)");
}

Test(parse, geoip_db_fifo_refused, .timeout = 10)
{
	refused_fifo("deny country KP\nallow any\n", true,
	    "E DIR/p.policy:1:6: GeoIP database DIR/fifo: not a regular file "
	    "(fifo)");
}
