/*
 * test-webhook-formats -- the bodies of every webhook format
 * (plugins/webhook-payload.c) for single alerts and group_window batches
 * built here, judged by tests/hookcheck.c (what each service requires),
 * and hostile monitor names and errors that must not break a body.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "hookcheck.h"
#include "template.h"
#include "webhook-payload.h"

#define RK "0123456789abcdef0123456789abcdef" /* a 32-character key */

static struct wp_alert
alert(const char *monitor, const char *state, uint64_t id)
{
	int up = strcmp(state, "up") == 0;
	struct wp_alert a = {
		.size = sizeof(struct wp_alert),
		.id = id,
		.monitor = monitor,
		.type = "http",
		.state = state,
		.previous_state = up ? "down" : "up",
		.timestamp_us = 1795342530123456LL,
		.error = up ? NULL : "HTTP 503, expected 200-299",
		.reason = up ? NULL : "status",
		.latency_us = 12500,
		.since_us = 1795342530123456LL - (up ? 754000000LL : 0),
		.target = "https://example.org/health",
		.agent = "edge-1",
		.location = "fra",
	};
	return a;
}

static struct webhook_format_conf
conf_for(int format)
{
	struct webhook_format_conf c = {
		.format = format, .chat_id = "-100123", .topic = "ops-alerts",
		.routing_key = RK,
	};
	return c;
}

/* Message K of AL[0..N) in FORMAT, checked by hookcheck; the parsed
 * body (the caller frees it with json_decref()). */
static json_t *
valid(int format, const struct wp_alert *const *al, size_t n, size_t k,
    char **textp)
{
	struct webhook_format_conf c = conf_for(format);
	const char *why;
	char *body;
	json_t *j;

	body = webhook_message(&c, al, n, k);
	assert_non_null(body);
	why = hookcheck(webhook_format_names[format], "application/json",
	    body, strlen(body));
	if (why != NULL)
		fail_msg("%s: %s: %s", webhook_format_names[format], why, body);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	if (textp != NULL)
		*textp = body;
	else
		free(body);
	return j;
}

