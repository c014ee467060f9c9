/*
 * master.c: the master process.  Owns the config, the listen sockets, the
 * signal self-pipe, the worker table, respawn back-off, reload and the
 * figures reported to systemd.  It decides who accepts; it never reads a
 * client byte.
 *
 * Dispatch ("go accept"): the master watches every listen socket.  When one
 * is readable it sends ACCEPT, a lease on that socket, to the next eligible
 * worker in round-robin order and stops watching the socket until the
 * lease comes back (libev is level-triggered: watching on would spin until
 * the accept happened).  worker.c says how long a lease lasts.  A lease
 * also ends once its worker has taken LEASE_SLACK connections more than
 * the worker that took fewest, and a worker already there is passed over
 * (a deficit round-robin), so a burst is spread rather than taken by one
 * lease.  A worker whose lease ran out of room with the backlog still deep
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
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "chan.h"
#include "check.h"
#include "daemon.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "sdnotify.h"
#include "selfpipe.h"
#include "worker.h"

#ifndef LIST_FOREACH_SAFE
#define LIST_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = LIST_FIRST(head);					\
	    (var) != NULL && ((tvar) = LIST_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#define ANSWER_SECS	0.5	/* a worker has this long to answer ACCEPT */
#define STALE_SECS	3.0	/* no heartbeat for this long: skip the worker */
#define QUICK_DEATH	1.0	/* a worker dying sooner is backed off */
#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	10000
#define FATAL_TRIES	3	/* starts failing with status 2 in a row: give up */
#define KILL_GRACE	2.0	/* after a stop deadline, before SIGKILL */
#define EXTEND_GRACE	5	/* seconds asked of systemd beyond shutdown_timeout */
#define HANDOFF_BATCH	16	/* connections passed per readiness at most */
#define HANDOFF_AHEAD	64	/* CONNs on their way to one worker at most */
#define LEASE_SLACK	32	/* notify: connections a lease may take past the fewest */

struct master;

/* A listen socket.  Kept across reloads while its address is configured. */
struct lsock {
	uint32_t	 id;
	int		 fd;
	struct addr	 addr;
	const struct listener_conf *conf; /* borrowed from m->cfg; NULL: closing */
	struct master	*m;
	ev_io		 io;
	unsigned	 inflight;	/* leases not given back yet */
	unsigned	 allowed;	/* leases at once: +1 per CHAN_F_MORE, -1 per other */
	int		 busy;		/* the last lease given back took several */
	struct sd_socket *passed;	/* borrowed from m->passed; NULL: bound here */
	int		*rfd;		/* owned; reuseport: slot i's socket, rfd[0] = fd */
	int		 nrfd;
	LIST_ENTRY(lsock) entry;
};

enum wstate { W_STARTING, W_READY, W_DRAINING };

/* A worker process, of any generation. */
struct wproc {
	pid_t		 pid;
	int		 slot;
	unsigned	 gen;
	enum wstate	 state;
	int		 chan;		/* master's end */
	ev_io		 io;
	struct master	*m;
	unsigned	 conns;
	uint8_t		 flags;		/* CHAN_F_FULL | CHAN_F_PAUSED */
	int		 unresponsive;
	int		 stopped;	/* STOP sent (too many draining generations) */
	ev_tstamp	 started, last_seen, sent_at;
	struct lsock	*pending;	/* the ACCEPT it owes an answer for */
	uint16_t	 lease_seq;	/* the number of the last ACCEPT sent */
	uint32_t	 handed;	/* handoff: CONNs sent */
	uint32_t	 handed_seen;	/* ... and received, as it last said */
	uint64_t	 accepted;
	uint64_t	 taken;		/* notify: connections its leases took, from a
					   start level with the others (master_lease_floor) */
	LIST_ENTRY(wproc) entry;
};

/* A place for one worker of the current generation. */
struct slot {
	int		 idx;
	struct wproc	*w;		/* NULL while dead or waiting to respawn */
	unsigned	 delay_ms;	/* respawn back-off */
	unsigned	 failed;	/* starts that exited with status 2, in a row */
	int		 fatal;		/* FATAL_TRIES of them: not respawned */
	ev_timer	 respawn;
	struct master	*m;
};

struct master {
	struct ev_loop	*loop;
	struct config	*cfg;		/* owned; the current generation's */
	const char	*file;
	const struct config_overrides *ov;
	unsigned	 gen;
	uint32_t	 next_id;
	LIST_HEAD(, lsock) lsocks;
	LIST_HEAD(, wproc) procs;
	struct slot	**slots;	/* owned, nslots of them */
	int		 nslots;
	int		 rr;		/* next slot to offer an ACCEPT */
	ev_io		 sig_io;
	ev_timer	 tick, answer, stop_timer, watchdog;
	ev_timer	 accept_pause;	/* handoff: after EMFILE in the master */
	struct log_rate	 handoff_log;	/* "no worker took a connection" */
	ev_tstamp	 stop_at;	/* graceful stop: when stragglers are killed */
	struct sd_socket *passed;	/* owned; sockets from systemd, npassed */
	int		 npassed;
	char		*pidfile;	/* owned; removed at exit; NULL: none */
	int		 pidfd;		/* holds the pid file's lock; -1: none */
	struct checks	 checks;	/* active health checks of proxy backends */
	int		 stopping;	/* 0, 1 graceful, 2 immediate */
	int		 gen_ready;
	int		 fatal_logged;	/* every slot of this generation failed for good */
	int		 reload_pending;
	int		 exit_status;
	uint64_t	 accepted, accepted_prev;
	uint64_t	 answers, answered;	/* ACCEPTED messages, conns they took */
	char		 reload_result[300];
	char		 status[640];	/* last STATUS= sent */
};

static void	master_resume(struct master *m);
static int	master_spawn(struct master *m, struct slot *s);
static void	master_reload(struct master *m);
static void	master_stop(struct master *m, int immediate);
static void	lsock_release(struct lsock *ls);
static int	master_lsock_slots(struct master *m, int n);

/* ---- listen sockets and dispatch ---- */

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
static int
wproc_open(const struct master *m, const struct wproc *w)
{
	return w->state == W_READY && w->gen == m->gen && !w->unresponsive &&
	    (w->flags & (CHAN_F_FULL | CHAN_F_PAUSED)) == 0 &&
	    (m->cfg->dispatch != DISPATCH_HANDOFF || wproc_room(m, w));
}

/*
 * notify: the fewest connections the leases of any open worker but except
 * have taken, and in *n how many such workers there are.  A worker's
 * leases may take up to LEASE_SLACK past it: a deficit round-robin, so a
 * burst is spread over the workers in turn instead of filling one lease,
 * and a worker that drops its connections at once gets no more than its
 * turn.
 */
