/*
 * hold -- see hold.h for the rules.
 *
 * State: one record per configured monitor (struct hmon, found by name
 * through a hash table), the windows of the configuration, and the
 * silences.  Each record carries its current reasons (a HOLD_* mask), the
 * state it had when the hold began, and the alert held meanwhile.
 *
 * When reasons change: refresh() recomputes every record's mask from the
 * parents' states, the open windows and the live silences, and begins or
 * releases holds.  It runs when the configuration is applied, when a
 * parent's state changes (hold_check), when a silence is added or deleted,
 * and from one timer at the next window or silence boundary (capped at a
 * minute, so a wall-clock step is noticed).  Windows match monitors once
 * per apply (fnmatch); a silence's patterns are matched at each refresh.
 */
#include "config.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "api.h"
#include "cfg.h"
#include "cron.h"
#include "hold.h"
#include "host.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "util.h"

#define TIMER_MAX_MS 60000      /* re-check at least this often */
#define SILENCE_PATTERNS_MAX 64
#define PATTERN_MAX 256
#define COMMENT_MAX 1024
#define SILENCE_MAX_MS (366LL * 86400000) /* the longest silence */
#define SILENCES_MAX 1000       /* live silences at once */
#define MERGE_MAX 8             /* overlapping scheduled starts merged */

struct window {
	char *name;
	struct cron *cron;      /* NULL: one-off */
	int64_t duration_ms;
	int64_t start_ms, end_ms; /* one-off; or the open interval found by
	                             window_eval() */
	int open;
	char **pats;
	size_t n_pats;
};

struct silence {
	int64_t id;
	char **pats;
	size_t n_pats;
	char *monitors_json;    /* the patterns as stored */
	int64_t until_ms, created_ms;
	char *comment;
	struct silence *next;
};

struct hmon {
	/* name and alerts are the applied configuration's (hold_apply()):
	 * not copied for each of 100,000 monitors (issue 17, S8). */
	const char *name;
	int64_t id;             /* the store's; 0: none */
	/* The arrays below are NULL when empty: with 100,000 monitors and
	 * no holds, empty arrays and a fixed reason buffer were ~320 bytes
	 * of every monitor (issue 17, S8). */
	size_t *deps;           /* indices of its parents */
	size_t n_deps;
	int is_parent;
	size_t *wins;           /* indices of the windows covering it */
	size_t n_wins;
	int all_alerts;
	char *const *alerts;
	size_t n_alerts;
	unsigned alert_on;      /* its policy's POLICY_ON_* (the release) */

	enum mstate state;      /* as its checks left it */
	unsigned mask;          /* HOLD_* */
	char *why;              /* the first reason's words (malloc'd; NULL:
	                         * none, read through why_of()) */
	enum mstate before;     /* when the hold began */
	int64_t held_since;
	int held;               /* an alert was held: held_state, held_at */
	enum mstate held_state;
	int64_t held_at;
	struct hmon *hnext;
};

static struct hold_ops ops;
static struct store *store;
static struct hmon *mons;
static size_t n_mons;
static struct hmon **table;
static size_t table_size;
static struct window *wins;
static size_t n_wins;
static char **all_alert_names;  /* every [alert:*] section, for all_alerts */
static size_t n_all_alerts;
static struct silence *silences;
static size_t n_silences;
static int64_t next_silence_id;
static uv_timer_t timer;
static int timer_init;
/* Holds read from the store at start, for the first hold_apply(). */
static struct store_hold *restored;
static size_t n_restored;
/* A hold restored from the store, until refresh() finds its reasons. */
#define HOLD_RESTORED 0x80u

static void refresh(int64_t now);

