/*
 * test-http -- http.so against tests/testhttpd on loopback, through the
 * mock host.  One plain, one TLS and one hostile (--raw) server run for
 * the whole file.
 */
#include "config.h"

#include <dirent.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mockhost.h"
#include "testhttpd-spawn.h"

static struct mock_plugin *mp;
static struct server plain, tls, raw;

static const char *
url_for(const struct server *s, int https, const char *path)
{
	static char buf[16][512];
	static int k;

	k = (k + 1) % 16;
	snprintf(buf[k], sizeof(buf[k]), "%s://127.0.0.1:%d%s",
	    https ? "https" : "http", s->port, path);
	return buf[k];
}

/* Configure KV, run one check under TIMEOUT_MS, release. */
static void
run(const char *const *kv, int64_t timeout_ms, struct mock_result *out)
{
	void *inst = NULL;

	assert_int_equal(mock_configure(mp, "t", kv, timeout_ms, &inst), 0);
	mock_run(mp, inst, timeout_ms, NULL, out);
	mock_release(mp, inst);
	assert_int_equal(out->start_rc, 0);
	assert_int_equal(out->completions, 1);
}

static void
expect_ok(const struct mock_result *r)
{
	if (r->r.reason != WP_REASON_OK)
		fprintf(stderr, "unexpected failure: %s\n", r->detail);
	assert_int_equal(r->r.reason, WP_REASON_OK);
	assert_int_equal(r->r.reason, 0);
	assert_null(r->r.detail);
}

static void
expect_fail(const struct mock_result *r, int reason, const char *detail)
{
	if (r->r.reason != reason || strstr(r->detail, detail) == NULL)
		fprintf(stderr, "want reason %d \"%s\", got reason %d "
		    "\"%s\"\n", reason, detail, r->r.reason, r->detail);
	assert_int_not_equal(r->r.reason, WP_REASON_OK);
	assert_int_equal(r->r.reason, reason);
	assert_non_null(strstr(r->detail, detail));
}

static int
group_setup(void **state)
{
	const char *src = getenv("abs_top_srcdir");
	static char cert[4096], key[4096];
	const char *targs[] = { "--tls", cert, key, NULL };
	const char *rargs[] = { "--raw", NULL };

	(void)state;
	if (src == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/tests/data/test-cert.pem", src);
	snprintf(key, sizeof(key), "%s/tests/data/test-key.pem", src);
	setenv("MOCK_QUIET", "1", 1);
	signal(SIGPIPE, SIG_IGN);
	server_start(&plain, NULL);
	server_start(&tls, targs);
	server_start(&raw, rargs);
	mp = mock_plugin_load("http.so");
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	mock_plugin_unload(mp);
	server_stop(&plain);
	server_stop(&tls);
	server_stop(&raw);
	return 0;
}

/* Entry I of the plugin's key table, walked with its stride. */
static const struct wp_key *
key_at(const struct wp_plugin *d, size_t i)
{
	return (const void *)((const char *)d->keys + i * d->key_size);
}

static void
test_descriptor(void **state)
{
	const struct wp_plugin *d = mock_plugin_desc(mp);
	const char *want[] = { "url", "method", "expected_status", "keyword",
		"keyword_absent", "header", "body", "follow_redirects",
		"verify_tls" };
	size_t i, j;

	(void)state;
	assert_string_equal(d->name, "http");
	assert_int_equal(d->kind, WP_PLUGIN_CHECK);
	assert_non_null(d->start);
	assert_non_null(d->cancel);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		for (j = 0; j < d->n_keys; j++)
			if (strcmp(key_at(d, j)->name, want[i]) == 0)
				break;
		assert_true(j < d->n_keys);
		if (strcmp(want[i], "url") == 0)
			assert_true(key_at(d, j)->flags & WP_KEY_REQUIRED);
		if (strcmp(want[i], "header") == 0)
			assert_true(key_at(d, j)->flags & WP_KEY_MULTI);
	}
}

static void
test_expected_status(void **state)
{
	static const struct {
		const char *expect; /* NULL: the default */
		const char *path;
		int ok;
		const char *detail;
	} t[] = {
		{ NULL, "/status/200", 1, NULL },
		{ NULL, "/status/204", 1, NULL },
		{ NULL, "/status/503", 0, "HTTP 503, expected 200-299" },
		{ "200", "/status/200", 1, NULL },
		{ "200", "/status/201", 0, "HTTP 201, expected 200" },
		{ "200-299", "/status/299", 1, NULL },
		{ "200-299", "/status/404", 0, "HTTP 404, expected 200-299" },
		{ "200,301", "/status/301", 1, NULL },
		{ "200,301", "/status/302", 0, "HTTP 302, expected 200,301" },
		{ "200-204,301", "/status/204", 1, NULL },
		{ "200-204,301", "/status/205", 0,
		    "HTTP 205, expected 200-204,301" },
		{ "200-204,301", "/status/301", 1, NULL },
		{ "500", "/status/500", 1, NULL },
	};
	struct mock_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *kv[] = { "url", url_for(&plain, 0, t[i].path),
			"follow_redirects", "false",
			t[i].expect ? "expected_status" : NULL, t[i].expect,
			NULL };
		run(kv, 5000, &r);
		if (t[i].ok)
			expect_ok(&r);
		else
			expect_fail(&r, WP_REASON_STATUS, t[i].detail);
		assert_int_equal(r.r.status_code,
		    atoi(t[i].path + strlen("/status/")));
	}
}

