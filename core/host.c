#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "host.h"
#include "keys.h"
#include "log.h"
#include "command.h"
#include "util.h"

uv_loop_t *main_loop;
static uv_loop_t loop_storage;
static pthread_t loop_thread;

/* Work posted from other threads. */
struct post {
	void (*fn)(void *);
	void *arg;
	struct post *next;
};
static uv_async_t post_async;
static pthread_mutex_t post_mu = PTHREAD_MUTEX_INITIALIZER;
static struct post *post_head, *post_tail;

struct wp_watch {
	uv_poll_t poll;
	wp_watch_cb cb;
	void *arg;
	int fd;
	unsigned events; /* what the poll handle watches now (WP_READABLE, WP_WRITABLE) */
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

static void
run_posted(uv_async_t *a)
{
	struct post *p, *next;

	(void)a;
	pthread_mutex_lock(&post_mu);
	p = post_head;
	post_head = post_tail = NULL;
	pthread_mutex_unlock(&post_mu);
	for (; p != NULL; p = next) {
		next = p->next;
		p->fn(p->arg);
		free(p);
	}
}

int
host_loop_init(void)
{
	if (uv_loop_init(&loop_storage) != 0)
		return WP_EIO;
	main_loop = &loop_storage;
	loop_thread = pthread_self();
	if (uv_async_init(main_loop, &post_async, run_posted) != 0)
		return WP_EIO;
	/* The async handle must not keep the loop alive by itself. */
	uv_unref((uv_handle_t *)&post_async);
	return 0;
}

static void
close_one(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void
host_loop_close(void)
{
	if (main_loop == NULL)
		return;
	run_posted(NULL);
	/* Handles left open by plugins are the plugins' leak, but the loop
	 * must close regardless. */
	uv_walk(main_loop, close_one, NULL);
	uv_run(main_loop, UV_RUN_DEFAULT);
	uv_loop_close(main_loop);
	main_loop = NULL;
}

int
host_on_loop(void)
{
	return pthread_equal(pthread_self(), loop_thread);
}

void
host_post(void (*fn)(void *), void *arg)
{
	struct post *p = xmalloc(sizeof(*p));

	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&post_mu);
	if (post_tail)
		post_tail->next = p;
	else
		post_head = p;
	post_tail = p;
	pthread_mutex_unlock(&post_mu);
	uv_async_send(&post_async);
}

void
host_close_free(uv_handle_t *h)
{
	free(h->data);
}

/* ---- the services ---- */

static void
h_log(const struct wp_host *h, int level, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	if (level > log_threshold())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "plugin %s: %s", h->plugin_name, msg);
}

static int64_t
h_now_us(void)
{
	return mono_us();
}

static int64_t
h_wall_us(void)
{
	return wall_us();
}

static void *
h_alloc(size_t n)
{
	return malloc(n ? n : 1);
}

static void
h_free(void *p)
{
	free(p);
}

/*
 * FILE:LINE: KEY: message at the first line that sets KEY (or KEY_file),
 * else at the section header.  SEC is the one configure_section() handed
 * over, inside a struct keys_section that holds the lines.
 */
static void
h_config_error(const struct wp_section *sec, const char *key,
    const char *fmt, ...)
{
	const struct keys_section *ks = (const struct keys_section *)
	    (const void *)sec;
	char msg[1536];
	va_list ap;
	int line = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key != NULL)
		line = keys_line(ks->kv, ks->n_kv, key);
	if (key != NULL)
		diag_error(sec->diag, line != 0 ? line : sec->line, "%s: %s",
		    key, msg);
	else
		diag_error(sec->diag, sec->line, "%s", msg);
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
	/* An error (e.g. EBADF) is reported as ready so the plugin's own
	 * read/write sees it and completes. */
	if (status < 0)
		re |= WP_READABLE | WP_WRITABLE;
	w->cb(w, w->fd, re, w->arg);
}

static int
uv_events(unsigned ev)
{
	return ((ev & WP_READABLE) ? UV_READABLE : 0) |
	    ((ev & WP_WRITABLE) ? UV_WRITABLE : 0);
}

static struct wp_watch *
h_watch(const struct wp_host *h, int fd, unsigned events, wp_watch_cb cb,
    void *arg)
{
	struct wp_watch *w = calloc(1, sizeof(*w));

	(void)h;
	if (w == NULL)
		return NULL;
	w->cb = cb;
	w->arg = arg;
	w->fd = fd;
	if (uv_poll_init_socket(main_loop, &w->poll, fd) != 0) {
		free(w);
		return NULL;
	}
	w->poll.data = w;
	if (events != 0 &&
	    uv_poll_start(&w->poll, uv_events(events), poll_cb) != 0) {
		uv_close((uv_handle_t *)&w->poll, host_close_free);
		return NULL;
	}
	w->events = events;
	return w;
}

static int
h_watch_set(struct wp_watch *w, unsigned events)
{
	int rc;

	/* libcurl re-announces a socket's interest often; each real change
	 * costs an epoll_ctl, so an unchanged set costs nothing. */
	if (events == w->events)
		return 0;
	if (events == 0)
		rc = uv_poll_stop(&w->poll);
	else
		rc = uv_poll_start(&w->poll, uv_events(events), poll_cb);
	if (rc != 0)
		return WP_EIO;
	w->events = events;
	return 0;
}

static void
h_unwatch(struct wp_watch *w)
{
	if (w == NULL)
		return;
	/* uv_close stops the handle itself. */
	uv_close((uv_handle_t *)&w->poll, host_close_free);
}

