/*
 * rollup -- the hourly and daily aggregates of a monitor's checks, shared
 * by the store writer (which keeps them) and history.c (which reads them).
 *
 * An aggregate counts checks by the monitor state each check left
 * (up, degraded, down; pending and paused count only in `checks`), failed
 * checks (ok = 0), and sums latency, with a fixed log-bucket histogram for
 * percentiles: bucket b holds latencies in [ROLLUP_LAT_MIN * 2^(b/4),
 * ROLLUP_LAT_MIN * 2^((b+1)/4)) ms (bucket 0 everything below its upper
 * bound, the last everything above its lower one), so a percentile is
 * within 9% of the true value (the bucket's geometric middle, clamped to
 * the aggregate's min and max).  The histogram is stored as a BLOB of
 * (bucket byte, LEB128 count) pairs for the non-empty buckets only, a
 * few bytes for a monitor whose latency is steady.
 */
#ifndef CORE_ROLLUP_H
#define CORE_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define ROLLUP_BUCKETS	80	/* 0.1 ms to 105 s at 2^(1/4) steps */
#define ROLLUP_LAT_MIN	0.1	/* ms: bucket 0's upper bound / 2^(1/4) */
#define ROLLUP_HIST_MAX	(ROLLUP_BUCKETS * 6)	/* bytes, encoded */
#define ROLLUP_HOUR_MS	3600000LL
#define ROLLUP_DAY_MS	86400000LL

struct rollup_agg {
	int64_t checks, up, degraded, down, failed;
	int64_t lat_n;		/* checks with a latency */
	double lat_sum, lat_min, lat_max;	/* min/max: meaningless when
						   lat_n is 0 */
	uint32_t hist[ROLLUP_BUCKETS];
};

/* An empty aggregate. */
void rollup_clear(struct rollup_agg *a);
/*
 * Count one check: STATE is the monitor's state after it (mstate_name()),
 * OK its result, LATENCY_MS < 0 when it has none.
 */
void rollup_add(struct rollup_agg *a, const char *state, int ok,
    double latency_ms);
/* Add FROM into INTO. */
void rollup_merge(struct rollup_agg *into, const struct rollup_agg *from);
/* The histogram bucket of a latency (ms). */
int rollup_bucket(double latency_ms);
/*
 * Encode A's histogram into BUF (at least ROLLUP_HIST_MAX bytes).  Returns
 * the length (0 for an empty histogram).
 */
size_t rollup_hist_encode(const struct rollup_agg *a, unsigned char *buf);
/* Add an encoded histogram into A's.  0, or WP_EINVAL for a malformed
 * blob (A's histogram may then hold part of it). */
int rollup_hist_decode(struct rollup_agg *a, const void *blob, size_t len);
/*
 * The latency (ms) at quantile Q (0 < Q <= 1) of A: the middle of the
 * bucket holding the ceil(Q * n)-th latency, clamped to [lat_min,
 * lat_max].  NAN when A has no latency.
 */
double rollup_quantile(const struct rollup_agg *a, double q);
/* 1 - down / (up + degraded + down); NAN when that is 0. */
double rollup_uptime(const struct rollup_agg *a);

/*
 * The ten columns checks, up, degraded, down, failed, lat_n, lat_sum,
 * lat_min, lat_max, hist, in that order: bind A's to S from parameter
 * FIRST on (SQLITE_TRANSIENT, so A may change after); add a row's,
 * read from column FIRST on, into A (a NULL row adds nothing).  Reading
 * returns 0 or WP_EINVAL for a malformed histogram.
 */
int rollup_bind(sqlite3_stmt *s, int first, const struct rollup_agg *a);
int rollup_read(sqlite3_stmt *s, int first, struct rollup_agg *a);

/*
 * On DB: the aggregate SQL functions the migration backfills with,
 * wp_rollup_hist(latency_ms) (the encoded histogram of a group's
 * latencies) and wp_rollup_merge(hist) (of a group's histograms).
 * SQLite result code.
 */
int rollup_sql_register(sqlite3 *db);

#endif
