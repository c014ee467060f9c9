/*
 * test_clients.c: unit tests for src/clients.c, the shared admission
 * counts: the listener's max_connections and the per-client limit, both
 * exact; the rate over simulated time (now_us is the test's); IPv6
 * clients grouped by prefix and IPv4-mapped addresses as IPv4; a full
 * table (untracked, never a wrong refusal) and stale entries reclaimed; a
 * reload that shares the counts, and a table size change that starts
 * afresh; a dead worker's counts given back from its journal; "show
 * clients"; and across processes: four workers hammering a few clients
 * never pass the limit, and a worker killed with SIGKILL leaves no count
 * behind once the master gives its journal back.
 *
 * Configurations are built in place: the module reads only the names and
 * the limits.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients.h"
#include "tap.h"
#include "sockaddr_make.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXL		3
#define SEC		UINT64_C(1000000)
#define T0		(1000 * SEC)	/* a monotonic clock well past 0 */

struct fixture {
	struct config		 cfg;
	struct listener_conf	 lc[MAXL];
	char			 name[MAXL][16];
};

/* n listeners "l0".."l2", no limit, 64 holds per worker. */
static struct config *
fixture(struct fixture *f, size_t n)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n && i < MAXL; i++) {
		snprintf(f->name[i], sizeof(f->name[i]), "l%zu", i);
		f->lc[i].name = f->name[i];
		f->lc[i].listen = f->name[i];
		f->lc[i].client_prefix6 = 64;
		f->lc[i].client_table_size = 65536;
	}
	f->cfg.listeners = f->lc;
	f->cfg.nlisteners = n;
	f->cfg.max_connections = 64;
	f->cfg.workers = 1;
	return &f->cfg;
}

static const struct sockaddr *
sa(const char *host)
{
	static struct sockaddr_storage ss[8];
	static unsigned next;
	struct sockaddr_storage *s = &ss[next++ % NELEM(ss)];

	sa_make(s, host, 40000);
	return (const struct sockaddr *)s;
}

/* A connection as acl.c makes it: enter, then the client. */
struct cx {
	uint32_t	 hold;
	int		 v;		/* the verdict */
};

static struct cx
conn(struct clients_gen *g, size_t li, const char *host, uint64_t now)
{
	struct cx c;

	c.v = clients_enter(g, li, &c.hold);
	if (c.v != CLIENTS_OK)
		return c;
	c.v = clients_client(g, li, c.hold, sa(host), now);
	if (c.v == CLIENTS_RATE || c.v == CLIENTS_LIMIT) {
		clients_leave(g, c.hold);
		c.hold = CLIENTS_NOHOLD;
	}
	return c;
}

/* The open count "show clients" gives client of listener; -1: not listed. */
static long
open_of(const struct clients *cs, const struct config *cfg, const char *listener,
    const char *client)
{
	struct clients_row rows[64];
	size_t n = clients_top(cs, cfg, listener, T0, rows, NELEM(rows));

	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].client, client) == 0)
			return rows[i].open;
	return -1;
}

/* The sum of the open counts of every client listed. */
static unsigned long
open_sum(const struct clients *cs, const struct config *cfg, uint64_t now)
{
	static struct clients_row rows[1024];
	size_t n = clients_top(cs, cfg, NULL, now, rows, NELEM(rows));
	unsigned long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += rows[i].open;
	return sum;
}

/* ---- no limit: nothing mapped, every call a test ---- */

static void
test_no_limit(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 2);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct cx c;

	if (!ok(cs != NULL, "clients_new"))
		return;
	g = clients_gen_new(cs, cfg, 4);
	if (!ok(g != NULL, "no limit: a generation"))
		return;
	ok(clients_worker_init(g, 0) == 0, "no limit: worker_init");
	ok(!clients_counts(g, 0) && !clients_per_client(g, 1), "no limit: counts nothing");
	c = conn(g, 0, "10.0.0.1", T0);
	ok(c.v == CLIENTS_OK && c.hold == CLIENTS_NOHOLD, "no limit: admitted, no hold");
	clients_leave(g, c.hold);
	is_uint(clients_listener_open(cs, "l0"), 0, "no limit: no listener count");
	clients_slot_died(g, 0);
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* ---- max_connections of a listener ---- */