static void
test_single_alert_every_preset(void **state)
{
	struct wp_alert d = alert("api-home", "down", 7), u = alert("api-home",
	    "up", 8);
	const struct wp_alert *dn[1] = { &d }, *upa[1] = { &u };
	char *body;
	json_t *j;
	int f;

	(void)state;
	for (f = WF_JSON; f < WF_TEMPLATE; f++) {
		assert_int_equal(webhook_messages(&(struct webhook_format_conf){
		    .format = f }, 1), 1);
		json_decref(valid(f, dn, 1, 0, &body));
		/* Every text names the monitor and its state. */
		assert_non_null(strstr(body, "api-home"));
		if (f != WF_JSON && f != WF_PAGERDUTY)
			assert_non_null(strstr(body, "DOWN"));
		free(body);
		json_decref(valid(f, upa, 1, 0, &body));
		if (f != WF_JSON && f != WF_PAGERDUTY) {
			assert_non_null(strstr(body, "api-home is UP"));
			/* the outage's length, from since_us */
			assert_non_null(strstr(body, "was down for 12m 34s"));
		}
		free(body);
	}
	/* json with one alert: today's body, byte for byte. */
	body = webhook_message(&(struct webhook_format_conf){ .format =
	    WF_JSON }, dn, 1, 0);
	{
		char *old = webhook_payload(&d);

		assert_string_equal(body, old);
		free(old);
	}
	free(body);
	/* A reminder, a test and an escalation say so in json; nothing
	 * else changes. */
	{
		struct wp_alert r = d, q;

		r.repeat = 2;
		r.flags = WP_ALERT_TEST | WP_ALERT_ESCALATION;
		body = webhook_payload(&r);
		j = json_loads(body, 0, NULL);
		assert_int_equal(json_integer_value(json_object_get(j,
		    "repeat")), 2);
		assert_true(json_is_true(json_object_get(j, "test")));
		assert_true(json_is_true(json_object_get(j, "escalation")));
		/* a location (cluster mode) brings agent and location */
		assert_string_equal(json_string_value(json_object_get(j,
		    "location")), "fra");
		assert_int_equal(json_object_size(j), 15);
		json_decref(j);
		free(body);
		body = webhook_payload(&d);
		j = json_loads(body, 0, NULL);
		assert_int_equal(json_object_size(j), 12);
		json_decref(j);
		free(body);
		/* a single machine's body: no agent, location, confirmed_by */
		q = d;
		q.location = NULL;
		body = webhook_payload(&q);
		j = json_loads(body, 0, NULL);
		assert_int_equal(json_object_size(j), 10);
		json_decref(j);
		free(body);
		/* a multi-location verdict names its locations */
		q = d;
		q.confirmed_by = "fra,nyc";
		body = webhook_payload(&q);
		j = json_loads(body, 0, NULL);
		assert_string_equal(json_string_value(json_object_get(j,
		    "confirmed_by")), "fra,nyc");
		assert_int_equal(json_object_size(j), 13);
		json_decref(j);
		free(body);
		/* the chat title says it too */
		j = valid(WF_NTFY, (const struct wp_alert *[]){ &r }, 1, 0,
		    NULL);
		assert_string_equal(json_string_value(json_object_get(j,
		    "title")), "[TEST] api-home is DOWN (reminder 2) "
		    "(escalated)");
		json_decref(j);
	}
	/* The chat fields that matter, per service. */
	j = valid(WF_TELEGRAM, dn, 1, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "chat_id")),
	    "-100123");
	json_decref(j);
	j = valid(WF_NTFY, dn, 1, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "topic")),
	    "ops-alerts");
	assert_int_equal(json_integer_value(json_object_get(j, "priority")),
	    5);
	assert_string_equal(json_string_value(json_object_get(j, "title")),
	    "api-home is DOWN");
	assert_non_null(strstr(json_string_value(json_object_get(j,
	    "message")), "Error: HTTP 503, expected 200-299"));
	json_decref(j);
	j = valid(WF_GOTIFY, upa, 1, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "priority")),
	    2);
	json_decref(j);
	j = valid(WF_SLACK, dn, 1, 0, NULL);
	assert_non_null(strstr(json_string_value(json_object_get(j, "text")),
	    "*api-home is DOWN*\nError: HTTP 503"));
	json_decref(j);
}

static void
test_pagerduty_trigger_then_resolve(void **state)
{
	struct wp_alert d = alert("api-home", "down", 7), u = alert("api-home",
	    "up", 8), g = alert("api-home", "degraded", 9);
	const struct wp_alert *dn[1] = { &d }, *upa[1] = { &u }, *dg[1] = { &g };
	json_t *t, *r, *w, *p;

	(void)state;
	t = valid(WF_PAGERDUTY, dn, 1, 0, NULL);
	r = valid(WF_PAGERDUTY, upa, 1, 0, NULL);
	w = valid(WF_PAGERDUTY, dg, 1, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(t,
	    "event_action")), "trigger");
	assert_string_equal(json_string_value(json_object_get(r,
	    "event_action")), "resolve");
	/* One key for the monitor: the resolve closes the trigger's. */
	assert_string_equal(json_string_value(json_object_get(t, "dedup_key")),
	    "watchpost:edge-1:api-home");
	assert_string_equal(json_string_value(json_object_get(t, "dedup_key")),
	    json_string_value(json_object_get(r, "dedup_key")));
	assert_string_equal(json_string_value(json_object_get(t,
	    "routing_key")), RK);
	p = json_object_get(t, "payload");
	assert_string_equal(json_string_value(json_object_get(p, "severity")),
	    "critical");
	assert_string_equal(json_string_value(json_object_get(p, "source")),
	    "https://example.org/health");
	assert_string_equal(json_string_value(json_object_get(p,
	    "timestamp")), "2026-11-22T10:15:30.123Z");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    p, "custom_details"), "monitor")), "api-home");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    w, "payload"), "severity")), "warning");
	json_decref(t);
	json_decref(r);
	json_decref(w);
}

