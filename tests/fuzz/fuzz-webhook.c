/*
 * Fuzz target: the webhook payload builder (plugins/webhook-payload.c) on
 * arbitrary monitor names, types, states, errors and reasons and arbitrary
 * numbers.  Property: the output always parses as a JSON object with the
 * contract's fields, and strings without bytes above 0x7f come back
 * unchanged; every format's body, for the alert alone and in a batch, is
 * one its service takes (tests/hookcheck.c; json: valid JSON); the type string compiled as a
 * template (plugins/template.c) renders without a line break in the
 * header mode.  since_us is the latency's bits, the target the monitor.
 *
 * Input: 8 bytes timestamp, 8 bytes latency (a double's bits: NaN and
 * infinities included), 8 bytes id, 4 bytes attempt, then the strings
 * monitor, type, state, previous_state, error, reason separated by NUL
 * bytes; a string past the end of the input is NULL.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "hookcheck.h"
#include "template.h"
#include "webhook-payload.h"

static int
ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* The field K of O is JSON null when S is NULL, else a string equal to S
 * when S is ASCII. */
static void
check_string(json_t *o, const char *k, const char *s)
{
	json_t *v = json_object_get(o, k);

	fuzz_assert(v != NULL);
	if (s == NULL) {
		fuzz_assert(json_is_null(v));
		return;
	}
	fuzz_assert(json_is_string(v));
	if (ascii(s))
		fuzz_assert(strcmp(json_string_value(v), s) == 0 &&
		    json_string_length(v) == strlen(s));
}

/* Every format for A alone and for the batch (A, A); the type string as a
 * template. */
static void
formats(struct wp_alert *a)
{
	const struct wp_alert *al[2] = { a, a };
	struct template_buf b = TEMPLATE_BUF_INIT;
	struct webhook_format_conf c = {
		.chat_id = "-100", .topic = "t",
		.routing_key = "0123456789abcdef0123456789abcdef",
	};
	struct template *t;
	const char *why;
	char *body;
	size_t n, k;

	a->since_us = a->latency_us;
	a->target = a->monitor;
	a->agent = a->reason;
	for (c.format = WF_JSON; c.format < WF_TEMPLATE; c.format++)
		for (n = 1; n <= 2; n++)
			for (k = 0; k < webhook_messages(&c, n); k++) {
				body = webhook_message(&c, al, n, k);
				fuzz_assert(body != NULL);
				/* json's own fields are checked above; its
				 * batch must parse as the receivers' do */
				why = hookcheck(c.format == WF_JSON ?
				    "template" : webhook_format_names[c.format],
				    "application/json", body, strlen(body));
				if (why != NULL)
					fprintf(stderr, "%s: %s: %s\n",
					    webhook_format_names[c.format], why,
					    body);
				fuzz_assert(why == NULL);
				free(body);
			}
	if (a->type == NULL || (t = template_compile(a->type, NULL, NULL)) ==
	    NULL)
		return;
	fuzz_assert(template_render(t, al, 2, TEMPLATE_HEADER, &b) == WP_OK);
	fuzz_assert(b.p != NULL && strchr(b.p, '\n') == NULL &&
	    strchr(b.p, '\r') == NULL && strlen(b.p) == b.len);
	template_buf_free(&b);
	fuzz_assert(template_render(t, al, 2, TEMPLATE_JSON, &b) == WP_OK);
	template_buf_free(&b);
	template_free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_alert a;
	const char *str[6] = { NULL };
	char *copy, *p, *end, *out;
	json_error_t err;
	json_t *o, *v;
	size_t i;

	if (size < 28)
		return 0;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	memcpy(&a.timestamp_us, data, 8);
	memcpy(&a.latency_us, data + 8, 8);
	memcpy(&a.id, data + 16, 8);
	memcpy(&a.attempt, data + 24, 4);
	copy = malloc(size - 28 + 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data + 28, size - 28);
	copy[size - 28] = '\0';
	end = copy + (size - 28);
	for (i = 0, p = copy; i < 6 && p < end; i++) {
		str[i] = p;
		p += strlen(p) + 1;
	}
	a.monitor = str[0];
	a.type = str[1];
	a.state = str[2];
	a.previous_state = str[3];
	a.error = str[4];
	a.reason = str[5];

	out = webhook_payload(&a);
	fuzz_assert(out != NULL);
	o = json_loads(out, JSON_REJECT_DUPLICATES, &err);
	if (o == NULL)
		fprintf(stderr, "invalid JSON (%s): %s\n", err.text, out);
	fuzz_assert(o != NULL);
	fuzz_assert(json_is_object(o));
	check_string(o, "monitor", a.monitor);
	check_string(o, "type", a.type);
	check_string(o, "state", a.state);
	check_string(o, "previous_state", a.previous_state);
	check_string(o, "error", a.error);
	check_string(o, "reason", a.reason);
	v = json_object_get(o, "timestamp");
	fuzz_assert(v != NULL && (json_is_string(v) || json_is_null(v)));
	v = json_object_get(o, "latency_ms");
	fuzz_assert(v != NULL && (json_is_number(v) || json_is_null(v)));
	v = json_object_get(o, "id");
	fuzz_assert(v != NULL && (json_is_integer(v) || json_is_string(v)));
	v = json_object_get(o, "attempt");
	fuzz_assert(v != NULL && json_is_integer(v));
	json_decref(o);
	free(out);
	formats(&a);
	free(copy);
	return 0;
}
