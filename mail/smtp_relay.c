/* smtp_relay.c -- the asynchronous SMTP client that hands one scrubbed
 * message to the smarthost (STARTTLS or implicit TLS with verification, AUTH
 * PLAIN) and reports the smarthost's verdict back to the waiting session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "certs/certs.h"
#include "mail/mail.h"
#include "mail/mail_priv.h"

#define REPLY_LINE_MAX  2048	/* RFC 5321 4.5.3.1.5 says 512; be lenient */
#define REPLY_LINES_MAX 100

enum relay_state {
	R_CONNECT, R_BANNER, R_EHLO, R_STARTTLS, R_HANDSHAKE, R_AUTH,
	R_MAIL, R_RCPT, R_DATA, R_BODY, R_QUIT, R_DONE,
};

struct smtp_relay {
	struct mail_ctx    *ctx;
	struct event_base  *base;
	struct bufferevent *bev;
	enum relay_state    state;
	const char         *from;
	char              (*rcpt)[SMTP_ADDR_MAX + 1];
	size_t              nrcpt, next_rcpt;
	const char         *data;
	size_t              len;
	size_t              sent;	/* body bytes handed to the connection */
	bool                bol;	/* the next body byte starts a line */
	bool                body_8bit;
	char               *downgraded;	/* owned: 7-bit copy of data */
	bool                tls;
	bool                cap_starttls, cap_auth_plain, cap_8bit;
	unsigned            lines;		/* of the reply being read */
	char                last[REPLY_LINE_MAX];	/* its last line */
	smtp_relay_done     done;
	void               *arg;
};

/* Dot-stuffs whole lines of data into out (every line end written as
 * CRLF, a leading '.' doubled); *bol carries "at a line start" from one
 * call to the next. */
static int
stuff_lines(struct evbuffer *out, const char *data, size_t len, bool *bol)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i;
		if (*bol && data[i] == '.' && evbuffer_add(out, ".", 1) < 0)
			return -1;
		while (j < len && data[j] != '\r' && data[j] != '\n')
			j++;
		if (evbuffer_add(out, data + i, j - i) < 0)
			return -1;
		*bol = j < len;
		if (!*bol)
			break;
		if (evbuffer_add(out, "\r\n", 2) < 0)
			return -1;
		i = (data[j] == '\r' && j + 1 < len && data[j + 1] == '\n') ?
		    j + 2 : j + 1;
	}
	return 0;
}

/* The end of DATA: a last line end if the data lacked one, then ".". */
static int
stuff_end(struct evbuffer *out, bool bol)
{
	if (!bol && evbuffer_add(out, "\r\n", 2) < 0)
		return -1;
	return evbuffer_add(out, ".\r\n", 3);
}

int
smtp_dot_stuff(struct evbuffer *out, const char *data, size_t len)
{
	bool bol = true;

	if (stuff_lines(out, data, len, &bol) < 0)
		return -1;
	return stuff_end(out, bol);
}

static void
relay_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_relay *r = arg;

	if (r->bev != NULL)
		bufferevent_free(r->bev);
	free(r->downgraded);
	mail_ctx_unref(r->ctx);
	free(r);
}

