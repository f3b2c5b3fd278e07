/*
 * ping-verdict.c -- ping.so's arithmetic, without I/O, so tests/test-ping
 * can link it and try the verdict on synthetic inputs: parsing loss ratios,
 * the loss_warn / loss_max verdict, and jitter.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <watchpost/plugin.h>

#include "ping-verdict.h"

int
ping_ratio_parse(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0' || *s == ' ' || *s == '\t' ||
	    *s == '+' || *s == '-')
		return -1;
	v = strtod(s, &end);
	if (end == s || !isfinite(v))
		return -1;
	if (*end == '%') {
		end++;
		v /= 100.0;
	}
	if (*end != '\0' || !(v >= 0.0 && v <= 1.0))
		return -1;
	*out = v;
	return 0;
}

/* "40%" with up to one decimal: 1 of 3 lost is "33.3%", not "33%". */
static void
percent(char *buf, size_t n, double ratio)
{
	double p = ratio * 100.0;

	if (fabs(p - round(p)) < 0.05)
		snprintf(buf, n, "%.0f%%", p);
	else
		snprintf(buf, n, "%.1f%%", p);
}

int
ping_verdict(unsigned count, unsigned received, int err_reason,
    double loss_warn, double loss_max, char *msg, size_t n)
{
	unsigned lost;
	double loss;
	char got[16], lim[16];

	if (count == 0)
		count = 1;
	if (received > count)
		received = count;
	lost = count - received;
	loss = (double)lost / (double)count;
	if (received == 0) {
		if (err_reason != 0)
			return err_reason;
		snprintf(msg, n, "no echo reply to %u request%s", count,
		    count == 1 ? "" : "s");
		return WP_REASON_TIMEOUT;
	}
	percent(got, sizeof(got), loss);
	if (loss >= loss_max) {
		percent(lim, sizeof(lim), loss_max);
		snprintf(msg, n, "loss %s (%u of %u lost), limit %s", got,
		    lost, count, lim);
		return WP_REASON_CHECK;
	}
	if (loss_warn >= 0 && loss >= loss_warn) {
		percent(lim, sizeof(lim), loss_warn);
		snprintf(msg, n, "loss %s (%u of %u lost), warning at %s", got,
		    lost, count, lim);
		return WP_REASON_WARNING;
	}
	return WP_REASON_OK;
}

int64_t
ping_jitter(const int64_t *rtt, size_t n)
{
	int64_t prev = -1, sum = 0;
	size_t i, pairs = 0;

	for (i = 0; i < n; i++) {
		if (rtt[i] < 0)
			continue;
		if (prev >= 0) {
			sum += rtt[i] > prev ? rtt[i] - prev : prev - rtt[i];
			pairs++;
		}
		prev = rtt[i];
	}
	return pairs == 0 ? 0 : sum / (int64_t)pairs;
}
