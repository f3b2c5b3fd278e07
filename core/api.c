/*
 * api -- the HTTP status API on libmicrohttpd.
 *
 * Threads: MHD polls with epoll on a small pool of threads (POOL_THREADS),
 * so an open connection costs a socket and a little memory, not a thread:
 * thousands of slow or idle clients cannot take every slot (issue 12: 32
 * slow clients used to block the API).  /healthz is answered on the pool
 * thread.  Every other route is rendered on the libuv loop thread: the pool
 * thread suspends the connection (MHD_suspend_connection), queues a job
 * and wakes the loop with a uv_async; the loop renders the body and resumes
 * the connection, and MHD calls the handler again to send it.  No pool
 * thread ever waits for the loop, so /healthz answers even while the loop
 * is stuck.  If the loop has not answered by the loop timeout, the sweeper
 * thread resumes the connection and it gets 503.  A job is shared by its
 * connection and the loop and carries a reference count under the api
 * mutex, so whichever side lets go last frees it: a request that gave up
 * never leaves the loop holding freed memory, and the loop never writes
 * into a job whose connection is gone.
 *
 * Limits against slow clients: MHD's own timeout only measures idle time
 * between reads, which a client sending a byte a second never reaches.  So
 * each connection is tracked (MHD_OPTION_NOTIFY_CONNECTION) with a
 * deadline: a request must have arrived whole within REQUEST_DEADLINE_MS of
 * the connection opening or of the previous answer.  A sweeper thread shuts
 * down (shutdown(2), which MHD sees as the client leaving) every connection
 * past its deadline that is not being answered.  On top of that MHD caps
 * the connections in total and per client address; the total is sized
 * against the open-files limit.
 *
 * Test seam: WP_API_LOOP_TIMEOUT_MS, read once in api_start, replaces the
 * 5 s loop timeout.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "log.h"
#include "util.h"

/* enum MHD_Result appeared in 0.9.71; configure accepts 0.9.70. */
#if MHD_VERSION >= 0x00097002
#define API_MHD_RESULT enum MHD_Result
#else
#define API_MHD_RESULT int
#endif

#define LOOP_TIMEOUT_MS 5000
#define POOL_THREADS 4		/* MHD's polling threads */
#define CONN_LIMIT 4096		/* concurrent connections, at most ... */
#define CONN_FD_SHARE 4		/* ... and a quarter of the open-files limit */
#define CONN_MIN 64		/* ... but never fewer than this */
#define CONN_TIMEOUT_S 10	/* idle connection timeout (MHD's) */
#define REQUEST_DEADLINE_MS 10000 /* a whole request, from open or answer */
#define SWEEP_MS 250		/* how often deadlines are checked */
#define SLOW_LOG_MS 60000	/* at most one "closed slow clients" line */
#define CONN_MEMORY (32 * 1024)	/* per-connection header/buffer pool */
#define LISTEN_BACKLOG 1024

#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

enum route { R_HEALTHZ, R_MONITORS, R_OPMON, R_METRICS, R_ALERTS };

static const struct {
	const char *path;
	enum route route;
} routes_table[] = {
	{ "/healthz", R_HEALTHZ },
	{ "/api/monitors", R_MONITORS },
	{ "/api/monitor", R_OPMON },
	{ "/metrics", R_METRICS },
	{ "/api/alerts", R_ALERTS },
};

/* POST /api/alerts/NAME/test */
#define ALERT_TEST_PREFIX "/api/alerts/"
#define ALERT_TEST_SUFFIX "/test"
/* How long past the loop timeout an asynchronous answer (a test alert,
 * which has its section's own timeout) may take before the client gets
 * 503. */
#define CALL_EXTRA_MS 60000

/*
 * One request waiting for the loop.  Its connection is suspended in MHD
 * while it waits (a pool thread never blocks on the loop); whoever ends
 * the wait -- the loop with the body, the sweeper at the deadline, or
 * api_stop -- resumes it, and MHD calls on_request again to answer.
 * refs counts the holders: the connection (until MHD_OPTION_NOTIFY_
 * COMPLETED) and the loop while the job is queued or being rendered.  All
 * fields are guarded by api.mu.
 */
struct api_job {
	struct api_job *next;		/* in the loop's queue */
	struct api_job *wprev, *wnext;	/* in api.waiting while suspended */
	struct MHD_Connection *conn;
	char *(*render)(void *);
	int64_t deadline_ms;		/* monotonic: 503 after this */
	int refs;
	int queued;
	int suspended;			/* in api.waiting; nobody resumed it */
	int done;
	char *body;
	/* An asynchronous route (api_call_answer()): */
	struct api *api;
	char *name;			/* the NAME of its path */
	unsigned status;		/* its answer's status; 0: 200 */
};

