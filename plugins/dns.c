/*
 * dns.so -- the "dns" check: does a DNS server answer a query as expected?
 *
 * Asynchronous form only.  Queries go through c-ares channels driven by the
 * host loop: c-ares says which sockets it wants watched
 * (ARES_OPT_SOCK_STATE_CB), the host's fd watches call ares_process_fd(),
 * and one host timer per channel follows ares_timeout().  No thread ever
 * waits on a resolver.
 *
 * Channels are shared: one per (server, transport, timeout) for the whole
 * plugin, created on first use and kept until fini(), so 1,000 monitors
 * asking one server use one socket and one c-ares channel instead of
 * building and tearing down a channel (and its 3,000 list heads) per
 * check -- about 100,000 instructions per check saved (BENCHMARKS.md).
 *
 * An operation (struct dns_op) is also its query's callback argument.
 * c-ares may answer after the host cancelled the operation (c-ares 1.18
 * cannot cancel one query of a channel), so an op is freed only when it is
 * both completed towards the host and no longer known to c-ares.  The query
 * callback never completes the operation itself: it queues it on its
 * channel, and whoever called into c-ares (start, a watch, the timer)
 * completes the queue when that call returns (chan_kick), so the host is
 * never re-entered from inside c-ares.
 *
 * Outcomes: the reply's RCODE must be expected_rcode (NOERROR by default:
 * then at least one answer of the asked type, and every `expect` value
 * among them).  Measurements: query_time (seconds), answers (count).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ares.h>

#include <watchpost/plugin.h>

#include "dns.h"

#define DNS_NAME_MAX 253

static const char *const record_names[] = { "A", "AAAA", "CNAME", "MX",
	"TXT", "NS", "SOA", "SRV", "CAA", "PTR", NULL };
static const int record_types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_CNAME,
	DNS_T_MX, DNS_T_TXT, DNS_T_NS, DNS_T_SOA, DNS_T_SRV, DNS_T_CAA,
	DNS_T_PTR };
static const char *const transports[] = { "udp", "tcp", NULL };
static const char *const rcodes[] = { DNS_RCODES, NULL };

struct dns_chan;

struct dns_state {
	const struct wp_host *host;
	struct dns_chan *chans;  /* every channel opened so far */
};

/* The keys, as the host parsed them (dns_keys). */
struct dns_conf {
	const char *name;
	int record;              /* index in record_names; -1: A */
	const char *server;
	int transport;           /* index in transports; -1: udp */
	struct wp_list expect;
	int rcode;               /* index in rcodes = the RCODE; -1: NOERROR */
};

struct dns_inst {
	struct dns_state *st;
	int type;                /* DNS_T_* */
	const char *type_name;
	char qname[DNS_NAME_MAX + 2];
	char server[64];         /* ares_set_servers_ports_csv form; "" none */
	int tcp;
	int rcode;
	int timeout_ms;          /* the monitor's timeout */
	struct wp_list expect;   /* borrowed from the conf */
	struct dns_chan *chan;   /* found on first use */
};

struct dns_sock {
	struct dns_sock *next;
	int fd;
	struct wp_watch *watch;
};

/* One c-ares channel and what drives it on the loop. */
struct dns_chan {
	struct dns_chan *next;
	struct dns_state *st;
	char server[64];
	int tcp;
	int timeout_ms;
	ares_channel ch;
	struct dns_sock *socks;
	struct wp_timer *timer;
	struct dns_op *finished; /* answered, to complete in chan_kick */
	int failed;              /* a socket could not be watched */
};

struct dns_op {
	struct dns_op *next;     /* on chan->finished */
	struct dns_inst *inst;
	struct dns_chan *chan;
	const struct wp_host *h;
	const struct wp_request *req; /* until completed */
	int in_ares;             /* c-ares still holds the query */
	int queued;              /* on chan->finished */
	int completed;           /* host->complete() was called */
	struct wp_result res;
	size_t n_meas;
};

static const struct wp_key dns_keys[] = {
	{ WP_KEY(WP_KT_STRING, "name", struct dns_conf, name),
	    .flags = WP_KEY_REQUIRED,
	    .help = "the name to query (for PTR also an IP address)" },
	{ WP_KEY(WP_KT_ENUM, "record", struct dns_conf, record),
	    .values = record_names, .help = "record type to ask for (A)" },
	{ WP_KEY(WP_KT_STRING, "server", struct dns_conf, server),
	    .help = "server IP[:port] ([v6]:port); default: the system's" },
	{ WP_KEY(WP_KT_ENUM, "transport", struct dns_conf, transport),
	    .values = transports, .help = "udp or tcp (udp)" },
	{ WP_KEY(WP_KT_STRING, "expect", struct dns_conf, expect),
	    .flags = WP_KEY_MULTI,
	    .help = "repeatable: a value that must be among the answers" },
	{ WP_KEY(WP_KT_ENUM, "expected_rcode", struct dns_conf, rcode),
	    .values = rcodes,
	    .help = "the response code that counts as up (NOERROR)" },
};

