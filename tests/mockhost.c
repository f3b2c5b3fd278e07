#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <netdb.h>

#include <uv.h>

#include "command.h"
#include "diag.h"
#include "host.h"
#include "keys.h"
#include "mockhost.h"

#define MOCK_MAX_INST 64
#define MOCK_MAX_KV 64

struct mock_plugin {
	void *dl;
	const struct wp_plugin *desc;
	void *state;
	struct wp_host host;
	uv_loop_t loop;
	char errors[8192];
	/* the section being configured, for config_error()'s lines */
	const struct cfg_kv *kv;
	size_t n_kv;
	/* each live instance and the conf the host parsed for it */
	struct {
		void *inst;
		void *conf;
	} confs[MOCK_MAX_INST];
	int64_t interval_ms;	/* for wp_section.interval_us */
	/* current operation */
	struct mock_result *cur;
	struct wp_request req;
	char req_detail[WP_DETAIL_MAX];
	struct wp_measurement req_m[WP_MEASUREMENTS_MAX];
	int done;
	uv_async_t async;
	pthread_mutex_t mu;
	struct wp_result pending;
	char pending_detail[1024];
	struct wp_measurement pending_m[WP_MEASUREMENTS_MAX];
	char pending_names[WP_MEASUREMENTS_MAX][49];
	int pending_set;
	int64_t t0;
	/* mock_set_batch(): req->alerts of the next operations */
	const struct wp_alert *const *batch;
	size_t n_batch;
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
m_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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

/* As the agent's host does: FILE:LINE: KEY: message, at the line that set
 * KEY (the section's line 0 when it is NULL or not set). */
static void
m_config_error(const struct wp_section *sec, const char *key,
    const char *fmt, ...)
{
	struct mock_plugin *mp = g_mp;
	char msg[1024];
	va_list ap;
	int line = key != NULL ? keys_line(mp->kv, mp->n_kv, key) : 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key != NULL)
		diag_error(sec->diag, line, "%s: %s", key, msg);
	else
		diag_error(sec->diag, line, "%s", msg);
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

/* Microseconds, rounded up to the loop's millisecond, as the host does;
 * a start failure is reported, as the host does. */
static int
m_timer_set(struct wp_timer *t, int64_t us)
{
	uv_timer_stop(&t->timer);
	if (us < 0)
		return 0;
	return uv_timer_start(&t->timer, timer_cb, (uint64_t)(us + 999) / 1000,
	    0) == 0 ? 0 : WP_EIO;
}

static void
m_timer_free(struct wp_timer *t)
{
	if (t == NULL)
		return;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, free_on_close);
}

/* libuv's resolver codes in the WP_E* domain, as the host maps them. */
static int
resolve_status(int uv)
{
	switch (uv) {
	case UV_EAI_NONAME:
	case UV_EAI_NODATA:
		return WP_ENONAME;
	case UV_EAI_AGAIN:
		return WP_EAGAIN;
	case UV_EAI_FAMILY:
	case UV_EAI_ADDRFAMILY:
	case UV_EAI_SERVICE:
	case UV_EAI_SOCKTYPE:
		return WP_ENOTSUP;
	case UV_EAI_MEMORY:
	case UV_ENOMEM:
		return WP_ENOMEM;
	case UV_EAI_CANCELED:
	case UV_ECANCELED:
		return WP_ECANCELED;
	default:
		return WP_EIO;
	}
}

