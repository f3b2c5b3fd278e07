/*
 * etcd -- the etcd v3 client (contract in etcd.h).
 *
 * Every call is one POST to the JSON gateway on the agent's loop through
 * curl-loop (the libcurl multi handle on host->watch / host->timer_*); a
 * watch is one POST whose answer never ends: newline-separated JSON
 * messages.  Nothing here blocks and nothing runs on a thread of its own.
 *
 * Answers are read as the 3.4 gateway writes them (checked against
 * Debian's etcd 3.4.23): proto3 JSON leaves out every field at its default
 * (a failed txn has no `succeeded`, an empty value no `value`, a PUT event
 * no `type`), int64 fields are strings, bytes are base64, an error is
 * {"error": "...", "message": "...", "code": GRPC-CODE} (a streaming call
 * wraps both result and error one level down).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../plugins/curl-loop.h"
#include "etcd.h"
#include "util.h"

/* An answer larger than this is refused (etcd's own request limit is
 * 1.5 MiB; a range of many keys is larger, but not this large). */
#define MAX_BODY (64 * 1024 * 1024)
/* A watch message (one line) larger than this breaks the stream. */
#define MAX_LINE (64 * 1024 * 1024)
/* etcd's default --experimental-watch-progress-notify-interval. */
#define DEFAULT_PROGRESS_US (600 * 1000000LL)
/* Reopening a watch that failed again: from this, doubling, up to MAX. */
#define BACKOFF_MIN_US 100000
#define BACKOFF_MAX_US 5000000

/* gRPC status codes etcd puts in "code". */
enum {
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16
};

enum req_kind { K_GRANT, K_KEEPALIVE, K_REVOKE, K_RANGE, K_TXN, K_AUTH };

static const char *const kind_path[] = {
	[K_GRANT] = "/v3/lease/grant",
	[K_KEEPALIVE] = "/v3/lease/keepalive",
	[K_REVOKE] = "/v3/lease/revoke",
	[K_RANGE] = "/v3/kv/range",
	[K_TXN] = "/v3/kv/txn",
	[K_AUTH] = "/v3/auth/authenticate",
};

/* What the client does with a finished attempt. */
enum verdict {
	V_DONE,     /* the result is known (err set) */
	V_RETRY,    /* this endpoint cannot answer: the next one */
	V_REAUTH    /* the token was refused: authenticate, send again */
};

struct etcd {
	const struct wp_host *host;
	struct curlloop_loop *cl;
	char **endpoints;          /* without a trailing '/' */
	size_t n_endpoints;
	size_t cur;                /* the endpoint that last answered */
	char *user, *password;
	char *ca_file, *client_cert, *client_key;
	int64_t timeout_us;
	int64_t silence_us;        /* a watch stream silent this long is dead */

	/* Auth: token NULL and need_auth set means no request may go before
	 * an authenticate answered.  auth_round numbers authentications;
	 * whoever waits records the round it waits for. */
	char *token;
	int need_auth;
	unsigned long token_gen;   /* bumped with every new token */
	struct etcd_req *auth;     /* the authenticate in flight, or NULL */
	unsigned long auth_round;

	struct etcd_req *reqs;     /* every live request, auth included */
	struct etcd_watch *watches;
};

struct etcd_req {
	struct etcd *e;
	struct curlloop_xfer x;
	enum req_kind kind;
	etcd_cb cb;
	void *arg;
	char *body;                /* the JSON request */
	size_t body_len;
	char *url;                 /* this attempt's */
	struct curl_slist *hdrs;   /* this attempt's */
	struct sbuf resp;
	int64_t deadline_us;
	size_t ep;                 /* endpoint of this attempt */
	size_t tries;              /* endpoints that failed */
	unsigned long token_gen;   /* the token this attempt carried */
	int reauthed;              /* already authenticated again once */
	int waiting;               /* queued for auth_round */
	unsigned long round;
	char msg[512];
	struct etcd_req *prev, *next;
};

enum watch_state { W_BACKOFF, W_AUTHWAIT, W_OPEN, W_DONE };

struct etcd_watch {
	struct etcd *e;
	struct curlloop_xfer x;
	enum watch_state state;
	char *key, *range_end;
	size_t key_len, range_end_len;
	int64_t next_rev;          /* where the next stream starts; 0: now */
	etcd_watch_fn fn;
	void *arg;
	struct wp_timer *timer;    /* backoff, or processing and silence */
	char *body;
	char *url;
	struct curl_slist *hdrs;
	struct sbuf in;            /* bytes not yet processed */
	int64_t last_rx_us;
	size_t ep;
	unsigned fails;            /* opens in a row that never got created */
	int healthy;               /* as last reported to fn() */
	int created;               /* this stream said created */
	int reauth;                /* this stream ended on a refused token */
	int reauthed;              /* authenticated again for this stream */
	int in_fn;
	int stopped;               /* etcd_watch_stop() inside fn() */
	unsigned long round;
	unsigned long token_gen;
	struct etcd_watch *prev, *next;
};

/* ---- base64 ----
 * A codec of our own: libcurl exports none, and OpenSSL's EVP_EncodeBlock
 * would make the core link libcrypto for forty lines; its decoder also
 * accepts what etcd never sends (embedded whitespace) and reports padding
 * bytes as data. */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The encoding of SRC[N], NUL-terminated; the caller frees it. */