static int
dns_init(const struct wp_host *host, void **state)
{
	struct dns_state *st;
	int rc;

	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		host->log(host, WP_LOG_ERROR, "c-ares: %s", ares_strerror(rc));
		return WP_EIO;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		ares_library_cleanup();
		return WP_ENOMEM;
	}
	st->host = host;
	*state = st;
	return WP_OK;
}

static void chan_free(struct dns_chan *c);

/* Main thread, with the loop still open (watches and timers are freed). */
static void
dns_fini(void *state)
{
	struct dns_state *st = state;
	struct dns_chan *c;

	while ((c = st->chans) != NULL) {
		st->chans = c->next;
		chan_free(c);
	}
	free(st);
	ares_library_cleanup();
}

static void
dns_release(void *state, void *inst)
{
	(void)state;
	free(inst);
}

/* NAME is a DNS name we will send: 1..253 bytes of labels of 1..63
 * printable non-blank bytes (a trailing dot allowed). */
static int
valid_name(const char *name)
{
	size_t len = strlen(name), label = 0, i;

	if (len == 0 || len > DNS_NAME_MAX + 1 ||
	    (len == DNS_NAME_MAX + 1 && name[len - 1] != '.'))
		return 0;
	if (strcmp(name, ".") == 0)
		return 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (c <= ' ' || c >= 0x7f || ++label > 63) {
			return 0;
		}
	}
	return 1;
}

/* For PTR, an address NAME becomes its reverse name in OUT. */
static int
reverse_name(const char *name, char *out, size_t len)
{
	unsigned char a[16];
	size_t i, n = 0;

	if (inet_pton(AF_INET, name, a) == 1) {
		snprintf(out, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1],
		    a[0]);
		return 1;
	}
	if (inet_pton(AF_INET6, name, a) != 1)
		return 0;
	for (i = 16; i-- > 0 && n + 4 < len;)
		n += (size_t)snprintf(out + n, len - n, "%x.%x.", a[i] & 0xf,
		    a[i] >> 4);
	snprintf(out + n, len - n, "ip6.arpa");
	return 1;
}

/* SERVER ("IP", "IP:port", "[v6]:port", "v6") into c-ares's CSV form in
 * OUT; 0, or -1 when it is not an address (with port 1-65535). */
static int
parse_server(const char *server, char *out, size_t len)
{
	unsigned char a[16];
	char ip[INET6_ADDRSTRLEN + 1];
	const char *colon, *port = NULL;
	size_t iplen;
	char *end;
	long p;

	if (server[0] == '[') {
		colon = strchr(server, ']');
		if (colon == NULL)
			return -1;
		iplen = (size_t)(colon - server - 1);
		if (colon[1] == ':')
			port = colon + 2;
		else if (colon[1] != '\0')
			return -1;
		server++;
	} else if ((colon = strchr(server, ':')) != NULL &&
	    strchr(colon + 1, ':') == NULL) {
		iplen = (size_t)(colon - server);
		port = colon + 1;
	} else {
		iplen = strlen(server);
	}
	if (iplen == 0 || iplen >= sizeof(ip))
		return -1;
	memcpy(ip, server, iplen);
	ip[iplen] = '\0';
	if (port != NULL) {
		errno = 0;
		p = strtol(port, &end, 10);
		if (errno != 0 || end == port || *end != '\0' || p < 1 ||
		    p > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, ip, a) == 1)
		snprintf(out, len, "%s:%s", ip, port ? port : "53");
	else if (inet_pton(AF_INET6, ip, a) == 1)
		snprintf(out, len, "[%s]:%s", ip, port ? port : "53");
	else
		return -1;
	return 0;
}

