/*
 * test_prom.c: unit tests for src/prom.c, the Prometheus text format of a
 * stats view: a hand-built view rendered, its lines checked one by one,
 * and the whole checked against the format's rules (every sample under
 * its family's HELP and TYPE, families contiguous, no series twice,
 * label values escaped, histogram buckets cumulative).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "prom.h"
#include "tap.h"

/* stats.c's bounds are not linked here: the renderer takes whatever they are. */
const double stats_hist_le[STATS_HIST_N - 1] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
};

static struct stats_lview lv[2];
static struct stats_bview bv[2];
static struct stats_wview wv[2];

static void
view_fill(struct stats_view *v)
{
	memset(v, 0, sizeof(*v));
	memset(lv, 0, sizeof(lv));
	memset(bv, 0, sizeof(bv));
	memset(wv, 0, sizeof(wv));
	v->pid = 100;
	v->started = 1700000000.25;
	v->now = 1700000500;
	v->version = "1.2.3";
	v->gen = 3;
	v->reloads_ok = 2;
	v->reloads_failed = 1;
	v->last_reload = "gen 3 ok";
	v->respawns = 4;
	v->workers = 2;

	lv[0].name = "echo";
	lv[0].listen = "127.0.0.1:7000";
	lv[0].mode = MODE_ECHO;
	lv[0].c.accepted = 10;
	lv[0].c.active = 3;
	lv[0].c.closed[CONN_CLIENT_EOF] = 7;
	lv[0].c.closed[CONN_PROXY_TIMEOUT] = 1;
	lv[0].c.bytes_in = 1000;
	lv[0].c.bytes_out = UINT64_MAX;
	lv[0].c.proxy_rejected = 2;
	lv[0].c.refused[REFUSE_NOT_ALLOWED] = 11;
	lv[0].c.refused[REFUSE_LISTENER_FULL] = 4;
	lv[0].c.untracked = 9;
	lv[0].c.closed[CONN_REFUSED] = 3;
	lv[1].name = "we\"ird\\name\n";
	lv[1].listen = "127.0.0.1:7001";
	lv[1].mode = MODE_PROXY;
	lv[1].c.accepted = 5;
	v->l = lv;
	v->nl = 2;

	bv[0].li = 1;
	bv[0].addr = "127.0.0.1:9001";
	bv[0].weight = 3;
	bv[0].state = BACKEND_UP;
	bv[0].why = "";
	bv[0].check_last = 1;
	bv[0].check_at = 1700000400.5;
	bv[0].c.active = 1;
	bv[0].c.total = 6;
	bv[0].c.connect_failures = 2;
	bv[0].c.retries = 1;
	bv[0].c.connect_hist[0] = 1;
	bv[0].c.connect_hist[1] = 2;
	bv[0].c.connect_hist[STATS_HIST_N - 1] = 3;
	bv[0].c.connect_usec = 12345;
	bv[1].li = 1;
	bv[1].addr = "[::1]:9002";
	bv[1].weight = 1;
	bv[1].backup = 1;
	bv[1].state = BACKEND_MAINT;
	bv[1].why = "operator";
	bv[1].check_last = -1;
	bv[1].c.connect_usec = 2500000;
	v->b = bv;
	v->nb = 2;

	wv[0].pid = 101;
	wv[0].slot = 0;
	wv[0].gen = 3;
	wv[0].state = "ready";
	wv[0].c.accepts = 8;
	wv[0].c.conns = 2;
	wv[1].pid = 99;
	wv[1].slot = 1;
	wv[1].gen = 2;
	wv[1].state = "draining";
	wv[1].c.accepts = 7;
	wv[1].c.conns = 1;
	v->w = wv;
	v->nw = 2;
}

