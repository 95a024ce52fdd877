/* smtp_session.c -- one ESMTP session with the PBX (RFC 5321): an explicit
 * state machine, a command table pairing each verb with a check and a
 * proceed function, DATA collected in memory, scrubbed, and relayed to the
 * smarthost before the final reply. Every refusal is exactly one reply. */
#include <limits.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "certs/certs.h"
#include "event/event.h"
#include "mail/mail.h"
#include "mail/mail_priv.h"

#define MAX_BAD_COMMANDS  10
#define MAX_AUTH_FAILURES 3
#define CLOSE_GRACE_MS    5000	/* bound on flushing the last reply */
#define SESSION_MAX_SEC   3600	/* bound on a whole session (slow drips) */

enum smtp_state {
	S_CONNECTED,	/* banner sent; EHLO/HELO expected */
	S_READY,	/* greeted; no transaction */
	S_MAIL,		/* MAIL accepted */
	S_RCPT,		/* at least one RCPT accepted */
	S_DATA,		/* reading the message */
	S_SCRUB,	/* the message is being scrubbed on the runner */
	S_RELAY,	/* the smarthost has the message; waiting for it */
	S_AUTH,		/* waiting for an AUTH continuation line */
	S_AUTH_WAIT,	/* the Argon2 check is on the runner; input waits */
	S_TLS,		/* TLS handshake after STARTTLS */
	S_CLOSING,	/* last reply queued; freed once it is written */
};

enum auth_step { AUTH_PLAIN, AUTH_LOGIN_USER, AUTH_LOGIN_PASS };

struct smtp_session;

enum job_kind { JOB_AUTH, JOB_SCRUB };

/* One piece of blocking work out on the ctx's runner: an Argon2 check or
 * the scrub of a message. Owned by this file from submit until its done
 * callback frees it. The session and the job point at each other; a
 * session freed first clears `s` and parks the job on the orphan list (so
 * the loop keeps running until it is back). `run` touches only ctx
 * (immutable, own reference) and the job's own fields. */
struct smtp_job {
	enum job_kind        kind;
	struct smtp_session *s;		/* NULL once the session is gone */
	struct mail_ctx     *ctx;	/* own reference */
	struct event_base   *base;
	/* JOB_AUTH */
	char                 user[1024];	/* NUL-terminated */
	size_t               ulen;
	char                 pass[1024];	/* wiped after the check */
	size_t               plen;
	bool                 ok;
	/* JOB_SCRUB: the message moves from the session to the job and,
	 * with the result, back (only one thread touches it at a time) */
	struct evbuffer         *msg;
	enum mail_verdict        verdict;
	struct mail_scrub_result res;
	char                     err[512];
	struct smtp_job     *prev, *next;	/* orphans, under sessions_lock */
};

/* Scrubs on the runner at once, in the whole process: each holds its
 * message and GMime's tree of it (a few times the message size), so this
 * bounds the memory they take; one more gets 451 and the PBX retries. */
#define SCRUB_JOBS_MAX 2
static atomic_uint scrub_jobs;

struct smtp_session {
	struct mail_ctx     *ctx;
	struct event_base   *base;
	struct bufferevent  *bev;
	struct event        *close_ev;
	struct event        *life_ev;
	enum smtp_state      state;
	char                 peer[64];
	bool                 loopback, tls, authed, esmtp, shutdown, freeing;
	bool                 in_process;	/* inside process_input() */
	unsigned             bad_commands, auth_failures;
	enum auth_step       auth_step;
	char                 login_user[256];
	char                 user[256];		/* authenticated as */
	struct smtp_job     *job;		/* in flight; NULL when none */
	/* the transaction */
	char                 from[SMTP_ADDR_MAX + 1];
	char               (*rcpt)[SMTP_ADDR_MAX + 1];
	size_t               nrcpt;
	bool                 body_8bit;
	struct evbuffer     *msg;
	uint64_t             size;
	bool                 too_big, long_line, in_long_line;
	unsigned             lines;		/* DATA lines so far */
	unsigned             bad_line;		/* first with CR/LF/NUL; 0 = none */
	struct mail_scrub_result res;
	struct smtp_relay   *relay;
	/* the per-process list of live sessions (for shutdown) */
	struct smtp_session *prev, *next;
};

static pthread_mutex_t sessions_lock = PTHREAD_MUTEX_INITIALIZER;
static struct smtp_session *sessions;
static struct smtp_job *orphans;	/* jobs whose session has ended */

static void process_input(struct smtp_session *);
static void session_close(struct smtp_session *);

static void
reply(struct smtp_session *s, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
}

/* ---- lifetime ---- */

static void
registry_add(struct smtp_session *s)
{
	pthread_mutex_lock(&sessions_lock);
	s->next = sessions;
	if (sessions != NULL)
		sessions->prev = s;
	sessions = s;
	pthread_mutex_unlock(&sessions_lock);
}

/* Also detaches a job still in flight: from now on it points at nothing
 * and is counted as an orphan until its done callback frees it. */
static void
registry_remove(struct smtp_session *s)
{
	pthread_mutex_lock(&sessions_lock);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (s->job != NULL) {
		s->job->s = NULL;
		s->job->prev = NULL;
		s->job->next = orphans;
		if (orphans != NULL)
			orphans->prev = s->job;
		orphans = s->job;
		s->job = NULL;
	}
	pthread_mutex_unlock(&sessions_lock);
}

static void
orphan_remove(struct smtp_job *j)
{
	pthread_mutex_lock(&sessions_lock);
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		orphans = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	pthread_mutex_unlock(&sessions_lock);
}

