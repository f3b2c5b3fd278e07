/*
 * rollup -- hourly and daily check aggregates and their latency
 * histogram (rollup.h).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "rollup.h"
#include "util.h"

void
rollup_clear(struct rollup_agg *a)
{
	memset(a, 0, sizeof(*a));
}

int
rollup_bucket(double latency_ms)
{
	double b;

	if (!(latency_ms > ROLLUP_LAT_MIN))
		return 0;
	b = floor(log2(latency_ms / ROLLUP_LAT_MIN) * 4.0);
	if (b >= ROLLUP_BUCKETS - 1)
		return ROLLUP_BUCKETS - 1;
	return (int)b;
}

void
rollup_add(struct rollup_agg *a, const char *state, int ok,
    double latency_ms)
{
	a->checks++;
	if (state != NULL) {
		if (strcmp(state, "up") == 0)
			a->up++;
		else if (strcmp(state, "down") == 0)
			a->down++;
		else if (strcmp(state, "degraded") == 0)
			a->degraded++;
	}
	if (!ok)
		a->failed++;
	if (latency_ms < 0 || !isfinite(latency_ms))
		return;
	if (a->lat_n == 0 || latency_ms < a->lat_min)
		a->lat_min = latency_ms;
	if (a->lat_n == 0 || latency_ms > a->lat_max)
		a->lat_max = latency_ms;
	a->lat_n++;
	a->lat_sum += latency_ms;
	a->hist[rollup_bucket(latency_ms)]++;
}

void
rollup_merge(struct rollup_agg *into, const struct rollup_agg *from)
{
	int i;

	into->checks += from->checks;
	into->up += from->up;
	into->degraded += from->degraded;
	into->down += from->down;
	into->failed += from->failed;
	if (from->lat_n > 0) {
		if (into->lat_n == 0 || from->lat_min < into->lat_min)
			into->lat_min = from->lat_min;
		if (into->lat_n == 0 || from->lat_max > into->lat_max)
			into->lat_max = from->lat_max;
		into->lat_n += from->lat_n;
		into->lat_sum += from->lat_sum;
		for (i = 0; i < ROLLUP_BUCKETS; i++)
			into->hist[i] += from->hist[i];
	}
}

size_t
rollup_hist_encode(const struct rollup_agg *a, unsigned char *buf)
{
	size_t n = 0;
	uint32_t v;
	int i;

	for (i = 0; i < ROLLUP_BUCKETS; i++) {
		if ((v = a->hist[i]) == 0)
			continue;
		buf[n++] = (unsigned char)i;
		while (v >= 0x80) {
			buf[n++] = (unsigned char)(v | 0x80);
			v >>= 7;
		}
		buf[n++] = (unsigned char)v;
	}
	return n;
}

int
rollup_hist_decode(struct rollup_agg *a, const void *blob, size_t len)
{
	const unsigned char *p = blob, *end = p + len;
	uint64_t v;
	unsigned b, shift;

	while (p < end) {
		if ((b = *p++) >= ROLLUP_BUCKETS)
			return WP_EINVAL;
		v = 0;
		for (shift = 0;; shift += 7) {
			if (p == end || shift > 28)
				return WP_EINVAL;
			v |= (uint64_t)(*p & 0x7f) << shift;
			if (!(*p++ & 0x80))
				break;
		}
		if (v > UINT32_MAX - a->hist[b])
			return WP_EINVAL;
		a->hist[b] += (uint32_t)v;
	}
	return 0;
}

double
rollup_quantile(const struct rollup_agg *a, double q)
{
	uint64_t n = 0, rank, seen = 0;
	double v;
	int i;

	for (i = 0; i < ROLLUP_BUCKETS; i++)
		n += a->hist[i];
	if (n == 0 || a->lat_n == 0)
		return NAN;
	rank = (uint64_t)ceil(q * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	for (i = 0; i < ROLLUP_BUCKETS - 1; i++) {
		seen += a->hist[i];
		if (seen >= rank)
			break;
	}
	v = ROLLUP_LAT_MIN * exp2(((double)i + 0.5) / 4.0);
	if (v < a->lat_min)
		v = a->lat_min;
	if (v > a->lat_max)
		v = a->lat_max;
	return v;
}

double
rollup_uptime(const struct rollup_agg *a)
{
	int64_t n = a->up + a->degraded + a->down;

	return n > 0 ? 1.0 - (double)a->down / (double)n : NAN;
}

int
rollup_bind(sqlite3_stmt *s, int first, const struct rollup_agg *a)
{
	unsigned char buf[ROLLUP_HIST_MAX];
	size_t n;

	sqlite3_bind_int64(s, first, a->checks);
	sqlite3_bind_int64(s, first + 1, a->up);
	sqlite3_bind_int64(s, first + 2, a->degraded);
	sqlite3_bind_int64(s, first + 3, a->down);
	sqlite3_bind_int64(s, first + 4, a->failed);
	sqlite3_bind_int64(s, first + 5, a->lat_n);
	sqlite3_bind_double(s, first + 6, a->lat_sum);
	if (a->lat_n > 0) {
		sqlite3_bind_double(s, first + 7, a->lat_min);
		sqlite3_bind_double(s, first + 8, a->lat_max);
	} else {
		sqlite3_bind_null(s, first + 7);
		sqlite3_bind_null(s, first + 8);
	}
	n = rollup_hist_encode(a, buf);
	return sqlite3_bind_blob(s, first + 9, buf, (int)n, SQLITE_TRANSIENT);
}

int
rollup_read(sqlite3_stmt *s, int first, struct rollup_agg *a)
{
	int64_t n;
	double mn, mx;

	/* Straight into A, not through rollup_merge(): a 90-day window of
	 * 10,000 monitors reads a million rows. */
	if (sqlite3_column_type(s, first) == SQLITE_NULL)
		return 0;
	a->checks += sqlite3_column_int64(s, first);
	a->up += sqlite3_column_int64(s, first + 1);
	a->degraded += sqlite3_column_int64(s, first + 2);
	a->down += sqlite3_column_int64(s, first + 3);
	a->failed += sqlite3_column_int64(s, first + 4);
	if ((n = sqlite3_column_int64(s, first + 5)) <= 0)
		return 0;
	mn = sqlite3_column_double(s, first + 7);
	mx = sqlite3_column_double(s, first + 8);
	if (a->lat_n == 0 || mn < a->lat_min)
		a->lat_min = mn;
	if (a->lat_n == 0 || mx > a->lat_max)
		a->lat_max = mx;
	a->lat_n += n;
	a->lat_sum += sqlite3_column_double(s, first + 6);
	return rollup_hist_decode(a, sqlite3_column_blob(s, first + 9),
	    (size_t)sqlite3_column_bytes(s, first + 9));
}

