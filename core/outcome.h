/*
 * outcome -- a monitor's states and the one event a finished check emits.
 *
 * The manager's state machine turns each finished check (after its
 * retries) into one struct outcome and hands it to every consumer in turn:
 * the --once table, the last result behind /api/monitors and /metrics,
 * alerts, and the store.  Each consumer converts it once, into its own
 * shape; none sees the plugin's result any other way.
 */
#ifndef CORE_OUTCOME_H
#define CORE_OUTCOME_H

#include <stdint.h>

#include <watchpost/plugin.h>

/*
 * A monitor's state, in the contract's words (CONTRACT.md "States").
 * Checks produce up and down; degraded (up, with a warning) is a state of
 * the table already and is produced once results carry a reason class.
 * paused is how a disabled monitor is shown: no check enters or leaves it.
 */
enum mstate {
	ST_PENDING,
	ST_UP,
	ST_DEGRADED,
	ST_DOWN,
	ST_PAUSED,
	/* Shown, never entered by a check: a maintenance window or silence
	 * holds the monitor's alerts (hold.h, hold_shown()); its checks
	 * still move the state underneath. */
	ST_MAINTENANCE,
	ST_COUNT
};

/*
 * A result's times in the unit of the store and the API, milliseconds
 * (< 0: unknown), converted once from its microseconds.
 */
struct outcome_ms {
	double latency, dns, connect, tls, first_byte;
};

/*
 * One finished check.  Every pointer is borrowed for the emission only: a
 * consumer copies what it keeps.
 */
struct outcome {
	int64_t monitor_id;            /* the store's id; 0: none */
	const char *monitor;           /* [monitor:NAME] */
	const char *type;              /* its plugin type */
	const struct wp_result *result; /* the final attempt, as the runtime
	                                   handed it (detail may be NULL;
	                                   measurement names carry their
	                                   unit's suffix) */
	struct outcome_ms ms;          /* result's times, in ms */
	enum mstate previous, state;
	int changed;                   /* state != previous */
	unsigned attempts;             /* 1 + the retries used */
	int64_t started_ms;            /* unix ms: the first attempt began */
	int64_t since_ms;              /* unix ms: the current state began */
	/* The policy's verdict (policy.h), filled by the manager. */
	enum mstate check;             /* this check's own result: up,
	                                  degraded or down (after latency_warn
	                                  and cert_warn), which the check row
	                                  stores; state may lag behind it
	                                  (down_after, up_after) */
	int alert;                     /* 1: raise alerts for this outcome
	                                  (alert_on said so, or a reminder or
	                                  an escalation) */
	unsigned repeat;               /* 0: the transition's alert; n: the
	                                  nth reminder (renotify) */
	unsigned alert_flags;          /* WP_ALERT_*: WP_ALERT_ESCALATION for
	                                  an escalate rule's sections */
	const char *confirmed_by;      /* cluster mode: the locations behind
	                                  a multi-location verdict; NULL */
	int64_t grid;                  /* cluster mode: the wall-clock grid
	                                  index (cluster.h) of the slot the
	                                  check ran for; -1: none (single
	                                  mode, a push, not a check) */
};

/* The state's word ("pending", "up", ...); "?" out of range. */
const char *mstate_name(enum mstate s);
/* The same in capitals, for log lines and the --once table ("UP"). */
const char *mstate_label(enum mstate s);

/* The state named NAME into *OUT: 0, or WP_EINVAL (*OUT untouched). */
int mstate_parse(const char *name, enum mstate *out);

/* 1 for the states that count as up (up, degraded): watchpost_monitor_up,
 * the --once exit status. */
int mstate_is_up(enum mstate s);

/* The state a finished check R leads to: its reason's class (up,
 * degraded or down). */
enum mstate mstate_of(const struct wp_result *r);

/* R's times in milliseconds: struct outcome's ms. */
struct outcome_ms outcome_ms_of(const struct wp_result *r);

/* Microseconds US as milliseconds; a negative US (unknown) is -1. */
double outcome_us_to_ms(int64_t us);

/*
 * 1 if the change PREVIOUS -> STATE raises an alert under the default
 * alert_on (down,up): entering down raises one, and so does leaving it;
 * up <-> degraded and the first check coming good (pending -> up or
 * degraded) do not.  A monitor's own alert_on: policy_alerts().
 */
int mstate_alerts(enum mstate previous, enum mstate state);

#endif
