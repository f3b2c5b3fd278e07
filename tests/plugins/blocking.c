/*
 * blocking.so -- a test-only third-party plugin that uses the simple,
 * blocking form of the ABI (check() on a worker thread).
 *
 * Keys: sleep (duration slept before answering, default 0), hang (true:
 * never return -- to test deadlines and the worker pool), fail (true:
 * answer "down" with WP_REASON_CHECK), marker (file to append one line per
 * call to, so tests can count calls).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <watchpost/plugin.h>

struct inst {
	int64_t sleep_ms;
	int hang;
	int fail;
	char *marker;
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
configure(void *state, const struct wp_section *sec, void **out)
{
	struct inst *in = calloc(1, sizeof(*in));
	size_t i;
	int rc = WP_OK;

	(void)state;
	if (in == NULL)
		return WP_ENOMEM;
	for (i = 0; i < sec->n_kv; i++) {
		const struct wp_kv *kv = &sec->kv[i];
		if (strcmp(kv->key, "sleep") == 0) {
			if (host->parse_duration(kv->value, &in->sleep_ms) != 0) {
				host->config_error(sec, kv, "not a duration");
				rc = WP_EINVAL;
			}
		} else if (strcmp(kv->key, "hang") == 0 ||
		    strcmp(kv->key, "fail") == 0) {
			int *p = kv->key[0] == 'h' ? &in->hang : &in->fail;
			if (host->parse_bool(kv->value, p) != 0) {
				host->config_error(sec, kv, "not a boolean");
				rc = WP_EINVAL;
			}
		} else if (strcmp(kv->key, "marker") == 0) {
			free(in->marker);
			in->marker = strdup(kv->value);
		}
	}
	if (rc != WP_OK) {
		free(in->marker);
		free(in);
		return rc;
	}
	*out = in;
	return WP_OK;
}

static void
release(void *state, void *p)
{
	struct inst *in = p;

	(void)state;
	if (in != NULL)
		free(in->marker);
	free(in);
}

static int
check(void *p, const struct wp_request *req, struct wp_result *res)
{
	struct inst *in = p;
	struct timespec ts;

	if (in->marker != NULL) {
		FILE *f = fopen(in->marker, "a");
		if (f != NULL) {
			fprintf(f, "%s %u\n", req->monitor, req->attempt);
			fclose(f);
		}
	}
	while (in->hang)
		pause();
	ts.tv_sec = in->sleep_ms / 1000;
	ts.tv_nsec = (in->sleep_ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
	res->ok = !in->fail;
	res->reason = in->fail ? WP_REASON_CHECK : WP_REASON_OK;
	res->detail = in->fail ? "told to fail" : NULL;
	res->latency_ms = (double)in->sleep_ms;
	return WP_OK;
}

static const struct wp_key keys[] = {
	{ "sleep", 0, "time to sleep before answering" },
	{ "hang", 0, "never answer" },
	{ "fail", 0, "answer down" },
	{ "marker", 0, "file that counts calls" },
	{ NULL, 0, NULL }
};

static const struct wp_plugin desc = {
	WP_PLUGIN_HEADER,
	.name = "blocking",
	.version = "test",
	.description = "test plugin using the blocking check form",
	.kind = WP_PLUGIN_CHECK,
	.keys = keys,
	.init = init,
	.configure = configure,
	.release = release,
	.check = check,
};
WP_PLUGIN_DEFINE(blocking, desc)
