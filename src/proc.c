/*
 * proc.c: the worker processes and their slots (proc.h).
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "lsock.h"
#include "proc.h"
#include "selfpipe.h"
#include "worker.h"

#define QUICK_DEATH	1.0	/* a worker dying sooner is backed off */
#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	10000
#define FATAL_TRIES	3	/* starts failing with status 2 in a row: give up */

static int	proc_spawn(struct master *m, struct slot *s);

void
proc_send(struct wproc *w, struct chan_msg *msg)
{
	if (chan_send(w->chan, msg) == -1)
		log_warn("sending %s to worker %d gen %u (pid %d)",
		    chan_type_name(msg->type), w->slot, w->gen, (int)w->pid);
}

void
proc_drain(struct wproc *w, unsigned timeout_ms)
{
	struct chan_msg msg = { .type = CHAN_DRAIN, .timeout_ms = timeout_ms };

	w->state = W_DRAINING;
	proc_send(w, &msg);
}

/*
 * The slot of m->sg for a new worker of slot idx: idx itself, unless a
 * worker of this generation still writes it (one SIGTTOU drains while
 * SIGTTIN brings a new one to the same place); then the first free one.
 * With none free (CONFIG_MAX_WORKERS live ones) idx is shared: its totals
 * stay right, its gauges may stay high after one of the two dies.
 * O(slots x workers), and only in that case.
 */
/* 1 when a live worker of the current generation writes statistics slot sslot. */
static int
proc_stats_taken(const struct master *m, int sslot)
{
	const struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w->sg == m->sg && w->sslot == sslot)
			return 1;
	return 0;
}

static int
proc_stats_slot(struct master *m, int idx)
{
	int n = stats_slots(m->sg);

	for (int i = -1; i < n; i++) {
		int cand = i < 0 ? idx : i;

		if (cand < n && !proc_stats_taken(m, cand))
			return cand;
	}
	return idx;
}

/* 1 when a live worker other than dead writes dead's statistics slot. */
static int
proc_stats_shared(const struct master *m, const struct wproc *dead)
{
	const struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w != dead && w->sg == dead->sg && w->sslot == dead->sslot)
			return 1;
	return 0;
}

void
proc_gen_release(struct master *m, struct stats_gen *sg, struct clients_gen *cg)
{
	struct wproc *w;

	if (sg == NULL || sg == m->sg)
		return;
	LIST_FOREACH(w, &m->procs, entry)
		if (w->sg == sg)
			return;
	stats_retire(m->stats, sg);
	stats_gen_free(sg);
	clients_gen_free(m->clients, cg);
}

static void
proc_child(struct master *m, struct slot *s, int chan, int sslot, int cslot)
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
		/* The region was laid out from m->cfg, whose listener this is. */
		sp.lstats[sp.nls] = stats_listener(m->sg, sslot,
		    (size_t)(ls->conf - m->cfg->listeners));
		sp.bstats[sp.nls] = stats_backends(m->sg, sslot,
		    (size_t)(ls->conf - m->cfg->listeners));
		sp.lidx[sp.nls] = (size_t)(ls->conf - m->cfg->listeners);
		sp.nls++;
	}
	for (int i = 0; i < m->npassed; i++)
		if (!m->passed[i].used)
			close(m->passed[i].fd);	/* parked by a reload */
	checks_clear(&m->checks);	/* the master's sockets, not ours */
	if (m->pidfd != -1)
		close(m->pidfd);	/* the lock is the master's alone */
	m->forget(m);			/* control and metrics: the master's */
	daemon_forget();
	ev_loop_destroy(m->loop);
	unsetenv("NOTIFY_SOCKET");
	sp.cfg = m->cfg;
	sp.wstats = stats_worker(m->sg, sslot);
	sp.cg = m->cg;
	sp.cslot = cslot;
	sp.slot = s->idx;
	sp.gen = m->gen;
	sp.chan = chan;
	worker_main(&sp);
}

static void
proc_respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct slot *s = t->data;

	(void)loop, (void)revents;
	proc_spawn(s->m, s);
}

static void
proc_schedule(struct master *m, struct slot *s, ev_tstamp lived)
{
	if (lived < QUICK_DEATH)
		s->delay_ms = s->delay_ms == 0 ? BACKOFF_MIN_MS :
		    s->delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->delay_ms * 2;
	else
		s->delay_ms = 0;
	log_notice("respawning worker %d in %u ms", s->idx, s->delay_ms);
	if (s->delay_ms == 0) {
		proc_spawn(m, s);
		return;
	}
	ev_timer_set(&s->respawn, s->delay_ms / 1000.0, 0.);
	ev_timer_start(m->loop, &s->respawn);
}

