/*
 * alert-webhook.so -- the "webhook" alert type.
 *
 * One delivery is one POST of the body `format` asks for
 * (webhook-payload.c: json, a chat service's, PagerDuty's, or a template)
 * through the same curl-multi-on-the-host-loop code as the http check.  A
 * group_window batch (WP_PLUGIN_F_GROUPS) is one message listing every
 * monitor, except for pagerduty, whose incidents are per monitor: one event
 * per alert, sent in order within the one operation.  Any 2xx answer is
 * delivered; anything else, or a transport failure, is not, and the core
 * retries (the whole batch: receivers see a repeat, PagerDuty dedups it).
 * The URL, header values and the routing key may hold credentials: no
 * message of this plugin quotes them.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <watchpost/plugin.h>

#include "curl-loop.h"
#include "template.h"
#include "webhook-payload.h"

/* The keys, as the host parsed them (hook_keys). */
struct hook_conf {
	const char *url;
	struct wp_list header;
	int format;                 /* enum webhook_format */
	const char *chat_id;
	const char *topic;
	const char *routing_key;
	const char *template;
	const char *content_type;
};

struct hook_inst {
	struct curlloop_plugin *st;
	const char *url;            /* borrowed from the conf (see plugin.h) */
	struct curl_slist *headers; /* the configured ones */
	struct webhook_format_conf fmt; /* strings borrowed from the conf */
	struct template *tpl;       /* format = template */
	char content_type[160];     /* "Content-Type: ..." */
};

struct hook_op {
	struct curlloop_xfer x;
	struct hook_inst *inst;
	struct wp_op *op;
	const struct wp_request *req;
	int64_t started_us;
	size_t msg, n_msgs;         /* the request being sent, of n_msgs */
	char *payload;
	struct curl_slist *headers;
	char *detail;               /* the request's buffer */
	size_t detail_size;
};

static void
op_free(struct hook_op *o)
{
	if (o == NULL)
		return;
	curlloop_release(o->inst->st->cl, &o->x);
	curl_slist_free_all(o->headers);
	free(o->payload);
	free(o);
}

static int send_message(struct hook_op *o);

static void
hook_done(struct curlloop_xfer *x, CURLcode rc)
{
	struct hook_op *o = x->arg;
	struct wp_result res = WP_RESULT_INIT;
	long code = 0;

	curlloop_timings(x, &res);
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	/* The body is never read: the status already decided (stopped). */
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x->stopped)) {
		res.status_code = (int)code;
		if (code >= 200 && code <= 299) {
			res.reason = WP_REASON_OK;
		} else {
			res.reason = WP_REASON_STATUS;
			snprintf(o->detail, o->detail_size, "HTTP %ld", code);
			res.detail = o->detail;
		}
	} else {
		curlloop_failure(x, rc, &res, o->detail, o->detail_size);
		res.status_code = code > 0 ? (int)code : -1;
	}
	/* The next event of a pagerduty batch, on the same operation. */
	if (res.reason == WP_REASON_OK && o->msg + 1 < o->n_msgs) {
		o->msg++;
		curlloop_release(o->inst->st->cl, &o->x);
		if (send_message(o) == 0)
			return;
		res = (struct wp_result)WP_RESULT_INIT;
		res.reason = WP_REASON_PLUGIN;
		snprintf(o->detail, o->detail_size, "could not send event %zu "
		    "of %zu", o->msg + 1, o->n_msgs);
		res.detail = o->detail;
	} else if (res.reason != WP_REASON_OK && o->n_msgs > 1) {
		size_t len = strlen(o->detail);

		snprintf(o->detail + len, o->detail_size - len, " (event %zu "
		    "of %zu)", o->msg + 1, o->n_msgs);
	}
	o->inst->st->host->complete(o->op, &res);
	op_free(o);
}

static void
hook_release(void *state, void *inst)
{
	struct hook_inst *in = inst;

	(void)state;
	if (in == NULL)
		return;
	curl_slist_free_all(in->headers);
	template_free(in->tpl);
	free(in);
}

/* What each format needs, and the keys only some formats use. */
struct need {
	const char *key;
	int format;
};
static const struct need needs[] = {
	{ "chat_id", WF_TELEGRAM },
	{ "topic", WF_NTFY },
	{ "routing_key", WF_PAGERDUTY },
	{ "template", WF_TEMPLATE },
};

