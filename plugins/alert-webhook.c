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

/* The keys, as the host parsed them (hook_keys). */
struct hook_conf {
	const char *url;
	struct wp_list header;
};

struct hook_inst {
	struct curlloop_plugin *st;
	const char *url;            /* borrowed from the conf (see plugin.h) */
	struct curl_slist *headers; /* the configured ones */
};

struct hook_op {
	struct curlloop_xfer x;
	struct hook_inst *inst;
	struct wp_op *op;
	int64_t started_us;
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
	free(in);
}

/* The host checked the URL; judge each header's "Name: value" syntax. */
static int
hook_configure(void *state, const struct wp_section *sec, const void *conf,
    void **instp)
{
	struct curlloop_plugin *st = state;
	const struct hook_conf *c = conf;
	struct hook_inst *in;
	struct curl_slist *l;
	const char *why;
	size_t i;
	int bad = 0, rc = 0;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	in->url = c->url;
	for (i = 0; i < c->header.n && rc == 0; i++) {
		if ((why = curlloop_check_header(c->header.v[i])) != NULL) {
			st->host->config_error(sec, "header", "%s", why);
			bad = 1;
		} else if ((l = curl_slist_append(in->headers,
		    c->header.v[i])) == NULL)
			rc = WP_ENOMEM;
		else
			in->headers = l;
	}
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
	struct curlloop_plugin *st = in->st;
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
	o->detail = req->detail;
	o->detail_size = req->detail_size;
	o->x.arg = o;
	o->x.done = hook_done;
	o->x.body = NULL;
	if ((o->payload = webhook_payload(req->alert)) == NULL) {
		rc = WP_ENOMEM;
		goto fail;
	}
	if ((rc = build_headers(o, req->alert)) != 0)
		goto fail;
	rc = curlloop_setup(st->cl, &o->x, in->url, o->headers, 1, 0,
	    req->deadline_us - o->started_us);
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
	if ((rc = curlloop_loop_add(st->cl, &o->x)) != 0)
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
};

WP_ALERT_PLUGIN(webhook,
    .version = PACKAGE_VERSION,
    .description = "POST each alert as JSON to a URL",
    WP_KEYS(hook_keys, struct hook_conf),
    .init = curlloop_plugin_init,
    .fini = curlloop_plugin_fini,
    .configure = hook_configure,
    .release = hook_release,
    .start = hook_start,
    .cancel = hook_cancel)
