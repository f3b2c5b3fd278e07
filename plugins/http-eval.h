/*
 * http-eval -- the http check's verdict, apart from libcurl: the
 * expected_status list, the keyword searches over a streamed body, the
 * final judgement and the certificate expiry date.  Pure functions of their
 * arguments (no I/O, no allocation), so http.c and the fuzz target
 * (tests/fuzz/fuzz-http.c) run the same code.  Compiled into http.so with
 * hidden visibility.
 */
#ifndef PLUGINS_HTTP_EVAL_H
#define PLUGINS_HTTP_EVAL_H

#include <stddef.h>
#include <stdint.h>

#define HTTPEVAL_BODY_LIMIT (1024 * 1024) /* body bytes read at most */
#define HTTPEVAL_KEYWORD_MAX 1024
#define HTTPEVAL_MAX_RANGES 32
#define HTTPEVAL_DETAIL_KEYWORD 64 /* keyword bytes quoted in a detail */

/* Accepted status codes: inclusive ranges. */
struct httpeval_status {
	struct {
		int lo, hi;
	} r[HTTPEVAL_MAX_RANGES];
	size_t n;
};

/*
 * Parse "200", "200-299", "200,301", "200-204,301" (codes 100-599, blanks
 * around codes allowed) into *st.  Returns NULL, or what is wrong (a static
 * string that does not quote the input); *st is then unspecified.
 */
const char *httpeval_parse_status(struct httpeval_status *st, const char *s);

/* The default list: 200-299. */
void httpeval_status_default(struct httpeval_status *st);

/* 1 if CODE is in the list. */
int httpeval_status_ok(const struct httpeval_status *st, long code);

/* A keyword searched for in a streamed body. */
struct httpeval_match {
	const char *needle;       /* NULL: no such rule (borrowed) */
	size_t len;               /* 1..HTTPEVAL_KEYWORD_MAX */
	char tail[HTTPEVAL_KEYWORD_MAX]; /* last len-1 bytes seen */
	size_t tail_len;
	int found;
};

/*
 * What one check has seen of a body.  Fill in `status` (borrowed) and the
 * two matches with httpeval_match_init(), then feed the body with
 * httpeval_eval_body() and ask httpeval_judge() for the verdict.
 */
struct httpeval_eval {
	const struct httpeval_status *status;
	struct httpeval_match want;   /* keyword */
	struct httpeval_match avoid;  /* keyword_absent */
	size_t body_bytes;           /* bytes searched, <= the limit */
	size_t body_limit;           /* max_body; 0: HTTPEVAL_BODY_LIMIT */
};

/* The body bytes EV reads at most: its body_limit, or the default. */
size_t httpeval_body_limit(const struct httpeval_eval *ev);

/* NEEDLE: NULL, or a non-empty string of at most HTTPEVAL_KEYWORD_MAX
 * bytes, borrowed for the match's life. */
void httpeval_match_init(struct httpeval_match *m, const char *needle);

/*
 * N more body bytes at P of a response with status CODE.  Returns 1 once
 * the verdict is known (the rest of the body cannot change it), else 0.
 */
int httpeval_eval_body(struct httpeval_eval *ev, long code, const char *p,
    size_t n);

/*
 * 1 if the verdict for a response with status CODE is already a failure
 * (the status is not accepted, or keyword_absent was found): no more of
 * the body can change it.  Else 0.
 */
int httpeval_eval_failed(const struct httpeval_eval *ev, long code);

/*
 * The verdict for a response with status CODE after the body seen so far:
 * returns WP_REASON_OK, WP_REASON_STATUS or WP_REASON_KEYWORD, and for a
 * failure writes a detail (NUL-terminated, at most LEN bytes) into DETAIL.
 * EXPECTED is the list as written (NULL: the default), KEYWORD and
 * KEYWORD_ABSENT the rules' texts as configured (quoted shortened, control
 * bytes and '"' as '?').
 */
int httpeval_judge(const struct httpeval_eval *ev, long code,
    const char *expected, const char *keyword, const char *keyword_absent,
    char *detail, size_t len);

/*
 * OpenSSL's ASN1_TIME_print() form, "Nov 22 10:15:30 2126 GMT" (seconds
 * may carry a fraction), as unix seconds; 0 if S is not that.
 */
int64_t httpeval_parse_asn1_time(const char *s);

#endif