static void
reset_transaction(struct smtp_session *s)
{
	s->from[0] = '\0';
	s->nrcpt = 0;
	s->body_8bit = false;
	s->size = 0;
	s->too_big = s->long_line = s->in_long_line = false;
	s->lines = s->bad_line = 0;
	if (s->msg != NULL) {
		evbuffer_free(s->msg);
		s->msg = NULL;
	}
	mail_scrub_result_free(&s->res);
	memset(&s->res, 0, sizeof(s->res));
}

static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	registry_remove(s);
	smtp_relay_cancel(s->relay);
	reset_transaction(s);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->close_ev != NULL)
		event_free(s->close_ev);
	if (s->life_ev != NULL)
		event_free(s->life_ev);
	free(s->rcpt);
	OPENSSL_cleanse(s->login_user, sizeof(s->login_user));
	mail_ctx_unref(s->ctx);
	free(s);
}

/* Frees at the end of this event loop pass, never inside a callback of the
 * bufferevent being freed. */
static void
session_free(struct smtp_session *s)
{
	static const struct timeval now = { 0, 0 };

	if (s->freeing)
		return;
	s->freeing = true;
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	if (event_base_once(s->base, -1, EV_TIMEOUT, session_free_cb, s,
	    &now) < 0)
		session_free_cb(-1, 0, s);
}

static void
closing_timeout(evutil_socket_t fd, short what, void *arg)
{
	session_free(arg);
}

/* After STARTTLS the last bytes may still sit in the socket bufferevent
 * under the TLS filter: wait until that one is empty too. */
static void
under_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct smtp_session *s = arg;

	if (evbuffer_get_length(buf) == 0 && !s->freeing) {
		evbuffer_remove_cb(buf, under_drained, s);
		session_free(s);
	}
}

static void
closing_written(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	struct bufferevent *under = bufferevent_get_underlying(bev);

	if (under != NULL &&
	    evbuffer_get_length(bufferevent_get_output(under)) > 0) {
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		evbuffer_add_cb(bufferevent_get_output(under), under_drained, s);
		return;
	}
	session_free(s);
}

static void
closing_event(struct bufferevent *bev, short what, void *arg)
{
	session_free(arg);
}

