/*
 * The manager: its scheduling arithmetic and reload diff (schedule.c) tested
 * deterministically with made-up clocks, then the manager end to end on a
 * real libuv loop with the blocking test plugin.  The end-to-end tests
 * assert counts (checks, calls, skipped slots), never durations: monitors
 * that must not run again have a one-hour interval, so any extra check is a
 * real scheduling bug, not a slow machine.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "alert.h"
#include "cfg.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "manager.h"
#include "opmon.h"
#include "outcome.h"
#include "pool.h"
#include "schedule.h"
#include "util.h"

static const char *plugin_dir;
static char tmpdir[] = "/tmp/wp-manager.XXXXXX";

/* ---- the arithmetic ---- */

/* Slots stay on the absolute grid however late each check starts: after
 * 10,000 runs the next slot is exactly start + 10,001 intervals. */
static void
test_no_drift(void **state)
{
	struct sched s = { .due_us = 5000, .interval_us = 1000000 };
	uint64_t skipped;
	int64_t now;
	int k;

	(void)state;
	for (k = 0; k < 10000; k++) {
		/* The loop wakes up to 0.9 ms late, differently each time. */
		now = s.due_us + (k * 7919) % 900;
		assert_int_equal(sched_slot(&s, 0, now, &skipped), 1);
		assert_int_equal(skipped, 0);
		assert_int_equal(s.due_us, 5000 + (int64_t)(k + 1) * 1000000);
	}
	assert_int_equal(s.skipped, 0);
}

/* A slot that comes while the previous check runs is skipped and counted;
 * the next slot is still one interval after the skipped one. */
static void
test_busy_slot_skipped(void **state)
{
	struct sched s = { .due_us = 1000, .interval_us = 100 };
	uint64_t skipped;

	(void)state;
	assert_int_equal(sched_slot(&s, 1, 1010, &skipped), 0);
	assert_int_equal(skipped, 1);
	assert_int_equal(s.due_us, 1100);
	assert_int_equal(sched_slot(&s, 1, 1100, &skipped), 0);
	assert_int_equal(sched_slot(&s, 0, 1200, &skipped), 1);
	assert_int_equal(skipped, 0);
	assert_int_equal(s.skipped, 2);
	assert_int_equal(s.due_us, 1300);
}

/* A stalled loop: the slots it slept through are skipped, not run in a
 * burst, and the schedule stays on its grid. */
static void
test_missed_slots_not_burst(void **state)
{
	struct sched s = { .due_us = 0, .interval_us = 100 };
	uint64_t skipped;

	(void)state;
	/* Slot 0 runs at 1050: slots 100..1000 have passed. */
	assert_int_equal(sched_slot(&s, 0, 1050, &skipped), 1);
	assert_int_equal(skipped, 10);
	assert_int_equal(s.due_us, 1100);
	assert_int_equal(s.skipped, 10);
	/* Exactly on the next slot's time: that slot is due, not missed. */
	s = (struct sched){ .due_us = 0, .interval_us = 100 };
	assert_int_equal(sched_slot(&s, 0, 99, &skipped), 1);
	assert_int_equal(skipped, 0);
	assert_int_equal(s.due_us, 100);
}

/* First checks: the first monitor at once; 10,000 at 10 s spread evenly
 * over the whole interval (1 ms apart, so the steady state has no burst);
 * a few added monitors close together; never later than one interval. */
static void
test_first_checks_spread(void **state)
{
	static unsigned per_s[10];
	int64_t off, prev = -1, interval = 10 * 1000000LL;
	size_t k;

	(void)state;
	assert_int_equal(sched_first_offset(0, 10000, interval), 0);
	assert_int_equal(sched_first_offset(0, 1, interval), 0);
	for (k = 0; k < 10000; k++) {
		off = sched_first_offset(k, 10000, interval);
		assert_true(off >= prev);
		assert_true(off < interval);
		/* Checks due in the same SCHED_BATCH_US start together: 5
		 * per batch at 1 ms apart. */
		assert_int_equal(off % SCHED_BATCH_US, 0);
		assert_int_equal(off, (int64_t)(k / 5) * SCHED_BATCH_US);
		per_s[off / 1000000]++;
		prev = off;
	}
	/* Every second of the interval gets its tenth of the set. */
	for (k = 0; k < 10; k++)
		assert_int_equal(per_s[k], 1000);
	/* 100 added monitors: 1 ms apart at most, all within 0.1 s. */
	assert_true(sched_first_offset(99, 100, interval) < 100000);
	assert_true(sched_first_offset(99, 100, interval) > 0);
	/* A long interval: the gap is capped, not interval / n. */
	assert_int_equal(sched_first_offset(1, 10, 3600 * 1000000LL), 0);
	assert_int_equal(sched_first_offset(5, 10, 3600 * 1000000LL),
	    5 * SCHED_SPREAD_MAX_US);
	/* More monitors than microseconds in the interval still fold into
	 * one interval. */
	for (k = 0; k < 10000; k++)
		assert_true(sched_first_offset(k, 10000, 2500) < 2500);
}

