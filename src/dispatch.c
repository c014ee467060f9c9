/*
 * dispatch.c: who accepts next.
 *
 * Dispatch ("go accept"): the master watches every listen socket.  When one
 * is readable it sends ACCEPT, a lease on that socket, to the next eligible
 * worker in round-robin order and stops watching the socket until the
 * lease comes back (libev is level-triggered: watching on would spin until
 * the accept happened).  worker.c says how long a lease lasts.  A lease
 * also ends once its worker has taken the slack more connections than the
 * worker that took fewest, and a worker already there is passed over (a
 * deficit round-robin), so a burst is spread rather than taken by one
 * lease.  The slack follows the rate: a quarter (SLACK_SHARE) of one
 * worker's share of the connections taken lately (RECENT_SECS), from 1 up
 * to LEASE_SLACK.  A burst that comes after a quiet spell starts with a
 * slack of 1, so its leases alternate a connection or two at a time while
 * it is small, and the busiest worker ends with at most its share and a
 * quarter; under a flood the slack is LEASE_SLACK and a round trip covers
 * dozens.  A worker is owed no more than the slack: one further behind is
 * brought up to it, or a burst after a quiet spell would go to it alone.
 * A worker whose lease ran out of room with the backlog still deep
 * says so (CHAN_F_MORE) and one more lease may be out at once, up to one
 * per worker; each lease that comes back without it takes one away.  So
 * the accept rate is not capped by one worker when it cannot keep up, and
 * a backlog one worker drains does not wake every worker.  A worker that
 * does not give a lease back within ANSWER_SECS of its last word loses it
 * and is skipped until it speaks again.  Leases are numbered per worker
 * and an answer names its lease, so the late answer to a lease given up
 * on is not taken for the answer to the next one.
 *
 * That is dispatch = notify, the default.  Two others, for comparison and
 * for loads where they do better (README, "Dispatch"):
 *   reuseport: each slot has its own SO_REUSEPORT socket on the address,
 *     bound by the master; its worker accepts whenever it is readable and
 *     the master takes no part.  The kernel spreads connections by a hash
 *     of their addresses, so a busy or full worker still gets its share,
 *     and connections queued on a socket whose worker died wait for the
 *     respawn (or are reset, when SIGTTOU or a reload removes the slot).
 *   handoff: the master accepts and passes each descriptor to the next
 *     worker in round-robin order over the channel (SCM_RIGHTS).  Exact
 *     spread, but every connection costs the master an accept and a
 *     sendmsg.
 */
#include <sys/socket.h>

#include <errno.h>
#include <math.h>
#include <unistd.h>

#include "chan.h"
#include "dispatch.h"

#define HANDOFF_BATCH	16	/* connections passed per readiness at most */
#define HANDOFF_AHEAD	64	/* CONNs on their way to one worker at most */
#define LEASE_SLACK	32	/* notify: the slack at most, in connections */
#define SLACK_SHARE	4	/* the slack: 1/SLACK_SHARE of a worker's share of m->recent */
#define RECENT_SECS	0.05	/* m->recent decays with this time constant */

/*
 * handoff: room for one more, counting the CONNs on their way (sent, not
 * yet reported received); HANDOFF_AHEAD of them at most, which keeps the
 * channel from filling up.
 */
static int
wproc_room(const struct master *m, const struct wproc *w)
{
	uint32_t ahead = w->handed - w->handed_seen;

	return ahead < HANDOFF_AHEAD && w->conns + ahead < m->cfg->max_connections;
}

/* Could take a connection, lease or no lease. */
int
wproc_open(const struct master *m, const struct wproc *w)
{
	return w->state == W_READY && w->gen == m->gen && !w->unresponsive &&
	    (w->flags & (CHAN_F_FULL | CHAN_F_PAUSED)) == 0 &&
	    (m->cfg->dispatch != DISPATCH_HANDOFF || wproc_room(m, w));
}

/* notify: the deficit round-robin's state, as one choice of worker sees it. */
struct turns {
	uint64_t	floor;		/* the fewest taken by an open worker */
	uint64_t	slack;		/* a worker's leases may take this many past it */
	int		n;		/* open workers */
};

/* The connections taken lately (m->recent), decayed to now. */
static double
dispatch_recent(const struct master *m, ev_tstamp now)
{
	return m->recent * exp(-(now - m->recent_at) / RECENT_SECS);
}

/*
 * notify: the turns of the open workers but except.  The slack is
 * 1/SLACK_SHARE of one worker's share of the connections taken lately,
 * from 1 to LEASE_SLACK.  During a burst of B after a quiet spell it stays
 * below B / (SLACK_SHARE * n), and no worker's part of the burst gets more
 * than the slack and one ahead of another's (the one: what a worker was
 * owed when the burst began, forgiven down to a slack of 1), so none takes
 * more than 1 + 1/SLACK_SHARE times its fair share once B is SLACK_SHARE
 * per worker or more.  A flood (from about 2,600 connections a second per
 * worker) gets the whole LEASE_SLACK and long leases.  The floor is raised
 * to the busiest worker's count less the slack: a worker is owed no more
 * than the slack (dispatch_forgive()).  O(n) over the slots; n <=
 * CONFIG_MAX_WORKERS.
 */
