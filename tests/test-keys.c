/*
 * test-keys -- the typed key parser (core/keys.c): table checks at load,
 * every key type's values and messages, defaults, repeats, KEY_file.
 */
#include "config.h"

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

#include <cmocka.h>

#include "cfg.h"
#include "diag.h"
#include "keys.h"
#include "util.h"

struct conf {
	const char *name;
	int64_t count;
	int64_t wait_us;
	int on;
	int mode;
	const char *url;
	const char *ftp;
	const char *host;
	const char *dir;
	const char *token;
	struct wp_list tags;
	struct wp_list header;
	int64_t any;
	int speed;          /* an ENUM without a default */
};

static const char *const modes[] = { "fast", "slow", "auto", NULL };
static const char *const ftp_schemes[] = { "ftp", NULL };

static const struct wp_key keys[] = {
	{ WP_KEY(WP_KT_STRING, "name", struct conf, name),
	  .flags = WP_KEY_REQUIRED, .help = "a name" },
	{ WP_KEY(WP_KT_INT, "count", struct conf, count), .def = "3",
	  .min = 1, .max = 10, .help = "how many" },
	{ WP_KEY(WP_KT_DURATION, "wait", struct conf, wait_us), .def = "1s",
	  .min = 100000, .max = 60000000, .help = "how long" },
	{ WP_KEY(WP_KT_BOOL, "on", struct conf, on), .def = "yes" },
	{ WP_KEY(WP_KT_ENUM, "mode", struct conf, mode), .def = "auto",
	  .values = modes },
	{ WP_KEY(WP_KT_URL, "url", struct conf, url) },
	{ WP_KEY(WP_KT_URL, "ftp", struct conf, ftp), .values = ftp_schemes },
	{ WP_KEY(WP_KT_HOST, "host", struct conf, host) },
	{ WP_KEY(WP_KT_PATH, "dir", struct conf, dir), .def = "data" },
	{ WP_KEY(WP_KT_SECRET, "token", struct conf, token) },
	{ WP_KEY(WP_KT_LIST, "tags", struct conf, tags), .def = "a, b" },
	{ WP_KEY(WP_KT_STRING, "header", struct conf, header),
	  .flags = WP_KEY_MULTI },
	{ WP_KEY(WP_KT_INT, "any", struct conf, any) },
	{ WP_KEY(WP_KT_ENUM, "speed", struct conf, speed), .values = modes },
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static char tmpdir[PATH_MAX / 2];
static struct wp_diag diag;
static struct conf *conf;

static int
group_setup(void **state)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-keys.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/secret", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/open", tmpdir);
	unlink(p);
	return rmdir(tmpdir);
}

static int
setup(void **state)
{
	diag_init(&diag, "f.ini");
	conf = NULL;
	return 0;
}

static int
teardown(void **state)
{
	keys_free(conf);
	conf = NULL;
	diag_free(&diag);
	return 0;
}

/* Fill from "key", "value" pairs (NULL ends), lines 2, 3, ... */
static struct conf *
fill(const char *first, ...)
{
	struct cfg_kv kv[32];
	struct keys_ctx ctx = { "[monitor:m]", " for type t", 1, NULL };
	const char *k;
	size_t n = 0;
	va_list ap;

	va_start(ap, first);
	for (k = first; k != NULL && n < 32; k = va_arg(ap, const char *)) {
		kv[n].key = k;
		kv[n].value = va_arg(ap, const char *);
		kv[n].line = (int)n + 2;
		n++;
	}
	va_end(ap);
	keys_free(conf);
	diag_free(&diag);
	diag_init(&diag, "f.ini");
	conf = keys_fill_in(&ctx, keys, N_KEYS, sizeof(keys[0]),
	    sizeof(struct conf), NULL, tmpdir, kv, n, &diag);
	return conf;
}

/* The fill failed with exactly the one message "f.ini:" + SUFFIX. */
static void
expect_err(const char *suffix)
{
	char *want = xasprintf("f.ini%s\n", suffix);

	assert_null(conf);
	if (diag.text == NULL || strcmp(diag.text, want) != 0)
		print_error("want: %sgot:  %s", want,
		    diag.text ? diag.text : "(nothing)\n");
	assert_non_null(diag.text);
	assert_string_equal(diag.text, want);
	free(want);
}

