/*
 * test_stats.c: unit tests for src/stats.c, the shared statistics: a
 * region's layout, the sums across slots and generations, the fold when a
 * generation retires, the gauges of a dead worker, the matching by
 * listener name and backend address across a config change, the refusals
 * by reason and the untracked admissions, and the connect-time buckets.  Configurations are built in place: the module
 * reads only names, modes and backend specs.
 */
#include <sys/wait.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"
#include "tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXL		4
#define MAXB		8

/* A config of up to MAXL listeners with up to MAXB backends each. */
struct fixture {
	struct config		 cfg;
	struct listener_conf	 lc[MAXL];
	struct backend_conf	 bc[MAXL][MAXB];
	char			 name[MAXL][32];
	char			 spec[MAXL][MAXB][32];
};

/*
 * desc: "name:b1,b2 name2: name3:b1" -- a listener per word, its backends
 * after the colon (none: echo).
 */
static struct config *
fixture(struct fixture *f, const char *desc)
{
	char buf[256], *word, *save, *colon, *b, *bsave;
	size_t i = 0;

	memset(f, 0, sizeof(*f));
	snprintf(buf, sizeof(buf), "%s", desc);
	for (word = strtok_r(buf, " ", &save); word != NULL && i < MAXL;
	    word = strtok_r(NULL, " ", &save), i++) {
		struct listener_conf *lc = &f->lc[i];

		if ((colon = strchr(word, ':')) != NULL)
			*colon++ = '\0';
		snprintf(f->name[i], sizeof(f->name[i]), "%s", word);
		lc->name = f->name[i];
		lc->listen = f->name[i];
		lc->mode = MODE_ECHO;
		lc->backends = f->bc[i];
		for (b = colon != NULL ? strtok_r(colon, ",", &bsave) : NULL;
		    b != NULL && lc->nbackends < MAXB; b = strtok_r(NULL, ",", &bsave)) {
			snprintf(f->spec[i][lc->nbackends], 32, "%s", b);
			f->bc[i][lc->nbackends].spec = f->spec[i][lc->nbackends];
			f->bc[i][lc->nbackends].weight = 1;
			lc->mode = MODE_PROXY;
			lc->nbackends++;
		}
	}
	f->cfg.listeners = f->lc;
	f->cfg.nlisteners = i;
	f->cfg.workers = 2;
	return &f->cfg;
}

static const struct stats_lview *
lrow(const struct stats_view *v, const char *name)
{
	for (size_t i = 0; i < v->nl; i++)
		if (strcmp(v->l[i].name, name) == 0)
			return &v->l[i];
	return NULL;
}

static const struct stats_bview *
brow(const struct stats_view *v, const char *lname, const char *addr)
{
	for (size_t i = 0; i < v->nb; i++)
		if (strcmp(v->l[v->b[i].li].name, lname) == 0 &&
		    strcmp(v->b[i].addr, addr) == 0)
			return &v->b[i];
	return NULL;
}

/* A range [p, p + n) of a slot, for the overlap check. */
struct range {
	uintptr_t	lo, hi;
	int		slot;
};

