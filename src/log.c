/*
 * log.c: the process-wide logger.  Owns the log target, the format and the
 * tag; also the rate limit that warnings a flood could repeat go through,
 * and the JSON string escaping of the JSON format.
 *
 * Each line is one write(2) on an O_APPEND descriptor, so lines from the
 * master and the workers interleave whole.  A line is built on the stack:
 * LINE_MAX_TEXT bytes in text, and room for a message of that size escaped
 * in JSON, where a line cut short still ends as a valid object.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum { TARGET_STDERR, TARGET_SYSLOG, TARGET_FILE };

#define LINE_MAX_TEXT	1024
#define LINE_MAX_JSON	4096

int log_verbosity = LOGL_NOTICE;

static int	 target = TARGET_STDERR;
static int	 fd = STDERR_FILENO;
static char	*path;			/* file target, owned */
static char	 tag[48] = "master";
static int	 wslot = -1;		/* the worker's slot; -1: not a worker */
static unsigned	 wgen;			/* the worker's generation */
static int	 format = LOGF_TEXT;
static int	 fatal_status = 1;
static int	 journal = -1;		/* stderr goes to journald; -1 = unknown */

static const char *const names[] = {
	"debug", "info", "notice", "warning", "error", "crit"
};
static const int prio[] = {
	LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR, LOG_CRIT
};

int
log_level_parse(const char *name)
{
	for (int i = LOGL_DEBUG; i <= LOGL_ERROR; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	if (strcmp(name, "warn") == 0)
		return LOGL_WARNING;
	return -1;
}

const char *
log_level_name(int level)
{
	return level >= LOGL_DEBUG && level <= LOGL_CRIT ? names[level] : "?";
}

int
log_format_parse(const char *name)
{
	if (strcmp(name, "text") == 0)
		return LOGF_TEXT;
	if (strcmp(name, "json") == 0)
		return LOGF_JSON;
	return -1;
}

void
log_set_format(int f)
{
	format = f == LOGF_JSON ? LOGF_JSON : LOGF_TEXT;
}

void
log_set_level(int level)
{
	log_verbosity = level;
}

void
log_set_fatal_status(int status)
{
	fatal_status = status;
}

void
log_set_tag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tag, sizeof(tag), fmt, ap);
	va_end(ap);
	wslot = -1;
}

void
log_set_worker(int slot, unsigned gen)
{
	snprintf(tag, sizeof(tag), "worker %d gen %u", slot, gen);
	wslot = slot;
	wgen = gen;
}

int
log_open(const char *t)
{
	int nfd;

	if (strcmp(t, "stderr") == 0) {
		log_close();
		target = TARGET_STDERR;
		return 0;
	}
	if (strcmp(t, "syslog") == 0) {
		log_close();
		openlog("preforkd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		target = TARGET_SYSLOG;
		return 0;
	}
	if ((nfd = open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) == -1)
		return -1;
	log_close();
	if ((path = strdup(t)) == NULL) {
		close(nfd);
		return -1;
	}
	fd = nfd;
	target = TARGET_FILE;
	return 0;
}

int
log_reopen(void)
{
	int nfd;

	if (target != TARGET_FILE)
		return 0;
	if ((nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) == -1)
		return -1;
	dup2(nfd, fd);		/* swap in place: no window without a log */
	close(nfd);
	return 0;
}

void
log_close(void)
{
	if (target == TARGET_FILE) {
		close(fd);
		free(path);
		path = NULL;
	} else if (target == TARGET_SYSLOG)
		closelog();
	target = TARGET_STDERR;
	fd = STDERR_FILENO;
}

/* Append to line at *off, never past its end. */
static void
append(char *line, size_t size, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= size - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *off, size - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off = *off + n < size - 1 ? *off + n : size - 1;
}

/*
 * The length of the valid UTF-8 sequence at s, 1 to 4, or 0 when the byte
 * at s starts none (a stray continuation byte, an overlong form, a
 * surrogate, a code point past U+10FFFF, a sequence cut short).  Reads no
 * byte past a NUL.
 */
static int
utf8_len(const unsigned char *s)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4 || (s[1] & 0xc0) != 0x80)
		return 0;
	if (c < 0xe0)
		return 2;
	if ((s[2] & 0xc0) != 0x80 || (c == 0xe0 && s[1] < 0xa0) ||
	    (c == 0xed && s[1] >= 0xa0))
		return 0;
	if (c < 0xf0)
		return 3;
	if ((s[3] & 0xc0) != 0x80 || (c == 0xf0 && s[1] < 0x90) ||
	    (c == 0xf4 && s[1] >= 0x90))
		return 0;
	return 4;
}

