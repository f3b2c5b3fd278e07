/*
 * cfg -- the INI file, read by cfg-read.c into raw sections and validated
 * here into a model.
 *
 * Loading is two steps so that the core never needs to know a plugin's
 * configuration struct:
 *
 *   1. config_load() reads the file and parses every key with keys_fill()
 *      from a key table: [agent] and the common monitor / alert keys from
 *      the host's tables (cfg_host_keys()), each section's other keys from
 *      its plugin's table, found through the `lookup` callback (a loaded
 *      plugin).  It also checks duplicate names, section kinds and alert
 *      references.
 *   2. The caller then builds each section's instance (configure_section():
 *      the plugin's keys filled again into the plugin's struct, then the
 *      plugin's configure(), which reports through the same diagnostics).
 *      When step 1 found problems, the caller still runs step 2 on the
 *      sections a plugin can judge, so that one report lists both kinds.
 *
 * Secrets in files: in a [monitor:] or [alert:] section, KEY_file = PATH
 * for a text key KEY of the plugin gives KEY the contents of PATH (see
 * keys.h and cfg_read_secret()).  [agent] api_token_file is read by the
 * same function when the agent starts.
 *
 * Every problem is reported as "FILE:LINE: message"; all of them, not just
 * the first.  Lines of any length are accepted (see cfg-read.c).
 */
#ifndef CORE_CFG_H
#define CORE_CFG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <watchpost/plugin.h>

#include "diag.h"
#include "keys.h"
#include "cluster.h"

/* The [agent] section, with defaults applied and relative paths resolved
 * against the configuration file's folder. */
struct cfg_agent {
	char *database;        /* default "watchpost.db" */
	char *plugin_dir;      /* default PKGLIBDIR */
	char *listen;          /* "127.0.0.1:9405" default; NULL when "off" */
	int retention_days;    /* default 30; 0 keeps forever */
	int rollup_retention_days; /* default 400; 0 keeps forever */
	int log_level;         /* WP_LOG_*, default WP_LOG_INFO */
	int log_syslog;        /* 1 with log = syslog; -1 when not set */
	char *user;            /* NULL: no privilege drop */
	char *api_token_file;  /* NULL: no token; read with cfg_read_secret() */
	char *pidfile;         /* NULL: none */
	int exec_max;          /* default 16: commands run at once (command.h) */
	char *name;            /* [agent] name; NULL: the host name */
	int line;              /* line of [agent], 0 if absent */
	char *include;         /* the include folder, absolute; NULL: none */
	int include_line;      /* its line in the main file */
};

/*
 * A [monitor:NAME] or [alert:NAME] section.  `kv` holds only the lines
 * that belong to the plugin (common keys are consumed), as written (a
 * KEY_file line as KEY_file = PATH), in file order; its strings are
 * `lines`' (one copy of the section's text, in `text`).
 * `def_hash` is the hash (cfg_def_hash()) of a canonical rendering of
 * every key and value in the section, in file order, "KEY=VALUE\n" each,
 * a plugin's KEY_file line as the file's contents (KEY=CONTENTS\n); no
 * line numbers.  A reload tells a changed definition by it: the rendering
 * itself is not kept (it was ~250 bytes of every monitor, twice; issue
 * 17, S8).
 */
struct cfg_section {
	char *name;
	char *type;
	int line;              /* line of the [section] header */
	int type_line;
	struct cfg_kv *kv;
	size_t n_kv;
	uint64_t def_hash;
	const struct wp_plugin *plugin; /* from lookup(); NULL if unknown */
	/* The plugin may judge kv: it is known and kv fills its key table
	 * (keys_fill() succeeds on it).  kv then holds only the lines that
	 * fill, even when other lines of the file (an unknown or repeated
	 * key, a bad interval) have problems. */
	int configurable;
	const char *file;      /* the file it is in (config.files[file_no]) */
	int file_no;           /* 0: the main file; diag rank */
	/* Every line of the section as written, common keys included, a
	 * KEY_file line as its path (owned): what GET /api/monitors/NAME
	 * shows, with SECRET values masked. */
	struct cfg_kv *lines;
	size_t n_lines;
	char *text;            /* the strings of lines and kv, one block */
	int64_t interval_ms;   /* monitors: the interval; alerts: 0 (push's
	                        * wp_section.interval_us) */
	/* A later load may copy this section instead of checking it again
	 * (config_load_prev()): checking it reported nothing, its plugin
	 * judged it, and no line reads a file (a file's contents may change
	 * while its lines do not). */
	int reusable;
};

/* alert_on: which transitions alert. */
#define POLICY_ON_DOWN 1u        /* entering down */
#define POLICY_ON_UP 2u          /* recovering: leaving down (and leaving
                                  * degraded, when that alerted too) */
