/*
 * reload.c: building and swapping generations (reload.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"
#include "health.h"
#include "lsock.h"
#include "metrics.h"
#include "proc.h"
#include "reload.h"
#include "sdnotify.h"

/* Beyond max_draining old generations, close the oldest now. */
static void
reload_limit_draining(struct master *m)
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
				proc_send(w, &msg);
			}
	}
}

static int
same_str(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/*
 * Whether a reload may run now.  Not while stopping; one at a time: while
 * the current generation starts it is queued, and runs when that one is
 * up, or as soon as one of its workers dies before that.
 */
static int
reload_may_start(struct master *m)
{
	if (m->stopping)
		return 0;
	if (!m->gen_ready && !proc_gen_stuck(m)) {
		m->reload_pending = 1;
		log_notice("reload queued until generation %u is ready", m->gen);
		return 0;
	}
	if (!m->gen_ready)
		log_notice("generation %u is not ready and a worker of it died: "
		    "replacing it", m->gen);
	return 1;
}

/*
 * Open what nc has that is new into fresh (*nfresh of them), and with
 * reuseport a socket for every new slot; nothing changes until all of it
 * is open.  A listener kept with fewer workers keeps its extra sockets
 * until the commit: their workers still accept on them, and were the
 * reload to fail, a socket bound afresh for such a slot would be in the
 * kernel's group with nobody accepting from it.  0, or -1 with the
 * reason in why and its listener in *failed.
 */
static int
reload_open(struct master *m, const struct config *nc, struct lsock **fresh,
    size_t *nfresh, const struct listener_conf **failed, char *why, size_t whylen)
{
	struct lsock *ls;

	for (size_t i = 0; i < nc->nlisteners; i++) {
		const struct listener_conf *lc = *failed = &nc->listeners[i];

		if ((ls = lsock_find(m, &lc->addr)) != NULL) {
			if (lsock_slots(ls, nc->workers > ls->nrfd ? nc->workers : ls->nrfd,
			    why, whylen) == -1)
				return -1;
			continue;
		}
		if ((fresh[*nfresh] = lsock_open(m, lc, why, whylen)) == NULL)
			return -1;
		(*nfresh)++;
		if (lsock_slots(fresh[*nfresh - 1], nc->workers, why, whylen) == -1)
			return -1;
	}
	return 0;
}

/*
 * Tell the outcome of the reload numbered seq to every request it answers
 * (those that came before it read the configuration), each taken off the
 * queue before its done runs, which may free it.
 */
static void
reload_tell(struct master *m, unsigned seq, int ok, const char *const *msg, size_t n)
{
	struct reload_wait *rw;

	for (;;) {
		LIST_FOREACH(rw, &m->reload_waits, entry)
			if (rw->need <= seq)
				break;
		if (rw == NULL)
			return;
		LIST_REMOVE(rw, entry);
		rw->queued = 0;
		rw->done(rw, ok, msg, n);
	}
}

void
reload_request(struct master *m, struct reload_wait *rw)
{
	static const char *const stopping[] = { "the master is stopping" };

	if (m->stopping) {
		rw->done(rw, 0, stopping, 1);
		return;
	}
	LIST_INSERT_HEAD(&m->reload_waits, rw, entry);
	rw->queued = 1;
	rw->need = m->reload_seq + 1;
	if (m->reload_pending)
		return;		/* queued, not read yet: its outcome is rw's */
	if (m->reload_busy) {
		/* That one read the file before rw came: queue another. */
		m->reload_pending = 1;
		log_notice("reload queued until generation %u is ready", m->gen);
		return;
	}
	reload_run(m);
}

void
reload_cancel(struct reload_wait *rw)
{
	if (rw->queued) {
		LIST_REMOVE(rw, entry);
		rw->queued = 0;
	}
}

void
reload_ready(struct master *m)
{
	char line[64];
	const char *msg[] = { line };

	if (!m->reload_busy)
		return;		/* the first generation, or one replaced after a death */
	m->reload_busy = 0;
	snprintf(line, sizeof(line), "generation %u", m->gen);
	reload_tell(m, m->reload_seq, 1, msg, 1);
}

void
reload_abandon(struct master *m, const char *why)
{
	m->reload_busy = 0;
	reload_tell(m, m->reload_seq, 0, &why, 1);
}

/*
 * reload_open() failed on listener failed for why: log it into where
 * (wherelen bytes), close what it opened (fresh, nfresh of them, and
 * reuseport sockets for new slots) and free nc.
 */
static void
reload_undo(struct master *m, struct config *nc, const struct listener_conf *failed,
    const char *why, struct lsock **fresh, size_t nfresh, char *where, size_t wherelen)
{
	lsock_where(nc, failed, why, where, wherelen);
	log_errorx("%s", where);
	/* Cut to fit STATUS=; the log line has it whole. */
	snprintf(m->reload_result, sizeof(m->reload_result), "failed: %.*s",
	    (int)sizeof(m->reload_result) - 9, where);
	while (nfresh > 0)
		lsock_release(fresh[--nfresh]);
	free(fresh);
	lsock_slots_all(m, m->nslots);	/* only closes */
	config_free(nc);
}

/*
 * The reload failed (m->reload_result says why, msg every line of it, n of
 * them): the generation stays.  Every request that came before this
 * reload read the configuration is told.
 */
static void
reload_failed(struct master *m, struct config_errors *errs, const char *const *msg,
    size_t n)
{
	m->reloads_failed++;
	log_errorx("reload failed, keeping generation %u", m->gen);
	reload_tell(m, m->reload_seq, 0, msg, n);
	config_errors_fini(errs);
	sdnotify("READY=1\nSTATUS=reload %s", m->reload_result);
	m->status[0] = '\0';
}

/*
 * Point every kept listen socket at its listener in nc (NULL: closed once
 * the new workers forked), and add fresh (nfresh of them, freed).
 */
static void
reload_sockets(struct master *m, const struct config *nc, struct lsock **fresh,
    size_t nfresh)
{
	struct lsock *ls;

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
}

/*
 * The keys of the whole process: the log's apply (the workers forked
 * after this use them; the old generation keeps its own), the others need
 * a restart.
 */
static void
reload_daemon_keys(const struct config *cur, const struct config *nc)
{
	if (!same_str(nc->user, cur->user) || !same_str(nc->group, cur->group) ||
	    !same_str(nc->pidfile, cur->pidfile) || !same_str(nc->control, cur->control))
		log_warnx("user, group, pidfile and control need a restart; keeping the running ones");
	if (strcmp(nc->log_target, cur->log_target) != 0 &&
	    log_open(nc->log_target) == -1)
		log_warn("log_target %s; keeping the old target", nc->log_target);
	log_set_level(nc->log_level);
	log_set_format(nc->log_format);	/* the new generation's workers inherit it */
}

/*
 * nc becomes the configuration of a new generation: its workers start,
 * the older ones drain, sockets no longer configured close.
 */
static void
reload_commit(struct master *m, struct config *nc, struct stats_gen *sg,
    struct clients_gen *cg)
{
	struct stats_gen *old_sg = m->sg;
	struct clients_gen *old_cg = m->cg;
	struct config *old;
	struct lsock *ls, *next;
	struct wproc *w;

	old = m->cfg;
	m->cfg = nc;
	m->sg = sg;
	m->cg = cg;
	m->gen++;
	m->reloads_ok++;
	m->gen_ready = 0;
	m->fatal_logged = 0;
	m->reload_busy = 1;
	health_start(m);	/* new backends start up, checked afresh */
	snprintf(m->reload_result, sizeof(m->reload_result), "gen %u ok", m->gen);

	proc_slots(m, nc->workers);
	LIST_FOREACH(w, &m->procs, entry)
		if (w->gen != m->gen && w->state != W_DRAINING)
			proc_drain(w, nc->drain_ms);
	LIST_FOREACH_SAFE(ls, &m->lsocks, entry, next)
		if (ls->conf == NULL) {
			log_notice("closing listen socket %d (no longer configured)", ls->fd);
			lsock_close(m, ls);
		}
	lsock_slots_all(m, m->nslots);	/* only closes */
	config_free(old);
	proc_gen_release(m, old_sg, old_cg);	/* now, if no worker of it is left */
	reload_limit_draining(m);
	dispatch_resume(m);
}

/*
 * The shared memory of nc's generation: its statistics region, registered,
 * and its admission counts in *cg; NULL with m->reload_result set.  Room
 * for CONFIG_MAX_WORKERS slots: SIGTTIN may grow the generation that far
 * (stats.c, clients.c: pages are used only as touched).
 */
static struct stats_gen *
reload_stats(struct master *m, const struct config *nc, struct clients_gen **cg)
{
	const char *what = "statistics region";
	struct stats_gen *sg;
	int saved;

	if ((sg = stats_gen_new(nc, m->gen + 1, CONFIG_MAX_WORKERS)) != NULL &&
	    stats_gen_start(m->stats, sg) == 0) {
		if ((*cg = clients_gen_new(m->clients, nc, CONFIG_MAX_WORKERS)) != NULL)
			return sg;
		what = "admission counts";
		saved = errno;
		stats_retire(m->stats, sg);	/* counted nothing */
		errno = saved;
	}
	saved = errno;
	log_errorx("%s: %s", what, strerror(saved));
	snprintf(m->reload_result, sizeof(m->reload_result),
	    "failed: %s: %s", what, strerror(saved));
	stats_gen_free(sg);
	return NULL;
}

void
reload_run(struct master *m)
{
	struct config_errors errs = { NULL, 0, NULL };
	const struct listener_conf *failed = NULL;
	struct lsock **fresh;
	struct stats_gen *sg;
	struct clients_gen *cg;
	struct config *nc;
	struct timespec ts;
	size_t nfresh = 0;
	char why[256], where[1024];
	const char *msg[] = { where };

	if (!reload_may_start(m))
		return;
	m->reload_seq++;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	log_notice("reloading %s", m->file != NULL ? m->file : "(command line)");

	if ((nc = config_load(m->file, m->ov, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_errorx("%s", errs.msg[i]);
		snprintf(m->reload_result, sizeof(m->reload_result), "failed: %s",
		    errs.n > 0 ? errs.msg[0] : "unknown error");
		snprintf(where, sizeof(where), "unknown error");
		if (errs.n > 0)
			reload_failed(m, &errs, (const char *const *)errs.msg, errs.n);
		else
			reload_failed(m, &errs, msg, 1);
		return;
	}
	if (nc->dispatch != m->cfg->dispatch) {
		log_warnx("dispatch needs a restart; keeping the running one");
		nc->dispatch = m->cfg->dispatch;
	}
	if (metrics_prepare(m, nc, why, sizeof(why)) == -1) {
		log_errorx("%s", why);
		snprintf(m->reload_result, sizeof(m->reload_result), "failed: %s", why);
		snprintf(where, sizeof(where), "%s", why);
		config_free(nc);
		reload_failed(m, &errs, msg, 1);
		return;
	}
	if ((sg = reload_stats(m, nc, &cg)) == NULL) {
		metrics_abort(m);
		config_free(nc);
		/* "failed: statistics region: ..." */
		snprintf(where, sizeof(where), "%s", m->reload_result + 8);
		reload_failed(m, &errs, msg, 1);
		return;
	}
	if ((fresh = calloc(nc->nlisteners, sizeof(*fresh))) == NULL)
		fatal("reload");
	if (reload_open(m, nc, fresh, &nfresh, &failed, why, sizeof(why)) == -1) {
		metrics_abort(m);
		stats_retire(m->stats, sg);	/* counted nothing */
		stats_gen_free(sg);
		clients_gen_free(m->clients, cg);
		reload_undo(m, nc, failed, why, fresh, nfresh, where, sizeof(where));
		reload_failed(m, &errs, msg, 1);
		return;
	}
	reload_sockets(m, nc, fresh, nfresh);
	reload_daemon_keys(m->cfg, nc);
	metrics_commit(m, nc);
	reload_commit(m, nc, sg, cg);
}
