/*
 * stats.c: the shared statistics (stats.h): a generation's region and its
 * slots, the master's registry of live regions, the retired totals, and
 * the sums that make a view.
 *
 * A region is one anonymous shared mapping.  Each slot is laid out alike:
 *
 *	struct stats_wcount			the worker's own
 *	struct stats_lcount	[nl]		one per listener
 *	struct stats_bcount	[nb0] [nb1] ...	each listener's backends
 *
 * and starts on a STATS_ALIGN boundary, so two workers never write the
 * same cache line (nor a pair of them, which the adjacent-line prefetcher
 * fetches together).  The master reserves room for CONFIG_MAX_WORKERS
 * slots (SIGTTIN may grow a generation up to that) with MAP_NORESERVE:
 * untouched pages of a shared mapping cost nothing, a worker touches only
 * its own slot, and the master reads only the slots it handed out
 * (stats_slot_use), so the memory used is that of the slots in use.  For
 * a config of 2 listeners with 4 backends in all a slot is 1,024 bytes:
 * 256 KiB of address space per generation, a page or so per worker.
 *
 * The retired totals are kept by listener name and by (listener name,
 * backend address).  Their entries are made when a generation starts, so
 * the fold when it ends allocates nothing and cannot fail.
 */
#include <sys/mman.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define STATS_ALIGN	128	/* a slot's alignment and the multiple of its size */

/* Upper bounds of the connect-time buckets, in seconds: 100 us .. 2.5 s. */
const double stats_hist_le[STATS_HIST_N - 1] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
};

/* One listener of a generation: its name, where its counters are in a slot. */
struct stats_gl {
	char		*name;		/* owned */
	size_t		 loff;		/* its stats_lcount, from a slot's start */
	size_t		 boff;		/* its backends' stats_bcount array */
	size_t		 nb;
	char		**addr;		/* owned, nb of them: the backends as configured */
	size_t		 rl;		/* its entry in the retired listeners */
	size_t		*rb;		/* owned, nb of them: ... in the retired backends */
};

struct stats_gen {
	unsigned char	*base;		/* the shared mapping, maplen bytes */
	size_t		 maplen;
	size_t		 slotlen;	/* a multiple of STATS_ALIGN */
	int		 nslots;
	int		 used;		/* slots 0..used-1 may hold counts */
	unsigned	 gen;
	struct stats_gl	*l;		/* owned, nl of them */
	size_t		 nl;
	struct stats_gen *next;		/* in the registry's live list */
};

/* A listener / a backend that a retired generation counted. */
struct stats_rl {
	char		*name;		/* owned */
	struct stats_lcount c;		/* totals only; the gauges stay 0 */
};

struct stats_rb {
	char		*lname;		/* owned */
	char		*addr;		/* owned */
	struct stats_bcount c;
};

struct stats {
	struct stats_gen *live;		/* registered and not retired, newest first */
	struct stats_rl	*rl;		/* owned, nrl of them */
	size_t		 nrl;
	struct stats_rb	*rb;		/* owned, nrb of them */
	size_t		 nrb;
};

static size_t
align_up(size_t n)
{
	return (n + STATS_ALIGN - 1) / STATS_ALIGN * STATS_ALIGN;
}

static void
gen_meta_free(struct stats_gen *g)
{
	for (size_t i = 0; i < g->nl; i++) {
		for (size_t k = 0; k < g->l[i].nb; k++)
			free(g->l[i].addr[k]);
		free(g->l[i].addr);
		free(g->l[i].rb);
		free(g->l[i].name);
	}
	free(g->l);
	free(g);
}

