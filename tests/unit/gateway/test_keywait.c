/* test_keywait.c -- io_keywait.c: the worker's answer sockets from the key
 * process, each watched once, and each wake-up handed to the connection
 * waiting on that socket, never to one that stopped waiting. Built with
 * io_keywait.c alone: the key process's side (cert_keyproc_watch) and the
 * connection's resume (gw_io_async_ready) are stubs that record. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/gw_priv.h"

/* ---- stubs --------------------------------------------------------------- */

static cert_kp_watch_fn watch_fn;	/* what gw_keywait_start handed over */
static void *watch_arg;

void
cert_keyproc_watch(cert_kp_watch_fn fn, void *arg)
{
	watch_fn = fn;
	watch_arg = arg;
}

#define WOKEN_MAX 16
static struct gw_io *woken[WOKEN_MAX];
static int nwoken;

void
gw_io_async_ready(struct gw_io *io)
{
	cr_assert_lt(nwoken, WOKEN_MAX);
	woken[nwoken++] = io;
}

/* ---- helpers ------------------------------------------------------------- */

/* Connections are only compared by address here. */
static char conn_a, conn_b;
#define A ((struct gw_io *)&conn_a)
#define B ((struct gw_io *)&conn_b)

static struct event_base *base;

static void
setup(void)
{
	base = event_base_new();
	cr_assert_not_null(base);
	nwoken = 0;
	gw_keywait_start(base);
	cr_assert_not_null(watch_fn);
}

static void
teardown(void)
{
	gw_keywait_end();
	event_base_free(base);
}

TestSuite(keywait, .init = setup, .fini = teardown, .timeout = 30);

/* A channel: [0] watched (the thread's end), [1] the key process's. */
static void
channel(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert(watch_fn(sv[0], true, watch_arg));
}

static void
answer(int fd)
{
	cr_assert_eq(write(fd, "a", 1), 1);
}

static void
drain(int fd)
{
	char b[8];

	cr_assert_eq(read(fd, b, sizeof b), 1);
}

/* One pass of the loop: what is ready runs, nothing waits. */
static void
pass(void)
{
	cr_assert_geq(event_base_loop(base, EVLOOP_NONBLOCK), 0);
}

static void
close_channel(int sv[2])
{
	cr_assert(watch_fn(sv[0], false, watch_arg));
	close(sv[0]);
	close(sv[1]);
}

/* ---- cases --------------------------------------------------------------- */

Test(keywait, answer_wakes_the_connection_waiting_on_that_socket)
{
	int sv[2];

	channel(sv);
	cr_assert(gw_keywait_arm(A, base, sv[0]));
	answer(sv[1]);
	pass();
	cr_assert_eq(nwoken, 1);
	cr_assert_eq(woken[0], A);
	close_channel(sv);
}

/* Two handshakes on two channels, answered in the other order: each wakes
 * its own, once. */
Test(keywait, answers_out_of_order_go_to_their_own_connection)
{
	int s1[2], s2[2];

	channel(s1);
	channel(s2);
	cr_assert(gw_keywait_arm(A, base, s1[0]));
	cr_assert(gw_keywait_arm(B, base, s2[0]));
	answer(s2[1]);
	pass();
	cr_assert_eq(nwoken, 1);
	cr_assert_eq(woken[0], B);
	answer(s1[1]);
	pass();
	cr_assert_eq(nwoken, 2);
	cr_assert_eq(woken[1], A);
	close_channel(s1);
	close_channel(s2);
}

/* The connection was freed (disarmed) before its answer came: the answer
 * wakes nobody, and the socket's next waiter is woken by its own answer
 * (the edge of the stale one is not replayed to it). */
Test(keywait, answer_for_a_freed_connection_wakes_nobody)
{
	int sv[2];

	channel(sv);
	cr_assert(gw_keywait_arm(A, base, sv[0]));
	gw_keywait_disarm(A, sv[0]);
	answer(sv[1]);
	pass();
	cr_assert_eq(nwoken, 0);
	drain(sv[0]);		/* the next job skips it by its id */
	cr_assert(gw_keywait_arm(B, base, sv[0]));
	pass();
	cr_assert_eq(nwoken, 0);
	answer(sv[1]);
	pass();
	cr_assert_eq(nwoken, 1);
	cr_assert_eq(woken[0], B);
	close_channel(sv);
}

