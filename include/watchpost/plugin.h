/*
 * watchpost/plugin.h -- the watchpost plugin ABI.
 *
 * This is the only header a plugin needs.  It is a promise to people who
 * build plugins outside the watchpost tree: within one ABI major version a
 * plugin built against an older minor keeps loading and working.
 *
 * ABI changelog (newest first).  Bump WP_ABI_MINOR for additions at the end
 * of a struct or new enum values; bump WP_ABI_MAJOR (and reset the minor)
 * for anything removed, reordered or changed in meaning.
 *
 *   1.0  2026-11-22  First stable ABI: descriptor, host services, check and
 *                    alert plugins, asynchronous and blocking check forms.
 *
 * ---------------------------------------------------------------------------
 * How a plugin is found and loaded
 *
 *   A check type T lives in PLUGIN_DIR/T.so; an alert type T lives in
 *   PLUGIN_DIR/alert-T.so.  The file exports exactly one symbol,
 *   watchpost_plugin(), which returns the plugin's descriptor.  Use
 *   WP_PLUGIN_DEFINE() to emit it.  The host refuses the file unless:
 *     - magic == WP_PLUGIN_MAGIC,
 *     - abi_major == the host's WP_ABI_MAJOR,
 *     - abi_minor <= the host's WP_ABI_MINOR,
 *     - name equals the type name taken from the file name, and
 *     - kind agrees with the file name (alert-*.so is an alert plugin).
 *   Plugins are loaded on the main thread before any worker starts and stay
 *   resident until the process exits.
 *
 * Size-prefixed structs
 *
 *   Every struct that crosses the boundary starts with `size`, set by whoever
 *   fills it to sizeof() as *they* compiled it.  Structs only grow at the end.
 *   A reader copies min(size, its own sizeof) and treats the missing tail as
 *   zero / NULL.  Always fill `size` (the WP_*_INIT macros do).
 *
 * Ownership
 *
 *   - Everything the host passes into a callback (strings, sections, requests)
 *     is borrowed: valid only until the callback returns, except that a
 *     `struct wp_request` stays valid until the operation is completed.
 *     Copy what you keep.
 *   - What the plugin allocates, the plugin frees (its state, instances,
 *     per-operation state).  Memory the host will free must come from
 *     host->alloc; the host never frees anything else of the plugin's.
 *   - A `struct wp_result` handed to host->complete() is copied by the host
 *     before complete() returns; it and its strings stay the plugin's.
 *   - Plugins never free host handles (wp_op, wp_watch, wp_timer) other than
 *     through the matching host call.
 *
 * Errors versus results
 *
 *   Functions return WP_OK (0) or a negative WP_E* code: "the plugin could not
 *   do its job".  "The target is down" is not an error: it is a result with
 *   ok = 0 and a reason from enum wp_reason, which the store, the API, the
 *   metrics and the webhooks all share.
 *
 * Threads
 *
 *   main   the thread that loads plugins, before the event loop starts.
 *   loop   the single event-loop thread; code here must never block.
 *   worker a thread of the host's bounded worker pool.
 *   Each callback below names the thread it is called on.  The host never
 *   calls two callbacks of one plugin concurrently except `check` (workers),
 *   which may run concurrently for different instances and concurrently
 *   with loop-thread callbacks.  Host services say which threads may call them.
 *
 * Operations (checks and alert deliveries)
 *
 *   The host owns the deadline.  A plugin offers either the asynchronous form
 *   (start + cancel), the blocking form (check), or both; the host prefers
 *   the asynchronous form.
 *
 *   Asynchronous: start() is called on the loop thread and must not block.
 *   If it returns WP_OK it has accepted the operation and must complete it
 *   exactly once through host->complete(req->op, &result) -- success,
 *   failure, or after cancel().  It may complete from inside start().  If
 *   start() returns an error, the operation was not accepted and must not be
 *   completed.  At the deadline (or when the monitor is removed, or at
 *   shutdown) the host calls cancel() on the loop thread; the plugin stops
 *   its work, releases its per-operation resources and completes the
 *   operation (inside cancel() or soon after).  cancel() is never called for
 *   an operation that has already been completed.  The host records a
 *   timed-out operation as WP_REASON_TIMEOUT whatever result cancel produces.
 *
 *   Blocking: check() is called on a worker thread and may block, but should
 *   honour req->deadline_us.  It fills *res and returns WP_OK, or returns a
 *   negative WP_E* code if the plugin itself failed.  The host copies *res
 *   after check() returns, so res->detail must outlive the call: a string
 *   literal, the instance's own memory, or a _Thread_local buffer (the same
 *   worker runs nothing else before the copy) -- never check()'s stack.  If the deadline passes
 *   first, the host records a timeout and discards the late result; the
 *   worker stays busy until check() returns, so honour the deadline.
 */
