/*
 * file.so -- a watchpost check plugin, built outside the watchpost tree.
 *
 * Check type `file`: UP when `path` exists and, if `max_age` is set, was
 * modified at most `max_age` ago.  Point it at the heartbeat file a cron
 * job touches when it succeeds:
 *
 *   [monitor:backup]
 *   type = file
 *   path = /var/lib/backup/last-success
 *   max_age = 26h
 *   interval = 5m
 *
 * It uses the blocking form of the ABI: check() runs on one of the host's
 * worker threads, so a slow stat() (a hung NFS mount) never stalls the
 * agent, and the host's deadline still applies.
 */
#define _POSIX_C_SOURCE 200809L /* stat's st_mtim */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <watchpost/plugin.h>

/* One monitor's configuration. */
struct file_inst {
	char *path;
	int64_t max_age_ms; /* 0: any age is fine */
};

static const struct wp_host *host;

/* main thread, once: keep the host table for config_error and clocks. */
static int
file_init(const struct wp_host *h, void **state)
{
	host = h;
	*state = NULL;
	return WP_OK;
}

/*
 * Validate one [monitor:NAME] section.  The host has already rejected
 * unknown keys and a missing `path` (it is WP_KEY_REQUIRED), so only the
 * values are left to check.  Every problem goes to config_error so that
 * `watchpost -t` lists them all as FILE:LINE: message.
 */
static int
file_configure(void *state, const struct wp_section *sec, void **out)
{
	const struct wp_kv *path = wp_section_find(sec, "path");
	const struct wp_kv *age = wp_section_find(sec, "max_age");
	struct file_inst *in;
	int rc = WP_OK;

	(void)state;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	if (path->value[0] != '/') {
		host->config_error(sec, path, "must be absolute, not "
		    "\"%s\"", path->value);
		rc = WP_EINVAL;
	}
	if (age != NULL && (host->parse_duration(age->value,
	    &in->max_age_ms) != 0 || in->max_age_ms <= 0)) {
		host->config_error(sec, age, "must be a positive "
		    "duration such as 90s, 30m or 26h, not \"%s\"", age->value);
		rc = WP_EINVAL;
	}
	if (rc == WP_OK && (in->path = strdup(path->value)) == NULL)
		rc = WP_ENOMEM;
	if (rc != WP_OK) {
		free(in);
		return rc;
	}
	*out = in;
	return WP_OK;
}

static void
file_release(void *state, void *p)
{
	struct file_inst *in = p;

	(void)state;
	if (in != NULL)
		free(in->path);
	free(in);
}

/*
 * Worker thread.  The detail string must outlive this call (the host copies
 * it after check() returns), so it lives in a thread-local buffer: the next
 * check on this worker starts only after the host has copied it.
 */
static int
file_check(void *p, const struct wp_request *req, struct wp_result *res)
{
	static _Thread_local char detail[512];
	struct file_inst *in = p;
	struct stat st;
	int64_t age_ms;

	(void)req;
	if (stat(in->path, &st) != 0) {
		snprintf(detail, sizeof(detail), "%s: %s", in->path,
		    strerror(errno));
		res->ok = 0;
		res->reason = WP_REASON_CHECK;
		res->detail = detail;
		return WP_OK;
	}
	age_ms = host->wall_ms() - ((int64_t)st.st_mtim.tv_sec * 1000 +
	    st.st_mtim.tv_nsec / 1000000);
	if (age_ms < 0)
		age_ms = 0; /* modified "in the future": clock skew, not stale */
	if (in->max_age_ms > 0 && age_ms > in->max_age_ms) {
		snprintf(detail, sizeof(detail), "%s: modified %llds ago, "
		    "max_age is %llds", in->path, (long long)(age_ms / 1000),
		    (long long)(in->max_age_ms / 1000));
		res->ok = 0;
		res->reason = WP_REASON_CHECK;
		res->detail = detail;
		return WP_OK;
	}
	res->ok = 1;
	res->reason = WP_REASON_OK;
	return WP_OK;
}

static const struct wp_key file_keys[] = {
	{ "path", WP_KEY_REQUIRED, "absolute path of the file to watch" },
	{ "max_age", 0, "longest time since the last modification (any)" },
	{ NULL, 0, NULL }
};

static const struct wp_plugin file_plugin = {
	WP_PLUGIN_HEADER,
	.name = "file",
	.version = "1.0",
	.description = "a file exists and was modified recently",
	.kind = WP_PLUGIN_CHECK,
	.keys = file_keys,
	.init = file_init,
	.configure = file_configure,
	.release = file_release,
	.check = file_check,
};
WP_PLUGIN_DEFINE(file, file_plugin)
