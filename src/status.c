/*
 * status.c: the master's reports (status.h): STATUS=, WATCHDOG=1,
 * EXTEND_TIMEOUT_USEC=, READY=1, the once-a-second tick and the
 * statistics' view.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "health.h"
#include "status.h"
#include "version.h"

#define STALE_SECS	3.0	/* no heartbeat for this long: skip the worker */
#define EXTEND_GRACE	5	/* seconds asked of systemd beyond shutdown_timeout */

/* Compose STATUS=; send it when it changed and send is set. */
void
status_send(struct master *m, int send)
{
	char s[sizeof(m->status)];
	unsigned total = 0, drain_conns = 0, ngen = 0, seen[64];
	uint64_t rate = m->accepted - m->accepted_prev;
	struct wproc *w;
	int off, n = 0;

	off = snprintf(s, sizeof(s), "gen %u: %d workers, ", m->gen, m->nslots);
	LIST_FOREACH(w, &m->procs, entry) {
		if (w->gen == m->gen && w->state != W_DRAINING) {
			total += w->conns;
			continue;
		}
		drain_conns += w->conns;
		for (n = 0; n < (int)ngen && seen[n] != w->gen; n++)
			;
		if (n == (int)ngen && ngen < 64)
			seen[ngen++] = w->gen;
	}
	off += snprintf(s + off, sizeof(s) - off, "%u connections (", total);
	for (int i = 0; i < m->nslots && off < (int)sizeof(s); i++) {
		w = m->slots[i]->w;
		off += snprintf(s + off, sizeof(s) - off, "%s%u", i ? "/" : "",
		    w != NULL ? w->conns : 0);
	}
	if (off < (int)sizeof(s))
		snprintf(s + off, sizeof(s) - off,
		    "), %u draining generations with %u connections, %llu conn/s, last reload: %s",
		    ngen, drain_conns, (unsigned long long)rate, m->reload_result);
	if (strcmp(s, m->status) != 0) {
		memcpy(m->status, s, sizeof(s));
		if (send)
			sdnotify("STATUS=%s", s);
	}
}

/*
 * While draining for a stop, ask systemd to wait: what is left of
 * shutdown_timeout plus EXTEND_GRACE (which covers KILL_GRACE).
 */
void
status_extend(struct master *m)
{
	ev_tstamp left = m->stop_at - KILL_GRACE - ev_now(m->loop);

	sdnotify("EXTEND_TIMEOUT_USEC=%llu",
	    (unsigned long long)((left > 0 ? left : 0) + EXTEND_GRACE) * 1000000ULL);
}

/* WATCHDOG=1 only while the loop runs and the workers answer. */
void
status_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	ev_tstamp now = ev_now(loop);

	(void)revents;
	for (int i = 0; i < m->nslots; i++) {
		struct wproc *w = m->slots[i]->w;

		if (w != NULL && w->state == W_READY &&
		    (w->unresponsive || now - w->last_seen > STALE_SECS))
			return;
	}
	sdnotify("WATCHDOG=1");
}

void
status_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = t->data;
	ev_tstamp now = ev_now(loop);
	struct wproc *w;

	(void)revents;
	LIST_FOREACH(w, &m->procs, entry)
		if (w->state == W_READY && !w->unresponsive &&
		    now - w->last_seen > STALE_SECS) {
			log_warnx("worker %d gen %u (pid %d) missed its heartbeats; skipping it",
			    w->slot, w->gen, (int)w->pid);
			w->unresponsive = 1;
		}
	status_send(m, 1);
	if (m->stopping == 1)
		status_extend(m);
	m->accepted_prev = m->accepted;
	if (m->answers > 0)
		log_debug("dispatch: %llu notifications took %llu connections",
		    (unsigned long long)m->answers, (unsigned long long)m->answered);
	m->answers = m->answered = 0;
}

int
status_check_ready(struct master *m)
{
	if (m->gen_ready || m->stopping)
		return 0;
	for (int i = 0; i < m->nslots; i++) {
		struct wproc *w = m->slots[i]->w;

		if (w == NULL || w->state != W_READY)
			return 0;
	}
	m->gen_ready = 1;
	log_notice("generation %u ready: %d workers", m->gen, m->nslots);
	status_send(m, 0);
	sdnotify("READY=1\nSTATUS=%s", m->status);
	daemon_ready();
	return 1;
}

static const char *
status_wstate(enum wstate st)
{
	switch (st) {
	case W_STARTING:
		return "starting";
	case W_READY:
		return "ready";
	case W_DRAINING:
		return "draining";
	}
	return "?";
}

static int
status_wcmp(const void *a, const void *b)
{
	const struct stats_wview *x = a, *y = b;

	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return (x->slot > y->slot) - (x->slot < y->slot);
}

int
status_view(struct master *m, struct stats_view *v)
{
	struct timespec ts;
	struct wproc *w;
	size_t n = 0;

	memset(v, 0, sizeof(*v));
	if (stats_collect(m->stats, m->cfg, v) == -1)
		return -1;
	LIST_FOREACH(w, &m->procs, entry)
		n++;
	if (n > 0 && (v->w = calloc(n, sizeof(*v->w))) == NULL) {
		int saved = errno;

		stats_view_free(v);
		errno = saved;
		return -1;
	}
	LIST_FOREACH(w, &m->procs, entry) {
		struct stats_wview *wv = &v->w[v->nw++];
		const struct stats_wcount *c = stats_worker(w->sg, w->sslot);

		wv->pid = w->pid;
		wv->slot = w->slot;
		wv->gen = w->gen;
		wv->state = status_wstate(w->state);
		if (c != NULL) {
			wv->c.accepts = stats_read(&c->accepts);
			wv->c.conns = stats_read(&c->conns);
		}
	}
	qsort(v->w, v->nw, sizeof(*v->w), status_wcmp);
	clock_gettime(CLOCK_REALTIME, &ts);
	v->pid = getpid();
	v->started = m->started;
	v->now = ts.tv_sec + ts.tv_nsec / 1e9;
	v->version = PREFORKD_VERSION;
	v->gen = m->gen;
	v->reloads_ok = m->reloads_ok;
	v->reloads_failed = m->reloads_failed;
	v->last_reload = m->reloads_ok + m->reloads_failed > 0 ? m->reload_result : "";
	v->respawns = m->respawns;
	v->workers = m->nslots;
	health_view(m, v);	/* the backends' state, why, weight and last check */
	return 0;
}
