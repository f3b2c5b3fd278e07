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

/*
 * floor(4 * log2(latency / ROLLUP_LAT_MIN)) without log2(), which cost a
 * tenth of what a check adds to the writer: the binary exponent gives the
 * octave, and three comparisons of the mantissa with 2^(1/4), 2^(1/2) and
 * 2^(3/4) its quarter.
 */
int
rollup_bucket(double latency_ms)
{
	double m;
	int e, b;

	if (!(latency_ms > ROLLUP_LAT_MIN))
		return 0;
	m = frexp(latency_ms / ROLLUP_LAT_MIN, &e) * 2;	/* [1, 2) */
	b = 4 * (e - 1) + (m >= 1.189207115002721) + (m >= 1.414213562373095) +
	    (m >= 1.681792830507429);
	return b >= ROLLUP_BUCKETS - 1 ? ROLLUP_BUCKETS - 1 : b;
}

void
rollup_add(struct rollup_agg *a, const char *state, int ok,
    double latency_ms)
{
	int b;

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
	b = rollup_bucket(latency_ms);
	a->hist[b]++;
	a->nz[b >> 6] |= 1ull << (b & 63);
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
		into->nz[0] |= from->nz[0];
		into->nz[1] |= from->nz[1];
	}
}

static size_t
put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* 0 and *v, or -1 at the end of the blob or past 63 bits. */
static int
get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	unsigned shift;

	*v = 0;
	for (shift = 0; *p < end && shift <= 63; shift += 7) {
		*v |= (uint64_t)(**p & 0x7f) << shift;
		if (!(*(*p)++ & 0x80))
			return 0;
	}
	return -1;
}

/* Little-endian IEEE doubles, a plain copy on a little-endian host. */
static size_t
put_double(unsigned char *p, double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	u = __builtin_bswap64(u);
#endif
	memcpy(p, &u, sizeof(u));
	return 8;
}

static double
get_double(const unsigned char *p)
{
	uint64_t u;
	double d;

	memcpy(&u, p, sizeof(u));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	u = __builtin_bswap64(u);
#endif
	memcpy(&d, &u, sizeof(d));
	return d;
}

size_t
rollup_encode(const struct rollup_agg *a, unsigned char *buf)
{
	const int64_t c[6] = { a->checks, a->up, a->degraded, a->down,
		a->failed, a->lat_n };
	uint64_t bits;
	size_t n = 0;
	int i, w;

	buf[n++] = 1;
	for (i = 0; i < 6; i++)
		n += put_varint(buf + n, c[i] > 0 ? (uint64_t)c[i] : 0);
	if (a->lat_n <= 0)
		return n;
	n += put_double(buf + n, a->lat_sum);
	n += put_double(buf + n, a->lat_min);
	n += put_double(buf + n, a->lat_max);
	for (w = 0; w < 2; w++)
		for (bits = a->nz[w]; bits != 0; bits &= bits - 1) {
			i = w * 64 + __builtin_ctzll(bits);
			if (a->hist[i] == 0)
				continue;
			buf[n++] = (unsigned char)i;
			n += put_varint(buf + n, a->hist[i]);
		}
	return n;
}

