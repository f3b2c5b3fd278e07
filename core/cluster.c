/*
 * cluster -- the pure rules of cluster mode; see cluster.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define SEC_US 1000000LL

void
cluster_conf_free(struct cluster_conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_etcd; i++)
		free(c->etcd[i]);
	free(c->etcd);
	free(c->name);
	free(c->location);
	free(c->prefix);
	free(c->user);
	if (c->password != NULL) /* a secret: leave nothing behind */
		memset(c->password, 0, strlen(c->password));
	free(c->password);
	free(c->ca_file);
	free(c->client_cert);
	free(c->client_key);
	memset(c, 0, sizeof(*c));
}

/* A copy of S (NULL stays NULL); aborts on memory exhaustion. */
static char *
dup_or_null(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		abort();
	return d;
}

void
cluster_conf_copy(struct cluster_conf *dst, const struct cluster_conf *src)
{
	size_t i;

	*dst = *src;
	dst->etcd = src->n_etcd > 0 ? calloc(src->n_etcd, sizeof(char *)) :
	    NULL;
	if (src->n_etcd > 0 && dst->etcd == NULL)
		abort();
	for (i = 0; i < src->n_etcd; i++)
		dst->etcd[i] = dup_or_null(src->etcd[i]);
	dst->name = dup_or_null(src->name);
	dst->location = dup_or_null(src->location);
	dst->prefix = dup_or_null(src->prefix);
	dst->user = dup_or_null(src->user);
	dst->password = dup_or_null(src->password);
	dst->ca_file = dup_or_null(src->ca_file);
	dst->client_cert = dup_or_null(src->client_cert);
	dst->client_key = dup_or_null(src->client_key);
}

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int
cluster_conf_same(const struct cluster_conf *a, const struct cluster_conf *b)
{
	size_t i;

	if (a->enabled != b->enabled || a->n_etcd != b->n_etcd ||
	    a->lease_ttl_ms != b->lease_ttl_ms ||
	    a->join_grace_ms != b->join_grace_ms ||
	    a->watch_progress_ms != b->watch_progress_ms ||
	    a->on_engine_loss != b->on_engine_loss ||
	    !same_str(a->name, b->name) || !same_str(a->location, b->location) ||
	    !same_str(a->prefix, b->prefix) || !same_str(a->user, b->user) ||
	    !same_str(a->password, b->password) ||
	    !same_str(a->ca_file, b->ca_file) ||
	    !same_str(a->client_cert, b->client_cert) ||
	    !same_str(a->client_key, b->client_key))
		return 0;
	for (i = 0; i < a->n_etcd; i++)
		if (!same_str(a->etcd[i], b->etcd[i]))
			return 0;
	return 1;
}

/* ---- the local deadline ---- */

void
cluster_deadline_init(struct cluster_deadline *d, int64_t ttl_us)
{
	d->ttl_us = ttl_us;
	d->margin_us = ttl_us / 6 > SEC_US ? ttl_us / 6 : SEC_US;
	d->deadline_us = 0;
	d->lease = 0;
}

void
cluster_deadline_ack(struct cluster_deadline *d, int64_t lease,
    int64_t sent_us, int64_t granted_s)
{
	int64_t ttl = granted_s > 0 ? granted_s * SEC_US : d->ttl_us;
	int64_t deadline;

	/* The server may round a TTL up (3.4 grants at least 2 s) but keeps
	 * what it granted; a keepalive's answer is the full TTL again.  The
	 * smaller of ours and the server's is the safe one. */
	if (ttl > d->ttl_us && d->ttl_us > 0)
		ttl = d->ttl_us;
	deadline = sent_us + ttl;
	if (lease != d->lease) {
		d->lease = lease;
		d->deadline_us = deadline;
		return;
	}
	if (deadline > d->deadline_us)
		d->deadline_us = deadline;
}

void
cluster_deadline_lost(struct cluster_deadline *d)
{
	d->deadline_us = 0;
	d->lease = 0;
}

int
cluster_deadline_fenced(const struct cluster_deadline *d, int64_t now_us)
{
	return d->lease == 0 || now_us >= d->deadline_us - d->margin_us;
}

