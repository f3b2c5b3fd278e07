#include "config.h"

/*
 * CURLOPT_PROTOCOLS and CURLOPT_REDIR_PROTOCOLS (bit masks) are deprecated
 * since 7.85 in favour of their _STR forms, which libcurl parses on every
 * setopt (a scheme table walk per name, per transfer).  The masks still
 * work in every libcurl 7 and 8 and mean the same; the deprecation
 * warning is all this silences.
 */
#define CURL_DISABLE_DEPRECATION 1

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "curl-loop.h"

/* A destination of kept connections, and how many users it has. */
struct dest {
	struct dest *next;
	long refs;
	char key[];
};

/* One socket curl asked us to watch. */
struct sock {
	struct curlloop_loop *cl;
	curl_socket_t fd;
	struct wp_watch *w;
	struct sock *prev, *next;
};

/*
 * Idle easy handles kept for the next transfers.  Creating and freeing a
 * handle per check (a large zeroed allocation, its receive buffer, the
 * string options) was a seventh of a check's CPU; a reset handle costs a
 * fraction of that.  A reset handle keeps no connection, DNS entry or TLS
 * session that a check could reuse (FRESH_CONNECT, FORBID_REUSE and the
 * disabled caches are set again every time), so each check still measures
 * a connection of its own.  Bounded: a burst's extra handles are freed.
 */
#define POOL_MAX 64

struct curlloop_loop {
	const struct wp_host *host;
	CURLM *multi;
	struct wp_timer *timer;
	struct sock *socks;
	CURL *pool[POOL_MAX];
	size_t n_pool;
	long n_keep;		/* users of kept connections */
	struct dest **dests;	/* their destinations, a hash table */
	size_t n_buckets;	/* a power of two, or 0 */
	long n_dests;		/* distinct destinations in it */
	long n_running;		/* transfers in the multi handle */
	int env_proxy;		/* the environment names a proxy (env_proxy()) */
};

extern char **environ;

/*
 * 1 if any variable of the environment ends in "_proxy" (any case): the
 * only names libcurl reads proxy settings from (http_proxy, HTTPS_PROXY,
 * all_proxy, no_proxy, smtp_proxy...).  Without one, an empty CURLOPT_PROXY
 * and CURLOPT_NOPROXY mean exactly what libcurl would find there, without
 * its five getenv() and their copies per transfer.  The environment is
 * read once, at init: the agent never changes its own.
 */
static int
env_proxy(void)
{
	static const char suffix[] = "_proxy=";
	char **e;
	const char *eq;

	for (e = environ; e != NULL && *e != NULL; e++) {
		if ((eq = strchr(*e, '=')) == NULL ||
		    (size_t)(eq - *e) < sizeof(suffix) - 2)
			continue;
		if (strncasecmp(eq - (sizeof(suffix) - 2), suffix,
		    sizeof(suffix) - 1) == 0)
			return 1;
	}
	return 0;
}

/*
 * libcurl's connection cache holds the connections in use and the idle
 * ones, and by default makes room for 4 per transfer in flight: with few
 * in flight, keep-alive monitors of many different hosts would close each
 * other's idle connections.  Room for every transfer in flight plus one
 * idle connection per keep-alive monitor, but at most IDLE_PER_DEST per
 * destination: libcurl checks every idle connection of its cache with a
 * poll() once a second, so 10,000 monitors of one server keeping 10,000
 * idle connections stalled the loop for tens of milliseconds every second
 * (S1: lateness p99 65 ms), while a few connections serve them all.  None
 * once there are no such monitors (fresh transfers close theirs anyway).
 * When the cache is full, libcurl closes the connection idle the longest.
 * libcurl reads the bound when a transfer ends, so it is kept current as
 * transfers come and go; 0 would mean no bound.
 */
#define IDLE_PER_DEST 64

static void
bound_cache(struct curlloop_loop *cl)
{
	long idle = cl->n_dests * IDLE_PER_DEST, n;

	n = (cl->n_keep < idle ? cl->n_keep : idle) + cl->n_running;
	curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS, n > 0 ? n : 1L);
}

/* FNV-1a of KEY. */
static size_t
dest_hash(const char *key)
{
	size_t h = 2166136261u;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h;
}

