/*
 * daemon -- what makes watchpost a well-behaved system daemon: -d's fork
 * and its start-up handshake, the pidfile, the database lock file (and its
 * watch), and the privilege drop.  main.c calls these in this order:
 * daemon_detach() (before any thread), daemon_take_pidfile(),
 * daemon_lock_database(), daemon_drop_privileges(), daemon_watch_lock(),
 * daemon_ready().  Main thread (the loop thread for the lock watch); none
 * is thread-safe.  Failures are reported on stderr as "watchpost: ..."
 * (still the terminal's before daemon_ready()).
 */
#ifndef CORE_DAEMON_H
#define CORE_DAEMON_H

#include <uv.h>

/*
 * -d: fork, the child going on in a new session (setsid).  The parent
 * never returns: it exits 0 once the child calls daemon_ready(), or 1 when
 * the child exits first (its errors went to the shared stderr).  A failing
 * pipe or fork exits 1.  Call before any thread exists.
 */
void daemon_detach(void);

/*
 * The agent runs: stdin, stdout and stderr go to /dev/null and the parent
 * of daemon_detach() is told to exit 0.  Does nothing without -d (or when
 * called twice).
 */
void daemon_ready(void);

/*
 * Take the pidfile PATH: lock it (flock, held for the process's life) and
 * write our PID into it; at exit it is removed if it still names us
 * (emptied if its folder no longer lets us remove it).  0, or -1 with the
 * message on stderr, naming the other agent's PID when a live one holds it.
 */
int daemon_take_pidfile(const char *path);

/*
 * Lock the database DB against a second agent: DB.lock holds our PID and
 * an flock for the process's life.  Call before the database is opened.
 * 0, or -1 with the message on stderr (another agent's PID when one holds
 * the lock).
 */
int daemon_lock_database(const char *db);

/*
 * Once a second on LOOP (an unreferenced timer, so it does not keep the
 * loop alive), check that DB.lock is still the file we locked; one deleted
 * or replaced is created and locked again.  If another agent took the new
 * one, the watch stops, daemon_lock_lost() becomes 1 and lost(arg) is
 * called on the loop thread (lost may be NULL).  After
 * daemon_lock_database() succeeded.
 */
void daemon_watch_lock(uv_loop_t *loop, void (*lost)(void *arg), void *arg);

/* 1 once the watch found another agent holding the database lock. */
int daemon_lock_lost(void);

/* Give up the database lock (close its descriptor; the file stays, as the
 * next start reuses it).  Safe without a lock. */
void daemon_unlock_database(void);

/*
 * When running as root and USER is set: hand DB, its -wal, -shm and .lock
 * to USER, then switch to USER's uid and gid with no supplementary groups,
 * and check that root cannot be regained.  Does nothing for USER NULL or a
 * non-root process.  0, or -1 with the message on stderr (the caller must
 * exit: the process may be half-dropped).
 */
int daemon_drop_privileges(const char *user, const char *db);

#endif
