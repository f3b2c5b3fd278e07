/*
 * test-webhook-template -- plugins/template.c: syntax, errors with their
 * line and column, every field, the three render modes, batches, and
 * hostile field values that must not break JSON or a header.
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

#include "template.h"

static char diags[4096];
static int n_diags;

static void
diag(void *arg, int line, int col, const char *msg)
{
	size_t o = strlen(diags);

	(void)arg;
	n_diags++;
	snprintf(diags + o, sizeof(diags) - o, "%d:%d: %s\n", line, col, msg);
}

static struct wp_alert
sample(void)
{
	struct wp_alert a = {
		.size = sizeof(struct wp_alert),
		.id = 42,
		.monitor = "api-home",
		.type = "http",
		.state = "down",
		.previous_state = "up",
		.timestamp_us = 1795342530123456LL, /* 2026-11-22T10:15:30.123Z */
		.error = "HTTP 503, expected 200-299",
		.reason = "status",
		.latency_us = 12500,
		.since_us = 1795342530123456LL - 3723000000LL,
		.target = "https://example.org/health",
		.agent = "edge-1",
		.location = "fra",
	};
	return a;
}

/* Render TEXT for the N alerts in MODE; returns a malloc'd string. */
static char *
render(const char *text, const struct wp_alert *const *al, size_t n,
    enum template_mode mode)
{
	struct template_buf b = TEMPLATE_BUF_INIT;
	struct template *t;

	diags[0] = '\0';
	n_diags = 0;
	t = template_compile(text, diag, NULL);
	if (t == NULL)
		fail_msg("compile failed: %s", diags);
	assert_int_equal(template_render(t, al, n, mode, &b), WP_OK);
	template_free(t);
	return b.p;
}

static char *
render1(const char *text, const struct wp_alert *a, enum template_mode mode)
{
	const struct wp_alert *al[1] = { a };

	return render(text, al, 1, mode);
}

static void
compile_fails(const char *text, const char *expect)
{
	struct template *t;

	diags[0] = '\0';
	n_diags = 0;
	t = template_compile(text, diag, NULL);
	assert_null(t);
	assert_true(n_diags >= 1);
	if (strstr(diags, expect) == NULL)
		fail_msg("diagnostics %s do not contain %s", diags, expect);
}

static void
test_every_field(void **state)
{
	struct wp_alert a = sample();
	char *s;

	(void)state;
	s = render1("{{monitor}}|{{type}}|{{state}}|{{previous_state}}|"
	    "{{reason}}|{{error}}|{{latency_ms}}|{{timestamp}}|{{since}}|"
	    "{{duration}}|{{target}}|{{id}}|{{agent}}|{{location}}|{{count}}",
	    &a, TEMPLATE_TEXT);
	assert_string_equal(s, "api-home|http|down|up|status|"
	    "HTTP 503, expected 200-299|12.5|2026-11-22T10:15:30.123Z|"
	    "2026-11-22T09:13:27.123Z|1h 2m 3s|https://example.org/health|42|"
	    "edge-1|fra|1");
	free(s);
	/* Blanks inside the braces are allowed. */
	s = render1("{{ monitor }}/{{\tstate }}", &a, TEMPLATE_TEXT);
	assert_string_equal(s, "api-home/down");
	free(s);
}

