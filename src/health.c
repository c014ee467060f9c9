/*
 * health.c: the master's side of the backends' state (health.h): the
 * health checks' news and the operator's settings, told to the workers,
 * and the backends' rows of the status view.  Kept apart from status.c
 * because it talks to the workers and status.c only reports.  The table
 * of settings is admin.c's; this file ties it to the listen sockets, the
 * checks and the workers.
 */
#include <stdio.h>

#include "chan.h"
#include "health.h"

static void
health_send(struct wproc *w, uint32_t lsock, size_t idx, int up)
{
	struct chan_msg msg = {
		.type = CHAN_BACKEND, .lsock = lsock, .count = idx, .conns = up,
	};

	if (chan_send(w->chan, &msg) == -1)
		log_warn("telling worker %d gen %u about a backend", w->slot, w->gen);
}

/* A new worker learns which backends the checks found down. */
void
health_tell_down(void *arg, uint32_t lsock, size_t idx)
{
	health_send(arg, lsock, idx, 0);
}

/* A health check changed a backend's state: tell the current workers. */
void
health_changed(void *arg, uint32_t lsock, size_t idx, int up)
{
	struct master *m = arg;
	struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w->gen == m->gen && w->state != W_DRAINING)
			health_send(w, lsock, idx, up);
}

/* The listen socket of the configured listener lc; NULL if none (yet). */
static const struct lsock *
health_lsock(const struct master *m, const struct listener_conf *lc)
{
	const struct lsock *ls;

	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf == lc)
			return ls;
	return NULL;
}

static void
health_send_admin(struct wproc *w, uint32_t lsock, size_t idx,
    const struct admin_entry *e)
{
	static const uint32_t state[] = {
		[ADMIN_READY] = CHAN_ADMIN_READY, [ADMIN_DRAIN] = CHAN_ADMIN_DRAIN,
		[ADMIN_MAINT] = CHAN_ADMIN_MAINT,
	};
	struct chan_msg msg = {
		.type = CHAN_ADMIN, .lsock = lsock, .count = idx,
		.conns = e != NULL ? state[e->state] : CHAN_ADMIN_READY,
		.seq = e != NULL ? e->weight : 0,
	};

	if (chan_send(w->chan, &msg) == -1)
		log_warn("telling worker %d gen %u the operator's setting of a backend",
		    w->slot, w->gen);
}

void
health_tell_admin(struct master *m, struct wproc *w)
{
	const struct listener_conf *lc;
	const struct lsock *ls;
	int idx;

	if (w->gen != m->gen)
		return;
	for (size_t i = 0; i < m->admin.n; i++) {
		const struct admin_entry *e = &m->admin.v[i];

		if ((lc = config_listener(m->cfg, e->listener)) != NULL &&
		    (idx = admin_backend(lc, e->addr)) != -1 &&
		    (ls = health_lsock(m, lc)) != NULL)
			health_send_admin(w, ls->id, (size_t)idx, e);
	}
}

static void
health_dropped(void *arg, const struct admin_entry *e)
{
	(void)arg;
	log_notice("listener %s: backend %s is no longer configured; "
	    "the operator's setting of it (%s%s) is dropped", e->listener, e->addr,
	    admin_state_name(e->state), e->weight > 0 ? ", weight" : "");
}

/* (Re)start the health checks of every configured listener. */
void
health_start(struct master *m)
{
	const struct listener_conf *lc;
	const struct lsock *ls;
	struct lsock *l;
	int idx;

	checks_clear(&m->checks);
	LIST_FOREACH(l, &m->lsocks, entry)
		if (l->conf != NULL && checks_add(&m->checks, l->id, l->conf) == -1)
			fatal("health checks");
	admin_prune(&m->admin, m->cfg, health_dropped, NULL);
	for (size_t i = 0; i < m->admin.n; i++) {
		const struct admin_entry *e = &m->admin.v[i];

		if (e->state == ADMIN_MAINT &&
		    (lc = config_listener(m->cfg, e->listener)) != NULL &&
		    (idx = admin_backend(lc, e->addr)) != -1 &&
		    (ls = health_lsock(m, lc)) != NULL)
			checks_maint(&m->checks, ls->id, (size_t)idx, 1);
	}
}

/*
 * The backend addr of listener, for a command: its config, index and
 * listen socket, or -1 with the operator's error in err.
 */
