/*
 * The transition policy (core/policy.c) through its header, with made-up
 * clocks: down_after / up_after sequences, latency_warn and cert_warn,
 * alert_on, renotify counting (and no burst after a long stop), each
 * escalation once, and the timer heap against a sorted reference -- plus
 * the cost of the heap for 100,000 monitors, printed, never asserted.
 * The keys themselves (parsing, FILE:LINE errors) through config_load().
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

#include "cfg.h"
#include "diag.h"
#include "outcome.h"
#include "policy.h"
#include "util.h"

static struct policy_conf
conf(int down_after, int up_after)
{
	struct policy_conf c;

	policy_conf_default(&c);
	c.down_after = down_after;
	c.up_after = up_after;
	return c;
}

/* Feed the checks of SEQ ('u' up, 'd' down, 'g' degraded) one second
 * apart into S; the states after each into OUT ('p', 'u', 'g', 'd') and
 * the number of changes that alert under ALERT_ON. */
static int
run(const struct policy_conf *c, struct policy_state *s, const char *seq,
    unsigned alert_on, char *out)
{
	enum mstate prev;
	int alerts = 0;
	size_t i;

	for (i = 0; seq[i] != '\0'; i++) {
		enum mstate check = seq[i] == 'u' ? ST_UP :
		    seq[i] == 'g' ? ST_DEGRADED : ST_DOWN;

		prev = s->state;
		if (policy_step(c, s, check, (int64_t)(i + 1) * 1000) &&
		    policy_alerts(alert_on, prev, s->state))
			alerts++;
		out[i] = s->state == ST_UP ? 'u' : s->state == ST_DOWN ? 'd' :
		    s->state == ST_DEGRADED ? 'g' : 'p';
	}
	out[i] = '\0';
	return alerts;
}

/* down_after = 3: two failures change nothing, the third is DOWN (one
 * alert); up_after = 2: one good check stays DOWN, the second is UP. */
static void
test_down_up_after(void **state)
{
	struct policy_conf c = conf(3, 2);
	struct policy_state s = { .state = ST_PENDING };
	char out[64];

	(void)state;
	assert_int_equal(run(&c, &s, "uddudduddd", POLICY_ON_DEFAULT, out), 1);
	assert_string_equal(out, "uuuuuuuuud");
	assert_int_equal(s.since_ms, 10000);
	assert_int_equal(s.streak, -3);
	/* Flapping while down: a lone good check does not end it. */
	assert_int_equal(run(&c, &s, "udududuu", POLICY_ON_DEFAULT, out), 1);
	assert_string_equal(out, "dddddddu");
	assert_int_equal(s.since_ms, 8000);
	assert_int_equal(s.streak, 2);
	/* The defaults: every check decides; pending -> up does not alert. */
	c = conf(1, 1);
	s = (struct policy_state){ .state = ST_PENDING };
	assert_int_equal(run(&c, &s, "udug", POLICY_ON_DEFAULT, out), 2);
	assert_string_equal(out, "udug");
	/* down_after from pending: the state stays pending meanwhile. */
	c = conf(2, 1);
	s = (struct policy_state){ .state = ST_PENDING };
	assert_int_equal(run(&c, &s, "dd", POLICY_ON_DEFAULT, out), 1);
	assert_string_equal(out, "pd");
}

/* A change resets the episode: reminders, escalations, notified. */
static void
test_change_resets_episode(void **state)
{
	struct policy_conf c = conf(1, 1);
	struct policy_state s = { .state = ST_UP, .repeats = 4,
	    .escalated_ms = 60000, .notified_ms = 5 };

	(void)state;
	assert_int_equal(policy_step(&c, &s, ST_DOWN, 7000), 1);
	assert_int_equal(s.state, ST_DOWN);
	assert_int_equal(s.repeats, 0);
	assert_int_equal(s.escalated_ms, 0);
	assert_int_equal(s.notified_ms, 7000);
	assert_int_equal(s.since_ms, 7000);
	assert_int_equal(policy_step(&c, &s, ST_DOWN, 8000), 0);
	assert_int_equal(s.since_ms, 7000);
}

