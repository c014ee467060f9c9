/*
 * sockaddr_make.h: build a sockaddr from a numeric host and a port, for
 * the unit tests.  Not net_parse_addr(): tests need port 0, which a listen
 * or backend address rightly refuses.  Include after tap.h (bail_out).
 */
#ifndef PREFORKD_SOCKADDR_MAKE_H
#define PREFORKD_SOCKADDR_MAKE_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>

static inline void
sa_make(struct sockaddr_storage *ss, const char *host, unsigned port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((in_port_t)port);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((in_port_t)port);
	} else
		bail_out("sa_make: bad host %s", host);
}

#endif
