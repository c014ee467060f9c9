/*
 * control.c: the control socket (control.h).
 *
 * A client goes through four states: READ (its line, CONTROL_READ_SECS at
 * most), WAIT (a reload's outcome, CONTROL_RELOAD_SECS at most), WRITE
 * (the answer; CONTROL_WRITE_SECS at most without progress) and LINGER
 * (the answer sent and our side shut: its EOF is awaited a little, bytes
 * it sent beyond its line are read and dropped, so that closing does not
 * turn them into a reset that could overtake the answer).  One io watcher
 * and one timer per client, re-armed as the state changes.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "control.h"
#include "ctlcmd.h"
#include "health.h"
#include "reload.h"
#include "report.h"
#include "stats.h"
#include "status.h"
#include "strbuf.h"

#define ACCEPT_BURST	16	/* accepts per wake-up at most */
#define PAUSE_SECS	1.0	/* accept paused after EMFILE */

enum cstate { C_READ, C_WAIT, C_WRITE, C_LINGER };

struct client {
	struct control	*ctl;
	int		 fd;
	enum cstate	 state;
	ev_io		 io;
	ev_timer	 timer;
	size_t		 len;			/* bytes of line read */
	char		 line[CTL_LINE_MAX + 2];	/* the line, its newline, a NUL */
	struct strbuf	 out;			/* the answer */
	size_t		 sent;
	struct reload_wait rw;
	LIST_ENTRY(client) entry;
};

struct control {
	struct master	*m;
	struct ev_loop	*loop;		/* NULL until control_start() */
	int		 fd;
	char		*path;		/* owned */
	dev_t		 dev;		/* the file we bound, to remove only it */
	ino_t		 ino;
	ev_io		 io;
	ev_timer	 pause;
	int		 nclients;
	struct log_rate	 full_log;
	LIST_HEAD(, client) clients;
};

static void	client_answer(struct client *cl);

const char *
control_path(const struct control *c)
{
	return c->path;
}

/* --- opening --- */

/*
 * What is at path already: nothing (0), a stale socket removed (0), or a
 * refusal (-1 with err).
 */
static int
control_stale(const char *path, const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc, saved;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control socket %s: the file exists and is not a socket",
		    path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	saved = errno;
	close(fd);
	if (rc == 0 || saved == EAGAIN || saved == EINPROGRESS) {
		snprintf(err, errlen, "control socket %s: a process listens on it "
		    "(another preforkd?)", path);
		return -1;
	}
	if (saved == ENOENT)
		return 0;	/* gone meanwhile */
	if (saved != ECONNREFUSED) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(saved));
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "control socket %s: removing the stale socket: %s",
		    path, strerror(errno));
		return -1;
	}
	return 0;
}

struct control *
control_open(struct master *m, const char *path, int own, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct control *c;
	struct stat st;
	mode_t mask;
	int rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket %s: path too long", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if (control_stale(path, &sun, err, errlen) == -1)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		snprintf(err, errlen, "control socket %s: out of memory", path);
		return NULL;
	}
	c->m = m;
	LIST_INIT(&c->clients);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		goto fail;
	}
	/* Born 0600: no moment at which another user may connect. */
	mask = umask(0177);
	rc = bind(c->fd, (const struct sockaddr *)&sun, sizeof(sun));
	umask(mask);
	if (rc == -1) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		goto fail;
	}
	if (lstat(path, &st) == -1 || chmod(path, 0600) == -1 ||
	    (own && chown(path, uid, gid) == -1) || listen(c->fd, CONTROL_MAX_CLIENTS) == -1) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	return c;
fail:
	if (c->fd != -1)
		close(c->fd);
	free(c->path);
	free(c);
	return NULL;
}

/* --- clients --- */

