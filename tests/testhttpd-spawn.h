/*
 * testhttpd-spawn.h -- start and stop tests/testhttpd from a cmocka test.
 * Header-only (static inline functions: a test may use only some), so
 * each test program stays one file; include after <cmocka.h>.
 */
#ifndef TESTS_TESTHTTPD_SPAWN_H
#define TESTS_TESTHTTPD_SPAWN_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct server {
	pid_t pid;
	int port;
};

/*
 * Start tests/testhttpd with EXTRA arguments (NULL-terminated) and read
 * its "PORT n" line (10 s at most).  Fails the test on any problem.
 */
static inline void
server_start(struct server *s, const char *const *extra)
{
	const char *top = getenv("abs_top_builddir");
	char path[4096], line[64];
	const char *argv[16];
	posix_spawn_file_actions_t fa;
	struct pollfd pfd;
	size_t n = 0, i;
	int fds[2];
	ssize_t r;

	assert_non_null(top);
	snprintf(path, sizeof(path), "%s/tests/testhttpd", top);
	argv[n++] = path;
	for (i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	assert_int_equal(posix_spawn(&s->pid, path, &fa, NULL,
	    (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	n = 0;
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (n < sizeof(line) - 1 && memchr(line, '\n', n) == NULL) {
		assert_int_equal(poll(&pfd, 1, 10000), 1);
		r = read(fds[0], line + n, sizeof(line) - 1 - n);
		assert_true(r > 0);
		n += (size_t)r;
		line[n] = '\0';
	}
	close(fds[0]);
	assert_int_equal(sscanf(line, "PORT %d", &s->port), 1);
	assert_true(s->port > 0);
}

static inline void
server_stop(struct server *s)
{
	int status = 0;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	s->pid = 0;
}

/* A loopback port nobody listens on (bound, then closed). */
static inline int
closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

#endif
