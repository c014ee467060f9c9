/*
 * test_buf.c: unit tests for src/buf.c, the bounded byte buffer.
 *
 * Scenarios are tables of operations run against the buffer and against a
 * plain model (a byte array holding the pending bytes); after every step the
 * pending bytes, buf_len(), buf_space() and the cursors must agree with the
 * model.  A seeded pseudo-random produce/consume run does the same at scale.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tap.h"

/* ---- the model ---------------------------------------------------------- */

struct model {
	char	*data;		/* pending bytes, data[0] is the oldest */
	size_t	 len;
	size_t	 size;
};

/*
 * Check b against m; returns 1 when they agree, else prints why (once per
 * call) and returns 0.  Not a TAP test itself: callers count the result.
 */
static int
buf_agrees(const struct buf *b, const struct model *m, const char *where)
{
	if (b->size != m->size) {
		diag("%s: size %u, expected %zu", where, b->size, m->size);
		return 0;
	}
	if (b->rpos > b->wpos || b->wpos > b->size) {
		diag("%s: cursors out of order: rpos %u wpos %u size %u", where,
		    b->rpos, b->wpos, b->size);
		return 0;
	}
	if (buf_len(b) != m->len) {
		diag("%s: buf_len %zu, expected %zu", where, buf_len(b), m->len);
		return 0;
	}
	if (buf_len(b) + buf_space(b) != b->size) {
		diag("%s: len %zu + space %zu != size %u", where, buf_len(b),
		    buf_space(b), b->size);
		return 0;
	}
	if (m->len > 0 && memcmp(buf_rptr(b), m->data, m->len) != 0) {
		diag("%s: pending bytes differ from the model", where);
		return 0;
	}
	return 1;
}

/* ---- creation ------------------------------------------------------------ */

static const struct {
	size_t		 size;
	int		 valid;
	const char	*name;
} new_cases[] = {
	{ 0,			0, "buf_new(0) fails" },
	{ 1,			1, "buf_new(1)" },
	{ 2,			1, "buf_new(2)" },
	{ 4096,			1, "buf_new(4096)" },
	{ 16384,		1, "buf_new(16k)" },
	{ (size_t)1 << 20,	1, "buf_new(1m)" },
	{ ((size_t)1 << 31) + 1, 0, "buf_new(2^31 + 1) fails" },
	{ SIZE_MAX,		0, "buf_new(SIZE_MAX) fails" },
};

static void
test_new(void)
{
	size_t i;

	for (i = 0; i < sizeof(new_cases) / sizeof(new_cases[0]); i++) {
		struct buf *b;

		errno = 0;
		b = buf_new(new_cases[i].size);
		if (!new_cases[i].valid) {
			ok(b == NULL, "%s: NULL", new_cases[i].name);
			ok(errno != 0, "%s: errno set (%d)", new_cases[i].name,
			    errno);
			if (b != NULL)
				buf_free(b);
			continue;
		}
		if (!ok(b != NULL, "%s: allocated", new_cases[i].name)) {
			skip(4, "no buffer");
			continue;
		}
		is_uint(b->size, new_cases[i].size, "%s: size", new_cases[i].name);
		is_uint(buf_len(b), 0, "%s: empty", new_cases[i].name);
		is_uint(buf_space(b), new_cases[i].size, "%s: all space free",
		    new_cases[i].name);
		ok(buf_wptr(b) + buf_space(b) == b->data + b->size,
		    "%s: free space runs to the end of data[]", new_cases[i].name);
		buf_free(b);
	}
}

/* ---- scripted scenarios --------------------------------------------------- */

enum op_kind {
	OP_END,
	OP_APPEND,	/* buf_append(arg); ret = bytes expected to fit */
	OP_WRITE,	/* buf_wptr() + memcpy(arg) + buf_produce() */
	OP_CONSUME,	/* buf_consume(n) */
	OP_WPTR,	/* buf_wptr() only: must not disturb pending bytes */
	OP_EXPECT	/* pending bytes are exactly arg */
};

struct op {
	enum op_kind	 kind;
	const char	*arg;
	size_t		 n;	/* OP_APPEND: expected return; OP_CONSUME: count */
};

