/*
 * testhttpd -- a loopback HTTP(S) server for watchpost's tests.
 *
 * Usage:
 *   testhttpd [--port N] [--tls CERT KEY] [--record FILE]
 *             [--hook-status-file FILE] [--accepted FILE]
 *   testhttpd --raw [--port N]
 *
 *   --port N      port on 127.0.0.1 (default 0: any free port)
 *   --tls C K     serve HTTPS with the PEM certificate C and key K
 *   --record F    /hook appends each request body to F as one line
 *   --hook-status-file F
 *                 /hook answers with the status code read from F (re-read
 *                 on every request; 200 when F is missing or unreadable).
 *                 F may hold a sequence, "500 500 200": each request takes
 *                 the first code and F is rewritten (atomically) without
 *                 it; the last code stays for every later request
 *   --accepted F  /hook also appends, to F, each body it answered with 2xx
 *   --raw         a hostile server instead: no libmicrohttpd; each request
 *                 head is read whole and answered with the raw bytes of
 *                 the route (RAW ROUTES below), then the connection closes
 *
 * Once listening it prints "PORT <n>\n" on stdout and flushes.  It exits 0
 * on SIGTERM or SIGINT, 1 on a start-up error.  One thread per connection.
 * SIGUSR1 (not --raw) makes it stop accepting: the listening socket is
 * closed, so a new connection is refused, while the connections already
 * open are still served (a server whose accept loop died); it says
 * "QUIESCED" on stderr.
 *
 * Routes (every method; HEAD answers without a body):
 *   /status/NNN       answers NNN with body "status NNN"
 *   /body/TEXT        answers 200 with body TEXT
 *   /text?t=TEXT      answers 200 with body TEXT
 *   /split?a=A&b=B&ms=N
 *                     200, body A then, N ms later (default 100), B: two
 *                     chunks, so a word across them spans a read boundary
 *   /redirect/N       302 to /redirect/N-1; /redirect/1 goes to /status/200
 *   /loop             302 to itself
 *   /slow?ms=N        answers 200 "slow" after N ms
 *   /hang             never answers (until exit, at most 60 s)
 *   /hang-later       the first request answers 200 "kept", every later
 *                     one hangs as /hang (a server that stalls on a
 *                     connection it kept)
 *   /big              200 with an endless chunked body
 *   /huge?bytes=N     200 with a Content-Length of N bytes (default 1 GiB),
 *                     generated as it is sent, never held in memory
 *   /bigheader        200 with a 100,000-byte X-Big header
 *   /headers          200, body: the request headers, one "Name: value" a line
 *   /echo             200, body: the request body
 *   /require-header?name=N&value=V
 *                     200 if the request has header N with value V, else 412
 *   /hook             appends the body to --record (newlines turned into
 *                     spaces) and answers with the --hook-status-file code
 *   /hook?tag=T       the same, each line starting with T and a space
 *   /svc/FORMAT       a webhook receiver of FORMAT (slack, pagerduty, ...):
 *                     records "FORMAT ok BODY" or "FORMAT bad:WHY BODY"
 *                     (tests/hookcheck.c judges) and answers 2xx or 400
 *   /hits?path=/x     body: how many requests /x has had (query not counted)
 *   /connections      body: "connections=N;", the connections accepted so
 *                     far (this request's own included)
 *   anything else     404
 *
 * RAW ROUTES (--raw; one request per connection):
 *   /ok               a well-formed 200 "ok"
 *   /longline         a 120,000-byte header line (over libcurl's 100 KiB)
 *   /manyheaders      2,000 short header lines, about 80 KB in all
 *   /garbage          "garbage\r\n\r\n": no status line
 *   /badstatus        "HTTP/1.1 2x0 OK": a status line with no code
 *   /http09           a body with no status line or headers (HTTP/0.9)
 *   /close            closes without a byte of response
 *   /reset-headers    a status line and one header, then a TCP reset
 *   /truncated        Content-Length: 1000, 4 bytes, then close
 *   /truncated-chunked one 4-byte chunk, then close (no last chunk)
 *   /badchunk         chunked, with a chunk size that is not hex
 *   /badlength        Content-Length: abc
 *   /twolengths       two different Content-Length headers
 *   /drip             Content-Length: 1000, sent 1 byte a second
 *   /redirect-ftp     302 to an ftp:// URL
 *   /redirect-bad     302 to a URL that does not parse
 *   anything else     /garbage
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "hookcheck.h"

#define MAX_UPLOAD (1024 * 1024)
#define MAX_PATHS 512
#define BIG_HEADER 100000
#define HANG_MAX_MS 60000

struct req {
	char *buf;
	size_t len;
	int overflow;
};

struct split {
	char *a, *b;
	int ms;
	int step;
};

static const char *record_file;
static const char *hook_status_file;
static const char *accepted_file;
static atomic_int stopping;
static atomic_ulong connections;

static pthread_mutex_t hits_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *path;
	unsigned long n;
} hits[MAX_PATHS];
static size_t n_hits;

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "testhttpd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Sleep MS milliseconds in steps, returning early once we are stopping. */
static void
nap(long ms)
{
	struct timespec ts = { 0, 10 * 1000000L };

	while (ms > 0 && !stopping) {
		nanosleep(&ts, NULL);
		ms -= 10;
	}
}

