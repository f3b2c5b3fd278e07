/*
 * Order: the deliveries of one monitor to one section form a chain, oldest
 * (lowest id) first.  Only its head is delivered, retried and backed off;
 * the next starts once the head is accepted (2xx) or dropped, so a
 * receiver sees one monitor's alerts in the order they were raised, even
 * after an outage or a restart.  A chain's head is also the only one with
 * a running timer or operation.
 *
 * Durability: a delivery starts only once its outbox row is committed.
 * The store's writer says so (store_on_commit()), through host_post() to
 * the loop thread: alert_released().  Rows loaded at start are committed.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "alert.h"
#include "cfg.h"
#include "configure.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "opmon.h"
#include "outcome.h"
#include "runtime.h"
#include "schedule.h"
#include "store.h"
#include "util.h"

/* A configured [alert:NAME] section. */
struct target {
	char *name;
	char *definition;
	int64_t timeout_ms;
	struct instance *in;
};

struct chain;

/* One alert waiting for (or in) delivery. */
struct delivery {
	int64_t id;
	int64_t monitor_id;
	char *target;            /* alert section name */
	struct wp_alert a;       /* strings below are owned */
	struct wp_op *op;        /* in flight, or NULL */
	int committed;           /* its outbox row is in the database */
	uv_timer_t timer;        /* back-off */
	struct chain *chain;
	struct delivery *next;   /* the next (newer) of its chain */
};

/* The deliveries of one (monitor, section), oldest first. */
struct chain {
	int64_t monitor_id;
	char *target;
	struct delivery *head, *tail;
	struct chain *next;      /* in its hash bucket */
};

#define N_BUCKETS 1024

struct prepared {
	struct target *targets;
	size_t n;
};

static struct store *store;
static struct target *targets;
static size_t n_targets;
static struct chain *buckets[N_BUCKETS];
static unsigned n_pending, in_flight;
static int stopping;
static int64_t next_id;
static int64_t backoff_max_ms = 300000;
static uint64_t n_delivered, n_failed_attempts, n_dropped;

static void try_deliver(struct delivery *d);

static void
delivery_free_cb(uv_handle_t *h)
{
	struct delivery *d = h->data;

	free(d->target);
	free((char *)d->a.monitor);
	free((char *)d->a.type);
	free((char *)d->a.state);
	free((char *)d->a.previous_state);
	free((char *)d->a.error);
	free((char *)d->a.reason);
	free(d);
}

static size_t
bucket_of(int64_t monitor_id, const char *target)
{
	size_t h = (size_t)monitor_id * 2654435761u;

	while (*target)
		h = h * 33 + (unsigned char)*target++;
	return h % N_BUCKETS;
}

/* The chain of (monitor_id, target), created if CREATE, else NULL. */
static struct chain *
find_chain(int64_t monitor_id, const char *target, int create)
{
	size_t b = bucket_of(monitor_id, target);
	struct chain *c;

	for (c = buckets[b]; c != NULL; c = c->next)
		if (c->monitor_id == monitor_id && strcmp(c->target, target) == 0)
			return c;
	if (!create)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->monitor_id = monitor_id;
	c->target = xstrdup(target);
	c->next = buckets[b];
	buckets[b] = c;
	return c;
}

/* Remove and free the head of C, and C itself once it is empty. */
static void
chain_pop(struct chain *c)
{
	struct delivery *d = c->head;
	struct chain **pp;

	c->head = d->next;
	if (c->head == NULL) {
		for (pp = &buckets[bucket_of(c->monitor_id, c->target)];
		    *pp != c; pp = &(*pp)->next)
			;
		*pp = c->next;
		free(c->target);
		free(c);
	}
	n_pending--;
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, delivery_free_cb);
}

/* A new delivery of A (its strings copied) at the tail of its chain;
 * committed says whether its outbox row is already in the database. */