static void
test_listener_limit(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 2);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	uint32_t h[4], x;

	f.lc[0].max_conn = 3;
	g = clients_gen_new(cs, cfg, 2);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "max_connections: a generation"))
		return;
	ok(clients_counts(g, 0) && !clients_per_client(g, 0), "l0 counts, no per-client");
	ok(!clients_counts(g, 1), "l1 counts nothing");
	for (int i = 0; i < 3; i++)
		is_int(clients_enter(g, 0, &h[i]), CLIENTS_OK, "max_connections 3: %d admitted", i + 1);
	ok(h[0] != CLIENTS_NOHOLD && h[0] != h[1] && h[1] != h[2], "three holds");
	is_uint(clients_listener_open(cs, "l0"), 3, "3 open");
	is_int(clients_enter(g, 0, &h[3]), CLIENTS_LISTENER_FULL, "the 4th: listener_full");
	ok(h[3] == CLIENTS_NOHOLD, "... and nothing held");
	is_uint(clients_listener_open(cs, "l0"), 3, "a refusal leaves the count");
	is_int(clients_enter(g, 1, &x), CLIENTS_OK, "another listener is not limited");
	ok(x == CLIENTS_NOHOLD, "... and holds nothing");
	is_int(clients_client(g, 0, h[0], sa("10.0.0.1"), T0), CLIENTS_OK,
	    "no per-client limit: client OK");
	clients_leave(g, h[1]);
	is_uint(clients_listener_open(cs, "l0"), 2, "a close gives one back");
	is_int(clients_enter(g, 0, &h[1]), CLIENTS_OK, "then one more is admitted");
	for (int i = 0; i < 3; i++)
		clients_leave(g, h[i]);
	is_uint(clients_listener_open(cs, "l0"), 0, "all closed: 0");
	is_uint(clients_listener_open(cs, "l1"), 0, "unknown counter: 0");
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* ---- max_conn_per_client ---- */

static void
test_client_limit(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 1);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct cx a[3], b, u;
	struct sockaddr_storage un;

	f.lc[0].client_max_conn = 2;
	g = clients_gen_new(cs, cfg, 1);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "per-client: a generation"))
		return;
	ok(clients_counts(g, 0) && clients_per_client(g, 0), "l0 has per-client limits");
	a[0] = conn(g, 0, "10.0.0.1", T0);
	a[1] = conn(g, 0, "10.0.0.1", T0);
	ok(a[0].v == CLIENTS_OK && a[1].v == CLIENTS_OK, "limit 2: two admitted");
	a[2] = conn(g, 0, "10.0.0.1", T0);
	is_int(a[2].v, CLIENTS_LIMIT, "the third: client_limit");
	is_int(open_of(cs, cfg, "l0", "10.0.0.1"), 2, "show clients: 10.0.0.1 has 2 open");
	b = conn(g, 0, "10.0.0.2", T0);
	is_int(b.v, CLIENTS_OK, "another client is admitted");
	is_uint(clients_listener_open(cs, "l0"), 0, "no max_connections: no listener count");
	clients_leave(g, a[0].hold);
	is_int(open_of(cs, cfg, "l0", "10.0.0.1"), 1, "a close: 1 open");
	a[0] = conn(g, 0, "10.0.0.1", T0);
	is_int(a[0].v, CLIENTS_OK, "then it is admitted again");
	clients_leave(g, a[0].hold);
	clients_leave(g, a[1].hold);
	clients_leave(g, b.hold);
	is_int(open_of(cs, cfg, "l0", "10.0.0.1"), -1, "all closed: not listed");
	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	is_int(clients_enter(g, 0, &u.hold), CLIENTS_OK, "a Unix peer: entered");
	is_int(clients_client(g, 0, u.hold, (struct sockaddr *)&un, T0), CLIENTS_UNTRACKED,
	    "a Unix peer: untracked");
	clients_leave(g, u.hold);
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* ---- conn_rate_per_client over simulated time ---- */

