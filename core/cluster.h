/*
 * cluster -- the pure parts of cluster mode (../shared/CLUSTER.md): the
 * [cluster] configuration, the local-deadline safety rule, rendezvous
 * hashing of slots over members, and the wall-clock grid.  Nothing here
 * does I/O or reads a clock: time is passed in, so every rule is
 * unit-testable (tests/test-cluster.c).  The etcd side (membership on a
 * lease, claims) builds on these and on core/etcd.h.
 *
 * Without [cluster] (struct cluster_conf.enabled == 0) no function here
 * is called by the agent except cluster_may_start(), which then answers
 * yes: single-machine behaviour is unchanged.
 */
#ifndef CORE_CLUSTER_H
#define CORE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

/* ---- configuration ([cluster], filled by cfg.c) ---- */

enum cluster_engine_loss { CLUSTER_OBSERVE = 0, CLUSTER_STRICT = 1 };

struct cluster_conf {
	int enabled;               /* 1: the file has [cluster] */
	int line;                  /* of [cluster], 0 if absent */
	char **etcd;               /* endpoint URLs, n_etcd >= 1 (owned) */
	size_t n_etcd;
	char *name;                /* this agent; default the host name */
	char *location;            /* this agent's vantage point */
	char *prefix;              /* key prefix (`cluster`), default
	                            * "watchpost" */
	int64_t lease_ttl_ms;      /* default 6 s, 2 s to 10 min */
	int64_t join_grace_ms;     /* default 2 * lease_ttl */
	int64_t watch_progress_ms; /* etcd's watch progress-notify interval
	                            * (default 10 min, 1 s to 24 h): a watch
	                            * silent for twice this + 1 s is dead */
	int on_engine_loss;        /* enum cluster_engine_loss */
	char *user;                /* etcd auth; NULL: none */
	char *password;            /* with user (password or password_file);
	                            * never logged */
	char *ca_file, *client_cert, *client_key; /* absolute; NULL: none */
};
void cluster_conf_free(struct cluster_conf *c);
/* Deep-copy SRC into DST (DST's old contents are not freed); aborts on
 * memory exhaustion. */
void cluster_conf_copy(struct cluster_conf *dst,
    const struct cluster_conf *src);
/* 1 when A and B say the same (two disabled ones do), else 0. */
int cluster_conf_same(const struct cluster_conf *a,
    const struct cluster_conf *b);

/* ---- the local deadline (safety rule) ---- */

/*
 * deadline = the time the last acknowledged renewal (or the grant) was
 * SENT + the TTL the server granted, never later than the server's own
 * expiry, since the server starts its clock when it receives the request.
 * Fenced when now >= deadline - margin, margin = max(1 s, TTL / 6).  All
 * times in microseconds on one monotonic clock the caller chooses.
 */
struct cluster_deadline {
	int64_t ttl_us;            /* the configured TTL */
	int64_t margin_us;
	int64_t deadline_us;       /* 0: no lease (fenced) */
	int64_t lease;             /* the lease the deadline is for; 0: none */
};
void cluster_deadline_init(struct cluster_deadline *d, int64_t ttl_us);
/* A grant or keepalive sent at SENT_US was acknowledged for LEASE with
 * GRANTED_S seconds (the server's value; <= 0 takes the configured TTL).
 * A late answer to an older renewal never moves the deadline back, and
 * an answer for another lease replaces the old one (re-registration). */
void cluster_deadline_ack(struct cluster_deadline *d, int64_t lease,
    int64_t sent_us, int64_t granted_s);
/* The lease is gone (lease not found, revoked): fenced until a new ack. */
void cluster_deadline_lost(struct cluster_deadline *d);
/* 1 when fenced at NOW_US: no start, no commit. */
int cluster_deadline_fenced(const struct cluster_deadline *d, int64_t now_us);
/* Microseconds until fencing (0 when fenced). */
int64_t cluster_deadline_left(const struct cluster_deadline *d,
    int64_t now_us);
/* When to send the next renewal: every TTL / 3 after the last send. */
int64_t cluster_renew_every(int64_t ttl_us);

/* ---- rendezvous hashing ---- */

