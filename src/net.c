/*
 * net.c: socket helpers: address parsing and formatting, listen sockets.
 * Never logs: errors go back to the caller.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static int
parse_port(const char *s, in_port_t *port)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = htons((in_port_t)v);
	return 0;
}

int
net_parse_addr(const char *spec, int resolve, struct addr *out, char *err,
    size_t errlen)
{
	char host[256];
	const char *colon, *portstr;
	size_t hlen;
	in_port_t port;
	struct addrinfo hints, *res;
	int rc;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "\"%s\": expected [address]:port", spec);
			return -1;
		}
		hlen = close - spec - 1;
		memcpy(host, spec + 1, hlen < sizeof(host) ? hlen : 0);
		portstr = close + 2;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL) {
			snprintf(err, errlen, "\"%s\": expected host:port", spec);
			return -1;
		}
		hlen = colon - spec;
		if (memchr(spec, ':', hlen) != NULL) {
			snprintf(err, errlen, "\"%s\": IPv6 addresses need brackets: [address]:port", spec);
			return -1;
		}
		memcpy(host, spec, hlen < sizeof(host) ? hlen : 0);
		portstr = colon + 1;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "\"%s\": host name too long", spec);
		return -1;
	}
	host[hlen] = '\0';
	if (parse_port(portstr, &port) == -1) {
		snprintf(err, errlen, "\"%s\": port must be 1-65535", spec);
		return -1;
	}

	memset(out, 0, sizeof(*out));
	if (hlen == 0 || strcmp(host, "*") == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = port;
		out->len = sizeof(*sin);
		return 0;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = resolve ? 0 : AI_NUMERICHOST;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		if (!resolve && rc == EAI_NONAME)
			snprintf(err, errlen, "\"%s\": not a numeric address", host);
		else
			snprintf(err, errlen, "\"%s\": %s", host,
			    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	if (out->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&out->ss)->sin_port = port;
	else
		((struct sockaddr_in6 *)&out->ss)->sin6_port = port;
	return 0;
}

int
net_parse_ip(const char *s, struct addr *out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct addrinfo hints, *res;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		out->len = sizeof(*sin);
		return 0;
	}
	if (strchr(s, ':') == NULL)
		return -1;
	/* getaddrinfo() rather than inet_pton() for the %scope of link-local addresses. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET6;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(s, NULL, &hints, &res) != 0)
		return -1;
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
net_addr_equal(const struct addr *a, const struct addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin6_port == y->sin6_port &&
		    x->sin6_scope_id == y->sin6_scope_id &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}

const char *
net_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else
		snprintf(buf, len, "?");
	return buf;
}

int
net_listen(const struct addr *a, int backlog, int flags)
{
	int fd, on = 1, saved;

	if ((fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    ((flags & NET_REUSEPORT) &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1) ||
	    ((flags & NET_NODELAY) && net_nodelay(fd, 1) == -1) ||
	    (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1 ||
	    listen(fd, backlog) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
net_nodelay(int fd, int on)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

int
net_bind_source(int fd, const struct addr *a)
{
	int on = 1;

	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on)) == -1)
		return -1;
	return bind(fd, (const struct sockaddr *)&a->ss, a->len);
}

int
net_accept_starved(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

void
net_close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int
net_listen_queued(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 ||
	    ti.tcpi_state != TCP_LISTEN)
		return -1;
	return ti.tcpi_unacked > INT_MAX ? INT_MAX : (int)ti.tcpi_unacked;
}