static uint64_t
master_lease_floor(const struct master *m, const struct wproc *except, int *n)
{
	uint64_t floor = UINT64_MAX;

	*n = 0;
	for (int i = 0; i < m->nslots; i++) {
		const struct wproc *w = m->slots[i]->w;

		if (w != NULL && w != except && wproc_open(m, w)) {
			(*n)++;
			if (w->taken < floor)
				floor = w->taken;
		}
	}
	return floor;
}

/*
 * notify: connections w's next lease may take (0: only LEASE_MAX), or -1
 * when w has had more than its turn; floor and n from master_lease_floor().
 */
static int64_t
lease_cap(uint64_t floor, int n, const struct wproc *w)
{
	if (n < 2)
		return 0;
	if (w->taken >= floor + LEASE_SLACK)
		return -1;
	return (int64_t)(floor + LEASE_SLACK - w->taken);
}

static int64_t
master_lease_cap(const struct master *m, const struct wproc *w)
{
	int n;
	uint64_t floor = master_lease_floor(m, NULL, &n);

	return lease_cap(floor, n, w);
}

/*
 * w could not take connections and now can (started, resumed, answering
 * again): start it level with the others, or it would be owed every
 * connection the others took meanwhile.
 */
static void
master_lease_level(const struct master *m, struct wproc *w)
{
	int n;
	uint64_t floor = master_lease_floor(m, w, &n);

	if (n > 0 && w->taken < floor)
		w->taken = floor;
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
 * not had more than its turn (the one that took fewest never has).
 * O(n) over the slots; n <= CONFIG_MAX_WORKERS.
 */
static struct wproc *
master_pick(struct master *m)
{
	int n = 0;
	uint64_t floor = m->cfg->dispatch == DISPATCH_NOTIFY ?
	    master_lease_floor(m, NULL, &n) : 0;

	for (int i = 0; i < m->nslots; i++) {
		int idx = (m->rr + i) % m->nslots;
		struct wproc *w = m->slots[idx]->w;

		if (w != NULL && wproc_eligible(m, w) && lease_cap(floor, n, w) >= 0) {
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
master_offer(struct master *m, struct wproc *w, const struct chan_msg *msg, int fd)
{
	struct chan_msg one = *msg;

	for (; w != NULL; w = master_pick(m)) {
		if (one.type == CHAN_ACCEPT) {
			one.conns = (uint32_t)master_lease_cap(m, w);
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

static void
master_listen_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct lsock *ls = io->data;
	struct master *m = ls->m;
	struct chan_msg msg = { .type = CHAN_ACCEPT, .lsock = ls->id };
	struct wproc *w;

	(void)revents;
	if (ls->busy)
		msg.flags = CHAN_F_MORE;
	if (ls->inflight < lsock_allowed(m, ls) &&
	    (w = master_offer(m, master_pick(m), &msg, -1)) != NULL) {
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
	ev_io_stop(loop, io);
}

/* dispatch = handoff: accept here and pass each connection on. */
static void
master_handoff_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct lsock *ls = io->data;
	struct master *m = ls->m;
	struct chan_msg msg = { .type = CHAN_CONN, .lsock = ls->id };
	struct wproc *w;
	int fd;

	(void)revents;
	for (int n = 0; n < HANDOFF_BATCH; n++) {
		int rr = m->rr;

		if ((w = master_pick(m)) == NULL) {
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
		if ((w = master_offer(m, w, &msg, fd)) != NULL)
			w->handed++;
		close(fd);
		if (w == NULL) {
			char more[LOG_HELD_MAX];
			unsigned long held;

			if (log_rate_ok(&m->handoff_log, ev_now(loop), 1.0, &held))
				log_warnx("%s: no worker took a connection; closed it%s",
				    ls->conf->name, log_held(held, more, sizeof(more)));
			ev_io_stop(loop, io);
			return;
		}
	}
}

static void
master_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents;
	master_resume(t->data);
}

/* Watch every listen socket that may hand out another notification. */
static void
master_resume(struct master *m)
{
	struct lsock *ls;

	if (m->stopping || m->cfg->dispatch == DISPATCH_REUSEPORT ||
	    ev_is_active(&m->accept_pause))
		return;
	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf != NULL && ls->inflight < lsock_allowed(m, ls))
			ev_io_start(m->loop, &ls->io);
}

static void
master_answer_cb(struct ev_loop *loop, ev_timer *t, int revents)
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
	master_resume(m);
}

/*
 * why, an error of lc's socket, where lc is configured: "FILE:LINE: listen:
 * why" as for the file's other errors; why alone for a listener of -l.
 */
static const char *
lsock_where(const struct config *cfg, const struct listener_conf *lc, const char *why,
    char *buf, size_t len)
{
	if (cfg->file != NULL && lc->listen_line > 0)
		snprintf(buf, len, "%s:%d: listen: %s", cfg->file, lc->listen_line, why);
	else
		snprintf(buf, len, "%s", why);
	return buf;
}

/* net_listen()'s flags for lc's sockets. */
static int
lsock_flags(const struct config *cfg, const struct listener_conf *lc)
{
	return (cfg->dispatch == DISPATCH_REUSEPORT ? NET_REUSEPORT : 0) |
	    (lc->tcp_nodelay ? NET_NODELAY : 0);
}

/* A passed socket for lc: by name, else by address; NULL when none. */
static struct sd_socket *
passed_find(struct master *m, const struct listener_conf *lc)
{
	struct addr a;

	for (int i = 0; i < m->npassed; i++)
		if (!m->passed[i].used && strcmp(m->passed[i].name, lc->name) == 0)
			return &m->passed[i];
	for (int i = 0; i < m->npassed; i++) {
		a.len = sizeof(a.ss);
		if (!m->passed[i].used &&
		    getsockname(m->passed[i].fd, (struct sockaddr *)&a.ss, &a.len) == 0 &&
		    net_addr_equal(&a, &lc->addr))
			return &m->passed[i];
	}
	return NULL;
}

/*
 * Open lc's listen socket, or take the one systemd passed for it.  NULL
 * with the reason in err.
 */
static struct lsock *
lsock_open(struct master *m, const struct listener_conf *lc, char *err,
    size_t errlen)
{
	struct sd_socket *p = NULL;
	char a[NET_ADDRSTRLEN];
	struct lsock *ls;
	int fd;

	if (m->npassed > 0 && m->cfg->dispatch == DISPATCH_REUSEPORT) {
		snprintf(err, errlen, "listener %s: dispatch = reuseport needs a socket "
		    "per worker, and systemd passes one; use notify or handoff", lc->name);
		return NULL;
	}
	if (m->npassed > 0) {
		if ((p = passed_find(m, lc)) == NULL) {
			snprintf(err, errlen, "listener %s: no socket passed by systemd "
			    "(LISTEN_FDNAMES names none \"%s\", none is bound to %s)",
			    lc->name, lc->name,
			    net_addr_str((const struct sockaddr *)&lc->addr.ss, a, sizeof(a)));
			return NULL;
		}
		fd = p->fd;
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
			snprintf(err, errlen, "listener %s: socket from systemd: %s",
			    lc->name, strerror(errno));
			return NULL;
		}
		/* Ours to set either way: its connections inherit it. */
		if (net_nodelay(fd, lc->tcp_nodelay) == -1) {
			snprintf(err, errlen, "listener %s: socket from systemd: "
			    "TCP_NODELAY: %s", lc->name, strerror(errno));
			return NULL;
		}
	} else if ((fd = net_listen(&lc->addr, lc->backlog, lsock_flags(m->cfg, lc))) == -1) {
		snprintf(err, errlen, "listener %s: bind %s: %s", lc->name,
		    net_addr_str((const struct sockaddr *)&lc->addr.ss, a, sizeof(a)),
		    strerror(errno));
		return NULL;
	}
	if ((ls = calloc(1, sizeof(*ls))) == NULL) {
		snprintf(err, errlen, "listener %s: out of memory", lc->name);
		if (p == NULL)
			close(fd);
		return NULL;
	}
	if (p != NULL)
		p->used = 1;
	ls->id = ++m->next_id;
	ls->fd = fd;
	ls->addr = lc->addr;
	ls->conf = lc;
	ls->m = m;
	ls->allowed = 1;
	ls->passed = p;
	ev_io_init(&ls->io, m->cfg->dispatch == DISPATCH_HANDOFF ?
	    master_handoff_cb : master_listen_cb, fd, EV_READ);
	ls->io.data = ls;
	if (m->cfg->dispatch == DISPATCH_REUSEPORT) {
		if ((ls->rfd = malloc(sizeof(*ls->rfd))) == NULL) {
			snprintf(err, errlen, "listener %s: out of memory", lc->name);
			lsock_release(ls);
			return NULL;
		}
		ls->rfd[0] = fd;
		ls->nrfd = 1;
	}
	return ls;
}

/*
 * dispatch = reuseport: give ls a socket for each of n slots, binding the
 * missing ones, or close those past n.  0, or -1 with the reason in err
 * (the sockets bound so far are kept: shrink back to undo).
 */
static int
lsock_slots(struct lsock *ls, int n, char *err, size_t errlen)
{
	char a[NET_ADDRSTRLEN];
	int *v, fd;

	if (ls->rfd == NULL)
		return 0;
	while (ls->nrfd > n && ls->nrfd > 1)
		close(ls->rfd[--ls->nrfd]);
	if (n <= ls->nrfd)
		return 0;
	if ((v = realloc(ls->rfd, n * sizeof(*v))) == NULL) {
		snprintf(err, errlen, "listener %s: out of memory", ls->conf->name);
		return -1;
	}
	ls->rfd = v;
	while (ls->nrfd < n) {
		if ((fd = net_listen(&ls->addr, ls->conf->backlog,
		    lsock_flags(ls->m->cfg, ls->conf))) == -1) {
			snprintf(err, errlen, "listener %s: bind %s for worker %d: %s",
			    ls->conf->name,
			    net_addr_str((const struct sockaddr *)&ls->addr.ss, a, sizeof(a)),
			    ls->nrfd, strerror(errno));
			return -1;
		}
		ls->rfd[ls->nrfd++] = fd;
	}
	return 0;
}

/*
 * A reload keeps ls for lc: apply lc's socket-level keys to each of its
 * sockets.  Connections accepted from then on inherit TCP_NODELAY.
 */
static void
lsock_update(struct lsock *ls, const struct listener_conf *lc)
{
	for (int i = 0; i < (ls->rfd != NULL ? ls->nrfd : 1); i++) {
		int fd = ls->rfd != NULL ? ls->rfd[i] : ls->fd;

		if (lc->backlog != ls->conf->backlog && listen(fd, lc->backlog) == -1)
			log_warn("listener %s: new backlog", lc->name);
		if (lc->tcp_nodelay != ls->conf->tcp_nodelay &&
		    net_nodelay(fd, lc->tcp_nodelay) == -1)
			log_warn("listener %s: tcp_nodelay", lc->name);
	}
}

/* Close a socket we bound; park one systemd passed (never closed). */
static void
lsock_release(struct lsock *ls)
{
	if (ls->passed != NULL)
		ls->passed->used = 0;
	else
		close(ls->fd);
	for (int i = 1; i < ls->nrfd; i++)
		close(ls->rfd[i]);
	free(ls->rfd);
	free(ls);
}

static void
lsock_close(struct master *m, struct lsock *ls)
{
	struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w->pending == ls)
			w->pending = NULL;	/* its answer will find no socket */
	ev_io_stop(m->loop, &ls->io);
	LIST_REMOVE(ls, entry);
	lsock_release(ls);
}

static struct lsock *
lsock_find(struct master *m, const struct addr *a)
{
	struct lsock *ls;

	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf != NULL && net_addr_equal(&ls->addr, a))
			return ls;
	return NULL;
}

/* ---- status ---- */

/* Compose STATUS=; send it when it changed and send is set. */
static void
master_status(struct master *m, int send)
{
	char s[sizeof(m->status)];
	unsigned total = 0, drain_conns = 0, ngen = 0, seen[64];
	uint64_t rate = m->accepted - m->accepted_prev;
	struct wproc *w;
	int off, n = 0;

	off = snprintf(s, sizeof(s), "gen %u: %d workers, ", m->gen, m->nslots);
	LIST_FOREACH(w, &m->procs, entry) {
		if (w->gen == m->gen && w->state != W_DRAINING) {
			total += w->conns;
			continue;
		}
		drain_conns += w->conns;
		for (n = 0; n < (int)ngen && seen[n] != w->gen; n++)
			;
		if (n == (int)ngen && ngen < 64)
			seen[ngen++] = w->gen;
	}
	off += snprintf(s + off, sizeof(s) - off, "%u connections (", total);
	for (int i = 0; i < m->nslots && off < (int)sizeof(s); i++) {
		w = m->slots[i]->w;
		off += snprintf(s + off, sizeof(s) - off, "%s%u", i ? "/" : "",
		    w != NULL ? w->conns : 0);
	}
	if (off < (int)sizeof(s))
		snprintf(s + off, sizeof(s) - off,
		    "), %u draining generations with %u connections, %llu conn/s, last reload: %s",
		    ngen, drain_conns, (unsigned long long)rate, m->reload_result);
	if (strcmp(s, m->status) != 0) {
		memcpy(m->status, s, sizeof(s));
		if (send)
			sdnotify("STATUS=%s", s);
	}
}

/*
 * While draining for a stop, ask systemd to wait: what is left of
 * shutdown_timeout plus EXTEND_GRACE (which covers KILL_GRACE).
 */
static void
master_extend(struct master *m)
{
	ev_tstamp left = m->stop_at - KILL_GRACE - ev_now(m->loop);

	sdnotify("EXTEND_TIMEOUT_USEC=%llu",
	    (unsigned long long)((left > 0 ? left : 0) + EXTEND_GRACE) * 1000000ULL);
}

/* WATCHDOG=1 only while the loop runs and the workers answer. */
static void
master_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	ev_tstamp now = ev_now(loop);

	(void)revents;
	for (int i = 0; i < m->nslots; i++) {
		struct wproc *w = m->slots[i]->w;

		if (w != NULL && w->state == W_READY &&
		    (w->unresponsive || now - w->last_seen > STALE_SECS))
			return;
	}
	sdnotify("WATCHDOG=1");
}

