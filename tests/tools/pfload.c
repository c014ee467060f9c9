/*
 * pfload.c: a load client for preforkd's integration tests and benchmarks.
 *
 *   pfload churn -a HOST:PORT [-c CONC] [-d SECS] [-s SIZE] [-n N] [-t MS] [-e close|shut|rst]
 *       CONC connections at a time; each one connects, sends SIZE bytes,
 *       reads the SIZE bytes echoed and checks them, then closes; a new one
 *       takes its place until SECS have passed.  Connections in flight at the
 *       end are finished (each within its own timeout).
 *   pfload hold -a HOST:PORT [-c N] [-d SECS] [-s SIZE] [-n N] [-t MS]
 *       opens N connections, checks one exchange of SIZE bytes on each, says
 *       "pfload: holding K connections" on stderr once every one is settled,
 *       and holds them until SIGTERM/SIGINT or SECS have passed.
 *   pfload flood -a HOST:PORT [-c CONC] [-d SECS] [-n N] [-t MS]
 *       opens connections as fast as it can, CONC at a time, each closed as
 *       soon as it is established (no data).
 *   pfload pingpong -a HOST:PORT [-c CONC] [-d SECS] [-s SIZE] [-n N] [-t MS] [-P PROCS]
 *       opens CONC connections; once every one is connected, each sends a
 *       SIZE-byte message, waits for its echo (checked), and sends the next,
 *       for SECS.  Reports messages/s ("rate", "messages" = exchanges
 *       completed within the SECS) and the latency of each exchange (first
 *       byte sent to last byte back) as percentiles in microseconds, from a
 *       log-linear histogram (buckets about 3% wide).
 *   pfload bulk -a HOST:PORT [-c CONC] [-d SECS] [-s SIZE] [-n N] [-t MS] [-P PROCS]
 *       opens CONC connections; once every one is connected, each streams
 *       SIZE-byte chunks (default 64k) and reads the echo back at the same
 *       time (at most max(2 SIZE, 1 MiB) in flight per connection), for SECS.
 *       "rate" and "mbps" are echoed, checked bytes received within the SECS,
 *       in MB/s (10^6 bytes; each byte crossed the connection both ways).
 *
 * -P PROCS forks PROCS client processes (1..64, default 1 = no fork), shares
 * the CONC connections among them and prints their summed counts (rates
 * summed, "elapsed" the longest).  pingpong and bulk start measuring in
 * every process at once, after all of them connected.  With hold, the
 * "holding K connections" line comes once every process has settled.
 * Without -P (or with -P 1) churn, hold and flood behave and print exactly
 * as before; pingpong, bulk and -P add fields to the JSON line ("procs",
 * "conns", "size", "messages", "mbps", "latency_us").
 *
 * -n N binds each socket to 127.0.0.2 .. 127.0.0.N in turn before connect()
 * (IP_BIND_ADDRESS_NO_PORT, so the port is still picked at connect time and
 * TIME_WAIT ports are reused as they would be without the bind).
 *
 * It prints one JSON line of counts on stdout.  It is always bounded in
 * time: every connection has a deadline (-t, default 10 s) and every mode
 * stops at -d (default 10 s) plus at most one connection timeout.  Exit
 * status: 0 (whatever the counts say), 1 internal error, 2 usage.
 *
 * The payload of a connection is a fixed pseudo-random pattern read from an
 * offset that depends on the connection, so an echo from the wrong
 * connection or the wrong offset is a mismatch.
 */
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOOL_NAME "pfload"
#include "tool.h"

#define PAT_LEN		65521		/* prime, so offsets do not line up with chunks */
#define IO_CHUNK	(256 * 1024)
#define MAX_ERRNO	160
#define MAX_PROCS	64
#define BULK_WINDOW	(1024 * 1024)	/* bytes in flight per bulk connection, at least */

/* Latency histogram: exact below 64 ns, then 32 buckets per power of two. */
#define LAT_SUB		32
#define LAT_BUCKETS	(64 + 40 * LAT_SUB)	/* up to 2^45 ns, about 9.7 hours */

enum mode { M_CHURN, M_HOLD, M_FLOOD, M_PINGPONG, M_BULK };
enum end_mode { END_CLOSE, END_SHUT, END_RST };
enum state { S_FREE, S_CONNECTING, S_XCHG, S_WAITEOF, S_HELD,
	S_IDLE,		/* pingpong/bulk: connected, waiting for the start */
	S_PP,		/* pingpong: a message in flight */
	S_BULK,		/* bulk: streaming */
	S_FLUSH };	/* bulk: stopped sending, reading the rest of the echo */
enum phase { P_CONNECT, P_WAIT, P_RUN, P_DRAIN };

struct slot {
	int		 fd;
	int		 state;		/* enum state */
	uint32_t	 seed;		/* pattern offset of this connection */
	size_t		 sent;
	size_t		 rcvd;
	int		 shut;		/* SHUT_WR done */
	uint32_t	 events;	/* registered with epoll */
	double		 deadline;	/* monotonic seconds */
	double		 msg_start;	/* pingpong: when this message was sent */
	size_t		 msg_end;	/* pingpong: stream offset where it ends */
};

