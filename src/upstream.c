/*
 * upstream.c: a listener's backends as one worker sees them: the balancing
 * methods, passive failure marking, the health state the master reports
 * and the operator's state and weight.  Owns the array of struct upstream;
 * the backend_conf each one points at is borrowed from the config.  No I/O
 * and no clock: the caller passes now.
 *
 * Every pick is O(n) over the backends, n <= UPSTREAM_MAX (64), which is
 * cheaper than keeping any sorted structure up to date as conns change.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream.h"

/*
 * Config validation and upstream_admin() keep weights in 1..256; a zero
 * must not starve one.
 */
unsigned
upstream_weight(const struct upstream *u)
{
	if (u->admin_weight > 0)
		return u->admin_weight;
	return u->conf->weight > 0 ? u->conf->weight : 1;
}

/* 1 when a carries less load than b: conns/weight, compared without floats. */
static int
lighter(const struct upstream *a, const struct upstream *b)
{
	return (uint64_t)a->conns * upstream_weight(b) <
	    (uint64_t)b->conns * upstream_weight(a);
}

int
upstream_init(struct upstream_set *s, const struct listener_conf *lc)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	if (lc->nbackends > UPSTREAM_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (lc->nbackends > 0 &&
	    (s->u = calloc(lc->nbackends, sizeof(*s->u))) == NULL)
		return -1;
	for (i = 0; i < lc->nbackends; i++) {
		s->u[i].conf = &lc->backends[i];
		/* Usable from the start whatever origin the caller's clock has. */
		s->u[i].down_until = -HUGE_VAL;
	}
	s->n = lc->nbackends;
	s->balance = lc->balance;
	s->last = lc->nbackends;	/* no pick yet */
	s->max_fails = lc->max_fails;
	s->fail_timeout = lc->fail_ms / 1000.0;
	s->src = lc->source;
	s->nsrc = lc->nsource;
	return 0;
}

void
upstream_fini(struct upstream_set *s)
{
	free(s->u);
	s->u = NULL;
	s->n = 0;
}

int
upstream_usable(const struct upstream *u, double now)
{
	return u->admin == UPS_READY && !u->checked_down && now >= u->down_until;
}

/*
 * nginx's smooth weighted round-robin: every candidate gains its weight,
 * the richest wins and pays the total back.  Over any run of sum(weights)
 * picks each gets exactly its weight, spread out rather than in bursts.
 */
static size_t
pick_roundrobin(struct upstream_set *s, const size_t *cand, size_t nc)
{
	struct upstream *u, *best = NULL;
	size_t i, bi = cand[0];
	int total = 0;

	for (i = 0; i < nc; i++) {
		u = &s->u[cand[i]];
		u->cw += (int)upstream_weight(u);
		total += (int)upstream_weight(u);
		if (best == NULL || u->cw > best->cw) {
			best = u;
			bi = cand[i];
		}
	}
	best->cw -= total;
	return bi;
}

/*
 * Fewest conns/weight.  Ties go to the first candidate after the previous
 * pick so that an idle set rotates rather than piling onto u[0].
 */
static size_t
pick_leastconn(struct upstream_set *s, const size_t *cand, size_t nc)
{
	size_t i, k, start = 0, bi;

	if (s->last < s->n) {
		/* the first candidate whose index follows the last pick's */
		while (start < nc && cand[start] <= s->last)
			start++;
		if (start == nc)
			start = 0;
	}
	bi = cand[start];
	for (i = 1; i < nc; i++) {
		k = cand[(start + i) % nc];
		if (lighter(&s->u[k], &s->u[bi]))
			bi = k;
	}
	s->last = bi;
	return bi;
}

/*
 * FNV-1a over the address bytes, then a finalizer: FNV's low bits depend
 * only on the low bits of each input byte, and the modulo reads mostly
 * those, so without mixing clients whose addresses differ in one high bit
 * would all land together.  IPv4-mapped IPv6 hashes as the IPv4 address, so
 * a client keeps its backend on a dual-stack listener.
 */