static void
master_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	ev_tstamp now = ev_now(loop);
	struct wproc *w;

	(void)revents;
	LIST_FOREACH(w, &m->procs, entry)
		if (w->state == W_READY && !w->unresponsive &&
		    now - w->last_seen > STALE_SECS) {
			log_warnx("worker %d gen %u (pid %d) missed its heartbeats; skipping it",
			    w->slot, w->gen, (int)w->pid);
			w->unresponsive = 1;
		}
	master_status(m, 1);
	if (m->stopping == 1)
		master_extend(m);
	m->accepted_prev = m->accepted;
	if (m->answers > 0)
		log_debug("dispatch: %llu notifications took %llu connections",
		    (unsigned long long)m->answers, (unsigned long long)m->answered);
	m->answers = m->answered = 0;
}

/* ---- the channel ---- */

static void
master_check_ready(struct master *m)
{
	if (m->gen_ready || m->stopping)
		return;
	for (int i = 0; i < m->nslots; i++) {
		struct wproc *w = m->slots[i]->w;

		if (w == NULL || w->state != W_READY)
			return;
	}
	m->gen_ready = 1;
	log_notice("generation %u ready: %d workers", m->gen, m->nslots);
	master_status(m, 0);
	sdnotify("READY=1\nSTATUS=%s", m->status);
	daemon_ready();
	if (m->reload_pending) {
		m->reload_pending = 0;
		master_reload(m);
	}
}

