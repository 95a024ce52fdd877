/* tpool.c -- a bounded pool of threads for blocking work (Argon2, SQLite):
 * jobs queue up to a limit, run off the event loops, and come back to the
 * submitting worker's loop as an event. */
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>

#include <event2/event.h>

#include "gateway/gw_priv.h"

struct gw_job {
	struct gw_job  *next;		/* queue */
	struct gw_job  *all_prev, *all_next;	/* not yet delivered */
	struct gw_tpool *pool;
	gw_job_fn       run;		/* on a pool thread */
	gw_job_fn       done;		/* on the submitter's loop */
	void           *arg;
	struct event_base *base;
};

struct gw_tpool {
	pthread_mutex_t lock;
	pthread_cond_t  cond;
	struct gw_job  *head, *tail;
	struct gw_job  *all;		/* submitted, done() not run yet */
	unsigned        queued, limit, nthreads;
	bool            stop;
	pthread_t      *threads;
	gw_post_fn      post;		/* hands a completion to a loop */
	void           *post_arg;
};

static void
unlink_all(struct gw_tpool *p, struct gw_job *j)
{
	pthread_mutex_lock(&p->lock);
	if (j->all_prev)
		j->all_prev->all_next = j->all_next;
	else
		p->all = j->all_next;
	if (j->all_next)
		j->all_next->all_prev = j->all_prev;
	pthread_mutex_unlock(&p->lock);
}

static void
job_done_cb(void *arg)
{
	struct gw_job *j = arg;

	unlink_all(j->pool, j);
	j->done(j->arg);
	free(j);
}

/* Blocking work must never slow the event loops that share the cores:
 * SCHED_IDLE makes a waking loop thread preempt a pool thread at once
 * (nice 19 alone measured 5x the proxied p99 under a login storm on 2
 * cores). libargon2's own threads inherit the policy. No pinning to one
 * core: at SCHED_IDLE a thread gets next to nothing of a core that any
 * normal task keeps busy, so when the pool was kept on the last core,
 * one busy program there starved every login and gateway page (504
 * after 30 s, measured) while the other core was idle. */
static void
lower_priority(void)
{
	struct sched_param sp = { 0 };

	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
}

static void *
pool_main(void *arg)
{
	struct gw_tpool *p = arg;

	lower_priority();
	for (;;) {
		struct gw_job *j;

		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->head == NULL) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		j->run(j->arg);
		pthread_mutex_lock(&p->lock);
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		/* if the loop cannot be told (no memory), the job stays on
		 * the undelivered list and gw_tpool_free() delivers it */
		(void)p->post(p->post_arg, j->base, job_done_cb, j);
	}
}

struct gw_tpool *
gw_tpool_new(unsigned nthreads, unsigned limit, gw_post_fn post, void *post_arg)
{
	struct gw_tpool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->post = post;
	p->post_arg = post_arg;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->limit = limit;
	p->threads = calloc(nthreads, sizeof(*p->threads));
	if (p->threads == NULL) {
		free(p);
		return NULL;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		gw_tpool_free(p);
		return NULL;
	}
	return p;
}

/* -1 when the queue is full: the caller answers 503 at once, so a login
 * storm waits in a bounded line and never slows proxied traffic. */
int
gw_tpool_submit(struct gw_tpool *p, struct event_base *base, gw_job_fn run,
    gw_job_fn done, void *arg)
{
	struct gw_job *j;

	if (p == NULL)
		return -1;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -1;
	j->pool = p;
	j->run = run;
	j->done = done;
	j->arg = arg;
	j->base = base;
	pthread_mutex_lock(&p->lock);
	if (p->stop || p->queued >= p->limit) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return -1;
	}
	p->queued++;
	j->all_next = p->all;
	if (p->all)
		p->all->all_prev = j;
	p->all = j;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* Finishes queued jobs, then joins. Called once the workers' loops have
 * stopped: completions they will never dispatch are delivered here, on
 * this thread, so that no job (and what it owns) is lost. */
void
gw_tpool_free(struct gw_tpool *p)
{
	struct gw_job *j;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* the loops have stopped: their mailboxes are dropped unrun (see
	 * gw_workers_join), so every job still listed is delivered here */
	while ((j = p->all) != NULL) {
		p->all = j->all_next;
		j->done(j->arg);
		free(j);
	}
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
