/* test_smtp_session.c -- SMTP sessions as conversations: the test is the
 * PBX on one end of a socketpair, a scripted smarthost runs on the same
 * event loop, and every step says "send this, expect that reply". */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>

#include "mail/mail.h"
#include "policy/policy.h"

#define MAX_SPINS 2000

/* ---- the scripted smarthost ---- */

struct smarthost {
	struct evconnlistener *l;
	int                    port;
	const char            *rcpt_reply;	/* reply to every RCPT */
	const char            *data_reply;	/* reply after the final dot */
	const char            *ehlo_reply;
	bool                   in_data;
	char                   got[65536];	/* DATA received, dot-stuffed */
	size_t                 gotlen;
	unsigned               messages;
};

static void
sh_read(struct bufferevent *bev, void *arg)
{
	struct smarthost *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT))) {
		const char *r = NULL;
		if (h->in_data) {
			if (strcmp(line, ".") == 0) {
				h->in_data = false;
				h->messages++;
				r = h->data_reply;
			} else if (h->gotlen + n + 2 < sizeof(h->got)) {
				memcpy(h->got + h->gotlen, line, n);
				memcpy(h->got + h->gotlen + n, "\r\n", 2);
				h->gotlen += n + 2;
			}
		} else if (strncmp(line, "EHLO", 4) == 0)
			r = h->ehlo_reply;
		else if (strncmp(line, "MAIL", 4) == 0)
			r = "250 2.1.0 ok";
		else if (strncmp(line, "RCPT", 4) == 0)
			r = h->rcpt_reply;
		else if (strcmp(line, "DATA") == 0) {
			h->in_data = true;
			r = "354 go on";
		} else if (strcmp(line, "QUIT") == 0)
			r = "221 bye";
		else
			r = "500 what";
		if (r != NULL)
			evbuffer_add_printf(bufferevent_get_output(bev), "%s\r\n",
			    r);
		free(line);
	}
}

static void
sh_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void
sh_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct bufferevent *b = bufferevent_socket_new(
	    evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);

	bufferevent_setcb(b, sh_read, NULL, sh_event, arg);
	bufferevent_enable(b, EV_READ | EV_WRITE);
	bufferevent_write(b, "220 fake ESMTP\r\n", 16);
}

/* ---- the fixture: rules file, settings, ctx, base ---- */

static struct event_base *base;
static struct mail_ctx *ctx;
static struct smarthost sh;
static char tmpdir[] = "/tmp/smtpsessXXXXXX";
static char rules_path[300];
static int pbx = -1;		/* our end of the socketpair */
static char audit_last[8192];
static char inbuf[16384];	/* bytes from the session not yet consumed */
static size_t inlen;

static void
audit_cb(void *arg, const char *outcome, const char *line)
{
	(void)outcome;
	snprintf(audit_last, sizeof(audit_last), "%s", line);
}

static void
kw(struct mail_settings *s, const char *k, const char *v1, const char *v2)
{
	char *argv[2] = { (char *)v1, (char *)v2 };
	char err[256];
	int bad;

	cr_assert_eq(pol_kw_run(&mail_kwtab, s, tmpdir, k, v2 ? 2 : 1, argv,
	    &bad, err, sizeof(err)), 0, "%s: %s", k, err);
}