static void
test_layout(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, "a:h1:1,h2:2,h3:3 e: b:h4:4");
	struct stats_gen *g;
	struct range r[64];
	size_t nr = 0, bad = 0, out = 0;
	uintptr_t s0, s1;
	int n = 5;

	if ((g = stats_gen_new(cfg, 1, n)) == NULL)
		bail_out("stats_gen_new: %s", strerror(errno));
	is_int(stats_slots(g), n, "the region has the slots asked for");
	for (int s = 0; s < n; s++) {
		r[nr++] = (struct range){ (uintptr_t)stats_worker(g, s),
		    (uintptr_t)(stats_worker(g, s) + 1), s };
		for (size_t li = 0; li < cfg->nlisteners; li++) {
			r[nr++] = (struct range){ (uintptr_t)stats_listener(g, s, li),
			    (uintptr_t)(stats_listener(g, s, li) + 1), s };
			if (cfg->listeners[li].nbackends > 0)
				r[nr++] = (struct range){ (uintptr_t)stats_backends(g, s, li),
				    (uintptr_t)(stats_backends(g, s, li) +
				    cfg->listeners[li].nbackends), s };
		}
	}
	for (size_t i = 0; i < nr; i++)
		for (size_t k = i + 1; k < nr; k++)
			if (r[i].lo < r[k].hi && r[k].lo < r[i].hi)
				bad++;
	is_uint(bad, 0, "no two counter blocks overlap (%zu blocks over %d slots)", nr, n);
	s0 = (uintptr_t)stats_worker(g, 0);
	s1 = (uintptr_t)stats_worker(g, 1);
	for (size_t i = 0; i < nr; i++) {
		uintptr_t lo = s0 + (s1 - s0) * (uintptr_t)r[i].slot;

		if (r[i].lo < lo || r[i].hi > lo + (s1 - s0))
			out++;
	}
	is_uint(out, 0, "every block lies inside its own slot");
	ok((s1 - s0) % 128 == 0 && s0 % 128 == 0,
	    "slots start on 128-byte boundaries: no cache line shared (slot %zu bytes)",
	    (size_t)(s1 - s0));
	/* Every byte of every slot is writable: the mapping covers them all. */
	for (int s = 0; s < n; s++)
		memset(stats_worker(g, s), 0xa5, s1 - s0);
	ok(1, "every slot written through without a fault");
	ok(stats_worker(g, n) == NULL && stats_worker(g, -1) == NULL,
	    "a slot out of range: NULL");
	ok(stats_listener(g, 0, cfg->nlisteners) == NULL &&
	    stats_backends(g, 0, cfg->nlisteners) == NULL,
	    "a listener out of range: NULL");
	stats_gen_free(g);

	errno = 0;
	ok(stats_gen_new(cfg, 1, 0) == NULL && errno == EINVAL, "0 slots: EINVAL");
	errno = 0;
	ok(stats_gen_new(cfg, 1, CONFIG_MAX_WORKERS + 1) == NULL && errno == EINVAL,
	    "more than CONFIG_MAX_WORKERS slots: EINVAL");
	if ((g = stats_gen_new(cfg, 1, CONFIG_MAX_WORKERS)) == NULL)
		bail_out("stats_gen_new: %s", strerror(errno));
	ok(stats_worker(g, CONFIG_MAX_WORKERS - 1) != NULL, "CONFIG_MAX_WORKERS slots fit");
	stats_gen_free(g);
}