struct counts {
	unsigned long long connects;		/* established */
	unsigned long long failed_connects;	/* connect() failed or timed out */
	unsigned long long resets;		/* ECONNRESET/EPIPE after connect */
	unsigned long long early_eofs;		/* EOF before every byte came back */
	unsigned long long timeouts;		/* exchange not done in time */
	unsigned long long mismatches;		/* wrong bytes, or more than sent */
	unsigned long long completed;		/* full exchanges */
	unsigned long long peer_closed;		/* hold: closed by the server while held */
	unsigned long long bytes;		/* echoed bytes received and verified */
	unsigned long long err_by_errno[MAX_ERRNO];
};

/*
 * What one client process of -P reports to the parent, in shared memory.
 * The flags are written with __atomic stores while the child runs.
 */
struct result {
	struct counts	 cnt;
	unsigned long long messages;	/* pingpong: exchanges done within -d */
	unsigned long long win_bytes;	/* pingpong/bulk: bytes echoed within -d */
	unsigned long long lat_sum_ns;
	uint64_t	 lat_max_ns;
	double		 elapsed;
	double		 rate;
	int		 held;
	int		 active;	/* hold: connections when settled */
	int		 settled;	/* hold: every connection settled */
	int		 ready;		/* pingpong/bulk: connected, waiting for go */
	int		 done;
	char		 first_error[160];
	uint64_t	 hist[LAT_BUCKETS];
};

struct shared {
	int		 go;		/* pingpong/bulk: start measuring */
	struct result	 res[MAX_PROCS];
};

static struct {
	int		 mode;
	int		 end;
	int		 conc;
	double		 duration;
	size_t		 size;
	int		 nsrc;
	double		 timeout;
	struct sockaddr_storage dst;
	socklen_t	 dstlen;
	const char	*addr_text;
	int		 procs;		/* -P */
} opt;

static uint8_t	 pat[PAT_LEN + IO_CHUNK];	/* the pattern, then its start again */
static uint8_t	 rbuf[IO_CHUNK];
static struct counts cnt;
static struct slot *slots;
static int	 epfd = -1;
static int	 active;			/* slots not free */
static uint32_t	 next_seed = 1;
static unsigned	 next_src;
static char	 first_error[160];

/* pingpong and bulk */
static uint64_t	 hist[LAT_BUCKETS];
static unsigned long long messages, win_bytes, lat_sum_ns;
static uint64_t	 lat_max_ns;
static int	 phase;			/* enum phase */
static struct shared *shm;		/* -P > 1 */
static struct result *me;		/* this child's slot in shm, or NULL */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: pfload churn|hold|flood|pingpong|bulk -a HOST:PORT [-c N] [-d SECS]\n"
	    "              [-s SIZE] [-n N] [-t MS] [-e close|shut|rst] [-P PROCS]\n");
	exit(2);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
note_error(const char *what, int err)
{
	if (err > 0 && err < MAX_ERRNO)
		cnt.err_by_errno[err]++;
	if (first_error[0] != '\0')
		return;
	if (err)
		snprintf(first_error, sizeof(first_error), "%s: %s", what, strerror(err));
	else
		snprintf(first_error, sizeof(first_error), "%s", what);
}

static long long
parse_num(const char *s, long long min, long long max, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "pfload: bad %s: %s\n", what, s);
		usage();
	}
	return v;
}

static double
parse_secs(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= 0 && v <= 86400)) {
		fprintf(stderr, "pfload: bad %s: %s\n", what, s);
		usage();
	}
	return v;
}

static size_t
parse_size(const char *s)
{
	char *end;
	unsigned long long v, mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		goto bad;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	if (*end != '\0' || v > (1ULL << 40) / mul)
		goto bad;
	return (size_t)(v * mul);
bad:
	fprintf(stderr, "pfload: bad size: %s\n", s);
	usage();
	return 0;
}

static void
parse_addr(const char *s)
{
	char host[256];
	const char *port, *h;
	size_t hl;
	struct addrinfo hints, *res;
	int rc;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			goto bad;
		h = s + 1;
		hl = (size_t)(rb - h);
		port = rb + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon == NULL)
			goto bad;
		h = s;
		hl = (size_t)(colon - s);
		port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host) || *port == '\0')
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "pfload: %s: %s\n", s, gai_strerror(rc));
		usage();
	}
	memcpy(&opt.dst, res->ai_addr, res->ai_addrlen);
	opt.dstlen = res->ai_addrlen;
	freeaddrinfo(res);
	return;
bad:
	fprintf(stderr, "pfload: bad address (HOST:PORT): %s\n", s);
	usage();
}

static void
pattern_init(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t i;

	for (i = 0; i < PAT_LEN; i++) {
		/* xorshift64* */
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		pat[i] = (uint8_t)((x * 0x2545f4914f6cdd1dULL) >> 56);
	}
	for (i = PAT_LEN; i < sizeof(pat); i++)
		pat[i] = pat[i - PAT_LEN];
}

/* The pattern bytes of connection seed from offset off on, at most n. */
static const uint8_t *
pattern_at(uint32_t seed, size_t off, size_t *n)
{
	size_t start = (size_t)(((uint64_t)seed * 7919 + off) % PAT_LEN);

	if (*n > IO_CHUNK)
		*n = IO_CHUNK;
	return pat + start;
}

static void
slot_events(struct slot *sl, uint32_t ev)
{
	struct epoll_event e;

	if (sl->events == ev)
		return;
	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.ptr = sl;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, sl->fd, &e) == -1)
		die("epoll_ctl: %s", strerror(errno));
	sl->events = ev;
}

