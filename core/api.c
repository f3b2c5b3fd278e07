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
 * Admin requests (routes.admin) carry a body: the token and the declared
 * length are judged on the first call, the body is gathered on the pool
 * thread (capped), and the job goes to the loop once it is whole.  The
 * loop answers it with api_answer(), at once or later (a check run on
 * request); until then the loop's reference stays with the job and the
 * api struct outlives api_stop() (a->pending).
 *
 * Test seam: WP_API_LOOP_TIMEOUT_MS, read once in api_start, replaces the
 * 5 s loop timeout.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

#include <jansson.h>

#include "api.h"
#include "history.h"
#include "log.h"
#include "statuspage.h"
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

enum route { R_HEALTHZ, R_MONITORS, R_OPMON, R_METRICS, R_ADMIN, R_PUSH,
	R_ALERTS, R_CLUSTER, R_CLUSTER_SD };

#define ADMIN_PREFIX "/api/monitors/"
#define SILENCES_PATH "/api/silences"
#define ALERTS_PREFIX "/api/alerts/" /* POST /api/alerts/NAME/test */
#define PUSH_PREFIX "/push/"
#define PUSH_LOGGED "/push/..." /* the path without its secret */
#define HTTP_TOO_LARGE 413 /* MHD renamed its macro between versions */

static const struct {
	const char *path;
	enum route route;
} routes_table[] = {
	{ "/healthz", R_HEALTHZ },
	{ "/api/monitors", R_MONITORS },
	{ "/api/monitor", R_OPMON },
	{ "/metrics", R_METRICS },
	{ "/api/alerts", R_ALERTS },
	{ "/api/cluster", R_CLUSTER },
	{ "/api/cluster/sd", R_CLUSTER_SD },
};

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
	/* A handler request (routes.admin or routes.silences, in handle):
	 * read while `reading`, answered with its own status and header
	 * (api_answer). */
	struct api *a;
	void (*handle)(void *arg, const struct api_request *req);
	int admin, reading, too_big;
	int push;			/* routes.push: url holds a secret */
	struct sbuf in;
	char *method, *url, *if_match;
	char *query;			/* push: the rebuilt query string */
	unsigned status;
	char *hname, *hval;
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
	char where[INET6_ADDRSTRLEN + 16]; /* the bound address, host:port */

	pthread_mutex_t mu;
	pthread_cond_t cv;	/* wakes the sweeper: a new job, or stop */
	struct api_job *head, *tail;	/* queued for the loop */
	struct api_job *waiting;	/* suspended connections */
	_Atomic int ready;	/* the async handle exists */
	int stopping;

	pthread_mutex_t cmu;	/* the connection list and sweep counters */
	struct api_conn *conns;
	pthread_t sweeper;
	int sweeper_running;
	int pending;		/* admin jobs the loop has not answered yet */
	int closed;		/* api_stop done: freed when pending is 0 */
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
	free(j->query);
	free(j->in.data);
	free(j->method);
	free(j->url);
	free(j->if_match);
	free(j->hname);
	free(j->hval);
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
		if (j->admin) {
			struct api_request req = { j->method, j->url,
			    j->in.data != NULL ? j->in.data : "", j->in.len,
			    j->if_match, j, j->query };
			/* The loop's reference goes with the job to the
			 * handler; api_answer() drops it. */
			a->pending++;
			pthread_mutex_unlock(&a->mu);
			j->handle(a->routes.arg, &req);
			continue;
		}
		pthread_mutex_unlock(&a->mu);
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
 * job for the loop to call RENDER.  Returns the job (the connection's
 * reference; on_completed drops it), which is resumed at the latest by the
 * deadline; or NULL if the API is starting or stopping (C is not
 * suspended then).
 */
static int job_queue(struct api *a, struct MHD_Connection *c,
    struct api_job *j);

static struct api_job *
job_submit(struct api *a, struct MHD_Connection *c, char *(*render)(void *))
{
	struct api_job *j;

	j = xcalloc(1, sizeof(*j));
	j->render = render;
	if (job_queue(a, c, j) != 0) {
		free(j);
		return NULL;
	}
	return j;
}