#define POLICY_ON_DEGRADED 4u    /* entering degraded */
#define POLICY_ON_DEFAULT (POLICY_ON_DOWN | POLICY_ON_UP)

/* One `escalate = DURATION ALERT[,ALERT...]` line. */
struct policy_escalation {
	int64_t after_ms;        /* > 0: still down this long after since */
	char **alerts;           /* section names, n_alerts of them (owned) */
	size_t n_alerts;
};

/* A monitor's transition policy (the common keys; policy.h applies it). */
struct policy_conf {
	int down_after;          /* >= 1: failed checks in a row before down */
	int up_after;            /* >= 1: good checks in a row before leaving
	                          * down */
	int64_t latency_warn_us; /* 0: off; slower is degraded (slow) */
	int64_t cert_warn_s;     /* 0: off; a certificate expiring within it
	                          * is degraded (cert_expiry) */
	unsigned alert_on;       /* POLICY_ON_* */
	int64_t renotify_ms;     /* 0: off; the DOWN alert again this often */
	struct policy_escalation *esc; /* by after_ms, ascending (owned) */
	size_t n_esc;
};

struct cfg_monitor {
	struct cfg_section s;
	int64_t interval_ms;       /* default 60 s, 100 ms to 7 days */
	int64_t timeout_ms;        /* default 10 s, 1 ms to 1 hour */
	int64_t retry_interval_ms; /* default 1 s, at most 1 hour */
	int retries;               /* default 2, 0..100 */
	int enabled;               /* default 1 */
	/* alerts: all_alerts = 1 when the key is omitted; "none" gives
	 * all_alerts = 0 and n_alerts = 0.  Names are validated to exist. */
	int all_alerts;
	char **alerts;
	size_t n_alerts;
	/* down_after, up_after, latency_warn, cert_warn, alert_on, renotify
	 * and escalate (policy.h; escalation names validated to exist). */
	struct policy_conf policy;
	char *group;               /* the status page's group; NULL: none */
	/* depends_on: names of existing monitors, none twice, not itself,
	 * no cycle (hold.h). */
	char **depends_on;
	size_t n_depends_on;
	/* Cluster mode (cluster.h): the locations that check it (distinct
	 * names; n 0: any one agent) and how many must see it down
	 * (1..n_locations; default a majority, n / 2 + 1). */
	char **locations;
	size_t n_locations;
	int confirm;
	int locations_line;        /* 0 when the key is absent */
};

struct cfg_alert {
	struct cfg_section s;
	int64_t timeout_ms;        /* default 10 s, 1 ms to 1 hour */
	int64_t group_window_ms;   /* default 0 (off), at most 1 hour */
};

/* [status] (statuspage.h): the status page and badges. */
struct cfg_status {
	char *title;               /* default "Status" */
	char **monitors;           /* fnmatch(3) patterns; n 0: every one */
	size_t n_monitors;
	int public;                /* page and badges need no token */
	char *footer;              /* NULL: none */
	int line;                  /* of [status], 0 if absent */
};

/*
 * A [maintenance:NAME] window (hold.h): the monitors it covers (names or
 * fnmatch(3) patterns, "*": all) and either a cron schedule with a
 * duration or one start/end pair, in timezone (NULL: the agent's).
 */
struct cfg_maintenance {
	char *name;
	int line;
	char **monitors;
	size_t n_monitors;
	char *schedule;            /* NULL with start/end */
	int64_t duration_ms;
	int64_t start_ms, end_ms;  /* unix ms; 0 with a schedule */
	char *timezone;            /* NULL: the agent's */
};

struct config {
	char *file;                /* as given */
	char *dir;                 /* its folder, absolute */
	struct cfg_agent agent;
	struct cfg_monitor *monitors;  /* in file order */
	size_t n_monitors;
	struct cfg_alert *alerts;
	size_t n_alerts;
	/* Every file read: files[0] is the main one (== file), then the
	 * include folder's *.ini in name order, as absolute paths. */
	char **files;
	size_t n_files;
	struct cfg_status status;
	struct cfg_maintenance *maintenance; /* in file order */
	size_t n_maintenance;
	struct cluster_conf cluster;  /* [cluster]; enabled 0 without it */
	/* monitors by name (config_find_monitor()): open-addressed, slot =
	 * index + 1, 0 empty, at most half full; built by the load. */
	size_t *by_name;
	size_t by_name_size;       /* a power of two, or 0: none */
	/* References beyond the first (config_ref()); 0 for a fresh load. */
	atomic_int extra_refs;
};

