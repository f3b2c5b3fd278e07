/*
 * bench/lateness -- checks due and done, and scheduling lateness, from a
 * list of check start times measured outside the agent.
 *
 * Usage: lateness INTERVAL_MS FROM_US TO_US MONITORS < lines
 *
 * Each input line is "ID MICROSECONDS": one check of monitor ID that
 * started (or reached the target) at that wall-clock time.  A check counts
 * as done when its slot lies in the window [FROM_US, TO_US); the lines
 * outside it help find each monitor's slot grid.
 *
 * A monitor's ideal slots are PHASE + k * INTERVAL.  The grid is anchored
 * at the monitor's most punctual check: each check is given the slot
 * k = round((t - t_first) / INTERVAL) and PHASE = min(t - k * INTERVAL).
 * A check's lateness is t - (PHASE + k * INTERVAL).  So a constant offset
 * of a whole monitor is not counted; jitter, bursts and stalls are.
 *
 * Due: the slots of the window, per monitor (with a window that is a
 * whole number of intervals, exactly WINDOW / INTERVAL each); MONITORS
 * monitors are expected, those never seen included.  Repeats: a second
 * check in a slot already taken (not counted as done).  Misses: due slots
 * without a check.
 *
 * Prints one line: "due=N done=N done_pct=X p50_ms=X p99_ms=X max_ms=X
 * repeats=N misses=N monitors_seen=N".  Exit 1 on bad input.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct obs {
	uint64_t id;
	int64_t t;
};

static int
by_id_time(const void *a, const void *b)
{
	const struct obs *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return (x->t > y->t) - (x->t < y->t);
}

/* Division rounding toward minus infinity. */
static int64_t
floordiv(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static int
by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
pct(const double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return NAN;
	i = (size_t)ceil(p * (double)n) - 1;
	return v[i < n ? i : n - 1];
}

int
main(int argc, char **argv)
{
	struct obs *o = NULL;
	double *late = NULL;
	size_t n = 0, cap = 0, n_late = 0, i, j, k0;
	int64_t iv, from, to, phase, k, kmin, kmax, last_k, t;
	long long due = 0, done = 0, repeats = 0, misses = 0, seen = 0;
	long long monitors, slots_per;
	unsigned long long id;
	long long ts;

	if (argc != 5) {
		fprintf(stderr, "usage: lateness INTERVAL_MS FROM_US TO_US "
		    "MONITORS\n");
		return 1;
	}
	iv = atoll(argv[1]) * 1000;
	from = atoll(argv[2]);
	to = atoll(argv[3]);
	monitors = atoll(argv[4]);
	if (iv <= 0 || to <= from)
		return 1;
	while (scanf("%llu %lld", &id, &ts) == 2) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((o = realloc(o, cap * sizeof(*o))) == NULL)
				return 1;
		}
		o[n].id = id;
		o[n].t = ts;
		n++;
	}
	qsort(o, n, sizeof(*o), by_id_time);
	if ((late = malloc((n + 1) * sizeof(*late))) == NULL)
		return 1;
	slots_per = (to - from) / iv;
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && o[j].id == o[i].id; j++)
			;
		seen++;
		phase = INT64_MAX;
		for (k0 = i; k0 < j; k0++) {
			k = llround((double)(o[k0].t - o[i].t) / (double)iv);
			if (o[k0].t - k * iv < phase)
				phase = o[k0].t - k * iv;
		}
		/* The window's slots of this monitor: kmin..kmax-1. */
		kmin = -floordiv(phase - from, iv);
		kmax = kmin;
		while (phase + kmax * iv < to)
			kmax++;
		due += kmax - kmin;
		last_k = kmin - 1;
		for (k0 = i; k0 < j; k0++) {
			t = o[k0].t;
			k = floordiv(t - phase, iv);
			if (k < kmin || k >= kmax)
				continue;
			late[n_late++] = (double)(t - phase - k * iv) / 1000.0;
			if (k == last_k) {
				repeats++;
				continue;
			}
			done++;
			if (k > last_k + 1)
				misses += k - last_k - 1;
			last_k = k;
		}
		if (last_k < kmax - 1)
			misses += kmax - 1 - (last_k < kmin ? kmin - 1 : last_k);
	}
	if (monitors > seen) {
		due += (monitors - seen) * slots_per;
		misses += (monitors - seen) * slots_per;
	}
	qsort(late, n_late, sizeof(*late), by_value);
	printf("due=%lld done=%lld done_pct=%.2f p50_ms=%.1f p99_ms=%.1f "
	    "max_ms=%.1f repeats=%lld misses=%lld monitors_seen=%lld\n",
	    due, done, due ? 100.0 * (double)done / (double)due : 0.0,
	    pct(late, n_late, 0.50), pct(late, n_late, 0.99),
	    n_late ? late[n_late - 1] : NAN, repeats, misses, seen);
	free(late);
	free(o);
	return 0;
}
