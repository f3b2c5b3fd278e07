#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "configure.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "opmon.h"
#include "pool.h"
#include "util.h"

#define OP_MAGIC 0x4f504d4eu /* "OPMN" */
#define FINISHED_RING 256
#define TROUBLE_RING 32
#define STARTUP_KEEP 16
#define N_BUCKETS 13
/* Operations a plugin instance may leave unfinished before the host stops
 * starting new ones on it: a blocking check stuck past its deadline holds a
 * worker thread, a cancelled asynchronous one that never completes holds
 * its memory. */
#define STUCK_MAX 1
#define UNFINISHED_MAX 8
/* Plugins with blocking checks stuck past their deadline: at most half the
 * worker pool may be held by any one plugin, so a plugin that hangs on many
 * monitors at once cannot starve the others.  Loop thread only. */
#define STUCK_PLUGINS_MAX 64
static struct {
	const struct plugin *plugin;
	unsigned stuck;
} stuck_by_plugin[STUCK_PLUGINS_MAX];

/* The stuck-worker counter of plugin P (created on first use; NULL only
 * when more than STUCK_PLUGINS_MAX plugins are stuck at once). */
static unsigned *
plugin_stuck(const struct plugin *p)
{
	size_t i, free_i = STUCK_PLUGINS_MAX;

	for (i = 0; i < STUCK_PLUGINS_MAX; i++) {
		if (stuck_by_plugin[i].plugin == p)
			return &stuck_by_plugin[i].stuck;
		if (free_i == STUCK_PLUGINS_MAX && stuck_by_plugin[i].stuck == 0)
			free_i = i;
	}
	if (free_i == STUCK_PLUGINS_MAX)
		return NULL;
	stuck_by_plugin[free_i].plugin = p;
	return &stuck_by_plugin[free_i].stuck;
}

/* Upper bounds of the duration histogram, seconds. */
static const double bucket_le[N_BUCKETS] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
};

struct wp_op {
	uint32_t magic;
	uint64_t id;
	enum op_category cat;
	enum op_outcome outcome;
	char name[128];
	int64_t started_us;
	int64_t deadline_us;
	int64_t started_ms;       /* wall clock, for the API */
	uv_timer_t timer;         /* deadline, then the cancel grace */

	/* Plugin operations only. */
	const struct plugin *plugin;
	struct instance *instance;
	void *inst;
	void *opstate;
	struct wp_request req;
	op_done_fn done;
	void *done_arg;
	unsigned plugin_done : 1; /* the plugin completed it */
	unsigned reported : 1;    /* done() has run */
	unsigned in_start : 1;    /* inside start(): defer completion */
	unsigned blocking : 1;    /* on a worker thread */
	unsigned abandoned : 1;   /* gave up waiting for the plugin */
	unsigned stuck : 1;       /* blocking, reported, worker not back */
	unsigned awaiting : 1;    /* cancelled, the plugin has not completed */
	unsigned has_pending : 1;
	uint32_t slot;            /* handle slot, index + 1; 0: none */
	struct wp_result pending;
	char pending_detail[256]; /* also the detail of opmon_end_any() */
	enum op_outcome end_outcome; /* opmon_end_any(), read on the loop */

	struct wp_op *prev, *next; /* the in-flight list, oldest first */
};

/*
 * Plugins hold an operation through a handle, not its address: the slot
 * index and the slot's generation packed into the pointer-sized value they
 * pass back to complete() (plugins never dereference a struct wp_op).  A
 * completion whose generation no longer matches -- a second complete()
 * after the operation was freed, its memory maybe reused by another -- is
 * detected from this table alone, never by reading freed memory.  The table
 * grows to the most plugin operations ever in flight at once; freed slots
 * are reused.  Loop thread only.
 */
#define HANDLE_BITS (sizeof(uintptr_t) * 4)
#define HANDLE_MASK ((((uintptr_t)1) << HANDLE_BITS) - 1)

struct slot {
	struct wp_op *op;         /* NULL while free */
	uintptr_t gen;            /* bumped each time the slot is freed */
	uint32_t next_free;       /* free list: index + 1; 0 ends it */
	const struct plugin *last_plugin; /* the last freed occupant's, */
	char last_name[64];               /* for the log */
};
static struct slot *slots;
static uint32_t n_slots, cap_slots, free_slots;

