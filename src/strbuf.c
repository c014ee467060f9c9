/*
 * strbuf.c: a growing string with a limit (strbuf.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

void
strbuf_init(struct strbuf *sb, size_t max)
{
	memset(sb, 0, sizeof(*sb));
	sb->max = max;
}

void
strbuf_fini(struct strbuf *sb)
{
	free(sb->s);
	strbuf_init(sb, sb->max);
}

/* Room for len more bytes and the NUL.  0, or -1 (failed set). */
static int
strbuf_room(struct strbuf *sb, size_t len)
{
	size_t want, cap;
	char *p;

	if (sb->failed || len > sb->max - sb->len) {
		sb->failed = 1;
		return -1;
	}
	want = sb->len + len + 1;
	if (want <= sb->cap)
		return 0;
	for (cap = sb->cap ? sb->cap : 256; cap < want; cap *= 2)
		;
	if ((p = realloc(sb->s, cap)) == NULL) {
		sb->failed = 1;
		return -1;
	}
	sb->s = p;
	sb->cap = cap;
	return 0;
}

int
strbuf_append(struct strbuf *sb, const char *p, size_t len)
{
	if (strbuf_room(sb, len) == -1)
		return -1;
	memcpy(sb->s + sb->len, p, len);
	sb->len += len;
	sb->s[sb->len] = '\0';
	return 0;
}

int
strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || strbuf_room(sb, (size_t)n) == -1) {
		sb->failed = 1;
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(sb->s + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
	return 0;
}
