/*
 * test_admin.c: unit tests for src/admin.c, the master's table of the
 * operator's backend settings: state names, setting and clearing, the
 * entry that leaves once it says nothing the config does not, and the
 * prune after a reload (kept for a backend with the same address, dropped
 * when the backend, its listener or its listener's name goes).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* A config built in place: listeners by name, each with backends by spec. */
struct fixture {
	struct backend_conf	 bc[4][4];
	struct listener_conf	 lc[4];
	struct config		 cfg;
};

/* specs[i] lists listener i's backends, NULL-terminated; names[i] NULL ends. */
static void
fixture_init(struct fixture *f, const char *const *names,
    const char *const (*specs)[4])
{
	size_t i, j;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < 4 && names[i] != NULL; i++) {
		f->lc[i].name = (char *)names[i];
		f->lc[i].mode = MODE_PROXY;
		f->lc[i].backends = f->bc[i];
		for (j = 0; j < 4 && specs[i][j] != NULL; j++) {
			f->bc[i][j].spec = (char *)specs[i][j];
			f->bc[i][j].weight = 1;
		}
		f->lc[i].nbackends = j;
	}
	f->cfg.listeners = f->lc;
	f->cfg.nlisteners = i;
}

static void
test_names(void)
{
	static const struct {
		const char	*s;
		int		 want;
	} cases[] = {
		{ "ready", ADMIN_READY }, { "drain", ADMIN_DRAIN }, { "maint", ADMIN_MAINT },
		{ "", -1 }, { "Ready", -1 }, { "ready ", -1 }, { "up", -1 },
		{ "maintenance", -1 }, { "dra", -1 }, { "down", -1 },
	};
	size_t i;

	for (i = 0; i < NELEM(cases); i++)
		is_int(admin_state_parse(cases[i].s), cases[i].want, "parse \"%s\"",
		    cases[i].s);
	is_str(admin_state_name(ADMIN_READY), "ready", "name of ready");
	is_str(admin_state_name(ADMIN_DRAIN), "drain", "name of drain");
	is_str(admin_state_name(ADMIN_MAINT), "maint", "name of maint");
	is_str(admin_state_name(ADMIN_MAINT + 1), "?", "name out of range");
	is_str(admin_state_name(-1), "?", "name of -1");
}

static void
test_backend(void)
{
	static const char *const names[] = { "web", NULL };
	static const char *const specs[][4] = {
		{ "127.0.0.1:8001", "localhost:8002", "[::1]:8003", NULL },
	};
	struct fixture f;

	fixture_init(&f, names, specs);
	is_int(admin_backend(&f.lc[0], "127.0.0.1:8001"), 0, "backend 0 by its spec");
	is_int(admin_backend(&f.lc[0], "localhost:8002"), 1, "backend 1 by a name");
	is_int(admin_backend(&f.lc[0], "[::1]:8003"), 2, "backend 2, IPv6");
	is_int(admin_backend(&f.lc[0], "127.0.0.1:8002"), -1,
	    "not as resolved: only as configured");
	is_int(admin_backend(&f.lc[0], "127.0.0.1:800"), -1, "a prefix is not it");
	is_int(admin_backend(&f.lc[0], ""), -1, "empty: none");
}