static size_t
hash_name(const char *s)
{
	size_t h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static struct hmon *
find(const char *name)
{
	struct hmon *m;

	if (table_size == 0)
		return NULL;
	for (m = table[hash_name(name) % table_size]; m; m = m->hnext)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/* M's reason words, "" when it has none. */
static const char *
why_of(const struct hmon *m)
{
	return m->why != NULL ? m->why : "";
}

/* M's reason words become WHY ("" or NULL: none). */
static void
set_why(struct hmon *m, const char *why)
{
	if (why != NULL && m->why != NULL && strcmp(why, m->why) == 0)
		return;
	free(m->why);
	m->why = why != NULL && why[0] != '\0' ? xstrdup(why) : NULL;
}

static void
free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static void
silence_free(struct silence *s)
{
	if (s == NULL)
		return;
	free_strv(s->pats, s->n_pats);
	free(s->monitors_json);
	free(s->comment);
	free(s);
}

static int
match_any(char *const *pats, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (fnmatch(pats[i], name, 0) == 0)
			return 1;
	return 0;
}

/* ---- windows ---- */

/* Is W open at NOW (w->open, and start_ms/end_ms of the open interval
 * for a scheduled one)?  Returns the next boundary after NOW: its end
 * when open, its next start when closed; -1 if none. */
static int64_t
window_eval(struct window *w, int64_t now)
{
	int64_t s;
	int k;

	if (w->cron == NULL) {
		w->open = w->start_ms <= now && now < w->end_ms;
		return now < w->start_ms ? w->start_ms : w->open ? w->end_ms :
		    -1;
	}
	/* The first start after now - duration: open if it is not later
	 * than now (the earliest such start: overlapping windows merge). */
	s = cron_next(w->cron, now - w->duration_ms);
	if (s >= 0 && s <= now) {
		w->open = 1;
		w->start_ms = s;
		w->end_ms = s + w->duration_ms;
		/* A next start inside this one extends it.  Bounded: a
		 * schedule whose windows always overlap is looked at again at
		 * the end found here, finds itself still open and goes on. */
		for (k = 0; k < MERGE_MAX && (s = cron_next(w->cron,
		    w->start_ms)) >= 0 && s < w->end_ms &&
		    s + w->duration_ms > w->end_ms; k++) {
			w->start_ms = s;
			w->end_ms = s + w->duration_ms;
		}
		return w->end_ms;
	}
	w->open = 0;
	return s;
}

static void
windows_free(void)
{
	size_t i;

	for (i = 0; i < n_wins; i++) {
		free(wins[i].name);
		cron_free(wins[i].cron);
		free_strv(wins[i].pats, wins[i].n_pats);
	}
	free(wins);
	wins = NULL;
	n_wins = 0;
}

/* ---- the records ---- */

static void
mons_free(struct hmon *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].deps);
		free(v[i].wins);
		free(v[i].why);
	}
	free(v);
}

static void
rehash(void)
{
	size_t i, b;

	free(table);
	table_size = n_mons * 2 + 1;
	table = xcalloc(table_size, sizeof(*table));
	for (i = 0; i < n_mons; i++) {
		b = hash_name(mons[i].name) % table_size;
		mons[i].hnext = table[b];
		table[b] = &mons[i];
	}
}

/* The reasons holding M now, and the first one's words in WHY. */
static unsigned
reasons(const struct hmon *m, int64_t now, char *why, size_t len)
{
	const struct silence *s;
	unsigned mask = 0;
	size_t i;

	why[0] = '\0';
	for (i = 0; i < m->n_deps; i++)
		if (mons[m->deps[i]].state == ST_DOWN) {
			if (mask == 0)
				snprintf(why, len, "depends_on %s",
				    mons[m->deps[i]].name);
			mask |= HOLD_DEPENDS;
			break;
		}
	for (i = 0; i < m->n_wins; i++)
		if (wins[m->wins[i]].open) {
			if (mask == 0)
				snprintf(why, len, "maintenance %s",
				    wins[m->wins[i]].name);
			mask |= HOLD_WINDOW;
			break;
		}
	for (s = silences; s != NULL; s = s->next)
		if (s->until_ms > now && match_any(s->pats, s->n_pats,
		    m->name)) {
			if (mask == 0)
				snprintf(why, len, "silence %" PRId64, s->id);
			mask |= HOLD_SILENCE;
			break;
		}
	return mask;
}

