/*
 * log -- one line per event, to stderr (default) or syslog.  Every line
 * names who speaks: "monitor api-home: ..." or "plugin http: ...".
 * Thread-safe: lines from different threads never interleave.
 */
#ifndef WP_LOG_H
#define WP_LOG_H

#include <stdarg.h>

#include <watchpost/plugin.h>

enum wp_log_target { WP_LOG_STDERR, WP_LOG_SYSLOG };

/* Set the threshold (WP_LOG_* from plugin.h) and the target. */
void wp_log_setup(int level, enum wp_log_target target);
int wp_log_level(void);
/* Parse "debug|info|warn|error" into *level; 0 or WP_EINVAL. */
int wp_log_parse_level(const char *s, int *level);

void wp_log(int level, const char *fmt, ...) WP_PRINTF(2, 3);
void wp_vlog(int level, const char *fmt, va_list ap);

#define wp_err(...) wp_log(WP_LOG_ERROR, __VA_ARGS__)
#define wp_warn(...) wp_log(WP_LOG_WARN, __VA_ARGS__)
#define wp_info(...) wp_log(WP_LOG_INFO, __VA_ARGS__)
#define wp_debug(...)                                                    \
	do {                                                             \
		if (wp_log_level() >= WP_LOG_DEBUG)                      \
			wp_log(WP_LOG_DEBUG, __VA_ARGS__);               \
	} while (0)

#endif
