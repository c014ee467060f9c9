/*
 * cidrlist.h: the value of an address-list key (allow, deny,
 * accept_proxy_from): blank-separated words, each an address block or the
 * absolute path of a list file, read there and then.
 *
 * Apart from confkey.c because it reads files, with their own lines and
 * errors, which no other key does; apart from cidr.c because that module
 * stays pure (no file, no message formatting).
 */
#ifndef PREFORKD_CIDRLIST_H
#define PREFORKD_CIDRLIST_H

#include <stddef.h>

#include "cidr.h"

#define CIDRLIST_FILE_MAX	(16 << 20)	/* bytes in a list file at most */

/*
 * Add to s the blocks of value: each blank-separated word is a block or
 * an address (cidr_parse()), or, when it starts with '/', a list file of
 * one block or address a line, where blank lines and '#' comments are
 * ignored.  s is left unbuilt.  0, or -1 with msglen bytes of msg saying
 * what was wrong: "bad address 'foo'", "FILE:LINE: bad address 'foo'",
 * "FILE: No such file or directory" and the like (the blocks before the
 * error stay in s).  O(n) in the blocks added.
 */
int	cidrlist_add(struct cidr_set *s, const char *value, char *msg,
	    size_t msglen);

#endif