static uint32_t
hash_client(const struct sockaddr *sa)
{
	static const unsigned char v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const unsigned char *p = NULL;
	uint32_t h = 2166136261u;
	size_t n = 0, i;

	if (sa != NULL && sa->sa_family == AF_INET) {
		p = (const unsigned char *)
		    &((const struct sockaddr_in *)sa)->sin_addr;
		n = 4;
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		p = (const unsigned char *)
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		n = 16;
		if (memcmp(p, v4mapped, sizeof(v4mapped)) == 0) {
			p += 12;
			n = 4;
		}
	}
	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Two random choices, the lighter kept: near-leastconn without a scan. */
static size_t
pick_random(const struct upstream_set *s, const size_t *cand, size_t nc,
    unsigned (*rnd)(void *), void *rndarg)
{
	size_t a, b;

	a = cand[rnd(rndarg) % nc];
	b = cand[rnd(rndarg) % nc];
	return lighter(&s->u[b], &s->u[a]) ? b : a;
}

int
upstream_pick(struct upstream_set *s, const struct sockaddr *client,
    uint64_t tried, double now, unsigned (*rnd)(void *), void *rndarg)
{
	size_t cand[UPSTREAM_MAX], nc = 0, i;
	int backup;

	/*
	 * Primaries first; backups once no untried primary is usable, so a
	 * retry after every primary failed still reaches a backup.
	 */
	for (backup = 0; backup <= 1 && nc == 0; backup++) {
		for (i = 0; i < s->n && i < UPSTREAM_MAX; i++) {
			if ((s->u[i].conf->backup != 0) != backup ||
			    (tried & (UINT64_C(1) << i)) != 0 ||
			    !upstream_usable(&s->u[i], now))
				continue;
			cand[nc++] = i;
		}
	}
	if (nc == 0)
		return -1;

	switch (s->balance) {
	case BAL_LEASTCONN:
		return (int)pick_leastconn(s, cand, nc);
	case BAL_SOURCE:
		return (int)cand[hash_client(client) % nc];
	case BAL_RANDOM:
		if (rnd != NULL)
			return (int)pick_random(s, cand, nc, rnd, rndarg);
		break;		/* no randomness given: round-robin spreads too */
	}
	return (int)pick_roundrobin(s, cand, nc);
}

/* O(1) unless the families are mixed; O(nsrc) at worst, nsrc <= 256. */
const struct addr *
upstream_source(struct upstream_set *s, int af)
{
	size_t *next = &s->src_next[af == AF_INET6], i, k;

	for (i = 0; i < s->nsrc; i++) {
		k = (*next + i) % s->nsrc;
		if (s->src[k].ss.ss_family == af) {
			*next = k + 1;
			return &s->src[k];
		}
	}
	return NULL;
}

int
upstream_failed(struct upstream_set *s, size_t i, double now)
{
	struct upstream *u;
	int was;

	if (i >= s->n)
		return 0;
	u = &s->u[i];
	if (u->fails == 0 || u->fail_start + s->fail_timeout <= now) {
		u->fails = 0;
		u->fail_start = now;
	}
	u->fails++;
	if (s->max_fails == 0 || u->fails < s->max_fails)
		return 0;
	u->fails = 0;
	/*
	 * Already marked: these are connects begun before the mark failing
	 * late, no news about the backend; keep the planned return time.
	 */
	if (now < u->down_until)
		return 0;
	was = upstream_usable(u, now);
	u->down_until = now + s->fail_timeout;
	if (s->st != NULL)
		stats_set(&s->st[i].passive_down, 1);
	return was;
}

void
upstream_succeeded(struct upstream_set *s, size_t i)
{
	if (i < s->n)
		s->u[i].fails = 0;
}

void
upstream_marks(struct upstream_set *s, double now)
{
	if (s->st == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		stats_set(&s->st[i].passive_down, now < s->u[i].down_until);
}

int
upstream_admin(struct upstream_set *s, size_t i, int state, unsigned weight)
{
	struct upstream *u;

	if (i >= s->n || state < UPS_READY || state > UPS_MAINT ||
	    weight > UPSTREAM_WEIGHT_MAX) {
		errno = EINVAL;
		return -1;
	}
	u = &s->u[i];
	u->admin = state;
	if (weight != u->admin_weight) {
		u->admin_weight = weight;
		/* The old credits were earned at the old shares. */
		for (size_t k = 0; k < s->n; k++)
			s->u[k].cw = 0;
	}
	return 0;
}
