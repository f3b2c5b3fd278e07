/*
 * opmon -- the operation registry.
 *
 * Every long-running operation -- each check attempt, each alert delivery,
 * the retention job, store writes, start-up steps -- is registered here
 * with a name, a category, a start time and a deadline, and ends exactly
 * once as succeeded, failed, timed out or cancelled.  The registry keeps
 * the in-flight list and the counts that GET /api/monitor and /metrics
 * show.  It knows nothing of plugins: the runtime (runtime.h) drives plugin
 * operations and registers each one here.
 *
 * A core operation (opmon_begin) that passes its deadline is counted as
 * timed out: at the deadline when the loop is running, or when it ends
 * past it (start-up steps run before the loop does).  It cannot be
 * cancelled, so it leaves the in-flight list then but still ends through
 * opmon_end().
 *
 * Finished operations are kept only in bounded rings, so memory stays flat
 * however long the agent runs.  Loop thread only, except the _any calls.
 */
#ifndef CORE_OPMON_H
#define CORE_OPMON_H

#include <stdint.h>

struct opmon_op;

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
 * Register an operation the core performs itself, with a deadline
 * TIMEOUT_MS from now (see above for what passing it means).  NAME is
 * copied.  Never fails.  Loop thread, or before the loop runs.
 */
struct opmon_op *opmon_begin(enum op_category cat, const char *name,
    int64_t timeout_ms);

/*
 * Register an operation whose performer enforces the deadline itself (the
 * runtime: it cancels the plugin and ends the operation as timed out).
 * The registry only records it.  Never fails.  Loop thread.
 */
struct opmon_op *opmon_register(enum op_category cat, const char *name,
    int64_t timeout_ms);

/*
 * End OP (from opmon_begin or opmon_register) with OUTCOME; DETAIL
 * (copied, may be NULL) is kept with a failure.  OP is freed.  NULL does
 * nothing.  Loop thread.
 */
void opmon_end(struct opmon_op *op, enum op_outcome outcome,
    const char *detail);

/*
 * The same for a core operation performed on another thread (the store
 * writer's batches): begin allocates the operation and posts it to the
 * loop, end posts the outcome (DETAIL is copied).  Any thread; never
 * blocks.  Without a loop (unit tests) begin returns NULL and end(NULL)
 * does nothing.
 */
struct opmon_op *opmon_begin_any(enum op_category cat, const char *name,
    int64_t timeout_ms);
void opmon_end_any(struct opmon_op *op, enum op_outcome outcome,
    const char *detail);

/* Breaches of the plugin protocol, counted for the API and /metrics. */
enum opmon_breach {
	OPMON_DOUBLE_COMPLETION, /* a second, stale or invalid completion */
	OPMON_ABANDONED          /* never completed after cancel */
};
void opmon_count_breach(enum opmon_breach kind);

/* Number of operations in flight (all categories: -1, or one). */
unsigned opmon_running(int cat);

/* Forget the in-flight list at exit, after the loop drained: what is still
 * on it belongs to a plugin that never completed, and stays its memory. */
void opmon_shutdown(void);

/* GET /api/monitor: the summary as JSON (malloc'd). */
char *opmon_json(void);
/* The counts for /metrics (metrics.h).  Durations: per-bucket counts,
 * duration[c][i] in (le[i-1], le[i]] seconds, the last above le[]. */
#define OPMON_N_BUCKETS 13
struct opmon_stats {
	unsigned running[OPC__N];
	uint64_t totals[OPC__N][OP__N];          /* by outcome */
	const double *duration_le;               /* OPMON_N_BUCKETS bounds */
	uint64_t duration[OPC__N][OPMON_N_BUCKETS + 1];
	double duration_sum[OPC__N];             /* seconds */
	uint64_t double_completions, abandoned;  /* enum opmon_breach */
};
void opmon_get_stats(struct opmon_stats *out);

const char *opmon_outcome_name(enum op_outcome o);
const char *opmon_category_name(enum op_category c);

#endif
