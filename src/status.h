/*
 * status.h: what the master reports: the STATUS= line for systemd, the
 * watchdog, the stop deadline extension, the periodic tick (heartbeat
 * checks, accept rate), the generation's readiness, and the whole view of
 * the statistics that the control socket and the metrics render.  Reads
 * the tables; changes only the report fields of struct master and marks a
 * silent worker unresponsive.  May not start, stop or reload anything.
 */
#ifndef PREFORKD_STATUS_H
#define PREFORKD_STATUS_H

#include "mstate.h"

/* Compose STATUS= into m->status; send it when it changed and send is set. */
void	status_send(struct master *m, int send);
/*
 * While draining for a stop, ask systemd to wait: what is left of
 * shutdown_timeout plus a grace that covers KILL_GRACE.
 */
void	status_extend(struct master *m);
/*
 * Once every slot of the current generation has a ready worker, mark the
 * generation ready and tell systemd (READY=1) and a daemonising parent.
 * Returns 1 when it did so now, else 0 (not ready, ready before, or
 * stopping): the caller then runs a reload queued meanwhile.
 */
int	status_check_ready(struct master *m);

/*
 * Fill v with what the master can tell now: a row per listener and per
 * backend of the current configuration (stats_collect: the live
 * generations' slots and the retired totals), a row per worker process of
 * every generation (draining ones too; by generation, then slot), and the
 * master's own figures.  Its strings are borrowed from m (the config, the
 * last reload's result) and hold until the next reload; free v with
 * stats_view_free().  0, or -1 with errno set and nothing in v.
 */
int	status_view(struct master *m, struct stats_view *v);

/* m->watchdog: WATCHDOG=1 only while the loop runs and the workers answer. */
void	status_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents);
/* m->tick, every second: stale workers, STATUS=, the accept rate. */
void	status_tick_cb(struct ev_loop *loop, ev_timer *t, int revents);

#endif
