/*
 * store-int.h -- what store.c (open, check, migrate, the synchronous reads)
 * and store-writer.c (the writer and checkpoint threads, the queue, the
 * file watch) share: struct store and the helpers both use.  Private to
 * those two files; everyone else uses store.h.
 *
 * Two connections: `db` belongs to the writer (the caller's thread before
 * store_start(), the writer thread after it) and `rdb`, guarded by `rmu`,
 * serves store_sync_monitors() and store_load_*() from any thread.  WAL lets
 * `rdb` read while the writer writes; its busy timeout covers the short
 * writer transactions when it writes monitors.  A third, `cdb`, belongs to
 * the checkpoint thread.
 */
#ifndef CORE_STORE_INT_H
#define CORE_STORE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "rollup.h"
#include "store.h"

/*
 * A monitor in the writer's cache (monitor_id 0: empty): its open hour,
 * and its newest check's values for its state row, which the row lacks
 * while `dirty` (store-writer.c, state_note()).  What decides a rewrite
 * (the state, the streak's class, the policy counters, the hour) is in the
 * row whenever the row is not dirty, and the same as the row's when it
 * is, so these fields also say what the row holds.
 */
struct rollup_slot {
	int64_t monitor_id;
	int64_t hour;		/* hours since the epoch; < 0: none yet */
	struct rollup_agg agg;
	int row;		/* the monitor has a state row */
	int dirty;		/* checks counted in agg that the row lacks */
	int64_t row_ts;		/* the row's last_check_ms; INT64_MIN: write
				   it at the next check */
	char state[16];
	int64_t ts_ms, check_id;
	double latency_ms;
	int streak;
	unsigned repeats;
	int64_t notified_ms, escalated_ms;
};

#define BATCH_MAX	1000	/* items per writer transaction */
#define CHECK_GROUP	16	/* checks rows per INSERT, at most */
#define CHECK_COLS	14	/* parameters per checks row (all but id) ... */
#define CHECK_COLS_CLUSTER 17	/* ... and in cluster mode, with agent,
				   location and grid */
#define MEAS_GROUP	32	/* measurements rows per INSERT, at most */
#define BUSY_MS		5000	/* busy timeout of the synchronous calls */
/*
 * The writer retries on its own with backoff, so its busy handler only has
 * to ride out short locks (a checkpoint, a monitor sync); waiting longer
 * would only delay reporting a stuck database.
 */
#define WRITER_BUSY_MS	1000
#define GATHER_ROWS	256	/* a batch is written once this many items are
				   queued (at most half the queue, so
				   gathering never fills it) */

/* ITEM_ALERTS uses u.chk's alerts and n_alerts only (no check row);
 * ITEM_SILENCE writes or deletes a silences row, ITEM_HOLD a holds row. */
enum item_kind { ITEM_CHECK, ITEM_DELIVERY, ITEM_ALERTS, ITEM_SILENCE,
	ITEM_HOLD };

struct item {
	enum item_kind kind;
	int64_t queued_ms;	/* monotonic, when submitted */
	union {
		struct {
			struct store_check c;
			struct store_alert *alerts;	/* owned, with payloads */
			size_t n_alerts;
			/* Owned: one block, the names after the array
			 * (c.meas is NULL in the copy). */
			struct store_measure *meas;
			size_t n_meas;
		} chk;
		struct {
			int64_t alert_id;
			/* A group's further ids (owned; NULL: none), updated
			 * in the same statement run as alert_id. */
			int64_t *more_ids;
			size_t n_more;
			int delivered;
			int64_t at_ms;
			char error[256];
		} dlv;
		struct {
			struct store_silence s;	/* strings owned */
			int remove;
		} sil;
		struct {
			struct store_hold h;
			int remove;
		} hold;
	} u;
};

/* Which file a path names (0, 0: none). */
struct file_id {
	dev_t dev;
	ino_t ino;
};

/* A retention request; only the writer changes it once queued. */
struct retention {
	int64_t cutoff_ms;
	int chunk;
	void (*done)(void *, int64_t);
	void *arg;
	int64_t deleted;
	int vacuuming;
	int64_t freelist;	/* free pages before the last vacuum step */
	int64_t rollup_cutoff_ms; /* > 0: then roll-ups and closed
				   incidents before it go too */
	/* The rowid walk (retention_step()): the next id to look at and
	 * the largest id when the walk began (rows written after it are
	 * new); scanning is 0 until the walk has begun. */
	int64_t lo, hi;
	int scanning;
	struct retention *next;
};

struct store {
	char *path;
	sqlite3 *db;		/* writer connection */
	sqlite3 *rdb;		/* synchronous calls, under rmu */
	pthread_mutex_t rmu;

	/* Writer statements (prepared once, persistent). */
	sqlite3_stmt *s_begin, *s_commit, *s_rollback;
	sqlite3_stmt *s_savepoint, *s_release, *s_rollback_to;
	sqlite3_stmt *s_maxid, *s_state, *s_state_upd, *s_outbox, *s_measure;
	sqlite3_stmt *s_checks[CHECK_GROUP + 1];	/* [k]: k rows */
	sqlite3_stmt *s_meas[MEAS_GROUP + 1];	/* [k]: k measurements */
	sqlite3_stmt *s_delivered, *s_attempt;
	sqlite3_stmt *s_retention, *s_ret_meas, *s_ret_bounds;
	sqlite3_stmt *s_policy;
	/* Roll-ups and incidents (store-writer.c, rollup_*, incident_*). */
	sqlite3_stmt *s_roll_load, *s_known, *s_reconcile, *s_roll_put[3];
	sqlite3_stmt *s_inc_close, *s_inc_open;
	sqlite3_stmt *s_roll_expire[4];
	sqlite3_stmt *s_silence, *s_unsilence, *s_hold, *s_unhold;

