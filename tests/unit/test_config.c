/*
 * test_config.c: unit tests for src/config.c and src/confkey.c.
 *
 * Configs are built with config_parse_string(), which goes through the same
 * inih handler as a file, so line numbers in the messages are real.  Every
 * error must be reported as "NAME:LINE: key: message" (here NAME is
 * "t.conf"); a bad config gives NULL; every problem in a text is reported.
 * A few cases go through config_load() with a real file.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "net.h"
#include "tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define NAME		"t.conf"
#define LISTENER_A	"[listener a]\nlisten = 127.0.0.1:7001\n"

static long ncpu;

/* config_free() of NULL is not promised by config.h */
static void
cfree(struct config *c)
{
	if (c != NULL)
		config_free(c);
}

static void
ov_init(struct config_overrides *ov)
{
	memset(ov, 0, sizeof(*ov));
	ov->workers = 0;
	ov->log_level = -1;
	ov->listen = NULL;
	ov->nlisten = 0;
	ov->mode = -1;		/* -m not given */
}

static void
errs_reset(struct config_errors *errs)
{
	config_errors_fini(errs);
	errs->msg = NULL;
	errs->n = 0;
}

static void
dump_errors(const struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		diag("  error %zu: %s", i + 1, errs->msg[i] ? errs->msg[i] : "(NULL)");
}

/* Index of the first message starting with prefix (and containing sub); -1. */
static int
find_error(const struct config_errors *errs, const char *prefix, const char *sub)
{
	size_t i;

	for (i = 0; i < errs->n; i++) {
		if (errs->msg[i] == NULL)
			continue;
		if (strncmp(errs->msg[i], prefix, strlen(prefix)) != 0)
			continue;
		if (sub != NULL && strstr(errs->msg[i] + strlen(prefix), sub) == NULL)
			continue;
		return (int)i;
	}
	return -1;
}

/* The line errs records for message i: the one after "name:", or -1. */
static int
line_in(const struct config_errors *errs, size_t i, const char *name)
{
	const char *p = errs->msg[i] + strlen(name);
	char *end;
	long v;

	if (strncmp(errs->msg[i], name, strlen(name)) != 0 || *p != ':' ||
	    !isdigit((unsigned char)p[1]))
		return -1;
	v = strtol(p + 1, &end, 10);
	return *end == ':' ? (int)v : -1;
}

/*
 * Every message is one line and names the file, and records the line it
 * names (errs->line) as its text states it.
 */
static int
errors_well_formed(const struct config_errors *errs, const char *name)
{
	size_t i;

	for (i = 0; i < errs->n; i++) {
		if (errs->msg[i] == NULL || strchr(errs->msg[i], '\n') != NULL ||
		    strncmp(errs->msg[i], name, strlen(name)) != 0 ||
		    errs->msg[i][strlen(name)] != ':' ||
		    errs->line[i] != line_in(errs, i, name))
			return 0;
	}
	return 1;
}

/* ---- a full valid config ------------------------------------------------------ */

static const char full_text[] =
	"; preforkd test configuration\n"		/* 1 */
	"# every key, not all at their default\n"	/* 2 */
	"[daemon]\n"					/* 3 */
	"workers = 3\n"					/* 4 */
	"max_connections = 500\n"			/* 5 */
	"log_level = debug\n"				/* 6 */
	"log_target = /var/log/preforkd.log\n"		/* 7 */
	"shutdown_timeout = 250ms\n"			/* 8 */
	"drain_timeout = 2m\n"				/* 9 */
	"max_draining = 7\n"				/* 10 */
	"\n"						/* 11 */
	"[listener echo-1.a_B]\n"			/* 12 */
	"listen = 127.0.0.1:7001\n"			/* 13 */
	"mode = echo\n"					/* 14 */
	"backlog = 77\n"				/* 15 */
	"idle_timeout = 0\n"				/* 16 */
	"buffer_size = 1k\n"				/* 17 */
	"[listener six]\n"				/* 18 */
	"listen=[::1]:7002\n"				/* 19 */
	"  mode   =   echo  \n"				/* 20 */
	"backlog = 65535\n"				/* 21 */
	"idle_timeout = 24h\n"				/* 22 */
	"buffer_size = 16m\n";				/* 23 */

static int
addr_is(const struct addr *a, const char *spec)
{
	struct addr want;
	char err[128];

	if (net_parse_addr(spec, 0, &want, err, sizeof(err)) != 0)
		return 0;
	return net_addr_equal(a, &want);
}

static void
test_full(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	const struct listener_conf *l;

	ov_init(&ov);
	c = config_parse_string(NAME, full_text, &ov, &errs);
	if (!ok(c != NULL, "full config parses")) {
		dump_errors(&errs);
		errs_reset(&errs);
		return;
	}
	is_int(errs.n, 0, "full config: no errors");
	is_int(c->workers, 3, "workers");
	is_uint(c->max_connections, 500, "max_connections");
	is_int(c->log_level, LOGL_DEBUG, "log_level");
	is_str(c->log_target, "/var/log/preforkd.log", "log_target");
	is_uint(c->shutdown_ms, 250, "shutdown_timeout = 250ms");
	is_uint(c->drain_ms, 120000, "drain_timeout = 2m");
	is_uint(c->max_draining, 7, "max_draining");
	if (!is_int(c->nlisteners, 2, "two listeners")) {
		config_free(c);
		return;
	}

	l = &c->listeners[0];
	is_str(l->name, "echo-1.a_B", "listener 1: name, in file order");
	is_str(l->listen, "127.0.0.1:7001", "listener 1: listen as written");
	ok(addr_is(&l->addr, "127.0.0.1:7001"), "listener 1: address");
	is_int(l->mode, MODE_ECHO, "listener 1: mode");
	is_int(l->backlog, 77, "listener 1: backlog");
	is_uint(l->idle_ms, 0, "listener 1: idle_timeout = 0 (off)");
	is_uint(l->buffer_size, 1024, "listener 1: buffer_size = 1k");
	is_int(l->line, 12, "listener 1: line of its section header");

	l = &c->listeners[1];
	is_str(l->name, "six", "listener 2: name");
	is_str(l->listen, "[::1]:7002", "listener 2: listen as written");
	ok(addr_is(&l->addr, "[::1]:7002"), "listener 2: address");
	is_int(l->mode, MODE_ECHO, "listener 2: mode (spaces around = and value)");
	is_int(l->backlog, 65535, "listener 2: backlog");
	is_uint(l->idle_ms, 86400000u, "listener 2: idle_timeout = 24h");
	is_uint(l->buffer_size, 16u << 20, "listener 2: buffer_size = 16m");
	is_int(l->line, 18, "listener 2: line of its section header");

	ok(config_listener(c, "six") == &c->listeners[1], "config_listener(\"six\")");
	ok(config_listener(c, "echo-1.a_B") == &c->listeners[0],
	    "config_listener(\"echo-1.a_B\")");
	ok(config_listener(c, "nope") == NULL, "config_listener(\"nope\") is NULL");
	ok(config_listener(c, "Six") == NULL, "listener names are case-sensitive");
	cfree(c);
	errs_reset(&errs);
}

/* ---- defaults -------------------------------------------------------------------- */

static const struct {
	const char	*name;
	const char	*text;
} default_texts[] = {
	{ "listener only",		LISTENER_A },
	{ "empty [daemon]",		"[daemon]\n" LISTENER_A },
	{ "no trailing newline",	"[listener a]\nlisten = 127.0.0.1:7001" },
	{ "comments and blank lines",	"; c\n# c\n\n[daemon]\n; c\n\n" LISTENER_A "\n; end\n" },
};

static void
test_defaults(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	const struct listener_conf *l;
	const char *n;
	size_t i;

	ov_init(&ov);
	for (i = 0; i < NELEM(default_texts); i++) {
		n = default_texts[i].name;
		c = config_parse_string(NAME, default_texts[i].text, &ov, &errs);
		if (!ok(c != NULL, "defaults (%s): parses", n)) {
			dump_errors(&errs);
			errs_reset(&errs);
			continue;
		}
		is_int(errs.n, 0, "defaults (%s): no errors", n);
		is_int(c->workers, ncpu, "defaults (%s): workers = auto = %ld CPUs", n, ncpu);
		is_uint(c->max_connections, 10000, "defaults (%s): max_connections", n);
		is_int(c->log_level, LOGL_NOTICE, "defaults (%s): log_level notice", n);
		is_str(c->log_target, "stderr", "defaults (%s): log_target", n);
		is_int(c->log_format, LOGF_TEXT, "defaults (%s): log_format text", n);
		is_uint(c->shutdown_ms, 30000, "defaults (%s): shutdown_timeout 30s", n);
		is_uint(c->drain_ms, 60000, "defaults (%s): drain_timeout 60s", n);
		is_uint(c->max_draining, 4, "defaults (%s): max_draining", n);
		is_int(c->dispatch, DISPATCH_NOTIFY, "defaults (%s): dispatch notify", n);
		if (is_int(c->nlisteners, 1, "defaults (%s): one listener", n)) {
			l = &c->listeners[0];
			is_str(l->name, "a", "defaults (%s): listener name", n);
			is_str(l->listen, "127.0.0.1:7001", "defaults (%s): listen", n);
			ok(addr_is(&l->addr, "127.0.0.1:7001"), "defaults (%s): address", n);
			is_int(l->mode, MODE_ECHO, "defaults (%s): mode echo", n);
			is_int(l->backlog, 1024, "defaults (%s): backlog", n);
			is_uint(l->idle_ms, 300000, "defaults (%s): idle_timeout 5m", n);
			is_uint(l->buffer_size, 16384, "defaults (%s): buffer_size 16k", n);
		}
		cfree(c);
		errs_reset(&errs);
	}
}

/* ---- one key at a time: bounds and syntax -------------------------------------------- */

#define BAD	(-1LL)

