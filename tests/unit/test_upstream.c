/*
 * test_upstream.c: unit tests for src/upstream.c: the four balancing
 * methods, backups, the tried set, passive failure marking, the health
 * state and the operator's state and weight, all with time and randomness
 * supplied by the test.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "net.h"
#include "upstream.h"
#include "tap.h"
#include "sockaddr_make.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define NB		UPSTREAM_MAX

/* A listener's backends, built in place: 10.0.0.1:80, 10.0.0.2:80, ... */
struct fixture {
	struct backend_conf	 bc[NB + 1];
	char			 spec[NB + 1][32];
	struct listener_conf	 lc;
	struct upstream_set	 s;
};

/*
 * weights[i] = 0 ends the list; a negative weight makes a backup.  Returns
 * the result of upstream_init().
 */
static int
fixture_init(struct fixture *f, int balance, const int *weights, size_t n,
    unsigned max_fails, unsigned fail_ms)
{
	char err[256];
	size_t i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < n; i++) {
		snprintf(f->spec[i], sizeof(f->spec[i]), "10.0.%zu.%zu:80",
		    i / 250, i % 250 + 1);
		f->bc[i].spec = f->spec[i];
		if (net_parse_addr(f->spec[i], 0, &f->bc[i].addr, err,
		    sizeof(err)) == -1)
			bail_out("fixture: %s", err);
		f->bc[i].weight = (unsigned)(weights[i] < 0 ? -weights[i] :
		    weights[i]);
		f->bc[i].backup = weights[i] < 0;
	}
	f->lc.name = "test";
	f->lc.mode = MODE_PROXY;
	f->lc.backends = f->bc;
	f->lc.nbackends = n;
	f->lc.balance = balance;
	f->lc.max_fails = max_fails;
	f->lc.fail_ms = fail_ms;
	return upstream_init(&f->s, &f->lc);
}

static void
fixture_fini(struct fixture *f)
{
	upstream_fini(&f->s);
}

static int
pick(struct fixture *f, uint64_t tried, double now)
{
	return upstream_pick(&f->s, NULL, tried, now, NULL, NULL);
}

/* ---- init ------------------------------------------------------------- */

static void
test_init(void)
{
	static const int w3[] = { 1, 2, -3 };
	static int w65[NB + 1];
	struct fixture f;
	size_t i;

	is_int(fixture_init(&f, BAL_LEASTCONN, w3, 3, 3, 10000), 0, "init: 0");
	is_uint(f.s.n, 3, "init: n");
	is_int(f.s.balance, BAL_LEASTCONN, "init: balance");
	is_uint(f.s.max_fails, 3, "init: max_fails");
	ok(f.s.fail_timeout == 10.0, "init: fail_timeout 10000 ms is 10 s");
	ok(f.s.u[0].conf == &f.bc[0] && f.s.u[2].conf == &f.bc[2],
	    "init: each upstream borrows its backend_conf");
	ok(f.s.u[2].conf->backup && f.s.u[2].conf->weight == 3,
	    "init: backup and weight visible through conf");
	for (i = 0; i < 3; i++)
		if (f.s.u[i].conns != 0 || f.s.u[i].fails != 0 ||
		    f.s.u[i].checked_down || f.s.u[i].cw != 0)
			break;
	is_uint(i, 3, "init: runtime state starts clear");
	ok(upstream_usable(&f.s.u[0], 0.0) && upstream_usable(&f.s.u[0], -1e9) &&
	    upstream_usable(&f.s.u[0], 1e9), "init: usable at any now");
	fixture_fini(&f);
	ok(f.s.u == NULL && f.s.n == 0, "fini: empties the set");

	for (i = 0; i < NB + 1; i++)
		w65[i] = 1;
	errno = 0;
	is_int(fixture_init(&f, BAL_ROUNDROBIN, w65, NB + 1, 0, 0), -1,
	    "init: %d backends refused", NB + 1);
	is_int(errno, EINVAL, "init: ... with EINVAL");

	is_int(fixture_init(&f, BAL_ROUNDROBIN, w65, NB, 0, 0), 0,
	    "init: %d backends", NB);
	/* bit 63 of the tried set */
	is_int(pick(&f, ~(uint64_t)0 >> 1, 0), NB - 1,
	    "tried: all but the last: the last");
	is_int(pick(&f, ~(uint64_t)0, 0), -1, "tried: all: -1");
	fixture_fini(&f);

	is_int(fixture_init(&f, BAL_ROUNDROBIN, w65, 0, 0, 0), 0,
	    "init: no backends");
	is_int(pick(&f, 0, 0), -1, "no backends: pick -1");
	fixture_fini(&f);
}

/* ---- roundrobin -------------------------------------------------------- */

