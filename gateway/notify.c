/* notify.c -- the service manager's readiness protocol (sd_notify(3)):
 * ready, reloading, stopping, and the status line `systemctl status` shows.
 * Each call does nothing when NOTIFY_SOCKET is not set. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "gateway/gw_priv.h"

static gw_notify_fwd *forward;

void
gw_notify_forward(gw_notify_fwd *fn)
{
	forward = fn;
}

/* unset_environment is 0 on every call: the socket is needed again at each
 * reload and at the stop, not only for the first READY=1. */
void
gw_notify_ready(unsigned long long generation, bool reload_failed)
{
	if (forward != NULL) {
		forward(reload_failed ? GW_NOTIFY_READY_FAILED : GW_NOTIFY_READY,
		    generation);
		return;
	}
	if (reload_failed)
		(void)sd_notifyf(0, "READY=1\nSTATUS=reload failed (see the error "
		    "log); configuration generation %llu stays in force",
		    generation);
	else
		(void)sd_notifyf(0, "READY=1\nSTATUS=configuration generation "
		    "%llu in force", generation);
}

/* MONOTONIC_USEC lets the manager tell this reload's READY=1 from an
 * earlier one (systemd's Type=notify-reload requires it). */
void
gw_notify_reloading(void)
{
	struct timespec ts;
	unsigned long long usec;

	if (forward != NULL) {
		forward(GW_NOTIFY_RELOADING, 0);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	usec = (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL;
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading "
	    "the configuration", usec);
}

void
gw_notify_stopping(void)
{
	if (forward != NULL) {
		forward(GW_NOTIFY_STOPPING, 0);
		return;
	}
	(void)sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing requests in "
	    "flight");
}
