/*
 * test-admin-ini -- the admin API's pure parts (core/admin-ini.c): JSON
 * bodies into INI lines (and what is refused), merging, the canonical
 * file and its read-back through the configuration's own reader, ETags
 * and If-Match, and the atomic file writes in a fresh folder.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "admin-ini.h"
#include "cfg-read.h"
#include "util.h"

/* Parse S; expect success.  The caller frees *d. */
static void
parse_ok(const char *s, struct admin_def *d)
{
	struct admin_errors e = { NULL, 0 };
	int syntax = -1;

	assert_int_equal(admin_json_parse(s, strlen(s), d, &e, &syntax), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(syntax, 0);
}

/* Parse S; expect failure; returns the number of errors and
 * the first error's key and message into KEY / MSG (may be NULL). */
static size_t
parse_bad(const char *s, int *syntax, char *key, char *msg, size_t msglen)
{
	struct admin_errors e = { NULL, 0 };
	struct admin_def d;
	size_t n;

	assert_int_equal(admin_json_parse(s, strlen(s), &d, &e, syntax),
	    WP_EINVAL);
	assert_int_equal(d.n, 0);
	n = e.n;
	assert_true(n > 0);
	if (key != NULL)
		snprintf(key, 64, "%s", e.v[0].key != NULL ? e.v[0].key : "");
	if (msg != NULL)
		snprintf(msg, msglen, "%s", e.v[0].message);
	admin_errors_free(&e);
	return n;
}

static void
test_parse_values(void **state)
{
	struct admin_def d;

	(void)state;
	parse_ok("{\"type\":\"http\",\"retries\":3,\"ratio\":0.5,"
	    "\"enabled\":false,\"verify_tls\":true,\"header\":[\"A: 1\","
	    "\"B: 2\"],\"keyword\":null,\"alerts\":[]}", &d);
	assert_int_equal(d.n, 8);
	assert_string_equal(d.kv[0].key, "type");
	assert_string_equal(d.kv[0].value, "http");
	assert_string_equal(d.kv[1].value, "3");
	assert_string_equal(d.kv[2].value, "0.5");
	assert_string_equal(d.kv[3].value, "false");
	assert_string_equal(d.kv[4].value, "true");
	assert_string_equal(d.kv[5].key, "header");
	assert_string_equal(d.kv[5].value, "A: 1");
	assert_string_equal(d.kv[6].key, "header");
	assert_string_equal(d.kv[6].value, "B: 2");
	assert_string_equal(d.kv[7].key, "keyword");
	assert_null(d.kv[7].value);     /* null: absent (PATCH: removed) */
	admin_def_free(&d);
	/* Values INI holds as they are: '=', ':', '#', ';' not after a
	 * blank, '[' inside, UTF-8. */
	parse_ok("{\"url\":\"http://h/?a=b;c#f\",\"keyword\":\"[x] = y\","
	    "\"body\":\"caf\\u00e9\"}", &d);
	assert_string_equal(d.kv[0].value, "http://h/?a=b;c#f");
	assert_string_equal(d.kv[1].value, "[x] = y");
	assert_string_equal(d.kv[2].value, "caf\xc3\xa9");
	admin_def_free(&d);
}

static void
test_parse_refused(void **state)
{
	char key[64], msg[512];
	int syntax;
	static const char nul[] = "{\"type\":\"a\\u0000b\"}";

	(void)state;
	/* Not JSON, or not an object: syntax (400) apart from 422. */
	parse_bad("{\"type\": ", &syntax, NULL, NULL, 0);
	assert_int_equal(syntax, 1);
	parse_bad("", &syntax, NULL, NULL, 0);
	assert_int_equal(syntax, 1);
	parse_bad("[1]", &syntax, key, msg, sizeof(msg));
	assert_int_equal(syntax, 0);
	assert_string_equal(key, "");
	/* A duplicate member would make the winner a guess. */
	parse_bad("{\"a\":\"1\",\"a\":\"2\"}", &syntax, NULL, NULL, 0);
	assert_int_equal(syntax, 1);
	/* jansson refuses \u0000 outright. */
	parse_bad(nul, &syntax, NULL, NULL, 0);
	assert_int_equal(syntax, 1);

	/* Lines that would become other lines. */
	parse_bad("{\"host\":\"h\\n[monitor:evil]\"}", &syntax, key, msg,
	    sizeof(msg));
	assert_int_equal(syntax, 0);
	assert_string_equal(key, "host");
	assert_non_null(strstr(msg, "control character"));
	parse_bad("{\"host\":\"h\\r\"}", &syntax, key, NULL, 0);
	parse_bad("{\"host\":\"h\\tx\"}", &syntax, key, NULL, 0);
	parse_bad("{\"host\":\"h ;x\"}", &syntax, key, msg, sizeof(msg));
	assert_non_null(strstr(msg, "comment"));
	/* Written after "key = ", a leading ';' is a comment too (found
	 * by fuzz-admin). */
	parse_bad("{\"host\":\";x\"}", &syntax, key, msg, sizeof(msg));
	assert_non_null(strstr(msg, "comment"));
	parse_bad("{\"host\":\" h\"}", &syntax, key, msg, sizeof(msg));
	assert_non_null(strstr(msg, "blank"));
	parse_bad("{\"host\":\"h \"}", &syntax, NULL, NULL, 0);
	/* Keys: no '=', '[', blank, capital, leading digit or '_'. */
	parse_bad("{\"a=b\":\"1\"}", &syntax, key, msg, sizeof(msg));
	assert_string_equal(key, "");
	assert_non_null(strstr(msg, "not a key name"));
	parse_bad("{\"[agent]\":\"1\"}", &syntax, NULL, NULL, 0);
	parse_bad("{\"a b\":\"1\"}", &syntax, NULL, NULL, 0);
	parse_bad("{\"Type\":\"1\"}", &syntax, NULL, NULL, 0);
	parse_bad("{\"1a\":\"1\"}", &syntax, NULL, NULL, 0);
	parse_bad("{\"_a\":\"1\"}", &syntax, NULL, NULL, 0);
	parse_bad("{\"\":\"1\"}", &syntax, NULL, NULL, 0);
	/* 65 characters. */
	parse_bad("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaa\":\"1\"}", &syntax, NULL, NULL, 0);
	/* Types INI has no form for. */
	parse_bad("{\"a\":{\"b\":1}}", &syntax, key, NULL, 0);
	assert_string_equal(key, "a");
	parse_bad("{\"a\":[\"x\",[1]]}", &syntax, NULL, NULL, 0);
	parse_bad("{\"a\":[null]}", &syntax, NULL, NULL, 0);
	/* Every problem is listed, not just the first. */
	assert_int_equal(parse_bad("{\"a=b\":1,\"c\":\"x\\n\",\"d\":{}}",
	    &syntax, NULL, NULL, 0), 3);
}

static void
test_merge(void **state)
{
	struct admin_def base, patch, out, none = { NULL, 0 };

	(void)state;
	parse_ok("{\"type\":\"http\",\"header\":[\"A: 1\",\"B: 2\"],"
	    "\"url\":\"http://x/\",\"keyword\":\"ok\"}", &base);
	parse_ok("{\"header\":\"C: 3\",\"keyword\":null,\"interval\":\"5s\","
	    "\"url\":\"http://y/\"}", &patch);
	admin_def_merge(&base, &patch, &out);
	/* header replaced where it was; url in place; keyword gone;
	 * interval appended. */
	assert_int_equal(out.n, 4);
	assert_string_equal(out.kv[0].key, "type");
	assert_string_equal(out.kv[1].key, "header");
	assert_string_equal(out.kv[1].value, "C: 3");
	assert_string_equal(out.kv[2].key, "url");
	assert_string_equal(out.kv[2].value, "http://y/");
	assert_string_equal(out.kv[3].key, "interval");
	admin_def_free(&out);
	/* Over nothing: the nulls go (PUT). */
	admin_def_merge(&none, &patch, &out);
	assert_int_equal(out.n, 3);
	assert_string_equal(out.kv[0].key, "header");
	admin_def_free(&out);
	/* set: one line, where the first was. */
	admin_def_set(&base, "header", "D: 4");
	assert_int_equal(base.n, 4);
	assert_string_equal(base.kv[1].value, "D: 4");
	assert_string_equal(base.kv[2].key, "url");
	admin_def_set(&base, "enabled", "false");
	assert_int_equal(base.n, 5);
	assert_string_equal(base.kv[4].key, "enabled");
	admin_def_free(&base);
	admin_def_free(&patch);
}

/* Render D as monitor NAME into a file and read it back with the
 * configuration's reader: the same keys and values, in order. */
static void
round_trip(const char *name, const struct admin_def *d)
{
	char path[] = "/tmp/wp-admin-ini.XXXXXX";
	struct cfg_raw raw;
	struct wp_diag diag;
	char *text = admin_ini_render(name, d);
	size_t i;
	FILE *f;
	int fd;

	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	memset(&raw, 0, sizeof(raw));
	diag_init(&diag, path);
	assert_int_equal(cfg_read(path, &raw, &diag), 0);
	assert_int_equal(diag.errors, 0);
	assert_int_equal(raw.n_secs, 1);
	assert_int_equal(raw.secs[0].kind, CFG_MONITOR);
	assert_string_equal(raw.secs[0].name, name);
	assert_int_equal(raw.secs[0].n_kv, d->n);
	for (i = 0; i < d->n; i++) {
		assert_string_equal(raw.secs[0].kv[i].key, d->kv[i].key);
		assert_string_equal(raw.secs[0].kv[i].value, d->kv[i].value);
		/* Key i is on line i + 2: how 422s find their key. */
		assert_int_equal(raw.secs[0].kv[i].line, (int)i + 2);
	}
	cfg_raw_free(&raw);
	diag_free(&diag);
	unlink(path);
	free(text);
}

static void
test_render(void **state)
{
	struct admin_def d;
	char *text;
	char long_value[6000];

	(void)state;
	parse_ok("{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":5432,"
	    "\"header\":[\"A: b=c\",\"X: [y]\"]}", &d);
	text = admin_ini_render("db-1.x", &d);
	assert_string_equal(text, "[monitor:db-1.x]\ntype = tcp\nhost = "
	    "127.0.0.1\nport = 5432\nheader = A: b=c\nheader = X: [y]\n");
	free(text);
	round_trip("db-1.x", &d);
	admin_def_free(&d);
	/* Lines longer than inih's buffer read back whole too. */
	memset(long_value, 'v', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	admin_def_add(&d, "url", long_value);
	admin_def_add(&d, "keyword", "a;b #c = d");
	round_trip("long", &d);
	admin_def_free(&d);
}

static void
test_etag(void **state)
{
	char a[ADMIN_ETAG_SIZE], b[ADMIN_ETAG_SIZE], c[ADMIN_ETAG_SIZE];

	(void)state;
	admin_etag("[monitor:a]\ntype = tcp\n", a, sizeof(a));
	admin_etag("[monitor:a]\ntype = tcp\n", b, sizeof(b));
	admin_etag("[monitor:a]\ntype = tcq\n", c, sizeof(c));
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), 18);
	assert_true(a[0] == '"' && a[17] == '"');

	assert_true(admin_if_match(a, a, 1));
	assert_false(admin_if_match(a, a, 0));
	assert_false(admin_if_match(c, a, 1));
	assert_true(admin_if_match("*", a, 1));
	assert_false(admin_if_match("*", a, 0));
	/* A list, blanks around its members; a weak tag never matches. */
	snprintf(b, sizeof(b), "%s", a);
	{
		char list[96], weak[32];

		snprintf(list, sizeof(list), "\"x\" , %s,\"y\"", a);
		assert_true(admin_if_match(list, a, 1));
		snprintf(weak, sizeof(weak), "W/%s", a);
		assert_false(admin_if_match(weak, a, 1));
		assert_false(admin_if_match("", a, 1));
		assert_false(admin_if_match(",,", a, 1));
	}
}