static void
test_set(void)
{
	struct admin a;
	const struct admin_entry *e;

	admin_init(&a);
	ok(admin_find(&a, "web", "a:1") == NULL, "empty: nothing found");
	is_int(admin_set_state(&a, "web", "a:1", ADMIN_READY), 0, "ready on nothing: 0");
	is_uint(a.n, 0, "... and no entry");
	is_int(admin_set_weight(&a, "web", "a:1", 0), 0, "weight 0 on nothing: 0");
	is_uint(a.n, 0, "... and no entry");

	is_int(admin_set_state(&a, "web", "a:1", ADMIN_DRAIN), 0, "drain a:1: 0");
	e = admin_find(&a, "web", "a:1");
	ok(e != NULL && e->state == ADMIN_DRAIN && e->weight == 0,
	    "a:1 drained, the config's weight");
	ok(admin_find(&a, "web", "a:2") == NULL && admin_find(&a, "api", "a:1") == NULL,
	    "other backend / other listener: nothing");
	is_int(admin_set_weight(&a, "web", "a:1", 7), 0, "weight 7 on a:1: 0");
	e = admin_find(&a, "web", "a:1");
	ok(e != NULL && e->state == ADMIN_DRAIN && e->weight == 7,
	    "weight set, state kept");
	is_uint(a.n, 1, "one entry");
	is_int(admin_set_state(&a, "web", "a:1", ADMIN_READY), 0, "ready a:1: 0");
	e = admin_find(&a, "web", "a:1");
	ok(e != NULL && e->state == ADMIN_READY && e->weight == 7,
	    "ready with a weight: kept");
	is_int(admin_set_weight(&a, "web", "a:1", 0), 0, "weight 0 on a:1: 0");
	ok(admin_find(&a, "web", "a:1") == NULL && a.n == 0,
	    "ready with the config's weight: gone");

	admin_set_state(&a, "web", "a:1", ADMIN_MAINT);
	admin_set_state(&a, "api", "a:1", ADMIN_DRAIN);
	admin_set_weight(&a, "web", "a:2", 256);
	is_uint(a.n, 3, "three entries");
	ok(admin_find(&a, "web", "a:1")->state == ADMIN_MAINT &&
	    admin_find(&a, "api", "a:1")->state == ADMIN_DRAIN &&
	    admin_find(&a, "web", "a:2")->weight == 256,
	    "keyed by listener and address together");
	admin_set_state(&a, "web", "a:1", ADMIN_READY);
	ok(a.n == 2 && admin_find(&a, "api", "a:1") != NULL &&
	    admin_find(&a, "web", "a:2") != NULL, "removing one keeps the others");

	errno = 0;
	is_int(admin_set_state(&a, "web", "a:3", ADMIN_MAINT + 1), -1, "state 3: -1");
	is_int(errno, EINVAL, "... EINVAL");
	errno = 0;
	is_int(admin_set_state(&a, "web", "a:3", -1), -1, "state -1: -1");
	is_int(errno, EINVAL, "... EINVAL");
	errno = 0;
	is_int(admin_set_weight(&a, "web", "a:2", ADMIN_WEIGHT_MAX + 1), -1,
	    "weight 257: -1");
	is_int(errno, EINVAL, "... EINVAL");
	ok(a.n == 2 && admin_find(&a, "web", "a:2")->weight == 256 &&
	    admin_find(&a, "web", "a:3") == NULL, "refused calls changed nothing");
	admin_fini(&a);
	ok(a.v == NULL && a.n == 0, "fini: empty");
	admin_fini(&a);
	ok(1, "fini twice is harmless");
}

static void
collect(void *arg, const struct admin_entry *e)
{
	char *s = arg;

	snprintf(s + strlen(s), 256 - strlen(s), "%s%s/%s", s[0] ? " " : "",
	    e->listener, e->addr);
}

static void
test_prune(void)
{
	static const char *const names1[] = { "web", "api", NULL };
	static const char *const specs1[][4] = {
		{ "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", NULL },
		{ "10.0.1.1:80", NULL },
	};
	/* web loses 10.0.0.2, keeps the others in another order; api is renamed */
	static const char *const names2[] = { "web", "api2", NULL };
	static const char *const specs2[][4] = {
		{ "10.0.0.3:80", "10.0.0.1:80", "10.0.0.4:80", NULL },
		{ "10.0.1.1:80", NULL },
	};
	struct fixture f1, f2;
	struct admin a;
	char gone[256] = "";

	fixture_init(&f1, names1, specs1);
	fixture_init(&f2, names2, specs2);
	admin_init(&a);
	admin_set_state(&a, "web", "10.0.0.1:80", ADMIN_MAINT);
	admin_set_state(&a, "web", "10.0.0.2:80", ADMIN_DRAIN);
	admin_set_weight(&a, "web", "10.0.0.3:80", 5);
	admin_set_state(&a, "api", "10.0.1.1:80", ADMIN_DRAIN);

	is_uint(admin_prune(&a, &f1.cfg, collect, gone), 0,
	    "prune against the same config: nothing goes");
	is_uint(a.n, 4, "... four entries");

	is_uint(admin_prune(&a, &f2.cfg, collect, gone), 2, "prune after the reload: two go");
	is_str(gone, "web/10.0.0.2:80 api/10.0.1.1:80",
	    "the backend no longer configured and the renamed listener's, each named");
	ok(a.n == 2 && admin_find(&a, "web", "10.0.0.1:80") != NULL &&
	    admin_find(&a, "web", "10.0.0.1:80")->state == ADMIN_MAINT &&
	    admin_find(&a, "web", "10.0.0.3:80") != NULL &&
	    admin_find(&a, "web", "10.0.0.3:80")->weight == 5,
	    "the backends kept at the same address keep their settings, moved or not");

	/* the listener turns into an echo listener: no backends */
	f2.lc[0].mode = MODE_ECHO;
	f2.lc[0].nbackends = 0;
	is_uint(admin_prune(&a, &f2.cfg, NULL, NULL), 2, "listener without backends: all go");
	is_uint(a.n, 0, "... empty");

	/* a backend that came back is not what it was */
	admin_set_state(&a, "web", "10.0.0.2:80", ADMIN_DRAIN);
	admin_prune(&a, &f2.cfg, NULL, NULL);
	admin_prune(&a, &f1.cfg, NULL, NULL);
	ok(admin_find(&a, "web", "10.0.0.2:80") == NULL,
	    "dropped when it went; back later: ready, as configured");
	admin_fini(&a);
}

int
main(void)
{
	test_names();
	test_backend();
	test_set();
	test_prune();
	return done_testing();
}
