/*
 * config.c: the key table, the inih handler and validation, building an
 * immutable struct config.
 *
 * inih does the INI syntax; a reader of our own feeds it one line at a
 * time, so we always know the line being parsed (Debian's libinih is built
 * without INI_HANDLER_LINENO) and see section headers, blank sections and
 * over-long lines that the handler alone would miss.  Every problem is
 * recorded as "FILE:LINE: key: message" and parsing goes on, so one run
 * reports them all; a config with any error is freed, never returned.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "log.h"

#define LINE_MAX_LEN	199		/* what Debian's inih reads in one go */
#define MAX_LISTENERS	256

enum sect { S_NONE, S_DAEMON, S_LISTENER, S_UNKNOWN };

enum ktype {
	K_WORKERS, K_UINT, K_DURATION, K_SIZE, K_LEVEL, K_TARGET, K_ADDR, K_MODE,
	K_USER, K_GROUP, K_PATH, K_BACKEND, K_BALANCE, K_SENDPROXY, K_ONOFF,
	K_BYTES, K_DISPATCH, K_SOURCE, K_SPLICE
};

struct keydef {
	struct config_key pub;
	enum sect	 sect;
	enum ktype	 type;
	size_t		 off;		/* into struct config or listener_conf */
	unsigned long long min, max;	/* bounds in the stored unit */
	size_t		 off_len;	/* K_BYTES: where the length goes */
};

#define D(f)	offsetof(struct config, f)
#define L(f)	offsetof(struct listener_conf, f)
#define MS(s)	((unsigned long long)(s) * 1000)

