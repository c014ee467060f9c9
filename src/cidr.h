/*
 * cidr.h: address sets.  Owns the text form of an address block
 * ("10.0.0.0/8", "2001:db8::/32", a bare address) and a set of blocks kept
 * as sorted, merged ranges of 128-bit addresses, matched by binary search:
 * O(log n) for any number of entries, with no allocation on the way.
 *
 * IPv4 lives in the IPv4-mapped range (::ffff:0:0/96), so one set holds
 * both families, and a client that reaches a dual-stack listener as
 * ::ffff:a.b.c.d matches the IPv4 rules written for a.b.c.d.
 *
 * Pure: no file, no log, no global.  The config (confkey.c) splits a
 * value into words and reads list files; this module parses one word.
 */
#ifndef PREFORKD_CIDR_H
#define PREFORKD_CIDR_H

#include <sys/socket.h>

#include <stddef.h>

typedef unsigned __int128 cidr_addr;

struct cidr_range {
	cidr_addr	 lo, hi;	/* inclusive */
};

struct cidr_set {
	struct cidr_range *r;		/* owned, n of them (cap allocated) */
	size_t		 n, cap;
	int		 built;		/* sorted and merged since the last add */
};

/*
 * Parse one word: "A.B.C.D/N" (N 0..32), "X:X::X/N" (N 0..128), or a bare
 * address (one host).  Host bits set past the prefix ("10.0.0.1/8") are
 * an error, not silently cleared.  0, or -1 with *why a constant message.
 */
int	cidr_parse(const char *word, struct cidr_range *out, const char **why);

/* The address of sa (AF_INET or AF_INET6, mapped IPv4 as IPv4).  0, or -1. */
int	cidr_from_sockaddr(const struct sockaddr *sa, cidr_addr *a);

void	cidr_set_init(struct cidr_set *s);
void	cidr_set_fini(struct cidr_set *s);
/* Add a range.  0, or -1 (ENOMEM).  The set must be built again. */
int	cidr_set_add(struct cidr_set *s, const struct cidr_range *r);
/* Sort and merge (overlapping and adjacent ranges become one). */
void	cidr_set_build(struct cidr_set *s);
/* 1 if a is in the built set s, else 0. */
int	cidr_set_has(const struct cidr_set *s, cidr_addr a);
/* 1 if sa's address is in s; 0 if not, or if sa is no IP address. */
int	cidr_set_match(const struct cidr_set *s, const struct sockaddr *sa);

#endif
