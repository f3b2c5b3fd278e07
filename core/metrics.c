#include "config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include <watchpost/plugin.h>

#include "alert.h"
#include "cluster-run.h"
#include "manager.h"
#include "metrics.h"
#include "opmon.h"
#include "outcome.h"
#include "pool.h"
#include "store.h"
#include "util.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct label {
	const char *name;
	const char *value;
};

/* store.h's batch_ms_bucket bounds (1, 5, ... 250 ms), in seconds. */
static const double store_batch_le[7] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25
};

/* HELP and TYPE, once per family, before its samples. */
static void
family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* A label value: \, " and newline are escaped, as the format requires. */
static void
label_value(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			sbuf_puts(b, "\\n");
		else
			sbuf_append(b, s, 1);
	}
}

/*
 * NAME SUFFIX{L[0..N), le="LE"} and the space before the value; no braces
 * without labels.  LE NULL: no le label.
 */
static void
series(struct sbuf *b, const char *name, const char *suffix,
    const struct label *l, size_t n, const char *le)
{
	size_t i;

	sbuf_printf(b, "%s%s", name, suffix);
	if (n > 0 || le != NULL) {
		sbuf_puts(b, "{");
		for (i = 0; i < n; i++) {
			sbuf_printf(b, "%s%s=\"", i > 0 ? "," : "",
			    l[i].name);
			label_value(b, l[i].value);
			sbuf_puts(b, "\"");
		}
		if (le != NULL)
			sbuf_printf(b, "%sle=\"%s\"", n > 0 ? "," : "", le);
		sbuf_puts(b, "}");
	}
	sbuf_puts(b, " ");
}

static void
sample(struct sbuf *b, const char *name, const struct label *l, size_t n,
    uint64_t v)
{
	series(b, name, "", l, n, NULL);
	sbuf_printf(b, "%" PRIu64 "\n", v);
}

static void
sample_double(struct sbuf *b, const char *name, const struct label *l,
    size_t n, double v)
{
	series(b, name, "", l, n, NULL);
	sbuf_printf(b, "%.6f\n", v);
}

/*
 * One histogram series set: COUNT[0..N_LE] are per-bucket counts (COUNT[i]
 * observations fell in (LE[i-1], LE[i]], COUNT[N_LE] above the last
 * bound), written as the cumulative _bucket series the format wants, then
 * le="+Inf", _sum and _count (equal to +Inf by construction).
 */
static void
histogram(struct sbuf *b, const char *name, const struct label *l,
    size_t n, const double *le, size_t n_le, const uint64_t *count,
    double sum)
{
	char bound[32];
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i < n_le; i++) {
		cum += count[i];
		snprintf(bound, sizeof(bound), "%g", le[i]);
		series(b, name, "_bucket", l, n, bound);
		sbuf_printf(b, "%" PRIu64 "\n", cum);
	}
	cum += count[n_le];
	series(b, name, "_bucket", l, n, "+Inf");
	sbuf_printf(b, "%" PRIu64 "\n", cum);
	series(b, name, "_sum", l, n, NULL);
	sbuf_printf(b, "%.6f\n", sum);
	series(b, name, "_count", l, n, NULL);
	sbuf_printf(b, "%" PRIu64 "\n", cum);
}

/*
 * The monitor and type labels of every per-monitor series, in cluster
 * mode (CS non-NULL) location and agent -- where and by whom it was
 * checked, so the agents' series never collide -- plus EXTRA.  L has
 * room for 5.
 */
static size_t
monitor_labels(struct label *l, const struct cluster_run_stats *cs,
    const struct manager_monitor_stats *ms, const char *extra_name,
    const char *extra_value)
{
	size_t n = 0;

	l[n++] = (struct label){ "monitor", ms->name };
	l[n++] = (struct label){ "type", ms->type };
	if (cs != NULL) {
		l[n++] = (struct label){ "location", cs->location };
		l[n++] = (struct label){ "agent", cs->name };
	}
	if (extra_name != NULL)
		l[n++] = (struct label){ extra_name, extra_value };
	return n;
}