/* A finished operation, as the rings keep it. */
struct op_record {
	char name[128];
	enum op_category cat;
	enum op_outcome outcome;
	int64_t started_ms;
	double duration_ms;
	char detail[160];
};

static struct wp_op *inflight_head, *inflight_tail;
static unsigned running[OPC__N];
static uint64_t totals[OPC__N][OP__N];
static uint64_t hist[OPC__N][N_BUCKETS + 1];
static double hist_sum[OPC__N];
static uint64_t next_id = 1;
static uint64_t double_completions, late_completions, abandoned_total;
static struct op_record finished[FINISHED_RING];
static unsigned finished_n, finished_pos;
static struct op_record trouble[TROUBLE_RING];
static unsigned trouble_n, trouble_pos;
/* The first STARTUP_KEEP start-up operations, kept for the life of the
 * process: the start-up steps come first, and checks would push them out
 * of the finished ring within a second. */
static struct op_record startup[STARTUP_KEEP];
static unsigned startup_n;
static int64_t cancel_grace_ms = -1; /* -1: not read yet */

static const char *const outcome_names[OP__N] = {
	"running", "succeeded", "failed", "timed_out", "canceled"
};
static const char *const category_names[OPC__N] = {
	"check", "alert", "store", "retention", "startup"
};

const char *
opmon_outcome_name(enum op_outcome o)
{
	return o < OP__N ? outcome_names[o] : "?";
}

const char *
opmon_category_name(enum op_category c)
{
	return c < OPC__N ? category_names[c] : "?";
}

void
opmon_set_cancel_grace_ms(int64_t ms)
{
	cancel_grace_ms = ms;
}

/* The cancel grace: 5 s, or $WATCHPOST_CANCEL_GRACE_MS (tests). */
static int64_t
grace_ms(void)
{
	const char *env;
	char *end;
	long long v;

	if (cancel_grace_ms >= 0)
		return cancel_grace_ms;
	cancel_grace_ms = 5000;
	if ((env = getenv("WATCHPOST_CANCEL_GRACE_MS")) != NULL) {
		v = strtoll(env, &end, 10);
		if (*env != '\0' && *end == '\0' && v >= 0 && v <= 3600000)
			cancel_grace_ms = v;
		else
			wp_warn("opmon: ignoring WATCHPOST_CANCEL_GRACE_MS=\"%s\"",
			    env);
	}
	return cancel_grace_ms;
}

unsigned
opmon_running(int cat)
{
	unsigned n = 0;
	int i;

	if (cat >= 0 && cat < OPC__N)
		return running[cat];
	for (i = 0; i < OPC__N; i++)
		n += running[i];
	return n;
}

/* Give OP a handle slot; returns the handle plugins see. */
static struct wp_op *
slot_take(struct wp_op *op)
{
	struct slot *s;
	uint32_t i;

	if (free_slots != 0) {
		i = free_slots - 1;
		free_slots = slots[i].next_free;
	} else {
		if (n_slots == cap_slots) {
			if (cap_slots >= HANDLE_MASK / 2) {
				wp_err("opmon: too many operations in flight");
				abort();
			}
			cap_slots = cap_slots ? cap_slots * 2 : 64;
			slots = wp_xrealloc(slots, cap_slots * sizeof(*slots));
		}
		i = n_slots++;
		memset(&slots[i], 0, sizeof(slots[i]));
	}
	s = &slots[i];
	s->op = op;
	op->slot = i + 1;
	return (struct wp_op *)((s->gen << HANDLE_BITS) | op->slot);
}

/* The slot of a freed operation: a later completion through the old
 * handle is now recognised as stale. */
static void
slot_release(struct wp_op *op)
{
	struct slot *s;

	if (op->slot == 0)
		return;
	s = &slots[op->slot - 1];
	s->op = NULL;
	s->gen = (s->gen + 1) & HANDLE_MASK;
	s->last_plugin = op->plugin;
	snprintf(s->last_name, sizeof(s->last_name), "%.*s",
	    (int)sizeof(s->last_name) - 1, op->name);
	s->next_free = free_slots;
	free_slots = op->slot;
	op->slot = 0;
}

