/*
 * manager -- the single source of truth for what runs.
 *
 * It turns a validated configuration into running monitors: instances
 * configured through their plugins, an absolute monotonic schedule per
 * monitor (next = due + interval), retries, and the state machine: each
 * finished check moves its monitor to its next state (outcome.h) and emits
 * one struct outcome, from which the --once table, the API and metrics,
 * alerts and the store each take what they need.  manager_apply() is both
 * start-up and SIGHUP reload: it applies the difference by monitor name.
 * Loop thread only.
 */
#ifndef CORE_MANAGER_H
#define CORE_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "outcome.h"

struct config;
struct store;
struct wp_diag;
struct monitor;

/* Once-mode result of one monitor. */
struct once_result {
	const char *name;
	const char *type;
	int done;
	enum mstate state;
	double latency_ms;
	int reason;
	int status_code;
	char detail[256];
};

/*
 * Start the manager.  ST is the store (NULL in --once mode: nothing is
 * written and no alert is sent).
 */
void manager_init(struct store *st);

/*
 * Apply CFG: configure new and changed sections through their plugins
 * (every error goes to DIAG); if anything fails, nothing changes and
 * WP_EINVAL is returned.  On success the manager owns CFG (the previous one
 * is freed) and 0 is returned.
 */
int manager_apply(struct config *cfg, struct wp_diag *diag);

/*
 * For a configuration config_load() rejected: hand each section whose
 * plugin can judge it (`configurable`) to the plugin's configure(), report
 * its problems to DIAG and release the instance at once; then sort DIAG by
 * line.  One report thus lists the core's and the plugins' problems.
 * Sections without a known plugin or with a required key missing are
 * skipped: configure() is promised a section whose keys passed the core's
 * key-table checks.  Changes nothing that runs; main thread.
 */
void manager_check(const struct config *cfg, struct wp_diag *diag);

/*
 * --once: run the monitors named in NAMES (all enabled ones when n == 0)
 * once each, with retries; DONE(arg) runs when all have finished.  Returns
 * the results array (owned by the manager) and its length in *n_out, or
 * NULL with an error in err if a name is unknown.
 */
struct once_result *manager_once(const char *const *names, size_t n,
    void (*done)(void *arg), void *arg, size_t *n_out, char *err,
    size_t errlen);

/* Stop scheduling; DRAINED(arg) runs once no check or delivery is in
 * flight (each one finishes or reaches its deadline). */
void manager_stop(void (*drained)(void *arg), void *arg);

/* Free everything (after the loop has stopped). */
void manager_free(void);

/* GET /api/monitors (loop thread; malloc'd). */
char *manager_monitors_json(void);

/* Scheduler numbers for /metrics (metrics.h).  Lateness: per-bucket
 * counts, lateness[i] in (le[i-1], le[i]] seconds, the last above le[]. */
#define MANAGER_N_LATE 9
struct manager_stats {
	const double *lateness_le;          /* MANAGER_N_LATE bounds */
	uint64_t lateness[MANAGER_N_LATE + 1];
	double lateness_sum;                /* seconds */
	uint64_t skipped;                   /* skipped slots, all monitors */
	size_t monitors;                    /* configured */
};
void manager_get_stats(struct manager_stats *out);

/* One enabled monitor, for /metrics.  name and type are borrowed: valid
 * until the loop next runs the manager (a reload frees them). */
/* One named measurement of a monitor's last check; NAME carries its unit's
 * suffix ("rtt_seconds"). */
struct manager_measure {
	char name[64];
	double value;
};

struct manager_monitor_stats {
	const char *name, *type;
	enum mstate state;      /* outcome.h */
	int checked;            /* a check has finished */
	double latency_ms;      /* last check; < 0: nothing measured */
	double phase_ms[4];     /* dns, connect, tls, first byte; < 0: none */
	int64_t cert_expiry;    /* Unix seconds; <= 0: none */
	uint64_t n_up, n_down;  /* finished checks by result */
	uint64_t skipped;       /* slots skipped while still running */
	const struct manager_measure *meas; /* last check's, n_meas of them;
	                                       valid until the next call */
	size_t n_meas;
	enum mstate shown;      /* state as shown: maintenance while a
	                           window or silence holds it (hold.h) */
};