/*
 * job_submit() of a job the connection holds already (an admin request,
 * once its body is in).  Returns 0, or -1 if the API is starting or
 * stopping (C is not suspended then; J is untouched).
 */
static int
job_queue(struct api *a, struct MHD_Connection *c, struct api_job *j)
{
	j->conn = c;
	j->deadline_ms = mono_ms() + a->timeout_ms;
	/* Suspended before anyone can see the job, so that no resume can
	 * come first. */
	MHD_suspend_connection(c);
	pthread_mutex_lock(&a->mu);
	if (!a->ready || a->stopping) {
		pthread_mutex_unlock(&a->mu);
		MHD_resume_connection(c);
		return -1;
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
	return 0;
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
	if (j->push)
		url = PUSH_LOGGED;
	if (done && j->admin) {
		log_debug("api: %s %s -> %u", QSTR(method), QSTR(url),
		    j->status);
		return reply(c, j->status, CT_JSON, body != NULL ? body : "",
		    body != NULL, j->hname, j->hval);
	}
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
	log_debug("api: %s %s -> 200", method, url);
	return reply(c, MHD_HTTP_OK, route == R_METRICS ? CT_METRICS : CT_JSON,
	    body, 1, NULL, NULL);
}

/*
 * Mutations always need the token, whatever GETs need: returns 0 when the
 * request carries "Authorization: Bearer <token>", else the status to
 * answer -- 403 when no api_token_file is set (mutations stay off until
 * one is), 401 when the token is missing or wrong.  One read of the token
 * under a->mu, so a reload in between cannot open a gap.
 */
static unsigned
api_require_token(struct api *a, struct MHD_Connection *c)
{
	const char *v;
	unsigned rc;

	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	pthread_mutex_lock(&a->mu);
	if (a->token == NULL)
		rc = MHD_HTTP_FORBIDDEN;
	else if (v == NULL || strncasecmp(v, "Bearer", 6) != 0 ||
	    (v[6] != ' ' && v[6] != '\t'))
		rc = MHD_HTTP_UNAUTHORIZED;
	else {
		v += 6;
		while (*v == ' ' || *v == '\t')
			v++;
		rc = token_equal(v, a->token, a->token_len) ? 0 :
		    MHD_HTTP_UNAUTHORIZED;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

#define NO_TOKEN_MSG "changes through the API need a token, and none is " \
	"set: put one in a file only its owner can read, set [agent] " \
	"api_token_file = PATH and reload (SIGHUP); then send " \
	"\\\"Authorization: Bearer TOKEN\\\""

/*
 * The first call of an admin request (routes.admin, or routes.silences:
 * HANDLE), on a pool thread: the token (mutations always need it; reads
 * when one is set) and the declared body size are judged before any of
 * the body is read.  Returns MHD's answer; *state becomes the job that
 * gathers the body, for HANDLE on the loop.
 */
static API_MHD_RESULT
admin_begin(struct api *a, struct MHD_Connection *c, const char *method,
    const char *url, void **state,
    void (*handle)(void *, const struct api_request *))
{
	const char *v;
	struct api_job *j;
	long long len;
	unsigned rc = 0;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		rc = api_require_token(a, c);
	else if (!authorized(a, c))
		rc = MHD_HTTP_UNAUTHORIZED;
	if (rc != 0) {
		log_debug("api: %s %s -> %u", QSTR(method), QSTR(url), rc);
		return rc == MHD_HTTP_FORBIDDEN ?
		    reply_error(c, rc, NO_TOKEN_MSG, NULL, NULL) :
		    reply_error(c, rc, "unauthorized",
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	}
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (v != NULL && (parse_int(v, 0, API_BODY_MAX, &len) != 0)) {
		log_debug("api: %s %s -> 413", QSTR(method), QSTR(url));
		return reply_error(c, HTTP_TOO_LARGE, "the body is "
		    "larger than 65536 bytes", NULL, NULL);
	}
	j = xcalloc(1, sizeof(*j));
	j->a = a;
	j->admin = 1;
	j->handle = handle;
	j->reading = 1;
	j->refs = 1;
	j->method = xstrdup(method);
	j->url = xstrdup(url);
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_MATCH);
	j->if_match = v != NULL ? xstrdup(v) : NULL;
	*state = j;
	return MHD_YES;
}

/*
 * The next calls of an admin request while its body arrives: gather at
 * most API_BODY_MAX bytes (the rest is read and dropped, then 413), and at
 * the end hand the job to the loop.
 */
static API_MHD_RESULT
admin_upload(struct api *a, struct MHD_Connection *c, struct api_job *j,
    const char *upload, size_t *upload_len)
{
	size_t max = j->push ? API_PUSH_BODY_MAX : API_BODY_MAX;
	const char *url = j->push ? PUSH_LOGGED : j->url;

	if (*upload_len > 0) {
		if (j->in.len + *upload_len > max)
			j->too_big = 1;
		else
			sbuf_append(&j->in, upload, *upload_len);
		*upload_len = 0;
		return MHD_YES;
	}
	j->reading = 0;
	if (j->too_big) {
		log_debug("api: %s %s -> 413", QSTR(j->method), QSTR(url));
		return reply(c, HTTP_TOO_LARGE, CT_JSON, xasprintf("{\"error\":"
		    "\"the body is larger than %zu bytes\"}\n", max), 1, NULL,
		    NULL);
	}
	if (j->in.data == NULL)
		sbuf_append(&j->in, "", 0);
	if (job_queue(a, c, j) != 0) {
		log_debug("api: %s %s -> 503 (stopping)", QSTR(j->method),
		    QSTR(url));
		return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "service unavailable", NULL, NULL);
	}
	return MHD_YES;
}

/* Append S percent-encoded (all but A-Z a-z 0-9 - . _ ~) to B.  MHD has
 * decoded the arguments, a '+' to a space as in a form, so a '+' here
 * was %2B and stays one. */
static void
query_encode(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			sbuf_append(b, s, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		sbuf_append(b, e, 3);
	}
}

/* MHD's iterator over the GET arguments: NAME[=VALUE] pairs into a
 * query string (cls: the struct sbuf). */
static API_MHD_RESULT
query_pair(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct sbuf *b = cls;

	(void)kind;
	if (b->len > 0)
		sbuf_append(b, "&", 1);
	query_encode(b, key);
	if (value != NULL) {
		sbuf_append(b, "=", 1);
		query_encode(b, value);
	}
	return MHD_YES;
}

/*
 * The first call of a push (GET or POST /push/TOKEN), on a pool thread.
 * No API token is asked: the path's TOKEN is the credential, judged on
 * the loop (routes.push) -- a path that cannot hold one (empty, or with
 * another '/') is 404 at once, like any unknown path.  The body, capped
 * at API_PUSH_BODY_MAX, is gathered as an admin request's is.  Nothing
 * logged here names the path.
 */
static API_MHD_RESULT
push_begin(struct api *a, struct MHD_Connection *c, const char *method,
    const char *url, void **state)
{
	const char *token = url + sizeof(PUSH_PREFIX) - 1, *v;
	struct api_job *j;
	struct sbuf q = { 0 };
	long long len;

	if (token[0] == '\0' || strchr(token, '/') != NULL) {
		log_debug("api: %s %s -> 404", QSTR(method), PUSH_LOGGED);
		return reply_error(c, MHD_HTTP_NOT_FOUND, "not found", NULL,
		    NULL);
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
		log_debug("api: %s %s -> 405", QSTR(method), PUSH_LOGGED);
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed", MHD_HTTP_HEADER_ALLOW, "GET, POST");
	}
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (v != NULL && parse_int(v, 0, API_PUSH_BODY_MAX, &len) != 0) {
		log_debug("api: %s %s -> 413", QSTR(method), PUSH_LOGGED);
		return reply(c, HTTP_TOO_LARGE, CT_JSON, xasprintf("{\"error\":"
		    "\"the body is larger than %d bytes\"}\n",
		    API_PUSH_BODY_MAX), 1, NULL, NULL);
	}
	(void)MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_pair,
	    &q);
	sbuf_append(&q, "", 0);
	j = xcalloc(1, sizeof(*j));
	j->a = a;
	j->admin = 1;
	j->push = 1;
	j->handle = a->routes.push;
	j->reading = 1;
	j->refs = 1;
	j->method = xstrdup(method);
	j->url = xstrdup(url);
	j->query = q.data;
	*state = j;
	return MHD_YES;
}

/*
 * MHD's access handler, on a pool thread.  A request is answered on the
 * first call, or -- for a route the loop renders -- on the call after its
 * connection is resumed (*state is its job then).  Only the admin routes
 * take a body (gathered by admin_upload); MHD discards (and closes the
 * connection after) any body a client sends to another route.
 */
static int history_route(const char *url);
static API_MHD_RESULT api_history(struct api *a, struct MHD_Connection *c,
    const char *url, const char *method);
static API_MHD_RESULT api_status(struct api *a, struct MHD_Connection *c,
    const char *url, const char *method, void **state);

static API_MHD_RESULT
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **state)
{
	struct api *a = cls;
	enum route route = R_HEALTHZ;
	char *(*fn)(void *) = NULL;
	void (*handle)(void *, const struct api_request *) = NULL;
	size_t i;
	int found = 0;

	conn_busy(a, c, 1);
	if (*state == NULL && a->routes.history != NULL &&
	    history_route(url) >= 0)
		return api_history(a, c, url, method);
	if (a->routes.status_snapshot != NULL && statuspage_route(url) != 0)
		return api_status(a, c, url, method, state);
	for (i = 0; i < sizeof(routes_table) / sizeof(routes_table[0]); i++) {
		if (strcmp(url, routes_table[i].path) == 0) {
			route = routes_table[i].route;
			found = 1;
			break;
		}
	}
	if (!found && strncmp(url, ADMIN_PREFIX, sizeof(ADMIN_PREFIX) - 1) ==
	    0 && a->routes.admin != NULL) {
		route = R_ADMIN;
		handle = a->routes.admin;
		found = 1;
	}
	/* /api/silences and /api/silences/ID (hold.c): the same kind of
	 * handler route as the admin API's. */
	if (!found && strncmp(url, SILENCES_PATH, sizeof(SILENCES_PATH) - 1) ==
	    0 && (url[sizeof(SILENCES_PATH) - 1] == '\0' ||
	    url[sizeof(SILENCES_PATH) - 1] == '/') &&
	    a->routes.silences != NULL) {
		route = R_ADMIN;
		handle = a->routes.silences;
		found = 1;
	}
	/* POST /api/alerts/NAME/test (main.c): a mutation through the same
	 * kind of handler route, so the token rule is the admin API's. */
	if (!found && strncmp(url, ALERTS_PREFIX, sizeof(ALERTS_PREFIX) - 1) ==
	    0 && a->routes.alert_test != NULL) {
		route = R_ADMIN;
		handle = a->routes.alert_test;
		found = 1;
	}
	if (!found && strncmp(url, PUSH_PREFIX, sizeof(PUSH_PREFIX) - 1) ==
	    0 && a->routes.push != NULL) {
		route = R_PUSH;
		found = 1;
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
	case R_CLUSTER:
		fn = a->routes.cluster_json;
		break;
	case R_CLUSTER_SD:
		fn = a->routes.cluster_sd_json;
		break;
	case R_HEALTHZ:
	case R_ADMIN:
	case R_PUSH:
		break;
	}
	if (*state != NULL && ((struct api_job *)*state)->reading)
		return admin_upload(a, c, *state, upload, upload_len);
	if (*state != NULL)
		return reply_job(a, c, *state, route, method, url);
	if (route == R_ADMIN)
		return admin_begin(a, c, method, url, state, handle);
	if (route == R_PUSH)
		return push_begin(a, c, method, url, state);
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
	if ((*state = job_submit(a, c, fn)) == NULL) {
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
	int later;

	/* An admin answer still to come (a check in flight) frees it. */
	pthread_mutex_lock(&a->mu);
	later = a->pending > 0;
	a->closed = 1;
	pthread_mutex_unlock(&a->mu);
	if (!later)
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
	str_copy(a->where, sizeof(a->where), where);
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
const char *
api_address(const struct api *a)
{
	return a != NULL ? a->where : NULL;
}

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

void
api_answer(struct api_job *j, unsigned status, char *body, const char *hname,
    const char *hval)
{
	struct api *a = j->a;
	struct MHD_Connection *c = NULL;
	int free_api;

	pthread_mutex_lock(&a->mu);
	if (j->suspended) {
		j->status = status;
		j->body = body;
		body = NULL;
		if (hname != NULL && hval != NULL) {
			j->hname = xstrdup(hname);
			j->hval = xstrdup(hval);
		}
		j->done = 1;
		c = job_unwait(a, j);
	}
	free(body);	/* its client got 503 meanwhile, or left */
	job_unref(j);
	free_api = --a->pending == 0 && a->closed;
	pthread_mutex_unlock(&a->mu);
	if (c != NULL)
		MHD_resume_connection(c);
	if (free_api)
		api_free(a);
}

void
api_defer(struct api_job *j, int64_t ms)
{
	pthread_mutex_lock(&j->a->mu);
	j->deadline_ms = mono_ms() + ms;
	pthread_mutex_unlock(&j->a->mu);
}

/* ---- history: /api/monitors/NAME/{checks,uptime,incidents} ---- */

#define HIST_PARAMS_MAX	8	/* query parameters a request may carry */
#define HIST_WINDOWS_MAX 8	/* windows one uptime request may ask */

/* The query parameters of a request, checked against the route's list. */
struct hist_args {
	const char *const *allowed;
	json_t *errors;		/* [{"param", "message"}] */
	size_t n;
};

static void
hist_error(struct hist_args *ha, const char *param, const char *msg)
{
	json_t *e = json_pack("{s:s, s:s}", "param", param, "message", msg);

	/* A name that is not UTF-8 cannot be quoted back. */
	if (e == NULL)
		e = json_pack("{s:s, s:s}", "param", "?", "message", msg);
	json_array_append_new(ha->errors, e);
}

static API_MHD_RESULT
hist_arg_check(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct hist_args *ha = cls;
	size_t i;

	(void)kind;
	(void)value;
	if (++ha->n > HIST_PARAMS_MAX) {
		if (ha->n == HIST_PARAMS_MAX + 1)
			hist_error(ha, "", "too many query parameters");
		return MHD_YES;
	}
	for (i = 0; ha->allowed[i] != NULL; i++)
		if (strcmp(key, ha->allowed[i]) == 0)
			return MHD_YES;
	hist_error(ha, key, "unknown query parameter");
	return MHD_YES;
}

/* A time: unix milliseconds, or an age before NOW ("24h", "7d").  0 and
 * *ms, or -1. */
static int
hist_time(const char *v, int64_t now, int64_t *ms)
{
	char *end;
	long long n;
	int64_t age;

	if (history_parse_window(v, &age) == 0) {
		*ms = now - age;
		return 0;
	}
	if (*v < '0' || *v > '9' || strlen(v) > 15)
		return -1;
	n = strtoll(v, &end, 10);
	if (*end != '\0')
		return -1;
	*ms = (int64_t)n;
	return 0;
}

/* An integer in [min, max], or -1. */
static long long
hist_int(const char *v, long long min, long long max)
{
	char *end;
	long long n;

	if (*v < '0' || *v > '9' || strlen(v) > 9)
		return -1;
	n = strtoll(v, &end, 10);
	return *end == '\0' && n >= min && n <= max ? n : -1;
}

static json_t *
num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* Answer a jansson value (taken) with STATUS. */
static API_MHD_RESULT
hist_reply(struct MHD_Connection *c, unsigned int status, json_t *v)
{
	/* jansson allocates with malloc(): the reply frees it. */
	char *body = json_dumps(v, JSON_COMPACT);

	json_decref(v);
	if (body == NULL)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "internal error", NULL, NULL);
	return reply(c, status, CT_JSON, body, 1, NULL, NULL);
}

static json_t *
hist_checks(struct api *a, struct MHD_Connection *c, int64_t id,
    struct hist_args *ha, int64_t now)
{
	struct history_check *v = NULL;
	char next[HISTORY_CURSOR_MAX];
	const char *p;
	int64_t since = 0, until = 0;
	long long limit = 100;
	size_t n = 0, i;
	json_t *rows, *o;
	int rc;

	if ((p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "since")) != NULL && hist_time(p, now, &since) != 0)
		hist_error(ha, "since", "unix milliseconds, or an age such "
		    "as 24h or 7d");
	if ((p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "until")) != NULL && hist_time(p, now, &until) != 0)
		hist_error(ha, "until", "unix milliseconds, or an age such "
		    "as 24h or 7d");
	if ((p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "limit")) != NULL && (limit = hist_int(p, 1,
	    HISTORY_PAGE_MAX)) < 0)
		hist_error(ha, "limit", "an integer from 1 to 1000");
	p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor");
	if (json_array_size(ha->errors) > 0)
		return NULL;
	rc = history_checks(a->routes.history, id, since, until,
	    (size_t)limit, p, &v, &n, next);
	if (rc == WP_EINVAL) {
		hist_error(ha, "cursor", "not a cursor this API returned");
		return NULL;
	}
	if (rc != 0)
		return json_null();
	rows = json_array();
	for (i = 0; i < n; i++) {
		o = json_pack("{s:I, s:b, s:o, s:o, s:s, s:o, s:i}",
		    "ts", (json_int_t)v[i].ts_ms, "ok", v[i].ok,
		    "latency_ms", v[i].latency_ms >= 0 ?
		    json_real(v[i].latency_ms) : json_null(),
		    "status_code", v[i].status_code >= 0 ?
		    json_integer(v[i].status_code) : json_null(),
		    "reason", v[i].reason,
		    "error", v[i].error[0] != '\0' ? json_string(v[i].error) :
		    json_null(), "attempts", v[i].attempts);
		/* Cluster mode's rows say who made them (store.h); a
		 * single-mode row has no such fields. */
		if (v[i].agent[0] != '\0')
			json_object_set_new(o, "agent",
			    json_string(v[i].agent));
		if (v[i].location[0] != '\0')
			json_object_set_new(o, "location",
			    json_string(v[i].location));
		if (v[i].grid >= 0)
			json_object_set_new(o, "grid",
			    json_integer((json_int_t)v[i].grid));
		json_array_append_new(rows, o);
	}
	free(v);
	return json_pack("{s:o, s:o}", "checks", rows, "next_cursor",
	    next[0] != '\0' ? json_string(next) : json_null());
}

