/*
 * bench/target -- the loopback targets of bench/run: a fast HTTP server
 * and a black hole, in one single-threaded epoll process.
 *
 * Usage: target HITS_FILE
 *
 * It listens on two ports of 127.0.0.1 chosen by the kernel and prints
 * "PORT <n>" and "BLACKHOLE <n>" on stdout, then flushes.
 *
 *   PORT       answers every request at once with 200 "ok" (HTTP/1.1
 *              keep-alive unless the client says close or speaks 1.0).
 *   BLACKHOLE  accepts, reads and discards, never answers; a connection
 *              lives until the client closes it.
 *
 * Every request head that arrives on either port is recorded as a hit:
 * its class ('m' for a path /m/ID, 'r' for /r/ID, on the black hole 'b'),
 * ID and arrival time (CLOCK_REALTIME, microseconds).  Requests for other
 * paths are answered but not recorded.  Each connection accepted on PORT
 * is recorded too, as class 'a' with ID 0 (keep-alive clients make fewer).  On SIGTERM or SIGINT the hits
 * are written to HITS_FILE as lines "CLASS ID MICROSECONDS" and the
 * process exits 0.  It also exits by itself after 30 minutes, so a lost
 * target never outlives a run for long.  Exit 1 on a start-up error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define HEAD_MAX 8192
#define LIFETIME_S 1800

struct conn {
	int fd;
	int blackhole;
	size_t len;
	char buf[HEAD_MAX];
};

struct hit {
	int64_t t_us;
	uint32_t id;
	char cls;
};

static volatile sig_atomic_t stop;
static struct hit *hits;
static size_t n_hits, cap_hits;

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    "Content-Length: 2\r\n\r\nok";
static const char reply_close[] = "HTTP/1.1 200 OK\r\nContent-Type: "
    "text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Listen on 127.0.0.1, any port; returns the fd or -1. */
static int
listen_any(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fd, 4096) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static void
record(char cls, const char *path)
{
	struct hit *h;
	char *end;
	unsigned long id;

	id = strtoul(path, &end, 10);
	if (end == path)
		return;
	if (n_hits == cap_hits) {
		cap_hits = cap_hits ? cap_hits * 2 : 65536;
		if ((h = realloc(hits, cap_hits * sizeof(*hits))) == NULL) {
			fprintf(stderr, "target: out of memory\n");
			exit(1);
		}
		hits = h;
	}
	hits[n_hits].t_us = wall_us();
	hits[n_hits].id = (uint32_t)id;
	hits[n_hits].cls = cls;
	n_hits++;
}

/*
 * Handle every complete request head in C's buffer.  Returns 0 to keep
 * the connection, -1 to close it.
 */
static int
serve(struct conn *c)
{
	char *end, *p;
	size_t used;
	int close_after;

	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL) {
		*end = '\0';
		p = strchr(c->buf, ' ');
		if (p != NULL) {
			p++;
			if (c->blackhole && strncmp(p, "/m/", 3) == 0)
				record('b', p + 3);
			else if (strncmp(p, "/m/", 3) == 0)
				record('m', p + 3);
			else if (strncmp(p, "/r/", 3) == 0)
				record('r', p + 3);
		}
		used = (size_t)(end - c->buf) + 4;
		close_after = strstr(c->buf, "HTTP/1.0") != NULL ||
		    strcasestr(c->buf, "\nConnection: close") != NULL;
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		if (c->blackhole)
			continue;
		if (close_after) {
			/* A loopback socket buffer takes the whole reply. */
			if (write(c->fd, reply_close, sizeof(reply_close) - 1) < 0)
				return -1;
			return -1;
		}
		if (write(c->fd, reply, sizeof(reply) - 1) < 0)
			return -1;
	}
	if (c->len == sizeof(c->buf))
		c->len = 0; /* an oversized head: forget it, keep reading */
	return 0;
}

static void
dump(const char *file)
{
	FILE *f = fopen(file, "w");
	size_t i;

	if (f == NULL) {
		perror(file);
		exit(1);
	}
	for (i = 0; i < n_hits; i++)
		fprintf(f, "%c %u %lld\n", hits[i].cls, hits[i].id,
		    (long long)hits[i].t_us);
	if (fclose(f) != 0) {
		perror(file);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	struct epoll_event ev, evs[256];
	struct sigaction sa;
	struct rlimit rl;
	struct conn *c;
	int ep, lfd, bfd, port, bport, n, i, fd, one = 1;
	time_t deadline = time(NULL) + LIFETIME_S;
	ssize_t r;

	if (argc != 2) {
		fprintf(stderr, "usage: target HITS_FILE\n");
		return 1;
	}
	/* The black hole holds one descriptor per pending check. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = listen_any(&port)) < 0 || (bfd = listen_any(&bport)) < 0 ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("target: listen");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &bfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, bfd, &ev);
	printf("PORT %d\nBLACKHOLE %d\n", port, bport);
	fflush(stdout);

	while (!stop && time(NULL) < deadline) {
		n = epoll_wait(ep, evs, 256, 200);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &lfd || evs[i].data.ptr == &bfd) {
				int l = *(int *)evs[i].data.ptr;

				while ((fd = accept4(l, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if ((c = calloc(1, sizeof(*c))) == NULL) {
						close(fd);
						continue;
					}
					c->fd = fd;
					c->blackhole = l == bfd;
					if (!c->blackhole)
						record('a', "0");
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
					    &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			c = evs[i].data.ptr;
			for (;;) {
				r = read(c->fd, c->buf + c->len,
				    sizeof(c->buf) - c->len);
				if (r > 0) {
					c->len += (size_t)r;
					if (serve(c) != 0)
						goto close_conn;
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				goto close_conn; /* EOF or error */
			}
			continue;
close_conn:
			close(c->fd); /* also leaves the epoll set */
			free(c);
		}
	}
	dump(argv[1]);
	return 0;
}
