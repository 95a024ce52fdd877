/* test_event_json.c -- ev_json_escape: valid UTF-8 kept as is, every byte
 * that is not part of a valid sequence replaced by U+FFFD, JSON's specials
 * escaped, and the result read back by jansson as the same text. */
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "event/event.h"

#define FFFD EV_REPLACEMENT

struct esc_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *out;	/* the escaped text, without quotes */
};

#define C(n, i, o) { n, i, sizeof(i) - 1, o }

static struct esc_case cases[] = {
	C("ascii", "/webclient/", "/webclient/"),
	C("quote and backslash", "a\"b\\c", "a\\\"b\\\\c"),
	C("control bytes", "a\r\n\t\x01\x7f", "a\\u000d\\u000a\\u0009\\u0001\\u007f"),
	C("nul byte", "a\0b", "a\\u0000b"),
	C("two-byte", "caf\xc3\xa9", "caf\xc3\xa9"),
	C("three-byte", "\xe2\x82\xac", "\xe2\x82\xac"),
	C("four-byte", "\xf0\x9f\x93\x9e", "\xf0\x9f\x93\x9e"),
	C("lone continuation", "a\x80z", "a" FFFD "z"),
	C("latin-1 byte", "caf\xe9", "caf" FFFD),
	C("0xff", "\xff", FFFD),
	C("overlong slash", "\xc0\xaf", FFFD FFFD),
	C("overlong three-byte", "\xe0\x80\xaf", FFFD FFFD FFFD),
	C("overlong four-byte", "\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD),
	C("surrogate", "\xed\xa0\x80", FFFD FFFD FFFD),
	C("above U+10FFFF", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD),
	C("f5 lead", "\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD),
	C("truncated at end", "ab\xe2\x82", "ab" FFFD FFFD),
	C("truncated then ascii", "\xe2\x82z", FFFD FFFD "z"),
	C("last code point", "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"),
	C("U+FFFD itself", FFFD, FFFD),
};

static void
check_case(const struct esc_case *tc)
{
	char out[256], doc[300];
	size_t n = ev_json_escape(out, sizeof(out), tc->in, tc->inlen);
	json_error_t err;
	json_t *j;

	cr_expect_str_eq(out, tc->out, "%s", tc->name);
	cr_expect_eq(n, strlen(tc->out), "%s", tc->name);
	/* jansson refuses invalid UTF-8: the line must load */
	snprintf(doc, sizeof(doc), "[\"%s\"]", out);
	j = json_loads(doc, JSON_ALLOW_NUL, &err);
	cr_expect_not_null(j, "%s: %s", tc->name, err.text);
	json_decref(j);
}

/* Every case is checked and reported on its own (cr_expect). */
Test(event_json, escapes)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

/* A short buffer stops before a character that does not fit whole: never
 * half a UTF-8 sequence, half an escape, or no terminator. */
Test(event_json, truncates_whole_characters)
{
	char out[5];

	cr_assert_eq(ev_json_escape(out, sizeof(out), "ab\xc3\xa9", 4), 4);
	cr_assert_str_eq(out, "ab\xc3\xa9");
	cr_assert_eq(ev_json_escape(out, sizeof(out), "abc\xc3\xa9", 5), 3);
	cr_assert_str_eq(out, "abc");
	cr_assert_eq(ev_json_escape(out, sizeof(out), "a\n", 2), 1);
	cr_assert_str_eq(out, "a");
	cr_assert_eq(ev_json_escape(out, sizeof(out), "ab\xff", 3), 2);
	cr_assert_str_eq(out, "ab");
	cr_assert_eq(ev_json_escape(out, 1, "abc", 3), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(ev_json_escape(out, 0, "abc", 3), 0);
}
