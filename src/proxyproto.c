/*
 * proxyproto.c: the PROXY protocol, v1 (text) and v2 (binary): an
 * incremental parser for the header a load balancer sends before the
 * client's bytes, and builders for the header we send to a backend.
 *
 * The parser is fed everything read so far and decides as early as it can:
 * it answers "need more" only while the bytes are still a valid beginning
 * of some header, so a client that sends garbage is refused on its first
 * segment rather than when the proxy timeout fires.  No I/O, no state kept
 * between calls: the caller passes the whole prefix again each time (at
 * most PROXY_HDR_MAX bytes matter).
 *
 * Strictness, v1: fields are separated by exactly one space; ports are
 * decimal 0-65535 with no sign and no leading zero ("0" itself is fine,
 * "080" is not: every sender formats with %u, and glibc's inet_pton
 * refuses leading zeros in IPv4 octets too); addresses must parse with
 * inet_pton in the family the protocol word names, and hold only the
 * bytes an address can (no NUL, which would end inet_pton's string early).
 * After "UNKNOWN" any bytes but CR and LF may follow up to the CRLF, as the
 * spec requires.  A header gets the same verdict however it is split:
 * every check made on a complete field is also made on each prefix of it,
 * or can only fail once the field is complete.
 * v2: the command must be LOCAL or PROXY and the version 2; for PROXY the
 * family and transport nibbles must be ones the spec defines and the
 * address block must be long enough for the family.  Only TCP over IPv4 or
 * IPv6 yields addresses; the other defined families (UNSPEC, UNIX, DGRAM)
 * are accepted as local, and TLVs are skipped without being looked at.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxyproto.h"

#define V2_SIGLEN	12
#define V2_HDRLEN	16		/* signature, ver_cmd, fam, len */
#define V2_LOCAL	0x0
#define V2_PROXY	0x1
#define V2_AF_UNSPEC	0x0
#define V2_AF_INET	0x1
#define V2_AF_INET6	0x2
#define V2_AF_UNIX	0x3
#define V2_STREAM	0x1
#define V2_DGRAM	0x2
#define V2_INET_LEN	12		/* 4 + 4 + 2 + 2 */
#define V2_INET6_LEN	36		/* 16 + 16 + 2 + 2 */
#define V2_UNIX_LEN	216		/* 108 + 108 */

#define V1_V4_MAX	15		/* "255.255.255.255" */
#define V1_V6_MAX	45		/* INET6_ADDRSTRLEN - 1 */

static const unsigned char v2sig[V2_SIGLEN] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static int
fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return -1;
}

/* ---- v1 ---------------------------------------------------------------- */

/*
 * The bytes of a v1 line read so far (at most PROXY_V1_MAX: a line that
 * has not ended by then never will) and the parse position.
 */
struct v1 {
	const char	*p;
	size_t		 len;
	size_t		 pos;
};

/*
 * The field at v->pos: its length up to the first byte equal to end1 or
 * end2, or up to the end of the bytes read.  *done is 1 when a delimiter
 * was found (it is then p[pos + length]).
 */
static size_t
v1_field(const struct v1 *v, char end1, char end2, int *done)
{
	size_t i;

	for (i = v->pos; i < v->len; i++) {
		if (v->p[i] == end1 || v->p[i] == end2) {
			*done = 1;
			return i - v->pos;
		}
	}
	*done = 0;
	return v->len - v->pos;
}

/* 1 when s (n bytes) starts one of the protocol words. */
static int
v1_proto_prefix(const char *s, size_t n)
{
	static const char *const words[] = { "TCP4", "TCP6", "UNKNOWN" };
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (n <= strlen(words[i]) && memcmp(s, words[i], n) == 0)
			return 1;
	return 0;
}

/*
 * A port, complete or not: 1 when s (n bytes) is, or may still become,
 * a decimal 0-65535 without sign or leading zero; *port gets the value.
 */
static int
v1_port(const char *s, size_t n, int complete, in_port_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0)
		return !complete;
	if (n > 5 || (s[0] == '0' && n > 1))
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return 0;
	*port = htons((in_port_t)v);
	return 1;
}

/*
 * An IPv4 address not yet complete: 1 while s (n bytes) can still become
 * one inet_pton() accepts (at most 4 octets of 0-255 without leading
 * zeros, no empty octet).  Exact, so a bad address is refused at once.
 */
static int
v1_v4_prefix(const char *s, size_t n)
{
	unsigned octet = 0, digits = 0, dots = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (digits == 0 || ++dots > 3)
				return 0;
			octet = digits = 0;
		} else if (s[i] >= '0' && s[i] <= '9') {
			if (digits == 1 && octet == 0)
				return 0;		/* leading zero */
			octet = octet * 10 + (unsigned)(s[i] - '0');
			if (++digits > 3 || octet > 255)
				return 0;
		} else
			return 0;
	}
	return 1;
}

