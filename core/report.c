/*
 * report -- `watchpost report [-c FILE | --database DB] [--since 30d]
 * [--format table|csv|json] [NAME...]` (report.h).
 */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cfg.h"
#include "diag.h"
#include "history.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "report.h"
#include "util.h"

#ifndef DEFAULT_CONFIG
#define DEFAULT_CONFIG SYSCONFDIR "/watchpost/watchpost.ini"
#endif

enum format { F_TABLE, F_CSV, F_JSON };

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: watchpost report [-c FILE [-P DIR] | --database DB] [--since 30d]\n"
	    "                        [--format table|csv|json] [NAME...]\n"
	    "\n"
	    "  -c, --config FILE     read [agent] database from FILE (default\n"
	    "                        %s)\n"
	    "      --database DB     read DB instead\n"
	    "  -P, --plugin-dir DIR  the plugins FILE is checked with\n"
	    "      --since AGE       the window: whole hours or days, 1h to 400d\n"
	    "                        (default 30d)\n"
	    "      --format FORMAT   table (default), csv or json\n"
	    "  NAME...               only these monitors (default: all)\n"
	    "\n"
	    "Exit: 0 printed, 1 database unreadable or NAME unknown, 2 usage,\n"
	    "3 invalid configuration.  See watchpost(8).\n", DEFAULT_CONFIG);
}

/* The database named by FILE's [agent] database (resolved against its
 * folder), or NULL after printing the problems. */