static void
resolve_done(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct wp_resolve *r = req->data;

	if (!r->cancelled) {
		if (status == 0)
			r->cb(r->arg, 0, NULL, res);
		else
			r->cb(r->arg, resolve_status(status),
			    uv_strerror(status), NULL);
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

	size_t i;

	pthread_mutex_lock(&mp->mu);
	if (mp->pending_set == 0) {
		struct wp_result r = WP_RESULT_INIT;
		memcpy(&r, res, n);
		mp->pending = r;
		snprintf(mp->pending_detail, sizeof(mp->pending_detail), "%s",
		    r.detail ? r.detail : "");
		mp->pending.detail = r.detail ? mp->pending_detail : NULL;
		/* Copied, as the host does: the plugin's buffers are gone
		 * after this call. */
		if (r.n_measurements > WP_MEASUREMENTS_MAX)
			r.n_measurements = WP_MEASUREMENTS_MAX;
		for (i = 0; i < r.n_measurements; i++) {
			mp->pending_m[i] = r.measurements[i];
			snprintf(mp->pending_names[i],
			    sizeof(mp->pending_names[i]), "%s",
			    r.measurements[i].name);
			mp->pending_m[i].name = mp->pending_names[i];
		}
		mp->pending.measurements = mp->pending_m;
		mp->pending.n_measurements = r.n_measurements;
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
		.wall_us = m_wall_us,
		.alloc = m_alloc,
		.free = m_free,
		.config_error = m_config_error,
		.watch = m_watch,
		.watch_set = m_watch_set,
		.unwatch = m_unwatch,
		.timer_new = m_timer_new,
		.timer_set = m_timer_set,
		.timer_free = m_timer_free,
		.resolve = m_resolve,
		.resolve_cancel = m_resolve_cancel,
		.complete = m_complete,
		/* The agent's own command runner (core/command.c), on
		 * this loop: one mock plugin at a time (g_mp). */
		.spawn = spawn_start,
		.spawn_kill = spawn_kill,
	};
	main_loop = &mp->loop;
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
	spawn_host_gone(&mp->host);
	uv_close((uv_handle_t *)&mp->async, NULL);
	uv_run(&mp->loop, UV_RUN_NOWAIT);
	uv_walk(&mp->loop, close_walk, NULL);
	uv_run(&mp->loop, UV_RUN_DEFAULT);
	uv_loop_close(&mp->loop);
	main_loop = NULL;
	pthread_mutex_destroy(&mp->mu);
	/* Keep the module resident, as the daemon does. */
	g_mp = NULL;
	free(mp);
}

void
mock_set_interval(struct mock_plugin *mp, int64_t interval_ms)
{
	mp->interval_ms = interval_ms;
}

int
mock_configure(struct mock_plugin *mp, const char *name,
    const char *const *kv, int64_t timeout_ms, void **inst)
{
	const struct wp_plugin *d = mp->desc;
	struct cfg_kv items[MOCK_MAX_KV];
	struct wp_diag diag;
	struct wp_section sec;
	void *conf;
	size_t n = 0, i;
	int rc;

	*inst = NULL;
	while (kv && kv[2 * n] && n < MOCK_MAX_KV) {
		items[n].key = kv[2 * n];
		items[n].value = kv[2 * n + 1];
		items[n].line = (int)n + 1;
		n++;
	}
	for (i = 0; i < MOCK_MAX_INST && mp->confs[i].conf != NULL; i++)
		;
	if (i == MOCK_MAX_INST)
		abort();
	diag_init(&diag, "mock.ini");
	/* The host's own parser: what the types say is judged there. */
	conf = keys_fill(d->keys, d->n_keys, d->key_size, d->conf_size,
	    "mock.ini", ".", items, n, &diag);
	rc = WP_EINVAL;
	if (conf != NULL) {
		sec = (struct wp_section){
			.size = sizeof(sec),
			.name = name,
			.file = "mock.ini",
			.line = 0,
			.timeout_us = timeout_ms * 1000,
			.diag = &diag,
			.interval_us = mp->interval_ms * 1000,
		};
		mp->kv = items;
		mp->n_kv = n;
		rc = d->configure(mp->state, &sec, conf, inst);
		mp->kv = NULL;
		mp->n_kv = 0;
		if (rc == 0) {
			mp->confs[i].inst = *inst;
			mp->confs[i].conf = conf;
		} else {
			*inst = NULL;
			keys_free(conf);
		}
	}
	snprintf(mp->errors, sizeof(mp->errors), "%s",
	    diag.text != NULL ? diag.text : "");
	diag_free(&diag);
	return rc;
}

const char *
mock_errors(struct mock_plugin *mp)
{
	return mp->errors;
}

void
mock_release(struct mock_plugin *mp, void *inst)
{
	size_t i;

	if (mp->desc->release)
		mp->desc->release(mp->state, inst);
	for (i = 0; i < MOCK_MAX_INST; i++) {
		if (mp->confs[i].conf != NULL && mp->confs[i].inst == inst) {
			keys_free(mp->confs[i].conf);
			mp->confs[i].conf = NULL;
			mp->confs[i].inst = NULL;
			break;
		}
	}
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
		.detail = mp->req_detail,
		.detail_size = sizeof(mp->req_detail),
		.measurements = mp->req_m,
		.max_measurements = WP_MEASUREMENTS_MAX,
		.alerts = alert != NULL && mp->batch != NULL ? mp->batch :
		    alert != NULL ? &mp->req.alert : NULL,
		.n_alerts = alert != NULL && mp->batch != NULL ? mp->n_batch :
		    alert != NULL ? 1 : 0,
	};
	if (alert != NULL && mp->batch != NULL)
		mp->req.alert = mp->batch[0];
	mp->req_detail[0] = '\0';
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
	memcpy(out->m, mp->pending_m, sizeof(out->m));
	memcpy(out->m_names, mp->pending_names, sizeof(out->m_names));
	for (size_t i = 0; i < WP_MEASUREMENTS_MAX; i++)
		out->m[i].name = out->m_names[i];
	out->r.measurements = out->m;
	pthread_mutex_unlock(&mp->mu);
}

void
mock_set_batch(struct mock_plugin *mp, const struct wp_alert *const *alerts,
    size_t n)
{
	mp->batch = n > 0 ? alerts : NULL;
	mp->n_batch = n;
}