static int
dns_configure(void *state, const struct wp_section *sec, const void *conf,
    void **inst)
{
	struct dns_state *st = state;
	const struct wp_host *h = st->host;
	const struct dns_conf *c = conf;
	struct dns_inst *in;
	unsigned char a[16];
	int bad = 0, ri = c->record < 0 ? 0 : c->record;
	size_t i;

	*inst = NULL;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	in->type = record_types[ri];
	in->type_name = record_names[ri];
	in->tcp = c->transport == 1;
	in->rcode = c->rcode < 0 ? 0 : c->rcode;
	in->timeout_ms = (int)(sec->timeout_us / 1000);
	in->expect = c->expect;
	if (in->type == DNS_T_PTR &&
	    reverse_name(c->name, in->qname, sizeof(in->qname))) {
		/* an address: asked as its in-addr.arpa / ip6.arpa name */
	} else if (!valid_name(c->name)) {
		h->config_error(sec, "name", "\"%s\" is not a DNS name (labels "
		    "of 1-63 printable characters, 253 in all)", c->name);
		bad = 1;
	} else {
		snprintf(in->qname, sizeof(in->qname), "%s", c->name);
	}
	if (c->server != NULL && parse_server(c->server, in->server,
	    sizeof(in->server)) != 0) {
		h->config_error(sec, "server", "\"%s\" is not IP[:port] or "
		    "[IPv6]:port", c->server);
		bad = 1;
	}
	for (i = 0; i < c->expect.n; i++) {
		const char *e = c->expect.v[i];

		if ((in->type == DNS_T_A && inet_pton(AF_INET, e, a) != 1) ||
		    (in->type == DNS_T_AAAA &&
		    inet_pton(AF_INET6, e, a) != 1)) {
			h->config_error(sec, "expect", "\"%s\" is not an %s "
			    "address", e, in->type == DNS_T_A ? "IPv4" :
			    "IPv6");
			bad = 1;
		}
	}
	if (c->expect.n > 0 && in->rcode != 0) {
		h->config_error(sec, "expect", "expect needs answers, but "
		    "expected_rcode = %s has none", rcodes[in->rcode]);
		bad = 1;
	}
	if (bad) {
		free(in);
		return WP_EINVAL;
	}
	*inst = in;
	return WP_OK;
}

/* The detail buffer: printf FMT into req->detail, result detail set. */
static void
dns_detail(struct dns_op *o, const char *fmt, ...) WP_PRINTF(2, 3);

static void
dns_detail(struct dns_op *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->req->detail, o->req->detail_size, fmt, ap);
	va_end(ap);
	o->res.detail = o->req->detail;
}

static void
dns_measure(struct dns_op *o, const char *name, double v, int unit)
{
	if (o->n_meas < o->req->max_measurements)
		o->req->measurements[o->n_meas++] =
		    (struct wp_measurement){ name, v, unit };
}

static const char *
server_name(const struct dns_inst *in)
{
	return in->server[0] ? in->server : "the system's resolver";
}

/* Judge the answers of a reply whose RCODE was the expected NOERROR. */
static void
dns_judge(struct dns_op *o, const unsigned char *abuf, int alen)
{
	struct dns_inst *in = o->inst;
	struct dns_answers *ans;
	size_t i, j, n;
	int st;

	if ((ans = malloc(sizeof(*ans))) == NULL) {
		o->res.reason = WP_REASON_PLUGIN;
		dns_detail(o, "out of memory");
		return;
	}
	st = dns_parse_answers(in->type, abuf, alen, ans);
	dns_measure(o, "answers", st == ARES_SUCCESS ? (double)ans->n : 0,
	    WP_UNIT_NONE);
	if (st == ARES_ENODATA) {
		o->res.reason = WP_REASON_DNS;
		dns_detail(o, "%s: no %s record in the answer from %s",
		    in->qname, in->type_name, server_name(in));
		goto out;
	}
	if (st != ARES_SUCCESS) {
		o->res.reason = WP_REASON_PROTOCOL;
		dns_detail(o, "%s: malformed %s answer from %s: %s", in->qname,
		    in->type_name, server_name(in), ares_strerror(st));
		goto out;
	}
	for (i = 0; i < in->expect.n; i++) {
		for (j = 0; j < ans->n; j++)
			if (dns_answer_matches(in->type, ans->v[j],
			    in->expect.v[i]))
				break;
		if (j == ans->n)
			break;
	}
	if (i == in->expect.n) {
		o->res.reason = WP_REASON_OK;
		goto out;
	}
	/* "expected X among the answers; got: a, b, c" */
	o->res.reason = WP_REASON_CHECK;
	n = (size_t)snprintf(o->req->detail, o->req->detail_size,
	    "%s %s: expected \"%s\" among the answers; got: ", in->qname,
	    in->type_name, in->expect.v[i]);
	for (j = 0; j < ans->n && n < o->req->detail_size; j++)
		n += (size_t)snprintf(o->req->detail + n,
		    o->req->detail_size - n, "%s%s", j ? ", " : "", ans->v[j]);
	o->res.detail = o->req->detail;
out:
	free(ans);
}

/* c-ares's answer (or failure) to query O: record the result and queue O
 * for completion; or, when the host already gave up on O, just free it. */
