/*
 * The host's services on a real loop: clocks, microsecond timers, fd
 * watches on a pipe, the resolver (numeric names only: no network) and its
 * statuses in the WP_E* domain, resolve_cancel; and the one reason table
 * with its classes.
 */
#include "config.h"

#include <netdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "host.h"
#include "util.h"

static struct wp_host *host;

static void
no_complete(struct wp_op *op, const struct wp_result *res)
{
	(void)op;
	(void)res;
}

/* Run the loop until *flag is set, for at most 5 s. */
static void
spin_until(const int *flag)
{
	int64_t end = mono_us() + 5000000;

	while (!*flag && mono_us() < end)
		uv_run(main_loop, UV_RUN_ONCE);
}

/* The table is whole when made: complete() is the one given. */
static void
test_table(void **state)
{
	(void)state;
	assert_int_equal(host->size, sizeof(struct wp_host));
	assert_int_equal(host->abi_major, WP_ABI_MAJOR);
	assert_int_equal(host->abi_minor, WP_ABI_MINOR);
	assert_string_equal(host->plugin_name, "hosttest");
	assert_ptr_equal(host->complete, no_complete);
	assert_non_null(host->timer_set);
	assert_non_null(host->resolve);
}

/* wall_us is the unix epoch in microseconds; now_us never goes back. */
static void
test_clocks(void **state)
{
	time_t t0, t1;
	int64_t w, a, b;

	(void)state;
	t0 = time(NULL);
	w = host->wall_us();
	t1 = time(NULL);
	assert_true(w / 1000000 >= (int64_t)t0);
	assert_true(w / 1000000 <= (int64_t)t1);
	a = host->now_us();
	b = host->now_us();
	assert_true(b >= a);
}

struct tick {
	int fired;
	struct wp_timer *self;
	int free_in_cb;
};

static void
tick_cb(struct wp_timer *t, void *arg)
{
	struct tick *k = arg;

	assert_ptr_equal(t, k->self);
	k->fired++;
	if (k->free_in_cb)
		host->timer_free(t);
}

/* A delay in microseconds fires (1500 us: rounded up to the loop's 2 ms);
 * re-arming replaces the delay; us < 0 disarms; timer_free is safe in the
 * timer's own callback. */
static void
test_timers(void **state)
{
	struct tick a = { 0 }, b = { 0 }, last = { 0 };

	(void)state;
	a.self = host->timer_new(host, tick_cb, &a);
	b.self = host->timer_new(host, tick_cb, &b);
	last.self = host->timer_new(host, tick_cb, &last);
	assert_non_null(a.self);
	assert_int_equal(host->timer_set(a.self, 1500), WP_OK);
	spin_until(&a.fired);
	assert_int_equal(a.fired, 1);
	/* Re-arming replaces the delay: an hour becomes 1 ms. */
	a.fired = 0;
	assert_int_equal(host->timer_set(a.self, 3600000000LL), WP_OK);
	assert_int_equal(host->timer_set(a.self, 1000), WP_OK);
	spin_until(&a.fired);
	assert_int_equal(a.fired, 1);
	/* Disarmed: b never fires, though last (armed later, for longer)
	 * does. */
	assert_int_equal(host->timer_set(b.self, 1000), WP_OK);
	assert_int_equal(host->timer_set(b.self, -1), WP_OK);
	last.free_in_cb = 1;
	assert_int_equal(host->timer_set(last.self, 20000), WP_OK);
	spin_until(&last.fired);
	assert_int_equal(last.fired, 1);
	assert_int_equal(b.fired, 0);
	host->timer_free(a.self);
	host->timer_free(b.self);
	host->timer_free(NULL);
	uv_run(main_loop, UV_RUN_NOWAIT);
}

struct reader {
	int calls;
	unsigned revents;
	int unwatch_in_cb;
	struct wp_watch *w;
};

static void
read_cb(struct wp_watch *w, int fd, unsigned revents, void *arg)
{
	struct reader *r = arg;
	char c;

	assert_ptr_equal(w, r->w);
	r->calls++;
	r->revents = revents;
	assert_int_equal(read(fd, &c, 1), 1);
	if (r->unwatch_in_cb)
		host->unwatch(w);
}

/* A watch on a pipe reports it readable; watch_set(0) pauses it, a later
 * set resumes it; unwatch is safe in the watch's own callback. */
static void
test_watch_pipe(void **state)
{
	struct reader r = { 0 };
	struct tick guard = { 0 };
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	r.w = host->watch(host, fds[0], WP_READABLE, read_cb, &r);
	assert_non_null(r.w);
	assert_int_equal(write(fds[1], "a", 1), 1);
	spin_until(&r.calls);
	assert_int_equal(r.calls, 1);
	assert_true(r.revents & WP_READABLE);
	/* Paused: a byte waits while a 20 ms timer runs out. */
	assert_int_equal(host->watch_set(r.w, 0), WP_OK);
	assert_int_equal(write(fds[1], "b", 1), 1);
	guard.self = host->timer_new(host, tick_cb, &guard);
	guard.free_in_cb = 1;
	assert_int_equal(host->timer_set(guard.self, 20000), WP_OK);
	spin_until(&guard.fired);
	assert_int_equal(r.calls, 1);
	/* Resumed, and unwatched from inside the callback. */
	r.unwatch_in_cb = 1;
	assert_int_equal(host->watch_set(r.w, WP_READABLE), WP_OK);
	r.calls = 0;
	spin_until(&r.calls);
	assert_int_equal(r.calls, 1);
	uv_run(main_loop, UV_RUN_NOWAIT);
	close(fds[0]);
	close(fds[1]);
}

struct answer {
	int calls;
	int status;
	char err[256];
	int family;
};

