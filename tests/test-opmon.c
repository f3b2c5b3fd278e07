/*
 * The async-operation monitor: outcomes, deadlines, the worker pool under a
 * hanging blocking plugin, and flat memory over a million operations.
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

#include "cfg.h"
#include "configure.h"
#include "host.h"
#include "loader.h"
#include "opmon.h"
#include "pool.h"
#include "util.h"

static const struct plugin *blocking;

struct outcome {
	int calls;
	enum op_outcome outcome;
	int ok;
	int reason;
	int64_t at_us;
};

static void
done(void *arg, const struct wp_result *res, enum op_outcome o)
{
	struct outcome *out = arg;

	out->calls++;
	out->outcome = o;
	out->ok = res->ok;
	out->reason = res->reason;
	out->at_us = wp_now_us();
}

/* Configure a blocking-plugin instance from key/value pairs. */
static struct instance *
make_instance(const char *k1, const char *v1)
{
	struct cfg_kv kv[1] = { { k1, v1, 1 } };
	struct cfg_section s = { .name = "t", .line = 1, .kv = kv,
	    .n_kv = k1 ? 1 : 0 };
	struct config cfg = { .file = "test.ini", .dir = "/" };
	struct configured built;
	struct wp_diag diag;

	diag_init(&diag, "test.ini");
	assert_int_equal(configure_section(blocking, &cfg, &s, 1000, &diag,
	    &built), 0);
	diag_free(&diag);
	return instance_new(blocking, &built);
}

static void
spin_until(int *flag, int64_t ms)
{
	int64_t end = wp_now_us() + ms * 1000;

	while (!*flag && wp_now_us() < end)
		uv_run(wp_loop, UV_RUN_ONCE);
}

static void
test_success(void **state)
{
	struct instance *in = make_instance(NULL, NULL);
	struct outcome out = { 0 };

	(void)state;
	opmon_run(in, OPC_CHECK, "ok-check", 2000, 0, NULL, done, &out);
	/* done() never runs inside opmon_run */
	assert_int_equal(out.calls, 0);
	assert_int_equal(opmon_running(OPC_CHECK), 1);
	spin_until(&out.calls, 3000);
	assert_int_equal(out.calls, 1);
	assert_int_equal(out.outcome, OP_SUCCEEDED);
	assert_int_equal(out.ok, 1);
	instance_unref(in);
	uv_run(wp_loop, UV_RUN_NOWAIT);
	assert_int_equal(opmon_running(OPC_CHECK), 0);
}

static void
test_failure_recorded(void **state)
{
	struct instance *in = make_instance("fail", "true");
	struct outcome out = { 0 };
	char *json;

	(void)state;
	opmon_run(in, OPC_CHECK, "failing-check", 2000, 0, NULL, done, &out);
	spin_until(&out.calls, 3000);
	assert_int_equal(out.outcome, OP_FAILED);
	assert_int_equal(out.reason, WP_REASON_CHECK);
	json = opmon_json();
	assert_non_null(strstr(json, "\"failing-check\""));
	assert_non_null(strstr(json, "recent_failures"));
	free(json);
	instance_unref(in);
}

/* A blocking check that never returns: the deadline is reported on time,
 * and other blocking checks still run (the pool grows). */
static void
test_hang_times_out_and_pool_survives(void **state)
{
	struct instance *hang[3];
	struct instance *quick = make_instance(NULL, NULL);
	struct outcome h[3] = { { 0 } }, q = { 0 }, again = { 0 };
	int64_t t0 = wp_now_us();
	int i, all = 0;
	struct pool_stats ps;

	(void)state;
	/* Three hung checks (three monitors): more than the pool's two
	 * threads. */
	for (i = 0; i < 3; i++) {
		hang[i] = make_instance("hang", "true");
		opmon_run(hang[i], OPC_CHECK, "hang", 200, 0, NULL, done, &h[i]);
	}
	while (!all && wp_now_us() - t0 < 3000000) {
		uv_run(wp_loop, UV_RUN_ONCE);
		all = h[0].calls && h[1].calls && h[2].calls;
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(h[i].calls, 1);
		assert_int_equal(h[i].outcome, OP_TIMED_OUT);
		assert_int_equal(h[i].reason, WP_REASON_TIMEOUT);
	}
	/* Reported near the deadline, not when (never) the plugin returns. */
	assert_true(h[0].at_us - t0 < 1500000);
	opmon_run(quick, OPC_CHECK, "quick", 2000, 0, NULL, done, &q);
	spin_until(&q.calls, 3000);
	assert_int_equal(q.outcome, OP_SUCCEEDED);
	pool_get_stats(&ps);
	assert_true(ps.stuck >= 3);
	assert_true(ps.threads > 2);
	/* A monitor whose check is still stuck gets no second worker: its
	 * next check fails at once, as a plugin failure. */
	opmon_run(hang[0], OPC_CHECK, "hang", 200, 0, NULL, done, &again);
	spin_until(&again.calls, 3000);
	assert_int_equal(again.outcome, OP_FAILED);
	assert_int_equal(again.reason, WP_REASON_PLUGIN);
	pool_get_stats(&ps);
	assert_int_equal(ps.stuck, 3);
	instance_unref(quick);
	for (i = 0; i < 3; i++)
		instance_unref(hang[i]);
}

