#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "pool.h"
#include "util.h"

struct job {
	void (*fn)(void *);
	void *arg;
	struct job *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static unsigned n_threads, n_busy, n_queued, n_stuck, n_min, n_max;
static int stopping;

static void *
worker(void *unused)
{
	struct job *j;

	(void)unused;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (head == NULL && !stopping)
			pthread_cond_wait(&cv, &mu);
		if (head == NULL && stopping)
			break;
		j = head;
		head = j->next;
		if (head == NULL)
			tail = NULL;
		n_queued--;
		n_busy++;
		pthread_mutex_unlock(&mu);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&mu);
		n_busy--;
		/* Threads added for stuck jobs go away again once the
		 * stuck ones return. */
		if (n_threads > n_min && n_threads > n_stuck + n_min &&
		    head == NULL)
			break;
	}
	n_threads--;
	pthread_cond_broadcast(&idle_cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* Called with mu held. */
static int
spawn(void)
{
	pthread_attr_t a;
	pthread_t t;
	int rc;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	rc = pthread_create(&t, &a, worker, NULL);
	pthread_attr_destroy(&a);
	if (rc != 0)
		return WP_EIO;
	n_threads++;
	return 0;
}

int
pool_init(unsigned min_threads, unsigned max_threads)
{
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&mu);
	n_min = min_threads ? min_threads : 1;
	n_max = max_threads > n_min ? max_threads : n_min;
	stopping = 0;
	for (i = n_threads; i < n_min && rc == 0; i++)
		rc = spawn();
	pthread_mutex_unlock(&mu);
	return rc;
}

void
pool_submit(void (*fn)(void *), void *arg)
{
	struct job *j = xmalloc(sizeof(*j));

	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&mu);
	if (tail)
		tail->next = j;
	else
		head = j;
	tail = j;
	n_queued++;
	if (n_busy + n_queued > n_threads && n_stuck > 0 && n_threads < n_max)
		spawn();
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

void
pool_stuck(int delta)
{
	pthread_mutex_lock(&mu);
	if (delta < 0 && n_stuck > 0)
		n_stuck--;
	else if (delta > 0) {
		n_stuck++;
		if (n_threads < n_max && n_threads < n_stuck + n_min) {
			if (spawn() == 0)
				log_warn("pool: a blocking check is stuck past its "
				    "deadline; %u workers now (max %u)",
				    n_threads, n_max);
		}
	}
	pthread_mutex_unlock(&mu);
}

void
pool_shutdown(long wait_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&mu);
	stopping = 1;
	pthread_cond_broadcast(&cv);
	/* Checks stuck past their deadline are not waited for: they have
	 * been reported already, and may never return. */
	while (n_threads > n_stuck) {
		if (pthread_cond_timedwait(&idle_cv, &mu, &ts) == ETIMEDOUT)
			break;
	}
	if (n_threads > 0)
		log_warn("pool: %u worker(s) still inside a blocking check at "
		    "exit", n_threads);
	pthread_mutex_unlock(&mu);
}

void
pool_get_stats(struct pool_stats *s)
{
	pthread_mutex_lock(&mu);
	s->threads = n_threads;
	s->busy = n_busy;
	s->queued = n_queued;
	s->stuck = n_stuck;
	s->max = n_max;
	pthread_mutex_unlock(&mu);
}