static const struct {
	const char	*section;	/* "daemon" or "listener" */
	const char	*key;
	const char	*value;
	long long	 want;		/* BAD: error at the key's line */
} key_cases[] = {
	{ "daemon", "workers",		"1",		1 },
	{ "daemon", "workers",		"256",		256 },
	{ "daemon", "workers",		"auto",		-2 },	/* = ncpu */
	{ "daemon", "workers",		"0",		BAD },
	{ "daemon", "workers",		"257",		BAD },
	{ "daemon", "workers",		"-1",		BAD },
	{ "daemon", "workers",		"many",		BAD },
	{ "daemon", "workers",		"",		BAD },
	{ "daemon", "max_connections",	"1",		1 },
	{ "daemon", "max_connections",	"1000000",	1000000 },
	{ "daemon", "max_connections",	"0",		BAD },
	{ "daemon", "max_connections",	"1000001",	BAD },
	{ "daemon", "max_connections",	"10k",		BAD },
	{ "daemon", "log_level",	"debug",	LOGL_DEBUG },
	{ "daemon", "log_level",	"info",		LOGL_INFO },
	{ "daemon", "log_level",	"notice",	LOGL_NOTICE },
	{ "daemon", "log_level",	"warning",	LOGL_WARNING },
	{ "daemon", "log_level",	"error",	LOGL_ERROR },
	{ "daemon", "log_level",	"loud",		BAD },
	{ "daemon", "log_level",	"",		BAD },
	{ "daemon", "log_target",	"stderr",	0 },
	{ "daemon", "log_target",	"syslog",	0 },
	{ "daemon", "log_target",	"/tmp/preforkd-test.log", 0 },
	{ "daemon", "log_target",	"relative/path.log", BAD },
	{ "daemon", "log_target",	"",		BAD },
	{ "daemon", "log_format",	"text",		LOGF_TEXT },
	{ "daemon", "log_format",	"json",		LOGF_JSON },
	{ "daemon", "log_format",	"JSON",		BAD },
	{ "daemon", "log_format",	"logfmt",	BAD },
	{ "daemon", "log_format",	"",		BAD },
	{ "daemon", "shutdown_timeout",	"0",		0 },
	{ "daemon", "shutdown_timeout",	"1h",		3600000 },
	{ "daemon", "shutdown_timeout",	"3600",		3600000 },
	{ "daemon", "shutdown_timeout",	"1500ms",	1500 },
	{ "daemon", "shutdown_timeout",	"3601s",	BAD },
	{ "daemon", "shutdown_timeout",	"2h",		BAD },
	{ "daemon", "shutdown_timeout",	"5x",		BAD },
	{ "daemon", "shutdown_timeout",	"-1",		BAD },
	{ "daemon", "shutdown_timeout",	"",		BAD },
	{ "daemon", "drain_timeout",	"0",		0 },
	{ "daemon", "drain_timeout",	"60m",		3600000 },
	{ "daemon", "drain_timeout",	"61m",		BAD },
	{ "daemon", "drain_timeout",	"soon",		BAD },
	{ "daemon", "max_draining",	"1",		1 },
	{ "daemon", "max_draining",	"64",		64 },
	{ "daemon", "max_draining",	"0",		BAD },
	{ "daemon", "max_draining",	"65",		BAD },
	{ "daemon", "dispatch",		"notify",	DISPATCH_NOTIFY },
	{ "daemon", "dispatch",		"reuseport",	DISPATCH_REUSEPORT },
	{ "daemon", "dispatch",		"handoff",	DISPATCH_HANDOFF },
	{ "daemon", "dispatch",		"Notify",	BAD },
	{ "daemon", "dispatch",		"accept",	BAD },
	{ "daemon", "dispatch",		"",		BAD },
	{ "listener", "mode",		"echo",		MODE_ECHO },
	{ "listener", "mode",		"bogus",	BAD },
	{ "listener", "mode",		"",		BAD },
	{ "listener", "backlog",	"1",		1 },
	{ "listener", "backlog",	"65535",	65535 },
	{ "listener", "backlog",	"0",		BAD },
	{ "listener", "backlog",	"65536",	BAD },
	{ "listener", "backlog",	"-5",		BAD },
	{ "listener", "backlog",	"1k",		BAD },
	{ "listener", "idle_timeout",	"0",		0 },
	{ "listener", "idle_timeout",	"24h",		86400000 },
	{ "listener", "idle_timeout",	"90s",		90000 },
	{ "listener", "idle_timeout",	"25h",		BAD },
	{ "listener", "idle_timeout",	"86401",	BAD },
	{ "listener", "idle_timeout",	"abc",		BAD },
	{ "listener", "buffer_size",	"1k",		1024 },
	{ "listener", "buffer_size",	"1024",		1024 },
	{ "listener", "buffer_size",	"16m",		16777216 },
	{ "listener", "buffer_size",	"64k",		65536 },
	{ "listener", "buffer_size",	"1023",		BAD },
	{ "listener", "buffer_size",	"512",		BAD },
	{ "listener", "buffer_size",	"16777217",	BAD },
	{ "listener", "buffer_size",	"17m",		BAD },
	{ "listener", "buffer_size",	"big",		BAD },
	{ "listener", "buffer_size",	"0",		BAD },
	{ "listener", "splice",		"auto",		SPLICE_AUTO },
	{ "listener", "splice",		"off",		SPLICE_OFF },
	{ "listener", "splice",		"yes",		BAD },
	{ "listener", "splice",		"On",		BAD },
	{ "listener", "splice",		"",		BAD },
	{ "listen",   "listen",		"127.0.0.1:7001", 0 },
	{ "listen",   "listen",		"[::1]:7001",	0 },
	{ "listen",   "listen",		"*:7001",	0 },
	{ "listen",   "listen",		":7001",	0 },
	{ "listen",   "listen",		"localhost:7001", 0 },
	{ "listen",   "listen",		"127.0.0.1",	BAD },
	{ "listen",   "listen",		"127.0.0.1:0",	BAD },
	{ "listen",   "listen",		"127.0.0.1:65536", BAD },
	{ "listen",   "listen",		"127.0.0.1:http", BAD },
	{ "listen",   "listen",		"[::1",		BAD },
	{ "listen",   "listen",		"",		BAD },
};

/* The value of key in c, as the table states it. */
static long long
key_value(const struct config *c, const char *key)
{
	const struct listener_conf *l = c->nlisteners > 0 ? &c->listeners[0] : NULL;

	if (strcmp(key, "workers") == 0)
		return c->workers;
	if (strcmp(key, "max_connections") == 0)
		return c->max_connections;
	if (strcmp(key, "log_level") == 0)
		return c->log_level;
	if (strcmp(key, "log_format") == 0)
		return c->log_format;
	if (strcmp(key, "shutdown_timeout") == 0)
		return c->shutdown_ms;
	if (strcmp(key, "drain_timeout") == 0)
		return c->drain_ms;
	if (strcmp(key, "max_draining") == 0)
		return c->max_draining;
	if (strcmp(key, "dispatch") == 0)
		return c->dispatch;
	if (l == NULL)
		return -3;
	if (strcmp(key, "mode") == 0)
		return l->mode;
	if (strcmp(key, "backlog") == 0)
		return l->backlog;
	if (strcmp(key, "idle_timeout") == 0)
		return l->idle_ms;
	if (strcmp(key, "buffer_size") == 0)
		return (long long)l->buffer_size;
	if (strcmp(key, "splice") == 0)
		return l->splice;
	return 0;
}

static void
test_keys(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	char text[512], prefix[128];
	size_t i;
	int line;

	ov_init(&ov);
	for (i = 0; i < NELEM(key_cases); i++) {
		const char *k = key_cases[i].key, *v = key_cases[i].value;
		long long want = key_cases[i].want;

		if (strcmp(key_cases[i].section, "daemon") == 0) {
			snprintf(text, sizeof(text), "[daemon]\n%s = %s\n" LISTENER_A, k, v);
			line = 2;
		} else if (strcmp(key_cases[i].section, "listener") == 0) {
			snprintf(text, sizeof(text), LISTENER_A "%s = %s\n", k, v);
			line = 3;
		} else {
			snprintf(text, sizeof(text), "[listener a]\nlisten = %s\n", v);
			line = 2;
		}
		c = config_parse_string(NAME, text, &ov, &errs);
		if (want != BAD) {
			if (!ok(c != NULL && errs.n == 0, "%s = \"%s\" accepted", k, v)) {
				dump_errors(&errs);
			} else if (strcmp(k, "log_target") == 0) {
				is_str(c->log_target, v, "%s = \"%s\": value", k, v);
			} else if (strcmp(k, "listen") == 0) {
				is_str(c->listeners[0].listen, v, "%s = \"%s\": value", k, v);
			} else {
				is_int(key_value(c, k), want == -2 ? ncpu : want,
				    "%s = \"%s\": value", k, v);
			}
		} else {
			snprintf(prefix, sizeof(prefix), NAME ":%d: %s: ", line, k);
			ok(c == NULL, "%s = \"%s\" rejected (NULL)", k, v);
			if (!ok(errs.n == 1 && find_error(&errs, prefix, NULL) == 0 &&
			    errs.msg[0][strlen(prefix)] != '\0' &&
			    errors_well_formed(&errs, NAME),
			    "%s = \"%s\": one error \"%s...\"", k, v, prefix))
				dump_errors(&errs);
		}
		if (c != NULL)
			cfree(c);
		errs_reset(&errs);
	}
}

/* ---- errors: one problem per text ------------------------------------------------------ */

static const struct {
	const char	*name;
	const char	*text;
	int		 line;		/* expected line; 0: any */
	const char	*key;		/* expected key; NULL: not checked */
	const char	*sub;		/* text the message must hold after the prefix */
	size_t		 count;		/* exact number of errors; 0: at least one */
} err_cases[] = {
	{ "unknown key in [daemon]",
	    "[daemon]\nworkers = 2\nfrobnicate = 1\n" LISTENER_A,
	    3, "frobnicate", NULL, 1 },
	{ "unknown key in [listener]",
	    LISTENER_A "colour = red\n",
	    3, "colour", NULL, 1 },
	{ "daemon key in a listener",
	    LISTENER_A "workers = 2\n",
	    3, "workers", NULL, 1 },
	{ "listener key in [daemon]",
	    "[daemon]\nbacklog = 5\n" LISTENER_A,
	    2, "backlog", NULL, 1 },
	{ "key before any section",
	    "workers = 2\n" LISTENER_A,
	    1, "workers", NULL, 1 },
	{ "unknown section",
	    LISTENER_A "[bogus]\n",
	    3, NULL, "bogus", 1 },
	{ "unknown section with a key in it",
	    "[bogus]\nx = 1\n" LISTENER_A,
	    1, NULL, "bogus", 0 },
	{ "listener without a name",
	    "[listener]\n" LISTENER_A,
	    1, NULL, NULL, 0 },
	{ "listener name with bad characters",
	    LISTENER_A "[listener a/b]\nlisten = 127.0.0.1:7002\n",
	    3, NULL, NULL, 0 },
	{ "listener name with a space",
	    LISTENER_A "[listener a b]\nlisten = 127.0.0.1:7002\n",
	    3, NULL, NULL, 0 },
	{ "duplicate key in [daemon]",
	    "[daemon]\nworkers = 2\nworkers = 3\n" LISTENER_A,
	    3, "workers", NULL, 1 },
	{ "duplicate key in a listener",
	    LISTENER_A "backlog = 5\nbacklog = 6\n",
	    4, "backlog", NULL, 1 },
	{ "duplicate listen in a listener",
	    LISTENER_A "listen = 127.0.0.1:7002\n",
	    3, "listen", NULL, 1 },
	{ "duplicate [daemon]",
	    "[daemon]\nworkers = 2\n[daemon]\n" LISTENER_A,
	    3, NULL, "daemon", 0 },
	{ "duplicate [listener alpha]",
	    "[listener alpha]\nlisten = 127.0.0.1:7001\n[listener alpha]\n",
	    3, NULL, "alpha", 0 },
	{ "missing listen",
	    "[daemon]\nworkers = 1\n[listener a]\nbacklog = 10\n",
	    3, "listen", NULL, 1 },
	{ "missing listen in the second listener",
	    LISTENER_A "[listener b]\nmode = echo\n",
	    3, "listen", NULL, 1 },
	{ "listen address without port",
	    "[listener a]\nlisten = 127.0.0.1\n",
	    2, "listen", NULL, 1 },
	{ "listen address with a bad host",
	    "[listener a]\nlisten = 127.0.0.300:80\n",
	    2, "listen", NULL, 1 },
	{ "listen address that does not resolve",
	    "[listener a]\nlisten = nohost.invalid:80\n",
	    2, "listen", NULL, 1 },
	{ "duplicate listen address across listeners",
	    LISTENER_A "[listener b]\nlisten = 127.0.0.1:7001\n",
	    4, "listen", NULL, 1 },
	{ "duplicate listen address, different spelling",
	    "[listener a]\nlisten = *:7001\n[listener b]\nlisten = 0.0.0.0:7001\n",
	    4, "listen", NULL, 1 },
	{ "duplicate v6 listen address, different spelling",
	    "[listener a]\nlisten = [::1]:7001\n[listener b]\n"
	    "listen = [0:0::1]:7001\n",
	    4, "listen", NULL, 1 },
	{ "no listener",
	    "[daemon]\nworkers = 1\n",
	    0, NULL, "no [listener] section", 1 },
	{ "empty text",
	    "",
	    0, NULL, "no [listener] section", 1 },
	{ "comments only",
	    "; nothing\n# here\n",
	    0, NULL, "no [listener] section", 1 },
	{ "line without =",
	    "[daemon]\nworkers\n" LISTENER_A,
	    2, NULL, NULL, 0 },
	{ "unterminated section header",
	    LISTENER_A "[daemon\n",
	    3, NULL, NULL, 0 },
	{ "unknown user",
	    "[daemon]\nuser = no-such-user-here\n" LISTENER_A,
	    2, "user", "unknown user", 1 },
	{ "unknown group",
	    "[daemon]\nuser = nobody\ngroup = no-such-group-here\n" LISTENER_A,
	    3, "group", "unknown group", 1 },
	{ "group without user",
	    "[daemon]\ngroup = nogroup\n" LISTENER_A,
	    2, "group", "needs user", 1 },
	{ "proxy without backend",
	    "[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\n",
	    1, "backend", "no backend", 1 },
	{ "backend in echo mode",
	    LISTENER_A "backend = 127.0.0.1:9000\n",
	    1, "backend", "mode = echo", 1 },
	{ "duplicate backend",
	    "[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\nbackend = 127.0.0.1:9000\n"
	    "backend = 127.0.0.1:9000 weight=2\n",
	    5, "backend", "listed twice", 1 },
	{ "bad backend weight",
	    "[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\nbackend = 127.0.0.1:9000 weight=0\n",
	    4, "backend", "weight=", 1 },
	{ "bad balance",
	    "[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\nbackend = 127.0.0.1:9000\nbalance = fastest\n",
	    5, "balance", "roundrobin", 1 },
	{ "bad check_send escape",
	    "[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\nbackend = 127.0.0.1:9000\n"
	    "check_interval = 1s\ncheck_send = a\\qb\n",
	    6, "check_send", "escape", 1 },
	{ "check_expect without check_interval",
	    "[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\nbackend = 127.0.0.1:9000\n"
	    "check_expect = +PONG\n",
	    1, "check_send/check_expect", "check_interval", 1 },
	{ "send_proxy in echo mode",
	    LISTENER_A "send_proxy = v1\n",
	    1, "send_proxy", "echo", 1 },
	{ "splice = on in echo mode",
	    LISTENER_A "splice = on\n",
	    1, "splice", "echo", 1 },
	{ "bad splice in a proxy listener",
	    "[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\nbackend = 127.0.0.1:9000\n"
	    "splice = sometimes\n",
	    5, "splice", "auto, on or off", 1 },
	{ "duplicate splice (past the 32nd key)",
	    LISTENER_A "splice = off\nsplice = off\n",
	    4, "splice", "duplicate", 1 },
	{ "relative pidfile",
	    "[daemon]\npidfile = run/preforkd.pid\n" LISTENER_A,
	    2, "pidfile", "absolute path", 1 },
	{ "relative control",
	    "[daemon]\ncontrol = run/control.sock\n" LISTENER_A,
	    2, "control", "absolute path, auto or off", 1 },
	{ "control too long for a Unix socket",
	    "[daemon]\ncontrol = /run/preforkd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n" LISTENER_A,
	    2, "control", "longer than 107 bytes", 1 },
	{ "metrics without a port",
	    "[daemon]\nmetrics = 127.0.0.1\n" LISTENER_A,
	    2, "metrics", NULL, 1 },
	{ "metrics = on",
	    "[daemon]\nmetrics = on\n" LISTENER_A,
	    2, "metrics", NULL, 1 },
	{ "metrics on a listener's address",
	    "[daemon]\nworkers = 1\nmetrics = 127.0.0.1:7001\n" LISTENER_A,
	    3, "metrics", "address of [listener a]", 1 },
};

