/*
 * test_chan.c: unit tests for src/chan.c, the master<->worker messages.
 *
 * Encoding: round trips for every type with fields at their extremes, the
 * rejections chan_decode() promises (size, type, flags, an ADMIN's state
 * and weight out of range) and the wire layout
 * (type at byte 0, flags at byte 1, every field little-endian, in struct
 * order).  Transport: chan_send()/chan_recv() over a real non-blocking
 * SOCK_SEQPACKET socketpair, as the daemon uses them.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const char *const type_names[CHAN_TYPE_MAX + 1] = {
	[CHAN_HELLO] = "HELLO",
	[CHAN_ACCEPT] = "ACCEPT",
	[CHAN_ACCEPTED] = "ACCEPTED",
	[CHAN_STATE] = "STATE",
	[CHAN_HEARTBEAT] = "HEARTBEAT",
	[CHAN_DRAIN] = "DRAIN",
	[CHAN_STOP] = "STOP",
	[CHAN_REOPEN] = "REOPEN",
	[CHAN_BACKEND] = "BACKEND",
	[CHAN_CONN] = "CONN",
	[CHAN_ADMIN] = "ADMIN",
};

/* Compare every field; report the first that differs. */
static int
msg_equal(const struct chan_msg *a, const struct chan_msg *b)
{
#define CMP(f) do { if (a->f != b->f) { \
	diag("  field " #f ": got %ju, expected %ju", (uintmax_t)a->f, \
	    (uintmax_t)b->f); \
	return 0; } } while (0)
	CMP(type);
	CMP(flags);
	CMP(seq);
	CMP(lsock);
	CMP(count);
	CMP(conns);
	CMP(timeout_ms);
	CMP(accepted);
	CMP(bytes_in);
	CMP(bytes_out);
	CMP(errors);
#undef CMP
	return 1;
}

/* Field patterns applied to each type. */
enum pattern { PAT_ZERO, PAT_MAX, PAT_DISTINCT, PAT_HIGHBIT, PAT_N };
static const char *const pattern_names[PAT_N] = {
	"all zero", "all max", "distinct", "high bits"
};

static void
fill(struct chan_msg *m, int type, enum pattern p)
{
	memset(m, 0xa5, sizeof(*m));	/* padding must not matter */
	m->type = (uint8_t)type;
	switch (p) {
	case PAT_ZERO:
		m->flags = 0;
		m->seq = 0;
		m->lsock = m->count = m->conns = m->timeout_ms = 0;
		m->accepted = m->bytes_in = m->bytes_out = m->errors = 0;
		break;
	case PAT_MAX:
		m->flags = CHAN_F_ALL;
		m->seq = UINT16_MAX;
		m->lsock = m->count = m->conns = m->timeout_ms = UINT32_MAX;
		m->accepted = m->bytes_in = m->bytes_out = m->errors = UINT64_MAX;
		break;
	case PAT_DISTINCT:
		m->flags = CHAN_F_MORE | CHAN_F_PAUSED;
		m->seq = 0x8281;
		m->lsock = 0x04030201u;
		m->count = 0x14131211u;
		m->conns = 0x24232221u;
		m->timeout_ms = 0x34333231u;
		m->accepted = 0x4847464544434241ull;
		m->bytes_in = 0x5857565554535251ull;
		m->bytes_out = 0x6867666564636261ull;
		m->errors = 0x7877767574737271ull;
		break;
	case PAT_HIGHBIT:
		m->flags = CHAN_F_FULL;
		m->seq = 0x8000;
		m->lsock = 0x80000000u;
		m->count = 1;
		m->conns = 0x7fffffffu;
		m->timeout_ms = 3600000;
		m->accepted = 0x8000000000000000ull;
		m->bytes_in = 1;
		m->bytes_out = 0x00000001ffffffffull;
		m->errors = 0x7fffffffffffffffull;
		break;
	case PAT_N:
		break;
	}
	if (type == CHAN_ADMIN) {
		/* its own fields within their ranges; the others as the pattern has them */
		static const uint32_t state[PAT_N] = {
			CHAN_ADMIN_READY, CHAN_ADMIN_MAINT, CHAN_ADMIN_DRAIN, CHAN_ADMIN_MAINT
		};
		static const uint16_t weight[PAT_N] = { 0, CHAN_ADMIN_WEIGHT_MAX, 0x81, 1 };

		m->flags = 0;
		m->conns = state[p];
		m->seq = weight[p];
	}
}