static const struct keydef keys[] = {
	{ { "daemon", "workers", "integer or auto", "auto",
	    "worker processes; auto = one per CPU" },
	  S_DAEMON, K_WORKERS, D(workers), 1, CONFIG_MAX_WORKERS, 0 },
	{ { "daemon", "max_connections", "integer", "10000",
	    "connections per worker at most" },
	  S_DAEMON, K_UINT, D(max_connections), 1, 1000000, 0 },
	{ { "daemon", "log_level", "level", "notice",
	    "debug, info, notice, warning or error" },
	  S_DAEMON, K_LEVEL, D(log_level), 0, 0, 0 },
	{ { "daemon", "log_target", "target", "stderr",
	    "stderr, syslog or an absolute file path" },
	  S_DAEMON, K_TARGET, D(log_target), 0, 0, 0 },
	{ { "daemon", "shutdown_timeout", "duration", "30s",
	    "graceful stop deadline for open connections" },
	  S_DAEMON, K_DURATION, D(shutdown_ms), 0, MS(3600), 0 },
	{ { "daemon", "drain_timeout", "duration", "60s",
	    "deadline for the old generation's connections after a reload" },
	  S_DAEMON, K_DURATION, D(drain_ms), 0, MS(3600), 0 },
	{ { "daemon", "max_draining", "integer", "4",
	    "draining generations kept at most; the oldest beyond it is closed" },
	  S_DAEMON, K_UINT, D(max_draining), 1, 64, 0 },
	{ { "daemon", "user", "user name", NULL,
	    "switch every process to this user once the sockets are bound" },
	  S_DAEMON, K_USER, D(user), 0, 0, 0 },
	{ { "daemon", "group", "group name", NULL,
	    "switch to this group (default: the user's primary group)" },
	  S_DAEMON, K_GROUP, D(group), 0, 0, 0 },
	{ { "daemon", "pidfile", "path", NULL,
	    "write the master's pid here; refuse to start if it names a live process" },
	  S_DAEMON, K_PATH, D(pidfile), 0, 0, 0 },
	{ { "daemon", "dispatch", "method", "notify",
	    "who accepts: notify (the master hands out accepts), reuseport or handoff" },
	  S_DAEMON, K_DISPATCH, D(dispatch), 0, 0, 0 },
	{ { "listener", "listen", "address", NULL,
	    "host:port, [v6addr]:port or :port to accept on (required)" },
	  S_LISTENER, K_ADDR, L(listen), 0, 0, 0 },
	{ { "listener", "mode", "mode", "echo",
	    "echo: send back every byte received; proxy: relay to the backends" },
	  S_LISTENER, K_MODE, L(mode), 0, 0, 0 },
	{ { "listener", "backlog", "integer", "1024",
	    "kernel accept queue length" },
	  S_LISTENER, K_UINT, L(backlog), 1, 65535, 0 },
	{ { "listener", "idle_timeout", "duration", "5m",
	    "close a connection with no bytes either way for this long; 0 = off" },
	  S_LISTENER, K_DURATION, L(idle_ms), 0, MS(86400), 0 },
	{ { "listener", "buffer_size", "size", "16k",
	    "bytes buffered per connection at most" },
	  S_LISTENER, K_SIZE, L(buffer_size), 1024, 16 << 20, 0 },
	{ { "listener", "backend", "backend", NULL,
	    "HOST:PORT [weight=N] [backup]; repeatable; mode = proxy only" },
	  S_LISTENER, K_BACKEND, L(backends), 0, 0, 0 },
	{ { "listener", "balance", "algorithm", "roundrobin",
	    "roundrobin (weighted), leastconn, source (client address hash) or random (two choices)" },
	  S_LISTENER, K_BALANCE, L(balance), 0, 0, 0 },
	{ { "listener", "connect_timeout", "duration", "5s",
	    "time allowed to connect to a backend" },
	  S_LISTENER, K_DURATION, L(connect_ms), 1, MS(3600), 0 },
	{ { "listener", "retries", "integer", "2",
	    "further backends tried after a failed connect" },
	  S_LISTENER, K_UINT, L(retries), 0, 16, 0 },
	{ { "listener", "halfclose_timeout", "duration", "30s",
	    "how long one direction may stay open after the other closed; 0 = off" },
	  S_LISTENER, K_DURATION, L(halfclose_ms), 0, MS(86400), 0 },
	{ { "listener", "max_fails", "integer", "3",
	    "failed connects within fail_timeout that take a backend out; 0 = off" },
	  S_LISTENER, K_UINT, L(max_fails), 0, 1000, 0 },
	{ { "listener", "fail_timeout", "duration", "10s",
	    "the window for max_fails, and how long a failed backend stays out" },
	  S_LISTENER, K_DURATION, L(fail_ms), 1, MS(3600), 0 },
	{ { "listener", "check_interval", "duration", "0",
	    "active health checks by the master, this often; 0 = off" },
	  S_LISTENER, K_DURATION, L(check_interval_ms), 0, MS(3600), 0 },
	{ { "listener", "check_timeout", "duration", "2s",
	    "time allowed for one health check" },
	  S_LISTENER, K_DURATION, L(check_timeout_ms), 1, MS(3600), 0 },
	{ { "listener", "rise", "integer", "2",
	    "passed checks in a row that bring a backend back" },
	  S_LISTENER, K_UINT, L(rise), 1, 100, 0 },
	{ { "listener", "fall", "integer", "3",
	    "failed checks in a row that take a backend out" },
	  S_LISTENER, K_UINT, L(fall), 1, 100, 0 },
	{ { "listener", "check_send", "string", NULL,
	    "bytes a health check sends after connecting (\\r \\n \\t \\\\ \\xHH escapes)" },
	  S_LISTENER, K_BYTES, L(check_send), 1, 512, L(check_send_len) },
	{ { "listener", "check_expect", "string", NULL,
	    "bytes a health check's answer must contain (same escapes)" },
	  S_LISTENER, K_BYTES, L(check_expect), 1, 512, L(check_expect_len) },
	{ { "listener", "send_proxy", "off|v1|v2", "off",
	    "send a PROXY protocol header to the backend with the client's address" },
	  S_LISTENER, K_SENDPROXY, L(send_proxy), 0, 0, 0 },
	{ { "listener", "accept_proxy", "off|on", "off",
	    "expect a PROXY protocol header (v1 or v2) before the client's bytes" },
	  S_LISTENER, K_ONOFF, L(accept_proxy), 0, 0, 0 },
	{ { "listener", "proxy_timeout", "duration", "5s",
	    "time allowed to receive that header" },
	  S_LISTENER, K_DURATION, L(proxy_timeout_ms), 1, MS(3600), 0 },
	{ { "listener", "source", "addresses", NULL,
	    "local addresses for backend connections, taken in turn: IPv4 or IPv6 "
	    "addresses and A.B.C.D-A.B.C.E ranges" },
	  S_LISTENER, K_SOURCE, L(source), 0, 0, 0 },
	{ { "listener", "splice", "auto|on|off", "auto",
	    "relay through kernel pipes with splice(2): auto = a direction once it "
	    "reads a full buffer_size, on = always, off = never" },
	  S_LISTENER, K_SPLICE, L(splice), 0, 0, 0 },
	{ { "listener", "tcp_nodelay", "off|on", "on",
	    "send small writes at once on both legs (TCP_NODELAY); off lets the "
	    "kernel coalesce them (Nagle's algorithm)" },
	  S_LISTENER, K_ONOFF, L(tcp_nodelay), 0, 0, 0 },
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= 64, "struct parse's seen bitmask holds 64 keys");

struct parse {
	const char	*name;		/* file name for messages */
	const char	*pos;		/* reader position in the text */
	int		 line;		/* line just handed to inih */
	enum sect	 sect;
	struct listener_conf *cur;	/* S_LISTENER: the section's listener */
	uint64_t	 seen;		/* bit per key index: set in this section */
	unsigned	 daemon_seen;	/* [daemon] may appear once */
	int		 daemon_line;
	int		 group_line;	/* where group was set */
	struct config	*c;
	struct config_errors *errs;
	size_t		 nerr_before;
};

