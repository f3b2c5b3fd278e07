/*
 * cfg -- validate a configuration file read by cfg-read.c.
 *
 * Every key, the host's own and the plugins', is parsed by keys_fill() from
 * a key table: the [agent] table, the common monitor and alert tables here,
 * and each plugin's table.  A section's lines are split between the common
 * table and the plugin's; the plugin's go to keys_fill() with the plugin's
 * table.  Validation runs once the whole file is known (alert references
 * may point forward, and [agent] plugin_dir, which may come last, decides
 * where plugins are looked up).  Problems are collected in one diagnostics
 * sink and handed to the caller's sorted by line.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg-read.h"
#include "cfg.h"
#include "cron.h"
#include "log.h"
#include "policy.h"
#include "util.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/watchpost"
#endif

#define FILE_SUFFIX "_file"
#define MS 1000LL              /* microseconds in a millisecond */
/* The longest interval, and the longest timeout and retry_interval: past
 * them a value is a typo.  (Whatever the timeout, a shutdown waits no
 * longer than main.c's drain limit.) */
#define INTERVAL_MAX_US (7LL * 86400000 * MS)
#define TIMEOUT_MAX_US (3600000LL * MS)

static const char *const kind_names[] = { "agent", "monitor", "alert",
	"status", "maintenance", "cluster" };

/* ------------------------------------------------------------------------ */
/* The host's key tables */

struct agent_conf {
	const char *database, *plugin_dir, *listen, *user, *api_token_file;
	const char *pidfile;
	int64_t retention_days;
	const char *name;
	int log_level, log;
	const char *include;
	int64_t exec_max;
	int64_t rollup_retention_days;
};

/* Most verbose first, as -h lists them: WP_LOG_DEBUG - index is the level. */
static const char *const log_levels[] = { "debug", "info", "warn", "error",
	NULL };
static const char *const log_targets[] = { "stderr", "syslog", NULL };

static const struct wp_key agent_keys[] = {
	{ WP_KEY(WP_KT_PATH, "database", struct agent_conf, database),
	  .def = "watchpost.db",
	  .help = "the SQLite database of results and state" },
	{ WP_KEY(WP_KT_PATH, "plugin_dir", struct agent_conf, plugin_dir),
	  .def = PKGLIBDIR,
	  .help = "the folder of the check and alert plugins (-P overrides)" },
	{ WP_KEY(WP_KT_STRING, "listen", struct agent_conf, listen),
	  .def = "127.0.0.1:9405",
	  .help = "HOST:PORT or [IPV6]:PORT of the HTTP API, or off" },
	{ WP_KEY(WP_KT_INT, "retention_days", struct agent_conf,
	  retention_days), .def = "30", .min = 0, .max = 36500,
	  .help = "days of results to keep; 0 keeps them forever" },
	{ WP_KEY(WP_KT_INT, "rollup_retention_days", struct agent_conf,
	  rollup_retention_days), .def = "400", .min = 0, .max = 36500,
	  .help = "days of hourly and daily roll-ups and incidents to keep; "
	  "0 keeps them forever" },
	{ WP_KEY(WP_KT_ENUM, "log_level", struct agent_conf, log_level),
	  .def = "info", .values = log_levels,
	  .help = "the least severe level logged" },
	{ WP_KEY(WP_KT_ENUM, "log", struct agent_conf, log),
	  .values = log_targets,
	  .help = "where the log goes (default: stderr, syslog with -d)" },
	{ WP_KEY(WP_KT_STRING, "user", struct agent_conf, user),
	  .help = "the user to run as after start-up (started as root)" },
	{ WP_KEY(WP_KT_PATH, "api_token_file", struct agent_conf,
	  api_token_file),
	  .help = "a file holding the bearer token the API requires" },
	{ WP_KEY(WP_KT_PATH, "pidfile", struct agent_conf, pidfile),
	  .help = "the PID file written with -d" },
	{ WP_KEY(WP_KT_PATH, "include", struct agent_conf, include),
	  .help = "a folder whose *.ini files are read after this one, in "
	  "name order (the admin API writes its monitors there)" },
	{ WP_KEY(WP_KT_INT, "exec_max", struct agent_conf, exec_max),
	  .def = "16", .min = 1, .max = 4096,
	  .help = "commands (exec checks and alerts) run at once; "
	  "more wait their turn" },
	{ WP_KEY(WP_KT_STRING, "name", struct agent_conf, name),
	  .help = "the agent's name in alerts (default: the host name)" },
};

struct common_conf {
	const char *type;
	int64_t interval_us, timeout_us, retry_interval_us, retries;
	int enabled;
	const char *alerts;
	/* policy.h */
	int64_t down_after, up_after, latency_warn_us, cert_warn_us;
	int64_t renotify_us;
	struct wp_list alert_on, escalate;
	const char *group;
	struct wp_list depends_on;
	int64_t group_window_us;
	/* cluster.h */
	struct wp_list locations;
	int64_t confirm;
};

static const struct wp_key monitor_keys[] = {
	{ WP_KEY(WP_KT_STRING, "type", struct common_conf, type),
	  .flags = WP_KEY_REQUIRED, .help = "the check type: a plugin TYPE.so" },
	{ WP_KEY(WP_KT_DURATION, "interval", struct common_conf, interval_us),
	  .def = "60s", .min = 100 * MS, .max = INTERVAL_MAX_US,
	  .help = "time between checks" },
	{ WP_KEY(WP_KT_DURATION, "timeout", struct common_conf, timeout_us),
	  .def = "10s", .min = 1 * MS, .max = TIMEOUT_MAX_US,
	  .help = "deadline of one attempt" },
	{ WP_KEY(WP_KT_INT, "retries", struct common_conf, retries),
	  .def = "2", .min = 0, .max = 100,
	  .help = "attempts after a failed one before the check fails" },
	{ WP_KEY(WP_KT_DURATION, "retry_interval", struct common_conf,
	  retry_interval_us), .def = "1s", .min = 0, .max = TIMEOUT_MAX_US,
	  .help = "time between attempts" },
	{ WP_KEY(WP_KT_BOOL, "enabled", struct common_conf, enabled),
	  .def = "true", .help = "false keeps the monitor but stops checking" },
	{ WP_KEY(WP_KT_STRING, "alerts", struct common_conf, alerts),
	  .help = "alert sections to notify, comma-separated, or none "
	  "(default: all)" },
	{ WP_KEY(WP_KT_INT, "down_after", struct common_conf, down_after),
	  .def = "1", .min = 1, .max = 1000,
	  .help = "failed checks in a row (each after its retries) before "
	  "the monitor is down" },
	{ WP_KEY(WP_KT_INT, "up_after", struct common_conf, up_after),
	  .def = "1", .min = 1, .max = 1000,
	  .help = "good checks in a row before a down monitor is up again" },
	{ WP_KEY(WP_KT_DURATION, "latency_warn", struct common_conf,
	  latency_warn_us), .min = 1 * MS, .max = TIMEOUT_MAX_US,
	  .help = "a check slower than this is degraded, reason slow "
	  "(default: off)" },
	{ WP_KEY(WP_KT_DURATION, "cert_warn", struct common_conf,
	  cert_warn_us), .min = 1000 * MS, .max = 3650LL * 86400000 * MS,
	  .help = "a certificate expiring within this is degraded, reason "
	  "cert_expiry; types that report one: http, tls (default: off)" },
	{ WP_KEY(WP_KT_LIST, "alert_on", struct common_conf, alert_on),
	  .def = "down,up",
	  .help = "which changes alert: any of down, up, degraded" },
	{ WP_KEY(WP_KT_DURATION, "renotify", struct common_conf,
	  renotify_us), .min = 1000 * MS, .max = INTERVAL_MAX_US,
	  .help = "while down, send the DOWN alert again this often "
	  "(default: off)" },
	{ WP_KEY(WP_KT_STRING, "escalate", struct common_conf, escalate),
	  .flags = WP_KEY_MULTI,
	  .help = "DURATION ALERT[,ALERT...]: still down after DURATION, "
	  "also notify those sections (repeatable)" },
	{ WP_KEY(WP_KT_STRING, "group", struct common_conf, group),
	  .help = "the group the status page shows the monitor in" },
	{ WP_KEY(WP_KT_STRING, "depends_on", struct common_conf, depends_on),
	  .flags = WP_KEY_MULTI,
	  .help = "a monitor this one depends on (repeatable): while it is "
	  "down, this one's alerts are held" },
	{ WP_KEY(WP_KT_LIST, "locations", struct common_conf, locations),
	  .help = "cluster mode: the locations that check it, comma-separated "
	  "(default: any one agent)" },
	{ WP_KEY(WP_KT_INT, "confirm", struct common_conf, confirm),
	  .min = 1, .max = 64,
	  .help = "cluster mode: locations that must see it down before it "
	  "is down (default: a majority of locations)" },
};

static const struct wp_key alert_keys[] = {
	{ WP_KEY(WP_KT_STRING, "type", struct common_conf, type),
	  .flags = WP_KEY_REQUIRED,
	  .help = "the alert type: a plugin alert-TYPE.so" },
	{ WP_KEY(WP_KT_DURATION, "timeout", struct common_conf, timeout_us),
	  .def = "10s", .min = 1 * MS, .max = TIMEOUT_MAX_US,
	  .help = "deadline of one delivery attempt" },
	{ WP_KEY(WP_KT_DURATION, "group_window", struct common_conf,
	  group_window_us), .def = "0", .min = 0, .max = TIMEOUT_MAX_US,
	  .help = "transitions within this time go out as one delivery "
	  "(types that group; 0: off)" },
};

struct status_conf {
	const char *title, *footer;
	struct wp_list monitors;
	int public;
};

static const struct wp_key status_keys[] = {
	{ WP_KEY(WP_KT_STRING, "title", struct status_conf, title),
	  .def = "Status", .help = "the status page's title" },
	{ WP_KEY(WP_KT_LIST, "monitors", struct status_conf, monitors),
	  .help = "names or fnmatch patterns of the monitors the page and "
	  "badges show (default: all)" },
	{ WP_KEY(WP_KT_BOOL, "public", struct status_conf, public),
	  .def = "false", .help = "true: the page and badges need no API "
	  "token" },
	{ WP_KEY(WP_KT_STRING, "footer", struct status_conf, footer),
	  .help = "a line of text at the foot of the page" },
};