static void
test_retries(void **state)
{
	(void)state;
	/* retries = 2: attempts 0 and 1 fail into a retry, 2 is final. */
	assert_true(sched_retry(0, 2));
	assert_true(sched_retry(1, 2));
	assert_false(sched_retry(2, 2));
	assert_false(sched_retry(0, 0));
}

static void
test_classify(void **state)
{
	uint64_t a = 1, a2 = 1, b = 2;

	(void)state;
	assert_int_equal(sched_classify(NULL, &a), DIFF_ADD);
	assert_int_equal(sched_classify(&a, &a2), DIFF_UNCHANGED);
	assert_int_equal(sched_classify(&a, &b), DIFF_UPDATE);
	assert_int_equal(sched_classify(&a, NULL), DIFF_REMOVE);
}

/* The states' words are the contract's, and only entering or leaving down
 * alerts: up <-> degraded and the first check coming good do not. */
static void
test_states(void **state)
{
	static const char *const words[] = { "pending", "up", "degraded",
	    "down", "paused", "maintenance" };
	struct wp_result ok = WP_RESULT_INIT, bad = WP_RESULT_INIT,
	    slow = WP_RESULT_INIT;
	enum mstate s;
	unsigned i;

	(void)state;
	for (i = 0; i < ST_COUNT; i++) {
		assert_string_equal(mstate_name((enum mstate)i), words[i]);
		assert_int_equal(mstate_parse(words[i], &s), 0);
		assert_int_equal(s, i);
	}
	assert_string_equal(mstate_label(ST_DOWN), "DOWN");
	assert_int_equal(mstate_parse("disabled", &s), WP_EINVAL);
	bad.reason = WP_REASON_REFUSED;
	slow.reason = WP_REASON_SLOW;
	assert_int_equal(mstate_of(&ok), ST_UP);
	assert_int_equal(mstate_of(&bad), ST_DOWN);
	assert_int_equal(mstate_of(&slow), ST_DEGRADED);
	assert_true(mstate_is_up(ST_UP) && mstate_is_up(ST_DEGRADED));
	assert_false(mstate_is_up(ST_DOWN) || mstate_is_up(ST_PENDING) ||
	    mstate_is_up(ST_PAUSED));
	assert_true(mstate_alerts(ST_PENDING, ST_DOWN));
	assert_true(mstate_alerts(ST_UP, ST_DOWN));
	assert_true(mstate_alerts(ST_DEGRADED, ST_DOWN));
	assert_true(mstate_alerts(ST_DOWN, ST_UP));
	assert_true(mstate_alerts(ST_DOWN, ST_DEGRADED));
	assert_false(mstate_alerts(ST_UP, ST_DEGRADED));
	assert_false(mstate_alerts(ST_DEGRADED, ST_UP));
	assert_false(mstate_alerts(ST_PENDING, ST_UP));
	assert_false(mstate_alerts(ST_PENDING, ST_DEGRADED));
	for (i = 0; i < ST_COUNT; i++)
		assert_false(mstate_alerts((enum mstate)i, (enum mstate)i));
}

/* ---- end to end ---- */

/* Write TEXT as a configuration file and load it (fails the test if it
 * does not load).  The caller owns the result until manager_apply. */
static struct config *
config_from(const char *text)
{
	char path[128];
	struct wp_diag diag;
	struct config *cfg = NULL;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/test.ini", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[agent]\nlisten = off\n%s", text);
	fclose(f);
	diag_init(&diag, path);
	rc = config_load(path, plugin_dir, loader_lookup, NULL, &diag, &cfg);
	if (rc != 0)
		fprintf(stderr, "%s", diag.text ? diag.text : "?\n");
	diag_free(&diag);
	assert_int_equal(rc, 0);
	assert_non_null(cfg);
	return cfg;
}

