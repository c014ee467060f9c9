/*
 * relay.c: proxy mode.  Owns a connection's backend side: the backend
 * socket, the choice of backend and the retries, and the two buffers (or
 * pipes) between the sides.
 *
 * The relay has two directions, client->backend (c2b) and backend->client
 * (b2c), handled by the same code.  A direction's buffer exists only while
 * it holds bytes, and holds buffer_size at most: while it is full, its
 * source is not read (backpressure), so memory does not grow with a slow
 * reader on either side.  EOF from a source is passed on as
 * shutdown(SHUT_WR) to the other side once the buffer is empty; the other
 * direction keeps flowing until it ends too, or until halfclose_timeout.
 *
 * Splicing.  A direction may instead move its bytes through a pipe of its
 * own with splice(2), source -> pipe -> sink, so that they never enter
 * user space.  The pipe stands in for the buffer and keeps its rules: it
 * is used only once the buffer is empty (so a PROXY header and anything
 * buffered go first), its source is not read while it is full
 * (backpressure; the bound is the pipe's size, RELAY_PIPE_SIZE or
 * buffer_size if larger, of kernel memory), and the FIN is passed on once
 * it is empty.  A pipe costs two fds and a struct pipe, so:
 *   - splice = auto opens one for a direction only after that direction
 *     read a full buffer_size in one go, a bulk transfer; interactive
 *     traffic never gets one.  splice = on opens one at the first read once
 *     the backend is connected; off never does.
 *   - a pipe lives only while its connection is busy: once the connection
 *     has moved no byte for RELAY_PIPE_IDLE, an empty pipe is closed
 *     (auto: until the next full read), so an idle connection holds its
 *     two sockets and nothing else.  A source's EOF closes its empty pipe
 *     at once.
 *   - when no pipe can be had (EMFILE, ENFILE), or only one smaller than
 *     buffer_size (past pipe-user-pages-soft the kernel grants 2 pages),
 *     the connection copies as before, until it ends.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "net.h"
#include "proxyproto.h"
#include "relay.h"
#include "upstream.h"

enum { C2B, B2C };

#define RELAY_PIPE_SIZE	(256 * 1024)	/* asked for; the kernel may grant less */
#define RELAY_PIPE_IDLE	1.0		/* s without a byte that close the pipes */

/* A direction's pipe, while it splices. */
struct pipe {
	ev_timer	 idle;		/* first: the callback casts back */
	int		 rfd, wfd;
	uint32_t	 len;		/* bytes in it */
	uint32_t	 size;		/* as the kernel granted it */
	uint8_t		 full;		/* took no more: wait until it drains */
	uint8_t		 dir;		/* C2B or B2C */
};

/* The small members share words: an idle connection's relay is 184 bytes. */
struct relay {
	ev_io		 io;		/* the backend socket */
	struct conn	*c;
	ev_timer	 timer;		/* connect_timeout, then halfclose_timeout */
	struct buf	*buf[2];	/* owned; [C2B], [B2C]; NULL when empty */
	struct pipe	*pipe[2];	/* owned; [C2B], [B2C]; NULL when copying */
	uint64_t	 tried;		/* backends tried (bit per index) */
	int		 up;		/* index in the upstream set; -1: none */
	unsigned	 retries;	/* further backends we may still try */
	int		 last_err;	/* of the last failed connect */
	uint8_t		 connected;
	uint8_t		 eof[2];	/* [C2B]: client sent FIN; [B2C]: backend did */
	uint8_t		 shut[2];	/* FIN passed on to the backend / the client */
	int8_t		 first_eof;	/* C2B or B2C: who finished first; -1 */
	uint8_t		 splice[2];	/* splice once the buffer is empty */
	uint8_t		 nosplice;	/* no usable pipe could be had: copy */
	ev_tstamp	 connect_start;
	ev_tstamp	 connect_time;	/* -1 until connected */
};

static void	relay_io_cb(struct ev_loop *, ev_io *, int);
static void	relay_backend_cb(struct ev_loop *, ev_io *, int);
static void	relay_pipe_idle_cb(struct ev_loop *, ev_timer *, int);
static void	relay_pipe_close(struct conn *c, int d);
static void	relay_connect(struct conn *c);
static void	relay_retry(struct conn *c, int err);
static int	relay_through(struct conn *c, int d, int src, int dst);

static unsigned
relay_rand(void *arg)
{
	(void)arg;
	return (unsigned)random();
}

