/*
 * alert -- alert sections and the outbox.
 *
 * A state change creates one delivery per alert section the monitor names.
 * Each delivery is written to the store's outbox in the same transaction as
 * the check that caused it and, once that transaction has committed,
 * delivered by the section's plugin under the operation monitor, retried
 * with exponential back-off (1 s doubling, capped at 5 min, or
 * $WATCHPOST_ALERT_BACKOFF_MAX_MS for tests) until a 2xx.  Per monitor and
 * section, deliveries go one at a time in the order they were raised: a
 * later one waits until the earlier ones are accepted.  Undelivered
 * alerts survive restarts.  A delivery never delays a check.
 *
 * Each alert carries the ABI 2.1 fields (plugin.h): since_us, repeat and
 * flags from the outcome (the manager's policy: since_ms is the episode's
 * start), target (alert_target_of() of its monitor, computed when the
 * configuration is applied), agent ([agent] name, else the host name);
 * location and status_url are NULL.  The outbox
 * payload keeps them all, so a retry after a restart sends the same alert.
 * Loop thread only.
 */
#ifndef CORE_ALERT_H
#define CORE_ALERT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config;
struct outcome;
struct store;
struct store_alert;
struct wp_diag;

/* Use ST (NULL: alerts disabled, as in --once) and load its outbox. */
int alert_init(struct store *st);

/* Reload step 1: configure new or changed [alert:*] sections of CFG into a
 * prepared set (errors to DIAG; WP_EINVAL).  Step 2: commit or abort.  The
 * set holds CFG (config_ref()); once committed, alerts take a monitor's
 * target (alert_target_of()) from its section in CFG, until the next
 * commit or alert_free(). */
int alert_prepare(const struct config *cfg, struct wp_diag *diag,
    void **prepared);
void alert_commit(void *prepared);
void alert_abort(void *prepared);

/*
 * The finished check O of a monitor whose alert sections are NAMES[0..N)
 * (every configured section when ALL).  If it alerts (o->alert: the
 * manager's policy), one delivery per section, in that order, each to
 * start once the store has committed its row (alert_released()).  Returns
 * those outbox rows for store_submit(), malloc'd (the caller frees the
 * array; the store takes over each payload), and their count in *N_OUT;
 * NULL and 0 when nothing alerts or alerts are off.
 */
struct store_alert *alert_raise(const struct outcome *o, int all,
    char *const *names, size_t n, size_t *n_out);

/* Outbox rows ROWS are committed, or can never be (the store refused
 * them): their deliveries may start.  Only id, monitor_id and alert_name
 * are read.  Rows of unknown deliveries are ignored. */
void alert_released(const struct store_alert *rows, size_t n);

/* Cluster mode: alerts name AGENT (the [cluster] name, in place of
 * [agent] name) and LOCATION; both copied; NULL, NULL: not in a cluster. */
void alert_set_cluster(const char *agent, const char *location);

/*
 * Cluster mode: the deliveries of ROWS (just raised) wait, besides their
 * outbox commit, for their transition's commit to etcd;
 * alert_cluster_settle() ends the wait for every such delivery of
 * MONITOR_ID: COMMITTED 1 lets them go, 0 drops them (another agent owns
 * the monitor now and alerts from the cluster's state).
 */
void alert_cluster_hold(const struct store_alert *rows, size_t n);
void alert_cluster_settle(int64_t monitor_id, int committed);

/* Stop retrying (shutdown); in-flight deliveries finish or time out. */
void alert_stop(void);
/* Deliveries in flight. */
unsigned alert_in_flight(void);
/* The outbox's counts, for /metrics (metrics.h). */
struct alert_stats {
	unsigned pending;          /* alerts in the outbox */
	uint64_t delivered;
	uint64_t failed_attempts;
	uint64_t dropped;          /* their section was removed */
};
void alert_get_stats(struct alert_stats *out);
void alert_free(void);

