/*
 * statuspage -- the status page and badges (statuspage.h).
 */
#include "config.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cfg.h"
#include "history.h"
#include "manager.h"
#include "outcome.h"
#include "statuspage.h"
#include "util.h"

#define DAYS 90
#define HOURS 24
#define INCIDENT_DAYS 7		/* "recent" incidents: ended this recently */
#define INCIDENTS_SHOWN 50
#define PAGE_MAX 1000000
#define LABEL_MAX 200		/* cfg.c's check_label() */
#define REFRESH_MS 60000

/* ---- the configuration's part (loop thread) ---- */

/* The configuration applied last, held (config_ref()): the page takes
 * each monitor's group from it, found by name, and lists its disabled
 * monitors (paused) by name.  Nothing is copied per monitor: at 100,000
 * monitors copying and sorting every name at each reload was a sixth of
 * the apply (issue 17, S8). */
static struct {
	char *title, *footer;
	char **patterns;
	size_t n_patterns;
	const struct config *cfg;
	const struct cfg_monitor **off; /* cfg's disabled ones, by name */
	size_t n_off;
} conf;
static _Atomic int conf_public;

static int
off_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct cfg_monitor *const *)a)->s.name,
	    (*(const struct cfg_monitor *const *)b)->s.name);
}

static void
conf_clear(void)
{
	size_t i;

	free(conf.title);
	free(conf.footer);
	for (i = 0; i < conf.n_patterns; i++)
		free(conf.patterns[i]);
	free(conf.patterns);
	free(conf.off);
	config_free_detached((struct config *)conf.cfg);
	memset(&conf, 0, sizeof(conf));
}

void
statuspage_configure(const struct config *cfg)
{
	const struct cfg_monitor *m;
	size_t i, n;

	conf_clear();
	conf_public = 0;
	if (cfg == NULL)
		return;
	conf.title = xstrdup(cfg->status.title != NULL ? cfg->status.title :
	    "Status");
	if (cfg->status.footer != NULL)
		conf.footer = xstrdup(cfg->status.footer);
	conf.n_patterns = cfg->status.n_monitors;
	conf.patterns = xcalloc(conf.n_patterns + 1, sizeof(char *));
	for (i = 0; i < conf.n_patterns; i++)
		conf.patterns[i] = xstrdup(cfg->status.monitors[i]);
	conf.cfg = config_ref(cfg);
	for (i = 0, n = 0; i < cfg->n_monitors; i++)
		n += !cfg->monitors[i].enabled;
	conf.off = xcalloc(n + 1, sizeof(*conf.off));
	for (i = 0; i < cfg->n_monitors; i++) {
		m = &cfg->monitors[i];
		if (!m->enabled)
			conf.off[conf.n_off++] = m;
	}
	if (conf.n_off > 1)
		qsort(conf.off, conf.n_off, sizeof(*conf.off), off_cmp);
	conf_public = cfg->status.public;
}

int
statuspage_public(void)
{
	return conf_public;
}

static int
visible(const char *name)
{
	size_t i;

	if (conf.n_patterns == 0)
		return 1;
	for (i = 0; i < conf.n_patterns; i++)
		if (fnmatch(conf.patterns[i], name, 0) == 0)
			return 1;
	return 0;
}

static const struct cfg_monitor *
conf_find(const char *name)
{
	return config_find_monitor(conf.cfg, name);
}

/* ---- the snapshot: one block, pointers into itself ---- */

struct snap_mon {
	const char *name, *group;	/* group NULL: none */
	int state;			/* enum mstate */
	size_t idx;			/* configuration order */
};

struct snap {
	size_t n;
	const char *title, *footer;	/* footer NULL: none */
	struct snap_mon *mon;
};

struct pending {
	const char *name, *group;
	int state;
};

