/*
 * test_check.c: unit tests for src/check.c, the active health checks, on a
 * real libev loop against loopback sockets: the result and time of the
 * last check, the changes reported, and the operator's maintenance (the
 * check stops, nothing of it stays scheduled; on ready it starts again
 * from up, at once).
 *
 * Each wait runs the loop until a condition holds, with a guard timer
 * that ends the wait (and fails the test) should it never hold.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "check.h"
#include "config.h"
#include "log.h"
#include "tap.h"

#define LSOCK		7	/* the listen socket id the checks report */
#define GUARD		10.0	/* seconds: a wait that never ends fails */

struct changes {
	int		 n;
	size_t		 idx[16];
	int		 up[16];
};

static void
changed(void *arg, uint32_t lsock, size_t idx, int up)
{
	struct changes *c = arg;

	if (lsock != LSOCK)
		bail_out("change reported for listen socket %u", lsock);
	if (c->n < 16) {
		c->idx[c->n] = idx;
		c->up[c->n] = up;
	}
	c->n++;
}

static int guard_fired;

static void
guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t, (void)revents;
	guard_fired = 1;
	ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until *n reaches want, or the guard fires; 1 when reached. */
static int
run_until(struct ev_loop *loop, const int *n, int want)
{
	ev_timer guard;

	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, GUARD, 0.);
	ev_timer_start(loop, &guard);
	while (*n < want && !guard_fired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	return *n >= want;
}

/* A loopback listening socket; its address to a. */
static int
listener(struct addr *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	int fd;

	memset(a, 0, sizeof(*a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->len = sizeof(*sin);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)sin, a->len) == -1 || listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)sin, &a->len) == -1)
		bail_out("listener: %s", strerror(errno));
	return fd;
}

/* Connections waiting on fd, accepted and closed: how many. */
static int
drain(int fd)
{
	int c, n = 0;

	while ((c = accept(fd, NULL, NULL)) != -1) {
		close(c);
		n++;
	}
	return n;
}

int
main(void)
{
	struct ev_loop *loop;
	struct backend_conf bc[2];
	struct listener_conf lc;
	struct checks cs;
	struct changes ch;
	struct check_state st;
	struct addr dead;
	int lfd, dfd, reached, n;
	ev_timer guard;

	log_set_level(LOGL_ERROR);	/* the expected "is down" lines */
	if ((loop = ev_loop_new(EVFLAG_AUTO)) == NULL)
		bail_out("ev_loop_new");

	/* bc[0] listens; bc[1] is a port nothing listens on (refused). */
	memset(bc, 0, sizeof(bc));
	memset(&lc, 0, sizeof(lc));
	lfd = listener(&bc[0].addr);
	dfd = listener(&dead);
	bc[1].addr = dead;
	close(dfd);
	bc[0].spec = "up";
	bc[1].spec = "refused";
	bc[0].weight = bc[1].weight = 1;
	lc.name = "test";
	lc.mode = MODE_PROXY;
	lc.backends = bc;
	lc.nbackends = 2;
	lc.check_interval_ms = 20;
	lc.check_timeout_ms = 2000;
	lc.rise = lc.fall = 1;

	memset(&cs, 0, sizeof(cs));
	memset(&ch, 0, sizeof(ch));
	cs.loop = loop;
	cs.changed = changed;
	cs.arg = &ch;

	is_int(checks_add(&cs, LSOCK, &lc), 0, "checks_add: 0");
	is_uint(cs.n, 2, "two backends checked");
	ok(checks_state(&cs, LSOCK, 0, &st) == 0 && st.up && !st.maint &&
	    st.last == -1 && st.at == 0, "before any check: up, never checked");
	is_int(checks_state(&cs, LSOCK, 2, &st), -1, "state of backend 2 of 2: -1");
	is_int(checks_state(&cs, LSOCK + 1, 0, &st), -1, "state on another socket: -1");
	is_int(checks_maint(&cs, LSOCK, 2, 1), -1, "maint of backend 2 of 2: -1");

	/* The refused one goes down (fall 1); the other passes. */
	reached = run_until(loop, &ch.n, 1);
	ok(reached && ch.idx[0] == 1 && ch.up[0] == 0, "refused backend reported down");
	memset(&st, 0, sizeof(st));
	reached = checks_state(&cs, LSOCK, 1, &st) == 0;
	ok(reached && !st.up && st.last == 0 && st.at > 1e9,
	    "its state: down, last check failed, at a unix time (%.0f)", st.at);
	/* wait for a passed check of the other one: a connection reaches lfd */
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, GUARD, 0.);
	ev_timer_start(loop, &guard);
	while (!guard_fired && (checks_state(&cs, LSOCK, 0, &st), st.last != 1))
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	n = drain(lfd);
	ok(st.last == 1 && st.up && st.at > 1e9,
	    "listening backend: up, last check passed (%d check connections)", n);

	/* Maintenance: both checks stop; nothing of them stays scheduled. */
	is_int(checks_maint(&cs, LSOCK, 0, 1), 0, "maint backend 0: 0");
	is_int(checks_maint(&cs, LSOCK, 1, 1), 0, "maint backend 1: 0");
	is_int(checks_maint(&cs, LSOCK, 1, 1), 0, "maint again: 0 (no-op)");
	ok(checks_state(&cs, LSOCK, 1, &st) == 0 && st.maint && !st.up && st.last == 0,
	    "in maint: the last state and result kept");
	/*
	 * ev_run() without flags returns once no referenced watcher is
	 * active: at once when both checks stopped.  The guard is unref'd so
	 * it does not count; it fires only if a check is still scheduled.
	 */
	drain(lfd);
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, 2.0, 0.);
	ev_timer_start(loop, &guard);
	ev_unref(loop);
	ev_run(loop, 0);
	ev_ref(loop);
	ev_timer_stop(loop, &guard);
	ok(!guard_fired, "maint: no check watcher left active (the loop ran dry)");
	is_int(drain(lfd), 0, "maint: no check connection reached the backend");
	is_int(ch.n, 1, "maint: no change reported");

	/* Ready: the down one starts again from up, reported, then checked at once. */
	is_int(checks_maint(&cs, LSOCK, 1, 0), 0, "ready backend 1: 0");
	ok(ch.n == 2 && ch.idx[1] == 1 && ch.up[1] == 1,
	    "ready: the backend the checks had down is reported up");
	ok(checks_state(&cs, LSOCK, 1, &st) == 0 && st.up && !st.maint,
	    "ready: up, not in maint");
	reached = run_until(loop, &ch.n, 3);
	ok(reached && ch.idx[2] == 1 && ch.up[2] == 0,
	    "ready: its check runs again and finds it down again");
	is_int(checks_maint(&cs, LSOCK, 0, 0), 0, "ready backend 0: 0");
	is_int(ch.n, 3, "ready of an up backend: no change reported");
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, GUARD, 0.);
	ev_timer_start(loop, &guard);
	while (!guard_fired && drain(lfd) == 0)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	ok(!guard_fired, "ready: the listening backend is checked again");

	checks_clear(&cs);
	is_uint(cs.n, 0, "checks_clear: none left");
	is_int(checks_maint(&cs, LSOCK, 0, 1), -1, "after clear: maint -1");
	close(lfd);
	ev_loop_destroy(loop);
	return done_testing();
}
