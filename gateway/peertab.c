/* peertab.c -- connections per client address, shared by all workers, so
 * that one address cannot take every connection slot. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_internal.h"

#define PEER_BUCKETS 4096

struct peer {
	struct peer *next;
	uint8_t      addr[16];
	unsigned     count;
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

/* IPv4 and IPv4-mapped IPv6 count as the same address. */
static void
key_of(const struct sockaddr *sa, uint8_t k[16])
{
	memset(k, 0, 16);
	if (sa->sa_family == AF_INET) {
		k[10] = k[11] = 0xff;
		memcpy(k + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6)
		memcpy(k, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
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

bool
gw_peertab_enter(struct gw_peertab *t, const struct sockaddr *sa, unsigned limit)
{
	uint8_t k[16];
	size_t h;
	struct peer *p;
	bool ok = true;

	key_of(sa, k);
	h = hash_of(k);
	pthread_mutex_lock(&t->lock);
	for (p = t->b[h]; p && memcmp(p->addr, k, 16) != 0; p = p->next)
		;
	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL)
			ok = false;
		else {
			memcpy(p->addr, k, 16);
			p->next = t->b[h];
			t->b[h] = p;
		}
	}
	if (ok && limit != 0 && p->count >= limit)
		ok = false;
	if (ok)
		p->count++;
	pthread_mutex_unlock(&t->lock);
	return ok;
}

void
gw_peertab_leave(struct gw_peertab *t, const struct sockaddr *sa)
{
	uint8_t k[16];
	size_t h;
	struct peer **pp, *p;

	key_of(sa, k);
	h = hash_of(k);
	pthread_mutex_lock(&t->lock);
	for (pp = &t->b[h]; (p = *pp) != NULL; pp = &p->next) {
		if (memcmp(p->addr, k, 16) != 0)
			continue;
		if (--p->count == 0) {
			*pp = p->next;
			free(p);
		}
		break;
	}
	pthread_mutex_unlock(&t->lock);
}