static char *
b64_encode(const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
	size_t i;
	unsigned v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		*o++ = b64_chars[v >> 18];
		*o++ = b64_chars[(v >> 12) & 63];
		*o++ = b64_chars[(v >> 6) & 63];
		*o++ = b64_chars[v & 63];
	}
	if (i < n) {
		v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 :
		    0);
		*o++ = b64_chars[v >> 18];
		*o++ = b64_chars[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode SRC[N] (padded, as protobuf's JSON writes bytes) into DST, which
 * has room for n / 4 * 3 bytes.  Returns the length, or -1 if SRC is not
 * base64. */
static long
b64_decode(const char *src, size_t n, char *dst)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i, o = 0, pad = 0;
	int k, v[4];

	if (n % 4 != 0)
		return -1;
	if (n > 0 && s[n - 1] == '=')
		pad = n > 1 && s[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n; i += 4) {
		for (k = 0; k < 4; k++) {
			if (i + 4 == n && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			if ((v[k] = b64_value(s[i + k])) < 0)
				return -1;
		}
		dst[o++] = (char)(v[0] << 2 | v[1] >> 4);
		if (i + 4 < n || pad < 2)
			dst[o++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (i + 4 < n || pad < 1)
			dst[o++] = (char)((v[2] & 3) << 6 | v[3]);
	}
	return (long)o;
}

/* ---- reading answers ---- */

/* An int64 field (a JSON string, or a number from a lenient writer) of O
 * into *out; absent is 0.  Returns 0, or -1 if present but not an int64. */
static int
get_i64(const json_t *o, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(o, name);
	const char *s;
	char *end;
	long long n;

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	errno = 0;
	n = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0)
		return -1;
	*out = n;
	return 0;
}

static int
get_bool(const json_t *o, const char *name)
{
	return json_is_true(json_object_get(o, name));
}

/* Bytes a kv's key and value decode to, at most. */
static size_t
kv_space(const json_t *kv)
{
	const json_t *k = json_object_get(kv, "key");
	const json_t *v = json_object_get(kv, "value");

	return (json_is_string(k) ? json_string_length(k) / 4 * 3 : 0) +
	    (json_is_string(v) ? json_string_length(v) / 4 * 3 : 0);
}

/* Decode one base64 field of O into *cursor (advanced). */
static int
get_bytes(const json_t *o, const char *name, char **cursor, const char **p,
    size_t *len)
{
	const json_t *v = json_object_get(o, name);
	long n;

	*p = *cursor;
	*len = 0;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return -1;
	if ((n = b64_decode(json_string_value(v), json_string_length(v),
	    *cursor)) < 0)
		return -1;
	*len = (size_t)n;
	*cursor += n;
	return 0;
}

/* One mvccpb.KeyValue into OUT, its bytes into *cursor.  0 or -1. */
static int
kv_parse(const json_t *kv, struct etcd_kv *out, char **cursor)
{
	int bad = 0;

	if (!json_is_object(kv))
		return -1;
	bad |= get_bytes(kv, "key", cursor, &out->key, &out->key_len);
	bad |= get_bytes(kv, "value", cursor, &out->value, &out->value_len);
	bad |= get_i64(kv, "create_revision", &out->create_revision);
	bad |= get_i64(kv, "mod_revision", &out->mod_revision);
	bad |= get_i64(kv, "version", &out->version);
	bad |= get_i64(kv, "lease", &out->lease);
	return bad ? -1 : 0;
}

/*
 * The kvs of every range answer in RANGES (an array of RangeResponse
 * objects) into one allocation *block holding the etcd_kv array and the
 * bytes; *count and *more summed over them.  0 or -1 (nothing allocated).
 */
static int
kvs_parse(const json_t *ranges, struct etcd_result *res, void **block)
{
	const json_t *rr, *kvs, *kv;
	struct etcd_kv *arr;
	size_t i, j, n = 0, space = 0, k = 0;
	int64_t count;
	char *cursor;

	*block = NULL;
	json_array_foreach(ranges, i, rr) {
		kvs = json_object_get(rr, "kvs");
		if (kvs != NULL && !json_is_array(kvs))
			return -1;
		json_array_foreach(kvs, j, kv) {
			n++;
			space += kv_space(kv);
		}
	}
	res->count = 0;
	res->more = 0;
	if (n == 0)
		arr = NULL;
	else
		arr = *block = xcalloc(1, n * sizeof(*arr) + space + 1);
	cursor = (char *)(arr + n);
	json_array_foreach(ranges, i, rr) {
		if (get_i64(rr, "count", &count) != 0)
			goto bad;
		res->count += count;
		res->more |= get_bool(rr, "more");
		json_array_foreach(json_object_get(rr, "kvs"), j, kv)
			if (kv_parse(kv, &arr[k++], &cursor) != 0)
				goto bad;
	}
	res->kvs = arr;
	res->n_kvs = n;
	return 0;
bad:
	free(*block);
	*block = NULL;
	return -1;
}

/* header.revision of O into *rev.  0 or -1. */
static int
header_rev(const json_t *o, int64_t *rev)
{
	const json_t *h = json_object_get(o, "header");

	*rev = 0;
	if (h == NULL)
		return 0;
	return get_i64(h, "revision", rev);
}

/*
 * An error answer ({"error": TEXT | {...}, "message": TEXT, "code": N},
 * or a streaming call's {"error": {"grpc_code": N, "message": TEXT}}):
 * 1 with *code and *text set, 0 if O is no error.
 */
static int
error_of(const json_t *o, int *code, const char **text)
{
	const json_t *err = json_object_get(o, "error");
	const json_t *m, *c;

	if (err == NULL)
		return 0;
	m = json_object_get(o, "message");
	c = json_object_get(o, "code");
	if (json_is_object(err)) {
		m = json_object_get(err, "message");
		if ((c = json_object_get(err, "grpc_code")) == NULL)
			c = json_object_get(err, "code");
	}
	*text = json_is_string(m) ? json_string_value(m) :
	    json_is_string(err) ? json_string_value(err) : "unknown error";
	*code = json_is_integer(c) ? (int)json_integer_value(c) : 0;
	return 1;
}

/* Errors that say this member cannot serve now, where another may. */
static int
error_is_transient(int code, const char *text)
{
	return code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED ||
	    strstr(text, "leader changed") != NULL ||
	    strstr(text, "no leader") != NULL ||
	    strstr(text, "request timed out") != NULL ||
	    strstr(text, "not capable") != NULL ||
	    strstr(text, "too many requests") != NULL;
}

/* The token is gone (expired, or the server restarted with auth): a new
 * authenticate fixes it.  "user name is empty": no token at all, sent
 * while auth was off and it has just been turned on. */
static int
error_is_token(int code, const char *text)
{
	return strstr(text, "invalid auth token") != NULL ||
	    strstr(text, "user name is empty") != NULL ||
	    (code == GRPC_UNAUTHENTICATED &&
	    strstr(text, "authentication failed") == NULL);
}

/* ---- requests ---- */

static void req_done(struct curlloop_xfer *x, CURLcode rc);
static void auth_finish(struct etcd *e, enum etcd_err err, const char *msg);
static void watch_open(struct etcd_watch *w);
static void watch_backoff(struct etcd_watch *w);

static void
link_req(struct etcd *e, struct etcd_req *r)
{
	r->next = e->reqs;
	if (e->reqs != NULL)
		e->reqs->prev = r;
	e->reqs = r;
}

static void
unlink_req(struct etcd *e, struct etcd_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		e->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* Free R (taking its transfer back first); it must be unlinked. */
static void
req_free(struct etcd_req *r)
{
	curlloop_release(r->e->cl, &r->x);
	curl_slist_free_all(r->hdrs);
	free(r->url);
	free(r->body);
	sbuf_free(&r->resp);
	free(r);
}

static int
body_cb(struct curlloop_xfer *x, const char *p, size_t n)
{
	struct etcd_req *r = x->arg;

	if (r->resp.len + n > MAX_BODY)
		return 1;
	sbuf_append(&r->resp, p, n);
	return 0;
}

/* The headers every call carries; the token unless NO_TOKEN. */
static struct curl_slist *
make_headers(struct etcd *e, int no_token)
{
	struct curl_slist *h = NULL;
	char *a;

	h = curl_slist_append(h, "Content-Type: application/json");
	/* A body over 1 KiB would otherwise wait for 100-continue, which
	 * the gateway never sends. */
	h = curl_slist_append(h, "Expect:");
	if (!no_token && e->token != NULL) {
		a = xasprintf("Authorization: %s", e->token);
		h = curl_slist_append(h, a);
		free(a);
	}
	return h;
}

/* TLS files and the POST body on a set-up handle.  0, or nonzero. */
static int
set_common(struct etcd *e, CURL *c, const char *body, size_t len)
{
	int bad = 0;

	bad |= curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len) != CURLE_OK;
	if (e->ca_file != NULL)
		bad |= curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file) !=
		    CURLE_OK;
	if (e->client_cert != NULL)
		bad |= curl_easy_setopt(c, CURLOPT_SSLCERT, e->client_cert) !=
		    CURLE_OK;
	if (e->client_key != NULL)
		bad |= curl_easy_setopt(c, CURLOPT_SSLKEY, e->client_key) !=
		    CURLE_OK;
	return bad;
}

/*
 * Send R to endpoint r->ep.  Each attempt gets an equal share of what is
 * left of the budget over the endpoints not tried yet, so one endpoint
 * that hangs cannot take the others' time; the last gets all of it.
 * Returns 0, or a WP_E* code with r->msg set (R not in the loop).
 */
static int
req_send(struct etcd_req *r)
{
	struct etcd *e = r->e;
	int64_t left = r->deadline_us - e->host->now_us(), share;
	size_t untried = e->n_endpoints - r->tries;
	long ms;
	int rc;

	if (left <= 0) {
		snprintf(r->msg, sizeof(r->msg), "no etcd endpoint answered "
		    "within the request timeout");
		return WP_EAGAIN;
	}
	share = untried > 1 ? left / (int64_t)untried : left;
	curl_slist_free_all(r->hdrs);
	r->hdrs = make_headers(e, r->kind == K_AUTH);
	free(r->url);
	r->url = xasprintf("%s%s", e->endpoints[r->ep], kind_path[r->kind]);
	sbuf_free(&r->resp);
	r->token_gen = e->token_gen;
	/* curlloop_setup() keeps the counters of an earlier attempt (header
	 * bytes, stopped): each attempt starts from nothing. */
	memset(&r->x, 0, sizeof(r->x));
	if ((rc = curlloop_setup(e->cl, &r->x, r->url, r->hdrs, 1, 1,
	    share)) != 0)
		goto fail;
	/* curl-loop adds a margin for a host deadline; ours is exact. */
	ms = (long)(share / 1000) + 1;
	if (curl_easy_setopt(r->x.easy, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK ||
	    curl_easy_setopt(r->x.easy, CURLOPT_CONNECTTIMEOUT_MS, ms) !=
	    CURLE_OK || set_common(e, r->x.easy, r->body, r->body_len)) {
		rc = WP_EINVAL;
		goto fail;
	}
	r->x.body = body_cb;
	r->x.done = req_done;
	r->x.arg = r;
	if ((rc = curlloop_loop_add(e->cl, &r->x)) != 0)
		goto fail;
	return 0;
fail:
	curlloop_release(e->cl, &r->x);
	snprintf(r->msg, sizeof(r->msg), "cannot start an etcd request "
	    "(%d)", rc);
	return rc;
}

/* Queue R behind the next authenticate (starting one when none is in
 * flight).  0, or a WP_E* code when none could be started. */
static int
auth_wait(struct etcd_req *r);

/* Complete R: its callback gets RES (err and message already set), then R
 * is freed.  The callback may start and cancel other requests. */
static void
req_complete(struct etcd_req *r, struct etcd_result *res)
{
	struct etcd *e = r->e;

	unlink_req(e, r);
	curlloop_release(e->cl, &r->x);
	if (res->err != ETCD_OK && res->message == NULL)
		res->message = r->msg;
	if (r->kind == K_AUTH)
		e->auth = NULL;
	else if (r->cb != NULL)
		r->cb(r->arg, res);
	req_free(r);
}

static void
req_fail(struct etcd_req *r, enum etcd_err err)
{
	struct etcd_result res;

	memset(&res, 0, sizeof(res));
	res.err = err;
	res.message = r->msg;
	if (r->kind == K_AUTH) {
		/* The waiters learn it first, with the same words. */
		struct etcd *e = r->e;
		char msg[sizeof(r->msg)];

		str_copy(msg, sizeof(msg), r->msg);
		req_complete(r, &res);
		auth_finish(e, err, msg);
		return;
	}
	req_complete(r, &res);
}

/* Send R again (on r->ep), or fail it with ETCD_EUNAVAILABLE. */
static void
req_resend(struct etcd_req *r)
{
	if (req_send(r) != 0)
		req_fail(r, ETCD_EUNAVAILABLE);
}

/*
 * Read a 2xx answer of kind r->kind into RES (block: what RES points
 * into, for the caller to free after the callback).  For an auth answer
 * the token is installed.  Returns the verdict, RES->err set when V_DONE.
 */
static enum verdict
parse_ok(struct etcd_req *r, const json_t *o, struct etcd_result *res,
    void **block)
{
	struct etcd *e = r->e;
	const json_t *resp, *one, *rr, *tok;
	json_t *ranges;
	size_t i;
	int bad = 0;

	*block = NULL;
	res->err = ETCD_OK;
	switch (r->kind) {
	case K_GRANT:
		bad |= header_rev(o, &res->revision);
		bad |= get_i64(o, "ID", &res->lease_id);
		bad |= get_i64(o, "TTL", &res->ttl_s);
		if (!bad && res->lease_id == 0)
			bad = 1;
		break;
	case K_KEEPALIVE:
		/* A streaming call: {"result": LeaseKeepAliveResponse}.  An
		 * unknown lease is answered with no TTL (0), not an error. */
		if ((o = json_object_get(o, "result")) == NULL) {
			bad = 1;
			break;
		}
		bad |= header_rev(o, &res->revision);
		bad |= get_i64(o, "ID", &res->lease_id);
		bad |= get_i64(o, "TTL", &res->ttl_s);
		if (!bad && res->ttl_s <= 0) {
			res->err = ETCD_ENOTFOUND;
			snprintf(r->msg, sizeof(r->msg),
			    "etcd: requested lease not found");
		}
		break;
	case K_REVOKE:
		bad |= header_rev(o, &res->revision);
		break;
	case K_RANGE:
		bad |= header_rev(o, &res->revision);
		if (bad)
			break;
		ranges = json_array();
		json_array_append(ranges, (json_t *)o);
		bad |= kvs_parse(ranges, res, block);
		json_decref(ranges);
		break;
	case K_TXN:
		bad |= header_rev(o, &res->revision);
		res->succeeded = get_bool(o, "succeeded");
		resp = json_object_get(o, "responses");
		if (bad || (resp != NULL && !json_is_array(resp))) {
			bad = 1;
			break;
		}
		ranges = json_array();
		json_array_foreach(resp, i, one)
			if ((rr = json_object_get(one, "response_range")) !=
			    NULL)
				json_array_append(ranges, (json_t *)rr);
		bad |= kvs_parse(ranges, res, block);
		json_decref(ranges);
		break;
	case K_AUTH:
		tok = json_object_get(o, "token");
		if (!json_is_string(tok) || json_string_length(tok) == 0 ||
		    strpbrk(json_string_value(tok), "\r\n") != NULL) {
			bad = 1;
			break;
		}
		free(e->token);
		e->token = xstrdup(json_string_value(tok));
		e->need_auth = 0;
		e->token_gen++;
		break;
	}
	if (bad) {
		res->err = ETCD_EPROTO;
		snprintf(r->msg, sizeof(r->msg), "etcd answered %s with "
		    "JSON we cannot read", kind_path[r->kind]);
	}
	return V_DONE;
}

/* An error answer's verdict for R; RES->err set when V_DONE. */
static enum verdict
parse_error(struct etcd_req *r, long status, int code, const char *text,
    struct etcd_result *res)
{
	struct etcd *e = r->e;

	snprintf(r->msg, sizeof(r->msg), "etcd: %s", text);
	/* The gateway gives 5xx only to Unknown, Internal, Unavailable,
	 * DeadlineExceeded and the like: this member's trouble. */
	if (status >= 500 || error_is_transient(code, text))
		return V_RETRY;
	if (r->kind == K_AUTH) {
		/* Auth is off on the server: carry on without a token. */
		if (strstr(text, "authentication is not enabled") != NULL) {
			e->need_auth = 0;
			free(e->token);
			e->token = NULL;
			e->token_gen++;
			res->err = ETCD_OK;
			return V_DONE;
		}
		res->err = ETCD_EAUTH;
		return V_DONE;
	}
	if (error_is_token(code, text)) {
		if (e->user != NULL && !r->reauthed)
			return V_REAUTH;
		res->err = ETCD_EAUTH;
		return V_DONE;
	}
	if (code == GRPC_PERMISSION_DENIED ||
	    strstr(text, "permission denied") != NULL ||
	    strstr(text, "authentication failed") != NULL)
		res->err = ETCD_EAUTH;
	else if (code == GRPC_NOT_FOUND || strstr(text, "lease not found"))
		res->err = ETCD_ENOTFOUND;
	else if (code == GRPC_OUT_OF_RANGE || strstr(text, "compacted"))
		res->err = ETCD_ECOMPACTED;
	else
		res->err = ETCD_EREFUSED;
	return V_DONE;
}

/* One attempt of R ended: complete R, or try again. */
static void
req_done(struct curlloop_xfer *x, CURLcode rc)
{
	struct etcd_req *r = x->arg;
	struct etcd *e = r->e;
	struct etcd_result res;
	struct wp_result wres;
	enum verdict v = V_DONE;
	json_t *o = NULL;
	json_error_t jerr;
	const char *text;
	void *block = NULL;
	long status = 0;
	int code;
	char why[256];

	memset(&res, 0, sizeof(res));
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK && !x->stopped) {
		memset(&wres, 0, sizeof(wres));
		curlloop_failure(x, rc, &wres, why, sizeof(why));
		snprintf(r->msg, sizeof(r->msg), "etcd %s: %s",
		    e->endpoints[r->ep], why);
		v = V_RETRY;
	} else if (x->stopped) {
		snprintf(r->msg, sizeof(r->msg), "etcd %s: an answer larger "
		    "than %d bytes", e->endpoints[r->ep], MAX_BODY);
		res.err = ETCD_EPROTO;
	} else if ((o = json_loadb(r->resp.data ? r->resp.data : "",
	    r->resp.len, 0, &jerr)) != NULL && json_is_object(o) &&
	    error_of(o, &code, &text)) {
		v = parse_error(r, status, code, text, &res);
	} else if (status >= 500) {
		snprintf(r->msg, sizeof(r->msg), "etcd %s: HTTP status %ld",
		    e->endpoints[r->ep], status);
		v = V_RETRY;
	} else if (status < 200 || status > 299) {
		snprintf(r->msg, sizeof(r->msg), "etcd %s: HTTP status %ld "
		    "for %s", e->endpoints[r->ep], status, kind_path[r->kind]);
		res.err = ETCD_EPROTO;
	} else if (o == NULL || !json_is_object(o)) {
		snprintf(r->msg, sizeof(r->msg), "etcd %s: an answer that is "
		    "not a JSON object", e->endpoints[r->ep]);
		res.err = ETCD_EPROTO;
	} else {
		v = parse_ok(r, o, &res, &block);
	}
	json_decref(o);
	curlloop_release(e->cl, x);
	if (v != V_RETRY && rc == CURLE_OK)
		e->cur = r->ep;

	switch (v) {
	case V_RETRY:
		e->host->log(e->host, WP_LOG_DEBUG, "%s", r->msg);
		r->tries++;
		/* Later requests start where this one goes next. */
		if (e->cur == r->ep)
			e->cur = (r->ep + 1) % e->n_endpoints;
		r->ep = (r->ep + 1) % e->n_endpoints;
		if (r->tries >= e->n_endpoints) {
			req_fail(r, ETCD_EUNAVAILABLE);
			return;
		}
		req_resend(r);
		return;
	case V_REAUTH:
		r->reauthed = 1;
		/* Only the first to see this token refused drops it. */
		if (r->token_gen == e->token_gen) {
			e->host->log(e->host, WP_LOG_INFO, "etcd %s: the auth "
			    "token was refused; authenticating again",
			    e->endpoints[r->ep]);
			free(e->token);
			e->token = NULL;
			e->need_auth = 1;
		}
		if (auth_wait(r) != 0)
			req_fail(r, ETCD_EUNAVAILABLE);
		return;
	case V_DONE:
		break;
	}
	if (r->kind == K_AUTH) {
		if (res.err != ETCD_OK) {
			req_fail(r, res.err);
			return;
		}
		req_complete(r, &res);
		auth_finish(e, ETCD_OK, NULL);
		return;
	}
	req_complete(r, &res);
	free(block);
}

/* A request of KIND with BODY (taken), not sent yet. */
static struct etcd_req *
req_new(struct etcd *e, enum req_kind kind, char *body, etcd_cb cb,
    void *arg)
{
	struct etcd_req *r = xcalloc(1, sizeof(*r));

	r->e = e;
	r->kind = kind;
	r->body = body;
	r->body_len = strlen(body);
	r->cb = cb;
	r->arg = arg;
	r->ep = e->cur;
	r->deadline_us = e->host->now_us() + e->timeout_us;
	link_req(e, r);
	return r;
}

/* Start the authenticate when none is in flight.  0 or WP_E*. */
static int
auth_start(struct etcd *e)
{
	struct etcd_req *a;
	json_t *o;
	char *body;
	int rc;

	if (e->auth != NULL)
		return 0;
	o = json_pack("{s:s, s:s}", "name", e->user, "password", e->password);
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (body == NULL)
		return WP_ENOMEM;
	a = req_new(e, K_AUTH, body, NULL, NULL);
	e->auth_round++;
	e->auth = a;
	if ((rc = req_send(a)) != 0) {
		e->auth = NULL;
		unlink_req(e, a);
		req_free(a);
		return rc;
	}
	return 0;
}

static int
auth_wait(struct etcd_req *r)
{
	struct etcd *e = r->e;
	int rc;

	if ((rc = auth_start(e)) != 0)
		return rc;
	r->waiting = 1;
	r->round = e->auth_round;
	/* A fresh budget: the wait for the token is not this attempt's. */
	r->deadline_us = e->host->now_us() + e->timeout_us;
	r->tries = 0;
	return 0;
}

/*
 * The authenticate of round e->auth_round ended with ERR (MSG).  Every
 * watch and request waiting for it goes on (sent with the new token) or
 * fails with that error.  Requests queued while their callbacks run wait
 * for a later round, so they are not touched here.
 */
static void
auth_finish(struct etcd *e, enum etcd_err err, const char *msg)
{
	unsigned long round = e->auth_round;
	struct etcd_watch *w, *wn;
	struct etcd_req *r;
	struct etcd_result res;

	if (err != ETCD_OK)
		e->host->log(e->host, WP_LOG_WARN, "etcd authentication "
		    "failed: %s", msg);
	for (w = e->watches; w != NULL; w = wn) {
		wn = w->next;
		if (w->state != W_AUTHWAIT || w->round > round)
			continue;
		if (err == ETCD_OK) {
			watch_open(w);
		} else {
			w->fails++;
			watch_backoff(w);
		}
	}
	for (;;) {
		for (r = e->reqs; r != NULL; r = r->next)
			if (r->waiting && r->round <= round)
				break;
		if (r == NULL)
			break;
		r->waiting = 0;
		if (err == ETCD_OK) {
			req_resend(r);
			continue;
		}
		memset(&res, 0, sizeof(res));
		res.err = err == ETCD_EAUTH ? ETCD_EAUTH : ETCD_EUNAVAILABLE;
		str_copy(r->msg, sizeof(r->msg), msg);
		req_complete(r, &res);
	}
}

/* Send a new request R, or queue it for a token. */
static int
req_start(struct etcd_req *r, struct etcd_req **out)
{
	struct etcd *e = r->e;
	int rc;

	if (e->need_auth)
		rc = auth_wait(r);
	else
		rc = req_send(r);
	if (rc != 0) {
		unlink_req(e, r);
		req_free(r);
		return rc < 0 ? rc : WP_EIO;
	}
	if (out != NULL)
		*out = r;
	return 0;
}

/* BODY from O (taken); NULL on failure. */
static char *
dump(json_t *o)
{
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* An int64 as the string the gateway wants. */
static json_t *
i64(int64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%lld", (long long)v);
	return json_string(b);
}

/* Base64 of BYTES[N] as a JSON string. */
static json_t *
bytes(const char *p, size_t n)
{
	char *s = b64_encode(p, n);
	json_t *v = json_string(s);

	free(s);
	return v;
}

static int
submit(struct etcd *e, enum req_kind kind, json_t *o, etcd_cb cb,
    void *arg, struct etcd_req **out)
{
	char *body;

	if (e == NULL || cb == NULL) {
		json_decref(o);
		return WP_EINVAL;
	}
	if ((body = dump(o)) == NULL)
		return WP_ENOMEM;
	return req_start(req_new(e, kind, body, cb, arg), out);
}

int
etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_cb cb, void *arg,
    struct etcd_req **out)
{
	json_t *o;

	if (ttl_s <= 0)
		return WP_EINVAL;
	o = json_object();
	json_object_set_new(o, "TTL", i64(ttl_s));
	return submit(e, K_GRANT, o, cb, arg, out);
}

int
etcd_lease_keepalive(struct etcd *e, int64_t lease, etcd_cb cb, void *arg,
    struct etcd_req **out)
{
	json_t *o = json_object();

	json_object_set_new(o, "ID", i64(lease));
	return submit(e, K_KEEPALIVE, o, cb, arg, out);
}

int
etcd_lease_revoke(struct etcd *e, int64_t lease, etcd_cb cb, void *arg,
    struct etcd_req **out)
{
	json_t *o = json_object();

	json_object_set_new(o, "ID", i64(lease));
	return submit(e, K_REVOKE, o, cb, arg, out);
}

/* A RangeRequest / DeleteRangeRequest's key and range_end. */
static json_t *
key_range(const char *key, size_t key_len, const char *end, size_t end_len)
{
	json_t *o = json_object();

	json_object_set_new(o, "key", bytes(key, key_len));
	if (end != NULL)
		json_object_set_new(o, "range_end", bytes(end, end_len));
	return o;
}

int
etcd_range(struct etcd *e, const char *key, size_t key_len,
    const char *range_end, size_t range_end_len, int64_t revision,
    int64_t limit, etcd_cb cb, void *arg, struct etcd_req **out)
{
	json_t *o;

	if (key == NULL || revision < 0 || limit < 0)
		return WP_EINVAL;
	o = key_range(key, key_len, range_end, range_end_len);
	if (revision > 0)
		json_object_set_new(o, "revision", i64(revision));
	if (limit > 0)
		json_object_set_new(o, "limit", i64(limit));
	return submit(e, K_RANGE, o, cb, arg, out);
}

size_t
etcd_prefix_end(const char *prefix, size_t prefix_len, char *buf)
{
	size_t i = prefix_len;

	while (i > 0 && (unsigned char)prefix[i - 1] == 0xff)
		i--;
	if (i == 0) {
		buf[0] = '\0';
		return 1;
	}
	memcpy(buf, prefix, i - 1);
	buf[i - 1] = (char)((unsigned char)prefix[i - 1] + 1);
	return i;
}

static json_t *
cmp_json(const struct etcd_cmp *c)
{
	static const char *const targets[] = {
		[ETCD_CMP_VERSION] = "VERSION", [ETCD_CMP_CREATE] = "CREATE",
		[ETCD_CMP_MOD] = "MOD", [ETCD_CMP_VALUE] = "VALUE",
		[ETCD_CMP_LEASE] = "LEASE",
	};
	static const char *const fields[] = {
		[ETCD_CMP_VERSION] = "version",
		[ETCD_CMP_CREATE] = "create_revision",
		[ETCD_CMP_MOD] = "mod_revision", [ETCD_CMP_VALUE] = "value",
		[ETCD_CMP_LEASE] = "lease",
	};
	static const char *const results[] = {
		[ETCD_CMP_EQUAL] = "EQUAL", [ETCD_CMP_NOT_EQUAL] = "NOT_EQUAL",
		[ETCD_CMP_GREATER] = "GREATER", [ETCD_CMP_LESS] = "LESS",
	};
	json_t *o;

	if (c->key == NULL || (unsigned)c->target > ETCD_CMP_LEASE ||
	    (unsigned)c->result > ETCD_CMP_LESS)
		return NULL;
	o = json_object();
	json_object_set_new(o, "key", bytes(c->key, c->key_len));
	json_object_set_new(o, "target", json_string(targets[c->target]));
	json_object_set_new(o, "result", json_string(results[c->result]));
	if (c->target == ETCD_CMP_VALUE)
		json_object_set_new(o, fields[c->target],
		    bytes(c->value != NULL ? c->value : "", c->value_len));
	else
		json_object_set_new(o, fields[c->target], i64(c->number));
	return o;
}

static json_t *
op_json(const struct etcd_op *op)
{
	json_t *o, *in;

	if (op->key == NULL)
		return NULL;
	o = json_object();
	switch (op->type) {
	case ETCD_OP_PUT:
		in = json_object();
		json_object_set_new(in, "key", bytes(op->key, op->key_len));
		json_object_set_new(in, "value", bytes(op->value != NULL ?
		    op->value : "", op->value_len));
		if (op->lease != 0)
			json_object_set_new(in, "lease", i64(op->lease));
		json_object_set_new(o, "request_put", in);
		return o;
	case ETCD_OP_DELETE:
		json_object_set_new(o, "request_delete_range",
		    key_range(op->key, op->key_len, op->range_end,
		    op->range_end_len));
		return o;
	case ETCD_OP_RANGE:
		json_object_set_new(o, "request_range", key_range(op->key,
		    op->key_len, op->range_end, op->range_end_len));
		return o;
	}
	json_decref(o);
	return NULL;
}

int
etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, size_t n_cmp,
    const struct etcd_op *success, size_t n_success,
    const struct etcd_op *failure, size_t n_failure,
    etcd_cb cb, void *arg, struct etcd_req **out)
{
	json_t *o = json_object(), *a, *v;
	size_t i;

	a = json_array();
	for (i = 0; i < n_cmp; i++) {
		if ((v = cmp_json(&cmp[i])) == NULL)
			goto bad;
		json_array_append_new(a, v);
	}
	json_object_set_new(o, "compare", a);
	a = json_array();
	for (i = 0; i < n_success; i++) {
		if ((v = op_json(&success[i])) == NULL)
			goto bad;
		json_array_append_new(a, v);
	}
	json_object_set_new(o, "success", a);
	a = json_array();
	for (i = 0; i < n_failure; i++) {
		if ((v = op_json(&failure[i])) == NULL)
			goto bad;
		json_array_append_new(a, v);
	}
	json_object_set_new(o, "failure", a);
	return submit(e, K_TXN, o, cb, arg, out);
bad:
	json_decref(a);
	json_decref(o);
	return WP_EINVAL;
}

