/*
 * logsink -- a stand-in for the system logger in watchpost's tests.
 *
 * Usage: logsink PATH
 *
 * Binds an AF_UNIX datagram socket at PATH (what syslog(3) writes to as
 * /dev/log), prints "READY" once bound, then writes every datagram it
 * receives to stdout as one line and flushes.  It exits 0 on SIGTERM or
 * SIGINT and after 120 s at most, so a forgotten sink never lingers.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sigaction act = { .sa_handler = on_signal };
	char buf[4096];
	ssize_t n;
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: logsink PATH (shorter than %zu)\n",
		    sizeof(sa.sun_path));
		return 2;
	}
	/* No SA_RESTART: a signal ends the blocking recv(). */
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGALRM, &act, NULL);
	alarm(120);
	strcpy(sa.sun_path, argv[1]);
	unlink(sa.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("logsink");
		return 1;
	}
	chmod(sa.sun_path, 0666); /* the agent may have dropped privileges */
	printf("READY\n");
	fflush(stdout);
	while (!stop) {
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			continue;
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		printf("%s\n", buf);
		fflush(stdout);
	}
	close(fd);
	unlink(sa.sun_path);
	return 0;
}
