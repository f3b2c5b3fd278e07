/*
 * command.c -- commands run for plugins (see command.h for the design).
 *
 * One struct wp_proc per spawn() call, through three phases:
 *   WAITING  in the FIFO queue for a slot (exec_max), deadline timer armed;
 *   RUNNING  the child exists: pidfd, stdout, stderr (and stdin while
 *            input is left) are polled on the loop;
 *   DONE     reaped or never started: the result is delivered by
 *            deliver(), from a loop callback, never from inside spawn().
 * After the callback the handles are closed; the struct is freed when the
 * last close callback has run.
 */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "host.h"
#include "command.h"
#include "util.h"

enum phase { P_WAITING, P_RUNNING, P_DONE, P_DELIVERED };

/* What was read from one of the child's outputs. */
struct obuf {
	char *b;
	size_t len, cap;
};

/* Handle indexes (struct wp_proc.poll) and their bit in `inited`. */
enum { H_PID, H_IN, H_OUT, H_ERR, N_POLL };
#define H_TIMER N_POLL
#define H_REAP (N_POLL + 1)

struct wp_proc {
	const struct wp_host *h;
	wp_spawn_cb cb;
	void *arg;
	enum phase phase;
	/* The copied command. */
	char *path;
	char **argv;
	char **env;
	unsigned char *input;
	size_t input_len, input_off;
	size_t output_max;
	int64_t deadline_us;
	/* The running child. */
	pid_t pid;
	int fd[N_POLL];           /* pidfd, stdin (write end), stdout, stderr
	                           * (read ends); -1 when closed */
	uv_poll_t poll[N_POLL];
	uv_timer_t timer;         /* the deadline; 0 ms to deliver */
	uv_timer_t reap;          /* without pidfds: polls for the exit */
	unsigned inited;          /* bit i: handle i was initialised */
	unsigned closing;         /* handles whose close callback is due */
	int released;             /* freed when the last one has closed */
	struct obuf out, err;
	int truncated;
	int killed;               /* deadline or spawn_kill() */
	int64_t exec_us, runtime_us;
	/* The outcome. */
	int status, exit_code, term_signal;
	char msg[256];            /* why it did not start (status < 0) */
	struct wp_proc *qnext;    /* the waiting queue */
	struct wp_proc *prev, *next; /* every proc not yet freed */
};

static unsigned exec_max = SPAWN_MAX_DEFAULT;
static size_t n_running, n_waiting;
static struct wp_proc *q_head, *q_tail;
static struct wp_proc *all;
static int no_pidfd;  /* pidfd_open() said ENOSYS once: do not ask again */

static void start_waiting(void);

void
spawn_counts(size_t *running, size_t *waiting)
{
	*running = n_running;
	*waiting = n_waiting;
}

void
spawn_set_max(unsigned max)
{
	exec_max = max > 0 ? max : 1;
	if (main_loop != NULL)
		start_waiting();
}

/* ---- freeing ---- */

