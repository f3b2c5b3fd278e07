/*
 * ping-socket.c -- ping.so's socket back-end: the dgram and raw ICMP
 * methods (see ping.c).  One socket per family, shared by every check:
 * requests in flight are in a hash table on their sequence number; a
 * reply or ICMP error is matched on sequence, payload cookie and address.
 */
#define _GNU_SOURCE /* recvmmsg */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <linux/errqueue.h>

#include "ping.h"

int
ping_sock_open(struct ping_family *f, int m)
{
	int proto = f->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	int type = m == PM_DGRAM ? SOCK_DGRAM : SOCK_RAW;
	int fd, one = 1;

	fd = socket(f->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (fd < 0) {
		snprintf(f->why, sizeof(f->why), "%s socket: %s",
		    ping_method_name(m), strerror(errno));
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


static struct ping_echo **
bucket(struct ping_state *st, uint16_t seq)
{
	return &st->table[seq % PING_BUCKETS];
}

/* Take E out of the table (if it is in it). */
static void
echo_forget(struct ping_echo *e)
{
	struct ping_echo **pp;
	struct ping_state *st;

	/* Not hashed: never sent on a socket (the exec back-end counts its
	 * echoes without filling the records, e->op is NULL then). */
	if (!e->hashed)
		return;
	st = e->op->st;
	for (pp = bucket(st, e->seq); *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	e->hashed = 0;
	st->in_flight--;
}

void
ping_sock_forget(struct ping_op *o)
{
	unsigned k;

	for (k = 0; k < o->sent && k < o->count; k++)
		echo_forget(&o->echo[k]);
}

static struct ping_echo *
table_find(struct ping_state *st, int fi, uint16_t seq)
{
	struct ping_echo *e;

	for (e = *bucket(st, seq); e != NULL; e = e->next)
		if (e->seq == seq && e->op->fi == fi)
			return e;
	return NULL;
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
 * payload whose first 8 bytes are the sender's cookie (e->sent_us).
 * Returns 1 if ICMP (at least 16 bytes) carries E's cookie.
 */
static int
cookie_matches(const struct ping_echo *e, const uint8_t *icmp, size_t n)
{
	uint64_t c = (uint64_t)e->sent_us;
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
quoted_cookie_ok(const struct ping_echo *e, const uint8_t *icmp, size_t n)
{
	return n < 16 || cookie_matches(e, icmp, n);
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
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
	struct ping_echo *e;
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
	e = table_find(st, fi, get16(req + 6));
	if (e == NULL || !quoted_cookie_ok(e, req, left - hl) ||
	    !same_ip(&e->op->addr.ss, inner + (fi == 0 ? 16 : 24),
	    e->op->addr.ss.ss_family))
		return;
	o = e->op;
	echo_forget(e);
	if (icmp[0] == (fi == 0 ? ICMP_TIME_EXCEEDED : ICMP6_TIME_EXCEEDED))
		ping_echo_settled(e, -1, WP_REASON_UNREACHABLE,
		    "time exceeded reported by %s for %s", from, ping_op_addr(o));
	else
		ping_echo_settled(e, -1, WP_REASON_UNREACHABLE,
		    "destination unreachable (code %u) reported by %s for %s",
		    icmp[1], from, ping_op_addr(o));
}

/* One datagram from family FI's socket. */
static void
handle_packet(struct ping_state *st, int fi, const uint8_t *buf, size_t n,
    const struct sockaddr_storage *from)
{
	struct ping_family *f = &st->fam[fi];
	const uint8_t *icmp = buf;
	struct ping_echo *e;
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
		e = table_find(st, fi, get16(icmp + 6));
		if (e == NULL || !cookie_matches(e, icmp, n) ||
		    !same_ip(&e->op->addr.ss, ping_sa_ip(from),
		    from->ss_family))
			return;
		echo_forget(e);
		ping_echo_settled(e, now - e->sent_us, WP_REASON_OK, NULL);
		return;
	}
	if (f->method != PM_RAW)
		return;
	if (icmp[0] == (fi == 0 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH) ||
	    icmp[0] == (fi == 0 ? ICMP_TIME_EXCEEDED : ICMP6_TIME_EXCEEDED)) {
		inet_ntop(from->ss_family, ping_sa_ip(from), fromstr,
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
	struct ping_echo *e;
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
	e = table_find(st, fi, get16(data + 6));
	if (e == NULL || !quoted_cookie_ok(e, data, (size_t)n))
		return 1;
	o = e->op;
	echo_forget(e);
	if (ee->ee_origin == SO_EE_ORIGIN_ICMP ||
	    ee->ee_origin == SO_EE_ORIGIN_ICMP6)
		ping_echo_settled(e, -1, WP_REASON_UNREACHABLE, "%s: %s "
		    "(ICMP type %u code %u)", ping_op_addr(o),
		    strerror((int)ee->ee_errno), ee->ee_type, ee->ee_code);
	else
		ping_echo_settled(e, -1, WP_REASON_IO, "%s: %s",
		    ping_op_addr(o), strerror((int)ee->ee_errno));
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

int
ping_sock_send(struct ping_op *o)
{
	struct ping_state *st = o->st;
	struct ping_family *f = &st->fam[o->fi];
	const struct wp_host *h = st->host;
	struct ping_echo *e = &o->echo[o->sent];
	uint8_t pkt[8 + PING_PAYLOAD];
	uint16_t sum;
	uint64_t c;
	int i, err, alive;

	if (f->watch == NULL) {
		f->watch = h->watch(h, f->fd, WP_READABLE, sock_readable, st);
		if (f->watch == NULL) {
			ping_finish(o, WP_REASON_PLUGIN, -1,
			    "cannot watch the ICMP socket");
			return 0;
		}
	}
	if (st->in_flight >= 65535) {
		ping_finish(o, WP_REASON_PLUGIN, -1,
		    "too many echo requests in flight");
		return 0;
	}
	o->sent++;
	e->op = o;
	e->rtt_us = -1;
	do
		e->seq = st->next_seq++;
	while (table_find(st, o->fi, e->seq) != NULL);
	e->sent_us = h->now_us();
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = o->fi == 0 ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
	pkt[4] = (uint8_t)(st->ident >> 8);
	pkt[5] = (uint8_t)st->ident;
	pkt[6] = (uint8_t)(e->seq >> 8);
	pkt[7] = (uint8_t)e->seq;
	c = (uint64_t)e->sent_us;
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
	e->next = *bucket(st, e->seq);
	*bucket(st, e->seq) = e;
	e->hashed = 1;
	st->in_flight++;
	if (sendto(f->fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&o->addr.ss,
	    o->addr.len) == (ssize_t)sizeof(pkt)) {
		o->echoed = 1;
		return 1;
	}
	err = errno;
	echo_forget(e);
	/* A refusal is this echo's loss (the others may still get
	 * through); any other failure ends the check. */
	if (err == EHOSTUNREACH || err == ENETUNREACH || err == EACCES ||
	    err == EPERM || err == EADDRNOTAVAIL) {
		/* one echo: no loss measured, as before count existed */
		if (o->count > 1)
			o->echoed = 1;
		/* settles O when this was its last unsettled echo */
		alive = o->count > 1 && (o->settled + 1 < o->count ||
		    o->sent < o->count);
		ping_echo_settled(e, -1, WP_REASON_UNREACHABLE, "%s: %s",
		    ping_op_addr(o), strerror(err));
		return alive;
	}
	ping_finish(o, WP_REASON_IO, -1, "sending to %s: %s",
	    ping_op_addr(o), strerror(err));
	return 0;
}