/* alert_on: which changes alert; degraded alerts once per entry. */
static void
test_alert_on(void **state)
{
	const unsigned def = POLICY_ON_DEFAULT, all = POLICY_ON_DOWN |
	    POLICY_ON_UP | POLICY_ON_DEGRADED;
	struct policy_conf c = conf(1, 1);
	struct policy_state s = { .state = ST_PENDING };
	enum mstate i, j;
	char out[64];

	(void)state;
	/* The default is the table of mstate_alerts(). */
	for (i = 0; i < ST_COUNT; i++)
		for (j = 0; j < ST_COUNT; j++)
			assert_int_equal(policy_alerts(def, i, j),
			    mstate_alerts(i, j));
	/* degraded listed: up -> degraded and back alert, each once however
	 * many degraded checks come in a row. */
	assert_int_equal(run(&c, &s, "uggggguuggg", all, out), 3);
	assert_int_equal(run(&c, &s, "ggg", def, out), 0);
	assert_true(policy_alerts(all, ST_PENDING, ST_DEGRADED));
	assert_false(policy_alerts(POLICY_ON_DEGRADED, ST_DEGRADED, ST_UP));
	/* down only: the recovery is quiet; up only: the outage is. */
	assert_true(policy_alerts(POLICY_ON_DOWN, ST_UP, ST_DOWN));
	assert_false(policy_alerts(POLICY_ON_DOWN, ST_DOWN, ST_UP));
	assert_false(policy_alerts(POLICY_ON_UP, ST_UP, ST_DOWN));
	assert_true(policy_alerts(POLICY_ON_UP, ST_DOWN, ST_UP));
	assert_true(policy_alerts(POLICY_ON_UP, ST_DOWN, ST_DEGRADED));
	assert_false(policy_alerts(all, ST_UP, ST_PAUSED));
}

/* latency_warn and cert_warn turn an up result degraded; a down result,
 * and one within the limits, are left alone. */
static void
test_warnings(void **state)
{
	struct policy_conf c = conf(1, 1);
	struct wp_result r = WP_RESULT_INIT, out;
	char buf[160];
	const int64_t now = 1800000000;

	(void)state;
	r.latency_us = 250000;
	assert_int_equal(policy_warn(&c, &r, now, &out, buf, sizeof(buf)), 0);
	c.latency_warn_us = 200000;
	assert_int_equal(policy_warn(&c, &r, now, &out, buf, sizeof(buf)), 1);
	assert_int_equal(out.reason, WP_REASON_SLOW);
	assert_int_equal(mstate_of(&out), ST_DEGRADED);
	assert_string_equal(reason_name(out.reason), "slow");
	assert_non_null(strstr(out.detail, "250.0 ms"));
	r.latency_us = 200000; /* exactly the limit is not slower */
	assert_int_equal(policy_warn(&c, &r, now, &out, buf, sizeof(buf)), 0);
	/* Expiring within cert_warn: cert_expiry, ahead of slow. */
	r.latency_us = 900000;
	r.cert_expiry = now + 5 * 86400;
	c.cert_warn_s = 14 * 86400;
	assert_int_equal(policy_warn(&c, &r, now, &out, buf, sizeof(buf)), 1);
	assert_int_equal(out.reason, WP_REASON_CERT_EXPIRING);
	assert_string_equal(reason_name(out.reason), "cert_expiry");
	assert_non_null(strstr(out.detail, "expires in 5d"));
	r.cert_expiry = now - 10;
	assert_int_equal(policy_warn(&c, &r, now, &out, buf, sizeof(buf)), 1);
	assert_non_null(strstr(out.detail, "expired"));
	/* Far from expiry, or no certificate: slow decides. */
	r.cert_expiry = now + 30 * 86400;
	assert_int_equal(policy_warn(&c, &r, now, &out, buf, sizeof(buf)), 1);
	assert_int_equal(out.reason, WP_REASON_SLOW);
	r.cert_expiry = 0;
	r.latency_us = 1000;
	assert_int_equal(policy_warn(&c, &r, now, &out, buf, sizeof(buf)), 0);
	/* A down result stays down. */
	r.reason = WP_REASON_REFUSED;
	r.latency_us = 900000;
	r.cert_expiry = now + 1;
	assert_int_equal(policy_warn(&c, &r, now, &out, buf, sizeof(buf)), 0);
}

/* renotify 60 s: reminders 1, 2, 3 at 60, 120, 180 s after the DOWN
 * alert, on the grid however late the timer fires; after a stop of ten
 * periods one reminder, then the grid starts again from it. */
