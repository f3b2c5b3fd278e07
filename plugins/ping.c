/*
 * ping.so -- the "ping" check: does the host answer an ICMP echo request?
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
 *   exec   the system ping(8), found on PATH at init(), run per check with
 *          posix_spawn (no shell, stdin /dev/null, stdout and stderr on a
 *          pipe, every other descriptor closed, default signals) and
 *          SIGKILLed at the deadline.  The pipe's EOF on host->watch says the
 *          child exited; it is then reaped without blocking.
 *
 * With a socket method every check of a family shares that family's one
 * socket: each in-flight request has its own sequence number (and a cookie
 * in the payload), replies are matched on both and on the source address,
 * and anything else is ignored.  RTT is host->now_us() at receive minus at
 * send.
 *
 * WP_PING_METHOD=auto|dgram|raw|exec in the environment forces one method,
 * for tests and troubleshooting; the default is auto.  A forced method that
 * is not available for IPv4 makes init() fail with WP_ENOTSUP; IPv6 checks
 * then fail with reason "plugin" if it is not available for IPv6.
 */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <linux/errqueue.h>

#include <watchpost/plugin.h>

#include "addr.h"

enum ping_method {
	PM_NONE = 0,
	PM_DGRAM,
	PM_RAW,
	PM_EXEC,
	PM_AUTO
};

/* linux/icmp.h's ICMP_FILTER (that header clashes with netinet/ip_icmp.h);
 * its argument, struct icmp_filter, is one 32-bit mask. */
#define PING_ICMP_FILTER 1

#define PING_BUCKETS 64
#define PING_PAYLOAD 48       /* bytes after the 8-byte ICMP header */
#define PING_RECV_BUDGET 256  /* datagrams read per wakeup */
#define PING_BATCH 16         /* datagrams per recvmmsg() */
#define PING_DGRAM_MAX 1500   /* longer datagrams are truncated */
#define PING_OUT_MAX 1024     /* ping(8) output kept for the verdict */

struct ping_op;

/* One address family's way of pinging. */
struct ping_family {
	int family;              /* AF_INET or AF_INET6 */
	int method;              /* enum ping_method */
	int fd;                  /* shared socket, -1 with exec or none */
	struct wp_watch *watch;  /* made on the loop at first use */
	char why[128];           /* why no method, for the log and results */
};

struct ping_child {
	struct ping_state *st;
	pid_t pid;
	int fd;                  /* read end of the child's stdout/stderr */
	struct wp_watch *watch;
	struct wp_timer *timer;  /* retries waitpid after EOF */
	struct ping_op *op;      /* NULL once the operation completed */
	char out[PING_OUT_MAX];
	size_t outlen;
	int64_t spawned_us;
	struct ping_child *next;
};

struct ping_state {
	const struct wp_host *host;
	struct ping_family fam[2];       /* [0] IPv4, [1] IPv6 */
	uint16_t ident;                  /* raw sockets: our identifier */
	uint16_t next_seq;
	size_t in_flight;                /* ops in table[] */
	struct ping_op *table[PING_BUCKETS];
	char *ping_path;                 /* exec: ping(8), or NULL */
	struct ping_child *children;     /* spawned and not yet reaped */
	/* recvmmsg() buffers (loop thread only) */
	struct mmsghdr msgs[PING_BATCH];
	struct iovec iov[PING_BATCH];
	struct sockaddr_storage from[PING_BATCH];
	uint8_t buf[PING_BATCH][PING_DGRAM_MAX];
};

/* The keys, as the host parsed them (ping_keys). */
struct ping_conf {
	const char *host;
};

struct ping_inst {
	struct ping_state *st;
	const char *host;         /* borrowed from the conf (see plugin.h) */
	int numeric;
	struct addr addr;
};

struct ping_op {
	struct ping_state *st;
	struct ping_inst *inst;
	struct wp_op *op;
	const struct wp_request *req; /* its detail and measurement buffers */
	int64_t started_us;
	int64_t deadline_us;
	struct wp_resolve *resolve;
	struct addr addr;
	int fi;                   /* index into st->fam */
	uint16_t seq;
	int64_t sent_us;          /* also the payload cookie */
	int hashed;
	struct ping_op *next;     /* hash chain */
	struct ping_child *child; /* exec only */
	int echoed;               /* the echo request went out */
	int64_t dns_us;
	char addrstr[INET6_ADDRSTRLEN]; /* "" until op_addr() */
};