static void
test_errors(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	char prefix[128];
	size_t i;

	ov_init(&ov);
	for (i = 0; i < NELEM(err_cases); i++) {
		const char *n = err_cases[i].name;

		if (err_cases[i].line == 0)
			snprintf(prefix, sizeof(prefix), NAME ":");
		else if (err_cases[i].key == NULL)
			snprintf(prefix, sizeof(prefix), NAME ":%d: ", err_cases[i].line);
		else
			snprintf(prefix, sizeof(prefix), NAME ":%d: %s: ",
			    err_cases[i].line, err_cases[i].key);
		c = config_parse_string(NAME, err_cases[i].text, &ov, &errs);
		ok(c == NULL, "%s: NULL", n);
		if (!ok(find_error(&errs, prefix, err_cases[i].sub) >= 0,
		    "%s: \"%s...%s\"", n, prefix,
		    err_cases[i].sub ? err_cases[i].sub : ""))
			dump_errors(&errs);
		if (err_cases[i].count > 0 &&
		    !is_int(errs.n, err_cases[i].count, "%s: %zu error%s", n,
		    err_cases[i].count, err_cases[i].count == 1 ? "" : "s"))
			dump_errors(&errs);
		ok(errors_well_formed(&errs, NAME), "%s: messages are one line, "
		    "starting with \"" NAME ":\"", n);
		if (c != NULL)
			cfree(c);
		errs_reset(&errs);
	}
}

/* ---- which errors name a line of the file -------------------------------- */

static const char *const one_listen[] = { "127.0.0.1:7501" };
static const char *const bad_listen[] = { "127.0.0.1" };
static const char *const two_backends[] = { "127.0.0.1:9000", "127.0.0.1:9000" };	/* twice */

static const struct {
	const char	*name;
	const char	*file;		/* NULL: the command line alone */
	const char	*text;
	const char	*const *listen;	/* -l, one of them */
	const char	*const *backends; /* -b */
	size_t		 nbackends;
	int		 mode;		/* -m; -1: not given */
	int		 line;		/* errs.line[0]: the file's line, or -1 */
} line_cases[] = {
	{ "a bad value",		NAME, "[daemon]\nworkers = 0\n" LISTENER_A,
	    NULL, NULL, 0, -1, 2 },
	{ "a bad listen",		NAME, "[listener a]\nlisten = 127.0.0.1\n",
	    NULL, NULL, 0, -1, 2 },
	{ "a listener's mode",		NAME, LISTENER_A "backend = 127.0.0.1:9000\n",
	    NULL, NULL, 0, -1, 1 },
	{ "an empty file",		NAME, "", NULL, NULL, 0, -1, 0 },
	{ "no listener, no file",	NULL, NULL, NULL, NULL, 0, -1, -1 },
	{ "a bad -l",			NULL, NULL, bad_listen, NULL, 0, -1, -1 },
	{ "-m echo with -b",		NULL, NULL, one_listen, two_backends, 1, MODE_ECHO, -1 },
	{ "-b twice, in a file's run",	NAME, "[daemon]\n", one_listen, two_backends, 2, -1, -1 },
};

static void
test_error_lines(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	size_t i;

	for (i = 0; i < NELEM(line_cases); i++) {
		ov_init(&ov);
		if (line_cases[i].listen != NULL) {
			ov.listen = line_cases[i].listen;
			ov.nlisten = 1;
		}
		ov.backends = line_cases[i].backends;
		ov.nbackends = line_cases[i].nbackends;
		ov.mode = line_cases[i].mode;
		c = config_parse_string(line_cases[i].file, line_cases[i].text, &ov, &errs);
		if (!ok(c == NULL && errs.n == 1 && errs.line[0] == line_cases[i].line,
		    "%s: one error, recorded at line %d", line_cases[i].name,
		    line_cases[i].line))
			dump_errors(&errs);
		cfree(c);
		errs_reset(&errs);
	}
}

/* ---- user, group and pidfile resolve at load ----------------------------- */

static void
test_user_group(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");

	if (pw == NULL || gr == NULL) {
		skip(3, "no nobody/nogroup on this system");
		return;
	}
	ov_init(&ov);
	c = config_parse_string(NAME, "[daemon]\nuser = nobody\npidfile = /run/p.pid\n"
	    LISTENER_A, &ov, &errs);
	if (ok(c != NULL, "user = nobody parses")) {
		ok(c->uid == pw->pw_uid && c->gid == pw->pw_gid,
		    "user = nobody: uid and primary gid");
		is_str(c->pidfile, "/run/p.pid", "pidfile kept");
	} else
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);
	c = config_parse_string(NAME, "[daemon]\ngroup = nogroup\nuser = nobody\n"
	    LISTENER_A, &ov, &errs);
	ok(c != NULL && c->gid == gr->gr_gid, "group before user still wins");
	cfree(c);
	errs_reset(&errs);
}

/* ---- control: a path, off, or auto from $RUNTIME_DIRECTORY ------------- */

static void
test_control(void)
{
	static const struct {
		const char	*value;		/* NULL: the key left out */
		const char	*rundir;	/* NULL: unset */
		const char	*want;		/* NULL: off */
	} cases[] = {
		{ NULL,			NULL,			NULL },
		{ NULL,			"/run/preforkd",	"/run/preforkd/control.sock" },
		{ NULL,			"",			NULL },
		{ NULL,			"run/relative",		NULL },
		{ NULL,			"/run/a:/run/b",	"/run/a/control.sock" },
		{ "auto",		"/run/x",		"/run/x/control.sock" },
		{ "off",		"/run/preforkd",	NULL },
		{ "/tmp/c.sock",	"/run/preforkd",	"/tmp/c.sock" },
	};
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	char text[256];
	size_t i;

	ov_init(&ov);
	for (i = 0; i < NELEM(cases); i++) {
		if (cases[i].rundir != NULL)
			setenv("RUNTIME_DIRECTORY", cases[i].rundir, 1);
		else
			unsetenv("RUNTIME_DIRECTORY");
		if (cases[i].value != NULL)
			snprintf(text, sizeof(text), "[daemon]\ncontrol = %s\n" LISTENER_A,
			    cases[i].value);
		else
			snprintf(text, sizeof(text), "%s", LISTENER_A);
		c = config_parse_string(NAME, text, &ov, &errs);
		if (ok(c != NULL, "control = %s, RUNTIME_DIRECTORY=%s: parses",
		    cases[i].value ? cases[i].value : "(default)",
		    cases[i].rundir ? cases[i].rundir : "(unset)")) {
			if (cases[i].want == NULL)
				ok(c->control == NULL, "  off (got %s)",
				    c->control ? c->control : "NULL");
			else
				is_str(c->control, cases[i].want, "  the path");
		} else
			dump_errors(&errs);
		cfree(c);
		errs_reset(&errs);
	}
	unsetenv("RUNTIME_DIRECTORY");
}

/* ---- proxy listeners --------------------------------------------------- */

static void
test_proxy(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	const struct listener_conf *l;
	struct config *c;
	const char *cli_backends[] = { "127.0.0.1:9100 weight=3", "127.0.0.1:9101 backup" };
	const char *cli_listen[] = { "127.0.0.1:7100" };

	ov_init(&ov);
	c = config_parse_string(NAME,
	    "[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\n"
	    "backend = 127.0.0.1:9000 weight=5\nbackend = localhost:9001 backup\n"
	    "backend = 127.0.0.1:9002 backup weight=2\nbalance = leastconn\n"
	    "check_interval = 250ms\ncheck_send = PING\\r\\n\ncheck_expect = \\x2bPONG\n"
	    "send_proxy = v2\naccept_proxy = on\n[listener s]\nlisten = 127.0.0.1:7003\n"
	    "mode = proxy\nbackend = 127.0.0.1:9000\nsplice = on\ntcp_nodelay = off\n",
	    &ov, &errs);
	if (!ok(c != NULL, "proxy listener parses")) {
		dump_errors(&errs);
		errs_reset(&errs);
		return;
	}
	l = config_listener(c, "p");
	is_int(l->mode, MODE_PROXY, "mode = proxy");
	is_int(l->nbackends, 3, "three backends");
	is_int(l->backends[0].weight, 5, "weight=5");
	is_int(l->backends[1].backup, 1, "backup");
	ok(l->backends[2].backup && l->backends[2].weight == 2, "backup weight=2");
	is_str(l->backends[1].spec, "localhost:9001", "spec as written");
	is_int(l->backends[1].line, 5, "backend line");
	is_int(l->balance, BAL_LEASTCONN, "balance = leastconn");
	is_int(l->check_interval_ms, 250, "check_interval");
	ok(l->check_send_len == 6 && memcmp(l->check_send, "PING\r\n", 6) == 0,
	    "check_send escapes decoded");
	ok(l->check_expect_len == 5 && memcmp(l->check_expect, "+PONG", 5) == 0,
	    "check_expect \\x2b decoded");
	is_int(l->send_proxy, SEND_PROXY_V2, "send_proxy = v2");
	is_int(l->accept_proxy, 1, "accept_proxy = on");
	is_int(l->connect_ms, 5000, "connect_timeout default");
	is_int(l->retries, 2, "retries default");
	is_int(l->splice, SPLICE_AUTO, "splice default");
	is_int(config_listener(c, "s")->splice, SPLICE_ON, "splice = on");
	is_int(l->tcp_nodelay, 1, "tcp_nodelay default");
	is_int(config_listener(c, "s")->tcp_nodelay, 0, "tcp_nodelay = off");
	cfree(c);
	errs_reset(&errs);

	/* -l with -b: proxy implied. */
	ov.listen = cli_listen;
	ov.nlisten = 1;
	ov.backends = cli_backends;
	ov.nbackends = 2;
	c = config_parse_string(NULL, NULL, &ov, &errs);
	if (ok(c != NULL, "-l with -b parses")) {
		l = config_listener(c, "cli-1");
		ok(l->mode == MODE_PROXY && l->nbackends == 2 &&
		    l->backends[0].weight == 3 && l->backends[1].backup,
		    "-b implies proxy, with weight and backup");
	} else
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);
	ov.mode = MODE_ECHO;
	c = config_parse_string(NULL, NULL, &ov, &errs);
	ok(c == NULL && errs.n == 1 && strstr(errs.msg[0], "mode = echo") != NULL,
	    "-m echo with -b is an error");
	cfree(c);
	errs_reset(&errs);
}