/* The reply has been queued; close once it is on the wire (bounded). */
static void
session_close(struct smtp_session *s)
{
	struct timeval tv = { CLOSE_GRACE_MS / 1000, 0 };

	s->state = S_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_setcb(s->bev, NULL, closing_written, closing_event, s);
	bufferevent_enable(s->bev, EV_WRITE);
	s->close_ev = evtimer_new(s->base, closing_timeout, s);
	if (s->close_ev == NULL || evtimer_add(s->close_ev, &tv) < 0) {
		session_free(s);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		closing_written(s->bev, s);
}

static void
refuse_and_close(struct smtp_session *s, const char *line)
{
	reply(s, line);
	session_close(s);
}

/* ---- audit ---- */

static const char *
action_name(enum mail_action a)
{
	return a == MAIL_ACT_DROP ? "drop" : a == MAIL_ACT_REJECT ? "reject" :
	    "replace";
}

/* A bounded field of the session (strnlen: never past its array). */
static void
audit_field(struct ev_audit *ev, const char *key, const char *v, size_t max)
{
	ev_audit_strn(ev, key, v, v != NULL ? strnlen(v, max) : 0);
}

/* The message's audit line (event/event.h, docs/logging.md): what came in,
 * what the scrub matched, and what both sides were told. */
static void
audit(struct smtp_session *s, const char *action, const char *client_reply,
    const char *smarthost)
{
	const struct mail_scrub_result *r = &s->res;
	struct ev_audit *ev, *hit;
	char *line;
	size_t n;

	if (s->ctx->audit == NULL)
		return;
	ev = ev_audit_new("smtp", action, strcmp(action, "relayed") == 0 ?
	    "success" : "failure");
	audit_field(ev, "source.ip", s->peer, 64);
	if (s->ctx->site[0] != '\0')
		ev_audit_str(ev, "pbxgate.site", s->ctx->site);
	ev_audit_bool(ev, "tls.established", s->tls);
	audit_field(ev, "user.name", s->user, 255);
	audit_field(ev, "email.message_id", r->message_id, 255);
	audit_field(ev, "email.from.address", s->from, SMTP_ADDR_MAX);
	ev_audit_int(ev, "pbxgate.smtp.rcpt_count", (long long)s->nrcpt);
	ev_audit_int(ev, "pbxgate.smtp.size", (long long)s->size);
	for (size_t i = 0; i < r->nhits; i++) {
		if ((hit = ev_audit_item(ev, "pbxgate.smtp.scrub")) == NULL)
			break;
		audit_field(hit, "rule", r->hits[i].rule, 64);
		audit_field(hit, "part", r->hits[i].part, 64);
		ev_audit_str(hit, "action", action_name(r->hits[i].action));
		ev_audit_int(hit, "count", r->hits[i].count);
	}
	audit_field(ev, "pbxgate.smtp.reply", client_reply, 300);
	audit_field(ev, "pbxgate.smtp.smarthost_reply", smarthost, 300);
	if ((line = ev_audit_line(ev, &n)) == NULL)
		return;
	/* relayed with a scrub rule applied counts as scrubbed */
	s->ctx->audit(s->ctx->audit_arg, strcmp(action, "relayed") == 0 &&
	    r->nhits > 0 ? "scrubbed" : action, line);
	free(line);
}

/* ---- end of a transaction ---- */

/* Back to the greeted state; honours a pending shutdown and resumes any
 * pipelined input. */
static void
transaction_done(struct smtp_session *s)
{
	reset_transaction(s);
	s->state = S_READY;
	if (s->shutdown) {
		refuse_and_close(s, "421 4.3.2 Service shutting down, closing "
		    "transmission channel");
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	/* From inside process_input its loop goes on; from the relay's
	 * callback, resume the pipelined input here. */
	if (!s->in_process)
		process_input(s);
}

/* What the scrub of this message matched, for the rule hit counters. */
static void
count_hits(struct smtp_session *s)
{
	const struct mail_scrub_result *r = &s->res;

	if (s->ctx->count_hit == NULL)
		return;
	for (size_t i = 0; i < r->nhits; i++)
		s->ctx->count_hit(s->ctx->count_hit_arg, r->hits[i].rule,
		    action_name(r->hits[i].action), r->hits[i].count);
}

static void
finish_message(struct smtp_session *s, const char *action, const char *line,
    const char *smarthost)
{
	reply(s, line);
	count_hits(s);
	audit(s, action, line, smarthost);
	transaction_done(s);
}

static void
relay_done(void *arg, int code, const char *text, const char *smarthost)
{
	struct smtp_session *s = arg;
	char line[2600];

	s->relay = NULL;
	if (code == 250)
		snprintf(line, sizeof(line), "250 2.0.0 Ok: scrubbed and relayed "
		    "(smarthost: %.400s)", text);
	else	/* RFC 5321 4.5.3.1.5: reply lines stay under 512 bytes */
		snprintf(line, sizeof(line), "%d %.450s", code, text);
	finish_message(s, code == 250 ? "relayed" : code < 500 ? "tempfail" :
	    "refused_by_smarthost", line, smarthost);
}

/* After the scrub (inline or back from the runner): refuse, or hand the
 * message (s->msg, or the scrubbed copy in s->res) to the smarthost. */
static void
scrub_verdict(struct smtp_session *s, enum mail_verdict v, const char *err)
{
	char line[700];
	const char *data;
	size_t len;

	if (v == MAIL_SCRUB_REJECT) {
		snprintf(line, sizeof(line), "554 5.7.1 Message refused: it "
		    "carries credentials (rule %s)", s->res.reject_rule);
		finish_message(s, "rejected", line, NULL);
		return;
	}
	if (v == MAIL_SCRUB_ERROR) {
		snprintf(line, sizeof(line), "554 5.6.0 Message refused: it "
		    "could not be checked: %s", err);
		finish_message(s, "unchecked", line, NULL);
		return;
	}
	len = v == MAIL_SCRUB_CHANGED ? s->res.outlen :
	    evbuffer_get_length(s->msg);
	data = v == MAIL_SCRUB_CHANGED ? s->res.out : len == 0 ? "" :
	    (const char *)evbuffer_pullup(s->msg, -1);
	if (data == NULL) {
		finish_message(s, "tempfail", "451 4.3.1 Insufficient memory "
		    "for the message; try again later", NULL);
		return;
	}
	s->state = S_RELAY;
	bufferevent_disable(s->bev, EV_READ);
	s->relay = smtp_relay_start(s->ctx, s->base, s->from, s->rcpt, s->nrcpt,
	    data, len, s->body_8bit, relay_done, s);
	if (s->relay == NULL)
		finish_message(s, "tempfail", "451 4.3.0 Cannot start the relay "
		    "to the smarthost; try again later", NULL);
}

static void
job_free(struct smtp_job *j)
{
	OPENSSL_cleanse(j->user, sizeof(j->user));
	OPENSSL_cleanse(j->pass, sizeof(j->pass));
	if (j->kind == JOB_SCRUB) {
		if (j->msg != NULL)
			evbuffer_free(j->msg);
		mail_scrub_result_free(&j->res);
		atomic_fetch_sub(&scrub_jobs, 1);
	}
	mail_ctx_unref(j->ctx);
	free(j);
}

/* On a runner thread: the message is the job's own until it is back. */
static void
scrub_job_run(void *arg)
{
	struct smtp_job *j = arg;
	size_t len = evbuffer_get_length(j->msg);
	const char *msg = len ? (const char *)evbuffer_pullup(j->msg, -1) : "";

	if (msg == NULL) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		j->verdict = MAIL_SCRUB_ERROR;
		return;
	}
	j->verdict = mail_scrub(j->ctx->rules, msg, len, MAIL_SCRUB_CRLF,
	    &j->res, j->err, sizeof(j->err));
}

/* Back on the session's loop: the message and the result return to the
 * session, which goes on as after an inline scrub. A session that ended
 * meanwhile gets nothing; the job is freed. */
static void
scrub_job_done(void *arg)
{
	struct smtp_job *j = arg;
	struct smtp_session *s = j->s;

	if (s == NULL)
		orphan_remove(j);
	else
		s->job = NULL;
	if (s == NULL || s->freeing || s->state != S_SCRUB) {
		job_free(j);
		return;
	}
	s->msg = j->msg;
	j->msg = NULL;
	s->res = j->res;
	memset(&j->res, 0, sizeof(j->res));
	scrub_verdict(s, j->verdict, j->err);
	job_free(j);
}

/* Scrubbing a large message takes up to a second of CPU: on the loop it
 * would stall every connection of this worker, HTTPS included. The
 * message goes to the runner (the gateway's pool) and the session waits
 * in S_SCRUB with its input paused, like in S_RELAY. */
static void
scrub_submit(struct smtp_session *s)
{
	struct smtp_job *j;

	if (atomic_fetch_add(&scrub_jobs, 1) >= SCRUB_JOBS_MAX) {
		atomic_fetch_sub(&scrub_jobs, 1);
		finish_message(s, "tempfail", "451 4.3.2 Too many messages "
		    "being checked at once; try again later", NULL);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		atomic_fetch_sub(&scrub_jobs, 1);
		finish_message(s, "tempfail", "451 4.3.1 Insufficient memory "
		    "for the message; try again later", NULL);
		return;
	}
	j->kind = JOB_SCRUB;
	j->s = s;
	j->ctx = mail_ctx_ref(s->ctx);
	j->base = s->base;
	j->msg = s->msg;
	s->msg = NULL;
	s->job = j;
	s->state = S_SCRUB;
	bufferevent_disable(s->bev, EV_READ);
	if (s->ctx->submit(s->ctx->submit_arg, s->base, scrub_job_run,
	    scrub_job_done, j) < 0) {
		s->job = NULL;
		s->msg = j->msg;
		j->msg = NULL;
		job_free(j);
		finish_message(s, "tempfail", "451 4.3.2 The gateway is busy "
		    "checking other work; try again later", NULL);
	}
}

static void
data_done(struct smtp_session *s)
{
	char err[512], line[700];
	const char *msg;
	size_t len;
	enum mail_verdict v;

	if (s->too_big) {
		snprintf(line, sizeof(line), "552 5.3.4 Message too big: the "
		    "limit is %llu bytes", (unsigned long long)s->ctx->s.max_size);
		finish_message(s, "too_big", line, NULL);
		return;
	}
	if (s->long_line) {
		snprintf(line, sizeof(line), "500 5.5.2 A line of the message "
		    "is longer than %zu bytes", s->ctx->s.max_line);
		finish_message(s, "line_too_long", line, NULL);
		return;
	}
	if (s->bad_line > 0) {
		snprintf(line, sizeof(line), "554 5.6.0 Message refused: line "
		    "%u holds a bare CR, a bare LF or a NUL byte; send CRLF "
		    "line ends only (RFC 5321 2.3.8)", s->bad_line);
		finish_message(s, "bad_line_end", line, NULL);
		return;
	}
	if (s->ctx->submit != NULL) {
		scrub_submit(s);
		return;
	}
	len = evbuffer_get_length(s->msg);
	msg = len ? (const char *)evbuffer_pullup(s->msg, -1) : "";
	if (msg == NULL) {
		finish_message(s, "tempfail", "451 4.3.1 Insufficient memory "
		    "for the message; try again later", NULL);
		return;
	}
	v = mail_scrub(s->ctx->rules, msg, len, MAIL_SCRUB_CRLF, &s->res, err,
	    sizeof(err));
	scrub_verdict(s, v, err);
}

/* ---- DATA ---- */

/* Does the first n bytes of `in` (one DATA line without its CRLF) hold a
 * CR, an LF or a NUL? GMime reads a bare CR or LF as part of a header or
 * a line of its own, while the relay writes every one as a line end: what
 * the rules judged and what the smarthost reads would differ (a bare CR
 * ends the header block there, so a header GMime saw as one turns into
 * unscanned body). Such a message is refused, never "repaired". */
static bool
line_has_bare_eol(struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec v[16];
	struct evbuffer_ptr p;
	size_t seen = 0;

	if (evbuffer_ptr_set(in, &p, 0, EVBUFFER_PTR_SET) < 0)
		return true;
	while (seen < n) {
		int k = evbuffer_peek(in, (ev_ssize_t)(n - seen), &p, v, 16);
		if (k <= 0)
			return true;	/* cannot look: fail closed */
		for (int i = 0; i < k && i < 16 && seen < n; i++) {
			size_t m = v[i].iov_len < n - seen ? v[i].iov_len :
			    n - seen;
			if (memchr(v[i].iov_base, '\r', m) != NULL ||
			    memchr(v[i].iov_base, '\n', m) != NULL ||
			    memchr(v[i].iov_base, '\0', m) != NULL)
				return true;
			seen += m;
		}
		if (seen < n && evbuffer_ptr_set(in, &p, seen,
		    EVBUFFER_PTR_SET) < 0)
			return true;
	}
	return false;
}

static void
data_append(struct smtp_session *s, struct evbuffer *in, size_t n, size_t eol)
{
	if (s->size + n + 2 > s->ctx->s.max_size && !s->too_big) {
		s->too_big = true;
		evbuffer_free(s->msg);
		s->msg = NULL;
	}
	s->size += n + 2;
	if (s->too_big || s->long_line || s->bad_line > 0) {
		evbuffer_drain(in, n + eol);
		return;
	}
	/* Moves the bytes without copying; the line end becomes CRLF. */
	evbuffer_remove_buffer(in, s->msg, n);
	evbuffer_drain(in, eol);
	evbuffer_add(s->msg, "\r\n", 2);
}

/* Consumes complete lines of DATA. Returns 1 when the message ended. */
static int
data_input(struct smtp_session *s, struct evbuffer *in)
{
	for (;;) {
		size_t eol = 0, n;
		struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol,
		    EVBUFFER_EOL_CRLF_STRICT);
		unsigned char first;

		if (p.pos < 0) {
			/* A line with no end in sight: drop what we have but
			 * keep a possible CR of the coming CRLF. */
			size_t have = evbuffer_get_length(in);
			if (have > s->ctx->s.max_line) {
				s->long_line = s->in_long_line = true;
				evbuffer_drain(in, have - 1);
			}
			return 0;
		}
		n = (size_t)p.pos;
		if (s->in_long_line) {
			s->in_long_line = false;
			evbuffer_drain(in, n + eol);
			continue;
		}
		if (n + eol > s->ctx->s.max_line)
			s->long_line = true;
		first = 0;
		if (n > 0)
			evbuffer_copyout(in, &first, 1);
		if (n == 1 && first == '.') {
			evbuffer_drain(in, n + eol);
			return 1;
		}
		if (first == '.') {	/* RFC 5321 4.5.2 transparency */
			evbuffer_drain(in, 1);
			n--;
		}
		if (s->lines < UINT_MAX)
			s->lines++;
		if (s->bad_line == 0 && !s->too_big && !s->long_line &&
		    line_has_bare_eol(in, n))
			s->bad_line = s->lines;
		data_append(s, in, n, eol);
	}
}

