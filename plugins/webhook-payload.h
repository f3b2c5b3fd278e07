/*
 * webhook-payload -- the JSON body of an alert delivery.
 */
#ifndef PLUGINS_WEBHOOK_PAYLOAD_H
#define PLUGINS_WEBHOOK_PAYLOAD_H

#include <watchpost/plugin.h>

/*
 * Build the compact JSON object for A:
 *   {"monitor", "type", "state", "previous_state", "timestamp" (ISO 8601
 *    UTC with milliseconds), "error" (string or null), "reason" (string or
 *    null), "latency_ms" (latency_us in ms,
 *    a number, or null when < 0), "id", "attempt"}
 * Strings that are not valid UTF-8 are repaired (each bad byte becomes
 * U+FFFD) and NULL strings become null, so the result is always valid JSON.
 * "id" is a number, or a decimal string above INT64_MAX.  A is read
 * size-prefixed (a shorter struct reads as zero).  Returns a malloc'd
 * string the caller frees with free(), or NULL when out of memory.
 */
char *webhook_payload(const struct wp_alert *a);

#endif
