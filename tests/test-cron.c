/*
 * test-cron -- core/cron.c: the cron field parser, next-fire times, ISO
 * 8601 times, and the DST rule (a skipped wall time shifts forward by the
 * gap, a repeated one runs once, at its first occurrence) in Europe/Berlin
 * and America/New_York on their 2026 change days.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

/* Unix ms of a UTC date-time. */
static int64_t
utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm) * 1000;
}

static struct cron *
must_parse(const char *spec, const char *tz)
{
	struct cron *c = NULL;
	char err[256] = "";

	if (cron_parse(spec, tz, &c, err, sizeof(err)) != 0)
		fail_msg("%s: %s", spec, err);
	return c;
}

static void
bad(const char *spec, const char *tz, const char *want)
{
	struct cron *c = NULL;
	char err[256] = "";

	assert_int_not_equal(cron_parse(spec, tz, &c, err, sizeof(err)), 0);
	assert_null(c);
	if (strstr(err, want) == NULL)
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", spec, err, want);
}

static void
test_parse_errors(void **state)
{
	(void)state;
	bad("60 * * * *", NULL, "minute");
	bad("* 24 * * *", NULL, "hour");
	bad("* * 0 * *", NULL, "day of month");
	bad("* * * 13 *", NULL, "month");
	bad("* * * * 8", NULL, "day of week");
	bad("* * *", NULL, "5 fields");
	bad("* * * * * *", NULL, "5 fields");
	bad("*/0 * * * *", NULL, "not a cron field");
	bad("5-3 * * * *", NULL, "minute");
	bad("x * * * *", NULL, "not a cron field");
	bad("1,,2 * * * *", NULL, "not a cron field");
	bad("* * * foo *", NULL, "month");
	bad("0 3 * * 0", "Mars/Olympus_Mons", "unknown time zone");
	assert_int_equal(cron_zone_valid("Europe/Berlin"), 1);
	assert_int_equal(cron_zone_valid("UTC"), 1);
	assert_int_equal(cron_zone_valid(NULL), 1);
	assert_int_equal(cron_zone_valid("Nowhere/Land"), 0);
}

static void
test_next_basic(void **state)
{
	struct cron *c;

	(void)state;
	/* Sunday 03:00 UTC; 2026-12-02 is a Wednesday. */
	c = must_parse("0 3 * * 0", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 12, 2, 18, 0)),
	    utc(2026, 12, 6, 3, 0));
	/* Strictly after: at the fire time itself, the next week. */
	assert_int_equal(cron_next(c, utc(2026, 12, 6, 3, 0)),
	    utc(2026, 12, 13, 3, 0));
	cron_free(c);
	/* 7 is Sunday too; names in any case. */
	c = must_parse("0 3 * * SUN", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 12, 2, 18, 0)),
	    utc(2026, 12, 6, 3, 0));
	cron_free(c);
	c = must_parse("0 3 * * 7", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 12, 2, 18, 0)),
	    utc(2026, 12, 6, 3, 0));
	cron_free(c);
	/* Steps and lists. */
	c = must_parse("*/15 * * * *", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 1, 1, 10, 7)),
	    utc(2026, 1, 1, 10, 15));
	assert_int_equal(cron_next(c, utc(2026, 1, 1, 10, 45)),
	    utc(2026, 1, 1, 11, 0));
	cron_free(c);
	c = must_parse("5/20 * * * *", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 1, 1, 10, 26)),
	    utc(2026, 1, 1, 10, 45));
	cron_free(c);
	c = must_parse("0 9-17/4 * * *", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 1, 1, 13, 1)),
	    utc(2026, 1, 1, 17, 0));
	assert_int_equal(cron_next(c, utc(2026, 1, 1, 17, 0)),
	    utc(2026, 1, 2, 9, 0));
	cron_free(c);
	/* Months by name, day of month. */
	c = must_parse("30 4 1 jan,jul *", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 2, 1, 0, 0)),
	    utc(2026, 7, 1, 4, 30));
	cron_free(c);
	/* Both day fields restricted: either matches (Vixie cron).  Jan 2
	 * 2026 is a Friday, before the 13th. */
	c = must_parse("0 0 13 * fri", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 1, 1, 0, 0)),
	    utc(2026, 1, 2, 0, 0));
	cron_free(c);
	/* Only one restricted: both must hold.  The next Friday the 13th
	 * after 2026-03-01 is 2026-03-13. */
	c = must_parse("0 0 13 * *", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 3, 1, 0, 0)),
	    utc(2026, 3, 13, 0, 0));
	cron_free(c);
	/* Feb 29: the next leap year. */
	c = must_parse("0 0 29 2 *", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 3, 1, 0, 0)),
	    utc(2028, 2, 29, 0, 0));
	cron_free(c);
	/* A date that never comes. */
	c = must_parse("0 0 30 2 *", "UTC");
	assert_int_equal(cron_next(c, utc(2026, 3, 1, 0, 0)), -1);
	cron_free(c);
}

static void
test_zone_offsets(void **state)
{
	struct cron *c;

	(void)state;
	/* 03:00 in Berlin is 02:00 UTC in winter, 01:00 in summer. */
	c = must_parse("0 3 * * *", "Europe/Berlin");
	assert_int_equal(cron_next(c, utc(2026, 1, 10, 12, 0)),
	    utc(2026, 1, 11, 2, 0));
	assert_int_equal(cron_next(c, utc(2026, 7, 10, 12, 0)),
	    utc(2026, 7, 11, 1, 0));
	cron_free(c);
}

