/*
 * Fuzz target: the push parameters parser (plugins/push-query.c) on
 * arbitrary bytes, NULs included -- a query string or POST body anyone
 * who reaches the API listener can send.  Properties: on success the
 * status is up or down, msg is a string of at most PUSH_MSG_MAX bytes
 * without control characters and not ending inside a UTF-8 sequence that
 * was cut, a duration is finite and in range; on failure the message is
 * printable; parsing the same bytes twice gives the same answer.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "push-query.h"

static struct push_msg a, b;

static void
check_text(const char *s, size_t max)
{
	size_t len = strnlen(s, max + 1), i;

	fuzz_assert(len <= max);
	for (i = 0; i < len; i++)
		fuzz_assert((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char ea[256], eb[256];
	int ra, rb;

	push_msg_init(&a);
	push_msg_init(&b);
	ra = push_parse((const char *)data, size, &a, ea, sizeof(ea));
	rb = push_parse((const char *)data, size, &b, eb, sizeof(eb));
	fuzz_assert(ra == rb);
	if (ra != 0) {
		fuzz_assert(ra == -1);
		check_text(ea, sizeof(ea) - 1);
		fuzz_assert(strcmp(ea, eb) == 0);
		return 0;
	}
	fuzz_assert(a.status == PUSH_UP || a.status == PUSH_DOWN);
	check_text(a.msg, PUSH_MSG_MAX);
	fuzz_assert(a.has_duration == 0 || a.has_duration == 1);
	if (a.has_duration)
		fuzz_assert(isfinite(a.duration_s) && a.duration_s >= 0 &&
		    a.duration_s <= PUSH_DURATION_MS_MAX / 1000);
	fuzz_assert(a.status == b.status && a.has_duration == b.has_duration &&
	    strcmp(a.msg, b.msg) == 0);
	if (a.has_duration)
		fuzz_assert(a.duration_s == b.duration_s);
	return 0;
}
