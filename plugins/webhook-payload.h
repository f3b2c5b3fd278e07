/*
 * webhook-payload -- the bodies of a webhook delivery, per `format`.
 *
 * Every body is built with jansson (or, for format = template, by the
 * template engine in its JSON mode), so no monitor name or error can break
 * out of a string.  Chat presets write a short title and one line per
 * monitor of the batch, cut to the receiver's length limit with
 * "... and N more".
 */
#ifndef PLUGINS_WEBHOOK_PAYLOAD_H
#define PLUGINS_WEBHOOK_PAYLOAD_H

#include <stddef.h>

#include <watchpost/plugin.h>

#include "template.h"

/* The values of the `format` key, in the order of webhook_format_names. */
enum webhook_format {
	WF_JSON = 0,
	WF_SLACK,
	WF_DISCORD,
	WF_TEAMS,
	WF_MATTERMOST,
	WF_NTFY,
	WF_GOTIFY,
	WF_TELEGRAM,
	WF_PAGERDUTY,
	WF_TEMPLATE,
	WF__COUNT
};

/* "json", "slack", ... "template", NULL (the ENUM key's values). */
extern const char *const webhook_format_names[WF__COUNT + 1];

/* What a format needs besides the alerts; borrowed by webhook_message(). */
struct webhook_format_conf {
	int format;                  /* enum webhook_format */
	const char *chat_id;         /* telegram */
	const char *topic;           /* ntfy */
	const char *routing_key;     /* pagerduty (a secret) */
	const struct template *tpl;  /* template */
	int tpl_json;                /* template: render in TEMPLATE_JSON */
};

/*
 * Build the compact JSON object for A (format = json, one alert):
 *   {"monitor", "type", "state", "previous_state", "timestamp" (ISO 8601
 *    UTC with milliseconds), "error" (string or null), "reason" (string or
 *    null), "latency_ms" (latency_us in ms,
 *    a number, or null when < 0), "id", "attempt"}, and only when they
 *    apply "repeat" (the renotify count, when > 0), "test": true (a test
 *    alert) and "escalation": true (sent by an escalate rule)
 * Strings that are not valid UTF-8 are repaired (each bad byte becomes
 * U+FFFD) and NULL strings become null, so the result is always valid JSON.
 * "id" is a number, or a decimal string above INT64_MAX.  A is read
 * size-prefixed (a shorter struct reads as zero).  Returns a malloc'd
 * string the caller frees with free(), or NULL when out of memory.
 */
char *webhook_payload(const struct wp_alert *a);

/*
 * How many requests one delivery of N alerts takes: 1, except for
 * pagerduty, whose incidents are per dedup_key: one event per alert.
 */
size_t webhook_messages(const struct webhook_format_conf *c, size_t n);

/*
 * The body of request K (< webhook_messages()) of the delivery of
 * AL[0..N) (N >= 1, oldest first) in C's format.  json: webhook_payload()
 * for one alert, {"alerts": [those objects]} for a batch.  Returns a
 * malloc'd NUL-terminated string (free()), or NULL when out of memory.
 */
char *webhook_message(const struct webhook_format_conf *c,
    const struct wp_alert *const *al, size_t n, size_t k);

/*
 * The PagerDuty dedup_key of A's monitor: "watchpost:AGENT:MONITOR" (the
 * same for its trigger and its resolve, and for every later incident,
 * which PagerDuty opens anew once the last one is resolved), or for a test
 * alert "watchpost-test:ID", so a test never merges with a real incident.
 * Written to BUF (at most 256 bytes with the NUL; a longer key is
 * shortened to a hash).  Returns BUF.
 */
const char *webhook_dedup_key(const struct wp_alert *a, char *buf,
    size_t size);

#endif
