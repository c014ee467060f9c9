/*
 * strbuf.h: a growing string for answers built in memory (the control
 * socket's, the metrics endpoint's).  No I/O.
 *
 * It grows up to a limit set at init; past the limit, or when memory runs
 * out, it stops growing, drops what no longer fits and remembers that it
 * failed, so a writer appends without checking each call and asks once at
 * the end.
 */
#ifndef PREFORKD_STRBUF_H
#define PREFORKD_STRBUF_H

#include <stddef.h>

struct strbuf {
	char	*s;		/* owned; NUL-terminated; NULL until the first append */
	size_t	 len;
	size_t	 cap;		/* allocated */
	size_t	 max;		/* len may not exceed it */
	int	 failed;	/* something was dropped */
};

/* An empty string that may grow to max bytes. */
void	strbuf_init(struct strbuf *sb, size_t max);
void	strbuf_fini(struct strbuf *sb);
/* Append len bytes / a printf-formatted string.  0, or -1 (and failed set). */
int	strbuf_append(struct strbuf *sb, const char *p, size_t len);
int	strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
