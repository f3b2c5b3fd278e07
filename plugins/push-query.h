/*
 * push-query -- the parameters of a push (/push/TOKEN?status=down&msg=...).
 *
 * The query string, and a POST body, are untrusted text from whoever can
 * reach the API listener: application/x-www-form-urlencoded pairs
 * separated by '&', '+' for a space, %XX escapes.  Kept apart from the
 * plugin so the unit tests and the fuzz target (tests/fuzz/fuzz-push.c)
 * drive the very parser the plugin uses.
 */
#ifndef PLUGINS_PUSH_QUERY_H
#define PLUGINS_PUSH_QUERY_H

#include <stddef.h>

/* Bytes of msg kept (after decoding and sanitising), NUL excluded. */
#define PUSH_MSG_MAX 200
/* The largest duration_ms accepted: about 31 years. */
#define PUSH_DURATION_MS_MAX 1e12

enum push_status { PUSH_UP = 0, PUSH_DOWN = 1 };

struct push_msg {
	int status;                    /* enum push_status; default up */
	char msg[PUSH_MSG_MAX + 1];    /* "" when not given */
	int has_duration;
	double duration_s;             /* duration_ms / 1000, when given */
};

/* Reset *M to the defaults (status up, no message, no duration). */
void push_msg_init(struct push_msg *m);

/*
 * Parse the LEN bytes at S (not NUL-terminated: may hold NUL bytes, which
 * are refused) as form-encoded pairs into *M, over what it holds already
 * (a later key wins: the body after the query).  Keys: status (up or
 * down, any case), msg (percent-decoded, control characters removed, cut
 * at PUSH_MSG_MAX bytes on a UTF-8 character boundary) and duration_ms (a
 * decimal number in [0, PUSH_DURATION_MS_MAX]); empty pairs are skipped.
 * Returns 0, or -1 with a message in ERR (ERRLEN bytes; quoting at most a
 * short, sanitised piece of the input) for an unknown key, a bad value or
 * a broken %-escape; *M may then be partly updated.
 */
int push_parse(const char *s, size_t len, struct push_msg *m, char *err,
    size_t errlen);

#endif
