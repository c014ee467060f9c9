/*
 * buf.c: bounded byte buffer with read and write cursors.  No I/O.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct buf *
buf_new(size_t size)
{
	struct buf *b;

	if (size == 0 || size > INT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((b = malloc(sizeof(*b) + size)) == NULL)
		return NULL;
	b->size = size;
	b->rpos = b->wpos = 0;
	return b;
}

void
buf_free(struct buf *b)
{
	free(b);
}

char *
buf_wptr(struct buf *b)
{
	/* Callers want all the free space: move pending bytes to the front. */
	if (b->rpos > 0) {
		memmove(b->data, b->data + b->rpos, b->wpos - b->rpos);
		b->wpos -= b->rpos;
		b->rpos = 0;
	}
	return b->data + b->wpos;
}

void
buf_produce(struct buf *b, size_t n)
{
	b->wpos += n;
}

void
buf_consume(struct buf *b, size_t n)
{
	b->rpos += n;
	if (b->rpos == b->wpos)
		b->rpos = b->wpos = 0;
}

size_t
buf_append(struct buf *b, const void *p, size_t len)
{
	size_t n = buf_space(b);

	if (len < n)
		n = len;
	memcpy(buf_wptr(b), p, n);
	buf_produce(b, n);
	return n;
}
