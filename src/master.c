/*
 * master.c: the master process: its state (mstate.h), its loop, its
 * signals, start and stop.  It wires the role files together and is the
 * only one that calls up the stack: listen sockets (lsock.c), who accepts
 * (dispatch.c), worker processes (proc.c), generations (reload.c),
 * reports (status.c) and health checks (health.c).  None of them calls
 * back into this file; a worker's channel reaches it through m->chan_cb.
 * It decides who accepts through dispatch.c; it never reads a client
 * byte.
 */
#include <sys/resource.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "control.h"
#include "daemon.h"
#include "dispatch.h"
#include "health.h"
#include "lsock.h"
#include "master.h"
#include "metrics.h"
#include "proc.h"
#include "reload.h"
#include "selfpipe.h"
#include "status.h"

/*
 * If the generation just became ready: tell those waiting for the reload
 * that made it, then run a reload queued meanwhile.
 */
static void
master_ready(struct master *m)
{
	if (!status_check_ready(m))
		return;
	reload_ready(m);
	if (m->reload_pending) {
		m->reload_pending = 0;
		reload_run(m);
	}
}

/* m->forget: in a forked worker, drop what only the master serves. */
static void
master_forget(struct master *m)
{
	metrics_forget(m);
	control_forget(m->ctl);
}

/* m->chan_cb: what a worker says on its channel. */
static void
master_chan_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct wproc *w = io->data;
	struct master *m = w->m;
	struct chan_msg msg;
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
			checks_each_down(&m->checks, health_tell_down, w);
			health_tell_admin(m, w);
			master_ready(m);
			break;
		case CHAN_ACCEPTED:
			dispatch_answered(m, w, &msg);
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
			dispatch_lease_level(m, w);
	}
	dispatch_resume(m);
}

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
		reload_abandon(m, "the master is stopping");
		LIST_FOREACH_SAFE(ls, &m->lsocks, entry, next)
			lsock_close(m, ls);
		checks_clear(&m->checks);
		for (int i = 0; i < m->nslots; i++)
			ev_timer_stop(m->loop, &m->slots[i]->respawn);
	}
	if (!immediate && m->stopping == 0) {
		m->stopping = 1;
		LIST_FOREACH(w, &m->procs, entry)
			proc_drain(w, m->cfg->shutdown_ms);
		grace = m->cfg->shutdown_ms / 1000.0 + KILL_GRACE;
		m->stop_at = ev_now(m->loop) + grace;
		status_extend(m);
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

/* After SIGCHLD reaped the dead: what their deaths mean for the master. */
static void
master_reaped(struct master *m)
{
	if (m->stopping && LIST_EMPTY(&m->procs)) {
		ev_break(m->loop, EVBREAK_ALL);
		return;
	}
	if (!m->stopping) {
		int fatal_all;

		if (m->reload_pending && !m->gen_ready && proc_gen_stuck(m)) {
			/*
			 * Queued for a generation that will not be ready soon:
			 * first, since it may replace one that cannot start.
			 */
			m->reload_pending = 0;
			reload_run(m);
		}
		fatal_all = m->nslots > 0;
		for (int i = 0; i < m->nslots; i++)
			fatal_all &= m->slots[i]->fatal;
		if (fatal_all && m->reload_busy) {
			char why[80];

			snprintf(why, sizeof(why), "generation %u: no worker can start", m->gen);
			reload_abandon(m, why);
		}
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
	dispatch_resume(m);
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
			reload_run(m);
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
				proc_send(w, &reopen);
			break;
		case SIGTTIN:
		case SIGTTOU:
			if (proc_workers_delta(m, signo == SIGTTIN))
				master_ready(m);
			break;
		case SIGCHLD:
			proc_reap(m);
			master_reaped(m);
			break;
		}
	}
}

/*
 * Start-up, in order: the pid file (locked and written; a lock held by a
 * running instance stops the start), the listen sockets (bound, or passed
 * by systemd), the control socket, the log, then the switch to the
 * configured user, which keeps the pid file's descriptor and so its lock.  Errors go to stderr,
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
	if (metrics_open(m, err, sizeof(err)) == -1) {
		fprintf(stderr, "preforkd: %s\n", err);
		return -1;
	}
	for (int i = 0; i < m->npassed; i++)
		if (!m->passed[i].used) {
			fprintf(stderr, "preforkd: socket %s (fd %d) passed by systemd matches no [listener]\n",
			    m->passed[i].name[0] ? m->passed[i].name : "(unnamed)",
			    m->passed[i].fd);
			return -1;
		}
	if (cfg->control != NULL && (m->ctl = control_open(m, cfg->control, cfg->user != NULL,
	    cfg->uid, cfg->gid, err, sizeof(err))) == NULL) {
		fprintf(stderr, "preforkd: %s\n", err);
		return -1;
	}
	if (log_open(cfg->log_target) == -1) {
		fprintf(stderr, "preforkd: log_target %s: %s\n", cfg->log_target,
		    strerror(errno));
		return -1;
	}
	log_set_level(cfg->log_level);
	log_set_format(cfg->log_format);
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

/* m's state before anything opens: generation 1, nothing owned yet. */
static void
master_init(struct master *m, struct config *cfg, const char *file,
    const struct config_overrides *ov)
{
	memset(m, 0, sizeof(*m));
	m->cfg = cfg;
	m->file = file;
	m->ov = ov;
	m->gen = 1;
	m->pidfd = -1;
	m->chan_cb = master_chan_cb;
	m->forget = master_forget;
	m->started = (double)time(NULL);
	snprintf(m->reload_result, sizeof(m->reload_result), "none");
	LIST_INIT(&m->lsocks);
	LIST_INIT(&m->procs);
	LIST_INIT(&m->reload_waits);
	admin_init(&m->admin);
}

