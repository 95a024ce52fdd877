/* policy_value.c -- the value grammar of the config file: durations, sizes,
 * counts and booleans, parsed and printed the same way for every keyword of
 * every module (docs/configuration.md, "Values"). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

#define MS_S   1000ull
#define MS_M   (60ull * MS_S)
#define MS_H   (60ull * MS_M)
#define MS_D   (24ull * MS_H)

struct unit {
	const char *name;
	uint64_t    mul;
};

/* Largest first: the order a duration must follow. */
static const struct unit dur_units[] = {
	{ "d", MS_D }, { "h", MS_H }, { "m", MS_M }, { "s", MS_S },
	{ "ms", 1 },
};
#define NDUR (sizeof(dur_units) / sizeof(dur_units[0]))

static const struct unit size_units[] = {
	{ "g", 1024ull * 1024 * 1024 }, { "m", 1024ull * 1024 },
	{ "k", 1024ull },
};
#define NSIZE (sizeof(size_units) / sizeof(size_units[0]))

#define DUR_HINT "use whole numbers with d, h, m, s or ms, largest unit " \
	"first (e.g. 30s, 1h30m, 250ms)"
#define SIZE_HINT "use a number of bytes with an optional k, m or g " \
	"(powers of 1024)"

/* Leading decimal digits of s into *v; the count of digits, 0 for none,
 * -1 on overflow. */
static int
digits(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	int i;

	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return i;
}

/* *acc += v * mul, or -1 on overflow. */
static int
add_scaled(uint64_t *acc, uint64_t v, uint64_t mul)
{
	if (v != 0 && mul > UINT64_MAX / v)
		return -1;
	if (*acc > UINT64_MAX - v * mul)
		return -1;
	*acc += v * mul;
	return 0;
}

/* The letters at s (a unit name), as an index into dur_units, or -1. */
static int
dur_unit(const char *s, size_t *len)
{
	size_t n = 0, i;

	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z'))
		n++;
	*len = n;
	for (i = 0; i < NDUR; i++)
		if (strlen(dur_units[i].name) == n &&
		    strncmp(s, dur_units[i].name, n) == 0)
			return (int)i;
	return -1;
}

/* Overflow needs no hint: the spelling was fine, the value is not. */
static int
dur_error(const char *s, char *err, size_t errlen, const char *why)
{
	if (strcmp(why, "too large") == 0)
		snprintf(err, errlen, "bad duration \"%s\": too large", s);
	else
		snprintf(err, errlen, "bad duration \"%s\": %s; " DUR_HINT, s,
		    why);
	return -1;
}

/* NUMBER UNIT [NUMBER UNIT]... with units in decreasing order, each at
 * most once; a bare NUMBER is seconds. Result in milliseconds. */
static int
parse_duration(const char *s, uint64_t *ms, char *err, size_t errlen)
{
	char why[96];
	uint64_t acc = 0, v;
	size_t p = 0, ulen;
	int n, u, last = -1;

	if (s[0] == '\0')
		return dur_error(s, err, errlen, "empty value");
	while (s[p] != '\0') {
		if ((n = digits(s + p, &v)) == -1)
			return dur_error(s, err, errlen, "too large");
		if (n == 0) {
			snprintf(why, sizeof(why), "unexpected \"%c\"", s[p]);
			return dur_error(s, err, errlen, why);
		}
		p += (size_t)n;
		if (s[p] == '\0' && last == -1)
			return add_scaled(&acc, v, MS_S) == -1 ?
			    dur_error(s, err, errlen, "too large") :
			    (*ms = acc, 0);
		if ((u = dur_unit(s + p, &ulen)) == -1) {
			if (ulen == 0 && s[p] == '\0')
				snprintf(why, sizeof(why), "no unit after the "
				    "last number");
			else if (ulen == 0)
				snprintf(why, sizeof(why), "unexpected \"%c\"",
				    s[p]);
			else
				snprintf(why, sizeof(why), "unknown unit "
				    "\"%.*s\"", (int)ulen, s + p);
			return dur_error(s, err, errlen, why);
		}
		if (u <= last) {
			snprintf(why, sizeof(why), "unit \"%s\" %s",
			    dur_units[u].name, u == last ? "given twice" :
			    "after a smaller unit");
			return dur_error(s, err, errlen, why);
		}
		if (add_scaled(&acc, v, dur_units[u].mul) == -1)
			return dur_error(s, err, errlen, "too large");
		last = u;
		p += ulen;
	}
	*ms = acc;
	return 0;
}

