/*
 * metrics -- GET /metrics, the only writer of Prometheus text exposition
 * format (version 0.0.4).
 *
 * The modules keep numbers and expose them as stats structs
 * (manager_get_stats, manager_monitor_next, opmon_get_stats,
 * alert_get_stats, store_get_stats, pool_get_stats); this module names
 * the families, writes HELP and TYPE once per family, escapes label
 * values and turns per-bucket histogram counts into cumulative buckets.
 */
#ifndef CORE_METRICS_H
#define CORE_METRICS_H

struct store;

/*
 * Every family, as a malloc'd NUL-terminated string (the caller frees it).
 * ST NULL (no database) leaves out the store's families.  Never fails.
 * Loop thread: it reads the manager's, the registry's and the outbox's
 * state directly.
 */
char *metrics_render(struct store *st);

#endif
