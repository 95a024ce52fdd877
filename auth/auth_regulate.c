/* auth_regulate.c -- brute-force regulation per user and per client address. */
#include <stdio.h>
#include <string.h>

#include "auth/auth_priv.h"
#include "policy/policy.h"

#define BACKOFF_MAX 60	/* seconds; beyond this the ban takes over */

/* Exponential back-off: after n failures the next attempt waits 2^(n-2)
 * seconds (0, 1, 2, 4 ... capped), so a typo costs nothing and a script
 * slows down before the ban. */
static int64_t
backoff(int64_t failures)
{
	if (failures < 2)
		return 0;
	if (failures > 8)
		return BACKOFF_MAX;
	int64_t d = (int64_t)1 << (failures - 2);
	return d > BACKOFF_MAX ? BACKOFF_MAX : d;
}

/* Names that do not exist get rows too; an amortised sweep keeps the
 * table to what is still counting or banned. */
static void
prune(struct auth_ctx *c, int64_t now)
{
	uint8_t r;

	if (auth_random(&r, 1) < 0 || r % 64 != 0)
		return;
	(void)c->store->reg_prune(c, now, now - (int64_t)c->s.login_failure_window);
}

/* One key per client: an IPv4 address, or an IPv6 /64 (one host usually
 * owns the whole net). An IPv4-mapped IPv6 peer (::ffff:a.b.c.d, what a
 * dual-stack listener or proxy reports for IPv4 clients) is that IPv4
 * client: as a /64 every IPv4 client would share one counter, and five
 * failures from one would ban them all. */
void
auth_reg_addr_key(const struct sockaddr *sa, char *out, size_t len)
{
	struct pol_addr a;

	if (!pol_addr_from_sockaddr(sa, &a)) {
		snprintf(out, len, "a:unknown");
		return;
	}
	auth_reg_key_of(&a, out, len);
}

/* The same key for an address typed by the admin (`ban clear`), so that
 * 192.0.2.7 and ::ffff:192.0.2.7 name the counter the gateway keeps. */
void
auth_reg_key_of(const struct pol_addr *a, char *out, size_t len)
{
	char ip[POL_ADDR_STRLEN];
	struct pol_addr k;
	unsigned plen;

	plen = pol_addr_group(a, &k);
	pol_addr_format(&k, ip, sizeof(ip));
	snprintf(out, len, "a:%s%s", ip, plen == 128 ? "" : "/64");
}

bool
auth_reg_blocked(struct auth_ctx *c, const char *key, int64_t now)
{
	struct auth_reg_row r;

	if (c->store->reg_get(c, key, &r) < 0)
		return true;	/* fail closed */
	if (r.banned_until > now)
		return true;
	if (now - r.first > (int64_t)c->s.login_failure_window)
		return false;
	return now < r.last + backoff(r.failures);
}

int
auth_reg_fail(struct auth_ctx *c, const char *key, int64_t now)
{
	struct auth_reg_row r;
	int banned = 0;

	if (c->store->reg_get(c, key, &r) < 0)
		return -1;
	if (r.failures == 0 || now - r.first > (int64_t)c->s.login_failure_window ||
	    r.banned_until != 0) {
		if (r.banned_until > now)
			return 0;	/* already banned: do not extend */
		r.failures = 0, r.first = now, r.banned_until = 0;
	}
	r.failures++;
	r.last = now;
	if (r.failures >= (int64_t)c->s.login_max_failures) {
		r.banned_until = now + c->s.login_ban_time;
		banned = 1;
	}
	if (c->store->reg_put(c, key, &r) < 0)
		return -1;
	prune(c, now);
	return banned;
}

void
auth_reg_clear(struct auth_ctx *c, const char *key)
{
	(void)c->store->reg_del(c, key);
}