/*
 * 1 when this agent's view of the monitor MS is the one that counts: no
 * cluster, or this agent holds the claim of the slot it checks the
 * monitor in.  Gauges (state, latency, ...) come only from there, so that
 * a sum over the agents counts each monitor once per location and no
 * agent's stale view of a monitor it handed over lingers; counters come
 * from every agent (each check is counted where it ran).
 */
static int
gauge_here(const struct cluster_run_stats *cs,
    const struct manager_monitor_stats *ms)
{
	struct cluster_run_monitor cm;

	return cs == NULL || (cluster_run_monitor(ms->name, &cm) == 0 &&
	    cm.checks_here);
}

/*
 * Per-monitor families, each a pass over the enabled monitors (a disabled
 * one exports nothing: its last state would otherwise linger after
 * enabled = false or a reload disabling it).
 */
static void
render_monitors(struct sbuf *b, const struct cluster_run_stats *cs)
{
	static const char *const phases[] = { "dns", "connect", "tls",
	    "first_byte" };
	struct manager_monitor_stats ms;
	const struct monitor *it;
	struct label l[5];
	size_t i, n;

	family(b, "watchpost_monitor_up", "gauge",
	    "1 if the monitor is up, 0 if down; absent while pending.");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms))
		if (ms.state != ST_PENDING && gauge_here(cs, &ms))
			sample(b, "watchpost_monitor_up", l,
			    monitor_labels(l, cs, &ms, NULL, NULL),
			    (uint64_t)mstate_is_up(ms.state));
	family(b, "watchpost_monitor_state", "gauge",
	    "1 for the state the monitor is in (as /api/monitors shows it), "
	    "0 for the others.");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms))
		for (i = 0; i < ST_COUNT && gauge_here(cs, &ms); i++)
			sample(b, "watchpost_monitor_state", l,
			    monitor_labels(l, cs, &ms, "state",
			    mstate_name((enum mstate)i)),
			    (uint64_t)(ms.shown == (enum mstate)i));
	family(b, "watchpost_monitor_latency_seconds", "gauge",
	    "Latency of the last check.");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms))
		if (ms.checked && ms.latency_ms >= 0 && gauge_here(cs, &ms))
			sample_double(b, "watchpost_monitor_latency_seconds", l,
			    monitor_labels(l, cs, &ms, NULL, NULL),
			    ms.latency_ms / 1000.0);
	family(b, "watchpost_monitor_checks_total", "counter",
	    "Finished checks by result.");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms)) {
		sample(b, "watchpost_monitor_checks_total", l,
		    monitor_labels(l, cs, &ms, "result", "up"), ms.n_up);
		sample(b, "watchpost_monitor_checks_total", l,
		    monitor_labels(l, cs, &ms, "result", "down"), ms.n_down);
	}
	family(b, "watchpost_monitor_phase_seconds", "gauge",
	    "Phase timings of the last check, from its start.");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms)) {
		if (!ms.checked || !gauge_here(cs, &ms))
			continue;
		for (i = 0; i < N_ELEMS(phases); i++) {
			if (ms.phase_ms[i] < 0)
				continue;
			n = monitor_labels(l, cs, &ms, "phase", phases[i]);
			sample_double(b, "watchpost_monitor_phase_seconds", l,
			    n, ms.phase_ms[i] / 1000.0);
		}
	}
	family(b, "watchpost_monitor_cert_expiry_timestamp_seconds", "gauge",
	    "When the peer certificate expires.");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms))
		if (ms.cert_expiry > 0 && gauge_here(cs, &ms))
			sample(b,
			    "watchpost_monitor_cert_expiry_timestamp_seconds",
			    l, monitor_labels(l, cs, &ms, NULL, NULL),
			    (uint64_t)ms.cert_expiry);
	family(b, "watchpost_monitor_measurement", "gauge",
	    "Named measurements of the last check (unit in the name's "
	    "suffix).");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms))
		for (i = 0; i < ms.n_meas && gauge_here(cs, &ms); i++) {
			n = monitor_labels(l, cs, &ms, "name", ms.meas[i].name);
			sample_double(b, "watchpost_monitor_measurement", l, n,
			    ms.meas[i].value);
		}
	family(b, "watchpost_monitor_skipped_total", "counter",
	    "Check slots skipped because the previous check was still "
	    "running.");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms))
		sample(b, "watchpost_monitor_skipped_total", l,
		    monitor_labels(l, cs, &ms, NULL, NULL), ms.skipped);
}

