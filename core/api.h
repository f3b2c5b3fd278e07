/*
 * api -- the HTTP status API (libmicrohttpd).
 *
 * Routes: GET /healthz (200 "ok", never needs the token), GET /api/monitors,
 * GET /api/monitor, GET /metrics, GET /api/alerts, POST
 * /api/alerts/NAME/test.  Anything else: 404; other methods: 405.
 * With a token, every route but /healthz needs "Authorization: Bearer
 * TOKEN" (401 otherwise, compared in constant time).
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

#include <uv.h>

struct api;
/* One asynchronous answer (POST /api/alerts/NAME/test). */
struct api_call;

struct api_routes {
	/* Each returns a malloc'd NUL-terminated body (the API frees it), or
	 * NULL for 500.  Called on the loop thread. */
	char *(*monitors_json)(void *arg);   /* GET /api/monitors */
	char *(*opmon_json)(void *arg);      /* GET /api/monitor */
	char *(*metrics_text)(void *arg);    /* GET /metrics */
	void *arg;
	char *(*alerts_json)(void *arg);     /* GET /api/alerts */
	/* POST /api/alerts/NAME/test: start it on the loop thread and answer
	 * through api_call_answer() exactly once, now or later (within the
	 * loop timeout plus 60 s, else the client got 503).  NAME is
	 * borrowed for the call. */
	void (*alert_test)(void *arg, const char *name, struct api_call *call);
};

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
/* The answer of CALL (routes.alert_test): STATUS and BODY (malloc'd JSON,
 * taken over; NULL gives 500).  Exactly once per call; loop thread. */
void api_call_answer(struct api_call *call, unsigned status, char *body);
/* Stop serving and free.  Loop thread; NULL is fine. */
void api_stop(struct api *a);

#endif