static void
test_dedup_keys(void **state)
{
	struct wp_alert a = alert("x", "down", 5);
	char key[256], name[400];

	(void)state;
	a.flags = WP_ALERT_TEST;
	assert_string_equal(webhook_dedup_key(&a, key, sizeof(key)),
	    "watchpost-test:5");
	a.flags = 0;
	a.agent = NULL;
	assert_string_equal(webhook_dedup_key(&a, key, sizeof(key)),
	    "watchpost::x");
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	a.monitor = name;
	webhook_dedup_key(&a, key, sizeof(key));
	assert_true(strlen(key) <= 255);
	assert_int_equal(strncmp(key, "watchpost:", 10), 0);
	/* stable: the trigger and the resolve agree */
	{
		char again[256];

		a.state = "up";
		assert_string_equal(webhook_dedup_key(&a, again,
		    sizeof(again)), key);
	}
}

static void
test_batch_one_message_lists_all(void **state)
{
	struct wp_alert a = alert("web-1", "down", 1), b = alert("web-2",
	    "down", 2), c = alert("db", "up", 3);
	const struct wp_alert *al[3] = { &a, &b, &c };
	json_t *j, *arr;
	char *body, *one;
	size_t i;
	int f;

	(void)state;
	for (f = WF_JSON; f < WF_TEMPLATE; f++) {
		if (f == WF_PAGERDUTY)
			continue;
		assert_int_equal(webhook_messages(&(struct webhook_format_conf){
		    .format = f }, 3), 1);
		json_decref(valid(f, al, 3, 0, &body));
		for (i = 0; i < 3; i++)
			if (strstr(body, al[i]->monitor) == NULL)
				fail_msg("%s lacks %s: %s",
				    webhook_format_names[f], al[i]->monitor,
				    body);
		if (f != WF_JSON)
			assert_non_null(strstr(body, "3 monitors changed "
			    "state: 2 DOWN, 1 UP"));
		/* the bullets survive every escaping (UTF-8 intact) */
		if (f != WF_JSON && f != WF_TEAMS)
			assert_non_null(strstr(body, "\xe2\x80\xa2 web-1 is "
			    "DOWN: HTTP 503, expected 200-299\\n\xe2\x80\xa2 "
			    "web-2"));
		assert_null(strstr(body, "\xef\xbf\xbd"));
		free(body);
	}
	/* json: {"alerts": [each alert's own object]}, ids kept. */
	j = valid(WF_JSON, al, 3, 0, NULL);
	arr = json_object_get(j, "alerts");
	assert_int_equal(json_array_size(arr), 3);
	for (i = 0; i < 3; i++) {
		char *dumped = json_dumps(json_array_get(arr, i), JSON_COMPACT);

		one = webhook_payload(al[i]);
		assert_string_equal(dumped, one);
		free(one);
		free(dumped);
	}
	json_decref(j);
	/* pagerduty: one event per monitor, in order, each its own key. */
	assert_int_equal(webhook_messages(&(struct webhook_format_conf){
	    .format = WF_PAGERDUTY }, 3), 3);
	for (i = 0; i < 3; i++) {
		char want[64];

		j = valid(WF_PAGERDUTY, al, 3, i, NULL);
		snprintf(want, sizeof(want), "watchpost:edge-1:%s",
		    al[i]->monitor);
		assert_string_equal(json_string_value(json_object_get(j,
		    "dedup_key")), want);
		assert_string_equal(json_string_value(json_object_get(j,
		    "event_action")), i == 2 ? "resolve" : "trigger");
		json_decref(j);
	}
	assert_null(webhook_message(&(struct webhook_format_conf){ .format =
	    WF_PAGERDUTY, .routing_key = RK }, al, 3, 3));
}