/* Unknown values (an older host, an up alert) render as nothing. */
static void
test_unknown_fields_empty(void **state)
{
	struct wp_alert a = sample();
	char *s;

	(void)state;
	a.error = NULL;
	a.reason = NULL;
	a.latency_us = -1;
	a.since_us = 0;
	a.target = NULL;
	a.agent = NULL;
	a.location = NULL;
	s = render1("[{{error}}][{{reason}}][{{latency_ms}}][{{since}}]"
	    "[{{duration}}][{{target}}][{{agent}}][{{location}}]", &a,
	    TEMPLATE_JSON);
	assert_string_equal(s, "[][][][][][][][]");
	free(s);
	/* A 2.0 host's struct ends before since_us: the tail reads as 0. */
	a = sample();
	a.size = offsetof(struct wp_alert, since_us);
	s = render1("{{since}}|{{target}}|{{monitor}}", &a, TEMPLATE_TEXT);
	assert_string_equal(s, "||api-home");
	free(s);
	/* Whole milliseconds have no decimal; durations under a minute. */
	a = sample();
	a.latency_us = 40000;
	a.since_us = a.timestamp_us - 5500000;
	s = render1("{{latency_ms}} {{duration}}", &a, TEMPLATE_TEXT);
	assert_string_equal(s, "40 5s");
	free(s);
	a.since_us = a.timestamp_us;
	s = render1("{{duration}}", &a, TEMPLATE_TEXT);
	assert_string_equal(s, "0s");
	free(s);
	a.since_us = a.timestamp_us - 86400000000LL - 60000000LL;
	s = render1("{{duration}}", &a, TEMPLATE_TEXT);
	assert_string_equal(s, "1d 1m");
	free(s);
}

static void
test_errors_with_position(void **state)
{
	(void)state;
	compile_fails("{{monitor}} is {{stat}}", "1:16: unknown field \"stat\"");
	compile_fails("line one\n  x {{monitor", "2:5: \"{{\" without a "
	    "closing \"}}\"");
	compile_fails("a {{#alerts}}{{monitor}}", "1:3: {{#alerts}} without "
	    "{{/alerts}}");
	compile_fails("{{/alerts}}", "outside {{#alerts}}");
	compile_fails("{{|}}", "outside {{#alerts}}");
	compile_fails("{{#alerts}}{{#alerts}}{{/alerts}}", "do not nest");
	compile_fails("{{#alerts}}a{{|}}b{{|}}c{{/alerts}}", "a second {{|}}");
	compile_fails("{{}}", "unknown field \"\"");
	/* Every problem is reported, not only the first. */
	compile_fails("{{a}} {{b}}\n{{c}}", "2:1: unknown field \"c\"");
	assert_int_equal(n_diags, 3);
	/* The column counts characters, not bytes. */
	compile_fails("\xc3\xa9t\xc3\xa9 {{x}}", "1:5: unknown field");
	/* A long bad name is cut in the message. */
	compile_fails("{{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}",
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"");
	/* Literal braces that are not "{{" are plain text. */
	{
		struct wp_alert a = sample();
		char *s = render1("{\"a\":{\"b\":\"{{monitor}}\"}}", &a,
		    TEMPLATE_JSON);

		assert_string_equal(s, "{\"a\":{\"b\":\"api-home\"}}");
		free(s);
	}
}

static const char hostile[] =
    "we\"ird\\ {{error}} }}\r\nX-Injected: 1\n\x01\x7f\xff end";

static void
test_json_mode_escapes(void **state)
{
	struct wp_alert a = sample();
	json_error_t err;
	json_t *j;
	char *s;

	(void)state;
	a.monitor = hostile;
	a.error = hostile;
	s = render1("{\"m\":\"{{monitor}}\",\"e\":\"{{error}}\"}", &a,
	    TEMPLATE_JSON);
	j = json_loads(s, 0, &err);
	if (j == NULL)
		fail_msg("not JSON: %s: %s", err.text, s);
	/* The value survives, the bad byte repaired, the braces untouched. */
	assert_string_equal(json_string_value(json_object_get(j, "m")),
	    "we\"ird\\ {{error}} }}\r\nX-Injected: 1\n\x01\x7f\xef\xbf\xbd end");
	json_decref(j);
	free(s);
}

static void
test_header_mode_no_line_break(void **state)
{
	struct wp_alert a = sample();
	char *s;

	(void)state;
	a.monitor = hostile;
	/* The template's own line break goes too (a subject from a file). */
	s = render1("[{{state}}] {{monitor}}\r\n", &a, TEMPLATE_HEADER);
	assert_null(strchr(s, '\r'));
	assert_null(strchr(s, '\n'));
	assert_string_equal(s, "[down] we\"ird\\ {{error}} }}  X-Injected: 1 "
	    "  \xef\xbf\xbd end  ");
	free(s);
}

