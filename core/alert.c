/*
 * Order: the deliveries of one monitor to one section form a chain, oldest
 * (lowest id) first.  Only its head is delivered, retried and backed off;
 * the next starts once the head is accepted (2xx) or dropped, so a
 * receiver sees one monitor's alerts in the order they were raised, even
 * after an outage or a restart.  A chain's head is also the only one with
 * a running timer or operation.
 *
 * Groups (group_window, alert.h): a chain head that may go joins its
 * section's forming group instead of starting; the group then plays the
 * head's part for all its members at once (one operation, one timer, one
 * store update), so each chain still has one delivery at a time.
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
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "alert.h"
#include "cfg.h"
#include "configure.h"
#include "diag.h"
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
	uint64_t def_hash;
	int64_t timeout_ms;
	int64_t group_window_ms;   /* > 0 only when its plugin groups */
	struct instance *in;
};

struct chain;
struct group;

/* One alert waiting for (or in) delivery. */
struct delivery {
	int64_t id;
	int64_t monitor_id;
	char *target;            /* alert section name */
	struct wp_alert a;       /* strings below are owned */
	struct wp_op *op;        /* in flight, or NULL */
	int committed;           /* its outbox row is in the database */
	int cluster_wait;        /* cluster mode: its transition is not
	                            committed to etcd yet */
	int superseded;          /* ... and never will be: drop it */
	uv_timer_t timer;        /* back-off */
	struct chain *chain;
	struct delivery *next;   /* the next (newer) of its chain */
	struct group *group;     /* the group delivering it, or NULL */
	int64_t created_ms;      /* unix ms: raised */
	int64_t next_ms;         /* unix ms of the next attempt; 0: none
	                            scheduled (waiting, or in flight) */
	char *last_error;        /* the last failed attempt's detail */
};

/*
 * The deliveries of one section that go out as one operation
 * (group_window): heads of distinct chains, oldest first.  Forming while
 * its window runs, then sent, and retried as a whole with back-off until
 * accepted.  Members point back through delivery.group.
 */
struct group {
	char *target;
	struct delivery **m;
	const struct wp_alert **arr; /* &m[i]->a, for req->alerts */
	size_t n, cap;
	int forming;             /* still taking members */
	unsigned attempt;
	struct wp_op *op;
	uv_timer_t timer;        /* the window, then back-off */
	struct group *next;
};

/* Per section, across reloads: for /metrics and GET /api/alerts. */
struct section_stats {
	char *name;
	uint64_t delivered, failed;
	unsigned pending;
	struct section_stats *next;
};

/* A recently delivered alert, for GET /api/alerts (memory only). */
struct recent {
	int64_t id;
	char monitor[128];
	char alert[128];
	char state[16];
	int64_t created_ms, delivered_ms;
	unsigned attempts;
};
#define RECENT_MAX 100

/* A monitor's target, computed when the configuration is applied. */


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
	const struct config *cfg; /* a reference (config_ref()), or NULL */
	char *agent;
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
static struct group *groups;
static struct section_stats *sstats;
static struct recent recent[RECENT_MAX];
static size_t n_recent, recent_next;
/* The configuration committed last (a reference): a monitor's target
 * (alert_target_of()) is made from its section when it alerts, not kept
 * for every monitor (issue 17, S8: 100,000 copies at each reload). */
static const struct config *applied;
static char *agent_name;
/* Cluster mode: [cluster] name and location (alert_set_cluster()). */
static char *cluster_agent, *cluster_location;
static alert_held_fn held_fn;
static void *held_arg;

static void try_deliver(struct delivery *d);

