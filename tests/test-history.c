/*
 * Unit tests for core/rollup.c, the roll-ups and incidents the store
 * writer keeps (core/store-writer.c), and core/history.c against a real
 * SQLite file: the roll-up maths and percentiles, hour and day window
 * boundaries, incidents open and closed, cursor paging without duplicates
 * or gaps, retention of roll-ups after the raw rows expire, and the
 * migration's backfill of an older database.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "history.h"
#include "rollup.h"
#include "store.h"
#include "util.h"

#define H ROLLUP_HOUR_MS
#define D ROLLUP_DAY_MS
/* A UTC midnight: 2026-11-30. */
#define DAY0 (20422LL * D)

struct fx {
	char dir[PATH_MAX];
	char db[PATH_MAX + 16];
	struct store *st;
	struct history *h;
	int64_t ids[2];		/* "alpha", "beta" */
};

static int
setup(void **state)
{
	struct fx *fx;
	const char *tmp = getenv("TMPDIR");

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "%s/wp-history-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->db, sizeof(fx->db), "%s/wp.db", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char p[PATH_MAX + 32];

	history_close(fx->h);
	store_close(fx->st);
	snprintf(p, sizeof(p), "%s-wal", fx->db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", fx->db);
	unlink(p);
	unlink(fx->db);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void
open_store(struct fx *fx)
{
	static const char *const names[] = { "alpha", "beta" };
	static const char *const types[] = { "http", "tcp" };
	char err[512] = "";

	if (store_open(fx->db, 4096, &fx->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_sync_monitors(fx->st, names, types, 2,
	    fx->ids), 0);
	assert_int_equal(store_start(fx->st), 0);
}

/* Open a store on another file PATH (the fixture's monitors are in it). */
static void
open_store_at(struct fx *fx, const char *path)
{
	static const char *const names[] = { "alpha", "beta" };
	static const char *const types[] = { "http", "tcp" };
	char err[512] = "";

	if (store_open(path, 4096, &fx->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_sync_monitors(fx->st, names, types, 2,
	    fx->ids), 0);
	assert_int_equal(store_start(fx->st), 0);
}

/* Close the store (every queued row written) and open a reader. */
static void
close_store_open_history(struct fx *fx)
{
	char err[512] = "";

	assert_int_equal(store_close(fx->st), 0);
	fx->st = NULL;
	if (history_open(fx->db, &fx->h, err, sizeof(err)) != 0)
		fail_msg("history_open: %s", err);
}

static void
submit(struct fx *fx, int64_t id, int64_t ts, const char *state, int changed,
    double latency)
{
	struct store_check c;

	memset(&c, 0, sizeof(c));
	c.monitor_id = id;
	c.ts_ms = ts;
	c.ok = strcmp(state, "down") != 0;
	c.latency_ms = latency;
	c.status_code = -1;
	c.reason = c.ok ? WP_REASON_OK : WP_REASON_REFUSED;
	if (!c.ok)
		snprintf(c.error, sizeof(c.error), "connection refused");
	c.attempts = 1;
	c.dns_ms = c.connect_ms = c.tls_ms = c.first_byte_ms = -1;
	c.state = state;
	c.state_changed = changed;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
}

static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* The checks of the aggregates SQL returns, summed. */
static int64_t
sql_agg(const char *path, const char *sql)
{
	struct rollup_agg a;
	sqlite3 *db;
	sqlite3_stmt *s;

	rollup_clear(&a);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW)
		assert_int_equal(rollup_read(s, 0, &a), 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return a.checks;
}

static void
sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* ---- rollup.c ---- */

static void
test_rollup_maths(void **state)
{
	struct rollup_agg a, b;
	unsigned char buf[ROLLUP_BLOB_MAX];
	size_t n;
	int i;

	(void)state;
	rollup_clear(&a);
	assert_true(isnan(rollup_quantile(&a, 0.5)));
	assert_true(isnan(rollup_uptime(&a)));
	/* One steady latency: every percentile is exactly it (clamped). */
	for (i = 0; i < 10; i++)
		rollup_add(&a, "up", 1, 42.0);
	assert_true(rollup_quantile(&a, 0.5) == 42.0);
	assert_true(rollup_quantile(&a, 0.99) == 42.0);
	/* 1..1000 ms: within a bucket (2^(1/4), 19%) of the true value. */
	rollup_clear(&a);
	for (i = 1; i <= 1000; i++)
		rollup_add(&a, i <= 900 ? "up" : i <= 950 ? "degraded" : "down",
		    i % 7 != 0, (double)i);
	assert_int_equal(a.checks, 1000);
	assert_int_equal(a.up, 900);
	assert_int_equal(a.degraded, 50);
	assert_int_equal(a.down, 50);
	assert_int_equal(a.failed, 142);
	assert_true(fabs(rollup_uptime(&a) - 0.95) < 1e-9);
	assert_true(a.lat_min == 1.0 && a.lat_max == 1000.0);
	assert_true(fabs(a.lat_sum - 500500.0) < 1e-6);
	assert_true(fabs(rollup_quantile(&a, 0.50) / 500.0 - 1) < 0.1);
	assert_true(fabs(rollup_quantile(&a, 0.95) / 950.0 - 1) < 0.1);
	assert_true(fabs(rollup_quantile(&a, 0.99) / 990.0 - 1) < 0.1);
	/* No latency: counted, not in the histogram. */
	rollup_add(&a, "pending", 1, -1);
	assert_int_equal(a.checks, 1001);
	assert_int_equal(a.lat_n, 1000);
	/* Encode, decode: the same aggregate; a few bytes for a steady
	 * latency. */
	n = rollup_encode(&a, buf);
	rollup_clear(&b);
	assert_int_equal(rollup_decode(&b, buf, n), 0);
	assert_memory_equal(a.hist, b.hist, sizeof(a.hist));
	assert_int_equal(b.checks, 1001);
	assert_int_equal(b.failed, 142);
	assert_int_equal(b.lat_n, 1000);
	assert_true(b.lat_sum == a.lat_sum && b.lat_min == 1.0 &&
	    b.lat_max == 1000.0);
	/* Decoding adds. */
	assert_int_equal(rollup_decode(&b, buf, n), 0);
	assert_int_equal(b.checks, 2002);
	rollup_clear(&b);
	for (i = 0; i < 3600; i++)
		rollup_add(&b, "up", 1, 20.0 + (i % 3));
	assert_true(rollup_encode(&b, buf) <= 40);
	/* Malformed: cut short anywhere, a bucket out of range, another
	 * format; A stays as it was. */
	n = rollup_encode(&a, buf);
	rollup_clear(&b);
	for (i = 0; i < (int)n - 1; i++)
		if (rollup_decode(&b, buf, (size_t)i) == 0)
			/* A cut at a pair's boundary is a shorter histogram. */
			assert_true(i > 30);
	rollup_clear(&b);
	buf[n - 2] = ROLLUP_BUCKETS;
	assert_int_equal(rollup_decode(&b, buf, n), WP_EINVAL);
	assert_int_equal(b.checks, 0);
	buf[0] = 2;
	assert_int_equal(rollup_decode(&b, buf, n), WP_EINVAL);
	assert_int_equal(rollup_decode(&b, buf, 0), WP_EINVAL);
	/* Buckets: [0.1 * 2^(b/4), 0.1 * 2^((b+1)/4)), as log2() says. */
	for (i = 0; i < 2000; i++) {
		double v = 0.05 * pow(1.01, i);
		int want = v <= ROLLUP_LAT_MIN ? 0 :
		    (int)floor(4 * log2(v / ROLLUP_LAT_MIN));

		if (want > ROLLUP_BUCKETS - 1)
			want = ROLLUP_BUCKETS - 1;
		/* Exactly on a boundary, rounding may pick either side. */
		if (fabs(4 * log2(v / ROLLUP_LAT_MIN) - rint(4 * log2(v /
		    ROLLUP_LAT_MIN))) > 1e-9)
			assert_int_equal(rollup_bucket(v), want);
	}
	assert_int_equal(rollup_bucket(0.2), 4);
	assert_int_equal(rollup_bucket(1e9), ROLLUP_BUCKETS - 1);
	assert_int_equal(rollup_bucket(-1), 0);
	assert_int_equal(rollup_bucket(NAN), 0);
	/* Merge keeps min and max. */
	rollup_clear(&a);
	rollup_clear(&b);
	rollup_add(&a, "up", 1, 5);
	rollup_add(&b, "down", 0, 500);
	rollup_merge(&a, &b);
	assert_true(a.lat_min == 5 && a.lat_max == 500 && a.checks == 2);
}

static void
test_parse_window(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(history_parse_window("24h", &ms), 0);
	assert_true(ms == 24 * H);
	assert_int_equal(history_parse_window("90d", &ms), 0);
	assert_true(ms == 90 * D);
	assert_int_equal(history_parse_window("400d", &ms), 0);
	assert_int_equal(history_parse_window("401d", &ms), WP_EINVAL);
	assert_int_equal(history_parse_window("0d", &ms), WP_EINVAL);
	assert_int_equal(history_parse_window("30m", &ms), WP_EINVAL);
	assert_int_equal(history_parse_window("d", &ms), WP_EINVAL);
	assert_int_equal(history_parse_window("-1d", &ms), WP_EINVAL);
	assert_int_equal(history_parse_window("7dd", &ms), WP_EINVAL);
	assert_int_equal(history_parse_window("", &ms), WP_EINVAL);
}

/* ---- the writer's roll-ups, read back ---- */

/*
 * alpha: 10 checks an hour for 30 hours across a midnight (DAY0 + 20h to
 * DAY0 + 50h), down for hours 25 and 26; beta: nothing.  Then hour by
 * hour, day by day and per window, every count is where it belongs.
 */
static void
test_windows(void **state)
{
	struct fx *fx = *state;
	struct history_uptime u[2];
	struct history_day days[3];
	struct history_hour hours[24];
	int64_t t0 = DAY0 + 20 * H, now, ids[2];
	int hr, i;

	open_store(fx);
	for (hr = 0; hr < 30; hr++)
		for (i = 0; i < 10; i++) {
			int down = hr == 25 || hr == 26;

			submit(fx, fx->ids[0], t0 + hr * H + i * 60000,
			    down ? "down" : "up", i == 0 && (hr == 25 ||
			    hr == 27), down ? -1 : 10.0 + hr);
		}
	close_store_open_history(fx);
	/* Hours 0..28 flushed; hour 29 still the open hour in `state`. */
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM rollup_hours"),
	    29);
	assert_int_equal(sql_agg(fx->db, "SELECT agg FROM rollup_days"), 290);
	assert_int_equal(sql_agg(fx->db, "SELECT r_agg FROM state"), 10);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM rollup_days"),
	    3);

	now = t0 + 29 * H + 30 * 60000;	/* DAY0 + 49h30 */
	ids[0] = fx->ids[0];
	ids[1] = fx->ids[1];
	/* 1h: hour 28 whole and the open hour 29. */
	assert_int_equal(history_uptime(fx->h, ids, 2, now, H, u), 0);
	assert_int_equal(u[0].checks, 20);
	assert_true(u[0].uptime == 1.0);
	assert_true(u[0].from_ms == t0 + 28 * H);
	assert_int_equal(u[1].checks, 0);
	assert_true(isnan(u[1].uptime));
	assert_true(isnan(u[1].latency_p50_ms));
	/* 24h: hours 5..29 (25 hours), a partial first day (hours 5..3 of
	 * DAY0+1) read hour by hour, then DAY0+2's row and the open hour. */
	assert_int_equal(history_uptime(fx->h, ids, 1, now, 24 * H, u), 0);
	assert_int_equal(u[0].checks, 250);
	assert_int_equal(u[0].down, 20);
	assert_int_equal(u[0].up, 230);
	assert_true(fabs(u[0].uptime - 230.0 / 250.0) < 1e-9);
	assert_int_equal(u[0].incidents, 1);
	/* Down from hour 25's first check to hour 27's: two hours. */
	assert_true(fabs(u[0].down_seconds - 7200.0) < 1e-6);
	assert_true(u[0].latency_min_ms == 15.0);
	assert_true(u[0].latency_max_ms == 39.0);
	assert_true(u[0].latency_p50_ms >= 15.0 && u[0].latency_p50_ms <=
	    39.0);
	/* 7d: everything. */
	assert_int_equal(history_uptime(fx->h, ids, 1, now, 7 * D, u), 0);
	assert_int_equal(u[0].checks, 300);
	assert_true(u[0].latency_min_ms == 10.0);
	/* Not a whole number of hours: refused. */
	assert_int_equal(history_uptime(fx->h, ids, 1, now, H + 1, u),
	    WP_EINVAL);

	/* Daily: DAY0 has hours 20..23 (40 checks), DAY0+1 240 with 20
	 * down, DAY0+2 hours 0..1 with the open one (20). */
	assert_int_equal(history_daily(fx->h, fx->ids[0], now, 3, days), 0);
	assert_true(days[0].day_ms == DAY0);
	assert_int_equal(days[0].checks, 40);
	assert_int_equal(days[1].checks, 240);
	assert_int_equal(days[1].down, 20);
	assert_int_equal(days[1].incidents, 1);
	assert_true(fabs(days[1].down_seconds - 7200.0) < 1e-6);
	assert_int_equal(days[2].checks, 20);
	assert_true(days[2].uptime == 1.0);

	/* Hourly: the last 24 hours, oldest first, the open hour last. */
	assert_int_equal(history_hourly(fx->h, fx->ids[0], now, 24, hours), 0);
	assert_true(hours[23].hour_ms == t0 + 29 * H);
	assert_int_equal(hours[23].checks, 10);
	assert_true(hours[23].latency_avg_ms == 39.0);
	assert_int_equal(hours[0].checks, 10);
	assert_true(hours[0].latency_avg_ms == 16.0);
	/* Hours 25 and 26 (indexes 19, 20): checks, no latency. */
	assert_int_equal(hours[19].checks, 10);
	assert_true(isnan(hours[19].latency_p95_ms));
}

/* A check that arrives after its hour was flushed lands in that hour; a
 * restart of the store continues the open hour from the state row. */
static void
test_late_and_restart(void **state)
{
	struct fx *fx = *state;
	struct history_hour hours[3];

	open_store(fx);
	submit(fx, fx->ids[0], DAY0 + 10 * 60000, "up", 1, 5);
	submit(fx, fx->ids[0], DAY0 + H + 60000, "up", 0, 7);
	assert_int_equal(store_close(fx->st), 0);
	fx->st = NULL;
	open_store(fx);
	submit(fx, fx->ids[0], DAY0 + H + 120000, "up", 0, 7);
	submit(fx, fx->ids[0], DAY0 + 30 * 60000, "up", 0, 9);	/* late */
	submit(fx, fx->ids[0], DAY0 + 2 * H, "up", 0, 11);
	close_store_open_history(fx);
	assert_int_equal(history_hourly(fx->h, fx->ids[0], DAY0 + 2 * H + 1, 3,
	    hours), 0);
	assert_int_equal(hours[0].checks, 2);
	assert_true(hours[0].latency_avg_ms == 7.0);
	assert_int_equal(hours[1].checks, 2);
	assert_int_equal(hours[2].checks, 1);
	assert_int_equal(sql_agg(fx->db, "SELECT agg FROM rollup_days"), 4);
}

static void
test_incidents(void **state)
{
	struct fx *fx = *state;
	struct history_incident *v = NULL;
	struct history_uptime u;
	size_t n = 0;
	int64_t t = DAY0;

	open_store(fx);
	submit(fx, fx->ids[0], t, "up", 1, 5);
	submit(fx, fx->ids[0], t + 60000, "down", 1, -1);
	submit(fx, fx->ids[0], t + 120000, "down", 0, -1);
	submit(fx, fx->ids[0], t + 180000, "up", 1, 5);
	submit(fx, fx->ids[0], t + 240000, "degraded", 1, 900);
	submit(fx, fx->ids[0], t + 300000, "down", 1, -1);
	close_store_open_history(fx);

	assert_int_equal(history_incidents(fx->h, fx->ids[0], 10, t + 360000,
	    &v, &n), 0);
	assert_int_equal(n, 2);
	/* Newest first: the open one, to now. */
	assert_true(v[0].start_ms == t + 300000 && v[0].end_ms == 0);
	assert_true(v[0].duration_s == 60.0);
	assert_string_equal(v[0].reason, "refused");
	assert_string_equal(v[0].error, "connection refused");
	assert_true(v[1].start_ms == t + 60000 && v[1].end_ms == t + 180000);
	assert_true(v[1].duration_s == 120.0);
	free(v);
	v = NULL;
	assert_int_equal(history_incidents(fx->h, fx->ids[0], 1, t + 360000,
	    &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);
	assert_int_equal(history_incidents(fx->h, fx->ids[1], 10, t, &v, &n),
	    0);
	assert_int_equal(n, 0);
	/* 180 s down in the hour: 120 closed + 60 open. */
	assert_int_equal(history_uptime(fx->h, &fx->ids[0], 1, t + 360000, H,
	    &u), 0);
	assert_true(fabs(u.down_seconds - 180.0) < 1e-9);
	assert_int_equal(u.incidents, 2);
	assert_int_equal(u.down, 3);
	assert_int_equal(u.degraded, 1);
	assert_true(fabs(u.uptime - 0.5) < 1e-9);
}

/* Pages of 7 over 25 rows (several sharing a ts) give every row once, in
 * order, also when rows arrive between pages. */
static void
test_paging(void **state)
{
	struct fx *fx = *state;
	struct history_check *v;
	char cursor[HISTORY_CURSOR_MAX] = "", next[HISTORY_CURSOR_MAX];
	int seen[64] = { 0 }, pages = 0, total = 0, i;
	int64_t last_ts = INT64_MAX, last_id = INT64_MAX, id0;
	size_t n;

	open_store(fx);
	for (i = 0; i < 25; i++)
		submit(fx, fx->ids[0], DAY0 + (i / 3) * 1000, "up", i == 0, 1);
	submit(fx, fx->ids[1], DAY0, "up", 1, 1);
	close_store_open_history(fx);
	id0 = sql_int(fx->db, "SELECT min(id) FROM checks");
	do {
		assert_int_equal(history_checks(fx->h, fx->ids[0], 0, 0, 7,
		    cursor, &v, &n, next), 0);
		for (i = 0; i < (int)n; i++) {
			assert_true(v[i].ts_ms < last_ts || (v[i].ts_ms ==
			    last_ts && v[i].id < last_id));
			last_ts = v[i].ts_ms;
			last_id = v[i].id;
			assert_true(v[i].id - id0 < 64);
			seen[v[i].id - id0]++;
			total++;
		}
		free(v);
		if (pages == 0) {
			/* A row newer than the cursor does not show up. */
			sql_exec(fx->db, "INSERT INTO checks(monitor_id, ts, ok) "
			    "SELECT id, 1, 1 FROM monitors WHERE name = 'alpha'");
		}
		str_copy(cursor, sizeof(cursor), next);
		pages++;
	} while (*cursor != '\0' && pages < 10);
	assert_int_equal(pages, 4);
	/* 25 rows and the old one inserted (ts 1) last. */
	assert_int_equal(total, 26);
	for (i = 0; i < 25; i++)
		assert_int_equal(seen[i], 1);
	/* since/until bound by ts: [DAY0 + 2000, DAY0 + 5000). */
	assert_int_equal(history_checks(fx->h, fx->ids[0], DAY0 + 2000,
	    DAY0 + 5000, 100, NULL, &v, &n, next), 0);
	assert_int_equal(n, 9);
	assert_string_equal(next, "");
	free(v);
	/* Bad cursors and limits. */
	assert_int_equal(history_checks(fx->h, fx->ids[0], 0, 0, 7, "zz", &v,
	    &n, next), WP_EINVAL);
	assert_int_equal(history_checks(fx->h, fx->ids[0], 0, 0, 7, "c1.0", &v,
	    &n, next), WP_EINVAL);
	assert_int_equal(history_checks(fx->h, fx->ids[0], 0, 0, 7, "c1.1x",
	    &v, &n, next), WP_EINVAL);
	assert_int_equal(history_checks(fx->h, fx->ids[0], 0, 0, 7, "c-1.1",
	    &v, &n, next), WP_EINVAL);
	assert_int_equal(history_checks(fx->h, fx->ids[0], 0, 0, 0, NULL, &v,
	    &n, next), WP_EINVAL);
	assert_int_equal(history_checks(fx->h, fx->ids[0], 0, 0,
	    HISTORY_PAGE_MAX + 1, NULL, &v, &n, next), WP_EINVAL);
}

static int retention_done_flag;

static void
on_retention(void *arg, int64_t deleted)
{
	(void)arg;
	(void)deleted;
	__atomic_store_n(&retention_done_flag, 1, __ATOMIC_SEQ_CST);
}

/* Raw rows older than retention_days go; their roll-ups stay until
 * rollup_retention_days (in whole hours, days and weeks: a week that
 * began before the cutoff stays until it is all older), and then go with
 * the incidents that ended. */
static void
test_retention(void **state)
{
	struct fx *fx = *state;
	struct history_uptime u;
	int64_t now = DAY0 + 12 * H, old = DAY0 - 3 * D, older = DAY0 - 30 * D;
	int i;

	open_store(fx);
	submit(fx, fx->ids[0], older, "down", 1, -1);
	submit(fx, fx->ids[0], older + 60000, "up", 1, 3);
	submit(fx, fx->ids[0], old, "up", 0, 4);
	submit(fx, fx->ids[0], now - 60000, "up", 0, 5);
	retention_done_flag = 0;
	assert_int_equal(store_retention_history(fx->st, now - D, now - 5 * D,
	    100, on_retention, NULL), 0);
	for (i = 0; i < 1000 && !__atomic_load_n(&retention_done_flag,
	    __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_true(retention_done_flag);
	close_store_open_history(fx);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 1);
	/* The 3-day-old hour stays as a roll-up; the 30-day-old ones, and
	 * the incident that ended then, are gone at every level. */
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM rollup_hours"),
	    1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM incidents"), 0);
	assert_int_equal(history_uptime(fx->h, &fx->ids[0], 1, now, 7 * D, &u),
	    0);
	assert_int_equal(u.checks, 2);
	assert_true(u.latency_min_ms == 4.0);
	assert_int_equal(history_uptime(fx->h, &fx->ids[0], 1, now, 60 * D,
	    &u), 0);
	assert_int_equal(u.checks, 2);
	assert_int_equal(u.incidents, 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM rollup_weeks"),
	    1);
}

/* A database of the version before the roll-ups (raw rows only) gains
 * roll-ups and incidents from its rows when the store opens it.  (The
 * roll-up migration is the last one.) */
static void
test_backfill(void **state)
{
	struct fx *fx = *state;
	struct history_incident *v;
	struct history_uptime u;
	size_t n;
	int i;

	open_store(fx);
	for (i = 0; i < 6; i++)
		submit(fx, fx->ids[0], DAY0 + i * 20 * 60000, i == 2 || i == 3 ?
		    "down" : "up", 0, i == 2 || i == 3 ? -1 : 10 * (i + 1));
	assert_int_equal(store_close(fx->st), 0);
	fx->st = NULL;
	/* Back to version 3: without version 7's cluster columns, version
	 * 5's holds (silences, holds, checks.maintenance) and version 4's
	 * roll-ups and incidents. */
	sql_exec(fx->db, "ALTER TABLE checks DROP COLUMN agent; "
	    "ALTER TABLE checks DROP COLUMN location; "
	    "ALTER TABLE checks DROP COLUMN grid");
	sql_exec(fx->db, "DROP TABLE silences; DROP TABLE holds; "
	    "ALTER TABLE checks DROP COLUMN maintenance");
	sql_exec(fx->db, "DROP TABLE rollup_hours; DROP TABLE rollup_days; "
	    "DROP TABLE rollup_weeks; "
	    "DROP TABLE incidents; UPDATE state SET r_hour = NULL; "
	    "UPDATE meta SET value = '3' WHERE key = 'schema_version'");
	/* (the r_* columns are dropped too, as version 3 had none) */
	sql_exec(fx->db, "ALTER TABLE state DROP COLUMN r_hour; "
	    "ALTER TABLE state DROP COLUMN r_agg; "
	    "ALTER TABLE state DROP COLUMN r_id; "
	    "CREATE INDEX checks_ts ON checks(ts)");
	open_store(fx);
	/* New checks after the migration add to the backfilled hour. */
	submit(fx, fx->ids[0], DAY0 + 2 * H + 60000, "up", 0, 70);
	close_store_open_history(fx);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM rollup_hours"),
	    2);
	assert_int_equal(history_uptime(fx->h, &fx->ids[0], 1, DAY0 + 3 * H,
	    D, &u), 0);
	assert_int_equal(u.checks, 7);
	assert_int_equal(u.down, 2);
	assert_true(u.latency_min_ms == 10.0 && u.latency_max_ms == 70.0);
	assert_int_equal(history_incidents(fx->h, fx->ids[0], 10, DAY0 + 3 * H,
	    &v, &n), 0);
	assert_int_equal(n, 1);
	assert_true(v[0].start_ms == DAY0 + 40 * 60000);
	assert_true(v[0].end_ms == DAY0 + 80 * 60000);
	free(v);
}

/*
 * The state row is written on a change, not per check, so after a crash
 * (a child process that ends without store_close()) it lags the checks
 * rows; the next writer recounts them from the rows (slot_reconcile()),
 * and every check is in the roll-ups once.
 */
static void
test_crash_reconcile(void **state)
{
	struct fx *fx = *state;
	struct store_stats ss;
	pid_t pid;
	int i, status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		open_store(fx);
		for (i = 0; i < 20; i++)
			submit(fx, fx->ids[0], DAY0 + 10 * 60000 + i * 10000,
			    "up", i == 0, 5);
		for (i = 0; i < 2000; i++) {
			store_get_stats(fx->st, &ss);
			if (ss.written == 20)
				break;
			usleep(5000);
		}
		_exit(ss.written == 20 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 20);
	/* Only the first check (a change) wrote the row. */
	assert_int_equal(sql_agg(fx->db, "SELECT r_agg FROM state"), 1);

	open_store(fx);
	submit(fx, fx->ids[0], DAY0 + 20 * 60000, "up", 0, 5);
	close_store_open_history(fx);
	assert_int_equal(sql_agg(fx->db, "SELECT r_agg FROM state"), 21);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM rollup_hours"),
	    0);
	assert_int_equal(sql_int(fx->db, "SELECT last_check_ms FROM state"),
	    DAY0 + 20 * 60000);
}

/*
 * A version 5 file as the version 5 writer left it: tests/data/
 * store-v5.sql is `bench/history write DB 240 2 50` of the tree before
 * version 6 (m1 and m2, 120 checks each at 60 s over three hours, its
 * roll-ups and state rows), dumped with `sqlite3 DB .dump`.  Migrated to
 * version 6 and on (7), nothing is lost: its ts index goes, its state rows (r_id
 * NULL, written per check) are taken as exact, every check written after
 * is counted once in the roll-ups, the newest check is what
 * store_load_state() and /checks give, and retention by rowid ranges
 * removes exactly the rows older than its cutoff.
 */
static void
test_migrate_v5(void **state)
{
	static const char *const names[] = { "m1", "m2" };
	static const char *const types[] = { "http", "http" };
	struct fx *fx = *state;
	struct store_state *st = NULL;
	struct history_check *v;
	struct history_uptime u;
	char err[512] = "", path[PATH_MAX], next[HISTORY_CURSOR_MAX], *sql;
	char q[128];
	const char *src = getenv("abs_top_srcdir");
	int64_t ids[2], first, last1, last2, cutoff, old, total;
	size_t n, len;
	FILE *f;
	int i;

	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/tests/data/store-v5.sql", src);
	assert_non_null(f = fopen(path, "r"));
	sql = calloc(1, 1 << 20);
	assert_non_null(sql);
	len = fread(sql, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_true(len > 0 && len < (1 << 20) - 1);
	sql_exec(fx->db, sql);
	free(sql);
	assert_int_equal(sql_int(fx->db, "SELECT CAST(value AS INTEGER) FROM "
	    "meta WHERE key = 'schema_version'"), 5);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'checks_ts'"), 1);
	first = sql_int(fx->db, "SELECT min(ts) FROM checks");
	last1 = sql_int(fx->db, "SELECT max(ts) FROM checks WHERE "
	    "monitor_id = 1");
	last2 = sql_int(fx->db, "SELECT max(ts) FROM checks WHERE "
	    "monitor_id = 2");
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 240);
	assert_int_equal(sql_agg(fx->db, "SELECT agg FROM rollup_hours") +
	    sql_agg(fx->db, "SELECT r_agg FROM state"), 240);

	if (store_open(fx->db, 4096, &fx->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_sync_monitors(fx->st, names, types, 2, ids), 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 2);
	assert_int_equal(sql_int(fx->db, "SELECT CAST(value AS INTEGER) FROM "
	    "meta WHERE key = 'schema_version'"), 7);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'checks_ts'"), 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'index' AND tbl_name = 'checks' AND "
	    "sql LIKE '%(monitor_id, ts)%'"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM state WHERE "
	    "r_id IS NULL"), 2);
	assert_int_equal(store_load_state(fx->st, &st, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(st[0].state, "up");
	assert_int_equal(st[0].last_check_ms, last1);
	assert_int_equal(st[1].last_check_ms, last2);
	free(st);

	/* 90 more minutes of m1, then retention of its first 30 minutes. */
	assert_int_equal(store_start(fx->st), 0);
	for (i = 1; i <= 90; i++)
		submit(fx, 1, last1 + i * 60000, "up", 0, 7);
	cutoff = first + 30 * 60000;
	snprintf(q, sizeof(q), "SELECT count(*) FROM checks WHERE ts < %lld",
	    (long long)cutoff);
	old = sql_int(fx->db, q);
	assert_true(old >= 58 && old <= 60);	/* 30 minutes of each */
	retention_done_flag = 0;
	assert_int_equal(store_retention(fx->st, cutoff, 7, on_retention,
	    NULL), 0);
	for (i = 0; i < 1000 && !__atomic_load_n(&retention_done_flag,
	    __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_true(retention_done_flag);
	close_store_open_history(fx);

	total = sql_int(fx->db, "SELECT count(*) FROM checks");
	assert_int_equal(total, 240 + 90 - old);
	assert_int_equal(sql_int(fx->db, q), 0);
	/* Every check counted once: the roll-ups keep what retention took. */
	assert_int_equal(sql_agg(fx->db, "SELECT agg FROM rollup_hours") +
	    sql_agg(fx->db, "SELECT r_agg FROM state"), 240 + 90);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM state WHERE "
	    "monitor_id = 1 AND r_id = (SELECT max(id) FROM checks) AND "
	    "last_check_ms = (SELECT max(ts) FROM checks)"), 1);
	assert_int_equal(history_uptime(fx->h, &ids[0], 1, last1 + 91 * 60000,
	    D, &u), 0);
	assert_int_equal(u.checks, 120 + 90);
	assert_int_equal(history_checks(fx->h, 1, 0, 0, 5, NULL, &v, &n, next),
	    0);
	assert_int_equal(n, 5);
	assert_true(v[0].ts_ms == last1 + 90 * 60000);
	assert_true(v[4].ts_ms == last1 + 86 * 60000);
	free(v);
}

/*
 * A version 6 file (tests/data/store-v6.sql: `bench/history write DB 240
 * 2 20` of schema 6, dumped with `sqlite3 .dump`) migrates to 7: checks
 * gains agent, location and grid, NULL on its rows, which keep their
 * values; /checks shows them without the new fields.
 */
static void
test_migrate_v6(void **state)
{
	static const char *const names[] = { "m1", "m2" };
	static const char *const types[] = { "http", "http" };
	struct fx *fx = *state;
	struct history_check *v;
	char err[512] = "", path[PATH_MAX], next[HISTORY_CURSOR_MAX], *sql;
	const char *src = getenv("abs_top_srcdir");
	int64_t ids[2], last1;
	size_t n, len;
	FILE *f;

	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/tests/data/store-v6.sql", src);
	assert_non_null(f = fopen(path, "r"));
	sql = calloc(1, 1 << 20);
	assert_non_null(sql);
	len = fread(sql, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_true(len > 0 && len < (1 << 20) - 1);
	sql_exec(fx->db, sql);
	free(sql);
	assert_int_equal(sql_int(fx->db, "SELECT CAST(value AS INTEGER) FROM "
	    "meta WHERE key = 'schema_version'"), 6);
	last1 = sql_int(fx->db, "SELECT max(ts) FROM checks WHERE "
	    "monitor_id = 1");
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 240);

	if (store_open(fx->db, 4096, &fx->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_sync_monitors(fx->st, names, types, 2, ids), 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(sql_int(fx->db, "SELECT CAST(value AS INTEGER) FROM "
	    "meta WHERE key = 'schema_version'"), 7);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM "
	    "pragma_table_info('checks') WHERE name IN ('agent', 'location', "
	    "'grid')"), 3);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks WHERE "
	    "agent IS NULL AND location IS NULL AND grid IS NULL"), 240);
	/* One more check in single mode: still NULL. */
	assert_int_equal(store_start(fx->st), 0);
	submit(fx, 1, last1 + 60000, "up", 0, 7);
	close_store_open_history(fx);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks WHERE "
	    "agent IS NULL AND location IS NULL AND grid IS NULL"), 241);
	assert_int_equal(sql_agg(fx->db, "SELECT agg FROM rollup_hours") +
	    sql_agg(fx->db, "SELECT r_agg FROM state"), 241);
	assert_int_equal(history_checks(fx->h, 1, 0, 0, 3, NULL, &v, &n, next),
	    0);
	assert_int_equal(n, 3);
	assert_true(v[0].ts_ms == last1 + 60000);
	assert_true(v[1].ts_ms == last1);
	assert_string_equal(v[0].agent, "");
	assert_string_equal(v[1].location, "");
	assert_true(v[0].grid == -1 && v[2].grid == -1);
	free(v);
}

