/*
 * pump.c: proxy mode's bytes: moving them between a relay's two sides,
 * through a buffer or a pipe, passing each side's FIN on, and noticing
 * when both directions are done.  What moves bytes and nothing else:
 * relay.c, which calls this file, owns the relay's life, the backend's
 * choice and the connect; this file calls none of it.
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
 * (backpressure; the bound is the pipe's size, PUMP_PIPE_SIZE or
 * buffer_size if larger, of kernel memory), and the FIN is passed on once
 * it is empty.  A pipe costs two fds and a struct pipe, so:
 *   - splice = auto opens one for a direction only after that direction
 *     read a full buffer_size in one go, a bulk transfer; interactive
 *     traffic never gets one.  splice = on opens one at the first read once
 *     the backend is connected; off never does.
 *   - a pipe lives only while its connection is busy: once the connection
 *     has moved no byte for PUMP_PIPE_IDLE, an empty pipe is closed
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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "pump.h"

#define PUMP_PIPE_SIZE	(256 * 1024)	/* asked for; the kernel may grant less */
#define PUMP_PIPE_IDLE	1.0		/* s without a byte that close the pipes */

static void	pump_pipe_idle_cb(struct ev_loop *, ev_timer *, int);
static int	pump_through(struct conn *c, int d, int src, int dst);

/* 1 when direction d has room for what its source sends. */
static int
pump_room(const struct relay *r, int d)
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
pump_pending(const struct relay *r, int d)
{
	return r->buf[d] != NULL || (r->pipe[d] != NULL && r->pipe[d]->len > 0);
}

