/*
 * tcp.so -- the "tcp" check: can a TCP connection to host:port be opened,
 * and (with send / expect / tls) does the service behind it talk?
 *
 * Asynchronous form only.  start() resolves the name through host->resolve
 * (numeric addresses are parsed once at configure() and skip the resolver),
 * then tries the addresses in order with non-blocking connects watched for
 * writability on the host loop.  When more than one address remains, each
 * attempt gets an equal share of the time left before the deadline so a
 * silent first address does not starve the others.
 *
 * Once connected, the conversation, all on the same watch:
 *   tls = true   a TLS handshake (OpenSSL, non-blocking: SSL_connect's
 *                WANT_READ / WANT_WRITE become the watch's events), the
 *                certificate verified against the system's CAs or ca_file
 *                and the host name, unless verify_tls = false;
 *   send         the bytes (C escapes \r \n \t \\ \xHH decoded at
 *                configure()) written, over TLS when tls is on;
 *   expect       what the server says is read until the text appears in
 *                it (up), the server closes, TCP_READ_MAX bytes arrived
 *                without it, or the host's deadline (down, reason keyword
 *                or timeout).
 * latency_us is the time of the successful connect alone, or with a
 * conversation from the connect's start to its last step; connect_us and
 * tls_us are the phases.
 *
 * Every operation owns one struct tcp_op; it is freed, and its socket,
 * TLS session, watch, timer and pending resolution released, exactly when
 * the operation is completed (tcp_finish()).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <watchpost/plugin.h>

#include "addr.h"

#define TCP_MAX_ADDRS 16
#define TCP_READ_MAX (64 * 1024) /* bytes read looking for `expect` */
#define TCP_SEND_MAX 4096        /* bytes of `send`, decoded */

struct tcp_state {
	const struct wp_host *host;
	SSL_CTX *ctx;            /* the system's CAs; made on first use */
};

/* The keys, as the host parsed them (tcp_keys). */
struct tcp_conf {
	const char *host;
	int64_t port;
	const char *send;
	const char *expect;
	int tls;
	int verify_tls;
	const char *ca_file;
};

struct tcp_inst {
	struct tcp_state *st;
	const struct tcp_conf *c;
	const char *host;        /* borrowed from the conf (see plugin.h) */
	char port[8];
	int numeric;             /* host is a literal address: addr is set */
	struct addr addr;
	char *send;              /* decoded `send`; NULL none */
	size_t send_len;
	SSL_CTX *ctx;            /* ca_file's own context; NULL: st->ctx */
};

/* Where a connected operation is. */
enum tcp_phase { PH_CONNECT, PH_TLS, PH_SEND, PH_EXPECT };

struct tcp_op {
	struct tcp_inst *inst;
	const struct wp_host *h;
	struct wp_op *op;
	char *detail;            /* req->detail */
	size_t detail_size;
	int64_t started_us;
	int64_t deadline_us;
	struct wp_resolve *resolve;
	struct addr addrs[TCP_MAX_ADDRS];
	size_t n_addrs;
	size_t cur;
	int fd;
	struct wp_watch *watch;
	struct wp_timer *timer;  /* per-address share of the deadline */
	int64_t connect_us;      /* when the current attempt began */
	int64_t dns_us;
	int last_err;            /* errno of the last failed attempt */
	char last_addr[INET6_ADDRSTRLEN + 8];
	/* The conversation, once connected. */
	enum tcp_phase phase;
	int64_t connected_us;    /* when the connect succeeded */
	int64_t tls_done_us;
	SSL *ssl;
	size_t sent;
	char *buf;               /* what the server said, NUL-terminated */
	size_t got;
};

