/*
 * tcp.so -- the "tcp" check: can a TCP connection to host:port be opened?
 *
 * Asynchronous form only.  start() resolves the name through host->resolve
 * (numeric addresses are parsed once at configure() and skip the resolver),
 * then tries the addresses in order with non-blocking connects watched for
 * writability on the host loop.  When more than one address remains, each
 * attempt gets an equal share of the time left before the deadline so a
 * silent first address does not starve the others.  latency_us is the time
 * of the connect that succeeded, on the monotonic clock.
 *
 * Every operation owns one struct tcp_op; it is freed, and its socket,
 * watch, timer and pending resolution released, exactly when the operation
 * is completed (finish()).
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <watchpost/plugin.h>

#include "addr.h"

#define TCP_MAX_ADDRS 16

struct tcp_state {
	const struct wp_host *host;
};

/* The keys, as the host parsed them (tcp_keys). */
struct tcp_conf {
	const char *host;
	int64_t port;
};

struct tcp_inst {
	struct tcp_state *st;
	const char *host;        /* borrowed from the conf (see plugin.h) */
	char port[8];
	int numeric;             /* host is a literal address: addr is set */
	struct addr addr;
};

struct tcp_op {
	struct tcp_inst *inst;
	const struct wp_host *h;
	struct wp_op *op;
	char *detail;            /* req->detail */
	size_t detail_size;
	int64_t started_us;
	int64_t deadline_us;
	struct wp_resolve *resolve;
	struct addr addrs[TCP_MAX_ADDRS];
	size_t n_addrs;
	size_t cur;
	int fd;
	struct wp_watch *watch;
	struct wp_timer *timer;  /* per-address share of the deadline */
	int64_t connect_us;      /* when the current attempt began */
	int64_t dns_us;
	int last_err;            /* errno of the last failed attempt */
	char last_addr[INET6_ADDRSTRLEN + 8];
};

static const struct wp_key tcp_keys[] = {
	{ WP_KEY(WP_KT_HOST, "host", struct tcp_conf, host),
	    .flags = WP_KEY_REQUIRED, .help = "name or address to connect to" },
	{ WP_KEY(WP_KT_INT, "port", struct tcp_conf, port),
	    .flags = WP_KEY_REQUIRED, .min = 1, .max = 65535,
	    .help = "TCP port, 1-65535" },
};

static void tcp_try_next(struct tcp_op *o);

static int
tcp_init(const struct wp_host *host, void **state)
{
	struct tcp_state *st;

	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return WP_ENOMEM;
	st->host = host;
	*state = st;
	return WP_OK;
}

static void
tcp_fini(void *state)
{
	free(state);
}

static void
tcp_release(void *state, void *inst)
{
	struct tcp_inst *in = inst;

	(void)state;
	if (in == NULL)
		return;
	free(in);
}

/* The host checked both keys; nothing is left to judge. */
static int
tcp_configure(void *state, const struct wp_section *sec, const void *conf,
    void **inst)
{
	const struct tcp_conf *c = conf;
	struct tcp_inst *in;

	(void)sec;
	*inst = NULL;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = state;
	in->host = c->host;
	snprintf(in->port, sizeof(in->port), "%d", (int)c->port);
	in->numeric = addr_numeric(in->host, in->port, &in->addr);
	*inst = in;
	return WP_OK;
}

/* Close the current attempt's socket, watch and timer; keeps the op. */
static void
tcp_close_attempt(struct tcp_op *o)
{
	if (o->watch != NULL) {
		o->h->unwatch(o->watch);
		o->watch = NULL;
	}
	if (o->timer != NULL) {
		o->h->timer_free(o->timer);
		o->timer = NULL;
	}
	if (o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
}

/*
 * Complete the operation with REASON and free everything it holds.  After
 * this call `o` is gone.  FMT is a printf format for the detail (written
 * into the request's buffer), or NULL when up.
 */
static void
tcp_finish(struct tcp_op *o, int reason, const char *fmt, ...)
    WP_PRINTF(3, 4);

static void
tcp_finish(struct tcp_op *o, int reason, const char *fmt, ...)
{
	struct wp_result res = WP_RESULT_INIT;
	va_list ap;
	int64_t now = o->h->now_us();

	if (o->resolve != NULL) {
		o->h->resolve_cancel(o->resolve);
		o->resolve = NULL;
	}
	res.reason = reason;
	res.dns_us = o->dns_us;
	if (reason == WP_REASON_OK) {
		res.latency_us = now - o->connect_us;
		res.connect_us = now - o->started_us;
	}
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(o->detail, o->detail_size, fmt, ap);
		va_end(ap);
		res.detail = o->detail;
	}
	tcp_close_attempt(o);
	o->h->complete(o->op, &res);
	free(o);
}

static void
format_addr(const struct addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&a->ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)&a->ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