/* M's hold into the store (REMOVE: out of it). */
static void
persist(const struct hmon *m, int remove)
{
	struct store_hold h;

	if (store == NULL || m->id == 0)
		return;
	memset(&h, 0, sizeof(h));
	h.monitor_id = m->id;
	str_copy(h.before, sizeof(h.before), mstate_name(m->before));
	h.since_ms = m->held_since;
	if (m->held) {
		str_copy(h.held_state, sizeof(h.held_state),
		    mstate_name(m->held_state));
		h.held_at = m->held_at;
	}
	if (store_submit_hold(store, &h, remove) != 0)
		log_warn("monitor %s: hold not recorded (store queue full)",
		    m->name);
}

/* M's reasons become MASK: begin or release its hold. */
static void
set_mask(struct hmon *m, unsigned mask, const char *why, int64_t now)
{
	enum mstate before = m->before;

	if (m->mask == 0 && mask != 0) {
		m->before = m->state;
		m->held_since = now;
		m->held = 0;
		log_info("monitor %s: alerts held (%s)", m->name, why);
		persist(m, 0);
	} else if (m->mask != 0 && mask == 0) {
		m->held = 0;
		persist(m, 1);
		if (m->state != before && policy_alerts(m->alert_on, before,
		    m->state)) {
			log_info("monitor %s: hold ended (%s); %s -> %s "
			    "alerts now", m->name, why_of(m), mstate_name(before),
			    mstate_label(m->state));
			m->mask = 0;
			if (ops.release != NULL)
				ops.release(m->name, before);
		} else if (m->state == before)
			log_info("monitor %s: hold ended (%s); state %s as "
			    "before, nothing to send", m->name, why_of(m),
			    mstate_name(m->state));
		else
			log_info("monitor %s: hold ended (%s); %s -> %s does "
			    "not alert", m->name, why_of(m), mstate_name(before),
			    mstate_name(m->state));
	}
	m->mask = mask;
	set_why(m, why);
}

/* The next boundary of the windows and silences after NOW (each window's
 * open flag updated), or -1. */
static int64_t
eval_boundaries(int64_t now)
{
	const struct silence *s;
	int64_t next = -1, b;
	size_t i;

	for (i = 0; i < n_wins; i++) {
		b = window_eval(&wins[i], now);
		if (b >= 0 && (next < 0 || b < next))
			next = b;
	}
	for (s = silences; s != NULL; s = s->next)
		if (s->until_ms > now && (next < 0 || s->until_ms < next))
			next = s->until_ms;
	return next;
}

/* Silences that have ended: out of the list and the store. */
static void
expire_silences(int64_t now)
{
	struct silence **pp = &silences, *s;

	while ((s = *pp) != NULL) {
		if (s->until_ms > now) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		n_silences--;
		log_info("silence %" PRId64 " ended", s->id);
		if (store != NULL) {
			struct store_silence row = { .id = s->id };

			(void)store_submit_silence(store, &row, 1);
		}
		silence_free(s);
	}
}

static void timer_cb(uv_timer_t *t);

static void
arm(int64_t next, int64_t now)
{
	int64_t delay = next < 0 ? TIMER_MAX_MS : next - now;

	if (!timer_init)
		return;
	if (delay > TIMER_MAX_MS)
		delay = TIMER_MAX_MS;
	if (delay < 1)
		delay = 1;
	uv_timer_start(&timer, timer_cb, (uint64_t)delay, 0);
}

/* Recompute every record's reasons at NOW and re-arm the timer. */
static void
refresh(int64_t now)
{
	char why[192];
	int64_t next;
	unsigned mask;
	size_t i;

	expire_silences(now);
	next = eval_boundaries(now);
	for (i = 0; i < n_mons; i++) {
		mask = reasons(&mons[i], now, why, sizeof(why));
		if (mask != mons[i].mask || (mask != 0 &&
		    strcmp(why, why_of(&mons[i])) != 0))
			set_mask(&mons[i], mask, why, now);
	}
	arm(next, now);
}

static void
timer_cb(uv_timer_t *t)
{
	(void)t;
	refresh(wall_ms());
}

/* ---- the interface ---- */

static int
silence_of_row(const struct store_silence *row, struct silence **out);

