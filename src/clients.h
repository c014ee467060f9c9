/*
 * clients.h: the shared admission counts.  Owns, per listener, the number
 * of connections open across every worker of every generation (the
 * listener's max_connections) and a fixed-size table of client sources
 * (max_conn_per_client, conn_rate_per_client); and, per generation, each
 * worker's hold journal, which lets the master give back the counts of a
 * worker that died without closing its connections (kill -9).
 *
 * Memory: the master maps everything before it forks the workers that use
 * it (MAP_SHARED | MAP_ANONYMOUS): a listener's counter and table are
 * kept by listener name for the master's life, so a reload neither resets
 * nor doubles a count (kept while a generation uses them: a listener
 * that is gone from every live generation gives them up); a generation's
 * journal lives as long as the generation.  Workers change the counts with compare-and-swap on the
 * shared words: no lock, no message, no system call.
 *
 * A client is its IPv4 address, or its IPv6 address cut to the listener's
 * client_ipv6_prefix (1..64 bits): a 64-bit key.  The table is open
 * addressing over a short probe window.  An entry with no connection open
 * and no rate debt is stale and may be taken by another source.  When a
 * source finds no entry (its window is all live entries) it is admitted
 * uncounted (CLIENTS_UNTRACKED): a full table never refuses a client
 * because of another's entry.
 *
 * Knows nothing of sockets' fds, loops or logs; clients_top() is the
 * master's view for "show clients".
 */
#ifndef PREFORKD_CLIENTS_H
#define PREFORKD_CLIENTS_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "net.h"

/* A hold index meaning "holds nothing": the listener counts nothing. */
#define CLIENTS_NOHOLD	UINT32_MAX

/* What clients_enter() and clients_client() answer. */
enum clients_verdict {
	CLIENTS_OK,		/* admitted and counted */
	CLIENTS_UNTRACKED,	/* admitted, not counted: the table had no room */
	CLIENTS_LISTENER_FULL,	/* max_connections of the listener reached */
	CLIENTS_RATE,		/* conn_rate_per_client exceeded */
	CLIENTS_LIMIT		/* max_conn_per_client reached */
};

/* The master's registry: listeners' counters and tables, by name. */
struct clients;
/* One generation's view of them, and its workers' journals. */
struct clients_gen;

/* --- the master --- */

struct clients *clients_new(void);
/* Unmap everything; generations must be freed first. */
void	clients_free(struct clients *cs);

/*
 * A generation of cfg with nslots worker slots (as stats_gen_new), each
 * holding up to cfg->max_connections connections.  Maps what the
 * listeners that use a limit need and is not mapped yet (a listener's
 * table is kept if its name and client_table_size are unchanged).  A
 * config that sets no limit gets a generation that maps nothing, and
 * whose calls cost a test.  NULL with errno set.
 */
struct clients_gen *clients_gen_new(struct clients *cs, const struct config *cfg,
	    int nslots);
/* The generation ended: unmap its journal, let go of its tables. */
void	clients_gen_free(struct clients *cs, struct clients_gen *g);
/*
 * The worker in slot died: give back every count its journal still holds,
 * and clear the journal for the slot's next worker.
 */
void	clients_slot_died(struct clients_gen *g, int slot);

/* One row of "show clients". */
struct clients_row {
	const char	*listener;	/* borrowed from the config given */
	char		 client[NET_ADDRSTRLEN + 4];	/* "1.2.3.4", "2001:db8::/64" */
	unsigned	 open;		/* connections open now */
	unsigned	 recent;	/* connections counted against the rate now */
};

/*
 * The top n sources of listener (NULL: of every listener of cfg) by open
 * connections, then by recent ones, into rows.  Returns how many were
 * filled.  now_us: CLOCK_MONOTONIC in microseconds.
 */
size_t	clients_top(const struct clients *cs, const struct config *cfg,
	    const char *listener, uint64_t now_us, struct clients_row *rows,
	    size_t n);
/* The listener's connections open across all workers; 0 when not counted. */
uint64_t clients_listener_open(const struct clients *cs, const char *listener);

/* --- a worker (slot slot of generation g) --- */

/*
 * Set up the worker's private free list for journal slot slot.  Slot -1:
 * the worker has no journal slot of its own (the master found none free),
 * so its connections count in no limit but the rate.  0, or -1 (ENOMEM).
 */
int	clients_worker_init(struct clients_gen *g, int slot);

/*
 * A connection arrives on listener li (an index into the generation's
 * config).  CLIENTS_OK with *hold set (CLIENTS_NOHOLD when li counts
 * nothing), or CLIENTS_LISTENER_FULL (nothing held).
 */
enum clients_verdict clients_enter(struct clients_gen *g, size_t li, uint32_t *hold);
/*
 * Its client is sa (the peer, or the address a PROXY header carried):
 * count it against the per-client limits.  CLIENTS_OK or CLIENTS_UNTRACKED
 * (admitted), CLIENTS_RATE or CLIENTS_LIMIT (refused: the caller then
 * calls clients_leave()).  now_us: CLOCK_MONOTONIC in microseconds.
 */
enum clients_verdict clients_client(struct clients_gen *g, size_t li,
	    uint32_t hold, const struct sockaddr *sa, uint64_t now_us);
/* The connection closed (or was refused): give back what hold counts. */
void	clients_leave(struct clients_gen *g, uint32_t hold);

/* Does listener li of g count anything?  Its per-client limits? */
int	clients_counts(const struct clients_gen *g, size_t li);
int	clients_per_client(const struct clients_gen *g, size_t li);

#endif
