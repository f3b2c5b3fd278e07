/*
 * The worker pool (core/pool.c) with real threads.  Jobs block on a gate
 * the test opens, so every assertion is about counts (threads, busy,
 * queued, stuck, jobs run), never about how long anything took.  Waits are
 * bounded condition-variable waits for a count the jobs themselves
 * produce, or bounded polls of pool_get_stats() for a worker's exit.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>

#include "log.h"
#include "pool.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int gate_open;        /* blocked jobs may return */
static unsigned n_entered;   /* jobs that started */
static unsigned n_done;      /* jobs that returned */
static unsigned order[64];   /* job numbers, in the order they started */

/* A job that records its start and returns at once. */
static void
quick_job(void *arg)
{
	pthread_mutex_lock(&mu);
	if (n_entered < 64)
		order[n_entered] = (unsigned)(size_t)arg;
	n_entered++;
	n_done++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* A job that returns only once the gate is open. */
static void
gated_job(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	n_entered++;
	pthread_cond_broadcast(&cv);
	while (!gate_open)
		pthread_cond_wait(&cv, &mu);
	n_done++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Wait until *COUNT (under mu) reaches N; fails after 10 s, a bound for a
 * pool that never runs the job, not an assertion on time. */
static void
wait_count(const unsigned *count, unsigned n)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&mu);
	while (*count < n && rc == 0)
		rc = pthread_cond_timedwait(&cv, &mu, &until);
	pthread_mutex_unlock(&mu);
	if (rc != 0)
		fail_msg("%u jobs, want %u", *count, n);
}

static void
wait_entered(unsigned n)
{
	wait_count(&n_entered, n);
}

static void
wait_done(unsigned n)
{
	wait_count(&n_done, n);
}

static void
open_gate(void)
{
	pthread_mutex_lock(&mu);
	gate_open = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* A worker counts itself idle, or leaves, after its job has returned,
 * outside the job: poll for THREADS workers of which BUSY are in a job, a
 * bounded number of times (10 s in all, then the test fails). */
static void
wait_stats(unsigned threads, unsigned busy)
{
	struct timespec ms = { 0, 1000000 };
	struct pool_stats s;
	int i;

	for (i = 0; i < 10000; i++) {
		pool_get_stats(&s);
		if (s.threads == threads && s.busy == busy)
			return;
		nanosleep(&ms, NULL);
	}
	fail_msg("pool has %u threads (%u busy), want %u (%u busy)",
	    s.threads, s.busy, threads, busy);
}

/* One scenario from start to shutdown: the pool's state is global. */
static void
test_pool(void **state)
{
	struct pool_stats s;
	size_t i;

	(void)state;
	/* MIN 0 means one thread; MAX below MIN is raised to MIN. */
	assert_int_equal(pool_init(0, 0), 0);
	pool_get_stats(&s);
	assert_int_equal(s.threads, 1);
	assert_int_equal(s.max, 1);
	/* A second init grows the pool to the new minimum. */
	assert_int_equal(pool_init(2, 3), 0);
	pool_get_stats(&s);
	assert_int_equal(s.threads, 2);
	assert_int_equal(s.max, 3);

	/* Both workers blocked: further jobs queue, in order. */
	pool_submit(gated_job, NULL);
	pool_submit(gated_job, NULL);
	wait_entered(2);
	for (i = 1; i <= 4; i++)
		pool_submit(quick_job, (void *)i);
	pool_get_stats(&s);
	assert_int_equal(s.busy, 2);
	assert_int_equal(s.queued, 4);
	assert_int_equal(n_done, 0);

	/* One job stuck past its deadline: a third thread serves the queue
	 * while both blocked jobs still hold theirs. */
	pool_stuck(1);
	wait_done(4);
	pthread_mutex_lock(&mu);
	for (i = 0; i < 4; i++)
		assert_int_equal(order[2 + i], i + 1);
	pthread_mutex_unlock(&mu);
	wait_stats(3, 2);
	pool_get_stats(&s);
	assert_int_equal(s.stuck, 1);
	assert_int_equal(s.queued, 0);

	/* At the maximum, another stuck job adds no thread. */
	pool_stuck(1);
	pool_get_stats(&s);
	assert_int_equal(s.threads, 3);
	assert_int_equal(s.stuck, 2);

	/* The stuck jobs return: the extra thread goes, the minimum stays. */
	open_gate();
	wait_done(6);
	pool_stuck(-1);
	pool_stuck(-1);
	pool_stuck(-1); /* more returns than stuck jobs: stays at 0 */
	pool_get_stats(&s);
	assert_int_equal(s.stuck, 0);
	pool_submit(quick_job, (void *)5);
	wait_done(7);
	wait_stats(2, 0);

	/* Shutdown does not wait for a job stuck past its deadline: it
	 * returns with that worker still in its job, the others gone. */
	pthread_mutex_lock(&mu);
	gate_open = 0;
	pthread_mutex_unlock(&mu);
	pool_submit(gated_job, NULL);
	wait_entered(8);
	pool_stuck(1);
	pool_shutdown(60000);
	pool_get_stats(&s);
	assert_int_equal(s.threads, 1);
	assert_int_equal(s.busy, 1);
	open_gate();
	wait_done(8);
	pool_stuck(-1);
	wait_stats(0, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool),
	};

	log_setup(WP_LOG_ERROR, LOG_TO_STDERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
