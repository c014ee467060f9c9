/*
 * check.h: active health checks of proxy backends.  The master runs them,
 * once for the whole daemon (not once per worker), and reports each state
 * change through a callback; it sends the news to the workers.  A backend
 * the operator put in maintenance is not checked.
 */
#ifndef PREFORKD_CHECK_H
#define PREFORKD_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "config.h"

struct hcheck;

struct checks {
	struct ev_loop	*loop;
	struct hcheck	**v;		/* owned, n of them */
	size_t		  n;
	/* Called when backend idx of listen socket lsock goes up or down. */
	void		(*changed)(void *arg, uint32_t lsock, size_t idx, int up);
	void		 *arg;
};

/*
 * Start checking every backend of lc (listen socket id lsock) every
 * check_interval, when that is set.  Backends start up.  0, or -1 when out
 * of memory.
 */
int	checks_add(struct checks *cs, uint32_t lsock, const struct listener_conf *lc);
/* Stop every check and free them (in-flight checks are abandoned). */
void	checks_clear(struct checks *cs);
/* Call fn for every backend that checks say is down now. */
void	checks_each_down(const struct checks *cs,
	    void (*fn)(void *arg, uint32_t lsock, size_t idx), void *arg);

/* What the checks know of one backend. */
struct check_state {
	int		 up;		/* what the checks say now */
	int		 maint;		/* not checked: the operator's maintenance */
	int		 last;		/* the last check: -1 none yet, 0 failed, 1 passed */
	double		 at;		/* its unix time (the loop's clock); 0: none yet */
};

/*
 * Fill st for backend idx of listen socket lsock.  0, or -1 when that
 * backend is not checked (no check_interval, or no such backend).
 */
int	checks_state(const struct checks *cs, uint32_t lsock, size_t idx,
	    struct check_state *st);
/*
 * The operator's maintenance of backend idx of listen socket lsock.  on:
 * its check stops (one in flight is abandoned) and the state the checks
 * last found is kept.  off: it starts again from where checks_add() starts
 * one (up, no result counted, the first check at once); when the checks
 * had it down, the changed callback says up.  Either is a no-op when
 * already so.  0, or -1 when that backend is not checked.
 */
int	checks_maint(struct checks *cs, uint32_t lsock, size_t idx, int on);

#endif
