/*
 * watchpost/plugin.h -- the watchpost plugin ABI.
 *
 * This is the only header a plugin needs.  It is a promise to people who
 * build plugins outside the watchpost tree: within one ABI major version a
 * plugin built against an older minor keeps loading and working.
 *
 * ABI changelog (newest first).  Bump WP_ABI_MINOR for additions at the end
 * of a struct, new enum values, new key types or units; bump WP_ABI_MAJOR
 * (and reset the minor) for anything removed, reordered or changed in
 * meaning.  2.0 is the frozen base: from here on the ABI only grows.
 *
 *   2.2  2026-12-03  Grown, nothing changed: wp_alert gains
 *                    confirmed_by (cluster mode: the locations whose
 *                    checks confirmed a multi-location verdict).
 *   2.1  2026-12-02  Grown, nothing changed: wp_alert gains since_us,
 *                    target, repeat, flags (WP_ALERT_TEST, _ESCALATION),
 *                    agent, location, status_url; wp_request gains the
 *                    alerts/n_alerts batch (group_window) for alert
 *                    plugins that set WP_PLUGIN_F_GROUPS in the new
 *                    wp_plugin.flags; inbound events routed by key
 *                    (wp_plugin.route_key / inbound, struct wp_inbound:
 *                    push heartbeats); host->spawn / spawn_kill run a
 *                    command without a shell in its own process group
 *                    (struct wp_spawn, wp_spawn_result).  Host rules
 *                    grown too: a PATH key may be named NAME_file; a
 *                    STRING key's file form may hold several lines.
 *                    push: wp_section gains interval_us; a plugin with
 *                    route_key may return WP_EAGAIN from start() for
 *                    "nothing to judge yet" (no heartbeat expected yet):
 *                    the host records nothing for that slot.
 *   2.0  2026-12-02  The frozen base.  Typed key tables the host parses into
 *                    the plugin's own struct (struct wp_key, with a stride);
 *                    reasons carry a class (up, degraded, down) and `ok` is
 *                    gone; named measurements on results; a host-owned
 *                    detail buffer; one error domain for name resolution
 *                    (WP_ENONAME ...); every time is microseconds (_us);
 *                    WP_CHECK_PLUGIN / WP_ALERT_PLUGIN emit the descriptor
 *                    and both entry symbols from one name; every plugin is
 *                    loaded at start-up; parse_duration/parse_bool removed
 *                    (the host parses keys).
 *   1.0  2026-11-22  First ABI (never released; refused since 2.0).
 *
 * ---------------------------------------------------------------------------
 * How a plugin is found and loaded
 *
 *   A check type T lives in PLUGIN_DIR/T.so; an alert type T lives in
 *   PLUGIN_DIR/alert-T.so.  T is a C identifier ([a-z0-9_], starting with a
 *   letter).  The file exports watchpost_plugin(), which returns the
 *   plugin's descriptor; WP_CHECK_PLUGIN() or WP_ALERT_PLUGIN() emits it.
 *   The host refuses the file unless:
 *     - magic == WP_PLUGIN_MAGIC,
 *     - abi_major == the host's WP_ABI_MAJOR,
 *     - abi_minor <= the host's WP_ABI_MINOR,
 *     - name and kind agree with the file name, and
 *     - its key table is well formed (known types, storage sizes that fit,
 *       defaults that parse).
 *   At start-up, on the main thread, before any worker thread runs and
 *   before privileges are dropped, the host loads every *.so in PLUGIN_DIR
 *   and calls init() once.  Plugins stay resident until the process exits.
 *   A reload (SIGHUP) that names a type not loaded at start-up is refused
 *   with a FILE:LINE message: adding a plugin needs a restart.
 *
 * Time
 *
 *   Every time in this header is in microseconds, in an int64_t whose name
 *   ends in _us: monotonic instants (now_us), wall-clock instants (wall_us,
 *   unix epoch), deadlines, durations, latencies and timer delays.  A
 *   negative latency or phase time means "nothing measured".
 *
 * Size-prefixed structs
 *
 *   Every struct that crosses the boundary starts with `size`, set by whoever
 *   fills it to sizeof() as *they* compiled it.  Structs only grow at the end.
 *   A reader copies min(size, its own sizeof) and treats the missing tail as
 *   zero / NULL.  Always fill `size` (the WP_*_INIT and WP_KEY macros do).
 *   Arrays of such structs (the key table) are walked with the plugin's
 *   stride (wp_plugin.key_size), never the host's sizeof.
 *
 * Ownership
 *
 *   - Everything the host passes into a callback (strings, sections, requests)
 *     is borrowed: valid only until the callback returns, except that
 *       - a `struct wp_request` (and its detail and measurement buffers)
 *         stays valid until the operation is completed, and
 *       - the configuration struct the host filled for configure() (and every
 *         string and list in it) stays valid until release() of the instance
 *         built from it returns: an instance may keep pointers into it.
 *     Copy what you keep beyond that.
 *   - What the plugin allocates, the plugin frees (its state, instances,
 *     per-operation state).  Memory the host will free must come from
 *     host->alloc; the host never frees anything else of the plugin's.
 *   - A `struct wp_result` is copied by the host (detail and measurements
 *     included) before host->complete() returns, or, for the blocking form,
 *     after check() returns.  Strings and arrays it points to must live
 *     until then: a literal, the plugin's own memory, or the request's
 *     buffers (req->detail, req->measurements), which exist for exactly this.
 *   - Plugins never free host handles (wp_op, wp_watch, wp_timer, wp_resolve)
 *     other than through the matching host call.
 *
 * Errors versus results
 *
 *   Functions return WP_OK (0) or a negative WP_E* code: "the plugin could not
 *   do its job".  "The target is down" is not an error: it is a result whose
 *   reason (enum wp_reason) has the class down.  Up, degraded or down is
 *   never set separately: the host derives it from the reason's class, so
 *   the two cannot disagree.  The store, the API, the metrics and the alerts
 *   all use the host's one table of reasons.
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
 *   negative WP_E* code if the plugin itself failed.  Write a message into
 *   req->detail (req->detail_size bytes) and point res->detail at it; put
 *   numbers into req->measurements (req->max_measurements entries) and
 *   point res->measurements at them.  If the deadline passes first, the host
 *   records a timeout and discards the late result; the worker stays busy
 *   until check() returns, so honour the deadline.
 */