static void
dispatch_turns(const struct master *m, const struct wproc *except, struct turns *t)
{
	uint64_t top = 0;
	double share;

	t->floor = UINT64_MAX;
	t->slack = LEASE_SLACK;
	t->n = 0;
	for (int i = 0; i < m->nslots; i++) {
		const struct wproc *w = m->slots[i]->w;

		if (w != NULL && w != except && wproc_open(m, w)) {
			t->n++;
			if (w->taken < t->floor)
				t->floor = w->taken;
			if (w->taken > top)
				top = w->taken;
		}
	}
	if (t->n == 0)
		return;
	share = dispatch_recent(m, ev_now(m->loop)) / t->n / SLACK_SHARE;
	t->slack = share >= LEASE_SLACK ? LEASE_SLACK : share >= 1 ? (uint64_t)share : 1;
	if (top - t->floor > t->slack)
		t->floor = top - t->slack;
}

/*
 * notify: bring every open worker that took fewer than the floor up to it,
 * forgiving what it is owed past the slack: a worker left behind by a
 * flood, when the slack was larger, would otherwise take the whole of the
 * next small burst.
 */
static void
dispatch_forgive(struct master *m, const struct turns *t)
{
	for (int i = 0; i < m->nslots; i++) {
		struct wproc *w = m->slots[i]->w;

		if (w != NULL && wproc_open(m, w) && w->taken < t->floor)
			w->taken = t->floor;
	}
}

/*
 * notify: connections w's next lease may take (0: only LEASE_MAX), or -1
 * when w has had its turn.
 */
static int64_t
lease_cap(const struct turns *t, const struct wproc *w)
{
	uint64_t from = w->taken > t->floor ? w->taken : t->floor;

	if (t->n < 2)
		return 0;
	if (from >= t->floor + t->slack)
		return -1;
	return (int64_t)(t->floor + t->slack - from);
}

static int64_t
dispatch_lease_cap(const struct master *m, const struct wproc *w)
{
	struct turns t;

	dispatch_turns(m, NULL, &t);
	return lease_cap(&t, w);
}

/*
 * w could not take connections and now can (started, resumed, answering
 * again): start it level with the others, or it would be owed every
 * connection the others took meanwhile.
 */
void
dispatch_lease_level(const struct master *m, struct wproc *w)
{
	struct turns t;

	dispatch_turns(m, w, &t);
	if (t.n > 0 && w->taken < t.floor)
		w->taken = t.floor;
}

static int
wproc_eligible(const struct master *m, const struct wproc *w)
{
	return wproc_open(m, w) && w->pending == NULL;
}

static unsigned
lsock_allowed(const struct master *m, const struct lsock *ls)
{
	return ls->allowed < (unsigned)m->nslots ? ls->allowed : (unsigned)m->nslots;
}

/*
 * The next eligible worker in round-robin order; with notify, one that has
 * not had its turn (the one that took fewest never has).
 * O(n) over the slots; n <= CONFIG_MAX_WORKERS.
 */
static struct wproc *
dispatch_pick(struct master *m)
{
	struct turns t = { .n = 0 };

	if (m->cfg->dispatch == DISPATCH_NOTIFY) {
		dispatch_turns(m, NULL, &t);
		dispatch_forgive(m, &t);
	}
	for (int i = 0; i < m->nslots; i++) {
		int idx = (m->rr + i) % m->nslots;
		struct wproc *w = m->slots[idx]->w;

		if (w != NULL && wproc_eligible(m, w) && lease_cap(&t, w) >= 0) {
			m->rr = (idx + 1) % m->nslots;
			return w;
		}
	}
	return NULL;
}

/*
 * Send msg (with descriptor fd unless -1) to w, or to the next eligible
 * worker while a channel is full or gone (that worker is skipped until it
 * speaks); an ACCEPT carries the cap of the worker it goes to.  The worker
 * that took it, or NULL.
 */
static struct wproc *
dispatch_offer(struct master *m, struct wproc *w, const struct chan_msg *msg, int fd)
{
	struct chan_msg one = *msg;

	for (; w != NULL; w = dispatch_pick(m)) {
		if (one.type == CHAN_ACCEPT) {
			one.conns = (uint32_t)dispatch_lease_cap(m, w);
			one.seq = (uint16_t)(w->lease_seq + 1);
		}
		if (chan_send_fd(w->chan, &one, fd) == 0) {
			if (one.type == CHAN_ACCEPT)
				w->lease_seq = one.seq;
			return w;
		}
		w->unresponsive = 1;
	}
	return NULL;
}

