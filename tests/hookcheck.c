/*
 * hookcheck -- see hookcheck.h.  The rules follow each service's
 * documentation:
 *   slack       incoming webhook: "text" (or "blocks"); &, <, > escaped
 *               (an unescaped <!channel> would notify everyone)
 *   discord     execute webhook: "content" (<= 2000) or "embeds" (<= 10,
 *               title <= 256, description <= 4096); and ours:
 *               "allowed_mentions": {"parse": []} (no @everyone)
 *   teams       a "message" with an Adaptive Card attachment
 *   mattermost  incoming webhook: "text" (or "attachments"); and ours:
 *               no @channel, @all or @here (they notify everyone)
 *   ntfy        JSON publish: "topic" ([-_A-Za-z0-9]{1,64}), "message",
 *               "title", "priority" 1..5, "tags" strings
 *   gotify      POST /message: "message" (non-empty), "title",
 *               "priority" integer
 *   telegram    sendMessage: "chat_id" (integer or string), "text"
 *               (1..4096 characters)
 *   pagerduty   Events API v2: "routing_key" (32 characters),
 *               "event_action" trigger|acknowledge|resolve, "dedup_key"
 *               (<= 255; required unless trigger), and for trigger
 *               "payload" {"summary" (<= 1024), "source", "severity"
 *               critical|error|warning|info}
 *   json        watchpost's own body: one alert object, or {"alerts": [..]}
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "hookcheck.h"

/* UTF-8 characters in S. */
static size_t
chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static const char *
str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int
nonempty(json_t *o, const char *k)
{
	const char *s = str(o, k);

	return s != NULL && s[0] != '\0';
}

static const char *
check_alert(json_t *a)
{
	if (!json_is_object(a))
		return "json: an alert is not an object";
	if (!nonempty(a, "monitor") || !nonempty(a, "state") ||
	    !nonempty(a, "timestamp") || json_object_get(a, "id") == NULL)
		return "json: monitor, state, timestamp and id are required";
	return NULL;
}

static const char *
check_json(json_t *o)
{
	json_t *arr = json_object_get(o, "alerts"), *v;
	const char *why;
	size_t i;

	if (arr == NULL)
		return check_alert(o);
	if (!json_is_array(arr) || json_array_size(arr) < 2)
		return "json: alerts must be an array of two or more";
	json_array_foreach(arr, i, v)
		if ((why = check_alert(v)) != NULL)
			return why;
	return NULL;
}

static const char *
check_slack(json_t *o)
{
	const char *t = str(o, "text");

	if (t == NULL || t[0] == '\0')
		return "slack: text is required";
	if (strchr(t, '<') != NULL || strchr(t, '>') != NULL)
		return "slack: unescaped < or > in text";
	return NULL;
}

static const char *
check_discord(json_t *o)
{
	const char *c = str(o, "content");
	json_t *e = json_object_get(o, "embeds"), *v;
	size_t i;

	if (c != NULL && chars(c) > 2000)
		return "discord: content over 2000 characters";
	if (e != NULL) {
		if (!json_is_array(e) || json_array_size(e) > 10)
			return "discord: embeds must be an array of <= 10";
		json_array_foreach(e, i, v) {
			if (!json_is_object(v))
				return "discord: an embed is not an object";
			if (str(v, "title") && chars(str(v, "title")) > 256)
				return "discord: embed title over 256";
			if (str(v, "description") &&
			    chars(str(v, "description")) > 4096)
				return "discord: embed description over 4096";
			if (json_object_get(v, "color") != NULL &&
			    !json_is_integer(json_object_get(v, "color")))
				return "discord: color must be an integer";
		}
	}
	if ((c == NULL || c[0] == '\0') && json_array_size(e) == 0)
		return "discord: content or embeds is required";
	/* Our rule, not Discord's: a mass ping needs allowed_mentions off. */
	if (c != NULL && (strstr(c, "@everyone") || strstr(c, "@here")) &&
	    json_array_size(json_object_get(json_object_get(o,
	    "allowed_mentions"), "parse")) != 0)
		return "discord: @everyone in content without "
		    "allowed_mentions {\"parse\": []}";
	if (!json_is_array(json_object_get(json_object_get(o,
	    "allowed_mentions"), "parse")))
		return "discord: allowed_mentions.parse must be an array "
		    "(mentions from an alert's text off)";
	return NULL;
}

static const char *
check_teams(json_t *o)
{
	json_t *att = json_object_get(o, "attachments"), *a, *card, *body, *b;
	size_t i, j;

	if (!nonempty(o, "type") || strcmp(str(o, "type"), "message") != 0)
		return "teams: type must be \"message\"";
	if (!json_is_array(att) || json_array_size(att) == 0)
		return "teams: attachments is required";
	json_array_foreach(att, i, a) {
		if (!nonempty(a, "contentType") || strcmp(str(a, "contentType"),
		    "application/vnd.microsoft.card.adaptive") != 0)
			return "teams: contentType must be an Adaptive Card";
		card = json_object_get(a, "content");
		if (!json_is_object(card) || !nonempty(card, "type") ||
		    strcmp(str(card, "type"), "AdaptiveCard") != 0 ||
		    !nonempty(card, "version"))
			return "teams: content must be an AdaptiveCard with a "
			    "version";
		body = json_object_get(card, "body");
		if (!json_is_array(body) || json_array_size(body) == 0)
			return "teams: the card has no body";
		json_array_foreach(body, j, b)
			if (!nonempty(b, "type") || (strcmp(str(b, "type"),
			    "TextBlock") == 0 && str(b, "text") == NULL))
				return "teams: a body element without type "
				    "or a TextBlock without text";
	}
	return NULL;
}

