/*
 * test-api -- the HTTP status API against a real client.
 *
 * Each test starts the API on a loopback port with fake renderers, runs
 * the libuv loop on a thread of its own (the "loop thread"), and talks to
 * the server with libcurl from the test's main thread, where the cmocka
 * assertions live.  The loop thread obeys two commands sent through a
 * uv_async: stall (block inside a callback for a while) and stop (api_stop
 * and close, so uv_run returns).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <uv.h>

#include "api.h"
#include "log.h"
#include "util.h"

#define MONITORS_BODY "[{\"name\":\"a\",\"type\":\"tcp\",\"state\":\"up\"}]"
#define OPMON_BODY "{\"running\":0,\"succeeded\":3}"
#define METRICS_BODY "watchpost_up 1\n"
#define TOKEN "s3cret-t0ken-value"

struct harness {
	uv_loop_t loop;
	uv_async_t ctl;
	pthread_t thread;
	struct api *api;
	struct api_routes routes;

	pthread_mutex_t mu;
	int stall_ms;		/* command: block the loop this long */
	int stop;		/* command: api_stop and finish */
	int stalling;		/* the loop is inside a stall */
	int stalls_begun;	/* stalls the loop thread has entered */
	int64_t stop_took_ms;	/* how long api_stop took */
	int running;		/* the loop thread is running */
	int closed;		/* the loop is closed */

	/* What the renderers saw; under mu. */
	int calls;
	int off_loop;		/* renderer calls not on the loop thread */
	int fail;		/* renderers return NULL */
	int render_sleep_ms;	/* renderers block this long */
	int rendered;		/* renderer calls that returned */
};

struct resp {
	long status;
	struct sbuf body;
	struct sbuf hdrs;
};

static char *
render(struct harness *h, const char *body)
{
	int fail, sleep_ms;

	pthread_mutex_lock(&h->mu);
	h->calls++;
	if (!pthread_equal(pthread_self(), h->thread))
		h->off_loop++;
	fail = h->fail;
	sleep_ms = h->render_sleep_ms;
	pthread_mutex_unlock(&h->mu);
	if (sleep_ms > 0)
		usleep((useconds_t)sleep_ms * 1000);
	pthread_mutex_lock(&h->mu);
	h->rendered++;
	pthread_mutex_unlock(&h->mu);
	return fail ? NULL : xstrdup(body);
}

static char *
fake_monitors(void *arg)
{
	return render(arg, MONITORS_BODY);
}

static char *
fake_opmon(void *arg)
{
	return render(arg, OPMON_BODY);
}

static char *
fake_metrics(void *arg)
{
	return render(arg, METRICS_BODY);
}

static void
on_ctl(uv_async_t *a)
{
	struct harness *h = a->data;
	int stall, stop, i;
	int64_t t0;

	pthread_mutex_lock(&h->mu);
	stall = h->stall_ms;
	stop = h->stop;
	h->stall_ms = 0;
	h->stalling = stall > 0;
	h->stalls_begun += stall > 0;
	pthread_mutex_unlock(&h->mu);
	/* Block the loop thread, in bounded slices. */
	for (i = 0; i < stall / 10; i++)
		usleep(10000);
	pthread_mutex_lock(&h->mu);
	h->stalling = 0;
	pthread_mutex_unlock(&h->mu);
	if (stop) {
		t0 = mono_ms();
		api_stop(h->api);
		h->api = NULL;
		pthread_mutex_lock(&h->mu);
		h->stop_took_ms = mono_ms() - t0;
		pthread_mutex_unlock(&h->mu);
		uv_close((uv_handle_t *)&h->ctl, NULL);
	}
}