static void
test_rate(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 2);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct clients_row rows[4];
	uint64_t t = T0, T = 333333;	/* 3/s: T = 1 s / 3 */
	struct cx c;
	int n;

	f.lc[0].client_rate = 3;
	f.lc[0].client_rate_ms = 1000;
	f.lc[1].client_rate = 60;
	f.lc[1].client_rate_ms = 60000;		/* 60/m: one a second */
	g = clients_gen_new(cs, cfg, 1);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "rate: a generation"))
		return;
	ok(clients_per_client(g, 0), "a rate is a per-client limit");
	for (n = 0; n < 3; n++) {
		c = conn(g, 0, "10.0.0.1", t);
		if (c.v != CLIENTS_OK)
			break;
		ok(c.hold == CLIENTS_NOHOLD, "rate only: no hold");
	}
	is_int(n, 3, "3/s: a burst of 3 at once");
	is_int(conn(g, 0, "10.0.0.1", t).v, CLIENTS_RATE, "the 4th at once: client_rate");
	is_int(conn(g, 0, "10.0.0.2", t).v, CLIENTS_OK, "another client is not limited");
	if (is_int(clients_top(cs, cfg, "l0", t, rows, 4), 2, "show clients: 2 rows")) {
		is_str(rows[0].client, "10.0.0.1", "the busier first");
		is_uint(rows[0].recent, 3, "... 3 recent");
		is_uint(rows[0].open, 0, "... none open (no max_conn_per_client)");
		is_uint(rows[1].recent, 1, "the other: 1 recent");
	}
	is_int(conn(g, 0, "10.0.0.1", t + T - 1).v, CLIENTS_RATE, "T - 1 us later: refused");
	/* That refusal filled the bucket from its own time. */
	is_int(conn(g, 0, "10.0.0.1", t + 2 * T - 2).v, CLIENTS_RATE,
	    "T - 1 us after the refusal: refused");
	t += 3 * T - 2;		/* T after the last refusal */
	is_int(conn(g, 0, "10.0.0.1", t).v, CLIENTS_OK, "T after it: admitted");
	is_int(conn(g, 0, "10.0.0.1", t).v, CLIENTS_RATE, "and the next at once is not");

	/* A client that keeps trying above the rate stays refused. */
	for (n = 0; n < 40; n++)
		if (conn(g, 0, "10.0.0.1", t + (uint64_t)n * T / 2).v != CLIENTS_RATE)
			break;
	is_int(n, 40, "40 tries T/2 apart: every one refused");
	t += 39 * T / 2;
	is_int(conn(g, 0, "10.0.0.1", t + T).v, CLIENTS_OK, "quiet for T: admitted");

	/* A window later the whole burst is back. */
	t += 2 * SEC;
	for (n = 0; n < 4; n++)
		if (conn(g, 0, "10.0.0.1", t).v != CLIENTS_OK)
			break;
	is_int(n, 3, "a second later: a burst of 3 again");

	/* 3/s sustained: one every T passes, for 30 s. */
	t += 2 * SEC;
	for (n = 0; n < 90; n++)
		if (conn(g, 0, "10.0.0.9", t + (uint64_t)n * (T + 1)).v != CLIENTS_OK)
			break;
	is_int(n, 90, "one every T for 30 s: all admitted");

	/* 60/m: 60 at once, then one a second. */
	for (n = 0; n < 61; n++)
		if (conn(g, 1, "10.0.0.1", t).v != CLIENTS_OK)
			break;
	is_int(n, 60, "60/m: a burst of 60");
	is_int(conn(g, 1, "10.0.0.1", t + SEC - 1).v, CLIENTS_RATE, "60/m: 1 s - 1 us: refused");
	is_int(conn(g, 1, "10.0.0.1", t + 2 * SEC - 1).v, CLIENTS_OK,
	    "60/m: 1 s after the refusal: admitted");
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* ---- both limits: the rate first, refused attempts count ---- */

static void
test_both(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 1);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct clients_row rows[2];
	struct cx a, b, c;

	f.lc[0].client_max_conn = 1;
	f.lc[0].client_rate = 2;
	f.lc[0].client_rate_ms = 1000;
	f.lc[0].max_conn = 10;
	g = clients_gen_new(cs, cfg, 1);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "both: a generation"))
		return;
	a = conn(g, 0, "192.0.2.1", T0);
	is_int(a.v, CLIENTS_OK, "both: the first admitted");
	b = conn(g, 0, "192.0.2.1", T0);
	is_int(b.v, CLIENTS_LIMIT, "the second: client_limit (the rate let it by)");
	c = conn(g, 0, "192.0.2.1", T0);
	is_int(c.v, CLIENTS_RATE, "the third: client_rate (the refused one counted)");
	is_uint(clients_listener_open(cs, "l0"), 1, "refusals leave the listener's count");
	if (is_int(clients_top(cs, cfg, NULL, T0, rows, 2), 1, "show clients: one row")) {
		is_uint(rows[0].open, 1, "1 open");
		is_uint(rows[0].recent, 2, "2 recent");
		is_str(rows[0].listener, "l0", "its listener");
	}
	clients_leave(g, a.hold);
	is_uint(clients_listener_open(cs, "l0"), 0, "closed: 0");
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* ---- IPv6 grouping, IPv4-mapped ---- */