/* One plugin may hold at most half the pool in stuck workers (the pool is
 * 2..8 here and three hung checks are left from the test above): the
 * fourth hung monitor still gets a worker, the fifth is refused at once,
 * so the plugin cannot starve every other plugin of workers. */
static void
test_plugin_stuck_cap(void **state)
{
	struct instance *a = make_instance("hang", "true");
	struct instance *b = make_instance("hang", "true");
	struct outcome oa = { 0 }, ob = { 0 };
	struct pool_stats ps;

	(void)state;
	opmon_run(a, OPC_CHECK, "hang-4", 200, 0, NULL, done, &oa);
	spin_until(&oa.calls, 3000);
	assert_int_equal(oa.outcome, OP_TIMED_OUT);
	pool_get_stats(&ps);
	assert_int_equal(ps.stuck, 4);
	opmon_run(b, OPC_CHECK, "hang-5", 200, 0, NULL, done, &ob);
	spin_until(&ob.calls, 3000);
	assert_int_equal(ob.outcome, OP_FAILED);
	assert_int_equal(ob.reason, WP_REASON_PLUGIN);
	pool_get_stats(&ps);
	assert_int_equal(ps.stuck, 4);
	assert_true(ps.stuck <= ps.max / 2);
	instance_unref(a);
	instance_unref(b);
}

static long
rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Finished operations live only in bounded rings: a million of them leave
 * memory where ten thousand left it. */
static void
test_million_operations_flat_memory(void **state)
{
	long before, after;
	int i;

	(void)state;
	for (i = 0; i < 10000; i++)
		opmon_end(opmon_begin(OPC_STORE, "warm-up", 1000),
		    i % 7 ? OP_SUCCEEDED : OP_FAILED, "detail");
	uv_run(wp_loop, UV_RUN_NOWAIT);
	before = rss_kb();
	for (i = 0; i < 1000000; i++) {
		opmon_end(opmon_begin(OPC_STORE, "flush", 1000),
		    i % 7 ? OP_SUCCEEDED : OP_FAILED, "detail");
		if (i % 1000 == 0)
			uv_run(wp_loop, UV_RUN_NOWAIT);
	}
	uv_run(wp_loop, UV_RUN_NOWAIT);
	after = rss_kb();
	printf("# rss before %ld kB, after a million operations %ld kB\n",
	    before, after);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan keeps freed memory in quarantine, so RSS says nothing here;
	 * LeakSanitizer checks at exit instead. */
	printf("# ASan build: RSS comparison not meaningful, not asserted\n");
#else
	assert_true(after - before < 2048);
#endif
	assert_int_equal(opmon_running(OPC_STORE), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_failure_recorded),
		cmocka_unit_test(test_hang_times_out_and_pool_survives),
		cmocka_unit_test(test_plugin_stuck_cap),
		cmocka_unit_test(test_million_operations_flat_memory),
	};
	const char *dir = getenv("WP_TEST_PLUGIN_DIR");
	char why[512];

	if (dir == NULL) {
		fprintf(stderr, "WP_TEST_PLUGIN_DIR not set\n");
		return 1;
	}
	host_loop_init();
	pool_init(2, 8);
	loader_load_dir(dir);
	blocking = loader_find(WP_PLUGIN_CHECK, "blocking", why,
	    sizeof(why));
	if (blocking == NULL) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	/* Hung workers never return: do not wait for them at exit. */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
