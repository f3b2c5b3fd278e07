/*
 * bench/history -- the history benchmarks (BENCHMARKS.md, "History and
 * roll-ups"), linked with the core library by bench/run:
 *
 *   history gen DB [MONITORS] [DAYS]
 *       a database as an agent with MONITORS monitors at 60 s would leave
 *       after DAYS days (default 10,000 and 90): the schema through
 *       store_open(), then the hourly, daily and weekly roll-ups, each monitor's
 *       open hour and one incident a week, written directly (bounded: no
 *       raw rows, which uptime never reads; 1.3 billion of them would take
 *       hours to write)
 *   history query DB
 *       times history_uptime() for the 24h, 30d and 90d windows: one
 *       monitor (each of 200, median and max) and all monitors at once
 *       (5 runs, median and max)
 *   history checks DB
 *       times history_checks() (GET .../checks): newest page, next page,
 *       a page a day back, for 200 monitors (checks_main())
 *   history write DB ROWS MONITORS BATCH [FROM]
 *       the store writer's cost per row (run under callgrind with
 *       --toggle-collect=writer_main): ROWS checks round robin over
 *       MONITORS at 60 s each, submitted BATCH at a time, each group
 *       waited for, so every transaction holds BATCH rows.  FROM: start
 *       at that row (after a run of FROM rows on DB: a file that already
 *       holds each monitor's history).  Uses only
 *       store.h, so the same file builds against a tree without roll-ups
 *       (-DWRITE_ONLY) for the "before" count.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <sqlite3.h>

#include "store.h"
#include "util.h"
#ifndef WRITE_ONLY
#include "history.h"
#include "rollup.h"
#endif

#ifndef WRITE_ONLY
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* This process's CPU time (user + system), ms: what a query costs on a
 * shared machine, where the wall time also counts the waits for a core. */
static double
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}
#endif

static int64_t
wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench/history: %s\n", what);
	exit(1);
}

/* Create DB with N monitors m1..mN through the store; their ids. */
static int64_t *
make_store(const char *db, long n, struct store **out)
{
	char err[512], **names, **types;
	int64_t *ids = calloc((size_t)n, sizeof(*ids));
	struct store *st;
	long i;

	names = calloc((size_t)n, sizeof(*names));
	types = calloc((size_t)n, sizeof(*types));
	if (ids == NULL || names == NULL || types == NULL)
		die("out of memory");
	if (store_open(db, 65536, &st, err, sizeof(err)) != 0)
		die(err);
	for (i = 0; i < n; i++) {
		names[i] = malloc(24);
		snprintf(names[i], 24, "m%ld", i + 1);
		types[i] = "http";
	}
	if (store_sync_monitors(st, (const char *const *)names,
	    (const char *const *)types, (size_t)n, ids) != 0)
		die("sync monitors");
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(types);
	*out = st;
	return ids;
}

/* ---- write: the writer's cost per row ---- */

static int
write_main(const char *db, long rows, long monitors, long batch, long from)
{
	struct store *st;
	struct store_stats ss;
	struct store_check c;
	int64_t *ids, t0;
	long i, j, waits;

	ids = make_store(db, monitors, &st);
	if (store_start(st) != 0)
		die("store_start");
	/* Every minute from half past an hour: each monitor's hour ends
	 * once in its 60 checks, as one in 60 does at 60 s. */
	t0 = wall() / 3600000 * 3600000 - 24 * 3600000LL + 1800000;
	memset(&c, 0, sizeof(c));
	for (i = from; i < from + rows; i += batch) {
		for (j = i; j < i + batch && j < from + rows; j++) {
			c.monitor_id = ids[j % monitors];
			c.ts_ms = t0 + (j / monitors) * 60000 + j % monitors;
			/* As S1 and S3: every monitor up, its first check the
			 * only state change (pending -> up); a failed check
			 * now and then that a retry or down_after absorbs. */
			c.ok = j % 97 != 0;
			c.latency_ms = 5 + (double)(j % 13);
			c.status_code = 200;
			c.reason = 0;
			c.attempts = 1;
			c.dns_ms = c.connect_ms = c.tls_ms = c.first_byte_ms = -1;
			c.state = "up";
			c.state_changed = j < monitors;
			if (store_submit(st, &c, NULL, 0) != 0)
				die("queue full");
		}
		/* Bounded: 60 s for one batch. */
		for (waits = 0; waits < 60000; waits++) {
			store_get_stats(st, &ss);
			if (ss.written >= (uint64_t)(j - from))
				break;
			usleep(1000);
		}
		if (waits == 60000)
			die("the writer did not keep up");
	}
	store_get_stats(st, &ss);
	printf("rows %llu batches %llu rows/batch %.1f\n",
	    (unsigned long long)ss.written, (unsigned long long)ss.batches,
	    (double)ss.written / (double)(ss.batches ? ss.batches : 1));
	free(ids);
	return store_close(st) == 0 ? 0 : 1;
}

