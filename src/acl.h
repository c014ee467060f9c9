/*
 * acl.h: who may connect to a listener.  Owns the decision made for each
 * connection as it is accepted and, when a PROXY header names the client,
 * again once the header is read: the trusted PROXY senders
 * (accept_proxy_from), the address rules (deny, then allow), and the
 * shared counts (clients.h: the listener's max_connections, then the
 * client's rate and its open connections).  A refusal is counted by
 * reason in the listener's statistics and logged at notice, once a second
 * at most per listener and worker, with the count of those held back.
 *
 * Which address each check sees: accept_proxy_from sees the peer (the
 * sender of the header); the rules and the per-client limits see the
 * client, which is the address the header carried when one was read, and
 * the peer otherwise (no accept_proxy, an untrusted sender served direct,
 * a LOCAL or UNKNOWN header).  max_connections sees no address.
 *
 * Called by conn.c only; knows no mode.
 */
#ifndef PREFORKD_ACL_H
#define PREFORKD_ACL_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "clients.h"
#include "config.h"
#include "log.h"
#include "stats.h"

struct acl {
	const struct listener_conf *conf;	/* borrowed */
	struct clients_gen *cg;		/* the generation's shared counts */
	size_t		 li;		/* the listener's index in cg's config */
	struct stats_lcount *st;	/* the listener's counters */
	struct log_rate	 log;		/* "refused": once a second */
};

/* What acl_accept() decided. */
enum acl_step {
	ACL_SERVE,		/* serve it now: no header to read */
	ACL_HEADER,		/* read the PROXY header first, then acl_client() */
	ACL_REFUSED		/* refused: counted, logged, nothing held */
};

void	acl_init(struct acl *a, const struct listener_conf *conf,
	    struct clients_gen *cg, size_t li, struct stats_lcount *st);

/*
 * A connection from peer was accepted.  Decide, and count what it holds in
 * *hold (CLIENTS_NOHOLD when nothing; give it back with acl_leave()).
 * now: the loop's time, for the log's rate.
 */
enum acl_step acl_accept(struct acl *a, const struct sockaddr *peer,
	    uint32_t *hold, double now);
/*
 * ACL_HEADER: the header was read and names client (the peer when it names
 * none).  0: serve it; -1: refused (counted and logged; the caller closes
 * it, with CONN_REFUSED, and gives back hold).
 */
int	acl_client(struct acl *a, const struct sockaddr *client, uint32_t hold,
	    double now);
/* The connection ends: give back what hold counts. */
void	acl_leave(struct acl *a, uint32_t hold);

#endif
