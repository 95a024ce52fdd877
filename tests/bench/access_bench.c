/* access_bench.c -- the access-log writer's cost per line: gw_access_log
 * over one parsed request (a browser-like head with a UTF-8 path), 1e5
 * lines to /dev/null, CPU nanoseconds per line printed (CPU time, not wall
 * time: the figure holds on a loaded machine); then the same line
 * built with jansson (json_object + json_dumps), the figure that decided to
 * keep the hot path hand-assembled. Built by meson next to the other
 * benchmarks (docs/logging.md quotes the figures). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gateway/gw_priv.h"

#define LINES 100000

static const char head[] =
    "GET /webclient/api/caf\xc3\xa9/MyPhone/session?token=x HTTP/1.1\r\n"
    "Host: pbx.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
    "Firefox/128.0\r\n"
    "Accept: */*\r\n\r\n";

static void
body(void *owner, const char *p, size_t n)
{
	(void)owner;
	(void)p;
	(void)n;
}

static const struct gw_reqparse_hooks hooks = { .body = body };

/* The access line's fields through jansson, written the same way. */
static void
jansson_line(int fd)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "@timestamp", json_string("2026-12-05T21:00:00.123Z"));
	json_object_set_new(o, "event.dataset", json_string("pbxgate.access"));
	json_object_set_new(o, "event.module", json_string("http"));
	json_object_set_new(o, "event.action", json_string("request"));
	json_object_set_new(o, "event.outcome", json_string("success"));
	json_object_set_new(o, "event.duration", json_integer(1843210));
	json_object_set_new(o, "source.ip", json_string("198.51.100.7"));
	json_object_set_new(o, "client.ip", json_string("198.51.100.7"));
	json_object_set_new(o, "user.name", json_string(""));
	json_object_set_new(o, "http.request.id",
	    json_string("4893d216e260e5c38fcae29ed64f3a89"));
	json_object_set_new(o, "http.request.method", json_string("GET"));
	json_object_set_new(o, "url.path",
	    json_string("/webclient/api/caf\xc3\xa9/MyPhone/session"));
	json_object_set_new(o, "url.domain", json_string("pbx.example.com"));
	json_object_set_new(o, "user_agent.original", json_string("Mozilla/5.0 "
	    "(X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"));
	json_object_set_new(o, "tls.version", json_string(""));
	json_object_set_new(o, "http.response.status_code", json_integer(200));
	json_object_set_new(o, "http.request.bytes", json_integer(412));
	json_object_set_new(o, "http.response.bytes", json_integer(5120));
	json_object_set_new(o, "destination.address", json_string("10.0.0.5"));
	json_object_set_new(o, "destination.port", json_integer(5001));
	json_object_set_new(o, "pbxgate.upstream.duration", json_integer(1500000));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s != NULL)
		(void)!write(fd, s, strlen(s));
	free(s);
	json_decref(o);
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int
main(void)
{
	static const struct gw_limits lim = {
		.request_line = 8192, .header_size = 8192, .header_total = 65536,
		.headers = 100, .body = 65536,
	};
	static struct gw_runtime rt;
	static struct gw_worker w;
	static struct gw_config cfg;
	static struct gw_req rq;
	static struct gw_conn c;
	size_t used;
	double t0, t1;

	gw_reqparse_init(&rq.rp, &lim, &hooks, NULL);
	if (gw_reqparse_feed(&rq.rp, head, sizeof(head) - 1, &used) != GW_RP_HEAD) {
		fprintf(stderr, "access_bench: the sample head did not parse\n");
		return 1;
	}
	rt.access_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	w.rt = &rt;
	cfg.upstream.host = "10.0.0.5";
	cfg.upstream.port = 5001;
	c.w = &w;
	c.cfg = &cfg;
	c.rq = &rq;
	strcpy(c.peer_ip, "198.51.100.7");
	strcpy(rq.client_ip, "198.51.100.7");
	strcpy(rq.reqid, "4893d216e260e5c38fcae29ed64f3a89");
	rq.status = 200;
	rq.bytes_in = 412;
	rq.bytes_out = 5120;
	rq.upstream_ms = 1.5;
	clock_gettime(CLOCK_MONOTONIC, &rq.t_start);
	t0 = now_ns();
	for (int i = 0; i < LINES; i++)
		gw_access_log(&c);
	t1 = now_ns();
	printf("access_bench: %d lines, %.0f ns per line\n", LINES,
	    (t1 - t0) / LINES);
	t0 = now_ns();
	for (int i = 0; i < LINES; i++)
		jansson_line(rt.access_fd);
	t1 = now_ns();
	printf("access_bench: the same fields with jansson: %.0f ns per line\n",
	    (t1 - t0) / LINES);
	close(rt.access_fd);
	gw_reqparse_free(&rq.rp);
	return 0;
}