struct stats_gen *
stats_gen_new(const struct config *cfg, unsigned gen, int nslots)
{
	struct stats_gen *g;
	size_t off, saved;

	if (nslots <= 0 || nslots > CONFIG_MAX_WORKERS) {
		errno = EINVAL;
		return NULL;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->gen = gen;
	g->nslots = nslots;
	if (cfg->nlisteners > 0 &&
	    (g->l = calloc(cfg->nlisteners, sizeof(*g->l))) == NULL)
		goto fail;
	off = sizeof(struct stats_wcount);
	for (size_t i = 0; i < cfg->nlisteners; i++, g->nl++) {
		g->l[i].loff = off;
		off += sizeof(struct stats_lcount);
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct listener_conf *lc = &cfg->listeners[i];
		struct stats_gl *gl = &g->l[i];

		if ((gl->name = strdup(lc->name)) == NULL)
			goto fail;
		gl->boff = off;
		if (lc->nbackends == 0)
			continue;
		/* nbackends <= UPSTREAM_MAX and nlisteners is small: no overflow. */
		off += lc->nbackends * sizeof(struct stats_bcount);
		if ((gl->addr = calloc(lc->nbackends, sizeof(*gl->addr))) == NULL ||
		    (gl->rb = calloc(lc->nbackends, sizeof(*gl->rb))) == NULL)
			goto fail;
		for (; gl->nb < lc->nbackends; gl->nb++)
			if ((gl->addr[gl->nb] = strdup(lc->backends[gl->nb].spec)) == NULL)
				goto fail;
	}
	g->slotlen = align_up(off);
	g->maplen = g->slotlen * (size_t)nslots;
	g->base = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g->base == MAP_FAILED)
		goto fail;
	return g;
fail:
	saved = errno;
	gen_meta_free(g);
	errno = saved;
	return NULL;
}

void
stats_gen_free(struct stats_gen *g)
{
	if (g == NULL)
		return;
	munmap(g->base, g->maplen);
	gen_meta_free(g);
}

static unsigned char *
slot_base(const struct stats_gen *g, int slot)
{
	return g->base + (size_t)slot * g->slotlen;
}

struct stats_wcount *
stats_worker(struct stats_gen *g, int slot)
{
	if (slot < 0 || slot >= g->nslots)
		return NULL;
	return (struct stats_wcount *)slot_base(g, slot);
}

struct stats_lcount *
stats_listener(struct stats_gen *g, int slot, size_t li)
{
	if (slot < 0 || slot >= g->nslots || li >= g->nl)
		return NULL;
	return (struct stats_lcount *)(slot_base(g, slot) + g->l[li].loff);
}

struct stats_bcount *
stats_backends(struct stats_gen *g, int slot, size_t li)
{
	if (slot < 0 || slot >= g->nslots || li >= g->nl)
		return NULL;
	return (struct stats_bcount *)(slot_base(g, slot) + g->l[li].boff);
}

int
stats_slots(const struct stats_gen *g)
{
	return g->nslots;
}

void
stats_slot_use(struct stats_gen *g, int slot)
{
	if (slot >= 0 && slot < g->nslots && slot >= g->used)
		g->used = slot + 1;
}

void
stats_slot_died(struct stats_gen *g, int slot)
{
	if (slot < 0 || slot >= g->nslots)
		return;
	stats_set(&stats_worker(g, slot)->conns, 0);
	for (size_t i = 0; i < g->nl; i++) {
		struct stats_bcount *b = stats_backends(g, slot, i);

		stats_set(&stats_listener(g, slot, i)->active, 0);
		for (size_t k = 0; k < g->l[i].nb; k++) {
			stats_set(&b[k].active, 0);
			stats_set(&b[k].passive_down, 0);
		}
	}
}

int
stats_hist_bucket(double secs)
{
	int i;

	for (i = 0; i < STATS_HIST_N - 1; i++)
		if (secs <= stats_hist_le[i])
			return i;
	return STATS_HIST_N - 1;	/* +Inf, and NaN */
}

/* --- sums --- */

/* to += from; from may be a shared slot.  gauges: add the gauges too. */
static void
lcount_add(struct stats_lcount *to, const struct stats_lcount *from, int gauges)
{
	to->accepted += stats_read(&from->accepted);
	if (gauges)
		to->active += stats_read(&from->active);
	for (int r = 0; r < STATS_NREASONS; r++)
		to->closed[r] += stats_read(&from->closed[r]);
	to->bytes_in += stats_read(&from->bytes_in);
	to->bytes_out += stats_read(&from->bytes_out);
	to->proxy_rejected += stats_read(&from->proxy_rejected);
	for (int r = 0; r < REFUSE_N; r++)
		to->refused[r] += stats_read(&from->refused[r]);
	to->untracked += stats_read(&from->untracked);
}

