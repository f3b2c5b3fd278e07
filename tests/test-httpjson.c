/*
 * The http check's json assertions (plugins/http-json.c): the grammar
 * (every operator, paths with names, quoted names and indexes, .length),
 * the errors a bad assertion gets at configure time, and the verdicts and
 * details over bodies: types, missing members, numbers compared by value,
 * a body that is no JSON, long values cut short.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http-json.h"

static const char body[] =
    "{\"status\":\"ok\",\"items\":[{\"id\":3,\"name\":\"a\"},{\"id\":4}],"
    "\"latency\":2.5,\"count\":10,\"up\":true,\"none\":null,"
    "\"a b\":{\"x\":1},\"nested\":{\"deep\":{\"list\":[[1,2],[3]]}},"
    "\"word\":\"h\\u00e9llo\",\"length\":7,\"obj\":{\"k1\":1,\"k2\":2}}";

/* The verdict of TEXT over BODY (asserting it parses); detail in D. */
static int
verdict(const char *text, const char *b, char *d, size_t len)
{
	struct httpjson *a = NULL;
	char err[256];
	int rc;

	rc = httpjson_parse(text, &a, err, sizeof(err));
	if (rc != 0)
		fail_msg("\"%s\" did not parse: %s", text, err);
	d[0] = '\0';
	rc = httpjson_eval(&a, 1, b, strlen(b), d, len);
	httpjson_free(a);
	return rc;
}

static void
holds(const char *text)
{
	char d[256];

	if (verdict(text, body, d, sizeof(d)) != 1)
		fail_msg("\"%s\" should hold: %s", text, d);
}

/* TEXT fails over the body with exactly the detail WANT. */
static void
fails(const char *text, const char *want)
{
	char d[256];

	if (verdict(text, body, d, sizeof(d)) != 0)
		fail_msg("\"%s\" should fail", text);
	assert_string_equal(d, want);
}

