/*
 * Unit tests for core/store.c and core/store-writer.c: schema and
 * migrations, monitor sync, the batched writer, state and outbox
 * semantics, a full queue, write faults (a lock held by another
 * connection, a trigger refusing inserts), measurements,
 * retention interleaved with writes, and draining at close.
 *
 * Every test works in its own mkdtemp directory under $TMPDIR (or /tmp)
 * and inspects the database through a separate SQLite connection.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "util.h"

struct fx {
	char dir[PATH_MAX];
	char db[PATH_MAX + 16];
	struct store *st;
	int64_t ids[3];		/* monitors "alpha", "beta", "gamma" */
};

static int
setup(void **state)
{
	struct fx *fx;
	const char *tmp = getenv("TMPDIR");

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "%s/wp-store-XXXXXX",
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

/* Open the fixture's store and register three monitors. */
static void
open_fx(struct fx *fx, size_t cap)
{
	static const char *const names[] = { "alpha", "beta", "gamma" };
	static const char *const types[] = { "http", "tcp", "ping" };
	char err[512] = "";
	int rc;

	rc = store_open(fx->db, cap, &fx->st, err, sizeof(err));
	if (rc != 0)
		fail_msg("store_open: %d %s", rc, err);
	assert_int_equal(store_sync_monitors(fx->st, names, types, 3,
	    fx->ids), 0);
}

static struct store_check
mk_check(int64_t monitor_id, int64_t ts, int ok, int changed)
{
	struct store_check c;

	memset(&c, 0, sizeof(c));
	c.monitor_id = monitor_id;
	c.ts_ms = ts;
	c.ok = ok;
	c.latency_ms = ok ? 12.5 : -1;
	c.status_code = ok ? 200 : -1;
	c.reason = ok ? WP_REASON_OK : WP_REASON_REFUSED;
	if (!ok)
		snprintf(c.error, sizeof(c.error), "connection refused");
	c.attempts = 1;
	c.dns_ms = c.connect_ms = c.tls_ms = c.first_byte_ms = -1;
	c.state = ok ? "up" : "down";
	c.state_changed = changed;
	return c;
}

static void
submit_n(struct store *st, int64_t monitor_id, int64_t ts0, int n)
{
	struct store_check c;
	int i;

	for (i = 0; i < n; i++) {
		c = mk_check(monitor_id, ts0 + i, 1, 0);
		assert_int_equal(store_submit(st, &c, NULL, 0), 0);
	}
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Poll the stats until written >= n; bounded by timeout_ms. */
static void
wait_written(struct store *st, uint64_t n, int timeout_ms)
{
	struct store_stats s;
	int64_t end = mono_ms() + timeout_ms;

	do {
		store_get_stats(st, &s);
		if (s.written >= n && s.queue_depth == 0)
			return;
		sleep_ms(5);
	} while (mono_ms() < end);
	fail_msg("written %llu of %llu, queue %zu, failing %d (%s)",
	    (unsigned long long)s.written, (unsigned long long)n,
	    s.queue_depth, s.failing, s.last_error);
}

/* Poll until the writer reports failing; bounded by timeout_ms. */
static void
wait_failing(struct store *st, int timeout_ms)
{
	struct store_stats s;
	int64_t end = mono_ms() + timeout_ms;

	do {
		store_get_stats(st, &s);
		if (s.failing && s.write_errors > 0)
			return;
		sleep_ms(5);
	} while (mono_ms() < end);
	fail_msg("the writer never reported a failure");
}

static sqlite3 *
conn(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void
sql_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		char buf[256];

		snprintf(buf, sizeof(buf), "%s", msg ? msg : "?");
		sqlite3_free(msg);
		fail_msg("%s: %s", sql, buf);
	}
}

/* One integer from a fresh connection to path. */
static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *db = conn(path);
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void
sql_text(const char *path, const char *sql, char *out, size_t len)
{
	sqlite3 *db = conn(path);
	sqlite3_stmt *s = NULL;

	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		snprintf(out, len, "%s", sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static void
test_fresh_schema(void **state)
{
	struct fx *fx = *state;
	char buf[64];

	open_fx(fx, 16);
	store_close(fx->st);
	fx->st = NULL;

	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'table' AND name IN ('meta', 'monitors', 'checks', "
	    "'state', 'outbox')"), 5);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'index' AND tbl_name = 'checks' AND "
	    "sql LIKE '%(monitor_id, ts)%'"), 1);
	sql_text(fx->db, "PRAGMA journal_mode", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	sql_text(fx->db, "SELECT value FROM meta WHERE key = 'schema_version'",
	    buf, sizeof(buf));
	assert_string_equal(buf, "7");
	assert_int_equal(sql_int(fx->db, "PRAGMA auto_vacuum"), 2);
	/* The contract's columns are there under their names. */
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM "
	    "pragma_table_info('checks') WHERE name IN ('id', 'monitor_id', "
	    "'ts', 'ok', 'latency_ms', 'status_code', 'error', 'reason', "
	    "'attempts', 'dns_ms', 'connect_ms', 'tls_ms', 'first_byte_ms', "
	    "'cert_expiry')"), 14);
	/* ... and cluster mode's (store_set_cluster()). */
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM "
	    "pragma_table_info('checks') WHERE name IN ('agent', 'location', "
	    "'grid')"), 3);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM monitors"), 3);
}

static void
test_reopen(void **state)
{
	struct fx *fx = *state;
	struct store_check c;
	int64_t first[3];

	open_fx(fx, 16);
	memcpy(first, fx->ids, sizeof(first));
	c = mk_check(fx->ids[0], 1000, 0, 1);
	c.cert_expiry = 1900000000;
	c.dns_ms = 1.5;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	store_close(fx->st);
	fx->st = NULL;

	open_fx(fx, 16);
	assert_memory_equal(first, fx->ids, sizeof(first));
	store_close(fx->st);
	fx->st = NULL;
	open_fx(fx, 16);
	store_close(fx->st);
	fx->st = NULL;

	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM monitors"), 3);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM meta"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT CAST(value AS INTEGER) "
	    "FROM meta WHERE key = 'schema_version'"), 7);
	/* NULL mapping and the reason's short name. */
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks WHERE "
	    "ok = 0 AND latency_ms IS NULL AND status_code IS NULL AND "
	    "error = 'connection refused' AND reason = 'refused' AND "
	    "attempts = 1 AND dns_ms = 1.5 AND connect_ms IS NULL AND "
	    "cert_expiry = 1900000000 AND ts = 1000"), 1);
}

