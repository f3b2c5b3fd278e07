/*
 * core/etcd.c on a real loop against a loopback fake of etcd's JSON
 * gateway, serving answers recorded from Debian's etcd 3.4.23: base64
 * keys and values (binary ones), int64 fields as strings (beyond 2^53), a
 * failed txn without `succeeded`, compaction, lease not found (as an error
 * and as a keepalive with no TTL), a refused token and re-authentication,
 * a refused password, rotation past a dead endpoint and a 503 "leader
 * changed", answers we cannot read, and watches: events, resuming after a
 * broken stream from the last revision + 1, compaction, a silent stream,
 * stop inside the callback, cancel and free with work in flight.
 *
 * The fake gateway (a thread per connection, the test's own: the client has none)
 * answers each request with the first unused canned answer for its path
 * and records what it was sent.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "etcd.h"
#include "host.h"
#include "util.h"

/* ---- the fake gateway ---- */

enum mode {
	M_ANSWER,   /* Content-Length, the connection kept */
	M_STREAM,   /* no length: the body, held open HOLD_MS, then closed */
	M_DROP      /* closed without an answer */
};

struct canned {
	const char *path;
	int status;
	const char *body;
	enum mode mode;
	int hold_ms;       /* M_STREAM: before closing; M_ANSWER: before */
	int used;
};

struct sent {
	char path[64];
	char auth[128];
	char *body;
};

#define MAX_CANNED 32
#define MAX_SENT 64
#define MAX_CONN 32

static struct {
	pthread_mutex_t mu;
	int lfd;
	int port;
	pthread_t accept_thread;
	pthread_t conn[MAX_CONN];
	int conn_fd[MAX_CONN];
	int n_conn;
	int stopping;
	struct canned canned[MAX_CANNED];
	int n_canned;
	struct sent sent[MAX_SENT];
	int n_sent;
} gw = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void
can(const char *path, int status, const char *body, enum mode mode,
    int hold_ms)
{
	pthread_mutex_lock(&gw.mu);
	assert_true(gw.n_canned < MAX_CANNED);
	gw.canned[gw.n_canned++] = (struct canned){ path, status, body,
	    mode, hold_ms, 0 };
	pthread_mutex_unlock(&gw.mu);
}

static int
n_sent(const char *path)
{
	int i, n = 0;

	pthread_mutex_lock(&gw.mu);
	for (i = 0; i < gw.n_sent; i++)
		n += path == NULL || strcmp(gw.sent[i].path, path) == 0;
	pthread_mutex_unlock(&gw.mu);
	return n;
}

/* The Nth (0-based) request to PATH, parsed; the caller decrefs. */
static json_t *
sent_body(const char *path, int nth, char *auth, size_t auth_len)
{
	json_t *o = NULL;
	int i;

	pthread_mutex_lock(&gw.mu);
	for (i = 0; i < gw.n_sent; i++)
		if (strcmp(gw.sent[i].path, path) == 0 && nth-- == 0) {
			o = json_loads(gw.sent[i].body, 0, NULL);
			if (auth != NULL)
				snprintf(auth, auth_len, "%s",
				    gw.sent[i].auth);
			break;
		}
	pthread_mutex_unlock(&gw.mu);
	assert_non_null(o);
	return o;
}

static const char *
str_at(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_string_value(v);
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		if ((k = send(fd, p, n, MSG_NOSIGNAL)) <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Sleep MS, in slices, unless the fake gateway is stopping. */
static void
hold(int ms)
{
	int i;

	for (i = 0; i < ms / 10 && !gw.stopping; i++)
		usleep(10000);
}

static void *
conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[65536];
	size_t len = 0;
	ssize_t k;

	for (;;) {
		char *hend, *p, *line;
		size_t clen = 0, hlen;
		struct sent s;
		struct canned c = { NULL, 500,
		    "{\"error\":\"no canned answer\",\"code\":13}", M_ANSWER,
		    0, 0 };
		char head[256];
		int i;

		memset(&s, 0, sizeof(s));
		while ((hend = memmem(buf, len, "\r\n\r\n", 4)) == NULL) {
			if (len == sizeof(buf) ||
			    (k = recv(fd, buf + len, sizeof(buf) - len, 0)) <= 0)
				goto out;
			len += (size_t)k;
		}
		hlen = (size_t)(hend - buf) + 4;
		*hend = '\0';
		if (sscanf(buf, "POST %63s", s.path) != 1)
			goto out;
		for (line = strstr(buf, "\r\n"); line != NULL;
		    line = strstr(line + 2, "\r\n")) {
			p = line + 2;
			if (strncasecmp(p, "Content-Length:", 15) == 0)
				clen = strtoul(p + 15, NULL, 10);
			else if (strncasecmp(p, "Authorization: ", 15) == 0)
				sscanf(p + 15, "%127[^\r]", s.auth);
		}
		while (len < hlen + clen) {
			if ((k = recv(fd, buf + len, sizeof(buf) - len, 0)) <= 0)
				goto out;
			len += (size_t)k;
		}
		s.body = strndup(buf + hlen, clen);
		memmove(buf, buf + hlen + clen, len - hlen - clen);
		len -= hlen + clen;
		pthread_mutex_lock(&gw.mu);
		if (gw.n_sent < MAX_SENT)
			gw.sent[gw.n_sent++] = s;
		else
			free(s.body);
		for (i = 0; i < gw.n_canned; i++)
			if (!gw.canned[i].used &&
			    strcmp(gw.canned[i].path, s.path) == 0) {
				gw.canned[i].used = 1;
				c = gw.canned[i];
				break;
			}
		pthread_mutex_unlock(&gw.mu);
		if (c.mode == M_DROP)
			goto out;
		if (c.mode == M_STREAM) {
			snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n"
			    "Content-Type: application/json\r\n"
			    "Connection: close\r\n\r\n", c.status);
			if (write_all(fd, head, strlen(head)) == 0 &&
			    write_all(fd, c.body, strlen(c.body)) == 0)
				hold(c.hold_ms);
			goto out;
		}
		hold(c.hold_ms);
		snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n"
		    "Content-Type: application/json\r\n"
		    "Content-Length: %zu\r\n\r\n", c.status, strlen(c.body));
		if (write_all(fd, head, strlen(head)) != 0 ||
		    write_all(fd, c.body, strlen(c.body)) != 0)
			goto out;
	}
