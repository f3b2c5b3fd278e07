/*
 * host->spawn and host->spawn_kill (core/command.c) on the real loop, with
 * real programs: exit codes and signals, output caps, stdin, the exact
 * environment, no descriptor leaking into the child, the deadline killing
 * a command's whole process group (a forked sleeping grandchild included:
 * this process is a child subreaper, so the orphan comes back here and is
 * shown dead), nothing left behind by a command that exits, exec_max
 * queueing in FIFO order with the wait counted against the deadline, and
 * a plugin's table going away with commands still running.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host.h"
#include "command.h"
#include "util.h"

static struct wp_host *host;

static void
no_complete(struct wp_op *op, const struct wp_result *res)
{
	(void)op;
	(void)res;
}

/* One command's outcome, copied out of the callback. */
struct got {
	int calls;
	int status, exit_code, term_signal, truncated;
	char out[65536];
	size_t out_len, err_len;
	char err[4096];
	size_t running_at_cb;
	char tag;          /* for the order tests */
};

static char order[16];
static size_t n_order;

static void
got_cb(void *arg, const struct wp_spawn_result *r)
{
	struct got *g = arg;
	size_t waiting;

	g->calls++;
	g->status = r->status;
	g->exit_code = r->exit_code;
	g->term_signal = r->term_signal;
	g->truncated = r->truncated;
	g->out_len = r->out_len;
	g->err_len = r->err_len;
	memcpy(g->out, r->out, r->out_len < sizeof(g->out) - 1 ? r->out_len :
	    sizeof(g->out) - 1);
	g->out[r->out_len < sizeof(g->out) - 1 ? r->out_len :
	    sizeof(g->out) - 1] = '\0';
	snprintf(g->err, sizeof(g->err), "%s", r->err);
	spawn_counts(&g->running_at_cb, &waiting);
	if (g->tag && n_order < sizeof(order) - 1)
		order[n_order++] = g->tag;
}

/* Run the loop until every G has its callback, for at most 10 s. */
static void
spin(struct got *g, size_t n)
{
	int64_t end = mono_us() + 10000000;
	size_t i, done;

	do {
		for (done = 0, i = 0; i < n; i++)
			done += g[i].calls > 0;
		if (done == n)
			return;
		uv_run(main_loop, UV_RUN_ONCE);
	} while (mono_us() < end);
}

static const char *const no_env[] = { NULL };

/* Spawn ARGV (argv[0] is the path) with ENV, INPUT and a deadline MS
 * away; G gets the outcome. */
static struct wp_proc *
run_cmd(struct got *g, const char *const *argv, const char *const *env,
    const char *input, size_t input_len, size_t output_max, int64_t ms)
{
	struct wp_spawn s = {
		.size = sizeof(s),
		.path = argv[0],
		.argv = argv,
		.env = env != NULL ? env : no_env,
		.input = input,
		.input_len = input_len,
		.output_max = output_max,
		.deadline_us = mono_us() + ms * 1000,
	};

	return host->spawn(host, &s, got_cb, g);
}

static void
test_exit_codes(void **state)
{
	const char *const t[] = { "/bin/true", NULL };
	const char *const three[] = { "/bin/sh", "-c", "exit 3", NULL };
	const char *const sig[] = { "/bin/sh", "-c", "kill -TERM $$", NULL };
	struct got g[3];
	struct wp_proc *p;

	(void)state;
	memset(g, 0, sizeof(g));
	p = run_cmd(&g[0], t, NULL, NULL, 0, 100, 5000);
	assert_non_null(p);
	assert_non_null(run_cmd(&g[1], three, NULL, NULL, 0, 100, 5000));
	assert_non_null(run_cmd(&g[2], sig, NULL, NULL, 0, 100, 5000));
	/* never called back from inside spawn() */
	assert_int_equal(g[0].calls + g[1].calls + g[2].calls, 0);
	spin(g, 3);
	assert_int_equal(g[0].calls, 1);
	assert_int_equal(g[0].status, WP_OK);
	assert_int_equal(g[0].exit_code, 0);
	assert_int_equal(g[0].term_signal, 0);
	assert_int_equal(g[1].status, WP_OK);
	assert_int_equal(g[1].exit_code, 3);
	assert_int_equal(g[2].status, WP_OK);
	assert_int_equal(g[2].exit_code, -1);
	assert_int_equal(g[2].term_signal, SIGTERM);
}