static void
test_newer_schema_refused(void **state)
{
	struct fx *fx = *state;
	struct store *st = NULL;
	char err[512] = "";
	sqlite3 *db;
	FILE *f;

	open_fx(fx, 16);
	store_close(fx->st);
	fx->st = NULL;
	db = conn(fx->db);
	sql_exec(db, "UPDATE meta SET value = '99' "
	    "WHERE key = 'schema_version'");
	sqlite3_close(db);

	assert_int_equal(store_open(fx->db, 16, &st, err, sizeof(err)),
	    WP_EINVAL);
	assert_null(st);
	assert_non_null(strstr(err, "newer"));
	assert_non_null(strstr(err, "99"));
	/* Refused without touching it. */
	assert_int_equal(sql_int(fx->db, "SELECT CAST(value AS INTEGER) "
	    "FROM meta WHERE key = 'schema_version'"), 99);

	/* Not a database at all: an error, not a crash. */
	assert_non_null(f = fopen(fx->db, "w"));
	fputs("this is not an SQLite database, not even close........", f);
	fputs("...........................................................", f);
	fclose(f);
	err[0] = '\0';
	assert_true(store_open(fx->db, 16, &st, err, sizeof(err)) < 0);
	assert_null(st);
	assert_non_null(strstr(err, "store: "));
	assert_non_null(strstr(err, "not an SQLite database"));
}

/* Overwrite page PAGE (1-based) of the file at PATH with junk. */
static void
damage_page(const char *path, int64_t page, int64_t page_size)
{
	char junk[65536];
	FILE *f;

	assert_true(page_size > 0 && page_size <= (int64_t)sizeof(junk));
	memset(junk, 0xA5, sizeof(junk));
	assert_non_null(f = fopen(path, "r+b"));
	assert_int_equal(fseek(f, (long)((page - 1) * page_size), SEEK_SET),
	    0);
	assert_int_equal(fwrite(junk, 1, (size_t)page_size, f),
	    (size_t)page_size);
	assert_int_equal(fclose(f), 0);
}

/* A file with damaged pages is refused at open, and left as it was. */
static void
test_damaged_refused(void **state)
{
	struct fx *fx = *state;
	struct store *st = NULL;
	char err[512] = "";
	int64_t root, psize;

	open_fx(fx, 1000);
	submit_n(fx->st, fx->ids[0], 1, 500);
	assert_int_equal(store_close(fx->st), 0);
	fx->st = NULL;
	root = sql_int(fx->db, "SELECT rootpage FROM sqlite_master "
	    "WHERE name = 'checks'");
	psize = sql_int(fx->db, "PRAGMA page_size");
	damage_page(fx->db, root, psize);
	assert_true(store_open(fx->db, 16, &st, err, sizeof(err)) < 0);
	assert_null(st);
	assert_non_null(strstr(err, fx->db));
	assert_non_null(strstr(err, "the database is damaged"));
	assert_non_null(strstr(err, "move it aside"));
}

static void
damage_cb(void *arg)
{
	int *calls = arg;

	__atomic_add_fetch(calls, 1, __ATOMIC_SEQ_CST);
}

/*
 * Damage under a running writer: its next transaction reads a damaged
 * page (SQLITE_CORRUPT).  The damage callback runs once, nothing is
 * retried, what is queued then and submitted after is counted as lost,
 * and store_close() says so.
 */
static void
test_damage_at_run_time(void **state)
{
	struct fx *fx = *state;
	struct store_stats s;
	int64_t root, psize, end;
	int calls = 0;
	sqlite3 *db;

	open_fx(fx, 1000);
	store_on_damage(fx->st, damage_cb, &calls);
	assert_int_equal(store_start(fx->st), 0);
	submit_n(fx->st, fx->ids[0], 1, 500);
	wait_written(fx->st, 500, 15000);
	/* Everything into the main file, then the root page of checks
	 * overwritten there; another connection's write makes the writer
	 * drop its cache and read the page again. */
	db = conn(fx->db);
	sql_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	root = sql_int(fx->db, "SELECT rootpage FROM sqlite_master "
	    "WHERE name = 'checks'");
	psize = sql_int(fx->db, "PRAGMA page_size");
	damage_page(fx->db, root, psize);
	sql_exec(db, "INSERT OR REPLACE INTO meta VALUES ('poke', '1')");
	sqlite3_close(db);
	submit_n(fx->st, fx->ids[0], 1000, 10);
	end = mono_ms() + 15000;
	while (__atomic_load_n(&calls, __ATOMIC_SEQ_CST) == 0 &&
	    mono_ms() < end)
		sleep_ms(5);
	assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 1);
	submit_n(fx->st, fx->ids[0], 2000, 5);
	sleep_ms(200);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.write_errors, 1);
	assert_int_equal(s.failing, 1);
	assert_int_equal(s.written, 500);
	assert_int_equal(store_close(fx->st), WP_EIO);
	fx->st = NULL;
	assert_int_equal(calls, 1);
}

static void
test_sync_monitors(void **state)
{
	struct fx *fx = *state;
	const char *names[] = { "beta", "gamma", "delta" };
	const char *types[] = { "http", "ping", "tcp" };
	struct store_check c;
	int64_t ids[3];
	char buf[32];

	open_fx(fx, 64);
	assert_true(fx->ids[0] > 0 && fx->ids[1] > 0 && fx->ids[2] > 0);
	assert_true(fx->ids[0] != fx->ids[1] && fx->ids[1] != fx->ids[2] &&
	    fx->ids[0] != fx->ids[2]);
	c = mk_check(fx->ids[0], 5, 1, 1);
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	assert_int_equal(store_start(fx->st), 0);
	wait_written(fx->st, 1, 10000);

	/* alpha removed, beta changes type, delta is new. */
	assert_int_equal(store_sync_monitors(fx->st, names, types, 3, ids), 0);
	assert_int_equal(ids[0], fx->ids[1]);
	assert_int_equal(ids[1], fx->ids[2]);
	assert_true(ids[2] > 0 && ids[2] != fx->ids[0] &&
	    ids[2] != fx->ids[1] && ids[2] != fx->ids[2]);
	assert_int_equal(store_sync_monitors(fx->st, NULL, NULL, 0, NULL), 0);
	store_close(fx->st);
	fx->st = NULL;

	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM monitors"), 4);
	sql_text(fx->db, "SELECT type FROM monitors WHERE name = 'beta'", buf,
	    sizeof(buf));
	assert_string_equal(buf, "http");
	/* The removed monitor's history stays. */
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks JOIN "
	    "monitors ON monitors.id = checks.monitor_id "
	    "WHERE monitors.name = 'alpha'"), 1);
}

