/*
 * conn.h: a client connection's lifecycle: creation at accept, activity and
 * the idle timeout, and the one close path that frees everything and logs
 * the summary line.
 */
#ifndef PREFORKD_CONN_H
#define PREFORKD_CONN_H

#include <sys/queue.h>
#include <netinet/in.h>
#include <stdint.h>

#include <ev.h>

#include "buf.h"
#include "worker.h"

enum conn_reason {
	CONN_CLIENT_EOF,
	CONN_CLIENT_RESET,
	CONN_IDLE_TIMEOUT,
	CONN_DRAIN_DEADLINE,
	CONN_SHUTDOWN,
	CONN_ERROR
};

/*
 * About 150 bytes while idle: the buffer exists only while bytes are
 * pending, and the idle timeout is one timer per listener, not per conn.
 */
struct conn {
	ev_io		 io;		/* first: the callback casts back */
	TAILQ_ENTRY(conn) q;		/* in wl->conns, by last activity */
	struct wlisten	*wl;
	struct buf	*buf;		/* owned; NULL when nothing is pending */
	ev_tstamp	 start, last;
	uint64_t	 in, out;	/* bytes read from / written to the client */
	union {
		struct sockaddr		sa;
		struct sockaddr_in	sin;
		struct sockaddr_in6	sin6;
	}		 peer;
	uint8_t		 eof;		/* the client sent FIN */
};

/*
 * Take ownership of an accepted fd and start serving it.  Returns the
 * connection, or NULL with errno set (the fd is closed).
 */
struct conn *conn_new(struct wlisten *wl, int fd, const struct sockaddr *peer,
	    socklen_t peerlen);
/* Record activity now: moves c to the tail of the idle queue. */
void	conn_touch(struct conn *c);
/* The one close path: log the summary, close the fd, free everything. */
void	conn_close(struct conn *c, enum conn_reason why);
/* Close every connection of wl with reason why. */
void	conn_close_all(struct wlisten *wl, enum conn_reason why);
/* Arm wl's idle timer for its oldest connection (libev callback inside). */
void	conn_idle_init(struct wlisten *wl);

/* Echo mode's I/O callback (echo.c). */
void	echo_io_cb(struct ev_loop *loop, ev_io *w, int revents);

#endif