static void
strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* A NULL-terminated copy of V (NULL: an empty vector). */
static char **
strv_dup(const char *const *v)
{
	size_t n = 0, i;
	char **c;

	while (v != NULL && v[n] != NULL)
		n++;
	c = xcalloc(n + 1, sizeof(*c));
	for (i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

static void
proc_free(struct wp_proc *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		all = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	free(p->path);
	strv_free(p->argv);
	strv_free(p->env);
	free(p->input);
	free(p->out.b);
	free(p->err.b);
	free(p);
}

static void
closed_cb(uv_handle_t *hd)
{
	struct wp_proc *p = hd->data;

	if (--p->closing == 0 && p->released)
		proc_free(p);
}

/* Close handle I (a poll, or H_TIMER) if it was initialised. */
static void
close_handle(struct wp_proc *p, int i)
{
	uv_handle_t *hd;

	if (!(p->inited & (1u << i)))
		return;
	p->inited &= ~(1u << i);
	hd = i == H_TIMER ? (uv_handle_t *)&p->timer :
	    i == H_REAP ? (uv_handle_t *)&p->reap :
	    (uv_handle_t *)&p->poll[i];
	p->closing++;
	uv_close(hd, closed_cb);
}

/* Stop watching fd I and close it. */
static void
close_fd(struct wp_proc *p, int i)
{
	close_handle(p, i);
	if (p->fd[i] >= 0) {
		close(p->fd[i]);
		p->fd[i] = -1;
	}
}

/* Free P once its handles are closed (at once when it has none). */
static void
proc_release(struct wp_proc *p)
{
	int i;

	for (i = 0; i < N_POLL; i++)
		close_fd(p, i);
	close_handle(p, H_TIMER);
	close_handle(p, H_REAP);
	p->released = 1;
	if (p->closing == 0)
		proc_free(p);
}

/* ---- the queue ---- */

static void
queue_remove(struct wp_proc *p)
{
	struct wp_proc **pp;

	for (pp = &q_head; *pp != NULL; pp = &(*pp)->qnext) {
		if (*pp == p) {
			*pp = p->qnext;
			if (q_tail == p) {
				q_tail = NULL;
				if (q_head != NULL)
					for (q_tail = q_head; q_tail->qnext;
					    q_tail = q_tail->qnext)
						;
			}
			p->qnext = NULL;
			n_waiting--;
			return;
		}
	}
}

/* ---- delivery ---- */

/* Hand P's outcome to its plugin and release P.  P is DONE. */
static void
deliver(struct wp_proc *p)
{
	struct wp_spawn_result r;

	if (p->phase == P_DELIVERED)
		return;
	p->phase = P_DELIVERED;
	uv_timer_stop(&p->timer);
	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	r.status = p->status;
	r.exit_code = p->exit_code;
	r.term_signal = p->term_signal;
	if (p->status < 0 && p->status != WP_ECANCELED) {
		r.out = p->msg;
		r.out_len = strlen(p->msg);
		r.err = "";
	} else {
		r.out = p->out.b != NULL ? p->out.b : "";
		r.out_len = p->out.len;
		r.err = p->err.b != NULL ? p->err.b : "";
		r.err_len = p->err.len;
		if (p->status == WP_ECANCELED && p->pid == 0) {
			/* never ran: say why in out */
			r.out = p->msg;
			r.out_len = strlen(p->msg);
		}
	}
	r.truncated = p->truncated;
	r.runtime_us = p->runtime_us;
	p->cb(p->arg, &r);
	proc_release(p);
}

static void
deliver_cb(uv_timer_t *t)
{
	deliver(t->data);
}

/* P ends without having run: STATUS and a message, delivered from the
 * loop soon (never inside spawn()). */
static void
fail_later(struct wp_proc *p, int status, const char *fmt, ...)
    WP_PRINTF(3, 4);

static void
fail_later(struct wp_proc *p, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	p->status = status;
	p->exit_code = -1;
	p->phase = P_DONE;
	uv_timer_start(&p->timer, deliver_cb, 0, 0);
}

/* ---- the running child ---- */

/* Append N bytes to B, keeping at most MAX; 1 when some were dropped. */
static int
obuf_add(struct obuf *b, const char *s, size_t n, size_t max)
{
	size_t keep = n, want;
	int dropped = 0;

	if (b->len + keep > max) {
		keep = max - b->len;
		dropped = 1;
	}
	if (keep > 0) {
		want = b->len + keep + 1;
		if (want > b->cap) {
			size_t cap = b->cap ? b->cap : 1024;
			while (cap < want)
				cap *= 2;
			if (cap > max + 1)
				cap = max + 1;
			b->b = xrealloc(b->b, cap);
			b->cap = cap;
		}
		memcpy(b->b + b->len, s, keep);
		b->len += keep;
	}
	if (b->b != NULL)
		b->b[b->len] = '\0';
	return dropped;
}

/* Read what fd I (H_OUT or H_ERR) holds now; at EOF or an error, close
 * it. */
static void
drain(struct wp_proc *p, int i)
{
	struct obuf *b = i == H_OUT ? &p->out : &p->err;
	char buf[16384];
	ssize_t n;

	while (p->fd[i] >= 0) {
		n = read(p->fd[i], buf, sizeof(buf));
		if (n > 0) {
			if (obuf_add(b, buf, (size_t)n, p->output_max))
				p->truncated = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close_fd(p, i);
	}
}

/* Write what input is left; at the end (or EPIPE: the command does not
 * read it) close stdin. */
static void
feed(struct wp_proc *p)
{
	ssize_t n;

	while (p->fd[H_IN] >= 0 && p->input_off < p->input_len) {
		n = write(p->fd[H_IN], p->input + p->input_off,
		    p->input_len - p->input_off);
		if (n > 0) {
			p->input_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break;
	}
	close_fd(p, H_IN);
}

static void
kill_group(struct wp_proc *p)
{
	/* The group, and the leader in case it left the group. */
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
}

/* The command has exited (the pidfd is readable): kill what it left in
 * its group, reap it, take what its pipes still hold, deliver. */
static void
exited(struct wp_proc *p, int block)
{
	int st = 0;
	pid_t r;

	p->runtime_us = mono_us() - p->exec_us;
	/* Still a zombie: the group id cannot have been reused. */
	kill(-p->pid, SIGKILL);
	do
		r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return; /* not yet (cannot happen once the pidfd is readable) */
	n_running--;
	p->phase = P_DONE;
	close_handle(p, H_REAP);
	close_fd(p, H_PID);
	close_fd(p, H_IN);
	drain(p, H_OUT);
	drain(p, H_ERR);
	if (r < 0) {
		/* SIGCHLD ignored by someone: the kernel reaped it. */
		p->status = p->killed ? WP_ECANCELED : WP_EIO;
		p->exit_code = -1;
	} else if (WIFEXITED(st)) {
		p->status = p->killed ? WP_ECANCELED : WP_OK;
		p->exit_code = WEXITSTATUS(st);
	} else {
		p->status = p->killed ? WP_ECANCELED : WP_OK;
		p->exit_code = -1;
		p->term_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	}
	start_waiting();
	if (!block)
		deliver(p);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct wp_proc *p = h->data;
	int i = (int)(h - p->poll);

	(void)status;
	(void)events;
	switch (i) {
	case H_PID:
		exited(p, 0);
		break;
	case H_IN:
		feed(p);
		break;
	default:
		drain(p, i);
		break;
	}
}

/*
 * Without pidfds (a kernel before 5.3, or valgrind, which does not know
 * the system call) the exit is polled for every 10 ms: waitid() with
 * WNOWAIT looks without reaping, so the group can still be killed safely.
 */
static void
reap_cb(uv_timer_t *t)
{
	struct wp_proc *p = t->data;
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0
	    || si.si_pid == p->pid)
		exited(p, 0);
}

/* Watch fd I for EVENTS: 0 or -1. */
static int
watch_fd(struct wp_proc *p, int i, int events)
{
	if (uv_poll_init(main_loop, &p->poll[i], p->fd[i]) != 0)
		return -1;
	p->poll[i].data = p;
	p->inited |= 1u << i;
	if (uv_poll_start(&p->poll[i], events, poll_cb) != 0)
		return -1;
	return 0;
}

static int
errno_status(int e)
{
	switch (e) {
	case ENOMEM:
		return WP_ENOMEM;
	case EAGAIN:
		return WP_EAGAIN;
	case ENOENT: case EACCES: case ENOEXEC: case ENOTDIR: case ELOOP:
	case ENAMETOOLONG: case E2BIG:
		return WP_EINVAL;
	default:
		return WP_EIO;
	}
}

/* Start P's child now; on failure P is set to deliver its failure. */
static void
run(struct wp_proc *p)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all_sigs;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int rc, fa_ok = 0, attr_ok = 0, e;

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(err, O_CLOEXEC) != 0) {
		e = errno;
		fail_later(p, errno_status(e), "cannot run %s: pipe: %s",
		    p->path, strerror(e));
		goto out;
	}
	rc = posix_spawn_file_actions_init(&fa);
	fa_ok = rc == 0;
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	/* Descriptors a library opened without O_CLOEXEC stay ours too. */
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0) {
		rc = posix_spawnattr_init(&attr);
		attr_ok = rc == 0;
	}
	if (rc == 0) {
		/* The daemon ignores SIGPIPE; SIG_IGN survives exec, so reset
		 * every disposition and the mask to what a shell gives. */
		sigemptyset(&none);
		sigfillset(&all_sigs);
		rc = posix_spawnattr_setsigmask(&attr, &none);
		if (rc == 0)
			rc = posix_spawnattr_setsigdefault(&attr, &all_sigs);
		if (rc == 0)
			rc = posix_spawnattr_setpgroup(&attr, 0);
		if (rc == 0)
			rc = posix_spawnattr_setflags(&attr,
			    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
			    POSIX_SPAWN_SETPGROUP);
	}
	if (rc == 0)
		rc = posix_spawn(&p->pid, p->path, &fa, &attr, p->argv, p->env);
	if (rc != 0) {
		p->pid = 0;
		fail_later(p, errno_status(rc), "cannot run %s: %s", p->path,
		    strerror(rc));
		goto out;
	}
	p->exec_us = mono_us();
	p->phase = P_RUNNING;
	n_running++;
	/* close-on-exec by itself */
	p->fd[H_PID] = no_pidfd ? (errno = ENOSYS, -1) : pidfd_open(p->pid, 0);
	if (p->fd[H_PID] < 0 && errno == ENOSYS) {
		no_pidfd = 1;
		uv_timer_init(main_loop, &p->reap);
		p->reap.data = p;
		p->inited |= 1u << H_REAP;
		uv_timer_start(&p->reap, reap_cb, 10, 10);
	} else if (p->fd[H_PID] < 0) {
		e = errno;
		kill_group(p);
		exited(p, 1);
		p->pid = 0;
		fail_later(p, errno_status(e), "cannot watch %s: pidfd_open: "
		    "%s", p->path, strerror(e));
		goto out;
	}
	p->fd[H_IN] = in[1];
	p->fd[H_OUT] = out[0];
	p->fd[H_ERR] = err[0];
	in[1] = out[0] = err[0] = -1;
	fcntl(p->fd[H_IN], F_SETFL, O_NONBLOCK);
	fcntl(p->fd[H_OUT], F_SETFL, O_NONBLOCK);
	fcntl(p->fd[H_ERR], F_SETFL, O_NONBLOCK);
	if ((p->fd[H_PID] >= 0 && watch_fd(p, H_PID, UV_READABLE) != 0) ||
	    watch_fd(p, H_OUT, UV_READABLE) != 0 ||
	    watch_fd(p, H_ERR, UV_READABLE) != 0) {
		kill_group(p);
		exited(p, 1);
		p->pid = 0;
		fail_later(p, WP_EIO, "cannot watch %s on the loop", p->path);
		goto out;
	}
	/* What fits in the pipe goes now; the rest when it is writable. */
	feed(p);
	if (p->fd[H_IN] >= 0 && watch_fd(p, H_IN, UV_WRITABLE) != 0)
		close_fd(p, H_IN);
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	if (err[0] >= 0)
		close(err[0]);
	if (err[1] >= 0)
		close(err[1]);
}