/* Double the table (or make its first 64 buckets); 0 or WP_ENOMEM. */
static int
dests_grow(struct curlloop_loop *cl)
{
	size_t nb = cl->n_buckets > 0 ? cl->n_buckets * 2 : 64, i;
	struct dest **t = calloc(nb, sizeof(*t)), *d, *next;

	if (t == NULL)
		return WP_ENOMEM;
	for (i = 0; i < cl->n_buckets; i++)
		for (d = cl->dests[i]; d != NULL; d = next) {
			next = d->next;
			d->next = t[dest_hash(d->key) & (nb - 1)];
			t[dest_hash(d->key) & (nb - 1)] = d;
		}
	free(cl->dests);
	cl->dests = t;
	cl->n_buckets = nb;
	return 0;
}

int
curlloop_keepalive(struct curlloop_loop *cl, const char *dest, int delta)
{
	struct dest **pp, *d;
	size_t len = strlen(dest);

	if (delta > 0 && (size_t)cl->n_dests >= cl->n_buckets &&
	    dests_grow(cl) != 0)
		return WP_ENOMEM;
	if (cl->n_buckets == 0)
		return 0; /* nothing counted yet: nothing to take back */
	pp = &cl->dests[dest_hash(dest) & (cl->n_buckets - 1)];
	while (*pp != NULL && strcmp((*pp)->key, dest) != 0)
		pp = &(*pp)->next;
	if ((d = *pp) == NULL) {
		if (delta < 0)
			return 0;
		if ((d = malloc(sizeof(*d) + len + 1)) == NULL)
			return WP_ENOMEM;
		memcpy(d->key, dest, len + 1);
		d->refs = 0;
		d->next = NULL;
		*pp = d;
		cl->n_dests++;
	}
	d->refs += delta;
	cl->n_keep += delta;
	if (d->refs <= 0) {
		*pp = d->next;
		free(d);
		cl->n_dests--;
	}
	bound_cache(cl);
	return 0;
}

static void
sock_free(struct curlloop_loop *cl, struct sock *sk)
{
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		cl->socks = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	if (sk->w)
		cl->host->unwatch(sk->w);
	free(sk);
}

/*
 * Hand every finished transfer to its owner.  Only called after
 * curl_multi_socket_action() returned, never from inside a curl callback,
 * so done() may call back into curl and into the host.
 */
