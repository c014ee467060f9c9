/*
 * echo.c: echo mode: send back every byte received, in order.
 *
 * Bytes are read into the worker's scratch buffer and written straight
 * back; only what the client does not take at once is copied into a
 * buffer of the connection's own (at most buffer_size, freed as soon as it
 * drains).  While that buffer is full the client is not read, so a client
 * that sends without reading costs buffer_size and no more.
 *
 * Echo keeps no state beyond struct conn: its ops have no free and no
 * summary.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "echo.h"
#include "log.h"

/* Write what is pending.  Returns 0, or -1 when the connection is gone. */
static int
echo_flush(struct conn *c)
{
	ssize_t n;

	while (c->buf != NULL) {
		n = write(c->io.fd, buf_rptr(c->buf), buf_len(c->buf));
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			conn_close(c, errno == EPIPE || errno == ECONNRESET ?
			    CONN_CLIENT_RESET : CONN_ERROR);
			return -1;
		}
		c->out += n;
		stats_add(&c->cl->st->bytes_out, n);
		buf_consume(c->buf, n);
		if (buf_len(c->buf) == 0) {
			buf_free(c->buf);
			c->buf = NULL;
		}
	}
	return 0;
}

/* Read once.  Returns 0, or -1 when the connection is gone. */
static int
echo_read(struct conn *c)
{
	struct conn_pool *pool = c->cl->pool;
	size_t size = c->cl->conf->buffer_size;
	ssize_t n, sent;
	char *dst;

	if (c->buf != NULL && buf_space(c->buf) == 0)
		return 0;	/* full: the client waits (backpressure) */
	dst = c->buf != NULL ? buf_wptr(c->buf) : pool->scratch;
	n = read(c->io.fd, dst, c->buf != NULL ? buf_space(c->buf) : size);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		conn_close(c, errno == ECONNRESET ? CONN_CLIENT_RESET : CONN_ERROR);
		return -1;
	}
	if (n == 0) {
		c->eof = 1;
		return 0;
	}
	c->in += n;
	stats_add(&c->cl->st->bytes_in, n);
	conn_touch(c);
	if (c->buf != NULL) {
		buf_produce(c->buf, n);
		return 0;
	}
	/* Nothing pending: answer straight from the scratch buffer. */
	sent = write(c->io.fd, dst, n);
	if (sent == -1) {
		if (errno != EAGAIN && errno != EINTR) {
			conn_close(c, errno == EPIPE || errno == ECONNRESET ?
			    CONN_CLIENT_RESET : CONN_ERROR);
			return -1;
		}
		sent = 0;
	}
	c->out += sent;
	stats_add(&c->cl->st->bytes_out, sent);
	if (sent < n) {
		if ((c->buf = buf_new(size)) == NULL) {
			conn_close(c, CONN_ERROR);
			return -1;
		}
		buf_append(c->buf, dst + sent, n - sent);
	}
	return 0;
}

static void
echo_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = (struct conn *)io;
	int want;

	if ((revents & EV_READ) && echo_read(c) == -1)
		return;
	if (c->buf != NULL) {
		if (echo_flush(c) == -1)
			return;
		if (revents & EV_WRITE)
			conn_touch(c);
	}
	if (c->eof && c->buf == NULL) {
		conn_close(c, CONN_CLIENT_EOF);
		return;
	}
	want = 0;
	if (!c->eof && (c->buf == NULL || buf_space(c->buf) > 0))
		want |= EV_READ;
	if (c->buf != NULL)
		want |= EV_WRITE;
	if (want != (io->events & (EV_READ | EV_WRITE))) {
		ev_io_stop(loop, io);
		ev_io_set(io, io->fd, want);
		ev_io_start(loop, io);
	}
}

static void
echo_start(struct conn *c, const struct proxy_hdr *h)
{
	(void)h;
	/* Bytes that came with the PROXY header are echoed first. */
	ev_io_set(&c->io, c->io.fd, c->buf != NULL ? EV_READ | EV_WRITE : EV_READ);
	ev_set_cb(&c->io, echo_io_cb);
	ev_io_start(c->cl->pool->loop, &c->io);
}

const struct mode_ops echo_ops = {
	.start = echo_start,
};
