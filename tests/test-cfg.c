/*
 * test-cfg -- the configuration loader (core/cfg.c) against a fake plugin
 * lookup that knows the check types http, tcp and ping and the alert type
 * webhook.  Files are written to a fresh temporary folder; the contract's
 * sample is read from $abs_top_srcdir/tests/conf/sample.ini.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* The fake plugins and lookup */

/* The fakes' keys are plain strings: the value types are test-keys'. */
struct http_conf {
	const char *url, *method, *expected_status, *keyword, *body;
	const char *follow_redirects;
	struct wp_list header;
};
static const struct wp_key http_keys[] = {
	{ WP_KEY(WP_KT_STRING, "url", struct http_conf, url),
	  .flags = WP_KEY_REQUIRED },
	{ WP_KEY(WP_KT_STRING, "method", struct http_conf, method) },
	{ WP_KEY(WP_KT_STRING, "expected_status", struct http_conf,
	  expected_status) },
	{ WP_KEY(WP_KT_STRING, "keyword", struct http_conf, keyword) },
	{ WP_KEY(WP_KT_STRING, "header", struct http_conf, header),
	  .flags = WP_KEY_MULTI },
	{ WP_KEY(WP_KT_STRING, "body", struct http_conf, body) },
	{ WP_KEY(WP_KT_STRING, "follow_redirects", struct http_conf,
	  follow_redirects) },
};
struct tcp_conf {
	const char *host, *port;
};
static const struct wp_key tcp_keys[] = {
	{ WP_KEY(WP_KT_STRING, "host", struct tcp_conf, host),
	  .flags = WP_KEY_REQUIRED },
	{ WP_KEY(WP_KT_STRING, "port", struct tcp_conf, port),
	  .flags = WP_KEY_REQUIRED },
};
static const struct wp_key ping_keys[] = {
	{ WP_KEY(WP_KT_STRING, "host", struct tcp_conf, host),
	  .flags = WP_KEY_REQUIRED },
};
/* Lists "timeout", which is also a common alert key: the common one wins. */
struct webhook_conf {
	const char *url, *timeout;
	struct wp_list header;
};
static const struct wp_key webhook_keys[] = {
	{ WP_KEY(WP_KT_STRING, "url", struct webhook_conf, url),
	  .flags = WP_KEY_REQUIRED },
	{ WP_KEY(WP_KT_STRING, "header", struct webhook_conf, header),
	  .flags = WP_KEY_MULTI },
	{ WP_KEY(WP_KT_STRING, "timeout", struct webhook_conf, timeout) },
};

#define FAKE(n, k, table, conf) {                                           \
	.magic = WP_PLUGIN_MAGIC, .abi_major = WP_ABI_MAJOR,                \
	.abi_minor = WP_ABI_MINOR, .size = sizeof(struct wp_plugin),        \
	.name = (n), .version = "1", .description = "fake", .kind = (k),    \
	WP_KEYS(table, conf) }
static const struct wp_plugin plugins[] = {
	FAKE("http", WP_PLUGIN_CHECK, http_keys, struct http_conf),
	FAKE("tcp", WP_PLUGIN_CHECK, tcp_keys, struct tcp_conf),
	FAKE("ping", WP_PLUGIN_CHECK, ping_keys, struct tcp_conf),
	FAKE("webhook", WP_PLUGIN_ALERT, webhook_keys, struct webhook_conf),
};

struct lookups {
	int calls;
	char dir[PATH_MAX];
	char types[16][32];
};

static const struct wp_plugin *
fake_lookup(void *arg, const char *plugin_dir, int kind, const char *type,
    char *why, size_t whylen)
{
	struct lookups *l = arg;
	size_t i;

	if (l->calls < 16)
		snprintf(l->types[l->calls], sizeof(l->types[0]), "%d:%s",
		    kind, type);
	l->calls++;
	snprintf(l->dir, sizeof(l->dir), "%s", plugin_dir);
	for (i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++)
		if (plugins[i].kind == kind && strcmp(plugins[i].name, type) == 0)
			return &plugins[i];
	snprintf(why, whylen, "no plugin %s%s.so in %s",
	    kind == WP_PLUGIN_ALERT ? "alert-" : "", type, plugin_dir);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Fixture: a temporary folder, the last load's diagnostics and config */

static char tmpdir[PATH_MAX / 2]; /* as created */
static char realdir[PATH_MAX];  /* its realpath */
static char path[PATH_MAX];     /* the last file written */
static int nfile;
static struct wp_diag diag;
static struct config *cfg;
static struct lookups lk;

static int
group_setup(void **state)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-cfg.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL || realpath(tmpdir, realdir) == NULL)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	char p[PATH_MAX + 32];
	int i;

	for (i = 0; i < nfile; i++) {
		snprintf(p, sizeof(p), "%s/t%d.ini", tmpdir, i);
		unlink(p);
	}
	return rmdir(tmpdir);
}

static int
setup(void **state)
{
	diag_init(&diag, NULL);
	cfg = NULL;
	memset(&lk, 0, sizeof(lk));
	return 0;
}

static int
teardown(void **state)
{
	config_free(cfg);
	cfg = NULL;
	diag_free(&diag);
	return 0;
}

/* Write `len` bytes to a new file in tmpdir; its name is left in path. */
static void
write_bytes(const char *text, size_t len)
{
	FILE *f;

	snprintf(path, sizeof(path), "%s/t%d.ini", tmpdir, nfile++);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
write_text(const char *text)
{
	write_bytes(text, strlen(text));
}

/* Write text and load it (no -P); the result stays in cfg and diag. */
static int
load_text(const char *text)
{
	int rc;

	write_bytes(text, strlen(text));
	config_free(cfg);
	cfg = NULL;
	diag_free(&diag);
	diag_init(&diag, NULL);
	rc = config_load(path, NULL, fake_lookup, &lk, &diag, &cfg);
	if (rc == 0) {
		assert_non_null(cfg);
		assert_int_equal(diag.errors, 0);
	} else {
		assert_int_equal(rc, WP_EINVAL);
		/* Readable: the file as far as it could be checked. */
		assert_non_null(cfg);
	}
	return rc;
}

/* The diagnostics must be exactly "PATH" + each of the given suffixes. */
static void
expect_diag(int n, ...)
{
	struct sbuf want = { NULL, 0, 0 };
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < n; i++)
		sbuf_printf(&want, "%s%s\n", path, va_arg(ap, const char *));
	va_end(ap);
	if (diag.text == NULL || strcmp(diag.text, want.data) != 0)
		print_error("want:\n%sgot:\n%s", want.data,
		    diag.text ? diag.text : "(nothing)\n");
	assert_non_null(diag.text);
	assert_string_equal(diag.text, want.data);
	assert_int_equal(diag.errors, n);
	sbuf_free(&want);
}

/* Load text that has exactly one problem, reported as PATH + suffix. */
static void
expect_one(const char *text, const char *suffix)
{
	assert_int_equal(load_text(text), WP_EINVAL);
	expect_diag(1, suffix);
}

/* expect_one() for HEAD followed by EXTRA. */
static void
expect_one_after(const char *head, const char *extra, const char *suffix)
{
	char *t = xasprintf("%s%s", head, extra);

	expect_one(t, suffix);
	free(t);
}

static const char *
kv_value(const struct cfg_section *s, const char *key, int *line)
{
	size_t i;

	for (i = 0; i < s->n_kv; i++) {
		if (strcmp(s->kv[i].key, key) == 0) {
			if (line != NULL)
				*line = s->kv[i].line;
			return s->kv[i].value;
		}
	}
	return NULL;
}

/* S's definition hash is that of the rendering TEXT. */
static void
assert_def(const struct cfg_section *s, const char *text)
{
	assert_true(s->def_hash == cfg_def_hash(CFG_DEF_HASH_INIT, text,
	    strlen(text)));
}

static char *
in_dir(const char *name)
{
	return xasprintf("%s/%s", realdir, name);
}

/* ------------------------------------------------------------------------ */
/* Valid files */