static void
hit(const char *path)
{
	size_t i;

	pthread_mutex_lock(&hits_mu);
	for (i = 0; i < n_hits; i++)
		if (strcmp(hits[i].path, path) == 0)
			break;
	if (i == n_hits && n_hits < MAX_PATHS &&
	    (hits[i].path = strdup(path)) != NULL)
		n_hits++;
	if (i < n_hits)
		hits[i].n++;
	pthread_mutex_unlock(&hits_mu);
}

static unsigned long
hit_count(const char *path)
{
	unsigned long n = 0;
	size_t i;

	pthread_mutex_lock(&hits_mu);
	for (i = 0; i < n_hits; i++)
		if (strcmp(hits[i].path, path) == 0)
			n = hits[i].n;
	pthread_mutex_unlock(&hits_mu);
	return n;
}

static char *
read_file(const char *path, size_t *lenp)
{
	FILE *f;
	char *buf = NULL;
	long n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			if (lenp)
				*lenp = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static enum MHD_Result
answer(struct MHD_Connection *c, unsigned status, const char *body,
    const char *location)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain");
	if (location)
		MHD_add_response_header(r, "Location", location);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static ssize_t
big_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	size_t i;

	(void)cls;
	if (stopping)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	for (i = 0; i < max; i++)
		buf[i] = "abcdefghijklmnopqrstuvwxyz\n"[(pos + i) % 27];
	return (ssize_t)max;
}

static ssize_t
split_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct split *s = cls;
	const char *part;
	size_t n;

	(void)pos;
	if (s->step == 1)
		nap(s->ms);
	if (s->step > 1)
		return MHD_CONTENT_READER_END_OF_STREAM;
	part = s->step == 0 ? s->a : s->b;
	n = strlen(part);
	if (n > max)
		n = max;
	memcpy(buf, part, n);
	s->step++;
	return n == 0 ? split_reader(cls, pos, buf, max) : (ssize_t)n;
}

static void
split_free(void *cls)
{
	struct split *s = cls;

	free(s->a);
	free(s->b);
	free(s);
}

static enum MHD_Result
route_split(struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "a");
	const char *b = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "b");
	const char *ms = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "ms");
	struct MHD_Response *r;
	struct split *s;
	enum MHD_Result ret;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MHD_NO;
	s->a = strdup(a ? a : "");
	s->b = strdup(b ? b : "");
	s->ms = ms ? atoi(ms) : 100;
	if (s->a == NULL || s->b == NULL) {
		split_free(s);
		return MHD_NO;
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
	    split_reader, s, split_free);
	if (r == NULL) {
		split_free(s);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	FILE *f = cls;

	(void)kind;
	fprintf(f, "%s: %s\n", key, value ? value : "");
	return MHD_YES;
}

static enum MHD_Result
route_headers(struct MHD_Connection *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	enum MHD_Result ret;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return MHD_NO;
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, f);
	fclose(f);
	ret = answer(c, 200, buf, NULL);
	free(buf);
	return ret;
}

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;

/* Rewrite the status file with REST, the codes after the one taken. */
static void
hook_status_pop(const char *rest)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.pop", hook_status_file);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fputs(rest, f);
	if (fclose(f) == 0)
		rename(tmp, hook_status_file);
}

static int
hook_status(void)
{
	char *s, *rest;
	int v = 200;

	if (hook_status_file == NULL)
		return 200;
	pthread_mutex_lock(&hook_mu);
	if ((s = read_file(hook_status_file, NULL)) == NULL) {
		pthread_mutex_unlock(&hook_mu);
		return 200;
	}
	if (atoi(s) >= 100 && atoi(s) <= 599)
		v = atoi(s);
	rest = s + strspn(s, " \t\n");
	rest += strcspn(rest, " \t\n");
	rest += strspn(rest, " \t\n");
	if (*rest != '\0')
		hook_status_pop(rest);
	free(s);
	pthread_mutex_unlock(&hook_mu);
	return v;
}