static void
apply(const char *text)
{
	struct config *cfg = config_from(text);
	struct wp_diag diag;

	diag_init(&diag, cfg->file);
	assert_int_equal(manager_apply(cfg, &diag), 0);
	diag_free(&diag);
}

/* The API's view of monitor NAME: a counter (checks_up, ...), -1 if the
 * monitor is not listed. */
static long long
counter(const char *name, const char *key)
{
	char *text = manager_monitors_json();
	json_t *arr = json_loads(text, 0, NULL), *o;
	long long v = -1;
	size_t i;

	free(text);
	assert_non_null(arr);
	json_array_foreach(arr, i, o) {
		if (strcmp(json_string_value(json_object_get(o, "name")),
		    name) == 0)
			v = json_integer_value(json_object_get(o, key));
	}
	json_decref(arr);
	return v;
}

/* Lines in the marker file starting with "NAME " (calls of the plugin). */
static int
calls(const char *marker, const char *name)
{
	char line[256];
	size_t len = strlen(name);
	int n = 0;
	FILE *f = fopen(marker, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, len) == 0 && line[len] == ' ')
			n++;
	fclose(f);
	return n;
}

static void
tick_cb(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until PRED(arg) holds or 20 s pass; a ticking timer keeps
 * UV_RUN_ONCE from sleeping on one-hour timers.  Returns PRED's value. */
static int
run_until(int (*pred)(void *), void *arg)
{
	int64_t end = mono_us() + 20 * 1000000LL;
	uv_timer_t tick;
	int ok;

	uv_timer_init(main_loop, &tick);
	uv_timer_start(&tick, tick_cb, 10, 10);
	while (!(ok = pred(arg)) && mono_us() < end)
		uv_run(main_loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(main_loop, UV_RUN_NOWAIT);
	return ok;
}

static int
idle(void *arg)
{
	(void)arg;
	return opmon_running(OPC_CHECK) == 0;
}

/* Remove every monitor and wait for in-flight checks: the next test
 * starts from an empty manager. */
static int
teardown(void **state)
{
	(void)state;
	apply("");
	assert_true(run_until(idle, NULL));
	assert_int_equal(manager_monitor_count(), 0);
	return 0;
}

static char marker[160];

/* The API's state of monitor NAME, into BUF ("" if not listed). */
static const char *
state_of(const char *name, char *buf, size_t len)
{
	char *text = manager_monitors_json();
	json_t *arr = json_loads(text, 0, NULL), *o;
	size_t i;

	free(text);
	assert_non_null(arr);
	buf[0] = '\0';
	json_array_foreach(arr, i, o) {
		if (strcmp(json_string_value(json_object_get(o, "name")),
		    name) == 0)
			snprintf(buf, len, "%s", json_string_value(
			    json_object_get(o, "state")));
	}
	json_decref(arr);
	return buf;
}

static int
both_checked(void *arg)
{
	(void)arg;
	return counter("good", "checks_up") == 1 &&
	    counter("bad", "checks_down") == 1;
}

/* The API shows the states in the contract's words: a disabled monitor is
 * paused, and never checked. */
static void
test_e2e_states(void **state)
{
	char text[1024], buf[32];

	(void)state;
	snprintf(text, sizeof(text),
	    "[monitor:good]\ntype = blocking\ninterval = 1h\nmarker = %s\n"
	    "[monitor:bad]\ntype = blocking\ninterval = 1h\nfail = true\n"
	    "retries = 0\nmarker = %s\n"
	    "[monitor:off]\ntype = blocking\ninterval = 1h\nenabled = false\n"
	    "marker = %s\n", marker, marker, marker);
	apply(text);
	assert_true(run_until(both_checked, NULL));
	assert_true(run_until(idle, NULL));
	assert_string_equal(state_of("good", buf, sizeof(buf)), "up");
	assert_string_equal(state_of("bad", buf, sizeof(buf)), "down");
	assert_string_equal(state_of("off", buf, sizeof(buf)), "paused");
	assert_int_equal(calls(marker, "off"), 0);
}

static int
warned_checked(void *arg)
{
	(void)arg;
	return counter("warned", "checks_up") == 1;
}

/* A result whose reason is of the degraded class makes the monitor
 * degraded: up (counted as such), shown with its reason, not retried. */
static void
test_e2e_degraded(void **state)
{
	char text[512], buf[32];
	char *json;

	(void)state;
	snprintf(text, sizeof(text), "[monitor:warned]\ntype = blocking\n"
	    "interval = 1h\nwarn = true\nretries = 2\nmarker = %s\n", marker);
	apply(text);
	assert_true(run_until(warned_checked, NULL));
	assert_true(run_until(idle, NULL));
	assert_string_equal(state_of("warned", buf, sizeof(buf)), "degraded");
	assert_int_equal(counter("warned", "checks_down"), 0);
	assert_int_equal(calls(marker, "warned"), 1);
	json = manager_monitors_json();
	assert_non_null(strstr(json, "\"reason\":\"slow\""));
	free(json);
}

static int
up_at_least_3(void *arg)
{
	return counter((const char *)arg, "checks_up") >= 3;
}

/* A check that takes 3.5 intervals is never doubled: each slot that comes
 * while it runs is skipped and counted. */
static void
test_e2e_running_check_not_doubled(void **state)
{
	char text[512];
	long long up, skipped;
	int n;

	(void)state;
	snprintf(text, sizeof(text), "[monitor:slow]\ntype = blocking\n"
	    "sleep = 350ms\ninterval = 100ms\nretries = 0\nmarker = %s\n",
	    marker);
	apply(text);
	assert_true(run_until(up_at_least_3, "slow"));
	up = counter("slow", "checks_up");
	skipped = counter("slow", "checks_skipped");
	n = calls(marker, "slow");
	printf("# slow: %lld checks, %d calls, %lld skipped slots\n", up, n,
	    skipped);
	/* At most the one in flight beyond those finished. */
	assert_true(n <= up + 1);
	assert_true(skipped >= up);
}

static int
down_once(void *arg)
{
	return counter((const char *)arg, "checks_down") >= 1;
}

/* retries = 2: three attempts, then one failed check. */
static void
test_e2e_retries(void **state)
{
	char text[512];
	char line[64];
	int seen[3] = { 0, 0, 0 };
	unsigned a;
	FILE *f;

	(void)state;
	snprintf(text, sizeof(text), "[monitor:flaky]\ntype = blocking\n"
	    "fail = true\ninterval = 1h\nretries = 2\nretry_interval = 50ms\n"
	    "marker = %s\n", marker);
	apply(text);
	assert_true(run_until(down_once, "flaky"));
	assert_true(run_until(idle, NULL));
	assert_int_equal(counter("flaky", "checks_down"), 1);
	assert_int_equal(counter("flaky", "checks_up"), 0);
	assert_int_equal(calls(marker, "flaky"), 3);
	f = fopen(marker, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "flaky %u", &a) == 1 && a < 3)
			seen[a]++;
	fclose(f);
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 1);
	assert_int_equal(seen[2], 1);
}