static struct delivery *
delivery_new(int64_t id, int64_t monitor_id, const char *target,
    const struct wp_alert *a, int committed)
{
	struct delivery *d = xcalloc(1, sizeof(*d));
	struct chain *c = find_chain(monitor_id, target, 1);

	d->id = id;
	d->monitor_id = monitor_id;
	d->target = xstrdup(target);
	d->a = *a;
	d->a.size = sizeof(d->a);
	d->a.id = (uint64_t)id;
	d->a.monitor = xstrdup(a->monitor);
	d->a.type = xstrdup(a->type);
	d->a.state = xstrdup(a->state);
	d->a.previous_state = xstrdup(a->previous_state);
	d->a.error = a->error ? xstrdup(a->error) : NULL;
	d->a.reason = a->reason ? xstrdup(a->reason) : NULL;
	d->committed = committed;
	uv_timer_init(main_loop, &d->timer);
	d->timer.data = d;
	d->chain = c;
	if (c->head != NULL)
		c->tail->next = d;
	else
		c->head = d;
	c->tail = d;
	n_pending++;
	return d;
}

/* The outbox payload: what is needed to rebuild the delivery, with its
 * times in the store's milliseconds. */
static char *
payload_json(const struct delivery *d)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:f, "
	    "s:I, s:I, s:I}",
	    "monitor", d->a.monitor, "type", d->a.type, "state", d->a.state,
	    "previous_state", d->a.previous_state, "timestamp_ms",
	    (json_int_t)(d->a.timestamp_us / 1000), "error", d->a.error,
	    "reason", d->a.reason, "latency_ms",
	    outcome_us_to_ms(d->a.latency_us),
	    "since_ms", (json_int_t)(d->a.since_us / 1000),
	    "repeat", (json_int_t)d->a.repeat, "flags", (json_int_t)d->a.flags);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s ? s : xstrdup("{}");
}

static struct target *
find_target(const char *name)
{
	size_t i;

	for (i = 0; i < n_targets; i++)
		if (strcmp(targets[i].name, name) == 0)
			return &targets[i];
	return NULL;
}

static int64_t
backoff_ms(unsigned attempts)
{
	int64_t ms = 1000;
	unsigned i;

	for (i = 1; i < attempts && ms < backoff_max_ms; i++)
		ms *= 2;
	return ms < backoff_max_ms ? ms : backoff_max_ms;
}

static void
retry_cb(uv_timer_t *t)
{
	try_deliver(t->data);
}

/* D (a chain's head) is done: accepted, or dropped.  The next of its
 * chain, if any, starts now. */
static void
head_done(struct delivery *d)
{
	struct chain *c = d->chain;
	int more = d->next != NULL;

	chain_pop(c);
	if (more)
		try_deliver(c->head);
}

static void
delivered_cb(void *arg, const struct wp_result *res, enum op_outcome outcome)
{
	struct delivery *d = arg;

	d->op = NULL;
	in_flight--;
	if (reason_class(res->reason) == WP_CLASS_UP) {
		n_delivered++;
		log_info("alert %s: delivered %s alert for monitor %s (id %" PRId64
		    ", attempt %u)", d->target, d->a.state, d->a.monitor, d->id,
		    d->a.attempt + 1);
		if (store)
			store_submit_delivery(store, d->id, 1, NULL);
		head_done(d);
		return;
	}
	n_failed_attempts++;
	d->a.attempt++;
	if (store)
		store_submit_delivery(store, d->id, 0, res->detail);
	if (stopping || outcome == OP_CANCELED)
		return; /* stays in the outbox for the next start */
	log_warn("alert %s: delivery for monitor %s failed (%s); retrying in "
	    "%" PRId64 " ms", d->target, d->a.monitor,
	    res->detail ? res->detail : reason_name(res->reason),
	    backoff_ms(d->a.attempt));
	uv_timer_start(&d->timer, retry_cb, (uint64_t)backoff_ms(d->a.attempt),
	    0);
}

/* Start delivering D if it may go now: the head of its chain, its row
 * committed, not in flight or backing off, not stopping. */
static void
try_deliver(struct delivery *d)
{
	struct target *t;
	char name[192];

	if (stopping || d->op != NULL || !d->committed ||
	    d != d->chain->head || uv_is_active((uv_handle_t *)&d->timer))
		return;
	t = find_target(d->target);
	if (t == NULL) {
		n_dropped++;
		log_warn("alert %s: no such alert section any more; dropping "
		    "the %s alert for monitor %s (id %" PRId64 ")", d->target,
		    d->a.state, d->a.monitor, d->id);
		if (store)
			store_submit_delivery(store, d->id, 1, "alert removed");
		head_done(d);
		return;
	}
	snprintf(name, sizeof(name), "alert %s: %s", d->target, d->a.monitor);
	in_flight++;
	d->op = runtime_start(t->in, OPC_ALERT, name, t->timeout_ms, d->a.attempt,
	    &d->a, delivered_cb, d);
}