/*
 * One open connection, from MHD's "started" to its "closed" notification;
 * guarded by api.cmu.  MHD closes the socket only after the "closed"
 * notification, which unlinks the entry under cmu, so the sweeper may
 * shutdown(2) the fd of any linked entry while it holds cmu.
 */
struct api_conn {
	struct api_conn *prev, *next;
	MHD_socket fd;
	int64_t deadline_ms;	/* monotonic; the request must arrive by then */
	int busy;		/* a request is being answered: never cut */
	int served;		/* answered a request before (keep-alive) */
};

struct api {
	uv_loop_t *loop;
	uv_async_t async;
	struct MHD_Daemon *mhd;
	struct api_routes routes;
	char *token;
	size_t token_len;
	int port;
	int timeout_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;	/* wakes the sweeper: a new job, or stop */
	struct api_job *head, *tail;	/* queued for the loop */
	struct api_job *waiting;	/* suspended connections */
	_Atomic int ready;	/* the async handle exists */
	int stopping;
	/* Asynchronous calls the loop started and has not answered: the
	 * struct outlives api_stop() until the last is answered. */
	unsigned calls;
	int closed;		/* the async handle is closed */

	pthread_mutex_t cmu;	/* the connection list and sweep counters */
	struct api_conn *conns;
	pthread_t sweeper;
	int sweeper_running;
	unsigned cut_slow;	/* never-served connections cut, not yet logged */
	int64_t cut_logged_ms;	/* when that was last logged */
};

/*
 * Parse SPEC into *ss.  Accepts "IPV4:PORT", "[IPV6]:PORT" and
 * "localhost:PORT" (the IPv4 loopback).  Returns 0, or WP_EINVAL with a
 * message in err.
 */
static int
parse_listen(const char *spec, struct sockaddr_storage *ss,
    socklen_t *sslen, char *err, size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *h, *hend, *port;
	size_t hlen, plen;
	long long pnum;
	int bracketed = 0;

	if (spec == NULL || *spec == '\0') {
		snprintf(err, errlen, "listen: expected HOST:PORT, got \"\"");
		return WP_EINVAL;
	}
	if (spec[0] == '[') {
		bracketed = 1;
		h = spec + 1;
		hend = strchr(h, ']');
		if (hend == NULL || hend[1] != ':')
			goto syntax;
		port = hend + 2;
	} else {
		h = spec;
		hend = strrchr(spec, ':');
		if (hend == NULL)
			goto syntax;
		port = hend + 1;
		if (memchr(h, ':', (size_t)(hend - h)) != NULL) {
			snprintf(err, errlen, "listen: expected HOST:PORT, "
			    "got \"%s\" (write IPv6 addresses in brackets: "
			    "[::1]:9405)", spec);
			return WP_EINVAL;
		}
	}
	hlen = (size_t)(hend - h);
	plen = strlen(port);
	if (hlen == 0 || hlen >= sizeof(host) || plen == 0 || plen > 5 ||
	    strspn(port, "0123456789") != plen ||
	    parse_int(port, 0, 65535, &pnum) != 0)
		goto syntax;
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	memset(ss, 0, sizeof(*ss));
	if (bracketed) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pnum);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			goto badhost;
		*sslen = sizeof(*sin6);
		return 0;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)pnum);
	if (strcasecmp(host, "localhost") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		goto badhost;
	*sslen = sizeof(*sin);
	return 0;

syntax:
	snprintf(err, errlen, "listen: expected HOST:PORT, got \"%s\"",
	    spec);
	return WP_EINVAL;
badhost:
	snprintf(err, errlen, "listen: \"%s\" is not an IP address or "
	    "localhost (in \"%s\")", host, spec);
	return WP_EINVAL;
}

/* "127.0.0.1:9405" or "[::1]:9405" for messages. */
static void
format_addr(const struct sockaddr_storage *ss, int port, char *buf,
    size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, ip,
		    sizeof(ip));
		snprintf(buf, len, "[%s]:%d", ip, port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    ip, sizeof(ip));
		snprintf(buf, len, "%s:%d", ip, port);
	}
}

/*
 * Open, bind and listen on SS.  Returns 0 with the socket in *fdp and the
 * bound port in *portp, or WP_EIO with a message in err.
 */
