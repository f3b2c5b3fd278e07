/*
 * history -- read-only queries over checks, roll-ups and incidents
 * (history.h).
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "history.h"
#include "log.h"
#include "rollup.h"
#include "util.h"

enum {
	Q_DAYS, Q_HOURS, Q_STATE, Q_INCIDENTS, Q_WEEKS, Q_COUNT
};

static const char *const queries[Q_COUNT] = {
	[Q_DAYS] = "SELECT agg FROM rollup_days WHERE monitor_id = ?1 "
	    "AND day >= ?2 AND day <= ?3",
	[Q_HOURS] = "SELECT agg, hour FROM rollup_hours WHERE "
	    "monitor_id = ?1 AND hour >= ?2 AND hour <= ?3",
	[Q_STATE] = "SELECT r_agg, r_hour FROM state "
	    "WHERE monitor_id = ?1 AND r_hour IS NOT NULL",
	/* Newest first by the (monitor_id, start_ms) index: a monitor's
	 * incidents follow each other, so the scan stops at the first one
	 * that ended before the window (incident_overlap()). */
	[Q_INCIDENTS] = "SELECT start_ms, end_ms FROM incidents WHERE "
	    "monitor_id = ?1 AND start_ms < ?3 ORDER BY start_ms DESC",
	[Q_WEEKS] = "SELECT agg FROM rollup_weeks WHERE monitor_id = ?1 "
	    "AND week >= ?2 AND week <= ?3",
};

struct history {
	pthread_mutex_t mu;
	sqlite3 *db;		/* NULL after a failed reopen (lock()) */
	char *path;
	sqlite3_stmt *q[Q_COUNT];
	dev_t dev;		/* the file db was opened on */
	ino_t ino;
	int64_t checked_ms;	/* monotonic: when that was last compared */
};

/* Log a failed query and return WP_EIO. */
static int
failed(struct history *h, const char *what)
{
	log_err("history: %s: %s: %s", h->path, what, sqlite3_errmsg(h->db));
	return WP_EIO;
}

/* Close the connection and its statements (h->db NULL after). */
static void
conn_close(struct history *h)
{
	int i;

	for (i = 0; i < Q_COUNT; i++) {
		sqlite3_finalize(h->q[i]);
		h->q[i] = NULL;
	}
	sqlite3_close(h->db);
	h->db = NULL;
}

/*
 * Open h->path read-only with its statements prepared, and note which
 * file it is.  0, or WP_EIO / WP_EINVAL (no roll-up schema) with err set
 * and h->db NULL.
 */
