/*
 * config.c: reading a config file, its sections, the command-line
 * overrides and validation across keys, building an immutable struct
 * config; the error list.
 *
 * What each key is and how its value parses is confkey.c's (the key
 * table); this file never parses a value itself and confkey.c never
 * calls back here.
 *
 * inih does the INI syntax; a reader of our own feeds it one line at a
 * time, so we always know the line being parsed (Debian's libinih is built
 * without INI_HANDLER_LINENO) and see section headers, blank sections and
 * over-long lines that the handler alone would miss.  Every problem is
 * recorded as "FILE:LINE: key: message" and parsing goes on, so one run
 * reports them all; a config with any error is freed, never returned.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
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
#include "confkey.h"

#define MAX_LISTENERS	256

struct parse {
	const char	*name;		/* file name for messages */
	const char	*file;		/* the same; NULL: "(command line)" */
	const char	*pos;		/* reader position in the text */
	int		 line;		/* line just handed to inih */
	enum sect	 sect;
	struct listener_conf *cur;	/* S_LISTENER: the section's listener */
	uint64_t	 seen;		/* bit per key index: set in this section */
	unsigned	 daemon_seen;	/* [daemon] may appear once */
	int		 daemon_line;
	int		 group_line;	/* where group was set */
	int		 metrics_line;	/* where metrics was set */
	struct config	*c;
	struct config_errors *errs;
	size_t		 nerr_before;
};