#define MAXOPS	16

static const struct scenario {
	const char	*name;
	size_t		 size;
	struct op	 ops[MAXOPS];
} scenarios[] = {
	{ "append into empty", 8, {
		{ OP_APPEND, "abc", 3 },
		{ OP_EXPECT, "abc", 0 },
	} },
	{ "append up to capacity exactly", 8, {
		{ OP_APPEND, "abcd", 4 },
		{ OP_APPEND, "efgh", 4 },
		{ OP_EXPECT, "abcdefgh", 0 },
		{ OP_APPEND, "x", 0 },
		{ OP_EXPECT, "abcdefgh", 0 },
	} },
	{ "partial append when nearly full", 8, {
		{ OP_APPEND, "abcdef", 6 },
		{ OP_APPEND, "ghijkl", 2 },
		{ OP_EXPECT, "abcdefgh", 0 },
	} },
	{ "oversized append into empty", 4, {
		{ OP_APPEND, "abcdefgh", 4 },
		{ OP_EXPECT, "abcd", 0 },
	} },
	{ "zero-length append", 4, {
		{ OP_APPEND, "", 0 },
		{ OP_EXPECT, "", 0 },
		{ OP_APPEND, "ab", 2 },
		{ OP_APPEND, "", 0 },
		{ OP_EXPECT, "ab", 0 },
	} },
	{ "size 1 buffer", 1, {
		{ OP_APPEND, "ab", 1 },
		{ OP_EXPECT, "a", 0 },
		{ OP_APPEND, "b", 0 },
		{ OP_CONSUME, NULL, 1 },
		{ OP_APPEND, "bc", 1 },
		{ OP_EXPECT, "b", 0 },
		{ OP_CONSUME, NULL, 1 },
		{ OP_WRITE, "z", 0 },
		{ OP_EXPECT, "z", 0 },
	} },
	{ "consume from the front", 8, {
		{ OP_APPEND, "abcdefgh", 8 },
		{ OP_CONSUME, NULL, 3 },
		{ OP_EXPECT, "defgh", 0 },
		{ OP_CONSUME, NULL, 0 },
		{ OP_EXPECT, "defgh", 0 },
		{ OP_CONSUME, NULL, 5 },
		{ OP_EXPECT, "", 0 },
	} },
	{ "append after consume uses the room at the front", 8, {
		{ OP_APPEND, "abcdefgh", 8 },
		{ OP_CONSUME, NULL, 5 },
		{ OP_APPEND, "ijklmnop", 5 },
		{ OP_EXPECT, "fghijklm", 0 },
	} },
	{ "wptr compaction keeps bytes in order", 8, {
		{ OP_APPEND, "abcdefgh", 8 },
		{ OP_CONSUME, NULL, 6 },
		{ OP_WPTR, NULL, 0 },
		{ OP_EXPECT, "gh", 0 },
		{ OP_WRITE, "123456", 0 },
		{ OP_EXPECT, "gh123456", 0 },
	} },
	{ "wptr on an empty buffer after use", 8, {
		{ OP_APPEND, "abcde", 5 },
		{ OP_CONSUME, NULL, 5 },
		{ OP_WRITE, "12345678", 0 },
		{ OP_EXPECT, "12345678", 0 },
	} },
	{ "produce/consume cycles wrap around", 5, {
		{ OP_WRITE, "abc", 0 },
		{ OP_CONSUME, NULL, 2 },
		{ OP_WRITE, "defg", 0 },
		{ OP_EXPECT, "cdefg", 0 },
		{ OP_CONSUME, NULL, 4 },
		{ OP_APPEND, "hijk", 4 },
		{ OP_EXPECT, "ghijk", 0 },
		{ OP_CONSUME, NULL, 1 },
		{ OP_WRITE, "l", 0 },
		{ OP_CONSUME, NULL, 3 },
		{ OP_APPEND, "mnopq", 3 },
		{ OP_EXPECT, "klmno", 0 },
	} },
	{ "repeated wptr is idempotent", 6, {
		{ OP_APPEND, "abcdef", 6 },
		{ OP_CONSUME, NULL, 2 },
		{ OP_WPTR, NULL, 0 },
		{ OP_WPTR, NULL, 0 },
		{ OP_EXPECT, "cdef", 0 },
		{ OP_APPEND, "gh", 2 },
		{ OP_EXPECT, "cdefgh", 0 },
	} },
};