static void
test_renotify(void **state)
{
	struct policy_conf c = conf(1, 1);
	struct policy_state s = { .state = ST_UP };
	struct policy_fired f;
	int64_t t0 = 1000000;

	(void)state;
	c.renotify_ms = 60000;
	assert_int_equal(policy_due(&c, &s), INT64_MAX);
	policy_step(&c, &s, ST_DOWN, t0);
	assert_int_equal(policy_due(&c, &s), t0 + 60000);
	assert_int_equal(policy_fire(&c, &s, t0 + 59999, &f), 0);
	assert_int_equal(policy_fire(&c, &s, t0 + 60040, &f), 1);
	assert_true(f.renotify);
	assert_int_equal(s.repeats, 1);
	assert_int_equal(policy_due(&c, &s), t0 + 120000);
	assert_int_equal(policy_fire(&c, &s, t0 + 120500, &f), 1);
	assert_int_equal(s.repeats, 2);
	assert_int_equal(policy_fire(&c, &s, t0 + 180000, &f), 1);
	assert_int_equal(s.repeats, 3);
	/* Stopped for ten periods: one reminder, not ten. */
	assert_int_equal(policy_fire(&c, &s, t0 + 800000, &f), 1);
	assert_int_equal(s.repeats, 4);
	assert_int_equal(policy_fire(&c, &s, t0 + 800001, &f), 0);
	assert_int_equal(policy_due(&c, &s), t0 + 860000);
	/* Recovery ends it. */
	policy_step(&c, &s, ST_UP, t0 + 810000);
	assert_int_equal(policy_due(&c, &s), INT64_MAX);
	assert_int_equal(policy_fire(&c, &s, t0 + 900000, &f), 0);
	assert_int_equal(s.repeats, 0);
	/* A state row from before the counters (notified 0): from since. */
	s = (struct policy_state){ .state = ST_DOWN, .since_ms = t0 };
	assert_int_equal(policy_due(&c, &s), t0 + 60000);
}

/* Escalations: each once, in delay order, two due together both taken;
 * after a restart (the counters reloaded) nothing is taken again. */