/* stdout and stderr apart; beyond output_max read, dropped, flagged. */
static void
test_output_caps(void **state)
{
	const char *const both[] = { "/bin/sh", "-c",
	    "printf hello; printf oops >&2", NULL };
	const char *const big[] = { "/bin/sh", "-c",
	    "head -c 3000000 /dev/zero | tr '\\0' x; echo done >&2", NULL };
	struct got g[2];

	(void)state;
	memset(g, 0, sizeof(g));
	assert_non_null(run_cmd(&g[0], both, NULL, NULL, 0, 100, 5000));
	assert_non_null(run_cmd(&g[1], big, NULL, NULL, 0, 1000, 10000));
	spin(g, 2);
	assert_string_equal(g[0].out, "hello");
	assert_string_equal(g[0].err, "oops");
	assert_int_equal(g[0].truncated, 0);
	/* it could write all 3 MB (nothing blocked it) and exit 0 */
	assert_int_equal(g[1].status, WP_OK);
	assert_int_equal(g[1].exit_code, 0);
	assert_int_equal(g[1].out_len, 1000);
	assert_int_equal(strspn(g[1].out, "x"), 1000);
	assert_int_equal(g[1].truncated, 1);
	assert_string_equal(g[1].err, "done\n");
}

/* stdin gets the input, binary and larger than a pipe, then EOF. */
static void
test_stdin(void **state)
{
	const char *const cat[] = { "/bin/cat", NULL };
	const char *const wc[] = { "/usr/bin/wc", "-c", NULL };
	const char *const nor[] = { "/bin/true", NULL };
	static char big[1 << 20];
	struct got g[4];

	(void)state;
	memset(g, 0, sizeof(g));
	memset(big, 'y', sizeof(big));
	assert_non_null(run_cmd(&g[0], cat, NULL, "a\0b\n", 4, 100, 5000));
	assert_non_null(run_cmd(&g[1], wc, NULL, big, sizeof(big), 100,
	    10000));
	assert_non_null(run_cmd(&g[2], cat, NULL, NULL, 0, 100, 5000));
	/* a command that never reads a large input is no failure */
	assert_non_null(run_cmd(&g[3], nor, NULL, big, sizeof(big), 100,
	    5000));
	spin(g, 4);
	assert_int_equal(g[0].out_len, 4);
	assert_memory_equal(g[0].out, "a\0b\n", 4);
	assert_int_equal(atoi(g[1].out), 1 << 20);
	assert_int_equal(g[2].status, WP_OK);
	assert_int_equal(g[2].out_len, 0);
	assert_int_equal(g[3].status, WP_OK);
	assert_int_equal(g[3].exit_code, 0);
}

/* Exactly the environment given, nothing of ours. */
static void
test_env_exact(void **state)
{
	const char *const env[] = { "/usr/bin/env", NULL };
	const char *const e[] = { "A=1", "B=two words", NULL };
	struct got g[2];

	(void)state;
	setenv("WP_SPAWN_LEAK", "yes", 1);
	memset(g, 0, sizeof(g));
	assert_non_null(run_cmd(&g[0], env, e, NULL, 0, 1000, 5000));
	assert_non_null(run_cmd(&g[1], env, NULL, NULL, 0, 1000, 5000));
	spin(g, 2);
	assert_string_equal(g[0].out, "A=1\nB=two words\n");
	assert_string_equal(g[1].out, "");
}

/* Only 0, 1 and 2 reach the child, even one opened without O_CLOEXEC. */
static void
test_no_fd_leak(void **state)
{
	const char *const ls[] = { "/bin/sh", "-c", "ls /proc/$$/fd", NULL };
	struct got g;
	int fd;

	(void)state;
	fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
	assert_true(fd >= 0);
	memset(&g, 0, sizeof(g));
	assert_non_null(run_cmd(&g, ls, NULL, NULL, 0, 1000, 5000));
	spin(&g, 1);
	close(fd);
	assert_string_equal(g.out, "0\n1\n2\n");
}

/* Wait (bounded) for PID, an orphan that came back to us as subreaper:
 * 1 when it was SIGKILLed. */
static int
orphan_killed(pid_t pid)
{
	int st, i;
	pid_t r;

	for (i = 0; i < 500; i++) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
		if (r < 0)
			return 0;
		usleep(10000);
	}
	return 0;
}

