/* auth_gauges.c -- store counts for /metrics: bans, live sessions, pending enrolments. */
#include <string.h>
#include <time.h>

#include "auth/auth_priv.h"

#define GAUGE_PERIOD 5	/* seconds between counts: a scrape reads the last */

/* The same notion of "live" as `pbxgate session list` (auth_admin.c). */
static const char *const count_sql[AUTH_GAUGES] = {
	"SELECT count(*) FROM regulate WHERE key LIKE 'u:%' AND banned_until > ?1",
	"SELECT count(*) FROM regulate WHERE key LIKE 'a:%' AND banned_until > ?1",
	"SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id"
	" WHERE s.revoked = 0 AND u.disabled = 0 AND (s.epoch = u.epoch OR"
	" s.epoch = 0) AND s.created > ?1 - ?2",
	"SELECT count(*) FROM enrol WHERE used = 0 AND expires > ?1",
};

static int
count_one(struct auth_ctx *c, const char *sql, int64_t now, long long *out)
{
	sqlite3_stmt *st;
	int r;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	if (sqlite3_bind_parameter_count(st) > 1)
		sqlite3_bind_int64(st, 2, (int64_t)c->s.session_max);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : -1;
}

/* Called from auth_refresh() on the gateway's timer: never waits for the
 * store mutex and counts at most every GAUGE_PERIOD seconds, so neither a
 * scrape nor a request ever queries the store for these. The tables are
 * bounded by their pruning (regulate, sessions) and expiry (enrol). */
void
auth_gauges_refresh_try(struct auth_ctx *c, time_t now)
{
	long long v[AUTH_GAUGES];
	size_t i;

	if ((int64_t)now - c->gauges_at < GAUGE_PERIOD &&
	    (int64_t)now >= c->gauges_at)
		return;
	if (pthread_mutex_trylock(&c->db_mu) != 0)
		return;
	for (i = 0; i < AUTH_GAUGES; i++)
		if (count_one(c, count_sql[i], (int64_t)now, &v[i]) < 0)
			break;
	c->gauges_at = (int64_t)now;
	pthread_mutex_unlock(&c->db_mu);
	if (i < AUTH_GAUGES)
		return;	/* keep the last good counts; refresh reports errors */
	for (i = 0; i < AUTH_GAUGES; i++)
		atomic_store(&c->gauges[i], v[i]);
	atomic_store(&c->gauges_valid, true);
}

bool
auth_gauges(struct auth_ctx *c, long long out[AUTH_GAUGES])
{
	if (c == NULL || !atomic_load(&c->gauges_valid))
		return false;
	for (size_t i = 0; i < AUTH_GAUGES; i++)
		out[i] = atomic_load(&c->gauges[i]);
	return true;
}
