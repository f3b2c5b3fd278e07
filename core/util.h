/*
 * util -- small helpers every core module uses: clocks, parsers for the
 * configuration's value types, allocation that never returns NULL, and a
 * growable string buffer.
 */
#ifndef CORE_UTIL_H
#define CORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <watchpost/plugin.h>

/* Clocks.  mono: monotonic; wall: unix epoch. */
int64_t mono_us(void);
int64_t mono_ms(void);
int64_t wall_us(void);
int64_t wall_ms(void);

/*
 * Parse a duration: "250ms", "10s", "5m", "1h", "1d", or a bare number of
 * seconds ("1.5" is 1500 ms): decimal digits with at most one '.', then
 * the unit.  Rejects anything else -- empty, a sign, blanks, exponents
 * ("1e3"), hex ("0x10"), "inf", "nan", trailing garbage -- and values
 * over DURATION_MAX_MS.  Returns 0 and sets *ms, or WP_EINVAL.
 */
#define DURATION_MAX_MS (3650LL * 86400000) /* ten years */
int parse_duration(const char *s, int64_t *ms);

/* true/false, yes/no, on/off, 1/0 (any case).  0 and *out, or WP_EINVAL. */
int parse_bool(const char *s, int *out);

/* A decimal integer in [min, max], whole string.  0 or WP_EINVAL. */
int parse_int(const char *s, long long min, long long max, long long *out);

/* Format a duration in ms the way the configuration writes it ("1m30s"). */
void format_duration(int64_t ms, char *buf, size_t len);

/*
 * Input quoted in a message (a key, a value, a name from the file, text a
 * server sent).  qstr() writes into BUF (LEN bytes) at most MAX
 * characters of S, each shown on the terminal as one character or as an
 * escape: '\\', '"', \n, \r, \t, and \xNN for the other control bytes,
 * DEL, the C1 controls and every byte that is not part of valid UTF-8.  When
 * S is longer, or BUF too small, "..." follows what fits.  S NULL reads as
 * "".  Returns BUF, always NUL-terminated (LEN > 0).  QSTR(s) quotes S with
 * the default limit in a buffer of its own, valid in the enclosing block:
 *     report(..., "unknown key \"%s\"", QSTR(key));
 */
#define QSTR_CHARS 80
#define QSTR_SIZE (QSTR_CHARS * 4 + 4) /* the worst case, "...", NUL */
const char *qstr(const char *s, size_t max, char *buf, size_t len);
#define QSTR(s)                                                          \
	qstr((s), QSTR_CHARS, (char[QSTR_SIZE]){ 0 },                    \
	    QSTR_SIZE)

/*
 * The same escapes for a whole message (the log writer, a diagnostic):
 * tabs, '"' and '\\' are kept as they are; at most MAX characters, then
 * "...".
 */
void str_escape(const char *s, size_t max, char *buf, size_t len);

/* Levenshtein distance, capped at 100; for "did you mean". */
int edit_distance(const char *a, const char *b);

/*
 * Copy SRC (NULL: "") into DST of LEN > 0 bytes, cut at LEN - 1 bytes,
 * always NUL-terminated.  snprintf(dst, len, "%s", src) without its cost
 * (about 500 instructions a call, on every check's path).
 */
void str_copy(char *dst, size_t len, const char *src);

/* Allocation that aborts on exhaustion: the daemon cannot run without it. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) WP_PRINTF(1, 2);

/*
 * The reason table: short name ("refused"), description and class (enum
 * wp_class) of an enum wp_reason.  A reason outside the enum counts as
 * WP_REASON_PLUGIN (down).  Up, degraded or down is always reason_class()
 * of the reason: nothing stores or derives it any other way.
 */
const char *reason_name(int reason);
const char *reason_desc(int reason);
int reason_class(int reason);

/* A growable, always NUL-terminated byte buffer. */
struct sbuf {
	char *data;
	size_t len;
	size_t cap;
};
void sbuf_append(struct sbuf *b, const char *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) WP_PRINTF(2, 3);
/* Take ownership of the bytes (free() them); leaves b empty. */
char *sbuf_steal(struct sbuf *b);
void sbuf_free(struct sbuf *b);

#endif
