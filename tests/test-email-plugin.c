/*
 * test-email-plugin -- alert-email.so under the mock host against
 * tests/smtpsink.py (aiosmtpd) on loopback, for what the daemon cannot
 * produce today: hostile monitor names and errors (CR, LF, a blank line)
 * must not add a header or a recipient; a group_window batch is one mail
 * listing every monitor; a test alert says so; a retry keeps its
 * Message-ID; an alert from a 2.0 host still makes a mail; a refused
 * connection is one failed completion.
 */
#include "config.h"

#include <dirent.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mockhost.h"

extern char **environ;

static struct mock_plugin *mp;
static char dir[512], url[64];
static pid_t sink = -1;
static int n_mails; /* mails the sink has written so far */

static struct wp_alert
sample(uint64_t id, const char *monitor, const char *state)
{
	struct wp_alert a = {
		.size = sizeof(struct wp_alert),
		.id = id,
		.monitor = monitor,
		.type = "http",
		.state = state,
		.previous_state = "up",
		.timestamp_us = 1795342530123456LL,
		.error = "connection refused",
		.reason = "refused",
		.latency_us = -1,
		.since_us = 1795342530123456LL,
		.target = "https://example.org/health",
	};
	return a;
}

/* Start smtpsink writing to DIR/mail; read its "PORT n" line. */
static int
sink_start(void)
{
	const char *src = getenv("abs_top_srcdir");
	char script[4096], out[600], line[64];
	const char *argv[] = { "/usr/bin/python3", script, "--dir", out,
		NULL };
	posix_spawn_file_actions_t fa;
	struct pollfd pfd;
	size_t n = 0;
	int fds[2], port = 0;
	ssize_t r;

	if (src == NULL || pipe(fds) != 0)
		return -1;
	snprintf(script, sizeof(script), "%s/tests/smtpsink.py", src);
	snprintf(out, sizeof(out), "%s/mail", dir);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	if (posix_spawn(&sink, argv[0], &fa, NULL, (char *const *)argv,
	    environ) != 0)
		sink = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	line[0] = '\0';
	while (sink > 0 && n < sizeof(line) - 1 &&
	    memchr(line, '\n', n) == NULL && poll(&pfd, 1, 15000) == 1 &&
	    (r = read(fds[0], line + n, sizeof(line) - 1 - n)) > 0) {
		n += (size_t)r;
		line[n] = '\0';
	}
	close(fds[0]);
	if (sscanf(line, "PORT %d", &port) != 1 || port <= 0)
		return -1;
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	return 0;
}

