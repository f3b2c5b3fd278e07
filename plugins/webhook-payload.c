#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "template.h"
#include "webhook-payload.h"

/* A JSON string for S (repaired to valid UTF-8), json null for NULL, or
 * NULL when out of memory. */
static json_t *
jstr(const char *s)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i, o, k;
	json_t *j;
	char *buf;

	if (s == NULL)
		return json_null();
	n = strlen(s);
	if ((buf = malloc(n * 3 + 1)) == NULL)
		return NULL;
	for (i = 0, o = 0; i < n; ) {
		if ((k = template_utf8_len(p + i, n - i)) == 0) {
			memcpy(buf + o, repl, 3);
			o += 3;
			i++;
		} else {
			memcpy(buf + o, p + i, k);
			o += k;
			i += k;
		}
	}
	buf[o] = '\0';
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

/* "2026-11-22T10:15:30.123Z" for MS since the epoch, into BUF. */
static json_t *
jtime(int64_t ms)
{
	char buf[64];
	struct tm tm;
	int64_t sec = ms / 1000, frac = ms % 1000;
	time_t t;

	if (frac < 0) {
		frac += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return json_null();
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03dZ",
	    (int)frac);
	return json_string(buf);
}

static json_t *
jid(uint64_t id)
{
	char buf[32];

	if (id <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)id);
	snprintf(buf, sizeof(buf), "%" PRIu64, id);
	return json_string(buf);
}

char *
webhook_payload(const struct wp_alert *in)
{
	struct wp_alert a;
	json_t *o = NULL, *v;
	char *out = NULL;
	size_t n;
	int bad = 0;

	memset(&a, 0, sizeof(a));
	n = in->size < sizeof(a) ? in->size : sizeof(a);
	memcpy(&a, in, n);
	if ((o = json_object()) == NULL)
		return NULL;
#define SET(k, expr)                                                    \
	do {                                                            \
		if ((v = (expr)) == NULL ||                             \
		    json_object_set_new(o, (k), v) != 0)                \
			bad = 1;                                        \
	} while (0)
	SET("monitor", jstr(a.monitor));
	SET("type", jstr(a.type));
	SET("state", jstr(a.state));
	SET("previous_state", jstr(a.previous_state));
	/* whole ms, rounded down (before 1970 too) */
	SET("timestamp", jtime(a.timestamp_us / 1000 -
	    (a.timestamp_us % 1000 < 0)));
	SET("error", jstr(a.error));
	SET("reason", jstr(a.reason));
	/* The payload's field stays in ms: it is what receivers parse. */
	SET("latency_ms", a.latency_us < 0 ? json_null() :
	    json_real((double)a.latency_us / 1000.0));
	SET("id", jid(a.id));
	SET("attempt", json_integer((json_int_t)a.attempt));
#undef SET
	if (!bad)
		out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}
