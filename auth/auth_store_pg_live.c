/* auth_store_pg_live.c -- the PostgreSQL store's change listener: its own
 * connection and thread LISTEN for the version bumps' NOTIFY, read the
 * in-memory tables and hand them to an event loop, which swaps them in.
 *
 * Why a thread of its own: the event loops must never wait for the
 * database (the session check is judged from memory), and the login
 * pool's threads block in Argon2 for tens of milliseconds, which would
 * delay a revocation's arrival. Every wait here is a poll() on the
 * connection's socket and the stop eventfd with a deadline: connect
 * (PQconnectStart/PQconnectPoll), each statement, and the pause between
 * attempts (back-off 0.1 s doubling to 5 s). After every (re)connect the
 * tables are read whole, which catches up on the changes made while the
 * connection was down; a version read every 30 s covers a notification
 * lost any other way. The thread also takes the /metrics counts (every
 * 5 s), which auth_refresh() took on the event loop before. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/auth_store_pg.h"

#define LIVE_IO_MS		5000	/* connect, and each statement */
#define LIVE_BACKOFF_MIN_MS	100
#define LIVE_BACKOFF_MAX_MS	5000
#define LIVE_SAFETY_MS		30000	/* version read without a NOTIFY */
#define LIVE_GAUGE_MS		5000	/* as auth_gauges.c's GAUGE_PERIOD */

