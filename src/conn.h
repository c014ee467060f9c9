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
#include "proxyproto.h"
#include "worker.h"

enum conn_reason {
	CONN_CLIENT_EOF,
	CONN_CLIENT_RESET,
	CONN_IDLE_TIMEOUT,
	CONN_DRAIN_DEADLINE,
	CONN_SHUTDOWN,
	CONN_ERROR,
	CONN_BACKEND_EOF,
	CONN_BACKEND_RESET,
	CONN_CONNECT_TIMEOUT,
	CONN_CONNECT_FAILED,
	CONN_NO_BACKEND,
	CONN_HALFCLOSE_TIMEOUT,
	CONN_BAD_PROXY_HEADER,
	CONN_PROXY_TIMEOUT
};

struct relay;

/*
 * About 150 bytes while idle: the buffer exists only while bytes are
 * pending, and the idle timeout is one timer per listener, not per conn.
 * A received PROXY header is handed to the mode as it starts, not kept.
 */
struct conn {
	ev_io		 io;		/* first: the callback casts back */
	TAILQ_ENTRY(conn) q;		/* in wl->conns, by last activity */
	struct wlisten	*wl;
	struct buf	*buf;		/* owned; echo: bytes to send back; NULL when none */
	struct relay	*relay;		/* owned; mode = proxy, once connecting */
	ev_tstamp	 start, last;
	uint64_t	 in, out;	/* bytes read from / written to the client */
	union {
		struct sockaddr		sa;
		struct sockaddr_in	sin;
		struct sockaddr_in6	sin6;
	}		 peer;		/* the client; accept_proxy: as the header named it */
	uint8_t		 eof;		/* the client sent FIN */
	uint8_t		 in_hdrq;	/* still reading a PROXY header (wl->hdrq) */
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
/* Set up wl's queues and their timers (idle, PROXY header). */
void	conn_idle_init(struct wlisten *wl);

/* Echo mode's I/O callback (echo.c). */
void	echo_io_cb(struct ev_loop *loop, ev_io *w, int revents);

/*
 * Proxy mode (relay.c): connect c to a backend of its listener and relay
 * both ways.  h is the PROXY header the client sent (accept_proxy), NULL
 * when none: with send_proxy, the header sent to the backend carries its
 * source and destination as they came, or UNKNOWN / LOCAL as it did;
 * without one, the client's address and the one it connected to.  On
 * failure c is closed.
 */
void	relay_start(struct conn *c, const struct proxy_hdr *h);
/* Free c's relay: the backend side, its buffers and its timer. */
void	relay_free(struct conn *c);
/* "backend=ADDR connect=S.SSSs " for the summary line, into buf. */
const char *relay_summary(const struct conn *c, char *buf, size_t len);

#endif