static void
err_add(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
err_add(struct config_errors *errs, const char *fmt, ...)
{
	char **v, *s;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	if (s == NULL || (v = realloc(errs->msg, (errs->n + 1) * sizeof(*v))) == NULL) {
		free(s);
		return;		/* out of memory: the count still shows failure below */
	}
	errs->msg = v;
	errs->msg[errs->n++] = s;
}

void
config_errors_fini(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

/* Numbers: digits only, no sign, no overflow. */
static int
parse_ull(const char *s, const char **end, unsigned long long *v)
{
	char *e;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoull(s, &e, 10);
	if (errno != 0)
		return -1;
	*end = e;
	return 0;
}

int
config_parse_duration(const char *s, unsigned *ms)
{
	static const struct { const char *u; unsigned long long mul; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 },
		{ "h", 3600000 },
	};
	unsigned long long v;
	const char *end;

	if (parse_ull(s, &end, &v) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].u) != 0)
			continue;
		if (v > UINT_MAX / units[i].mul)
			return -1;
		*ms = v * units[i].mul;
		return 0;
	}
	return -1;
}

int
config_parse_size(const char *s, size_t *bytes)
{
	unsigned long long v, mul = 1;
	const char *end;

	if (parse_ull(s, &end, &v) == -1)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	if (*end != '\0' || v > SIZE_MAX / mul)
		return -1;
	*bytes = v * mul;
	return 0;
}

int
config_parse_workers(const char *s)
{
	unsigned long long v;
	const char *end;
	long n;

	if (strcmp(s, "auto") == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n < 1)
			n = 1;
		return n > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (int)n;
	}
	if (parse_ull(s, &end, &v) == -1 || *end != '\0' || v < 1 ||
	    v > CONFIG_MAX_WORKERS)
		return -1;
	return (int)v;
}

/* Index of s among up to four words (NULL ends the list early); -1. */
static int
word_index(const char *s, const char *a, const char *b, const char *c,
    const char *d)
{
	const char *w[] = { a, b, c, d };

	for (int i = 0; i < 4 && w[i] != NULL; i++)
		if (strcmp(s, w[i]) == 0)
			return i;
	return -1;
}

/* Decode \r \n \t \\ \xHH; NULL on a bad escape. */
static char *
unescape(const char *s, size_t *len)
{
	char *out, *o;

	if ((out = o = malloc(strlen(s) + 1)) == NULL)
		return NULL;
	while (*s != '\0') {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++;
		if (*s == 'r' || *s == 'n' || *s == 't' || *s == '\\') {
			*o++ = *s == 'r' ? '\r' : *s == 'n' ? '\n' : *s == 't' ? '\t' : '\\';
			s++;
		} else if (*s == 'x' && isxdigit((unsigned char)s[1]) &&
		    isxdigit((unsigned char)s[2])) {
			char hex[3] = { s[1], s[2], '\0' };

			*o++ = (char)strtol(hex, NULL, 16);
			s += 3;
		} else {
			free(out);
			return NULL;
		}
	}
	*len = o - out;
	*o = '\0';
	return out;
}

/* "HOST:PORT [weight=N] [backup]" appended to l's backends. */
static const char *
backend_add(struct listener_conf *l, const char *value, char *msg, size_t msglen)
{
	struct backend_conf b, *v;
	char buf[LINE_MAX_LEN + 1], *tok, *save = NULL;
	unsigned long long w;
	const char *end;

	if (l->nbackends >= 64)
		return "at most 64 backends per listener";
	memset(&b, 0, sizeof(b));
	b.weight = 1;
	snprintf(buf, sizeof(buf), "%s", value);
	if ((tok = strtok_r(buf, " \t", &save)) == NULL)
		return "expected HOST:PORT [weight=N] [backup]";
	if (net_parse_addr(tok, 1, &b.addr, msg, msglen) == -1)
		return msg;
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		if (strcmp(tok, "backup") == 0)
			b.backup = 1;
		else if (strncmp(tok, "weight=", 7) == 0 &&
		    parse_ull(tok + 7, &end, &w) == 0 && *end == '\0' &&
		    w >= 1 && w <= 256)
			b.weight = w;
		else {
			snprintf(msg, msglen, "\"%s\": expected weight=1..256 or backup", tok);
			return msg;
		}
	}
	/* strtok_r ended the first token, the address, with a NUL. */
	if ((b.spec = strdup(buf)) == NULL ||
	    (v = realloc(l->backends, (l->nbackends + 1) * sizeof(*v))) == NULL) {
		free(b.spec);
		return "out of memory";
	}
	l->backends = v;
	l->backends[l->nbackends++] = b;
	return NULL;
}

