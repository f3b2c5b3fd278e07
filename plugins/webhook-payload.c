#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "template.h"
#include "webhook-payload.h"

/* A JSON string for S (repaired to valid UTF-8), json null for NULL, or
 * NULL when out of memory. */
static json_t *
jstr(const char *s)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i, o, k;
	json_t *j;
	char *buf;

	if (s == NULL)
		return json_null();
	n = strlen(s);
	if ((buf = malloc(n * 3 + 1)) == NULL)
		return NULL;
	for (i = 0, o = 0; i < n; ) {
		if ((k = template_utf8_len(p + i, n - i)) == 0) {
			memcpy(buf + o, repl, 3);
			o += 3;
			i++;
		} else {
			memcpy(buf + o, p + i, k);
			o += k;
			i += k;
		}
	}
	buf[o] = '\0';
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

/* "2026-11-22T10:15:30.123Z" for MS since the epoch, into BUF. */
static json_t *
jtime(int64_t ms)
{
	char buf[64];
	struct tm tm;
	int64_t sec = ms / 1000, frac = ms % 1000;
	time_t t;

	if (frac < 0) {
		frac += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return json_null();
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03dZ",
	    (int)frac);
	return json_string(buf);
}

static json_t *
jid(uint64_t id)
{
	char buf[32];

	if (id <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)id);
	snprintf(buf, sizeof(buf), "%" PRIu64, id);
	return json_string(buf);
}

/* The json format's object for one alert (see webhook_payload()), or NULL
 * when out of memory. */