/* Frees outside the bufferevent callback that is running now. */
static void
relay_release(struct smtp_relay *r)
{
	static const struct timeval now = { 0, 0 };

	if (r->state == R_DONE)
		return;
	r->state = R_DONE;
	if (r->bev != NULL) {
		bufferevent_setcb(r->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(r->bev, EV_READ | EV_WRITE);
	}
	if (event_base_once(r->base, -1, EV_TIMEOUT, relay_free_cb, r,
	    &now) < 0)
		relay_free_cb(-1, 0, r);
}

static void
quit_read(struct bufferevent *bev, void *arg)
{
	struct smtp_relay *r = arg;

	/* Any reply to QUIT (221 normally) ends the conversation. */
	if (evbuffer_search_eol(bufferevent_get_input(bev), NULL, NULL,
	    EVBUFFER_EOL_CRLF).pos >= 0)
		relay_release(r);
}

static void
quit_event(struct bufferevent *bev, short what, void *arg)
{
	relay_release(arg);
}

/* Reports to the session exactly once. A connection that is still in a
 * clean state says QUIT and waits (bounded by the relay timeout) for the
 * reply before it is freed; the session does not wait for that. */
static void
finish(struct smtp_relay *r, int code, const char *text)
{
	smtp_relay_done done = r->done;
	char shown[REPLY_LINE_MAX + 8];
	bool polite = r->bev != NULL && r->state >= R_MAIL &&
	    r->state <= R_BODY && code != 451;

	if (r->state == R_DONE)
		return;
	snprintf(shown, sizeof(shown), "%s", r->last);
	r->done = NULL;
	if (polite && bufferevent_write(r->bev, "QUIT\r\n", 6) == 0) {
		r->state = R_QUIT;
		bufferevent_setcb(r->bev, quit_read, NULL, quit_event, r);
	} else
		relay_release(r);
	if (done != NULL)
		done(r->arg, code, text, shown);
}

static void
tempfail(struct smtp_relay *r, const char *why)
{
	char text[REPLY_LINE_MAX + 128];

	snprintf(text, sizeof(text), "4.4.1 Smarthost unavailable: %s", why);
	finish(r, 451, text);
}

/* The smarthost said no to our message: the client gets the same code. */
static void
forward(struct smtp_relay *r, int code)
{
	char text[REPLY_LINE_MAX + 32];
	const char *t = strlen(r->last) > 4 ? r->last + 4 : "";

	if (code < 400 || code > 599) {
		tempfail(r, "unexpected reply from the smarthost");
		return;
	}
	snprintf(text, sizeof(text), "%s (smarthost)", t);
	finish(r, code, text);
}

/* Sends one command line (CRLF added) and moves to the state awaiting
 * its reply. */
static void
sendf(struct smtp_relay *r, enum relay_state next, const char *a,
    const char *b)
{
	struct evbuffer *out = bufferevent_get_output(r->bev);

	r->state = next;
	if (evbuffer_add(out, a, strlen(a)) < 0 ||
	    evbuffer_add(out, b, strlen(b)) < 0 ||
	    evbuffer_add(out, "\r\n", 2) < 0)
		tempfail(r, "out of memory");
}

static void
send_auth(struct smtp_relay *r)
{
	const char *u = r->ctx->s.relay_user, *p = r->ctx->s.relay_password;
	size_t ul = strlen(u), pl = strlen(p), n = ul + pl + 2;
	unsigned char *raw = malloc(n);
	char *b64 = malloc(4 * ((n + 2) / 3) + 1);

	if (raw == NULL || b64 == NULL) {
		free(raw);
		free(b64);
		tempfail(r, "out of memory");
		return;
	}
	raw[0] = '\0';
	memcpy(raw + 1, u, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, p, pl);
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
	sendf(r, R_AUTH, "AUTH PLAIN ", b64);
	OPENSSL_cleanse(raw, n);
	OPENSSL_cleanse(b64, strlen(b64));
	free(raw);
	free(b64);
}

static bool
has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* The body goes to the connection in slices of whole lines, the next one
 * when the previous has mostly drained: each loop pass does a bounded
 * amount of work whatever the message size (all at once, a 20 MB message
 * held the loop for 0.65 s, HTTPS on the same worker included). Each
 * slice is built in a buffer of its own and moved in one go: added line
 * by line, every line would wake the TLS write callback (one record per
 * line). */
#define BODY_SLICE (256 * 1024)

static void
send_body(struct smtp_relay *r)
{
	struct evbuffer *tmp;
	size_t end = r->len - r->sent > BODY_SLICE ? r->sent + BODY_SLICE :
	    r->len;
	const char *nl;

	if (r->state != R_BODY || r->sent > r->len)
		return;
	if (end < r->len) {	/* cut after a line end */
		nl = memchr(r->data + end, '\n', r->len - end);
		end = nl != NULL ? (size_t)(nl - r->data) + 1 : r->len;
	}
	if ((tmp = evbuffer_new()) == NULL ||
	    stuff_lines(tmp, r->data + r->sent, end - r->sent, &r->bol) < 0 ||
	    (end == r->len && stuff_end(tmp, r->bol) < 0) ||
	    evbuffer_add_buffer(bufferevent_get_output(r->bev), tmp) < 0) {
		if (tmp != NULL)
			evbuffer_free(tmp);
		tempfail(r, "out of memory");
		return;
	}
	evbuffer_free(tmp);
	/* past the end (len + 1): the final "." is out, nothing more */
	r->sent = end == r->len ? r->len + 1 : end;
}

static void
relay_write(struct bufferevent *bev, void *arg)
{
	send_body(arg);
}

static void
send_mail(struct smtp_relay *r)
{
	char cmd[SMTP_ADDR_MAX + 64];
	size_t n;

	/* RFC 6152 3: 8-bit data only to a server that offers 8BITMIME;
	 * otherwise the body parts are re-encoded (headers stay as sent). */
	if (!r->cap_8bit && has_8bit(r->data, r->len)) {
		if (mail_downgrade_7bit(r->data, r->len, &r->downgraded,
		    &n) < 0) {
			tempfail(r, "cannot convert 8-bit mail for a smarthost "
			    "without 8BITMIME");
			return;
		}
		r->data = r->downgraded;
		r->len = n;
		r->body_8bit = false;
	}
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>%s", r->from,
	    r->body_8bit && r->cap_8bit ? " BODY=8BITMIME" : "");
	sendf(r, R_MAIL, cmd, "");
}