/*
 * group_window (watchpost.ini(5)): on a section whose plugin sets
 * WP_PLUGIN_F_GROUPS, a delivery that may start (its row committed, the
 * head of its chain) joins the section's forming group instead, which
 * goes out as one operation when the window, counted from its first
 * member, ends: req->alerts holds every member, oldest first.  Each keeps
 * its own outbox row and id; the group's success marks all its rows
 * delivered in one store update (store_submit_deliveries()), its failure
 * retries the same group with back-off.  A group holds at most one
 * delivery per (monitor, section) -- only chain heads join -- so the order
 * rule above holds.  After a restart the loaded rows regroup the same way.
 * On other plugins group_window has no effect (a -t warning).
 */

/* The monitor a test alert names (--test-alert, POST .../test). */
#define ALERT_TEST_MONITOR "watchpost-test"

/* The answer to a test alert: OK 1 when the receiver accepted it;
 * ANSWER (borrowed for the call) says what it answered: "delivered"
 * ("delivered (status 200)") or "failed: REASON (status N): DETAIL". */
typedef void (*alert_test_fn)(void *arg, int ok, const char *answer);

/*
 * Send one test alert (flags WP_ALERT_TEST, monitor ALERT_TEST_MONITOR,
 * state down, a message that says it is a test) through the configured
 * section NAME, outside the outbox: nothing is stored, nothing retried.
 * cb(arg, ...) runs once, later, on the loop.  0, WP_EINVAL (no such
 * section) or WP_EAGAIN (the agent is stopping); cb is not called then.
 */
int alert_test_start(const char *name, alert_test_fn cb, void *arg);

/*
 * watchpost --test-alert NAME: configure section NAME of CFG alone (the
 * loader and worker pool ready, alert_init() not needed), send the test
 * alert, run the loop until it is answered and print the answer as one
 * line to OUT.  0 delivered, 1 failed, WP_EINVAL (no such section, or it
 * does not configure: the problems in DIAG).  No database is opened.
 */
int alert_test_cli(const struct config *cfg, const char *name,
    struct wp_diag *diag, FILE *out);

/*
 * GET /api/alerts, malloc'd JSON (NULL: out of memory):
 *   {"pending": [...], "delivered": [...], "held": [...]}
 * pending: every alert in the outbox, by id: id, monitor, alert, state,
 * created (unix ms), attempts (failed so far), next_attempt (unix ms, or
 * null while in flight or waiting behind an older alert of its chain),
 * in_flight, grouped (in a group_window group), last_error (or absent).
 * delivered: the last 100 accepted since start, newest first (kept in
 * memory, not in the store): id, monitor, alert, state, created,
 * delivered (unix ms), attempts.  held: what the held-alert source adds
 * (alert_set_held_source()), [] without one.  No secret: a section's keys
 * are never shown, and last_error is the plugin's detail, which plugins
 * keep free of secrets (watchpost-plugin(3)).
 */
char *alert_api_json(void);

/*
 * The source of "held" in GET /api/alerts (the holds module: depends_on,
 * maintenance).  fn(arg, held) runs on the loop thread for each request
 * and appends one object per alert it holds to the JSON array HELD
 * (json_array_append_new()), each with at least "monitor", "alert",
 * "state", "created" (unix ms) and "why" (e.g. "suppressed: parent db is
 * down", "maintenance: sunday-patching"); nothing else of HELD is
 * touched, and nothing may be called back into alert.c from fn.  One
 * source; NULL removes it.
 */
struct json_t;
typedef void (*alert_held_fn)(void *arg, struct json_t *held);
void alert_set_held_source(alert_held_fn fn, void *arg);

/* Per section counters, for /metrics: fn(arg, s) once per section seen
 * since start (a removed section stays, as counters do), s borrowed. */
struct alert_section {
	const char *name;
	uint64_t delivered;      /* alerts accepted */
	uint64_t failed;         /* failed attempts, one per alert */
	unsigned pending;        /* in the outbox */
};
void alert_each_section(void (*fn)(void *arg, const struct alert_section *s),
    void *arg);

/* The target of a [monitor:] section for alerts (wp_alert.target),
 * malloc'd, or NULL when unknown: its url without userinfo, query and
 * fragment, else host[:port]. */
struct cfg_section;
char *alert_target_of(const struct cfg_section *s);

#endif
