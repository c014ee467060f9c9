/*
 * worker.h: a worker process: its libev loop, its channel to the master,
 * the listen sockets it accepts on when told to, and every connection it
 * accepted, from accept to close.
 */
#ifndef PREFORKD_WORKER_H
#define PREFORKD_WORKER_H

#include <sys/queue.h>
#include <stdint.h>

#include <ev.h>

#include "config.h"
#include "conn.h"
#include "log.h"

/* A listen socket as a worker sees it. */
struct wlisten {
	uint32_t	 id;		/* the master's listen socket id */
	int		 fd;		/* inherited at fork; -1 once closed */
	struct worker	*worker;
	struct conn_listen cl;		/* its config, mode and connections */
	ev_io		 lease_io;	/* accepting while holding a lease */
};

struct worker {
	struct ev_loop	*loop;
	const struct config *cfg;	/* inherited at fork; never freed here */
	int		 slot;
	unsigned	 gen;
	int		 chan;		/* our end of the master's socketpair */
	ev_io		 chan_io;	/* EV_MAXPRI: orders come first */
	ev_timer	 heartbeat;
	ev_timer	 pause;		/* accepting paused after EMFILE */
	ev_timer	 deadline;	/* draining: close what remains */
	ev_idle		 lease_idle;	/* keeps the poll non-blocking in a lease */
	ev_check	 lease_check;	/* ends a lease after an idle iteration */
	ev_timer	 lease_timer;	/* ends a busy lease after LEASE_IDLE */
	struct wlisten	*lease;		/* the listener we may accept on now */
	uint16_t	 lease_seq;	/* the ACCEPT's number, echoed in ACCEPTED */
	unsigned	 lease_count;	/* connections taken in this lease */
	int		 lease_progress; /* taken one in this loop iteration */
	unsigned	 lease_max;	/* LEASE_MAX, or the master's cap if lower */
	struct wlisten	*ls;		/* owned, nls of them */
	size_t		 nls;
	size_t		 scratch_size;	/* of pool.scratch, which it owns */
	struct conn_pool pool;		/* its connections and their counters */
	uint32_t	 handed;	/* CONN messages received (dispatch = handoff) */
	int		 draining;
	int		 paused;
	int		 full;		/* at max_connections when last reported */
	struct log_rate	 emfile_log;	/* "pausing accepts": once a second */
};

/* What the master hands a freshly forked worker. */
struct worker_spawn {
	const struct config *cfg;
	int		 slot;
	unsigned	 gen;
	int		 chan;
	size_t		 nls;
	uint32_t	 ids[256];	/* listen socket ids, nls of them */
	int		 fds[256];
	const struct listener_conf *confs[256];
	/* Its slot in the generation's shared statistics (stats.h). */
	struct stats_wcount *wstats;
	struct stats_lcount *lstats[256];	/* per listener, as confs */
	struct stats_bcount *bstats[256];	/* that listener's backends */
	/* The generation's shared admission counts (clients.h); never NULL. */
	struct clients_gen *cg;
	int		 cslot;		/* its journal slot there */
	size_t		 lidx[256];	/* each listener's index in cfg (as confs) */
};

/*
 * Run a worker in the forked child: a new libev loop, HELLO to the master,
 * then serve until told to drain or stop, or until the master is gone.
 * Exits with 0 on a clean end, 1 on a start-up failure.
 */
void	worker_main(const struct worker_spawn *sp) __attribute__((noreturn));

#endif