static size_t
slen(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

/* Copy S to *pp (advanced); NULL stays NULL. */
static const char *
put(char **pp, const char *s)
{
	char *d = *pp;
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	memcpy(d, s, n);
	*pp += n;
	return d;
}

char *
statuspage_snapshot(void *arg)
{
	struct manager_monitor_stats st;
	const struct monitor *it = NULL;
	const struct cfg_monitor *cm;
	struct pending *v = NULL;
	struct snap *s;
	size_t n = 0, cap = 0, bytes, i;
	char *block, *p;

	(void)arg;
	/* What runs (the manager's truth), then what is configured but
	 * disabled: shown as paused. */
	while ((it = manager_monitor_next(it, &st)) != NULL) {
		if (!visible(st.name))
			continue;
		if (n == cap)
			v = xrealloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
		cm = conf_find(st.name);
		v[n].name = st.name;
		v[n].group = cm != NULL ? cm->group : NULL;
		/* What the API shows: maintenance while a window or silence
		 * holds it (the checks still run and are stored). */
		v[n++].state = st.shown;
	}
	for (i = 0; i < conf.n_off; i++) {
		if (!visible(conf.off[i]->s.name))
			continue;
		if (n == cap)
			v = xrealloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
		v[n].name = conf.off[i]->s.name;
		v[n].group = conf.off[i]->group;
		v[n++].state = ST_PAUSED;
	}
	bytes = sizeof(*s) + n * sizeof(struct snap_mon) +
	    slen(conf.title != NULL ? conf.title : "Status") +
	    slen(conf.footer);
	for (i = 0; i < n; i++)
		bytes += slen(v[i].name) + slen(v[i].group);
	block = malloc(bytes);
	if (block == NULL) {
		free(v);
		return NULL;
	}
	s = (struct snap *)(void *)block;
	s->n = n;
	s->mon = (struct snap_mon *)(void *)(block + sizeof(*s));
	p = block + sizeof(*s) + n * sizeof(struct snap_mon);
	s->title = put(&p, conf.title != NULL ? conf.title : "Status");
	s->footer = put(&p, conf.footer);
	for (i = 0; i < n; i++) {
		s->mon[i].name = put(&p, v[i].name);
		s->mon[i].group = put(&p, v[i].group);
		s->mon[i].state = v[i].state;
		s->mon[i].idx = i;
	}
	free(v);
	return block;
}

/* ---- routes ---- */

/* The NAME of /badge/NAME/SUFFIX into buf (128 bytes): 1, or 0. */
static int
badge_name(const char *url, const char *suffix, char *buf)
{
	const char *name = url + 7, *slash;
	size_t len;

	if (strncmp(url, "/badge/", 7) != 0 ||
	    (slash = strchr(name, '/')) == NULL || strcmp(slash, suffix) != 0)
		return 0;
	len = (size_t)(slash - name);
	if (len == 0 || len >= 128)
		return 0;
	if (buf != NULL) {
		memcpy(buf, name, len);
		buf[len] = '\0';
	}
	return 1;
}

int
statuspage_route(const char *url)
{
	if (strcmp(url, "/") == 0)
		return 1;
	if (badge_name(url, "/status.svg", NULL))
		return 2;
	if (badge_name(url, "/uptime.svg", NULL))
		return 3;
	return 0;
}

/* ---- helpers ---- */

/* S, HTML- (and XML-) escaped, into B. */
static void
esc(struct sbuf *b, const char *s)
{
	const char *p, *start = s;

	for (p = s; *p != '\0'; p++) {
		const char *r;

		switch (*p) {
		case '&': r = "&amp;"; break;
		case '<': r = "&lt;"; break;
		case '>': r = "&gt;"; break;
		case '"': r = "&quot;"; break;
		case '\'': r = "&#39;"; break;
		default: continue;
		}
		sbuf_append(b, start, (size_t)(p - start));
		sbuf_puts(b, r);
		start = p + 1;
	}
	sbuf_append(b, start, (size_t)(p - start));
}

/* S percent-encoded for a query value (then HTML-safe too). */
static void
urlenc(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			sbuf_append(b, (const char *)&c, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		sbuf_append(b, e, 3);
	}
}

/* "99.95%" (never rounded up to 100% unless it is), "no data" for NAN. */
static void
pct(char *buf, size_t len, double u)
{
	if (isnan(u))
		snprintf(buf, len, "no data");
	else if (u >= 1.0)
		snprintf(buf, len, "100%%");
	else
		snprintf(buf, len, "%.2f%%", floor(u * 10000.0) / 100.0);
}

static void
ymd(char *buf, size_t len, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
}

static void
ymdhm(char *buf, size_t len, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}

static void
iso(char *buf, size_t len, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
duration(char *buf, size_t len, double s)
{
	long long v = (long long)s;

	if (v < 60)
		snprintf(buf, len, "%llds", v);
	else if (v < 3600)
		snprintf(buf, len, "%lldm %llds", v / 60, v % 60);
	else if (v < 86400)
		snprintf(buf, len, "%lldh %lldm", v / 3600, v % 3600 / 60);
	else
		snprintf(buf, len, "%lldd %lldh", v / 86400, v % 86400 / 3600);
}

/* The state's word, capitalised, and its icon (the page never tells a
 * state by colour alone). */
static const char *
state_word(int s)
{
	switch (s) {
	case ST_UP: return "Up";
	case ST_DEGRADED: return "Degraded";
	case ST_DOWN: return "Down";
	case ST_PENDING: return "Pending";
	case ST_PAUSED: return "Paused";
	case ST_MAINTENANCE: return "Maintenance";
	default: break;
	}
	return mstate_name((enum mstate)s);
}

static const char *
state_icon(int s)
{
	switch (s) {
	case ST_UP: return "\xe2\x9c\x93";		/* U+2713 check */
	case ST_DEGRADED: return "\xe2\x96\xb2";	/* U+25B2 triangle */
	case ST_DOWN: return "\xe2\x9c\x95";		/* U+2715 cross */
	case ST_PENDING: return "\xe2\x80\xa6";		/* U+2026 ellipsis */
	case ST_PAUSED: return "\xe2\x80\x96";		/* U+2016 bars */
	case ST_MAINTENANCE: return "\xe2\x9a\x92";	/* U+2692 tools */
	default: break;
	}
	return "\xe2\x80\xa2";				/* U+2022 bullet */
}

/* The class of a state: s-up, s-down, ... (s-other for the rest). */
static const char *
state_class(int s)
{
	switch (s) {
	case ST_UP: return "s-up";
	case ST_DEGRADED: return "s-degraded";
	case ST_DOWN: return "s-down";
	case ST_PENDING: return "s-pending";
	case ST_PAUSED: return "s-paused";
	case ST_MAINTENANCE: return "s-maint";
	default: break;
	}
	return "s-other";
}

/* Worse states rank higher (a group shows its worst). */
static int
state_rank(int s)
{
	switch (s) {
	case ST_DOWN: return 5;
	case ST_DEGRADED: return 4;
	case ST_UP: return 1;
	case ST_PENDING: return 2;
	case ST_PAUSED: return 0;
	default: break;
	}
	return 3;
}

static void
nonce_new(char *out, size_t len)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
	    "rstuvwxyz0123456789+/";
	unsigned char r[18];
	size_t i, o = 0;

	/* getrandom() does not fail for 18 bytes once the pool is ready;
	 * if it does, the clock still makes a per-answer value. */
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		uint64_t t = (uint64_t)wall_us() ^ (uint64_t)mono_us() << 20;

		for (i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)(t >> (i % 8 * 8)) ^
			    (unsigned char)(i * 131);
	}
	for (i = 0; i + 2 < sizeof(r) && o + 4 < len; i += 3) {
		out[o++] = b64[r[i] >> 2];
		out[o++] = b64[(r[i] & 3) << 4 | r[i + 1] >> 4];
		out[o++] = b64[(r[i + 1] & 15) << 2 | r[i + 2] >> 6];
		out[o++] = b64[r[i + 2] & 63];
	}
	out[o] = '\0';
}

/* Query parameters against a list: the first unknown one is kept. */
struct qcheck {
	const char *const *allowed;
	int bad;
	size_t n;
};