static json_t *
hist_uptime(struct api *a, struct MHD_Connection *c, int64_t id,
    struct hist_args *ha, int64_t now)
{
	static const char *const defaults = "24h,7d,30d,90d";
	char names[HIST_WINDOWS_MAX][8], buf[128], *tok, *save;
	int64_t ms[HIST_WINDOWS_MAX];
	struct history_uptime u;
	const char *p;
	size_t n = 0, i;
	json_t *w;

	p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "windows");
	if (p == NULL)
		p = defaults;
	if (strlen(p) >= sizeof(buf)) {
		hist_error(ha, "windows", "too long");
		return NULL;
	}
	str_copy(buf, sizeof(buf), p);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (n == HIST_WINDOWS_MAX) {
			hist_error(ha, "windows", "at most 8 windows");
			return NULL;
		}
		if (strlen(tok) >= sizeof(names[0]) ||
		    history_parse_window(tok, &ms[n]) != 0) {
			hist_error(ha, "windows", "a comma-separated list of "
			    "windows in whole hours or days (24h, 7d, up to "
			    "400d)");
			return NULL;
		}
		str_copy(names[n++], sizeof(names[0]), tok);
	}
	if (n == 0) {
		hist_error(ha, "windows", "no window given");
		return NULL;
	}
	w = json_object();
	for (i = 0; i < n; i++) {
		if (history_uptime(a->routes.history, &id, 1, now, ms[i],
		    &u) != 0) {
			json_decref(w);
			return json_null();
		}
		json_object_set_new(w, names[i], json_pack("{s:I, s:I, s:o, "
		    "s:I, s:I, s:I, s:I, s:f, s:I, s:o, s:o, s:o, s:o}",
		    "from", (json_int_t)u.from_ms, "to", (json_int_t)u.to_ms,
		    "uptime", num_or_null(u.uptime),
		    "checks", (json_int_t)u.checks,
		    "up", (json_int_t)u.up, "degraded", (json_int_t)u.degraded,
		    "down", (json_int_t)u.down,
		    "down_seconds", u.down_seconds,
		    "incidents", (json_int_t)u.incidents,
		    "latency_avg_ms", num_or_null(u.latency_avg_ms),
		    "latency_p50_ms", num_or_null(u.latency_p50_ms),
		    "latency_p95_ms", num_or_null(u.latency_p95_ms),
		    "latency_p99_ms", num_or_null(u.latency_p99_ms)));
	}
	return json_pack("{s:o}", "windows", w);
}

