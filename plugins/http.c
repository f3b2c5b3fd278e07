/*
 * http.so -- the "http" check type.
 *
 * Asynchronous: every check is one libcurl easy handle in the plugin's multi
 * handle, driven by the host's loop (curl-loop.c), so many checks are in
 * flight at once without a thread each.  The body is read to its end, at
 * most max_body bytes of it, and searched for the keywords as it
 * streams (see http_body for when reading stops early).
 *
 * Secrets: the URL (userinfo, query) and header values may carry
 * credentials, so no message of this plugin, configuration errors
 * included, quotes them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <watchpost/plugin.h>

#include "curl-loop.h"
#include "http-eval.h"
#include "http-json.h"

#define HTTP_MAX_REDIRS 10L
#define HTTP_MAX_BODY_MAX (64 * 1024 * 1024) /* max_body's bound, bytes */
#define HTTP_LIFETIME_MIN 2000000LL           /* keepalive_lifetime, us */
#define HTTP_LIFETIME_MAX 86400000000LL

/* ip_version's values, and what each asks curl for. */
static const char *const http_ip_versions[] = { "any", "4", "6", NULL };
static const long http_ipresolve[] = {
	CURL_IPRESOLVE_WHATEVER, CURL_IPRESOLVE_V4, CURL_IPRESOLVE_V6
};

/* proxy's schemes. */
static const char *const http_proxy_schemes[] = {
	"http", "https", "socks5", "socks5h", NULL
};

/* The methods, in the order of the method key's values. */
enum http_method {
	HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH,
	HTTP_OPTIONS
};
static const char *const http_methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", NULL
};

/* The keys, as the host parsed them (http_keys). */
struct http_conf {
	const char *url;
	int method;               /* enum http_method; -1: not set */
	const char *expected_status;
	const char *keyword;
	const char *keyword_absent;
	struct wp_list header;
	const char *body;
	int follow_redirects;
	int verify_tls;
	int keepalive;
	int64_t keepalive_lifetime; /* us */
	const char *ca_file;      /* NULL: the system's trust store */
	const char *client_cert;  /* mTLS: PEM certificate (with client_key) */
	const char *client_key;
	int ip_version;           /* index in http_ip_versions; -1: any */
	const char *proxy;        /* NULL: none; may carry credentials */
	int64_t max_body;         /* body bytes read at most */
	struct wp_list json;      /* assertions, one per line */
};

/*
 * An instance.  The strings are borrowed from the conf, which the host
 * keeps until release() (see plugin.h, Ownership).
 */
struct http_inst {
	struct curlloop_plugin *st;
	const struct http_conf *c;
	int method;               /* enum http_method, the default applied */
	struct httpeval_status status;
	struct curl_slist *headers;
	CURLU *uh;                /* url, parsed once; NULL: curl parses it */
	char *dest;               /* counted by curlloop_keepalive() as */
	/* Connection reuse (keepalive, see conn_plan()). */
	int64_t interval_us;      /* the monitor's interval; 0 unknown */
	int64_t fresh_us;         /* start of the last check that was UP on a
				   * new connection of its own; 0: none yet */
	int last_up;              /* the last check was UP */
	int64_t cert_expiry;      /* of the last new connection, for checks
				   * on a reused one (0: none seen) */
	int https;                /* the URL's scheme is https */
	struct httpjson **json;   /* the json assertions, parsed */
	size_t n_json;
};

struct http_op {
	struct curlloop_xfer x;   /* first: curl-loop hands it back */
	struct http_inst *inst;
	struct wp_op *op;
	int64_t started_us;
	size_t body_read;         /* body bytes so far */
	int known;                /* the body decided the verdict */
	struct httpeval_eval ev;
	int fresh;                /* a new connection was asked for */
	char *body;               /* with json assertions: the body read */
	size_t body_len;
	char *detail;             /* the request's buffer */
	size_t detail_size;
};

/*
 * curlloop_body_fn: search the body, and read it to its end so that a
 * response cut off or stalled mid-body fails (io, timeout) instead of
 * passing on its first bytes; a kept connection is then reusable too.
 * Two exceptions end the transfer early (1): a verdict that is already a
 * failure (a wrong status, keyword_absent found), which the rest cannot
 * change, and a body past max_body, whose rest is not read: the verdict
 * is then that of its first max_body bytes.
 */
