/*
 * daemon -- daemonising (-d), the pidfile, the database lock file and
 * its watch, and the privilege drop: the contracts are in daemon.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "daemon.h"
#include "log.h"
#include "util.h"

static int ready_fd = -1; /* -d: tells the waiting parent we are up */

int
daemon_drop_privileges(const char *user, const char *db)
{
	struct passwd *pw;
	const char *sfx[] = { "", "-wal", "-shm", ".lock" };
	char path[4096];
	size_t i;

	if (user == NULL || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "watchpost: user \"%s\" does not exist\n", user);
		return -1;
	}
	/* The database and its lock were opened (and maybe created) as
	 * root; the next start may be as the user. */
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, sfx[i]);
		if (chown(path, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT)
			log_warn("cannot hand %s to %s: %s", path, user,
			    strerror(errno));
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		fprintf(stderr, "watchpost: cannot drop privileges to %s: %s\n",
		    user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		fprintf(stderr, "watchpost: privileges could be regained\n");
		return -1;
	}
	log_info("running as user %s (uid %d)", user, (int)pw->pw_uid);
	return 0;
}

/*
 * Open PATH (created 0644 if missing), lock it and write our PID into it.
 * The lock is an flock(2) lock, which belongs to the open file description:
 * it survives the privilege drop and goes away however the process ends;
 * the descriptor is close-on-exec, so no child keeps it.  (-d forks before
 * this runs, so the PID is the daemon's.)  Returns the descriptor, to be
 * kept open for the process's life, or -1 with errno set; EWOULDBLOCK
 * means another process holds the lock, and HOLDER gets the PID that
 * process wrote ("?" if none yet).
 */
static int
lock_pid_file(const char *path, char *holder, size_t len)
{
	char buf[32];
	int fd, e;
	ssize_t n;

	snprintf(holder, len, "?");
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (buf[0] != '\0')
			snprintf(holder, len, "%s", buf);
		close(fd);
		errno = e;
		return -1;
	}
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, buf, strlen(buf)) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The pidfile we hold, for remove_pidfile() at exit. */
static struct {
	char *path;
	int fd;
	pid_t pid;
} pidfile = { NULL, -1, 0 };

/*
 * atexit: remove the pidfile if it still names us (another agent may have
 * replaced it), so neither a clean stop nor a failed start leaves a stale
 * PID behind.  After a privilege drop the folder may not let us remove it
 * (/run is root's): the file is then emptied through our descriptor: an
 * empty pidfile names no one.  Only the process that took it acts: a
 * fork would run this too.
 */