static const char *
relay_summary(const struct conn *c, char *buf, size_t len)
{
	const struct relay *r = c->mode;
	char a[NET_ADDRSTRLEN];

	if (r == NULL || r->up < 0) {
		snprintf(buf, len, "backend=- connect=- ");
		return buf;
	}
	net_addr_str((const struct sockaddr *)&c->cl->ups.u[r->up].conf->addr.ss,
	    a, sizeof(a));
	if (r->connect_time >= 0)
		snprintf(buf, len, "backend=%s connect=%.3fs ", a, r->connect_time);
	else
		snprintf(buf, len, "backend=%s connect=- ", a);
	return buf;
}

/* 1 when direction d has room for what its source sends. */
static int
relay_room(const struct relay *r, int d)
{
	if (r->eof[d])
		return 0;
	if (r->buf[d] != NULL)
		return buf_space(r->buf[d]) > 0;
	if (r->pipe[d] != NULL)
		return r->pipe[d]->len < r->pipe[d]->size && !r->pipe[d]->full;
	return 1;
}

/* 1 when direction d holds bytes for its sink. */
static int
relay_pending(const struct relay *r, int d)
{
	return r->buf[d] != NULL || (r->pipe[d] != NULL && r->pipe[d]->len > 0);
}

/* Watch for what each side can do now. */
static void
relay_update(struct conn *c)
{
	struct relay *r = c->mode;
	struct ev_loop *loop = c->cl->pool->loop;
	int cw = 0, bw = 0;

	if (relay_room(r, C2B))
		cw |= EV_READ;
	if (relay_pending(r, B2C))
		cw |= EV_WRITE;
	if (!r->connected)
		bw = EV_WRITE;		/* the connect's outcome */
	else {
		if (relay_room(r, B2C))
			bw |= EV_READ;
		if (relay_pending(r, C2B))
			bw |= EV_WRITE;
	}
	if (cw != (c->io.events & (EV_READ | EV_WRITE))) {
		ev_io_stop(loop, &c->io);
		ev_io_set(&c->io, c->io.fd, cw);
		if (cw)
			ev_io_start(loop, &c->io);
	}
	if (bw != (r->io.events & (EV_READ | EV_WRITE)) || !ev_is_active(&r->io)) {
		ev_io_stop(loop, &r->io);
		ev_io_set(&r->io, r->io.fd, bw);
		if (bw)
			ev_io_start(loop, &r->io);
	}
}

static void
relay_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = t->data;
	struct relay *r = c->mode;
	char a[NET_ADDRSTRLEN];

	(void)loop, (void)revents;
	if (r->connected) {
		conn_close(c, CONN_HALFCLOSE_TIMEOUT);
		return;
	}
	log_info("listener %s: connect to %s timed out", c->cl->conf->name,
	    net_addr_str((const struct sockaddr *)&c->cl->ups.u[r->up].conf->addr.ss,
	    a, sizeof(a)));
	relay_retry(c, ETIMEDOUT);
}

/* Close the backend socket of a failed attempt; try the next or give up. */
static void
relay_retry(struct conn *c, int err)
{
	struct relay *r = c->mode;
	struct conn_listen *cl = c->cl;
	struct ev_loop *loop = cl->pool->loop;
	char a[NET_ADDRSTRLEN];

	ev_io_stop(loop, &r->io);
	ev_timer_stop(loop, &r->timer);
	close(r->io.fd);
	r->io.fd = -1;
	cl->ups.u[r->up].conns--;
	if (upstream_failed(&cl->ups, r->up, ev_now(loop)))
		log_warnx("listener %s: backend %s marked down for %u ms after %u failed connects",
		    cl->conf->name,
		    net_addr_str((const struct sockaddr *)&cl->ups.u[r->up].conf->addr.ss,
		    a, sizeof(a)), cl->conf->fail_ms, cl->conf->max_fails);
	r->last_err = err;
	if (r->retries > 0) {
		r->retries--;
		relay_connect(c);
		return;
	}
	conn_close(c, err == ETIMEDOUT ? CONN_CONNECT_TIMEOUT : CONN_CONNECT_FAILED);
}

/*
 * Bind fd to the listener's next source address of the backend's family,
 * if it has any.  An address that cannot be bound is logged (once a
 * second at most: every connection would fail alike) and the next one is
 * tried; it is no fault of the backend's.  -1 when none could be bound.
 */