static void	err_push(struct config_errors *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void	err_add(struct config_errors *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void	err_at(struct parse *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
err_vpush(struct config_errors *errs, int line, const char *fmt, va_list ap)
{
	char **v, *s;
	int *vl;

	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	if (s == NULL || (v = realloc(errs->msg, (errs->n + 1) * sizeof(*v))) == NULL) {
		free(s);
		return;		/* out of memory: the count still shows failure below */
	}
	errs->msg = v;
	if ((vl = realloc(errs->line, (errs->n + 1) * sizeof(*vl))) == NULL) {
		free(s);
		return;
	}
	errs->line = vl;
	errs->line[errs->n] = line;
	errs->msg[errs->n++] = s;
}

/* A message as formatted; line: the file's line it begins with, or -1. */
static void
err_push(struct config_errors *errs, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vpush(errs, line, fmt, ap);
	va_end(ap);
}

/* A message that names no line of a file. */
static void
err_add(struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vpush(errs, -1, fmt, ap);
	va_end(ap);
}

/* line as errs->line records it: a line of a file, not of "(command line)". */
static int
err_line(const struct parse *ps, int line)
{
	return ps->file != NULL && line >= 0 ? line : -1;
}

/* "NAME:LINE: " and the message. */
static void
err_at(struct parse *ps, int line, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	if (s != NULL)
		err_push(ps->errs, err_line(ps, line), "%s:%d: %s", ps->name, line, s);
	free(s);
}

void
config_errors_fini(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	free(errs->line);
	errs->msg = NULL;
	errs->line = NULL;
	errs->n = 0;
}

static void
defaults(struct parse *ps, enum sect sect, void *obj)
{
	char msg[256];

	for (size_t i = 0; i < confkey_nkeys; i++)
		if (confkey_keys[i].sect == sect && confkey_keys[i].pub.def != NULL &&
		    confkey_set(&confkey_keys[i], obj, confkey_keys[i].pub.def, msg,
		    sizeof(msg)) != NULL)
			err_add(ps->errs, "%s: default %s = %s is invalid",
			    ps->name, confkey_keys[i].pub.name, confkey_keys[i].pub.def);
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
	cidr_set_init(&l->allow);
	cidr_set_init(&l->deny);
	cidr_set_init(&l->proxy_from);
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
			err_at(ps, ps->line, "[daemon]: section already defined at line %d",
			    ps->daemon_line);
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
			err_at(ps, ps->line, "[%s]: listener name must be letters, digits, '_', '-' or '.'",
			    name);
			return;
		}
		if (config_listener(ps->c, arg) != NULL) {
			err_at(ps, ps->line, "[%s]: section already defined at line %d",
			    name, config_listener(ps->c, arg)->line);
			return;
		}
		if ((ps->cur = listener_add(ps->c, arg)) == NULL) {
			err_at(ps, ps->line, "[%s]: too many listeners (at most %d)",
			    name, MAX_LISTENERS);
			return;
		}
		ps->cur->line = ps->line;
		ps->sect = S_LISTENER;
		defaults(ps, S_LISTENER, ps->cur);
		return;
	}
	err_at(ps, ps->line, "[%s]: unknown section (expected [daemon] or [listener NAME])",
	    name);
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
		err_at(ps, ps->line, "line is longer than %d bytes", LINE_MAX_LEN);
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
			err_at(ps, ps->line, "malformed section header (missing ']')");
			ps->sect = S_UNKNOWN;
			strcpy(str, "\n");
			return str;
		}
		section_begin(ps, s + 1, close - s - 1);
		return str;
	}
	if (memchr(s, '=', e - s) == NULL) {
		err_at(ps, ps->line, "expected key = value");
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
	size_t off;
	void *obj;

	(void)section;		/* the reader tracks sections itself */
	if (ps->sect == S_UNKNOWN)
		return 1;	/* already reported at the header */
	if (ps->sect == S_NONE) {
		err_at(ps, ps->line, "%s: key outside any section", name);
		return 1;
	}
	if ((k = confkey_find(ps->sect, name)) == NULL) {
		err_at(ps, ps->line, "%s: unknown key in [%s]",
		    name, ps->sect == S_DAEMON ? "daemon" : "listener");
		return 1;
	}
	bit = UINT64_C(1) << (k - confkey_keys);
	/* backend and the address lists may repeat: each line appends. */
	if ((ps->seen & bit) && k->type != K_BACKEND && k->type != K_CIDR) {
		err_at(ps, ps->line, "%s: duplicate key", name);
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
	if (k->type == K_METRICS)
		ps->metrics_line = ps->line;
	if (k->type == K_SOURCE)
		ps->cur->source_line = ps->line;
	if ((off = confkey_line_field(k)) != 0 && *(int *)((char *)ps->cur + off) == 0)
		*(int *)((char *)ps->cur + off) = ps->line;	/* the first one */
	if (*value == '\0')
		why = "empty value";
	else
		why = confkey_set(k, obj, value, msg, sizeof(msg));
	if (why != NULL)
		err_at(ps, ps->line, "%s: %s", name, why);
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
		if (confkey_set(confkey_find(S_LISTENER, "listen"), l, ov->listen[i], msg,
		    sizeof(msg)) != NULL)
			err_add(ps->errs, "-l %s: %s", ov->listen[i], msg);
		/* -b alone means proxy; -m echo with -b is refused below. */
		l->mode = ov->mode >= 0 ? ov->mode : ov->nbackends > 0 ? MODE_PROXY : MODE_ECHO;
		l->backend_keys = ov->nbackends;
		for (size_t j = 0; j < ov->nbackends; j++) {
			const char *why = confkey_set(confkey_find(S_LISTENER, "backend"),
			    l, ov->backends[j], msg, sizeof(msg));

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
	int at = l->line > 0 ? err_line(ps, l->line) : -1;

	if (l->line > 0)
		snprintf(where, sizeof(where), "%s:%d: ", ps->name, l->line);
	else
		snprintf(where, sizeof(where), "-l %s: ", l->listen ? l->listen : l->name);
	if (l->mode == MODE_PROXY && l->nbackends == 0 && l->backend_keys == 0)
		err_push(ps->errs, at, "%sbackend: [listener %s] has mode = proxy but no backend",
		    where, l->name);
	if (l->mode == MODE_ECHO && l->nbackends > 0)
		err_push(ps->errs, at, "%sbackend: [listener %s] has backends but mode = echo",
		    where, l->name);
	if (l->mode == MODE_ECHO && l->send_proxy != SEND_PROXY_OFF)
		err_push(ps->errs, at, "%ssend_proxy: [listener %s] has mode = echo",
		    where, l->name);
	if (l->mode == MODE_ECHO && l->splice == SPLICE_ON)
		err_push(ps->errs, at, "%ssplice: [listener %s] has mode = echo",
		    where, l->name);
	if (l->mode == MODE_ECHO && l->nsource > 0)
		err_at(ps, l->source_line, "source: [listener %s] has mode = echo",
		    l->name);
	if ((l->check_send != NULL || l->check_expect != NULL) &&
	    l->check_interval_ms == 0)
		err_push(ps->errs, at, "%scheck_send/check_expect: [listener %s] needs check_interval",
		    where, l->name);
	for (size_t j = 0; j < l->nbackends; j++)
		for (size_t k = 0; k < j; k++)
			if (net_addr_equal(&l->backends[j].addr, &l->backends[k].addr)) {
				if (l->backends[j].line > 0)
					err_at(ps, l->backends[j].line, "backend: %s is listed twice",
					    l->backends[j].spec);
				else
					err_add(ps->errs, "-b %s: listed twice", l->backends[j].spec);
				break;
			}
}

/*
 * The address lists: each set sorted and merged now that every line is
 * in (O(n log n)), and the keys that need another.
 */
static void
validate_access(struct parse *ps, struct listener_conf *l)
{
	cidr_set_build(&l->allow);
	cidr_set_build(&l->deny);
	cidr_set_build(&l->proxy_from);
	if (l->proxy_from_line > 0 && !l->accept_proxy)
		err_at(ps, l->proxy_from_line, "accept_proxy_from: needs accept_proxy = on");
	if (l->untrusted_line > 0 && l->proxy_from_line == 0)
		err_at(ps, l->untrusted_line, "untrusted_proxy: needs accept_proxy_from");
}

static void
validate(struct parse *ps)
{
	struct config *c = ps->c;

	if (c->group != NULL && c->user == NULL)
		err_at(ps, ps->group_line, "group: needs user as well");
	if (c->nlisteners == 0) {
		err_at(ps, ps->line, "listener: no [listener] section; nothing to serve");
		return;
	}
	for (size_t i = 0; i < c->nlisteners; i++) {
		struct listener_conf *l = &c->listeners[i];

		validate_mode(ps, l);
		validate_access(ps, l);
		if (l->listen == NULL) {
			/* A bad value (file or -l) was reported already. */
			if (l->line > 0 && l->listen_line == 0)
				err_at(ps, l->line, "listen: missing in [listener %s]",
				    l->name);
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			const struct listener_conf *o = &c->listeners[j];

			if (o->listen == NULL || !net_addr_equal(&o->addr, &l->addr))
				continue;
			if (l->line > 0)
				err_at(ps, l->listen_line, "listen: %s is already used by [listener %s]",
				    l->listen, o->name);
			else
				err_add(ps->errs, "-l %s: address already used by [listener %s]",
				    l->listen, o->name);
			break;
		}
		if (c->metrics != NULL && net_addr_equal(&c->metrics_addr, &l->addr))
			err_at(ps, ps->metrics_line, "metrics: %s is the address of [listener %s]",
			    c->metrics, l->name);
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
	ps.file = name;
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
			err_at(&ps, rc, "syntax error");
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
		cidr_set_fini(&l->allow);
		cidr_set_fini(&l->deny);
		cidr_set_fini(&l->proxy_from);
	}
	free(c->listeners);
	free(c->log_target);
	free(c->user);
	free(c->group);
	free(c->pidfile);
	free(c->control);
	free(c->metrics);
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
	static struct config_key pub[CONFKEY_MAX];

	for (size_t i = 0; i < confkey_nkeys; i++)
		pub[i] = confkey_keys[i].pub;
	*n = confkey_nkeys;
	return pub;
}
