#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "util.h"

void
policy_conf_default(struct policy_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->down_after = 1;
	c->up_after = 1;
	c->alert_on = POLICY_ON_DEFAULT;
}

void
policy_conf_copy(struct policy_conf *dst, const struct policy_conf *src)
{
	size_t i, j;

	*dst = *src;
	dst->esc = xcalloc(src->n_esc + 1, sizeof(*dst->esc));
	for (i = 0; i < src->n_esc; i++) {
		dst->esc[i].after_ms = src->esc[i].after_ms;
		dst->esc[i].n_alerts = src->esc[i].n_alerts;
		dst->esc[i].alerts = xcalloc(src->esc[i].n_alerts + 1,
		    sizeof(char *));
		for (j = 0; j < src->esc[i].n_alerts; j++)
			dst->esc[i].alerts[j] = xstrdup(src->esc[i].alerts[j]);
	}
}

void
policy_conf_free(struct policy_conf *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_esc; i++) {
		for (j = 0; j < c->esc[i].n_alerts; j++)
			free(c->esc[i].alerts[j]);
		free(c->esc[i].alerts);
	}
	free(c->esc);
	policy_conf_default(c);
}

/* S seconds for a person: whole days from a day on ("5d"), else
 * format_duration()'s words. */
static void
fmt_secs(int64_t s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%lldd", (long long)(s / 86400));
	else
		format_duration(s * 1000, buf, len);
}

int
policy_warn(const struct policy_conf *c, const struct wp_result *in,
    int64_t now_s, struct wp_result *out, char *buf, size_t len)
{
	char a[32], b[32];

	if (reason_class(in->reason) != WP_CLASS_UP)
		return 0;
	if (c->cert_warn_s > 0 && in->cert_expiry > 0 &&
	    in->cert_expiry - now_s < c->cert_warn_s) {
		*out = *in;
		out->reason = WP_REASON_CERT_EXPIRING;
		fmt_secs(c->cert_warn_s, b, sizeof(b));
		if (in->cert_expiry <= now_s)
			snprintf(buf, len, "the certificate has expired "
			    "(cert_warn %s)", b);
		else {
			fmt_secs(in->cert_expiry - now_s, a, sizeof(a));
			snprintf(buf, len, "the certificate expires in %s "
			    "(cert_warn %s)", a, b);
		}
		out->detail = buf;
		return 1;
	}
	if (c->latency_warn_us > 0 && in->latency_us > c->latency_warn_us) {
		*out = *in;
		out->reason = WP_REASON_SLOW;
		snprintf(buf, len, "latency %.1f ms is over latency_warn "
		    "%.1f ms", (double)in->latency_us / 1000.0,
		    (double)c->latency_warn_us / 1000.0);
		out->detail = buf;
		return 1;
	}
	return 0;
}

int
policy_step(const struct policy_conf *c, struct policy_state *s,
    enum mstate check, int64_t ts_ms)
{
	enum mstate next = s->state;

	if (check == ST_DOWN) {
		s->streak = s->streak < 0 ? s->streak - 1 : -1;
		if (-s->streak >= c->down_after)
			next = ST_DOWN;
	} else {
		s->streak = s->streak > 0 ? s->streak + 1 : 1;
		/* up_after guards the way out of down only: up <-> degraded
		 * and the first good check move at once. */
		if (s->state != ST_DOWN || s->streak >= c->up_after)
			next = check;
	}
	/* Keep the counts bounded whatever the run length. */
	if (s->streak > 1000000)
		s->streak = 1000000;
	if (s->streak < -1000000)
		s->streak = -1000000;
	if (next == s->state)
		return 0;
	s->state = next;
	s->since_ms = ts_ms;
	s->repeats = 0;
	s->notified_ms = ts_ms;
	s->escalated_ms = 0;
	return 1;
}

int
policy_alerts(unsigned on, enum mstate previous, enum mstate state)
{
	if (previous == state || (unsigned)previous >= ST_COUNT)
		return 0;
	switch (state) {
	case ST_DOWN:
		return (on & POLICY_ON_DOWN) != 0;
	case ST_DEGRADED:
		return (on & POLICY_ON_DEGRADED) != 0 ||
		    (previous == ST_DOWN && (on & POLICY_ON_UP));
	case ST_UP:
		if (previous == ST_DOWN)
			return (on & POLICY_ON_UP) != 0;
		/* The receiver heard of degraded: it hears it ended. */
		return previous == ST_DEGRADED && (on & POLICY_ON_UP) &&
		    (on & POLICY_ON_DEGRADED);
	default:
		return 0;
	}
}

