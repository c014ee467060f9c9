/*
 * confkey.h: the key table and the value parsers.
 *
 * Owns what a key is: its section, name, type, default, bounds and doc line
 * (the one table that config_keys() shows), and how one value string
 * becomes the field it sets, one parser per type.  It knows nothing of
 * the config file, its lines, open sections, duplicate keys or error lists
 * (the list files an address-list value names are the value's, read
 * through cidrlist.c), and it never calls into config.c: config.c reads
 * the text, finds a key with confkey_find(), and reports what
 * confkey_set() says was wrong.
 */
#ifndef PREFORKD_CONFKEY_H
#define PREFORKD_CONFKEY_H

#include <stddef.h>

#include "config.h"

#define LINE_MAX_LEN	199		/* what Debian's inih reads in one go */
#define CONFKEY_MAX	64		/* config.c keeps a 64-bit seen mask */

/* Sections; S_NONE and S_UNKNOWN are config.c's reader states, no key's. */
enum sect { S_NONE, S_DAEMON, S_LISTENER, S_UNKNOWN };

enum ktype {
	K_WORKERS, K_UINT, K_DURATION, K_SIZE, K_LEVEL, K_TARGET, K_ADDR, K_MODE,
	K_USER, K_GROUP, K_PATH, K_BACKEND, K_BALANCE, K_SENDPROXY, K_ONOFF,
	K_BYTES, K_DISPATCH, K_SOURCE, K_SPLICE, K_LOGFORMAT, K_CONTROL,
	K_METRICS,
	K_CIDR, K_UNTRUSTED,
	K_RATE, K_POW2,
	K_NTYPES		/* how many; no key has it */
};

struct keydef {
	struct config_key pub;
	enum sect	 sect;
	enum ktype	 type;
	size_t		 off;		/* into struct config or listener_conf */
	unsigned long long min, max;	/* bounds in the stored unit */
	size_t		 off_len;	/* K_BYTES: where the length goes;
					   K_RATE: where the window (ms) goes */
};

/* The key table, in documentation order: confkey_nkeys entries. */
extern const struct keydef confkey_keys[];
extern const size_t confkey_nkeys;

/* The key named name in section sect; NULL when there is none. */
const struct keydef *confkey_find(enum sect sect, const char *name);

/*
 * Where a listener key records the line it was first set on: the offset
 * of an int in struct listener_conf (several keys may share one, as the
 * per-client keys share client_line), or 0 when it records none.
 */
size_t	confkey_line_field(const struct keydef *k);

/*
 * Set key k in obj (a struct config for S_DAEMON keys, a struct
 * listener_conf for S_LISTENER keys) from value.  Returns NULL, or a
 * message saying what was wrong: a constant, or msg (msglen bytes) filled
 * in.  listen also resolves the address; backend, source and the address
 * lists (allow, deny, accept_proxy_from: their list files are read here)
 * append.
 */
const char *confkey_set(const struct keydef *k, void *obj, const char *value,
	    char *msg, size_t msglen);

#endif
