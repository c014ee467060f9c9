/*
 * clients.c: the shared admission counts (clients.h).  Owns the master's
 * registry of listeners' counters and client tables (kept by listener
 * name), each generation's view of them and its workers' hold journals,
 * the workers' side of every count (enter, client, leave), the master's
 * give-back when a worker dies, and the "show clients" scan.
 *
 * Memory.  Everything shared is an anonymous shared mapping the master
 * makes before it forks the workers that use it:
 *
 *	counter	one page per listener name (only with max_connections):
 *		uint64_t open, the listener's connections across workers.
 *	table	per (listener name, client_table_size), only with
 *		max_conn_per_client or conn_rate_per_client, MAP_NORESERVE:
 *		size entries of 32 bytes, zero-filled by the kernel:
 *		  key	0 = empty; else ~raw, raw = 0xFF01000000000000 | addr
 *			for IPv4 (and IPv4-mapped IPv6), the top
 *			client_ipv6_prefix bits of the address for IPv6.
 *			ff01::/16 and ffff:ffff:ffff:ffff::/64 are multicast
 *			and never a TCP source, so no client is 0 and no IPv6
 *			client looks like an IPv4 one.
 *		  st	bit 63 "being reclaimed" (R), bits 32..62 a version,
 *			bits 0..31 the client's connections open.
 *		  tat	the rate's theoretical arrival time (GCRA), in
 *			microseconds of CLOCK_MONOTONIC (bits 8..63), tagged
 *			with the low 8 bits of the version (bits 0..7).
 *		  meta	an IPv6 key's prefix length, for "show clients".
 *		A key's entry is one of the 8 that follow its hash (a 64-bit
 *		multiplicative hash of key ^ salt, the salt drawn once by the
 *		registry), wrapping at the end.
 *	journal	per generation: nslots slots, each a 128-byte header (the
 *		high-water mark of the holds used, the reclaim in progress)
 *		and cfg->max_connections holds of 8 bytes: (listener index
 *		+ 1) << 32 | (entry index + 1), 0 = nothing.  A worker's
 *		private LIFO free list reuses low holds first, so the pages a
 *		worker touches are those its peak number of connections needs.
 * A config with no limit maps nothing: its generation's calls are one
 * test of a flag.
 *
 * Concurrency.  Workers change the shared words with compare-and-swap and
 * nothing else; the master only reads, but for the give-back of a dead
 * worker, which uses the same operations.
 *  - Counts (the listener's open, an entry's open): read, refuse at the
 *    limit without writing, else CAS +1.  A CAS succeeds only from the
 *    value it read, so two processes racing at the limit never both pass
 *    it: the second one's CAS fails, it reads the count the first one
 *    made and refuses.  A give-back is a CAS -1 that stops at 0.
 *  - Claiming an empty entry: CAS key 0 -> K.  Keys never go back to 0,
 *    so an entry once seen non-empty stays so; every claimer of K takes
 *    the first empty entry of the window and looks again after a lost
 *    CAS (and uses the entry when it lost to K itself), so two processes
 *    never claim two empty entries for one key.
 *  - Reclaiming a stale entry (no connection open, tat <= now): CAS st
 *    from a value with R clear and open 0 to R set and the version + 1;
 *    while R is set no one else writes the entry.  The reclaimer checks
 *    the tat again (a rate update may have landed meanwhile; then it puts
 *    st back as it was and looks further), writes key and tat, and clears
 *    R with a release store.  Reclaim cannot take an entry from under a
 *    connection: its CAS needs open == 0, and a connection's +1 is a CAS
 *    on the same word.
 *  - Using an entry: read st (acquire), then check the key, then CAS st
 *    with the version read.  If the CAS succeeds the version did not move
 *    since st was read, so no reclaim started, and the key read after it
 *    was still the entry's.  A rate update (CAS on tat) reads st again
 *    after it: the same version means the entry was the client's
 *    throughout; another one means it was reclaimed and the client looks
 *    again.  Both sides of that race are sequentially consistent (the
 *    reclaimer writes st then reads tat, the client writes tat then reads
 *    st), so at least one of them sees the other.
 *  - An entry seen with R set is waited for a short while (a reclaim is a
 *    few stores), then skipped as though it held another key.
 *  Two processes that reclaim two stale entries for one new client at
 *  the same instant may give it two entries; its counts are then split
 *  (looser, never stricter) until one of them goes stale.
 *
 * Full table and stale entries.  A client whose window holds neither its
 * key, nor an empty entry, nor a stale one is admitted uncounted
 * (CLIENTS_UNTRACKED): it is never refused because of other clients'
 * entries, and its connections count against nothing.  Stale entries are
 * taken only when a new client needs one, so an entry stays as long as
 * its window has room and "show clients" can list recent clients.
 *
 * The rate (conn_rate_per_client = N per window W): T = W / N in whole
 * microseconds, tolerance (N - 1) T, so a burst of N passes and the
 * (N + 1)th is refused.  An attempt passes if max(tat, now) - now <=
 * tolerance, and moves tat to max(tat, now) + T.  A refused attempt counts
 * too: it moves tat to now + N T (a full bucket, never further), so a
 * client that keeps trying above the rate stays refused, and one that
 * stops waits T for its next connection.
 *
 * kill -9.  A worker writes a hold in its journal slot BEFORE it changes
 * the shared count the hold names, and clears the hold only AFTER it gave
 * the count back.  A worker killed between the two leaves a hold whose
 * count was not (or no longer) taken: the master's give-back
 * (clients_slot_died) then gives back one count too many, which stops at
 * 0.  The other order would leave a count stuck high for the master's
 * life, and a stuck count refuses a client wrongly.  A worker also notes
 * in its slot's header the entry it is reclaiming, with the exact st it
 * set: the master clears R on that entry if it still holds that value, so
 * a worker killed in mid-reclaim does not lose the entry for good.
 *
 * Knows nothing of fds, loops or logs: linked into the master and the
 * workers, it must not depend on libev or log.c.
 *
 * About 1,000 lines, a fifth of them this comment, over the house's 600:
 * the table's protocol, the journal and the registry are one argument
 * about the same shared words, and parted they would export their
 * internals to each other.
 */
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"