/*
 * An IPv6 address not yet complete: 1 unless s (n bytes) already cannot
 * become one.  Not exact (that takes a grammar; inet_pton decides once the
 * field ends): it catches the wrong alphabet, overlength, a group of more
 * than four hex digits, ":::" and a second "::".
 */
static int
v1_v6_prefix(const char *s, size_t n)
{
	size_t i, hex = 0, colons = 0;
	int dcolon = 0;

	if (n > V1_V6_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == ':') {
			if (++colons == 2) {
				if (dcolon)
					return 0;
				dcolon = 1;
			} else if (colons > 2)
				return 0;
			hex = 0;
		} else if ((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')) {
			if (++hex > 4)
				return 0;
			colons = 0;
		} else if (s[i] == '.') {
			/* the embedded IPv4 tail; inet_pton checks it at the end */
			colons = hex = 0;
		} else
			return 0;
	}
	return 1;
}

/*
 * A complete address field into the address part of ss; -1 if bad.  The
 * field must pass the same check as an incomplete one before inet_pton
 * sees it: inet_pton stops at a NUL, so "1.2.3.4\0junk" would pass whole
 * and fail in pieces, and a verdict must not depend on the segmentation.
 */
static int
v1_addr(const char *s, size_t n, int af, struct sockaddr_storage *ss)
{
	char tmp[V1_V6_MAX + 1];
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (n == 0 || n > (af == AF_INET ? V1_V4_MAX : V1_V6_MAX))
		return -1;
	if (af == AF_INET ? !v1_v4_prefix(s, n) : !v1_v6_prefix(s, n))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)af;
	if (af == AF_INET)
		return inet_pton(AF_INET, tmp, &sin->sin_addr) == 1 ? 0 : -1;
	return inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1 ? 0 : -1;
}

static void
set_port(struct sockaddr_storage *ss, in_port_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = port;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = port;
}

/*
 * The steps of a v1 parse.  Each starts at v->pos and returns 1 with v->pos
 * past what it read, 0 for "need more", or -1 with *why.
 */

/*
 * The protocol word, which ends with a space, or with the CR of UNKNOWN:
 * *af gets AF_INET, AF_INET6, or AF_UNSPEC for UNKNOWN.
 */
static int
v1_proto(struct v1 *v, int *af, const char **why)
{
	static const char bad[] = "v1: bad protocol (want TCP4, TCP6 or UNKNOWN)";
	const char *f = v->p + v->pos;
	int done;
	size_t n = v1_field(v, ' ', '\r', &done);

	if (!v1_proto_prefix(f, n))
		return fail(why, bad);
	if (!done)
		return 0;
	if (n == 7)
		*af = AF_UNSPEC;
	else if (n == 4 && memcmp(f, "TCP4", 4) == 0)
		*af = AF_INET;
	else if (n == 4 && memcmp(f, "TCP6", 4) == 0)
		*af = AF_INET6;
	else
		return fail(why, bad);
	v->pos += n;
	return 1;
}

/* After UNKNOWN: whatever follows a space up to the CRLF is to be ignored. */
static int
v1_unknown(struct v1 *v)
{
	size_t n;
	int done;

	if (v->p[v->pos] != ' ')
		return 1;
	v->pos++;
	n = v1_field(v, '\r', '\n', &done);
	if (!done)
		return 0;
	v->pos += n;
	return 1;
}

/*
 * " src dst ": the space after the protocol word, then the source and
 * destination addresses of family af, each followed by one space.
 */
static int
v1_addrs(struct v1 *v, int af, struct proxy_hdr *h, const char **why)
{
	const char *f;
	size_t n;
	int done, i;

	if (v->p[v->pos] != ' ')
		return fail(why, "v1: missing addresses");
	v->pos++;
	for (i = 0; i < 2; i++) {
		f = v->p + v->pos;
		n = v1_field(v, ' ', ' ', &done);
		if (!done) {
			if (af == AF_INET ? !v1_v4_prefix(f, n) :
			    !v1_v6_prefix(f, n))
				return fail(why, "v1: bad address");
			return 0;
		}
		if (v1_addr(f, n, af, i == 0 ? &h->src : &h->dst) == -1)
			return fail(why, n == 0 ? "v1: extra space" :
			    "v1: bad address");
		v->pos += n + 1;
	}
	return 1;
}

/*
 * A port that ends with end, into ss (whose family is set); empty is the
 * reason when the field is empty.  v->pos stops at end.
 */
