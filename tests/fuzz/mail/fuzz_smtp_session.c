/* fuzz_smtp_session.c -- libFuzzer target: any bytes as what the PBX sends
 * to a whole SMTP session (state machine, AUTH, DATA, limits), with the
 * smarthost unreachable so every message ends in a reply. Invariants: no
 * crash, no leak, and the session always ends once the client hangs up. */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/event.h>

#include "mail/mail.h"
#include "policy/policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct mail_ctx *ctx;

static void
kw(struct mail_settings *s, const char *k, const char *a, const char *b)
{
	char *argv[2] = { (char *)a, (char *)b };
	char err[256];
	int bad;

	if (pol_kw_run(&mail_kwtab, s, "/", k, b ? 2 : 1, argv, &bad, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", k, err);
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mail_settings s;
	char err[512];

	mail_settings_defaults(&s);
	kw(&s, "smtp_listen", "127.0.0.1:1", NULL);
	kw(&s, "smtp_relay", "127.0.0.1:9", NULL);	/* nothing listens */
	kw(&s, "smtp_relay_tls", "none", NULL);
	kw(&s, "scrub_rules", MAIL_RULES_FILE, NULL);
	kw(&s, "smtp_max_size", "64k", NULL);
	kw(&s, "smtp_max_recipients", "4", NULL);
	kw(&s, "smtp_max_line", "1000", NULL);
	kw(&s, "smtp_timeout", "2s", NULL);
	/* argon2id of "pw", salt "saltsalt", t=2 m=19456: "\0pbx\0pw" logs in */
	kw(&s, "smtp_auth", "pbx", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$"
	    "RYTSaq5wR1vyiFOpAFcPZ7GF1vb83OZ55tHW2rcQ8LA");
	if (mail_settings_finish(&s, err, sizeof(err)) != 0) {
		fprintf(stderr, "finish: %s\n", err);
		abort();
	}
	base = event_base_new();
	ctx = mail_ctx_new(&s, NULL, NULL, NULL, err, sizeof(err));
	mail_settings_free(&s);
	if (base == NULL || ctx == NULL)
		abort();
	return 0;
}

static void
drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = { .sin_family = AF_INET };
	int sv[2];
	size_t off = 0;

	if (size > 48 * 1024)
		return 0;
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		abort();
	mail_session_start(ctx, base, sv[0], (struct sockaddr *)&peer,
	    sizeof(peer));
	for (int i = 0; i < 20000 && off < size; i++) {
		ssize_t w = write(sv[1], data + off, size - off);
		if (w > 0)
			off += (size_t)w;
		event_base_loop(base, EVLOOP_NONBLOCK);
		drain(sv[1]);
	}
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 20000 && mail_sessions_count(base) > 0; i++) {
		struct pollfd p = { sv[1], POLLIN, 0 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 1) == 1)
			drain(sv[1]);
	}
	close(sv[1]);
	for (int i = 0; i < 2000 && mail_sessions_count(base) > 0; i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	if (mail_sessions_count(base) != 0)
		abort();	/* a session that outlives its client */
	for (int i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
