/*
 * watchpost -- the daemon's entry point: command line, start-up order,
 * signals, reload, --once, and an orderly shutdown.
 */
#include "config.h"

#include <limits.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>
#include <uv.h>

#include "admin.h"
#include "alert.h"
#include "api.h"
#include "cfg.h"
#include "cluster-run.h"
#include "daemon.h"
#include "history.h"
#include "hold.h"
#include "host.h"
#include "listtypes.h"
#include "loader.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "opmon.h"
#include "runtime.h"
#include "command.h"
#include "pool.h"
#include "statuspage.h"
#include "report.h"
#include "store.h"
#include "util.h"

#define DEFAULT_CONFIG SYSCONFDIR "/watchpost/watchpost.ini"

static struct {
	const char *config;
	const char *plugin_dir;
	int check_only;
	int once;
	int daemon;
	int list_types;
	int json;
	const char *test_alert;  /* --test-alert NAME */
	char **names;
	size_t n_names;
} opt;

static struct store *store;
static struct api *api;
static struct history *history;	/* the API's history routes */
static uv_signal_t sig_hup, sig_term, sig_int;
static uv_timer_t retention_timer;
static int retention_days;
static int rollup_retention_days;
static struct cfg_agent agent_now; /* [agent] in force (copies; see reload) */

static void retention_cb(uv_timer_t *t);
static int exit_code;
/* Cluster mode: the [cluster] in force (a reload does not change it) and
 * the services table the etcd client drives the loop through. */
static struct cluster_conf cluster_now;
static struct wp_host *cluster_host;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: watchpost [-c FILE] [-P DIR] [-d]\n"
	    "       watchpost -t [-c FILE] [-P DIR]\n"
	    "       watchpost --once [-c FILE] [-P DIR] [NAME...]\n"
	    "       watchpost --list-types [--json] [-c FILE] [-P DIR]\n"
	    "       watchpost report [-c FILE | --database DB] [--since 30d]\n"
	    "                        [--format table|csv|json] [NAME...]\n"
	    "       watchpost --test-alert NAME [-c FILE] [-P DIR]\n"
	    "\n"
	    "  -c, --config FILE     configuration (default %s)\n"
	    "  -t, --check-config    validate FILE and its plugins, print each\n"
	    "                        problem as FILE:LINE: message; exit 0 or 1\n"
	    "      --once [NAME...]  run every enabled monitor (or the named\n"
	    "                        ones) once, print a line each; exit 0 all\n"
	    "                        up, 2 any down, 3 configuration error\n"
	    "      --list-types      list the check and alert types in plugin_dir\n"
	    "                        and every key they and the agent take\n"
	    "      --json            with --list-types: as JSON\n"
	    "      --test-alert NAME send a test alert through [alert:NAME],\n"
	    "                        print the receiver's answer; exit 0 if\n"
	    "                        it was accepted, 1 if not\n"
	    "  -P, --plugin-dir DIR  load plugins from DIR instead of plugin_dir\n"
	    "  -d, --daemon          detach once started, write pidfile\n"
	    "  -V, --version         print the version\n"
	    "  -h, --help            this help\n"
	    "\n"
	    "Signals: SIGHUP reloads FILE; SIGTERM/SIGINT stop cleanly.\n"
	    "See watchpost(8) and watchpost.ini(5).\n", DEFAULT_CONFIG);
}

static void
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "once", no_argument, NULL, 'o' },
		{ "plugin-dir", required_argument, NULL, 'P' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "list-types", no_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'J' },
		{ "test-alert", required_argument, NULL, 'A' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	opt.config = DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "c:tP:dVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opt.config = optarg;
			break;
		case 't':
			opt.check_only = 1;
			break;
		case 'o':
			opt.once = 1;
			break;
		case 'P':
			opt.plugin_dir = optarg;
			break;
		case 'd':
			opt.daemon = 1;
			break;
		case 'L':
			opt.list_types = 1;
			break;
		case 'J':
			opt.json = 1;
			break;
		case 'A':
			opt.test_alert = optarg;
			break;
		case 'V':
			printf("watchpost %s (plugin ABI %d.%d)\n",
			    PACKAGE_VERSION, WP_ABI_MAJOR, WP_ABI_MINOR);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(opt.once ? 3 : 1);
		}
	}
	if (optind < argc && !opt.once) {
		fprintf(stderr, "watchpost: unexpected argument \"%s\" (monitor "
		    "names go after --once)\n", argv[optind]);
		exit(1);
	}
	opt.names = argv + optind;
	opt.n_names = (size_t)(argc - optind);
	if (opt.json && !opt.list_types) {
		fprintf(stderr, "watchpost: --json goes with --list-types\n");
		exit(1);
	}
	if (opt.check_only + opt.once + opt.daemon + opt.list_types +
	    (opt.test_alert != NULL) > 1) {
		fprintf(stderr, "watchpost: -t, --once, --list-types, "
		    "--test-alert and -d exclude each other\n");
		exit(opt.once ? 3 : 1);
	}
}

/* Deadline of a start-up step: a step that ends past it counts as timed
 * out (it cannot be stopped: the loop is not running yet), so it is
 * generous. */
#define STARTUP_STEP_MS 30000

