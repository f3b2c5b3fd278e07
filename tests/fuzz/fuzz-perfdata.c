/*
 * Fuzz target: the Nagios output and perfdata parser (plugins/perfdata.c)
 * on arbitrary bytes, NULs included.  Properties: the detail is a string
 * of at most WP_DETAIL_MAX - 1 bytes without control characters; there are
 * at most WP_MEASUREMENTS_MAX measurements, each named [a-z][a-z0-9_]* in
 * at most 48 bytes, unique, finite, with a known unit; parsing the same
 * bytes twice gives the same answer.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "perfdata.h"

static struct nagios_out a, b;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i, j, len;
	const char *n;

	nagios_parse((const char *)data, size, &a);
	len = strnlen(a.detail, sizeof(a.detail));
	fuzz_assert(len < sizeof(a.detail));
	for (i = 0; i < len; i++)
		fuzz_assert((unsigned char)a.detail[i] >= 0x20 &&
		    a.detail[i] != 0x7f);
	fuzz_assert(a.n <= WP_MEASUREMENTS_MAX);
	for (i = 0; i < a.n; i++) {
		n = a.m[i].name;
		fuzz_assert(n == a.names[i]);
		len = strnlen(n, PERF_NAME_MAX + 1);
		fuzz_assert(len >= 1 && len <= PERF_NAME_MAX);
		fuzz_assert(n[0] >= 'a' && n[0] <= 'z');
		for (j = 1; j < len; j++)
			fuzz_assert((n[j] >= 'a' && n[j] <= 'z') ||
			    (n[j] >= '0' && n[j] <= '9') || n[j] == '_');
		fuzz_assert(isfinite(a.m[i].value));
		fuzz_assert(a.m[i].unit >= WP_UNIT_NONE &&
		    a.m[i].unit <= WP_UNIT_RATIO);
		for (j = 0; j < i; j++)
			fuzz_assert(strcmp(a.names[j], n) != 0);
	}
	nagios_parse((const char *)data, size, &b);
	fuzz_assert(a.n == b.n && a.skipped == b.skipped);
	fuzz_assert(strcmp(a.detail, b.detail) == 0);
	for (i = 0; i < a.n; i++)
		fuzz_assert(strcmp(a.names[i], b.names[i]) == 0 &&
		    a.m[i].unit == b.m[i].unit &&
		    a.m[i].value == b.m[i].value);
	return 0;
}