/* The statistics of section NAME, created on first use. */
static struct section_stats *
stats_of(const char *name)
{
	struct section_stats *s;

	for (s = sstats; s != NULL; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	s = xcalloc(1, sizeof(*s));
	s->name = xstrdup(name);
	s->next = sstats;
	sstats = s;
	return s;
}

/* D was accepted: count it and remember it for GET /api/alerts. */
static void
note_delivered(const struct delivery *d)
{
	struct recent *r = &recent[recent_next];

	n_delivered++;
	stats_of(d->target)->delivered++;
	r->id = d->id;
	str_copy(r->monitor, sizeof(r->monitor), d->a.monitor);
	str_copy(r->alert, sizeof(r->alert), d->target);
	str_copy(r->state, sizeof(r->state), d->a.state);
	r->created_ms = d->created_ms;
	r->delivered_ms = wall_ms();
	r->attempts = d->a.attempt + 1;
	recent_next = (recent_next + 1) % RECENT_MAX;
	if (n_recent < RECENT_MAX)
		n_recent++;
}

/* A failed attempt of D with DETAIL (may be NULL). */
static void
note_failed(struct delivery *d, const char *detail)
{
	n_failed_attempts++;
	stats_of(d->target)->failed++;
	free(d->last_error);
	d->last_error = xstrdup(detail != NULL ? detail : "failed");
	d->a.attempt++;
}

static void
delivery_free_cb(uv_handle_t *h)
{
	struct delivery *d = h->data;

	free(d->target);
	free(d->last_error);
	free((char *)d->a.monitor);
	free((char *)d->a.type);
	free((char *)d->a.state);
	free((char *)d->a.previous_state);
	free((char *)d->a.error);
	free((char *)d->a.reason);
	free((char *)d->a.target);
	free((char *)d->a.agent);
	free((char *)d->a.location);
	free((char *)d->a.confirmed_by);
	free((char *)d->a.status_url);
	free(d);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
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
	stats_of(d->target)->pending--;
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
	d->a.error = dup_or_null(a->error);
	d->a.reason = dup_or_null(a->reason);
	d->a.target = dup_or_null(a->target);
	d->a.agent = dup_or_null(a->agent);
	d->a.location = dup_or_null(a->location);
	d->a.confirmed_by = dup_or_null(a->confirmed_by);
	d->a.status_url = dup_or_null(a->status_url);
	d->created_ms = wall_ms();
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
	stats_of(target)->pending++;
	return d;
}

/* The outbox payload: what is needed to rebuild the delivery, with its
 * times in the store's milliseconds. */
static char *
payload_json(const struct delivery *d)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:f, "
	    "s:I, s:s?, s:I, s:I, s:s?, s:s?, s:s?, s:s?}",
	    "monitor", d->a.monitor, "type", d->a.type, "state", d->a.state,
	    "previous_state", d->a.previous_state, "timestamp_ms",
	    (json_int_t)(d->a.timestamp_us / 1000), "error", d->a.error,
	    "reason", d->a.reason, "latency_ms",
	    outcome_us_to_ms(d->a.latency_us),
	    "since_ms", (json_int_t)(d->a.since_us / 1000),
	    "target", d->a.target, "repeat", (json_int_t)d->a.repeat,
	    "flags", (json_int_t)d->a.flags, "agent", d->a.agent,
	    "location", d->a.location, "status_url", d->a.status_url,
	    "confirmed_by", d->a.confirmed_by);
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
		note_delivered(d);
		log_info("alert %s: delivered %s alert for monitor %s (id %" PRId64
		    ", attempt %u)", d->target, d->a.state, d->a.monitor, d->id,
		    d->a.attempt + 1);
		if (store)
			store_submit_delivery(store, d->id, 1, NULL);
		head_done(d);
		return;
	}
	note_failed(d, res->detail ? res->detail : reason_name(res->reason));
	if (store)
		store_submit_delivery(store, d->id, 0, res->detail);
	if (stopping || outcome == OP_CANCELED)
		return; /* stays in the outbox for the next start */
	log_warn("alert %s: delivery for monitor %s failed (%s); retrying in "
	    "%" PRId64 " ms", d->target, d->a.monitor,
	    res->detail ? res->detail : reason_name(res->reason),
	    backoff_ms(d->a.attempt));
	d->next_ms = wall_ms() + backoff_ms(d->a.attempt);
	uv_timer_start(&d->timer, retry_cb, (uint64_t)backoff_ms(d->a.attempt),
	    0);
}

/* ---- groups (group_window) ---- */

static void group_send(struct group *g);

static void
group_free_cb(uv_handle_t *h)
{
	struct group *g = h->data;

	free(g->target);
	free(g->m);
	free(g->arr);
	free(g);
}

/* Unlink G and free it (its members are someone else's by now). */
static void
group_free(struct group *g)
{
	struct group **pp;

	for (pp = &groups; *pp != g; pp = &(*pp)->next)
		;
	*pp = g->next;
	uv_timer_stop(&g->timer);
	uv_close((uv_handle_t *)&g->timer, group_free_cb);
}