static void
test_roundrobin(void)
{
	static const int w511[] = { 5, 1, 1 }, w111[] = { 1, 1, 1 };
	static const int nginx[] = { 0, 0, 1, 0, 2, 0, 0 };
	struct fixture f;
	unsigned count[3] = { 0, 0, 0 };
	int i, r, prev, seq_ok, burst, run, twice;

	fixture_init(&f, BAL_ROUNDROBIN, w511, 3, 0, 0);
	for (seq_ok = 1, i = 0; i < 7; i++)
		if (pick(&f, 0, 0) != nginx[i])
			seq_ok = 0;
	ok(seq_ok, "roundrobin 5:1:1: a a b a c a a, as nginx does");
	for (i = 0; i < 7; i++)
		count[pick(&f, 0, 0)]++;
	ok(count[0] == 5 && count[1] == 1 && count[2] == 1,
	    "roundrobin 5:1:1: the next 7 picks give 5:1:1 again");
	count[0] = count[1] = count[2] = 0;
	for (burst = 0, run = 0, prev = -1, i = 0; i < 700; i++) {
		r = pick(&f, 0, 0);
		if (r < 0 || r > 2)
			break;
		count[r]++;
		run = r == prev ? run + 1 : 1;
		if (run > burst)
			burst = run;
		prev = r;
	}
	is_uint(count[0], 500, "roundrobin 5:1:1 over 700: 500");
	is_uint(count[1], 100, "roundrobin 5:1:1 over 700: 100");
	is_uint(count[2], 100, "roundrobin 5:1:1 over 700: 100");
	/* a a b a c a a | a a b ...: four in a row at most, never all five */
	ok(burst <= 4, "roundrobin 5:1:1: interleaved (longest run %d)", burst);
	fixture_fini(&f);

	fixture_init(&f, BAL_ROUNDROBIN, w111, 3, 0, 0);
	count[0] = count[1] = count[2] = 0;
	for (twice = 0, prev = -1, i = 0; i < 300; i++) {
		r = pick(&f, 0, 0);
		if (r < 0 || r > 2)
			break;
		count[r]++;
		if (r == prev)
			twice++;
		prev = r;
	}
	ok(count[0] == 100 && count[1] == 100 && count[2] == 100,
	    "roundrobin 1:1:1 over 300: 100 each");
	is_int(twice, 0, "roundrobin 1:1:1: never the same one twice in a row");

	/* A down backend drops out; the others keep alternating. */
	f.s.u[1].checked_down = 1;
	for (twice = 0, prev = -1, i = 0; i < 10; i++) {
		r = pick(&f, 0, 0);
		if (r == 1 || r == prev)
			twice++;
		prev = r;
	}
	is_int(twice, 0, "roundrobin: without u[1], u[0] and u[2] alternate");
	fixture_fini(&f);
}

/* ---- backups and the tried set ----------------------------------------- */

static void
test_backup(void)
{
	static const int w[] = { 1, 1, -1 };
	struct fixture f;
	int i, r, seen_backup;

	fixture_init(&f, BAL_ROUNDROBIN, w, 3, 0, 0);
	for (seen_backup = 0, i = 0; i < 100; i++)
		if (pick(&f, 0, 0) == 2)
			seen_backup++;
	is_int(seen_backup, 0, "backup: unused while primaries are up");
	f.s.u[0].checked_down = 1;
	for (seen_backup = 0, i = 0; i < 10; i++)
		if ((r = pick(&f, 0, 0)) != 1)
			seen_backup++;
	is_int(seen_backup, 0, "backup: one primary down: the other one");
	f.s.u[1].down_until = 50;
	is_int(pick(&f, 0, 10), 2, "backup: all primaries down: the backup");
	is_int(pick(&f, 0, 50), 1, "backup: a primary back: the primary");
	f.s.u[0].checked_down = 0;
	is_int(pick(&f, 0x3, 50), 2,
	    "backup: every primary tried: the backup (retry path)");
	is_int(pick(&f, 0x4, 50) != 2, 1, "backup: tried backup, primaries up");
	f.s.u[2].checked_down = 1;
	is_int(pick(&f, 0x3, 50), -1, "backup: down as well: -1");
	fixture_fini(&f);
}

static void
test_tried(void)
{
	static const int w[] = { 1, 1, 1 };
	static const int methods[] = {
		BAL_ROUNDROBIN, BAL_LEASTCONN, BAL_SOURCE, BAL_RANDOM
	};
	struct sockaddr_storage cl;
	struct fixture f;
	size_t m;
	int i, r, bad;

	sa_make(&cl, "192.0.2.7", 5555);
	for (m = 0; m < NELEM(methods); m++) {
		fixture_init(&f, methods[m], w, 3, 0, 0);
		for (bad = 0, i = 0; i < 30; i++) {
			r = upstream_pick(&f.s, (struct sockaddr *)&cl, 0x1, 0,
			    NULL, NULL);
			if (r != 1 && r != 2)
				bad++;
		}
		is_int(bad, 0, "tried (method %d): u[0] skipped", methods[m]);
		is_int(upstream_pick(&f.s, (struct sockaddr *)&cl, 0x3, 0,
		    NULL, NULL), 2, "tried (method %d): u[0], u[1]: u[2]",
		    methods[m]);
		is_int(upstream_pick(&f.s, (struct sockaddr *)&cl, 0x7, 0,
		    NULL, NULL), -1, "tried (method %d): all: -1", methods[m]);
		fixture_fini(&f);
	}
}

