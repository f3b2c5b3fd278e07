/*
 * test-email-msg -- the mail text of alert-email.so (plugins/alert-email-
 * msg.c): addresses, RFC 2047 headers that no input can break out of, the
 * RFC 5322 date, stable Message-IDs, the body's transfer encoding and the
 * default subject and body.
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

#include "alert-email-msg.h"

static struct wp_alert
sample(uint64_t id, const char *monitor, const char *state)
{
	struct wp_alert a = {
		.size = sizeof(struct wp_alert),
		.id = id,
		.monitor = monitor,
		.type = "http",
		.state = state,
		.previous_state = strcmp(state, "up") == 0 ? "down" : "up",
		.timestamp_us = 1795342530123456LL, /* 2026-11-22 10:15:30 */
		.error = strcmp(state, "up") == 0 ? NULL : "connection refused",
		.reason = strcmp(state, "up") == 0 ? NULL : "refused",
		.latency_us = 12500,
		.since_us = 1795342530123456LL - 312000000LL, /* 5m 12s */
		.target = "https://example.org/health",
		.agent = "probe-1",
		.location = "fra",
	};
	return a;
}

/* Every line break in header H is a fold (CRLF then a blank) or its
 * end, no line is over 78 characters, and no bare CR or LF is in it. */
static void
assert_header_safe(const char *h)
{
	const char *p, *line = h;

	for (p = h; *p != '\0'; p++) {
		if (*p == '\n')
			fail_msg("bare LF in %s", h);
		if (*p != '\r')
			continue;
		assert_int_equal(p[1], '\n');
		assert_true(p - line <= 78);
		if (p[2] != '\0')
			assert_true(p[2] == ' ');
		line = p + 2;
		p++;
	}
	assert_true(p >= h + 2 && p[-2] == '\r' && p[-1] == '\n');
}

static int
hexval(int c)
{
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : c - '0';
}

/* The text of header H ("Name: value\r\n", folded, maybe encoded words)
 * as a reader decodes it, into OUT. */
static void
decode_header(const char *h, char *out, size_t len)
{
	const char *p = strchr(h, ':') + 2, *end;
	size_t k = 0;

	while (*p != '\0' && k + 1 < len) {
		if (strncmp(p, "=?UTF-8?Q?", 10) == 0) {
			end = strstr(p + 10, "?=");
			assert_non_null(end);
			assert_true(end + 2 - p <= 75);
			for (p += 10; p < end; p++) {
				if (*p == '_')
					out[k++] = ' ';
				else if (*p == '=') {
					out[k++] = (char)(hexval(p[1]) * 16 +
					    hexval(p[2]));
					p += 2;
				} else
					out[k++] = *p;
			}
			p = end + 2;
			/* Blanks between encoded words are dropped. */
			if (strncmp(p, "\r\n =?", 5) == 0)
				p += 3;
		} else if (strncmp(p, "\r\n", 2) == 0) {
			p += 2; /* unfold: the blank after stays */
		} else
			out[k++] = *p++;
	}
	out[k] = '\0';
}

static void
test_header_plain(void **state)
{
	char *h;

	(void)state;
	h = email_header("Subject", "[watchpost] DOWN: api-home (refused)");
	assert_string_equal(h, "Subject: [watchpost] DOWN: api-home "
	    "(refused)\r\n");
	free(h);
	/* Runs of blanks and controls are one space; ends are trimmed. */
	h = email_header("Subject", "  a \t\t b  ");
	assert_string_equal(h, "Subject: a b\r\n");
	free(h);
	h = email_header("Subject", NULL);
	assert_string_equal(h, "Subject:\r\n");
	free(h);
}

static void
test_header_injection(void **state)
{
	static const char *const evil[] = {
		"api\r\nBcc: victim@example.org",
		"api\nBcc: victim@example.org",
		"api\rBcc: victim@example.org",
		"api\r\n\r\nbody text",
		"h\xc3\xb6st\r\nBcc: x@y",
	};
	char *h, dec[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		h = email_header("Subject", evil[i]);
		assert_non_null(h);
		assert_header_safe(h);
		assert_null(strstr(h, "\nBcc"));
		assert_null(strstr(h, "\r\n\r\n"));
		decode_header(h, dec, sizeof(dec));
		assert_null(strchr(dec, '\r'));
		assert_null(strchr(dec, '\n'));
		free(h);
	}
}