static void
render_manager(struct sbuf *b)
{
	struct manager_stats s;

	manager_get_stats(&s);
	family(b, "watchpost_schedule_lateness_seconds", "histogram",
	    "How late checks start after their slot.");
	histogram(b, "watchpost_schedule_lateness_seconds", NULL, 0,
	    s.lateness_le, MANAGER_N_LATE, s.lateness, s.lateness_sum);
	family(b, "watchpost_checks_skipped_total", "counter",
	    "All skipped check slots.");
	sample(b, "watchpost_checks_skipped_total", NULL, 0, s.skipped);
	family(b, "watchpost_monitors", "gauge", "Configured monitors.");
	sample(b, "watchpost_monitors", NULL, 0, s.monitors);
}

static void
render_opmon(struct sbuf *b)
{
	struct opmon_stats s;
	struct label l[2];
	unsigned c, o;

	opmon_get_stats(&s);
	family(b, "watchpost_operations_in_flight", "gauge",
	    "Operations running now.");
	for (c = 0; c < OPC__N; c++) {
		l[0] = (struct label){ "category", opmon_category_name(c) };
		sample(b, "watchpost_operations_in_flight", l, 1,
		    s.running[c]);
	}
	family(b, "watchpost_operations_total", "counter",
	    "Finished operations by outcome.");
	for (c = 0; c < OPC__N; c++)
		for (o = OP_RUNNING + 1; o < OP__N; o++) {
			l[0] = (struct label){ "category",
			    opmon_category_name(c) };
			l[1] = (struct label){ "outcome",
			    opmon_outcome_name(o) };
			sample(b, "watchpost_operations_total", l, 2,
			    s.totals[c][o]);
		}
	family(b, "watchpost_operation_duration_seconds", "histogram",
	    "Duration of finished operations.");
	for (c = 0; c < OPC__N; c++) {
		l[0] = (struct label){ "category", opmon_category_name(c) };
		histogram(b, "watchpost_operation_duration_seconds", l, 1,
		    s.duration_le, OPMON_N_BUCKETS, s.duration[c],
		    s.duration_sum[c]);
	}
	family(b, "watchpost_plugin_protocol_errors_total", "counter",
	    "Plugin completions that broke the exactly-once rule.");
	l[0] = (struct label){ "kind", "double" };
	sample(b, "watchpost_plugin_protocol_errors_total", l, 1,
	    s.double_completions);
	l[0] = (struct label){ "kind", "abandoned" };
	sample(b, "watchpost_plugin_protocol_errors_total", l, 1, s.abandoned);
}

/* Per [alert:NAME] section (a name, never a secret, is the label). */
static void
section_deliveries(void *arg, const struct alert_section *a)
{
	struct label l[2] = { { "alert", a->name }, { "outcome", "delivered" } };

	sample(arg, "watchpost_alert_deliveries_total", l, 2, a->delivered);
	l[1].value = "failed";
	sample(arg, "watchpost_alert_deliveries_total", l, 2, a->failed);
}

static void
section_pending(void *arg, const struct alert_section *a)
{
	struct label l[1] = { { "alert", a->name } };

	sample(arg, "watchpost_alert_pending", l, 1, a->pending);
}

static void
section_count(void *arg, const struct alert_section *a)
{
	(void)a;
	(*(size_t *)arg)++;
}

static void
render_alert_sections(struct sbuf *b)
{
	size_t n = 0;

	alert_each_section(section_count, &n);
	if (n == 0)
		return;
	family(b, "watchpost_alert_deliveries_total", "counter",
	    "Alerts per section: delivered (accepted), failed (attempts).");
	alert_each_section(section_deliveries, b);
	family(b, "watchpost_alert_pending", "gauge",
	    "Alerts in the outbox per section.");
	alert_each_section(section_pending, b);
}

