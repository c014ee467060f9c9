/*
 * chan.c: master<->worker messages over a SOCK_SEQPACKET socketpair.
 *
 * The wire form is fixed-size and little-endian, written field by field,
 * so neither padding nor a confused peer can be misread.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Layout: type(1) flags(1) seq(2) lsock(4) count(4) conns(4)
 * timeout_ms(4) accepted(8) bytes_in(8) bytes_out(8) errors(8) = 52.
 */
void
chan_encode(const struct chan_msg *m, uint8_t wire[CHAN_WIRE_SIZE])
{
	wire[0] = m->type;
	wire[1] = m->flags;
	wire[2] = m->seq & 0xff;
	wire[3] = m->seq >> 8;
	put32(wire + 4, m->lsock);
	put32(wire + 8, m->count);
	put32(wire + 12, m->conns);
	put32(wire + 16, m->timeout_ms);
	put64(wire + 20, m->accepted);
	put64(wire + 28, m->bytes_in);
	put64(wire + 36, m->bytes_out);
	put64(wire + 44, m->errors);
}

int
chan_decode(const uint8_t *wire, size_t len, struct chan_msg *m)
{
	if (len != CHAN_WIRE_SIZE || wire[0] == 0 || wire[0] > CHAN_TYPE_MAX ||
	    (wire[1] & ~CHAN_F_ALL) != 0)
		return -1;
	memset(m, 0, sizeof(*m));
	m->type = wire[0];
	m->flags = wire[1];
	m->seq = wire[2] | wire[3] << 8;
	m->lsock = get32(wire + 4);
	m->count = get32(wire + 8);
	m->conns = get32(wire + 12);
	m->timeout_ms = get32(wire + 16);
	m->accepted = get64(wire + 20);
	m->bytes_in = get64(wire + 28);
	m->bytes_out = get64(wire + 36);
	m->errors = get64(wire + 44);
	if (m->type == CHAN_ADMIN && (m->flags != 0 || m->conns > CHAN_ADMIN_MAINT ||
	    m->seq > CHAN_ADMIN_WEIGHT_MAX))
		return -1;
	return 0;
}

int
chan_answers(const struct chan_msg *m, uint16_t seq)
{
	return m->type == CHAN_ACCEPTED && m->seq == seq;
}

const char *
chan_type_name(int type)
{
	static const char *const names[] = {
		[CHAN_HELLO] = "HELLO", [CHAN_ACCEPT] = "ACCEPT",
		[CHAN_ACCEPTED] = "ACCEPTED", [CHAN_STATE] = "STATE",
		[CHAN_HEARTBEAT] = "HEARTBEAT", [CHAN_DRAIN] = "DRAIN",
		[CHAN_STOP] = "STOP", [CHAN_REOPEN] = "REOPEN",
		[CHAN_BACKEND] = "BACKEND", [CHAN_CONN] = "CONN",
		[CHAN_ADMIN] = "ADMIN",
	};

	if (type <= 0 || type > CHAN_TYPE_MAX)
		return "?";
	return names[type];
}

int
chan_send_fd(int fd, const struct chan_msg *m, int pass)
{
	uint8_t wire[CHAN_WIRE_SIZE];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { .iov_base = wire, .iov_len = sizeof(wire) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	chan_encode(m, wire);
	if (pass != -1) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass, sizeof(int));
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)sizeof(wire) ? 0 : -1;
}

int
chan_send(int fd, const struct chan_msg *m)
{
	return chan_send_fd(fd, m, -1);
}

int
chan_recv(int fd, struct chan_msg *m)
{
	int passed, rc;

	if ((rc = chan_recv_fd(fd, m, &passed)) == 1 && passed != -1)
		close(passed);
	return rc;
}

/* Every descriptor in mh's control data; the first to *first, the rest closed. */
static void
chan_take_fds(struct msghdr *mh, int *first)
{
	struct cmsghdr *c;
	int v;

	*first = -1;
	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t off = 0; CMSG_LEN(off + sizeof(int)) <= c->cmsg_len;
		    off += sizeof(int)) {
			memcpy(&v, CMSG_DATA(c) + off, sizeof(int));
			if (*first == -1)
				*first = v;
			else
				close(v);
		}
	}
}

int
chan_recv_fd(int fd, struct chan_msg *m, int *passed)
{
	uint8_t wire[CHAN_WIRE_SIZE + 1];	/* one more: detect oversize */
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(4 * sizeof(int))];
	} cm;
	struct iovec iov = { .iov_base = wire, .iov_len = sizeof(wire) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
	};
	ssize_t n;
	int bad;

	*passed = -1;
	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	chan_take_fds(&mh, passed);
	if (n == 0 && *passed == -1)
		return 0;
	bad = chan_decode(wire, n, m) == -1;
	if (!bad && m->type == CHAN_CONN && *passed == -1 && (mh.msg_flags & MSG_CTRUNC)) {
		/* The kernel could not give us the descriptor: no room. */
		errno = EMFILE;
		return -1;
	}
	if (bad || (m->type == CHAN_CONN) != (*passed != -1)) {
		if (*passed != -1)
			close(*passed);
		*passed = -1;
		errno = EBADMSG;
		return -1;
	}
	return 1;
}
