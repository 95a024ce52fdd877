/* test_event_audit.c -- the audit-line writer: the five fixed keys first,
 * every string valid UTF-8 (invalid bytes -> U+FFFD, valid kept), values
 * bounded, lists bounded, a NULL event ignored. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "event/event.h"

#define FFFD EV_REPLACEMENT

/* The line parsed back by jansson (which refuses invalid UTF-8). */
static json_t *
parse(struct ev_audit *ev)
{
	size_t n;
	char *line = ev_audit_line(ev, &n);
	json_error_t err;
	json_t *j;

	cr_assert_not_null(line);
	cr_assert_eq(n, strlen(line));
	cr_assert_eq(line[n - 1], '\n', "the line ends with a newline");
	cr_assert_null(memchr(line, '\n', n - 1), "one line only: %s", line);
	j = json_loadb(line, n, 0, &err);
	cr_assert_not_null(j, "%s: %s", err.text, line);
	free(line);
	return j;
}

static const char *
str(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	cr_assert_not_null(s, "no string %s", key);
	return s;
}

Test(event_audit, fixed_keys_first)
{
	struct ev_audit *ev = ev_audit_new("policy", "deny", "failure");
	static const char *const first[] = { "@timestamp", "event.dataset",
	    "event.module", "event.action", "event.outcome", "url.path" };
	void *it;
	size_t i = 0;
	json_t *j;

	ev_audit_str(ev, "url.path", "/management");
	j = parse(ev);
	for (it = json_object_iter(j); it != NULL;
	    it = json_object_iter_next(j, it), i++)
		cr_expect_str_eq(json_object_iter_key(it), first[i]);
	cr_expect_eq(i, 6);
	cr_expect_str_eq(str(j, "event.dataset"), "pbxgate.audit");
	cr_expect_str_eq(str(j, "event.module"), "policy");
	cr_expect_str_eq(str(j, "event.action"), "deny");
	cr_expect_str_eq(str(j, "event.outcome"), "failure");
	cr_expect_eq(strlen(str(j, "@timestamp")), 24, "%s",
	    str(j, "@timestamp"));
	json_decref(j);
}

struct utf8_case {
	const char *name, *in, *out;
	size_t inlen;
};

#define C(n, i, o) { n, i, o, sizeof(i) - 1 }

static const struct utf8_case utf8_cases[] = {
	C("ascii", "alice", "alice"),
	C("two-byte kept", "j\xc3\xbcrgen", "j\xc3\xbcrgen"),
	C("cjk kept", "\xe7\x94\xb0\xe4\xb8\xad", "\xe7\x94\xb0\xe4\xb8\xad"),
	C("emoji kept", "\xf0\x9f\x93\x9e", "\xf0\x9f\x93\x9e"),
	C("latin-1 byte", "j\xfcrgen", "j" FFFD "rgen"),
	C("lone continuation", "a\x80z", "a" FFFD "z"),
	C("overlong slash", "\xc0\xaf", FFFD FFFD),
	C("surrogate", "\xed\xa0\x80", FFFD FFFD FFFD),
	C("above U+10FFFF", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD),
	C("truncated at end", "ab\xe2\x82", "ab" FFFD FFFD),
	C("quote, backslash, control", "a\"b\\c\n\x01", "a\"b\\c\n\x01"),
};

/* The value read back is the input with each invalid byte replaced. */
Test(event_audit, strings_valid_utf8)
{
	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		const struct utf8_case *tc = &utf8_cases[i];
		struct ev_audit *ev = ev_audit_new("auth", "login_failure",
		    "failure");
		json_t *j;

		ev_audit_strn(ev, "user.name", tc->in, tc->inlen);
		j = parse(ev);
		cr_expect_str_eq(str(j, "user.name"), tc->out, "%s", tc->name);
		json_decref(j);
	}
}

Test(event_audit, nul_byte_kept_escaped)
{
	struct ev_audit *ev = ev_audit_new("auth", "logout", "success");
	size_t n;
	char *line;

	ev_audit_strn(ev, "user.name", "a\0b", 3);
	line = ev_audit_line(ev, &n);
	cr_assert_not_null(strstr(line, "\"user.name\":\"a\\u0000b\""), "%s",
	    line);
	free(line);
}

/* A value longer than EV_AUDIT_STR_MAX is cut before the first character
 * that does not fit whole: the line stays valid and bounded. */
Test(event_audit, long_value_cut_whole)
{
	size_t len = 3 * EV_AUDIT_STR_MAX;
	char *big = malloc(len);
	struct ev_audit *ev = ev_audit_new("policy", "deny", "failure");
	json_t *j;

	cr_assert_not_null(big);
	for (size_t i = 0; i < len; i += 2) {	/* U+00E9, two bytes each */
		big[i] = (char)0xc3;
		big[i + 1] = (char)0xa9;
	}
	ev_audit_strn(ev, "url.path", big, len);
	j = parse(ev);
	cr_expect_eq(strlen(str(j, "url.path")), EV_AUDIT_STR_MAX);
	json_decref(j);
	free(big);
}

Test(event_audit, numbers_booleans_rule)
{
	struct ev_audit *ev = ev_audit_new("integrity", "integrity-refused",
	    "failure");
	json_t *j;

	ev_audit_int(ev, "file.size", 52428800);
	ev_audit_bool(ev, "tls.established", 1);
	ev_audit_rule(ev, "rule.name", "/etc/pbxgate/lockdown.policy", 12);
	ev_audit_rule(ev, "rule.default", NULL, 0);
	ev_audit_rule(ev, "rule.implicit", "(default)", 0);
	j = parse(ev);
	cr_expect_eq(json_integer_value(json_object_get(j, "file.size")),
	    52428800);
	cr_expect(json_is_true(json_object_get(j, "tls.established")));
	cr_expect_str_eq(str(j, "rule.name"), "/etc/pbxgate/lockdown.policy:12");
	cr_expect_str_eq(str(j, "rule.default"), "(default)");
	cr_expect_str_eq(str(j, "rule.implicit"), "(default)");
	json_decref(j);
}

/* A list holds at most EV_AUDIT_LIST_MAX items; past that the item is
 * NULL and the calls on it do nothing. */
Test(event_audit, list_bounded)
{
	struct ev_audit *ev = ev_audit_new("smtp", "relayed", "success");
	struct ev_audit *it;
	json_t *j, *list;

	for (int i = 0; i < EV_AUDIT_LIST_MAX + 5; i++) {
		it = ev_audit_item(ev, "pbxgate.smtp.scrub");
		cr_expect_eq(it == NULL, i >= EV_AUDIT_LIST_MAX, "item %d", i);
		ev_audit_str(it, "rule", "pw");
		ev_audit_int(it, "count", i);
	}
	j = parse(ev);
	list = json_object_get(j, "pbxgate.smtp.scrub");
	cr_expect_eq(json_array_size(list), EV_AUDIT_LIST_MAX);
	cr_expect_str_eq(str(json_array_get(list, 0), "rule"), "pw");
	json_decref(j);
}

Test(event_audit, null_event_ignored)
{
	size_t n = 7;

	ev_audit_str(NULL, "k", "v");
	ev_audit_int(NULL, "k", 1);
	ev_audit_bool(NULL, "k", 1);
	ev_audit_rule(NULL, "k", "f", 1);
	cr_expect_null(ev_audit_item(NULL, "k"));
	cr_expect_null(ev_audit_line(NULL, &n));
	cr_expect_eq(n, 0);
	ev_audit_free(NULL);
}