void
etcd_cancel(struct etcd_req *r)
{
	if (r == NULL)
		return;
	unlink_req(r->e, r);
	req_free(r);
}

/* ---- watches ---- */

static void
unlink_watch(struct etcd *e, struct etcd_watch *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		e->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

/* End W's stream, if any (its transfer back to the pool). */
static void
watch_close(struct etcd_watch *w)
{
	curlloop_release(w->e->cl, &w->x);
	curl_slist_free_all(w->hdrs);
	w->hdrs = NULL;
	free(w->url);
	w->url = NULL;
	free(w->body);
	w->body = NULL;
	sbuf_free(&w->in);
	w->created = 0;
}

static void
watch_free(struct etcd_watch *w)
{
	unlink_watch(w->e, w);
	watch_close(w);
	if (w->timer != NULL)
		w->e->host->timer_free(w->timer);
	free(w->key);
	free(w->range_end);
	free(w);
}

/* Give B to fn().  Returns 1 if W was stopped inside (and is freed). */
static int
deliver(struct etcd_watch *w, struct etcd_watch_batch *b)
{
	w->in_fn = 1;
	w->fn(w->arg, b);
	w->in_fn = 0;
	if (w->stopped) {
		watch_free(w);
		return 1;
	}
	return 0;
}

/* Tell fn() the stream is up or down, when that changed.  1: W freed. */
static int
report_health(struct etcd_watch *w, int healthy, int64_t rev)
{
	struct etcd_watch_batch b;

	if (w->healthy == healthy)
		return 0;
	w->healthy = healthy;
	memset(&b, 0, sizeof(b));
	b.revision = rev;
	b.healthy = healthy;
	return deliver(w, &b);
}

/*
 * One watch message (LINE[N]).  Returns 0 to go on, 1 if W was freed, or
 * -1 when the stream must end: w->state is then set to what follows
 * (W_DONE after compaction; w->reauth for a refused token).
 */
static int
watch_message(struct etcd_watch *w, const char *line, size_t n)
{
	struct etcd *e = w->e;
	struct etcd_watch_batch b;
	struct etcd_event *ev = NULL;
	const json_t *res, *evs, *one, *kv;
	const char *text, *type, *reason;
	json_t *o;
	json_error_t jerr;
	size_t i, n_ev, space = 0;
	char *cursor;
	int code, rc = 0, bad = 0;

	if ((o = json_loadb(line, n, 0, &jerr)) == NULL ||
	    !json_is_object(o)) {
		e->host->log(e->host, WP_LOG_WARN, "etcd %s: a watch message "
		    "that is not JSON; reopening", e->endpoints[w->ep]);
		json_decref(o);
		return -1;
	}
	if (error_of(o, &code, &text)) {
		e->host->log(e->host, WP_LOG_WARN, "etcd %s: watch: %s",
		    e->endpoints[w->ep], text);
		if (error_is_token(code, text) && e->user != NULL)
			w->reauth = 1;
		json_decref(o);
		return -1;
	}
	if ((res = json_object_get(o, "result")) == NULL)
		res = o;
	memset(&b, 0, sizeof(b));
	b.healthy = 1;
	bad |= header_rev(res, &b.revision);
	if (get_bool(res, "canceled")) {
		bad |= get_i64(res, "compact_revision", &b.compact_revision);
		reason = json_string_value(json_object_get(res,
		    "cancel_reason"));
		if (!bad && b.compact_revision > 0) {
			w->state = W_DONE;
			w->healthy = 0;
			b.compacted = 1;
			b.healthy = 0;
			json_decref(o);
			return deliver(w, &b) ? 1 : -1;
		}
		e->host->log(e->host, WP_LOG_WARN, "etcd %s: watch cancelled: "
		    "%s", e->endpoints[w->ep], reason ? reason : "no reason");
		if (reason != NULL && error_is_token(0, reason) &&
		    e->user != NULL)
			w->reauth = 1;
		json_decref(o);
		return -1;
	}
	if (get_bool(res, "created")) {
		w->created = 1;
		w->fails = 0;
		if (w->next_rev == 0 && b.revision > 0)
			w->next_rev = b.revision + 1;
		rc = report_health(w, 1, b.revision);
		json_decref(o);
		return rc;
	}
	evs = json_object_get(res, "events");
	if (bad || (evs != NULL && !json_is_array(evs))) {
		json_decref(o);
		return -1;
	}
	if ((n_ev = json_array_size(evs)) == 0) {
		/* A progress notification: the stream lives. */
		json_decref(o);
		return 0;
	}
	json_array_foreach(evs, i, one)
		space += kv_space(json_object_get(one, "kv"));
	ev = xcalloc(1, n_ev * sizeof(*ev) + space + 1);
	cursor = (char *)(ev + n_ev);
	json_array_foreach(evs, i, one) {
		type = json_string_value(json_object_get(one, "type"));
		ev[i].type = type != NULL && strcmp(type, "DELETE") == 0 ?
		    ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
		kv = json_object_get(one, "kv");
		if (kv_parse(kv, &ev[i].kv, &cursor) != 0) {
			bad = 1;
			break;
		}
	}
	json_decref(o);
	if (bad) {
		free(ev);
		e->host->log(e->host, WP_LOG_WARN, "etcd %s: a watch event we "
		    "cannot read; reopening", e->endpoints[w->ep]);
		return -1;
	}
	/* Events arrive in revision order; resume after the last. */
	if (ev[n_ev - 1].kv.mod_revision >= w->next_rev)
		w->next_rev = ev[n_ev - 1].kv.mod_revision + 1;
	b.events = ev;
	b.n_events = n_ev;
	if (w->healthy == 0)
		w->healthy = 1;
	rc = deliver(w, &b);
	free(ev);
	return rc;
}

/* Every complete line in w->in (and with ALL, the rest too).  0, 1 (W
 * freed) or -1 (the stream must end), as watch_message(). */
static int
watch_lines(struct etcd_watch *w, int all)
{
	char *p, *nl, *end;
	size_t used = 0;
	int rc = 0;

	while (w->in.len > used) {
		p = w->in.data + used;
		end = w->in.data + w->in.len;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			if (!all)
				break;
			nl = end;
		}
		used = (size_t)(nl - w->in.data) + (nl < end);
		if (nl - p > 0 && !(nl - p == 1 && *p == '\r'))
			rc = watch_message(w, p, (size_t)(nl - p));
		if (rc != 0)
			return rc;
	}
	if (used > 0) {
		memmove(w->in.data, w->in.data + used, w->in.len - used);
		w->in.len -= used;
		w->in.data[w->in.len] = '\0';
	}
	return 0;
}

