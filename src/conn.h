/*
 * conn.h: a client connection's lifecycle: creation at accept, activity and
 * the idle timeout, and the one close path that frees everything and logs
 * the summary line.  Owns struct conn, the conn layer's share of a listener
 * (struct conn_listen) and of a worker (struct conn_pool), and the
 * per-mode operations table.
 *
 * The layering: worker.c creates connections here and picks each
 * listener's mode; conn.c knows no mode and no worker by name: it starts,
 * summarises and frees a connection through the listener's mode_ops, and
 * tells the worker of each close through the pool's hook.  The modes
 * (echo.c, relay.c) include this header to touch or close their
 * connection; nothing here includes theirs.
 */
#ifndef PREFORKD_CONN_H
#define PREFORKD_CONN_H

#include <sys/queue.h>
#include <netinet/in.h>
#include <stdint.h>

#include <ev.h>

#include "acl.h"
#include "buf.h"
#include "proxyproto.h"
#include "reason.h"
#include "config.h"
#include "log.h"
#include "stats.h"
#include "upstream.h"



struct conn;
TAILQ_HEAD(connq, conn);

/*
 * A mode's operations, one table per mode (echo_ops, relay_ops), chosen for
 * each listener by the worker as it sets its listeners up.
 */
struct mode_ops {
	/*
	 * Serve c, which is in its listener's idle queue already.  h is the
	 * PROXY header the client sent (accept_proxy), NULL when none; bytes
	 * that came with it wait in c->buf.  On failure c is closed.
	 */
	void	(*start)(struct conn *c, const struct proxy_hdr *h);
	/* Free c->mode, which is not NULL.  NULL: the mode keeps no state. */
	void	(*free)(struct conn *c);
	/*
	 * The mode's fields of the summary line (log_kv()), at most n of
	 * them into f, their strings kept in buf (len bytes); returns how
	 * many.  NULL: the mode adds none.
	 */
	size_t	(*summary)(const struct conn *c, struct log_field *f, size_t n,
		    char *buf, size_t len);
};

/*
 * The conn layer's share of a worker, kept in the worker and read by it:
 * the loop, the counters reported to the master, and the hook that tells
 * the worker of each close.
 */
struct conn_pool {
	struct ev_loop	*loop;		/* borrowed from the worker */
	char		*scratch;	/* the worker's; read buffer shared by all conns */
	unsigned	 nconns;
	uint64_t	 accepted, bytes_in, bytes_out, errors;
	struct stats_wcount *st;	/* the worker's slot in the shared statistics */
	/* Called after each close, once the connection is freed. */
	void		(*closed)(void *arg);
	void		*closed_arg;
};

/* The conn layer's share of a listener: its connections and their mode. */
struct conn_listen {
	const struct listener_conf *conf; /* borrowed from the config */
	const struct mode_ops *ops;	/* the listener's mode */
	struct conn_pool *pool;		/* the worker's */
	struct connq	 conns;		/* oldest activity first */
	struct connq	 hdrq;		/* waiting for a PROXY header, oldest first */
	ev_timer	 hdr_timer;	/* fires for the head of hdrq */
	ev_timer	 idle;		/* fires for the head of conns */
	struct upstream_set ups;	/* mode = proxy: the backends */
	struct stats_lcount *st;	/* its counters in the worker's slot */
	struct acl	 acl;		/* who may connect (set up by the worker) */
	struct log_rate	 bad_hdr_log;	/* "bad PROXY header": once a second */
	struct log_rate	 source_log;	/* "bind to source": once a second */
	struct log_rate	 nobackend_log;	/* "no backend up": once a second */
};

/*
 * About 150 bytes while idle: the buffer exists only while bytes are
 * pending, and the idle timeout is one timer per listener, not per conn.
 * A received PROXY header is handed to the mode as it starts, not kept.
 */
struct conn {
	ev_io		 io;		/* first: the callback casts back */
	TAILQ_ENTRY(conn) q;		/* in wl->conns, by last activity */
	struct conn_listen *cl;
	struct buf	*buf;		/* owned; echo: bytes to send back; NULL when none */
	void		*mode;		/* owned by the mode (ops->free); NULL when none */
	ev_tstamp	 start, last;
	uint64_t	 in, out;	/* bytes read from / written to the client */
	union {
		struct sockaddr		sa;
		struct sockaddr_in	sin;
		struct sockaddr_in6	sin6;
	}		 peer;		/* the client; accept_proxy: as the header named it */
	uint32_t	 hold;		/* what it counts in the shared counts (acl.h) */
	uint8_t		 eof;		/* the client sent FIN */
	uint8_t		 in_hdrq;	/* still reading a PROXY header (cl->hdrq) */
};

/*
 * Take ownership of an accepted fd and start serving it.  Returns the
 * connection, or NULL with errno set and the fd closed: EACCES when the
 * listener's rules refused it (reset, counted and logged by acl.c), else
 * a failure counted in the pool's errors.  A connection that fails as it
 * starts is closed at once; it is not NULL all the same.
 */
struct conn *conn_new(struct conn_listen *cl, int fd, const struct sockaddr *peer,
	    socklen_t peerlen);
/* Record activity now: moves c to the tail of the idle queue. */
void	conn_touch(struct conn *c);
/*
 * The one close path: log the summary, close the fd, free everything (the
 * mode's state through ops->free), then call the pool's closed hook.
 */
void	conn_close(struct conn *c, enum conn_reason why);
/* Close every connection of cl with reason why. */
void	conn_close_all(struct conn_listen *cl, enum conn_reason why);
/*
 * Set up cl's queues and their timers (idle, PROXY header) for
 * connections of pool, in the listener conf.  The caller sets cl->ops,
 * cl->st and cl->acl (acl_init), and pool->st: the counters of every
 * connection (stats.h) are written there, with no test for NULL on the way.
 */
void	conn_listen_init(struct conn_listen *cl, struct conn_pool *pool,
	    const struct listener_conf *conf);

#endif