/*
 * Cluster mode (store_set_cluster()): each row carries the agent, the
 * location and its grid point (NULL for a check without one), in the
 * grouped INSERTs and row by row alike; /checks returns them.
 */
static void
test_cluster_columns(void **state)
{
	static const char *const names[] = { "alpha", "beta" };
	static const char *const types[] = { "http", "tcp" };
	struct fx *fx = *state;
	struct history_check *v;
	struct store_check c;
	char err[512] = "", next[HISTORY_CURSOR_MAX];
	size_t n;
	int i;

	if (store_open(fx->db, 4096, &fx->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_sync_monitors(fx->st, names, types, 2,
	    fx->ids), 0);
	assert_int_equal(store_set_cluster(fx->st, "", "eu"), WP_EINVAL);
	assert_int_equal(store_set_cluster(fx->st, "a1", NULL), WP_EINVAL);
	assert_int_equal(store_set_cluster(fx->st, "a1", "eu-west"), 0);
	assert_int_equal(store_start(fx->st), 0);
	assert_int_equal(store_set_cluster(fx->st, "a2", "eu"), WP_EINVAL);
	for (i = 0; i < 40; i++) {
		memset(&c, 0, sizeof(c));
		c.monitor_id = fx->ids[i % 2];
		c.ts_ms = DAY0 + i * 1000;
		c.ok = 1;
		c.latency_ms = 5;
		c.status_code = -1;
		c.attempts = 1;
		c.dns_ms = c.connect_ms = c.tls_ms = c.first_byte_ms = -1;
		c.state = "up";
		c.state_changed = i < 2;
		c.grid = i == 39 ? -1 : 1000 + i / 2;
		assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	}
	close_store_open_history(fx);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks WHERE "
	    "agent = 'a1' AND location = 'eu-west'"), 40);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks WHERE "
	    "grid IS NULL"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(DISTINCT grid) FROM "
	    "checks WHERE monitor_id = (SELECT id FROM monitors WHERE "
	    "name = 'alpha')"), 20);
	assert_int_equal(history_checks(fx->h, fx->ids[1], 0, 0, 2, NULL, &v,
	    &n, next), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].agent, "a1");
	assert_string_equal(v[0].location, "eu-west");
	assert_true(v[0].grid == -1);
	assert_true(v[1].grid == 1018);
	free(v);
}