#define WINDOW		8		/* entries a key may live in */
#define ROUNDS		8		/* lookups a client tries before untracked */
#define SPIN		1024		/* waits for a reclaim to end, then skip */
#define JALIGN		128		/* a journal slot's header and alignment */
#define HASH_MUL	UINT64_C(0x9E3779B97F4A7C15)

#define ST_R		(UINT64_C(1) << 63)
#define ST_VONE		(UINT64_C(1) << 32)
#define ST_VMASK	(UINT64_C(0x7fffffff) << 32)
#define ST_OPEN		UINT64_C(0xffffffff)
#define ST_VER(s)	((s) & ST_VMASK)
/*
 * tat: microseconds in bits 8..63, and in bits 0..7 the low bits of the
 * entry's version when it was written, so a rate update that read the
 * word before a reclaim cannot land on the new client's entry.
 */
#define TAT_US(t)	((t) >> 8)
#define TAT_TAG(t)	((t) & 0xff)
#define TAT_OF(us, s)	(((us) << 8) | ((ST_VER(s) >> 32) & 0xff))

#define RAW_V4		UINT64_C(0xFF01000000000000)

#define HOLD(li, e)	((uint64_t)((li) + 1) << 32 | (uint64_t)((e) + 1))
#define HOLD_LI(v)	((size_t)((v) >> 32) - 1)
#define HOLD_E(v)	((v) & UINT64_C(0xffffffff))	/* entry + 1; 0: none */

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax()	__builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax()	__asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax()	__asm__ __volatile__("" ::: "memory")
#endif

/* One client's entry in a shared table: 32 bytes. */
struct clients_entry {
	uint64_t	key;		/* 0 = empty */
	uint64_t	st;		/* R | version | open */
	uint64_t	tat;		/* us, CLOCK_MONOTONIC */
	uint64_t	meta;		/* IPv6: the key's prefix length */
};
_Static_assert(sizeof(struct clients_entry) == 32, "a table entry is 32 bytes");

/* A journal slot's header. */
struct clients_jhdr {
	uint64_t	hwm;		/* holds 0..hwm-1 may be set */
	uint64_t	reclaim;	/* HOLD(li, e) of a reclaim in progress; 0: none */
	uint64_t	reclaim_st;	/* ... and the st it set there */
};
_Static_assert(sizeof(struct clients_jhdr) <= JALIGN, "the header fits its room");

/* A listener's counter, kept by name while a generation uses it. */
struct clients_counter {
	char		*name;		/* owned */
	uint64_t	*open;		/* shared, a page */
	size_t		 maplen;
	unsigned	 refs;		/* generations using it */
	struct clients_counter *next;
};

