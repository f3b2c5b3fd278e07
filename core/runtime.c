#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "configure.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "opmon.h"
#include "pool.h"
#include "runtime.h"
#include "util.h"

#define OP_MAGIC 0x52554e4fu /* "RUNO" */
/* Stuck operations an instance may hold before it gets no new one: a
 * blocking check stuck past its deadline holds a worker thread, a
 * cancelled asynchronous one that never completes holds its memory. */
#define STUCK_MAX 1
#define UNFINISHED_MAX 8
/* Plugins with blocking checks stuck past their deadline: at most half the
 * worker pool may be held by any one plugin, so a plugin that hangs on many
 * monitors at once cannot starve the others. */
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

/* The longest measurement name a plugin may give, and room for it with
 * the longest unit suffix ("_seconds") and the NUL. */
#define MEAS_NAME_MAX 48
#define MEAS_NAME_SIZE 64

/*
 * A result copied out of the plugin's memory: r points into the fields
 * below (detail, and the measurements with their names suffixed by the
 * unit), so it outlives the plugin's buffers.  dropped says which
 * measurements were not kept and why ("" if none), for the monitor's one
 * log line.
 */
struct copy {
	struct wp_result r;
	char detail[WP_DETAIL_MAX];
	struct wp_measurement m[WP_MEASUREMENTS_MAX];
	char names[WP_MEASUREMENTS_MAX][MEAS_NAME_SIZE];
	char dropped[160];
};

struct wp_op {
	uint32_t magic;
	struct opmon_op *reg;     /* the registry's record, until reported */
	enum op_category cat;
	char name[128];
	int64_t started_us;
	int64_t deadline_us;
	uv_timer_t timer;         /* deadline, then the cancel grace */
	const struct plugin *plugin;
	struct instance *instance;
	void *opstate;
	struct wp_request req;
	runtime_done_fn done;
	void *done_arg;
	unsigned plugin_done : 1; /* the plugin completed it */
	unsigned reported : 1;    /* done() has run */
	unsigned in_start : 1;    /* inside start() or cancel(): defer */
	unsigned blocking : 1;    /* on a worker thread */
	unsigned abandoned : 1;   /* gave up waiting for the plugin */
	unsigned stuck : 1;       /* reported, the plugin has not returned */
	unsigned has_pending : 1;
	uint32_t slot;            /* handle slot, index + 1; 0: none */
	const struct wp_alert *one_alert; /* req.alerts of a single alert */
	/*
	 * The large buffers last: runtime_start() zeroes only the fields above
	 * (OP_ZEROED), as zeroing about 3 kB per check cost more instructions
	 * than the rest of the operation's set-up.
	 */
	struct copy pending;      /* a completion not reported yet (has_pending) */
	/* The request's host-owned buffers (req.detail, req.measurements). */
	char req_detail[WP_DETAIL_MAX];
	struct wp_measurement req_meas[WP_MEASUREMENTS_MAX];
};
#define OP_ZEROED offsetof(struct wp_op, pending)

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
static int64_t cancel_grace_ms = -1; /* -1: not read yet */

void
runtime_set_cancel_grace_ms(int64_t ms)
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
			log_warn("runtime: ignoring WATCHPOST_CANCEL_GRACE_MS=\"%s\"",
			    env);
	}
	return cancel_grace_ms;
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
				log_err("runtime: too many operations in flight");
				abort();
			}
			cap_slots = cap_slots ? cap_slots * 2 : 64;
			slots = xrealloc(slots, cap_slots * sizeof(*slots));
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


/*
 * Stuck work is counted here and nowhere else: the operation's flag, its
 * instance's count, and for a blocking check its plugin's share of the
 * pool and the pool's own count (so the pool can grow past the workers it
 * lost).  ON: OP was reported but its plugin has not returned; off: it has.
 */
