/*
 * alert-webhook.so -- the "webhook" alert type.
 *
 * One delivery is one JSON POST (webhook-payload.c) through the same
 * curl-multi-on-the-host-loop code as the http check.  Any 2xx answer is
 * delivered; anything else, or a transport failure, is not, and the core
 * retries.  The URL and header values may hold credentials: no message of
 * this plugin quotes them.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <watchpost/plugin.h>

#include "curl-loop.h"
#include "webhook-payload.h"

struct hook_inst {
	struct wp_curl_plugin *st;
	char *url;
	struct curl_slist *headers; /* the configured ones */
};

struct hook_op {
	struct wp_curl_xfer x;
	struct hook_inst *inst;
	struct wp_op *op;
	int64_t started_us;
	char *payload;
	struct curl_slist *headers;
	char detail[256];
};

static void
op_free(struct hook_op *o)
{
	if (o == NULL)
		return;
	wp_curl_release(o->inst->st->cl, &o->x);
	curl_slist_free_all(o->headers);
	free(o->payload);
	free(o);
}

static void
hook_done(struct wp_curl_xfer *x, CURLcode rc)
{
	struct hook_op *o = x->arg;
	struct wp_result res = WP_RESULT_INIT;
	long code = 0;

	wp_curl_timings(x, &res);
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	/* The body is never read: the status already decided (stopped). */
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x->stopped)) {
		res.status_code = (int)code;
		if (code >= 200 && code <= 299) {
			res.ok = 1;
			res.reason = WP_REASON_OK;
		} else {
			res.ok = 0;
			res.reason = WP_REASON_STATUS;
			snprintf(o->detail, sizeof(o->detail), "HTTP %ld",
			    code);
			res.detail = o->detail;
		}
	} else {
		wp_curl_failure(x, rc, &res, o->detail, sizeof(o->detail));
		res.status_code = code > 0 ? (int)code : -1;
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
	free(in->url);
	curl_slist_free_all(in->headers);
	free(in);
}

static int
hook_configure(void *state, const struct wp_section *sec, void **instp)
{
	struct wp_curl_plugin *st = state;
	const struct wp_host *h = st->host;
	const struct wp_kv *kv;
	struct hook_inst *in;
	struct curl_slist *l;
	const char *why;
	size_t i;
	int bad = 0, rc = 0;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	for (i = 0; i < sec->n_kv && rc == 0; i++) {
		kv = &sec->kv[i];
		if (strcmp(kv->key, "url") == 0) {
			if ((why = wp_curl_check_url(kv->value)) != NULL) {
				h->config_error(sec, kv, "%s", why);
				bad = 1;
				continue;
			}
			free(in->url);
			if ((in->url = strdup(kv->value)) == NULL)
				rc = WP_ENOMEM;
		} else if (strcmp(kv->key, "header") == 0) {
			if ((why = wp_curl_check_header(kv->value)) != NULL) {
				h->config_error(sec, kv, "%s", why);
				bad = 1;
			} else if ((l = curl_slist_append(in->headers,
			    kv->value)) == NULL)
				rc = WP_ENOMEM;
			else
				in->headers = l;
		} else {
			h->config_error(sec, kv, "unknown key");
			bad = 1;
		}
	}
	if (rc != 0)
		goto fail;
	if (in->url == NULL && wp_section_find(sec, "url") == NULL) {
		h->config_error(sec, NULL, "url is required");
		bad = 1;
	}
	if (bad) {
		rc = WP_EINVAL;
		goto fail;
	}
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
	if ((l = curl_slist_append(NULL, "Content-Type: application/json")) ==
	    NULL)
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

static int
hook_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct hook_inst *in = inst;
	struct wp_curl_plugin *st = in->st;
	struct hook_op *o;
	CURL *e;
	int bad = 0, rc;

	if (req->alert == NULL)
		return WP_EINVAL;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->inst = in;
	o->op = req->op;
	o->started_us = st->host->now_us();
	o->x.arg = o;
	o->x.done = hook_done;
	o->x.body = NULL;
	if ((o->payload = wp_webhook_payload(req->alert)) == NULL) {
		rc = WP_ENOMEM;
		goto fail;
	}
	if ((rc = build_headers(o, req->alert)) != 0)
		goto fail;
	rc = wp_curl_setup(st->cl, &o->x, in->url, o->headers, 1, 0,
	    (req->deadline_us - o->started_us) / 1000);
	if (rc != 0)
		goto fail;
	e = o->x.easy;
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
	    (long)strlen(o->payload)) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->payload) !=
	    CURLE_OK;
	if (bad) {
		rc = WP_EINVAL;
		goto fail;
	}
	if ((rc = wp_curl_loop_add(st->cl, &o->x)) != 0)
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

	wp_curl_cancel_result(in->st, &o->x, o->started_us, o->detail,
	    sizeof(o->detail), &res);
	in->st->host->complete(o->op, &res);
	op_free(o);
}

static const struct wp_key hook_keys[] = {
	{ "url", WP_KEY_REQUIRED, "http:// or https:// URL to POST to" },
	{ "header", WP_KEY_MULTI, "extra request header \"Name: value\"" },
	{ NULL, 0, NULL }
};

static const struct wp_plugin hook_plugin = {
	WP_PLUGIN_HEADER,
	.name = "webhook",
	.version = PACKAGE_VERSION,
	.description = "POST each alert as JSON to a URL",
	.kind = WP_PLUGIN_ALERT,
	.keys = hook_keys,
	.init = wp_curl_plugin_init,
	.fini = wp_curl_plugin_fini,
	.configure = hook_configure,
	.release = hook_release,
	.start = hook_start,
	.cancel = hook_cancel,
	.check = NULL,
};

WP_PLUGIN_DEFINE(alert_webhook, hook_plugin)