int64_t
cluster_deadline_left(const struct cluster_deadline *d, int64_t now_us)
{
	if (cluster_deadline_fenced(d, now_us))
		return 0;
	return d->deadline_us - d->margin_us - now_us;
}

int64_t
cluster_renew_every(int64_t ttl_us)
{
	return ttl_us / 3;
}

/* ---- hashing ---- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t
fnv1a(uint64_t h, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= FNV_PRIME;
	}
	return h;
}

uint64_t
cluster_hash(uint64_t h, const void *p, size_t n)
{
	return fnv1a(h == 0 ? FNV_OFFSET : h, p, n);
}

/* MurmurHash3's fmix64: a bijection that spreads every input bit. */
static uint64_t
fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

uint64_t
cluster_hrw_weight(const char *slot, const char *member)
{
	uint64_t h = fnv1a(FNV_OFFSET, slot, strlen(slot) + 1); /* with NUL */

	return fmix64(fnv1a(h, member, strlen(member)));
}

long
cluster_hrw_owner(const char *slot, const struct cluster_member *m,
    size_t n, const char *location, const char *self, int64_t now_us,
    int64_t join_grace_us)
{
	uint64_t best = 0, w;
	long owner = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (location != NULL && (m[i].location == NULL ||
		    strcmp(m[i].location, location) != 0))
			continue;
		if ((self == NULL || strcmp(m[i].name, self) != 0) &&
		    now_us - m[i].seen_us < join_grace_us)
			continue;
		w = cluster_hrw_weight(slot, m[i].name);
		if (owner < 0 || w > best || (w == best &&
		    strcmp(m[i].name, m[owner].name) < 0)) {
			best = w;
			owner = (long)i;
		}
	}
	return owner;
}

int
cluster_slot_key(char *buf, size_t size, const char *monitor,
    const char *location)
{
	int n;

	if (location == NULL)
		n = snprintf(buf, size, "%s", monitor);
	else if (location[0] == '@')
		n = snprintf(buf, size, "%s%s", monitor, location);
	else
		n = snprintf(buf, size, "%s@%s", monitor, location);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

/* ---- the grid ---- */

int64_t
cluster_grid_phase(const char *monitor, int64_t interval_us)
{
	uint64_t h = fmix64(fnv1a(FNV_OFFSET, monitor, strlen(monitor)));

	return interval_us > 0 ? (int64_t)(h % (uint64_t)interval_us) : 0;
}

/* floor(a / b) for b > 0. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && a < 0) ? q - 1 : q;
}

int64_t
cluster_grid_index(const char *monitor, int64_t interval_us, int64_t wall_us)
{
	return floor_div(wall_us - cluster_grid_phase(monitor, interval_us),
	    interval_us);
}

int64_t
cluster_grid_time(const char *monitor, int64_t interval_us, int64_t k)
{
	return cluster_grid_phase(monitor, interval_us) + k * interval_us;
}

int64_t
cluster_grid_next(const char *monitor, int64_t interval_us, int64_t wall_us,
    int64_t mono_us, int64_t last_k, int64_t *k)
{
	int64_t cur = cluster_grid_index(monitor, interval_us, wall_us);

	if (last_k >= 0 && last_k < cur) {
		/* Point cur has passed unchecked: once, now; the points
		 * before it are gone (a missed check is not made up twice). */
		*k = cur;
		return mono_us;
	}
	*k = (last_k > cur ? last_k : cur) + 1;
	return mono_us + (cluster_grid_time(monitor, interval_us, *k) -
	    wall_us);
}

/* ---- the manager's hooks ---- */

static const struct cluster_hooks *hooks;

void
cluster_set_hooks(const struct cluster_hooks *h)
{
	hooks = h;
}

int
cluster_may_start(const char *monitor)
{
	return hooks == NULL || hooks->may_start(monitor);
}

int
cluster_alerts_here(const char *monitor)
{
	return hooks == NULL || hooks->alerts_here(monitor);
}

void
cluster_checked(const char *monitor, const struct policy_state *ps,
    const struct store_alert *rows, size_t n)
{
	if (hooks != NULL)
		hooks->checked(monitor, ps, rows, n);
}