/*
 * The live operation behind handle H, or NULL when H is stale or invalid;
 * then *prev is set to the slot whose previous occupant H named, if any.
 */
static struct wp_op *
slot_lookup(const struct wp_op *h, const struct slot **prev)
{
	uintptr_t v = (uintptr_t)h, gen = v >> HANDLE_BITS;
	uint32_t i = (uint32_t)(v & HANDLE_MASK);
	const struct slot *s;

	*prev = NULL;
	if (i == 0 || i > n_slots)
		return NULL;
	s = &slots[i - 1];
	if (s->op != NULL && s->gen == gen)
		return s->op;
	if (((s->gen - gen) & HANDLE_MASK) == 1 && s->last_plugin != NULL)
		*prev = s;
	return NULL;
}

/* A fresh operation, not yet known to the loop.  Any thread. */
static struct wp_op *
op_alloc(enum op_category cat, const char *name, int64_t timeout_ms)
{
	struct wp_op *op = wp_xcalloc(1, sizeof(*op));

	op->magic = OP_MAGIC;
	op->cat = cat;
	snprintf(op->name, sizeof(op->name), "%s", name);
	op->started_us = wp_now_us();
	op->started_ms = wp_wall_ms();
	op->deadline_us = op->started_us + timeout_ms * 1000;
	op->timer.data = op;
	return op;
}

/* Number it, put it in the in-flight list, ready its timer.  Loop thread. */
static void
op_link(struct wp_op *op)
{
	op->id = next_id++;
	uv_timer_init(wp_loop, &op->timer);
	op->prev = inflight_tail;
	if (inflight_tail)
		inflight_tail->next = op;
	else
		inflight_head = op;
	inflight_tail = op;
	running[op->cat]++;
}

static struct wp_op *
op_new(enum op_category cat, const char *name, int64_t timeout_ms)
{
	struct wp_op *op = op_alloc(cat, name, timeout_ms);

	op_link(op);
	return op;
}

static void
unlink_op(struct wp_op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else if (inflight_head == op)
		inflight_head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else if (inflight_tail == op)
		inflight_tail = op->prev;
	op->prev = op->next = NULL;
}

/* Count the outcome and keep it in the rings.  Once per operation. */
static void
record(struct wp_op *op, enum op_outcome outcome, const char *detail)
{
	double secs = (double)(wp_now_us() - op->started_us) / 1e6;
	struct op_record *r;
	int b;

	op->outcome = outcome;
	running[op->cat]--;
	totals[op->cat][outcome]++;
	for (b = 0; b < N_BUCKETS && secs > bucket_le[b]; b++)
		;
	hist[op->cat][b]++;
	hist_sum[op->cat] += secs;
	unlink_op(op);

	r = &finished[finished_pos];
	finished_pos = (finished_pos + 1) % FINISHED_RING;
	if (finished_n < FINISHED_RING)
		finished_n++;
	snprintf(r->name, sizeof(r->name), "%s", op->name);
	r->cat = op->cat;
	r->outcome = outcome;
	r->started_ms = op->started_ms;
	r->duration_ms = secs * 1000.0;
	snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
	if (op->cat == OPC_STARTUP && startup_n < STARTUP_KEEP)
		startup[startup_n++] = *r;
	if (outcome == OP_FAILED || outcome == OP_TIMED_OUT) {
		trouble[trouble_pos] = *r;
		trouble_pos = (trouble_pos + 1) % TROUBLE_RING;
		if (trouble_n < TROUBLE_RING)
			trouble_n++;
	}
}

static void
op_free_cb(uv_handle_t *h)
{
	struct wp_op *op = h->data;

	op->magic = 0;
	slot_release(op);
	instance_unref(op->instance);
	free(op);
}

struct instance *
instance_new(const struct plugin *p, const struct configured *c)
{
	struct instance *in = wp_xcalloc(1, sizeof(*in));

	in->plugin = p;
	in->inst = c->inst;
	in->conf = c->conf;
	in->refs = 1;
	return in;
}