/* Whether text holds line as one whole line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static void
test_lines(void)
{
	static const char *const want[] = {
		"# HELP preforkd_connections_total Client connections accepted.",
		"# TYPE preforkd_connections_total counter",
		"preforkd_build_info{version=\"1.2.3\"} 1",
		"preforkd_start_time_seconds 1700000000.250",
		"preforkd_generation 3",
		"preforkd_workers 2",
		"preforkd_reloads_total{result=\"ok\"} 2",
		"preforkd_reloads_total{result=\"failed\"} 1",
		"preforkd_worker_respawns_total 4",
		"preforkd_connections_total{listener=\"echo\"} 10",
		"preforkd_connections_total{listener=\"we\\\"ird\\\\name\\n\"} 5",
		"preforkd_connections_active{listener=\"echo\"} 3",
		"preforkd_connection_closes_total{listener=\"echo\",reason=\"client_eof\"} 7",
		"preforkd_connection_closes_total{listener=\"echo\",reason=\"proxy_timeout\"} 1",
		"preforkd_connection_closes_total{listener=\"echo\",reason=\"no_backend\"} 0",
		"preforkd_bytes_received_total{listener=\"echo\"} 1000",
		"preforkd_bytes_sent_total{listener=\"echo\"} 18446744073709551615",
		"preforkd_proxy_headers_rejected_total{listener=\"echo\"} 2",
		"preforkd_connection_closes_total{listener=\"echo\",reason=\"refused\"} 3",
		"# HELP preforkd_connections_refused_total Client connections refused by the "
		    "address rules and limits, by reason.",
		"# TYPE preforkd_connections_refused_total counter",
		"preforkd_connections_refused_total{listener=\"echo\",reason=\"deny\"} 0",
		"preforkd_connections_refused_total{listener=\"echo\",reason=\"not_allowed\"} 11",
		"preforkd_connections_refused_total{listener=\"echo\",reason=\"untrusted_proxy\"} 0",
		"preforkd_connections_refused_total{listener=\"echo\",reason=\"client_limit\"} 0",
		"preforkd_connections_refused_total{listener=\"echo\",reason=\"client_rate\"} 0",
		"preforkd_connections_refused_total{listener=\"echo\",reason=\"listener_full\"} 4",
		"preforkd_connections_refused_total{listener=\"we\\\"ird\\\\name\\n\",reason=\"deny\"} 0",
		"preforkd_connections_refused_total{listener=\"we\\\"ird\\\\name\\n\",reason=\"listener_full\"} 0",
		"# HELP preforkd_clients_untracked_total Client connections admitted uncounted: "
		    "the per-client table had no room.",
		"# TYPE preforkd_clients_untracked_total counter",
		"preforkd_clients_untracked_total{listener=\"echo\"} 9",
		"preforkd_clients_untracked_total{listener=\"we\\\"ird\\\\name\\n\"} 0",
		"# TYPE preforkd_backend_connect_seconds histogram",
		"preforkd_backend_up{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 1",
		"preforkd_backend_up{listener=\"we\\\"ird\\\\name\\n\",backend=\"[::1]:9002\"} 0",
		"preforkd_backend_state{listener=\"we\\\"ird\\\\name\\n\",backend=\"[::1]:9002\",state=\"maint\"} 1",
		"preforkd_backend_state{listener=\"we\\\"ird\\\\name\\n\",backend=\"[::1]:9002\",state=\"up\"} 0",
		"preforkd_backend_state{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\",state=\"up\"} 1",
		"preforkd_backend_weight{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 3",
		"preforkd_backend_check_success{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 1",
		"preforkd_backend_check_timestamp_seconds{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 1700000400.500",
		"preforkd_backend_connections_active{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 1",
		"preforkd_backend_connections_total{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 6",
		"preforkd_backend_connect_failures_total{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 2",
		"preforkd_backend_retries_total{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 1",
		"preforkd_backend_connect_seconds_bucket{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\",le=\"0.0005\"} 1",
		"preforkd_backend_connect_seconds_bucket{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\",le=\"0.001\"} 3",
		"preforkd_backend_connect_seconds_bucket{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\",le=\"5\"} 3",
		"preforkd_backend_connect_seconds_bucket{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\",le=\"+Inf\"} 6",
		"preforkd_backend_connect_seconds_sum{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 0.012345",
		"preforkd_backend_connect_seconds_count{listener=\"we\\\"ird\\\\name\\n\",backend=\"127.0.0.1:9001\"} 6",
		"preforkd_backend_connect_seconds_sum{listener=\"we\\\"ird\\\\name\\n\",backend=\"[::1]:9002\"} 2.500000",
		"preforkd_worker_connections_active{slot=\"0\",generation=\"3\",pid=\"101\"} 2",
		"preforkd_worker_accepts_total{slot=\"1\",generation=\"2\",pid=\"99\"} 7",
	};
	struct stats_view v;
	struct strbuf sb;

	view_fill(&v);
	strbuf_init(&sb, 1 << 20);
	is_int(prom_render(&v, &sb), 0, "rendered");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!ok(has_line(sb.s, want[i]), "line: %s", want[i]))
			diag("in:\n%s", sb.s);
	ok(!has_line(sb.s, "preforkd_backend_check_success{listener=\"we\\\"ird\\\\name\\n\","
	    "backend=\"[::1]:9002\"} 0"), "no check result for a backend never checked");
	ok(strstr(sb.s, "reason=\"(null)\"") == NULL && strstr(sb.s, "reason=\"?\"") == NULL,
	    "every reason has a name");
	{
		/* Every listener x every refusal, once each: 2 x REFUSE_N series. */
		size_t n = 0;

		for (const char *p = sb.s; (p = strstr(p, "\npreforkd_connections_refused_total{"))
		    != NULL; p++)
			n++;
		is_uint(n, 2 * REFUSE_N, "refusals: a series per listener and reason");
	}
	strbuf_fini(&sb);
}

