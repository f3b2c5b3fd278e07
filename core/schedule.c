#include "config.h"

#include <string.h>

#include "schedule.h"

int64_t
sched_first_offset(size_t k, size_t n, int64_t interval_us)
{
	int64_t gap;

	if (n == 0 || interval_us <= 0)
		return 0;
	gap = interval_us / (int64_t)n;
	if (gap > SCHED_SPREAD_MAX_US)
		gap = SCHED_SPREAD_MAX_US;
	/* k < n, so k * gap < interval; the modulo only guards k >= n. */
	return ((int64_t)k * gap) % interval_us / SCHED_BATCH_US *
	    SCHED_BATCH_US;
}

int
sched_slot(struct sched *s, int busy, int64_t now_us, uint64_t *skipped)
{
	uint64_t n = busy ? 1 : 0;
	int64_t missed;

	s->due_us += s->interval_us;
	if (s->due_us <= now_us) {
		missed = (now_us - s->due_us) / s->interval_us + 1;
		s->due_us += missed * s->interval_us;
		n += (uint64_t)missed;
	}
	s->skipped += n;
	if (skipped != NULL)
		*skipped = n;
	return !busy;
}

int
sched_retry(unsigned attempt, int retries)
{
	return retries > 0 && attempt < (unsigned)retries;
}

enum sched_diff
sched_classify(const uint64_t *old_def, const uint64_t *new_def)
{
	if (new_def == NULL)
		return DIFF_REMOVE;
	if (old_def == NULL)
		return DIFF_ADD;
	return *old_def == *new_def ? DIFF_UNCHANGED : DIFF_UPDATE;
}
