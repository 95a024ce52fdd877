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

/* `@timestamp` of every line: "2026-12-05T21:09:00.123Z" (RFC 3339, UTC,
 * milliseconds), NUL-terminated. */
#define EV_TIME_MAX 32
void ev_timestamp(char out[EV_TIME_MAX]);

#endif
