/*
 * rogue.so -- a test-only third-party plugin (asynchronous form) that
 * breaks the exactly-once completion rule on purpose, so tests can show
 * the host detects it, reports it and keeps running.
 *
 * Keys:
 *   complete_twice = true   complete each operation twice: once 10 ms
 *                           after start(), again 50 ms later, when the host
 *                           has long freed the operation (a stale handle)
 *   never = true            accept each operation and never complete it,
 *                           not even when cancelled
 * With neither, each operation completes "up" from inside start().
 *
 * The plugin keeps the handle (req->op) itself: after the first completion
 * the request it came in is no longer valid.
 */
#include <stdlib.h>
#include <string.h>

#include <watchpost/plugin.h>

struct inst {
	int twice;
	int never;
};

struct op {
	struct wp_op *handle;
	struct wp_timer *timer;
	int completions;
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
		int *p = strcmp(kv->key, "never") == 0 ? &in->never : &in->twice;

		if (host->parse_bool(kv->value, p) != 0) {
			host->config_error(sec, kv, "not a boolean");
			rc = WP_EINVAL;
		}
	}
	if (rc != WP_OK || (in->never && in->twice)) {
		if (rc == WP_OK)
			host->config_error(sec, NULL, "never and complete_twice "
			    "exclude each other");
		free(in);
		return WP_EINVAL;
	}
	*out = in;
	return WP_OK;
}

static void
release(void *state, void *p)
{
	(void)state;
	free(p);
}

static void
fire(struct wp_timer *t, void *arg)
{
	struct op *o = arg;
	struct wp_result r = WP_RESULT_INIT;

	r.ok = 1;
	r.latency_ms = 1;
	host->complete(o->handle, &r);
	if (++o->completions == 1) {
		host->timer_set(t, 50);
		return;
	}
	host->timer_free(t);
	free(o);
}

static int
start(void *p, const struct wp_request *req, void **opstate)
{
	struct inst *in = p;
	struct wp_result r = WP_RESULT_INIT;
	struct op *o;

	*opstate = NULL;
	if (in->never)
		return WP_OK;
	if (!in->twice) {
		r.ok = 1;
		r.latency_ms = 0;
		host->complete(req->op, &r);
		return WP_OK;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->handle = req->op;
	if ((o->timer = host->timer_new(host, fire, o)) == NULL) {
		free(o);
		return WP_ENOMEM;
	}
	host->timer_set(o->timer, 10);
	*opstate = o;
	return WP_OK;
}

/* Only a complete_twice operation cut short by its deadline gets here with
 * state: complete it (once) and stop.  A "never" operation ignores it. */
static void
cancel(void *p, void *opstate)
{
	struct op *o = opstate;
	struct wp_result r = WP_RESULT_INIT;

	(void)p;
	if (o == NULL)
		return;
	host->timer_free(o->timer);
	r.reason = WP_REASON_CANCELED;
	host->complete(o->handle, &r);
	free(o);
}

static const struct wp_key keys[] = {
	{ "complete_twice", 0, "complete every operation twice" },
	{ "never", 0, "never complete an operation" },
	{ NULL, 0, NULL }
};

static const struct wp_plugin desc = {
	WP_PLUGIN_HEADER,
	.name = "rogue",
	.version = "test",
	.description = "test plugin that breaks the exactly-once rule",
	.kind = WP_PLUGIN_CHECK,
	.keys = keys,
	.init = init,
	.configure = configure,
	.release = release,
	.start = start,
	.cancel = cancel,
};
WP_PLUGIN_DEFINE(rogue, desc)
