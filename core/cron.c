/*
 * cron -- see cron.h for the rules and why ICU does the zones.
 *
 * Dates are walked as proleptic Gregorian day numbers (pure arithmetic, no
 * zone involved); only a candidate wall time is turned into an instant, by
 * the UCalendar set to the DST rule: UCAL_SKIPPED_WALL_TIME = LAST reads a
 * skipped 02:30 with the offset before the change (so 03:30 after it), and
 * UCAL_REPEATED_WALL_TIME = FIRST reads a repeated 01:30 as the first one.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include <watchpost/plugin.h>

#include "cron.h"
#include "util.h"

#define ZONE_MAX 128            /* characters of a zone name */
#define SCAN_DAYS (8 * 366)     /* how far cron_next() looks */
#define DAY_MS 86400000LL

struct cron {
	uint64_t minute;        /* bit i: minute i */
	uint32_t hour;          /* bit i: hour i */
	uint32_t dom;           /* bit i: day of month i (1-31) */
	uint16_t month;         /* bit i: month i (1-12) */
	uint8_t dow;            /* bit i: weekday i (0 Sunday) */
	int dom_star, dow_star; /* the field starts with '*' */
	UCalendar *cal;
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr",
	"may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const dow_names[] = { "sun", "mon", "tue", "wed", "thu",
	"fri", "sat", NULL };

struct field {
	const char *what;
	int min, max;
	const char *const *names;   /* names[i] is min + i; NULL: none */
};

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL },
	{ "month", 1, 12, month_names },
	{ "day of week", 0, 7, dow_names },
};

/* Days since 1970-01-01 of Y-M-D (M 1-12), any year (H. Hinnant's
 * days_from_civil). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The inverse: Y-M-D of day Z since 1970-01-01. */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* 0 Sunday .. 6 Saturday (1970-01-01 was a Thursday). */
static int
weekday(int64_t z)
{
	int64_t w = (z + 4) % 7;

	return (int)(w < 0 ? w + 7 : w);
}

/* A calendar in zone TZ (NULL/"": the default) with the DST rule, or NULL
 * with err set. */
static UCalendar *
open_cal(const char *tz, char *err, size_t errlen)
{
	UChar zone[ZONE_MAX];
	UErrorCode st = U_ZERO_ERROR;
	UCalendar *cal;

	if (tz != NULL && *tz != '\0') {
		if (!cron_zone_valid(tz)) {
			snprintf(err, errlen, "unknown time zone \"%s\" (an "
			    "IANA name such as Europe/Berlin or UTC)", QSTR(tz));
			return NULL;
		}
		u_uastrncpy(zone, tz, ZONE_MAX - 1);
		zone[ZONE_MAX - 1] = 0;
		cal = ucal_open(zone, -1, "en_US_POSIX", UCAL_GREGORIAN, &st);
	} else
		cal = ucal_open(NULL, 0, "en_US_POSIX", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st) || cal == NULL) {
		snprintf(err, errlen, "time zone \"%s\": %s", tz ? QSTR(tz) :
		    "", u_errorName(st));
		if (cal != NULL)
			ucal_close(cal);
		return NULL;
	}
	ucal_setAttribute(cal, UCAL_LENIENT, 1);
	ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_LAST);
	ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
	return cal;
}

/* The instant of wall time Y-M-D H:MI:S in CAL's zone (ms), or -1. */
static int64_t
wall_to_ms(UCalendar *cal, int64_t y, int m, int d, int h, int mi, int s)
{
	UErrorCode st = U_ZERO_ERROR;
	UDate t;

	ucal_clear(cal);
	ucal_setDateTime(cal, (int32_t)y, m - 1, d, h, mi, s, &st);
	t = ucal_getMillis(cal, &st);
	return U_FAILURE(st) ? -1 : (int64_t)t;
}

int
cron_zone_valid(const char *tz)
{
	UChar zone[ZONE_MAX], canon[ZONE_MAX];
	UErrorCode st = U_ZERO_ERROR;
	UBool sys = 0;

	if (tz == NULL || *tz == '\0')
		return 1;
	if (strlen(tz) >= ZONE_MAX)
		return 0;
	u_uastrncpy(zone, tz, ZONE_MAX - 1);
	zone[ZONE_MAX - 1] = 0;
	ucal_getCanonicalTimeZoneID(zone, -1, canon, ZONE_MAX, &sys, &st);
	return U_SUCCESS(st) && sys;
}

