/*
 * test_net.c: unit tests for src/net.c: address parsing and formatting,
 * address comparison and listening sockets.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- net_parse_addr ------------------------------------------------------------ */

static const struct {
	const char	*spec;
	int		 resolve;
	int		 family;	/* 0: must fail */
	const char	*host;		/* numeric, as inet_ntop writes it */
	int		 port;
} parse_cases[] = {
	{ "127.0.0.1:80",	0, AF_INET,  "127.0.0.1",	80 },
	{ "127.0.0.1:7777",	0, AF_INET,  "127.0.0.1",	7777 },
	{ "10.1.2.3:1",		0, AF_INET,  "10.1.2.3",	1 },
	{ "0.0.0.0:65535",	0, AF_INET,  "0.0.0.0",		65535 },
	{ "[::1]:8080",		0, AF_INET6, "::1",		8080 },
	{ "[::]:7777",		0, AF_INET6, "::",		7777 },
	{ "[2001:db8::1]:443",	0, AF_INET6, "2001:db8::1",	443 },
	{ "[::ffff:127.0.0.1]:9", 0, AF_INET6, "::ffff:127.0.0.1", 9 },
	{ ":7777",		0, AF_INET,  "0.0.0.0",		7777 },
	{ "*:7777",		0, AF_INET,  "0.0.0.0",		7777 },
	{ "127.0.0.1:80",	1, AF_INET,  "127.0.0.1",	80 },
	{ "[::1]:8080",		1, AF_INET6, "::1",		8080 },
	{ "*:1",		1, AF_INET,  "0.0.0.0",		1 },

	{ "127.0.0.1",		0, 0, NULL, 0 },	/* no port */
	{ "127.0.0.1:",		0, 0, NULL, 0 },	/* empty port */
	{ "127.0.0.1:0",	0, 0, NULL, 0 },
	{ "127.0.0.1:65536",	0, 0, NULL, 0 },
	{ "127.0.0.1:99999999999999999999", 0, 0, NULL, 0 },
	{ "127.0.0.1:-1",	0, 0, NULL, 0 },
	{ "127.0.0.1:abc",	0, 0, NULL, 0 },
	{ "127.0.0.1:80x",	0, 0, NULL, 0 },
	{ "127.0.0.1:0x50",	0, 0, NULL, 0 },
	{ ":0",			0, 0, NULL, 0 },
	{ ":",			0, 0, NULL, 0 },
	{ "*:",			0, 0, NULL, 0 },
	{ "[::1",		0, 0, NULL, 0 },	/* unclosed */
	{ "[::1:8080",		0, 0, NULL, 0 },
	{ "[::1]",		0, 0, NULL, 0 },
	{ "[::1]:",		0, 0, NULL, 0 },
	{ "[::1]8080",		0, 0, NULL, 0 },
	{ "[::1]:0",		0, 0, NULL, 0 },
	{ "[::1]:65536",	0, 0, NULL, 0 },
	{ "[zz::1]:80",		0, 0, NULL, 0 },
	{ "",			0, 0, NULL, 0 },
	{ "",			1, 0, NULL, 0 },
	{ "localhost:80",	0, 0, NULL, 0 },	/* names need resolve */
	{ "example:80",		0, 0, NULL, 0 },
	{ "256.1.1.1:80",	0, 0, NULL, 0 },
	{ "1.2.3.4.5:80",	0, 0, NULL, 0 },
	{ "localhost:0",	1, 0, NULL, 0 },
	{ "localhost:65536",	1, 0, NULL, 0 },
	{ "localhost",		1, 0, NULL, 0 },
};

static int
addr_port(const struct addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return -1;
}

static const char *
addr_host(const struct addr *a, char *buf, size_t len)
{
	const void *p;

	if (a->ss.ss_family == AF_INET)
		p = &((const struct sockaddr_in *)&a->ss)->sin_addr;
	else if (a->ss.ss_family == AF_INET6)
		p = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
	else
		return "?";
	if (inet_ntop(a->ss.ss_family, p, buf, (socklen_t)len) == NULL)
		return "?";
	return buf;
}