/* ---- leastconn --------------------------------------------------------- */

static const struct {
	const char	*name;
	int		 w[4];
	unsigned	 conns[4];
	int		 want;
} lc_cases[] = {
	{ "fewest conns",		{ 1, 1, 1, 1 }, { 3, 1, 2, 4 }, 1 },
	{ "weight counts",		{ 1, 1, 4, 1 }, { 2, 1, 3, 2 }, 2 },
	{ "weight counts (2)",		{ 1, 2, 1, 1 }, { 1, 1, 1, 1 }, 1 },
	{ "idle heavy one",		{ 1, 1, 1, 256 }, { 1, 1, 1, 0 }, 3 },
	/* products past 32 bits: 4e9 * 256 */
	{ "a lot of conns",		{ 256, 256, 1, 1 }, { 4000000000u,
					    3999999999u, 15625000, 15625000 }, 1 },
};

static void
test_leastconn(void)
{
	static const int w111[] = { 1, 1, 1 }, w21[] = { 2, 1, 1 };
	struct fixture f;
	size_t i, j;
	int seq[6], r;

	for (i = 0; i < NELEM(lc_cases); i++) {
		fixture_init(&f, BAL_LEASTCONN, lc_cases[i].w, 4, 0, 0);
		for (j = 0; j < 4; j++)
			f.s.u[j].conns = lc_cases[i].conns[j];
		is_int(pick(&f, 0, 0), lc_cases[i].want, "leastconn: %s",
		    lc_cases[i].name);
		fixture_fini(&f);
	}

	/* Ties rotate, starting after the last pick. */
	fixture_init(&f, BAL_LEASTCONN, w111, 3, 0, 0);
	for (j = 0; j < 6; j++)
		seq[j] = pick(&f, 0, 0);
	ok(seq[0] == 0 && seq[1] == 1 && seq[2] == 2 && seq[3] == 0 &&
	    seq[4] == 1 && seq[5] == 2, "leastconn: idle ties rotate 0 1 2 0 1 2");
	f.s.u[2].conns = 5;
	for (j = 0; j < 4; j++)
		seq[j] = pick(&f, 0, 0);
	ok(seq[0] == 0 && seq[1] == 1 && seq[2] == 0 && seq[3] == 1,
	    "leastconn: ties among the least loaded rotate 0 1 0 1");
	/* Picks that count their connections spread them evenly. */
	f.s.u[0].conns = f.s.u[1].conns = f.s.u[2].conns = 0;
	for (j = 0; j < 30; j++)
		f.s.u[pick(&f, 0, 0)].conns++;
	ok(f.s.u[0].conns == 10 && f.s.u[1].conns == 10 && f.s.u[2].conns == 10,
	    "leastconn: 30 counted picks: 10 each");
	/* The tie rotation goes on from the last pick even when it is tried. */
	r = pick(&f, 0x1, 0);
	ok(r == 1 || r == 2, "leastconn: tried one skipped");
	fixture_fini(&f);

	/* 2:1:1 weights with equal conns/weight ratios tie too. */
	fixture_init(&f, BAL_LEASTCONN, w21, 3, 0, 0);
	f.s.u[0].conns = 2;
	f.s.u[1].conns = f.s.u[2].conns = 1;
	for (j = 0; j < 3; j++)
		seq[j] = pick(&f, 0, 0);
	ok(seq[0] == 0 && seq[1] == 1 && seq[2] == 2,
	    "leastconn: equal conns/weight ties rotate");
	for (j = 0; j < 40; j++)
		f.s.u[pick(&f, 0, 0)].conns++;
	ok(f.s.u[0].conns == 22 && f.s.u[1].conns == 11 && f.s.u[2].conns == 11,
	    "leastconn 2:1:1: 40 counted picks on 2:1:1 give 22:11:11 in all");
	fixture_fini(&f);
}

/* ---- source ------------------------------------------------------------ */

