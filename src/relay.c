/*
 * relay.c: proxy mode.  Owns a connection's relay from start to free: the
 * choice of backend, the connect, its timeout and the retries, the PROXY
 * header sent ahead of the client's bytes, the summary, and the backend's
 * counters in the statistics (open, established, failed, retried, the
 * connect time).  Once the
 * backend is connected, pump.c moves the bytes both ways; this file calls
 * it, never the other way round.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "net.h"
#include "proxyproto.h"
#include "pump.h"
#include "relay.h"
#include "upstream.h"

static void	relay_backend_cb(struct ev_loop *, ev_io *, int);
static void	relay_connect(struct conn *c);
static void	relay_retry(struct conn *c, int err);

/*
 * A connection to backend up begins / ends: its count for balancing and
 * its gauge in the statistics, which cover connects in progress too.
 */
static void
relay_hold(struct conn_listen *cl, int up)
{
	cl->ups.u[up].conns++;
	stats_add(&cl->ups.st[up].active, 1);
}

static void
relay_release(struct conn_listen *cl, int up)
{
	cl->ups.u[up].conns--;
	stats_sub(&cl->ups.st[up].active, 1);
}

static unsigned
relay_rand(void *arg)
{
	(void)arg;
	return (unsigned)random();
}

static size_t
relay_summary(const struct conn *c, struct log_field *f, size_t n, char *buf,
    size_t len)
{
	const struct relay *r = c->mode;

	if (n < 2)
		return 0;
	if (r == NULL || r->up < 0) {
		f[0] = LOGKV_NONE("backend");
		f[1] = LOGKV_NONE("connect");
		return 2;
	}
	f[0] = LOGKV_STR("backend", net_addr_str(
	    (const struct sockaddr *)&c->cl->ups.u[r->up].conf->addr.ss, buf, len));
	f[1] = r->connect_time >= 0 ? LOGKV_SECS("connect", r->connect_time) :
	    LOGKV_NONE("connect");
	return 2;
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
	relay_release(cl, r->up);
	stats_add(&cl->ups.st[r->up].connect_failures, 1);
	if (upstream_failed(&cl->ups, r->up, ev_now(loop)))
		log_warnx("listener %s: backend %s marked down for %u ms after %u failed connects",
		    cl->conf->name,
		    net_addr_str((const struct sockaddr *)&cl->ups.u[r->up].conf->addr.ss,
		    a, sizeof(a)), cl->conf->fail_ms, cl->conf->max_fails);
	r->last_err = err;
	if (r->retries > 0) {
		r->retries--;
		stats_add(&cl->ups.st[r->up].retries, 1);
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
			log_warnx_rate(&cl->nobackend_log, ev_now(loop),
			    "listener %s: no backend up; closing clients", cl->conf->name);
			conn_close(c, CONN_NO_BACKEND);
		} else		/* every usable backend was tried */
			conn_close(c, r->last_err == ETIMEDOUT ?
			    CONN_CONNECT_TIMEOUT : CONN_CONNECT_FAILED);
		return;
	}
	r->up = up;
	r->tried |= (uint64_t)1 << up;
	relay_hold(cl, up);
	a = &cl->ups.u[up].conf->addr;
	r->connect_start = ev_now(loop);
	if ((fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		relay_release(cl, up);
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
	pump_update(c);
}

/* A connect to backend up took secs: count it and its time. */
static void
relay_count_connect(struct conn_listen *cl, int up, double secs)
{
	struct stats_bcount *st = &cl->ups.st[up];

	stats_add(&st->total, 1);
	stats_add(&st->connect_hist[stats_hist_bucket(secs)], 1);
	stats_add(&st->connect_usec, secs > 0 ? (uint64_t)(secs * 1e6) : 0);
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
	ev_set_cb(&c->io, pump_client_cb);
	c->io.events = 0;	/* pump_update sets and starts it */
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
		relay_release(cl, r->up);
	}
	pump_pipe_close(c, C2B);
	pump_pipe_close(c, B2C);
	buf_free(r->buf[C2B]);
	buf_free(r->buf[B2C]);
	free(r);
	c->mode = NULL;
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
		relay_count_connect(c->cl, r->up, r->connect_time);
		revents = EV_WRITE;
	}
	if (pump_move(c, B2C, revents & EV_READ) == -1)
		return;
	if (pump_move(c, C2B, 0) == -1)
		return;
	if (!pump_done(c))
		pump_update(c);
}

const struct mode_ops relay_ops = {
	.start = relay_start,
	.free = relay_free,
	.summary = relay_summary,
};