void
hold_init(struct store *st, const struct hold_ops *o)
{
	struct store_silence *rows = NULL;
	struct silence *s, **tail = &silences;
	size_t n = 0, i;

	store = st;
	ops = *o;
	if (store == NULL)
		return;
	free(restored);
	restored = NULL;
	n_restored = 0;
	if (store_load_holds(store, &restored, &n_restored) != 0)
		log_err("holds could not be read; holds begin afresh");
	if (!timer_init) {
		uv_timer_init(main_loop, &timer);
		uv_unref((uv_handle_t *)&timer);
		timer_init = 1;
	}
	next_silence_id = store_max_silence_id(store);
	if (store_load_silences(store, wall_ms(), &rows, &n) != 0)
		log_err("silences could not be read; none are in force");
	for (i = 0; i < n; i++) {
		if (silence_of_row(&rows[i], &s) != 0) {
			log_warn("silence %" PRId64 ": unreadable monitors "
			    "in the database; ignored", rows[i].id);
			continue;
		}
		*tail = s;
		tail = &s->next;
		n_silences++;
		if (s->id > next_silence_id)
			next_silence_id = s->id;
	}
	if (n_silences > 0)
		log_info("%zu silence(s) in force", n_silences);
	store_free_silences(rows, n);
}

/* The window of C (its cron parsed again; cfg validated it). */
static int
window_of(const struct cfg_maintenance *c, struct window *w)
{
	char err[256];
	size_t i;

	memset(w, 0, sizeof(*w));
	if (c->schedule != NULL && cron_parse(c->schedule, c->timezone,
	    &w->cron, err, sizeof(err)) != 0) {
		log_err("maintenance %s: %s", c->name, err);
		return WP_EINVAL;
	}
	w->name = xstrdup(c->name);
	w->duration_ms = c->duration_ms;
	w->start_ms = c->start_ms;
	w->end_ms = c->end_ms;
	w->pats = xcalloc(c->n_monitors + 1, sizeof(char *));
	for (i = 0; i < c->n_monitors; i++)
		w->pats[i] = xstrdup(c->monitors[i]);
	w->n_pats = c->n_monitors;
	return 0;
}

int
hold_window_at(const struct cfg_maintenance *c, int64_t at_ms,
    int64_t *start_ms, int64_t *end_ms)
{
	struct window w;
	int open;

	if (window_of(c, &w) != 0)
		return -1;
	(void)window_eval(&w, at_ms);
	open = w.open;
	if (open) {
		*start_ms = w.start_ms;
		*end_ms = w.end_ms;
	}
	free(w.name);
	cron_free(w.cron);
	free_strv(w.pats, w.n_pats);
	return open;
}