static json_t *
hist_incidents(struct api *a, struct MHD_Connection *c, int64_t id,
    struct hist_args *ha, int64_t now)
{
	struct history_incident *v = NULL;
	long long limit = 20;
	const char *p;
	size_t n = 0, i;
	json_t *rows;

	if ((p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "limit")) != NULL && (limit = hist_int(p, 1, 1000)) < 0) {
		hist_error(ha, "limit", "an integer from 1 to 1000");
		return NULL;
	}
	if (history_incidents(a->routes.history, id, (size_t)limit, now, &v,
	    &n) != 0)
		return json_null();
	rows = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(rows, json_pack("{s:I, s:o, s:f, s:s, "
		    "s:o}", "start", (json_int_t)v[i].start_ms,
		    "end", v[i].end_ms != 0 ? json_integer(v[i].end_ms) :
		    json_null(), "duration_s", v[i].duration_s,
		    "reason", v[i].reason, "error", v[i].error[0] != '\0' ?
		    json_string(v[i].error) : json_null()));
	free(v);
	return json_pack("{s:o}", "incidents", rows);
}

static const struct {
	const char *suffix;
	const char *const *params;
	json_t *(*fn)(struct api *, struct MHD_Connection *, int64_t,
	    struct hist_args *, int64_t);
} hist_routes[] = {
	{ "/checks", (const char *const[]){ "since", "until", "limit",
	    "cursor", NULL }, hist_checks },
	{ "/uptime", (const char *const[]){ "windows", NULL }, hist_uptime },
	{ "/incidents", (const char *const[]){ "limit", NULL },
	    hist_incidents },
};