static void
resolved(void *arg, int status, const char *err, const struct addrinfo *res)
{
	struct answer *a = arg;

	a->calls++;
	a->status = status;
	snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
	a->family = res != NULL ? res->ai_family : -1;
	if (status == 0)
		assert_null(err);
	else
		assert_null(res);
}

static struct addrinfo
numeric_hints(int family)
{
	struct addrinfo h;

	memset(&h, 0, sizeof(h));
	h.ai_family = family;
	h.ai_socktype = SOCK_STREAM;
	h.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	return h;
}

/* A numeric literal resolves, status 0 and no message. */
static void
test_resolve_literal(void **state)
{
	struct addrinfo hints = numeric_hints(AF_UNSPEC);
	struct answer a = { 0 };

	(void)state;
	assert_non_null(host->resolve(host, "127.0.0.1", "80", &hints,
	    resolved, &a));
	spin_until(&a.calls);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.family, AF_INET);
}

/* Resolver failures arrive in the WP_E* domain, with a human message: a
 * non-literal under AI_NUMERICHOST (no lookup is made) is WP_ENONAME; a
 * family the resolver does not offer, and flags it rejects, are
 * WP_ENOTSUP. */
static void
test_resolve_errors(void **state)
{
	struct addrinfo hints = numeric_hints(AF_UNSPEC);
	struct answer a = { 0 }, b = { 0 }, c = { 0 };

	(void)state;
	assert_non_null(host->resolve(host, "not-an-address.invalid", "80",
	    &hints, resolved, &a));
	spin_until(&a.calls);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, WP_ENONAME);
	assert_true(a.err[0] != '\0');
	hints = numeric_hints(AF_APPLETALK);
	assert_non_null(host->resolve(host, "127.0.0.1", "80", &hints,
	    resolved, &b));
	spin_until(&b.calls);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, WP_ENOTSUP);
	assert_true(b.err[0] != '\0');
	hints = numeric_hints(AF_UNSPEC);
	hints.ai_flags |= 0x40000000;
	assert_non_null(host->resolve(host, "127.0.0.1", "80", &hints,
	    resolved, &c));
	spin_until(&c.calls);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.status, WP_ENOTSUP);
}

/* After resolve_cancel the callback never runs, whether or not libuv had
 * started the lookup: run the loop until the request is gone. */
static void
test_resolve_cancel(void **state)
{
	struct addrinfo hints = numeric_hints(AF_UNSPEC);
	struct answer a[8];
	struct wp_resolve *r;
	int64_t end;
	int i;

	(void)state;
	memset(a, 0, sizeof(a));
	for (i = 0; i < 8; i++) {
		r = host->resolve(host, "127.0.0.1", "80", &hints, resolved,
		    &a[i]);
		assert_non_null(r);
		host->resolve_cancel(r);
	}
	host->resolve_cancel(NULL);
	/* The requests keep the loop alive until libuv is done with them
	 * (nothing else is active now). */
	end = mono_us() + 5000000;
	while (uv_loop_alive(main_loop) && mono_us() < end)
		uv_run(main_loop, UV_RUN_ONCE);
	assert_false(uv_loop_alive(main_loop));
	for (i = 0; i < 8; i++)
		assert_int_equal(a[i].calls, 0);
}

/* Each reason has one name and one class, in enum order; the three
 * degraded ones are new in 2.0; a reason outside the enum counts as the
 * plugin's failure (down). */
static void
test_reason_classes(void **state)
{
	static const char *const names[WP_REASON__COUNT] = {
		[WP_REASON_OK] = "ok", [WP_REASON_DNS] = "dns",
		[WP_REASON_REFUSED] = "refused",
		[WP_REASON_UNREACHABLE] = "unreachable",
		[WP_REASON_TIMEOUT] = "timeout",
		[WP_REASON_CONNECT] = "connect", [WP_REASON_TLS] = "tls",
		[WP_REASON_STATUS] = "status", [WP_REASON_KEYWORD] = "keyword",
		[WP_REASON_PROTOCOL] = "protocol", [WP_REASON_IO] = "io",
		[WP_REASON_CHECK] = "check", [WP_REASON_CANCELED] = "canceled",
		[WP_REASON_PLUGIN] = "plugin", [WP_REASON_SLOW] = "slow",
		[WP_REASON_CERT_EXPIRING] = "cert_expiry",
		[WP_REASON_WARNING] = "warning",
	};
	int i;

	(void)state;
	for (i = 0; i < WP_REASON__COUNT; i++) {
		int want = WP_CLASS_DOWN;

		if (i == WP_REASON_OK)
			want = WP_CLASS_UP;
		else if (i == WP_REASON_SLOW || i == WP_REASON_CERT_EXPIRING ||
		    i == WP_REASON_WARNING)
			want = WP_CLASS_DEGRADED;
		assert_int_equal(reason_class(i), want);
		assert_non_null(names[i]);
		assert_string_equal(reason_name(i), names[i]);
		assert_true(reason_desc(i)[0] != '\0');
	}
	assert_int_equal(reason_class(-1), WP_CLASS_DOWN);
	assert_int_equal(reason_class(WP_REASON__COUNT), WP_CLASS_DOWN);
	assert_string_equal(reason_name(WP_REASON__COUNT + 3), "plugin");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_watch_pipe),
		cmocka_unit_test(test_resolve_literal),
		cmocka_unit_test(test_resolve_errors),
		cmocka_unit_test(test_resolve_cancel),
		cmocka_unit_test(test_reason_classes),
	};
	int rc;

	if (host_loop_init() != 0)
		return 1;
	host = host_new("hosttest", no_complete);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	host_free(host);
	host_loop_close();
	return rc;
}