/* A number or (for fields with names) a name at *p, advancing *p.  0 and
 * *v, or -1. */
static int
parse_value(const struct field *f, const char **p, int *v)
{
	const char *s = *p;
	long n = 0;
	int i, digits = 0;

	if (isdigit((unsigned char)*s)) {
		while (isdigit((unsigned char)*s) && digits < 4) {
			n = n * 10 + (*s++ - '0');
			digits++;
		}
		if (isdigit((unsigned char)*s))
			return -1;
		*v = (int)n;
		*p = s;
		return 0;
	}
	for (i = 0; f->names != NULL && f->names[i] != NULL; i++)
		if (strncasecmp(s, f->names[i], 3) == 0 &&
		    !isalpha((unsigned char)s[3])) {
			*v = f->min + i;
			*p = s + 3;
			return 0;
		}
	return -1;
}

/* One field's text (NUL-terminated) into bits.  0, or WP_EINVAL. */
static int
parse_field(const struct field *f, const char *text, uint64_t *bits,
    char *err, size_t errlen)
{
	const char *p = text;
	int lo, hi, step, v, ranged;

	*bits = 0;
	for (;;) {
		step = 1;
		ranged = 1;
		if (*p == '*') {
			lo = f->min;
			hi = f->max;
			p++;
		} else {
			if (parse_value(f, &p, &lo) != 0)
				goto bad;
			hi = lo;
			ranged = 0;
			if (*p == '-') {
				ranged = 1;
				p++;
				if (parse_value(f, &p, &hi) != 0)
					goto bad;
			}
		}
		if (*p == '/') {
			p++;
			if (parse_value(&(struct field){ f->what, 0, 0, NULL },
			    &p, &step) != 0 || step == 0)
				goto bad;
			/* "N/S" is N to the field's end every S. */
			if (!ranged)
				hi = f->max;
		}
		if (lo < f->min || hi > f->max || lo > hi) {
			snprintf(err, errlen, "%s: \"%s\": values are %d to %d",
			    f->what, QSTR(text), f->min, f->max);
			return WP_EINVAL;
		}
		for (v = lo; v <= hi; v += step)
			*bits |= 1ULL << v;
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			goto bad;
	}
bad:
	snprintf(err, errlen, "%s: \"%s\" is not a cron field (N, N-M, *, "
	    "with /STEP, comma-separated%s)", f->what, QSTR(text),
	    f->names != NULL ? ", or names" : "");
	return WP_EINVAL;
}