static void
test_sample(void **state)
{
	const char *src = getenv("abs_top_srcdir");
	const struct cfg_monitor *m;
	const struct cfg_alert *a;
	char *want, real[PATH_MAX];
	int line = 0;

	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/tests/conf/sample.ini", src);
	assert_int_equal(config_load(path, NULL, fake_lookup, &lk, &diag,
	    &cfg), 0);
	assert_int_equal(diag.errors, 0);
	assert_null(diag.text);

	assert_non_null(realpath(src, real));
	want = xasprintf("%s/tests/conf/watchpost.db", real);
	assert_string_equal(cfg->agent.database, want);
	free(want);
	want = xasprintf("%s/tests/conf", real);
	assert_string_equal(cfg->dir, want);
	free(want);
	assert_string_equal(cfg->file, path);
	assert_string_equal(cfg->agent.plugin_dir, "/usr/lib/watchpost");
	assert_string_equal(cfg->agent.listen, "127.0.0.1:9405");
	assert_int_equal(cfg->agent.retention_days, 30);
	assert_int_equal(cfg->agent.log_level, WP_LOG_INFO);
	assert_int_equal(cfg->agent.log_syslog, 0);
	assert_string_equal(cfg->agent.user, "watchpost");
	assert_string_equal(cfg->agent.api_token_file, "/etc/watchpost/token");
	assert_string_equal(cfg->agent.pidfile, "/run/watchpost.pid");
	assert_int_equal(cfg->agent.line, 1);

	assert_int_equal(cfg->n_monitors, 3);
	assert_int_equal(cfg->n_alerts, 1);
	m = &cfg->monitors[0];
	assert_string_equal(m->s.name, "api-home");
	assert_string_equal(m->s.type, "http");
	assert_int_equal(m->s.line, 12);
	assert_int_equal(m->s.type_line, 13);
	assert_ptr_equal(m->s.plugin, &plugins[0]);
	assert_int_equal(m->s.n_kv, 1);
	assert_string_equal(m->s.kv[0].key, "url");
	assert_string_equal(m->s.kv[0].value, "https://example.org/health");
	assert_int_equal(m->s.kv[0].line, 14);
	assert_int_equal(m->interval_ms, 30000);
	assert_int_equal(m->timeout_ms, 5000);
	assert_int_equal(m->retries, 2);
	assert_int_equal(m->retry_interval_ms, 1000);
	assert_int_equal(m->enabled, 1);
	assert_int_equal(m->all_alerts, 0);
	assert_int_equal(m->n_alerts, 1);
	assert_string_equal(m->alerts[0], "ops");

	m = config_find_monitor(cfg, "db");
	assert_ptr_equal(m, &cfg->monitors[1]);
	assert_string_equal(m->s.type, "tcp");
	assert_int_equal(m->interval_ms, 60000);
	assert_int_equal(m->timeout_ms, 10000);
	assert_int_equal(m->retries, 2);
	assert_int_equal(m->retry_interval_ms, 1000);
	assert_int_equal(m->enabled, 1);
	assert_int_equal(m->all_alerts, 1);
	assert_int_equal(m->n_alerts, 0);
	assert_int_equal(m->s.n_kv, 2);
	assert_string_equal(kv_value(&m->s, "host", NULL), "127.0.0.1");
	assert_string_equal(kv_value(&m->s, "port", &line), "5432");
	assert_int_equal(line, 25);
	assert_def(&m->s, "type=tcp\nhost=127.0.0.1\nport=5432\n");

	m = config_find_monitor(cfg, "gateway");
	assert_non_null(m);
	assert_ptr_equal(m->s.plugin, &plugins[2]);
	assert_null(config_find_monitor(cfg, "ops"));

	a = config_find_alert(cfg, "ops");
	assert_ptr_equal(a, &cfg->alerts[0]);
	assert_string_equal(a->s.type, "webhook");
	assert_int_equal(a->s.line, 31);
	assert_int_equal(a->timeout_ms, 10000);
	assert_int_equal(a->s.n_kv, 1);
	assert_string_equal(kv_value(&a->s, "url", NULL),
	    "http://127.0.0.1:9000/hook");
	assert_null(config_find_alert(cfg, "db"));

	/* One lookup per distinct (kind, type), in the given plugin_dir. */
	assert_int_equal(lk.calls, 4);
	assert_string_equal(lk.dir, "/usr/lib/watchpost");
}

static void
test_defaults(void **state)
{
	const struct cfg_monitor *m;
	char *want;

	assert_int_equal(load_text(
	    "[monitor:a]\ntype = tcp\nhost = h\nport = 1\n"
	    "[monitor:b]\ntype = tcp\nhost = h\nport = 2\n"), 0);
	want = in_dir("watchpost.db");
	assert_string_equal(cfg->agent.database, want);
	free(want);
	assert_string_equal(cfg->agent.plugin_dir, PKGLIBDIR);
	assert_string_equal(lk.dir, PKGLIBDIR);
	assert_string_equal(cfg->agent.listen, "127.0.0.1:9405");
	assert_int_equal(cfg->agent.retention_days, 30);
	assert_int_equal(cfg->agent.log_level, WP_LOG_INFO);
	assert_int_equal(cfg->agent.log_syslog, -1);
	assert_null(cfg->agent.user);
	assert_null(cfg->agent.api_token_file);
	assert_null(cfg->agent.pidfile);
	assert_int_equal(cfg->agent.line, 0);
	assert_string_equal(cfg->dir, realdir);
	/* Two tcp monitors: the lookup (the loader's set of plugins loaded
	 * at start-up, no cache of cfg's own) is asked for each. */
	assert_int_equal(lk.calls, 2);
	m = config_find_monitor(cfg, "b");
	assert_non_null(m);
	assert_string_equal(kv_value(&m->s, "port", NULL), "2");
}

static void
test_agent_values(void **state)
{
	assert_int_equal(load_text("[agent]\nlisten = off\nlog = syslog\n"
	    "log_level = debug\nretention_days = 0\n"), 0);
	assert_null(cfg->agent.listen);
	assert_int_equal(cfg->agent.log_syslog, 1);
	assert_int_equal(cfg->agent.log_level, WP_LOG_DEBUG);
	assert_int_equal(cfg->agent.retention_days, 0);

	assert_int_equal(load_text("[agent]\nlisten = [::1]:0\n"), 0);
	assert_string_equal(cfg->agent.listen, "[::1]:0");
	assert_int_equal(load_text("[agent]\nlisten = localhost:65535\n"
	    "retention_days = 36500\nlog_level = error\n"), 0);
	assert_string_equal(cfg->agent.listen, "localhost:65535");
	assert_int_equal(cfg->agent.retention_days, 36500);
	assert_int_equal(cfg->agent.log_level, WP_LOG_ERROR);
}

static void
test_empty_file(void **state)
{
	assert_int_equal(load_text(""), 0);
	assert_int_equal(cfg->n_monitors, 0);
	assert_int_equal(cfg->n_alerts, 0);
	assert_int_equal(lk.calls, 0);
	assert_int_equal(load_text("; nothing but a comment\n\n# and this\n"),
	    0);
	assert_int_equal(cfg->n_monitors, 0);
}

static void
test_missing_file(void **state)
{
	char *want;

	snprintf(path, sizeof(path), "%s/does-not-exist.ini", tmpdir);
	assert_int_equal(config_load(path, NULL, fake_lookup, &lk, &diag,
	    &cfg), WP_EINVAL);
	assert_null(cfg);
	want = xasprintf("%s: cannot open: %s\n", path, strerror(ENOENT));
	assert_string_equal(diag.text, want);
	assert_int_equal(diag.errors, 1);
	free(want);
}

static void
test_monitor_values(void **state)
{
	const struct cfg_monitor *m;

	/* A timeout longer than the interval is allowed. */
	assert_int_equal(load_text("[monitor:a]\ntype = tcp\nhost = h\n"
	    "port = 1\ninterval = 100ms\ntimeout = 1m\nretries = 0\n"
	    "retry_interval = 0\nenabled = off\nalerts = none\n"
	    "[alert:x]\ntype = webhook\nurl = u\ntimeout = 1.5\n"), 0);
	m = &cfg->monitors[0];
	assert_int_equal(m->interval_ms, 100);
	assert_int_equal(m->timeout_ms, 60000);
	assert_int_equal(m->retries, 0);
	assert_int_equal(m->retry_interval_ms, 0);
	assert_int_equal(m->enabled, 0);
	assert_int_equal(m->all_alerts, 0);
	assert_int_equal(m->n_alerts, 0);
	assert_null(m->alerts);
	/* The common timeout is consumed, not handed to the plugin. */
	assert_int_equal(cfg->alerts[0].timeout_ms, 1500);
	assert_int_equal(cfg->alerts[0].s.n_kv, 1);

	/* Alerts may be named before their section; order is kept. */
	assert_int_equal(load_text("[monitor:a]\ntype = tcp\nhost = h\n"
	    "port = 1\nalerts = y , x\n"
	    "[alert:x]\ntype = webhook\nurl = u\n"
	    "[alert:y]\ntype = webhook\nurl = v\n"
	    "header = A: 1\nheader = B: 2\n"), 0);
	m = &cfg->monitors[0];
	assert_int_equal(m->all_alerts, 0);
	assert_int_equal(m->n_alerts, 2);
	assert_string_equal(m->alerts[0], "y");
	assert_string_equal(m->alerts[1], "x");
	assert_int_equal(cfg->alerts[1].s.n_kv, 3);
	assert_string_equal(cfg->alerts[1].s.kv[1].value, "A: 1");
	assert_string_equal(cfg->alerts[1].s.kv[2].value, "B: 2");
	assert_int_equal(cfg->alerts[1].s.kv[2].line, 13);
}

