/*
 * chan.h: messages between the master and its workers.
 *
 * Each worker shares a SOCK_SEQPACKET socketpair with the master, so one
 * send is one message.  A message has a fixed wire size and an explicit
 * little-endian layout; chan_decode() rejects anything of the wrong size or
 * with an unknown type, so a confused peer cannot be misread.
 *
 * Master to worker:  ACCEPT (go accept on listen socket `lsock`, taking
 * at most `conns` connections when that is not 0; `seq` numbers the
 * lease, one more for each ACCEPT to that worker), CONN (a
 * connection the master accepted on `lsock`, its descriptor attached with
 * SCM_RIGHTS: dispatch = handoff), DRAIN
 * (stop accepting, finish connections within `timeout_ms`, exit), STOP
 * (close everything now and exit), REOPEN (reopen the log file), BACKEND
 * (health checks say backend `count` of listen socket `lsock` is up when
 * `conns` is 1, down when 0), ADMIN (the operator's setting of backend
 * `count` of listen socket `lsock`: its state in `conns`, one of
 * CHAN_ADMIN_READY, _DRAIN, _MAINT; its weight in `seq`, 1..256, or 0 for
 * the config's; no flags).
 * Worker to master:  HELLO (loop running, ready for ACCEPT), ACCEPTED (the
 * answer to ACCEPT: `count` taken, `conns` now open, flags, and the
 * ACCEPT's `seq`, so that a late answer to a lease the master gave up on
 * is not taken for the answer to a newer one), STATE (an
 * unprompted change: no longer full, accepting paused or resumed; with
 * handoff also after taking CONNs), HEARTBEAT (about once a second, with
 * the counters).  Every message but ACCEPTED carries in `count` the CONNs
 * received so far, so the master knows how many are still on their way.
 */
#ifndef PREFORKD_CHAN_H
#define PREFORKD_CHAN_H

#include <stddef.h>
#include <stdint.h>

enum chan_type {
	CHAN_HELLO = 1,
	CHAN_ACCEPT,
	CHAN_ACCEPTED,
	CHAN_STATE,
	CHAN_HEARTBEAT,
	CHAN_DRAIN,
	CHAN_STOP,
	CHAN_REOPEN,
	CHAN_BACKEND,
	CHAN_CONN,
	CHAN_ADMIN,
	CHAN_TYPE_MAX = CHAN_ADMIN
};

/* ADMIN: the operator's state of a backend, in `conns`. */
#define CHAN_ADMIN_READY	0
#define CHAN_ADMIN_DRAIN	1
#define CHAN_ADMIN_MAINT	2
/* ADMIN: the highest weight, in `seq`. */
#define CHAN_ADMIN_WEIGHT_MAX	256

/* Worker state flags, carried by ACCEPTED, STATE and HEARTBEAT. */
#define CHAN_F_MORE	0x01	/* ACCEPTED: the lease ran out of room with the
				   backlog deep; ACCEPT: the last lease on this socket took
				   several, hold this one through short gaps */
#define CHAN_F_FULL	0x02	/* at max_connections */
#define CHAN_F_PAUSED	0x04	/* accepting paused after EMFILE/ENFILE */
#define CHAN_F_ALL	0x07

struct chan_msg {
	uint8_t		type;		/* enum chan_type */
	uint8_t		flags;		/* CHAN_F_* */
	uint16_t	seq;		/* ACCEPT, ACCEPTED: the lease's number;
					   ADMIN: the weight */
	uint32_t	lsock;		/* listen socket id: ACCEPT, ACCEPTED */
	uint32_t	count;		/* ACCEPTED: connections taken */
	uint32_t	conns;		/* connections open now; ADMIN: the state */
	uint32_t	timeout_ms;	/* DRAIN: deadline for open connections */
	uint64_t	accepted;	/* HEARTBEAT: totals since the worker started */
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint64_t	errors;		/* accept errors and failed connections */
};

#define CHAN_WIRE_SIZE	52

/* Write m to wire (CHAN_WIRE_SIZE bytes) in the fixed little-endian layout. */
void	chan_encode(const struct chan_msg *m, uint8_t wire[CHAN_WIRE_SIZE]);
/*
 * Decode len bytes into m.  Returns 0, or -1 when len is not
 * CHAN_WIRE_SIZE, the type is unknown or undefined flags are set, or an
 * ADMIN has flags, an unknown state or a weight over CHAN_ADMIN_WEIGHT_MAX.
 */
int	chan_decode(const uint8_t *wire, size_t len, struct chan_msg *m);
/*
 * Whether m, an ACCEPTED, answers the lease numbered seq (the last ACCEPT
 * sent to its worker), rather than an older one.  Numbers wrap at 65536;
 * a worker holds one lease at a time, so an answer is never that late.
 */
int	chan_answers(const struct chan_msg *m, uint16_t seq);
/* Name of a message type for logs ("ACCEPT"), "?" when unknown. */
const char *chan_type_name(int type);

/*
 * Send one message on a non-blocking channel fd.  Returns 0, or -1 with
 * errno set (EAGAIN when the peer is not keeping up).
 */
int	chan_send(int fd, const struct chan_msg *m);
/* As chan_send(), with descriptor pass attached (CONN); -1: none. */
int	chan_send_fd(int fd, const struct chan_msg *m, int pass);
/*
 * Receive one message.  Returns 1 with m filled, 0 at end of file (the
 * peer is gone), or -1 with errno set (EAGAIN: nothing pending; EBADMSG:
 * a malformed message, which was consumed).  A descriptor that came with
 * the message is closed.
 */
int	chan_recv(int fd, struct chan_msg *m);
/*
 * As chan_recv(); a CONN's descriptor goes to *passed (it must come with
 * one, and no other type may: either is EBADMSG, the stray closed).
 * *passed is -1 for every other message.  EMFILE: a CONN whose descriptor
 * the kernel dropped because we have no room for it (the message is
 * consumed, the connection lost).
 */
int	chan_recv_fd(int fd, struct chan_msg *m, int *passed);

#endif