/* Watch for what each side can do now. */
void
pump_update(struct conn *c)
{
	struct relay *r = c->mode;
	struct ev_loop *loop = c->cl->pool->loop;
	int cw = 0, bw = 0;

	if (pump_room(r, C2B))
		cw |= EV_READ;
	if (pump_pending(r, B2C))
		cw |= EV_WRITE;
	if (!r->connected)
		bw = EV_WRITE;		/* the connect's outcome */
	else {
		if (pump_room(r, B2C))
			bw |= EV_READ;
		if (pump_pending(r, C2B))
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

/* The close reason for a failed read (at_src) or write in direction d. */
static enum conn_reason
pump_reason(int d, int at_src, int err)
{
	if (err == ECONNRESET || (!at_src && err == EPIPE))
		return (d == C2B) == at_src ? CONN_CLIENT_RESET : CONN_BACKEND_RESET;
	return CONN_ERROR;
}

/* The source finished and everything went through: pass the FIN on. */
static void
pump_pass_fin(struct conn *c, int d, int dst)
{
	struct relay *r = c->mode;

	if (!r->eof[d] || pump_pending(r, d) || r->shut[d] ||
	    (d == C2B && !r->connected))
		return;
	/*
	 * With the other direction done too, pump_done() closes both sockets
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
pump_got(struct conn *c, int d, ssize_t n)
{
	struct relay *r = c->mode;

	if (n > 0) {
		if (d == C2B) {
			c->in += n;
			stats_add(&c->cl->st->bytes_in, n);
		}
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
	conn_close(c, pump_reason(d, 1, errno));
	return -1;
}

/*
 * The outcome n of a write or splice to direction d's sink: count the
 * bytes or close on an error.  Returns the bytes (0 for EAGAIN), or -1
 * when the connection was closed.
 */
static ssize_t
pump_sent(struct conn *c, int d, ssize_t n)
{
	if (n > 0) {
		if (d == B2C) {
			c->out += n;
			stats_add(&c->cl->st->bytes_out, n);
		}
		conn_touch(c);
		return n;
	}
	if (n == -1 && errno != EAGAIN && errno != EINTR) {
		conn_close(c, pump_reason(d, 0, errno));
		return -1;
	}
	return 0;
}

/* Close direction d's pipe, if any; auto waits for the next full read. */
void
pump_pipe_close(struct conn *c, int d)
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
 * A pipe's idle check, PUMP_PIPE_IDLE after the connection's last byte
 * (libev's lazy timeout: the timer is not moved at every byte but
 * re-armed when it fires early).  An empty pipe is closed; one that holds
 * bytes its sink does not take is looked at again later.
 */
static void
pump_pipe_idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = t->data;
	struct pipe *p = (struct pipe *)t;
	ev_tstamp idle = ev_now(loop) - c->last;

	(void)revents;
	if (idle >= PUMP_PIPE_IDLE && p->len == 0) {
		pump_pipe_close(c, p->dir);
		return;
	}
	ev_timer_set(t, idle < PUMP_PIPE_IDLE ? PUMP_PIPE_IDLE - idle : PUMP_PIPE_IDLE, 0.);
	ev_timer_start(loop, t);
}

/*
 * Give direction d a pipe if it is to splice now.  Returns 0 when it has
 * one, -1 when it copies (for good when no usable pipe could be had: a
 * pipe smaller than buffer_size would move less per call than copying).
 */
static int
pump_splice_start(struct conn *c, int d)
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
	if ((size = fcntl(fd[1], F_SETPIPE_SZ, want > PUMP_PIPE_SIZE ? want :
	    PUMP_PIPE_SIZE)) == -1)
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
	ev_timer_init(&p->idle, pump_pipe_idle_cb, PUMP_PIPE_IDLE, 0.);
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
pump_splice(struct conn *c, int d, int can_read, int src, int dst)
{
	struct relay *r = c->mode;
	struct pipe *p = r->pipe[d];
	ssize_t n;

	if (can_read && pump_room(r, d)) {
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
				return pump_through(c, d, src, dst);
		}
		if ((n = pump_got(c, d, n)) == -1)
			return -1;
		p->len += n;
	}
	if (p->len > 0) {
		if ((n = pump_sent(c, d, splice(p->rfd, NULL, dst, NULL, p->len,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK))) == -1)
			return -1;
		p->len -= n;
		if (n > 0)
			p->full = 0;
	}
	if (r->eof[d] && p->len == 0)
		pump_pipe_close(c, d);		/* nothing more comes this way */
	pump_pass_fin(c, d, dst);
	return 0;
}

/*
 * Nothing pending in direction d and its sink is open: read into the
 * worker's scratch buffer and write straight on; only what the sink does
 * not take now is kept, in a buffer of the connection's own.  Returns 0,
 * or -1 when the connection was closed.
 */
static int
pump_through(struct conn *c, int d, int src, int dst)
{
	struct relay *r = c->mode;
	struct conn_pool *pool = c->cl->pool;
	size_t size = c->cl->conf->buffer_size;
	ssize_t n, sent;

	if ((n = pump_got(c, d, read(src, pool->scratch, size))) == -1)
		return -1;
	if (n == 0) {
		pump_pass_fin(c, d, dst);
		return 0;
	}
	if ((sent = pump_sent(c, d, write(dst, pool->scratch, n))) == -1)
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
int
pump_move(struct conn *c, int d, int can_read)
{
	struct relay *r = c->mode;
	int src = d == C2B ? c->io.fd : r->io.fd;
	int dst = d == C2B ? r->io.fd : c->io.fd;
	size_t size = c->cl->conf->buffer_size;
	struct buf *b;
	ssize_t n;

	if (r->buf[d] == NULL && (r->pipe[d] != NULL ||
	    (can_read && pump_splice_start(c, d) == 0)))
		return pump_splice(c, d, can_read, src, dst);
	if (can_read && !r->eof[d] && r->buf[d] == NULL && (d == B2C || r->connected))
		return pump_through(c, d, src, dst);
	if (can_read && !r->eof[d]) {
		if (r->buf[d] == NULL && (r->buf[d] = buf_new(size)) == NULL) {
			conn_close(c, CONN_ERROR);
			return -1;
		}
		b = r->buf[d];
		if (buf_space(b) > 0) {
			if ((n = pump_got(c, d, read(src, buf_wptr(b), buf_space(b)))) == -1)
				return -1;
			buf_produce(b, n);
		}
	}
	if ((b = r->buf[d]) != NULL && buf_len(b) > 0 && (d == B2C || r->connected)) {
		if ((n = pump_sent(c, d, write(dst, buf_rptr(b), buf_len(b)))) == -1)
			return -1;
		buf_consume(b, n);
	}
	if ((b = r->buf[d]) != NULL && buf_len(b) == 0) {
		buf_free(b);
		r->buf[d] = NULL;
	}
	pump_pass_fin(c, d, dst);
	return 0;
}

/* Both directions done: the one close path. */
int
pump_done(struct conn *c)
{
	struct relay *r = c->mode;

	if (!r->shut[C2B] || !r->shut[B2C])
		return 0;
	conn_close(c, r->first_eof == B2C ? CONN_BACKEND_EOF : CONN_CLIENT_EOF);
	return 1;
}

/* The client side. */
void
pump_client_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = (struct conn *)io;

	(void)loop;
	if (pump_move(c, C2B, revents & EV_READ) == -1)
		return;
	if ((revents & EV_WRITE) && pump_move(c, B2C, 0) == -1)
		return;
	if (!pump_done(c))
		pump_update(c);
}