static void
test_keyword(void **state)
{
	const char *u = url_for(&plain, 0, "/body/hello-world");
	const char *present[] = { "url", u, "keyword", "lo-wo", NULL };
	const char *missing[] = { "url", u, "keyword", "absent", NULL };
	const char *avoid_hit[] = { "url", u, "keyword_absent", "world", NULL };
	const char *avoid_miss[] = { "url", u, "keyword_absent", "zzz", NULL };
	const char *both[] = { "url", u, "keyword", "hello",
		"keyword_absent", "zzz", NULL };
	struct mock_result r;

	(void)state;
	run(present, 5000, &r);
	expect_ok(&r);
	run(missing, 5000, &r);
	expect_fail(&r, WP_REASON_KEYWORD,
	    "keyword \"absent\" not found in first 11 bytes");
	run(avoid_hit, 5000, &r);
	expect_fail(&r, WP_REASON_KEYWORD, "keyword_absent \"world\" found");
	run(avoid_miss, 5000, &r);
	expect_ok(&r);
	run(both, 5000, &r);
	expect_ok(&r);
}

/* The server sends "abcHEL", waits, then "LOxyz": HELLO spans two reads. */
static void
test_keyword_across_chunks(void **state)
{
	const char *u = url_for(&plain, 0, "/split?a=abcHEL&b=LOxyz&ms=150");
	const char *want[] = { "url", u, "keyword", "HELLO", NULL };
	const char *avoid[] = { "url", u, "keyword_absent", "cHELLOx", NULL };
	const char *miss[] = { "url", u, "keyword", "HELO", NULL };
	struct mock_result r;

	(void)state;
	run(want, 5000, &r);
	expect_ok(&r);
	run(avoid, 5000, &r);
	expect_fail(&r, WP_REASON_KEYWORD, "keyword_absent \"cHELLOx\" found");
	run(miss, 5000, &r);
	expect_fail(&r, WP_REASON_KEYWORD,
	    "keyword \"HELO\" not found in first 11 bytes");
}

static void
test_head(void **state)
{
	const char *ok[] = { "url", url_for(&plain, 0, "/status/200"),
		"method", "HEAD", NULL };
	/* HEAD never reads a body, even where GET would read forever. */
	const char *big[] = { "url", url_for(&plain, 0, "/big"),
		"method", "HEAD", NULL };
	const char *bad[] = { "url", url_for(&plain, 0, "/status/500"),
		"method", "HEAD", NULL };
	struct mock_result r;

	(void)state;
	run(ok, 5000, &r);
	expect_ok(&r);
	assert_int_equal(r.r.status_code, 200);
	run(big, 5000, &r);
	expect_ok(&r);
	assert_int_equal(r.timed_out, 0);
	run(bad, 5000, &r);
	expect_fail(&r, WP_REASON_STATUS, "HTTP 500");
}

static void
test_method_body_headers(void **state)
{
	const char *echo[] = { "url", url_for(&plain, 0, "/echo"),
		"method", "PUT", "body", "payload-123",
		"keyword", "payload-123", NULL };
	const char *post[] = { "url", url_for(&plain, 0, "/echo"),
		"body", "{\"a\":1}", "keyword", "{\"a\":1}", NULL };
	const char *hdr[] = { "url", url_for(&plain, 0,
		"/require-header?name=X-Token&value=s3cret"),
		"header", "X-Token: s3cret", "header", "X-Other: 1", NULL };
	const char *nohdr[] = { "url", url_for(&plain, 0,
		"/require-header?name=X-Token&value=s3cret"), NULL };
	const char *ua[] = { "url", url_for(&plain, 0, "/headers"),
		"keyword", "User-Agent: watchpost/" PACKAGE_VERSION, NULL };
	struct mock_result r;

	(void)state;
	run(echo, 5000, &r);
	expect_ok(&r);
	run(post, 5000, &r);
	expect_ok(&r);
	run(hdr, 5000, &r);
	expect_ok(&r);
	run(nohdr, 5000, &r);
	expect_fail(&r, WP_REASON_STATUS, "HTTP 412");
	assert_null(strstr(r.detail, "s3cret"));
	run(ua, 5000, &r);
	expect_ok(&r);
}