static int
first_round_done(void *arg)
{
	(void)arg;
	return counter("keep", "checks_up") == 1 &&
	    counter("change", "checks_up") == 1 && calls(marker, "gone") == 1;
}

static int
second_round_done(void *arg)
{
	(void)arg;
	return counter("change", "checks_up") == 2 &&
	    counter("new", "checks_up") == 1 && opmon_running(OPC_CHECK) == 0;
}

/* Reload by name: add, update (immediate check, state kept), remove (an
 * in-flight check finishes harmlessly), unchanged (not touched). */
static void
test_e2e_reload_diff(void **state)
{
	char a[1024], b[1024];

	(void)state;
	snprintf(a, sizeof(a),
	    "[monitor:keep]\ntype = blocking\ninterval = 1h\nmarker = %s\n"
	    "[monitor:change]\ntype = blocking\ninterval = 1h\nmarker = %s\n"
	    "[monitor:gone]\ntype = blocking\ninterval = 1h\nsleep = 2s\n"
	    "marker = %s\n", marker, marker, marker);
	snprintf(b, sizeof(b),
	    "[monitor:new]\ntype = blocking\ninterval = 1h\nmarker = %s\n"
	    "[monitor:keep]\ntype = blocking\ninterval = 1h\nmarker = %s\n"
	    "[monitor:change]\ntype = blocking\ninterval = 1h\nsleep = 1ms\n"
	    "marker = %s\n", marker, marker, marker);
	apply(a);
	/* "gone" has started its two-second check. */
	assert_true(run_until(first_round_done, NULL));
	assert_int_equal(opmon_running(OPC_CHECK), 1);
	apply(b);
	assert_int_equal(manager_monitor_count(), 3);
	assert_int_equal(counter("gone", "checks_up"), -1);
	assert_true(run_until(second_round_done, NULL));
	/* Unchanged: its one-hour schedule was left alone. */
	assert_int_equal(counter("keep", "checks_up"), 1);
	assert_int_equal(calls(marker, "keep"), 1);
	/* Changed: checked again at once, its history kept. */
	assert_int_equal(calls(marker, "change"), 2);
	/* Added: first check right away, not after an interval. */
	assert_int_equal(calls(marker, "new"), 1);
	/* Removed: its check finished and nothing ran again. */
	assert_int_equal(calls(marker, "gone"), 1);
	assert_int_equal(counter("gone", "checks_up"), -1);
}