/* ---- encoding --------------------------------------------------------------- */

static void
test_round_trip(void)
{
	struct chan_msg m, d;
	uint8_t wire[CHAN_WIRE_SIZE];
	int type, p, good;

	for (type = 1; type <= CHAN_TYPE_MAX; type++) {
		for (p = 0; p < PAT_N; p++) {
			fill(&m, type, p);
			chan_encode(&m, wire);
			memset(&d, 0x5a, sizeof(d));
			good = is_int(chan_decode(wire, sizeof(wire), &d), 0,
			    "decode %s, %s: accepted", type_names[type],
			    pattern_names[p]);
			ok(good && msg_equal(&d, &m), "decode %s, %s: round trip",
			    type_names[type], pattern_names[p]);
		}
	}
}

static void
test_flags_accepted(void)
{
	struct chan_msg m, d;
	uint8_t wire[CHAN_WIRE_SIZE];
	int f;

	/* every combination of the defined flags decodes */
	for (f = 0; f <= CHAN_F_ALL; f++) {
		fill(&m, CHAN_HEARTBEAT, PAT_ZERO);
		m.flags = (uint8_t)f;
		chan_encode(&m, wire);
		ok(chan_decode(wire, sizeof(wire), &d) == 0 && d.flags == f,
		    "flags 0x%02x accepted", f);
	}
}

static void
test_encode_deterministic(void)
{
	struct chan_msg a, b;
	uint8_t wa[CHAN_WIRE_SIZE], wb[CHAN_WIRE_SIZE];

	/* padding in the struct must not leak onto the wire */
	fill(&a, CHAN_ACCEPTED, PAT_DISTINCT);
	memset(&b, 0, sizeof(b));
	b.type = a.type;
	b.flags = a.flags;
	b.seq = a.seq;
	b.lsock = a.lsock;
	b.count = a.count;
	b.conns = a.conns;
	b.timeout_ms = a.timeout_ms;
	b.accepted = a.accepted;
	b.bytes_in = a.bytes_in;
	b.bytes_out = a.bytes_out;
	b.errors = a.errors;
	memset(wa, 0x11, sizeof(wa));
	memset(wb, 0xee, sizeof(wb));
	chan_encode(&a, wa);
	chan_encode(&b, wb);
	is_mem(wa, wb, CHAN_WIRE_SIZE,
	    "encoding depends on the fields only (not padding or the old wire)");
}