static void
test_source(void)
{
	static const int w4[] = { 1, 1, 1, 1 }, w2[] = { 1, 1 };
	struct sockaddr_storage cl;
	struct fixture f;
	char host[64];
	int first, r, i, diff, map[256], map2[256];
	unsigned count[4] = { 0, 0, 0, 0 };

	fixture_init(&f, BAL_SOURCE, w4, 4, 0, 0);
	sa_make(&cl, "198.51.100.77", 1024);
	first = upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL, NULL);
	for (diff = 0, i = 0; i < 100; i++) {
		sa_make(&cl, "198.51.100.77", 1024 + (unsigned)i * 7);
		if (upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL,
		    NULL) != first)
			diff++;
	}
	is_int(diff, 0, "source: one IPv4 client, 100 ports: one backend");
	sa_make(&cl, "2001:db8::77", 1024);
	first = upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL, NULL);
	for (diff = 0, i = 0; i < 100; i++) {
		sa_make(&cl, "2001:db8::77", 1024 + (unsigned)i * 7);
		if (upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL,
		    NULL) != first)
			diff++;
	}
	is_int(diff, 0, "source: one IPv6 client, 100 ports: one backend");

	for (i = 0; i < 256; i++) {
		snprintf(host, sizeof(host), "203.0.113.%d", i);
		sa_make(&cl, host, 40000);
		map[i] = upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL,
		    NULL);
		if (map[i] >= 0 && map[i] < 4)
			count[map[i]]++;
	}
	ok(count[0] > 0 && count[1] > 0 && count[2] > 0 && count[3] > 0 &&
	    count[0] + count[1] + count[2] + count[3] == 256,
	    "source: 256 addresses reach all 4 backends (%u %u %u %u)",
	    count[0], count[1], count[2], count[3]);
	f.s.u[1].conns = 1000;
	f.s.u[3].conns = 7;
	for (diff = 0, i = 0; i < 256; i++) {
		snprintf(host, sizeof(host), "203.0.113.%d", i);
		sa_make(&cl, host, 40001);
		if (upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL,
		    NULL) != map[i])
			diff++;
	}
	is_int(diff, 0, "source: mapping ignores the backends' conns");
	sa_make(&cl, "::ffff:203.0.113.9", 1);
	is_int(upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL, NULL),
	    map[9], "source: IPv4-mapped IPv6 maps like the IPv4 address");
	/* A client whose backend is down moves; the rest stay put. */
	f.s.u[map[9]].checked_down = 1;
	r = upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL, NULL);
	ok(r >= 0 && r != map[9], "source: its backend down: another one");
	fixture_fini(&f);

	/* Addresses differing only in high bits still spread over 2. */
	fixture_init(&f, BAL_SOURCE, w2, 2, 0, 0);
	count[0] = count[1] = 0;
	for (i = 0; i < 256; i++) {
		snprintf(host, sizeof(host), "10.%d.0.%d", i & 0xf0,
		    (i & 0x0f) << 4);
		sa_make(&cl, host, 1);
		map2[i] = upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL,
		    NULL);
		if (map2[i] >= 0 && map2[i] < 2)
			count[map2[i]]++;
	}
	ok(count[0] > 64 && count[1] > 64,
	    "source: even-only addresses spread over 2 backends (%u %u)",
	    count[0], count[1]);
	fixture_fini(&f);
}

/* ---- random ------------------------------------------------------------ */

struct seq {
	const unsigned	*v;
	size_t		 n, i;
};

static unsigned
seq_rnd(void *arg)
{
	struct seq *q = arg;

	return q->v[q->i++ % q->n];
}

static const struct {
	const char	*name;
	int		 w[3];
	unsigned	 conns[3];
	unsigned	 rnd[2];
	int		 want;
} rnd_cases[] = {
	{ "second is lighter",	{ 1, 1, 1 }, { 5, 0, 3 }, { 0, 2 }, 2 },
	{ "first is lighter",	{ 1, 1, 1 }, { 5, 0, 3 }, { 1, 0 }, 1 },
	{ "same one twice",	{ 1, 1, 1 }, { 5, 0, 3 }, { 0, 3 }, 0 },
	{ "equal: the first",	{ 1, 1, 1 }, { 2, 2, 2 }, { 2, 1 }, 2 },
	{ "weight counts",	{ 4, 1, 1 }, { 4, 2, 0 }, { 1, 0 }, 0 },
	{ "modulo the count",	{ 1, 1, 1 }, { 9, 9, 1 }, { 300, 302 }, 2 },
};

static void
test_random(void)
{
	static const int w3[] = { 1, 1, 1 };
	static const unsigned zero[] = { 0 };
	struct fixture f;
	struct seq q;
	size_t i;
	int r;

	for (i = 0; i < NELEM(rnd_cases); i++) {
		fixture_init(&f, BAL_RANDOM, rnd_cases[i].w, 3, 0, 0);
		f.s.u[0].conns = rnd_cases[i].conns[0];
		f.s.u[1].conns = rnd_cases[i].conns[1];
		f.s.u[2].conns = rnd_cases[i].conns[2];
		q.v = rnd_cases[i].rnd;
		q.n = 2;
		q.i = 0;
		r = upstream_pick(&f.s, NULL, 0, 0, seq_rnd, &q);
		is_int(r, rnd_cases[i].want, "random: %s", rnd_cases[i].name);
		is_uint(q.i, 2, "random: %s: two draws", rnd_cases[i].name);
		fixture_fini(&f);
	}

	/* Draws index the candidates, not the backends. */
	fixture_init(&f, BAL_RANDOM, w3, 3, 0, 0);
	f.s.u[0].checked_down = 1;
	q.v = zero;
	q.n = 1;
	q.i = 0;
	is_int(upstream_pick(&f.s, NULL, 0, 0, seq_rnd, &q), 1,
	    "random: draw 0 with u[0] down: u[1]");
	is_int(upstream_pick(&f.s, NULL, 0x2, 0, seq_rnd, &q), 2,
	    "random: draw 0 with u[0] down, u[1] tried: u[2]");
	r = upstream_pick(&f.s, NULL, 0, 0, NULL, NULL);
	ok(r == 1 || r == 2, "random: no rnd given: still a usable one");
	fixture_fini(&f);
}

