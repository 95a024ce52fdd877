/* log.c -- the error log (human text, one write(2) per line, or the
 * system logger, or the journal). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "gateway/gateway.h"

enum log_sink { SINK_FD, SINK_SYSLOG, SINK_JOURNAL };

/* Process-wide by nature (stderr is), set at start, reload and SIGUSR1. */
static atomic_int log_fd = 2;
static atomic_int log_sink = SINK_FD;
static atomic_int log_level = GW_LOG_INFO;

void
gw_log_set_level(enum gw_loglevel l)
{
	atomic_store(&log_level, (int)l);
}

/* Puts the file newfd names under *fd. When both are files, dup2() onto the
 * old number: a thread writing at that moment writes whole lines to one file
 * or the other, never to a closed or reused descriptor (SIGUSR1 after
 * logrotate moved the file). -1 (newfd closed, *fd untouched) on failure. */
int
gw_log_swap_fd(atomic_int *fd, int newfd)
{
	int old = atomic_load(fd);

	if (old > 2 && newfd > 2) {
		if (dup2(newfd, old) < 0) {
			close(newfd);
			return -1;
		}
		close(newfd);
		return 0;
	}
	old = atomic_exchange(fd, newfd);
	if (old > 2)
		close(old);
	return 0;
}

static int (*log_opener)(const char *path);

void
gw_log_set_opener(int (*fn)(const char *path))
{
	log_opener = fn;
}

int
gw_log_file_open(const char *path)
{
	if (log_opener != NULL)
		return log_opener(path);
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	    0640);
}

int
gw_log_open(const struct gw_config *cfg, char *err, size_t errlen)
{
	const char *path = cfg->error_log;
	int fd = 2, sink = SINK_FD;

	if (path != NULL && strcmp(path, "syslog") == 0) {
		openlog("pbxgate", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		sink = SINK_SYSLOG;
	} else if (path != NULL && strcmp(path, "journal") == 0)
		sink = SINK_JOURNAL;
	else if (path != NULL && strcmp(path, "-") != 0) {
		fd = gw_log_file_open(path);
		if (fd < 0) {
			snprintf(err, errlen, "error_log %s: cannot open: %s; the "
			    "previous error log stays in use", path, strerror(errno));
			return -1;
		}
	}
	if (gw_log_swap_fd(&log_fd, fd) < 0) {
		snprintf(err, errlen, "error_log %s: dup2: %s", path, strerror(errno));
		return -1;
	}
	atomic_store(&log_sink, sink);
	return 0;
}

/* The system logger and the journal stamp time and pid themselves. */
static void
log_to_system(int sink, enum gw_loglevel level, const char *msg)
{
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };

	if (sink == SINK_SYSLOG)
		syslog(prio[level], "%s", msg);
	else
		(void)sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d",
		    prio[level], "SYSLOG_IDENTIFIER=pbxgate", NULL);
}

void
gw_log(enum gw_loglevel level, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warning", "error" };
	char line[2048];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, msg, sink = atomic_load(&log_sink);

	if ((int)level < atomic_load(&log_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "pbxgate[%d] ",
	    (int)getpid());
	msg = n;
	n += snprintf(line + n, sizeof(line) - (size_t)n, "%s: ", names[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	/* control bytes from anywhere never reach the terminal or file raw */
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	if (sink != SINK_FD) {
		line[n] = '\0';
		log_to_system(sink, level, line + msg);
		return;
	}
	line[n++] = '\n';
	(void)!write(atomic_load(&log_fd), line, (size_t)n);
}