static void
test_ipv6(void)
{
	static const struct {
		unsigned	 prefix;
		const char	*a, *b;
		int		 same;
		const char	*shown;
	} cases[] = {
		{ 64, "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 1, "2001:db8:1:2::/64" },
		{ 64, "2001:db8:1:2::1", "2001:db8:1:3::1", 0, "2001:db8:1:2::/64" },
		{ 48, "2001:db8:1:2::1", "2001:db8:1:ff::1", 1, "2001:db8:1::/48" },
		{ 48, "2001:db8:1:2::1", "2001:db8:2:2::1", 0, "2001:db8:1::/48" },
		{ 56, "2001:db8:1:1ff::1", "2001:db8:1:100::1", 1, "2001:db8:1:100::/56" },
		{ 1, "2001:db8::1", "7fff::1", 1, "::/1" },
		{ 1, "2001:db8::1", "8000::1", 0, "::/1" },
		{ 64, "::ffff:192.0.2.7", "192.0.2.7", 1, "192.0.2.7" },
		{ 64, "192.0.2.7", "::ffff:192.0.2.8", 0, "192.0.2.7" },
		{ 64, "::1", "::2", 1, "::/64" },
		{ 64, "::1", "127.0.0.1", 0, "::/64" },
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		struct fixture f;
		struct config *cfg = fixture(&f, 1);
		struct clients *cs = clients_new();
		struct clients_gen *g;
		struct cx a, b;

		f.lc[0].client_max_conn = 1;
		f.lc[0].client_prefix6 = cases[i].prefix;
		g = clients_gen_new(cs, cfg, 1);
		if (g == NULL || clients_worker_init(g, 0) != 0)
			bail_out("gen_new: %s", strerror(errno));
		a = conn(g, 0, cases[i].a, T0);
		b = conn(g, 0, cases[i].b, T0);
		is_int(a.v, CLIENTS_OK, "/%u: %s admitted", cases[i].prefix, cases[i].a);
		is_int(b.v, cases[i].same ? CLIENTS_LIMIT : CLIENTS_OK, "/%u: %s then %s: %s",
		    cases[i].prefix, cases[i].a, cases[i].b,
		    cases[i].same ? "one client" : "two clients");
		is_int(open_of(cs, cfg, "l0", cases[i].shown), 1, "/%u: %s shown as %s",
		    cases[i].prefix, cases[i].a, cases[i].shown);
		clients_gen_free(cs, g);
		clients_free(cs);
	}
}

/* ---- a full table: untracked, never a wrong refusal; stale entries ---- */

#define NFILL	300

static void
test_full_table(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 1);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	static struct cx c[NFILL];
	char host[32], first_untracked[32] = "", first_ok[32] = "";
	int nok = 0, nun = 0, wrong = 0;
	struct cx x;

	f.lc[0].client_max_conn = 1;
	f.lc[0].client_table_size = 50;		/* rounded up to 64 */
	cfg->max_connections = 2 * NFILL;
	g = clients_gen_new(cs, cfg, 1);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "full: a generation"))
		return;
	for (int i = 0; i < NFILL; i++) {
		snprintf(host, sizeof(host), "10.1.%d.%d", i / 250, i % 250 + 1);
		c[i] = conn(g, 0, host, T0);
		if (c[i].v == CLIENTS_OK) {
			nok++;
			if (first_ok[0] == '\0')
				snprintf(first_ok, sizeof(first_ok), "%s", host);
		} else if (c[i].v == CLIENTS_UNTRACKED) {
			nun++;
			if (first_untracked[0] == '\0')
				snprintf(first_untracked, sizeof(first_untracked), "%s", host);
		} else
			wrong++;
	}
	is_int(wrong, 0, "%d new clients of one connection each: none refused", NFILL);
	ok(nok <= 64 && nok >= 40, "at most 64 tracked (%d)", nok);
	is_int(nun, NFILL - nok, "the others untracked (%d)", nun);
	is_uint(open_sum(cs, cfg, T0), (unsigned long)nok, "show clients: the tracked ones");
	x = conn(g, 0, first_untracked, T0);
	is_int(x.v, CLIENTS_UNTRACKED, "an untracked client's second connection: untracked, "
	    "not refused");
	clients_leave(g, x.hold);
	x = conn(g, 0, first_ok, T0);
	is_int(x.v, CLIENTS_LIMIT, "a tracked client's second: still limited");

	/* All closed: every entry is stale and new clients take them. */
	for (int i = 0; i < NFILL; i++)
		clients_leave(g, c[i].hold);
	is_uint(open_sum(cs, cfg, T0), 0, "all closed: nothing open");
	nok = 0;
	for (int i = 0; i < 8; i++) {
		snprintf(host, sizeof(host), "10.2.0.%d", i + 1);
		c[i] = conn(g, 0, host, T0);
		nok += c[i].v == CLIENTS_OK;
	}
	is_int(nok, 8, "stale entries reclaimed: 8 new clients tracked");
	x = conn(g, 0, "10.2.0.1", T0);
	is_int(x.v, CLIENTS_LIMIT, "and limited");
	for (int i = 0; i < 8; i++)
		clients_leave(g, c[i].hold);
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* With a rate, an entry with rate debt is not stale until it is paid. */
static void
test_stale_rate(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 1);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	char host[32];
	int i, v = CLIENTS_OK;

	f.lc[0].client_rate = 1;
	f.lc[0].client_rate_ms = 1000;
	f.lc[0].client_table_size = 64;
	g = clients_gen_new(cs, cfg, 1);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "stale rate: a generation"))
		return;
	for (i = 0; i < 1000 && v == CLIENTS_OK; i++) {
		snprintf(host, sizeof(host), "10.3.%d.%d", i / 250, i % 250 + 1);
		v = conn(g, 0, host, T0).v;
	}
	is_int(v, CLIENTS_UNTRACKED, "new clients with rate debt fill a window (%d)", i);
	is_int(conn(g, 0, host, T0 + SEC - 1).v, CLIENTS_UNTRACKED,
	    "before the debts are paid: still untracked");
	is_int(conn(g, 0, host, T0 + SEC).v, CLIENTS_OK, "once paid: a stale entry is taken");
	is_int(conn(g, 0, host, T0 + SEC).v, CLIENTS_RATE, "and the client is limited");
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* ---- reloads ---- */

