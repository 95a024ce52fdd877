/* auth_gauges.c -- store counts for /metrics: bans, live sessions, pending enrolments. */
#include <time.h>

#include "auth/auth_priv.h"

#define GAUGE_PERIOD 5	/* seconds between counts: a scrape reads the last */

/* Called from auth_refresh() on the gateway's timer: never waits for the
 * store mutex and counts at most every GAUGE_PERIOD seconds, so neither a
 * scrape nor a request ever queries the store for these. The tables are
 * bounded by their pruning (regulate, sessions) and expiry (enrol). */
void
auth_gauges_refresh_try(struct auth_ctx *c, time_t now)
{
	long long v[AUTH_GAUGES];
	int r;

	if ((int64_t)now - c->gauges_at < GAUGE_PERIOD &&
	    (int64_t)now >= c->gauges_at)
		return;
	if (pthread_mutex_trylock(&c->db_mu) != 0)
		return;
	r = c->store->counts(c, (int64_t)now, (int64_t)c->s.session_max, v);
	c->gauges_at = (int64_t)now;
	pthread_mutex_unlock(&c->db_mu);
	if (r < 0)
		return;	/* keep the last good counts; refresh reports errors */
	auth_gauges_set(c, v);
}

void
auth_gauges_set(struct auth_ctx *c, const long long v[AUTH_GAUGES])
{
	for (size_t i = 0; i < AUTH_GAUGES; i++)
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
