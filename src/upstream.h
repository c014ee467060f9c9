/*
 * upstream.h: a listener's backends as one worker sees them: balancing,
 * passive failure marking, the state the master's health checks report and
 * the operator's state and weight the master passes on.
 * Pure: no I/O, time is passed in (seconds, any monotonic origin).
 */
#ifndef PREFORKD_UPSTREAM_H
#define PREFORKD_UPSTREAM_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "stats.h"

#define UPSTREAM_MAX	64	/* backends per listener (a tried-set is a uint64_t) */
#define UPSTREAM_WEIGHT_MAX 256	/* as the config allows */

/* The operator's state of a backend (set backend ... ready|drain|maint). */
enum ups_admin {
	UPS_READY,		/* takes connections as its health allows */
	UPS_DRAIN,		/* no new connections; open ones finish */
	UPS_MAINT		/* as drain; the master also stops its checks */
};

struct upstream {
	const struct backend_conf *conf; /* borrowed from the config */
	int		 checked_down;	/* the master's health checks say down */
	unsigned	 fails;		/* connect failures in the current window */
	double		 fail_start;	/* when that window began */
	double		 down_until;	/* passive: out of rotation until then */
	unsigned	 conns;		/* connections open to it (this worker) */
	int		 cw;		/* smooth weighted round-robin state */
	int		 admin;		/* enum ups_admin */
	unsigned	 admin_weight;	/* the operator's weight; 0: the config's */
};

struct upstream_set {
	struct upstream	*u;		/* owned, n of them */
	size_t		 n;
	int		 balance;	/* enum balance */
	size_t		 last;		/* leastconn: previous pick (ties rotate); n: none */
	unsigned	 max_fails;	/* 0 = passive marking off */
	double		 fail_timeout;	/* seconds */
	const struct addr *src;		/* borrowed from the config: source addresses */
	size_t		 nsrc;
	size_t		 src_next[2];	/* [0] IPv4, [1] IPv6: where the next search starts */
	struct stats_bcount *st;	/* n of them, in the worker's statistics slot
					   (u[i]'s is st[i]); NULL: not counted */
};

/* Fill s from a listener's configuration (calloc'd array).  0 or -1. */
int	upstream_init(struct upstream_set *s, const struct listener_conf *lc);
void	upstream_fini(struct upstream_set *s);

/*
 * 1 when u may take new connections at now: not drained or in maintenance
 * by the operator, not checked down, not marked down.
 */
int	upstream_usable(const struct upstream *u, double now);

/*
 * Choose a backend for a client at now, skipping the indexes set in tried
 * (bit i = u[i]).  Backup backends are chosen only when no other backend is
 * usable.  roundrobin: smooth weighted round-robin (each backend gets its
 * weight's share, interleaved); leastconn: fewest conns/weight, ties by
 * index after the last pick; source: a hash of the client's IP address (not
 * its port) over the usable backends, so a client keeps its backend while
 * that set is unchanged; random: two random usable backends (rnd() gives
 * the randomness), the one with fewer conns/weight.  Returns the index, or
 * -1 when none is usable.
 */
int	upstream_pick(struct upstream_set *s, const struct sockaddr *client,
	    uint64_t tried, double now, unsigned (*rnd)(void *), void *rndarg);

/*
 * The local address for the next connection to a backend of family af:
 * the listener's source addresses of that family in turn (round robin
 * per family, the others skipped).  NULL when it has none of that family: connect
 * from whatever address the kernel chooses.
 */
const struct addr *upstream_source(struct upstream_set *s, int af);

/*
 * A connect to u[i] failed at now.  Counts failures in a window of
 * fail_timeout; the max_fails-th in one window takes the backend out of
 * rotation for fail_timeout.  Returns 1 when this call marked it down.
 */
int	upstream_failed(struct upstream_set *s, size_t i, double now);
/* A connect to u[i] succeeded: its failure count starts over. */
void	upstream_succeeded(struct upstream_set *s, size_t i);
/*
 * Bring the passive_down gauges of s->st up to date at now: a mark is set
 * in it as upstream_failed() makes it, and cleared here once it ran out
 * (the worker calls this once a second).  O(n); nothing without s->st.
 */
void	upstream_marks(struct upstream_set *s, double now);

/*
 * The operator's state (enum ups_admin) and weight (1..256; 0: the
 * config's) for u[i].  drain and maint take it out of upstream_pick() for
 * new connections; those open to it are not touched.  A weight that
 * changes restarts the round-robin cycle of every backend, so the new
 * shares hold from the next pick.  0, or -1 with errno EINVAL for an index,
 * state or weight out of range (nothing changed).
 */
int	upstream_admin(struct upstream_set *s, size_t i, int state, unsigned weight);
/* The weight u balances with: the operator's when set, else the config's. */
unsigned upstream_weight(const struct upstream *u);

#endif