int
rollup_decode(struct rollup_agg *a, const void *blob, size_t len)
{
	const unsigned char *p = blob, *end = p + len;
	uint64_t c[6], v;
	uint32_t add[ROLLUP_BUCKETS];
	unsigned char used[ROLLUP_BUCKETS];
	size_t nu = 0, k;
	double sum = 0, mn = 0, mx = 0;
	int i;

	if (len == 0 || *p++ != 1)
		return WP_EINVAL;
	for (i = 0; i < 6; i++)
		if (get_varint(&p, end, &c[i]) != 0 || c[i] > INT64_MAX / 2)
			return WP_EINVAL;
	if (c[5] > 0) {
		if (end - p < 24)
			return WP_EINVAL;
		sum = get_double(p);
		mn = get_double(p + 8);
		mx = get_double(p + 16);
		p += 24;
		/* Checked whole before A changes. */
		while (p < end) {
			if ((k = *p++) >= ROLLUP_BUCKETS || nu == ROLLUP_BUCKETS ||
			    get_varint(&p, end, &v) != 0 ||
			    v > UINT32_MAX - a->hist[k])
				return WP_EINVAL;
			used[nu] = (unsigned char)k;
			add[nu++] = (uint32_t)v;
		}
	} else if (p != end) {
		return WP_EINVAL;
	}
	a->checks += (int64_t)c[0];
	a->up += (int64_t)c[1];
	a->degraded += (int64_t)c[2];
	a->down += (int64_t)c[3];
	a->failed += (int64_t)c[4];
	if (c[5] == 0)
		return 0;
	if (a->lat_n == 0 || mn < a->lat_min)
		a->lat_min = mn;
	if (a->lat_n == 0 || mx > a->lat_max)
		a->lat_max = mx;
	a->lat_n += (int64_t)c[5];
	a->lat_sum += sum;
	for (k = 0; k < nu; k++) {
		a->hist[used[k]] += add[k];
		if (add[k] > 0)
			a->nz[used[k] >> 6] |= 1ull << (used[k] & 63);
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
rollup_bind(sqlite3_stmt *s, int i, const struct rollup_agg *a)
{
	unsigned char buf[ROLLUP_BLOB_MAX];

	return sqlite3_bind_blob(s, i, buf, (int)rollup_encode(a, buf),
	    SQLITE_TRANSIENT);
}

int
rollup_read(sqlite3_stmt *s, int i, struct rollup_agg *a)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return 0;
	return rollup_decode(a, sqlite3_column_blob(s, i),
	    (size_t)sqlite3_column_bytes(s, i));
}

/* ---- the migration's aggregate functions ---- */

static struct rollup_agg *
sql_agg(sqlite3_context *ctx, int make)
{
	return sqlite3_aggregate_context(ctx, make ? sizeof(struct rollup_agg) :
	    0);
}

static void
check_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct rollup_agg *a = sql_agg(ctx, 1);
	int ok;

	(void)argc;
	if (a == NULL) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	ok = sqlite3_value_int(argv[0]) != 0;
	rollup_add(a, ok ? "up" : "down", ok,
	    sqlite3_value_type(argv[1]) == SQLITE_NULL ? -1 :
	    sqlite3_value_double(argv[1]));
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
	if (sqlite3_value_type(argv[0]) != SQLITE_NULL &&
	    rollup_decode(a, sqlite3_value_blob(argv[0]),
	    (size_t)sqlite3_value_bytes(argv[0])) != 0)
		sqlite3_result_error(ctx, "malformed roll-up", -1);
}

static void
agg_final(sqlite3_context *ctx)
{
	struct rollup_agg *a = sql_agg(ctx, 0), empty;
	unsigned char buf[ROLLUP_BLOB_MAX];

	if (a == NULL) {
		rollup_clear(&empty);
		a = &empty;
	}
	sqlite3_result_blob(ctx, buf, (int)rollup_encode(a, buf),
	    SQLITE_TRANSIENT);
}

static void
add_func(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct rollup_agg a;
	unsigned char buf[ROLLUP_BLOB_MAX];

	(void)argc;
	rollup_clear(&a);
	if (rollup_decode(&a, sqlite3_value_blob(argv[1]),
	    (size_t)sqlite3_value_bytes(argv[1])) != 0) {
		sqlite3_result_error(ctx, "malformed roll-up", -1);
		return;
	}
	/* A malformed row already there is replaced, not kept. */
	(void)rollup_decode(&a, sqlite3_value_blob(argv[0]),
	    (size_t)sqlite3_value_bytes(argv[0]));
	sqlite3_result_blob(ctx, buf, (int)rollup_encode(&a, buf),
	    SQLITE_TRANSIENT);
}

int
rollup_sql_register(sqlite3 *db)
{
	int rc;

	rc = sqlite3_create_function(db, "wp_rollup", 2, SQLITE_UTF8 |
	    SQLITE_DETERMINISTIC, NULL, NULL, check_step, agg_final);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "wp_rollup_merge", 1,
		    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL, merge_step,
		    agg_final);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "wp_rollup_add", 2,
		    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, add_func, NULL,
		    NULL);
	return rc;
}
