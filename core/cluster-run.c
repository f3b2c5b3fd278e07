/*
 * cluster-run -- membership and claims in etcd (cluster-run.h).
 *
 * The life of the engine:
 *   GRANT     a lease of lease_ttl is asked for;
 *   REGISTER  members/<location>/<name> is put on it, only if absent (a
 *             key held on another lease is another agent of this name,
 *             or this agent's previous life whose lease has not expired
 *             yet: retried until it is older than twice the TTL, then
 *             fatal);
 *   RUN       the whole prefix is read once and then watched; each change
 *             of the members or the claims runs reconcile(), which claims
 *             the slots this agent is the rendezvous owner of and are
 *             free, and drains and releases the ones it holds and no
 *             longer should.
 * The lease is renewed every TTL / 3, one keepalive at a time; the local
 * deadline (cluster.h) fences the agent when renewals stop being
 * answered.  A lease the server no longer knows (it expired) means every
 * claim is gone with it: the engine forgets them and registers again.
 *
 * A claim is this agent's when the own/ key is on this agent's lease --
 * not when its value is this agent's name, which a second agent of the
 * same name in another location could write.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "alert.h"
#include "cfg.h"
#include "cfg-read.h"
#include "cluster-run.h"
#include "etcd.h"
#include "host.h"
#include "log.h"
#include "manager.h"
#include "outcome.h"
#include "policy.h"
#include "store.h"
#include "util.h"

/* How often reconcile() runs without an event: drains finish and
 * join_grace ends between events. */
#define RECONCILE_EVERY_MS 200
/* A request's whole budget (retries over the endpoints included). */
#define REQ_TIMEOUT_US (2 * 1000 * 1000)
/* Requests of the slots (claims, releases, states) in flight at most. */
#define RECONCILE_INFLIGHT 64

enum phase { PH_IDLE, PH_GRANT, PH_REGISTER, PH_RUN, PH_STOP, PH_DEAD };
enum slot_req { SR_NONE, SR_CLAIM, SR_RELEASE };

struct member {
	char *key;             /* members/<location>/<name>, prefix stripped */
	char *name, *location;
	int64_t seen_us;       /* monotonic: when it counts as joined */
	char config[17];       /* its monitors' fingerprint ("": unknown) */
	char *api;             /* its API's host:port; NULL: none */
};

struct cslot {
	char *key;             /* the slot key (cluster.h) */
	char *monitor;         /* a running monitor checked here; NULL: a
	                        * claim seen in etcd that is not ours to
	                        * check */
	int located;           /* the slot is monitor@<this location> */
	int64_t interval_us;
	char *holder;          /* the claim's value; NULL: unclaimed */
	int64_t holder_lease;
	int64_t token;         /* the claim's create_revision */
	int want;              /* this agent is the slot's owner now */
	int gridded;           /* the manager was moved to the grid */
	struct etcd_req *req;
	enum slot_req req_kind;
	/* state/<slot>: the monitor's policy state as its owners commit it,
	 * fenced by the claim's token and the key's mod_revision. */
	int ready;             /* claimed and the stored state read */
	int state_dirty;       /* a transition waits to be committed */
	int64_t state_mod;     /* the key's mod_revision (0: absent) */
	struct etcd_req *sreq; /* its read or commit in flight */
	enum mstate vstate;    /* the state last committed (ST_COUNT: none) */
	enum mstate sent;      /* the state of the commit in flight */
	/* monitor@global: the decision slot of a multi-location monitor. */
	int global;
	char **locs;           /* its locations (owned), n_locs of them */
	size_t n_locs;
	int confirm;
	enum mstate gstate;    /* the decision in force */
	int64_t gsince_ms, gepisode_ms; /* since; the episode's start */
	char *g_by, *g_detail; /* of the decision being committed */
	int g_reason;
	/* A plain slot's transition made while fenced, which could not
	 * alert then: alerted once it is committed (etcd back, the lease
	 * and the claim still ours). */
	int unalerted;
	enum mstate unalerted_from;
	int64_t held_id;       /* the store id of a monitor whose alerts
	                        * wait for the commit in flight; 0: none */
	/* For the surfaces (cluster_run_monitor()). */
	int held_by_other;     /* another agent's claim on it went away:
	                        * claiming it now is a takeover */
	enum mstate gseen;     /* @global: the decision in etcd, from the
	                        * watch (ST_COUNT: none) */
};

static struct engine {
	struct cluster_conf cc;        /* copies */
	const struct wp_host *host;
	void (*fatal)(const char *msg);
	struct etcd *etcd;
	enum phase phase;
	char *prefix;                  /* "<cluster>/" */
	size_t prefix_len;
	char *self_key;                /* members/<location>/<name> */
	int64_t ttl_s;
	struct cluster_deadline dl;
	int64_t lease;
	int64_t conflict_since_us;     /* REGISTER met a foreign key; 0 */
	struct etcd_req *lease_req;    /* grant, keepalive or revoke */
	struct etcd_req *reg_req;
	struct etcd_req *load_req;
	struct etcd_watch *watch;
	int64_t revision;              /* the last revision read */
	struct member *members;
	size_t n_members, cap_members;
	struct cslot **slots;          /* sorted by key */
	size_t n_slots, cap_slots;
	unsigned owned;
	char config[17];               /* this agent's monitors' fingerprint */
	char *api;                     /* this agent's API, host:port; NULL */
	int64_t joined_us;             /* wall clock, this life's join */
	struct etcd_req *reput_req;    /* the member key with a new config */
	int reput_again;
	int renew_failed;              /* the last renewal got no answer */
	int lost;                      /* the cluster-lost event is raised */
	uint64_t lost_total;
	uint64_t takeovers_total, claim_conflicts_total;
	void (*stop_done)(void *);
	void *stop_arg;
} *E;

/* Outside the engine: host_loop_close() closes them after it is freed. */
static uv_timer_t renew_timer, tick_timer;
static int timers_on;

static void reconcile(void);
struct cslot;
static void state_read(struct cslot *s);
static void member_reput(void);
static void config_fingerprint(const struct config *cfg, char out[17]);
static void verdict_put(const char *key, const char *value, size_t len);
static void verdict_delete(const char *key);
static void verdicts_clear(void);
static void grant(void);
static void load_prefix(void);

/* ---- small helpers ---- */