static int
open_listener(const struct sockaddr_storage *ss, socklen_t sslen,
    const char *spec, int *fdp, int *portp, char *err, size_t errlen)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int fd, on = 1, rc = WP_EIO;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd == -1) {
		snprintf(err, errlen, "listen %s: socket: %s", spec,
		    strerror(errno));
		return WP_EIO;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* "[::]:N" means IPv6 only; IPv4 needs its own address. */
	if (ss->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on));
	if (bind(fd, (const struct sockaddr *)ss, sslen) == -1) {
		snprintf(err, errlen, "listen %s: cannot bind: %s", spec,
		    strerror(errno));
		goto out;
	}
	if (listen(fd, LISTEN_BACKLOG) == -1) {
		snprintf(err, errlen, "listen %s: listen: %s", spec,
		    strerror(errno));
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) == -1) {
		snprintf(err, errlen, "listen %s: getsockname: %s", spec,
		    strerror(errno));
		goto out;
	}
	if (bound.ss_family == AF_INET6)
		*portp = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	else
		*portp = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	*fdp = fd;
	fd = -1;
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	return rc;
}

/* Free a job both sides have let go of. */
static void
job_free(struct api_job *j)
{
	if (j == NULL)
		return;
	free(j->body);
	free(j->name);
	free(j);
}

/* Drop one reference; a->mu held. */
static void
job_unref(struct api_job *j)
{
	if (--j->refs == 0)
		job_free(j);
}

/* Take J off the waiting list and mark it resumed; a->mu held.  The
 * caller then calls MHD_resume_connection(j->conn) with the mutex
 * released (MHD takes locks of its own); the connection stays suspended,
 * and so alive, until then, and nobody else resumes it. */
static struct MHD_Connection *
job_unwait(struct api *a, struct api_job *j)
{
	if (j->wprev != NULL)
		j->wprev->wnext = j->wnext;
	else
		a->waiting = j->wnext;
	if (j->wnext != NULL)
		j->wnext->wprev = j->wprev;
	j->wprev = j->wnext = NULL;
	j->suspended = 0;
	return j->conn;
}

/*
 * The loop side: render every queued job, then resume its connection.
 * Renderers run without the mutex held, so they may take their time (the
 * deadline answers the client meanwhile).
 */
static void
on_async(uv_async_t *h)
{
	struct api *a = h->data;
	struct api_job *list, *j, *next;
	struct MHD_Connection *c;
	char *body;

	pthread_mutex_lock(&a->mu);
	list = a->head;
	a->head = a->tail = NULL;
	for (j = list; j != NULL; j = j->next)
		j->queued = 0;
	pthread_mutex_unlock(&a->mu);

	for (j = list; j != NULL; j = next) {
		/*
		 * The loop holds its reference, so j stays valid.  A job that
		 * was answered already (deadline, stop) is not rendered.
		 */
		pthread_mutex_lock(&a->mu);
		next = j->next;
		if (!j->suspended) {
			job_unref(j);
			pthread_mutex_unlock(&a->mu);
			continue;
		}
		pthread_mutex_unlock(&a->mu);
		if (j->name != NULL) {
			/* Asynchronous: the loop's reference goes with the
			 * answer (api_call_answer()). */
			a->calls++;	/* loop thread, as on_closed */
			a->routes.alert_test(a->routes.arg, j->name,
			    (struct api_call *)j);
			continue;
		}
		body = j->render(a->routes.arg);
		pthread_mutex_lock(&a->mu);
		next = j->next;
		c = NULL;
		if (j->suspended) {
			j->body = body;
			j->done = 1;
			c = job_unwait(a, j);
		} else
			free(body);	/* its client got 503 meanwhile */
		job_unref(j);
		pthread_mutex_unlock(&a->mu);
		if (c != NULL)
			MHD_resume_connection(c);
	}
}

/*
 * On a pool thread, inside on_request: suspend connection C and queue a
 * job for the loop to call RENDER (or, with NAME, routes.alert_test).
 * Returns the job (the connection's reference; on_completed drops it),
 * which is resumed at the latest by the deadline; or NULL if the API is
 * starting or stopping (C is not suspended then).
 */
static struct api_job *
job_submit(struct api *a, struct MHD_Connection *c, char *(*render)(void *),
    char *name)
{
	struct api_job *j;

	j = xcalloc(1, sizeof(*j));
	j->render = render;
	j->conn = c;
	j->deadline_ms = mono_ms() + a->timeout_ms;
	/* NAME (owned): an asynchronous call instead (api_call_answer()). */
	j->api = a;
	j->name = name;
	if (name != NULL)
		j->deadline_ms += CALL_EXTRA_MS;
	/* Suspended before anyone can see the job, so that no resume can
	 * come first. */
	MHD_suspend_connection(c);
	pthread_mutex_lock(&a->mu);
	if (!a->ready || a->stopping) {
		pthread_mutex_unlock(&a->mu);
		MHD_resume_connection(c);
		free(j->name);
		free(j);
		return NULL;
	}
	j->refs = 2;
	j->queued = 1;
	if (a->tail != NULL)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	j->suspended = 1;
	j->wnext = a->waiting;
	if (a->waiting != NULL)
		a->waiting->wprev = j;
	a->waiting = j;
	/* Sent under the mutex: api_stop cannot close the handle meanwhile. */
	uv_async_send(&a->async);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return j;
}