static void
qcheck_fn(void *cls, const char *key)
{
	struct qcheck *q = cls;
	size_t i;

	if (++q->n > 8)
		q->bad = 1;
	for (i = 0; q->allowed[i] != NULL; i++)
		if (strcmp(key, q->allowed[i]) == 0)
			return;
	q->bad = 1;
}

static void
set_reply(struct statuspage_reply *r, unsigned status, const char *ctype,
    struct sbuf *b)
{
	r->status = status;
	r->ctype = ctype;
	r->len = b->len;
	r->body = b->data != NULL ? sbuf_steal(b) : xstrdup("");
}

/* ---- the page ---- */

static const char css[] =
":root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1b1f24;--card:#fff;"
"--muted:#5b6470;--line:#d8dde3;--up:#1a7f37;--down:#cf222e;"
"--deg:#9a6700;--none:#c4c9d0;--u4:#57ab5a;--u3:#d4a72c;--u2:#e16f24;"
"--u1:#cf222e;--u5:#2da44e;--link:#0a58ca}"
"@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;"
"--card:#161b22;--muted:#9aa4af;--line:#30363d;--up:#3fb950;"
"--down:#f85149;--deg:#d29922;--none:#3b424b;--u5:#3fb950;"
"--u4:#7ee787;--u3:#e3b341;--u2:#f0883e;--u1:#f85149;--link:#58a6ff}"
/* Dark text on the bright banners of the dark scheme (contrast). */
":root .banner{color:#0d1117}}"
"*{box-sizing:border-box}"
"body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 "
"system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}"
"header,main,footer{max-width:64rem;margin:0 auto;padding:0 1rem}"
"h1{font-size:1.6rem;margin:1.2rem 0 .8rem}h2{font-size:1.2rem;"
"margin:1.4rem 0 .6rem}h3{font-size:1rem;margin:1rem 0 .4rem;"
"color:var(--muted)}a{color:var(--link)}"
".banner{padding:.9rem 1rem;border-radius:.5rem;font-size:1.1rem;"
"color:#fff;display:flex;gap:.6rem;align-items:center}"
".b-ok{background:var(--up)}.b-partial{background:var(--deg)}"
".b-major{background:var(--down)}.b-none{background:var(--muted)}"
".counts{color:var(--muted);margin:.4rem 0 0}"
".mons,.groups,.incs{list-style:none;margin:0;padding:0}"
".mon{background:var(--card);border:1px solid var(--line);"
"border-radius:.5rem;padding:.7rem .9rem;margin:.5rem 0}"
".mon.s-down{border-left:.35rem solid var(--down)}"
".mon.s-degraded{border-left:.35rem solid var(--deg)}"
".top{display:flex;flex-wrap:wrap;gap:.2rem .8rem;align-items:baseline}"
".name{font-weight:600;margin:0;font-size:1rem;color:var(--fg)}"
".up90{margin-left:auto;"
"color:var(--muted)}"
".state{font-weight:600}.s-up .state,.state.s-up{color:var(--up)}"
".s-down .state,.state.s-down{color:var(--down)}"
".s-degraded .state,.state.s-degraded{color:var(--deg)}"
".s-pending .state,.s-paused .state,.s-maint .state,.s-other .state{color:var(--muted)}"
".reason{color:var(--muted)}"
".row{display:flex;gap:1rem;align-items:center;margin-top:.4rem}"
".bars{display:flex;gap:2px;list-style:none;margin:0;padding:0;"
"flex:1;min-width:0}"
".bars li{flex:1;height:28px;border-radius:2px;background:var(--none);"
"position:relative;min-width:2px}"
".bars .u5{background:var(--u5)}.bars .u4{background:var(--u4)}"
".bars .u3{background:var(--u3)}.bars .u2{background:var(--u2)}"
".bars .u1{background:var(--u1)}"
".bars li:focus{outline:2px solid var(--link);outline-offset:1px}"
".bars li:hover::after,.bars li:focus::after{content:attr(aria-label);"
"position:absolute;bottom:34px;left:50%;transform:translateX(-50%);"
"white-space:nowrap;background:var(--fg);color:var(--bg);padding:.2rem "
".45rem;border-radius:.3rem;font-size:.8rem;z-index:2;pointer-events:none}"
".spark{flex:none;width:120px;height:32px}"
".spark path{fill:none;stroke:var(--link);stroke-width:2;"
"stroke-linecap:round;stroke-linejoin:round}"
".spark .base{stroke:var(--line);stroke-width:1}"
".spark .dot{fill:var(--link)}"
".lat{flex:none;width:4.5rem;color:var(--muted);font-size:.8rem;"
"text-align:right}"
".axis{display:flex;justify-content:space-between;color:var(--muted);"
"font-size:.75rem;margin:0 calc(136px + 6.4rem + 1px) 0 calc(.9rem + 1px)}"
".groups li{display:inline-block;margin:0 .4rem .4rem 0}"
".groups a{display:inline-block;padding:.25rem .6rem;border:1px solid "
"var(--line);border-radius:1rem;background:var(--card);"
"text-decoration:none;color:var(--fg)}"
".groups a[aria-current]{border-color:var(--link);font-weight:600}"
".incs li{background:var(--card);border:1px solid var(--line);"
"border-radius:.5rem;padding:.5rem .8rem;margin:.4rem 0}"
".pager{display:flex;gap:1rem;align-items:center;margin:1rem 0}"
".vh{position:absolute;width:1px;height:1px;overflow:hidden;"
"clip:rect(0 0 0 0);white-space:nowrap}"
"footer{color:var(--muted);font-size:.85rem;margin:2rem auto 1.5rem}"
".skip{position:absolute;left:-9999px}.skip:focus{left:1rem;top:.5rem;"
"background:var(--card);padding:.3rem .6rem;border:2px solid var(--link)}";

/* One monitor with its id in the database (0: never stored). */
struct pmon {
	const struct snap_mon *m;
	int64_t id;
};