/* Start waiting commands while slots are free, oldest first. */
static void
start_waiting(void)
{
	struct wp_proc *p;

	while (q_head != NULL && n_running < exec_max) {
		p = q_head;
		queue_remove(p);
		run(p);
	}
}

/* The deadline: kill a running command's group, or give up waiting. */
static void
deadline_cb(uv_timer_t *t)
{
	struct wp_proc *p = t->data;

	switch (p->phase) {
	case P_WAITING:
		queue_remove(p);
		fail_later(p, WP_ECANCELED, "deadline reached while waiting "
		    "for one of [agent] exec_max = %u slots", exec_max);
		break;
	case P_RUNNING:
		p->killed = 1;
		kill_group(p);
		break;
	default:
		break;
	}
}

struct wp_proc *
spawn_start(const struct wp_host *h, const struct wp_spawn *s_in,
    wp_spawn_cb cb, void *arg)
{
	struct wp_spawn s;
	struct wp_proc *p;
	int64_t left;
	size_t i;

	if (s_in == NULL || cb == NULL || s_in->size == 0)
		return NULL;
	memset(&s, 0, sizeof(s));
	memcpy(&s, s_in, s_in->size < sizeof(s) ? s_in->size : sizeof(s));
	if (s.path == NULL || s.path[0] != '/' || s.argv == NULL ||
	    s.argv[0] == NULL || (s.input == NULL && s.input_len != 0))
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->h = h;
	p->cb = cb;
	p->arg = arg;
	p->path = xstrdup(s.path);
	p->argv = strv_dup(s.argv);
	p->env = strv_dup(s.env);
	if (s.input_len > 0) {
		p->input = xmalloc(s.input_len);
		memcpy(p->input, s.input, s.input_len);
		p->input_len = s.input_len;
	}
	p->output_max = s.output_max;
	p->deadline_us = s.deadline_us;
	p->exit_code = -1;
	for (i = 0; i < N_POLL; i++)
		p->fd[i] = -1;
	uv_timer_init(main_loop, &p->timer);
	p->timer.data = p;
	p->inited |= 1u << H_TIMER;
	p->next = all;
	if (all != NULL)
		all->prev = p;
	all = p;

	left = s.deadline_us - mono_us();
	if (left <= 0) {
		fail_later(p, WP_ECANCELED, "deadline already passed");
		return p;
	}
	uv_timer_start(&p->timer, deadline_cb, (uint64_t)(left + 999) / 1000,
	    0);
	p->phase = P_WAITING;
	if (q_tail != NULL)
		q_tail->qnext = p;
	else
		q_head = p;
	q_tail = p;
	n_waiting++;
	start_waiting();
	return p;
}

void
spawn_kill(struct wp_proc *p)
{
	if (p == NULL)
		return;
	switch (p->phase) {
	case P_WAITING:
		queue_remove(p);
		p->killed = 1;
		fail_later(p, WP_ECANCELED, "killed before it started");
		break;
	case P_RUNNING:
		p->killed = 1;
		kill_group(p);
		break;
	default:
		break;
	}
}

void
spawn_host_gone(const struct wp_host *h)
{
	struct wp_proc *p, *next;

	/* The waiting ones first, so that a slot freed below cannot start
	 * one of them. */
	for (p = all; p != NULL; p = p->next)
		if (p->h == h && p->phase == P_WAITING) {
			queue_remove(p);
			p->phase = P_DONE;
		}
	for (p = all; p != NULL; p = next) {
		next = p->next;
		if (p->h != h || p->phase == P_DELIVERED)
			continue;
		if (p->phase == P_RUNNING) {
			p->killed = 1;
			kill_group(p);
			exited(p, 1);
		}
		p->phase = P_DELIVERED;
		uv_timer_stop(&p->timer);
		proc_release(p);
	}
}
