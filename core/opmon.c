#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "host.h"
#include "log.h"
#include "opmon.h"
#include "util.h"

#define FINISHED_RING 256
#define TROUBLE_RING 32
#define STARTUP_KEEP 48 /* a "load plugin" step per plugin (10 built in) and
                         * about ten others */

/* Upper bounds of the duration histogram, seconds. */
static const double bucket_le[OPMON_N_BUCKETS] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
};

struct opmon_op {
	uint64_t id;
	enum op_category cat;
	enum op_outcome outcome;
	char name[128];
	int64_t started_us;
	int64_t deadline_us;
	int64_t started_ms;       /* wall clock, for the API */
	uv_timer_t timer;         /* the deadline (core operations only) */
	unsigned timed : 1;       /* the timer is initialised */
	unsigned performed : 1;   /* opmon_register: the performer's deadline */
	unsigned reported : 1;    /* the outcome is counted (past deadline) */
	char end_detail[256];     /* opmon_end_any(), read on the loop */
	enum op_outcome end_outcome;
	struct opmon_op *prev, *next; /* the in-flight list, oldest first */
};

/* A finished operation, as the rings keep it. */
struct op_record {
	char name[128];
	enum op_category cat;
	enum op_outcome outcome;
	int64_t started_ms;
	double duration_ms;
	char detail[160];
};

static struct opmon_op *inflight_head, *inflight_tail;
static unsigned running[OPC__N];
static uint64_t totals[OPC__N][OP__N];
static uint64_t hist[OPC__N][OPMON_N_BUCKETS + 1];
static double hist_sum[OPC__N];
static uint64_t next_id = 1;
static struct op_record finished[FINISHED_RING];
static unsigned finished_n, finished_pos;
static struct op_record trouble[TROUBLE_RING];
static unsigned trouble_n, trouble_pos;
/* The first STARTUP_KEEP start-up operations, kept for the life of the
 * process: the start-up steps come first, and checks would push them out
 * of the finished ring within a second. */