static void
test_redirects(void **state)
{
	const char *follow[] = { "url", url_for(&plain, 0, "/redirect/3"),
		NULL };
	const char *nofollow[] = { "url", url_for(&plain, 0, "/redirect/3"),
		"follow_redirects", "false", NULL };
	const char *ten[] = { "url", url_for(&plain, 0, "/redirect/10"),
		NULL };
	const char *eleven[] = { "url", url_for(&plain, 0, "/redirect/11"),
		NULL };
	const char *loop[] = { "url", url_for(&plain, 0, "/loop"), NULL };
	struct mock_result r;

	(void)state;
	run(follow, 5000, &r);
	expect_ok(&r);
	assert_int_equal(r.r.status_code, 200);
	run(nofollow, 5000, &r);
	expect_fail(&r, WP_REASON_STATUS, "HTTP 302, expected 200-299");
	run(ten, 5000, &r);
	expect_ok(&r);
	run(eleven, 5000, &r);
	expect_fail(&r, WP_REASON_PROTOCOL, "redirect");
	run(loop, 5000, &r);
	expect_fail(&r, WP_REASON_PROTOCOL, "redirect loop");
}

static void
test_tls(void **state)
{
	const char *u = url_for(&tls, 1, "/status/200");
	const char *verify[] = { "url", u, NULL };
	const char *noverify[] = { "url", u, "verify_tls", "false",
		"keyword", "status 200", NULL };
	struct mock_result r;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	run(verify, 5000, &r);
	expect_fail(&r, WP_REASON_TLS, "TLS certificate verification failed");
	assert_null(strstr(r.detail, "127.0.0.1"));
	run(noverify, 5000, &r);
	expect_ok(&r);
	assert_int_equal(r.r.status_code, 200);
	/* The test certificate is valid for about 100 years. */
	assert_true(r.r.cert_expiry > now + 50LL * 365 * 86400);
	assert_true(r.r.cert_expiry < now + 101LL * 366 * 86400);
	assert_true(r.r.tls_us >= r.r.connect_us);
	assert_true(r.r.first_byte_us >= r.r.tls_us);
}

static void
test_plain_has_no_cert(void **state)
{
	const char *kv[] = { "url", url_for(&plain, 0, "/slow?ms=50"), NULL };
	struct mock_result r;

	(void)state;
	run(kv, 5000, &r);
	expect_ok(&r);
	assert_int_equal(r.r.cert_expiry, 0);
	assert_true(r.r.tls_us < 0);
	assert_true(r.r.latency_us >= 40000);
	assert_true(r.r.first_byte_us >= 40000);
	assert_true(r.r.connect_us > 0);
	assert_true(r.r.latency_us >= r.r.first_byte_us);
}

static void
test_refused(void **state)
{
	char u[128];
	const char *kv[] = { "url", u, NULL };
	struct mock_result r;

	(void)state;
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/", closed_port());
	run(kv, 5000, &r);
	expect_fail(&r, WP_REASON_REFUSED, "connection refused");
	assert_int_equal(r.r.status_code, -1);
	assert_int_equal(r.timed_out, 0);
}

static void
test_hang_timeout(void **state)
{
	const char *kv[] = { "url", url_for(&plain, 0, "/hang"), NULL };
	struct mock_result r;

	(void)state;
	run(kv, 300, &r);
	assert_int_equal(r.timed_out, 1);
	expect_fail(&r, WP_REASON_TIMEOUT, "timed out waiting for first byte");
	assert_true(r.elapsed_ms >= 290.0);
	assert_true(r.elapsed_ms < 300.0 + 400.0);
}

/* An endless body and a keyword that never comes: the 1 MiB bound ends it. */
static void
test_big_keyword_missing(void **state)
{
	const char *kv[] = { "url", url_for(&plain, 0, "/big"),
		"keyword", "never-there", NULL };
	struct mock_result r;

	(void)state;
	run(kv, 10000, &r);
	assert_int_equal(r.timed_out, 0);
	expect_fail(&r, WP_REASON_KEYWORD,
	    "keyword \"never-there\" not found in first 1048576 bytes");
	assert_int_equal(r.r.status_code, 200);
}

static void
test_big_bounded(void **state)
{
	const char *absent[] = { "url", url_for(&plain, 0, "/big"),
		"keyword_absent", "never-there", NULL };
	const char *present[] = { "url", url_for(&plain, 0, "/big"),
		"keyword", "xyz\nabc", NULL };
	const char *plainbig[] = { "url", url_for(&plain, 0, "/big"), NULL };
	struct mock_result r;

	(void)state;
	run(absent, 10000, &r);
	expect_ok(&r);
	assert_int_equal(r.timed_out, 0);
	run(present, 10000, &r);
	expect_ok(&r);
	assert_int_equal(r.timed_out, 0);
	run(plainbig, 10000, &r);
	expect_ok(&r);
	assert_int_equal(r.timed_out, 0);
}