/* Counts written into slots 0 and 2 sum up; a slot never handed out is not read. */
static void
test_sums(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, "a:h1:1,h2:2 e:");
	struct stats *st = stats_new();
	struct stats_gen *g = stats_gen_new(cfg, 1, 4);
	static const int written[] = { 0, 2, 3 };
	struct stats_view v;
	const struct stats_bview *b;
	const struct stats_lview *l;

	if (st == NULL || g == NULL || stats_gen_start(st, g) == -1)
		bail_out("setup: %s", strerror(errno));
	stats_slot_use(g, 0);
	stats_slot_use(g, 2);
	for (size_t i = 0; i < NELEM(written); i++) {
		int s = written[i];
		struct stats_lcount *lc = stats_listener(g, s, 0);
		struct stats_bcount *bc = stats_backends(g, s, 0);

		stats_add(&lc->accepted, 10);
		stats_add(&lc->active, 2);
		stats_add(&lc->closed[3], 5);
		stats_add(&lc->bytes_in, 1000);
		stats_add(&lc->bytes_out, 2000);
		stats_add(&lc->proxy_rejected, 1);
		for (int r = 0; r < REFUSE_N; r++)
			stats_add(&lc->refused[r], (uint64_t)(r + 1) * (s + 1));
		stats_add(&lc->untracked, 3);
		stats_add(&bc[1].total, 7);
		stats_add(&bc[1].active, 1);
		stats_add(&bc[1].connect_hist[4], 3);
		stats_add(&bc[1].connect_usec, 300);
		stats_add(&stats_listener(g, s, 1)->bytes_in, 5);
	}
	/* Slot 3 is above every slot handed out: the sums never read it. */
	memset(&v, 0, sizeof(v));
	is_int(stats_collect(st, cfg, &v), 0, "collect");
	is_uint(v.nl, 2, "a row per listener");
	is_uint(v.nb, 2, "a row per backend");
	l = lrow(&v, "a");
	ok(l != NULL && l->c.accepted == 20 && l->c.active == 4 && l->c.closed[3] == 10 &&
	    l->c.bytes_in == 2000 && l->c.bytes_out == 4000 && l->c.proxy_rejected == 2,
	    "listener a: the two slots handed out, summed");
	{
		int refused_ok = l != NULL;

		/* Slots 0 and 2 added (r + 1) x 1 and (r + 1) x 3; slot 3 is not read. */
		for (int r = 0; l != NULL && r < REFUSE_N; r++)
			if (l->c.refused[r] != (uint64_t)(r + 1) * 4) {
				diag("refused[%d]: %ju, want %d", r,
				    (uintmax_t)l->c.refused[r], (r + 1) * 4);
				refused_ok = 0;
			}
		ok(refused_ok, "refusals: each reason summed over the slots handed out");
		is_uint(l != NULL ? l->c.untracked : 0, 6, "untracked summed");
		is_uint(lrow(&v, "e")->c.refused[REFUSE_DENY] + lrow(&v, "e")->c.untracked, 0,
		    "listener e refused nothing");
	}
	ok(l != NULL && strcmp(l->listen, "a") == 0 && l->mode == MODE_PROXY,
	    "its address and mode from the config");
	is_uint(lrow(&v, "e")->c.bytes_in, 10, "listener e summed apart");
	b = brow(&v, "a", "h2:2");
	ok(b != NULL && b->c.total == 14 && b->c.active == 2 && b->c.connect_hist[4] == 6 &&
	    b->c.connect_usec == 600, "backend h2:2 summed");
	ok(b != NULL && b->state == BACKEND_UP && b->weight == 1 && b->check_last == -1 &&
	    strcmp(b->why, "") == 0, "backends start up, configured weight, never checked");
	is_uint(brow(&v, "a", "h1:1")->c.total, 0, "backend h1:1 counted nothing");
	stats_view_free(&v);
	ok(v.l == NULL && v.b == NULL && v.nl == 0, "view freed");

	/* A second generation with the same names adds in. */
	struct stats_gen *g2 = stats_gen_new(cfg, 2, 4);

	if (g2 == NULL || stats_gen_start(st, g2) == -1)
		bail_out("gen 2: %s", strerror(errno));
	stats_slot_use(g2, 1);
	stats_add(&stats_listener(g2, 1, 0)->accepted, 1);
	stats_add(&stats_backends(g2, 1, 0)[1].total, 1);
	stats_collect(st, cfg, &v);
	is_uint(lrow(&v, "a")->c.accepted, 21, "two live generations: summed");
	is_uint(brow(&v, "a", "h2:2")->c.total, 15, "their backends too");
	stats_view_free(&v);
	stats_free(st);		/* unmaps both */
}