	pthread_t thread;
	int started;
	sqlite3 *cdb;		/* the checkpoint thread's connection */
	pthread_t ckpt_thread;
	int ckpt_started;

	/* Everything below is guarded by mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* work arrived or stop requested */
	struct item *ring;
	size_t cap, head, count;
	size_t gather_rows;	/* GATHER_ROWS, or half of a smaller queue */
	size_t batch_max;	/* BATCH_MAX, or half of a smaller queue, so
				   half the queue can always be shed */
	struct retention *ret, *ret_tail;
	size_t busy;		/* head items the writer is writing */
	void (*on_commit)(void *, const struct store_alert *, size_t);
	void *on_commit_arg;
	int stopping;
	int ckpt_want;		/* the WAL hook asked for a checkpoint */
	int ckpt_drop;		/* the writer asks it to close cdb */
	int ckpt_exited;
	pthread_cond_t ckpt_cv;	/* ckpt_want, ckpt_drop or stopping changed */
	int64_t giveup_ms;	/* monotonic; only meaningful while stopping */
	struct store_stats stats;
	/* Writer thread only: when the last batch began, got the write
	 * lock, wrote its rows and committed (monotonic µs). */
	int64_t phase_us[4];
	int64_t phase_cpu_us[2];	/* its thread CPU time, begin and end */
	int phase_miss[2];		/* page cache misses, begin and end */
	int64_t slow_logged_ms;	/* monotonic, the last log_slow_batch line */
	unsigned slow_since;	/* slow batches since that line */
	/* Set by the writer thread when the file is found damaged; read by
	 * it and, after it ends, by store_close(). */
	int damaged;
	void (*on_damage)(void *);
	void *damage_arg;
	/* Writer thread only: the database, -wal and -shm it opened, when
	 * to look at them next, a recovery under way, and the outbox rows of
	 * the last committed batch (for on_commit). */
	struct file_id files[3];
	int64_t watch_next_ms;
	int recovering;
	struct store_alert *done_rows;
	size_t done_cap;
	/* Writer thread only: each monitor's open hour as its state row
	 * holds it, loaded on the monitor's first check (rollup_cache_*
	 * in store-writer.c); dropped whenever a transaction fails, as it
	 * may then hold rows that were rolled back. */
	struct rollup_slot *roll;
	size_t roll_cap, roll_n;
	/* The encoded open hour bound to s_state (SQLITE_STATIC: valid
	 * until the statement is reset, right after its step). */
	unsigned char roll_blob[ROLLUP_BLOB_MAX];
	/* Writer thread only: why the writer itself refused the item being
	 * written ("": SQLite did, sqlite3_errmsg() says why). */
	char item_msg[128];
	/* Writer thread only: the next sweep of stale state rows
	 * (state_sweep(); wall ms). */
	int64_t sweep_next_ms;
	/* Writer thread only: the id of the next checks row (write_batch()
	 * reads it inside each transaction). */
	int64_t next_id;
	/* Cluster mode (store_set_cluster(); set before the writer starts,
	 * then read-only): this agent's name and location, bound to every
	 * checks row; NULL in single mode.  check_cols: the parameters of
	 * a checks row in s_checks (CHECK_COLS or CHECK_COLS_CLUSTER). */
	char *agent, *location;
	int check_cols;
};

/* ---- store.c ---- */

/* Run SQL with no result rows.  0, or WP_EIO with the message in err. */
int st_exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen);
/* One integer from a single-row query: 0 and *out, or WP_EIO. */
int st_query_int(sqlite3 *db, const char *sql, int64_t *out);
/* Step a statement that returns no rows, reset it and clear its bindings.
 * SQLITE_OK or the SQLite result code. */
int st_step_done(sqlite3_stmt *s);
/* 1 if an SQLite result code says the file itself is damaged or is not
 * a database: no retry can help. */
int st_damaged(int rc);
/* Open one connection to PATH (created if missing) with the pragmas every
 * connection needs, for use by one thread at a time.  0 and *out, or
 * WP_EIO with a message naming PATH in err and *out NULL. */
int st_open_conn(const char *path, int busy_ms, sqlite3 **out, char *err,
    size_t errlen);
/* Open st->db to st->path, migrated, with the writer's statements
 * prepared; with CHECK, first refuse a damaged file.  0, or a negative
 * WP_E* code with err set and st->db NULL. */
int st_open_writer(struct store *st, int check, char *err, size_t errlen);
/* What PATH, PATH-wal and PATH-shm name now (a missing file: 0, 0). */
void st_file_ids(const char *path, struct file_id out[3]);
/* The absolute time for pthread_cond_timedwait() on the store's condition
 * variables (CLOCK_MONOTONIC) at monotonic ms. */
void st_timespec_at(struct timespec *ts, int64_t mono_ms);
/* Release everything store_open() acquired; the writer must be stopped. */
void st_destroy(struct store *st);

/* ---- store-writer.c ---- */

/* Free what a queued item owns (alerts, payloads, measurements); the slot
 * may then be reused. */
void st_free_item(struct item *it);
/* Prepare the writer's statements on st->db.  0, or WP_EIO with err set
 * (the ones prepared stay for st_finalize_writer()). */
int st_prepare_writer(struct store *st, char *err, size_t errlen);
/* Finalize the writer's statements (any that exist). */
void st_finalize_writer(struct store *st);

#endif
