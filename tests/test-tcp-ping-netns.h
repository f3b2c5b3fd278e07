/*
 * test-tcp-ping-netns.h -- a private network namespace for the tcp and ping
 * tests, shared by both (static functions, one copy per test program).
 *
 * netns_enter() moves the calling process (call it first in main(), before
 * any thread exists) into a new network namespace it creates, so nothing
 * the tests send can leave the machine, and sets that namespace up:
 *   - lo up (127.0.0.1 and ::1),
 *   - NETNS_SILENT (192.0.2.0/24, TEST-NET-1) routed into lo: packets to it
 *     loop back, are not local and are dropped (forwarding is off), so a
 *     connect or echo request to it is never answered,
 *   - NETNS_UNREACH (198.51.100.0/24, TEST-NET-2) as an unreachable route,
 *   - net.ipv4.ping_group_range opened to every group (in this namespace
 *     only), so unprivileged ICMP datagram sockets work here.
 * Returns 1 inside the namespace, 0 if it could not be created (the caller
 * skips the tests that need it; loopback tests then run in the current
 * namespace).  WHY holds the reason on failure.
 */
#ifndef TEST_TCP_PING_NETNS_H
#define TEST_TCP_PING_NETNS_H

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <netdb.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETNS_SILENT "192.0.2.1"
#define NETNS_UNREACH "198.51.100.1"

static int
netns_route(int s, const char *net, int reject, char *why, size_t whylen)
{
	struct rtentry rt;
	struct sockaddr_in *sin;
	char dev[] = "lo";

	memset(&rt, 0, sizeof(rt));
	sin = (struct sockaddr_in *)&rt.rt_dst;
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, net, &sin->sin_addr);
	sin = (struct sockaddr_in *)&rt.rt_genmask;
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
	rt.rt_flags = RTF_UP | (reject ? RTF_REJECT : 0);
	rt.rt_dev = dev;
	if (ioctl(s, SIOCADDRT, &rt) != 0) {
		snprintf(why, whylen, "route %s: %s", net, strerror(errno));
		return -1;
	}
	return 0;
}

static int
netns_enter(char *why, size_t whylen)
{
	struct ifreq ifr;
	int s = -1, fd = -1, ok = 0;
	static const char range[] = "0 2147483647\n";

	if (unshare(CLONE_NEWNET) != 0) {
		snprintf(why, whylen, "unshare(CLONE_NEWNET): %s",
		    strerror(errno));
		return 0;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
		snprintf(why, whylen, "SIOCGIFFLAGS lo: %s", strerror(errno));
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
		snprintf(why, whylen, "SIOCSIFFLAGS lo: %s", strerror(errno));
		goto out;
	}
	if (netns_route(s, "192.0.2.0", 0, why, whylen) != 0 ||
	    netns_route(s, "198.51.100.0", 1, why, whylen) != 0)
		goto out;
	fd = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, range, sizeof(range) - 1) !=
	    (ssize_t)(sizeof(range) - 1)) {
		snprintf(why, whylen, "ping_group_range: %s", strerror(errno));
		goto out;
	}
	ok = 1;
out:
	if (fd >= 0)
		close(fd);
	if (s >= 0)
		close(s);
	return ok;
}

/*
 * Can this machine resolve "localhost" at all?  A minimal Debian (debootstrap
 * --variant=minbase) has no /etc/hosts; tests of name resolution skip there
 * rather than fail for the machine's sake.
 */
static inline int
localhost_resolves(void)
{
	struct addrinfo hints, *res = NULL;
	int ok;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	ok = getaddrinfo("localhost", NULL, &hints, &res) == 0;
	if (res != NULL)
		freeaddrinfo(res);
	return ok;
}

#endif