static void
drain(struct curlloop_loop *cl)
{
	struct curlloop_xfer *x;
	CURLMsg *msg;
	CURLcode rc;
	char *priv;
	int left;

	while ((msg = curl_multi_info_read(cl->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		x = (struct curlloop_xfer *)(void *)priv;
		curl_multi_remove_handle(cl->multi, msg->easy_handle);
		cl->n_running--;
		bound_cache(cl);
		if (x == NULL)
			continue;
		x->in_multi = 0;
		x->done(x, rc);
	}
}

static void
watch_cb(struct wp_watch *w, int fd, unsigned revents, void *arg)
{
	struct sock *sk = arg;
	struct curlloop_loop *cl = sk->cl;
	int flags = 0, running;

	(void)w;
	if (revents & WP_READABLE)
		flags |= CURL_CSELECT_IN;
	if (revents & WP_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	/* sk may be freed inside (CURL_POLL_REMOVE): not used after this. */
	curl_multi_socket_action(cl->multi, fd, flags, &running);
	drain(cl);
}

static void
timer_cb(struct wp_timer *t, void *arg)
{
	struct curlloop_loop *cl = arg;
	int running;

	(void)t;
	curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(cl);
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest in S on a host watch. */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curlloop_loop *cl = userp;
	struct sock *sk = socketp;
	struct curlloop_xfer *x;
	char *priv = NULL;
	unsigned ev = 0;

	/* The transfer's socket, for curlloop_phase(). */
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
	if ((x = (struct curlloop_xfer *)(void *)priv) != NULL)
		x->fd = what == CURL_POLL_REMOVE ? -1 : (int)s;
	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL) {
			curl_multi_assign(cl->multi, s, NULL);
			sock_free(cl, sk);
		}
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= WP_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= WP_WRITABLE;
	if (sk != NULL)
		return cl->host->watch_set(sk->w, ev) == 0 ? 0 : -1;
	if ((sk = calloc(1, sizeof(*sk))) == NULL)
		return -1;
	sk->cl = cl;
	sk->fd = s;
	if ((sk->w = cl->host->watch(cl->host, s, ev, watch_cb, sk)) == NULL) {
		free(sk);
		return -1;
	}
	sk->next = cl->socks;
	if (cl->socks)
		cl->socks->prev = sk;
	cl->socks = sk;
	curl_multi_assign(cl->multi, s, sk);
	return 0;
}

/*
 * CURLMOPT_TIMERFUNCTION: arm the one host timer.  A zero timeout is also
 * deferred to the timer, as curl asks: calling curl_multi_socket_action()
 * from here would recurse into curl.
 */
static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curlloop_loop *cl = userp;

	(void)multi;
	if (cl->timer == NULL)
		return timeout_ms < 0 ? 0 : -1;
	return cl->host->timer_set(cl->timer, timeout_ms < 0 ? -1 :
	    (int64_t)timeout_ms * 1000) == 0 ? 0 : -1;
}

struct curlloop_loop *
curlloop_loop_new(const struct wp_host *host)
{
	struct curlloop_loop *cl;

	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return NULL;
	cl->host = host;
	cl->env_proxy = env_proxy();
	if ((cl->multi = curl_multi_init()) == NULL) {
		free(cl);
		return NULL;
	}
	curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
	curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
	return cl;
}

void
curlloop_loop_free(struct curlloop_loop *cl)
{
	if (cl == NULL)
		return;
	curl_multi_cleanup(cl->multi);
	while (cl->socks != NULL)
		sock_free(cl, cl->socks);
	while (cl->n_pool > 0)
		curl_easy_cleanup(cl->pool[--cl->n_pool]);
	for (size_t i = 0; i < cl->n_buckets; i++)
		while (cl->dests[i] != NULL) {
			struct dest *d = cl->dests[i];

			cl->dests[i] = d->next;
			free(d);
		}
	free(cl->dests);
	if (cl->timer != NULL)
		cl->host->timer_free(cl->timer);
	free(cl);
}

int
curlloop_loop_add(struct curlloop_loop *cl, struct curlloop_xfer *x)
{
	if (cl->timer == NULL &&
	    (cl->timer = cl->host->timer_new(cl->host, timer_cb, cl)) == NULL)
		return WP_ENOMEM;
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)(void *)x);
	if (curl_multi_add_handle(cl->multi, x->easy) != CURLM_OK)
		return WP_EIO;
	x->in_multi = 1;
	cl->n_running++;
	bound_cache(cl);
	return 0;
}

void
curlloop_loop_remove(struct curlloop_loop *cl, struct curlloop_xfer *x)
{
	if (x == NULL || !x->in_multi)
		return;
	curl_multi_remove_handle(cl->multi, x->easy);
	x->in_multi = 0;
	cl->n_running--;
	bound_cache(cl);
}

/* CURLOPT_HEADERFUNCTION: count and bound the response headers. */
static size_t
header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct curlloop_xfer *x = arg;

	(void)p;
	x->got_header = 1;
	x->header_bytes += n;
	if (x->header_bytes > CURLLOOP_MAX_HEADER) {
		x->header_overflow = 1;
		return 0;
	}
	return size * n;
}

static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct curlloop_xfer *x = arg;

	(void)size;
	if (n == 0)
		return 0;
	x->got_body = 1;
	if (x->body == NULL || x->body(x, p, n) != 0) {
		x->stopped = 1;
		return 0;
	}
	return n;
}

void
curlloop_release(struct curlloop_loop *cl, struct curlloop_xfer *x)
{
	if (x->easy == NULL)
		return;
	curlloop_loop_remove(cl, x);
	if (cl->n_pool < POOL_MAX) {
		/* Forget every option now: none may point at the caller's
		 * memory (URL copy aside, headers and buffers are borrowed). */
		curl_easy_reset(x->easy);
		cl->pool[cl->n_pool++] = x->easy;
	} else {
		curl_easy_cleanup(x->easy);
	}
	x->easy = NULL;
}