/* a appended to l's source addresses, unless it is there already. */
static const char *
source_append(struct listener_conf *l, const struct addr *a, const char *tok,
    char *msg, size_t msglen)
{
	struct addr *v;

	for (size_t i = 0; i < l->nsource; i++)
		if (net_addr_equal(&l->source[i], a)) {
			snprintf(msg, msglen, "\"%s\": address listed twice", tok);
			return msg;
		}
	if (l->nsource >= CONFIG_MAX_SOURCES) {
		snprintf(msg, msglen, "more than %d addresses", CONFIG_MAX_SOURCES);
		return msg;
	}
	if ((v = realloc(l->source, (l->nsource + 1) * sizeof(*v))) == NULL)
		return "out of memory";
	l->source = v;
	l->source[l->nsource++] = *a;
	return NULL;
}

/* "FIRST-LAST", two IPv4 addresses, FIRST <= LAST: each appended. */
static const char *
source_range(struct listener_conf *l, char *tok, char *dash, char *msg,
    size_t msglen)
{
	struct addr first, last, a;
	uint32_t lo, hi;
	const char *why;

	*dash = '\0';
	if (net_parse_ip(tok, &first) == -1 || net_parse_ip(dash + 1, &last) == -1 ||
	    first.ss.ss_family != AF_INET || last.ss.ss_family != AF_INET) {
		*dash = '-';
		snprintf(msg, msglen, "\"%s\": expected an IPv4 range A.B.C.D-A.B.C.E", tok);
		return msg;
	}
	*dash = '-';
	lo = ntohl(((struct sockaddr_in *)&first.ss)->sin_addr.s_addr);
	hi = ntohl(((struct sockaddr_in *)&last.ss)->sin_addr.s_addr);
	if (hi < lo) {
		snprintf(msg, msglen, "\"%s\": the range ends before it starts", tok);
		return msg;
	}
	if (hi - lo >= CONFIG_MAX_SOURCES) {
		snprintf(msg, msglen, "\"%s\": more than %d addresses", tok,
		    CONFIG_MAX_SOURCES);
		return msg;
	}
	a = first;
	for (uint64_t i = lo; i <= hi; i++) {
		((struct sockaddr_in *)&a.ss)->sin_addr.s_addr = htonl((uint32_t)i);
		if ((why = source_append(l, &a, tok, msg, msglen)) != NULL)
			return why;
	}
	return NULL;
}

/* "ADDR|FIRST-LAST ...": l's source addresses; none after an error. */
static const char *
source_set(struct listener_conf *l, const char *value, char *msg, size_t msglen)
{
	char buf[LINE_MAX_LEN + 1], *tok, *save = NULL, *dash;
	struct addr a;
	const char *why = NULL;

	snprintf(buf, sizeof(buf), "%s", value);
	for (tok = strtok_r(buf, " \t", &save); tok != NULL && why == NULL;
	    tok = strtok_r(NULL, " \t", &save)) {
		/* An IPv6 address may have a dash in its scope (fe80::1%br-lan). */
		if (strchr(tok, ':') == NULL && (dash = strchr(tok, '-')) != NULL)
			why = source_range(l, tok, dash, msg, msglen);
		else if (net_parse_ip(tok, &a) == -1) {
			snprintf(msg, msglen, "\"%s\": not an IPv4 or IPv6 address", tok);
			why = msg;
		} else
			why = source_append(l, &a, tok, msg, msglen);
	}
	if (why != NULL) {
		free(l->source);
		l->source = NULL;
		l->nsource = 0;
	}
	return why;
}

/*
 * Set key k in obj from value.  Returns NULL, or a message saying what
 * was wrong.  listen also resolves the address.
 */