/*
 * Find the plugin for a type in plugin_dir (the resolved [agent] plugin_dir,
 * or the -P override): kind is WP_PLUGIN_CHECK for monitors and
 * WP_PLUGIN_ALERT for alerts.  Returns the descriptor, or NULL after writing
 * a one-line reason into why (e.g. "no plugin http.so in /usr/lib/...").
 */
typedef const struct wp_plugin *(*cfg_lookup_fn)(void *arg,
    const char *plugin_dir, int kind, const char *type, char *why,
    size_t whylen);

/*
 * Load and validate FILE.  On success returns 0 and *out (free with
 * config_free).  On any error returns WP_EINVAL with every problem in
 * *diag, sorted by line; an unreadable file is reported as "FILE: message"
 * and gives *out NULL.  Otherwise *out is the file as far as it could be
 * checked, for one use only: handing its `configurable` sections to their
 * plugins so that one report holds the plugins' problems too (see
 * manager_check()); the caller frees it.
 * plugin_dir_override, when not NULL, replaces [agent] plugin_dir (the -P
 * flag) before lookup is called.
 */
int config_load(const char *file, const char *plugin_dir_override,
    cfg_lookup_fn lookup, void *lookup_arg, struct wp_diag *diag,
    struct config **out);
/* Drop a reference to CFG: the last one frees it (NULL is fine).  Any
 * thread may drop one; the configuration is never changed after the load,
 * so the holders share it read-only. */
void config_free(struct config *cfg);
/* One more reference to CFG (its holder calls config_free() once more);
 * returns CFG.  The reference count is the one part of a configuration
 * that changes after the load, hence the const. */
struct config *config_ref(const struct config *cfg);
/* config_free() on a thread of its own when it is the last reference, so
 * that the caller (the loop, after a reload's apply) does not wait for
 * 100,000 sections to be freed; on the caller's thread when no thread can
 * be made.  config_free_wait() returns once every such free is done (at
 * shutdown, before the process checks its heap or exits). */
void config_free_detached(struct config *cfg);
void config_free_wait(void);

/* A key table of the host: "agent", "monitor" (the keys every monitor
 * has), "alert" (the keys every alert has), "status" ([status]) or
 * "maintenance" (the keys of [maintenance:NAME]). */
struct cfg_keys {
	const char *name;
	const struct wp_key *keys; /* stride sizeof(struct wp_key) */
	size_t n_keys;
};
/* The host's tables, for --list-types; *n gets their number. */
const struct cfg_keys *cfg_host_keys(size_t *n);

/* The definition hash: 64-bit FNV-1a, H on from the N bytes at P (start
 * with CFG_DEF_HASH_INIT).  The hash of a text is that of its pieces in
 * turn, so a rendering is hashed without being built. */
#define CFG_DEF_HASH_INIT 0xcbf29ce484222325ull
uint64_t cfg_def_hash(uint64_t h, const void *p, size_t n);

/* The monitor or alert NAME of CFG (NULL is fine), or NULL.  Monitors are
 * found through the load's index, so any number of lookups stays cheap at
 * 100,000 monitors. */
const struct cfg_monitor *config_find_monitor(const struct config *cfg,
    const char *name);
const struct cfg_alert *config_find_alert(const struct config *cfg,
    const char *name);

/*
 * config_load() with one file of the include folder replaced: PATH (an
 * absolute INCLUDE/NAME.ini, on disk or not) is read from SOURCE instead,
 * or left out when SOURCE is NULL, and messages still name PATH.  The admin
 * API judges a monitor's new file so, before it takes PATH's place.  OV
 * NULL: config_load().
 */
struct cfg_overlay {
	const char *path;
	const char *source;
};
int config_load_overlay(const char *file, const char *plugin_dir_override,
    cfg_lookup_fn lookup, void *lookup_arg, const struct cfg_overlay *ov,
    struct wp_diag *diag, struct config **out);

/*
 * config_load_overlay() that takes from PREV (a configuration loaded
 * before from the same FILE, NULL: none) every [monitor:] section written
 * exactly as before -- same name, type, lines and values, at the same
 * distances from its header -- and marked reusable there, whose plugin is
 * the one PREV's has and whose alerts, escalations and depends_on still
 * name sections of the new file: the checked section is copied (its line
 * numbers moved with the header) rather than checked again.  The result is
 * the one config_load_overlay() gives for the file; a reload of 100,000
 * monitors then checks only what changed (issue 17, S8).  PREV is only
 * read: the caller keeps it alive (config_ref()) for the call.
 */
int config_load_prev(const char *file, const char *plugin_dir_override,
    cfg_lookup_fn lookup, void *lookup_arg, const struct cfg_overlay *ov,
    const struct config *prev, struct wp_diag *diag, struct config **out);

#endif
