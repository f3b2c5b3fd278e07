/*
 * curl-loop -- libcurl's multi_socket interface driven by the host's event
 * loop (host->watch and host->timer_*), shared by http.so and
 * alert-webhook.so, and by the core's etcd client (core/etcd.c).  It is
 * compiled into each plugin and into the core; the plugins are built
 * with hidden visibility, so none of these names leaves its .so file.
 *
 * Threads: curlloop_loop_new() and curlloop_loop_free() run on the main thread
 * (init/fini); everything else runs on the loop thread.
 *
 * Every transfer is a struct curlloop_xfer embedded in the caller's
 * per-operation state.  A transfer added with curlloop_loop_add() ends in
 * exactly one of two ways: curl finishes it and done() is called once (the
 * easy handle is already out of the multi handle, so done() may release
 * it), or the caller takes it back with curlloop_loop_remove() or
 * curlloop_release() and done() is never called.  done() runs outside every curl callback, so it may complete the
 * host operation, free the transfer and start new ones.
 */
#ifndef PLUGINS_CURL_LOOP_H
#define PLUGINS_CURL_LOOP_H

#include <stddef.h>

#include <curl/curl.h>
#include <watchpost/plugin.h>

/* Response headers (all of them, redirects included) are cut off here. */
#define CURLLOOP_MAX_HEADER (64 * 1024)

struct curlloop_loop;
struct curlloop_xfer;

/* Body data for the transfer.  Return 0 to go on, 1 to end the transfer
 * now because the verdict is known (it then finishes with `stopped` set). */
typedef int (*curlloop_body_fn)(struct curlloop_xfer *x, const char *p,
    size_t n);
typedef void (*curlloop_done_fn)(struct curlloop_xfer *x, CURLcode rc);

struct curlloop_xfer {
	CURL *easy;
	curlloop_body_fn body;     /* NULL: the body is not wanted at all */
	curlloop_done_fn done;
	void *arg;                /* the caller's */
	size_t header_bytes;
	int header_overflow;      /* headers exceeded CURLLOOP_MAX_HEADER */
	int got_header;           /* a response header arrived */
	int got_body;             /* body data arrived */
	int stopped;              /* body() ended the transfer on purpose */
	int in_multi;
	int fd;                   /* its socket, -1 if none (set by the loop) */
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * Create the loop for HOST.  Returns NULL on failure.  The host's timer is
 * made on first use (timers are loop-thread services).
 */
struct curlloop_loop *curlloop_loop_new(const struct wp_host *host);
/* Free the loop; no transfer may still be in it.  Accepts NULL. */
void curlloop_loop_free(struct curlloop_loop *cl);

/*
 * Give X (with x->easy set up by curlloop_setup() and x->done set) to the
 * loop.  Returns 0, or WP_ENOMEM / WP_EIO if it could not be added, in which
 * case done() will never be called and X is still the caller's.
 */
int curlloop_loop_add(struct curlloop_loop *cl, struct curlloop_xfer *x);
/* Take X back before it finished; done() will not be called.  Frees the
 * transfer's sockets and watches. */
void curlloop_loop_remove(struct curlloop_loop *cl, struct curlloop_xfer *x);

/*
 * Give x->easy a handle of CL's (an idle one reset to curl's defaults, or a
 * new one) with the options every check and delivery shares: URL, no
 * signals, http/https only (redirects too), the watchpost User-Agent, a
 * fresh connection that is not kept (or, with KEEPALIVE, an idle one of
 * an earlier transfer to the same host and port when there is one, and
 * the connection kept for the next), no DNS or TLS session cache, the
 * header bound, HEADERS (borrowed: must outlive the transfer), TLS
 * verification per VERIFY_TLS and a total time bound of BUDGET_US plus a
 * margin (the host cancels at its deadline first).  Returns 0 or WP_ENOMEM /
 * WP_EINVAL; on failure x->easy is NULL.  Loop thread.
 */
int curlloop_setup(struct curlloop_loop *cl, struct curlloop_xfer *x,
    const char *url, struct curl_slist *headers, int verify_tls,
    int keepalive, int64_t budget_us);
/*
 * A user of KEEPALIVE transfers was made (DELTA 1) or freed (-1): the
 * connection cache keeps room for one idle connection per user beside
 * the transfers in flight; the least recently used idle connection is
 * closed first.  Loop thread.
 */
void curlloop_keepalive(struct curlloop_loop *cl, int delta);
/*
 * Give x->easy back to CL (taking X out of the loop first if it is still
 * in it; done() is then never called) and set it to NULL.  Every option
 * is forgotten.  Accepts x->easy == NULL.  Loop thread.
 */
void curlloop_release(struct curlloop_loop *cl, struct curlloop_xfer *x);

/* Phase timings and total latency of a finished or cancelled transfer. */
void curlloop_timings(struct curlloop_xfer *x, struct wp_result *res);

/*
 * Turn a failed transfer into a result: a reason of the class down and a
 * detail in BUF naming what failed ("connection refused", "TLS certificate
 * verification failed: ...").  The detail never contains the URL, its host,
 * or any header value.
 */
void curlloop_failure(struct curlloop_xfer *x, CURLcode rc,
    struct wp_result *res, char *buf, size_t len);

/* The phase a transfer has reached, for "timed out <phase>". */
const char *curlloop_phase(struct curlloop_xfer *x);

/*
 * The header key's "Name: value" syntax (the host cannot judge it).
 * Returns NULL if S is acceptable, else a message that does not quote S
 * (values may hold secrets).
 */
const char *curlloop_check_header(const char *s);

/*
 * The state of a plugin built on this loop: its host table and its multi
 * handle.  curlloop_plugin_init is a descriptor's init() (main thread:
 * curl_global_init happens here); curlloop_plugin_fini its fini().
 */
struct curlloop_plugin {
	const struct wp_host *host;
	struct curlloop_loop *cl;
};
int curlloop_plugin_init(const struct wp_host *host, void **state);

/*
 * The host's deadline for transfer X (started at started_us): take X out of
 * the loop and fill *res as a timeout naming the phase reached.  The detail
 * is written to detail[len], which res->detail points at; the caller then
 * completes the operation and frees it.
 */
void curlloop_cancel_result(struct curlloop_plugin *st, struct curlloop_xfer *x,
    int64_t started_us, char *detail, size_t len, struct wp_result *res);
void curlloop_plugin_fini(void *state);

/* PATH must be readable and hold a PEM certificate ("-----BEGIN
 * CERTIFICATE-----"): the -t check of http's and tls's ca_file.  NULL, or
 * a message (naming PATH) in BUF. */
const char *curlloop_check_pem(const char *path, char *buf, size_t len);

#endif