static void
test_escalate_once(void **state)
{
	char *a[] = { "oncall" }, *b[] = { "boss", "cto" };
	struct policy_escalation esc[] = { { 300000, a, 1 },
	    { 900000, b, 2 }, { 900000, a, 1 } };
	struct policy_conf c = conf(1, 1);
	struct policy_state s = { .state = ST_UP }, saved;
	struct policy_fired f;
	int64_t t0 = 5000;
	int k, fired = 0;

	(void)state;
	c.esc = esc;
	c.n_esc = 3;
	policy_step(&c, &s, ST_DOWN, t0);
	assert_int_equal(policy_due(&c, &s), t0 + 300000);
	assert_int_equal(policy_fire(&c, &s, t0 + 300001, &f), 1);
	assert_false(f.renotify);
	assert_int_equal(f.esc_from, 0);
	assert_int_equal(f.esc_to, 1);
	assert_int_equal(s.escalated_ms, 300000);
	saved = s;
	/* Every second for an hour: the two later ones fire once, together. */
	for (k = 301; k < 3600; k++)
		if (policy_fire(&c, &s, t0 + k * 1000LL, &f)) {
			fired++;
			assert_int_equal(f.esc_from, 1);
			assert_int_equal(f.esc_to, 3);
		}
	assert_int_equal(fired, 1);
	assert_int_equal(policy_due(&c, &s), INT64_MAX);
	/* The counters as a restart reloads them: the first is not taken
	 * again. */
	assert_int_equal(policy_fire(&c, &saved, t0 + 400000, &f), 0);
	/* A new episode escalates again. */
	policy_step(&c, &s, ST_UP, t0 + 4000000);
	policy_step(&c, &s, ST_DOWN, t0 + 5000000);
	assert_int_equal(policy_due(&c, &s), t0 + 5300000);
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The heap against a sorted reference, with moves and deletions; then
 * 100,000 nodes: each set and pop is O(log n) (the time is printed). */
static void
test_heap(void **state)
{
	enum { N = 2000, BIG = 100000 };
	struct policy_heap h = { 0 };
	struct policy_node *nodes = calloc(BIG, sizeof(*nodes)), *t;
	int64_t *want = calloc(BIG, sizeof(*want));
	struct timespec a, b;
	size_t i, k = 0;
	unsigned seed = 7;

	(void)state;
	assert_non_null(nodes);
	assert_non_null(want);
	for (i = 0; i < N; i++)
		policy_heap_set(&h, &nodes[i], rand_r(&seed) % 100000);
	for (i = 0; i < N; i += 3) /* move a third */
		policy_heap_set(&h, &nodes[i], rand_r(&seed) % 100000);
	for (i = 1; i < N; i += 5) /* delete a fifth */
		policy_heap_del(&h, &nodes[i]);
	policy_heap_del(&h, &nodes[1]); /* twice: nothing */
	for (i = 0; i < N; i++)
		if (nodes[i].idx != 0)
			want[k++] = nodes[i].due_ms;
	assert_int_equal(h.n, k);
	qsort(want, k, sizeof(*want), cmp64);
	for (i = 0; i < k; i++) {
		t = policy_heap_top(&h);
		assert_non_null(t);
		assert_int_equal(t->due_ms, want[i]);
		policy_heap_del(&h, t);
		assert_int_equal(t->idx, 0);
	}
	assert_null(policy_heap_top(&h));

	/* 100,000 monitors down with renotify: insert all, then fire every
	 * one once (pop and re-insert a period later). */
	memset(nodes, 0, BIG * sizeof(*nodes));
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < BIG; i++)
		policy_heap_set(&h, &nodes[i], rand_r(&seed) % 60000);
	for (i = 0; i < BIG; i++) {
		t = policy_heap_top(&h);
		policy_heap_set(&h, t, t->due_ms + 60000);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(h.n, BIG);
	t = policy_heap_top(&h);
	assert_true(t->due_ms >= 60000);
	fprintf(stderr, "# heap: %d inserts + %d fire-and-rearm in %.1f ms "
	    "(%.0f ns each)\n", BIG, BIG, ((b.tv_sec - a.tv_sec) * 1e9 +
	    (b.tv_nsec - a.tv_nsec)) / 1e6, ((b.tv_sec - a.tv_sec) * 1e9 +
	    (b.tv_nsec - a.tv_nsec)) / (2.0 * BIG));
	policy_heap_free(&h);
	free(nodes);
	free(want);
}

/* ---- the keys, through config_load() ---- */

static char tmpdir[] = "/tmp/wp-policy.XXXXXX";

/* A stand-in for the plugin lookup: type "x" with no keys of its own. */
static const struct wp_plugin fake = {
	.magic = WP_PLUGIN_MAGIC, .abi_major = WP_ABI_MAJOR,
	.abi_minor = WP_ABI_MINOR, .size = sizeof(struct wp_plugin),
	.name = "x", .kind = WP_PLUGIN_CHECK,
	.key_size = sizeof(struct wp_key), .conf_size = 8,
};
static const struct wp_plugin fake_alert = {
	.magic = WP_PLUGIN_MAGIC, .abi_major = WP_ABI_MAJOR,
	.abi_minor = WP_ABI_MINOR, .size = sizeof(struct wp_plugin),
	.name = "y", .kind = WP_PLUGIN_ALERT,
	.key_size = sizeof(struct wp_key), .conf_size = 8,
};

static const struct wp_plugin *
lookup(void *arg, const char *dir, int kind, const char *type, char *why,
    size_t len)
{
	(void)arg;
	(void)dir;
	(void)type;
	(void)why;
	(void)len;
	return kind == WP_PLUGIN_CHECK ? &fake : &fake_alert;
}

/* Load TEXT (after [alert:a], [alert:b]); the diagnostics into DIAG
 * (diag_free() it).  Returns config_load()'s code and *CFG. */
static int
load(const char *text, struct wp_diag *diag, struct config **cfg)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/p.ini", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[alert:a]\ntype = y\n[alert:b]\ntype = y\n%s", text);
	fclose(f);
	diag_init(diag, path);
	return config_load(path, NULL, lookup, NULL, diag, cfg);
}