static void
test_defaults(void **state)
{
	char *want;

	assert_non_null(fill("name", "x", NULL));
	assert_int_equal(diag.errors, 0);
	assert_string_equal(conf->name, "x");
	assert_int_equal(conf->count, 3);
	assert_int_equal(conf->wait_us, 1000000);
	assert_int_equal(conf->on, 1);
	assert_int_equal(conf->mode, 2);
	assert_null(conf->url);
	assert_null(conf->host);
	want = xasprintf("%s/data", tmpdir);
	assert_string_equal(conf->dir, want);
	free(want);
	assert_null(conf->token);
	assert_int_equal(conf->tags.n, 2);
	assert_string_equal(conf->tags.v[0], "a");
	assert_string_equal(conf->tags.v[1], "b");
	assert_int_equal(conf->header.n, 0);
	assert_int_equal(conf->any, 0);
	/* An ENUM not set, without a default: -1, told apart from index 0. */
	assert_int_equal(conf->speed, -1);
	assert_non_null(fill("name", "x", "speed", "fast", NULL));
	assert_int_equal(conf->speed, 0);
}

static void
test_values(void **state)
{
	assert_non_null(fill("name", "", "count", "10", "wait", "250ms",
	    "on", "OFF", "mode", "Slow", "url", "https://u:p@h:8/x?y",
	    "ftp", "ftp://f/", "host", "db.example.org", "dir", "/abs",
	    "token", "s3cr3t", "tags", " x ,y", "tags", "z",
	    "header", "A: 1", "header", "B: 2", "any", "-9000000000", NULL));
	assert_string_equal(conf->name, "");
	assert_int_equal(conf->count, 10);
	assert_int_equal(conf->wait_us, 250000);
	assert_int_equal(conf->on, 0);
	assert_int_equal(conf->mode, 1);
	assert_string_equal(conf->url, "https://u:p@h:8/x?y");
	assert_string_equal(conf->ftp, "ftp://f/");
	assert_string_equal(conf->host, "db.example.org");
	assert_string_equal(conf->dir, "/abs");
	assert_string_equal(conf->token, "s3cr3t");
	assert_int_equal(conf->tags.n, 3);
	assert_string_equal(conf->tags.v[0], "x");
	assert_string_equal(conf->tags.v[1], "y");
	assert_string_equal(conf->tags.v[2], "z");
	assert_null(conf->tags.v[3]);
	assert_int_equal(conf->header.n, 2);
	assert_string_equal(conf->header.v[0], "A: 1");
	assert_string_equal(conf->header.v[1], "B: 2");
	assert_int_equal(conf->any, -9000000000LL);
	/* Hosts: v4 and v6 literals, bracketed v6. */
	assert_non_null(fill("name", "x", "host", "127.0.0.1", NULL));
	assert_non_null(fill("name", "x", "host", "::1", NULL));
	assert_non_null(fill("name", "x", "host", "[fe80::1]", NULL));
	assert_string_equal(conf->host, "[fe80::1]");
}