static void
test_plugin_kv(void **state)
{
	const struct cfg_section *s;

	/* Only the plugin's keys, in file order, repeatable ones repeated. */
	assert_int_equal(load_text("[monitor:w]\n"
	    "header = X-A: 1\n"
	    "type = http\n"
	    "interval = 5s\n"
	    "url = http://127.0.0.1/\n"
	    "header = X-B: 2\n"
	    "method = HEAD\n"), 0);
	s = &cfg->monitors[0].s;
	assert_int_equal(s->n_kv, 4);
	assert_string_equal(s->kv[0].key, "header");
	assert_string_equal(s->kv[0].value, "X-A: 1");
	assert_int_equal(s->kv[0].line, 2);
	assert_string_equal(s->kv[1].key, "url");
	assert_string_equal(s->kv[2].value, "X-B: 2");
	assert_string_equal(s->kv[3].key, "method");
	assert_int_equal(s->kv[3].line, 7);
	assert_int_equal(s->type_line, 3);
	assert_def(s, "header=X-A: 1\ntype=http\n"
	    "interval=5s\nurl=http://127.0.0.1/\nheader=X-B: 2\n"
	    "method=HEAD\n");
}

/* ------------------------------------------------------------------------ */
/* Errors, one at a time with their exact FILE:LINE */

static void
test_errors_structure(void **state)
{
	expect_one("url = x\n[agent]\n",
	    ":1: key \"url\" is outside any section (put it under [agent], "
	    "[monitor:NAME] or [alert:NAME])");
	expect_one("[agent]\n[foo]\nx = 1\n",
	    ":2: unknown section [foo] (expected [agent], [monitor:NAME], "
	    "[alert:NAME], [status], [maintenance:NAME] or [cluster])");
	expect_one("\n[monitors:web]\ntype = http\n",
	    ":2: unknown section [monitors:web] (expected [agent], "
	    "[monitor:NAME], [alert:NAME], [status], [maintenance:NAME] or [cluster]) "
	    "(did you mean [monitor:web]?)");
	expect_one("[agnet]\n",
	    ":1: unknown section [agnet] (expected [agent], [monitor:NAME], "
	    "[alert:NAME], [status], [maintenance:NAME] or [cluster]) (did you mean "
	    "[agent]?)");
	expect_one("[monitor:]\ntype = tcp\n",
	    ":1: monitor name \"\": must be 1-128 characters of letters, "
	    "digits, '.', '_' or '-'");
	expect_one("[monitor]\n", ":1: section [monitor] needs a name: "
	    "[monitor:NAME]");
	expect_one("[agent:x]\n", ":1: [agent] takes no name");
	expect_one("[alert:a/b]\ntype = webhook\n",
	    ":1: alert name \"a/b\": must be 1-128 characters of letters, "
	    "digits, '.', '_' or '-'");
	expect_one("[agent]\n[monitor:x\ntype = tcp\n",
	    ":2: unterminated section header (missing ']')");
	expect_one("[agent]\nretention_days 30\n",
	    ":2: expected \"key = value\", a [section] or a comment, not "
	    "\"retention_days 30\"");
	expect_one("[agent]\n = x\n", ":2: missing key name before '='");
	expect_one("[agent]\n[agent]\n",
	    ":2: duplicate [agent] section (first defined at line 1)");
	expect_one("[agent] junk\n",
	    ":1: unexpected text after ']': \"junk\"");
	expect_one("[monitor:x]\ntype = tcp\nhost = h\nport = 1\n\n"
	    "[monitor:x]\ntype = ping\nhost = h\n",
	    ":6: duplicate monitor name \"x\" (first defined at line 1)");
	expect_one("[alert:x]\ntype = webhook\nurl = u\n"
	    "[monitor:x]\ntype = tcp\nhost = h\nport = 1\n"
	    "[alert:x]\ntype = webhook\nurl = u\n",
	    ":8: duplicate alert name \"x\" (first defined at line 1)");
}

static void
test_errors_agent(void **state)
{
	expect_one("[agent]\ndatabse = x.db\n",
	    ":2: unknown key \"databse\" in [agent] (did you mean "
	    "\"database\"?)");
	expect_one("[agent]\nfrobnicate = 1\n",
	    ":2: unknown key \"frobnicate\" in [agent]");
	expect_one("[agent]\nlisten = 9405\n",
	    ":2: listen: \"9405\" is not HOST:PORT, [IPV6]:PORT or off");
	expect_one("[agent]\nlisten = ::1:9405\n",
	    ":2: listen: \"::1:9405\" is not HOST:PORT, [IPV6]:PORT or off");
	expect_one("[agent]\nlisten = 127.0.0.1:70000\n",
	    ":2: listen: port \"70000\" is not a number from 0 to 65535");
	expect_one("[agent]\nretention_days = 36501\n",
	    ":2: retention_days: \"36501\" is not a whole number from 0 to "
	    "36500");
	expect_one("[agent]\nlog_level = loud\n",
	    ":2: log_level: \"loud\" is not a valid value (use debug, info, "
	    "warn or error)");
	expect_one("[agent]\nlog = file\n",
	    ":2: log: \"file\" is not a valid value (use stderr or syslog)");
	expect_one("[agent]\ndatabase =\n", ":2: database: no value");
	expect_one("[agent]\nuser = a\nuser = b\n",
	    ":3: duplicate key \"user\" (first set at line 2)");
}

static void
test_errors_monitor(void **state)
{
	static const char head[] = "[monitor:m]\ntype = tcp\nhost = h\n"
	    "port = 1\n";

#define ONE(extra, suffix) expect_one_after(head, extra, suffix)
	ONE("interval = 10x\n", ":5: interval: \"10x\" is not a duration "
	    "(use e.g. 250ms, 10s, 5m, 1h)");
	ONE("interval = 50ms\n", ":5: interval: \"50ms\" is too short "
	    "(minimum 100ms)");
	ONE("timeout = 0\n", ":5: timeout: \"0\" is too short (minimum 1ms)");
	ONE("retry_interval = soon\n", ":5: retry_interval: \"soon\" is not "
	    "a duration (use e.g. 250ms, 10s, 5m, 1h)");
	ONE("retries = 101\n", ":5: retries: \"101\" is not a whole number "
	    "from 0 to 100");
	ONE("enabled = maybe\n", ":5: enabled: \"maybe\" is not a boolean "
	    "(use true or false)");
	ONE("interval = 40s\ninterval = 2s\n",
	    ":6: duplicate key \"interval\" (first set at line 5)");
	ONE("port = 2\n", ":5: duplicate key \"port\" (first set at line 4)");
	ONE("intervl = 5s\n", ":5: unknown key \"intervl\" for type tcp "
	    "(did you mean \"interval\"?)");
	ONE("alerts = pager\n", ":5: alerts: unknown alert \"pager\" (there "
	    "is no [alert:pager] section)");
	ONE("alerts =\n", ":5: alerts: no value (use \"none\" for no "
	    "alerts)");
	ONE("alerts = none, x\n[alert:x]\ntype = webhook\nurl = u\n",
	    ":5: alerts: \"none\" cannot be combined with alert names");
#undef ONE
	expect_one("[monitor:m]\nhost = h\n",
	    ":1: [monitor:m] has no \"type\" key");
	expect_one("[monitor:m]\ntype = tcp\nhost = h\n",
	    ":1: [monitor:m] is missing the required key \"port\" for type tcp");
	expect_one("[monitor:m]\ntype =\nhost = h\n", ":2: type: no value");
	/* Found by fuzz-cfg: type_file alone was no error at all. */
	expect_one("[monitor:m]\ntype_file = /etc/hostname\nhost = h\n",
	    ":2: type_file: the type is written in the section (type = NAME), "
	    "not read from a file");
	expect_one("[monitor:m]\ntype = ../evil\n",
	    ":2: type: \"../evil\" is not a plugin type name (letters, digits, "
	    "'_' and '-')");
	expect_one("[monitor:w]\ntype = http\nurll = http://x/\n"
	    "url = http://y/\n",
	    ":3: unknown key \"urll\" for type http (did you mean \"url\"?)");
	expect_one("[monitor:w]\ntype = http\nurl = a\nURL = b\n",
	    ":4: unknown key \"URL\" for type http (did you mean \"url\"?)");
	expect_one("[monitor:w]\ntype = http\nurl = a\nfollow = no\n",
	    ":4: unknown key \"follow\" for type http (did you mean "
	    "\"follow_redirects\"?)");
	expect_one("[monitor:w]\ntype = http\nurl = a\nurl = b\n",
	    ":4: duplicate key \"url\" (first set at line 3)");
	/* The alert plugin's "webhook" type is not a check type. */
	expect_one("[monitor:w]\ntype = webhook\nurl = a\n",
	    ":2: unknown check type \"webhook\": no plugin webhook.so in "
	    PKGLIBDIR);
}