static void
test_keys(void **state)
{
	struct wp_diag d;
	struct config *cfg = NULL;
	const struct policy_conf *p;

	(void)state;
	assert_int_equal(load("[monitor:m]\ntype = x\nalerts = a\n"
	    "down_after = 3\nup_after = 2\nlatency_warn = 500ms\n"
	    "cert_warn = 14d\nalert_on = down, degraded\nrenotify = 30m\n"
	    "escalate = 1h b\nescalate = 15m a,b\n", &d, &cfg), 0);
	p = &cfg->monitors[0].policy;
	assert_int_equal(p->down_after, 3);
	assert_int_equal(p->up_after, 2);
	assert_int_equal(p->latency_warn_us, 500000);
	assert_int_equal(p->cert_warn_s, 14 * 86400);
	assert_int_equal(p->alert_on, POLICY_ON_DOWN | POLICY_ON_DEGRADED);
	assert_int_equal(p->renotify_ms, 1800000);
	assert_int_equal(p->n_esc, 2);
	/* Sorted by delay. */
	assert_int_equal(p->esc[0].after_ms, 900000);
	assert_int_equal(p->esc[0].n_alerts, 2);
	assert_string_equal(p->esc[0].alerts[1], "b");
	assert_int_equal(p->esc[1].after_ms, 3600000);
	/* "a" is the monitor's own section: allowed, with a warning. */
	assert_non_null(strstr(d.text, ":15: warning: escalate: the monitor "
	    "already notifies \"a\""));
	config_free(cfg);
	diag_free(&d);

	/* renotify with alerts = none: allowed, with a warning. */
	assert_int_equal(load("[monitor:m]\ntype = x\nalerts = none\n"
	    "renotify = 1m\n", &d, &cfg), 0);
	assert_non_null(strstr(d.text, ":8: warning: renotify: the monitor "
	    "notifies no alert section"));
	config_free(cfg);
	diag_free(&d);

	/* Defaults. */
	assert_int_equal(load("[monitor:m]\ntype = x\n", &d, &cfg), 0);
	p = &cfg->monitors[0].policy;
	assert_int_equal(p->down_after, 1);
	assert_int_equal(p->up_after, 1);
	assert_int_equal(p->alert_on, POLICY_ON_DEFAULT);
	assert_int_equal(p->renotify_ms + p->latency_warn_us +
	    p->cert_warn_s, 0);
	assert_int_equal(p->n_esc, 0);
	config_free(cfg);
	diag_free(&d);

	/* Every problem at its line (the file's lines 5 to 12). */
	assert_int_not_equal(load("[monitor:m]\ntype = x\n"
	    "down_after = 0\nalert_on = down,sideways,down\n"
	    "escalate = 10m nosuch\nescalate = soon a\nescalate = 5m\n"
	    "renotify = 500ms\nlatency_warn = 2h\n"
	    "[monitor:n]\ntype = x\nalert_on = up\nrenotify = 1m\n",
	    &d, &cfg), 0);
	assert_non_null(strstr(d.text, ":7: "));
	assert_non_null(strstr(d.text, ":8: alert_on: \"sideways\" is not one "
	    "of down, up, degraded"));
	assert_non_null(strstr(d.text, ":8: alert_on: \"down\" is listed "
	    "twice"));
	assert_non_null(strstr(d.text, ":9: escalate: unknown alert "
	    "\"nosuch\""));
	assert_non_null(strstr(d.text, ":10: escalate: \"soon\" is not a "
	    "duration"));
	assert_non_null(strstr(d.text, ":11: escalate: no alert section"));
	assert_non_null(strstr(d.text, ":12: "));
	assert_non_null(strstr(d.text, ":13: "));
	assert_non_null(strstr(d.text, ":17: renotify repeats the DOWN alert, "
	    "but alert_on does not include down"));
	config_free(cfg);
	diag_free(&d);
}

/* A deep copy survives its source. */
static void
test_conf_copy(void **state)
{
	char *a[] = { "x" };
	struct policy_escalation e = { 1000, a, 1 };
	struct policy_conf src = conf(2, 3), dst;

	(void)state;
	src.esc = &e;
	src.n_esc = 1;
	policy_conf_copy(&dst, &src);
	a[0] = "changed";
	assert_int_equal(dst.down_after, 2);
	assert_string_equal(dst.esc[0].alerts[0], "x");
	policy_conf_free(&dst);
	assert_int_equal(dst.n_esc, 0);
	assert_int_equal(dst.down_after, 1);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown_all(void **state)
{
	char path[160];

	(void)state;
	snprintf(path, sizeof(path), "%s/p.ini", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_down_up_after),
		cmocka_unit_test(test_change_resets_episode),
		cmocka_unit_test(test_alert_on),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_renotify),
		cmocka_unit_test(test_escalate_once),
		cmocka_unit_test(test_heap),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_conf_copy),
	};

	return cmocka_run_group_tests(tests, setup, teardown_all);
}