/* ---- source addresses -------------------------------------------------- */

#define PROXY_P	"[listener p]\nlisten = 127.0.0.1:7002\nmode = proxy\n" \
		"backend = 127.0.0.1:9000\n"

static const struct {
	const char	*value;
	size_t		 n;		/* addresses; 0: an error */
	const char	*first;		/* valid: the first and the last address */
	const char	*last;		/* errors: text the message holds */
} source_cases[] = {
	{ "127.0.0.2",				1, "127.0.0.2", "127.0.0.2" },
	{ "127.0.0.2 127.0.0.5\t10.1.2.3",	3, "127.0.0.2", "10.1.2.3" },
	{ "127.0.0.2-127.0.0.9",		8, "127.0.0.2", "127.0.0.9" },
	{ "127.0.0.7-127.0.0.7",		1, "127.0.0.7", "127.0.0.7" },
	{ "10.0.0.250-10.0.1.4",		11, "10.0.0.250", "10.0.1.4" },
	{ "10.0.0.0-10.0.0.255",		256, "10.0.0.0", "10.0.0.255" },
	{ "::1",				1, "::1", "::1" },
	{ "127.0.0.2-127.0.0.3 2001:db8::1 127.0.0.9", 4, "127.0.0.2", "127.0.0.9" },
	{ "2001:db8::1 127.0.0.2",		2, "2001:db8::1", "127.0.0.2" },
	{ "10.0.0.0-10.0.1.0",			0, NULL, "more than 256" },
	{ "10.0.0.0-10.0.0.200 10.0.1.0-10.0.1.100", 0, NULL, "more than 256" },
	{ "127.0.0.9-127.0.0.2",		0, NULL, "ends before it starts" },
	{ "127.0.0.2-",				0, NULL, "IPv4 range" },
	{ "-127.0.0.2",				0, NULL, "IPv4 range" },
	{ "127.0.0.2-127.0.0.3-127.0.0.4",	0, NULL, "IPv4 range" },
	{ "127.0.0.2-9",			0, NULL, "IPv4 range" },
	{ "::1-::2",				0, NULL, "not an IPv4 or IPv6 address" },
	{ "127.0.0.2-::1",			0, NULL, "not an IPv4 or IPv6 address" },
	{ "fe80::1%lo",				1, "fe80::1%lo", "fe80::1%lo" },
	{ "127.1",				0, NULL, "not an IPv4 or IPv6 address" },
	{ "127.0.0.2:80",			0, NULL, "not an IPv4 or IPv6 address" },
	{ "localhost",				0, NULL, "not an IPv4 or IPv6 address" },
	{ "127.0.0.2 bogus",			0, NULL, "\"bogus\"" },
	{ "127.0.0.2 127.0.0.2",		0, NULL, "listed twice" },
	{ "127.0.0.1-127.0.0.3 127.0.0.2",	0, NULL, "listed twice" },
};

static int
source_is(const struct addr *a, const char *ip)
{
	struct addr want;

	return net_parse_ip(ip, &want) == 0 && net_addr_equal(a, &want);
}

static void
test_source(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	const struct listener_conf *l;
	struct config *c;
	char text[512];
	size_t i;

	ov_init(&ov);
	for (i = 0; i < NELEM(source_cases); i++) {
		const char *v = source_cases[i].value;
		size_t n = source_cases[i].n;

		snprintf(text, sizeof(text), PROXY_P "source = %s\n", v);
		c = config_parse_string(NAME, text, &ov, &errs);
		if (n == 0) {
			ok(c == NULL, "source = %s: rejected", v);
			if (!ok(errs.n == 1 && find_error(&errs, NAME ":5: source: ",
			    source_cases[i].last) == 0,
			    "source = %s: \"" NAME ":5: source: ...%s...\"", v,
			    source_cases[i].last))
				dump_errors(&errs);
		} else if (!ok(c != NULL, "source = %s: accepted", v)) {
			dump_errors(&errs);
		} else {
			l = &c->listeners[0];
			is_int(l->nsource, n, "source = %s: %zu addresses", v, n);
			ok(source_is(&l->source[0], source_cases[i].first) &&
			    source_is(&l->source[l->nsource - 1], source_cases[i].last),
			    "source = %s: from %s to %s, port 0", v,
			    source_cases[i].first, source_cases[i].last);
			is_int(l->source_line, 5, "source = %s: its line", v);
		}
		cfree(c);
		errs_reset(&errs);
	}

	/* none by default; the key may come before mode */
	c = config_parse_string(NAME, "[listener p]\nlisten = 127.0.0.1:7002\n"
	    "source = 127.0.0.2-127.0.0.4\nmode = proxy\nbackend = 127.0.0.1:9000\n"
	    "[listener q]\nlisten = 127.0.0.1:7003\nmode = proxy\n"
	    "backend = 127.0.0.1:9000\n", &ov, &errs);
	if (ok(c != NULL, "source before mode = proxy")) {
		l = config_listener(c, "p");
		ok(l->nsource == 3 && source_is(&l->source[1], "127.0.0.3"),
		    "source before mode: 3 addresses in order");
		l = config_listener(c, "q");
		ok(l->nsource == 0 && l->source == NULL, "no source by default");
	} else
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);

	/* in an echo listener: an error at the line of the key */
	c = config_parse_string(NAME, PROXY_P "\n[listener e]\nlisten = 127.0.0.1:7003\n"
	    "backlog = 8\nsource = 127.0.0.2\n", &ov, &errs);
	ok(c == NULL, "source in an echo listener: rejected");
	if (!ok(errs.n == 1 && find_error(&errs, NAME ":9: source: ", "mode = echo") == 0,
	    "source in an echo listener: \"" NAME ":9: source: ...mode = echo\""))
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);

	/* twice in a section */
	c = config_parse_string(NAME, PROXY_P "source = 127.0.0.2\nsource = 127.0.0.3\n",
	    &ov, &errs);
	ok(c == NULL && errs.n == 1 && find_error(&errs, NAME ":6: source: ",
	    "duplicate") == 0, "source twice: \"" NAME ":6: source: duplicate key\"");
	cfree(c);
	errs_reset(&errs);
}

/* ---- address rules: allow, deny, accept_proxy_from, untrusted_proxy ------ */

/* A listener whose line 3 is the rule under test. */
#define APROXY	"[listener a]\nlisten = 127.0.0.1:7001\n"

/* 1 if ip (an address as text) is in set. */
static int
in_set(const struct cidr_set *set, const char *ip)
{
	struct addr a;

	if (net_parse_ip(ip, &a) != 0)
		bail_out("test address %s", ip);
	return cidr_set_match(set, (const struct sockaddr *)&a.ss);
}

static const struct {
	const char	*name;
	const char	*text;		/* after APROXY: line 3 on */
	const char	*in;		/* blank-separated: in l->allow (a: ...), */
	const char	*out;		/* ... or deny (d:) or proxy_from (p:) */
	size_t		 na, nd, np;	/* ranges once built */
	int		 aline, dline, pline;
	int		 untrusted;
} access_good[] = {
	{ "none: no rule", "",
	    "", "a:10.0.0.1 d:10.0.0.1 p:10.0.0.1", 0, 0, 0, 0, 0, 0, UNTRUSTED_REFUSE },
	{ "allow one block", "allow = 10.0.0.0/8\n",
	    "a:10.0.0.0 a:10.255.255.255", "a:9.255.255.255 a:11.0.0.0 d:10.0.0.1",
	    1, 0, 0, 3, 0, 0, UNTRUSTED_REFUSE },
	{ "allow IPv4, IPv6 and hosts", "allow = 10.0.0.0/8 2001:db8::/32\t::1 192.0.2.7\n",
	    "a:10.1.2.3 a:2001:db8:ffff::1 a:::1 a:192.0.2.7 a:::ffff:10.1.2.3",
	    "a:192.0.2.8 a:::2 a:2001:db9::", 4, 0, 0, 3, 0, 0, UNTRUSTED_REFUSE },
	{ "allow repeats append", "allow = 10.0.0.0/8\nbacklog = 5\nallow = 192.168.1.0/24\n"
	    "allow = 2001:db8::/32\n",
	    "a:10.0.0.1 a:192.168.1.1 a:2001:db8::1", "a:192.168.2.1",
	    3, 0, 0, 3, 0, 0, UNTRUSTED_REFUSE },
	{ "adjacent and overlapping blocks merge",
	    "deny = 10.0.0.0/25 10.0.0.128/25\ndeny = 10.0.0.7 10.0.0.0/16\n",
	    "d:10.0.0.0 d:10.0.255.255", "d:10.1.0.0 a:10.0.0.1", 0, 1, 0, 0, 3, 0,
	    UNTRUSTED_REFUSE },
	{ "allow and deny", "deny = 10.0.0.1\nallow = 10.0.0.0/8\n",
	    "a:10.0.0.1 d:10.0.0.1", "d:10.0.0.2", 1, 1, 0, 4, 3, 0, UNTRUSTED_REFUSE },
	{ "everything", "allow = ::/0 0.0.0.0/0\n",
	    "a:0.0.0.0 a:255.255.255.255 a::: a:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "",
	    1, 0, 0, 3, 0, 0, UNTRUSTED_REFUSE },
	{ "accept_proxy_from", "accept_proxy = on\naccept_proxy_from = 127.0.0.1 ::1\n",
	    "p:127.0.0.1 p:::1 p:::ffff:127.0.0.1", "p:127.0.0.2 a:127.0.0.1",
	    0, 0, 2, 0, 0, 4, UNTRUSTED_REFUSE },
	{ "accept_proxy_from before accept_proxy, untrusted_proxy = direct",
	    "accept_proxy_from = 10.1.0.0/16\nuntrusted_proxy = direct\naccept_proxy = on\n",
	    "p:10.1.255.255", "p:10.2.0.0", 0, 0, 1, 0, 0, 3, UNTRUSTED_DIRECT },
	{ "untrusted_proxy = refuse", "accept_proxy = on\naccept_proxy_from = 10.1.0.0/16\n"
	    "untrusted_proxy = refuse\n",
	    "p:10.1.0.0", "", 0, 0, 1, 0, 0, 4, UNTRUSTED_REFUSE },
	{ "in a proxy listener", "mode = proxy\nbackend = 127.0.0.1:9000\n"
	    "allow = 127.0.0.0/8\ndeny = 127.0.0.9\n",
	    "a:127.0.0.9 d:127.0.0.9", "d:127.0.0.8", 1, 1, 0, 5, 6, 0, UNTRUSTED_REFUSE },
};

/* Each "s:ADDR" word of list in the set s names (a, d or p) is, or is not. */
static void
access_check(const struct listener_conf *l, const char *name, const char *list, int want)
{
	char buf[512], *tok, *save = NULL;
	const struct cidr_set *set;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		set = tok[0] == 'a' ? &l->allow : tok[0] == 'd' ? &l->deny : &l->proxy_from;
		is_int(in_set(set, tok + 2), want, "%s: %s is %sin %s", name, tok + 2,
		    want ? "" : "not ", tok[0] == 'a' ? "allow" : tok[0] == 'd' ? "deny" :
		    "accept_proxy_from");
	}
}