static void
test_text_mode(void **state)
{
	struct wp_alert a = sample();
	char *s;

	(void)state;
	a.error = "line1\r\nline2\tx\x1b[31m";
	s = render1("{{error}}\n", &a, TEMPLATE_TEXT);
	/* LF and TAB stay, CR and the terminal escape do not. */
	assert_string_equal(s, "line1 \nline2\tx [31m\n");
	free(s);
}

static void
test_batches(void **state)
{
	struct wp_alert a = sample(), b = sample(), c = sample();
	const struct wp_alert *al[3] = { &a, &b, &c };
	json_t *j;
	char *s;

	(void)state;
	b.monitor = "db";
	b.state = "up";
	c.monitor = "q\"ueue";
	s = render("{{count}} changes, first {{monitor}}: "
	    "{{#alerts}}{{monitor}}={{state}}{{|}}, {{/alerts}}.", al, 3,
	    TEMPLATE_TEXT);
	assert_string_equal(s, "3 changes, first api-home: api-home=down, "
	    "db=up, q\"ueue=down.");
	free(s);
	/* Without a separator the body just repeats. */
	s = render("{{#alerts}}<{{monitor}}>{{/alerts}}", al, 2,
	    TEMPLATE_TEXT);
	assert_string_equal(s, "<api-home><db>");
	free(s);
	/* A JSON array of the batch is valid JSON. */
	s = render("{\"n\":{{count}},\"alerts\":[{{#alerts}}{\"m\":"
	    "\"{{monitor}}\",\"id\":{{id}}}{{|}},{{/alerts}}]}", al, 3,
	    TEMPLATE_JSON);
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "alerts")), 3);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(json_object_get(j, "alerts"), 2), "m")), "q\"ueue");
	json_decref(j);
	free(s);
	/* One alert: the separator never appears. */
	s = render("[{{#alerts}}{{monitor}}{{|}},{{/alerts}}]", al, 1,
	    TEMPLATE_TEXT);
	assert_string_equal(s, "[api-home]");
	free(s);
	/* A batch of none is refused. */
	{
		struct template *t = template_compile("x", NULL, NULL);
		struct template_buf buf = TEMPLATE_BUF_INIT;

		assert_int_equal(template_render(t, al, 0, TEMPLATE_TEXT,
		    &buf), WP_EINVAL);
		template_free(t);
		template_buf_free(&buf);
	}
}

static void
test_field_and_put(void **state)
{
	struct template_buf b = TEMPLATE_BUF_INIT;
	struct wp_alert a = sample();

	(void)state;
	assert_int_equal(template_field("monitor", &a, TEMPLATE_TEXT, &b),
	    WP_OK);
	assert_int_equal(template_field("nope", &a, TEMPLATE_TEXT, &b),
	    WP_EINVAL);
	assert_int_equal(template_buf_put(&b, "\"x\n", 3, TEMPLATE_JSON),
	    WP_OK);
	assert_string_equal(b.p, "api-home\\\"x\\n");
	assert_int_equal(b.len, strlen(b.p));
	template_buf_free(&b);
	assert_null(b.p);
	/* Empty output is still a NUL-terminated string. */
	assert_int_equal(template_buf_put(&b, "", 0, TEMPLATE_TEXT), WP_OK);
	assert_string_equal(b.p, "");
	template_buf_free(&b);
	template_buf_free(&b);
	template_free(NULL);
	/* A template with no text renders as nothing. */
	{
		char *s = render1("", &a, TEMPLATE_TEXT);

		assert_string_equal(s, "");
		free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_field),
		cmocka_unit_test(test_unknown_fields_empty),
		cmocka_unit_test(test_errors_with_position),
		cmocka_unit_test(test_json_mode_escapes),
		cmocka_unit_test(test_header_mode_no_line_break),
		cmocka_unit_test(test_text_mode),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_field_and_put),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