/* ---- passive marking and health --------------------------------------- */

static void
test_passive(void)
{
	static const int w2[] = { 1, 1 };
	struct fixture f;
	int i, marked;

	fixture_init(&f, BAL_ROUNDROBIN, w2, 2, 3, 10000);
	is_int(upstream_failed(&f.s, 0, 100), 0, "passive: 1st failure");
	is_int(upstream_failed(&f.s, 0, 101), 0, "passive: 2nd failure");
	is_int(upstream_failed(&f.s, 0, 102), 1, "passive: 3rd within 10 s: down");
	ok(!upstream_usable(&f.s.u[0], 102), "passive: not usable at once");
	ok(!upstream_usable(&f.s.u[0], 111.999), "passive: not usable at 111.999");
	ok(upstream_usable(&f.s.u[0], 112), "passive: usable again at 112");
	is_int(pick(&f, 0, 105), 1, "passive: pick avoids it");
	is_int(pick(&f, 0, 105), 1, "passive: pick avoids it again");
	for (marked = 0, i = 0; i < 6; i++)
		marked += upstream_failed(&f.s, 0, 103 + i * 0.1);
	is_int(marked, 0, "passive: late failures while down: not marked again");
	ok(upstream_usable(&f.s.u[0], 112),
	    "passive: late failures do not extend the down time");
	f.s.u[1].down_until = 200;
	is_int(pick(&f, 0, 150), 0, "passive: back in rotation");
	is_int(pick(&f, 0, 199), 0, "passive: u[1] down: u[0] only");
	fixture_fini(&f);

	/* Failures spread wider than the window never add up. */
	fixture_init(&f, BAL_ROUNDROBIN, w2, 2, 3, 10000);
	for (marked = 0, i = 0; i < 50; i++)
		marked += upstream_failed(&f.s, 0, 1000 + i * 6.0);
	is_int(marked, 0, "passive: a failure every 6 s (window 10): never");
	ok(upstream_usable(&f.s.u[0], 1300), "passive: ... still usable");
	is_int(upstream_failed(&f.s, 1, 0) + upstream_failed(&f.s, 1, 5) +
	    upstream_failed(&f.s, 1, 10), 0,
	    "passive: 3rd failure at the window's end starts a new one");
	is_int(upstream_failed(&f.s, 1, 15), 0, "passive: ... 2nd in the new one");
	is_int(upstream_failed(&f.s, 1, 19.9), 1,
	    "passive: ... 3rd before 20: down");
	fixture_fini(&f);

	/* A success starts the count over. */
	fixture_init(&f, BAL_ROUNDROBIN, w2, 2, 3, 10000);
	upstream_failed(&f.s, 0, 1);
	upstream_failed(&f.s, 0, 2);
	upstream_succeeded(&f.s, 0);
	is_uint(f.s.u[0].fails, 0, "passive: success clears the count");
	is_int(upstream_failed(&f.s, 0, 3) + upstream_failed(&f.s, 0, 4), 0,
	    "passive: two more after a success: not down");
	is_int(upstream_failed(&f.s, 0, 5), 1, "passive: third: down");
	is_int(upstream_failed(&f.s, 7, 5), 0, "passive: index out of range");
	fixture_fini(&f);

	/* max_fails = 0: off. */
	fixture_init(&f, BAL_ROUNDROBIN, w2, 2, 0, 10000);
	for (marked = 0, i = 0; i < 100; i++)
		marked += upstream_failed(&f.s, 0, 1 + i * 0.01);
	is_int(marked, 0, "passive: max_fails 0: 100 failures, never down");
	ok(upstream_usable(&f.s.u[0], 2), "passive: max_fails 0: usable");
	fixture_fini(&f);

	/* max_fails = 1: the first failure. */
	fixture_init(&f, BAL_ROUNDROBIN, w2, 2, 1, 2000);
	is_int(upstream_failed(&f.s, 1, 50), 1, "passive: max_fails 1: at once");
	ok(!upstream_usable(&f.s.u[1], 51.9) && upstream_usable(&f.s.u[1], 52),
	    "passive: max_fails 1: down for fail_timeout (2 s)");
	fixture_fini(&f);

	/* Health-checked down: counted, but this call changes nothing seen. */
	fixture_init(&f, BAL_ROUNDROBIN, w2, 2, 1, 10000);
	f.s.u[0].checked_down = 1;
	is_int(upstream_failed(&f.s, 0, 10), 0,
	    "passive: checked down already: not reported as marked");
	f.s.u[0].checked_down = 0;
	ok(!upstream_usable(&f.s.u[0], 15), "passive: ... but the mark holds");
	fixture_fini(&f);
}