/* dispatch = notify: lease ls to the next worker. */
static void
dispatch_notify(struct ev_loop *loop, struct lsock *ls)
{
	struct master *m = ls->m;
	struct chan_msg msg = { .type = CHAN_ACCEPT, .lsock = ls->id };
	struct wproc *w;

	if (ls->busy)
		msg.flags = CHAN_F_MORE;
	if (ls->inflight < lsock_allowed(m, ls) &&
	    (w = dispatch_offer(m, dispatch_pick(m), &msg, -1)) != NULL) {
		w->pending = ls;
		w->sent_at = ev_now(loop);
		ls->inflight++;
		if (!ev_is_active(&m->answer)) {
			ev_timer_set(&m->answer, ANSWER_SECS, ANSWER_SECS);
			ev_timer_start(loop, &m->answer);
		}
		return;		/* one per readiness; level-triggered brings more */
	}
	/* All notified, or nobody can take it: the backlog waits. */
	ev_io_stop(loop, &ls->io);
}

/* dispatch = handoff: accept here and pass each connection on. */
static void
dispatch_handoff(struct ev_loop *loop, struct lsock *ls)
{
	ev_io *io = &ls->io;
	struct master *m = ls->m;
	struct chan_msg msg = { .type = CHAN_CONN, .lsock = ls->id };
	struct wproc *w;
	int fd;

	for (int n = 0; n < HANDOFF_BATCH; n++) {
		int rr = m->rr;

		if ((w = dispatch_pick(m)) == NULL) {
			ev_io_stop(loop, io);	/* nobody can take one: the backlog waits */
			return;
		}
		if ((fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
			m->rr = rr;	/* w's turn is not over */
			if (net_accept_starved(errno)) {
				log_warn("accept on %s; pausing accepts", ls->conf->name);
				ev_io_stop(loop, io);
				ev_timer_start(loop, &m->accept_pause);
			}
			return;		/* EAGAIN and the rest: wait for the next readiness */
		}
		if ((w = dispatch_offer(m, w, &msg, fd)) != NULL)
			w->handed++;
		close(fd);
		if (w == NULL) {
			log_warnx_rate(&m->handoff_log, ev_now(loop),
			    "%s: no worker took a connection; closed it", ls->conf->name);
			ev_io_stop(loop, io);
			return;
		}
	}
}

void
dispatch_answered(struct master *m, struct wproc *w, const struct chan_msg *msg)
{
	struct lsock *ls;

	m->answers++;
	m->answered += msg->count;
	w->taken += msg->count;
	if (msg->count > 0) {
		ev_tstamp now = ev_now(m->loop);

		m->recent = dispatch_recent(m, now) + msg->count;
		m->recent_at = now;
	}
	if (!chan_answers(msg, w->lease_seq)) {
		/* A lease given up on (ANSWER_SECS): not this one's answer. */
		log_debug("worker %d gen %u: late answer to lease %u (now %u) ignored",
		    w->slot, w->gen, (unsigned)msg->seq, (unsigned)w->lease_seq);
		return;
	}
	if ((ls = w->pending) != NULL) {
		unsigned was = lsock_allowed(m, ls), now;

		/* Parallel leases follow the backlog's depth. */
		if (msg->flags & CHAN_F_MORE)
			ls->allowed += ls->allowed < (unsigned)m->nslots;
		else if (ls->allowed > 1)
			ls->allowed--;
		now = lsock_allowed(m, ls);
		if (now != was && ls->conf != NULL)
			log_debug("listener %s: %u lease%s at once",
			    ls->conf->name, now, now == 1 ? "" : "s");
		ls->busy = msg->count > 1;
		ls->inflight--;
		w->pending = NULL;
	}
}

void
dispatch_listen_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct lsock *ls = io->data;

	(void)revents;
	if (ls->m->cfg->dispatch == DISPATCH_HANDOFF)
		dispatch_handoff(loop, ls);
	else
		dispatch_notify(loop, ls);
}

void
dispatch_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents;
	dispatch_resume(t->data);
}

/* Watch every listen socket that may hand out another notification. */
void
dispatch_resume(struct master *m)
{
	struct lsock *ls;

	if (m->stopping || m->cfg->dispatch == DISPATCH_REUSEPORT ||
	    ev_is_active(&m->accept_pause))
		return;
	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf != NULL && ls->inflight < lsock_allowed(m, ls))
			ev_io_start(m->loop, &ls->io);
}

void
dispatch_answer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	ev_tstamp now = ev_now(loop);
	struct wproc *w;
	int waiting = 0;

	(void)revents;
	LIST_FOREACH(w, &m->procs, entry) {
		if (w->pending == NULL)
			continue;
		if (now - w->sent_at < ANSWER_SECS) {
			waiting = 1;
			continue;
		}
		log_warnx("worker %d gen %u (pid %d) did not answer ACCEPT; skipping it",
		    w->slot, w->gen, (int)w->pid);
		w->pending->inflight--;
		w->pending = NULL;
		w->unresponsive = 1;
	}
	if (!waiting)
		ev_timer_stop(loop, t);
	dispatch_resume(m);
}