static void *
loop_main(void *arg)
{
	struct harness *h = arg;

	uv_run(&h->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* cmocka setup: a harness with its loop, not started. */
static int
harness_setup(void **state)
{
	struct harness *h;

	h = xcalloc(1, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	h->routes.monitors_json = fake_monitors;
	h->routes.opmon_json = fake_opmon;
	h->routes.metrics_text = fake_metrics;
	h->routes.arg = h;
	if (uv_loop_init(&h->loop) != 0) {
		free(h);
		return -1;
	}
	*state = h;
	return 0;
}

/*
 * cmocka teardown, which also runs after a failed assertion: stop the loop
 * thread if the test did not get to, so no thread outlives its harness.
 */
static int
harness_teardown(void **state)
{
	struct harness *h = *state;

	if (h->running) {
		pthread_mutex_lock(&h->mu);
		h->stop = 1;
		pthread_mutex_unlock(&h->mu);
		uv_async_send(&h->ctl);
		pthread_join(h->thread, NULL);
	}
	if (!h->closed)
		uv_loop_close(&h->loop);
	pthread_mutex_destroy(&h->mu);
	free(h);
	return 0;
}

/*
 * Start the API on LISTEN and the loop thread.  api_start runs here,
 * before uv_run, as the daemon calls it; the loop is not running yet, so
 * this thread may touch it.
 */
static void
harness_start(struct harness *h, const char *listen, const char *token)
{
	char err[256] = "";
	int rc;

	rc = api_start(listen, token, &h->loop, &h->routes, &h->api, err,
	    sizeof(err));
	if (rc != 0)
		fail_msg("api_start(%s): %d %s", listen, rc, err);
	assert_non_null(h->api);
	assert_true(api_port(h->api) > 0);
	assert_int_equal(uv_async_init(&h->loop, &h->ctl, on_ctl), 0);
	h->ctl.data = h;
	assert_int_equal(pthread_create(&h->thread, NULL, loop_main, h), 0);
	h->running = 1;
}

/*
 * Send a command to the loop thread.  With STALL_MS, return only once the
 * loop thread is inside the stall (bounded wait), so that a request made
 * next surely meets a blocked loop however loaded the machine is.
 */
static void
harness_command(struct harness *h, int stall_ms, int stop)
{
	int i, begun, target;

	pthread_mutex_lock(&h->mu);
	h->stall_ms = stall_ms;
	h->stop |= stop;
	if (stall_ms > 0)
		h->stalling = 1;
	target = h->stalls_begun + 1;
	pthread_mutex_unlock(&h->mu);
	uv_async_send(&h->ctl);
	if (stall_ms <= 0)
		return;
	for (i = 0, begun = 0; i < 1000 && !begun; i++) {
		pthread_mutex_lock(&h->mu);
		begun = h->stalls_begun >= target;
		pthread_mutex_unlock(&h->mu);
		if (!begun)
			usleep(1000);
	}
	assert_true(begun);
}

/* Wait (bounded) until the loop thread has left its stall. */
static void
harness_wait_unstalled(struct harness *h)
{
	int i, stalling = 1;

	for (i = 0; i < 1000 && stalling; i++) {
		pthread_mutex_lock(&h->mu);
		stalling = h->stalling;
		pthread_mutex_unlock(&h->mu);
		if (stalling)
			usleep(10000);
	}
	assert_false(stalling);
}

/* Wait (bounded) until N renderer calls have returned. */
static void
harness_wait_rendered(struct harness *h, int n)
{
	int i, done = 0;

	for (i = 0; i < 1000 && done < n; i++) {
		pthread_mutex_lock(&h->mu);
		done = h->rendered;
		pthread_mutex_unlock(&h->mu);
		if (done < n)
			usleep(10000);
	}
	assert_int_equal(done, n);
}

/* Stop the API on the loop thread, join it, and close the loop. */
static void
harness_finish(struct harness *h)
{
	harness_command(h, 0, 1);
	assert_int_equal(pthread_join(h->thread, NULL), 0);
	h->running = 0;
	assert_null(h->api);
	/* Nothing of the API's may be left on the loop. */
	assert_int_equal(uv_loop_close(&h->loop), 0);
	h->closed = 1;
}

static int
harness_calls(struct harness *h)
{
	int n;

	pthread_mutex_lock(&h->mu);
	n = h->calls;
	pthread_mutex_unlock(&h->mu);
	return n;
}

static size_t
on_body(char *p, size_t sz, size_t n, void *arg)
{
	sbuf_append(arg, p, sz * n);
	return sz * n;
}

/*
 * One request: METHOD http://HOST:PORT/PATH with an optional Authorization
 * header.  Fills r; r->status is 0 if the transfer failed.
 */
static void
http(const char *method, const char *host, int port, const char *path,
    const char *auth, struct resp *r)
{
	struct curl_slist *hl = NULL;
	char url[256], hdr[256];
	CURL *c;

	memset(r, 0, sizeof(*r));
	sbuf_puts(&r->body, "");
	sbuf_puts(&r->hdrs, "");
	snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
	c = curl_easy_init();
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->hdrs);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (auth != NULL) {
		snprintf(hdr, sizeof(hdr), "Authorization: %s", auth);
		hl = curl_slist_append(hl, hdr);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
}

static void
get(struct harness *h, const char *path, const char *auth, struct resp *r)
{
	http("GET", "127.0.0.1", api_port(h->api), path, auth, r);
}

static void
resp_free(struct resp *r)
{
	sbuf_free(&r->body);
	sbuf_free(&r->hdrs);
}

/* Does the response carry the header line LINE (any case)? */
static int
has_header(const struct resp *r, const char *line)
{
	return strcasestr(r->hdrs.data, line) != NULL;
}

static void
test_bad_listen(void **state)
{
	static const char *bad[] = {
		"", "9405", "127.0.0.1", "127.0.0.1:", ":9405",
		"127.0.0.1:abc", "127.0.0.1:65536", "127.0.0.1:-1",
		"127.0.0.1:+80", "127.0.0.1:80x", "127.0.0.1: 80",
		"[::1", "[::1]", "[::1]9405", "[::1]:", "::1:9405",
		"[127.0.0.1]:80", "[nope]:80", "1.2.3.4.5:80",
		"example.invalid:80", "localhost:999999",
	};
	struct api_routes routes = { fake_monitors, fake_opmon,
	    fake_metrics, NULL, NULL, NULL };
	struct api *a;
	uv_loop_t loop;
	char err[256];
	size_t i;

	assert_int_equal(uv_loop_init(&loop), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = (struct api *)&loop;	/* must be reset to NULL */
		err[0] = '\0';
		assert_int_equal(api_start(bad[i], NULL, &loop, &routes, &a,
		    err, sizeof(err)), WP_EINVAL);
		assert_null(a);
		if (strncmp(err, "listen: ", 8) != 0 ||
		    strstr(err, bad[i]) == NULL)
			fail_msg("\"%s\": unhelpful message \"%s\"", bad[i],
			    err);
	}
	err[0] = '\0';
	assert_int_equal(api_start(NULL, NULL, &loop, &routes, &a, err,
	    sizeof(err)), WP_EINVAL);
	assert_non_null(strstr(err, "expected HOST:PORT"));
	/* An empty token would accept "Authorization: Bearer ". */
	assert_int_equal(api_start("127.0.0.1:0", "", &loop, &routes, &a,
	    err, sizeof(err)), WP_EINVAL);
	assert_null(a);
	/* Failures leave nothing on the loop. */
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_port_in_use(void **state)
{
	struct harness *h = *state;
	struct api *b = NULL;
	char spec[64], err[256] = "";

	harness_start(h, "127.0.0.1:0", NULL);
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", api_port(h->api));
	/*
	 * The loop runs on its own thread; api_start on a busy port fails
	 * before it touches the loop, so this call is safe here.
	 */
	assert_int_equal(api_start(spec, NULL, &h->loop, &h->routes, &b, err,
	    sizeof(err)), WP_EIO);
	assert_null(b);
	assert_non_null(strstr(err, spec));
	assert_non_null(strstr(err, "cannot bind"));
	harness_finish(h);
}

static void
test_healthz_and_routes(void **state)
{
	struct harness *h = *state;
	struct resp r;

	harness_start(h, "127.0.0.1:0", NULL);

	get(h, "/healthz", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, "ok\n");
	assert_true(has_header(&r, "Content-Type: text/plain"));
	assert_true(has_header(&r, "Cache-Control: no-store"));
	resp_free(&r);
	/* /healthz never involves the loop. */
	assert_int_equal(harness_calls(h), 0);

	get(h, "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, MONITORS_BODY);
	assert_true(has_header(&r, "Content-Type: application/json"));
	assert_true(has_header(&r, "Cache-Control: no-store"));
	resp_free(&r);

	get(h, "/api/monitor", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, OPMON_BODY);
	assert_true(has_header(&r, "Content-Type: application/json"));
	resp_free(&r);

	get(h, "/metrics", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, METRICS_BODY);
	assert_true(has_header(&r,
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
	assert_true(has_header(&r, "Cache-Control: no-store"));
	resp_free(&r);

	assert_int_equal(harness_calls(h), 3);
	assert_int_equal(h->off_loop, 0);
	harness_finish(h);
}

static void
test_404_405_head(void **state)
{
	static const char *missing[] = {
		"/", "/nope", "/api", "/api/monitors/", "/healthz/x",
		"/metrics2", "/API/MONITORS",
	};
	struct harness *h = *state;
	struct resp r;
	size_t i;

	harness_start(h, "127.0.0.1:0", NULL);

	for (i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		get(h, missing[i], NULL, &r);
		assert_int_equal(r.status, 404);
		assert_string_equal(r.body.data,
		    "{\"error\":\"not found\"}\n");
		assert_true(has_header(&r, "Content-Type: application/json"));
		assert_true(has_header(&r, "Cache-Control: no-store"));
		resp_free(&r);
	}

	http("POST", "127.0.0.1", api_port(h->api), "/api/monitors", NULL,
	    &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "Allow: GET, HEAD"));
	resp_free(&r);
	http("DELETE", "127.0.0.1", api_port(h->api), "/healthz", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "Allow: GET, HEAD"));
	resp_free(&r);
	http("PUT", "127.0.0.1", api_port(h->api), "/metrics", NULL, &r);
	assert_int_equal(r.status, 405);
	resp_free(&r);
	assert_int_equal(harness_calls(h), 0);

	http("HEAD", "127.0.0.1", api_port(h->api), "/api/monitors", NULL,
	    &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, 0);
	assert_true(has_header(&r, "Content-Type: application/json"));
	resp_free(&r);
	http("HEAD", "127.0.0.1", api_port(h->api), "/healthz", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, 0);
	resp_free(&r);
	assert_int_equal(harness_calls(h), 1);
	harness_finish(h);
}

/* Capture stderr (the log) into a temporary file while the test runs. */
static int
capture_stderr(FILE **tmp)
{
	int saved;

	fflush(stderr);
	*tmp = tmpfile();
	assert_non_null(*tmp);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(*tmp), 2) >= 0);
	return saved;
}

static char *
restore_stderr(FILE *tmp, int saved)
{
	struct sbuf b = { 0 };
	char chunk[512];
	size_t n;

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	sbuf_puts(&b, "");
	while ((n = fread(chunk, 1, sizeof(chunk), tmp)) > 0)
		sbuf_append(&b, chunk, n);
	fclose(tmp);
	return sbuf_steal(&b);
}

static void
test_token(void **state)
{
	static const char *wrong[] = {
		"Bearer wrong", "Bearer " TOKEN "x", "Bearer s3cret",
		"Bearer ", "Basic " TOKEN, "Bearer" TOKEN, TOKEN,
		"Bearer S3CRET-T0KEN-VALUE",
	};
	struct harness *h = *state;
	struct resp r;
	FILE *tmp;
	char *log;
	size_t i;
	int saved;

	log_setup(WP_LOG_DEBUG, LOG_TO_STDERR);
	saved = capture_stderr(&tmp);
	harness_start(h, "127.0.0.1:0", TOKEN);

	get(h, "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 401);
	assert_true(has_header(&r, "WWW-Authenticate: Bearer"));
	assert_true(has_header(&r, "Cache-Control: no-store"));
	resp_free(&r);
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		get(h, "/metrics", wrong[i], &r);
		if (r.status != 401)
			fail_msg("\"%s\" got %ld", wrong[i], r.status);
		assert_true(has_header(&r, "WWW-Authenticate: Bearer"));
		resp_free(&r);
	}
	assert_int_equal(harness_calls(h), 0);

	get(h, "/healthz", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	get(h, "/api/monitors", "Bearer " TOKEN, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, MONITORS_BODY);
	resp_free(&r);
	/* The scheme is case-insensitive (RFC 7235). */
	get(h, "/metrics", "bearer " TOKEN, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(harness_calls(h), 2);

	harness_finish(h);
	log = restore_stderr(tmp, saved);
	log_setup(WP_LOG_INFO, LOG_TO_STDERR);
	/* Debug logging was on and did log the refusals, not the token. */
	assert_non_null(strstr(log, "-> 401"));
	assert_null(strstr(log, "s3cret"));
	free(log);
}

/* A reload replaces the token: the old one is refused from then on, no
 * token opens the API, and setting the same token again is no change. */
static void
test_set_token(void **state)
{
	struct harness *h = *state;
	struct resp r;

	harness_start(h, "127.0.0.1:0", TOKEN);
	assert_int_equal(api_set_token(h->api, TOKEN), 0);
	assert_int_equal(api_set_token(h->api, ""), WP_EINVAL);
	get(h, "/metrics", "Bearer " TOKEN, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	assert_int_equal(api_set_token(h->api, "an0ther-t0ken"), 1);
	get(h, "/metrics", "Bearer " TOKEN, &r);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	get(h, "/metrics", "Bearer an0ther-t0ken", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* Same length, one byte apart. */
	assert_int_equal(api_set_token(h->api, "an0ther-t0keN"), 1);

	assert_int_equal(api_set_token(h->api, NULL), 1);
	assert_int_equal(api_set_token(h->api, NULL), 0);
	get(h, "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	assert_int_equal(api_set_token(h->api, TOKEN), 1);
	get(h, "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	assert_int_equal(harness_calls(h), 3);
	harness_finish(h);
}

static void
test_renderer_failure(void **state)
{
	struct harness *h = *state;
	struct resp r;

	h->fail = 1;
	h->routes.opmon_json = NULL;
	harness_start(h, "127.0.0.1:0", NULL);

	get(h, "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 500);
	assert_true(has_header(&r, "Content-Type: application/json"));
	resp_free(&r);
	get(h, "/metrics", NULL, &r);
	assert_int_equal(r.status, 500);
	resp_free(&r);
	/* A route without a renderer is not served. */
	get(h, "/api/monitor", NULL, &r);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	assert_int_equal(harness_calls(h), 2);
	harness_finish(h);
}

static void
test_stalled_loop(void **state)
{
	struct harness *h = *state;
	struct resp r;

	setenv("WP_API_LOOP_TIMEOUT_MS", "300", 1);
	harness_start(h, "127.0.0.1:0", NULL);
	unsetenv("WP_API_LOOP_TIMEOUT_MS");

	/* The loop thread blocks for 2 s, far past the 300 ms wait. */
	harness_command(h, 2000, 0);
	get(h, "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body.data,
	    "{\"error\":\"service unavailable\"}\n");
	resp_free(&r);
	get(h, "/healthz", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	/* The request that gave up was withdrawn, never rendered. */
	harness_wait_unstalled(h);
	get(h, "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, MONITORS_BODY);
	resp_free(&r);
	assert_int_equal(harness_calls(h), 1);
	harness_finish(h);
}

static void
test_slow_renderer(void **state)
{
	struct harness *h = *state;
	struct resp r;

	setenv("WP_API_LOOP_TIMEOUT_MS", "200", 1);
	harness_start(h, "127.0.0.1:0", NULL);
	unsetenv("WP_API_LOOP_TIMEOUT_MS");

	/*
	 * The loop takes the job but renders past the waiter's deadline: the
	 * waiter answers 503 and leaves, the loop finishes and frees the job
	 * (ASan would catch a use after free or a leak).
	 */
	pthread_mutex_lock(&h->mu);
	h->render_sleep_ms = 800;
	pthread_mutex_unlock(&h->mu);
	get(h, "/metrics", NULL, &r);
	assert_int_equal(r.status, 503);
	resp_free(&r);
	pthread_mutex_lock(&h->mu);
	h->render_sleep_ms = 0;
	pthread_mutex_unlock(&h->mu);
	harness_wait_rendered(h, 1);
	get(h, "/metrics", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, METRICS_BODY);
	resp_free(&r);
	assert_int_equal(harness_calls(h), 2);
	harness_finish(h);
}

static int
have_ipv6_loopback(void)
{
	struct sockaddr_in6 sin6;
	int fd, ok;

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd == -1)
		return 0;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

static void
test_ipv6(void **state)
{
	struct harness *h = *state;
	struct resp r;

	if (!have_ipv6_loopback())
		skip();
	harness_start(h, "[::1]:0", NULL);
	http("GET", "[::1]", api_port(h->api), "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, MONITORS_BODY);
	resp_free(&r);
	/* "[::1]" means IPv6 only. */
	http("GET", "127.0.0.1", api_port(h->api), "/healthz", NULL, &r);
	assert_int_not_equal(r.status, 200);
	resp_free(&r);
	harness_finish(h);
}

static void
test_localhost(void **state)
{
	struct harness *h = *state;
	struct resp r;

	harness_start(h, "localhost:0", NULL);
	get(h, "/healthz", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	harness_finish(h);
}

struct client {
	pthread_t thread;
	int port;
	const char *path;
	long status;
};

/* A client thread: no cmocka assertions here, only results. */
static void *
client_main(void *arg)
{
	struct client *c = arg;
	struct resp r;

	http("GET", "127.0.0.1", c->port, c->path, NULL, &r);
	c->status = r.status;
	resp_free(&r);
	return NULL;
}

/* Start N client threads asking the harness's API for PATH. */
static void
start_clients(struct harness *h, struct client *clients, size_t n,
    const char *path)
{
	size_t i;

	for (i = 0; i < n; i++) {
		clients[i].port = api_port(h->api);
		clients[i].path = path;
		clients[i].status = -1;
		assert_int_equal(pthread_create(&clients[i].thread, NULL,
		    client_main, &clients[i]), 0);
	}
}

static void
test_stop_in_flight(void **state)
{
	struct client clients[4];
	struct harness *h = *state;
	size_t i;

	harness_start(h, "127.0.0.1:0", NULL);

	/*
	 * The loop stalls for 600 ms and then stops the API, while four
	 * requests wait for it with the default 5 s bound.  api_stop must
	 * wake them rather than wait them out.
	 */
	harness_command(h, 600, 1);
	start_clients(h, clients, 4, "/api/monitors");
	assert_int_equal(pthread_join(h->thread, NULL), 0);
	h->running = 0;
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(clients[i].thread, NULL), 0);
		/* 503, or the connection closed by the shutdown. */
		if (clients[i].status != 503 && clients[i].status != 0)
			fail_msg("client %zu got %ld", i, clients[i].status);
	}
	assert_int_equal(harness_calls(h), 0);
	assert_true(h->stop_took_ms < 3000);
	assert_null(h->api);
	assert_int_equal(uv_loop_close(&h->loop), 0);
	h->closed = 1;
}

/*
 * Requests waiting for a stuck loop hold no thread: with more of them
 * than MHD has pool threads, /healthz still answers -- while the loop is
 * still stuck -- and the waiting requests are answered once it is back.
 */
static void
test_healthz_while_loop_stuck(void **state)
{
	struct harness *h = *state;
	struct client clients[12];
	struct resp r;
	int stalling;
	size_t i;

	harness_start(h, "127.0.0.1:0", NULL);
	harness_command(h, 3000, 0);
	start_clients(h, clients, 12, "/metrics");
	/* Let the clients' requests reach the server (not a bound). */
	usleep(300000);
	get(h, "/healthz", NULL, &r);
	pthread_mutex_lock(&h->mu);
	stalling = h->stalling;
	pthread_mutex_unlock(&h->mu);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_true(stalling);
	for (i = 0; i < 12; i++) {
		assert_int_equal(pthread_join(clients[i].thread, NULL), 0);
		assert_int_equal(clients[i].status, 200);
	}
	assert_int_equal(harness_calls(h), 12);
	harness_finish(h);
}

static void
test_abandoned_in_batch(void **state)
{
	struct harness *h = *state;
	struct client clients[2];
	struct resp r;
	size_t i;

	setenv("WP_API_LOOP_TIMEOUT_MS", "1500", 1);
	harness_start(h, "127.0.0.1:0", NULL);
	unsetenv("WP_API_LOOP_TIMEOUT_MS");

	/*
	 * Two requests queue up while the loop stalls for 1 s; the loop then
	 * takes both in one batch.  The first renders for 2.5 s, so both
	 * waiters give up at 1.5 s; the second job must then be dropped
	 * unrendered (and freed: ASan checks).
	 */
	pthread_mutex_lock(&h->mu);
	h->render_sleep_ms = 2500;
	pthread_mutex_unlock(&h->mu);
	harness_command(h, 1000, 0);
	for (i = 0; i < 2; i++) {
		clients[i].port = api_port(h->api);
		clients[i].path = i == 0 ? "/metrics" : "/api/monitor";
		clients[i].status = -1;
		assert_int_equal(pthread_create(&clients[i].thread, NULL,
		    client_main, &clients[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(clients[i].thread, NULL), 0);
		assert_int_equal(clients[i].status, 503);
	}
	pthread_mutex_lock(&h->mu);
	h->render_sleep_ms = 0;
	pthread_mutex_unlock(&h->mu);
	/* Once the batch is through, the loop answers again. */
	harness_wait_rendered(h, 1);
	get(h, "/api/monitors", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(harness_calls(h), 2);
	harness_finish(h);
}

static void
test_sequential(void **state)
{
	struct harness *h = *state;
	struct resp r;
	int i, ok = 0;

	harness_start(h, "127.0.0.1:0", NULL);
	for (i = 0; i < 200; i++) {
		get(h, i % 2 ? "/api/monitors" : "/metrics", NULL, &r);
		if (r.status == 200 && strcmp(r.body.data,
		    i % 2 ? MONITORS_BODY : METRICS_BODY) == 0)
			ok++;
		resp_free(&r);
	}
	assert_int_equal(ok, 200);
	assert_int_equal(harness_calls(h), 200);
	assert_int_equal(h->off_loop, 0);
	harness_finish(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_listen),
		cmocka_unit_test_setup_teardown(test_port_in_use,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_healthz_and_routes,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_404_405_head,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_token,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_set_token,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_renderer_failure,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_stalled_loop,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_slow_renderer,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_ipv6,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_localhost,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_stop_in_flight,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_healthz_while_loop_stuck,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_abandoned_in_batch,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_sequential,
		    harness_setup, harness_teardown),
	};
	int rc;

	/* Every loop below is bounded; this bounds the whole run. */
	alarm(120);
	unsetenv("WP_API_LOOP_TIMEOUT_MS");
	log_setup(WP_LOG_INFO, LOG_TO_STDERR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* WP_TEST_FILTER=test_token runs one test (when debugging). */
	if (getenv("WP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("WP_TEST_FILTER"));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