void
instance_ref(struct instance *in)
{
	in->refs++;
}

void
instance_unref(struct instance *in)
{
	if (in == NULL || --in->refs > 0)
		return;
	configure_release(in->plugin, in->inst, in->conf);
	free(in);
}

/* Free the operation: only when both the plugin and the host are done. */
static void
op_release(struct wp_op *op)
{
	uv_timer_stop(&op->timer);
	uv_close((uv_handle_t *)&op->timer, op_free_cb);
}

static void
report(struct wp_op *op, const struct wp_result *res, enum op_outcome outcome)
{
	op->reported = 1;
	record(op, outcome, res->ok ? NULL : res->detail);
	if (op->done)
		op->done(op->done_arg, res, outcome);
}

/* The plugin's completion through handle H, on the loop thread. */
static void
complete_on_loop(struct wp_op *h, const struct wp_result *res)
{
	const struct slot *prev;
	struct wp_op *op = slot_lookup(h, &prev);

	if (op == NULL || op->plugin_done) {
		double_completions++;
		if (op != NULL || prev != NULL)
			wp_err("plugin %s: operation \"%s\" completed more than "
			    "once; ignoring the extra completion",
			    op ? op->plugin->desc.name : prev->last_plugin->desc.name,
			    op ? op->name : prev->last_name);
		else
			wp_err("a plugin completed an operation that does not "
			    "exist (a stale or invalid handle); ignored");
		return;
	}
	op->plugin_done = 1;
	if (op->stuck) {
		/* A blocking check's worker is back at last. */
		unsigned *ps = plugin_stuck(op->plugin);

		op->stuck = 0;
		op->instance->stuck--;
		if (ps != NULL && *ps > 0)
			(*ps)--;
		pool_stuck(-1);
	}
	if (op->in_start) {
		/* Completed from inside start(): finish after it returns. */
		op->has_pending = 1;
		op->pending = *res;
		snprintf(op->pending_detail, sizeof(op->pending_detail), "%s",
		    res->detail ? res->detail : "");
		op->pending.detail = res->detail ? op->pending_detail : NULL;
		return;
	}
	if (op->reported) {
		/* Timed out or cancelled earlier: the late result is dropped. */
		if (op->awaiting)
			op->instance->unfinished--;
		if (op->abandoned) {
			late_completions++;
			wp_warn("plugin %s: operation \"%s\" completed after it "
			    "was abandoned", op->plugin->desc.name, op->name);
		}
		op_release(op);
		return;
	}
	report(op, res, res->ok ? OP_SUCCEEDED : OP_FAILED);
	op_release(op);
}

struct posted_completion {
	struct wp_op *op;
	struct wp_result res;
	char detail[256];
};

static void
posted_complete(void *arg)
{
	struct posted_completion *pc = arg;

	complete_on_loop(pc->op, &pc->res);
	free(pc);
}

void
opmon_complete(struct wp_op *op, const struct wp_result *res)
{
	struct wp_result r = WP_RESULT_INIT;
	struct posted_completion *pc;
	size_t n;

	if (op == NULL || res == NULL)
		return;
	/* Copy only what the plugin's struct has. */
	n = res->size < sizeof(r) ? res->size : sizeof(r);
	memcpy(&r, res, n);
	r.size = sizeof(r);
	if (r.reason < 0 || r.reason >= WP_REASON__COUNT)
		r.reason = r.ok ? WP_REASON_OK : WP_REASON_CHECK;
	if (host_on_loop()) {
		complete_on_loop(op, &r);
		return;
	}
	pc = wp_xmalloc(sizeof(*pc));
	pc->op = op;
	pc->res = r;
	snprintf(pc->detail, sizeof(pc->detail), "%s", r.detail ? r.detail : "");
	pc->res.detail = r.detail ? pc->detail : NULL;
	host_post(posted_complete, pc);
}

