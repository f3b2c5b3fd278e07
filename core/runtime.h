/*
 * runtime -- drives plugin operations.
 *
 * runtime_start() calls an asynchronous plugin's start() (or hands a
 * blocking plugin's check() to the worker pool), owns the deadline,
 * cancels through the plugin when it passes, enforces exactly-once
 * completion (it supplies the host's complete() service) and hands the
 * outcome to the caller's callback.  Each operation is registered in the
 * operation registry (opmon.h), which counts and shows it.
 *
 * Stuck work -- an operation already reported as timed out or cancelled
 * whose plugin has not returned: a worker blocked in check(), or a cancel
 * the plugin never completes -- is counted here, in one place, and limits
 * what a broken plugin may hold: an instance with a stuck blocking check,
 * or with 8 cancelled operations not completed, gets no new operation, and
 * one plugin may hold at most half the worker pool in stuck workers.  A
 * refused operation fails at once with WP_REASON_PLUGIN.  Stuck workers are
 * exported as watchpost_workers{state="stuck"}, abandoned operations (not
 * completed within the cancel grace) as "abandoned" in GET /api/monitor.
 *
 * Loop thread only, except runtime_complete().
 */
#ifndef CORE_RUNTIME_H
#define CORE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <watchpost/plugin.h>

#include "opmon.h"

struct configured;
struct plugin;

/*
 * A configured plugin instance, shared by the monitor (or alert section)
 * that owns it and every operation running on it.  The plugin's release()
 * runs when the last reference goes: never while an operation is in flight.
 */
struct instance {
	const struct plugin *plugin;
	void *inst;
	void *conf;      /* what inst was configured from (configure.h) */
	unsigned refs;
	unsigned stuck;  /* its operations that are stuck (see above) */
	int measurements_logged; /* dropped measurements were logged */
};

/* Wrap a built instance C (configure_section()) with one reference, the
 * caller's; the last unref releases both the instance and its conf.  */
struct instance *instance_new(const struct plugin *p,
    const struct configured *c);
void instance_ref(struct instance *in);
/* Drop a reference; NULL does nothing. */
void instance_unref(struct instance *in);

/*
 * Called once per runtime_start(), on the loop thread, never from inside
 * runtime_start() itself.  res is borrowed for the call, in the 2.0 form
 * (times in microseconds), and is the runtime's own copy of the plugin's
 * result: its detail, and its measurements -- valid ones only, at most
 * WP_MEASUREMENTS_MAX, each name already carrying its unit's suffix
 * ("rtt" in WP_UNIT_SECONDS is "rtt_seconds"; unit is kept), so they fit
 * struct store_measure as they are.  Its reason is in the enum; up,
 * degraded or down is reason_class(res->reason).  On timeout the reason is
 * WP_REASON_TIMEOUT, on cancel WP_REASON_CANCELED.  outcome is
 * OP_SUCCEEDED unless the class is down (OP_FAILED) or the operation timed
 * out or was cancelled.
 */
typedef void (*runtime_done_fn)(void *arg, const struct wp_result *res,
    enum op_outcome outcome);

/*
 * Run one operation on instance IN (referenced until the plugin has
 * completed it) with a deadline TIMEOUT_MS from now, registered in
 * category CAT as NAME (copied).  ALERT (alert plugins) is borrowed and
 * must stay valid until done() runs.  The plugin's struct wp_request, with
 * its detail buffer (WP_DETAIL_MAX bytes) and measurement buffer
 * (WP_MEASUREMENTS_MAX entries), is the operation's own and stays valid
 * until the plugin completes it.  Returns the operation (valid until
 * done() runs) -- it cannot fail: a plugin that refuses to start, or an
 * instance refused for stuck work, produces a failed result through
 * done().
 */
struct wp_op *runtime_start(struct instance *in, enum op_category cat,
    const char *name, int64_t timeout_ms, unsigned attempt,
    const struct wp_alert *alert, runtime_done_fn done, void *arg);

/*
 * runtime_start() for alert plugins, with the alerts ALERTS[0..N_ALERTS)
 * of one group (req->alert is ALERTS[0], req->alerts and n_alerts the
 * whole group; plugin.h 2.1).  ALERTS and each alert are borrowed and must
 * stay valid until done() runs (a single alert's array need not: it is
 * copied).  runtime_start() with an alert is this with one.
 */
struct wp_op *runtime_start_group(struct instance *in, enum op_category cat,
    const char *name, int64_t timeout_ms, unsigned attempt,
    const struct wp_alert *const *alerts, size_t n_alerts,
    runtime_done_fn done, void *arg);

/* Cancel an operation from runtime_start (monitor removed, shutdown).
 * done() runs with OP_CANCELED, soon, on the loop.  NULL, or an operation
 * already reported, does nothing. */
void runtime_cancel(struct wp_op *op);

/* Cancel every plugin operation not yet reported (the shutdown's drain
 * limit), as runtime_cancel does. */
void runtime_cancel_all(void);

/*
 * The host's complete() service (any thread), given to host_new() for
 * every plugin's table.  OP is the handle the plugin got in req->op: a
 * second completion, or one through a stale or invalid handle, is detected
 * without touching freed memory, logged and counted.  RES is copied before
 * this returns (see runtime_done_fn); measurements that break plugin.h's
 * rules (name [a-z][a-z0-9_]* of at most 48 bytes, unique, a finite value,
 * a known unit; at most WP_MEASUREMENTS_MAX) are dropped, with one log line
 * per monitor.  The blocking form's result is copied the same way after
 * check() returns.
 */
void runtime_complete(struct wp_op *op, const struct wp_result *res);

/* How long a plugin may take to complete after cancel before it is
 * reported as broken (abandoned): default 5000 ms, or
 * $WATCHPOST_CANCEL_GRACE_MS.  For tests. */
void runtime_set_cancel_grace_ms(int64_t ms);

/*
 * Hand inbound event EV (a push) to instance IN's plugin as monitor NAME,
 * on the loop thread, and -- when the plugin takes it -- call DONE(ARG,
 * res, outcome) before returning, with the result copied and checked
 * exactly as a completed operation's (the detail, the measurements with
 * their units' suffixes): so the caller records it through the path a
 * scheduled check takes.  Returns WP_OK; WP_EINVAL for a request the
 * plugin calls malformed (its message in ERR, nothing recorded);
 * WP_ENOTSUP when the plugin takes no events; WP_EINTERNAL when it failed
 * otherwise.  Not an operation: nothing is registered or timed.
 */
int runtime_inbound(struct instance *in, const char *name,
    const struct wp_inbound *ev, runtime_done_fn done, void *arg, char *err,
    size_t errlen);

#endif
