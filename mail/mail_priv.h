/* mail_priv.h -- declarations shared by the mail module's files only. */
#ifndef PBXGATE_MAIL_PRIV_H
#define PBXGATE_MAIL_PRIV_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "mail/mail.h"

#define MAIL_RULE_MAX_HDR   4
#define MAIL_RULES_MAX      256

enum mail_rule_kind {
	MAIL_KIND_TEXT = 0,	/* labelled secret or sentence in text parts */
	MAIL_KIND_URL,		/* secret-bearing URL: also inside HTML tags */
	MAIL_KIND_ATTACHMENT,	/* a whole part by type, filename, size */
};

struct mail_hdr_cond {
	char        name[64];
	pcre2_code *re;
};

struct mail_rule {
	char                 name[MAIL_RULE_NAME];
	unsigned             line;
	enum mail_rule_kind  kind;
	enum mail_action     action;
	bool                 action_set;
	pcre2_code          *pattern;	/* text, url */
	uint32_t             secret_group;	/* 0 = replace the whole match */
	pcre2_code          *ctype;	/* attachment: "type/subtype" */
	pcre2_code          *fname;	/* attachment: filename */
	uint64_t             min_size;	/* attachment: decoded bytes */
	size_t               nhdr;
	struct mail_hdr_cond hdr[MAIL_RULE_MAX_HDR];
	char                *notice;	/* NULL = the rules' default */
};

struct mail_rules {
	size_t            n;
	struct mail_rule  rule[MAIL_RULES_MAX];
	char             *notice;	/* default replacement text */
	pcre2_match_context *mctx;	/* match/depth limits against ReDoS */
};


/* mail_rules.c: 1 match, 0 no match, -1 matcher error (limit hit). */
int mail_re_match(const struct mail_rules *, const pcre2_code *,
    const char *s, size_t len);

/* mail_scrub.c */
void mail_gmime_init(void);
/* Re-encodes every 8bit/binary part as quoted-printable or base64 (headers
 * are left as they are). *out is malloc'd. 0 or -1. */
int mail_downgrade_7bit(const char *msg, size_t len, char **out,
    size_t *outlen);

/* mail_sniff.c: what a leaf part is, by content and name. */
enum mail_part_class {
	MAIL_PART_TEXT = 0,	/* scan as text in *charset (NULL: UTF-8) */
	MAIL_PART_HTML,		/* scan as HTML in *charset */
	MAIL_PART_MESSAGE,	/* an .eml: parse and scrub as a message */
	MAIL_PART_MEDIA,	/* a picture, sound or PDF: relayed unread */
	MAIL_PART_UNSCANNABLE,	/* cannot be checked: *why says what it is */
};
/* `ctype` is "type/subtype" (lower case), `fname` may be NULL, `textual`
 * says the declared type is one we read as text; d/len is the decoded
 * content. */
enum mail_part_class mail_part_classify(const char *ctype, const char *fname,
    bool textual, const unsigned char *d, size_t len, const char **charset,
    const char **why);
/* The charset text content is in: "UTF-8", "ISO-2022-JP", "Shift_JIS",
 * "EUC-JP", or NULL when it does not look like text at all. */
const char *mail_sniff_charset(const unsigned char *d, size_t len);
/* Does all of d read as text in `charset` (iconv, no invalid sequence)? */
bool mail_sniff_converts(const unsigned char *d, size_t len,
    const char *charset);

/* smtp_cmd.c: the SMTP command-line parser, a pure function for fuzzing. */
enum smtp_verb {
	SMTP_V_UNKNOWN = 0, SMTP_V_HELO, SMTP_V_EHLO, SMTP_V_STARTTLS,
	SMTP_V_AUTH, SMTP_V_MAIL, SMTP_V_RCPT, SMTP_V_DATA, SMTP_V_RSET,
	SMTP_V_NOOP, SMTP_V_QUIT, SMTP_V_VRFY, SMTP_V_EXPN, SMTP_V_HELP,
	SMTP_V_BDAT,
};

#define SMTP_ADDR_MAX 256

struct smtp_cmd {
	enum smtp_verb verb;
	const char    *arg;		/* points into the line; NUL-terminated */
	/* MAIL / RCPT: */
	char           addr[SMTP_ADDR_MAX + 1];
	uint64_t       size;		/* SIZE=, 0 if absent */
	bool           body_8bit;
};

/* Parses one command line (no CRLF, NUL-terminated, modifiable). Returns 0
 * or an SMTP reply ("501 5.5.4 ...") for a syntax error. */
const char *smtp_cmd_parse(char *line, struct smtp_cmd *);

#endif

/* ---- contexts, sessions and the relay client (mail_ctx.c, smtp_*.c) ---- */
#include <stdatomic.h>

struct cert_client;

struct mail_ctx {
	atomic_uint          refs;
	struct mail_settings s;		/* deep copy, owned */
	struct mail_rules   *rules;
	struct cert_server  *tls;	/* not owned; NULL = no STARTTLS */
	struct cert_client  *client;	/* owned; NULL when relay_tls none */
	mail_audit_fn        audit;
	void                *audit_arg;
	mail_submit_fn       submit;	/* NULL = blocking checks run inline */
	void                *submit_arg;
	mail_hit_fn          count_hit;	/* NULL = rule hits not counted */
	void                *count_hit_arg;
	char                 site[64];	/* "" = no site (mail_ctx_set_site) */
};

/* smtp_relay.c: one message to the smarthost. `done` is called exactly once
 * (never from inside smtp_relay_start) with the reply to give the client:
 * code 250 = accepted; otherwise the smarthost's own code or 451. The relay
 * frees itself after calling done. data must stay valid until then. */
struct smtp_relay;
typedef void (*smtp_relay_done)(void *arg, int code, const char *text,
    const char *smarthost_reply);
struct smtp_relay *smtp_relay_start(struct mail_ctx *, struct event_base *,
    const char *from, char (*rcpt)[SMTP_ADDR_MAX + 1], size_t nrcpt,
    const char *data, size_t len, bool body_8bit, smtp_relay_done done,
    void *arg);
/* The client went away: abort without finishing DATA; done is not called. */
void smtp_relay_cancel(struct smtp_relay *);

/* Writes data as an SMTP DATA body: every line end becomes CRLF (bare CR
 * and bare LF included, so nothing can end the data early at the
 * smarthost), leading dots doubled, then the final ".". */
struct evbuffer;
int smtp_dot_stuff(struct evbuffer *out, const char *data, size_t len);

/* smtp_auth.c: credential checks for AUTH PLAIN / LOGIN. */
/* Decodes base64 (RFC 4648, padding required) into out; -1 if invalid or
 * longer than outlen. */
int smtp_b64_decode(const char *in, unsigned char *out, size_t outlen,
    size_t *n);
/* Checks a user and password against smtp_auth in constant time with
 * respect to the password (Argon2 verify always runs). */
bool smtp_auth_check(const struct mail_ctx *, const char *user, size_t ulen,
    const char *pass, size_t plen);
/* Splits a decoded PLAIN response (authzid NUL authcid NUL passwd): false
 * when malformed or when authzid names someone else. The pointers point
 * into resp. */
bool smtp_auth_plain_split(const unsigned char *resp, size_t n,
    const char **user, size_t *ulen, const char **pass, size_t *plen);
/* smtp_auth_plain_split, then smtp_auth_check (inline; for tests). */
bool smtp_auth_plain(const struct mail_ctx *, const unsigned char *resp,
    size_t n);