/* Retiring folds the totals in: none goes down; the gauges go. */
static void
test_fold(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, "a:h1:1");
	struct stats *st = stats_new();
	struct stats_gen *g1 = stats_gen_new(cfg, 1, 2), *g2 = stats_gen_new(cfg, 2, 2);
	struct stats_view before, after;
	struct stats_lcount *l1;
	struct stats_bcount *b1;

	if (st == NULL || g1 == NULL || g2 == NULL || stats_gen_start(st, g1) == -1 ||
	    stats_gen_start(st, g2) == -1)
		bail_out("setup: %s", strerror(errno));
	stats_slot_use(g1, 0);
	stats_slot_use(g1, 1);
	stats_slot_use(g2, 0);
	for (int s = 0; s < 2; s++) {
		l1 = stats_listener(g1, s, 0);
		b1 = stats_backends(g1, s, 0);
		stats_add(&l1->accepted, 100);
		stats_add(&l1->active, 3);
		stats_add(&l1->closed[0], 97);
		stats_add(&l1->bytes_in, 12345);
		stats_add(&l1->refused[REFUSE_CLIENT_RATE], 11);
		stats_add(&l1->refused[REFUSE_LISTENER_FULL], 1);
		stats_add(&l1->untracked, 5);
		stats_add(&b1->total, 50);
		stats_add(&b1->active, 3);
		stats_add(&b1->passive_down, 1);
		stats_add(&b1->connect_failures, 4);
		stats_add(&b1->retries, 2);
		stats_add(&b1->connect_hist[STATS_HIST_N - 1], 1);
	}
	stats_add(&stats_listener(g2, 0, 0)->accepted, 1);
	stats_add(&stats_listener(g2, 0, 0)->active, 1);
	stats_add(&stats_listener(g2, 0, 0)->refused[REFUSE_CLIENT_RATE], 1);
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	stats_collect(st, cfg, &before);
	stats_slot_died(g1, 0);
	stats_slot_died(g1, 1);
	stats_retire(st, g1);
	/* The region is gone: what the sums show now comes from the fold. */
	stats_gen_free(g1);
	stats_collect(st, cfg, &after);
	is_uint(before.l[0].c.accepted, 201, "before: 200 in gen 1, 1 in gen 2");
	is_uint(after.l[0].c.accepted, 201, "after the retire: the same total");
	ok(after.l[0].c.closed[0] == 194 && after.l[0].c.bytes_in == 24690,
	    "closes and bytes kept");
	ok(before.l[0].c.refused[REFUSE_CLIENT_RATE] == 23 &&
	    after.l[0].c.refused[REFUSE_CLIENT_RATE] == 23 &&
	    after.l[0].c.refused[REFUSE_LISTENER_FULL] == 2 &&
	    after.l[0].c.refused[REFUSE_DENY] == 0,
	    "refusals kept by reason across the retire (gen 1's 22 + gen 2's 1)");
	ok(before.l[0].c.untracked == 10 && after.l[0].c.untracked == 10,
	    "untracked kept across the retire");
	is_uint(after.l[0].c.active, 1, "active: gen 2's only");
	ok(after.b[0].c.total == 100 && after.b[0].c.connect_failures == 8 &&
	    after.b[0].c.retries == 4 && after.b[0].c.connect_hist[STATS_HIST_N - 1] == 2,
	    "backend totals kept");
	ok(after.b[0].c.active == 0 && after.b[0].c.passive_down == 0,
	    "backend gauges of the retired generation gone");
	stats_view_free(&before);
	stats_view_free(&after);

	/* Retiring one twice, or one never registered, changes nothing. */
	struct stats_gen *g3 = stats_gen_new(cfg, 3, 1);

	stats_retire(st, g3);
	stats_collect(st, cfg, &after);
	is_uint(after.l[0].c.accepted, 201, "retiring an unregistered region: no change");
	stats_view_free(&after);
	stats_gen_free(g3);
	stats_free(st);
}