/* Whether a sample named line (n bytes) belongs to family fam. */
static int
sample_of(const char *line, size_t n, const char *fam, int hist)
{
	static const char *const suffix[] = { "_bucket", "_sum", "_count" };
	size_t f = strlen(fam);

	if (n < f || strncmp(line, fam, f) != 0)
		return 0;
	if (n == f)
		return 1;
	for (size_t i = 0; hist && i < 3; i++)
		if (n - f == strlen(suffix[i]) && strncmp(line + f, suffix[i], n - f) == 0)
			return 1;
	return 0;
}

/*
 * The text against the format: comments are HELP or TYPE, each family has
 * one of each, HELP first, then its samples, contiguous; a sample's name
 * is its family's (histogram: _bucket, _sum, _count); values are numbers;
 * no series appears twice.  Returns a message, or NULL when it holds.
 */
static const char *
check_format(char *text)
{
	static char msg[512];
	char *fam[128], *series[2048];
	int nfam = 0, nseries = 0, hist = 0;
	char *line, *save = NULL, *cur = NULL;

	if (text[0] == '\0' || text[strlen(text) - 1] != '\n')
		return "does not end with a newline";
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char name[256], type[32], *sp, *end;
		size_t n;

		if (strncmp(line, "# HELP ", 7) == 0) {
			if (sscanf(line + 7, "%255s", name) != 1)
				return "HELP without a name";
			for (int i = 0; i < nfam; i++)
				if (strcmp(fam[i], name) == 0) {
					snprintf(msg, sizeof(msg), "family %s twice", name);
					return msg;
				}
			fam[nfam++] = cur = line + 7;
			cur[strlen(name)] = '\0';
			hist = -1;	/* TYPE must come next */
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			if (sscanf(line + 7, "%255s %31s", name, type) != 2 || cur == NULL ||
			    strcmp(name, cur) != 0 || hist != -1) {
				snprintf(msg, sizeof(msg), "TYPE out of place: %s", line);
				return msg;
			}
			if (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0 &&
			    strcmp(type, "histogram") != 0)
				return "unknown type";
			hist = strcmp(type, "histogram") == 0;
			if (strcmp(type, "counter") == 0 &&
			    (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0)) {
				snprintf(msg, sizeof(msg), "counter %s without _total", name);
				return msg;
			}
			continue;
		}
		if (line[0] == '#')
			return "a comment other than HELP or TYPE";
		if (cur == NULL || hist == -1) {
			snprintf(msg, sizeof(msg), "sample before its TYPE: %s", line);
			return msg;
		}
		n = strcspn(line, "{ ");
		if (!sample_of(line, n, cur, hist)) {
			snprintf(msg, sizeof(msg), "sample of another family under %s: %s",
			    cur, line);
			return msg;
		}
		if ((sp = strrchr(line, ' ')) == NULL)
			return "a sample without a value";
		strtod(sp + 1, &end);
		if (end == sp + 1 || *end != '\0') {
			snprintf(msg, sizeof(msg), "not a number: %s", line);
			return msg;
		}
		*sp = '\0';
		for (int i = 0; i < nseries; i++)
			if (strcmp(series[i], line) == 0) {
				snprintf(msg, sizeof(msg), "series twice: %s", line);
				return msg;
			}
		if (nseries < 2048)
			series[nseries++] = line;
	}
	return NULL;
}

static void
test_format(void)
{
	struct stats_view v;
	struct strbuf sb;
	const char *why;

	view_fill(&v);
	strbuf_init(&sb, 1 << 20);
	prom_render(&v, &sb);
	why = check_format(sb.s);
	if (!ok(why == NULL, "the whole text keeps the format's rules"))
		diag("%s", why);
	strbuf_fini(&sb);

	/* No listener, backend or worker: the master's families alone. */
	v.nl = v.nb = v.nw = 0;
	strbuf_init(&sb, 1 << 20);
	is_int(prom_render(&v, &sb), 0, "an empty view renders");
	ok(strstr(sb.s, "preforkd_generation 3\n") != NULL, "with the master's families");
	ok(strstr(sb.s, "listener=") == NULL && strstr(sb.s, "preforkd_backend_") == NULL &&
	    strstr(sb.s, "preforkd_worker_connections") == NULL,
	    "and no family without series");
	why = check_format(sb.s);
	if (!ok(why == NULL, "which keeps the rules too"))
		diag("%s", why);
	strbuf_fini(&sb);
}

static void
test_limit(void)
{
	struct stats_view v;
	struct strbuf sb;

	view_fill(&v);
	strbuf_init(&sb, 512);
	is_int(prom_render(&v, &sb), -1, "past the buffer's limit: -1");
	strbuf_fini(&sb);
}

int
main(void)
{
	test_lines();
	test_format();
	test_limit();
	return done_testing();
}
