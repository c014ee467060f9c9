/*
 * metrics.c: the Prometheus endpoint in the master (metrics.h).
 *
 * A scrape is one connection through three phases: it reads a request
 * head (httpreq.c judges it after each read), writes the answer (head
 * and body with writev), then lingers: it shuts its side down and reads
 * what the client still sends until EOF, so that closing with unread
 * bytes does not reset the connection before the client has read the
 * answer (nginx's lingering close).  One timer per scrape covers all of
 * it: METRICS_TIMEOUT from accept, the linger METRICS_LINGER at most.
 *
 * The body is built in memory in one go (status_view() then
 * prom_render()): O(listeners + backends + workers), which the config
 * bounds, and never more than METRICS_BODY_MAX bytes.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "httpreq.h"
#include "metrics.h"
#include "prom.h"
#include "status.h"
#include "strbuf.h"

#define ACCEPTS_PER_CALL	16	/* then the loop serves the others */
#define LINGER_MAX		65536	/* bytes read and dropped after an answer */

enum scrape_phase { SC_READ, SC_WRITE, SC_LINGER };

struct scrape {
	struct metrics	*mx;
	int		 fd;
	enum scrape_phase phase;
	ev_io		 io;
	ev_timer	 timer;
	ev_tstamp	 deadline;	/* METRICS_TIMEOUT after accept */
	char		 req[METRICS_REQ_MAX];
	size_t		 reqlen;
	char		 head[256];	/* the answer's status line and fields */
	size_t		 headlen;
	struct strbuf	 body;		/* owned */
	size_t		 bodylen;	/* what is sent of body: 0 for HEAD */
	size_t		 sent;		/* of head and body together */
	size_t		 lingered;	/* bytes read while lingering */
	int		 head_only;	/* HEAD: the fields, not the body */
	int		 status;	/* the answer's, for the log */
	char		 peer[NET_ADDRSTRLEN];
	LIST_ENTRY(scrape) entry;
};

struct metrics {
	struct master	*m;
	int		 fd;		/* listening; -1: none */
	struct addr	 addr;
	int		 next_fd;	/* metrics_prepare()'s, until the commit; -1 */
	struct addr	 next_addr;
	ev_io		 io;
	ev_timer	 pause;		/* after EMFILE: accept again later */
	unsigned	 nscrapes;
	LIST_HEAD(, scrape) scrapes;
	struct log_rate	 busy_log;	/* "too many scrapes" */
	struct log_rate	 accept_log;	/* accept() failing */
};

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

/*
 * The head of an answer into buf (len bytes; 256 are enough): status
 * line, Date, Content-Type, Content-Length, Connection: close, and the
 * Allow field of a 405.  Its length.
 */
