/*
 * test-tcp -- the tcp check plugin against loopback listeners and a private
 * network namespace (see test-tcp-ping-netns.h).  Nothing leaves the box.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "mockhost.h"
#include "test-tcp-ping-netns.h"

static int in_netns;
static char netns_why[256];

/*
 * Open a TCP socket bound to ADDR (family FAM) on an ephemeral port; listen
 * with BACKLOG unless it is negative.  Returns the fd and sets *port, or -1.
 */
static int
bound_socket(int fam, const char *addr, int backlog, unsigned *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (fam == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	}
	fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 ||
	    (backlog >= 0 && listen(fd, backlog) != 0) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(fam == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* Configure host/port, run one check under TIMEOUT_MS, release. */
static void
run_check(const char *host, unsigned port, int64_t timeout_ms,
    struct mock_result *res)
{
	struct mock_plugin *mp = mock_plugin_load("tcp.so");
	char portbuf[16];
	const char *kv[] = { "host", host, "port", portbuf, NULL };
	void *inst = NULL;

	snprintf(portbuf, sizeof(portbuf), "%u", port);
	assert_int_equal(mock_configure(mp, "t", kv, timeout_ms, &inst), 0);
	assert_non_null(inst);
	mock_run(mp, inst, timeout_ms, NULL, res);
	mock_release(mp, inst);
	mock_plugin_unload(mp);
	assert_int_equal(res->start_rc, 0);
	assert_int_equal(res->completions, 1);
}

static void
test_descriptor(void **unused)
{
	struct mock_plugin *mp = mock_plugin_load("tcp.so");
	const struct wp_plugin *d = mock_plugin_desc(mp);

	(void)unused;
	assert_string_equal(d->name, "tcp");
	assert_int_equal(d->kind, WP_PLUGIN_CHECK);
	assert_non_null(d->start);
	assert_non_null(d->cancel);
	assert_int_equal(d->key_size, sizeof(struct wp_key));
	assert_string_equal(d->keys[0].name, "host");
	assert_true(d->keys[0].flags & WP_KEY_REQUIRED);
	assert_string_equal(d->keys[1].name, "port");
	assert_true(d->keys[1].flags & WP_KEY_REQUIRED);
	assert_int_equal(d->n_keys, 7);
	mock_plugin_unload(mp);
}

static void
test_ok_ipv4(void **unused)
{
	struct mock_result res;
	unsigned port;
	int lfd = bound_socket(AF_INET, "127.0.0.1", 16, &port);

	(void)unused;
	assert_true(lfd >= 0);
	run_check("127.0.0.1", port, 2000, &res);
	close(lfd);
	assert_int_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.timed_out, 0);
	assert_true(res.r.latency_us > 0);
	assert_true(res.r.latency_us < 2000000);
	assert_true(res.r.connect_us >= res.r.latency_us);
	assert_true(res.r.dns_us < 0); /* numeric: no resolver */
	assert_null(res.r.detail);
}

static void
test_ok_ipv6(void **unused)
{
	struct mock_result res;
	unsigned port;
	int lfd = bound_socket(AF_INET6, "::1", 16, &port);

	(void)unused;
	if (lfd < 0) {
		print_message("skipped: no IPv6 loopback here (%s)\n",
		    strerror(errno));
		skip();
	}
	run_check("::1", port, 2000, &res);
	close(lfd);
	assert_int_equal(res.r.reason, WP_REASON_OK);
	assert_true(res.r.latency_us > 0);

	lfd = bound_socket(AF_INET6, "::1", 16, &port);
	assert_true(lfd >= 0);
	run_check("[::1]", port, 2000, &res);
	close(lfd);
	assert_int_equal(res.r.reason, WP_REASON_OK);
}

/* "localhost" goes through host->resolve; whichever of ::1 and 127.0.0.1
 * comes first, the plugin must reach the IPv4 listener. */
static void
test_ok_name(void **unused)
{
	struct mock_result res;
	unsigned port;
	int lfd = bound_socket(AF_INET, "127.0.0.1", 16, &port);

	(void)unused;
	assert_true(lfd >= 0);
	if (!localhost_resolves()) {
		close(lfd);
		print_message("skipped: this machine cannot resolve localhost "
		    "(no /etc/hosts)\n");
		skip();
	}
	run_check("localhost", port, 3000, &res);
	close(lfd);
	assert_int_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.r.reason, WP_REASON_OK);
	assert_true(res.r.dns_us >= 0);
	assert_true(res.r.latency_us > 0);
}

static void
test_refused(void **unused)
{
	struct mock_result res;
	unsigned port;
	/* bound, not listening: the port stays ours and answers RST */
	int fd = bound_socket(AF_INET, "127.0.0.1", -1, &port);

	(void)unused;
	assert_true(fd >= 0);
	run_check("127.0.0.1", port, 2000, &res);
	close(fd);
	assert_int_not_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.r.reason, WP_REASON_REFUSED);
	assert_int_equal(res.timed_out, 0);
	assert_non_null(res.r.detail);
	assert_non_null(strstr(res.r.detail, "refused"));
}

static void
check_timeout(const struct mock_result *res, const char *want)
{
	assert_int_equal(res->timed_out, 1);
	assert_int_not_equal(res->r.reason, WP_REASON_OK);
	assert_int_equal(res->r.reason, WP_REASON_TIMEOUT);
	assert_non_null(res->r.detail);
	assert_string_equal(res->r.detail, want);
	/* cancelled at 300 ms; allow a noisy machine a few hundred ms */
	assert_true(res->elapsed_ms >= 290.0);
	assert_true(res->elapsed_ms < 900.0);
}