/* [maintenance:NAME] (hold.h). */
struct maint_conf {
	struct wp_list monitors;
	const char *schedule, *start, *end, *timezone;
	int64_t duration_us;
};

#define WINDOW_MAX_US (31LL * 86400000 * MS)

static const struct wp_key maintenance_keys[] = {
	{ WP_KEY(WP_KT_LIST, "monitors", struct maint_conf, monitors),
	  .flags = WP_KEY_REQUIRED,
	  .help = "the monitors it covers: names or glob patterns, "
	  "comma-separated, or *" },
	{ WP_KEY(WP_KT_STRING, "schedule", struct maint_conf, schedule),
	  .help = "when the window opens: a 5-field cron schedule in "
	  "timezone (with duration)" },
	{ WP_KEY(WP_KT_DURATION, "duration", struct maint_conf, duration_us),
	  .min = 1000 * MS, .max = WINDOW_MAX_US,
	  .help = "how long each scheduled window lasts" },
	{ WP_KEY(WP_KT_STRING, "start", struct maint_conf, start),
	  .help = "a one-off window's start, ISO 8601 (with end)" },
	{ WP_KEY(WP_KT_STRING, "end", struct maint_conf, end),
	  .help = "a one-off window's end, ISO 8601" },
	{ WP_KEY(WP_KT_STRING, "timezone", struct maint_conf, timezone),
	  .help = "IANA time zone of schedule, and of start and end without "
	  "an offset (default: the agent's)" },
};

/* [cluster] (cluster.h). */
#define CLUSTER_NAME_RULE "must be 1-128 characters of letters, digits, " \
	"'.', '_' or '-'"

struct cluster_kconf {
	struct wp_list etcd;
	const char *name, *location, *cluster;
	int64_t lease_ttl_us, join_grace_us, watch_progress_us;
	int on_engine_loss;
	const char *user, *password, *ca_file, *client_cert, *client_key;
};

static const char *const engine_loss_values[] = { "observe", "strict",
	NULL };