static const struct wp_key ping_keys[] = {
	{ WP_KEY(WP_KT_HOST, "host", struct ping_conf, host),
	    .flags = WP_KEY_REQUIRED,
	    .help = "name or address to send echo requests to" },
};

static const char *
method_name(int m)
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

/* Returns the malloc'd absolute path of an executable `ping` on PATH. */
static char *
find_ping(void)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	const char *p, *end;
	size_t n;

	if (path == NULL || *path == '\0')
		path = "/usr/bin:/bin:/usr/sbin:/sbin";
	for (p = path; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n == 0 || *p != '/' || n + sizeof("/ping") > sizeof(buf))
			continue;
		memcpy(buf, p, n);
		memcpy(buf + n, "/ping", sizeof("/ping"));
		if (access(buf, X_OK) == 0)
			return strdup(buf);
	}
	return NULL;
}

/*
 * Try to give family F the method M.  Returns 1 if it works here, 0 if not
 * (with the reason in f->why).
 */
static int
try_method(struct ping_state *st, struct ping_family *f, int m)
{
	int proto = f->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	int type = m == PM_DGRAM ? SOCK_DGRAM : SOCK_RAW;
	int fd, one = 1;

	if (m == PM_EXEC) {
		if (st->ping_path == NULL)
			st->ping_path = find_ping();
		if (st->ping_path == NULL) {
			snprintf(f->why, sizeof(f->why), "no ping on PATH");
			return 0;
		}
		f->method = PM_EXEC;
		return 1;
	}
	fd = socket(f->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (fd < 0) {
		snprintf(f->why, sizeof(f->why), "%s socket: %s",
		    method_name(m), strerror(errno));
		return 0;
	}
	if (m == PM_DGRAM) {
		/* ICMP errors for our requests come on the error queue */
		if (f->family == AF_INET)
			setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one,
			    sizeof(one));
		else
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one,
			    sizeof(one));
	} else if (f->family == AF_INET) {
		/*
		 * A raw socket gets every ICMP packet on the box, our own
		 * echo requests too when they go over loopback: let the
		 * kernel drop all but the types we read (bits set = blocked).
		 */
		uint32_t block = ~(uint32_t)(1u << ICMP_ECHOREPLY |
		    1u << ICMP_DEST_UNREACH | 1u << ICMP_TIME_EXCEEDED);

		setsockopt(fd, SOL_RAW, PING_ICMP_FILTER, &block,
		    sizeof(block));
	} else {
		struct icmp6_filter flt;

		ICMP6_FILTER_SETBLOCKALL(&flt);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &flt);
		ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &flt);
		ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &flt);
		setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &flt,
		    sizeof(flt));
	}
	f->fd = fd;
	f->method = m;
	return 1;
}