out:
	shutdown(fd, SHUT_RDWR);
	return NULL;
}

static void *
accept_main(void *arg)
{
	struct pollfd p;
	int fd;

	(void)arg;
	while (!gw.stopping) {
		p.fd = gw.lfd;
		p.events = POLLIN;
		if (poll(&p, 1, 20) <= 0)
			continue;
		if ((fd = accept(gw.lfd, NULL, NULL)) < 0)
			continue;
		pthread_mutex_lock(&gw.mu);
		if (gw.n_conn == MAX_CONN) {
			pthread_mutex_unlock(&gw.mu);
			close(fd);
			continue;
		}
		gw.conn_fd[gw.n_conn] = fd;
		pthread_create(&gw.conn[gw.n_conn], NULL, conn_main,
		    (void *)(intptr_t)fd);
		gw.n_conn++;
		pthread_mutex_unlock(&gw.mu);
	}
	return NULL;
}

static void
gateway_start(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	gw.stopping = 0;
	gw.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(gw.lfd >= 0);
	assert_int_equal(bind(gw.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(gw.lfd, 16), 0);
	getsockname(gw.lfd, (struct sockaddr *)&a, &alen);
	gw.port = ntohs(a.sin_port);
	pthread_create(&gw.accept_thread, NULL, accept_main, NULL);
}

static void
gateway_stop(void)
{
	int i;

	gw.stopping = 1;
	pthread_join(gw.accept_thread, NULL);
	for (i = 0; i < gw.n_conn; i++)
		shutdown(gw.conn_fd[i], SHUT_RDWR);
	for (i = 0; i < gw.n_conn; i++) {
		pthread_join(gw.conn[i], NULL);
		close(gw.conn_fd[i]);
	}
	close(gw.lfd);
	for (i = 0; i < gw.n_sent; i++)
		free(gw.sent[i].body);
	gw.n_sent = gw.n_conn = gw.n_canned = 0;
}

/* ---- the client side ---- */

static struct wp_host *host;
static char url[64], dead_url[64];

static void
no_complete(struct wp_op *op, const struct wp_result *res)
{
	(void)op;
	(void)res;
}

/* Run the loop until *flag, for at most 5 s. */
static int
spin(const int *flag)
{
	int64_t end = mono_us() + 5000000;

	while (!*flag && mono_us() < end)
		uv_run(main_loop, UV_RUN_ONCE);
	return *flag;
}

static void
idle_ms(int ms)
{
	int64_t end = mono_us() + (int64_t)ms * 1000;

	while (mono_us() < end) {
		uv_run(main_loop, UV_RUN_NOWAIT);
		usleep(2000);
	}
}

struct got {
	int calls;
	enum etcd_err err;
	char msg[256];
	int64_t revision, lease_id, ttl_s, count;
	int succeeded, more;
	size_t n_kvs;
	struct etcd_kv kv[4];
	char bytes[4][2][64];
	size_t len[4][2];
};

static void
got_cb(void *arg, const struct etcd_result *r)
{
	struct got *g = arg;
	size_t i;

	g->calls++;
	g->err = r->err;
	snprintf(g->msg, sizeof(g->msg), "%s", r->message ? r->message : "");
	g->revision = r->revision;
	g->lease_id = r->lease_id;
	g->ttl_s = r->ttl_s;
	g->count = r->count;
	g->succeeded = r->succeeded;
	g->more = r->more;
	g->n_kvs = r->n_kvs;
	for (i = 0; i < r->n_kvs && i < 4; i++) {
		g->kv[i] = r->kvs[i];
		assert_true(r->kvs[i].key_len <= 64);
		assert_true(r->kvs[i].value_len <= 64);
		memcpy(g->bytes[i][0], r->kvs[i].key, r->kvs[i].key_len);
		memcpy(g->bytes[i][1], r->kvs[i].value, r->kvs[i].value_len);
		g->len[i][0] = r->kvs[i].key_len;
		g->len[i][1] = r->kvs[i].value_len;
		g->kv[i].key = g->kv[i].value = NULL;
	}
}

static struct etcd *
client_on(const char *const *eps, size_t n, const char *user,
    int64_t progress_us)
{
	struct etcd_opts o;
	struct etcd *e = NULL;

	memset(&o, 0, sizeof(o));
	o.endpoints = eps;
	o.n_endpoints = n;
	o.user = user;
	o.password = user != NULL ? "secret" : NULL;
	o.request_timeout_us = 2000000;
	o.watch_progress_us = progress_us;
	assert_int_equal(etcd_new(host, &o, &e), 0);
	return e;
}

static struct etcd *
client(void)
{
	const char *eps[] = { url };

	return client_on(eps, 1, NULL, 0);
}

static int
setup(void **state)
{
	(void)state;
	gateway_start();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", gw.port);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	gateway_stop();
	return 0;
}

#define HDR "\"header\":{\"cluster_id\":\"15118495548433857066\"," \
	"\"member_id\":\"13668033151171901709\",\"revision\":\"5\"," \
	"\"raft_term\":\"2\"}"

/* etcd_prefix_end: etcd's rule, including the 0xff cases. */
static void
test_prefix_end(void **state)
{
	char b[8];

	(void)state;
	assert_int_equal(etcd_prefix_end("wp/", 3, b), 3);
	assert_memory_equal(b, "wp0", 3);
	assert_int_equal(etcd_prefix_end("a\xff", 2, b), 1);
	assert_memory_equal(b, "b", 1);
	assert_int_equal(etcd_prefix_end("\xff\xff", 2, b), 1);
	assert_int_equal(b[0], '\0');
	assert_int_equal(etcd_prefix_end("", 0, b), 1);
	assert_int_equal(b[0], '\0');
}

/*
 * A range with binary keys and values and int64 fields beyond 2^53 (a
 * double would round them): decoded exactly; and what was sent: the key
 * base64, revision and limit as strings.
 */
static void
test_range_binary(void **state)
{
	struct etcd *e = client();
	struct got g = { 0 };
	json_t *o;
	/* "k\0\xff" / "" / "\x01\x02\x03\x04" / "ab" ; the second kv has
	 * no value at all (proto3 leaves the empty one out). */
	can("/v3/kv/range", 200, "{" HDR ",\"kvs\":["
	    "{\"key\":\"awD/\",\"create_revision\":\"9007199254740993\","
	    "\"mod_revision\":\"9007199254740995\",\"version\":\"3\","
	    "\"value\":\"AQIDBA==\",\"lease\":\"7587868812345678901\"},"
	    "{\"key\":\"YWI=\",\"create_revision\":\"2\","
	    "\"mod_revision\":\"2\",\"version\":\"1\"}],"
	    "\"more\":true,\"count\":\"3\"}", M_ANSWER, 0);

	(void)state;
	assert_int_equal(etcd_range(e, "k\0\xff", 3, "k\0\xff\x01", 4,
	    9007199254740993LL, 2, got_cb, &g, NULL), 0);
	assert_int_equal(g.calls, 0); /* never from inside the call */
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_OK);
	assert_int_equal(g.n_kvs, 2);
	assert_int_equal(g.count, 3);
	assert_int_equal(g.more, 1);
	assert_int_equal(g.len[0][0], 3);
	assert_memory_equal(g.bytes[0][0], "k\0\xff", 3);
	assert_int_equal(g.len[0][1], 4);
	assert_memory_equal(g.bytes[0][1], "\x01\x02\x03\x04", 4);
	assert_true(g.kv[0].create_revision == 9007199254740993LL);
	assert_true(g.kv[0].mod_revision == 9007199254740995LL);
	assert_true(g.kv[0].lease == 7587868812345678901LL);
	assert_int_equal(g.kv[0].version, 3);
	assert_int_equal(g.len[1][0], 2);
	assert_memory_equal(g.bytes[1][0], "ab", 2);
	assert_int_equal(g.len[1][1], 0);
	assert_int_equal(g.kv[1].lease, 0);

	o = sent_body("/v3/kv/range", 0, NULL, 0);
	assert_string_equal(str_at(o, "key", NULL), "awD/");
	assert_string_equal(str_at(o, "range_end", NULL), "awD/AQ==");
	assert_string_equal(str_at(o, "revision", NULL), "9007199254740993");
	assert_string_equal(str_at(o, "limit", NULL), "2");
	json_decref(o);
	etcd_free(e);
}

