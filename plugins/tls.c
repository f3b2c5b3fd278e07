/*
 * tls.so -- the "tls" check: a TLS handshake with host:port, without HTTP.
 *
 * Asynchronous: libcurl does the connection and the handshake
 * (CURLOPT_CONNECT_ONLY) on the plugin's multi handle, driven by the host
 * loop (curl-loop.c), so many checks are in flight at once without a
 * thread each.  A direct TLS port is asked as https:// with ALPN off (no
 * HTTP byte is ever sent); `starttls` asks smtp://, imap://, pop3:// or
 * ftp:// with CURLUSESSL_ALL, so libcurl speaks the protocol's greeting and
 * STARTTLS (STLS, AUTH TLS) before the handshake and refuses to go on in
 * clear text.  `servername` is sent as SNI and verified, while the
 * connection goes to `host` (CURLOPT_CONNECT_TO).
 *
 * What the handshake proved is read from OpenSSL, the TLS library this
 * libcurl uses, by an info callback on the connection's SSL_CTX
 * (CURLOPT_SSL_CTX_FUNCTION) at the end of the handshake: protocol
 * version, the leaf certificate's issuer and notAfter.  An up result carries them in its
 * detail ("TLSv1.3, issuer CN=...; expires 2027-03-01 (88 days)");
 * measurements: handshake (seconds), cert_remaining (seconds until
 * notAfter).  An expired, untrusted or wrong-name certificate fails the
 * handshake: down, reason tls, with OpenSSL's own words.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <watchpost/plugin.h>

#include "curl-loop.h"

/* The starttls values, and the scheme libcurl speaks for each. */
static const char *const tls_starttls[] = { "smtp", "imap", "pop3", "ftp",
	NULL };

/* The keys, as the host parsed them (tls_keys). */
struct tls_conf {
	const char *host;
	int64_t port;
	const char *servername;
	int starttls;             /* index in tls_starttls; -1: none */
	int verify_tls;
	const char *ca_file;
};

struct tls_inst {
	struct curlloop_plugin *st;
	const struct tls_conf *c;
	char *url;                /* scheme://name:port/ */
	struct curl_slist *connect_to; /* "name:port:host:port" or NULL */
	const char *name;         /* the name verified: servername or host */
};

struct tls_op {
	struct curlloop_xfer x;   /* first: curl-loop hands it back */
	struct tls_inst *inst;
	struct wp_op *op;
	const struct wp_request *req;
	int64_t started_us;
	/* What the handshake established (tls_info), read at its end:
	 * libcurl detaches the connection before done() is called. */
	int handshake_done;
	char version[16];         /* "TLSv1.3" */
	char issuer[256];         /* "" unknown */
	int64_t not_after;        /* unix seconds; 0 unknown */
};

static void
op_free(struct tls_op *o)
{
	if (o == NULL)
		return;
	curlloop_release(o->inst->st->cl, &o->x);
	free(o);
}

/* The issuer of CERT in one line ("CN=Test CA,O=Example") into BUF. */
static void
issuer_line(X509 *cert, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;

	buf[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, X509_get_issuer_name(cert), 0,
	    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (n = BIO_get_mem_data(b, &p)) > 0)
		snprintf(buf, len, "%.*s", (int)n, p);
	BIO_free(b);
}

/* OpenSSL's info callback: at the end of the handshake, note the
 * protocol, the leaf certificate's issuer and its notAfter. */
static void
tls_info(const SSL *ssl, int where, int ret)
{
	struct tls_op *o = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const ASN1_TIME *na;
	struct tm tm;
	X509 *cert;
	time_t t;

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE) || o == NULL)
		return;
	o->handshake_done = 1;
	snprintf(o->version, sizeof(o->version), "%s", SSL_get_version(ssl));
	if ((cert = SSL_get_peer_certificate(ssl)) == NULL)
		return;
	issuer_line(cert, o->issuer, sizeof(o->issuer));
	na = X509_get0_notAfter(cert);
	if (na != NULL && ASN1_TIME_to_tm(na, &tm) == 1 &&
	    (t = timegm(&tm)) != (time_t)-1)
		o->not_after = (int64_t)t;
	X509_free(cert);
}

/* CURLOPT_SSL_CTX_FUNCTION: the connection's own SSL_CTX (libcurl makes
 * one per connection) learns which operation it serves. */
static CURLcode
tls_ctx(CURL *curl, void *sslctx, void *arg)
{
	(void)curl;
	SSL_CTX_set_app_data((SSL_CTX *)sslctx, arg);
	SSL_CTX_set_info_callback((SSL_CTX *)sslctx, tls_info);
	return CURLE_OK;
}