static void
test_parse(void)
{
	struct addr a;
	char err[256], host[INET6_ADDRSTRLEN];
	size_t i;
	int r;

	for (i = 0; i < NELEM(parse_cases); i++) {
		const char *spec = parse_cases[i].spec;
		int res = parse_cases[i].resolve;

		memset(&a, 0, sizeof(a));
		memset(err, 0, sizeof(err));
		r = net_parse_addr(spec, res, &a, err, sizeof(err));
		if (parse_cases[i].family == 0) {
			is_int(r, -1, "parse \"%s\" resolve=%d fails", spec, res);
			ok(err[0] != '\0' && strchr(err, '\n') == NULL,
			    "parse \"%s\" resolve=%d: message (%s)", spec, res, err);
			continue;
		}
		if (!is_int(r, 0, "parse \"%s\" resolve=%d", spec, res)) {
			diag("  error: %s", err);
			skip(4, "parse failed");
			continue;
		}
		is_int(a.ss.ss_family, parse_cases[i].family,
		    "parse \"%s\": family", spec);
		is_int(a.len, parse_cases[i].family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6),
		    "parse \"%s\": length", spec);
		is_str(addr_host(&a, host, sizeof(host)), parse_cases[i].host,
		    "parse \"%s\": host", spec);
		is_int(addr_port(&a), parse_cases[i].port, "parse \"%s\": port", spec);
	}
}

static void
test_parse_resolve(void)
{
	struct addr a;
	char err[256], host[INET6_ADDRSTRLEN];
	int r;

	r = net_parse_addr("localhost:80", 1, &a, err, sizeof(err));
	if (!is_int(r, 0, "parse \"localhost:80\" resolve=1")) {
		diag("  error: %s", err);
		skip(2, "no address");
		return;
	}
	addr_host(&a, host, sizeof(host));
	ok((a.ss.ss_family == AF_INET && strncmp(host, "127.", 4) == 0) ||
	    (a.ss.ss_family == AF_INET6 && strcmp(host, "::1") == 0),
	    "localhost resolves to a loopback address (%s)", host);
	is_int(addr_port(&a), 80, "localhost:80: port");
}

static void
test_parse_errlen(void)
{
	struct addr a;
	char err[16];

	/* the message is cut to errlen and terminated */
	memset(err, 'X', sizeof(err));
	is_int(net_parse_addr("[::1", 0, &a, err, 8), -1, "small err buffer: fails");
	ok(memchr(err, '\0', 8) != NULL, "small err buffer: terminated within errlen");
	ok(err[8] == 'X', "small err buffer: nothing written past errlen");
}

/* ---- net_addr_str ---------------------------------------------------------------- */

