/*
 * mstate.h: the master's state, private to the master's files (master.c,
 * lsock.c, dispatch.c, proc.c, reload.c, status.c, health.c, control.c,
 * metrics.c).  Types and shared limits only, no functions.
 *
 * Why one shared header rather than a struct private to master.c: every
 * role file of the master reads the same three tables (the listen
 * sockets, the worker processes, the slots), and each role's header
 * includes this one rather than another role's.  So no role header
 * depends on another and the include graph stays one-way; main.c sees
 * only master.h.  What each member means is said here; which file
 * changes it is said in the role files' headers.
 */
#ifndef PREFORKD_MSTATE_H
#define PREFORKD_MSTATE_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdint.h>

#include <ev.h>

#include "admin.h"
#include "check.h"
#include "clients.h"
#include "config.h"
#include "log.h"
#include "net.h"
#include "sdnotify.h"
#include "stats.h"

#ifndef LIST_FOREACH_SAFE
#define LIST_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = LIST_FIRST(head);					\
	    (var) != NULL && ((tvar) = LIST_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#define KILL_GRACE	2.0	/* after a stop deadline, before SIGKILL */

struct master;
struct control;
struct metrics;

/*
 * Someone waiting for the outcome of a reload (a control client):
 * reload_request() queues it, and done is called once, after it was taken
 * off the queue, so done may free the struct.  ok: msg[0] is "generation
 * N"; failed: msg holds every error line (FILE:LINE: key: message).
 */
struct reload_wait {
	void		(*done)(struct reload_wait *rw, int ok,
			    const char *const *msg, size_t n);
	void		*arg;
	int		 queued;
	unsigned	 need;		/* the first reload (m->reload_seq) that answers it */
	LIST_ENTRY(reload_wait) entry;
};

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
					   start level with the others (dispatch_lease_level) */
	struct stats_gen *sg;		/* its generation's statistics (m->stats has it) */
	int		 sslot;		/* its slot there, which it writes */
	struct clients_gen *cg;		/* its generation's admission counts */
	int		 cslot;		/* its journal slot there: sslot, or -1
					   when sslot is shared (never a journal) */
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
	double		 recent;	/* notify: connections taken lately, decaying
					   (dispatch.c, RECENT_SECS) */
	ev_tstamp	 recent_at;	/* ... as of this time */
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
	struct metrics	*metrics;	/* owned (metrics.c); NULL: never configured */
	struct admin	 admin;		/* the operator's backend settings (health.c) */
	int		 stopping;	/* 0, 1 graceful, 2 immediate */
	int		 gen_ready;
	int		 fatal_logged;	/* every slot of this generation failed for good */
	int		 reload_pending;
	int		 reload_busy;	/* a reload committed; its generation is not ready yet */
	unsigned	 reload_seq;	/* reloads that read the configuration so far */
	LIST_HEAD(, reload_wait) reload_waits;
	struct control	*ctl;		/* owned; the control socket; NULL: none */
	int		 exit_status;
	uint64_t	 accepted, accepted_prev;
	uint64_t	 answers, answered;	/* ACCEPTED messages, conns they took */
	struct stats	*stats;		/* owned: live statistics regions, retired totals */
	struct stats_gen *sg;		/* the current generation's region, in stats */
	struct clients	*clients;	/* owned: the listeners' shared admission counts */
	struct clients_gen *cg;		/* the current generation's view of them */
	double		 started;	/* unix time the master started */
	uint64_t	 reloads_ok, reloads_failed, respawns;
	char		 reload_result[300];
	char		 status[640];	/* last STATUS= sent */
	/* Set by master.c: what a worker's channel watcher calls (proc.c). */
	void		(*chan_cb)(struct ev_loop *loop, ev_io *io, int revents);
	/*
	 * Set by master.c: in a freshly forked worker, close the descriptors
	 * of the master's own servers (control socket, metrics) and free
	 * their state, without touching the master's (proc.c calls it).
	 */
	void		(*forget)(struct master *m);
};

#endif
