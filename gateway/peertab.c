/* peertab.c -- connections per client address, shared by all workers, so
 * that one address cannot take every connection slot. Two counts: all the
 * address's connections, and those not yet proven by a complete request
 * head. A slowloris holds only unproven ones, so their cap can be tight
 * while an office behind one NAT address keeps thousands of established
 * connections (browsers, WebSockets) under a much higher ceiling. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_internal.h"

#define PEER_BUCKETS 4096

struct peer {
	struct peer *next;
	uint8_t      addr[16];
	unsigned     count;		/* all connections */
	unsigned     unproven;		/* without a complete head yet */
};

struct gw_peertab {
	pthread_mutex_t lock;
	struct peer    *b[PEER_BUCKETS];
};

struct gw_peertab *
gw_peertab_new(void)
{
	struct gw_peertab *t = calloc(1, sizeof(*t));

	if (t != NULL)
		pthread_mutex_init(&t->lock, NULL);
	return t;
}

void
gw_peertab_free(struct gw_peertab *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < PEER_BUCKETS; i++) {
		struct peer *p = t->b[i], *n;
		for (; p; p = n) {
			n = p->next;
			free(p);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* The key an address is counted under, the same as login regulation's:
 * IPv4 and IPv4-mapped IPv6 as the IPv4 address, other IPv6 by its /64
 * (one subscriber gets a whole /64 and picks any address in it). */
void
gw_peertab_key(const struct sockaddr *sa, uint8_t k[16])
{
	const struct in6_addr *a6;

	memset(k, 0, 16);
	if (sa->sa_family == AF_INET) {
		k[10] = k[11] = 0xff;
		memcpy(k + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	if (sa->sa_family != AF_INET6)
		return;
	a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6))
		memcpy(k, a6, 16);	/* ::ffff:a.b.c.d, as AF_INET above */
	else
		memcpy(k, a6, 8);
}

static size_t
hash_of(const uint8_t k[16])
{
	/* FNV-1a; the table is bounded per address anyway */
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ k[i]) * 16777619u;
	return h % PEER_BUCKETS;
}

static struct peer **
find(struct gw_peertab *t, const uint8_t k[16])
{
	struct peer **pp;

	for (pp = &t->b[hash_of(k)]; *pp != NULL; pp = &(*pp)->next)
		if (memcmp((*pp)->addr, k, 16) == 0)
			break;
	return pp;
}

bool
gw_peertab_enter(struct gw_peertab *t, const struct sockaddr *sa,
    unsigned max_unproven, unsigned max_all)
{
	uint8_t k[16];
	struct peer **pp, *p;
	bool ok = false;

	gw_peertab_key(sa, k);
	pthread_mutex_lock(&t->lock);
	pp = find(t, k);
	if ((p = *pp) == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
		memcpy(p->addr, k, 16);
		*pp = p;
	}
	if (p != NULL && (max_unproven == 0 || p->unproven < max_unproven) &&
	    (max_all == 0 || p->count < max_all)) {
		p->count++;
		p->unproven++;
		ok = true;
	}
	if (p != NULL && p->count == 0) {	/* refused a new address */
		*pp = p->next;
		free(p);
	}
	pthread_mutex_unlock(&t->lock);
	return ok;
}

void
gw_peertab_proven(struct gw_peertab *t, const struct sockaddr *sa)
{
	uint8_t k[16];
	struct peer *p;

	gw_peertab_key(sa, k);
	pthread_mutex_lock(&t->lock);
	if ((p = *find(t, k)) != NULL && p->unproven > 0)
		p->unproven--;
	pthread_mutex_unlock(&t->lock);
}

void
gw_peertab_leave(struct gw_peertab *t, const struct sockaddr *sa, bool proven)
{
	uint8_t k[16];
	struct peer **pp, *p;

	gw_peertab_key(sa, k);
	pthread_mutex_lock(&t->lock);
	pp = find(t, k);
	if ((p = *pp) != NULL) {
		if (!proven && p->unproven > 0)
			p->unproven--;
		if (--p->count == 0) {
			*pp = p->next;
			free(p);
		}
	}
	pthread_mutex_unlock(&t->lock);
}
