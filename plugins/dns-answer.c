/*
 * dns-answer.c -- a DNS reply as text, and `expect` matching (dns.h).
 *
 * The record parsing is c-ares's (ares_parse_*_reply).  c-ares 1.18 has no
 * parser for a bare CNAME answer, so that one walks the answer section with
 * c-ares's own name expansion and the ares_dns.h field macros.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ares.h>
#include <ares_dns.h>

#include "dns.h"

#define DNS_HEADER_LEN 12
#define DNS_QFIXED 4   /* QTYPE, QCLASS */
#define DNS_RRFIXED 10 /* TYPE, CLASS, TTL, RDLENGTH */

int
dns_rcode(const unsigned char *abuf, int alen)
{
	if (abuf == NULL || alen < DNS_HEADER_LEN)
		return -1;
	return DNS_HEADER_RCODE(abuf);
}

/* Append one answer (printf FMT) to OUT; sets truncated when full. */
static void add(struct dns_answers *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add(struct dns_answers *out, const char *fmt, ...)
{
	size_t room = sizeof(out->buf) - out->used;
	va_list ap;
	int n;

	if (out->n == DNS_MAX_ANSWERS || room < 2) {
		out->truncated = 1;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(out->buf + out->used, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room) {
		/* Keep what fits: a long TXT record is still worth showing. */
		out->truncated = 1;
		n = (int)room - 1;
	}
	out->v[out->n++] = out->buf + out->used;
	out->used += (size_t)n + 1;
}

/* BYTES[0..LEN) as text: printable ASCII kept, anything else '?'. */
static void
add_bytes(struct dns_answers *out, const char *prefix,
    const unsigned char *bytes, size_t len, const char *suffix)
{
	char *t = malloc(len + 1);
	size_t i;

	if (t == NULL) {
		out->truncated = 1;
		return;
	}
	for (i = 0; i < len; i++)
		t[i] = (bytes[i] >= 0x20 && bytes[i] < 0x7f) ? (char)bytes[i] :
		    '?';
	t[len] = '\0';
	add(out, "%s%s%s", prefix, t, suffix);
	free(t);
}

static void
add_names(struct dns_answers *out, const struct hostent *he)
{
	size_t i;

	for (i = 0; he->h_aliases != NULL && he->h_aliases[i] != NULL; i++)
		add(out, "%s", he->h_aliases[i]);
}

/* The CNAME records of the answer section (see the file comment). */
static int
parse_cname(const unsigned char *abuf, int alen, struct dns_answers *out)
{
	const unsigned char *p, *end = abuf + alen;
	unsigned qd, an, i;
	char *name;
	long enc;
	int rtype, rdlen;

	if (alen < DNS_HEADER_LEN)
		return ARES_EBADRESP;
	qd = DNS_HEADER_QDCOUNT(abuf);
	an = DNS_HEADER_ANCOUNT(abuf);
	p = abuf + DNS_HEADER_LEN;
	for (i = 0; i < qd; i++) {
		if (ares_expand_name(p, abuf, alen, &name, &enc) != ARES_SUCCESS)
			return ARES_EBADRESP;
		ares_free_string(name);
		if (end - p < enc + DNS_QFIXED)
			return ARES_EBADRESP;
		p += enc + DNS_QFIXED;
	}
	for (i = 0; i < an; i++) {
		if (ares_expand_name(p, abuf, alen, &name, &enc) != ARES_SUCCESS)
			return ARES_EBADRESP;
		ares_free_string(name);
		if (end - p < enc + DNS_RRFIXED)
			return ARES_EBADRESP;
		p += enc;
		rtype = DNS_RR_TYPE(p);
		rdlen = DNS_RR_LEN(p);
		p += DNS_RRFIXED;
		if (end - p < rdlen)
			return ARES_EBADRESP;
		if (rtype == DNS_T_CNAME) {
			if (ares_expand_name(p, abuf, alen, &name, &enc) !=
			    ARES_SUCCESS)
				return ARES_EBADRESP;
			add(out, "%s", name);
			ares_free_string(name);
		}
		p += rdlen;
	}
	return out->n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

int
dns_parse_answers(int type, const unsigned char *abuf, int alen,
    struct dns_answers *out)
{
	struct hostent *he = NULL;
	char ip[INET6_ADDRSTRLEN];
	int st, n, i;

	memset(out, 0, offsetof(struct dns_answers, buf));
	if (abuf == NULL || alen < DNS_HEADER_LEN)
		return ARES_EBADRESP;
	switch (type) {
	case DNS_T_A: {
		struct ares_addrttl a[DNS_MAX_ANSWERS];

		n = DNS_MAX_ANSWERS;
		if ((st = ares_parse_a_reply(abuf, alen, NULL, a, &n)) != 0)
			return st;
		for (i = 0; i < n; i++)
			add(out, "%s", inet_ntop(AF_INET, &a[i].ipaddr, ip,
			    sizeof(ip)) ? ip : "?");
		break;
	}
	case DNS_T_AAAA: {
		struct ares_addr6ttl a[DNS_MAX_ANSWERS];

		n = DNS_MAX_ANSWERS;
		if ((st = ares_parse_aaaa_reply(abuf, alen, NULL, a, &n)) != 0)
			return st;
		for (i = 0; i < n; i++)
			add(out, "%s", inet_ntop(AF_INET6, &a[i].ip6addr, ip,
			    sizeof(ip)) ? ip : "?");
		break;
	}
	case DNS_T_CNAME:
		return parse_cname(abuf, alen, out);
	case DNS_T_NS:
		if ((st = ares_parse_ns_reply(abuf, alen, &he)) != 0)
			return st;
		add_names(out, he);
		ares_free_hostent(he);
		break;
	case DNS_T_PTR: {
		/* c-ares copies an address into the hostent it builds; the
		 * check only wants the names, so any address serves. */
		struct in_addr any = { 0 };

		if ((st = ares_parse_ptr_reply(abuf, alen, &any, sizeof(any),
		    AF_INET, &he)) != 0)
			return st;
		if (he->h_aliases == NULL || he->h_aliases[0] == NULL)
			add(out, "%s", he->h_name);
		else
			add_names(out, he);
		ares_free_hostent(he);
		break;
	}
	case DNS_T_MX: {
		struct ares_mx_reply *mx, *m;

		if ((st = ares_parse_mx_reply(abuf, alen, &mx)) != 0)
			return st;
		for (m = mx; m != NULL; m = m->next)
			add(out, "%u %s", m->priority, m->host);
		ares_free_data(mx);
		break;
	}
	case DNS_T_SRV: {
		struct ares_srv_reply *srv, *s;

		if ((st = ares_parse_srv_reply(abuf, alen, &srv)) != 0)
			return st;
		for (s = srv; s != NULL; s = s->next)
			add(out, "%u %u %u %s", s->priority, s->weight, s->port,
			    s->host);
		ares_free_data(srv);
		break;
	}
	case DNS_T_SOA: {
		struct ares_soa_reply *soa;

		if ((st = ares_parse_soa_reply(abuf, alen, &soa)) != 0)
			return st;
		add(out, "%s %s %u %u %u %u %u", soa->nsname, soa->hostmaster,
		    soa->serial, soa->refresh, soa->retry, soa->expire,
		    soa->minttl);
		ares_free_data(soa);
		break;
	}
	case DNS_T_TXT: {
		struct ares_txt_ext *txt, *t, *first;
		size_t len;
		unsigned char *joined;

		if ((st = ares_parse_txt_reply_ext(abuf, alen, &txt)) != 0)
			return st;
		/* One answer per record: its chunks joined. */
		for (t = txt; t != NULL;) {
			first = t;
			len = 0;
			do {
				len += t->length;
				t = t->next;
			} while (t != NULL && !t->record_start);
			if ((joined = malloc(len + 1)) == NULL) {
				out->truncated = 1;
				break;
			}
			len = 0;
			for (; first != t; first = first->next) {
				memcpy(joined + len, first->txt, first->length);
				len += first->length;
			}
			add_bytes(out, "", joined, len, "");
			free(joined);
		}
		ares_free_data(txt);
		break;
	}
	case DNS_T_CAA: {
		struct ares_caa_reply *caa, *c;
		char pre[300];

		if ((st = ares_parse_caa_reply(abuf, alen, &caa)) != 0)
			return st;
		for (c = caa; c != NULL; c = c->next) {
			char prop[256];

			snprintf(prop, sizeof(prop), "%.*s",
			    (int)(c->plength < 255 ? c->plength : 255),
			    (const char *)c->property);
			snprintf(pre, sizeof(pre), "%d %s \"", c->critical,
			    prop);
			add_bytes(out, pre, c->value, c->length, "\"");
		}
		ares_free_data(caa);
		break;
	}
	default:
		return ARES_ENOTIMP;
	}
	return out->n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

/* A and B equal as names: no case, at most one trailing dot each. */
static int
same_name(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen > 0 && a[alen - 1] == '.')
		alen--;
	if (blen > 0 && b[blen - 1] == '.')
		blen--;
	return alen == blen && strncasecmp(a, b, alen) == 0;
}

/* The text after the Nth space of S (the host of "10 mail.example"). */
static const char *
field(const char *s, int n)
{
	for (; n > 0 && s != NULL; n--) {
		s = strchr(s, ' ');
		if (s != NULL)
			s++;
	}
	return s;
}

int
dns_answer_matches(int type, const char *answer, const char *expect)
{
	unsigned char a[16], b[16];
	const char *host;
	int af;

	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		af = type == DNS_T_A ? AF_INET : AF_INET6;
		return inet_pton(af, answer, a) == 1 &&
		    inet_pton(af, expect, b) == 1 &&
		    memcmp(a, b, af == AF_INET ? 4 : 16) == 0;
	case DNS_T_CNAME:
	case DNS_T_NS:
	case DNS_T_PTR:
		return same_name(answer, strlen(answer), expect);
	case DNS_T_MX:
	case DNS_T_SRV:
	case DNS_T_SOA:
		if (strcasecmp(answer, expect) == 0)
			return 1;
		host = field(answer, type == DNS_T_MX ? 1 :
		    type == DNS_T_SRV ? 3 : 0);
		if (host == NULL)
			return 0;
		/* SOA's MNAME is its first field: up to the first space. */
		return same_name(host, type == DNS_T_SOA ?
		    strcspn(host, " ") : strlen(host), expect);
	case DNS_T_CAA: {
		/* "0 issue \"ca.example\"" also matches "issue ca.example". */
		const char *tag = field(answer, 1);
		size_t taglen, vlen;

		if (strcmp(answer, expect) == 0)
			return 1;
		if (tag == NULL)
			return 0;
		taglen = strcspn(tag, " ");
		if (strncasecmp(tag, expect, taglen) != 0 ||
		    expect[taglen] != ' ' || tag[taglen] != ' ' ||
		    tag[taglen + 1] != '"')
			return 0;
		vlen = strlen(tag + taglen + 2);
		if (vlen == 0)
			return 0;
		vlen--; /* the closing quote */
		return strlen(expect + taglen + 1) == vlen &&
		    strncmp(tag + taglen + 2, expect + taglen + 1, vlen) == 0;
	}
	default:
		return strcmp(answer, expect) == 0;
	}
}
