#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "alert.h"
#include "api.h"
#include "diag.h"
#include "cfg.h"
#include "cluster.h"
#include "configure.h"
#include "hold.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "manager.h"
#include "opmon.h"
#include "outcome.h"
#include "policy.h"
#include "runtime.h"
#include "schedule.h"
#include "store.h"
#include "util.h"

/* Scheduling lateness histogram bounds, seconds. */
static const double late_le[MANAGER_N_LATE] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5
};

/* A monitor's last result, as /api/monitors and /metrics show it. */
struct last_result {
	int reason;
	int status_code;          /* < 0: none */
	struct outcome_ms ms;
	int64_t cert_expiry;      /* unix s; 0: none */
	/* The last check's measurements (malloc'd, n_meas of them; NULL
	 * when none).  Sized to what the check reported, not to
	 * WP_MEASUREMENTS_MAX: most checks report none, and a fixed array
	 * was 1.1 kB of every monitor (issue 17, S8). */
	struct manager_measure *meas;
	size_t n_meas;
};

struct monitor {
	char *name;
	char *type;
	uint64_t def_hash;       /* cfg's, of its running definition */
	int64_t db_id;
	struct instance *in;
	int64_t interval_ms, timeout_ms, retry_interval_ms;
	int retries;
	int enabled;
	int all_alerts;
	char **alerts;
	size_t n_alerts;

	/* The schedule's next slot and a pending retry, each a node of one
	 * of the manager's two heaps (due: monotonic µs) under one timer:
	 * a uv_timer_t of each was 304 bytes of every monitor (issue 17,
	 * S8). */
	struct policy_node snode;
	struct policy_node rnode;
	struct sched sched;      /* next slot, interval, skipped slots */
	struct wp_op *op;        /* attempt in flight */
	unsigned attempt;
	int retry_pending;
	int64_t check_started_ms;
	/* Cluster mode (manager_set_due()): the grid index of the slot at
	 * sched.due_us, and of the check in flight (its outcome's grid);
	 * -1: not on the grid. */
	int64_t grid_k, check_grid;
	int removed;             /* out of the config: freed once idle */

	struct policy_conf policy;  /* when it changes state and alerts */
	struct policy_state ps;     /* its state, since when, the counters */
	int state_reason;           /* the reason and detail of the check
	                             * that set or last confirmed the state */
	char *state_detail;         /* (malloc'd; NULL: none, as for most up
	                             * monitors) */
	int confirmed;              /* a check finished in this run: the
	                             * policy's timers may fire */
	struct policy_node pnode;   /* in the policy heap while a reminder or
	                             * escalation is due */
	int64_t last_check_ms;
	struct last_result last;
	uint64_t n_up, n_down;
	struct once_result *once;

	struct monitor *next, *hnext;
	struct check_waiter *waiters; /* manager_check_now(), in order */
};

/* A caller of manager_check_now() waiting for the monitor's next finished
 * check. */
struct check_waiter {
	void (*cb)(void *arg, const struct outcome *o);
	void *arg;
	struct check_waiter *next;
};

static struct store *store;
static struct config *current;
static struct monitor *monitors;    /* config order */
static struct monitor **table;      /* by name */
static size_t table_size, n_monitors;
static int stopping;
static void (*drained_cb)(void *);
static void *drained_arg;
static uint64_t late_hist[MANAGER_N_LATE + 1];
static double late_sum;
static uint64_t skipped_total, checks_total;
static struct once_result *once_results;
static size_t once_n, once_left;
static void (*once_done)(void *);
static void *once_arg;

/* Deadline of the start-up steps run here (reported, never enforced). */
#define STEP_MS 30000

/* The slots and the retries of every monitor: two heaps of monotonic µs
 * (the nodes' due_ms holds µs here), one timer at the earlier top. */
static struct policy_heap sheap, rheap;
static uv_timer_t stimer;
static int stimer_ready;
static int64_t stimer_due = INT64_MAX; /* the due time it is armed for */
static int stimer_in_pass;             /* stimer_cb runs: it re-arms last */

/* Reminders and escalations of every monitor: one heap, one timer. */
static struct policy_heap pheap;
static uv_timer_t ptimer;
static int ptimer_ready;
static int64_t ptimer_due = INT64_MAX; /* the due time it is armed for */

static void start_attempt(struct monitor *m, unsigned attempt);
static void check_drained(void);
static void policy_rearm(struct monitor *m);
static void notify_waiters(struct monitor *m, const struct outcome *o);
static int routes_check(const struct config *cfg, struct instance **fresh,
    int running, struct wp_diag *diag);
static void routes_build(void);
static void routes_free(void);

