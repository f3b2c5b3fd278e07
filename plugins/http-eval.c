#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <watchpost/plugin.h>

#include "http-eval.h"

/* Parse a status code 100-599 at *S, advancing it; -1 if there is none. */
static int
parse_code(const char **s)
{
	const char *p = *s;
	int v = 0, n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	while (isdigit((unsigned char)*p) && n < 4) {
		v = v * 10 + (*p++ - '0');
		n++;
	}
	if (n != 3 || v < 100 || v > 599)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	*s = p;
	return v;
}

const char *
httpeval_parse_status(struct httpeval_status *st, const char *s)
{
	static const char codes[] = "codes must be 100-599, "
	    "as in \"200\", \"200-299\" or \"200,301\"";
	const char *p = s;
	int lo, hi;

	st->n = 0;
	for (;;) {
		if ((lo = parse_code(&p)) < 0)
			return codes;
		hi = lo;
		if (*p == '-') {
			p++;
			if ((hi = parse_code(&p)) < 0)
				return codes;
			if (hi < lo)
				return "a range ends below its start";
		}
		if (st->n == HTTPEVAL_MAX_RANGES)
			return "too many items";
		st->r[st->n].lo = lo;
		st->r[st->n].hi = hi;
		st->n++;
		if (*p == '\0')
			return NULL;
		if (*p != ',')
			return "items must be separated by commas";
		p++;
	}
}

void
httpeval_status_default(struct httpeval_status *st)
{
	st->r[0].lo = 200;
	st->r[0].hi = 299;
	st->n = 1;
}

int
httpeval_status_ok(const struct httpeval_status *st, long code)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		if (code >= st->r[i].lo && code <= st->r[i].hi)
			return 1;
	return 0;
}

void
httpeval_match_init(struct httpeval_match *m, const char *needle)
{
	/* The tail window is not cleared: only tail_len bytes are read. */
	m->needle = needle;
	m->len = needle != NULL ? strlen(needle) : 0;
	m->tail_len = 0;
	m->found = 0;
}

/*
 * Feed N body bytes to M.  A match straddling two chunks lies inside the
 * kept tail (len-1 bytes) followed by the first len-1 bytes of P.
 */
static void
match_feed(struct httpeval_match *m, const char *p, size_t n)
{
	char span[2 * HTTPEVAL_KEYWORD_MAX];
	size_t keep, k, w;

	if (m->needle == NULL || m->found || n == 0)
		return;
	w = m->len - 1;
	if (m->tail_len > 0) {
		k = n < w ? n : w;
		memcpy(span, m->tail, m->tail_len);
		memcpy(span + m->tail_len, p, k);
		if (memmem(span, m->tail_len + k, m->needle, m->len) != NULL) {
			m->found = 1;
			return;
		}
	}
	if (memmem(p, n, m->needle, m->len) != NULL) {
		m->found = 1;
		return;
	}
	if (n >= w) {
		memcpy(m->tail, p + n - w, w);
		m->tail_len = w;
		return;
	}
	keep = m->tail_len + n > w ? w - n : m->tail_len;
	memmove(m->tail, m->tail + m->tail_len - keep, keep);
	memcpy(m->tail + keep, p, n);
	m->tail_len = keep + n;
}

int
httpeval_eval_body(struct httpeval_eval *ev, long code, const char *p,
    size_t n)
{
	size_t take;

	if (!httpeval_status_ok(ev->status, code))
		return 1;
	if (ev->want.needle == NULL && ev->avoid.needle == NULL)
		return 1;
	take = httpeval_body_limit(ev) - ev->body_bytes;
	if (take > n)
		take = n;
	match_feed(&ev->want, p, take);
	match_feed(&ev->avoid, p, take);
	ev->body_bytes += take;
	if (ev->avoid.found)
		return 1;
	if (ev->avoid.needle == NULL && ev->want.found)
		return 1;
	return ev->body_bytes >= httpeval_body_limit(ev);
}

int
httpeval_eval_failed(const struct httpeval_eval *ev, long code)
{
	return !httpeval_status_ok(ev->status, code) || ev->avoid.found;
}

/* Quote at most HTTPEVAL_DETAIL_KEYWORD bytes of S, control bytes as '?'. */
static void
quote_keyword(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < len && i < HTTPEVAL_DETAIL_KEYWORD && s[i] != '\0';
	    i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
		    s[i] == '"') ? '?' : s[i];
	buf[i] = '\0';
	if (s[i] != '\0' && i >= 3 && i + 1 < len)
		memcpy(buf + i - 3, "...", 3);
}

int
httpeval_judge(const struct httpeval_eval *ev, long code, const char *expected,
    const char *keyword, const char *keyword_absent, char *detail, size_t len)
{
	char kw[HTTPEVAL_DETAIL_KEYWORD + 1];

	if (!httpeval_status_ok(ev->status, code)) {
		snprintf(detail, len, "HTTP %ld, expected %s", code,
		    expected ? expected : "200-299");
		return WP_REASON_STATUS;
	}
	if (ev->avoid.found) {
		quote_keyword(kw, sizeof(kw), keyword_absent);
		snprintf(detail, len, "keyword_absent \"%s\" found in the body",
		    kw);
		return WP_REASON_KEYWORD;
	}
	if (ev->want.needle != NULL && !ev->want.found) {
		quote_keyword(kw, sizeof(kw), keyword);
		snprintf(detail, len, "keyword \"%s\" not found in first %zu "
		    "bytes", kw, ev->body_bytes);
		return WP_REASON_KEYWORD;
	}
	return WP_REASON_OK;
}

static const char *months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* Month names are matched here rather than by strptime(), which follows
 * the locale. */
int64_t
httpeval_parse_asn1_time(const char *s)
{
	struct tm tm;
	char mon[4];
	int i, used = 0;
	time_t t;

	/* Field widths keep sscanf() from overflowing an int (undefined),
	 * and the ranges keep timegm() to real dates (a fuzzed year of
	 * INT_MIN once overflowed "year - 1900"). */
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%3s %2d %2d:%2d:%2d%n", mon, &tm.tm_mday, &tm.tm_hour,
	    &tm.tm_min, &tm.tm_sec, &used) != 5)
		return 0;
	s += used;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			;
	used = 0;
	if (sscanf(s, " %4d%n", &tm.tm_year, &used) != 1 ||
	    isdigit((unsigned char)s[used]))
		return 0;
	if (tm.tm_year < 1900 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 ||
	    tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon = -1;
	for (i = 0; i < 12; i++)
		if (strcmp(mon, months[i]) == 0)
			tm.tm_mon = i;
	if (tm.tm_mon < 0)
		return 0;
	t = timegm(&tm);
	return t == (time_t)-1 ? 0 : (int64_t)t;
}

size_t
httpeval_body_limit(const struct httpeval_eval *ev)
{
	return ev->body_limit > 0 ? ev->body_limit : HTTPEVAL_BODY_LIMIT;
}
