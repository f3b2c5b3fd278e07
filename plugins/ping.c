/*
 * ping.so -- the "ping" check: does the host answer ICMP echo requests,
 * and how many of them?
 *
 * A check sends `count` echoes (default 1) `packet_interval` apart.  With
 * one echo, as before count existed: its reply is up (measurements rtt and
 * loss), an ICMP error down with reason unreachable, silence the host's
 * timeout -- and nothing is allocated beyond the op.  With count > 1 the
 * op owns count echo records (struct ping_echo, in its own allocation),
 * the socket back-end's table holds those, and one host timer per op sends
 * the next echo and then ends the wait for replies (max(1s, 2 x interval),
 * PING_MARGIN_US before the deadline: the check concludes itself, since a
 * cancelled one is recorded as a timeout); ping_verdict() (ping-verdict.c)
 * judges the loss against loss_warn (degraded) and loss_max (down).
 *
 * How echo requests are sent is chosen once, in init() (main thread, while
 * the daemon is still privileged: it drops privileges later), separately for
 * IPv4 and IPv6, in this order, and logged once at info:
 *
 *   dgram  an unprivileged ICMP datagram socket (SOCK_DGRAM, IPPROTO_ICMP or
 *          IPPROTO_ICMPV6), allowed when the daemon's group is inside
 *          net.ipv4.ping_group_range.  The kernel rewrites the echo
 *          identifier to the socket's own and only hands us replies to it;
 *          ICMP errors arrive on the error queue (IP_RECVERR).
 *   raw    a raw ICMP socket (CAP_NET_RAW).  It sees every ICMP packet on
 *          the box, so replies are filtered on our identifier (and IPv4
 *          replies carry the IP header, which is skipped).
 *   exec   the system ping(8), found on PATH at init(), run per check
 *          through host->spawn: no shell, empty stdin, every other
 *          descriptor closed, default signals, its own process group
 *          SIGKILLed at the deadline, reaped by the agent.
 *
 * With a socket method every check of a family shares that family's one
 * socket: each in-flight request has its own sequence number (and a cookie
 * in the payload), replies are matched on both and on the source address,
 * and anything else is ignored.  RTT is host->now_us() at receive minus at
 * send.
 *
 * This file is the glue; ping-socket.c holds the dgram and raw back-end,
 * ping-exec.c the exec one; ping.h is what they share.
 *
 * WP_PING_METHOD=auto|dgram|raw|exec in the environment forces one method,
 * for tests and troubleshooting; the default is auto.  A forced method that
 * is not available for IPv4 makes init() fail with WP_ENOTSUP; IPv6 checks
 * then fail with reason "plugin" if it is not available for IPv6.
 */
#define _GNU_SOURCE /* ping.h: struct mmsghdr */

#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "ping.h"

static const struct wp_key ping_keys[] = {
	{ WP_KEY(WP_KT_HOST, "host", struct ping_conf, host),
	    .flags = WP_KEY_REQUIRED,
	    .help = "name or address to send echo requests to" },
	{ WP_KEY(WP_KT_INT, "count", struct ping_conf, count),
	    .def = "1", .min = 1, .max = PING_COUNT_MAX,
	    .help = "echo requests per check" },
	{ WP_KEY(WP_KT_DURATION, "packet_interval", struct ping_conf,
	    packet_interval), .def = "200ms", .min = 10000,
	    .max = 60000000,
	    .help = "time between two echo requests of a check (exec: at "
	    "least 200ms)" },
	{ WP_KEY(WP_KT_STRING, "loss_warn", struct ping_conf, loss_warn),
	    .help = "degraded when this share of the echoes is lost "
	    "(\"20%\" or \"0.2\"); default never" },
	{ WP_KEY(WP_KT_STRING, "loss_max", struct ping_conf, loss_max),
	    .def = "100%",
	    .help = "down when this share of the echoes is lost (\"50%\" "
	    "or \"0.5\"); default 100%: only when all are lost" },
};

const char *
ping_method_name(int m)
{
	switch (m) {
	case PM_DGRAM:
		return "dgram";
	case PM_RAW:
		return "raw";
	case PM_EXEC:
		return "exec";
	default:
		return "none";
	}
}

/*
 * Try to give family F the method M.  Returns 1 if it works here, 0 if not
 * (with the reason in f->why).
 */
