/*
 * test_health.c: unit tests for the operator's side of src/health.c, on a
 * master built in place (a config, its listen sockets, workers whose
 * channels are real socketpairs, the checks on a real libev loop):
 * health_admin() and health_weight() with every error they name, the
 * CHAN_ADMIN messages each worker gets (the current generation's, not a
 * draining one's; a new worker after its HELLO), the checks of a backend
 * in maint stopped and started again, the settings kept and dropped across
 * a reload, and the state, why, weight and last check that health_view()
 * puts in the backends' rows.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "chan.h"
#include "health.h"
#include "tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define GUARD		10.0	/* seconds: a wait that never ends fails */

/* A worker as the master sees it, and the worker's end of its channel. */
struct fake {
	struct wproc	 w;
	int		 peer;
};

static void
fake_init(struct master *m, struct fake *f, int slot, unsigned gen, enum wstate st)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		bail_out("socketpair: %s", strerror(errno));
	memset(f, 0, sizeof(*f));
	f->w.slot = slot;
	f->w.gen = gen;
	f->w.state = st;
	f->w.chan = sv[0];
	f->w.m = m;
	f->peer = sv[1];
	LIST_INSERT_HEAD(&m->procs, &f->w, entry);
}

static void
fake_fini(struct fake *f)
{
	LIST_REMOVE(&f->w, entry);
	close(f->w.chan);
	close(f->peer);
}

/* The messages waiting for f, of type type, into v (at most n); how many. */
static int
fake_recv(struct fake *f, int type, struct chan_msg *v, int n)
{
	struct chan_msg m;
	int k = 0;

	while (chan_recv(f->peer, &m) == 1)
		if (m.type == type && k < n)
			v[k++] = m;
	return k;
}

/* A listener "web" with three backends and an echo listener, in place. */
struct fixture {
	struct backend_conf	 bc[4];
	char			 spec[4][32];
	struct listener_conf	 lc[2];
	struct config		 cfg;
};

static void
fixture_init(struct fixture *f, const char *const *specs, size_t n,
    const struct addr *addrs, unsigned interval_ms)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		snprintf(f->spec[i], sizeof(f->spec[i]), "%s", specs[i]);
		f->bc[i].spec = f->spec[i];
		f->bc[i].addr = addrs[i];
		f->bc[i].weight = (unsigned)i + 1;
	}
	f->lc[0].name = "web";
	f->lc[0].mode = MODE_PROXY;
	f->lc[0].backends = f->bc;
	f->lc[0].nbackends = n;
	f->lc[0].check_interval_ms = interval_ms;
	f->lc[0].check_timeout_ms = 2000;
	f->lc[0].rise = f->lc[0].fall = 1;
	f->lc[1].name = "echo";
	f->lc[1].mode = MODE_ECHO;
	f->cfg.listeners = f->lc;
	f->cfg.nlisteners = 2;
}

/* A loopback address: listening (fd returned) or refused (closed, -1 returned). */
static int
loopback(struct addr *a, int listening)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	int fd;

	memset(a, 0, sizeof(*a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->len = sizeof(*sin);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)sin, a->len) == -1 || listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)sin, &a->len) == -1)
		bail_out("loopback: %s", strerror(errno));
	if (!listening) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int guard_fired;

static void
guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t, (void)revents;
	guard_fired = 1;
	ev_break(loop, EVBREAK_ALL);
}

/* Run m's loop until f gets a BACKEND message; 1 and it in *got, or 0. */
static int
wait_backend(struct master *m, struct fake *f, struct chan_msg *got)
{
	ev_timer guard;
	int n = 0;

	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, GUARD, 0.);
	ev_timer_start(m->loop, &guard);
	while (n == 0 && !guard_fired) {
		ev_run(m->loop, EVRUN_ONCE);
		n = fake_recv(f, CHAN_BACKEND, got, 1);
	}
	ev_timer_stop(m->loop, &guard);
	return n;
}

/* The row of the view for backend spec of "web". */
static struct stats_bview *
row(struct stats_view *v, const char *spec)
{
	for (size_t i = 0; i < v->nb; i++)
		if (strcmp(v->b[i].addr, spec) == 0)
			return &v->b[i];
	bail_out("no row %s", spec);
}