static void
grace_cb(uv_timer_t *t)
{
	struct wp_op *op = t->data;

	/* Reported already; the plugin never completed after cancel. */
	op->abandoned = 1;
	abandoned_total++;
	wp_err("plugin %s: operation \"%s\" not completed %" PRId64 " ms after "
	    "it was cancelled; the plugin is broken (its memory is kept in "
	    "case it completes later; %u unfinished operation(s) on this "
	    "instance, new ones are refused at %d)", op->plugin->desc.name,
	    op->name, grace_ms(), op->instance->unfinished, UNFINISHED_MAX);
}

/* Stop an operation that is still running: at its deadline (TIMED_OUT)
 * or on request (CANCELED). */
static void
stop_op(struct wp_op *op, enum op_outcome outcome)
{
	struct wp_result r = WP_RESULT_INIT;
	char detail[256];
	double age_ms = (double)(wp_now_us() - op->started_us) / 1000.0;
	char dur[32];

	if (op->reported)
		return;
	wp_format_duration((op->deadline_us - op->started_us) / 1000, dur,
	    sizeof(dur));
	if (outcome == OP_TIMED_OUT) {
		wp_warn("operation \"%s\" (%s) timed out after %.0f ms "
		    "(deadline %s)", op->name, category_names[op->cat], age_ms,
		    dur);
		snprintf(detail, sizeof(detail), "timed out after %s", dur);
		r.reason = WP_REASON_TIMEOUT;
	} else {
		snprintf(detail, sizeof(detail), "cancelled after %.0f ms",
		    age_ms);
		r.reason = WP_REASON_CANCELED;
	}
	r.ok = 0;
	r.detail = detail;
	if (op->plugin == NULL) {
		/* A core operation: it can only be reported. */
		record(op, outcome, detail);
		op->reported = 1;
		return;
	}
	if (op->blocking) {
		/* The worker stays inside check(): count it, so the pool can
		 * grow and the instance gets no second worker meanwhile. */
		unsigned *ps = plugin_stuck(op->plugin);

		op->stuck = 1;
		op->instance->stuck++;
		if (ps != NULL)
			(*ps)++;
		pool_stuck(+1);
		report(op, &r, outcome);
		return; /* freed when the worker returns */
	}
	if (op->plugin_done) {
		/* Completed inside start(), not reported yet: never cancel a
		 * completed operation. */
		report(op, &r, outcome);
		op_release(op);
		return;
	}
	/* Ask the plugin to stop.  It completes inside cancel() or later;
	 * either way the host reports now, with the plugin's own words when
	 * it gave them synchronously. */
	op->in_start = 1;
	op->plugin->desc.cancel(op->inst, op->opstate);
	op->in_start = 0;
	if (op->has_pending) {
		if (op->pending.detail != NULL && op->pending.detail[0] &&
		    op->pending.reason == r.reason)
			r.detail = op->pending.detail;
		r.dns_ms = op->pending.dns_ms;
		r.connect_ms = op->pending.connect_ms;
		r.tls_ms = op->pending.tls_ms;
		r.first_byte_ms = op->pending.first_byte_ms;
	}
	report(op, &r, outcome);
	if (op->plugin_done) {
		op_release(op);
		return;
	}
	op->awaiting = 1;
	op->instance->unfinished++;
	uv_timer_start(&op->timer, grace_cb, (uint64_t)grace_ms(), 0);
}

static void
deadline_cb(uv_timer_t *t)
{
	struct wp_op *op = t->data;

	if (op->plugin == NULL) {
		/* Core operation overran: report it, but it still runs. */
		wp_warn("operation \"%s\" (%s) is past its deadline",
		    op->name, category_names[op->cat]);
		return;
	}
	stop_op(op, OP_TIMED_OUT);
}

void
opmon_cancel(struct wp_op *op)
{
	if (op == NULL || op->reported)
		return;
	stop_op(op, OP_CANCELED);
}

void
opmon_cancel_all(void)
{
	struct wp_op *op = inflight_head;

	/* A cancelled operation leaves the list, and its done() may end
	 * others: start again from the head after each one. */
	while (op != NULL) {
		if (op->plugin == NULL || op->reported) {
			op = op->next;
			continue;
		}
		stop_op(op, OP_CANCELED);
		op = inflight_head;
	}
}

