/*
 * command -- host->spawn and host->spawn_kill (ABI 2.1): run a command
 * without a shell, in its own process group, on the loop.
 *
 * posix_spawn() with POSIX_SPAWN_SETPGROUP, exactly the given
 * environment, default signal dispositions and an empty signal mask,
 * stdin/stdout/stderr on O_CLOEXEC pipes and every other descriptor closed
 * in the child.  Its exit is observed through a pidfd (pidfd_open) watched
 * by the loop, not SIGCHLD: libuv owns SIGCHLD for its own uv_spawn()
 * children and reaps only those, so the two never meet, and nothing else
 * in the process has to know about these children (without pidfds -- a
 * kernel before 5.3, or valgrind -- the exit is polled for every 10 ms
 * with waitid(WNOWAIT)).  When the pidfd says
 * the command ended (a zombie, so its process group id cannot be reused
 * yet), whatever is left in its process group is SIGKILLed, the command
 * is reaped, the pipes are drained and the callback runs: a command
 * leaves nothing behind.  At its deadline the whole group is SIGKILLed.
 *
 * At most spawn_set_max() commands run at once; the others wait in FIFO
 * order, their wait counting against their own deadline.
 *
 * Everything here runs on the loop thread.
 */
#ifndef CORE_COMMAND_H
#define CORE_COMMAND_H

#include <stddef.h>

#include <watchpost/plugin.h>

#define SPAWN_MAX_DEFAULT 16

/* [agent] exec_max: at most MAX (>= 1) commands at once.  Raising it
 * starts waiting commands now; lowering it lets running ones finish. */
void spawn_set_max(unsigned max);

/* host->spawn: see plugin.h.  H is the calling plugin's table (its
 * commands are dropped by spawn_host_gone(H)). */
struct wp_proc *spawn_start(const struct wp_host *h,
    const struct wp_spawn *s, wp_spawn_cb cb, void *arg);

/* host->spawn_kill: see plugin.h. */
void spawn_kill(struct wp_proc *p);

/*
 * H's table is being freed (the plugin's fini() has run): kill every
 * command of H still running, reap it (blocking, but only for a process
 * just SIGKILLed) and free it with those still waiting, without their
 * callbacks.  Nothing is left running or unreaped.
 */
void spawn_host_gone(const struct wp_host *h);

/* How many commands run now and how many wait (tests, diagnostics). */
void spawn_counts(size_t *running, size_t *waiting);

#endif