static void
test_bulk_10000(void **state)
{
	struct fx *fx = *state;
	struct store_state *ss = NULL;
	struct store_stats s;
	int64_t ids[3];
	const char *names[] = { "alpha", "beta", "gamma" };
	const char *types[] = { "http", "tcp", "ping" };
	size_t n = 0;
	int i;

	open_fx(fx, 20000);
	assert_int_equal(store_start(fx->st), 0);
	for (i = 0; i < 10000; i++) {
		struct store_check c = mk_check(fx->ids[i % 3], 1000 + i,
		    i % 7 != 0, 0);

		assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
		/* The synchronous calls work while the writer writes. */
		if (i == 5000) {
			assert_int_equal(store_sync_monitors(fx->st, names,
			    types, 3, ids), 0);
			assert_memory_equal(ids, fx->ids, sizeof(ids));
			assert_int_equal(store_load_state(fx->st, &ss, &n), 0);
			free(ss);
		}
	}
	wait_written(fx->st, 10000, 60000);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.written, 10000);
	assert_int_equal(s.dropped, 0);
	assert_int_equal(s.write_errors, 0);
	assert_int_equal(s.queue_depth, 0);
	assert_int_equal(s.queue_capacity, 20000);
	assert_true(s.batches >= 10);	/* at most 1,000 per transaction */
	assert_true(s.batches < 100);
	assert_int_equal(s.batch_ms_bucket[7], s.batches);
	assert_true(s.max_batch_ms >= s.last_batch_ms);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"),
	    10000);
	assert_int_equal(sql_int(fx->db, "SELECT count(DISTINCT ts) FROM "
	    "checks"), 10000);
}

/*
 * A small ring under a producer that outruns the writer and then idles:
 * the writer pops batches while items keep arriving, so the ring wraps,
 * and the leftovers are moved to its front (pop() in core/store-writer.c).
 * Every item must land exactly once and in submission order.
 */
static void
test_ring_order(void **state)
{
	struct fx *fx = *state;
	struct store_check c;
	int i, rc, tries;

	open_fx(fx, 300);
	assert_int_equal(store_start(fx->st), 0);
	for (i = 0; i < 6000; i++) {
		c = mk_check(fx->ids[i % 3], 1000 + i, 1, 0);
		tries = 0;
		while ((rc = store_submit(fx->st, &c, NULL, 0)) == WP_EAGAIN &&
		    tries++ < 5000)
			sleep_ms(1);
		assert_int_equal(rc, 0);
		if (i % 500 == 0)
			sleep_ms(60);	/* let the queue run empty */
	}
	wait_written(fx->st, 6000, 60000);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(DISTINCT ts) FROM "
	    "checks"), 6000);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks a "
	    "JOIN checks b ON b.id = a.id + 1 WHERE b.ts <= a.ts"), 0);
}

static void
test_one_transaction(void **state)
{
	struct fx *fx = *state;
	struct store_stats s;
	size_t i;

	open_fx(fx, 2000);
	submit_n(fx->st, fx->ids[1], 1, 1000);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.queue_depth, 1000);
	assert_int_equal(s.batches, 0);
	assert_int_equal(store_start(fx->st), 0);
	wait_written(fx->st, 1000, 30000);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.batches, 1);
	assert_int_equal(s.written, 1000);
	assert_true(s.last_batch_ms > 0);
	assert_true(s.batch_ms_sum == s.last_batch_ms);
	assert_true(s.max_batch_ms == s.last_batch_ms);
	/* Cumulative buckets: non-decreasing, the last one counts all. */
	for (i = 1; i < 8; i++)
		assert_true(s.batch_ms_bucket[i] >= s.batch_ms_bucket[i - 1]);
	assert_int_equal(s.batch_ms_bucket[7], 1);
}

static void
check_state(struct store *st, int64_t id, const char *state,
    int64_t last, int64_t since, double latency)
{
	struct store_state *v = NULL;
	size_t n = 0, i;

	assert_int_equal(store_load_state(st, &v, &n), 0);
	for (i = 0; i < n; i++)
		if (v[i].monitor_id == id)
			break;
	if (i == n) {
		free(v);
		fail_msg("no state for monitor %lld", (long long)id);
	}
	assert_string_equal(v[i].state, state);
	assert_int_equal(v[i].last_check_ms, last);
	assert_int_equal(v[i].since_ms, since);
	assert_true(v[i].latency_ms == latency);
	free(v);
}