static const struct {
	const char	*spec;
	const char	*str;
} str_cases[] = {
	{ "127.0.0.1:80",		"127.0.0.1:80" },
	{ "0.0.0.0:7777",		"0.0.0.0:7777" },
	{ "*:7777",			"0.0.0.0:7777" },
	{ "255.255.255.255:65535",	"255.255.255.255:65535" },
	{ "[::1]:8080",			"[::1]:8080" },
	{ "[::]:1",			"[::]:1" },
	{ "[2001:db8::1]:443",		"[2001:db8::1]:443" },
	{ "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
};

static void
test_addr_str(void)
{
	struct addr a;
	struct sockaddr_un_like { sa_family_t family; char pad[32]; } other;
	char err[256], buf[NET_ADDRSTRLEN];
	const char *s;
	size_t i;

	for (i = 0; i < NELEM(str_cases); i++) {
		if (net_parse_addr(str_cases[i].spec, 0, &a, err, sizeof(err)) != 0) {
			ok(0, "net_addr_str: parse \"%s\": %s", str_cases[i].spec, err);
			continue;
		}
		memset(buf, 'X', sizeof(buf));
		s = net_addr_str((struct sockaddr *)&a.ss, buf, sizeof(buf));
		ok(s == buf, "net_addr_str(%s) returns buf", str_cases[i].spec);
		is_str(s, str_cases[i].str, "net_addr_str(%s)", str_cases[i].spec);
	}

	memset(&other, 0, sizeof(other));
	other.family = AF_UNIX;
	memset(buf, 'X', sizeof(buf));
	s = net_addr_str((struct sockaddr *)&other, buf, sizeof(buf));
	is_str(s, "?", "net_addr_str of an AF_UNIX address is \"?\"");
}

/* ---- net_addr_equal --------------------------------------------------------------- */

static const struct {
	const char	*a, *b;
	int		 equal;
} equal_cases[] = {
	{ "127.0.0.1:80",	"127.0.0.1:80",		1 },
	{ ":7777",		"0.0.0.0:7777",		1 },
	{ "*:7777",		":7777",		1 },
	{ "[::1]:8080",		"[::1]:8080",		1 },
	{ "[::1]:8080",		"[0:0:0:0:0:0:0:1]:8080", 1 },
	{ "127.0.0.1:80",	"127.0.0.1:81",		0 },
	{ "127.0.0.1:80",	"127.0.0.2:80",		0 },
	{ "127.0.0.1:80",	"[::1]:80",		0 },
	{ "0.0.0.0:80",		"[::]:80",		0 },
	{ "[::1]:8080",		"[::2]:8080",		0 },
	{ "[::1]:8080",		"[::1]:8081",		0 },
	{ "[::ffff:127.0.0.1]:80", "127.0.0.1:80",	0 },
};

static void
test_addr_equal(void)
{
	struct addr a, b;
	char err[256];
	size_t i;

	for (i = 0; i < NELEM(equal_cases); i++) {
		/* garbage around the parsed bytes must not matter */
		memset(&a, 0x11, sizeof(a));
		memset(&b, 0x77, sizeof(b));
		if (net_parse_addr(equal_cases[i].a, 0, &a, err, sizeof(err)) != 0 ||
		    net_parse_addr(equal_cases[i].b, 0, &b, err, sizeof(err)) != 0) {
			ok(0, "net_addr_equal: parse %s / %s: %s", equal_cases[i].a,
			    equal_cases[i].b, err);
			continue;
		}
		is_int(net_addr_equal(&a, &b), equal_cases[i].equal,
		    "net_addr_equal(%s, %s)", equal_cases[i].a, equal_cases[i].b);
		is_int(net_addr_equal(&b, &a), equal_cases[i].equal,
		    "net_addr_equal(%s, %s)", equal_cases[i].b, equal_cases[i].a);
	}
}

/* ---- net_listen ---------------------------------------------------------------------- */

static void
check_listener(int fd, const char *what, int family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fl, fdfl, v = 0;
	socklen_t vlen = sizeof(v);
	char buf[NET_ADDRSTRLEN];

	fl = fcntl(fd, F_GETFL);
	ok(fl != -1 && (fl & O_NONBLOCK), "%s: O_NONBLOCK", what);
	fdfl = fcntl(fd, F_GETFD);
	ok(fdfl != -1 && (fdfl & FD_CLOEXEC), "%s: FD_CLOEXEC", what);
	ok(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) == 0 && v == 1,
	    "%s: listening (SO_ACCEPTCONN)", what);
	v = 0;
	vlen = sizeof(v);
	ok(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen) == 0 && v == SOCK_STREAM,
	    "%s: SOCK_STREAM", what);
	v = 0;
	vlen = sizeof(v);
	ok(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &vlen) == 0 && v != 0,
	    "%s: SO_REUSEADDR", what);
	ok(getsockname(fd, (struct sockaddr *)&ss, &len) == 0, "%s: getsockname", what);
	is_int(ss.ss_family, family, "%s: family", what);
	net_addr_str((struct sockaddr *)&ss, buf, sizeof(buf));
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		ok(sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && sin->sin_port != 0,
		    "%s: bound to 127.0.0.1 and a port (%s)", what, buf);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		ok(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) && sin6->sin6_port != 0,
		    "%s: bound to ::1 and a port (%s)", what, buf);
		v = 0;
		vlen = sizeof(v);
		ok(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vlen) == 0 && v == 1,
		    "%s: IPV6_V6ONLY", what);
	}
}

