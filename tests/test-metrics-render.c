/*
 * core/metrics.c, the /metrics writer, against the real registry, manager
 * and store: HELP and TYPE once per family and before its samples, each
 * family contiguous, histograms cumulative with +Inf equal to _count, and
 * the store's own cumulative buckets passed through unchanged.  (The
 * name test-metrics is the live-agent test, tests/test-metrics.sh.)
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <watchpost/plugin.h>

#include "host.h"
#include "metrics.h"
#include "opmon.h"
#include "pool.h"
#include "store.h"
#include "util.h"

#define MAX_FAMILIES 128

/* The value of the sample SERIES ("name{labels}") in TEXT; fails if the
 * sample is missing. */
static double
value(const char *text, const char *series)
{
	char key[256];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", series);
	p = strstr(text, key);
	if (p == NULL)
		fail_msg("no sample %s", series);
	return strtod(p + strlen(key), NULL);
}

static int
has_suffix(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n > k && strncmp(s + n - k, suffix, k) == 0;
}

/* The format rules metrics.c is there to keep, checked line by line. */
static void
assert_well_formed(const char *text)
{
	char families[MAX_FAMILIES][128], cur[128] = "", type[32] = "";
	char help[128] = "";
	size_t n_families = 0, i, n;
	const char *line, *end;
	int histogram = 0;

	for (line = text; *line != '\0'; line = end + 1) {
		end = strchr(line, '\n');
		assert_non_null(end);
		if (strncmp(line, "# HELP ", 7) == 0) {
			n = strcspn(line + 7, " \n");
			assert_true(n < sizeof(help));
			memcpy(help, line + 7, n);
			help[n] = '\0';
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%127s %31s", cur,
			    type), 2);
			/* HELP just before, for the same family. */
			assert_string_equal(help, cur);
			help[0] = '\0';
			for (i = 0; i < n_families; i++)
				if (strcmp(families[i], cur) == 0)
					fail_msg("family %s twice", cur);
			assert_true(n_families < MAX_FAMILIES);
			snprintf(families[n_families++], sizeof(families[0]),
			    "%s", cur);
			histogram = strcmp(type, "histogram") == 0;
		} else {
			/* A sample belongs to the family last declared. */
			n = strcspn(line, "{ ");
			if (histogram && has_suffix(line, n, "_bucket"))
				n -= strlen("_bucket");
			else if (histogram && has_suffix(line, n, "_sum"))
				n -= strlen("_sum");
			else if (histogram && has_suffix(line, n, "_count"))
				n -= strlen("_count");
			if (strlen(cur) != n || strncmp(line, cur, n) != 0)
				fail_msg("sample outside its family %s: %.*s",
				    cur, (int)(end - line), line);
		}
	}
}

static void
test_families_once_and_contiguous(void **state)
{
	char build[128], *text;

	(void)state;
	text = metrics_render(NULL);
	assert_non_null(text);
	assert_well_formed(text);
	/* No configuration: the families, but no per-monitor series. */
	assert_non_null(strstr(text, "# TYPE watchpost_monitor_up gauge\n"));
	assert_null(strstr(text, "\nwatchpost_monitor_up{"));
	assert_true(value(text, "watchpost_monitors") == 0);
	snprintf(build, sizeof(build), "watchpost_build_info{version=\"%s\","
	    "abi=\"%d.%d\"}", PACKAGE_VERSION, WP_ABI_MAJOR, WP_ABI_MINOR);
	assert_true(value(text, build) == 1);
	assert_true(value(text, "watchpost_workers{state=\"total\"}") == 1);
	/* Without a store, no store families. */
	assert_null(strstr(text, "watchpost_store_"));
	free(text);
}

static void
test_operation_histogram_cumulative(void **state)
{
	static const char *const le[] = { "0.001", "0.005", "0.01", "0.025",
	    "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30",
	    "+Inf" };
	char series[128], *text;
	double prev = 0, v;
	size_t i;
	int k;

	(void)state;
	for (k = 0; k < 3; k++)
		opmon_end(opmon_begin(OPC_RETENTION, "retention", 60000),
		    OP_SUCCEEDED, NULL);
	text = metrics_render(NULL);
	assert_well_formed(text);
	for (i = 0; i < sizeof(le) / sizeof(le[0]); i++) {
		snprintf(series, sizeof(series),
		    "watchpost_operation_duration_seconds_bucket{category="
		    "\"retention\",le=\"%s\"}", le[i]);
		v = value(text, series);
		assert_true(v >= prev);
		prev = v;
	}
	/* Each took far less than 30 s: all in the last finite bucket. */
	assert_true(value(text, "watchpost_operation_duration_seconds_bucket"
	    "{category=\"retention\",le=\"30\"}") == 3);
	assert_true(prev == 3);
	assert_true(value(text, "watchpost_operation_duration_seconds_count"
	    "{category=\"retention\"}") == 3);
	assert_true(value(text, "watchpost_operations_total{category="
	    "\"retention\",outcome=\"succeeded\"}") == 3);
	free(text);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
test_store_batch_histogram(void **state)
{
	static const char *const names[] = { "alpha" };
	static const char *const types[] = { "tcp" };
	char dir[] = "/tmp/wp-metrics-XXXXXX", db[64], p[80], err[512] = "";
	struct store_check c;
	struct store_stats s;
	struct store *st = NULL;
	int64_t id, end;
	char *text;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/m.db", dir);
	if (store_open(db, 64, &st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_sync_monitors(st, names, types, 1, &id), 0);
	assert_int_equal(store_start(st), 0);
	for (i = 0; i < 20; i++) {
		memset(&c, 0, sizeof(c));
		c.monitor_id = id;
		c.ts_ms = 1000 + i;
		c.ok = 1;
		c.latency_ms = 1;
		c.status_code = -1;
		c.reason = WP_REASON_OK;
		c.attempts = 1;
		c.dns_ms = c.connect_ms = c.tls_ms = c.first_byte_ms = -1;
		c.state = "up";
		assert_int_equal(store_submit(st, &c, NULL, 0), 0);
	}
	end = mono_ms() + 30000;
	do {
		store_get_stats(st, &s);
		if (s.written >= 20 && s.queue_depth == 0)
			break;
		sleep_ms(5);
	} while (mono_ms() < end);
	assert_int_equal(s.written, 20);
	text = metrics_render(st);
	assert_well_formed(text);
	assert_true(value(text, "watchpost_store_written_total") == 20);
	assert_true(value(text, "watchpost_store_batch_seconds_bucket"
	    "{le=\"0.001\"}") == s.batch_ms_bucket[0]);
	assert_true(value(text, "watchpost_store_batch_seconds_bucket"
	    "{le=\"0.25\"}") == s.batch_ms_bucket[6]);
	assert_true(value(text, "watchpost_store_batch_seconds_bucket"
	    "{le=\"+Inf\"}") == s.batches);
	assert_true(value(text, "watchpost_store_batch_seconds_count") ==
	    s.batches);
	assert_true(s.batches >= 1);
	free(text);
	assert_int_equal(store_close(st), 0);
	uv_run(main_loop, UV_RUN_NOWAIT);
	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
	unlink(db);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_families_once_and_contiguous),
		cmocka_unit_test(test_operation_histogram_cumulative),
		cmocka_unit_test(test_store_batch_histogram),
	};

	host_loop_init();
	if (pool_init(1, 4) != 0) {
		fprintf(stderr, "pool_init failed\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