/* Rows the writer committed, on their way to the loop thread. */
struct released {
	size_t n;
	struct store_alert rows[];
};

static void
released_cb(void *arg)
{
	struct released *r = arg;

	alert_released(r->rows, r->n);
	free(r);
}

/* store_on_commit() callback, on the writer thread: copy and post. */
static void
committed_cb(void *arg, const struct store_alert *rows, size_t n)
{
	struct released *r = xmalloc(sizeof(*r) + n * sizeof(*rows));

	(void)arg;
	r->n = n;
	memcpy(r->rows, rows, n * sizeof(*rows));
	host_post(released_cb, r);
}

void
alert_released(const struct store_alert *rows, size_t n)
{
	struct delivery *d;
	struct chain *c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = find_chain(rows[i].monitor_id, rows[i].alert_name, 0);
		for (d = c != NULL ? c->head : NULL; d != NULL; d = d->next)
			if (d->id == rows[i].id)
				break;
		if (d == NULL)
			continue; /* gone (alert_free()) */
		d->committed = 1;
		try_deliver(c->head);
	}
}

int
alert_init(struct store *st)
{
	struct store_pending_alert *p = NULL;
	const char *env = getenv("WATCHPOST_ALERT_BACKOFF_MAX_MS");
	size_t n = 0, i;

	store = st;
	if (env != NULL && atoll(env) > 0)
		backoff_max_ms = atoll(env);
	if (st == NULL)
		return 0;
	next_id = store_max_alert_id(st) + 1;
	if (store_load_pending(st, &p, &n) != 0)
		return WP_EIO;
	for (i = 0; i < n; i++) {
		json_t *o = json_loads(p[i].payload, 0, NULL);
		json_t *e, *r;
		struct wp_alert a = { .size = sizeof(a) };
		double lat;
		struct delivery *d;

		if (o == NULL)
			continue;
		e = json_object_get(o, "error");
		r = json_object_get(o, "reason");
		a.monitor = json_string_value(json_object_get(o,
		    "monitor")) ?: "?";
		a.type = json_string_value(json_object_get(o, "type")) ?: "?";
		a.state = json_string_value(json_object_get(o, "state")) ?: "?";
		a.previous_state = json_string_value(json_object_get(o,
		    "previous_state")) ?: "?";
		a.timestamp_us = json_integer_value(json_object_get(o,
		    "timestamp_ms")) * 1000;
		a.error = json_is_string(e) ? json_string_value(e) : NULL;
		a.reason = json_is_string(r) ? json_string_value(r) : NULL;
		lat = json_number_value(json_object_get(o, "latency_ms"));
		a.latency_us = lat < 0 ? -1 : (int64_t)(lat * 1000.0 + 0.5);
		a.since_us = json_integer_value(json_object_get(o,
		    "since_ms")) * 1000;
		a.repeat = (unsigned)json_integer_value(json_object_get(o,
		    "repeat"));
		a.flags = (unsigned)json_integer_value(json_object_get(o,
		    "flags"));
		d = delivery_new(p[i].id, p[i].monitor_id, p[i].alert_name, &a,
		    1);
		d->a.attempt = (unsigned)p[i].attempts;
		json_decref(o);
	}
	if (n > 0)
		log_info("alert: %zu undelivered alert(s) from before the "
		    "restart", n);
	store_free_pending(p, n);
	store_on_commit(st, committed_cb, NULL);
	return 0;
}

/* Deliveries loaded at start wait until the targets exist; after a
 * reload, a removed section drops its chains. */
static void
kick_all(void)
{
	struct chain *c, *next;
	size_t b;

	for (b = 0; b < N_BUCKETS; b++)
		for (c = buckets[b]; c != NULL; c = next) {
			next = c->next;
			try_deliver(c->head);
		}
}