/* Base64 of every length modulo 3 survives the round trip (sent by the
 * client, echoed by the fake gateway as etcd would store it). */
static void
test_base64_lengths(void **state)
{
	static const char *const want[] = { "", "Zg==", "Zm8=", "Zm9v",
	    "Zm9vYg==", "Zm9vYmE=" };
	struct etcd *e = client();
	struct got g;
	json_t *o;
	size_t n;
	static char bodies[6][256];

	(void)state;
	for (n = 0; n < 6; n++) {
		snprintf(bodies[n], sizeof(bodies[n]), "{" HDR ",\"kvs\":[{"
		    "\"key\":\"%s\",\"value\":\"%s\"}],\"count\":\"1\"}",
		    want[n][0] ? want[n] : "eA==", want[n]);
		can("/v3/kv/range", 200, bodies[n], M_ANSWER, 0);
	}
	for (n = 0; n < 6; n++) {
		memset(&g, 0, sizeof(g));
		assert_int_equal(etcd_range(e, "foobar", n, NULL, 0, 0, 0,
		    got_cb, &g, NULL), 0);
		assert_true(spin(&g.calls));
		assert_int_equal(g.err, ETCD_OK);
		assert_int_equal(g.len[0][1], n);
		assert_memory_equal(g.bytes[0][1], "foobar", n);
		o = sent_body("/v3/kv/range", (int)n, NULL, 0);
		assert_string_equal(str_at(o, "key", NULL), want[n]);
		assert_null(json_object_get(o, "range_end"));
		json_decref(o);
	}
	etcd_free(e);
}