/* The stream ended or must end: report it and reopen, unless done. */
static void
watch_broken(struct etcd_watch *w)
{
	struct etcd *e = w->e;
	int created = w->created;

	watch_close(w);
	if (w->state == W_DONE)
		return;
	if (report_health(w, 0, 0))
		return;
	w->ep = (w->ep + 1) % e->n_endpoints;
	if (w->reauth && !w->reauthed) {
		w->reauth = 0;
		w->reauthed = 1;
		if (w->token_gen == e->token_gen) {
			free(e->token);
			e->token = NULL;
			e->need_auth = 1;
		}
		watch_open(w);
		return;
	}
	w->reauth = 0;
	if (created)
		w->reauthed = 0;
	if (!created)
		w->fails++;
	watch_backoff(w);
}

/* The watch timer: reopen after a backoff, or read what arrived and
 * check the stream is not silent. */
static void
watch_timer(struct wp_timer *t, void *arg)
{
	struct etcd_watch *w = arg;
	struct etcd *e = w->e;
	int64_t now, quiet;
	int rc;

	(void)t;
	switch (w->state) {
	case W_BACKOFF:
		watch_open(w);
		return;
	case W_OPEN:
		break;
	default:
		return;
	}
	if ((rc = watch_lines(w, 0)) == 1)
		return;
	if (rc < 0) {
		watch_broken(w);
		return;
	}
	now = e->host->now_us();
	quiet = now - w->last_rx_us;
	if (quiet >= e->silence_us) {
		e->host->log(e->host, WP_LOG_WARN, "etcd %s: watch stream "
		    "silent for %lld ms; reopening", e->endpoints[w->ep],
		    (long long)(quiet / 1000));
		watch_broken(w);
		return;
	}
	e->host->timer_set(w->timer, e->silence_us - quiet);
}

