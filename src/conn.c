/*
 * conn.c: connection lifecycle: accept-time setup, the idle timeout and the
 * one close path.
 *
 * Idle timeouts: all connections of a listener share one timeout, so the
 * listener keeps them in a queue ordered by last activity and runs a single
 * timer for the head, instead of one timer per connection.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "net.h"

static const char *const reasons[] = {
	[CONN_CLIENT_EOF] = "client_eof",
	[CONN_CLIENT_RESET] = "client_reset",
	[CONN_IDLE_TIMEOUT] = "idle_timeout",
	[CONN_DRAIN_DEADLINE] = "drain_deadline",
	[CONN_SHUTDOWN] = "shutdown",
	[CONN_ERROR] = "error",
};

static void
conn_idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct wlisten *wl = t->data;
	ev_tstamp idle = wl->conf->idle_ms / 1000.0, now = ev_now(loop);
	struct conn *c;

	(void)revents;
	while ((c = TAILQ_FIRST(&wl->conns)) != NULL && c->last + idle <= now)
		conn_close(c, CONN_IDLE_TIMEOUT);
	if (c != NULL) {
		ev_timer_set(t, c->last + idle - now, 0.);
		ev_timer_start(loop, t);
	}
}

void
conn_idle_init(struct wlisten *wl)
{
	ev_timer_init(&wl->idle, conn_idle_cb, 0., 0.);
	wl->idle.data = wl;
}

struct conn *
conn_new(struct wlisten *wl, int fd, const struct sockaddr *peer,
    socklen_t peerlen)
{
	struct worker *w = wl->worker;
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return NULL;
	}
	c->wl = wl;
	c->start = c->last = ev_now(w->loop);
	if (peerlen <= sizeof(c->peer))
		memcpy(&c->peer, peer, peerlen);
	ev_io_init(&c->io, echo_io_cb, fd, EV_READ);
	ev_io_start(w->loop, &c->io);
	TAILQ_INSERT_TAIL(&wl->conns, c, q);
	if (wl->conf->idle_ms > 0 && !ev_is_active(&wl->idle)) {
		ev_timer_set(&wl->idle, wl->conf->idle_ms / 1000.0, 0.);
		ev_timer_start(w->loop, &wl->idle);
	}
	w->nconns++;
	w->accepted++;
	return c;
}

void
conn_touch(struct conn *c)
{
	struct wlisten *wl = c->wl;

	c->last = ev_now(wl->worker->loop);
	if (TAILQ_NEXT(c, q) != NULL) {
		TAILQ_REMOVE(&wl->conns, c, q);
		TAILQ_INSERT_TAIL(&wl->conns, c, q);
	}
}

void
conn_close(struct conn *c, enum conn_reason why)
{
	struct wlisten *wl = c->wl;
	struct worker *w = wl->worker;
	char addr[NET_ADDRSTRLEN];

	log_info("close listener=%s client=%s in=%llu out=%llu duration=%.3fs reason=%s",
	    wl->conf->name, net_addr_str(&c->peer.sa, addr, sizeof(addr)),
	    (unsigned long long)c->in, (unsigned long long)c->out,
	    ev_now(w->loop) - c->start, reasons[why]);
	if (why == CONN_ERROR)
		w->errors++;
	w->bytes_in += c->in;
	w->bytes_out += c->out;
	ev_io_stop(w->loop, &c->io);
	close(c->io.fd);
	TAILQ_REMOVE(&wl->conns, c, q);
	if (TAILQ_EMPTY(&wl->conns))
		ev_timer_stop(w->loop, &wl->idle);
	buf_free(c->buf);
	free(c);
	w->nconns--;
	worker_conn_closed(w);
}

void
conn_close_all(struct wlisten *wl, enum conn_reason why)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&wl->conns)) != NULL)
		conn_close(c, why);
}
