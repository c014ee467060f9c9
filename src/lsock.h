/*
 * lsock.h: the listen-socket table.  Opens the listen sockets (or takes
 * the ones systemd passed), binds one per slot with dispatch = reuseport,
 * applies a reload's socket keys, and closes them.  Owns each socket's
 * descriptors; may not accept on them, choose a worker or touch a worker
 * process (dispatch.c and proc.c do).
 */
#ifndef PREFORKD_LSOCK_H
#define PREFORKD_LSOCK_H

#include <stddef.h>

#include "mstate.h"

/*
 * why, an error of lc's socket, where lc is configured: "FILE:LINE: listen:
 * why" in buf, as for the file's other errors; why alone for a listener
 * of -l.  Returns buf.
 */
const char *lsock_where(const struct config *cfg, const struct listener_conf *lc,
	    const char *why, char *buf, size_t len);
/*
 * Open lc's listen socket, or take the one systemd passed for it (from
 * m->passed).  The new lsock is not in m->lsocks yet.  NULL with the
 * reason in err.
 */
struct lsock *lsock_open(struct master *m, const struct listener_conf *lc,
	    char *err, size_t errlen);
/*
 * dispatch = reuseport: give ls a socket for each of n slots, binding the
 * missing ones, or close those past n.  0, or -1 with the reason in err
 * (the sockets bound so far are kept: shrink back to undo).  Other
 * dispatch modes: 0, nothing done.
 */
int	lsock_slots(struct lsock *ls, int n, char *err, size_t errlen);
/*
 * reuseport: a socket for each of n slots on every configured listener.
 * 0, or -1 with the reason logged and every listener back at m->nslots
 * sockets.
 */
int	lsock_slots_all(struct master *m, int n);
/* A reload keeps ls for lc: apply lc's backlog and tcp_nodelay to it. */
void	lsock_update(struct lsock *ls, const struct listener_conf *lc);
/*
 * Free ls, not in any list: close the sockets bound here, park one
 * systemd passed (never closed).
 */
void	lsock_release(struct lsock *ls);
/* Stop watching ls, take it out of m->lsocks and any pending lease, free it. */
void	lsock_close(struct master *m, struct lsock *ls);
/* The configured listen socket on address a, or NULL. */
struct lsock *lsock_find(struct master *m, const struct addr *a);

#endif
