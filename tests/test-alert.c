/*
 * The alert outbox (core/alert.c) through its header, with the real
 * webhook plugin delivering to tests/testhttpd on loopback and a real
 * store.  The test plays the store's writer: it says which outbox rows are
 * committed with alert_released() itself, in any order, so "a delivery
 * starts only after its row is committed" is checked directly.  Asserts
 * order and counts (what the receiver got, and in which order), never
 * durations; every wait is a bounded run of the loop.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cmocka.h>
#include <uv.h>

#include "alert.h"
#include "cfg.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "opmon.h"
#include "outcome.h"
#include "pool.h"
#include "store.h"
#include "testhttpd-spawn.h"

static char tmpdir[] = "/tmp/wp-alert.XXXXXX";
static char status_path[4200], record_path[4200], accepted_path[4200];
static char plugdir[4200], grec_path[4200], gstatus_path[4200];
static struct server srv;
static struct store *st;

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Lines of PATH that contain NEEDLE (all lines if NULL). */
static int
count_lines(const char *path, const char *needle)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (needle == NULL || strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

/* The error text ("e1", ...) of each line of PATH, concatenated. */
static void
errors_in(const char *path, char *out, size_t len)
{
	char line[4096], *p;
	FILE *f = fopen(path, "r");

	out[0] = '\0';
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if ((p = strstr(line, "\"error\":\"")) != NULL)
			strncat(out, p + 9, 2 < len - strlen(out) - 1 ? 2 :
			    len - strlen(out) - 1);
	fclose(f);
}

static void
guard_cb(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until PATH has N lines containing NEEDLE and no delivery
 * is in flight; fails after 400 turns of the loop, which a 50 ms timer
 * keeps turning (a bound, not an assertion on time). */
static void
run_until(const char *path, const char *needle, int n)
{
	uv_timer_t guard;
	int turns = 0;

	uv_timer_init(main_loop, &guard);
	uv_timer_start(&guard, guard_cb, 50, 50);
	while (count_lines(path, needle) < n || alert_in_flight() > 0) {
		if (++turns > 400)
			fail_msg("%s: %d lines with %s, want %d", path,
			    count_lines(path, needle), needle ? needle : "-",
			    n);
		uv_run(main_loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&guard);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(main_loop, UV_RUN_NOWAIT);
}

/* The outcome of a check of monitor MONITOR_ID ("m") gone from up to down
 * with ERROR: its alerts go to the sections NAMES[0..N).  Returns the
 * outbox rows (malloc'd) and their count in *N_OUT. */
static struct store_alert *
raise_down(int64_t monitor_id, const char *error, char *const *names,
    size_t n, size_t *n_out)
{
	struct wp_result r = WP_RESULT_INIT;
	struct outcome o = { .monitor_id = monitor_id, .monitor = "m",
		.type = "http", .result = &r, .previous = ST_UP,
		.state = ST_DOWN, .changed = 1, .attempts = 1,
		.started_ms = 1000, .since_ms = 1000, .check = ST_DOWN,
		.alert = 1 };

	r.reason = WP_REASON_STATUS;
	r.detail = error;
	r.latency_us = 1500;
	return alert_raise(&o, 0, names, n, n_out);
}

/* One alert, to section "hook", into *ROW.  Returns how many were raised. */
static size_t
raise_one(int64_t monitor_id, const char *error, struct store_alert *row)
{
	char *const names[] = { "hook" };
	struct store_alert *rows;
	size_t n;

	rows = raise_down(monitor_id, error, names, 1, &n);
	if (n == 1)
		*row = rows[0];
	free(rows);
	return n;
}

/* Deliveries of one (monitor, section) go in the order raised, and only
 * once their rows are committed: released newest first, they still arrive
 * oldest first, and nothing starts before the oldest is released. */
static void
test_order_after_commit(void **state)
{
	struct store_alert rows[3];
	char order[16];
	size_t i;

	(void)state;
	write_file(status_path, "200\n");
	assert_int_equal(raise_one(1, "e1", &rows[0]), 1);
	assert_int_equal(raise_one(1, "e2", &rows[1]), 1);
	assert_int_equal(raise_one(1, "e3", &rows[2]), 1);
	assert_true(rows[0].id < rows[1].id && rows[1].id < rows[2].id);
	assert_int_equal(rows[0].monitor_id, 1);
	assert_string_equal(rows[0].alert_name, "hook");
	assert_non_null(strstr(rows[1].payload, "\"error\":\"e2\""));
	/* Raised, not committed: no delivery starts. */
	assert_int_equal(alert_in_flight(), 0);
	/* The newer rows committed first: they wait for the oldest. */
	alert_released(&rows[2], 1);
	alert_released(&rows[1], 1);
	assert_int_equal(alert_in_flight(), 0);
	alert_released(&rows[0], 1);
	assert_int_equal(alert_in_flight(), 1);
	run_until(accepted_path, NULL, 3);
	errors_in(accepted_path, order, sizeof(order));
	assert_string_equal(order, "e1e2e3");
	/* Each was sent once. */
	assert_int_equal(count_lines(record_path, NULL), 3);
	for (i = 0; i < 3; i++)
		free(rows[i].payload);
}

/* A failing head is retried with back-off, and the next of its chain
 * waits for it; another monitor's chain does not.  Once the receiver
 * accepts, both go, in order. */
static void
test_backoff_blocks_chain(void **state)
{
	struct store_alert rows[3];
	char order[16];
	size_t i;

	(void)state;
	unlink(record_path);
	unlink(accepted_path);
	write_file(status_path, "503\n");
	assert_int_equal(raise_one(2, "f1", &rows[0]), 1);
	assert_int_equal(raise_one(2, "f2", &rows[1]), 1);
	alert_released(rows, 2);
	/* Three attempts of the head, each refused. */
	run_until(record_path, "\"error\":\"f1\"", 3);
	assert_int_equal(count_lines(record_path, "\"error\":\"f2\""), 0);
	assert_int_equal(count_lines(accepted_path, NULL), 0);
	/* The receiver accepts again: the head, then the next. */
	write_file(status_path, "200\n");
	run_until(accepted_path, NULL, 2);
	errors_in(accepted_path, order, sizeof(order));
	assert_string_equal(order, "f1f2");
	assert_int_equal(count_lines(record_path, "\"error\":\"f2\""), 1);
	/* A third alert of the same chain, after the outage: sent once. */
	assert_int_equal(raise_one(2, "f3", &rows[2]), 1);
	alert_released(&rows[2], 1);
	run_until(accepted_path, NULL, 3);
	errors_in(accepted_path, order, sizeof(order));
	assert_string_equal(order, "f1f2f3");
	assert_int_equal(count_lines(record_path, "\"error\":\"f3\""), 1);
	for (i = 0; i < 3; i++)
		free(rows[i].payload);
}

/* A monitor naming 20 sections: one change raises 20 rows, one per
 * section in the order named, ids rising.  A change that does not alert
 * (up -> degraded) raises none. */
static void
test_twenty_sections(void **state)
{
	char names[20][8], *list[20];
	struct wp_result r = WP_RESULT_INIT;
	struct outcome o = { .monitor_id = 9, .monitor = "m", .type = "http",
		.result = &r, .previous = ST_UP, .state = ST_DEGRADED,
		.changed = 1, .attempts = 1, .started_ms = 1000,
		.since_ms = 1000 };
	struct store_alert *rows;
	size_t i, n;

	(void)state;
	for (i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "s%02zu", i + 1);
		list[i] = names[i];
	}
	rows = raise_down(9, "e", list, 20, &n);
	assert_int_equal(n, 20);
	for (i = 0; i < 20; i++) {
		assert_string_equal(rows[i].alert_name, names[i]);
		assert_int_equal(rows[i].monitor_id, 9);
		if (i > 0)
			assert_true(rows[i].id > rows[i - 1].id);
		assert_non_null(strstr(rows[i].payload, "\"state\":\"down\""));
		free(rows[i].payload);
	}
	free(rows);
	r.reason = WP_REASON_SLOW;
	assert_null(alert_raise(&o, 0, list, 20, &n));
	assert_int_equal(n, 0);
}

/* Rows of deliveries the outbox does not know are ignored. */
static void
test_unknown_rows_ignored(void **state)
{
	struct store_alert row = { .id = 999999, .monitor_id = 7,
		.alert_name = "hook" };
	struct store_alert other = { .id = 1, .monitor_id = 1,
		.alert_name = "nosuch" };

	(void)state;
	alert_released(&row, 1);
	alert_released(&other, 1);
	assert_int_equal(alert_in_flight(), 0);
}

/* Copy plugin NAME from folder DIR into plugdir (0644). */
static int
copy_plugin(const char *dir, const char *name)
{
	char src[8400], dst[8400], buf[65536];
	FILE *in, *out;
	size_t n;
	int rc = 0;

	snprintf(src, sizeof(src), "%s/%s", dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", plugdir, name);
	if ((in = fopen(src, "rb")) == NULL)
		return -1;
	if ((out = fopen(dst, "wb")) == NULL) {
		fclose(in);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	fclose(in);
	if (fclose(out) != 0)
		rc = -1;
	return rc == 0 ? chmod(dst, 0644) : rc;
}

/* What alert_target_of() makes of a section with KEY = VALUE lines. */
static char *
target_of(const char *k1, const char *v1, const char *k2, const char *v2)
{
	struct cfg_kv kv[2] = { { .key = k1, .value = v1 },
		{ .key = k2, .value = v2 } };
	struct cfg_section s = { .name = "m", .kv = kv,
		.n_kv = k2 != NULL ? 2 : 1 };

	return alert_target_of(&s);
}

static void
expect_target(char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
	free(got);
}

/* Targets lose their credentials: userinfo, query, fragment. */
static void
test_target_of(void **state)
{
	(void)state;
	expect_target(target_of("url",
	    "https://user:pw@example.org:8443/health?token=x#frag", NULL, NULL),
	    "https://example.org:8443/health");
	expect_target(target_of("url", "http://a@b@host/p@q", NULL, NULL),
	    "http://host/p@q");
	expect_target(target_of("url", "http://example.org?key=s", NULL, NULL),
	    "http://example.org");
	expect_target(target_of("url", "http://example.org#x", NULL, NULL),
	    "http://example.org");
	expect_target(target_of("host", "db.local", "port", "5432"),
	    "db.local:5432");
	expect_target(target_of("port", "80", "host", "::1"), "[::1]:80");
	expect_target(target_of("host", "db.local", NULL, NULL), "db.local");
	expect_target(target_of("url_file", "/etc/secret-url", NULL, NULL),
	    NULL);
	expect_target(target_of("keyword", "x", NULL, NULL), NULL);
}

/* The outcome of monitor ID going PREV -> NOW at START_MS, about the
 * episode that began at SINCE_MS (the manager's since), to section NAME,
 * alerting as the default alert_on says, with REPEAT and FLAGS: its one
 * row (payload NULL when it does not alert). */
static struct store_alert
raise_full(int64_t id, enum mstate prev, enum mstate now, int64_t start_ms,
    int64_t since_ms, const char *name, unsigned repeat, unsigned flags)
{
	struct wp_result r = WP_RESULT_INIT;
	struct outcome o = { .monitor_id = id, .monitor = "m", .type = "tcp",
		.result = &r, .previous = prev, .state = now, .check = now,
		.changed = prev != now, .attempts = 1, .started_ms = start_ms,
		.since_ms = since_ms, .repeat = repeat, .alert_flags = flags,
		.alert = mstate_alerts(prev, now) || repeat > 0 };
	char *names[] = { (char *)name };
	struct store_alert *rows, row = { 0 };
	size_t n;

	r.reason = now == ST_UP ? WP_REASON_OK : WP_REASON_REFUSED;
	r.detail = now == ST_UP ? NULL : "refused";
	rows = alert_raise(&o, 0, names, 1, &n);
	if (n == 1)
		row = rows[0];
	free(rows);
	return row;
}

static struct store_alert
raise_to(int64_t id, enum mstate prev, enum mstate now, int64_t start_ms,
    int64_t since_ms, const char *name)
{
	return raise_full(id, prev, now, start_ms, since_ms, name, 0, 0);
}

/* The payload carries the 2.1 fields: since, repeat and flags as the
 * outcome gives them, the agent's name; the plugin gets them too. */
static void
test_fields_21(void **state)
{
	struct store_alert down, up, rem;

	(void)state;
	unlink(grec_path);
	down = raise_to(40, ST_UP, ST_DOWN, 5000, 5000, "grp");
	assert_non_null(down.payload);
	assert_non_null(strstr(down.payload, "\"since_ms\":5000"));
	assert_non_null(strstr(down.payload, "\"agent\":\"unit-agent\""));
	assert_non_null(strstr(down.payload, "\"repeat\":0"));
	assert_non_null(strstr(down.payload, "\"flags\":0"));
	/* Still down a while later: no alert. */
	assert_null(raise_to(40, ST_DOWN, ST_DOWN, 6000, 5000, "grp").payload);
	/* A reminder, flagged as an escalation's (never released). */
	rem = raise_full(41, ST_DOWN, ST_DOWN, 7000, 3000, "grp", 2,
	    WP_ALERT_ESCALATION);
	assert_non_null(rem.payload);
	assert_non_null(strstr(rem.payload, "\"repeat\":2"));
	assert_non_null(strstr(rem.payload, "\"flags\":2"));
	assert_non_null(strstr(rem.payload, "\"since_ms\":3000"));
	free(rem.payload);
	/* The recovery, about the outage that began at 5000. */
	up = raise_to(40, ST_DOWN, ST_UP, 9000, 5000, "grp");
	assert_non_null(up.payload);
	assert_non_null(strstr(up.payload, "\"since_ms\":5000"));
	assert_non_null(strstr(up.payload, "\"state\":\"up\""));
	alert_released(&down, 1);
	alert_released(&up, 1);
	/* Down then up of one monitor: two groups, in order. */
	run_until(grec_path, "op ", 2);
	assert_int_equal(count_lines(grec_path, "agent=unit-agent"), 2);
	assert_int_equal(count_lines(grec_path, "since_us=5000000 "), 2);
	free(down.payload);
	free(up.payload);
}

/* group_window: five monitors' alerts released within the window are
 * one operation, oldest first, each with its own id. */
static void
test_group_window(void **state)
{
	struct store_alert rows[5];
	char want[64];
	size_t i;

	(void)state;
	unlink(grec_path);
	for (i = 0; i < 5; i++)
		rows[i] = raise_to(50 + (int64_t)i, ST_UP, ST_DOWN, 1000, 1000,
		    "grp");
	/* Released newest first: still sent oldest first. */
	for (i = 5; i > 0; i--)
		alert_released(&rows[i - 1], 1);
	run_until(grec_path, "alert ", 5);
	assert_int_equal(count_lines(grec_path, "op n=5 attempt=0"), 1);
	assert_int_equal(count_lines(grec_path, "op "), 1);
	for (i = 0; i < 5; i++) {
		snprintf(want, sizeof(want), "id=%lld ",
		    (long long)rows[i].id);
		assert_int_equal(count_lines(grec_path, want), 1);
		free(rows[i].payload);
	}
}

/* A group that fails is retried whole; a monitor's next alert waits for
 * the group holding its previous one, then goes in a later group. */
static void
test_group_order_and_retry(void **state)
{
	struct store_alert a, b, c;
	struct alert_stats before, after;

	(void)state;
	unlink(grec_path);
	write_file(gstatus_path, "busy\n");
	alert_get_stats(&before);
	a = raise_to(60, ST_UP, ST_DOWN, 1000, 1000, "grp");
	c = raise_to(61, ST_UP, ST_DOWN, 1000, 1000, "grp");
	b = raise_to(60, ST_DOWN, ST_UP, 2000, 2000, "grp");
	alert_released(&b, 1);
	alert_released(&c, 1);
	alert_released(&a, 1);
	/* Refused until two failed attempts of the group (a and c). */
	{
		uv_timer_t guard;
		int turns = 0;

		uv_timer_init(main_loop, &guard);
		uv_timer_start(&guard, guard_cb, 20, 20);
		do {
			assert_true(++turns < 400);
			uv_run(main_loop, UV_RUN_ONCE);
			alert_get_stats(&after);
		} while (after.failed_attempts < before.failed_attempts + 4);
		uv_timer_stop(&guard);
		uv_close((uv_handle_t *)&guard, NULL);
	}
	assert_int_equal(count_lines(grec_path, NULL), 0);
	unlink(gstatus_path);
	run_until(grec_path, "op ", 2);
	/* First the group of a and c (retried: attempt > 0), then b. */
	assert_int_equal(count_lines(grec_path, "op n=2 attempt=0"), 0);
	assert_int_equal(count_lines(grec_path, "op n=2 attempt="), 1);
	assert_int_equal(count_lines(grec_path, "op n=1 attempt=0"), 1);
	assert_int_equal(count_lines(grec_path, "state=up"), 1);
	{
		char line[512];
		FILE *f = fopen(grec_path, "r");
		int seen_up_after_op2 = 0, ops = 0;

		assert_non_null(f);
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "op ", 3) == 0)
				ops++;
			if (strstr(line, "state=up") != NULL)
				seen_up_after_op2 = ops == 2;
		}
		fclose(f);
		assert_true(seen_up_after_op2);
	}
	free(a.payload);
	free(b.payload);
	free(c.payload);
}

struct answer {
	int done, ok;
	char text[256];
};

static void
answered(void *arg, int ok, const char *text)
{
	struct answer *a = arg;

	a->done = 1;
	a->ok = ok;
	snprintf(a->text, sizeof(a->text), "%s", text);
}

/* A test alert goes out of band: no outbox row, flag set, the answer. */
static void
test_test_alert(void **state)
{
	struct answer ans = { 0 };
	struct alert_stats before, after;
	uv_timer_t guard;
	int turns = 0;

	(void)state;
	unlink(grec_path);
	alert_get_stats(&before);
	assert_int_equal(alert_test_start("nosuch", answered, &ans),
	    WP_EINVAL);
	assert_int_equal(alert_test_start("grp", answered, &ans), 0);
	uv_timer_init(main_loop, &guard);
	uv_timer_start(&guard, guard_cb, 20, 20);
	while (!ans.done) {
		assert_true(++turns < 400);
		uv_run(main_loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&guard);
	uv_close((uv_handle_t *)&guard, NULL);
	assert_true(ans.ok);
	assert_string_equal(ans.text, "delivered: recorded 1");
	assert_int_equal(count_lines(grec_path, "monitor=watchpost-test "
	    "state=down"), 1);
	assert_int_equal(count_lines(grec_path, "flags=1 "), 1);
	alert_get_stats(&after);
	assert_int_equal(after.pending, before.pending);
	assert_int_equal(after.delivered, before.delivered);
	/* Refused: ok 0, the plugin's detail. */
	write_file(gstatus_path, "nope\n");
	ans.done = 0;
	turns = 0;
	assert_int_equal(alert_test_start("grp", answered, &ans), 0);
	uv_timer_start(&guard, guard_cb, 20, 20);
	while (!ans.done) {
		assert_true(++turns < 400);
		uv_run(main_loop, UV_RUN_ONCE);
	}
	unlink(gstatus_path);
	assert_false(ans.ok);
	assert_string_equal(ans.text, "failed: status: refused: nope");
}

static void
count_sections(void *arg, const struct alert_section *s)
{
	if (strcmp(s->name, "grp") == 0)
		*(uint64_t *)arg = s->delivered;
}

/* GET /api/alerts: the pending rows and the recent deliveries. */
static void
test_api_json(void **state)
{
	uint64_t grp_delivered = 0;
	char *body;

	(void)state;
	body = alert_api_json();
	assert_non_null(body);
	/* test_twenty_sections' rows wait for sections that do not exist. */
	assert_non_null(strstr(body, "\"alert\":\"s01\""));
	assert_non_null(strstr(body, "\"next_attempt\":null"));
	assert_non_null(strstr(body, "\"held\":[]"));
	assert_non_null(strstr(body, "\"delivered\":[{"));
	assert_null(strstr(body, "127.0.0.1:"));  /* no section URL */
	free(body);
	alert_each_section(count_sections, &grp_delivered);
	/* fields_21 (2), group_window (5), order_and_retry (3). */
	assert_int_equal(grp_delivered, 10);
}

static struct config *
config_from(const char *text)
{
	char path[4200];
	struct wp_diag diag;
	struct config *cfg = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/test.ini", tmpdir);
	write_file(path, text);
	diag_init(&diag, path);
	rc = config_load(path, plugdir, loader_lookup, NULL, &diag, &cfg);
	if (rc != 0)
		fprintf(stderr, "%s", diag.text ? diag.text : "?\n");
	diag_free(&diag);
	assert_int_equal(rc, 0);
	return cfg;
}

static int
setup(void **state)
{
	const char *args[] = { "--record", record_path, "--hook-status-file",
		status_path, "--accepted", accepted_path, NULL };
	char ini[16384], db[4200], err[256];
	struct config *cfg;
	struct wp_diag diag;
	void *prepared = NULL;

	(void)state;
	write_file(status_path, "200\n");
	server_start(&srv, args);
	snprintf(db, sizeof(db), "%s/wp.db", tmpdir);
	assert_int_equal(store_open(db, 1024, &st, err, sizeof(err)), 0);
	assert_int_equal(store_start(st), 0);
	assert_int_equal(alert_init(st), 0);
	snprintf(ini, sizeof(ini), "[agent]\nlisten = off\nname = unit-agent\n"
	    "[alert:hook]\ntype = webhook\nurl = http://127.0.0.1:%d/hook\n"
	    "timeout = 5s\n"
	    "[alert:grp]\ntype = grouprec\nrecord = %s\nstatus_path = %s\n"
	    "group_window = 100ms\n", srv.port, grec_path, gstatus_path);
	cfg = config_from(ini);
	diag_init(&diag, cfg->file);
	assert_int_equal(alert_prepare(cfg, &diag, &prepared), 0);
	diag_free(&diag);
	alert_commit(prepared);
	config_free(cfg);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	alert_stop();
	alert_free();
	uv_run(main_loop, UV_RUN_NOWAIT);
	store_close(st);
	server_stop(&srv);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_after_commit),
		cmocka_unit_test(test_backoff_blocks_chain),
		cmocka_unit_test(test_unknown_rows_ignored),
		cmocka_unit_test(test_twenty_sections),
		cmocka_unit_test(test_target_of),
		cmocka_unit_test(test_fields_21),
		cmocka_unit_test(test_group_window),
		cmocka_unit_test(test_group_order_and_retry),
		cmocka_unit_test(test_test_alert),
		cmocka_unit_test(test_api_json),
	};
	char path[8400];
	int rc;

	if (getenv("WP_PLUGIN_DIR") == NULL ||
	    getenv("WP_TEST_PLUGIN_DIR") == NULL || mkdtemp(tmpdir) == NULL) {
		fprintf(stderr, "WP_PLUGIN_DIR not set, or no temporary folder\n");
		return 1;
	}
	snprintf(status_path, sizeof(status_path), "%s/status", tmpdir);
	snprintf(record_path, sizeof(record_path), "%s/record", tmpdir);
	snprintf(accepted_path, sizeof(accepted_path), "%s/accepted", tmpdir);
	snprintf(grec_path, sizeof(grec_path), "%s/grec", tmpdir);
	snprintf(gstatus_path, sizeof(gstatus_path), "%s/gstatus", tmpdir);
	/* One plugin folder with the webhook and the grouping test plugin. */
	snprintf(plugdir, sizeof(plugdir), "%s/plugins", tmpdir);
	if (mkdir(plugdir, 0755) != 0 ||
	    copy_plugin(getenv("WP_PLUGIN_DIR"), "alert-webhook.so") != 0 ||
	    copy_plugin(getenv("WP_TEST_PLUGIN_DIR"), "alert-grouprec.so") != 0) {
		fprintf(stderr, "cannot make the plugin folder\n");
		return 1;
	}
	/* Retries 1 ms apart at most: back-off is counted, not timed. */
	setenv("WATCHPOST_ALERT_BACKOFF_MAX_MS", "1", 1);
	host_loop_init();
	log_setup(WP_LOG_ERROR, LOG_TO_STDERR);
	pool_init(1, 2);
	rc = cmocka_run_group_tests(tests, setup, teardown);
	pool_shutdown(2000);
	loader_shutdown();
	host_loop_close();
	opmon_shutdown();
	unlink(status_path);
	unlink(record_path);
	unlink(accepted_path);
	unlink(grec_path);
	unlink(gstatus_path);
	snprintf(path, sizeof(path), "%s/alert-webhook.so", plugdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/alert-grouprec.so", plugdir);
	unlink(path);
	rmdir(plugdir);
	snprintf(path, sizeof(path), "%s/test.ini", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/wp.db", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/wp.db-wal", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/wp.db-shm", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return rc;
}