static size_t
hash_name(const char *s)
{
	size_t h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static struct monitor *
find(const char *name)
{
	struct monitor *m;

	if (table_size == 0)
		return NULL;
	for (m = table[hash_name(name) % table_size]; m; m = m->hnext)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/* Rebuild the name table for the current list (cheap: once per apply). */
static void
rehash(void)
{
	struct monitor *m;
	size_t b;

	free(table);
	table_size = n_monitors * 2 + 1;
	table = xcalloc(table_size, sizeof(*table));
	for (m = monitors; m; m = m->next) {
		b = hash_name(m->name) % table_size;
		m->hnext = table[b];
		table[b] = m;
	}
}

static void
free_alert_names(struct monitor *m)
{
	size_t i;

	for (i = 0; i < m->n_alerts; i++)
		free(m->alerts[i]);
	free(m->alerts);
	m->alerts = NULL;
	m->n_alerts = 0;
}

/* Free M and what it owns (it is in no heap, nothing in flight). */
static void
monitor_free(struct monitor *m)
{
	free(m->name);
	free(m->type);
	free_alert_names(m);
	policy_conf_free(&m->policy);
	free(m->state_detail);
	free(m->last.meas);
	free(m);
}

/* Free a monitor that is out of the list, once nothing is in flight
 * (at once: it has no handle of its own to close). */
static void
monitor_dispose(struct monitor *m)
{
	policy_heap_del(&pheap, &m->pnode);
	policy_heap_del(&sheap, &m->snode);
	policy_heap_del(&rheap, &m->rnode);
	if (m->op != NULL)
		return; /* attempt_done comes back here */
	instance_unref(m->in);
	m->in = NULL;
	monitor_free(m);
}

/* Copy the settings of C into M (not the state). */
static void
monitor_set(struct monitor *m, const struct cfg_monitor *c)
{
	size_t i;

	free(m->type);
	free_alert_names(m);
	m->type = xstrdup(c->s.type);
	m->def_hash = c->s.def_hash;
	m->interval_ms = c->interval_ms;
	m->sched.interval_us = c->interval_ms * 1000;
	m->timeout_ms = c->timeout_ms;
	m->retry_interval_ms = c->retry_interval_ms;
	m->retries = c->retries;
	m->enabled = c->enabled;
	m->all_alerts = c->all_alerts;
	m->n_alerts = c->n_alerts;
	m->alerts = xcalloc(c->n_alerts + 1, sizeof(char *));
	for (i = 0; i < c->n_alerts; i++)
		m->alerts[i] = xstrdup(c->alerts[i]);
	policy_conf_free(&m->policy);
	policy_conf_copy(&m->policy, &c->policy);
}

/* ---- scheduling ---- */

static void stimer_cb(uv_timer_t *t);

/* The one schedule timer at the earlier of the two heaps' tops; only when
 * that time moved, or FORCE (it fired). */
static void
stimer_arm(int force)
{
	struct policy_node *a = policy_heap_top(&sheap);
	struct policy_node *b = policy_heap_top(&rheap);
	int64_t now, due = INT64_MAX;

	if (a != NULL)
		due = a->due_ms;
	if (b != NULL && b->due_ms < due)
		due = b->due_ms;
	if (stopping)
		due = INT64_MAX;
	if (!stimer_ready) {
		uv_timer_init(main_loop, &stimer);
		stimer_ready = 1;
	}
	if ((due == stimer_due || stimer_in_pass) && !force)
		return;
	stimer_due = due;
	if (due == INT64_MAX) {
		uv_timer_stop(&stimer);
		return;
	}
	now = mono_us();
	uv_timer_start(&stimer, stimer_cb, due > now ?
	    (uint64_t)((due - now + 999) / 1000) : 0, 0);
}

/* M's next slot (sched.due_us) into the slot heap. */
static void
arm(struct monitor *m)
{
	policy_heap_set(&sheap, &m->snode, m->sched.due_us);
	stimer_arm(0);
}

static struct monitor *
monitor_of_snode(struct policy_node *n)
{
	return (struct monitor *)(void *)((char *)n -
	    offsetof(struct monitor, snode));
}

static struct monitor *
monitor_of_rnode(struct policy_node *n)
{
	return (struct monitor *)(void *)((char *)n -
	    offsetof(struct monitor, rnode));
}

static void due_cb(struct monitor *m);
static void retry_cb(struct monitor *m);

/*
 * Every slot and retry due by now, earliest first, each taken out of its
 * heap before it runs (so it may put itself back).  libuv's loop clock is
 * coarse and its timer may fire a little early: what is due within 0.5 ms
 * counts as due, as it did with a timer per monitor.  The pass ends: a
 * slot moves on by at least its interval, and a monitor's retries end
 * after its `retries`.
 */
static void
stimer_cb(uv_timer_t *t)
{
	struct policy_node *a, *b;
	int64_t now = mono_us();

	(void)t;
	stimer_in_pass = 1;
	while (!stopping) {
		a = policy_heap_top(&sheap);
		b = policy_heap_top(&rheap);
		if (b != NULL && b->due_ms <= now + 500 &&
		    (a == NULL || b->due_ms <= a->due_ms)) {
			policy_heap_del(&rheap, b);
			retry_cb(monitor_of_rnode(b));
		} else if (a != NULL && a->due_ms <= now + 500) {
			policy_heap_del(&sheap, a);
			due_cb(monitor_of_snode(a));
		} else
			break;
	}
	stimer_in_pass = 0;
	stimer_arm(1);
}

static void
due_cb(struct monitor *m)
{
	int64_t now = mono_us(), k, due;
	uint64_t skipped;
	double late;
	int b, busy;

	if (stopping || m->removed || !m->enabled)
		return;
	late = (double)(now - m->sched.due_us) / 1e6;
	for (b = 0; b < MANAGER_N_LATE && late > late_le[b]; b++)
		;
	late_hist[b]++;
	late_sum += late;
	busy = m->op != NULL || m->retry_pending;
	if (busy)
		log_debug("monitor %s: previous check still running; skipping "
		    "this slot", m->name);
	k = m->grid_k;
	due = m->sched.due_us;
	/* cluster.h: in cluster mode only the slot's owner, unfenced. */
	if (sched_slot(&m->sched, busy, now, &skipped) &&
	    cluster_may_start(m->name)) {
		m->check_grid = k;
		start_attempt(m, 0);
	}
	/* The grid moves on by the slots sched_slot() passed. */
	if (k >= 0)
		m->grid_k = k + (m->sched.due_us - due) / m->sched.interval_us;
	skipped_total += skipped;
	arm(m);
}

static void
retry_cb(struct monitor *m)
{
	m->retry_pending = 0;
	if (stopping || m->removed) {
		check_drained();
		return;
	}
	start_attempt(m, m->attempt + 1);
}

/* ---- results: one outcome per finished check, and its consumers ---- */

/* --once: the table row. */
static void
once_record(struct once_result *res, const struct outcome *o)
{
	const struct wp_result *r = o->result;

	res->done = 1;
	res->state = o->check;
	res->latency_ms = o->ms.latency;
	res->reason = r->reason;
	res->status_code = r->status_code;
	snprintf(res->detail, sizeof(res->detail), "%s",
	    r->detail ? r->detail : "");
}

/* The monitor's last result, which /api/monitors and /metrics show. */
static void
last_record(struct monitor *m, const struct outcome *o)
{
	const struct wp_result *r = o->result;
	size_t i, n;

	if (mstate_is_up(o->check))
		m->n_up++;
	else
		m->n_down++;
	m->last.reason = r->reason;
	m->last.status_code = r->status_code;
	m->last.ms = o->ms;
	m->last.cert_expiry = r->cert_expiry;
	/* The runtime keeps at most WP_MEASUREMENTS_MAX, names suffixed. */
	n = r->n_measurements < WP_MEASUREMENTS_MAX ? r->n_measurements :
	    WP_MEASUREMENTS_MAX;
	if (n != m->last.n_meas) {
		free(m->last.meas);
		m->last.meas = n > 0 ? xcalloc(n, sizeof(*m->last.meas)) : NULL;
	}
	for (i = 0; i < n; i++) {
		snprintf(m->last.meas[i].name, sizeof(m->last.meas[i].name),
		    "%s", r->measurements[i].name);
		m->last.meas[i].value = r->measurements[i].value;
	}
	m->last.n_meas = i;
	m->last_check_ms = o->started_ms;
	/* The state's reason: of the check that set it or agrees with it
	 * (down_after and up_after let the two differ for a while). */
	if (o->check == o->state || o->changed) {
		m->state_reason = r->reason;
		if (r->detail == NULL || r->detail[0] == '\0') {
			free(m->state_detail);
			m->state_detail = NULL;
		} else if (m->state_detail == NULL ||
		    strcmp(m->state_detail, r->detail) != 0) {
			free(m->state_detail);
			m->state_detail = xasprintf("%.255s", r->detail);
		}
	}
}

/* Each check at debug, a change of state at info; PC and PS are the
 * monitor's policy and its state after the check. */
static void
log_outcome(const struct outcome *o, const struct policy_conf *pc,
    const struct policy_state *ps)
{
	const struct wp_result *r = o->result;
	const char *detail = r->detail ? r->detail : "";

	if (o->check == ST_DEGRADED)
		log_debug("monitor %s: degraded: %s: %s (attempt %u)",
		    o->monitor, reason_name(r->reason), detail, o->attempts);
	else if (o->check == ST_UP)
		log_debug("monitor %s: up in %.1f ms%s "
		    "(attempt %u)", o->monitor,
		    o->ms.latency, r->status_code >= 0 ? (r->status_code < 300 ?
		    ", HTTP 2xx" : ", HTTP status other than 2xx") : "",
		    o->attempts);
	else
		log_debug("monitor %s: down: %s: %s (attempt %u)", o->monitor,
		    reason_name(r->reason), detail, o->attempts);
	if (o->check != o->state && !o->changed)
		log_debug("monitor %s: still %s: %d %s check(s) in a row of "
		    "the %d %s needs", o->monitor, mstate_label(o->state),
		    ps->streak < 0 ? -ps->streak : ps->streak,
		    mstate_name(o->check), o->check == ST_DOWN ?
		    pc->down_after : pc->up_after, o->check == ST_DOWN ?
		    "down_after" : "up_after");
	if (!o->changed)
		return;
	if (o->state == ST_UP)
		log_info("monitor %s: %s -> %s (%.1f ms)", o->monitor,
		    mstate_name(o->previous), mstate_label(o->state),
		    o->ms.latency);
	else
		log_info("monitor %s: %s -> %s (%s: %s)", o->monitor,
		    mstate_name(o->previous), mstate_label(o->state),
		    reason_name(r->reason), detail);
}

/* The store: the check's row and the monitor's state PS, written with
 * the outbox rows ALERTS[0..N) in one transaction.  Takes over their
 * payloads; a result the store refuses releases its alerts at once. */
static void
store_record(const struct outcome *o, const struct policy_state *ps,
    struct store_alert *alerts, size_t n, unsigned held)
{
	const struct wp_result *r = o->result;
	struct store_measure meas[STORE_MEASURES_MAX];
	struct store_check c;
	size_t i;

	if (store == NULL)
		return;
	memset(&c, 0, sizeof(c));
	c.monitor_id = o->monitor_id;
	c.ts_ms = o->started_ms;
	c.ok = mstate_is_up(o->check);
	c.latency_ms = o->ms.latency;
	c.status_code = r->status_code;
	c.reason = r->reason;
	if (!c.ok)
		snprintf(c.error, sizeof(c.error), "%s",
		    r->detail && r->detail[0] ? r->detail :
		    reason_desc(r->reason));
	c.attempts = (int)o->attempts;
	c.dns_ms = o->ms.dns;
	c.connect_ms = o->ms.connect;
	c.tls_ms = o->ms.tls;
	c.first_byte_ms = o->ms.first_byte;
	c.cert_expiry = r->cert_expiry;
	/* The runtime suffixed each name with its unit already. */
	for (i = 0; i < r->n_measurements && i < STORE_MEASURES_MAX; i++)
		meas[i] = (struct store_measure){ r->measurements[i].name,
		    r->measurements[i].value };
	c.meas = meas;
	c.n_meas = i;
	c.state = mstate_name(o->state);
	c.state_changed = o->changed;
	c.streak = ps->streak;
	c.repeats = ps->repeats;
	c.notified_ms = ps->notified_ms;
	c.escalated_ms = ps->escalated_ms;
	c.maintenance = (held & HOLD_MAINTENANCE) != 0;
	c.grid = o->grid;
	if (store_submit(store, &c, alerts, n) == 0)
		return;
	log_debug("monitor %s: store queue full; result dropped", o->monitor);
	/* Never stored, so never committed: deliver from memory. */
	alert_released(alerts, n);
}

/* Append the rows of RAISED[0..N) to *ROWS (*N_ROWS of them); frees
 * RAISED. */
static void
rows_append(struct store_alert **rows, size_t *n_rows,
    struct store_alert *raised, size_t n)
{
	if (n == 0) {
		free(raised);
		return;
	}
	*rows = xrealloc(*rows, (*n_rows + n) * sizeof(**rows));
	memcpy(*rows + *n_rows, raised, n * sizeof(*raised));
	*n_rows += n;
	free(raised);
}

/* The sections escalate rules of M notified in the episode PS (delays up
 * to its escalated_ms) and its own alerts do not name, raised for O with
 * WP_ALERT_ESCALATION: a recovery reaches whoever was paged. */
static void
raise_escalated(const struct monitor *m, const struct policy_state *ps,
    const struct outcome *o, struct store_alert **rows, size_t *n_rows)
{
	struct outcome eo = *o;
	struct store_alert *r;
	char **names;
	size_t i, j, k, n = 0, n_out;

	if (m->all_alerts || ps->escalated_ms <= 0)
		return;
	for (i = 0; i < m->policy.n_esc; i++)
		n += m->policy.esc[i].n_alerts;
	names = xcalloc(n + 1, sizeof(*names));
	n = 0;
	for (i = 0; i < m->policy.n_esc &&
	    m->policy.esc[i].after_ms <= ps->escalated_ms; i++)
		for (j = 0; j < m->policy.esc[i].n_alerts; j++) {
			char *a = m->policy.esc[i].alerts[j];

			for (k = 0; k < m->n_alerts && strcmp(m->alerts[k], a);
			    k++)
				;
			if (k < m->n_alerts)
				continue;
			for (k = 0; k < n && strcmp(names[k], a); k++)
				;
			if (k == n)
				names[n++] = a;
		}
	eo.alert_flags |= WP_ALERT_ESCALATION;
	r = alert_raise(&eo, 0, names, n, &n_out);
	rows_append(rows, n_rows, r, n_out);
	free(names);
}

/* The state machine: check R0 (after its retries) has finished.  The
 * policy (policy.h) adjusts the result (latency_warn, cert_warn), moves M
 * to its next state (down_after, up_after) and says whether it alerts
 * (alert_on); the check emits its one outcome. */
static void
finish_check(struct monitor *m, const struct wp_result *r0)
{
	struct outcome o;
	struct policy_state old = m->ps;
	struct wp_result warned;
	const struct wp_result *r = r0;
	struct store_alert *rows = NULL, *raised;
	size_t n_rows = 0, n_raised;
	char warn[160];
	unsigned held;

	if (policy_warn(&m->policy, r0, wall_ms() / 1000, &warned, warn,
	    sizeof(warn)))
		r = &warned;
	memset(&o, 0, sizeof(o));
	o.monitor_id = m->db_id;
	o.monitor = m->name;
	o.type = m->type;
	o.result = r;
	o.ms = outcome_ms_of(r);
	o.check = mstate_of(r);
	o.attempts = m->attempt + 1;
	o.started_ms = m->check_started_ms;
	o.grid = m->check_grid;
	o.previous = m->ps.state;
	o.changed = policy_step(&m->policy, &m->ps, o.check, o.started_ms);
	o.state = m->ps.state;
	o.since_ms = m->ps.since_ms;
	o.alert = o.changed && policy_alerts(m->policy.alert_on, o.previous,
	    o.state);
	checks_total++;

	last_record(m, &o);
	notify_waiters(m, &o);
	if (m->once != NULL) {
		once_record(m->once, &o);
		m->once = NULL;
		if (--once_left == 0 && once_done)
			once_done(once_arg);
		return;
	}
	m->confirmed = 1;
	log_outcome(&o, &m->policy, &m->ps);
	/* Holds (hold.h): while a parent is down, or a maintenance window or
	 * silence covers the monitor, its alert is held there (hold_check
	 * records it under the same alert_on decision, o.alert), not
	 * raised. */
	held = hold_check(&o);
	if (o.alert && held == 0 && cluster_alerts_here(m->name)) {
		struct outcome ao = o;

		/* A recovery's alert is about the episode it ends. */
		if (o.previous == ST_DOWN || (o.previous == ST_DEGRADED &&
		    o.state == ST_UP))
			ao.since_ms = old.since_ms;
		raised = alert_raise(&ao, m->all_alerts, m->alerts,
		    m->n_alerts, &n_raised);
		rows_append(&rows, &n_rows, raised, n_raised);
		if (o.previous == ST_DOWN)
			raise_escalated(m, &old, &ao, &rows, &n_rows);
	}
	/* Cluster mode: the state goes to etcd, for the next owner, and
	 * its alerts wait for that commit. */
	cluster_checked(m->name, &m->ps, rows, n_rows);
	store_record(&o, &m->ps, rows, n_rows, held);
	free(rows);
	policy_rearm(m);
}

/* ---- reminders and escalations: one heap for every monitor ---- */

static void ptimer_arm(int force);

/* Raise for M what policy_fire() found due in F at NOW: the DOWN alert
 * again (renotify) and the escalations' sections, all in one store item
 * with M's counters. */
static void
policy_raise(struct monitor *m, const struct policy_fired *f, int64_t now)
{
	struct wp_result r = WP_RESULT_INIT;
	struct outcome o;
	struct store_check c;
	struct store_alert *rows = NULL, *raised;
	size_t n_rows = 0, n_raised, i;

	r.reason = m->state_reason;
	r.detail = m->state_detail;
	r.latency_us = m->last.ms.latency < 0 ? -1 :
	    (int64_t)(m->last.ms.latency * 1000.0);
	r.status_code = m->last.status_code;
	memset(&o, 0, sizeof(o));
	o.grid = -1;
	o.monitor_id = m->db_id;
	o.monitor = m->name;
	o.type = m->type;
	o.result = &r;
	o.ms = outcome_ms_of(&r);
	o.previous = o.state = o.check = ST_DOWN;
	o.started_ms = now;
	o.since_ms = m->ps.since_ms;
	/* A held monitor (hold.h) sends no reminder or escalation; the
	 * counters still move on, so its release sends one alert, not a
	 * burst. */
	o.alert = hold_reasons(m->name) == 0;
	if (!o.alert)
		log_info("monitor %s: still DOWN; reminders and escalations "
		    "held", m->name);
	else if (f->renotify) {
		o.repeat = m->ps.repeats;
		log_info("monitor %s: still DOWN; reminder %u (renotify)",
		    m->name, o.repeat);
		raised = alert_raise(&o, m->all_alerts, m->alerts,
		    m->n_alerts, &n_raised);
		rows_append(&rows, &n_rows, raised, n_raised);
	}
	o.repeat = 0;
	o.alert_flags = WP_ALERT_ESCALATION;
	for (i = f->esc_from; o.alert && i < f->esc_to; i++) {
		log_info("monitor %s: still DOWN after %" PRId64 " ms; "
		    "escalating", m->name, m->policy.esc[i].after_ms);
		raised = alert_raise(&o, 0, m->policy.esc[i].alerts,
		    m->policy.esc[i].n_alerts, &n_raised);
		rows_append(&rows, &n_rows, raised, n_raised);
	}
	if (store == NULL) {
		free(rows);
		return;
	}
	memset(&c, 0, sizeof(c));
	c.monitor_id = m->db_id;
	c.policy_only = 1;
	c.repeats = m->ps.repeats;
	c.notified_ms = m->ps.notified_ms;
	c.escalated_ms = m->ps.escalated_ms;
	if (store_submit(store, &c, rows, n_rows) != 0) {
		log_warn("monitor %s: store queue full; reminder not recorded",
		    m->name);
		alert_released(rows, n_rows);
	}
	free(rows);
}

/* Put M in the heap at its next reminder or escalation, or take it out:
 * only a monitor checked in this run (its state confirmed, so a restart
 * after a long stop sends no stale reminder), enabled and down. */
static void
policy_rearm(struct monitor *m)
{
	int64_t due = INT64_MAX;

	/* In cluster mode reminders are the slot owner's, as checks are. */
	if (m->confirmed && m->enabled && !m->removed && m->once == NULL &&
	    cluster_alerts_here(m->name))
		due = policy_due(&m->policy, &m->ps);
	if (due == INT64_MAX && m->pnode.idx == 0)
		return; /* most checks: up, and not in the heap */
	if (due == INT64_MAX)
		policy_heap_del(&pheap, &m->pnode);
	else
		policy_heap_set(&pheap, &m->pnode, due);
	ptimer_arm(0);
}

static struct monitor *
monitor_of_node(struct policy_node *n)
{
	return (struct monitor *)(void *)((char *)n -
	    offsetof(struct monitor, pnode));
}

/* Everything due now, earliest first; each monitor once per pass. */
static void
ptimer_cb(uv_timer_t *t)
{
	struct policy_node *n;
	struct policy_fired f;
	struct monitor *m;
	int64_t now = wall_ms();

	(void)t;
	if (stopping)
		return;
	while ((n = policy_heap_top(&pheap)) != NULL && n->due_ms <= now) {
		m = monitor_of_node(n);
		if (cluster_alerts_here(m->name) &&
		    policy_fire(&m->policy, &m->ps, now, &f))
			policy_raise(m, &f, now);
		policy_heap_del(&pheap, n);
		policy_rearm(m);
	}
	ptimer_arm(1);
}

/* The one timer at the heap's earliest due time; at most a minute ahead,
 * so a wall clock set back is noticed.  Only when that time moved, or
 * FORCE (the timer fired): a check changes the heap rarely. */
static void
ptimer_arm(int force)
{
	struct policy_node *n = policy_heap_top(&pheap);
	int64_t delay, due = n != NULL && !stopping ? n->due_ms : INT64_MAX;

	if (!ptimer_ready) {
		uv_timer_init(main_loop, &ptimer);
		ptimer_ready = 1;
	}
	if (due == ptimer_due && !force)
		return;
	ptimer_due = due;
	if (due == INT64_MAX) {
		uv_timer_stop(&ptimer);
		return;
	}
	delay = due - wall_ms();
	delay = delay < 0 ? 0 : delay > 60000 ? 60000 : delay;
	uv_timer_start(&ptimer, ptimer_cb, (uint64_t)delay, 0);
}

static void
attempt_done(void *arg, const struct wp_result *r, enum op_outcome outcome)
{
	struct monitor *m = arg;

	m->op = NULL;
	if (m->removed) {
		notify_waiters(m, NULL);
		monitor_dispose(m);
		check_drained();
		return;
	}
	if (outcome == OP_CANCELED) {
		notify_waiters(m, NULL);
		if (m->once != NULL) {
			/* A push monitor has nothing to judge in one run. */
			m->once->done = 1;
			m->once->state = ST_PENDING;
			m->once->reason = r->reason;
			m->once->status_code = -1;
			m->once->latency_ms = -1;
			snprintf(m->once->detail, sizeof(m->once->detail), "%s",
			    r->detail ? r->detail : "");
			m->once = NULL;
			if (--once_left == 0 && once_done)
				once_done(once_arg);
		}
		check_drained();
		return;
	}
	if (mstate_of(r) == ST_DOWN && sched_retry(m->attempt, m->retries) && !stopping) {
		m->retry_pending = 1;
		policy_heap_set(&rheap, &m->rnode, mono_us() +
		    m->retry_interval_ms * 1000);
		stimer_arm(0);
		return;
	}
	finish_check(m, r);
	check_drained();
}

static void
start_attempt(struct monitor *m, unsigned attempt)
{
	m->attempt = attempt;
	if (attempt == 0)
		m->check_started_ms = wall_ms();
	m->op = runtime_start(m->in, OPC_CHECK, m->name, m->timeout_ms, attempt,
	    NULL, attempt_done, m);
}

/* ---- configuration ---- */

/* hold.h: a held alert of monitor NAME is released: raise it for PREV ->
 * its state now (hold.c found that the change alerts under the monitor's
 * alert_on), from the result that set or last confirmed the state, in
 * outbox rows of their own. */
static void
hold_released(const char *name, enum mstate prev)
{
	struct monitor *m = find(name);
	struct wp_result r = WP_RESULT_INIT;
	struct store_alert *rows;
	struct outcome o;
	size_t n = 0;

	if (m == NULL || m->removed || store == NULL ||
	    !cluster_alerts_here(name))
		return;
	r.reason = m->state_reason;
	r.detail = m->state_detail;
	r.status_code = m->last.status_code;
	r.latency_us = m->last.ms.latency >= 0 ?
	    (int64_t)(m->last.ms.latency * 1000) : -1;
	r.cert_expiry = m->last.cert_expiry;
	memset(&o, 0, sizeof(o));
	o.grid = -1;
	o.monitor_id = m->db_id;
	o.monitor = m->name;
	o.type = m->type;
	o.result = &r;
	o.ms = m->last.ms;
	o.previous = prev;
	o.state = o.check = m->ps.state;
	o.changed = 1;
	o.attempts = 1;
	o.started_ms = m->last_check_ms;
	o.since_ms = m->ps.since_ms;
	o.alert = 1;
	rows = alert_raise(&o, m->all_alerts, m->alerts, m->n_alerts, &n);
	if (n > 0 && store_submit_alerts(store, rows, n) != 0) {
		log_err("monitor %s: store queue full; released alert sent "
		    "without being stored", m->name);
		alert_released(rows, n);
	}
	free(rows);
}

int
manager_cluster_alert(const char *name, enum mstate prev, enum mstate state,
    int64_t since_ms, int64_t episode_ms, int reason, const char *detail,
    const char *confirmed_by)
{
	struct monitor *m = find(name);
	struct wp_result r = WP_RESULT_INIT;
	struct store_alert *rows;
	struct outcome o;
	size_t n = 0;

	if (m == NULL || m->removed)
		return WP_EINVAL;
	if (!policy_alerts(m->policy.alert_on, prev, state))
		return 0;
	if (hold_reasons(name) != 0) {
		log_info("monitor %s: %s -> %s confirmed; alert held "
		    "(maintenance, silence or a parent down)", name,
		    mstate_name(prev), mstate_label(state));
		return 0;
	}
	r.reason = reason;
	r.detail = detail;
	r.status_code = -1;
	memset(&o, 0, sizeof(o));
	o.grid = -1;
	o.monitor_id = m->db_id;
	o.monitor = m->name;
	o.type = m->type;
	o.result = &r;
	o.ms = outcome_ms_of(&r);
	o.previous = prev;
	o.state = o.check = state;
	o.changed = 1;
	o.attempts = 1;
	o.started_ms = since_ms;
	o.since_ms = episode_ms;
	o.alert = 1;
	o.confirmed_by = confirmed_by;
	rows = alert_raise(&o, m->all_alerts, m->alerts, m->n_alerts, &n);
	if (n > 0 && (store == NULL || store_submit_alerts(store, rows, n) !=
	    0)) {
		if (store != NULL)
			log_err("monitor %s: store queue full; alert sent "
			    "without being stored", m->name);
		alert_released(rows, n);
	}
	free(rows);
	return 0;
}

/* hold.h: monitor NAME's state, ST_COUNT if unknown. */
static enum mstate
hold_state_of(const char *name)
{
	struct monitor *m = find(name);

	return m != NULL ? m->ps.state : ST_COUNT;
}

/* hold.h: monitor NAME's id in the store, 0 if none. */
static int64_t
hold_id_of(const char *name)
{
	struct monitor *m = find(name);

	return m != NULL ? m->db_id : 0;
}

void
manager_init(struct store *st)
{
	static const struct hold_ops hops = { hold_released, hold_state_of,
	    hold_id_of };

	store = st;
	hold_init(st, &hops);
}

static struct monitor *
monitor_new(const struct cfg_monitor *c, struct instance *in)
{
	struct monitor *m = xcalloc(1, sizeof(*m));

	m->name = xstrdup(c->s.name);
	monitor_set(m, c);
	m->in = in;
	m->ps.state = ST_PENDING;
	m->grid_k = m->check_grid = -1;
	m->last = (struct last_result){ .status_code = -1,
	    .ms = { -1, -1, -1, -1, -1 } };
	return m;
}

/* Put M's next check at now + the K-th of N spread offsets and arm it. */
static void
schedule_first(struct monitor *m, size_t k, size_t n)
{
	policy_heap_del(&sheap, &m->snode);
	if (!m->enabled || stopping)
		return;
	m->sched.due_us = mono_us() + sched_first_offset(k, n,
	    m->sched.interval_us);
	/* Off the grid until the cluster puts it back (manager_set_due()). */
	m->grid_k = -1;
	arm(m);
}

static int
state_cmp(const void *a, const void *b)
{
	const struct store_state *x = a, *y = b;

	return x->monitor_id < y->monitor_id ? -1 :
	    x->monitor_id > y->monitor_id;
}

/* Resume M's state from S (sorted by monitor_id with state_cmp). */
static void
restore_state(struct monitor *m, const struct store_state *s, size_t n)
{
	struct store_state key = { .monitor_id = m->db_id };
	const struct store_state *f;

	if (n == 0 || (f = bsearch(&key, s, n, sizeof(*s), state_cmp)) == NULL)
		return;
	/* An unknown word (a newer agent's) leaves the monitor pending. */
	(void)mstate_parse(f->state, &m->ps.state);
	m->last_check_ms = f->last_check_ms;
	m->last.ms.latency = f->latency_ms;
	m->ps.since_ms = f->since_ms;
	m->ps.streak = f->streak;
	m->ps.repeats = f->repeats;
	m->ps.notified_ms = f->notified_ms;
	m->ps.escalated_ms = f->escalated_ms;
}

/* Hand S to its plugin's configure(); the instance goes to *KEEP when
 * KEEP is not NULL, else it is dropped at once. */
static void
check_section(const struct config *cfg, const struct cfg_section *s,
    int64_t timeout_ms, struct wp_diag *diag, struct instance **keep)
{
	const struct plugin *p = loader_by_desc(s->plugin);
	struct configured c;

	if (!s->configurable || p == NULL)
		return;
	if (configure_section(p, cfg, s, timeout_ms, diag, &c) != 0)
		return;
	if (keep != NULL)
		*keep = instance_new(p, &c);
	else
		configure_release(p, c.inst, c.conf);
}

void
manager_check(const struct config *cfg, struct wp_diag *diag)
{
	struct instance **built = xcalloc(cfg->n_monitors + 1,
	    sizeof(*built));
	size_t i;

	/* The monitors' instances live until their route keys (push
	 * tokens) are compared. */
	for (i = 0; i < cfg->n_monitors; i++)
		check_section(cfg, &cfg->monitors[i].s,
		    cfg->monitors[i].timeout_ms, diag, &built[i]);
	(void)routes_check(cfg, built, 0, diag);
	for (i = 0; i < cfg->n_monitors; i++)
		instance_unref(built[i]);
	free(built);
	for (i = 0; i < cfg->n_alerts; i++)
		check_section(cfg, &cfg->alerts[i].s, cfg->alerts[i].timeout_ms,
		    diag, NULL);
	diag_sort(diag);
}

/*
 * Apply step 1: configure every monitor of CFG that is new or changed into
 * FRESH[i] (NULL for unchanged ones), changing nothing that runs.  Returns
 * 0 with how many were configured in *N_FIRST, or WP_EINVAL (problems in
 * DIAG; the caller releases FRESH).
 */
static int
configure_changed(const struct config *cfg, struct wp_diag *diag,
    struct instance **fresh, size_t *n_first)
{
	struct monitor *m;
	size_t i;
	int rc = 0;

	*n_first = 0;
	for (i = 0; i < cfg->n_monitors; i++) {
		const struct cfg_monitor *c = &cfg->monitors[i];
		const struct plugin *p = loader_by_desc(c->s.plugin);
		struct configured built;

		m = find(c->s.name);
		if (sched_classify(m ? &m->def_hash : NULL,
		    &c->s.def_hash) == DIFF_UNCHANGED)
			continue;
		if (p == NULL || configure_section(p, cfg, &c->s,
		    c->timeout_ms, diag, &built) != 0) {
			rc = WP_EINVAL;
			continue;
		}
		fresh[i] = instance_new(p, &built);
		(*n_first)++;
	}
	return rc;
}

/*
 * Apply step 2: the store's id of each monitor of CFG into IDS[i] (names
 * are identities).  Only names the store has not given an id under this
 * type are synced: on a reload that is the added monitors, not all 10,000.
 * At start-up, the stored states too, sorted for restore_state() (*STATES,
 * malloc'd).  A database error is logged; the ids it left are 0.
 */
static void
sync_ids(const struct config *cfg, int64_t *ids, struct store_state **states,
    size_t *n_states)
{
	struct monitor *m;
	struct opmon_op *op;
	const char **names, **types;
	int64_t *sync_ids;
	size_t i, k, n_sync = 0;
	int sync_ok = 1;

	op = opmon_begin(OPC_STARTUP, "sync monitors", STEP_MS);
	names = xcalloc(cfg->n_monitors + 1, sizeof(*names));
	types = xcalloc(cfg->n_monitors + 1, sizeof(*types));
	sync_ids = xcalloc(cfg->n_monitors + 1, sizeof(*sync_ids));
	for (i = 0; i < cfg->n_monitors; i++) {
		m = find(cfg->monitors[i].s.name);
		if (m != NULL && m->db_id != 0 &&
		    strcmp(m->type, cfg->monitors[i].s.type) == 0) {
			ids[i] = m->db_id;
			continue;
		}
		names[n_sync] = cfg->monitors[i].s.name;
		types[n_sync++] = cfg->monitors[i].s.type;
	}
	if (n_sync > 0 && store_sync_monitors(store, names, types, n_sync,
	    sync_ids) != 0) {
		log_err("store: could not record the monitor list; results of "
		    "new monitors may not be stored");
		sync_ok = 0;
	}
	for (i = 0, k = 0; i < cfg->n_monitors && k < n_sync; i++)
		if (cfg->monitors[i].s.name == names[k])
			ids[i] = sync_ids[k++];
	free(names);
	free(types);
	free(sync_ids);
	if (current == NULL && store_load_state(store, states, n_states) != 0)
		sync_ok = 0;
	if (*n_states > 1)
		qsort(*states, *n_states, sizeof(**states), state_cmp);
	opmon_end(op, sync_ok ? OP_SUCCEEDED : OP_FAILED, sync_ok ? NULL :
	    "database error");
}

/*
 * Apply step 3: stop and dispose of every running monitor CFG does not
 * name (before the list is relinked in the new order).  Returns how many.
 */
static size_t
remove_unnamed(const struct config *cfg)
{
	struct monitor *m, *next, *gone = NULL, **tail = &monitors;
	size_t i, n = 0;

	for (i = 0; i < cfg->n_monitors; i++)
		if ((m = find(cfg->monitors[i].s.name)) != NULL)
			m->removed = -1; /* still configured */
	for (m = monitors; m != NULL; m = next) {
		next = m->next;
		if (m->removed == -1) {
			m->removed = 0;
			*tail = m;
			tail = &m->next;
			continue;
		}
		m->removed = 1;
		n++;
		policy_heap_del(&sheap, &m->snode);
		policy_heap_del(&rheap, &m->rnode);
		m->retry_pending = 0;
		log_info("monitor %s: removed", m->name);
		notify_waiters(m, NULL);
		m->next = gone;
		gone = m;
	}
	*tail = NULL;
	if (n == 0)
		return 0;
	/* Out of the list and the name table before they are freed
	 * (monitor_dispose() frees an idle one at once). */
	n_monitors -= n;
	rehash();
	for (m = gone; m != NULL; m = next) {
		next = m->next;
		m->next = NULL;
		monitor_dispose(m);
	}
	return n;
}

/* Apply step 4, for a monitor whose definition changed: keep its state and
 * history, take the new settings and instance IN, check at once. */
static void
monitor_update(struct monitor *m, const struct cfg_monitor *c,
    struct instance *in, int64_t id)
{
	if (m->op != NULL)
		runtime_cancel(m->op);
	policy_heap_del(&rheap, &m->rnode);
	m->retry_pending = 0;
	notify_waiters(m, NULL);
	instance_unref(m->in);
	m->in = in;
	monitor_set(m, c);
	m->db_id = id ? id : m->db_id;
	policy_rearm(m);
	log_info("monitor %s: definition changed; checking now", m->name);
}

int
manager_apply(struct config *cfg, struct wp_diag *diag)
{
	struct instance **fresh;
	struct monitor *m, *list = NULL, **tail = &list;
	struct store_state *states = NULL;
	size_t n_states = 0, i, n_new = 0, n_changed = 0, n_removed;
	size_t n_first; /* new and changed: first checks to spread */
	int64_t *ids;
	void *alerts_prepared = NULL;
	struct opmon_op *op;
	int rc;

	/* 1. Configure everything new or changed; change nothing yet. */
	op = opmon_begin(OPC_STARTUP, "configure monitors", STEP_MS);
	fresh = xcalloc(cfg->n_monitors + 1, sizeof(*fresh));
	rc = configure_changed(cfg, diag, fresh, &n_first);
	if (routes_check(cfg, fresh, 1, diag) != 0)
		rc = WP_EINVAL;
	if (alert_prepare(cfg, diag, &alerts_prepared) != 0)
		rc = WP_EINVAL;
	if (rc != 0 || diag->errors > 0) {
		for (i = 0; i < cfg->n_monitors; i++)
			instance_unref(fresh[i]);
		free(fresh);
		alert_abort(alerts_prepared);
		opmon_end(op, OP_FAILED, "a plugin rejected its section");
		return WP_EINVAL;
	}
	opmon_end(op, OP_SUCCEEDED, NULL);

	/* 2. Monitor ids in the store. */
	ids = xcalloc(cfg->n_monitors + 1, sizeof(*ids));
	if (store != NULL)
		sync_ids(cfg, ids, &states, &n_states);
	alert_commit(alerts_prepared);

	/* 3. Whatever the new file does not name is gone. */
	n_removed = remove_unnamed(cfg);

	/* 4. Apply: new, changed, unchanged -- in the new file order. */
	for (i = 0; i < cfg->n_monitors; i++) {
		const struct cfg_monitor *c = &cfg->monitors[i];

		m = find(c->s.name);
		if (m != NULL && m->removed)
			m = NULL;
		switch (sched_classify(m ? &m->def_hash : NULL,
		    &c->s.def_hash)) {
		case DIFF_ADD:
			m = monitor_new(c, fresh[i]);
			m->db_id = ids[i];
			restore_state(m, states, n_states);
			schedule_first(m, n_new + n_changed, n_first);
			n_new++;
			break;
		case DIFF_UPDATE:
			monitor_update(m, c, fresh[i], ids[i]);
			schedule_first(m, n_new + n_changed, n_first);
			n_changed++;
			break;
		case DIFF_UNCHANGED:
		case DIFF_REMOVE:
			break;
		}
		*tail = m;
		tail = &m->next;
	}
	*tail = NULL;
	monitors = list;
	n_monitors = 0;
	for (m = monitors; m; m = m->next)
		n_monitors++;
	rehash();
	routes_build();
	free(fresh);
	free(ids);
	free(states);
	if (current != NULL)
		log_info("configuration applied: %zu added, %zu changed, %zu "
		    "removed, %zu unchanged", n_new, n_changed, n_removed,
		    n_monitors - n_new - n_changed);
	hold_apply(cfg);
	/* 100,000 sections take ~25 ms to free: not on the loop. */
	config_free_detached(current);
	current = cfg;
	return 0;
}

struct once_result *
manager_once(const char *const *names, size_t n, void (*done)(void *),
    void *arg, size_t *n_out, char *err, size_t errlen)
{
	struct monitor *m;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (find(names[i]) == NULL) {
			snprintf(err, errlen, "no monitor named \"%s\"",
			    names[i]);
			return NULL;
		}
	}
	once_results = xcalloc(n_monitors + 1, sizeof(*once_results));
	for (m = monitors; m; m = m->next) {
		policy_heap_del(&sheap, &m->snode);
		if (n == 0 && !m->enabled)
			continue;
		if (n > 0) {
			for (i = 0; i < n && strcmp(names[i], m->name); i++)
				;
			if (i == n)
				continue;
		}
		once_results[k].name = m->name;
		once_results[k].type = m->type;
		m->once = &once_results[k++];
	}
	once_n = once_left = k;
	once_done = done;
	once_arg = arg;
	*n_out = k;
	if (k == 0 && done)
		done(arg);
	for (m = monitors; m; m = m->next)
		if (m->once)
			start_attempt(m, 0);
	return once_results;
}

/* ---- shutdown ---- */

static void
check_drained(void)
{
	struct monitor *m;

	if (!stopping || drained_cb == NULL)
		return;
	for (m = monitors; m; m = m->next)
		if (m->op != NULL || m->retry_pending)
			return;
	if (opmon_running(OPC_CHECK) > 0 || alert_in_flight() > 0)
		return;
	{
		void (*cb)(void *) = drained_cb;
		drained_cb = NULL;
		cb(drained_arg);
	}
}

static uv_timer_t drain_poll;

static void
drain_poll_cb(uv_timer_t *t)
{
	check_drained();
	if (drained_cb == NULL)
		uv_close((uv_handle_t *)t, NULL);
}

void
manager_stop(void (*drained)(void *), void *arg)
{
	struct monitor *m;

	stopping = 1;
	drained_cb = drained;
	drained_arg = arg;
	for (m = monitors; m; m = m->next) {
		policy_heap_del(&sheap, &m->snode);
		if (m->retry_pending) {
			policy_heap_del(&rheap, &m->rnode);
			m->retry_pending = 0;
			notify_waiters(m, NULL);
		}
	}
	if (stimer_ready)
		uv_timer_stop(&stimer);
	stimer_due = INT64_MAX;
	if (ptimer_ready)
		uv_timer_stop(&ptimer);
	ptimer_due = INT64_MAX;
	alert_stop();
	/* Deliveries finishing do not call back here: poll for them. */
	uv_timer_init(main_loop, &drain_poll);
	uv_timer_start(&drain_poll, drain_poll_cb, 50, 50);
	check_drained();
}

void
manager_free(void)
{
	struct monitor *m, *next;

	for (m = monitors; m; m = next) {
		next = m->next;
		notify_waiters(m, NULL);
		if (m->op != NULL)
			continue; /* a plugin that never completed keeps it */
		policy_heap_del(&pheap, &m->pnode);
		policy_heap_del(&sheap, &m->snode);
		policy_heap_del(&rheap, &m->rnode);
		instance_unref(m->in);
		m->in = NULL;
		monitor_free(m);
	}
	monitors = NULL;
	free(table);
	table = NULL;
	table_size = n_monitors = 0;
	free(once_results);
	once_results = NULL;
	policy_heap_free(&pheap);
	policy_heap_free(&sheap);
	policy_heap_free(&rheap);
	if (stimer_ready) {
		uv_close((uv_handle_t *)&stimer, NULL);
		stimer_ready = 0;
	}
	stimer_due = INT64_MAX;
	if (ptimer_ready) {
		uv_close((uv_handle_t *)&ptimer, NULL);
		ptimer_ready = 0;
	}
	ptimer_due = INT64_MAX;
	routes_free();
	config_free(current);
	current = NULL;
	config_free_wait();
	hold_free();
}

size_t
manager_monitor_count(void)
{
	return n_monitors;
}

int
manager_busy(const char *name)
{
	struct monitor *m = find(name);

	return m != NULL && (m->op != NULL || m->retry_pending);
}

int
manager_policy_state(const char *name, struct policy_state *out)
{
	struct monitor *m = find(name);

	if (m == NULL || m->removed)
		return WP_EINVAL;
	*out = m->ps;
	return 0;
}

int
manager_state_reason(const char *name, int *reason, const char **detail)
{
	struct monitor *m = find(name);

	if (m == NULL || m->removed)
		return WP_EINVAL;
	*reason = m->state_reason;
	*detail = m->state_detail;
	return 0;
}

int
manager_seed_state(const char *name, const struct policy_state *ps)
{
	struct monitor *m = find(name);

	if (m == NULL || m->removed)
		return WP_EINVAL;
	m->ps = *ps;
	/* Confirmed: the cluster's word is as good as a check of our own,
	 * so reminders continue on the new owner. */
	m->confirmed = ps->state != ST_PENDING;
	policy_rearm(m);
	return 0;
}

int
manager_set_due(const char *name, int64_t due_us, int64_t grid_k)
{
	struct monitor *m = find(name);

	if (m == NULL || m->removed || !m->enabled || stopping)
		return WP_EINVAL;
	m->sched.due_us = due_us;
	m->grid_k = grid_k;
	arm(m);
	return 0;
}

/* ---- rendering ---- */

static json_t *
num_or_null(double v)
{
	return v >= 0 ? json_real(v) : json_null();
}

/* M as GET /api/monitors shows it (a new reference). */
static json_t *
monitor_json(const struct monitor *m)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(m->name));
	json_object_set_new(o, "type", json_string(m->type));
	json_object_set_new(o, "state", json_string(mstate_name(
	    hold_shown(m->name, m->enabled ? m->ps.state : ST_PAUSED))));
	json_object_set_new(o, "last_check", m->last_check_ms ?
	    json_integer(m->last_check_ms) : json_null());
	json_object_set_new(o, "latency_ms",
	    m->last_check_ms ? num_or_null(m->last.ms.latency) :
	    json_null());
	json_object_set_new(o, "since", m->ps.since_ms ?
	    json_integer(m->ps.since_ms) : json_null());
	json_object_set_new(o, "status_code", m->last.status_code >= 0 ?
	    json_integer(m->last.status_code) : json_null());
	json_object_set_new(o, "reason", m->ps.state == ST_DOWN ||
	    m->ps.state == ST_DEGRADED ?
	    json_string(reason_name(m->state_reason)) : json_null());
	json_object_set_new(o, "error", m->ps.state == ST_DOWN &&
	    m->state_detail != NULL ? json_string(m->state_detail) :
	    json_null());
	json_object_set_new(o, "interval_ms",
	    json_integer(m->interval_ms));
	json_object_set_new(o, "checks_up", json_integer((json_int_t)m->n_up));
	json_object_set_new(o, "checks_down",
	    json_integer((json_int_t)m->n_down));
	json_object_set_new(o, "checks_skipped",
	    json_integer((json_int_t)m->sched.skipped));
	return o;
}

