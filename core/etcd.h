/*
 * etcd -- an etcd v3 client on the agent's loop, through etcd's JSON
 * gateway (POST /v3/...), driven by the libcurl multi handle on the host's
 * event loop (plugins/curl-loop.c, compiled into the core as well) with
 * jansson for the bodies.  The subset used is common to etcd 3.4, 3.5 and
 * 3.6: keys and values travel base64-encoded, 64-bit numbers (lease IDs,
 * revisions) arrive as JSON strings, and a failed txn omits `succeeded`.
 *
 * One struct etcd per agent ([cluster] etcd = ...).  Requests rotate over
 * the listed endpoints: a request that cannot reach one endpoint (connect
 * failure, timeout, a 5xx, "etcdserver: leader changed" and the like) is
 * retried on the next, once per endpoint, within its own time budget.
 * etcd auth (user + password -> a token from /v3/auth/authenticate, renewed
 * when the server says it is invalid) and TLS (ca_file, client_cert,
 * client_key, verification always on for https://) are taken as the
 * webhook plugin takes them.
 *
 * Threads: etcd_new() and etcd_free() on the main thread before / after
 * the loop runs; everything else on the loop thread.  No call blocks.
 *
 * Ownership: every pointer passed in is borrowed for the call (the client
 * copies what it keeps).  Everything in an etcd_result / etcd_watch_batch
 * is borrowed for the callback; copy what you keep.
 *
 * Errors: 0 or a negative WP_E* code (watchpost/plugin.h) from the calls
 * themselves; a finished request reports its outcome in r->err (below).
 */
#ifndef CORE_ETCD_H
#define CORE_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include <watchpost/plugin.h>

struct etcd;
struct etcd_req;
struct etcd_watch;

struct etcd_opts {
	const char *const *endpoints;  /* "http://127.0.0.1:2379", ... */
	size_t n_endpoints;            /* at least 1 */
	const char *user;              /* NULL: no etcd auth */
	const char *password;          /* with user; never logged */
	const char *ca_file;           /* NULL: the system's CAs */
	const char *client_cert;       /* NULL: none; with client_key */
	const char *client_key;
	int64_t request_timeout_us;    /* per request, all retries included;
	                                * 0: 5 s */
	/* The server's watch progress-notify interval (etcd's
	 * --experimental-watch-progress-notify-interval, 10 min unless set);
	 * 0: that default.  A watch stream silent for 2 x this + 1 s is
	 * taken as dead. */
	int64_t watch_progress_us;
};

/* What a finished request says.  err is one of: */
enum etcd_err {
	ETCD_OK = 0,
	ETCD_EUNAVAILABLE = 1,  /* no endpoint answered within the budget */
	ETCD_ENOTFOUND = 2,     /* lease not found (keepalive, revoke, put) */
	ETCD_ECOMPACTED = 3,    /* range/watch at a compacted revision */
	ETCD_EAUTH = 4,         /* authentication refused */
	ETCD_EPROTO = 5,        /* an answer we could not read */
	ETCD_EREFUSED = 6       /* another error etcd reported (message) */
};

struct etcd_kv {
	const char *key;          /* not NUL-terminated; key_len bytes */
	size_t key_len;
	const char *value;        /* not NUL-terminated; value_len bytes */
	size_t value_len;
	int64_t create_revision;  /* a claim's fencing token */
	int64_t mod_revision;
	int64_t version;
	int64_t lease;            /* 0: none */
};

struct etcd_result {
	enum etcd_err err;
	const char *message;      /* with err != ETCD_OK: etcd's or ours */
	int64_t revision;         /* header.revision (0 when unknown) */
	/* lease grant / keepalive: */
	int64_t lease_id;
	int64_t ttl_s;            /* granted / remaining TTL */
	/* txn: */
	int succeeded;            /* 1: the compares held (success ops ran) */
	/* range, and a txn's range ops (all of them, in order, flattened): */
	const struct etcd_kv *kvs;
	size_t n_kvs;
	int64_t count;            /* range: matching keys (may exceed n_kvs
	                           * with a limit) */
	int more;                 /* range: more keys beyond the limit */
};

/* Called exactly once per accepted request (never from inside the call
 * that started it), unless the request was cancelled with etcd_cancel()
 * first. */
typedef void (*etcd_cb)(void *arg, const struct etcd_result *r);

/* Create / free the client.  etcd_new() returns 0 and sets *out, or a
 * WP_E* code with a message through the host's log.  etcd_free() cancels
 * every request and watch without calling back; accepts NULL. */
int etcd_new(const struct wp_host *host, const struct etcd_opts *o,
    struct etcd **out);
void etcd_free(struct etcd *e);

/* Cancel an in-flight request: its callback is never called.  REQ must be
 * a request whose callback has not run yet; accepts NULL. */
