/*
 * reload.h: generations.  A reload (SIGHUP) reads the configuration
 * again, opens what is new, and only when all of it opened swaps the
 * configuration, forks a new generation and drains the old ones (at most
 * max_draining of them).  Owns m->cfg and m->gen, and the requests waiting
 * for a reload's outcome; may not reap or stop.
 */
#ifndef PREFORKD_RELOAD_H
#define PREFORKD_RELOAD_H

#include "mstate.h"

/*
 * Reload m's configuration: queued while the current generation starts
 * (unless it is stuck), ignored while stopping.  A failure is logged and
 * reported to systemd, and the running generation is kept.
 */
void	reload_run(struct master *m);

/*
 * A reload whose outcome rw->done is told (the synchronous reload of the
 * control socket).  Only a reload that reads the configuration after the
 * request arrived answers it: when one is queued (not read yet) rw shares
 * it; when one is committed and its generation not ready yet, another is
 * queued behind it; otherwise a reload runs now.  The outcome: ok once
 * the generation is ready, failed with
 * every error line when the configuration or a socket is refused, when the
 * new generation cannot start at all, or when the master stops first.
 * rw->done may be called before this returns.
 */
void	reload_request(struct master *m, struct reload_wait *rw);
/* rw's owner goes away: it is taken off the queue and never called. */
void	reload_cancel(struct reload_wait *rw);
/* The current generation just became ready: a committed reload succeeded. */
void	reload_ready(struct master *m);
/*
 * No outcome will come (the master stops, or the committed generation
 * cannot start): every waiting request fails with why, one line.
 */
void	reload_abandon(struct master *m, const char *why);

#endif