static int
pmon_order(const void *a, const void *b)
{
	const struct snap_mon *x = ((const struct pmon *)a)->m,
	    *y = ((const struct pmon *)b)->m;
	int c;

	/* Ungrouped first, then groups by name, each in file order. */
	if ((x->group == NULL) != (y->group == NULL))
		return x->group == NULL ? -1 : 1;
	if (x->group != NULL && (c = strcmp(x->group, y->group)) != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int
hmon_cmp(const void *a, const void *b)
{
	return strcmp(((const struct history_monitor *)a)->name,
	    ((const struct history_monitor *)b)->name);
}

/* For history_incidents_since(): the scope's ids, sorted. */
struct idset {
	int64_t *ids;
	const char **names;	/* by the same index */
	size_t n;
};

static int
idset_find(const struct idset *s, int64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->ids[mid] == id)
			return (int)mid;
		if (s->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int
idset_keep(void *arg, int64_t id)
{
	return idset_find(arg, id) >= 0;
}

struct idname {
	int64_t id;
	const char *name;
};

static int
idname_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct idname *)a)->id,
	    y = ((const struct idname *)b)->id;

	return x < y ? -1 : x > y;
}

static void
page_link(struct sbuf *b, const char *group, long long page)
{
	sbuf_puts(b, "/");
	if (group != NULL) {
		sbuf_puts(b, "?group=");
		urlenc(b, group);
	}
	if (page > 1)
		sbuf_printf(b, "%spage=%lld", group != NULL ? "&amp;" : "?",
		    page);
}

static void
bars(struct sbuf *b, const struct history_day *d, double *u90)
{
	int64_t up = 0, down = 0;
	char day[16], p[16];
	int i;

	sbuf_puts(b, "<ol class=\"bars\" aria-label=\"Daily uptime, last 90 "
	    "days (oldest first)\">");
	for (i = 0; i < DAYS; i++) {
		const char *cls = "nd";
		double u = d[i].uptime;

		up += d[i].up + d[i].degraded;
		down += d[i].down;
		if (!isnan(u))
			cls = u >= 0.9995 ? "u5" : u >= 0.99 ? "u4" :
			    u >= 0.95 ? "u3" : u >= 0.90 ? "u2" : "u1";
		ymd(day, sizeof(day), d[i].day_ms);
		pct(p, sizeof(p), u);
		sbuf_printf(b, "<li tabindex=\"0\" class=\"%s\" aria-label=\"%s: "
		    "%s%s, %" PRId64 " incident%s\"></li>", cls, day, p,
		    isnan(u) ? "" : " up", d[i].incidents,
		    d[i].incidents == 1 ? "" : "s");
	}
	sbuf_puts(b, "</ol>");
	*u90 = up + down > 0 ? (double)up / (double)(up + down) : NAN;
}

static void
sparkline(struct sbuf *b, const struct history_hour *hr)
{
	double mx = 0, sum = 0, v;
	int i, n = 0, open = 0;

	for (i = 0; i < HOURS; i++)
		if (!isnan(hr[i].latency_avg_ms)) {
			v = hr[i].latency_avg_ms;
			mx = v > mx ? v : mx;
			sum += v;
			n++;
		}
	sbuf_puts(b, "<svg class=\"spark\" viewBox=\"0 0 120 32\" "
	    "role=\"img\" aria-label=\"");
	if (n == 0)
		sbuf_puts(b, "Latency, last 24 hours: no data");
	else
		sbuf_printf(b, "Latency, last 24 hours: average %.1f ms, "
		    "highest hourly average %.1f ms", sum / n, mx);
	sbuf_puts(b, "\"><path class=\"base\" d=\"M0,31H120\"/>");
	if (n > 0) {
		sbuf_puts(b, "<path d=\"");
		for (i = 0; i < HOURS; i++) {
			double x = 2.5 + i * 115.0 / (HOURS - 1), y;

			if (isnan(hr[i].latency_avg_ms)) {
				open = 0;
				continue;
			}
			y = 29.0 - (mx > 0 ? hr[i].latency_avg_ms / mx : 0) *
			    26.0;
			sbuf_printf(b, "%s%.1f,%.1f", open ? "L" : "M", x, y);
			open = 1;
		}
		sbuf_puts(b, "\"/>");
		/* A lone hour (no neighbour to draw a line to) is a dot. */
		for (i = 0; i < HOURS; i++) {
			if (isnan(hr[i].latency_avg_ms) || (i > 0 &&
			    !isnan(hr[i - 1].latency_avg_ms)) || (i + 1 < HOURS &&
			    !isnan(hr[i + 1].latency_avg_ms)))
				continue;
			sbuf_printf(b, "<circle class=\"dot\" cx=\"%.1f\" "
			    "cy=\"%.1f\" r=\"2.2\"/>", 2.5 + i * 115.0 /
			    (HOURS - 1), 29.0 - (mx > 0 ? hr[i].latency_avg_ms /
			    mx : 0) * 26.0);
		}
	}
	sbuf_puts(b, "</svg>");
	if (n > 0)
		sbuf_printf(b, "<span class=\"lat\" aria-hidden=\"true\">"
		    "%.1f ms</span>", sum / n);
	else
		sbuf_puts(b, "<span class=\"lat\" aria-hidden=\"true\">"
		    "\xe2\x80\x94</span>");
}

struct page_args {
	long long page;
	const char *group;	/* NULL: every monitor */
};