/* A view as stats_collect() leaves it: all up, config weights, never checked. */
static void
view_init(struct stats_view *v, struct stats_lview *l, struct stats_bview *b,
    const struct fixture *fx)
{
	memset(v, 0, sizeof(*v));
	memset(l, 0, 2 * sizeof(*l));
	l[0].name = "web";
	l[1].name = "echo";
	v->l = l;
	v->nl = 2;
	for (size_t i = 0; i < fx->lc[0].nbackends; i++) {
		memset(&b[i], 0, sizeof(b[i]));
		b[i].li = 0;
		b[i].addr = fx->bc[i].spec;
		b[i].weight = fx->bc[i].weight;
		b[i].state = BACKEND_UP;
		b[i].why = "";
		b[i].check_last = -1;
	}
	v->b = b;
	v->nb = fx->lc[0].nbackends;
}

static void
test_commands(void)
{
	static const char *const specs[] = { "127.0.0.1:9001", "127.0.0.1:9002", "db:9003" };
	static const struct {
		const char	*name;
		const char	*listener, *addr, *state;
		const char	*err;
	} bad[] = {
		{ "unknown state", "web", "127.0.0.1:9001", "down",
		    "state must be ready, drain or maint" },
		{ "empty state", "web", "127.0.0.1:9001", "",
		    "state must be ready, drain or maint" },
		{ "state in capitals", "web", "127.0.0.1:9001", "DRAIN",
		    "state must be ready, drain or maint" },
		{ "unknown listener", "api", "127.0.0.1:9001", "drain", "no listener api" },
		{ "unknown backend", "web", "127.0.0.1:9009", "drain",
		    "no backend 127.0.0.1:9009 in listener web" },
		{ "a backend by its resolved address", "web", "127.0.0.1:9003", "drain",
		    "no backend 127.0.0.1:9003 in listener web" },
		{ "an echo listener", "echo", "127.0.0.1:9001", "maint",
		    "no backend 127.0.0.1:9001 in listener echo" },
	};
	struct fixture fx, fx2;
	struct addr addrs[3];
	struct lsock ls[2];
	struct master m;
	struct fake cur, old, fresh;
	struct chan_msg got[8];
	struct check_state cs;
	struct stats_view v;
	struct stats_lview l[2];
	struct stats_bview b[3];
	char err[128];
	int lfd, n;
	size_t i;

	lfd = loopback(&addrs[0], 1);
	addrs[1] = addrs[0];
	loopback(&addrs[2], 0);		/* db:9003 refuses: its check fails */
	fixture_init(&fx, specs, 3, addrs, 60000);

	memset(&m, 0, sizeof(m));
	LIST_INIT(&m.lsocks);
	LIST_INIT(&m.procs);
	admin_init(&m.admin);
	if ((m.loop = ev_loop_new(EVFLAG_AUTO)) == NULL)
		bail_out("ev_loop_new");
	m.cfg = &fx.cfg;
	m.gen = 2;
	memset(ls, 0, sizeof(ls));
	ls[0].id = 5;
	ls[0].conf = &fx.lc[0];
	ls[1].id = 6;
	ls[1].conf = &fx.lc[1];
	LIST_INSERT_HEAD(&m.lsocks, &ls[1], entry);
	LIST_INSERT_HEAD(&m.lsocks, &ls[0], entry);
	m.checks.loop = m.loop;
	m.checks.changed = health_changed;
	m.checks.arg = &m;
	health_start(&m);
	is_uint(m.checks.n, 3, "health_start: web's three backends checked");
	fake_init(&m, &cur, 0, 2, W_READY);
	fake_init(&m, &old, 0, 1, W_DRAINING);

	/* Every error names what was wrong and changes nothing. */
	for (i = 0; i < NELEM(bad); i++) {
		err[0] = '\0';
		is_int(health_admin(&m, bad[i].listener, bad[i].addr, bad[i].state, err,
		    sizeof(err)), -1, "set backend, %s: -1", bad[i].name);
		is_str(err, bad[i].err, "set backend, %s: the error", bad[i].name);
	}
	is_int(health_weight(&m, "web", "127.0.0.1:9001", 0, err, sizeof(err)), -1,
	    "set weight 0: -1");
	is_str(err, "weight must be 1..256", "set weight 0: the error");
	is_int(health_weight(&m, "web", "127.0.0.1:9001", 257, err, sizeof(err)), -1,
	    "set weight 257: -1");
	is_str(err, "weight must be 1..256", "set weight 257: the error");
	is_int(health_weight(&m, "api", "127.0.0.1:9001", 2, err, sizeof(err)), -1,
	    "set weight, unknown listener: -1");
	is_str(err, "no listener api", "set weight, unknown listener: the error");
	is_int(health_weight(&m, "web", "x:1", 2, err, sizeof(err)), -1,
	    "set weight, unknown backend: -1");
	is_str(err, "no backend x:1 in listener web", "set weight, unknown backend: the error");
	ok(m.admin.n == 0 && fake_recv(&cur, CHAN_ADMIN, got, 8) == 0,
	    "errors: no setting kept, no message sent");

	/* drain: the current worker is told, the draining one is not. */
	is_int(health_admin(&m, "web", "127.0.0.1:9002", "drain", err, sizeof(err)), 0,
	    "set backend web 127.0.0.1:9002 drain: 0");
	n = fake_recv(&cur, CHAN_ADMIN, got, 8);
	ok(n == 1 && got[0].lsock == 5 && got[0].count == 1 &&
	    got[0].conns == CHAN_ADMIN_DRAIN && got[0].seq == 0,
	    "drain: the current worker gets ADMIN lsock 5, backend 1, drain, weight 0");
	is_int(fake_recv(&old, CHAN_ADMIN, got, 8), 0, "drain: the draining worker gets nothing");

	/* weight: kept beside the state */
	is_int(health_weight(&m, "web", "127.0.0.1:9002", 7, err, sizeof(err)), 0,
	    "set weight web 127.0.0.1:9002 7: 0");
	n = fake_recv(&cur, CHAN_ADMIN, got, 8);
	ok(n == 1 && got[0].count == 1 && got[0].conns == CHAN_ADMIN_DRAIN && got[0].seq == 7,
	    "weight: ADMIN backend 1, still drain, weight 7");

	/* maint: its check stops; ready: it starts again */
	is_int(health_admin(&m, "web", "db:9003", "maint", err, sizeof(err)), 0,
	    "set backend web db:9003 maint: 0");
	n = fake_recv(&cur, CHAN_ADMIN, got, 8);
	ok(n == 1 && got[0].count == 2 && got[0].conns == CHAN_ADMIN_MAINT,
	    "maint: ADMIN backend 2, maint");
	ok(checks_state(&m.checks, 5, 2, &cs) == 0 && cs.maint, "maint: its check stopped");
	is_int(health_admin(&m, "web", "db:9003", "drain", err, sizeof(err)), 0,
	    "maint -> drain: 0");
	ok(checks_state(&m.checks, 5, 2, &cs) == 0 && !cs.maint,
	    "drain: checks run (only maint stops them)");
	is_int(health_admin(&m, "web", "db:9003", "maint", err, sizeof(err)), 0,
	    "drain -> maint again: 0");
	fake_recv(&cur, CHAN_ADMIN, got, 8);

	/* A worker that says HELLO learns every setting; an old one nothing. */
	fake_init(&m, &fresh, 1, 2, W_READY);
	health_tell_admin(&m, &fresh.w);
	n = fake_recv(&fresh, CHAN_ADMIN, got, 8);
	ok(n == 2 && ((got[0].count == 1 && got[0].conns == CHAN_ADMIN_DRAIN &&
	    got[0].seq == 7 && got[1].count == 2 && got[1].conns == CHAN_ADMIN_MAINT) ||
	    (got[1].count == 1 && got[1].conns == CHAN_ADMIN_DRAIN && got[1].seq == 7 &&
	    got[0].count == 2 && got[0].conns == CHAN_ADMIN_MAINT)),
	    "HELLO: a new worker gets both settings (%d messages)", n);
	health_tell_admin(&m, &old.w);
	is_int(fake_recv(&old, CHAN_ADMIN, got, 8), 0,
	    "HELLO from an older generation's worker: nothing");

	/* The view: operator > check > passive; weights; last check. */
	view_init(&v, l, b, &fx);
	row(&v, "127.0.0.1:9001")->c.passive_down = 2;
	health_view(&m, &v);
	ok(row(&v, "db:9003")->state == BACKEND_MAINT &&
	    strcmp(row(&v, "db:9003")->why, "operator") == 0, "view: maint, operator");
	ok(row(&v, "127.0.0.1:9002")->state == BACKEND_DRAIN &&
	    strcmp(row(&v, "127.0.0.1:9002")->why, "operator") == 0, "view: drain, operator");
	is_uint(row(&v, "127.0.0.1:9002")->weight, 7, "view: the operator's weight");
	is_uint(row(&v, "127.0.0.1:9001")->weight, 1, "view: the config's weight");
	ok(row(&v, "127.0.0.1:9001")->state == BACKEND_DOWN, "view: passive marks: down");
	is_str(row(&v, "127.0.0.1:9001")->why, "marked down by 2 of 3 workers",
	    "view: ... by 2 of 3 workers");
	row(&v, "127.0.0.1:9001")->c.passive_down = 9;
	health_view(&m, &v);
	is_str(row(&v, "127.0.0.1:9001")->why, "marked down by 3 of 3 workers",
	    "view: a gauge past the workers running is capped");
	row(&v, "127.0.0.1:9001")->c.passive_down = 0;
	health_view(&m, &v);
	ok(row(&v, "127.0.0.1:9001")->state == BACKEND_UP &&
	    strcmp(row(&v, "127.0.0.1:9001")->why, "") == 0, "view: no marks: up, no why");
	is_int(row(&v, "127.0.0.1:9001")->check_last, -1, "view: not checked yet: -1");

	/* Ready from maint: the check runs at once and finds db:9003 refused. */
	is_int(health_admin(&m, "web", "db:9003", "ready", err, sizeof(err)), 0,
	    "set backend web db:9003 ready: 0");
	n = fake_recv(&cur, CHAN_ADMIN, got, 8);
	ok(n == 1 && got[0].count == 2 && got[0].conns == CHAN_ADMIN_READY && got[0].seq == 0,
	    "ready: ADMIN backend 2, ready, the config's weight");
	is_uint(m.admin.n, 1, "ready with the config's weight: its setting is gone");
	ok(wait_backend(&m, &cur, got) && got[0].lsock == 5 && got[0].count == 2 &&
	    got[0].conns == 0, "ready: its check runs again: BACKEND down to the workers");
	view_init(&v, l, b, &fx);
	row(&v, "db:9003")->c.passive_down = 1;
	health_view(&m, &v);
	ok(row(&v, "db:9003")->state == BACKEND_DOWN &&
	    strcmp(row(&v, "db:9003")->why, "check failed") == 0,
	    "view: the check's down comes before passive marks");
	ok(row(&v, "db:9003")->check_last == 0 && row(&v, "db:9003")->check_at > 1e9,
	    "view: last check failed, at a unix time");
	is_int(health_admin(&m, "web", "db:9003", "drain", err, sizeof(err)), 0,
	    "drain the down one: 0");
	health_view(&m, &v);
	ok(row(&v, "db:9003")->state == BACKEND_DRAIN, "view: drain comes before down");
	health_admin(&m, "web", "db:9003", "ready", err, sizeof(err));

	/* A reload: 9002 kept (moved to index 0), 9001 gone, db:9003 gone. */
	health_admin(&m, "web", "127.0.0.1:9001", "maint", err, sizeof(err));
	health_admin(&m, "web", "127.0.0.1:9002", "maint", err, sizeof(err));
	is_uint(m.admin.n, 2, "before the reload: two settings");
	{
		static const char *const specs2[] = { "127.0.0.1:9002", "127.0.0.1:9004" };

		fixture_init(&fx2, specs2, 2, addrs, 60000);
	}
	ls[0].conf = &fx2.lc[0];
	ls[1].conf = &fx2.lc[1];
	m.cfg = &fx2.cfg;
	m.gen = 3;
	health_start(&m);
	ok(m.admin.n == 1 && admin_find(&m.admin, "web", "127.0.0.1:9002") != NULL &&
	    admin_find(&m.admin, "web", "127.0.0.1:9002")->state == ADMIN_MAINT &&
	    admin_find(&m.admin, "web", "127.0.0.1:9002")->weight == 7,
	    "reload: the kept backend keeps maint and weight 7; the gone one's setting goes");
	ok(checks_state(&m.checks, 5, 0, &cs) == 0 && cs.maint,
	    "reload: the kept backend's check (now index 0) stays stopped");
	ok(checks_state(&m.checks, 5, 1, &cs) == 0 && !cs.maint,
	    "reload: the new backend is checked");
	fake_fini(&fresh);
	fake_init(&m, &fresh, 0, 3, W_READY);
	health_tell_admin(&m, &fresh.w);
	n = fake_recv(&fresh, CHAN_ADMIN, got, 8);
	ok(n == 1 && got[0].lsock == 5 && got[0].count == 0 &&
	    got[0].conns == CHAN_ADMIN_MAINT && got[0].seq == 7,
	    "reload: a new generation's worker gets it at its new index 0");
	is_int(health_admin(&m, "web", "127.0.0.1:9001", "ready", err, sizeof(err)), -1,
	    "reload: the gone backend is unknown now");

	fake_fini(&fresh);
	fake_fini(&old);
	fake_fini(&cur);
	checks_clear(&m.checks);
	admin_fini(&m.admin);
	ev_loop_destroy(m.loop);
	close(lfd);
}

int
main(void)
{
	log_set_level(LOGL_ERROR);	/* the expected notices */
	test_commands();
	return done_testing();
}