/* 300 monitors behind one switch: one message each receiver takes. */
static void
test_big_batch_fits(void **state)
{
	enum { N = 300 };
	static struct wp_alert as[N];
	static char names[N][64];
	const struct wp_alert *al[N];
	char *body;
	size_t i;
	int f;

	(void)state;
	for (i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]),
		    "rack-7-server-%03zu-with-a-long-name", i);
		as[i] = alert(names[i], "down", i + 1);
		al[i] = &as[i];
	}
	for (f = WF_SLACK; f < WF_TEMPLATE; f++) {
		if (f == WF_PAGERDUTY)
			continue;
		json_decref(valid(f, al, N, 0, &body));
		assert_non_null(strstr(body, names[0]));
		if (strstr(body, " more") == NULL)
			fail_msg("%s: no \"and N more\": %.200s",
			    webhook_format_names[f], body);
		free(body);
	}
}

static const char evil[] = "q\"uo\\te {{error}} <!channel> @channel @All "
    "@everyone \r\nX-Injected: 1\r\n\r\n{\"x\":1} \x01\x1b[2J \xff\xfe end";

static void
test_hostile_values(void **state)
{
	struct wp_alert a = alert(evil, "down", 1), b = alert("ok", "up", 2);
	const struct wp_alert *one[1] = { &a }, *two[2] = { &a, &b };
	char *body;
	json_t *j;
	int f;

	(void)state;
	a.error = evil;
	a.target = evil;
	a.agent = evil;
	for (f = WF_JSON; f < WF_TEMPLATE; f++) {
		json_decref(valid(f, one, 1, 0, &body));
		/* nothing was expanded from a value */
		assert_null(strstr(body, "HTTP 503"));
		free(body);
		json_decref(valid(f, two, 2, 0, NULL));
	}
	/* Slack: the mention is escaped, not sent. */
	j = valid(WF_SLACK, one, 1, 0, NULL);
	assert_non_null(strstr(json_string_value(json_object_get(j, "text")),
	    "&lt;!channel&gt;"));
	json_decref(j);
	/* No mass mention from an error's text: Discord's are off, and
	 * Mattermost's are broken by a zero-width space. */
	j = valid(WF_DISCORD, one, 1, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j,
	    "allowed_mentions"), "parse")), 0);
	json_decref(j);
	j = valid(WF_MATTERMOST, one, 1, 0, NULL);
	assert_non_null(strstr(json_string_value(json_object_get(j, "text")),
	    "@\xe2\x80\x8b" "channel @\xe2\x80\x8b" "All"));
	json_decref(j);
	/* A chat title holds no line break from a value. */
	j = valid(WF_NTFY, one, 1, 0, NULL);
	assert_null(strchr(json_string_value(json_object_get(j, "title")),
	    '\n'));
	assert_null(strchr(json_string_value(json_object_get(j, "title")),
	    '\r'));
	json_decref(j);
}

static void
test_template_format(void **state)
{
	struct wp_alert a = alert(evil, "down", 1), b = alert("db", "up", 2);
	const struct wp_alert *al[2] = { &a, &b };
	struct webhook_format_conf c = { .format = WF_TEMPLATE, .tpl_json = 1 };
	struct template *t;
	json_t *j;
	char *body;

	(void)state;
	t = template_compile("{\"text\":\"{{monitor}} is {{state}}: "
	    "{{error}}\",\"n\":{{count}},\"all\":[{{#alerts}}\"{{monitor}}\""
	    "{{|}},{{/alerts}}]}", NULL, NULL);
	assert_non_null(t);
	c.tpl = t;
	body = webhook_message(&c, al, 2, 0);
	assert_null(hookcheck("template", "application/json", body,
	    strlen(body)));
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "n")), 2);
	assert_int_equal(json_array_size(json_object_get(j, "all")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j,
	    "all"), 1)), "db");
	json_decref(j);
	free(body);
	template_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_alert_every_preset),
		cmocka_unit_test(test_pagerduty_trigger_then_resolve),
		cmocka_unit_test(test_dedup_keys),
		cmocka_unit_test(test_batch_one_message_lists_all),
		cmocka_unit_test(test_big_batch_fits),
		cmocka_unit_test(test_hostile_values),
		cmocka_unit_test(test_template_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