/* Stream data: kept, and read from the timer (never inside curl's
 * callback, where fn() could not stop the watch). */
static int
watch_body(struct curlloop_xfer *x, const char *p, size_t n)
{
	struct etcd_watch *w = x->arg;
	struct etcd *e = w->e;

	if (w->in.len + n > MAX_LINE)
		return 1;
	sbuf_append(&w->in, p, n);
	w->last_rx_us = e->host->now_us();
	e->host->timer_set(w->timer, 0);
	return 0;
}

static void
watch_done(struct curlloop_xfer *x, CURLcode rc)
{
	struct etcd_watch *w = x->arg;
	struct etcd *e = w->e;
	struct wp_result wres;
	long status = 0;
	int r;
	char why[256];

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK && !x->stopped) {
		memset(&wres, 0, sizeof(wres));
		curlloop_failure(x, rc, &wres, why, sizeof(why));
		e->host->log(e->host, w->created ? WP_LOG_WARN : WP_LOG_DEBUG,
		    "etcd %s: watch stream: %s", e->endpoints[w->ep], why);
	} else if (status != 200) {
		e->host->log(e->host, WP_LOG_DEBUG, "etcd %s: watch: HTTP "
		    "status %ld", e->endpoints[w->ep], status);
	}
	curlloop_release(e->cl, x);
	if (x->stopped) {
		e->host->log(e->host, WP_LOG_WARN, "etcd %s: a watch message "
		    "larger than %d bytes; reopening", e->endpoints[w->ep],
		    MAX_LINE);
		sbuf_free(&w->in);
	}
	/* What arrived before the end counts. */
	if ((r = watch_lines(w, 1)) == 1)
		return;
	watch_broken(w);
}