static int
conn_open(struct history *h, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	struct stat sb;
	int rc, i, has = 0;

	if (stat(h->path, &sb) == 0) {
		h->dev = sb.st_dev;
		h->ino = sb.st_ino;
	}
	rc = sqlite3_open_v2(h->path, &h->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "history: %s: %s", h->path,
		    h->db != NULL ? sqlite3_errmsg(h->db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* Readers never wait for the writer in WAL mode; this covers the
	 * moment a connection recovers the WAL index.  A 16 MiB page cache
	 * holds the week and day rows of 10,000 monitors' uptime.  No
	 * mmap_size: a checkpoint that truncates the file under a mapping
	 * would end the process with SIGBUS instead of an error. */
	sqlite3_busy_timeout(h->db, 2000);
	(void)sqlite3_exec(h->db, "PRAGMA cache_size = -16384", NULL, NULL,
	    NULL);
	if (sqlite3_prepare_v2(h->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name IN ('rollup_hours', 'rollup_days', 'rollup_weeks', "
	    "'incidents')", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		snprintf(err, errlen, "history: %s: %s", h->path,
		    sqlite3_errmsg(h->db));
		goto fail;
	}
	has = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (has != 4) {
		snprintf(err, errlen, "history: %s: no roll-up tables (run "
		    "this version of watchpost once to migrate the database)",
		    h->path);
		conn_close(h);
		return WP_EINVAL;
	}
	for (i = 0; i < Q_COUNT; i++)
		if (sqlite3_prepare_v3(h->db, queries[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &h->q[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "history: %s: %s", h->path,
			    sqlite3_errmsg(h->db));
			goto fail;
		}
	return 0;
fail:
	sqlite3_finalize(s);
	conn_close(h);
	return WP_EIO;
}

int
history_open(const char *path, struct history **out, char *err,
    size_t errlen)
{
	struct history *h;
	int rc;

	*out = NULL;
	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "history: no database path");
		return WP_EINVAL;
	}
	h = xcalloc(1, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	h->path = xstrdup(path);
	if ((rc = conn_open(h, err, errlen)) != 0) {
		history_close(h);
		return rc;
	}
	h->checked_ms = mono_ms();
	*out = h;
	return 0;
}

void
history_close(struct history *h)
{
	if (h == NULL)
		return;
	conn_close(h);
	pthread_mutex_destroy(&h->mu);
	free(h->path);
	free(h);
}

/*
 * Take h->mu for a query.  At most once a second, first see whether the
 * path still names the file the connection opened: the agent's store
 * recreates a deleted or replaced database (store.h), and a connection to
 * the old file would go on reading history that no longer grows.  0 with
 * the lock held, or WP_EIO (logged) with it released.
 */
static int
lock(struct history *h)
{
	char err[512];
	struct stat sb;
	int64_t now = mono_ms();

	pthread_mutex_lock(&h->mu);
	if (h->db != NULL && now - h->checked_ms < 1000)
		return 0;
	h->checked_ms = now;
	if (h->db != NULL && (stat(h->path, &sb) != 0 ||
	    (sb.st_dev == h->dev && sb.st_ino == h->ino)))
		return 0;	/* the same file, or none there yet */
	conn_close(h);
	if (conn_open(h, err, sizeof(err)) == 0) {
		log_info("history: %s: reopened (the file was recreated)",
		    h->path);
		return 0;
	}
	log_err("%s", err);
	pthread_mutex_unlock(&h->mu);
	return WP_EIO;
}

int
history_monitor_id(struct history *h, const char *name, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int rc = 0, step;

	if (h == NULL || name == NULL || id == NULL)
		return WP_EINVAL;
	*id = 0;
	if (lock(h) != 0)
		return WP_EIO;
	if (sqlite3_prepare_v2(h->db, "SELECT id FROM monitors WHERE name = ?1",
	    -1, &s, NULL) != SQLITE_OK) {
		rc = failed(h, "monitor id");
		goto out;
	}
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	if ((step = sqlite3_step(s)) == SQLITE_ROW)
		*id = sqlite3_column_int64(s, 0);
	else if (step != SQLITE_DONE)
		rc = failed(h, "monitor id");
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

static void
col_text(sqlite3_stmt *s, int i, char *dst, size_t len)
{
	const char *p = (const char *)sqlite3_column_text(s, i);

	str_copy(dst, len, p != NULL ? p : "");
}

int
history_monitors(struct history *h, struct history_monitor **out, size_t *n)
{
	struct history_monitor *v = NULL;
	sqlite3_stmt *s = NULL;
	size_t len = 0, cap = 0;
	int rc = 0, step;

	if (h == NULL || out == NULL || n == NULL)
		return WP_EINVAL;
	*out = NULL;
	*n = 0;
	if (lock(h) != 0)
		return WP_EIO;
	if (sqlite3_prepare_v2(h->db, "SELECT m.id, m.name, m.type, "
	    "coalesce(s.state, '') FROM monitors AS m LEFT JOIN state AS s "
	    "ON s.monitor_id = m.id ORDER BY m.name", -1, &s, NULL) !=
	    SQLITE_OK) {
		rc = failed(h, "monitors");
		goto out;
	}
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[len].id = sqlite3_column_int64(s, 0);
		col_text(s, 1, v[len].name, sizeof(v[len].name));
		col_text(s, 2, v[len].type, sizeof(v[len].type));
		col_text(s, 3, v[len].state, sizeof(v[len].state));
		len++;
	}
	if (step != SQLITE_DONE) {
		rc = failed(h, "monitors");
		free(v);
		goto out;
	}
	*out = v;
	*n = len;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

/* ---- checks ---- */

/* The cursor token: "c" then the last row's ts and id in hex, so the next
 * page starts strictly below (ts, id) in the (monitor_id, ts, id) order. */
static int
parse_cursor(const char *c, int64_t *ts, int64_t *id)
{
	unsigned long long a, b;
	int used = 0;

	if (c == NULL || *c == '\0') {
		*ts = INT64_MAX;
		*id = INT64_MAX;
		return 0;
	}
	if (strlen(c) >= HISTORY_CURSOR_MAX || c[0] != 'c' ||
	    !isxdigit((unsigned char)c[1]) ||
	    sscanf(c, "c%16llx.%16llx%n", &a, &b, &used) != 2 ||
	    c[used] != '\0' || a > INT64_MAX || b > INT64_MAX || b == 0)
		return WP_EINVAL;
	/* Only the form this file writes: no sign, no 0x, no upper case. */
	for (used = 1; c[used] != '\0'; used++)
		if (!isdigit((unsigned char)c[used]) && c[used] != '.' &&
		    (c[used] < 'a' || c[used] > 'f'))
			return WP_EINVAL;
	*ts = (int64_t)a;
	*id = (int64_t)b;
	return 0;
}

int
history_checks(struct history *h, int64_t monitor_id, int64_t since_ms,
    int64_t until_ms, size_t limit, const char *cursor,
    struct history_check **out, size_t *n, char *next)
{
	struct history_check *v = NULL, *e;
	sqlite3_stmt *s = NULL;
	int64_t cts, cid;
	size_t len = 0;
	int rc = 0, step;

	if (h == NULL || out == NULL || n == NULL || next == NULL ||
	    limit == 0 || limit > HISTORY_PAGE_MAX)
		return WP_EINVAL;
	*out = NULL;
	*n = 0;
	*next = '\0';
	if (parse_cursor(cursor, &cts, &cid) != 0)
		return WP_EINVAL;
	if (until_ms <= 0)
		until_ms = INT64_MAX;
	if (lock(h) != 0)
		return WP_EIO;
	/* One row more than asked says whether a next page exists. */
	if (sqlite3_prepare_v2(h->db, "SELECT id, ts, ok, latency_ms, "
	    "status_code, attempts, reason, error, agent, location, grid "
	    "FROM checks WHERE monitor_id = ?1 AND ts >= ?2 AND ts < ?3 "
	    "AND (ts < ?4 OR (ts = ?4 AND id < ?5)) "
	    "ORDER BY ts DESC, id DESC LIMIT ?6", -1, &s, NULL) != SQLITE_OK) {
		rc = failed(h, "checks");
		goto out;
	}
	sqlite3_bind_int64(s, 1, monitor_id);
	sqlite3_bind_int64(s, 2, since_ms);
	sqlite3_bind_int64(s, 3, until_ms);
	sqlite3_bind_int64(s, 4, cts);
	sqlite3_bind_int64(s, 5, cid);
	sqlite3_bind_int64(s, 6, (int64_t)limit + 1);
	v = xcalloc(limit + 1, sizeof(*v));
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		e = &v[len++];
		e->id = sqlite3_column_int64(s, 0);
		e->ts_ms = sqlite3_column_int64(s, 1);
		e->ok = sqlite3_column_int(s, 2);
		e->latency_ms = sqlite3_column_type(s, 3) == SQLITE_NULL ? -1 :
		    sqlite3_column_double(s, 3);
		e->status_code = sqlite3_column_type(s, 4) == SQLITE_NULL ?
		    -1 : sqlite3_column_int(s, 4);
		e->attempts = sqlite3_column_int(s, 5);
		col_text(s, 6, e->reason, sizeof(e->reason));
		col_text(s, 7, e->error, sizeof(e->error));
		col_text(s, 8, e->agent, sizeof(e->agent));
		col_text(s, 9, e->location, sizeof(e->location));
		e->grid = sqlite3_column_type(s, 10) == SQLITE_NULL ? -1 :
		    sqlite3_column_int64(s, 10);
	}
	if (step != SQLITE_DONE) {
		rc = failed(h, "checks");
		goto out;
	}
	if (len > limit) {
		len = limit;
		snprintf(next, HISTORY_CURSOR_MAX, "c%" PRIx64 ".%" PRIx64,
		    (uint64_t)v[len - 1].ts_ms, (uint64_t)v[len - 1].id);
	}
	if (len > 0) {
		*out = v;
		v = NULL;
	}
	*n = len;
out:
	free(v);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

/* ---- roll-ups ---- */

/* Floor division for possibly negative times. */
static int64_t
div_floor(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/*
 * Add the rows of query Q (Q_DAYS or Q_HOURS: monitor ID, keys FROM..TO
 * inclusive) into A.  h->mu held.  0 or WP_EIO.
 */
static int
add_range(struct history *h, int q, int64_t id, int64_t from, int64_t to,
    struct rollup_agg *a)
{
	sqlite3_stmt *s = h->q[q];
	int step;

	if (from > to)
		return 0;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, from);
	sqlite3_bind_int64(s, 3, to);
	/* A malformed row (written by something else) is skipped. */
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		if (rollup_read(s, 0, a) != 0)
			log_warn("history: %s: monitor id %" PRId64 ": a malformed "
			    "roll-up row is skipped", h->path, id);
	sqlite3_reset(s);
	if (step != SQLITE_DONE)
		return failed(h, "roll-ups");
	return 0;
}

/* Add the monitor's open hour (its state row) into A when that hour is in
 * FROM..TO (hours).  *hour receives it (-1: none).  h->mu held. */
static int
add_open_hour(struct history *h, int64_t id, int64_t from, int64_t to,
    struct rollup_agg *a, int64_t *hour)
{
	sqlite3_stmt *s = h->q[Q_STATE];
	int step;
	int64_t hr;

	*hour = -1;
	sqlite3_bind_int64(s, 1, id);
	if ((step = sqlite3_step(s)) == SQLITE_ROW) {
		hr = sqlite3_column_int64(s, 1);
		*hour = hr;
		if (hr >= from && hr <= to)
			(void)rollup_read(s, 0, a);
	}
	sqlite3_reset(s);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return failed(h, "open hour");
	return 0;
}

/* Seconds of the incidents of monitor ID inside [from_ms, to_ms) and how
 * many overlap it.  h->mu held. */
static int
incident_overlap(struct history *h, int64_t id, int64_t from_ms,
    int64_t to_ms, int64_t now_ms, double *secs, int64_t *count)
{
	sqlite3_stmt *s = h->q[Q_INCIDENTS];
	int64_t a, b;
	int step;

	*secs = 0;
	*count = 0;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 3, to_ms);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		a = sqlite3_column_int64(s, 0);
		b = sqlite3_column_type(s, 1) == SQLITE_NULL ? now_ms :
		    sqlite3_column_int64(s, 1);
		if (b <= from_ms) {
			step = SQLITE_DONE;
			break;
		}
		if (a < from_ms)
			a = from_ms;
		if (b > to_ms)
			b = to_ms;
		(*count)++;
		if (b > a)
			*secs += (double)(b - a) / 1000.0;
	}
	sqlite3_reset(s);
	if (step != SQLITE_DONE)
		return failed(h, "incidents");
	return 0;
}

static void
fill_latency(const struct rollup_agg *a, double *avg, double *mn, double *mx,
    double *p50, double *p95, double *p99)
{
	*avg = a->lat_n > 0 ? a->lat_sum / (double)a->lat_n : NAN;
	if (mn != NULL)
		*mn = a->lat_n > 0 ? a->lat_min : NAN;
	*mx = a->lat_n > 0 ? a->lat_max : NAN;
	*p50 = rollup_quantile(a, 0.50);
	*p95 = rollup_quantile(a, 0.95);
	*p99 = rollup_quantile(a, 0.99);
}

/*
 * One monitor's window (h->mu held), with as few rows as the levels
 * allow: the hours up to the first midnight from rollup_hours, the days up
 * to the first week boundary from rollup_days, whole weeks to now from
 * rollup_weeks (a 90-day window is about 30 rows), and the open hour.
 * Each level holds only flushed hours, the current day and week included,
 * and the open hour is in none of them, so nothing counts twice.
 */
static int
uptime_one(struct history *h, int64_t id, int64_t now_ms, int64_t window_ms,
    struct history_uptime *u)
{
	struct rollup_agg a;
	int64_t now_h, from_h, day1, week1, now_d, now_w, open_h;
	int rc;

	memset(u, 0, sizeof(*u));
	rollup_clear(&a);
	now_h = div_floor(now_ms, ROLLUP_HOUR_MS);
	from_h = now_h - window_ms / ROLLUP_HOUR_MS;
	now_d = div_floor(now_h, 24);
	now_w = div_floor(now_d, 7);
	day1 = div_floor(from_h + 23, 24);	/* first whole day */
	week1 = div_floor(day1 + 6, 7);		/* first whole week */
	if (day1 > now_d)
		rc = add_range(h, Q_HOURS, id, from_h, now_h, &a);
	else if ((rc = add_range(h, Q_HOURS, id, from_h, day1 * 24 - 1,
	    &a)) != 0)
		;
	else if (week1 > now_w)
		rc = add_range(h, Q_DAYS, id, day1, now_d, &a);
	else if ((rc = add_range(h, Q_DAYS, id, day1, week1 * 7 - 1, &a)) == 0)
		rc = add_range(h, Q_WEEKS, id, week1, now_w, &a);
	if (rc != 0 || (rc = add_open_hour(h, id, from_h, now_h, &a,
	    &open_h)) != 0)
		return rc;
	u->from_ms = from_h * ROLLUP_HOUR_MS;
	u->to_ms = now_ms;
	u->checks = a.checks;
	u->up = a.up;
	u->degraded = a.degraded;
	u->down = a.down;
	u->failed = a.failed;
	u->uptime = rollup_uptime(&a);
	fill_latency(&a, &u->latency_avg_ms, &u->latency_min_ms,
	    &u->latency_max_ms, &u->latency_p50_ms, &u->latency_p95_ms,
	    &u->latency_p99_ms);
	return incident_overlap(h, id, u->from_ms, now_ms, now_ms,
	    &u->down_seconds, &u->incidents);
}

int
history_uptime(struct history *h, const int64_t *ids, size_t n,
    int64_t now_ms, int64_t window_ms, struct history_uptime *out)
{
	size_t i;
	int rc = 0;

	if (h == NULL || (n > 0 && (ids == NULL || out == NULL)) ||
	    window_ms < ROLLUP_HOUR_MS || window_ms % ROLLUP_HOUR_MS != 0)
		return WP_EINVAL;
	if (lock(h) != 0)
		return WP_EIO;
	/* One read transaction: every monitor from the same snapshot. */
	if (n > 1)
		sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL);
	for (i = 0; i < n && rc == 0; i++)
		rc = uptime_one(h, ids[i], now_ms, window_ms, &out[i]);
	if (!sqlite3_get_autocommit(h->db))
		sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int
history_incidents(struct history *h, int64_t monitor_id, size_t limit,
    int64_t now_ms, struct history_incident **out, size_t *n)
{
	struct history_incident *v = NULL, *e;
	sqlite3_stmt *s = NULL;
	size_t len = 0, cap = 0;
	int rc = 0, step;

	if (h == NULL || out == NULL || n == NULL || limit == 0)
		return WP_EINVAL;
	*out = NULL;
	*n = 0;
	if (lock(h) != 0)
		return WP_EIO;
	if (sqlite3_prepare_v2(h->db, "SELECT id, start_ms, end_ms, reason, "
	    "error FROM incidents WHERE monitor_id = ?1 "
	    "ORDER BY start_ms DESC, id DESC LIMIT ?2", -1, &s, NULL) !=
	    SQLITE_OK) {
		rc = failed(h, "incidents");
		goto out;
	}
	sqlite3_bind_int64(s, 1, monitor_id);
	sqlite3_bind_int64(s, 2, (int64_t)(limit > INT64_MAX ? INT64_MAX :
	    limit));
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		e = &v[len++];
		memset(e, 0, sizeof(*e));
		e->id = sqlite3_column_int64(s, 0);
		e->start_ms = sqlite3_column_int64(s, 1);
		e->end_ms = sqlite3_column_type(s, 2) == SQLITE_NULL ? 0 :
		    sqlite3_column_int64(s, 2);
		e->duration_s = (double)((e->end_ms != 0 ? e->end_ms : now_ms) -
		    e->start_ms) / 1000.0;
		if (e->duration_s < 0)
			e->duration_s = 0;
		col_text(s, 3, e->reason, sizeof(e->reason));
		col_text(s, 4, e->error, sizeof(e->error));
	}
	if (step != SQLITE_DONE) {
		rc = failed(h, "incidents");
		free(v);
		goto out;
	}
	*out = v;
	*n = len;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int
history_daily(struct history *h, int64_t monitor_id, int64_t now_ms,
    int days, struct history_day *out)
{
	struct rollup_agg *a = NULL, open;
	int64_t today, first, d, hr, from, to;
	int i, rc = 0;

	if (h == NULL || out == NULL || days <= 0 || days > 36500)
		return WP_EINVAL;
	today = div_floor(now_ms, ROLLUP_DAY_MS);
	first = today - days + 1;
	if (lock(h) != 0)
		return WP_EIO;
	a = xcalloc((size_t)days, sizeof(*a));
	sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL);
	/* Q_DAYS gives no key column: one day per query is 90 look-ups of
	 * the primary key, cheaper than a second statement to keep. */
	for (i = 0; i < days && rc == 0; i++)
		rc = add_range(h, Q_DAYS, monitor_id, first + i, first + i,
		    &a[i]);
	rollup_clear(&open);
	if (rc == 0)
		rc = add_open_hour(h, monitor_id, first * 24, today * 24 + 23,
		    &open, &hr);
	if (rc == 0 && hr >= first * 24 && hr <= today * 24 + 23)
		rollup_merge(&a[div_floor(hr, 24) - first], &open);
	for (i = 0; i < days && rc == 0; i++) {
		d = first + i;
		out[i].day_ms = d * ROLLUP_DAY_MS;
		out[i].checks = a[i].checks;
		out[i].up = a[i].up;
		out[i].degraded = a[i].degraded;
		out[i].down = a[i].down;
		out[i].uptime = rollup_uptime(&a[i]);
		from = d * ROLLUP_DAY_MS;
		to = from + ROLLUP_DAY_MS < now_ms ? from + ROLLUP_DAY_MS :
		    now_ms;
		rc = incident_overlap(h, monitor_id, from, to, now_ms,
		    &out[i].down_seconds, &out[i].incidents);
	}
	if (!sqlite3_get_autocommit(h->db))
		sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&h->mu);
	free(a);
	return rc;
}

int
history_hourly(struct history *h, int64_t monitor_id, int64_t now_ms,
    int hours, struct history_hour *out)
{
	struct rollup_agg a, open;
	int64_t now_h, first, hr;
	int i, rc = 0;

	if (h == NULL || out == NULL || hours <= 0 || hours > 24 * 400)
		return WP_EINVAL;
	now_h = div_floor(now_ms, ROLLUP_HOUR_MS);
	first = now_h - hours + 1;
	if (lock(h) != 0)
		return WP_EIO;
	sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL);
	rollup_clear(&open);
	rc = add_open_hour(h, monitor_id, first, now_h, &open, &hr);
	for (i = 0; i < hours && rc == 0; i++) {
		rollup_clear(&a);
		rc = add_range(h, Q_HOURS, monitor_id, first + i, first + i,
		    &a);
		if (hr == first + i)
			rollup_merge(&a, &open);
		out[i].hour_ms = (first + i) * ROLLUP_HOUR_MS;
		out[i].checks = a.checks;
		fill_latency(&a, &out[i].latency_avg_ms, NULL,
		    &out[i].latency_max_ms, &out[i].latency_p50_ms,
		    &out[i].latency_p95_ms, &out[i].latency_p99_ms);
	}
	if (!sqlite3_get_autocommit(h->db))
		sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int
history_parse_window(const char *s, int64_t *ms)
{
	char *end;
	long long v;

	if (s == NULL || !isdigit((unsigned char)*s))
		return WP_EINVAL;
	v = strtoll(s, &end, 10);
	if (end == s || end[0] == '\0' || end[1] != '\0' || v <= 0 ||
	    v > 400 * 24)
		return WP_EINVAL;
	if (*end == 'h')
		*ms = (int64_t)v * ROLLUP_HOUR_MS;
	else if (*end == 'd' && v <= 400)
		*ms = (int64_t)v * ROLLUP_DAY_MS;
	else
		return WP_EINVAL;
	return 0;
}

/* ---- appended for the status page ---- */

int
history_incidents_since(struct history *h, int64_t since_ms,
    int64_t now_ms, int (*keep)(void *arg, int64_t monitor_id), void *arg,
    size_t limit, struct history_incident_of **out, size_t *n,
    size_t *total, size_t *open)
{
	struct history_incident_of *v = NULL, *e;
	sqlite3_stmt *s = NULL;
	size_t len = 0;
	int64_t mid, end;
	int rc = 0, step;

	if (h == NULL || keep == NULL || out == NULL || n == NULL ||
	    total == NULL || open == NULL)
		return WP_EINVAL;
	*out = NULL;
	*n = *total = *open = 0;
	pthread_mutex_lock(&h->mu);
	if (sqlite3_prepare_v2(h->db, "SELECT monitor_id, id, start_ms, "
	    "end_ms, reason FROM incidents WHERE end_ms IS NULL OR "
	    "end_ms >= ?1 ORDER BY start_ms DESC, id DESC", -1, &s, NULL) !=
	    SQLITE_OK) {
		rc = failed(h, "incidents");
		goto out;
	}
	sqlite3_bind_int64(s, 1, since_ms);
	if (limit > 0)
		v = xcalloc(limit, sizeof(*v));
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		mid = sqlite3_column_int64(s, 0);
		if (!keep(arg, mid))
			continue;
		end = sqlite3_column_type(s, 3) == SQLITE_NULL ? 0 :
		    sqlite3_column_int64(s, 3);
		(*total)++;
		*open += end == 0;
		if (len == limit)
			continue;
		e = &v[len++];
		e->monitor_id = mid;
		e->inc.id = sqlite3_column_int64(s, 1);
		e->inc.start_ms = sqlite3_column_int64(s, 2);
		e->inc.end_ms = end;
		e->inc.duration_s = (double)((end != 0 ? end : now_ms) -
		    e->inc.start_ms) / 1000.0;
		if (e->inc.duration_s < 0)
			e->inc.duration_s = 0;
		col_text(s, 4, e->inc.reason, sizeof(e->inc.reason));
	}
	if (step != SQLITE_DONE) {
		rc = failed(h, "incidents");
		goto out;
	}
	if (len > 0) {
		*out = v;
		v = NULL;
	}
	*n = len;
out:
	free(v);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&h->mu);
	return rc;
}
