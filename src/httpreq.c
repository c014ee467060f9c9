/*
 * httpreq.c: the head of an HTTP/1.x request (httpreq.h).
 *
 * Each call parses from the first byte again: a head is 8 KiB at most
 * and comes in a read or two, so keeping state between reads would buy
 * nothing and cost the property that a split cannot change the verdict.
 * Only complete lines are judged, so a prefix never gets a verdict the
 * whole would not.
 */
#include <string.h>
#include <strings.h>

#include "httpreq.h"

/* RFC 9110 tchar: what a method or a field name is made of. */
static int
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A field value's bytes: visible ASCII, space, tab and obs-text. */
static int
is_vchar_ws(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
bad(struct httpreq *r, int status, const char *why)
{
	r->status = status;
	r->why = why;
	return HTTPREQ_BAD;
}

/*
 * The line that starts at pos, if it ends (LF) before lim: *end is where
 * its content ends (before CR LF or LF), *next where the next one starts.
 * 1, or 0 when it does not end before lim.
 */
static int
line_get(const char *buf, size_t lim, size_t pos, size_t *end, size_t *next)
{
	const char *lf;

	if (pos >= lim || (lf = memchr(buf + pos, '\n', lim - pos)) == NULL)
		return 0;
	*next = (size_t)(lf - buf) + 1;
	*end = (size_t)(lf - buf);
	if (*end > pos && buf[*end - 1] == '\r')
		(*end)--;
	return 1;
}

/* "METHOD SP TARGET SP HTTP/1.x", from p to e. */
static int
request_line(const char *buf, size_t p, size_t e, struct httpreq *r)
{
	size_t i = p;

	while (i < e && is_tchar((unsigned char)buf[i]))
		i++;
	if (i == p || i == e || buf[i] != ' ')
		return bad(r, 400, "bad method");
	r->method = buf + p;
	r->method_len = i - p;
	p = ++i;
	while (i < e && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
		i++;
	if (i == p || i == e || buf[i] != ' ')
		return bad(r, 400, "bad request target");
	r->target = buf + p;
	r->target_len = i - p;
	p = ++i;
	if (e - p != 8 || memcmp(buf + p, "HTTP/", 5) != 0 ||
	    buf[p + 5] < '0' || buf[p + 5] > '9' || buf[p + 6] != '.' ||
	    buf[p + 7] < '0' || buf[p + 7] > '9')
		return bad(r, 400, "bad HTTP version");
	if (buf[p + 5] != '1' || buf[p + 7] > '1')
		return bad(r, 505, "HTTP version not supported");
	r->minor = buf[p + 7] - '0';
	return HTTPREQ_DONE;
}

/* "NAME: value", from p to e; *host counts the Host fields. */
static int
field_line(const char *buf, size_t p, size_t e, struct httpreq *r, int *host)
{
	size_t i = p;

	if (buf[p] == ' ' || buf[p] == '\t')
		return bad(r, 400, "obsolete line folding");
	while (i < e && is_tchar((unsigned char)buf[i]))
		i++;
	if (i == p || i == e || buf[i] != ':')
		return bad(r, 400, "bad header field");
	if (i - p == 4 && strncasecmp(buf + p, "host", 4) == 0)
		(*host)++;
	for (i++; i < e; i++)
		if (!is_vchar_ws((unsigned char)buf[i]))
			return bad(r, 400, "control character in a header field");
	return HTTPREQ_DONE;
}

int
httpreq_parse(const char *buf, size_t len, size_t max, struct httpreq *r)
{
	size_t lim = len < max ? len : max, pos = 0, end, next;
	int rc, host = 0, have_line = 0;

	memset(r, 0, sizeof(*r));
	/* Empty lines before the request line are skipped (RFC 9112, 2.2). */
	while (line_get(buf, lim, pos, &end, &next) && end == pos)
		pos = next;
	while (line_get(buf, lim, pos, &end, &next)) {
		for (size_t i = pos; i < end; i++)
			if (buf[i] == '\r')
				return bad(r, 400, "bare CR");
		if (!have_line) {
			if ((rc = request_line(buf, pos, end, r)) != HTTPREQ_DONE)
				return rc;
			have_line = 1;
		} else if (end == pos) {
			if (r->minor == 1 && host == 0)
				return bad(r, 400, "HTTP/1.1 request without Host");
			if (host > 1)
				return bad(r, 400, "more than one Host");
			r->len = next;
			return HTTPREQ_DONE;
		} else if (++r->nfields > HTTPREQ_MAX_FIELDS)
			return bad(r, 431, "too many header fields");
		else if ((rc = field_line(buf, pos, end, r, &host)) != HTTPREQ_DONE)
			return rc;
		pos = next;
	}
	if (len < max)
		return HTTPREQ_MORE;
	return have_line ? bad(r, 431, "request header fields too large") :
	    bad(r, 414, "request line too long");
}

int
httpreq_method_is(const struct httpreq *r, const char *m)
{
	return r->method_len == strlen(m) && memcmp(r->method, m, r->method_len) == 0;
}

int
httpreq_path_is(const struct httpreq *r, const char *path)
{
	const char *q = memchr(r->target, '?', r->target_len);
	size_t n = q != NULL ? (size_t)(q - r->target) : r->target_len;

	return n == strlen(path) && memcmp(r->target, path, n) == 0;
}