static void
stuck_set(struct wp_op *op, int on)
{
	unsigned *ps;

	if (op->stuck == (on != 0))
		return;
	op->stuck = on != 0;
	if (on)
		op->instance->stuck++;
	else
		op->instance->stuck--;
	if (!op->blocking)
		return;
	ps = plugin_stuck(op->plugin);
	if (ps != NULL && on)
		(*ps)++;
	else if (ps != NULL && *ps > 0)
		(*ps)--;
	pool_stuck(on ? +1 : -1);
}

/* Unit suffixes, indexed by enum wp_unit (plugin.h). */
static const char *const unit_suffix[] = { "", "_seconds", "_bytes", "_ratio" };
#define N_UNITS (sizeof(unit_suffix) / sizeof(unit_suffix[0]))

/* Why measurement M of a result cannot be kept (KEPT: the names kept so
 * far, N of them, each RAWLEN[i] bytes before its suffix), or NULL. */
static const char *
measurement_fault(const struct wp_measurement *m, char kept[][MEAS_NAME_SIZE],
    const size_t *rawlen, size_t n)
{
	size_t len, i;

	if (m->name == NULL)
		return "no name";
	len = strnlen(m->name, MEAS_NAME_MAX + 1);
	if (len > MEAS_NAME_MAX)
		return "a name longer than 48 bytes";
	if (len == 0 || m->name[0] < 'a' || m->name[0] > 'z')
		return "a name not of the form [a-z][a-z0-9_]*";
	for (i = 1; i < len; i++)
		if (!((m->name[i] >= 'a' && m->name[i] <= 'z') ||
		    (m->name[i] >= '0' && m->name[i] <= '9') ||
		    m->name[i] == '_'))
			return "a name not of the form [a-z][a-z0-9_]*";
	if (!isfinite(m->value))
		return "a value that is not finite";
	if (m->unit < 0 || (size_t)m->unit >= N_UNITS)
		return "an unknown unit";
	for (i = 0; i < n; i++)
		if (rawlen[i] == len && memcmp(kept[i], m->name, len) == 0)
			return "a name given twice";
	return NULL;
}

/*
 * Copy RES (the plugin's, read by its own size) into C, deeply: its detail
 * (cut at WP_DETAIL_MAX - 1 bytes) and its valid measurements, at most
 * WP_MEASUREMENTS_MAX, each name with its unit's suffix appended.  A reason
 * outside the enum becomes WP_REASON_PLUGIN.  Any thread: touches only C
 * and the plugin's memory.
 */
static void
copy_result(struct copy *c, const struct wp_result *res)
{
	const struct wp_measurement *m;
	size_t n, i, kept = 0, bad = 0, rawlen[WP_MEASUREMENTS_MAX];
	const char *why, *first_why = NULL, *first_name = NULL;
	const char *suffix;

	c->r = (struct wp_result)WP_RESULT_INIT;
	n = res->size < sizeof(c->r) ? res->size : sizeof(c->r);
	memcpy(&c->r, res, n);
	c->r.size = sizeof(c->r);
	if (c->r.reason < 0 || c->r.reason >= WP_REASON__COUNT)
		c->r.reason = WP_REASON_PLUGIN;
	if (c->r.detail != NULL) {
		n = strnlen(c->r.detail, sizeof(c->detail) - 1);
		memcpy(c->detail, c->r.detail, n);
		c->detail[n] = '\0';
		c->r.detail = c->detail;
	}
	m = c->r.measurements;
	n = m != NULL ? c->r.n_measurements : 0;
	for (i = 0; i < n; i++) {
		why = kept == WP_MEASUREMENTS_MAX ? "more than 16 measurements" :
		    measurement_fault(&m[i], c->names, rawlen, kept);
		if (why != NULL) {
			if (bad++ == 0) {
				first_why = why;
				first_name = m[i].name;
			}
			continue;
		}
		/* Checked above: name and suffix fit MEAS_NAME_SIZE.  memcpy, not
		 * snprintf, which cost a thousand instructions a name. */
		rawlen[kept] = strlen(m[i].name);
		suffix = unit_suffix[m[i].unit];
		memcpy(c->names[kept], m[i].name, rawlen[kept]);
		memcpy(c->names[kept] + rawlen[kept], suffix,
		    strlen(suffix) + 1);
		c->m[kept] = m[i];
		c->m[kept].name = c->names[kept];
		kept++;
	}
	c->r.measurements = kept ? c->m : NULL;
	c->r.n_measurements = kept;
	c->dropped[0] = '\0';
	if (bad != 0)
		snprintf(c->dropped, sizeof(c->dropped), "%zu measurement(s) "
		    "dropped; the first, \"%s\": %s", bad,
		    first_name ? QSTR(first_name) : "", first_why);
}