/* ---- commands: checks return the refusal, or NULL to proceed ---- */

static const char *
check_helo(struct smtp_session *s, struct smtp_cmd *c)
{
	if (c->arg[0] == '\0' || strlen(c->arg) > 255)
		return "501 5.5.4 Syntax: EHLO hostname";
	return NULL;
}

static void
ehlo_line(struct smtp_session *s, const char *text, bool last)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	evbuffer_add_printf(out, "250%c%s\r\n", last ? ' ' : '-', text);
}

static void
do_helo(struct smtp_session *s, struct smtp_cmd *c)
{
	char line[300];
	bool offer_tls = !s->tls && s->ctx->tls != NULL;
	bool offer_auth = s->ctx->s.auth_user != NULL && !s->authed &&
	    (s->tls || s->loopback);

	reset_transaction(s);
	s->esmtp = c->verb == SMTP_V_EHLO;
	s->state = S_READY;
	snprintf(line, sizeof(line), "%s Hello [%s]", s->ctx->s.hostname,
	    s->peer);
	if (!s->esmtp) {
		ehlo_line(s, line, true);
		return;
	}
	ehlo_line(s, line, false);
	ehlo_line(s, "PIPELINING", false);
	snprintf(line, sizeof(line), "SIZE %llu",
	    (unsigned long long)s->ctx->s.max_size);
	ehlo_line(s, line, false);
	ehlo_line(s, "8BITMIME", false);
	if (offer_tls)
		ehlo_line(s, "STARTTLS", false);
	if (offer_auth)
		ehlo_line(s, "AUTH PLAIN LOGIN", false);
	ehlo_line(s, "ENHANCEDSTATUSCODES", true);
}

