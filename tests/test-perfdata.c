/*
 * The Nagios output and perfdata parser (plugins/perfdata.c): the detail
 * line, perfdata on the first line and after a later line's '|', quoted
 * labels, units scaled to base units, label sanitising and uniqueness,
 * the measurement cap, and items that are skipped.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "perfdata.h"

static struct nagios_out o;

static void
parse(const char *s)
{
	nagios_parse(s, strlen(s), &o);
}

/* Measurement NAME of o, or fail. */
static const struct wp_measurement *
get(const char *name)
{
	size_t i;

	for (i = 0; i < o.n; i++)
		if (strcmp(o.m[i].name, name) == 0)
			return &o.m[i];
	fail_msg("no measurement %s", name);
	return NULL;
}

static void
test_detail(void **state)
{
	(void)state;
	parse("  DISK OK - free space  | /=1B\nlong\n");
	assert_string_equal(o.detail, "DISK OK - free space");
	parse("no perfdata at all\nsecond line\n");
	assert_string_equal(o.detail, "no perfdata at all");
	assert_int_equal(o.n, 0);
	parse("tab\there\r\n");
	assert_string_equal(o.detail, "tab here");
	parse("");
	assert_string_equal(o.detail, "");
	nagios_parse(NULL, 0, &o);
	assert_int_equal(o.n, 0);
}

/* check_disk, check_load and check_ping as Debian's plugins print them. */
static void
test_real_outputs(void **state)
{
	(void)state;
	parse("DISK OK - free space: / 81196MiB (82% inode=97%);| "
	    "/=17604542464B;243497277849;257024904396;0;270552530944\n");
	assert_int_equal(o.n, 1);
	assert_string_equal(o.m[0].name, "root");
	assert_int_equal(o.m[0].unit, WP_UNIT_BYTES);
	assert_true(o.m[0].value == 17604542464.0);

	parse("OK - load average: 0.10, 0.20, 0.30|load1=0.100;5.000;10.000;0;"
	    " load5=0.200;4.000;6.000;0; load15=0.300;3.000;4.000;0;\n");
	assert_int_equal(o.n, 3);
	assert_int_equal(get("load5")->unit, WP_UNIT_NONE);
	assert_true(get("load15")->value == 0.3);

	parse("PING OK - Packet loss = 0%, RTA = 0.05 ms|rta=0.050000ms;"
	    "100.000000;500.000000;0.000000 pl=50%;20;60;0\n");
	assert_int_equal(get("rta")->unit, WP_UNIT_SECONDS);
	assert_true(get("rta")->value > 0.0000499 &&
	    get("rta")->value < 0.0000501);
	assert_int_equal(get("pl")->unit, WP_UNIT_RATIO);
	assert_true(get("pl")->value == 0.5);
}

/* A later line's '|' starts perfdata that run to the end. */
static void
test_multiline(void **state)
{
	(void)state;
	parse("OK | a=1\nlong text a=99 is not perfdata\nmore | b=2s\n"
	    "c=3us d=4KB\n'e f'=5MB;;;\n");
	assert_int_equal(o.n, 5);
	assert_true(get("a")->value == 1);
	assert_true(get("b")->value == 2);
	assert_true(get("c")->value == 3e-6);
	assert_true(get("d")->value == 4096);
	assert_true(get("e_f")->value == 5 * 1048576.0);
	assert_int_equal(get("e_f")->unit, WP_UNIT_BYTES);
}

static void
test_units(void **state)
{
	(void)state;
	parse("|a=1s b=250ms c=7us d=12% e=1B f=1KB g=1MB h=1GB i=1TB "
	    "j=17c k=3 l=5furlongs m=-2.5e1");
	assert_int_equal(o.n, 13);
	assert_true(get("b")->value == 0.25);
	assert_int_equal(get("d")->unit, WP_UNIT_RATIO);
	assert_true(get("d")->value == 0.12);
	assert_true(get("h")->value == 1073741824.0);
	assert_true(get("i")->value == 1099511627776.0);
	assert_int_equal(get("j")->unit, WP_UNIT_NONE);
	assert_true(get("j")->value == 17);
	assert_int_equal(get("l")->unit, WP_UNIT_NONE);
	assert_true(get("m")->value == -25);
}

static void
test_labels(void **state)
{
	(void)state;
	parse("|'Time Spent (ms)'=1 /var/log=2 '/'=3 9lives=4 ___=5 "
	    "'it''s'=6 UPPER=7 dup=8 DUP=9 'd u p'=10");
	assert_true(get("time_spent_ms")->value == 1);
	assert_true(get("var_log")->value == 2);
	assert_true(get("root")->value == 3);
	assert_true(get("m_9lives")->value == 4);
	assert_true(get("value")->value == 5);
	assert_true(get("it_s")->value == 6);
	assert_true(get("upper")->value == 7);
	assert_true(get("dup")->value == 8);
	assert_true(get("dup_2")->value == 9);
	assert_true(get("d_u_p")->value == 10);
}

static void
test_long_label(void **state)
{
	char buf[256];

	(void)state;
	memset(buf, 0, sizeof(buf));
	buf[0] = '|';
	memset(buf + 1, 'x', 100);
	strcat(buf, "=1 ");
	memset(buf + strlen(buf), 'x', 100);
	strcat(buf, "=2");
	parse(buf);
	assert_int_equal(o.n, 2);
	assert_int_equal(strlen(o.m[0].name), PERF_NAME_MAX);
	assert_int_equal(strlen(o.m[1].name), PERF_NAME_MAX);
	assert_string_equal(o.m[1].name + PERF_NAME_MAX - 2, "_2");
}

/* Unknown values, garbage and more than the cap are skipped, counted. */
static void
test_skipped(void **state)
{
	char buf[1024] = "|";
	int i;

	(void)state;
	parse("|a=U b= =3 c d=x e=1e999 'f=1 g=2");
	assert_int_equal(o.n, 0);
	assert_true(o.skipped >= 6);
	for (i = 0; i < WP_MEASUREMENTS_MAX + 4; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
		    "m%d=%d ", i, i);
	parse(buf);
	assert_int_equal(o.n, WP_MEASUREMENTS_MAX);
	assert_int_equal(o.skipped, 4);
}

/* Bytes after a NUL are still read; nothing runs past LEN. */
static void
test_binary(void **state)
{
	static const char s[] = "OK\0x|a=1\n";

	(void)state;
	nagios_parse(s, sizeof(s) - 1, &o);
	assert_string_equal(o.detail, "OK x");
	assert_int_equal(o.n, 1);
	nagios_parse("OK|a=12345", 6, &o);
	assert_int_equal(o.n, 1);
	assert_true(o.m[0].value == 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detail),
		cmocka_unit_test(test_real_outputs),
		cmocka_unit_test(test_multiline),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_long_label),
		cmocka_unit_test(test_skipped),
		cmocka_unit_test(test_binary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