static void
test_unknown_type_no_cascade(void **state)
{
	/* Keys of an unknown type are not judged: one error only. */
	expect_one("[monitor:q]\ntype = quic\nendpoint = x\nflavour = y\n",
	    ":2: unknown check type \"quic\": no plugin quic.so in "
	    PKGLIBDIR);
	expect_one("[alert:p]\ntype = pager\nnumber = 1\n",
	    ":2: unknown alert type \"pager\": no plugin alert-pager.so in "
	    PKGLIBDIR);
	/* Keys under a rejected header are dropped with it. */
	expect_one("[monitor:a b]\ntype = quic\nendpoint = x\n",
	    ":1: monitor name \"a b\": must be 1-128 characters of letters, "
	    "digits, '.', '_' or '-'");
}

static void
test_errors_alert(void **state)
{
	expect_one("[alert:a]\ntype = webhook\n",
	    ":1: [alert:a] is missing the required key \"url\" for type "
	    "webhook");
	expect_one("[alert:a]\ntype = webhook\nurl = u\ntimeout = never\n",
	    ":4: timeout: \"never\" is not a duration (use e.g. 250ms, 10s, "
	    "5m, 1h)");
	expect_one("[alert:a]\ntype = webhook\nurl = u\nretries = 3\n",
	    ":4: unknown key \"retries\" for type webhook");
}

static void
test_many_errors(void **state)
{
	assert_int_equal(load_text(
	    "orphan = 1\n"                          /* 1 */
	    "[agent]\n"                             /* 2 */
	    "retention_days = -1\n"                 /* 3 */
	    "[monitor:w]\n"                         /* 4 */
	    "type = http\n"                         /* 5 */
	    "interval = 1x\n"                       /* 6 */
	    "urll = http://127.0.0.1/\n"            /* 7 */
	    "alerts = ops, pager\n"                 /* 8 */
	    "this line has no equals sign\n"        /* 9 */
	    "[alert:ops]\n"                         /* 10 */
	    "type = webhook\n"                      /* 11 */
	    "url = http://127.0.0.1:9/\n"           /* 12 */
	    "[bogus\n"                              /* 13 */
	    "[monitor:w]\n"                         /* 14 */
	    "type = tcp\n"), WP_EINVAL);            /* 15 */
	expect_diag(9,
	    ":1: key \"orphan\" is outside any section (put it under [agent], "
	    "[monitor:NAME] or [alert:NAME])",
	    ":3: retention_days: \"-1\" is not a whole number from 0 to 36500",
	    ":4: [monitor:w] is missing the required key \"url\" for type http",
	    ":6: interval: \"1x\" is not a duration (use e.g. 250ms, 10s, 5m, "
	    "1h)",
	    ":7: unknown key \"urll\" for type http (did you mean \"url\"?)",
	    ":8: alerts: unknown alert \"pager\" (there is no [alert:pager] "
	    "section)",
	    ":9: expected \"key = value\", a [section] or a comment, not "
	    "\"this line has no equals sign\"",
	    ":13: unterminated section header (missing ']')",
	    ":14: duplicate monitor name \"w\" (first defined at line 4)");
}

/* ------------------------------------------------------------------------ */
/* Reading: long lines, CRLF, BOM, comments, indentation */