static void
test_big_header(void **state)
{
	const char *kv[] = { "url", url_for(&plain, 0, "/bigheader"), NULL };
	struct mock_result r;

	(void)state;
	run(kv, 5000, &r);
	expect_fail(&r, WP_REASON_PROTOCOL, "response headers larger than");
}

/*
 * The body is read to its end: a response cut off or stalled mid-body
 * fails, with keep-alive or without, keyword or not.  Past the 1 MiB
 * bound the rest is not read, and the first 1 MiB decides.
 */
static void
test_body_read_to_end(void **state)
{
	static const struct {
		const char *path;
		const char *extra, *value;  /* one more key, or NULL */
		int64_t timeout_ms;
		int reason;                 /* 0: UP */
		const char *detail;
	} t[] = {
		{ "/truncated", NULL, NULL, 5000, WP_REASON_IO,
		    "response cut off: the connection closed after 4 of 1000 "
		    "body bytes" },
		{ "/truncated", "keepalive", "true", 5000, WP_REASON_IO,
		    "after 4 of 1000 body bytes" },
		{ "/truncated", "keyword", "abcd", 5000, WP_REASON_IO,
		    "after 4 of 1000 body bytes" },
		{ "/truncated-chunked", NULL, NULL, 5000, WP_REASON_IO,
		    "after 4 body bytes, before the body's end" },
		{ "/drip", NULL, NULL, 1500, WP_REASON_TIMEOUT,
		    "timed out reading body" },
		{ "/drip", "keepalive", "true", 1500, WP_REASON_TIMEOUT,
		    "timed out reading body" },
		{ "/ok", NULL, NULL, 5000, 0, NULL },
		{ "/ok", "keepalive", "true", 5000, 0, NULL },
	};
	const char *huge[] = { "url",
		url_for(&plain, 0, "/huge?bytes=2097152"), NULL };
	struct mock_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *kv[] = { "url", url_for(&raw, 0, t[i].path),
			t[i].extra, t[i].value, NULL };

		run(kv, t[i].timeout_ms, &r);
		if (t[i].reason == 0)
			expect_ok(&r);
		else
			expect_fail(&r, t[i].reason, t[i].detail);
		assert_int_equal(r.timed_out,
		    t[i].reason == WP_REASON_TIMEOUT);
	}
	/* 2 MiB announced and sent: the first 1 MiB is read, then UP. */
	run(huge, 10000, &r);
	expect_ok(&r);
	assert_int_equal(r.timed_out, 0);
}

/* 1 if S names the connect phase ("connect", not "connection"). */
static int
says_connect(const char *s)
{
	const char *p;

	for (p = s; (p = strstr(p, "connect")) != NULL; p += 7)
		if (strncmp(p + 7, "ion", 3) != 0)
			return 1;
	return 0;
}

/*
 * Every libcurl failure a hostile server can provoke, with its reason and
 * a true message: never a phase the check had passed ("connect", "DNS"
 * once connected), never "redirect" or "TLS" where there was none.
 */