/* Append the request body to FILE as one line, after TAG and a space when
 * TAG is not NULL (one writev(2): concurrent hooks do not interleave). */
static void
record_line(const char *file, const char *tag, struct req *rq)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0644);
	struct iovec iov[3];
	int n = 0;

	if (fd < 0)
		return;
	if (tag != NULL) {
		iov[n++] = (struct iovec){ (void *)tag, strlen(tag) };
		iov[n++] = (struct iovec){ (void *)" ", 1 };
	}
	rq->buf[rq->len] = '\n';
	iov[n++] = (struct iovec){ rq->buf, rq->len + 1 };
	if (writev(fd, iov, n) < 0)
		fprintf(stderr, "testhttpd: record: %s\n", strerror(errno));
	close(fd);
}

static enum MHD_Result
route_hook(struct MHD_Connection *c, struct req *rq)
{
	int status = hook_status();
	const char *tag = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "tag");
	size_t i;

	for (i = 0; i < rq->len; i++)
		if (rq->buf[i] == '\n' || rq->buf[i] == '\r')
			rq->buf[i] = ' ';
	if (record_file != NULL)
		record_line(record_file, tag, rq);
	if (accepted_file != NULL && status >= 200 && status < 300)
		record_line(accepted_file, tag, rq);
	return answer(c, (unsigned)status, "hook", NULL);
}

/*
 * /svc/FORMAT: a receiver of that webhook format (tests/hookcheck.c judges
 * the body as the service would).  Appends "FORMAT ok BODY" or "FORMAT
 * bad:WHY BODY" to --record and answers as the service does on success
 * (PagerDuty 202, Discord 204, the others 200), or 400.  A request that
 * carries an X-Injected header (a header forged from an alert's text) is
 * bad too.
 */
static enum MHD_Result
route_svc(struct MHD_Connection *c, const char *format, struct req *rq)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Content-Type");
	const char *why = hookcheck(format, ct, rq->buf, rq->len);
	char tag[256];
	size_t i;

	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Injected") !=
	    NULL)
		why = "a forged X-Injected header";
	snprintf(tag, sizeof(tag), "%s %s%s", format, why ? "bad:" : "ok",
	    why ? why : "");
	for (i = 0; tag[i] != '\0'; i++)
		if (tag[i] == ' ' && i > strlen(format))
			tag[i] = '_';
	for (i = 0; i < rq->len; i++)
		if (rq->buf[i] == '\n' || rq->buf[i] == '\r')
			rq->buf[i] = ' ';
	if (record_file != NULL)
		record_line(record_file, tag, rq);
	if (why != NULL)
		return answer(c, 400, why, NULL);
	if (strcmp(format, "pagerduty") == 0)
		return answer(c, 202, "{\"status\":\"success\","
		    "\"message\":\"Event processed\"}", NULL);
	if (strcmp(format, "discord") == 0)
		return answer(c, 204, "", NULL);
	if (strcmp(format, "telegram") == 0)
		return answer(c, 200, "{\"ok\":true}", NULL);
	return answer(c, 200, "ok", NULL);
}

/* 200 with SIZE bytes (MHD_SIZE_UNKNOWN: endless, chunked) made by
 * big_reader as they are sent. */
