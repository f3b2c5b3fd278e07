/*
 * test-push -- the push plugin's parameter parser (plugins/push-query.c).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../plugins/push-query.h"

static int
parse(const char *s, struct push_msg *m, char *err, size_t errlen)
{
	push_msg_init(m);
	err[0] = '\0';
	return push_parse(s, strlen(s), m, err, errlen);
}

static void
test_defaults(void **st)
{
	struct push_msg m;
	char err[200];

	(void)st;
	assert_int_equal(parse("", &m, err, sizeof(err)), 0);
	assert_int_equal(m.status, PUSH_UP);
	assert_string_equal(m.msg, "");
	assert_int_equal(m.has_duration, 0);
	/* Empty pairs are skipped. */
	assert_int_equal(parse("&&", &m, err, sizeof(err)), 0);
}

static void
test_down_msg_duration(void **st)
{
	struct push_msg m;
	char err[200];

	(void)st;
	assert_int_equal(parse("status=DOWN&msg=disk%20full+on%2Fdev%2Fsda"
	    "&duration_ms=1500.5", &m, err, sizeof(err)), 0);
	assert_int_equal(m.status, PUSH_DOWN);
	assert_string_equal(m.msg, "disk full on/dev/sda");
	assert_int_equal(m.has_duration, 1);
	assert_true(m.duration_s > 1.5004 && m.duration_s < 1.5006);
	/* A later key wins (the body after the query). */
	assert_int_equal(push_parse("status=up", 9, &m, err, sizeof(err)), 0);
	assert_int_equal(m.status, PUSH_UP);
}

static void
test_msg_sanitised_and_capped(void **st)
{
	struct push_msg m;
	char err[200], in[2000];
	size_t i, n;

	(void)st;
	assert_int_equal(parse("msg=a%0Ab%1B[31mc%7Fd%09e", &m, err,
	    sizeof(err)), 0);
	assert_string_equal(m.msg, "ab[31mcde");
	/* 300 x "é" (2 bytes each): cut at 200 bytes, never mid-character. */
	n = (size_t)snprintf(in, sizeof(in), "msg=x");
	for (i = 0; i < 300; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "%%C3%%A9");
	assert_int_equal(parse(in, &m, err, sizeof(err)), 0);
	assert_int_equal(strlen(m.msg), 199);
	assert_int_equal((unsigned char)m.msg[198], 0xa9);
}

static void
test_errors(void **st)
{
	struct push_msg m;
	char err[200];

	(void)st;
	assert_int_equal(parse("status=maybe", &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "neither up nor down"));
	assert_int_equal(parse("duration_ms=-5", &m, err, sizeof(err)), -1);
	assert_int_equal(parse("duration_ms=1e400", &m, err, sizeof(err)), -1);
	assert_int_equal(parse("duration_ms=nan", &m, err, sizeof(err)), -1);
	assert_int_equal(parse("duration_ms=", &m, err, sizeof(err)), -1);
	assert_int_equal(parse("msg=%4", &m, err, sizeof(err)), -1);
	assert_int_equal(parse("msg=%zz", &m, err, sizeof(err)), -1);
	assert_int_equal(parse("msg=a%00b", &m, err, sizeof(err)), -1);
	assert_int_equal(parse("colour=red", &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown parameter \"colour\""));
	/* A raw NUL in a body is refused, and messages stay printable. */
	assert_int_equal(push_parse("msg=a\0b", 7, &m, err, sizeof(err)), -1);
	assert_int_equal(parse("%1B%5B2J=1", &m, err, sizeof(err)), -1);
	assert_null(strchr(err, '\x1b'));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_down_msg_duration),
		cmocka_unit_test(test_msg_sanitised_and_capped),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
