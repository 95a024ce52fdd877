/* clock.c -- the gateway's clocks: monotonic for durations and timeouts
 * (immune to the wall clock being set), wall time for HTTP dates. */
#include <time.h>

#include "gateway/gw_priv.h"

void
gw_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

double
gw_ms_since(const struct timespec *t)
{
	struct timespec now;

	gw_now(&now);
	return (double)(now.tv_sec - t->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

/* RFC 9110 5.6.7 IMF-fixdate, for the Date header of our own answers. */
void
gw_http_date(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}