/*
 * Iterate over the enabled monitors in config order (a disabled monitor
 * exports nothing).  PREV NULL starts; the return is the cursor for the
 * next call, with *OUT filled, or NULL when there are no more (*OUT is
 * then untouched).  Loop thread; no manager call in between.
 */
const struct monitor *manager_monitor_next(const struct monitor *prev,
    struct manager_monitor_stats *out);

/* Counts for tests and logs. */
size_t manager_monitor_count(void);

/* For the cluster engine (cluster-run.h); loop thread. */
/* 1 while monitor NAME has a check in flight or a retry pending (a slot
 * being handed over waits for it), else 0 (unknown names too). */
int manager_busy(const char *name);
/* Move NAME's next slot to DUE_US (monotonic; the wall-clock grid of a
 * claimed slot), grid point GRID_K (cluster.h; -1: none), and re-arm its
 * timer; later slots follow every interval from there, at GRID_K + 1, ...
 * (a check in flight keeps running; a slot that comes while it does is
 * skipped, as always), and each check's outcome carries its slot's grid
 * index (outcome.grid, stored as checks.grid).  0, or WP_EINVAL for an
 * unknown or disabled monitor. */
int manager_set_due(const char *name, int64_t due_us, int64_t grid_k);
/* NAME's policy state (policy.h) into *OUT; or replace it with PS, the
 * state the previous owner committed (reminders re-armed from it).  0,
 * or WP_EINVAL for an unknown monitor. */
struct policy_state;
int manager_policy_state(const char *name, struct policy_state *out);
int manager_seed_state(const char *name, const struct policy_state *ps);
/* The reason (WP_REASON_*) and detail (borrowed until the next check;
 * NULL: none) of the check that set NAME's state.  0 or WP_EINVAL. */
int manager_state_reason(const char *name, int *reason, const char **detail);
/*
 * Cluster mode, a multi-location monitor: the @global owner decided that
 * NAME went from PREV to STATE at SINCE_MS (unix ms; EPISODE_MS is when
 * the episode the alert is about began), from the locations
 * CONFIRMED_BY ("fra,nyc"; borrowed).  Raises its alerts as a check's
 * transition would (alert_on, holds), with REASON and DETAIL.  0, or
 * WP_EINVAL for an unknown monitor.
 */
int manager_cluster_alert(const char *name, enum mstate prev,
    enum mstate state, int64_t since_ms, int64_t episode_ms, int reason,
    const char *detail, const char *confirmed_by);

/* ---- for the admin API (admin.c); loop thread ---- */

/*
 * Check monitor NAME now: its next finished check (after its retries,
 * through the state machine, stored and alerted as any check) is handed
 * to CB(ARG, outcome) -- borrowed for the call --, or NULL if none comes
 * (the monitor is removed or changed, or the agent stops).  A check
 * already in flight is the one waited for.  Returns 0 (CB will be called
 * exactly once), WP_EINVAL for an unknown name, WP_EAGAIN while stopping.
 */
int manager_check_now(const char *name, void (*cb)(void *arg,
    const struct outcome *o), void *arg);

/* Monitor NAME as GET /api/monitors shows it (a new jansson reference),
 * or NULL. */
struct json_t;
struct json_t *manager_monitor_json(const char *name);

/* The configuration in force (owned by the manager; valid until the next
 * manager_apply()), or NULL before the first. */
const struct config *manager_config(void);

/*
 * GET or POST /push/TOKEN from the API (its routes->push; loop thread):
 * the push goes to the monitor whose plugin's route_key() is TOKEN and is
 * recorded as a finished check of it, through the same outcome as a
 * scheduled check.  Answers REQ->job: 200 {"ok":true,"monitor","state",
 * "recorded"}, 400 {"error": the plugin's message}, 404 for a token no
 * monitor has, 503 while stopping.
 */
struct api_request;
void manager_push(void *arg, const struct api_request *req);

#endif