void
hold_apply(const struct config *cfg)
{
	struct hmon *old = mons, *m, *prev;
	size_t n_old = n_mons, i, j, k;
	struct window *fresh;
	size_t n_fresh = 0;

	fresh = xcalloc(cfg->n_maintenance + 1, sizeof(*fresh));
	for (i = 0; i < cfg->n_maintenance; i++)
		if (window_of(&cfg->maintenance[i], &fresh[n_fresh]) == 0)
			n_fresh++;
	windows_free();
	wins = fresh;
	n_wins = n_fresh;
	free_strv(all_alert_names, n_all_alerts);
	all_alert_names = xcalloc(cfg->n_alerts + 1, sizeof(char *));
	for (i = 0; i < cfg->n_alerts; i++)
		all_alert_names[i] = xstrdup(cfg->alerts[i].s.name);
	n_all_alerts = cfg->n_alerts;

	mons = xcalloc(cfg->n_monitors + 1, sizeof(*mons));
	n_mons = cfg->n_monitors;
	for (i = 0; i < n_mons; i++) {
		const struct cfg_monitor *c = &cfg->monitors[i];

		m = &mons[i];
		m->name = c->s.name;
		m->all_alerts = c->all_alerts;
		m->alert_on = c->policy.alert_on;
		m->alerts = c->alerts;
		m->n_alerts = c->n_alerts;
		for (j = 0; j < n_wins; j++)
			if (match_any(wins[j].pats, wins[j].n_pats, m->name)) {
				if (m->wins == NULL)
					m->wins = xcalloc(n_wins,
					    sizeof(size_t));
				m->wins[m->n_wins++] = j;
			}
		m->state = ops.state_of != NULL ? ops.state_of(m->name) :
		    ST_PENDING;
		if (m->state == ST_COUNT)
			m->state = ST_PENDING;
		m->id = ops.id_of != NULL ? ops.id_of(m->name) : 0;
		for (j = 0; j < n_restored; j++)
			if (restored[j].monitor_id == m->id && m->id != 0)
				break;
		if (j < n_restored) {
			/* refresh() keeps it held or releases it. */
			m->mask = HOLD_RESTORED;
			(void)mstate_parse(restored[j].before, &m->before);
			m->held_since = restored[j].since_ms;
			m->held = restored[j].held_state[0] != '\0' &&
			    mstate_parse(restored[j].held_state,
			    &m->held_state) == 0;
			m->held_at = restored[j].held_at;
			set_why(m, "before the restart");
		}
	}
	free(restored);
	restored = NULL;
	n_restored = 0;
	/* Keep the holds of monitors still configured (found through the
	 * new table: a search of the list per old record was quadratic,
	 * seconds for a reload of 100,000 monitors). */
	rehash();
	for (i = 0; i < n_old; i++) {
		prev = &old[i];
		if (prev->mask == 0)
			continue;
		if ((m = find(prev->name)) == NULL) {
			persist(prev, 1);
			continue;
		}
		m->mask = prev->mask;
		m->before = prev->before;
		m->held_since = prev->held_since;
		m->held = prev->held;
		m->held_state = prev->held_state;
		m->held_at = prev->held_at;
		set_why(m, prev->why);
	}
	mons_free(old, n_old);
	for (i = 0; i < n_mons; i++) {
		const struct cfg_monitor *c = &cfg->monitors[i];

		m = &mons[i];
		if (c->n_depends_on > 0)
			m->deps = xcalloc(c->n_depends_on, sizeof(size_t));
		for (j = 0; j < c->n_depends_on; j++) {
			struct hmon *p = find(c->depends_on[j]);

			if (p == NULL)
				continue;
			k = (size_t)(p - mons);
			m->deps[m->n_deps++] = k;
			mons[k].is_parent = 1;
		}
	}
	refresh(wall_ms());
}

unsigned
hold_check(const struct outcome *o)
{
	struct hmon *m = find(o->monitor);

	if (m == NULL)
		return 0;
	m->state = o->state;
	/* o->alert: the policy's decision for this check (alert_on). */
	if (m->mask != 0 && o->alert) {
		m->held = 1;
		m->held_state = o->state;
		m->held_at = o->started_ms;
		log_info("monitor %s: %s alert held (%s)", m->name,
		    mstate_label(o->state), why_of(m));
		persist(m, 0);
	}
	/* Its children may be held or released by this change. */
	if (m->is_parent && o->changed)
		refresh(wall_ms());
	return m->mask;
}

unsigned
hold_reasons(const char *name)
{
	const struct hmon *m = find(name);

	return m != NULL ? m->mask & ~HOLD_RESTORED : 0;
}

enum mstate
hold_shown(const char *name, enum mstate s)
{
	struct hmon *m;

	if (s == ST_PAUSED || (m = find(name)) == NULL ||
	    !(m->mask & HOLD_MAINTENANCE))
		return s;
	return ST_MAINTENANCE;
}