static const char *
check_mattermost(json_t *o)
{
	const char *t = str(o, "text");

	if (!nonempty(o, "text") && json_object_get(o, "attachments") == NULL)
		return "mattermost: text is required";
	/* Our rule: no channel-wide mention from an alert's text. */
	if (t != NULL && (strcasestr(t, "@channel") || strcasestr(t, "@all") ||
	    strcasestr(t, "@here")))
		return "mattermost: @channel, @all or @here in text";
	return NULL;
}

static const char *
check_ntfy(json_t *o)
{
	const char *t = str(o, "topic");
	json_t *p = json_object_get(o, "priority"), *tags, *v;
	size_t i;

	if (t == NULL || t[0] == '\0' || strlen(t) > 64 ||
	    strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_") != strlen(t))
		return "ntfy: topic must be [-_A-Za-z0-9]{1,64}";
	if (json_object_get(o, "message") != NULL && str(o, "message") == NULL)
		return "ntfy: message must be a string";
	if (json_object_get(o, "title") != NULL && str(o, "title") == NULL)
		return "ntfy: title must be a string";
	if (p != NULL && (!json_is_integer(p) || json_integer_value(p) < 1 ||
	    json_integer_value(p) > 5))
		return "ntfy: priority must be 1..5";
	if ((tags = json_object_get(o, "tags")) != NULL) {
		if (!json_is_array(tags))
			return "ntfy: tags must be an array";
		json_array_foreach(tags, i, v)
			if (!json_is_string(v))
				return "ntfy: a tag is not a string";
	}
	return NULL;
}

static const char *
check_gotify(json_t *o)
{
	json_t *p = json_object_get(o, "priority");

	if (!nonempty(o, "message"))
		return "gotify: message is required";
	if (json_object_get(o, "title") != NULL && str(o, "title") == NULL)
		return "gotify: title must be a string";
	if (p != NULL && !json_is_integer(p))
		return "gotify: priority must be an integer";
	return NULL;
}

static const char *
check_telegram(json_t *o)
{
	json_t *id = json_object_get(o, "chat_id");
	const char *t = str(o, "text");

	if (!json_is_integer(id) && !(json_is_string(id) &&
	    json_string_length(id) > 0))
		return "telegram: chat_id is required";
	if (t == NULL || chars(t) == 0 || chars(t) > 4096)
		return "telegram: text must be 1..4096 characters";
	return NULL;
}

static const char *
check_pagerduty(json_t *o)
{
	const char *act = str(o, "event_action"), *key = str(o, "dedup_key");
	const char *sev;
	json_t *p;

	if (str(o, "routing_key") == NULL || strlen(str(o, "routing_key")) !=
	    32)
		return "pagerduty: routing_key must be 32 characters";
	if (act == NULL || (strcmp(act, "trigger") != 0 &&
	    strcmp(act, "acknowledge") != 0 && strcmp(act, "resolve") != 0))
		return "pagerduty: event_action must be trigger, acknowledge "
		    "or resolve";
	if (key != NULL && chars(key) > 255)
		return "pagerduty: dedup_key over 255 characters";
	if (strcmp(act, "trigger") != 0) {
		if (key == NULL || key[0] == '\0')
			return "pagerduty: dedup_key is required to resolve";
		return NULL;
	}
	p = json_object_get(o, "payload");
	if (!json_is_object(p))
		return "pagerduty: payload is required to trigger";
	if (!nonempty(p, "summary") || chars(str(p, "summary")) > 1024)
		return "pagerduty: payload.summary must be 1..1024 characters";
	if (!nonempty(p, "source"))
		return "pagerduty: payload.source is required";
	sev = str(p, "severity");
	if (sev == NULL || (strcmp(sev, "critical") != 0 &&
	    strcmp(sev, "error") != 0 && strcmp(sev, "warning") != 0 &&
	    strcmp(sev, "info") != 0))
		return "pagerduty: payload.severity must be critical, error, "
		    "warning or info";
	return NULL;
}

static const struct {
	const char *format;
	const char *(*check)(json_t *);
} checks[] = {
	{ "json", check_json }, { "slack", check_slack },
	{ "discord", check_discord }, { "teams", check_teams },
	{ "mattermost", check_mattermost }, { "ntfy", check_ntfy },
	{ "gotify", check_gotify }, { "telegram", check_telegram },
	{ "pagerduty", check_pagerduty },
};

static int
is_json_type(const char *ct)
{
	size_t n;

	if (ct == NULL)
		return 0;
	n = strcspn(ct, "; \t");
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	    (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

const char *
hookcheck(const char *format, const char *content_type, const char *body,
    size_t len)
{
	const char *why = "unknown format";
	json_error_t err;
	json_t *o;
	size_t i;

	if (strcmp(format, "template") == 0 && !is_json_type(content_type))
		return NULL;
	if (!is_json_type(content_type))
		return "the content type is not application/json";
	if ((o = json_loadb(body, len, JSON_REJECT_DUPLICATES |
	    (strcmp(format, "template") == 0 ? JSON_DECODE_ANY : 0), &err)) ==
	    NULL)
		return "the body is not valid JSON";
	if (strcmp(format, "template") == 0)
		why = NULL;
	else if (!json_is_object(o))
		why = "the body is not a JSON object";
	else
		for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
			if (strcmp(checks[i].format, format) == 0) {
				why = checks[i].check(o);
				break;
			}
	json_decref(o);
	return why;
}
