/*
 * lsock.c: the listen-socket table (lsock.h).  A socket is kept across
 * reloads while its address stays configured; one systemd passed is never
 * closed, only parked when no listener uses it.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "lsock.h"

/*
 * why, an error of lc's socket, where lc is configured: "FILE:LINE: listen:
 * why" as for the file's other errors; why alone for a listener of -l.
 */
const char *
lsock_where(const struct config *cfg, const struct listener_conf *lc, const char *why,
    char *buf, size_t len)
{
	if (cfg->file != NULL && lc->listen_line > 0)
		snprintf(buf, len, "%s:%d: listen: %s", cfg->file, lc->listen_line, why);
	else
		snprintf(buf, len, "%s", why);
	return buf;
}

/* net_listen()'s flags for lc's sockets. */
static int
lsock_flags(const struct config *cfg, const struct listener_conf *lc)
{
	return (cfg->dispatch == DISPATCH_REUSEPORT ? NET_REUSEPORT : 0) |
	    (lc->tcp_nodelay ? NET_NODELAY : 0);
}

/* A passed socket for lc: by name, else by address; NULL when none. */
static struct sd_socket *
passed_find(struct master *m, const struct listener_conf *lc)
{
	struct addr a;

	for (int i = 0; i < m->npassed; i++)
		if (!m->passed[i].used && strcmp(m->passed[i].name, lc->name) == 0)
			return &m->passed[i];
	for (int i = 0; i < m->npassed; i++) {
		a.len = sizeof(a.ss);
		if (!m->passed[i].used &&
		    getsockname(m->passed[i].fd, (struct sockaddr *)&a.ss, &a.len) == 0 &&
		    net_addr_equal(&a, &lc->addr))
			return &m->passed[i];
	}
	return NULL;
}

/*
 * Open lc's listen socket, or take the one systemd passed for it.  NULL
 * with the reason in err.
 */
struct lsock *
lsock_open(struct master *m, const struct listener_conf *lc, char *err,
    size_t errlen)
{
	struct sd_socket *p = NULL;
	char a[NET_ADDRSTRLEN];
	struct lsock *ls;
	int fd;

	if (m->npassed > 0 && m->cfg->dispatch == DISPATCH_REUSEPORT) {
		snprintf(err, errlen, "listener %s: dispatch = reuseport needs a socket "
		    "per worker, and systemd passes one; use notify or handoff", lc->name);
		return NULL;
	}
	if (m->npassed > 0) {
		if ((p = passed_find(m, lc)) == NULL) {
			snprintf(err, errlen, "listener %s: no socket passed by systemd "
			    "(LISTEN_FDNAMES names none \"%s\", none is bound to %s)",
			    lc->name, lc->name,
			    net_addr_str((const struct sockaddr *)&lc->addr.ss, a, sizeof(a)));
			return NULL;
		}
		fd = p->fd;
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
			snprintf(err, errlen, "listener %s: socket from systemd: %s",
			    lc->name, strerror(errno));
			return NULL;
		}
		/* Ours to set either way: its connections inherit it. */
		if (net_nodelay(fd, lc->tcp_nodelay) == -1) {
			snprintf(err, errlen, "listener %s: socket from systemd: "
			    "TCP_NODELAY: %s", lc->name, strerror(errno));
			return NULL;
		}
	} else if ((fd = net_listen(&lc->addr, lc->backlog, lsock_flags(m->cfg, lc))) == -1) {
		snprintf(err, errlen, "listener %s: bind %s: %s", lc->name,
		    net_addr_str((const struct sockaddr *)&lc->addr.ss, a, sizeof(a)),
		    strerror(errno));
		return NULL;
	}
	if ((ls = calloc(1, sizeof(*ls))) == NULL) {
		snprintf(err, errlen, "listener %s: out of memory", lc->name);
		if (p == NULL)
			close(fd);
		return NULL;
	}
	if (p != NULL)
		p->used = 1;
	ls->id = ++m->next_id;
	ls->fd = fd;
	ls->addr = lc->addr;
	ls->conf = lc;
	ls->m = m;
	ls->allowed = 1;
	ls->passed = p;
	ev_io_init(&ls->io, dispatch_listen_cb, fd, EV_READ);
	ls->io.data = ls;
	if (m->cfg->dispatch == DISPATCH_REUSEPORT) {
		if ((ls->rfd = malloc(sizeof(*ls->rfd))) == NULL) {
			snprintf(err, errlen, "listener %s: out of memory", lc->name);
			lsock_release(ls);
			return NULL;
		}
		ls->rfd[0] = fd;
		ls->nrfd = 1;
	}
	return ls;
}

