/*
 * push.so -- the "push" check: a dead-man switch for cron jobs and batch
 * work.  Nothing is probed; the job reports in with GET or POST
 * /push/TOKEN on the API listener, and the monitor is UP while those
 * heartbeats arrive at least every interval + grace.
 *
 * Two ways in, both on the loop thread (so the instance needs no lock):
 *   inbound()  a push the host routed here by route_key() (the token): it
 *              is recorded at once as a finished check of the monitor --
 *              up, or down with the job's msg when it says status=down --
 *              with duration_ms as the measurement "duration" (seconds);
 *   start()    the scheduled check judges the heartbeats: up when the last
 *              push was a heartbeat within interval + grace, down (reason
 *              check) when it is older or the last push said down.  Before
 *              the first heartbeat is due (interval + grace after the
 *              instance was built: start-up, or a changed definition) it
 *              returns WP_EAGAIN and the host records nothing, so a new
 *              monitor stays pending -- or keeps the state it had before a
 *              restart -- until a push comes or that time has passed.
 * The heartbeat times live in the instance: a restart or a change of the
 * monitor's definition starts the clock again (watchpost.ini(5)).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <watchpost/plugin.h>

#include "push-query.h"

/* The token is a URL path segment: 16 to 128 unreserved characters. */
#define TOKEN_MIN 16
#define TOKEN_MAX 128

struct push_conf {
	const char *token;
	int64_t grace_us;       /* 0 (unset): interval / 2 */
};

struct push_inst {
	const char *token;      /* in the host's conf (lives as long) */
	int64_t interval_us, grace_us;
	int64_t created_us;     /* monotonic */
	int beat;               /* a heartbeat (an up push) arrived */
	int64_t beat_us;        /* the last one's time, monotonic */
	int down;               /* the last push said status=down */
	char msg[PUSH_MSG_MAX + 1]; /* its msg */
};

static const struct wp_host *host;

static const struct wp_key push_keys[] = {
	{ WP_KEY(WP_KT_SECRET, "token", struct push_conf, token),
	  .flags = WP_KEY_REQUIRED,
	  .help = "the push URL's secret, 16 to 128 of A-Z a-z 0-9 - . _ ~ "
	          "(usually token_file = PATH)" },
	{ WP_KEY(WP_KT_DURATION, "grace", struct push_conf, grace_us),
	  .min = 1000, .max = INT64_C(7) * 86400 * 1000000,
	  .help = "how late a heartbeat may be beyond interval (default: "
	          "half the interval)" },
};

static int
push_init(const struct wp_host *h, void **state)
{
	host = h;
	*state = NULL;
	return WP_OK;
}

static int
token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static int
push_configure(void *state, const struct wp_section *sec, const void *conf,
    void **out)
{
	const struct push_conf *c = conf;
	struct push_inst *in;
	size_t len, i;
	int64_t interval_us;

	(void)state;
	/* Never name the value: it is the secret. */
	len = strlen(c->token);
	for (i = 0; i < len && token_char((unsigned char)c->token[i]); i++)
		;
	if (len < TOKEN_MIN || len > TOKEN_MAX || i < len) {
		host->config_error(sec, "token", "must be %d to %d characters "
		    "of A-Z a-z 0-9 - . _ ~ (it is %zu bytes%s); e.g. "
		    "openssl rand -hex 24", TOKEN_MIN, TOKEN_MAX, len,
		    i < len ? ", with other characters" : "");
		return WP_EINVAL;
	}
	interval_us = sec->size > offsetof(struct wp_section, interval_us) ?
	    sec->interval_us : 0;
	if (interval_us <= 0) {
		host->config_error(sec, NULL, "push needs the host's "
		    "interval (a watchpost older than ABI 2.1?)");
		return WP_EINVAL;
	}
	in = host->alloc(sizeof(*in));
	if (in == NULL)
		return WP_ENOMEM;
	memset(in, 0, sizeof(*in));
	in->token = c->token;
	in->interval_us = interval_us;
	/* Unset is 0 (the key's minimum is 1 ms): half the interval. */
	in->grace_us = c->grace_us > 0 ? c->grace_us : interval_us / 2;
	in->created_us = host->now_us();
	*out = in;
	return WP_OK;
}

static void
push_release(void *state, void *inst)
{
	(void)state;
	host->free(inst);
}

static const char *
push_route_key(void *inst)
{
	return ((struct push_inst *)inst)->token;
}