int
curlloop_setup(struct curlloop_loop *cl, struct curlloop_xfer *x,
    const char *url, struct curl_slist *headers, int verify_tls,
    unsigned conn, int64_t budget_us)
{
	CURL *e;
	long total;
	int bad = 0;

	if (cl->n_pool > 0)
		e = cl->pool[--cl->n_pool];
	else if ((e = curl_easy_init()) == NULL)
		return WP_ENOMEM;
	if (budget_us < 1000)
		budget_us = 1000;
	total = budget_us > 86400000000LL ? 86400000L :
	    (long)(budget_us / 1000) + 1000;
	x->errbuf[0] = '\0';
	x->fd = -1;
	if (url != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK;
	if (!cl->env_proxy) {
		/* No proxy in the environment: say so (a caller's own proxy
		 * option, set after this, still wins). */
		bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_NOPROXY, "") != CURLE_OK;
	}
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT,
	    "watchpost/" PACKAGE_VERSION) != CURLE_OK;
	/* Unless told otherwise, a transfer measures a connection of its
	 * own, and closes it. */
	bad |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT,
	    (conn & CURLLOOP_REUSE) ? 0L : 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE,
	    (conn & CURLLOOP_KEEP) ? 0L : 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER,
	    verify_tls ? 1L : 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST,
	    verify_tls ? 2L : 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, total) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) !=
	    CURLE_OK;
	if (headers != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers) !=
		    CURLE_OK;
	x->easy = e;
	if (bad) {
		curlloop_release(cl, x);
		return WP_EINVAL;
	}
	return 0;
}

/* A curl phase time in us, or -1 when the phase was not reached. */
static int64_t
phase_us(CURL *e, CURLINFO what)
{
	curl_off_t us = 0;

	if (curl_easy_getinfo(e, what, &us) != CURLE_OK || us <= 0)
		return -1;
	return (int64_t)us;
}

void
curlloop_timings(struct curlloop_xfer *x, struct wp_result *res)
{
	res->latency_us = phase_us(x->easy, CURLINFO_TOTAL_TIME_T);
	res->dns_us = phase_us(x->easy, CURLINFO_NAMELOOKUP_TIME_T);
	res->connect_us = phase_us(x->easy, CURLINFO_CONNECT_TIME_T);
	res->tls_us = phase_us(x->easy, CURLINFO_APPCONNECT_TIME_T);
	res->first_byte_us = phase_us(x->easy, CURLINFO_STARTTRANSFER_TIME_T);
}

static int
is_https(CURL *e)
{
	char *scheme = NULL;

	if (curl_easy_getinfo(e, CURLINFO_SCHEME, &scheme) != CURLE_OK ||
	    scheme == NULL)
		return 0;
	return strcasecmp(scheme, "https") == 0;
}

/* 1 if the transfer's socket is connected. */
static int
tcp_connected(struct curlloop_xfer *x)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return x->fd >= 0 &&
	    getpeername(x->fd, (struct sockaddr *)&ss, &len) == 0;
}

const char *
curlloop_phase(struct curlloop_xfer *x)
{
	if (x->got_body)
		return "reading body";
	if (x->got_header)
		return "reading headers";
	if (phase_us(x->easy, CURLINFO_NAMELOOKUP_TIME_T) < 0)
		return "resolving the host name";
	/* libcurl 7.88 records the connect time only once TLS is up too:
	 * whether TCP is connected, the socket says. */
	if (phase_us(x->easy, CURLINFO_CONNECT_TIME_T) < 0 &&
	    !tcp_connected(x))
		return "during connect";
	if (is_https(x->easy) &&
	    phase_us(x->easy, CURLINFO_APPCONNECT_TIME_T) < 0)
		return "during TLS handshake";
	return "waiting for first byte";
}

/* The connect failure named by the socket error curl saw. */
static void
connect_failure(CURL *e, struct wp_result *res, char *buf, size_t len)
{
	long err = 0;

	curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &err);
	switch (err) {
	case ECONNREFUSED:
		res->reason = WP_REASON_REFUSED;
		snprintf(buf, len, "connection refused");
		break;
	case ENETUNREACH:
		res->reason = WP_REASON_UNREACHABLE;
		snprintf(buf, len, "network unreachable");
		break;
	case EHOSTUNREACH:
		res->reason = WP_REASON_UNREACHABLE;
		snprintf(buf, len, "host unreachable");
		break;
	case ETIMEDOUT:
		res->reason = WP_REASON_CONNECT;
		snprintf(buf, len, "connect timed out");
		break;
	default:
		res->reason = WP_REASON_CONNECT;
		if (err != 0)
			snprintf(buf, len, "connect failed: %s",
			    strerror((int)err));
		else
			snprintf(buf, len, "connect failed");
		break;
	}
}