/* The up result: protocol and issuer in the detail, notAfter in
 * res->cert_expiry, the measurements. */
static void
tls_facts(struct tls_op *o, struct wp_result *res)
{
	const struct wp_request *req = o->req;
	struct wp_measurement *m = req->measurements;
	size_t nm = 0;
	char when[32] = "";
	struct tm tm;
	time_t t;
	double left = 0;

	if (res->tls_us >= 0 && res->connect_us >= 0 &&
	    nm < req->max_measurements)
		m[nm++] = (struct wp_measurement){ "handshake",
		    (double)(res->tls_us - res->connect_us) / 1e6,
		    WP_UNIT_SECONDS };
	if (o->not_after != 0) {
		res->cert_expiry = o->not_after;
		left = (double)o->not_after -
		    (double)(o->inst->st->host->wall_us() / 1000000);
		t = (time_t)o->not_after;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d", &tm);
		if (nm < req->max_measurements)
			m[nm++] = (struct wp_measurement){ "cert_remaining",
			    left, WP_UNIT_SECONDS };
		snprintf(req->detail, req->detail_size,
		    "%s, issuer %s; %s %s (%.0f days%s)", o->version,
		    o->issuer[0] ? o->issuer : "unknown",
		    left < 0 ? "expired" : "expires", when,
		    (left < 0 ? -left : left) / 86400, left < 0 ? " ago" : "");
	} else {
		snprintf(req->detail, req->detail_size, "%s, no certificate",
		    o->version);
	}
	res->detail = req->detail;
	res->measurements = m;
	res->n_measurements = nm;
}

/*
 * A failed handshake or connection.  Certificate problems keep OpenSSL's
 * words (the name checked is this monitor's own configuration, not a
 * secret); everything else is curl-loop's one table.
 */
static void
tls_failure(struct tls_op *o, CURLcode rc, struct wp_result *res)
{
	static const char verify[] = "SSL certificate problem: ";
	const struct wp_request *req = o->req;
	const char *e = o->x.errbuf;

	if (rc == CURLE_PEER_FAILED_VERIFICATION) {
		res->reason = WP_REASON_TLS;
		res->detail = req->detail;
		if (strncmp(e, verify, sizeof(verify) - 1) == 0)
			snprintf(req->detail, req->detail_size,
			    "certificate verification failed: %s",
			    e + sizeof(verify) - 1);
		else if (strstr(e, "subject name") != NULL ||
		    strstr(e, "host name") != NULL)
			snprintf(req->detail, req->detail_size,
			    "certificate does not match the name %s",
			    o->inst->name);
		else
			snprintf(req->detail, req->detail_size,
			    "certificate verification failed: %s", e);
		return;
	}
	if (rc == CURLE_USE_SSL_FAILED) {
		res->reason = WP_REASON_TLS;
		res->detail = req->detail;
		snprintf(req->detail, req->detail_size,
		    "the server does not offer STARTTLS");
		return;
	}
	curlloop_failure(&o->x, rc, res, req->detail, req->detail_size);
	if (rc == CURLE_SSL_CONNECT_ERROR && e[0] != '\0')
		snprintf(req->detail, req->detail_size, "TLS handshake "
		    "failed: %s", e);
}

/* curlloop_done_fn: complete the check, then free it. */
static void
tls_done(struct curlloop_xfer *x, CURLcode rc)
{
	struct tls_op *o = x->arg;
	struct wp_result res = WP_RESULT_INIT;

	curlloop_timings(x, &res);
	res.first_byte_us = -1;
	if (rc == CURLE_OK) {
		res.latency_us = res.tls_us;
		if (o->handshake_done) {
			tls_facts(o, &res);
		} else {
			res.reason = WP_REASON_TLS;
			res.detail = o->req->detail;
			snprintf(o->req->detail, o->req->detail_size,
			    "connected without a TLS handshake");
		}
	} else {
		tls_failure(o, rc, &res);
	}
	o->inst->st->host->complete(o->op, &res);
	op_free(o);
}

static void
tls_release(void *state, void *inst)
{
	struct tls_inst *in = inst;

	(void)state;
	if (in == NULL)
		return;
	curl_slist_free_all(in->connect_to);
	free(in->url);
	free(in);
}

/* HOST as a URL's host into BUF: IPv6 addresses in brackets. */
static const char *
url_host(const char *host, char *buf, size_t len)
{
	snprintf(buf, len, strchr(host, ':') != NULL ? "[%s]" : "%s", host);
	return buf;
}

