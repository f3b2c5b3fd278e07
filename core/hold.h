/*
 * hold -- whether a monitor's alerts are held now, why, and their release.
 *
 * Three things hold a monitor's alerts (CONTRACT.md "Alerting"):
 *   - depends_on: a parent monitor is DOWN (why: "depends_on db");
 *   - a [maintenance:NAME] window covering it is open (why: "maintenance
 *     sunday-patching");
 *   - a silence (POST /api/silences) covering it has not ended (why:
 *     "silence 3"); silences are kept in the store's silences table, so
 *     they survive a restart.
 * While held, the monitor is checked and its checks and state changes are
 * stored as always; an alert its state change would raise is recorded
 * here instead (GET /api/alerts "held", hold_list_json()).  In a window or
 * silence the checks are stored flagged (checks.maintenance) and the
 * monitor is shown as `maintenance` (/api/monitors, watchpost_monitor_state).
 *
 * The release rule, one for all three: when the last reason ends, the
 * monitor's state now is compared with its state when the hold began; if
 * they differ and that change alerts under the monitor's alert_on
 * (policy_alerts(), the decision a check's o->alert carries), ONE alert
 * goes out for it (previous_state: the state before the hold).  So a child still
 * DOWN when its parent recovers sends its DOWN alert then, and nothing if
 * it recovered meanwhile; a window sends one alert per monitor whose state
 * changed across it.
 *
 * Parents and children: a child's check finishing before its parent's
 * DOWN is known alerts normally (the hold begins when the parent is seen
 * DOWN); down_after on the child covers that race.
 *
 * What a hold remembers (the state before it, the alert held) is kept in
 * the store's holds table too, so a restart inside a window, silence or
 * parent outage releases exactly as if the agent had kept running; a hold
 * whose reasons ended while the agent was stopped is released at start.
 *
 * Loop thread only, like the manager.
 */
#ifndef CORE_HOLD_H
#define CORE_HOLD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "outcome.h"

struct config;
struct store;
struct api_request;

#define HOLD_DEPENDS 1u  /* a parent is down */
#define HOLD_WINDOW 2u   /* a maintenance window is open */
#define HOLD_SILENCE 4u  /* a silence covers it */
/* The reasons that store checks flagged and show state `maintenance`. */
#define HOLD_MAINTENANCE (HOLD_WINDOW | HOLD_SILENCE)

/*
 * The manager's side.  release(name, prev): raise monitor NAME's alert for
 * the change PREV -> its current state, now (a held alert released).
 * state_of(name): its current state; ST_COUNT if there is no such monitor.
 */
struct hold_ops {
	void (*release)(const char *name, enum mstate prev);
	enum mstate (*state_of)(const char *name);
	int64_t (*id_of)(const char *name);     /* the store's id; 0: none */
};

/* Start: OPS is copied; ST (NULL: --once and -t, no silences) is where
 * silences are loaded from and written to. */
void hold_init(struct store *st, const struct hold_ops *ops);

/*
 * After the manager applied CFG (start-up and each reload): the monitors,
 * their depends_on and alert sections, the windows.  A monitor held
 * before keeps its hold and the state it had when the hold began; one
 * whose reasons ended with the new file is released.  The monitors' names
 * and alert lists are CFG's, not copied: the caller keeps CFG alive until
 * the next hold_apply() or hold_free() (and the previous CFG through this
 * call).
 */
void hold_apply(const struct config *cfg);

/*
 * The raise point (manager.c): check O of a monitor has finished.  Records
 * its state; if a parent of others changed state, their dependency holds
 * are re-evaluated (releasing some).  Returns the reasons that hold O's
 * monitor (HOLD_* bits; 0: not held, raise its alert), having recorded
 * the alert O would raise as held.
 */
unsigned hold_check(const struct outcome *o);

/* The reasons (HOLD_*) holding monitor NAME's alerts now; 0: none (or
 * no such monitor).  Reminders and escalations (policy.h) of a held
 * monitor are not raised. */
unsigned hold_reasons(const char *name);

/* The state to show for monitor NAME in state S: ST_MAINTENANCE while a
 * window or silence holds it, else S. */
enum mstate hold_shown(const char *name, enum mstate s);

/*
 * Append to ARR one object per held alert: {"monitor", "alert" (section),
 * "state" (what the alert would say), "since" (unix ms: the held change),
 * "held_since" (unix ms), "why"} -- the "held" array of GET /api/alerts.
 * A held monitor whose state has not changed since the hold began has
 * nothing held and is not listed.
 */
void hold_list_json(json_t *arr);

/*
 * /api/silences (api.h's handler route), on the loop thread:
 *   GET /api/silences, GET /api/silences/ID: 200 with the silences (or
 *   one): id, monitors, until (unix ms), until_iso, comment, created;
 *   POST /api/silences: a JSON object {monitors: [PATTERN...] or
 *   "PATTERN", until: ISO 8601 or unix ms | duration: "2h" or seconds,
 *   comment}: 201 with the silence; 422 {"errors": [{key, message}]};
 *   DELETE /api/silences/ID: 204, releasing what it held; 404 unknown id.
 * The API has checked the token and capped the body.
 */
void hold_api(void *arg, const struct api_request *req);

/*
 * Is window C open at AT_MS?  1 with its open interval in *START_MS and
 * *END_MS (a scheduled window's start under cron.h's DST rule, lasting
 * duration in elapsed time; overlapping starts merge), 0 if not, -1 if
 * its schedule does not parse.
 */
struct cfg_maintenance;
int hold_window_at(const struct cfg_maintenance *c, int64_t at_ms,
    int64_t *start_ms, int64_t *end_ms);

/* hold_list_json() in the shape of alert.h's held source
 * (alert_set_held_source(hold_held_source, NULL)); ARG is unused. */
void hold_held_source(void *arg, json_t *held);

/* Free everything (after the loop stopped). */
void hold_free(void);

#endif
