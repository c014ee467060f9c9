/*
 * test_httpreq.c: unit tests for src/httpreq.c, the HTTP request head
 * parser of the metrics endpoint: a table of heads and their verdicts,
 * each also fed in every split, and the bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"
#include "tap.h"

#define MAX	8192

static const struct {
	const char	*in;
	int		 rc;		/* HTTPREQ_* */
	int		 status;	/* HTTPREQ_BAD */
	const char	*method;	/* HTTPREQ_DONE */
	const char	*target;
	int		 minor;
} cases[] = {
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", HTTPREQ_DONE, 0, "GET", "/metrics", 1 },
	{ "GET /metrics HTTP/1.0\r\n\r\n", HTTPREQ_DONE, 0, "GET", "/metrics", 0 },
	{ "GET /metrics HTTP/1.0\n\n", HTTPREQ_DONE, 0, "GET", "/metrics", 0 },
	{ "\r\n\r\nGET / HTTP/1.0\r\n\r\n", HTTPREQ_DONE, 0, "GET", "/", 0 },
	{ "HEAD /metrics?x=1 HTTP/1.1\r\nhOsT:\r\nAccept: */*\r\n"
	  "User-Agent: Prometheus/2.42.0\r\nX-Empty:\r\n\r\n", HTTPREQ_DONE, 0,
	  "HEAD", "/metrics?x=1", 1 },
	{ "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	  HTTPREQ_DONE, 0, "POST", "/metrics", 1 },
	{ "GET /m HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\t ok\r\n\r\n", HTTPREQ_DONE, 0,
	  "GET", "/m", 1 },
	{ "", HTTPREQ_MORE, 0, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\n", HTTPREQ_MORE, 0, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r", HTTPREQ_MORE, 0, NULL, NULL, 0 },
	{ "\x16\x03\x01\x02\x05\x01", HTTPREQ_MORE, 0, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/2.0\r\n\r\n", HTTPREQ_BAD, 505, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.2\r\n\r\n", HTTPREQ_BAD, 505, NULL, NULL, 0 },
	{ "GET /metrics HTTP/0.9\r\n\r\n", HTTPREQ_BAD, 505, NULL, NULL, 0 },
	{ "GET /metrics\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.10\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics http/1.1\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET  /metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /met rics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ " GET /metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "G(T /metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\rHost: x\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost: a\x01z\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost: a\x7fz\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost: a\rz\r\n\r\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
	{ "\x16\x03\x01\x02\x05\x01\n", HTTPREQ_BAD, 400, NULL, NULL, 0 },
};

static void
test_table(void)
{
	struct httpreq r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in;
		size_t len = strlen(in);
		int rc = httpreq_parse(in, len, MAX, &r), split_ok = 1;

		if (!is_int(rc, cases[i].rc, "case %zu: verdict", i))
			diag("input: %s", in);
		if (rc == HTTPREQ_BAD)
			is_int(r.status, cases[i].status, "case %zu: status %d (%s)", i,
			    cases[i].status, r.why);
		if (rc == HTTPREQ_DONE) {
			ok(r.method_len == strlen(cases[i].method) &&
			    memcmp(r.method, cases[i].method, r.method_len) == 0 &&
			    r.target_len == strlen(cases[i].target) &&
			    memcmp(r.target, cases[i].target, r.target_len) == 0 &&
			    r.minor == cases[i].minor,
			    "case %zu: %s %s HTTP/1.%d", i, cases[i].method,
			    cases[i].target, cases[i].minor);
			ok(r.len <= len && r.len >= 4 && in[r.len - 1] == '\n',
			    "case %zu: the head ends at its blank line", i);
		}
		/* Every prefix, from a copy of its size: MORE or the whole's verdict. */
		for (size_t n = 0; n < len; n++) {
			struct httpreq p;
			char *copy = malloc(n + 1);
			int prc;

			memcpy(copy, in, n);
			prc = httpreq_parse(copy, n, MAX, &p);
			if (prc != HTTPREQ_MORE && (prc != rc ||
			    (prc == HTTPREQ_BAD && p.status != r.status) ||
			    (prc == HTTPREQ_DONE && p.len != r.len)))
				split_ok = 0;
			free(copy);
		}
		ok(split_ok, "case %zu: every prefix needs more or agrees", i);
	}
}

static void
test_bounds(void)
{
	const char *hd = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	char *buf = malloc(MAX * 2);
	struct httpreq r;
	size_t n;

	/* A request line that does not end within MAX: 414. */
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', MAX * 2 - 5);
	is_int(httpreq_parse(buf, MAX - 1, MAX, &r), HTTPREQ_MORE, "a long line, below the bound: more");
	is_int(httpreq_parse(buf, MAX, MAX, &r), HTTPREQ_BAD, "at the bound: refused");
	is_int(r.status, 414, "414 for the request line");

	/* Header fields that do not end within MAX: 431. */
	n = strlen(hd);
	memcpy(buf, hd, n);
	memcpy(buf + n, "X: ", 3);
	memset(buf + n + 3, 'b', MAX * 2 - n - 3);
	is_int(httpreq_parse(buf, MAX * 2, MAX, &r), HTTPREQ_BAD, "long header fields refused");
	is_int(r.status, 431, "431 for the header fields");

	/* A head that ends exactly at the bound fits; one byte more does not. */
	memset(buf + n + 3, 'b', MAX - n - 3 - 4);
	memcpy(buf + MAX - 4, "\r\n\r\n", 4);
	is_int(httpreq_parse(buf, MAX, MAX, &r), HTTPREQ_DONE, "a head of exactly the bound");
	is_uint(r.len, MAX, "its length");
	is_int(httpreq_parse(buf, MAX, MAX - 1, &r), HTTPREQ_BAD, "one byte over a bound");
	is_int(r.status, 431, "431");

	/* Too many fields. */
	n = strlen(hd);
	memcpy(buf, hd, n);
	for (int i = 0; i < HTTPREQ_MAX_FIELDS; i++) {
		memcpy(buf + n, "A: b\r\n", 6);
		n += 6;
	}
	memcpy(buf + n, "\r\n", 2);
	is_int(httpreq_parse(buf, n + 2, MAX, &r), HTTPREQ_BAD,
	    "Host and %d more fields: too many", HTTPREQ_MAX_FIELDS);
	is_int(r.status, 431, "431");
	n = strlen(hd) + (HTTPREQ_MAX_FIELDS - 1) * 6;
	memcpy(buf + n, "\r\n", 2);
	is_int(httpreq_parse(buf, n + 2, MAX, &r), HTTPREQ_DONE, "%d fields: fine",
	    HTTPREQ_MAX_FIELDS);
	is_uint(r.nfields, HTTPREQ_MAX_FIELDS, "counted");
	free(buf);
}

static void
test_helpers(void)
{
	struct httpreq r;
	const char *a = "GET /metrics?name[]=x HTTP/1.0\r\n\r\n";
	const char *b = "GETS /metricsx HTTP/1.0\r\n\r\n";

	httpreq_parse(a, strlen(a), MAX, &r);
	ok(httpreq_method_is(&r, "GET") && !httpreq_method_is(&r, "GE") &&
	    !httpreq_method_is(&r, "get"), "method: exact and case-sensitive");
	ok(httpreq_path_is(&r, "/metrics") && !httpreq_path_is(&r, "/metric"),
	    "path: the query does not count");
	httpreq_parse(b, strlen(b), MAX, &r);
	ok(!httpreq_method_is(&r, "GET") && !httpreq_path_is(&r, "/metrics"),
	    "no prefix match on method or path");
}

int
main(void)
{
	test_table();
	test_bounds();
	test_helpers();
	return done_testing();
}