static enum MHD_Result
stream(struct MHD_Connection *c, uint64_t size)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_callback(size, 16384, big_reader, NULL,
	    NULL);
	if (r == NULL)
		return MHD_NO;
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
dispatch(struct MHD_Connection *c, const char *url, struct req *rq)
{
	const char *arg, *arg2;
	char buf[64];
	long n;

	if (strncmp(url, "/status/", 8) == 0) {
		n = strtol(url + 8, NULL, 10);
		if (n < 100 || n > 599)
			return answer(c, 400, "bad status", NULL);
		snprintf(buf, sizeof(buf), "status %ld", n);
		return answer(c, (unsigned)n, buf, NULL);
	}
	if (strncmp(url, "/body/", 6) == 0)
		return answer(c, 200, url + 6, NULL);
	if (strcmp(url, "/text") == 0) {
		arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
		    "t");
		return answer(c, 200, arg ? arg : "", NULL);
	}
	if (strcmp(url, "/split") == 0)
		return route_split(c);
	if (strncmp(url, "/redirect/", 10) == 0) {
		n = strtol(url + 10, NULL, 10);
		if (n <= 1)
			return answer(c, 302, "redirect", "/status/200");
		snprintf(buf, sizeof(buf), "/redirect/%ld", n - 1);
		return answer(c, 302, "redirect", buf);
	}
	if (strcmp(url, "/loop") == 0)
		return answer(c, 302, "loop", "/loop");
	if (strcmp(url, "/slow") == 0) {
		arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
		    "ms");
		nap(arg ? atol(arg) : 1000);
		return answer(c, 200, "slow", NULL);
	}
	if (strcmp(url, "/hang") == 0 ||
	    (strcmp(url, "/hang-later") == 0 && hit_count(url) > 1)) {
		nap(HANG_MAX_MS);
		return MHD_NO;
	}
	if (strcmp(url, "/hang-later") == 0)
		return answer(c, 200, "kept", NULL);
	if (strcmp(url, "/big") == 0)
		return stream(c, MHD_SIZE_UNKNOWN);
	if (strcmp(url, "/huge") == 0) {
		arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
		    "bytes");
		return stream(c, arg ? strtoull(arg, NULL, 10) :
		    1024ULL * 1024 * 1024);
	}
	if (strcmp(url, "/bigheader") == 0) {
		struct MHD_Response *r;
		enum MHD_Result ret;
		char *v;

		if ((v = malloc(BIG_HEADER + 1)) == NULL)
			return MHD_NO;
		memset(v, 'a', BIG_HEADER);
		v[BIG_HEADER] = '\0';
		r = MHD_create_response_from_buffer(2, (void *)"ok",
		    MHD_RESPMEM_PERSISTENT);
		if (r == NULL) {
			free(v);
			return MHD_NO;
		}
		MHD_add_response_header(r, "X-Big", v);
		free(v);
		ret = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/headers") == 0)
		return route_headers(c);
	if (strcmp(url, "/echo") == 0) {
		rq->buf[rq->len] = '\0';
		return answer(c, 200, rq->buf, NULL);
	}
	if (strcmp(url, "/require-header") == 0) {
		const char *have;

		arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
		    "name");
		arg2 = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
		    "value");
		have = arg ? MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    arg) : NULL;
		if (have != NULL && arg2 != NULL && strcmp(have, arg2) == 0)
			return answer(c, 200, "header ok", NULL);
		return answer(c, 412, "header missing", NULL);
	}
	if (strcmp(url, "/hook") == 0)
		return route_hook(c, rq);
	if (strncmp(url, "/svc/", 5) == 0)
		return route_svc(c, url + 5, rq);
	if (strcmp(url, "/connections") == 0) {
		snprintf(buf, sizeof(buf), "connections=%lu;",
		    atomic_load(&connections));
		return answer(c, 200, buf, NULL);
	}
	if (strcmp(url, "/hits") == 0) {
		arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
		    "path");
		snprintf(buf, sizeof(buf), "%lu", arg ? hit_count(arg) : 0);
		return answer(c, 200, buf, NULL);
	}
	return answer(c, 404, "not found", NULL);
}

/*
 * MHD calls this once when the headers are in (allocate the request), then
 * for each piece of the body, then once more with nothing left: answer then.
 */
static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_size, void **con_cls)
{
	struct req *rq = *con_cls;
	size_t n;
	char *p;

	(void)cls;
	(void)method;
	(void)version;
	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL ||
		    (rq->buf = malloc(1)) == NULL) {
			free(rq);
			return MHD_NO;
		}
		*con_cls = rq;
		if (strcmp(url, "/hits") != 0)
			hit(url);
		return MHD_YES;
	}
	if (*data_size > 0) {
		n = *data_size;
		if (rq->len + n > MAX_UPLOAD) {
			rq->overflow = 1;
		} else if ((p = realloc(rq->buf, rq->len + n + 1)) != NULL) {
			rq->buf = p;
			memcpy(rq->buf + rq->len, data, n);
			rq->len += n;
		} else
			rq->overflow = 1;
		*data_size = 0;
		return MHD_YES;
	}
	if (rq->overflow)
		return answer(c, 413, "too large", NULL);
	return dispatch(c, url, rq);
}