/* The passive_down gauge in the statistics: set with the mark, cleared as it runs out. */
static void
test_marks_gauge(void)
{
	static const int w2[] = { 1, 1 };
	struct stats_bcount st[2];
	struct fixture f;

	fixture_init(&f, BAL_ROUNDROBIN, w2, 2, 2, 10000);
	upstream_marks(&f.s, 0);
	ok(1, "marks: no statistics attached: nothing to do");
	memset(st, 0, sizeof(st));
	f.s.st = st;
	upstream_failed(&f.s, 1, 100);
	is_uint(st[1].passive_down, 0, "marks: one failure of two: not down, gauge 0");
	is_int(upstream_failed(&f.s, 1, 101), 1, "marks: second: marked down");
	is_uint(st[1].passive_down, 1, "marks: the gauge set as it is marked");
	is_uint(st[0].passive_down, 0, "marks: the other backend's gauge untouched");
	upstream_marks(&f.s, 110.9);
	is_uint(st[1].passive_down, 1, "marks: still down at 110.9: gauge kept");
	upstream_marks(&f.s, 111);
	is_uint(st[1].passive_down, 0, "marks: ran out at 111: gauge cleared");
	f.s.u[0].down_until = 500;
	upstream_marks(&f.s, 200);
	is_uint(st[0].passive_down, 1, "marks: a mark seen only by the sweep: set");
	fixture_fini(&f);
}

static void
test_nothing_usable(void)
{
	static const int w[] = { 1, 2, -1 };
	static const int methods[] = {
		BAL_ROUNDROBIN, BAL_LEASTCONN, BAL_SOURCE, BAL_RANDOM
	};
	struct sockaddr_storage cl;
	struct fixture f;
	size_t m;

	sa_make(&cl, "192.0.2.1", 1);
	for (m = 0; m < NELEM(methods); m++) {
		fixture_init(&f, methods[m], w, 3, 0, 0);
		f.s.u[0].checked_down = 1;
		f.s.u[1].down_until = 10;
		f.s.u[2].checked_down = 1;
		ok(!upstream_usable(&f.s.u[0], 0) && !upstream_usable(&f.s.u[1], 0),
		    "checked_down and down_until exclude");
		is_int(upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 0, NULL,
		    NULL), -1, "nothing usable (method %d): -1", methods[m]);
		is_int(upstream_pick(&f.s, (struct sockaddr *)&cl, 0, 10, NULL,
		    NULL), 1, "method %d: at 10 u[1] is back", methods[m]);
		fixture_fini(&f);
	}
}

/* ---- source addresses ---------------------------------------------------------------- */

static void
test_source_addrs(void)
{
	static const char *const src[] = {
		"127.0.0.2", "::1", "127.0.0.3", "127.0.0.4", "2001:db8::2"
	};
	static const int w1[] = { 1 };
	/* the picks, in order: family, then the index in src expected */
	static const struct { int af; int want; } seq[] = {
		{ AF_INET, 0 }, { AF_INET, 2 }, { AF_INET6, 1 }, { AF_INET, 3 },
		{ AF_INET6, 4 }, { AF_INET, 0 }, { AF_INET6, 1 }, { AF_INET, 2 },
	};
	struct addr a[NELEM(src)];
	struct fixture f;
	const struct addr *got;
	size_t i;

	for (i = 0; i < NELEM(src); i++) {
		if (net_parse_ip(src[i], &a[i]) == -1)
			bail_out("test_source_addrs: %s", src[i]);
	}
	fixture_init(&f, BAL_ROUNDROBIN, w1, 1, 0, 0);
	ok(upstream_source(&f.s, AF_INET) == NULL &&
	    upstream_source(&f.s, AF_INET6) == NULL, "no source: NULL");
	fixture_fini(&f);

	f.lc.source = a;
	f.lc.nsource = NELEM(a);
	upstream_init(&f.s, &f.lc);
	ok(f.s.src == a && f.s.nsrc == NELEM(a), "init: the source addresses, borrowed");
	for (i = 0; i < NELEM(seq); i++) {
		got = upstream_source(&f.s, seq[i].af);
		ok(got == &a[seq[i].want], "pick %zu (%s): %s", i + 1,
		    seq[i].af == AF_INET ? "IPv4" : "IPv6", src[seq[i].want]);
	}
	upstream_fini(&f.s);

	f.lc.nsource = 1;		/* 127.0.0.2 alone */
	upstream_init(&f.s, &f.lc);
	ok(upstream_source(&f.s, AF_INET) == &a[0] &&
	    upstream_source(&f.s, AF_INET) == &a[0], "one address: always it");
	ok(upstream_source(&f.s, AF_INET6) == NULL, "no IPv6 address: NULL");
	upstream_fini(&f.s);
}

/* ---- the operator's state and weight ----------------------------------- */

