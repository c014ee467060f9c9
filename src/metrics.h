/*
 * metrics.h: the Prometheus endpoint, in the master ([daemon] metrics).
 *
 * A small HTTP/1.x server in the master's loop: GET (or HEAD) /metrics
 * answers the statistics (status_view(), rendered by prom.c), 404 any
 * other path, 405 any other method, 400/414/431/505 a request
 * httpreq.c refuses; each answer closes its connection.  Never blocks:
 * every socket is non-blocking and watched by libev.  Bounded:
 * METRICS_MAX_SCRAPES connections at once (more are answered 503 and
 * closed), a request head of METRICS_REQ_MAX bytes, METRICS_TIMEOUT
 * seconds from accept to the last byte sent.
 *
 * Owns the metrics listening socket and the scrapes in progress; reads
 * the master's state only through status_view().  May not change
 * anything else of the master's.
 */
#ifndef PREFORKD_METRICS_H
#define PREFORKD_METRICS_H

#include <stddef.h>

#include "mstate.h"

#define METRICS_MAX_SCRAPES	8	/* connections served at once */
#define METRICS_REQ_MAX		8192	/* bytes of a request head */
#define METRICS_TIMEOUT		10.0	/* seconds, accept to the answer's last byte */
#define METRICS_LINGER		2.0	/* seconds reading what follows an answer */
#define METRICS_BODY_MAX	(32 << 20)	/* bytes of an answer */

/*
 * At start-up, before privileges drop: open the socket m->cfg->metrics
 * names, if any.  0, or -1 with a one-line message in err.
 */
int	metrics_open(struct master *m, char *err, size_t errlen);
/* Serve on it in m->loop (nothing when metrics is off). */
void	metrics_start(struct master *m);

/*
 * A reload to nc, in two steps so that it stays all or nothing.
 * metrics_prepare() opens the socket of a new address (an unchanged one
 * is kept, the same socket): 0, or -1 with a message in err, and the
 * reload fails.  Then metrics_commit() moves to nc's address, or closes
 * the socket when nc has metrics off, or metrics_abort() closes what
 * metrics_prepare() opened.  Scrapes in progress finish either way.
 */
int	metrics_prepare(struct master *m, const struct config *nc, char *err,
	    size_t errlen);
void	metrics_commit(struct master *m, const struct config *nc);
void	metrics_abort(struct master *m);

/* At the stop: close the socket and every scrape, free everything. */
void	metrics_close(struct master *m);
/*
 * In a worker just forked: close the master's metrics descriptors
 * without touching the loop (the master's epoll set is shared until the
 * child destroys its loop).
 */
void	metrics_forget(struct master *m);

#endif