/* At the deadline the group dies: the script and its sleeping
 * grandchild, which holds the output pipe open too. */
static void
test_deadline_kills_group(void **state)
{
	const char *const fork_sleep[] = { "/bin/sh", "-c",
	    "sleep 600 & echo $!; wait", NULL };
	struct got g;
	pid_t gpid;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_non_null(run_cmd(&g, fork_sleep, NULL, NULL, 0, 100, 300));
	spin(&g, 1);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, WP_ECANCELED);
	assert_int_equal(g.term_signal, SIGKILL);
	gpid = (pid_t)atoi(g.out);
	assert_true(gpid > 1);
	assert_true(orphan_killed(gpid));
}

/* A command that exits leaves nothing running in its group. */
static void
test_exit_kills_leftovers(void **state)
{
	const char *const leave[] = { "/bin/sh", "-c",
	    "sleep 600 >/dev/null 2>&1 & echo $!", NULL };
	struct got g;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_non_null(run_cmd(&g, leave, NULL, NULL, 0, 100, 5000));
	spin(&g, 1);
	assert_int_equal(g.status, WP_OK);
	assert_int_equal(g.exit_code, 0);
	assert_true(orphan_killed((pid_t)atoi(g.out)));
}

static void
test_kill(void **state)
{
	const char *const sl[] = { "/bin/sleep", "600", NULL };
	struct got g;
	struct wp_proc *p;

	(void)state;
	memset(&g, 0, sizeof(g));
	p = run_cmd(&g, sl, NULL, NULL, 0, 100, 60000);
	assert_non_null(p);
	host->spawn_kill(p);
	assert_int_equal(g.calls, 0);
	spin(&g, 1);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, WP_ECANCELED);
	assert_int_equal(g.term_signal, SIGKILL);
}

/* Refused at once (NULL, no callback), or failing later with a message. */
static void
test_bad_commands(void **state)
{
	const char *const rel[] = { "sh", "-c", "true", NULL };
	const char *const none[] = { "/nonexistent/cmd", NULL };
	const char *const empty[] = { NULL };
	struct wp_spawn s = { .size = sizeof(s), .path = "/bin/true",
	    .argv = empty, .env = no_env, .deadline_us = mono_us() + 1000000 };
	size_t running, waiting;
	struct got g;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_null(run_cmd(&g, rel, NULL, NULL, 0, 100, 5000));
	assert_null(host->spawn(host, &s, got_cb, &g));
	assert_non_null(run_cmd(&g, none, NULL, NULL, 0, 100, 5000));
	assert_int_equal(g.calls, 0);
	spin(&g, 1);
	assert_int_equal(g.calls, 1);
	/* glibc reports the exec's failure; under valgrind, which runs
	 * posix_spawn's vfork as a fork, the child exits 127 instead */
	if (g.status == WP_OK) {
		assert_int_equal(g.exit_code, 127);
	} else {
		assert_int_equal(g.status, WP_EINVAL);
		assert_non_null(strstr(g.out, "/nonexistent/cmd"));
	}
	spawn_counts(&running, &waiting);
	assert_int_equal(running + waiting, 0);
}

/* exec_max 1: three commands run one after another, oldest first. */
static void
test_fifo(void **state)
{
	const char *const a[] = { "/bin/true", NULL };
	struct got g[3];
	size_t running, waiting, i;

	(void)state;
	spawn_set_max(1);
	memset(g, 0, sizeof(g));
	n_order = 0;
	for (i = 0; i < 3; i++) {
		g[i].tag = (char)('A' + i);
		assert_non_null(run_cmd(&g[i], a, NULL, NULL, 0, 100, 5000));
	}
	spawn_counts(&running, &waiting);
	assert_int_equal(running, 1);
	assert_int_equal(waiting, 2);
	spin(g, 3);
	order[n_order] = '\0';
	assert_string_equal(order, "ABC");
	for (i = 0; i < 3; i++)
		assert_int_equal(g[i].status, WP_OK);
	spawn_set_max(SPAWN_MAX_DEFAULT);
}