/* The due time of the next reminder, or INT64_MAX. */
static int64_t
renotify_due(const struct policy_conf *c, const struct policy_state *s)
{
	int64_t base = s->notified_ms > 0 ? s->notified_ms : s->since_ms;

	if (c->renotify_ms <= 0)
		return INT64_MAX;
	return base + c->renotify_ms;
}

/* The first escalation not yet notified: its index, or n_esc. */
static size_t
next_esc(const struct policy_conf *c, const struct policy_state *s)
{
	size_t i;

	for (i = 0; i < c->n_esc && c->esc[i].after_ms <= s->escalated_ms; i++)
		;
	return i;
}

int64_t
policy_due(const struct policy_conf *c, const struct policy_state *s)
{
	int64_t due;
	size_t i;

	if (s->state != ST_DOWN)
		return INT64_MAX;
	due = renotify_due(c, s);
	if ((i = next_esc(c, s)) < c->n_esc &&
	    s->since_ms + c->esc[i].after_ms < due)
		due = s->since_ms + c->esc[i].after_ms;
	return due;
}

int
policy_fire(const struct policy_conf *c, struct policy_state *s,
    int64_t now_ms, struct policy_fired *f)
{
	int64_t due;
	size_t i;

	memset(f, 0, sizeof(*f));
	if (s->state != ST_DOWN)
		return 0;
	due = renotify_due(c, s);
	if (due <= now_ms) {
		f->renotify = 1;
		s->repeats++;
		s->notified_ms = now_ms - due < c->renotify_ms ? due : now_ms;
	}
	f->esc_from = f->esc_to = i = next_esc(c, s);
	for (; i < c->n_esc && s->since_ms + c->esc[i].after_ms <= now_ms; i++)
		s->escalated_ms = c->esc[i].after_ms;
	f->esc_to = i;
	return f->renotify || f->esc_to > f->esc_from;
}

/* ---- the heap ---- */

static void
heap_place(struct policy_heap *h, size_t i, struct policy_node *n)
{
	h->v[i] = n;
	n->idx = i + 1;
}

static void
sift_up(struct policy_heap *h, size_t i)
{
	struct policy_node *n = h->v[i];
	size_t p;

	while (i > 0 && h->v[p = (i - 1) / 2]->due_ms > n->due_ms) {
		heap_place(h, i, h->v[p]);
		i = p;
	}
	heap_place(h, i, n);
}

static void
sift_down(struct policy_heap *h, size_t i)
{
	struct policy_node *n = h->v[i];
	size_t c;

	while ((c = 2 * i + 1) < h->n) {
		if (c + 1 < h->n && h->v[c + 1]->due_ms < h->v[c]->due_ms)
			c++;
		if (h->v[c]->due_ms >= n->due_ms)
			break;
		heap_place(h, i, h->v[c]);
		i = c;
	}
	heap_place(h, i, n);
}

void
policy_heap_set(struct policy_heap *h, struct policy_node *n, int64_t due_ms)
{
	size_t i;

	if (n->idx == 0) {
		if (h->n == h->cap) {
			h->cap = h->cap ? h->cap * 2 : 64;
			h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
		}
		n->due_ms = due_ms;
		heap_place(h, h->n++, n);
		sift_up(h, h->n - 1);
		return;
	}
	i = n->idx - 1;
	n->due_ms = due_ms;
	sift_up(h, i);
	sift_down(h, n->idx - 1);
}

void
policy_heap_del(struct policy_heap *h, struct policy_node *n)
{
	size_t i;
	struct policy_node *last;

	if (n->idx == 0)
		return;
	i = n->idx - 1;
	n->idx = 0;
	last = h->v[--h->n];
	if (i == h->n)
		return;
	heap_place(h, i, last);
	sift_up(h, i);
	sift_down(h, last->idx - 1);
}

struct policy_node *
policy_heap_top(const struct policy_heap *h)
{
	return h->n > 0 ? h->v[0] : NULL;
}

void
policy_heap_free(struct policy_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