static int
http_body(struct curlloop_xfer *x, const char *p, size_t n)
{
	struct http_op *o = x->arg;
	long code = 0;

	o->body_read += n;
	if (o->inst->n_json > 0 && o->body_read <=
	    httpeval_body_limit(&o->ev)) {
		char *nb = realloc(o->body, o->body_len + n);

		if (nb == NULL)
			return 1; /* judged below: the body is incomplete */
		memcpy(nb + o->body_len, p, n);
		o->body = nb;
		o->body_len += n;
	}
	if (!o->known) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
		o->known = httpeval_eval_body(&o->ev, code, p, n);
		if (o->known && httpeval_eval_failed(&o->ev, code))
			return 1;
	}
	return o->body_read > httpeval_body_limit(&o->ev);
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
			return httpeval_parse_asn1_time(s->data + sizeof(key) -
			    1);
	return 0;
}

static void
op_free(struct http_op *o)
{
	if (o == NULL)
		return;
	curlloop_release(o->inst->st->cl, &o->x);
	free(o->body);
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
	res->reason = httpeval_judge(&o->ev, code, in->c->expected_status,
	    in->c->keyword, in->c->keyword_absent, o->detail, o->detail_size);
	/* The json assertions, last: a body cut at max_body (or one that
	 * could not be kept) is not judged at all rather than misread. */
	if (res->reason == WP_REASON_OK && in->n_json > 0) {
		if (o->body_read > o->body_len) {
			snprintf(o->detail, o->detail_size, "json: not "
			    "evaluated: the body is larger than max_body "
			    "(%zu bytes)", httpeval_body_limit(&o->ev));
			res->reason = WP_REASON_KEYWORD;
		} else if (httpjson_eval(in->json, in->n_json, o->body != NULL ?
		    o->body : "", o->body_len, o->detail,
		    o->detail_size) != 1)
			res->reason = WP_REASON_KEYWORD;
	}
	res->detail = res->reason == WP_REASON_OK ? NULL : o->detail;
}

/*
 * Connection reuse, the default (keepalive = true).  A check may use an
 * idle connection to the same host and port, the monitor's own or another
 * monitor's, but each monitor proves that the server still accepts new
 * connections: a check opens a new connection of its own when
 *   - the monitor has had no UP check on a new connection yet, or its
 *     last check was not UP (so retries, and every check of a monitor
 *     that is DOWN, connect afresh), or
 *   - its last UP check on a new connection started so long ago that,
 *     counting half an interval of scheduling slack, it is more than
 *     keepalive_lifetime ago (now - fresh_us + interval / 2 > lifetime).
 * So a server that stops accepting new connections, while it still serves
 * the ones it has, is caught by the first check after keepalive_lifetime
 * (plus that check's own timeout): fewer than lifetime / interval checks
 * can still pass on old connections.  No connection older than
 * keepalive_lifetime is reused at all (CURLOPT_MAXLIFETIME_CONN, whole
 * seconds), whoever made it.  A connection whose next check would need a
 * new one anyway is closed after its check (a monitor at an interval of
 * more than two thirds of the lifetime keeps no idle connection), so the
 * default 60 s monitor opens and closes a connection per check as before.
 * A host that does not say the interval (before ABI 2.1) gets that too:
 * every check on a new connection, closed after it.
 */
static unsigned
conn_plan(struct http_op *o, int64_t now)
{
	const struct http_inst *in = o->inst;
	const struct http_conf *c = in->c;
	int64_t iv = in->interval_us, life = c->keepalive_lifetime, base;
	unsigned conn = 0;

	o->fresh = 1;
	if (!c->keepalive || iv <= 0)
		return 0;
	if (in->last_up && in->fresh_us != 0 &&
	    now - in->fresh_us + iv / 2 <= life) {
		o->fresh = 0;
		conn |= CURLLOOP_REUSE;
	}
	base = o->fresh ? now : in->fresh_us;
	if (now + iv - base + iv / 2 <= life)
		conn |= CURLLOOP_KEEP;
	return conn;
}

