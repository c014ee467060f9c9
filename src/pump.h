/*
 * pump.h: proxy mode's bytes (pump.c) and the relay's state, which relay.c
 * (its life, the backend, the connect) and pump.c (the bytes) share.  Only
 * those two include this header; the rest of the daemon sees proxy mode
 * through relay_ops (relay.h).
 */
#ifndef PREFORKD_PUMP_H
#define PREFORKD_PUMP_H

#include <stdint.h>

#include <ev.h>

#include "buf.h"
#include "conn.h"

enum { C2B, B2C };		/* a relay's directions: client->backend, backend->client */

/* A direction's pipe, while it splices. */
struct pipe {
	ev_timer	 idle;		/* first: the callback casts back */
	int		 rfd, wfd;
	uint32_t	 len;		/* bytes in it */
	uint32_t	 size;		/* as the kernel granted it */
	uint8_t		 full;		/* took no more: wait until it drains */
	uint8_t		 dir;		/* C2B or B2C */
};

/* The small members share words: an idle connection's relay is 184 bytes. */
struct relay {
	ev_io		 io;		/* the backend socket */
	struct conn	*c;
	ev_timer	 timer;		/* connect_timeout, then halfclose_timeout */
	struct buf	*buf[2];	/* owned; [C2B], [B2C]; NULL when empty */
	struct pipe	*pipe[2];	/* owned; [C2B], [B2C]; NULL when copying */
	uint64_t	 tried;		/* backends tried (bit per index) */
	int		 up;		/* index in the upstream set; -1: none */
	unsigned	 retries;	/* further backends we may still try */
	int		 last_err;	/* of the last failed connect */
	uint8_t		 connected;
	uint8_t		 eof[2];	/* [C2B]: client sent FIN; [B2C]: backend did */
	uint8_t		 shut[2];	/* FIN passed on to the backend / the client */
	int8_t		 first_eof;	/* C2B or B2C: who finished first; -1 */
	uint8_t		 splice[2];	/* splice once the buffer is empty */
	uint8_t		 nosplice;	/* no usable pipe could be had: copy */
	ev_tstamp	 connect_start;
	ev_tstamp	 connect_time;	/* -1 until connected */
};

/*
 * Watch for what each side of c's relay can do now: the client for what
 * it may send or receive, the backend for its connect's outcome or, once
 * connected, likewise.
 */
void	pump_update(struct conn *c);
/*
 * Move bytes in direction d (C2B or B2C): read from its source when
 * can_read, write what is pending to its sink, pass a FIN on.  Returns 0,
 * or -1 when the connection was closed.
 */
int	pump_move(struct conn *c, int d, int can_read);
/* Both directions done: close c (the one close path) and return 1; else 0. */
int	pump_done(struct conn *c);
/* The client side's I/O callback, once the relay has started. */
void	pump_client_cb(struct ev_loop *loop, ev_io *io, int revents);
/* Close direction d's pipe, if any; splice = auto waits for the next full read. */
void	pump_pipe_close(struct conn *c, int d);

#endif