#ifndef WATCHPOST_PLUGIN_H
#define WATCHPOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WP_PLUGIN_MAGIC 0x57504c47u /* "WPLG": "this is a watchpost plugin" */
#define WP_ABI_MAJOR 2
#define WP_ABI_MINOR 2

#if defined(__GNUC__)
#define WP_EXPORT __attribute__((visibility("default")))
#define WP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WP_EXPORT
#define WP_PRINTF(f, a)
#endif

/*
 * Return codes: 0 or negative.  Name resolution failures use the same
 * domain (the host maps getaddrinfo's and libuv's codes onto these), so a
 * status never needs to be told apart by where it came from.
 */
enum wp_err {
	WP_OK = 0,
	WP_EINVAL = -1,    /* bad argument or configuration */
	WP_ENOMEM = -2,    /* out of memory */
	WP_EIO = -3,       /* system call failed; resolver: non-recoverable */
	WP_EAGAIN = -4,    /* temporarily unable; resolver: try again later */
	WP_ECANCELED = -5, /* operation was cancelled */
	WP_ENOTSUP = -6,   /* not supported here (e.g. no ICMP method, or an
	                    * address family the resolver does not offer) */
	WP_EINTERNAL = -7, /* bug or broken invariant */
	WP_ENONAME = -8    /* resolver: the name (or its address of the asked
	                    * family) does not exist */
};

/*
 * Why a check (or delivery) came out as it did.  Each reason has a class;
 * the host's one table gives its short name ("dns", "refused", ...), class
 * and description.  New reasons are only ever appended.
 */
enum wp_class {
	WP_CLASS_UP = 0,       /* working as expected */
	WP_CLASS_DEGRADED = 1, /* working, with a warning (slow, certificate
	                        * expiring, a Nagios WARNING) */
	WP_CLASS_DOWN = 2      /* not working */
};