#ifndef WATCHPOST_PLUGIN_H
#define WATCHPOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WP_PLUGIN_MAGIC 0x57504c47u /* "WPLG": "this is a watchpost plugin" */
#define WP_ABI_MAJOR 1
#define WP_ABI_MINOR 0

#if defined(__GNUC__)
#define WP_EXPORT __attribute__((visibility("default")))
#define WP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WP_EXPORT
#define WP_PRINTF(f, a)
#endif

/* Return codes: 0 or negative. */
enum wp_err {
	WP_OK = 0,
	WP_EINVAL = -1,    /* bad argument or configuration */
	WP_ENOMEM = -2,    /* out of memory */
	WP_EIO = -3,       /* system call failed */
	WP_EAGAIN = -4,    /* temporarily unable; try again later */
	WP_ECANCELED = -5, /* operation was cancelled */
	WP_ENOTSUP = -6,   /* not supported here (e.g. no ICMP method) */
	WP_EINTERNAL = -7  /* bug or broken invariant */
};

/*
 * Why a check (or delivery) came out as it did.  The host keeps the table of
 * short names ("dns", "refused", ...) that the store, API and webhooks use.
 * New reasons are only ever appended.
 */
enum wp_reason {
	WP_REASON_OK = 0,       /* up */
	WP_REASON_DNS,          /* name resolution failed */
	WP_REASON_REFUSED,      /* connection refused */
	WP_REASON_UNREACHABLE,  /* host or network unreachable */
	WP_REASON_TIMEOUT,      /* deadline reached (set by the host) */
	WP_REASON_CONNECT,      /* other failure to connect */
	WP_REASON_TLS,          /* TLS handshake or certificate verification */
	WP_REASON_STATUS,       /* unexpected protocol status (HTTP code) */
	WP_REASON_KEYWORD,      /* body content rule failed */
	WP_REASON_PROTOCOL,     /* malformed or unexpected response */
	WP_REASON_IO,           /* send or receive failed mid-operation */
	WP_REASON_CHECK,        /* a plugin-specific condition failed */
	WP_REASON_CANCELED,     /* cancelled (removed monitor, shutdown) */
	WP_REASON_PLUGIN,       /* the plugin itself failed: an error, not a verdict */
	WP_REASON__COUNT
};

enum wp_log_level {
	WP_LOG_ERROR = 0,
	WP_LOG_WARN = 1,
	WP_LOG_INFO = 2,
	WP_LOG_DEBUG = 3
};

enum wp_plugin_kind {
	WP_PLUGIN_CHECK = 1, /* a monitor type: [monitor:NAME] type = NAME */
	WP_PLUGIN_ALERT = 2  /* an alert type:  [alert:NAME]   type = NAME */
};

/* Events for fd watches. */
#define WP_READABLE 1u
#define WP_WRITABLE 2u

/* Opaque host handles. */
struct wp_op;    /* one in-flight operation (check attempt or delivery) */
struct wp_watch; /* an fd watch on the loop */
struct wp_timer; /* a timer on the loop */
struct wp_diag;  /* configuration diagnostics sink */
struct wp_resolve; /* an in-flight name resolution */
struct addrinfo;

/*
 * One configuration key a plugin accepts.  The host rejects keys not in the
 * plugin's table (with a "did you mean"), missing WP_KEY_REQUIRED keys and
 * repeats of keys without WP_KEY_MULTI, before configure() is called:
 * configure() never sees an unknown or repeated key, nor a section that
 * lacks a required one.
 * The table ends with an entry whose name is NULL.  This struct is frozen for
 * ABI major 1.
 */
#define WP_KEY_REQUIRED 1u
#define WP_KEY_MULTI 2u
struct wp_key {
	const char *name;
	unsigned flags;
	const char *help; /* one line, for --help style listings */
};

/* One `key = value` line of a section, in file order.  Frozen for major 1. */
struct wp_kv {
	const char *key;
	const char *value;
	int line; /* 1-based line in `file` */
};

/*
 * A configuration section handed to configure(): only the plugin's own keys
 * (the host consumes the common monitor keys such as interval and timeout).
 */
struct wp_section {
	size_t size;
	const char *name;      /* the monitor or alert name: "api-home" */
	const char *file;      /* the configuration file */
	int line;              /* line of the [section] header */
	const struct wp_kv *kv;
	size_t n_kv;
	int64_t timeout_ms;    /* the section's timeout (common key) */
	struct wp_diag *diag;  /* pass to host->config_error */
};