static void
page_error(struct statuspage_reply *r, unsigned status, const char *msg)
{
	struct sbuf b = { NULL, 0, 0 };
	char nonce[32];

	nonce_new(nonce, sizeof(nonce));
	sbuf_printf(&b, "<!DOCTYPE html><html lang=\"en\"><head><meta "
	    "charset=\"utf-8\"><title>%u</title></head><body><main><h1>%s"
	    "</h1><p><a href=\"/\">The status page</a></p></main></body>"
	    "</html>\n", status, msg);
	snprintf(r->csp, sizeof(r->csp), "default-src 'none'; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
	r->cache = "no-store";
	set_reply(r, status, "text/html; charset=utf-8", &b);
}

static void
render_page(const struct snap *s, struct history *h,
    const struct page_args *pa, struct statuspage_reply *r)
{
	struct sbuf b = { NULL, 0, 0 };
	struct history_monitor *hm = NULL;
	struct history_incident_of *inc = NULL;
	struct history_day d[DAYS];
	struct history_hour hr[HOURS];
	struct pmon *pm;
	struct idset ids = { NULL, NULL, 0 };
	struct idname *byid = NULL;
	size_t n_hm = 0, n = 0, i, j, first, last, n_inc = 0, total = 0,
	    open = 0, counts[ST_COUNT + 1] = { 0 }, checked = 0, pages;
	const char *cur_group = NULL, *banner, *bcls, *bicon;
	char nonce[32], buf[64], buf2[64];
	int64_t now = wall_ms();
	double u90;
	int db_ok = 1, any_group = 0, group_found = pa->group == NULL;

	pm = xcalloc(s->n + 1, sizeof(*pm));
	for (i = 0; i < s->n; i++) {
		if (s->mon[i].group != NULL)
			any_group = 1;
		if (pa->group != NULL && (s->mon[i].group == NULL ||
		    strcmp(s->mon[i].group, pa->group) != 0))
			continue;
		group_found = 1;
		pm[n++].m = &s->mon[i];
	}
	if (!group_found) {
		free(pm);
		page_error(r, 404, "No such group");
		return;
	}
	qsort(pm, n, sizeof(*pm), pmon_order);
	pages = n == 0 ? 1 : (n + STATUSPAGE_PER_PAGE - 1) /
	    STATUSPAGE_PER_PAGE;
	if ((size_t)pa->page > pages) {
		free(pm);
		page_error(r, 404, "No such page");
		return;
	}

	/* Database ids, for the history of what the answer shows. */
	if (h != NULL && history_monitors(h, &hm, &n_hm) != 0)
		db_ok = 0;
	if (n_hm > 0)
		qsort(hm, n_hm, sizeof(*hm), hmon_cmp);
	byid = xcalloc(n + 1, sizeof(*byid));
	for (i = 0; i < n; i++) {
		struct history_monitor key, *f;

		str_copy(key.name, sizeof(key.name), pm[i].m->name);
		f = n_hm > 0 ? bsearch(&key, hm, n_hm, sizeof(*hm), hmon_cmp) :
		    NULL;
		pm[i].id = f != NULL ? f->id : 0;
		if (pm[i].id != 0) {
			byid[ids.n].id = pm[i].id;
			byid[ids.n++].name = pm[i].m->name;
		}
		counts[pm[i].m->state < ST_COUNT ? pm[i].m->state : ST_COUNT]++;
	}
	qsort(byid, ids.n, sizeof(*byid), idname_cmp);
	ids.ids = xcalloc(ids.n + 1, sizeof(*ids.ids));
	for (i = 0; i < ids.n; i++)
		ids.ids[i] = byid[i].id;
	if (h != NULL && db_ok && history_incidents_since(h, now -
	    INCIDENT_DAYS * 86400000LL, now, idset_keep, &ids,
	    INCIDENTS_SHOWN, &inc, &n_inc, &total, &open) != 0)
		db_ok = 0;

	checked = counts[ST_UP] + counts[ST_DEGRADED] + counts[ST_DOWN];
	if (counts[ST_DOWN] > 0 && counts[ST_DOWN] == checked) {
		banner = "Major outage";
		bcls = "b-major";
		bicon = state_icon(ST_DOWN);
	} else if (counts[ST_DOWN] > 0) {
		banner = "Partial outage";
		bcls = "b-partial";
		bicon = "!";
	} else if (counts[ST_DEGRADED] > 0) {
		banner = "Degraded performance";
		bcls = "b-partial";
		bicon = state_icon(ST_DEGRADED);
	} else if (checked > 0) {
		banner = "All systems operational";
		bcls = "b-ok";
		bicon = state_icon(ST_UP);
	} else if (counts[ST_MAINTENANCE] > 0) {
		banner = "Under maintenance";
		bcls = "b-none";
		bicon = state_icon(ST_MAINTENANCE);
	} else {
		banner = "No results yet";
		bcls = "b-none";
		bicon = state_icon(ST_PENDING);
	}

	nonce_new(nonce, sizeof(nonce));
	sbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	    "charset=\"utf-8\"><meta name=\"viewport\" content=\"width="
	    "device-width, initial-scale=1\"><meta name=\"color-scheme\" "
	    "content=\"light dark\"><title>");
	esc(&b, s->title);
	if (pa->group != NULL) {
		sbuf_puts(&b, " \xe2\x80\x93 ");
		esc(&b, pa->group);
	}
	sbuf_printf(&b, "</title><style nonce=\"%s\">%s</style></head>"
	    "<body><header><h1>", nonce, css);
	esc(&b, s->title);
	/* 90 focusable bars a monitor: let the keyboard jump past them. */
	sbuf_puts(&b, "</h1><a class=\"skip\" href=\"#inc-h\">Skip to the "
	    "incidents</a></header><main>");
	sbuf_printf(&b, "<section id=\"banner\" class=\"banner %s\" "
	    "role=\"status\" aria-live=\"polite\"><span aria-hidden=\"true\">"
	    "%s</span><strong>%s</strong></section>", bcls, bicon, banner);
	sbuf_printf(&b, "<p class=\"counts\" id=\"counts\">%zu monitor%s: "
	    "%zu up, %zu degraded, %zu down", n, n == 1 ? "" : "s",
	    counts[ST_UP], counts[ST_DEGRADED], counts[ST_DOWN]);
	if (counts[ST_PENDING] > 0)
		sbuf_printf(&b, ", %zu pending", counts[ST_PENDING]);
	if (counts[ST_PAUSED] > 0)
		sbuf_printf(&b, ", %zu paused", counts[ST_PAUSED]);
	for (i = ST_PAUSED + 1; i <= ST_COUNT; i++)
		if (counts[i] > 0)
			sbuf_printf(&b, ", %zu %s", counts[i], i < ST_COUNT ?
			    mstate_name((enum mstate)i) : "other");
	sbuf_puts(&b, "</p>");

	/* Groups: one link each, with its worst state, whatever the page. */
	if (any_group) {
		struct pmon *all = xcalloc(s->n + 1, sizeof(*all));
		size_t k, up, cnt;
		int worst;

		for (i = 0; i < s->n; i++)
			all[i].m = &s->mon[i];
		qsort(all, s->n, sizeof(*all), pmon_order);
		sbuf_puts(&b, "<nav aria-label=\"Groups\"><h2>Groups</h2>"
		    "<ul class=\"groups\"><li><a href=\"/\"");
		if (pa->group == NULL)
			sbuf_puts(&b, " aria-current=\"page\"");
		sbuf_puts(&b, ">All monitors</a></li>");
		for (i = 0; i < s->n; i = k) {
			const char *g = all[i].m->group;

			worst = all[i].m->state;
			up = cnt = 0;
			for (k = i; k < s->n && (g == NULL ?
			    all[k].m->group == NULL : all[k].m->group != NULL &&
			    strcmp(all[k].m->group, g) == 0); k++) {
				cnt++;
				up += mstate_is_up((enum mstate)all[k].m->state);
				if (state_rank(all[k].m->state) >
				    state_rank(worst))
					worst = all[k].m->state;
			}
			if (g == NULL)
				continue;
			sbuf_puts(&b, "<li><a href=\"");
			page_link(&b, g, 1);
			sbuf_puts(&b, "\"");
			if (pa->group != NULL && strcmp(pa->group, g) == 0)
				sbuf_puts(&b, " aria-current=\"page\"");
			sbuf_puts(&b, ">");
			esc(&b, g);
			sbuf_printf(&b, " <span class=\"state %s\"><span "
			    "aria-hidden=\"true\">%s</span> %s</span> "
			    "<span class=\"reason\">%zu/%zu up</span></a></li>",
			    state_class(worst), state_icon(worst),
			    state_word(worst), up, cnt);
		}
		sbuf_puts(&b, "</ul></nav>");
		free(all);
	}

	/* The monitors of this page. */
	first = (size_t)(pa->page - 1) * STATUSPAGE_PER_PAGE;
	last = first + STATUSPAGE_PER_PAGE < n ? first + STATUSPAGE_PER_PAGE :
	    n;
	sbuf_puts(&b, "<section aria-labelledby=\"mon-h\"><h2 id=\"mon-h\">"
	    "Monitors</h2><div class=\"axis\" aria-hidden=\"true\">"
	    "<span>90 days ago</span><span>today</span></div>");
	if (n == 0)
		sbuf_puts(&b, "<p>No monitors to show.</p>");
	for (i = first; i < last; i++) {
		const struct snap_mon *m = pm[i].m;
		const char *reason = NULL;

		if (i == first || (m->group == NULL) != (cur_group == NULL) ||
		    (m->group != NULL && strcmp(m->group, cur_group) != 0)) {
			if (i != first)
				sbuf_puts(&b, "</ul>");
			if (m->group != NULL) {
				sbuf_puts(&b, "<h3>");
				esc(&b, m->group);
				sbuf_puts(&b, "</h3>");
			} else if (any_group)
				sbuf_puts(&b, "<h3>Ungrouped</h3>");
			sbuf_puts(&b, "<ul class=\"mons\">");
			cur_group = m->group;
		}
		memset(d, 0, sizeof(d));
		for (j = 0; j < DAYS; j++) {
			d[j].uptime = NAN;
			d[j].day_ms = (now / 86400000LL - DAYS + 1 +
			    (int64_t)j) * 86400000LL;
		}
		for (j = 0; j < HOURS; j++)
			hr[j].latency_avg_ms = NAN;
		if (pm[i].id != 0 && db_ok &&
		    (history_daily(h, pm[i].id, now, DAYS, d) != 0 ||
		    history_hourly(h, pm[i].id, now, HOURS, hr) != 0))
			db_ok = 0;
		for (j = 0; j < n_inc && m->state == ST_DOWN; j++)
			if (inc[j].monitor_id == pm[i].id &&
			    inc[j].inc.end_ms == 0 && inc[j].inc.reason[0]) {
				reason = inc[j].inc.reason;
				break;
			}
		sbuf_puts(&b, "<li class=\"mon ");
		sbuf_puts(&b, state_class(m->state));
		sbuf_puts(&b, "\" data-monitor=\"");
		esc(&b, m->name);
		/* Under a group's h3 the names are h4, else h3. */
		sbuf_printf(&b, "\"><div class=\"top\"><h%d class=\"name\">",
		    any_group ? 4 : 3);
		esc(&b, m->name);
		sbuf_printf(&b, "</h%d><span class=\"state\" data-state=\"%s\">"
		    "<span aria-hidden=\"true\">%s</span> %s</span>",
		    any_group ? 4 : 3, mstate_name((enum mstate)m->state),
		    state_icon(m->state),
		    state_word(m->state));
		if (reason != NULL) {
			sbuf_puts(&b, "<span class=\"reason\">(");
			esc(&b, reason);
			sbuf_puts(&b, ")</span>");
		}
		/* The bars first, the sentence after: u90 is their sum. */
		{
			struct sbuf bb = { NULL, 0, 0 };

			bars(&bb, d, &u90);
			pct(buf, sizeof(buf), u90);
			sbuf_printf(&b, "<span class=\"up90\">%s%s</span></div>"
			    "<div class=\"row\">", buf, isnan(u90) ? "" :
			    " uptime, 90 days");
			sbuf_append(&b, bb.data, bb.len);
			sbuf_free(&bb);
		}
		sparkline(&b, hr);
		sbuf_puts(&b, "</div></li>");
	}
	if (last > first)
		sbuf_puts(&b, "</ul>");
	if (pages > 1) {
		sbuf_puts(&b, "<nav class=\"pager\" aria-label=\"Pages\">");
		if (pa->page > 1) {
			sbuf_puts(&b, "<a rel=\"prev\" href=\"");
			page_link(&b, pa->group, pa->page - 1);
			sbuf_puts(&b, "\">Previous</a>");
		}
		sbuf_printf(&b, "<span>Page %lld of %zu (monitors %zu\xe2\x80\x93"
		    "%zu of %zu)</span>", pa->page, pages, first + 1, last, n);
		if ((size_t)pa->page < pages) {
			sbuf_puts(&b, "<a rel=\"next\" href=\"");
			page_link(&b, pa->group, pa->page + 1);
			sbuf_puts(&b, "\">Next</a>");
		}
		sbuf_puts(&b, "</nav>");
	}
	sbuf_puts(&b, "</section>");

	/* Incidents: the open ones, then those ended in the last 7 days. */
	sbuf_puts(&b, "<section aria-labelledby=\"inc-h\"><h2 id=\"inc-h\">"
	    "Incidents</h2>");
	for (i = 0; i < 2; i++) {
		size_t shown = 0;

		sbuf_puts(&b, i == 0 ? "<h3>Open</h3>" :
		    "<h3>Resolved in the last 7 days</h3>");
		sbuf_printf(&b, "<ul class=\"incs\" id=\"%s\">", i == 0 ?
		    "open-incidents" : "recent-incidents");
		for (j = 0; j < n_inc; j++) {
			struct idname key = { inc[j].monitor_id, NULL }, *f;

			if ((inc[j].inc.end_ms == 0) != (i == 0))
				continue;
			f = bsearch(&key, byid, ids.n, sizeof(*byid),
			    idname_cmp);
			if (f == NULL)
				continue;
			shown++;
			iso(buf, sizeof(buf), inc[j].inc.start_ms);
			ymdhm(buf2, sizeof(buf2), inc[j].inc.start_ms);
			sbuf_puts(&b, "<li><strong>");
			esc(&b, f->name);
			sbuf_printf(&b, "</strong> down since <time datetime="
			    "\"%s\">%s</time>", buf, buf2);
			if (inc[j].inc.end_ms != 0) {
				iso(buf, sizeof(buf), inc[j].inc.end_ms);
				ymdhm(buf2, sizeof(buf2), inc[j].inc.end_ms);
				sbuf_printf(&b, ", until <time datetime=\"%s\">"
				    "%s</time>", buf, buf2);
			}
			duration(buf, sizeof(buf), inc[j].inc.duration_s);
			sbuf_printf(&b, " (%s)", buf);
			if (inc[j].inc.reason[0] != '\0') {
				sbuf_puts(&b, " \xe2\x80\x94 ");
				esc(&b, inc[j].inc.reason);
			}
			sbuf_puts(&b, "</li>");
		}
		if (shown == 0)
			sbuf_puts(&b, i == 0 ? "<li>No open incidents.</li>" :
			    "<li>None.</li>");
		sbuf_puts(&b, "</ul>");
		if (i == 0 && open > shown)
			sbuf_printf(&b, "<p>and %zu more open</p>",
			    open - shown);
		else if (i == 1 && total - open > shown)
			sbuf_printf(&b, "<p>and %zu more</p>",
			    total - open - shown);
	}
	sbuf_puts(&b, "</section>");
	if (!db_ok)
		sbuf_puts(&b, "<p role=\"alert\">The history could not be "
		    "read; see the agent's log.</p>");
	sbuf_puts(&b, "</main><footer>");
	if (s->footer != NULL) {
		sbuf_puts(&b, "<p>");
		esc(&b, s->footer);
		sbuf_puts(&b, "</p>");
	}
	ymdhm(buf, sizeof(buf), now);
	iso(buf2, sizeof(buf2), now);
	sbuf_printf(&b, "<p>Updated <time datetime=\"%s\">%s</time>; "
	    "this page reloads every minute. Watchpost.</p></footer>"
	    "<script nonce=\"%s\">setTimeout(function(){location.reload()},"
	    "%d);</script></body></html>\n", buf2, buf, nonce, REFRESH_MS);

	snprintf(r->csp, sizeof(r->csp), "default-src 'none'; style-src "
	    "'nonce-%s'; script-src 'nonce-%s'; base-uri "
	    "'none'; form-action 'none'; frame-ancestors 'none'", nonce,
	    nonce);
	r->cache = "no-store";
	set_reply(r, 200, "text/html; charset=utf-8", &b);
	free(pm);
	free(hm);
	free(inc);
	free(ids.ids);
	free(byid);
}