/*
 * The connection's end of job J (its request is over: answered, or the
 * connection closed); a->mu held.  A job the loop never took is taken
 * back from the queue with the loop's reference.
 */
static void
job_release(struct api *a, struct api_job *j)
{
	struct api_job **pp;

	if (j->suspended)
		(void)job_unwait(a, j);
	if (j->queued) {
		for (pp = &a->head; *pp != j; pp = &(*pp)->next)
			;
		*pp = j->next;
		if (a->tail == j) {
			a->tail = NULL;
			for (pp = &a->head; *pp != NULL; pp = &(*pp)->next)
				a->tail = *pp;
		}
		j->queued = 0;
		j->refs--;
	}
	job_unref(j);
}

/*
 * Compare the presented token with ours in time that depends only on the
 * length of ours.  Returns 1 if equal.
 */
static int
token_equal(const char *given, const char *want, size_t wlen)
{
	size_t glen = strlen(given), i;
	volatile unsigned char diff = glen != wlen;

	for (i = 0; i < wlen; i++)
		diff |= (unsigned char)want[i] ^
		    (unsigned char)given[i < glen ? i : 0];
	return diff == 0;
}

/*
 * May the request go on: no token is set, or it carries "Authorization:
 * Bearer <our token>"?  The token can change on reload (api_set_token), so
 * it is read under a->mu.
 */
static int
authorized(struct api *a, struct MHD_Connection *c)
{
	const char *v;
	int ok;

	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	pthread_mutex_lock(&a->mu);
	if (a->token == NULL)
		ok = 1;
	else if (v == NULL || strncasecmp(v, "Bearer", 6) != 0 ||
	    (v[6] != ' ' && v[6] != '\t'))
		ok = 0;
	else {
		v += 6;
		while (*v == ' ' || *v == '\t')
			v++;
		ok = token_equal(v, a->token, a->token_len);
	}
	pthread_mutex_unlock(&a->mu);
	return ok;
}

/*
 * Queue a response.  BODY is malloc'd and taken over when OWNED, else a
 * static string.  HNAME/HVAL: one extra header, or NULL.
 */
static API_MHD_RESULT
reply(struct MHD_Connection *c, unsigned int status, const char *ctype,
    char *body, int owned, const char *hname, const char *hval)
{
	struct MHD_Response *r;
	API_MHD_RESULT ret;

	r = MHD_create_response_from_buffer(strlen(body), body,
	    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (hname != NULL)
		MHD_add_response_header(r, hname, hval);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static API_MHD_RESULT
reply_error(struct MHD_Connection *c, unsigned int status, const char *msg,
    const char *hname, const char *hval)
{
	return reply(c, status, CT_JSON,
	    xasprintf("{\"error\":\"%s\"}\n", msg), 1, hname, hval);
}

/* ---- connection deadlines ---- */

/* The tracked entry of connection C (NULL if MHD has none for it). */
static struct api_conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/*
 * MHD_OPTION_NOTIFY_CONNECTION, on a pool thread: link a new connection
 * with its first deadline; unlink and free a closed one (MHD closes the
 * socket only after this returns).
 */
static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct api *a = cls;
	const union MHD_ConnectionInfo *ci;
	struct api_conn *ac;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL)
			return;
		ac = xcalloc(1, sizeof(*ac));
		ac->fd = ci->connect_fd;
		ac->deadline_ms = mono_ms() + REQUEST_DEADLINE_MS;
		pthread_mutex_lock(&a->cmu);
		ac->next = a->conns;
		if (a->conns != NULL)
			a->conns->prev = ac;
		a->conns = ac;
		pthread_mutex_unlock(&a->cmu);
		*socket_context = ac;
		return;
	}
	if ((ac = *socket_context) == NULL)
		return;
	pthread_mutex_lock(&a->cmu);
	if (ac->prev != NULL)
		ac->prev->next = ac->next;
	else
		a->conns = ac->next;
	if (ac->next != NULL)
		ac->next->prev = ac->prev;
	pthread_mutex_unlock(&a->cmu);
	*socket_context = NULL;
	free(ac);
}

/* Mark C's connection as answering a request (BUSY 1) or as done with
 * one: then the next request has REQUEST_DEADLINE_MS from now. */