struct auth_live {
	struct auth_ctx *c;
	PGconn   *conn;		/* created once; reconnects reset it */
	bool      started;	/* PQconnectStart done: later ones reset */
	int       stop_fd;	/* eventfd: readable once stop is asked */
	pthread_t thread;
	atomic_bool done;	/* the thread's last store: it touches
				 * nothing after, so the join is at once */
	char      why[256];	/* this attempt's failure */
	char      said[160];	/* the server's last message outside a query */
	long long safety_at, gauges_at;	/* monotonic ms of the next ones */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
fail(struct auth_live *l, const char *what, const char *detail)
{
	snprintf(l->why, sizeof(l->why), "%s: %s", what, detail != NULL &&
	    *detail != '\0' ? detail : "no detail from libpq");
	l->why[strcspn(l->why, "\n")] = '\0';	/* libpq ends lines with \n */
}

/* libpq hands a message the server sends outside a query (its FATAL as
 * it ends the connection: shutdown, pg_terminate_backend) to the notice
 * processor, whose default prints it to stderr, outside the log format.
 * Kept instead, to be the reason of the connection's loss. Runs on the
 * listener's thread, inside its own libpq calls. */
static void
live_notice(void *arg, const char *msg)
{
	struct auth_live *l = arg;

	snprintf(l->said, sizeof(l->said), "%s", msg);
	l->said[strcspn(l->said, "\n")] = '\0';
}

/* 1 when fd has `events`, 0 at the deadline, -1 when asked to stop (or
 * poll failed). fd -1: only the pause. */
static int
wait_fd(struct auth_live *l, int fd, short events, long long deadline)
{
	struct pollfd p[2] = { { l->stop_fd, POLLIN, 0 }, { fd, events, 0 } };

	for (;;) {
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return 0;
		n = poll(p, fd >= 0 ? 2 : 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (p[0].revents & POLLIN))
			return -1;
		if (n > 0)
			return 1;
	}
}

static bool
stopping(struct auth_live *l)
{
	struct pollfd p = { l->stop_fd, POLLIN, 0 };

	return poll(&p, 1, 0) != 0;
}

/* PQconnectPoll's dance, every step bounded by one deadline. */
static int
live_connect(struct auth_live *l)
{
	long long deadline = now_ms() + LIVE_IO_MS;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	bool reset = l->started;

	l->said[0] = '\0';	/* the last connection's */
	if (reset && !PQresetStart(l->conn))
		return fail(l, "cannot start a connection", PQerrorMessage(
		    l->conn)), -1;
	l->started = true;
	if (PQstatus(l->conn) == CONNECTION_BAD)
		return fail(l, "cannot connect", PQerrorMessage(l->conn)), -1;
	while (st != PGRES_POLLING_OK) {
		int w, fd = PQsocket(l->conn);

		if (st == PGRES_POLLING_FAILED || fd < 0)
			return fail(l, "cannot connect", PQerrorMessage(l->conn)), -1;
		w = wait_fd(l, fd, st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
		    deadline);
		if (w <= 0)
			return fail(l, "cannot connect", w == 0 ? "no answer "
			    "within 5 s" : "stopping"), -1;
		st = reset ? PQresetPoll(l->conn) : PQconnectPoll(l->conn);
	}
	if (PQsetnonblocking(l->conn, 1) != 0)
		return fail(l, "cannot set the connection non-blocking",
		    PQerrorMessage(l->conn)), -1;
	return 0;
}

/* Waits until libpq has a whole result to give, within the deadline. */
static int
live_settle(struct auth_live *l, long long deadline)
{
	int f;

	while ((f = PQflush(l->conn)) == 1)
		if (wait_fd(l, PQsocket(l->conn), POLLOUT | POLLIN, deadline) <= 0 ||
		    !PQconsumeInput(l->conn))
			return -1;
	if (f < 0)
		return -1;
	while (PQisBusy(l->conn))
		if (wait_fd(l, PQsocket(l->conn), POLLIN, deadline) <= 0 ||
		    !PQconsumeInput(l->conn))
			return -1;
	return 0;
}

/* One statement with text parameters; its result (the caller clears it)
 * or NULL with why. Notifications that arrive meanwhile stay queued in
 * libpq for PQnotifies. */
static PGresult *
live_query(struct auth_live *l, const char *sql, int n, const char *const *v)
{
	long long deadline = now_ms() + LIVE_IO_MS;
	PGresult *r, *last = NULL;
	bool bad = false;

	if (!PQsendQueryParams(l->conn, sql, n, NULL, v, NULL, NULL, 0))
		return fail(l, "cannot send a query", PQerrorMessage(l->conn)),
		    NULL;
	for (;;) {
		ExecStatusType s;

		if (live_settle(l, deadline) < 0) {
			fail(l, "query", stopping(l) ? "stopping" : now_ms() >=
			    deadline ? "no answer within 5 s" :
			    PQerrorMessage(l->conn));
			PQclear(last);
			return NULL;
		}
		if ((r = PQgetResult(l->conn)) == NULL)
			break;
		s = PQresultStatus(r);
		if (!bad && s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
			fail(l, "query", PQresultErrorMessage(r));
			bad = true;
		}
		PQclear(last);
		last = r;
	}
	if (bad || last == NULL) {
		if (last == NULL)
			fail(l, "query", "no result");
		PQclear(last);
		return NULL;
	}
	return last;
}

static int
live_exec(struct auth_live *l, const char *sql)
{
	PGresult *r = live_query(l, sql, 0, NULL);

	PQclear(r);
	return r != NULL ? 0 : -1;
}

static int64_t
result_i64(const PGresult *r)
{
	return PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ?
	    strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
}

/* Hands t to an event loop: the newest read waits in live_next (an older
 * one still waiting is replaced, its force kept), and one post at a time
 * carries it. live_posted is set before the post, under the lock, so a
 * delivery that runs at once cannot be undone by a late store. */
static void deliver(void *arg);

static void
hand_over(struct auth_ctx *c, struct auth_tables *t)
{
	struct auth_tables *old;
	bool post;

	pthread_mutex_lock(&c->live_mu);
	old = c->live_next;
	t->force = t->force || (old != NULL && old->force);
	c->live_next = t;
	post = !c->live_posted;
	c->live_posted = true;
	c->live_info.reloads++;
	pthread_mutex_unlock(&c->live_mu);
	auth_tables_free(old);
	if (!post || c->live_post(c->live_post_arg, deliver, c) == 0)
		return;
	/* out of memory: the read waits, and the next one posts again */
	pthread_mutex_lock(&c->live_mu);
	c->live_posted = false;
	pthread_mutex_unlock(&c->live_mu);
}

/* On the event loop: takes the waiting read and swaps it in, under the
 * tables' rwlock only. */
static void
deliver(void *arg)
{
	struct auth_ctx *c = arg;
	struct auth_tables *t;

	pthread_mutex_lock(&c->live_mu);
	t = c->live_next;
	c->live_next = NULL;
	c->live_posted = false;
	pthread_mutex_unlock(&c->live_mu);
	if (t != NULL)
		auth_tables_install(c, t, t->force);
}

/* One snapshot (REPEATABLE READ), so the version and both tables are of
 * the same moment. Without `all`, skipped when the version is the one in
 * force. The read is installed when newer than the tables in force; a
 * version lower than theirs is a store restored from a backup, installed
 * all the same. */
static int
live_load(struct auth_live *l, bool all)
{
	char umax[24], rmax[24], why[160];
	const char *pu[1] = { umax }, *pr[1] = { rmax };
	struct auth_tables *t = NULL;
	PGresult *r;
	int64_t v, in_force;
	int rc = 0;

	snprintf(umax, sizeof(umax), "%d", AUTH_STORE_USERS_MAX + 1);
	snprintf(rmax, sizeof(rmax), "%d", AUTH_STORE_REVOKED_MAX + 1);
	if (live_exec(l, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0 ||
	    (r = live_query(l, AUTH_PG_VERSION_SQL, 0, NULL)) == NULL)
		return -1;
	v = result_i64(r);
	PQclear(r);
	in_force = auth_tables_version(l->c);
	if (!all && v == in_force)
		return live_exec(l, "ROLLBACK");
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return fail(l, "reading the tables", "out of memory"), -1;
	if ((r = live_query(l, AUTH_PG_USERS_SQL, 1, pu)) == NULL)
		goto bad;
	if ((rc = auth_pg_users_decode(r, &t->users, &t->nusers)) < 0) {
		PQclear(r);
		auth_pg_load_why(rc, "users", AUTH_STORE_USERS_MAX, why,
		    sizeof(why));
		fail(l, "loading the tables", why);
		goto over;
	}
	PQclear(r);
	if ((r = live_query(l, AUTH_PG_REVOKED_SQL, 1, pr)) == NULL)
		goto bad;
	if ((rc = auth_pg_revoked_decode(r, &t->revoked, &t->nrevoked)) < 0) {
		PQclear(r);
		auth_pg_load_why(rc, "revoked sessions", AUTH_STORE_REVOKED_MAX,
		    why, sizeof(why));
		fail(l, "loading the tables", why);
		goto over;
	}
	PQclear(r);
	if (live_exec(l, "ROLLBACK") < 0)
		goto bad;
	t->version = v;
	t->force = v < in_force;
	hand_over(l->c, t);
	return 0;
over:
	/* the store is over a bound: closed tables now, not the last ones
	 * until this connection's retry */
	if (rc == AUTH_STORE_OVER_CAP) {
		auth_tables_close(t);
		hand_over(l->c, t);
		return -1;
	}
bad:
	auth_tables_free(t);
	return -1;
}

static int
live_counts(struct auth_live *l)
{
	char now[24], max[24];
	const char *p[2] = { now, max };
	long long v[AUTH_GAUGES];
	PGresult *r;

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	snprintf(max, sizeof(max), "%u", l->c->s.session_max);
	if ((r = live_query(l, AUTH_PG_COUNTS_SQL, 2, p)) == NULL)
		return -1;
	auth_pg_counts_decode(r, v);
	PQclear(r);
	auth_gauges_set(l->c, v);
	return 0;
}

/* The notifications libpq has read: a reload when one names a version
 * newer than the tables in force (a payload that is not a number too). */
static int
live_notified(struct auth_live *l)
{
	int64_t top = INT64_MIN;
	PGnotify *n;

	while ((n = PQnotifies(l->conn)) != NULL) {
		char *end;
		long long v = strtoll(n->extra, &end, 10);

		if (end == n->extra || *end != '\0')
			v = INT64_MAX;
		if (v > top)
			top = v;
		PQfreemem(n);
	}
	if (top == INT64_MIN || top <= auth_tables_version(l->c))
		return 0;
	return live_load(l, false);
}

static void
publish(struct auth_live *l, bool up)
{
	struct auth_live_info *i = &l->c->live_info;

	pthread_mutex_lock(&l->c->live_mu);
	if (up) {
		i->reconnects += i->down_since != 0 || !i->connected;
		i->connected = true;
		i->down_since = 0;
	} else {
		if (i->connected || i->down_since == 0)
			i->down_since = (int64_t)time(NULL);
		i->connected = false;
		snprintf(i->why, sizeof(i->why), "%s", l->why);
	}
	pthread_mutex_unlock(&l->c->live_mu);
}

/* Connected and LISTENing: waits for notifications until the connection
 * fails or stop is asked, with the counts and the safety read on time. */
static void
live_serve(struct auth_live *l)
{
	long long now = now_ms();

	l->safety_at = now + LIVE_SAFETY_MS;
	l->gauges_at = now;
	for (;;) {
		long long next = l->safety_at < l->gauges_at ? l->safety_at :
		    l->gauges_at;
		int w = wait_fd(l, PQsocket(l->conn), POLLIN, next);

		if (w < 0)
			return;
		if (w > 0 && (!PQconsumeInput(l->conn) ||
		    PQstatus(l->conn) != CONNECTION_OK)) {
			fail(l, "connection lost", l->said[0] != '\0' ? l->said :
			    PQerrorMessage(l->conn));
			return;
		}
		if (w > 0 && live_notified(l) < 0)
			return;
		now = now_ms();
		if (now >= l->gauges_at) {
			if (live_counts(l) < 0)
				return;
			l->gauges_at = now + LIVE_GAUGE_MS;
		}
		if (now >= l->safety_at) {
			if (live_load(l, false) < 0)
				return;
			l->safety_at = now + LIVE_SAFETY_MS;
		}
	}
}

/* LISTEN before the catch-up read: a change committed between the two is
 * then both read and announced, never neither. */
static void
live_run(struct auth_live *l)
{
	int backoff = LIVE_BACKOFF_MIN_MS;
	char chan[AUTH_PG_CHANNEL_LEN], listen[sizeof "LISTEN " + sizeof chan];

	auth_pg_channel(l->c->store_id, chan);
	snprintf(listen, sizeof(listen), "LISTEN %s", chan);
	for (;;) {
		if (live_connect(l) == 0 && live_exec(l, listen) == 0 &&
		    live_load(l, true) == 0) {
			publish(l, true);
			backoff = LIVE_BACKOFF_MIN_MS;
			live_serve(l);
		}
		if (stopping(l))
			return;
		publish(l, false);
		if (wait_fd(l, -1, 0, now_ms() + backoff) < 0)
			return;
		backoff = backoff * 2 > LIVE_BACKOFF_MAX_MS ? LIVE_BACKOFF_MAX_MS :
		    backoff * 2;
	}
}

/* `done` is stored last, after every post the thread made was handed to
 * the mailbox (seq_cst: a caller that reads it true also sees them), so
 * a post the caller sends to the same loop afterwards runs behind them. */
static void *
live_main(void *arg)
{
	struct auth_live *l = arg;

	live_run(l);
	atomic_store(&l->done, true);
	return NULL;
}

int
auth_live_start(struct auth_ctx *c, auth_post_fn post, void *post_arg,
    char *err, size_t errlen)
{
	char pw[AUTH_PG_PASSWORD_MAX];
	struct auth_live *l;

	if (c->store != &auth_store_pg || c->live != NULL)
		return 0;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	l->c = c;
	if ((l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		snprintf(err, errlen, "change listener: eventfd: %s",
		    strerror(errno));
		free(l);
		return -1;
	}
	if (auth_pg_password(&c->s, pw, sizeof(pw), err, errlen) < 0)
		goto fail;
	l->conn = auth_pg_connect(&c->s, pw[0] != '\0' ? pw : NULL,
	    "pbxgate-listen", true);
	OPENSSL_cleanse(pw, sizeof(pw));
	if (l->conn == NULL) {
		snprintf(err, errlen, "change listener: out of memory");
		goto fail;
	}
	PQsetNoticeProcessor(l->conn, live_notice, l);	/* kept by resets */
	c->live_post = post;
	c->live_post_arg = post_arg;
	pthread_mutex_lock(&c->live_mu);
	memset(&c->live_info, 0, sizeof(c->live_info));
	c->live_info.running = true;
	c->live_info.connected = true;	/* auth_open() just read the store */
	pthread_mutex_unlock(&c->live_mu);
	if (pthread_create(&l->thread, NULL, live_main, l) != 0) {
		snprintf(err, errlen, "change listener: cannot start a thread");
		pthread_mutex_lock(&c->live_mu);
		c->live_info.running = false;
		pthread_mutex_unlock(&c->live_mu);
		goto fail;
	}
	c->live = l;
	return 0;
fail:
	PQfinish(l->conn);
	close(l->stop_fd);
	free(l);
	return -1;
}

void
auth_live_ask_stop(struct auth_ctx *c)
{
	uint64_t one = 1;

	/* an eventfd counts: asking twice only adds to what is read as one */
	if (c->live != NULL)
		(void)!write(c->live->stop_fd, &one, sizeof(one));
}

bool
auth_live_stopped(struct auth_ctx *c)
{
	return c->live == NULL || atomic_load(&c->live->done);
}

void
auth_live_stop(struct auth_ctx *c)
{
	struct auth_live *l = c->live;

	if (l == NULL)
		return;
	auth_live_ask_stop(c);
	pthread_join(l->thread, NULL);
	PQfinish(l->conn);
	close(l->stop_fd);
	free(l);
	c->live = NULL;
	pthread_mutex_lock(&c->live_mu);
	c->live_info.running = false;
	pthread_mutex_unlock(&c->live_mu);
}

bool
auth_live_info(struct auth_ctx *c, struct auth_live_info *out)
{
	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return false;
	pthread_mutex_lock(&c->live_mu);
	*out = c->live_info;
	pthread_mutex_unlock(&c->live_mu);
	return out->running;
}

int
auth_live_status(struct auth_ctx *c, char *err, size_t errlen)
{
	struct auth_live_info i;

	if (!auth_live_info(c, &i) || i.connected)
		return 0;
	snprintf(err, errlen, "%s: change listener disconnected for %llds "
	    "(%s): sign-outs and disabled users from other gateways reach this "
	    "one once it reconnects, which it retries by itself (every 5 s at "
	    "most)", c->s.user_db, (long long)(time(NULL) - i.down_since), i.why);
	return -1;
}