static void
render_alerts(struct sbuf *b)
{
	struct alert_stats s;

	alert_get_stats(&s);
	family(b, "watchpost_alerts_pending", "gauge", "Alerts in the outbox.");
	sample(b, "watchpost_alerts_pending", NULL, 0, s.pending);
	family(b, "watchpost_alerts_delivered_total", "counter",
	    "Alerts delivered.");
	sample(b, "watchpost_alerts_delivered_total", NULL, 0, s.delivered);
	family(b, "watchpost_alert_attempts_failed_total", "counter",
	    "Failed delivery attempts.");
	sample(b, "watchpost_alert_attempts_failed_total", NULL, 0,
	    s.failed_attempts);
	family(b, "watchpost_alerts_dropped_total", "counter",
	    "Alerts dropped because their section was removed.");
	sample(b, "watchpost_alerts_dropped_total", NULL, 0, s.dropped);
	render_alert_sections(b);
}

static void
render_store(struct sbuf *b, struct store *st)
{
	struct store_stats s;
	uint64_t per[N_ELEMS(store_batch_le) + 1];
	size_t i;

	store_get_stats(st, &s);
	family(b, "watchpost_store_queue_depth", "gauge",
	    "Results waiting for the database writer.");
	sample(b, "watchpost_store_queue_depth", NULL, 0, s.queue_depth);
	family(b, "watchpost_store_written_total", "counter", "Checks written.");
	sample(b, "watchpost_store_written_total", NULL, 0, s.written);
	family(b, "watchpost_store_dropped_total", "counter",
	    "Results dropped because the queue was full.");
	sample(b, "watchpost_store_dropped_total", NULL, 0, s.dropped);
	family(b, "watchpost_store_shed_total", "counter",
	    "Queued check rows shed to make room for state changes and "
	    "alerts.");
	sample(b, "watchpost_store_shed_total", NULL, 0, s.shed);
	family(b, "watchpost_store_recreated_total", "counter",
	    "Times the database file was recreated after being deleted or "
	    "replaced.");
	sample(b, "watchpost_store_recreated_total", NULL, 0, s.recovered);
	family(b, "watchpost_store_write_errors_total", "counter",
	    "Failed write transactions.");
	sample(b, "watchpost_store_write_errors_total", NULL, 0,
	    s.write_errors);
	family(b, "watchpost_store_failing", "gauge",
	    "1 while the database rejects writes.");
	sample(b, "watchpost_store_failing", NULL, 0, s.failing != 0);
	/* The store keeps its buckets cumulative (store.h): undo that. */
	for (i = 0; i < N_ELEMS(per); i++)
		per[i] = s.batch_ms_bucket[i] -
		    (i > 0 ? s.batch_ms_bucket[i - 1] : 0);
	family(b, "watchpost_store_batch_seconds", "histogram",
	    "Duration of write transactions.");
	histogram(b, "watchpost_store_batch_seconds", NULL, 0, store_batch_le,
	    N_ELEMS(store_batch_le), per, s.batch_ms_sum / 1000.0);
}

static void
location_members(void *arg, const char *location, unsigned n)
{
	struct label l[1] = { { "location", location } };

	sample(arg, "watchpost_cluster_members", l, 1, n);
}

/* Cluster mode: the engine's health and, from the holder of each
 * multi-location monitor's @global slot only, its decision. */