static const struct wp_key tcp_keys[] = {
	{ WP_KEY(WP_KT_HOST, "host", struct tcp_conf, host),
	    .flags = WP_KEY_REQUIRED, .help = "name or address to connect to" },
	{ WP_KEY(WP_KT_INT, "port", struct tcp_conf, port),
	    .flags = WP_KEY_REQUIRED, .min = 1, .max = 65535,
	    .help = "TCP port, 1-65535" },
	{ WP_KEY(WP_KT_STRING, "send", struct tcp_conf, send),
	    .help = "bytes to send once connected (escapes \\r \\n \\t "
	    "\\\\ \\xHH)" },
	{ WP_KEY(WP_KT_STRING, "expect", struct tcp_conf, expect),
	    .help = "text the server must say (first 64 KiB), after send" },
	{ WP_KEY(WP_KT_BOOL, "tls", struct tcp_conf, tls), .def = "false",
	    .help = "speak TLS once connected (false)" },
	{ WP_KEY(WP_KT_BOOL, "verify_tls", struct tcp_conf, verify_tls),
	    .def = "true",
	    .help = "with tls: verify the certificate and name (true)" },
	{ WP_KEY(WP_KT_PATH, "ca_file", struct tcp_conf, ca_file),
	    .help = "with tls: PEM CA certificates to trust besides the "
	    "system's" },
};

static void tcp_try_next(struct tcp_op *o);

static int
tcp_init(const struct wp_host *host, void **state)
{
	struct tcp_state *st;

	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return WP_ENOMEM;
	st->host = host;
	*state = st;
	return WP_OK;
}

static void
tcp_fini(void *state)
{
	struct tcp_state *st = state;

	SSL_CTX_free(st->ctx);
	free(st);
}

static void
tcp_release(void *state, void *inst)
{
	struct tcp_inst *in = inst;

	(void)state;
	if (in == NULL)
		return;
	SSL_CTX_free(in->ctx);
	free(in->send);
	free(in);
}

/* A client context trusting the system's CAs, plus CA_FILE when set.
 * NULL with a message in WHY. */
static SSL_CTX *
tls_context(const char *ca_file, char *why, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL || SSL_CTX_set_default_verify_paths(ctx) != 1 ||
	    (ca_file != NULL &&
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)) {
		snprintf(why, len, "%s%s", ca_file != NULL ? "no PEM CA "
		    "certificate could be read: " : "",
		    ERR_reason_error_string(ERR_peek_last_error()) ?
		    ERR_reason_error_string(ERR_peek_last_error()) :
		    "cannot set up TLS");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	return ctx;
}

/*
 * `send` with its escapes decoded into a new buffer (*out, *len).  NULL,
 * or a message about what is wrong.
 */
static const char *
decode_send(const char *s, char **out, size_t *len)
{
	char *b = malloc(strlen(s) + 1);
	size_t n = 0;
	unsigned v;

	*out = NULL;
	if (b == NULL)
		return "out of memory";
	for (; *s != '\0'; s++) {
		if (*s != '\\') {
			b[n++] = *s;
			continue;
		}
		switch (*++s) {
		case 'r': b[n++] = '\r'; break;
		case 'n': b[n++] = '\n'; break;
		case 't': b[n++] = '\t'; break;
		case '\\': b[n++] = '\\'; break;
		case 'x':
			if (sscanf(s + 1, "%2x", &v) != 1 ||
			    !isxdigit((unsigned char)s[1])) {
				free(b);
				return "\\x needs two hex digits";
			}
			b[n++] = (char)v;
			s += isxdigit((unsigned char)s[2]) ? 2 : 1;
			break;
		default:
			free(b);
			return "unknown escape (use \\r \\n \\t \\\\ or "
			    "\\xHH)";
		}
	}
	if (n == 0 || n > TCP_SEND_MAX) {
		free(b);
		return n == 0 ? "is empty" : "is longer than 4096 bytes";
	}
	*out = b;
	*len = n;
	return NULL;
}

/* The host checked the keys' types; judge send, expect and the TLS
 * keys. */
