/*
 * proxyproto.h: the PROXY protocol, versions 1 (text) and 2 (binary), as
 * HAProxy specifies it: parsing a header a load balancer put in front of a
 * client's bytes, and building one for a backend.  Pure: no I/O.
 */
#ifndef PREFORKD_PROXYPROTO_H
#define PREFORKD_PROXYPROTO_H

#include <sys/socket.h>
#include <stddef.h>

#define PROXY_V1_MAX	107	/* longest v1 line, CRLF included */
#define PROXY_V2_MAX	536	/* longest v2 header we accept (16 + 520) */
#define PROXY_HDR_MAX	PROXY_V2_MAX

struct proxy_hdr {
	int			 version;	/* 1 or 2 */
	int			 local;		/* v2 LOCAL / v1 UNKNOWN: no addresses */
	struct sockaddr_storage	 src;		/* the client, when !local */
	struct sockaddr_storage	 dst;		/* the address it connected to */
};

/*
 * Parse a PROXY header at the start of buf (len bytes read so far).
 * Returns the header's length (the bytes to drop) with *h filled, 0 when
 * more bytes are needed to decide, or -1 when buf cannot start a valid
 * header (malformed, unsupported, or longer than PROXY_HDR_MAX), with
 * *why pointing at a static one-line reason.  v1: "PROXY TCP4|TCP6|UNKNOWN
 * src dst sport dport\r\n"; v2: the 12-byte signature, version 2, command
 * LOCAL or PROXY, family AF_INET/AF_INET6 over STREAM (others: treated as
 * LOCAL), TLVs skipped.
 */
int	proxy_parse(const void *buf, size_t len, struct proxy_hdr *h,
	    const char **why);

/*
 * Build a header for a connection from src to dst (both AF_INET, or both
 * AF_INET6; mixed or other families, or a NULL address, give "PROXY
 * UNKNOWN\r\n" for v1 and a LOCAL header for v2) into out, which holds outlen bytes (PROXY_HDR_MAX
 * is always enough).  Returns the length, or 0 when out is too small.
 */
size_t	proxy_build_v1(const struct sockaddr *src, const struct sockaddr *dst,
	    char *out, size_t outlen);
size_t	proxy_build_v2(const struct sockaddr *src, const struct sockaddr *dst,
	    char *out, size_t outlen);

#endif