static void
conn_busy(struct api *a, struct MHD_Connection *c, int busy)
{
	struct api_conn *ac = conn_of(c);

	if (ac == NULL)
		return;
	pthread_mutex_lock(&a->cmu);
	ac->busy = busy;
	if (!busy) {
		ac->served = 1;
		ac->deadline_ms = mono_ms() + REQUEST_DEADLINE_MS;
	}
	pthread_mutex_unlock(&a->cmu);
}

/* MHD_OPTION_NOTIFY_COMPLETED: the answer is sent (or the request died,
 * or the server stops): the connection lets go of its job. */
static void
on_completed(void *cls, struct MHD_Connection *c, void **state,
    enum MHD_RequestTerminationCode toe)
{
	struct api *a = cls;

	(void)toe;
	if (*state != NULL) {
		pthread_mutex_lock(&a->mu);
		job_release(a, *state);
		pthread_mutex_unlock(&a->mu);
		*state = NULL;
	}
	conn_busy(a, c, 0);
}

/*
 * Resume every waiting connection whose job is past its deadline (ALL:
 * every one, for api_stop); a->mu held, and released around each
 * MHD_resume_connection.  Returns the earliest deadline left (INT64_MAX:
 * none).
 */
static int64_t
expire_jobs(struct api *a, int all)
{
	struct api_job *j;
	struct MHD_Connection *c;
	int64_t now, next;

again:
	now = mono_ms();
	next = INT64_MAX;
	for (j = a->waiting; j != NULL; j = j->wnext) {
		if (all || j->deadline_ms <= now) {
			c = job_unwait(a, j);
			pthread_mutex_unlock(&a->mu);
			MHD_resume_connection(c);
			pthread_mutex_lock(&a->mu);
			goto again;
		}
		if (j->deadline_ms < next)
			next = j->deadline_ms;
	}
	return next;
}

/*
 * Shut down every connection past its deadline that is not being
 * answered; a->cmu held.  shutdown(2), not close: the descriptor stays
 * MHD's, which reads EOF and closes the connection its usual way.
 * Returns how many never-served connections were cut.
 */
static unsigned
sweep(struct api *a, int64_t now)
{
	struct api_conn *ac;
	unsigned slow = 0;

	for (ac = a->conns; ac != NULL; ac = ac->next) {
		if (ac->busy || ac->deadline_ms > now || ac->fd == MHD_INVALID_SOCKET)
			continue;
		(void)shutdown(ac->fd, SHUT_RDWR);
		slow += !ac->served;
		/* Once is enough; MHD closes it on its next turn. */
		ac->deadline_ms = INT64_MAX;
	}
	return slow;
}

/*
 * The sweeper thread, until api_stop: answers requests the loop did not
 * render in time (at their deadline) and cuts slow connections (every
 * SWEEP_MS).  It runs apart from the loop so that the API defends itself
 * even while the loop is stuck.  Cutting slow clients is logged at most
 * every SLOW_LOG_MS, with a count: a thousand of them must not become a
 * thousand lines.
 */
static void *
sweeper_main(void *arg)
{
	struct api *a = arg;
	struct timespec ts;
	unsigned n = 0;
	int64_t now, next, wake;

	pthread_mutex_lock(&a->mu);
	next = mono_ms() + SWEEP_MS;
	while (!a->stopping) {
		wake = expire_jobs(a, 0);
		if (a->stopping)
			break;
		if (wake > next)
			wake = next;
		ts.tv_sec = (time_t)(wake / 1000);
		ts.tv_nsec = (long)(wake % 1000) * 1000000L;
		(void)pthread_cond_timedwait(&a->cv, &a->mu, &ts);
		if (a->stopping || (now = mono_ms()) < next)
			continue;
		next = now + SWEEP_MS;
		pthread_mutex_unlock(&a->mu);

		now = mono_ms();
		pthread_mutex_lock(&a->cmu);
		a->cut_slow += sweep(a, now);
		if (a->cut_slow > 0 && now - a->cut_logged_ms >= SLOW_LOG_MS) {
			n = a->cut_slow;
			a->cut_slow = 0;
			a->cut_logged_ms = now;
		}
		pthread_mutex_unlock(&a->cmu);
		if (n > 0)
			log_warn("api: closed %u connection(s) that sent no "
			    "complete request within %d s", n,
			    REQUEST_DEADLINE_MS / 1000);
		n = 0;
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/*
 * The second call of on_request for job J, once its connection is
 * resumed: answer with the body, 500 if the renderer failed, or 503 if
 * the loop did not answer in time or the API stops.  The job itself is
 * let go in on_completed.
 */
static API_MHD_RESULT
reply_job(struct api *a, struct MHD_Connection *c, struct api_job *j,
    enum route route, const char *method, const char *url)
{
	char *body = NULL;
	int done, stopping;

	pthread_mutex_lock(&a->mu);
	done = j->done;
	stopping = a->stopping;
	if (done) {
		body = j->body;
		j->body = NULL;
	}
	pthread_mutex_unlock(&a->mu);
	if (!done) {
		if (stopping)
			log_debug("api: %s %s -> 503 (stopping)", QSTR(method),
			    QSTR(url));
		else
			log_warn("api: %s %s: the loop did not answer within "
			    "%d ms", QSTR(method), QSTR(url), a->timeout_ms);
		return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "service unavailable", NULL, NULL);
	}
	if (body == NULL) {
		log_warn("api: %s %s: rendering failed", QSTR(method),
		    QSTR(url));
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "internal error", NULL, NULL);
	}
	log_debug("api: %s %s -> %u", method, url, j->status ? j->status : 200);
	return reply(c, j->status ? j->status : MHD_HTTP_OK,
	    route == R_METRICS ? CT_METRICS : CT_JSON, body, 1, NULL, NULL);
}

