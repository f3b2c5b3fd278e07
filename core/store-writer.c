/*
 * store-writer -- the writer thread that drains a bounded queue in batched
 * transactions, the checkpoint thread, retention, and the watch that
 * recreates a deleted or replaced database file.
 *
 * Queue: a ring of `cap` items.  Submitters append at the tail under `mu`;
 * the writer reads up to `batch_max` items from the head without holding
 * `mu` (submitters never touch those `busy` slots) and pops them only after
 * COMMIT, so a failed transaction loses nothing and a failing database
 * fills the queue, at which point new plain checks are dropped and counted.
 *
 * Group commit: a transaction costs far more than a row (the WAL frames of
 * every page touched, file locks, a wake-up), and checks spread over their
 * interval arrive one at a time.  So once an item is queued the writer
 * waits until it is GATHER_MS old or GATHER_ROWS items are queued, then
 * writes them all in one transaction.  Only the writer waits: submitters
 * never block, and they wake the writer only when the queue becomes
 * non-empty or reaches GATHER_ROWS, not for every item.  An alert is
 * delivered only once its outbox row is committed (store_on_commit()), so
 * the gathering delays alerts, and what readers of the database see, by at
 * most GATHER_MS.
 *
 * Priority: a check that changed state, its outbox rows and delivery
 * updates are never dropped for a full queue.  A plain check is refused
 * when the queue is full; one of those items instead sheds the newest
 * queued plain check outside the batch the writer is writing (`busy`, at
 * most half the queue), and takes its place at the tail.
 *
 * The file: SQLite keeps writing to a database file that was deleted, or
 * that another file was moved over, and the next start would find a fresh
 * one.  So the writer checks every WATCH_MS that the path, -wal and -shm
 * still name the files it opened (three stat calls), and if not, copies the
 * database it still has open back to the path (recover_file()).
 *
 * Checkpoints: SQLite's automatic checkpoint runs inside the COMMIT that
 * crosses 1,000 WAL pages, copying them into the database file and syncing
 * it, which made some batches take over 100 ms.  The writer's connection
 * has a WAL hook instead that asks the checkpoint thread, with a connection
 * of its own, for a PASSIVE checkpoint (it never blocks the writer) once
 * the WAL holds CKPT_FRAMES pages.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "log.h"
#include "opmon.h"
#include "store-int.h"
#include "util.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	5000
#define DRAIN_GIVEUP_MS	2000	/* at close, how long a failing db is retried */
#define VACUUM_PAGES	2000	/* pages freed per incremental_vacuum step */
#define BATCH_DEADLINE_MS 10000	/* a batch this slow is flagged in opmon */
#define SLOW_BATCH_MS	50	/* a batch this slow is logged ... */
#define SLOW_LOG_MS	10000	/* ... at most this often */
#define CKPT_FRAMES	4000	/* WAL pages that ask for a checkpoint */
#define CKPT_RETRY_MS	1000	/* after a failed checkpoint */
#define GATHER_MS	50	/* the oldest queued item waits at most this */
#define WATCH_MS	1000	/* how often the files are checked */
#define STATE_FLUSH_MS	300000	/* a state row lags its checks at most this */
#define SWEEP_MAX	500	/* state rows per state_sweep() transaction */
#define RET_SCAN_CHUNKS	16	/* a retention step looks at most at this
				   many chunks' worth of rowids */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames);

static const double bucket_le[7] = { 1, 5, 10, 25, 50, 100, 250 };

void
st_free_item(struct item *it)
{
	size_t i;

	if (it->kind == ITEM_SILENCE) {
		free(it->u.sil.s.monitors);
		free(it->u.sil.s.comment);
		it->u.sil.s.monitors = it->u.sil.s.comment = NULL;
		return;
	}
	if (it->kind == ITEM_DELIVERY) {
		free(it->u.dlv.more_ids);
		it->u.dlv.more_ids = NULL;
		it->u.dlv.n_more = 0;
		return;
	}
	if (it->kind != ITEM_CHECK && it->kind != ITEM_ALERTS)
		return;
	for (i = 0; i < it->u.chk.n_alerts; i++)
		free(it->u.chk.alerts[i].payload);
	free(it->u.chk.alerts);
	it->u.chk.alerts = NULL;
	it->u.chk.n_alerts = 0;
	free(it->u.chk.meas);
	it->u.chk.meas = NULL;
	it->u.chk.n_meas = 0;
}

static void
bind_opt_double(sqlite3_stmt *s, int i, double v)
{
	if (v < 0)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_double(s, i, v);
}

/* Bind a fixed-size char array that may lack its NUL; "" binds NULL. */
static void
bind_opt_text(sqlite3_stmt *s, int i, const char *p, size_t max)
{
	size_t n = strnlen(p, max);

	if (n == 0)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, p, (int)n, SQLITE_TRANSIENT);
}

static int
prepare(struct store *st, const char *sql, sqlite3_stmt **s, char *err,
    size_t errlen)
{
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s,
	    NULL) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "store: %s: %s", st->path,
	    sqlite3_errmsg(st->db));
	return WP_EIO;
}

/*
 * s_checks[k]: k checks rows of st->check_cols parameters each
 * (bind_check()), with checks.agent, location and grid in cluster mode
 * (st->agent set) and without them in single mode, which so binds and
 * copies nothing more per row.  Any earlier ones are finalized first.
 * 0, or WP_EIO with err set.
 */
static int
prepare_checks(struct store *st, char *err, size_t errlen)
{
	struct sbuf sql = { 0 };
	size_t i, k;
	int rc = 0, c;

	st->check_cols = st->agent != NULL ? CHECK_COLS_CLUSTER : CHECK_COLS;
	for (k = 1; k <= CHECK_GROUP && rc == 0; k++) {
		sqlite3_finalize(st->s_checks[k]);
		st->s_checks[k] = NULL;
		sql.len = 0;
		sbuf_printf(&sql, "INSERT INTO checks(monitor_id, ts, ok, "
		    "latency_ms, status_code, error, reason, attempts, dns_ms, "
		    "connect_ms, tls_ms, first_byte_ms, cert_expiry, "
		    "maintenance%s) VALUES ", st->agent != NULL ?
		    ", agent, location, grid" : "");
		for (i = 0; i < k; i++) {
			sbuf_printf(&sql, "%s(?", i > 0 ? "," : "");
			for (c = 1; c < st->check_cols; c++)
				sbuf_printf(&sql, ",?");
			sbuf_printf(&sql, ")");
		}
		rc = prepare(st, sql.data, &st->s_checks[k], err, errlen);
	}
	sbuf_free(&sql);
	return rc;
}

int
store_set_cluster(struct store *st, const char *agent, const char *location)
{
	char err[256];

	if (st == NULL || agent == NULL || *agent == '\0' ||
	    location == NULL || *location == '\0' || st->started)
		return WP_EINVAL;
	free(st->agent);
	free(st->location);
	st->agent = xstrdup(agent);
	st->location = xstrdup(location);
	if (prepare_checks(st, err, sizeof(err)) != 0) {
		log_err("%s", err);
		return WP_EIO;
	}
	return 0;
}

int
st_prepare_writer(struct store *st, char *err, size_t errlen)
{
	const struct {
		sqlite3_stmt **s;
		const char *sql;
	} t[] = {
		{ &st->s_begin, "BEGIN IMMEDIATE" },
		{ &st->s_commit, "COMMIT" },
		{ &st->s_rollback, "ROLLBACK" },
		{ &st->s_savepoint, "SAVEPOINT item" },
		{ &st->s_release, "RELEASE item" },
		{ &st->s_rollback_to, "ROLLBACK TO item" },
		{ &st->s_maxid, "SELECT coalesce(max(id), 0) FROM checks" },
		/* since_ms moves only when the check changed the state. */
		/* r_*: the monitor's open hour (rollup_note_check()). */
		{ &st->s_state, "INSERT INTO state(monitor_id, state, "
		    "last_check_ms, latency_ms, since_ms, streak, repeats, "
		    "notified_ms, escalated_ms, r_hour, r_agg, r_id) "
		    "VALUES (?1, ?2, ?3, ?4, ?3, ?6, ?7, ?8, ?9, ?10, ?11, "
		    "?12) "
		    "ON CONFLICT(monitor_id) DO UPDATE SET "
		    "state = excluded.state, "
		    "last_check_ms = excluded.last_check_ms, "
		    "latency_ms = excluded.latency_ms, "
		    "since_ms = CASE WHEN ?5 THEN excluded.since_ms "
		    "ELSE state.since_ms END, "
		    "streak = excluded.streak, repeats = excluded.repeats, "
		    "notified_ms = excluded.notified_ms, "
		    "escalated_ms = excluded.escalated_ms, "
		    "r_hour = excluded.r_hour, r_agg = excluded.r_agg, "
		    "r_id = excluded.r_id" },
		/* The same for a row known to exist: cheaper than the
		 * UPSERT's attempted insert (state_put()). */
		{ &st->s_state_upd, "UPDATE state SET state = ?2, "
		    "last_check_ms = ?3, latency_ms = ?4, since_ms = CASE "
		    "WHEN ?5 THEN ?3 ELSE since_ms END, streak = ?6, "
		    "repeats = ?7, notified_ms = ?8, escalated_ms = ?9, "
		    "r_hour = ?10, r_agg = ?11, r_id = ?12 "
		    "WHERE monitor_id = ?1" },
		/* A reminder or an escalation: its counters only. */
		{ &st->s_policy, "UPDATE state SET repeats = ?2, "
		    "notified_ms = ?3, escalated_ms = ?4 WHERE monitor_id = ?1" },
		{ &st->s_outbox, "INSERT INTO outbox(id, monitor_id, "
		    "alert_name, payload, created_ms) "
		    "VALUES (?1, ?2, ?3, ?4, ?5)" },
		/* OR REPLACE: a name given twice keeps its last value
		 * rather than costing the check its row. */
		{ &st->s_measure, "INSERT OR REPLACE INTO measurements("
		    "check_id, name, value) VALUES (?1, ?2, ?3)" },
		{ &st->s_delivered, "DELETE FROM outbox WHERE id = ?1" },
		{ &st->s_attempt, "UPDATE outbox SET attempts = attempts + 1, "
		    "last_error = ?2, last_attempt_ms = ?3 WHERE id = ?1" },
		/* Retention by rowid ranges (retention_step()). */
		{ &st->s_retention, "DELETE FROM checks WHERE id >= ?1 "
		    "AND id < ?2 AND ts < ?3" },
		{ &st->s_ret_meas, "DELETE FROM measurements WHERE check_id "
		    "IN (SELECT id FROM checks WHERE id >= ?1 AND id < ?2 "
		    "AND ts < ?3)" },
		{ &st->s_ret_bounds, "SELECT min(id), max(id) FROM checks" },
		{ &st->s_roll_load, "SELECT r_hour, r_agg, state, streak, "
		    "repeats, notified_ms, escalated_ms, last_check_ms, "
		    "latency_ms, r_id FROM state WHERE monitor_id = ?1" },
		/* The open hour's checks after the row's r_id, by the
		 * (monitor_id, ts) index (slot_get()). */
		{ &st->s_reconcile, "SELECT id, ts, ok, latency_ms FROM checks "
		    "WHERE monitor_id = ?1 AND ts >= ?2 AND ts < ?3 "
		    "AND id > ?4" },
		{ &st->s_known, "SELECT 1 FROM monitors WHERE id = ?1" },
		/* Adding to a row already there (a late check, or an hour
		 * the migration backfilled) merges in SQL (wp_rollup_add,
		 * rollup.h), so a flush reads nothing. */
		{ &st->s_roll_put[0], "INSERT INTO rollup_hours(monitor_id, "
		    "hour, agg) VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET "
		    "agg = wp_rollup_add(agg, excluded.agg)" },
		{ &st->s_roll_put[1], "INSERT INTO rollup_days(monitor_id, "
		    "day, agg) VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET "
		    "agg = wp_rollup_add(agg, excluded.agg)" },
		{ &st->s_roll_put[2], "INSERT INTO rollup_weeks(monitor_id, "
		    "week, agg) VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET "
		    "agg = wp_rollup_add(agg, excluded.agg)" },
		{ &st->s_inc_close, "UPDATE incidents SET end_ms = ?2 "
		    "WHERE monitor_id = ?1 AND end_ms IS NULL" },
		{ &st->s_inc_open, "INSERT INTO incidents(monitor_id, "
		    "start_ms, reason, error) VALUES (?1, ?2, ?3, ?4)" },
		/* Per monitor, so each is a range of a primary key or an
		 * index, not a scan of the table. */
		{ &st->s_roll_expire[0], "DELETE FROM rollup_hours WHERE "
		    "monitor_id IN (SELECT id FROM monitors) AND hour < ?1" },
		{ &st->s_roll_expire[1], "DELETE FROM rollup_days WHERE "
		    "monitor_id IN (SELECT id FROM monitors) AND day < ?1" },
		{ &st->s_roll_expire[2], "DELETE FROM rollup_weeks WHERE "
		    "monitor_id IN (SELECT id FROM monitors) AND week < ?1" },
		{ &st->s_roll_expire[3], "DELETE FROM incidents WHERE "
		    "monitor_id IN (SELECT id FROM monitors) AND start_ms < ?1 "
		    "AND end_ms < ?1" },
		{ &st->s_silence, "INSERT OR REPLACE INTO silences(id, "
		    "monitors, until_ms, created_ms, comment) "
		    "VALUES (?1, ?2, ?3, ?4, ?5)" },
		{ &st->s_unsilence, "DELETE FROM silences WHERE id = ?1" },
		{ &st->s_hold, "INSERT OR REPLACE INTO holds(monitor_id, "
		    "before, since_ms, held_state, held_at) "
		    "VALUES (?1, ?2, ?3, ?4, ?5)" },
		{ &st->s_unhold, "DELETE FROM holds WHERE monitor_id = ?1" },
	};
	struct sbuf sql = { 0 };
	size_t i, k;
	int rc = 0;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (prepare(st, t[i].sql, t[i].s, err, errlen) != 0)
			return WP_EIO;
	rc = prepare_checks(st, err, errlen);
	/* s_meas[k]: k measurements rows (write_group_meas()). */
	for (k = 1; k <= MEAS_GROUP && rc == 0; k++) {
		sql.len = 0;
		sbuf_printf(&sql, "INSERT OR REPLACE INTO measurements("
		    "check_id, name, value) VALUES ");
		for (i = 0; i < k; i++)
			sbuf_printf(&sql, "%s(?,?,?)", i > 0 ? "," : "");
		rc = prepare(st, sql.data, &st->s_meas[k], err, errlen);
	}
	sbuf_free(&sql);
	return rc;
}

