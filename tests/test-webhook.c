/*
 * test-webhook -- alert-webhook.so against tests/testhttpd on loopback
 * (its /hook route records bodies and answers a status read from a file),
 * and the payload builder fed hostile strings.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mockhost.h"
#include "testhttpd-spawn.h"
#include "webhook-payload.h"


static struct mock_plugin *mp;
static struct server srv;
static char dir[4096], record[4200], status_file[4200];

static const char *
url_for(const char *path)
{
	static char buf[16][512];
	static int k;

	k = (k + 1) % 16;
	snprintf(buf[k], sizeof(buf[k]), "http://127.0.0.1:%d%s", srv.port,
	    path);
	return buf[k];
}

static void
write_status(const char *s)
{
	FILE *f = fopen(status_file, "w");

	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

/* The last line of the record file (malloc'd), or NULL if it is empty. */
static char *
last_record(int *lines)
{
	FILE *f = fopen(record, "r");
	char *line = NULL, *last = NULL;
	size_t cap = 0;
	ssize_t n;

	*lines = 0;
	if (f == NULL)
		return NULL;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		free(last);
		last = strdup(line);
		(*lines)++;
	}
	free(line);
	fclose(f);
	return last;
}

static struct wp_alert
sample_alert(uint64_t id)
{
	struct wp_alert a = {
		.size = sizeof(struct wp_alert),
		.id = id,
		.monitor = "api-home",
		.type = "http",
		.state = "down",
		.previous_state = "up",
		.timestamp_us = 1795342530123456LL, /* 2026-11-22T10:15:30.123Z */
		.error = "HTTP 503, expected 200-299",
		.reason = "status",
		.latency_us = 12500,
		.attempt = 0,
	};
	return a;
}

static void
deliver(const char *const *kv, const struct wp_alert *a, int64_t timeout_ms,
    struct mock_result *out)
{
	void *inst = NULL;

	if (mock_configure(mp, "ops", kv, timeout_ms, &inst) != 0)
		fail_msg("configure: %s", mock_errors(mp));
	mock_run(mp, inst, timeout_ms, a, out);
	mock_release(mp, inst);
	assert_int_equal(out->start_rc, 0);
	assert_int_equal(out->completions, 1);
}

static int
group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	const char *args[] = { "--record", record, "--hook-status-file",
		status_file, NULL };

	(void)state;
	snprintf(dir, sizeof(dir), "%s/wp-webhook-XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(record, sizeof(record), "%s/record", dir);
	snprintf(status_file, sizeof(status_file), "%s/status", dir);
	setenv("MOCK_QUIET", "1", 1);
	signal(SIGPIPE, SIG_IGN);
	server_start(&srv, args);
	mp = mock_plugin_load("alert-webhook.so");
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	mock_plugin_unload(mp);
	server_stop(&srv);
	unlink(record);
	unlink(status_file);
	rmdir(dir);
	return 0;
}

static void
test_descriptor(void **state)
{
	const struct wp_plugin *d = mock_plugin_desc(mp);

	(void)state;
	assert_string_equal(d->name, "webhook");
	assert_int_equal(d->kind, WP_PLUGIN_ALERT);
	assert_int_equal(d->key_size, sizeof(struct wp_key));
	assert_string_equal(d->keys[0].name, "url");
	assert_true(d->keys[0].flags & WP_KEY_REQUIRED);
	assert_string_equal(d->keys[1].name, "header");
	assert_true(d->keys[1].flags & WP_KEY_MULTI);
	assert_int_equal(d->n_keys, 8);
	assert_string_equal(d->keys[2].name, "format");
	assert_true(d->flags & WP_PLUGIN_F_GROUPS);
	assert_non_null(d->start);
	assert_non_null(d->cancel);
}

