/*
 * Fuzz target: the configuration loader (core/cfg.c) on whole INI files,
 * with a fake plugin table (an "http" and a "tcp" check type, a "webhook"
 * alert type, their keys as the real plugins declare them).
 *
 * Properties: config_load() succeeds exactly when it reports no error
 * (warnings allowed); every reported problem is one line that starts with
 * the file's name and a colon, is short (whatever the input, a message is
 * cut at 400 characters) and holds no control byte but tabs; a
 * configuration, loaded or rejected, is consistent (every monitor and
 * alert findable by name and at most 128 bytes long, alert references
 * pointing at existing alerts, the documented minimums and maximums
 * kept).
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "fuzz.h"

struct http_conf {
	const char *url, *keyword, *expected_status;
	struct wp_list header;
};
static const struct wp_key http_keys[] = {
	{ WP_KEY(WP_KT_URL, "url", struct http_conf, url),
	  .flags = WP_KEY_REQUIRED },
	{ WP_KEY(WP_KT_STRING, "keyword", struct http_conf, keyword) },
	{ WP_KEY(WP_KT_STRING, "header", struct http_conf, header),
	  .flags = WP_KEY_MULTI },
	{ WP_KEY(WP_KT_STRING, "expected_status", struct http_conf,
	  expected_status) },
};
struct tcp_conf {
	const char *host;
	int64_t port;
};
static const struct wp_key tcp_keys[] = {
	{ WP_KEY(WP_KT_HOST, "host", struct tcp_conf, host),
	  .flags = WP_KEY_REQUIRED },
	{ WP_KEY(WP_KT_INT, "port", struct tcp_conf, port),
	  .flags = WP_KEY_REQUIRED, .min = 1, .max = 65535 },
};
struct hook_conf {
	const char *url;
	struct wp_list header;
};
static const struct wp_key hook_keys[] = {
	{ WP_KEY(WP_KT_URL, "url", struct hook_conf, url),
	  .flags = WP_KEY_REQUIRED },
	{ WP_KEY(WP_KT_STRING, "header", struct hook_conf, header),
	  .flags = WP_KEY_MULTI },
};
#define FAKE(n, k, table, conf)                                             \
	{ .magic = WP_PLUGIN_MAGIC, .abi_major = WP_ABI_MAJOR,              \
	  .abi_minor = WP_ABI_MINOR, .size = sizeof(struct wp_plugin),      \
	  .name = (n), .kind = (k), WP_KEYS(table, conf) }
static const struct wp_plugin plugins[] = {
	FAKE("http", WP_PLUGIN_CHECK, http_keys, struct http_conf),
	FAKE("tcp", WP_PLUGIN_CHECK, tcp_keys, struct tcp_conf),
	FAKE("webhook", WP_PLUGIN_ALERT, hook_keys, struct hook_conf),
};

/* A configurable section's lines fill its plugin's table. */
static void
assert_fills(const struct config *cfg, const struct cfg_section *s)
{
	const struct wp_plugin *p = s->plugin;
	struct wp_diag d;
	void *conf;

	if (!s->configurable)
		return;
	diag_init(&d, cfg->file);
	conf = keys_fill(p->keys, p->n_keys, p->key_size, p->conf_size,
	    NULL, cfg->dir, s->kv, s->n_kv, &d);
	fuzz_assert(conf != NULL && d.errors == 0);
	keys_free(conf);
	diag_free(&d);
}

static const struct wp_plugin *
lookup(void *arg, const char *dir, int kind, const char *type, char *why,
    size_t len)
{
	size_t i;

	(void)arg;
	(void)dir;
	for (i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++)
		if (plugins[i].kind == kind &&
		    strcmp(plugins[i].name, type) == 0)
			return &plugins[i];
	snprintf(why, len, "no such plugin");
	return NULL;
}

static char path[64];

static void
remove_file(void)
{
	unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_diag diag;
	struct config *cfg = NULL;
	const char *line, *nl;
	size_t plen, flen, i, j, lines = 0;
	FILE *f;
	int rc;

	if (path[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		int fd;
		snprintf(path, sizeof(path), "%s/wp-fuzz-cfg.XXXXXX",
		    tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
		if ((fd = mkstemp(path)) < 0)
			abort();
		close(fd);
		atexit(remove_file);
	}
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();

	diag_init(&diag, NULL);
	rc = config_load(path, NULL, lookup, NULL, &diag, &cfg);
	fuzz_assert((rc == 0) == (diag.errors == 0));
	/* A readable file always comes back, valid or not. */
	fuzz_assert(cfg != NULL);
	plen = strlen(path);
	/* An included file's name: the folder, '/', a file name. */
	flen = cfg != NULL && cfg->agent.include != NULL &&
	    strlen(cfg->agent.include) + 1 + 255 > plen ?
	    strlen(cfg->agent.include) + 1 + 255 : plen;
	for (line = diag.text; line != NULL && *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		fuzz_assert(nl != NULL);
		/* ... or with a file of the include folder the input may
		 * name ([agent] include). */
		fuzz_assert((strncmp(line, path, plen) == 0 &&
		    line[plen] == ':') || (cfg != NULL &&
		    cfg->agent.include != NULL && strncmp(line,
		    cfg->agent.include, strlen(cfg->agent.include)) == 0));
		/* "PATH:LINE: warning: " and 400 characters of 4 bytes. */
		fuzz_assert((size_t)(nl - line) <= flen + 32 + 400 * 4 + 3);
		for (i = 0; line + i < nl; i++)
			fuzz_assert(((unsigned char)line[i] >= 0x20 &&
			    line[i] != 0x7f) || line[i] == '\t');
		lines++;
	}
	fuzz_assert(lines == (size_t)diag.errors + (size_t)diag.warnings);
	if (cfg != NULL) {
		for (i = 0; i < cfg->n_monitors; i++) {
			const struct cfg_monitor *m = &cfg->monitors[i];
			fuzz_assert(config_find_monitor(cfg, m->s.name) == m);
			fuzz_assert(rc != 0 || m->s.plugin != NULL);
			fuzz_assert(!m->s.configurable || m->s.plugin != NULL);
			assert_fills(cfg, &m->s);
			fuzz_assert(m->interval_ms >= 100 &&
			    m->interval_ms <= 7LL * 86400000 &&
			    m->timeout_ms >= 1 && m->timeout_ms <= 3600000 &&
			    m->retry_interval_ms <= 3600000 &&
			    m->retries >= 0 && m->retries <= 100);
			fuzz_assert(strlen(m->s.name) <= 128);
			for (j = 0; j < m->n_alerts; j++)
				fuzz_assert(config_find_alert(cfg,
				    m->alerts[j]) != NULL);
		}
		for (i = 0; i < cfg->n_alerts; i++) {
			fuzz_assert(config_find_alert(cfg,
			    cfg->alerts[i].s.name) == &cfg->alerts[i]);
			fuzz_assert(strlen(cfg->alerts[i].s.name) <= 128);
			assert_fills(cfg, &cfg->alerts[i].s);
		}
	}
	config_free(cfg);
	diag_free(&diag);
	return 0;
}