/* Find needle in hay; offset or -1. */
static int
find(const uint8_t *hay, size_t hlen, const uint8_t *needle, size_t nlen)
{
	size_t i;

	for (i = 0; i + nlen <= hlen; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return (int)i;
	return -1;
}

static void
le(uint8_t *out, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

static void
test_layout(void)
{
	static const struct {
		const char	*name;
		size_t		 width;
	} fields[] = {
		{ "lsock", 4 }, { "count", 4 }, { "conns", 4 },
		{ "timeout_ms", 4 }, { "accepted", 8 }, { "bytes_in", 8 },
		{ "bytes_out", 8 }, { "errors", 8 },
	};
	struct chan_msg m;
	uint8_t wire[CHAN_WIRE_SIZE], pat[8];
	uint64_t val[NELEM(fields)];
	int off, prev_end = 2;
	size_t i;

	is_int(CHAN_WIRE_SIZE, 52, "CHAN_WIRE_SIZE is 52");

	fill(&m, CHAN_HEARTBEAT, PAT_DISTINCT);
	chan_encode(&m, wire);
	is_int(wire[0], CHAN_HEARTBEAT, "type at byte 0");
	is_int(wire[1], CHAN_F_MORE | CHAN_F_PAUSED, "flags at byte 1");
	ok(wire[2] == 0x81 && wire[3] == 0x82, "seq at bytes 2 and 3, little-endian");

	fill(&m, CHAN_DRAIN, PAT_ZERO);
	m.flags = CHAN_F_FULL;
	chan_encode(&m, wire);
	ok(wire[0] == CHAN_DRAIN && wire[1] == CHAN_F_FULL,
	    "type and flags at bytes 0 and 1 (DRAIN, FULL)");

	/* Each field appears little-endian, after the previous one. */
	fill(&m, CHAN_HEARTBEAT, PAT_DISTINCT);
	chan_encode(&m, wire);
	val[0] = m.lsock;
	val[1] = m.count;
	val[2] = m.conns;
	val[3] = m.timeout_ms;
	val[4] = m.accepted;
	val[5] = m.bytes_in;
	val[6] = m.bytes_out;
	val[7] = m.errors;
	for (i = 0; i < NELEM(fields); i++) {
		le(pat, val[i], fields[i].width);
		off = find(wire, sizeof(wire), pat, fields[i].width);
		if (ok(off >= 0, "%s is on the wire little-endian", fields[i].name)) {
			ok(off >= prev_end, "%s (offset %d) follows the previous "
			    "field (ending at %d)", fields[i].name, off, prev_end);
			prev_end = off + (int)fields[i].width;
		} else {
			skip(1, "%s not found", fields[i].name);
		}
	}
	ok(prev_end <= CHAN_WIRE_SIZE, "the fields fit in CHAN_WIRE_SIZE");
}

/* An ACCEPTED answers the lease whose number it carries, and no other. */
static void
test_answers(void)
{
	static const struct {
		const char	*name;
		int		 type;
		uint16_t	 msg_seq;	/* what the answer carries */
		uint16_t	 lease_seq;	/* the last ACCEPT sent */
		int		 want;
	} cases[] = {
		{ "the answer to the last lease",	CHAN_ACCEPTED,	7,	7,	1 },
		{ "a late answer to the one before",	CHAN_ACCEPTED,	6,	7,	0 },
		{ "a late answer, across the wrap",	CHAN_ACCEPTED,	UINT16_MAX, 0,	0 },
		{ "the answer, after the wrap",		CHAN_ACCEPTED,	0,	0,	1 },
		{ "the first lease",			CHAN_ACCEPTED,	1,	1,	1 },
		{ "not an ACCEPTED",			CHAN_STATE,	7,	7,	0 },
	};
	struct chan_msg m, d;
	uint8_t wire[CHAN_WIRE_SIZE];
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		fill(&m, cases[i].type, PAT_ZERO);
		m.seq = cases[i].msg_seq;
		/* through the wire, as the master receives it */
		chan_encode(&m, wire);
		if (!ok(chan_decode(wire, sizeof(wire), &d) == 0, "answers, %s: decodes",
		    cases[i].name))
			continue;
		is_int(chan_answers(&d, cases[i].lease_seq), cases[i].want,
		    "answers, %s", cases[i].name);
	}
}

static void
test_decode_rejects(void)
{
	static const struct {
		const char	*name;
		int		 type;
		int		 flags;
	} bad[] = {
		{ "type 0",			0,			0 },
		{ "type CHAN_TYPE_MAX + 1",	CHAN_TYPE_MAX + 1,	0 },
		{ "type 0x7f",			0x7f,			0 },
		{ "type 0xff",			0xff,			0 },
		{ "flag 0x08",			CHAN_HELLO,		0x08 },
		{ "flag 0x80",			CHAN_ACCEPT,		0x80 },
		{ "flags 0xff",			CHAN_HEARTBEAT,		0xff },
		{ "known + unknown flags",	CHAN_STATE,		CHAN_F_ALL | 0x10 },
	};
	static const size_t lens[] = {
		0, 1, 2, CHAN_WIRE_SIZE - 1, CHAN_WIRE_SIZE + 1,
		2 * CHAN_WIRE_SIZE,
	};
	struct chan_msg m, d;
	uint8_t wire[2 * CHAN_WIRE_SIZE];
	size_t i;

	for (i = 0; i < NELEM(bad); i++) {
		fill(&m, bad[i].type, PAT_DISTINCT);
		m.flags = (uint8_t)bad[i].flags;
		chan_encode(&m, wire);
		is_int(chan_decode(wire, CHAN_WIRE_SIZE, &d), -1,
		    "decode rejects %s (via chan_encode)", bad[i].name);
	}

	/* the same, poking the documented bytes of a good message */
	fill(&m, CHAN_ACCEPT, PAT_ZERO);
	chan_encode(&m, wire);
	wire[0] = 0;
	is_int(chan_decode(wire, CHAN_WIRE_SIZE, &d), -1, "decode rejects byte 0 = 0");
	wire[0] = CHAN_TYPE_MAX + 1;
	is_int(chan_decode(wire, CHAN_WIRE_SIZE, &d), -1,
	    "decode rejects byte 0 = CHAN_TYPE_MAX + 1");
	wire[0] = CHAN_ACCEPT;
	wire[1] = 0x40;
	is_int(chan_decode(wire, CHAN_WIRE_SIZE, &d), -1, "decode rejects byte 1 = 0x40");

	memset(wire, 0, sizeof(wire));
	fill(&m, CHAN_HELLO, PAT_ZERO);
	chan_encode(&m, wire);
	chan_encode(&m, wire + CHAN_WIRE_SIZE);
	for (i = 0; i < NELEM(lens); i++)
		is_int(chan_decode(wire, lens[i], &d), -1,
		    "decode rejects length %zu", lens[i]);
	is_int(chan_decode(wire, CHAN_WIRE_SIZE, &d), 0,
	    "the same bytes at length %d decode", CHAN_WIRE_SIZE);
}

/* ADMIN: the operator's state and weight, and nothing out of their range. */
static void
test_admin(void)
{
	static const struct {
		const char	*name;
		uint8_t		 flags;
		uint32_t	 state;
		uint16_t	 weight;
		int		 want;
	} cases[] = {
		{ "ready, the config's weight",	0, CHAN_ADMIN_READY, 0, 0 },
		{ "drain, weight 1",		0, CHAN_ADMIN_DRAIN, 1, 0 },
		{ "maint, weight 256",		0, CHAN_ADMIN_MAINT, 256, 0 },
		{ "state 3",			0, CHAN_ADMIN_MAINT + 1, 0, -1 },
		{ "state 0xffffffff",		0, UINT32_MAX, 0, -1 },
		{ "state 0x100 (a low byte that looks ready)", 0, 0x100, 0, -1 },
		{ "weight 257",			0, CHAN_ADMIN_READY, 257, -1 },
		{ "weight 0xffff",		0, CHAN_ADMIN_READY, UINT16_MAX, -1 },
		{ "weight 0x100 + 0x1 (two bytes)", 0, CHAN_ADMIN_READY, 0x101, -1 },
		{ "a flag",			CHAN_F_FULL, CHAN_ADMIN_READY, 0, -1 },
	};
	struct chan_msg m, d;
	uint8_t wire[CHAN_WIRE_SIZE];
	size_t i;
	int r;

	is_str(chan_type_name(CHAN_ADMIN), "ADMIN", "chan_type_name(CHAN_ADMIN)");
	for (i = 0; i < NELEM(cases); i++) {
		fill(&m, CHAN_ADMIN, PAT_DISTINCT);
		m.flags = cases[i].flags;
		m.conns = cases[i].state;
		m.seq = cases[i].weight;
		chan_encode(&m, wire);
		r = chan_decode(wire, sizeof(wire), &d);
		is_int(r, cases[i].want, "ADMIN, %s: %s", cases[i].name,
		    cases[i].want == 0 ? "decodes" : "rejected");
		if (r == 0 && cases[i].want == 0)
			ok(msg_equal(&d, &m) && d.lsock == 0x04030201u &&
			    d.count == 0x14131211u, "ADMIN, %s: round trip", cases[i].name);
	}
}

static void
test_type_names(void)
{
	int t, u;

	is_str(chan_type_name(CHAN_ACCEPT), "ACCEPT", "chan_type_name(CHAN_ACCEPT)");
	for (t = 1; t <= CHAN_TYPE_MAX; t++) {
		const char *n = chan_type_name(t);
		int unique = 1;

		ok(n != NULL && strcmp(n, "?") != 0 && n[0] != '\0',
		    "chan_type_name(%d) is a name (%s)", t, n ? n : "NULL");
		for (u = 1; u < t; u++)
			if (n != NULL && chan_type_name(u) != NULL &&
			    strcmp(n, chan_type_name(u)) == 0)
				unique = 0;
		ok(unique, "chan_type_name(%d) differs from the others", t);
	}
	is_str(chan_type_name(0), "?", "chan_type_name(0)");
	is_str(chan_type_name(CHAN_TYPE_MAX + 1), "?", "chan_type_name(MAX + 1)");
	is_str(chan_type_name(-1), "?", "chan_type_name(-1)");
	is_str(chan_type_name(1000), "?", "chan_type_name(1000)");
}

/* ---- transport -------------------------------------------------------------- */

static int
pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1)
		bail_out("socketpair: %s", strerror(errno));
	return 0;
}