/*
 * How each failed transfer is reported: one row per libcurl code a server
 * (or the path to it) can provoke, with its reason and the start of its
 * message; KIND says what the message adds.  A code not listed is this
 * side's failure (a bad option, a missing feature, memory): reason plugin.
 * tests/test-http.c (test_hostile) provokes the rows against a hostile
 * server and checks reason and message.
 */
enum fail_kind {
	FK_TEXT,      /* the text alone */
	FK_CONNECT,   /* named by the socket error (connect_failure) */
	FK_PHASE,     /* "TEXT PHASE": "timed out reading body" */
	FK_VERIFY,    /* "TEXT: what OpenSSL said was wrong" */
	FK_SOCKET,    /* "TEXT (PHASE): socket error"; chunk errors: protocol */
	FK_REDIRECT,  /* TEXT after a 3xx answer; else a bad status line
			 * (libcurl: unsupported protocol) or this side's */
	FK_CUT,       /* how much of the body came before the close */
	FK_LINE,      /* libcurl's "out of memory" for an over-long line */
	FK_CURL,      /* "TEXT: libcurl's description" */
};

static const struct {
	CURLcode rc;
	int reason;
	enum fail_kind kind;
	const char *text;
} failures[] = {
	{ CURLE_COULDNT_RESOLVE_HOST, WP_REASON_DNS, FK_TEXT,
	    "could not resolve the host name" },
	{ CURLE_COULDNT_RESOLVE_PROXY, WP_REASON_DNS, FK_TEXT,
	    "could not resolve the proxy's host name" },
	{ CURLE_COULDNT_CONNECT, WP_REASON_CONNECT, FK_CONNECT, NULL },
	{ CURLE_PROXY, WP_REASON_CONNECT, FK_TEXT, "proxy handshake failed" },
	{ CURLE_OPERATION_TIMEDOUT, WP_REASON_TIMEOUT, FK_PHASE, "timed out" },
	{ CURLE_PEER_FAILED_VERIFICATION, WP_REASON_TLS, FK_VERIFY,
	    "TLS certificate verification failed" },
	{ CURLE_SSL_INVALIDCERTSTATUS, WP_REASON_TLS, FK_VERIFY,
	    "TLS certificate status (OCSP) check failed" },
	{ CURLE_SSL_ISSUER_ERROR, WP_REASON_TLS, FK_VERIFY,
	    "TLS certificate issuer check failed" },
	{ CURLE_SSL_PINNEDPUBKEYNOTMATCH, WP_REASON_TLS, FK_TEXT,
	    "TLS public key does not match the pinned key" },
	{ CURLE_SSL_CACERT_BADFILE, WP_REASON_TLS, FK_TEXT,
	    "TLS certificate verification failed: cannot load the CA "
	    "certificates" },
	{ CURLE_SSL_CRL_BADFILE, WP_REASON_TLS, FK_TEXT,
	    "TLS certificate verification failed: cannot load the CRL" },
	{ CURLE_SSL_CONNECT_ERROR, WP_REASON_TLS, FK_TEXT,
	    "TLS handshake failed" },
	{ CURLE_SSL_CIPHER, WP_REASON_TLS, FK_TEXT,
	    "TLS handshake failed: no usable cipher" },
	{ CURLE_SSL_CERTPROBLEM, WP_REASON_TLS, FK_TEXT,
	    "TLS handshake failed: problem with the client certificate" },
	{ CURLE_SSL_CLIENTCERT, WP_REASON_TLS, FK_TEXT,
	    "TLS handshake failed: the server requires a client "
	    "certificate" },
	{ CURLE_USE_SSL_FAILED, WP_REASON_TLS, FK_TEXT,
	    "TLS handshake failed" },
	{ CURLE_SSL_SHUTDOWN_FAILED, WP_REASON_TLS, FK_TEXT,
	    "TLS shutdown failed" },
	{ CURLE_TOO_MANY_REDIRECTS, WP_REASON_PROTOCOL, FK_TEXT,
	    "redirect loop: too many redirects" },
	{ CURLE_UNSUPPORTED_PROTOCOL, WP_REASON_PROTOCOL, FK_REDIRECT,
	    "redirect to a scheme other than http/https" },
	{ CURLE_URL_MALFORMAT, WP_REASON_PROTOCOL, FK_REDIRECT,
	    "redirect to a URL that does not parse" },
	{ CURLE_WEIRD_SERVER_REPLY, WP_REASON_PROTOCOL, FK_CURL,
	    "malformed response" },
	{ CURLE_BAD_CONTENT_ENCODING, WP_REASON_PROTOCOL, FK_CURL,
	    "malformed response" },
	{ CURLE_HTTP2, WP_REASON_PROTOCOL, FK_CURL, "malformed response" },
	{ CURLE_HTTP2_STREAM, WP_REASON_PROTOCOL, FK_CURL,
	    "malformed response" },
	{ CURLE_HTTP3, WP_REASON_PROTOCOL, FK_CURL, "malformed response" },
	{ CURLE_OUT_OF_MEMORY, WP_REASON_PROTOCOL, FK_LINE,
	    "malformed response: a header line longer than" },
	{ CURLE_GOT_NOTHING, WP_REASON_IO, FK_TEXT,
	    "empty reply: the connection closed before any response" },
	{ CURLE_RECV_ERROR, WP_REASON_IO, FK_SOCKET, "receive failed" },
	{ CURLE_SEND_ERROR, WP_REASON_IO, FK_SOCKET, "send failed" },
	{ CURLE_SEND_FAIL_REWIND, WP_REASON_IO, FK_PHASE, "send failed" },
	{ CURLE_PARTIAL_FILE, WP_REASON_IO, FK_CUT, "response cut off" },
};