static const char *
need_value(const struct hook_conf *c, const char *key)
{
	if (strcmp(key, "chat_id") == 0)
		return c->chat_id;
	if (strcmp(key, "topic") == 0)
		return c->topic;
	if (strcmp(key, "routing_key") == 0)
		return c->routing_key;
	return c->template;
}

struct tpl_diag {
	const struct wp_host *host;
	const struct wp_section *sec;
};

static void
tpl_diag(void *arg, int line, int col, const char *msg)
{
	struct tpl_diag *d = arg;

	d->host->config_error(d->sec, "template", "line %d, column %d: %s",
	    line, col, msg);
}

/* A JSON content type: application/json, or any type ending in +json. */
static int
json_media(const char *ct)
{
	size_t n = strcspn(ct, "; \t");

	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	    (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* The alerts a JSON template is tried on at configure(): one with every
 * field, one with every optional field unknown. */
static int
template_renders_json(const struct template *t)
{
	struct wp_alert full = {
		.size = sizeof(struct wp_alert), .id = 1, .monitor = "m",
		.type = "http", .state = "down", .previous_state = "up",
		.timestamp_us = 1000000, .error = "e", .reason = "refused",
		.latency_us = 1500, .since_us = 1000000, .target = "t",
		.agent = "a", .location = "l",
	};
	struct wp_alert bare = {
		.size = sizeof(struct wp_alert), .id = 2, .monitor = "m",
		.type = "http", .state = "up", .previous_state = "down",
		.timestamp_us = 1000000, .latency_us = -1,
	};
	const struct wp_alert *al[2] = { &full, &bare };
	const struct wp_alert *one[1] = { &bare };
	struct template_buf b = TEMPLATE_BUF_INIT;
	json_t *j;
	int ok = 1, i;

	for (i = 0; i < 2 && ok; i++) {
		b.len = 0;
		if (template_render(t, i == 0 ? al : one, i == 0 ? 2 : 1,
		    TEMPLATE_JSON, &b) != WP_OK)
			break;
		if ((j = json_loads(b.p, JSON_DECODE_ANY, NULL)) == NULL)
			ok = 0;
		json_decref(j);
	}
	template_buf_free(&b);
	return ok;
}

/* Telegram's chat_id: an integer, or "@channelusername". */
static int
chat_id_ok(const char *s)
{
	size_t i = (s[0] == '-' || s[0] == '@') ? 1 : 0;

	if (s[i] == '\0')
		return 0;
	for (; s[i] != '\0'; i++)
		if (!(s[i] >= '0' && s[i] <= '9') && !(s[0] == '@' &&
		    ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || s[i] == '_')))
			return 0;
	return 1;
}

/* ntfy's topic names: [-_A-Za-z0-9]{1,64}. */
static int
topic_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= 64 || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    s[i] == '-' || s[i] == '_'))
			return 0;
	return i > 0;
}

/* A media type "type/subtype[; params]" in visible ASCII. */
static int
content_type_ok(const char *s)
{
	size_t i;
	int slash = 0;

	for (i = 0; s[i] != '\0'; i++) {
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
			return 0;
		if ((unsigned char)s[i] >= 0x7f)
			return 0;
		slash |= s[i] == '/';
	}
	return slash && i < sizeof(((struct hook_inst *)0)->content_type) -
	    sizeof("Content-Type: ");
}

/* Judge what the key types cannot: each header's "Name: value" syntax,
 * the keys each format needs (and refuse those it would ignore), the
 * template, the content type. */
