#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
mono_ms(void)
{
	return mono_us() / 1000;
}

int64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
wall_ms(void)
{
	return wall_us() / 1000;
}

int
parse_duration(const char *s, int64_t *ms)
{
	/* By hand, not strtod(): it takes signs, blanks, exponents, hex,
	 * "inf" and "nan", none of which a duration is. */
	static const struct {
		const char *unit;
		int64_t factor;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	const char *p = s;
	int64_t whole = 0, v;
	double frac = 0, scale = 1;
	int digits = 0;
	size_t i;

	if (s == NULL)
		return WP_EINVAL;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (whole > DURATION_MAX_MS)
			return WP_EINVAL; /* past every maximum: stop growing */
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			frac += (*p - '0') * (scale /= 10);
	if (digits == 0)
		return WP_EINVAL;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (whole > DURATION_MAX_MS / units[i].factor)
			return WP_EINVAL;
		v = whole * units[i].factor +
		    (int64_t)llround(frac * (double)units[i].factor);
		if (v > DURATION_MAX_MS)
			return WP_EINVAL;
		*ms = v;
		return 0;
	}
	return WP_EINVAL;
}

int
parse_bool(const char *s, int *out)
{
	static const char *yes[] = { "true", "yes", "on", "1" };
	static const char *no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; s != NULL && i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return WP_EINVAL;
}

int
parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return WP_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return WP_EINVAL;
	*out = v;
	return 0;
}

void
format_duration(int64_t ms, char *buf, size_t len)
{
	if (ms % 1000 != 0 || ms == 0)
		snprintf(buf, len, "%lldms", (long long)ms);
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%lldm", (long long)(ms / 60000));
	else
		snprintf(buf, len, "%llds", (long long)(ms / 1000));
}