static void
test_header_encoded(void **state)
{
	char *h, dec[4096], big[2048];
	size_t i;

	(void)state;
	h = email_header("Subject", "[watchpost] DOWN: api-h\xc3\xb6me");
	assert_string_equal(h, "Subject: =?UTF-8?Q?[watchpost]_DOWN:_api-h=C3"
	    "=B6me?=\r\n");
	decode_header(h, dec, sizeof(dec));
	assert_string_equal(dec, "[watchpost] DOWN: api-h\xc3\xb6me");
	free(h);

	/* Long: many words, none splitting a character, each <= 75. */
	big[0] = '\0';
	for (i = 0; i < 150; i++)
		strcat(big, i % 3 ? "\xc3\xbc" : "\xe2\x82\xac");
	h = email_header("Subject", big);
	assert_header_safe(h);
	assert_non_null(strstr(h, "?=\r\n =?UTF-8?Q?"));
	assert_null(strstr(h, "=C3?="));
	assert_null(strstr(h, "=E2?="));
	assert_null(strstr(h, "=E2=82?="));
	decode_header(h, dec, sizeof(dec));
	assert_string_equal(dec, big);
	free(h);

	/* Invalid UTF-8 is U+FFFD; "=?" in plain text is encoded too. */
	h = email_header("Subject", "a\xff" "b");
	assert_string_equal(h, "Subject: =?UTF-8?Q?a=EF=BF=BDb?=\r\n");
	free(h);
	h = email_header("Subject", "=?UTF-8?Q?x?=");
	assert_non_null(strstr(h, "=3D=3FUTF-8=3FQ=3Fx=3F=3D"));
	free(h);
	/* An overlong '/' and a surrogate are invalid too. */
	h = email_header("Subject", "\xc0\xaf \xed\xa0\x80");
	assert_string_equal(h, "Subject: =?UTF-8?Q?=EF=BF=BD=EF=BF=BD_"
	    "=EF=BF=BD=EF=BF=BD=EF=BF=BD?=\r\n");
	free(h);
}

static void
test_header_fold(void **state)
{
	char *h, dec[1024], big[600];
	size_t i;

	(void)state;
	big[0] = '\0';
	for (i = 0; i < 40; i++)
		strcat(big, i ? " monitor-name" : "monitor-name");
	h = email_header("Subject", big);
	assert_header_safe(h);
	assert_non_null(strstr(h, "\r\n monitor-name"));
	decode_header(h, dec, sizeof(dec));
	assert_string_equal(dec, big);
	free(h);
	/* A word too long for a line: encoded words split it. */
	memset(big, 'x', 300);
	big[300] = '\0';
	h = email_header("Subject", big);
	assert_header_safe(h);
	decode_header(h, dec, sizeof(dec));
	assert_string_equal(dec, big);
	free(h);
}

static void
test_date(void **state)
{
	char d[40];

	(void)state;
	email_date(0, d, sizeof(d));
	assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
	email_date(1795342530123456LL, d, sizeof(d));
	assert_string_equal(d, "Sun, 22 Nov 2026 10:15:30 +0000");
}

static void
test_message_id(void **state)
{
	char *a, *b, *c;

	(void)state;
	a = email_message_id(42, 1, 1795342530123456LL, "mail", "probe-1",
	    "example.org");
	assert_string_equal(a, "<watchpost.42.1795342530123456.mail.probe-1@"
	    "example.org>");
	b = email_message_id(42, 1, 1795342530123456LL, "mail", "probe-1",
	    "example.org");
	assert_string_equal(a, b); /* a retry keeps it */
	free(b);
	b = email_message_id(43, 1, 1795342530123456LL, "mail", "probe-1",
	    "example.org");
	assert_string_not_equal(a, b);
	free(b);
	/* A batch; hostile parts reduced to atoms; no domain. */
	c = email_message_id(7, 12, 5, "m\r\n<x>@", NULL, "bad domain");
	assert_string_equal(c, "<watchpost.7+11.5.m---x--.x@"
	    "watchpost.invalid>");
	free(c);
	free(a);
}