static void
slot_close(struct slot *sl, int rst)
{
	if (rst) {
		struct linger lg = { 1, 0 };

		(void)setsockopt(sl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(sl->fd);		/* also removes it from the epoll set */
	sl->fd = -1;
	sl->state = S_FREE;
	sl->events = 0;
	active--;
}

/* sl is past its deadline: count a connect or an exchange that timed out, then close. */
static void
slot_expire(struct slot *sl)
{
	if (sl->state == S_CONNECTING) {
		cnt.failed_connects++;
		note_error("connect", ETIMEDOUT);
	} else {
		cnt.timeouts++;
		note_error("exchange", ETIMEDOUT);
	}
	slot_close(sl, 0);
}

/* Start a connection in a free slot.  0, or -1 when it failed at once. */
static int
slot_connect(struct slot *sl, double t)
{
	struct epoll_event e;
	int fd, one = 1;

	fd = socket(opt.dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			cnt.failed_connects++;
			note_error("socket", errno);
			return -1;
		}
		die("socket: %s", strerror(errno));
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (opt.nsrc >= 2 && opt.dst.ss_family == AF_INET) {
		struct sockaddr_in src;

		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(0x7f000002u + next_src++ % (unsigned)(opt.nsrc - 1));
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) == -1)
			die("bind %s: %s", inet_ntoa(src.sin_addr), strerror(errno));
	}
	sl->fd = fd;
	sl->seed = next_seed++;
	sl->sent = sl->rcvd = 0;
	sl->shut = 0;
	sl->deadline = t + opt.timeout;
	active++;
	memset(&e, 0, sizeof(e));
	e.data.ptr = sl;
	if (connect(fd, (struct sockaddr *)&opt.dst, opt.dstlen) == -1) {
		if (errno != EINPROGRESS) {
			cnt.failed_connects++;
			note_error("connect", errno);
			close(fd);
			sl->fd = -1;
			active--;
			return -1;
		}
		sl->state = S_CONNECTING;
		e.events = EPOLLOUT;
	} else {
		sl->state = S_CONNECTING;	/* settled on the first EPOLLOUT */
		e.events = EPOLLOUT;
	}
	sl->events = e.events;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) == -1)
		die("epoll_ctl: %s", strerror(errno));
	return 0;
}

/*
 * A connection to a port in the ephemeral range that nobody listens on can
 * connect to itself (simultaneous open) and "echo" its own bytes.
 */
static int
self_connected(int fd)
{
	struct sockaddr_storage a, b;
	socklen_t al = sizeof(a), bl = sizeof(b);

	if (getsockname(fd, (struct sockaddr *)&a, &al) == -1 ||
	    getpeername(fd, (struct sockaddr *)&b, &bl) == -1)
		return 0;
	return al == bl && memcmp(&a, &b, al) == 0;
}

/* An established connection starts its exchange. */
static void
slot_established(struct slot *sl)
{
	cnt.connects++;
	if (opt.mode == M_PINGPONG || opt.mode == M_BULK) {
		sl->state = S_IDLE;
		slot_events(sl, EPOLLIN | EPOLLRDHUP);
		return;
	}
	if (opt.mode == M_FLOOD) {
		cnt.completed++;
		slot_close(sl, opt.end == END_RST);
		return;
	}
	sl->state = S_XCHG;
	if (opt.size == 0) {
		sl->state = opt.mode == M_HOLD ? S_HELD : S_XCHG;
		if (opt.mode == M_HOLD) {
			cnt.completed++;
			slot_events(sl, EPOLLIN | EPOLLRDHUP);
		} else {
			cnt.completed++;
			slot_close(sl, opt.end == END_RST);
		}
		return;
	}
	slot_events(sl, EPOLLIN | EPOLLOUT);
}

static void
slot_fail(struct slot *sl, int err, const char *what)
{
	if (err == ECONNRESET || err == EPIPE) {
		if (sl->state == S_HELD)
			cnt.peer_closed++;
		else
			cnt.resets++;
	} else if (err == ETIMEDOUT) {
		cnt.timeouts++;
	} else {
		cnt.resets++;
	}
	note_error(what, err);
	slot_close(sl, 0);
}

/* The exchange of a connection is over: keep it (hold) or end it. */
static void
slot_done(struct slot *sl)
{
	cnt.completed++;
	if (opt.mode == M_HOLD) {
		sl->state = S_HELD;
		slot_events(sl, EPOLLIN | EPOLLRDHUP);
		return;
	}
	if (opt.end == END_SHUT) {
		sl->state = S_WAITEOF;
		slot_events(sl, EPOLLIN);
		return;
	}
	slot_close(sl, opt.end == END_RST);
}

static void
slot_write(struct slot *sl)
{
	while (sl->sent < opt.size) {
		size_t n = opt.size - sl->sent;
		const uint8_t *p = pattern_at(sl->seed, sl->sent, &n);
		ssize_t w = send(sl->fd, p, n, MSG_NOSIGNAL);

		if (w == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			slot_fail(sl, errno, "send");
			return;
		}
		sl->sent += (size_t)w;
	}
	if (opt.end == END_SHUT && opt.mode == M_CHURN && !sl->shut) {
		sl->shut = 1;
		(void)shutdown(sl->fd, SHUT_WR);
	}
	slot_events(sl, EPOLLIN);
}

/* Read what is there; returns 1 when the slot was closed. */
/*
 * Check the len bytes just received into rbuf against what sl sent (none
 * may come unless expected).  0 when they are right; otherwise the
 * mismatch is counted, sl closed and 1 returned.
 */