/* Count accepted connections, for /connections. */
static void
connection_cb(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	(void)c;
	(void)socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&connections, 1);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq != NULL) {
		free(rq->buf);
		free(rq);
		*con_cls = NULL;
	}
}

/* ---- --raw: a hostile server, bytes written by hand ---- */

#define RAW_HEAD_MAX 8192
#define RAW_LONG_LINE 120000
#define RAW_MANY_HEADERS 2000
#define RAW_DRIP_BYTES 1000

static const struct {
	const char *path;
	const char *reply;
} raw_fixed[] = {
	{ "/ok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" },
	{ "/garbage", "garbage\r\n\r\n" },
	{ "/badstatus", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n" },
	{ "/http09", "hello, this is not HTTP\n" },
	{ "/close", "" },
	{ "/truncated", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabcd" },
	{ "/truncated-chunked", "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n" },
	{ "/badchunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "zz\r\nabcd\r\n0\r\n\r\n" },
	{ "/badlength", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nok" },
	{ "/twolengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Content-Length: 5\r\n\r\nok" },
	{ "/redirect-ftp", "HTTP/1.1 302 Found\r\n"
	    "Location: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n\r\n" },
	{ "/redirect-bad", "HTTP/1.1 302 Found\r\n"
	    "Location: http://[::1/x\r\nContent-Length: 0\r\n\r\n" },
};

/* Send all N bytes at P; -1 once the peer is gone. */
static int
put(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
put_s(int fd, const char *s)
{
	return put(fd, s, strlen(s));
}

/* Read a request head (5 s, RAW_HEAD_MAX bytes at most) and copy its path,
 * query cut off, to PATH.  -1 if no head arrived. */
static int
raw_read_head(int fd, char *path, size_t len)
{
	struct timeval tv = { 5, 0 };
	char buf[RAW_HEAD_MAX + 1];
	size_t n = 0, k;
	const char *p;
	ssize_t r;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	buf[0] = '\0';
	while (n < RAW_HEAD_MAX && strstr(buf, "\r\n\r\n") == NULL) {
		if ((r = recv(fd, buf + n, RAW_HEAD_MAX - n, 0)) <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
	}
	if ((p = strchr(buf, ' ')) == NULL)
		return -1;
	k = strcspn(++p, " ?\r\n");
	if (k >= len)
		k = len - 1;
	memcpy(path, p, k);
	path[k] = '\0';
	return 0;
}

static int
raw_long_line(int fd)
{
	static char line[RAW_LONG_LINE];

	memset(line, 'a', sizeof(line));
	if (put_s(fd, "HTTP/1.1 200 OK\r\nX-Long: ") != 0 ||
	    put(fd, line, sizeof(line)) != 0)
		return -1;
	return put_s(fd, "\r\nContent-Length: 2\r\n\r\nok");
}

static int
raw_many_headers(int fd)
{
	char line[64];
	int i;

	if (put_s(fd, "HTTP/1.1 200 OK\r\n") != 0)
		return -1;
	for (i = 0; i < RAW_MANY_HEADERS; i++) {
		snprintf(line, sizeof(line), "X-H%d: %032d\r\n", i, i);
		if (put_s(fd, line) != 0)
			return -1;
	}
	return put_s(fd, "Content-Length: 2\r\n\r\nok");
}

/* The head at once, then one body byte a second. */
static void
raw_drip(int fd)
{
	int i;

	if (put_s(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n") != 0)
		return;
	for (i = 0; i < RAW_DRIP_BYTES && !stopping; i++) {
		if (put(fd, "x", 1) != 0)
			return;
		nap(1000);
	}
}

/* A reset (RST), not an orderly close, once the headers have begun. */
static void
raw_reset(int fd)
{
	struct linger l = { 1, 0 };

	if (put_s(fd, "HTTP/1.1 200 OK\r\nX-A: 1\r\n") != 0)
		return;
	nap(50);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void *
raw_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char path[256];
	size_t i;

	atomic_fetch_add(&connections, 1);
	if (raw_read_head(fd, path, sizeof(path)) != 0)
		goto out;
	hit(path);
	if (strcmp(path, "/longline") == 0)
		raw_long_line(fd);
	else if (strcmp(path, "/manyheaders") == 0)
		raw_many_headers(fd);
	else if (strcmp(path, "/drip") == 0)
		raw_drip(fd);
	else if (strcmp(path, "/reset-headers") == 0)
		raw_reset(fd);
	else {
		for (i = 0; i < sizeof(raw_fixed) / sizeof(raw_fixed[0]); i++)
			if (strcmp(path, raw_fixed[i].path) == 0)
				break;
		put_s(fd, i < sizeof(raw_fixed) / sizeof(raw_fixed[0]) ?
		    raw_fixed[i].reply : "garbage\r\n\r\n");
	}
out:
	close(fd);
	return NULL;
}

static void *
raw_accept(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;
	pthread_t t;

	while (!stopping) {
		if ((fd = accept(lfd, NULL, NULL)) < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		if (pthread_create(&t, NULL, raw_conn,
		    (void *)(intptr_t)fd) != 0)
			close(fd);
		else
			pthread_detach(t);
	}
	return NULL;
}

/* Listen on SIN and serve the raw routes on a thread; returns the port. */
static unsigned
raw_start(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	pthread_t t;
	int fd, on = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)sin, sizeof(*sin)) != 0 ||
	    listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)sin, &len) != 0)
		die("cannot listen on 127.0.0.1: %s", strerror(errno));
	if (pthread_create(&t, NULL, raw_accept, (void *)(intptr_t)fd) != 0)
		die("cannot start a thread");
	pthread_detach(t);
	return ntohs(sin->sin_port);
}

int
main(int argc, char **argv)
{
	const char *cert_file = NULL, *key_file = NULL;
	char *cert = NULL, *key = NULL;
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	unsigned flags;
	sigset_t set;
	long port = 0;
	int i, sig, raw = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			port = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
			cert_file = argv[++i];
			key_file = argv[++i];
		} else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc)
			record_file = argv[++i];
		else if (strcmp(argv[i], "--hook-status-file") == 0 &&
		    i + 1 < argc)
			hook_status_file = argv[++i];
		else if (strcmp(argv[i], "--accepted") == 0 && i + 1 < argc)
			accepted_file = argv[++i];
		else if (strcmp(argv[i], "--raw") == 0)
			raw = 1;
		else
			die("usage: testhttpd [--port N] [--tls CERT KEY] "
			    "[--record FILE] [--hook-status-file FILE] "
			    "[--accepted FILE] [--raw]");
	}
	if (port < 0 || port > 65535)
		die("bad port");
	if (cert_file != NULL) {
		if ((cert = read_file(cert_file, NULL)) == NULL)
			die("cannot read %s", cert_file);
		if ((key = read_file(key_file, NULL)) == NULL)
			die("cannot read %s", key_file);
	}
	/* Threads inherit the mask: only sigwait() below sees the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (!raw)
		sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (raw) {
		printf("PORT %u\n", raw_start(&sin));
		fflush(stdout);
		while (sigwait(&set, &sig) != 0)
			;
		stopping = 1;
		return 0;
	}
	/* MHD_USE_ITC: MHD_quiesce_daemon() needs it in this threading mode. */
	flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_POLL | MHD_USE_ITC;
	if (cert != NULL)
		flags |= MHD_USE_TLS;
	if (cert != NULL)
		d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
		    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		    MHD_OPTION_NOTIFY_CONNECTION, connection_cb, NULL,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(512 * 1024),
		    MHD_OPTION_CONNECTION_LIMIT, 2000u,
		    MHD_OPTION_CONNECTION_TIMEOUT, 120u,
		    MHD_OPTION_HTTPS_MEM_CERT, cert,
		    MHD_OPTION_HTTPS_MEM_KEY, key,
		    MHD_OPTION_END);
	else
		d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
		    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		    MHD_OPTION_NOTIFY_CONNECTION, connection_cb, NULL,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(512 * 1024),
		    MHD_OPTION_CONNECTION_LIMIT, 2000u,
		    MHD_OPTION_CONNECTION_TIMEOUT, 120u,
		    MHD_OPTION_END);
	if (d == NULL)
		die("cannot start the server on 127.0.0.1:%ld", port);
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0)
		die("cannot learn the bound port");
	printf("PORT %u\n", (unsigned)info->port);
	fflush(stdout);

	for (;;) {
		MHD_socket lfd;

		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGUSR1)
			break;
		if ((lfd = MHD_quiesce_daemon(d)) != MHD_INVALID_SOCKET)
			close(lfd);
		fprintf(stderr, "QUIESCED%s\n", lfd == MHD_INVALID_SOCKET ?
		    " (already, or not supported)" : "");
	}
	stopping = 1;
	MHD_stop_daemon(d);
	free(cert);
	free(key);
	for (i = 0; (size_t)i < n_hits; i++)
		free(hits[i].path);
	return 0;
}