/* Connect to the listener and accept the connection. */
static void
check_accepts(int fd, const char *what)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int c, s = -1, i;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    (c = socket(ss.ss_family, SOCK_STREAM, 0)) == -1) {
		ok(0, "%s: client socket: %s", what, strerror(errno));
		return;
	}
	if (!ok(connect(c, (struct sockaddr *)&ss, len) == 0, "%s: connect", what)) {
		close(c);
		return;
	}
	/* non-blocking accept: the handshake completed with connect() */
	for (i = 0; i < 100 && s == -1; i++) {
		if ((s = accept(fd, NULL, NULL)) == -1 && errno == EAGAIN)
			usleep(10000);
	}
	ok(s >= 0, "%s: accept", what);
	if (s >= 0)
		close(s);
	close(c);
	errno = 0;
	s = accept(fd, NULL, NULL);
	ok(s == -1 && errno == EAGAIN,
	    "%s: accept with nothing pending does not block (EAGAIN)", what);
	if (s >= 0)
		close(s);
}

static void
test_listen(void)
{
	struct addr a, bound;
	int fd, fd2, saved, s6;

	/* port 0 is refused by net_parse_addr(), so build the address by hand */
	memset(&a, 0, sizeof(a));
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = 0;
		a.len = sizeof(*sin);
	}
	fd = net_listen(&a, 16, 0);
	if (!ok(fd >= 0, "net_listen 127.0.0.1:0 (%s)", fd < 0 ? strerror(errno) : "ok")) {
		skip(13, "no listener");
	} else {
		check_listener(fd, "127.0.0.1:0", AF_INET);
		check_accepts(fd, "127.0.0.1:0");

		/* the same port again while it listens: EADDRINUSE */
		memset(&bound, 0, sizeof(bound));
		bound.len = sizeof(bound.ss);
		getsockname(fd, (struct sockaddr *)&bound.ss, &bound.len);
		errno = 0;
		fd2 = net_listen(&bound, 16, 0);
		saved = errno;
		is_int(fd2, -1, "net_listen on a port in use fails");
		is_int(saved, EADDRINUSE, "... with errno EADDRINUSE");
		if (fd2 >= 0)
			close(fd2);
		close(fd);
	}

	/* IPv6 loopback, when the host has it */
	s6 = socket(AF_INET6, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		a.len = sizeof(*sin6);
	}
	if (s6 == -1 || bind(s6, (struct sockaddr *)&a.ss, a.len) == -1) {
		skip(13, "no IPv6 loopback here");
	} else {
		fd = net_listen(&a, 16, 0);
		if (!ok(fd >= 0, "net_listen [::1]:0 (%s)",
		    fd < 0 ? strerror(errno) : "ok")) {
			skip(12, "no listener");
		} else {
			check_listener(fd, "[::1]:0", AF_INET6);
			check_accepts(fd, "[::1]:0");
			close(fd);
		}
	}
	if (s6 != -1)
		close(s6);

	/* errors come back as -1 with errno, the fd not leaked */
	memset(&a, 0, sizeof(a));
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

		sin->sin_family = AF_INET;
		inet_pton(AF_INET, "192.0.2.1", &sin->sin_addr);	/* TEST-NET-1 */
		sin->sin_port = 0;
		a.len = sizeof(*sin);
	}
	fd2 = fcntl(0, F_DUPFD, 0);		/* the lowest free fd */
	if (fd2 >= 0)
		close(fd2);
	errno = 0;
	fd = net_listen(&a, 16, 0);
	saved = errno;
	is_int(fd, -1, "net_listen on an address not on this host fails");
	is_int(saved, EADDRNOTAVAIL, "... with errno EADDRNOTAVAIL");
	fd = fcntl(0, F_DUPFD, 0);
	is_int(fd, fd2, "... and does not leak its socket");
	if (fd >= 0)
		close(fd);
}

/* ---- net_parse_ip and net_bind_source -------------------------------------------- */