/*
 * The weight of MEMBER for SLOT: fmix64(FNV-1a-64(slot "\0" member)).
 * FNV-1a is fully specified and tiny, but its output's high bits mix
 * poorly for inputs that differ only at the end (agent names a1, a2, a3);
 * MurmurHash3's 64-bit finaliser (fmix64) gives every output bit an even
 * chance.  Nobody adversarial picks the names, so no keyed hash is needed.
 */
uint64_t cluster_hrw_weight(const char *slot, const char *member);
/* FNV-1a-64 of P[0..N) continued from H (0: from the start), for
 * fingerprints that must agree across agents. */
uint64_t cluster_hash(uint64_t h, const void *p, size_t n);

struct cluster_member {
	const char *name;          /* borrowed */
	const char *location;
	int64_t seen_us;           /* when this agent first saw it */
};
/* The owner of SLOT among the members of LOCATION (NULL: any) that are
 * eligible at NOW_US (seen at least JOIN_GRACE_US ago; SELF always is,
 * so an agent alone does not wait): the highest weight, ties to the
 * smaller name.  Returns its index in M, or -1 when none is eligible. */
long cluster_hrw_owner(const char *slot, const struct cluster_member *m,
    size_t n, const char *location, const char *self, int64_t now_us,
    int64_t join_grace_us);

/* A slot's key: MONITOR for a plain monitor (LOCATION NULL),
 * MONITOR "@" LOCATION for a location's slot, MONITOR "@global" for the
 * decision slot of a multi-location monitor (LOCATION "@global").
 * Returns the length written to BUF (NUL-terminated), or -1 if it does
 * not fit in SIZE bytes. */
int cluster_slot_key(char *buf, size_t size, const char *monitor,
    const char *location);

/* ---- the wall-clock grid ---- */

/* A monitor's phase in [0, interval): from the hash of its name, the same
 * on every agent. */
int64_t cluster_grid_phase(const char *monitor, int64_t interval_us);
/* The index of the last grid point at or before WALL_US (unix
 * microseconds): floor((wall - phase) / interval). */
int64_t cluster_grid_index(const char *monitor, int64_t interval_us,
    int64_t wall_us);
/* The wall time of grid point K. */
int64_t cluster_grid_time(const char *monitor, int64_t interval_us,
    int64_t k);
/*
 * The monotonic due time of the next check of a slot this agent owns,
 * from the wall and monotonic clocks read together (WALL_US, MONO_US) and
 * LAST_K, the grid index of the last check of the slot anywhere (-1:
 * unknown).  A slot that missed grid points (failover) runs once at once
 * (due MONO_US, *k the index of the point missed); otherwise at the next
 * grid point.  *K gets the grid index of that check.
 */
int64_t cluster_grid_next(const char *monitor, int64_t interval_us,
    int64_t wall_us, int64_t mono_us, int64_t last_k, int64_t *k);

/* ---- the manager's hooks ---- */

/*
 * What the manager asks and tells the cluster engine (cluster-run.h),
 * which installs them; without [cluster] none is installed and the
 * answers are those of a single machine.  Loop thread.
 */
struct policy_state;
struct store_alert;
struct cluster_hooks {
	/* May this agent start a check of MONITOR now?  Only while it
	 * holds the monitor's slot and is not fenced. */
	int (*may_start)(const char *monitor);
	/* Does this agent raise MONITOR's alerts and reminders from its
	 * own checks?  The slot's owner for a plain monitor; nobody for a
	 * multi-location one (the @global owner decides and alerts). */
	int (*alerts_here)(const char *monitor);
	/* A check of MONITOR finished with the policy state PS, raising
	 * the outbox rows ROWS[0..N) (all borrowed for the call; the hook
	 * may hold their deliveries: alert_cluster_hold()). */
	void (*checked)(const char *monitor, const struct policy_state *ps,
	    const struct store_alert *rows, size_t n);
};
/* Install H (borrowed until replaced; NULL: none). */
void cluster_set_hooks(const struct cluster_hooks *h);
/* The hooks' answers: 1, 1 and nothing without them. */
int cluster_may_start(const char *monitor);
int cluster_alerts_here(const char *monitor);
void cluster_checked(const char *monitor, const struct policy_state *ps,
    const struct store_alert *rows, size_t n);

#endif /* CORE_CLUSTER_H */