static int
group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/wp-email-XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	setenv("MOCK_QUIET", "1", 1);
	signal(SIGPIPE, SIG_IGN);
	if (sink_start() != 0)
		return -1;
	mp = mock_plugin_load("alert-email.so");
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[600];

	(void)state;
	mock_plugin_unload(mp);
	if (sink > 0) {
		kill(sink, SIGTERM);
		waitpid(sink, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Deliver the batch A[0..N) through a section of KV (plus the sink's
 * URL, tls = off); the result in *OUT. */
static void
deliver(const char *const *kv, const struct wp_alert *const *a, size_t n,
    struct mock_result *out)
{
	const char *all[32];
	void *inst = NULL;
	size_t k = 0;

	all[k++] = "smtp_url";
	all[k++] = url;
	all[k++] = "tls";
	all[k++] = "off";
	while (*kv != NULL && k < 30)
		all[k++] = *kv++;
	all[k] = NULL;
	if (mock_configure(mp, "mail", all, 10000, &inst) != 0)
		fail_msg("configure: %s", mock_errors(mp));
	if (n > 1)
		mock_set_batch(mp, a, n);
	mock_run(mp, inst, 10000, a[0], out);
	mock_set_batch(mp, NULL, 0);
	mock_release(mp, inst);
	assert_int_equal(out->start_rc, 0);
	assert_int_equal(out->completions, 1);
}

static const char *const base[] = { "from", "Watchpost <wp@example.org>",
	"to", "ops@example.org", NULL };

/*
 * The next mail the sink wrote (its NNNN.eml file, waited for up to 10 s
 * after the delivery completed), as a malloc()ed string.
 */
static char *
next_mail(void)
{
	char path[700], *buf;
	FILE *f;
	long len;
	int i;

	snprintf(path, sizeof(path), "%s/mail/%04d.eml", dir, ++n_mails);
	for (i = 0; i < 100 && access(path, R_OK) != 0; i++)
		usleep(100000);
	assert_non_null(f = fopen(path, "rb"));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	assert_non_null(buf = calloc(1, (size_t)len + 1));
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

/* The names of MAIL's header fields, in order, space-separated, into OUT;
 * asserts every line of the header ends in CRLF. */
static void
header_names(const char *mail, char *out, size_t len)
{
	const char *p = mail, *eol, *colon;
	size_t k = 0;

	out[0] = '\0';
	while (strncmp(p, "\r\n", 2) != 0) {
		assert_non_null(eol = strstr(p, "\r\n"));
		assert_null(memchr(p, '\n', (size_t)(eol - p)));
		assert_null(memchr(p, '\r', (size_t)(eol - p)));
		if (*p != ' ' && *p != '\t') {
			assert_non_null(colon = memchr(p, ':',
			    (size_t)(eol - p)));
			k += (size_t)snprintf(out + k, len - k, "%s%.*s",
			    k ? " " : "", (int)(colon - p), p);
		}
		p = eol + 2;
	}
}

/* The value of header NAME in MAIL (its first line), into OUT. */
static void
header(const char *mail, const char *name, char *out, size_t len)
{
	char pat[64];
	const char *p, *eol;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	if (strncmp(mail, pat + 2, strlen(pat) - 2) == 0)
		p = mail + strlen(pat) - 2;
	else {
		assert_non_null(p = strstr(mail, pat));
		p += strlen(pat);
	}
	eol = strstr(p, "\r\n");
	snprintf(out, len, "%.*s", (int)(eol - p), p);
}

static const char expected_headers[] = "Date From To Subject Message-ID "
    "X-Watchpost-Alert-Id Auto-Submitted MIME-Version Content-Type "
    "Content-Transfer-Encoding";

static void
test_hostile(void **state)
{
	struct wp_alert a = sample(7, "api\r\nBcc: victim@example.org",
	    "down");
	const struct wp_alert *one[1] = { &a };
	struct mock_result r;
	char names[512], rcpt[700], *m, *body;
	FILE *f;

	(void)state;
	a.error = "refused\r\n\r\nInjected-Body: yes\nBcc: x@example.org";
	a.target = "http://x/\r\nTo: victim@example.org";
	deliver(base, one, 1, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	m = next_mail();
	header_names(m, names, sizeof(names));
	assert_string_equal(names, expected_headers);
	/* The text is still there, in the body, as text. */
	assert_non_null(body = strstr(m, "\r\n\r\n"));
	assert_non_null(strstr(body, "Injected-Body: yes"));
	free(m);
	/* The envelope has the configured recipient only. */
	snprintf(rcpt, sizeof(rcpt), "%s/mail/messages.jsonl", dir);
	assert_non_null(f = fopen(rcpt, "r"));
	while (fgets(rcpt, sizeof(rcpt), f) != NULL)
		;
	fclose(f);
	assert_non_null(strstr(rcpt, "\"rcpt_tos\": [\"ops@example.org\"]"));
}

static void
test_batch(void **state)
{
	struct wp_alert a = sample(20, "web-1", "down");
	struct wp_alert b = sample(21, "web-2", "down");
	struct wp_alert c = sample(22, "web-3", "down");
	const struct wp_alert *three[3] = { &a, &b, &c };
	struct mock_result r;
	char v[256], *m;

	(void)state;
	deliver(base, three, 3, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	m = next_mail();
	header(m, "Subject", v, sizeof(v));
	assert_string_equal(v, "[watchpost] 3 monitors DOWN");
	header(m, "Message-ID", v, sizeof(v));
	assert_true(strncmp(v, "<watchpost.20+2.", 16) == 0);
	assert_non_null(strstr(m, "  - web-1 is DOWN: connection refused\r\n"));
	assert_non_null(strstr(m, "  - web-2 is DOWN: connection refused\r\n"));
	assert_non_null(strstr(m, "  - web-3 is DOWN: connection refused\r\n"));
	assert_non_null(strstr(m, "Alert id:  22\r\n"));
	free(m);

	/* A template renders the batch too. */
	{
		const char *kv[] = { "from", "wp@example.org", "to",
			"ops@example.org", "subject_template",
			"{{count}} changes", "body_template",
			"{{#alerts}}{{monitor}}={{state}}{{|}}, {{/alerts}}",
			NULL };

		deliver(kv, three, 3, &r);
		assert_int_equal(r.r.reason, WP_REASON_OK);
		m = next_mail();
		header(m, "Subject", v, sizeof(v));
		assert_string_equal(v, "3 changes");
		assert_non_null(strstr(m, "\r\n\r\nweb-1=down, web-2=down, "
		    "web-3=down\r\n"));
		free(m);
	}
}

static void
test_test_alert_and_retry(void **state)
{
	struct wp_alert a = sample(30, "api-home", "down");
	const struct wp_alert *one[1] = { &a };
	struct mock_result r;
	char id1[128], id2[128], v[256], *m;

	(void)state;
	a.flags = WP_ALERT_TEST;
	deliver(base, one, 1, &r);
	m = next_mail();
	header(m, "Subject", v, sizeof(v));
	assert_string_equal(v, "[watchpost] TEST: DOWN: api-home (connection "
	    "refused)");
	assert_non_null(strstr(m, "\r\n\r\nThis is a TEST alert"));
	header(m, "Message-ID", id1, sizeof(id1));
	free(m);
	/* The same alert again (a retry): the same Message-ID. */
	a.attempt = 1;
	deliver(base, one, 1, &r);
	m = next_mail();
	header(m, "Message-ID", id2, sizeof(id2));
	assert_string_equal(id1, id2);
	free(m);
}

static void
test_old_host(void **state)
{
	struct wp_alert a = sample(40, "api-home", "up");
	const struct wp_alert *one[1] = { &a };
	struct mock_result r;
	char names[512], *m;

	(void)state;
	/* A 2.0 host's alert ends at `attempt`: nothing after it is read. */
	a.size = offsetof(struct wp_alert, since_us);
	a.target = (const char *)1;
	a.agent = (const char *)1;
	a.status_url = (const char *)1;
	deliver(base, one, 1, &r);
	assert_int_equal(r.r.reason, WP_REASON_OK);
	m = next_mail();
	header_names(m, names, sizeof(names));
	assert_string_equal(names, expected_headers);
	assert_non_null(strstr(m, "Subject: [watchpost] UP: api-home\r\n"));
	free(m);
}

static void
test_refused(void **state)
{
	struct wp_alert a = sample(50, "api-home", "down");
	const char *kv[] = { "smtp_url", "smtp://127.0.0.1:1", "tls", "off",
		"from", "wp@example.org", "to", "ops@example.org", NULL };
	struct mock_result r;
	void *inst = NULL;

	(void)state;
	assert_int_equal(mock_configure(mp, "mail", kv, 5000, &inst), 0);
	mock_run(mp, inst, 5000, &a, &r);
	mock_release(mp, inst);
	assert_int_equal(r.completions, 1);
	assert_int_equal(r.r.reason, WP_REASON_REFUSED);
	assert_string_equal(r.detail, "connection refused");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_test_alert_and_retry),
		cmocka_unit_test(test_old_host),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