static const struct {
	const char	*s;
	int		 family;	/* 0: must fail */
	const char	*host;		/* as inet_ntop writes it */
} ip_cases[] = {
	{ "127.0.0.2",		AF_INET,  "127.0.0.2" },
	{ "0.0.0.0",		AF_INET,  "0.0.0.0" },
	{ "255.255.255.255",	AF_INET,  "255.255.255.255" },
	{ "::1",		AF_INET6, "::1" },
	{ "2001:db8::7",	AF_INET6, "2001:db8::7" },
	{ "::ffff:10.0.0.1",	AF_INET6, "::ffff:10.0.0.1" },
	{ "127.1",		0, NULL },	/* inet_aton's short forms: no */
	{ "0x7f.0.0.1",		0, NULL },
	{ "127.0.0.256",	0, NULL },
	{ "127.0.0.1:80",	0, NULL },
	{ "[::1]",		0, NULL },
	{ "localhost",		0, NULL },
	{ "zz::1",		0, NULL },
	{ "",			0, NULL },
};

static void
test_parse_ip(void)
{
	struct addr a;
	char buf[64];
	size_t i;

	for (i = 0; i < NELEM(ip_cases); i++) {
		int rc = net_parse_ip(ip_cases[i].s, &a);

		if (ip_cases[i].family == 0) {
			is_int(rc, -1, "net_parse_ip(\"%s\") fails", ip_cases[i].s);
			continue;
		}
		if (!is_int(rc, 0, "net_parse_ip(\"%s\")", ip_cases[i].s))
			continue;
		ok(a.ss.ss_family == ip_cases[i].family && addr_port(&a) == 0 &&
		    strcmp(addr_host(&a, buf, sizeof(buf)), ip_cases[i].host) == 0,
		    "net_parse_ip(\"%s\"): %s, port 0", ip_cases[i].s, buf);
	}
}

