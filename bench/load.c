/*
 * bench/load -- the client side of bench/run.  One program, several modes:
 *
 *   load floor PORT N
 *       N sequential GET /m/ID requests to 127.0.0.1:PORT, each on a fresh
 *       connection: socket, connect, send, read to the end, close.  Prints
 *       "floor_us_per_check=X" (this process's CPU per request).
 *   load curlfloor PORT N
 *       the same with libcurl easy transfers, one fresh connection each.
 *       Prints "curlfloor_us_per_check=X".
 *   load ready PORT TIMEOUT_MS
 *       polls GET /healthz on 127.0.0.1:PORT every millisecond until it
 *       answers 200; prints the wall clock then, in microseconds, exit 0;
 *       exit 1 at the timeout.
 *   load watch PID WARMUP_MS WINDOW_MS
 *       samples /proc/PID every 100 ms until WARMUP_MS + WINDOW_MS have
 *       passed or PID is gone.  Prints "cpu_window_s=X cpu_total_s=X
 *       peak_rss_kb=N peak_threads=N children=N child_cpu_s=X":
 *       CPU (utime+stime) used inside the window, CPU of the whole life
 *       so far, VmHWM, the most threads seen, the most child processes
 *       seen at once, and the CPU of children it waited for.
 *   load driver BBPORT URLS INTERVAL_MS WARMUP_MS WINDOW_MS
 *       drives prometheus-blackbox-exporter on 127.0.0.1:BBPORT: for each
 *       line (a URL) of the file URLS, GET /probe?module=http_2xx&target=URL
 *       every INTERVAL_MS, the monitors' slots spread evenly over one
 *       interval, for WARMUP_MS + WINDOW_MS.  Each probe is its own
 *       connection; none waits for another.  Prints "probes=N answered=N
 *       success=N driver_cpu_window_s=X".
 *   load freeport
 *       prints a TCP port of 127.0.0.1 that was free a moment ago.
 *
 * Loopback only.  Every loop is bounded in count or time.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"

static double
self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static struct sockaddr_in
loopback(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	return a;
}

/*
 * One blocking request on a fresh connection; reads until the server
 * closes.  Returns the HTTP status, or -1.
 */
static int
get_once(int port, const char *path)
{
	struct sockaddr_in a = loopback(port);
	char req[256], buf[4096];
	size_t got = 0;
	ssize_t r;
	int fd, status = -1, len;

	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: "
	    "127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    write(fd, req, (size_t)len) != len)
		goto out;
	while ((r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += (size_t)r;
		if (got == sizeof(buf) - 1)
			got = 12; /* keep the status line, drop the rest */
	}
	buf[got] = '\0';
	if (got >= 12 && strncmp(buf, "HTTP/1.", 7) == 0)
		status = atoi(buf + 9);
out:
	close(fd);
	return status;
}

static int
mode_floor(int port, long n)
{
	char path[64];
	double c0 = self_cpu_s();
	long i, ok = 0;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/m/%ld", i);
		ok += get_once(port, path) == 200;
	}
	printf("floor_us_per_check=%.1f ok=%ld\n",
	    (self_cpu_s() - c0) * 1e6 / (double)n, ok);
	return ok == n ? 0 : 1;
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int
mode_curlfloor(int port, long n)
{
	CURL *h;
	char url[128];
	double c0;
	long i, ok = 0, code;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	c0 = self_cpu_s();
	if ((h = curl_easy_init()) == NULL)
		return 1;
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	for (i = 0; i < n; i++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/m/%ld", port, i);
		curl_easy_setopt(h, CURLOPT_URL, url);
		if (curl_easy_perform(h) == CURLE_OK &&
		    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) ==
		    CURLE_OK && code == 200)
			ok++;
	}
	curl_easy_cleanup(h);
	printf("curlfloor_us_per_check=%.1f ok=%ld\n",
	    (self_cpu_s() - c0) * 1e6 / (double)n, ok);
	curl_global_cleanup();
	return ok == n ? 0 : 1;
}

static int
mode_ready(int port, long timeout_ms)
{
	int64_t end = mono_us() + timeout_ms * 1000;

	while (mono_us() < end) {
		if (get_once(port, "/healthz") == 200) {
			printf("%lld\n", (long long)wall_us());
			return 0;
		}
		usleep(1000);
	}
	return 1;
}

/* CPU of PID and of its reaped children, from /proc/PID/stat; -1 when
 * PID is gone or a zombie. */
static int
read_stat(int pid, double *cpu_s, double *child_s)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	long cut, cst;
	char state;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* ") S ppid pgrp sess tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime" */
	if (sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%lu %lu %ld %ld", &state, &ut, &st, &cut, &cst) != 5)
		return -1;
	if (state == 'Z' || state == 'X')
		return -1; /* exited, not yet reaped */
	*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	*child_s = (double)(cut + cst) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static void
read_status(int pid, long *hwm_kb, long *threads)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0)
			*hwm_kb = atol(line + 6);
		else if (strncmp(line, "Threads:", 8) == 0)
			*threads = atol(line + 8);
	}
	fclose(f);
}

/* Child processes of PID right now (every thread's children list). */
static long
count_children(int pid)
{
	char path[320], buf[4096];
	struct dirent *d;
	long n = 0;
	DIR *dir;
	FILE *f;
	char *p, *e;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if ((dir = opendir(path)) == NULL)
		return 0;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", pid,
		    d->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL)
			for (p = buf; strtol(p, &e, 10) > 0 && e != p; p = e)
				n++;
		fclose(f);
	}
	closedir(dir);
	return n;
}