struct blocking_job {
	struct wp_op *op;
	const struct plugin *plugin;
	void *inst;
	struct wp_request req;
};

static void
blocking_run(void *arg)
{
	struct blocking_job *j = arg;
	struct wp_result r = WP_RESULT_INIT;
	char msg[96];
	int rc;

	rc = j->plugin->desc.check(j->inst, &j->req, &r);
	if (rc != 0) {
		snprintf(msg, sizeof(msg), "plugin error %d", rc);
		r = (struct wp_result)WP_RESULT_INIT;
		r.reason = WP_REASON_PLUGIN;
		r.detail = msg;
	}
	opmon_complete(j->op, &r);
	free(j);
}

/* A deferred report for a completion that happened inside start(). */
static void
finish_pending(uv_timer_t *t)
{
	struct wp_op *op = t->data;

	report(op, &op->pending, op->pending.ok ? OP_SUCCEEDED : OP_FAILED);
	op_release(op);
}

/* Fail OP without starting it; reported from the loop (done() must not
 * run inside opmon_run). */
static void
refuse(struct wp_op *op, const char *detail)
{
	op->plugin_done = 1;
	op->has_pending = 1;
	op->pending = (struct wp_result)WP_RESULT_INIT;
	op->pending.reason = WP_REASON_PLUGIN;
	snprintf(op->pending_detail, sizeof(op->pending_detail), "%s", detail);
	op->pending.detail = op->pending_detail;
	uv_timer_start(&op->timer, finish_pending, 0, 0);
}

struct wp_op *
opmon_run(struct instance *in, enum op_category cat, const char *name,
    int64_t timeout_ms, unsigned attempt, const struct wp_alert *alert,
    op_done_fn done, void *arg)
{
	struct wp_op *op = op_new(cat, name, timeout_ms);
	const struct plugin *p = in->plugin;
	void *inst = in->inst;
	char msg[160];
	int rc;

	instance_ref(in);
	op->instance = in;
	op->plugin = p;
	op->inst = inst;
	op->done = done;
	op->done_arg = arg;
	op->req = (struct wp_request){
		.size = sizeof(struct wp_request),
		.op = slot_take(op),
		.monitor = op->name,
		.started_us = op->started_us,
		.deadline_us = op->deadline_us,
		.attempt = attempt,
		.alert = alert,
	};
	/* A broken plugin instance may not pile up threads or memory. */
	if (!p->async && in->stuck >= STUCK_MAX) {
		refuse(op, "not started: the plugin is still stuck in an "
		    "earlier check, past its deadline");
		return op;
	}
	if (!p->async) {
		struct pool_stats st;
		unsigned *ps = plugin_stuck(p);

		pool_get_stats(&st);
		if (ps == NULL || *ps >= st.max / 2) {
			snprintf(msg, sizeof(msg), "not started: plugin %s "
			    "already holds %u workers stuck past their "
			    "deadline", p->desc.name, ps ? *ps : 0);
			refuse(op, msg);
			return op;
		}
	}
	if (p->async && in->unfinished >= UNFINISHED_MAX) {
		snprintf(msg, sizeof(msg), "not started: the plugin has not "
		    "completed %u earlier operations it was asked to cancel",
		    in->unfinished);
		refuse(op, msg);
		return op;
	}
	if (!p->async) {
		struct blocking_job *j = wp_xmalloc(sizeof(*j));
		j->op = op->req.op;
		j->plugin = p;
		j->inst = inst;
		j->req = op->req;
		op->blocking = 1;
		uv_timer_start(&op->timer, deadline_cb, (uint64_t)timeout_ms, 0);
		pool_submit(blocking_run, j);
		return op;
	}
	op->in_start = 1;
	rc = p->desc.start(inst, &op->req, &op->opstate);
	op->in_start = 0;
	if (rc != 0) {
		/* Not accepted: the plugin must not complete it. */
		snprintf(msg, sizeof(msg), "plugin could not start the check "
		    "(error %d)", rc);
		refuse(op, msg);
		return op;
	}
	if (op->has_pending) {
		/* Completed inside start(): report from the loop. */
		uv_timer_start(&op->timer, finish_pending, 0, 0);
		return op;
	}
	uv_timer_start(&op->timer, deadline_cb, (uint64_t)timeout_ms, 0);
	return op;
}