static int
proc_spawn(struct master *m, struct slot *s)
{
	struct wproc *w;
	sigset_t all, old;
	int sv[2], sslot, cslot;
	pid_t pid;

	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("worker %d: cannot make its channel", s->idx);
		free(w);
		proc_schedule(m, s, 0);
		return -1;
	}
	sslot = proc_stats_slot(m, s->idx);
	stats_slot_use(m->sg, sslot);
	/* The journal's slots follow the statistics', but are never shared. */
	cslot = proc_stats_taken(m, sslot) ? -1 : sslot;
	/* Blocked across fork: no handler of ours runs in the child. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	if ((pid = fork()) == 0) {
		free(w);	/* the parent's record of the child */
		close(sv[0]);
		proc_child(m, s, sv[1], sslot, cslot);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	if (pid == -1) {
		log_warn("worker %d: fork", s->idx);
		close(sv[0]);
		free(w);
		proc_schedule(m, s, 0);
		return -1;
	}
	w->pid = pid;
	w->slot = s->idx;
	w->gen = m->gen;
	w->state = W_STARTING;
	w->chan = sv[0];
	w->m = m;
	w->sg = m->sg;
	w->cg = m->cg;
	w->cslot = cslot;
	w->sslot = sslot;
	w->started = w->last_seen = ev_now(m->loop);
	ev_io_init(&w->io, m->chan_cb, sv[0], EV_READ);
	w->io.data = w;
	ev_set_priority(&w->io, EV_MAXPRI);
	ev_io_start(m->loop, &w->io);
	LIST_INSERT_HEAD(&m->procs, w, entry);
	s->w = w;
	log_notice("worker %d gen %u started, pid %d", s->idx, m->gen, (int)pid);
	return 0;
}

static struct slot *
proc_slot_new(struct master *m, int idx)
{
	struct slot *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("slot");
	s->idx = idx;
	s->m = m;
	ev_timer_init(&s->respawn, proc_respawn_cb, 0., 0.);
	s->respawn.data = s;
	return s;
}

void
proc_slot_free(struct master *m, struct slot *s)
{
	ev_timer_stop(m->loop, &s->respawn);
	free(s);
}

/* Replace the slot table with n fresh slots and fill them. */
void
proc_slots(struct master *m, int n)
{
	struct slot **v;

	for (int i = 0; i < m->nslots; i++)
		proc_slot_free(m, m->slots[i]);
	if ((v = realloc(m->slots, n * sizeof(*v))) == NULL)
		fatal("slots");
	m->slots = v;
	m->nslots = n;
	m->rr = 0;
	for (int i = 0; i < n; i++)
		m->slots[i] = proc_slot_new(m, i);
	for (int i = 0; i < n; i++)
		proc_spawn(m, m->slots[i]);
}

/*
 * The current generation cannot become ready soon: a slot has no worker,
 * waiting to respawn after a quick death or failed for good.
 */
int
proc_gen_stuck(const struct master *m)
{
	for (int i = 0; i < m->nslots; i++)
		if (m->slots[i]->w == NULL)
			return 1;
	return 0;
}

static int
proc_gen_alive(struct master *m, unsigned gen)
{
	struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w->gen == gen)
			return 1;
	return 0;
}

void
proc_reap(struct master *m)
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
		/* Its connections died with it; before a successor writes the slot. */
		if (!proc_stats_shared(m, w))
			stats_slot_died(w->sg, w->sslot);
		if (w->cslot != -1)
			clients_slot_died(w->cg, w->cslot);

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
			} else if (!m->stopping) {
				m->respawns++;
				proc_schedule(m, s, ev_now(m->loop) - w->started);
			}
		} else if (w->gen != m->gen && !proc_gen_alive(m, w->gen))
			log_notice("generation %u finished draining", w->gen);
		proc_gen_release(m, w->sg, w->cg);
		free(w);
	}
}

int
proc_workers_delta(struct master *m, int more)
{
	struct slot **v;
	struct slot *s;

	if (m->stopping)
		return 0;
	if (more) {
		if (m->nslots >= CONFIG_MAX_WORKERS)
			return 0;
		if (lsock_slots_all(m, m->nslots + 1) == -1) {
			log_warnx("SIGTTIN: no socket for another worker; keeping %d "
			    "(after the switch to user, reuseport sockets can be added "
			    "only by a restart)", m->nslots);
			return 0;
		}
		if ((v = realloc(m->slots, (m->nslots + 1) * sizeof(*v))) == NULL)
			fatal("slots");
		m->slots = v;
		s = m->slots[m->nslots] = proc_slot_new(m, m->nslots);
		m->nslots++;
		log_notice("SIGTTIN: %d workers", m->nslots);
		proc_spawn(m, s);
		return 0;
	}
	if (m->nslots <= 1)
		return 0;
	s = m->slots[--m->nslots];
	log_notice("SIGTTOU: %d workers", m->nslots);
	if (s->w != NULL)
		proc_drain(s->w, m->cfg->drain_ms);
	proc_slot_free(m, s);
	lsock_slots_all(m, m->nslots);	/* only closes */
	m->rr %= m->nslots;
	return 1;
}
