/*
 * worker.c: the worker process.  Owns its libev loop, its end of the
 * channel, its copies of the listen sockets and every connection it
 * accepted.
 *
 * A worker accepts only when the master says so.  ACCEPT grants a lease on
 * one listen socket: the worker accepts what is waiting and watches the
 * socket in its own loop until the lease ends, then answers ACCEPTED with
 * what it took.  A lease that found a single connection ends after the
 * next loop iteration brings none, so at low rates a lease is one
 * connection and the master's round-robin is exact.  A lease that found
 * connections queuing (two or more), or that the master marked busy
 * because the last lease on that socket did, lasts until LEASE_IDLE passes
 * without a new one, so under a flood one round trip covers up to
 * LEASE_MAX connections and the master's cost per connection stays small.
 * ACCEPT may also carry a cap on the connections the lease takes
 * (dispatch.c), which ends it early so that a burst is spread.  A
 * lease that ran out of room while ACCEPT_BATCH or more were still waiting
 * says so (CHAN_F_MORE): one lease at a time does not keep up, and the
 * master lets one more worker hold a lease at the same time.  Running out
 * of room is not enough by itself: every worker with a lease on the same
 * socket is woken by every new connection and all but one find nothing,
 * which costs more than the master's round trip that one lease at a time
 * needs.
 *
 * With dispatch = reuseport the worker has a socket of its own for each
 * listener and accepts whenever it is readable and there is room; with
 * handoff it has no listen socket at all and serves the connections the
 * master passes it (CONN).  docs/design.md compares the three.
 *
 * It never blocks and never spins: EMFILE pauses accepting for a while and
 * the master is told, so it offers this worker nothing meanwhile.
 *
 * About 630 lines, a little over the house's 600: the lease, the channel's
 * orders and the accept paths of the three dispatch methods all read and
 * change the same worker state (lease, pause, full, draining), and apart
 * they would share it through a header of their own for one caller.
 */
#include <sys/prctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "conn.h"
#include "echo.h"
#include "log.h"
#include "net.h"
#include "relay.h"
#include "worker.h"

#define ACCEPT_BATCH	16	/* accept() calls per callback at most */
#define LEASE_MAX	64	/* connections per lease at most */
#define LEASE_IDLE	0.001	/* a busy lease ends this long after its last accept */
#define HEARTBEAT_SECS	1.0

static void	worker_lease_end(struct worker *w);
static void	worker_own_start(struct worker *w);

static uint8_t
worker_flags(const struct worker *w)
{
	return (w->full ? CHAN_F_FULL : 0) | (w->paused ? CHAN_F_PAUSED : 0);
}

static void
worker_send(struct worker *w, struct chan_msg *m)
{
	if (m->type != CHAN_ACCEPTED)
		m->count = w->handed;
	m->conns = w->pool.nconns;
	m->flags |= worker_flags(w);
	/* EAGAIN: the master is behind; the next heartbeat carries the state. */
	if (chan_send(w->chan, m) == -1 && errno != EAGAIN)
		log_debug("channel send %s: %s", chan_type_name(m->type), strerror(errno));
}

static void
worker_send_state(struct worker *w)
{
	struct chan_msg m = { .type = CHAN_STATE };

	worker_send(w, &m);
}

static void
worker_close_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->nls; i++)
		if (w->ls[i].fd != -1) {
			ev_io_stop(w->loop, &w->ls[i].lease_io);
			close(w->ls[i].fd);
			w->ls[i].fd = -1;
		}
}

/* Close every connection and leave the loop. */
static void
worker_finish(struct worker *w, enum conn_reason why)
{
	if (w->lease != NULL)
		worker_lease_end(w);
	for (size_t i = 0; i < w->nls; i++)
		conn_close_all(&w->ls[i].cl, why);
	ev_break(w->loop, EVBREAK_ALL);
}

static void
worker_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	(void)loop, (void)revents;
	log_notice("drain deadline reached, closing %u connections", w->pool.nconns);
	worker_finish(w, CONN_DRAIN_DEADLINE);
}