void
st_finalize_writer(struct store *st)
{
	sqlite3_stmt **all[] = {
		&st->s_begin, &st->s_commit, &st->s_rollback,
		&st->s_savepoint, &st->s_release, &st->s_rollback_to,
		&st->s_maxid, &st->s_state, &st->s_state_upd, &st->s_outbox,
		&st->s_measure,
		&st->s_delivered, &st->s_attempt, &st->s_retention,
		&st->s_ret_meas, &st->s_ret_bounds,
		&st->s_policy,
		&st->s_roll_load, &st->s_known, &st->s_reconcile,
		&st->s_roll_put[0], &st->s_roll_put[1],
		&st->s_roll_put[2], &st->s_inc_close,
		&st->s_inc_open, &st->s_roll_expire[0], &st->s_roll_expire[1],
		&st->s_roll_expire[2], &st->s_roll_expire[3],
		&st->s_silence, &st->s_unsilence, &st->s_hold, &st->s_unhold,
	};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		sqlite3_finalize(*all[i]);
		*all[i] = NULL;
	}
	for (i = 0; i <= CHECK_GROUP; i++) {
		sqlite3_finalize(st->s_checks[i]);
		st->s_checks[i] = NULL;
	}
	for (i = 0; i <= MEAS_GROUP; i++) {
		sqlite3_finalize(st->s_meas[i]);
		st->s_meas[i] = NULL;
	}
}

/*
 * Errors that belong to one item, not to the database: retrying cannot
 * help, so the item is skipped (and logged) instead of blocking the queue
 * forever.  Everything else (busy, I/O, full, read-only, and an operator's
 * trigger refusing writes) fails the transaction and is retried.
 */
static int
item_error(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_FOREIGNKEY:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_NOTNULL:
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_MISMATCH:
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
		return 1;
	default:
		return 0;
	}
}

/* ---- roll-ups and incidents (history.h says what they hold) ---- */

/* Forget every cached open hour: after a transaction that failed or
 * skipped an item, the state rows are the truth again. */
static void
rollup_cache_reset(struct store *st)
{
	free(st->roll);
	st->roll = NULL;
	st->roll_cap = st->roll_n = 0;
}

static size_t
rollup_hash(int64_t id, size_t cap)
{
	return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 17) &
	    (cap - 1);
}

/* The cache slot of monitor ID, or NULL if it has none. */
static struct rollup_slot *
rollup_cache_find(struct store *st, int64_t id)
{
	struct rollup_slot *s;

	if (st->roll_cap == 0)
		return NULL;
	s = &st->roll[rollup_hash(id, st->roll_cap)];
	while (s->monitor_id != 0 && s->monitor_id != id)
		s = s + 1 < st->roll + st->roll_cap ? s + 1 : st->roll;
	return s->monitor_id == id ? s : NULL;
}

/* The cache slot of monitor ID, a new empty one if it has none (open
 * addressing; the table doubles at half full). */
static struct rollup_slot *
rollup_cache_slot(struct store *st, int64_t id, int *fresh)
{
	struct rollup_slot *old = st->roll, *s;
	size_t i, oldcap = st->roll_cap;

	if (st->roll_n + 1 > st->roll_cap / 2) {
		st->roll_cap = oldcap ? oldcap * 2 : 256;
		st->roll = xcalloc(st->roll_cap, sizeof(*st->roll));
		st->roll_n = 0;
		for (i = 0; i < oldcap; i++)
			if (old[i].monitor_id != 0) {
				s = &st->roll[rollup_hash(old[i].monitor_id,
				    st->roll_cap)];
				while (s->monitor_id != 0)
					s = s + 1 < st->roll + st->roll_cap ?
					    s + 1 : st->roll;
				*s = old[i];
				st->roll_n++;
			}
		free(old);
	}
	s = &st->roll[rollup_hash(id, st->roll_cap)];
	while (s->monitor_id != 0 && s->monitor_id != id)
		s = s + 1 < st->roll + st->roll_cap ? s + 1 : st->roll;
	*fresh = s->monitor_id == 0;
	if (*fresh) {
		s->monitor_id = id;
		s->hour = -1;
		rollup_clear(&s->agg);
		st->roll_n++;
	}
	return s;
}

/*
 * Add AGG to monitor ID's rows of the hour HOUR, its day and its week
 * (UPSERTs that merge with a row already there): once per monitor and
 * hour, when the hour ends, or for a check that arrives after its hour
 * was flushed.  SQLite result code.
 */
