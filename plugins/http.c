/*
 * http.so -- the "http" check type.
 *
 * Asynchronous: every check is one libcurl easy handle in the plugin's multi
 * handle, driven by the host's loop (curl-loop.c), so many checks are in
 * flight at once without a thread each.  The body is read to its end, at
 * most WP_HTTP_BODY_LIMIT bytes of it, and searched for the keywords as it
 * streams (see http_body for when reading stops early).
 *
 * Secrets: the URL (userinfo, query) and header values may carry
 * credentials, so no message of this plugin, configuration errors
 * included, quotes them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <watchpost/plugin.h>

#include "curl-loop.h"
#include "http-eval.h"

#define HTTP_MAX_REDIRS 10L

struct http_inst {
	struct wp_curl_plugin *st;
	char *url;
	char *method;             /* NULL: GET */
	int head;                 /* HEAD: no body is read */
	struct wp_http_status status;
	char *expected;           /* expected_status as written, for details */
	char *keyword;
	char *keyword_absent;
	char *body;
	struct curl_slist *headers;
	int follow;
	int verify;
	int keepalive;
	int counted;              /* counted by wp_curl_keepalive() */
};

struct http_op {
	struct wp_curl_xfer x;    /* first: curl-loop hands it back */
	struct http_inst *inst;
	struct wp_op *op;
	int64_t started_us;
	size_t body_read;         /* body bytes so far */
	int known;                /* the body decided the verdict */
	struct wp_http_eval ev;
	char detail[256];
};

/*
 * wp_curl_body_fn: search the body, and read it to its end so that a
 * response cut off or stalled mid-body fails (io, timeout) instead of
 * passing on its first bytes; a kept connection is then reusable too.
 * Two exceptions end the transfer early (1): a verdict that is already a
 * failure (a wrong status, keyword_absent found), which the rest cannot
 * change, and a body past WP_HTTP_BODY_LIMIT, whose rest is not read:
 * the verdict is then that of its first WP_HTTP_BODY_LIMIT bytes.
 */
static int
http_body(struct wp_curl_xfer *x, const char *p, size_t n)
{
	struct http_op *o = x->arg;
	long code = 0;

	o->body_read += n;
	if (!o->known) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
		o->known = wp_http_eval_body(&o->ev, code, p, n);
		if (o->known && wp_http_eval_failed(&o->ev, code))
			return 1;
	}
	return o->body_read > WP_HTTP_BODY_LIMIT;
}

/* notAfter of the leaf certificate, or 0 (plain http, no certinfo). */
static int64_t
cert_expiry(CURL *e)
{
	static const char key[] = "Expire date:";
	struct curl_certinfo *ci = NULL;
	struct curl_slist *s;

	if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK ||
	    ci == NULL || ci->num_of_certs < 1)
		return 0;
	for (s = ci->certinfo[0]; s != NULL; s = s->next)
		if (strncmp(s->data, key, sizeof(key) - 1) == 0)
			return wp_http_parse_asn1_time(s->data + sizeof(key) -
			    1);
	return 0;
}

static void
op_free(struct http_op *o)
{
	if (o == NULL)
		return;
	wp_curl_release(o->inst->st->cl, &o->x);
	free(o);
}

/* The verdict of a transfer that got a response (ended or stopped). */
static void
judge(struct http_op *o, struct wp_result *res)
{
	struct http_inst *in = o->inst;
	long code = 0;

	curl_easy_getinfo(o->x.easy, CURLINFO_RESPONSE_CODE, &code);
	res->status_code = (int)code;
	res->reason = wp_http_judge(&o->ev, code, in->expected, in->keyword,
	    in->keyword_absent, o->detail, sizeof(o->detail));
	res->ok = res->reason == WP_REASON_OK;
	res->detail = res->ok ? NULL : o->detail;
}

/* wp_curl_done_fn: complete the check, then free it. */
static void
http_done(struct wp_curl_xfer *x, CURLcode rc)
{
	struct http_op *o = x->arg;
	struct wp_result res = WP_RESULT_INIT;
	long code = 0;

	wp_curl_timings(x, &res);
	res.cert_expiry = cert_expiry(x->easy);
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x->stopped)) {
		judge(o, &res);
	} else {
		wp_curl_failure(x, rc, &res, o->detail, sizeof(o->detail));
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
		res.status_code = code > 0 ? (int)code : -1;
	}
	o->inst->st->host->complete(o->op, &res);
	op_free(o);
}

