/*
 * history -- read-only queries over what the store keeps: raw checks with
 * cursor paging, uptime per window, incidents, daily uptime and hourly
 * latency.  Used by the API (/api/monitors/NAME/{checks,uptime,incidents}),
 * `watchpost report` and the status page.
 *
 * A struct history owns one read-only connection (SQLITE_OPEN_READONLY,
 * WAL), its own, so a query never takes the writer's lock and never waits
 * for it: a reader sees the last committed transaction.  Calls are
 * serialised on the handle by a mutex, so any thread may use it; open one
 * per thread for parallel queries.  When the path comes to name another
 * file (the store recreates a deleted or replaced database), the handle
 * reopens it within a second.
 *
 * Where the numbers come from (store-writer.c keeps them in the checks'
 * transactions): `rollup_hours`, `rollup_days` and `rollup_weeks` hold
 * one aggregate per monitor and UTC hour, day or week (days since the
 * epoch / 7) (rollup.h), the `state` row the aggregate of the hour its
 * monitor was last checked in, not yet flushed, and `incidents` one row
 * per DOWN period.  A window of N days is the hour now under way plus the
 * N * 24 whole hours before it, read with as few rows as the levels allow
 * (its first partial day by hours, then days up to a week boundary, then
 * weeks: about 30 rows for 90 days).
 * Uptime counts checks by the state they left: 1 - down / (up + degraded +
 * down) (pending and paused checks count for neither); down_seconds is the
 * window's overlap with the incidents.
 *
 * Every call returns 0, WP_EINVAL (bad argument, an invalid cursor), or
 * WP_EIO (the database failed; message logged).  Times are unix ms.
 */
#ifndef CORE_HISTORY_H
#define CORE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

struct history;

#define HISTORY_CURSOR_MAX	48	/* bytes of a cursor token, with NUL */
#define HISTORY_PAGE_MAX	1000	/* most checks one page returns */

/*
 * Open PATH read-only.  The file must exist and carry the roll-up schema
 * (an agent of this version has opened it once).  0 and *out, or WP_EIO /
 * WP_EINVAL with a message naming PATH in err.
 */
int history_open(const char *path, struct history **out, char *err,
    size_t errlen);
void history_close(struct history *h);	/* NULL is fine */

/* The id of monitor NAME in the database: 0 with *id (0: no such monitor). */
int history_monitor_id(struct history *h, const char *name, int64_t *id);

struct history_monitor {
	int64_t id;
	char name[128];
	char type[32];
	char state[16];		/* "" when it was never checked */
};
/* Every monitor in the database, by name (caller frees *out). */
int history_monitors(struct history *h, struct history_monitor **out,
    size_t *n);

struct history_check {
	int64_t id;
	int64_t ts_ms;
	int ok;
	double latency_ms;	/* < 0: none */
	int status_code;	/* < 0: none */
	int attempts;
	char reason[24];	/* reason_name(): "ok", "timeout", ... */
	char error[256];	/* "" when none */
	/* Cluster mode (store_set_cluster()): the agent and location that
	 * made the check, and its grid point; "" and -1 for a row without
	 * them (single mode, older rows).  Names are at most 128 characters
	 * (CFG_NAME_MAX). */
	char agent[129];
	char location[129];
	int64_t grid;
};

/*
 * Checks of MONITOR_ID with since_ms <= ts < until_ms (0: unbounded),
 * newest first, at most LIMIT (1..HISTORY_PAGE_MAX), after CURSOR (NULL or
 * "" for the first page; else a `next` this call returned).  Pages never
 * repeat or skip a row, even while new rows arrive.  *out (caller frees;
 * NULL when *n is 0); NEXT (HISTORY_CURSOR_MAX bytes) receives the token
 * of the page after this one, "" when this one is the last.
 */
int history_checks(struct history *h, int64_t monitor_id, int64_t since_ms,
    int64_t until_ms, size_t limit, const char *cursor,
    struct history_check **out, size_t *n, char *next);

struct history_uptime {
	int64_t from_ms, to_ms;	/* the window: from the start of its first
				   hour to now */
	int64_t checks, up, degraded, down, failed;
	double uptime;		/* fraction 0..1; NAN: no up/degraded/down
				   check in the window */
	double down_seconds;	/* incidents' overlap with the window */
	int64_t incidents;	/* incidents overlapping the window */
	double latency_avg_ms, latency_min_ms, latency_max_ms;
	double latency_p50_ms, latency_p95_ms, latency_p99_ms;	/* NAN: none */
};

/*
 * Uptime of each of the N monitors in IDS over the WINDOW_MS (a whole
 * number of hours, at least one) before NOW_MS, into out[0..n).  For a
 * status page of 10,000 monitors this is one call (statements are
 * prepared once).
 */
int history_uptime(struct history *h, const int64_t *ids, size_t n,
    int64_t now_ms, int64_t window_ms, struct history_uptime *out);

struct history_incident {
	int64_t id;
	int64_t start_ms;
	int64_t end_ms;		/* 0 while open */
	double duration_s;	/* to now while open */
	char reason[24];
	char error[256];
};

/* MONITOR_ID's incidents, newest first, at most LIMIT; caller frees. */
int history_incidents(struct history *h, int64_t monitor_id, size_t limit,
    int64_t now_ms, struct history_incident **out, size_t *n);

struct history_day {
	int64_t day_ms;		/* UTC midnight */
	int64_t checks, up, degraded, down;
	double uptime;		/* NAN: no data */
	double down_seconds;
	int64_t incidents;	/* incidents that overlap the day */
};

/* The DAYS UTC days up to and including NOW_MS's, oldest first, into
 * out[0..days) (the 90 bars of a status page). */
int history_daily(struct history *h, int64_t monitor_id, int64_t now_ms,
    int days, struct history_day *out);

struct history_hour {
	int64_t hour_ms;
	int64_t checks;
	double latency_avg_ms, latency_p50_ms, latency_p95_ms,
	    latency_p99_ms, latency_max_ms;	/* NAN: no latency */
};

/* The HOURS hours up to and including NOW_MS's, oldest first, into
 * out[0..hours) (a 24-hour latency sparkline). */
int history_hourly(struct history *h, int64_t monitor_id, int64_t now_ms,
    int hours, struct history_hour *out);

/*
 * Parse a window or age: "24h", "7d", "30d", "90d", "90m" is refused:
 * whole hours or days only, 1h to 400d.  0 and *ms, or WP_EINVAL.
 */
int history_parse_window(const char *s, int64_t *ms);

/* ---- appended for the status page (statuspage.c) ---- */

struct history_incident_of {
	int64_t monitor_id;
	struct history_incident inc;	/* error is left empty: the page
					   shows only the reason */
};

/*
 * The incidents, of every monitor KEEP(ARG, monitor_id) accepts, that are
 * open or ended at or after SINCE_MS: newest first, at most LIMIT of them
 * into *out (caller frees; NULL when *n is 0).  *total and *open count
 * all that match (open: end 0), LIMIT or not.  One scan of the incidents
 * table in one read transaction.
 */
int history_incidents_since(struct history *h, int64_t since_ms,
    int64_t now_ms, int (*keep)(void *arg, int64_t monitor_id), void *arg,
    size_t limit, struct history_incident_of **out, size_t *n,
    size_t *total, size_t *open);

#endif