/* Reopen W after its backoff. */
static void
watch_backoff(struct etcd_watch *w)
{
	int64_t d = 0;
	unsigned i;

	w->state = W_BACKOFF;
	if (w->fails > 0) {
		d = BACKOFF_MIN_US;
		for (i = 1; i < w->fails && d < BACKOFF_MAX_US; i++)
			d *= 2;
		if (d > BACKOFF_MAX_US)
			d = BACKOFF_MAX_US;
	}
	w->e->host->timer_set(w->timer, d);
}

/* Open W's stream from w->next_rev on w->ep (or wait for a token). */
static void
watch_open(struct etcd_watch *w)
{
	struct etcd *e = w->e;
	json_t *o, *c;
	int rc;

	watch_close(w);
	if (e->need_auth) {
		if (auth_start(e) != 0) {
			w->fails++;
			watch_backoff(w);
			return;
		}
		w->state = W_AUTHWAIT;
		w->round = e->auth_round;
		return;
	}
	c = key_range(w->key, w->key_len, w->range_end, w->range_end_len);
	if (w->next_rev > 0)
		json_object_set_new(c, "start_revision", i64(w->next_rev));
	json_object_set_new(c, "progress_notify", json_true());
	o = json_object();
	json_object_set_new(o, "create_request", c);
	w->body = dump(o);
	w->hdrs = make_headers(e, 0);
	w->url = xasprintf("%s/v3/watch", e->endpoints[w->ep]);
	w->token_gen = e->token_gen;
	if (w->body == NULL)
		goto fail;
	memset(&w->x, 0, sizeof(w->x));
	if ((rc = curlloop_setup(e->cl, &w->x, w->url, w->hdrs, 1, 0,
	    e->timeout_us)) != 0)
		goto fail;
	/* The stream has no end: only connecting is bounded; a dead one is
	 * found by its silence (and TCP keepalive for a vanished peer). */
	if (curl_easy_setopt(w->x.easy, CURLOPT_TIMEOUT_MS, 0L) != CURLE_OK ||
	    curl_easy_setopt(w->x.easy, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(e->timeout_us / 1000) + 1) != CURLE_OK ||
	    curl_easy_setopt(w->x.easy, CURLOPT_TCP_KEEPALIVE, 1L) !=
	    CURLE_OK ||
	    curl_easy_setopt(w->x.easy, CURLOPT_TCP_KEEPIDLE, 10L) !=
	    CURLE_OK ||
	    curl_easy_setopt(w->x.easy, CURLOPT_TCP_KEEPINTVL, 5L) !=
	    CURLE_OK ||
	    set_common(e, w->x.easy, w->body, strlen(w->body)))
		goto fail;
	w->x.body = watch_body;
	w->x.done = watch_done;
	w->x.arg = w;
	if (curlloop_loop_add(e->cl, &w->x) != 0)
		goto fail;
	w->state = W_OPEN;
	w->last_rx_us = e->host->now_us();
	e->host->timer_set(w->timer, e->silence_us);
	return;
fail:
	e->host->log(e->host, WP_LOG_WARN, "etcd: cannot open a watch "
	    "stream; retrying");
	watch_close(w);
	w->fails++;
	watch_backoff(w);
}