/* n picks from distinct clients; count[i] for u[i], the last counter for -1. */
static void
count_picks(struct fixture *f, int n, unsigned *count, size_t ncount)
{
	unsigned v[] = { 0, 1, 2, 3, 4, 5, 6 };
	struct sockaddr_storage cl;
	struct seq q = { v, NELEM(v), 0 };
	int i, r;

	memset(count, 0, ncount * sizeof(*count));
	for (i = 0; i < n; i++) {
		sa_make(&cl, "192.0.2.1", 1);
		((struct sockaddr_in *)&cl)->sin_addr.s_addr = htonl(0xc0000200u + (unsigned)i);
		r = upstream_pick(&f->s, (struct sockaddr *)&cl, 0, 0, seq_rnd, &q);
		if (r >= 0 && (size_t)r < ncount)
			count[r]++;
		else
			count[ncount - 1]++;	/* -1: the last counter */
	}
}

static void
test_admin_state(void)
{
	static const int w3[] = { 1, 1, 1 }, wb[] = { 1, 1, -1 };
	static const int methods[] = {
		BAL_ROUNDROBIN, BAL_LEASTCONN, BAL_SOURCE, BAL_RANDOM
	};
	static const char *const mname[] = { "roundrobin", "leastconn", "source", "random" };
	struct fixture f;
	unsigned count[4];
	size_t m;

	fixture_init(&f, BAL_ROUNDROBIN, w3, 3, 0, 0);
	ok(f.s.u[0].admin == UPS_READY && f.s.u[0].admin_weight == 0,
	    "admin: starts ready, with the config's weight");
	is_int(upstream_admin(&f.s, 1, UPS_DRAIN, 0), 0, "admin: drain u[1]: 0");
	ok(!upstream_usable(&f.s.u[1], 0) && upstream_usable(&f.s.u[0], 0),
	    "admin: drained is not usable, the others are");
	is_int(upstream_admin(&f.s, 1, UPS_MAINT, 0), 0, "admin: maint u[1]: 0");
	ok(!upstream_usable(&f.s.u[1], 0), "admin: maint is not usable");
	is_int(upstream_admin(&f.s, 1, UPS_READY, 0), 0, "admin: ready u[1]: 0");
	ok(upstream_usable(&f.s.u[1], 0), "admin: ready is usable again");
	f.s.u[1].checked_down = 1;
	ok(!upstream_usable(&f.s.u[1], 0), "admin: ready does not override a check's down");
	fixture_fini(&f);

	for (m = 0; m < NELEM(methods); m++) {
		fixture_init(&f, methods[m], w3, 3, 0, 0);
		f.s.u[1].conns = 7;
		upstream_admin(&f.s, 1, UPS_DRAIN, 0);
		count_picks(&f, 60, count, 4);
		ok(count[1] == 0 && count[0] > 0 && count[2] > 0 && count[3] == 0,
		    "%s: u[1] drained: never picked (%u %u %u, none %u)", mname[m],
		    count[0], count[1], count[2], count[3]);
		is_uint(f.s.u[1].conns, 7, "%s: drain leaves its open connections alone",
		    mname[m]);
		upstream_admin(&f.s, 1, UPS_MAINT, 0);
		upstream_admin(&f.s, 2, UPS_MAINT, 0);
		count_picks(&f, 20, count, 4);
		is_uint(count[0], 20, "%s: u[1], u[2] in maint: all to u[0]", mname[m]);
		upstream_admin(&f.s, 0, UPS_DRAIN, 0);
		count_picks(&f, 5, count, 4);
		is_uint(count[3], 5, "%s: every backend drained or in maint: none", mname[m]);
		upstream_admin(&f.s, 0, UPS_READY, 0);
		upstream_admin(&f.s, 1, UPS_READY, 0);
		upstream_admin(&f.s, 2, UPS_READY, 0);
		f.s.u[1].conns = 0;
		count_picks(&f, 60, count, 4);
		ok(count[0] > 0 && count[1] > 0 && count[2] > 0,
		    "%s: all ready again: each picked (%u %u %u)", mname[m],
		    count[0], count[1], count[2]);
		fixture_fini(&f);
	}

	/* Primaries drained: the backup takes over, as when they are down. */
	fixture_init(&f, BAL_ROUNDROBIN, wb, 3, 0, 0);
	upstream_admin(&f.s, 0, UPS_DRAIN, 0);
	upstream_admin(&f.s, 1, UPS_MAINT, 0);
	is_int(pick(&f, 0, 0), 2, "admin: primaries drained / in maint: the backup");
	upstream_admin(&f.s, 1, UPS_READY, 0);
	is_int(pick(&f, 0, 0), 1, "admin: a primary ready again: the primary");
	upstream_admin(&f.s, 2, UPS_MAINT, 0);
	upstream_admin(&f.s, 1, UPS_DRAIN, 0);
	is_int(pick(&f, 0, 0), -1, "admin: backup in maint too: -1");
	fixture_fini(&f);
}