static void
test_hostile(void **state)
{
	enum { RAW, PLAIN, TLS_SRV };
	static const struct {
		int srv;
		int https;
		const char *path;
		int64_t timeout_ms;
		int reason;
		const char *detail;
	} t[] = {
		{ RAW, 0, "/longline", 5000, WP_REASON_PROTOCOL,
		    "malformed response: a header line longer than 102400 "
		    "bytes" },
		{ RAW, 0, "/manyheaders", 5000, WP_REASON_PROTOCOL,
		    "response headers larger than 65536 bytes" },
		{ RAW, 0, "/garbage", 5000, WP_REASON_PROTOCOL,
		    "malformed response: no valid HTTP status line" },
		{ RAW, 0, "/badstatus", 5000, WP_REASON_PROTOCOL,
		    "malformed response: no valid HTTP status line" },
		{ RAW, 0, "/http09", 5000, WP_REASON_PROTOCOL,
		    "malformed response: no valid HTTP status line" },
		{ RAW, 0, "/close", 5000, WP_REASON_IO,
		    "empty reply: the connection closed before any response" },
		{ RAW, 0, "/reset-headers", 5000, WP_REASON_IO,
		    "receive failed (reading headers): Connection reset by "
		    "peer" },
		{ RAW, 0, "/truncated", 5000, WP_REASON_IO,
		    "response cut off: the connection closed after 4 of 1000 "
		    "body bytes" },
		{ RAW, 0, "/truncated-chunked", 5000, WP_REASON_IO,
		    "response cut off" },
		{ RAW, 0, "/drip", 1500, WP_REASON_TIMEOUT,
		    "timed out reading body" },
		{ RAW, 0, "/badchunk", 5000, WP_REASON_PROTOCOL,
		    "malformed response: Illegal or missing hexadecimal "
		    "sequence in chunked-encoding" },
		{ RAW, 0, "/badlength", 5000, WP_REASON_PROTOCOL,
		    "malformed response: Invalid Content-Length" },
		{ RAW, 0, "/twolengths", 5000, WP_REASON_IO,
		    "after 2 of 5 body bytes" },
		{ RAW, 0, "/redirect-ftp", 5000, WP_REASON_PROTOCOL,
		    "redirect to a scheme other than http/https" },
		{ RAW, 0, "/redirect-bad", 5000, WP_REASON_PROTOCOL,
		    "redirect to a URL that does not parse" },
		{ PLAIN, 0, "/loop", 5000, WP_REASON_PROTOCOL,
		    "redirect loop: too many redirects" },
		{ PLAIN, 1, "/status/200", 5000, WP_REASON_TLS,
		    "TLS handshake failed" },
		{ TLS_SRV, 1, "/status/200", 5000, WP_REASON_TLS,
		    "TLS certificate verification failed: self-signed" },
		{ TLS_SRV, 0, "/status/200", 5000, WP_REASON_IO,
		    "empty reply" },
		{ RAW, 1, "/ok", 1000, WP_REASON_TIMEOUT,
		    "timed out during TLS handshake" },
	};
	const struct server *srv[] = { &raw, &plain, &tls };
	struct mock_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *kv[] = { "url",
			url_for(srv[t[i].srv], t[i].https, t[i].path), NULL };

		run(kv, t[i].timeout_ms, &r);
		if (r.r.reason != t[i].reason ||
		    strstr(r.detail, t[i].detail) == NULL)
			fprintf(stderr, "row %zu (%s)\n", i, t[i].path);
		expect_fail(&r, t[i].reason, t[i].detail);
		/* Every row got past connect. */
		assert_true(r.r.reason != WP_REASON_CONNECT &&
		    r.r.reason != WP_REASON_REFUSED &&
		    r.r.reason != WP_REASON_DNS &&
		    r.r.reason != WP_REASON_UNREACHABLE);
		assert_false(says_connect(r.detail));
		assert_null(strstr(r.detail, "resolv"));
		if (strstr(t[i].detail, "redirect") == NULL)
			assert_null(strstr(r.detail, "redirect"));
		if (strstr(t[i].detail, "TLS") == NULL)
			assert_null(strstr(r.detail, "TLS"));
		assert_null(strstr(r.detail, "127.0.0.1"));
		assert_int_equal(r.timed_out,
		    t[i].reason == WP_REASON_TIMEOUT);
	}
}

static void
test_server_hits(void **state)
{
	const char *kv[] = { "url", url_for(&plain, 0, "/body/hit-me"), NULL };
	const char *count[] = { "url",
		url_for(&plain, 0, "/hits?path=/body/hit-me"),
		"keyword", "3", NULL };
	struct mock_result r;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		run(kv, 5000, &r);
		expect_ok(&r);
	}
	run(count, 5000, &r);
	expect_ok(&r);
}

/*
 * Run N checks of URL, all UP, as one monitor (one instance); KEEPALIVE
 * is the keepalive key's value (NULL: the default).
 */
static void
run_ok(const char *url, const char *keepalive, int n)
{
	const char *kv[] = { "url", url, "keyword", "kept",
		keepalive ? "keepalive" : NULL, keepalive, NULL };
	struct mock_result r;
	void *inst = NULL;
	int i;

	assert_int_equal(mock_configure(mp, "ka", kv, 5000, &inst), 0);
	for (i = 0; i < n; i++) {
		mock_run(mp, inst, 5000, NULL, &r);
		expect_ok(&r);
	}
	mock_release(mp, inst);
}

/* The server S has accepted WANT connections, this request's own included. */
static void
expect_connections(const struct server *s, int want)
{
	char text[32];
	const char *kv[] = { "url", url_for(s, 0, "/connections"),
		"keyword", text, NULL };
	struct mock_result r;

	snprintf(text, sizeof(text), "connections=%d;", want);
	run(kv, 5000, &r);
	expect_ok(&r);
}

/*
 * keepalive (the default, and true) reuses one connection for the checks
 * of a monitor within keepalive_lifetime (these run back to back), after
 * a first check on a new one; false opens one per check, and so does a
 * host that gives no interval (mock_set_interval 0).  A server of its
 * own, so its connection count starts at 0; each count is read over a
 * new connection of its own (a new monitor's first check).
 */