/* *DST = *SRC, with DST's pointers into its own fields. */
static void
copy_move(struct copy *dst, const struct copy *src)
{
	size_t i;

	*dst = *src;
	if (src->r.detail != NULL)
		dst->r.detail = dst->detail;
	if (src->r.n_measurements != 0)
		dst->r.measurements = dst->m;
	for (i = 0; i < src->r.n_measurements; i++)
		dst->m[i].name = dst->names[i];
}

/* OP_SUCCEEDED unless the reason's class is down: a degraded target still
 * answered the check. */
static enum op_outcome
outcome_of(const struct wp_result *res)
{
	return reason_class(res->reason) == WP_CLASS_DOWN ? OP_FAILED :
	    OP_SUCCEEDED;
}

struct instance *
instance_new(const struct plugin *p, const struct configured *c)
{
	struct instance *in = xcalloc(1, sizeof(*in));

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

static void
op_free_cb(uv_handle_t *h)
{
	struct wp_op *op = h->data;

	op->magic = 0;
	slot_release(op);
	instance_unref(op->instance);
	free(op);
}

/* Free the operation: only when both the plugin and the host are done. */
static void
op_release(struct wp_op *op)
{
	uv_timer_stop(&op->timer);
	uv_close((uv_handle_t *)&op->timer, op_free_cb);
}

/* The outcome, once: to the registry, then to the caller. */
static void
report(struct wp_op *op, const struct wp_result *res, enum op_outcome outcome)
{
	op->reported = 1;
	opmon_end(op->reg, outcome, reason_class(res->reason) == WP_CLASS_UP ?
	    NULL : res->detail);
	op->reg = NULL;
	if (op->done)
		op->done(op->done_arg, res, outcome);
}

/* The plugin's completion through handle H, copied into C, on the loop
 * thread. */
static void
complete_on_loop(struct wp_op *h, const struct copy *c)
{
	const struct slot *prev;
	struct wp_op *op = slot_lookup(h, &prev);

	if (op == NULL || op->plugin_done) {
		opmon_count_breach(OPMON_DOUBLE_COMPLETION);
		if (op != NULL || prev != NULL)
			log_err("plugin %s: operation \"%s\" completed more than "
			    "once; ignoring the extra completion",
			    op ? op->plugin->desc.name : prev->last_plugin->desc.name,
			    op ? op->name : prev->last_name);
		else
			log_err("a plugin completed an operation that does not "
			    "exist (a stale or invalid handle); ignored");
		return;
	}
	op->plugin_done = 1;
	stuck_set(op, 0);
	if (c->dropped[0] != '\0' && !op->instance->measurements_logged) {
		op->instance->measurements_logged = 1;
		log_warn("plugin %s: \"%s\": %s (logged once per monitor)",
		    op->plugin->desc.name, op->name, c->dropped);
	}
	if (op->in_start) {
		/* Completed from inside start() or cancel(): finish after it
		 * returns. */
		op->has_pending = 1;
		copy_move(&op->pending, c);
		return;
	}
	if (op->reported) {
		/* Timed out or cancelled earlier: the late result is dropped. */
		if (op->abandoned)
			log_warn("plugin %s: operation \"%s\" completed after it "
			    "was abandoned", op->plugin->desc.name, op->name);
		op_release(op);
		return;
	}
	report(op, &c->r, outcome_of(&c->r));
	op_release(op);
}

struct posted_completion {
	struct wp_op *op;
	struct copy c;
};

static void
posted_complete(void *arg)
{
	struct posted_completion *pc = arg;

	complete_on_loop(pc->op, &pc->c);
	free(pc);
}

void
runtime_complete(struct wp_op *op, const struct wp_result *res)
{
	struct posted_completion *pc;
	struct copy c;

	if (op == NULL || res == NULL)
		return;
	/* The copy is made before returning: the plugin may reuse or free
	 * its memory, and the request's buffers, from here on. */
	if (host_on_loop()) {
		copy_result(&c, res);
		complete_on_loop(op, &c);
		return;
	}
	pc = xmalloc(sizeof(*pc));
	pc->op = op;
	copy_result(&pc->c, res);
	host_post(posted_complete, pc);
}

static void
grace_cb(uv_timer_t *t)
{
	struct wp_op *op = t->data;

	/* Reported already; the plugin never completed after cancel. */
	op->abandoned = 1;
	opmon_count_breach(OPMON_ABANDONED);
	log_err("plugin %s: operation \"%s\" not completed %" PRId64 " ms "
	    "after it was cancelled; the plugin is broken (its memory is "
	    "kept in case it completes later; %u stuck operation(s) on "
	    "this instance, new ones are refused at %d)", op->plugin->desc.name,
	    op->name, grace_ms(), op->instance->stuck, UNFINISHED_MAX);
}


/* Stop an operation that is still running: at its deadline (TIMED_OUT)
 * or on request (CANCELED). */
static void
stop_op(struct wp_op *op, enum op_outcome outcome)
{
	struct wp_result r = WP_RESULT_INIT;
	char detail[256];
	double age_ms = (double)(mono_us() - op->started_us) / 1000.0;
	char dur[32];

	if (op->reported)
		return;
	format_duration((op->deadline_us - op->started_us) / 1000, dur,
	    sizeof(dur));
	if (outcome == OP_TIMED_OUT) {
		log_warn("operation \"%s\" (%s) timed out after %.0f ms "
		    "(deadline %s)", op->name, opmon_category_name(op->cat),
		    age_ms, dur);
		snprintf(detail, sizeof(detail), "timed out after %s", dur);
		r.reason = WP_REASON_TIMEOUT;
	} else {
		snprintf(detail, sizeof(detail), "cancelled after %.0f ms",
		    age_ms);
		r.reason = WP_REASON_CANCELED;
	}
	r.detail = detail;
	if (op->blocking && !op->plugin_done) {
		/* The worker stays inside check(): the pool can grow and the
		 * instance gets no second worker meanwhile. */
		stuck_set(op, 1);
		report(op, &r, outcome);
		return; /* freed when the worker returns */
	}
	if (op->plugin_done) {
		/* Completed (inside start(), or a refusal), not reported yet:
		 * never cancel a completed operation. */
		report(op, &r, outcome);
		op_release(op);
		return;
	}
	/* Ask the plugin to stop.  It completes inside cancel() or later;
	 * either way the host reports now, with the plugin's own words when
	 * it gave them synchronously. */
	op->in_start = 1;
	op->plugin->desc.cancel(op->instance->inst, op->opstate);
	op->in_start = 0;
	if (op->has_pending) {
		if (op->pending.r.detail != NULL && op->pending.r.detail[0] &&
		    op->pending.r.reason == r.reason)
			r.detail = op->pending.r.detail;
		r.dns_us = op->pending.r.dns_us;
		r.connect_us = op->pending.r.connect_us;
		r.tls_us = op->pending.r.tls_us;
		r.first_byte_us = op->pending.r.first_byte_us;
	}
	report(op, &r, outcome);
	if (op->plugin_done) {
		op_release(op);
		return;
	}
	stuck_set(op, 1);
	uv_timer_start(&op->timer, grace_cb, (uint64_t)grace_ms(), 0);
}

static void
deadline_cb(uv_timer_t *t)
{
	stop_op(t->data, OP_TIMED_OUT);
}

void
runtime_cancel(struct wp_op *op)
{
	if (op == NULL || op->reported)
		return;
	stop_op(op, OP_CANCELED);
}

void
runtime_cancel_all(void)
{
	uint32_t i;
	int again = 1;

	/* A cancelled operation's done() may end others or start new ones
	 * in free slots: pass again until a pass finds none left. */
	while (again) {
		again = 0;
		for (i = 0; i < n_slots; i++) {
			if (slots[i].op == NULL || slots[i].op->reported)
				continue;
			stop_op(slots[i].op, OP_CANCELED);
			again = 1;
		}
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
	runtime_complete(j->op, &r);
	free(j);
}

/* A deferred report for a completion that happened inside start(). */
static void
finish_pending(uv_timer_t *t)
{
	struct wp_op *op = t->data;

	report(op, &op->pending.r, outcome_of(&op->pending.r));
	op_release(op);
}

/* The report of a start() that had nothing to judge yet (WP_EAGAIN from
 * an event-fed plugin): cancelled, so the caller records nothing. */
static void
finish_skipped(uv_timer_t *t)
{
	struct wp_op *op = t->data;
	struct wp_result r = WP_RESULT_INIT;

	r.reason = WP_REASON_CANCELED;
	r.detail = "nothing to judge yet (the first push is not due)";
	report(op, &r, OP_CANCELED);
	op_release(op);
}

/* Fail OP without starting it; reported from the loop (done() must not
 * run inside runtime_start). */
static void
refuse(struct wp_op *op, const char *detail)
{
	struct wp_result r = WP_RESULT_INIT;

	r.reason = WP_REASON_PLUGIN;
	r.detail = detail;
	op->plugin_done = 1;
	op->has_pending = 1;
	copy_result(&op->pending, &r);
	uv_timer_start(&op->timer, finish_pending, 0, 0);
}

/* Why instance IN may get no new operation now, or NULL.  MSG: a buffer. */
static const char *
refusal(const struct instance *in, char *msg, size_t len)
{
	const struct plugin *p = in->plugin;
	struct pool_stats st;
	unsigned *ps;

	if (p->async) {
		if (in->stuck < UNFINISHED_MAX)
			return NULL;
		snprintf(msg, len, "not started: the plugin has not completed "
		    "%u earlier operations it was asked to cancel", in->stuck);
		return msg;
	}
	if (in->stuck >= STUCK_MAX)
		return "not started: the plugin is still stuck in an earlier "
		    "check, past its deadline";
	ps = plugin_stuck(p);
	pool_get_stats(&st);
	if (ps != NULL && *ps < st.max / 2)
		return NULL;
	snprintf(msg, len, "not started: plugin %s already holds %u workers "
	    "stuck past their deadline", p->desc.name, ps ? *ps : 0);
	return msg;
}

struct wp_op *
runtime_start_group(struct instance *in, enum op_category cat,
    const char *name, int64_t timeout_ms, unsigned attempt,
    const struct wp_alert *const *alerts, size_t n_alerts,
    runtime_done_fn done, void *arg)
{
	const struct wp_alert *alert = n_alerts > 0 ? alerts[0] : NULL;
	struct wp_op *op = xmalloc(sizeof(*op));
	const struct plugin *p = in->plugin;
	const char *why;
	char msg[160];
	int rc;

	memset(op, 0, OP_ZEROED);
	op->req_detail[0] = '\0';
	op->magic = OP_MAGIC;
	op->reg = opmon_register(cat, name, timeout_ms);
	op->cat = cat;
	str_copy(op->name, sizeof(op->name), name);
	op->started_us = mono_us();
	op->deadline_us = op->started_us + timeout_ms * 1000;
	uv_timer_init(main_loop, &op->timer);
	/* The deadline counts from now, and libuv's timers from the loop's
	 * cached time, which is stale when an operation starts from a
	 * long step (the start-up's outbox, a reload): refresh it, or the
	 * deadline comes early (seen: 228 ms of a 2 s one under valgrind). */
	uv_update_time(main_loop);
	op->timer.data = op;
	instance_ref(in);
	op->instance = in;
	op->plugin = p;
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
		.detail = op->req_detail,
		.detail_size = sizeof(op->req_detail),
		.measurements = op->req_meas,
		.max_measurements = WP_MEASUREMENTS_MAX,
		.alerts = n_alerts > 1 ? alerts : NULL,
		.n_alerts = n_alerts,
	};
	/* A single alert's array is the operation's own: the caller's may
	 * be a temporary (runtime_start()). */
	if (n_alerts == 1) {
		op->one_alert = alert;
		op->req.alerts = &op->one_alert;
	}
	/* A broken plugin instance may not pile up threads or memory. */
	if ((why = refusal(in, msg, sizeof(msg))) != NULL) {
		refuse(op, why);
		return op;
	}
	if (!p->async) {
		struct blocking_job *j = xmalloc(sizeof(*j));

		j->op = op->req.op;
		j->plugin = p;
		j->inst = in->inst;
		j->req = op->req;
		op->blocking = 1;
		uv_timer_start(&op->timer, deadline_cb, (uint64_t)timeout_ms, 0);
		pool_submit(blocking_run, j);
		return op;
	}
	op->in_start = 1;
	rc = p->desc.start(in->inst, &op->req, &op->opstate);
	op->in_start = 0;
	if (rc == WP_EAGAIN && p->desc.route_key != NULL && !op->has_pending) {
		/* An event-fed plugin has nothing to judge yet (plugin.h):
		 * reported as cancelled, for which nothing is recorded. */
		op->plugin_done = 1;
		uv_timer_start(&op->timer, finish_skipped, 0, 0);
		return op;
	}
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

int
runtime_inbound(struct instance *in, const char *name,
    const struct wp_inbound *ev, runtime_done_fn done, void *arg, char *err,
    size_t errlen)
{
	const struct plugin *p = in->plugin;
	struct wp_result r = WP_RESULT_INIT;
	struct wp_measurement meas[WP_MEASUREMENTS_MAX];
	struct wp_request req;
	struct copy *c;
	char detail[WP_DETAIL_MAX];
	int rc;

	if (p->desc.inbound == NULL) {
		snprintf(err, errlen, "this monitor takes no pushes");
		return WP_ENOTSUP;
	}
	detail[0] = '\0';
	req = (struct wp_request){
		.size = sizeof(req),
		.monitor = name,
		.started_us = ev->received_us,
		.deadline_us = ev->received_us,
		.detail = detail,
		.detail_size = sizeof(detail),
		.measurements = meas,
		.max_measurements = WP_MEASUREMENTS_MAX,
	};
	rc = p->desc.inbound(in->inst, ev, &req, &r);
	c = xmalloc(sizeof(*c));
	copy_result(c, &r);
	if (rc != WP_OK) {
		snprintf(err, errlen, "%s", c->r.detail != NULL &&
		    c->r.detail[0] != '\0' ? c->r.detail :
		    "the plugin refused the request");
		free(c);
		return rc == WP_EINVAL ? WP_EINVAL : WP_EINTERNAL;
	}
	if (c->dropped[0] != '\0' && !in->measurements_logged) {
		in->measurements_logged = 1;
		log_warn("plugin %s: \"%s\": %s (logged once per monitor)",
		    p->desc.name, name, c->dropped);
	}
	done(arg, &c->r, outcome_of(&c->r));
	free(c);
	return WP_OK;
}

struct wp_op *
runtime_start(struct instance *in, enum op_category cat, const char *name,
    int64_t timeout_ms, unsigned attempt, const struct wp_alert *alert,
    runtime_done_fn done, void *arg)
{
	return runtime_start_group(in, cat, name, timeout_ms, attempt, &alert,
	    alert != NULL ? 1 : 0, done, arg);
}