static void
bad(const char *text, const char *want)
{
	struct httpjson *a = (struct httpjson *)1;
	char err[256];

	assert_int_equal(httpjson_parse(text, &a, err, sizeof(err)), 1);
	assert_null(a);
	if (strstr(err, want) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", text, err, want);
}

static void
test_operators(void **unused)
{
	(void)unused;
	holds("$.status == \"ok\"");
	holds("$.status != \"fail\"");
	holds("$.count > 9");
	holds("$.count >= 10");
	holds("$.count < 11");
	holds("$.count <= 10");
	holds("$.count == 10.0");   /* numbers by value */
	holds("$.latency < 3");
	holds("$.up == true");
	holds("$.none == null");
	holds("$.status exists");
	holds("$.missing !exists");
	holds("$.items[1].name !exists");
	holds("  $.status   ==   \"ok\"  ");
	holds("$.obj == {\"k2\":2,\"k1\":1}");
	holds("$.items[0] != {\"id\":3}");
	fails("$.count > 10", "json: $.count > 10: found 10");
	fails("$.status == \"fail\"", "json: $.status == \"fail\": found \"ok\"");
}

static void
test_paths(void **unused)
{
	(void)unused;
	holds("$.items[0].id == 3");
	holds("$.items[1].id != 3");
	holds("$[\"a b\"].x == 1");
	holds("$.nested.deep.list[0][1] == 2");
	holds("$.nested.deep.list[1].length == 1");
	holds("$.items.length > 0");
	holds("$.items.length == 2");
	holds("$.word.length == 5");     /* code points, not bytes */
	holds("$.obj.length == 2");
	holds("$.length == 7");          /* a member named length wins */
	holds("$ exists");
	fails("$.items[5].id == 3",
	    "json: $.items[5].id == 3: no element 5 (2 in the array)");
	fails("$.nothing == 1", "json: $.nothing == 1: no member \"nothing\"");
	fails("$.status.x exists",
	    "json: $.status.x exists: step 2 is not an object");
	fails("$.status[0] exists",
	    "json: $.status[0] exists: step 2 is not an array");
	fails("$.status !exists", "json: $.status !exists: found \"ok\"");
}

static void
test_types(void **unused)
{
	(void)unused;
	fails("$.status > 3",
	    "json: $.status > 3: found a string, not a number: \"ok\"");
	fails("$.up == 1", "json: $.up == 1: found true");
	fails("$.none != null", "json: $.none != null: found null");
}

static void
test_not_json(void **unused)
{
	char d[256];

	(void)unused;
	assert_int_equal(verdict("$.a exists", "<html>oops</html>", d,
	    sizeof(d)), 0);
	assert_non_null(strstr(d, "json: the body is not JSON (line 1"));
	assert_int_equal(verdict("$.a exists", "", d, sizeof(d)), 0);
	assert_non_null(strstr(d, "not JSON"));
	/* A truncated document is no JSON either. */
	assert_int_equal(verdict("$.a exists", "{\"a\": [1, 2", d,
	    sizeof(d)), 0);
	/* A bare value is a JSON text. */
	assert_int_equal(verdict("$ == 42", "42", d, sizeof(d)), 1);
	assert_int_equal(verdict("$.length == 3", "\"abc\"", d, sizeof(d)),
	    1);
}

static void
test_long_values(void **unused)
{
	char b[4096], d[256];
	size_t i;

	(void)unused;
	strcpy(b, "{\"s\":\"");
	for (i = strlen(b); i < 2000; i++)
		b[i] = 'x';
	strcpy(b + i, "\"}");
	assert_int_equal(verdict("$.s == \"y\"", b, d, sizeof(d)), 0);
	assert_true(strlen(d) < 120);
	assert_non_null(strstr(d, "xxx..."));
}

static void
test_many(void **unused)
{
	struct httpjson *a[3] = { NULL, NULL, NULL };
	char err[256], d[256];

	(void)unused;
	assert_int_equal(httpjson_parse("$.status == \"ok\"", &a[0], err,
	    sizeof(err)), 0);
	assert_int_equal(httpjson_parse("$.count > 100", &a[1], err,
	    sizeof(err)), 0);
	assert_int_equal(httpjson_parse("$.missing exists", &a[2], err,
	    sizeof(err)), 0);
	/* The first that fails is named. */
	assert_int_equal(httpjson_eval(a, 3, body, strlen(body), d,
	    sizeof(d)), 0);
	assert_string_equal(d, "json: $.count > 100: found 10");
	assert_int_equal(httpjson_eval(a, 1, body, strlen(body), d,
	    sizeof(d)), 1);
	assert_int_equal(httpjson_eval(a, 0, "", 0, d, sizeof(d)), 1);
	httpjson_free(a[0]);
	httpjson_free(a[1]);
	httpjson_free(a[2]);
	httpjson_free(NULL);
}

static void
test_errors(void **unused)
{
	char big[1100];

	(void)unused;
	bad("status == \"ok\"", "a path starts with '$'");
	bad("", "a path starts with '$'");
	bad("$.status", "an operator must follow the path");
	bad("$.status ~= 1", "unknown operator");
	bad("$.status == ok", "the value is not JSON");
	bad("$.status ==", "== needs a value");
	bad("$.status exists 1", "exists takes no value");
	bad("$.count > \"3\"", "> compares numbers");
	bad("$.", "a name must follow '.'");
	bad("$.a b == 1", "unknown operator");
	bad("$[x] == 1", "'[' takes an index or a quoted name");
	bad("$[1 == 1", "an index ends with ']'");
	bad("$[\"a\" == 1", "a quoted name ends with \"]");
	bad("$[99999999999999999999999] == 1", "index too large");
	bad("$.a== 1", "unexpected character after the path");
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '$';
	big[1] = '.';
	big[sizeof(big) - 1] = '\0';
	bad(big, "at most 1024 bytes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operators),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_not_json),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
