/* auth_store_pg_pool.c -- the PostgreSQL store's connections for the login
 * threads (user_db_pool), so that one thread's statements do not queue
 * behind another's.
 *
 * Slot 0 is the ctx's own connection (c->pg), still guarded by db_mu for
 * the code that takes db_mu directly (the CLI, the table reloads); slots
 * 1..n-1 are connections of their own. auth_store_lock() takes a free
 * slot, the extra ones first, and the thread-locals held_ctx and held_slot
 * tell pg() in auth_store_pg.c which connection this thread's operations
 * run on. A
 * thread waits for a slot as it waited for db_mu: every holder's
 * statements are bounded by the 5 s statement and lock timeouts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth_store_pg.h"

struct auth_pg_pool {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	unsigned        n;
	bool            busy[AUTH_PG_POOL_MAX];
	struct auth_pg *conn[AUTH_PG_POOL_MAX];	/* [0] unused: c->pg */
};

/* what the calling thread holds: a slot of held_ctx's pool */
static _Thread_local struct auth_ctx *held_ctx;
static _Thread_local unsigned held_slot;

static void
pool_free(struct auth_pg_pool *p)
{
	for (unsigned i = 1; i < p->n; i++)
		if (p->conn[i] != NULL) {
			PQfinish(p->conn[i]->conn);
			free(p->conn[i]);
		}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

static int
pool_connect(struct auth_ctx *c, struct auth_pg_pool *p, const char *pw,
    char *err, size_t errlen)
{
	for (p->n = 1; p->n < c->s.user_db_pool; p->n++) {
		struct auth_pg *g = calloc(1, sizeof(*g));

		p->conn[p->n] = g;
		if (g == NULL || (g->conn = auth_pg_connect(&c->s, pw[0] != '\0' ?
		    pw : NULL, "pbxgate", false)) == NULL) {
			p->n++;	/* freed by pool_free */
			return snprintf(err, errlen, "out of memory"), -1;
		}
		if (PQstatus(g->conn) != CONNECTION_OK) {
			snprintf(err, errlen, "%s: user_db_pool: cannot open "
			    "connection %u of %u: %s", c->s.user_db, p->n + 1,
			    c->s.user_db_pool, PQerrorMessage(g->conn));
			err[strcspn(err, "\n")] = '\0';
			p->n++;
			return -1;
		}
	}
	return 0;
}

int
auth_pg_pool_open(struct auth_ctx *c, char *err, size_t errlen)
{
	char pw[AUTH_PG_PASSWORD_MAX];
	struct auth_pg_pool *p;
	int rc;

	if (c->s.user_db_pool <= 1 || c->pgpool != NULL)
		return 0;
	if (c->s.user_db_pool > AUTH_PG_POOL_MAX || (p = calloc(1,
	    sizeof(*p))) == NULL)
		return snprintf(err, errlen, "user_db_pool: out of memory"), -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (auth_pg_password(&c->s, pw, sizeof(pw), err, errlen) < 0) {
		pool_free(p);
		return -1;
	}
	rc = pool_connect(c, p, pw, err, errlen);
	OPENSSL_cleanse(pw, sizeof(pw));
	if (rc < 0) {
		pool_free(p);
		return -1;
	}
	c->pgpool = p;
	return 0;
}

/* After the login threads are gone. */
void
auth_pg_pool_close(struct auth_ctx *c)
{
	if (c->pgpool == NULL)
		return;
	pool_free(c->pgpool);
	c->pgpool = NULL;
}

void
auth_pg_pool_acquire(struct auth_ctx *c)
{
	struct auth_pg_pool *p = c->pgpool;
	unsigned slot;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (slot = p->n; slot-- > 0;)
			if (!p->busy[slot])
				break;
		if (slot < p->n)
			break;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	p->busy[slot] = true;
	pthread_mutex_unlock(&p->mu);
	if (slot == 0)
		pthread_mutex_lock(&c->db_mu);
	held_ctx = c;
	held_slot = slot;
}

void
auth_pg_pool_release(struct auth_ctx *c)
{
	struct auth_pg_pool *p = c->pgpool;
	unsigned slot = held_slot;

	held_ctx = NULL;
	if (slot == 0)
		pthread_mutex_unlock(&c->db_mu);
	pthread_mutex_lock(&p->mu);
	p->busy[slot] = false;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

struct auth_pg *
auth_pg_pool_current(struct auth_ctx *c)
{
	if (held_ctx != c || held_slot == 0)
		return NULL;
	return c->pgpool->conn[held_slot];
}
