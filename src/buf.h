/*
 * buf.h: a bounded byte buffer with read and write cursors.  No I/O.
 *
 * Bytes are appended at the write cursor and taken from the read cursor.
 * The free space is made contiguous on demand by moving the pending bytes
 * to the front, so a buffer never grows past the size it was made with.
 */
#ifndef PREFORKD_BUF_H
#define PREFORKD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint32_t	size;	/* capacity of data[] */
	uint32_t	rpos;	/* first pending byte */
	uint32_t	wpos;	/* one past the last pending byte */
	char		data[];
};

/* Allocate a buffer of size bytes (1 to 2^31).  NULL with errno set. */
struct buf *buf_new(size_t size);
void	buf_free(struct buf *b);

/* Number of pending bytes. */
static inline size_t
buf_len(const struct buf *b)
{
	return b->wpos - b->rpos;
}

/* Free bytes, counting the room gained by compacting. */
static inline size_t
buf_space(const struct buf *b)
{
	return b->size - buf_len(b);
}

/* Start of the pending bytes; buf_len() of them are valid. */
static inline const char *
buf_rptr(const struct buf *b)
{
	return b->data + b->rpos;
}

/*
 * Make all free space contiguous and return where to write it; exactly
 * buf_space() bytes may be written there before buf_produce().
 */
char	*buf_wptr(struct buf *b);
/* Mark n bytes written at buf_wptr() as pending; n <= buf_space(). */
void	buf_produce(struct buf *b, size_t n);
/* Drop n pending bytes from the front; n <= buf_len(). */
void	buf_consume(struct buf *b, size_t n);
/* Copy up to len bytes from p; returns how many fitted. */
size_t	buf_append(struct buf *b, const void *p, size_t len);

#endif
