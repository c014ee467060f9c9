/*
 * reload.h: generations.  A reload (SIGHUP) reads the configuration
 * again, opens what is new, and only when all of it opened swaps the
 * configuration, forks a new generation and drains the old ones (at most
 * max_draining of them).  Owns m->cfg and m->gen; may not reap or stop.
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

#endif