static void
remove_pidfile(void)
{
	char buf[32] = "";
	ssize_t n;
	int fd;

	if (pidfile.fd < 0 || pidfile.pid != getpid())
		return;
	if ((fd = open(pidfile.path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
		if (strtol(buf, NULL, 10) == (long)pidfile.pid &&
		    unlink(pidfile.path) != 0 && ftruncate(pidfile.fd, 0) != 0)
			log_warn("pidfile %s stays: %s", pidfile.path,
			    strerror(errno));
	}
	close(pidfile.fd);
	pidfile.fd = -1;
	free(pidfile.path);
	pidfile.path = NULL;
}

/* Take the pidfile: refuse if a live agent holds its lock.  0 or -1 (the
 * message is on stderr). */
int
daemon_take_pidfile(const char *path)
{
	char holder[32];
	int fd;

	if ((fd = lock_pid_file(path, holder, sizeof(holder))) < 0) {
		if (errno == EWOULDBLOCK)
			fprintf(stderr, "watchpost: another watchpost (pid %s) "
			    "holds %s\n", holder, path);
		else
			fprintf(stderr, "watchpost: pidfile %s: %s\n", path,
			    strerror(errno));
		return -1;
	}
	pidfile.path = xstrdup(path);
	pidfile.fd = fd;
	pidfile.pid = getpid();
	atexit(remove_pidfile);
	return 0;
}

/* The database lock held for the process's life (daemon_lock_database()). */
static struct {
	char path[PATH_MAX];
	int fd;
	int lost;		/* another agent took it */
	uv_timer_t timer;
	void (*lost_cb)(void *);
	void *lost_arg;
} dblock = { "", -1, 0, { 0 }, NULL, NULL };

/*
 * Lock the database against a second agent, in every mode: DB.lock beside
 * it holds our PID and an flock for our whole life (SQLite's own locks
 * last one transaction, and two agents writing one file send every alert
 * twice).  Taken before the database is opened; -t and --once never open
 * it and take no lock.
 */
int
daemon_lock_database(const char *db)
{
	char *path = dblock.path, holder[32];
	int fd;

	if ((size_t)snprintf(path, sizeof(dblock.path), "%s.lock", db) >=
	    sizeof(dblock.path)) {
		fprintf(stderr, "watchpost: database %s: path too long\n", db);
		return -1;
	}
	if ((fd = lock_pid_file(path, holder, sizeof(holder))) >= 0) {
		dblock.fd = fd;
		return 0;
	}
	if (errno == EWOULDBLOCK)
		fprintf(stderr, "watchpost: database %s is in use by another "
		    "watchpost (pid %s)\n", db, holder);
	else
		fprintf(stderr, "watchpost: database lock %s: %s\n", path,
		    strerror(errno));
	return -1;
}

/*
 * Once a second (loop thread): `rm watchpost.db*` removes the lock file
 * with the database, which the store recreates; without its lock file a
 * second agent could start on it.  So a lock file gone or replaced is
 * made and locked again; if another agent already holds the new one, two
 * agents share the database and this one stops (exit 1).
 */
static void
lock_watch_cb(uv_timer_t *t)
{
	struct stat held, now;
	char holder[32];
	int fd;

	(void)t;
	if (fstat(dblock.fd, &held) == 0 && stat(dblock.path, &now) == 0 &&
	    held.st_dev == now.st_dev && held.st_ino == now.st_ino)
		return;
	if ((fd = lock_pid_file(dblock.path, holder, sizeof(holder))) >= 0) {
		close(dblock.fd);
		dblock.fd = fd;
		log_err("database lock %s was removed or replaced; locked it "
		    "again", dblock.path);
		return;
	}
	if (errno != EWOULDBLOCK) {
		log_err("database lock %s was removed; cannot lock it "
		    "again: %s", dblock.path, strerror(errno));
		return;
	}
	log_err("database lock %s was removed, and another watchpost (pid %s) "
	    "has taken it: two agents share the database", dblock.path,
	    holder);
	uv_timer_stop(&dblock.timer);
	dblock.lost = 1;
	if (dblock.lost_cb != NULL)
		dblock.lost_cb(dblock.lost_arg);
}

/* The watch runs on the loop thread. */
void
daemon_watch_lock(uv_loop_t *loop, void (*lost)(void *arg), void *arg)
{
	dblock.lost_cb = lost;
	dblock.lost_arg = arg;
	uv_timer_init(loop, &dblock.timer);
	uv_timer_start(&dblock.timer, lock_watch_cb, 1000, 1000);
	uv_unref((uv_handle_t *)&dblock.timer);
}

/*
 * -d: fork before any thread exists.  The parent waits for the child to
 * say it started (exit 0) or failed (its errors already went to the shared
 * stderr; exit 1).
 */
void
daemon_detach(void)
{
	int fds[2];
	pid_t pid;
	char c;

	if (pipe(fds) != 0 || (pid = fork()) < 0) {
		perror("watchpost: fork");
		exit(1);
	}
	if (pid > 0) {
		close(fds[1]);
		exit(read(fds[0], &c, 1) == 1 && c == '0' ? 0 : 1);
	}
	close(fds[0]);
	ready_fd = fds[1];
	setsid();
}

void
daemon_ready(void)
{
	int fd;

	if (ready_fd < 0)
		return;
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (write(ready_fd, "0", 1) != 1)
		log_warn("could not signal the parent process");
	close(ready_fd);
	ready_fd = -1;
}


int
daemon_lock_lost(void)
{
	return dblock.lost;
}

void
daemon_unlock_database(void)
{
	if (dblock.fd >= 0)
		close(dblock.fd);
	dblock.fd = -1;
}