static void
http_release(void *state, void *inst)
{
	struct http_inst *in = inst;

	(void)state;
	if (in == NULL)
		return;
	if (in->counted)
		wp_curl_keepalive(in->st->cl, -1);
	free(in->url);
	free(in->method);
	free(in->expected);
	free(in->keyword);
	free(in->keyword_absent);
	free(in->body);
	curl_slist_free_all(in->headers);
	free(in);
}

static const char *
check_method(const char *s)
{
	static const char *known[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(s, known[i]) == 0)
			return NULL;
	return "must be one of GET, HEAD, POST, PUT, DELETE, PATCH, "
	    "OPTIONS";
}

static const char *
check_keyword(const char *key, const char *s)
{
	(void)key;
	if (s[0] == '\0')
		return "must not be empty";
	if (strlen(s) > WP_HTTP_KEYWORD_MAX)
		return "must be at most 1024 bytes";
	return NULL;
}

static int
dup_to(char **dst, const char *s)
{
	free(*dst);
	*dst = strdup(s);
	return *dst == NULL ? WP_ENOMEM : 0;
}

static int
http_configure(void *state, const struct wp_section *sec, void **instp)
{
	struct wp_curl_plugin *st = state;
	const struct wp_host *h = st->host;
	const struct wp_kv *kv;
	const struct wp_kv *method_kv = NULL, *body_kv = NULL;
	struct http_inst *in;
	struct curl_slist *l;
	const char *why;
	size_t i;
	int bad = 0, rc = 0, b;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	in->follow = 1;
	in->verify = 1;
	wp_http_status_default(&in->status);
	for (i = 0; i < sec->n_kv && rc == 0; i++) {
		kv = &sec->kv[i];
		if (strcmp(kv->key, "url") == 0) {
			if ((why = wp_curl_check_url(kv->value)) != NULL) {
				h->config_error(sec, kv, "%s", why);
				bad = 1;
			} else
				rc = dup_to(&in->url, kv->value);
		} else if (strcmp(kv->key, "method") == 0) {
			method_kv = kv;
			if ((why = check_method(kv->value)) != NULL) {
				h->config_error(sec, kv, "%s", why);
				bad = 1;
			} else
				rc = dup_to(&in->method, kv->value);
		} else if (strcmp(kv->key, "expected_status") == 0) {
			if ((why = wp_http_parse_status(&in->status,
			    kv->value)) != NULL) {
				h->config_error(sec, kv, "%s", why);
				bad = 1;
			} else
				rc = dup_to(&in->expected, kv->value);
		} else if (strcmp(kv->key, "keyword") == 0 ||
		    strcmp(kv->key, "keyword_absent") == 0) {
			if ((why = check_keyword(kv->key, kv->value)) != NULL) {
				h->config_error(sec, kv, "%s", why);
				bad = 1;
			} else
				rc = dup_to(kv->key[7] == '\0' ? &in->keyword :
				    &in->keyword_absent, kv->value);
		} else if (strcmp(kv->key, "header") == 0) {
			if ((why = wp_curl_check_header(kv->value)) != NULL) {
				h->config_error(sec, kv, "%s", why);
				bad = 1;
			} else if ((l = curl_slist_append(in->headers,
			    kv->value)) == NULL)
				rc = WP_ENOMEM;
			else
				in->headers = l;
		} else if (strcmp(kv->key, "body") == 0) {
			body_kv = kv;
			rc = dup_to(&in->body, kv->value);
		} else if (strcmp(kv->key, "follow_redirects") == 0 ||
		    strcmp(kv->key, "verify_tls") == 0 ||
		    strcmp(kv->key, "keepalive") == 0) {
			if (h->parse_bool(kv->value, &b) != 0) {
				h->config_error(sec, kv,
				    "must be true or false");
				bad = 1;
			} else if (kv->key[0] == 'f')
				in->follow = b;
			else if (kv->key[0] == 'v')
				in->verify = b;
			else
				in->keepalive = b;
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
	if (in->method == NULL && in->body != NULL &&
	    (rc = dup_to(&in->method, "POST")) != 0)
		goto fail;
	in->head = in->method != NULL && strcmp(in->method, "HEAD") == 0;
	if (in->body != NULL && in->method != NULL &&
	    (strcmp(in->method, "GET") == 0 || in->head)) {
		h->config_error(sec, method_kv ? method_kv : body_kv,
		    "body needs a method that sends one (POST, PUT, PATCH, "
		    "DELETE, OPTIONS)");
		bad = 1;
	}
	if (in->head && (in->keyword != NULL || in->keyword_absent != NULL)) {
		h->config_error(sec, method_kv,
		    "keyword and keyword_absent need a body; HEAD reads none");
		bad = 1;
	}
	/* "Expect:" turns off curl's 100-continue wait for larger bodies. */
	if (!bad && (l = curl_slist_append(in->headers, "Expect:")) == NULL) {
		rc = WP_ENOMEM;
		goto fail;
	}
	if (!bad)
		in->headers = l;
	if (bad) {
		rc = WP_EINVAL;
		goto fail;
	}
	if (in->keepalive) {
		wp_curl_keepalive(st->cl, 1);
		in->counted = 1;
	}
	*instp = in;
	return 0;
fail:
	http_release(st, in);
	return rc;
}

static int
http_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct http_inst *in = inst;
	struct wp_curl_plugin *st = in->st;
	struct http_op *o;
	CURL *e;
	int bad = 0, rc;

	/* Not calloc: the keyword windows are large and need no zeroing
	 * (wp_http_match_init); a big zeroed block per check costs. */
	if ((o = malloc(sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->x = (struct wp_curl_xfer){ .arg = o, .done = http_done,
	    .body = in->head ? NULL : http_body };
	o->inst = in;
	o->op = req->op;
	o->started_us = st->host->now_us();
	o->body_read = 0;
	o->known = 0;
	o->ev.status = &in->status;
	o->ev.body_bytes = 0;
	o->detail[0] = '\0';
	wp_http_match_init(&o->ev.want, in->keyword);
	wp_http_match_init(&o->ev.avoid, in->keyword_absent);
	rc = wp_curl_setup(st->cl, &o->x, in->url, in->headers, in->verify,
	    in->keepalive, (req->deadline_us - o->started_us) / 1000);
	if (rc != 0)
		goto fail;
	e = o->x.easy;
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION,
	    in->follow ? 1L : 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_MAXREDIRS, HTTP_MAX_REDIRS) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CERTINFO, 1L) != CURLE_OK;
	if (in->head)
		bad |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK;
	else if (in->method != NULL && strcmp(in->method, "GET") != 0)
		bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
		    in->method) != CURLE_OK;
	if (in->body != NULL) {
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(in->body)) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, in->body) !=
		    CURLE_OK;
	}
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

