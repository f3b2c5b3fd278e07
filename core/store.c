/*
 * store -- SQLite persistence, the open and read side: opening and
 * checking the file, schema migrations, and the synchronous calls of the
 * start-up, reload and API paths (store_sync_monitors(), store_load_*(),
 * store_last_measurements(), store_get_stats()).  The writer thread, its
 * queue and the file watch are in store-writer.c; what both share is in
 * store-int.h.
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "log.h"
#include "rollup.h"
#include "store-int.h"
#include "util.h"

#define SCHEMA_VERSION	(int)(sizeof(migrations) / sizeof(migrations[0]))
#define QUICK_CHECK_MS	5000	/* the start-up check's time cap */

/* SQL for each schema version; migration i brings version i to i + 1. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE IF NOT EXISTS meta("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL);"
	"CREATE TABLE monitors("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  type TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL);"
	"CREATE TABLE checks("
	"  id INTEGER PRIMARY KEY,"
	"  monitor_id INTEGER NOT NULL REFERENCES monitors(id),"
	"  ts INTEGER NOT NULL,"
	"  ok INTEGER NOT NULL,"
	"  latency_ms REAL,"
	"  status_code INTEGER,"
	"  error TEXT,"
	"  reason TEXT,"
	"  attempts INTEGER,"
	"  dns_ms REAL,"
	"  connect_ms REAL,"
	"  tls_ms REAL,"
	"  first_byte_ms REAL,"
	"  cert_expiry INTEGER);"
	"CREATE INDEX checks_monitor_ts ON checks(monitor_id, ts);"
	"CREATE INDEX checks_ts ON checks(ts);"
	"CREATE TABLE state("
	"  monitor_id INTEGER PRIMARY KEY REFERENCES monitors(id),"
	"  state TEXT NOT NULL,"
	"  last_check_ms INTEGER,"
	"  latency_ms REAL,"
	"  since_ms INTEGER NOT NULL);"
	/* AUTOINCREMENT: sqlite_sequence remembers the largest id ever
	 * inserted, so store_max_alert_id() survives delivered rows. */
	"CREATE TABLE outbox("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  monitor_id INTEGER NOT NULL REFERENCES monitors(id),"
	"  alert_name TEXT NOT NULL,"
	"  payload TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  last_attempt_ms INTEGER);",
	/* 1 -> 2: named measurements.  Without a rowid: the rows are read
	 * and deleted by check_id, the primary key's first column, which
	 * also serves the cascade when retention deletes their checks. */
	"CREATE TABLE measurements("
	"  check_id INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  value REAL NOT NULL,"
	"  PRIMARY KEY(check_id, name)) WITHOUT ROWID;",
	/* 2 -> 3: the transition policy's counters (policy.h), so
	 * down_after/up_after runs, reminders and escalations survive a
	 * restart. */
	"ALTER TABLE state ADD COLUMN streak INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE state ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE state ADD COLUMN notified_ms INTEGER;"
	"ALTER TABLE state ADD COLUMN escalated_ms INTEGER NOT NULL DEFAULT 0;",
	/* 3 -> 4: roll-ups and incidents (history.h).  The open hour of
	 * each monitor rides on its state row, which every check rewrites
	 * anyway (an UPSERT of a roll-up row per check cost 20% more per
	 * row); hours and days are flushed into their tables as they end.
	 * Each aggregate is one BLOB (rollup.h).  Weeks (days since the
	 * epoch / 7) keep a 90-day window at about 30 rows a monitor.
	 * The backfill reads the raw rows once (retention_days bounds
	 * them): without a state per check, a failed check counts as down
	 * and each run of failed checks as an incident. */
	"ALTER TABLE state ADD COLUMN r_hour INTEGER;"
	"ALTER TABLE state ADD COLUMN r_agg BLOB;"
	"CREATE TABLE rollup_hours("
	"  monitor_id INTEGER NOT NULL REFERENCES monitors(id),"
	"  hour INTEGER NOT NULL,"
	"  agg BLOB NOT NULL,"
	"  PRIMARY KEY(monitor_id, hour)) WITHOUT ROWID;"
	"CREATE TABLE rollup_days("
	"  monitor_id INTEGER NOT NULL REFERENCES monitors(id),"
	"  day INTEGER NOT NULL,"
	"  agg BLOB NOT NULL,"
	"  PRIMARY KEY(monitor_id, day)) WITHOUT ROWID;"
	"CREATE TABLE rollup_weeks("
	"  monitor_id INTEGER NOT NULL REFERENCES monitors(id),"
	"  week INTEGER NOT NULL,"
	"  agg BLOB NOT NULL,"
	"  PRIMARY KEY(monitor_id, week)) WITHOUT ROWID;"
	"CREATE TABLE incidents("
	"  id INTEGER PRIMARY KEY,"
	"  monitor_id INTEGER NOT NULL REFERENCES monitors(id),"
	"  start_ms INTEGER NOT NULL,"
	"  end_ms INTEGER,"
	"  reason TEXT,"
	"  error TEXT);"
	"CREATE INDEX incidents_monitor_start ON incidents(monitor_id, start_ms);"
	"CREATE INDEX incidents_open ON incidents(monitor_id) "
	"  WHERE end_ms IS NULL;"
	"INSERT INTO rollup_hours SELECT monitor_id, ts / 3600000,"
	"  wp_rollup(ok, latency_ms) FROM checks"
	"  GROUP BY monitor_id, ts / 3600000;"
	"INSERT INTO rollup_days SELECT monitor_id, hour / 24,"
	"  wp_rollup_merge(agg) FROM rollup_hours GROUP BY monitor_id, hour / 24;"
	"INSERT INTO rollup_weeks SELECT monitor_id, day / 7,"
	"  wp_rollup_merge(agg) FROM rollup_days GROUP BY monitor_id, day / 7;"
	"WITH s AS (SELECT monitor_id, ts, ok, reason, error,"
	"    lag(ok, 1, 1) OVER (PARTITION BY monitor_id ORDER BY ts, id) AS prev"
	"    FROM checks)"
	"  INSERT INTO incidents(monitor_id, start_ms, end_ms, reason, error)"
	"  SELECT monitor_id, ts, (SELECT min(c.ts) FROM checks AS c"
	"    WHERE c.monitor_id = s.monitor_id AND c.ts > s.ts AND c.ok = 1),"
	"    reason, error FROM s WHERE ok = 0 AND prev = 1 ORDER BY ts;",
	/* 4 -> 5: holds (hold.h).  checks.maintenance flags a check made
	 * while a maintenance window or silence held the monitor's alerts;
	 * silences persist POST /api/silences (AUTOINCREMENT: an id is
	 * never reused, so DELETE /api/silences/ID names one silence). */
	"ALTER TABLE checks ADD COLUMN maintenance INTEGER NOT NULL "
	"  DEFAULT 0;"
	"CREATE TABLE silences("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  monitors TEXT NOT NULL,"
	"  until_ms INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  comment TEXT);"
	/* A held monitor's state before its hold, for a restart. */
	"CREATE TABLE holds("
	"  monitor_id INTEGER PRIMARY KEY REFERENCES monitors(id),"
	"  before TEXT NOT NULL,"
	"  since_ms INTEGER NOT NULL,"
	"  held_state TEXT,"
	"  held_at INTEGER);",
	/* 5 -> 6: a cheaper row (BENCHMARKS.md, "Storage cost per row").
	 * Retention walks the rowid ranges (rows arrive nearly in time
	 * order), so the ts index, a fifth of a row's cost, goes.
	 * state.r_id: the newest check counted in r_agg, now that the state
	 * row is written on change (store-writer.c, "The state row"); NULL
	 * on a row an older version wrote, which wrote it per check. */
	"DROP INDEX IF EXISTS checks_ts;"
	"ALTER TABLE state ADD COLUMN r_id INTEGER;",
	/* 6 -> 7: in cluster mode a check row says which agent made it, from
	 * which location, for which point of the monitor's wall-clock grid
	 * (cluster.h), so the rows of all agents' files can be put together
	 * and a check made twice found.  NULL in single mode and on older
	 * rows. */
	"ALTER TABLE checks ADD COLUMN agent TEXT;"
	"ALTER TABLE checks ADD COLUMN location TEXT;"
	"ALTER TABLE checks ADD COLUMN grid INTEGER;",
};

