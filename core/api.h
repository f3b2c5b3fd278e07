/*
 * api -- the HTTP status API (libmicrohttpd).
 *
 * Routes: GET /healthz (200 "ok", never needs the token), GET /api/monitors,
 * GET /api/monitor, GET /metrics, everything under /api/monitors/NAME
 * (any method, with a body: routes->admin) but the history of one monitor,
 * GET /api/monitors/NAME/checks, /uptime and /incidents (api_history()),
 * GET /api/alerts, POST /api/alerts/NAME/test (routes->alert_test),
 * the status page and badges (api_status()), /api/silences and
 * /api/silences/ID (any method, with a body, as the admin routes:
 * routes->silences), and GET or POST /push/TOKEN (routes->push:
 * heartbeats; no API token asked, the path never logged).
 * Anything else: 404; other methods: 405.  With a token, every route but
 * /healthz and /push/TOKEN (and, with [status] public, the page and
 * badges) needs
 * "Authorization: Bearer TOKEN" (401 otherwise, compared in constant
 * time); a change (an admin request but GET or HEAD) needs it always, and
 * answers 403 when no token is set.
 *
 * The bodies are rendered by the caller's functions, which api.c always calls
 * on the libuv loop thread (it posts the request to the loop with a
 * uv_async and waits, bounded, for the answer), so renderers may read loop
 * state without locks.  If the loop does not answer within 5 s the request
 * gets 503.
 *
 * Limits (watchpost(8)): at most 4,096 connections (fewer when the
 * open-files limit is low), half of them from one client address; a
 * request must arrive whole within 10 s of the connection opening or of
 * the previous answer, else the connection is closed.
 */
#ifndef CORE_API_H
#define CORE_API_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct api;
struct api_job;

/*
 * A request for routes->admin.  Everything is borrowed for the call but
 * job, which stays valid until api_answer().  The API has checked the
 * token already: a request other than GET or HEAD carries it (without a
 * token file such requests get 403, with a wrong one 401, before the body
 * is read), and the body is at most API_BODY_MAX bytes (413 otherwise).
 */
#define API_BODY_MAX (64 * 1024)
struct api_request {
	const char *method;
	const char *path;       /* the URL's path, e.g. "/api/monitors/web" */
	const char *body;       /* body_len bytes, NUL-terminated; "" */
	size_t body_len;
	const char *if_match;   /* the If-Match header, or NULL */
	struct api_job *job;
	/* routes->push only: the query string without '?', rebuilt from
	 * the parsed arguments (each name and value percent-encoded again;
	 * a '+' sent is a space, as in a form); "" when there is none. */
	const char *query;
};

struct api_routes {
	/* Each returns a malloc'd NUL-terminated body (the API frees it), or
	 * NULL for 500.  Called on the loop thread. */
	char *(*monitors_json)(void *arg);   /* GET /api/monitors */
	char *(*opmon_json)(void *arg);      /* GET /api/monitor */
	char *(*metrics_text)(void *arg);    /* GET /metrics */
	void *arg;
	/* Every request under /api/monitors/NAME (admin.c); NULL: 404.
	 * Called on the loop thread; it answers req->job exactly once, at
	 * once or later, with api_answer(). */
	void (*admin)(void *arg, const struct api_request *req);
	/* GET /api/monitors/NAME/{checks,uptime,incidents}: answered on
	 * the API's own threads from this read-only handle (history.h;
	 * NULL: those routes answer 404).  Borrowed; it must outlive the
	 * API. */
	struct history *history;
	/* GET /, /badge/NAME/status.svg, /badge/NAME/uptime.svg: the
	 * status page (statuspage.h): this renderer takes its snapshot on
	 * the loop, the API's threads render it (NULL: those routes answer
	 * 404).  A token is needed unless statuspage_public(). */
	char *(*status_snapshot)(void *arg);
	/* /api/silences and /api/silences/ID (hold.c's hold_api); NULL:
	 * 404.  The same rules as admin: the token is checked and the body
	 * capped before it is called on the loop thread, and it answers
	 * req->job exactly once with api_answer(). */
	void (*silences)(void *arg, const struct api_request *req);
	/* GET or POST /push/TOKEN (a heartbeat, manager_push); NULL: 404.
	 * Never asks for the API token -- the path's TOKEN is the
	 * credential, which only the handler judges --; the body is at
	 * most API_PUSH_BODY_MAX bytes (413 otherwise); the request is
	 * never logged with its path.  Answered like admin, api_answer(). */
	void (*push)(void *arg, const struct api_request *req);
	char *(*alerts_json)(void *arg);     /* GET /api/alerts */
	char *(*cluster_json)(void *arg);    /* GET /api/cluster; NULL:
	                                      * 404 (no [cluster]) */
	char *(*cluster_sd_json)(void *arg); /* GET /api/cluster/sd */
	/* /api/alerts/NAME/... (main.c: POST /api/alerts/NAME/test); NULL:
	 * 404.  A handler route like admin's: the token is checked (a POST
	 * needs it always, 403 without a token file) and the body capped
	 * before it is called on the loop thread; it answers req->job
	 * exactly once with api_answer(), later when a delivery runs
	 * (api_defer() gives it the time). */
	void (*alert_test)(void *arg, const struct api_request *req);
};
#define API_PUSH_BODY_MAX 4096

/*
 * Listen on LISTEN ("127.0.0.1:9405", "[::1]:9405", "localhost:0"; port 0
 * picks a free port) and serve ROUTES.  TOKEN NULL: no authentication.
 * Call on the loop thread before uv_run (the listen socket is opened here,
 * so it can happen before a privilege drop).  Returns 0 and *out, or a
 * negative WP_E* code with a message in err.
 */
int api_start(const char *listen, const char *token, uv_loop_t *loop,
    const struct api_routes *routes, struct api **out, char *err,
    size_t errlen);
/* The port actually bound (useful with port 0). */
int api_port(const struct api *a);
/*
 * Replace the token (copied; NULL: no authentication from now on), for a
 * reload.  Requests that arrive afterwards are judged by the new one.
 * Returns 1 if it differs from the previous one, 0 if not, WP_EINVAL for
 * an empty token (nothing changes).  Any thread.
 */
int api_set_token(struct api *a, const char *token);
/*
 * Answer an admin request: STATUS with BODY (malloc'd JSON, taken over;
 * NULL: an empty body) and one extra header HNAME: HVAL (copied; NULL:
 * none), e.g. the ETag.  Loop thread, exactly once per job; a client that
 * has gone (or got 503 at the deadline, or the API stopped) is fine.
 */
void api_answer(struct api_job *job, unsigned status, char *body,
    const char *hname, const char *hval);
/* Give JOB until MS from now instead of the loop timeout (a check run on
 * request takes as long as the check).  Loop thread, before api_answer. */
void api_defer(struct api_job *job, int64_t ms);
/* Stop serving and free.  Loop thread; NULL is fine. */
void api_stop(struct api *a);
/* The address A listens on, "host:port" as logged ("[::1]:9100" for
 * IPv6); NULL for no API.  Borrowed until api_stop(). */
const char *api_address(const struct api *a);

#endif
