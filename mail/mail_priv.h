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

/* mail_settings.c */
int mail_cidr_parse(const char *, struct mail_cidr *, char *, size_t);
bool mail_cidr_match(const struct mail_cidr *, int family,
    const uint8_t *addr);
bool mail_peer_is_loopback(const struct sockaddr *, socklen_t);

/* mail_rules.c: 1 match, 0 no match, -1 matcher error (limit hit). */
int mail_re_match(const struct mail_rules *, const pcre2_code *,
    const char *s, size_t len);

/* mail_scrub.c */
void mail_gmime_init(void);

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
