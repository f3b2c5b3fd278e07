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
 * the aggregate's min and max).
 *
 * Stored as one BLOB (rollup_encode()): a format byte (1), the six counts
 * as LEB128 varints, then, when lat_n > 0, lat_sum, lat_min and lat_max as
 * little-endian IEEE doubles and the non-empty buckets as (bucket byte,
 * LEB128 count) pairs: about 30 bytes for a monitor whose latency is
 * steady.  One column instead of ten: a 90-day window of 10,000 monitors
 * reads over a million rows, and SQLite's cost per row grows with its
 * columns.
 */
#ifndef CORE_ROLLUP_H
#define CORE_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define ROLLUP_BUCKETS	80	/* 0.1 ms to 105 s at 2^(1/4) steps */
#define ROLLUP_LAT_MIN	0.1	/* ms: bucket 0's upper bound / 2^(1/4) */
#define ROLLUP_BLOB_MAX	(1 + 6 * 10 + 3 * 8 + ROLLUP_BUCKETS * 6)
#define ROLLUP_HOUR_MS	3600000LL
#define ROLLUP_DAY_MS	86400000LL

struct rollup_agg {
	int64_t checks, up, degraded, down, failed;
	int64_t lat_n;		/* checks with a latency */
	double lat_sum, lat_min, lat_max;	/* min/max: meaningless when
						   lat_n is 0 */
	uint32_t hist[ROLLUP_BUCKETS];
	uint64_t nz[2];		/* bit b: hist[b] > 0 (encoding visits only
				   those: it runs for every stored check) */
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
/* Encode A into BUF (at least ROLLUP_BLOB_MAX bytes); its length. */
size_t rollup_encode(const struct rollup_agg *a, unsigned char *buf);
/* Add an encoded aggregate into A.  0, or WP_EINVAL for a malformed blob
 * (A is then unchanged). */
int rollup_decode(struct rollup_agg *a, const void *blob, size_t len);

/*
 * The latency (ms) at quantile Q (0 < Q <= 1) of A: the middle of the
 * bucket holding the ceil(Q * n)-th latency, clamped to [lat_min,
 * lat_max].  NAN when A has no latency.
 */
double rollup_quantile(const struct rollup_agg *a, double q);
/* 1 - down / (up + degraded + down); NAN when that is 0. */
double rollup_uptime(const struct rollup_agg *a);

/*
 * Bind A, encoded, to parameter I of S (SQLITE_TRANSIENT: A may change
 * after).  Add the encoded aggregate in column I of S's row into A (NULL
 * adds nothing).  Reading returns 0, or WP_EINVAL for a malformed blob.
 */
int rollup_bind(sqlite3_stmt *s, int i, const struct rollup_agg *a);
int rollup_read(sqlite3_stmt *s, int i, struct rollup_agg *a);

/*
 * On DB: the aggregate SQL functions the migration backfills with,
 * wp_rollup(ok, latency_ms) (the encoded aggregate of a group of checks,
 * each counted up when ok, down when not) and wp_rollup_merge(agg) (of a
 * group of aggregates), and the scalar wp_rollup_add(a, b) (both added;
 * b alone when a is malformed), which the writer's UPSERTs merge with.
 * SQLite result code.
 */
int rollup_sql_register(sqlite3 *db);

#endif