static void
master_send_backend(struct wproc *w, uint32_t lsock, size_t idx, int up)
{
	struct chan_msg msg = {
		.type = CHAN_BACKEND, .lsock = lsock, .count = idx, .conns = up,
	};

	if (chan_send(w->chan, &msg) == -1)
		log_warn("telling worker %d gen %u about a backend", w->slot, w->gen);
}

/* A new worker learns which backends the checks found down. */
static void
master_tell_down(void *arg, uint32_t lsock, size_t idx)
{
	master_send_backend(arg, lsock, idx, 0);
}

/* A health check changed a backend's state: tell the current workers. */
static void
master_backend_changed(void *arg, uint32_t lsock, size_t idx, int up)
{
	struct master *m = arg;
	struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w->gen == m->gen && w->state != W_DRAINING)
			master_send_backend(w, lsock, idx, up);
}

/* (Re)start the health checks of every configured listener. */
static void
master_checks(struct master *m)
{
	struct lsock *ls;

	checks_clear(&m->checks);
	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf != NULL && checks_add(&m->checks, ls->id, ls->conf) == -1)
			fatal("health checks");
}

static void
master_chan_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct wproc *w = io->data;
	struct master *m = w->m;
	struct chan_msg msg;
	struct lsock *ls;
	int rc, was_open;

	(void)revents;
	for (int i = 0; i < 64; i++) {
		if ((rc = chan_recv(w->chan, &msg)) == 0 ||
		    (rc == -1 && errno != EAGAIN && errno != EBADMSG)) {
			/* Exiting; SIGCHLD does the rest. */
			ev_io_stop(loop, io);
			break;
		}
		if (rc == -1) {
			if (errno == EAGAIN)
				break;
			log_warnx("malformed message from worker %d gen %u", w->slot, w->gen);
			continue;
		}
		was_open = wproc_open(m, w);
		w->last_seen = ev_now(loop);
		w->unresponsive = 0;
		w->conns = msg.conns;
		if (msg.type != CHAN_ACCEPTED)
			w->handed_seen = msg.count;
		w->flags = msg.flags & (CHAN_F_FULL | CHAN_F_PAUSED);
		switch (msg.type) {
		case CHAN_HELLO:
			if (w->state == W_STARTING) {
				w->state = W_READY;
				if (w->gen == m->gen && w->slot < m->nslots)
					m->slots[w->slot]->failed = 0;
				log_info("worker %d gen %u ready, pid %d", w->slot, w->gen,
				    (int)w->pid);
			}
			checks_each_down(&m->checks, master_tell_down, w);
			master_check_ready(m);
			break;
		case CHAN_ACCEPTED:
			m->answers++;
			m->answered += msg.count;
			w->taken += msg.count;
			if (!chan_answers(&msg, w->lease_seq)) {
				/* A lease given up on (ANSWER_SECS): not this one's answer. */
				log_debug("worker %d gen %u: late answer to lease %u (now %u) ignored",
				    w->slot, w->gen, (unsigned)msg.seq, (unsigned)w->lease_seq);
				break;
			}
			if ((ls = w->pending) != NULL) {
				unsigned was = lsock_allowed(m, ls), now;

				/* Parallel leases follow the backlog's depth. */
				if (msg.flags & CHAN_F_MORE)
					ls->allowed += ls->allowed < (unsigned)m->nslots;
				else if (ls->allowed > 1)
					ls->allowed--;
				now = lsock_allowed(m, ls);
				if (now != was && ls->conf != NULL)
					log_debug("listener %s: %u lease%s at once",
					    ls->conf->name, now, now == 1 ? "" : "s");
				ls->busy = msg.count > 1;
				ls->inflight--;
				w->pending = NULL;
			}
			break;
		case CHAN_HEARTBEAT:
			if (msg.accepted > w->accepted)
				m->accepted += msg.accepted - w->accepted;
			w->accepted = msg.accepted;
			break;
		case CHAN_STATE:
			break;
		default:
			log_warnx("unexpected %s from worker %d gen %u",
			    chan_type_name(msg.type), w->slot, w->gen);
		}
		if (!was_open && wproc_open(m, w))
			master_lease_level(m, w);
	}
	master_resume(m);
}

