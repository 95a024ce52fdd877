/* test_head_write.c -- heads assembled on the stack (gateway/head_write.c):
 * numbers at their limits, values longer than the stack buffer, and
 * nothing reaching the evbuffer before the flush. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/gw_priv.h"

static struct evbuffer *out;

static void setup(void) { out = evbuffer_new(); cr_assert_not_null(out); }
static void teardown(void) { evbuffer_free(out); }

/* The evbuffer's bytes as a NUL-terminated string (caller frees). */
static char *
text(void)
{
	size_t n = evbuffer_get_length(out);
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	evbuffer_copyout(out, s, n);
	s[n] = '\0';
	return s;
}

TestSuite(head_write, .init = setup, .fini = teardown);

Test(head_write, numbers_at_their_limits)
{
	static const struct { uint64_t v; const char *s; } cases[] = {
		{ 0, "0" }, { 9, "9" }, { 10, "10" }, { 1024, "1024" },
		{ UINT32_MAX, "4294967295" },
		{ UINT64_MAX, "18446744073709551615" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_hw w;
		char *s;

		evbuffer_drain(out, evbuffer_get_length(out));
		gw_hw_init(&w, out);
		gw_hw_u64(&w, cases[i].v);
		gw_hw_flush(&w);
		s = text();
		cr_expect_str_eq(s, cases[i].s);
		free(s);
	}
}

Test(head_write, nothing_reaches_the_buffer_before_the_flush)
{
	struct gw_hw w;
	char *s;

	gw_hw_init(&w, out);
	gw_hw_header(&w, "Host", 4, "pbx.example", 11);
	gw_hw_put(&w, "Content-Length: ", 16);
	gw_hw_u64(&w, 42);
	gw_hw_str(&w, "\r\n\r\n");
	cr_expect_eq(evbuffer_get_length(out), 0);
	gw_hw_flush(&w);
	s = text();
	cr_expect_str_eq(s, "Host: pbx.example\r\nContent-Length: 42\r\n\r\n");
	free(s);
	gw_hw_flush(&w);	/* a second flush adds nothing */
	cr_expect_eq(evbuffer_get_length(out), 41);
}

/* A value longer than the stack buffer goes straight through, after what
 * was buffered before it, and what follows it comes after it. */
Test(head_write, long_value_keeps_its_place)
{
	size_t big = sizeof(((struct gw_hw *)0)->buf) * 3 + 7;
	char *v = malloc(big), *s;
	struct gw_hw w;

	cr_assert_not_null(v);
	memset(v, 'v', big);
	gw_hw_init(&w, out);
	gw_hw_header(&w, "Cookie", 6, v, big);
	gw_hw_str(&w, "X: y\r\n");
	gw_hw_flush(&w);
	s = text();
	cr_expect_eq(strlen(s), 8 + big + 2 + 6);
	cr_expect_eq(strncmp(s, "Cookie: vvv", 11), 0);
	cr_expect_str_eq(s + 8 + big, "\r\nX: y\r\n");
	free(s);
	free(v);
}

/* Many short pieces that together overflow the stack buffer several times
 * arrive whole and in order. */
Test(head_write, many_pieces_in_order)
{
	struct gw_hw w;
	char *s;
	size_t n = 0;

	gw_hw_init(&w, out);
	for (int i = 0; i < 1000; i++) {
		gw_hw_u64(&w, (uint64_t)i);
		gw_hw_put(&w, ",", 1);
	}
	gw_hw_flush(&w);
	s = text();
	for (int i = 0; i < 1000; i++) {
		char want[16];
		int k = snprintf(want, sizeof(want), "%d,", i);

		cr_assert_eq(strncmp(s + n, want, (size_t)k), 0, "piece %d", i);
		n += (size_t)k;
	}
	cr_expect_eq(strlen(s), n);
	free(s);
}
