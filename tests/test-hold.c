/*
 * test-hold -- core/hold.c through hold.h, without a store: depends_on
 * holds and releases (the child's DOWN goes out when the parent recovers,
 * nothing when it recovered meanwhile), a start/end window around now
 * (state shown as maintenance, only covered monitors, one release per
 * changed state), holds kept across a re-apply and released when the
 * window leaves the file, and the held list of GET /api/alerts.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "cfg.h"
#include "hold.h"
#include "policy.h"
#include "util.h"

/* The fake manager: monitors p (parent), c (child of p), web-1, db. */
static const char *const names[] = { "p", "c", "web-1", "db" };
#define N_MON 4
static enum mstate states[N_MON];
static unsigned alert_on[N_MON];    /* each monitor's policy alert_on */
static char released[8][32];
static enum mstate released_prev[8];
static int n_released;

static enum mstate
state_of(const char *name)
{
	size_t i;

	for (i = 0; i < N_MON; i++)
		if (strcmp(names[i], name) == 0)
			return states[i];
	return ST_COUNT;
}

static void
release(const char *name, enum mstate prev)
{
	assert_true(n_released < 8);
	str_copy(released[n_released], sizeof(released[0]), name);
	released_prev[n_released++] = prev;
}

static const struct hold_ops ops = { release, state_of, NULL };

static char *alert_names[] = { (char *)"ops" };
static char *c_deps[] = { (char *)"p" };
static char *win_pats[] = { (char *)"web-*" };

/* CFG with the four monitors, one alert section and, with WINDOW, a
 * one-off window over web-* from a minute ago to an hour from now. */
static void
make_config(struct config *cfg, struct cfg_monitor *m, struct cfg_alert *a,
    struct cfg_maintenance *w, int window)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	memset(m, 0, N_MON * sizeof(*m));
	memset(a, 0, sizeof(*a));
	memset(w, 0, sizeof(*w));
	for (i = 0; i < N_MON; i++) {
		m[i].s.name = (char *)names[i];
		m[i].all_alerts = 1;
		/* The release rule asks alert_on (policy.h). */
		policy_conf_default(&m[i].policy);
		m[i].policy.alert_on = alert_on[i];
	}
	m[1].depends_on = c_deps;
	m[1].n_depends_on = 1;
	m[2].all_alerts = 0;
	m[2].alerts = alert_names;
	m[2].n_alerts = 1;
	a->s.name = (char *)"ops";
	w->name = (char *)"patch";
	w->monitors = win_pats;
	w->n_monitors = 1;
	w->start_ms = wall_ms() - 60000;
	w->end_ms = wall_ms() + 3600000;
	cfg->monitors = m;
	cfg->n_monitors = N_MON;
	cfg->alerts = a;
	cfg->n_alerts = 1;
	cfg->maintenance = window ? w : NULL;
	cfg->n_maintenance = window ? 1 : 0;
}

/* Monitor I's check moving it to S; hold_check's answer. */
static unsigned
check(size_t i, enum mstate s)
{
	struct wp_result r = WP_RESULT_INIT;
	struct outcome o;

	memset(&o, 0, sizeof(o));
	o.monitor = names[i];
	o.type = "http";
	o.result = &r;
	o.previous = states[i];
	o.state = s;
	o.changed = s != states[i];
	/* What the manager's policy decides. */
	o.alert = o.changed && policy_alerts(alert_on[i], o.previous,
	    o.state);
	o.started_ms = wall_ms();
	states[i] = s;
	return hold_check(&o);
}

static int
setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_MON; i++) {
		states[i] = ST_UP;
		alert_on[i] = POLICY_ON_DEFAULT;
	}
	n_released = 0;
	hold_init(NULL, &ops);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	hold_free();
	return 0;
}

