/*
 * refecho.c: a bare reference echo server for the benchmarks.
 *
 *   refecho -l HOST:PORT [-w N] [-b SIZE]
 *
 * N worker processes (default 1), each with its own SO_REUSEPORT listening
 * socket and one level-triggered epoll loop, and nothing else: no
 * configuration, no timeouts, no logging.  A worker reads up to SIZE bytes
 * (default 64k) into one buffer it shares among its connections and writes
 * them straight back; only what the kernel did not take is kept, in a
 * per-connection buffer, while the connection is not read (that is the
 * whole of its backpressure).  An idle connection costs a 32-byte struct.
 *
 * It is the ceiling for echo mode and the backend of the proxy benchmarks.
 * The parent prints "refecho: ready, N workers" on stderr once every worker
 * listens, forwards SIGTERM/SIGINT to them and exits when they have; a
 * worker exits when the parent dies.  Exit status: 0, 1 error, 2 usage.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL_NAME "refecho"
#include "tool.h"

#define MAX_WORKERS	256
#define MAX_EVENTS	512

struct conn {
	int		 fd;
	uint32_t	 len;		/* bytes in pend not yet written */
	uint32_t	 off;
	uint8_t		*pend;		/* owned; NULL when nothing is pending */
};

static struct sockaddr_storage listen_addr;
static socklen_t listen_len;
static size_t	 bufsize = 64 * 1024;

static void
usage(void)
{
	fprintf(stderr, "usage: refecho -l HOST:PORT [-w N] [-b SIZE]\n");
	exit(2);
}

static long
parse_num(const char *s, long min, long max)
{
	char *end;
	long v, mul = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	if (errno || end == s || *end != '\0' || v < min || v > max / mul)
		usage();
	return v * mul;
}

static void
parse_addr(const char *s)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints, *res;
	size_t hl;

	if (colon == NULL)
		usage();
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		usage();
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		die("cannot resolve %s", s);
	memcpy(&listen_addr, res->ai_addr, res->ai_addrlen);
	listen_len = res->ai_addrlen;
	freeaddrinfo(res);
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	free(c->pend);
	free(c);
}

static void
set_events(int ep, struct conn *c, uint32_t ev)
{
	struct epoll_event e;

	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

/* Write the pending bytes; 1 when the connection was closed. */
static int
conn_flush(int ep, struct conn *c)
{
	while (c->len > 0) {
		ssize_t w = send(c->fd, c->pend + c->off, c->len, MSG_NOSIGNAL);

		if (w == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			conn_close(c);
			return 1;
		}
		c->off += (uint32_t)w;
		c->len -= (uint32_t)w;
	}
	free(c->pend);
	c->pend = NULL;
	c->off = 0;
	set_events(ep, c, EPOLLIN);
	return 0;
}

static void
conn_read(int ep, struct conn *c, uint8_t *buf)
{
	ssize_t r, w;

	do {
		r = recv(c->fd, buf, bufsize, 0);
	} while (r == -1 && errno == EINTR);
	if (r == -1 && errno == EAGAIN)
		return;
	if (r <= 0) {
		conn_close(c);
		return;
	}
	do {
		w = send(c->fd, buf, (size_t)r, MSG_NOSIGNAL);
	} while (w == -1 && errno == EINTR);
	if (w == -1 && errno != EAGAIN) {
		conn_close(c);
		return;
	}
	if (w == -1)
		w = 0;
	if (w < r) {
		/* keep the rest, stop reading until it is written */
		if ((c->pend = malloc((size_t)(r - w))) == NULL)
			die("out of memory");
		memcpy(c->pend, buf + w, (size_t)(r - w));
		c->len = (uint32_t)(r - w);
		c->off = 0;
		set_events(ep, c, EPOLLOUT);
	}
}

static void
accept_some(int ep, int lfd)
{
	int i;

	for (i = 0; i < 64; i++) {
		struct epoll_event e;
		struct conn *c;
		int fd, one = 1;

		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				fprintf(stderr, "refecho: accept: %s\n", strerror(errno));
			return;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((c = calloc(1, sizeof(*c))) == NULL)
			die("out of memory");
		c->fd = fd;
		memset(&e, 0, sizeof(e));
		e.events = EPOLLIN;
		e.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
}

static int
worker_listen(void)
{
	int fd, one = 1;

	fd = socket(listen_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&listen_addr, listen_len) == -1 ||
	    listen(fd, 4096) == -1)
		die("listen: %s", strerror(errno));
	return fd;
}

static void
worker_run(int lfd)
{
	static struct epoll_event evs[MAX_EVENTS];
	struct epoll_event e;
	uint8_t *buf;
	int ep, n, i;

	if ((buf = malloc(bufsize)) == NULL)
		die("out of memory");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN;
	e.data.ptr = NULL;		/* the listening socket */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e) == -1)
		die("epoll_ctl: %s", strerror(errno));
	while (!stop_signal) {
		n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c == NULL)
				accept_some(ep, lfd);
			else if (c->pend != NULL)
				(void)conn_flush(ep, c);
			else
				conn_read(ep, c, buf);
		}
	}
	exit(0);
}

int
main(int argc, char **argv)
{
	pid_t pids[MAX_WORKERS];
	struct sigaction sa;
	int ch, i, nworkers = 1, left, pfd[2], forwarded = 0;
	const char *addr = NULL;
	char c;

	while ((ch = getopt(argc, argv, "l:w:b:")) != -1) {
		switch (ch) {
		case 'l':
			addr = optarg;
			break;
		case 'w':
			nworkers = (int)parse_num(optarg, 1, MAX_WORKERS);
			break;
		case 'b':
			bufsize = (size_t)parse_num(optarg, 1024, 16 * 1024 * 1024);
			break;
		default:
			usage();
		}
	}
	if (addr == NULL || optind != argc)
		usage();
	parse_addr(addr);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (pipe(pfd) == -1)
		die("pipe: %s", strerror(errno));

	for (i = 0; i < nworkers; i++) {
		pid_t parent = getpid();

		if ((pids[i] = fork()) == -1)
			die("fork: %s", strerror(errno));
		if (pids[i] == 0) {
			int lfd;

			(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				exit(0);
			close(pfd[0]);
			lfd = worker_listen();
			if (write(pfd[1], "r", 1) != 1)
				exit(1);
			close(pfd[1]);
			worker_run(lfd);
		}
	}
	close(pfd[1]);
	for (i = 0; i < nworkers; i++) {
		ssize_t r = read(pfd[0], &c, 1);

		if (r == -1 && errno == EINTR && !stop_signal) {
			i--;
			continue;
		}
		if (r != 1)
			break;
	}
	close(pfd[0]);
	if (i == nworkers) {
		fprintf(stderr, "refecho: ready, %d workers\n", nworkers);
		fflush(stderr);
	}

	for (left = nworkers; left > 0; ) {
		int st;
		pid_t p;

		if (stop_signal && !forwarded) {
			forwarded = 1;
			for (i = 0; i < nworkers; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
		}
		p = wait(&st);
		if (p == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < nworkers; i++)
			if (pids[i] == p)
				pids[i] = 0;
		left--;
		if (!stop_signal) {
			/* a worker died on its own: stop the rest too */
			stop_signal = SIGTERM;
		}
	}
	return 0;
}