static void
test_value_errors(void **state)
{
	fill("name", "x", "count", "11", NULL);
	expect_err(":3: count: \"11\" is not a whole number from 1 to 10");
	fill("name", "x", "any", "1.5", NULL);
	expect_err(":3: any: \"1.5\" is not a whole number");
	fill("name", "x", "wait", "10x", NULL);
	expect_err(":3: wait: \"10x\" is not a duration (use e.g. 250ms, "
	    "10s, 5m, 1h)");
	fill("name", "x", "wait", "50ms", NULL);
	expect_err(":3: wait: \"50ms\" is too short (minimum 100ms)");
	fill("name", "x", "wait", "2m", NULL);
	expect_err(":3: wait: \"2m\" is too long (maximum 1m)");
	fill("name", "x", "on", "maybe", NULL);
	expect_err(":3: on: \"maybe\" is not a boolean (use true or false)");
	fill("name", "x", "mode", "turbo", NULL);
	expect_err(":3: mode: \"turbo\" is not a valid value (use fast, slow "
	    "or auto)");
	fill("name", "x", "url", "example.org/x", NULL);
	/* A URL may hold credentials: its messages never quote it. */
	expect_err(":3: url: not a valid absolute URL (no spaces or control "
	    "characters; use e.g. http://host/path)");
	fill("name", "x", "url", "ftp://h/", NULL);
	expect_err(":3: url: the scheme must be http or https");
	fill("name", "x", "url", "http:///x", NULL);
	expect_err(":3: url: the URL has no host");
	fill("name", "x", "url", "http://h/a b", NULL);
	expect_err(":3: url: not a valid absolute URL (no spaces or control "
	    "characters; use e.g. http://host/path)");
	fill("name", "x", "ftp", "https://h/", NULL);
	expect_err(":3: ftp: the scheme must be ftp");
	fill("name", "x", "host", "a/b", NULL);
	expect_err(":3: host: \"a/b\" is not a host name, IPv4 or IPv6 "
	    "address");
	fill("name", "x", "host", "a b", NULL);
	expect_err(":3: host: \"a b\" is not a host name, IPv4 or IPv6 "
	    "address");
	fill("name", "x", "host", "::g", NULL);
	expect_err(":3: host: \"::g\" is not a host name, IPv4 or IPv6 "
	    "address");
	fill("name", "x", "tags", "a,,b", NULL);
	expect_err(":3: tags: empty item in \"a,,b\"");
	fill("name", "x", "tags", "", NULL);
	expect_err(":3: tags: no value");
	fill("name", "x", "dir", "", NULL);
	expect_err(":3: dir: no value");
	/* A secret's value is never quoted; only emptiness can be wrong. */
	fill("name", "x", "token", "", NULL);
	expect_err(":3: token: no value");
}

static void
test_structure_errors(void **state)
{
	fill("count", "2", NULL);
	expect_err(":1: [monitor:m] is missing the required key \"name\" for "
	    "type t");
	fill("name", "x", "cuont", "2", NULL);
	expect_err(":3: unknown key \"cuont\" for type t (did you mean "
	    "\"count\"?)");
	fill("name", "x", "zzzzzz", "2", NULL);
	expect_err(":3: unknown key \"zzzzzz\" for type t");
	fill("name", "x", "name", "y", NULL);
	expect_err(":3: duplicate key \"name\" (first set at line 2)");
	/* KEY_file exists only for text types. */
	fill("name", "x", "count_file", "/x", NULL);
	expect_err(":3: unknown key \"count_file\" for type t (did you mean "
	    "\"count\"?)");
	/* Every problem, not only the first; lines in report order. */
	fill("name", "x", "name", "y", "count", "0", "on", "2", NULL);
	assert_null(conf);
	assert_int_equal(diag.errors, 3);
}

