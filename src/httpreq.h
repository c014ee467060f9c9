/*
 * httpreq.h: the head of an HTTP/1.0 or HTTP/1.1 request (the request
 * line and the header fields, RFC 9112), as the metrics endpoint reads
 * it from an untrusted peer.  Pure: no I/O, no allocation, no state
 * between calls.
 *
 * Strict where a lenient reading could be abused (a bare CR, a field
 * folded over lines, a space before the colon, a control byte, a missing
 * Host in HTTP/1.1, a version it does not speak), lenient where RFC 9112
 * asks it to be (a bare LF ends a line, empty lines before the request
 * line are skipped).  The body, if any, is not read: the server answers
 * and closes.
 */
#ifndef PREFORKD_HTTPREQ_H
#define PREFORKD_HTTPREQ_H

#include <stddef.h>

#define HTTPREQ_MORE	0	/* no verdict yet: read more */
#define HTTPREQ_DONE	1	/* the head is complete and valid */
#define HTTPREQ_BAD	(-1)	/* answer status and close */

#define HTTPREQ_MAX_FIELDS	100	/* header fields at most */

struct httpreq {
	/* HTTPREQ_DONE: pointers into the caller's bytes, not NUL-terminated. */
	const char	*method;
	size_t		 method_len;
	const char	*target;	/* as sent: "/metrics?x=1" */
	size_t		 target_len;
	int		 minor;		/* HTTP/1.minor: 0 or 1 */
	unsigned	 nfields;
	size_t		 len;		/* bytes of the head, its blank line included */
	/* HTTPREQ_BAD: what to answer and why. */
	int		 status;	/* 400, 414, 431 or 505 */
	const char	*why;		/* a static one-line reason */
};

/*
 * Parse the request head at the start of buf (len bytes received so far),
 * looking at max bytes of it at most.  Returns HTTPREQ_DONE with *r
 * filled, HTTPREQ_MORE when the bytes so far are a valid beginning and
 * fewer than max, or HTTPREQ_BAD with r->status and r->why set: 400 for
 * bad syntax, 505 for a version other than 1.0 and 1.1, 414 when the
 * request line does not end within max bytes, 431 when the header fields
 * do not (or there are more than HTTPREQ_MAX_FIELDS).  The verdict never
 * depends on how the bytes were split into calls: a prefix of an input
 * gives HTTPREQ_MORE or the verdict of the whole.
 */
int	httpreq_parse(const char *buf, size_t len, size_t max, struct httpreq *r);

/* 1 when r's method is exactly m ("GET"), 0 otherwise. */
int	httpreq_method_is(const struct httpreq *r, const char *m);
/*
 * 1 when r's target, up to a '?' that starts a query, is exactly path
 * ("/metrics"), 0 otherwise.
 */
int	httpreq_path_is(const struct httpreq *r, const char *path);

#endif