void etcd_cancel(struct etcd_req *req);

/* Every call below returns 0 and (when out is not NULL) sets *out to the
 * request, valid until its callback returns or it is cancelled; or a
 * negative WP_E* code, and the callback will never be called. */

/* Leases. */
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_cb cb, void *arg,
    struct etcd_req **out);
/* One renewal (one POST /v3/lease/keepalive): r->ttl_s is the new TTL;
 * ETCD_ENOTFOUND when the lease is gone (re-register). */
int etcd_lease_keepalive(struct etcd *e, int64_t lease, etcd_cb cb,
    void *arg, struct etcd_req **out);
int etcd_lease_revoke(struct etcd *e, int64_t lease, etcd_cb cb, void *arg,
    struct etcd_req **out);

/* Range: one key (range_end NULL), a prefix (range_end = etcd_prefix_end
 * of the key), or [key, range_end).  REVISION 0 means the newest; LIMIT 0
 * means no limit. */
int etcd_range(struct etcd *e, const char *key, size_t key_len,
    const char *range_end, size_t range_end_len, int64_t revision,
    int64_t limit, etcd_cb cb, void *arg, struct etcd_req **out);

/* The end of the range holding every key that starts with PREFIX (etcd's
 * rule: the prefix with its last byte below 0xff incremented, the bytes
 * after it dropped).  Writes at most max(PREFIX_LEN, 1) bytes to BUF and
 * returns the length; a prefix of only 0xff bytes (or an empty one) gives
 * "\0", length 1: every key. */
size_t etcd_prefix_end(const char *prefix, size_t prefix_len, char *buf);

/* Transactions: every write goes through one (a plain put is a txn with
 * no compares). */
enum etcd_cmp_target {
	ETCD_CMP_VERSION, ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VALUE,
	ETCD_CMP_LEASE
};
enum etcd_cmp_result {
	ETCD_CMP_EQUAL, ETCD_CMP_NOT_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS
};
struct etcd_cmp {
	const char *key;
	size_t key_len;
	enum etcd_cmp_target target;
	enum etcd_cmp_result result;
	int64_t number;           /* VERSION, CREATE, MOD, LEASE */
	const char *value;        /* VALUE */
	size_t value_len;
};
enum etcd_op_type { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_RANGE };
struct etcd_op {
	enum etcd_op_type type;
	const char *key;
	size_t key_len;
	const char *range_end;    /* DELETE / RANGE: NULL for one key */
	size_t range_end_len;
	const char *value;        /* PUT */
	size_t value_len;
	int64_t lease;            /* PUT: 0 for none */
};
int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, size_t n_cmp,
    const struct etcd_op *success, size_t n_success,
    const struct etcd_op *failure, size_t n_failure,
    etcd_cb cb, void *arg, struct etcd_req **out);

/*
 * Watches: one streaming transfer per watch, over [key, range_end) (a
 * prefix as for etcd_range), from START_REVISION (0: from now).  The
 * client asks for progress notifications and treats a stream silent for
 * longer than its progress bound as dead; a stream that ends or dies is
 * reopened (on the next endpoint) from the last revision seen + 1, and
 * those events are not repeated.
 *
 * fn() is called for each batch of events, in revision order.  When the
 * start revision has been compacted away, fn() gets one batch with
 * `compacted` set (and compact_revision): the watch has then stopped, the
 * caller re-ranges and starts a new one from the range's revision + 1.
 * `healthy` tells whether the stream is currently open (a batch with no
 * events and healthy changed reports a stream lost or regained; the first
 * stream's opening is such a batch too, with healthy 1).
 *
 * Resuming is from the last event's revision + 1, never from a progress
 * notification's revision (progress notifications are not ordered with a
 * stream's events in every 3.4 release: etcd issues 15220, 20221): a
 * watch that saw no event for longer than the compaction horizon resumes
 * into `compacted`.
 *
 * W stays allocated after a compacted batch until etcd_watch_stop() (or
 * etcd_free()).
 */
enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };
struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv;        /* DELETE: key and mod_revision only */
};
struct etcd_watch_batch {
	int64_t revision;         /* header.revision of this message */
	const struct etcd_event *events;
	size_t n_events;
	int compacted;
	int64_t compact_revision;
	int healthy;
};
typedef void (*etcd_watch_fn)(void *arg, const struct etcd_watch_batch *b);
int etcd_watch_start(struct etcd *e, const char *key, size_t key_len,
    const char *range_end, size_t range_end_len, int64_t start_revision,
    etcd_watch_fn fn, void *arg, struct etcd_watch **out);
/* Stop W; fn() is not called again.  Accepts NULL.  Safe inside fn(). */
void etcd_watch_stop(struct etcd_watch *w);

#endif /* CORE_ETCD_H */
