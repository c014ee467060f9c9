/*
 * confkey.c: the key table and the value parsers (see confkey.h).
 *
 * Every key is one row of keys[]; every value type one parser.  Nothing
 * here knows where a value came from: the caller (config.c) adds the file
 * and line to what a parser returns.
 *
 * About 790 lines, over the house's 600: the table and its parsers are one
 * role, and parting them would export a score of parsers for one caller.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidrlist.h"
#include "confkey.h"
#include "log.h"


#define D(f)	offsetof(struct config, f)
#define L(f)	offsetof(struct listener_conf, f)
#define MS(s)	((unsigned long long)(s) * 1000)

const struct keydef confkey_keys[] = {
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
	{ { "daemon", "log_format", "text|json", "text",
	    "text lines, or one JSON object a line for a log pipeline" },
	  S_DAEMON, K_LOGFORMAT, D(log_format), 0, 0, 0 },
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
	{ { "daemon", "control", "path, auto or off", "auto",
	    "the control socket (a Unix socket); auto = $RUNTIME_DIRECTORY/control.sock "
	    "under systemd's RuntimeDirectory=, else off" },
	  S_DAEMON, K_CONTROL, D(control), 0, 0, 0 },
	{ { "daemon", "metrics", "address or off", "off",
	    "serve Prometheus metrics at http://HOST:PORT/metrics from the master; off = none" },
	  S_DAEMON, K_METRICS, D(metrics), 0, 0, 0 },
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
	{ { "listener", "allow", "cidr list", NULL,
	    "admit only clients in these blocks (CIDR, address or /path of a list "
	    "file); repeatable" },
	  S_LISTENER, K_CIDR, L(allow), 0, 0, 0 },
	{ { "listener", "deny", "cidr list", NULL,
	    "refuse clients in these blocks, checked before allow; repeatable" },
	  S_LISTENER, K_CIDR, L(deny), 0, 0, 0 },
	{ { "listener", "accept_proxy_from", "cidr list", NULL,
	    "peers whose PROXY header is read (needs accept_proxy = on); repeatable" },
	  S_LISTENER, K_CIDR, L(proxy_from), 0, 0, 0 },
	{ { "listener", "untrusted_proxy", "refuse|direct", "refuse",
	    "a peer outside accept_proxy_from: refused at accept, or served "
	    "as a direct client" },
	  S_LISTENER, K_UNTRUSTED, L(untrusted_proxy), 0, 0, 0 },
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
	{ { "listener", "max_connections", "integer", "0",
	    "connections open on this listener across all workers at most; 0 = off" },
	  S_LISTENER, K_UINT, L(max_conn), 0, 1000000, 0 },
	{ { "listener", "max_conn_per_client", "integer", "0",
	    "connections open at once from one client, across all workers; 0 = off" },
	  S_LISTENER, K_UINT, L(client_max_conn), 0, 1000000, 0 },
	{ { "listener", "conn_rate_per_client", "rate", "0",
	    "new connections from one client: N/s, N/m or N (a second); 0 = off" },
	  S_LISTENER, K_RATE, L(client_rate), 0, 1000000, L(client_rate_ms) },
	{ { "listener", "client_ipv6_prefix", "integer", "64",
	    "the prefix length, 1..64, by which IPv6 clients are grouped" },
	  S_LISTENER, K_UINT, L(client_prefix6), 1, 64, 0 },
	{ { "listener", "client_table_size", "integer", "65536",
	    "entries in the listener's per-client table, 64..16777216 (rounded up "
	    "to a power of two)" },
	  S_LISTENER, K_POW2, L(client_table_size), 64, 16777216, 0 },
};
#define NKEYS	(sizeof(confkey_keys) / sizeof(confkey_keys[0]))
_Static_assert(NKEYS <= CONFKEY_MAX, "struct parse's seen bitmask holds 64 keys");
const size_t confkey_nkeys = NKEYS;

/* Listener keys that record their first line, and where. */
static const struct {
	const char	*name;
	size_t		 off;
} line_fields[] = {
	{ "allow",			L(allow_line) },
	{ "deny",			L(deny_line) },
	{ "accept_proxy_from",		L(proxy_from_line) },
	{ "untrusted_proxy",		L(untrusted_line) },
	{ "max_conn_per_client",	L(client_line) },
	{ "conn_rate_per_client",	L(client_line) },
	{ "client_ipv6_prefix",		L(client_line) },
	{ "client_table_size",		L(client_line) },
};