static char *
xmemdup0(const char *p, size_t n)
{
	char *s = xmalloc(n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* The full etcd key of SUFFIX (a new string). */
static char *
full_key(const char *suffix)
{
	return xasprintf("%s%s", E->prefix, suffix);
}

static int
fenced(void)
{
	return E->phase != PH_RUN || cluster_deadline_fenced(&E->dl, mono_us());
}

/* ---- slots ---- */

static int
slot_cmp_key(const void *k, const void *e)
{
	return strcmp(k, (*(struct cslot *const *)e)->key);
}

static struct cslot *
slot_find(const char *key)
{
	struct cslot **p;

	if (E->n_slots == 0)
		return NULL;
	p = bsearch(key, E->slots, E->n_slots, sizeof(*E->slots),
	    slot_cmp_key);
	return p != NULL ? *p : NULL;
}

/* The slot KEY, created (unclaimed, no monitor) if new. */
static struct cslot *
slot_get(const char *key)
{
	struct cslot *s = slot_find(key);
	size_t lo = 0, hi = E->n_slots;

	if (s != NULL)
		return s;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (strcmp(E->slots[mid]->key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (E->n_slots == E->cap_slots) {
		E->cap_slots = E->cap_slots ? 2 * E->cap_slots : 64;
		E->slots = xrealloc(E->slots, E->cap_slots * sizeof(*E->slots));
	}
	memmove(E->slots + lo + 1, E->slots + lo,
	    (E->n_slots - lo) * sizeof(*E->slots));
	s = xcalloc(1, sizeof(*s));
	s->key = xstrdup(key);
	s->vstate = s->sent = ST_COUNT;
	s->gstate = ST_PENDING;
	s->gseen = ST_COUNT;
	E->slots[lo] = s;
	E->n_slots++;
	return s;
}

static void
slot_locs_free(struct cslot *s)
{
	size_t i;

	for (i = 0; i < s->n_locs; i++)
		free(s->locs[i]);
	free(s->locs);
	s->locs = NULL;
	s->n_locs = 0;
}

static void
slot_free(struct cslot *s)
{
	slot_locs_free(s);
	free(s->key);
	free(s->monitor);
	free(s->holder);
	free(s->g_by);
	free(s->g_detail);
	free(s);
}

static int
slot_mine(const struct cslot *s)
{
	return s->holder != NULL && E->lease != 0 &&
	    s->holder_lease == E->lease;
}

/* Drop slots that hold nothing: no monitor here, no claim, no request. */
static void
slots_prune(void)
{
	size_t i, j = 0;

	for (i = 0; i < E->n_slots; i++) {
		struct cslot *s = E->slots[i];

		if (s->monitor == NULL && s->holder == NULL && s->req == NULL &&
		    s->sreq == NULL) {
			slot_free(s);
			continue;
		}
		E->slots[j++] = s;
	}
	E->n_slots = j;
}

static void
slot_set_holder(struct cslot *s, const char *v, size_t n, int64_t lease,
    int64_t token)
{
	int was = slot_mine(s);

	free(s->holder);
	s->holder = v != NULL ? xmemdup0(v, n) : NULL;
	s->holder_lease = v != NULL ? lease : 0;
	s->token = v != NULL ? token : 0;
	if (was && !slot_mine(s)) {
		s->unalerted = 0;
		if (s->held_id != 0) {
			/* The claim is gone: whoever owns it now alerts. */
			alert_cluster_settle(s->held_id, 0);
			s->held_id = 0;
		}
		E->owned--;
		s->gridded = 0;
		s->ready = 0;
		s->state_dirty = 0;
		s->state_mod = 0;
		s->vstate = ST_COUNT;
	} else if (!was && slot_mine(s))
		E->owned++;
}

/* ---- members ---- */

static struct member *
member_find(const char *key)
{
	size_t i;

	for (i = 0; i < E->n_members; i++)
		if (strcmp(E->members[i].key, key) == 0)
			return &E->members[i];
	return NULL;
}

/* A put of members/<location>/<name> (KEY without the prefix).  JOINED_US
 * is the member's own wall-clock join time from its value (0: unknown,
 * taken as now), so that every agent sees it join at about the same
 * moment whether it was there before them or not. */
static void
member_put(const char *key, const char *value, size_t value_len)
{
	const char *loc = key + strlen("members/"), *slash;
	struct member *m;
	json_t *j;
	int64_t joined = 0, now = mono_us(), age;
	const char *cfg, *api = NULL;
	char config[17] = "";

	if ((slash = strchr(loc, '/')) == NULL || slash == loc ||
	    slash[1] == '\0')
		return;
	if ((j = json_loadb(value, value_len, 0, NULL)) != NULL) {
		joined = json_integer_value(json_object_get(j, "joined_us"));
		cfg = json_string_value(json_object_get(j, "config"));
		str_copy(config, sizeof(config), cfg != NULL ? cfg : "");
		api = json_string_value(json_object_get(j, "api"));
	}
	if ((m = member_find(key)) != NULL) {
		/* A re-put (same life, a reload) keeps its join time. */
		memcpy(m->config, config, sizeof(config));
		json_decref(j);
		return;
	}
	if (E->n_members == E->cap_members) {
		E->cap_members = E->cap_members ? 2 * E->cap_members : 8;
		E->members = xrealloc(E->members,
		    E->cap_members * sizeof(*E->members));
	}
	m = &E->members[E->n_members++];
	m->key = xstrdup(key);
	m->location = xmemdup0(loc, (size_t)(slash - loc));
	m->name = xstrdup(slash + 1);
	age = joined > 0 ? wall_us() - joined : 0;
	if (age < 0)
		age = 0;
	m->seen_us = now - age;
	memcpy(m->config, config, sizeof(config));
	m->api = api != NULL ? xstrdup(api) : NULL;
	json_decref(j);
	log_info("cluster: member %s (%s) joined", m->name, m->location);
}

static void
member_delete(const char *key)
{
	struct member *m = member_find(key);

	if (m == NULL)
		return;
	log_info("cluster: member %s (%s) left", m->name, m->location);
	free(m->key);
	free(m->name);
	free(m->location);
	free(m->api);
	*m = E->members[--E->n_members];
}

static void
members_clear(void)
{
	while (E->n_members > 0)
		member_delete(E->members[0].key);
}

/* ---- what etcd says: one key at a time ---- */

static int state_parse(const char *value, size_t len,
    struct policy_state *ps, int64_t *episode_ms);

/* state/SLOT was put (VALUE) or deleted (VALUE NULL): for an @global
 * slot of ours, the decision every agent shows (the status page). */
static void
decision_seen(const char *slot, const char *value, size_t len)
{
	size_t n = strlen(slot);
	struct policy_state ps;
	struct cslot *s;

	if (n < 7 || strcmp(slot + n - 7, "@global") != 0 ||
	    (s = slot_find(slot)) == NULL || !s->global)
		return;
	s->gseen = value != NULL && state_parse(value, len, &ps, NULL) == 0 ?
	    ps.state : ST_COUNT;
}

static void
kv_put(const struct etcd_kv *kv)
{
	char *key;

	if (kv->key_len < E->prefix_len ||
	    memcmp(kv->key, E->prefix, E->prefix_len) != 0)
		return;
	key = xmemdup0(kv->key + E->prefix_len, kv->key_len - E->prefix_len);
	if (strncmp(key, "members/", 8) == 0)
		member_put(key, kv->value, kv->value_len);
	else if (strncmp(key, "own/", 4) == 0 && key[4] != '\0')
		slot_set_holder(slot_get(key + 4), kv->value, kv->value_len,
		    kv->lease, kv->create_revision);
	else if (strncmp(key, "verdict/", 8) == 0)
		verdict_put(key + 8, kv->value, kv->value_len);
	else if (strncmp(key, "state/", 6) == 0)
		decision_seen(key + 6, kv->value, kv->value_len);
	free(key);
}

static void
kv_delete(const char *k, size_t n)
{
	char *key;
	struct cslot *s;

	if (n < E->prefix_len || memcmp(k, E->prefix, E->prefix_len) != 0)
		return;
	key = xmemdup0(k + E->prefix_len, n - E->prefix_len);
	if (strncmp(key, "members/", 8) == 0)
		member_delete(key);
	else if (strncmp(key, "own/", 4) == 0 &&
	    (s = slot_find(key + 4)) != NULL) {
		if (s->holder != NULL && !slot_mine(s))
			s->held_by_other = 1;
		slot_set_holder(s, NULL, 0, 0, 0);
	} else if (strncmp(key, "verdict/", 8) == 0)
		verdict_delete(key + 8);
	else if (strncmp(key, "state/", 6) == 0)
		decision_seen(key + 6, NULL, 0);
	free(key);
}

/* ---- the watch ---- */

static void
watch_fn(void *arg, const struct etcd_watch_batch *b)
{
	size_t i;

	(void)arg;
	if (b->compacted) {
		/* The watch stopped: read everything again from now. */
		log_warn("cluster: watch compacted at revision %lld; re-reading",
		    (long long)b->compact_revision);
		load_prefix(); /* stops this watch, starts one after the read */
		return;
	}
	for (i = 0; i < b->n_events; i++) {
		const struct etcd_event *ev = &b->events[i];

		if (ev->type == ETCD_EVENT_PUT)
			kv_put(&ev->kv);
		else
			kv_delete(ev->kv.key, ev->kv.key_len);
	}
	if (b->revision > E->revision)
		E->revision = b->revision;
	if (b->n_events > 0)
		reconcile();
}

static void
load_cb(void *arg, const struct etcd_result *r)
{
	size_t i, n;
	char *end;

	(void)arg;
	E->load_req = NULL;
	if (r->err != ETCD_OK) {
		log_warn("cluster: reading %s: %s", E->prefix, r->message);
		return; /* the tick tries again */
	}
	/* A full read replaces what was known. */
	members_clear();
	verdicts_clear();
	for (i = 0; i < E->n_slots; i++) {
		slot_set_holder(E->slots[i], NULL, 0, 0, 0);
		E->slots[i]->gseen = ST_COUNT;
	}
	for (i = 0; i < r->n_kvs; i++)
		kv_put(&r->kvs[i]);
	E->revision = r->revision;
	end = xmalloc(E->prefix_len + 1);
	n = etcd_prefix_end(E->prefix, E->prefix_len, end);
	if (etcd_watch_start(E->etcd, E->prefix, E->prefix_len, end, n,
	    r->revision + 1, watch_fn, NULL, &E->watch) != 0) {
		log_err("cluster: cannot watch %s", E->prefix);
		E->watch = NULL;
	}
	free(end);
	slots_prune();
	reconcile();
}

/* Read the whole prefix, then watch it from the revision read. */
static void
load_prefix(void)
{
	char *end;
	size_t n;

	etcd_watch_stop(E->watch);
	E->watch = NULL;
	if (E->load_req != NULL)
		return;
	end = xmalloc(E->prefix_len + 1);
	n = etcd_prefix_end(E->prefix, E->prefix_len, end);
	if (etcd_range(E->etcd, E->prefix, E->prefix_len, end, n, 0, 0,
	    load_cb, NULL, &E->load_req) != 0)
		E->load_req = NULL;
	free(end);
}

/* ---- claims ---- */

static void
claim_cb(void *arg, const struct etcd_result *r)
{
	struct cslot *s = arg;
	enum slot_req kind = s->req_kind;

	s->req = NULL;
	s->req_kind = SR_NONE;
	if (r->err != ETCD_OK) {
		log_warn("cluster: %s %s: %s", kind == SR_CLAIM ? "claiming" :
		    "releasing", s->key, r->message);
		return; /* reconcile() tries again */
	}
	if (kind == SR_CLAIM && r->succeeded) {
		/* The txn's one put is at the header's revision: that is the
		 * key's create_revision, the claim's token. */
		slot_set_holder(s, E->cc.name, strlen(E->cc.name), E->lease,
		    r->revision);
		if (s->held_by_other)
			E->takeovers_total++;
		s->held_by_other = 0;
		log_info("cluster: claimed %s (token %lld)", s->key,
		    (long long)r->revision);
	} else if (kind == SR_RELEASE && r->succeeded) {
		slot_set_holder(s, NULL, 0, 0, 0);
		log_info("cluster: released %s", s->key);
	} else if (kind == SR_CLAIM)
		E->claim_conflicts_total++;
	/* Go on with this slot at once; the rest waits for the tick, so
	 * that thousands of answers do not each walk every slot. */
	if (slot_mine(s) && s->want && !s->ready && s->sreq == NULL &&
	    !fenced())
		state_read(s);
}

static void
slot_claim(struct cslot *s)
{
	char *key = xasprintf("%sown/%s", E->prefix, s->key);
	struct etcd_cmp cmp = { .key = key, .key_len = strlen(key),
	    .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0 };
	struct etcd_op put = { .type = ETCD_OP_PUT, .key = key,
	    .key_len = strlen(key), .value = E->cc.name,
	    .value_len = strlen(E->cc.name), .lease = E->lease };

	if (etcd_txn(E->etcd, &cmp, 1, &put, 1, NULL, 0, claim_cb, s,
	    &s->req) == 0)
		s->req_kind = SR_CLAIM;
	else
		s->req = NULL;
	free(key);
}

static void
slot_release(struct cslot *s)
{
	char *key = xasprintf("%sown/%s", E->prefix, s->key);
	struct etcd_cmp cmp = { .key = key, .key_len = strlen(key),
	    .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL,
	    .number = s->token };
	struct etcd_op del = { .type = ETCD_OP_DELETE, .key = key,
	    .key_len = strlen(key) };

	if (etcd_txn(E->etcd, &cmp, 1, &del, 1, NULL, 0, claim_cb, s,
	    &s->req) == 0)
		s->req_kind = SR_RELEASE;
	else
		s->req = NULL;
	free(key);
}

/* ---- the state a slot's owners hand on ---- */

/*
 * Three kinds of slot, three keys:
 *   a plain monitor's slot    state/<monitor>: the policy state, for the
 *                             next owner to continue from;
 *   a location's slot         verdict/<monitor>/<location>, on the
 *                             owner's lease: this location's view (a
 *                             location with no live agent has none);
 *   the @global slot          state/<monitor>@global: the decision, made
 *                             from the verdicts by its owner, who alerts.
 * Every write is a txn fenced by the claim's token (and for state/ keys
 * by the key's mod_revision): a superseded owner writes nothing.
 */

static char *
state_key(const struct cslot *s)
{
	return xasprintf("%sstate/%s", E->prefix, s->key);
}

static char *
verdict_key(const struct cslot *s)
{
	return xasprintf("%sverdict/%s/%s", E->prefix, s->monitor,
	    E->cc.location);
}

/* Parse a state/ value into *PS: 0, or -1 when it is not one. */
static int
state_parse(const char *value, size_t len, struct policy_state *ps,
    int64_t *episode_ms)
{
	json_t *v = json_loadb(value, len, 0, NULL);
	const char *st;
	int rc = -1;

	if (v == NULL)
		return -1;
	memset(ps, 0, sizeof(*ps));
	st = json_string_value(json_object_get(v, "state"));
	if (st != NULL && mstate_parse(st, &ps->state) == 0) {
		ps->since_ms = json_integer_value(json_object_get(v,
		    "since_ms"));
		ps->streak = (int)json_integer_value(json_object_get(v,
		    "streak"));
		ps->repeats = (unsigned)json_integer_value(json_object_get(v,
		    "repeats"));
		ps->notified_ms = json_integer_value(json_object_get(v,
		    "notified_ms"));
		ps->escalated_ms = json_integer_value(json_object_get(v,
		    "escalated_ms"));
		if (episode_ms != NULL)
			*episode_ms = json_integer_value(json_object_get(v,
			    "episode_ms"));
		rc = 0;
	}
	json_decref(v);
	return rc;
}

/* ---- verdicts (the @global owner's view of every location) ---- */

struct verdict {
	char *key;             /* <monitor>/<location> */
	enum mstate state;
	int reason;
	char *detail;          /* NULL: none */
};
static struct verdict *verdicts;
static size_t n_verdicts, cap_verdicts;

static long
verdict_index(const char *key, int *found)
{
	size_t lo = 0, hi = n_verdicts;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(verdicts[mid].key, key);

		if (c == 0) {
			*found = 1;
			return (long)mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return (long)lo;
}

static const struct verdict *
verdict_find(const char *monitor, const char *location)
{
	char *key = xasprintf("%s/%s", monitor, location);
	int found;
	long i = verdict_index(key, &found);

	free(key);
	return found ? &verdicts[i] : NULL;
}

/* A put of verdict/KEY with VALUE {"state","reason","detail",...}. */
static void
verdict_put(const char *key, const char *value, size_t len)
{
	json_t *v = json_loadb(value, len, 0, NULL);
	const char *st = v ? json_string_value(json_object_get(v, "state")) :
	    NULL, *d;
	enum mstate state;
	struct verdict *r;
	int found;
	long i;

	if (st == NULL || mstate_parse(st, &state) != 0) {
		json_decref(v);
		return;
	}
	i = verdict_index(key, &found);
	if (!found) {
		if (n_verdicts == cap_verdicts) {
			cap_verdicts = cap_verdicts ? 2 * cap_verdicts : 16;
			verdicts = xrealloc(verdicts, cap_verdicts *
			    sizeof(*verdicts));
		}
		memmove(verdicts + i + 1, verdicts + i,
		    (n_verdicts - (size_t)i) * sizeof(*verdicts));
		n_verdicts++;
		verdicts[i] = (struct verdict){ .key = xstrdup(key) };
	}
	r = &verdicts[i];
	r->state = state;
	r->reason = (int)json_integer_value(json_object_get(v, "reason_code"));
	free(r->detail);
	d = json_string_value(json_object_get(v, "detail"));
	r->detail = d != NULL ? xstrdup(d) : NULL;
	json_decref(v);
}

static void
verdict_delete(const char *key)
{
	int found;
	long i = verdict_index(key, &found);

	if (!found)
		return;
	free(verdicts[i].key);
	free(verdicts[i].detail);
	memmove(verdicts + i, verdicts + i + 1,
	    (n_verdicts - (size_t)i - 1) * sizeof(*verdicts));
	n_verdicts--;
}

static void
verdicts_clear(void)
{
	while (n_verdicts > 0)
		verdict_delete(verdicts[0].key);
}

static void slot_grid(struct cslot *s);

static void
state_read_cb(void *arg, const struct etcd_result *r)
{
	struct cslot *s = arg;
	struct policy_state ps;
	int64_t episode = 0;

	s->sreq = NULL;
	if (r->err != ETCD_OK) {
		log_warn("cluster: reading the state of %s: %s", s->key,
		    r->message);
		return; /* reconcile() tries again */
	}
	if (!slot_mine(s) || s->monitor == NULL)
		return;
	s->state_mod = 0;
	s->vstate = ST_COUNT;
	if (s->global) {
		s->gstate = ST_PENDING;
		s->gsince_ms = 0;
		s->gepisode_ms = 0;
	}
	if (r->n_kvs == 1) {
		s->state_mod = r->kvs[0].mod_revision;
		if (state_parse(r->kvs[0].value, r->kvs[0].value_len, &ps,
		    &episode) != 0)
			;
		else if (s->global) {
			s->gstate = ps.state;
			s->gsince_ms = ps.since_ms;
			s->gepisode_ms = episode;
		} else if (manager_seed_state(s->monitor, &ps) == 0) {
			s->vstate = ps.state;
			log_info("cluster: %s continues %s (since %lld)", s->key,
			    mstate_name(ps.state), (long long)ps.since_ms);
		}
	}
	s->ready = 1;
	slot_grid(s);
}

/* A slot just claimed: read what the previous owners left (a location's
 * slot starts afresh: its first check gives its verdict).  The gate
 * opens after it. */
static void
state_read(struct cslot *s)
{
	char *key;

	if (s->located) {
		s->vstate = ST_COUNT;
		s->ready = 1;
		slot_grid(s);
		return;
	}
	key = state_key(s);
	if (etcd_range(E->etcd, key, strlen(key), NULL, 0, 0, 0,
	    state_read_cb, s, &s->sreq) != 0)
		s->sreq = NULL;
	free(key);
}

static void state_commit(struct cslot *s);

static void
state_commit_cb(void *arg, const struct etcd_result *r)
{
	struct cslot *s = arg;

	s->sreq = NULL;
	if (r->err != ETCD_OK) {
		log_warn("cluster: committing the state of %s: %s", s->key,
		    r->message);
		s->state_dirty = 1; /* reconcile() tries again */
		free(s->g_by);
		s->g_by = NULL;
		return;
	}
	if (!r->succeeded) {
		/* Not ours any more, or written behind our back: read it
		 * again before going on (the gate waits). */
		log_warn("cluster: the state of %s was not committed (claim "
		    "or revision changed); re-reading it", s->key);
		if (s->held_id != 0) {
			alert_cluster_settle(s->held_id, 0);
			s->held_id = 0;
		}
		s->ready = 0;
		s->state_dirty = 0;
		free(s->g_by);
		s->g_by = NULL;
		reconcile();
		return;
	}
	if (!s->located)
		s->state_mod = r->revision;
	if (s->unalerted && !s->global && s->monitor != NULL &&
	    s->unalerted_from != ST_COUNT && s->sent != s->unalerted_from) {
		const char *detail = NULL;
		int reason = 0;
		struct policy_state ps;

		(void)manager_state_reason(s->monitor, &reason, &detail);
		if (manager_policy_state(s->monitor, &ps) == 0) {
			log_info("cluster: monitor %s: %s -> %s while etcd was "
			    "out of reach; alerting now", s->monitor,
			    mstate_name(s->unalerted_from), mstate_label(s->sent));
			(void)manager_cluster_alert(s->monitor,
			    s->unalerted_from, s->sent, wall_ms(), ps.since_ms,
			    reason, detail, NULL);
		}
	}
	s->unalerted = 0;
	s->vstate = s->sent;
	if (s->held_id != 0) {
		alert_cluster_settle(s->held_id, 1);
		s->held_id = 0;
	}
	if (s->global) {
		/* Committed: now, and only now, the decision alerts. */
		enum mstate prev = s->gstate;
		int64_t now = wall_ms(), episode;

		episode = s->sent == ST_UP ? s->gepisode_ms : now;
		log_info("cluster: monitor %s: %s -> %s, confirmed by %s",
		    s->monitor, mstate_name(prev), mstate_label(s->sent),
		    s->g_by ? s->g_by : "-");
		(void)manager_cluster_alert(s->monitor, prev, s->sent, now,
		    episode, s->g_reason, s->g_detail, s->g_by);
		s->gstate = s->sent;
		s->gsince_ms = now;
		if (s->sent != ST_UP)
			s->gepisode_ms = now;
		free(s->g_by);
		free(s->g_detail);
		s->g_by = s->g_detail = NULL;
	}
	if (s->state_dirty)
		state_commit(s);
	/* else a release or a decision waiting for it goes at the tick */
}

/*
 * Commit a slot's state: a plain slot's policy state, a location's
 * verdict, or (global, with s->sent and the g_ fields set by decide())
 * the decision.  Only while this agent's claim (its token) holds.
 */
static void
state_commit(struct cslot *s)
{
	struct policy_state ps;
	char *key, *own, *value;
	struct etcd_cmp cmp[2];
	struct etcd_op put;
	const char *detail = NULL;
	int reason = 0;
	json_t *v;

	memset(&ps, 0, sizeof(ps));
	if (s->global) {
		ps.state = s->sent;
		ps.since_ms = wall_ms();
		v = json_pack("{s:s, s:I, s:I, s:s?, s:s}", "state",
		    mstate_name(s->sent), "since_ms", (json_int_t)ps.since_ms,
		    "episode_ms", (json_int_t)(s->sent == ST_UP ?
		    s->gepisode_ms : ps.since_ms), "confirmed_by", s->g_by,
		    "agent", E->cc.name);
	} else if (s->monitor == NULL ||
	    manager_policy_state(s->monitor, &ps) != 0) {
		s->state_dirty = 0;
		return;
	} else {
		(void)manager_state_reason(s->monitor, &reason, &detail);
		v = json_pack("{s:s, s:I, s:i, s:I, s:I, s:I, s:i, s:s?, s:s, "
		    "s:s}", "state", mstate_name(ps.state), "since_ms",
		    (json_int_t)ps.since_ms, "streak", ps.streak, "repeats",
		    (json_int_t)ps.repeats, "notified_ms",
		    (json_int_t)ps.notified_ms, "escalated_ms",
		    (json_int_t)ps.escalated_ms, "reason_code", reason,
		    "detail", detail, "agent", E->cc.name, "location",
		    E->cc.location);
		s->sent = ps.state;
	}
	value = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	key = s->located ? verdict_key(s) : state_key(s);
	own = xasprintf("%sown/%s", E->prefix, s->key);
	cmp[0] = (struct etcd_cmp){ .key = own, .key_len = strlen(own),
	    .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL,
	    .number = s->token };
	cmp[1] = (struct etcd_cmp){ .key = key, .key_len = strlen(key),
	    .target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL,
	    .number = s->state_mod };
	/* A verdict is on this agent's lease: it goes when the agent does. */
	put = (struct etcd_op){ .type = ETCD_OP_PUT, .key = key,
	    .key_len = strlen(key), .value = value,
	    .value_len = strlen(value), .lease = s->located ? E->lease : 0 };
	s->state_dirty = 0;
	if (etcd_txn(E->etcd, cmp, s->located ? 1 : 2, &put, 1, NULL, 0,
	    state_commit_cb, s, &s->sreq) != 0) {
		s->sreq = NULL;
		s->state_dirty = 1;
	}
	free(value);
	free(own);
	free(key);
}

/*
 * The @global decision for slot S (CLUSTER.md): DOWN when at least
 * `confirm` locations say down, UP when at least n - confirm + 1 say up
 * (degraded counts as up), otherwise it stays as it is -- so a location
 * that is cut off can never raise an alert alone, and losing a vantage
 * point can never fake a recovery.  A change is committed first and
 * alerted when the commit holds.
 */
static void
decide(struct cslot *s)
{
	struct sbuf by = { 0 };
	const struct verdict *first = NULL;
	size_t i, down = 0, up = 0, n = s->n_locs;
	enum mstate next = s->gstate;
	int c = s->confirm;

	for (i = 0; i < n; i++) {
		const struct verdict *v = verdict_find(s->monitor, s->locs[i]);

		if (v != NULL && v->state == ST_DOWN)
			down++;
		else if (v != NULL && mstate_is_up(v->state))
			up++;
	}
	if (down >= (size_t)c)
		next = ST_DOWN;
	else if (up >= n - (size_t)c + 1)
		next = ST_UP;
	if (next == s->gstate)
		return;
	for (i = 0; i < n; i++) {
		const struct verdict *v = verdict_find(s->monitor, s->locs[i]);

		if (v == NULL || (next == ST_DOWN ? v->state != ST_DOWN :
		    !mstate_is_up(v->state)))
			continue;
		if (first == NULL)
			first = v;
		sbuf_printf(&by, "%s%s", by.len ? "," : "", s->locs[i]);
	}
	free(s->g_by);
	free(s->g_detail);
	s->g_by = sbuf_steal(&by);
	s->g_reason = first != NULL ? first->reason : 0;
	s->g_detail = next == ST_DOWN ? xasprintf("down from %zu of %zu "
	    "locations (%s; confirm = %d)%s%s", down, n, s->g_by, c,
	    first != NULL && first->detail != NULL ? ": " : "",
	    first != NULL && first->detail != NULL ? first->detail : "") :
	    NULL;
	s->sent = next;
	state_commit(s);
}

/* The slot this agent checks MONITOR in: the plain one, or the one of
 * its location; NULL when it checks it nowhere. */
static struct cslot *
slot_of_monitor(const char *monitor)
{
	char key[2 * CFG_NAME_MAX + 8];
	struct cslot *s;

	if ((s = slot_find(monitor)) != NULL && s->monitor != NULL)
		return s;
	if (cluster_slot_key(key, sizeof(key), monitor, E->cc.location) < 0 ||
	    (s = slot_find(key)) == NULL || s->monitor == NULL)
		return NULL;
	return s;
}

/* cluster.h's checked hook: a check of MONITOR finished here. */
static void
on_checked(const char *monitor, const struct policy_state *ps,
    const struct store_alert *rows, size_t n)
{
	struct cslot *s;
	enum mstate last;

	if (E == NULL || (s = slot_of_monitor(monitor)) == NULL ||
	    !slot_mine(s) || !s->ready)
		return;
	/* What etcd has, or will have once the commit in flight lands. */
	last = s->sreq != NULL ? s->sent : s->vstate;
	if (ps->state == last && n == 0)
		return;
	if (n > 0) {
		/* The transition's alerts go once it is committed. */
		alert_cluster_hold(rows, n);
		s->held_id = rows[0].monitor_id;
	} else if (fenced() && !s->located && !s->unalerted &&
	    s->held_id == 0) {
		/* Fenced, it could not alert: it will when committed. */
		s->unalerted = 1;
		s->unalerted_from = s->vstate;
	}
	s->state_dirty = 1;
	if (s->sreq == NULL && !fenced())
		state_commit(s);
}

/* Put the monitor of a slot just claimed on the wall-clock grid, so a
 * new owner keeps the rhythm of the old one. */
static void
slot_grid(struct cslot *s)
{
	int64_t k, due;

	if (s->gridded || s->global || s->monitor == NULL ||
	    s->interval_us <= 0)
		return;
	due = cluster_grid_next(s->monitor, s->interval_us, wall_us(),
	    mono_us(), -1, &k);
	if (manager_set_due(s->monitor, due, k) == 0)
		s->gridded = 1;
}

/*
 * The one decision: for each slot this agent could check, who should own
 * it now, and what to do about the claim.  Never takes a held claim;
 * releases its own only when no check of the monitor is in flight and
 * its state is committed.
 */
static void
reconcile(void)
{
	struct cluster_member *cm;
	int64_t now = mono_us();
	size_t i, busy = 0;
	int had;

	if (E->phase != PH_RUN && E->phase != PH_STOP)
		return;
	cm = xcalloc(E->n_members + 1, sizeof(*cm));
	for (i = 0; i < E->n_members; i++) {
		cm[i].name = E->members[i].name;
		cm[i].location = E->members[i].location;
		cm[i].seen_us = E->members[i].seen_us;
	}
	/* At most RECONCILE_INFLIGHT requests of the slots at a time: 3,000
	 * agents' worth of claims at once only makes etcd time them out. */
	for (i = 0; i < E->n_slots; i++)
		busy += (E->slots[i]->req != NULL) + (E->slots[i]->sreq != NULL);
	for (i = 0; i < E->n_slots; i++) {
		struct cslot *s = E->slots[i];
		long o;

		if (s->monitor == NULL) {
			/* Ours, but no monitor here any more: release. */
			s->want = 0;
		} else {
			o = cluster_hrw_owner(s->key, cm, E->n_members,
			    s->located ? E->cc.location : NULL, E->cc.name,
			    now, E->cc.join_grace_ms * 1000);
			s->want = E->phase == PH_RUN && o >= 0 &&
			    strcmp(cm[o].name, E->cc.name) == 0 &&
			    strcmp(cm[o].location, E->cc.location) == 0;
		}
		if (s->req != NULL || fenced())
			continue;
		if (busy >= RECONCILE_INFLIGHT && s->sreq == NULL &&
		    !(s->want && slot_mine(s) && s->ready && !s->global &&
		    !s->state_dirty))
			continue; /* no request to spare (slot_grid needs none) */
		had = (s->req != NULL) + (s->sreq != NULL);
		if (s->want && s->holder == NULL)
			slot_claim(s);
		else if (slot_mine(s) && s->sreq != NULL)
			continue; /* its state is being read or committed */
		else if (s->want && slot_mine(s) && !s->ready)
			state_read(s);
		else if (slot_mine(s) && s->state_dirty)
			state_commit(s);
		else if (s->want && slot_mine(s) && s->global)
			decide(s);
		else if (s->want && slot_mine(s))
			slot_grid(s);
		else if (!s->want && slot_mine(s) && (s->monitor == NULL ||
		    s->global || !manager_busy(s->monitor)))
			slot_release(s);
		busy += (size_t)((s->req != NULL) + (s->sreq != NULL) - had);
	}
	free(cm);
	slots_prune();
}

/* The manager's hooks (cluster.h). */
static int
may_start(const char *monitor)
{
	struct cslot *s;

	if (E == NULL || (s = slot_of_monitor(monitor)) == NULL)
		return 0;
	if (fenced())
		/* on_engine_loss = observe: while etcd does not answer, the
		 * slots last held go on being checked here (recorded, never
		 * committed or alerted).  Not after a pause (SIGSTOP, swap):
		 * only once a renewal has failed. */
		return E->cc.on_engine_loss == CLUSTER_OBSERVE &&
		    E->phase == PH_RUN && E->renew_failed && s->want &&
		    slot_mine(s) && s->ready;
	return s->want && slot_mine(s) && s->ready;
}

static int
alerts_here(const char *monitor)
{
	struct cslot *s;

	/* A location's checks give a verdict; the @global owner alerts. */
	if (E == NULL || fenced() || (s = slot_of_monitor(monitor)) == NULL ||
	    s->located)
		return 0;
	return may_start(monitor);
}

static const struct cluster_hooks hooks = { may_start, alerts_here,
	on_checked };

/* ---- the lease ---- */

static int64_t lease_sent_us;

static void
lease_lost(void)
{
	size_t i;

	log_warn("cluster: lease %llx is gone; registering again",
	    (unsigned long long)E->lease);
	cluster_deadline_lost(&E->dl);
	/* Every claim and the member key went with the lease. */
	for (i = 0; i < E->n_slots; i++)
		if (slot_mine(E->slots[i]))
			slot_set_holder(E->slots[i], NULL, 0, 0, 0);
	E->lease = 0;
	E->joined_us = 0; /* a new life */
	E->phase = PH_GRANT;
	grant();
}

static void
keepalive_cb(void *arg, const struct etcd_result *r)
{
	int was_fenced;

	(void)arg;
	E->lease_req = NULL;
	if (E->phase != PH_RUN && E->phase != PH_REGISTER)
		return;
	if (r->err == ETCD_ENOTFOUND || (r->err == ETCD_OK && r->ttl_s <= 0)) {
		E->renew_failed = 0;
		lease_lost();
		return;
	}
	if (r->err != ETCD_OK) {
		log_warn("cluster: renewing the lease: %s", r->message);
		E->renew_failed = 1;
		return;
	}
	E->renew_failed = 0;
	was_fenced = fenced();
	cluster_deadline_ack(&E->dl, E->lease, lease_sent_us, r->ttl_s);
	if (was_fenced && !fenced()) {
		log_info("cluster: lease renewed; unfenced");
		reconcile();
	}
}

static void
renew_cb(uv_timer_t *t)
{
	(void)t;
	if (E->lease == 0 || E->lease_req != NULL ||
	    (E->phase != PH_RUN && E->phase != PH_REGISTER))
		return;
	lease_sent_us = mono_us();
	if (etcd_lease_keepalive(E->etcd, E->lease, keepalive_cb, NULL,
	    &E->lease_req) != 0)
		E->lease_req = NULL;
}

static void register_member(void);

/* This agent's member value: who, where, since when, its monitors'
 * fingerprint and its API (for GET /api/cluster/sd). */
static json_t *
member_value(void)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s?}", "name", E->cc.name,
	    "location", E->cc.location, "joined_us", (json_int_t)E->joined_us,
	    "config", E->config, "api", E->api);
}

static void
register_cb(void *arg, const struct etcd_result *r)
{
	char msg[512];
	int64_t now = mono_us();

	(void)arg;
	E->reg_req = NULL;
	if (E->phase != PH_REGISTER)
		return;
	if (r->err == ETCD_ENOTFOUND) {
		lease_lost();
		return;
	}
	if (r->err != ETCD_OK) {
		log_warn("cluster: registering: %s", r->message);
		return; /* the tick tries again */
	}
	if (!r->succeeded && !(r->n_kvs == 1 && r->kvs[0].lease == E->lease)) {
		/* Another lease holds the name: wait out a previous life. */
		if (E->conflict_since_us == 0) {
			E->conflict_since_us = now;
			log_warn("cluster: the name %s is registered on another "
			    "lease; waiting for it to expire", E->cc.name);
		}
		if (now - E->conflict_since_us > 2 * E->ttl_s * 1000000 +
		    1000000) {
			snprintf(msg, sizeof(msg), "[cluster]: another live agent "
			    "is named %s in location %s (its lease keeps being "
			    "renewed); give this one another name",
			    E->cc.name, E->cc.location);
			E->phase = PH_DEAD;
			E->fatal(msg);
		}
		return;
	}
	E->conflict_since_us = 0;
	E->phase = PH_RUN;
	log_info("cluster: joined %s as %s (%s), lease %llx", E->prefix,
	    E->cc.name, E->cc.location, (unsigned long long)E->lease);
	if (E->watch == NULL)
		load_prefix();
	else
		reconcile();
}

static void
register_member(void)
{
	char *key = full_key(E->self_key), *value;
	struct etcd_cmp cmp = { .key = key, .key_len = strlen(key),
	    .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0 };
	struct etcd_op put = { .type = ETCD_OP_PUT, .key = key,
	    .key_len = strlen(key), .lease = E->lease };
	struct etcd_op get = { .type = ETCD_OP_RANGE, .key = key,
	    .key_len = strlen(key) };
	json_t *v;

	if (E->joined_us == 0)
		E->joined_us = wall_us();
	v = member_value();

	value = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	put.value = value;
	put.value_len = strlen(value);
	if (etcd_txn(E->etcd, &cmp, 1, &put, 1, &get, 1, register_cb, NULL,
	    &E->reg_req) != 0)
		E->reg_req = NULL;
	free(value);
	free(key);
}

static void
grant_cb(void *arg, const struct etcd_result *r)
{
	(void)arg;
	E->lease_req = NULL;
	if (E->phase != PH_GRANT)
		return;
	if (r->err != ETCD_OK) {
		log_warn("cluster: asking etcd for a lease: %s", r->message);
		return; /* the tick tries again */
	}
	E->lease = r->lease_id;
	cluster_deadline_ack(&E->dl, E->lease, lease_sent_us, r->ttl_s);
	E->phase = PH_REGISTER;
	register_member();
}

static void
grant(void)
{
	if (E->lease_req != NULL)
		return;
	lease_sent_us = mono_us();
	if (etcd_lease_grant(E->etcd, E->ttl_s, grant_cb, NULL,
	    &E->lease_req) != 0)
		E->lease_req = NULL;
}

/* The cluster-lost event, once per loss: a member fenced by its own
 * deadline (etcd out of reach, or this agent paused) is not a member in
 * good standing until a renewal is answered. */
static void
engine_event(void)
{
	int lost = E->phase == PH_RUN && fenced();

	if (lost && !E->lost) {
		E->lost = 1;
		E->lost_total++;
		log_err("cluster-lost: etcd has not answered a lease renewal "
		    "in time; fenced (%s: %s)", E->cc.on_engine_loss ==
		    CLUSTER_OBSERVE ? "observe" : "strict",
		    E->cc.on_engine_loss == CLUSTER_OBSERVE ? "the slots held "
		    "are checked here but nothing is committed or alerted" :
		    "no slot is checked");
	} else if (!lost && E->lost && E->phase == PH_RUN) {
		E->lost = 0;
		log_info("cluster: etcd answers again; no longer fenced");
	}
}

/* Every RECONCILE_EVERY_MS: whatever is waiting to be tried again. */
static void
tick_cb(uv_timer_t *t)
{
	(void)t;
	switch (E->phase) {
	case PH_GRANT:
		grant();
		break;
	case PH_REGISTER:
		if (E->reg_req == NULL)
			register_member();
		break;
	case PH_RUN:
		if (E->watch == NULL && E->load_req == NULL)
			load_prefix();
		reconcile();
		break;
	default:
		break;
	}
	engine_event();
}

/* ---- the interface ---- */

/* A listen address as others reach it: a wildcard host is this host's
 * name.  A new string, or NULL for no API. */
static char *
api_advertised(const char *where)
{
	char host[256];
	const char *port;

	if (where == NULL)
		return NULL;
	if ((strncmp(where, "0.0.0.0:", 8) == 0 ||
	    strncmp(where, "[::]:", 5) == 0) &&
	    (port = strrchr(where, ':')) != NULL &&
	    gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		return xasprintf("%s%s", host, port);
	}
	return xstrdup(where);
}

int
cluster_run_start(const struct cluster_conf *cc, const struct wp_host *host,
    const char *api, void (*fatal)(const char *msg))
{
	struct etcd_opts o = { 0 };
	int rc;

	if (E != NULL || !cc->enabled)
		return WP_EINVAL;
	E = xcalloc(1, sizeof(*E));
	E->host = host;
	E->fatal = fatal;
	cluster_conf_copy(&E->cc, cc);
	E->api = api_advertised(api);
	E->prefix = xasprintf("%s/", cc->prefix);
	E->prefix_len = strlen(E->prefix);
	E->self_key = xasprintf("members/%s/%s", cc->location, cc->name);
	/* etcd grants whole seconds, at least 2. */
	E->ttl_s = (cc->lease_ttl_ms + 999) / 1000;
	if (E->ttl_s < 2)
		E->ttl_s = 2;
	cluster_deadline_init(&E->dl, E->ttl_s * 1000000);

	o.endpoints = (const char *const *)E->cc.etcd;
	o.n_endpoints = E->cc.n_etcd;
	o.user = E->cc.user;
	o.password = E->cc.password;
	o.ca_file = E->cc.ca_file;
	o.client_cert = E->cc.client_cert;
	o.client_key = E->cc.client_key;
	o.request_timeout_us = REQ_TIMEOUT_US < E->ttl_s * 1000000 / 3 ?
	    REQ_TIMEOUT_US : E->ttl_s * 1000000 / 3;
	o.watch_progress_us = E->cc.watch_progress_ms * 1000;
	if ((rc = etcd_new(host, &o, &E->etcd)) != 0) {
		cluster_run_free();
		return rc;
	}
	if (!timers_on) {
		uv_timer_init(main_loop, &renew_timer);
		uv_timer_init(main_loop, &tick_timer);
		timers_on = 1;
	}
	uv_timer_start(&renew_timer, renew_cb,
	    (uint64_t)(cluster_renew_every(E->ttl_s * 1000000) / 1000),
	    (uint64_t)(cluster_renew_every(E->ttl_s * 1000000) / 1000));
	uv_timer_start(&tick_timer, tick_cb, RECONCILE_EVERY_MS,
	    RECONCILE_EVERY_MS);
	cluster_set_hooks(&hooks);
	E->phase = PH_GRANT;
	cluster_run_monitors();
	grant();
	log_info("cluster: joining %s through %zu etcd endpoint(s)", E->prefix,
	    E->cc.n_etcd);
	return 0;
}

void
cluster_run_monitors(void)
{
	const struct config *cfg = manager_config();
	char key[2 * CFG_NAME_MAX + 8];
	size_t i, j;

	char fp[17];

	if (E == NULL || cfg == NULL)
		return;
	config_fingerprint(cfg, fp);
	if (strcmp(fp, E->config) != 0) {
		memcpy(E->config, fp, sizeof(fp));
		member_reput();
	}
	for (i = 0; i < E->n_slots; i++) {
		free(E->slots[i]->monitor);
		E->slots[i]->monitor = NULL;
		slot_locs_free(E->slots[i]);
	}
	for (i = 0; i < cfg->n_monitors; i++) {
		const struct cfg_monitor *m = &cfg->monitors[i];
		struct cslot *s;
		int located = m->n_locations > 0;

		if (located) {
			/* Its decision slot, which any member may own. */
			if (cluster_slot_key(key, sizeof(key), m->s.name,
			    "@global") < 0)
				continue;
			s = slot_get(key);
			s->monitor = xstrdup(m->s.name);
			s->global = 1;
			s->locs = xcalloc(m->n_locations, sizeof(*s->locs));
			for (j = 0; j < m->n_locations; j++)
				s->locs[j] = xstrdup(m->locations[j]);
			s->n_locs = m->n_locations;
			s->confirm = m->confirm;
			for (j = 0; j < m->n_locations; j++)
				if (strcmp(m->locations[j], E->cc.location) == 0)
					break;
			if (j == m->n_locations)
				continue; /* not checked from here */
		}
		if (cluster_slot_key(key, sizeof(key), m->s.name,
		    located ? E->cc.location : NULL) < 0)
			continue;
		s = slot_get(key);
		s->monitor = xstrdup(m->s.name);
		s->located = located;
		s->interval_us = m->interval_ms * 1000;
		/* A reload may have rescheduled it: back on the grid. */
		s->gridded = 0;
	}
	reconcile();
	slots_prune();
}

static void
reput_cb(void *arg, const struct etcd_result *r)
{
	(void)arg;
	E->reput_req = NULL;
	if (r->err != ETCD_OK)
		log_warn("cluster: updating this member's key: %s", r->message);
	if (E->reput_again || r->err != ETCD_OK) {
		E->reput_again = 0;
		member_reput();
	}
}

/* Put the member key again (same lease, same join time) with the
 * fingerprint of the monitors now running, only while it is still on
 * this agent's lease. */
static void
member_reput(void)
{
	char *key, *value;
	struct etcd_cmp cmp;
	struct etcd_op put;
	json_t *v;

	if (E->phase != PH_RUN || E->lease == 0)
		return;
	if (E->reput_req != NULL) {
		E->reput_again = 1;
		return;
	}
	key = full_key(E->self_key);
	v = member_value();
	value = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	cmp = (struct etcd_cmp){ .key = key, .key_len = strlen(key),
	    .target = ETCD_CMP_LEASE, .result = ETCD_CMP_EQUAL,
	    .number = E->lease };
	put = (struct etcd_op){ .type = ETCD_OP_PUT, .key = key,
	    .key_len = strlen(key), .value = value,
	    .value_len = strlen(value), .lease = E->lease };
	if (etcd_txn(E->etcd, &cmp, 1, &put, 1, NULL, 0, reput_cb, NULL,
	    &E->reput_req) != 0)
		E->reput_req = NULL;
	free(value);
	free(key);
}

/* The fingerprint of CFG's monitors: FNV-1a-64 over their names and
 * definition hashes in name order, so agents given the same monitors agree
 * whatever the order of the sections (the [cluster] section, which names
 * the agent, is not part of it). */
static int
def_cmp(const void *a, const void *b)
{
	const struct cfg_monitor *x = *(const struct cfg_monitor *const *)a;
	const struct cfg_monitor *y = *(const struct cfg_monitor *const *)b;

	return strcmp(x->s.name, y->s.name);
}

static void
config_fingerprint(const struct config *cfg, char out[17])
{
	const struct cfg_monitor **v = xcalloc(cfg->n_monitors + 1,
	    sizeof(*v));
	uint64_t h = 0;
	size_t i;

	for (i = 0; i < cfg->n_monitors; i++)
		v[i] = &cfg->monitors[i];
	qsort(v, cfg->n_monitors, sizeof(*v), def_cmp);
	for (i = 0; i < cfg->n_monitors; i++) {
		/* The definition's hash (cfg.h: the rendering itself is not
		 * kept), as 8 bytes little-endian whatever the host. */
		unsigned char d[8];
		size_t k;

		for (k = 0; k < 8; k++)
			d[k] = (unsigned char)(v[i]->s.def_hash >> (8 * k));
		h = cluster_hash(h, v[i]->s.name, strlen(v[i]->s.name) + 1);
		h = cluster_hash(h, d, sizeof(d));
	}
	free(v);
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static void
revoke_cb(void *arg, const struct etcd_result *r)
{
	(void)arg;
	E->lease_req = NULL;
	if (r->err != ETCD_OK)
		log_warn("cluster: revoking the lease: %s (its claims go when "
		    "it expires)", r->message);
	else
		log_info("cluster: left %s", E->prefix);
	E->phase = PH_DEAD;
	if (E->stop_done != NULL)
		E->stop_done(E->stop_arg);
}

void
cluster_run_stop(void (*done)(void *arg), void *arg)
{
	if (E == NULL) {
		done(arg);
		return;
	}
	E->stop_done = done;
	E->stop_arg = arg;
	etcd_cancel(E->lease_req);
	E->lease_req = NULL;
	if (E->lease == 0 || E->phase == PH_DEAD ||
	    etcd_lease_revoke(E->etcd, E->lease, revoke_cb, NULL,
	    &E->lease_req) != 0) {
		E->phase = PH_DEAD;
		done(arg);
		return;
	}
	E->phase = PH_STOP;
}

void
cluster_run_free(void)
{
	size_t i;

	if (E == NULL)
		return;
	cluster_set_hooks(NULL);
	if (timers_on) {
		uv_timer_stop(&renew_timer);
		uv_timer_stop(&tick_timer);
	}
	etcd_free(E->etcd); /* cancels every request without calling back */
	members_clear();
	for (i = 0; i < E->n_slots; i++)
		slot_free(E->slots[i]);
	verdicts_clear();
	free(verdicts);
	verdicts = NULL;
	cap_verdicts = 0;
	free(E->slots);
	free(E->members);
	free(E->prefix);
	free(E->self_key);
	free(E->api);
	cluster_conf_free(&E->cc);
	free(E);
	E = NULL;
}

json_t *
cluster_run_sd_json(void)
{
	json_t *a;
	size_t i;

	if (E == NULL)
		return NULL;
	a = json_array();
	for (i = 0; i < E->n_members; i++) {
		const struct member *m = &E->members[i];

		if (m->api == NULL)
			continue;
		json_array_append_new(a, json_pack("{s:[s], s:{s:s, s:s, s:s}}",
		    "targets", m->api, "labels", "agent", m->name, "location",
		    m->location, "cluster", E->cc.prefix));
	}
	return a;
}

static unsigned
config_mismatch(void)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < E->n_members; i++)
		n += strcmp(E->members[i].config, E->config) != 0;
	return n;
}

int
cluster_run_get_stats(struct cluster_run_stats *st)
{
	int64_t now = mono_us();

	if (E == NULL)
		return -1;
	memset(st, 0, sizeof(*st));
	st->name = E->cc.name;
	st->location = E->cc.location;
	st->fenced = fenced();
	st->up = !st->fenced;
	st->lease_remaining_s = E->dl.lease != 0 && E->dl.deadline_us > now ?
	    (double)(E->dl.deadline_us - now) / 1e6 : 0;
	st->owned = E->owned;
	st->config_mismatch = config_mismatch();
	st->lost_total = E->lost_total;
	st->takeovers_total = E->takeovers_total;
	st->claim_conflicts_total = E->claim_conflicts_total;
	return 0;
}

void
cluster_run_each_location(void (*fn)(void *arg, const char *location,
    unsigned n), void *arg)
{
	size_t i, j;
	unsigned n;

	if (E == NULL)
		return;
	/* A handful of members: quadratic is fine, and needs no sort. */
	for (i = 0; i < E->n_members; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(E->members[j].location,
			    E->members[i].location) == 0)
				break;
		if (j < i)
			continue; /* counted at its first member */
		for (n = 0, j = i; j < E->n_members; j++)
			n += strcmp(E->members[j].location,
			    E->members[i].location) == 0;
		fn(arg, E->members[i].location, n);
	}
}

