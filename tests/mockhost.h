/*
 * mockhost -- a small, real host for plugin unit tests.
 *
 * It implements every wp_host service on a private libuv loop, loads one
 * plugin file with dlopen, and runs one operation at a time under a deadline
 * the way the daemon does: start() (or check() on a thread), cancel() at the
 * deadline, and a count of completions so tests can assert exactly-once.
 * Keys are parsed by the host's own parser (core/keys.c), so configure()
 * gets the conf struct the daemon would give it.
 */
#ifndef TESTS_MOCKHOST_H
#define TESTS_MOCKHOST_H

#include <stdint.h>
#include <watchpost/plugin.h>

struct mock_plugin;

struct mock_result {
	struct wp_result r;    /* r.detail points into detail[],
	                        * r.measurements into m[] */
	char detail[1024];
	struct wp_measurement m[WP_MEASUREMENTS_MAX];
	char m_names[WP_MEASUREMENTS_MAX][49];
	int completions;       /* how many times complete() was called */
	int timed_out;         /* the mock reached the deadline and cancelled */
	int start_rc;          /* what start()/check() returned */
	double elapsed_ms;     /* wall time from start to completion */
};

/*
 * Load FILE ("http.so") from $WP_PLUGIN_DIR (or DIR if FILE contains a '/')
 * and call its init().  Aborts the test on failure: a plugin that does not
 * load is a failed test.
 */
struct mock_plugin *mock_plugin_load(const char *file);
const struct wp_plugin *mock_plugin_desc(struct mock_plugin *mp);
void mock_plugin_unload(struct mock_plugin *mp);

/*
 * Parse KV, a NULL-terminated list of key, value, key, value... (line =
 * index of the pair + 1) with the host's key parser (keys_fill) into the
 * plugin's conf, then run configure() on it.  Returns WP_EINVAL when the
 * parser reported anything (configure() is then not called), else
 * configure()'s return code; *inst receives the instance, which keeps the
 * conf until mock_release().  Every problem, the parser's and
 * config_error()'s, is in mock_errors() as the daemon prints it:
 * "mock.ini:LINE: message\n" ("mock.ini:LINE: KEY: message\n" from
 * configure(); "mock.ini: message\n" for the section).
 */
int mock_configure(struct mock_plugin *mp, const char *name,
    const char *const *kv, int64_t timeout_ms, void **inst);
/* The interval (wp_section.interval_us) later mock_configure() calls hand
 * the plugin; 0 (the default): none, as from a host before ABI 2.1. */
void mock_set_interval(struct mock_plugin *mp, int64_t interval_ms);
const char *mock_errors(struct mock_plugin *mp);
void mock_release(struct mock_plugin *mp, void *inst);

/*
 * Run one operation on INST with a deadline of TIMEOUT_MS, as the daemon
 * would (async form preferred, blocking form on a thread otherwise).
 * ALERT is for alert plugins, else NULL.  Returns when the operation has
 * completed and any late completion window (100 ms) has passed.
 */
void mock_run(struct mock_plugin *mp, void *inst, int64_t timeout_ms,
    const struct wp_alert *alert, struct mock_result *out);

/*
 * Make the next mock_run() calls (with a non-NULL alert) deliver the
 * group_window batch ALERTS[0..N) as the daemon does: req->alerts and
 * n_alerts, req->alert == ALERTS[0] (the alert argument is then ignored).
 * ALERTS is borrowed until mock_set_batch(mp, NULL, 0) restores one alert
 * per operation.
 */
void mock_set_batch(struct mock_plugin *mp,
    const struct wp_alert *const *alerts, size_t n);

/* The host table the plugin was given (for tests that call services). */
const struct wp_host *mock_host(struct mock_plugin *mp);

/* Drive the loop for MS milliseconds (lets plugin timers and fds run). */
void mock_spin(struct mock_plugin *mp, int64_t ms);

#endif