/* A failed txn has no `succeeded`; its range ops' kvs are flattened. And
 * what was sent: the compare and ops in the gateway's names. */
static void
test_txn_failed(void **state)
{
	struct etcd *e = client();
	struct got g = { 0 };
	struct etcd_cmp c = { .key = "own/s", .key_len = 5,
	    .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0 };
	struct etcd_op put = { .type = ETCD_OP_PUT, .key = "own/s",
	    .key_len = 5, .value = "a1", .value_len = 2,
	    .lease = 4111120407159297541LL };
	struct etcd_op get = { .type = ETCD_OP_RANGE, .key = "own/s",
	    .key_len = 5 };
	json_t *o, *x;

	(void)state;
	/* Recorded: the second claim of a taken key. */
	can("/v3/kv/txn", 200, "{" HDR ",\"responses\":[{\"response_range\":"
	    "{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"b3duL3M=\","
	    "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":"
	    "\"1\",\"value\":\"YTE=\",\"lease\":\"4111120407159297541\"}],"
	    "\"count\":\"1\"}}]}", M_ANSWER, 0);
	assert_int_equal(etcd_txn(e, &c, 1, &put, 1, &get, 1, got_cb, &g,
	    NULL), 0);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_OK);
	assert_int_equal(g.succeeded, 0);
	assert_int_equal(g.revision, 5);
	assert_int_equal(g.n_kvs, 1);
	assert_int_equal(g.kv[0].create_revision, 2);
	assert_true(g.kv[0].lease == 4111120407159297541LL);
	assert_memory_equal(g.bytes[0][1], "a1", 2);

	o = sent_body("/v3/kv/txn", 0, NULL, 0);
	x = json_array_get(json_object_get(o, "compare"), 0);
	assert_string_equal(str_at(x, "key", NULL), "b3duL3M=");
	assert_string_equal(str_at(x, "target", NULL), "CREATE");
	assert_string_equal(str_at(x, "result", NULL), "EQUAL");
	assert_string_equal(str_at(x, "create_revision", NULL), "0");
	x = json_array_get(json_object_get(o, "success"), 0);
	assert_string_equal(str_at(x, "request_put", "value"), "YTE=");
	assert_string_equal(str_at(x, "request_put", "lease"),
	    "4111120407159297541");
	x = json_array_get(json_object_get(o, "failure"), 0);
	assert_string_equal(str_at(x, "request_range", "key"), "b3duL3M=");
	json_decref(o);

	/* And one that held. */
	memset(&g, 0, sizeof(g));
	can("/v3/kv/txn", 200, "{" HDR ",\"succeeded\":true,\"responses\":"
	    "[{\"response_put\":{\"header\":{\"revision\":\"3\"}}}]}",
	    M_ANSWER, 0);
	assert_int_equal(etcd_txn(e, &c, 1, &put, 1, NULL, 0, got_cb, &g,
	    NULL), 0);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_OK);
	assert_int_equal(g.succeeded, 1);
	assert_int_equal(g.n_kvs, 0);
	etcd_free(e);
}

