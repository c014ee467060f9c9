/*
 * test_proxyproto.c: unit tests for src/proxyproto.c: parsing PROXY v1 and
 * v2 headers whole and byte by byte, refusing malformed ones at the first
 * byte that gives them away, giving every header (and every header with a
 * byte changed, added or removed) the same verdict however it is split,
 * and building headers that parse back.
 *
 * Each prefix is copied into a buffer of exactly its size, so that under
 * ASan a parser that looks one byte too far is caught.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "proxyproto.h"
#include "tap.h"
#include "sockaddr_make.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* The v2 signature, spelled so that no hex escape runs into the next byte. */
#define SIG		"\r\n\r\n\0\r\nQUIT\n"
/* A literal's bytes, its NUL left out (v2 headers hold NULs of their own). */
#define BYTES(s)	s, sizeof(s) - 1

#define X10		"xxxxxxxxxx"
#define X50		X10 X10 X10 X10 X10

static const char payload[] = "GET / HTTP/1.0\r\n\r\n";

/* Parse a copy of buf[0..len) held in a buffer of exactly len bytes. */
static int
parse_exact(const void *buf, size_t len, struct proxy_hdr *h, const char **why)
{
	void *copy;
	int rc;

	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		bail_out("malloc");
	memcpy(copy, buf, len);
	rc = proxy_parse(copy, len, h, why);
	free(copy);
	return rc;
}

static const char *
sa_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	return net_addr_str((const struct sockaddr *)ss, buf, len);
}

/* ---- valid headers ----------------------------------------------------- */

