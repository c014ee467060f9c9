/*
 * health.h: the master's side of the backends' state.  check.c runs the
 * health checks; this file starts them for the configured listeners and
 * sends what they find to the workers (CHAN_BACKEND).  It also keeps the
 * operator's settings (drain, maint, weight: the table of admin.c in
 * m->admin), sends them to the workers (CHAN_ADMIN), stops the checks of
 * a backend in maint, and fills the backends' rows of the status view.
 * May not change a worker's or a socket's state.
 */
#ifndef PREFORKD_HEALTH_H
#define PREFORKD_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "mstate.h"
#include "stats.h"

/*
 * (Re)start the health checks of every configured listener, after a
 * reload too: the operator's settings of backends no longer configured
 * are dropped (and logged), and the checks of those in maint stay stopped.
 */
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
/*
 * Tell worker w, just ready, the operator's settings of its backends.
 * Only a worker of the current generation is told: the settings are
 * kept by the current configuration's backend indexes.
 */
void	health_tell_admin(struct master *m, struct wproc *w);

/*
 * The operator sets backend addr (as configured, "host:port") of the
 * listener named listener to state "ready", "drain" (no new connections;
 * open ones finish) or "maint" (as drain, and its health checks stop;
 * they start again, from up, when it leaves maint).  The setting is kept
 * across reloads while the backend keeps its address, and every worker of
 * the current generation is told at once.  0, or -1 with one line for the
 * operator in err: "state must be ready, drain or maint", "no listener
 * NAME", "no backend ADDR in listener NAME" or "out of memory"; nothing
 * changed then.
 */
int	health_admin(struct master *m, const char *listener, const char *addr,
	    const char *state, char *err, size_t errlen);
/*
 * As health_admin(), for the weight the balancing gives the backend
 * (roundrobin, leastconn, random; source ignores weights): 1..256, kept
 * as the operator's until the backend goes away, whatever the config
 * says.  The error for a weight out of range is "weight must be 1..256".
 */
int	health_weight(struct master *m, const char *listener, const char *addr,
	    unsigned weight, char *err, size_t errlen);

/*
 * Fill each backend row of v (made by stats_collect() for m->cfg, its
 * counters summed): the state, maint > drain > down > up; why, "operator"
 * for drain and maint, "check failed" when the active check has it down,
 * "marked down by N of M workers" when N of the M worker processes
 * running have it marked down after failed connects (their passive_down
 * gauges, summed), "" when up; the weight in effect; and the last check's
 * result and time.  A row's why may point into the row's why_buf.
 */
void	health_view(const struct master *m, struct stats_view *v);

#endif
