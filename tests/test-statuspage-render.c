/*
 * test-statuspage-render -- core/statuspage.c through its header: routes, the
 * snapshot of a configuration (its monitors disabled, so the manager runs
 * none and every one shows as paused), [status] monitors, escaping of the
 * title, groups and footer, paging and groups, query parameters, and the
 * badges' answers, all without a database (history NULL: empty bars).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "diag.h"
#include "statuspage.h"
#include "util.h"

static char dir[] = "/tmp/wp-statuspage.XXXXXX";
static struct config *cfg;
static char *snap;

/* The request's query parameters: "k=v" strings, NULL-terminated. */
static const char *const *query;

static const char *
q_arg(void *c, const char *name)
{
	const char *const *p;
	size_t n = strlen(name);

	(void)c;
	for (p = query; p != NULL && *p != NULL; p++)
		if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
			return *p + n + 1;
	return NULL;
}

static void
q_each(void *c, void (*fn)(void *cls, const char *key), void *cls)
{
	const char *const *p;
	char key[64];

	(void)c;
	for (p = query; p != NULL && *p != NULL; p++) {
		const char *eq = strchr(*p, '=');
		size_t n = eq != NULL ? (size_t)(eq - *p) : strlen(*p);

		assert_true(n < sizeof(key));
		memcpy(key, *p, n);
		key[n] = '\0';
		fn(cls, key);
	}
}

/* Load TEXT as the configuration and take a snapshot of it. */
static void
load(const char *text)
{
	struct wp_diag d;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/t.ini", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	config_free(cfg);
	cfg = NULL;
	diag_init(&d, NULL);
	/* No lookup: types are not judged here. */
	assert_int_equal(config_load(path, NULL, NULL, NULL, &d, &cfg), 0);
	diag_free(&d);
	statuspage_configure(cfg);
	free(snap);
	snap = statuspage_snapshot(NULL);
	assert_non_null(snap);
}

/* Answer URL with the query Q; the reply in *r (body freed by caller). */
static void
answer(const char *url, const char *const *q, struct statuspage_reply *r)
{
	query = q;
	statuspage_answer(snap, NULL, url, q_arg, q_each, NULL, r);
	assert_non_null(r->body);
	assert_int_equal(strlen(r->body), r->len);
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (; (hay = strstr(hay, needle)) != NULL; hay++)
		n++;
	return n;
}