/* MONITOR's @global slot, or NULL (a plain monitor, or not ours). */
static struct cslot *
global_slot(const char *monitor)
{
	char key[2 * CFG_NAME_MAX + 8];
	struct cslot *s;

	if (cluster_slot_key(key, sizeof(key), monitor, "@global") < 0 ||
	    (s = slot_find(key)) == NULL || !s->global || s->monitor == NULL)
		return NULL;
	return s;
}

int
cluster_run_monitor(const char *monitor, struct cluster_run_monitor *out)
{
	const struct cslot *s, *g;

	if (E == NULL)
		return -1;
	s = slot_of_monitor(monitor);
	g = global_slot(monitor);
	if (s == NULL && g == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	out->checks_here = s != NULL && slot_mine(s) && s->ready;
	out->decides_here = g != NULL && slot_mine(g) && g->ready;
	out->decision = ST_COUNT;
	if (out->decides_here && g->gstate != ST_PENDING)
		out->decision = g->gstate;
	else if (g != NULL)
		out->decision = g->gseen;
	out->n_locations = g != NULL ? g->n_locs : 0;
	return 0;
}

void
cluster_run_each_verdict(const char *monitor, void (*fn)(void *arg,
    const char *location, int state), void *arg)
{
	const struct verdict *v;
	const struct cslot *g;
	size_t i;

	if (E == NULL || (g = global_slot(monitor)) == NULL)
		return;
	for (i = 0; i < g->n_locs; i++) {
		v = verdict_find(monitor, g->locs[i]);
		fn(arg, g->locs[i], v != NULL ? (int)v->state : ST_COUNT);
	}
}

json_t *
cluster_run_json(void)
{
	static const char *const phases[] = { "idle", "joining", "registering",
	    "member", "leaving", "stopped" };
	json_t *o, *ms, *ss, *vs;
	int64_t now = mono_us();
	size_t i;

	if (E == NULL)
		return NULL;
	ms = json_array();
	for (i = 0; i < E->n_members; i++) {
		const struct member *m = &E->members[i];
		int64_t age = now - m->seen_us;

		json_array_append_new(ms, json_pack("{s:s, s:s, s:b, s:f, s:s, "
		    "s:b}", "name", m->name, "location", m->location,
		    "eligible", age >= E->cc.join_grace_ms * 1000 ||
		    strcmp(m->name, E->cc.name) == 0,
		    "joined_seconds_ago", (double)age / 1e6, "config", m->config,
		    "config_same", strcmp(m->config, E->config) == 0));
	}
	ss = json_array();
	for (i = 0; i < E->n_slots; i++) {
		const struct cslot *s = E->slots[i];

		if (s->monitor == NULL && s->holder == NULL)
			continue;
		json_array_append_new(ss, json_pack("{s:s, s:s?, s:s?, s:b, "
		    "s:b, s:I, s:s?}", "slot", s->key, "monitor", s->monitor,
		    "holder", s->holder, "mine", slot_mine(s), "wanted",
		    s->want, "token", (json_int_t)s->token, "decision",
		    s->global && slot_mine(s) && s->ready ?
		    mstate_name(s->gstate) : NULL));
	}
	vs = json_array();
	for (i = 0; i < n_verdicts; i++) {
		const char *slash = strrchr(verdicts[i].key, '/');

		json_array_append_new(vs, json_pack("{s:s%, s:s, s:s}",
		    "monitor", verdicts[i].key, (size_t)(slash -
		    verdicts[i].key), "location", slash + 1, "state",
		    mstate_name(verdicts[i].state)));
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:f, s:I, s:I, s:o, s:o}",
	    "name", E->cc.name, "location", E->cc.location, "cluster",
	    E->cc.prefix, "state", phases[E->phase], "fenced", fenced(),
	    "deadline_seconds", (double)cluster_deadline_left(&E->dl, now) /
	    1e6, "lease_ttl_seconds", (json_int_t)E->ttl_s, "revision",
	    (json_int_t)E->revision, "members", ms, "slots", ss);
	json_object_set_new(o, "owned", json_integer(E->owned));
	json_object_set_new(o, "verdicts", vs);
	json_object_set_new(o, "config", json_string(E->config));
	json_object_set_new(o, "config_mismatch",
	    json_integer(config_mismatch()));
	return o;
}