/* Run one scenario; returns 1 when every step agreed with the model. */
static int
run_scenario(const struct scenario *sc)
{
	struct buf *b;
	struct model m;
	const struct op *op;
	char where[128], *w;
	size_t n, len, space;
	int good = 1, i;

	if ((b = buf_new(sc->size)) == NULL) {
		diag("%s: buf_new(%zu) failed", sc->name, sc->size);
		return 0;
	}
	m.size = sc->size;
	m.len = 0;
	if ((m.data = malloc(sc->size + 1)) == NULL)
		bail_out("out of memory");

	for (i = 0; good && i < MAXOPS && sc->ops[i].kind != OP_END; i++) {
		op = &sc->ops[i];
		snprintf(where, sizeof(where), "%s: step %d", sc->name, i + 1);
		switch (op->kind) {
		case OP_APPEND:
			len = strlen(op->arg);
			n = buf_append(b, op->arg, len);
			if (n != op->n) {
				diag("%s: buf_append(\"%s\") returned %zu, expected %zu",
				    where, op->arg, n, op->n);
				good = 0;
				break;
			}
			memcpy(m.data + m.len, op->arg, n);
			m.len += n;
			break;
		case OP_WRITE:
			len = strlen(op->arg);
			space = buf_space(b);
			if (len > space) {
				diag("%s: bad scenario, write %zu > space %zu",
				    where, len, space);
				good = 0;
				break;
			}
			w = buf_wptr(b);
			if (w < b->data || w + space != b->data + b->size) {
				diag("%s: buf_wptr() is not followed by buf_space() "
				    "contiguous bytes up to the end of data[]", where);
				good = 0;
				break;
			}
			if (!(good = buf_agrees(b, &m, where)))
				break;
			memcpy(w, op->arg, len);
			buf_produce(b, len);
			memcpy(m.data + m.len, op->arg, len);
			m.len += len;
			break;
		case OP_CONSUME:
			buf_consume(b, op->n);
			memmove(m.data, m.data + op->n, m.len - op->n);
			m.len -= op->n;
			break;
		case OP_WPTR:
			space = buf_space(b);
			w = buf_wptr(b);
			if (buf_space(b) != space ||
			    w + space != b->data + b->size) {
				diag("%s: buf_wptr() changed the space or left it "
				    "fragmented", where);
				good = 0;
			}
			break;
		case OP_EXPECT:
			len = strlen(op->arg);
			if (buf_len(b) != len || (len > 0 &&
			    memcmp(buf_rptr(b), op->arg, len) != 0)) {
				diag("%s: pending \"%.*s\", expected \"%s\"", where,
				    (int)buf_len(b), buf_rptr(b), op->arg);
				good = 0;
			}
			break;
		case OP_END:
			break;
		}
		if (good)
			good = buf_agrees(b, &m, where);
	}
	free(m.data);
	buf_free(b);
	return good;
}

static void
test_scenarios(void)
{
	size_t i;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		ok(run_scenario(&scenarios[i]), "scenario: %s", scenarios[i].name);
}

/* ---- pseudo-random produce/consume cycles ---------------------------------- */