static struct op_record startup[STARTUP_KEEP];
static unsigned startup_n;
static uint64_t double_completions, abandoned_total;

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
opmon_count_breach(enum opmon_breach kind)
{
	if (kind == OPMON_DOUBLE_COMPLETION)
		double_completions++;
	else
		abandoned_total++;
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

/* A fresh operation, not yet known to the loop.  Any thread. */
static struct opmon_op *
op_alloc(enum op_category cat, const char *name, int64_t timeout_ms)
{
	struct opmon_op *op = xcalloc(1, sizeof(*op));

	op->cat = cat;
	str_copy(op->name, sizeof(op->name), name);
	op->started_us = mono_us();
	op->started_ms = wall_ms();
	op->deadline_us = op->started_us + timeout_ms * 1000;
	op->timer.data = op;
	return op;
}

/* Number it and put it in the in-flight list.  Loop thread. */
static void
op_link(struct opmon_op *op)
{
	op->id = next_id++;
	op->prev = inflight_tail;
	if (inflight_tail)
		inflight_tail->next = op;
	else
		inflight_head = op;
	inflight_tail = op;
	running[op->cat]++;
}

static void
unlink_op(struct opmon_op *op)
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
record(struct opmon_op *op, enum op_outcome outcome, const char *detail)
{
	double secs = (double)(mono_us() - op->started_us) / 1e6;
	struct op_record *r;
	int b;

	op->outcome = outcome;
	running[op->cat]--;
	totals[op->cat][outcome]++;
	for (b = 0; b < OPMON_N_BUCKETS && secs > bucket_le[b]; b++)
		;
	hist[op->cat][b]++;
	hist_sum[op->cat] += secs;
	unlink_op(op);

	r = &finished[finished_pos];
	finished_pos = (finished_pos + 1) % FINISHED_RING;
	if (finished_n < FINISHED_RING)
		finished_n++;
	str_copy(r->name, sizeof(r->name), op->name);
	r->cat = op->cat;
	r->outcome = outcome;
	r->started_ms = op->started_ms;
	r->duration_ms = secs * 1000.0;
	str_copy(r->detail, sizeof(r->detail), detail);
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
	free(h->data);
}

static void
op_free(struct opmon_op *op)
{
	if (!op->timed) {
		free(op);
		return;
	}
	uv_timer_stop(&op->timer);
	uv_close((uv_handle_t *)&op->timer, op_free_cb);
}

/* A core operation's deadline passed while it runs: count it as timed out
 * now (it cannot be stopped; opmon_end only frees it later). */
static void
deadline_cb(uv_timer_t *t)
{
	struct opmon_op *op = t->data;
	int64_t left_us = op->deadline_us - mono_us();
	char dur[32], detail[96];

	/* The loop's clock lags: fired early, wait for the rest. */
	if (left_us > 0) {
		uv_timer_start(&op->timer, deadline_cb,
		    (uint64_t)((left_us + 999) / 1000), 0);
		return;
	}
	format_duration((op->deadline_us - op->started_us) / 1000, dur,
	    sizeof(dur));
	snprintf(detail, sizeof(detail), "past its deadline of %s, still "
	    "running", dur);
	log_warn("operation \"%s\" (%s) is %s", op->name,
	    category_names[op->cat], detail);
	record(op, OP_TIMED_OUT, detail);
	op->reported = 1;
}

static void
start_deadline(struct opmon_op *op)
{
	int64_t left_ms = (op->deadline_us - mono_us()) / 1000;

	uv_timer_init(main_loop, &op->timer);
	op->timed = 1;
	uv_timer_start(&op->timer, deadline_cb,
	    (uint64_t)(left_ms > 0 ? left_ms : 0), 0);
}

struct opmon_op *
opmon_begin(enum op_category cat, const char *name, int64_t timeout_ms)
{
	struct opmon_op *op = op_alloc(cat, name, timeout_ms);

	op_link(op);
	start_deadline(op);
	return op;
}

struct opmon_op *
opmon_register(enum op_category cat, const char *name, int64_t timeout_ms)
{
	struct opmon_op *op = op_alloc(cat, name, timeout_ms);

	op->performed = 1;
	op_link(op);
	return op;
}

void
opmon_end(struct opmon_op *op, enum op_outcome outcome, const char *detail)
{
	int64_t now_us = mono_us();
	char dur[32], took[32], msg[256];

	if (op == NULL)
		return;
	if (op->reported) {
		format_duration((now_us - op->started_us) / 1000, took,
		    sizeof(took));
		log_info("operation \"%s\" (%s) %s after %s, past its deadline",
		    op->name, category_names[op->cat], outcome_names[outcome],
		    took);
	} else if (!op->performed && now_us > op->deadline_us) {
		/* Ended past the deadline before the timer could say so (a
		 * start-up step: the loop is not running yet). */
		format_duration((op->deadline_us - op->started_us) / 1000,
		    dur, sizeof(dur));
		format_duration((now_us - op->started_us) / 1000, took,
		    sizeof(took));
		snprintf(msg, sizeof(msg), "%s after %s, past its deadline of "
		    "%s%s%.160s", outcome_names[outcome], took, dur,
		    detail ? ": " : "", detail ? detail : "");
		log_warn("operation \"%s\" (%s) %s", op->name,
		    category_names[op->cat], msg);
		record(op, OP_TIMED_OUT, msg);
	} else
		record(op, outcome, detail);
	op_free(op);
}

/* ---- core operations run off the loop (the store writer) ---- */

static void
posted_link(void *arg)
{
	struct opmon_op *op = arg;

	op_link(op);
	start_deadline(op);
}

static void
posted_end(void *arg)
{
	struct opmon_op *op = arg;

	opmon_end(op, op->end_outcome,
	    op->end_detail[0] ? op->end_detail : NULL);
}

struct opmon_op *
opmon_begin_any(enum op_category cat, const char *name, int64_t timeout_ms)
{
	struct opmon_op *op;

	if (host_on_loop())
		return opmon_begin(cat, name, timeout_ms);
	if (main_loop == NULL)
		return NULL;
	op = op_alloc(cat, name, timeout_ms);
	host_post(posted_link, op);
	return op;
}

void
opmon_end_any(struct opmon_op *op, enum op_outcome outcome, const char *detail)
{
	if (op == NULL)
		return;
	if (host_on_loop()) {
		opmon_end(op, outcome, detail);
		return;
	}
	/* The loop reads these only in posted_end, after the post. */
	op->end_outcome = outcome;
	str_copy(op->end_detail, sizeof(op->end_detail), detail);
	host_post(posted_end, op);
}

void
opmon_shutdown(void)
{
	/* Anything still linked never ended (a core operation stuck at
	 * exit); its memory stays with whoever performs it. */
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
	int64_t now_us = mono_us(), now_ms = wall_ms();
	struct opmon_op *op;
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
opmon_get_stats(struct opmon_stats *out)
{
	memcpy(out->running, running, sizeof(out->running));
	memcpy(out->totals, totals, sizeof(out->totals));
	out->duration_le = bucket_le;
	memcpy(out->duration, hist, sizeof(out->duration));
	memcpy(out->duration_sum, hist_sum, sizeof(out->duration_sum));
	out->double_completions = double_completions;
	out->abandoned = abandoned_total;
}