static const char *
check_starttls(struct smtp_session *s, struct smtp_cmd *c)
{
	if (s->tls)
		return "503 5.5.1 TLS already active";
	if (s->ctx->tls == NULL)
		return "502 5.5.1 STARTTLS not available";
	if (c->arg[0] != '\0')
		return "501 5.5.4 Syntax: STARTTLS takes no argument";
	if (s->state == S_CONNECTED)
		return "503 5.5.1 Send EHLO first";
	if (s->state != S_READY)
		return "503 5.5.1 STARTTLS is not allowed inside a transaction";
	return NULL;
}

static void session_read(struct bufferevent *, void *);
static void session_event(struct bufferevent *, short, void *);

static void
set_timeouts(struct smtp_session *s)
{
	struct timeval tv = { s->ctx->s.timeout_ms / 1000,
	    (s->ctx->s.timeout_ms % 1000) * 1000 };

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void
do_starttls(struct smtp_session *s, struct smtp_cmd *c)
{
	SSL *ssl = cert_server_ssl_smtp(s->ctx->tls);
	struct bufferevent *tb;

	if (ssl == NULL) {
		reply(s, "454 4.7.0 TLS not available due to temporary reason");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	/* Commands pipelined after STARTTLS arrived in clear: discard them
	 * (RFC 3207 5, the plaintext command injection attack). */
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	tb = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		SSL_free(ssl);
		session_close(s);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	s->bev = tb;
	s->state = S_TLS;
	set_timeouts(s);
	bufferevent_setcb(tb, session_read, NULL, session_event, s);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

static const char *
check_auth(struct smtp_session *s, struct smtp_cmd *c)
{
	if (s->ctx->s.auth_user == NULL)
		return "502 5.5.1 AUTH not available";
	if (s->state == S_CONNECTED)
		return "503 5.5.1 Send EHLO first";
	if (s->state != S_READY)
		return "503 5.5.1 AUTH is not allowed inside a transaction";
	if (s->authed)
		return "503 5.5.1 Already authenticated";
	if (!s->tls && !s->loopback)
		return "538 5.7.11 Encryption required: use STARTTLS first";
	return NULL;
}

/* Exactly one reply for the AUTH. False when the session is closing (it
 * may already be freed: touch it no more). */
static bool
auth_result(struct smtp_session *s, bool ok, const char *user)
{
	s->state = S_READY;
	if (ok) {
		s->authed = true;
		snprintf(s->user, sizeof(s->user), "%s", user);
		reply(s, "235 2.7.0 Authentication successful");
		return true;
	}
	/* Brute force over one connection ends here; across connections the
	 * Argon2 cost and the runner's bounded queue slow it down. */
	if (++s->auth_failures >= MAX_AUTH_FAILURES) {
		refuse_and_close(s, "421 4.7.0 Too many failed authentications, "
		    "closing");
		return false;
	}
	reply(s, "535 5.7.8 Authentication credentials invalid");
	return true;
}

/* While a check is out, pipelined input stays in the kernel beyond one
 * line's worth; reading goes on below that so a hang-up is noticed. */
static void
hold_input(struct smtp_session *s, bool hold)
{
	bufferevent_setwatermark(s->bev, EV_READ, 0,
	    hold ? s->ctx->s.max_line : 0);
}

/* On a runner thread: only the job's own copies and the immutable ctx. */
static void
auth_job_run(void *arg)
{
	struct smtp_job *j = arg;

	j->ok = smtp_auth_check(j->ctx, j->user, j->ulen, j->pass, j->plen);
	OPENSSL_cleanse(j->pass, sizeof(j->pass));
}

/* Back on the session's loop: reply, then resume the pipelined input. A
 * session that ended or moved on (timeout, shutdown: 421 already sent)
 * gets nothing more. */
static void
auth_job_done(void *arg)
{
	struct smtp_job *j = arg;
	struct smtp_session *s = j->s;
	bool go_on = false;

	if (s == NULL)
		orphan_remove(j);
	else
		s->job = NULL;
	if (s != NULL && !s->freeing && s->state == S_AUTH_WAIT) {
		hold_input(s, false);
		go_on = auth_result(s, j->ok, j->user);
	}
	job_free(j);
	if (go_on)
		process_input(s);
}

/* Checks user and password: inline without a runner; with one, hands a
 * copy to it and waits in S_AUTH_WAIT (454 when it is full, RFC 4954 6). */
static void
auth_check(struct smtp_session *s, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	struct smtp_job *j;

	if (s->ctx->submit == NULL) {
		auth_result(s, smtp_auth_check(s->ctx, user, ulen, pass, plen),
		    user);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || ulen >= sizeof(j->user) || plen > sizeof(j->pass)) {
		free(j);
		s->state = S_READY;
		reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	j->kind = JOB_AUTH;
	j->s = s;
	j->ctx = mail_ctx_ref(s->ctx);
	j->base = s->base;
	memcpy(j->user, user, ulen);
	j->ulen = ulen;
	memcpy(j->pass, pass, plen);
	j->plen = plen;
	s->job = j;
	s->state = S_AUTH_WAIT;
	hold_input(s, true);
	if (s->ctx->submit(s->ctx->submit_arg, s->base, auth_job_run,
	    auth_job_done, j) < 0) {
		s->job = NULL;
		job_free(j);
		hold_input(s, false);
		s->state = S_READY;
		reply(s, "454 4.7.0 Temporary authentication failure");
	}
}

/* One base64 response (initial or after 334). */
static void
auth_response(struct smtp_session *s, const char *b64)
{
	unsigned char buf[1024];
	const char *user, *pass;
	size_t n = 0, ul, pl;

	if (strcmp(b64, "*") == 0) {
		s->state = S_READY;
		reply(s, "501 5.7.0 Authentication cancelled");
		return;
	}
	if (smtp_b64_decode(b64, buf, sizeof(buf) - 1, &n) < 0) {
		s->state = S_READY;
		reply(s, "501 5.5.2 Cannot decode the base64 response");
		return;
	}
	buf[n] = '\0';
	switch (s->auth_step) {
	case AUTH_PLAIN:
		/* A malformed response costs no Argon2: it is simply wrong. */
		if (!smtp_auth_plain_split(buf, n, &user, &ul, &pass, &pl))
			auth_result(s, false, "");
		else	/* user is NUL-terminated: buf[n] is 0 */
			auth_check(s, user, ul, pass, pl);
		break;
	case AUTH_LOGIN_USER:
		if (n >= sizeof(s->login_user) || memchr(buf, '\0', n)) {
			s->state = S_READY;
			reply(s, "501 5.5.2 Invalid user name");
			break;
		}
		memcpy(s->login_user, buf, n + 1);
		s->auth_step = AUTH_LOGIN_PASS;
		reply(s, "334 UGFzc3dvcmQ6");
		break;
	case AUTH_LOGIN_PASS:
		auth_check(s, s->login_user, strlen(s->login_user),
		    (const char *)buf, n);
		break;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
}

static void
do_auth(struct smtp_session *s, struct smtp_cmd *c)
{
	char mech[16] = "";
	const char *ir = NULL;
	size_t ml = strcspn(c->arg, " ");

	if (ml < sizeof(mech)) {
		memcpy(mech, c->arg, ml);
		mech[ml] = '\0';
	}
	if (c->arg[ml] == ' ')
		ir = c->arg + ml + 1;
	if (strcasecmp(mech, "PLAIN") == 0)
		s->auth_step = AUTH_PLAIN;
	else if (strcasecmp(mech, "LOGIN") == 0)
		s->auth_step = AUTH_LOGIN_USER;
	else {
		reply(s, "504 5.5.4 Unrecognized authentication mechanism "
		    "(PLAIN and LOGIN are offered)");
		return;
	}
	s->state = S_AUTH;
	if (ir != NULL)		/* RFC 4954 4: "=" is an empty response */
		auth_response(s, strcmp(ir, "=") == 0 ? "" : ir);
	else
		reply(s, s->auth_step == AUTH_PLAIN ? "334 " :
		    "334 VXNlcm5hbWU6");
}

static const char *
check_mail(struct smtp_session *s, struct smtp_cmd *c)
{
	if (s->state == S_CONNECTED)
		return "503 5.5.1 Send EHLO or HELO first";
	if (s->state != S_READY)
		return "503 5.5.1 Nested MAIL command";
	if (s->ctx->s.auth_user != NULL && !s->authed)
		return "530 5.7.0 Authentication required";
	if (c->size > s->ctx->s.max_size)
		return "552 5.3.4 Message size exceeds the fixed maximum "
		    "message size";
	return NULL;
}

static void
do_mail(struct smtp_session *s, struct smtp_cmd *c)
{
	if (s->rcpt == NULL) {
		s->rcpt = calloc(s->ctx->s.max_recipients, sizeof(*s->rcpt));
		if (s->rcpt == NULL) {
			reply(s, "452 4.3.1 Insufficient system resources");
			return;
		}
	}
	reset_transaction(s);
	memcpy(s->from, c->addr, sizeof(s->from));
	s->body_8bit = c->body_8bit;
	s->state = S_MAIL;
	reply(s, "250 2.1.0 Sender ok");
}

static const char *
check_rcpt(struct smtp_session *s, struct smtp_cmd *c)
{
	if (s->state != S_MAIL && s->state != S_RCPT)
		return "503 5.5.1 Need MAIL before RCPT";
	if (s->nrcpt >= s->ctx->s.max_recipients)
		return "452 4.5.3 Too many recipients";
	return NULL;
}

static void
do_rcpt(struct smtp_session *s, struct smtp_cmd *c)
{
	memcpy(s->rcpt[s->nrcpt++], c->addr, sizeof(s->rcpt[0]));
	s->state = S_RCPT;
	reply(s, "250 2.1.5 Recipient ok");
}

static const char *
check_data(struct smtp_session *s, struct smtp_cmd *c)
{
	if (c->arg[0] != '\0')
		return "501 5.5.4 Syntax: DATA takes no argument";
	if (s->state == S_MAIL)
		return "503 5.5.1 Need RCPT before DATA";
	if (s->state != S_RCPT)
		return "503 5.5.1 Need MAIL and RCPT before DATA";
	return NULL;
}

static void
do_data(struct smtp_session *s, struct smtp_cmd *c)
{
	s->msg = evbuffer_new();
	if (s->msg == NULL) {
		reply(s, "452 4.3.1 Insufficient system resources");
		return;
	}
	s->state = S_DATA;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static const char *
check_noarg(struct smtp_session *s, struct smtp_cmd *c)
{
	if (c->verb != SMTP_V_NOOP && c->arg[0] != '\0')
		return "501 5.5.4 Syntax: no argument allowed";
	return NULL;
}

static const char *
check_any(struct smtp_session *s, struct smtp_cmd *c)
{
	return NULL;
}

static void
do_rset(struct smtp_session *s, struct smtp_cmd *c)
{
	reset_transaction(s);
	if (s->state != S_CONNECTED)
		s->state = S_READY;
	reply(s, "250 2.0.0 Ok");
}

static void
do_noop(struct smtp_session *s, struct smtp_cmd *c)
{
	reply(s, "250 2.0.0 Ok");
}

static void
do_quit(struct smtp_session *s, struct smtp_cmd *c)
{
	refuse_and_close(s, "221 2.0.0 Bye");
}

static void
do_vrfy(struct smtp_session *s, struct smtp_cmd *c)
{
	reply(s, "252 2.5.2 Cannot VRFY user; try RCPT");
}

static void
do_help(struct smtp_session *s, struct smtp_cmd *c)
{
	reply(s, "214 2.0.0 pbxgate: see RFC 5321");
}

static const char *
check_never(struct smtp_session *s, struct smtp_cmd *c)
{
	return c->verb == SMTP_V_BDAT ? "502 5.5.1 BDAT is not offered" :
	    "502 5.5.1 EXPN is not available";
}

static const struct smtp_command {
	enum smtp_verb verb;
	const char *(*check)(struct smtp_session *, struct smtp_cmd *);
	void (*proceed)(struct smtp_session *, struct smtp_cmd *);
} commands[] = {
	{ SMTP_V_HELO,     check_helo,     do_helo },
	{ SMTP_V_EHLO,     check_helo,     do_helo },
	{ SMTP_V_STARTTLS, check_starttls, do_starttls },
	{ SMTP_V_AUTH,     check_auth,     do_auth },
	{ SMTP_V_MAIL,     check_mail,     do_mail },
	{ SMTP_V_RCPT,     check_rcpt,     do_rcpt },
	{ SMTP_V_DATA,     check_data,     do_data },
	{ SMTP_V_RSET,     check_noarg,    do_rset },
	{ SMTP_V_NOOP,     check_noarg,    do_noop },
	{ SMTP_V_QUIT,     check_noarg,    do_quit },
	{ SMTP_V_VRFY,     check_any,      do_vrfy },
	{ SMTP_V_HELP,     check_any,      do_help },
	{ SMTP_V_EXPN,     check_never,    NULL },
	{ SMTP_V_BDAT,     check_never,    NULL },
};

static void
bad_command(struct smtp_session *s, const char *line)
{
	if (++s->bad_commands > MAX_BAD_COMMANDS) {
		refuse_and_close(s, "421 4.7.0 Too many errors, closing");
		return;
	}
	reply(s, line);
}

static void
handle_line(struct smtp_session *s, char *line)
{
	struct smtp_cmd c;
	const char *e;

	if (s->state == S_AUTH) {
		auth_response(s, line);
		return;
	}
	e = smtp_cmd_parse(line, &c);
	if (e != NULL) {
		bad_command(s, e);
		return;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].verb != c.verb)
			continue;
		e = commands[i].check(s, &c);
		if (e != NULL)
			reply(s, e);
		else
			commands[i].proceed(s, &c);
		return;
	}
	bad_command(s, "500 5.5.2 Command unrecognized");
}

/* Takes one command line off the input: 1 = line in buf, 0 = need more,
 * -1 = the session was closed. */
static int
take_line(struct smtp_session *s, struct evbuffer *in, char *buf,
    size_t buflen)
{
	size_t eol = 0, max = s->ctx->s.max_line;
	struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol,
	    EVBUFFER_EOL_CRLF);
	size_t n;

	if (p.pos < 0) {
		if (evbuffer_get_length(in) > max) {
			refuse_and_close(s, "500 5.5.2 Line too long, closing");
			return -1;
		}
		return 0;
	}
	n = (size_t)p.pos;
	if (n + eol > max || n >= buflen) {
		evbuffer_drain(in, n + eol);
		bad_command(s, "500 5.5.2 Line too long");
		return s->state == S_CLOSING ? -1 : 2;
	}
	evbuffer_remove(in, buf, n);
	evbuffer_drain(in, eol);
	buf[n] = '\0';
	if (memchr(buf, '\0', n) != NULL) {
		bad_command(s, "500 5.5.2 NUL character in command");
		return s->state == S_CLOSING ? -1 : 2;
	}
	return 1;
}

/* Handles every complete line that is already buffered (PIPELINING): each
 * iteration consumes input, so the loop ends with the buffer. */
static void
process_input(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char *line = NULL;
	size_t linemax = s->ctx->s.max_line + 1;

	if (s->in_process)
		return;
	s->in_process = true;
	while (evbuffer_get_length(in) > 0 && !s->freeing) {
		int r;

		if (s->state == S_DATA) {
			if (data_input(s, in) == 1) {
				data_done(s);
				continue;
			}
			break;
		}
		if (s->state != S_CONNECTED && s->state != S_READY &&
		    s->state != S_MAIL && s->state != S_RCPT &&
		    s->state != S_AUTH)
			break;
		if (line == NULL && (line = malloc(linemax)) == NULL) {
			refuse_and_close(s, "421 4.3.0 Out of memory, closing");
			break;
		}
		r = take_line(s, in, line, linemax);
		if (r <= 0)
			break;
		if (r == 1)
			handle_line(s, line);
	}
	if (line != NULL) {
		OPENSSL_cleanse(line, linemax);	/* may have held AUTH data */
		free(line);
	}
	s->in_process = false;
}

static void
session_read(struct bufferevent *bev, void *arg)
{
	process_input(arg);
}

static void
session_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	char line[200];

	if ((what & BEV_EVENT_CONNECTED) && s->state == S_TLS) {
		s->tls = true;
		s->authed = false;
		s->user[0] = '\0';
		s->state = S_CONNECTED;	/* RFC 3207 4.2: EHLO again */
		process_input(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && s->state != S_TLS) {
		snprintf(line, sizeof(line), "421 4.4.2 %s Timeout waiting for "
		    "the client, closing", s->ctx->s.hostname);
		refuse_and_close(s, line);
		return;
	}
	session_free(s);
}

/* A client that drips one byte per timeout could hold a session for days:
 * the session as a whole has a hard limit. A message already with the
 * smarthost is finished first (the relay has its own timeouts). */
static void
lifetime_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (s->freeing || s->state == S_CLOSING)
		return;
	if (s->state == S_RELAY || s->state == S_SCRUB) {
		s->shutdown = true;
		return;
	}
	refuse_and_close(s, "421 4.4.2 Session time limit reached, closing");
}

void
mail_session_start(struct mail_ctx *ctx, struct event_base *base,
    evutil_socket_t fd, const struct sockaddr *peer, socklen_t peerlen)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	struct pol_addr pa;
	char line[320];

	if (s == NULL || evutil_make_socket_nonblocking(fd) < 0) {
		free(s);
		evutil_closesocket(fd);
		return;
	}
	s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		free(s);
		evutil_closesocket(fd);
		return;
	}
	s->ctx = mail_ctx_ref(ctx);
	s->base = base;
	s->loopback = pol_addr_from_sockaddr(peer, &pa) &&
	    pol_addr_is_loopback(&pa);
	pol_addr_peer_text(peer, s->peer, sizeof(s->peer));
	registry_add(s);
	set_timeouts(s);
	s->life_ev = evtimer_new(base, lifetime_cb, s);
	if (s->life_ev != NULL) {
		struct timeval life = { SESSION_MAX_SEC, 0 };
		evtimer_add(s->life_ev, &life);
	}
	bufferevent_setcb(s->bev, session_read, NULL, session_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->state = S_CONNECTED;
	if (!mail_settings_allowed(&ctx->s, peer, peerlen)) {
		snprintf(line, sizeof(line), "554 5.7.1 %s is not allowed to "
		    "send mail here (smtp_allow)", s->peer);
		refuse_and_close(s, line);
		return;
	}
	snprintf(line, sizeof(line), "220 %s ESMTP pbxgate",
	    ctx->s.hostname);
	reply(s, line);
}

void
mail_sessions_shutdown(const struct event_base *base)
{
	struct smtp_session *s, *next;

	pthread_mutex_lock(&sessions_lock);
	for (s = sessions; s != NULL; s = next) {
		next = s->next;
		if (s->base != base || s->freeing)
			continue;
		s->shutdown = true;
		if (s->state == S_CONNECTED || s->state == S_READY ||
		    s->state == S_AUTH || s->state == S_AUTH_WAIT) {
			reply(s, "421 4.3.2 Service shutting down, closing "
			    "transmission channel");
			/* session_close only queues; frees run later. */
			session_close(s);
		}
	}
	pthread_mutex_unlock(&sessions_lock);
}

size_t
mail_sessions_count(const struct event_base *base)
{
	size_t n = 0;

	pthread_mutex_lock(&sessions_lock);
	/* A session being freed still counts while its job is out. */
	for (struct smtp_session *s = sessions; s != NULL; s = s->next)
		if (s->base == base && (!s->freeing || s->job != NULL))
			n++;
	for (struct smtp_job *j = orphans; j != NULL; j = j->next)
		if (j->base == base)
			n++;
	pthread_mutex_unlock(&sessions_lock);
	return n;
}