static const struct wp_key cluster_keys[] = {
	{ WP_KEY(WP_KT_LIST, "etcd", struct cluster_kconf, etcd),
	  .flags = WP_KEY_REQUIRED,
	  .help = "the etcd members' client URLs (http:// or https://), "
	  "comma-separated" },
	{ WP_KEY(WP_KT_STRING, "name", struct cluster_kconf, name),
	  .help = "this agent's name, unique in the cluster (default: the "
	  "host name)" },
	{ WP_KEY(WP_KT_STRING, "location", struct cluster_kconf, location),
	  .def = "default", .help = "this agent's vantage point" },
	{ WP_KEY(WP_KT_STRING, "cluster", struct cluster_kconf, cluster),
	  .def = "watchpost", .help = "the key prefix in etcd (one cluster "
	  "of agents per prefix)" },
	{ WP_KEY(WP_KT_DURATION, "lease_ttl", struct cluster_kconf,
	  lease_ttl_us), .def = "6s", .min = 2000 * MS, .max = 600000 * MS,
	  .help = "the membership lease, whole seconds; an agent is fenced "
	  "max(1s, lease_ttl/6) before it ends" },
	{ WP_KEY(WP_KT_DURATION, "join_grace", struct cluster_kconf,
	  join_grace_us), .min = 0, .max = 3600000 * MS,
	  .help = "a new member is given slots only after this (default: "
	  "twice lease_ttl)" },
	{ WP_KEY(WP_KT_DURATION, "watch_progress_interval",
	  struct cluster_kconf, watch_progress_us), .def = "10m",
	  .min = 1000 * MS, .max = 86400000 * MS,
	  .help = "etcd's --experimental-watch-progress-notify-interval; a "
	  "watch silent for twice this + 1s is reopened" },
	{ WP_KEY(WP_KT_ENUM, "on_engine_loss", struct cluster_kconf,
	  on_engine_loss), .def = "observe", .values = engine_loss_values,
	  .help = "etcd unreachable: observe keeps checking locally, strict "
	  "stops" },
	{ WP_KEY(WP_KT_STRING, "user", struct cluster_kconf, user),
	  .help = "etcd user (with password)" },
	{ WP_KEY(WP_KT_SECRET, "password", struct cluster_kconf, password),
	  .help = "etcd password (password_file: read from a file)" },
	{ WP_KEY(WP_KT_PATH, "ca_file", struct cluster_kconf, ca_file),
	  .help = "PEM CAs that verify etcd's certificate (default: the "
	  "system's)" },
	{ WP_KEY(WP_KT_PATH, "client_cert", struct cluster_kconf,
	  client_cert), .help = "PEM client certificate for etcd (with "
	  "client_key)" },
	{ WP_KEY(WP_KT_PATH, "client_key", struct cluster_kconf, client_key),
	  .help = "PEM key of client_cert" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct cfg_keys host_tables[] = {
	{ "agent", agent_keys, N(agent_keys) },
	{ "monitor", monitor_keys, N(monitor_keys) },
	{ "alert", alert_keys, N(alert_keys) },
	{ "status", status_keys, N(status_keys) },
	{ "maintenance", maintenance_keys, N(maintenance_keys) },
	{ "cluster", cluster_keys, N(cluster_keys) },
};

const struct cfg_keys *
cfg_host_keys(size_t *n)
{
	*n = N(host_tables);
	return host_tables;
}

/* ------------------------------------------------------------------------ */
/* Validation state */

struct loader {
	struct cfg_raw raw;
	struct wp_diag d;       /* every problem, sorted at the end */
	cfg_lookup_fn lookup;
	void *lookup_arg;
	const char *dir;        /* the configuration's folder */
	/* names_of() the common tables, made once per load rather than
	 * once per section (owned; [0] monitors', [1] alerts'). */
	const struct wp_key *names_for[2];
	const char **names[2];
	const struct config *prev; /* config_load_prev()'s (NULL: none) */
};

static void report(struct loader *ld, int line, const char *fmt, ...)
    WP_PRINTF(3, 4);
static void parse_locations(struct loader *ld, const struct cfg_kv *kv,
    size_t n, const struct common_conf *cc, struct cfg_monitor *m);
static void warn_at(struct loader *ld, int line, const char *fmt, ...)
    WP_PRINTF(3, 4);

static void
report(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_verror(&ld->d, line, fmt, ap);
	va_end(ap);
}

static void
warn_at(struct loader *ld, int line, const char *fmt, ...)
{
	char *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) {
		fputs("watchpost: out of memory\n", stderr);
		abort();
	}
	va_end(ap);
	diag_warning(&ld->d, line, "%s", msg);
	free(msg);
}

static char *
current_dir(void)
{
	char *cwd = getcwd(NULL, 0);

	/* Without a current directory "/" is the only absolute answer. */
	return cwd != NULL ? cwd : xstrdup("/");
}

/* The absolute folder of `file` (which has been opened). */
static char *
file_dir(const char *file)
{
	char *d = xstrdup(file), *slash, *real, *cwd, *abs;

	slash = strrchr(d, '/');
	if (slash == NULL) {
		free(d);
		d = xstrdup(".");
	} else if (slash == d)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((real = realpath(d, NULL)) != NULL) {
		free(d);
		return real;
	}
	if (d[0] == '/')
		return d;
	cwd = current_dir();
	abs = keys_resolve_path(cwd, d);
	free(cwd);
	free(d);
	return abs;
}

static int
in_table(const struct wp_key *keys, size_t n, const char *name)
{
	return keys_find(keys, n, sizeof(keys[0]), name) != NULL;
}

/*
 * keys_fill_in() that still gives a conf when lines have problems: every
 * problem goes to the loader, then the lines with a problem are dropped
 * from KV (*n_kv shrinks) and the rest filled again, so the good values
 * and the defaults are there.  Returns that conf (keys_free() it), NULL
 * only when even the remaining lines do not fill (a missing required key);
 * *clean says whether the first fill had no problem.
 */
static void *
fill_lenient(struct loader *ld, const struct keys_ctx *ctx,
    const struct wp_key *keys, size_t n_keys, size_t key_size,
    size_t conf_size, struct cfg_kv *kv, size_t *n_kv, int *clean)
{
	struct wp_diag d1, d2;
	size_t i, n = 0;
	void *conf;

	diag_init(&d1, ld->d.file);
	d1.rank = ld->d.rank;
	conf = keys_fill_in(ctx, keys, n_keys, key_size, conf_size, NULL,
	    ld->dir, kv, *n_kv, &d1);
	*clean = conf != NULL;
	if (conf == NULL) {
		for (i = 0; i < *n_kv; i++)
			if (!diag_has_line(&d1, kv[i].line))
				kv[n++] = kv[i];
		*n_kv = n;
		diag_init(&d2, ld->d.file);
		d2.rank = ld->d.rank;
		conf = keys_fill_in(ctx, keys, n_keys, key_size, conf_size,
		    NULL, ld->dir, kv, n, &d2);
		diag_free(&d2);
	}
	diag_move(&ld->d, &d1);
	return conf;
}

/* "HOST:PORT" or "[V6]:PORT" with a port from 0 to 65535. */
static int
check_listen(struct loader *ld, int line, const char *v)
{
	const char *port, *close;
	long long p;
	size_t i;

	if (v[0] == '[') {
		close = strchr(v, ']');
		if (close == NULL || close == v + 1 || close[1] != ':')
			goto bad;
		port = close + 2;
	} else {
		port = strrchr(v, ':');
		if (port == NULL || port == v ||
		    memchr(v, ':', (size_t)(port - v)) != NULL)
			goto bad;
		port++;
	}
	for (i = 0; v[i] != '\0'; i++)
		if (isspace((unsigned char)v[i]))
			goto bad;
	if (parse_int(port, 0, 65535, &p) != 0) {
		report(ld, line, "listen: port \"%s\" is not a number "
		    "from 0 to 65535", QSTR(port));
		return WP_EINVAL;
	}
	return 0;
bad:
	report(ld, line, "listen: \"%s\" is not HOST:PORT, [IPV6]:PORT "
	    "or off", QSTR(v));
	return WP_EINVAL;
}

static void
check_agent(struct loader *ld, struct cfg_agent *ag)
{
	static const struct keys_ctx ctx = { NULL, " in [agent]", 0, NULL };
	const struct cfg_raw_section *rs = cfg_raw_find(&ld->raw, CFG_AGENT,
	    NULL);
	struct cfg_kv *kv = NULL;
	struct agent_conf *c;
	size_t n = 0;
	int clean, line;

	if (rs != NULL) {
		ag->line = rs->line;
		n = rs->n_kv;
		kv = xmalloc((n + 1) * sizeof(*kv));
		if (n > 0) /* an empty [agent] has no kv array */
			memcpy(kv, rs->kv, n * sizeof(*kv));
	}
	c = fill_lenient(ld, &ctx, agent_keys, N(agent_keys),
	    sizeof(agent_keys[0]), sizeof(*c), kv, &n, &clean);
	ag->database = xstrdup(c->database);
	ag->plugin_dir = xstrdup(c->plugin_dir);
	ag->retention_days = (int)c->retention_days;
	ag->rollup_retention_days = (int)c->rollup_retention_days;
	ag->log_level = WP_LOG_DEBUG - c->log_level;
	ag->log_syslog = keys_line(kv, n, "log") != 0 ? c->log : -1;
	ag->api_token_file = c->api_token_file != NULL ?
	    xstrdup(c->api_token_file) : NULL;
	ag->pidfile = c->pidfile != NULL ? xstrdup(c->pidfile) : NULL;
	ag->include = c->include != NULL ? xstrdup(c->include) : NULL;
	ag->include_line = keys_line(kv, n, "include");
	ag->exec_max = (int)c->exec_max;
	if (c->name != NULL && c->name[0] == '\0')
		report(ld, keys_line(kv, n, "name"), "name: no value");
	else if (c->name != NULL)
		ag->name = xstrdup(c->name);
	/* Text the types allow empty, but these do not. */
	if (c->user != NULL && c->user[0] == '\0')
		report(ld, keys_line(kv, n, "user"), "user: no value");
	else if (c->user != NULL)
		ag->user = xstrdup(c->user);
	line = keys_line(kv, n, "listen");
	if (c->listen[0] == '\0')
		report(ld, line, "listen: no value");
	else if (strcmp(c->listen, "off") != 0 &&
	    check_listen(ld, line, c->listen) == 0)
		ag->listen = xstrdup(c->listen);
	keys_free(c);
	free(kv);
}

static int
alert_exists(const struct loader *ld, const char *name)
{
	return cfg_raw_find(&ld->raw, CFG_ALERT, name) != NULL;
}

/* The "alerts" key: "none", or a comma-separated list of alert names. */
static void
parse_alerts(struct loader *ld, int line, const char *value,
    struct cfg_monitor *m)
{
	char *copy, *item, *next;
	size_t i;

	m->all_alerts = 0;
	if (strcmp(value, "none") == 0)
		return;
	copy = xstrdup(value);
	for (item = copy; item != NULL; item = next) {
		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		item = cfg_trim(item);
		if (*item == '\0') {
			report(ld, line, "alerts: empty name in \"%s\"",
			    QSTR(value));
			continue;
		}
		if (strcmp(item, "none") == 0) {
			report(ld, line, "alerts: \"none\" cannot be "
			    "combined with alert names");
			continue;
		}
		for (i = 0; i < m->n_alerts; i++)
			if (strcmp(m->alerts[i], item) == 0)
				break;
		if (i < m->n_alerts) {
			report(ld, line, "alerts: \"%s\" is listed twice",
			    QSTR(item));
			continue;
		}
		if (!alert_exists(ld, item)) {
			report(ld, line, "alerts: unknown alert \"%s\" "
			    "(there is no [alert:%s] section)", QSTR(item),
			    QSTR(item));
			continue;
		}
		m->alerts = xrealloc(m->alerts,
		    (m->n_alerts + 1) * sizeof(*m->alerts));
		m->alerts[m->n_alerts++] = xstrdup(item);
	}
	free(copy);
}

/* Each depends_on line of KV: an existing monitor, not M itself, not
 * twice.  Cycles are found once every monitor is read (check_cycles). */
static void
parse_depends(struct loader *ld, const struct cfg_kv *kv, size_t n_kv,
    struct cfg_monitor *m)
{
	char *name;
	size_t i, j;

	for (i = 0; i < n_kv; i++) {
		if (strcmp(kv[i].key, "depends_on") != 0)
			continue;
		name = cfg_trim(xstrdup(kv[i].value));
		if (*name == '\0')
			report(ld, kv[i].line, "depends_on: no value");
		else if (strcmp(name, m->s.name) == 0)
			report(ld, kv[i].line, "depends_on: a monitor cannot "
			    "depend on itself");
		else if (cfg_raw_find(&ld->raw, CFG_MONITOR, name) == NULL)
			report(ld, kv[i].line, "depends_on: unknown monitor "
			    "\"%s\" (there is no [monitor:%s] section)",
			    QSTR(name), QSTR(name));
		else {
			for (j = 0; j < m->n_depends_on; j++)
				if (strcmp(m->depends_on[j], name) == 0)
					break;
			if (j < m->n_depends_on)
				report(ld, kv[i].line, "depends_on: \"%s\" is "
				    "listed twice", QSTR(name));
			else {
				m->depends_on = xrealloc(m->depends_on,
				    (m->n_depends_on + 1) * sizeof(char *));
				m->depends_on[m->n_depends_on++] =
				    xstrdup(name);
				free(name);
				continue;
			}
		}
		free(name);
	}
}

/* The line of the first of NAMES (NULL ends) that KV sets, else LINE. */
static int
first_line(const struct cfg_kv *kv, size_t n_kv, int line,
    const char *const *names)
{
	int l;

	for (; *names != NULL; names++)
		if ((l = keys_line(kv, n_kv, *names)) != 0)
			return l;
	return line;
}

/*
 * Warn when a failing check cannot finish within its interval: the
 * schedule then skips slots (a check is never doubled), so the monitor is
 * checked less often than the file says.  Worst case: every attempt times
 * out, and the retries wait retry_interval between them.
 */
static void
check_fit(struct loader *ld, const struct cfg_raw_section *rs,
    const struct cfg_kv *kv, size_t n_kv, const struct cfg_monitor *m)
{
	static const char *const t_keys[] = { "timeout", "interval", NULL };
	static const char *const r_keys[] = { "retries", "retry_interval",
	    "timeout", "interval", NULL };
	char iv[32], to[32], worst[32];
	int64_t w;

	/* Formatted only for a warning (printf per monitor, issue 17). */
	w = m->timeout_ms * (1 + m->retries) +
	    m->retry_interval_ms * m->retries;
	if (m->timeout_ms <= m->interval_ms && w <= m->interval_ms)
		return;
	format_duration(m->interval_ms, iv, sizeof(iv));
	format_duration(m->timeout_ms, to, sizeof(to));
	if (m->timeout_ms > m->interval_ms) {
		warn_at(ld, first_line(kv, n_kv, rs->line, t_keys), "timeout "
		    "%s is longer than interval %s: a check that times out "
		    "runs into its next slot, which is skipped", to, iv);
		return;
	}
	if (w > m->interval_ms) {
		format_duration(w, worst, sizeof(worst));
		warn_at(ld, first_line(kv, n_kv, rs->line, r_keys), "a failing "
		    "check takes up to %s (timeout %s x (1 + retries %d) + "
		    "retry_interval x retries), longer than interval %s: the "
		    "slots it runs into are skipped", worst, to, m->retries,
		    iv);
	}
}

/* The plugin's text key KEY_file names, or NULL. */
static const struct wp_key *
file_key(const struct wp_plugin *p, const char *key)
{
	const struct wp_key *k;
	char base[128];
	size_t kl = strlen(key), sl = sizeof(FILE_SUFFIX) - 1;

	if (kl <= sl || kl - sl >= sizeof(base) ||
	    strcmp(key + kl - sl, FILE_SUFFIX) != 0)
		return NULL;
	memcpy(base, key, kl - sl);
	base[kl - sl] = '\0';
	k = keys_find(p->keys, p->n_keys, p->key_size, base);
	if (k == NULL || k->type == WP_KT_INT || k->type == WP_KT_DURATION ||
	    k->type == WP_KT_BOOL || k->type == WP_KT_ENUM ||
	    k->type == WP_KT_LIST)
		return NULL;
	return k;
}

uint64_t
cfg_def_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* H on from "KEY=VALUE\n". */
static uint64_t
def_line(uint64_t h, const char *key, const char *value)
{
	h = cfg_def_hash(h, key, strlen(key));
	h = cfg_def_hash(h, "=", 1);
	h = cfg_def_hash(h, value, strlen(value));
	return cfg_def_hash(h, "\n", 1);
}

/*
 * The definition's hash: every key and value in file order, as written,
 * except that a KEY_file line of the plugin's counts the file's contents,
 * so a changed secret file counts as a change on reload.  (A file that
 * cannot be read is reported by keys_fill(); here it counts its path.)
 */
static uint64_t
definition(struct loader *ld, const struct cfg_raw_section *rs,
    const struct wp_plugin *p)
{
	const struct wp_key *k;
	char *path, *value, why[PATH_MAX + 128];
	uint64_t h = CFG_DEF_HASH_INIT;
	size_t i;

	for (i = 0; i < rs->n_kv; i++) {
		k = p != NULL ? file_key(p, rs->kv[i].key) : NULL;
		if (k == NULL) {
			h = def_line(h, rs->kv[i].key, rs->kv[i].value);
			continue;
		}
		path = keys_resolve_path(ld->dir, rs->kv[i].value);
		if (cfg_read_secret(path, &value, why, sizeof(why)) == 0) {
			h = def_line(h, k->name, value);
			explicit_bzero(value, strlen(value));
			free(value);
		} else
			h = def_line(h, rs->kv[i].key, rs->kv[i].value);
		free(path);
	}
	return h;
}

/* Names of a table, NULL-terminated (free() the array). */
static const char **
names_of(const struct wp_key *keys, size_t n)
{
	const char **v = xcalloc(n + 1, sizeof(*v));
	size_t i;

	for (i = 0; i < n; i++)
		v[i] = keys[i].name;
	return v;
}

/* names_of(KEYS), kept by LD for the rest of the load. */
static const char *const *
common_names(struct loader *ld, const struct wp_key *keys, size_t n)
{
	size_t i;

	for (i = 0; i < 2; i++)
		if (ld->names_for[i] == keys)
			return ld->names[i];
	i = ld->names_for[0] == NULL ? 0 : 1;
	free(ld->names[i]);
	ld->names_for[i] = keys;
	ld->names[i] = names_of(keys, n);
	return ld->names[i];
}

/* The strings PARTS (NULL ends) joined, in BUF (LEN bytes) or, when
 * longer, in a malloc'd *HEAP (NULL otherwise: free() it either way);
 * returns the text. */
static const char *
join(char *buf, size_t len, char **heap, const char *const *parts)
{
	size_t i, n = 0, l;
	char *p = buf;

	*heap = NULL;
	for (i = 0; parts[i] != NULL; i++)
		n += strlen(parts[i]);
	if (n + 1 > len)
		p = *heap = xmalloc(n + 1);
	for (i = 0, n = 0; parts[i] != NULL; i++, n += l) {
		l = strlen(parts[i]);
		memcpy(p + n, parts[i], l);
	}
	p[n] = '\0';
	return p;
}

/*
 * The parts every monitor and alert section has: the common keys (COMMON,
 * into *cc, which the caller keys_free()s), the type and its plugin, the
 * plugin's lines (checked against its table) and the definition.
 * s->configurable says whether the plugin may judge s->kv.
 */
static struct common_conf *
build_section(struct loader *ld, const struct cfg_raw_section *rs,
    const char *plugin_dir, const struct wp_key *common, size_t n_common,
    struct cfg_section *s, struct cfg_kv **ckv, size_t *n_ckv)
{
	/* A missing type is reported here, in its own words. */
	static const char *const type_only[] = { "type", NULL };
	const char *kind = kind_names[rs->kind];
	struct keys_ctx ctx = { NULL, NULL, rs->line, type_only };
	struct common_conf *cc;
	struct cfg_kv *pkv;
	const struct wp_plugin *p = NULL;
	char why[512], *t, secbuf[128], whatbuf[64], *sec_heap, *what_heap;
	size_t i, np = 0, len = 0, kl, vl;
	int clean, line, exact;
	void *conf;

	s->name = xstrdup(rs->name);
	s->line = rs->line;
	/* The section's keys and values in one block, which lines and kv
	 * (and *ckv, for the caller) point into: one allocation rather than
	 * four per line. */
	for (i = 0; i < rs->n_kv; i++)
		len += strlen(rs->kv[i].key) + strlen(rs->kv[i].value) + 2;
	s->text = t = xmalloc(len + 1);
	s->lines = xcalloc(rs->n_kv + 1, sizeof(*s->lines));
	for (i = 0; i < rs->n_kv; i++) {
		kl = strlen(rs->kv[i].key) + 1;
		vl = strlen(rs->kv[i].value) + 1;
		s->lines[i].key = memcpy(t, rs->kv[i].key, kl);
		s->lines[i].value = memcpy(t + kl, rs->kv[i].value, vl);
		s->lines[i].line = rs->kv[i].line;
		t += kl + vl;
	}
	s->n_lines = rs->n_kv;
	*ckv = xmalloc((rs->n_kv + 1) * sizeof(**ckv));
	pkv = xmalloc((rs->n_kv + 1) * sizeof(*pkv));
	*n_ckv = 0;
	for (i = 0; i < rs->n_kv; i++) {
		if (in_table(common, n_common, rs->kv[i].key))
			(*ckv)[(*n_ckv)++] = s->lines[i];
		else
			pkv[np++] = s->lines[i];
	}
	cc = fill_lenient(ld, &ctx, common, n_common, sizeof(common[0]),
	    sizeof(*cc), *ckv, n_ckv, &clean);

	line = keys_line(*ckv, *n_ckv, "type");
	for (i = 0, exact = 0; i < rs->n_kv && exact == 0; i++)
		if (strcmp(rs->kv[i].key, "type") == 0)
			exact = rs->kv[i].line;
	if (line == 0 && exact == 0 &&
	    (line = keys_line(rs->kv, rs->n_kv, "type")) != 0) {
		/* Only type_file: the type is never read from a file. */
		report(ld, line, "type_file: the type is written in the "
		    "section (type = NAME), not read from a file");
		line = 0;
	} else if (line == 0 && exact == 0)
		report(ld, rs->line, "[%s:%s] has no \"type\" key", kind,
		    rs->name);
	else if (line == 0)
		; /* a repeated type: reported by keys_fill() */
	else if (cc->type[0] == '\0')
		report(ld, line, "type: no value");
	else if (!cfg_valid_name(cc->type, "_-"))
		report(ld, line, "type: \"%s\" is not a plugin type name "
		    "(letters, digits, '_' and '-')", QSTR(cc->type));
	else if (ld->lookup != NULL) {
		why[0] = '\0';
		p = ld->lookup(ld->lookup_arg, plugin_dir,
		    rs->kind == CFG_MONITOR ? WP_PLUGIN_CHECK : WP_PLUGIN_ALERT,
		    cc->type, why, sizeof(why));
		if (p == NULL)
			report(ld, line, "unknown %s type \"%s\"%s%s",
			    rs->kind == CFG_MONITOR ? "check" : "alert",
			    QSTR(cc->type), why[0] != '\0' ? ": " : "", why);
	}
	if (line != 0) {
		s->type = xstrdup(cc->type);
		s->type_line = line;
	}
	s->plugin = p;
	s->def_hash = definition(ld, rs, p);

	/* Without a known plugin the keys cannot be judged: no cascade. */
	if (p != NULL) {
		/* Built without printf and kept on the stack: they are for
		 * messages, and were a tenth of a section's cost. */
		ctx.section = join(secbuf, sizeof(secbuf), &sec_heap,
		    (const char *const[]){ "[", kind, ":", rs->name, "]",
		    NULL });
		ctx.what = join(whatbuf, sizeof(whatbuf), &what_heap,
		    (const char *const[]){ " for type ", s->type, NULL });
		ctx.others = common_names(ld, common, n_common);
		conf = fill_lenient(ld, &ctx, p->keys, p->n_keys, p->key_size,
		    p->conf_size, pkv, &np, &clean);
		/* configure() is promised a filled conf: it gets the lines
		 * that fill, even when others in the file have problems. */
		s->configurable = conf != NULL;
		keys_free(conf);
		free(sec_heap);
		free(what_heap);
	}
	/* Only the lines that fill, in s->text like the rest. */
	s->kv = xrealloc(pkv, (np + 1) * sizeof(*s->kv));
	memset(&s->kv[np], 0, sizeof(*s->kv));
	s->n_kv = np;
	return cc;
}

/*
 * A text the status page shows as it is written (a group, a title):
 * not empty, at most 200 bytes, UTF-8 is fine, no control characters
 * (they have no place on a page).  0, or WP_EINVAL reported at LINE.
 */
static int
check_label(struct loader *ld, int line, const char *key, const char *v)
{
	const unsigned char *p;

	if (*v == '\0') {
		report(ld, line, "%s: no value", key);
		return WP_EINVAL;
	}
	if (strlen(v) > 200) {
		report(ld, line, "%s: longer than 200 bytes", key);
		return WP_EINVAL;
	}
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f) {
			report(ld, line, "%s: control characters are not "
			    "allowed", key);
			return WP_EINVAL;
		}
	return 0;
}

