/*
 * Fuzz target: the http check's verdict (plugins/http-eval.c) on arbitrary
 * status lists, keywords, status codes and response bodies cut into
 * arbitrary chunks, and the certificate date parser on arbitrary text.
 *
 * Input: one control byte, then four lines -- expected_status (empty: the
 * default), keyword, keyword_absent (empty: none), the status code -- and
 * the body.  The control byte's low nibble sets the chunk sizes; a high
 * nibble of 0xf repeats the body past HTTPEVAL_BODY_LIMIT.
 *
 * Properties: a parsed list holds 1..HTTPEVAL_MAX_RANGES ranges inside
 * 100-599, each lo <= hi; the streamed search agrees with memmem() over
 * the first HTTPEVAL_BODY_LIMIT bytes whatever the chunking; the verdict is
 * the one the rules give; a detail is NUL-terminated, fits, and holds no
 * control bytes but tabs.
 */
#include "config.h"

#include <string.h>

#include <watchpost/plugin.h>

#include "fuzz.h"
#include "http-eval.h"

/* The next '\n'-terminated line of [*p, end) as a string; NULL at the end. */
static char *
next_line(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl;
	char *s;

	if (*p >= end)
		return NULL;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	if (nl == NULL)
		nl = end;
	s = fuzz_string(*p, (size_t)(nl - *p));
	*p = nl < end ? nl + 1 : end;
	return s;
}

static int
has(const char *hay, size_t n, const char *needle)
{
	return needle != NULL && memmem(hay, n, needle, strlen(needle)) != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + 1, *end = data + size;
	char *spec = NULL, *kw = NULL, *kwa = NULL, *codes = NULL, *body = NULL;
	const char *want, *avoid;
	struct httpeval_status st;
	struct httpeval_eval ev;
	size_t blen, total, off, chunk, seen, i;
	char detail[256];
	long code;
	int reason, expect;

	if (size < 1)
		return 0;
	if ((spec = next_line(&p, end)) == NULL ||
	    (kw = next_line(&p, end)) == NULL ||
	    (kwa = next_line(&p, end)) == NULL ||
	    (codes = next_line(&p, end)) == NULL)
		goto out;
	/* The certificate date parser sees every line. */
	(void)httpeval_parse_asn1_time(spec);
	(void)httpeval_parse_asn1_time(codes);

	if (spec[0] == '\0')
		httpeval_status_default(&st);
	else if (httpeval_parse_status(&st, spec) != NULL)
		goto out;
	fuzz_assert(st.n >= 1 && st.n <= HTTPEVAL_MAX_RANGES);
	for (i = 0; i < st.n; i++)
		fuzz_assert(st.r[i].lo >= 100 && st.r[i].lo <= st.r[i].hi &&
		    st.r[i].hi <= 599);
	/* configure() takes keywords of 1..HTTPEVAL_KEYWORD_MAX bytes. */
	want = kw[0] != '\0' && strlen(kw) <= HTTPEVAL_KEYWORD_MAX ? kw : NULL;
	avoid = kwa[0] != '\0' && strlen(kwa) <= HTTPEVAL_KEYWORD_MAX ? kwa :
	    NULL;
	code = strtol(codes, NULL, 10);

	/* The body stream: the rest, maybe repeated past the limit. */
	blen = (size_t)(end - p);
	total = blen;
	if ((data[0] & 0xf0) == 0xf0 && blen > 0)
		total = (HTTPEVAL_BODY_LIMIT / blen + 2) * blen;
	if ((body = malloc(total ? total : 1)) == NULL)
		abort();
	for (off = 0; off < total; off += blen)
		memcpy(body + off, p, blen);

	memset(&ev, 0, sizeof(ev));
	ev.status = &st;
	httpeval_match_init(&ev.want, want);
	httpeval_match_init(&ev.avoid, avoid);
	chunk = (size_t)(data[0] & 0x0f) + 1;
	for (off = 0; off < total; ) {
		size_t n = total - off < chunk ? total - off : chunk;
		if (httpeval_eval_body(&ev, code, body + off, n))
			break;
		off += n;
		/* Vary the chunk sizes: 1..16 first, then others. */
		chunk = chunk * 3 % 4099 + 1;
	}
	seen = total < HTTPEVAL_BODY_LIMIT ? total : HTTPEVAL_BODY_LIMIT;
	fuzz_assert(ev.body_bytes <= seen);

	if (!httpeval_status_ok(&st, code))
		expect = WP_REASON_STATUS;
	else if (has(body, seen, avoid))
		expect = WP_REASON_KEYWORD;
	else if (want != NULL && !has(body, seen, want))
		expect = WP_REASON_KEYWORD;
	else
		expect = WP_REASON_OK;
	/* The search itself, not just the verdict, must agree. */
	if (expect != WP_REASON_STATUS) {
		fuzz_assert(ev.avoid.found == has(body, seen, avoid));
		if (!ev.avoid.found)
			fuzz_assert(ev.want.found == has(body, seen, want));
	}

	memset(detail, 'X', sizeof(detail));
	reason = httpeval_judge(&ev, code, spec[0] ? spec : NULL, want, avoid,
	    detail, sizeof(detail));
	fuzz_assert(reason == expect);
	if (reason != WP_REASON_OK) {
		fuzz_assert(memchr(detail, '\0', sizeof(detail)) != NULL);
		for (i = 0; detail[i] != '\0'; i++)
			fuzz_assert((unsigned char)detail[i] >= 0x20 ||
			    detail[i] == '\t');
	}
out:
	free(spec);
	free(kw);
	free(kwa);
	free(codes);
	free(body);
	return 0;
}
