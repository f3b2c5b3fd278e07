/*
 * push-query -- parse a push's form-encoded parameters (push-query.h).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "push-query.h"

/* Longest decoded key or status/duration value looked at; longer ones
 * are refused (no valid one comes near). */
#define SHORT_MAX 32

void
push_msg_init(struct push_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->status = PUSH_UP;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode the form-encoded LEN bytes at S into OUT (OUTSIZE bytes, NUL
 * included), keeping at most OUTSIZE - 1 bytes and counting the rest in
 * *FULL (the decoded length).  Returns 0, or -1 on a broken %-escape or a
 * NUL (raw or %00).
 */
static int
decode(const char *s, size_t len, char *out, size_t outsize, size_t *full)
{
	size_t i, n = 0;
	int hi, lo;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (len - i < 3)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0')
			return -1;
		if (n + 1 < outsize)
			out[n] = (char)c;
		n++;
	}
	out[n + 1 < outsize ? n : outsize - 1] = '\0';
	*full = n;
	return 0;
}

/*
 * msg: drop control characters (C0, DEL) -- the message reaches logs,
 * alerts and terminals -- then cut at PUSH_MSG_MAX bytes without
 * splitting a UTF-8 sequence.  In place.
 */
static void
sanitise(char *m)
{
	size_t r, w = 0;
	unsigned char c;

	for (r = 0; m[r] != '\0'; r++) {
		c = (unsigned char)m[r];
		if (c < 0x20 || c == 0x7f)
			continue;
		m[w++] = (char)c;
	}
	m[w] = '\0';
	if (w > PUSH_MSG_MAX) {
		w = PUSH_MSG_MAX;
		/* Back off continuation bytes, then the lead byte they
		 * belonged to, unless the sequence ended right at the cut. */
		if (((unsigned char)m[w] & 0xc0) == 0x80) {
			while (w > 0 && ((unsigned char)m[w] & 0xc0) == 0x80)
				w--;
		}
		m[w] = '\0';
	}
}

/* A short piece of untrusted text for a message: printable ASCII only. */
static void
quote(const char *s, char *out, size_t outsize)
{
	size_t i, n = 0;

	for (i = 0; s[i] != '\0' && n + 1 < outsize && i < SHORT_MAX; i++)
		out[n++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	out[n] = '\0';
}

static int
parse_duration_ms(const char *v, double *out)
{
	char *end;
	double d;

	if (v[0] == '\0' || !(isdigit((unsigned char)v[0]) || v[0] == '.'))
		return -1;
	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || *end != '\0' || !isfinite(d) || d < 0 ||
	    d > PUSH_DURATION_MS_MAX)
		return -1;
	*out = d / 1000.0;
	return 0;
}

/* One pair: KEY (KLEN bytes) and its value (VLEN bytes at V). */
static int
pair(const char *k, size_t klen, const char *v, size_t vlen,
    struct push_msg *m, char *err, size_t errlen)
{
	/* Room for a message longer than the cap, so that cutting is ours. */
	char key[SHORT_MAX + 1], val[PUSH_MSG_MAX * 4 + 1], q[SHORT_MAX + 1];
	size_t full;

	if (decode(k, klen, key, sizeof(key), &full) != 0) {
		snprintf(err, errlen, "a parameter name with a broken "
		    "%%-escape or a NUL");
		return -1;
	}
	if (full > SHORT_MAX) {
		quote(key, q, sizeof(q));
		snprintf(err, errlen, "unknown parameter \"%s...\" (known: "
		    "status, msg, duration_ms)", q);
		return -1;
	}
	if (decode(v, vlen, val, sizeof(val), &full) != 0) {
		quote(key, q, sizeof(q));
		snprintf(err, errlen, "%s: a broken %%-escape or a NUL", q);
		return -1;
	}
	if (strcmp(key, "msg") == 0) {
		sanitise(val);
		memcpy(m->msg, val, strlen(val) + 1);
		return 0;
	}
	if (strcmp(key, "status") == 0) {
		if (strcasecmp(val, "up") == 0 && full == 2)
			m->status = PUSH_UP;
		else if (strcasecmp(val, "down") == 0 && full == 4)
			m->status = PUSH_DOWN;
		else {
			quote(val, q, sizeof(q));
			snprintf(err, errlen, "status: \"%s\" is neither up "
			    "nor down", q);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "duration_ms") == 0) {
		if (full > SHORT_MAX ||
		    parse_duration_ms(val, &m->duration_s) != 0) {
			quote(val, q, sizeof(q));
			snprintf(err, errlen, "duration_ms: \"%s%s\" is not a "
			    "number of milliseconds from 0 to 1e12", q,
			    full > SHORT_MAX ? "..." : "");
			return -1;
		}
		m->has_duration = 1;
		return 0;
	}
	quote(key, q, sizeof(q));
	snprintf(err, errlen, "unknown parameter \"%s\" (known: status, "
	    "msg, duration_ms)", q);
	return -1;
}

int
push_parse(const char *s, size_t len, struct push_msg *m, char *err,
    size_t errlen)
{
	size_t i = 0, start, eq;

	while (i < len) {
		start = i;
		eq = (size_t)-1;
		for (; i < len && s[i] != '&'; i++)
			if (s[i] == '=' && eq == (size_t)-1)
				eq = i;
		if (i > start) {
			const char *v = eq != (size_t)-1 ? s + eq + 1 : s + i;
			size_t klen = (eq != (size_t)-1 ? eq : i) - start;
			size_t vlen = (size_t)(s + i - v);

			if (pair(s + start, klen, v, vlen, m, err, errlen) != 0)
				return -1;
		}
		i++; /* past the '&' */
	}
	return 0;
}