static void
test_depends(void **state)
{
	struct config cfg;
	struct cfg_monitor m[N_MON];
	struct cfg_alert a;
	struct cfg_maintenance w;
	json_t *held;

	(void)state;
	make_config(&cfg, m, &a, &w, 0);
	hold_apply(&cfg);
	assert_int_equal(check(1, ST_UP), 0);
	/* The parent goes down: its own alert is not held. */
	assert_int_equal(check(0, ST_DOWN), 0);
	/* The child's DOWN is held, and listed with why. */
	assert_int_equal(check(1, ST_DOWN), HOLD_DEPENDS);
	assert_int_equal(hold_shown("c", ST_DOWN), ST_DOWN);
	held = json_array();
	hold_list_json(held);
	assert_int_equal(json_array_size(held), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(held, 0), "monitor")), "c");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(held, 0), "alert")), "ops");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(held, 0), "state")), "down");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(held, 0), "why")), "depends_on p");
	json_decref(held);
	assert_int_equal(n_released, 0);
	/* The parent recovers with the child still down: released, once,
	 * from up. */
	assert_int_equal(check(0, ST_UP), 0);
	assert_int_equal(n_released, 1);
	assert_string_equal(released[0], "c");
	assert_int_equal(released_prev[0], ST_UP);
	assert_int_equal(check(1, ST_DOWN), 0);
	assert_int_equal(n_released, 1);
	held = json_array();
	hold_list_json(held);
	assert_int_equal(json_array_size(held), 0);
	json_decref(held);

	/* Again, with the child recovering while held: nothing. */
	assert_int_equal(check(1, ST_UP), 0);
	assert_int_equal(check(0, ST_DOWN), 0);
	assert_int_equal(check(1, ST_DOWN), HOLD_DEPENDS);
	assert_int_equal(check(1, ST_UP), HOLD_DEPENDS);
	assert_int_equal(check(0, ST_UP), 0);
	assert_int_equal(n_released, 1);
	assert_int_equal(check(1, ST_UP), 0);
}

static void
test_window(void **state)
{
	struct config cfg;
	struct cfg_monitor m[N_MON];
	struct cfg_alert a;
	struct cfg_maintenance w;
	json_t *held;

	(void)state;
	make_config(&cfg, m, &a, &w, 1);
	hold_apply(&cfg);
	/* Only web-* is covered. */
	assert_int_equal(hold_shown("web-1", ST_UP), ST_MAINTENANCE);
	assert_int_equal(hold_shown("web-1", ST_PAUSED), ST_PAUSED);
	assert_int_equal(hold_shown("db", ST_UP), ST_UP);
	assert_int_equal(check(3, ST_DOWN), 0);
	assert_int_equal(check(2, ST_DOWN), HOLD_WINDOW);
	held = json_array();
	hold_list_json(held);
	assert_int_equal(json_array_size(held), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(held, 0), "why")), "maintenance patch");
	json_decref(held);
	/* A re-apply of the same file keeps the hold and what it held. */
	make_config(&cfg, m, &a, &w, 1);
	hold_apply(&cfg);
	assert_int_equal(n_released, 0);
	assert_int_equal(hold_shown("web-1", ST_DOWN), ST_MAINTENANCE);
	/* The window leaves the file: web-1 differs from before (up), so
	 * one alert, from up. */
	make_config(&cfg, m, &a, &w, 0);
	hold_apply(&cfg);
	assert_int_equal(n_released, 1);
	assert_string_equal(released[0], "web-1");
	assert_int_equal(released_prev[0], ST_UP);
	assert_int_equal(hold_shown("web-1", ST_DOWN), ST_DOWN);
	assert_int_equal(check(2, ST_UP), 0);
}

/* The release asks the monitor's own alert_on, as a check's o->alert
 * does (one rule): with alert_on = down, a recovery across a window sends
 * nothing, and is not listed as held; an outage across one sends its
 * DOWN when the window ends. */
static void
test_window_alert_on(void **state)
{
	struct config cfg;
	struct cfg_monitor m[N_MON];
	struct cfg_alert a;
	struct cfg_maintenance w;
	json_t *held;

	(void)state;
	alert_on[2] = POLICY_ON_DOWN;
	states[2] = ST_DOWN;
	make_config(&cfg, m, &a, &w, 1);
	hold_apply(&cfg);
	assert_int_equal(check(2, ST_UP), HOLD_WINDOW);
	held = json_array();
	hold_list_json(held);
	assert_int_equal(json_array_size(held), 0);
	json_decref(held);
	make_config(&cfg, m, &a, &w, 0);
	hold_apply(&cfg);
	assert_int_equal(n_released, 0);
	/* Up when the next window opens, down when it ends. */
	make_config(&cfg, m, &a, &w, 1);
	hold_apply(&cfg);
	assert_int_equal(check(2, ST_DOWN), HOLD_WINDOW);
	make_config(&cfg, m, &a, &w, 0);
	hold_apply(&cfg);
	assert_int_equal(n_released, 1);
	assert_string_equal(released[0], "web-1");
	assert_int_equal(released_prev[0], ST_UP);
}

/* A window in which the state went and came back releases nothing. */
static void
test_window_same_state(void **state)
{
	struct config cfg;
	struct cfg_monitor m[N_MON];
	struct cfg_alert a;
	struct cfg_maintenance w;

	(void)state;
	make_config(&cfg, m, &a, &w, 1);
	hold_apply(&cfg);
	assert_int_equal(check(2, ST_DOWN), HOLD_WINDOW);
	assert_int_equal(check(2, ST_UP), HOLD_WINDOW);
	make_config(&cfg, m, &a, &w, 0);
	hold_apply(&cfg);
	assert_int_equal(n_released, 0);
}

