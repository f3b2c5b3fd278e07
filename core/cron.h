/*
 * cron -- 5-field cron schedules and ISO 8601 times in a named time zone.
 *
 * Maintenance windows ([maintenance:NAME] schedule = ..., timezone = ...)
 * and silences need two things: "when does this schedule next fire, in
 * this zone" and "what instant does this ISO 8601 text name".
 *
 * Why this is written here: Debian has no well-kept C cron library, so the
 * five fields are parsed by a small, tested parser (tests/test-cron.c).
 * Why ICU for the zones: the system tz database through libc means
 * setenv("TZ") + tzset() + localtime_r(), and TZ is process-global -- the
 * agent's worker and store threads format times at any moment, so
 * switching it per window would race with them.  ICU's C API (ucal_*)
 * reads the same tz database per calendar object, with no global state,
 * and has explicit rules for the wall times a DST change skips or repeats.
 *
 * The DST rule (watchpost.ini(5)):
 *   - a wall time the clock skips (02:30 on a spring-forward day, where
 *     the clock goes 02:00 -> 03:00) runs shifted forward by the gap, at
 *     03:30 the same day: the window still happens that day, once;
 *   - a wall time the clock repeats (01:30 on a fall-back day, where it
 *     goes 02:00 -> 01:00) runs once, at its first occurrence (daylight
 *     time), not twice.
 * Durations are elapsed time: a 2h window starting at 01:30 on a
 * fall-back day lasts two real hours.
 *
 * UCalendar objects are not shared: each struct cron owns one, used by one
 * thread at a time (the loop thread once configured).
 */
#ifndef CORE_CRON_H
#define CORE_CRON_H

#include <stddef.h>
#include <stdint.h>

struct cron;

/*
 * Parse SPEC, five blank-separated fields: minute (0-59), hour (0-23), day
 * of month (1-31), month (1-12 or jan-dec), day of week (0-7, 0 and 7 are
 * Sunday, or sun-sat).  Each field is a comma list of `*`, N, N-M, any of
 * them with /STEP, names in any case.  As in Vixie cron, when both day
 * fields are restricted (neither starts with `*`) a day matches if either
 * does.  TZ is an IANA zone name ("Europe/Berlin"); NULL or "" is the
 * agent's own zone.  Returns 0 and *out (cron_free()), or WP_EINVAL with a
 * message in err (no "FILE:LINE" prefix: the caller adds it).
 */
int cron_parse(const char *spec, const char *tz, struct cron **out,
    char *err, size_t errlen);
void cron_free(struct cron *c);

/*
 * The first instant (unix ms) after AFTER_MS at which C fires, under the
 * DST rule above; -1 if none within the next 8 years (a date that never
 * comes: "0 0 30 2 *").
 */
int64_t cron_next(struct cron *c, int64_t after_ms);

/*
 * 1 if TZ names a zone the tz database knows (NULL or "": the agent's own,
 * always valid), else 0.
 */
int cron_zone_valid(const char *tz);

/*
 * Parse an ISO 8601 date-time: YYYY-MM-DDTHH:MM[:SS[.fff]] followed by Z
 * or an offset (+01:00, -0500), or without either, then read as a wall
 * time in zone TZ (NULL or "": the agent's) under the DST rule above.  A
 * space may replace the T.  Returns 0 and *ms (unix ms), or WP_EINVAL with
 * a message in err.
 */
int cron_parse_time(const char *text, const char *tz, int64_t *ms,
    char *err, size_t errlen);

/* Unix ms as ISO 8601 UTC ("2026-12-24T22:00:00Z") into buf. */
void cron_format_utc(int64_t ms, char *buf, size_t len);

#endif