static void
client_free(struct client *cl)
{
	struct control *c = cl->ctl;

	reload_cancel(&cl->rw);
	ev_io_stop(c->loop, &cl->io);
	ev_timer_stop(c->loop, &cl->timer);
	close(cl->fd);
	strbuf_fini(&cl->out);
	LIST_REMOVE(cl, entry);
	c->nclients--;
	free(cl);
}

/* Watch fd for events (0: not at all) and arm the timer for secs (0: off). */
static void
client_arm(struct client *cl, enum cstate state, int events, double secs)
{
	struct ev_loop *loop = cl->ctl->loop;

	cl->state = state;
	ev_io_stop(loop, &cl->io);
	if (events != 0) {
		ev_io_set(&cl->io, cl->fd, events);
		ev_io_start(loop, &cl->io);
	}
	ev_timer_stop(loop, &cl->timer);
	if (secs > 0) {
		ev_timer_set(&cl->timer, secs, 0.);
		ev_timer_start(loop, &cl->timer);
	}
}

/* Send what is left of the answer; then shut our side and linger. */
static void
client_write(struct client *cl)
{
	int progress = 0;
	ssize_t n;

	while (cl->sent < cl->out.len) {
		n = send(cl->fd, cl->out.s + cl->sent, cl->out.len - cl->sent,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				client_free(cl);	/* the client went away */
				return;
			}
			if (progress || cl->state != C_WRITE)
				client_arm(cl, C_WRITE, EV_WRITE, CONTROL_WRITE_SECS);
			return;
		}
		cl->sent += n;
		progress = 1;
	}
	shutdown(cl->fd, SHUT_WR);
	client_arm(cl, C_LINGER, EV_READ, CONTROL_LINGER_SECS);
}

/* The answer in cl->out is complete: send it. */
static void
client_answer(struct client *cl)
{
	cl->sent = 0;
	client_write(cl);
}