static void
long_url(size_t n)
{
	struct sbuf b = { NULL, 0, 0 };
	const struct cfg_monitor *m;
	char *url;
	size_t i;
	int line = 0;

	url = xmalloc(n + 1);
	memcpy(url, "http://127.0.0.1/?token=", 24);
	for (i = 24; i < n; i++)
		url[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
	url[n] = '\0';
	sbuf_printf(&b, "[monitor:long]\ntype = http\n; %s\nurl = %s   "
	    "; a comment\nheader = X-Token: %s\ninterval = 5s\n"
	    "[monitor:after]\ntype = tcp\nhost = h\nport = 1\n", url, url, url);
	assert_int_equal(load_text(b.data), 0);
	m = &cfg->monitors[0];
	assert_string_equal(kv_value(&m->s, "url", &line), url);
	assert_int_equal(line, 4);
	assert_int_equal(strlen(kv_value(&m->s, "header", &line)), n + 9);
	assert_int_equal(line, 5);
	assert_int_equal(m->interval_ms, 5000);
	assert_int_equal(cfg->monitors[1].s.line, 7);
	assert_int_equal(cfg->monitors[1].s.kv[1].line, 10);
	sbuf_free(&b);

	/* A long unknown key is still reported at its line, quoted short:
	 * its first 80 characters and "...". */
	memset(url, 'k', n);
	sbuf_printf(&b, "[monitor:long]\ntype = http\nurl = x\n"
	    "%s = 1\n", url);
	assert_int_equal(load_text(b.data), WP_EINVAL);
	assert_non_null(strstr(diag.text, ":4: unknown key \"kkkk"));
	assert_non_null(strstr(diag.text, "kkk...\" for type http\n"));
	assert_int_equal(diag.len, strlen(path) + 80 + 36);
	assert_int_equal(diag.errors, 1);
	sbuf_free(&b);
	free(url);
}

static void
test_long_4k(void **state)
{
	long_url(4096);
}

static void
test_long_64k(void **state)
{
	long_url(65536);
	long_url(70000);
}

static void
test_long_line_boundaries(void **state)
{
	char line[256], *text;
	size_t n;

	/* Around inih's 200-byte buffer: every length reads back intact. */
	for (n = 180; n < 215; n++) {
		memset(line, 'v', n);
		line[n] = '\0';
		text = xasprintf("[alert:a]\ntype = webhook\nurl = %s\n",
		    line);
		assert_int_equal(load_text(text), 0);
		assert_string_equal(cfg->alerts[0].s.kv[0].value, line);
		free(text);
	}
}

static void
test_crlf_bom(void **state)
{
	static const char text[] = "\xef\xbb\xbf[agent]\r\n"
	    "user = me\r\n"
	    "\r\n"
	    "[monitor:a]\r\n"
	    "type = tcp   \r\n"
	    "host = h ; comment\r\n"
	    "port = 1\r\n"
	    "zzz = 2\r\n";

	assert_int_equal(load_text(text), WP_EINVAL);
	expect_diag(1, ":8: unknown key \"zzz\" for type tcp");
	/* Without the bad last line it loads, with clean values. */
	write_bytes(text, sizeof(text) - 1 - strlen("zzz = 2\r\n"));
	diag_free(&diag);
	config_free(cfg);
	cfg = NULL;
	assert_int_equal(config_load(path, NULL, fake_lookup, &lk, &diag,
	    &cfg), 0);
	assert_int_equal(cfg->agent.line, 1);
	assert_string_equal(cfg->agent.user, "me");
	assert_string_equal(cfg->monitors[0].s.type, "tcp");
	assert_string_equal(cfg->monitors[0].s.kv[0].value, "h");
	assert_string_equal(cfg->monitors[0].s.kv[1].value, "1");
	assert_int_equal(cfg->monitors[0].s.kv[1].line, 7);
	assert_int_equal(cfg->monitors[0].s.line, 4);
}

static void
test_comments(void **state)
{
	const struct cfg_section *s;

	assert_int_equal(load_text(
	    "; leading comment\n"
	    "# hash comment\n"
	    "[monitor:c] ; the header may carry one\n"
	    "type = http;not-a-comment\n"
	    ), WP_EINVAL);
	/* ';' without a space before it is part of the value; an indented
	 * line is a key, not a continuation of the one above. */
	expect_diag(1,
	    ":4: type: \"http;not-a-comment\" is not a plugin type name "
	    "(letters, digits, '_' and '-')");
	assert_int_equal(load_text(
	    "[monitor:c]\n"
	    "type = http\n"
	    "url = http://h/a;b?c=d#e ; the comment\n"
	    "   method = POST\n"
	    "header = X: ;\n"
	    "body = # not a comment\n"
	    "keyword = a\t; tab comment\n"), 0);
	s = &cfg->monitors[0].s;
	assert_string_equal(kv_value(s, "url", NULL), "http://h/a;b?c=d#e");
	assert_string_equal(kv_value(s, "method", NULL), "POST");
	assert_string_equal(kv_value(s, "header", NULL), "X:");
	assert_string_equal(kv_value(s, "body", NULL), "# not a comment");
	assert_string_equal(kv_value(s, "keyword", NULL), "a");
	assert_int_equal(lk.calls, 1);
}

/* ------------------------------------------------------------------------ */
/* Paths */

static void
test_relative_paths(void **state)
{
	char *want;

	assert_int_equal(load_text("[agent]\ndatabase = data/wp.db\n"
	    "plugin_dir = plugins\napi_token_file = /etc/tok\n"
	    "pidfile = run/wp.pid\n"
	    "[monitor:a]\ntype = tcp\nhost = h\nport = 1\n"), 0);
	want = in_dir("data/wp.db");
	assert_string_equal(cfg->agent.database, want);
	free(want);
	want = in_dir("plugins");
	assert_string_equal(cfg->agent.plugin_dir, want);
	assert_string_equal(lk.dir, want);
	free(want);
	want = in_dir("run/wp.pid");
	assert_string_equal(cfg->agent.pidfile, want);
	free(want);
	assert_string_equal(cfg->agent.api_token_file, "/etc/tok");
}

static void
test_relative_file(void **state)
{
	char cwd[PATH_MAX], *base, *want;

	/* A config named relative to the current directory. */
	assert_int_equal(load_text("[agent]\ndatabase = x.db\n"), 0);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	base = strrchr(path, '/') + 1;
	config_free(cfg);
	cfg = NULL;
	assert_int_equal(config_load(base, NULL, fake_lookup, &lk, &diag,
	    &cfg), 0);
	assert_int_equal(chdir(cwd), 0);
	want = in_dir("x.db");
	assert_string_equal(cfg->agent.database, want);
	free(want);
	assert_string_equal(cfg->dir, realdir);
	assert_string_equal(cfg->file, base);
}

static void
test_plugin_dir_override(void **state)
{
	char cwd[PATH_MAX], *want;

	write_text("[agent]\nplugin_dir = /nowhere\n"
	    "[monitor:a]\ntype = tcp\nhost = h\nport = 1\n");
	assert_int_equal(config_load(path, "/opt/wp/plugins", fake_lookup,
	    &lk, &diag, &cfg), 0);
	assert_string_equal(cfg->agent.plugin_dir, "/opt/wp/plugins");
	assert_string_equal(lk.dir, "/opt/wp/plugins");
	config_free(cfg);
	cfg = NULL;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(config_load(path, "build/plugins", fake_lookup,
	    &lk, &diag, &cfg), 0);
	want = xasprintf("%s/build/plugins", cwd);
	assert_string_equal(cfg->agent.plugin_dir, want);
	assert_string_equal(lk.dir, want);
	free(want);
	assert_int_equal(diag.errors, 0);
}

/* ------------------------------------------------------------------------ */
/* Definitions for reload */

static uint64_t
definition_of(const char *text, const char *name)
{
	const struct cfg_monitor *m;

	assert_int_equal(load_text(text), 0);
	m = config_find_monitor(cfg, name);
	assert_non_null(m);
	return m->s.def_hash;
}

static void
test_definition(void **state)
{
	uint64_t a, b, c, d;

	a = definition_of("[monitor:a]\ntype = tcp\nhost = h\nport = 1\n"
	    "interval = 5s\n", "a");
	/* Same text further down, other spacing and comments: equal. */
	b = definition_of("; moved\n\n[monitor:z]\ntype=tcp\nhost=h\n"
	    "port=1\n\n[monitor:a]\ntype = tcp\n  host   =   h ; c\n"
	    "port = 1\ninterval = 5s\n", "a");
	c = definition_of("[monitor:a]\ntype = tcp\nhost = h\nport = 1\n"
	    "interval = 6s\n", "a");
	d = definition_of("[monitor:a]\ntype = tcp\nhost = h\nport = 2\n"
	    "interval = 5s\n", "a");
	assert_true(a == b);
	assert_true(a != c);
	assert_true(a != d);
}

/* ------------------------------------------------------------------------ */
/* Diagnostics */

/* A rejected file still comes back, with the sections a plugin may judge
 * marked: their kv holds only the plugin's keys, each once. */
static void
test_configurable(void **state)
{
	const struct cfg_monitor *m;

	assert_int_equal(load_text(
	    "[monitor:a]\ntype = tcp\nhost = h\nport = 1\nintervall = 5s\n"
	    "[monitor:b]\ntype = tcp\nhost = h\n"
	    "[monitor:c]\ntype = nosuch\nhost = h\n"
	    "[monitor:d]\ntype = ping\nhost = h\nhost = i\ninterval = soon\n"
	    "[monitor:e]\ntype = http\nurl = http://x/\n"
	    "[alert:w]\ntype = webhook\n"
	    "[alert:v]\ntype = webhook\nurl = http://y/\ntimeout = never\n"),
	    WP_EINVAL);
	assert_int_equal(cfg->n_monitors, 5);
	m = config_find_monitor(cfg, "a");
	assert_true(m->s.configurable);
	assert_int_equal(m->s.n_kv, 2);
	assert_string_equal(kv_value(&m->s, "port", NULL), "1");
	assert_false(config_find_monitor(cfg, "b")->s.configurable);
	assert_false(config_find_monitor(cfg, "c")->s.configurable);
	m = config_find_monitor(cfg, "d");
	assert_true(m->s.configurable);
	assert_int_equal(m->s.n_kv, 1);
	assert_string_equal(kv_value(&m->s, "host", NULL), "h");
	assert_true(config_find_monitor(cfg, "e")->s.configurable);
	assert_false(config_find_alert(cfg, "w")->s.configurable);
	assert_true(config_find_alert(cfg, "v")->s.configurable);
	assert_int_equal(diag.errors, 7);
}

static void
test_diag(void **state)
{
	struct wp_diag d;
	char *big;

	diag_init(&d, "f.ini");
	assert_null(d.text);
	assert_int_equal(d.errors, 0);
	diag_error(&d, 0, "cannot open: %s", "gone");
	diag_error(&d, 12, "bad %d", 7);
	assert_string_equal(d.text, "f.ini: cannot open: gone\n"
	    "f.ini:12: bad 7\n");
	assert_int_equal(d.len, strlen(d.text));
	assert_int_equal(d.errors, 2);
	/* A second pass appends; sorting merges by line, stable on ties. */
	diag_error(&d, 3, "third");
	diag_error(&d, 12, "twelve again");
	diag_error(&d, 0, "whole file");
	diag_sort(&d);
	assert_string_equal(d.text, "f.ini: cannot open: gone\n"
	    "f.ini: whole file\nf.ini:3: third\nf.ini:12: bad 7\n"
	    "f.ini:12: twelve again\n");
	assert_int_equal(d.len, strlen(d.text));
	assert_int_equal(d.errors, 5);
	diag_error(&d, 1, "one");
	diag_warning(&d, 2, "two %s", "\x1b");
	diag_sort(&d);
	assert_string_equal(d.text, "f.ini: cannot open: gone\n"
	    "f.ini: whole file\nf.ini:1: one\nf.ini:2: warning: two \\x1b\n"
	    "f.ini:3: third\nf.ini:12: bad 7\nf.ini:12: twelve again\n");
	assert_int_equal(d.errors, 6);
	assert_int_equal(d.warnings, 1);
	diag_free(&d);

	/* Whatever a plugin says is escaped and cut at 400 characters. */
	big = xmalloc(100001);
	memset(big, 'a', 100000);
	big[100000] = '\0';
	big[0] = '\033';
	diag_init(&d, "f.ini");
	diag_error(&d, 7, "%s", big);
	assert_int_equal(d.len, strlen("f.ini:7: ") + 4 + 396 + 3 + 1);
	assert_int_equal(strncmp(d.text, "f.ini:7: \\x1baaa", 16), 0);
	assert_string_equal(d.text + d.len - 5, "a...\n");
	free(big);
	diag_free(&d);
	assert_null(d.text);
	diag_free(NULL);
	config_free(NULL);
	assert_null(config_find_monitor(NULL, "x"));
	assert_null(config_find_alert(NULL, "x"));

	/* A sink set up for another file keeps its name after a load that
	 * reported this file's problems. */
	write_text("[agent]\nlog = x\n");
	diag_init(&d, "other");
	assert_int_equal(config_load(path, NULL, fake_lookup, &lk, &d, &cfg),
	    WP_EINVAL);
	assert_string_equal(d.file, "other");
	assert_non_null(strstr(d.text, ":2: log: "));
	assert_ptr_equal(strstr(d.text, path), d.text);
	diag_free(&d);
}

/* ------------------------------------------------------------------------ */
/* Durations, quoting, names, warnings */

static void
test_duration_parser(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{ "0", 0 }, { "1", 1000 }, { "1.5", 1500 }, { ".5", 500 },
		{ "5.", 5000 }, { "250ms", 250 }, { "10s", 10000 },
		{ "5m", 300000 }, { "1h", 3600000 }, { "1d", 86400000 },
		{ "0.25s", 250 }, { "1.0005s", 1001 }, { "007s", 7000 },
		{ "3650d", 3650LL * 86400000 },
	};
	static const char *const bad[] = {
		"", ".", "s", "ms", "-1", "+1", "-0", " 1", "1 ", "1 s",
		"1e3", "1E3", "1e3s", "0x10", "0X10", "0x1p3", "0x1p3s",
		"inf", "INF", "infinity", "nan", "NaN", "1..2", "1.2.3",
		"1ss", "1sm", "1S", "1H", "10x", "1,5", "１",
		"3651d", "9000000000000s", "99999999999999999999999",
		"18446744073709551617ms", "9223372036854775807ms",
	};
	int64_t ms;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -1;
		if (parse_duration(good[i].s, &ms) != 0 ||
		    ms != good[i].ms)
			print_error("\"%s\": %lld\n", good[i].s, (long long)ms);
		assert_int_equal(parse_duration(good[i].s, &ms), 0);
		assert_int_equal(ms, good[i].ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = -1;
		if (parse_duration(bad[i], &ms) != WP_EINVAL)
			print_error("accepted \"%s\" as %lld ms\n", bad[i],
			    (long long)ms);
		assert_int_equal(parse_duration(bad[i], &ms), WP_EINVAL);
		assert_int_equal(ms, -1);
	}
	assert_int_equal(parse_duration(NULL, &ms), WP_EINVAL);
}