static char *
database_of(const char *file, const char *plugin_dir)
{
	struct config *cfg = NULL;
	struct wp_diag diag;
	char *db = NULL;

	/* Loading plugins registers operations, which need the loop. */
	if (host_loop_init() != 0) {
		fprintf(stderr, "watchpost report: cannot create the event "
		    "loop\n");
		return NULL;
	}
	diag_init(&diag, file);
	if (config_load(file, plugin_dir, loader_lookup, NULL, &diag,
	    &cfg) != 0) {
		if (diag.text != NULL)
			fputs(diag.text, stderr);
	} else {
		db = xstrdup(cfg->agent.database);
	}
	config_free(cfg);
	diag_free(&diag);
	return db;
}

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void
csv_field(const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

/* "%.3f" or "" / "-" / null for NAN, by format. */
static void
num(char *buf, size_t len, double v, int prec, const char *none)
{
	if (isfinite(v))
		snprintf(buf, len, "%.*f", prec, v);
	else
		str_copy(buf, len, none);
}

static json_t *
jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

int
report_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "database", required_argument, NULL, 'D' },
		{ "plugin-dir", required_argument, NULL, 'P' },
		{ "since", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = DEFAULT_CONFIG, *dbarg = NULL, *since = "30d";
	const char *plugin_dir = NULL;
	struct history_monitor *mons = NULL, *sel = NULL;
	struct history_uptime *up = NULL;
	struct history *h = NULL;
	enum format fmt = F_TABLE;
	char err[1024], *db = NULL, a[32], b[32], c[32], d[32], e[32];
	int64_t window, now = wall_ms(), *ids = NULL;
	size_t n = 0, nsel = 0, i, j;
	json_t *root, *arr;
	int opt, rc = 1;

	log_setup(WP_LOG_WARN, LOG_TO_STDERR);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:P:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'D':
			dbarg = optarg;
			break;
		case 'P':
			plugin_dir = optarg;
			break;
		case 's':
			since = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "table") == 0)
				fmt = F_TABLE;
			else if (strcmp(optarg, "csv") == 0)
				fmt = F_CSV;
			else if (strcmp(optarg, "json") == 0)
				fmt = F_JSON;
			else {
				fprintf(stderr, "watchpost report: --format: "
				    "\"%s\" is not table, csv or json\n",
				    optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (history_parse_window(since, &window) != 0) {
		fprintf(stderr, "watchpost report: --since: \"%s\" is not whole "
		    "hours or days from 1h to 400d (e.g. 24h, 30d)\n", since);
		return 2;
	}
	if (dbarg != NULL) {
		db = xstrdup(dbarg);
	} else if ((db = database_of(config, plugin_dir)) == NULL) {
		rc = 3;
		goto out;
	}
	if (history_open(db, &h, err, sizeof(err)) != 0) {
		fprintf(stderr, "watchpost report: %s\n", err);
		goto out;
	}
	if (history_monitors(h, &mons, &n) != 0) {
		fprintf(stderr, "watchpost report: %s: cannot read the "
		    "monitors\n", db);
		goto out;
	}
	/* The named monitors in the order given, or all by name. */
	if (optind < argc) {
		sel = xcalloc((size_t)(argc - optind), sizeof(*sel));
		for (i = (size_t)optind; i < (size_t)argc; i++) {
			for (j = 0; j < n; j++)
				if (strcmp(mons[j].name, argv[i]) == 0)
					break;
			if (j == n) {
				fprintf(stderr, "watchpost report: %s: no monitor "
				    "\"%s\" in the database\n", db, argv[i]);
				goto out;
			}
			sel[nsel++] = mons[j];
		}
	} else {
		sel = mons;
		nsel = n;
		mons = NULL;
	}
	ids = xcalloc(nsel + 1, sizeof(*ids));
	up = xcalloc(nsel + 1, sizeof(*up));
	for (i = 0; i < nsel; i++)
		ids[i] = sel[i].id;
	if (history_uptime(h, ids, nsel, now, window, up) != 0) {
		fprintf(stderr, "watchpost report: %s: cannot read the "
		    "roll-ups\n", db);
		goto out;
	}
	switch (fmt) {
	case F_TABLE:
		printf("%-24s %-8s %9s %9s %7s %11s %9s %9s %9s %9s %9s\n",
		    "MONITOR", "TYPE", "UPTIME%", "CHECKS", "DOWN", "DOWNTIME_S",
		    "INCIDENTS", "AVG_MS", "P50_MS", "P95_MS", "P99_MS");
		for (i = 0; i < nsel; i++) {
			num(a, sizeof(a), up[i].uptime * 100, 3, "-");
			num(b, sizeof(b), up[i].latency_avg_ms, 1, "-");
			num(c, sizeof(c), up[i].latency_p50_ms, 1, "-");
			num(d, sizeof(d), up[i].latency_p95_ms, 1, "-");
			num(e, sizeof(e), up[i].latency_p99_ms, 1, "-");
			printf("%-24s %-8s %9s %9lld %7lld %11.0f %9lld %9s %9s "
			    "%9s %9s\n", sel[i].name, sel[i].type, a,
			    (long long)up[i].checks, (long long)up[i].down,
			    up[i].down_seconds, (long long)up[i].incidents, b, c,
			    d, e);
		}
		break;
	case F_CSV:
		printf("monitor,type,uptime,checks,down,down_seconds,incidents,"
		    "latency_avg_ms,latency_p50_ms,latency_p95_ms,"
		    "latency_p99_ms\n");
		for (i = 0; i < nsel; i++) {
			num(a, sizeof(a), up[i].uptime, 6, "");
			num(b, sizeof(b), up[i].latency_avg_ms, 3, "");
			num(c, sizeof(c), up[i].latency_p50_ms, 3, "");
			num(d, sizeof(d), up[i].latency_p95_ms, 3, "");
			num(e, sizeof(e), up[i].latency_p99_ms, 3, "");
			csv_field(sel[i].name);
			putchar(',');
			csv_field(sel[i].type);
			printf(",%s,%lld,%lld,%.3f,%lld,%s,%s,%s,%s\n", a,
			    (long long)up[i].checks, (long long)up[i].down,
			    up[i].down_seconds, (long long)up[i].incidents, b, c,
			    d, e);
		}
		break;
	case F_JSON:
		arr = json_array();
		for (i = 0; i < nsel; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:o, "
			    "s:I, s:I, s:I, s:I, s:f, s:I, s:o, s:o, s:o, s:o}",
			    "name", sel[i].name, "type", sel[i].type,
			    "uptime", jnum(up[i].uptime),
			    "checks", (json_int_t)up[i].checks,
			    "up", (json_int_t)up[i].up,
			    "degraded", (json_int_t)up[i].degraded,
			    "down", (json_int_t)up[i].down,
			    "down_seconds", up[i].down_seconds,
			    "incidents", (json_int_t)up[i].incidents,
			    "latency_avg_ms", jnum(up[i].latency_avg_ms),
			    "latency_p50_ms", jnum(up[i].latency_p50_ms),
			    "latency_p95_ms", jnum(up[i].latency_p95_ms),
			    "latency_p99_ms", jnum(up[i].latency_p99_ms)));
		root = json_pack("{s:s, s:I, s:I, s:o}", "since", since, "from",
		    (json_int_t)(nsel > 0 ? up[0].from_ms : now - window),
		    "to", (json_int_t)now, "monitors", arr);
		json_dumpf(root, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(root);
		break;
	}
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	history_close(h);
	free(mons);
	free(sel);
	free(ids);
	free(up);
	free(db);
	return rc;
}
