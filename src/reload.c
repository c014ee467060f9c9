/*
 * reload.c: building and swapping generations (reload.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"
#include "health.h"
#include "lsock.h"
#include "proc.h"
#include "reload.h"
#include "sdnotify.h"

/* Beyond max_draining old generations, close the oldest now. */
static void
master_limit_draining(struct master *m)
{
	struct chan_msg msg = { .type = CHAN_STOP };
	unsigned gens[CONFIG_MAX_WORKERS], n, oldest;
	struct wproc *w;

	for (;;) {
		n = 0;
		oldest = m->gen;
		LIST_FOREACH(w, &m->procs, entry) {
			unsigned i;

			if (w->gen == m->gen || w->stopped)
				continue;
			for (i = 0; i < n && gens[i] != w->gen; i++)
				;
			if (i == n && n < CONFIG_MAX_WORKERS)
				gens[n++] = w->gen;
			if (w->gen < oldest)
				oldest = w->gen;
		}
		if (n <= m->cfg->max_draining)
			return;
		log_warnx("more than %u generations draining: closing generation %u now",
		    m->cfg->max_draining, oldest);
		LIST_FOREACH(w, &m->procs, entry)
			if (w->gen == oldest) {
				w->stopped = 1;
				master_send(w, &msg);
			}
	}
}

static int
same_str(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

void
master_reload(struct master *m)
{
	struct config_errors errs = { NULL, 0 };
	const struct listener_conf *failed = NULL;
	struct lsock *ls, *next, **fresh = NULL;
	struct config *nc, *old;
	struct wproc *w;
	struct timespec ts;
	size_t nfresh = 0;
	char why[256], where[1024];

	if (m->stopping)
		return;
	if (!m->gen_ready && !gen_stuck(m)) {
		/*
		 * One at a time: this one runs when the new generation is up,
		 * or as soon as one of its workers dies before that.
		 */
		m->reload_pending = 1;
		log_notice("reload queued until generation %u is ready", m->gen);
		return;
	}
	if (!m->gen_ready)
		log_notice("generation %u is not ready and a worker of it died: "
		    "replacing it", m->gen);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	log_notice("reloading %s", m->file != NULL ? m->file : "(command line)");

	if ((nc = config_load(m->file, m->ov, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_errorx("%s", errs.msg[i]);
		snprintf(m->reload_result, sizeof(m->reload_result), "failed: %s",
		    errs.n > 0 ? errs.msg[0] : "unknown error");
		goto fail;
	}

	if (nc->dispatch != m->cfg->dispatch) {
		log_warnx("dispatch needs a restart; keeping the running one");
		nc->dispatch = m->cfg->dispatch;
	}

	/*
	 * Open what is new, and with reuseport a socket for every new slot;
	 * nothing changes until all of it is open.  A listener kept with
	 * fewer workers keeps its extra sockets until the commit: their
	 * workers still accept on them, and were the reload to fail, a socket
	 * bound afresh for such a slot would be in the kernel's group with
	 * nobody accepting from it.
	 */
	if ((fresh = calloc(nc->nlisteners, sizeof(*fresh))) == NULL)
		fatal("reload");
	for (size_t i = 0; i < nc->nlisteners; i++) {
		const struct listener_conf *lc = failed = &nc->listeners[i];

		if ((ls = lsock_find(m, &lc->addr)) != NULL) {
			if (lsock_slots(ls, nc->workers > ls->nrfd ? nc->workers : ls->nrfd,
			    why, sizeof(why)) == -1)
				goto undo;
			continue;
		}
		if ((fresh[nfresh] = lsock_open(m, lc, why, sizeof(why))) == NULL)
			goto undo;
		nfresh++;
		if (lsock_slots(fresh[nfresh - 1], nc->workers, why, sizeof(why)) == -1)
			goto undo;
	}

	/* Commit. */
	LIST_FOREACH(ls, &m->lsocks, entry) {
		const struct listener_conf *lc = NULL;

		for (size_t i = 0; i < nc->nlisteners && lc == NULL; i++)
			if (net_addr_equal(&nc->listeners[i].addr, &ls->addr))
				lc = &nc->listeners[i];
		if (lc != NULL)
			lsock_update(ls, lc);
		ls->conf = lc;		/* NULL: closed once the new workers forked */
	}
	for (size_t i = 0; i < nfresh; i++)
		LIST_INSERT_HEAD(&m->lsocks, fresh[i], entry);
	free(fresh);
	if (!same_str(nc->user, m->cfg->user) || !same_str(nc->group, m->cfg->group) ||
	    !same_str(nc->pidfile, m->cfg->pidfile))
		log_warnx("user, group and pidfile need a restart; keeping the running ones");
	if (strcmp(nc->log_target, m->cfg->log_target) != 0 &&
	    log_open(nc->log_target) == -1)
		log_warn("log_target %s; keeping the old target", nc->log_target);
	log_set_level(nc->log_level);
	old = m->cfg;
	m->cfg = nc;
	m->gen++;
	m->gen_ready = 0;
	m->fatal_logged = 0;
	master_checks(m);	/* new backends start up, checked afresh */
	snprintf(m->reload_result, sizeof(m->reload_result), "gen %u ok", m->gen);

	master_slots(m, nc->workers);
	LIST_FOREACH(w, &m->procs, entry)
		if (w->gen != m->gen && w->state != W_DRAINING)
			master_drain_worker(w, nc->drain_ms);
	LIST_FOREACH_SAFE(ls, &m->lsocks, entry, next)
		if (ls->conf == NULL) {
			log_notice("closing listen socket %d (no longer configured)", ls->fd);
			lsock_close(m, ls);
		}
	master_lsock_slots(m, m->nslots);	/* only closes */
	config_free(old);
	master_limit_draining(m);
	master_resume(m);
	return;

undo:
	lsock_where(nc, failed, why, where, sizeof(where));
	log_errorx("%s", where);
	/* Cut to fit STATUS=; the log line has it whole. */
	snprintf(m->reload_result, sizeof(m->reload_result), "failed: %.*s",
	    (int)sizeof(m->reload_result) - 9, where);
	while (nfresh > 0)
		lsock_release(fresh[--nfresh]);
	free(fresh);
	master_lsock_slots(m, m->nslots);	/* only closes */
	config_free(nc);
fail:
	log_errorx("reload failed, keeping generation %u", m->gen);
	config_errors_fini(&errs);
	sdnotify("READY=1\nSTATUS=reload %s", m->reload_result);
	m->status[0] = '\0';
}