/*
 * Which of hist_routes URL is: /api/monitors/NAME/SUFFIX with NAME one
 * path segment of 1 to 127 bytes; -1 for any other URL, which the other
 * routes answer (the admin API's /api/monitors/NAME... among them).
 */
static int
history_route(const char *url)
{
	const char *name = url + 14, *slash;
	size_t i, len;

	if (strncmp(url, "/api/monitors/", 14) != 0 ||
	    (slash = strchr(name, '/')) == NULL)
		return -1;
	len = (size_t)(slash - name);
	if (len == 0 || len >= 128)
		return -1;
	for (i = 0; i < sizeof(hist_routes) / sizeof(hist_routes[0]); i++)
		if (strcmp(slash, hist_routes[i].suffix) == 0)
			return (int)i;
	return -1;
}

/*
 * GET /api/monitors/NAME/checks|uptime|incidents (history_route()), on an
 * MHD thread: the history handle's own read-only connection answers, so
 * the loop is not involved and the writer is never waited for.  A name
 * the database has never seen: 404; any bad query parameter: 400 with
 * {"errors":[{"param","message"}]}; another method: 405.
 */
static API_MHD_RESULT
api_history(struct api *a, struct MHD_Connection *c, const char *url,
    const char *method)
{
	struct hist_args ha = { 0 };
	const char *name = url + 14;
	char mon[128];
	int64_t id = 0, now = wall_ms();
	json_t *body;
	int i = history_route(url);
	size_t len = (size_t)(strchr(name, '/') - name);

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (!authorized(a, c)) {
		log_debug("api: %s %s -> 401", method, url);
		return reply_error(c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	}
	memcpy(mon, name, len);
	mon[len] = '\0';
	ha.allowed = hist_routes[i].params;
	ha.errors = json_array();
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, hist_arg_check,
	    &ha);
	if (json_array_size(ha.errors) == 0 &&
	    history_monitor_id(a->routes.history, mon, &id) != 0) {
		json_decref(ha.errors);
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "database error", NULL, NULL);
	}
	if (json_array_size(ha.errors) == 0 && id == 0) {
		json_decref(ha.errors);
		log_debug("api: %s %s -> 404 (no such monitor)", method, url);
		return reply_error(c, MHD_HTTP_NOT_FOUND, "no such monitor",
		    NULL, NULL);
	}
	body = json_array_size(ha.errors) == 0 ?
	    hist_routes[i].fn(a, c, id, &ha, now) : NULL;
	if (json_array_size(ha.errors) > 0) {
		json_decref(body);
		log_debug("api: %s %s -> 400", method, url);
		return hist_reply(c, MHD_HTTP_BAD_REQUEST, json_pack("{s:o}",
		    "errors", ha.errors));
	}
	json_decref(ha.errors);
	if (body == NULL || json_is_null(body)) {
		json_decref(body);
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "database error", NULL, NULL);
	}
	/* Not UTF-8: the monitor cannot be in the database either. */
	json_object_set_new(body, "monitor", json_string(mon));
	log_debug("api: %s %s -> 200", method, url);
	return hist_reply(c, MHD_HTTP_OK, body);
}

