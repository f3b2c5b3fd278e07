/*
 * dns.h -- the dns plugin's answer handling, apart from its loop code so
 * the fuzz target and the unit tests reach it.
 *
 * c-ares parses the records; this file turns a reply into one text form
 * per answer of the asked type and says whether an `expect` value is among
 * them.  No function here allocates: everything lands in the caller's
 * struct dns_answers.
 */
#ifndef PLUGINS_DNS_H
#define PLUGINS_DNS_H

#include <stddef.h>

/* Record types (RFC 1035 and successors). */
enum {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_SOA = 6,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
	DNS_T_SRV = 33,
	DNS_T_CAA = 257
};

/* Response codes as the expected_rcode key spells them, in code order. */
#define DNS_RCODES "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", \
	"NOTIMP", "REFUSED"
#define DNS_N_RCODES 6

#define DNS_MAX_ANSWERS 32
#define DNS_ANSWER_BYTES 4096

/* The answers of one reply, as text: v[0..n), each NUL-terminated inside
 * buf.  truncated: more answers (or longer ones) than fit were dropped. */
struct dns_answers {
	size_t n;
	const char *v[DNS_MAX_ANSWERS];
	int truncated;
	size_t used;
	char buf[DNS_ANSWER_BYTES];
};

/* The reply's RCODE, or -1 when ABUF is too short to be a DNS message. */
int dns_rcode(const unsigned char *abuf, int alen);

/*
 * Every answer of type TYPE in the reply ABUF[0..ALEN) into *OUT, in
 * answer order:
 *   A, AAAA  the address ("192.0.2.1", "2001:db8::1")
 *   CNAME, NS, PTR  the name, without a trailing dot
 *   MX   "PRIORITY HOST"      SRV  "PRIORITY WEIGHT PORT TARGET"
 *   SOA  "MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM"
 *   TXT  the record's strings joined (control bytes shown as '?')
 *   CAA  "FLAGS TAG \"VALUE\""
 * Returns 0 (n >= 1), ARES_ENODATA
 * (no answer of that type) or another ARES_E* code (malformed reply).
 */
int dns_parse_answers(int type, const unsigned char *abuf, int alen,
    struct dns_answers *out);

/*
 * Whether EXPECT (an `expect` value) names the answer ANSWER (one text of
 * dns_parse_answers for TYPE): addresses compare as addresses, names
 * without case or trailing dot, MX/SRV/SOA also by their host alone, CAA
 * also as "TAG VALUE"; TXT exactly.  1 or 0.
 */
int dns_answer_matches(int type, const char *answer, const char *expect);

#endif