static int
echo_bad(struct slot *sl, size_t len, int expected)
{
	const char *why = NULL;

	if (!expected || sl->rcvd + len > sl->sent)
		why = "more bytes than sent";
	for (size_t off = 0, n; why == NULL && off < len; off += n) {
		const uint8_t *p;

		n = len - off;
		p = pattern_at(sl->seed, sl->rcvd + off, &n);
		if (memcmp(p, rbuf + off, n) != 0)
			why = "payload mismatch";
	}
	if (why == NULL)
		return 0;
	cnt.mismatches++;
	note_error(why, 0);
	slot_close(sl, 0);
	return 1;
}

static int
slot_read(struct slot *sl)
{
	for (;;) {
		ssize_t r = recv(sl->fd, rbuf, sizeof(rbuf), 0);

		if (r == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			slot_fail(sl, errno, "recv");
			return 1;
		}
		if (r == 0) {
			if (sl->state == S_WAITEOF) {
				slot_close(sl, 0);	/* the normal end of "shut" */
			} else if (sl->state == S_HELD) {
				cnt.peer_closed++;
				note_error("held connection closed by peer", 0);
				slot_close(sl, 0);
			} else {
				cnt.early_eofs++;
				note_error("EOF before the whole echo", 0);
				slot_close(sl, 0);
			}
			return 1;
		}
		/* after the exchange, any byte is one we never sent */
		if (echo_bad(sl, (size_t)r, sl->state == S_XCHG))
			return 1;
		sl->rcvd += (size_t)r;
		cnt.bytes += (unsigned long long)r;
		if (sl->rcvd == opt.size) {
			slot_done(sl);
			return sl->state == S_FREE;
		}
	}
}

/* The histogram bucket of a latency of ns nanoseconds. */
static unsigned
lat_bucket(uint64_t ns)
{
	unsigned e, idx;

	if (ns < 64)
		return (unsigned)ns;
	e = 63u - (unsigned)__builtin_clzll(ns);	/* 6.. */
	idx = 64u + (e - 6u) * LAT_SUB + (unsigned)((ns >> (e - 5u)) - LAT_SUB);
	return idx < LAT_BUCKETS ? idx : LAT_BUCKETS - 1;
}

/* The middle of bucket idx, in nanoseconds. */
static double
lat_value(unsigned idx)
{
	unsigned e, m;

	if (idx < 64)
		return idx;
	e = (idx - 64u) / LAT_SUB + 6u;
	m = (idx - 64u) % LAT_SUB + LAT_SUB;
	return ((double)m + 0.5) * (double)(1ULL << (e - 5u));
}

static void
lat_record(double secs)
{
	uint64_t ns = secs > 0 ? (uint64_t)(secs * 1e9) : 0;

	hist[lat_bucket(ns)]++;
	lat_sum_ns += ns;
	if (ns > lat_max_ns)
		lat_max_ns = ns;
}

/* The p-th fraction (0..1) of a histogram, in microseconds. */
static double
lat_percentile(const uint64_t *h, double p)
{
	unsigned long long total = 0, want, run = 0;
	unsigned i;

	for (i = 0; i < LAT_BUCKETS; i++)
		total += h[i];
	if (total == 0)
		return 0;
	want = (unsigned long long)(p * (double)total + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < LAT_BUCKETS; i++) {
		run += h[i];
		if (run >= want)
			return lat_value(i) / 1000.0;
	}
	return lat_value(LAT_BUCKETS - 1) / 1000.0;
}

static int stream_write(struct slot *);

/* pingpong: send the next message. */
static int
pp_start(struct slot *sl)
{
	sl->state = S_PP;
	sl->msg_start = now();
	sl->msg_end = sl->sent + opt.size;
	sl->deadline = sl->msg_start + opt.timeout;
	return stream_write(sl);
}

/*
 * Send what the slot may send now: the rest of the message (pingpong) or
 * chunks up to the window (bulk).  Returns 1 when the slot was closed.
 */
static int
stream_write(struct slot *sl)
{
	size_t window = opt.size * 2 > BULK_WINDOW ? opt.size * 2 : BULK_WINDOW;

	for (;;) {
		size_t n;
		const uint8_t *p;
		ssize_t w;

		if (sl->state == S_PP)
			n = sl->msg_end - sl->sent;
		else if (sl->state == S_BULK && sl->sent - sl->rcvd < window) {
			n = window - (sl->sent - sl->rcvd);
			if (n > opt.size)
				n = opt.size;
		} else
			n = 0;
		if (n == 0)
			break;
		p = pattern_at(sl->seed, sl->sent, &n);
		w = send(sl->fd, p, n, MSG_NOSIGNAL);
		if (w == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				slot_events(sl, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
				return 0;
			}
			if (errno == EINTR)
				continue;
			slot_fail(sl, errno, "send");
			return 1;
		}
		sl->sent += (size_t)w;
	}
	slot_events(sl, EPOLLIN | EPOLLRDHUP);
	return 0;
}