/* ---- the migration's aggregate functions ---- */

static struct rollup_agg *
sql_agg(sqlite3_context *ctx, int make)
{
	return sqlite3_aggregate_context(ctx, make ? sizeof(struct rollup_agg) :
	    0);
}

static void
hist_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct rollup_agg *a = sql_agg(ctx, 1);

	(void)argc;
	if (a == NULL) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	if (sqlite3_value_type(argv[0]) != SQLITE_NULL)
		rollup_add(a, NULL, 1, sqlite3_value_double(argv[0]));
}

static void
merge_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct rollup_agg *a = sql_agg(ctx, 1);

	(void)argc;
	if (a == NULL) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	if (rollup_hist_decode(a, sqlite3_value_blob(argv[0]),
	    (size_t)sqlite3_value_bytes(argv[0])) != 0)
		sqlite3_result_error(ctx, "malformed latency histogram", -1);
}

static void
hist_final(sqlite3_context *ctx)
{
	struct rollup_agg *a = sql_agg(ctx, 0);
	unsigned char buf[ROLLUP_HIST_MAX];
	size_t n = a != NULL ? rollup_hist_encode(a, buf) : 0;

	sqlite3_result_blob(ctx, buf, (int)n, SQLITE_TRANSIENT);
}

int
rollup_sql_register(sqlite3 *db)
{
	int rc;

	rc = sqlite3_create_function(db, "wp_rollup_hist", 1, SQLITE_UTF8 |
	    SQLITE_DETERMINISTIC, NULL, NULL, hist_step, hist_final);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "wp_rollup_merge", 1,
		    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL, merge_step,
		    hist_final);
	return rc;
}