static void
group_timer_cb(uv_timer_t *t)
{
	struct group *g = t->data;

	g->forming = 0;
	group_send(g);
}

/* D (ready: a committed chain head) joins the forming group of section T,
 * which starts with it when there is none: it goes out when T's window,
 * counted from its first member, ends. */
static void
group_join(const struct target *t, struct delivery *d)
{
	struct group *g;
	size_t i;

	for (g = groups; g != NULL; g = g->next)
		if (g->forming && strcmp(g->target, t->name) == 0)
			break;
	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		g->target = xstrdup(t->name);
		g->forming = 1;
		uv_timer_init(main_loop, &g->timer);
		g->timer.data = g;
		uv_timer_start(&g->timer, group_timer_cb,
		    (uint64_t)t->group_window_ms, 0);
		g->next = groups;
		groups = g;
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 16;
		g->m = xrealloc(g->m, g->cap * sizeof(*g->m));
	}
	/* Members are heads of distinct chains: at most one per monitor.
	 * The group's oldest alert goes first (ids rise with time). */
	for (i = g->n; i > 0 && g->m[i - 1]->id > d->id; i--)
		g->m[i] = g->m[i - 1];
	g->m[i] = d;
	g->n++;
	d->group = g;
	d->next_ms = wall_ms() + (int64_t)uv_timer_get_due_in(&g->timer);
}

/* The ids of G's members, malloc'd. */
static int64_t *
group_ids(const struct group *g)
{
	int64_t *ids = xmalloc(g->n * sizeof(*ids));
	size_t i;

	for (i = 0; i < g->n; i++)
		ids[i] = g->m[i]->id;
	return ids;
}

static void
group_retry_cb(uv_timer_t *t)
{
	group_send(t->data);
}

static void
group_done_cb(void *arg, const struct wp_result *res, enum op_outcome outcome)
{
	struct group *g = arg;
	const char *why = res->detail ? res->detail : reason_name(res->reason);
	int64_t *ids = group_ids(g), next;
	struct delivery **m;
	size_t i, n = g->n;

	g->op = NULL;
	in_flight--;
	if (reason_class(res->reason) == WP_CLASS_UP) {
		log_info("alert %s: delivered %zu alert(s) as one group (ids %"
		    PRId64 "..%" PRId64 ", attempt %u)", g->target, n, ids[0],
		    ids[n - 1], g->attempt + 1);
		/* One store update marks every row delivered. */
		if (store)
			store_submit_deliveries(store, ids, n, 1, NULL);
		free(ids);
		/* The group goes first: head_done() may start a new one. */
		m = g->m;
		g->m = NULL;
		group_free(g);
		for (i = 0; i < n; i++) {
			m[i]->group = NULL;
			note_delivered(m[i]);
			head_done(m[i]);
		}
		free(m);
		return;
	}
	for (i = 0; i < n; i++)
		note_failed(g->m[i], why);
	g->attempt++;
	if (store)
		store_submit_deliveries(store, ids, n, 0, res->detail);
	free(ids);
	if (stopping || outcome == OP_CANCELED)
		return; /* stays in the outbox for the next start */
	next = backoff_ms(g->attempt);
	log_warn("alert %s: delivery of a group of %zu alert(s) failed (%s); "
	    "retrying in %" PRId64 " ms", g->target, n, why, next);
	for (i = 0; i < n; i++)
		g->m[i]->next_ms = wall_ms() + next;
	uv_timer_start(&g->timer, group_retry_cb, (uint64_t)next, 0);
}

/*
 * Send G as one operation of its section: to a plugin that groups, all
 * members in req->alerts.  A section removed meanwhile drops them (as
 * try_deliver() does); one that no longer groups (reloaded) hands each
 * member back to try_deliver().
 */
static void
group_send(struct group *g)
{
	struct target *t = find_target(g->target);
	struct delivery **m;
	char name[192];
	size_t i, n = g->n;

	if (stopping)
		return;
	if (t == NULL || t->group_window_ms <= 0) {
		m = g->m;
		g->m = NULL;
		group_free(g);
		for (i = 0; i < n; i++) {
			m[i]->group = NULL;
			try_deliver(m[i]);
		}
		free(m);
		return;
	}
	g->arr = xrealloc(g->arr, n * sizeof(*g->arr));
	for (i = 0; i < n; i++) {
		g->m[i]->a.attempt = g->attempt;
		g->m[i]->next_ms = 0;
		g->arr[i] = &g->m[i]->a;
	}
	snprintf(name, sizeof(name), "alert %s: %zu alert(s)", g->target, n);
	in_flight++;
	g->op = runtime_start_group(t->in, OPC_ALERT, name, t->timeout_ms,
	    g->attempt, g->arr, n, group_done_cb, g);
}