/* Unix ms of a UTC date-time. */
static int64_t
utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm) * 1000;
}

/* Window SCHEDULE for 1h in TZ at AT: open (1) with [start, end), or 0. */
static int
window(const char *schedule, const char *tz, int64_t at, int64_t *start,
    int64_t *end)
{
	struct cfg_maintenance w;

	memset(&w, 0, sizeof(w));
	w.name = (char *)"dst";
	w.monitors = win_pats;
	w.n_monitors = 1;
	w.schedule = (char *)schedule;
	w.duration_ms = 3600000;
	w.timezone = (char *)tz;
	*start = *end = 0;
	return hold_window_at(&w, at, start, end);
}

/*
 * Daily 1-hour windows across the DST days (cron.h's rule): at 02:30 on
 * the spring-forward day, which does not exist, the window opens at 03:30
 * local and lasts an hour; at 01:30 on the fall-back day, which happens
 * twice, it opens once, the first time, and the second 01:30 is outside.
 */
static void
test_window_dst(void **state)
{
	int64_t s, e;

	(void)state;
	/* Berlin, 2026-03-29: 03:30 CEST = 01:30 UTC. */
	assert_int_equal(window("30 2 * * *", "Europe/Berlin",
	    utc(2026, 3, 29, 1, 15), &s, &e), 0);
	assert_int_equal(window("30 2 * * *", "Europe/Berlin",
	    utc(2026, 3, 29, 2, 0), &s, &e), 1);
	assert_int_equal(s, utc(2026, 3, 29, 1, 30));
	assert_int_equal(e, utc(2026, 3, 29, 2, 30));
	assert_int_equal(window("30 2 * * *", "Europe/Berlin",
	    utc(2026, 3, 29, 2, 30), &s, &e), 0);
	/* The day before, in winter time: 02:30 CET = 01:30 UTC too. */
	assert_int_equal(window("30 2 * * *", "Europe/Berlin",
	    utc(2026, 3, 28, 1, 45), &s, &e), 1);
	assert_int_equal(s, utc(2026, 3, 28, 1, 30));
	/* The day after, summer time: 02:30 CEST = 00:30 UTC. */
	assert_int_equal(window("30 2 * * *", "Europe/Berlin",
	    utc(2026, 3, 30, 0, 45), &s, &e), 1);
	assert_int_equal(s, utc(2026, 3, 30, 0, 30));
	/* Berlin, 2026-10-25: 02:30 happens at 00:30 and 01:30 UTC; the
	 * window is the first, and 01:45 UTC (02:45 CET) is outside. */
	assert_int_equal(window("30 2 * * *", "Europe/Berlin",
	    utc(2026, 10, 25, 0, 45), &s, &e), 1);
	assert_int_equal(s, utc(2026, 10, 25, 0, 30));
	assert_int_equal(e, utc(2026, 10, 25, 1, 30));
	assert_int_equal(window("30 2 * * *", "Europe/Berlin",
	    utc(2026, 10, 25, 1, 45), &s, &e), 0);
	/* New York, 2026-03-08: 02:30 does not exist; 03:30 EDT = 07:30 UTC. */
	assert_int_equal(window("30 2 * * *", "America/New_York",
	    utc(2026, 3, 8, 7, 45), &s, &e), 1);
	assert_int_equal(s, utc(2026, 3, 8, 7, 30));
	assert_int_equal(window("30 2 * * *", "America/New_York",
	    utc(2026, 3, 8, 7, 15), &s, &e), 0);
	/* New York, 2026-11-01: 01:30 EDT (05:30 UTC) opens it, for one
	 * elapsed hour; 01:30 EST (06:30 UTC) does not open it again. */
	assert_int_equal(window("30 1 * * *", "America/New_York",
	    utc(2026, 11, 1, 6, 0), &s, &e), 1);
	assert_int_equal(s, utc(2026, 11, 1, 5, 30));
	assert_int_equal(e, utc(2026, 11, 1, 6, 30));
	assert_int_equal(window("30 1 * * *", "America/New_York",
	    utc(2026, 11, 1, 6, 45), &s, &e), 0);
	/* Overlapping starts merge: every 30 minutes for an hour is one
	 * window that keeps going (found a few starts ahead at a time). */
	assert_int_equal(window("*/30 * * * *", "UTC",
	    utc(2026, 1, 1, 10, 10), &s, &e), 1);
	assert_true(e >= utc(2026, 1, 1, 11, 30));
	assert_true(e <= utc(2026, 1, 1, 15, 30));
	assert_int_equal(window("bad", "UTC", 0, &s, &e), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_depends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_same_state, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_window_alert_on, setup,
		    teardown),
		cmocka_unit_test(test_window_dst),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