/* ---- the status page and badges (statuspage.h) ---- */

static const char *
status_arg(void *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

struct status_each {
	void (*fn)(void *cls, const char *key);
	void *cls;
};

static API_MHD_RESULT
status_each_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct status_each *e = cls;

	(void)kind;
	(void)value;
	e->fn(e->cls, key);
	return MHD_YES;
}

static void
status_each(void *c, void (*fn)(void *cls, const char *key), void *cls)
{
	struct status_each e = { fn, cls };

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, status_each_cb,
	    &e);
}

/*
 * GET / and /badge/NAME/{status,uptime}.svg.  First call: the token
 * (unless [status] public), then the loop takes the snapshot (a job, as
 * for the other routes).  Second call, on the pool thread: the page or
 * badge is rendered from the snapshot and the history handle, so the
 * loop never waits for the database.
 */
static API_MHD_RESULT
api_status(struct api *a, struct MHD_Connection *c, const char *url,
    const char *method, void **state)
{
	struct statuspage_reply r;
	struct MHD_Response *resp;
	struct api_job *j = *state;
	API_MHD_RESULT ret;
	char *snap = NULL;
	int done;

	if (j == NULL) {
		if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
		    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
			return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed", MHD_HTTP_HEADER_ALLOW,
			    "GET, HEAD");
		if (!statuspage_public() && !authorized(a, c)) {
			log_debug("api: %s %s -> 401", method, url);
			return reply_error(c, MHD_HTTP_UNAUTHORIZED,
			    "unauthorized", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			    "Bearer");
		}
		if ((*state = job_submit(a, c, a->routes.status_snapshot)) ==
		    NULL)
			return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "service unavailable", NULL, NULL);
		return MHD_YES;
	}
	pthread_mutex_lock(&a->mu);
	done = j->done;
	if (done) {
		snap = j->body;
		j->body = NULL;
	}
	pthread_mutex_unlock(&a->mu);
	if (!done || snap == NULL) {
		free(snap);
		return reply_error(c, done ? MHD_HTTP_INTERNAL_SERVER_ERROR :
		    MHD_HTTP_SERVICE_UNAVAILABLE, done ? "internal error" :
		    "service unavailable", NULL, NULL);
	}
	statuspage_answer(snap, a->routes.history, url, status_arg,
	    status_each, c, &r);
	free(snap);
	resp = MHD_create_response_from_buffer(r.len, r.body,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(r.body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, r.cache);
	MHD_add_response_header(resp, "Content-Security-Policy", r.csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	log_debug("api: %s %s -> %u", method, url, r.status);
	ret = MHD_queue_response(c, r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}