static size_t
answer_head(char *buf, size_t len, int status, const char *type, size_t bodylen)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(buf, len, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", status,
	    reason_phrase(status), date, type, bodylen,
	    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

static void
scrape_free(struct scrape *sc)
{
	struct metrics *mx = sc->mx;

	ev_io_stop(mx->m->loop, &sc->io);
	ev_timer_stop(mx->m->loop, &sc->timer);
	close(sc->fd);
	strbuf_fini(&sc->body);
	LIST_REMOVE(sc, entry);
	mx->nscrapes--;
	free(sc);
}

/* Wait on fd for events (EV_READ or EV_WRITE), until the timer. */
static void
scrape_wait(struct scrape *sc, int events, ev_tstamp secs)
{
	struct ev_loop *loop = sc->mx->m->loop;

	ev_io_stop(loop, &sc->io);
	ev_io_set(&sc->io, sc->fd, events);
	ev_io_start(loop, &sc->io);
	ev_timer_stop(loop, &sc->timer);
	ev_timer_set(&sc->timer, secs > 0 ? secs : 0.001, 0.);
	ev_timer_start(loop, &sc->timer);
}

/* The answer is out: shut our side and read until the client's EOF. */
static void
scrape_linger(struct scrape *sc)
{
	ev_tstamp left = sc->deadline - ev_now(sc->mx->m->loop);

	log_debug("metrics: %s: %d, %zu bytes", sc->peer, sc->status, sc->bodylen);
	if (shutdown(sc->fd, SHUT_WR) == -1) {
		scrape_free(sc);
		return;
	}
	sc->phase = SC_LINGER;
	scrape_wait(sc, EV_READ, left < METRICS_LINGER ? left : METRICS_LINGER);
}

/* Write what is left of the answer; on EAGAIN wait for room. */
static void
scrape_write(struct scrape *sc)
{
	struct iovec iov[2];
	size_t total = sc->headlen + sc->bodylen;
	ssize_t n;
	int niov;

	while (sc->sent < total) {
		niov = 0;
		if (sc->sent < sc->headlen) {
			iov[niov].iov_base = sc->head + sc->sent;
			iov[niov++].iov_len = sc->headlen - sc->sent;
		}
		if (sc->bodylen > 0) {
			size_t off = sc->sent > sc->headlen ? sc->sent - sc->headlen : 0;

			iov[niov].iov_base = sc->body.s + off;
			iov[niov++].iov_len = sc->bodylen - off;
		}
		if ((n = writev(sc->fd, iov, niov)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				sc->phase = SC_WRITE;
				scrape_wait(sc, EV_WRITE,
				    sc->deadline - ev_now(sc->mx->m->loop));
				return;
			}
			log_debug("metrics: %s: write: %s", sc->peer, strerror(errno));
			scrape_free(sc);
			return;
		}
		sc->sent += (size_t)n;
	}
	scrape_linger(sc);
}

/* An answer without a body worth building: status and a line saying why. */
static void
scrape_error(struct scrape *sc, int status, const char *why)
{
	strbuf_fini(&sc->body);
	strbuf_printf(&sc->body, "%d %s: %s\n", status, reason_phrase(status), why);
	sc->status = status;
	sc->bodylen = sc->body.failed || sc->head_only ? 0 : sc->body.len;
	sc->headlen = answer_head(sc->head, sizeof(sc->head), status,
	    "text/plain; charset=utf-8", sc->body.failed ? 0 : sc->body.len);
	scrape_write(sc);
}

/* The statistics, rendered: 200, or 500 when they cannot be had. */
static void
scrape_metrics(struct scrape *sc)
{
	struct stats_view v;
	int rc;

	memset(&v, 0, sizeof(v));
	if (status_view(sc->mx->m, &v) == -1) {
		log_warn("metrics: collecting the statistics");
		scrape_error(sc, 500, "cannot collect the statistics");
		return;
	}
	rc = prom_render(&v, &sc->body);
	stats_view_free(&v);
	if (rc == -1) {
		log_warnx("metrics: the answer does not fit in %d bytes, or memory ran out",
		    METRICS_BODY_MAX);
		scrape_error(sc, 500, "the answer is too large");
		return;
	}
	sc->status = 200;
	sc->bodylen = sc->head_only ? 0 : sc->body.len;
	sc->headlen = answer_head(sc->head, sizeof(sc->head), 200, PROM_CONTENT_TYPE,
	    sc->body.len);
	scrape_write(sc);
}

/* A complete request head: route it.  sc may be freed on return. */
static void
scrape_route(struct scrape *sc, const struct httpreq *r)
{
	sc->head_only = httpreq_method_is(r, "HEAD");
	if (!sc->head_only && !httpreq_method_is(r, "GET"))
		scrape_error(sc, 405, "only GET and HEAD");
	else if (!httpreq_path_is(r, "/metrics"))
		scrape_error(sc, 404, "the metrics are at /metrics");
	else
		scrape_metrics(sc);
}

static void
scrape_read(struct scrape *sc)
{
	struct httpreq r;
	ssize_t n;

	for (;;) {
		n = read(sc->fd, sc->req + sc->reqlen, sizeof(sc->req) - sc->reqlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* Gone before asking in full: nobody to answer. */
			scrape_free(sc);
			return;
		}
		sc->reqlen += (size_t)n;
		switch (httpreq_parse(sc->req, sc->reqlen, sizeof(sc->req), &r)) {
		case HTTPREQ_MORE:
			continue;
		case HTTPREQ_BAD:
			log_debug("metrics: %s: %d: %s", sc->peer, r.status, r.why);
			scrape_error(sc, r.status, r.why);
			return;
		default:
			scrape_route(sc, &r);
			return;
		}
	}
}

/* While lingering: drop what comes until EOF, an error or LINGER_MAX. */
static void
scrape_drop(struct scrape *sc)
{
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = read(sc->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0 || (sc->lingered += (size_t)n) >= LINGER_MAX) {
			scrape_free(sc);
			return;
		}
	}
}