static int
v1_port_field(struct v1 *v, char end, const char *empty,
    struct sockaddr_storage *ss, const char **why)
{
	const char *f = v->p + v->pos;
	in_port_t port = 0;
	int done;
	size_t n = v1_field(v, end, end, &done);

	if (!v1_port(f, n, done, &port))
		return fail(why, n == 0 ? empty : "v1: bad port");
	if (!done)
		return 0;
	v->pos += n;
	set_port(ss, port);
	return 1;
}

/* "sport dport": the ports, up to the CR. */
static int
v1_ports(struct v1 *v, struct proxy_hdr *h, const char **why)
{
	int rc;

	if ((rc = v1_port_field(v, ' ', "v1: extra space", &h->src, why)) != 1)
		return rc;
	v->pos++;		/* the space between them */
	return v1_port_field(v, '\r', "v1: missing port", &h->dst, why);
}

/* The CRLF at v->pos (or the end of what was read): the line's length. */
static int
v1_crlf(const struct v1 *v, const char **why)
{
	if (v->pos < v->len && v->p[v->pos] != '\r')
		return fail(why, "v1: bare LF");
	if (v->pos + 1 < v->len && v->p[v->pos + 1] != '\n')
		return fail(why, "v1: CR without LF");
	if (v->pos + 2 > v->len)
		return 0;
	return (int)(v->pos + 2);
}

/*
 * The parse proper, on at most PROXY_V1_MAX bytes: returns the line's
 * length, 0 for "need more", -1 with *why.
 */
static int
v1_parse(const char *buf, size_t len, struct proxy_hdr *h, const char **why)
{
	struct v1 v = { buf, len, 0 };
	struct proxy_hdr tmp;
	size_t n;
	int af = AF_UNSPEC, rc;

	n = len < 6 ? len : 6;
	if (memcmp(buf, "PROXY ", n) != 0)
		return fail(why, "not a PROXY header");
	if (len < 6)
		return 0;
	v.pos = 6;
	memset(&tmp, 0, sizeof(tmp));
	tmp.version = 1;
	if ((rc = v1_proto(&v, &af, why)) != 1)
		return rc;
	if (af == AF_UNSPEC) {
		tmp.local = 1;
		rc = v1_unknown(&v);
	} else if ((rc = v1_addrs(&v, af, &tmp, why)) == 1)
		rc = v1_ports(&v, &tmp, why);
	if (rc != 1)
		return rc;
	if ((rc = v1_crlf(&v, why)) > 0)
		*h = tmp;
	return rc;
}

/* ---- v2 ---------------------------------------------------------------- */

static void
v2_inet(struct sockaddr_storage *ss, const unsigned char *addr,
    const unsigned char *port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, addr, 4);
	memcpy(&sin->sin_port, port, 2);	/* both in network order */
}

static void
v2_inet6(struct sockaddr_storage *ss, const unsigned char *addr,
    const unsigned char *port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, addr, 16);
	memcpy(&sin6->sin6_port, port, 2);
}

static int
v2_parse(const unsigned char *p, size_t len, struct proxy_hdr *h,
    const char **why)
{
	size_t n, alen, need = 0;
	int cmd, fam = 0, proto = 0;

	n = len < V2_SIGLEN ? len : V2_SIGLEN;
	if (memcmp(p, v2sig, n) != 0)
		return fail(why, "not a PROXY header");
	if (len <= V2_SIGLEN)
		return 0;
	if ((p[12] >> 4) != 2)
		return fail(why, "v2: unsupported version");
	cmd = p[12] & 0x0f;
	if (cmd != V2_LOCAL && cmd != V2_PROXY)
		return fail(why, "v2: unsupported command");
	if (len < 14)
		return 0;
	/* LOCAL: the spec has the receiver ignore the family altogether. */
	if (cmd == V2_PROXY) {
		fam = p[13] >> 4;
		proto = p[13] & 0x0f;
		if (fam > V2_AF_UNIX || proto > V2_DGRAM)
			return fail(why, "v2: bad address family");
		if (fam == V2_AF_INET)
			need = V2_INET_LEN;
		else if (fam == V2_AF_INET6)
			need = V2_INET6_LEN;
		else if (fam == V2_AF_UNIX)
			need = V2_UNIX_LEN;
	}
	if (len < V2_HDRLEN)
		return 0;
	alen = (size_t)p[14] << 8 | p[15];
	if (alen > PROXY_V2_MAX - V2_HDRLEN)
		return fail(why, "v2: header too long");
	if (alen < need)
		return fail(why, "v2: address block too short for its family");
	if (len < V2_HDRLEN + alen)
		return 0;

	memset(h, 0, sizeof(*h));
	h->version = 2;
	if (cmd == V2_PROXY && proto == V2_STREAM && fam == V2_AF_INET) {
		v2_inet(&h->src, p + 16, p + 24);
		v2_inet(&h->dst, p + 20, p + 26);
	} else if (cmd == V2_PROXY && proto == V2_STREAM && fam == V2_AF_INET6) {
		v2_inet6(&h->src, p + 16, p + 48);
		v2_inet6(&h->dst, p + 32, p + 50);
	} else
		h->local = 1;
	return (int)(V2_HDRLEN + alen);
}