/* ---- badges ---- */

/* Verdana 11px, roughly, as shields measures it. */
static double
text_width(const char *s)
{
	double w = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c & 0xc0) == 0x80)
			continue;	/* UTF-8 continuation */
		if (strchr("iljtf.,:;|!'I ()[]", c) != NULL)
			w += 3.9;
		else if (strchr("mwMW%", c) != NULL)
			w += 10.5;
		else if (c >= 'A' && c <= 'Z')
			w += 7.7;
		else
			w += 6.9;
	}
	return w;
}

static void
badge(struct statuspage_reply *r, unsigned status, const char *label,
    const char *msg, const char *color, int public)
{
	struct sbuf b = { NULL, 0, 0 };
	int lw = (int)(text_width(label) + 10.5), mw = (int)(text_width(msg) +
	    10.5), w = lw + mw;
	int i;

	sbuf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%d\" height=\"20\" role=\"img\" aria-label=\"", w);
	esc(&b, label);
	sbuf_puts(&b, ": ");
	esc(&b, msg);
	sbuf_puts(&b, "\"><title>");
	esc(&b, label);
	sbuf_puts(&b, ": ");
	esc(&b, msg);
	sbuf_printf(&b, "</title><linearGradient id=\"s\" x2=\"0\" "
	    "y2=\"100%%\"><stop offset=\"0\" stop-color=\"#bbb\" "
	    "stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/>"
	    "</linearGradient><clipPath id=\"r\"><rect width=\"%d\" "
	    "height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath><g "
	    "clip-path=\"url(#r)\"><rect width=\"%d\" height=\"20\" "
	    "fill=\"#555\"/><rect x=\"%d\" width=\"%d\" height=\"20\" "
	    "fill=\"%s\"/><rect width=\"%d\" height=\"20\" fill=\"url(#s)\"/>"
	    "</g><g fill=\"#fff\" text-anchor=\"middle\" font-family="
	    "\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">",
	    w, lw, lw, mw, color, w);
	for (i = 0; i < 2; i++) {
		double x = i == 0 ? lw / 2.0 : lw + mw / 2.0;
		const char *t = i == 0 ? label : msg;

		sbuf_printf(&b, "<text aria-hidden=\"true\" x=\"%.1f\" "
		    "y=\"15\" fill=\"#010101\" fill-opacity=\".3\">", x);
		esc(&b, t);
		sbuf_printf(&b, "</text><text x=\"%.1f\" y=\"14\">", x);
		esc(&b, t);
		sbuf_puts(&b, "</text>");
	}
	sbuf_puts(&b, "</g></svg>\n");
	snprintf(r->csp, sizeof(r->csp), "default-src 'none'; "
	    "frame-ancestors *");
	r->cache = status != 200 ? "no-store" : public ?
	    "public, max-age=60" : "private, max-age=60";
	set_reply(r, status, "image/svg+xml; charset=utf-8", &b);
}

