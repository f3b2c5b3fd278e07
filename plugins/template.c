/*
 * template -- see template.h for the syntax and the contract.
 *
 * A compiled template is a flat list of nodes (literal text, a field, the
 * start, separator and end of the one {{#alerts}} section), so rendering is
 * one walk with no parsing left in it.  Field values are never parsed: a
 * monitor named "{{error}}" renders as that text.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template.h"

enum node_kind {
	N_LIT,      /* text[off, off+len) */
	N_FIELD,    /* field */
	N_COUNT,    /* {{count}} */
	N_BEGIN,    /* {{#alerts}} */
	N_SEP,      /* {{|}} */
	N_END       /* {{/alerts}} */
};

struct node {
	int kind;
	int field;
	size_t off, len;
};

struct template {
	char *text;         /* a copy of the source */
	struct node *nodes;
	size_t n;
};

enum field {
	F_MONITOR, F_TYPE, F_STATE, F_PREVIOUS_STATE, F_REASON, F_ERROR,
	F_LATENCY_MS, F_TIMESTAMP, F_SINCE, F_DURATION, F_TARGET, F_ID,
	F_AGENT, F_LOCATION, F_CONFIRMED_BY, F__COUNT
};

static const char *const field_names[F__COUNT] = {
	"monitor", "type", "state", "previous_state", "reason", "error",
	"latency_ms", "timestamp", "since", "duration", "target", "id",
	"agent", "location", "confirmed_by"
};

size_t
template_utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		c = p[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return len;
}

void
template_buf_free(struct template_buf *out)
{
	free(out->p);
	out->p = NULL;
	out->len = out->cap = 0;
}

/* Make room for N more bytes and the NUL. */
static int
grow(struct template_buf *out, size_t n)
{
	size_t cap;
	char *p;

	if (out->len + n + 1 <= out->cap)
		return WP_OK;
	cap = out->cap ? out->cap : 256;
	while (cap < out->len + n + 1) {
		if (cap > SIZE_MAX / 2)
			return WP_ENOMEM;
		cap *= 2;
	}
	if ((p = realloc(out->p, cap)) == NULL)
		return WP_ENOMEM;
	out->p = p;
	out->cap = cap;
	return WP_OK;
}

static int
raw(struct template_buf *out, const char *p, size_t n)
{
	if (grow(out, n) != WP_OK)
		return WP_ENOMEM;
	memcpy(out->p + out->len, p, n);
	out->len += n;
	out->p[out->len] = '\0';
	return WP_OK;
}

int
template_buf_put(struct template_buf *out, const char *s, size_t n,
    enum template_mode mode)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];
	size_t i, k;
	int rc = WP_OK;

	/* Nothing at all still leaves a NUL-terminated buffer. */
	if (grow(out, 0) != WP_OK)
		return WP_ENOMEM;
	out->p[out->len] = '\0';
	for (i = 0; i < n && rc == WP_OK; i += k) {
		if ((k = template_utf8_len(p + i, n - i)) == 0) {
			rc = raw(out, repl, 3);
			k = 1;
			continue;
		}
		if (k > 1 || (p[i] >= 0x20 && p[i] != 0x7f &&
		    (mode != TEMPLATE_JSON || (p[i] != '"' && p[i] != '\\')))) {
			rc = raw(out, s + i, k);
			continue;
		}
		/* One ASCII byte that needs care in this mode. */
		switch (mode) {
		case TEMPLATE_JSON:
			if (p[i] == '"' || p[i] == '\\') {
				esc[0] = '\\';
				esc[1] = (char)p[i];
				rc = raw(out, esc, 2);
			} else if (p[i] == '\n')
				rc = raw(out, "\\n", 2);
			else if (p[i] == '\t')
				rc = raw(out, "\\t", 2);
			else if (p[i] == '\r')
				rc = raw(out, "\\r", 2);
			else {
				snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
				rc = raw(out, esc, 6);
			}
			break;
		case TEMPLATE_TEXT:
			rc = raw(out, p[i] == '\n' || p[i] == '\t' ? s + i : " ",
			    1);
			break;
		default:
			rc = raw(out, " ", 1);
			break;
		}
	}
	return rc;
}

/* ISO 8601 UTC with milliseconds for US since the epoch, into BUF. */
static const char *
iso_time(int64_t us, char *buf, size_t size)
{
	int64_t ms = us / 1000 - (us % 1000 < 0);
	int64_t sec = ms / 1000, frac = ms % 1000;
	struct tm tm;
	time_t t;

	if (frac < 0) {
		frac += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return NULL;
	snprintf(buf + strlen(buf), size - strlen(buf), ".%03dZ", (int)frac);
	return buf;
}

/* "1d 2h 3m 4s" for US (whole seconds, zero units left out). */
static const char *
human_duration(uint64_t us, char *buf, size_t size)
{
	static const struct { const char *u; uint64_t s; } units[] = {
		{ "d", 86400 }, { "h", 3600 }, { "m", 60 }, { "s", 1 }
	};
	uint64_t s = us / 1000000;
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s < units[i].s && !(units[i].s == 1 && o == 0))
			continue;
		o += (size_t)snprintf(buf + o, size - o, "%s%" PRIu64 "%s",
		    o ? " " : "", s / units[i].s, units[i].u);
		s %= units[i].s;
		if (o >= size)
			break;
	}
	return buf;
}

