/*
 * opmon -- the async-operation monitor.
 *
 * Every long-running operation -- each check attempt, each alert delivery,
 * the retention job, start-up steps -- is registered here with a name, a
 * category, a start time and a deadline, and ends exactly once as
 * succeeded, failed, timed out or cancelled.  Plugin operations are also
 * *driven* from here: opmon_run() calls the plugin's start() (or hands its
 * blocking check() to the worker pool), owns the deadline, cancels through
 * the plugin when it passes, and enforces exactly-once completion.
 *
 * Finished operations are kept only in bounded rings, so memory stays flat
 * however long the agent runs.  Loop thread only, except opmon_complete().
 */
#ifndef WP_OPMON_H
#define WP_OPMON_H

#include <stdint.h>

#include <watchpost/plugin.h>

struct configured;

struct plugin;
struct wp_buf;

enum op_outcome {
	OP_RUNNING = 0,
	OP_SUCCEEDED,
	OP_FAILED,
	OP_TIMED_OUT,
	OP_CANCELED,
	OP__N
};

enum op_category {
	OPC_CHECK = 0,
	OPC_ALERT,
	OPC_STORE,
	OPC_RETENTION,
	OPC_STARTUP,
	OPC__N
};

/*
 * A configured plugin instance, shared by the monitor (or alert section)
 * that owns it and every operation running on it.  The plugin's release()
 * runs when the last reference goes: never while an operation is in flight.
 */
struct instance {
	const struct plugin *plugin;
	void *inst;
	void *conf;         /* what inst was configured from (configure.h) */
	unsigned refs;
	unsigned stuck;     /* blocking checks past their deadline whose
	                       worker has not returned */
	unsigned unfinished; /* operations cancelled (or timed out) that the
	                        plugin has not completed yet */
};
/* Wrap a built instance (configure_section()) with one reference (the
 * caller's); the last unref releases both it and its conf. */
struct instance *instance_new(const struct plugin *p,
    const struct configured *c);
void instance_ref(struct instance *in);
void instance_unref(struct instance *in);

/*
 * Called once per opmon_run(), on the loop thread, never from inside
 * opmon_run() itself.  res is borrowed for the call: on timeout its reason
 * is WP_REASON_TIMEOUT, on cancel WP_REASON_CANCELED.
 */
typedef void (*op_done_fn)(void *arg, const struct wp_result *res,
    enum op_outcome outcome);

/*
 * Run one operation on instance IN (referenced until the plugin has completed
 * it) with a deadline TIMEOUT_MS from now.  NAME is copied.  ALERT (alert plugins) is borrowed and must
 * stay valid until done() runs.  Returns the operation handle (valid until
 * done() runs) -- it cannot fail: a plugin that refuses to start produces a
 * failed result through done().
 */
struct wp_op *opmon_run(struct instance *in,
    enum op_category cat, const char *name, int64_t timeout_ms,
    unsigned attempt, const struct wp_alert *alert, op_done_fn done,
    void *arg);

/* Cancel an operation started by opmon_run (monitor removed, shutdown).
 * done() runs with OP_CANCELED, soon, on the loop. */
void opmon_cancel(struct wp_op *op);

/*
 * The host's complete() service (any thread).  OP is the handle the plugin
 * got in req->op: a second completion, or one through a stale or invalid
 * handle, is detected without touching freed memory, logged and counted.
 */
void opmon_complete(struct wp_op *op, const struct wp_result *res);

/*
 * Operations the core itself performs: begin registers one with a deadline
 * (at which it is logged and counted as timed out -- it cannot be
 * cancelled); end records the outcome.  Loop thread.
 */
struct wp_op *opmon_begin(enum op_category cat, const char *name,
    int64_t timeout_ms);
void opmon_end(struct wp_op *op, enum op_outcome outcome,
    const char *detail);

/*
 * The same for a core operation performed on another thread (the store
 * writer's batches): begin allocates the operation and posts it to the
 * loop, end posts the outcome (DETAIL is copied).  Any thread; never
 * blocks.  Without a loop (unit tests) begin returns NULL and end(NULL)
 * does nothing.
 */
struct wp_op *opmon_begin_any(enum op_category cat, const char *name,
    int64_t timeout_ms);
void opmon_end_any(struct wp_op *op, enum op_outcome outcome,
    const char *detail);

/*
 * Cancel every plugin operation still in flight (checks and alert
 * deliveries: the shutdown's drain limit).  Each one's done() runs with
 * OP_CANCELED as opmon_cancel() promises; a plugin that does not complete
 * is handled as there.  Core operations, which cannot be cancelled, are
 * left alone.  Loop thread.
 */
void opmon_cancel_all(void);

/* Number of operations in flight (all categories, or one). */
unsigned opmon_running(int cat);

/* Stop accepting new plugin operations' grace waits and free what is
 * finished; called at exit after the loop drained. */
void opmon_shutdown(void);

/* GET /api/monitor: the summary as JSON (malloc'd). */
char *opmon_json(void);
/* Metrics lines for /metrics, appended to b. */
void opmon_metrics(struct wp_buf *b);

const char *opmon_outcome_name(enum op_outcome o);
const char *opmon_category_name(enum op_category c);

/* Tuning for tests: how long a plugin may take to complete after cancel
 * before it is reported as broken (default 5000 ms, or
 * $WATCHPOST_CANCEL_GRACE_MS).  A plugin instance with this many abandoned
 * operations cancelled but not completed (8), or a blocking one with a
 * check stuck past its deadline,
 * gets no new operation until they finish: each is failed at once with
 * WP_REASON_PLUGIN, so a broken plugin cannot exhaust memory or workers. */
void opmon_set_cancel_grace_ms(int64_t ms);

#endif
