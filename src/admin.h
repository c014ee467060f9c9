/*
 * admin.h: the operator's settings of backends (set backend ... ready|
 * drain|maint, set weight ...), as the master keeps them: a table keyed by
 * listener name and backend address as configured ("host:port" as
 * written), so a setting outlives a reload for a backend that keeps its
 * address, and goes when its backend or listener does.
 *
 * Pure: no I/O, no logging, no master.  health.c looks a backend up here,
 * tells the workers and the checks, and fills the view.
 */
#ifndef PREFORKD_ADMIN_H
#define PREFORKD_ADMIN_H

#include <stddef.h>

#include "config.h"

enum admin_state {
	ADMIN_READY,		/* as the config and the checks have it */
	ADMIN_DRAIN,		/* no new connections; open ones finish */
	ADMIN_MAINT		/* as drain, and no health checks */
};

#define ADMIN_WEIGHT_MAX	256	/* as the config allows */

struct admin_entry {
	char		*listener;	/* owned */
	char		*addr;		/* owned; the backend as configured */
	int		 state;		/* enum admin_state */
	unsigned	 weight;	/* 1..ADMIN_WEIGHT_MAX; 0: the config's */
};

struct admin {
	struct admin_entry *v;		/* owned, n of them, in the order set */
	size_t		 n;
};

/* An empty table; admin_fini() frees one. */
void	admin_init(struct admin *a);
void	admin_fini(struct admin *a);

/* "ready", "drain" or "maint" to enum admin_state; -1 for anything else. */
int	admin_state_parse(const char *s);
/* The name of an enum admin_state ("drain"); "?" when out of range. */
const char *admin_state_name(int state);

/*
 * The index of the backend of lc configured as addr (compared as
 * written), or -1 when it has none.
 */
int	admin_backend(const struct listener_conf *lc, const char *addr);

/* The setting of backend addr of listener, or NULL when it has none. */
const struct admin_entry *admin_find(const struct admin *a, const char *listener,
	    const char *addr);
/*
 * Set the state / the weight of backend addr of listener, keeping the
 * other.  A backend back to ready with the config's weight (0) leaves the
 * table.  Neither checks that the backend is configured: the caller does.
 * 0, or -1 with errno set: EINVAL for a state or weight out of range,
 * ENOMEM (the table unchanged).
 */
int	admin_set_state(struct admin *a, const char *listener, const char *addr,
	    int state);
int	admin_set_weight(struct admin *a, const char *listener, const char *addr,
	    unsigned weight);

/*
 * After a reload to cfg: drop the settings of every backend that cfg no
 * longer has (its listener is gone or renamed, or no backend of it is
 * configured as that address).  dropped, when not NULL, is called with
 * each entry before it goes.  Returns how many went.
 */
size_t	admin_prune(struct admin *a, const struct config *cfg,
	    void (*dropped)(void *arg, const struct admin_entry *e), void *arg);

#endif