static void
test_send_recv(void)
{
	struct chan_msg m, d;
	int sv[2], type, p, r, saved;

	pair(sv);
	for (type = 1; type <= CHAN_TYPE_MAX; type++) {
		if (type == CHAN_CONN)
			continue;	/* needs a descriptor: test_pass_fd */
		p = type % PAT_N;
		fill(&m, type, p);
		is_int(chan_send(sv[0], &m), 0, "chan_send %s", type_names[type]);
		memset(&d, 0, sizeof(d));
		r = chan_recv(sv[1], &d);
		is_int(r, 1, "chan_recv %s returns 1", type_names[type]);
		ok(r == 1 && msg_equal(&d, &m), "chan_recv %s, %s: same message",
		    type_names[type], pattern_names[p]);
	}

	/* the other direction */
	fill(&m, CHAN_HELLO, PAT_ZERO);
	is_int(chan_send(sv[1], &m), 0, "chan_send worker -> master");
	ok(chan_recv(sv[0], &d) == 1 && msg_equal(&d, &m), "chan_recv master side");

	/* empty */
	errno = 0;
	r = chan_recv(sv[1], &d);
	saved = errno;
	is_int(r, -1, "chan_recv on an empty channel returns -1");
	is_int(saved, EAGAIN, "... with errno EAGAIN");

	/* several queued messages keep their boundaries and order */
	for (type = 0; type < 5; type++) {
		fill(&m, CHAN_ACCEPTED, PAT_ZERO);
		m.count = (uint32_t)type + 100;
		chan_send(sv[0], &m);
	}
	for (type = 0; type < 5; type++) {
		r = chan_recv(sv[1], &d);
		ok(r == 1 && d.type == CHAN_ACCEPTED && d.count == (uint32_t)type + 100,
		    "queued message %d arrives in order", type);
	}
	errno = 0;
	r = chan_recv(sv[1], &d);
	saved = errno;
	ok(r == -1 && saved == EAGAIN, "queue drained: -1/EAGAIN");
	close(sv[0]);
	close(sv[1]);
}