/* A listener's client table, kept by (name, size). */
struct clients_table {
	char		*name;		/* owned */
	size_t		 size;		/* entries, a power of two */
	struct clients_entry *e;	/* shared, size of them */
	size_t		 maplen;
	unsigned	 refs;
	struct clients_table *next;
};

struct clients {
	uint64_t	 salt;
	struct clients_counter *counters;
	struct clients_table *tables;
};

/* One listener as a generation sees it. */
struct clients_gl {
	struct clients_counter *cnt;	/* NULL: max_connections off */
	uint64_t	 max;
	struct clients_table *tbl;	/* NULL: no per-client limit */
	struct clients_entry *tab;	/* tbl->e */
	uint64_t	 mask;
	unsigned	 shift;		/* 64 - log2(size) */
	uint64_t	 salt;
	uint64_t	 client_max;	/* 0 = off */
	uint64_t	 t_us;		/* the rate's interval; 0 = off */
	uint64_t	 tol_us;
	unsigned	 prefix6;
	int		 holds;		/* its connections take a hold */
};

struct clients_gen {
	int		 active;	/* some listener has a limit */
	struct clients_gl *l;		/* owned, nl of them; NULL when inactive */
	size_t		 nl;
	unsigned char	*journal;	/* shared, maplen bytes; NULL when inactive */
	size_t		 maplen;
	size_t		 slotlen;
	int		 nslots;
	uint32_t	 nholds;	/* holds per slot */
	/* a worker's own (clients_worker_init), in its copy of the struct */
	struct clients_jhdr *hdr;	/* its slot's header; NULL: no journal */
	uint64_t	*hold;		/* its slot's holds */
	uint32_t	*freel;		/* owned, a LIFO of free holds */
	uint32_t	 nfree;
};

