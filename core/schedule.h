/*
 * schedule -- the manager's scheduling arithmetic and reload diff, kept free
 * of clocks, timers and the loop so it can be tested deterministically.
 * Times are monotonic microseconds; the caller supplies "now".
 */
#ifndef CORE_SCHEDULE_H
#define CORE_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

/* First checks of an apply are at most this far apart: 10,000 monitors
 * at 10 s start over the whole interval (1 ms apart) and then keep that
 * even phase for good, while 100 added monitors all start within 0.1 s. */
#define SCHED_SPREAD_MAX_US 1000

/* ... and rounded down to a multiple of this: monitors whose first
 * checks fall in the same 5 ms start together, so the loop wakes once for
 * several checks rather than once per check (S3 in BENCHMARKS.md: 1,000
 * pings a second cost 12% less CPU). */
#define SCHED_BATCH_US 5000

/* One monitor's slot schedule. */
struct sched {
	int64_t due_us;       /* the ideal time of the next slot */
	int64_t interval_us;  /* > 0 */
	uint64_t skipped;     /* slots not run: busy or missed */
};

/*
 * Delay of the first check of the K-th of N monitors started by one apply
 * (0 <= K < N), each with its own INTERVAL_US: K times a spacing of
 * INTERVAL_US / N, at most SCHED_SPREAD_MAX_US, rounded down to a
 * multiple of SCHED_BATCH_US.  So the set is spread
 * evenly over at most one interval -- because the schedule is absolute,
 * that phase is what every later slot keeps, so a set started in one
 * burst would come back in a burst every interval -- while a lone added
 * monitor (K = 0) is checked at once.  Always in [0, INTERVAL_US).
 */
int64_t sched_first_offset(size_t k, size_t n, int64_t interval_us);

/*
 * The slot S->due_us has come (NOW >= it).  Returns 1 if a check should
 * start now, 0 if the slot is skipped because the previous check is still
 * running (BUSY): a check is never doubled.  Either way S->due_us moves to
 * the next slot on the absolute grid (due + interval, never now +
 * interval, so there is no drift); slots that already passed -- a stalled
 * loop -- are skipped, not run in a burst.  Every skipped slot is counted
 * in S->skipped and in *SKIPPED (the number added by this call).
 */
int sched_slot(struct sched *s, int busy, int64_t now_us,
    uint64_t *skipped);

/* After a failed attempt number ATTEMPT (0 = the first): 1 if another
 * attempt follows (RETRIES extra attempts in all), 0 if the check has
 * failed. */
int sched_retry(unsigned attempt, int retries);

/* What a reload does to one monitor or alert section, by name: the one
 * reload diff (the manager's monitors and alert.c's sections). */
enum sched_diff {
	DIFF_ADD,        /* new name: schedule its first check */
	DIFF_UPDATE,     /* changed definition: new settings, check now */
	DIFF_UNCHANGED,  /* schedule and state untouched */
	DIFF_REMOVE      /* gone from the file: stop it */
};

/*
 * Classify a monitor or alert section from the hash of its running
 * definition OLD_DEF (NULL: not running) and that of its definition in
 * the new file NEW_DEF (NULL: not in it).
 * The hashes are cfg's (struct cfg_section def_hash); both NULL is
 * DIFF_REMOVE.
 */
enum sched_diff sched_classify(const uint64_t *old_def,
    const uint64_t *new_def);

#endif