/* Compaction, lease not found (an error, or a keepalive with no TTL). */
static void
test_errors(void **state)
{
	struct etcd *e = client();
	struct got g = { 0 };

	(void)state;
	can("/v3/kv/range", 400, "{\"error\":\"etcdserver: mvcc: required "
	    "revision has been compacted\",\"message\":\"etcdserver: mvcc: "
	    "required revision has been compacted\",\"code\":11}", M_ANSWER, 0);
	etcd_range(e, "k", 1, NULL, 0, 2, 0, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_ECOMPACTED);
	assert_non_null(strstr(g.msg, "compacted"));

	memset(&g, 0, sizeof(g));
	can("/v3/lease/revoke", 404, "{\"error\":\"etcdserver: requested "
	    "lease not found\",\"message\":\"etcdserver: requested lease not "
	    "found\",\"code\":5}", M_ANSWER, 0);
	etcd_lease_revoke(e, 1, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_ENOTFOUND);

	memset(&g, 0, sizeof(g));
	can("/v3/lease/keepalive", 200, "{\"result\":{" HDR ",\"ID\":\"1\"}}",
	    M_ANSWER, 0);
	etcd_lease_keepalive(e, 1, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_ENOTFOUND);

	memset(&g, 0, sizeof(g));
	can("/v3/lease/keepalive", 200, "{\"result\":{" HDR ",\"ID\":"
	    "\"4111120407159297541\",\"TTL\":\"6\"}}", M_ANSWER, 0);
	etcd_lease_keepalive(e, 4111120407159297541LL, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_OK);
	assert_int_equal(g.ttl_s, 6);
	assert_true(g.lease_id == 4111120407159297541LL);

	memset(&g, 0, sizeof(g));
	can("/v3/lease/grant", 200, "{" HDR ",\"ID\":\"4111120407159297541\","
	    "\"TTL\":\"2\"}", M_ANSWER, 0);
	etcd_lease_grant(e, 1, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_OK);
	assert_int_equal(g.ttl_s, 2);
	assert_true(g.lease_id == 4111120407159297541LL);

	memset(&g, 0, sizeof(g));
	can("/v3/kv/txn", 400, "{\"error\":\"etcdserver: key is not "
	    "provided\",\"message\":\"etcdserver: key is not provided\","
	    "\"code\":3}", M_ANSWER, 0);
	{
		struct etcd_op op = { .type = ETCD_OP_PUT, .key = "",
		    .key_len = 0 };

		etcd_txn(e, NULL, 0, &op, 1, NULL, 0, got_cb, &g, NULL);
	}
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_EREFUSED);
	assert_string_equal(g.msg, "etcd: etcdserver: key is not provided");
	etcd_free(e);
}

/* Answers we cannot read: not JSON, bad base64, a bad int64, an HTTP
 * status with no etcd error. */
static void
test_proto(void **state)
{
	static const char *const bodies[] = {
		"not json",
		"{" HDR ",\"kvs\":[{\"key\":\"@@@@\"}],\"count\":\"1\"}",
		"{" HDR ",\"kvs\":[{\"key\":\"YQ\"}],\"count\":\"1\"}",
		"{" HDR ",\"kvs\":[{\"key\":\"YQ==\",\"version\":\"12x\"}]}",
		"{\"header\":{\"revision\":1.5}}",
	};
	struct etcd *e = client();
	struct got g;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		can("/v3/kv/range", 200, bodies[i], M_ANSWER, 0);
		memset(&g, 0, sizeof(g));
		etcd_range(e, "k", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
		assert_true(spin(&g.calls));
		assert_int_equal(g.err, ETCD_EPROTO);
	}
	can("/v3/kv/range", 404, "404 page not found", M_ANSWER, 0);
	memset(&g, 0, sizeof(g));
	etcd_range(e, "k", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_EPROTO);
	assert_non_null(strstr(g.msg, "404"));
	etcd_free(e);
}

/*
 * Auth: the first request authenticates (user, password), carries the
 * token; a token refused as invalid is renewed once and the request sent
 * again with the new one.
 */