/* alert_on: any of down, up, degraded (POLICY_ON_*), each at most once. */
static void
parse_alert_on(struct loader *ld, int line, const struct wp_list *l,
    struct policy_conf *p)
{
	static const struct {
		const char *word;
		unsigned bit;
	} words[] = { { "down", POLICY_ON_DOWN }, { "up", POLICY_ON_UP },
	    { "degraded", POLICY_ON_DEGRADED } };
	size_t i, w;

	p->alert_on = 0;
	for (i = 0; i < l->n; i++) {
		for (w = 0; w < N(words) && strcmp(words[w].word, l->v[i]);
		    w++)
			;
		if (w == N(words))
			report(ld, line, "alert_on: \"%s\" is not one of down, "
			    "up, degraded", QSTR(l->v[i]));
		else if (p->alert_on & words[w].bit)
			report(ld, line, "alert_on: \"%s\" is listed twice",
			    words[w].word);
		else
			p->alert_on |= words[w].bit;
	}
	if (l->n == 0)
		report(ld, line, "alert_on: no value (any of down, up, "
		    "degraded)");
}

/* 1 if the monitor M notifies section NAME when it changes state. */
static int
notifies(const struct cfg_monitor *m, const char *name)
{
	size_t i;

	if (m->all_alerts)
		return 1;
	for (i = 0; i < m->n_alerts; i++)
		if (strcmp(m->alerts[i], name) == 0)
			return 1;
	return 0;
}

static int
esc_cmp(const void *a, const void *b)
{
	const struct policy_escalation *x = a, *y = b;

	return x->after_ms < y->after_ms ? -1 : x->after_ms > y->after_ms;
}

/*
 * One `escalate = DURATION ALERT[,ALERT...]` line at LINE into M's policy
 * (sorted later): a duration of 1 s to 7 days, then names of [alert:]
 * sections, each once.
 */
static void
parse_escalate(struct loader *ld, int line, const char *value,
    struct cfg_monitor *m)
{
	struct policy_conf *p = &m->policy;
	struct policy_escalation e = { 0 };
	char *copy = xstrdup(value), *names, *item, *next;
	size_t i;