static void
test_reload(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 2);
	struct clients *cs = clients_new();
	struct clients_gen *g1, *g2, *g3;
	struct cx a[2], b, c[2];

	f.lc[0].client_max_conn = 2;
	f.lc[0].max_conn = 5;
	f.lc[0].client_table_size = 1024;
	g1 = clients_gen_new(cs, cfg, 2);
	if (!ok(g1 != NULL && clients_worker_init(g1, 0) == 0, "reload: generation 1"))
		return;
	a[0] = conn(g1, 0, "10.0.0.1", T0);
	a[1] = conn(g1, 0, "10.0.0.1", T0);
	ok(a[0].v == CLIENTS_OK && a[1].v == CLIENTS_OK, "gen 1: 2 from 10.0.0.1");

	/* The same config again: the same counts. */
	g2 = clients_gen_new(cs, cfg, 2);
	if (!ok(g2 != NULL && clients_worker_init(g2, 0) == 0, "reload: generation 2"))
		return;
	is_uint(clients_listener_open(cs, "l0"), 2, "gen 2 sees the 2 open");
	b = conn(g2, 0, "10.0.0.1", T0);
	is_int(b.v, CLIENTS_LIMIT, "gen 2: 10.0.0.1 is at its limit");
	clients_leave(g1, a[0].hold);
	b = conn(g2, 0, "10.0.0.1", T0);
	is_int(b.v, CLIENTS_OK, "a gen 1 close lets gen 2 admit one");
	clients_leave(g1, a[1].hold);
	clients_gen_free(cs, g1);
	is_int(open_of(cs, cfg, "l0", "10.0.0.1"), 1, "gen 1 freed: gen 2's count kept");
	is_uint(clients_listener_open(cs, "l0"), 1, "... and the listener's");

	/* A new table size starts afresh; the listener's count goes on. */
	f.lc[0].client_table_size = 2048;
	g3 = clients_gen_new(cs, cfg, 2);
	if (!ok(g3 != NULL && clients_worker_init(g3, 0) == 0, "reload: generation 3"))
		return;
	c[0] = conn(g3, 0, "10.0.0.1", T0);
	c[1] = conn(g3, 0, "10.0.0.1", T0);
	ok(c[0].v == CLIENTS_OK && c[1].v == CLIENTS_OK,
	    "client_table_size changed: 10.0.0.1's count starts afresh");
	is_int(open_of(cs, cfg, "l0", "10.0.0.1"), 2, "show clients: the new table");
	is_uint(clients_listener_open(cs, "l0"), 3, "the listener's count is shared: 3");
	clients_leave(g2, b.hold);
	clients_gen_free(cs, g2);
	clients_leave(g3, c[0].hold);
	clients_leave(g3, c[1].hold);
	is_uint(clients_listener_open(cs, "l0"), 0, "all closed: 0");

	/* A listener that drops the limit and takes it back starts at 0. */
	f.lc[0].max_conn = 0;
	f.lc[0].client_max_conn = 0;
	g2 = clients_gen_new(cs, cfg, 2);
	clients_gen_free(cs, g3);
	ok(g2 != NULL && !clients_counts(g2, 0), "limits dropped: nothing counted");
	is_uint(clients_listener_open(cs, "l0"), 0, "the counter is gone");
	clients_gen_free(cs, g2);
	clients_free(cs);
}

/* ---- a dead worker's journal ---- */