/* S into BUF[LEN], control bytes as '?': libcurl's texts may quote bytes
 * the server sent. */
static void
copy_clean(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < len && s[i] != '\0'; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' :
		    s[i];
	if (len > 0)
		buf[i] = '\0';
}

/* libcurl's own text for the failure: its error buffer (cleaned), else
 * the code's description. */
static void
curl_text(struct curlloop_xfer *x, CURLcode rc, char *buf, size_t len)
{
	copy_clean(buf, len, x->errbuf[0] != '\0' ? x->errbuf :
	    curl_easy_strerror(rc));
}

/* The response had begun: a status line or any byte of it arrived. */
static int
response_begun(struct curlloop_xfer *x)
{
	return x->got_header ||
	    phase_us(x->easy, CURLINFO_STARTTRANSFER_TIME_T) >= 0;
}

void
curlloop_failure(struct curlloop_xfer *x, CURLcode rc, struct wp_result *res,
    char *buf, size_t len)
{
	static const char verify_prefix[] = "SSL certificate problem: ";
	char why[CURL_ERROR_SIZE];
	const char *p;
	curl_off_t got = 0, want = -1;
	long code = 0;
	size_t i;

	res->detail = buf;
	if (x->header_overflow) {
		res->reason = WP_REASON_PROTOCOL;
		snprintf(buf, len, "response headers larger than "
		    "%d bytes", CURLLOOP_MAX_HEADER);
		return;
	}
	for (i = 0; i < sizeof(failures) / sizeof(failures[0]); i++)
		if (failures[i].rc == rc)
			break;
	if (i == sizeof(failures) / sizeof(failures[0])) {
		res->reason = WP_REASON_PLUGIN;
		snprintf(buf, len, "libcurl failed: %s",
		    curl_easy_strerror(rc));
		return;
	}
	res->reason = failures[i].reason;
	switch (failures[i].kind) {
	case FK_TEXT:
		snprintf(buf, len, "%s", failures[i].text);
		break;
	case FK_CONNECT:
		connect_failure(x->easy, res, buf, len);
		break;
	case FK_PHASE:
		snprintf(buf, len, "%s %s", failures[i].text,
		    curlloop_phase(x));
		break;
	case FK_VERIFY:
		/* OpenSSL's verify text names the problem, never the host. */
		if (strncmp(x->errbuf, verify_prefix,
		    sizeof(verify_prefix) - 1) == 0) {
			copy_clean(why, sizeof(why),
			    x->errbuf + sizeof(verify_prefix) - 1);
			snprintf(buf, len, "%s: %s", failures[i].text, why);
		} else
			snprintf(buf, len, "%s", failures[i].text);
		break;
	case FK_SOCKET:
		/* libcurl names a socket error "Recv failure: TEXT" (or
		 * "Send failure: "); an invalid chunk is a receive error
		 * too, but the bytes arrived: the response is malformed. */
		if (strstr(x->errbuf, "chunk") != NULL) {
			res->reason = WP_REASON_PROTOCOL;
			curl_text(x, rc, why, sizeof(why));
			snprintf(buf, len, "malformed response: %s", why);
			break;
		}
		p = strstr(x->errbuf, "failure: ");
		copy_clean(why, sizeof(why), p != NULL ? p + 9 : x->errbuf);
		snprintf(buf, len, "%s (%s)%s%s", failures[i].text,
		    curlloop_phase(x), why[0] != '\0' ? ": " : "", why);
		break;
	case FK_REDIRECT:
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 300 && code < 400)
			snprintf(buf, len, "%s", failures[i].text);
		else if (rc == CURLE_UNSUPPORTED_PROTOCOL && response_begun(x))
			/* HTTP/0.9 or a status line libcurl cannot read. */
			snprintf(buf, len, "malformed response: no valid HTTP "
			    "status line");
		else {
			res->reason = WP_REASON_PLUGIN;
			snprintf(buf, len, "libcurl failed: %s",
			    curl_easy_strerror(rc));
		}
		break;
	case FK_CUT:
		curl_easy_getinfo(x->easy, CURLINFO_SIZE_DOWNLOAD_T, &got);
		curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
		    &want);
		if (want >= 0)
			snprintf(buf, len, "%s: the connection closed after %"
			    CURL_FORMAT_CURL_OFF_T " of %" CURL_FORMAT_CURL_OFF_T
			    " body bytes", failures[i].text, got, want);
		else
			snprintf(buf, len, "%s: the connection closed after %"
			    CURL_FORMAT_CURL_OFF_T " body bytes, before the "
			    "body's end", failures[i].text, got);
		break;
	case FK_LINE:
		/* libcurl gives up on a header line over CURL_MAX_HTTP_HEADER
		 * with CURLE_OUT_OF_MEMORY; before any response it is memory. */
		if (response_begun(x))
			snprintf(buf, len, "%s %d bytes", failures[i].text,
			    CURL_MAX_HTTP_HEADER);
		else {
			res->reason = WP_REASON_PLUGIN;
			snprintf(buf, len, "out of memory");
		}
		break;
	case FK_CURL:
		curl_text(x, rc, why, sizeof(why));
		snprintf(buf, len, "%s: %s", failures[i].text, why);
		break;
	}
}