/*
 * A file the core accepted may still have warnings: show them (-t prints
 * them as it prints errors; the agent, --once and reload log them), then
 * empty DIAG for the plugins' judgement, so nothing is shown twice.
 */
static void
show_warnings(struct wp_diag *diag)
{
	const char *p, *nl;

	if (diag->warnings > 0 && opt.check_only)
		fputs(diag->text, stderr);
	else if (diag->warnings > 0)
		for (p = diag->text; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
			log_warn("%.*s", (int)(nl - p), p);
	diag_free(diag);
	diag_init(diag, opt.config);
}

/* Load FILE and check every section's keys, loading the plugins it names,
 * without touching the running set (diag gets every problem).  At start-up
 * (STARTUP) the first type loads every plugin of plugin_dir, each a start-up
 * operation (loader.h), and the load is one too.  On reload the plugins
 * are those loaded at start-up, whatever the file says now: a new
 * plugin_dir or a new plugin needs a restart (reload warns about the one,
 * the lookup refuses the other with FILE:LINE).  When
 * the core rejects the file, the plugins still judge the sections they can,
 * so that one report holds every problem: -t, start-up, --once and reload
 * alike.  (A file the core accepts is judged by manager_apply(), which
 * keeps the instances: no section is configured twice.) */
static struct config *
load_with(struct wp_diag *diag, int startup, const struct cfg_overlay *ov)
{
	struct config *cfg = NULL;
	struct opmon_op *op = NULL;

	diag_init(diag, opt.config);
	if (startup)
		op = opmon_begin(OPC_STARTUP, "load configuration",
		    STARTUP_STEP_MS);
	/* After start-up the running file's unchanged sections are copied,
	 * not checked again (config_load_prev()). */
	if (config_load_prev(opt.config, opt.plugin_dir, loader_lookup,
	    NULL, ov, startup ? NULL : manager_config(), diag, &cfg) != 0) {
		if (cfg != NULL)
			manager_check(cfg, diag);
		config_free(cfg);
		opmon_end(op, OP_FAILED, "invalid configuration");
		return NULL;
	}
	opmon_end(op, OP_SUCCEEDED, NULL);
	show_warnings(diag);
	return cfg;
}

static struct config *
load(struct wp_diag *diag, int startup)
{
	return load_with(diag, startup, NULL);
}

static void
print_diag(const struct wp_diag *d, FILE *f)
{
	if (d->text != NULL)
		fputs(d->text, f);
}

/* ---- reload and shutdown ---- */

/* Where the log goes for these [agent] settings (-d: syslog by default). */
static enum log_target
log_target_of(const struct cfg_agent *ag)
{
	return ag->log_syslog == 1 || (opt.daemon && ag->log_syslog == -1) ?
	    LOG_TO_SYSLOG : LOG_TO_STDERR;
}

/* Keep copies of AG's values in agent_now (AG NULL: free them). */
static void
agent_keep(const struct cfg_agent *ag)
{
	char **str[] = { &agent_now.database, &agent_now.plugin_dir,
	    &agent_now.listen, &agent_now.user, &agent_now.api_token_file,
	    &agent_now.pidfile, &agent_now.include };
	size_t i;

	for (i = 0; i < sizeof(str) / sizeof(str[0]); i++)
		free(*str[i]);
	memset(&agent_now, 0, sizeof(agent_now));
	if (ag == NULL)
		return;
	agent_now = *ag;
	for (i = 0; i < sizeof(str) / sizeof(str[0]); i++)
		if (*str[i] != NULL)
			*str[i] = xstrdup(*str[i]);
}

static int
same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * A reload re-reads api_token_file (it may have changed, appeared or gone)
 * before anything is applied, so that an unreadable one rejects the whole
 * reload and the running token stays.  Returns 0 and *token (NULL: no
 * token; free() it), or WP_EINVAL with the problem in DIAG.
 */
static int
reload_token(const struct config *cfg, struct wp_diag *diag, char **token)
{
	char why[PATH_MAX + 128];

	*token = NULL;
	if (cfg->agent.api_token_file == NULL)
		return 0;
	if (cfg_read_secret(cfg->agent.api_token_file, token, why,
	    sizeof(why)) != 0) {
		diag_error(diag, cfg->agent.line, "api_token_file: %s", why);
		return WP_EINVAL;
	}
	return 0;
}

/*
 * Apply what of [agent] can change while running -- log_level, log,
 * retention_days, the API token -- and warn about each key that needs a
 * restart.  AG is the new section; TOKEN the token read from its
 * api_token_file (NULL: none).  Never logs the token.
 */
static void
agent_reload(const struct cfg_agent *ag, const char *token)
{
	static const char *const level[] = { "error", "warn", "info",
	    "debug" };
	const struct {
		const char *key, *was, *now;
	} restart[] = {
		{ "listen", agent_now.listen ? agent_now.listen : "off",
		    ag->listen ? ag->listen : "off" },
		{ "database", agent_now.database, ag->database },
		{ "plugin_dir", agent_now.plugin_dir, ag->plugin_dir },
		{ "user", agent_now.user ? agent_now.user : "(none)",
		    ag->user ? ag->user : "(none)" },
		{ "pidfile", agent_now.pidfile ? agent_now.pidfile : "(none)",
		    ag->pidfile ? ag->pidfile : "(none)" },
	};
	enum log_target was_target = log_target_of(&agent_now),
	    target = log_target_of(ag);
	size_t i;
	int rc;

	for (i = 0; i < sizeof(restart) / sizeof(restart[0]); i++)
		if (!same_str(restart[i].was, restart[i].now))
			log_warn("reload: [agent] %s changed (%s -> %s); restart "
			    "to apply", restart[i].key, restart[i].was,
			    restart[i].now);

	if (ag->log_level != agent_now.log_level || target != was_target) {
		char line[160];

		snprintf(line, sizeof(line), "reload: [agent] log_level %s, "
		    "log %s", level[ag->log_level], target == LOG_TO_SYSLOG ?
		    "syslog" : "stderr");
		/* Said at info where the log went, and where it goes now if
		 * that is another place or the old level hid it. */
		if (agent_now.log_level >= WP_LOG_INFO)
			log_info("%s", line);
		log_setup(ag->log_level, target);
		if (target != was_target || agent_now.log_level < WP_LOG_INFO)
			log_info("%s", line);
	}

	if (ag->exec_max != agent_now.exec_max)
		log_info("reload: [agent] exec_max %d -> %d", agent_now.exec_max,
		    ag->exec_max);
	spawn_set_max((unsigned)ag->exec_max);

	if (ag->retention_days != retention_days) {
		log_info("reload: [agent] retention_days %d -> %d%s",
		    retention_days, ag->retention_days, ag->retention_days > 0 ?
		    "; applying it now" : " (keep every check)");
		retention_days = ag->retention_days;
		if (retention_days > 0)
			uv_timer_start(&retention_timer, retention_cb, 0,
			    86400000);
	}
	if (ag->rollup_retention_days != rollup_retention_days) {
		log_info("reload: [agent] rollup_retention_days %d -> %d",
		    rollup_retention_days, ag->rollup_retention_days);
		rollup_retention_days = ag->rollup_retention_days;
		if (rollup_retention_days > 0)
			uv_timer_start(&retention_timer, retention_cb, 0,
			    86400000);
	}

	if (api != NULL && (rc = api_set_token(api, token)) == 1) {
		if (token == NULL)
			log_warn("reload: [agent] api_token_file removed: the "
			    "API no longer asks for a token");
		else if (agent_now.api_token_file == NULL)
			log_info("reload: [agent] API token set from %s",
			    ag->api_token_file);
		else
			log_info("reload: [agent] API token replaced (from %s)",
			    ag->api_token_file);
	}
	agent_keep(ag);
}

/*
 * Apply CFG as a reload does: the token file re-read first, the monitors'
 * diff, then [agent].  Takes CFG over (on success manager_apply keeps it
 * as the running configuration; [agent] is applied after it, so that a
 * rejected file changes nothing at all).  Returns 0, or WP_EINVAL with the
 * problems in DIAG.  SIGHUP and the admin API (admin.h) both apply here.
 */
static unsigned applies; /* configurations reload_apply() applied */

static int
reload_apply(struct config *cfg, struct wp_diag *diag)
{
	struct cfg_agent ag;
	char *token = NULL;
	int rc = WP_EINVAL;

	if (reload_token(cfg, diag, &token) != 0) {
		config_free(cfg);
		goto done;
	}
	ag = cfg->agent;
	if (manager_apply(cfg, diag) != 0) {
		config_free(cfg);
		goto done;
	}
	statuspage_configure(cfg);
	agent_reload(&ag, token);
	cluster_run_monitors();
	if (!cluster_conf_same(&cfg->cluster, &cluster_now))
		log_warn("reload: [cluster] changed; the change takes effect "
		    "at the next restart");
	applies++;
	rc = 0;
done:
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return rc;
}

/* admin.h's load: the reload's, with the API's file in its place. */
static struct config *
admin_load(const struct cfg_overlay *ov, struct wp_diag *diag)
{
	return load_with(diag, 0, ov);
}

/*
 * A SIGHUP's reload.  The file is read and checked (config_load_overlay)
 * on a thread of its own, so the loop keeps checking meanwhile: with
 * 100,000 monitors the read is ~0.5 s, which stalled every slot due in it
 * (issue 17, S8: the p99 lateness).  The read touches nothing of the
 * loop's: the plugins are frozen, their key tables constant, the log
 * locked.  The rest -- the plugins' judgement of a rejected file
 * (manager_check) and the apply -- runs on the loop when the read is
 * done (host_post).  A SIGHUP during a read reads again after it; a read
 * that began before another apply (the admin API's) is read again, as
 * the file may have changed since it began; a read finishing while the
 * agent stops is dropped.
 */
struct reload_job {
	pthread_t thread;
	int threaded;            /* thread is joinable */
	struct wp_diag diag;
	struct config *cfg;      /* the read's (NULL: unreadable) */
	struct config *prev;     /* the running one when the read began (a
	                          * reference, dropped by the read), NULL:
	                          * none */
	int rc;                  /* config_load_overlay()'s */
	unsigned applies;        /* `applies` when the read began */
	struct opmon_op *op;     /* the "reload" operation */
	int64_t t0;              /* the SIGHUP, mono_us() */
	int64_t t_read;          /* the read's end, mono_us() */
};
static int stopping;                    /* begin_stop() has run */
static struct reload_job *reload_job;   /* the read in flight, or NULL */
static int reload_again;                /* a SIGHUP came during it */
static int reload_shut;                 /* main() is past the loop */

static void reload_start(struct opmon_op *op, int64_t t0);

/* The reload thread: read and check the file, then back to the loop. */
static void reload_read(struct reload_job *j);

static void
reload_done(void *arg)
{
	struct reload_job *j = arg;
	struct config *cfg = j->cfg;
	struct wp_diag *diag = &j->diag;

	if (j->threaded)
		(void)pthread_join(j->thread, NULL);
	reload_job = NULL;
	if (stopping || reload_shut) {
		config_free(cfg);
		opmon_end(j->op, OP_CANCELED, "the agent is stopping");
		goto out;
	}
	if (j->applies != applies) {
		/* Another apply came first: its file may be newer. */
		config_free(cfg);
		reload_start(j->op, j->t0);
		goto out;
	}
	if (j->rc != 0) {
		/* load_with()'s way: the plugins judge what they can. */
		if (cfg != NULL)
			manager_check(cfg, diag);
		config_free(cfg);
		cfg = NULL;
	} else
		show_warnings(diag);
	if (cfg != NULL && reload_apply(cfg, diag) != 0)
		cfg = NULL;
	if (cfg == NULL) {
		const char *p = diag->text ? diag->text : "";
		while (*p) {
			const char *nl = strchr(p, '\n');
			int len = nl ? (int)(nl - p) : (int)strlen(p);
			log_err("%.*s", len, p);
			p += len + (nl ? 1 : 0);
		}
		log_err("reload rejected (%d error(s)); the running "
		    "configuration stays", diag->errors);
		opmon_end(j->op, OP_FAILED, "invalid configuration");
	} else {
		log_info("reload applied in %.1f ms (the file read off the "
		    "loop in %.1f ms, applied on it in %.1f ms)",
		    (double)(mono_us() - j->t0) / 1000.0,
		    (double)(j->t_read - j->t0) / 1000.0,
		    (double)(mono_us() - j->t_read) / 1000.0);
		opmon_end(j->op, OP_SUCCEEDED, NULL);
	}
	if (reload_again && !stopping) {
		reload_again = 0;
		log_info("SIGHUP during the reload: reloading %s again",
		    opt.config);
		reload_start(opmon_begin(OPC_STARTUP, "reload", 10000),
		    mono_us());
	}
out:
	diag_free(diag);
	free(j);
}

static void
reload_read(struct reload_job *j)
{
	diag_init(&j->diag, opt.config);
	j->rc = config_load_prev(opt.config, opt.plugin_dir, loader_lookup,
	    NULL, NULL, j->prev, &j->diag, &j->cfg);
	/* Off the loop when an apply came meanwhile and this was the last
	 * reference. */
	config_free(j->prev);
	j->prev = NULL;
	j->t_read = mono_us();
}

static void *
reload_main(void *arg)
{
	struct reload_job *j = arg;

	reload_read(j);
	host_post(reload_done, j);
	return NULL;
}

/* Begin a read for the reload operation OP (a SIGHUP at T0). */
static void
reload_start(struct opmon_op *op, int64_t t0)
{
	struct reload_job *j = xcalloc(1, sizeof(*j));

	j->applies = applies;
	j->op = op;
	j->t0 = t0;
	/* The read copies its unchanged sections from the running file, which
	 * an apply (the admin API's) may replace meanwhile: it holds it. */
	if (manager_config() != NULL)
		j->prev = config_ref(manager_config());
	reload_job = j;
	if (pthread_create(&j->thread, NULL, reload_main, j) == 0) {
		j->threaded = 1;
		return;
	}
	/* No thread: read on the loop, as before. */
	reload_read(j);
	reload_done(j);
}

static void
reload(void)
{
	if (reload_job != NULL) {
		reload_again = 1;
		return;
	}
	log_info("SIGHUP: reloading %s", opt.config);
	reload_start(opmon_begin(OPC_STARTUP, "reload", 10000), mono_us());
}

/* main(), past the loop: a read still in flight ends before the plugins
 * are unloaded; its reload_done() (posted) drops it. */
static void
reload_shutdown(void)
{
	reload_shut = 1;
	if (reload_job != NULL && reload_job->threaded) {
		(void)pthread_join(reload_job->thread, NULL);
		reload_job->threaded = 0;
	}
}

/*
 * The shutdown drain waits for checks and deliveries in flight at most
 * this long, then cancels them: a stop must fit systemd's TimeoutStopSec
 * (90 s by default), whatever timeout a monitor has.  Cancelled checks are
 * not stored (the next start checks again); cancelled alerts stay in the
 * outbox.
 */
#define DRAIN_MAX_MS 10000
static uv_timer_t drain_timer;

static void
left_cluster(void *arg)
{
	(void)arg;
	uv_stop(main_loop);
}

/* The checks are done: leave the cluster (revoking the lease hands every
 * slot over at once), then stop the loop. */
static void
drained(void *arg)
{
	(void)arg;
	uv_timer_stop(&drain_timer);
	log_info("all checks finished; stopping");
	cluster_run_stop(left_cluster, NULL);
}

static void
drain_limit_cb(uv_timer_t *t)
{
	(void)t;
	log_warn("shutdown: %u check(s) and alert(s) still running after %d s; "
	    "cancelling them", opmon_running(OPC_CHECK) +
	    opmon_running(OPC_ALERT), DRAIN_MAX_MS / 1000);
	runtime_cancel_all();
}

static int stopping;
static int cluster_failed;
static void begin_stop(const char *why);

/* cluster-run.h's fatal(): this agent must not go on (its name is taken). */
static void
cluster_fatal(const char *msg)
{
	log_err("%s", msg);
	cluster_failed = 1;
	if (!stopping)
		begin_stop("cluster");
}

/* The orderly stop, once: no new checks, the API closed, and the loop
 * stopped when the checks in flight are done (drained()).  WHY starts the
 * log line. */
static void
begin_stop(const char *why)
{
	stopping = 1;
	log_info("%s: stopping; letting checks in flight finish (at most %d s)",
	    why, DRAIN_MAX_MS / 1000);
	uv_timer_stop(&retention_timer);
	api_stop(api);
	api = NULL;
	history_close(history);
	history = NULL;
	uv_timer_init(main_loop, &drain_timer);
	uv_timer_start(&drain_timer, drain_limit_cb, DRAIN_MAX_MS, 0);
	manager_stop(drained, NULL);
}

static void
on_signal(uv_signal_t *s, int signum)
{
	(void)s;
	if (signum == SIGHUP) {
		if (!stopping)
			reload();
		return;
	}
	if (stopping) {
		log_warn("second signal: exiting now");
		uv_stop(main_loop);
		return;
	}
	begin_stop(strsignal(signum));
}

/* Loop thread: the store found the database damaged and writes nothing
 * more (it logged why), so the agent stops; store_close() then reports
 * what was lost and the exit status is 1. */
static void
stop_on_damage(void *arg)
{
	(void)arg;
	if (!stopping)
		begin_stop("database damaged");
}

/* Writer thread: hand the stop to the loop. */
static void
store_damaged(void *arg)
{
	host_post(stop_on_damage, arg);
}

/* Loop thread: another agent took the database lock (daemon_watch_lock());
 * this one stops, and exits 1. */
static void
lock_lost(void *arg)
{
	(void)arg;
	if (!stopping)
		begin_stop("database lock lost");
}

/* ---- retention ---- */

struct retention_job {
	struct opmon_op *op;
	int64_t deleted;
};

static void
retention_end(void *arg)
{
	struct retention_job *j = arg;
	char msg[64];

	snprintf(msg, sizeof(msg), "%lld rows deleted", (long long)j->deleted);
	opmon_end(j->op, OP_SUCCEEDED, msg);
	if (j->deleted > 0)
		log_info("retention: %lld check(s) older than %d day(s) "
		    "deleted", (long long)j->deleted, retention_days);
	free(j);
}

/* Writer thread: hand the result to the loop. */
static void
retention_done(void *arg, int64_t deleted)
{
	struct retention_job *j = arg;

	j->deleted = deleted;
	host_post(retention_end, j);
}

static void
retention_cb(uv_timer_t *t)
{
	struct retention_job *j;

	(void)t;
	if ((retention_days <= 0 && rollup_retention_days <= 0) ||
	    store == NULL)
		return;
	j = xcalloc(1, sizeof(*j));
	j->op = opmon_begin(OPC_RETENTION, "retention", 3600000);
	/* A cutoff of 0 keeps everything (no row is older). */
	if (store_retention_history(store, retention_days > 0 ? wall_ms() -
	    (int64_t)retention_days * 86400000 : 0,
	    rollup_retention_days > 0 ? wall_ms() -
	    (int64_t)rollup_retention_days * 86400000 : 0, 1000,
	    retention_done, j) != 0) {
		opmon_end(j->op, OP_FAILED, "could not queue");
		free(j);
	}
}

static char *
read_token(const char *path)
{
	char why[PATH_MAX + 128], *token;

	if (cfg_read_secret(path, &token, why, sizeof(why)) != 0) {
		fprintf(stderr, "watchpost: api_token_file: %s\n", why);
		return NULL;
	}
	return token;
}

/* ---- API renderers ---- */

static char *
render_monitors(void *arg)
{
	(void)arg;
	return manager_monitors_json();
}

static char *
render_opmon(void *arg)
{
	(void)arg;
	return opmon_json();
}

static char *
render_metrics(void *arg)
{
	(void)arg;
	return metrics_render(store);
}

static char *
render_alerts(void *arg)
{
	(void)arg;
	return alert_api_json();
}

/* GET /api/cluster and /api/cluster/sd (cluster-run.h); only routed
 * with [cluster]. */
static char *
render_json(json_t *j)
{
	char *s;

	if (j == NULL)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static char *
render_cluster_sd(void *arg)
{
	(void)arg;
	return render_json(cluster_run_sd_json());
}

static char *
render_cluster(void *arg)
{
	(void)arg;
	return render_json(cluster_run_json());
}

/*
 * POST /api/alerts/NAME/test (a handler route: api.c checked the token,
 * the rule of every mutation): {"ok", "alert", "answer"} once the
 * receiver answered; 404 for a section that does not exist, 405 for
 * another method, 503 while stopping.
 */
#define ALERT_TEST_PREFIX "/api/alerts/"
#define ALERT_TEST_SUFFIX "/test"
/* How long a test delivery may take: a section's timeout is at most 1 h,
 * as the alert key table bounds it. */
#define ALERT_TEST_MS (3600 * 1000 + 60 * 1000)

struct test_call {
	struct api_job *job;
	char *name;
};

static void
test_answered(void *arg, int ok, const char *answer)
{
	struct test_call *t = arg;
	json_t *o = json_pack("{s:b, s:s, s:s}", "ok", ok, "alert", t->name,
	    "answer", answer);

	api_answer(t->job, 200, o ? json_dumps(o, JSON_COMPACT) : NULL, NULL,
	    NULL);
	json_decref(o);
	free(t->name);
	free(t);
}

static void
start_alert_test(void *arg, const struct api_request *req)
{
	size_t lp = strlen(ALERT_TEST_PREFIX), ls = strlen(ALERT_TEST_SUFFIX);
	size_t n = strlen(req->path);
	struct test_call *t;
	int rc;

	(void)arg;
	if (n <= lp + ls || strcmp(req->path + n - ls, ALERT_TEST_SUFFIX) != 0 ||
	    memchr(req->path + lp, '/', n - lp - ls) != NULL) {
		api_answer(req->job, 404, xstrdup("{\"error\":\"not found\"}"),
		    NULL, NULL);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_answer(req->job, 405, xstrdup("{\"error\":\"method not "
		    "allowed\"}"), "Allow", "POST");
		return;
	}
	t = xmalloc(sizeof(*t));
	t->job = req->job;
	t->name = xmalloc(n - lp - ls + 1);
	memcpy(t->name, req->path + lp, n - lp - ls);
	t->name[n - lp - ls] = '\0';
	api_defer(req->job, ALERT_TEST_MS);
	rc = alert_test_start(t->name, test_answered, t);
	if (rc != 0) {
		api_answer(req->job, rc == WP_EAGAIN ? 503 : 404,
		    xstrdup(rc == WP_EAGAIN ? "{\"error\":\"stopping\"}" :
		    "{\"error\":\"no such alert section\"}"), NULL, NULL);
		free(t->name);
		free(t);
	}
}

/* ---- --once ---- */

static void
once_finished(void *arg)
{
	(void)arg;
	uv_stop(main_loop);
}

static int
run_once(void)
{
	struct once_result *res;
	char err[256];
	size_t n, i, w = 4, tw = 4;
	int any_down = 0;

	res = manager_once((const char *const *)opt.names, opt.n_names,
	    once_finished, NULL, &n, err, sizeof(err));
	if (res == NULL) {
		fprintf(stderr, "watchpost: %s\n", err);
		return 3;
	}
	if (n > 0)
		uv_run(main_loop, UV_RUN_DEFAULT);
	for (i = 0; i < n; i++) {
		if (strlen(res[i].name) > w)
			w = strlen(res[i].name);
		if (strlen(res[i].type) > tw)
			tw = strlen(res[i].type);
	}
	for (i = 0; i < n; i++) {
		char lat[32] = "-";
		const char *detail = res[i].detail;
		char buf[300], clean[4 * sizeof(buf)];
		int up = mstate_is_up(res[i].state);

		if (res[i].latency_ms >= 0)
			snprintf(lat, sizeof(lat), "%.1f ms", res[i].latency_ms);
		/* Degraded (up, with a warning) says why, as down does. */
		if (res[i].state == ST_UP && res[i].status_code >= 0) {
			snprintf(buf, sizeof(buf), "status %d",
			    res[i].status_code);
			detail = buf;
		} else if (res[i].state != ST_UP) {
			snprintf(buf, sizeof(buf), "%s%s%s",
			    reason_name(res[i].reason),
			    res[i].detail[0] ? ": " : "",
			    res[i].detail);
			detail = buf;
		}
		/* The detail may hold what a server sent: escaped, as the
		 * log has it. */
		str_escape(detail, sizeof(buf), clean, sizeof(clean));
		/* No trailing blanks: the detail column may be empty. */
		printf("%-*s  %-*s  %-4s  %10s%s%s\n", (int)w, res[i].name,
		    (int)tw, res[i].type, mstate_label(res[i].state), lat,
		    *clean ? "  " : "", clean);
		if (!up)
			any_down = 1;
	}
	fflush(stdout);
	return any_down ? 2 : 0;
}

/* ---- start-up ---- */

static void
finish(void)
{
	/* Close what the loop still holds, then the rest. */
	cluster_run_free();
	manager_free();
	alert_free();
	uv_run(main_loop, UV_RUN_NOWAIT);
	/* Results lost (logged by the store) fail the exit status. */
	if (store_close(store) != 0)
		exit_code = 1;
	store = NULL;
	pool_shutdown(2000);
	/* Plugins release their watches and timers in fini(), which needs
	 * the loop still open. */
	loader_shutdown();
	host_free(cluster_host);
	cluster_host = NULL;
	cluster_conf_free(&cluster_now);
	host_loop_close();
	opmon_shutdown();
	agent_keep(NULL);
}

/*
 * Every check in flight holds a descriptor, and an outage keeps checks in
 * flight for their whole timeout (10,000 monitors at 10 s with half of
 * them timing out after 5 s hold 2,500).  The usual soft limit of 1,024 is
 * a leftover of select(); nothing here uses select (libuv and
 * libmicrohttpd poll with epoll), so the soft limit is raised to the hard
 * one, as Go's runtime does.  A failure only costs headroom, so it is
 * ignored.
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * --list-types: the plugins of -P DIR, else of the configuration's
 * plugin_dir (a file that cannot be read or has errors still names it;
 * without one, the built-in default), and the host's key tables.
 */
static int
list_types_main(void)
{
	struct wp_diag diag;
	struct config *cfg = NULL;
	char *dir;
	int rc;

	diag_init(&diag, opt.config);
	(void)config_load(opt.config, opt.plugin_dir, NULL, NULL, &diag, &cfg);
	diag_free(&diag);
	dir = xstrdup(cfg != NULL ? cfg->agent.plugin_dir :
	    opt.plugin_dir != NULL ? opt.plugin_dir : PKGLIBDIR);
	config_free(cfg);
	loader_load_dir(dir);
	loader_freeze();
	rc = list_types(stdout, opt.json) == 0 && fflush(stdout) == 0 ? 0 : 1;
	loader_shutdown();
	free(dir);
	return rc;
}

int
main(int argc, char **argv)
{
	struct wp_diag diag;
	struct config *cfg;
	struct opmon_op *op;
	char err[512];
	char *token = NULL;
	int rc;

	/* `watchpost report ...`: a reader of the database only. */
	if (argc > 1 && strcmp(argv[1], "report") == 0)
		return report_main(argc - 1, argv + 1);
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	/* A file-size limit (RLIMIT_FSIZE) must fail the write, not kill us:
	 * the store reports it and retries like a full disk. */
	signal(SIGXFSZ, SIG_IGN);
	raise_nofile();
	if (opt.daemon)
		daemon_detach();
	if (host_loop_init() != 0) {
		fprintf(stderr, "watchpost: cannot create the event loop\n");
		return 1;
	}
	/* --once prints a table and -t the problems: only warnings and errors
	 * go to the log (plugins loaded at start-up log their init at info). */
	log_setup(opt.once || opt.check_only || opt.test_alert ? WP_LOG_WARN :
	    WP_LOG_INFO, LOG_TO_STDERR);

	if (opt.list_types)
		return list_types_main();

	/* Configuration: its first type loads every plugin of plugin_dir;
	 * a file naming none still loads them, then loading ends. */
	cfg = load(&diag, 1);
	if (cfg == NULL) {
		print_diag(&diag, stderr);
		diag_free(&diag);
		return opt.once ? 3 : 1;
	}
	loader_load_dir(cfg->agent.plugin_dir);
	loader_freeze();
	spawn_set_max((unsigned)cfg->agent.exec_max);
	if (opt.check_only || opt.once || opt.test_alert)
		log_setup(opt.check_only ? cfg->agent.log_level : WP_LOG_WARN,
		    LOG_TO_STDERR);
	if (pool_init(2, 32) != 0) {
		fprintf(stderr, "watchpost: cannot start worker threads\n");
		return 1;
	}
	if (opt.test_alert != NULL) {
		/* One section, configured alone; no database. */
		rc = alert_test_cli(cfg, opt.test_alert, &diag, stdout);
		if (rc == WP_EINVAL) {
			print_diag(&diag, stderr);
			rc = 1;
		}
		fflush(stdout);
		diag_free(&diag);
		config_free(cfg);
		finish();
		return rc;
	}
	if (opt.check_only || opt.once) {
		manager_init(NULL);
		alert_init(NULL);
		if (manager_apply(cfg, &diag) != 0) {
			print_diag(&diag, stderr);
			diag_free(&diag);
			config_free(cfg);
			finish();
			return opt.once ? 3 : 1;
		}
		/* Warnings the plugins and sections gave (-t shows them). */
		if (opt.check_only && diag.warnings > 0)
			print_diag(&diag, stderr);
		diag_free(&diag);
		rc = 0;
		if (opt.check_only)
			printf("%s: configuration OK (%zu monitors)\n",
			    opt.config, manager_monitor_count());
		else
			rc = run_once();
		finish();
		return rc;
	}
	diag_free(&diag);

	log_setup(cfg->agent.log_level, log_target_of(&cfg->agent));
	agent_keep(&cfg->agent);
	/* Early exits free the configuration: LeakSanitizer checks them. */
	if (cfg->agent.pidfile != NULL && opt.daemon &&
	    daemon_take_pidfile(cfg->agent.pidfile) != 0) {
		config_free(cfg);
		return 1;
	}
	if (daemon_lock_database(cfg->agent.database) != 0) {
		config_free(cfg);
		return 1;
	}
	if (cfg->agent.api_token_file != NULL &&
	    (token = read_token(cfg->agent.api_token_file)) == NULL) {
		config_free(cfg);
		return 1;
	}

	/* Store: open and migrate, then the monitors and their state. */
	op = opmon_begin(OPC_STARTUP, "open database", STARTUP_STEP_MS);
	if (store_open(cfg->agent.database, 65536, &store, err,
	    sizeof(err)) != 0) {
		/* The store's message names the file itself. */
		fprintf(stderr, "watchpost: %s\n", err);
		free(token);
		config_free(cfg);
		return 1;
	}
	opmon_end(op, OP_SUCCEEDED, NULL);
	store_on_damage(store, store_damaged, NULL);
	/* Cluster mode: each check row says which agent, where, for which
	 * grid point (store.h); before the writer starts. */
	if (cfg->cluster.enabled && store_set_cluster(store,
	    cfg->cluster.name, cfg->cluster.location) != 0) {
		fprintf(stderr, "watchpost: %s: cannot prepare the cluster's "
		    "checks rows\n", cfg->agent.database);
		return 1;
	}
	retention_days = cfg->agent.retention_days;
	rollup_retention_days = cfg->agent.rollup_retention_days;
	manager_init(store);
	op = opmon_begin(OPC_STARTUP, "load alert outbox", STARTUP_STEP_MS);
	if (alert_init(store) != 0) {
		fprintf(stderr, "watchpost: cannot read the alert outbox\n");
		return 1;
	}
	/* GET /api/alerts lists what holds keep back, with why. */
	alert_set_held_source(hold_held_source, NULL);
	opmon_end(op, OP_SUCCEEDED, NULL);
	op = opmon_begin(OPC_STARTUP, "start database writer",
	    STARTUP_STEP_MS);
	if (store_start(store) != 0) {
		fprintf(stderr, "watchpost: cannot start the database writer\n");
		return 1;
	}
	opmon_end(op, OP_SUCCEEDED, NULL);
	if (cfg->agent.listen != NULL) {
		static struct api_routes routes = {
		    .monitors_json = render_monitors,
		    .opmon_json = render_opmon,
		    .metrics_text = render_metrics,
		    .admin = admin_handle,
		    .silences = hold_api,
		    .push = manager_push,
		    .alerts_json = render_alerts,
		    .cluster_json = NULL,
		    .alert_test = start_alert_test };
		static const struct admin_hooks hooks = { admin_load,
		    reload_apply };

		admin_init(&hooks);
		if (cfg->cluster.enabled) {
			routes.cluster_json = render_cluster;
			routes.cluster_sd_json = render_cluster_sd;
		}
		op = opmon_begin(OPC_STARTUP, "bind API", STARTUP_STEP_MS);
		/* The history routes' own read-only connection (the store
		 * has migrated the file by now). */
		if (history_open(cfg->agent.database, &history, err,
		    sizeof(err)) != 0)
			log_warn("api: no history routes: %s", err);
		routes.history = history;
		routes.status_snapshot = statuspage_snapshot;
		if (api_start(cfg->agent.listen, token, main_loop, &routes,
		    &api, err, sizeof(err)) != 0) {
			/* api_start() names the address itself. */
			fprintf(stderr, "watchpost: %s\n", err);
			free(token);
			config_free(cfg);
			return 1;
		}
		opmon_end(op, OP_SUCCEEDED, NULL);
	}
	free(token);
	if (daemon_drop_privileges(cfg->agent.user, cfg->agent.database) != 0)
		return 1;

	/* Signals from here on wait for the loop, which handles them once
	 * it runs: the "started" line below means SIGTERM stops cleanly. */
	uv_signal_init(main_loop, &sig_hup);
	uv_signal_init(main_loop, &sig_term);
	uv_signal_init(main_loop, &sig_int);
	uv_signal_start(&sig_hup, on_signal, SIGHUP);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	diag_init(&diag, opt.config);
	{
		size_t n = cfg->n_monitors;
		if (manager_apply(cfg, &diag) != 0) {
			print_diag(&diag, stderr);
			diag_free(&diag);
			return 1;
		}
		statuspage_configure(cfg);
		diag_free(&diag);
		if (cfg->cluster.enabled) {
			cluster_conf_copy(&cluster_now, &cfg->cluster);
			cluster_host = host_new("cluster", runtime_complete);
			alert_set_cluster(cfg->cluster.name,
			    cfg->cluster.location);
			if (cluster_run_start(&cfg->cluster, cluster_host,
			    api_address(api), cluster_fatal) != 0) {
				fprintf(stderr, "watchpost: cannot start cluster "
				    "mode\n");
				return 1;
			}
		}
		log_info("watchpost %s started: %zu monitor(s), database %s",
		    PACKAGE_VERSION, n, store ? "open" : "none");
	}

	/* Retention: shortly after start, then daily. */
	uv_timer_init(main_loop, &retention_timer);
	uv_timer_start(&retention_timer, retention_cb, 5000, 86400000);
	uv_unref((uv_handle_t *)&retention_timer);
	daemon_watch_lock(main_loop, lock_lost, NULL);

	daemon_ready();
	uv_run(main_loop, UV_RUN_DEFAULT);
	exit_code = cluster_failed;
	api_stop(api);
	history_close(history);
	history = NULL;
	statuspage_configure(NULL);
	reload_shutdown();
	finish();
	if (daemon_lock_lost())
		exit_code = 1;
	daemon_unlock_database();
	log_info("stopped");
	return exit_code;
}