static int
health_find(const struct master *m, const char *listener, const char *addr,
    const struct lsock **ls, int *idx, char *err, size_t errlen)
{
	const struct listener_conf *lc;

	if ((lc = config_listener(m->cfg, listener)) == NULL) {
		snprintf(err, errlen, "no listener %s", listener);
		return -1;
	}
	if ((*idx = admin_backend(lc, addr)) == -1 || (*ls = health_lsock(m, lc)) == NULL) {
		snprintf(err, errlen, "no backend %s in listener %s", addr, listener);
		return -1;
	}
	return 0;
}

/* Tell the current workers the setting of backend idx of ls now. */
static void
health_admin_tell(struct master *m, const struct lsock *ls, int idx,
    const char *listener, const char *addr)
{
	const struct admin_entry *e = admin_find(&m->admin, listener, addr);
	struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w->gen == m->gen && w->state != W_DRAINING)
			health_send_admin(w, ls->id, (size_t)idx, e);
}

int
health_admin(struct master *m, const char *listener, const char *addr,
    const char *state, char *err, size_t errlen)
{
	const struct lsock *ls;
	int st, idx;

	if ((st = admin_state_parse(state)) == -1) {
		snprintf(err, errlen, "state must be ready, drain or maint");
		return -1;
	}
	if (health_find(m, listener, addr, &ls, &idx, err, errlen) == -1)
		return -1;
	if (admin_set_state(&m->admin, listener, addr, st) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	log_notice("listener %s: backend %s set to %s by the operator", listener, addr,
	    admin_state_name(st));
	health_admin_tell(m, ls, idx, listener, addr);
	/* -1: the backend has no check; nothing to stop or start. */
	checks_maint(&m->checks, ls->id, (size_t)idx, st == ADMIN_MAINT);
	return 0;
}

int
health_weight(struct master *m, const char *listener, const char *addr,
    unsigned weight, char *err, size_t errlen)
{
	const struct lsock *ls;
	int idx;

	if (weight < 1 || weight > ADMIN_WEIGHT_MAX) {
		snprintf(err, errlen, "weight must be 1..%d", ADMIN_WEIGHT_MAX);
		return -1;
	}
	if (health_find(m, listener, addr, &ls, &idx, err, errlen) == -1)
		return -1;
	if (admin_set_weight(&m->admin, listener, addr, weight) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	log_notice("listener %s: backend %s weight set to %u by the operator",
	    listener, addr, weight);
	health_admin_tell(m, ls, idx, listener, addr);
	return 0;
}

void
health_view(const struct master *m, struct stats_view *v)
{
	const struct listener_conf *lc;
	const struct admin_entry *e;
	const struct lsock *ls;
	const struct wproc *w;
	struct check_state cs;
	uint64_t nworkers = 0, marked;
	int idx, checked;

	/* Every live worker's slot counts in the summed passive_down gauges. */
	LIST_FOREACH(w, &m->procs, entry)
		nworkers++;
	for (size_t i = 0; i < v->nb; i++) {
		struct stats_bview *b = &v->b[i];
		const char *lname = v->l[b->li].name;

		checked = 0;
		if ((lc = config_listener(m->cfg, lname)) != NULL &&
		    (idx = admin_backend(lc, b->addr)) != -1 &&
		    (ls = health_lsock(m, lc)) != NULL &&
		    checks_state(&m->checks, ls->id, (size_t)idx, &cs) == 0) {
			checked = 1;
			b->check_last = cs.last;
			b->check_at = cs.at;
		}
		e = admin_find(&m->admin, lname, b->addr);
		if (e != NULL && e->weight > 0)
			b->weight = e->weight;
		marked = b->c.passive_down < nworkers ? b->c.passive_down : nworkers;
		if (e != NULL && e->state == ADMIN_MAINT) {
			b->state = BACKEND_MAINT;
			b->why = "operator";
		} else if (e != NULL && e->state == ADMIN_DRAIN) {
			b->state = BACKEND_DRAIN;
			b->why = "operator";
		} else if (checked && !cs.up) {
			b->state = BACKEND_DOWN;
			b->why = "check failed";
		} else if (marked > 0) {
			b->state = BACKEND_DOWN;
			snprintf(b->why_buf, sizeof(b->why_buf),
			    "marked down by %u of %u workers", (unsigned)marked,
			    (unsigned)nworkers);
			b->why = b->why_buf;
		} else {
			b->state = BACKEND_UP;
			b->why = "";
		}
	}
}
