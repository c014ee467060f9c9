/*
 * log.c: the process-wide logger.  Owns the log target and the tag; also
 * the rate limit that warnings a flood could repeat go through.
 *
 * Each line is one write(2) on an O_APPEND descriptor, so lines from the
 * master and the workers interleave whole.
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

int log_verbosity = LOGL_NOTICE;

static int	 target = TARGET_STDERR;
static int	 fd = STDERR_FILENO;
static char	*path;			/* file target, owned */
static char	 tag[48] = "master";
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

static void
vlog(int level, int with_errno, const char *fmt, va_list ap)
{
	char line[1024];
	int saved = errno, n;
	size_t off = 0;

	if (target == TARGET_STDERR && journal == -1)
		journal = getenv("JOURNAL_STREAM") != NULL;
	if (target == TARGET_STDERR && journal)
		append(line, sizeof(line), &off, "<%d>", prio[level]);
	else if (target != TARGET_SYSLOG) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		append(line, sizeof(line), &off, ".%03ld ", ts.tv_nsec / 1000000);
	}
	if (target != TARGET_SYSLOG)
		append(line, sizeof(line), &off, "[%s] ", names[level]);
	append(line, sizeof(line), &off, "%s: ", tag);
	if (off < sizeof(line) - 1) {
		n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
		if (n > 0)
			off = off + n < sizeof(line) - 1 ? off + n : sizeof(line) - 1;
	}
	if (with_errno)
		append(line, sizeof(line), &off, ": %s", strerror(saved));

	if (target == TARGET_SYSLOG)
		syslog(prio[level], "%.*s", (int)off, line);
	else {
		line[off] = '\n';	/* off <= sizeof(line) - 1 */
		if (write(fd, line, off + 1) == -1) {
			/* nowhere left to report it */
		}
	}
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