static void
master_send(struct wproc *w, struct chan_msg *msg)
{
	if (chan_send(w->chan, msg) == -1)
		log_warn("sending %s to worker %d gen %u (pid %d)",
		    chan_type_name(msg->type), w->slot, w->gen, (int)w->pid);
}

static void
master_drain_worker(struct wproc *w, unsigned timeout_ms)
{
	struct chan_msg msg = { .type = CHAN_DRAIN, .timeout_ms = timeout_ms };

	w->state = W_DRAINING;
	master_send(w, &msg);
}

/* ---- spawning and reaping ---- */

static void
master_child(struct master *m, struct slot *s, int chan)
{
	struct worker_spawn sp;
	struct wproc *w;
	struct lsock *ls;

	selfpipe_close();
	LIST_FOREACH(w, &m->procs, entry)
		close(w->chan);		/* siblings' channels are not ours */
	memset(&sp, 0, sizeof(sp));
	LIST_FOREACH(ls, &m->lsocks, entry) {
		/* reuseport: only our slot's socket; handoff: none at all. */
		int mine = ls->rfd != NULL ? (s->idx < ls->nrfd ? ls->rfd[s->idx] : -1) :
		    m->cfg->dispatch == DISPATCH_HANDOFF ? -1 : ls->fd;

		for (int i = 0; i < ls->nrfd; i++)
			if (ls->rfd[i] != mine)
				close(ls->rfd[i]);
		if (ls->rfd == NULL && mine == -1)
			close(ls->fd);
		if (ls->conf == NULL || sp.nls == sizeof(sp.fds) / sizeof(sp.fds[0]) ||
		    (mine == -1 && ls->rfd != NULL)) {
			if (mine != -1)
				close(mine);	/* being removed */
			continue;
		}
		sp.ids[sp.nls] = ls->id;
		sp.fds[sp.nls] = mine;
		sp.confs[sp.nls] = ls->conf;
		sp.nls++;
	}
	for (int i = 0; i < m->npassed; i++)
		if (!m->passed[i].used)
			close(m->passed[i].fd);	/* parked by a reload */
	checks_clear(&m->checks);	/* the master's sockets, not ours */
	if (m->pidfd != -1)
		close(m->pidfd);	/* the lock is the master's alone */
	daemon_forget();
	ev_loop_destroy(m->loop);
	unsetenv("NOTIFY_SOCKET");
	sp.cfg = m->cfg;
	sp.slot = s->idx;
	sp.gen = m->gen;
	sp.chan = chan;
	worker_main(&sp);
}

static void
master_respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct slot *s = t->data;

	(void)loop, (void)revents;
	master_spawn(s->m, s);
}

static void
master_schedule(struct master *m, struct slot *s, ev_tstamp lived)
{
	if (lived < QUICK_DEATH)
		s->delay_ms = s->delay_ms == 0 ? BACKOFF_MIN_MS :
		    s->delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->delay_ms * 2;
	else
		s->delay_ms = 0;
	log_notice("respawning worker %d in %u ms", s->idx, s->delay_ms);
	if (s->delay_ms == 0) {
		master_spawn(m, s);
		return;
	}
	ev_timer_set(&s->respawn, s->delay_ms / 1000.0, 0.);
	ev_timer_start(m->loop, &s->respawn);
}

static int
master_spawn(struct master *m, struct slot *s)
{
	struct wproc *w;
	sigset_t all, old;
	int sv[2];
	pid_t pid;

	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("worker %d: cannot make its channel", s->idx);
		free(w);
		master_schedule(m, s, 0);
		return -1;
	}
	/* Blocked across fork: no handler of ours runs in the child. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	if ((pid = fork()) == 0) {
		free(w);	/* the parent's record of the child */
		close(sv[0]);
		master_child(m, s, sv[1]);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	if (pid == -1) {
		log_warn("worker %d: fork", s->idx);
		close(sv[0]);
		free(w);
		master_schedule(m, s, 0);
		return -1;
	}
	w->pid = pid;
	w->slot = s->idx;
	w->gen = m->gen;
	w->state = W_STARTING;
	w->chan = sv[0];
	w->m = m;
	w->started = w->last_seen = ev_now(m->loop);
	ev_io_init(&w->io, master_chan_cb, sv[0], EV_READ);
	w->io.data = w;
	ev_set_priority(&w->io, EV_MAXPRI);
	ev_io_start(m->loop, &w->io);
	LIST_INSERT_HEAD(&m->procs, w, entry);
	s->w = w;
	log_notice("worker %d gen %u started, pid %d", s->idx, m->gen, (int)pid);
	return 0;
}

static struct slot *
slot_new(struct master *m, int idx)
{
	struct slot *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("slot");
	s->idx = idx;
	s->m = m;
	ev_timer_init(&s->respawn, master_respawn_cb, 0., 0.);
	s->respawn.data = s;
	return s;
}

static void
slot_free(struct master *m, struct slot *s)
{
	ev_timer_stop(m->loop, &s->respawn);
	free(s);
}

/* Replace the slot table with n fresh slots and fill them. */
static void
master_slots(struct master *m, int n)
{
	struct slot **v;

	for (int i = 0; i < m->nslots; i++)
		slot_free(m, m->slots[i]);
	if ((v = realloc(m->slots, n * sizeof(*v))) == NULL)
		fatal("slots");
	m->slots = v;
	m->nslots = n;
	m->rr = 0;
	for (int i = 0; i < n; i++)
		m->slots[i] = slot_new(m, i);
	for (int i = 0; i < n; i++)
		master_spawn(m, m->slots[i]);
}

/*
 * The current generation cannot become ready soon: a slot has no worker,
 * waiting to respawn after a quick death or failed for good.
 */
static int
gen_stuck(const struct master *m)
{
	for (int i = 0; i < m->nslots; i++)
		if (m->slots[i]->w == NULL)
			return 1;
	return 0;
}

static int
gen_alive(struct master *m, unsigned gen)
{
	struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w->gen == gen)
			return 1;
	return 0;
}