static void
test_access(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	const struct listener_conf *l;
	struct config *c;
	char text[1024];
	size_t i;

	ov_init(&ov);
	for (i = 0; i < NELEM(access_good); i++) {
		const char *n = access_good[i].name;

		snprintf(text, sizeof(text), APROXY "%s", access_good[i].text);
		c = config_parse_string(NAME, text, &ov, &errs);
		if (!ok(c != NULL && errs.n == 0, "%s: accepted", n)) {
			dump_errors(&errs);
			cfree(c);
			errs_reset(&errs);
			continue;
		}
		l = &c->listeners[0];
		ok(l->allow.built && l->deny.built && l->proxy_from.built, "%s: sets built", n);
		ok(l->allow.n == access_good[i].na && l->deny.n == access_good[i].nd &&
		    l->proxy_from.n == access_good[i].np, "%s: %zu, %zu and %zu ranges", n,
		    access_good[i].na, access_good[i].nd, access_good[i].np) ||
		    (diag("  got %zu, %zu, %zu", l->allow.n, l->deny.n, l->proxy_from.n), 0);
		ok(l->allow_line == access_good[i].aline && l->deny_line == access_good[i].dline &&
		    l->proxy_from_line == access_good[i].pline,
		    "%s: first lines %d, %d, %d", n, access_good[i].aline,
		    access_good[i].dline, access_good[i].pline);
		is_int(l->untrusted_proxy, access_good[i].untrusted, "%s: untrusted_proxy", n);
		access_check(l, n, access_good[i].in, 1);
		access_check(l, n, access_good[i].out, 0);
		cfree(c);
		errs_reset(&errs);
	}

	/* -l listeners have no rule, and empty sets that match nothing */
	{
		static const char *const cli[] = { "127.0.0.1:7601" };

		ov.listen = cli;
		ov.nlisten = 1;
		c = config_parse_string(NULL, NULL, &ov, &errs);
		if (ok(c != NULL, "-l listener: parses")) {
			l = &c->listeners[0];
			ok(l->allow_line == 0 && l->deny_line == 0 && l->proxy_from_line == 0 &&
			    l->allow.n == 0 && !in_set(&l->deny, "127.0.0.1") &&
			    l->untrusted_proxy == UNTRUSTED_REFUSE, "-l listener: no rule");
		} else
			dump_errors(&errs);
		cfree(c);
		errs_reset(&errs);
		ov_init(&ov);
	}
}

static const struct {
	const char	*name;
	const char	*text;		/* after APROXY */
	int		 line;
	const char	*key;
	const char	*msg;		/* the whole message after "t.conf:LINE: key: " */
} access_bad[] = {
	{ "host bits set", "allow = 10.0.0.1/8\n",
	    3, "allow", "host bits set past the prefix '10.0.0.1/8'" },
	{ "host bits set in IPv6", "deny = 2001:db8::1/32\n",
	    3, "deny", "host bits set past the prefix '2001:db8::1/32'" },
	{ "a name", "allow = localhost\n",
	    3, "allow", "bad address 'localhost'" },
	{ "the second word bad", "allow = 10.0.0.0/8 bogus 10.1.0.0/16\n",
	    3, "allow", "bad address 'bogus'" },
	{ "IPv4 prefix out of range", "deny = 10.0.0.0/33\n",
	    3, "deny", "prefix out of range '10.0.0.0/33'" },
	{ "IPv6 prefix out of range", "deny = ::/129\n",
	    3, "deny", "prefix out of range '::/129'" },
	{ "no prefix after '/'", "deny = 10.0.0.0/\n",
	    3, "deny", "missing prefix length '10.0.0.0/'" },
	{ "a signed prefix", "allow = 10.0.0.0/+8\n",
	    3, "allow", "bad prefix length '10.0.0.0/+8'" },
	{ "trailing junk", "allow = 10.0.0.0/8,\n",
	    3, "allow", "bad prefix length '10.0.0.0/8,'" },
	{ "a relative path", "allow = lists/allow.list\n",
	    3, "allow", "bad address 'lists/allow.list'" },
	{ "a missing file", "allow = /nonexistent-preforkd/allow.list\n",
	    3, "allow", "/nonexistent-preforkd/allow.list: No such file or directory" },
	{ "a directory", "deny = /\n",
	    3, "deny", "/: not a regular file of at most 16 MiB" },
	{ "a device", "deny = /dev/zero\n",
	    3, "deny", "/dev/zero: not a regular file of at most 16 MiB" },
	{ "the second of a repeated key", "allow = 10.0.0.0/8\nallow = 10.0.0.1/8\n",
	    4, "allow", "host bits set past the prefix '10.0.0.1/8'" },
	{ "accept_proxy_from without accept_proxy",
	    "accept_proxy_from = 10.0.0.0/8\n",
	    3, "accept_proxy_from", "needs accept_proxy = on" },
	{ "accept_proxy_from with accept_proxy = off",
	    "accept_proxy = off\naccept_proxy_from = 10.0.0.0/8\naccept_proxy_from = ::1\n",
	    4, "accept_proxy_from", "needs accept_proxy = on" },
	{ "untrusted_proxy = direct without accept_proxy_from",
	    "accept_proxy = on\nuntrusted_proxy = direct\n",
	    4, "untrusted_proxy", "needs accept_proxy_from" },
	{ "untrusted_proxy = refuse without accept_proxy_from",
	    "untrusted_proxy = refuse\n",
	    3, "untrusted_proxy", "needs accept_proxy_from" },
	{ "a bad untrusted_proxy", "accept_proxy = on\naccept_proxy_from = ::1\n"
	    "untrusted_proxy = allow\n",
	    5, "untrusted_proxy", "expected refuse or direct" },
	{ "untrusted_proxy twice", "accept_proxy = on\naccept_proxy_from = ::1\n"
	    "untrusted_proxy = direct\nuntrusted_proxy = direct\n",
	    6, "untrusted_proxy", "duplicate key" },
	{ "an empty allow", "allow =\n",
	    3, "allow", "empty value" },
};

static void
test_access_errors(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	char text[512], want[512];
	size_t i;

	ov_init(&ov);
	for (i = 0; i < NELEM(access_bad); i++) {
		const char *n = access_bad[i].name;

		snprintf(text, sizeof(text), APROXY "%s", access_bad[i].text);
		snprintf(want, sizeof(want), NAME ":%d: %s: %s", access_bad[i].line,
		    access_bad[i].key, access_bad[i].msg);
		c = config_parse_string(NAME, text, &ov, &errs);
		ok(c == NULL, "%s: rejected", n);
		if (!ok(errs.n == 1 && strcmp(errs.msg[0], want) == 0 &&
		    errors_well_formed(&errs, NAME), "%s: \"%s\"", n, want))
			dump_errors(&errs);
		cfree(c);
		errs_reset(&errs);
	}

	/* every bad rule of a text is reported */
	c = config_parse_string(NAME, APROXY "allow = 10.0.0.1/8\ndeny = nope\n"
	    "accept_proxy_from = 10.0.0.0/8\n[listener b]\nlisten = 127.0.0.1:7002\n"
	    "untrusted_proxy = direct\n", &ov, &errs);
	ok(c == NULL && errs.n == 4 &&
	    find_error(&errs, NAME ":3: allow: ", "host bits") >= 0 &&
	    find_error(&errs, NAME ":4: deny: ", "bad address 'nope'") >= 0 &&
	    find_error(&errs, NAME ":5: accept_proxy_from: ", "needs accept_proxy") >= 0 &&
	    find_error(&errs, NAME ":8: untrusted_proxy: ", "needs accept_proxy_from") >= 0,
	    "four bad rules in two listeners: four errors at their lines");
	if (errs.n != 4)
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);
}

/* ---- list files --------------------------------------------------------- */

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL || fwrite(text, 1, len, f) != len ||
	    fclose(f) != 0)
		bail_out("%s: cannot write", path);
}

static void
test_access_files(void)
{
	static const char good[] =
		"# office networks\n"			/* 1 */
		"\n"					/* 2 */
		"10.0.0.0/8\n"				/* 3 */
		"   192.168.7.0/24   # branch\n"	/* 4 */
		"\t2001:db8::/32\r\n"			/* 5 */
		"  # indented comment\n"		/* 6 */
		"::1\n"					/* 7 */
		"198.51.100.9";				/* 8: no newline */
	static const struct {
		const char	*name;
		const char	*text;
		size_t		 len;		/* 0: strlen(text) */
		const char	*msg;		/* after "t.conf:3: allow: FILE" */
	} bad[] = {
		{ "a bad line", "10.0.0.0/8\n# c\n\n192.168.0.0/16\n::1\n\nfoo\n", 0,
		    ":7: bad address 'foo'" },
		{ "host bits on a line", "# c\n10.0.0.1/8\n", 0,
		    ":2: host bits set past the prefix '10.0.0.1/8'" },
		{ "two words on a line", "10.0.0.0/8\n10.1.0.0/16 10.2.0.0/16\n", 0,
		    ":2: one address a line, not '10.1.0.0/16 10.2.0.0/16'" },
		{ "a path in a list file", "/etc/hosts\n", 0,
		    ":1: bad address '/etc/hosts'" },
		{ "a NUL byte", "10.0.0.0/8\n\0\n", 13,
		    ": the file contains a NUL byte" },
		{ "CR alone ends no line", "10.0.0.0/8\r10.1.0.0/16\n", 0,
		    ":1: one address a line, not '10.0.0.0/8?10.1.0.0/16'" },
		{ "a control byte", "10.0.0.0/8\n10.\x01.0.0/16\n", 0,
		    ":2: bad address '10.?.0.0/16'" },
	};
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	const struct listener_conf *l;
	struct config *c;
	char dir[] = "/tmp/test_config_acl.XXXXXX", a[64], b[64], big[64], want[600];
	char text[1024], *t, *p;
	size_t i;
	clock_t t0;
	double secs;

	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp: %s", strerror(errno));
	snprintf(a, sizeof(a), "%s/a.list", dir);
	snprintf(b, sizeof(b), "%s/b.list", dir);
	snprintf(big, sizeof(big), "%s/big.list", dir);
	ov_init(&ov);

	/* a file, a word and a second file; comments, blanks and CRLF */
	write_file(a, good, strlen(good));
	write_file(b, "# empty but for this\n\n", 22);
	snprintf(text, sizeof(text), APROXY "allow = %s 172.16.0.0/12\n"
	    "deny = %s\naccept_proxy = on\naccept_proxy_from = %s\nallow = %s\n",
	    a, b, a, b);
	c = config_parse_string(NAME, text, &ov, &errs);
	if (ok(c != NULL, "list files: accepted")) {
		l = &c->listeners[0];
		is_uint(l->allow.n, 6, "list files: 5 blocks of the file and one word");
		ok(in_set(&l->allow, "10.1.2.3") && in_set(&l->allow, "192.168.7.255") &&
		    in_set(&l->allow, "2001:db8::5") && in_set(&l->allow, "::1") &&
		    in_set(&l->allow, "198.51.100.9") && in_set(&l->allow, "172.31.0.1"),
		    "list files: each line's block is in");
		ok(!in_set(&l->allow, "192.168.8.0") && !in_set(&l->allow, "198.51.100.10"),
		    "list files: the rest is out");
		ok(l->deny.n == 0 && l->deny_line == 4,
		    "list files: a file of comments gives an empty set, and a line");
		is_uint(l->proxy_from.n, 5, "list files: the same file for another key");
		is_int(l->allow_line, 3, "list files: allow's first line");
	} else
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);

	/* a bad line names the config's line, the key, the file and its line */
	for (i = 0; i < NELEM(bad); i++) {
		write_file(a, bad[i].text, bad[i].len ? bad[i].len : strlen(bad[i].text));
		snprintf(text, sizeof(text), APROXY "allow = 10.9.0.0/16 %s\n", a);
		snprintf(want, sizeof(want), NAME ":3: allow: %s%s", a, bad[i].msg);
		c = config_parse_string(NAME, text, &ov, &errs);
		ok(c == NULL, "list file with %s: rejected", bad[i].name);
		if (!ok(errs.n == 1 && strcmp(errs.msg[0], want) == 0 &&
		    errs.line[0] == 3, "list file with %s: \"%s\"", bad[i].name, want))
			dump_errors(&errs);
		cfree(c);
		errs_reset(&errs);
	}

	/* config_load: the file's own name leads, the list file follows */
	write_file(a, "10.0.0.0/8\n\n\nnope\n", 18);
	snprintf(text, sizeof(text), "[daemon]\nworkers = 1\n" APROXY "deny = %s\n", a);
	snprintf(b, sizeof(b), "%s/t.conf", dir);
	write_file(b, text, strlen(text));
	c = config_load(b, &ov, &errs);
	snprintf(want, sizeof(want), "%s:5: deny: %s:4: bad address 'nope'", b, a);
	if (!ok(c == NULL && errs.n == 1 && strcmp(errs.msg[0], want) == 0,
	    "config_load: \"%s\"", want))
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);

	/* 100,000 lines load in linear time: sorted once, not per line */
	if ((t = malloc(100000 * 24)) == NULL)
		bail_out("malloc");
	for (i = 0, p = t; i < 100000; i++) {
		size_t v = i * 7919 % 100000;

		p += sprintf(p, "%s10.%zu.%zu.%zu\n", i % 1000 == 0 ? "# x\n" : "",
		    v / 65536, v / 256 % 256, v % 256);
	}
	write_file(big, t, p - t);
	free(t);
	snprintf(text, sizeof(text), APROXY "deny = %s\n", big);
	t0 = clock();
	c = config_parse_string(NAME, text, &ov, &errs);
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	if (ok(c != NULL, "100,000-line list file: accepted")) {
		l = &c->listeners[0];
		/* 7919 is prime to 100,000: 10.0.0.0 to 10.1.134.159, each once */
		is_uint(l->deny.n, 1, "100,000-line list file: one merged range");
		ok(in_set(&l->deny, "10.0.0.0") && in_set(&l->deny, "10.1.134.159") &&
		    !in_set(&l->deny, "10.1.134.160"), "100,000-line list file: its ends");
	} else
		dump_errors(&errs);
	/* A figure, not a test: time belongs to the benchmark. */
	note("100,000-line list file: %.3f s of CPU", secs);
	cfree(c);
	errs_reset(&errs);

	unlink(a);
	unlink(b);
	unlink(big);
	snprintf(a, sizeof(a), "%s/b.list", dir);
	unlink(a);
	rmdir(dir);
}