enum wp_reason {
	WP_REASON_OK = 0,       /* up: up; for alerts: delivered */
	WP_REASON_DNS,          /* down: name resolution failed */
	WP_REASON_REFUSED,      /* down: connection refused */
	WP_REASON_UNREACHABLE,  /* down: host or network unreachable */
	WP_REASON_TIMEOUT,      /* down: deadline reached (set by the host) */
	WP_REASON_CONNECT,      /* down: other failure to connect */
	WP_REASON_TLS,          /* down: TLS handshake or certificate check */
	WP_REASON_STATUS,       /* down: unexpected protocol status (HTTP) */
	WP_REASON_KEYWORD,      /* down: body content rule failed */
	WP_REASON_PROTOCOL,     /* down: malformed or unexpected response */
	WP_REASON_IO,           /* down: send or receive failed mid-operation */
	WP_REASON_CHECK,        /* down: a plugin-specific condition failed */
	WP_REASON_CANCELED,     /* down: cancelled (removed monitor, shutdown) */
	WP_REASON_PLUGIN,       /* down: the plugin itself failed */
	WP_REASON_SLOW,         /* degraded: slower than its warning limit */
	WP_REASON_CERT_EXPIRING,/* degraded: certificate expires soon */
	WP_REASON_WARNING,      /* degraded: a plugin-specific warning */
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
struct wp_op;      /* one in-flight operation (check attempt or delivery) */
struct wp_watch;   /* an fd watch on the loop */
struct wp_timer;   /* a timer on the loop */
struct wp_diag;    /* configuration diagnostics sink */
struct wp_resolve; /* an in-flight name resolution */
struct wp_proc;    /* a spawned command (2.1) */
struct addrinfo;

/* ------------------------------------------------------------------------ */
/* Configuration keys */

/*
 * Key types, and the C type the host stores for each at wp_key.offset in
 * the plugin's configuration struct:
 *
 *   WP_KT_STRING    const char *   any text (may be empty)
 *   WP_KT_INT       int64_t        decimal integer in [min, max]
 *   WP_KT_DURATION  int64_t        "250ms", "10s", "5m", "1h", "1d" or a
 *                                  bare number of seconds, stored in
 *                                  microseconds, in [min, max] (us)
 *   WP_KT_BOOL      int            true/false, yes/no, on/off, 1/0 -> 1/0
 *   WP_KT_ENUM      int            index of the value in `values` (any
 *                                  case); -1 when not set, no default
 *   WP_KT_URL       const char *   an absolute URL whose scheme is one of
 *                                  `values` (NULL: http and https)
 *   WP_KT_HOST      const char *   a host name, IPv4 or IPv6 address
 *   WP_KT_PATH      const char *   a path; a relative one is resolved
 *                                  against the configuration file's folder
 *   WP_KT_SECRET    const char *   text that is never logged, shown or
 *                                  stored by the host
 *   WP_KT_LIST      struct wp_list items separated by commas (blanks around
 *                                  each trimmed); repeated lines append
 *
 * Any key of a text type (STRING, URL, HOST, PATH, SECRET) may instead be
 * given as KEY_file = PATH: the value is the file's contents (one trailing
 * newline removed).  For a STRING key the file may hold several lines (a
 * template) and be readable by anyone; for the other types, which may
 * carry a token, it must be one line that other users can neither read
 * nor write.  A key of type PATH may itself be named NAME_file (ca_file)
 * when the table has no key NAME.  WP_KEY_MULTI on a text type makes the key repeatable;
 * the host then stores a struct wp_list of the lines' values, in file order.
 *
 * An optional key the section does not set gets its default, parsed as if
 * written in the file; with no default it is NULL, an empty list, or 0 --
 * except an ENUM, which is then -1 ("not set": a plugin whose default
 * depends on another key, such as http's method, can tell).
 */
enum wp_key_type {
	WP_KT_STRING = 1,
	WP_KT_INT,
	WP_KT_DURATION,
	WP_KT_BOOL,
	WP_KT_ENUM,
	WP_KT_URL,
	WP_KT_HOST,
	WP_KT_PATH,
	WP_KT_SECRET,
	WP_KT_LIST
};

#define WP_KEY_REQUIRED 1u /* the section must set it */
#define WP_KEY_MULTI 2u    /* text types: repeatable, stored as wp_list */

/* A list value: n items, each a NUL-terminated string. */
struct wp_list {
	size_t n;
	const char *const *v;
};

/*
 * One configuration key.  The table is an array walked with the stride
 * wp_plugin.key_size; fill entries with WP_KEY() so `size`, `offset` and
 * `storage` are right.  The host rejects unknown keys (with a "did you
 * mean"), missing required keys, repeats of keys without WP_KEY_MULTI and
 * values that do not parse, all as FILE:LINE: messages, before configure()
 * is called: configure() only judges what the types cannot say.
 */
struct wp_key {
	size_t size;               /* sizeof(struct wp_key) */
	const char *name;          /* [a-z][a-z0-9_]*, not ending in "_file" */
	int type;                  /* enum wp_key_type */
	unsigned flags;            /* WP_KEY_* */
	size_t offset;             /* where the value goes in the conf struct */
	size_t storage;            /* sizeof that member (checked at load) */
	const char *def;           /* default as INI text; NULL: none */
	const char *help;          /* one line for --list-types and the docs */
	int64_t min, max;          /* INT, DURATION (us): inclusive range;
	                            * min == max == 0: the type's own range */
	const char *const *values; /* ENUM: the accepted words; URL: the
	                            * accepted schemes; NULL-terminated */
};

/*
 * WP_KEY(TYPE, "name", struct conf, member) fills size, name, type, offset
 * and storage; add designated fields after it:
 *   { WP_KEY(WP_KT_INT, "port", struct tcp_conf, port),
 *     .flags = WP_KEY_REQUIRED, .min = 1, .max = 65535,
 *     .help = "TCP port" },
 */
#define WP_KEY(ktype, kname, conf, member)                                    \
	.size = sizeof(struct wp_key), .name = (kname), .type = (ktype),       \
	.offset = offsetof(conf, member),                                      \
	.storage = sizeof(((conf *)0)->member)

/*
 * A configuration section handed to configure(): its name, where it is,
 * and the common keys the host consumed.
 */
struct wp_section {
	size_t size;
	const char *name;      /* the monitor or alert name: "api-home" */
	const char *file;      /* the configuration file */
	int line;              /* line of the [section] header */
	int64_t timeout_us;    /* the section's timeout (common key) */
	struct wp_diag *diag;  /* for host->config_error */
	/* 2.1 (push): the monitor's interval (common key); 0 for alert
	 * sections and from an older host (test size). */
	int64_t interval_us;
};

/* ------------------------------------------------------------------------ */
/* Operations */

/* An alert event, for alert plugins (req->alert). */
struct wp_alert {
	size_t size;
	uint64_t id;                /* stable across retries: an idempotency key */
	const char *monitor;        /* monitor name */
	const char *type;           /* monitor type: "http" */
	const char *state;          /* "up", "degraded" or "down" */
	const char *previous_state; /* "pending", "up", "degraded" or "down" */
	int64_t timestamp_us;       /* unix epoch of the check that changed state */
	const char *error;          /* the detail; NULL when up */
	const char *reason;         /* short reason name ("refused"); NULL when up */
	int64_t latency_us;         /* < 0: nothing measured */
	unsigned attempt;           /* delivery attempt, 0 first */
	/* 2.1 (zero / NULL from an older host: test size) */
	int64_t since_us;           /* unix epoch when the episode this alert
	                             * is about began: for a down or degraded
	                             * alert (and its repeats) when that state
	                             * began; for an up alert when the outage
	                             * it ends began; 0 unknown */
	const char *target;         /* what the monitor checks, credentials
	                             * removed ("https://example.org/health",
	                             * "db.local:5432"); NULL unknown */
	unsigned repeat;            /* 0: the transition's alert; n: the nth
	                             * reminder (renotify) */
	unsigned flags;             /* WP_ALERT_* */
	const char *agent;          /* the agent's name (host name by default) */
	const char *location;       /* the agent's location; NULL none */
	const char *status_url;     /* the status page of this monitor; NULL
	                             * when there is none */
	/* 2.2 */
	const char *confirmed_by;   /* cluster mode, a multi-location monitor:
	                             * the locations whose checks gave this
	                             * verdict, comma-separated ("fra,nyc");
	                             * NULL otherwise */
};

#define WP_ALERT_TEST 1u       /* a test alert (--test-alert), not a real
                                * transition: say so to the reader */
#define WP_ALERT_ESCALATION 2u /* sent because of an `escalate` rule */

/*
 * Measurement units.  The host appends the unit's suffix to the name for
 * storage and /metrics (as Prometheus names do): "rtt" in WP_UNIT_SECONDS
 * is "rtt_seconds".  Report base units: seconds, not milliseconds; a ratio
 * in [0, 1], not a percentage.
 */
enum wp_unit {
	WP_UNIT_NONE = 0,  /* a plain number or count: no suffix */
	WP_UNIT_SECONDS,   /* "_seconds" */
	WP_UNIT_BYTES,     /* "_bytes" */
	WP_UNIT_RATIO      /* "_ratio" */
};

/* One named number of a result: ping's loss, a DNS query's time. */
struct wp_measurement {
	const char *name;  /* [a-z][a-z0-9_]*, at most 48 bytes, unique per
	                    * result, without the unit's suffix */
	double value;      /* finite */
	int unit;          /* enum wp_unit */
};

/* The most measurements one result may carry; the host drops the rest
 * (and logs it once per monitor). */
#define WP_MEASUREMENTS_MAX 16
/* Bytes in the host's detail buffer (req->detail), NUL included. */
#define WP_DETAIL_MAX 512

/* What the host hands to start() and check(). Valid until completion. */
struct wp_request {
	size_t size;
	struct wp_op *op;              /* pass to host->complete() */
	const char *monitor;           /* monitor (or alert section) name */
	int64_t started_us;            /* monotonic, host->now_us() scale */
	int64_t deadline_us;           /* monotonic; the host cancels here */
	unsigned attempt;              /* 0 first attempt, then retries */
	const struct wp_alert *alert;  /* alert plugins only, else NULL */
	char *detail;                  /* host-owned buffer for res->detail */
	size_t detail_size;            /* WP_DETAIL_MAX */
	struct wp_measurement *measurements; /* host-owned, for res->measurements */
	size_t max_measurements;       /* WP_MEASUREMENTS_MAX */
	/* 2.1.  Alert plugins with WP_PLUGIN_F_GROUPS: the alerts of one
	 * group_window batch, oldest first, alerts[0] == alert, delivered
	 * (and completed) as one message; each keeps its own id.  Plugins
	 * without the flag get one alert per operation (n_alerts == 1).
	 * Checks: NULL and 0. */
	const struct wp_alert *const *alerts;
	size_t n_alerts;
};

/*
 * An inbound event (2.1): an HTTP request to /push/KEY that the host routed
 * to the instance whose route_key() is KEY.  Borrowed for the call.
 */
struct wp_inbound {
	size_t size;
	const char *method;    /* "GET" or "POST" */
	const char *query;     /* the raw query string without '?', still
	                        * percent-encoded; "" when there is none */
	const char *body;      /* POST body (NUL-terminated), capped by the
	                        * host; "" when there is none */
	size_t body_len;
	int64_t received_us;   /* monotonic, host->now_us() scale */
	int64_t wall_us;       /* unix epoch */
};

/*
 * A command for host->spawn() (2.1).  No shell: path is executed directly
 * with argv, in a new process group, with exactly env as its environment,
 * stdin fed from input (then closed), stdout and stderr captured.
 */
struct wp_spawn {
	size_t size;
	const char *path;              /* absolute path of the executable */
	const char *const *argv;       /* argv[0] first, NULL-terminated */
	const char *const *env;        /* "NAME=value", NULL-terminated: the
	                                * whole environment */
	const void *input;             /* written to stdin; NULL: empty stdin */
	size_t input_len;
	size_t output_max;             /* bytes of stdout (and of stderr) kept;
	                                * the rest is read and dropped */
	int64_t deadline_us;           /* monotonic: at this instant the whole
	                                * process group is killed */
};

/* How a spawned command ended; borrowed for the callback. */
struct wp_spawn_result {
	size_t size;
	int status;             /* WP_OK: it ran and exited (exit_code) or was
	                         * killed by a signal; WP_ECANCELED: killed at
	                         * the deadline or by spawn_kill(), or the
	                         * deadline came while it waited for a slot
	                         * (then a message in out); WP_E*: it could
	                         * not be started (message in out) */
	int exit_code;          /* 0..255; -1 when ended by a signal */
	int term_signal;        /* the signal that ended it, or 0 */
	const char *out;        /* stdout, NUL-terminated, at most output_max */
	size_t out_len;
	const char *err;        /* stderr, likewise */
	size_t err_len;
	int truncated;          /* 1 when output beyond output_max was dropped */
	int64_t runtime_us;     /* from exec to exit */
};

/* The outcome of one operation.  Up, degraded or down is the reason's
 * class. */
struct wp_result {
	size_t size;
	int reason;           /* enum wp_reason */
	int64_t latency_us;   /* < 0: nothing to measure */
	int status_code;      /* protocol status (HTTP), or -1 */
	const char *detail;   /* human message; NULL when there is nothing to
	                       * say.  An up result may carry one (tls: the
	                       * protocol and issuer), which the store keeps
	                       * only for results that are not up.
	                       * Borrowed. */
	/* Phase times from the start of the operation; < 0 unknown. */
	int64_t dns_us;
	int64_t connect_us;
	int64_t tls_us;
	int64_t first_byte_us;
	int64_t cert_expiry;  /* unix seconds of the peer certificate's
	                       * notAfter (a date, not a time span); 0 none */
	const struct wp_measurement *measurements; /* n_measurements; borrowed */
	size_t n_measurements;
};

#define WP_RESULT_INIT                                                       \
	{ sizeof(struct wp_result), WP_REASON_OK, -1, -1, NULL,                \
	  -1, -1, -1, -1, 0, NULL, 0 }

/* ------------------------------------------------------------------------ */
/* Host services */

typedef void (*wp_watch_cb)(struct wp_watch *w, int fd, unsigned revents,
    void *arg);
typedef void (*wp_timer_cb)(struct wp_timer *t, void *arg);
/* 2.1: loop thread, exactly once per successful spawn(). */
typedef void (*wp_spawn_cb)(void *arg, const struct wp_spawn_result *r);
/* status 0 and a list valid only during the call, or a negative WP_E*
 * (WP_ENONAME, WP_EAGAIN, WP_EIO, WP_ENOTSUP, WP_ENOMEM, WP_ECANCELED;
 * res NULL).  `err` is a human message for failures, NULL on success. */
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