/*
 * Catch the master's signals into the self-pipe; its descriptor.  Signals
 * are caught before the pid file names us: a -s reopen or stop that comes
 * while the sockets open waits in the pipe for the loop instead of
 * killing a master half started.
 */
static int
master_signals(void)
{
	static const int sigs[] = {
		SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGTTIN, SIGTTOU, SIGCHLD,
	};
	int sigfd;

	if ((sigfd = selfpipe_open()) == -1)
		fatal("self-pipe");
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (selfpipe_catch(sigs[i]) == -1)
			fatal("sigaction");
	return sigfd;
}

/* The loop and the master's own watchers: signals, tick, timers, watchdog. */
static void
master_watchers(struct master *m, int sigfd)
{
	unsigned long long wd_usec;

	if ((m->loop = ev_loop_new(EVFLAG_AUTO)) == NULL)
		fatalx("cannot create the event loop");
	ev_io_init(&m->sig_io, master_sig_cb, sigfd, EV_READ);
	m->sig_io.data = m;
	ev_set_priority(&m->sig_io, EV_MAXPRI);
	ev_io_start(m->loop, &m->sig_io);
	ev_timer_init(&m->tick, status_tick_cb, 1., 1.);
	m->tick.data = m;
	ev_timer_start(m->loop, &m->tick);
	ev_timer_init(&m->answer, dispatch_answer_cb, ANSWER_SECS, ANSWER_SECS);
	m->answer.data = m;
	ev_timer_init(&m->stop_timer, master_stop_cb, 0., 0.);
	m->stop_timer.data = m;
	ev_timer_init(&m->accept_pause, dispatch_pause_cb, ACCEPT_PAUSE_SECS, 0.);
	m->accept_pause.data = m;
	if ((wd_usec = sd_watchdog_usec()) > 0) {
		ev_timer_init(&m->watchdog, status_watchdog_cb, 0., wd_usec / 2e6);
		m->watchdog.data = m;
		ev_timer_again(m->loop, &m->watchdog);
		log_info("systemd watchdog: every %llu ms", wd_usec / 2000);
	}
	if (m->ctl != NULL)
		control_start(m->ctl);
}

/* Start the checks and the workers, run until stopped, then take the loop down. */
static void
master_loop(struct master *m)
{
	log_notice("preforkd starting, pid %d, %zu listeners, %d workers",
	    (int)getpid(), m->cfg->nlisteners, m->cfg->workers);
	m->checks.loop = m->loop;
	m->checks.changed = health_changed;
	m->checks.arg = m;
	health_start(m);
	/* Room for SIGTTIN's most workers; pages are used only as touched. */
	if ((m->stats = stats_new()) == NULL ||
	    (m->sg = stats_gen_new(m->cfg, m->gen, CONFIG_MAX_WORKERS)) == NULL ||
	    stats_gen_start(m->stats, m->sg) == -1)
		fatal("statistics region");
	if ((m->clients = clients_new()) == NULL ||
	    (m->cg = clients_gen_new(m->clients, m->cfg, CONFIG_MAX_WORKERS)) == NULL)
		fatal("admission counts");
	metrics_start(m);
	proc_slots(m, m->cfg->workers);
	dispatch_resume(m);
	ev_run(m->loop, 0);

	metrics_close(m);
	for (int i = 0; i < m->nslots; i++)
		proc_slot_free(m, m->slots[i]);
	free(m->slots);
	checks_clear(&m->checks);
	control_close(m->ctl);
	m->ctl = NULL;
	stats_free(m->stats);	/* and every region left in it */
	clients_gen_free(m->clients, m->cg);
	clients_free(m->clients);
	admin_fini(&m->admin);
	ev_loop_destroy(m->loop);
	selfpipe_close();
	log_notice("exiting");
}

/* Release what m still owns: sockets, the pid file, the configuration. */
static void
master_close(struct master *m)
{
	struct lsock *ls, *next;

	LIST_FOREACH_SAFE(ls, &m->lsocks, entry, next) {
		LIST_REMOVE(ls, entry);
		lsock_release(ls);
	}
	metrics_forget(m);	/* a start that failed: the loop never ran */
	for (int i = 0; i < m->npassed; i++)
		close(m->passed[i].fd);
	free(m->passed);
	control_close(m->ctl);		/* a start that failed: never watched */
	switch (m->pidfd != -1 ? pidfile_close(m->pidfile, m->pidfd) : 0) {
	case 1:
		log_warn("pid file %s emptied, not removed", m->pidfile);
		break;
	case -1:
		log_warn("pid file %s left as it was", m->pidfile);
		break;
	}
	free(m->pidfile);
	config_free(m->cfg);
}

int
master_run(struct config *cfg, const char *file, const struct config_overrides *ov)
{
	struct master m;
	struct rlimit rl;
	int sigfd;

	master_init(&m, cfg, file, ov);
	signal(SIGPIPE, SIG_IGN);
	/* Many connections need many descriptors: take what we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigfd = master_signals();
	if (master_open(&m) == -1)
		m.exit_status = 1;
	else {
		master_watchers(&m, sigfd);
		master_loop(&m);
	}
	master_close(&m);
	return m.exit_status;
}