/* NUMBER [k|m|g], either case. Result in bytes. */
static int
parse_size(const char *s, uint64_t *bytes, char *err, size_t errlen)
{
	uint64_t v, mul = 1, total = 0;
	size_t i;
	int n;

	if ((n = digits(s, &v)) == -1) {
		snprintf(err, errlen, "bad size \"%s\": too large", s);
		return -1;
	}
	if (n > 0 && s[n] != '\0' && s[n + 1] == '\0')
		for (i = 0; i < NSIZE; i++)
			if (strncasecmp(s + n, size_units[i].name, 1) == 0)
				mul = size_units[i].mul;
	if (n == 0 || (s[n] != '\0' && (mul == 1 || s[n + 1] != '\0'))) {
		snprintf(err, errlen, "bad size \"%s\": " SIZE_HINT, s);
		return -1;
	}
	if (add_scaled(&total, v, mul) == -1) {
		snprintf(err, errlen, "bad size \"%s\": too large", s);
		return -1;
	}
	*bytes = total;
	return 0;
}

static int
parse_count(const char *s, uint64_t *out, char *err, size_t errlen)
{
	uint64_t v;
	int n = digits(s, &v);

	if (n == -1) {
		snprintf(err, errlen, "bad number \"%s\": too large", s);
		return -1;
	}
	if (n == 0 || s[n] != '\0') {
		snprintf(err, errlen, "bad number \"%s\": use digits only, no "
		    "sign or unit", s);
		return -1;
	}
	*out = v;
	return 0;
}

/* on/off is what the gateway's keywords always took, yes/no what
 * mfa_self_enrol took: both spellings stay valid for every boolean. */
static int
parse_bool(const char *s, uint64_t *v, char *err, size_t errlen)
{
	if (strcmp(s, "on") == 0 || strcmp(s, "yes") == 0)
		*v = 1;
	else if (strcmp(s, "off") == 0 || strcmp(s, "no") == 0)
		*v = 0;
	else {
		snprintf(err, errlen, "expected on or off, not \"%s\"", s);
		return -1;
	}
	return 0;
}

int
pol_value_parse(enum pol_kind kind, const char *s, uint64_t *v, char *err,
    size_t errlen)
{
	switch (kind) {
	case POL_KIND_DURATION:
		return parse_duration(s, v, err, errlen);
	case POL_KIND_SIZE:
		return parse_size(s, v, err, errlen);
	case POL_KIND_COUNT:
		return parse_count(s, v, err, errlen);
	case POL_KIND_BOOL:
		return parse_bool(s, v, err, errlen);
	case POL_KIND_OTHER:
		break;
	}
	snprintf(err, errlen, "\"%s\": this keyword has no typed value", s);
	return -1;
}

/* Prints v with the given units, largest first, skipping zero parts
 * ("1h30m"); sizes only when one unit divides it exactly ("64k"). */
void
pol_value_format(enum pol_kind kind, uint64_t v, char *buf, size_t len)
{
	size_t off = 0, i;
	int n;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (kind == POL_KIND_SIZE) {
		for (i = 0; i < NSIZE; i++)
			if (v != 0 && v % size_units[i].mul == 0) {
				snprintf(buf, len, "%" PRIu64 "%s",
				    v / size_units[i].mul, size_units[i].name);
				return;
			}
	}
	if (kind != POL_KIND_DURATION || v == 0) {
		snprintf(buf, len, "%" PRIu64, v);
		return;
	}
	for (i = 0; i < NDUR && off < len; i++) {
		if (v < dur_units[i].mul)
			continue;
		n = snprintf(buf + off, len - off, "%" PRIu64 "%s",
		    v / dur_units[i].mul, dur_units[i].name);
		if (n < 0)
			return;
		off += (size_t)n;
		v %= dur_units[i].mul;
	}
}
