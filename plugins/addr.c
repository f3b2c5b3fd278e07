/*
 * addr -- the target handling tcp.so and ping.so share (see addr.h).
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

int
addr_numeric(const char *name, const char *port, struct addr *a)
{
	struct addrinfo hints, *res = NULL;
	char buf[256];
	size_t n = strlen(name);
	int found = 0;

	if (n >= 2 && name[0] == '[' && name[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, name + 1, n - 2);
		buf[n - 2] = '\0';
		name = buf;
	}
	/* Every socket type gives the same address: take the first. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(name, port, &hints, &res) == 0 && res != NULL &&
	    res->ai_addrlen <= sizeof(a->ss)) {
		memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
		a->len = res->ai_addrlen;
		found = 1;
	}
	if (res != NULL)
		freeaddrinfo(res);
	return found;
}

size_t
addr_take(const char *name, int status, const char *err,
    const struct addrinfo *res, struct addr *out, size_t max, char *why,
    size_t whylen)
{
	const struct addrinfo *ai;
	size_t n = 0;

	if (status != 0 || res == NULL) {
		snprintf(why, whylen, "cannot resolve %s: %s", name,
		    err ? err : "no address");
		return 0;
	}
	for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(out[n].ss))
			continue;
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		n++;
	}
	if (n == 0)
		snprintf(why, whylen, "%s has no IPv4 or IPv6 address", name);
	return n;
}