static void
test_slot_died(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 2);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct cx a[3], b[2];

	f.lc[0].client_max_conn = 2;
	f.lc[0].max_conn = 10;
	f.lc[1].max_conn = 10;
	g = clients_gen_new(cs, cfg, 4);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "slot_died: a generation"))
		return;
	a[0] = conn(g, 0, "10.0.0.1", T0);
	a[1] = conn(g, 0, "10.0.0.1", T0);
	a[2] = conn(g, 1, "10.0.0.2", T0);
	ok(a[0].v == CLIENTS_OK && a[1].v == CLIENTS_OK && a[2].v == CLIENTS_OK,
	    "slot 0 holds 3");
	clients_slot_died(g, 0);
	is_uint(clients_listener_open(cs, "l0"), 0, "slot 0 died: l0 back to 0");
	is_uint(clients_listener_open(cs, "l1"), 0, "... l1 back to 0");
	is_int(open_of(cs, cfg, "l0", "10.0.0.1"), -1, "... the client back to 0");

	/* Its next worker: the journal was cleared, nothing is given twice. */
	ok(clients_worker_init(g, 1) == 0, "another slot");
	b[0] = conn(g, 0, "10.0.0.1", T0);
	b[1] = conn(g, 0, "10.0.0.1", T0);
	ok(b[0].v == CLIENTS_OK && b[1].v == CLIENTS_OK, "slot 1: 10.0.0.1 admitted twice");
	clients_slot_died(g, 0);
	is_int(open_of(cs, cfg, "l0", "10.0.0.1"), 2, "slot 0 died again: slot 1's 2 stay");
	is_uint(clients_listener_open(cs, "l0"), 2, "... and l0's");
	clients_leave(g, b[0].hold);
	clients_leave(g, b[1].hold);
	is_uint(clients_listener_open(cs, "l0"), 0, "closed: 0");
	clients_slot_died(g, 1);
	is_uint(clients_listener_open(cs, "l0"), 0, "a clean slot's death gives nothing");
	clients_slot_died(g, 99);
	clients_slot_died(g, -1);
	ok(1, "out-of-range slots are ignored");
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* ---- show clients ---- */

static void
test_top(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 2);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct clients_row rows[8];
	static struct cx c[16];
	char host[32];
	int k = 0;
	size_t n;

	f.lc[0].client_max_conn = 10;
	f.lc[1].client_max_conn = 10;
	cfg->max_connections = 64;
	g = clients_gen_new(cs, cfg, 1);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "top: a generation"))
		return;
	/* 10.0.0.N holds N connections on l0, N = 1..4; 10.9.9.9 holds 5 on l1. */
	for (int i = 1; i <= 4; i++)
		for (int j = 0; j < i; j++) {
			snprintf(host, sizeof(host), "10.0.0.%d", i);
			c[k++] = conn(g, 0, host, T0);
		}
	for (int j = 0; j < 5; j++)
		c[k++] = conn(g, 1, "10.9.9.9", T0);
	n = clients_top(cs, cfg, NULL, T0, rows, 3);
	if (is_int(n, 3, "top 3 of both listeners")) {
		ok(strcmp(rows[0].client, "10.9.9.9") == 0 && rows[0].open == 5 &&
		    strcmp(rows[0].listener, "l1") == 0, "first: 10.9.9.9 on l1, 5");
		ok(strcmp(rows[1].client, "10.0.0.4") == 0 && rows[1].open == 4,
		    "second: 10.0.0.4, 4");
		ok(strcmp(rows[2].client, "10.0.0.3") == 0 && rows[2].open == 3,
		    "third: 10.0.0.3, 3");
	}
	n = clients_top(cs, cfg, "l0", T0, rows, 8);
	is_int(n, 4, "l0 alone: 4 clients");
	ok(n == 4 && rows[3].open == 1 && strcmp(rows[3].client, "10.0.0.1") == 0,
	    "l0: the last is 10.0.0.1 with 1");
	is_int(clients_top(cs, cfg, "nope", T0, rows, 8), 0, "an unknown listener: none");
	is_int(clients_top(cs, cfg, NULL, T0, rows, 0), 0, "n = 0: none");
	for (int i = 0; i < k; i++)
		clients_leave(g, c[i].hold);
	is_int(clients_top(cs, cfg, NULL, T0, rows, 8), 0, "all closed: none listed");
	clients_gen_free(cs, g);
	clients_free(cs);
}

/*
 * A worker with no journal slot of its own (slot -1: the master found none
 * free) counts nothing it cannot give back: every connection uncounted,
 * no count moved.
 */
static void
test_no_journal(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 1);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct cx c[4];

	f.lc[0].max_conn = 2;
	f.lc[0].client_max_conn = 1;
	g = clients_gen_new(cs, cfg, 2);
	if (!ok(g != NULL && clients_worker_init(g, -1) == 0, "no journal: a worker"))
		return;
	for (int i = 0; i < 4; i++) {
		c[i] = conn(g, 0, "10.0.0.1", T0);
		ok(c[i].hold == CLIENTS_NOHOLD && c[i].v == CLIENTS_UNTRACKED,
		    "no journal: connection %d admitted uncounted", i + 1);
	}
	is_uint(clients_listener_open(cs, "l0"), 0, "no journal: the listener's count stays 0");
	is_int(open_of(cs, cfg, "l0", "10.0.0.1"), -1, "no journal: the client holds nothing");
	for (int i = 0; i < 4; i++)
		clients_leave(g, c[i].hold);
	clients_slot_died(g, 0);	/* nothing of slot 0 was used */
	is_uint(clients_listener_open(cs, "l0"), 0, "no journal: still 0");
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* This process's shared memory in use, in KiB (RssShmem); -1: unknown. */
static long
rss_shmem_kib(void)
{
	char line[256];
	long v = -1;
	FILE *fp = fopen("/proc/self/status", "r");

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "RssShmem: %ld kB", &v) == 1)
			break;
	fclose(fp);
	return v;
}

