/*
 * stats.h: the shared statistics.
 *
 * Counters live in memory the master maps (MAP_SHARED | MAP_ANONYMOUS)
 * before it forks a generation: one region per generation, one slot per
 * worker slot.  A worker writes only its own slot, with relaxed atomic
 * adds (stats_add/stats_sub): no lock, no message, no system call on the
 * hot path.  The master only reads the slots, and sums them when asked
 * (the control socket, the metrics endpoint).
 *
 * Totals never go down for the life of the master: a respawned worker
 * goes on adding into the slot its predecessor used, and when a generation
 * ends its sums fold into the master's retired totals, kept by listener
 * name and backend address.  Gauges (connections open now) are zeroed by
 * the master when a worker dies, since its connections died with it.
 *
 * Owns the region layout, the fold and the sums.  Knows nothing of
 * sockets, workers' loops or how a view is rendered (report.c, metrics.c).
 */
#ifndef PREFORKD_STATS_H
#define PREFORKD_STATS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "reason.h"

/* Close reasons counted apart: every one of reason.h. */
#define STATS_NREASONS	CONN_NREASONS

/* Connect-time histogram: STATS_HIST_N buckets, the last one +Inf. */
#define STATS_HIST_N	12
/* Upper bounds of the first STATS_HIST_N - 1 buckets, in seconds, rising. */
extern const double stats_hist_le[STATS_HIST_N - 1];

static inline void
stats_add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static inline void
stats_sub(uint64_t *p, uint64_t n)
{
	__atomic_fetch_sub(p, n, __ATOMIC_RELAXED);
}

/* For a 0/1 gauge its one writer sets (a backend marked down). */
static inline void
stats_set(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t
stats_read(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* One listener's counters in one worker's slot. */
struct stats_lcount {
	uint64_t	accepted;
	uint64_t	active;		/* gauge */
	uint64_t	closed[STATS_NREASONS];
	uint64_t	bytes_in;	/* from clients */
	uint64_t	bytes_out;	/* to clients */
	uint64_t	proxy_rejected;	/* bad or late PROXY headers */
	uint64_t	refused[REFUSE_N];	/* by reason (acl.c) */
	uint64_t	untracked;	/* admitted uncounted: client table full */
};

/* One backend's counters in one worker's slot. */
struct stats_bcount {
	uint64_t	active;		/* gauge: connections open to it */
	uint64_t	total;		/* connections established */
	uint64_t	connect_failures;
	uint64_t	retries;	/* connects tried again elsewhere after it failed */
	uint64_t	passive_down;	/* gauge: 1 while this worker has it marked down */
	uint64_t	connect_hist[STATS_HIST_N];	/* per bucket, not cumulative */
	uint64_t	connect_usec;	/* sum of the connect times counted */
};

/* One worker's own counters in its slot. */
struct stats_wcount {
	uint64_t	accepts;
	uint64_t	conns;		/* gauge */
};

/* One generation's region; the master's, inherited by its workers. */
struct stats_gen;

/*
 * Map a region for a generation of cfg with nslots slots (room for
 * worker-count changes: pass the most slots it may have).  The names it
 * needs are copied, so cfg may be freed first.  NULL with errno set.
 */
struct stats_gen *stats_gen_new(const struct config *cfg, unsigned gen, int nslots);
/* Unmap it.  The master calls it after stats_retire(); a worker never. */
void	stats_gen_free(struct stats_gen *g);
/* How many slots g has room for. */
int	stats_slots(const struct stats_gen *g);
/*
 * The master hands slot to a worker (before the fork): from now on the
 * sums read it.  Slots above the highest one handed out are never read,
 * so their pages are never touched.
 */
void	stats_slot_use(struct stats_gen *g, int slot);

/* Slot slot's counters: the worker's own, listener li's, listener li's backends (an array). */
struct stats_wcount *stats_worker(struct stats_gen *g, int slot);
struct stats_lcount *stats_listener(struct stats_gen *g, int slot, size_t li);
struct stats_bcount *stats_backends(struct stats_gen *g, int slot, size_t li);

/* The worker in slot died: zero its gauges (its connections are gone). */
void	stats_slot_died(struct stats_gen *g, int slot);

/* Which bucket of the connect-time histogram secs falls in. */
int	stats_hist_bucket(double secs);

/* --- the master's view --- */

enum backend_state { BACKEND_UP, BACKEND_DOWN, BACKEND_DRAIN, BACKEND_MAINT };

struct stats_lview {
	const char	*name;		/* borrowed from the config */
	const char	*listen;
	int		 mode;		/* enum listen_mode */
	struct stats_lcount c;		/* summed: live generations + retired */
};

struct stats_bview {
	size_t		 li;		/* its listener, an index into v->l */
	const char	*addr;		/* as configured ("host:port") */
	int		 backup;
	unsigned	 weight;	/* in effect (the operator's, or the config's) */
	enum backend_state state;
	const char	*why;		/* "check failed", "marked down by N of M workers",
					   "operator", or "" when up */
	int		 check_last;	/* -1 never checked, 0 failed, 1 passed */
	double		 check_at;	/* unix time of the last check; 0: never */
	struct stats_bcount c;		/* summed */
	char		 why_buf[48];	/* where health_view() builds a why that
					   holds numbers: a row is not copied
					   once filled */
};

struct stats_wview {
	pid_t		 pid;
	int		 slot;
	unsigned	 gen;
	const char	*state;		/* "starting", "ready", "draining" */
	struct stats_wcount c;
};

struct stats_view {
	pid_t		 pid;		/* the master's */
	double		 started;	/* unix time the master started */
	double		 now;
	const char	*version;
	unsigned	 gen;
	uint64_t	 reloads_ok, reloads_failed;
	const char	*last_reload;	/* "" when none */
	uint64_t	 respawns;
	int		 workers;	/* configured */
	struct stats_lview *l;		/* owned arrays */
	size_t		 nl;
	struct stats_bview *b;
	size_t		 nb;
	struct stats_wview *w;
	size_t		 nw;
};

/* The master's registry: the live generations' regions and the retired totals. */
struct stats;

/* An empty registry, or NULL (ENOMEM). */
struct stats *stats_new(void);
/* Free st and unmap every region still registered in it. */
void	stats_free(struct stats *st);
/*
 * A generation starts (its region registered; 0, or -1 with errno set) /
 * ended (folded into the totals and unregistered: the caller unmaps it).
 * The fold allocates nothing: what it needs is made by stats_gen_start.
 */
int	stats_gen_start(struct stats *st, struct stats_gen *g);
void	stats_retire(struct stats *st, struct stats_gen *g);
/*
 * Fill v's listener and backend rows for cfg (the current configuration),
 * each the sum of every live generation's slots that counted it (by
 * listener name and backend address) and of the retired totals.  The
 * backends start BACKEND_UP with the configured weight and no check: the
 * master's health and operator state fill the rest.  Worker rows and
 * master counters are the caller's.  0, or -1 with errno set.
 */
int	stats_collect(const struct stats *st, const struct config *cfg,
	    struct stats_view *v);
void	stats_view_free(struct stats_view *v);

#endif