static const char *
key_set(const struct keydef *k, void *obj, const char *value, char *msg,
    size_t msglen)
{
	char *p = (char *)obj + k->off;
	unsigned long long v;
	const char *end;
	unsigned ms;
	size_t sz;
	int n;

	switch (k->type) {
	case K_WORKERS:
		if ((n = config_parse_workers(value)) == -1)
			return "expected auto or a number from 1 to 256";
		*(int *)p = n;
		return NULL;
	case K_UINT:
		if (parse_ull(value, &end, &v) == -1 || *end != '\0')
			return "expected a number";
		if (v < k->min || v > k->max) {
			snprintf(msg, msglen, "%s is out of range %llu-%llu",
			    value, k->min, k->max);
			return msg;
		}
		*(unsigned *)p = v;
		return NULL;
	case K_DURATION:
		if (config_parse_duration(value, &ms) == -1)
			return "expected a duration such as 250ms, 30s, 5m or 1h";
		if (ms < k->min || ms > k->max) {
			snprintf(msg, msglen, "%s is out of range %s-%llus", value,
			    k->min > 0 ? "1ms" : "0", k->max / 1000);
			return msg;
		}
		*(unsigned *)p = ms;
		return NULL;
	case K_SIZE:
		if (config_parse_size(value, &sz) == -1)
			return "expected a size such as 4096, 16k or 1m";
		if (sz < k->min || sz > k->max) {
			snprintf(msg, msglen, "%s is out of range 1k-16m", value);
			return msg;
		}
		*(size_t *)p = sz;
		return NULL;
	case K_LEVEL:
		if ((n = log_level_parse(value)) == -1)
			return "expected debug, info, notice, warning or error";
		*(int *)p = n;
		return NULL;
	case K_TARGET:
		if (strcmp(value, "stderr") != 0 && strcmp(value, "syslog") != 0 &&
		    value[0] != '/')
			return "expected stderr, syslog or an absolute file path";
		break;
	case K_PATH:
		if (value[0] != '/')
			return "expected an absolute path";
		break;
	case K_USER: {
		struct passwd *pw;

		errno = 0;
		if ((pw = getpwnam(value)) == NULL) {
			snprintf(msg, msglen, "unknown user \"%s\"", value);
			return msg;
		}
		((struct config *)obj)->uid = pw->pw_uid;
		if (((struct config *)obj)->group == NULL)
			((struct config *)obj)->gid = pw->pw_gid;
		break;
	}
	case K_GROUP: {
		struct group *gr;

		if ((gr = getgrnam(value)) == NULL) {
			snprintf(msg, msglen, "unknown group \"%s\"", value);
			return msg;
		}
		((struct config *)obj)->gid = gr->gr_gid;
		break;
	}
	case K_MODE:
		if (strcmp(value, "echo") == 0)
			*(int *)p = MODE_ECHO;
		else if (strcmp(value, "proxy") == 0)
			*(int *)p = MODE_PROXY;
		else
			return "expected echo or proxy";
		return NULL;
	case K_BALANCE:
		if ((n = word_index(value, "roundrobin", "leastconn", "source", "random")) == -1)
			return "expected roundrobin, leastconn, source or random";
		*(int *)p = n;
		return NULL;
	case K_DISPATCH:
		if ((n = word_index(value, "notify", "reuseport", "handoff", NULL)) == -1)
			return "expected notify, reuseport or handoff";
		*(int *)p = n;
		return NULL;
	case K_SENDPROXY:
		if ((n = word_index(value, "off", "v1", "v2", NULL)) == -1)
			return "expected off, v1 or v2";
		*(int *)p = n;
		return NULL;
	case K_ONOFF:
		if ((n = word_index(value, "off", "on", NULL, NULL)) == -1)
			return "expected off or on";
		*(int *)p = n;
		return NULL;
	case K_SPLICE:
		if ((n = word_index(value, "auto", "on", "off", NULL)) == -1)
			return "expected auto, on or off";
		*(int *)p = n;
		return NULL;
	case K_BACKEND:
		return backend_add(obj, value, msg, msglen);
	case K_SOURCE:
		return source_set(obj, value, msg, msglen);
	case K_BYTES: {
		char *dec;
		size_t len;

		if ((dec = unescape(value, &len)) == NULL)
			return "bad escape (use \\r \\n \\t \\\\ or \\xHH)";
		if (len < k->min || len > k->max) {
			free(dec);
			snprintf(msg, msglen, "must be %llu to %llu bytes", k->min, k->max);
			return msg;
		}
		free(*(char **)p);
		*(char **)p = dec;
		*(size_t *)((char *)obj + k->off_len) = len;
		return NULL;
	}
	case K_ADDR:
		if (net_parse_addr(value, 1,
		    &((struct listener_conf *)obj)->addr, msg, msglen) == -1)
			return msg;
		break;
	}
	/* The rest keep the string. */
	{
		char *dup = strdup(value);

		if (dup == NULL)
			return "out of memory";
		free(*(char **)p);
		*(char **)p = dup;
	}
	return NULL;
}

static const struct keydef *
key_find(enum sect sect, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sect == sect && strcmp(keys[i].pub.name, name) == 0)
			return &keys[i];
	return NULL;
}

static void
defaults(struct parse *ps, enum sect sect, void *obj)
{
	char msg[256];

	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sect == sect && keys[i].pub.def != NULL &&
		    key_set(&keys[i], obj, keys[i].pub.def, msg, sizeof(msg)) != NULL)
			err_add(ps->errs, "%s: default %s = %s is invalid",
			    ps->name, keys[i].pub.name, keys[i].pub.def);
}

static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return 0;
	return 1;
}

static struct listener_conf *
listener_add(struct config *c, const char *name)
{
	struct listener_conf *v, *l;

	if (c->nlisteners >= MAX_LISTENERS)
		return NULL;
	if ((v = realloc(c->listeners, (c->nlisteners + 1) * sizeof(*v))) == NULL)
		return NULL;
	c->listeners = v;
	l = &c->listeners[c->nlisteners];
	memset(l, 0, sizeof(*l));
	if ((l->name = strdup(name)) == NULL)
		return NULL;
	c->nlisteners++;
	return l;
}

