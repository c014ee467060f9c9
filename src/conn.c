/*
 * conn.c: connection lifecycle: accept-time setup, the idle timeout and the
 * one close path.  Knows no mode and no worker by name: a mode is reached
 * through its listener's mode_ops, the worker through the pool's closed
 * hook (conn.h).
 *
 * Idle timeouts: all connections of a listener share one timeout, so the
 * listener keeps them in a queue ordered by last activity and runs a single
 * timer for the head, instead of one timer per connection.  Connections
 * still reading a PROXY header wait in a second queue, ordered by accept
 * time, with a timer of its own.
 *
 * Admission: acl.c decides at accept, before the connection exists (a
 * refused one costs no allocation), and again once a PROXY header named
 * the client; the close path gives back what the connection counted.
 *
 * Statistics: each connection is counted in the worker's slot of the
 * shared region (stats.h) as it opens and as it closes, by reason; the
 * modes count its bytes as they move, so a long connection shows them
 * before it ends.  Relaxed atomic adds to memory no other process writes:
 * no lock, no system call.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "net.h"
#include "proxyproto.h"


/*
 * A queue's timer, idle (conns) or PROXY header (hdrq): close the
 * connections at the head of its queue that have been there for its
 * timeout or longer; re-arm it for the next one.
 */
static void
conn_expire_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn_listen *cl = t->data;
	int idle = t == &cl->idle;
	struct connq *q = idle ? &cl->conns : &cl->hdrq;
	ev_tstamp timeout = (idle ? cl->conf->idle_ms : cl->conf->proxy_timeout_ms) / 1000.0;
	enum conn_reason why = idle ? CONN_IDLE_TIMEOUT : CONN_PROXY_TIMEOUT;
	ev_tstamp now = ev_now(loop);
	struct conn *c;

	(void)revents;
	while ((c = TAILQ_FIRST(q)) != NULL && c->last + timeout <= now)
		conn_close(c, why);
	if (c != NULL) {
		ev_timer_set(t, c->last + timeout - now, 0.);
		ev_timer_start(loop, t);
	}
}

void
conn_listen_init(struct conn_listen *cl, struct conn_pool *pool,
    const struct listener_conf *conf)
{
	cl->conf = conf;
	cl->pool = pool;
	TAILQ_INIT(&cl->conns);
	TAILQ_INIT(&cl->hdrq);
	ev_timer_init(&cl->idle, conn_expire_cb, 0., 0.);
	cl->idle.data = cl;
	ev_timer_init(&cl->hdr_timer, conn_expire_cb, 0., 0.);
	cl->hdr_timer.data = cl;
}

static void
queue_insert(struct ev_loop *loop, struct connq *q, ev_timer *t,
    unsigned timeout_ms, struct conn *c)
{
	TAILQ_INSERT_TAIL(q, c, q);
	if (timeout_ms > 0 && !ev_is_active(t)) {
		ev_timer_set(t, timeout_ms / 1000.0, 0.);
		ev_timer_start(loop, t);
	}
}

static void
queue_remove(struct ev_loop *loop, struct connq *q, ev_timer *t, struct conn *c)
{
	TAILQ_REMOVE(q, c, q);
	if (TAILQ_EMPTY(q))
		ev_timer_stop(loop, t);
}

/*
 * The connection is the client's now: its mode serves it.  h: the PROXY
 * header the client sent, NULL when none.
 */
static void
conn_begin(struct conn *c, const struct proxy_hdr *h)
{
	struct conn_listen *cl = c->cl;

	c->last = ev_now(cl->pool->loop);
	queue_insert(cl->pool->loop, &cl->conns, &cl->idle, cl->conf->idle_ms, c);
	cl->ops->start(c, h);
}

/*
 * A refused PROXY header most likely means that the load balancer in front
 * is misconfigured, which the operator must see at the default level; a
 * flood of them (a scanner, a client that bypasses the balancer) must not
 * fill a disk: a warning at most once a second per listener and worker,
 * with the count of those held back, which go to the info level instead.
 */
static void
conn_bad_header(struct conn *c, const char *why)
{
	struct conn_listen *cl = c->cl;
	char addr[NET_ADDRSTRLEN], more[LOG_HELD_MAX];
	unsigned long held;

	if (log_verbosity > LOGL_WARNING)
		return;
	net_addr_str(&c->peer.sa, addr, sizeof(addr));
	if (!log_rate_ok(&cl->bad_hdr_log, ev_now(cl->pool->loop), 1.0, &held))
		log_info("listener %s: bad PROXY header from %s: %s",
		    cl->conf->name, addr, why);
	else
		log_warnx("listener %s: bad PROXY header from %s: %s%s",
		    cl->conf->name, addr, why, log_held(held, more, sizeof(more)));
}