static void
worker_drain(struct worker *w, unsigned timeout_ms)
{
	if (w->draining)
		return;
	w->draining = 1;
	if (w->lease != NULL)
		worker_lease_end(w);
	worker_close_listeners(w);
	ev_timer_stop(w->loop, &w->pause);
	w->paused = 0;
	log_info("draining %u connections (deadline %u ms)", w->pool.nconns, timeout_ms);
	if (w->pool.nconns == 0) {
		ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	ev_timer_set(&w->deadline, timeout_ms / 1000.0, 0.);
	ev_timer_start(w->loop, &w->deadline);
}

/* The pool's closed hook: update the state the master sees. */
static void
worker_conn_closed(void *arg)
{
	struct worker *w = arg;

	if (w->draining) {
		if (w->pool.nconns == 0)
			ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	if (w->paused) {
		/* A descriptor came free: try again at once. */
		ev_timer_stop(w->loop, &w->pause);
		w->paused = 0;
		worker_send_state(w);
		worker_own_start(w);
	} else if (w->full && w->pool.nconns < w->cfg->max_connections) {
		w->full = 0;
		worker_send_state(w);
		worker_own_start(w);
	}
}

static void
worker_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	(void)loop, (void)revents;
	w->paused = 0;
	worker_send_state(w);
	worker_own_start(w);
}

static void
worker_pause(struct worker *w, int err)
{
	w->pool.errors++;
	log_warnx_rate(&w->emfile_log, ev_now(w->loop), "accept: %s; pausing accepts",
	    strerror(err));
	w->paused = 1;
	ev_timer_set(&w->pause, ACCEPT_PAUSE_SECS, 0.);
	ev_timer_start(w->loop, &w->pause);
}

/* Accept up to max connections waiting on wl, while there is room. */
static unsigned
worker_take(struct worker *w, struct wlisten *wl, unsigned max)
{
	struct sockaddr_storage ss;
	unsigned n = 0;
	socklen_t len;
	int fd;

	while (n < max && w->pool.nconns < w->cfg->max_connections && !w->paused) {
		len = sizeof(ss);
		fd = accept4(wl->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (net_accept_starved(errno))
				worker_pause(w, errno);
			else if (errno != EAGAIN) {
				w->pool.errors++;
				log_warn("accept on %s", wl->cl.conf->name);
			}
			break;
		}
		/* A refused one counts: it took an accept all the same. */
		if (conn_new(&wl->cl, fd, (struct sockaddr *)&ss, len) == NULL &&
		    errno != EACCES)
			log_warn("connection on %s", wl->cl.conf->name);
		n++;
	}
	w->full = w->pool.nconns >= w->cfg->max_connections;
	return n;
}

/* Room left in the lease. */
static unsigned
worker_lease_room(const struct worker *w)
{
	return w->lease_count < w->lease_max ? w->lease_max - w->lease_count : 0;
}

/* Accept what is waiting on the leased socket, ACCEPT_BATCH at most. */
static void
worker_lease_take(struct worker *w)
{
	unsigned room = worker_lease_room(w);
	unsigned n = worker_take(w, w->lease, room < ACCEPT_BATCH ? room : ACCEPT_BATCH);

	w->lease_count += n;
	if (n > 0) {
		w->lease_progress = 1;
		/* A busy lease, or one that became busy: restart its idle timer. */
		if (w->lease_count > 1 || ev_is_active(&w->lease_timer))
			ev_timer_again(w->loop, &w->lease_timer);
	}
}

/* Give the lease back: ACCEPTED with what it took. */
static void
worker_lease_end(struct worker *w)
{
	struct chan_msg m = { .type = CHAN_ACCEPTED };
	struct wlisten *wl = w->lease;

	ev_io_stop(w->loop, &wl->lease_io);
	ev_idle_stop(w->loop, &w->lease_idle);
	ev_check_stop(w->loop, &w->lease_check);
	ev_timer_stop(w->loop, &w->lease_timer);
	m.lsock = wl->id;
	m.seq = w->lease_seq;
	m.count = w->lease_count;
	if (worker_lease_room(w) == 0 && net_listen_queued(wl->fd) >= ACCEPT_BATCH)
		m.flags |= CHAN_F_MORE;
	w->lease = NULL;
	worker_send(w, &m);
}

static int
worker_lease_over(const struct worker *w)
{
	return worker_lease_room(w) == 0 || w->full || w->paused || w->draining;
}

static void
worker_lease_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ((struct wlisten *)io->data)->worker;

	(void)loop, (void)revents;
	worker_lease_take(w);
	if (worker_lease_over(w))
		worker_lease_end(w);
}