	/* Any thread.  Logs one line prefixed with the plugin's name; control
	 * characters are escaped by the host. */
	void (*log)(const struct wp_host *h, int level, const char *fmt, ...)
	    WP_PRINTF(3, 4);
	/* Any thread.  Monotonic clock. */
	int64_t (*now_us)(void);
	/* Any thread.  Wall clock, unix epoch. */
	int64_t (*wall_us)(void);
	/* Any thread.  Host allocator; alloc returns NULL on failure. */
	void *(*alloc)(size_t n);
	void (*free)(void *p);

	/*
	 * During configure() only.  Reports a problem as FILE:LINE: KEY:
	 * message at the line that set `key` (the key's first line for a
	 * repeated key), or at the section header when key is NULL or the
	 * section does not set it.  Never pass a secret's value in fmt.
	 */
	void (*config_error)(const struct wp_section *sec, const char *key,
	    const char *fmt, ...) WP_PRINTF(3, 4);

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
	/* A one-shot timer: timer_set(t, us) (re)arms it to fire after us
	 * (rounded up to the loop's millisecond), us < 0 disarms it;
	 * timer_free() disarms and frees (safe inside cb).  timer_set returns
	 * WP_OK or a negative WP_E*. */
	struct wp_timer *(*timer_new)(const struct wp_host *h, wp_timer_cb cb,
	    void *arg);
	int (*timer_set)(struct wp_timer *t, int64_t us);
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
	 * inside start() or cancel().  The host copies *res (detail and
	 * measurements included).  After this call the plugin must not touch
	 * req, its buffers or op again.
	 */
	void (*complete)(struct wp_op *op, const struct wp_result *res);
	/* 2.1.  Loop thread.  Run command S (copied: borrowed for the call);
	 * at most [agent] exec_max commands run at once, later ones wait in
	 * order (the wait counts against S->deadline_us).  cb(arg, result)
	 * is called exactly once on the loop thread, never from inside
	 * spawn().  Returns a handle, or NULL (S invalid: path not absolute,
	 * argv NULL or empty, input NULL with input_len > 0; cb is then
	 * never called).  The handle is valid until cb returns.  When the
	 * command exits, whatever it left running in its process group is
	 * killed before cb: a command leaves nothing behind.  Once the
	 * plugin's fini() has returned, its commands still running are
	 * killed and reaped without their cb: fini() frees what their args
	 * hold (the host calls fini() after every operation completed, but
	 * a command killed by cancel() may not have called back yet). */
	struct wp_proc *(*spawn)(const struct wp_host *h,
	    const struct wp_spawn *s, wp_spawn_cb cb, void *arg);
	/* 2.1.  Loop thread.  Kill P's process group now (SIGKILL); cb still
	 * comes, with status WP_ECANCELED.  Not after cb has returned. */
	void (*spawn_kill)(struct wp_proc *p);
};