static void
test_admin_weight(void)
{
	static const int w3[] = { 1, 1, 1 }, w21[] = { 2, 1 };
	struct fixture f;
	unsigned count[4];
	int i, r, seq_ok;

	/* roundrobin: the operator's weight sets the shares from the next pick */
	fixture_init(&f, BAL_ROUNDROBIN, w3, 3, 0, 0);
	pick(&f, 0, 0);		/* mid-cycle: credits left over */
	is_int(upstream_admin(&f.s, 0, UPS_READY, 3), 0, "weight: u[0] 3: 0");
	is_uint(upstream_weight(&f.s.u[0]), 3, "weight: in effect 3");
	is_uint(upstream_weight(&f.s.u[1]), 1, "weight: the others keep the config's");
	count_picks(&f, 5, count, 4);
	ok(count[0] == 3 && count[1] == 1 && count[2] == 1,
	    "weight 3:1:1: the next 5 picks give 3:1:1 (%u %u %u)",
	    count[0], count[1], count[2]);
	count_picks(&f, 500, count, 4);
	ok(count[0] == 300 && count[1] == 100 && count[2] == 100,
	    "weight 3:1:1 over 500: 300:100:100 (%u %u %u)",
	    count[0], count[1], count[2]);
	upstream_admin(&f.s, 2, UPS_READY, 256);
	count_picks(&f, 260, count, 4);
	ok(count[0] == 3 && count[1] == 1 && count[2] == 256,
	    "weight 3:1:256 over 260 (%u %u %u)", count[0], count[1], count[2]);
	upstream_admin(&f.s, 0, UPS_READY, 0);
	upstream_admin(&f.s, 2, UPS_READY, 0);
	is_uint(upstream_weight(&f.s.u[0]), 1, "weight 0: the config's again");
	for (seq_ok = 1, i = 0; i < 6; i++)
		if (pick(&f, 0, 0) != i % 3)
			seq_ok = 0;
	ok(seq_ok, "weight back to 1:1:1: 0 1 2 0 1 2");
	fixture_fini(&f);

	/* a weight the config gave, overridden down */
	fixture_init(&f, BAL_ROUNDROBIN, w21, 2, 0, 0);
	upstream_admin(&f.s, 0, UPS_READY, 1);
	count_picks(&f, 10, count, 3);
	ok(count[0] == 5 && count[1] == 5, "weight 2 set to 1: 5:5 (%u %u)",
	    count[0], count[1]);
	fixture_fini(&f);

	/* leastconn: conns/weight with the operator's weight */
	fixture_init(&f, BAL_LEASTCONN, w3, 3, 0, 0);
	f.s.u[0].conns = 4;
	f.s.u[1].conns = f.s.u[2].conns = 2;
	is_int(pick(&f, 0, 0) != 0, 1, "leastconn: u[0] the busiest at weight 1");
	upstream_admin(&f.s, 0, UPS_READY, 4);
	is_int(pick(&f, 0, 0), 0, "leastconn: u[0] at weight 4 is the lightest (4/4 < 2/1)");
	fixture_fini(&f);

	/* random: the lighter of two draws, by the operator's weight */
	fixture_init(&f, BAL_RANDOM, w3, 3, 0, 0);
	f.s.u[0].conns = 3;
	f.s.u[2].conns = 2;
	{
		unsigned v[] = { 0, 2 };
		struct seq q = { v, 2, 0 };

		is_int(upstream_pick(&f.s, NULL, 0, 0, seq_rnd, &q), 2,
		    "random: 3 conns vs 2 at weight 1: u[2]");
		upstream_admin(&f.s, 0, UPS_READY, 2);
		q.i = 0;
		r = upstream_pick(&f.s, NULL, 0, 0, seq_rnd, &q);
		is_int(r, 0, "random: u[0] at weight 2 (3/2 < 2/1): u[0]");
	}
	fixture_fini(&f);
}

static void
test_admin_bad(void)
{
	static const int w2[] = { 1, 1 };
	struct fixture f;

	fixture_init(&f, BAL_ROUNDROBIN, w2, 2, 0, 0);
	upstream_admin(&f.s, 0, UPS_DRAIN, 5);
	errno = 0;
	is_int(upstream_admin(&f.s, 2, UPS_MAINT, 0), -1, "admin: index 2 of 2: -1");
	is_int(errno, EINVAL, "admin: ... EINVAL");
	errno = 0;
	is_int(upstream_admin(&f.s, 0, UPS_MAINT + 1, 0), -1, "admin: unknown state: -1");
	is_int(errno, EINVAL, "admin: ... EINVAL");
	is_int(upstream_admin(&f.s, 0, -1, 0), -1, "admin: negative state: -1");
	is_int(upstream_admin(&f.s, 0, UPS_READY, UPSTREAM_WEIGHT_MAX + 1), -1,
	    "admin: weight %d: -1", UPSTREAM_WEIGHT_MAX + 1);
	ok(f.s.u[0].admin == UPS_DRAIN && f.s.u[0].admin_weight == 5,
	    "admin: refused calls changed nothing");
	fixture_fini(&f);
}

int
main(void)
{
	test_init();
	test_roundrobin();
	test_backup();
	test_tried();
	test_leastconn();
	test_source();
	test_random();
	test_passive();
	test_marks_gauge();
	test_nothing_usable();
	test_source_addrs();
	test_admin_state();
	test_admin_weight();
	test_admin_bad();
	return done_testing();
}