/* Start delivering D if it may go now: the head of its chain, its row
 * committed, not in flight or backing off, not stopping. */
static void
try_deliver(struct delivery *d)
{
	struct target *t;
	char name[192];

	if (stopping || d->op != NULL || !d->committed || d->cluster_wait ||
	    d->group != NULL || d != d->chain->head ||
	    uv_is_active((uv_handle_t *)&d->timer))
		return;
	if (d->superseded) {
		log_info("alert %s: dropping the %s alert for monitor %s (id %"
		    PRId64 "): its transition was not committed to the "
		    "cluster", d->target, d->a.state, d->a.monitor, d->id);
		n_dropped++;
		if (store)
			store_submit_delivery(store, d->id, 1,
			    "not committed to the cluster");
		head_done(d);
		return;
	}
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
	if (t->group_window_ms > 0) {
		group_join(t, d);
		return;
	}
	d->next_ms = 0;
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

/* The delivery of outbox row R, or NULL when it is gone (alert_free()). */
static struct delivery *
delivery_of(const struct store_alert *r)
{
	struct chain *c = find_chain(r->monitor_id, r->alert_name, 0);
	struct delivery *d;

	for (d = c != NULL ? c->head : NULL; d != NULL; d = d->next)
		if (d->id == r->id)
			return d;
	return NULL;
}

void
alert_released(const struct store_alert *rows, size_t n)
{
	struct delivery *d;
	size_t i;

	for (i = 0; i < n; i++)
		if ((d = delivery_of(&rows[i])) != NULL) {
			d->committed = 1;
			try_deliver(d->chain->head);
		}
}

void
alert_cluster_hold(const struct store_alert *rows, size_t n)
{
	struct delivery *d;
	size_t i;

	for (i = 0; i < n; i++)
		if ((d = delivery_of(&rows[i])) != NULL)
			d->cluster_wait = 1;
}

void
alert_cluster_settle(int64_t monitor_id, int committed)
{
	struct delivery *d;
	struct chain *c;
	size_t i;

	for (i = 0; i < n_targets; i++) {
		if ((c = find_chain(monitor_id, targets[i].name, 0)) == NULL)
			continue;
		for (d = c->head; d != NULL; d = d->next)
			if (d->cluster_wait) {
				d->cluster_wait = 0;
				d->superseded = !committed;
			}
		if (c->head != NULL)
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
		/* 2.1 fields; absent from rows an older agent wrote. */
		a.since_us = json_integer_value(json_object_get(o,
		    "since_ms")) * 1000;
		a.target = json_string_value(json_object_get(o, "target"));
		a.repeat = (unsigned)json_integer_value(json_object_get(o,
		    "repeat"));
		a.flags = (unsigned)json_integer_value(json_object_get(o,
		    "flags"));
		a.agent = json_string_value(json_object_get(o, "agent"));
		a.location = json_string_value(json_object_get(o,
		    "location"));
		a.confirmed_by = json_string_value(json_object_get(o,
		    "confirmed_by"));
		a.status_url = json_string_value(json_object_get(o,
		    "status_url"));
		d = delivery_new(p[i].id, p[i].monitor_id, p[i].alert_name, &a,
		    1);
		d->a.attempt = (unsigned)p[i].attempts;
		d->created_ms = p[i].created_ms;
		if (p[i].last_error[0] != '\0')
			d->last_error = xstrdup(p[i].last_error);
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

/* ---- the 2.1 fields the configuration gives ---- */

/*
 * What a monitor section checks, without credentials, malloc'd, or NULL:
 * its `url` without userinfo, query or fragment ("https://example.org/
 * health"), else its `host` with its `port` ("db.local:5432",
 * "[::1]:80").  A url given as url_file is a secret: NULL.
 */
char *
alert_target_of(const struct cfg_section *s)
{
	const char *url = NULL, *host = NULL, *port = NULL, *p, *end, *at;
	size_t i;

	for (i = 0; i < s->n_kv; i++) {
		if (strcmp(s->kv[i].key, "url") == 0)
			url = s->kv[i].value;
		else if (strcmp(s->kv[i].key, "host") == 0)
			host = s->kv[i].value;
		else if (strcmp(s->kv[i].key, "port") == 0)
			port = s->kv[i].value;
	}
	if (url != NULL && *url != '\0') {
		/* scheme://[userinfo@]authority[/path][?query][#fragment] */
		p = strstr(url, "://");
		p = p != NULL ? p + 3 : url;
		end = p + strcspn(p, "/?#");
		at = memchr(p, '@', (size_t)(end - p));
		/* The last '@' of the authority ends the userinfo. */
		while (at != NULL && memchr(at + 1, '@', (size_t)(end - at - 1)))
			at = memchr(at + 1, '@', (size_t)(end - at - 1));
		end += strcspn(end, "?#");
		return xasprintf("%.*s%.*s", (int)(p - url), url,
		    (int)(end - (at != NULL ? at + 1 : p)),
		    at != NULL ? at + 1 : p);
	}
	if (host == NULL || *host == '\0')
		return NULL;
	if (port == NULL || *port == '\0')
		return xstrdup(host);
	return xasprintf(strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s", host,
	    port);
}

/* The agent's name of CFG into PR. */
static void
prepare_agent(const struct config *cfg, struct prepared *pr)
{
	char host[256];

	if (cfg->agent.name != NULL)
		pr->agent = xstrdup(cfg->agent.name);
	else if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		pr->agent = xstrdup(host);
	} else
		pr->agent = xstrdup("watchpost");
}

/* The target of monitor NAME in the applied configuration (malloc'd), or
 * NULL. */
static char *
target_of_monitor(const char *name)
{
	const struct cfg_monitor *m = config_find_monitor(applied, name);

	return m != NULL ? alert_target_of(&m->s) : NULL;
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
		t->def_hash = ca->s.def_hash;
		t->timeout_ms = ca->timeout_ms;
		if (p != NULL && ca->group_window_ms > 0 &&
		    (p->desc.flags & WP_PLUGIN_F_GROUPS) == 0)
			diag_warning(diag, ca->s.line, "[alert:%s]: group_window "
			    "has no effect: type %s sends one alert at a time",
			    ca->s.name, ca->s.type);
		else if (p != NULL)
			t->group_window_ms = ca->group_window_ms;
		if (sched_classify(old ? &old->def_hash : NULL,
		    &ca->s.def_hash) == DIFF_UNCHANGED) {
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
	prepare_agent(cfg, pr);
	pr->cfg = config_ref(cfg);
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
	config_free((struct config *)pr->cfg);
	free(pr->agent);
	free(pr);
}

void
alert_commit(void *prepared)
{
	struct prepared *pr = prepared;
	size_t i;

	free_targets(targets, n_targets);
	targets = pr->targets;
	n_targets = pr->n;
	config_free_detached((struct config *)applied);
	applied = pr->cfg;
	free(agent_name);
	agent_name = pr->agent;
	free(pr);
	/* Every section has its counters from the start (0 in /metrics). */
	for (i = 0; i < n_targets; i++)
		(void)stats_of(targets[i].name);
	kick_all();
}

struct store_alert *
alert_raise(const struct outcome *o, int all, char *const *names, size_t n,
    size_t *n_out)
{
	const struct wp_result *r = o->result;
	struct wp_alert a = { .size = sizeof(a) };
	struct store_alert *out;
	char *target;
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
	a.target = target = target_of_monitor(o->monitor);
	a.repeat = o->repeat;
	a.flags = o->alert_flags;
	a.agent = cluster_agent != NULL ? cluster_agent : agent_name;
	a.location = cluster_location;
	a.confirmed_by = o->confirmed_by;
	a.status_url = NULL;   /* until a status page exists */
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
	free(target);
	*n_out = count;
	return out;
}

void
alert_set_cluster(const char *agent, const char *location)
{
	free(cluster_agent);
	free(cluster_location);
	cluster_agent = agent != NULL ? xstrdup(agent) : NULL;
	cluster_location = location != NULL ? xstrdup(location) : NULL;
}

void
alert_stop(void)
{
	struct chain *c;
	size_t b;

	struct group *g;

	stopping = 1;
	for (b = 0; b < N_BUCKETS; b++)
		for (c = buckets[b]; c != NULL; c = c->next)
			uv_timer_stop(&c->head->timer);
	for (g = groups; g != NULL; g = g->next)
		uv_timer_stop(&g->timer);
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

	struct section_stats *ss;
	size_t i;

	/* After this the writer posts nothing more (store_on_commit()). */
	store_on_commit(store, NULL, NULL);
	while (groups != NULL) {
		for (i = 0; i < groups->n; i++)
			groups->m[i]->group = NULL;
		group_free(groups);
	}
	for (b = 0; b < N_BUCKETS; b++)
		while (buckets[b] != NULL)
			chain_pop(buckets[b]);
	while ((ss = sstats) != NULL) {
		sstats = ss->next;
		free(ss->name);
		free(ss);
	}
	free_targets(targets, n_targets);
	targets = NULL;
	n_targets = 0;
	config_free((struct config *)applied);
	applied = NULL;
	free(agent_name);
	agent_name = NULL;
	alert_set_cluster(NULL, NULL);
	n_recent = recent_next = 0;
}

/* ---- GET /api/alerts, /metrics ---- */

void
alert_set_held_source(alert_held_fn fn, void *arg)
{
	held_fn = fn;
	held_arg = arg;
}

static json_t *
ms_or_null(int64_t ms)
{
	return ms > 0 ? json_integer(ms) : json_null();
}

static int
delivery_cmp(const void *a, const void *b)
{
	const struct delivery *x = *(const struct delivery *const *)a;
	const struct delivery *y = *(const struct delivery *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

char *
alert_api_json(void)
{
	json_t *root = json_object(), *pend = json_array(), *done = json_array();
	json_t *held = json_array();
	struct delivery **v = xcalloc(n_pending + 1, sizeof(*v)), *d;
	struct chain *c;
	size_t b, i, n = 0;
	char *body;

	for (b = 0; b < N_BUCKETS; b++)
		for (c = buckets[b]; c != NULL; c = c->next)
			for (d = c->head; d != NULL && n < n_pending; d = d->next)
				v[n++] = d;
	qsort(v, n, sizeof(*v), delivery_cmp);
	for (i = 0; i < n; i++) {
		d = v[i];
		json_array_append_new(pend, json_pack("{s:I, s:s, s:s, s:s, "
		    "s:I, s:i, s:o, s:b, s:b, s:s?}",
		    "id", (json_int_t)d->id, "monitor", d->a.monitor,
		    "alert", d->target, "state", d->a.state,
		    "created", (json_int_t)d->created_ms,
		    "attempts", (int)d->a.attempt,
		    "next_attempt", ms_or_null(d->next_ms),
		    "in_flight", d->op != NULL ||
		    (d->group != NULL && d->group->op != NULL),
		    "grouped", d->group != NULL,
		    "last_error", d->last_error));
	}
	free(v);
	/* Newest first. */
	for (i = 0; i < n_recent; i++) {
		const struct recent *r =
		    &recent[(recent_next + RECENT_MAX - 1 - i) % RECENT_MAX];

		json_array_append_new(done, json_pack("{s:I, s:s, s:s, s:s, "
		    "s:I, s:I, s:i}", "id", (json_int_t)r->id,
		    "monitor", r->monitor, "alert", r->alert, "state",
		    r->state, "created", (json_int_t)r->created_ms,
		    "delivered", (json_int_t)r->delivered_ms,
		    "attempts", (int)r->attempts));
	}
	if (held_fn != NULL)
		held_fn(held_arg, held);
	json_object_set_new(root, "pending", pend);
	json_object_set_new(root, "delivered", done);
	json_object_set_new(root, "held", held);
	body = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return body;
}

void
alert_each_section(void (*fn)(void *arg, const struct alert_section *s),
    void *arg)
{
	const struct section_stats *ss;
	struct alert_section out;

	for (ss = sstats; ss != NULL; ss = ss->next) {
		out.name = ss->name;
		out.delivered = ss->delivered;
		out.failed = ss->failed;
		out.pending = ss->pending;
		fn(arg, &out);
	}
}

/* ---- test alerts ---- */

struct test_op {
	struct wp_alert a;
	char *section;
	char *agent;
	alert_test_fn cb;
	void *arg;
};

static void
test_done_cb(void *arg, const struct wp_result *res, enum op_outcome outcome)
{
	struct test_op *t = arg;
	int ok = reason_class(res->reason) == WP_CLASS_UP;
	char *answer;
	char status[32] = "";

	in_flight--;
	(void)outcome;
	if (res->status_code >= 0)
		snprintf(status, sizeof(status), " (status %d)",
		    res->status_code);
	if (ok)
		answer = xasprintf("delivered%s%s%s", status,
		    res->detail ? ": " : "", res->detail ? res->detail : "");
	else
		answer = xasprintf("failed: %s%s%s%s", reason_name(res->reason),
		    status, res->detail ? ": " : "",
		    res->detail ? res->detail : "");
	log_info("alert %s: test alert %s", t->section, answer);
	t->cb(t->arg, ok, answer);
	free(answer);
	free(t->section);
	free(t->agent);
	free(t);
}

/* Send the test alert through IN, section NAME (timeout TIMEOUT_MS). */
static void
test_send(struct instance *in, const char *name, int64_t timeout_ms,
    const char *agent, alert_test_fn cb, void *arg)
{
	struct test_op *t = xcalloc(1, sizeof(*t));
	const struct wp_alert *one = &t->a;
	char opname[192];
	int64_t now = wall_ms();

	t->section = xstrdup(name);
	t->agent = xstrdup(agent != NULL ? agent : "watchpost");
	t->cb = cb;
	t->arg = arg;
	t->a.size = sizeof(t->a);
	t->a.id = 0;    /* in no outbox */
	t->a.monitor = ALERT_TEST_MONITOR;
	t->a.type = "test";
	t->a.state = "down";
	t->a.previous_state = "up";
	t->a.timestamp_us = now * 1000;
	t->a.error = "This is a test alert sent by watchpost --test-alert: "
	    "no monitor is down.";
	t->a.reason = "test";
	t->a.latency_us = -1;
	t->a.since_us = now * 1000;
	t->a.flags = WP_ALERT_TEST;
	t->a.agent = t->agent;
	snprintf(opname, sizeof(opname), "alert %s: test", name);
	in_flight++;
	(void)runtime_start_group(in, OPC_ALERT, opname, timeout_ms, 0, &one,
	    1, test_done_cb, t);
}

int
alert_test_start(const char *name, alert_test_fn cb, void *arg)
{
	struct target *t = find_target(name);

	if (t == NULL)
		return WP_EINVAL;
	if (stopping)
		return WP_EAGAIN;
	test_send(t->in, t->name, t->timeout_ms, agent_name, cb, arg);
	return 0;
}

struct cli_wait {
	int done, ok;
	FILE *out;
};

static void
cli_done(void *arg, int ok, const char *answer)
{
	struct cli_wait *w = arg;
	char clean[4 * WP_DETAIL_MAX + 64];

	/* The answer may hold what a receiver sent: escaped. */
	str_escape(answer, WP_DETAIL_MAX + 64, clean, sizeof(clean));
	fprintf(w->out, "%s\n", clean);
	w->done = 1;
	w->ok = ok;
}

int
alert_test_cli(const struct config *cfg, const char *name,
    struct wp_diag *diag, FILE *out)
{
	const struct cfg_alert *ca = config_find_alert(cfg, name);
	const struct plugin *p;
	struct configured built;
	struct instance *in;
	struct cli_wait w = { 0, 0, out };
	struct prepared pr = { 0 };

	if (ca == NULL) {
		diag_error(diag, 0, "--test-alert: there is no [alert:%s] "
		    "section", name);
		return WP_EINVAL;
	}
	p = loader_by_desc(ca->s.plugin);
	if (p == NULL || configure_section(p, cfg, &ca->s, ca->timeout_ms,
	    diag, &built) != 0)
		return WP_EINVAL;
	in = instance_new(p, &built);
	prepare_agent(cfg, &pr);
	test_send(in, ca->s.name, ca->timeout_ms, pr.agent, cli_done, &w);
	instance_unref(in);   /* the operation holds its own */
	while (!w.done)
		uv_run(main_loop, UV_RUN_ONCE);
	free(pr.agent);
	return w.ok ? 0 : 1;
}