	names = copy + strcspn(copy, " \t");
	if (*names != '\0')
		*names++ = '\0';
	names = cfg_trim(names);
	if (parse_duration(copy, &e.after_ms) != 0 || e.after_ms < 1000 ||
	    e.after_ms > INTERVAL_MAX_US / MS) {
		report(ld, line, "escalate: \"%s\" is not a duration from 1s "
		    "to 7d (escalate = DURATION ALERT[,ALERT...])",
		    QSTR(copy));
		goto done;
	}
	if (*names == '\0') {
		report(ld, line, "escalate: no alert section after the "
		    "duration (escalate = DURATION ALERT[,ALERT...])");
		goto done;
	}
	e.alerts = xcalloc(1, sizeof(char *));
	for (item = names; item != NULL; item = next) {
		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		item = cfg_trim(item);
		for (i = 0; i < e.n_alerts && strcmp(e.alerts[i], item); i++)
			;
		if (*item == '\0')
			report(ld, line, "escalate: empty alert name in \"%s\"",
			    QSTR(value));
		else if (i < e.n_alerts)
			report(ld, line, "escalate: \"%s\" is listed twice",
			    QSTR(item));
		else if (!alert_exists(ld, item))
			report(ld, line, "escalate: unknown alert \"%s\" "
			    "(there is no [alert:%s] section)", QSTR(item),
			    QSTR(item));
		else {
			if (notifies(m, item))
				warn_at(ld, line, "escalate: the monitor "
				    "already notifies \"%s\" when it goes "
				    "down (alerts%s); it gets the escalation "
				    "as well", QSTR(item), m->all_alerts ?
				    " is not set: every section" : "");
			e.alerts = xrealloc(e.alerts, (e.n_alerts + 2) *
			    sizeof(char *));
			e.alerts[e.n_alerts++] = xstrdup(item);
		}
	}
	p->esc = xrealloc(p->esc, (p->n_esc + 1) * sizeof(*p->esc));
	p->esc[p->n_esc++] = e;
done:
	free(copy);
}

/* The policy keys of CC (lines KV) into M->policy. */
static void
check_policy(struct loader *ld, const struct cfg_kv *kv, size_t n,
    const struct common_conf *cc, struct cfg_monitor *m)
{
	struct policy_conf *p = &m->policy;
	size_t i;

	p->down_after = (int)cc->down_after;
	p->up_after = (int)cc->up_after;
	p->latency_warn_us = cc->latency_warn_us;
	p->cert_warn_s = cc->cert_warn_us / (1000 * MS);
	p->renotify_ms = cc->renotify_us / MS;
	parse_alert_on(ld, keys_line(kv, n, "alert_on") ?
	    keys_line(kv, n, "alert_on") : m->s.line, &cc->alert_on, p);
	for (i = 0; i < n; i++)
		if (strcmp(kv[i].key, "escalate") == 0)
			parse_escalate(ld, kv[i].line, kv[i].value, m);
	if (p->n_esc > 1)
		qsort(p->esc, p->n_esc, sizeof(*p->esc), esc_cmp);
	if (p->renotify_ms > 0 && !(p->alert_on & POLICY_ON_DOWN))
		report(ld, keys_line(kv, n, "renotify"), "renotify repeats "
		    "the DOWN alert, but alert_on does not include down");
	else if (p->renotify_ms > 0 && !m->all_alerts && m->n_alerts == 0)
		warn_at(ld, keys_line(kv, n, "renotify"), "renotify: the "
		    "monitor notifies no alert section (alerts = none), so "
		    "there is nothing to repeat");
}

/* Does the line KEY read a file (KEY_file, the plugin's or not)? */
static int
reads_file(const char *key)
{
	size_t kl = strlen(key), sl = sizeof(FILE_SUFFIX) - 1;

	return kl > sl && strcmp(key + kl - sl, FILE_SUFFIX) == 0;
}

static void
check_monitor(struct loader *ld, const struct cfg_raw_section *rs,
    const char *plugin_dir, struct cfg_monitor *m)
{
	struct common_conf *cc;
	struct cfg_kv *kv;
	size_t n;
	int line;

	int reported = ld->d.errors + ld->d.warnings;
	size_t i;

	cc = build_section(ld, rs, plugin_dir, monitor_keys, N(monitor_keys),
	    &m->s, &kv, &n);
	m->interval_ms = cc->interval_us / MS;
	m->s.interval_ms = m->interval_ms;
	m->timeout_ms = cc->timeout_us / MS;
	m->retry_interval_ms = cc->retry_interval_us / MS;
	m->retries = (int)cc->retries;
	m->enabled = cc->enabled;
	m->all_alerts = 1;
	if (cc->alerts != NULL) {
		line = keys_line(kv, n, "alerts");
		if (cc->alerts[0] == '\0')
			report(ld, line, "alerts: no value (use \"none\" for "
			    "no alerts)");
		else
			parse_alerts(ld, line, cc->alerts, m);
	}
	policy_conf_default(&m->policy);
	check_policy(ld, kv, n, cc, m);
	if (cc->group != NULL) {
		line = keys_line(kv, n, "group");
		if (check_label(ld, line, "group", cc->group) == 0)
			m->group = xstrdup(cc->group);
	}
	parse_depends(ld, kv, n, m);
	parse_locations(ld, kv, n, cc, m);
	check_fit(ld, rs, kv, n, m);
	m->s.reusable = m->s.configurable && m->s.plugin != NULL &&
	    ld->d.errors + ld->d.warnings == reported;
	for (i = 0; i < m->s.n_lines && m->s.reusable; i++)
		if (reads_file(m->s.lines[i].key))
			m->s.reusable = 0;
	keys_free(cc);
	free(kv);
}

/* ---- config_load_prev(): unchanged sections copied ---- */

static size_t
name_hash(const char *s)
{
	size_t h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h;
}

/* Index CFG's monitors by name (cfg->by_name). */
static void
index_monitors(struct config *cfg)
{
	size_t i, b, size = 64, mask;

	while (size < cfg->n_monitors * 2)
		size *= 2;
	mask = size - 1;
	cfg->by_name = xcalloc(size, sizeof(*cfg->by_name));
	cfg->by_name_size = size;
	for (i = 0; i < cfg->n_monitors; i++) {
		for (b = name_hash(cfg->monitors[i].s.name) & mask;
		    cfg->by_name[b] != 0; b = (b + 1) & mask)
			;
		cfg->by_name[b] = i + 1;
	}
}

/* LD->prev's monitor NAME, or NULL. */
static const struct cfg_monitor *
prev_find(const struct loader *ld, const char *name)
{
	return config_find_monitor(ld->prev, name);
}

/*
 * The previous load's checked form of the monitor section RS, when
 * checking RS again would give the same (see config_load_prev()); else
 * NULL.  Everything check_monitor() reads from outside the section is
 * looked at again: the plugin (by type, in PLUGIN_DIR) and the names of
 * the alerts and monitors it refers to.  The rest a monitor is checked
 * against (cycles, maintenance windows, [cluster]) is checked for every
 * monitor once the sections are read, copied or not.
 */
static const struct cfg_monitor *
prev_same(struct loader *ld, const struct cfg_raw_section *rs,
    const char *plugin_dir)
{
	const struct cfg_monitor *o;
	const struct wp_plugin *p;
	char why[512];
	size_t i, j;

	if ((o = prev_find(ld, rs->name)) == NULL || !o->s.reusable ||
	    o->s.n_lines != rs->n_kv)
		return NULL;
	for (i = 0; i < rs->n_kv; i++)
		if (rs->kv[i].line - rs->line != o->s.lines[i].line - o->s.line ||
		    strcmp(rs->kv[i].key, o->s.lines[i].key) != 0 ||
		    strcmp(rs->kv[i].value, o->s.lines[i].value) != 0)
			return NULL;
	for (i = 0; i < o->n_alerts; i++)
		if (!alert_exists(ld, o->alerts[i]))
			return NULL;
	for (i = 0; i < o->policy.n_esc; i++)
		for (j = 0; j < o->policy.esc[i].n_alerts; j++)
			if (!alert_exists(ld, o->policy.esc[i].alerts[j]))
				return NULL;
	for (i = 0; i < o->n_depends_on; i++)
		if (cfg_raw_find(&ld->raw, CFG_MONITOR, o->depends_on[i]) == NULL)
			return NULL;
	if (ld->lookup == NULL)
		return NULL;
	p = ld->lookup(ld->lookup_arg, plugin_dir, WP_PLUGIN_CHECK, o->s.type,
	    why, sizeof(why));
	return p == o->s.plugin ? o : NULL;
}