static const struct {
	const char	*name;
	const char	*hdr;
	size_t		 len;
	int		 version;
	int		 local;
	const char	*src;		/* as net_addr_str writes it */
	const char	*dst;
} valid_cases[] = {
	{ "v1 TCP4", BYTES("PROXY TCP4 192.0.2.1 198.51.100.2 12345 80\r\n"),
	    1, 0, "192.0.2.1:12345", "198.51.100.2:80" },
	{ "v1 TCP4 extremes",
	    BYTES("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
	    1, 0, "0.0.0.0:0", "255.255.255.255:65535" },
	{ "v1 TCP6", BYTES("PROXY TCP6 2001:db8::1 2001:db8::2 443 8443\r\n"),
	    1, 0, "[2001:db8::1]:443", "[2001:db8::2]:8443" },
	{ "v1 TCP6 mapped", BYTES("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 65535\r\n"),
	    1, 0, "[::ffff:192.0.2.1]:1", "[::1]:65535" },
	{ "v1 TCP6 upper case",
	    BYTES("PROXY TCP6 2001:DB8::A ::FFFF:1.2.3.4 10 20\r\n"),
	    1, 0, "[2001:db8::a]:10", "[::ffff:1.2.3.4]:20" },
	{ "v1 TCP6 longest",
	    BYTES("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	    1, 0, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
	{ "v1 UNKNOWN", BYTES("PROXY UNKNOWN\r\n"), 1, 1, NULL, NULL },
	{ "v1 UNKNOWN with addresses",
	    BYTES("PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n"), 1, 1, NULL, NULL },
	{ "v1 UNKNOWN with junk", BYTES("PROXY UNKNOWN  x\t\001 y\r\n"),
	    1, 1, NULL, NULL },

	{ "v2 PROXY TCP4",
	    BYTES(SIG "\x21\x11\x00\x0c" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
	    "\x30\x39" "\x00\x50"),
	    2, 0, "192.0.2.1:12345", "198.51.100.2:80" },
	{ "v2 PROXY TCP4 with TLVs",
	    BYTES(SIG "\x21\x11\x00\x19" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
	    "\x30\x39" "\x00\x50"
	    "\x04\x00\x04" "abcd"		/* NOOP */
	    "\x02\x00\x03" "foo"),		/* AUTHORITY */
	    2, 0, "192.0.2.1:12345", "198.51.100.2:80" },
	{ "v2 PROXY TCP6",
	    BYTES(SIG "\x21\x21\x00\x24"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02"
	    "\x01\xbb" "\x20\xfb"),
	    2, 0, "[2001:db8::1]:443", "[2001:db8::2]:8443" },
	{ "v2 PROXY TCP6 with TLV",
	    BYTES(SIG "\x21\x21\x00\x28"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02"
	    "\x01\xbb" "\x20\xfb"
	    "\x04\x00\x01" "z"),
	    2, 0, "[2001:db8::1]:443", "[2001:db8::2]:8443" },
	{ "v2 LOCAL", BYTES(SIG "\x20\x00\x00\x00"), 2, 1, NULL, NULL },
	{ "v2 LOCAL with an address block",
	    BYTES(SIG "\x20\x11\x00\x0c" "\x7f\0\0\x01" "\x7f\0\0\x01"
	    "\x00\x01" "\x00\x02"),
	    2, 1, NULL, NULL },
	{ "v2 LOCAL ignores the family", BYTES(SIG "\x20\xff\x00\x00"),
	    2, 1, NULL, NULL },
	{ "v2 PROXY UNSPEC", BYTES(SIG "\x21\x00\x00\x00"), 2, 1, NULL, NULL },
	{ "v2 PROXY UDP4 (local)",
	    BYTES(SIG "\x21\x12\x00\x0c" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
	    "\x30\x39" "\x00\x50"),
	    2, 1, NULL, NULL },
};

static void
check_valid(const char *name, const char *hdr, size_t len, int version,
    int local, const char *src, const char *dst)
{
	struct proxy_hdr h;
	char *buf, sbuf[NET_ADDRSTRLEN], dbuf[NET_ADDRSTRLEN];
	const char *why = NULL;
	size_t k, total = len + sizeof(payload) - 1;
	int rc, bad;

	if ((buf = malloc(total)) == NULL)
		bail_out("malloc");
	memcpy(buf, hdr, len);
	memcpy(buf + len, payload, sizeof(payload) - 1);

	memset(&h, 0xa5, sizeof(h));
	rc = parse_exact(buf, total, &h, &why);
	if (!is_int(rc, len, "%s: returns the header length", name)) {
		diag("  why: %s", why != NULL ? why : "(none)");
		skip(5, "%s: not parsed", name);
		free(buf);
		return;
	}
	is_mem(buf + rc, payload, sizeof(payload) - 1,
	    "%s: the payload follows untouched", name);
	is_int(h.version, version, "%s: version", name);
	is_int(h.local, local, "%s: local", name);
	if (local) {
		is_int(h.src.ss_family, AF_UNSPEC, "%s: no source address",
		    name);
		is_int(h.dst.ss_family, AF_UNSPEC,
		    "%s: no destination address", name);
	} else {
		is_str(sa_str(&h.src, sbuf, sizeof(sbuf)), src, "%s: source", name);
		is_str(sa_str(&h.dst, dbuf, sizeof(dbuf)), dst,
		    "%s: destination", name);
	}

	/* Every proper prefix: need more, never a verdict. */
	for (bad = -1, k = 0; k < len && bad == -1; k++)
		if (parse_exact(buf, k, &h, &why) != 0)
			bad = (int)k;
	is_int(bad, -1, "%s: each of its %zu prefixes needs more", name, len);

	/* The header alone, with nothing after it. */
	is_int(parse_exact(buf, len, &h, &why), len, "%s: parsed alone", name);
	free(buf);
}

static void
test_valid(void)
{
	size_t i;

	for (i = 0; i < NELEM(valid_cases); i++)
		check_valid(valid_cases[i].name, valid_cases[i].hdr,
		    valid_cases[i].len, valid_cases[i].version,
		    valid_cases[i].local, valid_cases[i].src,
		    valid_cases[i].dst);
}

/* Headers built in code: the longest of each version. */
static void
test_valid_longest(void)
{
	char v1[PROXY_V1_MAX], v2[PROXY_V2_MAX];

	/* "PROXY UNKNOWN " (14) + 91 bytes + CRLF = 107 */
	memcpy(v1, "PROXY UNKNOWN ", 14);
	memset(v1 + 14, 'x', 91);
	memcpy(v1 + 105, "\r\n", 2);
	check_valid("v1 UNKNOWN of 107 bytes", v1, sizeof(v1), 1, 1, NULL, NULL);

	/* an IPv4 block and TLVs up to 520 bytes in all */
	memset(v2, 0, sizeof(v2));
	memcpy(v2, SIG "\x21\x11\x02\x08" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
	    "\x30\x39" "\x00\x50" "\x04\x01\xf9", 31);
	check_valid("v2 of 536 bytes", v2, sizeof(v2), 2, 0,
	    "192.0.2.1:12345", "198.51.100.2:80");
}

/* ---- malformed headers ------------------------------------------------- */

static const struct {
	const char	*name;
	const char	*hdr;
	size_t		 len;
	size_t		 decide;	/* shortest prefix refused */
} bad_cases[] = {
	{ "not PROXY at all", BYTES("GET / HTTP/1.0\r\n\r\n"), 1 },
	{ "bare newline", BYTES("\n"), 1 },
	{ "v1 bad signature", BYTES("PROXX TCP4 1.2.3.4 1.2.3.5 1 2\r\n"), 5 },
	{ "v1 lower case", BYTES("proxy TCP4 1.2.3.4 1.2.3.5 1 2\r\n"), 1 },
	{ "v1 TCP5", BYTES("PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n"), 10 },
	{ "v1 tcp4", BYTES("PROXY tcp4 1.2.3.4 1.2.3.5 1 2\r\n"), 7 },
	{ "v1 UNKN", BYTES("PROXY UNKN 1.2.3.4 1.2.3.5 1 2\r\n"), 11 },
	{ "v1 UNKNOWNX", BYTES("PROXY UNKNOWNX\r\n"), 14 },
	{ "v1 two spaces after PROXY",
	    BYTES("PROXY  TCP4 1.2.3.4 1.2.3.5 1 2\r\n"), 7 },
	{ "v1 TCP4 without addresses", BYTES("PROXY TCP4\r\n"), 11 },
	{ "v1 extra space before source",
	    BYTES("PROXY TCP4  1.2.3.4 1.2.3.5 1 2\r\n"), 12 },
	{ "v1 extra space before destination",
	    BYTES("PROXY TCP4 1.2.3.4  1.2.3.5 1 2\r\n"), 20 },
	{ "v1 extra space before port",
	    BYTES("PROXY TCP4 1.2.3.4 1.2.3.5  1 2\r\n"), 28 },
	{ "v1 trailing space", BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 1 2 \r\n"), 31 },
	{ "v1 tab separator", BYTES("PROXY TCP4\t1.2.3.4 1.2.3.5 1 2\r\n"), 11 },
	{ "v1 port 65536", BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n"), 32 },
	{ "v1 port 100000", BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 1 100000\r\n"), 35 },
	{ "v1 port with leading zero",
	    BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 080 2\r\n"), 29 },
	{ "v1 port with sign", BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 +80 2\r\n"), 28 },
	{ "v1 port in hex", BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 0x50 2\r\n"), 29 },
	{ "v1 negative port", BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 -1 2\r\n"), 28 },
	{ "v1 missing destination port",
	    BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 80\r\n"), 30 },
	{ "v1 empty destination port",
	    BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 80 \r\n"), 31 },
	{ "v1 octet 256", BYTES("PROXY TCP4 256.1.1.1 1.2.3.5 1 2\r\n"), 14 },
	{ "v1 octet with leading zero",
	    BYTES("PROXY TCP4 1.2.3.04 1.2.3.5 1 2\r\n"), 19 },
	{ "v1 three octets", BYTES("PROXY TCP4 1.2.3 1.2.3.5 1 2\r\n"), 17 },
	{ "v1 five octets", BYTES("PROXY TCP4 1.2.3.4.5 1.2.3.5 1 2\r\n"), 19 },
	{ "v1 empty octet", BYTES("PROXY TCP4 1..3.4 1.2.3.5 1 2\r\n"), 14 },
	{ "v1 IPv6 in TCP4", BYTES("PROXY TCP4 ::1 ::1 1 2\r\n"), 12 },
	{ "v1 IPv4 in TCP6", BYTES("PROXY TCP6 1.2.3.4 1.2.3.5 1 2\r\n"), 19 },
	{ "v1 name in TCP4", BYTES("PROXY TCP4 localhost 1.2.3.5 1 2\r\n"), 12 },
	{ "v1 IPv6 ':::'", BYTES("PROXY TCP6 1:::2 ::1 1 2\r\n"), 15 },
	{ "v1 IPv6 two '::'", BYTES("PROXY TCP6 1::2::3 ::1 1 2\r\n"), 17 },
	{ "v1 IPv6 five hex digits", BYTES("PROXY TCP6 12345::1 ::1 1 2\r\n"), 16 },
	{ "v1 IPv6 with a scope", BYTES("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), 19 },
	{ "v1 IPv6 too few groups", BYTES("PROXY TCP6 1:2:3 ::1 1 2\r\n"), 17 },
	/* A NUL ends the string inet_pton sees, not the field. */
	{ "v1 NUL in the source address",
	    BYTES("PROXY TCP4 1.2.3.4\0garbage 5.6.7.8 1 2\r\n"), 19 },
	{ "v1 NUL ending the source address",
	    BYTES("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), 19 },
	{ "v1 NUL in the destination address",
	    BYTES("PROXY TCP4 1.2.3.4 5.6.7.8\0x 1 2\r\n"), 27 },
	{ "v1 NUL in an IPv6 source",
	    BYTES("PROXY TCP6 ::1\0abc ::2 1 2\r\n"), 15 },
	{ "v1 NUL in an IPv6 destination",
	    BYTES("PROXY TCP6 ::1 2001:db8::2\0 1 2\r\n"), 27 },
	{ "v1 NUL in the source port",
	    BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 1\0 2\r\n"), 29 },
	{ "v1 NUL in the destination port",
	    BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n"), 31 },
	{ "v1 NUL after PROXY", BYTES("PROXY\0TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), 6 },
	{ "v1 NUL after the protocol",
	    BYTES("PROXY TCP4\0" "1.2.3.4 5.6.7.8 1 2\r\n"), 11 },
	{ "v1 NUL between CR and LF",
	    BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\0\n"), 32 },
	{ "v1 CR inside the addresses",
	    BYTES("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"), 19 },
	{ "v1 LF inside the addresses",
	    BYTES("PROXY TCP4 1.2.3.4 5.6.7.8\n1 2\r\n"), 27 },
	{ "v1 CRLF between the ports",
	    BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n2\r\n"), 29 },
	{ "v1 bare LF", BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 1 2\n"), 31 },
	{ "v1 CR without LF", BYTES("PROXY TCP4 1.2.3.4 1.2.3.5 1 2\r\r\n"), 32 },
	{ "v1 UNKNOWN with bare LF", BYTES("PROXY UNKNOWN\n"), 14 },
	{ "v1 UNKNOWN junk with bare LF", BYTES("PROXY UNKNOWN ab\ncd\r\n"), 17 },
	{ "v1 no CRLF within 107 bytes",	/* 14 + 93 */
	    BYTES("PROXY UNKNOWN " X50 X10 X10 X10 X10 "xxx"),
	    107 },
	{ "v1 CRLF at bytes 107 and 108",	/* 14 + 92 + 2 */
	    BYTES("PROXY UNKNOWN " X50 X10 X10 X10 X10 "xx\r\n"),
	    107 },
	{ "v1 TCP6 over 107 bytes",
	    BYTES("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n"),
	    107 },

	{ "v2 bad signature", BYTES("\r\n\r\n\0\r\nQUIX\n\x21\x00\x00\x00"), 11 },
	{ "v2 CRLFCRLF then text", BYTES("\r\n\r\nGET / HTTP/1.0\r\n"), 5 },
	{ "v2 version 1", BYTES(SIG "\x11\x11\x00\x0c"), 13 },
	{ "v2 version 3", BYTES(SIG "\x31\x11\x00\x0c"), 13 },
	{ "v2 command 3", BYTES(SIG "\x23\x11\x00\x0c"), 13 },
	{ "v2 command 2", BYTES(SIG "\x22\x11\x00\x0c"), 13 },
	{ "v2 family 4", BYTES(SIG "\x21\x41\x00\x0c"), 14 },
	{ "v2 transport 3", BYTES(SIG "\x21\x13\x00\x0c"), 14 },
	{ "v2 length 521", BYTES(SIG "\x21\x11\x02\x09"), 16 },
	{ "v2 length 65535", BYTES(SIG "\x20\x00\xff\xff"), 16 },
	{ "v2 TCP4 with length 8",
	    BYTES(SIG "\x21\x11\x00\x08" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"),
	    16 },
	{ "v2 TCP6 with length 12",
	    BYTES(SIG "\x21\x21\x00\x0c" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
	    "\x30\x39" "\x00\x50"),
	    16 },
	{ "v2 UNIX with length 12",
	    BYTES(SIG "\x21\x31\x00\x0c" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
	    "\x30\x39" "\x00\x50"),
	    16 },
};

static void
test_malformed(void)
{
	struct proxy_hdr h;
	const char *why;
	size_t i, k;
	int rc;

	for (i = 0; i < NELEM(bad_cases); i++) {
		const char *name = bad_cases[i].name;

		why = NULL;
		rc = parse_exact(bad_cases[i].hdr, bad_cases[i].len, &h, &why);
		is_int(rc, -1, "%s: refused", name);
		ok(why != NULL && why[0] != '\0' && strchr(why, '\n') == NULL,
		    "%s: one-line reason (%s)", name, why != NULL ? why : "NULL");

		/* As soon as the bytes give it away, and no sooner. */
		for (k = 0; k <= bad_cases[i].len; k++)
			if (parse_exact(bad_cases[i].hdr, k, &h, &why) != 0)
				break;
		is_uint(k, bad_cases[i].decide,
		    "%s: refused after %zu bytes", name, bad_cases[i].decide);
	}
}

/* ---- the same verdict however the bytes are split ---------------------- */

/*
 * conn.c calls the parser on what has arrived so far and, while it needs
 * more, again on everything once more has come.  So a header is judged the
 * same however it is split if, for every prefix, the parser either needs
 * more or gives the very verdict it gives on the whole: the same length
 * and the same addresses, or a refusal.  Returns the first prefix length
 * that breaks this, or -1; *whole gets the verdict on the whole.
 */
static long
split_mismatch(const char *buf, size_t len, int *whole)
{
	struct proxy_hdr hw, hk;
	const char *why;
	size_t k;
	int rc;

	memset(&hw, 0x5a, sizeof(hw));
	*whole = parse_exact(buf, len, &hw, &why);
	for (k = 0; k < len; k++) {
		memset(&hk, 0xa5, sizeof(hk));
		if ((rc = parse_exact(buf, k, &hk, &why)) == 0)
			continue;
		if (rc != *whole)
			return (long)k;
		if (rc > 0 && (hk.version != hw.version || hk.local != hw.local ||
		    memcmp(&hk.src, &hw.src, sizeof(hk.src)) != 0 ||
		    memcmp(&hk.dst, &hw.dst, sizeof(hk.dst)) != 0))
			return (long)k;
	}
	return -1;
}

/* Printable form of the first n bytes of buf, for a diagnostic. */
static const char *
show(const char *buf, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
	}
	out[o] = '\0';
	return out;
}

static void
check_split(const char *name, const char *buf, size_t len)
{
	char txt[1024];
	long k;
	int whole;

	k = split_mismatch(buf, len, &whole);
	if (!ok(k == -1, "%s: the same verdict in every split", name))
		diag("  prefix of %ld bytes decides otherwise than the whole "
		    "(%d): %s", k, whole, show(buf, len, txt, sizeof(txt)));
}

/*
 * Every header of the tables, whole; then each with one byte replaced by,
 * or preceded by, each of a few bytes that mean something somewhere in a
 * header, and with each byte left out: all of those, valid or not, in
 * every split.
 */
static void
test_every_split(void)
{
	static const char odd[] = { '\0', '\r', '\n', ' ', '\t', ':', '.', '0',
	    '9', 'f', 'x', 'P', '\x21', '\xff' };
	char buf[PROXY_HDR_MAX + 64], txt[1024];
	const char *hdr;
	size_t i, j, o, len, n = 0, ncases = NELEM(valid_cases) + NELEM(bad_cases);
	long bad;
	int whole = 0, op;

	for (i = 0; i < ncases; i++) {
		const char *name;

		if (i < NELEM(valid_cases)) {
			name = valid_cases[i].name;
			hdr = valid_cases[i].hdr;
			len = valid_cases[i].len;
		} else {
			name = bad_cases[i - NELEM(valid_cases)].name;
			hdr = bad_cases[i - NELEM(valid_cases)].hdr;
			len = bad_cases[i - NELEM(valid_cases)].len;
		}
		if (len + 1 > sizeof(buf))
			bail_out("%s: %zu bytes", name, len);
		check_split(name, hdr, len);

		bad = -1;
		for (j = 0; j <= len && bad == -1; j++) {
			for (o = 0; o < NELEM(odd) && bad == -1; o++) {
				for (op = 0; op < 3 && bad == -1; op++) {
					if (op == 0 && j < len) {	/* replaced */
						memcpy(buf, hdr, len);
						buf[j] = odd[o];
						n = len;
					} else if (op == 1) {		/* inserted */
						memcpy(buf, hdr, j);
						buf[j] = odd[o];
						memcpy(buf + j + 1, hdr + j, len - j);
						n = len + 1;
					} else if (op == 2 && o == 0 && j < len) {
						memcpy(buf, hdr, j);	/* removed */
						memcpy(buf + j, hdr + j + 1, len - j - 1);
						n = len - 1;
					} else
						continue;
					bad = split_mismatch(buf, n, &whole);
				}
			}
		}
		if (!ok(bad == -1, "%s: one byte changed, added or removed "
		    "anywhere: the same verdict in every split", name))
			diag("  prefix of %ld bytes decides otherwise than the "
			    "whole (%d): %s", bad, whole, show(buf, n, txt,
			    sizeof(txt)));
	}
}

/* ---- building ---------------------------------------------------------- */

static const struct {
	const char	*src;
	unsigned	 sport;
	const char	*dst;
	unsigned	 dport;
	const char	*v1;		/* the line expected */
	size_t		 v2len;
} build_cases[] = {
	{ "192.0.2.1", 12345, "198.51.100.2", 80,
	    "PROXY TCP4 192.0.2.1 198.51.100.2 12345 80\r\n", 28 },
	{ "0.0.0.0", 0, "255.255.255.255", 65535,
	    "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", 28 },
	{ "2001:db8::1", 443, "2001:db8::2", 8443,
	    "PROXY TCP6 2001:db8::1 2001:db8::2 443 8443\r\n", 52 },
	{ "::ffff:192.0.2.1", 1, "::1", 2,
	    "PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", 52 },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535,
	    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65535\r\n", 52 },
	/* mixed families: nothing truthful to say */
	{ "192.0.2.1", 1, "::1", 2, "PROXY UNKNOWN\r\n", 16 },
	{ "::1", 1, "192.0.2.1", 2, "PROXY UNKNOWN\r\n", 16 },
};

static void
check_round_trip(const char *name, const struct sockaddr *src,
    const struct sockaddr *dst, const char *want1, size_t want2)
{
	struct proxy_hdr h;
	char out[PROXY_HDR_MAX], a[NET_ADDRSTRLEN], b[NET_ADDRSTRLEN];
	const char *why = NULL;
	size_t n;
	int local = strcmp(want1, "PROXY UNKNOWN\r\n") == 0;

	memset(out, 0, sizeof(out));
	n = proxy_build_v1(src, dst, out, sizeof(out));
	is_uint(n, strlen(want1), "%s: v1 length", name);
	is_mem(out, want1, strlen(want1), "%s: v1 line", name);
	is_int(out[n], '\0', "%s: v1 writes no more than its length", name);
	is_int(parse_exact(out, n, &h, &why), n, "%s: v1 parses back", name);
	is_int(h.version, 1, "%s: v1 version", name);
	is_int(h.local, local, "%s: v1 local", name);
	if (!local) {
		is_str(sa_str(&h.src, a, sizeof(a)),
		    net_addr_str(src, b, sizeof(b)), "%s: v1 source", name);
		is_str(sa_str(&h.dst, a, sizeof(a)),
		    net_addr_str(dst, b, sizeof(b)), "%s: v1 destination", name);
	}

	memset(out, 0, sizeof(out));
	n = proxy_build_v2(src, dst, out, sizeof(out));
	is_uint(n, want2, "%s: v2 length", name);
	is_mem(out, SIG, 12, "%s: v2 signature", name);
	is_int((unsigned char)out[12], local ? 0x20 : 0x21, "%s: v2 command", name);
	is_int(parse_exact(out, n, &h, &why), n, "%s: v2 parses back", name);
	is_int(h.version, 2, "%s: v2 version", name);
	is_int(h.local, local, "%s: v2 local", name);
	if (!local) {
		is_str(sa_str(&h.src, a, sizeof(a)),
		    net_addr_str(src, b, sizeof(b)), "%s: v2 source", name);
		is_str(sa_str(&h.dst, a, sizeof(a)),
		    net_addr_str(dst, b, sizeof(b)), "%s: v2 destination", name);
	}
}

static void
test_build(void)
{
	struct sockaddr_storage s, d;
	char name[128];
	size_t i;

	for (i = 0; i < NELEM(build_cases); i++) {
		sa_make(&s, build_cases[i].src, build_cases[i].sport);
		sa_make(&d, build_cases[i].dst, build_cases[i].dport);
		snprintf(name, sizeof(name), "build %s:%u -> %s:%u",
		    build_cases[i].src, build_cases[i].sport,
		    build_cases[i].dst, build_cases[i].dport);
		check_round_trip(name, (struct sockaddr *)&s,
		    (struct sockaddr *)&d, build_cases[i].v1,
		    build_cases[i].v2len);
	}
}

static void
test_build_v2_bytes(void)
{
	static const char want4[] = SIG "\x21\x11\x00\x0c" "\xc0\x00\x02\x01"
	    "\xc6\x33\x64\x02" "\x30\x39" "\x00\x50";
	static const char want6[] = SIG "\x21\x21\x00\x24"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02" "\x01\xbb" "\x20\xfb";
	static const char wantl[] = SIG "\x20\x00\x00\x00";
	struct sockaddr_storage s, d;
	char out[PROXY_HDR_MAX];

	sa_make(&s, "192.0.2.1", 12345);
	sa_make(&d, "198.51.100.2", 80);
	is_uint(proxy_build_v2((struct sockaddr *)&s, (struct sockaddr *)&d,
	    out, sizeof(out)), sizeof(want4) - 1, "v2 TCP4 bytes: length");
	is_mem(out, want4, sizeof(want4) - 1, "v2 TCP4 bytes");
	sa_make(&s, "2001:db8::1", 443);
	sa_make(&d, "2001:db8::2", 8443);
	is_uint(proxy_build_v2((struct sockaddr *)&s, (struct sockaddr *)&d,
	    out, sizeof(out)), sizeof(want6) - 1, "v2 TCP6 bytes: length");
	is_mem(out, want6, sizeof(want6) - 1, "v2 TCP6 bytes");
	sa_make(&d, "198.51.100.2", 80);
	is_uint(proxy_build_v2((struct sockaddr *)&s, (struct sockaddr *)&d,
	    out, sizeof(out)), sizeof(wantl) - 1, "v2 LOCAL bytes: length");
	is_mem(out, wantl, sizeof(wantl) - 1, "v2 LOCAL bytes");
}

/* Other families and missing addresses give the "no addresses" forms. */
static void
test_build_other(void)
{
	struct sockaddr_un un;
	struct sockaddr_storage s;
	char out[PROXY_HDR_MAX];
	struct proxy_hdr h;
	const char *why;
	size_t n;

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	strcpy(un.sun_path, "/run/x.sock");
	n = proxy_build_v1((struct sockaddr *)&un, (struct sockaddr *)&un, out,
	    sizeof(out));
	is_mem(out, "PROXY UNKNOWN\r\n", n, "AF_UNIX pair: v1 UNKNOWN");
	is_uint(n, 15, "AF_UNIX pair: v1 length");
	n = proxy_build_v2((struct sockaddr *)&un, (struct sockaddr *)&un, out,
	    sizeof(out));
	is_uint(n, 16, "AF_UNIX pair: v2 LOCAL");
	is_int(parse_exact(out, n, &h, &why), 16, "AF_UNIX pair: v2 parses");
	ok(h.local, "AF_UNIX pair: v2 is local");

	sa_make(&s, "192.0.2.1", 1);
	n = proxy_build_v1(NULL, (struct sockaddr *)&s, out, sizeof(out));
	is_uint(n, 15, "no source: v1 UNKNOWN");
	n = proxy_build_v2((struct sockaddr *)&s, NULL, out, sizeof(out));
	is_uint(n, 16, "no destination: v2 LOCAL");
}

/* out too small: 0 and nothing written; exactly big enough: fine. */
static void
test_build_small(void)
{
	static const char line[] = "PROXY TCP4 192.0.2.1 198.51.100.2 12345 80\r\n";
	struct sockaddr_storage s, d;
	char out[PROXY_HDR_MAX];
	size_t n1 = sizeof(line) - 1;

	sa_make(&s, "192.0.2.1", 12345);
	sa_make(&d, "198.51.100.2", 80);
	memset(out, 'Z', sizeof(out));
	is_uint(proxy_build_v1((struct sockaddr *)&s, (struct sockaddr *)&d,
	    out, n1 - 1), 0, "v1 one byte short: 0");
	is_uint(proxy_build_v2((struct sockaddr *)&s, (struct sockaddr *)&d,
	    out, 27), 0, "v2 one byte short: 0");
	is_uint(proxy_build_v2((struct sockaddr *)&s, (struct sockaddr *)&d,
	    out, 0), 0, "v2 into nothing: 0");
	is_int(out[0], 'Z', "too small: nothing written");
	is_uint(proxy_build_v1((struct sockaddr *)&s, (struct sockaddr *)&d,
	    out, n1), n1, "v1 exact size");
	is_mem(out, line, n1, "v1 exact size: the line");
	is_int(out[n1], 'Z', "v1 exact size: no NUL past it");
	is_uint(proxy_build_v2((struct sockaddr *)&s, (struct sockaddr *)&d,
	    out, 28), 28, "v2 exact size");
}

int
main(void)
{
	test_valid();
	test_valid_longest();
	test_malformed();
	test_every_split();
	test_build();
	test_build_v2_bytes();
	test_build_other();
	test_build_small();
	return done_testing();
}