static void
test_keepalive(void **state)
{
	struct server ka;
	const char *url;

	(void)state;
	server_start(&ka, NULL);
	url = url_for(&ka, 0, "/body/kept");
	mock_set_interval(mp, 1000);
	run_ok(url, NULL, 4);
	expect_connections(&ka, 2);
	run_ok(url, "true", 4);
	expect_connections(&ka, 4);
	run_ok(url, "false", 3);
	expect_connections(&ka, 8);
	mock_set_interval(mp, 0);
	run_ok(url, NULL, 3);
	expect_connections(&ka, 12);
	server_stop(&ka);
}

/*
 * A check that times out on a kept connection says how far it got: it
 * made no lookup, connect or handshake of its own.  /hang-later answers
 * the monitor's first check (on a new connection) and stalls the second
 * (on the same one).
 */
static void
test_keepalive_timeout_phase(void **state)
{
	struct server ka;
	const char *kv[] = { "url", NULL, NULL };
	struct mock_result r;
	void *inst = NULL;

	(void)state;
	server_start(&ka, NULL);
	kv[1] = url_for(&ka, 0, "/hang-later");
	mock_set_interval(mp, 1000);
	assert_int_equal(mock_configure(mp, "a", kv, 500, &inst), 0);
	mock_run(mp, inst, 500, NULL, &r);
	expect_ok(&r);
	mock_run(mp, inst, 500, NULL, &r);
	assert_int_equal(r.timed_out, 1);
	expect_fail(&r, WP_REASON_TIMEOUT, "timed out waiting for first byte");
	/* After a failure, a new connection: it stalls too. */
	mock_run(mp, inst, 500, NULL, &r);
	assert_int_equal(r.timed_out, 1);
	mock_release(mp, inst);
	mock_set_interval(mp, 0);
	/* One connection for the first two checks, one for the third, and
	 * this count's own. */
	expect_connections(&ka, 3);
	server_stop(&ka);
}

/* Configure KV expecting WP_EINVAL and an error on each line in LINES. */
static void
expect_config_error(const char *const *kv, const int *lines, size_t n,
    const char *text)
{
	void *inst = NULL;
	const char *err;
	char want[32];
	size_t i;

	assert_int_equal(mock_configure(mp, "t", kv, 5000, &inst), WP_EINVAL);
	err = mock_errors(mp);
	for (i = 0; i < n; i++) {
		if (lines[i] == 0)
			snprintf(want, sizeof(want), "mock.ini: ");
		else
			snprintf(want, sizeof(want), "mock.ini:%d: ", lines[i]);
		if (strstr(err, want) == NULL)
			fprintf(stderr, "no error on line %d in:\n%s", lines[i],
			    err);
		assert_non_null(strstr(err, want));
	}
	if (text != NULL)
		assert_non_null(strstr(err, text));
	/* Values may be secrets: never echoed. */
	assert_null(strstr(err, "hunter2"));
}

static void
test_config_errors(void **state)
{
	const char *ok_url = "http://127.0.0.1:1/";
	struct {
		const char *key, *value, *text;
	} bad[] = {
		{ "url", "ftp://user:hunter2@127.0.0.1/x", "http or https" },
		{ "url", "127.0.0.1/hunter2", "valid absolute URL" },
		{ "url", "http://127.0.0.1/a b?hunter2", "spaces" },
		{ "method", "FETCH", "is not a valid value (use GET, HEAD, "
		    "POST, PUT, DELETE, PATCH or OPTIONS)" },
		{ "expected_status", "99", "100-599" },
		{ "expected_status", "600", "100-599" },
		{ "expected_status", "abc", "100-599" },
		{ "expected_status", "", "100-599" },
		{ "expected_status", "299-200", "below its start" },
		{ "expected_status", "200;301", "commas" },
		{ "expected_status", "200,", "100-599" },
		{ "keyword", "", "must not be empty" },
		{ "keyword_absent", "", "must not be empty" },
		{ "header", "NoColon hunter2", "Name: value" },
		{ "header", "Bad Name: hunter2", "Name: value" },
		{ "header", "X-A: hunter2\r\nX-B: 1", "control" },
		{ "follow_redirects", "maybe", "true or false" },
		{ "verify_tls", "perhaps", "true or false" },
	};
	const char *missing[] = { "method", "GET", NULL };
	const char *headkw[] = { "url", ok_url, "method", "HEAD",
		"keyword", "x", NULL };
	const char *getbody[] = { "url", ok_url, "method", "GET",
		"body", "x", NULL };
	const char *many[] = { "url", "gopher://x", "method", "fetch",
		"follow_redirects", "1000", "verify_tls", "x", NULL };
	/* What configure() judges, once the host's parser found nothing. */
	const char *many_conf[] = { "url", ok_url, "expected_status", "1000",
		"keyword", "", "header", "NoColon", NULL };
	const char *unknown[] = { "url", ok_url, "flavour", "x", NULL };
	int line2[] = { 2 }, line0[] = { 0 }, all[] = { 1, 2, 3, 4 },
	    conf_all[] = { 2, 3, 4 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *kv[] = { "url", ok_url, bad[i].key, bad[i].value,
			NULL };

		char twice[64];

		if (strcmp(bad[i].key, "url") == 0) {
			const char *kv1[] = { "method", "GET", "url",
				bad[i].value, NULL };
			expect_config_error(kv1, line2, 1, bad[i].text);
		} else
			expect_config_error(kv, line2, 1, bad[i].text);
		/* The host names the key; the message does not again. */
		snprintf(twice, sizeof(twice), "%s: %s", bad[i].key,
		    bad[i].key);
		assert_null(strstr(mock_errors(mp), twice));
	}
	expect_config_error(missing, line0, 1,
	    "missing the required key \"url\"");
	expect_config_error(headkw, line2, 1, "HEAD");
	expect_config_error(getbody, line2, 1, "body needs a method");
	/* A key outside the table (the core catches it first): the host
	 * names the key, the message does not again. */
	expect_config_error(unknown, line2, 1,
	    "mock.ini:2: unknown key \"flavour\"\n");
	/* Every problem is reported, not just the first. */
	expect_config_error(many, all, 4, NULL);
	expect_config_error(many_conf, conf_all, 3, NULL);
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n++;
	closedir(d);
	return n;
}

