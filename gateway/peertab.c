/* peertab.c -- connections per client address, shared by all workers, so
 * that one address cannot take every connection slot. Two counts: all the
 * address's connections, and those not yet proven by a complete request
 * head. A slowloris holds only unproven ones, so their cap can be tight
 * while an office behind one NAT address keeps thousands of established
 * connections (browsers, WebSockets) under a much higher ceiling. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

#define PEER_BUCKETS 4096

struct peer {
	struct peer *next;
	struct pol_addr addr;	/* gw_peertab_key */
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

/* The key an address is counted under, the same as login regulation's
 * (pol_addr_group): IPv4 and IPv4-mapped IPv6 as the IPv4 address, other
 * IPv6 by its /64. A non-IP peer gets the all-zero key. */
void
gw_peertab_key(const struct sockaddr *sa, struct pol_addr *k)
{
	struct pol_addr a = { 0, 0 };

	(void)pol_addr_from_sockaddr(sa, &a);
	(void)pol_addr_group(&a, k);
}

static size_t
hash_of(const struct pol_addr *k)
{
	/* FNV-1a; the table is bounded per address anyway */
	uint32_t h = 2166136261u;
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(k->hi >> (8 * i))) * 16777619u;
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(k->lo >> (8 * i))) * 16777619u;
	return h % PEER_BUCKETS;
}

static struct peer **
find(struct gw_peertab *t, const struct pol_addr *k)
{
	struct peer **pp;

	for (pp = &t->b[hash_of(k)]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->addr.hi == k->hi && (*pp)->addr.lo == k->lo)
			break;
	return pp;
}

bool
gw_peertab_enter(struct gw_peertab *t, const struct sockaddr *sa,
    unsigned max_unproven, unsigned max_all, enum gw_refuse *why)
{
	struct pol_addr k;
	struct peer **pp, *p;
	bool ok = false;

	gw_peertab_key(sa, &k);
	pthread_mutex_lock(&t->lock);
	pp = find(t, &k);
	if ((p = *pp) == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
		p->addr = k;
		*pp = p;
	}
	if (p != NULL && (max_unproven == 0 || p->unproven < max_unproven) &&
	    (max_all == 0 || p->count < max_all)) {
		p->count++;
		p->unproven++;
		ok = true;
	}
	if (!ok && why != NULL)
		*why = p == NULL ? GW_REFUSE_RESOURCES : max_unproven != 0 &&
		    p->unproven >= max_unproven ? GW_REFUSE_PER_IP :
		    GW_REFUSE_ESTABLISHED_PER_IP;
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
	struct pol_addr k;
	struct peer *p;

	gw_peertab_key(sa, &k);
	pthread_mutex_lock(&t->lock);
	if ((p = *find(t, &k)) != NULL && p->unproven > 0)
		p->unproven--;
	pthread_mutex_unlock(&t->lock);
}

void
gw_peertab_leave(struct gw_peertab *t, const struct sockaddr *sa, bool proven)
{
	struct pol_addr k;
	struct peer **pp, *p;

	gw_peertab_key(sa, &k);
	pthread_mutex_lock(&t->lock);
	pp = find(t, &k);
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