static int
hook_configure(void *state, const struct wp_section *sec, const void *conf,
    void **instp)
{
	struct curlloop_plugin *st = state;
	const struct wp_host *h = st->host;
	const struct hook_conf *c = conf;
	struct tpl_diag td = { h, sec };
	struct hook_inst *in;
	struct curl_slist *l;
	const char *why, *ct;
	size_t i;
	int bad = 0, rc = 0, fmt;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	in->url = c->url;
	fmt = c->format < 0 ? WF_JSON : c->format;
	for (i = 0; i < c->header.n && rc == 0; i++) {
		if ((why = curlloop_check_header(c->header.v[i])) != NULL) {
			h->config_error(sec, "header", "%s", why);
			bad = 1;
		} else if ((l = curl_slist_append(in->headers,
		    c->header.v[i])) == NULL)
			rc = WP_ENOMEM;
		else
			in->headers = l;
	}
	for (i = 0; i < sizeof(needs) / sizeof(needs[0]); i++) {
		const char *v = need_value(c, needs[i].key);

		if (fmt == needs[i].format && (v == NULL || v[0] == '\0')) {
			h->config_error(sec, "format", "format = %s needs %s "
			    "(or %s_file)", webhook_format_names[fmt],
			    needs[i].key, needs[i].key);
			bad = 1;
		} else if (fmt != needs[i].format && v != NULL) {
			h->config_error(sec, needs[i].key, "is only used with "
			    "format = %s", webhook_format_names[
			    needs[i].format]);
			bad = 1;
		}
	}
	if (c->content_type != NULL && fmt != WF_TEMPLATE) {
		h->config_error(sec, "content_type", "is only used with "
		    "format = template");
		bad = 1;
	}
	ct = c->content_type != NULL ? c->content_type : "application/json";
	if (!content_type_ok(ct)) {
		h->config_error(sec, "content_type", "must be a media type "
		    "such as text/plain or application/json");
		bad = 1;
	}
	snprintf(in->content_type, sizeof(in->content_type),
	    "Content-Type: %s", ct);
	if (fmt == WF_TELEGRAM && c->chat_id != NULL && c->chat_id[0] != '\0'
	    && !chat_id_ok(c->chat_id)) {
		h->config_error(sec, "chat_id", "must be a chat's number or "
		    "@channelusername");
		bad = 1;
	}
	if (fmt == WF_NTFY && c->topic != NULL && c->topic[0] != '\0' &&
	    !topic_ok(c->topic)) {
		h->config_error(sec, "topic", "must be 1 to 64 letters, "
		    "digits, '-' or '_'");
		bad = 1;
	}
	if (fmt == WF_TEMPLATE && c->template != NULL && c->template[0] !=
	    '\0') {
		if ((in->tpl = template_compile(c->template, tpl_diag, &td)) ==
		    NULL)
			bad = 1;
		else if (json_media(ct) && !template_renders_json(in->tpl)) {
			h->config_error(sec, "template", "does not render as "
			    "JSON for content_type = %s (write string fields "
			    "in quotes: \"{{monitor}}\"; latency_ms is empty "
			    "when nothing was measured)", ct);
			bad = 1;
		}
	}
	in->fmt.format = fmt;
	in->fmt.chat_id = c->chat_id;
	in->fmt.topic = c->topic;
	in->fmt.routing_key = c->routing_key;
	in->fmt.tpl = in->tpl;
	in->fmt.tpl_json = json_media(ct);
	if (rc == 0 && bad)
		rc = WP_EINVAL;
	if (rc != 0)
		goto fail;
	*instp = in;
	return 0;
fail:
	hook_release(st, in);
	return rc;
}

/* The request headers of one delivery: ours first, then the configured
 * ones (curl lets a later duplicate replace an earlier one). */
static int
build_headers(struct hook_op *o, const struct wp_alert *a)
{
	const struct curl_slist *s;
	struct curl_slist *l;
	char id[64];

	snprintf(id, sizeof(id), "X-Watchpost-Alert-Id: %" PRIu64, a->id);
	if ((l = curl_slist_append(NULL, o->inst->content_type)) == NULL)
		return WP_ENOMEM;
	o->headers = l;
	if ((l = curl_slist_append(o->headers, id)) == NULL)
		return WP_ENOMEM;
	/* No 100-continue round trip before the body. */
	if ((l = curl_slist_append(o->headers, "Expect:")) == NULL)
		return WP_ENOMEM;
	for (s = o->inst->headers; s != NULL; s = s->next)
		if ((l = curl_slist_append(o->headers, s->data)) == NULL)
			return WP_ENOMEM;
	return 0;
}

/* The batch of REQ: req->alerts when the host sent one, else the one. */
static const struct wp_alert *const *
batch_of(const struct wp_request *req, size_t *n)
{
	if (req->size > offsetof(struct wp_request, n_alerts) &&
	    req->alerts != NULL && req->n_alerts > 0) {
		*n = req->n_alerts;
		return req->alerts;
	}
	*n = 1;
	return &req->alert;
}

