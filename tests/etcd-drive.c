/*
 * etcd-drive -- drives core/etcd.c on the real loop against a real etcd
 * (started by tests/test-etcd-live.sh).  Not a test by itself.
 *
 *   etcd-drive scenario LIVE DEAD ETCD_PID   every step; exit 0 if all held
 *   etcd-drive auth LIVE USER PASSWORD       auth on: grant, range, and a
 *                                            refused password
 *   etcd-drive authagain LIVE USER PASSWORD  authenticate, wait for a line
 *                                            on stdin (the script turns
 *                                            auth off and on: the token is
 *                                            gone), range again
 *   etcd-drive bench LIVE SECONDS            requests/s, 1 and 32 in flight
 *
 * LIVE and DEAD are endpoint URLs (DEAD: nothing listens).  ETCDCTL names
 * the etcdctl binary (default /usr/bin/etcdctl).  Every wait is bounded;
 * a step that fails prints what it saw and exits 1.
 */
#include "config.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "etcd.h"
#include "host.h"
#include "util.h"

static struct wp_host *host;

static void
no_complete(struct wp_op *op, const struct wp_result *res)
{
	(void)op;
	(void)res;
}

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, \
		    #cond);						\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		exit(1);						\
	}								\
} while (0)

/* Run the loop until *flag, for at most SECONDS. */
static int
spin(const int *flag, int seconds)
{
	int64_t end = mono_us() + (int64_t)seconds * 1000000;

	while (!*flag && mono_us() < end)
		uv_run(main_loop, UV_RUN_ONCE);
	return *flag;
}

/* Run the loop for MS milliseconds. */
static void
idle(int ms)
{
	int64_t end = mono_us() + (int64_t)ms * 1000;

	while (mono_us() < end)
		uv_run(main_loop, UV_RUN_NOWAIT), usleep(1000);
}

struct kvcopy {
	char key[128], value[128];
	int64_t create, mod, version, lease;
};

/* A finished request, copied. */
struct got {
	int done;
	enum etcd_err err;
	char msg[512];
	int64_t revision, lease_id, ttl_s, count;
	int succeeded, more;
	size_t n_kvs;
	struct kvcopy kv[8];
};

static void
copy_kv(struct kvcopy *c, const struct etcd_kv *kv)
{
	snprintf(c->key, sizeof(c->key), "%.*s", (int)kv->key_len, kv->key);
	snprintf(c->value, sizeof(c->value), "%.*s", (int)kv->value_len,
	    kv->value);
	c->create = kv->create_revision;
	c->mod = kv->mod_revision;
	c->version = kv->version;
	c->lease = kv->lease;
}

static void
got_cb(void *arg, const struct etcd_result *r)
{
	struct got *g = arg;
	size_t i;

	memset(g, 0, sizeof(*g));
	g->done = 1;
	g->err = r->err;
	snprintf(g->msg, sizeof(g->msg), "%s", r->message ? r->message : "");
	g->revision = r->revision;
	g->lease_id = r->lease_id;
	g->ttl_s = r->ttl_s;
	g->count = r->count;
	g->succeeded = r->succeeded;
	g->more = r->more;
	g->n_kvs = r->n_kvs;
	for (i = 0; i < r->n_kvs && i < 8; i++)
		copy_kv(&g->kv[i], &r->kvs[i]);
}

/* Wait for G (10 s at most); fail if it never finished. */
static struct got *
await(struct got *g, const char *what)
{
	CHECK(spin(&g->done, 10), "%s never finished", what);
	return g;
}

/* What a watch saw. */
struct seen {
	int batches, healthy, ups, downs, compacted;
	int64_t compact_revision;
	int n;
	char ev[64][160];
	int64_t rev[64];
};