/* US as "5m12s", "2h", "1d3h", "250ms" into BUF. */
static void
fmt_dur(int64_t us, char *buf, size_t len)
{
	static const struct { const char *u; int64_t us; } units[] = {
		{ "d", INT64_C(86400000000) }, { "h", INT64_C(3600000000) },
		{ "m", INT64_C(60000000) }, { "s", INT64_C(1000000) },
	};
	size_t i, n = 0;
	int parts = 0;

	if (us < 1000000) {
		snprintf(buf, len, "%" PRId64 "ms", us / 1000);
		return;
	}
	buf[0] = '\0';
	for (i = 0; i < 4 && parts < 2; i++) {
		if (us >= units[i].us || (parts > 0 && us > 0)) {
			int64_t q = us / units[i].us;

			us %= units[i].us;
			if (q == 0)
				continue;
			n += (size_t)snprintf(buf + n, n < len ? len - n : 0,
			    "%" PRId64 "%s", q, units[i].u);
			parts++;
			if (n >= len)
				return;
		}
	}
}

static int
push_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct push_inst *in = inst;
	struct wp_result r = WP_RESULT_INIT;
	int64_t now = host->now_us(), window = in->interval_us + in->grace_us;
	int64_t since;
	char a[32], b[32], c[32];

	*opstate = NULL;
	if (in->down) {
		r.reason = WP_REASON_CHECK;
		snprintf(req->detail, req->detail_size, "the job reported a "
		    "failure%s%s", in->msg[0] ? ": " : "", in->msg);
		r.detail = req->detail;
	} else if (in->beat && now - in->beat_us <= window) {
		r.reason = WP_REASON_OK;
	} else if (!in->beat && now - in->created_us < window) {
		return WP_EAGAIN; /* nothing is due yet: record nothing */
	} else {
		since = in->beat ? in->beat_us : in->created_us;
		fmt_dur(now - since, a, sizeof(a));
		fmt_dur(in->interval_us, b, sizeof(b));
		fmt_dur(in->grace_us, c, sizeof(c));
		r.reason = WP_REASON_CHECK;
		snprintf(req->detail, req->detail_size, "no heartbeat for %s%s "
		    "(expected every %s + %s grace)", a, in->beat ? "" :
		    " since the agent started", b, c);
		r.detail = req->detail;
	}
	host->complete(req->op, &r);
	return WP_OK;
}

static void
push_cancel(void *inst, void *opstate)
{
	/* start() always completes at once: nothing is ever in flight. */
	(void)inst;
	(void)opstate;
}

static int
push_inbound(void *inst, const struct wp_inbound *ev,
    const struct wp_request *req, struct wp_result *res)
{
	struct push_inst *in = inst;
	struct push_msg m;

	push_msg_init(&m);
	if (push_parse(ev->query, strlen(ev->query), &m, req->detail,
	    req->detail_size) != 0 || (ev->body_len > 0 &&
	    push_parse(ev->body, ev->body_len, &m, req->detail,
	    req->detail_size) != 0)) {
		res->reason = WP_REASON_PROTOCOL;
		res->detail = req->detail;
		return WP_EINVAL;
	}
	in->down = m.status == PUSH_DOWN;
	if (in->down) {
		memcpy(in->msg, m.msg, sizeof(in->msg));
		res->reason = WP_REASON_CHECK;
		snprintf(req->detail, req->detail_size, "the job reported a "
		    "failure%s%s", m.msg[0] ? ": " : "", m.msg);
		res->detail = req->detail;
	} else {
		in->beat = 1;
		in->beat_us = ev->received_us;
		in->msg[0] = '\0';
		res->reason = WP_REASON_OK;
		/* An up push's msg is kept as its detail (not stored for up
		 * results, but shown by the answer and the log). */
		if (m.msg[0] != '\0') {
			snprintf(req->detail, req->detail_size, "%s", m.msg);
			res->detail = req->detail;
		}
	}
	if (m.has_duration && req->max_measurements > 0) {
		req->measurements[0] = (struct wp_measurement){ "duration",
		    m.duration_s, WP_UNIT_SECONDS };
		res->measurements = req->measurements;
		res->n_measurements = 1;
	}
	return WP_OK;
}

WP_CHECK_PLUGIN(push,
    .version = "1.0",
    .description = "push heartbeats: UP while GET/POST /push/TOKEN arrives "
                   "every interval + grace",
    WP_KEYS(push_keys, struct push_conf),
    .init = push_init,
    .configure = push_configure,
    .release = push_release,
    .start = push_start,
    .cancel = push_cancel,
    .route_key = push_route_key,
    .inbound = push_inbound)
