/*
 * Fuzz target: the configuration's value parsers in core/util.c.
 * Properties: an accepted duration is not negative and survives
 * format_duration() and a second parse unchanged; a boolean is 0 or 1;
 * an integer is inside its range; the edit distance is symmetric, 0 from a
 * string to itself and at most 100; a quoted string fits its buffer, holds
 * no control byte (no tab either) and is the input itself when that is
 * short plain ASCII, and an escaped one keeps only tabs.  The input is one
 * string; for the edit distance it is split at its first '\n'.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size), *nl, fmt[64], q[QSTR_SIZE];
	char e[64];
	int64_t ms, again;
	long long v;
	int b, d;

	if (parse_duration(s, &ms) == 0) {
		fuzz_assert(ms >= 0);
		format_duration(ms, fmt, sizeof(fmt));
		fuzz_assert(parse_duration(fmt, &again) == 0);
		fuzz_assert(again == ms);
	}
	qstr(s, QSTR_CHARS, q, sizeof(q));
	fuzz_assert(strlen(q) < sizeof(q));
	for (nl = q; *nl != '\0'; nl++)
		fuzz_assert((unsigned char)*nl >= 0x20 && *nl != 0x7f);
	if (strlen(s) <= QSTR_CHARS && strcspn(s, "\"\\") == strlen(s)) {
		for (nl = s; *nl >= 0x20 && *nl < 0x7f; nl++)
			;
		fuzz_assert(*nl != '\0' || strcmp(q, s) == 0);
	}
	str_escape(s, 40, e, sizeof(e));
	fuzz_assert(strlen(e) < sizeof(e));
	for (nl = e; *nl != '\0'; nl++)
		fuzz_assert(((unsigned char)*nl >= 0x20 && *nl != 0x7f) ||
		    *nl == '\t');
	if (parse_bool(s, &b) == 0)
		fuzz_assert(b == 0 || b == 1);
	if (parse_int(s, 0, 100, &v) == 0)
		fuzz_assert(v >= 0 && v <= 100);
	if (parse_int(s, -5, 36500, &v) == 0)
		fuzz_assert(v >= -5 && v <= 36500);
	if ((nl = strchr(s, '\n')) != NULL) {
		*nl = '\0';
		d = edit_distance(s, nl + 1);
		fuzz_assert(d >= 0 && d <= 100);
		fuzz_assert(d == edit_distance(nl + 1, s));
		fuzz_assert((d == 0) == (strcmp(s, nl + 1) == 0) ||
		    strlen(s) > 100 || strlen(nl + 1) > 100);
		fuzz_assert(edit_distance(s, s) == 0 || strlen(s) > 100);
	}
	free(s);
	return 0;
}