static void
test_sequential_no_leak(void **state)
{
	const char *kv[] = { "url", url_for(&plain, 0, "/body/ok"),
		"keyword", "ok", NULL };
	struct mock_result r;
	int before, i;

	(void)state;
	run(kv, 5000, &r); /* warm up lazily created state */
	before = count_fds();
	for (i = 0; i < 25; i++) {
		run(kv, 5000, &r);
		expect_ok(&r);
	}
	mock_spin(mp, 50);
	assert_int_equal(count_fds(), before);
}

/*
 * Concurrent operations on one loop.  mockhost runs one operation at a
 * time, so these tests start operations directly and take the host's
 * complete() over for the duration, one record per operation.
 */
#define N_CONC 200

struct conc_op {
	int completions;
	int ok;
	int reason;
	int status;
	char detail[128];
};

static struct conc_op conc[N_CONC];
static char conc_detail[N_CONC][WP_DETAIL_MAX];
static struct wp_measurement conc_m[N_CONC][WP_MEASUREMENTS_MAX];

static void
conc_complete(struct wp_op *op, const struct wp_result *res)
{
	struct conc_op *c = (struct conc_op *)(void *)op;

	c->completions++;
	c->ok = res->reason == WP_REASON_OK;
	c->reason = res->reason;
	c->status = res->status_code;
	snprintf(c->detail, sizeof(c->detail), "%s",
	    res->detail ? res->detail : "");
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start N operations of INST; returns once started. */
static void
conc_start(void *inst, struct wp_request *req, void **ops, int n,
    int64_t timeout_ms)
{
	const struct wp_plugin *d = mock_plugin_desc(mp);
	const struct wp_host *h = mock_host(mp);
	int i;

	memset(conc, 0, sizeof(conc));
	for (i = 0; i < n; i++) {
		req[i] = (struct wp_request){
			.size = sizeof(struct wp_request),
			.op = (struct wp_op *)(void *)&conc[i],
			.monitor = "conc",
			.started_us = h->now_us(),
			.deadline_us = h->now_us() + timeout_ms * 1000,
			.detail = conc_detail[i],
			.detail_size = WP_DETAIL_MAX,
			.measurements = conc_m[i],
			.max_measurements = WP_MEASUREMENTS_MAX,
		};
		assert_int_equal(d->start(inst, &req[i], &ops[i]), 0);
	}
}

static int
conc_done(int n)
{
	int i, done = 0;

	for (i = 0; i < n; i++)
		done += conc[i].completions > 0;
	return done;
}

static void
test_concurrent(void **state)
{
	static struct wp_request req[N_CONC];
	static void *ops[N_CONC];
	const char *kv[] = { "url", url_for(&plain, 0, "/slow?ms=300"),
		"keyword", "slow", NULL };
	struct wp_host *h = (struct wp_host *)mock_host(mp);
	void (*saved)(struct wp_op *, const struct wp_result *) = h->complete;
	void *inst = NULL;
	int64_t t0, end;
	int i;

	(void)state;
	assert_int_equal(mock_configure(mp, "c", kv, 20000, &inst), 0);
	h->complete = conc_complete;
	t0 = mono_ms();
	conc_start(inst, req, ops, N_CONC, 20000);
	end = t0 + 20000;
	while (conc_done(N_CONC) < N_CONC && mono_ms() < end)
		mock_spin(mp, 20);
	mock_spin(mp, 100); /* room for a wrong second completion */
	h->complete = saved;
	for (i = 0; i < N_CONC; i++) {
		if (conc[i].completions != 1 || !conc[i].ok)
			fprintf(stderr, "op %d: %d completions, ok %d: %s\n", i,
			    conc[i].completions, conc[i].ok, conc[i].detail);
		assert_int_equal(conc[i].completions, 1);
		assert_int_equal(conc[i].ok, 1);
		assert_int_equal(conc[i].status, 200);
	}
	/* 200 x 300 ms one after another would take a minute. */
	assert_true(mono_ms() - t0 < 15000);
	mock_release(mp, inst);
}

static void
test_concurrent_cancel(void **state)
{
	enum { N = 20 };
	static struct wp_request req[N];
	static void *ops[N];
	const char *kv[] = { "url", url_for(&plain, 0, "/hang"), NULL };
	const struct wp_plugin *d = mock_plugin_desc(mp);
	struct wp_host *h = (struct wp_host *)mock_host(mp);
	void (*saved)(struct wp_op *, const struct wp_result *) = h->complete;
	void *inst = NULL;
	int before, i;

	(void)state;
	assert_int_equal(mock_configure(mp, "c", kv, 20000, &inst), 0);
	before = count_fds();
	h->complete = conc_complete;
	conc_start(inst, req, ops, N, 20000);
	mock_spin(mp, 200);
	assert_int_equal(conc_done(N), 0);
	for (i = 0; i < N; i++)
		d->cancel(inst, ops[i]);
	mock_spin(mp, 200);
	h->complete = saved;
	for (i = 0; i < N; i++) {
		assert_int_equal(conc[i].completions, 1);
		assert_int_equal(conc[i].ok, 0);
		assert_int_equal(conc[i].reason, WP_REASON_TIMEOUT);
		assert_non_null(strstr(conc[i].detail, "timed out"));
	}
	/* cancel() released every socket. */
	assert_int_equal(count_fds(), before);
	mock_release(mp, inst);
}

/* max_body: the verdict is that of the first max_body bytes. */
static void
test_max_body(void **state)
{
	const char *u = url_for(&plain, 0, "/body/aaaaaaaaaaXYZ");
	const char *small[] = { "url", u, "keyword", "XYZ", "max_body", "5",
		NULL };
	const char *fits[] = { "url", u, "keyword", "XYZ", "max_body", "13",
		NULL };
	const char *huge[] = { "url", url_for(&plain, 0, "/huge?bytes=5000000"),
		"keyword", "never-there", "max_body", "3000", NULL };
	struct mock_result r;

	(void)state;
	run(small, 5000, &r);
	expect_fail(&r, WP_REASON_KEYWORD, "not found in first 5 bytes");
	run(fits, 5000, &r);
	expect_ok(&r);
	run(huge, 10000, &r);
	expect_fail(&r, WP_REASON_KEYWORD, "not found in first 3000 bytes");
	assert_int_equal(r.timed_out, 0);
}

/* ca_file: the test certificate is its own CA (CA:TRUE, 127.0.0.1). */
static void
test_ca_file(void **state)
{
	static char ca[4096];
	const char *u = url_for(&tls, 1, "/status/200");
	const char *with[] = { "url", u, "ca_file", ca, NULL };
	const char *without[] = { "url", u, NULL };
	const char *v6[] = { "url", url_for(&plain, 0, "/status/200"),
		"ip_version", "6", NULL };
	const char *v4[] = { "url", url_for(&plain, 0, "/status/200"),
		"ip_version", "4", NULL };
	struct mock_result r;

	(void)state;
	snprintf(ca, sizeof(ca), "%s/tests/data/test-cert.pem",
	    getenv("abs_top_srcdir"));
	run(with, 5000, &r);
	expect_ok(&r);
	run(without, 5000, &r);
	expect_fail(&r, WP_REASON_TLS, "");
	run(v4, 5000, &r);
	expect_ok(&r);
	run(v6, 5000, &r);
	assert_int_not_equal(r.r.reason, WP_REASON_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_expected_status),
		cmocka_unit_test(test_keyword),
		cmocka_unit_test(test_keyword_across_chunks),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_method_body_headers),
		cmocka_unit_test(test_redirects),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_plain_has_no_cert),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_hang_timeout),
		cmocka_unit_test(test_big_keyword_missing),
		cmocka_unit_test(test_big_bounded),
		cmocka_unit_test(test_big_header),
		cmocka_unit_test(test_body_read_to_end),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_server_hits),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_sequential_no_leak),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_concurrent_cancel),
		/* Last: its idle connection outlives it (until libcurl finds
		 * it dead), which the descriptor counts above would see. */
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_keepalive_timeout_phase),
		cmocka_unit_test(test_max_body),
		cmocka_unit_test(test_ca_file),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