/* A section header "[...]" seen by the reader on line ps->line. */
static void
section_begin(struct parse *ps, const char *hdr, size_t len)
{
	char name[LINE_MAX_LEN + 1];
	const char *arg;

	memcpy(name, hdr, len);
	name[len] = '\0';
	ps->seen = 0;
	ps->cur = NULL;
	if (strcmp(name, "daemon") == 0) {
		if (ps->daemon_seen)
			err_add(ps->errs, "%s:%d: [daemon]: section already defined at line %d",
			    ps->name, ps->line, ps->daemon_line);
		ps->daemon_seen = 1;
		ps->daemon_line = ps->line;
		ps->sect = S_DAEMON;
		return;
	}
	if (strncmp(name, "listener", 8) == 0 && (name[8] == ' ' || name[8] == '\t')) {
		for (arg = name + 9; *arg == ' ' || *arg == '\t'; arg++)
			;
		ps->sect = S_UNKNOWN;	/* until it proves valid */
		if (!valid_name(arg)) {
			err_add(ps->errs, "%s:%d: [%s]: listener name must be letters, digits, '_', '-' or '.'",
			    ps->name, ps->line, name);
			return;
		}
		if (config_listener(ps->c, arg) != NULL) {
			err_add(ps->errs, "%s:%d: [%s]: section already defined at line %d",
			    ps->name, ps->line, name, config_listener(ps->c, arg)->line);
			return;
		}
		if ((ps->cur = listener_add(ps->c, arg)) == NULL) {
			err_add(ps->errs, "%s:%d: [%s]: too many listeners (at most %d)",
			    ps->name, ps->line, name, MAX_LISTENERS);
			return;
		}
		ps->cur->line = ps->line;
		ps->sect = S_LISTENER;
		defaults(ps, S_LISTENER, ps->cur);
		return;
	}
	err_add(ps->errs, "%s:%d: [%s]: unknown section (expected [daemon] or [listener NAME])",
	    ps->name, ps->line, name);
	ps->sect = S_UNKNOWN;
}

/*
 * The ini_reader: hands inih one line of the text, checks what inih would
 * get wrong or silently skip, and keeps the line count.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	const char *p = ps->pos, *nl, *s, *e;
	size_t len;

	if (*p == '\0')
		return NULL;
	nl = strchr(p, '\n');
	len = nl != NULL ? (size_t)(nl - p + 1) : strlen(p);
	ps->pos = p + len;
	ps->line++;

	if (len > LINE_MAX_LEN || len >= (size_t)num) {
		err_add(ps->errs, "%s:%d: line is longer than %d bytes",
		    ps->name, ps->line, LINE_MAX_LEN);
		strcpy(str, "\n");
		return str;
	}
	memcpy(str, p, len);
	str[len] = '\0';

	/* Trim to see what the line is. */
	for (s = str; *s == ' ' || *s == '\t'; s++)
		;
	e = s + strcspn(s, "\r\n");
	if (s == e || *s == '#' || *s == ';')
		return str;
	if (*s == '[') {
		const char *close = memchr(s, ']', e - s);

		if (close == NULL) {
			err_add(ps->errs, "%s:%d: malformed section header (missing ']')",
			    ps->name, ps->line);
			ps->sect = S_UNKNOWN;
			strcpy(str, "\n");
			return str;
		}
		section_begin(ps, s + 1, close - s - 1);
		return str;
	}
	if (memchr(s, '=', e - s) == NULL) {
		err_add(ps->errs, "%s:%d: expected key = value", ps->name, ps->line);
		strcpy(str, "\n");
	} else if (s != str) {
		/* inih would take an indented line as a continuation. */
		memmove(str, s, strlen(s) + 1);
	}
	return str;
}