/* Fires of C in [from, to) (bounded). */
static int
count_fires(struct cron *c, int64_t from, int64_t to)
{
	int64_t t = from - 1;
	int n = 0;

	while (n < 10000 && (t = cron_next(c, t)) >= 0 && t < to)
		n++;
	return n;
}

static void
test_dst_berlin(void **state)
{
	struct cron *c;

	(void)state;
	/* 2026-03-29: 02:00 CET -> 03:00 CEST.  02:30 does not exist; it
	 * runs shifted forward by the gap, at 03:30 CEST (01:30 UTC). */
	c = must_parse("30 2 * * *", "Europe/Berlin");
	assert_int_equal(cron_next(c, utc(2026, 3, 28, 12, 0)),
	    utc(2026, 3, 29, 1, 30));
	assert_int_equal(cron_next(c, utc(2026, 3, 29, 1, 30)),
	    utc(2026, 3, 30, 0, 30));
	/* 2026-10-25: 03:00 CEST -> 02:00 CET.  02:30 happens twice; it
	 * runs once, the first time (CEST, 00:30 UTC). */
	assert_int_equal(cron_next(c, utc(2026, 10, 24, 12, 0)),
	    utc(2026, 10, 25, 0, 30));
	assert_int_equal(cron_next(c, utc(2026, 10, 25, 0, 30)),
	    utc(2026, 10, 26, 1, 30));
	cron_free(c);
	/* Every half hour: 46 wall times exist on the short day (02:00 and
	 * 02:30 shift onto 03:00 and 03:30, which run once), and each of the
	 * 48 runs once on the long day although it lasts 25 hours. */
	c = must_parse("*/30 * * * *", "Europe/Berlin");
	assert_int_equal(count_fires(c, utc(2026, 3, 28, 23, 0),
	    utc(2026, 3, 29, 22, 0)), 46);
	assert_int_equal(count_fires(c, utc(2026, 10, 24, 22, 0),
	    utc(2026, 10, 25, 23, 0)), 48);
	cron_free(c);
}

static void
test_dst_new_york(void **state)
{
	struct cron *c;

	(void)state;
	/* 2026-03-08: 02:00 EST -> 03:00 EDT; 02:30 runs at 03:30 EDT. */
	c = must_parse("30 2 * * *", "America/New_York");
	assert_int_equal(cron_next(c, utc(2026, 3, 7, 12, 0)),
	    utc(2026, 3, 8, 7, 30));
	assert_int_equal(cron_next(c, utc(2026, 3, 8, 7, 30)),
	    utc(2026, 3, 9, 6, 30));
	cron_free(c);
	/* 2026-11-01: 02:00 EDT -> 01:00 EST; 01:30 runs once, at 01:30
	 * EDT (05:30 UTC), not again at 01:30 EST (06:30 UTC). */
	c = must_parse("30 1 * * *", "America/New_York");
	assert_int_equal(cron_next(c, utc(2026, 10, 31, 12, 0)),
	    utc(2026, 11, 1, 5, 30));
	assert_int_equal(cron_next(c, utc(2026, 11, 1, 5, 30)),
	    utc(2026, 11, 2, 6, 30));
	cron_free(c);
}

static void
time_ok(const char *text, const char *tz, int64_t want)
{
	char err[256] = "";
	int64_t ms = 0;

	if (cron_parse_time(text, tz, &ms, err, sizeof(err)) != 0)
		fail_msg("%s: %s", text, err);
	assert_int_equal(ms, want);
}

static void
time_bad(const char *text)
{
	char err[256] = "";
	int64_t ms = 0;

	assert_int_not_equal(cron_parse_time(text, "UTC", &ms, err,
	    sizeof(err)), 0);
	assert_non_null(strstr(err, "ISO 8601"));
}

static void
test_iso_times(void **state)
{
	char buf[64];

	(void)state;
	time_ok("2026-12-24T22:00:00Z", NULL, utc(2026, 12, 24, 22, 0));
	time_ok("2026-12-24T22:00Z", NULL, utc(2026, 12, 24, 22, 0));
	time_ok("2026-12-24 23:00:00+01:00", NULL, utc(2026, 12, 24, 22, 0));
	time_ok("2026-12-24T17:00-0500", NULL, utc(2026, 12, 24, 22, 0));
	time_ok("2026-12-24T22:00:00.250Z", NULL,
	    utc(2026, 12, 24, 22, 0) + 250);
	/* No offset: a wall time in the zone, with the DST rule. */
	time_ok("2026-12-24T23:00", "Europe/Berlin", utc(2026, 12, 24, 22, 0));
	time_ok("2026-03-29T02:30", "Europe/Berlin", utc(2026, 3, 29, 1, 30));
	time_ok("2026-11-01T01:30", "America/New_York", utc(2026, 11, 1, 5, 30));
	time_bad("2026-02-30T00:00Z");
	time_bad("2026-12-24");
	time_bad("2026-12-24T25:00Z");
	time_bad("2026-12-24T22:00:00Zjunk");
	time_bad("tomorrow");
	cron_format_utc(utc(2026, 12, 24, 22, 0) + 999, buf, sizeof(buf));
	assert_string_equal(buf, "2026-12-24T22:00:00Z");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_next_basic),
		cmocka_unit_test(test_zone_offsets),
		cmocka_unit_test(test_dst_berlin),
		cmocka_unit_test(test_dst_new_york),
		cmocka_unit_test(test_iso_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
