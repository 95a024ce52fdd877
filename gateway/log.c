/* log.c -- the error log (human text, one write(2) per line) and JSON
 * string escaping for the access and audit logs. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/gateway.h"

/* Process-wide by nature (stderr is), set once at start or reload. */
static atomic_int log_fd = 2;
static atomic_int log_level = GW_LOG_INFO;

void
gw_log_set_level(enum gw_loglevel l)
{
	atomic_store(&log_level, (int)l);
}

int
gw_log_open(const struct gw_config *cfg, char *err, size_t errlen)
{
	int fd, old;

	if (cfg->error_log == NULL || strcmp(cfg->error_log, "-") == 0)
		fd = 2;
	else {
		fd = open(cfg->error_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			snprintf(err, errlen, "error_log %s: %s", cfg->error_log,
			    strerror(errno));
			return -1;
		}
	}
	old = atomic_exchange(&log_fd, fd);
	if (old > 2)
		close(old);
	return 0;
}

void
gw_log(enum gw_loglevel level, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warning", "error" };
	char line[2048];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if ((int)level < atomic_load(&log_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "pbxgate[%d] %s: ",
	    (int)getpid(), names[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	/* control bytes from anywhere never reach the terminal or file raw */
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[n++] = '\n';
	(void)!write(atomic_load(&log_fd), line, (size_t)n);
}

size_t
gw_json_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (dstlen == 0)
		return 0;
	for (size_t i = 0; i < srclen; i++) {
		unsigned char ch = (unsigned char)src[i];
		char esc[7];
		size_t el;

		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			el = 2;
		} else if (ch < 0x20 || ch >= 0x7f) {
			/* non-ASCII is escaped byte-wise: logs stay ASCII and a
			 * bad UTF-8 sequence cannot break a JSON reader */
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = esc[3] = '0';
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			el = 6;
		} else {
			esc[0] = (char)ch;
			el = 1;
		}
		if (o + el >= dstlen)
			break;
		memcpy(dst + o, esc, el);
		o += el;
	}
	dst[o] = '\0';
	return o;
}
