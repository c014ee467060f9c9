/*
 * health.h: the master's side of the backend health checks.  check.c
 * runs the checks; this file starts them for the configured listeners and
 * sends what they find to the workers (CHAN_BACKEND).  May not change a
 * worker's or a socket's state.
 */
#ifndef PREFORKD_HEALTH_H
#define PREFORKD_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "mstate.h"

/* (Re)start the health checks of every configured listener. */
void	health_start(struct master *m);
/*
 * m->checks.changed: a health check changed a backend's state (arg is the
 * master); tell the workers of the current generation.
 */
void	health_changed(void *arg, uint32_t lsock, size_t idx, int up);
/*
 * For checks_each_down(): tell worker arg (a struct wproc) that backend
 * idx of listen socket lsock is down.
 */
void	health_tell_down(void *arg, uint32_t lsock, size_t idx);

#endif