/* The value of field F of A as text (into BUF when computed), or NULL when
 * the alert does not have it. */
static const char *
field_value(int f, const struct wp_alert *a, char *buf, size_t size)
{
	double ms;

	switch (f) {
	case F_MONITOR: return a->monitor;
	case F_TYPE: return a->type;
	case F_STATE: return a->state;
	case F_PREVIOUS_STATE: return a->previous_state;
	case F_REASON: return a->reason;
	case F_ERROR: return a->error;
	case F_TARGET: return a->target;
	case F_AGENT: return a->agent;
	case F_LOCATION: return a->location;
	case F_CONFIRMED_BY: return a->confirmed_by;
	case F_LATENCY_MS:
		if (a->latency_us < 0)
			return NULL;
		ms = (double)a->latency_us / 1000.0;
		if (a->latency_us % 1000 == 0)
			snprintf(buf, size, "%" PRId64, a->latency_us / 1000);
		else
			snprintf(buf, size, "%.1f", ms);
		return buf;
	case F_TIMESTAMP:
		return iso_time(a->timestamp_us, buf, size);
	case F_SINCE:
		return a->since_us == 0 ? NULL : iso_time(a->since_us, buf,
		    size);
	case F_DURATION:
		if (a->since_us == 0)
			return NULL;
		/* unsigned: no overflow whatever a host sends */
		return human_duration(a->timestamp_us > a->since_us ?
		    (uint64_t)a->timestamp_us - (uint64_t)a->since_us : 0, buf,
		    size);
	case F_ID:
		snprintf(buf, size, "%" PRIu64, a->id);
		return buf;
	default:
		return NULL;
	}
}

/* A copy of IN with the fields an older host did not send zeroed. */
static void
read_alert(const struct wp_alert *in, struct wp_alert *a)
{
	size_t n = in->size < sizeof(*a) ? in->size : sizeof(*a);

	memset(a, 0, sizeof(*a));
	memcpy(a, in, n);
}

static int
put_field(int f, const struct wp_alert *in, enum template_mode mode,
    struct template_buf *out)
{
	struct wp_alert a;
	char buf[64];
	const char *v;

	read_alert(in, &a);
	if ((v = field_value(f, &a, buf, sizeof(buf))) == NULL)
		v = "";
	return template_buf_put(out, v, strlen(v), mode);
}

static int
field_index(const char *name, size_t len)
{
	int f;

	for (f = 0; f < F__COUNT; f++)
		if (strlen(field_names[f]) == len &&
		    memcmp(field_names[f], name, len) == 0)
			return f;
	return -1;
}

int
template_field(const char *name, const struct wp_alert *a,
    enum template_mode mode, struct template_buf *out)
{
	int f = field_index(name, strlen(name));

	if (f < 0)
		return WP_EINVAL;
	return put_field(f, a, mode, out);
}

void
template_free(struct template *t)
{
	if (t == NULL)
		return;
	free(t->text);
	free(t->nodes);
	free(t);
}

struct compiler {
	const char *text;
	template_diag_fn diag;
	void *arg;
	int errors;
};

/* Report a problem at byte POS of the text. */
static void
problem(struct compiler *c, size_t pos, const char *fmt, const char *what,
    size_t what_len)
{
	char msg[160];
	int line = 1, col = 1;
	size_t i;

	for (i = 0; i < pos; i++) {
		if (c->text[i] == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)c->text[i] & 0xc0) != 0x80)
			col++;
	}
	if (what_len > 40)
		what_len = 40;
	snprintf(msg, sizeof(msg), fmt, (int)what_len, what);
	c->errors++;
	if (c->diag != NULL)
		c->diag(c->arg, line, col, msg);
}

static int
is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