static void
scrape_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct scrape *sc = io->data;

	(void)loop, (void)revents;
	switch (sc->phase) {
	case SC_READ:
		scrape_read(sc);
		break;
	case SC_WRITE:
		scrape_write(sc);
		break;
	case SC_LINGER:
		scrape_drop(sc);
		break;
	}
}

static void
scrape_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct scrape *sc = t->data;

	(void)loop, (void)revents;
	if (sc->phase == SC_READ) {
		/* Silent or slow: say so, if it has room to hear it. */
		log_info("metrics: %s: no complete request within %.0f s: closing", sc->peer,
		    METRICS_TIMEOUT);
		sc->phase = SC_WRITE;
		sc->deadline = ev_now(loop);	/* no waiting to write it */
		scrape_error(sc, 408, "no complete request in time");
		return;
	}
	if (sc->phase == SC_WRITE)
		log_info("metrics: %s: the answer not taken within %.0f s: closing",
		    sc->peer, METRICS_TIMEOUT);
	scrape_free(sc);
}

/* Over the bound: a 503 written at once if it fits, and closed. */
static void
metrics_refuse(struct metrics *mx, int fd)
{
	char head[256], buf[METRICS_REQ_MAX];
	static const char body[] = "503 Service Unavailable: too many scrapes at once\n";
	size_t n = answer_head(head, sizeof(head), 503, "text/plain; charset=utf-8",
	    sizeof(body) - 1);
	struct iovec iov[2] = {
		{ head, n }, { (void *)body, sizeof(body) - 1 },
	};

	log_warnx_rate(&mx->busy_log, ev_now(mx->m->loop),
	    "metrics: %d scrapes in progress: refusing another (503)", METRICS_MAX_SCRAPES);
	/* What the client sent already, read so that close() sends FIN, not RST. */
	if (read(fd, buf, sizeof(buf)) == -1 && errno != EAGAIN)
		log_debug("metrics: a refused scrape: read: %s", strerror(errno));
	if (writev(fd, iov, 2) > 0)
		shutdown(fd, SHUT_WR);
	close(fd);
}

static void
metrics_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct metrics *mx = io->data;
	struct sockaddr_storage ss;
	char more[LOG_HELD_MAX];
	unsigned long held;
	struct scrape *sc;
	socklen_t sl;
	int fd;

	(void)revents;
	for (int i = 0; i < ACCEPTS_PER_CALL; i++) {
		sl = sizeof(ss);
		if ((fd = accept4(mx->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			if (log_rate_ok(&mx->accept_log, ev_now(loop), 1.0, &held))
				log_warn("metrics: accept%s", log_held(held, more, sizeof(more)));
			if (net_accept_starved(errno)) {
				ev_io_stop(loop, &mx->io);
				ev_timer_start(loop, &mx->pause);
			}
			return;
		}
		if (mx->nscrapes >= METRICS_MAX_SCRAPES) {
			metrics_refuse(mx, fd);
			continue;
		}
		if ((sc = calloc(1, sizeof(*sc))) == NULL) {
			log_warn("metrics: a scrape");
			close(fd);
			continue;
		}
		sc->mx = mx;
		sc->fd = fd;
		sc->phase = SC_READ;
		sc->deadline = ev_now(loop) + METRICS_TIMEOUT;
		net_addr_str((struct sockaddr *)&ss, sc->peer, sizeof(sc->peer));
		strbuf_init(&sc->body, METRICS_BODY_MAX);
		ev_io_init(&sc->io, scrape_io_cb, fd, EV_READ);
		sc->io.data = sc;
		ev_timer_init(&sc->timer, scrape_timer_cb, METRICS_TIMEOUT, 0.);
		sc->timer.data = sc;
		LIST_INSERT_HEAD(&mx->scrapes, sc, entry);
		mx->nscrapes++;
		scrape_wait(sc, EV_READ, METRICS_TIMEOUT);
	}
}

static void
metrics_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct metrics *mx = t->data;

	(void)revents;
	if (mx->fd != -1)
		ev_io_start(loop, &mx->io);
}

/* A listening socket on a; -1 with a message in err. */
static int
metrics_listen(const struct config *cfg, const struct addr *a, char *err, size_t errlen)
{
	int fd;

	if ((fd = net_listen(a, 64, 0)) == -1)
		snprintf(err, errlen, "metrics %s: %s", cfg->metrics, strerror(errno));
	return fd;
}

