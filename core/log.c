#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* Atomic: a reload changes it while other threads log. */
static _Atomic int threshold = WP_LOG_INFO;
static enum log_target target = LOG_TO_STDERR;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *const names[] = { "error", "warn", "info", "debug" };

void
log_setup(int level, enum log_target t)
{
	threshold = level;
	if (t == LOG_TO_SYSLOG && target != LOG_TO_SYSLOG)
		openlog("watchpost", LOG_PID, LOG_DAEMON);
	target = t;
}

int
log_threshold(void)
{
	return threshold;
}

int
log_parse_level(const char *s, int *level)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*level = i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*level = WP_LOG_WARN;
		return 0;
	}
	return WP_EINVAL;
}

void
log_vmsg(int level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048], clean[4096];
	const char *text = line;
	unsigned char c;
	size_t n, i;
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (level > threshold)
		return;
	if (level < 0)
		level = 0;
	if (level > WP_LOG_DEBUG)
		level = WP_LOG_DEBUG;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* One event, one line, whatever the message holds: a trailing
	 * newline is dropped, and control bytes (an embedded newline, a
	 * terminal escape) and invalid UTF-8 from a file, a plugin or a
	 * server are escaped, so they can neither forge a line nor reach
	 * the terminal.  Tabs stay. */
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	for (i = 0; i < n; i++) {
		c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f) {
			str_escape(line, sizeof(clean), clean, sizeof(clean));
			text = clean;
			break;
		}
	}
	if (target == LOG_TO_SYSLOG) {
		syslog(prio[level], "%s", text);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	pthread_mutex_lock(&log_mu);
	fprintf(stderr, "%s.%03ld %-5s %s\n", stamp, ts.tv_nsec / 1000000,
	    names[level], text);
	pthread_mutex_unlock(&log_mu);
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