static void
test_state(void **state)
{
	struct fx *fx = *state;
	struct store_state *v = NULL;
	struct store_check c;
	size_t n = 99;

	open_fx(fx, 64);
	assert_int_equal(store_load_state(fx->st, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(store_start(fx->st), 0);

	c = mk_check(fx->ids[0], 1000, 1, 1);
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	wait_written(fx->st, 1, 10000);
	check_state(fx->st, fx->ids[0], "up", 1000, 1000, 12.5);

	/* No change: since stays, last moves. */
	c = mk_check(fx->ids[0], 2000, 1, 0);
	c.latency_ms = 30;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	wait_written(fx->st, 2, 10000);
	check_state(fx->st, fx->ids[0], "up", 2000, 1000, 30);

	/* A failure that does not (yet) change the state: since stays. */
	c = mk_check(fx->ids[0], 2500, 0, 0);
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	/* Then the change. */
	c = mk_check(fx->ids[0], 3000, 0, 1);
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	c = mk_check(fx->ids[1], 3100, 1, 1);
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	wait_written(fx->st, 5, 10000);
	check_state(fx->st, fx->ids[0], "down", 3000, 3000, -1);
	check_state(fx->st, fx->ids[1], "up", 3100, 3100, 12.5);

	store_close(fx->st);
	fx->st = NULL;
	open_fx(fx, 64);
	assert_int_equal(store_load_state(fx->st, &v, &n), 0);
	assert_int_equal(n, 2);
	free(v);
	check_state(fx->st, fx->ids[0], "down", 3000, 3000, -1);
}

static struct store_alert
mk_alert(int64_t id, int64_t monitor_id, const char *name)
{
	struct store_alert a;

	memset(&a, 0, sizeof(a));
	a.id = id;
	a.monitor_id = monitor_id;
	snprintf(a.alert_name, sizeof(a.alert_name), "%s", name);
	a.payload = xasprintf("{\"id\":%lld}", (long long)id);
	a.created_ms = 100 + id;
	return a;
}

static void
test_outbox(void **state)
{
	struct fx *fx = *state;
	struct store_pending_alert *p = NULL;
	struct store_alert a[2];
	struct store_check c;
	size_t n = 0;

	open_fx(fx, 64);
	assert_int_equal(store_max_alert_id(fx->st), 0);
	assert_int_equal(store_load_pending(fx->st, &p, &n), 0);
	assert_int_equal(n, 0);
	store_free_pending(p, n);
	assert_int_equal(store_start(fx->st), 0);

	a[0] = mk_alert(6, fx->ids[2], "ops");
	a[1] = mk_alert(7, fx->ids[2], "pager");
	c = mk_check(fx->ids[2], 5000, 0, 1);
	assert_int_equal(store_submit(fx->st, &c, a, 2), 0);
	assert_null(a[0].payload);	/* ownership taken */
	wait_written(fx->st, 1, 10000);

	assert_int_equal(store_load_pending(fx->st, &p, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].id, 6);
	assert_int_equal(p[1].id, 7);
	assert_int_equal(p[0].monitor_id, fx->ids[2]);
	assert_string_equal(p[0].alert_name, "ops");
	assert_string_equal(p[1].alert_name, "pager");
	assert_string_equal(p[1].payload, "{\"id\":7}");
	assert_int_equal(p[0].attempts, 0);
	assert_int_equal(p[1].created_ms, 107);
	store_free_pending(p, n);
	assert_int_equal(store_max_alert_id(fx->st), 7);

	/* 6 delivered; 7 failed once. */
	assert_int_equal(store_submit_delivery(fx->st, 6, 1, NULL), 0);
	assert_int_equal(store_submit_delivery(fx->st, 7, 0, "HTTP 503"), 0);
	wait_written(fx->st, 1, 10000);
	assert_int_equal(store_load_pending(fx->st, &p, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].id, 7);
	assert_int_equal(p[0].attempts, 1);
	store_free_pending(p, n);

	assert_int_equal(store_submit_delivery(fx->st, 7, 1, NULL), 0);
	wait_written(fx->st, 1, 10000);
	assert_int_equal(store_load_pending(fx->st, &p, &n), 0);
	assert_int_equal(n, 0);
	store_free_pending(p, n);
	/* The numbering survives delivery and reopening. */
	assert_int_equal(store_max_alert_id(fx->st), 7);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM outbox"), 0);
	open_fx(fx, 64);
	assert_int_equal(store_max_alert_id(fx->st), 7);
	store_free_pending(NULL, 0);
}

static void
test_queue_full(void **state)
{
	struct fx *fx = *state;
	struct store_stats s;
	struct store_alert a;
	struct store_check c;
	int i;

	open_fx(fx, 10);
	for (i = 0; i < 15; i++) {
		c = mk_check(fx->ids[0], i, 0, 1);
		a = mk_alert(i + 1, fx->ids[0], "ops");
		/* The dropped ones' payloads are freed (ASan checks). */
		assert_int_equal(store_submit(fx->st, &c, &a, 1),
		    i < 10 ? 0 : WP_EAGAIN);
	}
	assert_int_equal(store_submit_delivery(fx->st, 1, 1, NULL), WP_EAGAIN);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.dropped, 6);
	assert_int_equal(s.queue_depth, 10);
	assert_int_equal(s.queue_capacity, 10);
	assert_int_equal(s.written, 0);
	store_close(fx->st);	/* never started: close writes the queue */
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 10);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM outbox"), 10);
	assert_int_equal(sql_int(fx->db, "SELECT max(id) FROM outbox"), 10);
}

/* What on_commit saw, and whether each row was in the database then. */
struct commit_seen {
	const char *db;
	int calls;
	int rows;
	int64_t last_id;
	int visible;		/* rows found in the outbox by another
				   connection during the call */
};

static void
commit_seen_cb(void *arg, const struct store_alert *rows, size_t n)
{
	struct commit_seen *cs = arg;
	char sql[96];
	size_t i;

	cs->calls++;
	for (i = 0; i < n; i++) {
		assert_null(rows[i].payload);
		cs->rows++;
		cs->last_id = rows[i].id;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox "
		    "WHERE id = %lld", (long long)rows[i].id);
		cs->visible += (int)sql_int(cs->db, sql);
	}
}

/*
 * A full queue, with the database locked by another connection: plain
 * checks are refused, but a state change with its alert row and a
 * delivery update shed queued plain checks instead of being dropped.
 * on_commit is not called while the lock is held, and when it is, the
 * alert row is already visible to another connection.
 */
static void
test_priority_and_commit(void **state)
{
	struct fx *fx = *state;
	struct commit_seen cs = { .db = fx->db };
	struct store_stats s;
	struct store_alert a;
	struct store_check c;
	sqlite3 *db;

	open_fx(fx, 10);
	store_on_commit(fx->st, commit_seen_cb, &cs);
	assert_int_equal(store_start(fx->st), 0);
	db = conn(fx->db);
	sql_exec(db, "BEGIN IMMEDIATE");
	submit_n(fx->st, fx->ids[0], 1, 10);
	wait_failing(fx->st, 15000);
	c = mk_check(fx->ids[0], 11, 1, 0);
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), WP_EAGAIN);

	c = mk_check(fx->ids[1], 12, 0, 1);
	a = mk_alert(1, fx->ids[1], "ops");
	assert_int_equal(store_submit(fx->st, &c, &a, 1), 0);
	assert_int_equal(store_submit_delivery(fx->st, 1, 0, "HTTP 500"), 0);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.queue_depth, 10);
	assert_int_equal(s.shed, 2);
	assert_int_equal(s.dropped, 1);
	sleep_ms(300);
	assert_int_equal(cs.calls, 0);	/* nothing committed yet */

	sql_exec(db, "ROLLBACK");
	sqlite3_close(db);
	wait_written(fx->st, 9, 20000);
	assert_int_equal(cs.calls, 1);
	assert_int_equal(cs.rows, 1);
	assert_int_equal(cs.last_id, 1);
	assert_int_equal(cs.visible, 1);
	store_on_commit(fx->st, NULL, NULL);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 9);
	assert_int_equal(sql_int(fx->db, "SELECT attempts FROM outbox "
	    "WHERE id = 1"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM state s "
	    "JOIN monitors m ON m.id = s.monitor_id "
	    "WHERE m.name = 'beta' AND s.state = 'down'"), 1);
}