/* The names in DIR, sorted, joined by ' ' (static buffer). */
static const char *
listing(const char *dir)
{
	static char buf[1024];
	struct dirent **names;
	int n, i;

	buf[0] = '\0';
	n = scandir(dir, &names, NULL, alphasort);
	assert_true(n >= 0);
	for (i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") != 0 &&
		    strcmp(names[i]->d_name, "..") != 0) {
			strncat(buf, names[i]->d_name, sizeof(buf) -
			    strlen(buf) - 2);
			strcat(buf, " ");
		}
		free(names[i]);
	}
	free(names);
	return buf;
}

static char *
slurp(const char *path)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return xstrdup(buf);
}

static void
test_files(void **state)
{
	char dir[] = "/tmp/wp-admin-files.XXXXXX", err[512], *tmp, *path;
	char *text;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/web.ini", dir);

	/* Stage: a hidden, not-*.ini file of mode 0600 with the text. */
	assert_int_equal(admin_file_stage(dir, "web", "[monitor:web]\n", &tmp,
	    err, sizeof(err)), 0);
	assert_non_null(strstr(tmp, "/.web.ini."));
	assert_int_equal(stat(tmp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	text = slurp(tmp);
	assert_string_equal(text, "[monitor:web]\n");
	free(text);
	assert_int_equal(access(path, F_OK), -1);

	/* Commit: the file takes the place, the temporary one is gone. */
	assert_int_equal(admin_file_commit(tmp, path, dir, err, sizeof(err)),
	    0);
	free(tmp);
	assert_string_equal(listing(dir), "web.ini ");
	text = slurp(path);
	assert_string_equal(text, "[monitor:web]\n");
	free(text);

	/* Replace: the old content goes whole. */
	assert_int_equal(admin_file_stage(dir, "web", "[monitor:web]\ntype = "
	    "tcp\n", &tmp, err, sizeof(err)), 0);
	assert_string_not_equal(listing(dir), "web.ini ");
	assert_int_equal(admin_file_commit(tmp, path, dir, err, sizeof(err)),
	    0);
	free(tmp);
	text = slurp(path);
	assert_string_equal(text, "[monitor:web]\ntype = tcp\n");
	free(text);
	assert_string_equal(listing(dir), "web.ini ");

	/* Remove, twice: a missing file is not an error. */
	assert_int_equal(admin_file_remove(path, dir, err, sizeof(err)), 0);
	assert_int_equal(admin_file_remove(path, dir, err, sizeof(err)), 0);
	assert_string_equal(listing(dir), "");

	/* A commit that cannot rename leaves no temporary file. */
	assert_int_equal(admin_file_stage(dir, "web", "x\n", &tmp, err,
	    sizeof(err)), 0);
	free(path);
	path = xasprintf("%s/no/such/web.ini", dir);
	assert_int_equal(admin_file_commit(tmp, path, dir, err, sizeof(err)),
	    WP_EIO);
	assert_non_null(strstr(err, "cannot rename"));
	free(tmp);
	assert_string_equal(listing(dir), "");

	/* A folder that is not there: the reason names it. */
	free(path);
	path = xasprintf("%s/missing", dir);
	assert_int_equal(admin_file_stage(path, "web", "x\n", &tmp, err,
	    sizeof(err)), WP_EIO);
	assert_null(tmp);
	assert_non_null(strstr(err, path));
	free(path);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_errors_json(void **state)
{
	struct admin_errors e = { NULL, 0 };
	char *j;

	(void)state;
	admin_errors_add(&e, "port", "port: \"%s\" is not a number", "x");
	admin_errors_add(&e, NULL, "a.ini:3: duplicate");
	j = admin_errors_json(&e);
	assert_string_equal(j, "{\"errors\":[{\"key\":\"port\",\"message\":"
	    "\"port: \\\"x\\\" is not a number\"},{\"key\":null,\"message\":"
	    "\"a.ini:3: duplicate\"}]}");
	free(j);
	admin_errors_free(&e);
	assert_int_equal(e.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_values),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_etag),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_errors_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