size_t
confkey_line_field(const struct keydef *k)
{
	if (k->sect != S_LISTENER)
		return 0;
	for (size_t i = 0; i < sizeof(line_fields) / sizeof(line_fields[0]); i++)
		if (strcmp(k->pub.name, line_fields[i].name) == 0)
			return line_fields[i].off;
	return 0;
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

/* What a value parser gets: the key, where it goes, and room for a message. */
struct keyval {
	const struct keydef *k;
	void		*obj;		/* struct config or listener_conf */
	char		*p;		/* the field: obj + k->off */
	const char	*value;
	char		*msg;		/* msglen bytes for a message made up */
	size_t		 msglen;
};

/* The value kept as a copy in the char * field. */
static const char *
keep_string(const struct keyval *kv)
{
	char *dup = strdup(kv->value);

	if (dup == NULL)
		return "out of memory";
	free(*(char **)kv->p);
	*(char **)kv->p = dup;
	return NULL;
}

/* One of up to four words, stored as its index (the enum's order). */
static const char *
set_word(const struct keyval *kv, const char *a, const char *b, const char *c,
    const char *d, const char *why)
{
	int n;

	if ((n = word_index(kv->value, a, b, c, d)) == -1)
		return why;
	*(int *)kv->p = n;
	return NULL;
}

/*
 * The value parsers, one per key type: each sets the field from kv->value
 * and returns NULL, or a message saying what was wrong.
 */
static const char *
parse_workers(const struct keyval *kv)
{
	int n;

	if ((n = config_parse_workers(kv->value)) == -1)
		return "expected auto or a number from 1 to 256";
	*(int *)kv->p = n;
	return NULL;
}

static const char *
parse_uint(const struct keyval *kv)
{
	const struct keydef *k = kv->k;
	unsigned long long v;
	const char *end;

	if (parse_ull(kv->value, &end, &v) == -1 || *end != '\0')
		return "expected a number";
	if (v < k->min || v > k->max) {
		snprintf(kv->msg, kv->msglen, "%s is out of range %llu-%llu",
		    kv->value, k->min, k->max);
		return kv->msg;
	}
	*(unsigned *)kv->p = v;
	return NULL;
}

static const char *
parse_duration(const struct keyval *kv)
{
	const struct keydef *k = kv->k;
	unsigned ms;

	if (config_parse_duration(kv->value, &ms) == -1)
		return "expected a duration such as 250ms, 30s, 5m or 1h";
	if (ms < k->min || ms > k->max) {
		snprintf(kv->msg, kv->msglen, "%s is out of range %s-%llus", kv->value,
		    k->min > 0 ? "1ms" : "0", k->max / 1000);
		return kv->msg;
	}
	*(unsigned *)kv->p = ms;
	return NULL;
}

static const char *
parse_size(const struct keyval *kv)
{
	size_t sz;

	if (config_parse_size(kv->value, &sz) == -1)
		return "expected a size such as 4096, 16k or 1m";
	if (sz < kv->k->min || sz > kv->k->max) {
		snprintf(kv->msg, kv->msglen, "%s is out of range 1k-16m", kv->value);
		return kv->msg;
	}
	*(size_t *)kv->p = sz;
	return NULL;
}

static const char *
parse_level(const struct keyval *kv)
{
	int n;

	if ((n = log_level_parse(kv->value)) == -1)
		return "expected debug, info, notice, warning or error";
	*(int *)kv->p = n;
	return NULL;
}

static const char *
parse_target(const struct keyval *kv)
{
	if (strcmp(kv->value, "stderr") != 0 && strcmp(kv->value, "syslog") != 0 &&
	    kv->value[0] != '/')
		return "expected stderr, syslog or an absolute file path";
	return keep_string(kv);
}

static const char *
parse_logformat(const struct keyval *kv)
{
	/* The words in the order of enum log_format. */
	return set_word(kv, "text", "json", NULL, NULL, "expected text or json");
}

static const char *
parse_path(const struct keyval *kv)
{
	if (kv->value[0] != '/')
		return "expected an absolute path";
	return keep_string(kv);
}

/*
 * The control socket: off, auto or an absolute path that fits a
 * sockaddr_un.  auto is the first directory of $RUNTIME_DIRECTORY (set by
 * systemd for a unit with RuntimeDirectory=, colon-separated when it names
 * several) with /control.sock, and off when that variable is unset or not
 * an absolute path;
 * it is resolved when the configuration is built, so a client (preforkd -x,
 * -s reload) run with the service's environment finds the master's socket.
 */
static const char *
parse_control(const struct keyval *kv)
{
	char **p = (char **)kv->p, *path;
	const char *dir;
	size_t dlen;

	free(*p);
	*p = NULL;
	if (strcmp(kv->value, "off") == 0)
		return NULL;
	if (strcmp(kv->value, "auto") == 0) {
		/* systemd sets absolute paths; anything else is not its. */
		if ((dir = getenv("RUNTIME_DIRECTORY")) == NULL || dir[0] != '/')
			return NULL;
		dlen = strcspn(dir, ":");
		if ((path = malloc(dlen + sizeof("/control.sock"))) == NULL)
			return "out of memory";
		memcpy(path, dir, dlen);
		strcpy(path + dlen, "/control.sock");
	} else if (kv->value[0] != '/')
		return "expected an absolute path, auto or off";
	else if ((path = strdup(kv->value)) == NULL)
		return "out of memory";
	if (strlen(path) >= CONFIG_CONTROL_MAX) {
		snprintf(kv->msg, kv->msglen, "%.*s... is longer than %d bytes",
		    40, path, CONFIG_CONTROL_MAX - 1);
		free(path);
		return kv->msg;
	}
	*p = path;
	return NULL;
}

static const char *
parse_user(const struct keyval *kv)
{
	struct config *c = kv->obj;
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(kv->value)) == NULL) {
		snprintf(kv->msg, kv->msglen, "unknown user \"%s\"", kv->value);
		return kv->msg;
	}
	c->uid = pw->pw_uid;
	if (c->group == NULL)
		c->gid = pw->pw_gid;
	return keep_string(kv);
}

