/*
 * Fuzz target: the dns plugin's reply handling (plugins/dns-answer.c) on
 * arbitrary bytes from a "server".  c-ares parses the records; this code
 * turns them into text and matches `expect` values, and must never read
 * out of bounds, whatever the reply.  Properties: every answer is a
 * NUL-terminated string inside the answer buffer, there are at most
 * DNS_MAX_ANSWERS of them, and each answer matches itself (for the text
 * types; addresses match themselves as addresses).
 *
 * Input: one byte choosing the record type, then the reply.
 */
#include "config.h"

#include <string.h>

#include "dns.h"
#include "fuzz.h"

static const int types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_CNAME, DNS_T_MX,
	DNS_T_TXT, DNS_T_NS, DNS_T_SOA, DNS_T_SRV, DNS_T_CAA, DNS_T_PTR };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_answers ans;
	const char *end = ans.buf + sizeof(ans.buf);
	size_t i;
	int type, st;

	if (size < 1 || size > 65536)
		return 0;
	type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	(void)dns_rcode(data + 1, (int)(size - 1));
	st = dns_parse_answers(type, data + 1, (int)(size - 1), &ans);
	if (st != 0)
		return 0;
	fuzz_assert(ans.n >= 1 && ans.n <= DNS_MAX_ANSWERS);
	for (i = 0; i < ans.n; i++) {
		fuzz_assert(ans.v[i] >= ans.buf && ans.v[i] < end);
		fuzz_assert(memchr(ans.v[i], '\0', (size_t)(end - ans.v[i])));
		fuzz_assert(dns_answer_matches(type, ans.v[i], ans.v[i]));
		(void)dns_answer_matches(type, ans.v[i], "");
		(void)dns_answer_matches(type, ans.v[i], "issue x");
	}
	return 0;
}