/* ---- several errors in one text --------------------------------------------------------- */

static void
test_many_errors(void)
{
	static const char text[] =
		"[daemon]\n"				/* 1 */
		"workers = 0\n"				/* 2 */
		"shutdown_timeout = 5x\n"		/* 3 */
		"bogus = 1\n"				/* 4 */
		"[listener a]\n"			/* 5 */
		"listen = 127.0.0.1:7001\n"		/* 6 */
		"backlog = 0\n"				/* 7 */
		"idle_timeout = 1x\n"			/* 8 */
		"[listener b]\n"			/* 9 */
		"listen = 127.0.0.1:7001\n"		/* 10 */
		"buffer_size = 1g\n";			/* 11 */
	static const char *const want[] = {
		NAME ":2: workers: ",
		NAME ":3: shutdown_timeout: ",
		NAME ":4: bogus: ",
		NAME ":7: backlog: ",
		NAME ":8: idle_timeout: ",
		NAME ":10: listen: ",
		NAME ":11: buffer_size: ",
	};
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	size_t i, before;

	ov_init(&ov);
	c = config_parse_string(NAME, text, &ov, &errs);
	ok(c == NULL, "seven errors: NULL");
	if (!is_int(errs.n, NELEM(want), "seven errors: all reported"))
		dump_errors(&errs);
	for (i = 0; i < NELEM(want); i++)
		ok(find_error(&errs, want[i], NULL) >= 0, "seven errors: \"%s...\"",
		    want[i]);
	if (c != NULL)
		config_free(c);

	/* errors are appended to what errs already holds */
	before = errs.n;
	c = config_parse_string(NAME, "[daemon]\nworkers = 0\n" LISTENER_A, &ov, &errs);
	ok(c == NULL, "second bad text: NULL");
	is_int(errs.n, before + 1, "second bad text: its error appended to the list");
	if (c != NULL)
		cfree(c);
	errs_reset(&errs);
}

/* ---- long lines ---------------------------------------------------------------------------- */

/* A text whose line 3 is a comment or a key line of exactly len bytes. */
static char *
long_line_text(size_t len, int comment, const char *tail)
{
	static const char head[] = "[daemon]\nworkers = 2\n";
	const char *start = comment ? "; " : "log_target = /";
	size_t n = strlen(start), total;
	char *t;

	total = strlen(head) + len + 1 + strlen(LISTENER_A) + strlen(tail) + 1;
	if ((t = malloc(total)) == NULL)
		bail_out("out of memory");
	strcpy(t, head);
	strcat(t, start);
	memset(t + strlen(t), 'a', len - n);
	t[strlen(head) + len] = '\0';
	strcat(t, "\n" LISTENER_A);
	strcat(t, tail);
	return t;
}

static void
test_long_lines(void)
{
	static const struct {
		size_t		 len;
		int		 comment;
		int		 valid;
	} cases[] = {
		{ 100, 0, 1 }, { 198, 0, 1 }, { 198, 1, 1 },
		{ 200, 0, 0 }, { 200, 1, 0 }, { 250, 0, 0 }, { 250, 1, 0 },
		{ 450, 1, 0 }, { 1000, 0, 0 },
	};
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	char *text;
	size_t i;
	int at;

	ov_init(&ov);
	for (i = 0; i < NELEM(cases); i++) {
		const char *kind = cases[i].comment ? "comment" : "key";

		text = long_line_text(cases[i].len, cases[i].comment, "");
		c = config_parse_string(NAME, text, &ov, &errs);
		if (cases[i].valid) {
			if (!ok(c != NULL && errs.n == 0, "%zu-byte %s line accepted",
			    cases[i].len, kind))
				dump_errors(&errs);
			else if (!cases[i].comment)
				is_int(strlen(c->log_target), cases[i].len - 13,
				    "%zu-byte key line: value kept whole", cases[i].len);
		} else {
			ok(c == NULL, "%zu-byte %s line rejected", cases[i].len, kind);
			if (!ok(find_error(&errs, NAME ":3: ", NULL) >= 0 &&
			    errors_well_formed(&errs, NAME),
			    "%zu-byte %s line: error at line 3", cases[i].len, kind))
				dump_errors(&errs);
			if (!is_int(errs.n, 1, "%zu-byte %s line: reported once",
			    cases[i].len, kind))
				dump_errors(&errs);
		}
		if (c != NULL)
			cfree(c);
		errs_reset(&errs);
		free(text);
	}

	/* an error after a long line keeps its own line number (6, not 7) */
	text = long_line_text(250, 0, "colour = red\n");
	c = config_parse_string(NAME, text, &ov, &errs);
	ok(c == NULL, "long line then unknown key: NULL");
	at = find_error(&errs, NAME ":6: colour: ", NULL);
	if (!ok(find_error(&errs, NAME ":3: ", NULL) >= 0 && at >= 0,
	    "long line then unknown key: errors at lines 3 and 6"))
		dump_errors(&errs);
	if (c != NULL)
		cfree(c);
	errs_reset(&errs);
	free(text);
}

/* ---- command-line overrides -------------------------------------------------------------------- */

static void
test_overrides(void)
{
	static const char text[] =
		"[daemon]\nworkers = 2\nlog_level = debug\n" LISTENER_A;
	static const char *const two[] = { "127.0.0.1:7101", "[::1]:7102" };
	static const char *const dup[] = { "127.0.0.1:7001" };
	static const char *const dup2[] = { "127.0.0.1:7201", "127.0.0.1:7201" };
	static const char *const bad[] = { "127.0.0.1" };
	static const char *const nameless[] = { "localhost:7301" };
	/* -w and -L over the file's workers = 2 and log_level = debug */
	static const struct {
		const char	*name;
		int		 w, L;		/* the overrides; 0 and -1: not given */
		int		 workers;	/* -1: the CPU count */
		int		 log_level;
	} flag_cases[] = {
		{ "-w 5 overrides workers = 2",		5,  -1,	5,  LOGL_DEBUG },
		{ "-w auto overrides workers = 2",	-1, -1,	-1, LOGL_DEBUG },
		{ "no flags: the file's values",	0,  -1,	2,  LOGL_DEBUG },
		{ "-L error overrides log_level = debug", 0, LOGL_ERROR, 2, LOGL_ERROR },
	};
	/* -l that the file's listener or another -l refuses */
	static const struct {
		const char	*name;
		const char	*const *listen;
		size_t		 nlisten;
	} bad_l[] = {
		{ "-l with a bad address",		bad,	1 },
		{ "-l with the file's address",		dup,	1 },
		{ "-l twice with one address",		dup2,	2 },
	};
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	const struct listener_conf *l;
	size_t i;

	for (i = 0; i < NELEM(flag_cases); i++) {
		const char *n = flag_cases[i].name;
		int want_workers = flag_cases[i].workers == -1 ? (int)ncpu : flag_cases[i].workers;

		ov_init(&ov);
		ov.workers = flag_cases[i].w;
		ov.log_level = flag_cases[i].L;
		c = config_parse_string(NAME, text, &ov, &errs);
		if (!ok(c != NULL && c->workers == want_workers, "%s: workers %d", n,
		    want_workers))
			dump_errors(&errs);
		ok(c != NULL && c->log_level == flag_cases[i].log_level, "%s: log_level %d",
		    n, flag_cases[i].log_level);
		cfree(c);
		errs_reset(&errs);
	}

	ov_init(&ov);
	ov.workers = 1;
	c = config_parse_string(NAME, "[daemon]\nworkers = 0\n" LISTENER_A, &ov, &errs);
	ok(c == NULL && find_error(&errs, NAME ":2: workers: ", NULL) >= 0,
	    "an override does not hide an error in the file");
	cfree(c);
	errs_reset(&errs);

	ov_init(&ov);
	ov.listen = two;
	ov.nlisten = 2;
	c = config_parse_string(NAME, text, &ov, &errs);
	if (!ok(c != NULL, "-l twice: parses")) {
		dump_errors(&errs);
	} else {
		is_int(c->nlisteners, 3, "-l twice: file listener plus two");
		ok(config_listener(c, "a") != NULL, "-l twice: file listener kept");
		l = config_listener(c, "cli-1");
		if (ok(l != NULL, "-l twice: cli-1")) {
			is_str(l->listen, "127.0.0.1:7101", "cli-1: listen");
			ok(addr_is(&l->addr, "127.0.0.1:7101"), "cli-1: address");
			is_int(l->mode, MODE_ECHO, "cli-1: mode echo");
			is_int(l->line, 0, "cli-1: line 0");
			is_int(l->backlog, 1024, "cli-1: default backlog");
			is_uint(l->idle_ms, 300000, "cli-1: default idle_timeout");
			is_uint(l->buffer_size, 16384, "cli-1: default buffer_size");
		}
		l = config_listener(c, "cli-2");
		if (ok(l != NULL, "-l twice: cli-2")) {
			is_str(l->listen, "[::1]:7102", "cli-2: listen");
			ok(addr_is(&l->addr, "[::1]:7102"), "cli-2: address");
		}
		ok(config_listener(c, "cli-3") == NULL, "-l twice: no cli-3");
	}
	cfree(c);
	errs_reset(&errs);

	ov_init(&ov);
	ov.listen = nameless;
	ov.nlisten = 1;
	c = config_parse_string(NAME, text, &ov, &errs);
	l = c != NULL ? config_listener(c, "cli-1") : NULL;
	ok(l != NULL && (l->addr.ss.ss_family == AF_INET ||
	    l->addr.ss.ss_family == AF_INET6), "-l localhost:7301 resolves");
	cfree(c);
	errs_reset(&errs);

	for (i = 0; i < NELEM(bad_l); i++) {
		ov_init(&ov);
		ov.listen = bad_l[i].listen;
		ov.nlisten = bad_l[i].nlisten;
		c = config_parse_string(NAME, text, &ov, &errs);
		ok(c == NULL && errs.n >= 1, "%s: NULL with an error", bad_l[i].name);
		cfree(c);
		errs_reset(&errs);
	}

	/* the overrides supply the missing listener */
	ov_init(&ov);
	ov.listen = two;
	ov.nlisten = 1;
	c = config_parse_string(NAME, "[daemon]\nworkers = 2\n", &ov, &errs);
	ok(c != NULL && c->nlisteners == 1 && config_listener(c, "cli-1") != NULL,
	    "-l stands in for a missing [listener] section");
	cfree(c);
	errs_reset(&errs);
}

