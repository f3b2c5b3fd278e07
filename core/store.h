/*
 * store -- everything watchpost keeps in SQLite.
 *
 * Tables: the contract's `monitors` and `checks`, plus `measurements` (the
 * named numbers of a check, deleted with it), `state` (current state per
 * monitor), `outbox` (alert deliveries, durable until delivered) and `meta`
 * (schema version).  WAL mode, a busy timeout, an index on
 * checks(monitor_id, ts).
 *
 * Threads: store_open/store_sync_monitors/store_load_* run on the main or
 * loop thread before or outside the hot path (they are synchronous).  After
 * store_start(), all writes go through store_submit(), which never blocks:
 * it appends to a bounded queue that one writer thread drains in batched
 * transactions.  A slow or locked database delays writes, never checks.
 *
 * What the queue never drops: a check that changed its monitor's state, the
 * alert (outbox) rows it carries, and delivery updates.  When the queue is
 * full, a plain check row (no state change, no alert) is refused, or, to
 * make room for one of those, the newest queued plain check is shed.
 *
 * The file: once a second the writer checks that the database, its -wal
 * and its -shm are still the files it opened.  If one was deleted or
 * another file moved over it, the still-open database is copied back to
 * the path (VACUUM INTO), so history, monitors, states and the outbox
 * survive; a file found in its place is kept as PATH.replaced.
 */
#ifndef CORE_STORE_H
#define CORE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_MEASURES_MAX	16	/* measurements stored per check */
#define STORE_MEASURE_NAME_MAX	64	/* characters of a measurement name */

/*
 * A named number a check reported.  name is [a-z_][a-z0-9_]* of at most
 * STORE_MEASURE_NAME_MAX characters with its unit as a suffix
 * ("loss_ratio", "jitter_seconds"), validated by the caller.
 */
struct store_measure {
	const char *name;
	double value;
};

/* One finished check (after its retries), with its effect on state. */
struct store_check {
	int64_t monitor_id;
	int64_t ts_ms;          /* unix ms when the check started */
	int ok;
	double latency_ms;      /* < 0: NULL */
	int status_code;        /* < 0: NULL */
	int reason;             /* enum wp_reason */
	char error[256];        /* "" when ok (stored as NULL) */
	int attempts;           /* 1 + retries used */
	double dns_ms, connect_ms, tls_ms, first_byte_ms; /* < 0: NULL */
	int64_t cert_expiry;    /* 0: NULL */
	/* The monitor's state after this check, for the `state` table: a
	 * string with static storage (mstate_name()), kept by the queue. */
	const char *state;
	int state_changed;      /* 1 if this check changed the state */
	/*
	 * Its measurements, borrowed: store_submit() copies them, and they
	 * are written in the check's transaction, or shed and dropped with
	 * it.  Only the first STORE_MEASURES_MAX are kept; one whose value
	 * is not finite (NaN: nothing measured) is not stored; a name given
	 * twice keeps its last value.
	 */
	const struct store_measure *meas;
	size_t n_meas;
	/*
	 * The state row's policy counters (policy.h struct policy_state),
	 * written with the state.  policy_only: there is no check (a
	 * reminder or an escalation raised on a timer): only the counters
	 * below and the outbox rows are written, in one transaction, so a
	 * restart neither repeats nor loses one.  Such an item is never
	 * shed; of the rest only monitor_id is read.
	 */
	int streak;             /* > 0 good checks in a row, < 0 failed */
	unsigned repeats;       /* reminders raised in this down episode */
	int64_t notified_ms;    /* the DOWN alert or last reminder; 0: none */
	int64_t escalated_ms;   /* largest escalate delay notified; 0: none */
	int policy_only;
	/* 1: checked while its alerts were held by a maintenance window or
	 * a silence (hold.h), stored as checks.maintenance. */
	int maintenance;
	/* Cluster mode (store_set_cluster()): the index of the wall-clock
	 * grid point (cluster.h) the check was made for, checks.grid; < 0:
	 * NULL (a push, or a slot not yet on the grid).  Not read in single
	 * mode. */
	int64_t grid;
};

/* An alert to deliver: written to the outbox in the same transaction as
 * the check that caused it.  id is assigned by the caller (store_next_ids). */
struct store_alert {
	int64_t id;
	int64_t monitor_id;
	char alert_name[128];   /* [alert:NAME] */
	char *payload;          /* JSON text of struct wp_alert fields (owned by
	                           the queue after submit) */
	int64_t created_ms;
};

/* Loaded at start: current state per monitor. */
struct store_state {
	int64_t monitor_id;
	char state[16];         /* mstate_name(): "up", "down", ... */
	int64_t last_check_ms;  /* 0: never */
	double latency_ms;      /* < 0: NULL */
	int64_t since_ms;       /* when the current state began */
	/* The policy counters (store_check). */
	int streak;
	unsigned repeats;
	int64_t notified_ms;
	int64_t escalated_ms;
};