char *
manager_monitors_json(void)
{
	json_t *arr = json_array();
	struct monitor *m;
	char *out;

	for (m = monitors; m; m = m->next)
		json_array_append_new(arr, monitor_json(m));
	out = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return out;
}

void
manager_get_stats(struct manager_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->lateness_le = late_le;
	memcpy(out->lateness, late_hist, sizeof(out->lateness));
	out->lateness_sum = late_sum;
	out->skipped = skipped_total;
	out->monitors = n_monitors;
}

const struct monitor *
manager_monitor_next(const struct monitor *prev,
    struct manager_monitor_stats *out)
{
	const struct monitor *m;

	for (m = prev != NULL ? prev->next : monitors; m != NULL; m = m->next)
		if (m->enabled)
			break;
	if (m == NULL)
		return NULL;
	out->name = m->name;
	out->type = m->type;
	out->state = m->ps.state;
	out->checked = m->last_check_ms != 0;
	out->latency_ms = m->last.ms.latency;
	out->phase_ms[0] = m->last.ms.dns;
	out->phase_ms[1] = m->last.ms.connect;
	out->phase_ms[2] = m->last.ms.tls;
	out->phase_ms[3] = m->last.ms.first_byte;
	out->cert_expiry = m->last.cert_expiry;
	out->n_up = m->n_up;
	out->n_down = m->n_down;
	out->skipped = m->sched.skipped;
	out->meas = m->last.meas;
	out->n_meas = m->last.n_meas;
	out->shown = hold_shown(m->name, m->ps.state);
	return m;
}

