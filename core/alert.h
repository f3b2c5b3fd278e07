/*
 * alert -- alert sections and the outbox.
 *
 * A state change creates one delivery per alert section the monitor names.
 * Each delivery is written to the store's outbox in the same transaction as
 * the check that caused it and, once that transaction has committed,
 * delivered by the section's plugin under the operation monitor, retried
 * with exponential back-off (1 s doubling, capped at 5 min, or
 * $WATCHPOST_ALERT_BACKOFF_MAX_MS for tests) until a 2xx.  Per monitor and
 * section, deliveries go one at a time in the order they were raised: a
 * later one waits until the earlier ones are accepted.  Undelivered
 * alerts survive restarts.  A delivery never delays a check.
 * Loop thread only.
 */
#ifndef CORE_ALERT_H
#define CORE_ALERT_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct outcome;
struct store;
struct store_alert;
struct wp_diag;

/* Use ST (NULL: alerts disabled, as in --once) and load its outbox. */
int alert_init(struct store *st);

/* Reload step 1: configure new or changed [alert:*] sections of CFG into a
 * prepared set (errors to DIAG; WP_EINVAL).  Step 2: commit or abort. */
int alert_prepare(const struct config *cfg, struct wp_diag *diag,
    void **prepared);
void alert_commit(void *prepared);
void alert_abort(void *prepared);

/*
 * The finished check O of a monitor whose alert sections are NAMES[0..N)
 * (every configured section when ALL).  If it alerts (o->alert: the
 * manager's policy), one delivery per section, in that order, each to
 * start once the store has committed its row (alert_released()).  Returns
 * those outbox rows for store_submit(), malloc'd (the caller frees the
 * array; the store takes over each payload), and their count in *N_OUT;
 * NULL and 0 when nothing alerts or alerts are off.
 */
struct store_alert *alert_raise(const struct outcome *o, int all,
    char *const *names, size_t n, size_t *n_out);

/* Outbox rows ROWS are committed, or can never be (the store refused
 * them): their deliveries may start.  Only id, monitor_id and alert_name
 * are read.  Rows of unknown deliveries are ignored. */
void alert_released(const struct store_alert *rows, size_t n);

/* Stop retrying (shutdown); in-flight deliveries finish or time out. */
void alert_stop(void);
/* Deliveries in flight. */
unsigned alert_in_flight(void);
/* The outbox's counts, for /metrics (metrics.h). */
struct alert_stats {
	unsigned pending;          /* alerts in the outbox */
	uint64_t delivered;
	uint64_t failed_attempts;
	uint64_t dropped;          /* their section was removed */
};
void alert_get_stats(struct alert_stats *out);
void alert_free(void);

#endif
