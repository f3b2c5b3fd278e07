/*
 * policy -- when a monitor changes state and when it alerts (the common
 * monitor keys down_after, up_after, latency_warn, cert_warn, alert_on,
 * renotify and escalate), as arithmetic free of clocks, the loop and the
 * store, so it is tested deterministically; the manager applies it to
 * every finished check in one place and keeps one timer heap for the
 * reminders and escalations of all monitors.
 *
 * Times: wall-clock unix milliseconds (the store's since_ms), except the
 * certificate's expiry (unix seconds, as the result carries it).
 * cfg.c fills struct policy_conf (cfg.h) and uses the conf functions
 * here (so the cfg fuzz target links this file too: tests/fuzz.am).
 */
#ifndef CORE_POLICY_H
#define CORE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <watchpost/plugin.h>

#include "cfg.h"       /* struct policy_conf: the keys */
#include "outcome.h"

/* The defaults: down_after = up_after = 1, alert_on = down,up, the rest
 * off. */
void policy_conf_default(struct policy_conf *c);
/* A deep copy of SRC into DST (policy_conf_free() it). */
void policy_conf_copy(struct policy_conf *dst, const struct policy_conf *src);
/* Free what C owns (not C itself); C is then the defaults. */
void policy_conf_free(struct policy_conf *c);

/* A monitor's running policy state: what the store's state row keeps. */
struct policy_state {
	enum mstate state;       /* pending, up, degraded or down */
	int streak;              /* > 0: good checks in a row; < 0: failed */
	int64_t since_ms;        /* the state began (0: unknown) */
	unsigned repeats;        /* reminders raised in this down episode */
	int64_t notified_ms;     /* the DOWN alert or the last reminder was
	                          * raised (0: at since_ms) */
	int64_t escalated_ms;    /* largest escalate delay notified in this
	                          * episode (0: none) */
};

/*
 * latency_warn and cert_warn applied to the final result IN of a check at
 * unix second NOW_S: 1 when they turn an up result into a degraded one,
 * written to *OUT (a copy of IN with reason WP_REASON_CERT_EXPIRING or
 * WP_REASON_SLOW and a detail formatted into BUF, LEN bytes, which *OUT
 * points into); 0 and *OUT untouched otherwise.  A down or already
 * degraded result is left as the plugin said.  An expiring certificate
 * wins over slowness: it does not fix itself.
 */
int policy_warn(const struct policy_conf *c, const struct wp_result *in,
    int64_t now_s, struct wp_result *out, char *buf, size_t len);

/*
 * One finished check whose own result is CHECK (up, degraded or down),
 * started at TS_MS: moves S on (streak; state after down_after failed or
 * up_after good checks in a row; an up <-> degraded change and the first
 * check's good result at once).  A change resets the episode (since_ms =
 * TS_MS, repeats and escalated_ms 0, notified_ms TS_MS).  Returns 1 if
 * the state changed.
 */
int policy_step(const struct policy_conf *c, struct policy_state *s,
    enum mstate check, int64_t ts_ms);

/* 1 if the change PREVIOUS -> STATE alerts under ALERT_ON (POLICY_ON_*).
 * A state is never "changed" into itself; paused and pending never alert;
 * the first check's good result does not, a first degraded one does with
 * POLICY_ON_DEGRADED. */
int policy_alerts(unsigned alert_on, enum mstate previous, enum mstate state);

/* When the next reminder or escalation of S is due (unix ms), or
 * INT64_MAX when none is: only while down, with renotify or an escalation
 * not yet notified. */
int64_t policy_due(const struct policy_conf *c, const struct policy_state *s);

/* What policy_fire() found due. */
struct policy_fired {
	int renotify;            /* raise reminder number S->repeats */
	size_t esc_from, esc_to; /* escalations [from, to) of the conf */
};

/*
 * Take what is due at NOW_MS into *F and move S on: a due reminder counts
 * in repeats and moves notified_ms to its due time (to NOW_MS when a
 * whole period or more was missed, so a long stop never gives a burst of
 * reminders); every escalation due is taken, escalated_ms its delay.
 * Returns 1 if anything was due.
 */
int policy_fire(const struct policy_conf *c, struct policy_state *s,
    int64_t now_ms, struct policy_fired *f);

/* ---- the timer heap: one for all monitors ---- */

/* A member of the heap, embedded in its owner; idx is the heap's. */
struct policy_node {
	int64_t due_ms;
	size_t idx;              /* 0: not in the heap; else position + 1 */
};

/* A binary min-heap of nodes by due_ms: O(log n) for each change. */
struct policy_heap {
	struct policy_node **v;
	size_t n, cap;
};

/* Put N in H with due DUE_MS (inserted, or moved if already in). */
void policy_heap_set(struct policy_heap *h, struct policy_node *n,
    int64_t due_ms);
/* Take N out of H (nothing if it is not in). */
void policy_heap_del(struct policy_heap *h, struct policy_node *n);
/* The earliest node, or NULL. */
struct policy_node *policy_heap_top(const struct policy_heap *h);
/* Free H's array (the nodes are the owners'). */
void policy_heap_free(struct policy_heap *h);

#endif
