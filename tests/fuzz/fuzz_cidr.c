/*
 * fuzz_cidr.c: libFuzzer harness for src/cidr.c.
 *
 * The input is split into words at blanks and line ends, as a list key's
 * value or a list file is; each word goes to cidr_parse() from a copy of
 * exactly its size, so that ASan catches a read past it.  Invariants (a
 * crash, a sanitizer report or a leak is a failure too):
 *  - a refusal comes with a reason; a parsed block is a CIDR block: lo <=
 *    hi, hi - lo + 1 a power of two (or the whole space) and lo aligned to
 *    it; a word without ':' gives a block inside ::ffff:0:0/96;
 *  - once built, the set's ranges are sorted, disjoint and not adjacent,
 *    and fewer than the blocks added;
 *  - the ends of every parsed block are members, and for each block's
 *    neighbours (lo - 1, hi + 1) and a few addresses from the input,
 *    cidr_set_has() answers as a linear scan of the blocks does;
 *  - an IPv4 sockaddr and its mapped IPv6 form give the same address.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_cidr: %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

#define AMAX		(~(cidr_addr)0)
#define V4LO		((cidr_addr)0xffff << 32)
#define V4HI		(V4LO | 0xffffffff)
#define MAXBLOCKS	1024

/* Where words end: blanks, line ends, and a NUL, which would end the C string. */
static int
is_sep(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
}

static int
scan(const struct cidr_range *b, size_t n, cidr_addr a)
{
	for (size_t i = 0; i < n; i++)
		if (b[i].lo <= a && a <= b[i].hi)
			return 1;
	return 0;
}

static cidr_addr
from_bytes(const uint8_t *p, size_t n)
{
	cidr_addr a = 0;

	for (size_t i = 0; i < 16; i++)
		a = a << 8 | (i < n ? p[i] : 0);
	return a;
}

static void
check_sockaddr(const uint8_t *data, size_t size)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	cidr_addr a4, a6;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	sin.sin_family = AF_INET;
	memcpy(&sin.sin_addr, data, size < 4 ? size : 4);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr.s6_addr[10] = sin6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&sin6.sin6_addr.s6_addr[12], data, size < 4 ? size : 4);
	CHECK(cidr_from_sockaddr((struct sockaddr *)&sin, &a4) == 0, "AF_INET refused");
	CHECK(cidr_from_sockaddr((struct sockaddr *)&sin6, &a6) == 0, "AF_INET6 refused");
	CHECK(a4 == a6 && a4 >= V4LO && a4 <= V4HI, "IPv4 and its mapped form differ");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cidr_range blocks[MAXBLOCKS];
	struct cidr_set s;
	struct cidr_range r;
	const char *why;
	size_t i, j, n = 0, len;
	char *w;

	cidr_set_init(&s);
	for (i = 0; i < size && n < MAXBLOCKS; i += len) {
		for (len = 0; i + len < size && !is_sep(data[i + len]); len++)
			;
		if (len == 0) {
			len = 1;
			continue;
		}
		if ((w = malloc(len + 1)) == NULL)
			abort();
		memcpy(w, data + i, len);
		w[len] = '\0';
		why = NULL;
		if (cidr_parse(w, &r, &why) == -1) {
			CHECK(why != NULL && why[0] != '\0', "refused without a reason");
		} else {
			cidr_addr size_1 = r.hi - r.lo;

			CHECK(r.lo <= r.hi, "'%s': lo > hi", w);
			CHECK((size_1 & (size_1 + 1)) == 0, "'%s': not a power of two", w);
			CHECK((r.lo & size_1) == 0, "'%s': not aligned", w);
			if (strchr(w, ':') == NULL)
				CHECK(r.lo >= V4LO && r.hi <= V4HI, "'%s': IPv4 outside ::ffff:0:0/96", w);
			CHECK(cidr_set_add(&s, &r) == 0, "out of memory");
			blocks[n++] = r;
		}
		free(w);
	}
	cidr_set_build(&s);
	CHECK(s.built && s.n <= n, "built into %zu ranges from %zu blocks", s.n, n);
	for (j = 0; j < s.n; j++) {
		CHECK(s.r[j].lo <= s.r[j].hi, "range %zu: lo > hi", j);
		if (j > 0)
			CHECK(s.r[j - 1].hi != AMAX && s.r[j - 1].hi + 1 < s.r[j].lo,
			    "ranges %zu and %zu overlap or touch", j - 1, j);
	}
	for (i = 0; i < n; i++) {
		CHECK(cidr_set_has(&s, blocks[i].lo), "block %zu: lo not in", i);
		CHECK(cidr_set_has(&s, blocks[i].hi), "block %zu: hi not in", i);
		CHECK(cidr_set_has(&s, blocks[i].lo - 1) == scan(blocks, n, blocks[i].lo - 1),
		    "block %zu: lo - 1 answers wrong", i);
		CHECK(cidr_set_has(&s, blocks[i].hi + 1) == scan(blocks, n, blocks[i].hi + 1),
		    "block %zu: hi + 1 answers wrong", i);
	}
	for (i = 0; i + 16 <= size && i < 256; i += 16) {
		cidr_addr a = from_bytes(data + i, 16);

		CHECK(cidr_set_has(&s, a) == scan(blocks, n, a), "an input address answers wrong");
		a = V4LO | (cidr_addr)(a & 0xffffffff);
		CHECK(cidr_set_has(&s, a) == scan(blocks, n, a), "an IPv4 address answers wrong");
	}
	if (size > 0)
		check_sockaddr(data, size);
	cidr_set_fini(&s);
	return 0;
}
