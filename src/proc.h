/*
 * proc.h: the worker processes and their slots.  A slot is a place for one
 * worker of the current generation; this file forks its worker, reaps it,
 * respawns it with a back-off (or gives up after repeated start
 * failures), and grows or shrinks the slot table (SIGTTIN, SIGTTOU).
 * Hands each worker its slot of the generation's statistics region,
 * zeroes a dead worker's gauges and retires a region once the last
 * worker writing it is gone.
 * Owns struct slot and the lifetime of each struct wproc; may not open
 * listen sockets (lsock.c), choose who accepts (dispatch.c) or decide to
 * reload or stop (reload.c, master.c).
 */
#ifndef PREFORKD_PROC_H
#define PREFORKD_PROC_H

#include "chan.h"
#include "mstate.h"

/*
 * A generation's shared memory, its statistics region sg and its
 * admission counts cg: fold sg into the totals and unmap both, unless
 * they are the current generation's or a worker still writes them.
 */
void	proc_gen_release(struct master *m, struct stats_gen *sg,
	    struct clients_gen *cg);
/* Send msg to w; a failure is logged. */
void	proc_send(struct wproc *w, struct chan_msg *msg);
/* Tell w to finish its connections within timeout_ms and exit. */
void	proc_drain(struct wproc *w, unsigned timeout_ms);
/* Replace the slot table with n fresh slots and fill them. */
void	proc_slots(struct master *m, int n);
/* Free slot s (its worker, if any, is not touched). */
void	proc_slot_free(struct master *m, struct slot *s);
/*
 * The current generation cannot become ready soon: a slot has no worker,
 * waiting to respawn after a quick death or failed for good.
 */
int	proc_gen_stuck(const struct master *m);
/*
 * Reap every exited worker: log it, free it and, unless stopping,
 * schedule its slot's respawn or mark the slot failed for good.
 */
void	proc_reap(struct master *m);
/*
 * SIGTTIN (more) or SIGTTOU: one worker more or fewer.  Returns 1 when a
 * slot was removed (the generation may be ready now), else 0.
 */
int	proc_workers_delta(struct master *m, int more);

#endif