static void
test_receiver_500_then_200(void **state)
{
	const char *kv[] = { "url", url_for("/hook"), NULL };
	struct wp_alert a = sample_alert(41);
	struct mock_result r;
	json_t *j, *v;
	json_error_t err;
	char *line;
	int lines;

	(void)state;
	write_status("500\n");
	deliver(kv, &a, 5000, &r);
	assert_int_not_equal(r.r.reason, WP_REASON_OK);
	assert_int_equal(r.r.reason, WP_REASON_STATUS);
	assert_int_equal(r.r.status_code, 500);
	assert_string_equal(r.detail, "HTTP 500");
	free(last_record(&lines));
	assert_int_equal(lines, 1);

	write_status("200\n");
	a.attempt = 1;
	deliver(kv, &a, 5000, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	assert_int_equal(r.r.status_code, 200);
	assert_null(r.r.detail);
	line = last_record(&lines);
	assert_int_equal(lines, 2);
	assert_non_null(line);
	j = json_loads(line, 0, &err);
	if (j == NULL)
		fprintf(stderr, "bad JSON (%s): %s\n", err.text, line);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "monitor")),
	    "api-home");
	assert_string_equal(json_string_value(json_object_get(j, "type")),
	    "http");
	assert_string_equal(json_string_value(json_object_get(j, "state")),
	    "down");
	assert_string_equal(json_string_value(json_object_get(j,
	    "previous_state")), "up");
	assert_string_equal(json_string_value(json_object_get(j,
	    "timestamp")), "2026-11-22T10:15:30.123Z");
	assert_string_equal(json_string_value(json_object_get(j, "error")),
	    "HTTP 503, expected 200-299");
	assert_string_equal(json_string_value(json_object_get(j, "reason")),
	    "status");
	v = json_object_get(j, "latency_ms");
	assert_true(json_is_number(v));
	assert_true(json_number_value(v) == 12.5);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 41);
	json_decref(j);
	free(line);
}