static void
master_reap(struct master *m)
{
	struct wproc *w;
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		LIST_FOREACH(w, &m->procs, entry)
			if (w->pid == pid)
				break;
		if (w == NULL)
			continue;
		if (WIFEXITED(st))
			log_notice("worker %d gen %u (pid %d) exited with status %d",
			    w->slot, w->gen, (int)pid, WEXITSTATUS(st));
		else
			log_warnx("worker %d gen %u (pid %d) killed by signal %d",
			    w->slot, w->gen, (int)pid, WTERMSIG(st));
		if (w->pending != NULL)
			w->pending->inflight--;
		ev_io_stop(m->loop, &w->io);
		close(w->chan);
		LIST_REMOVE(w, entry);

		if (w->gen == m->gen && w->slot < m->nslots &&
		    m->slots[w->slot]->w == w) {
			struct slot *s = m->slots[w->slot];

			s->w = NULL;	/* even when stopping: status and watchdog read it */
			/*
			 * Status 2: it failed while it started.  A shortage that
			 * passes (descriptors, memory) gets the back-off; one that
			 * stays would fail each new worker the same way.
			 */
			if (!m->stopping && WIFEXITED(st) && WEXITSTATUS(st) == 2 &&
			    ++s->failed >= FATAL_TRIES) {
				log_errorx("worker %d failed to start %u times in a row (status 2): "
				    "not respawning", s->idx, s->failed);
				s->fatal = 1;
			} else if (!m->stopping)
				master_schedule(m, s, ev_now(m->loop) - w->started);
		} else if (w->gen != m->gen && !gen_alive(m, w->gen))
			log_notice("generation %u finished draining", w->gen);
		free(w);
	}
	if (m->stopping && LIST_EMPTY(&m->procs)) {
		ev_break(m->loop, EVBREAK_ALL);
		return;
	}
	if (!m->stopping) {
		int fatal_all;

		if (m->reload_pending && !m->gen_ready && gen_stuck(m)) {
			/*
			 * Queued for a generation that will not be ready soon:
			 * first, since it may replace one that cannot start.
			 */
			m->reload_pending = 0;
			master_reload(m);
		}
		fatal_all = m->nslots > 0;
		for (int i = 0; i < m->nslots; i++)
			fatal_all &= m->slots[i]->fatal;
		/*
		 * Nobody accepts now.  While an older generation finishes its
		 * connections a reload may still replace this one; after
		 * that, sitting idle would only hide the failure.
		 */
		if (fatal_all && LIST_EMPTY(&m->procs)) {
			log_errorx("no worker of generation %u can start and no other is left; "
			    "stopping", m->gen);
			m->exit_status = 1;
			master_stop(m, 0);
			return;
		}
		if (fatal_all && !m->fatal_logged) {
			m->fatal_logged = 1;
			log_errorx("no worker of generation %u can start; stopping once the "
			    "older generations are done, unless a reload replaces it", m->gen);
		}
	}
	master_resume(m);
}

/* ---- reload ---- */

/* Beyond max_draining old generations, close the oldest now. */
static void
master_limit_draining(struct master *m)
{
	struct chan_msg msg = { .type = CHAN_STOP };
	unsigned gens[CONFIG_MAX_WORKERS], n, oldest;
	struct wproc *w;

	for (;;) {
		n = 0;
		oldest = m->gen;
		LIST_FOREACH(w, &m->procs, entry) {
			unsigned i;

			if (w->gen == m->gen || w->stopped)
				continue;
			for (i = 0; i < n && gens[i] != w->gen; i++)
				;
			if (i == n && n < CONFIG_MAX_WORKERS)
				gens[n++] = w->gen;
			if (w->gen < oldest)
				oldest = w->gen;
		}
		if (n <= m->cfg->max_draining)
			return;
		log_warnx("more than %u generations draining: closing generation %u now",
		    m->cfg->max_draining, oldest);
		LIST_FOREACH(w, &m->procs, entry)
			if (w->gen == oldest) {
				w->stopped = 1;
				master_send(w, &msg);
			}
	}
}