static int
mode_watch(int pid, long warmup_ms, long window_ms)
{
	int64_t t0 = mono_us(), start = t0 + warmup_ms * 1000,
	    end = start + window_ms * 1000;
	double cpu = 0, cpu0 = -1, child = 0;
	long hwm = 0, thr = 0, peak_thr = 0, kids, peak_kids = 0;
	int alive = 1;

	while (mono_us() < end) {
		if (read_stat(pid, &cpu, &child) != 0) {
			alive = 0;
			break;
		}
		if (cpu0 < 0 && mono_us() >= start)
			cpu0 = cpu;
		read_status(pid, &hwm, &thr);
		if (thr > peak_thr)
			peak_thr = thr;
		if ((kids = count_children(pid)) > peak_kids)
			peak_kids = kids;
		usleep(100000);
	}
	if (alive)
		read_stat(pid, &cpu, &child);
	read_status(pid, &hwm, &thr);
	if (cpu0 < 0)
		cpu0 = cpu;
	printf("cpu_window_s=%.3f cpu_total_s=%.3f peak_rss_kb=%ld "
	    "peak_threads=%ld children=%ld child_cpu_s=%.3f alive=%d\n",
	    cpu - cpu0, cpu, hwm, peak_thr, peak_kids, child, alive);
	return 0;
}

/* ---- the blackbox_exporter driver ---- */

struct probe {
	int fd;
	size_t len;
	char buf[8192];
};

static int
mode_driver(int bbport, const char *urls_file, long interval_ms,
    long warmup_ms, long window_ms)
{
	struct sockaddr_in a = loopback(bbport);
	struct epoll_event ev, evs[256];
	char line[2048], req[4096], **urls = NULL;
	long n_urls = 0, cap = 0, probes = 0, answered = 0, success = 0, j;
	int64_t t0, start, end, now, next;
	double cpu0 = -1, cpu1;
	struct rlimit rl;
	struct probe *p;
	FILE *f;
	int ep, i, n, len, in_flight = 0;
	ssize_t r;

	if ((f = fopen(urls_file, "r")) == NULL) {
		perror(urls_file);
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (n_urls == cap) {
			cap = cap ? cap * 2 : 1024;
			urls = realloc(urls, (size_t)cap * sizeof(*urls));
			if (urls == NULL)
				return 1;
		}
		urls[n_urls++] = strdup(line);
	}
	fclose(f);
	if (n_urls == 0)
		return 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return 1;
	t0 = mono_us();
	start = t0 + warmup_ms * 1000;
	end = start + window_ms * 1000;
	/* Slot j belongs to monitor j % n_urls, at t0 + j * interval / n. */
	for (j = 0;;) {
		now = mono_us();
		if (cpu0 < 0 && now >= start)
			cpu0 = self_cpu_s();
		for (; now >= t0 + j * interval_ms * 1000 / n_urls && now < end;
		    j++) {
			if ((p = calloc(1, sizeof(*p))) == NULL)
				continue;
			probes++;
			len = snprintf(req, sizeof(req), "GET /probe?module="
			    "http_2xx&target=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			    "Connection: close\r\n\r\n", urls[j % n_urls]);
			p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			/* A blocking connect and send to loopback return at
			 * once; only the answer is waited for, in epoll. */
			if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&a,
			    sizeof(a)) != 0 || write(p->fd, req, (size_t)len)
			    != len) {
				if (p->fd >= 0)
					close(p->fd);
				free(p);
				continue;
			}
			ev.events = EPOLLIN;
			ev.data.ptr = p;
			epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev);
			in_flight++;
		}
		if (now >= end && in_flight == 0)
			break;
		if (now >= end + 10000000)
			break; /* answers still missing 10 s after the end */
		next = t0 + j * interval_ms * 1000 / n_urls;
		n = epoll_wait(ep, evs, 256, now >= end ? 100 :
		    (int)((next - now + 999) / 1000));
		for (i = 0; i < n; i++) {
			p = evs[i].data.ptr;
			r = read(p->fd, p->buf + p->len, sizeof(p->buf) - 1 -
			    p->len);
			if (r > 0) {
				p->len += (size_t)r;
				if (p->len < sizeof(p->buf) - 1)
					continue;
			}
			p->buf[p->len] = '\0';
			if (strncmp(p->buf, "HTTP/1.1 200", 12) == 0) {
				answered++;
				if (strstr(p->buf, "\nprobe_success 1") != NULL)
					success++;
			}
			close(p->fd);
			free(p);
			in_flight--;
		}
	}
	cpu1 = self_cpu_s();
	printf("probes=%ld answered=%ld success=%ld driver_cpu_window_s=%.3f\n",
	    probes, answered, success, cpu0 < 0 ? 0 : cpu1 - cpu0);
	return 0;
}

static int
mode_freeport(void)
{
	struct sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		return 1;
	printf("%d\n", ntohs(a.sin_port));
	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && strcmp(argv[1], "floor") == 0)
		return mode_floor(atoi(argv[2]), atol(argv[3]));
	if (argc == 4 && strcmp(argv[1], "curlfloor") == 0)
		return mode_curlfloor(atoi(argv[2]), atol(argv[3]));
	if (argc == 4 && strcmp(argv[1], "ready") == 0)
		return mode_ready(atoi(argv[2]), atol(argv[3]));
	if (argc == 5 && strcmp(argv[1], "watch") == 0)
		return mode_watch(atoi(argv[2]), atol(argv[3]), atol(argv[4]));
	if (argc == 7 && strcmp(argv[1], "driver") == 0)
		return mode_driver(atoi(argv[2]), argv[3], atol(argv[4]),
		    atol(argv[5]), atol(argv[6]));
	if (argc == 2 && strcmp(argv[1], "freeport") == 0)
		return mode_freeport();
	fprintf(stderr, "usage: see the comment at the top of bench/load.c\n");
	return 2;
}