static void *
shared_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static uint64_t
load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void
store(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/* CAS *p from *old to new; on failure *old is what *p holds. */
static int
cas(uint64_t *p, uint64_t *old, uint64_t new)
{
	return __atomic_compare_exchange_n(p, old, new, 0, __ATOMIC_SEQ_CST,
	    __ATOMIC_SEQ_CST);
}

/* *p + 1 unless it reached max (0: no max).  1 taken, 0 refused. */
static int
count_take(uint64_t *p, uint64_t max)
{
	uint64_t cur = load(p);

	do {
		if (max != 0 && cur >= max)
			return 0;
	} while (!cas(p, &cur, cur + 1));
	return 1;
}

/* *p - 1, stopping at 0. */
static void
count_give(uint64_t *p)
{
	uint64_t cur = load(p);

	while (cur > 0 && !cas(p, &cur, cur - 1))
		;
}

/* An entry's connections - 1, stopping at 0; the version stays. */
static void
entry_give(struct clients_entry *e)
{
	uint64_t s = load(&e->st);

	while ((s & ST_OPEN) > 0 && !(s & ST_R) && !cas(&e->st, &s, s - 1))
		;
}

/* --- the registry --- */

struct clients *
clients_new(void)
{
	struct clients *cs;
	struct timespec ts;

	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return NULL;
	if (getrandom(&cs->salt, sizeof(cs->salt), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(cs->salt)) {
		/* Early in boot: the salt only spreads keys, weakly is enough. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		cs->salt = (uint64_t)ts.tv_nsec * HASH_MUL ^ (uint64_t)ts.tv_sec ^
		    (uint64_t)getpid() << 32;
	}
	return cs;
}

static void
counter_put(struct clients *cs, struct clients_counter *c)
{
	struct clients_counter **pp;

	if (c == NULL || --c->refs > 0)
		return;
	for (pp = &cs->counters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	munmap(c->open, c->maplen);
	free(c->name);
	free(c);
}

static void
table_put(struct clients *cs, struct clients_table *t)
{
	struct clients_table **pp;

	if (t == NULL || --t->refs > 0)
		return;
	for (pp = &cs->tables; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	munmap(t->e, t->maplen);
	free(t->name);
	free(t);
}

void
clients_free(struct clients *cs)
{
	if (cs == NULL)
		return;
	/* Generations should be gone; unmap what one left anyway. */
	while (cs->counters != NULL) {
		cs->counters->refs = 1;
		counter_put(cs, cs->counters);
	}
	while (cs->tables != NULL) {
		cs->tables->refs = 1;
		table_put(cs, cs->tables);
	}
	free(cs);
}

static struct clients_counter *
counter_find(const struct clients *cs, const char *name)
{
	for (struct clients_counter *c = cs->counters; c != NULL; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static struct clients_table *
table_find(const struct clients *cs, const char *name, size_t size)
{
	for (struct clients_table *t = cs->tables; t != NULL; t = t->next)
		if (t->size == size && strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

/* name's counter, one more generation using it; NULL with errno set. */
static struct clients_counter *
counter_get(struct clients *cs, const char *name)
{
	struct clients_counter *c;
	long pg = sysconf(_SC_PAGESIZE);

	if ((c = counter_find(cs, name)) != NULL) {
		c->refs++;
		return c;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->maplen = pg > 0 ? (size_t)pg : 4096;
	if ((c->name = strdup(name)) == NULL || (c->open = shared_map(c->maplen)) == NULL) {
		free(c->name);
		free(c);
		return NULL;
	}
	c->refs = 1;
	c->next = cs->counters;
	cs->counters = c;
	return c;
}

static struct clients_table *
table_get(struct clients *cs, const char *name, size_t size)
{
	struct clients_table *t;

	if ((t = table_find(cs, name, size)) != NULL) {
		t->refs++;
		return t;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->size = size;
	t->maplen = size * sizeof(struct clients_entry);
	if ((t->name = strdup(name)) == NULL || (t->e = shared_map(t->maplen)) == NULL) {
		free(t->name);
		free(t);
		return NULL;
	}
	t->refs = 1;
	t->next = cs->tables;
	cs->tables = t;
	return t;
}

/* size rounded up to a power of two within the table's bounds. */
static size_t
table_size(unsigned size)
{
	size_t n = 64;

	while (n < size && n < ((size_t)1 << 24))
		n <<= 1;
	return n;
}

static unsigned
log2_of(size_t n)
{
	unsigned b = 0;

	while (((size_t)1 << b) < n)
		b++;
	return b;
}

/* The rate's interval and tolerance, in microseconds; 0, 0 when off. */
static void
rate_params(const struct listener_conf *lc, uint64_t *t_us, uint64_t *tol_us)
{
	*t_us = *tol_us = 0;
	if (lc->client_rate == 0 || lc->client_rate_ms == 0)
		return;
	*t_us = (uint64_t)lc->client_rate_ms * 1000 / lc->client_rate;
	if (*t_us == 0)
		*t_us = 1;
	*tol_us = (uint64_t)(lc->client_rate - 1) * *t_us;
}

static int
has_per_client(const struct listener_conf *lc)
{
	return lc->client_max_conn > 0 || (lc->client_rate > 0 && lc->client_rate_ms > 0);
}

struct clients_gen *
clients_gen_new(struct clients *cs, const struct config *cfg, int nslots)
{
	struct clients_gen *g;
	int saved, holds = 0;

	if (nslots <= 0 || nslots > CONFIG_MAX_WORKERS) {
		errno = EINVAL;
		return NULL;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].max_conn > 0 || has_per_client(&cfg->listeners[i]))
			g->active = 1;
	if (!g->active)
		return g;
	if ((g->l = calloc(cfg->nlisteners, sizeof(*g->l))) == NULL)
		goto fail;
	g->nl = cfg->nlisteners;	/* zeroed: clients_gen_free may run */
	for (size_t i = 0; i < g->nl; i++) {
		const struct listener_conf *lc = &cfg->listeners[i];
		struct clients_gl *gl = &g->l[i];
		size_t size;

		if (lc->max_conn > 0) {
			if ((gl->cnt = counter_get(cs, lc->name)) == NULL)
				goto fail;
			gl->max = lc->max_conn;
		}
		if (has_per_client(lc)) {
			size = table_size(lc->client_table_size);
			if ((gl->tbl = table_get(cs, lc->name, size)) == NULL)
				goto fail;
			gl->tab = gl->tbl->e;
			gl->mask = size - 1;
			gl->shift = 64 - log2_of(size);
			gl->salt = cs->salt;
			gl->client_max = lc->client_max_conn;
			rate_params(lc, &gl->t_us, &gl->tol_us);
			gl->prefix6 = lc->client_prefix6 >= 1 && lc->client_prefix6 <= 64 ?
			    lc->client_prefix6 : 64;
		}
		gl->holds = gl->cnt != NULL || gl->client_max > 0;
		holds |= gl->holds;
	}
	g->nslots = nslots;
	g->nholds = holds ? cfg->max_connections : 0;
	g->slotlen = (JALIGN + (size_t)g->nholds * sizeof(uint64_t) + JALIGN - 1) /
	    JALIGN * JALIGN;
	g->maplen = g->slotlen * (size_t)nslots;
	if ((g->journal = shared_map(g->maplen)) == NULL)
		goto fail;
	return g;
fail:
	saved = errno;
	clients_gen_free(cs, g);
	errno = saved;
	return NULL;
}

void
clients_gen_free(struct clients *cs, struct clients_gen *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->nl; i++) {
		counter_put(cs, g->l[i].cnt);
		table_put(cs, g->l[i].tbl);
	}
	if (g->journal != NULL)
		munmap(g->journal, g->maplen);
	free(g->l);
	free(g->freel);
	free(g);
}

static struct clients_jhdr *
jhdr(const struct clients_gen *g, int slot)
{
	return (struct clients_jhdr *)(g->journal + (size_t)slot * g->slotlen);
}

static uint64_t *
jholds(const struct clients_gen *g, int slot)
{
	return (uint64_t *)(g->journal + (size_t)slot * g->slotlen + JALIGN);
}

/* v's counts given back, as the connection's close would have. */
static void
hold_give(struct clients_gen *g, uint64_t v)
{
	size_t li = HOLD_LI(v);
	struct clients_gl *gl;

	if (li >= g->nl)
		return;		/* not a hold this generation writes */
	gl = &g->l[li];
	if (HOLD_E(v) != 0 && gl->tab != NULL && HOLD_E(v) - 1 <= gl->mask)
		entry_give(&gl->tab[HOLD_E(v) - 1]);
	if (gl->cnt != NULL)
		count_give(gl->cnt->open);
}

void
clients_slot_died(struct clients_gen *g, int slot)
{
	struct clients_jhdr *h;
	uint64_t *hold, hwm, v, s;

	if (!g->active || slot < 0 || slot >= g->nslots)
		return;
	h = jhdr(g, slot);
	hold = jholds(g, slot);
	hwm = load(&h->hwm);
	for (uint64_t i = 0; i < hwm && i < g->nholds; i++)
		if ((v = load(&hold[i])) != 0) {
			hold_give(g, v);
			store(&hold[i], 0);
		}
	if ((v = load(&h->reclaim)) != 0 && HOLD_LI(v) < g->nl) {
		struct clients_gl *gl = &g->l[HOLD_LI(v)];

		/*
		 * Died in mid-reclaim: if the entry still holds the st it set,
		 * no one else has touched it since; hand it back stale.
		 */
		s = load(&h->reclaim_st);
		if (gl->tab != NULL && HOLD_E(v) != 0 && HOLD_E(v) - 1 <= gl->mask) {
			struct clients_entry *e = &gl->tab[HOLD_E(v) - 1];

			if (load(&e->st) == s) {
				store(&e->tat, TAT_OF(0, s));
				cas(&e->st, &s, s & ~ST_R);
			}
		}
	}
	store(&h->reclaim, 0);
	store(&h->reclaim_st, 0);
	store(&h->hwm, 0);
}

uint64_t
clients_listener_open(const struct clients *cs, const char *listener)
{
	const struct clients_counter *c = counter_find(cs, listener);

	return c != NULL ? load(c->open) : 0;
}

/* --- a worker --- */

int
clients_worker_init(struct clients_gen *g, int slot)
{
	if (!g->active || slot == -1)
		return 0;	/* -1: no journal; every connection goes uncounted */
	if (slot < 0 || slot >= g->nslots) {
		errno = EINVAL;
		return -1;
	}
	free(g->freel);
	g->freel = NULL;
	g->nfree = 0;
	g->hdr = jhdr(g, slot);
	g->hold = jholds(g, slot);
	if (g->nholds == 0)
		return 0;
	if ((g->freel = malloc((size_t)g->nholds * sizeof(*g->freel))) == NULL) {
		g->hdr = NULL;
		errno = ENOMEM;
		return -1;
	}
	/* Popped from the end: hold 0 first. */
	for (uint32_t i = 0; i < g->nholds; i++)
		g->freel[i] = g->nholds - 1 - i;
	g->nfree = g->nholds;
	return 0;
}

int
clients_counts(const struct clients_gen *g, size_t li)
{
	return g->active && li < g->nl && (g->l[li].cnt != NULL || g->l[li].tab != NULL);
}

int
clients_per_client(const struct clients_gen *g, size_t li)
{
	return g->active && li < g->nl && g->l[li].tab != NULL;
}

enum clients_verdict
clients_enter(struct clients_gen *g, size_t li, uint32_t *hold)
{
	struct clients_gl *gl;
	uint32_t h;

	*hold = CLIENTS_NOHOLD;
	if (!g->active)
		return CLIENTS_OK;
	gl = &g->l[li];
	/* No free hold cannot happen while the worker keeps max_connections. */
	if (!gl->holds || g->nfree == 0)
		return CLIENTS_OK;
	h = g->freel[--g->nfree];
	if (h >= load(&g->hdr->hwm))
		store(&g->hdr->hwm, (uint64_t)h + 1);
	/* The hold first: a kill between the two gives back one too many. */
	store(&g->hold[h], HOLD(li, -1));
	if (gl->cnt != NULL && !count_take(gl->cnt->open, gl->max)) {
		store(&g->hold[h], 0);
		g->freel[g->nfree++] = h;
		return CLIENTS_LISTENER_FULL;
	}
	*hold = h;
	return CLIENTS_OK;
}

void
clients_leave(struct clients_gen *g, uint32_t hold)
{
	uint64_t v;

	if (hold == CLIENTS_NOHOLD || !g->active || hold >= g->nholds)
		return;
	/* The counts first, then the hold: never a count stuck high. */
	if ((v = load(&g->hold[hold])) != 0)
		hold_give(g, v);
	store(&g->hold[hold], 0);
	g->freel[g->nfree++] = hold;
}

/* sa's key under prefix6 (see the top of the file); 0: not an IP address. */
static uint64_t
client_key(const struct sockaddr *sa, unsigned prefix6)
{
	const struct sockaddr_in6 *s6;
	const uint8_t *b;
	uint64_t raw = 0;

	if (sa->sa_family == AF_INET) {
		raw = RAW_V4 | ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return ~raw;
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	s6 = (const struct sockaddr_in6 *)sa;
	b = s6->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		raw = RAW_V4 | (uint64_t)b[12] << 24 | (uint64_t)b[13] << 16 |
		    (uint64_t)b[14] << 8 | b[15];
		return ~raw;
	}
	for (int i = 0; i < 8; i++)
		raw = raw << 8 | b[i];
	raw &= ~UINT64_C(0) << (64 - prefix6);	/* prefix6 is 1..64 */
	return ~raw;
}

static size_t
key_hash(const struct clients_gl *gl, uint64_t key)
{
	uint64_t x = key ^ gl->salt;

	x ^= x >> 29;
	return (size_t)((x * HASH_MUL) >> gl->shift);
}

/* e's st once no reclaim holds it, or with R still set after SPIN waits. */
static uint64_t
st_settled(struct clients_entry *e)
{
	uint64_t s = load(&e->st);

	for (int i = 0; i < SPIN && (s & ST_R); i++) {
		cpu_relax();
		s = load(&e->st);
	}
	return s;
}

/* Take stale entry idx for key: 1 taken (*snap its st), 0 not. */
static int
entry_reclaim(struct clients_gen *g, size_t li, size_t idx, uint64_t key,
    uint64_t now, uint64_t *snap)
{
	struct clients_gl *gl = &g->l[li];
	struct clients_entry *e = &gl->tab[idx];
	uint64_t s = load(&e->st), mine;

	/* An empty entry is claimed by its key's CAS, never reclaimed. */
	if ((s & (ST_R | ST_OPEN)) != 0 || load(&e->key) == 0 ||
	    TAT_US(load(&e->tat)) > now)
		return 0;
	mine = ST_R | ((s + ST_VONE) & ST_VMASK);
	if (g->hdr != NULL) {
		store(&g->hdr->reclaim_st, mine);
		store(&g->hdr->reclaim, HOLD(li, idx));
	}
	if (!cas(&e->st, &s, mine)) {
		if (g->hdr != NULL)
			store(&g->hdr->reclaim, 0);
		return 0;
	}
	if (TAT_US(load(&e->tat)) > now) {
		/* A rate update landed: the entry is its client's still. */
		store(&e->st, s);
		if (g->hdr != NULL)
			store(&g->hdr->reclaim, 0);
		return 0;
	}
	store(&e->key, key);
	store(&e->tat, TAT_OF(0, mine));
	store(&e->meta, 0);
	*snap = mine & ~ST_R;
	store(&e->st, *snap);
	if (g->hdr != NULL)
		store(&g->hdr->reclaim, 0);
	return 1;
}

/*
 * key's entry in listener li's table: its index, with *snap its st read
 * before the key was seen to match; -1: none to be had (untracked).
 */
static long
entry_get(struct clients_gen *g, size_t li, uint64_t key, uint64_t now,
    unsigned meta, uint64_t *snap)
{
	struct clients_gl *gl = &g->l[li];
	size_t base = key_hash(gl, key), idx, empty;
	uint64_t s, k;

	for (int round = 0; round < ROUNDS; round++) {
		empty = SIZE_MAX;
		for (size_t i = 0; i < WINDOW; i++) {
			idx = (base + i) & gl->mask;
			if ((s = st_settled(&gl->tab[idx])) & ST_R)
				continue;	/* its reclaimer died or stalls */
			k = load(&gl->tab[idx].key);
			if (k == key) {
				*snap = s;
				return (long)idx;
			}
			if (k == 0 && empty == SIZE_MAX)
				empty = idx;
		}
		if (empty != SIZE_MAX) {
			k = 0;
			if (cas(&gl->tab[empty].key, &k, key)) {
				store(&gl->tab[empty].meta, meta);
				*snap = load(&gl->tab[empty].st);
				if (!(*snap & ST_R) && load(&gl->tab[empty].key) == key)
					return (long)empty;
			}
			continue;	/* lost it, perhaps to key: look again */
		}
		for (size_t i = 0; i < WINDOW; i++) {
			idx = (base + i) & gl->mask;
			if (entry_reclaim(g, li, idx, key, now, snap)) {
				store(&gl->tab[idx].meta, meta);
				return (long)idx;
			}
		}
		return -1;
	}
	return -1;
}

/* Is e still as snap found it (no reclaim since)?  Waits out a reclaim. */
static int
entry_same(struct clients_entry *e, uint64_t snap)
{
	uint64_t s = st_settled(e);

	return !(s & ST_R) && ST_VER(s) == ST_VER(snap);
}

enum { TAKE_OK, TAKE_REFUSED, TAKE_AGAIN };

/* The rate: one attempt counted against e, found with st snap. */
static int
rate_take(const struct clients_gl *gl, struct clients_entry *e, uint64_t snap,
    uint64_t now)
{
	uint64_t t = load(&e->tat), us, base, full = now + gl->tol_us + gl->t_us;
	int refused;

	for (;;) {
		if (TAT_TAG(t) != TAT_TAG(TAT_OF(0, snap)))
			return TAKE_AGAIN;	/* reclaimed: not ours to move */
		us = TAT_US(t);
		base = us > now ? us : now;
		refused = base - now > gl->tol_us;
		if (refused && us >= full)
			break;		/* a full bucket already */
		if (cas(&e->tat, &t, TAT_OF(refused ? full : base + gl->t_us, snap)))
			break;
	}
	if (!entry_same(e, snap))
		return TAKE_AGAIN;	/* reclaimed under us: count it again */
	return refused ? TAKE_REFUSED : TAKE_OK;
}

/* One more connection open on e, found with st snap, unless at max. */
static int
open_take(struct clients_entry *e, uint64_t snap, uint64_t max)
{
	uint64_t s = st_settled(e);

	for (;;) {
		if ((s & ST_R) || ST_VER(s) != ST_VER(snap))
			return TAKE_AGAIN;
		if ((s & ST_OPEN) >= max)
			return TAKE_REFUSED;
		if (cas(&e->st, &s, s + 1))
			return TAKE_OK;
	}
}

enum clients_verdict
clients_client(struct clients_gen *g, size_t li, uint32_t hold,
    const struct sockaddr *sa, uint64_t now_us)
{
	struct clients_gl *gl;
	struct clients_entry *e;
	uint64_t key, snap = 0;
	long idx;
	int r;

	if (!g->active)
		return CLIENTS_OK;
	gl = &g->l[li];
	if (gl->tab == NULL)
		return CLIENTS_OK;
	if ((key = client_key(sa, gl->prefix6)) == 0)
		return CLIENTS_UNTRACKED;
	for (int round = 0; round < ROUNDS; round++) {
		if ((idx = entry_get(g, li, key, now_us, sa->sa_family == AF_INET6 ?
		    gl->prefix6 : 0, &snap)) < 0)
			return CLIENTS_UNTRACKED;
		e = &gl->tab[idx];
		if (gl->t_us != 0) {
			if ((r = rate_take(gl, e, snap, now_us)) == TAKE_AGAIN)
				continue;
			if (r == TAKE_REFUSED)
				return CLIENTS_RATE;
		}
		if (gl->client_max == 0)
			return CLIENTS_OK;
		if (hold == CLIENTS_NOHOLD || hold >= g->nholds)
			return CLIENTS_UNTRACKED;
		/* The hold names the entry before its count moves. */
		store(&g->hold[hold], HOLD(li, idx));
		if ((r = open_take(e, snap, gl->client_max)) == TAKE_OK)
			return CLIENTS_OK;
		store(&g->hold[hold], HOLD(li, -1));
		if (r == TAKE_REFUSED)
			return CLIENTS_LIMIT;
	}
	return CLIENTS_UNTRACKED;
}

/* --- the master's view --- */

/* key as "1.2.3.4" or "2001:db8::/64" into buf. */
static void
key_format(uint64_t key, unsigned prefix6, char *buf, size_t len)
{
	uint64_t raw = ~key;
	struct in6_addr a6;
	struct in_addr a4;
	char ip[INET6_ADDRSTRLEN];

	if ((raw >> 32) == (RAW_V4 >> 32)) {
		a4.s_addr = htonl((uint32_t)raw);
		inet_ntop(AF_INET, &a4, ip, sizeof(ip));
		snprintf(buf, len, "%s", ip);
		return;
	}
	memset(&a6, 0, sizeof(a6));
	for (int i = 0; i < 8; i++)
		a6.s6_addr[i] = (uint8_t)(raw >> (56 - 8 * i));
	inet_ntop(AF_INET6, &a6, ip, sizeof(ip));
	snprintf(buf, len, "%s/%u", ip, prefix6);
}

/* Does (open, recent) rank before row r? */
static int
ranks_before(unsigned open, unsigned recent, const struct clients_row *r)
{
	return open > r->open || (open == r->open && recent > r->recent);
}

/*
 * Has the page that starts at p ever been written?  Reading a page of a
 * shared mapping that no one wrote would allocate it: the scan skips what
 * mincore() says is not there (a table is used only as far as written).
 * A page swapped out reads as unused: its clients miss one listing.
 */
static int
page_used(const void *p)
{
	unsigned char v = 0;

	if (mincore((void *)p, 1, &v) == -1)
		return 1;
	return v & 1;
}

size_t
clients_top(const struct clients *cs, const struct config *cfg,
    const char *listener, uint64_t now_us, struct clients_row *rows, size_t n)
{
	size_t filled = 0, per_page;

	if (n == 0)
		return 0;
	per_page = (size_t)sysconf(_SC_PAGESIZE) / sizeof(struct clients_entry);
	for (size_t li = 0; li < cfg->nlisteners; li++) {
		const struct listener_conf *lc = &cfg->listeners[li];
		const struct clients_table *t;
		uint64_t t_us, tol_us;
		unsigned prefix6 = lc->client_prefix6 >= 1 && lc->client_prefix6 <= 64 ?
		    lc->client_prefix6 : 64;

		if (listener != NULL && strcmp(listener, lc->name) != 0)
			continue;
		if (!has_per_client(lc) ||
		    (t = table_find(cs, lc->name, table_size(lc->client_table_size))) == NULL)
			continue;
		rate_params(lc, &t_us, &tol_us);
		for (size_t i = 0; i < t->size; i++) {
			struct clients_entry *e = &t->e[i];
			uint64_t key, s, tat, meta;
			unsigned open, recent = 0;
			size_t at;

			if (i % per_page == 0 && !page_used(e)) {
				i += per_page - 1;	/* never touched: all empty */
				continue;
			}
			key = load(&e->key);
			s = load(&e->st);
			if (key == 0 || (s & ST_R))
				continue;
			open = (unsigned)(s & ST_OPEN);
			tat = TAT_US(load(&e->tat));
			if (t_us != 0 && tat > now_us)
				recent = (unsigned)((tat - now_us + t_us - 1) / t_us);
			if (open == 0 && recent == 0)
				continue;
			if (filled == n && !ranks_before(open, recent, &rows[n - 1]))
				continue;
			/* Insertion into the sorted rows; n is small. */
			at = filled < n ? filled++ : n - 1;
			while (at > 0 && ranks_before(open, recent, &rows[at - 1])) {
				rows[at] = rows[at - 1];
				at--;
			}
			rows[at].listener = lc->name;
			rows[at].open = open;
			rows[at].recent = recent;
			meta = load(&e->meta);
			key_format(key, meta >= 1 && meta <= 64 ? (unsigned)meta :
			    prefix6, rows[at].client, sizeof(rows[at].client));
		}
	}
	return filled;
}
