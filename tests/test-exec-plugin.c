/*
 * exec.so and alert-exec.so on the mock host (with the core's own
 * host->spawn): each operation completes exactly once, also when the
 * deadline kills the command and its callback comes after cancel(); the
 * verdicts and measurements of a script; the alert's JSON body on stdin;
 * configure()'s refusals; unloading with a command still running.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mockhost.h"

static char dir[] = "/tmp/wp-exec-plugin.XXXXXX";

/* Write an executable script NAME with BODY; returns its path (static). */
static const char *
script(const char *name, const char *body)
{
	static char path[4][256];
	static int k;
	char *p = path[k++ % 4];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	chmod(p, 0755);
	return p;
}

static void *
configure(struct mock_plugin *mp, const char *cmd, const char *arg)
{
	const char *kv[] = { "command", cmd, arg ? "arg" : NULL, arg, NULL };
	void *inst = NULL;

	assert_int_equal(mock_configure(mp, "m", kv, 2000, &inst), WP_OK);
	return inst;
}

static const struct wp_measurement *
meas(const struct mock_result *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->r.n_measurements; i++)
		if (strcmp(r->r.measurements[i].name, name) == 0)
			return &r->r.measurements[i];
	fail_msg("no measurement %s", name);
	return NULL;
}

static void
test_verdicts(void **state)
{
	struct mock_plugin *mp = mock_plugin_load("exec.so");
	const char *p;
	struct mock_result r;
	void *inst;

	(void)state;
	p = script("warn", "echo 'LOAD WARNING - high|load1=7;5;10 t=12ms'; "
	    "exit 1");
	inst = configure(mp, p, NULL);
	mock_run(mp, inst, 2000, NULL, &r);
	assert_int_equal(r.completions, 1);
	assert_int_equal(r.r.reason, WP_REASON_WARNING);
	assert_string_equal(r.detail, "LOAD WARNING - high");
	assert_int_equal(r.r.n_measurements, 2);
	assert_true(meas(&r, "load1")->value == 7);
	assert_true(meas(&r, "t")->value == 0.012);
	mock_release(mp, inst);

	p = script("sig", "kill -SEGV $$");
	inst = configure(mp, p, NULL);
	mock_run(mp, inst, 2000, NULL, &r);
	assert_int_equal(r.completions, 1);
	assert_int_equal(r.r.reason, WP_REASON_CHECK);
	assert_non_null(strstr(r.detail, "killed by signal 11"));
	mock_release(mp, inst);

	p = script("errout", "echo 'only on stderr' >&2; exit 2");
	inst = configure(mp, p, NULL);
	mock_run(mp, inst, 2000, NULL, &r);
	assert_int_equal(r.r.reason, WP_REASON_CHECK);
	assert_string_equal(r.detail, "only on stderr");
	mock_release(mp, inst);
	mock_plugin_unload(mp);
}

/* At the deadline: one completion, a timeout; the command's callback
 * comes later and completes nothing. */
static void
test_deadline_once(void **state)
{
	struct mock_plugin *mp = mock_plugin_load("exec.so");
	struct mock_result r;
	void *inst;

	(void)state;
	inst = configure(mp, "/bin/sleep", "600");
	mock_run(mp, inst, 200, NULL, &r);
	assert_int_equal(r.timed_out, 1);
	assert_int_equal(r.completions, 1);
	assert_int_equal(r.r.reason, WP_REASON_TIMEOUT);
	mock_spin(mp, 300); /* the callback of the killed command */
	assert_int_equal(r.completions, 1);
	mock_release(mp, inst);
	/* and once more, unloading before the callback can come */
	inst = configure(mp, "/bin/sleep", "600");
	mock_run(mp, inst, 100, NULL, &r);
	assert_int_equal(r.completions, 1);
	mock_release(mp, inst);
	mock_plugin_unload(mp);
}

static void
test_refusals(void **state)
{
	struct mock_plugin *mp = mock_plugin_load("exec.so");
	const char *rel[] = { "command", "bin/check", NULL };
	const char *env[] = { "command", "/bin/true", "env", "X", NULL };
	void *inst = NULL;

	(void)state;
	assert_int_equal(mock_configure(mp, "m", rel, 1000, &inst), WP_EINVAL);
	assert_non_null(strstr(mock_errors(mp), "command: \"bin/check\" is "
	    "not an absolute path"));
	assert_int_equal(mock_configure(mp, "m", env, 1000, &inst), WP_EINVAL);
	assert_non_null(strstr(mock_errors(mp), "env: entry 1 is not "
	    "NAME=value"));
	mock_plugin_unload(mp);
}

/* The alert's JSON body on stdin; exit 0 delivered, else stderr's line. */
static void
test_alert(void **state)
{
	struct mock_plugin *mp = mock_plugin_load("alert-exec.so");
	struct wp_alert a = { .size = sizeof(a), .id = 42, .monitor = "web",
	    .type = "http", .state = "down", .previous_state = "up",
	    .timestamp_us = 1700000000000000, .error = "refused",
	    .reason = "refused", .latency_us = -1 };
	char path[100], buf[512];
	const char *p;
	struct mock_result r;
	void *inst;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/body", dir);
	snprintf(buf, sizeof(buf), "cat >%s; echo >>%s; echo \"$WATCHPOST_ID "
	    "$WATCHPOST_STATE\" >>%s", path, path, path);
	p = script("rec", buf);
	inst = configure(mp, p, NULL);
	mock_run(mp, inst, 2000, &a, &r);
	assert_int_equal(r.completions, 1);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_non_null(strstr(buf, "\"monitor\":\"web\""));
	assert_non_null(strstr(buf, "\"id\":42"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "42 down\n");
	fclose(f);
	mock_release(mp, inst);

	p = script("no", "echo 'quota exceeded' >&2; echo more >&2; exit 3");
	inst = configure(mp, p, NULL);
	mock_run(mp, inst, 2000, &a, &r);
	assert_int_equal(r.completions, 1);
	assert_int_equal(r.r.reason, WP_REASON_CHECK);
	assert_string_equal(r.detail, "exit 3: quota exceeded");
	mock_release(mp, inst);
	mock_plugin_unload(mp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_deadline_once),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_alert),
	};
	int rc;
	static const char *const files[] = { "warn", "sig", "errout", "rec",
	    "no", "body" };
	char path[300];
	size_t i;

	if (mkdtemp(dir) == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	if (rmdir(dir) != 0)
		rc = 1;
	return rc;
}
