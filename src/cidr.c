/*
 * cidr.c: address blocks and sets of them (cidr.h).
 *
 * An address is a 128-bit number, IPv4 in ::ffff:0:0/96; a block is the
 * inclusive range [lo, hi] it covers.  A set is an array of ranges that
 * cidr_set_build() sorts and merges, so that a lookup is one binary search
 * over disjoint, non-adjacent ranges: about 14 steps for 10,000 blocks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

#define CIDR_MAX	(~(cidr_addr)0)
#define CIDR_V4MAPPED	((cidr_addr)0xffff << 32)	/* ::ffff:0:0 */

/* 16 bytes in network order as a number. */
static cidr_addr
cidr_from_bytes(const unsigned char *b)
{
	cidr_addr a = 0;

	for (int i = 0; i < 16; i++)
		a = a << 8 | b[i];
	return a;
}

/* The host part of a /plen block (plen 0..128): the bits past the prefix. */
static cidr_addr
cidr_hostmask(unsigned plen)
{
	return plen == 0 ? CIDR_MAX : ((cidr_addr)1 << (128 - plen)) - 1;
}

/*
 * The prefix length after the '/': decimal digits only, no sign, no
 * leading zero (is "010" ten or eight?), at most max.
 */
static int
cidr_plen(const char *s, unsigned max, unsigned *plen, const char **why)
{
	unsigned v = 0;
	const char *p;

	if (*s == '\0') {
		*why = "missing prefix length";
		return -1;
	}
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (v <= 128)		/* past it, any value is out of range */
			v = v * 10 + (*p - '0');
	}
	if (*p != '\0' || p == s || (s[0] == '0' && p - s > 1)) {
		*why = "bad prefix length";
		return -1;
	}
	if (v > max) {
		*why = "prefix out of range";
		return -1;
	}
	*plen = v;
	return 0;
}

int
cidr_parse(const char *word, struct cidr_range *out, const char **why)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char b[16];
	struct in_addr in4;
	const char *slash;
	unsigned plen, max;
	size_t len;
	cidr_addr a, host_bits;
	int v6;

	if (*word == '\0') {
		*why = "empty address";
		return -1;
	}
	slash = strchr(word, '/');
	len = slash != NULL ? (size_t)(slash - word) : strlen(word);
	if (len == 0 || len >= sizeof(host)) {
		*why = "bad address";
		return -1;
	}
	memcpy(host, word, len);
	host[len] = '\0';
	/* inet_pton takes dotted quads only: no "127.1", no octal, no hex. */
	v6 = strchr(host, ':') != NULL;
	if (v6 ? inet_pton(AF_INET6, host, b) != 1 : inet_pton(AF_INET, host, &in4) != 1) {
		*why = "bad address";
		return -1;
	}
	if (v6)
		a = cidr_from_bytes(b);
	else
		a = CIDR_V4MAPPED | ntohl(in4.s_addr);
	max = v6 ? 128 : 32;
	plen = max;
	if (slash != NULL && cidr_plen(slash + 1, max, &plen, why) == -1)
		return -1;
	if (!v6)
		plen += 96;
	host_bits = cidr_hostmask(plen);
	if ((a & host_bits) != 0) {
		*why = "host bits set past the prefix";
		return -1;
	}
	out->lo = a;
	out->hi = a | host_bits;
	return 0;
}

int
cidr_from_sockaddr(const struct sockaddr *sa, cidr_addr *a)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		*a = CIDR_V4MAPPED | ntohl(sin->sin_addr.s_addr);
		return 0;
	case AF_INET6:
		/* A mapped IPv4 address is already where IPv4 lives. */
		sin6 = (const struct sockaddr_in6 *)sa;
		*a = cidr_from_bytes(sin6->sin6_addr.s6_addr);
		return 0;
	default:
		errno = EAFNOSUPPORT;
		return -1;
	}
}

void
cidr_set_init(struct cidr_set *s)
{
	memset(s, 0, sizeof(*s));
	s->built = 1;		/* nothing to sort */
}

void
cidr_set_fini(struct cidr_set *s)
{
	free(s->r);
	cidr_set_init(s);
}

int
cidr_set_add(struct cidr_set *s, const struct cidr_range *r)
{
	struct cidr_range *v;
	size_t cap;

	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 16;
		if (cap > SIZE_MAX / sizeof(*v) ||
		    (v = realloc(s->r, cap * sizeof(*v))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		s->r = v;
		s->cap = cap;
	}
	s->r[s->n++] = *r;
	s->built = 0;
	return 0;
}

static int
cidr_range_cmp(const void *x, const void *y)
{
	const struct cidr_range *a = x, *b = y;

	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	return 0;
}

void
cidr_set_build(struct cidr_set *s)
{
	struct cidr_range *cur;
	size_t i;

	if (s->built)
		return;
	s->built = 1;
	if (s->n == 0)
		return;
	qsort(s->r, s->n, sizeof(*s->r), cidr_range_cmp);
	cur = &s->r[0];
	for (i = 1; i < s->n; i++) {
		const struct cidr_range *r = &s->r[i];

		/*
		 * Sorted by lo, so r starts at or after cur.  It joins cur if it
		 * starts inside it or just past it; cur->hi + 1 would wrap
		 * at the top of the space, where everything after is inside.
		 */
		if (cur->hi == CIDR_MAX || r->lo <= cur->hi + 1) {
			if (r->hi > cur->hi)
				cur->hi = r->hi;
		} else
			*++cur = *r;
	}
	s->n = cur - s->r + 1;
}

int
cidr_set_has(const struct cidr_set *s, cidr_addr a)
{
	size_t lo = 0, hi = s->n, mid;

	if (!s->built) {
		/* Not promised by cidr.h, but right rather than wrong. */
		for (size_t i = 0; i < s->n; i++)
			if (s->r[i].lo <= a && a <= s->r[i].hi)
				return 1;
		return 0;
	}
	/* The first range that starts past a is r[lo]; the one before may hold a. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->r[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && a <= s->r[lo - 1].hi;
}

int
cidr_set_match(const struct cidr_set *s, const struct sockaddr *sa)
{
	cidr_addr a;

	return cidr_from_sockaddr(sa, &a) == 0 && cidr_set_has(s, a);
}