static void
test_headers_sent(void **state)
{
	const char *id_kv[] = { "url",
		url_for("/require-header?name=X-Watchpost-Alert-Id&value=77"),
		NULL };
	const char *ct_kv[] = { "url",
		url_for("/require-header?name=Content-Type&value=application/json"),
		NULL };
	const char *auth_kv[] = { "url",
		url_for("/require-header?name=X-Auth&value=tok3n"),
		"header", "X-Auth: tok3n", NULL };
	struct wp_alert a = sample_alert(77), b = sample_alert(78);
	struct mock_result r;

	(void)state;
	deliver(id_kv, &a, 5000, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	deliver(id_kv, &b, 5000, &r);
	assert_int_not_equal(r.r.reason, WP_REASON_OK);
	assert_string_equal(r.detail, "HTTP 412");
	deliver(ct_kv, &a, 5000, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	deliver(auth_kv, &a, 5000, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
}

static void
test_receiver_down(void **state)
{
	char u[128];
	const char *kv[] = { "url", u, NULL };
	struct wp_alert a = sample_alert(1);
	struct mock_result r;

	(void)state;
	snprintf(u, sizeof(u), "http://hook:s3cret@127.0.0.1:%d/hook?token=t0k",
	    closed_port());
	deliver(kv, &a, 5000, &r);
	assert_int_not_equal(r.r.reason, WP_REASON_OK);
	assert_int_equal(r.r.reason, WP_REASON_REFUSED);
	assert_string_equal(r.detail, "connection refused");
	assert_int_equal(r.timed_out, 0);
}

static void
test_status_detail_has_no_secrets(void **state)
{
	char u[256];
	const char *kv[] = { "url", u, "header", "Authorization: Bearer s3cret",
		NULL };
	struct wp_alert a = sample_alert(2);
	struct mock_result r;

	(void)state;
	snprintf(u, sizeof(u), "http://hook:s3cret@127.0.0.1:%d/status/503"
	    "?token=s3cret", srv.port);
	deliver(kv, &a, 5000, &r);
	assert_int_not_equal(r.r.reason, WP_REASON_OK);
	assert_string_equal(r.detail, "HTTP 503");
	assert_null(strstr(r.detail, "s3cret"));
}

static void
test_receiver_hangs(void **state)
{
	const char *kv[] = { "url", url_for("/hang"), NULL };
	struct wp_alert a = sample_alert(3);
	struct mock_result r;

	(void)state;
	deliver(kv, &a, 300, &r);
	assert_int_equal(r.timed_out, 1);
	assert_int_not_equal(r.r.reason, WP_REASON_OK);
	assert_int_equal(r.r.reason, WP_REASON_TIMEOUT);
	assert_non_null(strstr(r.detail, "timed out"));
	assert_true(r.elapsed_ms < 300.0 + 400.0);
}

static void
test_config_errors(void **state)
{
	const char *missing[] = { "header", "X-A: 1", NULL };
	const char *bad[] = { "url", "ftp://u:hunter2@127.0.0.1/", NULL };
	/* configure() judges the headers once the host's parser passed the
	 * section; a repeated key's problems are on its first line. */
	const char *bad_headers[] = { "url", "http://127.0.0.1:1/",
		"header", "no colon hunter2", "header", "X-B: a\nb", NULL };
	const char *unknown[] = { "url", "http://127.0.0.1:1/", "flavour",
		"x", NULL };
	void *inst = NULL;
	const char *e;

	(void)state;
	assert_int_equal(mock_configure(mp, "ops", missing, 5000, &inst),
	    WP_EINVAL);
	assert_non_null(strstr(mock_errors(mp), "mock.ini: the section is "
	    "missing the required key \"url\""));
	assert_int_equal(mock_configure(mp, "ops", bad, 5000, &inst),
	    WP_EINVAL);
	e = mock_errors(mp);
	assert_non_null(strstr(e, "1: url: the scheme must be http or https"));
	assert_null(strstr(e, "hunter2"));
	assert_int_equal(mock_configure(mp, "ops", bad_headers, 5000, &inst),
	    WP_EINVAL);
	e = mock_errors(mp);
	assert_non_null(strstr(e, "2: header: must be"));
	assert_non_null(strstr(e, "2: header: the value must not contain"));
	assert_null(strstr(e, "hunter2"));
	/* A key outside the table: named once, by the host. */
	assert_int_equal(mock_configure(mp, "ops", unknown, 5000, &inst),
	    WP_EINVAL);
	assert_non_null(strstr(mock_errors(mp),
	    "mock.ini:2: unknown key \"flavour\"\n"));
}

/* Configure KV, expecting failure with every string of WANT (NULL-ended)
 * in the errors and no "SeCrEt" anywhere. */
static void
config_fails(const char *const *kv, const char *const *want)
{
	void *inst = NULL;
	const char *e;

	assert_int_equal(mock_configure(mp, "ops", kv, 5000, &inst),
	    WP_EINVAL);
	e = mock_errors(mp);
	for (; *want != NULL; want++)
		if (strstr(e, *want) == NULL)
			fail_msg("errors \"%s\" lack \"%s\"", e, *want);
	assert_null(strstr(e, "SeCrEt"));
}

static void
test_format_config_errors(void **state)
{
	const char *u = "http://127.0.0.1:1/";
	const char *tg[] = { "url", u, "format", "telegram", NULL };
	const char *pd[] = { "url", u, "format", "pagerduty", NULL };
	const char *nt[] = { "url", u, "format", "ntfy", NULL };
	const char *tp[] = { "url", u, "format", "template", NULL };
	const char *stray[] = { "url", u, "chat_id", "123", "routing_key",
		"SeCrEt0123456789abcdef0123456789", NULL };
	const char *unknown[] = { "url", u, "format", "template", "template",
		"{\"t\":\"{{monitr}}\"}\n{{state", NULL };
	const char *notjson[] = { "url", u, "format", "template", "template",
		"{\"l\": {{latency_ms}}}", NULL };
	const char *badct[] = { "url", u, "format", "template", "template",
		"x", "content_type", "text plain", NULL };
	const char *ct_stray[] = { "url", u, "content_type", "text/plain",
		NULL };
	const char *badid[] = { "url", u, "format", "telegram", "chat_id",
		"12ab", NULL };
	const char *badtopic[] = { "url", u, "format", "ntfy", "topic",
		"a/b", NULL };
	const char *badfmt[] = { "url", u, "format", "teletype", NULL };
	const char *plain[] = { "url", u, "format", "template", "template",
		"{{monitor}} took {{latency_ms}} ms", "content_type",
		"text/plain; charset=utf-8", NULL };
	void *inst = NULL;

	(void)state;
	config_fails(tg, (const char *[]){ "mock.ini:2: format: format = "
	    "telegram needs chat_id (or chat_id_file)", NULL });
	config_fails(pd, (const char *[]){ "mock.ini:2: format: format = "
	    "pagerduty needs routing_key (or routing_key_file)", NULL });
	config_fails(nt, (const char *[]){ "needs topic", NULL });
	config_fails(tp, (const char *[]){ "needs template", NULL });
	config_fails(stray, (const char *[]){ "mock.ini:2: chat_id: is only "
	    "used with format = telegram", "mock.ini:3: routing_key: is only "
	    "used with format = pagerduty", NULL });
	/* A template's problems, each with its place in the template. */
	config_fails(unknown, (const char *[]){ "mock.ini:3: template: line "
	    "1, column 7: unknown field \"monitr\"", "mock.ini:3: template: "
	    "line 2, column 1: \"{{\" without a closing \"}}\"", NULL });
	config_fails(notjson, (const char *[]){ "mock.ini:3: template: does "
	    "not render as JSON", NULL });
	config_fails(badct, (const char *[]){ "content_type: must be a media "
	    "type", NULL });
	config_fails(ct_stray, (const char *[]){ "content_type: is only used "
	    "with format = template", NULL });
	config_fails(badid, (const char *[]){ "chat_id: must be", NULL });
	config_fails(badtopic, (const char *[]){ "topic: must be", NULL });
	config_fails(badfmt, (const char *[]){ "mock.ini:2:", "format", NULL });
	/* Not JSON, so a bare number field is fine. */
	assert_int_equal(mock_configure(mp, "ops", plain, 5000, &inst), 0);
	mock_release(mp, inst);
}

/* The last record line starts with PREFIX. */
static void
last_starts(const char *prefix)
{
	int lines;
	char *line = last_record(&lines);

	assert_non_null(line);
	if (strncmp(line, prefix, strlen(prefix)) != 0)
		fail_msg("last record \"%s\" does not start with \"%s\"", line,
		    prefix);
	free(line);
}

/* Every preset, delivered through the plugin to a receiver of its kind. */
static void
test_format_delivery(void **state)
{
	static const char *const formats[] = { "json", "slack", "discord",
		"teams", "mattermost", "ntfy", "gotify", "telegram",
		"pagerduty" };
	char keyfile[4300], url[512], want[64];
	struct wp_alert a = sample_alert(90);
	struct mock_result r;
	FILE *f;
	size_t i;

	(void)state;
	snprintf(keyfile, sizeof(keyfile), "%s/routing-key", dir);
	assert_non_null(f = fopen(keyfile, "w"));
	fputs("0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	assert_int_equal(chmod(keyfile, 0600), 0);
	write_status("200\n");
	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		const char *kv[] = { "url", url, "format", formats[i],
			i == 5 ? "topic" : i == 7 ? "chat_id" : i == 8 ?
			"routing_key_file" : NULL,
			i == 5 ? "alerts" : i == 7 ? "-1001" : keyfile, NULL };

		snprintf(url, sizeof(url), "%s", url_for("/svc/"));
		strncat(url, formats[i], sizeof(url) - strlen(url) - 1);
		deliver(kv, &a, 5000, &r);
		if (r.r.reason != WP_REASON_OK)
			fail_msg("%s: %s", formats[i], r.detail);
		snprintf(want, sizeof(want), "%s ok {", formats[i]);
		last_starts(want);
	}
	/* The routing key came from its file and reached the body only. */
	{
		int lines;
		char *line = last_record(&lines);

		assert_non_null(strstr(line, "\"routing_key\":"
		    "\"0123456789abcdef0123456789abcdef\""));
		free(line);
	}
	unlink(keyfile);
	/* A receiver's 400 is a failed delivery (the core retries). */
	{
		const char *kv[] = { "url", url_for("/svc/pagerduty"),
			"format", "slack", NULL };

		deliver(kv, &a, 5000, &r);
		assert_int_equal(r.r.reason, WP_REASON_STATUS);
		assert_string_equal(r.detail, "HTTP 400");
	}
	/* format = template with a plain-text body and its content type. */
	{
		const char *kv[] = { "url", url_for("/svc/template"), "format",
			"template", "template", "{{monitor}} is {{state}} "
			"({{error}})", "content_type", "text/plain", NULL };
		const char *jkv[] = { "url", url_for("/svc/template"),
			"format", "template", "template",
			"{\"m\":\"{{monitor}}\",\"id\":{{id}}}", NULL };

		deliver(kv, &a, 5000, &r);
		assert_int_equal(r.r.reason, WP_REASON_OK);
		last_starts("template ok api-home is down (HTTP 503, expected "
		    "200-299)");
		deliver(jkv, &a, 5000, &r);
		assert_int_equal(r.r.reason, WP_REASON_OK);
		last_starts("template ok {\"m\":\"api-home\",\"id\":90}");
	}
}

/* A group_window batch: one chat message listing all; PagerDuty one event
 * per monitor, in order, within the one operation. */
static void
test_batch_delivery(void **state)
{
	struct wp_alert a = sample_alert(101), b = sample_alert(102),
	    c = sample_alert(103);
	const struct wp_alert *al[3] = { &a, &b, &c };
	const char *slack[] = { "url", url_for("/svc/slack"), "format",
		"slack", NULL };
	const char *pd[] = { "url", url_for("/svc/pagerduty"), "format",
		"pagerduty", "routing_key", "0123456789abcdef0123456789abcdef",
		NULL };
	const char *pd_wrong[] = { "url", url_for("/svc/slack"), "format",
		"pagerduty", "routing_key", "0123456789abcdef0123456789abcdef",
		NULL };
	struct mock_result r;
	int before, lines;
	char *line;
	FILE *f;
	char buf[8192];
	int k = 0;

	(void)state;
	a.monitor = "web-1";
	b.monitor = "web-2";
	c.monitor = "db";
	c.state = "up";
	c.previous_state = "down";
	c.error = NULL;
	c.reason = NULL;
	write_status("200\n");
	free(last_record(&before));
	mock_set_batch(mp, al, 3);
	deliver(slack, &a, 5000, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	line = last_record(&lines);
	assert_int_equal(lines, before + 1);
	assert_non_null(strstr(line, "slack ok "));
	assert_non_null(strstr(line, "3 monitors changed state: 2 DOWN, 1 UP"));
	assert_non_null(strstr(line, "web-2 is DOWN"));
	assert_non_null(strstr(line, "db is UP"));
	free(line);

	deliver(pd, &a, 5000, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	assert_int_equal(r.completions, 1);
	assert_non_null(f = fopen(record, "r"));
	while (fgets(buf, sizeof(buf), f) != NULL) {
		if (++k <= before + 1)
			continue;
		assert_non_null(strstr(buf, "pagerduty ok "));
		assert_non_null(strstr(buf, k == before + 2 ?
		    "\"event_action\":\"trigger\",\"dedup_key\":"
		    "\"watchpost::web-1\"" : k == before + 3 ?
		    "\"event_action\":\"trigger\",\"dedup_key\":"
		    "\"watchpost::web-2\"" :
		    "\"event_action\":\"resolve\",\"dedup_key\":"
		    "\"watchpost::db\""));
	}
	fclose(f);
	assert_int_equal(k, before + 4);

	/* A refused event fails the whole delivery, saying which. */
	deliver(pd_wrong, &a, 5000, &r);
	assert_int_equal(r.r.reason, WP_REASON_STATUS);
	assert_string_equal(r.detail, "HTTP 400 (event 1 of 3)");
	mock_set_batch(mp, NULL, 0);
}

/* Parse P (which must be valid JSON) and free it; returns the object. */
static json_t *
parse_payload(char *p)
{
	json_error_t err;
	json_t *j;

	assert_non_null(p);
	j = json_loads(p, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		fprintf(stderr, "invalid JSON (%s): %s\n", err.text, p);
	assert_non_null(j);
	assert_null(strchr(p, '\n'));
	free(p);
	return j;
}

static void
test_payload_hostile(void **state)
{
	struct wp_alert a = sample_alert(UINT64_C(18446744073709551615));
	const char *s;
	json_t *j;

	(void)state;
	a.monitor = "q\"uote\\back/slash";
	a.type = "trunc\xe2\x82";
	a.error = "ctl\x01\x1f\n\r\t\x7f end";
	a.reason = "\xff\xfe bad \xc0\xaf overlong \xed\xa0\x80 surrogate "
	    "\xf4\x90\x80\x80 big \xe2\x82\xac euro";
	a.latency_us = -1;
	j = parse_payload(webhook_payload(&a));
	assert_string_equal(json_string_value(json_object_get(j, "monitor")),
	    a.monitor);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
	    a.error);
	s = json_string_value(json_object_get(j, "type"));
	assert_non_null(s);
	assert_non_null(strstr(s, "trunc\xef\xbf\xbd"));
	s = json_string_value(json_object_get(j, "reason"));
	assert_non_null(s);
	assert_non_null(strstr(s, "\xef\xbf\xbd bad"));
	assert_non_null(strstr(s, "\xe2\x82\xac euro"));
	assert_null(strstr(s, "\xed\xa0\x80"));
	assert_true(json_is_null(json_object_get(j, "latency_ms")));
	/* Above INT64_MAX the id stays exact as a decimal string. */
	assert_string_equal(json_string_value(json_object_get(j, "id")),
	    "18446744073709551615");
	json_decref(j);
}

static void
test_payload_nulls_and_odd_values(void **state)
{
	struct wp_alert a = sample_alert(5);
	struct wp_alert old;
	json_t *j;

	(void)state;
	a.monitor = NULL;
	a.error = NULL;
	a.reason = NULL;
	a.state = "up";
	a.latency_us = INT64_MIN;
	a.timestamp_us = -1; /* 1969-12-31T23:59:59.999Z */
	j = parse_payload(webhook_payload(&a));
	assert_true(json_is_null(json_object_get(j, "monitor")));
	assert_true(json_is_null(json_object_get(j, "error")));
	assert_true(json_is_null(json_object_get(j, "reason")));
	assert_true(json_is_null(json_object_get(j, "latency_ms")));
	assert_string_equal(json_string_value(json_object_get(j, "state")),
	    "up");
	assert_string_equal(json_string_value(json_object_get(j,
	    "timestamp")), "1969-12-31T23:59:59.999Z");
	json_decref(j);

	/* A host built with a shorter struct: the missing tail reads 0. */
	old = sample_alert(6);
	old.size = offsetof(struct wp_alert, latency_us);
	j = parse_payload(webhook_payload(&old));
	assert_true(json_number_value(json_object_get(j, "latency_ms")) == 0);
	assert_string_equal(json_string_value(json_object_get(j, "reason")),
	    "status");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload_hostile),
		cmocka_unit_test(test_payload_nulls_and_odd_values),
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_receiver_500_then_200),
		cmocka_unit_test(test_headers_sent),
		cmocka_unit_test(test_receiver_down),
		cmocka_unit_test(test_status_detail_has_no_secrets),
		cmocka_unit_test(test_receiver_hangs),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_format_config_errors),
		cmocka_unit_test(test_format_delivery),
		cmocka_unit_test(test_batch_delivery),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