/*
 * "show clients" over the largest table reads only the pages clients
 * wrote: reading a page of a shared mapping no one wrote would allocate
 * it, and a 16M-entry table is 512 MiB.
 */
static void
test_top_sparse(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 1);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct clients_row rows[4];
	struct cx c;
	long before, after;

	f.lc[0].client_max_conn = 10;
	f.lc[0].client_table_size = 16777216;
	g = clients_gen_new(cs, cfg, 1);
	if (!ok(g != NULL && clients_worker_init(g, 0) == 0, "sparse: a generation"))
		return;
	c = conn(g, 0, "10.1.2.3", T0);
	is_int(c.v, CLIENTS_OK, "sparse: one client");
	before = rss_shmem_kib();
	is_int(clients_top(cs, cfg, NULL, T0, rows, 4), 1, "sparse: it is listed");
	after = rss_shmem_kib();
	if (before < 0 || after < 0)
		skip(1, "no RssShmem in /proc/self/status");
	else
		ok(after - before < 1024, "sparse: the scan took %ld KiB of shared memory (< 1 MiB)",
		    after - before);
	clients_leave(g, c.hold);
	clients_gen_free(cs, g);
	clients_free(cs);
}

/* ---- across processes ---- */

#define NCHILD	4
#define NCLI	3
#define K	3
#define ITERS	200000

/* What the workers tell the test, in memory they share. */
struct shared {
	uint64_t	now[NCLI];	/* admitted, not closed yet, by client */
	uint64_t	max[NCLI];	/* the most seen at once */
	uint64_t	total;		/* admitted on the listener, not closed */
	uint64_t	total_max;
	uint64_t	over;		/* times a limit was seen passed */
	uint64_t	refused;
	uint64_t	ready;
};

static void
seen(uint64_t *max, uint64_t v)
{
	uint64_t m = __atomic_load_n(max, __ATOMIC_RELAXED);

	while (v > m && !__atomic_compare_exchange_n(max, &m, v, 0, __ATOMIC_RELAXED,
	    __ATOMIC_RELAXED))
		;
}

static const char *const hammer_hosts[NCLI] = { "10.5.0.1", "2001:db8:5::1", "10.5.0.3" };

/* A worker: connections opened and closed at random, 4 at most at once. */
static void
hammer(struct clients_gen *g, int slot, struct shared *sh, long iters)
{
	struct { struct cx c; int cli; } held[4];
	int nheld = 0;
	unsigned seed = 7919u * (unsigned)(slot + 1);

	if (clients_worker_init(g, slot) != 0)
		_exit(3);
	for (long i = 0; iters < 0 || i < iters; i++) {
		if (nheld < 4 && (nheld == 0 || rand_r(&seed) % 2 == 0)) {
			int cli = rand_r(&seed) % NCLI;
			struct cx c = conn(g, 0, hammer_hosts[cli], T0);
			uint64_t v, t;

			if (c.v == CLIENTS_OK) {
				v = __atomic_add_fetch(&sh->now[cli], 1, __ATOMIC_SEQ_CST);
				t = __atomic_add_fetch(&sh->total, 1, __ATOMIC_SEQ_CST);
				if (v > K || t > 6)
					__atomic_add_fetch(&sh->over, 1, __ATOMIC_SEQ_CST);
				seen(&sh->max[cli], v);
				seen(&sh->total_max, t);
				held[nheld].c = c;
				held[nheld++].cli = cli;
			} else if (c.v == CLIENTS_UNTRACKED) {
				__atomic_add_fetch(&sh->over, 1000000, __ATOMIC_SEQ_CST);
				clients_leave(g, c.hold);
			} else
				__atomic_add_fetch(&sh->refused, 1, __ATOMIC_RELAXED);
		} else {
			int j = rand_r(&seed) % nheld;

			/* The test's count goes down before the real one. */
			__atomic_sub_fetch(&sh->now[held[j].cli], 1, __ATOMIC_SEQ_CST);
			__atomic_sub_fetch(&sh->total, 1, __ATOMIC_SEQ_CST);
			clients_leave(g, held[j].c.hold);
			held[j] = held[--nheld];
		}
		if (i == 100)
			__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	}
	while (nheld > 0) {
		nheld--;
		__atomic_sub_fetch(&sh->now[held[nheld].cli], 1, __ATOMIC_SEQ_CST);
		__atomic_sub_fetch(&sh->total, 1, __ATOMIC_SEQ_CST);
		clients_leave(g, held[nheld].c.hold);
	}
}

static int
wait_ok(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Until the worker says it is ready: 1; 0 if it exited first. */
static int
wait_ready(struct shared *sh, pid_t pid)
{
	while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) == 0) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return 0;
		sched_yield();
	}
	return 1;
}