static void
bcount_add(struct stats_bcount *to, const struct stats_bcount *from, int gauges)
{
	if (gauges) {
		to->active += stats_read(&from->active);
		to->passive_down += stats_read(&from->passive_down);
	}
	to->total += stats_read(&from->total);
	to->connect_failures += stats_read(&from->connect_failures);
	to->retries += stats_read(&from->retries);
	for (int i = 0; i < STATS_HIST_N; i++)
		to->connect_hist[i] += stats_read(&from->connect_hist[i]);
	to->connect_usec += stats_read(&from->connect_usec);
}

/* Listener li of g, summed over the slots handed out; O(used). */
static void
gen_listener_sum(const struct stats_gen *g, size_t li, struct stats_lcount *to,
    int gauges)
{
	for (int s = 0; s < g->used; s++)
		lcount_add(to, (const struct stats_lcount *)(slot_base(g, s) +
		    g->l[li].loff), gauges);
}

static void
gen_backend_sum(const struct stats_gen *g, size_t li, size_t k,
    struct stats_bcount *to, int gauges)
{
	for (int s = 0; s < g->used; s++)
		bcount_add(to, (const struct stats_bcount *)(slot_base(g, s) +
		    g->l[li].boff) + k, gauges);
}

/* --- the registry --- */

struct stats *
stats_new(void)
{
	return calloc(1, sizeof(struct stats));
}

void
stats_free(struct stats *st)
{
	struct stats_gen *g;

	if (st == NULL)
		return;
	while ((g = st->live) != NULL) {
		st->live = g->next;
		stats_gen_free(g);
	}
	for (size_t i = 0; i < st->nrl; i++)
		free(st->rl[i].name);
	for (size_t i = 0; i < st->nrb; i++) {
		free(st->rb[i].lname);
		free(st->rb[i].addr);
	}
	free(st->rl);
	free(st->rb);
	free(st);
}

/* The retired entry of listener name, made when missing.  0, or -1. */
static int
retired_listener(struct stats *st, const char *name, size_t *idx)
{
	struct stats_rl *v;

	for (size_t i = 0; i < st->nrl; i++)
		if (strcmp(st->rl[i].name, name) == 0) {
			*idx = i;
			return 0;
		}
	if ((v = realloc(st->rl, (st->nrl + 1) * sizeof(*v))) == NULL)
		return -1;
	st->rl = v;
	memset(&v[st->nrl], 0, sizeof(v[st->nrl]));
	if ((v[st->nrl].name = strdup(name)) == NULL)
		return -1;
	*idx = st->nrl++;
	return 0;
}

static int
retired_backend(struct stats *st, const char *lname, const char *addr, size_t *idx)
{
	struct stats_rb *v;

	for (size_t i = 0; i < st->nrb; i++)
		if (strcmp(st->rb[i].lname, lname) == 0 &&
		    strcmp(st->rb[i].addr, addr) == 0) {
			*idx = i;
			return 0;
		}
	if ((v = realloc(st->rb, (st->nrb + 1) * sizeof(*v))) == NULL)
		return -1;
	st->rb = v;
	memset(&v[st->nrb], 0, sizeof(v[st->nrb]));
	if ((v[st->nrb].lname = strdup(lname)) == NULL ||
	    (v[st->nrb].addr = strdup(addr)) == NULL) {
		free(v[st->nrb].lname);
		return -1;
	}
	*idx = st->nrb++;
	return 0;
}

int
stats_gen_start(struct stats *st, struct stats_gen *g)
{
	for (size_t i = 0; i < g->nl; i++) {
		struct stats_gl *gl = &g->l[i];

		if (retired_listener(st, gl->name, &gl->rl) == -1)
			return -1;
		for (size_t k = 0; k < gl->nb; k++)
			if (retired_backend(st, gl->name, gl->addr[k], &gl->rb[k]) == -1)
				return -1;
	}
	g->next = st->live;
	st->live = g;
	return 0;
}