void
hold_list_json(json_t *arr)
{
	const struct hmon *m;
	size_t i, j, n;

	for (i = 0; i < n_mons; i++) {
		m = &mons[i];
		/* Held and changed since the hold began: what would go out
		 * if it ended now. */
		if (m->mask == 0 || !m->held || m->state == m->before)
			continue;
		n = m->all_alerts ? n_all_alerts : m->n_alerts;
		for (j = 0; j < n; j++) {
			json_t *o = json_object();

			json_object_set_new(o, "monitor", json_string(m->name));
			json_object_set_new(o, "alert", json_string(
			    m->all_alerts ? all_alert_names[j] : m->alerts[j]));
			json_object_set_new(o, "state",
			    json_string(mstate_name(m->held_state)));
			json_object_set_new(o, "previous_state",
			    json_string(mstate_name(m->before)));
			json_object_set_new(o, "since",
			    json_integer(m->held_at));
			json_object_set_new(o, "held_since",
			    json_integer(m->held_since));
			json_object_set_new(o, "why", json_string(why_of(m)));
			json_array_append_new(arr, o);
		}
	}
}

void
hold_held_source(void *arg, json_t *held)
{
	(void)arg;
	hold_list_json(held);
}

void
hold_free(void)
{
	struct silence *s, *next;

	mons_free(mons, n_mons);
	mons = NULL;
	n_mons = 0;
	free(table);
	table = NULL;
	table_size = 0;
	windows_free();
	free_strv(all_alert_names, n_all_alerts);
	all_alert_names = NULL;
	n_all_alerts = 0;
	for (s = silences; s != NULL; s = next) {
		next = s->next;
		silence_free(s);
	}
	silences = NULL;
	n_silences = 0;
	if (timer_init) {
		uv_timer_stop(&timer);
		uv_close((uv_handle_t *)&timer, NULL);
		timer_init = 0;
	}
	store = NULL;
	free(restored);
	restored = NULL;
	n_restored = 0;
}

/* ---- silences ---- */

/* A silence from its stored row: the patterns are a JSON array of
 * strings.  0 and *out, or WP_EINVAL. */
static int
silence_of_row(const struct store_silence *row, struct silence **out)
{
	json_t *a = json_loads(row->monitors, 0, NULL), *v;
	struct silence *s;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0) {
		json_decref(a);
		return WP_EINVAL;
	}
	s = xcalloc(1, sizeof(*s));
	s->pats = xcalloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v) {
		if (!json_is_string(v)) {
			json_decref(a);
			silence_free(s);
			return WP_EINVAL;
		}
		s->pats[s->n_pats++] = xstrdup(json_string_value(v));
	}
	json_decref(a);
	s->id = row->id;
	s->monitors_json = xstrdup(row->monitors);
	s->until_ms = row->until_ms;
	s->created_ms = row->created_ms;
	s->comment = row->comment != NULL ? xstrdup(row->comment) : NULL;
	*out = s;
	return 0;
}

static json_t *
silence_json(const struct silence *s)
{
	json_t *o = json_object(), *a = json_array();
	char iso[40];
	size_t i;

	for (i = 0; i < s->n_pats; i++)
		json_array_append_new(a, json_string(s->pats[i]));
	cron_format_utc(s->until_ms, iso, sizeof(iso));
	json_object_set_new(o, "id", json_integer(s->id));
	json_object_set_new(o, "monitors", a);
	json_object_set_new(o, "until", json_integer(s->until_ms));
	json_object_set_new(o, "until_iso", json_string(iso));
	json_object_set_new(o, "comment", s->comment != NULL ?
	    json_string(s->comment) : json_null());
	json_object_set_new(o, "created", json_integer(s->created_ms));
	return o;
}

/* Answer REQ with status ST and the JSON value V (taken). */
static void
answer(const struct api_request *req, unsigned st, json_t *v)
{
	api_answer(req->job, st, v != NULL ? json_dumps(v, JSON_COMPACT) :
	    NULL, NULL, NULL);
	json_decref(v);
}

static void
add_error(json_t *errors, const char *key, const char *fmt, ...)
    WP_PRINTF(3, 4);

static void
add_error(json_t *errors, const char *key, const char *fmt, ...)
{
	json_t *e = json_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(e, "key", key != NULL ? json_string(key) :
	    json_null());
	json_object_set_new(e, "message", json_string(msg));
	json_array_append_new(errors, e);
}

/* The patterns of a POSTed "monitors": a string or an array of strings,
 * each 1..PATTERN_MAX characters. */