/* All addresses failed: report the last failure. */
static void
tcp_fail(struct tcp_op *o)
{
	int e = o->last_err;
	const char *what = o->last_addr;

	switch (e) {
	case ECONNREFUSED:
		tcp_finish(o, WP_REASON_REFUSED, "connection refused by %s",
		    what);
		break;
	case EHOSTUNREACH:
	case ENETUNREACH:
		tcp_finish(o, WP_REASON_UNREACHABLE, "%s: %s", what,
		    strerror(e));
		break;
	case ETIMEDOUT:
		tcp_finish(o, WP_REASON_TIMEOUT, "%s: %s", what,
		    strerror(e));
		break;
	default:
		tcp_finish(o, WP_REASON_CONNECT, "%s: %s", what,
		    e ? strerror(e) : "connect failed");
		break;
	}
}

static void
tcp_attempt_failed(struct tcp_op *o, int err)
{
	o->last_err = err;
	format_addr(&o->addrs[o->cur], o->last_addr, sizeof(o->last_addr));
	tcp_close_attempt(o);
	o->cur++;
	tcp_try_next(o);
}

static void
tcp_writable(struct wp_watch *w, int fd, unsigned revents, void *arg)
{
	struct tcp_op *o = arg;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)w;
	(void)revents;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err == 0)
		tcp_finish(o, WP_REASON_OK, NULL);
	else
		tcp_attempt_failed(o, err);
}

/* The current address used up its share of the time: move on. */
static void
tcp_share_expired(struct wp_timer *t, void *arg)
{
	struct tcp_op *o = arg;

	(void)t;
	tcp_attempt_failed(o, ETIMEDOUT);
}

/*
 * Start a connect to addrs[cur], or to the next address that can be tried.
 * Completes the operation when none is left.
 */
static void
tcp_try_next(struct tcp_op *o)
{
	const struct wp_host *h = o->h;
	struct addr *a;
	int64_t left_us;

	for (; o->cur < o->n_addrs; o->cur++) {
		a = &o->addrs[o->cur];
		o->connect_us = h->now_us();
		o->fd = socket(a->ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (o->fd < 0) {
			o->last_err = errno;
			format_addr(a, o->last_addr, sizeof(o->last_addr));
			continue;
		}
		if (connect(o->fd, (struct sockaddr *)&a->ss, a->len) == 0) {
			tcp_finish(o, WP_REASON_OK, NULL);
			return;
		}
		if (errno != EINPROGRESS) {
			o->last_err = errno;
			format_addr(a, o->last_addr, sizeof(o->last_addr));
			tcp_close_attempt(o);
			continue;
		}
		o->watch = h->watch(h, o->fd, WP_WRITABLE, tcp_writable, o);
		if (o->watch == NULL) {
			tcp_finish(o, WP_REASON_PLUGIN,
			    "cannot watch the socket");
			return;
		}
		if (o->cur + 1 < o->n_addrs) {
			left_us = o->deadline_us - o->connect_us;
			if (left_us < 0)
				left_us = 0;
			o->timer = h->timer_new(h, tcp_share_expired, o);
			if (o->timer != NULL)
				h->timer_set(o->timer, left_us /
				    (int64_t)(o->n_addrs - o->cur));
		}
		return;
	}
	tcp_fail(o);
}

static void
tcp_resolved(void *arg, int status, const char *err, const struct addrinfo *res)
{
	struct tcp_op *o = arg;
	char why[512];

	o->resolve = NULL;
	o->dns_us = o->h->now_us() - o->started_us;
	o->n_addrs = addr_take(o->inst->host, status, err, res, o->addrs,
	    TCP_MAX_ADDRS, why, sizeof(why));
	if (o->n_addrs == 0) {
		tcp_finish(o, WP_REASON_DNS, "%s", why);
		return;
	}
	tcp_try_next(o);
}

static int
tcp_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct tcp_inst *in = inst;
	const struct wp_host *h = in->st->host;
	struct addrinfo hints;
	struct tcp_op *o;

	*opstate = NULL;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return WP_ENOMEM;
	o->inst = in;
	o->h = h;
	o->op = req->op;
	o->detail = req->detail;
	o->detail_size = req->detail_size;
	o->fd = -1;
	o->started_us = req->started_us;
	o->deadline_us = req->deadline_us;
	o->dns_us = -1;
	if (in->numeric) {
		o->addrs[0] = in->addr;
		o->n_addrs = 1;
		*opstate = o;
		tcp_try_next(o);
		return WP_OK;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV;
	o->resolve = h->resolve(h, in->host, in->port, &hints, tcp_resolved, o);
	if (o->resolve == NULL) {
		free(o);
		return WP_EAGAIN;
	}
	*opstate = o;
	return WP_OK;
}

/* The deadline (or removal): stop and complete now. */
static void
tcp_cancel(void *inst, void *opstate)
{
	struct tcp_op *o = opstate;
	double secs;

	(void)inst;
	if (o == NULL)
		return;
	secs = (double)(o->deadline_us - o->started_us) / 1e6;
	tcp_finish(o, WP_REASON_TIMEOUT, "no answer to connect within %gs",
	    secs);
}

WP_CHECK_PLUGIN(tcp,
    .version = "1.0",
    .description = "TCP connect check (host, port)",
    WP_KEYS(tcp_keys, struct tcp_conf),
    .init = tcp_init,
    .fini = tcp_fini,
    .configure = tcp_configure,
    .release = tcp_release,
    .start = tcp_start,
    .cancel = tcp_cancel)