int
etcd_watch_start(struct etcd *e, const char *key, size_t key_len,
    const char *range_end, size_t range_end_len, int64_t start_revision,
    etcd_watch_fn fn, void *arg, struct etcd_watch **out)
{
	struct etcd_watch *w;

	if (e == NULL || key == NULL || fn == NULL || start_revision < 0)
		return WP_EINVAL;
	w = xcalloc(1, sizeof(*w));
	w->e = e;
	if ((w->timer = e->host->timer_new(e->host, watch_timer, w)) == NULL) {
		free(w);
		return WP_ENOMEM;
	}
	w->key = xmalloc(key_len + 1);
	memcpy(w->key, key, key_len);
	w->key_len = key_len;
	if (range_end != NULL) {
		w->range_end = xmalloc(range_end_len + 1);
		memcpy(w->range_end, range_end, range_end_len);
		w->range_end_len = range_end_len;
	}
	w->next_rev = start_revision;
	w->fn = fn;
	w->arg = arg;
	w->ep = e->cur;
	w->next = e->watches;
	if (e->watches != NULL)
		e->watches->prev = w;
	e->watches = w;
	/* Opened from the timer: fn() is never called from inside here,
	 * nor an authenticate started. */
	w->state = W_BACKOFF;
	e->host->timer_set(w->timer, 0);
	if (out != NULL)
		*out = w;
	return 0;
}