static int
relay_bind(struct conn *c, int fd, const struct addr *to)
{
	struct conn_listen *cl = c->cl;
	const struct addr *src;
	char a[NET_ADDRSTRLEN], b[NET_ADDRSTRLEN], more[LOG_HELD_MAX];
	unsigned long held;

	for (size_t i = 0; i < cl->ups.nsrc; i++) {
		if ((src = upstream_source(&cl->ups, to->ss.ss_family)) == NULL ||
		    net_bind_source(fd, src) == 0)
			return 0;
		if (log_rate_ok(&cl->source_log, ev_now(cl->pool->loop), 1.0, &held))
			log_warn("listener %s: bind to source %s for backend %s%s",
			    cl->conf->name,
			    net_addr_str((const struct sockaddr *)&src->ss, a, sizeof(a)),
			    net_addr_str((const struct sockaddr *)&to->ss, b, sizeof(b)),
			    log_held(held, more, sizeof(more)));
	}
	return cl->ups.nsrc > 0 ? -1 : 0;
}

/* Choose a backend not tried yet and start connecting to it. */
static void
relay_connect(struct conn *c)
{
	struct relay *r = c->mode;
	struct conn_listen *cl = c->cl;
	struct ev_loop *loop = cl->pool->loop;
	const struct addr *a;
	int fd, up;

	up = upstream_pick(&cl->ups, &c->peer.sa, r->tried, ev_now(loop),
	    relay_rand, NULL);
	if (up < 0) {
		if (r->tried == 0) {
			char more[LOG_HELD_MAX];
			unsigned long held;

			if (log_rate_ok(&cl->nobackend_log, ev_now(loop), 1.0, &held))
				log_warnx("listener %s: no backend up; closing clients%s",
				    cl->conf->name, log_held(held, more, sizeof(more)));
			conn_close(c, CONN_NO_BACKEND);
		} else		/* every usable backend was tried */
			conn_close(c, r->last_err == ETIMEDOUT ?
			    CONN_CONNECT_TIMEOUT : CONN_CONNECT_FAILED);
		return;
	}
	r->up = up;
	r->tried |= (uint64_t)1 << up;
	cl->ups.u[up].conns++;
	a = &cl->ups.u[up].conf->addr;
	r->connect_start = ev_now(loop);
	if ((fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		cl->ups.u[up].conns--;
		conn_close(c, CONN_ERROR);
		return;
	}
	/*
	 * From here the socket is r->io.fd: relay_free() closes it and takes
	 * it off the backend's count.
	 */
	r->io.fd = fd;
	ev_io_init(&r->io, relay_backend_cb, fd, EV_WRITE);
	r->io.data = c;
	if (cl->conf->tcp_nodelay && net_nodelay(fd, 1) == -1) {
		conn_close(c, CONN_ERROR);
		return;
	}
	if (relay_bind(c, fd, a) == -1) {
		/* Ours, not the backend's: it is not marked down for it. */
		conn_close(c, CONN_CONNECT_FAILED);
		return;
	}
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1 &&
	    errno != EINPROGRESS) {
		relay_retry(c, errno);
		return;
	}
	ev_timer_set(&r->timer, cl->conf->connect_ms / 1000.0, 0.);
	ev_timer_start(loop, &r->timer);
	relay_update(c);
}

static void
relay_start(struct conn *c, const struct proxy_hdr *h)
{
	struct conn_listen *cl = c->cl;
	const struct listener_conf *lc = cl->conf;
	struct relay *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		conn_close(c, CONN_ERROR);
		return;
	}
	c->mode = r;
	r->c = c;
	r->up = -1;
	r->first_eof = -1;
	r->connect_time = -1;
	r->retries = lc->retries;
	r->io.fd = -1;
	ev_init(&r->timer, relay_timer_cb);
	r->timer.data = c;
	r->splice[C2B] = r->splice[B2C] = lc->splice == SPLICE_ON;
	/* Bytes that came with a PROXY header go first. */
	r->buf[C2B] = c->buf;
	c->buf = NULL;
	if (lc->send_proxy != SEND_PROXY_OFF) {
		struct sockaddr_storage local;
		const struct sockaddr *src = &c->peer.sa;
		const struct sockaddr *dst = (struct sockaddr *)&local;
		socklen_t len = sizeof(local);
		char hdr[PROXY_HDR_MAX];
		size_t n;

		/*
		 * A received header goes on as it came, whatever the family of
		 * our own sockets; a missing pair builds UNKNOWN / LOCAL.
		 */
		if (h != NULL) {
			src = h->local ? NULL : (const struct sockaddr *)&h->src;
			dst = h->local ? NULL : (const struct sockaddr *)&h->dst;
		} else if (getsockname(c->io.fd, (struct sockaddr *)&local, &len) == -1)
			local.ss_family = AF_UNSPEC;
		n = lc->send_proxy == SEND_PROXY_V1 ?
		    proxy_build_v1(src, dst, hdr, sizeof(hdr)) :
		    proxy_build_v2(src, dst, hdr, sizeof(hdr));
		struct buf *b, *old = r->buf[C2B];

		/* The header goes in front of anything already buffered. */
		if (n == 0 || (b = buf_new(lc->buffer_size + PROXY_HDR_MAX)) == NULL) {
			conn_close(c, CONN_ERROR);
			return;
		}
		buf_append(b, hdr, n);
		if (old != NULL)
			buf_append(b, buf_rptr(old), buf_len(old));
		buf_free(old);
		r->buf[C2B] = b;
	}
	ev_set_cb(&c->io, relay_io_cb);
	c->io.events = 0;	/* relay_update sets and starts it */
	relay_connect(c);
}