static void relay_event(struct bufferevent *, short, void *);
static void relay_read(struct bufferevent *, void *);

static void
start_tls(struct smtp_relay *r)
{
	SSL *ssl = cert_client_ssl(r->ctx->client, r->ctx->s.relay_host);
	struct bufferevent *tb;

	if (ssl == NULL) {
		tempfail(r, "cannot create a TLS session");
		return;
	}
	tb = bufferevent_openssl_filter_new(r->base, r->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		SSL_free(ssl);
		tempfail(r, "cannot start TLS");
		return;
	}
	r->bev = tb;
	r->state = R_HANDSHAKE;
	bufferevent_setcb(tb, relay_read, NULL, relay_event, r);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

static void
after_ehlo(struct smtp_relay *r)
{
	if (!r->tls && r->ctx->s.relay_tls == MAIL_RELAY_STARTTLS) {
		if (!r->cap_starttls) {
			tempfail(r, "the smarthost does not offer STARTTLS "
			    "(smtp_relay_tls starttls)");
			return;
		}
		sendf(r, R_STARTTLS, "STARTTLS", "");
		return;
	}
	if (r->ctx->s.relay_user != NULL) {
		if (!r->cap_auth_plain) {
			tempfail(r, "the smarthost does not offer AUTH PLAIN");
			return;
		}
		send_auth(r);
		return;
	}
	send_mail(r);
}

static void
send_ehlo(struct smtp_relay *r)
{
	r->cap_starttls = r->cap_auth_plain = r->cap_8bit = false;
	sendf(r, R_EHLO, "EHLO ", r->ctx->s.hostname);
}

static void
next_rcpt_or_data(struct smtp_relay *r)
{
	char cmd[SMTP_ADDR_MAX + 16];

	if (r->next_rcpt < r->nrcpt) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>",
		    r->rcpt[r->next_rcpt++]);
		sendf(r, R_RCPT, cmd, "");
		return;
	}
	sendf(r, R_DATA, "DATA", "");
}

/* What a reply means depends on what we asked: returns the failure text for
 * a state that needs a specific code, NULL when the code is the good one. */
static const struct {
	int         ok;
	const char *fail;	/* NULL = forward the smarthost's own code */
} expect[] = {
	[R_BANNER]   = { 220, "the smarthost did not greet with 220" },
	[R_EHLO]     = { 250, "the smarthost refused EHLO" },
	[R_STARTTLS] = { 220, "the smarthost refused STARTTLS" },
	[R_AUTH]     = { 235, "the smarthost refused our credentials "
	    "(smtp_relay_auth)" },
	[R_MAIL]     = { 250, NULL },
	[R_RCPT]     = { 250, NULL },
	[R_DATA]     = { 354, NULL },
	[R_BODY]     = { 250, NULL },
};

static void
on_reply(struct smtp_relay *r, int code)
{
	enum relay_state st = r->state;

	if (st < R_BANNER || st > R_BODY) {
		tempfail(r, "unexpected reply from the smarthost");
		return;
	}
	/* Any refused recipient fails the whole message so that the PBX
	 * keeps it (and retries or bounces): nothing is lost. */
	if (code != expect[st].ok && !(st == R_RCPT && code == 251)) {
		if (expect[st].fail != NULL)
			tempfail(r, expect[st].fail);
		else
			forward(r, code);
		return;
	}
	switch (st) {
	case R_BANNER:
		send_ehlo(r);
		break;
	case R_EHLO:
		after_ehlo(r);
		break;
	case R_STARTTLS:
		start_tls(r);
		break;
	case R_AUTH:
		send_mail(r);
		break;
	case R_MAIL:
	case R_RCPT:
		next_rcpt_or_data(r);
		break;
	case R_DATA:
		r->state = R_BODY;
		r->sent = 0;
		r->bol = true;
		/* the next slice when the output is down to half a slice */
		bufferevent_setcb(r->bev, relay_read, relay_write, relay_event,
		    r);
		bufferevent_setwatermark(r->bev, EV_WRITE, BODY_SLICE / 2, 0);
		send_body(r);
		break;
	default:
		finish(r, 250, r->last + (strlen(r->last) > 4 ? 4 : 3));
		break;
	}
}

static void
note_capability(struct smtp_relay *r, const char *cap)
{
	if (strncasecmp(cap, "STARTTLS", 8) == 0 && cap[8] == '\0')
		r->cap_starttls = true;
	else if (strncasecmp(cap, "8BITMIME", 8) == 0)
		r->cap_8bit = true;
	else if (strncasecmp(cap, "AUTH", 4) == 0 && (cap[4] == ' ' ||
	    cap[4] == '=')) {
		for (const char *p = cap + 5; *p; p++)
			if (strncasecmp(p, "PLAIN", 5) == 0 &&
			    (p[5] == '\0' || p[5] == ' '))
				r->cap_auth_plain = true;
	}
}