/*
 * The NAME of "/api/alerts/NAME/test" in URL (a pointer into it, up to
 * the suffix), or NULL when URL is not of that form or NAME is empty or
 * holds a '/'.
 */
static const char *
alert_test_name(const char *url)
{
	size_t lp = strlen(ALERT_TEST_PREFIX), ls = strlen(ALERT_TEST_SUFFIX);
	size_t n = strlen(url);
	const char *name = url + lp;

	if (n <= lp + ls || strncmp(url, ALERT_TEST_PREFIX, lp) != 0 ||
	    strcmp(url + n - ls, ALERT_TEST_SUFFIX) != 0)
		return NULL;
	if (memchr(name, '/', n - lp - ls) != NULL)
		return NULL;
	return name;
}

/*
 * POST /api/alerts/NAME/test, first call: a mutation, so it needs the
 * token, and answers 403 when none is configured.  The loop starts the test
 * (routes.alert_test) and answers later through api_call_answer(); *state
 * gets the job, as for the rendered routes.
 */
static API_MHD_RESULT
on_alert_test(struct api *a, struct MHD_Connection *c, const char *url,
    const char *method, void **state)
{
	const char *name = alert_test_name(url);
	struct api_job *j;
	int has_token;

	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
		log_debug("api: %s %s -> 405", method, url);
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed", MHD_HTTP_HEADER_ALLOW, "POST");
	}
	/* A mutation: never without a token (CONTRACT.md, admin API). */
	pthread_mutex_lock(&a->mu);
	has_token = a->token != NULL;
	pthread_mutex_unlock(&a->mu);
	if (!has_token) {
		log_debug("api: %s %s -> 403 (no token)", method, url);
		return reply_error(c, MHD_HTTP_FORBIDDEN, "this request changes "
		    "or sends something: set [agent] api_token_file to enable "
		    "it", NULL, NULL);
	}
	if (!authorized(a, c)) {
		log_debug("api: %s %s -> 401", method, url);
		return reply_error(c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	}
	j = job_submit(a, c, NULL, xasprintf("%.*s",
	    (int)(strlen(name) - strlen(ALERT_TEST_SUFFIX)), name));
	if (j == NULL) {
		log_debug("api: %s %s -> 503 (stopping)", method, url);
		return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "service unavailable", NULL, NULL);
	}
	*state = j;
	return MHD_YES;
}

static void api_free(struct api *a);

void
api_call_answer(struct api_call *call, unsigned status, char *body)
{
	struct api_job *j = (struct api_job *)call;
	struct api *a = j->api;
	struct MHD_Connection *c = NULL;

	pthread_mutex_lock(&a->mu);
	if (j->suspended) {
		j->body = body;
		j->status = status;
		j->done = 1;
		c = job_unwait(a, j);
	} else
		free(body);	/* its client got 503 meanwhile */
	job_unref(j);
	pthread_mutex_unlock(&a->mu);
	if (c != NULL)
		MHD_resume_connection(c);
	/* The last answer after api_stop() frees the struct (on_closed). */
	if (--a->calls == 0 && a->closed)
		api_free(a);
}

/*
 * MHD's access handler, on a pool thread.  A request is answered on the
 * first call, or -- for a route the loop renders -- on the call after its
 * connection is resumed (*state is its job then).  No route takes a body,
 * and MHD discards (and closes the connection after) any body a client
 * sends anyway.
 */