/* Find the last value of `key` in a section, or NULL. */
static inline const struct wp_kv *
wp_section_find(const struct wp_section *sec, const char *key)
{
	const struct wp_kv *found = NULL;
	size_t i, j;

	for (i = 0; i < sec->n_kv; i++) {
		const char *a = sec->kv[i].key;
		for (j = 0; a[j] != '\0' && a[j] == key[j]; j++)
			;
		if (a[j] == '\0' && key[j] == '\0')
			found = &sec->kv[i];
	}
	return found;
}

/* An alert event, for alert plugins (req->alert). */
struct wp_alert {
	size_t size;
	uint64_t id;                /* stable across retries: an idempotency key */
	const char *monitor;        /* monitor name */
	const char *type;           /* monitor type: "http" */
	const char *state;          /* "down" or "up" */
	const char *previous_state; /* "up", "down" or "pending" */
	int64_t timestamp_ms;       /* unix epoch ms of the check that changed state */
	const char *error;          /* NULL when up */
	const char *reason;         /* short reason name ("refused"), NULL when up */
	double latency_ms;          /* < 0: nothing measured */
	unsigned attempt;           /* delivery attempt, 0 first */
};

/* What the host hands to start() and check(). Valid until completion. */
struct wp_request {
	size_t size;
	struct wp_op *op;              /* pass to host->complete() */
	const char *monitor;           /* monitor (or alert section) name */
	int64_t started_us;            /* monotonic, host->now_us() scale */
	int64_t deadline_us;           /* monotonic; the host cancels here */
	unsigned attempt;              /* 0 first attempt, then retries */
	const struct wp_alert *alert;  /* alert plugins only, else NULL */
};

/* The outcome of one operation. */
struct wp_result {
	size_t size;
	int ok;               /* 1 up / delivered, 0 down / not delivered */
	int reason;           /* enum wp_reason; WP_REASON_OK when ok */
	double latency_ms;    /* < 0: nothing to measure */
	int status_code;      /* protocol status (HTTP), or -1 */
	const char *detail;   /* human message; NULL when ok. Borrowed. */
	/* Phase timings from the start of the operation, ms; < 0 unknown. */
	double dns_ms;
	double connect_ms;
	double tls_ms;
	double first_byte_ms;
	int64_t cert_expiry;  /* unix seconds of the peer certificate's notAfter; 0 none */
};

#define WP_RESULT_INIT                                                       \
	{ sizeof(struct wp_result), 0, WP_REASON_OK, -1.0, -1, NULL,           \
	  -1.0, -1.0, -1.0, -1.0, 0 }

typedef void (*wp_watch_cb)(struct wp_watch *w, int fd, unsigned revents,
    void *arg);
typedef void (*wp_timer_cb)(struct wp_timer *t, void *arg);
/* status 0 and a list valid only during the call, or a negative WP_E* /
 * EAI_* failure (res NULL).  `err` is a human message for failures. */
typedef void (*wp_resolve_cb)(void *arg, int status, const char *err,
    const struct addrinfo *res);

/*
 * Host services.  Each plugin gets its own table (so log() knows who
 * speaks); it is valid from init() until after fini().  The table only grows
 * at the end: test `size` before using a member newer than your minor.
 */
struct wp_host {
	size_t size;
	unsigned abi_major;
	unsigned abi_minor;
	const char *plugin_name;

	/* Any thread.  Logs one line prefixed with the plugin's name. */
	void (*log)(const struct wp_host *h, int level, const char *fmt, ...)
	    WP_PRINTF(3, 4);
	/* Any thread.  Monotonic clock, microseconds. */
	int64_t (*now_us)(void);
	/* Any thread.  Wall clock, unix epoch milliseconds. */
	int64_t (*wall_ms)(void);
	/* Any thread.  Host allocator; alloc returns NULL on failure. */
	void *(*alloc)(size_t n);
	void (*free)(void *p);

	/*
	 * Configuration (during configure()).  config_error() reports a problem
	 * as FILE:LINE: KEY: message for the key kv (so the message need not
	 * name it), or as FILE:LINE: message at the section header line when
	 * kv is NULL.
	 */
	void (*config_error)(const struct wp_section *sec, const struct wp_kv *kv,
	    const char *fmt, ...) WP_PRINTF(3, 4);
	/* Parse "250ms", "10s", "5m", "1h", "1d" or a bare number of seconds
	 * (decimal digits and at most one '.': no sign, exponent, hex, inf
	 * or nan; at most 10 years).  Returns 0 and sets *ms, or WP_EINVAL. */
	int (*parse_duration)(const char *s, int64_t *ms);
	/* Parse true/false/yes/no/on/off/1/0.  0 and *out, or WP_EINVAL. */
	int (*parse_bool)(const char *s, int *out);