/* Run SQL with no result rows.  0, or WP_EIO with the message in err. */
int
st_exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	str_copy(err, errlen, msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return WP_EIO;
}

/* One integer from a single-row query, or WP_EIO. */
int
st_query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = WP_EIO;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = 0;
	}
out:
	sqlite3_finalize(s);
	return rc;
}

/* Step a statement that returns no rows and reset it.  SQLite result code. */
int
st_step_done(sqlite3_stmt *s)
{
	int rc;

	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/*
 * Once per process, before SQLite is first used: no memory statistics
 * (nothing reads them, and each allocation would take a global mutex for
 * them).  SQLITE_MISUSE, when something else has already started SQLite,
 * only costs that saving.
 */
static void
sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* 1 if an SQLite result code says the file itself is damaged or is not
 * a database: no retry can help. */
int
st_damaged(int rc)
{
	return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/*
 * The message for a failure to open or check the database at PATH with
 * SQLite result code rc and DETAIL: a file that is damaged or not a
 * database says what to do about it (it is left as it is: it may hold
 * history worth recovering).
 */
static void
explain(int rc, const char *path, const char *detail, char *err,
    size_t errlen)
{
	if ((rc & 0xff) == SQLITE_NOTADB)
		snprintf(err, errlen, "store: %s: not an SQLite database (%s); "
		    "set database to another file, or move this one aside to "
		    "start with a new database", path, detail);
	else if (st_damaged(rc))
		snprintf(err, errlen, "store: %s: the database is damaged "
		    "(%s); restore a backup, or move it aside to start with a "
		    "new database", path, detail);
	else
		snprintf(err, errlen, "store: %s: %s", path, detail);
}

/*
 * Open one connection with the pragmas every connection needs.  Each
 * connection here is used by one thread at a time (the writer's by the
 * writer thread, the checkpointer's by its thread, the synchronous one
 * under rmu), so it is opened without SQLite's own per-connection mutex,
 * which took about a quarter of the writer's instructions.
 */
int
st_open_conn(const char *path, int busy_ms, sqlite3 **out, char *err,
    size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	sqlite3 *db = NULL;
	char msg[256];
	int rc;

	*out = NULL;
	pthread_once(&once, sqlite_setup);
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "store: %s: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return WP_EIO;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, busy_ms);
	if (st_exec_sql(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
	    msg, sizeof(msg)) != 0) {
		explain(sqlite3_extended_errcode(db), path, msg, err, errlen);
		sqlite3_close(db);
		return WP_EIO;
	}
	*out = db;
	return 0;
}

/* The schema version recorded in meta; 0 for a database without one. */
static int
read_version(sqlite3 *db, int64_t *version)
{
	int64_t has_meta = 0;

	*version = 0;
	if (st_query_int(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'table' AND name = 'meta'", &has_meta) != 0)
		return WP_EIO;
	if (!has_meta)
		return 0;
	if (st_query_int(db, "SELECT CAST(value AS INTEGER) FROM meta "
	    "WHERE key = 'schema_version'", version) != 0)
		*version = 0;
	return 0;
}

/*
 * Bring the database to SCHEMA_VERSION, one transaction per migration.  The
 * version is re-read inside each write transaction, so two processes
 * opening a fresh file at once do not both migrate.  A newer version is
 * refused: this build cannot know what it means.
 */
static int
migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	char msg[256];
	char *sql;
	int64_t v;
	int rc;

	for (;;) {
		if (st_exec_sql(db, "BEGIN IMMEDIATE", msg, sizeof(msg)) != 0)
			goto fail;
		if (read_version(db, &v) != 0) {
			str_copy(msg, sizeof(msg), sqlite3_errmsg(db));
			goto fail;
		}
		if (v > SCHEMA_VERSION) {
			st_exec_sql(db, "ROLLBACK", msg, sizeof(msg));
			snprintf(err, errlen, "store: %s: database schema "
			    "version %" PRId64 " is newer than this build "
			    "supports (%d); use a newer watchpost or another "
			    "database", path, v, SCHEMA_VERSION);
			return WP_EINVAL;
		}
		if (v < 0) {
			st_exec_sql(db, "ROLLBACK", msg, sizeof(msg));
			snprintf(err, errlen, "store: %s: invalid schema "
			    "version %" PRId64, path, v);
			return WP_EINVAL;
		}
		if (v == SCHEMA_VERSION) {
			if (st_exec_sql(db, "COMMIT", msg, sizeof(msg)) != 0)
				goto fail;
			return 0;
		}
		if (st_exec_sql(db, migrations[v], msg, sizeof(msg)) != 0)
			goto fail;
		sql = sqlite3_mprintf("INSERT OR REPLACE INTO meta(key, value) "
		    "VALUES ('schema_version', '%lld')", (long long)v + 1);
		rc = st_exec_sql(db, sql, msg, sizeof(msg));
		sqlite3_free(sql);
		if (rc != 0 || st_exec_sql(db, "COMMIT", msg, sizeof(msg)) != 0)
			goto fail;
		log_info("store: %s: migrated schema to version %lld", path,
		    (long long)v + 1);
	}
fail:
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	snprintf(err, errlen, "store: %s: migration failed: %s", path, msg);
	return WP_EIO;
}

/* Release everything store_open() acquired; the writer must be stopped. */
void
st_destroy(struct store *st)
{
	size_t i;

	if (st->ring != NULL) {
		for (i = 0; i < st->count; i++)
			st_free_item(&st->ring[(st->head + i) % st->cap]);
		free(st->ring);
	}
	st_finalize_writer(st);
	sqlite3_close(st->cdb);
	sqlite3_close(st->db);
	sqlite3_close(st->rdb);
	pthread_mutex_destroy(&st->rmu);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	pthread_cond_destroy(&st->ckpt_cv);
	free(st->done_rows);
	free(st->roll);
	free(st->agent);
	free(st->location);
	free(st->path);
	free(st);
}

/*
 * $WATCHPOST_STORE_QUEUE_MAX lowers the queue capacity: the test seam for a
 * full queue (a failing database fills 65,536 slots only slowly).
 */
static size_t
queue_limit(size_t cap)
{
	const char *env = getenv("WATCHPOST_STORE_QUEUE_MAX");
	char *end;
	unsigned long long v;

	if (env == NULL)
		return cap;
	v = strtoull(env, &end, 10);
	if (*env == '\0' || *end != '\0' || v == 0) {
		log_warn("store: ignoring WATCHPOST_STORE_QUEUE_MAX=\"%s\"", env);
		return cap;
	}
	return v < cap ? (size_t)v : cap;
}

void
st_timespec_at(struct timespec *ts, int64_t mono_ms)
{
	ts->tv_sec = mono_ms / 1000;
	ts->tv_nsec = (mono_ms % 1000) * 1000000;
}

/*
 * $WATCHPOST_STORE_CHECK_MS lowers the start-up check's time cap: the test
 * seam for a file too big to check in time (making one takes minutes).
 */
static int64_t
check_limit_ms(void)
{
	const char *env = getenv("WATCHPOST_STORE_CHECK_MS");
	char *end;
	long long v;

	if (env == NULL)
		return QUICK_CHECK_MS;
	v = strtoll(env, &end, 10);
	if (*env == '\0' || *end != '\0' || v <= 0 || v > QUICK_CHECK_MS) {
		log_warn("store: ignoring WATCHPOST_STORE_CHECK_MS=\"%s\"",
		    env);
		return QUICK_CHECK_MS;
	}
	return v;
}

/* The start-up check's time keeper: interrupts db at the monotonic
 * deadline unless done is set first. */
struct watchdog {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sqlite3 *db;
	int64_t deadline;
	int done, fired;
};

/*
 * Under mu, so the interrupt cannot reach a statement after the check:
 * check_file() sets done under mu once its statement has ended.  (A
 * progress handler would not do: SQLite 3.40 calls none while it walks
 * the b-trees, most of the check's time.)
 */
static void *
watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec ts;

	pthread_mutex_lock(&w->mu);
	st_timespec_at(&ts, w->deadline);
	while (!w->done && mono_ms() < w->deadline)
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	/* Again every 10 ms until the check ends: an interrupt that comes
	 * while no statement runs yet (a slow prepare) has no effect. */
	while (!w->done) {
		sqlite3_interrupt(w->db);
		w->fired = 1;
		st_timespec_at(&ts, mono_ms() + 10);
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/*
 * The start-up check: PRAGMA quick_check (every b-tree page, but not the
 * indexes against their tables) takes time in proportion to the file,
 * about 0.7 s for 275 MB in the page cache and 5 s from disk here, so a
 * watchdog thread interrupts it after QUICK_CHECK_MS: a file too big to
 * check in that time is accepted with a warning.  0, or WP_EIO with a
 * message in err (explain()).
 */
static int
check_file(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	struct watchdog w = { .db = db };
	pthread_condattr_t ca;
	pthread_t thread;
	sqlite3_stmt *s = NULL;
	const char *row, *p;
	char detail[200] = "";
	int rc, more = 0, started;

	w.deadline = mono_ms() + check_limit_ms();
	pthread_mutex_init(&w.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Without the thread the check runs unbounded, as before it. */
	started = pthread_create(&thread, NULL, watchdog_main, &w) == 0;
	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(10)", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		/* One row: "ok", or the problems one per line, after a line
		 * naming the schema. */
		row = (const char *)sqlite3_column_text(s, 0);
		rc = SQLITE_OK;
		if (row != NULL && strcmp(row, "ok") != 0) {
			if (strncmp(row, "*** ", 4) == 0 &&
			    (p = strchr(row, '\n')) != NULL)
				row = p + 1;
			for (p = row; (p = strchr(p, '\n')) != NULL; p++)
				more++;
			snprintf(detail, sizeof(detail), "%.*s", (int)strcspn(row,
			    "\n"), row);
			if (more > 0)
				snprintf(detail + strlen(detail), sizeof(detail) -
				    strlen(detail), ", and %d more", more);
			rc = SQLITE_CORRUPT;
		}
	} else if (rc != SQLITE_OK && rc != SQLITE_DONE) {
		str_copy(detail, sizeof(detail), sqlite3_errmsg(db));
	}
	sqlite3_finalize(s);
	pthread_mutex_lock(&w.mu);
	w.done = 1;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mu);
	if (started)
		pthread_join(thread, NULL);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	if (rc == SQLITE_OK || rc == SQLITE_DONE)
		return 0;
	if ((rc & 0xff) == SQLITE_INTERRUPT && w.fired) {
		log_warn("store: %s: the integrity check was cut short after "
		    "%lld ms; the rest of the file is not checked", path,
		    (long long)check_limit_ms());
		return 0;
	}
	explain(rc, path, detail, err, errlen);
	return WP_EIO;
}

/* What PATH, PATH-wal and PATH-shm name now (a missing file: 0, 0). */
void
st_file_ids(const char *path, struct file_id out[3])
{
	static const char *const sfx[3] = { "", "-wal", "-shm" };
	char name[PATH_MAX];
	struct stat sb;
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s%s", path, sfx[i]);
		if (stat(name, &sb) == 0) {
			out[i].dev = sb.st_dev;
			out[i].ino = sb.st_ino;
		} else {
			out[i].dev = 0;
			out[i].ino = 0;
		}
	}
}

/*
 * Open the writer's connection to st->path, creating the file, and bring
 * it to the current schema with the writer's statements prepared; with
 * CHECK, first refuse a damaged file (check_file()).  0, or a negative
 * WP_E* code with err set and st->db NULL.
 */
int
st_open_writer(struct store *st, int check, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	char mode[16] = "";
	int64_t objects = 0;
	int rc;

	if ((rc = st_open_conn(st->path, WRITER_BUSY_MS, &st->db, err,
	    errlen)) != 0)
		return rc;
	/* The writer guarantees its references itself (slot_get() in
	 * store-writer.c) and deletes a check's measurements with it; every
	 * other connection keeps foreign_keys on. */
	if (sqlite3_exec(st->db, "PRAGMA foreign_keys=OFF", NULL, NULL,
	    NULL) != SQLITE_OK) {
		rc = WP_EIO;
		goto sqlfail;
	}
	if (check && (rc = check_file(st->db, st->path, err, errlen)) != 0)
		goto fail;
	/*
	 * auto_vacuum must be set before the first table exists, so it comes
	 * first, and only on a fresh file: an existing one keeps the mode it
	 * was made with (retention skips the vacuum step without it).
	 */
	rc = WP_EIO;
	if (st_query_int(st->db, "SELECT count(*) FROM sqlite_master",
	    &objects) != 0)
		goto sqlfail;
	if (objects == 0 && sqlite3_exec(st->db,
	    "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL) != SQLITE_OK)
		goto sqlfail;
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s,
	    NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW)
		goto sqlfail;
	str_copy(mode, sizeof(mode), (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	s = NULL;
	if (strcmp(mode, "wal") != 0)
		log_warn("store: %s: journal mode is %s, not wal: readers will "
		    "wait for writes", st->path, mode);
	/* The roll-up migration's backfill aggregates with them. */
	if (rollup_sql_register(st->db) != SQLITE_OK)
		goto sqlfail;
	if ((rc = migrate(st->db, st->path, err, errlen)) != 0)
		goto fail;
	if ((rc = st_prepare_writer(st, err, errlen)) != 0)
		goto fail;
	return 0;
sqlfail:
	snprintf(err, errlen, "store: %s: %s", st->path,
	    sqlite3_errmsg(st->db));
	sqlite3_finalize(s);
fail:
	st_finalize_writer(st);
	sqlite3_close(st->db);
	st->db = NULL;
	return rc;
}

int
store_open(const char *path, size_t queue_capacity, struct store **out,
    char *err, size_t errlen)
{
	struct store *st = NULL;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	queue_capacity = queue_limit(queue_capacity);
	if (path == NULL || *path == '\0' || queue_capacity == 0 ||
	    queue_capacity > SIZE_MAX / 2 / sizeof(struct item)) {
		snprintf(err, errlen, "store: a database path and a queue "
		    "capacity between 1 and %zu are required",
		    SIZE_MAX / 2 / sizeof(struct item));
		return WP_EINVAL;
	}
	st = xcalloc(1, sizeof(*st));
	st->path = xstrdup(path);
	st->cap = queue_capacity;
	st->gather_rows = queue_capacity / 2 < GATHER_ROWS ?
	    (queue_capacity > 1 ? queue_capacity / 2 : 1) : GATHER_ROWS;
	st->batch_max = queue_capacity / 2 < BATCH_MAX ?
	    (queue_capacity > 1 ? queue_capacity / 2 : 1) : BATCH_MAX;
	st->stats.queue_capacity = queue_capacity;
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->rmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->cv, &ca);
	pthread_cond_init(&st->ckpt_cv, &ca);
	pthread_condattr_destroy(&ca);

	if ((rc = st_open_writer(st, 1, err, errlen)) != 0)
		goto fail;
	if ((rc = st_open_conn(path, BUSY_MS, &st->rdb, err, errlen)) != 0)
		goto fail;
	st_file_ids(path, st->files);
	st->ring = xcalloc(queue_capacity, sizeof(*st->ring));
	*out = st;
	return 0;
fail:
	st_destroy(st);
	return rc;
}

int
store_sync_monitors(struct store *st, const char *const *names,
    const char *const *types, size_t n, int64_t *ids)
{
	sqlite3_stmt *up = NULL, *sel = NULL;
	int64_t now = wall_ms();
	size_t i;
	int rc = WP_EIO;

	if (st == NULL || (n > 0 && (names == NULL || types == NULL ||
	    ids == NULL)))
		return WP_EINVAL;
	pthread_mutex_lock(&st->rmu);
	if (st->rdb == NULL) {
		/* The file is being recreated (recover_file()). */
		log_err("store: syncing monitors: the database file is being "
		    "recreated");
		pthread_mutex_unlock(&st->rmu);
		return WP_EIO;
	}
	if (sqlite3_prepare_v2(st->rdb, "INSERT INTO monitors(name, type, "
	    "created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3) "
	    "ON CONFLICT(name) DO UPDATE SET type = excluded.type, "
	    "updated_ms = excluded.updated_ms "
	    "WHERE type IS NOT excluded.type", -1, &up, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->rdb, "SELECT id FROM monitors "
	    "WHERE name = ?1", -1, &sel, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_exec(st->rdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		goto fail;
	for (i = 0; i < n; i++) {
		if (names[i] == NULL || types[i] == NULL) {
			rc = WP_EINVAL;
			goto fail;
		}
		sqlite3_bind_text(up, 1, names[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(up, 2, types[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(up, 3, now);
		if (st_step_done(up) != SQLITE_OK)
			goto fail;
		sqlite3_bind_text(sel, 1, names[i], -1, SQLITE_STATIC);
		if (sqlite3_step(sel) != SQLITE_ROW) {
			sqlite3_reset(sel);
			goto fail;
		}
		ids[i] = sqlite3_column_int64(sel, 0);
		sqlite3_reset(sel);
	}
	if (sqlite3_exec(st->rdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	rc = 0;
	goto out;
fail:
	if (rc == WP_EIO)
		log_err("store: syncing monitors: %s", sqlite3_errmsg(st->rdb));
	if (!sqlite3_get_autocommit(st->rdb))
		sqlite3_exec(st->rdb, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_finalize(up);
	sqlite3_finalize(sel);
	pthread_mutex_unlock(&st->rmu);
	return rc;
}

int
store_load_state(struct store *st, struct store_state **out, size_t *n)
{
	struct store_state *v = NULL;
	sqlite3_stmt *s = NULL;
	size_t len = 0, cap = 0;
	int rc = WP_EIO, step;

	if (st == NULL || out == NULL || n == NULL)
		return WP_EINVAL;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&st->rmu);
	/*
	 * The last check and its latency from the newest checks row (one
	 * descent of the (monitor_id, ts) index per monitor): the writer
	 * rewrites the state row on a change, not per check, so its
	 * last_check_ms may lag (store-writer.c, state_note()).  The row's
	 * own values stand when retention left no check.
	 */
	if (sqlite3_prepare_v2(st->rdb, "SELECT s.monitor_id, s.state, "
	    "coalesce(c.ts, s.last_check_ms), "
	    "CASE WHEN c.id IS NULL THEN s.latency_ms ELSE c.latency_ms END, "
	    "s.since_ms, s.streak, s.repeats, s.notified_ms, s.escalated_ms "
	    "FROM state AS s LEFT JOIN checks AS c ON c.id = "
	    "(SELECT id FROM checks WHERE monitor_id = s.monitor_id "
	    "ORDER BY ts DESC, id DESC LIMIT 1) ORDER BY s.monitor_id",
	    -1, &s, NULL) != SQLITE_OK)
		goto fail;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_state *e;

		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		e = &v[len++];
		memset(e, 0, sizeof(*e));
		e->monitor_id = sqlite3_column_int64(s, 0);
		str_copy(e->state, sizeof(e->state),
		    (const char *)sqlite3_column_text(s, 1));
		e->last_check_ms = sqlite3_column_int64(s, 2);
		e->latency_ms = sqlite3_column_type(s, 3) == SQLITE_NULL ?
		    -1 : sqlite3_column_double(s, 3);
		e->since_ms = sqlite3_column_int64(s, 4);
		e->streak = sqlite3_column_int(s, 5);
		e->repeats = (unsigned)sqlite3_column_int(s, 6);
		e->notified_ms = sqlite3_column_int64(s, 7);
		e->escalated_ms = sqlite3_column_int64(s, 8);
	}
	if (step != SQLITE_DONE)
		goto fail;
	*out = v;
	*n = len;
	v = NULL;
	rc = 0;
	goto out;
fail:
	log_err("store: loading state: %s", sqlite3_errmsg(st->rdb));
out:
	free(v);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->rmu);
	return rc;
}

int
store_load_pending(struct store *st, struct store_pending_alert **out,
    size_t *n)
{
	struct store_pending_alert *v = NULL;
	sqlite3_stmt *s = NULL;
	size_t len = 0, cap = 0;
	int rc = WP_EIO, step;

	if (st == NULL || out == NULL || n == NULL)
		return WP_EINVAL;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&st->rmu);
	if (sqlite3_prepare_v2(st->rdb, "SELECT id, monitor_id, alert_name, "
	    "payload, attempts, created_ms, last_error FROM outbox ORDER BY id", -1, &s,
	    NULL) != SQLITE_OK)
		goto fail;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_pending_alert *e;
		const char *p;

		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		e = &v[len++];
		memset(e, 0, sizeof(*e));
		e->id = sqlite3_column_int64(s, 0);
		e->monitor_id = sqlite3_column_int64(s, 1);
		str_copy(e->alert_name, sizeof(e->alert_name),
		    (const char *)sqlite3_column_text(s, 2));
		p = (const char *)sqlite3_column_text(s, 3);
		e->payload = xstrdup(p != NULL ? p : "");
		e->attempts = sqlite3_column_int(s, 4);
		e->created_ms = sqlite3_column_int64(s, 5);
		str_copy(e->last_error, sizeof(e->last_error),
		    (const char *)sqlite3_column_text(s, 6));
	}
	if (step != SQLITE_DONE)
		goto fail;
	*out = v;
	*n = len;
	v = NULL;
	len = 0;
	rc = 0;
	goto out;
fail:
	log_err("store: loading the alert outbox: %s",
	    sqlite3_errmsg(st->rdb));
out:
	store_free_pending(v, len);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->rmu);
	return rc;
}

void
store_free_pending(struct store_pending_alert *p, size_t n)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < n; i++)
		free(p[i].payload);
	free(p);
}

int64_t
store_max_alert_id(struct store *st)
{
	int64_t v = 0;

	if (st == NULL)
		return 0;
	pthread_mutex_lock(&st->rmu);
	if (st_query_int(st->rdb, "SELECT max(coalesce((SELECT seq FROM "
	    "sqlite_sequence WHERE name = 'outbox'), 0), "
	    "coalesce((SELECT max(id) FROM outbox), 0))", &v) != 0) {
		log_err("store: reading the largest alert id: %s",
		    sqlite3_errmsg(st->rdb));
		v = 0;
	}
	pthread_mutex_unlock(&st->rmu);
	return v;
}

int
store_last_measurements(struct store *st, int64_t monitor_id,
    struct store_measure **out, size_t *n, int64_t *ts_ms)
{
	struct store_measure *v = NULL, *blk;
	struct sbuf names = { 0 };
	sqlite3_stmt *s = NULL;
	size_t len = 0, cap = 0, *off = NULL, i;
	int64_t ts = 0;
	int rc = WP_EIO, step;

	if (st == NULL || out == NULL || n == NULL)
		return WP_EINVAL;
	*out = NULL;
	*n = 0;
	if (ts_ms != NULL)
		*ts_ms = 0;
	pthread_mutex_lock(&st->rmu);
	if (st->rdb == NULL) {
		/* The file is being recreated (recover_file()). */
		pthread_mutex_unlock(&st->rmu);
		log_err("store: reading measurements: the database file is "
		    "being recreated");
		return WP_EIO;
	}
	/* The last check by checks(monitor_id, ts), then its rows by the
	 * primary key, in one statement (one snapshot); a check without
	 * measurements gives one row with a NULL name. */
	if (sqlite3_prepare_v2(st->rdb, "SELECT c.ts, m.name, m.value FROM "
	    "(SELECT id, ts FROM checks WHERE monitor_id = ?1 "
	    "ORDER BY ts DESC, id DESC LIMIT 1) AS c "
	    "LEFT JOIN measurements AS m ON m.check_id = c.id "
	    "ORDER BY m.name", -1, &s, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(s, 1, monitor_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		ts = sqlite3_column_int64(s, 0);
		if (sqlite3_column_type(s, 1) == SQLITE_NULL)
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : STORE_MEASURES_MAX;
			v = xrealloc(v, cap * sizeof(*v));
			off = xrealloc(off, cap * sizeof(*off));
		}
		off[len] = names.len;
		sbuf_append(&names, (const char *)sqlite3_column_text(s, 1),
		    (size_t)sqlite3_column_bytes(s, 1) + 1);
		v[len].name = NULL;
		v[len++].value = sqlite3_column_double(s, 2);
	}
	if (step != SQLITE_DONE)
		goto fail;
	/* The array, then its names, in one block for one free(). */
	if (len > 0) {
		blk = xmalloc(len * sizeof(*blk) + names.len);
		memcpy(blk + len, names.data, names.len);
		for (i = 0; i < len; i++) {
			blk[i].name = (const char *)(blk + len) + off[i];
			blk[i].value = v[i].value;
		}
		*out = blk;
	}
	*n = len;
	if (ts_ms != NULL)
		*ts_ms = ts;
	rc = 0;
	goto out;
fail:
	log_err("store: reading measurements: %s", sqlite3_errmsg(st->rdb));
out:
	free(v);
	free(off);
	sbuf_free(&names);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->rmu);
	return rc;
}

void
store_get_stats(struct store *st, struct store_stats *out)
{
	if (st == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&st->mu);
	*out = st->stats;
	out->queue_depth = st->count;
	out->queue_capacity = st->cap;
	pthread_mutex_unlock(&st->mu);
}


/* ---- holds (hold.h) ---- */

int
store_load_silences(struct store *st, int64_t now_ms,
    struct store_silence **out, size_t *n)
{
	struct store_silence *v = NULL, *e;
	sqlite3_stmt *s = NULL;
	size_t len = 0, cap = 0;
	int rc = WP_EIO, step;
	const char *c;

	if (st == NULL || out == NULL || n == NULL)
		return WP_EINVAL;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&st->rmu);
	if (sqlite3_prepare_v2(st->rdb, "SELECT id, monitors, until_ms, "
	    "created_ms, comment FROM silences WHERE until_ms > ?1 "
	    "ORDER BY id", -1, &s, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(s, 1, now_ms);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		e = &v[len++];
		e->id = sqlite3_column_int64(s, 0);
		e->monitors = xstrdup((const char *)sqlite3_column_text(s, 1));
		e->until_ms = sqlite3_column_int64(s, 2);
		e->created_ms = sqlite3_column_int64(s, 3);
		c = (const char *)sqlite3_column_text(s, 4);
		e->comment = c != NULL ? xstrdup(c) : NULL;
	}
	if (step != SQLITE_DONE)
		goto fail;
	*out = v;
	*n = len;
	v = NULL;
	len = 0;
	rc = 0;
	goto out;
fail:
	log_err("store: loading silences: %s", sqlite3_errmsg(st->rdb));
out:
	store_free_silences(v, len);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->rmu);
	return rc;
}

void
store_free_silences(struct store_silence *s, size_t n)
{
	size_t i;

	for (i = 0; s != NULL && i < n; i++) {
		free(s[i].monitors);
		free(s[i].comment);
	}
	free(s);
}

int64_t
store_max_silence_id(struct store *st)
{
	int64_t v = 0;

	if (st == NULL)
		return 0;
	pthread_mutex_lock(&st->rmu);
	if (st_query_int(st->rdb, "SELECT max(coalesce((SELECT seq FROM "
	    "sqlite_sequence WHERE name = 'silences'), 0), "
	    "coalesce((SELECT max(id) FROM silences), 0))", &v) != 0) {
		log_err("store: reading the largest silence id: %s",
		    sqlite3_errmsg(st->rdb));
		v = 0;
	}
	pthread_mutex_unlock(&st->rmu);
	return v;
}

int
store_load_holds(struct store *st, struct store_hold **out, size_t *n)
{
	struct store_hold *v = NULL, *e;
	sqlite3_stmt *s = NULL;
	size_t len = 0, cap = 0;
	int rc = WP_EIO, step;
	const char *t;

	if (st == NULL || out == NULL || n == NULL)
		return WP_EINVAL;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&st->rmu);
	if (sqlite3_prepare_v2(st->rdb, "SELECT monitor_id, before, since_ms, "
	    "held_state, held_at FROM holds ORDER BY monitor_id", -1, &s,
	    NULL) != SQLITE_OK)
		goto fail;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		e = &v[len++];
		memset(e, 0, sizeof(*e));
		e->monitor_id = sqlite3_column_int64(s, 0);
		str_copy(e->before, sizeof(e->before),
		    (const char *)sqlite3_column_text(s, 1));
		e->since_ms = sqlite3_column_int64(s, 2);
		if ((t = (const char *)sqlite3_column_text(s, 3)) != NULL)
			str_copy(e->held_state, sizeof(e->held_state), t);
		e->held_at = sqlite3_column_int64(s, 4);
	}
	if (step != SQLITE_DONE)
		goto fail;
	*out = v;
	*n = len;
	v = NULL;
	rc = 0;
	goto out;
fail:
	log_err("store: loading holds: %s", sqlite3_errmsg(st->rdb));
out:
	free(v);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->rmu);
	return rc;
}