static void
parse_patterns(json_t *v, json_t *errors, struct silence *s)
{
	json_t *item;
	size_t i, n;

	if (json_is_string(v)) {
		item = v;
		n = 1;
	} else if (json_is_array(v)) {
		n = json_array_size(v);
		item = NULL;
	} else {
		add_error(errors, "monitors", "a pattern or an array of "
		    "patterns (names, globs, or \"*\")");
		return;
	}
	if (n == 0 || n > SILENCE_PATTERNS_MAX) {
		add_error(errors, "monitors", "1 to %d patterns",
		    SILENCE_PATTERNS_MAX);
		return;
	}
	s->pats = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		json_t *p = item != NULL ? item : json_array_get(v, i);
		const char *t = json_is_string(p) ? json_string_value(p) : NULL;

		if (t == NULL || *t == '\0' || strlen(t) > PATTERN_MAX ||
		    strlen(t) != json_string_length(p)) {
			add_error(errors, "monitors", "each pattern is a "
			    "non-empty string of at most %d characters",
			    PATTERN_MAX);
			return;
		}
		s->pats[s->n_pats++] = xstrdup(t);
	}
}

/* "until" (ISO 8601 or unix ms) or "duration" ("2h" or seconds) into
 * s->until_ms. */
static void
parse_end(json_t *body, json_t *errors, struct silence *s, int64_t now)
{
	json_t *until = json_object_get(body, "until");
	json_t *dur = json_object_get(body, "duration");
	char err[256];
	int64_t ms;

	if ((until == NULL) == (dur == NULL)) {
		add_error(errors, until ? "duration" : "until", "give exactly "
		    "one of until (ISO 8601 or unix ms) and duration (\"2h\" "
		    "or seconds)");
		return;
	}
	if (until != NULL) {
		if (json_is_integer(until))
			s->until_ms = json_integer_value(until);
		else if (json_is_string(until) && cron_parse_time(
		    json_string_value(until), NULL, &s->until_ms, err,
		    sizeof(err)) == 0)
			;
		else {
			add_error(errors, "until", "%s", json_is_string(until) ?
			    err : "an ISO 8601 time or unix milliseconds");
			return;
		}
		if (s->until_ms <= now)
			add_error(errors, "until", "in the past: a silence "
			    "must end later than now");
		else if (s->until_ms - now > SILENCE_MAX_MS)
			add_error(errors, "until", "more than 366 days away");
		return;
	}
	if (json_is_integer(dur) && json_integer_value(dur) > 0 &&
	    json_integer_value(dur) <= SILENCE_MAX_MS / 1000)
		ms = json_integer_value(dur) * 1000;
	else if (!json_is_string(dur) ||
	    parse_duration(json_string_value(dur), &ms) != 0 || ms <= 0 ||
	    ms > SILENCE_MAX_MS) {
		add_error(errors, "duration", "a duration from 1s to 366d "
		    "(\"30m\", \"2h\") or a number of seconds");
		return;
	}
	s->until_ms = now + ms;
}