static int
same_str(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static void
master_reload(struct master *m)
{
	struct config_errors errs = { NULL, 0, NULL };
	const struct listener_conf *failed = NULL;
	struct lsock *ls, *next, **fresh = NULL;
	struct config *nc, *old;
	struct wproc *w;
	struct timespec ts;
	size_t nfresh = 0;
	char why[256], where[1024];

	if (m->stopping)
		return;
	if (!m->gen_ready && !gen_stuck(m)) {
		/*
		 * One at a time: this one runs when the new generation is up,
		 * or as soon as one of its workers dies before that.
		 */
		m->reload_pending = 1;
		log_notice("reload queued until generation %u is ready", m->gen);
		return;
	}
	if (!m->gen_ready)
		log_notice("generation %u is not ready and a worker of it died: "
		    "replacing it", m->gen);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	log_notice("reloading %s", m->file != NULL ? m->file : "(command line)");

	if ((nc = config_load(m->file, m->ov, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_errorx("%s", errs.msg[i]);
		snprintf(m->reload_result, sizeof(m->reload_result), "failed: %s",
		    errs.n > 0 ? errs.msg[0] : "unknown error");
		goto fail;
	}

	if (nc->dispatch != m->cfg->dispatch) {
		log_warnx("dispatch needs a restart; keeping the running one");
		nc->dispatch = m->cfg->dispatch;
	}

	/*
	 * Open what is new, and with reuseport a socket for every new slot;
	 * nothing changes until all of it is open.  A listener kept with
	 * fewer workers keeps its extra sockets until the commit: their
	 * workers still accept on them, and were the reload to fail, a socket
	 * bound afresh for such a slot would be in the kernel's group with
	 * nobody accepting from it.
	 */
	if ((fresh = calloc(nc->nlisteners, sizeof(*fresh))) == NULL)
		fatal("reload");
	for (size_t i = 0; i < nc->nlisteners; i++) {
		const struct listener_conf *lc = failed = &nc->listeners[i];

		if ((ls = lsock_find(m, &lc->addr)) != NULL) {
			if (lsock_slots(ls, nc->workers > ls->nrfd ? nc->workers : ls->nrfd,
			    why, sizeof(why)) == -1)
				goto undo;
			continue;
		}
		if ((fresh[nfresh] = lsock_open(m, lc, why, sizeof(why))) == NULL)
			goto undo;
		nfresh++;
		if (lsock_slots(fresh[nfresh - 1], nc->workers, why, sizeof(why)) == -1)
			goto undo;
	}

	/* Commit. */
	LIST_FOREACH(ls, &m->lsocks, entry) {
		const struct listener_conf *lc = NULL;

		for (size_t i = 0; i < nc->nlisteners && lc == NULL; i++)
			if (net_addr_equal(&nc->listeners[i].addr, &ls->addr))
				lc = &nc->listeners[i];
		if (lc != NULL)
			lsock_update(ls, lc);
		ls->conf = lc;		/* NULL: closed once the new workers forked */
	}
	for (size_t i = 0; i < nfresh; i++)
		LIST_INSERT_HEAD(&m->lsocks, fresh[i], entry);
	free(fresh);
	if (!same_str(nc->user, m->cfg->user) || !same_str(nc->group, m->cfg->group) ||
	    !same_str(nc->pidfile, m->cfg->pidfile))
		log_warnx("user, group and pidfile need a restart; keeping the running ones");
	if (strcmp(nc->log_target, m->cfg->log_target) != 0 &&
	    log_open(nc->log_target) == -1)
		log_warn("log_target %s; keeping the old target", nc->log_target);
	log_set_level(nc->log_level);
	old = m->cfg;
	m->cfg = nc;
	m->gen++;
	m->gen_ready = 0;
	m->fatal_logged = 0;
	master_checks(m);	/* new backends start up, checked afresh */
	snprintf(m->reload_result, sizeof(m->reload_result), "gen %u ok", m->gen);

	master_slots(m, nc->workers);
	LIST_FOREACH(w, &m->procs, entry)
		if (w->gen != m->gen && w->state != W_DRAINING)
			master_drain_worker(w, nc->drain_ms);
	LIST_FOREACH_SAFE(ls, &m->lsocks, entry, next)
		if (ls->conf == NULL) {
			log_notice("closing listen socket %d (no longer configured)", ls->fd);
			lsock_close(m, ls);
		}
	master_lsock_slots(m, m->nslots);	/* only closes */
	config_free(old);
	master_limit_draining(m);
	master_resume(m);
	return;

undo:
	lsock_where(nc, failed, why, where, sizeof(where));
	log_errorx("%s", where);
	/* Cut to fit STATUS=; the log line has it whole. */
	snprintf(m->reload_result, sizeof(m->reload_result), "failed: %.*s",
	    (int)sizeof(m->reload_result) - 9, where);
	while (nfresh > 0)
		lsock_release(fresh[--nfresh]);
	free(fresh);
	master_lsock_slots(m, m->nslots);	/* only closes */
	config_free(nc);
fail:
	log_errorx("reload failed, keeping generation %u", m->gen);
	config_errors_fini(&errs);
	sdnotify("READY=1\nSTATUS=reload %s", m->reload_result);
	m->status[0] = '\0';
}

/* ---- stopping ---- */

static void
master_stop_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	struct wproc *w;

	(void)loop, (void)revents;
	LIST_FOREACH(w, &m->procs, entry) {
		log_warnx("worker %d gen %u (pid %d) still running: killing it",
		    w->slot, w->gen, (int)w->pid);
		kill(w->pid, SIGKILL);
	}
}

static void
master_stop(struct master *m, int immediate)
{
	struct lsock *ls, *next;
	struct wproc *w;
	ev_tstamp grace;

	if (m->stopping == 0) {
		sdnotify("STOPPING=1");
		log_notice("shutting down%s", immediate ? " now" : "");
		LIST_FOREACH_SAFE(ls, &m->lsocks, entry, next)
			lsock_close(m, ls);
		checks_clear(&m->checks);
		for (int i = 0; i < m->nslots; i++)
			ev_timer_stop(m->loop, &m->slots[i]->respawn);
	}
	if (!immediate && m->stopping == 0) {
		m->stopping = 1;
		LIST_FOREACH(w, &m->procs, entry)
			master_drain_worker(w, m->cfg->shutdown_ms);
		grace = m->cfg->shutdown_ms / 1000.0 + KILL_GRACE;
		m->stop_at = ev_now(m->loop) + grace;
		master_extend(m);
	} else {
		m->stopping = 2;
		LIST_FOREACH(w, &m->procs, entry)
			kill(w->pid, SIGTERM);
		grace = KILL_GRACE;
	}
	ev_timer_stop(m->loop, &m->stop_timer);
	ev_timer_set(&m->stop_timer, grace, 0.);
	ev_timer_start(m->loop, &m->stop_timer);
	if (LIST_EMPTY(&m->procs))
		ev_break(m->loop, EVBREAK_ALL);
}

/* ---- signals ---- */

/*
 * reuseport: a socket for each of n slots on every listener.  0, or -1
 * with the reason logged and every listener back at m->nslots sockets.
 */
static int
master_lsock_slots(struct master *m, int n)
{
	struct lsock *ls;
	char why[256];

	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf != NULL && lsock_slots(ls, n, why, sizeof(why)) == -1) {
			log_warnx("%s", why);
			LIST_FOREACH(ls, &m->lsocks, entry)
				if (ls->conf != NULL)
					lsock_slots(ls, m->nslots, why, sizeof(why));
			return -1;
		}
	return 0;
}

static void
master_workers_delta(struct master *m, int more)
{
	struct slot **v;
	struct slot *s;

	if (m->stopping)
		return;
	if (more) {
		if (m->nslots >= CONFIG_MAX_WORKERS)
			return;
		if (master_lsock_slots(m, m->nslots + 1) == -1) {
			log_warnx("SIGTTIN: no socket for another worker; keeping %d "
			    "(after the switch to user, reuseport sockets can be added "
			    "only by a restart)", m->nslots);
			return;
		}
		if ((v = realloc(m->slots, (m->nslots + 1) * sizeof(*v))) == NULL)
			fatal("slots");
		m->slots = v;
		s = m->slots[m->nslots] = slot_new(m, m->nslots);
		m->nslots++;
		log_notice("SIGTTIN: %d workers", m->nslots);
		master_spawn(m, s);
		return;
	}
	if (m->nslots <= 1)
		return;
	s = m->slots[--m->nslots];
	log_notice("SIGTTOU: %d workers", m->nslots);
	if (s->w != NULL)
		master_drain_worker(s->w, m->cfg->drain_ms);
	slot_free(m, s);
	master_lsock_slots(m, m->nslots);	/* only closes */
	m->rr %= m->nslots;
	master_check_ready(m);
}

static void
master_sig_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct master *m = io->data;
	struct chan_msg reopen = { .type = CHAN_REOPEN };
	struct wproc *w;
	int signo;

	(void)loop, (void)revents;
	while ((signo = selfpipe_next()) != 0) {
		switch (signo) {
		case SIGHUP:
			master_reload(m);
			break;
		case SIGTERM:
		case SIGINT:
			master_stop(m, m->stopping != 0);
			break;
		case SIGQUIT:
			master_stop(m, 1);
			break;
		case SIGUSR1:
			log_notice("reopening the log");
			if (log_reopen() == -1)
				log_warn("reopening the log file");
			LIST_FOREACH(w, &m->procs, entry)
				master_send(w, &reopen);
			break;
		case SIGTTIN:
		case SIGTTOU:
			master_workers_delta(m, signo == SIGTTIN);
			break;
		case SIGCHLD:
			master_reap(m);
			break;
		}
	}
}