/* Answer "error: MESSAGE" alone. */
static void
client_error(struct client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
client_error(struct client *cl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	strbuf_fini(&cl->out);
	strbuf_printf(&cl->out, "error: %s\n", msg);
	client_answer(cl);
}

/* rw->done: the reload the client asked for ended. */
static void
client_reloaded(struct reload_wait *rw, int ok, const char *const *msg, size_t n)
{
	struct client *cl = rw->arg;

	strbuf_fini(&cl->out);
	if (ok)
		strbuf_printf(&cl->out, "ok %s\n", n > 0 ? msg[0] : "");
	else {
		strbuf_printf(&cl->out, "error: reload failed\n");
		for (size_t i = 0; i < n; i++)
			strbuf_printf(&cl->out, "%s\n", msg[i]);
	}
	if (cl->out.failed) {
		client_error(cl, "reload %s; the answer is too long for this socket",
		    ok ? "done" : "failed");
		return;
	}
	client_answer(cl);
}

static void
client_show(struct client *cl, enum ctl_op op)
{
	struct stats_view v;
	int rc;

	memset(&v, 0, sizeof(v));
	if (status_view(cl->ctl->m, &v) == -1) {
		client_error(cl, "cannot gather the statistics: %s", strerror(errno));
		return;
	}
	switch (op) {
	case CTL_SHOW_INFO:
		rc = report_info(&cl->out, &v);
		break;
	case CTL_SHOW_STATS:
		rc = report_stats(&cl->out, &v);
		break;
	case CTL_SHOW_STATS_JSON:
		rc = report_stats_json(&cl->out, &v);
		break;
	case CTL_SHOW_BACKENDS:
		rc = report_backends(&cl->out, &v);
		break;
	default:
		rc = report_workers(&cl->out, &v);
		break;
	}
	stats_view_free(&v);
	if (rc == -1) {
		client_error(cl, "the answer is longer than %u bytes, or memory ran out",
		    CONTROL_ANSWER_MAX);
		return;
	}
	client_answer(cl);
}

/* show clients [LISTENER] [N]: the top clients in the master's registry. */
static void
client_clients(struct client *cl, const struct ctl_cmd *cmd)
{
	struct master *m = cl->ctl->m;
	struct clients_row *rows;
	struct timespec ts;
	uint64_t now_us;
	size_t n = 0;
	int rc;

	if (cmd->listener != NULL && config_listener(m->cfg, cmd->listener) == NULL) {
		client_error(cl, "no listener %.64s", cmd->listener);
		return;
	}
	/* count <= CTL_CLIENTS_MAX: some 100 KiB at most, for one answer. */
	if ((rows = calloc(cmd->count, sizeof(*rows))) == NULL) {
		client_error(cl, "show clients: out of memory");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	if (m->clients != NULL)
		n = clients_top(m->clients, m->cfg, cmd->listener, now_us, rows, cmd->count);
	rc = report_clients(&cl->out, rows, n);
	free(rows);
	if (rc == -1) {
		client_error(cl, "the answer is longer than %u bytes, or memory ran out",
		    CONTROL_ANSWER_MAX);
		return;
	}
	client_answer(cl);
}

/* The line (len bytes of cl->line) has come: run it. */
static void
client_command(struct client *cl, size_t len)
{
	struct master *m = cl->ctl->m;
	struct ctl_cmd cmd;
	char err[256];

	if (ctlcmd_parse(cl->line, len, &cmd, err, sizeof(err)) == -1) {
		client_error(cl, "%s", err);
		return;
	}
	switch (cmd.op) {
	case CTL_HELP:
		strbuf_append(&cl->out, ctlcmd_help, strlen(ctlcmd_help));
		break;
	case CTL_SHOW_INFO:
	case CTL_SHOW_STATS:
	case CTL_SHOW_STATS_JSON:
	case CTL_SHOW_BACKENDS:
	case CTL_SHOW_WORKERS:
		client_show(cl, cmd.op);
		return;
	case CTL_SHOW_CLIENTS:
		client_clients(cl, &cmd);
		return;
	case CTL_SET_BACKEND:		/* health.c logs the change */
		if (health_admin(m, cmd.listener, cmd.addr, cmd.state, err, sizeof(err)) == -1) {
			client_error(cl, "%s", err);
			return;
		}
		strbuf_printf(&cl->out, "ok\n");
		break;
	case CTL_SET_WEIGHT:
		if (health_weight(m, cmd.listener, cmd.addr, cmd.weight, err,
		    sizeof(err)) == -1) {
			client_error(cl, "%s", err);
			return;
		}
		strbuf_printf(&cl->out, "ok\n");
		break;
	case CTL_RELOAD:
		log_notice("control: reload asked for");
		client_arm(cl, C_WAIT, 0, CONTROL_RELOAD_SECS);
		reload_request(m, &cl->rw);
		return;
	}
	client_answer(cl);
}

static void
client_read(struct client *cl)
{
	char *nl;
	ssize_t n;

	n = recv(cl->fd, cl->line + cl->len, CTL_LINE_MAX + 1 - cl->len, 0);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			client_free(cl);
		return;
	}
	if (n == 0) {
		/* EOF: a last line without its newline still counts. */
		if (cl->len == 0)
			client_free(cl);
		else
			client_command(cl, cl->len);
		return;
	}
	nl = memchr(cl->line + cl->len, '\n', (size_t)n);
	cl->len += (size_t)n;
	if (nl != NULL)
		client_command(cl, (size_t)(nl - cl->line));
	else if (cl->len > CTL_LINE_MAX)
		client_error(cl, "line too long (at most %d bytes)", CTL_LINE_MAX);
}

/* After the answer: drop what the client still sends until its EOF. */
static void
client_linger(struct client *cl)
{
	char buf[4096];
	ssize_t n;

	for (int i = 0; i < 16; i++) {
		if ((n = recv(cl->fd, buf, sizeof(buf), 0)) > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		break;
	}
	client_free(cl);
}

static void
client_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct client *cl = io->data;

	(void)loop, (void)revents;
	switch (cl->state) {
	case C_READ:
		client_read(cl);
		break;
	case C_WRITE:
		client_write(cl);
		break;
	case C_LINGER:
		client_linger(cl);
		break;
	case C_WAIT:
		break;
	}
}

static void
client_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct client *cl = t->data;

	(void)loop, (void)revents;
	switch (cl->state) {
	case C_READ:
		log_info("control: no command within %.0f s; closing the connection",
		    CONTROL_READ_SECS);
		ev_io_stop(loop, &cl->io);
		client_error(cl, "no command within %.0f s", CONTROL_READ_SECS);
		break;
	case C_WAIT:
		reload_cancel(&cl->rw);
		client_error(cl, "reload: no outcome within %.0f s; see the log",
		    CONTROL_RELOAD_SECS);
		break;
	case C_WRITE:
		log_warnx("control: a client read none of its answer for %.0f s; closing it",
		    CONTROL_WRITE_SECS);
		client_free(cl);
		break;
	case C_LINGER:
		client_free(cl);
		break;
	}
}

