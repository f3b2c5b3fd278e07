/*
 * slowloris -- hold many slow and idle HTTP connections open against a
 * loopback server, for tests/test-api-slowloris.sh.
 *
 *   slowloris PORT SLOW IDLE SECONDS [INTERVAL_MS]
 *
 * Opens SLOW connections to 127.0.0.1:PORT that send a request line and
 * then one byte of a header every INTERVAL_MS (default 1000; the request
 * never ends), and IDLE connections that send nothing.  Prints "OPEN N"
 * once all are connected, then "CLOSED slow=A idle=B" each time the server
 * has closed more of them, and exits after SECONDS or once the server has
 * closed them all.  Exit status 0, or 1 on a setup error (on stderr).
 * Single-threaded (poll), so a thousand connections cost a thousand
 * descriptors and nothing else.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
connect_one(int port)
{
	struct sockaddr_in sin;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	static const char start[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
	    "X-Slow: ";
	struct pollfd *pfd;
	struct rlimit rl;
	long long end, next_send, t;
	int port, slow, idle, seconds, interval = 1000, n, i, open_n;
	int closed_slow = 0, closed_idle = 0, reported = 0;
	char buf[512];
	ssize_t r;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: slowloris PORT SLOW IDLE SECONDS "
		    "[INTERVAL_MS]\n");
		return 1;
	}
	port = atoi(argv[1]);
	slow = atoi(argv[2]);
	idle = atoi(argv[3]);
	seconds = atoi(argv[4]);
	if (argc == 6)
		interval = atoi(argv[5]);
	n = slow + idle;
	if (port <= 0 || slow < 0 || idle < 0 || n == 0 || seconds <= 0 ||
	    interval <= 0) {
		fprintf(stderr, "slowloris: bad arguments\n");
		return 1;
	}
	/* Bounded however the server behaves. */
	alarm((unsigned)seconds + 30);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	pfd = calloc((size_t)n, sizeof(*pfd));
	if (pfd == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		if ((pfd[i].fd = connect_one(port)) == -1) {
			fprintf(stderr, "slowloris: connection %d: %s\n", i,
			    strerror(errno));
			return 1;
		}
		pfd[i].events = POLLIN;
		if (i < slow && send(pfd[i].fd, start, sizeof(start) - 1,
		    MSG_NOSIGNAL) == -1) {
			fprintf(stderr, "slowloris: send: %s\n",
			    strerror(errno));
			return 1;
		}
	}
	printf("OPEN %d\n", n);
	fflush(stdout);

	end = now_ms() + (long long)seconds * 1000;
	next_send = now_ms() + interval;
	open_n = n;
	while (open_n > 0 && (t = now_ms()) < end) {
		int wait = (int)(next_send - t);

		if (wait < 0)
			wait = 0;
		if (poll(pfd, (nfds_t)n, wait) == -1 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			/* Any answer or EOF: the server is done with it. */
			r = recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r > 0 || (r == -1 && errno == EAGAIN))
				continue;
			close(pfd[i].fd);
			pfd[i].fd = -1;
			open_n--;
			if (i < slow)
				closed_slow++;
			else
				closed_idle++;
		}
		if (now_ms() >= next_send) {
			for (i = 0; i < slow; i++)
				if (pfd[i].fd >= 0)
					(void)send(pfd[i].fd, "a", 1,
					    MSG_NOSIGNAL);
			next_send += interval;
		}
		if (closed_slow + closed_idle != reported) {
			reported = closed_slow + closed_idle;
			printf("CLOSED slow=%d idle=%d\n", closed_slow,
			    closed_idle);
			fflush(stdout);
		}
	}
	for (i = 0; i < n; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	free(pfd);
	return 0;
}
