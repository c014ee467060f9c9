/*
 * dispatch.h: who accepts next.  Leases on the listen sockets (dispatch =
 * notify), passing accepted connections on (handoff), the choice of
 * worker, and the answers to leases.  Owns the lease counts of each listen
 * socket and of each worker and the round-robin cursor; may not open or
 * close a socket, start or stop a worker, or send anything but ACCEPT and
 * CONN (dispatch.c explains the three dispatch modes).
 */
#ifndef PREFORKD_DISPATCH_H
#define PREFORKD_DISPATCH_H

#include "chan.h"
#include "mstate.h"

#define ANSWER_SECS	0.5	/* a worker has this long to answer ACCEPT */

/* Whether w could take a connection now, lease or no lease. */
int	wproc_open(const struct master *m, const struct wproc *w);
/*
 * w could not take connections and now can: start its lease count level
 * with the other workers'.
 */
void	dispatch_lease_level(const struct master *m, struct wproc *w);
/*
 * w answered a lease (CHAN_ACCEPTED, msg): count what it took and, when
 * the answer is to its current lease, give the lease back to its listen
 * socket, with one lease more at once while the backlog stays deep
 * (CHAN_F_MORE) or one fewer when not.  A late answer to a lease given up
 * on only counts.
 */
void	dispatch_answered(struct master *m, struct wproc *w, const struct chan_msg *msg);
/*
 * Watch every listen socket that may hand out another lease; none while
 * stopping, with reuseport or while accepts pause.
 */
void	dispatch_resume(struct master *m);

/*
 * A listen socket's watcher (io->data is the struct lsock): readable, so
 * lease it to a worker (notify) or accept and pass the connections on
 * (handoff).
 */
void	dispatch_listen_cb(struct ev_loop *loop, ev_io *io, int revents);
/* m->accept_pause: accepts resume after EMFILE in the master. */
void	dispatch_pause_cb(struct ev_loop *loop, ev_timer *t, int revents);
/* m->answer: a worker that kept a lease ANSWER_SECS loses it. */
void	dispatch_answer_cb(struct ev_loop *loop, ev_timer *t, int revents);

#endif
