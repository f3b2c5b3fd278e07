/*
 * statuspage -- the status page (GET /) and the SVG badges (GET
 * /badge/NAME/status.svg, /badge/NAME/uptime.svg?window=30d).
 *
 * Two halves, so that the loop thread does only the cheap part:
 *
 *   1. statuspage_snapshot(), on the loop thread (api.c runs it as a
 *      loop job): the monitors [status] monitors lets through, each with
 *      its name, group and live state, the page's title and footer -- one
 *      malloc'd block, copied from the manager in O(monitors).
 *   2. statuspage_answer(), on an API thread: the history of the
 *      monitors the answer shows (history.h: 90 daily bars, a 24-hour
 *      latency sparkline, incidents, uptime), from the API's read-only
 *      connection, and the HTML or SVG.
 *
 * What a page or badge shows, public or not (watchpost(8) says the same):
 * monitor names, groups, states, the reason word of an open incident
 * ("timeout", "refused", ...), uptime, latency and incident times.  Never
 * a monitor's definition, target, URL or error text (an error may quote a
 * URL with credentials or a server's answer); the API has those, behind
 * the token.  Monitors that [status] monitors leaves out do not exist for
 * the page and badges (404, as for an unknown name).
 *
 * Everything taken from the configuration or the database is HTML/XML
 * escaped.  The page carries a Content-Security-Policy with a fresh nonce
 * for its one <style> and its one <script> (reload every 60 s); no other
 * script, style, image, font or frame may load.
 */
#ifndef CORE_STATUSPAGE_H
#define CORE_STATUSPAGE_H

#include <stddef.h>

struct config;
struct history;

#define STATUSPAGE_PER_PAGE 50	/* monitors with bars per page */

/*
 * Take what the page needs from CFG ([status] and each monitor's group
 * and enabled flag): CFG is held (config_ref()) until the next call, and
 * its monitors are read from it, not copied.  Loop thread; call after
 * every configuration the manager applies (start-up, reload).  NULL
 * forgets it.
 */
void statuspage_configure(const struct config *cfg);

/* [status] public as last configured.  Any thread. */
int statuspage_public(void);

/*
 * Which answer URL (no query string) is: 1 the page ("/"), 2 a status
 * badge, 3 an uptime badge, 0 none of ours.  Any thread.
 */
int statuspage_route(const char *url);

/*
 * The snapshot (step 1): one malloc'd block that free() frees, or NULL
 * if memory ran out.  ARG is unused (the api_routes renderer form).  Loop
 * thread.
 */
char *statuspage_snapshot(void *arg);

/* An answer: status, content type, body (malloc'd; the caller frees),
 * and the headers it needs. */
struct statuspage_reply {
	unsigned status;
	const char *ctype;
	char *body;
	size_t len;
	char csp[320];		/* Content-Security-Policy */
	const char *cache;	/* Cache-Control */
};

/*
 * Answer URL (statuspage_route() != 0) from SNAP (statuspage_snapshot();
 * borrowed) and H (may be NULL: no history, empty bars).  ARG(C, NAME)
 * returns query parameter NAME or NULL; EACH(C, FN, CLS) calls FN(CLS,
 * key) for every query parameter, so unknown ones are refused (400).
 * The page takes page=N and group=NAME; the uptime badge window=24h, 7d,
 * 30d or 90d.  Fills *R; never fails (a database error is a 500 page).
 * Any thread.
 */
void statuspage_answer(const char *snap, struct history *h, const char *url,
    const char *(*arg)(void *c, const char *name),
    void (*each)(void *c, void (*fn)(void *cls, const char *key),
    void *cls), void *c, struct statuspage_reply *r);

#endif