/* ------------------------------------------------------------------------ */
/* The plugin descriptor, returned by watchpost_plugin(). */
struct wp_plugin {
	uint32_t magic;        /* WP_PLUGIN_MAGIC */
	uint16_t abi_major;    /* WP_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor;    /* WP_ABI_MINOR the plugin was built with */
	size_t size;           /* sizeof(struct wp_plugin) */
	const char *name;      /* type name, equal to the file's: "http", "webhook" */
	int kind;              /* enum wp_plugin_kind */
	const char *version;   /* the plugin's own version string */
	const char *description; /* one line */

	/* The key table: n_keys entries of key_size bytes each. */
	const struct wp_key *keys;
	size_t n_keys;
	size_t key_size;
	/* Bytes of the configuration struct the keys' offsets point into;
	 * the host allocates it zeroed, fills it and hands it to configure(). */
	size_t conf_size;

	/* main; once, at start-up, before privileges are dropped.  Set up
	 * global state (curl_global_init belongs here) and keep `host` for
	 * later calls.  *state is passed back below.  May be NULL.  Returns
	 * WP_OK or WP_E*; on error the plugin is not used. */
	int (*init)(const struct wp_host *host, void **state);
	/* main; once, after every instance was released.  May be NULL. */
	void (*fini)(void *state);