static void
watch_fn(void *arg, const struct etcd_watch_batch *b)
{
	struct seen *s = arg;
	size_t i;

	s->batches++;
	if (b->compacted) {
		s->compacted = 1;
		s->compact_revision = b->compact_revision;
	}
	if (b->healthy != s->healthy) {
		if (b->healthy)
			s->ups++;
		else
			s->downs++;
	}
	s->healthy = b->healthy;
	for (i = 0; i < b->n_events && s->n < 64; i++, s->n++) {
		snprintf(s->ev[s->n], sizeof(s->ev[0]), "%s %.*s=%.*s",
		    b->events[i].type == ETCD_EVENT_PUT ? "PUT" : "DELETE",
		    (int)b->events[i].kv.key_len, b->events[i].kv.key,
		    (int)b->events[i].kv.value_len, b->events[i].kv.value);
		s->rev[s->n] = b->events[i].kv.mod_revision;
	}
}

/* Occurrences of EV in S. */
static int
seen_count(const struct seen *s, const char *ev)
{
	int i, n = 0;

	for (i = 0; i < s->n; i++)
		n += strcmp(s->ev[i], ev) == 0;
	return n;
}

/* Wait until S holds EV (10 s at most). */
static void
await_event(struct seen *s, const char *ev)
{
	int64_t end = mono_us() + 10000000;

	while (seen_count(s, ev) == 0 && mono_us() < end)
		uv_run(main_loop, UV_RUN_ONCE);
	if (seen_count(s, ev) == 0) {
		int i;

		fprintf(stderr, "FAIL: the watch never saw \"%s\"; it saw:\n",
		    ev);
		for (i = 0; i < s->n; i++)
			fprintf(stderr, "  %s (rev %lld)\n", s->ev[i],
			    (long long)s->rev[i]);
		exit(1);
	}
}

static struct etcd *
client(const char *const *eps, size_t n, const char *user, const char *pw)
{
	struct etcd_opts o;
	struct etcd *e = NULL;

	memset(&o, 0, sizeof(o));
	o.endpoints = eps;
	o.n_endpoints = n;
	o.user = user;
	o.password = pw;
	o.request_timeout_us = 3000000;
	/* The script starts etcd with a 500 ms progress interval. */
	o.watch_progress_us = 500000;
	CHECK(etcd_new(host, &o, &e) == 0, "etcd_new");
	return e;
}

/* A put as a txn: only if KEY does not exist (create_revision 0). */
static struct got *
put_if_absent(struct etcd *e, struct got *g, const char *key,
    const char *value, int64_t lease)
{
	struct etcd_cmp c = { .key = key, .key_len = strlen(key),
	    .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0 };
	struct etcd_op put = { .type = ETCD_OP_PUT, .key = key,
	    .key_len = strlen(key), .value = value, .value_len = strlen(value),
	    .lease = lease };
	struct etcd_op get = { .type = ETCD_OP_RANGE, .key = key,
	    .key_len = strlen(key) };

	g->done = 0;
	CHECK(etcd_txn(e, &c, 1, &put, 1, &get, 1, got_cb, g, NULL) == 0,
	    "etcd_txn");
	return await(g, "txn");
}

static struct got *
put(struct etcd *e, struct got *g, const char *key, const char *value,
    int64_t lease)
{
	struct etcd_op op = { .type = ETCD_OP_PUT, .key = key,
	    .key_len = strlen(key), .value = value, .value_len = strlen(value),
	    .lease = lease };

	g->done = 0;
	CHECK(etcd_txn(e, NULL, 0, &op, 1, NULL, 0, got_cb, g, NULL) == 0,
	    "etcd_txn");
	return await(g, "put");
}

static struct got *
del(struct etcd *e, struct got *g, const char *key)
{
	struct etcd_op op = { .type = ETCD_OP_DELETE, .key = key,
	    .key_len = strlen(key) };

	g->done = 0;
	CHECK(etcd_txn(e, NULL, 0, &op, 1, NULL, 0, got_cb, g, NULL) == 0,
	    "etcd_txn");
	return await(g, "delete");
}