static const char *
parse_group(const struct keyval *kv)
{
	struct group *gr;

	if ((gr = getgrnam(kv->value)) == NULL) {
		snprintf(kv->msg, kv->msglen, "unknown group \"%s\"", kv->value);
		return kv->msg;
	}
	((struct config *)kv->obj)->gid = gr->gr_gid;
	return keep_string(kv);
}

static const char *
parse_addr(const struct keyval *kv)
{
	if (net_parse_addr(kv->value, 1, &((struct listener_conf *)kv->obj)->addr,
	    kv->msg, kv->msglen) == -1)
		return kv->msg;
	return keep_string(kv);
}

static const char *
parse_mode(const struct keyval *kv)
{
	return set_word(kv, "echo", "proxy", NULL, NULL, "expected echo or proxy");
}

static const char *
parse_balance(const struct keyval *kv)
{
	return set_word(kv, "roundrobin", "leastconn", "source", "random",
	    "expected roundrobin, leastconn, source or random");
}

static const char *
parse_dispatch(const struct keyval *kv)
{
	return set_word(kv, "notify", "reuseport", "handoff", NULL,
	    "expected notify, reuseport or handoff");
}

static const char *
parse_sendproxy(const struct keyval *kv)
{
	return set_word(kv, "off", "v1", "v2", NULL, "expected off, v1 or v2");
}

static const char *
parse_onoff(const struct keyval *kv)
{
	return set_word(kv, "off", "on", NULL, NULL, "expected off or on");
}

static const char *
parse_splice(const struct keyval *kv)
{
	return set_word(kv, "auto", "on", "off", NULL, "expected auto, on or off");
}

/* "off", or the address the master serves its metrics on. */
static const char *
parse_metrics(const struct keyval *kv)
{
	struct config *c = kv->obj;

	if (strcmp(kv->value, "off") == 0) {
		free(c->metrics);
		c->metrics = NULL;
		return NULL;
	}
	if (net_parse_addr(kv->value, 1, &c->metrics_addr, kv->msg, kv->msglen) == -1)
		return kv->msg;
	return keep_string(kv);
}