/* log_json_str(), and *whole set to whether all of s went in. */
static size_t
json_str(char *buf, size_t size, const char *s, int *whole)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];
	size_t off = 0, lim, n;
	int len;

	*whole = 0;
	if (size < 3) {
		if (size > 0)
			buf[0] = '\0';
		return 0;
	}
	lim = size - 2;		/* room for the closing quote and the NUL */
	buf[off++] = '"';
	for (; *p != '\0'; p += len) {
		const char *out = esc;

		len = utf8_len(p);
		if (len == 0) {
			out = "\\ufffd";
			n = 6;
			len = 1;
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = *p;
			n = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			const char *named = *p == '\n' ? "n" : *p == '\r' ? "r" :
			    *p == '\t' ? "t" : *p == '\b' ? "b" : *p == '\f' ? "f" : NULL;

			esc[0] = '\\';
			if (named != NULL) {
				esc[1] = named[0];
				n = 2;
			} else {
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 0xf];
				n = 6;
			}
		} else {
			out = (const char *)p;
			n = len;
		}
		if (off + n > lim)
			break;		/* cut short on a character's boundary */
		memcpy(buf + off, out, n);
		off += n;
	}
	*whole = *p == '\0';
	buf[off++] = '"';
	buf[off] = '\0';
	return off;
}

size_t
log_json_str(char *buf, size_t size, const char *s)
{
	int whole;

	return json_str(buf, size, s, &whole);
}

/* The "<N>" priority prefix of a journald stream, timestamp and level for a file. */
static void
text_prefix(char *line, size_t size, size_t *off, int level)
{
	if (target == TARGET_STDERR && journal == -1)
		journal = getenv("JOURNAL_STREAM") != NULL;
	if (target == TARGET_STDERR && journal)
		append(line, size, off, "<%d>", prio[level]);
	else if (target != TARGET_SYSLOG) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		*off = strftime(line, size, "%Y-%m-%d %H:%M:%S", &tm);
		append(line, size, off, ".%03ld ", ts.tv_nsec / 1000000);
	}
	if (target != TARGET_SYSLOG)
		append(line, size, off, "[%s] ", names[level]);
	append(line, size, off, "%s: ", tag);
}

/*
 * The opening of a JSON line, up to and without the "msg" or "event" key:
 * the priority prefix on a journald stream, then {"ts":...,"pid":N.  All of
 * it fits: the tag is at most 47 bytes, 282 escaped.
 */
static void
json_prefix(char *line, size_t size, size_t *off, int level)
{
	char stamp[32];
	struct timespec ts;
	struct tm tm;

	if (target == TARGET_STDERR && journal == -1)
		journal = getenv("JOURNAL_STREAM") != NULL;
	if (target == TARGET_STDERR && journal)
		append(line, size, off, "<%d>", prio[level]);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	append(line, size, off, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"proc\":",
	    stamp, ts.tv_nsec / 1000000, names[level]);
	if (wslot >= 0)
		append(line, size, off, "\"worker\",\"worker\":%d,\"gen\":%u", wslot, wgen);
	else
		*off += log_json_str(line + *off, size - *off, tag);
	append(line, size, off, ",\"pid\":%ld", (long)getpid());
}

/*
 * Send out the line of len bytes: to syslog as its message, or with a
 * newline in one write.  line has room for the newline (len < size).
 */
static void
line_out(int level, char *line, size_t len)
{
	if (target == TARGET_SYSLOG)
		syslog(prio[level], "%.*s", (int)len, line);
	else {
		line[len] = '\n';
		if (write(fd, line, len + 1) == -1) {
			/* nowhere left to report it */
		}
	}
}

/*
 * A JSON line ending with "msg": the opening, then msg escaped, cut short
 * to leave room for the closing brace and the newline.
 */
static void
json_msg(int level, const char *msg)
{
	char line[LINE_MAX_JSON];
	size_t off = 0;

	json_prefix(line, sizeof(line), &off, level);
	append(line, sizeof(line), &off, ",\"msg\":");
	/* The string's NUL lands at most on line[size - 2], then the brace. */
	off += log_json_str(line + off, sizeof(line) - 1 - off, msg);
	line[off++] = '}';
	line_out(level, line, off);
}