/* RFC 9110 token characters. */
static int
is_tchar(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

const char *
curlloop_check_header(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!is_tchar(*p))
		return "must be \"Name: value\" with a valid name";
	while (is_tchar(*p))
		p++;
	if (*p != ':')
		return "must be \"Name: value\" with a valid name";
	for (p++; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return "the value must not contain control "
			    "characters";
	return NULL;
}

int
curlloop_plugin_init(const struct wp_host *host, void **state)
{
	struct curlloop_plugin *st;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return WP_EIO;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		goto fail;
	st->host = host;
	if ((st->cl = curlloop_loop_new(host)) == NULL)
		goto fail;
	*state = st;
	return 0;
fail:
	free(st);
	curl_global_cleanup();
	return WP_ENOMEM;
}

void
curlloop_plugin_fini(void *state)
{
	struct curlloop_plugin *st = state;

	if (st == NULL)
		return;
	curlloop_loop_free(st->cl);
	free(st);
	curl_global_cleanup();
}

void
curlloop_cancel_result(struct curlloop_plugin *st, struct curlloop_xfer *x,
    int64_t started_us, char *detail, size_t len, struct wp_result *res)
{
	curlloop_timings(x, res);
	snprintf(detail, len, "timed out %s", curlloop_phase(x));
	curlloop_loop_remove(st->cl, x);
	res->reason = WP_REASON_TIMEOUT;
	res->detail = detail;
	res->latency_us = st->host->now_us() - started_us;
}

/*
 * A CA file (http's and tls's ca_file) must be readable and hold a PEM
 * certificate: judged at -t, not by the first check.  NULL, or a message
 * in BUF.
 */
const char *
curlloop_check_pem(const char *path, char *buf, size_t len)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	char line[256];
	FILE *f;
	int found = 0, n = 0;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(buf, len, "cannot read %s: %s", path, strerror(errno));
		return buf;
	}
	/* A bundle may start with comments; a certificate is near the top
	 * of any real one. */
	while (!found && n++ < 100000 && fgets(line, sizeof(line), f) != NULL)
		found = strncmp(line, begin, sizeof(begin) - 1) == 0;
	fclose(f);
	if (found)
		return NULL;
	snprintf(buf, len, "%s holds no PEM certificate (%s)", path, begin);
	return buf;
}
