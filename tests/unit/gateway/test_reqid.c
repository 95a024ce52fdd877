/* test_reqid.c -- fresh request ids (relay_reqid.c): 32 lowercase hex
 * digits, distinct across many pool refills, across threads, and between
 * a parent and the child it forks with a pool already filled. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gateway/gw_priv.h"

#define MANY 10000	/* about 156 refills of the 64-id pool */

static char ids[2 * MANY][GW_REQID_MAX + 1];

static int
cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
assert_distinct(size_t n)
{
	qsort(ids, n, sizeof(ids[0]), cmp);
	for (size_t i = 1; i < n; i++)
		cr_assert_str_neq(ids[i - 1], ids[i], "id %s twice", ids[i]);
}

Test(reqid, format_is_32_lowercase_hex)
{
	char id[GW_REQID_MAX + 1];

	cr_assert_eq(gw_reqid_new(id), 0);
	cr_assert_eq(strlen(id), 32);
	cr_assert_eq(strspn(id, "0123456789abcdef"), 32);
	cr_assert(gw_reqid_valid(id, strlen(id)));
}

Test(reqid, distinct_across_refills)
{
	for (size_t i = 0; i < MANY; i++)
		cr_assert_eq(gw_reqid_new(ids[i]), 0);
	assert_distinct(MANY);
}

static void *
draw(void *arg)
{
	char (*out)[GW_REQID_MAX + 1] = arg;

	for (size_t i = 0; i < MANY; i++)
		if (gw_reqid_new(out[i]) != 0)
			return (void *)1;
	return NULL;
}

Test(reqid, distinct_across_threads)
{
	pthread_t t[2];
	void *r;

	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, draw, ids[i * MANY]), 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(pthread_join(t[i], &r), 0);
		cr_assert_null(r);
	}
	assert_distinct(2 * MANY);
}

/* The pool is filled before the fork: the child must not hand out the
 * parent's next bytes. */
Test(reqid, child_after_fork_draws_its_own)
{
	char first[GW_REQID_MAX + 1], mine[GW_REQID_MAX + 1];
	char child[GW_REQID_MAX + 1] = "";
	int p[2], st;
	pid_t pid;

	cr_assert_eq(gw_reqid_new(first), 0);
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char id[GW_REQID_MAX + 1];

		if (gw_reqid_new(id) != 0 || write(p[1], id, 33) != 33)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], child, 33), 33);
	close(p[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(gw_reqid_new(mine), 0);
	cr_assert_str_neq(child, mine, "the child drew the parent's next id");
	cr_assert_str_neq(child, first);
}