/* ---- config_load ------------------------------------------------------------------------- */

static void
test_load(void)
{
	static const char *const one[] = { "127.0.0.1:7401" };
	char dir[] = "/tmp/test_config.XXXXXX", path[256], missing[256], want[300];
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/preforkd.conf", dir);
	snprintf(missing, sizeof(missing), "%s/absent.conf", dir);

	if ((f = fopen(path, "w")) == NULL)
		bail_out("%s: %s", path, strerror(errno));
	fputs(full_text, f);
	fclose(f);
	ov_init(&ov);
	c = config_load(path, &ov, &errs);
	if (ok(c != NULL, "config_load of the full config")) {
		is_str(c->file, path, "config_load: file recorded");
		is_int(c->nlisteners, 2, "config_load: two listeners");
		is_int(c->workers, 3, "config_load: workers");
	} else {
		dump_errors(&errs);
	}
	cfree(c);
	errs_reset(&errs);

	if ((f = fopen(path, "w")) == NULL)
		bail_out("%s: %s", path, strerror(errno));
	fputs("[daemon]\n\nworkers = 999\n" LISTENER_A, f);
	fclose(f);
	c = config_load(path, &ov, &errs);
	snprintf(want, sizeof(want), "%s:3: workers: ", path);
	ok(c == NULL, "config_load of a bad file: NULL");
	if (!ok(errs.n == 1 && find_error(&errs, want, NULL) == 0,
	    "config_load: \"FILE:3: workers: ...\""))
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);

	c = config_load(missing, &ov, &errs);
	snprintf(want, sizeof(want), "%s: No such file or directory", missing);
	ok(c == NULL, "config_load of a missing file: NULL");
	if (!ok(errs.n == 1 && strcmp(errs.msg[0], want) == 0 && errs.line[0] == -1,
	    "config_load of a missing file: \"FILE: No such file or directory\", no line"))
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);

	ov.listen = one;
	ov.nlisten = 1;
	c = config_load(NULL, &ov, &errs);
	if (ok(c != NULL, "config_load(NULL) with -l")) {
		ok(c->file == NULL, "config_load(NULL): no file");
		ok(c->nlisteners == 1 && config_listener(c, "cli-1") != NULL,
		    "config_load(NULL): listener cli-1");
		is_int(c->workers, ncpu, "config_load(NULL): default workers");
		is_uint(c->shutdown_ms, 30000, "config_load(NULL): default shutdown");
	} else {
		dump_errors(&errs);
	}
	cfree(c);
	errs_reset(&errs);

	ov_init(&ov);
	c = config_load(NULL, &ov, &errs);
	ok(c == NULL && errs.n >= 1, "config_load(NULL) without -l: no listener, NULL");
	cfree(c);
	errs_reset(&errs);

	unlink(path);
	rmdir(dir);
}

/* ---- the key table ---------------------------------------------------------------------------- */

static void
test_key_table(void)
{
	static const struct {
		const char	*section, *name, *def;
	} want[] = {
		{ "daemon", "workers",		"auto" },
		{ "daemon", "max_connections",	"10000" },
		{ "daemon", "log_level",	"notice" },
		{ "daemon", "log_target",	"stderr" },
		{ "daemon", "log_format",	"text" },
		{ "daemon", "shutdown_timeout",	"30s" },
		{ "daemon", "drain_timeout",	"60s" },
		{ "daemon", "max_draining",	"4" },
		{ "daemon", "user",		NULL },
		{ "daemon", "group",		NULL },
		{ "daemon", "pidfile",		NULL },
		{ "daemon", "dispatch",		"notify" },
		{ "daemon", "control",		"auto" },
		{ "daemon", "metrics",		"off" },
		{ "listener", "listen",		NULL },
		{ "listener", "mode",		"echo" },
		{ "listener", "backlog",	"1024" },
		{ "listener", "idle_timeout",	"5m" },
		{ "listener", "buffer_size",	"16k" },
		{ "listener", "backend",	NULL },
		{ "listener", "balance",	"roundrobin" },
		{ "listener", "connect_timeout", "5s" },
		{ "listener", "retries",	"2" },
		{ "listener", "halfclose_timeout", "30s" },
		{ "listener", "max_fails",	"3" },
		{ "listener", "fail_timeout",	"10s" },
		{ "listener", "check_interval",	"0" },
		{ "listener", "check_timeout",	"2s" },
		{ "listener", "rise",		"2" },
		{ "listener", "fall",		"3" },
		{ "listener", "check_send",	NULL },
		{ "listener", "check_expect",	NULL },
		{ "listener", "send_proxy",	"off" },
		{ "listener", "accept_proxy",	"off" },
		{ "listener", "proxy_timeout",	"5s" },
		{ "listener", "allow",		NULL },
		{ "listener", "deny",		NULL },
		{ "listener", "accept_proxy_from", NULL },
		{ "listener", "untrusted_proxy", "refuse" },
		{ "listener", "source",		NULL },
		{ "listener", "splice",		"auto" },
		{ "listener", "tcp_nodelay",	"on" },
		{ "listener", "max_connections", "0" },
		{ "listener", "max_conn_per_client", "0" },
		{ "listener", "conn_rate_per_client", "0" },
		{ "listener", "client_ipv6_prefix", "64" },
		{ "listener", "client_table_size", "65536" },
	};
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	const struct config_key *k;
	char text[512];
	size_t n = 0, i, j;

	k = config_keys(&n);
	if (!ok(k != NULL, "config_keys"))
		return;
	is_int(n, NELEM(want), "config_keys: %zu keys", NELEM(want));
	for (i = 0; i < NELEM(want); i++) {
		for (j = 0; j < n; j++)
			if (strcmp(k[j].section, want[i].section) == 0 &&
			    strcmp(k[j].name, want[i].name) == 0)
				break;
		if (!ok(j < n, "key table has [%s] %s", want[i].section, want[i].name))
			continue;
		ok(k[j].type != NULL && k[j].doc != NULL && k[j].doc[0] != '\0',
		    "[%s] %s: type and doc", want[i].section, want[i].name);
		if (want[i].def != NULL)
			is_str(k[j].def, want[i].def, "[%s] %s: default",
			    want[i].section, want[i].name);
	}

	/* every documented default parses as a value of its key */
	ov_init(&ov);
	for (j = 0; j < n; j++) {
		if (k[j].def == NULL || k[j].def[0] == '\0' ||
		    strcmp(k[j].name, "listen") == 0)
			continue;
		if (strcmp(k[j].section, "daemon") == 0)
			snprintf(text, sizeof(text), "[daemon]\n%s = %s\n" LISTENER_A,
			    k[j].name, k[j].def);
		else if (strcmp(k[j].name, "untrusted_proxy") == 0)
			/* it needs the keys it qualifies */
			snprintf(text, sizeof(text), LISTENER_A "accept_proxy = on\n"
			    "accept_proxy_from = 127.0.0.1\n%s = %s\n", k[j].name, k[j].def);
		else
			snprintf(text, sizeof(text), LISTENER_A "%s = %s\n",
			    k[j].name, k[j].def);
		c = config_parse_string(NAME, text, &ov, &errs);
		if (!ok(c != NULL, "default \"%s = %s\" parses", k[j].name, k[j].def))
			dump_errors(&errs);
		cfree(c);
		errs_reset(&errs);
	}
}

/* ---- metrics: off by default, an address, or off again ------------------------ */

static void
test_metrics(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;

	ov_init(&ov);
	c = config_parse_string(NAME, LISTENER_A, &ov, &errs);
	ok(c != NULL && c->metrics == NULL, "metrics: off by default");
	cfree(c);
	c = config_parse_string(NAME, "[daemon]\nmetrics = 127.0.0.1:9100\n" LISTENER_A,
	    &ov, &errs);
	if (!ok(c != NULL && c->metrics != NULL && strcmp(c->metrics, "127.0.0.1:9100") == 0 &&
	    addr_is(&c->metrics_addr, "127.0.0.1:9100"), "metrics = 127.0.0.1:9100"))
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);
	c = config_parse_string(NAME, "[daemon]\nmetrics = [::1]:9100\n" LISTENER_A,
	    &ov, &errs);
	ok(c != NULL && addr_is(&c->metrics_addr, "[::1]:9100"), "metrics = [::1]:9100");
	cfree(c);
	errs_reset(&errs);
	c = config_parse_string(NAME, "[daemon]\nmetrics = off\n" LISTENER_A, &ov, &errs);
	ok(c != NULL && c->metrics == NULL, "metrics = off");
	cfree(c);
	errs_reset(&errs);
}

/* ---- the value parsers: config_parse_duration, _size and _workers ---------- */

enum { DUR, SIZE, WORKERS };		/* which parser a value_cases row tries */

static const struct {
	int		 parser;
	const char	*s;
	long long	 want;	/* ms, bytes or workers; -1: error; -2: CPU count */
} value_cases[] = {
	{ DUR, "250ms",			250 },
	{ DUR, "30s",			30000 },
	{ DUR, "5m",			300000 },
	{ DUR, "1h",			3600000 },
	{ DUR, "10",			10000 },
	{ DUR, "1",			1000 },
	{ DUR, "0",			0 },
	{ DUR, "0ms",			0 },
	{ DUR, "0s",			0 },
	{ DUR, "0h",			0 },
	{ DUR, "1ms",			1 },
	{ DUR, "24h",			86400000 },
	{ DUR, "010",			10000 },		/* decimal, not octal */
	{ DUR, "010ms",			10 },
	{ DUR, "08s",			8000 },
	{ DUR, "4294967295ms",		4294967295LL },	/* UINT_MAX ms */
	{ DUR, "4294967s",		4294967000LL },
	{ DUR, "4294967",		4294967000LL },
	{ DUR, "71582m",		4294920000LL },
	{ DUR, "1193h",			4294800000LL },
	{ DUR, "",			-1 },
	{ DUR, "5x",			-1 },
	{ DUR, "-1",			-1 },
	{ DUR, "-5s",			-1 },
	{ DUR, "ms",			-1 },
	{ DUR, "s",			-1 },
	{ DUR, "h",			-1 },
	{ DUR, "1.5s",			-1 },
	{ DUR, "5 s",			-1 },
	{ DUR, "5sm",			-1 },
	{ DUR, "5ms5",			-1 },
	{ DUR, "5ss",			-1 },
	{ DUR, "0x10",			-1 },
	{ DUR, "1e3",			-1 },
	{ DUR, "4294967296ms",		-1 },			/* UINT_MAX + 1 */
	{ DUR, "4294968s",		-1 },
	{ DUR, "4294968",		-1 },
	{ DUR, "71583m",		-1 },
	{ DUR, "1194h",			-1 },
	{ DUR, "18446744073709551616",	-1 },
	{ DUR, "18446744073709551617ms", -1 },
	{ DUR, "5124095576030432h",	-1 },		/* wraps 2^64 when scaled */
	{ DUR, "99999999999999999999999", -1 },
	{ SIZE, "4096",			4096 },
	{ SIZE, "16k",			16384 },
	{ SIZE, "1m",			1048576 },
	{ SIZE, "1K",			1024 },
	{ SIZE, "0",			0 },
	{ SIZE, "1",			1 },
	{ SIZE, "1k",			1024 },
	{ SIZE, "16m",			16777216 },
	{ SIZE, "1024k",		1048576 },
	{ SIZE, "010k",			10240 },		/* decimal, not octal */
	{ SIZE, "09",			9 },
	{ SIZE, "",			-1 },
	{ SIZE, "k",			-1 },
	{ SIZE, "m",			-1 },
	{ SIZE, "-5",			-1 },
	{ SIZE, "-5k",			-1 },
	{ SIZE, "16kb",			-1 },
	{ SIZE, "16kk",			-1 },
	{ SIZE, "1.5k",			-1 },
	{ SIZE, "5 k",			-1 },
	{ SIZE, "0x10",			-1 },
	{ SIZE, "4096x",		-1 },
	{ SIZE, "1g",			-1 },		/* only k and m are units */
	{ SIZE, "18446744073709551616",	-1 },		/* 2^64 */
	{ SIZE, "18014398509481984k",	-1 },		/* 2^54 k = 2^64 */
	{ SIZE, "17592186044416m",	-1 },		/* 2^44 m = 2^64 */
	{ SIZE, "99999999999999999999999", -1 },
	{ WORKERS, "auto",		-2 },
	{ WORKERS, "1",			1 },
	{ WORKERS, "2",			2 },
	{ WORKERS, "16",		16 },
	{ WORKERS, "256",		256 },
	{ WORKERS, "010",		10 },
	{ WORKERS, "0",			-1 },
	{ WORKERS, "257",		-1 },
	{ WORKERS, "1000",		-1 },
	{ WORKERS, "-1",		-1 },
	{ WORKERS, "",			-1 },
	{ WORKERS, "abc",		-1 },
	{ WORKERS, "4x",		-1 },
	{ WORKERS, "auto2",		-1 },
	{ WORKERS, "99999999999999999999", -1 },
};