static void
test_quote(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "\x1b[31mred", "\\x1b[31mred" },
		{ "a\nb\rc\td", "a\\nb\\rc\\td" },
		{ "say \"hi\" \\ bye", "say \\\"hi\\\" \\\\ bye" },
		{ "\x7f\x01", "\\x7f\\x01" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* kept */
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "\xff\xfe", "\\xff\\xfe" },          /* never UTF-8 */
		{ "\xc3", "\\xc3" },                   /* cut sequence */
		{ "\xc0\xaf", "\\xc0\\xaf" },          /* overlong '/' */
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" }, /* a surrogate */
		{ "\xc2\x9b", "\\xc2\\x9b" },          /* C1 control CSI */
	};
	char buf[QSTR_SIZE], small[8], *big;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(qstr(cases[i].in, QSTR_CHARS, buf,
		    sizeof(buf)), cases[i].out);
	assert_string_equal(QSTR(NULL), "");
	/* Cut at 80 characters, escapes counted as what they show. */
	big = xmalloc(10 * 1024 * 1024 + 1);
	memset(big, 'k', 10 * 1024 * 1024);
	big[10 * 1024 * 1024] = '\0';
	assert_int_equal(strlen(QSTR(big)), 83);
	assert_string_equal(QSTR(big) + 80, "...");
	memset(big, 0x1b, 100);
	assert_int_equal(strlen(QSTR(big)), 80 + 3);
	/* 80 four-byte characters: the worst case fills the buffer. */
	for (i = 0; i < 100; i++)
		memcpy(big + 4 * i, "\xf0\x9f\x98\x80", 4);
	assert_int_equal(strlen(qstr(big, QSTR_CHARS, buf,
	    sizeof(buf))), sizeof(buf) - 1);
	free(big);
	/* Exactly 80 characters: no ellipsis. */
	assert_string_equal(qstr("abcd", 4, buf, sizeof(buf)), "abcd");
	assert_string_equal(qstr("abcde", 4, buf, sizeof(buf)),
	    "abcd...");
	/* A small buffer still ends in "..." and a NUL. */
	assert_string_equal(qstr("abcdefgh", 80, small, sizeof(small)),
	    "abcd...");
	/* The log's form keeps tabs, quotes and backslashes. */
	str_escape("a\t\"b\"\\\n\x1b", 100, buf, sizeof(buf));
	assert_string_equal(buf, "a\t\"b\"\\\\n\\x1b");
}

static void
test_unbounded_input(void **state)
{
	struct sbuf b = { NULL, 0, 0 };
	char name[130];
	size_t n = 10 * 1024 * 1024;
	char *key = xmalloc(n + 1);

	/* A 10 MB unknown key gives a short message at its line. */
	memset(key, 'k', n);
	key[n] = '\0';
	sbuf_printf(&b, "[monitor:m]\ntype = tcp\nhost = h\nport = 1\n"
	    "%s = 1\n", key);
	assert_int_equal(load_text(b.data), WP_EINVAL);
	assert_int_equal(diag.errors, 1);
	assert_true(diag.len < strlen(path) + 200);
	assert_non_null(strstr(diag.text, ":5: unknown key \"kkkk"));
	sbuf_free(&b);
	free(key);

	/* Terminal escapes and invalid UTF-8 are escaped. */
	expect_one("[monitor:m]\ntype = tcp\nhost = h\nport = 1\n"
	    "\x1b[2J\xff\xfe = 1\n",
	    ":5: unknown key \"\\x1b[2J\\xff\\xfe\" for type tcp");
	expect_one("[agent]\nlog = \x1b]0;owned\x07\n",
	    ":2: log: \"\\x1b]0;owned\\x07\" is not a valid value (use "
	    "stderr or syslog)");

	/* Names: 128 bytes of the allowed characters, no more. */
	memset(name, 'n', 128);
	name[128] = '\0';
	sbuf_printf(&b, "[monitor:%s]\ntype = tcp\nhost = h\nport = 1\n"
	    "[alert:down-on-purpose.v1_2]\ntype = webhook\nurl = u\n", name);
	assert_int_equal(load_text(b.data), 0);
	assert_int_equal(strlen(cfg->monitors[0].s.name), 128);
	sbuf_free(&b);
	name[128] = 'n';
	name[129] = '\0';
	sbuf_printf(&b, "[agent]\n[monitor:%s]\ntype = tcp\n", name);
	assert_int_equal(load_text(b.data), WP_EINVAL);
	expect_diag(1, ":2: monitor name \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	    "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\": must be 1-128 "
	    "characters of letters, digits, '.', '_' or '-'");
	sbuf_free(&b);
	expect_one("\n\n[alert:x\xff]\ntype = webhook\nurl = u\n",
	    ":3: alert name \"x\\xff\": must be 1-128 characters of letters, "
	    "digits, '.', '_' or '-'");
	expect_one("[monitor:\xc3\xa9t\xc3\xa9]\ntype = tcp\n",
	    ":1: monitor name \"\xc3\xa9t\xc3\xa9\": must be 1-128 characters "
	    "of letters, digits, '.', '_' or '-'");
}

static void
test_duration_limits(void **state)
{
	const char *head = "[monitor:m]\ntype = tcp\nhost = h\nport = 1\n";

#define ONE(extra, suffix) expect_one_after(head, extra, suffix)
	ONE("interval = 8d\n", ":5: interval: \"8d\" is too long (maximum "
	    "168h)");
	ONE("timeout = 9000000000000s\n", ":5: timeout: \"9000000000000s\" is "
	    "not a duration (use e.g. 250ms, 10s, 5m, 1h)");
	ONE("timeout = 61m\n", ":5: timeout: \"61m\" is too long (maximum "
	    "1h)");
	ONE("retry_interval = 2h\n", ":5: retry_interval: \"2h\" is too long "
	    "(maximum 1h)");
	ONE("interval = 1e3\n", ":5: interval: \"1e3\" is not a duration "
	    "(use e.g. 250ms, 10s, 5m, 1h)");
	ONE("interval = 0x10\n", ":5: interval: \"0x10\" is not a duration "
	    "(use e.g. 250ms, 10s, 5m, 1h)");
	ONE("interval = inf\n", ":5: interval: \"inf\" is not a duration "
	    "(use e.g. 250ms, 10s, 5m, 1h)");
#undef ONE
	expect_one("[alert:a]\ntype = webhook\nurl = u\ntimeout = 2h\n",
	    ":4: timeout: \"2h\" is too long (maximum 1h)");
	assert_int_equal(load_text("[monitor:m]\ntype = tcp\nhost = h\n"
	    "port = 1\ninterval = 7d\ntimeout = 1h\nretry_interval = 1h\n"), 0);
	assert_int_equal(cfg->monitors[0].interval_ms, 7LL * 86400000);
	assert_int_equal(diag.warnings, 0);
}