/* Read and check what is there.  Returns 1 when the slot was closed. */
static int
stream_read(struct slot *sl)
{
	for (;;) {
		ssize_t r = recv(sl->fd, rbuf, sizeof(rbuf), 0);
		size_t len;

		if (r == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			slot_fail(sl, errno, "recv");
			return 1;
		}
		if (r == 0) {
			cnt.early_eofs++;
			note_error("EOF before the whole echo", 0);
			slot_close(sl, 0);
			return 1;
		}
		len = (size_t)r;
		if (echo_bad(sl, len, 1))
			return 1;
		sl->rcvd += len;
		cnt.bytes += len;
		if (phase == P_RUN)
			win_bytes += len;
		if (sl->state == S_PP && sl->rcvd == sl->msg_end) {
			lat_record(now() - sl->msg_start);
			cnt.completed++;
			if (phase == P_RUN) {
				messages++;
				return pp_start(sl);	/* nothing more to read */
			}
			slot_close(sl, 0);
			return 1;
		}
		if (sl->state == S_FLUSH && sl->rcvd == sl->sent) {
			cnt.completed++;
			slot_close(sl, 0);
			return 1;
		}
		if (sl->state == S_BULK) {
			sl->deadline = now() + opt.timeout;	/* progress */
			if (!(sl->events & EPOLLOUT) && stream_write(sl))
				return 1;
		}
		if (len < sizeof(rbuf))
			return 0;	/* drained; epoll says when there is more */
	}
}

static void
stream_event(struct slot *sl, uint32_t ev)
{
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
		if (stream_read(sl))
			return;
	}
	if ((ev & EPOLLOUT) && (sl->state == S_PP || sl->state == S_BULK))
		(void)stream_write(sl);
}

static void
slot_event(struct slot *sl, uint32_t ev)
{
	if (sl->state >= S_IDLE) {
		stream_event(sl, ev);
		return;
	}
	if (sl->state == S_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err == 0 && (ev & (EPOLLERR | EPOLLHUP)) && !(ev & EPOLLOUT))
			err = ECONNREFUSED;
		if (err == 0 && self_connected(sl->fd))
			err = ECONNREFUSED;	/* nobody listens: TCP simultaneous open */
		if (err != 0) {
			cnt.failed_connects++;
			note_error("connect", err);
			slot_close(sl, 0);
			return;
		}
		slot_established(sl);
		return;
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
		if (slot_read(sl))
			return;
	}
	if (sl->state == S_XCHG && (ev & EPOLLOUT))
		slot_write(sl);
}

/*
 * Wait up to timeout_ms for events (signals stay deliverable: the mask is
 * empty) and hand each to its slot.  EINTR is not an error: the caller's
 * loop looks at its flags again.
 */
static void
poll_slots(struct epoll_event *evs, int maxev, int timeout_ms,
    const sigset_t *empty)
{
	int n = epoll_pwait(epfd, evs, maxev, timeout_ms, empty);

	if (n == -1 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		struct slot *sl = evs[i].data.ptr;

		if (sl->state != S_FREE)
			slot_event(sl, evs[i].events);
	}
}

static const char *
mode_name(void)
{
	switch (opt.mode) {
	case M_CHURN:
		return "churn";
	case M_HOLD:
		return "hold";
	case M_FLOOD:
		return "flood";
	case M_PINGPONG:
		return "pingpong";
	default:
		return "bulk";
	}
}

/*
 * The JSON line.  The fields up to "first_error" are those churn, hold and
 * flood always printed; the rest come only with pingpong, bulk or -P.
 */