/* Pending alerts load in id order, whatever their created_ms. */
static void
test_pending_id_order(void **state)
{
	struct fx *fx = *state;
	struct store_pending_alert *p = NULL;
	struct store_alert a[3];
	struct store_check c;
	size_t n = 0;

	open_fx(fx, 64);
	a[0] = mk_alert(1, fx->ids[0], "ops");
	a[1] = mk_alert(2, fx->ids[0], "ops");
	a[2] = mk_alert(3, fx->ids[0], "ops");
	a[0].created_ms = 300;	/* a wall clock stepped back */
	a[1].created_ms = 200;
	a[2].created_ms = 100;
	c = mk_check(fx->ids[0], 1, 0, 1);
	assert_int_equal(store_submit(fx->st, &c, a, 3), 0);
	store_close(fx->st);
	fx->st = NULL;
	open_fx(fx, 64);
	assert_int_equal(store_load_pending(fx->st, &p, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(p[0].id, 1);
	assert_int_equal(p[1].id, 2);
	assert_int_equal(p[2].id, 3);
	store_free_pending(p, n);
}

static void
test_fault_locked(void **state)
{
	struct fx *fx = *state;
	struct store_stats s;
	sqlite3 *db;

	open_fx(fx, 1000);
	assert_int_equal(store_start(fx->st), 0);
	/* Another connection holds the write lock: every BEGIN IMMEDIATE
	 * of the writer times out busy. */
	db = conn(fx->db);
	sql_exec(db, "BEGIN IMMEDIATE");
	submit_n(fx->st, fx->ids[0], 1, 100);
	wait_failing(fx->st, 15000);
	submit_n(fx->st, fx->ids[0], 101, 50);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.written, 0);
	assert_int_equal(s.batches, 0);
	assert_int_equal(s.queue_depth, 150);
	assert_int_equal(s.dropped, 0);
	assert_true(s.last_error[0] != '\0');
	sleep_ms(300);
	sql_exec(db, "ROLLBACK");
	sqlite3_close(db);

	wait_written(fx->st, 150, 20000);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.failing, 0);
	assert_true(s.write_errors >= 1);
	assert_int_equal(s.written, 150);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 150);
}

static void
test_fault_trigger(void **state)
{
	struct fx *fx = *state;
	struct store_stats s;
	sqlite3 *db;

	open_fx(fx, 1000);
	assert_int_equal(store_start(fx->st), 0);
	submit_n(fx->st, fx->ids[1], 1, 10);
	wait_written(fx->st, 10, 10000);

	/* Inserts fail mid-transaction: the batch is rolled back, kept and
	 * retried until the trigger goes. */
	db = conn(fx->db);
	sql_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON checks "
	    "BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
	submit_n(fx->st, fx->ids[1], 11, 20);
	wait_failing(fx->st, 15000);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.written, 10);
	assert_int_equal(s.queue_depth, 20);
	assert_non_null(strstr(s.last_error, "disk says no"));
	sql_exec(db, "DROP TRIGGER refuse");
	sqlite3_close(db);

	wait_written(fx->st, 30, 20000);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.failing, 0);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 30);
	/* Nothing half-written by the failed attempts. */
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM state"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT last_check_ms FROM state"),
	    30);
}

static void
test_bad_item_skipped(void **state)
{
	struct fx *fx = *state;
	struct store_alert a;
	struct store_stats s;
	struct store_check c;

	open_fx(fx, 100);
	assert_int_equal(store_start(fx->st), 0);
	submit_n(fx->st, fx->ids[0], 1, 5);
	/* An unknown monitor violates the foreign key: that item alone is
	 * skipped, with its alert, and the queue does not stall. */
	c = mk_check(424242, 6, 0, 1);
	a = mk_alert(1, 424242, "ops");
	assert_int_equal(store_submit(fx->st, &c, &a, 1), 0);
	submit_n(fx->st, fx->ids[0], 7, 5);
	wait_written(fx->st, 10, 10000);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.written, 10);
	assert_int_equal(s.failing, 0);
	assert_int_equal(s.write_errors, 0);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 10);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM state"), 1);
}

struct ret_ctx {
	pthread_mutex_t mu;
	int calls;
	int64_t deleted;
	struct store *st;
	struct store_stats at_done;
};

static void
ret_done(void *arg, int64_t deleted)
{
	struct ret_ctx *r = arg;

	if (r->st != NULL)
		store_get_stats(r->st, &r->at_done);
	pthread_mutex_lock(&r->mu);
	r->calls++;
	r->deleted = deleted;
	pthread_mutex_unlock(&r->mu);
}

static int
ret_calls(struct ret_ctx *r)
{
	int n;

	pthread_mutex_lock(&r->mu);
	n = r->calls;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static void
test_retention(void **state)
{
	struct fx *fx = *state;
	struct ret_ctx r = { PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL, { 0 } };
	struct store_stats s;
	sqlite3 *db;
	sqlite3_stmt *ins;
	int64_t now = wall_ms(), end, extra = 0;
	int i;

	open_fx(fx, 70000);
	r.st = fx->st;
	/* 100,000 old rows, ts 0..99,999, written directly. */
	db = conn(fx->db);
	sql_exec(db, "BEGIN");
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO checks(monitor_id, "
	    "ts, ok) VALUES (?1, ?2, 1)", -1, &ins, NULL), SQLITE_OK);
	for (i = 0; i < 100000; i++) {
		sqlite3_bind_int64(ins, 1, fx->ids[i % 3]);
		sqlite3_bind_int64(ins, 2, i);
		assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	sql_exec(db, "COMMIT");
	sqlite3_close(db);

	/* 60,000 new checks queued before the writer starts: with
	 * interleaving, retention finishes long before they are all in. */
	submit_n(fx->st, fx->ids[0], now, 60000);
	assert_int_equal(store_retention(fx->st, 50000, 1000, ret_done, &r),
	    0);
	assert_int_equal(store_retention(fx->st, 50000, 0, NULL, NULL),
	    WP_EINVAL);
	assert_int_equal(store_start(fx->st), 0);
	/* Keep submitting while it runs, about one a millisecond as a busy
	 * agent would, leaving the queue headroom. */
	end = mono_ms() + 60000;
	while (ret_calls(&r) == 0 && mono_ms() < end) {
		struct store_check c = mk_check(fx->ids[1], now + extra, 1, 0);

		store_get_stats(fx->st, &s);
		if (s.queue_depth < 65000) {
			assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
			extra++;
		}
		sleep_ms(1);
	}
	assert_true(extra > 0);
	assert_int_equal(ret_calls(&r), 1);
	assert_int_equal(r.deleted, 50000);
	/* A batch of 1,000 queued checks went in before each of the 50
	 * chunks, and retention did not wait for the whole queue. */
	assert_true(r.at_done.written >= 50000);
	assert_true(r.at_done.written < 60000);
	assert_int_equal(r.at_done.retention_deleted, 50000);

	wait_written(fx->st, 60000 + (uint64_t)extra, 60000);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.dropped, 0);
	assert_int_equal(s.retention_deleted, 50000);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(ret_calls(&r), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks "
	    "WHERE ts < 50000"), 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks "
	    "WHERE ts < 100000"), 50000);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"),
	    50000 + 60000 + extra);
	assert_int_equal(sql_int(fx->db, "PRAGMA freelist_count"), 0);
}