/* Sets up with the smarthost listening (up = true) or a closed port. */
static void
setup_with(bool up, const char *extra_kw, const char *extra_val)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct mail_settings s;
	char relay[64], err[512];
	FILE *f;

	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(rules_path, sizeof(rules_path), "%s/t.rules", tmpdir);
	f = fopen(rules_path, "w");
	fputs("rule pw\n pattern (?i)password:\\s*(?<secret>\\S+)\nend\n"
	    "rule nope\n pattern TUNNELKEY\n action reject\nend\n", f);
	fclose(f);
	base = event_base_new();
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&sh, 0, sizeof(sh));
	sh.rcpt_reply = "250 2.1.5 ok";
	sh.data_reply = "250 2.0.0 queued as FAKE1";
	sh.ehlo_reply = "250-fake.smarthost\r\n250 8BITMIME";
	sh.l = evconnlistener_new_bind(base, sh_accept, &sh,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
	    (struct sockaddr *)&sin, sizeof(sin));
	cr_assert_not_null(sh.l);
	getsockname(evconnlistener_get_fd(sh.l), (struct sockaddr *)&sin, &sl);
	sh.port = ntohs(sin.sin_port);
	if (!up) {
		evconnlistener_free(sh.l);	/* nothing listens there now */
		sh.l = NULL;
	}
	mail_settings_defaults(&s);
	snprintf(relay, sizeof(relay), "127.0.0.1:%d", sh.port);
	kw(&s, "smtp_listen", "127.0.0.1:1", NULL);
	kw(&s, "smtp_relay", relay, NULL);
	kw(&s, "smtp_relay_tls", "none", NULL);
	kw(&s, "smtp_hostname", "gw.test", NULL);
	kw(&s, "scrub_rules", "t.rules", NULL);
	kw(&s, "smtp_max_recipients", "2", NULL);
	kw(&s, "smtp_max_size", "2k", NULL);
	kw(&s, "smtp_max_line", "1000", NULL);
	if (extra_kw != NULL)
		kw(&s, extra_kw, extra_val, NULL);
	cr_assert_eq(mail_settings_finish(&s, err, sizeof(err)), 0, "%s", err);
	ctx = mail_ctx_new(&s, NULL, audit_cb, NULL, err, sizeof(err));
	cr_assert_not_null(ctx, "%s", err);
	mail_settings_free(&s);
}

static void
connect_pbx(void)
{
	int sv[2];
	struct sockaddr_in peer = { .sin_family = AF_INET };

	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pbx = sv[1];
	mail_session_start(ctx, base, sv[0], (struct sockaddr *)&peer,
	    sizeof(peer));
}