	/*
	 * Event loop services: loop thread only (start, cancel and callbacks run
	 * there).  watch() starts watching fd for `events` (WP_READABLE |
	 * WP_WRITABLE); cb gets the ready events.  watch_set() changes them
	 * (0 pauses).  unwatch() stops and frees the watch; it is safe inside
	 * the watch's own callback; the fd stays the plugin's to close, after
	 * unwatch().  Returns NULL / negative on failure.
	 */
	struct wp_watch *(*watch)(const struct wp_host *h, int fd,
	    unsigned events, wp_watch_cb cb, void *arg);
	int (*watch_set)(struct wp_watch *w, unsigned events);
	void (*unwatch)(struct wp_watch *w);
	/* A one-shot timer: timer_set(t, ms) (re)arms it to fire after ms,
	 * ms < 0 disarms it; timer_free() disarms and frees (safe inside cb). */
	struct wp_timer *(*timer_new)(const struct wp_host *h, wp_timer_cb cb,
	    void *arg);
	int (*timer_set)(struct wp_timer *t, int64_t ms);
	void (*timer_free)(struct wp_timer *t);

	/*
	 * Resolve a name without blocking the loop (getaddrinfo off the loop).
	 * Loop thread.  cb runs exactly once on the loop thread -- unless
	 * resolve_cancel() was called first, after which it never runs.
	 * hints may be NULL.  Returns NULL if the request could not be made.
	 */
	struct wp_resolve *(*resolve)(const struct wp_host *h, const char *node,
	    const char *service, const struct addrinfo *hints, wp_resolve_cb cb,
	    void *arg);
	void (*resolve_cancel)(struct wp_resolve *r);

	/*
	 * Complete an operation, exactly once.  Any thread; may be called from
	 * inside start() or cancel().  The host copies *res.  After this call
	 * the plugin must not touch req or op again.
	 */
	void (*complete)(struct wp_op *op, const struct wp_result *res);
};

/* The plugin descriptor, returned by watchpost_plugin(). */
struct wp_plugin {
	uint32_t magic;        /* WP_PLUGIN_MAGIC */
	uint16_t abi_major;    /* WP_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor;    /* WP_ABI_MINOR the plugin was built with */
	size_t size;           /* sizeof(struct wp_plugin) */
	const char *name;      /* type name, equal to the file's: "http", "webhook" */
	const char *version;   /* the plugin's own version string */
	const char *description;
	int kind;              /* enum wp_plugin_kind */
	const struct wp_key *keys; /* accepted keys, NULL-name terminated */

	/* main; once.  Set up global state (curl_global_init belongs here) and
	 * keep `host` for later calls.  *state is passed back below.  May be
	 * NULL.  Returns WP_OK or WP_E*; on error the plugin is not used. */
	int (*init)(const struct wp_host *host, void **state);
	/* main; once, after every instance was released.  May be NULL. */
	void (*fini)(void *state);

	/* main or loop.  Validate the section (keys are already known to be in
	 * the table) and build an instance in *inst.  Report every problem with
	 * host->config_error() and return WP_EINVAL; then *inst is ignored.
	 * It also runs on a file the host rejects for other reasons, so that
	 * one report lists every problem; that instance is released unused. */
	int (*configure)(void *state, const struct wp_section *sec, void **inst);
	/* main or loop.  Free an instance; no operation of it is in flight. */
	void (*release)(void *state, void *inst);

	/* loop.  Asynchronous form (see the file comment).  *opstate is passed
	 * to cancel().  NULL if the plugin only has the blocking form. */
	int (*start)(void *inst, const struct wp_request *req, void **opstate);
	void (*cancel)(void *inst, void *opstate);

	/* worker.  Blocking form.  NULL if the plugin only has start(). */
	int (*check)(void *inst, const struct wp_request *req,
	    struct wp_result *res);
};

#define WP_PLUGIN_HEADER                                                     \
	WP_PLUGIN_MAGIC, WP_ABI_MAJOR, WP_ABI_MINOR, sizeof(struct wp_plugin)

/*
 * WP_PLUGIN_DEFINE(id, desc) exports the entry symbol returning &desc.  `id`
 * is the file's base name with every non-alphanumeric character replaced by
 * '_' (alert-webhook -> alert_webhook); the id_LTX_ alias lets libltdl
 * preload the plugin into a test binary.
 */
#define WP_PLUGIN_DEFINE(id, desc)                                            \
	WP_EXPORT const struct wp_plugin *watchpost_plugin(void);             \
	WP_EXPORT const struct wp_plugin *id##_LTX_watchpost_plugin(void);    \
	const struct wp_plugin *watchpost_plugin(void) { return &(desc); }   \
	const struct wp_plugin *id##_LTX_watchpost_plugin(void)               \
	{ return &(desc); }

#define WP_PLUGIN_SYMBOL "watchpost_plugin"

#ifdef __cplusplus
}
#endif

#endif /* WATCHPOST_PLUGIN_H */
