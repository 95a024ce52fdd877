/* event.h -- what every module shares to write its JSON log lines (access
 * and audit logs): the one string escaper and the one timestamp. The lowest module of the graph:
 * it depends on nothing of pbxgate, so policy, auth, mail and the gateway
 * can all link it.
 *
 * Ownership: the caller owns both buffers; nothing is allocated. */
#ifndef PBXGATE_EVENT_H
#define PBXGATE_EVENT_H

#include <stddef.h>

/* The UTF-8 replacement character U+FFFD, as written for each byte that is
 * not part of a valid UTF-8 sequence. */
#define EV_REPLACEMENT "\xef\xbf\xbd"

/* Escapes srclen bytes of src (NUL bytes included, no terminator needed) as
 * the inside of a JSON string into dst, which it always NUL-terminates when
 * dstlen > 0. Valid UTF-8 (RFC 3629: no overlong form, no surrogate, nothing
 * above U+10FFFF) is copied as is; every other byte becomes U+FFFD, so the
 * line is valid UTF-8 and reads back as the client sent it, never re-encoded
 * as Latin-1. '"' and '\' are backslashed, control bytes and DEL written as
 * \u00XX. When dst is short the output stops before the first character
 * that does not fit whole. Returns the bytes written, terminator excluded. */
size_t ev_json_escape(char *dst, size_t dstlen, const char *src,
    size_t srclen);

/* The same rules as ev_json_escape without the JSON escaping: copies the
 * valid UTF-8 of src to dst and writes U+FFFD for every other byte, for a
 * JSON library that refuses invalid UTF-8 (NUL bytes are kept: the length
 * is returned, dst is also NUL-terminated). Stops before the first
 * character that does not fit whole. */
size_t ev_utf8_clean(char *dst, size_t dstlen, const char *src,
    size_t srclen);

/* `@timestamp` of every line: "2026-12-05T21:09:00.123Z" (RFC 3339, UTC,
 * milliseconds), NUL-terminated. */
#define EV_TIME_MAX 32
void ev_timestamp(char out[EV_TIME_MAX]);

/* ---- audit events (event_audit.c) ----
 *
 * The one writer of every audit line (policy, integrity, auth, smtp,
 * config): a flat object of ECS dotted keys that always opens with
 * `@timestamp`, `event.dataset` "pbxgate.audit", `event.module`,
 * `event.action` and `event.outcome` (docs/logging.md). Every string is
 * made valid UTF-8 (ev_utf8_clean) and cut at EV_AUDIT_STR_MAX bytes, so
 * each line is valid JSON and bounded whatever the client sent.
 *
 * Ownership: ev_audit_new allocates; ev_audit_line consumes the event and
 * hands back a malloc'd line the caller frees; ev_audit_free drops one
 * unwritten. A NULL event is accepted and ignored everywhere, so a failed
 * allocation loses the line, never the process. */
#define EV_AUDIT_STR_MAX 2048
#define EV_AUDIT_LIST_MAX 64	/* items of one list (ev_audit_item) */

struct ev_audit;

/* outcome: "success", "failure" or "unknown" (ECS event.outcome). */
struct ev_audit *ev_audit_new(const char *module, const char *action,
    const char *outcome);
/* A NULL val is written as "". */
void ev_audit_str(struct ev_audit *, const char *key, const char *val);
void ev_audit_strn(struct ev_audit *, const char *key, const char *val,
    size_t len);
void ev_audit_int(struct ev_audit *, const char *key, long long val);
void ev_audit_bool(struct ev_audit *, const char *key, int val);
/* "FILE:LINE" of the deciding rule; "(default)" when no line decided
 * (file NULL or line 0: the policy's implicit default, a file no manifest
 * line holds). */
void ev_audit_rule(struct ev_audit *, const char *key, const char *file,
    unsigned line);
/* Appends an empty object to the list at key (created on first use) and
 * returns it, owned by ev; NULL past EV_AUDIT_LIST_MAX items. */
struct ev_audit *ev_audit_item(struct ev_audit *ev, const char *key);
/* The line, '\n'-terminated; *len its length. NULL when ev is NULL or out
 * of memory. Consumes ev. */
char *ev_audit_line(struct ev_audit *ev, size_t *len);
void ev_audit_free(struct ev_audit *);

#endif