static void
silence_post(const struct api_request *req)
{
	static const char *const known[] = { "monitors", "until", "duration",
	    "comment", NULL };
	json_error_t jerr;
	json_t *body, *errors = json_array(), *v;
	struct silence *s = xcalloc(1, sizeof(*s)), **tail;
	struct store_silence row;
	const char *key;
	int64_t now = wall_ms();
	size_t i;

	body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (!json_is_object(body)) {
		add_error(errors, NULL, "the body must be a JSON object%s%s",
		    body == NULL ? ": " : "", body == NULL ? jerr.text : "");
		goto bad;
	}
	json_object_foreach(body, key, v) {
		for (i = 0; known[i] != NULL && strcmp(known[i], key); i++)
			;
		if (known[i] == NULL)
			add_error(errors, key, "unknown key (known: monitors, "
			    "until, duration, comment)");
	}
	if ((v = json_object_get(body, "monitors")) == NULL)
		add_error(errors, "monitors", "required: the monitors to "
		    "silence (names or patterns, \"*\" for all)");
	else
		parse_patterns(v, errors, s);
	parse_end(body, errors, s, now);
	if ((v = json_object_get(body, "comment")) != NULL &&
	    !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) > COMMENT_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			add_error(errors, "comment", "a string of at most %d "
			    "characters", COMMENT_MAX);
		else
			s->comment = xstrdup(json_string_value(v));
	}
	if (json_array_size(errors) == 0 && n_silences >= SILENCES_MAX)
		add_error(errors, NULL, "%d silences are in force already",
		    SILENCES_MAX);
	if (json_array_size(errors) > 0)
		goto bad;
	s->id = ++next_silence_id;
	s->created_ms = now;
	{
		json_t *a = json_array();

		for (i = 0; i < s->n_pats; i++)
			json_array_append_new(a, json_string(s->pats[i]));
		s->monitors_json = json_dumps(a, JSON_COMPACT);
		json_decref(a);
	}
	row = (struct store_silence){ s->id, s->monitors_json, s->until_ms,
	    s->created_ms, s->comment };
	if (store == NULL || store_submit_silence(store, &row, 0) != 0) {
		add_error(errors, NULL, "the database cannot take the silence "
		    "now; try again");
		next_silence_id--;
		json_decref(body);
		silence_free(s);
		json_t *o = json_object();
		json_object_set_new(o, "errors", errors);
		answer(req, 503, o);
		return;
	}
	for (tail = &silences; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = s;
	n_silences++;
	log_info("silence %" PRId64 " added: %s until %" PRId64 "%s%s", s->id,
	    s->monitors_json, s->until_ms, s->comment ? ": " : "",
	    s->comment ? s->comment : "");
	refresh(now);
	json_decref(body);
	json_decref(errors);
	answer(req, 201, silence_json(s));
	return;
bad:
	json_decref(body);
	silence_free(s);
	{
		json_t *o = json_object();

		json_object_set_new(o, "errors", errors);
		answer(req, 422, o);
	}
}

static struct silence *
silence_by_id(const char *text, struct silence ***pp_out)
{
	struct silence **pp;
	long long id;

	if (parse_int(text, 1, INT64_MAX, &id) != 0)
		return NULL;
	for (pp = &silences; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			if (pp_out != NULL)
				*pp_out = pp;
			return *pp;
		}
	return NULL;
}

static void
not_found(const struct api_request *req)
{
	json_t *o = json_object();

	json_object_set_new(o, "error", json_string("no such silence"));
	answer(req, 404, o);
}

void
hold_api(void *arg, const struct api_request *req)
{
	static const char base[] = "/api/silences";
	const char *rest = req->path + sizeof(base) - 1;
	struct silence *s, **pp = NULL;
	int get = strcmp(req->method, "GET") == 0 ||
	    strcmp(req->method, "HEAD") == 0;
	json_t *arr;

	(void)arg;
	if (strncmp(req->path, base, sizeof(base) - 1) != 0 ||
	    (*rest != '\0' && *rest != '/')) {
		not_found(req);
		return;
	}
	/* Ended silences are not shown, nor found. */
	expire_silences(wall_ms());
	if (*rest == '\0' && get) {
		arr = json_array();
		for (s = silences; s != NULL; s = s->next)
			json_array_append_new(arr, silence_json(s));
		answer(req, 200, arr);
	} else if (*rest == '\0' && strcmp(req->method, "POST") == 0)
		silence_post(req);
	else if (*rest == '\0' || rest[1] == '\0' ||
	    (s = silence_by_id(rest + 1, &pp)) == NULL)
		not_found(req);
	else if (get)
		answer(req, 200, silence_json(s));
	else if (strcmp(req->method, "DELETE") == 0) {
		struct store_silence row = { .id = s->id };

		*pp = s->next;
		n_silences--;
		if (store != NULL)
			(void)store_submit_silence(store, &row, 1);
		log_info("silence %" PRId64 " deleted", s->id);
		silence_free(s);
		refresh(wall_ms());
		answer(req, 204, NULL);
	} else {
		json_t *o = json_object();

		json_object_set_new(o, "error",
		    json_string("method not allowed"));
		answer(req, 405, o);
	}
}