static int
tcp_configure(void *state, const struct wp_section *sec, const void *conf,
    void **inst)
{
	struct tcp_state *st = state;
	const struct tcp_conf *c = conf;
	struct tcp_inst *in;
	const char *why;
	char msg[256];
	int bad = 0;

	*inst = NULL;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	in->c = c;
	in->host = c->host;
	snprintf(in->port, sizeof(in->port), "%d", (int)c->port);
	in->numeric = addr_numeric(in->host, in->port, &in->addr);
	if (c->send != NULL &&
	    (why = decode_send(c->send, &in->send, &in->send_len)) != NULL) {
		st->host->config_error(sec, "send", "%s", why);
		bad = 1;
	}
	if (c->expect != NULL && (c->expect[0] == '\0' ||
	    strlen(c->expect) > 1024)) {
		st->host->config_error(sec, "expect", "must be 1 to 1024 "
		    "bytes");
		bad = 1;
	}
	if (!c->tls && c->ca_file != NULL) {
		st->host->config_error(sec, "ca_file", "needs tls = true");
		bad = 1;
	}
	if (c->tls && c->ca_file != NULL &&
	    (in->ctx = tls_context(c->ca_file, msg, sizeof(msg))) == NULL) {
		st->host->config_error(sec, "ca_file", "%s: %s", c->ca_file,
		    msg);
		bad = 1;
	}
	if (bad) {
		tcp_release(st, in);
		return WP_EINVAL;
	}
	*inst = in;
	return WP_OK;
}

/* Close the current attempt's socket, watch and timer; keeps the op. */
static void
tcp_close_attempt(struct tcp_op *o)
{
	if (o->watch != NULL) {
		o->h->unwatch(o->watch);
		o->watch = NULL;
	}
	if (o->timer != NULL) {
		o->h->timer_free(o->timer);
		o->timer = NULL;
	}
	if (o->ssl != NULL) {
		SSL_free(o->ssl);
		o->ssl = NULL;
	}
	if (o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
}

/*
 * Complete the operation with REASON and free everything it holds.  After
 * this call `o` is gone.  FMT is a printf format for the detail (written
 * into the request's buffer), or NULL when up.
 */
static void
tcp_finish(struct tcp_op *o, int reason, const char *fmt, ...)
    WP_PRINTF(3, 4);

static void
tcp_finish(struct tcp_op *o, int reason, const char *fmt, ...)
{
	struct wp_result res = WP_RESULT_INIT;
	va_list ap;
	int64_t now = o->h->now_us();

	if (o->resolve != NULL) {
		o->h->resolve_cancel(o->resolve);
		o->resolve = NULL;
	}
	res.reason = reason;
	res.dns_us = o->dns_us;
	if (o->connected_us > 0) {
		res.connect_us = o->connected_us - o->started_us;
		if (o->tls_done_us > 0)
			res.tls_us = o->tls_done_us - o->started_us;
	}
	/* Without a conversation the check ends at the connect: one clock
	 * reading for both, so latency never exceeds the connect phase. */
	if (reason == WP_REASON_OK)
		res.latency_us = (o->phase == PH_CONNECT && o->connected_us > 0 ?
		    o->connected_us : now) - o->connect_us;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(o->detail, o->detail_size, fmt, ap);
		va_end(ap);
		res.detail = o->detail;
	}
	tcp_close_attempt(o);
	o->h->complete(o->op, &res);
	free(o->buf);
	free(o);
}

static void
format_addr(const struct addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&a->ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)&a->ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

/* All addresses failed: report the last failure. */
static void
tcp_fail(struct tcp_op *o)
{
	int e = o->last_err;
	const char *what = o->last_addr;

	switch (e) {
	case ECONNREFUSED:
		tcp_finish(o, WP_REASON_REFUSED, "connection refused by %s",
		    what);
		break;
	case EHOSTUNREACH:
	case ENETUNREACH:
		tcp_finish(o, WP_REASON_UNREACHABLE, "%s: %s", what,
		    strerror(e));
		break;
	case ETIMEDOUT:
		tcp_finish(o, WP_REASON_TIMEOUT, "%s: %s", what,
		    strerror(e));
		break;
	default:
		tcp_finish(o, WP_REASON_CONNECT, "%s: %s", what,
		    e ? strerror(e) : "connect failed");
		break;
	}
}

static void
tcp_attempt_failed(struct tcp_op *o, int err)
{
	o->last_err = err;
	format_addr(&o->addrs[o->cur], o->last_addr, sizeof(o->last_addr));
	tcp_close_attempt(o);
	o->cur++;
	tcp_try_next(o);
}

/* TEXT[0..N) for a message: printable ASCII kept, the rest as '.', at
 * most 60 bytes. */
