/*
 * log.h: the process-wide logger.
 *
 * One logger per process.  Each line carries the process tag ("master",
 * "worker 2 gen 3") and the level.  The target is stderr (with a timestamp,
 * or with a syslog priority prefix and no timestamp when JOURNAL_STREAM is
 * set, since journald adds its own), syslog, or a file opened O_APPEND and
 * reopened on request.  The level test happens before the arguments are
 * evaluated, and every function preserves errno.
 *
 * Two formats: text ("[notice] master: message") and JSON, one object a
 * line with stable keys for a log pipeline: "ts" (UTC, milliseconds),
 * "level", "proc" ("master" or "worker", then "worker" and "gen" for a
 * worker), "pid", then "msg" for an event line or "event" and the fields
 * of a structured line (log_kv()).  The JSON object is the whole line in a
 * file, after the "<N>" priority prefix on a journald stream, and the
 * message of a syslog line.
 */
#ifndef PREFORKD_LOG_H
#define PREFORKD_LOG_H

#include <stdarg.h>
#include <stddef.h>

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

enum log_format {
	LOGF_TEXT,
	LOGF_JSON
};

/* Parse "text" or "json".  Returns the format, or -1 when unknown. */
int	log_format_parse(const char *name);
/* Write the lines that follow in format (enum log_format). */
void	log_set_format(int format);

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
/*
 * Set the tag written on each line, e.g. "master".  In JSON it is the
 * "proc" value.
 */
void	log_set_tag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Tag the lines as those of worker slot of generation gen: "worker 2 gen
 * 3" in text, "proc":"worker","worker":2,"gen":3 in JSON.
 */
void	log_set_worker(int slot, unsigned gen);

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
 * Structured lines: an event name and typed fields, written as
 * "event key=value key=value" in text and as "event":"...","key":value,...
 * in JSON.  A LOGV_NONE field reads "-" in text and null in JSON;
 * LOGV_SECS is seconds, "%.3fs" in text and a number in JSON; a LOGV_STR
 * field with a NULL string is LOGV_NONE.
 */
enum log_vtype {
	LOGV_NONE,
	LOGV_STR,
	LOGV_UINT,
	LOGV_SECS
};

struct log_field {
	const char	*key;		/* borrowed; [a-z_]+ */
	enum log_vtype	 type;
	union {
		const char	*s;	/* borrowed */
		unsigned long long u;
		double		 secs;
	} v;
};

#define LOGKV_NONE(k)	((struct log_field){ .key = (k), .type = LOGV_NONE })
#define LOGKV_STR(k, x)	((struct log_field){ .key = (k), .type = LOGV_STR, .v.s = (x) })
#define LOGKV_UINT(k, x) ((struct log_field){ .key = (k), .type = LOGV_UINT, \
	.v.u = (unsigned long long)(x) })
#define LOGKV_SECS(k, x) ((struct log_field){ .key = (k), .type = LOGV_SECS, \
	.v.secs = (x) })

/*
 * Write the structured line event with the n fields f at level.  Does
 * nothing below the log level, but the caller that builds its fields at a
 * cost tests log_verbosity first.  A JSON line too long for the logger
 * loses its last fields, whole, and stays one valid object; a text line
 * is cut at the logger's line length, as any other line.
 */
void	log_kv(int level, const char *event, const struct log_field *f, size_t n);

/*
 * s as a JSON string, quotes included, into buf (size bytes, NUL ended):
 * '"' and '\\' escaped, control characters as \n, \t, ... or \u00XX, and
 * each byte that is not part of a valid UTF-8 sequence replaced by \ufffd.
 * When the whole does not fit, as many whole characters as do, still
 * between quotes.  Returns the length written, or 0 with nothing written
 * (an empty string in buf when size > 0) when size < 3.
 */
size_t	log_json_str(char *buf, size_t size, const char *s);

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
