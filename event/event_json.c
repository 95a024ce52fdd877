/* event_json.c -- the one JSON string escaper of every log line pbxgate
 * writes (access log and all audit events): UTF-8 kept, anything that is
 * not UTF-8 replaced, so every line is valid JSON and valid UTF-8. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "event/event.h"

/* Length of the valid UTF-8 sequence starting at s (n > 0 bytes left), or 0
 * when the byte at s does not start one. The ranges are RFC 3629's table:
 * they leave out overlong forms, surrogates and code points above
 * U+10FFFF, which a JSON reader would refuse or misread. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		lo = s[0] == 0xe0 ? 0xa0 : 0x80;	/* overlong */
		hi = s[0] == 0xed ? 0x9f : 0xbf;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		lo = s[0] == 0xf0 ? 0x90 : 0x80;	/* overlong */
		hi = s[0] == 0xf4 ? 0x8f : 0xbf;	/* > U+10FFFF */
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* The bytes that stand for the character at s (*used: how many of src it
 * takes) in esc, at most 6; their count. json: also backslash '"' and '\'
 * and write control bytes as \u00XX; without it only invalid UTF-8 is
 * replaced. */
static size_t
escape_one(const unsigned char *s, size_t n, char esc[6], size_t *used,
    bool json)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = utf8_len(s, n);

	*used = len != 0 ? len : 1;
	if (len == 0) {
		memcpy(esc, EV_REPLACEMENT, 3);
		return 3;
	}
	if (json && (s[0] == '"' || s[0] == '\\')) {
		esc[0] = '\\';
		esc[1] = (char)s[0];
		return 2;
	}
	if (json && (s[0] < 0x20 || s[0] == 0x7f)) {
		memcpy(esc, "\\u00", 4);
		esc[4] = hex[s[0] >> 4];
		esc[5] = hex[s[0] & 15];
		return 6;
	}
	memcpy(esc, s, len);
	return len;
}

/* Copies src to dst character by character through escape_one, stopping
 * before the first that does not fit whole; dst always NUL-terminated. */
static size_t
copy_chars(char *dst, size_t dstlen, const char *src, size_t srclen,
    bool json)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, i = 0;

	if (dstlen == 0)
		return 0;
	while (i < srclen) {
		char esc[6];
		size_t used, el = escape_one(s + i, srclen - i, esc, &used, json);

		if (o + el >= dstlen)
			break;
		memcpy(dst + o, esc, el);
		o += el;
		i += used;
	}
	dst[o] = '\0';
	return o;
}

size_t
ev_json_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	return copy_chars(dst, dstlen, src, srclen, true);
}

size_t
ev_utf8_clean(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	return copy_chars(dst, dstlen, src, srclen, false);
}