/*
 * After each loop iteration of a lease: a one-connection lease ends when
 * an iteration brought nothing; a busy one is left to its idle timer.
 */
static void
worker_lease_check_cb(struct ev_loop *loop, ev_check *c, int revents)
{
	struct worker *w = c->data;

	(void)revents;
	if (w->lease_count > 1) {
		ev_idle_stop(loop, &w->lease_idle);	/* the poll may block now */
		ev_check_stop(loop, c);
	} else if (!w->lease_progress)
		worker_lease_end(w);
	w->lease_progress = 0;
}

static void
worker_lease_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents;
	worker_lease_end(t->data);
}

static void
worker_lease_idle_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
	(void)loop, (void)i, (void)revents;	/* only keeps the poll from blocking */
}

static void
worker_accept(struct worker *w, uint32_t id, uint16_t seq, int busy, uint32_t limit)
{
	struct chan_msg m = { .type = CHAN_ACCEPTED, .lsock = id, .seq = seq };
	struct wlisten *wl = NULL;

	for (size_t i = 0; i < w->nls; i++)
		if (w->ls[i].id == id && w->ls[i].fd != -1)
			wl = &w->ls[i];
	if (wl == NULL || w->lease != NULL || w->draining || w->paused ||
	    w->pool.nconns >= w->cfg->max_connections) {
		worker_send(w, &m);	/* took nothing */
		return;
	}
	w->lease = wl;
	w->lease_seq = seq;
	w->lease_count = 0;
	w->lease_progress = 0;
	w->lease_max = limit != 0 && limit < LEASE_MAX ? limit : LEASE_MAX;
	worker_lease_take(w);
	if (worker_lease_over(w)) {
		worker_lease_end(w);
		return;
	}
	/*
	 * The check watcher first runs after the next poll: only what that
	 * iteration brings counts, or a client that reconnects as soon as it
	 * is served would keep one worker's lease alive.
	 */
	w->lease_progress = 0;
	ev_io_start(w->loop, &wl->lease_io);
	if (busy || w->lease_count > 1)
		ev_timer_again(w->loop, &w->lease_timer);
	else {
		ev_idle_start(w->loop, &w->lease_idle);
		ev_check_start(w->loop, &w->lease_check);
	}
}

/* reuseport: watch our own sockets while there is room. */
static void
worker_own_start(struct worker *w)
{
	if (w->cfg->dispatch != DISPATCH_REUSEPORT || w->draining || w->full || w->paused)
		return;
	for (size_t i = 0; i < w->nls; i++)
		if (w->ls[i].fd != -1)
			ev_io_start(w->loop, &w->ls[i].lease_io);
}

static void
worker_own_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct wlisten *wl = io->data;
	struct worker *w = wl->worker;

	(void)revents;
	worker_take(w, wl, ACCEPT_BATCH);
	if (w->full || w->paused) {
		for (size_t i = 0; i < w->nls; i++)
			ev_io_stop(loop, &w->ls[i].lease_io);
		worker_send_state(w);
	}
}

/* handoff: serve a connection the master accepted on listener id. */
static void
worker_handed(struct worker *w, uint32_t id, int fd)
{
	struct sockaddr_storage ss;
	struct wlisten *wl = NULL;
	socklen_t len = sizeof(ss);

	for (size_t i = 0; i < w->nls; i++)
		if (w->ls[i].id == id)
			wl = &w->ls[i];
	if (wl == NULL || w->pool.nconns >= w->cfg->max_connections ||
	    getpeername(fd, (struct sockaddr *)&ss, &len) == -1) {
		/* The master sent it before it read our last STATE. */
		log_debug("connection on listener %u refused: %s", id,
		    wl == NULL ? "no such listener" : w->pool.nconns >= w->cfg->max_connections ?
		    "max_connections reached" : strerror(errno));
		w->pool.errors++;
		close(fd);
		return;
	}
	if (conn_new(&wl->cl, fd, (struct sockaddr *)&ss, len) == NULL) {
		if (errno != EACCES)
			log_warn("connection on %s", wl->cl.conf->name);
		return;
	}
	if (!w->full && w->pool.nconns >= w->cfg->max_connections) {
		w->full = 1;
		worker_send_state(w);
	}
}

