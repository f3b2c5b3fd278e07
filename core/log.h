/*
 * log -- one line per event, to stderr (default) or syslog.  Every line
 * names who speaks: "monitor api-home: ..." or "plugin http: ...".
 * Thread-safe: lines from different threads never interleave.
 */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <stdarg.h>

#include <watchpost/plugin.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };

/* Set the threshold (WP_LOG_* from plugin.h) and the target. */
void log_setup(int level, enum log_target target);
int log_threshold(void);
/* Parse "debug|info|warn|error" into *level; 0 or WP_EINVAL. */
int log_parse_level(const char *s, int *level);

void log_msg(int level, const char *fmt, ...) WP_PRINTF(2, 3);
void log_vmsg(int level, const char *fmt, va_list ap);

#define log_err(...) log_msg(WP_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(WP_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(WP_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                   \
	do {                                                             \
		if (log_threshold() >= WP_LOG_DEBUG)                     \
			log_msg(WP_LOG_DEBUG, __VA_ARGS__);              \
	} while (0)

#endif