/* The file recreated under a reader (the store's recovery does so): the
 * reader notices within a second and reads the new file. */
static void
test_reopen_recreated(void **state)
{
	struct fx *fx = *state;
	struct history_uptime u;
	char tmp[PATH_MAX + 32], *sql;
	int i;

	open_store(fx);
	submit(fx, fx->ids[0], DAY0, "up", 1, 5);
	close_store_open_history(fx);
	assert_int_equal(history_uptime(fx->h, &fx->ids[0], 1, DAY0 + 1, H,
	    &u), 0);
	assert_int_equal(u.checks, 1);
	/* A copy with one more check moves over the path. */
	snprintf(tmp, sizeof(tmp), "%s.new", fx->db);
	sql = sqlite3_mprintf("VACUUM INTO %Q", tmp);
	sql_exec(fx->db, sql);
	sqlite3_free(sql);
	open_store_at(fx, tmp);
	submit(fx, fx->ids[0], DAY0 + 60000, "up", 0, 5);
	assert_int_equal(store_close(fx->st), 0);
	fx->st = NULL;
	assert_int_equal(rename(tmp, fx->db), 0);
	/* Bounded: 5 s. */
	for (i = 0; i < 50; i++) {
		assert_int_equal(history_uptime(fx->h, &fx->ids[0], 1, DAY0 + 1,
		    H, &u), 0);
		if (u.checks == 2)
			break;
		usleep(100000);
	}
	assert_int_equal(u.checks, 2);
}

static void
test_open_refused(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";
	int64_t id = -1;

	assert_int_not_equal(history_open(fx->db, &fx->h, err, sizeof(err)), 0);
	assert_non_null(strstr(err, fx->db));
	open_store(fx);
	assert_int_equal(history_open(fx->db, &fx->h, err, sizeof(err)), 0);
	assert_int_equal(history_monitor_id(fx->h, "beta", &id), 0);
	assert_true(id == fx->ids[1]);
	assert_int_equal(history_monitor_id(fx->h, "nope", &id), 0);
	assert_true(id == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rollup_maths),
		cmocka_unit_test(test_parse_window),
		cmocka_unit_test_setup_teardown(test_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_and_restart, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_incidents, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backfill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v5, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v6, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cluster_columns, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_reconcile, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_recreated, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_refused, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