static void
test_malformed(void)
{
	static const struct {
		const char	*name;
		size_t		 len;
		int		 type;		/* written at byte 0 */
	} bad[] = {
		{ "3-byte garbage",			3,			0x41 },
		{ "1 byte",				1,			CHAN_HELLO },
		{ "one byte short",			CHAN_WIRE_SIZE - 1,	CHAN_HELLO },
		{ "one byte long",			CHAN_WIRE_SIZE + 1,	CHAN_HELLO },
		{ "twice the size",			2 * CHAN_WIRE_SIZE,	CHAN_HELLO },
		{ "4096 bytes",				4096,			CHAN_HELLO },
		{ "right size, type 0",			CHAN_WIRE_SIZE,		0 },
		{ "right size, type MAX + 1",		CHAN_WIRE_SIZE,		CHAN_TYPE_MAX + 1 },
	};
	struct chan_msg m, d;
	uint8_t raw[4096];
	int sv[2], r, saved;
	size_t i;

	pair(sv);
	for (i = 0; i < NELEM(bad); i++) {
		/* a well-formed prefix, so that only size or type is wrong */
		fill(&m, CHAN_HELLO, PAT_DISTINCT);
		memset(raw, 0, sizeof(raw));
		chan_encode(&m, raw);
		chan_encode(&m, raw + CHAN_WIRE_SIZE);
		if (bad[i].len < 3)
			memset(raw, 0, bad[i].len);
		else if (bad[i].len == 3)
			memcpy(raw, "AB\n", 3);
		raw[0] = (uint8_t)bad[i].type;
		if (send(sv[0], raw, bad[i].len, 0) != (ssize_t)bad[i].len)
			bail_out("send: %s", strerror(errno));
		fill(&m, CHAN_STATE, PAT_MAX);
		if (chan_send(sv[0], &m) != 0)
			bail_out("chan_send: %s", strerror(errno));

		errno = 0;
		r = chan_recv(sv[1], &d);
		saved = errno;
		is_int(r, -1, "%s: chan_recv returns -1", bad[i].name);
		is_int(saved, EBADMSG, "%s: errno EBADMSG", bad[i].name);
		r = chan_recv(sv[1], &d);
		ok(r == 1 && msg_equal(&d, &m), "%s: the next good message arrives",
		    bad[i].name);
	}
	errno = 0;
	r = chan_recv(sv[1], &d);
	saved = errno;
	ok(r == -1 && saved == EAGAIN, "nothing left over after the malformed ones");
	close(sv[0]);
	close(sv[1]);
}