static json_t *
payload_object(const struct wp_alert *in)
{
	struct wp_alert a;
	json_t *o = NULL, *v;
	size_t n;
	int bad = 0;

	memset(&a, 0, sizeof(a));
	n = in->size < sizeof(a) ? in->size : sizeof(a);
	memcpy(&a, in, n);
	if ((o = json_object()) == NULL)
		return NULL;
#define SET(k, expr)                                                    \
	do {                                                            \
		if ((v = (expr)) == NULL ||                             \
		    json_object_set_new(o, (k), v) != 0)                \
			bad = 1;                                        \
	} while (0)
	SET("monitor", jstr(a.monitor));
	SET("type", jstr(a.type));
	SET("state", jstr(a.state));
	SET("previous_state", jstr(a.previous_state));
	/* whole ms, rounded down (before 1970 too) */
	SET("timestamp", jtime(a.timestamp_us / 1000 -
	    (a.timestamp_us % 1000 < 0)));
	SET("error", jstr(a.error));
	SET("reason", jstr(a.reason));
	/* The payload's field stays in ms: it is what receivers parse. */
	SET("latency_ms", a.latency_us < 0 ? json_null() :
	    json_real((double)a.latency_us / 1000.0));
	SET("id", jid(a.id));
	SET("attempt", json_integer((json_int_t)a.attempt));
	/* Only when they say something, so every other body stays as it
	 * always was. */
	if (a.repeat > 0)
		SET("repeat", json_integer((json_int_t)a.repeat));
	if (a.flags & WP_ALERT_TEST)
		SET("test", json_true());
	if (a.flags & WP_ALERT_ESCALATION)
		SET("escalation", json_true());
	/* Cluster mode: who sent it, from where, confirmed by whom. */
	if (a.location != NULL) {
		SET("agent", jstr(a.agent));
		SET("location", jstr(a.location));
	}
	if (a.confirmed_by != NULL)
		SET("confirmed_by", jstr(a.confirmed_by));
#undef SET
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Dump O compactly and drop it; NULL (O dropped) when out of memory. */
static char *
dump(json_t *o)
{
	char *out = NULL;

	if (o != NULL)
		out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

char *
webhook_payload(const struct wp_alert *a)
{
	return dump(payload_object(a));
}

/* ---- formats ---- */

const char *const webhook_format_names[WF__COUNT + 1] = {
	"json", "slack", "discord", "teams", "mattermost", "ntfy", "gotify",
	"telegram", "pagerduty", "template", NULL
};

/* Bytes of text each receiver takes in its main text field (below its
 * documented limit, which some count in characters: a byte count is never
 * more characters). */
static const size_t text_limit[WF__COUNT] = {
	[WF_SLACK] = 3000,      /* Slack truncates long texts; keep it short */
	[WF_DISCORD] = 4000,    /* embed description: 4096 characters */
	[WF_TEAMS] = 12000,     /* the card as a whole: about 28 KB */
	[WF_MATTERMOST] = 4000, /* 4000 on older servers (16383 today) */
	[WF_NTFY] = 3800,       /* over 4096 bytes the message becomes a file */
	[WF_GOTIFY] = 8000,
	[WF_TELEGRAM] = 3800,   /* text: 4096 characters, title included */
	[WF_PAGERDUTY] = 1000,  /* payload.summary: 1024 characters */
};

enum worst { W_UP, W_DEGRADED, W_DOWN };

/* A copy of IN with the fields an older host did not send zeroed. */
static void
read_alert(const struct wp_alert *in, struct wp_alert *a)
{
	size_t n = in->size < sizeof(*a) ? in->size : sizeof(*a);

	memset(a, 0, sizeof(*a));
	memcpy(a, in, n);
}

static int
is_state(const struct wp_alert *a, const char *s)
{
	return a->state != NULL && strcmp(a->state, s) == 0;
}

static enum worst
worst_of(const struct wp_alert *const *al, size_t n)
{
	enum worst w = W_UP;
	struct wp_alert a;
	size_t i;

	for (i = 0; i < n; i++) {
		read_alert(al[i], &a);
		if (is_state(&a, "down"))
			return W_DOWN;
		if (!is_state(&a, "up"))
			w = W_DEGRADED;
	}
	return w;
}

/* Literal text (ours: valid UTF-8, no control characters but LF). */
static int
lit(struct template_buf *b, const char *s)
{
	return template_buf_put(b, s, strlen(s), TEMPLATE_TEXT);
}

/* Field NAME of A on one line: every control character, CR and LF
 * included, becomes a space, so a value cannot forge a line of ours. */
static int
fld(struct template_buf *b, const char *name, const struct wp_alert *a)
{
	return template_field(name, a, TEMPLATE_HEADER, b);
}

static int
upper_state(struct template_buf *b, const struct wp_alert *a)
{
	char up[24];
	size_t i;

	if (a->state == NULL)
		return lit(b, "?");
	for (i = 0; a->state[i] != '\0' && i + 1 < sizeof(up); i++)
		up[i] = a->state[i] >= 'a' && a->state[i] <= 'z' ?
		    (char)(a->state[i] - 'a' + 'A') : a->state[i];
	up[i] = '\0';
	return template_buf_put(b, up, i, TEMPLATE_HEADER);
}

/* "[TEST] api-home is DOWN" (with WITH_ERROR: ": the error"), then
 * "(was down for 1h 2m)" for a recovery, "(reminder 2)", "(escalated)". */
static int
alert_line(struct template_buf *b, const struct wp_alert *in, int with_error)
{
	struct wp_alert a;
	char num[32];
	int rc = WP_OK;

	read_alert(in, &a);
	if (a.flags & WP_ALERT_TEST)
		rc |= lit(b, "[TEST] ");
	rc |= fld(b, "monitor", &a);
	rc |= lit(b, " is ");
	rc |= upper_state(b, &a);
	if (with_error && !is_state(&a, "up") && a.error != NULL) {
		rc |= lit(b, ": ");
		rc |= fld(b, "error", &a);
	}
	if (is_state(&a, "up") && a.previous_state != NULL &&
	    strcmp(a.previous_state, "pending") != 0) {
		rc |= lit(b, " (was ");
		rc |= fld(b, "previous_state", &a);
		if (a.since_us != 0) {
			rc |= lit(b, " for ");
			rc |= fld(b, "duration", &a);
		}
		rc |= lit(b, ")");
	}
	if (a.repeat > 0) {
		snprintf(num, sizeof(num), " (reminder %u)", a.repeat);
		rc |= lit(b, num);
	}
	if (a.flags & WP_ALERT_ESCALATION)
		rc |= lit(b, " (escalated)");
	return rc == WP_OK ? WP_OK : WP_ENOMEM;
}

/* "Label: value\n" when A has the field. */
static int
detail(struct template_buf *b, const char *label, const char *name,
    const struct wp_alert *a, const char *unit)
{
	struct template_buf v = TEMPLATE_BUF_INIT;
	int rc;

	if ((rc = fld(&v, name, a)) == WP_OK && v.len > 0) {
		rc |= lit(b, label);
		rc |= lit(b, ": ");
		rc |= template_buf_put(b, v.p, v.len, TEMPLATE_TEXT);
		rc |= lit(b, unit);
		rc |= lit(b, "\n");
	}
	template_buf_free(&v);
	return rc == WP_OK ? WP_OK : WP_ENOMEM;
}

/* The details of one alert, a line each. */
static int
alert_details(struct template_buf *b, const struct wp_alert *in)
{
	struct wp_alert a;
	int rc = WP_OK;

	read_alert(in, &a);
	if (a.flags & WP_ALERT_TEST)
		rc |= lit(b, "This is a test alert, not a state change.\n");
	rc |= detail(b, "Error", "error", &a, "");
	rc |= detail(b, "Reason", "reason", &a, "");
	rc |= detail(b, "Target", "target", &a, "");
	rc |= detail(b, "Type", "type", &a, "");
	rc |= detail(b, "Latency", "latency_ms", &a, " ms");
	if (a.since_us != a.timestamp_us)
		rc |= detail(b, "Since", "since", &a, "");
	rc |= detail(b, "Agent", "agent", &a, "");
	rc |= detail(b, "Location", "location", &a, "");
	rc |= detail(b, "Confirmed by", "confirmed_by", &a, "");
	rc |= detail(b, "Time", "timestamp", &a, "");
	if (a.status_url != NULL) {
		rc |= lit(b, "Status: ");
		rc |= template_buf_put(b, a.status_url, strlen(a.status_url),
		    TEMPLATE_HEADER);
		rc |= lit(b, "\n");
	}
	return rc == WP_OK ? WP_OK : WP_ENOMEM;
}

/* Cut B to at most MAX bytes on a character boundary, ending in "…". */
static void
clip(struct template_buf *b, size_t max)
{
	size_t cut;

	if (b->len <= max || max < 4)
		return;
	cut = max - 3;
	while (cut > 0 && ((unsigned char)b->p[cut] & 0xc0) == 0x80)
		cut--;
	memcpy(b->p + cut, "\xe2\x80\xa6", 3);
	b->len = cut + 3;
	b->p[b->len] = '\0';
}

/* Drop trailing newlines. */
static void
chomp(struct template_buf *b)
{
	while (b->len > 0 && b->p[b->len - 1] == '\n')
		b->p[--b->len] = '\0';
}

/*
 * The title and the text of a chat message for AL[0..N): for one alert
 * its line and its details; for a batch "N monitors changed state: 2 DOWN,
 * 1 UP" and a line per monitor, as many as fit in LIMIT bytes, then
 * "… and K more".
 */
static int
chat_text(const struct wp_alert *const *al, size_t n, size_t limit,
    struct template_buf *title, struct template_buf *text)
{
	struct template_buf line = TEMPLATE_BUF_INIT;
	size_t i, down = 0, up = 0, other = 0;
	struct wp_alert a;
	char num[96];
	int rc = WP_OK;

	if (n == 1) {
		rc |= alert_line(title, al[0], 0);
		rc |= alert_details(text, al[0]);
		chomp(text);
		clip(title, 250);
		clip(text, limit);
		return rc == WP_OK ? WP_OK : WP_ENOMEM;
	}
	for (i = 0; i < n; i++) {
		read_alert(al[i], &a);
		if (is_state(&a, "down"))
			down++;
		else if (is_state(&a, "up"))
			up++;
		else
			other++;
	}
	snprintf(num, sizeof(num), "%zu monitors changed state:", n);
	rc |= lit(title, num);
#define COUNT(k, word)                                                 \
	if (k > 0) {                                                   \
		snprintf(num, sizeof(num), "%s %zu %s",                \
		    title->len > 0 && title->p[title->len - 1] == ':' ? \
		    "" : ",", k, word);                                \
		rc |= lit(title, num);                                 \
	}
	COUNT(down, "DOWN")
	COUNT(other, "DEGRADED")
	COUNT(up, "UP")
#undef COUNT
	for (i = 0; i < n && rc == WP_OK; i++) {
		line.len = 0;
		rc |= lit(&line, "\xe2\x80\xa2 "); /* "• " */
		rc |= alert_line(&line, al[i], 1);
		clip(&line, limit / 2);
		/* room for this line and for "… and N more" after it */
		if (text->len + line.len + 1 + (i + 1 < n ? 40 : 0) > limit) {
			snprintf(num, sizeof(num), "\xe2\x80\xa6 and %zu more",
			    n - i);
			rc |= lit(text, num);
			break;
		}
		rc |= template_buf_put(text, line.p, line.len, TEMPLATE_TEXT);
		rc |= lit(text, "\n");
	}
	chomp(text);
	template_buf_free(&line);
	return rc == WP_OK ? WP_OK : WP_ENOMEM;
}

/* Slack's mrkdwn needs &, < and > escaped (its own control sequences):
 * an unescaped <!channel> in a monitor name would notify everyone. */
static int
slack_escape(struct template_buf *b)
{
	struct template_buf o = TEMPLATE_BUF_INIT;
	size_t i = 0, run;
	int rc = lit(&o, "");

	while (i < b->len && rc == WP_OK) {
		run = strcspn(b->p + i, "&<>");
		rc = template_buf_put(&o, b->p + i, run, TEMPLATE_TEXT);
		i += run;
		if (i < b->len && rc == WP_OK)
			rc = lit(&o, b->p[i] == '&' ? "&amp;" : b->p[i] == '<' ?
			    "&lt;" : "&gt;");
		i++;
	}
	template_buf_free(b);
	*b = o;
	return rc;
}

/* Mattermost notifies a whole channel for @channel, @all and @here in a
 * webhook's text: a zero-width space after the "@" keeps an error that
 * quotes one from paging everybody, and reads the same. */
static int
mattermost_defuse(struct template_buf *b)
{
	static const char *const words[] = { "channel", "all", "here" };
	struct template_buf o = TEMPLATE_BUF_INIT;
	size_t i, w, len;
	int rc = lit(&o, "");

	/* whole runs up to each "@": a byte at a time would split UTF-8 */
	for (i = 0; i < b->len && rc == WP_OK; i += len) {
		len = strcspn(b->p + i, "@");
		if (len == 0) {
			len = 1;
			rc = lit(&o, "@");
			for (w = 0; w < sizeof(words) / sizeof(words[0]); w++)
				if (strncasecmp(b->p + i + 1, words[w],
				    strlen(words[w])) == 0) {
					rc |= lit(&o, "\xe2\x80\x8b");
					break;
				}
		} else
			rc = template_buf_put(&o, b->p + i, len, TEMPLATE_TEXT);
	}
	template_buf_free(b);
	*b = o;
	return rc == WP_OK ? WP_OK : WP_ENOMEM;
}

/* A JSON string of the valid UTF-8 text B (NULL when out of memory). */
static json_t *
jtext(const struct template_buf *b)
{
	return json_stringn(b->p != NULL ? b->p : "", b->len);
}

/* Build {TITLE-ish} objects with jansson: O gets K = V, or BAD is set. */
#define PUT(o, k, expr)                                                   \
	do {                                                              \
		json_t *v_ = (expr);                                      \
		if (v_ == NULL || json_object_set_new((o), (k), v_) != 0) \
			bad = 1;                                          \
	} while (0)

/* "title\ntext", with the title in MARK (Slack's "*", Markdown's "**"). */
static json_t *
joined(const struct template_buf *title, const struct template_buf *text,
    const char *mark)
{
	struct template_buf b = TEMPLATE_BUF_INIT;
	json_t *j = NULL;
	int rc = WP_OK;

	rc |= lit(&b, mark);
	rc |= template_buf_put(&b, title->p, title->len, TEMPLATE_TEXT);
	rc |= lit(&b, mark);
	if (text->len > 0) {
		rc |= lit(&b, "\n");
		rc |= template_buf_put(&b, text->p, text->len, TEMPLATE_TEXT);
	}
	if (rc == WP_OK)
		j = jtext(&b);
	template_buf_free(&b);
	return j;
}

static json_t *
chat_body(const struct webhook_format_conf *c, enum worst w,
    struct template_buf *title, struct template_buf *text)
{
	static const char *const teams_color[] = { "Good", "Warning",
		"Attention" };
	static const int discord_color[] = { 0x2eb67d, 0xecb22e, 0xe01e5a };
	static const int ntfy_priority[] = { 3, 4, 5 };
	static const char *const ntfy_tag[] = { "white_check_mark",
		"warning", "rotating_light" };
	static const int gotify_priority[] = { 2, 5, 8 };
	json_t *o, *e, *arr, *card, *blk, *att, *am;
	int bad = 0;
	const char *p, *nl;

	if ((o = json_object()) == NULL)
		return NULL;
	switch (c->format) {
	case WF_SLACK:
		if (slack_escape(title) != WP_OK || slack_escape(text) != WP_OK)
			bad = 1;
		PUT(o, "text", joined(title, text, "*"));
		break;
	case WF_MATTERMOST:
		if (mattermost_defuse(title) != WP_OK ||
		    mattermost_defuse(text) != WP_OK)
			bad = 1;
		PUT(o, "text", joined(title, text, "**"));
		break;
	case WF_DISCORD:
		/* content is what a push notification shows */
		PUT(o, "content", jtext(title));
		if ((arr = json_array()) == NULL || (e = json_object()) ==
		    NULL || json_array_append_new(arr, e) != 0) {
			json_decref(arr);
			bad = 1;
			break;
		}
		PUT(o, "embeds", arr);
		PUT(e, "title", jtext(title));
		if (text->len > 0)
			PUT(e, "description", jtext(text));
		PUT(e, "color", json_integer(discord_color[w]));
		/* No @everyone, @here or user ping from an error's text. */
		if ((am = json_object()) == NULL) {
			bad = 1;
			break;
		}
		PUT(o, "allowed_mentions", am);
		PUT(am, "parse", json_array());
		break;
	case WF_TEAMS:
		/* An Adaptive Card in a message: what Teams' Workflows
		 * webhooks take (and the older incoming webhooks too). */
		PUT(o, "type", json_string("message"));
		if ((arr = json_array()) == NULL || (att = json_object()) ==
		    NULL || json_array_append_new(arr, att) != 0) {
			json_decref(arr);
			bad = 1;
			break;
		}
		PUT(o, "attachments", arr);
		PUT(att, "contentType", json_string(
		    "application/vnd.microsoft.card.adaptive"));
		if ((card = json_object()) == NULL) {
			bad = 1;
			break;
		}
		PUT(att, "content", card);
		PUT(card, "$schema", json_string(
		    "http://adaptivecards.io/schemas/adaptive-card.json"));
		PUT(card, "type", json_string("AdaptiveCard"));
		PUT(card, "version", json_string("1.4"));
		if ((arr = json_array()) == NULL) {
			bad = 1;
			break;
		}
		PUT(card, "body", arr);
		if ((blk = json_object()) == NULL ||
		    json_array_append_new(arr, blk) != 0) {
			bad = 1;
			break;
		}
		PUT(blk, "type", json_string("TextBlock"));
		PUT(blk, "text", jtext(title));
		PUT(blk, "weight", json_string("Bolder"));
		PUT(blk, "size", json_string("Medium"));
		PUT(blk, "color", json_string(teams_color[w]));
		PUT(blk, "wrap", json_true());
		/* One TextBlock per line: a card's Markdown joins lines. */
		for (p = text->len > 0 ? text->p : NULL; p != NULL && !bad;
		    p = nl != NULL ? nl + 1 : NULL) {
			nl = strchr(p, '\n');
			if ((blk = json_object()) == NULL ||
			    json_array_append_new(arr, blk) != 0) {
				bad = 1;
				break;
			}
			PUT(blk, "type", json_string("TextBlock"));
			PUT(blk, "text", json_stringn(p, nl != NULL ?
			    (size_t)(nl - p) : strlen(p)));
			PUT(blk, "wrap", json_true());
			PUT(blk, "spacing", json_string("None"));
		}
		break;
	case WF_NTFY:
		PUT(o, "topic", json_string(c->topic != NULL ? c->topic : ""));
		PUT(o, "title", jtext(title));
		PUT(o, "message", text->len > 0 ? jtext(text) : jtext(title));
		PUT(o, "priority", json_integer(ntfy_priority[w]));
		if ((arr = json_array()) == NULL ||
		    json_array_append_new(arr, json_string(ntfy_tag[w])) != 0) {
			json_decref(arr);
			bad = 1;
			break;
		}
		PUT(o, "tags", arr);
		break;
	case WF_GOTIFY:
		PUT(o, "title", jtext(title));
		/* message is required and must not be empty */
		PUT(o, "message", text->len > 0 ? jtext(text) : jtext(title));
		PUT(o, "priority", json_integer(gotify_priority[w]));
		break;
	case WF_TELEGRAM:
		PUT(o, "chat_id", json_string(c->chat_id != NULL ? c->chat_id :
		    ""));
		PUT(o, "text", joined(title, text, ""));
		PUT(o, "disable_web_page_preview", json_true());
		break;
	default:
		bad = 1;
		break;
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* 64-bit FNV-1a, for a dedup key too long for PagerDuty. */
static uint64_t
fnv1a(const char *s, uint64_t h)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

const char *
webhook_dedup_key(const struct wp_alert *in, char *buf, size_t size)
{
	const uint64_t basis = UINT64_C(14695981039346656037);
	struct wp_alert a;
	const char *agent, *mon;
	int n;

	read_alert(in, &a);
	if (a.flags & WP_ALERT_TEST) {
		snprintf(buf, size, "watchpost-test:%" PRIu64, a.id);
		return buf;
	}
	agent = a.agent != NULL ? a.agent : "";
	mon = a.monitor != NULL ? a.monitor : "";
	n = snprintf(buf, size, "watchpost:%s:%s", agent, mon);
	if (n < 0 || (size_t)n >= size || n > 255)
		snprintf(buf, size, "watchpost:%016" PRIx64,
		    fnv1a(mon, fnv1a(":", fnv1a(agent, basis))));
	return buf;
}

/* One Events API v2 event for A: trigger for down and degraded, resolve
 * for up, under the monitor's dedup_key. */
static json_t *
pagerduty_event(const struct webhook_format_conf *c,
    const struct wp_alert *in)
{
	struct template_buf title = TEMPLATE_BUF_INIT,
	    src = TEMPLATE_BUF_INIT;
	struct wp_alert a;
	json_t *o, *p, *details;
	char key[256];
	int bad = 0, up;

	read_alert(in, &a);
	up = is_state(&a, "up");
	if ((o = json_object()) == NULL)
		return NULL;
	PUT(o, "routing_key", json_string(c->routing_key != NULL ?
	    c->routing_key : ""));
	PUT(o, "event_action", json_string(up ? "resolve" : "trigger"));
	PUT(o, "dedup_key", jstr(webhook_dedup_key(&a, key, sizeof(key))));
	PUT(o, "client", json_string("watchpost"));
	if (!bad && !up) {
		if ((p = json_object()) == NULL)
			bad = 1;
		else
			PUT(o, "payload", p);
		if (!bad && (alert_line(&title, &a, 1) != WP_OK ||
		    fld(&src, a.target != NULL ? "target" : a.agent != NULL ?
		    "agent" : "monitor", &a) != WP_OK))
			bad = 1;
		if (!bad) {
			clip(&title, text_limit[WF_PAGERDUTY]);
			clip(&src, 255);
			PUT(p, "summary", jtext(&title));
			PUT(p, "source", src.len > 0 ? jtext(&src) :
			    json_string("watchpost"));
			PUT(p, "severity", json_string(a.flags & WP_ALERT_TEST ?
			    "info" : is_state(&a, "down") ? "critical" :
			    "warning"));
			PUT(p, "timestamp", jtime(a.timestamp_us / 1000 -
			    (a.timestamp_us % 1000 < 0)));
			PUT(p, "component", jstr(a.monitor));
			PUT(p, "group", jstr(a.type));
			if (a.reason != NULL)
				PUT(p, "class", jstr(a.reason));
			/* the json format's fields, for the incident page */
			if ((details = payload_object(&a)) == NULL)
				bad = 1;
			else
				PUT(p, "custom_details", details);
		}
	}
	template_buf_free(&title);
	template_buf_free(&src);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

size_t
webhook_messages(const struct webhook_format_conf *c, size_t n)
{
	return c->format == WF_PAGERDUTY ? n : 1;
}

char *
webhook_message(const struct webhook_format_conf *c,
    const struct wp_alert *const *al, size_t n, size_t k)
{
	struct template_buf title = TEMPLATE_BUF_INIT, text = TEMPLATE_BUF_INIT;
	json_t *o = NULL, *arr, *v;
	char *out = NULL;
	size_t i;
	int bad = 0;

	if (n == 0 || k >= webhook_messages(c, n))
		return NULL;
	switch (c->format) {
	case WF_JSON:
		if (n == 1)
			return webhook_payload(al[0]);
		if ((o = json_object()) == NULL || (arr = json_array()) ==
		    NULL)
			break;
		PUT(o, "alerts", arr);
		for (i = 0; i < n && !bad; i++)
			if ((v = payload_object(al[i])) == NULL ||
			    json_array_append_new(arr, v) != 0)
				bad = 1;
		if (bad) {
			json_decref(o);
			o = NULL;
		}
		break;
	case WF_PAGERDUTY:
		o = pagerduty_event(c, al[k]);
		break;
	case WF_TEMPLATE:
		if (template_render(c->tpl, al, n, c->tpl_json ?
		    TEMPLATE_JSON : TEMPLATE_TEXT, &text) == WP_OK)
			return text.p;
		template_buf_free(&text);
		return NULL;
	default:
		if (chat_text(al, n, text_limit[c->format], &title, &text) ==
		    WP_OK)
			o = chat_body(c, worst_of(al, n), &title, &text);
		break;
	}
	template_buf_free(&title);
	template_buf_free(&text);
	if (o != NULL)
		out = dump(o);
	return out;
}
#undef PUT