/* The master's health checks changed a backend's state. */
static void
worker_backend_state(struct worker *w, const struct chan_msg *m)
{
	for (size_t i = 0; i < w->nls; i++) {
		struct wlisten *wl = &w->ls[i];

		if (wl->id == m->lsock && m->count < wl->cl.ups.n)
			wl->cl.ups.u[m->count].checked_down = m->conns == 0;
	}
}

/*
 * The operator set a backend's state or weight.  Connections open to it
 * are not touched: drain and maint only keep new ones away.
 */
static void
worker_backend_admin(struct worker *w, const struct chan_msg *m)
{
	static const int state[] = {
		[CHAN_ADMIN_READY] = UPS_READY, [CHAN_ADMIN_DRAIN] = UPS_DRAIN,
		[CHAN_ADMIN_MAINT] = UPS_MAINT,
	};

	/* chan_decode() keeps conns and seq in range. */
	for (size_t i = 0; i < w->nls; i++) {
		struct wlisten *wl = &w->ls[i];

		if (wl->id == m->lsock &&
		    upstream_admin(&wl->cl.ups, m->count, state[m->conns], m->seq) == 0)
			log_debug("listener %s: backend %s: state %u, weight %u (operator)",
			    wl->cl.conf->name, wl->cl.ups.u[m->count].conf->spec,
			    m->conns, m->seq);
	}
}

static void
worker_chan_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = io->data;
	struct chan_msg m;
	uint32_t handed = w->handed;
	int rc, fd;

	(void)revents;
	for (int i = 0; i < 64; i++) {
		if ((rc = chan_recv_fd(w->chan, &m, &fd)) == -1 && errno == EMFILE) {
			w->handed++;	/* a CONN all the same, its connection lost */
			if (!w->paused) {
				worker_pause(w, EMFILE);
				worker_send_state(w);
			}
			continue;
		}
		if (rc == 0 ||
		    (rc == -1 && errno != EAGAIN && errno != EBADMSG)) {
			/* The master is gone: finish what we have and go. */
			log_notice("master gone, draining");
			ev_io_stop(loop, io);
			worker_drain(w, w->cfg->shutdown_ms);
			return;
		}
		if (rc == -1) {
			if (errno == EAGAIN)
				break;
			log_warnx("malformed message from the master");
			continue;
		}
		switch (m.type) {
		case CHAN_ACCEPT:
			worker_accept(w, m.lsock, m.seq, (m.flags & CHAN_F_MORE) != 0, m.conns);
			break;
		case CHAN_CONN:
			w->handed++;
			worker_handed(w, m.lsock, fd);
			break;
		case CHAN_DRAIN:
			worker_drain(w, m.timeout_ms);
			break;
		case CHAN_STOP:
			worker_finish(w, CONN_SHUTDOWN);
			return;
		case CHAN_BACKEND:
			worker_backend_state(w, &m);
			break;
		case CHAN_ADMIN:
			worker_backend_admin(w, &m);
			break;
		case CHAN_REOPEN:
			if (log_reopen() == -1)
				log_warn("reopening the log file");
			break;
		default:
			log_warnx("unexpected %s from the master", chan_type_name(m.type));
		}
	}
	/* handoff: say what we took, so the master counts what is on its way. */
	if (w->handed != handed)
		worker_send_state(w);
}

static void
worker_heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	struct chan_msg m = {
		.type = CHAN_HEARTBEAT, .accepted = w->pool.accepted,
		.bytes_in = w->pool.bytes_in, .bytes_out = w->pool.bytes_out,
		.errors = w->pool.errors,
	};

	(void)revents;
	worker_send(w, &m);
	for (size_t i = 0; i < w->nls; i++)
		upstream_marks(&w->ls[i].cl.ups, ev_now(loop));
}

