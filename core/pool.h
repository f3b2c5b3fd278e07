/*
 * pool -- a bounded set of worker threads for plugins' blocking check().
 *
 * Built-in plugins never use it (they are asynchronous).  A job that runs
 * past its deadline keeps its thread (C cannot kill a thread safely), so
 * the pool may add a thread per stuck job, up to a hard maximum, to keep
 * serving everyone else.
 */
#ifndef CORE_POOL_H
#define CORE_POOL_H

/* Start MIN threads, allow up to MAX.  0 or WP_E*. */
int pool_init(unsigned min_threads, unsigned max_threads);
/* Run fn(arg) on a worker.  Any thread; never blocks. */
void pool_submit(void (*fn)(void *arg), void *arg);
/* A running job passed its deadline (+1) or finally returned (-1). */
void pool_stuck(int delta);
/* Stop the workers: wait up to wait_ms for running jobs, but not for jobs
 * already stuck past their deadline; workers still inside a job after that
 * are left detached (the process is exiting). */
void pool_shutdown(long wait_ms);

struct pool_stats {
	unsigned threads, busy, queued, stuck, max;
};
void pool_get_stats(struct pool_stats *s);

#endif
