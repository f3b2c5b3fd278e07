#include "config.h"

#include <string.h>

#include "outcome.h"
#include "util.h"

static const struct {
	const char *name, *label;
} names[ST_COUNT] = {
	[ST_PENDING] = { "pending", "PENDING" },
	[ST_UP] = { "up", "UP" },
	[ST_DEGRADED] = { "degraded", "DEGRADED" },
	[ST_DOWN] = { "down", "DOWN" },
	[ST_PAUSED] = { "paused", "PAUSED" },
	[ST_MAINTENANCE] = { "maintenance", "MAINTENANCE" },
};

/*
 * Which changes alert, [from][to].  Only down matters to a receiver for
 * now: up <-> degraded is quiet until the alerting issue gives degraded a
 * policy of its own.  A state is never "changed" into itself.
 */
static const unsigned char alerts[ST_COUNT][ST_COUNT] = {
	/*               pending up degraded down paused maintenance */
	[ST_PENDING] =  { 0,     0,  0,      1,   0,     0 },
	[ST_UP] =       { 0,     0,  0,      1,   0,     0 },
	[ST_DEGRADED] = { 0,     0,  0,      1,   0,     0 },
	[ST_DOWN] =     { 0,     1,  1,      0,   0,     0 },
	[ST_PAUSED] =   { 0,     0,  0,      1,   0,     0 },
	/* Only shown, never a check's previous state; as policy_alerts()
	 * judges it. */
	[ST_MAINTENANCE] = { 0,  0,  0,      1,   0,     0 },
};

const char *
mstate_name(enum mstate s)
{
	return (unsigned)s < ST_COUNT ? names[s].name : "?";
}

const char *
mstate_label(enum mstate s)
{
	return (unsigned)s < ST_COUNT ? names[s].label : "?";
}

int
mstate_parse(const char *name, enum mstate *out)
{
	unsigned s;

	for (s = 0; s < ST_COUNT; s++)
		if (strcmp(names[s].name, name) == 0) {
			*out = (enum mstate)s;
			return 0;
		}
	return WP_EINVAL;
}

int
mstate_is_up(enum mstate s)
{
	return s == ST_UP || s == ST_DEGRADED;
}

enum mstate
mstate_of(const struct wp_result *r)
{
	switch (reason_class(r->reason)) {
	case WP_CLASS_UP:
		return ST_UP;
	case WP_CLASS_DEGRADED:
		return ST_DEGRADED;
	default:
		return ST_DOWN;
	}
}

double
outcome_us_to_ms(int64_t us)
{
	return us < 0 ? -1.0 : (double)us / 1000.0;
}

struct outcome_ms
outcome_ms_of(const struct wp_result *r)
{
	return (struct outcome_ms){
		.latency = outcome_us_to_ms(r->latency_us),
		.dns = outcome_us_to_ms(r->dns_us),
		.connect = outcome_us_to_ms(r->connect_us),
		.tls = outcome_us_to_ms(r->tls_us),
		.first_byte = outcome_us_to_ms(r->first_byte_us),
	};
}

int
mstate_alerts(enum mstate previous, enum mstate state)
{
	if ((unsigned)previous >= ST_COUNT || (unsigned)state >= ST_COUNT)
		return 0;
	return alerts[previous][state];
}