struct wp_op *
opmon_begin(enum op_category cat, const char *name, int64_t timeout_ms)
{
	struct wp_op *op = op_new(cat, name, timeout_ms);

	uv_timer_start(&op->timer, deadline_cb, (uint64_t)timeout_ms, 0);
	return op;
}

void
opmon_end(struct wp_op *op, enum op_outcome outcome, const char *detail)
{
	if (op == NULL)
		return;
	if (!op->reported)
		record(op, outcome, detail);
	op_release(op);
}

/* ---- core operations run off the loop (the store writer) ---- */

static void
posted_link(void *arg)
{
	struct wp_op *op = arg;
	int64_t left_ms = (op->deadline_us - wp_now_us()) / 1000;

	op_link(op);
	uv_timer_start(&op->timer, deadline_cb,
	    (uint64_t)(left_ms > 0 ? left_ms : 0), 0);
}

static void
posted_end(void *arg)
{
	struct wp_op *op = arg;

	opmon_end(op, op->end_outcome,
	    op->pending_detail[0] ? op->pending_detail : NULL);
}

struct wp_op *
opmon_begin_any(enum op_category cat, const char *name, int64_t timeout_ms)
{
	struct wp_op *op;

	if (host_on_loop())
		return opmon_begin(cat, name, timeout_ms);
	if (wp_loop == NULL)
		return NULL;
	op = op_alloc(cat, name, timeout_ms);
	host_post(posted_link, op);
	return op;
}

void
opmon_end_any(struct wp_op *op, enum op_outcome outcome, const char *detail)
{
	if (op == NULL)
		return;
	if (host_on_loop()) {
		opmon_end(op, outcome, detail);
		return;
	}
	/* The loop reads these only in posted_end, after the post. */
	op->end_outcome = outcome;
	snprintf(op->pending_detail, sizeof(op->pending_detail), "%s",
	    detail ? detail : "");
	host_post(posted_end, op);
}

void
opmon_shutdown(void)
{
	/* Anything still linked belongs to a plugin that never completed;
	 * its memory stays with it (see grace_cb). */
	inflight_head = inflight_tail = NULL;
}

/* ---- rendering ---- */

static json_t *
record_json(const struct op_record *r)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:f, s:s?}", "name", r->name,
	    "category", category_names[r->cat], "outcome",
	    outcome_names[r->outcome], "started", (json_int_t)r->started_ms,
	    "duration_ms", r->duration_ms, "detail",
	    r->detail[0] ? r->detail : NULL);
}

