/* smtp_driver.c -- a small stand-alone SMTP listener for the integration
 * tests: reads the smtp_* / scrub_* keywords from a file, binds the first
 * smtp_listen address, and hands each connection to mail_session_start().
 * Usage: smtp_driver CONF [CERT KEY]; prints "ready" then one audit JSON
 * line per message on stdout. SIGTERM stops it gracefully.
 * `smtp_driver scrub CONF [--explain]` runs mail_cmd_scrub() as `pbxgate
 * scrub` does. `smtp_driver --hash PASSWORD` prints an Argon2id PHC string for smtp_auth
 * (cheap parameters: for tests only). */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <argon2.h>
#include <openssl/rand.h>

#include "certs/certs.h"
#include "mail/mail.h"
#include "policy/policy.h"

static void
audit_line(void *arg, const char *outcome, const char *json)
{
	(void)outcome;
	printf("%s\n", json);
	fflush(stdout);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	mail_session_start(arg, evconnlistener_get_base(l), fd, sa,
	    (socklen_t)salen);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct event_base *base = arg;

	if (mail_sessions_count(base) == 0)
		event_base_loopexit(base, NULL);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct event_base *base = arg;
	static struct event *tick;
	struct timeval tv = { 0, 50000 };

	mail_sessions_shutdown(base);
	if (tick == NULL) {
		tick = event_new(base, -1, EV_PERSIST, on_tick, base);
		event_add(tick, &tv);
	}
}

static int
load_conf(const char *path, struct mail_settings *s)
{
	char line[4096], err[512], dir[4096];
	FILE *f = fopen(path, "r");
	unsigned ln = 0;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *argv[32], *save = NULL, *t;
		int argc = 0, bad = 0;

		ln++;
		line[strcspn(line, "\r\n")] = '\0';
		for (t = strtok_r(line, " \t", &save); t && argc < 32;
		    t = strtok_r(NULL, " \t", &save))
			argv[argc++] = t;
		if (argc == 0 || argv[0][0] == '#')
			continue;
		int r = pol_kw_run(&mail_kwtab, s, dirname(dir), argv[0], argc - 1,
		    argv + 1, &bad, err, sizeof(err));
		snprintf(dir, sizeof(dir), "%s", path);
		if (r != 0) {
			fprintf(stderr, "%s:%u: %s\n", path, ln,
			    r > 0 ? "unknown keyword" : err);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (mail_settings_finish(s, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct mail_settings s;
	struct cert_server *tls = NULL;
	struct mail_ctx *ctx;
	struct event_base *base;
	struct evconnlistener *l;
	struct event *term;
	char err[512];

	if (argc == 3 && strcmp(argv[1], "--hash") == 0) {
		unsigned char salt[16];
		char enc[256];
		if (RAND_bytes(salt, sizeof(salt)) != 1 ||
		    argon2id_hash_encoded(2, 19456, 1, argv[2], strlen(argv[2]),
		    salt, sizeof(salt), 32, enc, sizeof(enc)) != ARGON2_OK)
			return 2;
		printf("%s\n", enc);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "scrub") == 0) {
		int rc;
		mail_settings_defaults(&s);
		if (load_conf(argv[2], &s) < 0)
			return 3;
		argv[2] = argv[1];	/* argv[0] for the command: "scrub" */
		rc = mail_cmd_scrub(&s, argc - 2, argv + 2);
		mail_settings_free(&s);
		return rc;
	}
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: smtp_driver CONF [CERT KEY]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	mail_settings_defaults(&s);
	if (load_conf(argv[1], &s) < 0 || s.nlisten == 0)
		return 2;
	if (argc == 4) {
		struct cert_pair p = { argv[2], argv[3] };
		tls = cert_server_new(&p, 1, NULL, err, sizeof(err));
		if (tls == NULL) {
			fprintf(stderr, "tls: %s\n", err);
			return 2;
		}
	}
	ctx = mail_ctx_new(&s, tls, audit_line, NULL, err, sizeof(err));
	if (ctx == NULL) {
		fprintf(stderr, "mail_ctx_new: %s\n", err);
		return 2;
	}
	base = event_base_new();
	l = evconnlistener_new_bind(base, on_accept, ctx,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
	    (struct sockaddr *)&s.listen[0], (int)s.listen_len[0]);
	if (l == NULL) {
		fprintf(stderr, "cannot listen on %s\n", s.listen_text[0]);
		return 2;
	}
	term = evsignal_new(base, SIGTERM, on_term, base);
	event_add(term, NULL);
	printf("ready\n");
	fflush(stdout);
	event_base_dispatch(base);
	evconnlistener_free(l);
	event_free(term);
	mail_ctx_unref(ctx);
	mail_settings_free(&s);
	event_base_free(base);
	if (tls != NULL)
		cert_server_free(tls);
	return 0;
}