/* ---- the admin API (admin.c) ---- */

/* Call and drop every waiter of M with O (NULL: no result is coming). */
static void
notify_waiters(struct monitor *m, const struct outcome *o)
{
	struct check_waiter *w, *next;

	w = m->waiters;
	m->waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->next;
		w->cb(w->arg, o);
		free(w);
	}
}

int
manager_check_now(const char *name, void (*cb)(void *arg,
    const struct outcome *o), void *arg)
{
	struct monitor *m = find(name);
	struct check_waiter *w, **tail;

	if (m == NULL || m->removed)
		return WP_EINVAL;
	if (stopping || m->in == NULL)
		return WP_EAGAIN;
	w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->arg = arg;
	for (tail = &m->waiters; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = w;
	/* A check in flight (or between its attempts) is the one waited
	 * for: checks of a monitor never overlap. */
	if (m->op == NULL && !m->retry_pending)
		start_attempt(m, 0);
	return 0;
}

json_t *
manager_monitor_json(const char *name)
{
	struct monitor *m = find(name);

	return m != NULL && !m->removed ? monitor_json(m) : NULL;
}

const struct config *
manager_config(void)
{
	return current;
}

/* ---- inbound events: /push/TOKEN routed to the monitor that owns it ---- */

/*
 * The route table: the route_key() of every monitor's instance that has
 * one (push), rebuilt by each manager_apply().  A presented token is
 * compared with every key, always all ROUTE_KEY_MAX bytes of each (keys
 * are stored zero-padded), so the time taken says nothing about which
 * bytes matched or whether any key did -- only how many push monitors
 * there are.  (Hundreds of 129-byte compares cost microseconds; a hash
 * lookup would leak through its buckets.)
 */
#define ROUTE_KEY_MAX 128
struct route {
	unsigned char key[ROUTE_KEY_MAX + 1];
	size_t len;
	struct monitor *m;
};
static struct route *routes;
static size_t n_routes;

/* IN's route key, or NULL (no instance, or a plugin without events). */
static const char *
route_key_of(const struct instance *in)
{
	if (in == NULL || in->plugin->desc.route_key == NULL)
		return NULL;
	return in->plugin->desc.route_key(in->inst);
}

struct keyed {
	const char *key;
	size_t i;        /* cfg->monitors[i] */
};

static int
keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

/*
 * Apply step 1b: the route keys CFG would have (FRESH[i] for new and
 * changed monitors, with RUNNING the running instance for unchanged ones;
 * FRESH[i] NULL: none) must be
 * unique and usable.  Each problem goes to DIAG at the later monitor's
 * section header, naming the earlier one but never the key.  Returns 0 or
 * WP_EINVAL.
 */
static int
routes_check(const struct config *cfg, struct instance **fresh,
    int running, struct wp_diag *diag)
{
	struct keyed *k = xcalloc(cfg->n_monitors + 1, sizeof(*k));
	const char *prev_file = diag->file;
	int prev_rank = diag->rank, rc = 0;
	size_t i, n = 0, len;

	for (i = 0; i < cfg->n_monitors; i++) {
		const struct cfg_monitor *c = &cfg->monitors[i];
		struct monitor *m = find(c->s.name);
		struct instance *in = fresh[i];
		const char *key;

		if (in == NULL && running && m != NULL && !m->removed)
			in = m->in;
		if ((key = route_key_of(in)) == NULL)
			continue;
		len = strlen(key);
		if (len == 0 || len > ROUTE_KEY_MAX) {
			diag->file = c->s.file ? c->s.file : cfg->file;
			diag->rank = c->s.file_no;
			diag_error(diag, c->s.line, "[monitor:%s]: plugin %s "
			    "gave a route key of %zu bytes (1 to %d work)",
			    c->s.name, c->s.type, len, ROUTE_KEY_MAX);
			rc = WP_EINVAL;
			continue;
		}
		k[n].key = key;
		k[n++].i = i;
	}
	if (n > 1)
		qsort(k, n, sizeof(*k), keyed_cmp);
	for (i = 1; i < n; i++) {
		const struct cfg_monitor *a, *b;
		size_t j = i - 1;

		if (strcmp(k[i].key, k[i - 1].key) != 0)
			continue;
		/* Name the first monitor of the run of equal keys. */
		while (j > 0 && strcmp(k[j - 1].key, k[i].key) == 0)
			j--;
		a = &cfg->monitors[k[j].i];
		b = &cfg->monitors[k[i].i];
		diag->file = b->s.file ? b->s.file : cfg->file;
		diag->rank = b->s.file_no;
		diag_error(diag, b->s.line, "[monitor:%s]: its push token is "
		    "also monitor \"%s\"'s (%s:%d): each push monitor needs "
		    "its own", b->s.name, a->s.name,
		    a->s.file ? a->s.file : cfg->file, a->s.line);
		rc = WP_EINVAL;
	}
	diag->file = prev_file;
	diag->rank = prev_rank;
	free(k);
	return rc;
}

static void
routes_free(void)
{
	if (routes != NULL)
		explicit_bzero(routes, n_routes * sizeof(*routes));
	free(routes);
	routes = NULL;
	n_routes = 0;
}

/* Apply's last step: the table for the monitors now listed. */
static void
routes_build(void)
{
	struct monitor *m;
	const char *key;
	size_t n = 0, len;

	routes_free();
	for (m = monitors; m != NULL; m = m->next)
		if (route_key_of(m->in) != NULL)
			n++;
	if (n == 0)
		return;
	routes = xcalloc(n, sizeof(*routes));
	for (m = monitors; m != NULL; m = m->next) {
		if ((key = route_key_of(m->in)) == NULL)
			continue;
		len = strlen(key); /* 1..ROUTE_KEY_MAX: routes_check() */
		memcpy(routes[n_routes].key, key, len);
		routes[n_routes].len = len;
		routes[n_routes++].m = m;
	}
}

/* The monitor whose key is the LEN bytes at TOKEN, or NULL; in time that
 * depends on the number of routes only. */
static struct monitor *
route_find(const char *token, size_t len)
{
	unsigned char given[ROUTE_KEY_MAX + 1];
	struct monitor *found = NULL;
	size_t i, j;

	if (len > ROUTE_KEY_MAX)
		return NULL; /* no key is that long */
	memset(given, 0, sizeof(given));
	memcpy(given, token, len);
	for (i = 0; i < n_routes; i++) {
		volatile unsigned char diff = routes[i].len != len;

		for (j = 0; j < sizeof(given); j++)
			diff |= given[j] ^ routes[i].key[j];
		/* Keys are unique: at most one matches.  The branch below
		 * depends only on whether this key matched, which the answer
		 * tells anyway. */
		if (diff == 0)
			found = routes[i].m;
	}
	explicit_bzero(given, sizeof(given));
	return found;
}

/* The push's recording: a finished check of M (runtime_inbound's done). */
struct push_ctx {
	struct monitor *m;
	int64_t wall_ms;
	enum mstate state;
};

static void
push_done(void *arg, const struct wp_result *r, enum op_outcome outcome)
{
	struct push_ctx *p = arg;
	struct monitor *m = p->m;
	unsigned attempt = m->attempt;
	int64_t started = m->check_started_ms, grid = m->check_grid;

	(void)outcome;
	/* finish_check() reads the check's start, attempt and grid point
	 * from the monitor; a scheduled check of it may be between attempts,
	 * so its values come back afterwards.  A push has no grid point. */
	m->attempt = 0;
	m->check_started_ms = p->wall_ms;
	m->check_grid = -1;
	finish_check(m, r);
	m->attempt = attempt;
	m->check_started_ms = started;
	m->check_grid = grid;
	p->state = m->ps.state;
}

static void
push_answer(struct api_job *job, unsigned status, json_t *o)
{
	char *body = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	api_answer(job, status, body != NULL ? xasprintf("%s\n", body) : NULL,
	    NULL, NULL);
	free(body);
}

static void
push_error(struct api_job *job, unsigned status, const char *msg)
{
	push_answer(job, status, json_pack("{ss}", "error", msg));
}

/*
 * GET or POST /push/TOKEN (api.h: routes->push; the API has checked the
 * method and capped the body; no admin token is asked).  An unknown token
 * is 404 "not found", the same as for any unknown path: the answer says
 * nothing about which tokens or monitors exist.  A known one is recorded
 * through finish_check() as a finished check of its monitor -- stored,
 * alerting, policy applied -- and answered 200 with the monitor's name
 * and state (the caller holds that monitor's secret, so it learns nothing
 * about any other); a malformed one 400 with the plugin's message.
 */
void
manager_push(void *arg, const struct api_request *req)
{
	const char *token = req->path + sizeof("/push/") - 1;
	struct wp_inbound ev;
	struct push_ctx ctx;
	struct monitor *m;
	char err[WP_DETAIL_MAX];
	int rc;

	(void)arg;
	if (stopping) {
		push_error(req->job, 503, "the agent is stopping");
		return;
	}
	m = route_find(token, strlen(token));
	if (m == NULL) {
		log_debug("api: %s /push/... -> 404 (no such token)",
		    req->method);
		push_error(req->job, 404, "not found");
		return;
	}
	if (!m->enabled) {
		/* A paused monitor takes no results: the job is told so,
		 * without failing its curl -f. */
		push_answer(req->job, 200, json_pack("{sbsssssb}", "ok", 1,
		    "monitor", m->name, "state", mstate_name(ST_PAUSED),
		    "recorded", 0));
		return;
	}
	ev = (struct wp_inbound){
		.size = sizeof(ev),
		.method = req->method,
		.query = req->query != NULL ? req->query : "",
		.body = req->body,
		.body_len = req->body_len,
		.received_us = mono_us(),
		.wall_us = wall_ms() * 1000,
	};
	ctx = (struct push_ctx){ .m = m, .wall_ms = wall_ms() };
	rc = runtime_inbound(m->in, m->name, &ev, push_done, &ctx, err,
	    sizeof(err));
	if (rc == WP_EINVAL) {
		log_debug("api: %s /push/... -> 400 (monitor %s): %s",
		    req->method, m->name, err);
		push_error(req->job, 400, err);
		return;
	}
	if (rc != WP_OK) {
		log_warn("monitor %s: push not recorded: %s", m->name, err);
		push_error(req->job, 500, "the push could not be recorded");
		return;
	}
	push_answer(req->job, 200, json_pack("{sbsssssb}", "ok", 1, "monitor",
	    m->name, "state", mstate_name(ctx.state), "recorded", 1));
}
