/* policy_path.c -- request path normalisation: one unambiguous spelling, judged and sent upstream. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes raw into dec exactly once. The encodings of the
 * separators are refused rather than decoded: upstreams disagree whether
 * %2F splits a segment, so any reading we chose could be the wrong one. */
static int
decode(const unsigned char *raw, size_t rawlen, unsigned char *dec,
    size_t *declen, char *err, size_t errlen)
{
	size_t i, n = 0;

	for (i = 0; i < rawlen; i++) {
		unsigned char c = raw[i];
		int hi, lo;

		if (c < 0x20 || c == 0x7f) {
			snprintf(err, errlen, "control byte 0x%02x in path at "
			    "offset %zu", c, i);
			return -1;
		}
		if (c != '%') {
			dec[n++] = c;
			continue;
		}
		if (i + 2 >= rawlen) {
			snprintf(err, errlen, "truncated %%-escape in path at "
			    "offset %zu", i);
			return -1;
		}
		hi = hexval(raw[i + 1]);
		lo = hexval(raw[i + 2]);
		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "bad %%-escape in path at offset "
			    "%zu", i);
			return -1;
		}
		c = (unsigned char)(hi << 4 | lo);
		if (c == '/' || c == '\\' || c == ';' || c == 0) {
			snprintf(err, errlen, "encoded '%s' (%%%c%c) in path at "
			    "offset %zu is refused", c == 0 ? "NUL" :
			    c == '/' ? "/" : c == '\\' ? "\\" : ";",
			    raw[i + 1], raw[i + 2], i);
			return -1;
		}
		dec[n++] = c;
		i += 2;
	}
	*declen = n;
	return 0;
}

/* Code points that servers fold onto ASCII (NFKC, best-fit mapping,
 * invariant upper-casing): refused so that they cannot alias a path. */
static bool
lookalike(uint32_t cp)
{
	static const uint32_t single[] = {
		0x0131, 0x017f, 0x2044, 0x2215, 0x212a, 0x29f5, 0x29f8,
		0x29f9, 0xfe52, 0xfe68,
	};

	if ((cp >= 0xff01 && cp <= 0xff5e) || (cp >= 0x2024 && cp <= 0x2026))
		return true;
	for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
		if (cp == single[i])
			return true;
	return false;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF);
 * also refuses decoded control bytes and look-alikes. */
static int
check_text(const unsigned char *s, size_t n, char *err, size_t errlen)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp, min;
		size_t len;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f) {
				snprintf(err, errlen, "encoded control byte "
				    "0x%02x in path", c);
				return -1;
			}
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			snprintf(err, errlen, "invalid UTF-8 in path");
			return -1;
		}
		if (n - i < len) {
			snprintf(err, errlen, "truncated UTF-8 in path");
			return -1;
		}
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80) {
				snprintf(err, errlen, "invalid UTF-8 in path");
				return -1;
			}
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			snprintf(err, errlen, "invalid UTF-8 in path "
			    "(overlong, surrogate or out of range)");
			return -1;
		}
		if (lookalike(cp)) {
			snprintf(err, errlen, "character U+%04X in path is "
			    "refused (servers may read it as ASCII)", cp);
			return -1;
		}
		i += len;
	}
	return 0;
}

/* Windows servers drop trailing dots and spaces and expand 8.3 short
 * names ("MANAGE~1"), and NTFS names streams with ":$": each would let a
 * second spelling reach the same file. */
static int
check_segment(const unsigned char *seg, size_t n, char *err, size_t errlen)
{
	if (seg[n - 1] == '.' || seg[n - 1] == ' ') {
		snprintf(err, errlen, "path segment ending in '%c' is refused",
		    seg[n - 1]);
		return -1;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		if (seg[i] == '~' && seg[i + 1] >= '0' && seg[i + 1] <= '9') {
			snprintf(err, errlen, "8.3 short name ('~%c') in path "
			    "is refused", seg[i + 1]);
			return -1;
		}
		if (seg[i] == ':' && seg[i + 1] == '$') {
			snprintf(err, errlen, "stream name (':$') in path is "
			    "refused");
			return -1;
		}
	}
	return 0;
}

/* RFC 3986 5.2.4 over segments split at '/' and '\', each cut at ';',
 * empty segments dropped. norm receives "/seg/seg[/]". */
static int
segments(const unsigned char *dec, size_t n, unsigned char *norm,
    size_t *normlen, char *err, size_t errlen)
{
	size_t i = 0, o = 0;
	bool trailing = true;

	while (i < n) {
		size_t start, end, seglen;

		while (i < n && (dec[i] == '/' || dec[i] == '\\'))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && dec[i] != '/' && dec[i] != '\\')
			i++;
		end = start;
		while (end < i && dec[end] != ';')
			end++;
		seglen = end - start;
		trailing = i < n;
		if (seglen == 0 || (seglen == 1 && dec[start] == '.')) {
			trailing = true;
			continue;
		}
		if (seglen == 2 && dec[start] == '.' && dec[start + 1] == '.') {
			if (o == 0) {
				snprintf(err, errlen, "'..' above the root of "
				    "the path");
				return -1;
			}
			while (o > 0 && norm[o - 1] != '/')
				o--;
			o--;	/* the '/' itself */
			trailing = true;
			continue;
		}
		if (check_segment(dec + start, seglen, err, errlen) == -1)
			return -1;
		norm[o++] = '/';
		memcpy(norm + o, dec + start, seglen);
		o += seglen;
	}
	if (o == 0 || trailing)
		norm[o++] = '/';
	*normlen = o;
	return 0;
}

static bool
keep_literal(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

static int
encode(const unsigned char *norm, size_t n, char *out, size_t outlen,
    char *err, size_t errlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	/* Re-encoding may grow the path; the result stays within the same
	 * bound as the input, so it is itself a valid input (fixed point). */
	if (outlen > POL_PATH_MAX + 1)
		outlen = POL_PATH_MAX + 1;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = norm[i];
		size_t need = keep_literal(c) ? 1 : 3;

		if (outlen - o <= need) {
			snprintf(err, errlen, "normalised path longer than "
			    "%zu bytes", outlen - 1);
			return -1;
		}
		if (need == 1) {
			out[o++] = (char)c;
			continue;
		}
		out[o++] = '%';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	out[o] = '\0';
	return 0;
}

int
pol_normalise_path(const char *raw, size_t rawlen, char *out, size_t outlen,
    char *err, size_t errlen)
{
	unsigned char dec[POL_PATH_MAX], norm[POL_PATH_MAX + 1];
	size_t declen, normlen;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (rawlen == 0 || (raw[0] != '/' && raw[0] != '\\')) {
		snprintf(err, errlen, "path does not start with '/'");
		return -1;
	}
	if (rawlen > POL_PATH_MAX) {
		snprintf(err, errlen, "path longer than %d bytes", POL_PATH_MAX);
		return -1;
	}
	if (decode((const unsigned char *)raw, rawlen, dec, &declen, err,
	    errlen) == -1)
		return -1;
	for (size_t i = 0; i + 2 < declen; i++) {
		if (dec[i] == '%' && hexval(dec[i + 1]) >= 0 &&
		    hexval(dec[i + 2]) >= 0) {
			snprintf(err, errlen, "double %%-encoding in path "
			    "('%%25%c%c')", dec[i + 1], dec[i + 2]);
			return -1;
		}
	}
	if (check_text(dec, declen, err, errlen) == -1)
		return -1;
	if (segments(dec, declen, norm, &normlen, err, errlen) == -1)
		return -1;
	return encode(norm, normlen, out, outlen, err, errlen);
}
