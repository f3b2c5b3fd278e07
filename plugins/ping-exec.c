/*
 * ping-exec.c -- ping.so's exec back-end: the system ping(8), found on PATH
 * at init(), run per check with posix_spawn (no shell, stdin /dev/null,
 * stdout and stderr on a pipe, every other descriptor closed, default
 * signals) and SIGKILLed at the deadline; the pipe's EOF says it exited,
 * and it is then reaped without blocking (see ping.c).
 */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ping.h"

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

int
ping_exec_setup(struct ping_state *st, struct ping_family *f)
{
	if (st->ping_path == NULL)
		st->ping_path = find_ping();
	if (st->ping_path == NULL) {
		snprintf(f->why, sizeof(f->why), "no ping on PATH");
		return 0;
	}
	f->method = PM_EXEC;
	return 1;
}

void
ping_exec_detach(struct ping_op *o)
{
	if (o->child != NULL) {
		o->child->op = NULL;
		kill(o->child->pid, SIGKILL);
		o->child = NULL;
	}
}

void
ping_exec_fini(struct ping_state *st)
{
	const struct wp_host *h = st->host;
	struct ping_child *c, *next;
	int status;

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
	st->children = NULL;
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
		    "%s: destination unreachable", ping_op_addr(o));
	} else if (status != -1 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 1) {
		ping_timeout(o);
	} else {
		nl = strchr(c->out, '\n');
		if (nl != NULL)
			*nl = '\0';
		ping_finish(o, WP_REASON_IO, -1, "ping %s failed: %s",
		    ping_op_addr(o), c->out[0] ? c->out : "no output");
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

void
ping_exec_spawn(struct ping_op *o)
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
	argv[argc++] = ping_op_addr(o);
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