/* A peer that drops SYNs: TEST-NET-1 routed into lo in our namespace. */
static void
test_timeout_silent(void **unused)
{
	struct mock_result res;

	(void)unused;
	if (!in_netns) {
		print_message("skipped: no private network namespace (%s)\n",
		    netns_why);
		skip();
	}
	run_check(NETNS_SILENT, 80, 300, &res);
	check_timeout(&res, "no answer to connect within 0.3s");
}

/*
 * A loopback listener with backlog 0 whose accept queue is full: Linux drops
 * further SYNs, so the connect never completes.
 */
static void
test_timeout_full_backlog(void **unused)
{
	struct sockaddr_in sin;
	struct mock_result res;
	unsigned port;
	int lfd, c[8], n = 0, i, filled = 0;

	(void)unused;
	lfd = bound_socket(AF_INET, "127.0.0.1", 0, &port);
	assert_true(lfd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	for (n = 0; n < 8 && !filled; n++) {
		c[n] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(c[n] >= 0);
		if (connect(c[n], (struct sockaddr *)&sin, sizeof(sin)) != 0 &&
		    errno == EINPROGRESS) {
			/* give the handshake a moment: in progress after that
			 * means the SYN was dropped */
			usleep(50000);
			if (connect(c[n], (struct sockaddr *)&sin,
			    sizeof(sin)) != 0 && errno == EALREADY)
				filled = 1;
		}
	}
	if (!filled) {
		for (i = 0; i < n; i++)
			close(c[i]);
		close(lfd);
		print_message("skipped: could not fill the accept queue\n");
		skip();
	}
	run_check("127.0.0.1", port, 300, &res);
	for (i = 0; i < n; i++)
		close(c[i]);
	close(lfd);
	check_timeout(&res, "no answer to connect within 0.3s");
}

static void
test_unreachable(void **unused)
{
	struct mock_result res;

	(void)unused;
	if (!in_netns) {
		print_message("skipped: no private network namespace (%s)\n",
		    netns_why);
		skip();
	}
	run_check(NETNS_UNREACH, 80, 2000, &res);
	assert_int_not_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.r.reason, WP_REASON_UNREACHABLE);
	assert_int_equal(res.timed_out, 0);
}

/* Only inside our namespace: elsewhere the lookup could leave the box. */
static void
test_dns_failure(void **unused)
{
	struct mock_result res;

	(void)unused;
	if (!in_netns) {
		print_message("skipped: no private network namespace (%s)\n",
		    netns_why);
		skip();
	}
	run_check("no-such-host.invalid", 80, 5000, &res);
	assert_int_not_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.r.reason, WP_REASON_DNS);
	assert_int_equal(res.timed_out, 0);
	assert_non_null(strstr(res.r.detail, "no-such-host.invalid"));
}

/* configure() must reject KV and name line LINE in its message. */
static void
expect_config_error(const char *const *kv, const char *want)
{
	struct mock_plugin *mp = mock_plugin_load("tcp.so");
	void *inst = NULL;

	assert_int_equal(mock_configure(mp, "t", kv, 1000, &inst), WP_EINVAL);
	if (strstr(mock_errors(mp), want) == NULL)
		fail_msg("errors '%s' lack '%s'", mock_errors(mp), want);
	mock_plugin_unload(mp);
}

static void
test_config_errors(void **unused)
{
	static const char *const no_host[] = { "port", "80", NULL };
	static const char *const no_port[] = { "host", "127.0.0.1", NULL };
	static const char *const port0[] = { "host", "a", "port", "0", NULL };
	static const char *const port70k[] = { "host", "a", "port", "70000",
	    NULL };
	static const char *const portabc[] = { "host", "a", "port", "abc",
	    NULL };
	static const char *const portneg[] = { "port", "-1", "host", "a",
	    NULL };
	static const char *const emptyhost[] = { "host", "", "port", "1",
	    NULL };
	static const char *const good[] = { "host", "example.invalid",
	    "port", "65535", NULL };
	struct mock_plugin *mp;
	void *inst = NULL;

	(void)unused;
	/* The host's key parser reports these, before configure(). */
	expect_config_error(no_host, "mock.ini: the section is missing the "
	    "required key \"host\"");
	expect_config_error(no_port, "mock.ini: the section is missing the "
	    "required key \"port\"");
	expect_config_error(port0, "mock.ini:2: port: \"0\" is not a whole "
	    "number from 1 to 65535");
	expect_config_error(port70k, "mock.ini:2: port: \"70000\" is not a "
	    "whole number from 1 to 65535");
	expect_config_error(portabc, "mock.ini:2: port: \"abc\" is not a "
	    "whole number from 1 to 65535");
	expect_config_error(portneg, "mock.ini:1: port:");
	expect_config_error(emptyhost, "mock.ini:1: host: no value");

	mp = mock_plugin_load("tcp.so");
	assert_int_equal(mock_configure(mp, "t", good, 1000, &inst), 0);
	assert_non_null(inst);
	assert_string_equal(mock_errors(mp), "");
	mock_release(mp, inst);
	mock_plugin_unload(mp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_ok_ipv4),
		cmocka_unit_test(test_ok_ipv6),
		cmocka_unit_test(test_ok_name),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_dns_failure),
		cmocka_unit_test(test_timeout_silent),
		cmocka_unit_test(test_timeout_full_backlog),
	};

	in_netns = netns_enter(netns_why, sizeof(netns_why));
	if (!in_netns)
		fprintf(stderr, "test-tcp: no private network namespace (%s); "
		    "the tests that need one are skipped\n", netns_why);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