/* A connection from a socket bound with net_bind_source arrives from there. */
static void
test_bind_source(void)
{
	struct sockaddr_storage ss, peer;
	socklen_t len = sizeof(ss), plen = sizeof(peer);
	struct addr any, src;
	int lfd, c = -1, s = -1, i;
	char buf[NET_ADDRSTRLEN];

	memset(&any, 0, sizeof(any));
	((struct sockaddr_in *)&any.ss)->sin_family = AF_INET;
	((struct sockaddr_in *)&any.ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	any.len = sizeof(struct sockaddr_in);
	if ((lfd = net_listen(&any, 16, 0)) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &len) == -1 ||
	    net_parse_ip("127.0.0.3", &src) == -1 ||
	    (c = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		bail_out("test_bind_source: set-up: %s", strerror(errno));
	ok(net_bind_source(c, &src) == 0, "net_bind_source 127.0.0.3");
	len = sizeof(peer);
	ok(getsockname(c, (struct sockaddr *)&peer, &len) == 0 &&
	    ((struct sockaddr_in *)&peer)->sin_port == 0,
	    "no port chosen before connect() (IP_BIND_ADDRESS_NO_PORT)");
	ok(connect(c, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) == 0,
	    "connect");
	for (i = 0; i < 100 && s == -1; i++)
		if ((s = accept(lfd, (struct sockaddr *)&peer, &plen)) == -1)
			usleep(10000);
	net_addr_str((struct sockaddr *)&peer, buf, sizeof(buf));
	ok(s >= 0 && ((struct sockaddr_in *)&peer)->sin_addr.s_addr ==
	    htonl(0x7f000003) && ((struct sockaddr_in *)&peer)->sin_port != 0,
	    "accepted from 127.0.0.3 and a port (%s)", buf);
	if (s >= 0)
		close(s);
	close(c);

	/* an address not on this host: -1 with errno */
	net_parse_ip("192.0.2.1", &src);		/* TEST-NET-1 */
	c = socket(AF_INET, SOCK_STREAM, 0);
	errno = 0;
	ok(net_bind_source(c, &src) == -1 && errno == EADDRNOTAVAIL,
	    "net_bind_source 192.0.2.1: EADDRNOTAVAIL");
	close(c);
	close(lfd);
}

/* ---- net_accept_starved ------------------------------------------------------------------ */

static void
test_accept_starved(void)
{
	static const int starved[] = { EMFILE, ENFILE, ENOBUFS, ENOMEM };
	static const int other[] = { 0, EAGAIN, EINTR, ECONNABORTED, EINVAL, EBADF, EPROTO };

	for (size_t i = 0; i < sizeof(starved) / sizeof(starved[0]); i++)
		ok(net_accept_starved(starved[i]), "%s: pause accepting", strerror(starved[i]));
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		ok(!net_accept_starved(other[i]), "%s: not starved", strerror(other[i]));
}

/* Poll net_listen_queued(fd) for up to a second until it says want. */
static int
queued_becomes(int fd, int want)
{
	int got = net_listen_queued(fd);

	for (int i = 0; i < 100 && got != want; i++) {
		usleep(10000);
		got = net_listen_queued(fd);
	}
	return got;
}

static void
test_listen_queued(void)
{
	struct addr a;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, c[3], s, n = 0;

	memset(&a, 0, sizeof(a));
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.len = sizeof(*sin);
	}
	if ((fd = net_listen(&a, 16, 0)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		ok(0, "listener for net_listen_queued: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	is_int(net_listen_queued(fd), 0, "net_listen_queued: nothing waiting");
	for (n = 0; n < 3; n++)
		if ((c[n] = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
		    connect(c[n], (struct sockaddr *)&ss, len) == -1) {
			if (c[n] != -1)
				close(c[n]);
			break;
		}
	if (ok(n == 3, "three connections made (%s)", n == 3 ? "ok" : strerror(errno))) {
		is_int(queued_becomes(fd, 3), 3, "net_listen_queued: three waiting");
		s = accept(fd, NULL, NULL);
		ok(s >= 0, "accept one");
		is_int(net_listen_queued(fd), 2, "net_listen_queued: two left");
		if (s >= 0)
			close(s);
		is_int(net_listen_queued(c[0]), -1, "net_listen_queued on a connected socket: -1");
	} else
		skip(4, "no connections");
	while (n-- > 0)
		close(c[n]);
	is_int(net_listen_queued(-1), -1, "net_listen_queued on a bad descriptor: -1");
	close(fd);
}

/*
 * TCP_NODELAY: set on a listening socket (net_listen's NET_NODELAY, or
 * net_nodelay() later), each connection accepted afterwards has it; set
 * off, they do not.
 */
static int
accepted_nodelay(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int c, s, on = -1;
	socklen_t olen = sizeof(on);

	if (getsockname(lfd, (struct sockaddr *)&ss, &len) == -1 ||
	    (c = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	if (connect(c, (struct sockaddr *)&ss, len) == -1) {
		close(c);
		return -1;
	}
	s = accept(lfd, NULL, NULL);
	if (s != -1 && getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, &olen) == -1)
		on = -1;
	if (s != -1)
		close(s);
	close(c);
	return on;
}

static void
test_nodelay(void)
{
	struct sockaddr_in *sin;
	struct addr a;
	int fd, on = -1;
	socklen_t olen = sizeof(on);

	memset(&a, 0, sizeof(a));
	sin = (struct sockaddr_in *)&a.ss;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.len = sizeof(*sin);

	if ((fd = net_listen(&a, 16, NET_NODELAY)) == -1)
		bail_out("net_listen: %s", strerror(errno));
	ok(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &olen) == 0 && on != 0,
	    "NET_NODELAY: the listening socket has TCP_NODELAY");
	ok(accepted_nodelay(fd) > 0, "... and a connection accepted from it");
	is_int(net_nodelay(fd, 0), 0, "net_nodelay(fd, 0)");
	is_int(accepted_nodelay(fd), 0, "then a connection accepted has it off");
	is_int(net_nodelay(fd, 1), 0, "net_nodelay(fd, 1)");
	ok(accepted_nodelay(fd) > 0, "then on again");
	close(fd);

	if ((fd = net_listen(&a, 16, 0)) == -1)
		bail_out("net_listen: %s", strerror(errno));
	is_int(accepted_nodelay(fd), 0, "without NET_NODELAY: off, the kernel's default");
	close(fd);
	is_int(net_nodelay(fd, 1), -1, "net_nodelay on a closed descriptor fails");
}

int
main(void)
{
	test_parse();
	test_parse_resolve();
	test_parse_errlen();
	test_addr_str();
	test_addr_equal();
	test_listen();
	test_parse_ip();
	test_bind_source();
	test_accept_starved();
	test_listen_queued();
	test_nodelay();
	return done_testing();
}