/* ---- start ---- */

/*
 * Start-up, in order: the pid file (locked and written; a lock held by a
 * running instance stops the start), the listen sockets (bound, or passed
 * by systemd), the log, then the switch to the configured user, which
 * keeps the pid file's descriptor and so its lock.  Errors go to stderr,
 * which is still the terminal even with -d.  0 or -1.
 */
static int
master_open(struct master *m)
{
	const struct config *cfg = m->cfg;
	char err[512], where[1024];
	struct lsock *ls;

	if (cfg->pidfile != NULL) {
		if ((m->pidfd = pidfile_open(cfg->pidfile, err, sizeof(err))) == -1) {
			fprintf(stderr, "preforkd: %s\n", err);
			return -1;
		}
		if ((m->pidfile = strdup(cfg->pidfile)) == NULL)
			fatal("pidfile");
	}
	if ((m->npassed = sd_listen_collect(&m->passed)) == -1) {
		fprintf(stderr, "preforkd: sockets passed by systemd: %s\n", strerror(errno));
		m->npassed = 0;
		return -1;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct listener_conf *lc = &cfg->listeners[i];

		if ((ls = lsock_open(m, lc, err, sizeof(err))) != NULL) {
			LIST_INSERT_HEAD(&m->lsocks, ls, entry);
			if (lsock_slots(ls, cfg->workers, err, sizeof(err)) == 0)
				continue;
		}
		fprintf(stderr, "%s%s\n", cfg->file != NULL && lc->listen_line > 0 ?
		    "" : "preforkd: ", lsock_where(cfg, lc, err, where, sizeof(where)));
		return -1;
	}
	for (int i = 0; i < m->npassed; i++)
		if (!m->passed[i].used) {
			fprintf(stderr, "preforkd: socket %s (fd %d) passed by systemd matches no [listener]\n",
			    m->passed[i].name[0] ? m->passed[i].name : "(unnamed)",
			    m->passed[i].fd);
			return -1;
		}
	if (log_open(cfg->log_target) == -1) {
		fprintf(stderr, "preforkd: log_target %s: %s\n", cfg->log_target,
		    strerror(errno));
		return -1;
	}
	log_set_level(cfg->log_level);
	if (cfg->user != NULL) {
		if (daemon_drop(cfg->uid, cfg->gid, err, sizeof(err)) == -1) {
			fprintf(stderr, "preforkd: user %s: %s\n", cfg->user, err);
			return -1;
		}
		log_notice("running as user %s (uid %u, gid %u)", cfg->user,
		    (unsigned)cfg->uid, (unsigned)cfg->gid);
	} else if (geteuid() == 0)
		log_warnx("running as root; set user in [daemon]");
	return 0;
}

int
master_run(struct config *cfg, const char *file, const struct config_overrides *ov)
{
	static const int sigs[] = {
		SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGTTIN, SIGTTOU, SIGCHLD,
	};
	struct master m;
	struct lsock *ls, *next;
	struct rlimit rl;
	unsigned long long wd_usec;
	int sigfd;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.file = file;
	m.ov = ov;
	m.gen = 1;
	m.pidfd = -1;
	snprintf(m.reload_result, sizeof(m.reload_result), "none");
	LIST_INIT(&m.lsocks);
	LIST_INIT(&m.procs);
	signal(SIGPIPE, SIG_IGN);

	/* Many connections need many descriptors: take what we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/*
	 * Signals are caught before the pid file names us: a -s reopen or
	 * stop that comes while the sockets open waits in the pipe for the
	 * loop instead of killing a master half started.
	 */
	if ((sigfd = selfpipe_open()) == -1)
		fatal("self-pipe");
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (selfpipe_catch(sigs[i]) == -1)
			fatal("sigaction");
	if (master_open(&m) == -1) {
		m.exit_status = 1;
		goto out;
	}
	if ((m.loop = ev_loop_new(EVFLAG_AUTO)) == NULL)
		fatalx("cannot create the event loop");
	ev_io_init(&m.sig_io, master_sig_cb, sigfd, EV_READ);
	m.sig_io.data = &m;
	ev_set_priority(&m.sig_io, EV_MAXPRI);
	ev_io_start(m.loop, &m.sig_io);
	ev_timer_init(&m.tick, master_tick_cb, 1., 1.);
	m.tick.data = &m;
	ev_timer_start(m.loop, &m.tick);
	ev_timer_init(&m.answer, master_answer_cb, ANSWER_SECS, ANSWER_SECS);
	m.answer.data = &m;
	ev_timer_init(&m.stop_timer, master_stop_cb, 0., 0.);
	m.stop_timer.data = &m;
	ev_timer_init(&m.accept_pause, master_pause_cb, ACCEPT_PAUSE_SECS, 0.);
	m.accept_pause.data = &m;
	if ((wd_usec = sd_watchdog_usec()) > 0) {
		ev_timer_init(&m.watchdog, master_watchdog_cb, 0., wd_usec / 2e6);
		m.watchdog.data = &m;
		ev_timer_again(m.loop, &m.watchdog);
		log_info("systemd watchdog: every %llu ms", wd_usec / 2000);
	}

	log_notice("preforkd starting, pid %d, %zu listeners, %d workers",
	    (int)getpid(), cfg->nlisteners, cfg->workers);
	m.checks.loop = m.loop;
	m.checks.changed = master_backend_changed;
	m.checks.arg = &m;
	master_checks(&m);
	master_slots(&m, cfg->workers);
	master_resume(&m);
	ev_run(m.loop, 0);

	for (int i = 0; i < m.nslots; i++)
		slot_free(&m, m.slots[i]);
	free(m.slots);
	checks_clear(&m.checks);
	ev_loop_destroy(m.loop);
	selfpipe_close();
	log_notice("exiting");
out:
	LIST_FOREACH_SAFE(ls, &m.lsocks, entry, next) {
		LIST_REMOVE(ls, entry);
		lsock_release(ls);
	}
	for (int i = 0; i < m.npassed; i++)
		close(m.passed[i].fd);
	free(m.passed);
	switch (m.pidfd != -1 ? pidfile_close(m.pidfile, m.pidfd) : 0) {
	case 1:
		log_warn("pid file %s emptied, not removed", m.pidfile);
		break;
	case -1:
		log_warn("pid file %s left as it was", m.pidfile);
		break;
	}
	free(m.pidfile);
	config_free(m.cfg);
	return m.exit_status;
}