/* One reply line: "NNN-text" continues, "NNN text" or "NNN" ends. */
static int
reply_line(struct smtp_relay *r, const char *line, size_t n)
{
	int code;

	if (n < 3 || n >= sizeof(r->last) || line[0] < '2' || line[0] > '5' ||
	    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (n > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	if (++r->lines > REPLY_LINES_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)	/* keep it printable for the client */
		r->last[i] = (char)((line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?');
	r->last[n] = '\0';
	if (r->state == R_EHLO && n > 4)
		note_capability(r, r->last + 4);
	if (n > 3 && line[3] == '-')
		return 0;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	r->lines = 0;
	on_reply(r, code);
	return 0;
}

static void
relay_read(struct bufferevent *bev, void *arg)
{
	struct smtp_relay *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (r->state != R_DONE && r->state != R_QUIT) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);

		if (line == NULL) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX)
				tempfail(r, "overlong reply line");
			return;
		}
		if (r->state == R_CONNECT || r->state == R_HANDSHAKE ||
		    reply_line(r, line, n) < 0) {
			free(line);
			tempfail(r, "malformed reply from the smarthost");
			return;
		}
		free(line);
	}
}

static void
tls_error(struct smtp_relay *r)
{
	char why[300] = "TLS handshake failed";
	unsigned long e = bufferevent_get_openssl_error(r->bev);

	if (e != 0)
		snprintf(why, sizeof(why), "TLS handshake failed: %s",
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) :
		    "unknown error");
	tempfail(r, why);
}

static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_relay *r = arg;

	if (what & BEV_EVENT_CONNECTED) {
		if (r->state == R_HANDSHAKE) {
			r->tls = true;
			send_ehlo(r);
		} else if (r->state == R_CONNECT) {
			r->tls = r->ctx->s.relay_tls == MAIL_RELAY_TLS;
			r->state = R_BANNER;
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		tempfail(r, "timed out (smtp_relay_timeout)");
	else if (r->state == R_HANDSHAKE ||
	    (r->state == R_CONNECT && r->ctx->s.relay_tls == MAIL_RELAY_TLS))
		tls_error(r);
	else if (what & BEV_EVENT_EOF)
		tempfail(r, "the smarthost closed the connection");
	else
		tempfail(r, r->state == R_CONNECT ? "cannot connect" :
		    "connection error");
}

static struct bufferevent *
relay_socket(struct smtp_relay *r)
{
	int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	SSL *ssl;

	if (r->ctx->s.relay_tls != MAIL_RELAY_TLS)
		return bufferevent_socket_new(r->base, -1, opts);
	ssl = cert_client_ssl(r->ctx->client, r->ctx->s.relay_host);
	if (ssl == NULL)
		return NULL;
	struct bufferevent *b = bufferevent_openssl_socket_new(r->base, -1,
	    ssl, BUFFEREVENT_SSL_CONNECTING, opts);
	if (b == NULL)
		SSL_free(ssl);
	return b;
}

struct smtp_relay *
smtp_relay_start(struct mail_ctx *ctx, struct event_base *base,
    const char *from, char (*rcpt)[SMTP_ADDR_MAX + 1], size_t nrcpt,
    const char *data, size_t len, bool body_8bit, smtp_relay_done done,
    void *arg)
{
	struct smtp_relay *r = calloc(1, sizeof(*r));
	struct timeval tv;

	if (r == NULL)
		return NULL;
	r->ctx = mail_ctx_ref(ctx);
	r->base = base;
	r->from = from;
	r->rcpt = rcpt;
	r->nrcpt = nrcpt;
	r->data = data;
	r->len = len;
	r->body_8bit = body_8bit;
	r->done = done;
	r->arg = arg;
	r->bev = relay_socket(r);
	if (r->bev == NULL) {
		mail_ctx_unref(r->ctx);
		free(r);
		return NULL;
	}
	tv.tv_sec = ctx->s.relay_timeout_ms / 1000;
	tv.tv_usec = (ctx->s.relay_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	bufferevent_setcb(r->bev, relay_read, NULL, relay_event, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	/* A refused connection is reported through relay_event (deferred);
	 * -1 means the socket could not even be made. */
	if (bufferevent_socket_connect(r->bev,
	    (struct sockaddr *)&ctx->s.relay, (int)ctx->s.relay_len) < 0) {
		bufferevent_free(r->bev);
		mail_ctx_unref(r->ctx);
		free(r);
		return NULL;
	}
	return r;
}

void
smtp_relay_cancel(struct smtp_relay *r)
{
	if (r == NULL || r->state == R_DONE || r->state == R_QUIT)
		return;
	r->done = NULL;
	relay_release(r);
}