static int
rollup_flush(struct store *st, int64_t id, int64_t hour,
    const struct rollup_agg *agg)
{
	const int64_t key[3] = { hour, hour / 24, hour / (24 * 7) };
	unsigned char buf[ROLLUP_BLOB_MAX];
	size_t n;
	int i, rc;

	if (hour < 0)
		return SQLITE_OK;
	n = rollup_encode(agg, buf);
	for (i = 0; i < 3; i++) {
		sqlite3_bind_int64(st->s_roll_put[i], 1, id);
		sqlite3_bind_int64(st->s_roll_put[i], 2, key[i]);
		sqlite3_bind_blob(st->s_roll_put[i], 3, buf, (int)n,
		    SQLITE_STATIC);
		if ((rc = st_step_done(st->s_roll_put[i])) != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/*
 * The part of a streak the policy can still read (policy_step()): while
 * down, the length of a run of failures no longer matters (the next
 * failure keeps it down, the next good check starts at 1), nor while not
 * down the length of a run of good checks.  So a state row is rewritten
 * only when this changes, not on every check of a long run.
 */
static int
streak_class(const char *state, int streak)
{
	int down = strcmp(state, "down") == 0;

	if (down && streak < 0)
		return -1;
	if (!down && streak > 0)
		return 1;
	return streak;
}

/*
 * Add to slot S (just loaded, state row present with r_id and r_hour)
 * the checks of its open hour that came after the row was written: a
 * crash, or a failed transaction that dropped the cache, can leave rows
 * committed that the row does not count.  A change of state always
 * writes the row, so all of them had the row's state.  The range of the
 * (monitor_id, ts) index for that hour, once per monitor and writer
 * start.  SQLite result code.
 */
static int
slot_reconcile(struct store *st, struct rollup_slot *s, int64_t r_id)
{
	sqlite3_stmt *q = st->s_reconcile;
	int64_t id, newest = r_id;
	int rc;

	sqlite3_bind_int64(q, 1, s->monitor_id);
	sqlite3_bind_int64(q, 2, s->hour * ROLLUP_HOUR_MS);
	sqlite3_bind_int64(q, 3, (s->hour + 1) * ROLLUP_HOUR_MS);
	sqlite3_bind_int64(q, 4, r_id);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		id = sqlite3_column_int64(q, 0);
		rollup_add(&s->agg, s->state, sqlite3_column_int(q, 2),
		    sqlite3_column_type(q, 3) == SQLITE_NULL ? -1 :
		    sqlite3_column_double(q, 3));
		if (id > newest) {
			newest = id;
			s->check_id = id;
			s->ts_ms = sqlite3_column_int64(q, 1);
			s->latency_ms = sqlite3_column_type(q, 3) ==
			    SQLITE_NULL ? -1 : sqlite3_column_double(q, 3);
		}
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (newest > r_id)
		s->dirty = 1;
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Monitor ID's cache slot, loaded from its state row on the monitor's
 * first item.  The writer's connection checks no foreign keys (they cost
 * about 1,900 instructions a row, BENCHMARKS.md): this is the guarantee
 * instead.  Every row the writer adds names a monitor through here, so a
 * monitor id that is not in `monitors` is refused as a foreign key would
 * refuse it (SQLITE_CONSTRAINT_FOREIGNKEY, the item alone is skipped) and
 * gets no slot.  Monitors rows are never deleted, so a slot, once there,
 * stays valid.  SQLite result code; *out set on SQLITE_OK.
 */
static int
slot_get(struct store *st, int64_t id, struct rollup_slot **out)
{
	sqlite3_stmt *q = st->s_roll_load;
	struct rollup_slot *s, tmp;
	int64_t r_id = -1;
	int rc, fresh, known = 0;

	if ((*out = rollup_cache_find(st, id)) != NULL)
		return SQLITE_OK;
	memset(&tmp, 0, sizeof(tmp));
	tmp.monitor_id = id;
	tmp.hour = -1;
	rollup_clear(&tmp.agg);
	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		known = tmp.row = 1;
		if (sqlite3_column_type(q, 0) != SQLITE_NULL) {
			tmp.hour = sqlite3_column_int64(q, 0);
			if (rollup_read(q, 1, &tmp.agg) != 0)
				rollup_clear(&tmp.agg);
		}
		str_copy(tmp.state, sizeof(tmp.state),
		    (const char *)sqlite3_column_text(q, 2));
		tmp.streak = sqlite3_column_int(q, 3);
		tmp.repeats = (unsigned)sqlite3_column_int64(q, 4);
		tmp.notified_ms = sqlite3_column_int64(q, 5);
		tmp.escalated_ms = sqlite3_column_int64(q, 6);
		tmp.ts_ms = tmp.row_ts = sqlite3_column_int64(q, 7);
		tmp.latency_ms = sqlite3_column_type(q, 8) == SQLITE_NULL ?
		    -1 : sqlite3_column_double(q, 8);
		/* An older version's row (written per check) has none:
		 * exact, but rewritten at the next check to get one. */
		if (sqlite3_column_type(q, 9) == SQLITE_NULL)
			tmp.row_ts = INT64_MIN;
		else
			r_id = tmp.check_id = sqlite3_column_int64(q, 9);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rc;
	if (!known) {
		sqlite3_bind_int64(st->s_known, 1, id);
		rc = sqlite3_step(st->s_known);
		known = rc == SQLITE_ROW;
		sqlite3_reset(st->s_known);
		sqlite3_clear_bindings(st->s_known);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return rc;
	}
	if (!known) {
		snprintf(st->item_msg, sizeof(st->item_msg), "monitor id %"
		    PRId64 " is not in the monitors table", id);
		return SQLITE_CONSTRAINT_FOREIGNKEY;
	}
	if (r_id >= 0 && tmp.hour >= 0 &&
	    (rc = slot_reconcile(st, &tmp, r_id)) != SQLITE_OK)
		return rc;
	s = rollup_cache_slot(st, id, &fresh);
	*s = tmp;
	*out = s;
	return SQLITE_OK;
}

/*
 * Write slot S's state row from its newest check (the UPSERT keeps
 * since_ms unless CHANGED), r_agg and r_id with it, and note what the
 * row now holds.  SQLite result code.
 */
static int
state_put(struct store *st, struct rollup_slot *s, int changed)
{
	sqlite3_stmt *q = s->row ? st->s_state_upd : st->s_state;
	int rc;

again:
	sqlite3_bind_int64(q, 1, s->monitor_id);
	sqlite3_bind_text(q, 2, s->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, s->ts_ms);
	bind_opt_double(q, 4, s->latency_ms);
	sqlite3_bind_int(q, 5, changed ? 1 : 0);
	sqlite3_bind_int(q, 6, s->streak);
	sqlite3_bind_int64(q, 7, (sqlite3_int64)s->repeats);
	sqlite3_bind_int64(q, 8, s->notified_ms);
	sqlite3_bind_int64(q, 9, s->escalated_ms);
	if (s->hour >= 0) {
		sqlite3_bind_int64(q, 10, s->hour);
		sqlite3_bind_blob(q, 11, st->roll_blob,
		    (int)rollup_encode(&s->agg, st->roll_blob),
		    SQLITE_STATIC);
	}
	sqlite3_bind_int64(q, 12, s->check_id);
	if ((rc = st_step_done(q)) != SQLITE_OK)
		return rc;
	if (q == st->s_state_upd && sqlite3_changes(st->db) == 0) {
		/* Someone else deleted the row. */
		q = st->s_state;
		goto again;
	}
	s->row = 1;
	s->dirty = 0;
	s->row_ts = s->ts_ms;
	return SQLITE_OK;
}

/*
 * The state row: check C (id CHECK_ID) is counted in slot S (NEW_HOUR: it
 * opened the slot's hour); write the row now if it would otherwise say
 * something the policy or a reader must not miss -- a new monitor, a
 * change of state or of a policy counter (streak_class()), a new open
 * hour (a reload from the row must not count the old hour again), or a
 * row STATE_FLUSH_MS older than the check -- and otherwise only note the check in the slot (dirty), for a
 * later write: state_sweep(), or the close.  Until then the row's r_agg
 * and last_check_ms lag by at most STATE_FLUSH_MS of checks; the checks
 * rows are already there, and slot_reconcile() recounts them after a
 * crash.  This saves the UPSERT on nearly every check (BENCHMARKS.md).
 * SQLite result code.
 */
static int
state_note(struct store *st, struct rollup_slot *s,
    const struct store_check *c, int64_t check_id, int new_hour)
{
	const char *state = c->state != NULL ? c->state : "";
	int must;

	/* s holds the previous check, and so (state_put() or not) what the
	 * row says about everything compared here. */
	must = !s->row || c->state_changed || new_hour ||
	    strcmp(state, s->state) != 0 ||
	    streak_class(state, c->streak) != streak_class(s->state,
	    s->streak) || c->repeats != s->repeats ||
	    c->notified_ms != s->notified_ms ||
	    c->escalated_ms != s->escalated_ms || s->row_ts == INT64_MIN ||
	    c->ts_ms - s->row_ts >= STATE_FLUSH_MS;
	str_copy(s->state, sizeof(s->state), state);
	s->ts_ms = c->ts_ms;
	s->check_id = check_id;
	s->latency_ms = c->latency_ms;
	s->streak = c->streak;
	s->repeats = c->repeats;
	s->notified_ms = c->notified_ms;
	s->escalated_ms = c->escalated_ms;
	if (must)
		return state_put(st, s, c->state_changed);
	s->dirty = 1;
	return SQLITE_OK;
}

/*
 * Write the dirty state rows whose last write is STATE_FLUSH_MS old (all
 * of them with ALL: at close), at most SWEEP_MAX per transaction unless
 * ALL, so a monitor checked no more still gets its row brought up to
 * date.  Writer thread, between batches.  A failure is logged only: the
 * rows stay dirty, and slot_reconcile() would recount them anyway.
 */
static void
state_sweep(struct store *st, int all)
{
	int64_t before = wall_ms() - STATE_FLUSH_MS;
	size_t i, n = 0;
	int rc;

	st->sweep_next_ms = mono_ms() + STATE_FLUSH_MS / 4;
	if (st->db == NULL)
		return;
	for (i = 0; i < st->roll_cap; i++)
		if (st->roll[i].monitor_id != 0 && st->roll[i].dirty &&
		    (all || st->roll[i].row_ts < before))
			break;
	if (i == st->roll_cap)
		return;
	if ((rc = st_step_done(st->s_begin)) != SQLITE_OK)
		goto fail;
	for (; i < st->roll_cap && (all || n < SWEEP_MAX); i++) {
		if (st->roll[i].monitor_id == 0 || !st->roll[i].dirty ||
		    (!all && st->roll[i].row_ts >= before))
			continue;
		if ((rc = state_put(st, &st->roll[i], 0)) != SQLITE_OK)
			goto fail;
		n++;
	}
	if ((rc = st_step_done(st->s_commit)) == SQLITE_OK)
		return;
fail:
	log_warn("store: writing %zu state row(s): %s", n,
	    sqlite3_errmsg(st->db));
	if (!sqlite3_get_autocommit(st->db))
		st_step_done(st->s_rollback);
	/* What the cache says about the rows is no longer known. */
	rollup_cache_reset(st);
}

/*
 * Count check C in its monitor's open hour (S, its slot from slot_get(),
 * whose hour and aggregate the caller writes to the state row).  The
 * first check of an hour flushes the hour before into rollup_hours and
 * rollup_days; a check older than the open hour goes straight into its
 * hour's rows.  No table is scanned: a state row is read once per
 * monitor, and the roll-up rows once per monitor and hour.  SQLite
 * result code.
 */
static int
rollup_note_check(struct store *st, const struct store_check *c,
    struct rollup_slot *s)
{
	struct rollup_agg one;
	int64_t hour;
	int rc;

	hour = c->ts_ms >= 0 ? c->ts_ms / ROLLUP_HOUR_MS :
	    (c->ts_ms - ROLLUP_HOUR_MS + 1) / ROLLUP_HOUR_MS;
	if (s->hour >= 0 && hour < s->hour) {
		rollup_clear(&one);
		rollup_add(&one, c->state, c->ok, c->latency_ms);
		return rollup_flush(st, c->monitor_id, hour, &one);
	}
	if (hour > s->hour) {
		if (s->agg.checks > 0 && (rc = rollup_flush(st, c->monitor_id,
		    s->hour, &s->agg)) != SQLITE_OK)
			return rc;
		rollup_clear(&s->agg);
		s->hour = hour;
	}
	rollup_add(&s->agg, c->state, c->ok, c->latency_ms);
	return SQLITE_OK;
}

/*
 * A check that changed its monitor's state: the open incident, if any,
 * ends at its start; a change to down opens one with its reason and
 * error.  SQLite result code.
 */
static int
incident_note(struct store *st, const struct store_check *c)
{
	int rc;

	sqlite3_bind_int64(st->s_inc_close, 1, c->monitor_id);
	sqlite3_bind_int64(st->s_inc_close, 2, c->ts_ms);
	if ((rc = st_step_done(st->s_inc_close)) != SQLITE_OK)
		return rc;
	if (c->state == NULL || strcmp(c->state, "down") != 0)
		return SQLITE_OK;
	sqlite3_bind_int64(st->s_inc_open, 1, c->monitor_id);
	sqlite3_bind_int64(st->s_inc_open, 2, c->ts_ms);
	sqlite3_bind_text(st->s_inc_open, 3, reason_name(c->reason), -1,
	    SQLITE_STATIC);
	bind_opt_text(st->s_inc_open, 4, c->error, sizeof(c->error));
	return st_step_done(st->s_inc_open);
}

/*
 * Retention of the history (one transaction, once the raw rows are
 * done): roll-ups of hours and days before CUTOFF_MS and incidents that
 * ended before it.  SQLite result code.
 */
static int
rollup_expire(struct store *st, int64_t cutoff_ms, int64_t *deleted)
{
	int64_t key[4] = { cutoff_ms / ROLLUP_HOUR_MS,
	    cutoff_ms / ROLLUP_DAY_MS, cutoff_ms / ROLLUP_DAY_MS / 7,
	    cutoff_ms };
	int i, rc;

	*deleted = 0;
	if ((rc = st_step_done(st->s_begin)) != SQLITE_OK)
		return rc;
	for (i = 0; i < 4; i++) {
		sqlite3_bind_int64(st->s_roll_expire[i], 1, key[i]);
		if ((rc = st_step_done(st->s_roll_expire[i])) != SQLITE_OK)
			return rc;
		*deleted += sqlite3_changes(st->db);
	}
	return st_step_done(st->s_commit);
}

/* Outbox rows A[0..N) inside the open transaction.  SQLite result code. */
static int
write_outbox(struct store *st, const struct store_alert *alerts, size_t n)
{
	const struct store_alert *a;
	struct rollup_slot *slot;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		a = &alerts[i];
		if ((rc = slot_get(st, a->monitor_id, &slot)) != SQLITE_OK)
			return rc;
		sqlite3_bind_int64(st->s_outbox, 1, a->id);
		sqlite3_bind_int64(st->s_outbox, 2, a->monitor_id);
		sqlite3_bind_text(st->s_outbox, 3, a->alert_name,
		    (int)strnlen(a->alert_name, sizeof(a->alert_name)),
		    SQLITE_STATIC);
		sqlite3_bind_text(st->s_outbox, 4,
		    a->payload != NULL ? a->payload : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st->s_outbox, 5, a->created_ms);
		if ((rc = st_step_done(st->s_outbox)) != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/* A policy_only item (store_check): the counters and the outbox rows. */
static int
write_policy(struct store *st, const struct item *it)
{
	const struct store_check *c = &it->u.chk.c;
	struct rollup_slot *s;
	int rc;

	sqlite3_bind_int64(st->s_policy, 1, c->monitor_id);
	sqlite3_bind_int64(st->s_policy, 2, (sqlite3_int64)c->repeats);
	sqlite3_bind_int64(st->s_policy, 3, c->notified_ms);
	sqlite3_bind_int64(st->s_policy, 4, c->escalated_ms);
	if ((rc = st_step_done(st->s_policy)) != SQLITE_OK)
		return rc;
	/* The row has them now. */
	if ((s = rollup_cache_find(st, c->monitor_id)) != NULL) {
		s->repeats = c->repeats;
		s->notified_ms = c->notified_ms;
		s->escalated_ms = c->escalated_ms;
	}
	return write_outbox(st, it->u.chk.alerts, it->u.chk.n_alerts);
}

/* A silences row written or deleted, inside the open transaction. */
static int
write_silence(struct store *st, const struct item *it)
{
	const struct store_silence *s = &it->u.sil.s;

	if (it->u.sil.remove) {
		sqlite3_bind_int64(st->s_unsilence, 1, s->id);
		return st_step_done(st->s_unsilence);
	}
	sqlite3_bind_int64(st->s_silence, 1, s->id);
	sqlite3_bind_text(st->s_silence, 2, s->monitors, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st->s_silence, 3, s->until_ms);
	sqlite3_bind_int64(st->s_silence, 4, s->created_ms);
	if (s->comment != NULL)
		sqlite3_bind_text(st->s_silence, 5, s->comment, -1,
		    SQLITE_STATIC);
	return st_step_done(st->s_silence);
}

/* A holds row written or deleted, inside the open transaction. */
static int
write_hold(struct store *st, const struct item *it)
{
	const struct store_hold *h = &it->u.hold.h;
	struct rollup_slot *slot;
	int rc;

	if (it->u.hold.remove) {
		sqlite3_bind_int64(st->s_unhold, 1, h->monitor_id);
		return st_step_done(st->s_unhold);
	}
	if ((rc = slot_get(st, h->monitor_id, &slot)) != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(st->s_hold, 1, h->monitor_id);
	sqlite3_bind_text(st->s_hold, 2, h->before, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st->s_hold, 3, h->since_ms);
	bind_opt_text(st->s_hold, 4, h->held_state, sizeof(h->held_state));
	if (h->held_state[0] != '\0')
		sqlite3_bind_int64(st->s_hold, 5, h->held_at);
	return st_step_done(st->s_hold);
}

/* Step a statement that returns no rows and reset it, keeping its
 * bindings (the caller binds every parameter each time).  SQLite result
 * code. */
static int
step_reset(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void
bind_null_or_double(sqlite3_stmt *s, int i, double v)
{
	if (v < 0)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_double(s, i, v);
}

/* Bind check C to the st->check_cols parameters of S after BASE, every
 * one of them (NULL where C has nothing). */
static void
bind_check(const struct store *st, sqlite3_stmt *s, int base,
    const struct store_check *c)
{
	size_t n = strnlen(c->error, sizeof(c->error));

	base--;		/* the columns after id: monitor_id is base + 2 */
	sqlite3_bind_int64(s, base + 2, c->monitor_id);
	sqlite3_bind_int64(s, base + 3, c->ts_ms);
	sqlite3_bind_int(s, base + 4, c->ok ? 1 : 0);
	bind_null_or_double(s, base + 5, c->latency_ms);
	if (c->status_code >= 0)
		sqlite3_bind_int(s, base + 6, c->status_code);
	else
		sqlite3_bind_null(s, base + 6);
	if (n > 0)
		sqlite3_bind_text(s, base + 7, c->error, (int)n,
		    SQLITE_STATIC);
	else
		sqlite3_bind_null(s, base + 7);
	sqlite3_bind_text(s, base + 8, reason_name(c->reason), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(s, base + 9, c->attempts);
	bind_null_or_double(s, base + 10, c->dns_ms);
	bind_null_or_double(s, base + 11, c->connect_ms);
	bind_null_or_double(s, base + 12, c->tls_ms);
	bind_null_or_double(s, base + 13, c->first_byte_ms);
	if (c->cert_expiry != 0)
		sqlite3_bind_int64(s, base + 14, c->cert_expiry);
	else
		sqlite3_bind_null(s, base + 14);
	sqlite3_bind_int(s, base + 15, c->maintenance ? 1 : 0);
	if (st->agent == NULL)
		return;
	/* Cluster mode: the store's own strings, valid while it is. */
	sqlite3_bind_text(s, base + 16, st->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, base + 17, st->location, -1, SQLITE_STATIC);
	if (c->grid >= 0)
		sqlite3_bind_int64(s, base + 18, c->grid);
	else
		sqlite3_bind_null(s, base + 18);
}

/*
 * What a check adds besides its row (inserted as CHECK_ID): its open
 * hour, its state row (state_note()), an incident change, its outbox
 * rows, and with WITH_MEAS its measurements (else the caller wrote them:
 * write_group_meas()).  SQLite result code.
 */
static int
check_rest(struct store *st, const struct item *it, int64_t check_id,
    int with_meas)
{
	const struct store_check *c = &it->u.chk.c;
	struct rollup_slot *slot;
	int64_t hour;
	size_t i;
	int rc;

	/* The slot is there (the caller's slot_get()); found again, as
	 * another monitor's slot_get() may have moved it. */
	if ((rc = slot_get(st, c->monitor_id, &slot)) != SQLITE_OK)
		return rc;
	for (i = 0; with_meas && i < it->u.chk.n_meas; i++) {
		sqlite3_bind_int64(st->s_measure, 1, check_id);
		sqlite3_bind_text(st->s_measure, 2, it->u.chk.meas[i].name, -1,
		    SQLITE_STATIC);
		sqlite3_bind_double(st->s_measure, 3, it->u.chk.meas[i].value);
		if ((rc = st_step_done(st->s_measure)) != SQLITE_OK)
			return rc;
	}
	hour = slot->hour;
	if ((rc = rollup_note_check(st, c, slot)) != SQLITE_OK ||
	    (rc = state_note(st, slot, c, check_id, slot->hour != hour)) !=
	    SQLITE_OK)
		return rc;
	if (c->state_changed && (rc = incident_note(st, c)) != SQLITE_OK)
		return rc;
	return write_outbox(st, it->u.chk.alerts, it->u.chk.n_alerts);
}

/* Write one item inside the open transaction.  SQLite result code. */
static int
write_item(struct store *st, const struct item *it)
{
	const struct store_check *c;
	struct rollup_slot *slot;
	size_t i;
	int rc;

	if (it->kind == ITEM_DELIVERY) {
		for (i = 0; i <= it->u.dlv.n_more; i++) {
			int64_t id = i == 0 ? it->u.dlv.alert_id :
			    it->u.dlv.more_ids[i - 1];

			if (it->u.dlv.delivered) {
				sqlite3_bind_int64(st->s_delivered, 1, id);
				rc = st_step_done(st->s_delivered);
			} else {
				sqlite3_bind_int64(st->s_attempt, 1, id);
				bind_opt_text(st->s_attempt, 2, it->u.dlv.error,
				    sizeof(it->u.dlv.error));
				sqlite3_bind_int64(st->s_attempt, 3,
				    it->u.dlv.at_ms);
				rc = st_step_done(st->s_attempt);
			}
			if (rc != SQLITE_OK)
				return rc;
		}
		return SQLITE_OK;
	}
	if (it->kind == ITEM_ALERTS)
		return write_outbox(st, it->u.chk.alerts, it->u.chk.n_alerts);
	if (it->kind == ITEM_SILENCE)
		return write_silence(st, it);
	if (it->kind == ITEM_HOLD)
		return write_hold(st, it);
	c = &it->u.chk.c;
	if (c->policy_only)
		return write_policy(st, it);
	if ((rc = slot_get(st, c->monitor_id, &slot)) != SQLITE_OK)
		return rc;
	bind_check(st, st->s_checks[1], 0, c);
	if ((rc = step_reset(st->s_checks[1])) != SQLITE_OK)
		return rc;
	st->next_id = sqlite3_last_insert_rowid(st->db) + 1;
	return check_rest(st, it, st->next_id - 1, 1);
}

/*
 * The measurements of the checks [i, i + k) of the batch at HEAD, just
 * inserted as rows next_id..., in INSERTs of up to MEAS_GROUP rows
 * (s_meas[n]): a ping stores two per check, and a statement per row cost
 * more than its row.  In the checks' order, so of a name given twice the
 * last value stays (OR REPLACE), as row by row.  SQLite result code.
 */
static int
write_group_meas(struct store *st, size_t head, size_t i, size_t k)
{
	const struct item *it;
	const struct store_measure *me;
	const char *names[MEAS_GROUP];
	int64_t ids[MEAS_GROUP];
	double vals[MEAS_GROUP];
	size_t j, m, n = 0, b;
	int rc;

	for (j = 0; j <= k; j++) {
		it = j < k ? &st->ring[(head + i + j) % st->cap] : NULL;
		/* Write what is gathered before a check whose measurements
		 * would not fit, and at the end. */
		if (n > 0 && (it == NULL || n + it->u.chk.n_meas >
		    MEAS_GROUP)) {
			for (b = 0; b < n; b++) {
				sqlite3_bind_int64(st->s_meas[n],
				    (int)(3 * b + 1), ids[b]);
				sqlite3_bind_text(st->s_meas[n], (int)(3 * b + 2),
				    names[b], -1, SQLITE_STATIC);
				sqlite3_bind_double(st->s_meas[n],
				    (int)(3 * b + 3), vals[b]);
			}
			if ((rc = step_reset(st->s_meas[n])) != SQLITE_OK)
				return rc;
			n = 0;
		}
		if (it == NULL)
			break;
		for (m = 0; m < it->u.chk.n_meas; m++) {
			me = &it->u.chk.meas[m];
			if (it->u.chk.n_meas <= MEAS_GROUP) {
				ids[n] = st->next_id + (int64_t)j;
				names[n] = me->name;
				vals[n++] = me->value;
				continue;
			}
			/* More than a statement holds: row by row. */
			sqlite3_bind_int64(st->s_measure, 1,
			    st->next_id + (int64_t)j);
			sqlite3_bind_text(st->s_measure, 2, me->name, -1,
			    SQLITE_STATIC);
			sqlite3_bind_double(st->s_measure, 3, me->value);
			if ((rc = st_step_done(st->s_measure)) != SQLITE_OK)
				return rc;
		}
	}
	return SQLITE_OK;
}

/*
 * Items [i, i + k) of the batch at HEAD, all checks, in one INSERT of k
 * rows (s_checks[k]), then each one's other rows.  One statement for k
 * rows saves k - 1 statements' set-up and tear-down (cursors opened and
 * closed, the VM reset): about 3,000 instructions a row (BENCHMARKS.md).
 * Not in careful mode: an item that fails fails the statement, and so
 * the batch, which is then written item by item.  SQLite result code.
 */
static int
write_checks(struct store *st, size_t head, size_t i, size_t k)
{
	const struct item *it;
	struct rollup_slot *slot;
	size_t j;
	int rc;

	for (j = 0; j < k; j++) {
		it = &st->ring[(head + i + j) % st->cap];
		if ((rc = slot_get(st, it->u.chk.c.monitor_id, &slot)) !=
		    SQLITE_OK)
			return rc;
		bind_check(st, st->s_checks[k], (int)(j * st->check_cols),
		    &it->u.chk.c);
	}
	if ((rc = step_reset(st->s_checks[k])) != SQLITE_OK)
		return rc;
	/* SQLite gives each row the largest rowid + 1 (as it gives the
	 * rows of write_item()), so they are next_id...; only a table at
	 * the largest rowid there is gets random ones, and then the batch
	 * is written item by item (an item error: careful mode). */
	if (sqlite3_last_insert_rowid(st->db) != st->next_id + (int64_t)k -
	    1) {
		snprintf(st->item_msg, sizeof(st->item_msg), "unexpected "
		    "rowids");
		return SQLITE_MISMATCH;
	}
	if ((rc = write_group_meas(st, head, i, k)) != SQLITE_OK)
		return rc;
	for (j = 0; j < k; j++) {
		it = &st->ring[(head + i + j) % st->cap];
		if ((rc = check_rest(st, it, st->next_id++, 0)) != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

static void
log_skipped(const struct item *it, const char *msg)
{
	if (it->kind == ITEM_CHECK)
		log_err("store: check of monitor id %" PRId64 " at %" PRId64
		    " not stored: %s", it->u.chk.c.monitor_id,
		    it->u.chk.c.ts_ms, msg);
	else if (it->kind == ITEM_ALERTS)
		log_err("store: %zu released alerts not stored: %s",
		    it->u.chk.n_alerts, msg);
	else if (it->kind == ITEM_HOLD)
		log_err("store: hold of monitor id %" PRId64 " not recorded: "
		    "%s", it->u.hold.h.monitor_id, msg);
	else if (it->kind == ITEM_SILENCE)
		log_err("store: silence %" PRId64 " not %s: %s",
		    it->u.sil.s.id, it->u.sil.remove ? "deleted" : "stored",
		    msg);
	else
		log_err("store: delivery of alert %" PRId64 " not recorded: %s",
		    it->u.dlv.alert_id, msg);
}

/*
 * After a failed statement on the writer's connection (before any
 * rollback): its message into err, and st->damaged set when the file is
 * damaged.  Writer thread.
 */
static void
write_failed(struct store *st, char *err, size_t errlen)
{
	str_copy(err, errlen, sqlite3_errmsg(st->db));
	if (st_damaged(sqlite3_extended_errcode(st->db)))
		st->damaged = 1;
}

/* This thread's CPU time (µs): a slow batch that was not on the CPU
 * waited for the disk or for a core. */
static int64_t
thread_cpu_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Pages DB read from the file (or the WAL) since it opened: misses of its
 * page cache. */
static int
cache_misses(sqlite3 *db)
{
	int cur = 0, hi = 0;

	(void)sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0);
	return cur;
}

/* How many items from i on (of the batch of n at HEAD, at most
 * CHECK_GROUP) are checks that write_checks() can insert together. */
static size_t
check_run(struct store *st, size_t head, size_t i, size_t n)
{
	const struct item *it;
	size_t k;

	for (k = 0; i + k < n && k < CHECK_GROUP; k++) {
		it = &st->ring[(head + i + k) % st->cap];
		if (it->kind != ITEM_CHECK || it->u.chk.c.policy_only)
			break;
	}
	return k;
}

/*
 * Write items [head, head + n) of the ring in one transaction.  An item
 * the database rejects for itself (item_error()) is skipped whole, which
 * needs a savepoint around each item; savepoints copy every page an item
 * touches into the statement journal, so they are used only when CAREFUL.
 * Without CAREFUL the first rejected item rolls the transaction back and
 * returns 1, and the caller writes the batch again with CAREFUL.  0 (and
 * *nchecks checks written), 1, or WP_EIO with the message in err after
 * rolling back.
 */
static int
write_batch(struct store *st, size_t head, size_t n, int careful,
    uint64_t *nchecks, char *err, size_t errlen)
{
	const struct item *it;
	size_t i, k;
	int rc;

	*nchecks = 0;
	st->phase_us[0] = mono_us();
	st->phase_cpu_us[0] = thread_cpu_us();
	st->phase_miss[0] = cache_misses(st->db);
	if ((rc = st_step_done(st->s_begin)) != SQLITE_OK)
		goto fail;
	/* The next check's id: a group of rows in one INSERT
	 * (write_checks()) needs its ids for their measurements. */
	rc = sqlite3_step(st->s_maxid);
	st->next_id = sqlite3_column_int64(st->s_maxid, 0) + 1;
	sqlite3_reset(st->s_maxid);
	if (rc != SQLITE_ROW)
		goto fail;
	st->phase_us[1] = mono_us();
	for (i = 0; i < n; i++) {
		it = &st->ring[(head + i) % st->cap];
		if (!careful && (k = check_run(st, head, i, n)) > 1) {
			if ((rc = write_checks(st, head, i, k)) != SQLITE_OK &&
			    item_error(rc)) {
				st_step_done(st->s_rollback);
				rollup_cache_reset(st);
				return 1;
			} else if (rc != SQLITE_OK) {
				goto fail;
			}
			*nchecks += k;
			i += k - 1;
			continue;
		}
		if (careful && (rc = st_step_done(st->s_savepoint)) != SQLITE_OK)
			goto fail;
		st->item_msg[0] = '\0';
		rc = write_item(st, it);
		if (rc != SQLITE_OK && item_error(rc) && !careful) {
			st_step_done(st->s_rollback);
			rollup_cache_reset(st);
			return 1;
		} else if (rc != SQLITE_OK && item_error(rc)) {
			log_skipped(it, st->item_msg[0] != '\0' ?
			    st->item_msg : sqlite3_errmsg(st->db));
			if ((rc = st_step_done(st->s_rollback_to)) != SQLITE_OK)
				goto fail;
		} else if (rc != SQLITE_OK) {
			goto fail;
		} else if (it->kind == ITEM_CHECK &&
		    !it->u.chk.c.policy_only) {
			(*nchecks)++;
		}
		if (careful && (rc = st_step_done(st->s_release)) != SQLITE_OK)
			goto fail;
	}
	st->phase_us[2] = mono_us();
	if ((rc = st_step_done(st->s_commit)) != SQLITE_OK)
		goto fail;
	st->phase_us[3] = mono_us();
	st->phase_cpu_us[1] = thread_cpu_us();
	st->phase_miss[1] = cache_misses(st->db);
	/* A skipped item may have counted in its monitor's open hour. */
	if (careful)
		rollup_cache_reset(st);
	return 0;
fail:
	write_failed(st, err, errlen);
	if (!sqlite3_get_autocommit(st->db))
		st_step_done(st->s_rollback);
	rollup_cache_reset(st);
	*nchecks = 0;
	return WP_EIO;
}

/*
 * A written batch that took over SLOW_BATCH_MS: say where the time went
 * (waiting for the write lock, the rows, the commit), at most once per
 * SLOW_LOG_MS with the count since the last line, so a slow disk cannot
 * flood the log.  Writer thread.
 */
static void
log_slow_batch(struct store *st, size_t n, double ms)
{
	int64_t now = mono_ms();

	st->slow_since++;
	if (st->slow_logged_ms != 0 && now - st->slow_logged_ms < SLOW_LOG_MS)
		return;
	log_info("store: slow write: %zu items in %.1f ms (lock %.1f, rows "
	    "%.1f, commit %.1f ms; on CPU %.1f ms, %d pages read); %u "
	    "batch(es) over %d ms since the last such line", n, ms,
	    (double)(st->phase_us[1] - st->phase_us[0]) / 1000.0,
	    (double)(st->phase_us[2] - st->phase_us[1]) / 1000.0,
	    (double)(st->phase_us[3] - st->phase_us[2]) / 1000.0,
	    (double)(st->phase_cpu_us[1] - st->phase_cpu_us[0]) / 1000.0,
	    st->phase_miss[1] - st->phase_miss[0],
	    st->slow_since, SLOW_BATCH_MS);
	st->slow_logged_ms = now;
	st->slow_since = 0;
}

/*
 * One step of the rowid walk (transaction open): delete the rows older
 * than the cutoff in [r->lo, ...), range by range, until CHUNK rows went
 * or RET_SCAN_CHUNKS chunks' worth of rowids were looked at.  The table's
 * rowid B-tree is read in order, so a range costs its rows, and a range
 * of rows all kept costs no write.  Rows arrive nearly in time order, so
 * the old ones are the low rowids; the walk still looks at every rowid up
 * to r->hi, so rows written out of order (or by another program) go too.
 * A check's measurements go first, by their primary key: the writer's
 * connection has no foreign-key actions.  SQLite result code; *deleted.
 */
static int
retention_walk(struct store *st, struct retention *r, int64_t *deleted)
{
	sqlite3_stmt *del[2] = { st->s_ret_meas, st->s_retention };
	int64_t scanned = 0, span, end;
	int i, rc;

	while (r->lo <= r->hi && *deleted < r->chunk &&
	    scanned < (int64_t)r->chunk * RET_SCAN_CHUNKS) {
		span = r->chunk - *deleted;
		end = r->lo + span;
		for (i = 0; i < 2; i++) {
			sqlite3_bind_int64(del[i], 1, r->lo);
			sqlite3_bind_int64(del[i], 2, end);
			sqlite3_bind_int64(del[i], 3, r->cutoff_ms);
			if ((rc = st_step_done(del[i])) != SQLITE_OK)
				return rc;
		}
		*deleted += sqlite3_changes(st->db);
		scanned += span;
		r->lo = end;
	}
	return SQLITE_OK;
}

/*
 * One step of a retention request: a bounded part of the rowid walk
 * (retention_walk()) in its own transaction, or, once the walk is done,
 * an incremental vacuum step.  Sets *finished when the request is
 * complete.  0 or WP_EIO (err set).
 */
static int
retention_step(struct store *st, struct retention *r, int64_t *deleted,
    int *finished, char *err, size_t errlen)
{
	char sql[64];
	int64_t fl = 0, mode = 0, rolled, lo0 = r->lo;
	int rc, scanning0 = r->scanning;

	*deleted = 0;
	*finished = 0;
	if (!r->vacuuming) {
		if ((rc = st_step_done(st->s_begin)) != SQLITE_OK)
			goto fail;
		if (!r->scanning) {
			/* Inside the transaction, so no row is missed. */
			rc = sqlite3_step(st->s_ret_bounds);
			if (rc == SQLITE_ROW && sqlite3_column_type(
			    st->s_ret_bounds, 0) != SQLITE_NULL) {
				r->lo = sqlite3_column_int64(st->s_ret_bounds,
				    0);
				r->hi = sqlite3_column_int64(st->s_ret_bounds,
				    1);
			} else {
				r->lo = 1;
				r->hi = 0;
			}
			sqlite3_reset(st->s_ret_bounds);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE)
				goto fail;
			r->scanning = 1;
		}
		if ((rc = retention_walk(st, r, deleted)) != SQLITE_OK)
			goto fail;
		if ((rc = st_step_done(st->s_commit)) != SQLITE_OK)
			goto fail;
		if (r->lo > r->hi && r->rollup_cutoff_ms > 0) {
			if ((rc = rollup_expire(st, r->rollup_cutoff_ms,
			    &rolled)) != SQLITE_OK)
				goto fail;
			log_debug("store: retention: %" PRId64 " roll-up and "
			    "incident rows deleted", rolled);
		}
		if (r->lo > r->hi) {
			r->vacuuming = 1;
			r->freelist = -1;
		}
		return 0;
	}
	/*
	 * Vacuum a bounded number of pages per step so queued checks are
	 * written in between; stop when the free list is empty or stops
	 * shrinking (a file created without incremental auto_vacuum).
	 */
	if (st_query_int(st->db, "PRAGMA auto_vacuum", &mode) != 0 ||
	    st_query_int(st->db, "PRAGMA freelist_count", &fl) != 0) {
		write_failed(st, err, errlen);
		return WP_EIO;
	}
	if (mode != 2 || fl == 0 || (r->freelist >= 0 && fl >= r->freelist)) {
		*finished = 1;
		return 0;
	}
	r->freelist = fl;
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)",
	    VACUUM_PAGES);
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
fail:
	write_failed(st, err, errlen);
	if (!sqlite3_get_autocommit(st->db))
		st_step_done(st->s_rollback);
	/* Rolled back: the walk goes over the same rows again. */
	r->lo = lo0;
	r->scanning = scanning0;
	*deleted = 0;
	return WP_EIO;
}

static void
record_batch(struct store *st, double ms)
{
	size_t i;

	st->stats.batches++;
	st->stats.last_batch_ms = ms;
	if (ms > st->stats.max_batch_ms)
		st->stats.max_batch_ms = ms;
	st->stats.batch_ms_sum += ms;
	/* Cumulative, as Prometheus buckets are: le=5 counts every batch
	 * that took at most 5 ms; the last bucket counts all. */
	for (i = 0; i < 7; i++)
		if (ms <= bucket_le[i])
			st->stats.batch_ms_bucket[i]++;
	st->stats.batch_ms_bucket[7]++;
}

/*
 * Hand the outbox rows of the n items at head, just committed, to
 * on_commit (writer thread, mu not held on entry; held for the call).
 */
static void
notify_commit(struct store *st, size_t head, size_t n)
{
	const struct item *it;
	size_t i, j, k = 0;

	for (i = 0; i < n; i++) {
		it = &st->ring[(head + i) % st->cap];
		if (it->kind != ITEM_CHECK && it->kind != ITEM_ALERTS)
			continue;
		for (j = 0; j < it->u.chk.n_alerts; j++) {
			if (k == st->done_cap) {
				st->done_cap = st->done_cap ? st->done_cap * 2 :
				    16;
				st->done_rows = xrealloc(st->done_rows,
				    st->done_cap * sizeof(*st->done_rows));
			}
			st->done_rows[k] = it->u.chk.alerts[j];
			st->done_rows[k++].payload = NULL;
		}
	}
	if (k == 0)
		return;
	pthread_mutex_lock(&st->mu);
	if (st->on_commit != NULL)
		st->on_commit(st->on_commit_arg, st->done_rows, k);
	pthread_mutex_unlock(&st->mu);
}

/* Close a connection to files that may no longer be the database's.
 * Persistent WAL: closing the last connection must not unlink PATH-wal
 * and PATH-shm by name, which may by then be another file's. */
static void
close_stale(sqlite3 *db)
{
	int one = 1;

	if (db == NULL)
		return;
	(void)sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &one);
	sqlite3_close(db);
}

/* Close all three connections (writer thread; rmu held, mu not).  The
 * checkpoint thread closes its own, unless it has exited. */
static void
close_all(struct store *st)
{
	sqlite3 *cdb = NULL;

	st_finalize_writer(st);
	close_stale(st->db);
	st->db = NULL;
	close_stale(st->rdb);
	st->rdb = NULL;
	pthread_mutex_lock(&st->mu);
	if (st->ckpt_started && !st->ckpt_exited) {
		st->ckpt_drop = 1;
		pthread_cond_signal(&st->ckpt_cv);
		while (st->ckpt_drop && !st->ckpt_exited)
			pthread_cond_wait(&st->cv, &st->mu);
	}
	cdb = st->cdb;
	st->cdb = NULL;
	pthread_mutex_unlock(&st->mu);
	close_stale(cdb);
}

/* Open the three connections to st->path again (writer thread; rmu held,
 * mu not).  0, or WP_EIO with err set and every connection closed. */
static int
open_all(struct store *st, char *err, size_t errlen)
{
	sqlite3 *rdb = NULL, *cdb = NULL;

	if (st_open_writer(st, 0, err, errlen) != 0 ||
	    st_open_conn(st->path, BUSY_MS, &rdb, err, errlen) != 0 ||
	    (st->ckpt_started && st_open_conn(st->path, BUSY_MS, &cdb, err,
	    errlen) != 0)) {
		sqlite3_close(rdb);
		st_finalize_writer(st);
		sqlite3_close(st->db);
		st->db = NULL;
		return WP_EIO;
	}
	if (st->ckpt_started) {
		sqlite3_wal_hook(st->db, wal_hook, st);
		sqlite3_wal_autocheckpoint(rdb, 0);
	}
	st->rdb = rdb;
	pthread_mutex_lock(&st->mu);
	st->cdb = cdb;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

/*
 * The database, its -wal or its -shm was deleted, or another file moved
 * over it, while open (writer thread, between transactions, mu not held).
 * The writer's connection still sees every committed row through its
 * descriptors, so it copies them to PATH.recover (VACUUM INTO); then
 * every connection to the old files is closed, the old -wal and -shm are
 * removed (SQLite would replay that WAL into the new file), a file found
 * at PATH is kept as PATH.replaced (its -wal and -shm, which SQLite
 * would also replay, as PATH.replaced-wal and -shm), and the copy takes
 * PATH and is reopened.  Ids are the old file's, so what is queued or in memory
 * refers to the right monitors and alerts.  rmu is held throughout, so a
 * monitor sync cannot write to the old file after the copy.  0, or WP_EIO
 * with err set:
 * if the copy failed the old connections stay (writes go on to the old
 * file); if the reopen failed st->db is NULL.  Either way the next call
 * goes on from there.
 */
static int
recover_file(struct store *st, char *err, size_t errlen)
{
	static const char *const sfx[3] = { "", "-wal", "-shm" };
	struct file_id now[3];
	char tmp[PATH_MAX], name[PATH_MAX], side[PATH_MAX];
	char *sql;
	int rc, i;

	snprintf(tmp, sizeof(tmp), "%s.recover", st->path);
	pthread_mutex_lock(&st->rmu);
	rc = WP_EIO;
	if (st->db != NULL) {
		(void)unlink(tmp);
		sql = sqlite3_mprintf("VACUUM INTO %Q", tmp);
		rc = st_exec_sql(st->db, sql, err, errlen);
		sqlite3_free(sql);
		if (rc != 0) {
			(void)unlink(tmp);
			goto out;
		}
		rc = WP_EIO;
		close_all(st);
		/* What is at the path now: the old -wal and -shm go; a
		 * foreign file goes aside with its -wal and -shm. */
		st_file_ids(st->path, now);
		for (i = 2; i >= 0; i--) {
			if (now[i].ino == 0)
				continue;
			snprintf(name, sizeof(name), "%s%s", st->path, sfx[i]);
			snprintf(side, sizeof(side), "%s.replaced%s", st->path,
			    sfx[i]);
			if (now[i].ino == st->files[i].ino &&
			    now[i].dev == st->files[i].dev) {
				if (i > 0)
					(void)unlink(name);
			} else if (rename(name, side) == 0) {
				log_err("store: the file found at %s is kept "
				    "as %s", name, side);
			}
		}
		if (rename(tmp, st->path) != 0) {
			snprintf(err, errlen, "renaming its copy (.recover) "
			    "into place: %s", strerror(errno));
			goto out;
		}
	} else if (access(tmp, F_OK) == 0 && rename(tmp, st->path) != 0) {
		snprintf(err, errlen, "renaming its copy (.recover) "
		    "into place: %s", strerror(errno));
		goto out;
	}
	if (open_all(st, err, errlen) != 0)
		goto out;
	st_file_ids(st->path, st->files);
	rc = 0;
out:
	pthread_mutex_unlock(&st->rmu);
	return rc;
}

/*
 * Once every WATCH_MS (writer thread, mu not held): are PATH, PATH-wal and
 * PATH-shm still the files the store opened?  A -wal or -shm not seen yet
 * is adopted (SQLite creates them on first use).  If not, recover_file().
 */
static void
watch_files(struct store *st)
{
	static const char *const what[3] = { "", "-wal", "-shm" };
	struct file_id now[3];
	char err[512];
	int64_t checks = 0, pending = 0;
	int i, changed = -1;

	st->watch_next_ms = mono_ms() + WATCH_MS;
	if (!st->recovering) {
		st_file_ids(st->path, now);
		for (i = 0; i < 3 && changed < 0; i++) {
			if (i > 0 && st->files[i].ino == 0)
				st->files[i] = now[i];
			else if (now[i].ino != st->files[i].ino ||
			    now[i].dev != st->files[i].dev)
				changed = i;
		}
		if (changed < 0)
			return;
		log_err("store: %s%s was %s while open; recreating the "
		    "database from the open connection", st->path,
		    what[changed], now[changed].ino == 0 ? "deleted" :
		    "replaced by another file");
	}
	if (recover_file(st, err, sizeof(err)) != 0) {
		if (!st->recovering)
			log_err("store: cannot recreate %s, retrying every "
			    "second: %s", st->path, err);
		else
			log_debug("store: cannot recreate %s: %s", st->path,
			    err);
		st->recovering = 1;
		return;
	}
	st->recovering = 0;
	(void)st_query_int(st->db, "SELECT count(*) FROM checks", &checks);
	(void)st_query_int(st->db, "SELECT count(*) FROM outbox", &pending);
	log_warn("store: %s recreated with its history (%lld checks), the "
	    "monitors, their states and %lld pending alert(s)", st->path,
	    (long long)checks, (long long)pending);
	pthread_mutex_lock(&st->mu);
	st->stats.recovered++;
	pthread_mutex_unlock(&st->mu);
}

/*
 * Remove the n written items at the head (mu held).  What is left is
 * moved to the front of the ring when it is only a few items, which it is
 * whenever the writer keeps up: the ring then reuses its first slots and
 * never touches the rest, so its pages stay unmapped (65,536 slots of
 * about 420 bytes would otherwise all become resident as the head goes
 * round: 27 MB, S1 and S2 in BENCHMARKS.md).  A backlog is left in place.
 */
static void
pop(struct store *st, size_t n)
{
	st->head = (st->head + n) % st->cap;
	st->count -= n;
	if (st->count == 0)
		st->head = 0;
	else if (st->count <= st->gather_rows &&
	    st->head + st->count <= st->cap) {
		memmove(&st->ring[0], &st->ring[st->head],
		    st->count * sizeof(*st->ring));
		st->head = 0;
	}
}

/* Free everything queued, counted as lost; mu held.  Returns the number
 * of checks among them (the rest are delivery updates). */
static size_t
discard(struct store *st)
{
	size_t i, nc = 0;
	struct item *it;

	for (i = 0; i < st->count; i++) {
		it = &st->ring[(st->head + i) % st->cap];
		if (it->kind == ITEM_CHECK)
			nc++;
		st_free_item(it);
	}
	st->stats.lost += st->count;
	st->head = st->count = 0;
	return nc;
}

/* Drop everything still queued at shutdown; called with mu held. */
static void
give_up(struct store *st, int64_t tried_ms)
{
	size_t n = st->count, nc = discard(st);

	log_err("store: database still failing after %lld ms at shutdown; "
	    "%zu checks and %zu delivery updates lost: %s",
	    (long long)tried_ms, nc, n - nc, st->stats.last_error);
}

/* Complete (done()) and free every queued retention request, at
 * shutdown or once the file is damaged; mu held on entry and exit,
 * released around the callbacks. */
static void
abandon_retention(struct store *st)
{
	struct retention *r, *next;

	r = st->ret;
	st->ret = st->ret_tail = NULL;
	pthread_mutex_unlock(&st->mu);
	for (; r != NULL; r = next) {
		next = r->next;
		log_info("store: retention interrupted after %lld checks",
		    (long long)r->deleted);
		if (r->done != NULL)
			r->done(r->arg, r->deleted);
		free(r);
	}
	pthread_mutex_lock(&st->mu);
}

/*
 * Group commit (mu held): wait until the oldest queued item is GATHER_MS
 * old, gather_rows items are queued, or a stop is requested.  Not while
 * the database fails: the backoff spaces those attempts already.
 */
static void
gather(struct store *st)
{
	struct timespec ts;
	int64_t until;

	if (st->count == 0 || st->stopping || st->stats.failing)
		return;
	until = st->ring[st->head].queued_ms + GATHER_MS;
	while (st->count < st->gather_rows && !st->stopping &&
	    mono_ms() < until) {
		st_timespec_at(&ts, until);
		pthread_cond_timedwait(&st->cv, &st->mu, &ts);
	}
}

/*
 * Sleep for the backoff, waking early the first time a stop is requested
 * (so close starts draining at once) but not for new submissions.  mu held.
 */
static void
backoff_wait(struct store *st, int64_t ms, int64_t stop_deadline)
{
	struct timespec ts;
	int64_t until = mono_ms() + ms;
	int was_stopping = st->stopping;

	if (st->stopping && until > stop_deadline)
		until = stop_deadline;
	while (mono_ms() < until && st->stopping == was_stopping) {
		st_timespec_at(&ts, until);
		pthread_cond_timedwait(&st->cv, &st->mu, &ts);
	}
}

/*
 * The writer: write queued items in batches of up to BATCH_MAX, gathered
 * for up to GATHER_MS (gather()), with one retention step after each batch, backing off while the database fails.
 * Returns when stopping and the queue is empty, or when stopping and the
 * database has kept failing for DRAIN_GIVEUP_MS since the later of the
 * close and the first failure (what is left is logged and freed).  Queued
 * retention requests are then completed with what they deleted so far.
 * Runs on the writer thread, or on the closing thread if never started.
 */
static void
writer_run(struct store *st)
{
	struct retention *r;
	struct opmon_op *op;
	struct timespec ts;
	char err[256], opname[48];
	int64_t backoff = 0, fail_since = 0, deleted, t0, left, stop_deadline;
	uint64_t nchecks;
	size_t head, n, i;
	int brc, rrc, finished, watched_at_stop = 0, swept_at_stop = 0;
	unsigned fails = 0;
	double ms;

	pthread_mutex_lock(&st->mu);
	for (;;) {
		while (st->count == 0 && st->ret == NULL && !st->stopping &&
		    (st->damaged || mono_ms() < st->watch_next_ms)) {
			if (st->damaged) {
				pthread_cond_wait(&st->cv, &st->mu);
				continue;
			}
			st_timespec_at(&ts, st->watch_next_ms);
			pthread_cond_timedwait(&st->cv, &st->mu, &ts);
		}
		if (st->damaged) {
			/* Nothing is written any more: wait for the stop,
			 * discarding what comes (counted as lost). */
			discard(st);
			abandon_retention(st);
			if (st->stopping)
				break;
			continue;
		}
		/* Also once when the stop comes: the last rows must not go
		 * to a deleted file. */
		if (mono_ms() >= st->watch_next_ms ||
		    (st->stopping && !watched_at_stop)) {
			watched_at_stop = st->stopping;
			pthread_mutex_unlock(&st->mu);
			watch_files(st);
			if (!st->stopping && !st->damaged &&
			    !st->stats.failing &&
			    mono_ms() >= st->sweep_next_ms)
				state_sweep(st, 0);
			pthread_mutex_lock(&st->mu);
			continue;
		}
		gather(st);
		stop_deadline = st->giveup_ms;
		if (st->stats.failing &&
		    fail_since + DRAIN_GIVEUP_MS > stop_deadline)
			stop_deadline = fail_since + DRAIN_GIVEUP_MS;
		if (st->stopping) {
			if (st->count == 0 && !swept_at_stop) {
				/* Every state row up to date before the
				 * end (state_note()). */
				swept_at_stop = 1;
				pthread_mutex_unlock(&st->mu);
				state_sweep(st, 1);
				pthread_mutex_lock(&st->mu);
				continue;
			}
			if (st->count == 0)
				break;
			left = stop_deadline - mono_ms();
			if (st->stats.failing && left <= 0) {
				give_up(st, mono_ms() - fail_since);
				break;
			}
			/* One busy wait must not outlast the give-up time. */
			if (st->stats.failing && left < WRITER_BUSY_MS &&
			    st->db != NULL)
				sqlite3_busy_timeout(st->db, (int)left);
		}
		head = st->head;
		n = st->count < st->batch_max ? st->count : st->batch_max;
		st->busy = n;
		r = st->stopping ? NULL : st->ret;
		pthread_mutex_unlock(&st->mu);

		brc = rrc = finished = 0;
		nchecks = 0;
		deleted = 0;
		ms = 0;
		if (n > 0) {
			/* Each batch is an operation in the async-operation
			 * monitor, so a slow or failing database shows in
			 * /api/monitor and /metrics. */
			snprintf(opname, sizeof(opname), "store write "
			    "(%zu items)", n);
			op = opmon_begin_any(OPC_STORE, opname,
			    BATCH_DEADLINE_MS);
			t0 = mono_us();
			if (st->db == NULL) {
				/* recover_file() could not reopen it yet. */
				str_copy(err, sizeof(err), "the database file "
				    "is being recreated");
				brc = WP_EIO;
			} else {
				brc = write_batch(st, head, n, 0, &nchecks,
				    err, sizeof(err));
				if (brc == 1)
					brc = write_batch(st, head, n, 1,
					    &nchecks, err, sizeof(err));
			}
			ms = (double)(mono_us() - t0) / 1000.0;
			if (brc == 0 && ms > SLOW_BATCH_MS)
				log_slow_batch(st, n, ms);
			opmon_end_any(op, brc == 0 ? OP_SUCCEEDED : OP_FAILED,
			    brc == 0 ? NULL : err);
			if (brc == 0)
				notify_commit(st, head, n);
			/* Written: the payloads are no longer needed; the
			 * slots are popped under the lock below. */
			for (i = 0; brc == 0 && i < n; i++)
				st_free_item(&st->ring[(head + i) % st->cap]);
		}
		if (brc == 0 && r != NULL && st->db != NULL)
			rrc = retention_step(st, r, &deleted, &finished, err,
			    sizeof(err));

		pthread_mutex_lock(&st->mu);
		st->busy = 0;
		if (n > 0 && brc == 0) {
			pop(st, n);
			st->stats.written += nchecks;
			record_batch(st, ms);
		}
		if (r != NULL) {
			r->deleted += deleted;
			st->stats.retention_deleted += deleted;
		}
		if (st->damaged) {
			st->stats.write_errors++;
			st->stats.failing = 1;
			str_copy(st->stats.last_error,
			    sizeof(st->stats.last_error), err);
			log_err("store: %s: the database is damaged (%s): nothing "
			    "more is written to it (%zu queued item(s) lost); "
			    "move it aside to start with a new database", st->path,
			    err, st->count);
			if (st->on_damage != NULL) {
				pthread_mutex_unlock(&st->mu);
				st->on_damage(st->damage_arg);
				pthread_mutex_lock(&st->mu);
			}
		} else if (brc == 0 && rrc == 0) {
			if (st->stats.failing)
				log_info("store: writes recovered after %u "
				    "failed attempts", fails);
			st->stats.failing = 0;
			fails = 0;
			backoff = 0;
		} else {
			st->stats.write_errors++;
			str_copy(st->stats.last_error,
			    sizeof(st->stats.last_error), err);
			if (!st->stats.failing) {
				fail_since = mono_ms();
				log_warn("store: write failed, retrying: %s "
				    "(%zu items queued)", err, st->count);
			} else {
				log_debug("store: write failed again: %s", err);
			}
			st->stats.failing = 1;
			fails++;
			backoff = backoff == 0 ? BACKOFF_MIN_MS :
			    backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
			    backoff * 2;
			if (fail_since + DRAIN_GIVEUP_MS > stop_deadline)
				stop_deadline = fail_since + DRAIN_GIVEUP_MS;
			backoff_wait(st, backoff, stop_deadline);
		}
		if (finished) {
			/* Only the writer removes requests: r is the head. */
			st->ret = r->next;
			if (st->ret == NULL)
				st->ret_tail = NULL;
			pthread_mutex_unlock(&st->mu);
			/* The caller logs the outcome (done()). */
			if (r->done != NULL)
				r->done(r->arg, r->deleted);
			free(r);
			pthread_mutex_lock(&st->mu);
		}
	}
	abandon_retention(st);
	pthread_mutex_unlock(&st->mu);
	if (st->db != NULL)
		sqlite3_busy_timeout(st->db, WRITER_BUSY_MS);
}

static void *
writer_main(void *arg)
{
	writer_run(arg);
	return NULL;
}

/*
 * sqlite3_wal_hook() of the writer's connection, after each commit: ask for
 * a checkpoint once the WAL holds CKPT_FRAMES pages.  Replaces SQLite's
 * automatic checkpoint on that connection.
 */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *st = arg;

	(void)db;
	(void)name;
	if (frames < CKPT_FRAMES)
		return SQLITE_OK;
	pthread_mutex_lock(&st->mu);
	if (!st->ckpt_want) {
		st->ckpt_want = 1;
		pthread_cond_signal(&st->ckpt_cv);
	}
	pthread_mutex_unlock(&st->mu);
	return SQLITE_OK;
}

/*
 * The checkpoint thread: a PASSIVE checkpoint on its own connection each
 * time the WAL hook asks, until the store closes.  Each is an opmon store
 * operation.  A failure is logged at debug (the writer reports a failing
 * database) and the next attempt waits CKPT_RETRY_MS.
 */
static void *
ckpt_main(void *arg)
{
	struct store *st = arg;
	struct timespec ts;
	struct opmon_op *op;
	sqlite3 *db;
	int rc, wal = 0, done = 0;
	int64_t until;

	pthread_mutex_lock(&st->mu);
	for (;;) {
		while (!st->ckpt_want && !st->ckpt_drop && !st->stopping)
			pthread_cond_wait(&st->ckpt_cv, &st->mu);
		db = st->cdb;
		if (st->ckpt_drop) {
			/* recover_file(): the old file's connection goes;
			 * the writer puts the new one in cdb. */
			st->cdb = NULL;
			pthread_mutex_unlock(&st->mu);
			close_stale(db);
			pthread_mutex_lock(&st->mu);
			st->ckpt_drop = 0;
			pthread_cond_broadcast(&st->cv);
			continue;
		}
		if (st->stopping)
			break;
		st->ckpt_want = 0;
		if (db == NULL)
			continue;
		pthread_mutex_unlock(&st->mu);
		op = opmon_begin_any(OPC_STORE, "store checkpoint",
		    BATCH_DEADLINE_MS);
		rc = sqlite3_wal_checkpoint_v2(db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, &wal, &done);
		opmon_end_any(op, rc == SQLITE_OK ? OP_SUCCEEDED : OP_FAILED,
		    rc == SQLITE_OK ? NULL : sqlite3_errmsg(db));
		pthread_mutex_lock(&st->mu);
		if (rc == SQLITE_OK)
			continue;
		log_debug("store: checkpoint failed: %s", sqlite3_errmsg(db));
		until = mono_ms() + CKPT_RETRY_MS;
		while (!st->stopping && !st->ckpt_drop && mono_ms() < until) {
			st_timespec_at(&ts, until);
			pthread_cond_timedwait(&st->ckpt_cv, &st->mu, &ts);
		}
	}
	st->ckpt_exited = 1;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

void
store_on_damage(struct store *st, void (*fn)(void *arg), void *arg)
{
	if (st == NULL || st->started)
		return;
	st->on_damage = fn;
	st->damage_arg = arg;
}

int
store_start(struct store *st)
{
	char err[256];
	int rc;

	if (st == NULL || st->started || st->ckpt_started)
		return WP_EINVAL;
	/*
	 * The checkpoint thread first, and the WAL hook set before the writer
	 * thread uses the connection.  Without it SQLite checkpoints by
	 * itself, inside the writer's commits.
	 */
	if (st_open_conn(st->path, BUSY_MS, &st->cdb, err, sizeof(err)) != 0) {
		log_warn("store: no checkpoint thread: %s", err);
	} else if ((rc = pthread_create(&st->ckpt_thread, NULL, ckpt_main,
	    st)) != 0) {
		log_warn("store: no checkpoint thread: %s", strerror(rc));
		sqlite3_close(st->cdb);
		st->cdb = NULL;
	} else {
		pthread_setname_np(st->ckpt_thread, "wp-ckpt");
		st->ckpt_started = 1;
		sqlite3_wal_hook(st->db, wal_hook, st);
		/* A monitor sync must not checkpoint the writer's pages
		 * either (the WAL may now hold CKPT_FRAMES of them). */
		pthread_mutex_lock(&st->rmu);
		sqlite3_wal_autocheckpoint(st->rdb, 0);
		pthread_mutex_unlock(&st->rmu);
	}
	rc = pthread_create(&st->thread, NULL, writer_main, st);
	if (rc != 0) {
		log_err("store: cannot start the writer thread: %s",
		    strerror(rc));
		return WP_EIO;
	}
	pthread_setname_np(st->thread, "wp-store");
	st->started = 1;
	return 0;
}

/*
 * Append the slot at the tail, filled by the caller (mu held).  The writer
 * waits for a first item or for gather_rows of them (gather()), so only
 * those two counts need a wake-up: one per batch, not one per item.
 */
static struct item *
push(struct store *st, enum item_kind kind)
{
	struct item *it = &st->ring[(st->head + st->count) % st->cap];

	it->kind = kind;
	it->queued_ms = mono_ms();
	st->count++;
	if (st->count == 1 || st->count == st->gather_rows)
		pthread_cond_signal(&st->cv);
	return it;
}

/* 1 at 1, 10, 100...: how often a counter of losses is logged, to keep a
 * full queue from flooding the log. */
static int
log_count(uint64_t d)
{
	while (d % 10 == 0)
		d /= 10;
	return d == 1;
}

/* Count a drop; mu held. */
static void
count_drop(struct store *st)
{
	if (log_count(++st->stats.dropped))
		log_warn("store: queue full (%zu items): %llu items dropped "
		    "so far", st->cap,
		    (unsigned long long)st->stats.dropped);
}

/* A check that changed nothing but its own row: the only kind of item a
 * full queue may lose. */
static int
plain(const struct item *it)
{
	return it->kind == ITEM_CHECK && !it->u.chk.c.state_changed &&
	    it->u.chk.n_alerts == 0 && !it->u.chk.c.policy_only;
}

/*
 * Make room for an item that must not be dropped (mu held, queue full):
 * remove the newest queued plain check outside the writer's batch and
 * move the items queued after it down one slot, so the order of what is
 * left does not change.  Plain checks are usually the newest items, so
 * little moves.  1 if one was shed, 0 if every movable item matters.
 */
static int
shed_plain(struct store *st)
{
	size_t i, j;

	for (i = st->count; i-- > st->busy; ) {
		if (!plain(&st->ring[(st->head + i) % st->cap]))
			continue;
		/* Its measurements go with it. */
		st_free_item(&st->ring[(st->head + i) % st->cap]);
		for (j = i; j + 1 < st->count; j++)
			st->ring[(st->head + j) % st->cap] =
			    st->ring[(st->head + j + 1) % st->cap];
		st->count--;
		if (log_count(++st->stats.shed))
			log_warn("store: queue full (%zu items): %llu plain "
			    "check rows shed so far to keep state changes "
			    "and alerts", st->cap,
			    (unsigned long long)st->stats.shed);
		return 1;
	}
	return 0;
}

/* Room for one more item (mu held); a full queue refuses a plain check
 * and sheds one for anything else.  0, or WP_EAGAIN (counted). */
static int
make_room(struct store *st, int is_plain)
{
	if (st->count < st->cap || (!is_plain && shed_plain(st)))
		return 0;
	count_drop(st);
	if (!is_plain)
		log_err("store: queue full of state changes and alert rows "
		    "(%zu); one was dropped", st->cap);
	return WP_EAGAIN;
}

/*
 * The queue's copy of C's measurements (store_check): the first
 * STORE_MEASURES_MAX with a name and a finite value (REAL NOT NULL cannot
 * hold NaN), names cut at STORE_MEASURE_NAME_MAX, in one block.  NULL and
 * *n 0 when none is kept.
 */
static struct store_measure *
copy_measures(const struct store_check *c, size_t *n)
{
	struct store_measure *v;
	size_t i, k = 0, len[STORE_MEASURES_MAX], bytes = 0, max;
	char *p;

	*n = 0;
	max = c->meas == NULL ? 0 : c->n_meas < STORE_MEASURES_MAX ?
	    c->n_meas : STORE_MEASURES_MAX;
	for (i = 0; i < max; i++)
		if (c->meas[i].name != NULL && isfinite(c->meas[i].value)) {
			len[i] = strnlen(c->meas[i].name,
			    STORE_MEASURE_NAME_MAX);
			bytes += len[i] + 1;
			k++;
		}
	if (k == 0)
		return NULL;
	v = xmalloc(k * sizeof(*v) + bytes);
	p = (char *)(v + k);
	for (i = 0, k = 0; i < max; i++) {
		if (c->meas[i].name == NULL || !isfinite(c->meas[i].value))
			continue;
		memcpy(p, c->meas[i].name, len[i]);
		p[len[i]] = '\0';
		v[k].name = p;
		v[k++].value = c->meas[i].value;
		p += len[i] + 1;
	}
	*n = k;
	return v;
}

int
store_submit(struct store *st, const struct store_check *c,
    struct store_alert *alerts, size_t n_alerts)
{
	struct store_alert *copy = NULL;
	struct store_measure *meas;
	struct item *it;
	size_t i, n_meas;

	if (st == NULL || c == NULL || (n_alerts > 0 && alerts == NULL)) {
		for (i = 0; alerts != NULL && i < n_alerts; i++) {
			free(alerts[i].payload);
			alerts[i].payload = NULL;
		}
		return WP_EINVAL;
	}
	if (n_alerts > 0) {
		copy = xmalloc(n_alerts * sizeof(*copy));
		memcpy(copy, alerts, n_alerts * sizeof(*copy));
		for (i = 0; i < n_alerts; i++)
			alerts[i].payload = NULL;
	}
	meas = copy_measures(c, &n_meas);
	pthread_mutex_lock(&st->mu);
	if (make_room(st, !c->state_changed && n_alerts == 0 &&
	    !c->policy_only) != 0) {
		pthread_mutex_unlock(&st->mu);
		for (i = 0; i < n_alerts; i++)
			free(copy[i].payload);
		free(copy);
		free(meas);
		return WP_EAGAIN;
	}
	it = push(st, ITEM_CHECK);
	it->u.chk.c = *c;
	it->u.chk.c.meas = NULL;
	it->u.chk.c.n_meas = 0;
	it->u.chk.alerts = copy;
	it->u.chk.n_alerts = n_alerts;
	it->u.chk.meas = meas;
	it->u.chk.n_meas = n_meas;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int
store_submit_delivery(struct store *st, int64_t alert_id, int delivered,
    const char *error)
{
	struct item *it;
	int64_t now = wall_ms();

	if (st == NULL)
		return WP_EINVAL;
	pthread_mutex_lock(&st->mu);
	if (make_room(st, 0) != 0) {
		pthread_mutex_unlock(&st->mu);
		return WP_EAGAIN;
	}
	it = push(st, ITEM_DELIVERY);
	it->u.dlv.more_ids = NULL;
	it->u.dlv.n_more = 0;
	it->u.dlv.alert_id = alert_id;
	it->u.dlv.delivered = delivered ? 1 : 0;
	it->u.dlv.at_ms = now;
	str_copy(it->u.dlv.error, sizeof(it->u.dlv.error), error);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

void
store_on_commit(struct store *st,
    void (*fn)(void *arg, const struct store_alert *rows, size_t n),
    void *arg)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->mu);
	st->on_commit = fn;
	st->on_commit_arg = arg;
	pthread_mutex_unlock(&st->mu);
}

int
store_retention(struct store *st, int64_t cutoff_ms, int chunk,
    void (*done)(void *arg, int64_t deleted), void *arg)
{
	return store_retention_history(st, cutoff_ms, 0, chunk, done, arg);
}

int
store_retention_history(struct store *st, int64_t cutoff_ms,
    int64_t rollup_cutoff_ms, int chunk,
    void (*done)(void *arg, int64_t deleted), void *arg)
{
	struct retention *r;

	if (st == NULL || chunk <= 0)
		return WP_EINVAL;
	r = xcalloc(1, sizeof(*r));
	r->cutoff_ms = cutoff_ms;
	r->rollup_cutoff_ms = rollup_cutoff_ms;
	r->chunk = chunk;
	r->done = done;
	r->arg = arg;
	pthread_mutex_lock(&st->mu);
	if (st->stopping) {
		pthread_mutex_unlock(&st->mu);
		free(r);
		return WP_EINVAL;
	}
	if (st->ret_tail != NULL)
		st->ret_tail->next = r;
	else
		st->ret = r;
	st->ret_tail = r;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int
store_close(struct store *st)
{
	uint64_t lost;
	int rc;

	if (st == NULL)
		return 0;
	pthread_mutex_lock(&st->mu);
	st->stopping = 1;
	st->giveup_ms = mono_ms() + DRAIN_GIVEUP_MS;
	pthread_cond_broadcast(&st->cv);
	pthread_cond_broadcast(&st->ckpt_cv);
	pthread_mutex_unlock(&st->mu);
	if (st->ckpt_started)
		pthread_join(st->ckpt_thread, NULL);
	if (st->started)
		pthread_join(st->thread, NULL);
	else
		writer_run(st);
	/* The writer is done: no lock needed. */
	lost = st->stats.dropped + st->stats.shed + st->stats.lost;
	if (lost > 0)
		log_err("store: %s: %llu result(s) never reached the database: "
		    "%llu dropped because the queue was full, %llu shed for "
		    "state changes and alerts, %llu discarded unwritten",
		    st->path, (unsigned long long)lost,
		    (unsigned long long)st->stats.dropped,
		    (unsigned long long)st->stats.shed,
		    (unsigned long long)st->stats.lost);
	rc = lost > 0 || st->damaged ? WP_EIO : 0;
	st_destroy(st);
	return rc;
}


/* ---- holds (hold.h) ---- */

int
store_submit_alerts(struct store *st, struct store_alert *alerts, size_t n)
{
	struct store_alert *copy;
	struct item *it;
	size_t i;

	if (st == NULL || n == 0 || alerts == NULL) {
		for (i = 0; alerts != NULL && i < n; i++) {
			free(alerts[i].payload);
			alerts[i].payload = NULL;
		}
		return WP_EINVAL;
	}
	copy = xmalloc(n * sizeof(*copy));
	memcpy(copy, alerts, n * sizeof(*copy));
	for (i = 0; i < n; i++)
		alerts[i].payload = NULL;
	pthread_mutex_lock(&st->mu);
	if (make_room(st, 0) != 0) {
		pthread_mutex_unlock(&st->mu);
		for (i = 0; i < n; i++)
			free(copy[i].payload);
		free(copy);
		return WP_EAGAIN;
	}
	it = push(st, ITEM_ALERTS);
	memset(&it->u.chk, 0, sizeof(it->u.chk));
	it->u.chk.alerts = copy;
	it->u.chk.n_alerts = n;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int
store_submit_silence(struct store *st, const struct store_silence *s,
    int remove)
{
	struct item *it;

	if (st == NULL || s == NULL || (!remove && s->monitors == NULL))
		return WP_EINVAL;
	pthread_mutex_lock(&st->mu);
	if (make_room(st, 0) != 0) {
		pthread_mutex_unlock(&st->mu);
		return WP_EAGAIN;
	}
	it = push(st, ITEM_SILENCE);
	it->u.sil.remove = remove ? 1 : 0;
	it->u.sil.s.id = s->id;
	it->u.sil.s.until_ms = s->until_ms;
	it->u.sil.s.created_ms = s->created_ms;
	it->u.sil.s.monitors = !remove ? xstrdup(s->monitors) : NULL;
	it->u.sil.s.comment = !remove && s->comment != NULL ?
	    xstrdup(s->comment) : NULL;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int
store_submit_hold(struct store *st, const struct store_hold *h, int remove)
{
	struct item *it;

	if (st == NULL || h == NULL || h->monitor_id == 0)
		return WP_EINVAL;
	pthread_mutex_lock(&st->mu);
	if (make_room(st, 0) != 0) {
		pthread_mutex_unlock(&st->mu);
		return WP_EAGAIN;
	}
	it = push(st, ITEM_HOLD);
	it->u.hold.h = *h;
	it->u.hold.remove = remove ? 1 : 0;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int
store_submit_deliveries(struct store *st, const int64_t *ids, size_t n,
    int delivered, const char *error)
{
	struct item *it;
	int64_t now = wall_ms();

	if (st == NULL || n == 0)
		return WP_EINVAL;
	pthread_mutex_lock(&st->mu);
	if (make_room(st, 0) != 0) {
		pthread_mutex_unlock(&st->mu);
		return WP_EAGAIN;
	}
	it = push(st, ITEM_DELIVERY);
	it->u.dlv.alert_id = ids[0];
	it->u.dlv.n_more = n - 1;
	it->u.dlv.more_ids = n > 1 ? xmalloc((n - 1) * sizeof(*ids)) : NULL;
	if (n > 1)
		memcpy(it->u.dlv.more_ids, ids + 1, (n - 1) * sizeof(*ids));
	it->u.dlv.delivered = delivered ? 1 : 0;
	it->u.dlv.at_ms = now;
	str_copy(it->u.dlv.error, sizeof(it->u.dlv.error), error);
	pthread_mutex_unlock(&st->mu);
	return 0;
}
