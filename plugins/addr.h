/*
 * addr -- what the tcp and ping checks share about their target: a literal
 * address parsed once at configure() without the
 * resolver, and the usable addresses of a host->resolve() answer.  It is
 * compiled into tcp.so and ping.so; the plugins are built with hidden
 * visibility, so none of these names leaves its .so file.  Nothing here
 * blocks.
 */
#ifndef PLUGINS_ADDR_H
#define PLUGINS_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include <watchpost/plugin.h>

/* One IPv4 or IPv6 socket address and its length. */
struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/*
 * If NAME (optionally in [brackets]) is a literal IPv4 or IPv6 address,
 * set *a to it, with PORT (decimal digits, or NULL for none), and return 1;
 * return 0 for anything else (a name to resolve).  getaddrinfo() with
 * AI_NUMERICHOST never touches the resolver.
 */
int addr_numeric(const char *name, const char *port, struct addr *a);

/*
 * For a wp_resolve_cb answer (STATUS, ERR, RES) about NAME: copy its first
 * MAX IPv4 and IPv6 addresses, in order, into OUT and return how many.
 * With none, return 0 after writing the reason into WHY: "cannot resolve
 * NAME: ERR" or "NAME has no IPv4 or IPv6 address".
 */
size_t addr_take(const char *name, int status, const char *err,
    const struct addrinfo *res, struct addr *out, size_t max, char *why,
    size_t whylen);

#endif
