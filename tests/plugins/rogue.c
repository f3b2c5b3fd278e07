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

struct conf {
	int twice;
	int never;
};

static int
configure(void *state, const struct wp_section *sec, const void *conf,
    void **out)
{
	const struct conf *c = conf;
	struct inst *in;

	(void)state;
	if (c->never && c->twice) {
		host->config_error(sec, NULL, "never and complete_twice "
		    "exclude each other");
		return WP_EINVAL;
	}
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->twice = c->twice;
	in->never = c->never;
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

	r.latency_us = 1000;
	host->complete(o->handle, &r);
	if (++o->completions == 1) {
		host->timer_set(t, 50000);
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
		r.latency_us = 0;
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
	host->timer_set(o->timer, 10000);
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
	{ WP_KEY(WP_KT_BOOL, "complete_twice", struct conf, twice),
	  .help = "complete every operation twice" },
	{ WP_KEY(WP_KT_BOOL, "never", struct conf, never),
	  .help = "never complete an operation" },
};

WP_CHECK_PLUGIN(rogue,
    .version = "test",
    .description = "test plugin that breaks the exactly-once rule",
    WP_KEYS(keys, struct conf),
    .init = init,
    .configure = configure,
    .release = release,
    .start = start,
    .cancel = cancel)