/* Signals: the master gives orders over the channel, not by signal. */
static void
worker_signals(void)
{
	static const int ignored[] = {
		SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGPIPE,
	};
	struct sigaction sa;
	sigset_t all;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		sigaction(ignored[i], &sa, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

void
worker_main(const struct worker_spawn *sp)
{
	struct worker w;
	struct chan_msg hello = { .type = CHAN_HELLO };
	char title[16];

	worker_signals();
	/* Until the loop runs, a failure would meet a new worker too. */
	log_set_fatal_status(2);
	memset(&w, 0, sizeof(w));
	w.cfg = sp->cfg;
	w.slot = sp->slot;
	w.gen = sp->gen;
	w.chan = sp->chan;
	log_set_worker(w.slot, w.gen);
	srandom(getpid() ^ (unsigned)time(NULL));	/* balance = random */
	snprintf(title, sizeof(title), "preforkd w%d", w.slot);
	prctl(PR_SET_NAME, title);

	if ((w.loop = ev_loop_new(EVFLAG_AUTO)) == NULL)
		fatalx("cannot create the event loop");
	w.pool = (struct conn_pool){ .loop = w.loop, .closed = worker_conn_closed,
	    .closed_arg = &w, .st = sp->wstats };
	w.nls = sp->nls;
	if ((w.ls = calloc(w.nls, sizeof(*w.ls))) == NULL)
		fatal("listeners");
	if (clients_worker_init(sp->cg, sp->cslot) == -1)
		fatal("admission counts");
	for (size_t i = 0; i < w.nls; i++) {
		struct wlisten *wl = &w.ls[i];
		const struct listener_conf *lc = sp->confs[i];

		wl->id = sp->ids[i];
		wl->fd = sp->fds[i];
		wl->worker = &w;
		conn_listen_init(&wl->cl, &w.pool, lc);
		wl->cl.ops = lc->mode == MODE_PROXY ? &relay_ops : &echo_ops;
		wl->cl.st = sp->lstats[i];
		acl_init(&wl->cl.acl, lc, sp->cg, sp->lidx[i], sp->lstats[i]);
		if (lc->mode == MODE_PROXY && upstream_init(&wl->cl.ups, lc) == -1)
			fatal("backends of %s", lc->name);
		wl->cl.ups.st = sp->bstats[i];
		ev_io_init(&wl->lease_io, w.cfg->dispatch == DISPATCH_REUSEPORT ?
		    worker_own_cb : worker_lease_io_cb, wl->fd, EV_READ);
		wl->lease_io.data = wl;
		if (lc->buffer_size > w.scratch_size)
			w.scratch_size = lc->buffer_size;
	}
	if ((w.pool.scratch = malloc(w.scratch_size)) == NULL)
		fatal("scratch buffer");

	ev_io_init(&w.chan_io, worker_chan_cb, w.chan, EV_READ);
	w.chan_io.data = &w;
	ev_set_priority(&w.chan_io, EV_MAXPRI);
	ev_io_start(w.loop, &w.chan_io);
	ev_timer_init(&w.heartbeat, worker_heartbeat_cb, HEARTBEAT_SECS, HEARTBEAT_SECS);
	w.heartbeat.data = &w;
	ev_timer_start(w.loop, &w.heartbeat);
	ev_timer_init(&w.pause, worker_pause_cb, ACCEPT_PAUSE_SECS, 0.);
	w.pause.data = &w;
	ev_init(&w.lease_timer, worker_lease_timer_cb);
	w.lease_timer.repeat = LEASE_IDLE;
	w.lease_timer.data = &w;
	ev_idle_init(&w.lease_idle, worker_lease_idle_cb);
	ev_set_priority(&w.lease_idle, EV_MINPRI);
	ev_check_init(&w.lease_check, worker_lease_check_cb);
	ev_set_priority(&w.lease_check, EV_MINPRI);
	w.lease_check.data = &w;
	ev_timer_init(&w.deadline, worker_deadline_cb, 0., 0.);
	w.deadline.data = &w;

	log_debug("started");
	log_set_fatal_status(1);
	worker_send(&w, &hello);
	worker_own_start(&w);
	ev_run(w.loop, 0);

	/* Drained, stopped or told to go: everything is closed by now. */
	for (size_t i = 0; i < w.nls; i++)
		conn_close_all(&w.ls[i].cl, CONN_SHUTDOWN);
	worker_close_listeners(&w);
	for (size_t i = 0; i < w.nls; i++)
		upstream_fini(&w.ls[i].cl.ups);
	close(w.chan);
	free(w.pool.scratch);
	free(w.ls);
	ev_loop_destroy(w.loop);
	log_debug("exiting");
	exit(0);
}
