/*
 * log.h: the process-wide logger.
 *
 * One logger per process.  Each line carries the process tag ("master",
 * "worker 2 gen 3") and the level.  The target is stderr (with a timestamp,
 * or with a syslog priority prefix and no timestamp when JOURNAL_STREAM is
 * set, since journald adds its own), syslog, or a file opened O_APPEND and
 * reopened on request.  The level test happens before the arguments are
 * evaluated, and every function preserves errno.
 */
#ifndef PREFORKD_LOG_H
#define PREFORKD_LOG_H

#include <stdarg.h>

enum log_level {
	LOGL_DEBUG,
	LOGL_INFO,
	LOGL_NOTICE,
	LOGL_WARNING,
	LOGL_ERROR,
	LOGL_CRIT
};

extern int log_verbosity;	/* lowest level written; read by the macros */

/*
 * Parse "debug", "info", "notice", "warning" (or "warn"), "error".
 * Returns the level, or -1 when the name is unknown.
 */
int	log_level_parse(const char *name);
const char *log_level_name(int level);

/*
 * Direct output to target: "stderr", "syslog" or an absolute file path.
 * Returns 0, or -1 with errno set when a file cannot be opened (the old
 * target stays in use).
 */
int	log_open(const char *target);
/* Close and reopen a file target (logrotate).  0 or -1 with errno set. */
int	log_reopen(void);
void	log_close(void);
void	log_set_level(int level);
/*
 * The status fatal() and fatalx() exit with.  A worker sets 2 ("fatal,
 * don't respawn") while it starts: what fails then would fail again in a
 * new worker.
 */
void	log_set_fatal_status(int status);
/* Set the tag written on each line, e.g. "master" or "worker 2 gen 3". */
void	log_set_tag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void	log_emit(int level, int with_errno, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#define log_debug(...)	do { if (log_verbosity <= LOGL_DEBUG) \
	log_emit(LOGL_DEBUG, 0, __VA_ARGS__); } while (0)
#define log_info(...)	do { if (log_verbosity <= LOGL_INFO) \
	log_emit(LOGL_INFO, 0, __VA_ARGS__); } while (0)
#define log_notice(...)	do { if (log_verbosity <= LOGL_NOTICE) \
	log_emit(LOGL_NOTICE, 0, __VA_ARGS__); } while (0)
/* log_warn appends ": strerror(errno)"; log_warnx does not. */
#define log_warn(...)	log_emit(LOGL_WARNING, 1, __VA_ARGS__)
#define log_warnx(...)	log_emit(LOGL_WARNING, 0, __VA_ARGS__)
#define log_error(...)	log_emit(LOGL_ERROR, 1, __VA_ARGS__)
#define log_errorx(...)	log_emit(LOGL_ERROR, 0, __VA_ARGS__)

/*
 * A rate limit for a line that a flood could repeat (accept failing with
 * EMFILE, clients sending bad PROXY headers): at most one line per
 * interval, the ones held back in between counted and reported with the
 * next.  Zero-initialised means "nothing logged yet".
 */
struct log_rate {
	double		 next;		/* earliest time of the next line */
	unsigned long	 held;		/* lines held back since the last one */
};

/*
 * Whether the line of r may be written at time now (seconds on any clock
 * that does not go back; interval in the same unit).  Returns 1, with
 * *held set to the number of lines held back since the last one written
 * (the count then starts over), or 0 after counting this one as held back.
 * Says nothing about the log level: call it only for a line that would be
 * written.
 */
int	log_rate_ok(struct log_rate *r, double now, double interval,
	    unsigned long *held);
/*
 * The tail of a line written under a log_rate: " (N more since the last
 * such line)" into buf for held > 0, "" for none.  LOG_HELD_MAX bytes are
 * always enough.  Returns buf.
 */
#define LOG_HELD_MAX	64
const char *log_held(unsigned long held, char *buf, size_t len);
/*
 * log_warnx() under r, one line a second at most (now as for
 * log_rate_ok()), the line ending with log_held()'s tail.  The same bytes
 * as calling the two by hand.
 */
void	log_warnx_rate(struct log_rate *r, double now, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * Log at crit level and exit with the fatal status: 1 unless set.  For
 * start-up and impossible states only.
 */
void	fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