/*
 * After a check: remember when it was UP on a new connection.  A check on
 * a reused connection spent no time on DNS, connect or TLS: those phases
 * are 0 (reached at its start; libcurl reports none, and /metrics would
 * lose the series), and a reused TLS connection (libcurl has no
 * certificate for it) gets the expiry seen on the monitor's last new one,
 * at most keepalive_lifetime old.
 */
static void
conn_done(struct http_op *o, struct wp_result *res)
{
	struct http_inst *in = o->inst;
	long nconn = 0, redirs = 0;
	int made;

	curl_easy_getinfo(o->x.easy, CURLINFO_NUM_CONNECTS, &nconn);
	curl_easy_getinfo(o->x.easy, CURLINFO_REDIRECT_COUNT, &redirs);
	/* A new connection to the URL's own host: asked for, or made
	 * because no idle one was left (no redirect to another host). */
	made = o->fresh || (nconn > 0 && redirs == 0);
	if (made && res->cert_expiry != 0)
		in->cert_expiry = res->cert_expiry;
	else if (!made && res->cert_expiry == 0)
		res->cert_expiry = in->cert_expiry;
	if (!made) {
		if (res->dns_us < 0)
			res->dns_us = 0;
		if (res->connect_us < 0)
			res->connect_us = 0;
		if (in->https && res->tls_us < 0)
			res->tls_us = 0;
	}
	in->last_up = res->reason == WP_REASON_OK;
	if (made && in->last_up)
		in->fresh_us = o->started_us;
}

/* curlloop_done_fn: complete the check, then free it. */
static void
http_done(struct curlloop_xfer *x, CURLcode rc)
{
	struct http_op *o = x->arg;
	struct wp_result res = WP_RESULT_INIT;
	long code = 0;

	curlloop_timings(x, &res);
	res.cert_expiry = cert_expiry(x->easy);
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x->stopped)) {
		judge(o, &res);
	} else {
		curlloop_failure(x, rc, &res, o->detail, o->detail_size);
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
		res.status_code = code > 0 ? (int)code : -1;
	}
	conn_done(o, &res);
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
	if (in->dest != NULL)
		curlloop_keepalive(in->st->cl, in->dest, -1);
	free(in->dest);
	curl_slist_free_all(in->headers);
	curl_url_cleanup(in->uh);
	for (size_t i = 0; i < in->n_json; i++)
		httpjson_free(in->json[i]);
	free(in->json);
	free(in);
}

/*
 * Where the instance's connections go, as libcurl's cache tells them
 * apart, near enough: scheme, host and port of the URL (the proxy's URL
 * in front when there is one).  A URL libcurl cannot parse is its own
 * key.  Malloc'd; NULL when out of memory.
 */
