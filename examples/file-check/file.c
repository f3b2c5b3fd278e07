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
 * Every result carries the file's age as a measurement, so /metrics shows
 * how fresh the backup is, not only whether it is fresh enough.
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

/*
 * The keys, as the host parsed them.  The key table below says where each
 * value goes and which C type it has (plugin.h lists the storage of every
 * key type); the host fills this struct and hands it to configure().
 */
struct file_conf {
	const char *path;   /* WP_KT_PATH: absolute (a relative one is
	                     * resolved against the configuration's folder) */
	int64_t max_age_us; /* WP_KT_DURATION, in microseconds; 0: any age */
};

static const struct wp_key file_keys[] = {
	{ WP_KEY(WP_KT_PATH, "path", struct file_conf, path),
	    .flags = WP_KEY_REQUIRED,
	    .help = "the file to watch" },
	{ WP_KEY(WP_KT_DURATION, "max_age", struct file_conf, max_age_us),
	    .min = INT64_C(1000000), .max = INT64_C(3650) * 86400 * 1000000,
	    .help = "longest time since the last modification (default: "
	    "any)" },
};

/* One monitor. */
struct file_inst {
	const struct file_conf *c; /* the host keeps it until release() */
};

static const struct wp_host *host;

/* main thread, once: keep the host table for its clock. */
static int
file_init(const struct wp_host *h, void **state)
{
	host = h;
	*state = NULL;
	return WP_OK;
}

/*
 * Build one [monitor:NAME] instance.  The host has already rejected
 * unknown keys, a missing `path` and a `max_age` that is not a duration
 * from 1s to 10 years, each as FILE:LINE: message: the types said it all,
 * so nothing is left to judge here.  A rule the types cannot express (a key
 * that depends on another) would be reported with host->config_error(sec,
 * "key", ...) and WP_EINVAL.
 */
static int
file_configure(void *state, const struct wp_section *sec, const void *conf,
    void **out)
{
	struct file_inst *in;

	(void)state;
	(void)sec;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->c = conf;
	*out = in;
	return WP_OK;
}

static void
file_release(void *state, void *in)
{
	(void)state;
	free(in);
}

/*
 * Worker thread.  The message goes into the host's buffer req->detail and
 * the age into req->measurements: both live until the host has copied the
 * result, so nothing here needs static or thread-local storage.
 */
static int
file_check(void *p, const struct wp_request *req, struct wp_result *res)
{
	const struct file_conf *c = ((struct file_inst *)p)->c;
	struct stat st;
	int64_t age_us;

	if (stat(c->path, &st) != 0) {
		snprintf(req->detail, req->detail_size, "%s: %s", c->path,
		    strerror(errno));
		res->reason = WP_REASON_CHECK; /* its class is down */
		res->detail = req->detail;
		return WP_OK;
	}
	age_us = host->wall_us() - ((int64_t)st.st_mtim.tv_sec * 1000000 +
	    st.st_mtim.tv_nsec / 1000);
	if (age_us < 0)
		age_us = 0; /* modified "in the future": clock skew, not stale */
	if (req->max_measurements > 0) {
		/* Base units: seconds; the host names it "age_seconds". */
		req->measurements[0] = (struct wp_measurement){ "age",
		    (double)age_us / 1e6, WP_UNIT_SECONDS };
		res->measurements = req->measurements;
		res->n_measurements = 1;
	}
	if (c->max_age_us > 0 && age_us > c->max_age_us) {
		snprintf(req->detail, req->detail_size, "%s: modified %llds "
		    "ago, max_age is %llds", c->path,
		    (long long)(age_us / 1000000),
		    (long long)(c->max_age_us / 1000000));
		res->reason = WP_REASON_CHECK;
		res->detail = req->detail;
		return WP_OK;
	}
	res->reason = WP_REASON_OK; /* up; the detail stays NULL */
	return WP_OK;
}

/* The descriptor, watchpost_plugin() and the libltdl alias, from the one
 * name `file`, which must match the file name file.so. */
WP_CHECK_PLUGIN(file,
    .version = "2.0",
    .description = "a file exists and was modified recently",
    WP_KEYS(file_keys, struct file_conf),
    .init = file_init,
    .configure = file_configure,
    .release = file_release,
    .check = file_check)