static API_MHD_RESULT
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **state)
{
	struct api *a = cls;
	enum route route = R_HEALTHZ;
	char *(*fn)(void *) = NULL;
	size_t i;
	int found = 0;

	conn_busy(a, c, 1);
	for (i = 0; i < sizeof(routes_table) / sizeof(routes_table[0]); i++) {
		if (strcmp(url, routes_table[i].path) == 0) {
			route = routes_table[i].route;
			found = 1;
			break;
		}
	}
	switch (route) {
	case R_MONITORS:
		fn = a->routes.monitors_json;
		break;
	case R_OPMON:
		fn = a->routes.opmon_json;
		break;
	case R_METRICS:
		fn = a->routes.metrics_text;
		break;
	case R_ALERTS:
		fn = a->routes.alerts_json;
		break;
	case R_HEALTHZ:
		break;
	}
	if (!found && *state == NULL && a->routes.alert_test != NULL &&
	    alert_test_name(url) != NULL)
		return on_alert_test(a, c, url, method, state);
	if (*state != NULL)
		return reply_job(a, c, *state, route, method, url);
	/* A route without a renderer is not served here. */
	if (!found || (route != R_HEALTHZ && fn == NULL)) {
		log_debug("api: %s %s -> 404", method, url);
		return reply_error(c, MHD_HTTP_NOT_FOUND, "not found", NULL,
		    NULL);
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		log_debug("api: %s %s -> 405", method, url);
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	}
	if (route == R_HEALTHZ)
		return reply(c, MHD_HTTP_OK, CT_TEXT, "ok\n", 0, NULL, NULL);
	if (!authorized(a, c)) {
		log_debug("api: %s %s -> 401", method, url);
		return reply_error(c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	}
	if ((*state = job_submit(a, c, fn, NULL)) == NULL) {
		log_debug("api: %s %s -> 503 (stopping)", method, url);
		return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "service unavailable", NULL, NULL);
	}
	return MHD_YES;
}

/*
 * MHD's error log, into ours: at warn while the server starts (why it
 * could not), at debug once it serves, where MHD speaks of single
 * connections ("closed when reading request", one line per client that
 * left mid-request: a flood of slow clients must not flood the log).
 */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct api *a = cls;
	char line[512];
	size_t n;
	/* Read without a->mu: MHD may log while holding locks of its own,
	 * and a->mu is held around calls into MHD. */
	int serving = a->ready;

	if (serving && log_threshold() < WP_LOG_DEBUG)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_msg(serving ? WP_LOG_DEBUG : WP_LOG_WARN, "api: %s", line);
}

/* Free the api once its async handle is closed (or was never opened). */
static void
api_free(struct api *a)
{
	if (a == NULL)
		return;
	if (a->token != NULL) {
		explicit_bzero(a->token, a->token_len);
		free(a->token);
	}
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->cmu);
	free(a);
}

static void
on_closed(uv_handle_t *h)
{
	struct api *a = h->data;

	a->closed = 1;
	if (a->calls == 0)
		api_free(a);
}

/* The loop timeout: 5 s, or WP_API_LOOP_TIMEOUT_MS (the test seam). */
static int
loop_timeout_ms(void)
{
	const char *s = getenv("WP_API_LOOP_TIMEOUT_MS");
	long long v;

	if (s == NULL || *s == '\0')
		return LOOP_TIMEOUT_MS;
	if (parse_int(s, 1, 600000, &v) != 0) {
		log_warn("api: ignoring WP_API_LOOP_TIMEOUT_MS=\"%s\" "
		    "(expected 1..600000)", s);
		return LOOP_TIMEOUT_MS;
	}
	return (int)v;
}

/*
 * How many connections MHD may hold: CONN_LIMIT, or a quarter of the
 * open-files soft limit if that is lower (checks need descriptors too),
 * never below CONN_MIN.
 */
static unsigned
conn_limit(void)
{
	struct rlimit rl;
	rlim_t n = CONN_LIMIT;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / CONN_FD_SHARE < n)
		n = rl.rlim_cur / CONN_FD_SHARE;
	return n < CONN_MIN ? CONN_MIN : (unsigned)n;
}