static char *
http_dest(const struct http_inst *in)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *key = NULL;
	const char *proxy = in->c->proxy != NULL ? in->c->proxy : "";
	size_t n;

	if (in->uh == NULL ||
	    curl_url_get(in->uh, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(in->uh, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(in->uh, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK) {
		n = strlen(proxy) + strlen(in->c->url) + 2;
		if ((key = malloc(n)) != NULL)
			snprintf(key, n, "%s %s", proxy, in->c->url);
	} else {
		n = strlen(proxy) + strlen(scheme) + strlen(host) +
		    strlen(port) + 6;
		if ((key = malloc(n)) != NULL)
			snprintf(key, n, "%s %s://%s:%s", proxy, scheme, host,
			    port);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	return key;
}

/* The key file must be readable at -t (its contents are a secret: never
 * read into a message).  NULL, or a message naming PATH in BUF. */
static const char *
check_readable(const char *path, char *buf, size_t len)
{
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(buf, len, "cannot read %s: %s", path, strerror(errno));
		return buf;
	}
	fclose(f);
	return NULL;
}

/* keyword and keyword_absent: a text the body is searched for. */
static const char *
check_keyword(const char *s)
{
	if (s[0] == '\0')
		return "must not be empty";
	if (strlen(s) > HTTPEVAL_KEYWORD_MAX)
		return "must be at most 1024 bytes";
	return NULL;
}

/*
 * The host parsed and typed every key; judge what the types cannot say:
 * the expected_status ranges, the keywords, each header's "Name: value"
 * syntax, and the keys that depend on each other (method and body).
 */
static int
http_configure(void *state, const struct wp_section *sec, const void *conf,
    void **instp)
{
	struct curlloop_plugin *st = state;
	const struct wp_host *h = st->host;
	const struct http_conf *c = conf;
	struct http_inst *in;
	struct curl_slist *l;
	const char *why;
	size_t i;
	char msg[700];
	int bad = 0, rc = 0;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	in->c = c;
	httpeval_status_default(&in->status);
	if (c->expected_status != NULL &&
	    (why = httpeval_parse_status(&in->status, c->expected_status)) !=
	    NULL) {
		h->config_error(sec, "expected_status", "%s", why);
		bad = 1;
	}
	if (c->keyword != NULL && (why = check_keyword(c->keyword)) != NULL) {
		h->config_error(sec, "keyword", "%s", why);
		bad = 1;
	}
	if (c->keyword_absent != NULL &&
	    (why = check_keyword(c->keyword_absent)) != NULL) {
		h->config_error(sec, "keyword_absent", "%s", why);
		bad = 1;
	}
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
	if (rc != 0)
		goto fail;
	in->method = c->method >= 0 ? c->method :
	    c->body != NULL ? HTTP_POST : HTTP_GET;
	if (c->body != NULL &&
	    (in->method == HTTP_GET || in->method == HTTP_HEAD)) {
		h->config_error(sec, "method", "body needs a method that "
		    "sends one (POST, PUT, PATCH, DELETE, OPTIONS)");
		bad = 1;
	}
	if (in->method == HTTP_HEAD &&
	    (c->keyword != NULL || c->keyword_absent != NULL ||
	    c->json.n > 0)) {
		h->config_error(sec, "method", "keyword, keyword_absent and "
		    "json need a body; HEAD reads none");
		bad = 1;
	}
	if (c->json.n > 0 && (in->json = calloc(c->json.n,
	    sizeof(*in->json))) == NULL) {
		rc = WP_ENOMEM;
		goto fail;
	}
	for (i = 0; i < c->json.n; i++) {
		int jr = httpjson_parse(c->json.v[i], &in->json[in->n_json],
		    msg, sizeof(msg));

		if (jr < 0) {
			rc = WP_ENOMEM;
			goto fail;
		}
		if (jr > 0) {
			h->config_error(sec, "json", "%s", msg);
			bad = 1;
		} else
			in->n_json++;
	}
	if (c->ca_file != NULL &&
	    curlloop_check_pem(c->ca_file, msg, sizeof(msg)) != NULL) {
		h->config_error(sec, "ca_file", "%s", msg);
		bad = 1;
	}
	if ((c->client_cert == NULL) != (c->client_key == NULL)) {
		h->config_error(sec, c->client_cert == NULL ? "client_key" :
		    "client_cert", "client_cert and client_key go together");
		bad = 1;
	}
	if (c->client_cert != NULL &&
	    curlloop_check_pem(c->client_cert, msg, sizeof(msg)) != NULL) {
		h->config_error(sec, "client_cert", "%s", msg);
		bad = 1;
	}
	if (c->client_key != NULL && (why = check_readable(c->client_key,
	    msg, sizeof(msg))) != NULL) {
		h->config_error(sec, "client_key", "%s", why);
		bad = 1;
	}
	if (bad) {
		rc = WP_EINVAL;
		goto fail;
	}
	/* "Expect:" turns off curl's 100-continue wait for larger bodies.
	 * Only with a body: libcurl walks the list for each header it
	 * writes, and a request without a body never expects 100. */
	if (c->body != NULL) {
		if ((l = curl_slist_append(in->headers, "Expect:")) == NULL) {
			rc = WP_ENOMEM;
			goto fail;
		}
		in->headers = l;
	}
	/*
	 * The URL parsed once, for every check (CURLOPT_CURLU): libcurl would
	 * parse the text and print it back per transfer.  libcurl only reads
	 * it (redirects work on its own copy).  A URL libcurl cannot parse
	 * keeps the text, so the check fails as it always did.
	 */
	if ((in->uh = curl_url()) == NULL) {
		rc = WP_ENOMEM;
		goto fail;
	}
	if (curl_url_set(in->uh, CURLUPART_URL, c->url, 0) != CURLUE_OK) {
		curl_url_cleanup(in->uh);
		in->uh = NULL;
	}
	in->interval_us = sec->interval_us > 0 ? sec->interval_us : 0;
	in->https = strncasecmp(c->url, "https:", 6) == 0;
	/* Room in the connection cache only for a monitor that can keep a
	 * connection idle for its next check (conn_plan()). */
	if (c->keepalive && in->interval_us > 0 &&
	    in->interval_us + in->interval_us / 2 <= c->keepalive_lifetime) {
		char *dest = http_dest(in);

		if (dest == NULL || curlloop_keepalive(st->cl, dest, 1) != 0) {
			free(dest);
			rc = WP_ENOMEM;
			goto fail;
		}
		in->dest = dest; /* counted: release() takes it back */
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
	const struct http_conf *c = in->c;
	struct curlloop_plugin *st = in->st;
	struct http_op *o;
	CURL *e;
	unsigned conn;
	int bad = 0, rc;

	/* Not calloc: the keyword windows are large and need no zeroing
	 * (httpeval_match_init); a big zeroed block per check costs. */
	if ((o = malloc(sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->x = (struct curlloop_xfer){ .arg = o, .done = http_done,
	    .body = in->method == HTTP_HEAD ? NULL : http_body };
	o->inst = in;
	o->op = req->op;
	o->started_us = st->host->now_us();
	o->body_read = 0;
	o->body = NULL;
	o->body_len = 0;
	o->known = 0;
	o->ev.status = &in->status;
	o->ev.body_bytes = 0;
	o->ev.body_limit = (size_t)c->max_body;
	o->detail = req->detail;
	o->detail_size = req->detail_size;
	httpeval_match_init(&o->ev.want, c->keyword);
	httpeval_match_init(&o->ev.avoid, c->keyword_absent);
	conn = conn_plan(o, o->started_us);
	rc = curlloop_setup(st->cl, &o->x, in->uh != NULL ? NULL : c->url,
	    in->headers, c->verify_tls, conn,
	    req->deadline_us - o->started_us);
	if (rc != 0)
		goto fail;
	e = o->x.easy;
	/* libcurl compares whole seconds and reuses up to one more: a
	 * second less keeps every reused connection younger than the
	 * lifetime (at least 2 s, so the option is never 0, "no limit"). */
	if (conn & CURLLOOP_REUSE)
		bad |= curl_easy_setopt(e, CURLOPT_MAXLIFETIME_CONN,
		    (long)(c->keepalive_lifetime / 1000000) - 1) != CURLE_OK;
	if (in->uh != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_CURLU, in->uh) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION,
	    c->follow_redirects ? 1L : 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_MAXREDIRS, HTTP_MAX_REDIRS) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CERTINFO, 1L) != CURLE_OK;
	if (c->ca_file != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file) !=
		    CURLE_OK;
	if (c->client_cert != NULL) {
		bad |= curl_easy_setopt(e, CURLOPT_SSLCERT, c->client_cert) !=
		    CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_SSLKEY, c->client_key) !=
		    CURLE_OK;
	}
	bad |= curl_easy_setopt(e, CURLOPT_IPRESOLVE,
	    http_ipresolve[c->ip_version > 0 ? c->ip_version : 0]) != CURLE_OK;
	if (c->proxy != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_PROXY, c->proxy) != CURLE_OK;
	if (in->method == HTTP_HEAD)
		bad |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK;
	else if (in->method != HTTP_GET)
		bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
		    http_methods[in->method]) != CURLE_OK;
	if (c->body != NULL) {
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(c->body)) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body) !=
		    CURLE_OK;
	}
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

/* The host's deadline: stop, say how far the check got, complete. */
static void
http_cancel(void *inst, void *opstate)
{
	struct http_inst *in = inst;
	struct http_op *o = opstate;
	struct wp_result res = WP_RESULT_INIT;

	curlloop_cancel_result(in->st, &o->x, o->started_us, o->detail,
	    o->detail_size, &res);
	in->last_up = 0;
	in->st->host->complete(o->op, &res);
	op_free(o);
}

static const struct wp_key http_keys[] = {
	{ WP_KEY(WP_KT_URL, "url", struct http_conf, url),
	    .flags = WP_KEY_REQUIRED,
	    .help = "http:// or https:// URL to fetch" },
	{ WP_KEY(WP_KT_ENUM, "method", struct http_conf, method),
	    .values = http_methods,
	    .help = "GET (default; POST when body is set), HEAD, POST, PUT, "
	    "DELETE, PATCH, OPTIONS" },
	{ WP_KEY(WP_KT_STRING, "expected_status", struct http_conf,
	    expected_status), .def = "200-299",
	    .help = "accepted codes: 200, 200-299, 200,301 (default 200-299)" },
	{ WP_KEY(WP_KT_STRING, "keyword", struct http_conf, keyword),
	    .help = "the body must contain this text" },
	{ WP_KEY(WP_KT_STRING, "keyword_absent", struct http_conf,
	    keyword_absent), .help = "the body must not contain this text" },
	{ WP_KEY(WP_KT_SECRET, "header", struct http_conf, header),
	    .flags = WP_KEY_MULTI,
	    .help = "extra request header \"Name: value\" (repeatable)" },
	{ WP_KEY(WP_KT_STRING, "body", struct http_conf, body),
	    .help = "request body to send" },
	{ WP_KEY(WP_KT_BOOL, "follow_redirects", struct http_conf,
	    follow_redirects), .def = "true",
	    .help = "follow up to 10 redirects (true)" },
	{ WP_KEY(WP_KT_BOOL, "verify_tls", struct http_conf, verify_tls),
	    .def = "true", .help = "verify the server certificate (true)" },
	{ WP_KEY(WP_KT_BOOL, "keepalive", struct http_conf, keepalive),
	    .def = "true", .help = "reuse an idle connection to the same "
	    "host and port, within keepalive_lifetime (true; false: a new "
	    "connection per check)" },
	{ WP_KEY(WP_KT_DURATION, "keepalive_lifetime", struct http_conf,
	    keepalive_lifetime), .def = "60s", .min = HTTP_LIFETIME_MIN,
	    .max = HTTP_LIFETIME_MAX,
	    .help = "with keepalive: each monitor opens a new connection at "
	    "least this often and reuses none older (60s; 2s-1d)" },
	{ WP_KEY(WP_KT_PATH, "ca_file", struct http_conf, ca_file),
	    .help = "PEM file of CA certificates to trust instead of the "
	    "system's store" },
	{ WP_KEY(WP_KT_PATH, "client_cert", struct http_conf, client_cert),
	    .help = "PEM client certificate for mutual TLS (with client_key)" },
	{ WP_KEY(WP_KT_PATH, "client_key", struct http_conf, client_key),
	    .help = "PEM private key of client_cert" },
	{ WP_KEY(WP_KT_ENUM, "ip_version", struct http_conf, ip_version),
	    .values = http_ip_versions,
	    .help = "connect over IPv4 (4), IPv6 (6) or either (any, default)" },
	{ WP_KEY(WP_KT_URL, "proxy", struct http_conf, proxy),
	    .values = http_proxy_schemes,
	    .help = "proxy URL: http://, https://, socks5://, socks5h:// "
	    "(no message quotes it: it may hold credentials)" },
	{ WP_KEY(WP_KT_INT, "max_body", struct http_conf, max_body),
	    .def = "1048576", .min = 1, .max = HTTP_MAX_BODY_MAX,
	    .help = "body bytes read at most; the verdict is that of the "
	    "first max_body bytes (default 1048576)" },
	{ WP_KEY(WP_KT_STRING, "json", struct http_conf, json),
	    .flags = WP_KEY_MULTI,
	    .help = "assertion on a JSON body, PATH OP VALUE: $.status == "
	    "\"ok\", $.items.length > 0, $.version exists (repeatable; "
	    "all must hold)" },
};

WP_CHECK_PLUGIN(http,
    .version = PACKAGE_VERSION,
    .description = "HTTP(S) check: status, keywords, timings, "
    "certificate expiry",
    WP_KEYS(http_keys, struct http_conf),
    .init = curlloop_plugin_init,
    .fini = curlloop_plugin_fini,
    .configure = http_configure,
    .release = http_release,
    .start = http_start,
    .cancel = http_cancel)