static void
vlog(int level, int with_errno, const char *fmt, va_list ap)
{
	char line[LINE_MAX_TEXT];
	int saved = errno, n;
	size_t off = 0;

	if (format == LOGF_JSON) {
		/* The same message as in text, with no prefix. */
		n = vsnprintf(line, sizeof(line), fmt, ap);
		off = n < 0 ? 0 : (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		line[off] = '\0';
		if (with_errno)
			append(line, sizeof(line), &off, ": %s", strerror(saved));
		json_msg(level, line);
		errno = saved;
		return;
	}
	text_prefix(line, sizeof(line), &off, level);
	if (off < sizeof(line) - 1) {
		n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
		if (n > 0)
			off = off + n < sizeof(line) - 1 ? off + n : sizeof(line) - 1;
	}
	if (with_errno)
		append(line, sizeof(line), &off, ": %s", strerror(saved));
	line_out(level, line, off);	/* off <= sizeof(line) - 1 */
	errno = saved;
}

/* One field's value in text: what follows "key=". */
static void
text_value(char *line, size_t size, size_t *off, const struct log_field *f)
{
	if (f->type == LOGV_STR && f->v.s != NULL)
		append(line, size, off, "%s", f->v.s);
	else if (f->type == LOGV_UINT)
		append(line, size, off, "%llu", f->v.u);
	else if (f->type == LOGV_SECS)
		append(line, size, off, "%.3fs", f->v.secs);
	else
		append(line, size, off, "-");
}

/*
 * One field in JSON, ",\"key\":value", into line at *off, never past lim;
 * returns -1, with *off as it was, when the whole field does not fit.
 */
static int
json_field(char *line, size_t lim, size_t *off, const struct log_field *f)
{
	size_t start = *off, n;
	int len, whole;

	if (f->type == LOGV_STR && f->v.s != NULL) {
		len = snprintf(line + *off, lim - *off + 1, ",\"%s\":", f->key);
		if (len < 0 || (size_t)len > lim - *off) {
			line[start] = '\0';
			return -1;
		}
		*off += len;
		n = json_str(line + *off, lim - *off + 1, f->v.s, &whole);
		if (!whole) {
			*off = start;
			return -1;
		}
		*off += n;
		return 0;
	}
	if (f->type == LOGV_UINT)
		len = snprintf(line + *off, lim - *off + 1, ",\"%s\":%llu", f->key, f->v.u);
	else if (f->type == LOGV_SECS)
		len = snprintf(line + *off, lim - *off + 1, ",\"%s\":%.3f", f->key, f->v.secs);
	else
		len = snprintf(line + *off, lim - *off + 1, ",\"%s\":null", f->key);
	if (len < 0 || (size_t)len > lim - *off) {
		line[start] = '\0';
		return -1;
	}
	*off += len;
	return 0;
}

void
log_kv(int level, const char *event, const struct log_field *f, size_t n)
{
	char line[LINE_MAX_JSON];
	int saved = errno;
	size_t off = 0, lim;

	if (level < log_verbosity)
		return;
	if (format == LOGF_JSON) {
		json_prefix(line, sizeof(line), &off, level);
		lim = sizeof(line) - 2;		/* the closing brace and the newline */
		append(line, lim + 1, &off, ",\"event\":");
		off += log_json_str(line + off, lim + 1 - off, event);
		for (size_t i = 0; i < n; i++)
			if (json_field(line, lim, &off, &f[i]) == -1)
				break;
		line[off++] = '}';
	} else {
		lim = LINE_MAX_TEXT;	/* the text line of vlog() */
		text_prefix(line, lim, &off, level);
		append(line, lim, &off, "%s", event);
		for (size_t i = 0; i < n; i++) {
			append(line, lim, &off, " %s=", f[i].key);
			text_value(line, lim, &off, &f[i]);
		}
	}
	line_out(level, line, off);
	errno = saved;
}

void
log_emit(int level, int with_errno, const char *fmt, ...)
{
	va_list ap;

	if (level < log_verbosity)
		return;
	va_start(ap, fmt);
	vlog(level, with_errno, fmt, ap);
	va_end(ap);
}

int
log_rate_ok(struct log_rate *r, double now, double interval,
    unsigned long *held)
{
	if (now < r->next) {
		r->held++;
		return 0;
	}
	r->next = now + interval;
	*held = r->held;
	r->held = 0;
	return 1;
}

const char *
log_held(unsigned long held, char *buf, size_t len)
{
	if (held == 0)
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, " (%lu more since the last such line)", held);
	return buf;
}

void
log_warnx_rate(struct log_rate *r, double now, const char *fmt, ...)
{
	char line[1024], more[LOG_HELD_MAX];	/* vlog()'s line holds no more */
	unsigned long held;
	va_list ap;

	if (!log_rate_ok(r, now, 1.0, &held))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warnx("%s%s", line, log_held(held, more, sizeof(more)));
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOGL_CRIT, 1, fmt, ap);
	va_end(ap);
	exit(fatal_status);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOGL_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(fatal_status);
}