static void
dns_answered(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_op *o = arg;
	struct dns_inst *in = o->inst;
	int64_t took;
	int rcode;

	(void)timeouts;
	o->in_ares = 0;
	if (o->completed) {
		free(o);
		return;
	}
	took = o->h->now_us() - o->req->started_us;
	o->next = o->chan->finished;
	o->chan->finished = o;
	o->queued = 1;
	rcode = dns_rcode(abuf, alen);
	if (rcode < 0) {
		/* No reply at all. */
		switch (status) {
		case ARES_ETIMEOUT:
			o->res.reason = WP_REASON_TIMEOUT;
			dns_detail(o, "%s %s: no answer from %s", in->qname,
			    in->type_name, server_name(in));
			break;
		case ARES_ECONNREFUSED:
			o->res.reason = WP_REASON_REFUSED;
			dns_detail(o, "%s %s: %s refused the query", in->qname,
			    in->type_name, server_name(in));
			break;
		default:
			o->res.reason = WP_REASON_DNS;
			dns_detail(o, "%s %s: %s", in->qname, in->type_name,
			    ares_strerror(status));
			break;
		}
		return;
	}
	o->res.latency_us = took;
	dns_measure(o, "query_time", (double)took / 1e6, WP_UNIT_SECONDS);
	if (rcode != in->rcode) {
		o->res.reason = WP_REASON_DNS;
		dns_detail(o, "%s %s: %s answered %s, expected %s", in->qname,
		    in->type_name, server_name(in),
		    rcode < DNS_N_RCODES ? rcodes[rcode] : "an unknown RCODE",
		    rcodes[in->rcode]);
		return;
	}
	if (in->rcode != 0) {
		o->res.reason = WP_REASON_OK; /* the expected failure */
		return;
	}
	dns_judge(o, abuf, alen);
}

/* Complete O towards the host (once); free it unless c-ares holds it. */
static void
op_complete(struct dns_op *o)
{
	o->res.measurements = o->req->measurements;
	o->res.n_measurements = o->n_meas;
	o->completed = 1;
	o->h->complete(o->req->op, &o->res);
	o->req = NULL;
	if (!o->in_ares)
		free(o);
}

/* After any call into c-ares on C: complete what it answered, re-arm the
 * timer.  Never called from inside c-ares. */
static void
chan_kick(struct dns_chan *c)
{
	struct timeval tv, *tvp;
	struct dns_op *o;

	while ((o = c->finished) != NULL) {
		c->finished = o->next;
		o->queued = 0;
		op_complete(o);
	}
	tvp = ares_timeout(c->ch, NULL, &tv);
	c->st->host->timer_set(c->timer, tvp == NULL ? -1 :
	    (int64_t)tvp->tv_sec * 1000000 + tvp->tv_usec);
}

static void
chan_ready(struct wp_watch *w, int fd, unsigned revents, void *arg)
{
	struct dns_chan *c = arg;

	(void)w;
	ares_process_fd(c->ch,
	    (revents & WP_READABLE) ? fd : ARES_SOCKET_BAD,
	    (revents & WP_WRITABLE) ? fd : ARES_SOCKET_BAD);
	chan_kick(c);
}

static void
chan_tick(struct wp_timer *t, void *arg)
{
	struct dns_chan *c = arg;

	(void)t;
	ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	chan_kick(c);
}

/* c-ares's socket wishes onto host watches (called inside c-ares). */
static void
chan_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_chan *c = data;
	const struct wp_host *h = c->st->host;
	struct dns_sock **pp, *s;
	unsigned ev = (readable ? WP_READABLE : 0) |
	    (writable ? WP_WRITABLE : 0);

	for (pp = &c->socks; (s = *pp) != NULL; pp = &s->next)
		if (s->fd == fd)
			break;
	if (ev == 0) {
		if (s != NULL) {
			*pp = s->next;
			h->unwatch(s->watch);
			free(s);
		}
		return;
	}
	if (s != NULL) {
		h->watch_set(s->watch, ev);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->watch = h->watch(h, fd, ev, chan_ready, c)) == NULL) {
		/* The query on this socket cannot progress; it times out. */
		free(s);
		if (!c->failed)
			h->log(h, WP_LOG_WARN, "cannot watch a resolver socket");
		c->failed = 1;
		return;
	}
	s->fd = fd;
	s->next = c->socks;
	c->socks = s;
}

/* Destroy C: pending queries are answered with ARES_EDESTRUCTION (their
 * ops already completed: they are freed), sockets unwatched. */