static int
setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int
teardown(void **state)
{
	char path[64];

	(void)state;
	statuspage_configure(NULL);
	config_free(cfg);
	free(snap);
	snprintf(path, sizeof(path), "%s/t.ini", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

static void
test_routes(void **state)
{
	(void)state;
	assert_int_equal(statuspage_route("/"), 1);
	assert_int_equal(statuspage_route("/badge/web/status.svg"), 2);
	assert_int_equal(statuspage_route("/badge/web/uptime.svg"), 3);
	assert_int_equal(statuspage_route("/badge//status.svg"), 0);
	assert_int_equal(statuspage_route("/badge/a/b/status.svg"), 0);
	assert_int_equal(statuspage_route("/badge/web/status.png"), 0);
	assert_int_equal(statuspage_route("/index.html"), 0);
	assert_int_equal(statuspage_route("/api/monitors"), 0);
}

static const char evil_cfg[] =
    "[status]\n"
    "title = T <script>alert(1)</script> & \"q\"\n"
    "monitors = web-*, db\n"
    "public = true\n"
    "footer = F <b>'x'</b>\n"
    "[monitor:web-a]\ntype = tcp\nenabled = false\n"
    "group = G <i>\n"
    "[monitor:web-b]\ntype = tcp\nenabled = false\n"
    "[monitor:db]\ntype = tcp\nenabled = false\n"
    "[monitor:secret]\ntype = tcp\nenabled = false\n";

static void
test_page_escaped(void **state)
{
	struct statuspage_reply r;

	(void)state;
	load(evil_cfg);
	assert_int_equal(statuspage_public(), 1);
	answer("/", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "text/html; charset=utf-8");
	assert_string_equal(r.cache, "no-store");
	assert_non_null(strstr(r.csp, "default-src 'none'; style-src "
	    "'nonce-"));
	assert_null(strstr(r.csp, "unsafe"));
	/* Nothing from the file gets in as markup. */
	assert_null(strstr(r.body, "<script>alert"));
	assert_null(strstr(r.body, "<b>"));
	assert_null(strstr(r.body, "<i>"));
	assert_int_equal(count(r.body, "T &lt;script&gt;alert(1)&lt;/script&gt;"
	    " &amp; &quot;q&quot;"), 2);		/* <title> and <h1> */
	assert_non_null(strstr(r.body, "F &lt;b&gt;&#39;x&#39;&lt;/b&gt;"));
	assert_non_null(strstr(r.body, "<h3>G &lt;i&gt;</h3>"));
	/* The group's link: percent-encoded in the URL. */
	assert_non_null(strstr(r.body, "href=\"/?group=G%20%3Ci%3E\""));
	/* [status] monitors: three of four; disabled ones are paused. */
	assert_int_equal(count(r.body, "<li class=\"mon "), 3);
	assert_null(strstr(r.body, "secret"));
	assert_int_equal(count(r.body, "data-state=\"paused\""), 3);
	assert_non_null(strstr(r.body, "3 monitors: 0 up, 0 degraded, 0 down, "
	    "3 paused"));
	assert_non_null(strstr(r.body, "<strong>No results yet</strong>"));
	/* 90 bars each, no data without a database. */
	assert_int_equal(count(r.body, "<li tabindex=\"0\" class=\"nd\""), 270);
	assert_int_equal(count(r.body, "<svg class=\"spark\""), 3);
	/* The keyboard can skip the bars: the link and its target. */
	assert_non_null(strstr(r.body, "<a class=\"skip\" href=\"#inc-h\">"));
	assert_non_null(strstr(r.body, "<h2 id=\"inc-h\">"));
	/* Ungrouped first, then the group. */
	assert_true(strstr(r.body, "data-monitor=\"web-b\"") <
	    strstr(r.body, "data-monitor=\"web-a\""));
	free(r.body);
}

static void
test_nonce_fresh(void **state)
{
	struct statuspage_reply a, b;

	(void)state;
	load(evil_cfg);
	answer("/", NULL, &a);
	answer("/", NULL, &b);
	assert_string_not_equal(a.csp, b.csp);
	free(a.body);
	free(b.body);
}

static void
test_page_params(void **state)
{
	static const char *const page2[] = { "page=2", NULL };
	static const char *const page0[] = { "page=0", NULL };
	static const char *const pagex[] = { "page=1x", NULL };
	static const char *const unknown[] = { "sort=name", NULL };
	static const char *const group[] = { "group=G <i>", NULL };
	static const char *const nogroup[] = { "group=H", NULL };
	struct statuspage_reply r;

	(void)state;
	load(evil_cfg);
	answer("/", page2, &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	answer("/", page0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	answer("/", pagex, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	answer("/", unknown, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	answer("/", nogroup, &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	answer("/", group, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(count(r.body, "<li class=\"mon "), 1);
	assert_non_null(strstr(r.body, "data-monitor=\"web-a\""));
	assert_non_null(strstr(r.body, "aria-current=\"page\">G &lt;i&gt;"));
	free(r.body);
}

static void
test_paging(void **state)
{
	static const char *const p3[] = { "page=3", NULL };
	static const char *const p4[] = { "page=4", NULL };
	struct statuspage_reply r;
	struct sbuf b = { NULL, 0, 0 };
	int i;

	(void)state;
	for (i = 1; i <= 2 * STATUSPAGE_PER_PAGE + 7; i++)
		sbuf_printf(&b, "[monitor:m%03d]\ntype = tcp\nenabled = false\n",
		    i);
	load(b.data);
	sbuf_free(&b);
	answer("/", NULL, &r);
	assert_int_equal(count(r.body, "<li class=\"mon "),
	    STATUSPAGE_PER_PAGE);
	assert_non_null(strstr(r.body, "Page 1 of 3"));
	assert_non_null(strstr(r.body, "rel=\"next\" href=\"/?page=2\""));
	assert_null(strstr(r.body, "rel=\"prev\""));
	free(r.body);
	answer("/", p3, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(count(r.body, "<li class=\"mon "), 7);
	assert_non_null(strstr(r.body, "data-monitor=\"m107\""));
	assert_non_null(strstr(r.body, "rel=\"prev\" href=\"/?page=2\""));
	free(r.body);
	answer("/", p4, &r);
	assert_int_equal(r.status, 404);
	free(r.body);
}

static void
test_badges(void **state)
{
	static const char *const w7[] = { "window=7d", NULL };
	static const char *const w5m[] = { "window=5m", NULL };
	static const char *const extra[] = { "x=1", NULL };
	struct statuspage_reply r;

	(void)state;
	load(evil_cfg);
	answer("/badge/web-a/status.svg", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "image/svg+xml; charset=utf-8");
	assert_string_equal(r.cache, "public, max-age=60");
	assert_non_null(strstr(r.body, "<svg xmlns=\"http://www.w3.org/2000/"
	    "svg\""));
	assert_non_null(strstr(r.body, "<title>web-a: paused</title>"));
	assert_non_null(strstr(r.body, "</svg>\n"));
	free(r.body);
	/* No database: no data. */
	answer("/badge/db/uptime.svg", w7, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "<title>uptime 7d: no data</title>"));
	free(r.body);
	answer("/badge/db/uptime.svg", NULL, &r);
	assert_non_null(strstr(r.body, "uptime 30d"));
	free(r.body);
	answer("/badge/db/uptime.svg", w5m, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.cache, "no-store");
	free(r.body);
	answer("/badge/db/status.svg", extra, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	/* Unknown and hidden: the same 404, without the name. */
	answer("/badge/nosuch/status.svg", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_null(strstr(r.body, "nosuch"));
	free(r.body);
	answer("/badge/secret/uptime.svg", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_null(strstr(r.body, "secret"));
	free(r.body);
}

static void
test_defaults(void **state)
{
	struct statuspage_reply r;

	(void)state;
	load("[monitor:a]\ntype = tcp\nenabled = false\n");
	assert_int_equal(statuspage_public(), 0);
	answer("/", NULL, &r);
	assert_non_null(strstr(r.body, "<title>Status</title>"));
	assert_null(strstr(r.body, "<nav aria-label=\"Groups\">"));
	free(r.body);
	answer("/badge/a/status.svg", NULL, &r);
	assert_string_equal(r.cache, "private, max-age=60");
	free(r.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_page_escaped),
		cmocka_unit_test(test_nonce_fresh),
		cmocka_unit_test(test_page_params),
		cmocka_unit_test(test_paging),
		cmocka_unit_test(test_badges),
		cmocka_unit_test(test_defaults),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