/* exec_max 2: never more than two at once; all six run. */
static void
test_bounded(void **state)
{
	const char *const sl[] = { "/bin/sleep", "0.1", NULL };
	struct got g[6];
	size_t running, waiting, i;

	(void)state;
	spawn_set_max(2);
	memset(g, 0, sizeof(g));
	for (i = 0; i < 6; i++)
		assert_non_null(run_cmd(&g[i], sl, NULL, NULL, 0, 100, 20000));
	spawn_counts(&running, &waiting);
	assert_int_equal(running, 2);
	assert_int_equal(waiting, 4);
	spin(g, 6);
	for (i = 0; i < 6; i++) {
		assert_int_equal(g[i].status, WP_OK);
		assert_int_equal(g[i].exit_code, 0);
		assert_true(g[i].running_at_cb <= 2);
	}
	spawn_counts(&running, &waiting);
	assert_int_equal(running + waiting, 0);
	spawn_set_max(SPAWN_MAX_DEFAULT);
}

/* The wait for a slot counts against the deadline; kill before start. */
static void
test_wait_counts(void **state)
{
	const char *const sl[] = { "/bin/sleep", "600", NULL };
	const char *const t[] = { "/bin/true", NULL };
	struct got g[3];
	struct wp_proc *first, *third;

	(void)state;
	spawn_set_max(1);
	memset(g, 0, sizeof(g));
	first = run_cmd(&g[0], sl, NULL, NULL, 0, 100, 60000);
	assert_non_null(run_cmd(&g[1], t, NULL, NULL, 0, 100, 200));
	third = run_cmd(&g[2], t, NULL, NULL, 0, 100, 60000);
	assert_non_null(first);
	assert_non_null(third);
	spin(&g[1], 1);
	assert_int_equal(g[1].status, WP_ECANCELED);
	assert_non_null(strstr(g[1].out, "exec_max"));
	assert_int_equal(g[0].calls, 0);
	host->spawn_kill(third);
	spin(&g[2], 1);
	assert_int_equal(g[2].status, WP_ECANCELED);
	host->spawn_kill(first);
	spin(&g[0], 1);
	assert_int_equal(g[0].status, WP_ECANCELED);
	spawn_set_max(SPAWN_MAX_DEFAULT);
}

static int gone_calls;

static void
gone_cb(void *arg, const struct wp_spawn_result *r)
{
	(void)arg;
	(void)r;
	gone_calls++;
}

/* A plugin's table freed with commands running and waiting: all killed,
 * reaped and freed, no callback. */
static void
test_host_gone(void **state)
{
	const char *const sl[] = { "/bin/sleep", "600", NULL };
	struct wp_host *h2 = host_new("gone", no_complete);
	struct wp_spawn s = { .size = sizeof(s), .path = sl[0], .argv = sl,
	    .env = no_env, .deadline_us = mono_us() + 60000000 };
	size_t running, waiting;
	int i;

	(void)state;
	spawn_set_max(1);
	for (i = 0; i < 3; i++)
		assert_non_null(h2->spawn(h2, &s, gone_cb, NULL));
	spawn_counts(&running, &waiting);
	assert_int_equal(running, 1);
	assert_int_equal(waiting, 2);
	host_free(h2);
	spawn_counts(&running, &waiting);
	assert_int_equal(running + waiting, 0);
	for (i = 0; i < 20; i++)
		uv_run(main_loop, UV_RUN_NOWAIT);
	assert_int_equal(gone_calls, 0);
	/* the slot it held is free again */
	{
		const char *const t[] = { "/bin/true", NULL };
		struct got g;

		memset(&g, 0, sizeof(g));
		assert_non_null(run_cmd(&g, t, NULL, NULL, 0, 100, 5000));
		spin(&g, 1);
		assert_int_equal(g.status, WP_OK);
	}
	spawn_set_max(SPAWN_MAX_DEFAULT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_output_caps),
		cmocka_unit_test(test_stdin),
		cmocka_unit_test(test_env_exact),
		cmocka_unit_test(test_no_fd_leak),
		cmocka_unit_test(test_deadline_kills_group),
		cmocka_unit_test(test_exit_kills_leftovers),
		cmocka_unit_test(test_kill),
		cmocka_unit_test(test_bad_commands),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_wait_counts),
		cmocka_unit_test(test_host_gone),
	};
	int rc;

	/* As the daemon does; the child gets default signals back. */
	signal(SIGPIPE, SIG_IGN);
	/* Orphans of the commands come back to us, to be shown dead. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (host_loop_init() != 0)
		return 1;
	host = host_new("spawntest", no_complete);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	host_free(host);
	host_loop_close();
	return rc;
}