static void
chan_free(struct dns_chan *c)
{
	struct dns_sock *s;

	ares_destroy(c->ch);
	while ((s = c->socks) != NULL) {
		c->socks = s->next;
		c->st->host->unwatch(s->watch);
		free(s);
	}
	if (c->timer != NULL)
		c->st->host->timer_free(c->timer);
	free(c);
}

/* The channel for IN's server, transport and timeout, made on first use;
 * NULL with a message in DETAIL on failure. */
static struct dns_chan *
chan_get(struct dns_inst *in, char *detail, size_t len)
{
	struct dns_state *st = in->st;
	const struct wp_host *h = st->host;
	struct ares_options opt;
	struct dns_chan *c;
	int rc;

	for (c = st->chans; c != NULL; c = c->next)
		if (c->tcp == in->tcp && c->timeout_ms == in->timeout_ms &&
		    strcmp(c->server, in->server) == 0)
			return c;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(detail, len, "out of memory");
		return NULL;
	}
	c->st = st;
	c->tcp = in->tcp;
	c->timeout_ms = in->timeout_ms;
	snprintf(c->server, sizeof(c->server), "%s", in->server);
	if ((c->timer = h->timer_new(h, chan_tick, c)) == NULL) {
		free(c);
		snprintf(detail, len, "out of memory");
		return NULL;
	}
	memset(&opt, 0, sizeof(opt));
	/* NOCHECKRESP: a SERVFAIL or REFUSED reply is an answer to judge
	 * (it may be the expected one), not a reason to try elsewhere.  Two
	 * tries, each half the monitor's timeout: one lost datagram is
	 * retried before the host's deadline. */
	opt.flags = ARES_FLAG_NOCHECKRESP | (in->tcp ? ARES_FLAG_USEVC : 0);
	opt.tries = 2;
	opt.timeout = in->timeout_ms / 2 > 50 ? in->timeout_ms / 2 : 50;
	opt.sock_state_cb = chan_sock_state;
	opt.sock_state_cb_data = c;
	rc = ares_init_options(&c->ch, &opt, ARES_OPT_FLAGS | ARES_OPT_TRIES |
	    ARES_OPT_TIMEOUTMS | ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		h->timer_free(c->timer);
		free(c);
		snprintf(detail, len, "c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	if (c->server[0] != '\0' &&
	    (rc = ares_set_servers_ports_csv(c->ch, c->server)) !=
	    ARES_SUCCESS) {
		snprintf(detail, len, "server %s: %s", c->server,
		    ares_strerror(rc));
		chan_free(c);
		return NULL;
	}
	c->next = st->chans;
	st->chans = c;
	return c;
}

static int
dns_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct dns_inst *in = inst;
	const struct wp_host *h = in->st->host;
	struct wp_result init = WP_RESULT_INIT;
	struct dns_op *o;

	*opstate = NULL;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->inst = in;
	o->h = h;
	o->req = req;
	o->res = init;
	*opstate = o;
	if (in->chan == NULL &&
	    (in->chan = chan_get(in, req->detail, req->detail_size)) == NULL) {
		o->res.reason = WP_REASON_PLUGIN;
		o->res.detail = req->detail;
		op_complete(o);
		return WP_OK;
	}
	o->chan = in->chan;
	o->in_ares = 1;
	ares_query(o->chan->ch, in->qname, 1 /* class IN */, in->type,
	    dns_answered, o);
	chan_kick(o->chan);
	return WP_OK;
}

/* The deadline (or removal): complete now.  The query may still be in
 * c-ares, which frees the op when it lets go of it. */
static void
dns_cancel(void *inst, void *opstate)
{
	struct dns_op *o = opstate;
	struct dns_inst *in = inst;

	if (o == NULL || o->completed)
		return;
	if (o->queued) {
		/* Answered, not yet completed (a completion being handed out
		 * made the host cancel this one): it goes now, as a timeout. */
		struct dns_op **pp = &o->chan->finished;

		while (*pp != o)
			pp = &(*pp)->next;
		*pp = o->next;
		o->queued = 0;
	}
	o->res = (struct wp_result)WP_RESULT_INIT;
	o->n_meas = 0;
	o->res.reason = WP_REASON_TIMEOUT;
	dns_detail(o, "%s %s: no answer from %s in time", in->qname,
	    in->type_name, server_name(in));
	op_complete(o);
}

WP_CHECK_PLUGIN(dns,
    .version = "1.0",
    .description = "DNS query check through c-ares (name, record, server)",
    WP_KEYS(dns_keys, struct dns_conf),
    .init = dns_init,
    .fini = dns_fini,
    .configure = dns_configure,
    .release = dns_release,
    .start = dns_start,
    .cancel = dns_cancel)