static const char *
state_color(int s)
{
	switch (s) {
	case ST_UP: return "#4c1";
	case ST_DEGRADED: return "#dfb317";
	case ST_DOWN: return "#e05d44";
	case ST_MAINTENANCE: return "#007ec6";
	default: break;
	}
	return "#9f9f9f";
}

static void
render_badge(const struct snap *s, struct history *h, const char *url,
    int route, const char *window, struct statuspage_reply *r)
{
	static const char *const windows[] = { "24h", "7d", "30d", "90d",
	    NULL };
	const struct snap_mon *m = NULL;
	struct history_uptime u;
	char name[128], label[32], msg[32];
	int64_t id = 0, ms = 0;
	size_t i;
	int pub = conf_public;

	(void)badge_name(url, route == 2 ? "/status.svg" : "/uptime.svg",
	    name);
	for (i = 0; i < s->n && m == NULL; i++)
		if (strcmp(s->mon[i].name, name) == 0)
			m = &s->mon[i];
	if (m == NULL) {
		/* Unknown, or hidden by [status] monitors: the same answer,
		 * which does not repeat the name. */
		badge(r, 404, "monitor", "not found", "#9f9f9f", pub);
		return;
	}
	if (route == 2) {
		badge(r, 200, m->name, mstate_name((enum mstate)m->state),
		    state_color(m->state), pub);
		return;
	}
	if (window == NULL)
		window = "30d";
	for (i = 0; windows[i] != NULL; i++)
		if (strcmp(window, windows[i]) == 0)
			break;
	if (windows[i] == NULL || history_parse_window(window, &ms) != 0) {
		badge(r, 400, "window", "24h, 7d, 30d or 90d", "#9f9f9f", pub);
		return;
	}
	snprintf(label, sizeof(label), "uptime %s", windows[i]);
	u.uptime = NAN;
	if (h != NULL && (history_monitor_id(h, m->name, &id) != 0 ||
	    (id != 0 && history_uptime(h, &id, 1, wall_ms(), ms, &u) != 0))) {
		badge(r, 500, label, "error", "#9f9f9f", pub);
		return;
	}
	pct(msg, sizeof(msg), u.uptime);
	badge(r, 200, label, msg, isnan(u.uptime) ? "#9f9f9f" :
	    u.uptime >= 0.999 ? "#4c1" : u.uptime >= 0.99 ? "#97ca00" :
	    u.uptime >= 0.95 ? "#dfb317" : u.uptime >= 0.90 ? "#fe7d37" :
	    "#e05d44", pub);
}

