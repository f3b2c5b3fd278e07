/*
 * ping.h -- what the ping plugin's three files share (private to ping.so):
 * its state, instance and operation, and the seams between the glue
 * (ping.c: init, configure, start, cancel, completion), the socket
 * back-end (ping-socket.c: dgram and raw ICMP on one shared socket per
 * family) and the exec back-end (ping-exec.c: the system ping(8), run
 * without a shell).  Every function here runs on the loop thread, except
 * the *_setup/_open and *_fini ones, which init() and fini() call on the
 * main thread.  Include it after defining _GNU_SOURCE (struct mmsghdr).
 */
#ifndef PLUGINS_PING_H
#define PLUGINS_PING_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <netinet/in.h>

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

/* One echo request of an operation (an operation owns `count` of them, in
 * its echo[] array): what the table of requests in flight holds, so that
 * a reply or ICMP error is matched to an echo, which updates its op. */
struct ping_echo {
	struct ping_op *op;
	uint16_t seq;
	int hashed;               /* in the table */
	int64_t sent_us;          /* also the payload cookie; 0 not sent */
	int64_t rtt_us;           /* < 0: no reply (yet) */
	struct ping_echo *next;   /* hash chain */
};

/* One address family's way of pinging. */
struct ping_family {
	int family;              /* AF_INET or AF_INET6 */
	int method;              /* enum ping_method */
	int fd;                  /* shared socket, -1 with exec or none */
	struct wp_watch *watch;  /* made on the loop at first use */
	char why[128];           /* why no method, for the log and results */
};

/* One ping(8) run (host->spawn); freed by its callback. */
struct ping_child {
	struct ping_state *st;
	struct wp_proc *proc;
	struct ping_op *op;      /* NULL once the operation completed */
	struct ping_child *next;
};

struct ping_state {
	const struct wp_host *host;
	struct ping_family fam[2];       /* [0] IPv4, [1] IPv6 */
	uint16_t ident;                  /* raw sockets: our identifier */
	uint16_t next_seq;
	size_t in_flight;                /* echoes in table[] */
	struct ping_echo *table[PING_BUCKETS];
	char *ping_path;                 /* exec: ping(8), or NULL */
	struct ping_child *children;     /* spawned, not called back yet */
	/* recvmmsg() buffers (loop thread only) */
	struct mmsghdr msgs[PING_BATCH];
	struct iovec iov[PING_BATCH];
	struct sockaddr_storage from[PING_BATCH];
	uint8_t buf[PING_BATCH][PING_DGRAM_MAX];
};

/* The keys, as the host parsed them (ping_keys). */
struct ping_conf {
	const char *host;
	int64_t count;
	int64_t packet_interval;  /* us */
	const char *loss_warn;    /* "20%" or "0.2"; NULL none */
	const char *loss_max;
};

struct ping_inst {
	struct ping_state *st;
	const char *host;         /* borrowed from the conf (see plugin.h) */
	int numeric;
	struct addr addr;
	unsigned count;           /* echoes per check, 1..PING_COUNT_MAX */
	int64_t interval_us;      /* between two echoes of a check */
	double loss_warn;         /* degraded at this loss; < 0: never */
	double loss_max;          /* down at this loss (1: all lost) */
};

#define PING_COUNT_MAX 100
#define PING_EXEC_INTERVAL_MIN 200000 /* us: ping(8) -i for a non-root user */
/* A check with count > 1 concludes by itself this long before the host's
 * deadline: a cancelled (timed-out) check is recorded as a timeout
 * whatever it reports, and would lose its partial-loss verdict. */
#define PING_MARGIN_US 50000

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
	struct ping_child *child; /* exec only */
	int echoed;               /* an echo request went out */
	int64_t dns_us;
	char addrstr[INET6_ADDRSTRLEN]; /* "" until ping_op_addr() */
	/* count > 1 only */
	struct wp_timer *timer;   /* the next echo, then the end of the wait */
	unsigned count;           /* == inst->count */
	unsigned sent;            /* echoes sent (or failed to send) */
	unsigned settled;         /* echoes answered or refused by an error */
	int err_reason;           /* the first ICMP error's reason, 0 none */
	int detail_set;           /* its message is in req->detail */
	int have_stats;           /* ping_finish() reports the st_* below */
	double st_loss;
	int64_t st_min, st_avg, st_max, st_jitter; /* us; st_avg < 0: none */
	struct ping_echo echo[];  /* count of them */
};


/* "dgram", "raw", "exec" or "none". */
const char *ping_method_name(int m);
/* The IP address inside SS (IPv4 or IPv6). */
const void *ping_sa_ip(const struct sockaddr_storage *ss);
/* OP's address as text, made on first use: only messages and ping(8)
 * need it, not the checks that succeed. */
char *ping_op_addr(struct ping_op *o);

/*
 * Complete the operation with REASON and free it; with exec, the child (if
 * still running) is killed and left to be reaped.  RTT_US: the echo's round
 * trip, or -1.  FMT: printf format of the detail (written into the
 * request's buffer), or NULL.  Once the echo went out (o->echoed) the
 * result carries its loss (0 or 1: one echo per check) and, answered, its
 * rtt.  After this call O is gone.
 */
void ping_finish(struct ping_op *o, int reason, int64_t rtt_us,
    const char *fmt, ...) WP_PRINTF(4, 5);
/* ping_finish() as a timeout: "no echo reply within Ns" (count 1, or
 * nothing sent yet), or the verdict over the echoes so far (count > 1,
 * unsent ones lost; the host records a timeout all the same). */
void ping_timeout(struct ping_op *o);
/* Echo E of its op was answered after RTT_US (rtt_us >= 0) or refused by
 * an ICMP error (rtt_us < 0: REASON and the message FMT); completes the op
 * when that settles it.  E is out of the table already. */
void ping_echo_settled(struct ping_echo *e, int64_t rtt_us, int reason,
    const char *fmt, ...) WP_PRINTF(4, 5);
/* Count > 1: every echo was sent and settled, or the wait after the last
 * one is over: compute the statistics and complete O with the verdict. */
void ping_conclude(struct ping_op *o);

#include "ping-verdict.h"

/* Socket back-end (ping-socket.c). */
/* Open family F's shared socket for method M (PM_DGRAM or PM_RAW) and set
 * f->fd and f->method: 1.  0 if M does not work here (reason in f->why). */
int ping_sock_open(struct ping_family *f, int m);
/* Send OP's next echo request (echo[o->sent]) on its family's socket;
 * completes OP itself on failure, and later when the replies or ICMP
 * errors settle it.  Returns 0 if OP completed inside (OP is gone), else
 * 1. */
int ping_sock_send(struct ping_op *o);
/* Take OP's echoes out of the table of requests in flight. */
void ping_sock_forget(struct ping_op *o);

/* Exec back-end (ping-exec.c). */
/* Find ping(8) on PATH for family F (the host must offer spawn): 1 and
 * f->method = PM_EXEC, or 0 (reason in f->why). */
int ping_exec_setup(struct ping_state *st, struct ping_family *f);
/* Run ping(8) for OP; completes OP itself on failure, and when it exits. */
void ping_exec_spawn(struct ping_op *o);
/* OP completes: kill its child, if any (spawn_kill: its callback still
 * comes, and frees it). */
void ping_exec_detach(struct ping_op *o);
/* Free the children not called back yet (fini); the agent kills and
 * reaps their commands after fini(). */
void ping_exec_fini(struct ping_state *st);

#endif