static void
render_cluster(struct sbuf *b, const struct cluster_run_stats *cs)
{
	struct manager_monitor_stats ms;
	struct cluster_run_monitor cm;
	const struct monitor *it;
	struct label l[1];

	family(b, "watchpost_cluster_engine_up", "gauge",
	    "1 while this agent is a cluster member that is not fenced.");
	sample(b, "watchpost_cluster_engine_up", NULL, 0, (uint64_t)cs->up);
	family(b, "watchpost_cluster_fenced", "gauge",
	    "1 while the local lease deadline forbids this agent to start "
	    "checks or commit.");
	sample(b, "watchpost_cluster_fenced", NULL, 0, (uint64_t)cs->fenced);
	family(b, "watchpost_cluster_lease_remaining_seconds", "gauge",
	    "Time left of this agent's lease by its local deadline (fenced "
	    "max(1s, lease_ttl/6) before it ends).");
	sample_double(b, "watchpost_cluster_lease_remaining_seconds", NULL, 0,
	    cs->lease_remaining_s);
	family(b, "watchpost_cluster_members", "gauge",
	    "Live cluster members this agent sees, by location.");
	cluster_run_each_location(location_members, b);
	family(b, "watchpost_cluster_slots_owned", "gauge",
	    "Slots this agent holds the claim of.");
	sample(b, "watchpost_cluster_slots_owned", NULL, 0, cs->owned);
	family(b, "watchpost_cluster_config_mismatch", "gauge",
	    "Cluster members whose monitors differ from this agent's.");
	sample(b, "watchpost_cluster_config_mismatch", NULL, 0,
	    cs->config_mismatch);
	family(b, "watchpost_cluster_lost_total", "counter",
	    "Times this agent was fenced because etcd did not renew its "
	    "lease in time (cluster-lost).");
	sample(b, "watchpost_cluster_lost_total", NULL, 0, cs->lost_total);
	family(b, "watchpost_cluster_takeovers_total", "counter",
	    "Slots this agent claimed after another agent had held them "
	    "(failover, rebalancing).");
	sample(b, "watchpost_cluster_takeovers_total", NULL, 0,
	    cs->takeovers_total);
	family(b, "watchpost_cluster_claim_conflicts_total", "counter",
	    "Claims refused because another agent had claimed the slot "
	    "first.");
	sample(b, "watchpost_cluster_claim_conflicts_total", NULL, 0,
	    cs->claim_conflicts_total);
	family(b, "watchpost_cluster_decision", "gauge",
	    "A multi-location monitor's @global decision, 1 up, 0 down "
	    "(absent while pending), from the agent that makes it.");
	for (it = manager_monitor_next(NULL, &ms); it != NULL;
	    it = manager_monitor_next(it, &ms)) {
		if (cluster_run_monitor(ms.name, &cm) != 0 || !cm.decides_here ||
		    (cm.decision != ST_UP && cm.decision != ST_DOWN &&
		    cm.decision != ST_DEGRADED))
			continue;
		l[0] = (struct label){ "monitor", ms.name };
		sample(b, "watchpost_cluster_decision", l, 1,
		    (uint64_t)mstate_is_up((enum mstate)cm.decision));
	}
}

char *
metrics_render(struct store *st)
{
	struct sbuf b = { 0 };
	struct cluster_run_stats cst;
	const struct cluster_run_stats *cs = cluster_run_get_stats(&cst) == 0 ?
	    &cst : NULL;
	struct pool_stats ps;
	struct label l[2];
	char abi[32];

	snprintf(abi, sizeof(abi), "%d.%d", WP_ABI_MAJOR, WP_ABI_MINOR);
	family(&b, "watchpost_build_info", "gauge", "Build information.");
	l[0] = (struct label){ "version", PACKAGE_VERSION };
	l[1] = (struct label){ "abi", abi };
	sample(&b, "watchpost_build_info", l, 2, 1);
	render_monitors(&b, cs);
	render_manager(&b);
	render_opmon(&b);
	render_alerts(&b);
	if (st != NULL)
		render_store(&b, st);
	if (cs != NULL)
		render_cluster(&b, cs);
	pool_get_stats(&ps);
	family(&b, "watchpost_workers", "gauge",
	    "Worker threads for blocking plugins.");
	l[0] = (struct label){ "state", "total" };
	sample(&b, "watchpost_workers", l, 1, ps.threads);
	l[0] = (struct label){ "state", "busy" };
	sample(&b, "watchpost_workers", l, 1, ps.busy);
	l[0] = (struct label){ "state", "stuck" };
	sample(&b, "watchpost_workers", l, 1, ps.stuck);
	return sbuf_steal(&b);
}