/* ---- the answer ---- */

void
statuspage_answer(const char *snap, struct history *h, const char *url,
    const char *(*arg)(void *c, const char *name),
    void (*each)(void *c, void (*fn)(void *cls, const char *key),
    void *cls), void *c, struct statuspage_reply *r)
{
	static const char *const page_params[] = { "page", "group", NULL };
	static const char *const uptime_params[] = { "window", NULL };
	static const char *const no_params[] = { NULL };
	const struct snap *s = (const struct snap *)(const void *)snap;
	struct qcheck q = { NULL, 0, 0 };
	struct page_args pa = { 1, NULL };
	int route = statuspage_route(url);
	const char *p;
	long long v;

	memset(r, 0, sizeof(*r));
	q.allowed = route == 1 ? page_params : route == 3 ? uptime_params :
	    no_params;
	each(c, qcheck_fn, &q);
	if (route != 1) {
		if (q.bad) {
			badge(r, 400, "badge", "bad query", "#9f9f9f",
			    conf_public);
			return;
		}
		render_badge(s, h, url, route, arg(c, "window"), r);
		return;
	}
	if (q.bad) {
		page_error(r, 400, "Unknown query parameter (the page takes "
		    "page and group)");
		return;
	}
	if ((p = arg(c, "page")) != NULL) {
		if (strlen(p) > 7 || parse_int(p, 1, PAGE_MAX, &v) != 0) {
			page_error(r, 400, "page: a number from 1");
			return;
		}
		pa.page = v;
	}
	if ((p = arg(c, "group")) != NULL) {
		if (*p == '\0' || strlen(p) > LABEL_MAX) {
			page_error(r, 400, "group: a group's name");
			return;
		}
		pa.group = p;
	}
	render_page(s, h, &pa, r);
}