int
alert_prepare(const struct config *cfg, struct wp_diag *diag,
    void **prepared)
{
	struct prepared *pr = xcalloc(1, sizeof(*pr));
	size_t i;
	int rc = 0;

	pr->targets = xcalloc(cfg->n_alerts + 1, sizeof(*pr->targets));
	for (i = 0; i < cfg->n_alerts; i++) {
		const struct cfg_alert *ca = &cfg->alerts[i];
		struct target *old = find_target(ca->s.name);
		struct target *t = &pr->targets[pr->n++];
		const struct plugin *p = loader_by_desc(ca->s.plugin);
		struct configured built;

		t->name = xstrdup(ca->s.name);
		t->definition = xstrdup(ca->s.definition);
		t->timeout_ms = ca->timeout_ms;
		if (sched_classify(old ? old->definition : NULL,
		    ca->s.definition) == DIFF_UNCHANGED) {
			t->in = old->in;
			instance_ref(t->in);
			continue;
		}
		if (p == NULL || configure_section(p, cfg, &ca->s,
		    ca->timeout_ms, diag, &built) != 0) {
			rc = WP_EINVAL;
			continue;
		}
		t->in = instance_new(p, &built);
	}
	*prepared = pr;
	if (rc != 0) {
		alert_abort(pr);
		*prepared = NULL;
	}
	return rc;
}

static void
free_targets(struct target *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(t[i].name);
		free(t[i].definition);
		instance_unref(t[i].in);
	}
	free(t);
}

void
alert_abort(void *prepared)
{
	struct prepared *pr = prepared;

	if (pr == NULL)
		return;
	free_targets(pr->targets, pr->n);
	free(pr);
}

void
alert_commit(void *prepared)
{
	struct prepared *pr = prepared;

	free_targets(targets, n_targets);
	targets = pr->targets;
	n_targets = pr->n;
	free(pr);
	kick_all();
}

struct store_alert *
alert_raise(const struct outcome *o, int all, char *const *names, size_t n,
    size_t *n_out)
{
	const struct wp_result *r = o->result;
	struct wp_alert a = { .size = sizeof(a) };
	struct store_alert *out;
	size_t i, count = all ? n_targets : n;

	*n_out = 0;
	if (store == NULL || count == 0 || !o->alert)
		return NULL;
	a.monitor = o->monitor;
	a.type = o->type;
	a.state = mstate_name(o->state);
	a.previous_state = mstate_name(o->previous);
	a.timestamp_us = o->started_ms * 1000;
	a.error = o->state == ST_UP ? NULL : r->detail;
	a.reason = o->state == ST_UP ? NULL : reason_name(r->reason);
	a.latency_us = r->latency_us;
	a.since_us = o->since_ms * 1000;
	a.repeat = o->repeat;
	a.flags = o->alert_flags;
	out = xcalloc(count, sizeof(*out));
	for (i = 0; i < count; i++) {
		const char *name = all ? targets[i].name : names[i];
		struct delivery *d = delivery_new(next_id++, o->monitor_id,
		    name, &a, 0);

		out[i].id = d->id;
		out[i].monitor_id = o->monitor_id;
		snprintf(out[i].alert_name, sizeof(out[i].alert_name), "%s",
		    name);
		out[i].payload = payload_json(d);
		out[i].created_ms = wall_ms();
	}
	*n_out = count;
	return out;
}

void
alert_stop(void)
{
	struct chain *c;
	size_t b;

	stopping = 1;
	for (b = 0; b < N_BUCKETS; b++)
		for (c = buckets[b]; c != NULL; c = c->next)
			uv_timer_stop(&c->head->timer);
}

unsigned
alert_in_flight(void)
{
	return in_flight;
}

void
alert_get_stats(struct alert_stats *out)
{
	out->pending = n_pending;
	out->delivered = n_delivered;
	out->failed_attempts = n_failed_attempts;
	out->dropped = n_dropped;
}

void
alert_free(void)
{
	size_t b;

	/* After this the writer posts nothing more (store_on_commit()). */
	store_on_commit(store, NULL, NULL);
	for (b = 0; b < N_BUCKETS; b++)
		while (buckets[b] != NULL)
			chain_pop(buckets[b]);
	free_targets(targets, n_targets);
	targets = NULL;
	n_targets = 0;
}