/* Disarming for another connection leaves the waiter in place. */
Test(keywait, disarm_by_another_connection_keeps_the_waiter)
{
	int sv[2];

	channel(sv);
	cr_assert(gw_keywait_arm(A, base, sv[0]));
	gw_keywait_disarm(B, sv[0]);
	answer(sv[1]);
	pass();
	cr_assert_eq(nwoken, 1);
	cr_assert_eq(woken[0], A);
	close_channel(sv);
}

/* One wake-up per arming: after it, more data wakes nobody until the
 * connection waits again. */
Test(keywait, one_wake_up_per_wait)
{
	int sv[2];

	channel(sv);
	cr_assert(gw_keywait_arm(A, base, sv[0]));
	answer(sv[1]);
	pass();
	answer(sv[1]);
	pass();
	cr_assert_eq(nwoken, 1);
	close_channel(sv);
}

/* The key process restarted: the socket is reported closed and a new one
 * (often the same number) registered; a wait on it works, and the closed
 * one is no longer known. */
Test(keywait, socket_replaced_after_a_restart)
{
	int sv[2], nv[2];

	channel(sv);
	close_channel(sv);
	cr_assert_not(gw_keywait_arm(A, base, sv[0]));
	channel(nv);
	cr_assert(gw_keywait_arm(A, base, nv[0]));
	answer(nv[1]);
	pass();
	cr_assert_eq(nwoken, 1);
	cr_assert_eq(woken[0], A);
	close_channel(nv);
}

/* The key process died: its end closes, which wakes the waiter (its job
 * then fails the handshake: fail closed). */
Test(keywait, key_process_gone_wakes_the_waiter)
{
	int sv[2];

	channel(sv);
	cr_assert(gw_keywait_arm(A, base, sv[0]));
	close(sv[1]);
	pass();
	cr_assert_eq(nwoken, 1);
	cr_assert_eq(woken[0], A);
	cr_assert(watch_fn(sv[0], false, watch_arg));
	close(sv[0]);
}

/* A socket that is not one of the thread's channels (a handshake beyond
 * them waits on a socket of its own), or another loop's: not armed here. */
Test(keywait, unknown_socket_or_other_base_not_armed)
{
	int sv[2];
	struct event_base *other = event_base_new();

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_not(gw_keywait_arm(A, base, sv[0]));
	cr_assert_not(gw_keywait_arm(A, base, -1));
	cr_assert(watch_fn(sv[0], true, watch_arg));
	cr_assert_not(gw_keywait_arm(A, other, sv[0]));
	close_channel(sv);
	event_base_free(other);
}

/* More sockets than slots: the one beyond is refused (the key side then
 * waits on it per handshake), the others still work. */
Test(keywait, socket_beyond_the_slots_refused)
{
	int sv[17][2];
	int i;

	for (i = 0; i < 16; i++)
		channel(sv[i]);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv[16]), 0);
	cr_assert_not(watch_fn(sv[16][0], true, watch_arg));
	cr_assert_not(gw_keywait_arm(A, base, sv[16][0]));
	cr_assert(gw_keywait_arm(B, base, sv[15][0]));
	answer(sv[15][1]);
	pass();
	cr_assert_eq(nwoken, 1);
	cr_assert_eq(woken[0], B);
	close(sv[16][0]);
	close(sv[16][1]);
	for (i = 0; i < 16; i++)
		close_channel(sv[i]);
}

/* The loop ends: the key side is told to stop watching (it reports and
 * closes its sockets), and nothing is armed any more. */
Test(keywait, end_stops_the_watch)
{
	int sv[2];

	channel(sv);
	close_channel(sv);
	gw_keywait_end();
	cr_assert_null(watch_fn);
	cr_assert_not(gw_keywait_arm(A, base, sv[0]));
	gw_keywait_start(base);	/* for teardown */
}