static void
test_eof(void)
{
	struct chan_msg m, d;
	int sv[2], r, saved;

	/* peer closed with nothing pending */
	pair(sv);
	close(sv[0]);
	is_int(chan_recv(sv[1], &d), 0, "chan_recv after the peer closed returns 0");
	is_int(chan_recv(sv[1], &d), 0, "... and again 0");
	close(sv[1]);

	/* peer sent then closed: the message first, then EOF */
	pair(sv);
	fill(&m, CHAN_STOP, PAT_ZERO);
	chan_send(sv[0], &m);
	close(sv[0]);
	r = chan_recv(sv[1], &d);
	ok(r == 1 && msg_equal(&d, &m), "a message sent before close still arrives");
	is_int(chan_recv(sv[1], &d), 0, "then chan_recv returns 0");
	close(sv[1]);

	/* send to a closed peer: -1 with EPIPE, no signal kills us */
	pair(sv);
	close(sv[1]);
	errno = 0;
	r = chan_send(sv[0], &m);
	saved = errno;
	is_int(r, -1, "chan_send to a closed peer returns -1");
	ok(saved == EPIPE || saved == ECONNRESET, "... errno EPIPE (%s)",
	    strerror(saved));
	close(sv[0]);
}

/*
 * Whether the write end of pipe p is closed everywhere: the read end sees
 * EOF (0) rather than EAGAIN.  The caller has closed its own copy.
 */
static int
writer_gone(int rfd)
{
	char c;

	return read(rfd, &c, 1) == 0;
}

static void
pipe_nb(int p[2])
{
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		bail_out("pipe2: %s", strerror(errno));
}