/* "N/s", "N/m" or "N" (a second): N and the window in ms; 0 = off. */
static const char *
parse_rate(const struct keyval *kv)
{
	const struct keydef *k = kv->k;
	unsigned long long v;
	unsigned window;
	const char *end;

	if (parse_ull(kv->value, &end, &v) == -1)
		return "expected N/s, N/m or N (connections a second)";
	if (*end == '\0' || strcmp(end, "/s") == 0)
		window = 1000;
	else if (strcmp(end, "/m") == 0)
		window = 60000;
	else
		return "expected N/s, N/m or N (connections a second)";
	if (v < k->min || v > k->max) {
		snprintf(kv->msg, kv->msglen, "%llu is out of range %llu-%llu",
		    v, k->min, k->max);
		return kv->msg;
	}
	*(unsigned *)kv->p = v;
	*(unsigned *)((char *)kv->obj + k->off_len) = v > 0 ? window : 0;
	return NULL;
}

/* An integer within bounds, stored rounded up to a power of two. */
static const char *
parse_pow2(const struct keyval *kv)
{
	const char *why;
	unsigned v, p = 1;

	if ((why = parse_uint(kv)) != NULL)
		return why;
	v = *(unsigned *)kv->p;
	while (p < v)
		p <<= 1;	/* v <= max, a power of two: no overflow */
	*(unsigned *)kv->p = p;
	return NULL;
}

static const char *
parse_backend(const struct keyval *kv)
{
	return backend_add(kv->obj, kv->value, kv->msg, kv->msglen);
}

static const char *
parse_source(const struct keyval *kv)
{
	return source_set(kv->obj, kv->value, kv->msg, kv->msglen);
}

/* Blocks appended to the set; list files read (cidrlist.c). */
static const char *
parse_cidr(const struct keyval *kv)
{
	if (cidrlist_add((struct cidr_set *)kv->p, kv->value, kv->msg, kv->msglen) == -1)
		return kv->msg;
	return NULL;
}

static const char *
parse_untrusted(const struct keyval *kv)
{
	/* The words in the order of enum untrusted_proxy. */
	return set_word(kv, "refuse", "direct", NULL, NULL, "expected refuse or direct");
}

static const char *
parse_bytes(const struct keyval *kv)
{
	const struct keydef *k = kv->k;
	char *dec;
	size_t len;

	if ((dec = unescape(kv->value, &len)) == NULL)
		return "bad escape (use \\r \\n \\t \\\\ or \\xHH)";
	if (len < k->min || len > k->max) {
		free(dec);
		snprintf(kv->msg, kv->msglen, "must be %llu to %llu bytes", k->min, k->max);
		return kv->msg;
	}
	free(*(char **)kv->p);
	*(char **)kv->p = dec;
	*(size_t *)((char *)kv->obj + k->off_len) = len;
	return NULL;
}

/* The parser of each key type: a new type is one function and one line. */
static const char *(*const parsers[K_NTYPES])(const struct keyval *) = {
	[K_WORKERS]	= parse_workers,
	[K_UINT]	= parse_uint,
	[K_DURATION]	= parse_duration,
	[K_SIZE]	= parse_size,
	[K_LEVEL]	= parse_level,
	[K_TARGET]	= parse_target,
	[K_ADDR]	= parse_addr,
	[K_MODE]	= parse_mode,
	[K_USER]	= parse_user,
	[K_GROUP]	= parse_group,
	[K_PATH]	= parse_path,
	[K_BACKEND]	= parse_backend,
	[K_BALANCE]	= parse_balance,
	[K_SENDPROXY]	= parse_sendproxy,
	[K_ONOFF]	= parse_onoff,
	[K_BYTES]	= parse_bytes,
	[K_DISPATCH]	= parse_dispatch,
	[K_SOURCE]	= parse_source,
	[K_SPLICE]	= parse_splice,
	[K_CONTROL]	= parse_control,
	[K_METRICS]	= parse_metrics,
	[K_LOGFORMAT]	= parse_logformat,
	[K_CIDR]	= parse_cidr,
	[K_UNTRUSTED]	= parse_untrusted,
	[K_RATE]	= parse_rate,
	[K_POW2]	= parse_pow2,
};

const char *
confkey_set(const struct keydef *k, void *obj, const char *value, char *msg,
    size_t msglen)
{
	struct keyval kv = { k, obj, (char *)obj + k->off, value, msg, msglen };

	return parsers[k->type](&kv);
}

const struct keydef *
confkey_find(enum sect sect, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (confkey_keys[i].sect == sect && strcmp(confkey_keys[i].pub.name, name) == 0)
			return &confkey_keys[i];
	return NULL;
}