void
stats_retire(struct stats *st, struct stats_gen *g)
{
	struct stats_gen **pp;

	for (pp = &st->live; *pp != NULL && *pp != g; pp = &(*pp)->next)
		;
	if (*pp == NULL)
		return;		/* not registered: nothing of it was shown */
	*pp = g->next;
	g->next = NULL;
	for (size_t i = 0; i < g->nl; i++) {
		const struct stats_gl *gl = &g->l[i];

		gen_listener_sum(g, i, &st->rl[gl->rl].c, 0);
		for (size_t k = 0; k < gl->nb; k++)
			gen_backend_sum(g, i, k, &st->rb[gl->rb[k]].c, 0);
	}
}

/* Listener name in g; NULL when g has none of that name. */
static const struct stats_gl *
gen_find(const struct stats_gen *g, const char *name, size_t *li)
{
	for (size_t i = 0; i < g->nl; i++)
		if (strcmp(g->l[i].name, name) == 0) {
			*li = i;
			return &g->l[i];
		}
	return NULL;
}

int
stats_collect(const struct stats *st, const struct config *cfg,
    struct stats_view *v)
{
	const struct stats_gen *g;
	const struct stats_gl *gl;
	size_t nb = 0, bi = 0, li;

	v->l = NULL;
	v->b = NULL;
	v->nl = v->nb = 0;
	for (size_t i = 0; i < cfg->nlisteners; i++)
		nb += cfg->listeners[i].nbackends;
	if ((cfg->nlisteners > 0 &&
	    (v->l = calloc(cfg->nlisteners, sizeof(*v->l))) == NULL) ||
	    (nb > 0 && (v->b = calloc(nb, sizeof(*v->b))) == NULL)) {
		free(v->l);
		v->l = NULL;
		return -1;
	}
	v->nl = cfg->nlisteners;
	v->nb = nb;
	/* O(listeners x (retired + generations x listeners)): all small. */
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct listener_conf *lc = &cfg->listeners[i];
		struct stats_lview *lv = &v->l[i];

		lv->name = lc->name;
		lv->listen = lc->listen;
		lv->mode = lc->mode;
		for (size_t r = 0; r < st->nrl; r++)
			if (strcmp(st->rl[r].name, lc->name) == 0)
				lcount_add(&lv->c, &st->rl[r].c, 0);
		for (g = st->live; g != NULL; g = g->next)
			if (gen_find(g, lc->name, &li) != NULL)
				gen_listener_sum(g, li, &lv->c, 1);
		for (size_t k = 0; k < lc->nbackends; k++, bi++) {
			const struct backend_conf *bc = &lc->backends[k];
			struct stats_bview *bv = &v->b[bi];

			bv->li = i;
			bv->addr = bc->spec;
			bv->backup = bc->backup;
			bv->weight = bc->weight;
			bv->state = BACKEND_UP;
			bv->why = "";
			bv->check_last = -1;
			bv->check_at = 0;
			for (size_t r = 0; r < st->nrb; r++)
				if (strcmp(st->rb[r].lname, lc->name) == 0 &&
				    strcmp(st->rb[r].addr, bc->spec) == 0)
					bcount_add(&bv->c, &st->rb[r].c, 0);
			for (g = st->live; g != NULL; g = g->next) {
				if ((gl = gen_find(g, lc->name, &li)) == NULL)
					continue;
				for (size_t gk = 0; gk < gl->nb; gk++)
					if (strcmp(gl->addr[gk], bc->spec) == 0)
						gen_backend_sum(g, li, gk, &bv->c, 1);
			}
		}
	}
	return 0;
}

void
stats_view_free(struct stats_view *v)
{
	free(v->l);
	free(v->b);
	free(v->w);
	v->l = NULL;
	v->b = NULL;
	v->w = NULL;
	v->nl = v->nb = v->nw = 0;
}