static void
test_pass_fd(void)
{
	struct chan_msg m, d;
	struct stat a, b;
	int sv[2], p[2], r, fd, saved;

	/* CONN carries a descriptor: the same open file arrives */
	pair(sv);
	pipe_nb(p);
	fill(&m, CHAN_CONN, PAT_MAX);
	is_int(chan_send_fd(sv[0], &m, p[1]), 0, "chan_send_fd CONN");
	fd = -2;
	r = chan_recv_fd(sv[1], &d, &fd);
	is_int(r, 1, "chan_recv_fd CONN returns 1");
	ok(r == 1 && msg_equal(&d, &m), "chan_recv_fd CONN: same message");
	ok(fd >= 0 && fstat(fd, &a) == 0 && fstat(p[1], &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev, "... with the pipe's write end");
	ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "... close-on-exec");
	close(p[1]);
	ok(!writer_gone(p[0]), "the received copy keeps the pipe open");
	if (fd >= 0)
		close(fd);
	ok(writer_gone(p[0]), "closing it closes the pipe");
	close(p[0]);

	/* other messages report no descriptor */
	fill(&m, CHAN_ACCEPT, PAT_ZERO);
	chan_send(sv[0], &m);
	fd = -2;
	ok(chan_recv_fd(sv[1], &d, &fd) == 1 && fd == -1, "ACCEPT: *passed = -1");

	/* chan_recv closes a CONN's descriptor */
	pipe_nb(p);
	fill(&m, CHAN_CONN, PAT_ZERO);
	chan_send_fd(sv[0], &m, p[1]);
	close(p[1]);
	ok(chan_recv(sv[1], &d) == 1 && d.type == CHAN_CONN, "chan_recv takes a CONN");
	ok(writer_gone(p[0]), "... and closes its descriptor");
	close(p[0]);

	/* a descriptor on another type: EBADMSG, the descriptor closed */
	pipe_nb(p);
	fill(&m, CHAN_HEARTBEAT, PAT_ZERO);
	chan_send_fd(sv[0], &m, p[1]);
	close(p[1]);
	fd = -2;
	r = chan_recv_fd(sv[1], &d, &fd);
	saved = errno;
	ok(r == -1 && saved == EBADMSG && fd == -1, "HEARTBEAT with a descriptor: EBADMSG");
	ok(writer_gone(p[0]), "... and the stray descriptor is closed");
	close(p[0]);

	/* no room for the descriptor: EMFILE, the message consumed */
	{
		struct rlimit rl, low;
		int probe;

		pipe_nb(p);
		fill(&m, CHAN_CONN, PAT_ZERO);
		chan_send_fd(sv[0], &m, p[1]);
		close(p[1]);
		getrlimit(RLIMIT_NOFILE, &rl);
		probe = dup(0);		/* the lowest free descriptor */
		close(probe);
		low = rl;
		low.rlim_cur = probe;	/* none free from here on */
		setrlimit(RLIMIT_NOFILE, &low);
		fd = -2;
		r = chan_recv_fd(sv[1], &d, &fd);
		saved = errno;
		setrlimit(RLIMIT_NOFILE, &rl);
		ok(r == -1 && saved == EMFILE && fd == -1,
		    "CONN with no room for its descriptor: EMFILE (%d, %s)", r, strerror(saved));
		ok(writer_gone(p[0]), "... and the kernel dropped the descriptor");
		close(p[0]);
	}

	/* CONN without one: EBADMSG */
	fill(&m, CHAN_CONN, PAT_ZERO);
	chan_send(sv[0], &m);
	fd = -2;
	r = chan_recv_fd(sv[1], &d, &fd);
	saved = errno;
	ok(r == -1 && saved == EBADMSG && fd == -1, "CONN without a descriptor: EBADMSG");
	r = chan_recv_fd(sv[1], &d, &fd);
	saved = errno;
	ok(r == -1 && saved == EAGAIN, "nothing left over");
	close(sv[0]);
	close(sv[1]);
}

static void
test_full(void)
{
	struct chan_msg m, d;
	int sv[2], r = 0, saved = 0, good = 1;
	uint32_t sent = 0, got = 0;

	pair(sv);
	/* the peer is not reading: chan_send must fail with EAGAIN, not block */
	while (sent < 1000000) {
		fill(&m, CHAN_HEARTBEAT, PAT_ZERO);
		m.count = sent;
		m.accepted = (uint64_t)sent << 32 | sent;
		errno = 0;
		if ((r = chan_send(sv[0], &m)) != 0) {
			saved = errno;
			break;
		}
		sent++;
	}
	is_int(r, -1, "chan_send to a peer that does not read fails (after %u)", sent);
	is_int(saved, EAGAIN, "... with errno EAGAIN");

	/* everything sent arrives intact and in order */
	while ((r = chan_recv(sv[1], &d)) == 1) {
		if (d.type != CHAN_HEARTBEAT || d.count != got ||
		    d.accepted != ((uint64_t)got << 32 | got)) {
			if (good)
				diag("message %u: type %d count %u", got, d.type, d.count);
			good = 0;
		}
		got++;
	}
	saved = errno;
	ok(good, "all %u queued messages arrive intact and in order", got);
	is_uint(got, sent, "as many received as sent");
	ok(r == -1 && saved == EAGAIN, "then -1/EAGAIN");
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	/* a failed send must show as EPIPE rather than end the test */
	signal(SIGPIPE, SIG_IGN);

	test_round_trip();
	test_flags_accepted();
	test_encode_deterministic();
	test_layout();
	test_answers();
	test_decode_rejects();
	test_admin();
	test_type_names();
	test_send_recv();
	test_malformed();
	test_eof();
	test_pass_fd();
	test_full();
	return done_testing();
}