static void
test_existing_file(void **state)
{
	struct fx *fx = *state;
	struct ret_ctx r = { PTHREAD_MUTEX_INITIALIZER, 0, -1, NULL, { 0 } };
	int64_t end;
	sqlite3 *db;

	/* A file made elsewhere, without incremental auto_vacuum: it is
	 * migrated, keeps its mode and its own table, and retention still
	 * finishes (the vacuum step is skipped). */
	db = conn(fx->db);
	sql_exec(db, "CREATE TABLE notes(t TEXT); "
	    "INSERT INTO notes VALUES ('keep me')");
	sqlite3_close(db);
	open_fx(fx, 100);
	submit_n(fx->st, fx->ids[0], 1, 50);
	assert_int_equal(store_retention(fx->st, 21, 7, ret_done, &r), 0);
	assert_int_equal(store_start(fx->st), 0);
	end = mono_ms() + 20000;
	while (ret_calls(&r) == 0 && mono_ms() < end)
		sleep_ms(5);
	assert_int_equal(ret_calls(&r), 1);
	wait_written(fx->st, 50, 10000);
	store_close(fx->st);
	fx->st = NULL;
	/* The first batch (all 50) is written before the first chunk. */
	assert_int_equal(r.deleted, 20);
	assert_int_equal(sql_int(fx->db, "PRAGMA auto_vacuum"), 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM notes"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 30);
}

static void
test_close_drains(void **state)
{
	struct fx *fx = *state;

	open_fx(fx, 10000);
	assert_int_equal(store_start(fx->st), 0);
	submit_n(fx->st, fx->ids[2], 1, 5000);
	assert_int_equal(store_close(fx->st), 0);	/* nothing lost */
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 5000);

	open_fx(fx, 1000);
	submit_n(fx->st, fx->ids[2], 10000, 100);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 5100);
	store_close(NULL);
}

static void
test_close_gives_up(void **state)
{
	struct fx *fx = *state;
	struct ret_ctx r = { PTHREAD_MUTEX_INITIALIZER, 0, -1, NULL, { 0 } };
	int64_t t0;
	sqlite3 *db;

	open_fx(fx, 100);
	assert_int_equal(store_start(fx->st), 0);
	db = conn(fx->db);
	sql_exec(db, "BEGIN IMMEDIATE");
	submit_n(fx->st, fx->ids[0], 1, 10);
	assert_int_equal(store_retention(fx->st, 5, 10, ret_done, &r), 0);
	wait_failing(fx->st, 15000);
	t0 = mono_ms();
	/* Bounded: gives up, logs the loss and reports it. */
	assert_int_equal(store_close(fx->st), WP_EIO);
	fx->st = NULL;
	assert_true(mono_ms() - t0 < 10000);
	/* The retention request still completes exactly once. */
	assert_int_equal(ret_calls(&r), 1);
	assert_int_equal(r.deleted, 0);
	sql_exec(db, "ROLLBACK");
	sqlite3_close(db);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 0);
}

static void
test_null_and_invalid(void **state)
{
	struct fx *fx = *state;
	struct store_stats s;
	struct store_alert a;
	struct store_check c = mk_check(1, 1, 1, 0);
	struct store *st = NULL;
	char err[256] = "";

	memset(&s, 0xff, sizeof(s));
	store_get_stats(NULL, &s);
	assert_int_equal(s.written, 0);
	a = mk_alert(1, 1, "ops");
	/* Ownership is taken even when refused (ASan checks the free). */
	assert_int_equal(store_submit(NULL, &c, &a, 1), WP_EINVAL);
	assert_int_equal(store_submit_delivery(NULL, 1, 1, NULL), WP_EINVAL);
	assert_int_equal(store_start(NULL), WP_EINVAL);
	assert_int_equal(store_max_alert_id(NULL), 0);
	assert_int_equal(store_open(fx->db, 0, &st, err, sizeof(err)),
	    WP_EINVAL);
	assert_null(st);
	assert_true(err[0] != '\0');
	assert_true(store_open("/nonexistent-dir/x/y.db", 10, &st, err,
	    sizeof(err)) < 0);
	assert_null(st);
	open_fx(fx, 10);
	assert_int_equal(store_start(fx->st), 0);
	assert_int_equal(store_start(fx->st), WP_EINVAL);
}

/* ---- measurements ---- */

/* The measurements of monitor id's last check, as "name=value,..." in
 * name order, and its start time. */
static void
last_meas(struct store *st, int64_t id, char *out, size_t len, int64_t *ts)
{
	struct store_measure *v = NULL;
	size_t n = 99, i, k = 0;

	assert_int_equal(store_last_measurements(st, id, &v, &n, ts), 0);
	out[0] = '\0';
	for (i = 0; i < n; i++)
		k += (size_t)snprintf(out + k, len - k, "%s%s=%g",
		    i ? "," : "", v[i].name, v[i].value);
	if (n == 0)
		assert_null(v);
	free(v);
}

/*
 * Checks queued together go in as groups (a multi-row INSERT of checks,
 * then of their measurements): every check keeps its own measurements,
 * a name given twice keeps its last value, and a group larger than one
 * measurements statement holds (17 checks of 2 = 34 rows) still lands.
 */