static void
test_file_keys(void **state)
{
	char p[PATH_MAX], *want;
	FILE *f;

	snprintf(p, sizeof(p), "%s/secret", tmpdir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("t0ken\n", f);
	fclose(f);
	chmod(p, 0600);
	assert_non_null(fill("name_file", "secret", "token_file", p, NULL));
	assert_string_equal(conf->name, "t0ken");
	assert_string_equal(conf->token, "t0ken");
	assert_int_equal(keys_line((struct cfg_kv[]){ { "a", "", 4 },
	    { "token_file", "", 9 } }, 2, "token"), 9);
	assert_int_equal(keys_line((struct cfg_kv[]){ { "a", "", 4 } }, 1,
	    "token"), 0);

	fill("name", "x", "token", "a", "token_file", p, NULL);
	expect_err(":4: token_file: \"token\" is already set at line 3 (use "
	    "one of token and token_file)");
	/* Repeatable: each line adds a value. */
	assert_non_null(fill("name", "x", "header", "A", "header_file", p,
	    NULL));
	assert_int_equal(conf->header.n, 2);
	assert_string_equal(conf->header.v[1], "t0ken");

	snprintf(p, sizeof(p), "%s/open", tmpdir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
	chmod(p, 0644);
	fill("name", "x", "token_file", "open", NULL);
	want = xasprintf(":3: token_file: %s is readable or writable "
	    "by other users: a secret must not be (chmod o-rw)", p);
	expect_err(want);
	free(want);

	/* A STRING key's file is content (a template): several lines, and
	 * anyone may read it; a SECRET's must be one line. */
	snprintf(p, sizeof(p), "%s/template", tmpdir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("line one\nline two\n", f);
	fclose(f);
	chmod(p, 0644);
	assert_non_null(fill("name_file", "template", NULL));
	assert_string_equal(conf->name, "line one\nline two");
	chmod(p, 0600);
	fill("name", "x", "token_file", "template", NULL);
	want = xasprintf(":3: token_file: %s holds more than one line", p);
	expect_err(want);
	free(want);
}

/* A copy of the good table with one entry changed by the caller. */
static struct wp_key bad[N_KEYS];
static struct wp_plugin plug;

static void
reset_plugin(void)
{
	memcpy(bad, keys, sizeof(bad));
	memset(&plug, 0, sizeof(plug));
	plug.name = "t";
	plug.keys = bad;
	plug.n_keys = N_KEYS;
	plug.key_size = sizeof(bad[0]);
	plug.conf_size = sizeof(struct conf);
}

/* The table is refused with the message FMT (NULL: accepted). */
static void expect_table(const char *fmt, ...) WP_PRINTF(1, 2);
static void
expect_table(const char *fmt, ...)
{
	char why[512] = "", want[512];
	va_list ap;

	assert_int_equal(keys_check_table(&plug, why, sizeof(why)),
	    fmt == NULL ? 0 : WP_EINVAL);
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(want, sizeof(want), fmt, ap);
		va_end(ap);
		assert_string_equal(why, want);
	}
	reset_plugin();
}

static void
test_check_table(void **state)
{
	static const char *const none[] = { NULL };

	reset_plugin();
	expect_table(NULL);
	plug.key_size = sizeof(bad[0]) - 8;
	expect_table("key_size %zu is smaller than a 2.0 struct wp_key (%zu "
	    "bytes): use WP_KEYS()", sizeof(bad[0]) - 8, sizeof(bad[0]));
	bad[1].size = 8;
	expect_table("key 1: size 8 is not a 2.0 struct wp_key within the "
	    "stride: use WP_KEY()");
	bad[1].name = "Count";
	expect_table("key 1: name \"Count\" must be [a-z][a-z0-9_]* and not "
	    "end in \"_file\" (only a path key may)");
	bad[1].name = "count_file";
	expect_table("key 1: name \"count_file\" must be [a-z][a-z0-9_]* and "
	    "not end in \"_file\" (only a path key may)");
	/* A path key may end in _file (ca_file), unless it hides the file
	 * form of another key. */
	bad[1].name = "count_file";
	bad[1].type = WP_KT_PATH;
	bad[1].storage = sizeof(char *);
	expect_table(NULL);
	bad[0].name = "count";
	bad[1].name = "count_file";
	bad[1].type = WP_KT_PATH;
	bad[1].storage = sizeof(char *);
	expect_table("key \"count_file\" would hide the file form of key "
	    "\"count\"");
	bad[2].name = "count";
	expect_table("key \"count\" is listed twice");
	bad[1].type = 99;
	expect_table("key \"count\": unknown type 99");
	bad[1].flags = WP_KEY_MULTI;
	expect_table("key \"count\": flags 0x2 are not valid for a int key");
	bad[1].storage = sizeof(int);
	expect_table("key \"count\": a int needs 8 aligned bytes inside the "
	    "%zu-byte conf (offset 8, storage 4)", sizeof(struct conf));
	plug.conf_size = 8;
	expect_table("key \"count\": a int needs 8 aligned bytes inside the "
	    "8-byte conf (offset 8, storage 8)");
	bad[1].offset = 9;
	expect_table("key \"count\": a int needs 8 aligned bytes inside the "
	    "%zu-byte conf (offset 9, storage 8)", sizeof(struct conf));
	bad[1].min = 5;
	bad[1].max = 4;
	expect_table("key \"count\": min > max");
	bad[4].values = none;
	expect_table("key \"mode\": an enum needs values");
	bad[1].def = "11";
	expect_table("key \"count\": the default does not parse: count: "
	    "\"11\" is not a whole number from 1 to 10");
	plug.keys = NULL;
	expect_table("n_keys is 14 but keys is NULL");
	/* A longer stride (a newer minor's entries) is walked by its size. */
	{
		struct big { struct wp_key k; int64_t extra; } wide[2] = {
			{ { WP_KEY(WP_KT_INT, "a", struct conf, count) }, 7 },
			{ { WP_KEY(WP_KT_BOOL, "b", struct conf, on) }, 8 },
		};
		char why[256];
		struct cfg_kv kv[] = { { "b", "on", 2 } };
		struct conf *c;

		plug.keys = &wide[0].k;
		plug.n_keys = 2;
		plug.key_size = sizeof(wide[0]);
		assert_int_equal(keys_check_table(&plug, why, sizeof(why)), 0);
		c = keys_fill(&wide[0].k, 2, sizeof(wide[0]),
		    sizeof(struct conf), NULL, "/", kv, 1, &diag);
		assert_non_null(c);
		assert_int_equal(c->on, 1);
		keys_free(c);
		reset_plugin();
	}
}

/* keys_fill() without a context, as a plugin test calls it. */
static void
test_plain_fill(void **state)
{
	struct cfg_kv kv[] = { { "count", "4", 2 } };

	conf = keys_fill(keys, N_KEYS, sizeof(keys[0]), sizeof(struct conf),
	    "g.ini", "/", kv, 1, &diag);
	assert_null(conf);
	assert_string_equal(diag.text, "g.ini: the section is missing the "
	    "required key \"name\"\n");
	assert_string_equal(diag.file, "f.ini");
	keys_free(NULL);
}

static void
test_suggest(void **state)
{
	static const char *const a[] = { "interval", "timeout", NULL };
	static const char *const b[] = { "retries", NULL };

	assert_string_equal(keys_suggest("intervl", a, b), "interval");
	assert_string_equal(keys_suggest("RETRIES", a, b), "retries");
	assert_string_equal(keys_suggest("time", a, NULL), "timeout");
	assert_null(keys_suggest("zzz", a, b));
	assert_string_equal(keys_type_name(WP_KT_DURATION), "duration");
	assert_string_equal(keys_type_name(0), "?");
}

/* The host's own tables: every default parses, every entry is a 2.0
 * wp_key of a known type with room in a conf of its size. */
static void
test_host_tables(void **state)
{
	static const char *const type_only[] = { "type", NULL };
	const struct keys_ctx ctx = { NULL, NULL, 0, type_only };
	struct cfg_kv monitors = { "monitors", "*", 1 };
	struct cfg_kv etcd = { "etcd", "http://127.0.0.1:2379", 1 };
	const struct cfg_keys *t;
	const struct wp_key *k;
	size_t n, i, j, end;
	void *c;

	t = cfg_host_keys(&n);
	/* agent, monitor, alert, status, maintenance, cluster. */
	assert_int_equal(n, 6);
	assert_string_equal(t[0].name, "agent");
	assert_string_equal(t[1].name, "monitor");
	assert_string_equal(t[2].name, "alert");
	assert_string_equal(t[3].name, "status");
	assert_string_equal(t[4].name, "maintenance");
	assert_string_equal(t[5].name, "cluster");
	for (i = 0; i < n; i++) {
		end = 0;
		for (j = 0; j < t[i].n_keys; j++) {
			k = &t[i].keys[j];
			assert_int_equal(k->size, sizeof(struct wp_key));
			assert_string_not_equal(keys_type_name(k->type), "?");
			assert_non_null(k->help);
			if (k->offset + k->storage > end)
				end = k->offset + k->storage;
		}
		/* [maintenance:] requires monitors, [cluster] etcd. */
		c = keys_fill_in(&ctx, t[i].keys, t[i].n_keys,
		    sizeof(struct wp_key), end, NULL, "/", i == 4 ? &monitors :
		    i == 5 ? &etcd : NULL, i >= 4, &diag);
		assert_non_null(c);
		keys_free(c);
	}
	assert_int_equal(diag.errors, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_defaults),
		T(test_values),
		T(test_value_errors),
		T(test_structure_errors),
		T(test_file_keys),
		T(test_check_table),
		T(test_plain_fill),
		T(test_suggest),
		T(test_host_tables),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