/* Build message o->msg and hand its transfer to the loop.  Returns 0, or
 * a WP_E* code with nothing in flight. */
static int
send_message(struct hook_op *o)
{
	struct curlloop_plugin *st = o->inst->st;
	const struct wp_alert *const *al;
	size_t n;
	CURL *e;
	int bad = 0, rc;

	al = batch_of(o->req, &n);
	free(o->payload);
	if ((o->payload = webhook_message(&o->inst->fmt, al, n, o->msg)) ==
	    NULL)
		return WP_ENOMEM;
	rc = curlloop_setup(st->cl, &o->x, o->inst->url, o->headers, 1, 0,
	    o->req->deadline_us - st->host->now_us());
	if (rc != 0)
		return rc;
	e = o->x.easy;
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
	    (long)strlen(o->payload)) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->payload) !=
	    CURLE_OK;
	if (bad)
		rc = WP_EINVAL;
	else
		rc = curlloop_loop_add(st->cl, &o->x);
	if (rc != 0)
		curlloop_release(st->cl, &o->x);
	return rc;
}

static int
hook_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct hook_inst *in = inst;
	struct curlloop_plugin *st = in->st;
	struct hook_op *o;
	size_t n;
	int rc;

	if (req->alert == NULL)
		return WP_EINVAL;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->inst = in;
	o->op = req->op;
	o->req = req;
	o->started_us = st->host->now_us();
	o->detail = req->detail;
	o->detail_size = req->detail_size;
	o->x.arg = o;
	o->x.done = hook_done;
	o->x.body = NULL;
	(void)batch_of(req, &n);
	o->n_msgs = webhook_messages(&in->fmt, n);
	if ((rc = build_headers(o, req->alert)) != 0)
		goto fail;
	if ((rc = send_message(o)) != 0)
		goto fail;
	*opstate = o;
	return 0;
fail:
	op_free(o);
	return rc;
}

static void
hook_cancel(void *inst, void *opstate)
{
	struct hook_inst *in = inst;
	struct hook_op *o = opstate;
	struct wp_result res = WP_RESULT_INIT;

	curlloop_cancel_result(in->st, &o->x, o->started_us, o->detail,
	    o->detail_size, &res);
	in->st->host->complete(o->op, &res);
	op_free(o);
}

/* timeout is a common alert key: the host handles it. */
static const struct wp_key hook_keys[] = {
	{ WP_KEY(WP_KT_URL, "url", struct hook_conf, url),
	    .flags = WP_KEY_REQUIRED,
	    .help = "http:// or https:// URL to POST to" },
	{ WP_KEY(WP_KT_SECRET, "header", struct hook_conf, header),
	    .flags = WP_KEY_MULTI,
	    .help = "extra request header \"Name: value\" (repeatable)" },
	{ WP_KEY(WP_KT_ENUM, "format", struct hook_conf, format),
	    .values = webhook_format_names, .def = "json",
	    .help = "body: json, slack, discord, teams, mattermost, ntfy, "
	    "gotify, telegram, pagerduty or template" },
	{ WP_KEY(WP_KT_STRING, "chat_id", struct hook_conf, chat_id),
	    .help = "format = telegram: the chat's number or @channel" },
	{ WP_KEY(WP_KT_STRING, "topic", struct hook_conf, topic),
	    .help = "format = ntfy: the topic (url is the server's)" },
	{ WP_KEY(WP_KT_SECRET, "routing_key", struct hook_conf, routing_key),
	    .help = "format = pagerduty: the integration's routing key" },
	{ WP_KEY(WP_KT_STRING, "template", struct hook_conf, template),
	    .help = "format = template: the body, with {{field}}s" },
	{ WP_KEY(WP_KT_STRING, "content_type", struct hook_conf,
	    content_type),
	    .help = "format = template: the body's media type "
	    "(default application/json)" },
};

WP_ALERT_PLUGIN(webhook,
    .version = PACKAGE_VERSION,
    .description = "POST each alert (json, a chat service's format, "
    "PagerDuty's, or a template) to a URL",
    WP_KEYS(hook_keys, struct hook_conf),
    .init = curlloop_plugin_init,
    .fini = curlloop_plugin_fini,
    .configure = hook_configure,
    .release = hook_release,
    .start = hook_start,
    .cancel = hook_cancel,
    .flags = WP_PLUGIN_F_GROUPS)