static void
test_parse_addr(void **state)
{
	static const char *const bad[] = {
		"", "nobody", "a@", "@b", "a@@b", "a b@c", "a@b c",
		"a@b\r\nBcc: x@y", "x@y\n", "\"quoted\"@b", "a..b@c", ".a@b",
		"a@b.", "N <a@b", "N <a@b> x", "N <<a@b>>", "N > <a@b>",
		"\xc3\xa4@b", "a@b (comment)", "Na\"me <a@b>",
		"Ops, Team <a@b>", "a@b <c@d>", "N (x) <a@b>", "N; <a@b>",
	};
	char addr[EMAIL_ADDR_MAX], big[400];
	size_t i;

	(void)state;
	assert_null(email_parse_addr("ops@example.org", addr));
	assert_string_equal(addr, "ops@example.org");
	assert_null(email_parse_addr("Watchpost Bot <wp+a.b@mail.example>",
	    addr));
	assert_string_equal(addr, "wp+a.b@mail.example");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (email_parse_addr(bad[i], addr) == NULL)
			fail_msg("accepted \"%s\"", bad[i]);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[200] = '@';
	assert_non_null(email_parse_addr(big, addr));
}

/* Quoted-printable decoding, for round trips. */
static void
qp_decode(const char *s, char *out)
{
	size_t k = 0;

	while (*s != '\0') {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n')
			s += 3;
		else if (s[0] == '=') {
			out[k++] = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 3;
		} else
			out[k++] = *s++;
	}
	out[k] = '\0';
}

/* Every line of B ends in CRLF and holds at most MAX octets. */
static void
assert_lines(const char *b, size_t max)
{
	const char *p, *line = b;

	for (p = b; *p != '\0'; p++) {
		if (*p == '\n')
			fail_msg("bare LF");
		if (*p == '\r') {
			assert_int_equal(p[1], '\n');
			assert_true((size_t)(p - line) <= max);
			line = p + 2;
			p++;
		}
	}
	assert_true(line == p); /* ends with a line break */
}

static void
test_body(void **state)
{
	char *b, dec[8192], big[3000];
	const char *cte;

	(void)state;
	b = email_body("a\nb\rc\r\nd", &cte);
	assert_string_equal(cte, "7bit");
	assert_string_equal(b, "a\r\nb\r\nc\r\nd\r\n");
	free(b);
	b = email_body("x\x01y\x1b[0m\n", &cte);
	assert_string_equal(b, "x y [0m\r\n");
	free(b);
	b = email_body("", &cte);
	assert_string_equal(b, "\r\n");
	free(b);

	/* Non-ASCII: quoted-printable; '=' and a blank before a break are
	 * encoded; it decodes back. */
	b = email_body("h\xc3\xb6st = 1 \nnext\t\n", &cte);
	assert_string_equal(cte, "quoted-printable");
	assert_string_equal(b, "h=C3=B6st =3D 1=20\r\nnext=09\r\n");
	assert_lines(b, 76);
	qp_decode(b, dec);
	assert_string_equal(dec, "h\xc3\xb6st = 1 \r\nnext\t\r\n");
	free(b);

	/* A line over 998 octets is QP too, in lines of at most 76. */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[500] = '=';
	b = email_body(big, &cte);
	assert_string_equal(cte, "quoted-printable");
	assert_lines(b, 76);
	qp_decode(b, dec);
	assert_int_equal(strlen(dec), sizeof(big) + 1);
	assert_memory_equal(dec, big, sizeof(big) - 1);
	free(b);
}

static void
test_duration(void **state)
{
	char d[32];

	(void)state;
	email_duration(45000000, d, sizeof(d));
	assert_string_equal(d, "45s");
	email_duration(312000000, d, sizeof(d));
	assert_string_equal(d, "5m 12s");
	email_duration(INT64_C(11040) * 1000000, d, sizeof(d));
	assert_string_equal(d, "3h 4m");
	email_duration(INT64_C(176400) * 1000000, d, sizeof(d));
	assert_string_equal(d, "2d 1h");
	email_duration(-5, d, sizeof(d));
	assert_string_equal(d, "0s");
}

