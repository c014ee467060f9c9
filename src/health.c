/*
 * health.c: the master's side of the backend health checks (health.h).
 * Kept apart from status.c because it talks to the workers and status.c
 * only reports to systemd.
 */
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

/* (Re)start the health checks of every configured listener. */
void
health_start(struct master *m)
{
	struct lsock *ls;

	checks_clear(&m->checks);
	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf != NULL && checks_add(&m->checks, ls->id, ls->conf) == -1)
			fatal("health checks");
}
