/*
 * blocking.so -- a test-only third-party plugin that uses the simple,
 * blocking form of the ABI (check() on a worker thread).
 *
 * Keys: sleep (duration slept before answering, default 0), hang (true:
 * never return -- to test deadlines and the worker pool), fail (true:
 * answer "down" with WP_REASON_CHECK), warn (true: answer "degraded" with
 * WP_REASON_SLOW), marker (file to append one line per
 * call to, so tests can count calls), fail_from (while that file exists,
 * answer "down" with its contents, up to 200 bytes, as the detail: any
 * bytes a test wants in an alert's error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <watchpost/plugin.h>

struct conf {
	int64_t sleep_us;
	int hang;
	int fail;
	int warn;
	const char *marker;
	const char *fail_from;
};

/* The instance is the conf itself: it lives until release() returns. */
struct inst {
	const struct conf *c;
};

static const struct wp_host *host;

static int
init(const struct wp_host *h, void **state)
{
	host = h;
	*state = NULL;
	return WP_OK;
}

static int
configure(void *state, const struct wp_section *sec, const void *conf,
    void **out)
{
	struct inst *in = calloc(1, sizeof(*in));

	(void)state;
	(void)sec;
	if (in == NULL)
		return WP_ENOMEM;
	in->c = conf;
	*out = in;
	return WP_OK;
}

static void
release(void *state, void *p)
{
	(void)state;
	free(p);
}

static int
check(void *p, const struct wp_request *req, struct wp_result *res)
{
	const struct conf *c = ((struct inst *)p)->c;
	struct timespec ts;
	FILE *ff;
	size_t n;

	if (c->marker != NULL) {
		FILE *f = fopen(c->marker, "a");
		if (f != NULL) {
			fprintf(f, "%s %u\n", req->monitor, req->attempt);
			fclose(f);
		}
	}
	while (c->hang)
		pause();
	ts.tv_sec = c->sleep_us / 1000000;
	ts.tv_nsec = (c->sleep_us % 1000000) * 1000;
	nanosleep(&ts, NULL);
	res->reason = c->fail ? WP_REASON_CHECK : c->warn ? WP_REASON_SLOW :
	    WP_REASON_OK;
	res->detail = c->fail ? "told to fail" : c->warn ? "told to warn" :
	    NULL;
	res->latency_us = c->sleep_us;
	if (c->fail_from != NULL && (ff = fopen(c->fail_from, "r")) != NULL) {
		n = fread(req->detail, 1, req->detail_size > 200 ? 200 :
		    req->detail_size - 1, ff);
		fclose(ff);
		req->detail[n] = '\0';
		res->reason = WP_REASON_CHECK;
		res->detail = req->detail;
	}
	return WP_OK;
}

static const struct wp_key keys[] = {
	{ WP_KEY(WP_KT_DURATION, "sleep", struct conf, sleep_us), .def = "0",
	  .help = "time to sleep before answering" },
	{ WP_KEY(WP_KT_BOOL, "hang", struct conf, hang),
	  .help = "never answer" },
	{ WP_KEY(WP_KT_BOOL, "fail", struct conf, fail),
	  .help = "answer down" },
	{ WP_KEY(WP_KT_BOOL, "warn", struct conf, warn),
	  .help = "answer degraded (slow)" },
	{ WP_KEY(WP_KT_STRING, "marker", struct conf, marker),
	  .help = "file that counts calls" },
	{ WP_KEY(WP_KT_PATH, "fail_from", struct conf, fail_from),
	  .help = "while this file exists: down, its contents the detail" },
};

WP_CHECK_PLUGIN(blocking,
    .version = "test",
    .description = "test plugin using the blocking check form",
    WP_KEYS(keys, struct conf),
    .init = init,
    .configure = configure,
    .release = release,
    .check = check)