/* The host's deadline: stop, say how far the check got, complete. */
static void
http_cancel(void *inst, void *opstate)
{
	struct http_inst *in = inst;
	struct http_op *o = opstate;
	struct wp_result res = WP_RESULT_INIT;

	wp_curl_cancel_result(in->st, &o->x, o->started_us, o->detail,
	    sizeof(o->detail), &res);
	in->st->host->complete(o->op, &res);
	op_free(o);
}

static const struct wp_key http_keys[] = {
	{ "url", WP_KEY_REQUIRED, "http:// or https:// URL to fetch" },
	{ "method", 0, "GET (default; POST when body is set), HEAD, POST, "
	    "PUT, DELETE, PATCH, OPTIONS" },
	{ "expected_status", 0, "accepted codes: 200, 200-299, 200,301 "
	    "(default 200-299)" },
	{ "keyword", 0, "the body must contain this text" },
	{ "keyword_absent", 0, "the body must not contain this text" },
	{ "header", WP_KEY_MULTI, "extra request header \"Name: value\"" },
	{ "body", 0, "request body to send" },
	{ "follow_redirects", 0, "follow up to 10 redirects (true)" },
	{ "verify_tls", 0, "verify the server certificate (true)" },
	{ "keepalive", 0, "reuse an idle connection to the same host and "
	    "port (false: a new connection per check)" },
	{ NULL, 0, NULL }
};

static const struct wp_plugin http_plugin = {
	WP_PLUGIN_HEADER,
	.name = "http",
	.version = PACKAGE_VERSION,
	.description = "HTTP(S) check: status, keywords, timings, "
	    "certificate expiry",
	.kind = WP_PLUGIN_CHECK,
	.keys = http_keys,
	.init = wp_curl_plugin_init,
	.fini = wp_curl_plugin_fini,
	.configure = http_configure,
	.release = http_release,
	.start = http_start,
	.cancel = http_cancel,
	.check = NULL,
};

WP_PLUGIN_DEFINE(http, http_plugin)