/* m->metrics, made now if m has none yet: no socket, watchers ready.  NULL. */
static struct metrics *
metrics_get(struct master *m, char *err, size_t errlen)
{
	struct metrics *mx;

	if (m->metrics != NULL)
		return m->metrics;
	if ((mx = calloc(1, sizeof(*mx))) == NULL) {
		snprintf(err, errlen, "metrics: %s", strerror(errno));
		return NULL;
	}
	mx->m = m;
	mx->fd = mx->next_fd = -1;
	LIST_INIT(&mx->scrapes);
	ev_io_init(&mx->io, metrics_accept_cb, -1, EV_READ);
	mx->io.data = mx;
	ev_timer_init(&mx->pause, metrics_pause_cb, ACCEPT_PAUSE_SECS, 0.);
	mx->pause.data = mx;
	return m->metrics = mx;
}

int
metrics_open(struct master *m, char *err, size_t errlen)
{
	struct metrics *mx;

	if (m->cfg->metrics == NULL)
		return 0;
	if ((mx = metrics_get(m, err, errlen)) == NULL ||
	    (mx->fd = metrics_listen(m->cfg, &m->cfg->metrics_addr, err, errlen)) == -1)
		return -1;
	mx->addr = m->cfg->metrics_addr;
	return 0;
}

void
metrics_start(struct master *m)
{
	struct metrics *mx = m->metrics;

	if (mx == NULL || mx->fd == -1)
		return;
	ev_io_set(&mx->io, mx->fd, EV_READ);
	ev_io_start(m->loop, &mx->io);
	log_notice("metrics: serving http://%s/metrics", m->cfg->metrics);
}

int
metrics_prepare(struct master *m, const struct config *nc, char *err, size_t errlen)
{
	struct metrics *mx = m->metrics;

	if (nc->metrics == NULL || (mx != NULL && mx->fd != -1 &&
	    net_addr_equal(&mx->addr, &nc->metrics_addr)))
		return 0;
	if ((mx = metrics_get(m, err, errlen)) == NULL)
		return -1;
	if ((mx->next_fd = metrics_listen(nc, &nc->metrics_addr, err, errlen)) == -1)
		return -1;
	mx->next_addr = nc->metrics_addr;
	return 0;
}

void
metrics_abort(struct master *m)
{
	struct metrics *mx = m->metrics;

	if (mx != NULL && mx->next_fd != -1) {
		close(mx->next_fd);
		mx->next_fd = -1;
	}
}

void
metrics_commit(struct master *m, const struct config *nc)
{
	struct metrics *mx = m->metrics;
	char was[NET_ADDRSTRLEN];

	if (mx == NULL)
		return;
	if (nc->metrics != NULL && mx->next_fd == -1)
		return;		/* the same address: the same socket */
	ev_io_stop(m->loop, &mx->io);
	ev_timer_stop(m->loop, &mx->pause);
	if (mx->fd != -1) {
		close(mx->fd);
		log_notice("metrics: no longer serving on %s",
		    net_addr_str((struct sockaddr *)&mx->addr.ss, was, sizeof(was)));
	}
	mx->fd = mx->next_fd;
	mx->addr = mx->next_addr;
	mx->next_fd = -1;
	if (mx->fd == -1)
		return;		/* off; scrapes in progress finish */
	ev_io_set(&mx->io, mx->fd, EV_READ);
	ev_io_start(m->loop, &mx->io);
	log_notice("metrics: serving http://%s/metrics", nc->metrics);
}

void
metrics_close(struct master *m)
{
	struct metrics *mx = m->metrics;

	if (mx == NULL)
		return;
	while (!LIST_EMPTY(&mx->scrapes))
		scrape_free(LIST_FIRST(&mx->scrapes));
	ev_io_stop(m->loop, &mx->io);
	ev_timer_stop(m->loop, &mx->pause);
	if (mx->fd != -1)
		close(mx->fd);
	metrics_abort(m);
	free(mx);
	m->metrics = NULL;
}

void
metrics_forget(struct master *m)
{
	struct metrics *mx = m->metrics;
	struct scrape *sc;

	if (mx == NULL)
		return;
	while ((sc = LIST_FIRST(&mx->scrapes)) != NULL) {
		LIST_REMOVE(sc, entry);
		close(sc->fd);
		strbuf_fini(&sc->body);
		free(sc);
	}
	if (mx->fd != -1)
		close(mx->fd);
	if (mx->next_fd != -1)
		close(mx->next_fd);
	free(mx);
	m->metrics = NULL;
}
