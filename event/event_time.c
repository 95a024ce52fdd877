/* event_time.c -- the one time format of every JSON log line: RFC 3339,
 * UTC, milliseconds (`@timestamp`, docs/logging.md). */
#include <stdio.h>
#include <time.h>

#include "event/event.h"

void
ev_timestamp(char out[EV_TIME_MAX])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, EV_TIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, EV_TIME_MAX - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}