/* The parser of row i: 0 and *v, or -1. */
static int
value_parse(size_t i, long long *v)
{
	unsigned ms = 12345;
	size_t bytes = 12345;
	int n;

	switch (value_cases[i].parser) {
	case DUR:
		n = config_parse_duration(value_cases[i].s, &ms);
		*v = ms;
		return n;
	case SIZE:
		n = config_parse_size(value_cases[i].s, &bytes);
		*v = (long long)bytes;
		return n;
	default:
		*v = n = config_parse_workers(value_cases[i].s);
		return n == -1 ? -1 : 0;
	}
}

static void
test_values(void)
{
	static const char *const what[] = { "duration", "size", "workers" };
	size_t i;

	for (i = 0; i < NELEM(value_cases); i++) {
		const char *w = what[value_cases[i].parser], *s = value_cases[i].s;
		long long v, want = value_cases[i].want == -2 ? ncpu : value_cases[i].want;
		int r = value_parse(i, &v);

		if (want < 0)
			is_int(r, -1, "%s \"%s\" is an error", w, s);
		else if (is_int(r, 0, "%s \"%s\" parses", w, s))
			ok(v == want, "%s \"%s\" = %lld", w, s, want);
		else
			skip(1, "did not parse");
	}
}

/* ---- the listener's admission limits (clients.c) ---------------------------- */

static const struct {
	const char	*key;
	const char	*value;
	long long	 want;		/* BAD: error at the key's line */
	long long	 want2;		/* conn_rate_per_client: the window in ms */
} client_key_cases[] = {
	{ "max_connections",		"0",		0, 0 },
	{ "max_connections",		"1",		1, 0 },
	{ "max_connections",		"1000000",	1000000, 0 },
	{ "max_connections",		"1000001",	BAD, 0 },
	{ "max_connections",		"-1",		BAD, 0 },
	{ "max_connections",		"10k",		BAD, 0 },
	{ "max_connections",		"",		BAD, 0 },
	{ "max_conn_per_client",	"0",		0, 0 },
	{ "max_conn_per_client",	"3",		3, 0 },
	{ "max_conn_per_client",	"1000000",	1000000, 0 },
	{ "max_conn_per_client",	"1000001",	BAD, 0 },
	{ "max_conn_per_client",	"many",		BAD, 0 },
	{ "max_conn_per_client",	"2.5",		BAD, 0 },
	{ "conn_rate_per_client",	"0",		0, 0 },
	{ "conn_rate_per_client",	"0/m",		0, 0 },
	{ "conn_rate_per_client",	"10",		10, 1000 },
	{ "conn_rate_per_client",	"10/s",		10, 1000 },
	{ "conn_rate_per_client",	"600/m",	600, 60000 },
	{ "conn_rate_per_client",	"1/m",		1, 60000 },
	{ "conn_rate_per_client",	"1000000/s",	1000000, 1000 },
	{ "conn_rate_per_client",	"1000000/m",	1000000, 60000 },
	{ "conn_rate_per_client",	"010/s",	10, 1000 },
	{ "conn_rate_per_client",	"1000001",	BAD, 0 },
	{ "conn_rate_per_client",	"1000001/m",	BAD, 0 },
	{ "conn_rate_per_client",	"10/h",		BAD, 0 },
	{ "conn_rate_per_client",	"10/S",		BAD, 0 },
	{ "conn_rate_per_client",	"10/",		BAD, 0 },
	{ "conn_rate_per_client",	"10s",		BAD, 0 },
	{ "conn_rate_per_client",	"/s",		BAD, 0 },
	{ "conn_rate_per_client",	"10 /s",	BAD, 0 },
	{ "conn_rate_per_client",	"1.5/s",	BAD, 0 },
	{ "conn_rate_per_client",	"-1/s",		BAD, 0 },
	{ "conn_rate_per_client",	"ten/s",	BAD, 0 },
	{ "conn_rate_per_client",	"10/s/s",	BAD, 0 },
	{ "conn_rate_per_client",	"99999999999999999999/s", BAD, 0 },
	{ "conn_rate_per_client",	"",		BAD, 0 },
	{ "client_ipv6_prefix",		"1",		1, 0 },
	{ "client_ipv6_prefix",		"48",		48, 0 },
	{ "client_ipv6_prefix",		"64",		64, 0 },
	{ "client_ipv6_prefix",		"0",		BAD, 0 },
	{ "client_ipv6_prefix",		"65",		BAD, 0 },
	{ "client_ipv6_prefix",		"128",		BAD, 0 },
	{ "client_ipv6_prefix",		"/64",		BAD, 0 },
	{ "client_table_size",		"64",		64, 0 },
	{ "client_table_size",		"65",		128, 0 },
	{ "client_table_size",		"1000",		1024, 0 },
	{ "client_table_size",		"65536",	65536, 0 },
	{ "client_table_size",		"100000",	131072, 0 },
	{ "client_table_size",		"16777215",	16777216, 0 },
	{ "client_table_size",		"16777216",	16777216, 0 },
	{ "client_table_size",		"63",		BAD, 0 },
	{ "client_table_size",		"0",		BAD, 0 },
	{ "client_table_size",		"16777217",	BAD, 0 },
	{ "client_table_size",		"64k",		BAD, 0 },
	{ "client_table_size",		"",		BAD, 0 },
};

/* The listener field of a client_key_cases key. */
static long long
client_key_value(const struct listener_conf *l, const char *key)
{
	if (strcmp(key, "max_connections") == 0)
		return l->max_conn;
	if (strcmp(key, "max_conn_per_client") == 0)
		return l->client_max_conn;
	if (strcmp(key, "conn_rate_per_client") == 0)
		return l->client_rate;
	if (strcmp(key, "client_ipv6_prefix") == 0)
		return l->client_prefix6;
	return l->client_table_size;
}

static void
test_client_keys(void)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	const struct listener_conf *l;
	char text[512], prefix[128];

	ov_init(&ov);
	for (size_t i = 0; i < NELEM(client_key_cases); i++) {
		const char *k = client_key_cases[i].key, *v = client_key_cases[i].value;
		long long want = client_key_cases[i].want;

		snprintf(text, sizeof(text), "[daemon]\nmax_connections = 77\n" LISTENER_A
		    "%s = %s\n", k, v);
		c = config_parse_string(NAME, text, &ov, &errs);
		if (want != BAD) {
			if (!ok(c != NULL && errs.n == 0, "[listener] %s = \"%s\" accepted", k, v)) {
				dump_errors(&errs);
			} else {
				l = &c->listeners[0];
				is_int(client_key_value(l, k), want, "%s = \"%s\": value", k, v);
				if (strcmp(k, "conn_rate_per_client") == 0)
					is_int(l->client_rate_ms, client_key_cases[i].want2,
					    "%s = \"%s\": window %lld ms", k, v,
					    client_key_cases[i].want2);
				is_uint(c->max_connections, 77,
				    "%s = \"%s\": [daemon] max_connections apart", k, v);
				is_int(l->client_line, strcmp(k, "max_connections") == 0 ? 0 : 5,
				    "%s = \"%s\": client_line", k, v);
			}
		} else {
			snprintf(prefix, sizeof(prefix), NAME ":5: %s: ", k);
			ok(c == NULL, "[listener] %s = \"%s\" rejected (NULL)", k, v);
			if (!ok(errs.n == 1 && find_error(&errs, prefix, NULL) == 0 &&
			    errs.msg[0][strlen(prefix)] != '\0' &&
			    errors_well_formed(&errs, NAME),
			    "%s = \"%s\": one error \"%s...\"", k, v, prefix))
				dump_errors(&errs);
		}
		cfree(c);
		errs_reset(&errs);
	}

	/* The defaults: every limit off. */
	c = config_parse_string(NAME, LISTENER_A, &ov, &errs);
	if (ok(c != NULL, "client keys: defaults parse")) {
		l = &c->listeners[0];
		ok(l->max_conn == 0 && l->client_max_conn == 0 && l->client_rate == 0 &&
		    l->client_rate_ms == 0, "defaults: every limit off");
		is_uint(l->client_prefix6, 64, "defaults: client_ipv6_prefix 64");
		is_uint(l->client_table_size, 65536, "defaults: client_table_size 65536");
		is_int(l->client_line, 0, "defaults: no client_line");
	}
	cfree(c);
	errs_reset(&errs);

	/* client_line is the first per-client key's, in either listener. */
	c = config_parse_string(NAME, LISTENER_A "max_connections = 9\nbacklog = 5\n"
	    "client_table_size = 100\nmax_conn_per_client = 2\nconn_rate_per_client = 5/m\n"
	    "[listener b]\nlisten = 127.0.0.1:7002\nclient_ipv6_prefix = 56\n", &ov, &errs);
	if (ok(c != NULL, "client keys together: parse")) {
		l = &c->listeners[0];
		is_int(l->client_line, 5, "client_line: the first per-client key's");
		ok(l->max_conn == 9 && l->client_max_conn == 2 && l->client_rate == 5 &&
		    l->client_rate_ms == 60000 && l->client_table_size == 128,
		    "each value where it belongs");
		is_int(c->listeners[1].client_line, 10, "client_line of the second listener");
		is_uint(c->listeners[1].client_prefix6, 56, "its client_ipv6_prefix");
	} else
		dump_errors(&errs);
	cfree(c);
	errs_reset(&errs);

	/* Each key once per listener. */
	c = config_parse_string(NAME, LISTENER_A "conn_rate_per_client = 5\n"
	    "conn_rate_per_client = 6\n", &ov, &errs);
	ok(c == NULL && errs.n == 1 && find_error(&errs, NAME ":4: conn_rate_per_client: ",
	    "duplicate") == 0, "conn_rate_per_client twice: \"" NAME ":4: "
	    "conn_rate_per_client: duplicate key\"");
	cfree(c);
	errs_reset(&errs);
}

int
main(void)
{
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		bail_out("sysconf(_SC_NPROCESSORS_ONLN): %ld", ncpu);
	if (ncpu > CONFIG_MAX_WORKERS)
		ncpu = CONFIG_MAX_WORKERS;

	test_values();
	test_full();
	test_defaults();
	test_keys();
	test_errors();
	test_error_lines();
	test_many_errors();
	test_long_lines();
	test_overrides();
	test_load();
	test_key_table();
	test_metrics();
	test_user_group();
	test_control();
	test_proxy();
	test_source();
	test_access();
	test_access_errors();
	test_access_files();
	test_client_keys();
	return done_testing();
}