static struct got *
range_prefix(struct etcd *e, struct got *g, const char *prefix, int64_t rev)
{
	char end[64];
	size_t n = etcd_prefix_end(prefix, strlen(prefix), end);

	g->done = 0;
	CHECK(etcd_range(e, prefix, strlen(prefix), end, n, rev, 0, got_cb,
	    g, NULL) == 0, "etcd_range");
	return await(g, "range");
}

static void
run_etcdctl(const char *live, const char *args)
{
	const char *ctl = getenv("ETCDCTL");
	char *cmd = xasprintf("%s --endpoints=%s %s >/dev/null", ctl ? ctl :
	    "/usr/bin/etcdctl", live, args);

	CHECK(system(cmd) == 0, "%s", cmd);
	free(cmd);
}

static int
scenario(const char *live, const char *dead, pid_t etcd_pid)
{
	const char *eps[] = { dead, live };
	struct etcd *e = client(eps, 2, NULL, NULL);
	struct etcd_watch *w, *w2;
	struct seen *s = xcalloc(1, sizeof(*s)), *s2;
	struct got g;
	int64_t lease, r1, rc;
	char b[64];

	/* 1. Grant through a dead first endpoint: rotation. */
	g.done = 0;
	CHECK(etcd_lease_grant(e, 30, got_cb, &g, NULL) == 0, "grant");
	await(&g, "grant");
	CHECK(g.err == ETCD_OK, "grant: %d %s", g.err, g.msg);
	CHECK(g.lease_id != 0 && g.ttl_s == 30, "lease %lld ttl %lld",
	    (long long)g.lease_id, (long long)g.ttl_s);
	lease = g.lease_id;
	printf("ok - grant through a dead first endpoint: lease %lld\n",
	    (long long)lease);

	/* 2. One renewal. */
	g.done = 0;
	CHECK(etcd_lease_keepalive(e, lease, got_cb, &g, NULL) == 0, "ka");
	await(&g, "keepalive");
	CHECK(g.err == ETCD_OK && g.ttl_s > 0 && g.ttl_s <= 30 &&
	    g.lease_id == lease, "keepalive: %d %s ttl %lld", g.err, g.msg,
	    (long long)g.ttl_s);
	printf("ok - keepalive: ttl %lld\n", (long long)g.ttl_s);

	/* 3. A watch over the prefix, from now. */
	CHECK(etcd_watch_start(e, "wp/", 3, "wp0", 3, 0, watch_fn, s, &w) ==
	    0, "watch");
	CHECK(spin(&s->healthy, 10), "the watch never opened");

	/* 4. The claim: put only if absent, bound to the lease. */
	put_if_absent(e, &g, "wp/a", "v1", lease);
	CHECK(g.err == ETCD_OK && g.succeeded == 1 && g.revision > 0,
	    "claim: %d %s succeeded %d", g.err, g.msg, g.succeeded);
	r1 = g.revision;
	/* 5. Again: the compare fails; the failure branch's range shows
	 * the holder's create_revision (its fencing token). */
	put_if_absent(e, &g, "wp/a", "v2", lease);
	CHECK(g.err == ETCD_OK && g.succeeded == 0 && g.n_kvs == 1,
	    "second claim: %d %s succeeded %d n %zu", g.err, g.msg,
	    g.succeeded, g.n_kvs);
	CHECK(strcmp(g.kv[0].value, "v1") == 0 && g.kv[0].create == r1 &&
	    g.kv[0].lease == lease, "holder %s create %lld lease %lld",
	    g.kv[0].value, (long long)g.kv[0].create,
	    (long long)g.kv[0].lease);
	printf("ok - txn with a compare on create_revision: claimed at "
	    "%lld, second refused\n", (long long)r1);

	/* 6. Range with the prefix. */
	put(e, &g, "wp/b", "vb", 0);
	CHECK(g.err == ETCD_OK && g.succeeded == 1, "put: %s", g.msg);
	put(e, &g, "wq", "outside", 0);
	range_prefix(e, &g, "wp/", 0);
	CHECK(g.err == ETCD_OK && g.n_kvs == 2 && g.count == 2,
	    "range: %d %s n %zu", g.err, g.msg, g.n_kvs);
	CHECK(strcmp(g.kv[0].key, "wp/a") == 0 &&
	    strcmp(g.kv[1].key, "wp/b") == 0 &&
	    strcmp(g.kv[1].value, "vb") == 0, "range kvs %s %s",
	    g.kv[0].key, g.kv[1].key);
	printf("ok - range with a prefix: 2 keys\n");

	/* 7. The watch sees the puts and a delete. */
	del(e, &g, "wp/b");
	CHECK(g.err == ETCD_OK, "delete: %s", g.msg);
	await_event(s, "PUT wp/a=v1");
	await_event(s, "PUT wp/b=vb");
	await_event(s, "DELETE wp/b=");
	CHECK(seen_count(s, "PUT wq=outside") == 0, "outside the prefix");
	printf("ok - the watch saw the puts and the delete\n");

	/* Quiet for longer than the silence bound (2 x 500 ms + 1 s): the
	 * server's progress notifications keep the stream alive. */
	idle(3500);
	CHECK(s->downs == 0 && s->healthy == 1, "a quiet stream was taken "
	    "for dead (%d downs): progress notifications not seen", s->downs);
	printf("ok - progress notifications keep a quiet stream alive\n");

	/* 8. Revoking the lease deletes its key: the watch sees it. */
	g.done = 0;
	CHECK(etcd_lease_revoke(e, lease, got_cb, &g, NULL) == 0, "revoke");
	await(&g, "revoke");
	CHECK(g.err == ETCD_OK, "revoke: %s", g.msg);
	await_event(s, "DELETE wp/a=");
	range_prefix(e, &g, "wp/", 0);
	CHECK(g.err == ETCD_OK && g.n_kvs == 0, "after revoke: %zu keys",
	    g.n_kvs);
	printf("ok - revoke deleted the attached key (seen by the watch)\n");

	/* 9. The lease is gone: keepalive, revoke and a put say so. */
	g.done = 0;
	etcd_lease_keepalive(e, lease, got_cb, &g, NULL);
	await(&g, "keepalive");
	CHECK(g.err == ETCD_ENOTFOUND, "keepalive after revoke: %d %s",
	    g.err, g.msg);
	g.done = 0;
	etcd_lease_revoke(e, lease, got_cb, &g, NULL);
	await(&g, "revoke");
	CHECK(g.err == ETCD_ENOTFOUND, "revoke again: %d %s", g.err, g.msg);
	put(e, &g, "wp/c", "x", lease);
	CHECK(g.err == ETCD_ENOTFOUND, "put on a gone lease: %d %s", g.err,
	    g.msg);
	printf("ok - lease not found: keepalive, revoke, put\n");

	/* 10. Compaction: a range and a watch from before it. */
	put(e, &g, "wp/d", "vd", 0);
	rc = g.revision;
	etcd_watch_stop(w);
	snprintf(b, sizeof(b), "compact %lld", (long long)rc);
	run_etcdctl(live, b);
	range_prefix(e, &g, "wp/", r1);
	CHECK(g.err == ETCD_ECOMPACTED, "range at a compacted revision: %d "
	    "%s", g.err, g.msg);
	memset(s, 0, sizeof(*s));
	CHECK(etcd_watch_start(e, "wp/", 3, "wp0", 3, r1, watch_fn, s, &w) ==
	    0, "watch");
	CHECK(spin(&s->compacted, 10), "no compacted batch");
	CHECK(s->compact_revision == rc && s->n == 0, "compact_revision "
	    "%lld (want %lld), %d events", (long long)s->compact_revision,
	    (long long)rc, s->n);
	etcd_watch_stop(w);
	printf("ok - compaction: range ECOMPACTED, watch compacted at %lld\n",
	    (long long)rc);

	/* 11. A dead stream (etcd stopped): silence -> healthy 0; etcd
	 * back: the stream reopens and no event is seen twice. */
	s2 = xcalloc(1, sizeof(*s2));
	CHECK(etcd_watch_start(e, "wp/", 3, "wp0", 3, rc + 1, watch_fn, s2,
	    &w2) == 0, "watch");
	CHECK(spin(&s2->healthy, 10), "the watch never opened");
	put(e, &g, "wp/x", "before", 0);
	await_event(s2, "PUT wp/x=before");
	CHECK(kill(etcd_pid, SIGSTOP) == 0, "SIGSTOP");
	s2->downs = 0;
	{
		int64_t end = mono_us() + 15000000;

		while (s2->downs == 0 && mono_us() < end)
			uv_run(main_loop, UV_RUN_ONCE);
	}
	CHECK(kill(etcd_pid, SIGCONT) == 0, "SIGCONT");
	CHECK(s2->downs == 1 && s2->healthy == 0, "no healthy=0 batch on a "
	    "silent stream");
	CHECK(spin(&s2->healthy, 20), "the stream never came back");
	put(e, &g, "wp/y", "after", 0);
	CHECK(g.err == ETCD_OK, "put after SIGCONT: %s", g.msg);
	await_event(s2, "PUT wp/y=after");
	idle(300);
	CHECK(seen_count(s2, "PUT wp/x=before") == 1 &&
	    seen_count(s2, "PUT wp/y=after") == 1, "events repeated or lost "
	    "after the reconnect (%d, %d)", seen_count(s2, "PUT wp/x=before"),
	    seen_count(s2, "PUT wp/y=after"));
	printf("ok - a silent stream is reported dead, reopened, nothing "
	    "repeated\n");
	etcd_watch_stop(w2);

	/* 12. Every endpoint dead: unavailable. */
	{
		const char *deads[] = { dead, dead };
		struct etcd *d = client(deads, 2, NULL, NULL);

		g.done = 0;
		etcd_range(d, "k", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
		await(&g, "range");
		CHECK(g.err == ETCD_EUNAVAILABLE, "all dead: %d %s", g.err,
		    g.msg);
		etcd_free(d);
	}
	printf("ok - every endpoint dead: ETCD_EUNAVAILABLE\n");

	/* 13. Freeing with requests and a watch in flight. */
	CHECK(etcd_watch_start(e, "wp/", 3, "wp0", 3, 0, watch_fn, s, &w) ==
	    0, "watch");
	g.done = 0;
	etcd_range(e, "k", 1, NULL, 0, 0, 0, got_cb, &g, NULL);
	etcd_free(e);
	idle(50);
	CHECK(!g.done, "a callback after etcd_free");
	free(s);
	free(s2);
	return 0;
}

static int
auth(const char *live, const char *user, const char *pw, int again)
{
	const char *eps[] = { live };
	struct etcd *e = client(eps, 1, user, pw), *bad;
	struct got g;
	char line[64];

	range_prefix(e, &g, "wp/", 0);
	CHECK(g.err == ETCD_OK, "range with auth: %d %s", g.err, g.msg);
	put(e, &g, "wp/auth", "yes", 0);
	CHECK(g.err == ETCD_OK && g.succeeded, "put with auth: %d %s", g.err,
	    g.msg);
	printf("ok - authenticated requests\n");
	if (again) {
		/* The script turns auth off and on: every token is gone. */
		printf("READY\n");
		fflush(stdout);
		CHECK(fgets(line, sizeof(line), stdin) != NULL, "stdin");
		range_prefix(e, &g, "wp/auth", 0);
		CHECK(g.err == ETCD_OK && g.n_kvs == 1, "range after the "
		    "token was invalidated: %d %s", g.err, g.msg);
		printf("ok - re-authenticated after the token was "
		    "invalidated\n");
	}
	etcd_free(e);
	bad = client(eps, 1, user, "wrong-password");
	range_prefix(bad, &g, "wp/", 0);
	CHECK(g.err == ETCD_EAUTH, "a wrong password: %d %s", g.err, g.msg);
	etcd_free(bad);
	printf("ok - a wrong password: ETCD_EAUTH (%s)\n", g.msg);
	return 0;
}

/* The bench: range requests on one key, DEPTH in flight, for SECONDS
 * (and at most 1,000,000 requests). */
struct bench {
	struct etcd *e;
	long done, started, errors, limit;
	int64_t end;
	int stop;
};

static void bench_one(struct bench *b);

static void
bench_cb(void *arg, const struct etcd_result *r)
{
	struct bench *b = arg;

	b->done++;
	if (r->err != ETCD_OK)
		b->errors++;
	if (mono_us() < b->end && b->started < b->limit)
		bench_one(b);
	else if (b->done == b->started)
		b->stop = 1;
}

static void
bench_one(struct bench *b)
{
	if (etcd_range(b->e, "bench", 5, NULL, 0, 0, 0, bench_cb, b, NULL) ==
	    0)
		b->started++;
}

static void
bench_txn_cb(void *arg, const struct etcd_result *r)
{
	struct bench *b = arg;
	struct etcd_op op = { .type = ETCD_OP_PUT, .key = "bench", .key_len = 5,
	    .value = "v", .value_len = 1 };

	b->done++;
	if (r->err != ETCD_OK)
		b->errors++;
	if (mono_us() < b->end && b->started < b->limit) {
		if (etcd_txn(b->e, NULL, 0, &op, 1, NULL, 0, bench_txn_cb, b,
		    NULL) == 0)
			b->started++;
	} else if (b->done == b->started)
		b->stop = 1;
}

static int
bench(const char *live, int seconds)
{
	const char *eps[] = { live };
	static const int depths[] = { 1, 32 };
	struct etcd_op op = { .type = ETCD_OP_PUT, .key = "bench", .key_len = 5,
	    .value = "v", .value_len = 1 };
	struct bench b;
	int64_t t0;
	int i, k, txn;

	for (txn = 0; txn < 2; txn++)
		for (k = 0; k < 2; k++) {
			memset(&b, 0, sizeof(b));
			b.e = client(eps, 1, NULL, NULL);
			b.limit = 1000000;
			t0 = mono_us();
			b.end = t0 + (int64_t)seconds * 1000000;
			for (i = 0; i < depths[k]; i++) {
				if (txn) {
					if (etcd_txn(b.e, NULL, 0, &op, 1, NULL,
					    0, bench_txn_cb, &b, NULL) == 0)
						b.started++;
				} else {
					bench_one(&b);
				}
			}
			spin(&b.stop, seconds + 10);
			printf("%s, %d in flight: %ld requests in %.2f s = %.0f/s"
			    " (%ld errors)\n", txn ? "txn put" : "range",
			    depths[k], b.done, (mono_us() - t0) / 1e6,
			    b.done / ((mono_us() - t0) / 1e6), b.errors);
			etcd_free(b.e);
		}
	return 0;
}

int
main(int argc, char **argv)
{
	int rc = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (host_loop_init() != 0)
		return 1;
	host = host_new("etcd-drive", no_complete);
	if (argc == 5 && strcmp(argv[1], "scenario") == 0)
		rc = scenario(argv[2], argv[3], (pid_t)atol(argv[4]));
	else if (argc == 5 && strcmp(argv[1], "auth") == 0)
		rc = auth(argv[2], argv[3], argv[4], 0);
	else if (argc == 5 && strcmp(argv[1], "authagain") == 0)
		rc = auth(argv[2], argv[3], argv[4], 1);
	else if (argc == 4 && strcmp(argv[1], "bench") == 0)
		rc = bench(argv[2], atoi(argv[3]));
	else
		fprintf(stderr, "usage: see tests/etcd-drive.c\n");
	host_free(host);
	host_loop_close();
	return rc;
}
