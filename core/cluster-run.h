/*
 * cluster-run -- the cluster engine: this agent's membership in etcd and
 * the claims on the slots it checks (../shared/CLUSTER.md), on the loop
 * thread, through the etcd client (etcd.h) and the pure rules of
 * cluster.h.
 *
 * Keys, under "<cluster>/" ([cluster] cluster = ..., default watchpost):
 *   members/<location>/<name>   on this agent's lease; a JSON value
 *                               {"name","location","joined_us"}
 *   own/<slot>                  on the holder's lease; the value is the
 *                               holder's name, the key's create_revision
 *                               the claim's fencing token
 *
 * The engine installs the manager's gate (cluster_set_gate()): a check of
 * a monitor starts only while this agent holds the claim on the
 * monitor's slot, wants to keep it (it is the slot's rendezvous owner)
 * and is not fenced by the local deadline.  A slot whose owner changes is
 * drained -- no new start, the check in flight finishes -- then released
 * by a txn on its token; the new owner sees the delete and claims.
 * Nothing is ever taken from a live holder.
 *
 * Without [cluster] none of this is started and the gate stays open.
 */
#ifndef CORE_CLUSTER_RUN_H
#define CORE_CLUSTER_RUN_H

#include <stdint.h>

#include <watchpost/plugin.h>

#include "cluster.h"

struct json_t;

/*
 * Start the engine for CC on the loop (HOST is the core's services table,
 * borrowed until cluster_run_free()).  CC is copied; API is this agent's
 * API address, "host:port" (NULL: none), published for
 * GET /api/cluster/sd.  FATAL(msg) is
 * called on the loop when the agent must not go on -- its name is held by
 * another live agent -- after which the engine does nothing more; the
 * caller stops the agent.  Returns 0, or a WP_E* code (logged).
 */
int cluster_run_start(const struct cluster_conf *cc,
    const struct wp_host *host, const char *api,
    void (*fatal)(const char *msg));

/* The running monitors changed (after each manager_apply()): rebuild the
 * slots from manager_config().  Claims on slots still present stay. */
void cluster_run_monitors(void);

/*
 * Leave the cluster: stop starting checks, and once the manager has
 * drained, revoke the lease, which drops this agent's member key and
 * every claim it holds at once, so the others take over within a watch
 * round trip instead of a TTL.  DONE(ARG) is called on the loop when the
 * revoke is answered or has failed (at most the request timeout).
 */
void cluster_run_stop(void (*done)(void *arg), void *arg);

/* Free everything (after the loop stopped).  Accepts no engine. */
void cluster_run_free(void);

/* GET /api/cluster: this agent, its health, the members it sees and
 * the slots with their holders (a new jansson reference), or NULL
 * without [cluster]. */
struct json_t *cluster_run_json(void);

/* GET /api/cluster/sd: every member with an API in Prometheus' HTTP
 * service discovery format, [{"targets": ["host:port"], "labels":
 * {"agent", "location", "cluster"}}] (a new reference), or NULL without
 * [cluster]. */
struct json_t *cluster_run_sd_json(void);

/* The engine's health and counters, for /metrics. */
struct cluster_run_stats {
	const char *name, *location; /* this agent's (borrowed until
	                          * cluster_run_free()) */
	int up;                  /* registered and not fenced */
	int fenced;              /* the local deadline forbids starts */
	double lease_remaining_s; /* until the local deadline (the last
	                          * answered renewal's send time + TTL);
	                          * 0 without a lease */
	unsigned owned;          /* slots this agent holds the claim of */
	unsigned config_mismatch; /* members whose monitors' fingerprint
	                          * differs from this agent's (they were
	                          * given another file) */
	uint64_t lost_total;     /* cluster-lost events since start */
	uint64_t takeovers_total; /* claims won on slots another agent
	                          * held before (failover, rebalancing) */
	uint64_t claim_conflicts_total; /* claims refused: another agent
	                          * created the claim first */
};
/* Fill *ST: 0, or -1 (nothing filled) without [cluster]. */
int cluster_run_get_stats(struct cluster_run_stats *st);

/* FN(ARG, LOCATION, N) for each location with N > 0 members, this agent
 * counted; LOCATION is borrowed for the call.  Nothing without
 * [cluster]. */
void cluster_run_each_location(void (*fn)(void *arg, const char *location,
    unsigned n), void *arg);

/* What this agent knows of one monitor in cluster mode. */
struct cluster_run_monitor {
	int checks_here;         /* it holds the claim of the slot it checks
	                          * the monitor in (the plain one, or its
	                          * location's): its results are the ones
	                          * that count */
	int decides_here;        /* it holds the monitor's @global claim */
	int decision;            /* enum mstate: the @global decision (the
	                          * holder's own, else the last one etcd
	                          * showed); ST_COUNT: none yet, or not a
	                          * multi-location monitor */
	size_t n_locations;      /* the monitor's locations; 0: plain */
};
/* Fill *OUT for MONITOR: 0, or -1 without [cluster] or for a monitor the
 * engine does not know. */
int cluster_run_monitor(const char *monitor, struct cluster_run_monitor *out);

/* FN(ARG, LOCATION, STATE) for each location of the multi-location
 * MONITOR in the file's order, STATE (enum mstate) the verdict its owner
 * committed, ST_COUNT when it has none (no live agent there, or no check
 * yet).  LOCATION is borrowed for the call. */
void cluster_run_each_verdict(const char *monitor, void (*fn)(void *arg,
    const char *location, int state), void *arg);

#endif /* CORE_CLUSTER_RUN_H */