/* A check that cannot finish within its interval: a warning, still valid. */
static void
test_fit_warnings(void **state)
{
	/* The defaults fit a 60 s interval: 10 s x 3 + 1 s x 2 = 32 s. */
	assert_int_equal(load_text("[monitor:m]\ntype = tcp\nhost = h\n"
	    "port = 1\n"), 0);
	assert_null(diag.text);
	/* Exactly the interval fits too. */
	assert_int_equal(load_text("[monitor:m]\ntype = tcp\nhost = h\n"
	    "port = 1\ninterval = 32s\n"), 0);
	assert_null(diag.text);

	assert_int_equal(load_text("[monitor:m]\ntype = tcp\nhost = h\n"
	    "port = 1\ninterval = 5s\ntimeout = 6s\n"), 0);
	assert_int_equal(diag.errors, 0);
	assert_int_equal(diag.warnings, 1);
	assert_non_null(strstr(diag.text, ":6: warning: timeout 6s is longer "
	    "than interval 5s: a check that times out runs into its next "
	    "slot, which is skipped\n"));
	assert_int_equal(cfg->monitors[0].timeout_ms, 6000);

	/* Retries that do not fit, reported at the retries line. */
	assert_int_equal(load_text("[monitor:m]\ntype = tcp\nhost = h\n"
	    "port = 1\ninterval = 10s\ntimeout = 3s\nretries = 2\n"
	    "retry_interval = 1s\n"), 0);
	assert_int_equal(diag.warnings, 1);
	assert_non_null(strstr(diag.text, ":7: warning: a failing check "
	    "takes up to 11s (timeout 3s x (1 + retries 2) + retry_interval "
	    "x retries), longer than interval 10s: the slots it runs into "
	    "are skipped\n"));
	/* Only the defaults: at the interval line. */
	assert_int_equal(load_text("[monitor:m]\ntype = tcp\nhost = h\n"
	    "port = 1\ninterval = 20s\n"), 0);
	assert_non_null(strstr(diag.text, ":5: warning: a failing check "
	    "takes up to 32s"));
	/* A warning beside an error: both reported, the file invalid. */
	assert_int_equal(load_text("[monitor:m]\ntype = tcp\nhost = h\n"
	    "port = 1\ninterval = 1s\nretries = x\n"), WP_EINVAL);
	assert_int_equal(diag.errors, 1);
	assert_int_equal(diag.warnings, 1);
}

/* [cluster] and the monitor keys locations and confirm (cluster.h). */
#define MON_TCP "[monitor:a]\ntype = tcp\nhost = h\nport = 1\n"
static void
test_cluster_section(void **state)
{
	const struct cluster_conf *cl;
	const struct cfg_monitor *m;
	char host[256];

	/* Without [cluster]: nothing of it. */
	assert_int_equal(load_text(MON_TCP), 0);
	assert_false(cfg->cluster.enabled);
	assert_int_equal(cfg->cluster.n_etcd, 0);
	assert_int_equal(cfg->monitors[0].n_locations, 0);
	/* The defaults. */
	assert_int_equal(load_text("[cluster]\netcd = http://127.0.0.1:2379\n"
	    MON_TCP), 0);
	cl = &cfg->cluster;
	assert_true(cl->enabled);
	assert_int_equal(cl->line, 1);
	assert_int_equal(cl->n_etcd, 1);
	assert_string_equal(cl->etcd[0], "http://127.0.0.1:2379");
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	assert_string_equal(cl->name, host);
	assert_string_equal(cl->location, "default");
	assert_string_equal(cl->prefix, "watchpost");
	assert_int_equal(cl->lease_ttl_ms, 6000);
	assert_int_equal(cl->join_grace_ms, 12000);
	assert_int_equal(cl->watch_progress_ms, 600000);
	assert_int_equal(cl->on_engine_loss, CLUSTER_OBSERVE);
	assert_null(cl->user);
	assert_null(cl->ca_file);
	/* Every key. */
	assert_int_equal(load_text("[cluster]\n"
	    "etcd = http://127.0.0.1:2379, https://127.0.0.2:22379\n"
	    "name = a1\nlocation = fra\ncluster = prod\nlease_ttl = 3s\n"
	    "join_grace = 1s\nwatch_progress_interval = 5s\n"
	    "on_engine_loss = strict\nuser = wp\n"
	    "password = s3cret\nca_file = /etc/ca.pem\n"
	    "client_cert = /etc/c.pem\nclient_key = /etc/k.pem\n"
	    MON_TCP "locations = fra, nyc, sgp\n"
	    "[monitor:b]\ntype = tcp\nhost = h\nport = 1\n"
	    "locations = fra, nyc, sgp\nconfirm = 3\n"), 0);
	cl = &cfg->cluster;
	assert_int_equal(cl->n_etcd, 2);
	assert_string_equal(cl->etcd[1], "https://127.0.0.2:22379");
	assert_string_equal(cl->name, "a1");
	assert_string_equal(cl->location, "fra");
	assert_string_equal(cl->prefix, "prod");
	assert_int_equal(cl->lease_ttl_ms, 3000);
	assert_int_equal(cl->join_grace_ms, 1000);
	assert_int_equal(cl->watch_progress_ms, 5000);
	assert_int_equal(cl->on_engine_loss, CLUSTER_STRICT);
	assert_string_equal(cl->user, "wp");
	assert_string_equal(cl->password, "s3cret");
	assert_string_equal(cl->ca_file, "/etc/ca.pem");
	assert_string_equal(cl->client_key, "/etc/k.pem");
	m = config_find_monitor(cfg, "a");
	assert_int_equal(m->n_locations, 3);
	assert_string_equal(m->locations[2], "sgp");
	assert_int_equal(m->confirm, 2);        /* a majority of 3 */
	assert_int_equal(config_find_monitor(cfg, "b")->confirm, 3);
	/* Errors, FILE:LINE. */
	expect_one("[cluster]\nname = a1\n", ":1: the section is missing the "
	    "required key \"etcd\" in [cluster]");
	expect_one("[cluster]\netcd = 127.0.0.1:2379\n",
	    ":2: etcd: \"127.0.0.1:2379\" is not an http:// or https:// URL");
	expect_one("[cluster]\netcd = http://h\nlease_ttl = 1s\n",
	    ":3: lease_ttl: \"1s\" is too short (minimum 2s)");
	expect_one("[cluster]\netcd = http://h\nlease_ttl = 2500ms\n",
	    ":3: lease_ttl: whole seconds (etcd grants leases in seconds)");
	expect_one("[cluster]\netcd = http://h\n"
	    "watch_progress_interval = 500ms\n",
	    ":3: watch_progress_interval: \"500ms\" is too short (minimum 1s)");
	expect_one("[cluster]\nname = a1\netcd = http://h\n"
	    "watch_progress_interval = 25h\n",
	    ":4: watch_progress_interval: \"25h\" is too long (maximum 24h)");
	expect_one("[cluster]\netcd = http://h\n"
	    "watch_progress_interval = soon\n",
	    ":3: watch_progress_interval: \"soon\" is not a duration (use "
	    "e.g. 250ms, 10s, 5m, 1h)");
	expect_one("[cluster]\netcd = http://h\non_engine_loss = panic\n",
	    ":3: on_engine_loss: \"panic\" is not a valid value "
	    "(use observe or strict)");
	expect_one("[cluster]\netcd = http://h\nname = a/1\n",
	    ":3: name \"a/1\": must be 1-128 characters of letters, digits, "
	    "'.', '_' or '-'");
	expect_one("[cluster]\netcd = http://h\nuser = wp\n",
	    ":3: user and password (or password_file) go together");
	expect_one("[cluster]\netcd = http://h\nclient_key = /k.pem\n",
	    ":3: client_cert and client_key go together");
	expect_one("[cluster]\netcd = http://h\n[cluster]\n",
	    ":3: duplicate [cluster] section (first defined at line 1)");
	expect_one(MON_TCP "locations = fra\n",
	    ":5: locations: cluster mode needs a [cluster] section");
	expect_one("[cluster]\netcd = http://h\n" MON_TCP
	    "locations = fra, fra\n", ":7: locations: \"fra\" twice");
	expect_one("[cluster]\netcd = http://h\n" MON_TCP
	    "locations = fra, nyc\nconfirm = 3\n",
	    ":8: confirm: 3 of 2 locations");
	expect_one("[cluster]\netcd = http://h\n" MON_TCP "confirm = 1\n",
	    ":7: confirm needs locations");
}

/* [status] and the monitor key group (the status page, statuspage.h). */
static void
test_status_section(void **state)
{
	const struct cfg_monitor *m;

	/* Absent: the defaults. */
	assert_int_equal(load_text("[monitor:a]\ntype = tcp\nhost = h\n"
	    "port = 1\n"), 0);
	assert_string_equal(cfg->status.title, "Status");
	assert_null(cfg->status.footer);
	assert_int_equal(cfg->status.public, 0);
	assert_int_equal(cfg->status.n_monitors, 0);
	assert_int_equal(cfg->status.line, 0);
	assert_null(cfg->monitors[0].group);

	assert_int_equal(load_text("[monitor:a]\ntype = tcp\nhost = h\n"
	    "port = 1\ngroup = Web <b>&\n"
	    "[status]\ntitle = Our <status>\nmonitors = a, web-*\n"
	    "monitors = db?\npublic = yes\nfooter = Call us\n"), 0);
	assert_string_equal(cfg->status.title, "Our <status>");
	assert_string_equal(cfg->status.footer, "Call us");
	assert_int_equal(cfg->status.public, 1);
	assert_int_equal(cfg->status.line, 6);
	assert_int_equal(cfg->status.n_monitors, 3);
	assert_string_equal(cfg->status.monitors[0], "a");
	assert_string_equal(cfg->status.monitors[1], "web-*");
	assert_string_equal(cfg->status.monitors[2], "db?");
	m = config_find_monitor(cfg, "a");
	assert_non_null(m);
	assert_string_equal(m->group, "Web <b>&");
	/* group is a common key: not among the plugin's lines. */
	assert_null(kv_value(&m->s, "group", NULL));

	expect_one("[status]\npublic = maybe\n",
	    ":2: public: \"maybe\" is not a boolean (use true or false)");
	expect_one("[status]\ntitle =\n", ":2: title: no value");
	expect_one("[status]\ncolour = red\n",
	    ":2: unknown key \"colour\" in [status]");
	expect_one("[status:x]\n", ":1: [status] takes no name");
	expect_one("[status]\n[status]\n",
	    ":2: duplicate [status] section (first defined at line 1)");
	expect_one("[stauts]\n",
	    ":1: unknown section [stauts] (expected [agent], [monitor:NAME], "
	    "[alert:NAME], [status], [maintenance:NAME] or [cluster]) (did you mean "
	    "[status]?)");
	expect_one("[monitor:a]\ntype = tcp\nhost = h\nport = 1\n"
	    "group =\n", ":5: group: no value");
	expect_one("[monitor:a]\ntype = tcp\nhost = h\nport = 1\n"
	    "group = a\tb\n", ":5: group: control characters are not "
	    "allowed");
}