static void
print_counts(double elapsed, int held, double rate)
{
	int i, first = 1;

	printf("{\"mode\":\"%s\",\"connects\":%llu,\"failed_connects\":%llu,"
	    "\"resets\":%llu,\"early_eofs\":%llu,\"timeouts\":%llu,"
	    "\"mismatches\":%llu,\"completed\":%llu,\"peer_closed\":%llu,"
	    "\"held\":%d,\"bytes\":%llu,\"elapsed\":%.3f,\"rate\":%.1f,"
	    "\"errors\":{",
	    mode_name(),
	    cnt.connects, cnt.failed_connects, cnt.resets, cnt.early_eofs,
	    cnt.timeouts, cnt.mismatches, cnt.completed, cnt.peer_closed,
	    held, cnt.bytes, elapsed, rate);
	for (i = 1; i < MAX_ERRNO; i++) {
		if (cnt.err_by_errno[i] == 0)
			continue;
		printf("%s\"%s\":%llu", first ? "" : ",", strerrorname_np(i) ?
		    strerrorname_np(i) : "?", cnt.err_by_errno[i]);
		first = 0;
	}
	printf("},\"first_error\":\"");
	for (i = 0; first_error[i]; i++) {
		unsigned char c = (unsigned char)first_error[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
	}
	printf("\"");
	if (opt.procs > 1 || opt.mode == M_PINGPONG || opt.mode == M_BULK)
		printf(",\"procs\":%d,\"conns\":%d,\"size\":%zu", opt.procs, opt.conc,
		    opt.size);
	if (opt.mode == M_PINGPONG || opt.mode == M_BULK) {
		printf(",\"messages\":%llu,\"mbps\":%.3f", messages,
		    elapsed > 0 ? (double)win_bytes / elapsed / 1e6 : 0.0);
	}
	if (opt.mode == M_PINGPONG) {
		double lat_n = 0;

		for (i = 0; i < LAT_BUCKETS; i++)
			lat_n += (double)hist[i];
		printf(",\"latency_us\":{\"count\":%.0f,\"mean\":%.1f,\"p50\":%.1f,"
		    "\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}",
		    lat_n, lat_n > 0 ? (double)lat_sum_ns / lat_n / 1000.0 : 0.0,
		    lat_percentile(hist, 0.50), lat_percentile(hist, 0.90),
		    lat_percentile(hist, 0.99), lat_percentile(hist, 0.999),
		    (double)lat_max_ns / 1000.0);
	}
	printf("}\n");
	fflush(stdout);
}

/* churn, hold and flood: the loop they have always had. */
static void
run_classic(double *elapsed, int *heldp)
{
	struct epoll_event *evs;
	sigset_t empty;
	double t0, t, end, hard_end, last_scan = 0;
	int i, maxev, starting = 1, announced = 0;
	int held = 0;

	sigemptyset(&empty);
	maxev = opt.conc < 1024 ? opt.conc : 1024;
	if ((evs = calloc((size_t)maxev, sizeof(*evs))) == NULL)
		die("out of memory");

	t0 = now();
	end = t0 + opt.duration;
	hard_end = end + opt.timeout + 1;
	/* hold opens its connections once; the others keep every slot busy */
	for (i = 0; i < opt.conc; i++)
		(void)slot_connect(&slots[i], t0);

	for (;;) {
		int timeout_ms;

		t = now();
		if (stop_signal || t >= end) {
			if (starting && opt.mode == M_HOLD) {
				for (i = 0; i < opt.conc; i++) {
					if (slots[i].state == S_HELD)
						held++;
					else if (slots[i].state != S_FREE)
						cnt.timeouts++;
					if (slots[i].state != S_FREE)
						slot_close(&slots[i], 0);
				}
			}
			starting = 0;
		}
		if (!starting && active == 0)
			break;
		if (t >= hard_end)
			break;
		if (t - last_scan >= 0.05) {
			last_scan = t;
			for (i = 0; i < opt.conc; i++) {
				struct slot *sl = &slots[i];

				if (sl->state == S_FREE || sl->state == S_HELD ||
				    t < sl->deadline)
					continue;
				slot_expire(sl);
			}
		}
		if (opt.mode == M_HOLD && !announced) {
			int settled = 1;

			for (i = 0; i < opt.conc; i++)
				if (slots[i].state != S_FREE && slots[i].state != S_HELD)
					settled = 0;
			if (settled) {
				announced = 1;
				if (me != NULL) {
					__atomic_store_n(&me->active, active, __ATOMIC_SEQ_CST);
					__atomic_store_n(&me->settled, 1, __ATOMIC_SEQ_CST);
				} else
					fprintf(stderr, "pfload: holding %d connections\n", active);
			}
		}
		if (starting && opt.mode != M_HOLD) {
			for (i = 0; i < opt.conc; i++)
				if (slots[i].state == S_FREE &&
				    slot_connect(&slots[i], t) == -1)
					break;	/* failed at once: retry after a wait */
		}
		timeout_ms = 50;
		if (starting && end - t < 0.05)
			timeout_ms = (int)((end - t) * 1000) + 1;
		poll_slots(evs, maxev, timeout_ms, &empty);
	}
	t = now();
	for (i = 0; i < opt.conc; i++)
		if (slots[i].state != S_FREE) {
			if (slots[i].state == S_HELD)
				held++;
			else
				cnt.timeouts++;
			slot_close(&slots[i], 0);
		}
	*elapsed = t - t0;
	*heldp = held;
	free(evs);
}

/* Whether every process may start measuring. */
static int
may_go(void)
{
	return shm == NULL || __atomic_load_n(&shm->go, __ATOMIC_SEQ_CST);
}

/*
 * pingpong and bulk: connect every slot, wait for the start (every -P
 * process connected), run for -d, then let the messages in flight finish
 * (each within -t).  The connections are kept for the whole run; one that
 * fails is counted and not replaced.  Returns the measured seconds.
 */
static double
run_stream(void)
{
	struct epoll_event *evs;
	sigset_t empty;
	double t, t_run = 0, end = 0, drain_end = 0, ready_at = 0, last_scan = 0;
	double ran = 0;
	int i, maxev;

	sigemptyset(&empty);
	maxev = opt.conc < 1024 ? opt.conc : 1024;
	if ((evs = calloc((size_t)maxev, sizeof(*evs))) == NULL)
		die("out of memory");
	phase = P_CONNECT;
	t = now();
	for (i = 0; i < opt.conc; i++)
		(void)slot_connect(&slots[i], t);

	for (;;) {
		int timeout_ms = 50, connecting = 0;

		t = now();
		if (t - last_scan >= 0.05 || phase == P_CONNECT) {
			last_scan = t;
			for (i = 0; i < opt.conc; i++) {
				struct slot *sl = &slots[i];

				if (sl->state == S_CONNECTING && t < sl->deadline)
					connecting++;
				if (sl->state == S_FREE || sl->state == S_IDLE ||
				    t < sl->deadline)
					continue;
				slot_expire(sl);
			}
		}
		if (phase == P_CONNECT && (connecting == 0 || stop_signal)) {
			phase = P_WAIT;
			ready_at = t;
			if (me != NULL)
				__atomic_store_n(&me->ready, 1, __ATOMIC_SEQ_CST);
		}
		/* the parent says go once all are ready; do not wait forever */
		if (phase == P_WAIT && (may_go() || stop_signal ||
		    t - ready_at > 2 * opt.timeout + 5)) {
			phase = P_RUN;
			t = t_run = now();
			end = t_run + opt.duration;
			for (i = 0; i < opt.conc; i++) {
				struct slot *sl = &slots[i];

				if (sl->state != S_IDLE)
					continue;
				if (opt.mode == M_PINGPONG)
					(void)pp_start(sl);
				else {
					sl->state = S_BULK;
					sl->deadline = t + opt.timeout;
					(void)stream_write(sl);
				}
			}
		}
		if (phase == P_RUN && (t >= end || stop_signal || active == 0)) {
			phase = P_DRAIN;
			ran = t - t_run;
			drain_end = t + opt.timeout + 1;
			for (i = 0; i < opt.conc; i++) {
				struct slot *sl = &slots[i];

				if (sl->state == S_IDLE) {
					slot_close(sl, 0);
				} else if (sl->state == S_BULK) {
					sl->state = S_FLUSH;
					sl->deadline = t + opt.timeout;
					if (sl->rcvd == sl->sent) {
						cnt.completed++;
						slot_close(sl, 0);
					} else
						slot_events(sl, EPOLLIN | EPOLLRDHUP);
				}
			}
		}
		if (phase == P_DRAIN && (active == 0 || t >= drain_end))
			break;
		if (phase == P_WAIT)
			timeout_ms = 5;
		else if (phase == P_CONNECT)
			timeout_ms = 20;
		else if (phase == P_RUN && end - t < 0.05)
			timeout_ms = (int)((end - t) * 1000) + 1;
		poll_slots(evs, maxev, timeout_ms, &empty);
	}
	for (i = 0; i < opt.conc; i++)
		if (slots[i].state != S_FREE) {
			cnt.timeouts++;
			slot_close(&slots[i], 0);
		}
	free(evs);
	return ran;
}

/* Run this process's share; fills elapsed, held and rate. */
static void
run_one(double *elapsed, int *held, double *rate)
{
	int i;

	if ((slots = calloc((size_t)opt.conc, sizeof(*slots))) == NULL)
		die("out of memory");
	for (i = 0; i < opt.conc; i++)
		slots[i].fd = -1;
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	*held = 0;
	if (opt.mode == M_PINGPONG || opt.mode == M_BULK) {
		*elapsed = run_stream();
		if (opt.mode == M_PINGPONG)
			*rate = *elapsed > 0 ? (double)messages / *elapsed : 0.0;
		else
			*rate = *elapsed > 0 ? (double)win_bytes / *elapsed / 1e6 : 0.0;
	} else {
		run_classic(elapsed, held);
		*rate = *elapsed > 0 ? (double)cnt.completed / *elapsed : 0.0;
	}
	close(epfd);
	free(slots);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	(void)nanosleep(&ts, NULL);	/* EINTR: a signal, looked at by the caller */
}

/*
 * -P: fork the client processes, each with its share of the connections
 * and its own source addresses and seeds; start pingpong/bulk in all of
 * them at once; forward SIGTERM/SIGINT; sum what they report.
 */
static int
run_parent(void)
{
	pid_t pids[MAX_PROCS];
	int status[MAX_PROCS], reaped[MAX_PROCS];
	int i, j, left, announced = 0, forwarded = 0, killed = 0, failed = 0, held = 0;
	int total_conc = opt.conc;
	double t0 = now(), hard_end, elapsed = 0, rate = 0;
	sigset_t block;

	if (opt.procs > opt.conc)
		opt.procs = opt.conc;
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (shm == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < opt.procs; i++) {
		pid_t parent = getpid();

		reaped[i] = 0;
		status[i] = 0;
		pids[i] = fork();
		if (pids[i] == -1) {
			for (j = 0; j < i; j++)
				kill(pids[j], SIGKILL);
			die("fork: %s", strerror(errno));
		}
		if (pids[i] == 0) {
			double e;
			int h;
			double r;

			(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			me = &shm->res[i];
			opt.conc = total_conc / opt.procs + (i < total_conc % opt.procs);
			next_src = (unsigned)i;
			next_seed = 1u + (uint32_t)i * 1000003u;
			run_one(&e, &h, &r);
			me->cnt = cnt;
			me->messages = messages;
			me->win_bytes = win_bytes;
			me->lat_sum_ns = lat_sum_ns;
			me->lat_max_ns = lat_max_ns;
			me->elapsed = e;
			me->rate = r;
			me->held = h;
			memcpy(me->first_error, first_error, sizeof(first_error));
			memcpy(me->hist, hist, sizeof(hist));
			__atomic_store_n(&me->done, 1, __ATOMIC_SEQ_CST);
			fflush(stdout);
			_exit(0);
		}
	}
	/* the parent waits in nanosleep, so it takes its signals now */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_UNBLOCK, &block, NULL);

	hard_end = t0 + opt.duration + 3 * opt.timeout + 10;
	for (left = opt.procs; left > 0; ) {
		double t = now();

		if (stop_signal && !forwarded) {
			forwarded = 1;
			for (i = 0; i < opt.procs; i++)
				if (!reaped[i])
					kill(pids[i], SIGTERM);
		}
		if (t >= hard_end && !killed) {
			killed = 1;
			for (i = 0; i < opt.procs; i++)
				if (!reaped[i])
					kill(pids[i], SIGKILL);
		}
		for (i = 0; i < opt.procs; i++) {
			if (reaped[i])
				continue;
			if (waitpid(pids[i], &status[i], WNOHANG) == pids[i]) {
				reaped[i] = 1;
				left--;
			}
		}
		if ((opt.mode == M_PINGPONG || opt.mode == M_BULK) &&
		    !__atomic_load_n(&shm->go, __ATOMIC_SEQ_CST)) {
			int all = 1;

			for (i = 0; i < opt.procs; i++)
				if (!reaped[i] &&
				    !__atomic_load_n(&shm->res[i].ready, __ATOMIC_SEQ_CST))
					all = 0;
			if (all)
				__atomic_store_n(&shm->go, 1, __ATOMIC_SEQ_CST);
		}
		if (opt.mode == M_HOLD && !announced) {
			int all = 1, sum = 0;

			for (i = 0; i < opt.procs; i++) {
				if (!__atomic_load_n(&shm->res[i].settled, __ATOMIC_SEQ_CST)) {
					if (!reaped[i])
						all = 0;
				} else
					sum += shm->res[i].active;
			}
			if (all) {
				announced = 1;
				fprintf(stderr, "pfload: holding %d connections\n", sum);
			}
		}
		if (left > 0)
			sleep_ms(5);
	}

	memset(&cnt, 0, sizeof(cnt));
	for (i = 0; i < opt.procs; i++) {
		struct result *r = &shm->res[i];

		if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) != 0 || !r->done) {
			failed = 1;
			continue;
		}
		cnt.connects += r->cnt.connects;
		cnt.failed_connects += r->cnt.failed_connects;
		cnt.resets += r->cnt.resets;
		cnt.early_eofs += r->cnt.early_eofs;
		cnt.timeouts += r->cnt.timeouts;
		cnt.mismatches += r->cnt.mismatches;
		cnt.completed += r->cnt.completed;
		cnt.peer_closed += r->cnt.peer_closed;
		cnt.bytes += r->cnt.bytes;
		for (j = 0; j < MAX_ERRNO; j++)
			cnt.err_by_errno[j] += r->cnt.err_by_errno[j];
		for (j = 0; j < LAT_BUCKETS; j++)
			hist[j] += r->hist[j];
		messages += r->messages;
		win_bytes += r->win_bytes;
		lat_sum_ns += r->lat_sum_ns;
		if (r->lat_max_ns > lat_max_ns)
			lat_max_ns = r->lat_max_ns;
		held += r->held;
		rate += r->rate;
		if (r->elapsed > elapsed)
			elapsed = r->elapsed;
		if (first_error[0] == '\0' && r->first_error[0] != '\0')
			memcpy(first_error, r->first_error, sizeof(first_error));
	}
	opt.conc = total_conc;
	if (failed) {
		fprintf(stderr, "pfload: a client process failed%s\n",
		    killed ? " (killed at the hard deadline)" : "");
		return 1;
	}
	/* bulk: win_bytes / longest window would understate; use the sum of rates */
	if (opt.mode == M_BULK && elapsed > 0)
		win_bytes = (unsigned long long)(rate * 1e6 * elapsed);
	print_counts(elapsed, held, rate);
	return 0;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t block;
	double elapsed, rate;
	int ch, conc_set = 0, size_set = 0;
	int held = 0;

	if (argc < 2)
		usage();
	if (strcmp(argv[1], "churn") == 0)
		opt.mode = M_CHURN;
	else if (strcmp(argv[1], "hold") == 0)
		opt.mode = M_HOLD;
	else if (strcmp(argv[1], "flood") == 0)
		opt.mode = M_FLOOD;
	else if (strcmp(argv[1], "pingpong") == 0)
		opt.mode = M_PINGPONG;
	else if (strcmp(argv[1], "bulk") == 0)
		opt.mode = M_BULK;
	else
		usage();
	opt.conc = 32;
	opt.duration = 10;
	opt.size = 64;
	opt.timeout = 10;
	opt.end = END_CLOSE;
	opt.procs = 1;
	optind = 2;
	while ((ch = getopt(argc, argv, "a:c:d:s:n:t:e:P:")) != -1) {
		switch (ch) {
		case 'a':
			opt.addr_text = optarg;
			parse_addr(optarg);
			break;
		case 'c':
			opt.conc = (int)parse_num(optarg, 1, 100000, "-c");
			conc_set = 1;
			break;
		case 'd':
			opt.duration = parse_secs(optarg, "-d");
			break;
		case 's':
			opt.size = parse_size(optarg);
			size_set = 1;
			break;
		case 'n':
			opt.nsrc = (int)parse_num(optarg, 0, 254, "-n");
			break;
		case 't':
			opt.timeout = (double)parse_num(optarg, 1, 3600000, "-t") / 1000.0;
			break;
		case 'e':
			if (strcmp(optarg, "close") == 0)
				opt.end = END_CLOSE;
			else if (strcmp(optarg, "shut") == 0)
				opt.end = END_SHUT;
			else if (strcmp(optarg, "rst") == 0)
				opt.end = END_RST;
			else
				usage();
			break;
		case 'P':
			opt.procs = (int)parse_num(optarg, 1, MAX_PROCS, "-P");
			break;
		default:
			usage();
		}
	}
	if (optind != argc || opt.addr_text == NULL)
		usage();
	if (opt.mode == M_HOLD && !size_set)
		opt.size = 1;
	if (opt.mode == M_HOLD && !conc_set)
		opt.conc = 100;
	if (opt.mode == M_BULK && !size_set)
		opt.size = 64 * 1024;
	if ((opt.mode == M_PINGPONG || opt.mode == M_BULK) && opt.size == 0) {
		fprintf(stderr, "pfload: %s needs -s of at least 1 byte\n", mode_name());
		usage();
	}

	pattern_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, NULL);

	if (opt.procs > 1)
		return run_parent();
	run_one(&elapsed, &held, &rate);
	print_counts(elapsed, held, rate);
	return 0;
}