/* Loaded at start: undelivered alerts. */
struct store_pending_alert {
	int64_t id;
	int64_t monitor_id;
	char alert_name[128];
	char *payload;          /* owned by the array; store_free_pending */
	int attempts;
	int64_t created_ms;
	char last_error[256];   /* the last failed attempt's; "" none */
};

struct store_stats {
	size_t queue_depth;     /* items waiting for the writer */
	size_t queue_capacity;
	uint64_t written;       /* checks written */
	uint64_t dropped;       /* items refused because the queue was full */
	uint64_t shed;          /* queued plain checks removed to make room
	                           for state changes and alert rows */
	uint64_t recovered;     /* times the file was recreated (deleted or
	                           replaced while open) */
	uint64_t batches;       /* transactions committed */
	uint64_t write_errors;  /* failed transactions (retried) */
	double last_batch_ms;   /* duration of the last transaction */
	double max_batch_ms;    /* longest transaction since start */
	uint64_t batch_ms_bucket[8]; /* histogram: <=1,5,10,25,50,100,250,+Inf ms */
	double batch_ms_sum;
	int64_t retention_deleted; /* rows deleted by retention since start */
	uint64_t lost;          /* items discarded unwritten: the database was
	                           damaged, or still failing at shutdown */
	int failing;            /* 1 while the last write failed */
	char last_error[256];
};

/*
 * Open (create) the database at PATH, check it (PRAGMA quick_check, cut
 * short on a big file) and migrate it to the current schema.  A damaged
 * file, or one that is not an SQLite database, is refused and left as it
 * is.  queue_capacity bounds the writer queue (items).  Returns 0 and
 * *out, or a negative WP_E* code with a message in err that names PATH
 * (and, for a damaged file, what to do).
 */
int store_open(const char *path, size_t queue_capacity, struct store **out,
    char *err, size_t errlen);

/*
 * Make the monitors table match: insert names not present, update types;
 * rows of monitors no longer configured are kept (their history stays).
 * ids[i] receives the id of names[i].  Synchronous.  0 or WP_E*.
 */
int store_sync_monitors(struct store *st, const char *const *names,
    const char *const *types, size_t n, int64_t *ids);

/* Current state of every monitor that has one (caller frees *out). */
int store_load_state(struct store *st, struct store_state **out, size_t *n);
/* Undelivered alerts in id order (the order they were raised); free with
 * store_free_pending. */
int store_load_pending(struct store *st, struct store_pending_alert **out,
    size_t *n);
void store_free_pending(struct store_pending_alert *p, size_t n);

/*
 * The measurements of monitor_id's last stored check (the latest ts), in
 * name order.  Committed rows only: a check still queued for the writer
 * (50 ms at most, longer while the database fails) is not seen yet.
 * Returns 0 with *out one allocation holding the array and its names
 * (free() it; NULL when *n is 0) and *ts_ms that check's start time (0:
 * the monitor has no stored check; ts_ms may be NULL); WP_EINVAL, or
 * WP_EIO (logged; also while the file is being recreated).  Any thread.
 */
int store_last_measurements(struct store *st, int64_t monitor_id,
    struct store_measure **out, size_t *n, int64_t *ts_ms);
/* The largest outbox id ever used (0 if none), to continue numbering. */
int64_t store_max_alert_id(struct store *st);

/*
 * fn(arg) is called once, on the writer thread, when a write or retention
 * step finds the database file damaged (SQLITE_CORRUPT, SQLITE_NOTADB):
 * retrying cannot help, so the store then writes nothing more, and what is
 * queued or submitted later is discarded and counted as lost.  Set it
 * before store_start(); fn may be NULL.
 */
void store_on_damage(struct store *st, void (*fn)(void *arg), void *arg);

/*
 * fn(arg, rows, n) is called on the writer thread after each transaction
 * that wrote outbox rows, with those rows (borrowed for the call; payload
 * is NULL): only then may they be delivered.  Rows of a check the database
 * refused for itself (a constraint) are reported too, as no retry can
 * store them.  fn is called with the store's lock held: it must neither
 * block nor call into the store.  Once store_on_commit(st, NULL, NULL)
 * returns, fn is not called again.
 */
void store_on_commit(struct store *st,
    void (*fn)(void *arg, const struct store_alert *rows, size_t n),
    void *arg);

/*
 * Cluster mode: every checks row from now on records AGENT (the [cluster]
 * name) and LOCATION in checks.agent and checks.location, and each
 * check's store_check.grid in checks.grid; both strings are copied.  In
 * single mode (never called) the three columns stay NULL and the writer
 * binds nothing more.  Call it before store_start().  0, WP_EINVAL (a
 * NULL or empty name, or the writer started), or WP_EIO (the statements
 * could not be prepared; logged).
 */