static void
test_auth_token_invalid(void **state)
{
	const char *eps[] = { url };
	struct etcd *e = client_on(eps, 1, "wp", 0);
	struct got g = { 0 }, g2 = { 0 };
	char auth[128];
	json_t *o;

	(void)state;
	can("/v3/auth/authenticate", 200, "{" HDR ",\"token\":"
	    "\"ojSEluYebyOcAQKe.22\"}", M_ANSWER, 0);
	can("/v3/kv/range", 200, "{" HDR "}", M_ANSWER, 0);
	can("/v3/kv/range", 401, "{\"error\":\"etcdserver: invalid auth "
	    "token\",\"message\":\"etcdserver: invalid auth token\","
	    "\"code\":16}", M_ANSWER, 0);
	can("/v3/auth/authenticate", 200, "{" HDR ",\"token\":"
	    "\"second.23\"}", M_ANSWER, 0);
	can("/v3/kv/range", 200, "{" HDR ",\"count\":\"0\"}", M_ANSWER, 0);

	/* Two requests before any token: one authenticate. */
	etcd_range(e, "a", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
	etcd_range(e, "b", 1, NULL, 0, 0, 0, got_cb, &g2, NULL);
	assert_true(spin(&g.calls));
	assert_true(spin(&g2.calls));
	assert_int_equal(g.err, ETCD_OK);
	assert_int_equal(g2.err, ETCD_OK);
	assert_int_equal(n_sent("/v3/auth/authenticate"), 2);
	assert_int_equal(n_sent("/v3/kv/range"), 3);
	o = sent_body("/v3/auth/authenticate", 0, NULL, 0);
	assert_string_equal(str_at(o, "name", NULL), "wp");
	assert_string_equal(str_at(o, "password", NULL), "secret");
	json_decref(o);
	json_decref(sent_body("/v3/kv/range", 0, auth, sizeof(auth)));
	assert_string_equal(auth, "ojSEluYebyOcAQKe.22");
	json_decref(sent_body("/v3/kv/range", 1, auth, sizeof(auth)));
	assert_string_equal(auth, "ojSEluYebyOcAQKe.22");
	json_decref(sent_body("/v3/kv/range", 2, auth, sizeof(auth)));
	assert_string_equal(auth, "second.23");

	/* Refused again after renewing: no loop, EAUTH. */
	memset(&g, 0, sizeof(g));
	can("/v3/kv/range", 401, "{\"error\":\"etcdserver: invalid auth "
	    "token\",\"code\":16}", M_ANSWER, 0);
	can("/v3/auth/authenticate", 200, "{" HDR ",\"token\":\"third\"}",
	    M_ANSWER, 0);
	can("/v3/kv/range", 401, "{\"error\":\"etcdserver: invalid auth "
	    "token\",\"code\":16}", M_ANSWER, 0);
	etcd_range(e, "a", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_EAUTH);
	assert_int_equal(n_sent("/v3/auth/authenticate"), 3);
	etcd_free(e);
}

/* A refused password: every waiting request gets ETCD_EAUTH. */
static void
test_auth_refused(void **state)
{
	const char *eps[] = { url };
	struct etcd *e = client_on(eps, 1, "wp", 0);
	struct got g = { 0 }, g2 = { 0 };

	(void)state;
	can("/v3/auth/authenticate", 400, "{\"error\":\"etcdserver: "
	    "authentication failed, invalid user ID or password\",\"message\":"
	    "\"etcdserver: authentication failed, invalid user ID or "
	    "password\",\"code\":3}", M_ANSWER, 0);
	etcd_lease_grant(e, 5, got_cb, &g, NULL);
	etcd_range(e, "b", 1, NULL, 0, 0, 0, got_cb, &g2, NULL);
	assert_true(spin(&g.calls));
	assert_true(spin(&g2.calls));
	assert_int_equal(g.err, ETCD_EAUTH);
	assert_int_equal(g2.err, ETCD_EAUTH);
	assert_non_null(strstr(g.msg, "authentication failed"));
	assert_null(strstr(g.msg, "secret"));
	assert_int_equal(n_sent("/v3/auth/authenticate"), 1);
	assert_int_equal(n_sent("/v3/kv/range"), 0);
	etcd_free(e);
}

/* Rotation: a dead endpoint, then a 503 "leader changed", then one that
 * answers; with no endpoint left, ETCD_EUNAVAILABLE. */
static void
test_rotation(void **state)
{
	const char *eps[] = { dead_url, url, url };
	const char *eps2[] = { dead_url, url };
	struct etcd *e = client_on(eps, 3, NULL, 0);
	struct got g = { 0 };

	(void)state;
	can("/v3/kv/range", 503, "{\"error\":\"etcdserver: leader changed\","
	    "\"message\":\"etcdserver: leader changed\",\"code\":14}",
	    M_ANSWER, 0);
	can("/v3/kv/range", 200, "{" HDR ",\"count\":\"0\"}", M_ANSWER, 0);
	etcd_range(e, "k", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_OK);
	assert_int_equal(n_sent("/v3/kv/range"), 2);
	etcd_free(e);

	e = client_on(eps2, 2, NULL, 0);
	memset(&g, 0, sizeof(g));
	can("/v3/kv/range", 500, "{\"error\":\"etcdserver: request timed "
	    "out\",\"code\":2}", M_ANSWER, 0);
	etcd_range(e, "k", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_EUNAVAILABLE);
	assert_int_equal(n_sent("/v3/kv/range"), 3);

	/* A connection closed without an answer counts as a failure too. */
	memset(&g, 0, sizeof(g));
	can("/v3/kv/range", 200, "", M_DROP, 0);
	etcd_range(e, "k", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
	assert_true(spin(&g.calls));
	assert_int_equal(g.err, ETCD_EUNAVAILABLE);
	etcd_free(e);
}

/* Cancel: the callback never runs; free with requests in flight. */
static void
test_cancel(void **state)
{
	struct etcd *e = client();
	struct etcd_req *r = NULL;
	struct got g = { 0 }, g2 = { 0 };

	(void)state;
	can("/v3/kv/range", 200, "{" HDR "}", M_ANSWER, 200);
	can("/v3/kv/range", 200, "{" HDR "}", M_ANSWER, 200);
	assert_int_equal(etcd_range(e, "k", 1, NULL, 0, 0, 0, got_cb, &g, &r),
	    0);
	assert_non_null(r);
	etcd_cancel(r);
	etcd_cancel(NULL);
	idle_ms(400);
	assert_int_equal(g.calls, 0);
	etcd_range(e, "k", 1, NULL, 0, 0, 0, got_cb, &g2, NULL);
	etcd_free(e);
	idle_ms(300);
	assert_int_equal(g2.calls, 0);
	etcd_free(NULL);
}

/* ---- watches ---- */

struct seen {
	int batches, ups, downs, healthy, compacted;
	int64_t compact_revision;
	int n;
	char ev[16][64];
	int64_t rev[16];
	int stop_at;               /* stop inside fn at this batch (1-based) */
	struct etcd_watch *w;
};

static void
watch_fn(void *arg, const struct etcd_watch_batch *b)
{
	struct seen *s = arg;
	size_t i;

	s->batches++;
	if (b->healthy != s->healthy)
		*(b->healthy ? &s->ups : &s->downs) += 1;
	s->healthy = b->healthy;
	if (b->compacted) {
		s->compacted = 1;
		s->compact_revision = b->compact_revision;
	}
	for (i = 0; i < b->n_events && s->n < 16; i++, s->n++) {
		snprintf(s->ev[s->n], sizeof(s->ev[0]), "%s %.*s=%.*s",
		    b->events[i].type == ETCD_EVENT_PUT ? "PUT" : "DELETE",
		    (int)b->events[i].kv.key_len, b->events[i].kv.key,
		    (int)b->events[i].kv.value_len, b->events[i].kv.value);
		s->rev[s->n] = b->events[i].kv.mod_revision;
	}
	if (s->stop_at == s->batches)
		etcd_watch_stop(s->w);
}

/* Run the loop until S has N events (5 s at most). */
static int
spin_events(struct seen *s, int n)
{
	int64_t end = mono_us() + 5000000;

	while (s->n < n && mono_us() < end)
		uv_run(main_loop, UV_RUN_ONCE);
	return s->n >= n;
}

#define CREATED "{\"result\":{" HDR ",\"created\":true}}\n"

/* Events; a stream that ends is reopened from the last revision + 1 and
 * nothing is repeated; healthy reported down and up. */
static void
test_watch_resume(void **state)
{
	struct etcd *e = client();
	struct etcd_watch *w = NULL;
	struct seen s = { 0 };
	json_t *o;

	(void)state;
	can("/v3/watch", 200, "{\"result\":{" HDR ",\"created\":true}}\n"
	    "{\"result\":{" HDR ",\"events\":[{\"kv\":{\"key\":\"d3AvYQ==\","
	    "\"create_revision\":\"5\",\"mod_revision\":\"5\",\"version\":"
	    "\"1\",\"value\":\"djE=\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":"
	    "\"d3AvYg==\",\"mod_revision\":\"6\"}}]}}\n", M_STREAM, 0);
	can("/v3/watch", 200, "{\"result\":{" HDR ",\"created\":true}}\n"
	    "{\"result\":{" HDR ",\"events\":[{\"kv\":{\"key\":\"d3AvYw==\","
	    "\"create_revision\":\"7\",\"mod_revision\":\"7\",\"version\":"
	    "\"1\",\"value\":\"djM=\"}}]}}\n", M_STREAM, 3000);
	assert_int_equal(etcd_watch_start(e, "wp/", 3, "wp0", 3, 5, watch_fn,
	    &s, &w), 0);
	assert_int_equal(s.batches, 0);
	assert_true(spin_events(&s, 3));
	assert_string_equal(s.ev[0], "PUT wp/a=v1");
	assert_string_equal(s.ev[1], "DELETE wp/b=");
	assert_string_equal(s.ev[2], "PUT wp/c=v3");
	assert_int_equal(s.rev[1], 6);
	assert_int_equal(s.ups, 2);
	assert_int_equal(s.downs, 1);
	assert_int_equal(s.healthy, 1);
	assert_int_equal(n_sent("/v3/watch"), 2);
	o = sent_body("/v3/watch", 0, NULL, 0);
	assert_string_equal(str_at(o, "create_request", "key"), "d3Av");
	assert_string_equal(str_at(o, "create_request", "range_end"), "d3Aw");
	assert_string_equal(str_at(o, "create_request", "start_revision"),
	    "5");
	assert_true(json_is_true(json_object_get(json_object_get(o,
	    "create_request"), "progress_notify")));
	json_decref(o);
	o = sent_body("/v3/watch", 1, NULL, 0);
	assert_string_equal(str_at(o, "create_request", "start_revision"),
	    "7");
	json_decref(o);
	etcd_watch_stop(w);
	etcd_watch_stop(NULL);
	etcd_free(e);
}

/* A compacted start revision: one batch with compacted set, then the
 * watch has stopped (no new stream). */
static void
test_watch_compacted(void **state)
{
	struct etcd *e = client();
	struct etcd_watch *w = NULL;
	struct seen s = { 0 };

	(void)state;
	/* Recorded: a watch from 2 after `compact 3`. */
	can("/v3/watch", 200, "{\"result\":{" HDR ",\"created\":true}}\n"
	    "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\","
	    "\"member_id\":\"13668033151171901709\",\"raft_term\":\"2\"},"
	    "\"canceled\":true,\"compact_revision\":\"3\"}}\n", M_STREAM, 0);
	assert_int_equal(etcd_watch_start(e, "foo", 3, NULL, 0, 2, watch_fn,
	    &s, &w), 0);
	assert_true(spin(&s.compacted));
	assert_int_equal(s.compact_revision, 3);
	assert_int_equal(s.healthy, 0);
	idle_ms(300);
	assert_int_equal(n_sent("/v3/watch"), 1);
	assert_int_equal(s.n, 0);
	etcd_watch_stop(w);
	etcd_free(e);
}

/* A stream that goes silent past the progress bound is dead: healthy 0,
 * then a new stream (from where the first left). */
static void
test_watch_silent(void **state)
{
	const char *eps[] = { url };
	struct etcd *e = client_on(eps, 1, NULL, 100000); /* dead at 1.2 s */
	struct etcd_watch *w = NULL;
	struct seen s = { 0 };
	json_t *o;

	(void)state;
	can("/v3/watch", 200, "{\"result\":{" HDR ",\"created\":true}}\n",
	    M_STREAM, 4000);
	can("/v3/watch", 200, "{\"result\":{" HDR ",\"created\":true}}\n",
	    M_STREAM, 4000);
	assert_int_equal(etcd_watch_start(e, "k", 1, NULL, 0, 0, watch_fn, &s,
	    &w), 0);
	assert_true(spin(&s.healthy));
	assert_true(spin(&s.downs));
	assert_true(spin(&s.healthy));
	assert_int_equal(s.ups, 2);
	assert_int_equal(n_sent("/v3/watch"), 2);
	/* From now (0): the created header's revision (5) + 1. */
	o = sent_body("/v3/watch", 0, NULL, 0);
	assert_null(json_object_get(json_object_get(o, "create_request"),
	    "start_revision"));
	json_decref(o);
	o = sent_body("/v3/watch", 1, NULL, 0);
	assert_string_equal(str_at(o, "create_request", "start_revision"),
	    "6");
	json_decref(o);
	etcd_watch_stop(w);
	etcd_free(e);
}

/* etcd_watch_stop() inside fn(): fn is not called again. */
static void
test_watch_stop_in_fn(void **state)
{
	struct etcd *e = client();
	struct seen s = { 0 };

	(void)state;
	can("/v3/watch", 200, "{\"result\":{" HDR ",\"created\":true}}\n"
	    "{\"result\":{" HDR ",\"events\":[{\"kv\":{\"key\":\"YQ==\","
	    "\"mod_revision\":\"5\"}}]}}\n", M_STREAM, 1000);
	s.stop_at = 1;
	assert_int_equal(etcd_watch_start(e, "a", 1, NULL, 0, 0, watch_fn, &s,
	    &s.w), 0);
	assert_true(spin(&s.batches));
	idle_ms(300);
	assert_int_equal(s.batches, 1);
	assert_int_equal(s.n, 0);
	etcd_free(e);
}

/* A token refused on the stream: authenticate again and reopen. */
static void
test_watch_auth(void **state)
{
	const char *eps[] = { url };
	struct etcd *e = client_on(eps, 1, "wp", 0);
	struct etcd_watch *w = NULL;
	struct seen s = { 0 };
	char auth[128];

	(void)state;
	can("/v3/auth/authenticate", 200, "{" HDR ",\"token\":\"t1\"}",
	    M_ANSWER, 0);
	/* Recorded: the gateway's answer to a watch with a stale token. */
	can("/v3/watch", 200, "{\"result\":{" HDR ",\"watch_id\":\"-1\","
	    "\"created\":true,\"canceled\":true,\"cancel_reason\":\"rpc "
	    "error: code = Unauthenticated desc = etcdserver: invalid auth "
	    "token\"}}\n", M_STREAM, 0);
	can("/v3/auth/authenticate", 200, "{" HDR ",\"token\":\"t2\"}",
	    M_ANSWER, 0);
	can("/v3/watch", 200, "{\"result\":{" HDR ",\"created\":true}}\n",
	    M_STREAM, 2000);
	assert_int_equal(etcd_watch_start(e, "k", 1, NULL, 0, 0, watch_fn, &s,
	    &w), 0);
	assert_true(spin(&s.healthy));
	assert_int_equal(n_sent("/v3/auth/authenticate"), 2);
	assert_int_equal(n_sent("/v3/watch"), 2);
	json_decref(sent_body("/v3/watch", 1, auth, sizeof(auth)));
	assert_string_equal(auth, "t2");
	etcd_free(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test_setup_teardown(test_range_binary, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_base64_lengths, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_txn_failed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_token_invalid, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_auth_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_resume, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch_compacted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch_silent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch_stop_in_fn, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch_auth, setup,
		    teardown),
	};
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd, rc;

	if (host_loop_init() != 0)
		return 1;
	host = host_new("etcdtest", no_complete);
	/* A port nothing listens on: bound, never listened. */
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &alen);
	snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%d",
	    ntohs(a.sin_port));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	close(fd);
	host_free(host);
	host_loop_close();
	return rc;
}