	/* main or loop.  `conf` is the struct the host filled from the
	 * section's keys (conf_size bytes; see Ownership).  Judge what the key
	 * types cannot (a key that depends on another, a pattern), report every
	 * problem with host->config_error() and return WP_EINVAL; then *inst is
	 * ignored.  Otherwise build an instance in *inst and return WP_OK.
	 * It runs whenever the section's own keys parse, even when the file
	 * has other problems (another section, a common key), so that one
	 * report lists every problem; that instance is released unused.  A
	 * section whose keys do not parse is not configured. */
	int (*configure)(void *state, const struct wp_section *sec,
	    const void *conf, void **inst);
	/* main or loop.  Free an instance; no operation of it is in flight. */
	void (*release)(void *state, void *inst);

	/* loop.  Asynchronous form (see the file comment).  *opstate is passed
	 * to cancel().  NULL if the plugin only has the blocking form. */
	int (*start)(void *inst, const struct wp_request *req, void **opstate);
	void (*cancel)(void *inst, void *opstate);

	/* worker.  Blocking form.  NULL if the plugin only has start(). */
	int (*check)(void *inst, const struct wp_request *req,
	    struct wp_result *res);
	/* 2.1 (the host treats a shorter descriptor's tail as zero). */
	unsigned flags;        /* WP_PLUGIN_F_* */
	/* Check plugins that receive events (push): main or loop.  The key
	 * that routes /push/KEY to instance INST, or NULL for none; it lives
	 * as long as the instance.  The host compares keys in constant time
	 * and refuses two instances with one key. */
	const char *(*route_key)(void *inst);
	/* Loop.  Event EV for INST.  Fill *res (detail and measurements in
	 * req's buffers, as for check()) and return WP_OK: the host records
	 * *res as a finished check of the monitor, through the same path as
	 * a scheduled one.  WP_EINVAL: a malformed request, nothing recorded
	 * (the host answers 400 with res->detail).  req->op is NULL.
	 * Such a plugin's start() may return WP_EAGAIN: nothing to judge
	 * yet (push before its first heartbeat is due); the host records
	 * nothing for that slot and tries again at the next. */
	int (*inbound)(void *inst, const struct wp_inbound *ev,
	    const struct wp_request *req, struct wp_result *res);
};