static void
test_measurements_grouped(void **state)
{
	struct fx *fx = *state;
	struct store_measure m[3];
	struct store_check c;
	int i;

	open_fx(fx, 256);
	for (i = 1; i <= 40; i++) {
		c = mk_check(fx->ids[i % 3], i, 1, i <= 3);
		m[0] = (struct store_measure){ "a", i };
		m[1] = (struct store_measure){ "b", 2.0 * i };
		m[2] = (struct store_measure){ "a", 3.0 * i };
		c.meas = m;
		c.n_meas = i % 5 == 0 ? 0 : 3;
		assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	}
	assert_int_equal(store_start(fx->st), 0);
	wait_written(fx->st, 40, 10000);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 40);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements"),
	    64);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements "
	    "AS m JOIN checks AS c ON c.id = m.check_id WHERE "
	    "(m.name = 'a' AND m.value = 3 * c.ts) OR "
	    "(m.name = 'b' AND m.value = 2 * c.ts)"), 64);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks WHERE "
	    "ts % 5 = 0 AND id IN (SELECT check_id FROM measurements)"), 0);
}

static void
test_measurements(void **state)
{
	struct fx *fx = *state;
	struct store_measure m[20];
	struct store_check c;
	char names[20][16], buf[512];
	int64_t ts = -1;
	int i;

	open_fx(fx, 64);
	/* A monitor without checks: nothing, time 0. */
	last_meas(fx->st, fx->ids[0], buf, sizeof(buf), &ts);
	assert_string_equal(buf, "");
	assert_int_equal(ts, 0);
	assert_int_equal(store_start(fx->st), 0);

	c = mk_check(fx->ids[0], 1000, 1, 1);
	m[0] = (struct store_measure){ "loss_ratio", 0.25 };
	m[1] = (struct store_measure){ "jitter_seconds", 0.003 };
	/* Nothing measured: not stored (REAL NOT NULL). */
	m[2] = (struct store_measure){ "rtt_seconds", NAN };
	/* Given twice: the last value stays, the check is kept. */
	m[3] = (struct store_measure){ "loss_ratio", 0.5 };
	c.meas = m;
	c.n_meas = 4;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	/* The caller's array is only borrowed. */
	memset(m, 0, sizeof(m));
	/* More than STORE_MEASURES_MAX: the first 16 are stored. */
	for (i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "m%02d_total", i);
		m[i].name = names[i];
		m[i].value = i;
	}
	c = mk_check(fx->ids[1], 2000, 1, 1);
	c.meas = m;
	c.n_meas = 20;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	/* A later check of alpha without measurements. */
	c = mk_check(fx->ids[0], 3000, 1, 0);
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	wait_written(fx->st, 3, 10000);

	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements"),
	    2 + STORE_MEASURES_MAX);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements "
	    "JOIN checks ON checks.id = check_id WHERE ts = 1000 AND "
	    "((name = 'loss_ratio' AND value = 0.5) OR "
	    "(name = 'jitter_seconds' AND value = 0.003))"), 2);
	sql_text(fx->db, "SELECT max(name) FROM measurements", buf,
	    sizeof(buf));
	assert_string_equal(buf, "m15_total");

	/* The last check of alpha has none; beta's has its 16. */
	last_meas(fx->st, fx->ids[0], buf, sizeof(buf), &ts);
	assert_string_equal(buf, "");
	assert_int_equal(ts, 3000);
	last_meas(fx->st, fx->ids[1], buf, sizeof(buf), &ts);
	assert_int_equal(ts, 2000);
	assert_non_null(strstr(buf, "m00_total=0,m01_total=1,"));
	assert_non_null(strstr(buf, ",m15_total=15"));
	assert_null(strstr(buf, "m16"));
	assert_int_equal(store_last_measurements(fx->st, fx->ids[1], NULL,
	    NULL, NULL), WP_EINVAL);
	store_close(fx->st);
	fx->st = NULL;

	/* After a restart, from the file. */
	open_fx(fx, 64);
	last_meas(fx->st, fx->ids[1], buf, sizeof(buf), NULL);
	assert_non_null(strstr(buf, ",m15_total=15"));
	c = mk_check(fx->ids[0], 4000, 1, 0);
	m[0] = (struct store_measure){ "loss_ratio", 1 };
	c.meas = m;
	c.n_meas = 1;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	store_close(fx->st);	/* never started: close writes the queue */
	fx->st = NULL;
	open_fx(fx, 64);
	last_meas(fx->st, fx->ids[0], buf, sizeof(buf), &ts);
	assert_string_equal(buf, "loss_ratio=1");
	assert_int_equal(ts, 4000);
}

/* A database of schema version 1 (before measurements) keeps its data
 * and gains the table. */
static void
test_measurements_migration(void **state)
{
	struct fx *fx = *state;
	struct store_measure m = { "loss_ratio", 0.1 };
	struct store_check c;
	char buf[64];
	sqlite3 *db;

	open_fx(fx, 16);
	c = mk_check(fx->ids[2], 1000, 0, 1);
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	store_close(fx->st);
	fx->st = NULL;
	/* Back to version 1: its schema is the current one without the
	 * table and the columns of later versions. */
	db = conn(fx->db);
	sql_exec(db, "DROP TABLE measurements; "
	    "ALTER TABLE state DROP COLUMN streak; "
	    "ALTER TABLE state DROP COLUMN repeats; "
	    "ALTER TABLE state DROP COLUMN notified_ms; "
	    "ALTER TABLE state DROP COLUMN escalated_ms; "
	    "UPDATE meta SET value = '1' WHERE key = 'schema_version'");
	/* ... without version 4's roll-ups and incidents ... */
	sql_exec(db, "DROP TABLE rollup_hours; DROP TABLE rollup_days; "
	    "DROP TABLE rollup_weeks; "
	    "DROP TABLE incidents; ALTER TABLE state DROP COLUMN r_hour; "
	    "ALTER TABLE state DROP COLUMN r_agg");
	/* ... and without version 5's holds: the silences and holds
	 * tables and checks.maintenance. */
	sql_exec(db, "DROP TABLE silences; DROP TABLE holds; "
	    "ALTER TABLE checks DROP COLUMN maintenance");
	/* ... and with version 1's ts index, without version 6's r_id ...
	 * and without version 7's checks.agent, location and grid. */
	sql_exec(db, "CREATE INDEX checks_ts ON checks(ts); "
	    "ALTER TABLE state DROP COLUMN r_id");
	sql_exec(db, "ALTER TABLE checks DROP COLUMN agent; "
	    "ALTER TABLE checks DROP COLUMN location; "
	    "ALTER TABLE checks DROP COLUMN grid");
	sqlite3_close(db);

	open_fx(fx, 16);
	sql_text(fx->db, "SELECT value FROM meta WHERE key = 'schema_version'",
	    buf, sizeof(buf));
	assert_string_equal(buf, "7");
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks WHERE "
	    "ts = 1000 AND reason = 'refused'"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM state"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM monitors"), 3);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'table' AND name = 'measurements' AND "
	    "sql LIKE '%WITHOUT ROWID%'"), 1);
	c = mk_check(fx->ids[2], 2000, 1, 1);
	c.meas = &m;
	c.n_meas = 1;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements "
	    "JOIN checks ON checks.id = check_id WHERE ts = 2000"), 1);
}