static const char *
shown(const char *text, size_t n, char *buf, size_t len)
{
	size_t i, m = n < 60 ? n : 60;

	if (m >= len)
		m = len - 1;
	for (i = 0; i < m; i++)
		buf[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '.';
	buf[m] = '\0';
	return buf;
}

/* The handshake failed: say why, in OpenSSL's words. */
static void
tcp_tls_failed(struct tcp_op *o)
{
	const struct tcp_inst *in = o->inst;
	unsigned long e = ERR_get_error();
	long v = SSL_get_verify_result(o->ssl);
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	if (in->c->verify_tls && v != X509_V_OK) {
		if (v == X509_V_ERR_HOSTNAME_MISMATCH ||
		    v == X509_V_ERR_IP_ADDRESS_MISMATCH)
			tcp_finish(o, WP_REASON_TLS, "certificate does not match "
			    "the name %s", in->host);
		else
			tcp_finish(o, WP_REASON_TLS, "certificate verification "
			    "failed: %s", X509_verify_cert_error_string(v));
		return;
	}
	tcp_finish(o, WP_REASON_TLS, "TLS handshake failed: %s",
	    r != NULL ? r : "the server closed the connection");
}

/*
 * One step of I/O on the TLS session or the socket: N > 0 bytes moved, 0
 * the peer closed, -1 wait for the events in *want, -2 failed (errno, or
 * OpenSSL's queue).
 */
static int
tcp_io_result(struct tcp_op *o, int n, unsigned *want)
{
	if (o->ssl == NULL) {
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return -1;
		return -2;
	}
	if (n > 0)
		return n;
	switch (SSL_get_error(o->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		*want = WP_READABLE;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want = WP_WRITABLE;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		/* An EOF without close_notify counts as the peer closing. */
		if (ERR_peek_error() == 0 || ERR_GET_REASON(ERR_peek_error()) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return 0;
		}
		return -2;
	}
}

/* Move the conversation on as far as it goes without blocking. */
static void
tcp_converse(struct tcp_op *o)
{
	const struct tcp_inst *in = o->inst;
	const char *expect = in->c->expect;
	unsigned want;
	char seen[64];
	int n;

	for (;;) {
		want = o->phase == PH_SEND ? WP_WRITABLE : WP_READABLE;
		switch (o->phase) {
		case PH_CONNECT:
			return;
		case PH_TLS:
			if ((n = SSL_connect(o->ssl)) != 1) {
				if (tcp_io_result(o, n, &want) == -1)
					break;
				tcp_tls_failed(o);
				return;
			}
			o->tls_done_us = o->h->now_us();
			o->phase = in->send ? PH_SEND : PH_EXPECT;
			if (in->send == NULL && expect == NULL) {
				tcp_finish(o, WP_REASON_OK, NULL);
				return;
			}
			continue;
		case PH_SEND:
			n = o->ssl != NULL ? SSL_write(o->ssl, in->send +
			    o->sent, (int)(in->send_len - o->sent)) :
			    (int)send(o->fd, in->send + o->sent, in->send_len -
			    o->sent, MSG_NOSIGNAL);
			n = tcp_io_result(o, n, &want);
			if (n == -1)
				break;
			if (n <= 0) {
				tcp_finish(o, WP_REASON_IO, "send failed: %s",
				    n == 0 || o->ssl != NULL ?
				    "the server closed the connection" :
				    strerror(errno));
				return;
			}
			if ((o->sent += (size_t)n) < in->send_len)
				continue;
			if (expect == NULL) {
				tcp_finish(o, WP_REASON_OK, NULL);
				return;
			}
			o->phase = PH_EXPECT;
			continue;
		case PH_EXPECT:
			if (o->buf == NULL &&
			    (o->buf = malloc(TCP_READ_MAX + 1)) == NULL) {
				tcp_finish(o, WP_REASON_PLUGIN, "out of memory");
				return;
			}
			n = o->ssl != NULL ? SSL_read(o->ssl, o->buf + o->got,
			    (int)(TCP_READ_MAX - o->got)) :
			    (int)recv(o->fd, o->buf + o->got, TCP_READ_MAX -
			    o->got, 0);
			n = tcp_io_result(o, n, &want);
			if (n == -1)
				break;
			if (n == -2) {
				tcp_finish(o, WP_REASON_IO, "receive failed: %s",
				    o->ssl != NULL ? "TLS error" :
				    strerror(errno));
				return;
			}
			if (n == 0) {
				tcp_finish(o, WP_REASON_KEYWORD, "the server "
				    "closed the connection after %zu bytes "
				    "without \"%s\"%s%s", o->got, expect,
				    o->got ? "; it said: " : "",
				    shown(o->buf, o->got, seen, sizeof(seen)));
				return;
			}
			o->got += (size_t)n;
			o->buf[o->got] = '\0';
			if (memmem(o->buf, o->got, expect, strlen(expect)) !=
			    NULL) {
				tcp_finish(o, WP_REASON_OK, NULL);
				return;
			}
			if (o->got == TCP_READ_MAX) {
				tcp_finish(o, WP_REASON_KEYWORD, "no \"%s\" in "
				    "the first %d bytes", expect, TCP_READ_MAX);
				return;
			}
			continue;
		}
		o->h->watch_set(o->watch, want);
		return;
	}
}

/* Connected: begin the conversation, or finish when there is none. */
static void
tcp_connected(struct tcp_op *o)
{
	struct tcp_inst *in = o->inst;
	struct tcp_state *st = in->st;
	SSL_CTX *ctx;
	char why[256];

	o->connected_us = o->h->now_us();
	if (o->timer != NULL) {
		/* The per-address share no longer applies: the host's
		 * deadline bounds the conversation. */
		o->h->timer_free(o->timer);
		o->timer = NULL;
	}
	if (!in->c->tls && in->send == NULL && in->c->expect == NULL) {
		tcp_finish(o, WP_REASON_OK, NULL);
		return;
	}
	o->phase = in->c->tls ? PH_TLS : in->send ? PH_SEND : PH_EXPECT;
	if (in->c->tls) {
		if (in->ctx == NULL && st->ctx == NULL &&
		    (st->ctx = tls_context(NULL, why, sizeof(why))) == NULL) {
			tcp_finish(o, WP_REASON_PLUGIN, "TLS: %s", why);
			return;
		}
		ctx = in->ctx != NULL ? in->ctx : st->ctx;
		if ((o->ssl = SSL_new(ctx)) == NULL ||
		    SSL_set_fd(o->ssl, o->fd) != 1 ||
		    (!in->numeric &&
		    SSL_set_tlsext_host_name(o->ssl, in->host) != 1) ||
		    (in->c->verify_tls && (in->numeric ?
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(o->ssl),
		    in->host) != 1 : SSL_set1_host(o->ssl, in->host) != 1))) {
			ERR_clear_error();
			tcp_finish(o, WP_REASON_PLUGIN, "cannot set up TLS");
			return;
		}
		SSL_set_verify(o->ssl, in->c->verify_tls ? SSL_VERIFY_PEER :
		    SSL_VERIFY_NONE, NULL);
	}
	tcp_converse(o);
}

/* The socket is ready: the connect finished, or the conversation may
 * move on. */
static void
tcp_ready(struct wp_watch *w, int fd, unsigned revents, void *arg)
{
	struct tcp_op *o = arg;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)w;
	(void)revents;
	if (o->phase != PH_CONNECT) {
		tcp_converse(o);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err == 0)
		tcp_connected(o);
	else
		tcp_attempt_failed(o, err);
}