/* The N strings of V, copied (NULL for none). */
static char **
strv_copy(char *const *v, size_t n)
{
	char **c;
	size_t i;

	if (n == 0)
		return NULL;
	c = xcalloc(n, sizeof(*c));
	for (i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

/* N lines (and a zeroed terminator) pointing into TEXT as O's point into
 * OTEXT, each line moved by DELTA. */
static struct cfg_kv *
kv_move(const struct cfg_kv *o, size_t n, const char *otext, char *text,
    int delta)
{
	struct cfg_kv *kv = xcalloc(n + 1, sizeof(*kv));
	size_t i;

	for (i = 0; i < n; i++) {
		kv[i].key = text + (o[i].key - otext);
		kv[i].value = text + (o[i].value - otext);
		kv[i].line = o[i].line + delta;
	}
	return kv;
}

/* A deep copy of O into M, every line moved by DELTA; M's file is the
 * caller's to set. */
static void
monitor_copy(struct cfg_monitor *m, const struct cfg_monitor *o, int delta)
{
	const struct cfg_section *os = &o->s;
	size_t len = 0, i;

	*m = *o;
	m->s.name = xstrdup(os->name);
	m->s.type = xstrdup(os->type);
	m->s.line = os->line + delta;
	m->s.type_line = os->type_line + delta;
	/* text is every line's key and value, NUL-ended, in turn
	 * (build_section()). */
	for (i = 0; i < os->n_lines; i++)
		len += strlen(os->lines[i].key) + strlen(os->lines[i].value) + 2;
	m->s.text = xmalloc(len + 1);
	memcpy(m->s.text, os->text, len);
	m->s.text[len] = '\0';
	m->s.lines = kv_move(os->lines, os->n_lines, os->text, m->s.text,
	    delta);
	m->s.kv = kv_move(os->kv, os->n_kv, os->text, m->s.text, delta);
	m->alerts = strv_copy(o->alerts, o->n_alerts);
	policy_conf_copy(&m->policy, &o->policy);
	m->group = o->group != NULL ? xstrdup(o->group) : NULL;
	m->depends_on = strv_copy(o->depends_on, o->n_depends_on);
	m->locations = strv_copy(o->locations, o->n_locations);
	if (o->locations_line != 0)
		m->locations_line = o->locations_line + delta;
}

static void
check_alert(struct loader *ld, const struct cfg_raw_section *rs,
    const char *plugin_dir, struct cfg_alert *a)
{
	struct common_conf *cc;
	struct cfg_kv *kv;
	size_t n;

	cc = build_section(ld, rs, plugin_dir, alert_keys, N(alert_keys),
	    &a->s, &kv, &n);
	a->timeout_ms = cc->timeout_us / MS;
	a->group_window_ms = cc->group_window_us / MS;
	keys_free(cc);
	free(kv);
}

/*
 * [status]: the page's title, footer, which monitors it shows and whether
 * it is public.  Absent, the defaults: "Status", every monitor, not
 * public.  A pattern that names no monitor is fine (monitors come and go
 * through the admin API).
 */
static void
check_status(struct loader *ld, struct cfg_status *st)
{
	static const struct keys_ctx ctx = { NULL, " in [status]", 0, NULL };
	const struct cfg_raw_section *rs = cfg_raw_find(&ld->raw, CFG_STATUS,
	    NULL);
	struct cfg_kv *kv = NULL;
	struct status_conf *c;
	size_t n = 0, i;
	int clean, line;

	if (rs != NULL) {
		st->line = rs->line;
		n = rs->n_kv;
		kv = xmalloc((n + 1) * sizeof(*kv));
		if (n > 0)
			memcpy(kv, rs->kv, n * sizeof(*kv));
	}
	c = fill_lenient(ld, &ctx, status_keys, N(status_keys),
	    sizeof(status_keys[0]), sizeof(*c), kv, &n, &clean);
	line = keys_line(kv, n, "title");
	st->title = xstrdup(check_label(ld, line, "title", c->title) == 0 ?
	    c->title : "Status");
	if (c->footer != NULL && check_label(ld, keys_line(kv, n, "footer"),
	    "footer", c->footer) == 0)
		st->footer = xstrdup(c->footer);
	st->public = c->public;
	line = keys_line(kv, n, "monitors");
	if (c->monitors.n > 0)
		st->monitors = xcalloc(c->monitors.n, sizeof(*st->monitors));
	for (i = 0; i < c->monitors.n; i++) {
		if (c->monitors.v[i][0] == '\0') {
			report(ld, line, "monitors: an empty pattern");
			continue;
		}
		st->monitors[st->n_monitors++] = xstrdup(c->monitors.v[i]);
	}
	keys_free(c);
	free(kv);
}

/*
 * [cluster] into CL (cluster.h): absent, CL stays zeroed (enabled 0) and
 * nothing of cluster mode runs.
 */
static void
check_cluster(struct loader *ld, struct cluster_conf *cl)
{
	const struct cfg_raw_section *rs = cfg_raw_find(&ld->raw, CFG_CLUSTER,
	    NULL);
	struct keys_ctx ctx = { NULL, " in [cluster]", 0, NULL };
	struct cluster_kconf *c;
	struct cfg_kv *kv;
	char host[256];
	size_t n, i;
	int clean, line;

	if (rs == NULL)
		return;
	cl->enabled = 1;
	cl->line = ctx.line = rs->line;
	n = rs->n_kv;
	kv = xmalloc((n + 1) * sizeof(*kv));
	if (n > 0)
		memcpy(kv, rs->kv, n * sizeof(*kv));
	c = fill_lenient(ld, &ctx, cluster_keys, N(cluster_keys),
	    sizeof(cluster_keys[0]), sizeof(*c), kv, &n, &clean);
	if (c == NULL) { /* etcd missing: reported */
		free(kv);
		return;
	}
	line = keys_line(kv, n, "etcd");
	if (c->etcd.n > 0)
		cl->etcd = xcalloc(c->etcd.n, sizeof(*cl->etcd));
	for (i = 0; i < c->etcd.n; i++) {
		const char *u = c->etcd.v[i];

		if (strncmp(u, "http://", 7) != 0 &&
		    strncmp(u, "https://", 8) != 0) {
			report(ld, line, "etcd: \"%s\" is not an http:// or "
			    "https:// URL", QSTR(u));
			continue;
		}
		if (u[u[4] == 's' ? 8 : 7] == '\0') {
			report(ld, line, "etcd: \"%s\" has no host", QSTR(u));
			continue;
		}
		cl->etcd[cl->n_etcd++] = xstrdup(u);
	}
	if (c->etcd.n == 0 && line != 0)
		report(ld, line, "etcd: no endpoint");
	line = keys_line(kv, n, "name");
	if (c->name == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		if (strlen(host) > CFG_NAME_MAX ||
		    !cfg_valid_name(host, "._-"))
			report(ld, rs->line, "[cluster]: the host name \"%s\" "
			    "is not an agent name (" CLUSTER_NAME_RULE "); set name",
			    QSTR(host));
		else
			cl->name = xstrdup(host);
	} else if (strlen(c->name) > CFG_NAME_MAX ||
	    !cfg_valid_name(c->name, "._-"))
		report(ld, line, "name \"%s\": " CLUSTER_NAME_RULE, QSTR(c->name));
	else
		cl->name = xstrdup(c->name);
	line = keys_line(kv, n, "location");
	if (strlen(c->location) > CFG_NAME_MAX ||
	    !cfg_valid_name(c->location, "_-"))
		report(ld, line, "location \"%s\": must be 1-128 characters "
		    "of letters, digits, '_' or '-'", QSTR(c->location));
	else
		cl->location = xstrdup(c->location);
	line = keys_line(kv, n, "cluster");
	if (strlen(c->cluster) > CFG_NAME_MAX ||
	    !cfg_valid_name(c->cluster, "._-"))
		report(ld, line, "cluster \"%s\": " CLUSTER_NAME_RULE,
		    QSTR(c->cluster));
	else
		cl->prefix = xstrdup(c->cluster);
	/* etcd grants leases in whole seconds. */
	if (c->lease_ttl_us % (1000 * MS) != 0)
		report(ld, keys_line(kv, n, "lease_ttl"), "lease_ttl: whole "
		    "seconds (etcd grants leases in seconds)");
	cl->lease_ttl_ms = c->lease_ttl_us / MS;
	cl->join_grace_ms = keys_line(kv, n, "join_grace") != 0 ?
	    c->join_grace_us / MS : 2 * cl->lease_ttl_ms;
	cl->watch_progress_ms = c->watch_progress_us / MS;
	cl->on_engine_loss = c->on_engine_loss;
	if ((c->user != NULL) != (c->password != NULL))
		report(ld, keys_line(kv, n, c->user != NULL ? "user" :
		    keys_line(kv, n, "password") ? "password" :
		    "password_file"), "user and password (or password_file) "
		    "go together");
	else if (c->user != NULL && c->user[0] == '\0')
		report(ld, keys_line(kv, n, "user"), "user: no value");
	else if (c->user != NULL) {
		cl->user = xstrdup(c->user);
		cl->password = xstrdup(c->password);
	}
	if ((c->client_cert != NULL) != (c->client_key != NULL))
		report(ld, keys_line(kv, n, c->client_cert != NULL ?
		    "client_cert" : "client_key"), "client_cert and "
		    "client_key go together");
	else if (c->client_cert != NULL) {
		cl->client_cert = xstrdup(c->client_cert);
		cl->client_key = xstrdup(c->client_key);
	}
	if (c->ca_file != NULL)
		cl->ca_file = xstrdup(c->ca_file);
	keys_free(c);
	free(kv);
}

/* A monitor's locations and confirm (cluster.h).  Whether the file has a
 * [cluster] is judged once it is all read (check_cluster_monitors). */
static void
parse_locations(struct loader *ld, const struct cfg_kv *kv, size_t n,
    const struct common_conf *cc, struct cfg_monitor *m)
{
	int line = keys_line(kv, n, "locations");
	size_t i, j;

	m->locations_line = line;
	if (cc->locations.n > 0)
		m->locations = xcalloc(cc->locations.n, sizeof(*m->locations));
	for (i = 0; i < cc->locations.n; i++) {
		const char *l = cc->locations.v[i];

		if (l[0] == '\0' || strlen(l) > CFG_NAME_MAX ||
		    !cfg_valid_name(l, "_-")) {
			report(ld, line, "locations: \"%s\" is not a location "
			    "(1-128 letters, digits, '_' or '-')", QSTR(l));
			continue;
		}
		for (j = 0; j < m->n_locations; j++)
			if (strcmp(m->locations[j], l) == 0)
				break;
		if (j < m->n_locations) {
			report(ld, line, "locations: \"%s\" twice", QSTR(l));
			continue;
		}
		m->locations[m->n_locations++] = xstrdup(l);
	}
	if (line != 0 && cc->locations.n == 0)
		report(ld, line, "locations: no value");
	m->confirm = (int)(m->n_locations / 2 + 1);
	if (keys_line(kv, n, "confirm") == 0)
		return;
	if (m->n_locations == 0 && line == 0)
		report(ld, keys_line(kv, n, "confirm"), "confirm needs "
		    "locations");
	else if ((size_t)cc->confirm > m->n_locations && m->n_locations > 0)
		report(ld, keys_line(kv, n, "confirm"), "confirm: %lld of "
		    "%zu locations", (long long)cc->confirm, m->n_locations);
	else
		m->confirm = (int)cc->confirm;
}

/* Cluster keys in a file without [cluster]: an error, not ignored. */
static void
check_cluster_monitors(struct loader *ld, struct config *cfg)
{
	size_t i;

	if (cfg->cluster.enabled)
		return;
	for (i = 0; i < cfg->n_monitors; i++) {
		if (cfg->monitors[i].locations_line == 0)
			continue;
		ld->d.file = cfg->files[cfg->monitors[i].s.file_no];
		ld->d.rank = cfg->monitors[i].s.file_no;
		report(ld, cfg->monitors[i].locations_line, "locations: "
		    "cluster mode needs a [cluster] section");
	}
}

/* The index of monitor NAME in CFG, or n_monitors. */
static size_t
monitor_index(const struct config *cfg, const char *name)
{
	const struct cfg_monitor *m = config_find_monitor(cfg, name);

	return m != NULL ? (size_t)(m - cfg->monitors) : cfg->n_monitors;
}

/* The line of M's "depends_on = NAME" (its header's if not found). */
static int
depends_line(struct loader *ld, const struct cfg_monitor *m,
    const char *name)
{
	/* The section's lines as written (its raw kv are gone by now). */
	const struct cfg_kv *kv = m->s.lines;
	size_t i, len = strlen(name);
	const char *v;

	(void)ld;
	for (i = 0; kv != NULL && i < m->s.n_lines; i++) {
		if (strcmp(kv[i].key, "depends_on") != 0)
			continue;
		for (v = kv[i].value; *v == ' ' || *v == '\t'; v++)
			;
		if (strncmp(v, name, len) == 0 && (v[len] == '\0' ||
		    v[len] == ' ' || v[len] == '\t'))
			return kv[i].line;
	}
	return m->s.line;
}

/*
 * depends_on must not loop: an iterative depth-first search over the
 * monitors (colour 0 new, 1 on the path, 2 done), reporting each cycle
 * once, at the depends_on line of the monitor that closes it, as "a -> b
 * -> a".  No recursion: 10,000 monitors in one chain are fine.
 */
static void
check_cycles(struct loader *ld, const struct config *cfg)
{
	size_t n = cfg->n_monitors, i, top, v, w, k;
	unsigned char *colour = xcalloc(n + 1, 1);
	size_t *stack = xcalloc(n + 1, sizeof(*stack));
	size_t *next = xcalloc(n + 1, sizeof(*next));
	struct sbuf path = { NULL, 0, 0 };

	for (i = 0; i < n; i++) {
		if (colour[i] != 0)
			continue;
		top = 0;
		stack[top++] = i;
		colour[i] = 1;
		next[i] = 0;
		while (top > 0) {
			v = stack[top - 1];
			if (next[v] == cfg->monitors[v].n_depends_on) {
				colour[v] = 2;
				top--;
				continue;
			}
			w = monitor_index(cfg,
			    cfg->monitors[v].depends_on[next[v]++]);
			if (w == n || colour[w] == 2)
				continue;
			if (colour[w] == 0) {
				colour[w] = 1;
				next[w] = 0;
				stack[top++] = w;
				continue;
			}
			/* w is on the path: the cycle is stack[k..top) + w. */
			for (k = 0; stack[k] != w; k++)
				;
			path.len = 0;
			for (; k < top; k++)
				sbuf_printf(&path, "%s -> ",
				    cfg->monitors[stack[k]].s.name);
			sbuf_printf(&path, "%s", cfg->monitors[w].s.name);
			/* At the closing monitor's file (an include). */
			if (cfg->monitors[v].s.file != NULL) {
				ld->d.file = cfg->monitors[v].s.file;
				ld->d.rank = cfg->monitors[v].s.file_no;
			}
			report(ld, depends_line(ld, &cfg->monitors[v],
			    cfg->monitors[w].s.name), "depends_on: cycle: %s",
			    path.data);
		}
	}
	free(path.data);
	free(colour);
	free(stack);
	free(next);
}

/* 1 if PAT has fnmatch(3) special characters. */
static int
is_pattern(const char *pat)
{
	return strpbrk(pat, "*?[") != NULL;
}

/*
 * A [maintenance:NAME] section: monitors (each name must exist; a pattern
 * matching nothing is a warning), a valid timezone, and either schedule
 * with duration (a cron schedule that fires) or start before end.
 */
static void
check_maintenance(struct loader *ld, const struct cfg_raw_section *rs,
    const struct config *cfg, struct cfg_maintenance *w)
{
	struct keys_ctx ctx = { NULL, NULL, rs->line, NULL };
	struct cfg_kv *kv;
	struct maint_conf *c;
	struct cron *cr = NULL;
	char err[512], *sec;
	size_t n = rs->n_kv, i, j;
	int clean, line, ls, le, lsch, ldur;

	w->name = xstrdup(rs->name);
	w->line = rs->line;
	sec = xasprintf("[maintenance:%s]", rs->name);
	ctx.section = sec;
	kv = xmalloc((n + 1) * sizeof(*kv));
	if (n > 0)
		memcpy(kv, rs->kv, n * sizeof(*kv));
	c = fill_lenient(ld, &ctx, maintenance_keys, N(maintenance_keys),
	    sizeof(maintenance_keys[0]), sizeof(*c), kv, &n, &clean);
	free(sec);
	if (c == NULL) {
		free(kv);
		return; /* monitors missing: reported */
	}
	line = keys_line(kv, n, "monitors");
	w->monitors = xcalloc(c->monitors.n + 1, sizeof(char *));
	for (i = 0; i < c->monitors.n; i++) {
		const char *pat = c->monitors.v[i];

		if (*pat == '\0') {
			report(ld, line, "monitors: empty name");
			continue;
		}
		for (j = 0; j < cfg->n_monitors; j++)
			if (fnmatch(pat, cfg->monitors[j].s.name, 0) == 0)
				break;
		if (j == cfg->n_monitors && !is_pattern(pat))
			report(ld, line, "monitors: unknown monitor \"%s\" "
			    "(there is no [monitor:%s] section)", QSTR(pat),
			    QSTR(pat));
		else if (j == cfg->n_monitors)
			warn_at(ld, line, "monitors: \"%s\" matches no "
			    "monitor", QSTR(pat));
		w->monitors[w->n_monitors++] = xstrdup(pat);
	}
	line = keys_line(kv, n, "timezone");
	if (c->timezone != NULL && !cron_zone_valid(c->timezone))
		report(ld, line, "timezone: unknown time zone \"%s\" (an "
		    "IANA name such as Europe/Berlin or UTC)",
		    QSTR(c->timezone));
	else if (c->timezone != NULL && c->timezone[0] != '\0')
		w->timezone = xstrdup(c->timezone);
	lsch = keys_line(kv, n, "schedule");
	ldur = keys_line(kv, n, "duration");
	ls = keys_line(kv, n, "start");
	le = keys_line(kv, n, "end");
	if ((lsch || ldur) && (ls || le))
		report(ld, lsch ? lsch : ldur, "schedule and duration cannot "
		    "be combined with start and end: a window is one or the "
		    "other");
	else if (lsch || ldur) {
		if (!lsch || !ldur)
			report(ld, lsch ? lsch : ldur, "%s without %s: a "
			    "scheduled window needs both", lsch ? "schedule" :
			    "duration", lsch ? "duration" : "schedule");
		else if (cron_parse(c->schedule, w->timezone, &cr, err,
		    sizeof(err)) != 0)
			report(ld, lsch, "schedule: %s", err);
		else if (cron_next(cr, wall_ms()) < 0)
			report(ld, lsch, "schedule: \"%s\" never fires",
			    QSTR(c->schedule));
		else {
			w->schedule = xstrdup(c->schedule);
			w->duration_ms = c->duration_us / MS;
		}
		cron_free(cr);
	} else if (ls || le) {
		if (!ls || !le)
			report(ld, ls ? ls : le, "%s without %s: a one-off "
			    "window needs both", ls ? "start" : "end",
			    ls ? "end" : "start");
		else if (cron_parse_time(c->start, w->timezone, &w->start_ms,
		    err, sizeof(err)) != 0)
			report(ld, ls, "start: %s", err);
		else if (cron_parse_time(c->end, w->timezone, &w->end_ms,
		    err, sizeof(err)) != 0)
			report(ld, le, "end: %s", err);
		else if (w->end_ms <= w->start_ms)
			report(ld, le, "end: %s is not after start %s",
			    QSTR(c->end), QSTR(c->start));
	} else
		report(ld, rs->line, "[maintenance:%s] needs schedule and "
		    "duration, or start and end", rs->name);
	keys_free(c);
	free(kv);
}

/* ------------------------------------------------------------------------ */
/* The interface */

static void
section_free(struct cfg_section *s)
{
	free(s->name);
	free(s->type);
	free(s->kv);
	free(s->lines);
	free(s->text);
}

void
config_free(struct config *cfg)
{
	size_t i, j;

	if (cfg == NULL)
		return;
	/* Another holder keeps it (config_ref()). */
	if (atomic_fetch_sub(&cfg->extra_refs, 1) > 0)
		return;
	free(cfg->file);
	free(cfg->dir);
	free(cfg->agent.database);
	free(cfg->agent.plugin_dir);
	free(cfg->agent.listen);
	free(cfg->agent.user);
	free(cfg->agent.api_token_file);
	free(cfg->agent.pidfile);
	free(cfg->agent.include);
	for (i = 0; i < cfg->n_files; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg->agent.name);
	for (i = 0; i < cfg->n_monitors; i++) {
		section_free(&cfg->monitors[i].s);
		for (j = 0; j < cfg->monitors[i].n_alerts; j++)
			free(cfg->monitors[i].alerts[j]);
		free(cfg->monitors[i].alerts);
		free(cfg->monitors[i].group);
		policy_conf_free(&cfg->monitors[i].policy);
		for (j = 0; j < cfg->monitors[i].n_depends_on; j++)
			free(cfg->monitors[i].depends_on[j]);
		free(cfg->monitors[i].depends_on);
		for (j = 0; j < cfg->monitors[i].n_locations; j++)
			free(cfg->monitors[i].locations[j]);
		free(cfg->monitors[i].locations);
	}
	free(cfg->monitors);
	free(cfg->by_name);
	for (i = 0; i < cfg->n_maintenance; i++) {
		struct cfg_maintenance *w = &cfg->maintenance[i];

		free(w->name);
		for (j = 0; j < w->n_monitors; j++)
			free(w->monitors[j]);
		free(w->monitors);
		free(w->schedule);
		free(w->timezone);
	}
	free(cfg->maintenance);
	for (i = 0; i < cfg->n_alerts; i++)
		section_free(&cfg->alerts[i].s);
	free(cfg->alerts);
	free(cfg->status.title);
	for (i = 0; i < cfg->status.n_monitors; i++)
		free(cfg->status.monitors[i]);
	free(cfg->status.monitors);
	free(cfg->status.footer);
	cluster_conf_free(&cfg->cluster);
	free(cfg);
}

struct config *
config_ref(const struct config *cfg)
{
	struct config *c = (struct config *)cfg;

	atomic_fetch_add(&c->extra_refs, 1);
	return c;
}

static atomic_int detached_frees; /* config_free_detached()'s running */

static void *
free_main(void *arg)
{
	config_free(arg);
	atomic_fetch_sub(&detached_frees, 1);
	return NULL;
}

void
config_free_detached(struct config *cfg)
{
	pthread_attr_t attr;
	pthread_t t;
	int made;

	if (cfg == NULL)
		return;
	/* Only a reference to drop: nothing to wait for.  (Should the others
	 * go meanwhile, config_free() frees it here: correct, if slower.) */
	if (atomic_load(&cfg->extra_refs) > 0) {
		config_free(cfg);
		return;
	}
	if (pthread_attr_init(&attr) != 0) {
		config_free(cfg);
		return;
	}
	atomic_fetch_add(&detached_frees, 1);
	made = pthread_attr_setdetachstate(&attr,
	    PTHREAD_CREATE_DETACHED) == 0 &&
	    pthread_create(&t, &attr, free_main, cfg) == 0;
	pthread_attr_destroy(&attr);
	if (!made) {
		atomic_fetch_sub(&detached_frees, 1);
		config_free(cfg);
	}
}

void
config_free_wait(void)
{
	const struct timespec ms = { 0, 1000000 };

	while (atomic_load(&detached_frees) > 0)
		nanosleep(&ms, NULL);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is NAME one the include folder reads: "*.ini", not hidden (as the
 * shell's glob has it)? */
static int
include_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".ini") == 0;
}

/*
 * Read the include folder AG->include after the main file: every *.ini
 * file in it in name order (strcmp, so the same on every machine), each
 * as its own file for the duplicate check and the messages (rank = its
 * index).  OV may replace or hide one of them, or add one.  A folder that
 * cannot be listed is an error at the include line.
 */
static void
read_includes(struct loader *ld, const struct cfg_agent *ag,
    const struct cfg_overlay *ov)
{
	DIR *dir;
	struct dirent *de;
	char **names = NULL, *path;
	const char *ov_name = NULL, *src;
	size_t n = 0, i, dl = strlen(ag->include);
	int ov_seen = 0;

	if (ov != NULL && strncmp(ov->path, ag->include, dl) == 0 &&
	    ov->path[dl] == '/' && strchr(ov->path + dl + 1, '/') == NULL)
		ov_name = ov->path + dl + 1;
	if ((dir = opendir(ag->include)) == NULL) {
		ld->d.file = ld->raw.files[0];
		ld->d.rank = 0;
		report(ld, ag->include_line, "include: cannot read the folder "
		    "%s: %s", ag->include, strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!include_name(de->d_name))
			continue;
		if (ov_name != NULL && strcmp(de->d_name, ov_name) == 0) {
			ov_seen = 1;
			if (ov->source == NULL)
				continue;
		}
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (ov_name != NULL && !ov_seen && ov->source != NULL) {
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(ov_name);
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		path = xasprintf("%s/%s", ag->include, names[i]);
		src = ov_name != NULL && strcmp(names[i], ov_name) == 0 ?
		    ov->source : path;
		ld->d.file = path;
		ld->d.rank = (int)ld->raw.n_files;
		/* An unreadable file is reported; the others still count. */
		(void)cfg_read_from(path, src, &ld->raw, &ld->d);
		free(path);
		free(names[i]);
	}
	free(names);
}

int
config_load(const char *file, const char *plugin_dir_override,
    cfg_lookup_fn lookup, void *lookup_arg, struct wp_diag *diag,
    struct config **out)
{
	return config_load_overlay(file, plugin_dir_override, lookup,
	    lookup_arg, NULL, diag, out);
}

int
config_load_overlay(const char *file, const char *plugin_dir_override,
    cfg_lookup_fn lookup, void *lookup_arg, const struct cfg_overlay *ov,
    struct wp_diag *diag, struct config **out)
{
	return config_load_prev(file, plugin_dir_override, lookup, lookup_arg,
	    ov, NULL, diag, out);
}

int
config_load_prev(const char *file, const char *plugin_dir_override,
    cfg_lookup_fn lookup, void *lookup_arg, const struct cfg_overlay *ov,
    const struct config *prev, struct wp_diag *diag, struct config **out)
{
	struct loader ld;
	struct config *cfg = NULL;
	const struct cfg_raw_section *rs;
	const struct cfg_monitor *same;
	const char *prev_file = diag->file;
	char *cwd;
	size_t i, nm = 0, na = 0, nw = 0;
	int ret = WP_EINVAL;

	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	ld.lookup = lookup;
	ld.lookup_arg = lookup_arg;
	/* Problems name this file, whatever the caller's sink was set up
	 * with; a sink without a file keeps this one for configure(). */
	diag->file = file;
	diag_init(&ld.d, file);
	if (cfg_read(file, &ld.raw, &ld.d) != 0)
		goto done;

	cfg = xcalloc(1, sizeof(*cfg));
	cfg->file = xstrdup(file);
	cfg->dir = file_dir(file);
	ld.dir = cfg->dir;
	check_agent(&ld, &cfg->agent);
	if (cfg->agent.include != NULL)
		read_includes(&ld, &cfg->agent, ov);
	/* The main file's name as given; the included ones absolute. */
	cfg->files = xcalloc(ld.raw.n_files + 1, sizeof(*cfg->files));
	for (i = 0; i < ld.raw.n_files; i++)
		cfg->files[i] = xstrdup(ld.raw.files[i]);
	cfg->n_files = ld.raw.n_files;
	if (plugin_dir_override != NULL) {
		cwd = current_dir();
		free(cfg->agent.plugin_dir);
		cfg->agent.plugin_dir = keys_resolve_path(cwd,
		    plugin_dir_override);
		free(cwd);
	}
	/* Paths in a section are resolved against the file's folder. */
	if (prev != NULL && strcmp(prev->dir, cfg->dir) == 0)
		ld.prev = prev;

	for (i = 0; i < ld.raw.n_secs; i++) {
		if (ld.raw.secs[i].kind == CFG_MONITOR)
			nm++;
		else if (ld.raw.secs[i].kind == CFG_ALERT)
			na++;
		else if (ld.raw.secs[i].kind == CFG_MAINTENANCE)
			nw++;
	}
	cfg->monitors = xcalloc(nm + 1, sizeof(*cfg->monitors));
	cfg->alerts = xcalloc(na + 1, sizeof(*cfg->alerts));
	cfg->maintenance = xcalloc(nw + 1, sizeof(*cfg->maintenance));
	for (i = 0; i < ld.raw.n_secs; i++) {
		struct cfg_section *s = NULL;

		rs = &ld.raw.secs[i];
		/* Each section's problems name its own file. */
		ld.d.file = cfg->files[rs->file];
		ld.d.rank = rs->file;
		if (rs->kind == CFG_MONITOR) {
			s = &cfg->monitors[cfg->n_monitors].s;
			if (ld.prev != NULL && (same = prev_same(&ld, rs,
			    cfg->agent.plugin_dir)) != NULL)
				monitor_copy(&cfg->monitors[cfg->n_monitors++],
				    same, rs->line - same->s.line);
			else
				check_monitor(&ld, rs, cfg->agent.plugin_dir,
				    &cfg->monitors[cfg->n_monitors++]);
		} else if (rs->kind == CFG_ALERT) {
			s = &cfg->alerts[cfg->n_alerts].s;
			check_alert(&ld, rs, cfg->agent.plugin_dir,
			    &cfg->alerts[cfg->n_alerts++]);
		}
		if (s != NULL) {
			/* Its lines are the section's copy now: the raw ones
			 * go at once, so a load of 100,000 monitors does not
			 * hold every line twice at its peak (issue 17, S8). */
			cfg_raw_drop_kv(&ld.raw, i);
			s->file = cfg->files[rs->file];
			s->file_no = rs->file;
		}
	}
	index_monitors(cfg);
	/* Once every monitor is known: patterns and the dependency graph.
	 * Each section's problems name its own file. */
	for (i = 0; i < ld.raw.n_secs; i++) {
		rs = &ld.raw.secs[i];
		if (rs->kind != CFG_MAINTENANCE)
			continue;
		ld.d.file = cfg->files[rs->file];
		ld.d.rank = rs->file;
		check_maintenance(&ld, rs, cfg,
		    &cfg->maintenance[cfg->n_maintenance++]);
	}
	check_cycles(&ld, cfg);
	ld.d.file = file;
	ld.d.rank = 0;
	check_status(&ld, &cfg->status);
	check_cluster(&ld, &cfg->cluster);
	check_cluster_monitors(&ld, cfg);
	ld.d.file = file;
	ld.d.rank = 0;
	*out = cfg;
	if (ld.d.errors == 0)
		ret = 0;
done:
	diag_sort(&ld.d);
	diag_move(diag, &ld.d);
	if (prev_file != NULL)
		diag->file = prev_file;
	cfg_raw_free(&ld.raw);
	free(ld.names[0]);
	free(ld.names[1]);
	return ret;
}

const struct cfg_monitor *
config_find_monitor(const struct config *cfg, const char *name)
{
	size_t mask, b, slot, i;

	if (cfg == NULL)
		return NULL;
	if (cfg->by_name_size == 0) {
		/* A configuration built by hand (tests): no index. */
		for (i = 0; i < cfg->n_monitors; i++)
			if (strcmp(cfg->monitors[i].s.name, name) == 0)
				return &cfg->monitors[i];
		return NULL;
	}
	mask = cfg->by_name_size - 1;
	for (b = name_hash(name) & mask; (slot = cfg->by_name[b]) != 0;
	    b = (b + 1) & mask)
		if (strcmp(cfg->monitors[slot - 1].s.name, name) == 0)
			return &cfg->monitors[slot - 1];
	return NULL;
}

const struct cfg_alert *
config_find_alert(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; cfg != NULL && i < cfg->n_alerts; i++)
		if (strcmp(cfg->alerts[i].s.name, name) == 0)
			return &cfg->alerts[i];
	return NULL;
}
