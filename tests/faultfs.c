/*
 * faultfs.so -- an LD_PRELOAD shim that makes writes to one directory fail,
 * as a read-only or full file system would, while a test runs as root
 * (for whom chmod changes nothing, and who may not be allowed to mount).
 *
 *   WP_FAULT_DIR  absolute path of the directory whose files are affected
 *   WP_FAULT_CTL  a control file: while it exists, its first word names the
 *                 errno every write, truncate and sync of a descriptor open
 *                 on a file under WP_FAULT_DIR fails with (EROFS, ENOSPC,
 *                 EIO; anything else means EIO); remove it to heal
 *
 * The control file is re-read on every affected call, so a test can flip
 * the fault while the process runs.  Descriptors elsewhere (the log, the
 * sockets) are never touched.  Test helper only: never installed.
 */
#define _GNU_SOURCE
#undef _FILE_OFFSET_BITS /* define pwrite and pwrite64 themselves */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);

__attribute__((constructor)) static void
resolve(void)
{
	real_write = (ssize_t (*)(int, const void *, size_t))
	    dlsym(RTLD_NEXT, "write");
	real_pwrite = (ssize_t (*)(int, const void *, size_t, off_t))
	    dlsym(RTLD_NEXT, "pwrite");
	real_pwrite64 = (ssize_t (*)(int, const void *, size_t, off_t))
	    dlsym(RTLD_NEXT, "pwrite64");
	real_writev = (ssize_t (*)(int, const struct iovec *, int))
	    dlsym(RTLD_NEXT, "writev");
	real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	real_ftruncate = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
	real_ftruncate64 = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate64");
}

/* The errno to fail a call on FD with, or 0 to let it through. */
static int
fault(int fd)
{
	const char *dir = getenv("WP_FAULT_DIR"), *ctl = getenv("WP_FAULT_CTL");
	char link[64], path[4096], word[16] = "";
	size_t dl;
	ssize_t n;
	int cfd;

	if (dir == NULL || ctl == NULL || fd < 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return 0;
	path[n] = '\0';
	dl = strlen(dir);
	if (strncmp(path, dir, dl) != 0 || path[dl] != '/')
		return 0;
	if ((cfd = open(ctl, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(cfd, word, sizeof(word) - 1);
	close(cfd);
	word[n > 0 ? n : 0] = '\0';
	if (strncmp(word, "EROFS", 5) == 0)
		return EROFS;
	if (strncmp(word, "ENOSPC", 6) == 0)
		return ENOSPC;
	return EIO;
}

#define GUARD(fd)                                                          \
	do {                                                               \
		int e_ = fault(fd);                                        \
		if (e_ != 0) {                                             \
			errno = e_;                                        \
			return -1;                                         \
		}                                                          \
	} while (0)

ssize_t
write(int fd, const void *buf, size_t n)
{
	GUARD(fd);
	return real_write(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	GUARD(fd);
	return real_pwrite(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	GUARD(fd);
	return real_pwrite64(fd, buf, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	GUARD(fd);
	return real_writev(fd, iov, cnt);
}

int
fsync(int fd)
{
	GUARD(fd);
	return real_fsync(fd);
}

int
fdatasync(int fd)
{
	GUARD(fd);
	return real_fdatasync(fd);
}

int
ftruncate(int fd, off_t len)
{
	GUARD(fd);
	return real_ftruncate(fd, len);
}

int
ftruncate64(int fd, off_t len)
{
	GUARD(fd);
	return real_ftruncate64(fd, len);
}