static void
relay_free(struct conn *c)
{
	struct relay *r = c->mode;
	struct conn_listen *cl = c->cl;
	struct ev_loop *loop = cl->pool->loop;

	ev_io_stop(loop, &r->io);
	ev_timer_stop(loop, &r->timer);
	if (r->io.fd != -1) {
		close(r->io.fd);
		cl->ups.u[r->up].conns--;
	}
	relay_pipe_close(c, C2B);
	relay_pipe_close(c, B2C);
	buf_free(r->buf[C2B]);
	buf_free(r->buf[B2C]);
	free(r);
	c->mode = NULL;
}

/* The close reason for a failed read (at_src) or write in direction d. */
static enum conn_reason
relay_reason(int d, int at_src, int err)
{
	if (err == ECONNRESET || (!at_src && err == EPIPE))
		return (d == C2B) == at_src ? CONN_CLIENT_RESET : CONN_BACKEND_RESET;
	return CONN_ERROR;
}

/* The source finished and everything went through: pass the FIN on. */
static void
relay_pass_fin(struct conn *c, int d, int dst)
{
	struct relay *r = c->mode;

	if (!r->eof[d] || relay_pending(r, d) || r->shut[d] ||
	    (d == C2B && !r->connected))
		return;
	/*
	 * With the other direction done too, relay_done() closes both sockets
	 * next, and close() sends this FIN: dst's own EOF was read, so nothing
	 * unread turns it into a reset.  One system call fewer per connection.
	 */
	if (!r->shut[!d])
		shutdown(dst, SHUT_WR);
	r->shut[d] = 1;
	if (!r->shut[!d] && c->cl->conf->halfclose_ms > 0) {
		ev_timer_set(&r->timer, c->cl->conf->halfclose_ms / 1000.0, 0.);
		ev_timer_start(c->cl->pool->loop, &r->timer);
	}
}

/*
 * The outcome n of a read or splice from direction d's source: count the
 * bytes (a full buffer_size in one go is bulk: auto splices from then on),
 * note an EOF, or close on an error.  Returns the bytes (0 at EOF or for
 * EAGAIN), or -1 when the connection was closed.
 */