char *
opmon_json(void)
{
	json_t *root, *counts, *bycat, *ops, *recent;
	int64_t now_us = wp_now_us(), now_ms = wp_wall_ms();
	struct wp_op *op;
	uint64_t sum[OP__N] = { 0 };
	unsigned i, c, o;
	char *out;

	for (c = 0; c < OPC__N; c++)
		for (o = 1; o < OP__N; o++)
			sum[o] += totals[c][o];
	root = json_object();
	json_object_set_new(root, "running", json_integer(opmon_running(-1)));
	json_object_set_new(root, "succeeded", json_integer((json_int_t)sum[OP_SUCCEEDED]));
	json_object_set_new(root, "failed", json_integer((json_int_t)sum[OP_FAILED]));
	json_object_set_new(root, "timed_out", json_integer((json_int_t)sum[OP_TIMED_OUT]));
	json_object_set_new(root, "canceled", json_integer((json_int_t)sum[OP_CANCELED]));
	bycat = json_object();
	for (c = 0; c < OPC__N; c++) {
		counts = json_object();
		json_object_set_new(counts, "running", json_integer(running[c]));
		for (o = 1; o < OP__N; o++)
			json_object_set_new(counts, outcome_names[o],
			    json_integer((json_int_t)totals[c][o]));
		json_object_set_new(bycat, category_names[c], counts);
	}
	json_object_set_new(root, "by_category", bycat);
	ops = json_array();
	for (op = inflight_head; op != NULL; op = op->next) {
		if (op->reported)
			continue;
		json_array_append_new(ops, json_pack("{s:I, s:s, s:s, s:I, s:I, s:I}",
		    "id", (json_int_t)op->id, "name", op->name, "category",
		    category_names[op->cat], "started",
		    (json_int_t)op->started_ms, "age_ms",
		    (json_int_t)((now_us - op->started_us) / 1000), "deadline",
		    (json_int_t)(now_ms + (op->deadline_us - now_us) / 1000)));
	}
	json_object_set_new(root, "operations", ops);
	recent = json_array();
	for (i = 0; i < trouble_n; i++) {
		unsigned k = (trouble_pos + TROUBLE_RING - 1 - i) % TROUBLE_RING;
		json_array_append_new(recent, record_json(&trouble[k]));
	}
	json_object_set_new(root, "recent_failures", recent);
	recent = json_array();
	for (i = 0; i < finished_n && i < 20; i++) {
		unsigned k = (finished_pos + FINISHED_RING - 1 - i) % FINISHED_RING;
		json_array_append_new(recent, record_json(&finished[k]));
	}
	json_object_set_new(root, "recent", recent);
	recent = json_array();
	for (i = 0; i < startup_n; i++)
		json_array_append_new(recent, record_json(&startup[i]));
	json_object_set_new(root, "startup", recent);
	json_object_set_new(root, "double_completions",
	    json_integer((json_int_t)double_completions));
	json_object_set_new(root, "abandoned",
	    json_integer((json_int_t)abandoned_total));
	out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}

void
opmon_metrics(struct wp_buf *b)
{
	unsigned c, o, k;
	uint64_t cum;

	wp_buf_puts(b, "# HELP watchpost_operations_in_flight Operations "
	    "running now.\n# TYPE watchpost_operations_in_flight gauge\n");
	for (c = 0; c < OPC__N; c++)
		wp_buf_printf(b, "watchpost_operations_in_flight{category=\"%s\"} "
		    "%u\n", category_names[c], running[c]);
	wp_buf_puts(b, "# HELP watchpost_operations_total Finished operations "
	    "by outcome.\n# TYPE watchpost_operations_total counter\n");
	for (c = 0; c < OPC__N; c++)
		for (o = 1; o < OP__N; o++)
			wp_buf_printf(b, "watchpost_operations_total{category="
			    "\"%s\",outcome=\"%s\"} %" PRIu64 "\n",
			    category_names[c], outcome_names[o], totals[c][o]);
	wp_buf_puts(b, "# HELP watchpost_operation_duration_seconds Duration "
	    "of finished operations.\n# TYPE "
	    "watchpost_operation_duration_seconds histogram\n");
	for (c = 0; c < OPC__N; c++) {
		cum = 0;
		for (k = 0; k < N_BUCKETS; k++) {
			cum += hist[c][k];
			wp_buf_printf(b, "watchpost_operation_duration_seconds_"
			    "bucket{category=\"%s\",le=\"%g\"} %" PRIu64 "\n",
			    category_names[c], bucket_le[k], cum);
		}
		cum += hist[c][N_BUCKETS];
		wp_buf_printf(b, "watchpost_operation_duration_seconds_bucket{"
		    "category=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
		    category_names[c], cum);
		wp_buf_printf(b, "watchpost_operation_duration_seconds_sum{"
		    "category=\"%s\"} %.6f\n", category_names[c], hist_sum[c]);
		wp_buf_printf(b, "watchpost_operation_duration_seconds_count{"
		    "category=\"%s\"} %" PRIu64 "\n", category_names[c], cum);
	}
	wp_buf_printf(b, "# HELP watchpost_plugin_protocol_errors_total "
	    "Plugin completions that broke the exactly-once rule.\n# TYPE "
	    "watchpost_plugin_protocol_errors_total counter\n"
	    "watchpost_plugin_protocol_errors_total{kind=\"double\"} %" PRIu64
	    "\nwatchpost_plugin_protocol_errors_total{kind=\"abandoned\"} %"
	    PRIu64 "\n", double_completions, abandoned_total);
}