static void
client_new(struct control *c, int fd)
{
	struct client *cl;

	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		log_warnx("control: out of memory for a client");
		close(fd);
		return;
	}
	cl->ctl = c;
	cl->fd = fd;
	strbuf_init(&cl->out, CONTROL_ANSWER_MAX);
	cl->rw.done = client_reloaded;
	cl->rw.arg = cl;
	ev_io_init(&cl->io, client_io_cb, fd, EV_READ);
	cl->io.data = cl;
	ev_timer_init(&cl->timer, client_timer_cb, 0., 0.);
	cl->timer.data = cl;
	LIST_INSERT_HEAD(&c->clients, cl, entry);
	c->nclients++;
	client_arm(cl, C_READ, EV_READ, CONTROL_READ_SECS);
}

/* --- the listening socket --- */

static void
control_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct control *c = t->data;

	(void)revents;
	ev_io_start(loop, &c->io);
}

static void
control_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	static const char busy[] = "error: too many control clients at once; try again\n";
	struct control *c = io->data;
	int fd;

	(void)revents;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		if ((fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			log_warn("control: accept");
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Level-triggered: wait rather than spin. */
				ev_io_stop(loop, io);
				ev_timer_set(&c->pause, PAUSE_SECS, 0.);
				ev_timer_start(loop, &c->pause);
			}
			return;
		}
		if (c->nclients >= CONTROL_MAX_CLIENTS) {
			(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			log_warnx_rate(&c->full_log, ev_now(loop), "control: %d clients at once "
			    "already; closing a new one", CONTROL_MAX_CLIENTS);
			continue;
		}
		client_new(c, fd);
	}
}

void
control_start(struct control *c)
{
	c->loop = c->m->loop;
	ev_io_init(&c->io, control_accept_cb, c->fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->pause, control_pause_cb, 0., 0.);
	c->pause.data = c;
	ev_io_start(c->loop, &c->io);
	log_info("control socket %s", c->path);
}

void
control_close(struct control *c)
{
	struct client *cl;
	struct stat st;

	if (c == NULL)
		return;
	while ((cl = LIST_FIRST(&c->clients)) != NULL)
		client_free(cl);
	if (c->loop != NULL) {
		ev_io_stop(c->loop, &c->io);
		ev_timer_stop(c->loop, &c->pause);
	}
	close(c->fd);
	/* Only our own file: a later instance may have bound the name since. */
	if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino &&
	    unlink(c->path) == -1)
		log_warn("control socket %s left behind", c->path);
	free(c->path);
	free(c);
}

void
control_forget(struct control *c)
{
	struct client *cl;

	if (c == NULL)
		return;
	LIST_FOREACH(cl, &c->clients, entry)
		close(cl->fd);
	close(c->fd);
}