/* accept_proxy: read until the PROXY header is complete. */
static void
conn_header_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = (struct conn *)io;
	struct conn_listen *cl = c->cl;
	struct proxy_hdr h;
	const char *why;
	ssize_t n;
	int len;

	(void)revents;
	if (c->buf == NULL && (c->buf = buf_new(cl->conf->buffer_size)) == NULL) {
		conn_close(c, CONN_ERROR);
		return;
	}
	n = read(io->fd, buf_wptr(c->buf), buf_space(c->buf));
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c, errno == ECONNRESET ? CONN_CLIENT_RESET : CONN_ERROR);
		return;
	}
	if (n == 0) {		/* closed before the header was complete */
		conn_close(c, CONN_BAD_PROXY_HEADER);
		return;
	}
	buf_produce(c->buf, n);
	c->in += n;
	if ((len = proxy_parse(buf_rptr(c->buf), buf_len(c->buf), &h, &why)) == 0)
		return;		/* more to come, within proxy_timeout */
	if (len == -1) {
		conn_bad_header(c, why);
		conn_close(c, CONN_BAD_PROXY_HEADER);
		return;
	}
	c->in -= len;		/* the header is not the client's data */
	stats_add(&cl->st->bytes_in, c->in);	/* what came with it is */
	buf_consume(c->buf, len);
	if (buf_len(c->buf) == 0) {
		buf_free(c->buf);
		c->buf = NULL;
	}
	if (!h.local && h.src.ss_family != AF_UNSPEC &&
	    sizeof(h.src) >= sizeof(c->peer))
		memcpy(&c->peer, &h.src, sizeof(c->peer));
	if (acl_client(&cl->acl, &c->peer.sa, c->hold, ev_now(loop)) == -1) {
		conn_close(c, CONN_REFUSED);
		return;
	}
	ev_io_stop(loop, io);
	queue_remove(loop, &cl->hdrq, &cl->hdr_timer, c);
	c->in_hdrq = 0;
	conn_begin(c, &h);	/* a backend gets the header as it came */
}

struct conn *
conn_new(struct conn_listen *cl, int fd, const struct sockaddr *peer,
    socklen_t peerlen)
{
	struct conn_pool *pool = cl->pool;
	enum acl_step step;
	struct conn *c;
	uint32_t hold;

	if ((step = acl_accept(&cl->acl, peer, &hold, ev_now(pool->loop))) == ACL_REFUSED) {
		net_close_reset(fd);
		errno = EACCES;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		acl_leave(&cl->acl, hold);
		pool->errors++;
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	c->cl = cl;
	c->hold = hold;
	c->start = c->last = ev_now(pool->loop);
	if (peerlen <= sizeof(c->peer))
		memcpy(&c->peer, peer, peerlen);
	ev_io_init(&c->io, conn_header_cb, fd, EV_READ);	/* the mode sets its own */
	pool->nconns++;
	pool->accepted++;
	stats_add(&pool->st->accepts, 1);
	stats_add(&pool->st->conns, 1);
	stats_add(&cl->st->accepted, 1);
	stats_add(&cl->st->active, 1);
	if (step == ACL_HEADER) {
		c->in_hdrq = 1;
		ev_io_start(pool->loop, &c->io);
		queue_insert(pool->loop, &cl->hdrq, &cl->hdr_timer,
		    cl->conf->proxy_timeout_ms, c);
	} else
		conn_begin(c, NULL);
	return c;
}

void
conn_touch(struct conn *c)
{
	struct conn_listen *cl = c->cl;

	c->last = ev_now(cl->pool->loop);
	if (TAILQ_NEXT(c, q) != NULL) {
		TAILQ_REMOVE(&cl->conns, c, q);
		TAILQ_INSERT_TAIL(&cl->conns, c, q);
	}
}

/*
 * The summary line: "close listener=... client=... [the mode's fields]
 * in=N out=N duration=S reason=R" in text, the same fields in JSON.
 */
static void
conn_summary(const struct conn *c, enum conn_reason why)
{
	struct conn_listen *cl = c->cl;
	char addr[NET_ADDRSTRLEN], mode[NET_ADDRSTRLEN + 16];
	struct log_field f[12];
	size_t n = 0;

	f[n++] = LOGKV_STR("listener", cl->conf->name);
	f[n++] = LOGKV_STR("client", net_addr_str(&c->peer.sa, addr, sizeof(addr)));
	if (cl->ops->summary != NULL)
		n += cl->ops->summary(c, f + n, sizeof(f) / sizeof(f[0]) - 4 - n,
		    mode, sizeof(mode));
	f[n++] = LOGKV_UINT("in", c->in);
	f[n++] = LOGKV_UINT("out", c->out);
	f[n++] = LOGKV_SECS("duration", ev_now(cl->pool->loop) - c->start);
	f[n++] = LOGKV_STR("reason", reason_name(why));
	log_kv(LOGL_INFO, "close", f, n);
}

void
conn_close(struct conn *c, enum conn_reason why)
{
	struct conn_listen *cl = c->cl;
	struct conn_pool *pool = cl->pool;

	if (log_verbosity <= LOGL_INFO)
		conn_summary(c, why);
	pool->bytes_in += c->in;
	pool->bytes_out += c->out;
	stats_add(&cl->st->closed[why], 1);
	stats_sub(&cl->st->active, 1);
	stats_sub(&pool->st->conns, 1);
	if (why == CONN_BAD_PROXY_HEADER || why == CONN_PROXY_TIMEOUT)
		stats_add(&cl->st->proxy_rejected, 1);
	if (why == CONN_ERROR || why == CONN_CONNECT_FAILED ||
	    why == CONN_CONNECT_TIMEOUT || why == CONN_NO_BACKEND)
		pool->errors++;
	ev_io_stop(pool->loop, &c->io);
	close(c->io.fd);
	if (c->mode != NULL)
		cl->ops->free(c);
	if (c->in_hdrq)
		queue_remove(pool->loop, &cl->hdrq, &cl->hdr_timer, c);
	else
		queue_remove(pool->loop, &cl->conns, &cl->idle, c);
	buf_free(c->buf);
	acl_leave(&cl->acl, c->hold);
	free(c);
	pool->nconns--;
	pool->closed(pool->closed_arg);
}

void
conn_close_all(struct conn_listen *cl, enum conn_reason why)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&cl->hdrq)) != NULL)
		conn_close(c, why);
	while ((c = TAILQ_FIRST(&cl->conns)) != NULL)
		conn_close(c, why);
}
