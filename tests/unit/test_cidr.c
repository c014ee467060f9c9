/*
 * test_cidr.c: unit tests for src/cidr.c: parsing a block (good words and
 * bad ones, each with its reason), the merge of cidr_set_build(),
 * membership at the edges of each range, IPv4 against mapped IPv6
 * sockaddrs, and a set of 10,000 random blocks checked against a linear
 * scan of the blocks as added (seeded: every run draws the same).
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define AMAX		(~(cidr_addr)0)

/* The address in text form, or bail out: the tests' own input. */
static cidr_addr
A(const char *s)
{
	struct cidr_range r;
	const char *why;

	if (cidr_parse(s, &r, &why) == -1)
		bail_out("test address %s: %s", s, why);
	if (r.lo != r.hi)
		bail_out("test address %s: a block", s);
	return r.lo;
}

/* "hi:lo" in hex, for a diagnostic. */
static const char *
hex(cidr_addr a)
{
	static char buf[4][40];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%016llx%016llx",
	    (unsigned long long)(a >> 64), (unsigned long long)a);
	return buf[i];
}

/* ---- cidr_parse -------------------------------------------------------- */

static const struct {
	const char	*word;
	const char	*lo, *hi;	/* as addresses; NULL: an error */
	const char	*why;		/* the error's reason */
} parse_cases[] = {
	{ "10.0.0.0/8",		"10.0.0.0",	"10.255.255.255", NULL },
	{ "10.1.2.3",		"10.1.2.3",	"10.1.2.3",	NULL },
	{ "10.1.2.3/32",	"10.1.2.3",	"10.1.2.3",	NULL },
	{ "192.168.4.0/22",	"192.168.4.0",	"192.168.7.255", NULL },
	{ "0.0.0.0/0",		"0.0.0.0",	"255.255.255.255", NULL },
	{ "255.255.255.255",	"255.255.255.255", "255.255.255.255", NULL },
	{ "128.0.0.0/1",	"128.0.0.0",	"255.255.255.255", NULL },
	{ "2001:db8::/32",	"2001:db8::",	"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", NULL },
	{ "2001:DB8::/32",	"2001:db8::",	"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", NULL },
	{ "::1",		"::1",		"::1",		NULL },
	{ "::1/128",		"::1",		"::1",		NULL },
	{ "::/0",		"::",		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL },
	{ "fe80::/10",		"fe80::",	"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL },
	{ "ff00::/8",		"ff00::",	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL },
	{ "2001:db8:0:1::/64",	"2001:db8:0:1::", "2001:db8:0:1:ffff:ffff:ffff:ffff", NULL },
	{ "::ffff:10.0.0.0/104", "10.0.0.0",	"10.255.255.255", NULL },	/* mapped = IPv4 */
	{ "::ffff:0:0/96",	"0.0.0.0",	"255.255.255.255", NULL },
	{ "::ffff:1.2.3.4",	"1.2.3.4",	"1.2.3.4",	NULL },
	{ "10.0.0.0/08",	NULL, NULL,	"bad prefix length" },
	{ "",			NULL, NULL,	"empty address" },
	{ "/8",			NULL, NULL,	"bad address" },
	{ "/",			NULL, NULL,	"bad address" },
	{ "10.0.0.0/",		NULL, NULL,	"missing prefix length" },
	{ "2001:db8::/",	NULL, NULL,	"missing prefix length" },
	{ "10.0.0.0/33",	NULL, NULL,	"prefix out of range" },
	{ "10.0.0.0/999999999999999999999", NULL, NULL, "prefix out of range" },
	{ "::/129",		NULL, NULL,	"prefix out of range" },
	{ "10.0.0.0/+8",	NULL, NULL,	"bad prefix length" },
	{ "10.0.0.0/-8",	NULL, NULL,	"bad prefix length" },
	{ "10.0.0.0/8x",	NULL, NULL,	"bad prefix length" },
	{ "10.0.0.0/8/8",	NULL, NULL,	"bad prefix length" },
	{ "10.0.0.0/ 8",	NULL, NULL,	"bad prefix length" },
	{ "10.0.0.0/0x8",	NULL, NULL,	"bad prefix length" },
	{ "+10.0.0.0/8",	NULL, NULL,	"bad address" },
	{ "-10.0.0.0/8",	NULL, NULL,	"bad address" },
	{ " 10.0.0.0/8",	NULL, NULL,	"bad address" },
	{ "10.0.0.0 /8",	NULL, NULL,	"bad address" },
	{ "10.0.0.0x",		NULL, NULL,	"bad address" },
	{ "10.0.0",		NULL, NULL,	"bad address" },
	{ "10.1",		NULL, NULL,	"bad address" },
	{ "010.0.0.1",		NULL, NULL,	"bad address" },	/* octal? */
	{ "0x0a.0.0.1",		NULL, NULL,	"bad address" },
	{ "256.0.0.0",		NULL, NULL,	"bad address" },
	{ "10.0.0.0.0",		NULL, NULL,	"bad address" },
	{ "foo",		NULL, NULL,	"bad address" },
	{ "localhost",		NULL, NULL,	"bad address" },
	{ "fe80::1%lo",		NULL, NULL,	"bad address" },
	{ "2001:db8:::/32",	NULL, NULL,	"bad address" },
	{ "2001:db8::g/32",	NULL, NULL,	"bad address" },
	{ "[::1]",		NULL, NULL,	"bad address" },
	{ "::1:",		NULL, NULL,	"bad address" },
	{ "1:2:3:4:5:6:7:8:9",	NULL, NULL,	"bad address" },
	{ "0000:0000:0000:0000:0000:ffff:255.255.255.255:1", NULL, NULL, "bad address" },
	{ "10.0.0.1/8",		NULL, NULL,	"host bits set past the prefix" },
	{ "10.0.0.128/24",	NULL, NULL,	"host bits set past the prefix" },
	{ "1.0.0.0/0",		NULL, NULL,	"host bits set past the prefix" },
	{ "10.0.0.1/31",	NULL, NULL,	"host bits set past the prefix" },
	{ "2001:db8::1/64",	NULL, NULL,	"host bits set past the prefix" },
	{ "::1/127",		NULL, NULL,	"host bits set past the prefix" },
	{ "8000::/0",		NULL, NULL,	"host bits set past the prefix" },
	{ "::ffff:10.0.0.1/104", NULL, NULL,	"host bits set past the prefix" },
};

static void
test_parse(void)
{
	struct cidr_range r;
	const char *why;
	size_t i;

	for (i = 0; i < NELEM(parse_cases); i++) {
		const char *w = parse_cases[i].word;

		why = NULL;
		memset(&r, 0x5a, sizeof(r));
		if (parse_cases[i].lo != NULL) {
			if (!is_int(cidr_parse(w, &r, &why), 0, "\"%s\" parses", w)) {
				diag("  why: %s", why ? why : "(NULL)");
				continue;
			}
			if (!ok(r.lo == A(parse_cases[i].lo) && r.hi == A(parse_cases[i].hi),
			    "\"%s\" is %s to %s", w, parse_cases[i].lo, parse_cases[i].hi))
				diag("  got %s to %s", hex(r.lo), hex(r.hi));
		} else {
			is_int(cidr_parse(w, &r, &why), -1, "\"%s\" is an error", w);
			is_str(why, parse_cases[i].why, "\"%s\": %s", w, parse_cases[i].why);
		}
	}

	/* IPv4 lives at ::ffff:0:0/96: a /N IPv4 block is a /(96+N) range. */
	cidr_parse("10.0.0.0/8", &r, &why);
	ok(r.lo == (((cidr_addr)0xffff << 32) | 0x0a000000) &&
	    r.hi == (((cidr_addr)0xffff << 32) | 0x0affffff), "10.0.0.0/8 is ::ffff:10.0.0.0/104");
	cidr_parse("::/0", &r, &why);
	ok(r.lo == 0 && r.hi == AMAX, "::/0 is the whole space");
	cidr_parse("0.0.0.0/0", &r, &why);
	ok(r.lo == (cidr_addr)0xffff << 32 && r.hi == ((cidr_addr)0xffff << 32 | 0xffffffff),
	    "0.0.0.0/0 is ::ffff:0:0/96 only");
}

/* ---- cidr_set_build: sort and merge ------------------------------------ */

#define MAXW	6

static const struct {
	const char	*name;
	const char	*add[MAXW];	/* blocks added, in this order */
	const char	*want[MAXW * 2]; /* lo, hi of each range built */
} merge_cases[] = {
	{ "empty", { NULL }, { NULL } },
	{ "one", { "10.0.0.0/8" }, { "10.0.0.0", "10.255.255.255" } },
	{ "unsorted, apart", { "10.0.2.0/24", "10.0.0.0/24" },
	    { "10.0.0.0", "10.0.0.255", "10.0.2.0", "10.0.2.255" } },
	{ "adjacent halves", { "10.0.0.128/25", "10.0.0.0/25" },
	    { "10.0.0.0", "10.0.0.255" } },
	{ "adjacent hosts", { "10.0.0.2", "10.0.0.1", "10.0.0.3" },
	    { "10.0.0.1", "10.0.0.3" } },
	{ "one host apart", { "10.0.0.1", "10.0.0.3" },
	    { "10.0.0.1", "10.0.0.1", "10.0.0.3", "10.0.0.3" } },
	{ "contained", { "10.1.2.0/24", "10.0.0.0/8", "10.200.0.0/16" },
	    { "10.0.0.0", "10.255.255.255" } },
	{ "twice the same", { "192.168.0.0/16", "192.168.0.0/16" },
	    { "192.168.0.0", "192.168.255.255" } },
	{ "same start, the longer wins", { "10.0.0.0/24", "10.0.0.0/16", "10.0.0.0/30" },
	    { "10.0.0.0", "10.0.255.255" } },
	{ "chain of neighbours", { "10.0.3.0/24", "10.0.1.0/24", "10.0.0.0/24", "10.0.2.0/24" },
	    { "10.0.0.0", "10.0.3.255" } },
	{ "IPv4 and IPv6 apart", { "2001:db8::/32", "10.0.0.0/8", "::1" },
	    { "::1", "::1", "10.0.0.0", "10.255.255.255",
	      "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff" } },
	{ "IPv4 and its mapped form", { "::ffff:10.0.0.0/104", "10.0.0.0/9", "10.128.0.0/9" },
	    { "10.0.0.0", "10.255.255.255" } },
	{ "the last IPv4 address meets ::1:0:0:0",
	    { "255.255.255.255", "::1:0:0:0/112" },
	    { "255.255.255.255", "::1:0:0:ffff" } },
	/* the top of the space: cur->hi + 1 wraps to 0 */
	{ "the top: contained", { "ff00::/8", "ffff::/16", "ffff:ffff::/32" },
	    { "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" } },
	{ "the top: the last address alone and after",
	    { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::/8" },
	    { "fe00::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" } },
	{ "the top: adjacent below it",
	    { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe" },
	    { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" } },
	{ "the top and the bottom", { "::/128", "8000::/1", "::1" },
	    { "::", "::1", "8000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" } },
	{ "everything", { "10.0.0.0/8", "::/0", "ffff::/16", "::" },
	    { "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" } },
};

static void
test_merge(void)
{
	struct cidr_set s;
	struct cidr_range r;
	const char *why;
	size_t i, j, nwant;

	for (i = 0; i < NELEM(merge_cases); i++) {
		const char *n = merge_cases[i].name;

		cidr_set_init(&s);
		for (j = 0; j < MAXW && merge_cases[i].add[j] != NULL; j++) {
			if (cidr_parse(merge_cases[i].add[j], &r, &why) == -1)
				bail_out("merge case %s: %s: %s", n, merge_cases[i].add[j], why);
			if (cidr_set_add(&s, &r) == -1)
				bail_out("cidr_set_add: out of memory");
		}
		cidr_set_build(&s);
		ok(s.built, "merge (%s): built", n);
		for (nwant = 0; nwant < NELEM(merge_cases[i].want) &&
		    merge_cases[i].want[nwant] != NULL; nwant++)
			;
		if (!is_uint(s.n, nwant / 2, "merge (%s): %zu ranges", n, nwant / 2)) {
			for (j = 0; j < s.n; j++)
				diag("  range %zu: %s to %s", j, hex(s.r[j].lo), hex(s.r[j].hi));
			cidr_set_fini(&s);
			continue;
		}
		for (j = 0; j < s.n; j++)
			if (!ok(s.r[j].lo == A(merge_cases[i].want[2 * j]) &&
			    s.r[j].hi == A(merge_cases[i].want[2 * j + 1]),
			    "merge (%s): range %zu is %s to %s", n, j,
			    merge_cases[i].want[2 * j], merge_cases[i].want[2 * j + 1]))
				diag("  got %s to %s", hex(s.r[j].lo), hex(s.r[j].hi));
		cidr_set_fini(&s);
		ok(s.r == NULL && s.n == 0, "merge (%s): fini empties the set", n);
	}
}

/* ---- membership at the edges ------------------------------------------- */

static void
test_edges(void)
{
	static const char *const blocks[] = {
		"10.0.0.0/8", "192.168.1.0/24", "192.168.3.7", "2001:db8::/32",
		"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", "::ffff:0.0.0.0/128",
	};
	struct cidr_set s;
	struct cidr_range r[NELEM(blocks)];
	const char *why;
	size_t i;

	cidr_set_init(&s);
	ok(!cidr_set_has(&s, 0) && !cidr_set_has(&s, AMAX), "an empty set holds nothing");
	for (i = 0; i < NELEM(blocks); i++) {
		if (cidr_parse(blocks[i], &r[i], &why) == -1 || cidr_set_add(&s, &r[i]) == -1)
			bail_out("%s: %s", blocks[i], why);
	}
	cidr_set_build(&s);
	for (i = 0; i < NELEM(blocks); i++) {
		const char *b = blocks[i];

		ok(cidr_set_has(&s, r[i].lo), "%s: its first address", b);
		ok(cidr_set_has(&s, r[i].hi), "%s: its last address", b);
		ok(cidr_set_has(&s, r[i].lo + (r[i].hi - r[i].lo) / 2), "%s: its middle", b);
		if (r[i].lo > 0)
			ok(!cidr_set_has(&s, r[i].lo - 1), "%s: not the one before", b);
		else
			ok(cidr_set_has(&s, 0), "%s: address 0 is in", b);
		if (r[i].hi < AMAX)
			ok(!cidr_set_has(&s, r[i].hi + 1), "%s: not the one after", b);
		else
			ok(cidr_set_has(&s, AMAX), "%s: the last address of the space is in", b);
	}
	ok(!cidr_set_has(&s, A("11.0.0.0")) && !cidr_set_has(&s, A("9.255.255.255")),
	    "10.0.0.0/8: 9.255.255.255 and 11.0.0.0 are out");
	ok(!cidr_set_has(&s, A("::10.0.0.1")), "10.0.0.0/8: ::10.0.0.1 (IPv4-compatible) is out");
	ok(!cidr_set_has(&s, A("::2")), "::2 is out");

	/* an unbuilt set still answers right */
	cidr_set_add(&s, &r[0]);
	ok(!s.built && cidr_set_has(&s, A("10.1.2.3")) && !cidr_set_has(&s, A("11.1.2.3")),
	    "a set added to since its build answers by a scan");
	cidr_set_fini(&s);
}

/* ---- sockaddrs: IPv4, IPv6, mapped IPv4 -------------------------------- */

static void
sin4(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(4321);
	if (inet_pton(AF_INET, ip, &s->sin_addr) != 1)
		bail_out("inet_pton %s", ip);
}

static void
sin6(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(4321);
	s->sin6_scope_id = 3;
	if (inet_pton(AF_INET6, ip, &s->sin6_addr) != 1)
		bail_out("inet_pton %s", ip);
}

static void
test_sockaddr(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	struct cidr_set s;
	struct cidr_range r;
	const char *why;
	cidr_addr a;

	cidr_set_init(&s);
	cidr_parse("10.0.0.0/8", &r, &why);
	cidr_set_add(&s, &r);
	cidr_parse("2001:db8::/32", &r, &why);
	cidr_set_add(&s, &r);
	cidr_set_build(&s);

	sin4(&ss, "10.1.2.3");
	ok(cidr_from_sockaddr((struct sockaddr *)&ss, &a) == 0 && a == A("10.1.2.3"),
	    "AF_INET 10.1.2.3");
	ok(cidr_set_match(&s, (struct sockaddr *)&ss), "AF_INET 10.1.2.3 matches 10.0.0.0/8");
	sin4(&ss, "11.1.2.3");
	ok(!cidr_set_match(&s, (struct sockaddr *)&ss), "AF_INET 11.1.2.3 does not");

	sin6(&ss, "::ffff:10.1.2.3");
	ok(cidr_from_sockaddr((struct sockaddr *)&ss, &a) == 0 && a == A("10.1.2.3"),
	    "AF_INET6 ::ffff:10.1.2.3 is the IPv4 address 10.1.2.3");
	ok(cidr_set_match(&s, (struct sockaddr *)&ss),
	    "AF_INET6 ::ffff:10.1.2.3 matches the IPv4 rule 10.0.0.0/8");
	sin6(&ss, "::ffff:11.1.2.3");
	ok(!cidr_set_match(&s, (struct sockaddr *)&ss), "AF_INET6 ::ffff:11.1.2.3 does not");
	sin6(&ss, "::10.1.2.3");
	ok(!cidr_set_match(&s, (struct sockaddr *)&ss),
	    "AF_INET6 ::10.1.2.3 (IPv4-compatible, not mapped) does not");
	sin6(&ss, "2001:db8:1::5");
	ok(cidr_from_sockaddr((struct sockaddr *)&ss, &a) == 0 && a == A("2001:db8:1::5"),
	    "AF_INET6 2001:db8:1::5");
	ok(cidr_set_match(&s, (struct sockaddr *)&ss), "AF_INET6 2001:db8:1::5 matches 2001:db8::/32");
	sin6(&ss, "2001:db9::");
	ok(!cidr_set_match(&s, (struct sockaddr *)&ss), "AF_INET6 2001:db9:: does not");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	a = 7;
	is_int(cidr_from_sockaddr((struct sockaddr *)&sun, &a), -1, "AF_UNIX: -1");
	ok(a == 7, "AF_UNIX: the address is left alone");
	ok(!cidr_set_match(&s, (struct sockaddr *)&sun), "AF_UNIX matches nothing");
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	is_int(cidr_from_sockaddr((struct sockaddr *)&ss, &a), -1, "AF_UNSPEC: -1");
	cidr_set_fini(&s);
}

/* ---- 10,000 random blocks against a linear scan ------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: the same numbers on every run and every host. */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static cidr_addr
rng128(void)
{
	cidr_addr hi = rng();

	return hi << 64 | rng();
}

/*
 * A random block that often meets others: IPv4 in 10.0.0.0/16, IPv6 in
 * 2001:db8::/112, near the top of the space, or anywhere.
 */
static void
random_block(struct cidr_range *r)
{
	cidr_addr base, mask;
	unsigned kind = rng() % 8, plen;

	switch (kind) {
	case 0: case 1: case 2:		/* IPv4, /20 to /32 */
		base = ((cidr_addr)0xffff << 32) | 0x0a000000 | (rng() & 0xffff);
		plen = 96 + 20 + rng() % 13;
		break;
	case 3: case 4: case 5:		/* IPv6 in 2001:db8::/112 */
		base = ((cidr_addr)0x20010db8 << 96) | (rng() & 0xffff);
		plen = 112 + rng() % 17;
		break;
	case 6:				/* the top of the space */
		base = AMAX - (rng() & 0xffff);
		plen = 112 + rng() % 17;
		break;
	default:			/* anywhere, /48 or longer */
		base = rng128();
		plen = 48 + rng() % 81;
		break;
	}
	mask = plen == 0 ? AMAX : ((cidr_addr)1 << (128 - plen)) - 1;
	r->lo = base & ~mask;
	r->hi = r->lo | mask;
}

#define NRANDOM		10000
#define NPROBES		20000

static void
test_random(void)
{
	struct cidr_range *rs;
	struct cidr_set s;
	size_t i, j, bad = 0, in = 0, order = 0;

	if ((rs = calloc(NRANDOM, sizeof(*rs))) == NULL)
		bail_out("calloc");
	cidr_set_init(&s);
	for (i = 0; i < NRANDOM; i++) {
		random_block(&rs[i]);
		if (cidr_set_add(&s, &rs[i]) == -1)
			bail_out("cidr_set_add: out of memory");
	}
	cidr_set_build(&s);
	note("%d random blocks merged into %zu ranges", NRANDOM, s.n);
	ok(s.n > 100 && s.n < NRANDOM, "random: the blocks overlap and merge (%zu ranges)", s.n);
	for (j = 0; j < s.n; j++) {
		if (s.r[j].lo > s.r[j].hi)
			order++;
		if (j > 0 && (s.r[j - 1].hi == AMAX || s.r[j - 1].hi + 1 >= s.r[j].lo))
			order++;
	}
	is_uint(order, 0, "random: ranges sorted, disjoint and not adjacent");

	for (i = 0; i < NPROBES; i++) {
		const struct cidr_range *b = &rs[rng() % NRANDOM];
		cidr_addr a;
		int want = 0;

		switch (i % 6) {	/* the edges of a block, or anywhere */
		case 0: a = b->lo; break;
		case 1: a = b->hi; break;
		case 2: a = b->lo - 1; break;
		case 3: a = b->hi + 1; break;
		case 4: a = b->lo + rng128() % (b->hi - b->lo + (b->hi - b->lo < AMAX)); break;
		default: a = rng128(); break;
		}
		for (j = 0; j < NRANDOM && !want; j++)
			want = rs[j].lo <= a && a <= rs[j].hi;
		in += want;
		if (cidr_set_has(&s, a) != want && bad++ < 5)
			diag("  %s: has says %d, the scan %d", hex(a), !want, want);
	}
	note("%d probes, %zu of them in", NPROBES, in);
	ok(in > NPROBES / 4 && in < NPROBES, "random: probes both in and out (%zu in)", in);
	is_uint(bad, 0, "random: %d probes answer as the linear scan", NPROBES);
	cidr_set_fini(&s);
	free(rs);
}

int
main(void)
{
	test_parse();
	test_merge();
	test_edges();
	test_sockaddr();
	test_random();
	return done_testing();
}