static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse *ps = user;
	const char *why;
	char msg[256];
	const struct keydef *k;
	uint64_t bit;
	void *obj;

	(void)section;		/* the reader tracks sections itself */
	if (ps->sect == S_UNKNOWN)
		return 1;	/* already reported at the header */
	if (ps->sect == S_NONE) {
		err_add(ps->errs, "%s:%d: %s: key outside any section",
		    ps->name, ps->line, name);
		return 1;
	}
	if ((k = key_find(ps->sect, name)) == NULL) {
		err_add(ps->errs, "%s:%d: %s: unknown key in [%s]", ps->name,
		    ps->line, name, ps->sect == S_DAEMON ? "daemon" : "listener");
		return 1;
	}
	bit = UINT64_C(1) << (k - keys);
	if ((ps->seen & bit) && k->type != K_BACKEND) {
		err_add(ps->errs, "%s:%d: %s: duplicate key", ps->name, ps->line, name);
		return 1;
	}
	ps->seen |= bit;
	obj = ps->sect == S_DAEMON ? (void *)ps->c : (void *)ps->cur;
	if (k->type == K_ADDR)
		ps->cur->listen_line = ps->line;	/* present, valid or not */
	if (k->type == K_BACKEND)
		ps->cur->backend_keys++;
	if (k->type == K_GROUP)
		ps->group_line = ps->line;
	if (k->type == K_SOURCE)
		ps->cur->source_line = ps->line;
	if (*value == '\0')
		why = "empty value";
	else
		why = key_set(k, obj, value, msg, sizeof(msg));
	if (why != NULL)
		err_add(ps->errs, "%s:%d: %s: %s", ps->name, ps->line, name, why);
	else if (k->type == K_BACKEND)
		ps->cur->backends[ps->cur->nbackends - 1].line = ps->line;
	return 1;
}

static void
apply_overrides(struct parse *ps, const struct config_overrides *ov)
{
	char msg[256], name[32];
	struct listener_conf *l;

	if (ov == NULL)
		return;
	if (ov->workers == -1)
		ps->c->workers = config_parse_workers("auto");
	else if (ov->workers > 0)
		ps->c->workers = ov->workers;
	if (ov->log_level >= 0)
		ps->c->log_level = ov->log_level;
	if (ov->pidfile != NULL) {
		free(ps->c->pidfile);
		if ((ps->c->pidfile = strdup(ov->pidfile)) == NULL)
			err_add(ps->errs, "-p %s: out of memory", ov->pidfile);
	}
	if (ov->daemonize && strcmp(ps->c->log_target, "stderr") == 0) {
		/* Detached, stderr is /dev/null. */
		free(ps->c->log_target);
		if ((ps->c->log_target = strdup("syslog")) == NULL)
			err_add(ps->errs, "-d: out of memory");
	}
	for (size_t i = 0; i < ov->nlisten; i++) {
		snprintf(name, sizeof(name), "cli-%zu", i + 1);
		if ((l = listener_add(ps->c, name)) == NULL) {
			err_add(ps->errs, "-l %s: too many listeners", ov->listen[i]);
			return;
		}
		ps->sect = S_LISTENER;
		defaults(ps, S_LISTENER, l);
		if (key_set(key_find(S_LISTENER, "listen"), l, ov->listen[i], msg,
		    sizeof(msg)) != NULL)
			err_add(ps->errs, "-l %s: %s", ov->listen[i], msg);
		/* -b alone means proxy; -m echo with -b is refused below. */
		l->mode = ov->mode >= 0 ? ov->mode : ov->nbackends > 0 ? MODE_PROXY : MODE_ECHO;
		l->backend_keys = ov->nbackends;
		for (size_t j = 0; j < ov->nbackends; j++) {
			const char *why = backend_add(l, ov->backends[j], msg, sizeof(msg));

			if (why != NULL)
				err_add(ps->errs, "-b %s: %s", ov->backends[j], why);
		}
	}
}

/* What a listener's mode needs, and what it cannot use. */
static void
validate_mode(struct parse *ps, const struct listener_conf *l)
{
	char where[300];

	if (l->line > 0)
		snprintf(where, sizeof(where), "%s:%d: ", ps->name, l->line);
	else
		snprintf(where, sizeof(where), "-l %s: ", l->listen ? l->listen : l->name);
	if (l->mode == MODE_PROXY && l->nbackends == 0 && l->backend_keys == 0)
		err_add(ps->errs, "%sbackend: [listener %s] has mode = proxy but no backend",
		    where, l->name);
	if (l->mode == MODE_ECHO && l->nbackends > 0)
		err_add(ps->errs, "%sbackend: [listener %s] has backends but mode = echo",
		    where, l->name);
	if (l->mode == MODE_ECHO && l->send_proxy != SEND_PROXY_OFF)
		err_add(ps->errs, "%ssend_proxy: [listener %s] has mode = echo",
		    where, l->name);
	if (l->mode == MODE_ECHO && l->splice == SPLICE_ON)
		err_add(ps->errs, "%ssplice: [listener %s] has mode = echo",
		    where, l->name);
	if (l->mode == MODE_ECHO && l->nsource > 0)
		err_add(ps->errs, "%s:%d: source: [listener %s] has mode = echo",
		    ps->name, l->source_line, l->name);
	if ((l->check_send != NULL || l->check_expect != NULL) &&
	    l->check_interval_ms == 0)
		err_add(ps->errs, "%scheck_send/check_expect: [listener %s] needs check_interval",
		    where, l->name);
	for (size_t j = 0; j < l->nbackends; j++)
		for (size_t k = 0; k < j; k++)
			if (net_addr_equal(&l->backends[j].addr, &l->backends[k].addr)) {
				if (l->backends[j].line > 0)
					err_add(ps->errs, "%s:%d: backend: %s is listed twice",
					    ps->name, l->backends[j].line, l->backends[j].spec);
				else
					err_add(ps->errs, "-b %s: listed twice", l->backends[j].spec);
				break;
			}
}