static void
test_subject(void **state)
{
	struct wp_alert d = sample(1, "api-home", "down");
	struct wp_alert u = sample(2, "api-home", "up");
	struct wp_alert g = sample(3, "db", "degraded");
	const struct wp_alert *one[1], *three[3];
	char *s, long_err[300];

	(void)state;
	one[0] = &d;
	s = email_default_subject(one, 1);
	assert_string_equal(s, "[watchpost] DOWN: api-home (connection "
	    "refused)");
	free(s);
	one[0] = &u;
	s = email_default_subject(one, 1);
	assert_string_equal(s, "[watchpost] UP: api-home (down for 5m 12s)");
	free(s);
	u.flags = WP_ALERT_TEST;
	s = email_default_subject(one, 1);
	assert_string_equal(s, "[watchpost] TEST: UP: api-home (down for "
	    "5m 12s)");
	free(s);
	u.flags = 0;
	d.repeat = 2;
	one[0] = &d;
	s = email_default_subject(one, 1);
	assert_string_equal(s, "[watchpost] STILL DOWN: api-home (connection "
	    "refused)");
	free(s);
	d.repeat = 0;
	/* A long error is cut on a character boundary. */
	memset(long_err, 'e', sizeof(long_err) - 1);
	long_err[sizeof(long_err) - 1] = '\0';
	memcpy(long_err + 75, "\xe2\x82\xac", 3);
	d.error = long_err;
	s = email_default_subject(one, 1);
	assert_non_null(strstr(s, "(eeee"));
	assert_non_null(strstr(s, "...)"));
	assert_null(strstr(s, "\xe2\x82..."));
	assert_true(strlen(s) < 140);
	free(s);
	d.error = "connection refused";

	three[0] = &d;
	three[1] = &d;
	three[2] = &d;
	s = email_default_subject(three, 3);
	assert_string_equal(s, "[watchpost] 3 monitors DOWN");
	free(s);
	three[1] = &u;
	three[2] = &g;
	s = email_default_subject(three, 3);
	assert_string_equal(s, "[watchpost] 3 monitors changed state: 1 DOWN, "
	    "1 DEGRADED, 1 UP");
	free(s);
}

static void
test_body_default(void **state)
{
	struct wp_alert d = sample(41, "api-home", "down");
	struct wp_alert u = sample(42, "web", "up");
	struct wp_alert old;
	const struct wp_alert *one[1] = { &d }, *two[2] = { &d, &u };
	char *b;

	(void)state;
	d.status_url = "https://status.example.org/m/api-home";
	b = email_default_body(one, 1);
	assert_non_null(strstr(b, "api-home is DOWN: connection refused\n"));
	assert_non_null(strstr(b, "Monitor:   api-home (http)\n"));
	assert_non_null(strstr(b, "State:     DOWN (was UP)\n"));
	assert_non_null(strstr(b, "Since:     2026-11-22 10:10:18 UTC\n"));
	assert_non_null(strstr(b, "For:       5m 12s\n"));
	assert_non_null(strstr(b, "Error:     connection refused\n"));
	assert_non_null(strstr(b, "Latency:   13 ms\n"));
	assert_non_null(strstr(b, "Target:    https://example.org/health\n"));
	assert_non_null(strstr(b, "Agent:     probe-1 (fra)\n"));
	assert_non_null(strstr(b, "Status:    https://status.example.org/m/"
	    "api-home\n"));
	assert_non_null(strstr(b, "Alert id:  41\n"));
	assert_null(strstr(b, "TEST"));
	free(b);

	d.flags = WP_ALERT_TEST;
	b = email_default_body(one, 1);
	assert_true(strncmp(b, "This is a TEST alert", 20) == 0);
	free(b);
	d.flags = 0;

	b = email_default_body(two, 2);
	assert_non_null(strstr(b, "2 monitors changed state:\n"));
	assert_non_null(strstr(b, "  - api-home is DOWN: connection "
	    "refused\n"));
	assert_non_null(strstr(b, "  - web is UP again after 5m 12s down\n"));
	assert_non_null(strstr(b, "Alert id:  41\n"));
	assert_non_null(strstr(b, "Alert id:  42\n"));
	free(b);

	/* An alert from a 2.0 host: none of the 2.1 fields is read. */
	old = d;
	old.size = offsetof(struct wp_alert, since_us);
	old.since_us = 1;
	old.target = (const char *)1; /* would crash if read */
	old.agent = (const char *)1;
	old.status_url = (const char *)1;
	old.location = (const char *)1;
	one[0] = &old;
	b = email_default_body(one, 1);
	assert_null(strstr(b, "Target:"));
	assert_null(strstr(b, "Since:"));
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_plain),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_header_encoded),
		cmocka_unit_test(test_header_fold),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_message_id),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_subject),
		cmocka_unit_test(test_body_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