/* ------------------------------------------------------------------------ */
/* config_load_prev(): unchanged sections copied from the previous load */

/* A and B are the same monitor: every field a load sets. */
static void
assert_same_monitor(const struct cfg_monitor *a, const struct cfg_monitor *b)
{
	size_t i, j;

	assert_string_equal(a->s.name, b->s.name);
	assert_string_equal(a->s.type, b->s.type);
	assert_int_equal(a->s.line, b->s.line);
	assert_int_equal(a->s.type_line, b->s.type_line);
	assert_true(a->s.def_hash == b->s.def_hash);
	assert_ptr_equal(a->s.plugin, b->s.plugin);
	assert_int_equal(a->s.configurable, b->s.configurable);
	assert_int_equal(a->s.reusable, b->s.reusable);
	assert_string_equal(a->s.file, b->s.file);
	assert_int_equal(a->s.n_lines, b->s.n_lines);
	for (i = 0; i < a->s.n_lines; i++) {
		assert_string_equal(a->s.lines[i].key, b->s.lines[i].key);
		assert_string_equal(a->s.lines[i].value, b->s.lines[i].value);
		assert_int_equal(a->s.lines[i].line, b->s.lines[i].line);
	}
	assert_int_equal(a->s.n_kv, b->s.n_kv);
	for (i = 0; i < a->s.n_kv; i++) {
		assert_string_equal(a->s.kv[i].key, b->s.kv[i].key);
		assert_string_equal(a->s.kv[i].value, b->s.kv[i].value);
		assert_int_equal(a->s.kv[i].line, b->s.kv[i].line);
	}
	assert_true(a->interval_ms == b->interval_ms);
	assert_true(a->timeout_ms == b->timeout_ms);
	assert_int_equal(a->retries, b->retries);
	assert_int_equal(a->all_alerts, b->all_alerts);
	assert_int_equal(a->n_alerts, b->n_alerts);
	for (i = 0; i < a->n_alerts; i++)
		assert_string_equal(a->alerts[i], b->alerts[i]);
	assert_int_equal(a->policy.down_after, b->policy.down_after);
	assert_int_equal(a->policy.n_esc, b->policy.n_esc);
	for (i = 0; i < a->policy.n_esc; i++) {
		assert_true(a->policy.esc[i].after_ms ==
		    b->policy.esc[i].after_ms);
		assert_int_equal(a->policy.esc[i].n_alerts,
		    b->policy.esc[i].n_alerts);
		for (j = 0; j < a->policy.esc[i].n_alerts; j++)
			assert_string_equal(a->policy.esc[i].alerts[j],
			    b->policy.esc[i].alerts[j]);
	}
	assert_true((a->group == NULL) == (b->group == NULL));
	if (a->group != NULL)
		assert_string_equal(a->group, b->group);
	assert_int_equal(a->n_depends_on, b->n_depends_on);
	for (i = 0; i < a->n_depends_on; i++)
		assert_string_equal(a->depends_on[i], b->depends_on[i]);
}

/* Load PATH with PREV into *OUT: config_load_prev()'s rc. */
static int
load_prev(const struct config *prev, struct wp_diag *d, struct config **out)
{
	diag_init(d, NULL);
	return config_load_prev(path, NULL, fake_lookup, &lk, NULL, prev, d,
	    out);
}

static const char prev_head[] =
    "[alert:a]\ntype = webhook\nurl = http://h/\n"
    "[alert:b]\ntype = webhook\nurl = http://h/b\n";
static const char prev_body[] =
    "[monitor:m1]\ntype = http\nurl = http://h/1\nalerts = a\n"
    "escalate = 10m b\ngroup = G\n"
    "[monitor:m2]\ntype = tcp\nhost = h\nport = 2\n"
    "[monitor:m3]\ntype = tcp\nhost = h\nport = 3\ndepends_on = m1\n"
    "[monitor:m4]\ntype = tcp\nhost = h\nport = 4\ntimeout = 2m\n";

/*
 * A load with the previous one gives what a fresh load of the same file
 * gives, whether its sections moved (a line inserted above them), changed
 * or not; a copied section still answers to the file's other sections (an
 * alert removed is reported), and a section with a warning is checked
 * again (its warning is reported again).
 */
static void
test_prev_reuse(void **state)
{
	struct config *prev, *fresh, *again;
	struct wp_diag d1, d2;
	char *text;
	size_t i;

	(void)state;
	/* The previous file: m4's timeout is over its interval (a warning). */
	text = xasprintf("%s%s", prev_head, prev_body);
	write_text(text);
	free(text);
	assert_int_equal(load_prev(NULL, &d1, &prev), 0);
	assert_int_equal(d1.warnings, 1);
	diag_free(&d1);
	assert_true(prev->monitors[0].s.reusable);
	assert_false(prev->monitors[3].s.reusable);

	/* Two lines more above the monitors, m2 changed. */
	text = xasprintf("; moved\n\n%s%s", prev_head, prev_body);
	memcpy(strstr(text, "port = 2"), "port = 9", 8);
	write_text(text);
	free(text);
	assert_int_equal(load_prev(NULL, &d1, &fresh), 0);
	assert_int_equal(load_prev(prev, &d2, &again), 0);
	assert_string_equal(d1.text, d2.text); /* m4's warning, both times */
	assert_int_equal(again->n_monitors, 4);
	for (i = 0; i < 4; i++)
		assert_same_monitor(&again->monitors[i], &fresh->monitors[i]);
	assert_int_equal(again->monitors[0].s.line, prev->monitors[0].s.line + 2);
	assert_ptr_not_equal(again->monitors[0].s.text,
	    prev->monitors[0].s.text);
	diag_free(&d1);
	diag_free(&d2);
	config_free(fresh);
	config_free(again);

	/* [alert:b] gone: m1, unchanged, is checked against the new file. */
	text = xasprintf("[alert:a]\ntype = webhook\nurl = http://h/\n%s",
	    prev_body);
	write_text(text);
	free(text);
	assert_int_equal(load_prev(NULL, &d1, &fresh), WP_EINVAL);
	assert_int_equal(load_prev(prev, &d2, &again), WP_EINVAL);
	assert_non_null(d1.text);
	assert_non_null(strstr(d1.text, "escalate"));
	assert_string_equal(d1.text, d2.text);
	diag_free(&d1);
	diag_free(&d2);
	config_free(fresh);
	config_free(again);

	/* A reference keeps it: the first config_free() leaves it whole. */
	assert_ptr_equal(config_ref(prev), prev);
	config_free(prev);
	assert_string_equal(prev->monitors[0].s.name, "m1");
	config_free(prev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_sample),
		T(test_prev_reuse),
		T(test_defaults),
		T(test_agent_values),
		T(test_empty_file),
		T(test_missing_file),
		T(test_monitor_values),
		T(test_plugin_kv),
		T(test_errors_structure),
		T(test_errors_agent),
		T(test_errors_monitor),
		T(test_unknown_type_no_cascade),
		T(test_errors_alert),
		T(test_many_errors),
		T(test_long_4k),
		T(test_long_64k),
		T(test_long_line_boundaries),
		T(test_crlf_bom),
		T(test_comments),
		T(test_relative_paths),
		T(test_relative_file),
		T(test_plugin_dir_override),
		T(test_definition),
		T(test_configurable),
		T(test_diag),
		T(test_duration_parser),
		T(test_quote),
		T(test_unbounded_input),
		T(test_duration_limits),
		T(test_fit_warnings),
		T(test_status_section),
		T(test_cluster_section),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