void
etcd_watch_stop(struct etcd_watch *w)
{
	if (w == NULL)
		return;
	if (w->in_fn) {
		w->stopped = 1;
		w->state = W_DONE;
		return;
	}
	watch_free(w);
}

/* ---- the client ---- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

int
etcd_new(const struct wp_host *host, const struct etcd_opts *o,
    struct etcd **out)
{
	struct etcd *e;
	size_t i, n;

	if (o == NULL || o->n_endpoints == 0 || o->endpoints == NULL ||
	    (o->user != NULL && o->password == NULL) ||
	    (o->client_cert == NULL) != (o->client_key == NULL)) {
		host->log(host, WP_LOG_ERROR, "etcd: bad client options");
		return WP_EINVAL;
	}
	for (i = 0; i < o->n_endpoints; i++)
		if (o->endpoints[i] == NULL ||
		    (strncmp(o->endpoints[i], "http://", 7) != 0 &&
		    strncmp(o->endpoints[i], "https://", 8) != 0)) {
			host->log(host, WP_LOG_ERROR, "etcd: endpoint %zu is "
			    "not an http:// or https:// URL", i + 1);
			return WP_EINVAL;
		}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		host->log(host, WP_LOG_ERROR, "etcd: libcurl init failed");
		return WP_EIO;
	}
	e = xcalloc(1, sizeof(*e));
	e->host = host;
	if ((e->cl = curlloop_loop_new(host)) == NULL) {
		free(e);
		curl_global_cleanup();
		host->log(host, WP_LOG_ERROR, "etcd: out of memory");
		return WP_ENOMEM;
	}
	e->n_endpoints = o->n_endpoints;
	e->endpoints = xcalloc(o->n_endpoints, sizeof(*e->endpoints));
	for (i = 0; i < o->n_endpoints; i++) {
		e->endpoints[i] = xstrdup(o->endpoints[i]);
		n = strlen(e->endpoints[i]);
		while (n > 0 && e->endpoints[i][n - 1] == '/')
			e->endpoints[i][--n] = '\0';
	}
	e->user = dup_or_null(o->user);
	e->password = dup_or_null(o->password);
	e->ca_file = dup_or_null(o->ca_file);
	e->client_cert = dup_or_null(o->client_cert);
	e->client_key = dup_or_null(o->client_key);
	e->need_auth = e->user != NULL;
	e->timeout_us = o->request_timeout_us > 0 ? o->request_timeout_us :
	    5000000;
	e->silence_us = 2 * (o->watch_progress_us > 0 ? o->watch_progress_us :
	    DEFAULT_PROGRESS_US) + 1000000;
	/* Requests keep their connections: one idle one per endpoint. */
	curlloop_keepalive(e->cl, (int)e->n_endpoints);
	*out = e;
	return 0;
}

void
etcd_free(struct etcd *e)
{
	size_t i;

	if (e == NULL)
		return;
	while (e->watches != NULL)
		watch_free(e->watches);
	while (e->reqs != NULL) {
		struct etcd_req *r = e->reqs;

		unlink_req(e, r);
		req_free(r);
	}
	curlloop_loop_free(e->cl);
	for (i = 0; i < e->n_endpoints; i++)
		free(e->endpoints[i]);
	free(e->endpoints);
	free(e->user);
	if (e->password != NULL)
		explicit_bzero(e->password, strlen(e->password));
	free(e->password);
	free(e->ca_file);
	free(e->client_cert);
	free(e->client_key);
	free(e->token);
	free(e);
	curl_global_cleanup();
}
