/*
 * master.h: the master process: listen sockets, signals, the worker table,
 * dispatch, reload and supervision.  It never touches client bytes.
 */
#ifndef PREFORKD_MASTER_H
#define PREFORKD_MASTER_H

#include "config.h"

/*
 * Open cfg's listen sockets (the caller's message goes to stderr on
 * failure), pre-fork the workers and run until stopped.  Takes ownership
 * of cfg.  file and ov are what a reload reads again.  Returns the exit
 * status: 0 after a clean stop, 1 on a start-up failure.
 */
int	master_run(struct config *cfg, const char *file,
	    const struct config_overrides *ov);

#endif