int store_set_cluster(struct store *st, const char *agent,
    const char *location);

/* Start the writer thread.  0 or WP_E*. */
int store_start(struct store *st);

/*
 * Queue a finished check and the alerts it caused (n_alerts may be 0);
 * they are written in one transaction, with the state row and c's
 * measurements (copied: c->meas may go once this returns).  Any thread;
 * never blocks.  Takes ownership of each alerts[i].payload.  Returns 0, or
 * WP_EAGAIN when the queue is full (the item is dropped and counted): for
 * a check that changed state or carries alerts, only when every queued
 * item is such an item too.
 */
int store_submit(struct store *st, const struct store_check *c,
    struct store_alert *alerts, size_t n_alerts);
/* Record a delivery attempt: delivered = 1 removes it from the outbox.
 * Queued like a state change (never shed). */
int store_submit_delivery(struct store *st, int64_t alert_id, int delivered,
    const char *error);
/* The same for the N rows IDS of one group delivery (copied), as one
 * queue item: they are updated in one transaction.  0, WP_EAGAIN (queue
 * full) or WP_EINVAL (N is 0). */
int store_submit_deliveries(struct store *st, const int64_t *ids, size_t n,
    int delivered, const char *error);

/*
 * Delete checks older than cutoff_ms, and their measurements, in chunks of
 * `chunk` checks, each its own short transaction run by the writer thread between batches, then an
 * incremental vacuum.  Asynchronous: returns at once; done(arg, deleted) is
 * called on the writer thread when finished (may be NULL).
 */
int store_retention(struct store *st, int64_t cutoff_ms, int chunk,
    void (*done)(void *arg, int64_t deleted), void *arg);

/*
 * store_retention(), and then, with ROLLUP_CUTOFF_MS > 0, the history
 * older than it in one transaction: the hourly and daily roll-ups of
 * hours and days that began before it and the incidents that ended
 * before it (rollup_retention_days).  done() counts checks only.
 */
int store_retention_history(struct store *st, int64_t cutoff_ms,
    int64_t rollup_cutoff_ms, int chunk,
    void (*done)(void *arg, int64_t deleted), void *arg);

void store_get_stats(struct store *st, struct store_stats *out);

/*
 * Write everything queued, stop the writer, close.  Returns 0, or WP_EIO
 * when anything submitted since store_open() never reached the database
 * (dropped from a full queue, discarded after damage, still failing at
 * shutdown; the count is logged) or the database was found damaged.
 * NULL is fine (0).
 */
int store_close(struct store *st);

/* ---- holds (hold.h) ---- */

/*
 * Queue outbox rows without a check: an alert held by hold.c and released
 * later (the check that caused it was stored already).  Written in one
 * transaction, reported to on_commit like a check's rows, never shed.
 * Takes ownership of each payload (also on failure).  0, WP_EINVAL, or
 * WP_EAGAIN when the queue is full of items that must not be dropped.
 */
int store_submit_alerts(struct store *st, struct store_alert *alerts,
    size_t n);

/* A silence (POST /api/silences) as the silences table keeps it. */
struct store_silence {
	int64_t id;
	char *monitors;         /* JSON array of patterns */
	int64_t until_ms;       /* unix ms: it ends then */
	int64_t created_ms;
	char *comment;          /* NULL: none */
};

/*
 * Queue writing silence S (copied), or with REMOVE deleting the row of
 * S->id (only id is read).  Never shed.  0, WP_EINVAL or WP_EAGAIN.
 */
int store_submit_silence(struct store *st, const struct store_silence *s,
    int remove);
/* The silences that end after NOW_MS, in id order (store_free_silences());
 * 0 or WP_EIO (logged). */
int store_load_silences(struct store *st, int64_t now_ms,
    struct store_silence **out, size_t *n);
void store_free_silences(struct store_silence *s, size_t n);
/* The largest silence id ever used (0 if none), to continue numbering. */
int64_t store_max_silence_id(struct store *st);

/* A monitor's hold as the holds table keeps it, so that a restart inside
 * a window or silence still knows the state before it (hold.h). */
struct store_hold {
	int64_t monitor_id;
	char before[16];        /* mstate_name() when the hold began */
	int64_t since_ms;
	char held_state[16];    /* "" : no alert held yet */
	int64_t held_at;
};
/* Queue writing H (copied), or with REMOVE deleting monitor_id's row.
 * Never shed.  0, WP_EINVAL or WP_EAGAIN. */
int store_submit_hold(struct store *st, const struct store_hold *h,
    int remove);
/* Every stored hold (free() *out).  0 or WP_EIO (logged). */
int store_load_holds(struct store *st, struct store_hold **out, size_t *n);

#endif