/* Retention deletes the measurements of the checks it deletes, and only
 * those. */
static void
test_measurements_retention(void **state)
{
	struct fx *fx = *state;
	struct ret_ctx r = { PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL, { 0 } };
	sqlite3 *db;
	int64_t end;

	open_fx(fx, 16);
	/* 3,000 checks at ts 0..2,999 with two measurements each. */
	db = conn(fx->db);
	sql_exec(db, "PRAGMA foreign_keys = ON; BEGIN; "
	    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
	    "WHERE i < 2999) INSERT INTO checks(monitor_id, ts, ok) "
	    "SELECT (SELECT min(id) FROM monitors), i, 1 FROM n; "
	    "INSERT INTO measurements(check_id, name, value) "
	    "SELECT id, 'loss_ratio', ts FROM checks; "
	    "INSERT INTO measurements(check_id, name, value) "
	    "SELECT id, 'rtt_seconds', ts FROM checks; COMMIT");
	sqlite3_close(db);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements"),
	    6000);
	assert_int_equal(store_retention(fx->st, 1500, 100, ret_done, &r), 0);
	assert_int_equal(store_start(fx->st), 0);
	end = mono_ms() + 30000;
	while (ret_calls(&r) == 0 && mono_ms() < end)
		sleep_ms(5);
	assert_int_equal(ret_calls(&r), 1);
	assert_int_equal(r.deleted, 1500);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements"),
	    3000);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements "
	    "WHERE value < 1500"), 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements "
	    "WHERE check_id NOT IN (SELECT id FROM checks)"), 0);
}

/* A shed check sheds its measurements (ASan checks they are freed). */
static void
test_measurements_shed(void **state)
{
	struct fx *fx = *state;
	struct store_measure m = { "loss_ratio", 0 };
	struct store_stats s;
	struct store_check c;
	char buf[64];
	int i;

	open_fx(fx, 4);
	for (i = 0; i < 4; i++) {
		c = mk_check(fx->ids[0], i, 1, 0);
		m.value = i;
		c.meas = &m;
		c.n_meas = 1;
		assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	}
	/* Full: a plain check with measurements is refused... */
	c = mk_check(fx->ids[0], 10, 1, 0);
	c.meas = &m;
	c.n_meas = 1;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), WP_EAGAIN);
	/* ... and a state change sheds the newest plain one (ts 3). */
	c = mk_check(fx->ids[0], 20, 0, 1);
	m.value = 20;
	c.meas = &m;
	c.n_meas = 1;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	store_get_stats(fx->st, &s);
	assert_int_equal(s.shed, 1);
	assert_int_equal(s.dropped, 1);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM measurements"),
	    4);
	sql_text(fx->db, "SELECT group_concat(CAST(value AS INTEGER), ',') "
	    "FROM (SELECT value FROM measurements JOIN checks "
	    "ON checks.id = check_id ORDER BY ts)", buf, sizeof(buf));
	assert_string_equal(buf, "0,1,2,20");
}

/*
 * The transition policy's counters: a check writes them with the state
 * row; a policy_only item (a reminder) writes only them and its outbox
 * rows -- no check row, and the state, since and last check stay -- and
 * store_load_state() gives them back after a reopen.
 */
static void
test_policy_counters(void **state)
{
	struct fx *fx = *state;
	struct store_state *st = NULL;
	struct store_check c;
	struct store_alert a;
	size_t n = 0;

	open_fx(fx, 16);
	c = mk_check(fx->ids[1], 1000, 0, 1);
	c.streak = -3;
	c.notified_ms = 1000;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	memset(&c, 0, sizeof(c));
	c.monitor_id = fx->ids[1];
	c.policy_only = 1;
	c.repeats = 2;
	c.notified_ms = 5000;
	c.escalated_ms = 3000;
	a = mk_alert(7, fx->ids[1], "hook");
	assert_int_equal(store_submit(fx->st, &c, &a, 1), 0);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM checks"), 1);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM outbox "
	    "WHERE id = 7"), 1);

	open_fx(fx, 16);
	assert_int_equal(store_load_state(fx->st, &st, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(st[0].monitor_id, fx->ids[1]);
	assert_string_equal(st[0].state, "down");
	assert_int_equal(st[0].since_ms, 1000);
	assert_int_equal(st[0].last_check_ms, 1000);
	assert_int_equal(st[0].streak, -3);
	assert_int_equal(st[0].repeats, 2);
	assert_int_equal(st[0].notified_ms, 5000);
	assert_int_equal(st[0].escalated_ms, 3000);
	free(st);
	/* The next check keeps since (no change) and writes its counters. */
	c = mk_check(fx->ids[1], 9000, 0, 0);
	c.streak = -4;
	c.repeats = 2;
	c.notified_ms = 5000;
	c.escalated_ms = 3000;
	assert_int_equal(store_submit(fx->st, &c, NULL, 0), 0);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM state WHERE "
	    "since_ms = 1000 AND last_check_ms = 9000 AND streak = -4 AND "
	    "repeats = 2 AND notified_ms = 5000 AND escalated_ms = 3000"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_schema, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_damage_at_run_time, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sync_monitors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bulk_10000, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ring_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_one_transaction, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_priority_and_commit,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_id_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fault_locked, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fault_trigger, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_item_skipped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_existing_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_drains, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_gives_up, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_null_and_invalid, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_measurements_grouped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_measurements, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_measurements_migration,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_measurements_retention,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_measurements_shed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_policy_counters, setup,
		    teardown),
	};

	log_setup(WP_LOG_WARN, LOG_TO_STDERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