/* The current address used up its share of the time: move on. */
static void
tcp_share_expired(struct wp_timer *t, void *arg)
{
	struct tcp_op *o = arg;

	(void)t;
	tcp_attempt_failed(o, ETIMEDOUT);
}

/*
 * Start a connect to addrs[cur], or to the next address that can be tried.
 * Completes the operation when none is left.
 */
static void
tcp_try_next(struct tcp_op *o)
{
	const struct wp_host *h = o->h;
	struct addr *a;
	int64_t left_us;

	for (; o->cur < o->n_addrs; o->cur++) {
		a = &o->addrs[o->cur];
		o->connect_us = h->now_us();
		o->fd = socket(a->ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (o->fd < 0) {
			o->last_err = errno;
			format_addr(a, o->last_addr, sizeof(o->last_addr));
			continue;
		}
		if (connect(o->fd, (struct sockaddr *)&a->ss, a->len) == 0) {
			o->watch = h->watch(h, o->fd, WP_WRITABLE, tcp_ready, o);
			if (o->watch == NULL) {
				tcp_finish(o, WP_REASON_PLUGIN,
				    "cannot watch the socket");
				return;
			}
			tcp_connected(o);
			return;
		}
		if (errno != EINPROGRESS) {
			o->last_err = errno;
			format_addr(a, o->last_addr, sizeof(o->last_addr));
			tcp_close_attempt(o);
			continue;
		}
		o->watch = h->watch(h, o->fd, WP_WRITABLE, tcp_ready, o);
		if (o->watch == NULL) {
			tcp_finish(o, WP_REASON_PLUGIN,
			    "cannot watch the socket");
			return;
		}
		if (o->cur + 1 < o->n_addrs) {
			left_us = o->deadline_us - o->connect_us;
			if (left_us < 0)
				left_us = 0;
			o->timer = h->timer_new(h, tcp_share_expired, o);
			if (o->timer != NULL)
				h->timer_set(o->timer, left_us /
				    (int64_t)(o->n_addrs - o->cur));
		}
		return;
	}
	tcp_fail(o);
}

static void
tcp_resolved(void *arg, int status, const char *err, const struct addrinfo *res)
{
	struct tcp_op *o = arg;
	char why[512];

	o->resolve = NULL;
	o->dns_us = o->h->now_us() - o->started_us;
	o->n_addrs = addr_take(o->inst->host, status, err, res, o->addrs,
	    TCP_MAX_ADDRS, why, sizeof(why));
	if (o->n_addrs == 0) {
		tcp_finish(o, WP_REASON_DNS, "%s", why);
		return;
	}
	tcp_try_next(o);
}

static int
tcp_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct tcp_inst *in = inst;
	const struct wp_host *h = in->st->host;
	struct addrinfo hints;
	struct tcp_op *o;

	*opstate = NULL;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return WP_ENOMEM;
	o->inst = in;
	o->h = h;
	o->op = req->op;
	o->detail = req->detail;
	o->detail_size = req->detail_size;
	o->fd = -1;
	o->started_us = req->started_us;
	o->deadline_us = req->deadline_us;
	o->dns_us = -1;
	if (in->numeric) {
		o->addrs[0] = in->addr;
		o->n_addrs = 1;
		*opstate = o;
		tcp_try_next(o);
		return WP_OK;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV;
	o->resolve = h->resolve(h, in->host, in->port, &hints, tcp_resolved, o);
	if (o->resolve == NULL) {
		free(o);
		return WP_EAGAIN;
	}
	*opstate = o;
	return WP_OK;
}

/* The deadline (or removal): stop and complete now. */
static void
tcp_cancel(void *inst, void *opstate)
{
	struct tcp_op *o = opstate;
	double secs;

	char seen[64];

	(void)inst;
	if (o == NULL)
		return;
	secs = (double)(o->deadline_us - o->started_us) / 1e6;
	switch (o->phase) {
	case PH_CONNECT:
		tcp_finish(o, WP_REASON_TIMEOUT, "no answer to connect within "
		    "%gs", secs);
		break;
	case PH_TLS:
		tcp_finish(o, WP_REASON_TIMEOUT, "TLS handshake not done within "
		    "%gs", secs);
		break;
	case PH_SEND:
		tcp_finish(o, WP_REASON_TIMEOUT, "could not send within %gs",
		    secs);
		break;
	case PH_EXPECT:
		tcp_finish(o, WP_REASON_TIMEOUT, "no \"%s\" within %gs "
		    "(%zu bytes came%s%s)", o->inst->c->expect, secs, o->got,
		    o->got ? ": " : "", shown(o->buf, o->got, seen,
		    sizeof(seen)));
		break;
	}
}

WP_CHECK_PLUGIN(tcp,
    .version = "1.0",
    .description = "TCP check: connect, optionally TLS, send and expect",
    WP_KEYS(tcp_keys, struct tcp_conf),
    .init = tcp_init,
    .fini = tcp_fini,
    .configure = tcp_configure,
    .release = tcp_release,
    .start = tcp_start,
    .cancel = tcp_cancel)