static ssize_t
relay_got(struct conn *c, int d, ssize_t n)
{
	struct relay *r = c->mode;

	if (n > 0) {
		if (d == C2B)
			c->in += n;
		conn_touch(c);
		if (c->cl->conf->splice == SPLICE_AUTO &&
		    (size_t)n == c->cl->conf->buffer_size)
			r->splice[d] = 1;
		return n;
	}
	if (n == 0) {
		r->eof[d] = 1;
		if (r->first_eof < 0)
			r->first_eof = d;
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	conn_close(c, relay_reason(d, 1, errno));
	return -1;
}

/*
 * The outcome n of a write or splice to direction d's sink: count the
 * bytes or close on an error.  Returns the bytes (0 for EAGAIN), or -1
 * when the connection was closed.
 */
static ssize_t
relay_sent(struct conn *c, int d, ssize_t n)
{
	if (n > 0) {
		if (d == B2C)
			c->out += n;
		conn_touch(c);
		return n;
	}
	if (n == -1 && errno != EAGAIN && errno != EINTR) {
		conn_close(c, relay_reason(d, 0, errno));
		return -1;
	}
	return 0;
}

/* Close direction d's pipe, if any; auto waits for the next full read. */
static void
relay_pipe_close(struct conn *c, int d)
{
	struct relay *r = c->mode;
	struct pipe *p = r->pipe[d];

	if (p == NULL)
		return;
	ev_timer_stop(c->cl->pool->loop, &p->idle);
	close(p->rfd);
	close(p->wfd);
	free(p);
	r->pipe[d] = NULL;
	r->splice[d] = c->cl->conf->splice == SPLICE_ON;
}

/*
 * A pipe's idle check, RELAY_PIPE_IDLE after the connection's last byte
 * (libev's lazy timeout: the timer is not moved at every byte but
 * re-armed when it fires early).  An empty pipe is closed; one that holds
 * bytes its sink does not take is looked at again later.
 */
static void
relay_pipe_idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = t->data;
	struct pipe *p = (struct pipe *)t;
	ev_tstamp idle = ev_now(loop) - c->last;

	(void)revents;
	if (idle >= RELAY_PIPE_IDLE && p->len == 0) {
		relay_pipe_close(c, p->dir);
		return;
	}
	ev_timer_set(t, idle < RELAY_PIPE_IDLE ? RELAY_PIPE_IDLE - idle : RELAY_PIPE_IDLE, 0.);
	ev_timer_start(loop, t);
}

/*
 * Give direction d a pipe if it is to splice now.  Returns 0 when it has
 * one, -1 when it copies (for good when no usable pipe could be had: a
 * pipe smaller than buffer_size would move less per call than copying).
 */
