/*
 * check.c: active health checks, run by the master.
 *
 * Each backend of a listener with check_interval gets a timer.  A check
 * is a non-blocking connect within check_timeout; then, if configured, it
 * sends check_send and waits for an answer holding check_expect.  `rise`
 * passed checks in a row bring a down backend back; `fall` failed ones take
 * an up backend out.  Only changes are reported.  A backend in the
 * operator's maintenance has its timer stopped: it costs nothing and its
 * server sees no check until it is ready again.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "net.h"

struct hcheck {
	struct checks	*cs;
	uint32_t	 lsock;
	size_t		 idx;
	const struct listener_conf *lc;	/* borrowed from the config */
	const struct backend_conf *b;	/* borrowed from the config */
	int		 up;
	int		 maint;			/* stopped by the operator */
	int		 last;			/* -1 none yet, 0 failed, 1 passed */
	double		 last_at;		/* ev_now() of the last result */
	unsigned	 passed, failed;	/* in a row */
	int		 fd;			/* -1 between checks */
	ev_timer	 every, timeout;
	ev_io		 io;
	size_t		 sent;
	size_t		 rlen;
	char		 rbuf[1024];
};

/* The check in flight, if any, ends without a result. */
static void
check_abandon(struct hcheck *h)
{
	struct ev_loop *loop = h->cs->loop;

	ev_io_stop(loop, &h->io);
	ev_timer_stop(loop, &h->timeout);
	if (h->fd != -1)
		close(h->fd);
	h->fd = -1;
}

static void
check_done(struct hcheck *h, const char *failure)
{
	char a[NET_ADDRSTRLEN];

	check_abandon(h);
	h->last = failure == NULL;
	h->last_at = ev_now(h->cs->loop);
	net_addr_str((const struct sockaddr *)&h->b->addr.ss, a, sizeof(a));
	if (failure == NULL) {
		h->failed = 0;
		if (!h->up && ++h->passed >= h->lc->rise) {
			h->up = 1;
			log_notice("listener %s: backend %s is up (%u checks passed)",
			    h->lc->name, a, h->passed);
			h->cs->changed(h->cs->arg, h->lsock, h->idx, 1);
		}
		return;
	}
	h->passed = 0;
	log_debug("listener %s: check of %s failed: %s", h->lc->name, a, failure);
	if (h->up && ++h->failed >= h->lc->fall) {
		h->up = 0;
		log_warnx("listener %s: backend %s is down (%u checks failed, last: %s)",
		    h->lc->name, a, h->failed, failure);
		h->cs->changed(h->cs->arg, h->lsock, h->idx, 0);
	}
}

static void
check_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents;
	check_done(t->data, "timed out");
}

static void
check_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct hcheck *h = io->data;
	const struct listener_conf *lc = h->lc;
	socklen_t len = sizeof(int);
	int err = 0;
	ssize_t n;

	if (revents & EV_WRITE) {
		if (h->sent == 0 && (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0)) {
			check_done(h, strerror(err != 0 ? err : errno));
			return;
		}
		if (h->sent < lc->check_send_len) {
			n = send(h->fd, lc->check_send + h->sent, lc->check_send_len - h->sent,
			    MSG_NOSIGNAL);
			if (n == -1 && errno != EAGAIN) {
				check_done(h, strerror(errno));
				return;
			}
			if (n > 0)
				h->sent += n;
			if (h->sent < lc->check_send_len)
				return;
		}
		h->sent = h->sent == 0 ? 1 : h->sent;	/* connected */
		if (lc->check_expect == NULL) {
			check_done(h, NULL);
			return;
		}
		ev_io_stop(loop, io);
		ev_io_set(io, h->fd, EV_READ);
		ev_io_start(loop, io);
		return;
	}
	n = read(h->fd, h->rbuf + h->rlen, sizeof(h->rbuf) - 1 - h->rlen);
	if (n == -1) {
		if (errno != EAGAIN)
			check_done(h, strerror(errno));
		return;
	}
	h->rlen += n;
	if (memmem(h->rbuf, h->rlen, lc->check_expect, lc->check_expect_len) != NULL)
		check_done(h, NULL);
	else if (n == 0 || h->rlen == sizeof(h->rbuf) - 1)
		check_done(h, "answer lacks check_expect");
}