static int
try_method(struct ping_state *st, struct ping_family *f, int m)
{
	return m == PM_EXEC ? ping_exec_setup(st, f) : ping_sock_open(f, m);
}

static void
ping_fini(void *state)
{
	struct ping_state *st = state;
	const struct wp_host *h;
	int i;

	if (st == NULL)
		return;
	h = st->host;
	ping_exec_fini(st);
	for (i = 0; i < 2; i++) {
		if (st->fam[i].watch != NULL)
			h->unwatch(st->fam[i].watch);
		if (st->fam[i].fd >= 0)
			close(st->fam[i].fd);
	}
	free(st->ping_path);
	free(st);
}

static int
ping_init(const struct wp_host *host, void **state)
{
	static const int order[] = { PM_DGRAM, PM_RAW, PM_EXEC };
	struct ping_state *st;
	const char *env = getenv("WP_PING_METHOD");
	int forced = PM_AUTO, i, k, rc = WP_OK;
	char desc[2][PATH_MAX + 16];

	*state = NULL;
	if (env != NULL && *env != '\0' && strcmp(env, "auto") != 0) {
		if (strcmp(env, "dgram") == 0)
			forced = PM_DGRAM;
		else if (strcmp(env, "raw") == 0)
			forced = PM_RAW;
		else if (strcmp(env, "exec") == 0)
			forced = PM_EXEC;
		else {
			host->log(host, WP_LOG_ERROR, "WP_PING_METHOD=%s: "
			    "expected auto, dgram, raw or exec", env);
			return WP_EINVAL;
		}
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return WP_ENOMEM;
	st->host = host;
	for (i = 0; i < PING_BATCH; i++) {
		st->iov[i].iov_base = st->buf[i];
		st->iov[i].iov_len = sizeof(st->buf[i]);
		st->msgs[i].msg_hdr.msg_name = &st->from[i];
		st->msgs[i].msg_hdr.msg_iov = &st->iov[i];
		st->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	st->ident = (uint16_t)(getpid() ^ ((uintptr_t)st >> 4));
	st->next_seq = (uint16_t)host->now_us();
	st->fam[0].family = AF_INET;
	st->fam[1].family = AF_INET6;
	for (i = 0; i < 2; i++) {
		struct ping_family *f = &st->fam[i];

		f->fd = -1;
		for (k = 0; k < 3 && f->method == PM_NONE; k++) {
			if (forced != PM_AUTO && forced != order[k])
				continue;
			try_method(st, f, order[k]);
		}
		if (f->method == PM_EXEC)
			snprintf(desc[i], sizeof(desc[i]), "exec %s",
			    st->ping_path);
		else if (f->method == PM_NONE)
			snprintf(desc[i], sizeof(desc[i]), "none (%s)", f->why);
		else
			snprintf(desc[i], sizeof(desc[i]), "%s socket",
			    ping_method_name(f->method));
	}
	if (st->fam[0].method == PM_NONE) {
		host->log(host, WP_LOG_ERROR, "no way to send ICMP echo "
		    "requests%s%s: %s", forced != PM_AUTO ?
		    " with WP_PING_METHOD=" : "", forced != PM_AUTO ? env : "",
		    st->fam[0].why);
		rc = WP_ENOTSUP;
		goto out;
	}
	/* Debug: every plugin is initialised at start-up, ping monitors or
	 * not, and a refused start prints only its problems. */
	host->log(host, WP_LOG_DEBUG, "ICMP method: IPv4 %s, IPv6 %s%s",
	    desc[0], desc[1], forced != PM_AUTO ? " (forced by "
	    "WP_PING_METHOD)" : "");
	*state = st;
	st = NULL;
out:
	ping_fini(st);
	return rc;
}

static void
ping_release(void *state, void *inst)
{
	struct ping_inst *in = inst;

	(void)state;
	if (in == NULL)
		return;
	free(in);
}

/* Whether checks of HOST may send with ping(8): its family's method for
 * an address, either family's for a name. */
static int
uses_exec(const struct ping_state *st, const char *host)
{
	struct addr a;

	if (addr_numeric(host, NULL, &a))
		return st->fam[a.ss.ss_family == AF_INET ? 0 : 1].method ==
		    PM_EXEC;
	return st->fam[0].method == PM_EXEC || st->fam[1].method == PM_EXEC;
}

/*
 * The host checked the keys' types and ranges; judged here: the loss
 * ratios, that count echoes packet_interval apart fit in the timeout, and
 * ping(8)'s 200ms floor when a family pings with exec.  Returns WP_EINVAL
 * after config_error() for each problem.
 */
static int
ping_configure(void *state, const struct wp_section *sec, const void *conf,
    void **inst)
{
	const struct ping_conf *c = conf;
	struct ping_state *st = state;
	const struct wp_host *h = st->host;
	struct ping_inst *in;
	double warn = -1, max = 1;
	int bad = 0;

	*inst = NULL;
	if (c->loss_warn != NULL && (ping_ratio_parse(c->loss_warn, &warn) != 0
	    || warn <= 0)) {
		h->config_error(sec, "loss_warn", "\"%s\" is not a loss ratio "
		    "above 0 (\"20%%\" or \"0.2\")", c->loss_warn);
		bad = 1;
	}
	if (c->loss_max != NULL && (ping_ratio_parse(c->loss_max, &max) != 0
	    || max <= 0)) {
		h->config_error(sec, "loss_max", "\"%s\" is not a loss ratio "
		    "above 0 (\"50%%\" or \"0.5\")", c->loss_max);
		bad = 1;
	}
	if (!bad && warn >= max) {
		h->config_error(sec, "loss_warn", "must be below loss_max "
		    "(%g >= %g)", warn, max);
		bad = 1;
	}
	if (c->count > 1 && c->count * c->packet_interval >= sec->timeout_us) {
		h->config_error(sec, "count", "%lld echo requests %gs apart "
		    "take %gs, which does not fit in the monitor's timeout "
		    "(%gs): lower count or packet_interval, or raise timeout",
		    (long long)c->count, (double)c->packet_interval / 1e6,
		    (double)(c->count * c->packet_interval) / 1e6,
		    (double)sec->timeout_us / 1e6);
		bad = 1;
	}
	if (c->count > 1 && c->packet_interval < PING_EXEC_INTERVAL_MIN &&
	    uses_exec(st, c->host)) {
		h->config_error(sec, "packet_interval", "must be at least 200ms "
		    "here: echo requests are sent by ping(8), which refuses "
		    "shorter intervals to users other than root");
		bad = 1;
	}
	if (bad)
		return WP_EINVAL;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = state;
	in->host = c->host;
	in->numeric = addr_numeric(in->host, NULL, &in->addr);
	in->count = (unsigned)c->count;
	in->interval_us = c->packet_interval;
	in->loss_warn = warn;
	in->loss_max = max;
	*inst = in;
	return WP_OK;
}

void
ping_finish(struct ping_op *o, int reason, int64_t rtt_us,
    const char *fmt, ...)
{
	const struct wp_host *h = o->st->host;
	const struct wp_request *req = o->req;
	struct wp_result res = WP_RESULT_INIT;
	struct wp_measurement *m = req->measurements;
	size_t n = 0;
	va_list ap;

	if (o->resolve != NULL)
		h->resolve_cancel(o->resolve);
	ping_sock_forget(o);
	ping_exec_detach(o);
	if (o->timer != NULL)
		h->timer_free(o->timer);
	res.reason = reason;
	res.latency_us = rtt_us;
	res.dns_us = o->dns_us;
	if (o->have_stats) {
		/* count > 1 (ping_conclude) */
		m[n++] = (struct wp_measurement){ "loss", o->st_loss,
		    WP_UNIT_RATIO };
		if (o->st_avg >= 0) {
			m[n++] = (struct wp_measurement){ "rtt",
			    (double)o->st_avg / 1e6, WP_UNIT_SECONDS };
			m[n++] = (struct wp_measurement){ "rtt_min",
			    (double)o->st_min / 1e6, WP_UNIT_SECONDS };
			m[n++] = (struct wp_measurement){ "rtt_avg",
			    (double)o->st_avg / 1e6, WP_UNIT_SECONDS };
			m[n++] = (struct wp_measurement){ "rtt_max",
			    (double)o->st_max / 1e6, WP_UNIT_SECONDS };
			m[n++] = (struct wp_measurement){ "jitter",
			    (double)o->st_jitter / 1e6, WP_UNIT_SECONDS };
		}
	} else if (rtt_us >= 0 && n < req->max_measurements)
		m[n++] = (struct wp_measurement){ "rtt",
		    (double)rtt_us / 1e6, WP_UNIT_SECONDS };
	if (!o->have_stats && o->echoed && (reason == WP_REASON_OK ||
	    reason == WP_REASON_TIMEOUT || reason == WP_REASON_UNREACHABLE) &&
	    n < req->max_measurements)
		m[n++] = (struct wp_measurement){ "loss",
		    reason == WP_REASON_OK ? 0.0 : 1.0, WP_UNIT_RATIO };
	res.measurements = m;
	res.n_measurements = n;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(req->detail, req->detail_size, fmt, ap);
		va_end(ap);
		res.detail = req->detail;
	} else if (o->detail_set && reason == o->err_reason)
		res.detail = req->detail; /* the ICMP error's own message */
	h->complete(o->op, &res);
	free(o);
}

void
ping_echo_settled(struct ping_echo *e, int64_t rtt_us, int reason,
    const char *fmt, ...)
{
	struct ping_op *o = e->op;
	const struct wp_request *req = o->req;
	va_list ap;

	if (o->count == 1) {
		/* one echo: its answer is the verdict, as it always was */
		if (rtt_us >= 0) {
			ping_finish(o, WP_REASON_OK, rtt_us, NULL);
			return;
		}
		o->err_reason = reason;
	} else if (rtt_us >= 0)
		e->rtt_us = rtt_us;
	else if (reason == WP_REASON_UNREACHABLE && o->err_reason == 0)
		o->err_reason = reason;
	else if (reason != WP_REASON_UNREACHABLE) {
		/* not a verdict on the path: the check failed */
		o->err_reason = reason;
		o->settled = o->count;
		o->sent = o->count;
	}
	if (fmt != NULL && reason != WP_REASON_OK && (o->count == 1 ||
	    o->err_reason == reason) && !o->detail_set) {
		va_start(ap, fmt);
		vsnprintf(req->detail, req->detail_size, fmt, ap);
		va_end(ap);
		o->detail_set = 1;
	}
	if (o->count == 1) {
		ping_finish(o, reason, -1, NULL);
		return;
	}
	if (o->settled < o->count)
		o->settled++;
	if (o->settled == o->count && o->sent == o->count)
		ping_conclude(o);
}

void
ping_conclude(struct ping_op *o)
{
	int64_t rtt[PING_COUNT_MAX], sum = 0;
	unsigned k, got = 0;
	int reason;
	char msg[WP_DETAIL_MAX];

	o->st_min = o->st_max = o->st_avg = -1;
	for (k = 0; k < o->count; k++) {
		rtt[k] = k < o->sent ? o->echo[k].rtt_us : -1;
		if (rtt[k] < 0)
			continue;
		got++;
		sum += rtt[k];
		if (o->st_min < 0 || rtt[k] < o->st_min)
			o->st_min = rtt[k];
		if (rtt[k] > o->st_max)
			o->st_max = rtt[k];
	}
	if (got > 0)
		o->st_avg = sum / got;
	o->st_jitter = ping_jitter(rtt, o->count);
	o->st_loss = (double)(o->count - got) / (double)o->count;
	o->have_stats = o->echoed;
	msg[0] = '\0';
	if (o->err_reason != 0 && o->err_reason != WP_REASON_UNREACHABLE)
		reason = o->err_reason; /* IO error: its message is kept */
	else
		reason = ping_verdict(o->count, got, o->err_reason,
		    o->inst->loss_warn, o->inst->loss_max, msg, sizeof(msg));
	if (msg[0] != '\0')
		ping_finish(o, reason, o->st_avg, "%s", msg);
	else
		ping_finish(o, reason, o->st_avg, NULL);
}


const void *
ping_sa_ip(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return &((const struct sockaddr_in *)ss)->sin_addr;
	return &((const struct sockaddr_in6 *)ss)->sin6_addr;
}

char *
ping_op_addr(struct ping_op *o)
{
	if (o->addrstr[0] == '\0' && inet_ntop(o->addr.ss.ss_family,
	    ping_sa_ip(&o->addr.ss), o->addrstr, sizeof(o->addrstr)) == NULL)
		snprintf(o->addrstr, sizeof(o->addrstr), "?");
	return o->addrstr;
}

void
ping_timeout(struct ping_op *o)
{
	if (o->count > 1 && o->sent > 0) {
		ping_conclude(o);
		return;
	}
	ping_finish(o, WP_REASON_TIMEOUT, -1,
	    "no echo reply within %gs",
	    (double)(o->deadline_us - o->started_us) / 1e6);
}


/*
 * Count > 1, socket methods: the op's one timer.  While echoes are left to
 * send it sends the next one, packet_interval after the last; after the
 * last it ends the wait for replies: max(1s, 2 x packet_interval), never
 * closer than PING_MARGIN_US to the host's deadline.
 */
static void
ping_tick(struct wp_timer *t, void *arg)
{
	struct ping_op *o = arg;
	const struct wp_host *h = o->st->host;
	int64_t wait, left;

	if (o->sent >= o->count) {
		ping_conclude(o);
		return;
	}
	if (!ping_sock_send(o))
		return; /* completed inside: O and T are gone */
	if (o->sent < o->count) {
		h->timer_set(t, o->inst->interval_us);
		return;
	}
	wait = 2 * o->inst->interval_us;
	if (wait < 1000000)
		wait = 1000000;
	left = o->deadline_us - PING_MARGIN_US - h->now_us();
	if (wait > left)
		wait = left > 0 ? left : 0;
	h->timer_set(t, wait);
}

/* Socket methods: send the first echo; with count > 1 arm the timer for
 * the others first (ping_sock_send() may complete O). */
static void
ping_sock_start(struct ping_op *o)
{
	const struct wp_host *h = o->st->host;

	if (o->count == 1) {
		(void)ping_sock_send(o);
		return;
	}
	o->timer = h->timer_new(h, ping_tick, o);
	if (o->timer == NULL) {
		ping_finish(o, WP_REASON_PLUGIN, -1, "cannot make a timer");
		return;
	}
	ping_tick(o->timer, o);
}

/* OP's address is known: send with the family's method. */
static void
ping_go(struct ping_op *o)
{
	struct ping_family *f;

	o->fi = o->addr.ss.ss_family == AF_INET ? 0 : 1;
	f = &o->st->fam[o->fi];
	switch (f->method) {
	case PM_DGRAM:
	case PM_RAW:
		ping_sock_start(o);
		break;
	case PM_EXEC:
		ping_exec_spawn(o);
		break;
	default:
		ping_finish(o, WP_REASON_PLUGIN, -1,
		    "no ICMP%s method: %s", o->fi ? "v6" : "", f->why);
		break;
	}
}

static void
ping_resolved(void *arg, int status, const char *err,
    const struct addrinfo *res)
{
	struct ping_op *o = arg;
	char why[512];

	o->resolve = NULL;
	o->dns_us = o->st->host->now_us() - o->started_us;
	if (addr_take(o->inst->host, status, err, res, &o->addr, 1, why,
	    sizeof(why)) == 0) {
		ping_finish(o, WP_REASON_DNS, -1, "%s", why);
		return;
	}
	ping_go(o);
}

static int
ping_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct ping_inst *in = inst;
	struct ping_state *st = in->st;
	const struct wp_host *h = st->host;
	struct addrinfo hints;
	struct ping_op *o;
	unsigned k;

	*opstate = NULL;
	/* one allocation per check, the echoes included */
	o = calloc(1, sizeof(*o) + in->count * sizeof(o->echo[0]));
	if (o == NULL)
		return WP_ENOMEM;
	o->count = in->count;
	for (k = 0; k < o->count; k++)
		o->echo[k].rtt_us = -1;
	o->st = st;
	o->inst = in;
	o->op = req->op;
	o->req = req;
	o->started_us = req->started_us;
	o->deadline_us = req->deadline_us;
	o->dns_us = -1;
	*opstate = o;
	if (in->numeric) {
		o->addr = in->addr;
		ping_go(o);
		return WP_OK;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	o->resolve = h->resolve(h, in->host, NULL, &hints, ping_resolved, o);
	if (o->resolve == NULL) {
		*opstate = NULL;
		free(o);
		return WP_EAGAIN;
	}
	return WP_OK;
}

/* The deadline (or removal): forget the request and complete now. */
static void
ping_cancel(void *inst, void *opstate)
{
	(void)inst;
	if (opstate != NULL)
		ping_timeout(opstate);
}

WP_CHECK_PLUGIN(ping,
    .version = "1.0",
    .description = "ICMP echo check (host)",
    WP_KEYS(ping_keys, struct ping_conf),
    .init = ping_init,
    .fini = ping_fini,
    .configure = ping_configure,
    .release = ping_release,
    .start = ping_start,
    .cancel = ping_cancel)