#define WP_PLUGIN_F_GROUPS 1u /* alert plugin: renders req->alerts */

#define WP_PLUGIN_SYMBOL "watchpost_plugin"

/*
 * WP_CHECK_PLUGIN(name, fields...) and WP_ALERT_PLUGIN(name, fields...)
 * define the descriptor of the check type or alert type `name` (a C
 * identifier, equal to the file name: name.so, alert-name.so) and export
 * watchpost_plugin() returning it, plus the name_LTX_ / alert_name_LTX_
 * alias libltdl uses to preload a plugin into a test binary.  The fields
 * are designated initialisers of struct wp_plugin:
 *
 *   WP_CHECK_PLUGIN(tcp,
 *       .version = "1.0", .description = "TCP connect check",
 *       WP_KEYS(tcp_keys, struct tcp_conf),
 *       .configure = tcp_configure, .release = tcp_release,
 *       .start = tcp_start, .cancel = tcp_cancel)
 */
#define WP_KEYS(table, conf)                                                  \
	.keys = (table), .n_keys = sizeof(table) / sizeof((table)[0]),         \
	.key_size = sizeof((table)[0]), .conf_size = sizeof(conf)

#define WP_PLUGIN__DESC(pname, pkind, ...)                                    \
	static const struct wp_plugin wp_plugin__desc = {                     \
		.magic = WP_PLUGIN_MAGIC, .abi_major = WP_ABI_MAJOR,           \
		.abi_minor = WP_ABI_MINOR, .size = sizeof(struct wp_plugin),   \
		.name = #pname, .kind = (pkind), __VA_ARGS__ };                \
	WP_EXPORT const struct wp_plugin *watchpost_plugin(void);             \
	const struct wp_plugin *watchpost_plugin(void)                         \
	{ return &wp_plugin__desc; }

#define WP_CHECK_PLUGIN(pname, ...)                                           \
	WP_PLUGIN__DESC(pname, WP_PLUGIN_CHECK, __VA_ARGS__)                   \
	WP_EXPORT const struct wp_plugin *pname##_LTX_watchpost_plugin(void);  \
	const struct wp_plugin *pname##_LTX_watchpost_plugin(void)             \
	{ return &wp_plugin__desc; }

#define WP_ALERT_PLUGIN(pname, ...)                                           \
	WP_PLUGIN__DESC(pname, WP_PLUGIN_ALERT, __VA_ARGS__)                   \
	WP_EXPORT const struct wp_plugin *alert_##pname##_LTX_watchpost_plugin( \
	    void);                                                              \
	const struct wp_plugin *alert_##pname##_LTX_watchpost_plugin(void)     \
	{ return &wp_plugin__desc; }

#ifdef __cplusplus
}
#endif

#endif /* WATCHPOST_PLUGIN_H */