static int
all_checked(void *arg)
{
	char *text = manager_monitors_json();
	json_t *arr = json_loads(text, 0, NULL), *o;
	size_t i, n = 0;

	(void)arg;
	free(text);
	json_array_foreach(arr, i, o)
		if (json_integer_value(json_object_get(o, "checks_up")) >= 1)
			n++;
	json_decref(arr);
	return n == 2000;
}

static int
changed_rechecked(void *arg)
{
	char name[16];
	int k;

	(void)arg;
	for (k = 0; k < 2000; k += 100) {
		snprintf(name, sizeof(name), "m%d", k);
		if (counter(name, "checks_up") != 2)
			return 0;
	}
	return opmon_running(OPC_CHECK) == 0;
}

/* 2,000 monitors: every one gets its first check, exactly one (the
 * spread never pushes a first check past the interval), no slot skipped;
 * reloading with 1% changed re-checks exactly those 20. */
static void
test_e2e_large_set(void **state)
{
	struct sbuf a = { 0 }, b = { 0 };
	char *text;
	json_t *arr, *o;
	size_t i;
	int k;

	(void)state;
	for (k = 0; k < 2000; k++) {
		sbuf_printf(&a, "[monitor:m%d]\ntype = blocking\n"
		    "interval = 1h\n", k);
		sbuf_printf(&b, "[monitor:m%d]\ntype = blocking\n"
		    "interval = 1h\n%s", k, k % 100 == 0 ? "sleep = 1ms\n" : "");
	}
	apply(a.data);
	assert_true(run_until(all_checked, NULL));
	assert_true(run_until(idle, NULL));
	assert_int_equal(calls(marker, "m1999"), 0); /* no marker key */
	apply(b.data);
	assert_int_equal(manager_monitor_count(), 2000);
	assert_true(run_until(changed_rechecked, NULL));
	text = manager_monitors_json();
	arr = json_loads(text, 0, NULL);
	free(text);
	json_array_foreach(arr, i, o) {
		/* Changed ones twice (once more, at once), the rest once. */
		assert_int_equal(json_integer_value(json_object_get(o,
		    "checks_up")), i % 100 == 0 ? 2 : 1);
		assert_int_equal(json_integer_value(json_object_get(o,
		    "checks_skipped")), 0);
	}
	json_decref(arr);
	sbuf_free(&a);
	sbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_drift),
		cmocka_unit_test(test_busy_slot_skipped),
		cmocka_unit_test(test_missed_slots_not_burst),
		cmocka_unit_test(test_first_checks_spread),
		cmocka_unit_test(test_retries),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_states),
		cmocka_unit_test_teardown(test_e2e_running_check_not_doubled,
		    teardown),
		cmocka_unit_test_teardown(test_e2e_retries, teardown),
		cmocka_unit_test_teardown(test_e2e_reload_diff, teardown),
		cmocka_unit_test_teardown(test_e2e_large_set, teardown),
		cmocka_unit_test_teardown(test_e2e_states, teardown),
		cmocka_unit_test_teardown(test_e2e_degraded, teardown),
	};
	int rc;

	plugin_dir = getenv("WP_TEST_PLUGIN_DIR");
	if (plugin_dir == NULL) {
		fprintf(stderr, "WP_TEST_PLUGIN_DIR not set\n");
		return 1;
	}
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(marker, sizeof(marker), "%s/calls", tmpdir);
	host_loop_init();
	log_setup(WP_LOG_WARN, LOG_TO_STDERR);
	pool_init(2, 8);
	manager_init(NULL);
	alert_init(NULL);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	manager_free();
	alert_free();
	uv_run(main_loop, UV_RUN_NOWAIT);
	pool_shutdown(2000);
	loader_shutdown();
	host_loop_close();
	opmon_shutdown();
	unlink(marker);
	snprintf(marker, sizeof(marker), "%s/test.ini", tmpdir);
	unlink(marker);
	rmdir(tmpdir);
	return rc;
}