struct template *
template_compile(const char *text, template_diag_fn diag, void *arg)
{
	struct compiler c = { text, diag, arg, 0 };
	struct template *t;
	size_t len = strlen(text), cap, i = 0, open_at = 0;
	const char *end, *name;
	size_t nlen;
	int in_section = 0, have_sep = 0, kind, f = -1;
	struct node *nd;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->text = strdup(text)) == NULL ||
	    (t->nodes = calloc((cap = len / 2 + 2), sizeof(*t->nodes))) ==
	    NULL)
		goto nomem;
	/* Every node but the last literal ends at a "{{": len / 2 + 2 is
	 * enough for literal, tag, literal, tag ... */
	while (i < len) {
		const char *open = strstr(text + i, "{{");
		size_t at = open ? (size_t)(open - text) : len;

		if (at > i) {
			nd = &t->nodes[t->n++];
			nd->kind = N_LIT;
			nd->off = i;
			nd->len = at - i;
		}
		if (open == NULL)
			break;
		if ((end = strstr(open + 2, "}}")) == NULL) {
			problem(&c, at, "\"{{\" without a closing \"}}\"%.*s",
			    "", 0);
			break;
		}
		name = open + 2;
		nlen = (size_t)(end - name);
		while (nlen > 0 && is_blank(*name)) {
			name++;
			nlen--;
		}
		while (nlen > 0 && is_blank(name[nlen - 1]))
			nlen--;
		kind = N_FIELD;
		if (nlen == 7 && memcmp(name, "#alerts", 7) == 0)
			kind = N_BEGIN;
		else if (nlen == 7 && memcmp(name, "/alerts", 7) == 0)
			kind = N_END;
		else if (nlen == 1 && name[0] == '|')
			kind = N_SEP;
		else if (nlen == 5 && memcmp(name, "count", 5) == 0)
			kind = N_COUNT;
		else if ((f = field_index(name, nlen)) < 0)
			problem(&c, at, "unknown field \"%.*s\" (fields: "
			    "monitor type state previous_state reason error "
			    "latency_ms timestamp since duration target id "
			    "agent location confirmed_by count)", name, nlen);
		if (kind == N_BEGIN && in_section)
			problem(&c, at, "%.*s{{#alerts}} inside {{#alerts}} "
			    "(sections do not nest)", "", 0);
		else if (kind == N_BEGIN) {
			in_section = 1;
			have_sep = 0;
			open_at = at;
		} else if ((kind == N_END || kind == N_SEP) && !in_section)
			problem(&c, at, "\"{{%.*s}}\" outside {{#alerts}}",
			    name, nlen);
		else if (kind == N_SEP && have_sep)
			problem(&c, at, "%.*sa second {{|}} in one section",
			    "", 0);
		else if (kind == N_SEP)
			have_sep = 1;
		else if (kind == N_END)
			in_section = 0;
		nd = &t->nodes[t->n++];
		nd->kind = kind;
		nd->field = f;
		i = (size_t)(end - text) + 2;
	}
	if (in_section)
		problem(&c, open_at, "%.*s{{#alerts}} without {{/alerts}}", "",
		    0);
	if (c.errors == 0)
		return t;
	template_free(t);
	return NULL;
nomem:
	template_free(t);
	if (diag != NULL)
		diag(arg, 1, 1, "out of memory");
	return NULL;
}

/* Render nodes [from, to) for alert A of the batch. */
static int
render_span(const struct template *t, size_t from, size_t to,
    const struct wp_alert *a, size_t count, enum template_mode mode,
    struct template_buf *out)
{
	char num[32];
	size_t i;
	int rc = WP_OK;

	for (i = from; i < to && rc == WP_OK; i++) {
		const struct node *nd = &t->nodes[i];

		switch (nd->kind) {
		case N_LIT:
			/* The template's own text: only the header mode
			 * changes it (no line break in a header). */
			if (mode == TEMPLATE_HEADER)
				rc = template_buf_put(out, t->text + nd->off,
				    nd->len, mode);
			else
				rc = raw(out, t->text + nd->off, nd->len);
			break;
		case N_FIELD:
			rc = put_field(nd->field, a, mode, out);
			break;
		case N_COUNT:
			snprintf(num, sizeof(num), "%zu", count);
			rc = raw(out, num, strlen(num));
			break;
		default:
			break;
		}
	}
	return rc;
}

int
template_render(const struct template *t,
    const struct wp_alert *const *alerts, size_t n, enum template_mode mode,
    struct template_buf *out)
{
	size_t i, begin, sep, end, k;
	int rc = WP_OK;

	if (n == 0)
		return WP_EINVAL;
	if (grow(out, 0) != WP_OK)
		return WP_ENOMEM;
	out->p[out->len] = '\0';
	for (i = 0; i < t->n && rc == WP_OK; i = end + 1) {
		/* The stretch up to the next section renders for alerts[0]. */
		for (begin = i; begin < t->n && t->nodes[begin].kind !=
		    N_BEGIN; begin++)
			;
		rc = render_span(t, i, begin, alerts[0], n, mode, out);
		if (begin == t->n || rc != WP_OK)
			break;
		for (end = begin; t->nodes[end].kind != N_END; end++)
			;
		for (sep = begin; sep < end && t->nodes[sep].kind != N_SEP;
		    sep++)
			;
		for (k = 0; k < n && rc == WP_OK; k++) {
			rc = render_span(t, begin + 1, sep, alerts[k], n, mode,
			    out);
			if (rc == WP_OK && k + 1 < n && sep < end)
				rc = render_span(t, sep + 1, end, alerts[k], n,
				    mode, out);
		}
	}
	return rc;
}