/*
 * The length of the valid UTF-8 sequence at P that is neither a C1 control
 * nor a surrogate nor overlong, else 0.  Reads no further than the first
 * byte that breaks the sequence (a NUL always does).
 */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned c = p[0];

	if (c >= 0xc2 && c <= 0xdf)
		return (p[1] & 0xc0) == 0x80 && !(c == 0xc2 && p[1] < 0xa0) ?
		    2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (c == 0xe0 && p[1] < 0xa0) ||
		    (c == 0xed && p[1] >= 0xa0) || (p[2] & 0xc0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (c == 0xf0 && p[1] < 0x90) ||
		    (c == 0xf4 && p[1] >= 0x90) || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

/*
 * qstr() and str_escape(): copy S into BUF, escaping as they promise,
 * keeping at most MAX characters (an escape counts as the characters it
 * shows); QUOTE also escapes '"', '\\' and tabs.
 */
static void
escape(const char *s, size_t max, int quote, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	char piece[8];
	size_t out = 0, shown = 0, n, bytes, w;

	if (len == 0)
		return;
	while (*p != '\0') {
		n = *p >= 0x80 ? utf8_len(p) : 0;
		if (n > 0) {
			memcpy(piece, p, n);
			bytes = n;
			w = 1;
		} else if (*p == '\n' || *p == '\r' || (quote && (*p == '\t' ||
		    *p == '"' || *p == '\\'))) {
			piece[0] = '\\';
			piece[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' :
			    *p == '\t' ? 't' : (char)*p;
			bytes = w = 2;
		} else if ((*p < 0x20 && *p != '\t') || *p >= 0x7f) {
			snprintf(piece, sizeof(piece), "\\x%02x", *p);
			bytes = w = 4;
		} else {
			piece[0] = (char)*p;
			bytes = w = 1;
		}
		/* Room for "..." and the NUL stays free until the end. */
		if (shown + w > max || out + bytes + 4 > len)
			break;
		memcpy(buf + out, piece, bytes);
		out += bytes;
		shown += w;
		p += n > 0 ? n : 1;
	}
	if (*p != '\0' && out + 4 <= len) {
		memcpy(buf + out, "...", 3);
		out += 3;
	}
	buf[out < len ? out : len - 1] = '\0';
}

const char *
qstr(const char *s, size_t max, char *buf, size_t len)
{
	escape(s, max, 1, buf, len);
	return buf;
}

void
str_copy(char *dst, size_t len, const char *src)
{
	size_t n = src != NULL ? strnlen(src, len - 1) : 0;

	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

void
str_escape(const char *s, size_t max, char *buf, size_t len)
{
	escape(s, max, 0, buf, len);
}

int
edit_distance(const char *a, const char *b)
{
	int row[101];
	size_t la = strlen(a), lb = strlen(b), i, j;

	if (la > 100 || lb > 100)
		return 100;
	for (j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (j = 1; j <= lb; j++) {
			int up = row[j];
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void
oom(void)
{
	fputs("watchpost: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		oom();
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		oom();
	va_end(ap);
	return p;
}

/*
 * The one table of reasons (HAProxy's check_statuses[]): the vocabulary of
 * the store, the API, the metrics and the alerts, and each reason's class,
 * from which alone up, degraded or down is derived.
 */
static const struct reason {
	int code;
	const char *name;
	int cls;
	const char *desc;
} reasons[] = {
	{ WP_REASON_OK, "ok", WP_CLASS_UP, "check passed" },
	{ WP_REASON_DNS, "dns", WP_CLASS_DOWN, "name resolution failed" },
	{ WP_REASON_REFUSED, "refused", WP_CLASS_DOWN, "connection refused" },
	{ WP_REASON_UNREACHABLE, "unreachable", WP_CLASS_DOWN,
	    "host or network unreachable" },
	{ WP_REASON_TIMEOUT, "timeout", WP_CLASS_DOWN,
	    "no answer before the deadline" },
	{ WP_REASON_CONNECT, "connect", WP_CLASS_DOWN, "could not connect" },
	{ WP_REASON_TLS, "tls", WP_CLASS_DOWN,
	    "TLS handshake or certificate verification failed" },
	{ WP_REASON_STATUS, "status", WP_CLASS_DOWN,
	    "unexpected protocol status" },
	{ WP_REASON_KEYWORD, "keyword", WP_CLASS_DOWN,
	    "response body rule failed" },
	{ WP_REASON_PROTOCOL, "protocol", WP_CLASS_DOWN,
	    "malformed or unexpected response" },
	{ WP_REASON_IO, "io", WP_CLASS_DOWN, "send or receive failed" },
	{ WP_REASON_CHECK, "check", WP_CLASS_DOWN, "check condition failed" },
	{ WP_REASON_CANCELED, "canceled", WP_CLASS_DOWN, "operation cancelled" },
	{ WP_REASON_PLUGIN, "plugin", WP_CLASS_DOWN, "the plugin failed" },
	{ WP_REASON_SLOW, "slow", WP_CLASS_DEGRADED,
	    "slower than its warning limit" },
	{ WP_REASON_CERT_EXPIRING, "cert_expiry", WP_CLASS_DEGRADED,
	    "certificate expires soon" },
	{ WP_REASON_WARNING, "warning", WP_CLASS_DEGRADED,
	    "the check reported a warning" },
};
_Static_assert(sizeof(reasons) / sizeof(reasons[0]) == WP_REASON__COUNT,
    "one entry per enum wp_reason, in order");

/* REASON's entry; one the table does not know (a plugin built against a
 * newer minor, or a bad value) counts as WP_REASON_PLUGIN. */
static const struct reason *
reason_at(int reason)
{
	if (reason < 0 || reason >= WP_REASON__COUNT)
		reason = WP_REASON_PLUGIN;
	return &reasons[reason];
}

const char *
reason_name(int reason)
{
	return reason_at(reason)->name;
}

const char *
reason_desc(int reason)
{
	return reason_at(reason)->desc;
}

int
reason_class(int reason)
{
	return reason_at(reason)->cls;
}

void
sbuf_append(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_append(b, s, strlen(s));
}

void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sbuf_append(b, small, (size_t)n);
		return;
	}
	{
		char *big = xmalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		sbuf_append(b, big, (size_t)n);
		free(big);
	}
}

char *
sbuf_steal(struct sbuf *b)
{
	char *p = b->data ? b->data : xstrdup("");

	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void
sbuf_free(struct sbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