static int
relay_splice_start(struct conn *c, int d)
{
	struct relay *r = c->mode;
	size_t want = c->cl->conf->buffer_size;
	struct pipe *p;
	int fd[2], size;

	if (!r->splice[d] || r->nosplice || r->eof[d] || !r->connected)
		return -1;
	if (pipe2(fd, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_debug("listener %s: no pipe to splice with: %s; copying",
		    c->cl->conf->name, strerror(errno));
		r->nosplice = 1;
		return -1;
	}
	/* Refused beyond pipe-max-size or the user's pipe-user-pages-soft. */
	if ((size = fcntl(fd[1], F_SETPIPE_SZ, want > RELAY_PIPE_SIZE ? want :
	    RELAY_PIPE_SIZE)) == -1)
		size = fcntl(fd[1], F_GETPIPE_SZ);
	if (size < 0 || (size_t)size < want || (p = calloc(1, sizeof(*p))) == NULL) {
		log_debug("listener %s: no pipe of %zu bytes to splice with; copying",
		    c->cl->conf->name, want);
		close(fd[0]);
		close(fd[1]);
		r->nosplice = 1;
		return -1;
	}
	p->rfd = fd[0];
	p->wfd = fd[1];
	p->size = size;
	p->dir = d;
	ev_timer_init(&p->idle, relay_pipe_idle_cb, RELAY_PIPE_IDLE, 0.);
	p->idle.data = c;
	ev_timer_start(c->cl->pool->loop, &p->idle);
	r->pipe[d] = p;
	return 0;
}

/*
 * Move bytes in direction d through its pipe: splice what the source has
 * into the pipe, as much as it takes, and from the pipe to the sink, as
 * much as that takes.  Returns 0, or -1 when the connection was closed.
 */
static int
relay_splice(struct conn *c, int d, int can_read, int src, int dst)
{
	struct relay *r = c->mode;
	struct pipe *p = r->pipe[d];
	ssize_t n;

	if (can_read && relay_room(r, d)) {
		n = splice(src, NULL, p->wfd, NULL, p->size - p->len,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1 && errno == EAGAIN) {
			p->full = p->len > 0;	/* readable, yet the pipe took nothing */
			/*
			 * Readable, and an empty pipe took nothing: splice stops at
			 * urgent data, which read() steps over.  One read on the
			 * copy path, or the watcher would fire for ever.
			 */
			if (p->len == 0)
				return relay_through(c, d, src, dst);
		}
		if ((n = relay_got(c, d, n)) == -1)
			return -1;
		p->len += n;
	}
	if (p->len > 0) {
		if ((n = relay_sent(c, d, splice(p->rfd, NULL, dst, NULL, p->len,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK))) == -1)
			return -1;
		p->len -= n;
		if (n > 0)
			p->full = 0;
	}
	if (r->eof[d] && p->len == 0)
		relay_pipe_close(c, d);		/* nothing more comes this way */
	relay_pass_fin(c, d, dst);
	return 0;
}

/*
 * Nothing pending in direction d and its sink is open: read into the
 * worker's scratch buffer and write straight on; only what the sink does
 * not take now is kept, in a buffer of the connection's own.  Returns 0,
 * or -1 when the connection was closed.
 */
static int
relay_through(struct conn *c, int d, int src, int dst)
{
	struct relay *r = c->mode;
	struct conn_pool *pool = c->cl->pool;
	size_t size = c->cl->conf->buffer_size;
	ssize_t n, sent;

	if ((n = relay_got(c, d, read(src, pool->scratch, size))) == -1)
		return -1;
	if (n == 0) {
		relay_pass_fin(c, d, dst);
		return 0;
	}
	if ((sent = relay_sent(c, d, write(dst, pool->scratch, n))) == -1)
		return -1;
	if (sent < n) {
		if ((r->buf[d] = buf_new(size)) == NULL) {
			conn_close(c, CONN_ERROR);
			return -1;
		}
		buf_append(r->buf[d], pool->scratch + sent, n - sent);
	}
	return 0;
}

/*
 * Move bytes in direction d: read from its source into its buffer, write
 * from the buffer to its sink.  Returns 0, or -1 when the connection was
 * closed.
 */
static int
relay_move(struct conn *c, int d, int can_read)
{
	struct relay *r = c->mode;
	int src = d == C2B ? c->io.fd : r->io.fd;
	int dst = d == C2B ? r->io.fd : c->io.fd;
	size_t size = c->cl->conf->buffer_size;
	struct buf *b;
	ssize_t n;

	if (r->buf[d] == NULL && (r->pipe[d] != NULL ||
	    (can_read && relay_splice_start(c, d) == 0)))
		return relay_splice(c, d, can_read, src, dst);
	if (can_read && !r->eof[d] && r->buf[d] == NULL && (d == B2C || r->connected))
		return relay_through(c, d, src, dst);
	if (can_read && !r->eof[d]) {
		if (r->buf[d] == NULL && (r->buf[d] = buf_new(size)) == NULL) {
			conn_close(c, CONN_ERROR);
			return -1;
		}
		b = r->buf[d];
		if (buf_space(b) > 0) {
			if ((n = relay_got(c, d, read(src, buf_wptr(b), buf_space(b)))) == -1)
				return -1;
			buf_produce(b, n);
		}
	}
	if ((b = r->buf[d]) != NULL && buf_len(b) > 0 && (d == B2C || r->connected)) {
		if ((n = relay_sent(c, d, write(dst, buf_rptr(b), buf_len(b)))) == -1)
			return -1;
		buf_consume(b, n);
	}
	if ((b = r->buf[d]) != NULL && buf_len(b) == 0) {
		buf_free(b);
		r->buf[d] = NULL;
	}
	relay_pass_fin(c, d, dst);
	return 0;
}

/* Both directions done: the one close path. */
static int
relay_done(struct conn *c)
{
	struct relay *r = c->mode;

	if (!r->shut[C2B] || !r->shut[B2C])
		return 0;
	conn_close(c, r->first_eof == B2C ? CONN_BACKEND_EOF : CONN_CLIENT_EOF);
	return 1;
}

/* The client side. */
static void
relay_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = (struct conn *)io;

	(void)loop;
	if (relay_move(c, C2B, revents & EV_READ) == -1)
		return;
	if ((revents & EV_WRITE) && relay_move(c, B2C, 0) == -1)
		return;
	if (!relay_done(c))
		relay_update(c);
}

/* The backend side, connecting or connected. */
static void
relay_backend_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = io->data;
	struct relay *r = c->mode;
	socklen_t len = sizeof(int);
	int err = 0;

	if (!r->connected) {
		if (revents == 0)
			err = errno;		/* the connect timer, ETIMEDOUT */
		else if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err != 0) {
			relay_retry(c, err);
			return;
		}
		r->connected = 1;
		r->connect_time = ev_now(loop) - r->connect_start;
		ev_timer_stop(loop, &r->timer);
		upstream_succeeded(&c->cl->ups, r->up);
		revents = EV_WRITE;
	}
	if (relay_move(c, B2C, revents & EV_READ) == -1)
		return;
	if (relay_move(c, C2B, 0) == -1)
		return;
	if (!relay_done(c))
		relay_update(c);
}

const struct mode_ops relay_ops = {
	.start = relay_start,
	.free = relay_free,
	.summary = relay_summary,
};
