#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <uv.h>

#include "mockhost.h"

struct mock_plugin {
	void *dl;
	const struct wp_plugin *desc;
	void *state;
	struct wp_host host;
	uv_loop_t loop;
	char errors[8192];
	/* current operation */
	struct mock_result *cur;
	struct wp_request req;
	int done;
	uv_async_t async;
	pthread_mutex_t mu;
	struct wp_result pending;
	char pending_detail[1024];
	int pending_set;
	int64_t t0;
};

struct wp_op {
	struct mock_plugin *mp;
};

struct wp_watch {
	uv_poll_t poll;
	wp_watch_cb cb;
	void *arg;
	int fd;
};

struct wp_timer {
	uv_timer_t timer;
	wp_timer_cb cb;
	void *arg;
};

struct wp_diag {
	struct mock_plugin *mp;
};

struct wp_resolve {
	uv_getaddrinfo_t req;
	wp_resolve_cb cb;
	void *arg;
	int cancelled;
};

static struct mock_plugin *g_mp; /* one plugin at a time per test process */
static struct wp_op g_op;

static int64_t
m_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
m_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
m_log(const struct wp_host *h, int level, const char *fmt, ...)
{
	va_list ap;

	if (getenv("MOCK_QUIET"))
		return;
	fprintf(stderr, "[%s] L%d: ", h->plugin_name, level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void *
m_alloc(size_t n)
{
	return malloc(n);
}

static void
m_free(void *p)
{
	free(p);
}

static void
m_config_error(const struct wp_section *sec, const struct wp_kv *kv,
    const char *fmt, ...)
{
	struct mock_plugin *mp = sec->diag->mp;
	size_t len = strlen(mp->errors);
	va_list ap;

	/* As the agent's host does: "LINE: KEY: message". */
	snprintf(mp->errors + len, sizeof(mp->errors) - len, "%d: %s%s",
	    kv ? kv->line : 0, kv ? kv->key : "", kv ? ": " : "");
	len = strlen(mp->errors);
	va_start(ap, fmt);
	vsnprintf(mp->errors + len, sizeof(mp->errors) - len, fmt, ap);
	va_end(ap);
	len = strlen(mp->errors);
	snprintf(mp->errors + len, sizeof(mp->errors) - len, "\n");
}

static int
m_parse_duration(const char *s, int64_t *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return WP_EINVAL;
	if (*end == '\0' || strcmp(end, "s") == 0)
		v *= 1000;
	else if (strcmp(end, "ms") == 0)
		;
	else if (strcmp(end, "m") == 0)
		v *= 60000;
	else if (strcmp(end, "h") == 0)
		v *= 3600000;
	else if (strcmp(end, "d") == 0)
		v *= 86400000;
	else
		return WP_EINVAL;
	*ms = (int64_t)v;
	return 0;
}

static int
m_parse_bool(const char *s, int *out)
{
	static const char *t[] = { "true", "yes", "on", "1" };
	static const char *f[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, t[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(s, f[i]) == 0)
			return *out = 0, 0;
	}
	return WP_EINVAL;
}

static void
poll_cb(uv_poll_t *p, int status, int events)
{
	struct wp_watch *w = p->data;
	unsigned re = 0;

	if (events & UV_READABLE)
		re |= WP_READABLE;
	if (events & UV_WRITABLE)
		re |= WP_WRITABLE;
	if (status < 0)
		re |= WP_READABLE | WP_WRITABLE;
	w->cb(w, w->fd, re, w->arg);
}

static int
to_uv_events(unsigned ev)
{
	return ((ev & WP_READABLE) ? UV_READABLE : 0) |
	    ((ev & WP_WRITABLE) ? UV_WRITABLE : 0);
}

static struct wp_watch *
m_watch(const struct wp_host *h, int fd, unsigned events, wp_watch_cb cb,
    void *arg)
{
	struct wp_watch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->cb = cb;
	w->arg = arg;
	w->fd = fd;
	if (uv_poll_init_socket(&g_mp->loop, &w->poll, fd) != 0) {
		free(w);
		return NULL;
	}
	w->poll.data = w;
	if (events)
		uv_poll_start(&w->poll, to_uv_events(events), poll_cb);
	return w;
}

static int
m_watch_set(struct wp_watch *w, unsigned events)
{
	if (events == 0)
		return uv_poll_stop(&w->poll) == 0 ? 0 : WP_EIO;
	return uv_poll_start(&w->poll, to_uv_events(events), poll_cb) == 0 ?
	    0 : WP_EIO;
}

static void
free_on_close(uv_handle_t *h)
{
	free(h->data);
}

static void
m_unwatch(struct wp_watch *w)
{
	if (w == NULL)
		return;
	uv_poll_stop(&w->poll);
	uv_close((uv_handle_t *)&w->poll, free_on_close);
}

static void
timer_cb(uv_timer_t *t)
{
	struct wp_timer *wt = t->data;

	wt->cb(wt, wt->arg);
}

static struct wp_timer *
m_timer_new(const struct wp_host *h, wp_timer_cb cb, void *arg)
{
	struct wp_timer *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	uv_timer_init(&g_mp->loop, &t->timer);
	t->timer.data = t;
	t->cb = cb;
	t->arg = arg;
	return t;
}

static int
m_timer_set(struct wp_timer *t, int64_t ms)
{
	uv_timer_stop(&t->timer);
	if (ms >= 0)
		uv_timer_start(&t->timer, timer_cb, (uint64_t)ms, 0);
	return 0;
}

static void
m_timer_free(struct wp_timer *t)
{
	if (t == NULL)
		return;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, free_on_close);
}

static void
resolve_done(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct wp_resolve *r = req->data;

	if (!r->cancelled) {
		if (status == 0)
			r->cb(r->arg, 0, NULL, res);
		else
			r->cb(r->arg, status, uv_strerror(status), NULL);
	}
	uv_freeaddrinfo(res);
	free(r);
}

static struct wp_resolve *
m_resolve(const struct wp_host *h, const char *node, const char *service,
    const struct addrinfo *hints, wp_resolve_cb cb, void *arg)
{
	struct wp_resolve *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->cb = cb;
	r->arg = arg;
	r->req.data = r;
	if (uv_getaddrinfo(&g_mp->loop, &r->req, resolve_done, node, service,
	    hints) != 0) {
		free(r);
		return NULL;
	}
	return r;
}

static void
m_resolve_cancel(struct wp_resolve *r)
{
	if (r != NULL)
		r->cancelled = 1;
}

/* Any thread: record the result and wake the loop. */
static void
m_complete(struct wp_op *op, const struct wp_result *res)
{
	struct mock_plugin *mp = op->mp;
	size_t n = res->size < sizeof(mp->pending) ? res->size :
	    sizeof(mp->pending);

	pthread_mutex_lock(&mp->mu);
	if (mp->pending_set == 0) {
		struct wp_result r = WP_RESULT_INIT;
		memcpy(&r, res, n);
		mp->pending = r;
		snprintf(mp->pending_detail, sizeof(mp->pending_detail), "%s",
		    res->detail ? res->detail : "");
		mp->pending.detail = res->detail ? mp->pending_detail : NULL;
	}
	mp->pending_set++;
	pthread_mutex_unlock(&mp->mu);
	uv_async_send(&mp->async);
}

static void
async_cb(uv_async_t *a)
{
	(void)a;
}

struct mock_plugin *
mock_plugin_load(const char *file)
{
	struct mock_plugin *mp = calloc(1, sizeof(*mp));
	const struct wp_plugin *(*entry)(void);
	const char *dir = getenv("WP_PLUGIN_DIR");
	char path[4096];
	int rc;

	if (mp == NULL)
		abort();
	if (strchr(file, '/'))
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", file);
	mp->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (mp->dl == NULL) {
		fprintf(stderr, "mock: dlopen %s: %s\n", path, dlerror());
		abort();
	}
	*(void **)&entry = dlsym(mp->dl, WP_PLUGIN_SYMBOL);
	if (entry == NULL) {
		fprintf(stderr, "mock: %s has no %s\n", path, WP_PLUGIN_SYMBOL);
		abort();
	}
	mp->desc = entry();
	g_mp = mp;
	g_op.mp = mp;
	uv_loop_init(&mp->loop);
	uv_async_init(&mp->loop, &mp->async, async_cb);
	pthread_mutex_init(&mp->mu, NULL);
	mp->host = (struct wp_host){
		.size = sizeof(struct wp_host),
		.abi_major = WP_ABI_MAJOR,
		.abi_minor = WP_ABI_MINOR,
		.plugin_name = mp->desc->name,
		.log = m_log,
		.now_us = m_now_us,
		.wall_ms = m_wall_ms,
		.alloc = m_alloc,
		.free = m_free,
		.config_error = m_config_error,
		.parse_duration = m_parse_duration,
		.parse_bool = m_parse_bool,
		.watch = m_watch,
		.watch_set = m_watch_set,
		.unwatch = m_unwatch,
		.timer_new = m_timer_new,
		.timer_set = m_timer_set,
		.timer_free = m_timer_free,
		.resolve = m_resolve,
		.resolve_cancel = m_resolve_cancel,
		.complete = m_complete,
	};
	if (mp->desc->init) {
		rc = mp->desc->init(&mp->host, &mp->state);
		if (rc != 0) {
			fprintf(stderr, "mock: %s init failed: %d\n", path, rc);
			abort();
		}
	}
	return mp;
}

const struct wp_plugin *
mock_plugin_desc(struct mock_plugin *mp)
{
	return mp->desc;
}

const struct wp_host *
mock_host(struct mock_plugin *mp)
{
	return &mp->host;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void
mock_plugin_unload(struct mock_plugin *mp)
{
	if (mp == NULL)
		return;
	if (mp->desc->fini)
		mp->desc->fini(mp->state);
	uv_close((uv_handle_t *)&mp->async, NULL);
	uv_run(&mp->loop, UV_RUN_NOWAIT);
	uv_walk(&mp->loop, close_walk, NULL);
	uv_run(&mp->loop, UV_RUN_DEFAULT);
	uv_loop_close(&mp->loop);
	pthread_mutex_destroy(&mp->mu);
	/* Keep the module resident, as the daemon does. */
	g_mp = NULL;
	free(mp);
}

int
mock_configure(struct mock_plugin *mp, const char *name,
    const char *const *kv, int64_t timeout_ms, void **inst)
{
	struct wp_kv items[64];
	struct wp_diag diag = { mp };
	struct wp_section sec;
	size_t n = 0;

	mp->errors[0] = '\0';
	while (kv && kv[2 * n] && n < 64) {
		items[n].key = kv[2 * n];
		items[n].value = kv[2 * n + 1];
		items[n].line = (int)n + 1;
		n++;
	}
	sec = (struct wp_section){
		.size = sizeof(sec),
		.name = name,
		.file = "mock.ini",
		.line = 0,
		.kv = items,
		.n_kv = n,
		.timeout_ms = timeout_ms,
		.diag = &diag,
	};
	*inst = NULL;
	return mp->desc->configure(mp->state, &sec, inst);
}

const char *
mock_errors(struct mock_plugin *mp)
{
	return mp->errors;
}

void
mock_release(struct mock_plugin *mp, void *inst)
{
	if (mp->desc->release)
		mp->desc->release(mp->state, inst);
}

struct blocking_job {
	struct mock_plugin *mp;
	void *inst;
	struct wp_request req;
	pthread_t th;
};

static void *
blocking_main(void *arg)
{
	struct blocking_job *j = arg;
	struct wp_result r = WP_RESULT_INIT;
	int rc = j->mp->desc->check(j->inst, &j->req, &r);

	if (rc != 0) {
		r.ok = 0;
		r.reason = WP_REASON_PLUGIN;
		r.detail = "plugin error";
	}
	m_complete(&g_op, &r);
	return NULL;
}

void
mock_spin(struct mock_plugin *mp, int64_t ms)
{
	int64_t end = m_now_us() + ms * 1000;

	while (m_now_us() < end) {
		uv_update_time(&mp->loop);
		uv_run(&mp->loop, UV_RUN_NOWAIT);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

void
mock_run(struct mock_plugin *mp, void *inst, int64_t timeout_ms,
    const struct wp_alert *alert, struct mock_result *out)
{
	struct blocking_job *job = NULL;
	void *opstate = NULL;
	int64_t deadline;
	int cancelled = 0;
	int64_t grace_end = 0;

	memset(out, 0, sizeof(*out));
	mp->pending_set = 0;
	mp->t0 = m_now_us();
	deadline = mp->t0 + timeout_ms * 1000;
	mp->req = (struct wp_request){
		.size = sizeof(struct wp_request),
		.op = &g_op,
		.monitor = "mock",
		.started_us = mp->t0,
		.deadline_us = deadline,
		.attempt = 0,
		.alert = alert,
	};
	if (mp->desc->start) {
		out->start_rc = mp->desc->start(inst, &mp->req, &opstate);
		if (out->start_rc != 0)
			return;
	} else {
		job = calloc(1, sizeof(*job));
		job->mp = mp;
		job->inst = inst;
		job->req = mp->req;
		pthread_create(&job->th, NULL, blocking_main, job);
	}
	for (;;) {
		int64_t now = m_now_us();
		int set;

		pthread_mutex_lock(&mp->mu);
		set = mp->pending_set;
		pthread_mutex_unlock(&mp->mu);
		if (set && grace_end == 0) {
			out->elapsed_ms = (double)(now - mp->t0) / 1000.0;
			grace_end = now + 100000;
		}
		if (grace_end && now >= grace_end)
			break;
		if (!set && !cancelled && now >= deadline) {
			out->timed_out = 1;
			cancelled = 1;
			if (mp->desc->cancel)
				mp->desc->cancel(inst, opstate);
			else
				break; /* blocking: a late result is discarded */
		}
		uv_update_time(&mp->loop);
		uv_run(&mp->loop, UV_RUN_NOWAIT);
		{
			struct timespec ts = { 0, 500000 };
			nanosleep(&ts, NULL);
		}
	}
	if (job) {
		pthread_join(job->th, NULL);
		free(job);
	}
	pthread_mutex_lock(&mp->mu);
	out->completions = mp->pending_set;
	out->r = mp->pending;
	memcpy(out->detail, mp->pending_detail, sizeof(out->detail));
	out->r.detail = mp->pending.detail ? out->detail : NULL;
	pthread_mutex_unlock(&mp->mu);
}