/*
 * dispatch = reuseport: give ls a socket for each of n slots, binding the
 * missing ones, or close those past n.  0, or -1 with the reason in err
 * (the sockets bound so far are kept: shrink back to undo).
 */
int
lsock_slots(struct lsock *ls, int n, char *err, size_t errlen)
{
	char a[NET_ADDRSTRLEN];
	int *v, fd;

	if (ls->rfd == NULL)
		return 0;
	while (ls->nrfd > n && ls->nrfd > 1)
		close(ls->rfd[--ls->nrfd]);
	if (n <= ls->nrfd)
		return 0;
	if ((v = realloc(ls->rfd, n * sizeof(*v))) == NULL) {
		snprintf(err, errlen, "listener %s: out of memory", ls->conf->name);
		return -1;
	}
	ls->rfd = v;
	while (ls->nrfd < n) {
		if ((fd = net_listen(&ls->addr, ls->conf->backlog,
		    lsock_flags(ls->m->cfg, ls->conf))) == -1) {
			snprintf(err, errlen, "listener %s: bind %s for worker %d: %s",
			    ls->conf->name,
			    net_addr_str((const struct sockaddr *)&ls->addr.ss, a, sizeof(a)),
			    ls->nrfd, strerror(errno));
			return -1;
		}
		ls->rfd[ls->nrfd++] = fd;
	}
	return 0;
}

/*
 * reuseport: a socket for each of n slots on every listener.  0, or -1
 * with the reason logged and every listener back at m->nslots sockets.
 */
int
lsock_slots_all(struct master *m, int n)
{
	struct lsock *ls;
	char why[256];

	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf != NULL && lsock_slots(ls, n, why, sizeof(why)) == -1) {
			log_warnx("%s", why);
			LIST_FOREACH(ls, &m->lsocks, entry)
				if (ls->conf != NULL)
					lsock_slots(ls, m->nslots, why, sizeof(why));
			return -1;
		}
	return 0;
}

/*
 * A reload keeps ls for lc: apply lc's socket-level keys to each of its
 * sockets.  Connections accepted from then on inherit TCP_NODELAY.
 */
void
lsock_update(struct lsock *ls, const struct listener_conf *lc)
{
	for (int i = 0; i < (ls->rfd != NULL ? ls->nrfd : 1); i++) {
		int fd = ls->rfd != NULL ? ls->rfd[i] : ls->fd;

		if (lc->backlog != ls->conf->backlog && listen(fd, lc->backlog) == -1)
			log_warn("listener %s: new backlog", lc->name);
		if (lc->tcp_nodelay != ls->conf->tcp_nodelay &&
		    net_nodelay(fd, lc->tcp_nodelay) == -1)
			log_warn("listener %s: tcp_nodelay", lc->name);
	}
}

/* Close a socket we bound; park one systemd passed (never closed). */
void
lsock_release(struct lsock *ls)
{
	if (ls->passed != NULL)
		ls->passed->used = 0;
	else
		close(ls->fd);
	for (int i = 1; i < ls->nrfd; i++)
		close(ls->rfd[i]);
	free(ls->rfd);
	free(ls);
}

void
lsock_close(struct master *m, struct lsock *ls)
{
	struct wproc *w;

	LIST_FOREACH(w, &m->procs, entry)
		if (w->pending == ls)
			w->pending = NULL;	/* its answer will find no socket */
	ev_io_stop(m->loop, &ls->io);
	LIST_REMOVE(ls, entry);
	lsock_release(ls);
}

struct lsock *
lsock_find(struct master *m, const struct addr *a)
{
	struct lsock *ls;

	LIST_FOREACH(ls, &m->lsocks, entry)
		if (ls->conf != NULL && net_addr_equal(&ls->addr, a))
			return ls;
	return NULL;
}