static void
validate(struct parse *ps)
{
	struct config *c = ps->c;

	if (c->group != NULL && c->user == NULL)
		err_add(ps->errs, "%s:%d: group: needs user as well", ps->name,
		    ps->group_line);
	if (c->nlisteners == 0) {
		err_add(ps->errs, "%s:%d: listener: no [listener] section; nothing to serve",
		    ps->name, ps->line);
		return;
	}
	for (size_t i = 0; i < c->nlisteners; i++) {
		struct listener_conf *l = &c->listeners[i];

		validate_mode(ps, l);
		if (l->listen == NULL) {
			/* A bad value (file or -l) was reported already. */
			if (l->line > 0 && l->listen_line == 0)
				err_add(ps->errs, "%s:%d: listen: missing in [listener %s]",
				    ps->name, l->line, l->name);
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			const struct listener_conf *o = &c->listeners[j];

			if (o->listen == NULL || !net_addr_equal(&o->addr, &l->addr))
				continue;
			if (l->line > 0)
				err_add(ps->errs, "%s:%d: listen: %s is already used by [listener %s]",
				    ps->name, l->listen_line, l->listen, o->name);
			else
				err_add(ps->errs, "-l %s: address already used by [listener %s]",
				    l->listen, o->name);
			break;
		}
	}
}

static struct config *
build(const char *name, const char *text, const struct config_overrides *ov,
    struct config_errors *errs)
{
	struct parse ps;
	size_t before = errs->n;

	memset(&ps, 0, sizeof(ps));
	ps.name = name != NULL ? name : "(command line)";
	ps.pos = text != NULL ? text : "";
	ps.errs = errs;
	if ((ps.c = calloc(1, sizeof(*ps.c))) == NULL) {
		err_add(errs, "%s: out of memory", ps.name);
		return NULL;
	}
	defaults(&ps, S_DAEMON, ps.c);
	if (name != NULL && (ps.c->file = strdup(name)) == NULL)
		err_add(errs, "%s: out of memory", ps.name);
	if (text != NULL) {
		int rc = ini_parse_stream(config_reader, &ps, config_handler, &ps);

		/* The reader screens out what inih rejects; this is a backstop. */
		if (rc != 0 && errs->n == before)
			err_add(errs, "%s:%d: syntax error", ps.name, rc);
	}
	apply_overrides(&ps, ov);
	validate(&ps);
	if (errs->n != before) {
		config_free(ps.c);
		return NULL;
	}
	return ps.c;
}

struct config *
config_parse_string(const char *name, const char *text,
    const struct config_overrides *ov, struct config_errors *errs)
{
	return build(name, text, ov, errs);
}

struct config *
config_load(const char *file, const struct config_overrides *ov,
    struct config_errors *errs)
{
	struct config *c;
	struct stat st;
	char *text;
	ssize_t n;
	size_t got = 0;
	int fd;

	if (file == NULL)
		return build(NULL, NULL, ov, errs);
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &st) == -1) {
		err_add(errs, "%s: %s", file, strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		err_add(errs, "%s: not a regular file of at most 1 MiB", file);
		close(fd);
		return NULL;
	}
	if ((text = malloc(st.st_size + 1)) == NULL) {
		err_add(errs, "%s: out of memory", file);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size &&
	    (n = read(fd, text + got, st.st_size - got)) > 0)
		got += n;
	close(fd);
	text[got] = '\0';
	if (strlen(text) != got) {
		err_add(errs, "%s: file contains a NUL byte", file);
		free(text);
		return NULL;
	}
	c = build(file, text, ov, errs);
	free(text);
	return c;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nlisteners; i++) {
		struct listener_conf *l = &c->listeners[i];

		free(l->name);
		free(l->listen);
		for (size_t j = 0; j < l->nbackends; j++)
			free(l->backends[j].spec);
		free(l->backends);
		free(l->check_send);
		free(l->check_expect);
		free(l->source);
	}
	free(c->listeners);
	free(c->log_target);
	free(c->user);
	free(c->group);
	free(c->pidfile);
	free(c->file);
	free(c);
}

const struct listener_conf *
config_listener(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nlisteners; i++)
		if (strcmp(c->listeners[i].name, name) == 0)
			return &c->listeners[i];
	return NULL;
}

const struct config_key *
config_keys(size_t *n)
{
	static struct config_key pub[NKEYS];

	for (size_t i = 0; i < NKEYS; i++)
		pub[i] = keys[i].pub;
	*n = NKEYS;
	return pub;
}
