/*
 * ping-exec.c -- ping.so's exec back-end: the system ping(8), found on PATH
 * at init(), run per check through host->spawn, the agent's one way of
 * running a command (no shell, LC_ALL=C and a fixed PATH as the whole
 * environment, its own process group, killed at the deadline, always
 * reaped, at most [agent] exec_max at once).  Its exit status and output
 * (stdout, then stderr) give the verdict.
 */
#define _GNU_SOURCE /* ping.h: struct mmsghdr */

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	const struct wp_host *h = st->host;

	if (h->size < offsetof(struct wp_host, spawn_kill) +
	    sizeof(h->spawn_kill) || h->spawn == NULL) {
		snprintf(f->why, sizeof(f->why), "the agent cannot run "
		    "commands (ABI < 2.1)");
		return 0;
	}
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
	struct ping_child *c = o->child;

	if (c != NULL) {
		/* its callback still comes, and frees it */
		c->op = NULL;
		o->child = NULL;
		c->st->host->spawn_kill(c->proc);
	}
}

void
ping_exec_fini(struct ping_state *st)
{
	struct ping_child *c, *next;

	/* Killed by a cancel, not called back yet: the agent kills and
	 * reaps them once fini() has returned, without callbacks. */
	for (c = st->children; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	st->children = NULL;
}

static void
child_unlink(struct ping_child *c)
{
	struct ping_child **pp;

	for (pp = &c->st->children; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
}

/* ping(8) has ended (or could not start): complete its operation, if it
 * still has one, and free C. */
static void
child_done(void *arg, const struct wp_spawn_result *r)
{
	struct ping_child *c = arg;
	struct ping_op *o = c->op;
	char out[PING_OUT_MAX];
	const char *t;
	char *nl;
	double rtt_ms;
	int exit_code = r->status == WP_OK ? r->exit_code : -1;

	child_unlink(c);
	free(c);
	if (o == NULL)
		return;
	o->child = NULL;
	/* stdout, then stderr ("connect: Network is unreachable") */
	snprintf(out, sizeof(out), "%.*s%.*s", (int)r->out_len, r->out,
	    (int)r->err_len, r->err);
	if (r->status != WP_OK && r->status != WP_ECANCELED) {
		o->echoed = 0;
		ping_finish(o, WP_REASON_PLUGIN, -1, "cannot run ping: %s",
		    out);
	} else if (exit_code == 0) {
		t = strstr(out, "time=");
		/* ping(8) prints ms */
		if (t == NULL || sscanf(t + 5, "%lf", &rtt_ms) != 1 ||
		    !(rtt_ms >= 0 && rtt_ms < 1e9))
			ping_finish(o, WP_REASON_OK, r->runtime_us, NULL);
		else
			ping_finish(o, WP_REASON_OK, (int64_t)(rtt_ms * 1000),
			    NULL);
	} else if (strstr(out, "nreachable") != NULL ||
	    strstr(out, "No route to host") != NULL) {
		/* "Destination Host Unreachable", "connect: No route to
		 * host", "connect: Network is unreachable" (LC_ALL=C) */
		ping_finish(o, WP_REASON_UNREACHABLE, -1,
		    "%s: destination unreachable", ping_op_addr(o));
	} else if (exit_code == 1 || r->status == WP_ECANCELED) {
		ping_timeout(o);
	} else {
		nl = strchr(out, '\n');
		if (nl != NULL)
			*nl = '\0';
		ping_finish(o, WP_REASON_IO, -1, "ping %s failed: %s",
		    ping_op_addr(o), out[0] ? out : "no output");
	}
}

void
ping_exec_spawn(struct ping_op *o)
{
	struct ping_state *st = o->st;
	const struct wp_host *h = st->host;
	static const char *const envp[] = { "LC_ALL=C",
	    "PATH=/usr/bin:/bin:/usr/sbin:/sbin", NULL };
	struct ping_child *c;
	char wait_s[16];
	const char *argv[10];
	int argc = 0;
	int64_t left;
	struct wp_spawn s = { .size = sizeof(s) };

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		ping_finish(o, WP_REASON_PLUGIN, -1, "cannot run ping: out of "
		    "memory");
		return;
	}
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
	s.path = st->ping_path;
	s.argv = argv;
	s.env = envp;
	s.output_max = PING_OUT_MAX / 2 - 1;
	/* The host cancels at the deadline (and ping_finish() kills): a
	 * second later is the backstop, never the race's winner. */
	s.deadline_us = o->deadline_us + 1000000;
	c->st = st;
	c->op = o;
	/* spawn() copies argv: the buffers above may go. */
	c->proc = h->spawn(h, &s, child_done, c);
	if (c->proc == NULL) {
		free(c);
		ping_finish(o, WP_REASON_PLUGIN, -1, "cannot run %s",
		    st->ping_path);
		return;
	}
	c->next = st->children;
	st->children = c;
	o->child = c;
	o->echoed = 1;
}