static int
tls_configure(void *state, const struct wp_section *sec, const void *conf,
    void **instp)
{
	struct curlloop_plugin *st = state;
	const struct tls_conf *c = conf;
	struct tls_inst *in;
	char name[300], host[300], map[700];
	struct curl_slist *l;
	size_t n;

	*instp = NULL;
	if (c->ca_file != NULL &&
	    curlloop_check_pem(c->ca_file, map, sizeof(map)) != NULL) {
		st->host->config_error(sec, "ca_file", "%s", map);
		return WP_EINVAL;
	}
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	in->c = c;
	in->name = c->servername != NULL ? c->servername : c->host;
	url_host(in->name, name, sizeof(name));
	url_host(c->host, host, sizeof(host));
	n = strlen(name) + 32;
	if ((in->url = malloc(n)) == NULL)
		goto nomem;
	snprintf(in->url, n, "%s://%s:%d/", c->starttls >= 0 ?
	    tls_starttls[c->starttls] : "https", name, (int)c->port);
	if (c->servername != NULL) {
		snprintf(map, sizeof(map), "%s:%d:%s:%d", name, (int)c->port,
		    host, (int)c->port);
		if ((l = curl_slist_append(NULL, map)) == NULL)
			goto nomem;
		in->connect_to = l;
	}
	*instp = in;
	return WP_OK;
nomem:
	tls_release(st, in);
	return WP_ENOMEM;
}

static int
tls_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct tls_inst *in = inst;
	const struct tls_conf *c = in->c;
	struct curlloop_plugin *st = in->st;
	struct tls_op *o;
	CURL *e;
	int bad = 0, rc;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->x = (struct curlloop_xfer){ .arg = o, .done = tls_done };
	o->inst = in;
	o->op = req->op;
	o->req = req;
	o->started_us = st->host->now_us();
	rc = curlloop_setup(st->cl, &o->x, in->url, NULL, c->verify_tls, 0,
	    req->deadline_us - o->started_us);
	if (rc != 0)
		goto fail;
	e = o->x.easy;
	/* curlloop_setup allows http and https only; this check speaks the
	 * one scheme of its own URL. */
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->starttls >= 0 ?
	    tls_starttls[c->starttls] : "https") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_ENABLE_ALPN, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, tls_ctx) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, o) != CURLE_OK;
	if (c->starttls >= 0)
		bad |= curl_easy_setopt(e, CURLOPT_USE_SSL,
		    (long)CURLUSESSL_ALL) != CURLE_OK;
	if (c->ca_file != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file) !=
		    CURLE_OK;
	if (in->connect_to != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_CONNECT_TO, in->connect_to) !=
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

/* The host's deadline: stop, say how far the check got, complete. */
static void
tls_cancel(void *inst, void *opstate)
{
	struct tls_inst *in = inst;
	struct tls_op *o = opstate;
	struct wp_result res = WP_RESULT_INIT;

	curlloop_cancel_result(in->st, &o->x, o->started_us, o->req->detail,
	    o->req->detail_size, &res);
	in->st->host->complete(o->op, &res);
	op_free(o);
}

static const struct wp_key tls_keys[] = {
	{ WP_KEY(WP_KT_HOST, "host", struct tls_conf, host),
	    .flags = WP_KEY_REQUIRED, .help = "name or address to connect to" },
	{ WP_KEY(WP_KT_INT, "port", struct tls_conf, port),
	    .flags = WP_KEY_REQUIRED, .min = 1, .max = 65535,
	    .help = "TCP port, 1-65535" },
	{ WP_KEY(WP_KT_HOST, "servername", struct tls_conf, servername),
	    .help = "name sent as SNI and verified (default: host)" },
	{ WP_KEY(WP_KT_ENUM, "starttls", struct tls_conf, starttls),
	    .values = tls_starttls,
	    .help = "speak this protocol's STARTTLS first: smtp, imap, pop3, "
	    "ftp (default: TLS from the first byte)" },
	{ WP_KEY(WP_KT_BOOL, "verify_tls", struct tls_conf, verify_tls),
	    .def = "true",
	    .help = "verify the certificate's chain and name (true)" },
	{ WP_KEY(WP_KT_PATH, "ca_file", struct tls_conf, ca_file),
	    .help = "PEM file of CA certificates to trust instead of the "
	    "system's" },
};

WP_CHECK_PLUGIN(tls,
    .version = PACKAGE_VERSION,
    .description = "TLS handshake check (direct or STARTTLS): protocol, "
    "issuer, certificate expiry",
    WP_KEYS(tls_keys, struct tls_conf),
    .init = curlloop_plugin_init,
    .fini = curlloop_plugin_fini,
    .configure = tls_configure,
    .release = tls_release,
    .start = tls_start,
    .cancel = tls_cancel)