static void
test_died(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, "a:h1:1,h2:2 e:");
	struct stats *st = stats_new();
	struct stats_gen *g = stats_gen_new(cfg, 1, 2);
	struct stats_view v;

	if (st == NULL || g == NULL || stats_gen_start(st, g) == -1)
		bail_out("setup: %s", strerror(errno));
	for (int s = 0; s < 2; s++) {
		stats_slot_use(g, s);
		stats_add(&stats_worker(g, s)->accepts, 9);
		stats_add(&stats_worker(g, s)->conns, 4);
		stats_add(&stats_listener(g, s, 0)->accepted, 9);
		stats_add(&stats_listener(g, s, 0)->active, 3);
		stats_add(&stats_listener(g, s, 1)->active, 1);
		stats_add(&stats_backends(g, s, 0)[0].active, 2);
		stats_add(&stats_backends(g, s, 0)[1].passive_down, 1);
		stats_add(&stats_backends(g, s, 0)[1].total, 6);
	}
	stats_slot_died(g, 1);
	ok(stats_read(&stats_worker(g, 1)->conns) == 0 &&
	    stats_read(&stats_worker(g, 1)->accepts) == 9,
	    "the dead slot: conns 0, accepts kept");
	ok(stats_read(&stats_worker(g, 0)->conns) == 4, "the other slot untouched");
	memset(&v, 0, sizeof(v));
	stats_collect(st, cfg, &v);
	ok(v.l[0].c.active == 3 && v.l[1].c.active == 1 && v.l[0].c.accepted == 18,
	    "listener gauges: the live slot's only; totals kept");
	ok(brow(&v, "a", "h1:1")->c.active == 2 && brow(&v, "a", "h2:2")->c.passive_down == 1 &&
	    brow(&v, "a", "h2:2")->c.total == 12, "backend gauges: the live slot's only");
	stats_view_free(&v);
	stats_slot_died(g, 7);	/* out of range: ignored */
	ok(1, "a slot out of range: ignored");
	stats_free(st);
}

/*
 * Generation 1: listeners a (x, y), b (echo), c (z).  Generation 2: a
 * gains backend w, b is renamed b2, c is removed.  Generation 3 brings c
 * back.
 */
static void
test_config_change(void)
{
	struct fixture f1, f2, f3;
	struct config *c1 = fixture(&f1, "a:x:1,y:1 b: c:z:1");
	struct config *c2 = fixture(&f2, "b2: a:x:1,y:1,w:1");
	struct config *c3 = fixture(&f3, "a:x:1 c:z:1");
	struct stats *st = stats_new();
	struct stats_gen *g1 = stats_gen_new(c1, 1, 1), *g2;
	struct stats_view v;

	if (st == NULL || g1 == NULL || stats_gen_start(st, g1) == -1)
		bail_out("setup: %s", strerror(errno));
	/* The region copied the names: the config may change or go. */
	stats_slot_use(g1, 0);
	stats_add(&stats_listener(g1, 0, 0)->accepted, 10);	/* a */
	stats_add(&stats_backends(g1, 0, 0)[0].total, 4);	/* a x */
	stats_add(&stats_backends(g1, 0, 0)[1].total, 6);	/* a y */
	stats_add(&stats_listener(g1, 0, 1)->accepted, 20);	/* b */
	stats_add(&stats_listener(g1, 0, 2)->accepted, 30);	/* c */
	stats_add(&stats_backends(g1, 0, 2)[0].total, 30);	/* c z */
	memset(&f1, 'X', sizeof(f1));	/* gone, as a freed config is */

	if ((g2 = stats_gen_new(c2, 2, 1)) == NULL || stats_gen_start(st, g2) == -1)
		bail_out("gen 2: %s", strerror(errno));
	stats_slot_use(g2, 0);
	stats_add(&stats_listener(g2, 0, 0)->accepted, 1);	/* b2 */
	stats_add(&stats_listener(g2, 0, 1)->accepted, 2);	/* a */
	stats_add(&stats_backends(g2, 0, 1)[0].total, 1);	/* a x */
	stats_add(&stats_backends(g2, 0, 1)[2].total, 5);	/* a w */

	memset(&v, 0, sizeof(v));
	stats_collect(st, c2, &v);
	is_uint(v.nl, 2, "rows for the current config only: c is gone");
	is_uint(lrow(&v, "a")->c.accepted, 12, "a: matched by name across the generations");
	is_uint(lrow(&v, "b2")->c.accepted, 1, "b renamed b2: counts from the rename on");
	ok(lrow(&v, "b") == NULL, "no row for the old name");
	is_uint(brow(&v, "a", "x:1")->c.total, 5, "a x: matched by address");
	is_uint(brow(&v, "a", "y:1")->c.total, 6, "a y: gen 1's");
	is_uint(brow(&v, "a", "w:1")->c.total, 5, "a w, added: its own only");
	ok(v.b[0].li == 1 && strcmp(v.l[v.b[0].li].name, "a") == 0,
	    "a backend row names its listener's row");
	stats_view_free(&v);

	stats_retire(st, g1);
	stats_gen_free(g1);
	stats_collect(st, c2, &v);
	ok(lrow(&v, "a")->c.accepted == 12 && brow(&v, "a", "x:1")->c.total == 5 &&
	    brow(&v, "a", "y:1")->c.total == 6, "the same after gen 1 retired");
	stats_view_free(&v);

	/* c comes back with its totals; a's backend y is gone from the rows. */
	stats_collect(st, c3, &v);
	is_uint(lrow(&v, "c")->c.accepted, 30, "c back: its retired totals");
	is_uint(brow(&v, "c", "z:1")->c.total, 30, "and its backend's");
	is_uint(v.nb, 2, "rows: a x, c z");
	ok(brow(&v, "a", "y:1") == NULL, "no row for a backend no longer configured");
	stats_view_free(&v);
	stats_free(st);
}