#ifndef WRITE_ONLY
/* ---- gen: a database of DAYS days of roll-ups ---- */

/* A monitor-hour as an agent at 60 s leaves it: 60 checks, latency from a
 * skewed spread around a per-monitor base, one bad hour in 200. */
static void
fake_hour(struct rollup_agg *a, long m, int64_t hour)
{
	uint64_t x = (uint64_t)m * 2654435761u ^ (uint64_t)hour * 40503u;
	double base = 5 + (double)(m % 50), lat;
	int i, bad = (x % 200) == 0;

	rollup_clear(a);
	for (i = 0; i < 60; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		lat = base * (1 + (double)((x >> 33) % 1000) / 1000.0 *
		    ((x >> 20) % 20 == 0 ? 8 : 1));
		rollup_add(a, bad && i < 10 ? "down" : "up",
		    !(bad && i < 10), bad && i < 10 ? -1 : lat);
	}
}

static void
exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(msg != NULL ? msg : sqlite3_errmsg(db));
}

static void
put_row(sqlite3 *db, sqlite3_stmt *s, int64_t id, int64_t key,
    const struct rollup_agg *a)
{
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, key);
	rollup_bind(s, 3, a);
	if (sqlite3_step(s) != SQLITE_DONE)
		die(sqlite3_errmsg(db));
	sqlite3_reset(s);
}