int
api_start(const char *spec, const char *token, uv_loop_t *loop,
    const struct api_routes *routes, struct api **out, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	pthread_condattr_t ca;
	struct api *a = NULL;
	char where[INET6_ADDRSTRLEN + 16];
	unsigned limit = conn_limit();
	int fd = -1, port = 0, rc;

	*out = NULL;
	if (token != NULL && *token == '\0') {
		snprintf(err, errlen, "api: the token is empty");
		return WP_EINVAL;
	}
	if ((rc = parse_listen(spec, &ss, &sslen, err, errlen)) != 0)
		return rc;
	if ((rc = open_listener(&ss, sslen, spec, &fd, &port, err,
	    errlen)) != 0)
		return rc;

	a = xcalloc(1, sizeof(*a));
	a->loop = loop;
	a->routes = *routes;
	a->port = port;
	a->timeout_ms = loop_timeout_ms();
	a->cut_logged_ms = mono_ms() - SLOW_LOG_MS; /* the first is said */
	if (token != NULL) {
		a->token = xstrdup(token);
		a->token_len = strlen(token);
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->cmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);

	/*
	 * MHD first, the async handle second: a failed MHD start then leaves
	 * nothing on the loop to close.  Requests in between get 503
	 * (a->ready is still 0).
	 */
	/*
	 * MHD_USE_AUTO picks epoll on Linux.  One address may hold half the
	 * slots: loopback clients all come from 127.0.0.1, so a tighter cap
	 * would lock Prometheus out along with a local flood; the request
	 * deadline is what frees the slots a flood takes.
	 */
	a->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
	    0, NULL, NULL, on_request, a,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)a,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)POOL_THREADS,
	    MHD_OPTION_CONNECTION_LIMIT, limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, limit / 2,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONN_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, (void *)a,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)a,
	    MHD_OPTION_END);
	if (a->mhd == NULL) {
		snprintf(err, errlen, "listen %s: cannot start the HTTP "
		    "server (see the log)", spec);
		/*
		 * Depending on where it failed, MHD may or may not have
		 * closed the socket it was handed (option errors leave it
		 * open, later failures close it), so close it only if it is
		 * still open.  The daemon calls api_start at start-up, before
		 * it has threads that open descriptors, so the number has
		 * not been reused in between.
		 */
		if (fcntl(fd, F_GETFD) != -1)
			close(fd);
		rc = WP_EIO;
		goto fail;
	}
	if ((rc = uv_async_init(loop, &a->async, on_async)) != 0) {
		snprintf(err, errlen, "api: uv_async_init: %s",
		    uv_strerror(rc));
		MHD_stop_daemon(a->mhd);
		rc = WP_EIO;
		goto fail;
	}
	a->async.data = a;
	if ((rc = pthread_create(&a->sweeper, NULL, sweeper_main, a)) != 0) {
		snprintf(err, errlen, "api: cannot start a thread: %s",
		    strerror(rc));
		MHD_stop_daemon(a->mhd);
		a->mhd = NULL;
		uv_close((uv_handle_t *)&a->async, on_closed);
		return WP_EIO;
	}
	a->sweeper_running = 1;
	pthread_mutex_lock(&a->mu);
	a->ready = 1;
	pthread_mutex_unlock(&a->mu);

	format_addr(&ss, port, where, sizeof(where));
	log_info("api: listening on %s (at most %u connections, %u per "
	    "client address; a request must arrive within %d s)", where,
	    limit, limit / 2, REQUEST_DEADLINE_MS / 1000);
	*out = a;
	return 0;
fail:
	api_free(a);
	return rc;
}

int
api_port(const struct api *a)
{
	return a == NULL ? 0 : a->port;
}

int
api_set_token(struct api *a, const char *token)
{
	char *fresh = NULL, *old;
	size_t len = 0, oldlen;
	int changed;

	if (token != NULL && *token == '\0')
		return WP_EINVAL;
	if (token != NULL) {
		fresh = xstrdup(token);
		len = strlen(token);
	}
	pthread_mutex_lock(&a->mu);
	old = a->token;
	oldlen = a->token_len;
	changed = (old == NULL) != (fresh == NULL) || (old != NULL &&
	    (oldlen != len || !token_equal(fresh, old, oldlen)));
	a->token = fresh;
	a->token_len = len;
	pthread_mutex_unlock(&a->mu);
	if (old != NULL) {
		explicit_bzero(old, oldlen);
		free(old);
	}
	return changed;
}

/*
 * Resume every waiting connection (it answers 503), stop the sweeper and
 * MHD (which joins its threads and closes every connection), then close
 * the async handle.  The struct is freed in the
 * close callback, on a later turn of the loop.
 */
void
api_stop(struct api *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stopping = 1;
	pthread_cond_broadcast(&a->cv);
	/* MHD must not stop with a connection suspended (it aborts): each
	 * waiting one is resumed and answers 503.  None is suspended after
	 * this: job_submit sees a->stopping and resumes its own. */
	(void)expire_jobs(a, 1);
	pthread_mutex_unlock(&a->mu);
	if (a->sweeper_running)
		pthread_join(a->sweeper, NULL);
	MHD_stop_daemon(a->mhd);
	uv_close((uv_handle_t *)&a->async, on_closed);
}
