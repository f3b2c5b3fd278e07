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

static void child_verdict(struct ping_op *o, const struct wp_spawn_result *r,
    int exit_code, char *out);

/*
 * Count > 1: ping(8)'s output OUT (LC_ALL=C, iputils or BSD style) gives
 * the verdict: each "icmp_seq=N ... time=X ms" line is echo N's reply
 * (duplicates count once), an "Unreachable" line an ICMP error; an echo
 * without a reply line is lost.  The per-echo lines, not the summary
 * ("N packets transmitted, M received", "rtt min/avg/max/mdev"), are read
 * because the jitter needs each RTT, and they give the same loss and
 * min/avg/max; the output cap leaves room for all of them.  Killed at the
 * deadline, it is the verdict of what was printed.
 */
static void
exec_conclude(struct ping_op *o, const char *out)
{
	const char *p, *t, *eol;
	unsigned long seq;
	double ms;

	for (p = out; *p != '\0'; p = *eol ? eol + 1 : eol) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		if ((t = strstr(p, "icmp_seq=")) == NULL || t > eol ||
		    sscanf(t + 9, "%lu", &seq) != 1 || seq < 1 ||
		    seq > o->count)
			continue;
		if ((t = strstr(p, "time=")) != NULL && t < eol &&
		    sscanf(t + 5, "%lf", &ms) == 1 && ms >= 0 && ms < 1e9) {
			o->echo[seq - 1].rtt_us = (int64_t)(ms * 1000);
		} else if ((strstr(p, "nreachable") != NULL && strstr(p,
		    "nreachable") < eol) && o->err_reason == 0) {
			o->err_reason = WP_REASON_UNREACHABLE;
			o->detail_set = 1;
			snprintf(o->req->detail, o->req->detail_size,
			    "%s: destination unreachable", ping_op_addr(o));
		}
	}
	o->sent = o->count;
	ping_conclude(o);
}

/* ping(8) has ended (or could not start): complete its operation, if it
 * still has one, and free C. */
static void
child_done(void *arg, const struct wp_spawn_result *r)
{
	struct ping_child *c = arg;
	struct ping_op *o = c->op;
	char *out, small[PING_OUT_MAX];
	size_t outn = r->out_len + r->err_len + 1;
	int exit_code = r->status == WP_OK ? r->exit_code : -1;

	child_unlink(c);
	free(c);
	if (o == NULL)
		return;
	o->child = NULL;
	/* stdout, then stderr ("connect: Network is unreachable"); count >
	 * 1 has a line per echo: its output may not fit on the stack */
	out = outn <= sizeof(small) ? small : malloc(outn);
	if (out == NULL) {
		ping_finish(o, WP_REASON_PLUGIN, -1, "ping's output: out of "
		    "memory");
		return;
	}
	snprintf(out, outn, "%.*s%.*s", (int)r->out_len, r->out,
	    (int)r->err_len, r->err);
	child_verdict(o, r, exit_code, out);
	if (out != small)
		free(out);
}

/* The verdict on ping(8)'s run R and its output OUT. */
static void
child_verdict(struct ping_op *o, const struct wp_spawn_result *r,
    int exit_code, char *out)
{
	const char *t;
	char *nl;
	double rtt_ms;

	if (o->count > 1 && (r->status == WP_OK ||
	    r->status == WP_ECANCELED) && (exit_code == 0 || exit_code == 1 ||
	    r->status == WP_ECANCELED)) {
		exec_conclude(o, out);
	} else if (r->status != WP_OK && r->status != WP_ECANCELED) {
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
	char wait_s[16], count_s[16], ival_s[24];
	const char *argv[12];
	int argc = 0;
	int64_t left;
	struct wp_spawn s = { .size = sizeof(s) };

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		ping_finish(o, WP_REASON_PLUGIN, -1, "cannot run ping: out of "
		    "memory");
		return;
	}
	if (o->count == 1)
		left = (o->deadline_us - h->now_us() + 999999) / 1000000;
	else
		/* -W: how long to wait for the last reply when none came;
		 * whole seconds, rounded down so that ping(8) has ended
		 * (and printed its summary) before the host's deadline */
		left = (o->deadline_us - PING_MARGIN_US - h->now_us() -
		    (int64_t)(o->count - 1) * o->inst->interval_us) / 1000000;
	snprintf(wait_s, sizeof(wait_s), "%lld", (long long)(left < 1 ? 1 :
	    left));
	snprintf(count_s, sizeof(count_s), "%u", o->count);
	snprintf(ival_s, sizeof(ival_s), "%.3f",
	    (double)o->inst->interval_us / 1e6);
	argv[argc++] = st->ping_path;
	argv[argc++] = o->fi == 0 ? "-4" : "-6";
	argv[argc++] = "-n";
	argv[argc++] = "-c";
	argv[argc++] = count_s;
	if (o->count > 1) {
		argv[argc++] = "-i";
		argv[argc++] = ival_s;
	}
	argv[argc++] = "-W";
	argv[argc++] = wait_s;
	argv[argc++] = ping_op_addr(o);
	argv[argc] = NULL;
	s.path = st->ping_path;
	s.argv = argv;
	s.env = envp;
	/* a line per echo (about 64 bytes) and the summary */
	s.output_max = o->count == 1 ? PING_OUT_MAX / 2 - 1 :
	    (size_t)o->count * 96 + PING_OUT_MAX;
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