static void
test_processes(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, 1);
	struct clients *cs = clients_new();
	struct clients_gen *g;
	struct shared *sh;
	pid_t pid[NCHILD];
	int good = 0;

	f.lc[0].client_max_conn = K;
	f.lc[0].max_conn = 6;
	f.lc[0].client_table_size = 64;
	g = clients_gen_new(cs, cfg, NCHILD + 2);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g == NULL || sh == MAP_FAILED)
		bail_out("processes: %s", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	for (int i = 0; i < NCHILD; i++) {
		if ((pid[i] = fork()) == -1)
			bail_out("fork: %s", strerror(errno));
		if (pid[i] == 0) {
			hammer(g, i, sh, ITERS);
			_exit(0);
		}
	}
	for (int i = 0; i < NCHILD; i++)
		good += wait_ok(pid[i]);
	is_int(good, NCHILD, "%d workers, %d iterations each: exited cleanly", NCHILD, ITERS);
	is_uint(sh->over, 0, "no client past %d open, the listener never past 6, none untracked", K);
	ok(sh->max[0] == K || sh->max[1] == K || sh->max[2] == K,
	    "a client reached the limit (%ju %ju %ju)", (uintmax_t)sh->max[0],
	    (uintmax_t)sh->max[1], (uintmax_t)sh->max[2]);
	ok(sh->refused > 0, "and refusals happened (%ju)", (uintmax_t)sh->refused);
	is_uint(clients_listener_open(cs, "l0"), 0, "at the end: the listener's count is 0");
	is_uint(open_sum(cs, cfg, T0), 0, "at the end: every client's count is 0");
	for (int i = 0; i < NCHILD; i++)
		clients_slot_died(g, i);
	is_uint(clients_listener_open(cs, "l0"), 0, "clean journals give nothing back");

	/* A worker killed while it holds counts. */
	memset(sh, 0, sizeof(*sh));
	if ((pid[0] = fork()) == -1)
		bail_out("fork: %s", strerror(errno));
	if (pid[0] == 0) {
		struct cx c[3];

		if (clients_worker_init(g, NCHILD) != 0)
			_exit(3);
		c[0] = conn(g, 0, "10.6.0.1", T0);
		c[1] = conn(g, 0, "10.6.0.1", T0);
		c[2] = conn(g, 0, "10.6.0.2", T0);
		__atomic_store_n(&sh->ready, c[0].v == CLIENTS_OK && c[1].v == CLIENTS_OK &&
		    c[2].v == CLIENTS_OK ? 1 : 2, __ATOMIC_SEQ_CST);
		for (;;)
			pause();
	}
	if (!wait_ready(sh, pid[0]))
		bail_out("the worker exited before it was ready");
	is_uint(sh->ready, 1, "a worker holds 3 connections");
	is_uint(clients_listener_open(cs, "l0"), 3, "... the listener counts 3");
	is_int(open_of(cs, cfg, "l0", "10.6.0.1"), 2, "... 10.6.0.1 has 2");
	kill(pid[0], SIGKILL);
	wait_ok(pid[0]);
	is_uint(clients_listener_open(cs, "l0"), 3, "killed: the counts stay until given back");
	clients_slot_died(g, NCHILD);
	is_uint(clients_listener_open(cs, "l0"), 0, "slot_died: the listener's count is 0");
	is_uint(open_sum(cs, cfg, T0), 0, "slot_died: every client's count is 0");

	/* Killed at a random point of its work: no count stays high. */
	for (int round = 1; round <= 5; round++) {
		memset(sh, 0, sizeof(*sh));
		if ((pid[0] = fork()) == -1)
			bail_out("fork: %s", strerror(errno));
		if (pid[0] == 0) {
			hammer(g, NCHILD + 1, sh, -1);
			_exit(0);
		}
		/* Let it run a while: until it says so, then some more. */
		if (!wait_ready(sh, pid[0]))
			bail_out("the worker exited before it was ready");
		for (int spin = 0; spin < 20000 * round; spin++)
			(void)clients_listener_open(cs, "l0");
		kill(pid[0], SIGKILL);
		wait_ok(pid[0]);
		clients_slot_died(g, NCHILD + 1);
		is_uint(clients_listener_open(cs, "l0"), 0,
		    "killed at random (%d): the listener's count is 0", round);
		is_uint(open_sum(cs, cfg, T0), 0,
		    "killed at random (%d): every client's count is 0", round);
	}
	clients_gen_free(cs, g);
	clients_free(cs);
	munmap(sh, sizeof(*sh));
}

int
main(void)
{
	test_no_limit();
	test_listener_limit();
	test_client_limit();
	test_rate();
	test_both();
	test_ipv6();
	test_full_table();
	test_stale_rate();
	test_reload();
	test_slot_died();
	test_top();
	test_no_journal();
	test_top_sparse();
	test_processes();
	return done_testing();
}