static void
ping_fini(void *state)
{
	struct ping_state *st = state;
	struct ping_child *c, *next;
	const struct wp_host *h;
	int i, status;

	if (st == NULL)
		return;
	h = st->host;
	/* Children whose checks were cancelled: they were SIGKILLed, so
	 * waiting for them here is short. */
	for (c = st->children; c != NULL; c = next) {
		next = c->next;
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
		if (c->watch != NULL)
			h->unwatch(c->watch);
		if (c->timer != NULL)
			h->timer_free(c->timer);
		if (c->fd >= 0)
			close(c->fd);
		free(c);
	}
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
			    method_name(f->method));
	}
	if (st->fam[0].method == PM_NONE) {
		host->log(host, WP_LOG_ERROR, "no way to send ICMP echo "
		    "requests%s%s: %s", forced != PM_AUTO ?
		    " with WP_PING_METHOD=" : "", forced != PM_AUTO ? env : "",
		    st->fam[0].why);
		rc = WP_ENOTSUP;
		goto out;
	}
	host->log(host, WP_LOG_INFO, "ICMP method: IPv4 %s, IPv6 %s%s",
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

/* The host checked the one key; nothing is left to judge. */
static int
ping_configure(void *state, const struct wp_section *sec, const void *conf,
    void **inst)
{
	const struct ping_conf *c = conf;
	struct ping_inst *in;

	(void)sec;
	*inst = NULL;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = state;
	in->host = c->host;
	in->numeric = addr_numeric(in->host, NULL, &in->addr);
	*inst = in;
	return WP_OK;
}

static struct ping_op **
bucket(struct ping_state *st, uint16_t seq)
{
	return &st->table[seq % PING_BUCKETS];
}

static void
table_remove(struct ping_op *o)
{
	struct ping_op **pp;

	if (!o->hashed)
		return;
	for (pp = bucket(o->st, o->seq); *pp != NULL; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	o->hashed = 0;
	o->st->in_flight--;
}

static struct ping_op *
table_find(struct ping_state *st, int fi, uint16_t seq)
{
	struct ping_op *o;

	for (o = *bucket(st, seq); o != NULL; o = o->next)
		if (o->seq == seq && o->fi == fi)
			return o;
	return NULL;
}

/*
 * Complete the operation with REASON and free it; with exec, the child (if
 * still running) is killed and left to be reaped.  RTT_US: the echo's round
 * trip, or -1.  FMT: printf format of the detail, or NULL.  Once the echo
 * went out the result carries its loss (0 or 1: one echo per check) and,
 * answered, its rtt.
 */
static void ping_finish(struct ping_op *o, int reason, int64_t rtt_us,
    const char *fmt, ...) WP_PRINTF(4, 5);

static void
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
	table_remove(o);
	if (o->child != NULL) {
		o->child->op = NULL;
		kill(o->child->pid, SIGKILL);
	}
	res.reason = reason;
	res.latency_us = rtt_us;
	res.dns_us = o->dns_us;
	if (rtt_us >= 0 && n < req->max_measurements)
		m[n++] = (struct wp_measurement){ "rtt",
		    (double)rtt_us / 1e6, WP_UNIT_SECONDS };
	if (o->echoed && (reason == WP_REASON_OK ||
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
	}
	h->complete(o->op, &res);
	free(o);
}

static int
same_ip(const struct sockaddr_storage *a, const void *b, int family)
{
	if (a->ss_family != family)
		return 0;
	if (family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr, b,
		    sizeof(struct in_addr)) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, b,
	    sizeof(struct in6_addr)) == 0;
}

static const void *
sa_ip(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return &((const struct sockaddr_in *)ss)->sin_addr;
	return &((const struct sockaddr_in6 *)ss)->sin6_addr;
}

/* OP's address as text, made on first use: only messages and ping(8)
 * need it, not the checks that succeed. */
static char *
op_addr(struct ping_op *o)
{
	if (o->addrstr[0] == '\0' && inet_ntop(o->addr.ss.ss_family,
	    sa_ip(&o->addr.ss), o->addrstr, sizeof(o->addrstr)) == NULL)
		snprintf(o->addrstr, sizeof(o->addrstr), "?");
	return o->addrstr;
}

static uint16_t
checksum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)(p[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * An echo request or reply we sent: type, code, checksum, id, seq, then the
 * payload whose first 8 bytes are the sender's cookie (o->sent_us).
 * Returns 1 if ICMP (at least 16 bytes) carries OP's seq and cookie.
 */
static int
cookie_matches(const struct ping_op *o, const uint8_t *icmp, size_t n)
{
	uint64_t c = (uint64_t)o->sent_us;
	uint8_t want[8];
	int i;

	if (n < 16)
		return 0;
	for (i = 0; i < 8; i++)
		want[i] = (uint8_t)(c >> (56 - 8 * i));
	return memcmp(icmp + 8, want, 8) == 0;
}

/*
 * An ICMP error quotes at least the first 8 bytes of our request (RFC 792);
 * check the cookie only when the sender quoted it.
 */
static int
quoted_cookie_ok(const struct ping_op *o, const uint8_t *icmp, size_t n)
{
	return n < 16 || cookie_matches(o, icmp, n);
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
complete_timeout(struct ping_op *o)
{
	ping_finish(o, WP_REASON_TIMEOUT, -1,
	    "no echo reply within %gs",
	    (double)(o->deadline_us - o->started_us) / 1e6);
}

/*
 * A raw socket's ICMP error quoting one of our requests: ICMP is the
 * error's ICMP header; the quoted IP packet follows it.
 */
static void
raw_error(struct ping_state *st, int fi, const uint8_t *icmp, size_t n,
    const char *from)
{
	const uint8_t *inner = icmp + 8, *req;
	size_t left = n - 8, hl;
	struct ping_op *o;

	if (n < 8)
		return;
	if (fi == 0) {
		if (left < 20 || (inner[0] >> 4) != 4 || inner[9] != IPPROTO_ICMP)
			return;
		hl = (size_t)(inner[0] & 0x0f) * 4;
	} else {
		if (left < 40 || inner[6] != IPPROTO_ICMPV6)
			return;
		hl = 40;
	}
	if (left < hl + 8)
		return;
	req = inner + hl;
	if (req[0] != (fi == 0 ? ICMP_ECHO : ICMP6_ECHO_REQUEST) ||
	    get16(req + 4) != st->ident)
		return;
	o = table_find(st, fi, get16(req + 6));
	if (o == NULL || !quoted_cookie_ok(o, req, left - hl) ||
	    !same_ip(&o->addr.ss, inner + (fi == 0 ? 16 : 24),
	    o->addr.ss.ss_family))
		return;
	if (icmp[0] == (fi == 0 ? ICMP_TIME_EXCEEDED : ICMP6_TIME_EXCEEDED))
		ping_finish(o, WP_REASON_UNREACHABLE, -1,
		    "time exceeded reported by %s for %s", from, op_addr(o));
	else
		ping_finish(o, WP_REASON_UNREACHABLE, -1,
		    "destination unreachable (code %u) reported by %s for %s",
		    icmp[1], from, op_addr(o));
}

/* One datagram from family FI's socket. */
static void
handle_packet(struct ping_state *st, int fi, const uint8_t *buf, size_t n,
    const struct sockaddr_storage *from)
{
	struct ping_family *f = &st->fam[fi];
	const uint8_t *icmp = buf;
	struct ping_op *o;
	char fromstr[INET6_ADDRSTRLEN] = "?";
	int64_t now = st->host->now_us();

	if (fi == 0 && f->method == PM_RAW) {
		size_t hl;

		if (n < 20 || (buf[0] >> 4) != 4)
			return;
		hl = (size_t)(buf[0] & 0x0f) * 4;
		if (n < hl + 8)
			return;
		icmp = buf + hl;
		n -= hl;
	}
	if (n < 8)
		return;
	if (icmp[0] == (fi == 0 ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY)) {
		/* datagram sockets get only their own replies, with the
		 * identifier the kernel chose */
		if (f->method == PM_RAW && get16(icmp + 4) != st->ident)
			return;
		o = table_find(st, fi, get16(icmp + 6));
		if (o == NULL || !cookie_matches(o, icmp, n) ||
		    !same_ip(&o->addr.ss, sa_ip(from), from->ss_family))
			return;
		ping_finish(o, WP_REASON_OK, now - o->sent_us,
		    NULL);
		return;
	}
	if (f->method != PM_RAW)
		return;
	if (icmp[0] == (fi == 0 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH) ||
	    icmp[0] == (fi == 0 ? ICMP_TIME_EXCEEDED : ICMP6_TIME_EXCEEDED)) {
		inet_ntop(from->ss_family, sa_ip(from), fromstr,
		    sizeof(fromstr));
		raw_error(st, fi, icmp, n, fromstr);
	}
}

/*
 * A datagram socket's error queue: each entry quotes the echo request it is
 * about (as we sent it: our seq and cookie) and carries the error.
 */
static int
drain_errqueue(struct ping_state *st, int fi)
{
	struct ping_family *f = &st->fam[fi];
	uint8_t data[256];
	union {
		char buf[512];
		struct cmsghdr align;
	} cbuf;
	struct sockaddr_storage dst;
	struct iovec iov = { data, sizeof(data) };
	struct msghdr msg;
	struct cmsghdr *cm;
	struct sock_extended_err *ee;
	struct ping_op *o;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &dst;
	msg.msg_namelen = sizeof(dst);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	n = recvmsg(f->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
	if (n < 0)
		return 0;
	ee = NULL;
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
		if ((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR) ||
		    (cm->cmsg_level == IPPROTO_IPV6 &&
		    cm->cmsg_type == IPV6_RECVERR))
			ee = (struct sock_extended_err *)CMSG_DATA(cm);
	if (ee == NULL || n < 8)
		return 1;
	o = table_find(st, fi, get16(data + 6));
	if (o == NULL || !quoted_cookie_ok(o, data, (size_t)n))
		return 1;
	if (ee->ee_origin == SO_EE_ORIGIN_ICMP ||
	    ee->ee_origin == SO_EE_ORIGIN_ICMP6)
		ping_finish(o, WP_REASON_UNREACHABLE, -1, "%s: %s "
		    "(ICMP type %u code %u)", op_addr(o),
		    strerror((int)ee->ee_errno), ee->ee_type, ee->ee_code);
	else
		ping_finish(o, WP_REASON_IO, -1, "%s: %s", op_addr(o),
		    strerror((int)ee->ee_errno));
	return 1;
}

/* Read family FI's error queue until it is empty (bounded). */
static void
drain_errqueue_all(struct ping_state *st, int fi)
{
	int i;

	for (i = 0; i < PING_RECV_BUDGET && drain_errqueue(st, fi); i++)
		;
}

/*
 * Family FI's socket is readable or has an error.  Datagrams are read
 * PING_BATCH at a time with recvmmsg(): one system call per wakeup when
 * replies come one at a time.  A datagram socket reports an ICMP error as
 * a failed read (the socket error) with the details on its error queue,
 * which is read then; and also when a wakeup brings no datagram at all,
 * since a queued entry without a socket error would keep waking us.
 */
static void
sock_readable(struct wp_watch *w, int fd, unsigned revents, void *arg)
{
	struct ping_state *st = arg;
	int fi = st->fam[0].watch == w ? 0 : 1;
	int dgram = st->fam[fi].method == PM_DGRAM;
	int i, k, n, got = 0;

	(void)revents;
	for (i = 0; i < PING_RECV_BUDGET; i += n > 0 ? n : 1) {
		for (k = 0; k < PING_BATCH; k++)
			st->msgs[k].msg_hdr.msg_namelen = sizeof(st->from[k]);
		n = recvmmsg(fd, st->msgs, PING_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			/* a reported socket error: consumed */
			if (dgram)
				drain_errqueue_all(st, fi);
			continue;
		}
		if (n < 0) {
			if (dgram && got == 0)
				drain_errqueue_all(st, fi);
			return;
		}
		for (k = 0; k < n; k++)
			handle_packet(st, fi, st->buf[k], st->msgs[k].msg_len,
			    &st->from[k]);
		got += n;
		if (n < PING_BATCH)
			return;
	}
}

/* Send OP's echo request on its family's shared socket. */
static void
send_echo(struct ping_op *o)
{
	struct ping_state *st = o->st;
	struct ping_family *f = &st->fam[o->fi];
	const struct wp_host *h = st->host;
	uint8_t pkt[8 + PING_PAYLOAD];
	uint16_t sum;
	uint64_t c;
	int i, e;

	if (f->watch == NULL) {
		f->watch = h->watch(h, f->fd, WP_READABLE, sock_readable, st);
		if (f->watch == NULL) {
			ping_finish(o, WP_REASON_PLUGIN, -1,
			    "cannot watch the ICMP socket");
			return;
		}
	}
	if (st->in_flight >= 65535) {
		ping_finish(o, WP_REASON_PLUGIN, -1,
		    "too many echo requests in flight");
		return;
	}
	do
		o->seq = st->next_seq++;
	while (table_find(st, o->fi, o->seq) != NULL);
	o->sent_us = h->now_us();
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = o->fi == 0 ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
	pkt[4] = (uint8_t)(st->ident >> 8);
	pkt[5] = (uint8_t)st->ident;
	pkt[6] = (uint8_t)(o->seq >> 8);
	pkt[7] = (uint8_t)o->seq;
	c = (uint64_t)o->sent_us;
	for (i = 0; i < 8; i++)
		pkt[8 + i] = (uint8_t)(c >> (56 - 8 * i));
	for (i = 16; i < (int)sizeof(pkt); i++)
		pkt[i] = (uint8_t)i;
	/* the kernel computes ICMPv6 checksums itself */
	if (o->fi == 0) {
		sum = checksum(pkt, sizeof(pkt));
		pkt[2] = (uint8_t)(sum >> 8);
		pkt[3] = (uint8_t)sum;
	}
	o->next = *bucket(st, o->seq);
	*bucket(st, o->seq) = o;
	o->hashed = 1;
	st->in_flight++;
	if (sendto(f->fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&o->addr.ss,
	    o->addr.len) == (ssize_t)sizeof(pkt)) {
		o->echoed = 1;
		return;
	}
	e = errno;
	if (e == EHOSTUNREACH || e == ENETUNREACH || e == EACCES ||
	    e == EPERM || e == EADDRNOTAVAIL)
		ping_finish(o, WP_REASON_UNREACHABLE, -1, "%s: %s",
		    op_addr(o), strerror(e));
	else
		ping_finish(o, WP_REASON_IO, -1, "sending to %s: %s",
		    op_addr(o), strerror(e));
}

static void child_reap(struct ping_child *c);

static void
child_free(struct ping_child *c)
{
	const struct wp_host *h = c->st->host;
	struct ping_child **pp;

	for (pp = &c->st->children; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->watch != NULL)
		h->unwatch(c->watch);
	if (c->timer != NULL)
		h->timer_free(c->timer);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* ping(8) has exited with STATUS (-1: unknown): complete its operation. */
static void
child_done(struct ping_child *c, int status)
{
	struct ping_op *o = c->op;
	int64_t now = c->st->host->now_us();
	const char *t;
	char *nl;
	double rtt_ms;

	if (o == NULL)
		goto out;
	o->child = NULL;
	c->out[c->outlen] = '\0';
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		t = strstr(c->out, "time=");
		/* ping(8) prints ms */
		if (t == NULL || sscanf(t + 5, "%lf", &rtt_ms) != 1 ||
		    !(rtt_ms >= 0 && rtt_ms < 1e9))
			ping_finish(o, WP_REASON_OK, now - c->spawned_us, NULL);
		else
			ping_finish(o, WP_REASON_OK, (int64_t)(rtt_ms * 1000),
			    NULL);
	} else if (strstr(c->out, "nreachable") != NULL ||
	    strstr(c->out, "No route to host") != NULL) {
		/* "Destination Host Unreachable", "connect: No route to
		 * host", "connect: Network is unreachable" (LC_ALL=C) */
		ping_finish(o, WP_REASON_UNREACHABLE, -1,
		    "%s: destination unreachable", op_addr(o));
	} else if (status != -1 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 1) {
		complete_timeout(o);
	} else {
		nl = strchr(c->out, '\n');
		if (nl != NULL)
			*nl = '\0';
		ping_finish(o, WP_REASON_IO, -1, "ping %s failed: %s",
		    op_addr(o), c->out[0] ? c->out : "no output");
	}
out:
	child_free(c);
}

static void
child_retry(struct wp_timer *t, void *arg)
{
	(void)t;
	child_reap(arg);
}

/* After EOF: reap without blocking, retrying shortly if not exited yet. */
static void
child_reap(struct ping_child *c)
{
	const struct wp_host *h = c->st->host;
	int status;
	pid_t r;

	do
		r = waitpid(c->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == c->pid) {
		child_done(c, status);
		return;
	}
	if (r < 0) { /* reaped elsewhere (SIGCHLD ignored): verdict by output */
		child_done(c, -1);
		return;
	}
	if (c->timer == NULL)
		c->timer = h->timer_new(h, child_retry, c);
	if (c->timer == NULL || h->timer_set(c->timer, 5000) != 0) {
		/* cannot wait without blocking; it has closed its output
		 * and is exiting */
		waitpid(c->pid, &status, 0);
		child_done(c, status);
	}
}

static void
child_readable(struct wp_watch *w, int fd, unsigned revents, void *arg)
{
	struct ping_child *c = arg;
	char buf[512];
	ssize_t n;
	size_t k;

	(void)w;
	(void)revents;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			k = (size_t)n;
			if (k > sizeof(c->out) - 1 - c->outlen)
				k = sizeof(c->out) - 1 - c->outlen;
			memcpy(c->out + c->outlen, buf, k);
			c->outlen += k;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* EOF or a read error: the child is gone */
	}
	c->st->host->unwatch(c->watch);
	c->watch = NULL;
	close(c->fd);
	c->fd = -1;
	child_reap(c);
}

/* Run ping(8) for OP; completes OP itself on failure. */
static void
spawn_ping(struct ping_op *o)
{
	struct ping_state *st = o->st;
	const struct wp_host *h = st->host;
	static char *const envp[] = { "LC_ALL=C",
	    "PATH=/usr/bin:/bin:/usr/sbin:/sbin", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct ping_child *c = NULL;
	sigset_t none, all;
	char wait_s[16];
	char *argv[10];
	int p[2] = { -1, -1 }, rc, fa_ok = 0, attr_ok = 0, argc = 0;
	int64_t left;

	c = calloc(1, sizeof(*c));
	if (c == NULL || pipe2(p, O_CLOEXEC) != 0) {
		ping_finish(o, WP_REASON_PLUGIN, -1, "cannot run ping: %s",
		    strerror(errno));
		goto out;
	}
	fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
	left = (o->deadline_us - h->now_us() + 999999) / 1000000;
	snprintf(wait_s, sizeof(wait_s), "%lld", (long long)(left < 1 ? 1 :
	    left));
	argv[argc++] = st->ping_path;
	argv[argc++] = o->fi == 0 ? "-4" : "-6";
	argv[argc++] = "-n";
	argv[argc++] = "-c";
	argv[argc++] = "1";
	argv[argc++] = "-W";
	argv[argc++] = wait_s;
	argv[argc++] = op_addr(o);
	argv[argc] = NULL;

	rc = posix_spawn_file_actions_init(&fa);
	fa_ok = rc == 0;
	if (rc == 0)
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
		    O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0) {
		rc = posix_spawnattr_init(&attr);
		attr_ok = rc == 0;
	}
	if (rc == 0) {
		sigemptyset(&none);
		sigfillset(&all);
		rc = posix_spawnattr_setsigmask(&attr, &none);
		if (rc == 0)
			rc = posix_spawnattr_setsigdefault(&attr, &all);
		if (rc == 0)
			rc = posix_spawnattr_setflags(&attr,
			    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	}
	c->spawned_us = h->now_us();
	if (rc == 0)
		rc = posix_spawn(&c->pid, st->ping_path, &fa, &attr, argv,
		    envp);
	if (rc != 0) {
		ping_finish(o, WP_REASON_PLUGIN, -1, "cannot run %s: %s",
		    st->ping_path, strerror(rc));
		goto out;
	}
	close(p[1]);
	p[1] = -1;
	c->st = st;
	c->fd = p[0];
	p[0] = -1;
	c->op = o;
	o->child = c;
	c->next = st->children;
	st->children = c;
	c->watch = h->watch(h, c->fd, WP_READABLE, child_readable, c);
	o->echoed = 1;
	if (c->watch == NULL) {
		/* kills the child; reap it from fini() */
		o->echoed = 0;
		ping_finish(o, WP_REASON_PLUGIN, -1,
		    "cannot watch ping's output");
	}
	c = NULL;
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	free(c);
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
		send_echo(o);
		break;
	case PM_EXEC:
		spawn_ping(o);
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

	*opstate = NULL;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return WP_ENOMEM;
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
		complete_timeout(opstate);
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