/* ---- entry points ------------------------------------------------------ */

int
proxy_parse(const void *buf, size_t len, struct proxy_hdr *h, const char **why)
{
	const unsigned char *p = buf;
	int rc;

	if (len == 0)
		return 0;
	if (p[0] == v2sig[0])
		return v2_parse(p, len, h, why);
	if (p[0] != 'P')
		return fail(why, "not a PROXY header");
	rc = v1_parse(buf, len < PROXY_V1_MAX ? len : PROXY_V1_MAX, h, why);
	if (rc == 0 && len >= PROXY_V1_MAX)
		return fail(why, "v1: no CRLF within 107 bytes");
	return rc;
}

/* Both AF_INET or both AF_INET6: that family; otherwise AF_UNSPEC. */
static int
pair_family(const struct sockaddr *src, const struct sockaddr *dst)
{
	if (src == NULL || dst == NULL || src->sa_family != dst->sa_family)
		return AF_UNSPEC;
	if (src->sa_family != AF_INET && src->sa_family != AF_INET6)
		return AF_UNSPEC;
	return src->sa_family;
}

size_t
proxy_build_v1(const struct sockaddr *src, const struct sockaddr *dst,
    char *out, size_t outlen)
{
	char line[PROXY_V1_MAX + 1], sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
	const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
	const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;
	int af, n;

	af = pair_family(src, dst);
	if (af == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, sa, sizeof(sa));
		inet_ntop(AF_INET, &d4->sin_addr, da, sizeof(da));
		n = snprintf(line, sizeof(line), "PROXY TCP4 %s %s %u %u\r\n",
		    sa, da, ntohs(s4->sin_port), ntohs(d4->sin_port));
	} else if (af == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, sa, sizeof(sa));
		inet_ntop(AF_INET6, &d6->sin6_addr, da, sizeof(da));
		n = snprintf(line, sizeof(line), "PROXY TCP6 %s %s %u %u\r\n",
		    sa, da, ntohs(s6->sin6_port), ntohs(d6->sin6_port));
	} else
		n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
	/*
	 * Cannot overflow: glibc writes at most 39 characters for an IPv6
	 * address, so a TCP6 line is at most 104 bytes.  No NUL is stored.
	 */
	if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > outlen)
		return 0;
	memcpy(out, line, (size_t)n);
	return (size_t)n;
}

size_t
proxy_build_v2(const struct sockaddr *src, const struct sockaddr *dst,
    char *out, size_t outlen)
{
	unsigned char hdr[V2_HDRLEN + V2_INET6_LEN], *p = hdr + V2_HDRLEN;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
	const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
	const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;
	size_t alen = 0;
	int af;

	memcpy(hdr, v2sig, V2_SIGLEN);
	af = pair_family(src, dst);
	if (af == AF_INET) {
		hdr[12] = 0x20 | V2_PROXY;
		hdr[13] = V2_AF_INET << 4 | V2_STREAM;
		memcpy(p, &s4->sin_addr, 4);
		memcpy(p + 4, &d4->sin_addr, 4);
		memcpy(p + 8, &s4->sin_port, 2);
		memcpy(p + 10, &d4->sin_port, 2);
		alen = V2_INET_LEN;
	} else if (af == AF_INET6) {
		hdr[12] = 0x20 | V2_PROXY;
		hdr[13] = V2_AF_INET6 << 4 | V2_STREAM;
		memcpy(p, &s6->sin6_addr, 16);
		memcpy(p + 16, &d6->sin6_addr, 16);
		memcpy(p + 32, &s6->sin6_port, 2);
		memcpy(p + 34, &d6->sin6_port, 2);
		alen = V2_INET6_LEN;
	} else {
		hdr[12] = 0x20 | V2_LOCAL;
		hdr[13] = V2_AF_UNSPEC << 4;
	}
	hdr[14] = (unsigned char)(alen >> 8);
	hdr[15] = (unsigned char)alen;
	if (V2_HDRLEN + alen > outlen)
		return 0;
	memcpy(out, hdr, V2_HDRLEN + alen);
	return V2_HDRLEN + alen;
}