/* The region is shared: a forked child's adds reach the parent's sums. */
static void
test_shared(void)
{
	struct fixture f;
	struct config *cfg = fixture(&f, "a:");
	struct stats *st = stats_new();
	struct stats_gen *g = stats_gen_new(cfg, 1, 2);
	struct stats_view v;
	pid_t pid;
	int status;

	if (st == NULL || g == NULL || stats_gen_start(st, g) == -1)
		bail_out("setup: %s", strerror(errno));
	stats_slot_use(g, 1);
	if ((pid = fork()) == -1)
		bail_out("fork: %s", strerror(errno));
	if (pid == 0) {
		for (int i = 0; i < 1000; i++)
			stats_add(&stats_listener(g, 1, 0)->bytes_out, 3);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	memset(&v, 0, sizeof(v));
	stats_collect(st, cfg, &v);
	is_uint(v.l[0].c.bytes_out, 3000, "a child's counts, read by the parent");
	stats_view_free(&v);
	stats_free(st);
}

static void
test_hist(void)
{
	int rising = 1;

	for (int i = 1; i < STATS_HIST_N - 1; i++)
		rising &= stats_hist_le[i] > stats_hist_le[i - 1];
	ok(rising && stats_hist_le[0] > 0, "bucket bounds rise from above 0");
	is_int(stats_hist_bucket(0), 0, "0 s: the first bucket");
	is_int(stats_hist_bucket(-1), 0, "a negative time (clock step): the first bucket");
	for (int i = 0; i < STATS_HIST_N - 1; i++) {
		is_int(stats_hist_bucket(stats_hist_le[i]), i, "exactly %g s: bucket %d (le)",
		    stats_hist_le[i], i);
		is_int(stats_hist_bucket(nextafter(stats_hist_le[i], INFINITY)), i + 1,
		    "just above %g s: bucket %d", stats_hist_le[i], i + 1);
	}
	is_int(stats_hist_bucket(3600), STATS_HIST_N - 1, "an hour: +Inf");
	is_int(stats_hist_bucket(INFINITY), STATS_HIST_N - 1, "infinity: +Inf");
	is_int(stats_hist_bucket(NAN), STATS_HIST_N - 1, "NaN: +Inf, not a real bucket");
}

int
main(void)
{
	test_layout();
	test_sums();
	test_fold();
	test_died();
	test_config_change();
	test_shared();
	test_hist();
	return done_testing();
}
