/*
 * fuzz_http.c: libFuzzer harness for src/httpreq.c, the request head
 * parser of the metrics endpoint, which reads bytes from anyone who can
 * reach its port.
 *
 * Invariants checked on every input, under two bounds (the endpoint's
 * 8 KiB and a small one, so that the bound's paths are reached by short
 * inputs too); a crash, a sanitizer report or a leak is a failure too:
 *  - a verdict is MORE, DONE or BAD; MORE only below the bound;
 *  - DONE: the head is no longer than the input or the bound and ends in
 *    LF; method and target lie inside it, are not empty and hold no space
 *    or control byte; the version is 1.0 or 1.1;
 *  - BAD: a status of 400, 414, 431 or 505 and a one-line reason;
 *  - the same verdict however the input is split: each prefix either
 *    needs more or gets the verdict of the whole (metrics.c parses what
 *    has come so far, again after each read).
 *
 * Each prefix is parsed from a copy of exactly its size, so that ASan
 * catches a read past what has arrived.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_http: %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

#define BOUND_BIG	8192
#define BOUND_SMALL	64

static int
parse_copy(const uint8_t *data, size_t len, size_t max, struct httpreq *r)
{
	char *copy;
	int rc;

	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(copy, data, len);
	rc = httpreq_parse(copy, len, max, r);
	free(copy);
	return rc;
}

/* p (n bytes) lies inside [base, base + len), is not empty, and is all visible ASCII. */
static int
token_ok(const char *p, size_t n, const char *base, size_t len)
{
	if (n == 0 || p < base || p + n > base + len)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return 0;
	return 1;
}

static void
check_whole(const uint8_t *data, size_t size, size_t max)
{
	struct httpreq whole, part;
	size_t step, last;
	int rc, rk;

	rc = httpreq_parse((const char *)data, size, max, &whole);
	CHECK(rc == HTTPREQ_MORE || rc == HTTPREQ_DONE || rc == HTTPREQ_BAD,
	    "verdict %d", rc);
	CHECK(rc != HTTPREQ_MORE || size < max, "MORE on %zu bytes, bound %zu", size, max);
	if (rc == HTTPREQ_DONE) {
		CHECK(whole.len <= size && whole.len <= max && whole.len > 0 &&
		    data[whole.len - 1] == '\n', "head of %zu bytes on %zu", whole.len, size);
		CHECK(token_ok(whole.method, whole.method_len, (const char *)data, whole.len),
		    "bad method");
		CHECK(token_ok(whole.target, whole.target_len, (const char *)data, whole.len),
		    "bad target");
		CHECK(whole.minor == 0 || whole.minor == 1, "HTTP/1.%d", whole.minor);
		CHECK(whole.nfields <= HTTPREQ_MAX_FIELDS, "%u fields", whole.nfields);
	}
	if (rc == HTTPREQ_BAD) {
		CHECK(whole.status == 400 || whole.status == 414 || whole.status == 431 ||
		    whole.status == 505, "status %d", whole.status);
		CHECK(whole.why != NULL && whole.why[0] != '\0' &&
		    strchr(whole.why, '\n') == NULL, "a refusal without a one-line reason");
	}

	/*
	 * Past the bound every prefix has all the parser reads.  Every
	 * prefix of a short input; a spread of a long one's, and its end.
	 */
	last = size < max + 1 ? size : max + 1;
	step = last <= 512 ? 1 : last / 256;
	for (size_t k = 0; k < last; k += (last - k <= 16 ? 1 : step)) {
		if ((rk = parse_copy(data, k, max, &part)) == HTTPREQ_MORE)
			continue;
		CHECK(rk == rc, "prefix of %zu bytes: %d, whole %zu bytes: %d", k, rk,
		    size, rc);
		if (rk == HTTPREQ_BAD)
			CHECK(part.status == whole.status, "prefix of %zu bytes: %d, whole: %d",
			    k, part.status, whole.status);
		if (rk == HTTPREQ_DONE)
			CHECK(part.len == whole.len, "prefix of %zu bytes: head %zu, whole: %zu",
			    k, part.len, whole.len);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;

	/* The whole from a copy of its size, too. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	memcpy(copy, data, size);
	check_whole((const uint8_t *)copy, size, BOUND_BIG);
	check_whole((const uint8_t *)copy, size, BOUND_SMALL);
	free(copy);
	return 0;
}
