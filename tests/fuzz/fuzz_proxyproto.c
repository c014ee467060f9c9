/*
 * fuzz_proxyproto.c: libFuzzer harness for src/proxyproto.c.
 *
 * Invariants checked on every input (a crash, a sanitizer report or a
 * leak is a failure too):
 *  - the same verdict however the input is split: each prefix either
 *    needs more or gets the verdict of the whole, with the same addresses
 *    (conn.c parses what has come so far, again after each read);
 *  - an accepted header is never longer than the input or PROXY_HDR_MAX;
 *  - a refusal comes with a one-line reason;
 *  - build-then-parse: the addresses of an accepted header, and addresses
 *    taken from the input's first bytes, built as v1 and as v2, parse back
 *    to the same addresses (or to "local" where the builder says so).
 *
 * Each prefix is parsed from a copy of exactly its size, so that ASan
 * catches a read past what has arrived.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_proxyproto: %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

static int
parse_copy(const uint8_t *data, size_t len, struct proxy_hdr *h,
    const char **why)
{
	uint8_t *copy;
	int rc;

	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(copy, data, len);
	rc = proxy_parse(copy, len, h, why);
	free(copy);
	return rc;
}

/* Addresses equal, port included; both AF_INET or both AF_INET6. */
static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		    memcmp(&a4->sin_addr, &b4->sin_addr, 4) == 0;
	if (a->ss_family == AF_INET6)
		return a6->sin6_port == b6->sin6_port &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
	return 0;
}

static int
same_hdr(const struct proxy_hdr *a, const struct proxy_hdr *b)
{
	if (a->version != b->version || a->local != b->local)
		return 0;
	return a->local || (same_addr(&a->src, &b->src) &&
	    same_addr(&a->dst, &b->dst));
}

/* Build src -> dst both ways and parse each back. */
static void
round_trip(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
    int local)
{
	char out[PROXY_HDR_MAX];
	struct proxy_hdr h;
	const char *why = NULL;
	size_t n;
	int v, rc;

	for (v = 1; v <= 2; v++) {
		memset(out, 0, sizeof(out));
		n = v == 1 ?
		    proxy_build_v1((const struct sockaddr *)src,
		    (const struct sockaddr *)dst, out, sizeof(out)) :
		    proxy_build_v2((const struct sockaddr *)src,
		    (const struct sockaddr *)dst, out, sizeof(out));
		CHECK(n > 0 && n <= PROXY_HDR_MAX, "v%d: built %zu bytes", v, n);
		memset(&h, 0, sizeof(h));
		rc = parse_copy((const uint8_t *)out, n, &h, &why);
		CHECK(rc == (int)n, "v%d: built %zu bytes, parsed %d (%s)", v, n,
		    rc, rc == -1 ? why : "");
		CHECK(h.version == v, "v%d: parsed as version %d", v, h.version);
		CHECK(h.local == local, "v%d: local %d, want %d", v, h.local, local);
		if (!local)
			CHECK(same_addr(&h.src, src) && same_addr(&h.dst, dst),
			    "v%d: addresses differ after the round trip", v);
	}
}

/* Addresses of the family the first byte picks, from the next 36 bytes. */
static void
round_trip_input(const uint8_t *data, size_t size)
{
	struct sockaddr_storage s, d;
	struct sockaddr_in *s4 = (void *)&s, *d4 = (void *)&d;
	struct sockaddr_in6 *s6 = (void *)&s, *d6 = (void *)&d;

	if (size < 37)
		return;
	memset(&s, 0, sizeof(s));
	memset(&d, 0, sizeof(d));
	if (data[0] & 1) {
		s6->sin6_family = d6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, data + 1, 16);
		memcpy(&d6->sin6_addr, data + 17, 16);
		memcpy(&s6->sin6_port, data + 33, 2);
		memcpy(&d6->sin6_port, data + 35, 2);
	} else {
		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, data + 1, 4);
		memcpy(&d4->sin_addr, data + 5, 4);
		memcpy(&s4->sin_port, data + 9, 2);
		memcpy(&d4->sin_port, data + 11, 2);
	}
	round_trip(&s, &d, 0);
	/* Mixed families: no truthful header but UNKNOWN / LOCAL. */
	if (data[0] & 2) {
		d.ss_family = s.ss_family == AF_INET ? AF_INET6 : AF_INET;
		round_trip(&s, &d, 1);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr whole, part;
	const char *why = NULL;
	size_t k, last;
	int rc, rk;

	memset(&whole, 0, sizeof(whole));
	rc = parse_copy(data, size, &whole, &why);
	CHECK(rc >= -1 && (rc <= 0 || ((size_t)rc <= size && rc <= PROXY_HDR_MAX)),
	    "verdict %d on %zu bytes", rc, size);
	if (rc == -1)
		CHECK(why != NULL && why[0] != '\0' && strchr(why, '\n') == NULL,
		    "a refusal without a one-line reason");

	/* Past PROXY_HDR_MAX + 1 bytes every prefix has all the parser reads. */
	last = size < PROXY_HDR_MAX + 2 ? size : PROXY_HDR_MAX + 2;
	for (k = 0; k < last; k++) {
		memset(&part, 0, sizeof(part));
		if ((rk = parse_copy(data, k, &part, &why)) == 0)
			continue;
		CHECK(rk == rc, "prefix of %zu bytes: %d, whole %zu bytes: %d",
		    k, rk, size, rc);
		if (rk > 0)
			CHECK(same_hdr(&part, &whole),
			    "prefix of %zu bytes: other addresses than the whole", k);
	}

	if (rc > 0)
		round_trip(&whole.src, &whole.dst, whole.local);
	round_trip_input(data, size);
	return 0;
}