static uint32_t
rnd(uint32_t *state)
{
	/* xorshift32: deterministic, so a failure reproduces */
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

static const struct {
	size_t		size;
	uint32_t	seed;
	int		rounds;
} random_cases[] = {
	{ 1,	 1,		2000 },
	{ 7,	 2,		20000 },
	{ 64,	 3,		20000 },
	{ 4096,	 0x5eed,	20000 },
	{ 16384, 0xdecaf,	5000 },
};

static void
test_random(void)
{
	size_t i;

	for (i = 0; i < sizeof(random_cases) / sizeof(random_cases[0]); i++) {
		struct buf *b = buf_new(random_cases[i].size);
		struct model m;
		uint32_t st = random_cases[i].seed;
		uint8_t next = 0, chunk[16384];
		char where[96], *w;
		size_t n, got, k;
		int r, good = 1;

		if (b == NULL) {
			ok(0, "random cycles, size %zu: buf_new", random_cases[i].size);
			continue;
		}
		m.size = random_cases[i].size;
		m.len = 0;
		if ((m.data = malloc(m.size)) == NULL)
			bail_out("out of memory");
		for (r = 0; good && r < random_cases[i].rounds; r++) {
			snprintf(where, sizeof(where), "size %zu seed %u round %d",
			    m.size, random_cases[i].seed, r);
			switch (rnd(&st) % 3) {
			case 0:		/* append a chunk, maybe more than fits */
				n = rnd(&st) % (m.size + m.size / 2 + 2);
				if (n > sizeof(chunk))
					n = sizeof(chunk);
				for (k = 0; k < n; k++)
					chunk[k] = next + k;
				got = buf_append(b, chunk, n);
				if (got != (n < m.size - m.len ? n : m.size - m.len)) {
					diag("%s: buf_append(%zu) with %zu free returned %zu",
					    where, n, m.size - m.len, got);
					good = 0;
					break;
				}
				memcpy(m.data + m.len, chunk, got);
				m.len += got;
				next += got;
				break;
			case 1:		/* write through wptr/produce */
				n = buf_space(b) == 0 ? 0 : rnd(&st) % (buf_space(b) + 1);
				w = buf_wptr(b);
				if (w + buf_space(b) != b->data + b->size) {
					diag("%s: buf_wptr() free space not contiguous", where);
					good = 0;
					break;
				}
				for (k = 0; k < n; k++)
					w[k] = (char)(uint8_t)(next + k);
				buf_produce(b, n);
				for (k = 0; k < n; k++)
					m.data[m.len + k] = (char)(uint8_t)(next + k);
				m.len += n;
				next += n;
				break;
			default:	/* consume some */
				n = rnd(&st) % (m.len + 1);
				buf_consume(b, n);
				memmove(m.data, m.data + n, m.len - n);
				m.len -= n;
				break;
			}
			if (good)
				good = buf_agrees(b, &m, where);
		}
		ok(good, "random produce/consume cycles, size %zu, %d rounds",
		    random_cases[i].size, random_cases[i].rounds);
		free(m.data);
		buf_free(b);
	}
}

/* ---- a large stream through a small buffer ---------------------------------- */

static void
test_stream(void)
{
	struct buf *b = buf_new(1000);
	size_t total = 1000000, in = 0, out = 0, n, k, step = 1;
	uint8_t src[1500];
	int good = 1;

	if (!ok(b != NULL, "stream: buf_new(1000)"))
		return;
	/* 1 MB through a 1000-byte buffer with odd chunk sizes: the bytes must
	 * come out in the order they went in. */
	while (good && out < total) {
		n = (step * 7919) % 1500;
		if (n > total - in)
			n = total - in;
		for (k = 0; k < n; k++)
			src[k] = (uint8_t)((in + k) % 251);
		in += buf_append(b, src, n);
		n = (step * 104729) % 997 + 1;
		if (n > buf_len(b))
			n = buf_len(b);
		for (k = 0; k < n; k++) {
			if ((uint8_t)buf_rptr(b)[k] != (uint8_t)((out + k) % 251)) {
				diag("stream: byte %zu is 0x%02x, expected 0x%02x",
				    out + k, (uint8_t)buf_rptr(b)[k],
				    (unsigned)((out + k) % 251));
				good = 0;
				break;
			}
		}
		buf_consume(b, n);
		out += n;
		step++;
		if (step > 10000000) {
			diag("stream: no progress");
			good = 0;
		}
	}
	ok(good, "stream: 1 MB through a 1000-byte buffer keeps byte order");
	is_uint(buf_len(b), 0, "stream: empty at the end");
	buf_free(b);
}

int
main(void)
{
	test_new();
	test_scenarios();
	test_random();
	test_stream();
	return done_testing();
}
