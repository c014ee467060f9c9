/*
 * net.h: socket helpers: address parsing and formatting, listening sockets.
 *
 * These functions never log.  They return -1 (with errno set, or with a
 * message in the caller's buffer) and leave the reporting to the caller,
 * who knows the context.
 */
#ifndef PREFORKD_NET_H
#define PREFORKD_NET_H

#include <sys/socket.h>
#include <stddef.h>

#define NET_ADDRSTRLEN	64	/* "[ipv6]:port" with room to spare */

struct addr {
	struct sockaddr_storage	ss;
	socklen_t		len;
};

/*
 * Parse a listen or backend address: "host:port", "[v6addr]:port", ":port"
 * or "*:port" (both mean 0.0.0.0).  The port must be 1-65535.  When
 * resolve is 0 the host must be a numeric address; otherwise a name is
 * resolved with getaddrinfo() and its first address taken.  Returns 0, or
 * -1 with a message (no trailing newline) written to err.
 */
int	net_parse_addr(const char *spec, int resolve, struct addr *out,
	    char *err, size_t errlen);

/*
 * Parse a numeric IPv4 address (dotted quad, exactly) or IPv6 address
 * (with an optional %scope) without a port; the port in out is 0.
 * Returns 0, or -1 when s is neither.
 */
int	net_parse_ip(const char *s, struct addr *out);

/* 1 when both hold the same family, address and port, 0 otherwise. */
int	net_addr_equal(const struct addr *a, const struct addr *b);

/*
 * Format sa as "1.2.3.4:80" or "[::1]:80" into buf (NET_ADDRSTRLEN bytes
 * are always enough) and return buf.  An unknown family gives "?".
 */
const char *net_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/*
 * Open a non-blocking, close-on-exec listening TCP socket bound to a with
 * SO_REUSEADDR (and IPV6_V6ONLY for IPv6), SO_REUSEPORT with NET_REUSEPORT
 * in flags, and TCP_NODELAY with NET_NODELAY (see net_nodelay()).  Returns
 * the fd, or -1 with errno set.
 */
#define NET_REUSEPORT	0x1
#define NET_NODELAY	0x2
int	net_listen(const struct addr *a, int backlog, int flags);

/*
 * Set TCP_NODELAY on TCP socket fd when on is 1, clear it when 0.  Linux
 * copies it from a listening socket to each connection accepted from it
 * afterwards, so set there it costs nothing per connection.  Returns 0, or
 * -1 with errno set.
 */
int	net_nodelay(int fd, int on);

/*
 * Bind fd, a TCP socket not yet connected, to the address of a with
 * IP_BIND_ADDRESS_NO_PORT set first: the kernel picks the port at
 * connect(), so one local address serves as many connections as there
 * are distinct remote addresses and ports times the port range, not just
 * the port range.  Returns 0, or -1 with errno set.
 */
int	net_bind_source(int fd, const struct addr *a);

/*
 * Whether accept() failed with err for want of descriptors or memory:
 * accepting pauses for ACCEPT_PAUSE_SECS instead of retrying at once.
 */
#define ACCEPT_PAUSE_SECS	0.5
int	net_accept_starved(int err);
/*
 * Close fd with a reset (SO_LINGER 0): the peer learns at once, and this
 * side keeps no TIME_WAIT for a connection it refused.
 */
void	net_close_reset(int fd);

/*
 * Connections waiting in listening TCP socket fd's accept queue (from
 * TCP_INFO), or -1 when the kernel does not say.
 */
int	net_listen_queued(int fd);

#endif