static void
teardown_all(void)
{
	if (pbx >= 0)
		close(pbx);
	pbx = -1;
	inlen = 0;
	/* Let the session see EOF and free itself, then check it did. */
	for (int i = 0; i < MAX_SPINS && mail_sessions_count(base) > 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_expect_eq(mail_sessions_count(base), 0, "a session was not freed");
	mail_ctx_unref(ctx);
	for (int i = 0; i < 20; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	if (sh.l != NULL)
		evconnlistener_free(sh.l);
	event_base_free(base);
	unlink(rules_path);
	rmdir(tmpdir);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/smtpsessXXXXXX");
}

static void
setup_up(void)
{
	setup_with(true, NULL, NULL);
	connect_pbx();
}

static void
setup_down(void)
{
	setup_with(false, NULL, NULL);
	connect_pbx();
}

/* Length of the first complete reply in inbuf (through the CRLF of its
 * "NNN text" line), 0 if there is none yet. */
static size_t
complete_reply(void)
{
	size_t pos = 0;

	while (pos < inlen) {
		char *nl = memmem(inbuf + pos, inlen - pos, "\r\n", 2);
		size_t ll;
		if (nl == NULL)
			return 0;
		ll = (size_t)(nl - (inbuf + pos));
		pos += ll + 2;
		if (ll < 4 || inbuf[pos - ll - 2 + 3] == ' ')
			return pos;
	}
	return 0;
}

/* Runs the loop until one complete reply has arrived on the PBX end and
 * returns it (lines joined by "\n", no CRs); "" if the session closed. */
static char *
reply(void)
{
	static char out[16384];
	size_t n = 0;

	for (int spins = 0; spins < MAX_SPINS && (n = complete_reply()) == 0;
	    spins++) {
		struct pollfd p = { pbx, POLLIN, 0 };
		event_base_loop(base, EVLOOP_NONBLOCK);
		/* poll waits for the session's bytes; the 10 ms only bounds
		 * one spin while the relay is still talking */
		if (poll(&p, 1, 10) == 1) {
			ssize_t r = read(pbx, inbuf + inlen,
			    sizeof(inbuf) - inlen);
			if (r <= 0)
				break;
			inlen += (size_t)r;
		}
	}
	memcpy(out, inbuf, n);
	out[n] = '\0';
	memmove(inbuf, inbuf + n, inlen - n);
	inlen -= n;
	for (char *c = out; *c; c++)
		if (*c == '\r')
			memmove(c, c + 1, strlen(c));
	if (n > 0)
		out[strlen(out) - 1] = '\0';
	return out;
}

static void
send_line(const char *l)
{
	cr_assert_eq(write(pbx, l, strlen(l)), (ssize_t)strlen(l));
	cr_assert_eq(write(pbx, "\r\n", 2), 2);
}

static void
expect(const char *line, const char *want)
{
	const char *got;

	send_line(line);
	got = reply();
	cr_expect_eq(strncmp(got, want, strlen(want)), 0,
	    "'%.40s' -> '%s', want '%s'", line, got, want);
}

static void
greet(void)
{
	char *r = reply();

	cr_assert_str_eq(r, "220 gw.test ESMTP pbxgate");
	send_line("EHLO pbx.test");
	r = reply();
	cr_assert_not_null(strstr(r, "250-PIPELINING"), "%s", r);
}

static void
envelope(void)
{
	expect("MAIL FROM:<pbx@example.com>", "250 2.1.0");
	expect("RCPT TO:<alice@example.com>", "250 2.1.5");
	expect("DATA", "354 ");
}

TestSuite(smtp_session, .init = setup_up, .fini = teardown_all);

Test(smtp_session, ehlo_offers_extensions_but_no_starttls_without_tls)
{
	char *r = reply();

	cr_assert_str_eq(r, "220 gw.test ESMTP pbxgate");
	send_line("EHLO pbx.test");
	r = reply();
	cr_expect_not_null(strstr(r, "250-SIZE 2048"), "%s", r);
	cr_expect_not_null(strstr(r, "250-8BITMIME"), "%s", r);
	cr_expect_null(strstr(r, "STARTTLS"), "%s", r);
	cr_expect_null(strstr(r, "AUTH"), "no smtp_auth: %s", r);
	expect("STARTTLS", "502 5.5.1 STARTTLS not available");
	expect("AUTH PLAIN", "502 5.5.1 AUTH not available");
	expect("QUIT", "221 2.0.0 Bye");
}

Test(smtp_session, sequence_errors_each_get_one_reply)
{
	reply();
	expect("MAIL FROM:<a@b>", "503 5.5.1 Send EHLO or HELO first");
	expect("HELO pbx", "250 gw.test Hello [127.0.0.1]");
	expect("RCPT TO:<a@b>", "503 5.5.1 Need MAIL before RCPT");
	expect("DATA", "503 5.5.1 Need MAIL and RCPT before DATA");
	expect("MAIL FROM:<a@b>", "250 2.1.0");
	expect("DATA", "503 5.5.1 Need RCPT before DATA");
	expect("MAIL FROM:<a@b>", "503 5.5.1 Nested MAIL command");
	expect("RCPT TO:<1@b>", "250 2.1.5");
	expect("RCPT TO:<2@b>", "250 2.1.5");
	expect("RCPT TO:<3@b>", "452 4.5.3 Too many recipients");
	expect("RSET", "250 2.0.0 Ok");
	expect("RCPT TO:<a@b>", "503 5.5.1 Need MAIL before RCPT");
	expect("MAIL FROM:<a@b> SIZE=4096", "552 5.3.4");
	expect("NOOP", "250 2.0.0 Ok");
}

Test(smtp_session, message_is_scrubbed_and_relayed)
{
	greet();
	envelope();
	send_line("Subject: welcome\r\nMessage-ID: <m1@x>\r\n\r\n"
	    "..dot line\r\nPassword: Sess1Secret\r\nBye.\r\n.");
	cr_expect_str_eq(reply(), "250 2.0.0 Ok: scrubbed and relayed "
	    "(smarthost: 2.0.0 queued as FAKE1)");
	cr_expect_eq(sh.messages, 1);
	cr_expect_null(memmem(sh.got, sh.gotlen, "Sess1Secret", 11));
	cr_expect_not_null(memmem(sh.got, sh.gotlen, "\r\n..dot line", 12),
	    "dot-stuffing lost: %.*s", (int)sh.gotlen, sh.got);
	cr_expect_not_null(memmem(sh.got, sh.gotlen, "Bye.", 4));
	cr_expect_not_null(strstr(audit_last, "\"event.action\":\"relayed\""), "%s",
	    audit_last);
	cr_expect_not_null(strstr(audit_last, "\"rule\":\"pw\""));
	cr_expect_not_null(strstr(audit_last, "\"email.message_id\":\"m1@x\""));
	cr_expect_null(strstr(audit_last, "Sess1Secret"));
	expect("QUIT", "221");
}

Test(smtp_session, bare_lf_cannot_end_data_early)
{
	greet();
	envelope();
	send_line("Subject: s\r\n\r\nA\n.\nMAIL FROM:<evil@x>\r\nB\r\n.");
	/* Bare LFs are refused outright (issue 12 #14): the smarthost gets
	 * nothing, and the smuggled "MAIL" stayed data, never a command. */
	cr_expect_str_eq(reply(), "554 5.6.0 Message refused: line 3 holds a "
	    "bare CR, a bare LF or a NUL byte; send CRLF line ends only "
	    "(RFC 5321 2.3.8)");
	cr_expect_eq(sh.messages, 0);
	cr_expect_not_null(strstr(audit_last, "\"event.action\":\"bad_line_end\""),
	    "%s", audit_last);
	expect("NOOP", "250");
}

Test(smtp_session, eight_bit_downgraded_for_smarthost_without_8bitmime)
{
	bool eight = false;

	sh.ehlo_reply = "250 fake.smarthost";
	greet();
	expect("MAIL FROM:<pbx@example.com> BODY=8BITMIME", "250 2.1.0");
	expect("RCPT TO:<alice@example.com>", "250 2.1.5");
	expect("DATA", "354 ");
	send_line("Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	    "Gr\xc3\xbc\xc3\x9f Gott\r\n.");
	cr_expect_eq(strncmp(reply(), "250 2.0.0 Ok", 12), 0);
	cr_assert_eq(sh.messages, 1);
	for (size_t i = 0; i < sh.gotlen; i++)
		eight |= (unsigned char)sh.got[i] >= 0x80;
	cr_expect(!eight, "8-bit bytes reached a smarthost without 8BITMIME:"
	    "\n%.*s", (int)sh.gotlen, sh.got);
	/* "Grüß Gott\r\n" as GMime chose to encode it */
	cr_expect(memmem(sh.got, sh.gotlen, "R3LDvMOfIEdvdHQNCg==", 20) ||
	    memmem(sh.got, sh.gotlen, "Gr=C3=BC=C3=9F Gott", 19),
	    "%.*s", (int)sh.gotlen, sh.got);
}

Test(smtp_session, reject_rule_gives_554_and_nothing_relayed)
{
	greet();
	envelope();
	send_line("Subject: s\r\n\r\nTUNNELKEY\r\n.");
	cr_expect_str_eq(reply(), "554 5.7.1 Message refused: it carries "
	    "credentials (rule nope)");
	cr_expect_eq(sh.messages, 0);
	cr_expect_not_null(strstr(audit_last, "\"event.action\":\"rejected\""));
	expect("NOOP", "250");
}

Test(smtp_session, too_big_during_data_gets_552)
{
	char line[990];

	greet();
	envelope();
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	send_line(line);
	send_line(line);
	send_line(line);
	send_line(".");
	cr_expect_str_eq(reply(), "552 5.3.4 Message too big: the limit is "
	    "2048 bytes");
	cr_expect_eq(sh.messages, 0);
	expect("NOOP", "250");
}

Test(smtp_session, long_data_line_gets_500)
{
	char line[1200];

	greet();
	envelope();
	memset(line, 'y', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	send_line(line);
	send_line(".");
	cr_expect_str_eq(reply(), "500 5.5.2 A line of the message is longer "
	    "than 1000 bytes");
	cr_expect_eq(sh.messages, 0);
}

Test(smtp_session, smarthost_refusal_is_forwarded)
{
	sh.rcpt_reply = "550 5.1.1 no such user";
	greet();
	envelope();
	send_line("Subject: s\r\n\r\nhi\r\n.");
	cr_expect_str_eq(reply(), "550 5.1.1 no such user (smarthost)");
	cr_expect_not_null(strstr(audit_last,
	    "\"event.action\":\"refused_by_smarthost\""));
}

Test(smtp_session, smarthost_temporary_failure_is_forwarded)
{
	sh.data_reply = "452 4.3.1 full";
	greet();
	envelope();
	send_line("Subject: s\r\n\r\nhi\r\n.");
	cr_expect_str_eq(reply(), "452 4.3.1 full (smarthost)");
}

Test(smtp_session, pipelined_commands_answered_in_order)
{
	char *r;

	reply();
	send_line("EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA");
	r = reply();	/* EHLO */
	cr_expect_not_null(strstr(r, "250 ENHANCEDSTATUSCODES"), "%s", r);
	cr_expect_str_eq(reply(), "250 2.1.0 Sender ok");
	cr_expect_str_eq(reply(), "250 2.1.5 Recipient ok");
	cr_expect_str_eq(reply(), "354 End data with <CR><LF>.<CR><LF>");
	send_line("Subject: p\r\n\r\nx\r\n.\r\nNOOP");
	r = reply();
	cr_expect_eq(strncmp(r, "250 2.0.0 Ok: scrubbed", 22), 0, "%s", r);
	cr_expect_str_eq(reply(), "250 2.0.0 Ok");
}

Test(smtp_session, bad_commands_then_421)
{
	reply();
	for (int i = 0; i < 10; i++)
		expect("BOGUS", "500 5.5.2 Command unrecognized");
	expect("BOGUS", "421 4.7.0 Too many errors");
}

Test(smtp_session, overlong_command_line)
{
	char line[1100];

	reply();
	memset(line, 'A', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	expect(line, "500 5.5.2 Line too long");
	expect("NOOP", "250");
}

Test(smtp_session, shutdown_closes_idle_session)
{
	greet();
	mail_sessions_shutdown(base);
	cr_expect_eq(strncmp(reply(), "421 4.3.2", 9), 0);
}

Test(smtp_session_down, smarthost_unreachable_gives_451, .init = setup_down,
    .fini = teardown_all)
{
	char *r;

	greet();
	envelope();
	send_line("Subject: s\r\n\r\nhi\r\n.");
	r = reply();
	cr_expect_eq(strncmp(r, "451 4.4.1 Smarthost unavailable", 31), 0,
	    "%s", r);
	cr_expect_not_null(strstr(audit_last, "\"event.action\":\"tempfail\""));
}

static void
setup_auth(void)
{
	setup_with(true, NULL, NULL);
	connect_pbx();
}

static bool
plain(char *out, size_t outlen, const char *user, const char *pass)
{
	unsigned char raw[256];
	size_t ul = strlen(user), pl = strlen(pass);

	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pass, pl);
	return outlen > 4 * ((ul + pl + 4) / 3) &&
	    EVP_EncodeBlock((unsigned char *)out, raw, (int)(ul + pl + 2)) > 0;
}

Test(smtp_session_auth, auth_required_and_checked, .init = setup_auth,
    .fini = teardown_all)
{
	/* The ctx above has no smtp_auth; make one that has. */
	struct mail_settings s;
	char err[512], tok[256], line[300];
	char *argv[2];
	int bad;

	close(pbx);
	pbx = -1;
	inlen = 0;
	for (int i = 0; i < MAX_SPINS && mail_sessions_count(base) > 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	mail_ctx_unref(ctx);
	mail_settings_defaults(&s);
	argv[0] = "pbx";
	/* argon2id of "pw", salt "saltsalt", the floor cost smtp_auth accepts (m=19 MiB, t=2) */
	argv[1] = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$"
	    "RYTSaq5wR1vyiFOpAFcPZ7GF1vb83OZ55tHW2rcQ8LA";
	cr_assert_eq(pol_kw_run(&mail_kwtab, &s, tmpdir, "smtp_auth", 2, argv,
	    &bad, err, sizeof(err)), 0, "%s", err);
	argv[0] = rules_path;
	pol_kw_run(&mail_kwtab, &s, tmpdir, "scrub_rules", 1, argv, &bad, err,
	    sizeof(err));
	argv[0] = "127.0.0.1:9";
	pol_kw_run(&mail_kwtab, &s, tmpdir, "smtp_relay", 1, argv, &bad, err,
	    sizeof(err));
	argv[0] = "none";
	pol_kw_run(&mail_kwtab, &s, tmpdir, "smtp_relay_tls", 1, argv, &bad, err,
	    sizeof(err));
	ctx = mail_ctx_new(&s, NULL, audit_cb, NULL, err, sizeof(err));
	cr_assert_not_null(ctx, "%s", err);
	mail_settings_free(&s);
	connect_pbx();
	reply();
	send_line("EHLO pbx");
	cr_expect_not_null(strstr(reply(), "250-AUTH PLAIN LOGIN"),
	    "loopback is offered AUTH without TLS");
	expect("MAIL FROM:<a@b>", "530 5.7.0 Authentication required");
	plain(tok, sizeof(tok), "pbx", "wrong");
	snprintf(line, sizeof(line), "AUTH PLAIN %s", tok);
	expect(line, "535 5.7.8");
	plain(tok, sizeof(tok), "other", "pw");
	snprintf(line, sizeof(line), "AUTH PLAIN %s", tok);
	expect(line, "535 5.7.8");
	expect("AUTH PLAIN", "334 ");
	expect("*", "501 5.7.0 Authentication cancelled");
	plain(tok, sizeof(tok), "pbx", "pw");
	snprintf(line, sizeof(line), "AUTH PLAIN %s", tok);
	expect(line, "235 2.7.0 Authentication successful");
	expect("MAIL FROM:<a@b>", "250 2.1.0");
}

/* ---- AUTH on a runner: the Argon2 check off the loop ---- */

/* A runner that only queues: the test decides when each job runs (on a
 * thread of its own, as in the gateway's pool) and when its done comes
 * back, in any order with further input. */
#define FAKE_MAX 4

struct fake_runner {
	mail_job_fn run[FAKE_MAX], done[FAKE_MAX];
	void       *job[FAKE_MAX];
	size_t      n;
	bool        full;
};

static struct fake_runner fr;
static const char *runner_timeout;	/* smtp_timeout; NULL = default */

static int
fake_submit(void *arg, struct event_base *b, mail_job_fn run,
    mail_job_fn done, void *job)
{
	struct fake_runner *r = arg;

	cr_assert_eq(b, base);
	if (r->full || r->n >= FAKE_MAX)
		return -1;
	r->run[r->n] = run;
	r->done[r->n] = done;
	r->job[r->n++] = job;
	return 0;
}

static void *
fake_thread(void *arg)
{
	size_t i = *(size_t *)arg;

	fr.run[i](fr.job[i]);
	return NULL;
}

/* Job i runs on a thread, then its done on this (the loop's) thread. */
static void
fake_finish(size_t i)
{
	pthread_t t;

	cr_assert_lt(i, fr.n);
	cr_assert_eq(pthread_create(&t, NULL, fake_thread, &i), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	fr.done[i](fr.job[i]);
}

/* Replaces the fixture's ctx by one with smtp_auth pbx/pw (tiny Argon2
 * parameters) and, when `runner`, the fake runner; then connects. */
static void
setup_runner(void)
{
	struct mail_settings s;
	char err[512];
	char *argv[2];
	int bad;

	setup_with(true, NULL, NULL);
	mail_ctx_unref(ctx);
	mail_settings_defaults(&s);
	argv[0] = "pbx";
	argv[1] = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$"
	    "RYTSaq5wR1vyiFOpAFcPZ7GF1vb83OZ55tHW2rcQ8LA";
	cr_assert_eq(pol_kw_run(&mail_kwtab, &s, tmpdir, "smtp_auth", 2, argv,
	    &bad, err, sizeof(err)), 0, "%s", err);
	kw(&s, "scrub_rules", rules_path, NULL);
	kw(&s, "smtp_relay", "127.0.0.1:9", NULL);
	kw(&s, "smtp_relay_tls", "none", NULL);
	kw(&s, "smtp_hostname", "gw.test", NULL);
	kw(&s, "smtp_max_line", "1000", NULL);
	if (runner_timeout != NULL)
		kw(&s, "smtp_timeout", runner_timeout, NULL);
	ctx = mail_ctx_new(&s, NULL, audit_cb, NULL, err, sizeof(err));
	cr_assert_not_null(ctx, "%s", err);
	mail_settings_free(&s);
	memset(&fr, 0, sizeof(fr));
	mail_ctx_set_runner(ctx, fake_submit, &fr);
	connect_pbx();
	greet();
}

/* The loop runs a bounded number of passes and nothing reaches the PBX. */
static void
expect_silence(void)
{
	struct pollfd p = { pbx, POLLIN, 0 };

	for (int i = 0; i < 50; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_expect_eq(inlen, 0, "unexpected: %.*s", (int)inlen, inbuf);
	cr_expect_eq(poll(&p, 1, 0), 0, "the session replied while waiting");
}

static void
send_auth(const char *user, const char *pass)
{
	char tok[256], line[300];

	cr_assert(plain(tok, sizeof(tok), user, pass));
	snprintf(line, sizeof(line), "AUTH PLAIN %s", tok);
	send_line(line);
}

TestSuite(smtp_session_runner, .init = setup_runner, .fini = teardown_all);

Test(smtp_session_runner, auth_waits_for_the_runner_then_235)
{
	send_auth("pbx", "pw");
	expect_silence();
	cr_assert_eq(fr.n, 1, "the check went to the runner");
	fake_finish(0);
	cr_expect_str_eq(reply(), "235 2.7.0 Authentication successful");
	expect("MAIL FROM:<a@b>", "250 2.1.0");
}

Test(smtp_session_runner, pipelined_commands_wait_for_the_result)
{
	char tok[256], lines[600];

	cr_assert(plain(tok, sizeof(tok), "pbx", "pw"));
	snprintf(lines, sizeof(lines), "AUTH PLAIN %s\r\nMAIL FROM:<a@b>", tok);
	send_line(lines);
	expect_silence();
	/* more input while the check is out: it waits too */
	send_line("NOOP");
	expect_silence();
	fake_finish(0);
	cr_expect_str_eq(reply(), "235 2.7.0 Authentication successful");
	cr_expect_str_eq(reply(), "250 2.1.0 Sender ok",
	    "MAIL was judged after the result, not refused with 530");
	cr_expect_str_eq(reply(), "250 2.0.0 Ok");
}

Test(smtp_session_runner, pipelined_command_after_failed_auth_gets_530)
{
	char tok[256], lines[600];

	cr_assert(plain(tok, sizeof(tok), "pbx", "wrong"));
	snprintf(lines, sizeof(lines), "AUTH PLAIN %s\r\nMAIL FROM:<a@b>", tok);
	send_line(lines);
	expect_silence();
	fake_finish(0);
	cr_expect_str_eq(reply(), "535 5.7.8 Authentication credentials "
	    "invalid");
	cr_expect_str_eq(reply(), "530 5.7.0 Authentication required");
}

Test(smtp_session_runner, auth_login_goes_to_the_runner)
{
	expect("AUTH LOGIN", "334 VXNlcm5hbWU6");
	expect("cGJ4", "334 UGFzc3dvcmQ6");	/* "pbx" */
	send_line("cHc=");			/* "pw" */
	expect_silence();
	cr_assert_eq(fr.n, 1);
	fake_finish(0);
	cr_expect_str_eq(reply(), "235 2.7.0 Authentication successful");
}

Test(smtp_session_runner, pool_full_gives_454_and_the_session_goes_on)
{
	fr.full = true;
	send_auth("pbx", "pw");
	cr_expect_str_eq(reply(), "454 4.7.0 Temporary authentication failure");
	expect("NOOP", "250 2.0.0 Ok");
	fr.full = false;
	send_auth("pbx", "pw");
	expect_silence();
	fake_finish(0);
	cr_expect_str_eq(reply(), "235 2.7.0 Authentication successful");
}

Test(smtp_session_runner, pool_full_is_not_a_failed_login)
{
	fr.full = true;
	for (int i = 0; i < 4; i++) {
		send_auth("pbx", "wrong");
		cr_expect_str_eq(reply(), "454 4.7.0 Temporary authentication "
		    "failure");
	}
	expect("NOOP", "250 2.0.0 Ok");
}

Test(smtp_session_runner, three_failures_then_421_and_close)
{
	for (size_t i = 0; i < 3; i++) {
		send_auth("pbx", "wrong");
		expect_silence();
		fake_finish(i);
		cr_expect_str_eq(reply(), i < 2 ?
		    "535 5.7.8 Authentication credentials invalid" :
		    "421 4.7.0 Too many failed authentications, closing");
	}
	cr_expect_str_eq(reply(), "", "the session closed");
}

/* The client hangs up while the check is out: the session is freed at
 * once, the job stays counted, and its done touches nothing of the
 * session (ASan would report it). */
Test(smtp_session_runner, hang_up_while_job_in_flight)
{
	send_auth("pbx", "pw");
	expect_silence();
	close(pbx);
	pbx = -1;
	for (int i = 0; i < 50; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_expect_eq(mail_sessions_count(base), 1, "the job is still counted");
	fake_finish(0);
	cr_expect_eq(mail_sessions_count(base), 0);
}

Test(smtp_session_runner, job_finishes_before_the_hang_up_is_seen)
{
	send_auth("pbx", "pw");
	expect_silence();
	close(pbx);
	pbx = -1;
	fake_finish(0);		/* the session has not read the EOF yet */
	for (int i = 0; i < MAX_SPINS && mail_sessions_count(base) > 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_expect_eq(mail_sessions_count(base), 0);
}

Test(smtp_session_runner, shutdown_while_job_in_flight_sends_only_421)
{
	send_auth("pbx", "pw");
	expect_silence();
	mail_sessions_shutdown(base);
	cr_expect_eq(strncmp(reply(), "421 4.3.2", 9), 0);
	cr_expect_str_eq(reply(), "", "closed after the 421");
	cr_expect_eq(mail_sessions_count(base), 1, "the job is still counted");
	fake_finish(0);
	cr_expect_eq(mail_sessions_count(base), 0);
	cr_expect_eq(inlen, 0, "no 235 after the 421");
}

Test(smtp_session_runner, without_runner_the_check_runs_inline)
{
	mail_ctx_set_runner(ctx, NULL, NULL);
	send_auth("pbx", "pw");
	cr_expect_str_eq(reply(), "235 2.7.0 Authentication successful");
	cr_expect_eq(fr.n, 0);
}

static void
setup_runner_short_timeout(void)
{
	runner_timeout = "300ms";
	setup_runner();
	runner_timeout = NULL;
}

/* The idle timeout fires while the check is out: 421, closed, and the
 * result that comes back later is dropped. */
Test(smtp_session_runner_timeout, timeout_while_job_in_flight,
    .init = setup_runner_short_timeout, .fini = teardown_all)
{
	send_auth("pbx", "pw");
	cr_expect_eq(strncmp(reply(), "421 4.4.2 gw.test Timeout", 25), 0);
	cr_expect_str_eq(reply(), "", "closed after the 421");
	cr_expect_eq(mail_sessions_count(base), 1, "the job is still counted");
	fake_finish(0);
	cr_expect_eq(mail_sessions_count(base), 0);
}

/* ---- the scrub on a runner: large messages off the loop (issue 12 #18) */

/* Authenticated on the runner, then an envelope: ready for DATA. */
static void
runner_envelope(void)
{
	send_auth("pbx", "pw");
	expect_silence();
	fake_finish(0);
	cr_assert_str_eq(reply(), "235 2.7.0 Authentication successful");
	expect("MAIL FROM:<pbx@example.com>", "250 2.1.0");
	expect("RCPT TO:<alice@example.com>", "250 2.1.5");
	expect("DATA", "354 ");
}

Test(smtp_session_runner, scrub_waits_for_the_runner_then_replies)
{
	runner_envelope();
	send_line("Subject: s\r\n\r\nTUNNELKEY here\r\n.\r\nNOOP");
	expect_silence();
	cr_assert_eq(fr.n, 2, "the scrub went to the runner");
	fake_finish(1);
	cr_expect_str_eq(reply(), "554 5.7.1 Message refused: it carries "
	    "credentials (rule nope)");
	cr_expect_str_eq(reply(), "250 2.0.0 Ok", "the pipelined NOOP waited "
	    "for the verdict");
	cr_expect_not_null(strstr(audit_last, "\"event.action\":\"rejected\""));
}

Test(smtp_session_runner, scrubbed_message_goes_on_to_the_smarthost)
{
	runner_envelope();
	send_line("Subject: s\r\n\r\nPassword: Run1Secret\r\n.");
	expect_silence();
	fake_finish(1);
	/* the fixture's smarthost (port 9) is down: the relay was tried */
	cr_expect_eq(strncmp(reply(), "451 4.4.1", 9), 0);
	cr_expect_not_null(strstr(audit_last, "\"rule\":\"pw\""), "%s",
	    audit_last);
}

Test(smtp_session_runner, runner_full_gives_451_for_the_message)
{
	runner_envelope();
	fr.full = true;
	send_line("Subject: s\r\n\r\nhello\r\n.");
	cr_expect_str_eq(reply(), "451 4.3.2 The gateway is busy checking "
	    "other work; try again later");
	fr.full = false;
	expect("NOOP", "250 2.0.0 Ok");
}

Test(smtp_session_runner, hang_up_while_scrub_in_flight)
{
	runner_envelope();
	send_line("Subject: s\r\n\r\nhello\r\n.");
	expect_silence();
	close(pbx);
	pbx = -1;
	for (int i = 0; i < 50; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_expect_eq(mail_sessions_count(base), 1, "the scrub is still counted");
	fake_finish(1);
	/* as in S_RELAY, input is paused: the EOF is seen once it is done */
	for (int i = 0; i < MAX_SPINS && mail_sessions_count(base) > 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_expect_eq(mail_sessions_count(base), 0);
}

Test(smtp_session_runner, shutdown_while_scrub_in_flight_finishes_first)
{
	runner_envelope();
	send_line("Subject: s\r\n\r\nTUNNELKEY\r\n.");
	expect_silence();
	mail_sessions_shutdown(base);
	expect_silence();
	fake_finish(1);
	cr_expect_str_eq(reply(), "554 5.7.1 Message refused: it carries "
	    "credentials (rule nope)");
	cr_expect_eq(strncmp(reply(), "421 4.3.2", 9), 0);
}