static int
gen_main(const char *path, long n, long days)
{
	struct store *st;
	struct rollup_agg h, d, w;
	sqlite3 *db;
	sqlite3_stmt *ih, *id, *iw, *is, *ii;
	int64_t *ids, now_h, first_h, hr, day, week;
	long m;
	double t0 = now_ms();

	ids = make_store(path, n, &st);
	if (store_close(st) != 0)
		die("store_close");
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open");
	exec_sql(db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-200000");
	if (sqlite3_prepare_v2(db, "INSERT INTO rollup_hours VALUES (?1, ?2, "
	    "?3)", -1, &ih, NULL) ||
	    sqlite3_prepare_v2(db, "INSERT INTO rollup_days VALUES (?1, ?2, "
	    "?3)", -1, &id, NULL) ||
	    sqlite3_prepare_v2(db, "INSERT INTO rollup_weeks VALUES (?1, ?2, "
	    "?3)", -1, &iw, NULL) ||
	    sqlite3_prepare_v2(db, "INSERT INTO state(monitor_id, state, "
	    "last_check_ms, latency_ms, since_ms, r_hour, r_agg) "
	    "VALUES (?1, 'up', ?2, 10, ?2, ?3, ?4)", -1, &is, NULL) ||
	    sqlite3_prepare_v2(db, "INSERT INTO incidents(monitor_id, "
	    "start_ms, end_ms, reason, error) VALUES (?1, ?2, ?3, 'timeout', "
	    "'timed out after 10 s')", -1, &ii, NULL))
		die(sqlite3_errmsg(db));
	now_h = wall() / ROLLUP_HOUR_MS;
	first_h = now_h - days * 24;
	for (m = 0; m < n; m++) {
		if (m % 100 == 0)
			exec_sql(db, "BEGIN");
		rollup_clear(&d);
		rollup_clear(&w);
		day = first_h / 24;
		week = day / 7;
		for (hr = first_h; hr < now_h; hr++) {
			if (hr / 168 != week) {
				put_row(db, iw, ids[m], week, &w);
				rollup_clear(&w);
				week = hr / 168;
			}
			if (hr / 24 != day) {
				sqlite3_bind_int64(id, 1, ids[m]);
				sqlite3_bind_int64(id, 2, day);
				rollup_bind(id, 3, &d);
				if (sqlite3_step(id) != SQLITE_DONE)
					die(sqlite3_errmsg(db));
				sqlite3_reset(id);
				rollup_clear(&d);
				day = hr / 24;
			}
			fake_hour(&h, m, hr);
			rollup_merge(&d, &h);
			rollup_merge(&w, &h);
			sqlite3_bind_int64(ih, 1, ids[m]);
			sqlite3_bind_int64(ih, 2, hr);
			rollup_bind(ih, 3, &h);
			if (sqlite3_step(ih) != SQLITE_DONE)
				die(sqlite3_errmsg(db));
			sqlite3_reset(ih);
			if (hr % (24 * 7) == m % (24 * 7)) {
				sqlite3_bind_int64(ii, 1, ids[m]);
				sqlite3_bind_int64(ii, 2, hr * ROLLUP_HOUR_MS);
				sqlite3_bind_int64(ii, 3, hr * ROLLUP_HOUR_MS +
				    600000);
				if (sqlite3_step(ii) != SQLITE_DONE)
					die(sqlite3_errmsg(db));
				sqlite3_reset(ii);
			}
		}
		sqlite3_bind_int64(id, 1, ids[m]);
		sqlite3_bind_int64(id, 2, day);
		rollup_bind(id, 3, &d);
		if (sqlite3_step(id) != SQLITE_DONE)
			die(sqlite3_errmsg(db));
		sqlite3_reset(id);
		put_row(db, iw, ids[m], week, &w);
		/* The open hour: half of it so far. */
		fake_hour(&h, m, now_h);
		h.checks = 30;
		sqlite3_bind_int64(is, 1, ids[m]);
		sqlite3_bind_int64(is, 2, wall());
		sqlite3_bind_int64(is, 3, now_h);
		rollup_bind(is, 4, &h);
		if (sqlite3_step(is) != SQLITE_DONE)
			die(sqlite3_errmsg(db));
		sqlite3_reset(is);
		if (m % 100 == 99 || m == n - 1)
			exec_sql(db, "COMMIT");
	}
	sqlite3_finalize(ih);
	sqlite3_finalize(id);
	sqlite3_finalize(iw);
	sqlite3_finalize(is);
	sqlite3_finalize(ii);
	sqlite3_close(db);
	printf("generated %ld monitors x %ld days (%lld hourly rows) in %.1f s\n",
	    n, days, (long long)n * days * 24, (now_ms() - t0) / 1000.0);
	free(ids);
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
query_main(const char *path)
{
	static const struct { const char *name; int64_t ms; } win[] = {
		{ "24h", 24 * ROLLUP_HOUR_MS }, { "30d", 30 * ROLLUP_DAY_MS },
		{ "90d", 90 * ROLLUP_DAY_MS },
	};
	struct history_monitor *mons;
	struct history_uptime *u;
	struct history *h;
	char err[512];
	double t[200], ta[5], tc[5], c1;
	int64_t *ids, now = wall();
	size_t n, i, k, w;

	if (history_open(path, &h, err, sizeof(err)) != 0)
		die(err);
	if (history_monitors(h, &mons, &n) != 0 || n == 0)
		die("no monitors");
	ids = calloc(n, sizeof(*ids));
	u = calloc(n, sizeof(*u));
	for (i = 0; i < n; i++)
		ids[i] = mons[i].id;
	for (w = 0; w < sizeof(win) / sizeof(win[0]); w++) {
		c1 = cpu_ms();
		for (k = 0; k < 200; k++) {
			double t0 = now_ms();

			if (history_uptime(h, &ids[(k * 7919) % n], 1, now,
			    win[w].ms, u) != 0)
				die("uptime");
			t[k] = now_ms() - t0;
		}
		c1 = cpu_ms() - c1;
		qsort(t, 200, sizeof(t[0]), cmp_double);
		for (k = 0; k < 5; k++) {
			double t0 = now_ms(), c0 = cpu_ms();

			if (history_uptime(h, ids, n, now, win[w].ms, u) != 0)
				die("uptime");
			ta[k] = now_ms() - t0;
			tc[k] = cpu_ms() - c0;
		}
		qsort(ta, 5, sizeof(ta[0]), cmp_double);
		qsort(tc, 5, sizeof(tc[0]), cmp_double);
		printf("%s: one monitor median %.3f ms max %.3f ms (%.3f ms CPU "
		    "each); all %zu median %.1f ms max %.1f ms (CPU median %.1f "
		    "ms min %.1f ms) (m1: uptime %.5f, %lld checks, p95 %.1f "
		    "ms)\n", win[w].name, t[100], t[199], c1 / 200, n, ta[2],
		    ta[4], tc[2], tc[0], u[0].uptime, (long long)u[0].checks,
		    u[0].latency_p95_ms);
	}
	free(ids);
	free(u);
	free(mons);
	history_close(h);
	return 0;
}

/* ---- checks: the raw history endpoint's query ---- */

/*
 * history_checks() as GET /api/monitors/NAME/checks runs it, over a big
 * file (the S6 one: 10M rows): for each of 200 monitors the newest page
 * of 50, then the page after it (the cursor), then a page of 50 from a
 * day back (since/until); wall and CPU time per call, median and max.
 */
static int
checks_main(const char *path)
{
	struct history_monitor *mons;
	struct history_check *v;
	struct history *h;
	char err[512], next[HISTORY_CURSOR_MAX];
	double t[3][200], c[3], t0, c0;
	int64_t now = wall();
	size_t n, nm, k, rows[3] = { 0, 0, 0 };
	int q;

	if (history_open(path, &h, err, sizeof(err)) != 0)
		die(err);
	if (history_monitors(h, &mons, &nm) != 0 || nm == 0)
		die("no monitors");
	for (q = 0; q < 3; q++)
		c[q] = 0;
	for (k = 0; k < 200; k++) {
		int64_t id = mons[(k * 7919) % nm].id;

		for (q = 0; q < 3; q++) {
			t0 = now_ms();
			c0 = cpu_ms();
			if (history_checks(h, id, q == 2 ? now - 86400000 -
			    3600000 : 0, q == 2 ? now - 86400000 : 0, 50,
			    q == 1 ? next : NULL, &v, &n, next) != 0)
				die("checks");
			t[q][k] = now_ms() - t0;
			c[q] += cpu_ms() - c0;
			rows[q] += n;
			free(v);
		}
	}
	for (q = 0; q < 3; q++) {
		qsort(t[q], 200, sizeof(t[q][0]), cmp_double);
		printf("%s: median %.3f ms max %.3f ms (%.3f ms CPU each), "
		    "%zu rows\n", q == 0 ? "newest 50" : q == 1 ?
		    "next 50 (cursor)" : "50 a day back", t[q][100],
		    t[q][199], c[q] / 200, rows[q]);
	}
	free(mons);
	history_close(h);
	return 0;
}
#endif

int
main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "write") == 0)
		return write_main(argv[2], atol(argv[3]), atol(argv[4]),
		    atol(argv[5]), argc > 6 ? atol(argv[6]) : 0);
#ifndef WRITE_ONLY
	if (argc >= 3 && strcmp(argv[1], "gen") == 0)
		return gen_main(argv[2], argc > 3 ? atol(argv[3]) : 10000,
		    argc > 4 ? atol(argv[4]) : 90);
	if (argc == 3 && strcmp(argv[1], "query") == 0)
		return query_main(argv[2]);
	if (argc == 3 && strcmp(argv[1], "checks") == 0)
		return checks_main(argv[2]);
#endif
	fprintf(stderr, "usage: history gen DB [MONITORS] [DAYS] | query DB | "
	    "checks DB | write DB ROWS MONITORS BATCH [FROM]\n");
	return 2;
}