static void
check_every_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct hcheck *h = t->data;
	const struct addr *a = &h->b->addr;

	(void)revents;
	if (h->fd != -1)
		return;		/* the last one has not finished */
	h->sent = h->rlen = 0;
	if ((h->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		check_done(h, strerror(errno));
		return;
	}
	if (connect(h->fd, (const struct sockaddr *)&a->ss, a->len) == -1 &&
	    errno != EINPROGRESS) {
		check_done(h, strerror(errno));
		return;
	}
	ev_io_set(&h->io, h->fd, EV_WRITE);
	ev_io_start(loop, &h->io);
	ev_timer_set(&h->timeout, h->lc->check_timeout_ms / 1000.0, 0.);
	ev_timer_start(loop, &h->timeout);
}

int
checks_add(struct checks *cs, uint32_t lsock, const struct listener_conf *lc)
{
	struct hcheck **v;

	if (lc->mode != MODE_PROXY || lc->check_interval_ms == 0)
		return 0;
	for (size_t i = 0; i < lc->nbackends; i++) {
		struct hcheck *h;

		if ((h = calloc(1, sizeof(*h))) == NULL ||
		    (v = realloc(cs->v, (cs->n + 1) * sizeof(*v))) == NULL) {
			free(h);
			return -1;
		}
		cs->v = v;
		cs->v[cs->n++] = h;
		h->cs = cs;
		h->lsock = lsock;
		h->idx = i;
		h->lc = lc;
		h->b = &lc->backends[i];
		h->up = 1;
		h->last = -1;
		h->fd = -1;
		ev_init(&h->io, check_io_cb);
		h->io.data = h;
		ev_init(&h->timeout, check_timeout_cb);
		h->timeout.data = h;
		/* The first check runs at once, the rest every interval. */
		ev_timer_init(&h->every, check_every_cb, 0., lc->check_interval_ms / 1000.0);
		h->every.data = h;
		ev_timer_start(cs->loop, &h->every);
	}
	return 0;
}

void
checks_clear(struct checks *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		struct hcheck *h = cs->v[i];

		ev_timer_stop(cs->loop, &h->every);
		check_abandon(h);
		free(h);
	}
	free(cs->v);
	cs->v = NULL;
	cs->n = 0;
}

void
checks_each_down(const struct checks *cs,
    void (*fn)(void *arg, uint32_t lsock, size_t idx), void *arg)
{
	for (size_t i = 0; i < cs->n; i++)
		if (!cs->v[i]->up)
			fn(arg, cs->v[i]->lsock, cs->v[i]->idx);
}

/* O(n) over every checked backend: called per operator command or view. */
static struct hcheck *
checks_find(const struct checks *cs, uint32_t lsock, size_t idx)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i]->lsock == lsock && cs->v[i]->idx == idx)
			return cs->v[i];
	return NULL;
}

int
checks_state(const struct checks *cs, uint32_t lsock, size_t idx,
    struct check_state *st)
{
	const struct hcheck *h;

	if ((h = checks_find(cs, lsock, idx)) == NULL)
		return -1;
	st->up = h->up;
	st->maint = h->maint;
	st->last = h->last;
	st->at = h->last < 0 ? 0 : h->last_at;
	return 0;
}

int
checks_maint(struct checks *cs, uint32_t lsock, size_t idx, int on)
{
	struct hcheck *h;
	char a[NET_ADDRSTRLEN];

	if ((h = checks_find(cs, lsock, idx)) == NULL)
		return -1;
	if ((on != 0) == h->maint)
		return 0;
	h->maint = on != 0;
	net_addr_str((const struct sockaddr *)&h->b->addr.ss, a, sizeof(a));
	if (h->maint) {
		ev_timer_stop(cs->loop, &h->every);
		check_abandon(h);
		log_info("listener %s: backend %s: checks stopped (maintenance)",
		    h->lc->name, a);
		return 0;
	}
	h->passed = h->failed = 0;
	log_info("listener %s: backend %s: checks start again", h->lc->name, a);
	ev_timer_set(&h->every, 0., h->lc->check_interval_ms / 1000.0);
	ev_timer_start(cs->loop, &h->every);
	if (!h->up) {
		h->up = 1;
		cs->changed(cs->arg, h->lsock, h->idx, 1);
	}
	return 0;
}