static void
timer_cb(uv_timer_t *t)
{
	struct wp_timer *wt = t->data;

	wt->cb(wt, wt->arg);
}

static struct wp_timer *
h_timer_new(const struct wp_host *h, wp_timer_cb cb, void *arg)
{
	struct wp_timer *t = calloc(1, sizeof(*t));

	(void)h;
	if (t == NULL)
		return NULL;
	uv_timer_init(main_loop, &t->timer);
	t->timer.data = t;
	t->cb = cb;
	t->arg = arg;
	return t;
}

/* us < 0 disarms; otherwise the loop's milliseconds, rounded up so a
 * timer never fires before the time asked for. */
static int
h_timer_set(struct wp_timer *t, int64_t us)
{
	uint64_t ms;

	uv_timer_stop(&t->timer);
	if (us < 0)
		return 0;
	ms = (uint64_t)us / 1000 + ((uint64_t)us % 1000 != 0);
	if (uv_timer_start(&t->timer, timer_cb, ms, 0) != 0)
		return WP_EIO;
	return 0;
}

static void
h_timer_free(struct wp_timer *t)
{
	if (t == NULL)
		return;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, host_close_free);
}

/*
 * libuv's resolver statuses (getaddrinfo's EAI_* as UV_EAI_*, and errno
 * values) in the header's WP_E* domain: glibc's EAI_* are small negative
 * numbers that collide with WP_E*, so none of them may reach a plugin.
 * Only the statuses wp_resolve_cb lists come out: flags or hints the
 * resolver rejects are "not supported here".
 */
static const struct {
	int uv;
	int wp;
} resolve_errors[] = {
	{ UV_EAI_NONAME, WP_ENONAME },
	{ UV_EAI_NODATA, WP_ENONAME },
	{ UV_EAI_ADDRFAMILY, WP_ENONAME },
	{ UV_EAI_AGAIN, WP_EAGAIN },
	{ UV_EAI_FAIL, WP_EIO },
	{ UV_EAI_MEMORY, WP_ENOMEM },
	{ UV_ENOMEM, WP_ENOMEM },
	{ UV_EAI_FAMILY, WP_ENOTSUP },
	{ UV_EAI_SOCKTYPE, WP_ENOTSUP },
	{ UV_EAI_SERVICE, WP_ENOTSUP },
	{ UV_EAI_PROTOCOL, WP_ENOTSUP },
	{ UV_EAI_BADFLAGS, WP_ENOTSUP },
	{ UV_EAI_BADHINTS, WP_ENOTSUP },
	{ UV_EAI_CANCELED, WP_ECANCELED },
	{ UV_ECANCELED, WP_ECANCELED },
};

/* STATUS (a libuv resolver status, < 0) as a WP_E* code; anything not in
 * the table (EAI_SYSTEM's errno values, EAI_OVERFLOW) is WP_EIO. */
static int
resolve_error(int status)
{
	size_t i;

	for (i = 0; i < sizeof(resolve_errors) / sizeof(resolve_errors[0]); i++)
		if (resolve_errors[i].uv == status)
			return resolve_errors[i].wp;
	return WP_EIO;
}

static void
resolve_done(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct wp_resolve *r = req->data;

	if (!r->cancelled) {
		if (status == 0)
			r->cb(r->arg, 0, NULL, res);
		else
			r->cb(r->arg, resolve_error(status), uv_strerror(status),
			    NULL);
	}
	uv_freeaddrinfo(res);
	free(r);
}

static struct wp_resolve *
h_resolve(const struct wp_host *h, const char *node, const char *service,
    const struct addrinfo *hints, wp_resolve_cb cb, void *arg)
{
	struct wp_resolve *r = calloc(1, sizeof(*r));

	(void)h;
	if (r == NULL)
		return NULL;
	r->cb = cb;
	r->arg = arg;
	r->req.data = r;
	if (uv_getaddrinfo(main_loop, &r->req, resolve_done, node, service,
	    hints) != 0) {
		free(r);
		return NULL;
	}
	return r;
}

static void
h_resolve_cancel(struct wp_resolve *r)
{
	/* uv_cancel only works before a worker picks the request up; the
	 * flag covers the rest.  resolve_done frees either way. */
	if (r == NULL)
		return;
	r->cancelled = 1;
	uv_cancel((uv_req_t *)&r->req);
}

struct wp_host *
host_new(const char *name, host_complete_fn complete)
{
	struct wp_host *h = xcalloc(1, sizeof(*h));

	*h = (struct wp_host){
		.size = sizeof(struct wp_host),
		.abi_major = WP_ABI_MAJOR,
		.abi_minor = WP_ABI_MINOR,
		.plugin_name = xstrdup(name),
		.log = h_log,
		.now_us = h_now_us,
		.wall_us = h_wall_us,
		.alloc = h_alloc,
		.free = h_free,
		.config_error = h_config_error,
		.watch = h_watch,
		.watch_set = h_watch_set,
		.unwatch = h_unwatch,
		.timer_new = h_timer_new,
		.timer_set = h_timer_set,
		.timer_free = h_timer_free,
		.resolve = h_resolve,
		.resolve_cancel = h_resolve_cancel,
		.complete = complete,
		.spawn = spawn_start,
		.spawn_kill = spawn_kill,
	};
	return h;
}

void
host_free(struct wp_host *h)
{
	if (h == NULL)
		return;
	/* Its plugin's fini() has run: nothing may call it back. */
	spawn_host_gone(h);
	free((char *)h->plugin_name);
	free(h);
}