int
cron_parse(const char *spec, const char *tz, struct cron **out, char *err,
    size_t errlen)
{
	char *copy, *tok, *save = NULL;
	uint64_t bits[5];
	int n = 0, star[5] = { 0 };
	struct cron *c;

	*out = NULL;
	copy = xstrdup(spec);
	for (tok = strtok_r(copy, " \t", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t", &save)) {
		if (n == 5) {
			n++;
			break;
		}
		star[n] = tok[0] == '*';
		if (parse_field(&fields[n], tok, &bits[n], err, errlen) != 0) {
			free(copy);
			return WP_EINVAL;
		}
		n++;
	}
	free(copy);
	if (n != 5) {
		snprintf(err, errlen, "\"%s\" is not a cron schedule: it needs "
		    "5 fields (minute hour day-of-month month day-of-week), "
		    "not %s%d", QSTR(spec), n > 5 ? "more than " : "",
		    n > 5 ? 5 : n);
		return WP_EINVAL;
	}
	c = xcalloc(1, sizeof(*c));
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->month = (uint16_t)bits[3];
	/* 7 is Sunday too. */
	c->dow = (uint8_t)((bits[4] & 0x7f) | ((bits[4] >> 7) & 1));
	c->dom_star = star[2];
	c->dow_star = star[4];
	if ((c->cal = open_cal(tz, err, errlen)) == NULL) {
		free(c);
		return WP_EINVAL;
	}
	*out = c;
	return 0;
}

void
cron_free(struct cron *c)
{
	if (c == NULL)
		return;
	ucal_close(c->cal);
	free(c);
}

static int
day_matches(const struct cron *c, int64_t z, int m, int d)
{
	int dom, dow;

	if (!(c->month & (1u << m)))
		return 0;
	dom = (c->dom >> d) & 1;
	dow = (c->dow >> weekday(z)) & 1;
	if (!c->dom_star && !c->dow_star)
		return dom || dow;
	return dom && dow;
}

int64_t
cron_next(struct cron *c, int64_t after_ms)
{
	UErrorCode st = U_ZERO_ERROR;
	int64_t z, z0, y, t, best = -1;
	int32_t ly, lm, ld;
	int m, d, h, mi;

	/* The local date of AFTER_MS, and one day before it: a candidate is
	 * never moved to another day by more than a DST gap. */
	ucal_setMillis(c->cal, (UDate)after_ms, &st);
	ly = ucal_get(c->cal, UCAL_YEAR, &st);
	lm = ucal_get(c->cal, UCAL_MONTH, &st) + 1;
	ld = ucal_get(c->cal, UCAL_DATE, &st);
	if (U_FAILURE(st))
		return -1;
	z0 = days_from_civil(ly, lm, ld) - 1;
	for (z = z0; z < z0 + SCAN_DAYS; z++) {
		civil_from_days(z, &y, &m, &d);
		if (!day_matches(c, z, m, d))
			continue;
		/* Every candidate of the day: a skipped time shifted forward
		 * may come after a later wall time's instant. */
		for (h = 0; h < 24; h++) {
			if (!(c->hour & (1u << h)))
				continue;
			for (mi = 0; mi < 60; mi++) {
				if (!(c->minute & (1ULL << mi)))
					continue;
				t = wall_to_ms(c->cal, y, m, d, h, mi, 0);
				if (t > after_ms && (best < 0 || t < best))
					best = t;
			}
		}
		if (best >= 0)
			return best;
	}
	return -1;
}

/* Exactly N digits at *p into *v, advancing; -1 if not. */
static int
digits(const char **p, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		*v = *v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return 0;
}

int
cron_parse_time(const char *text, const char *tz, int64_t *ms, char *err,
    size_t errlen)
{
	const char *p = text;
	int y, mo, d, h, mi, s = 0, frac = 0, oh = 0, om = 0, sign = 0, k;
	int64_t days, t;
	UCalendar *cal;

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
	    *p++ != '-' || digits(&p, 2, &d) || (*p != 'T' && *p != 't' &&
	    *p != ' '))
		goto bad;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
		goto bad;
	if (*p == ':') {
		p++;
		if (digits(&p, 2, &s))
			goto bad;
		if (*p == '.' || *p == ',') {
			p++;
			for (k = 0; isdigit((unsigned char)*p); k++, p++)
				if (k < 3)
					frac = frac * 10 + (*p - '0');
			if (k == 0)
				goto bad;
			for (; k < 3; k++)
				frac *= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		sign = 1;
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh))
			goto bad;
		if (*p == ':')
			p++;
		if (digits(&p, 2, &om) || oh > 23 || om > 59)
			goto bad;
	}
	if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 ||
	    s > 60)
		goto bad;
	days = days_from_civil(y, mo, d);
	{
		/* Day d must exist in that month (no Feb 30). */
		int64_t yy;
		int mm, dd;

		civil_from_days(days, &yy, &mm, &dd);
		if (mm != mo || dd != d)
			goto bad;
	}
	if (sign != 0) {
		t = ((days * 24 + h) * 60 + mi) * 60 + (s > 59 ? 59 : s);
		t -= sign * (oh * 3600 + om * 60);
		*ms = t * 1000 + frac;
		return 0;
	}
	if ((cal = open_cal(tz, err, errlen)) == NULL)
		return WP_EINVAL;
	t = wall_to_ms(cal, y, mo, d, h, mi, s > 59 ? 59 : s);
	ucal_close(cal);
	if (t < 0)
		goto bad;
	*ms = t + frac;
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not an ISO 8601 time (such as "
	    "2026-12-24T22:00:00Z, 2026-12-24T23:00+01:00, or "
	    "2026-12-24T23:00 in the time zone)", QSTR(text));
	return WP_EINVAL;
}

void
cron_format_utc(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000, z, y, sod;
	int m, d;

	z = s >= 0 ? s / 86400 : (s - 86399) / 86400;
	sod = s - z * 86400;
	civil_from_days(z, &y, &m, &d);
	snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m,
	    d, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
}
