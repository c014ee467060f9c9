/*
 * test_report.c: unit tests for src/report.c, the renderers of a
 * struct stats_view, on a view built by hand: the figures where they
 * belong, the tables aligned, the JSON valid (a small strict parser below)
 * with its strings escaped, the refusals by reason, the top clients'
 * table from rows built by hand, and a strbuf limit reported.
 */
#include <ctype.h>
#include <string.h>

#include "report.h"
#include "tap.h"

/* stats.c's bounds; the test links report.c alone. */
const double stats_hist_le[STATS_HIST_N - 1] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
};

static struct stats_lview lv[2];
static struct stats_bview bv[3];
static struct stats_wview wv[2];
static struct stats_view view;

static void
build_view(void)
{
	memset(lv, 0, sizeof(lv));
	memset(bv, 0, sizeof(bv));
	memset(wv, 0, sizeof(wv));
	lv[0] = (struct stats_lview){ .name = "echo", .listen = "127.0.0.1:7000", .mode = MODE_ECHO };
	lv[0].c.accepted = 1234567;
	lv[0].c.active = 3;
	lv[0].c.closed[0] = 1000000;		/* client_eof */
	lv[0].c.closed[2] = 234564;		/* idle_timeout */
	lv[0].c.bytes_in = 98765432101ULL;
	lv[0].c.bytes_out = 98765432100ULL;
	lv[0].c.refused[REFUSE_CLIENT_RATE] = 42;
	lv[0].c.refused[REFUSE_DENY] = 1000;
	lv[0].c.untracked = 5;
	lv[1] = (struct stats_lview){ .name = "we\"b\\\x01", .listen = "[::1]:8080",
	    .mode = MODE_PROXY };
	lv[1].c.accepted = 7;
	lv[1].c.closed[10] = 5;			/* no_backend */
	lv[1].c.closed[CONN_REFUSED] = 2;	/* a PROXY header's client refused */
	lv[1].c.refused[REFUSE_CLIENT_LIMIT] = 2;
	lv[1].c.proxy_rejected = 2;
	bv[0] = (struct stats_bview){ .li = 1, .addr = "127.0.0.1:9000", .weight = 3,
	    .state = BACKEND_UP, .why = "", .check_last = 1, .check_at = 990 };
	bv[0].c.total = 40;
	bv[0].c.active = 2;
	bv[0].c.connect_hist[0] = 30;
	bv[0].c.connect_hist[3] = 10;
	bv[0].c.connect_usec = 40000;		/* 1 ms mean */
	bv[1] = (struct stats_bview){ .li = 1, .addr = "127.0.0.1:9001", .weight = 1,
	    .state = BACKEND_MAINT, .why = "operator", .check_last = -1 };
	bv[2] = (struct stats_bview){ .li = 1, .addr = "backup.example:9002", .weight = 1,
	    .backup = 1, .state = BACKEND_DOWN, .why = "check failed", .check_last = 0,
	    .check_at = 1000 - 75 };
	bv[2].c.connect_failures = 5;
	bv[2].c.retries = 4;
	wv[0] = (struct stats_wview){ .pid = 4242, .slot = 0, .gen = 2, .state = "ready" };
	wv[0].c.accepts = 1234560;
	wv[0].c.conns = 3;
	wv[1] = (struct stats_wview){ .pid = 4243, .slot = 1, .gen = 1, .state = "draining" };
	wv[1].c.accepts = 14;
	view = (struct stats_view){
		.pid = 4200, .started = 1000 - 3725, .now = 1000, .version = "0.1.0",
		.gen = 2, .reloads_ok = 1, .reloads_failed = 2,
		.last_reload = "failed: t.conf:3: workers: bad", .respawns = 5, .workers = 2,
		.l = lv, .nl = 2, .b = bv, .nb = 3, .w = wv, .nw = 2,
	};
}

/* --- a strict JSON checker (RFC 8259), enough to prove the output valid --- */

static const char *json_value(const char *p, int depth);

static const char *
json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *
json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p != '\\')
			continue;
		p++;
		if (*p == 'u') {
			for (int i = 1; i <= 4; i++)
				if (!isxdigit((unsigned char)p[i]))
					return NULL;
			p += 4;
		} else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0')
			return NULL;
	}
	return p + 1;
}

static const char *
json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (isdigit((unsigned char)*p))
			p++;
	else
		return NULL;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return NULL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return NULL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return p;
}

static const char *
json_container(const char *p, int depth, char close, int object)
{
	p = json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			if ((p = json_string(p)) == NULL)
				return NULL;
			p = json_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		if ((p = json_value(p, depth + 1)) == NULL)
			return NULL;
		p = json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *
json_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = json_ws(p);
	switch (*p) {
	case '{':
		return json_container(p, depth, '}', 1);
	case '[':
		return json_container(p, depth, ']', 0);
	case '"':
		return json_string(p);
	case 't':
		return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
	case 'f':
		return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
	case 'n':
		return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
	default:
		return json_number(p);
	}
}

static int
json_valid(const char *s)
{
	const char *p = json_value(s, 0);

	return p != NULL && *json_ws(p) == '\0';
}

/* --- helpers --- */

/* The line of text that holds needle; "" when none. */
static const char *
line_with(const char *text, const char *needle, char *buf, size_t len)
{
	const char *p = strstr(text, needle), *b, *e;

	buf[0] = '\0';
	if (p == NULL)
		return buf;
	for (b = p; b > text && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	snprintf(buf, len, "%.*s", (int)((e ? e : p + strlen(p)) - b), b);
	return buf;
}

/*
 * The first table of text (up to a blank line): its lines end in a newline,
 * not a blank, and hold printable ASCII only.
 */
static int
tidy(const char *text)
{
	const char *p = text, *nl;
	size_t n = 0;

	while (*p != '\0' && *p != '\n') {
		if ((nl = strchr(p, '\n')) == NULL || nl[-1] == ' ')
			return 0;
		for (; p < nl; p++)
			if (*p < 0x20 || *p > 0x7e)
				return 0;
		p = nl + 1;
		n++;
	}
	return n > 0;
}

/* The column (0-based) where word starts in line; -1 if absent. */
static int
column_of(const char *line, const char *word)
{
	const char *p = strstr(line, word);

	return p != NULL ? (int)(p - line) : -1;
}

/* Where a right-aligned column ends in the header, and where a value ends in a row. */
static int
end_of(const char *line, const char *word)
{
	int c = column_of(line, word);

	return c < 0 ? -1 : c + (int)strlen(word);
}

/* --- the tests --- */

static void
test_info(void)
{
	struct strbuf sb;

	strbuf_init(&sb, 1 << 16);
	is_int(report_info(&sb, &view), 0, "info: rendered");
	ok(strstr(sb.s, "pid: 4200\n") != NULL, "info: pid");
	ok(strstr(sb.s, "version: 0.1.0\n") != NULL, "info: version");
	ok(strstr(sb.s, "uptime: 1h2m\n") != NULL, "info: uptime from now - started");
	ok(strstr(sb.s, "generation: 2\n") != NULL, "info: generation");
	ok(strstr(sb.s, "reloads ok: 1\n") != NULL && strstr(sb.s, "reloads failed: 2\n") != NULL,
	    "info: reloads");
	ok(strstr(sb.s, "last reload: failed: t.conf:3: workers: bad\n") != NULL,
	    "info: last reload");
	ok(strstr(sb.s, "respawns: 5\n") != NULL, "info: respawns");
	strbuf_fini(&sb);
	view.last_reload = "";
	report_info(&sb, &view);
	ok(strstr(sb.s, "last reload: none\n") != NULL, "info: no reload yet says none");
	strbuf_fini(&sb);
	build_view();
}

static void
test_stats(void)
{
	struct strbuf sb;
	char head[256], row[256], be[256];
	const char *second;

	strbuf_init(&sb, 1 << 16);
	is_int(report_stats(&sb, &view), 0, "stats: rendered");
	ok(strncmp(sb.s, "LISTENER", 8) == 0, "stats: starts with the listeners' header");
	ok(tidy(sb.s), "stats: listener lines tidy (a control character in a name shows as ?)");
	line_with(sb.s, "ACCEPTED", head, sizeof(head));
	line_with(sb.s, "127.0.0.1:7000", row, sizeof(row));
	ok(end_of(head, "ACCEPTED") == end_of(row, "1234567"),
	    "stats: accepted right-aligned under its header\n%s\n%s", head, row);
	ok(end_of(head, "BYTES_IN") == end_of(row, "98765432101"), "stats: bytes in");
	ok(end_of(head, "CLOSED") == end_of(row, "1234564"), "stats: closed is the sum of reasons");
	line_with(sb.s, "[::1]:8080", row, sizeof(row));
	ok(strncmp(row, "we\"b\\?  ", 8) == 0, "stats: a control character shows as ?: %s", row);
	second = strstr(sb.s, "\n\n");
	ok(second != NULL && strncmp(second + 2, "LISTENER", 8) == 0 &&
	    tidy(second + 2), "stats: the backends table after a blank line, aligned");
	line_with(sb.s, "CONNECT_FAILURES", head, sizeof(head));
	line_with(sb.s, "backup.example:9002 (backup)", be, sizeof(be));
	ok(end_of(head, "CONNECT_FAILURES") == end_of(be, "5"), "stats: connect failures");
	ok(strstr(be, " down ") != NULL, "stats: backend state");
	line_with(sb.s, "127.0.0.1:9000", be, sizeof(be));
	ok(strstr(be, " 1.000") != NULL, "stats: mean connect time 1.000 ms (%s)", be);
	line_with(sb.s, "127.0.0.1:9001", be, sizeof(be));
	ok(strstr(be, " maint ") != NULL && be[strlen(be) - 1] == '-',
	    "stats: maint, no connect time yet");
	ok(strstr(sb.s, "idle_timeout") != NULL && strstr(sb.s, "no_backend") != NULL &&
	    strstr(sb.s, "client_reset") == NULL, "stats: the reasons counted, only those");
	line_with(sb.s, "idle_timeout", row, sizeof(row));
	ok(strncmp(row, "echo", 4) == 0 && strstr(row, " 234564") != NULL,
	    "stats: a reason's line names its listener and count");
	line_with(sb.s, " refused ", row, sizeof(row));
	ok(strncmp(row, "we\"b\\?", 5) == 0 && row[strlen(row) - 1] == '2',
	    "stats: the close reason refused among the others: %s", row);
	strbuf_fini(&sb);
}

/* The refusals: a REFUSED and an UNTRACKED column, and the last table by reason. */
static void
test_refusals(void)
{
	struct strbuf sb;
	char head[256], row[256], want[64];
	const char *last, *p;
	int order = 1, n = 0;

	strbuf_init(&sb, 1 << 16);
	is_int(report_stats(&sb, &view), 0, "refusals: rendered");
	line_with(sb.s, "ACCEPTED", head, sizeof(head));
	line_with(sb.s, "127.0.0.1:7000", row, sizeof(row));
	ok(end_of(head, "REFUSED") == end_of(row, "1042"),
	    "refusals: REFUSED is the sum over the reasons\n%s\n%s", head, row);
	ok(end_of(head, "UNTRACKED") == (int)strlen(row) && row[strlen(row) - 1] == '5',
	    "refusals: UNTRACKED, the last column");
	line_with(sb.s, "[::1]:8080", row, sizeof(row));
	ok(end_of(head, "REFUSED") <= (int)strlen(row) &&
	    row[end_of(head, "REFUSED") - 1] == '2' && row[end_of(head, "REFUSED")] == ' ' &&
	    row[strlen(row) - 1] == '0' && row[strlen(row) - 2] == ' ',
	    "refusals: the other listener's refused and untracked: %s", row);

	/* The last table: every listener x every reason, zeros included, in order. */
	for (last = sb.s; (p = strstr(last, "\n\n")) != NULL; last = p + 2)
		;
	ok(strncmp(last, "LISTENER  REASON", 16) == 0 && strstr(last, "REFUSED\n") != NULL &&
	    tidy(last), "refusals: the last table, its header, aligned");
	p = strchr(last, '\n') + 1;
	for (size_t i = 0; i < view.nl; i++)
		for (int r = 0; r < REFUSE_N; r++, n++) {
			const char *nl = strchr(p, '\n');
			char name[32];

			snprintf(name, sizeof(name), "%s", i == 0 ? "echo" : "we\"b\\?");
			snprintf(want, sizeof(want), "%llu",
			    (unsigned long long)view.l[i].c.refused[r]);
			if (nl == NULL || strncmp(p, name, strlen(name)) != 0 ||
			    strstr(p, refuse_name(r)) == NULL || strstr(p, refuse_name(r)) > nl ||
			    (size_t)(nl - p) < strlen(want) ||
			    strncmp(nl - strlen(want), want, strlen(want)) != 0 ||
			    nl[-(int)strlen(want) - 1] != ' ') {
				diag("row %d: %.*s", n, nl != NULL ? (int)(nl - p) : 40, p);
				order = 0;
				break;
			}
			p = nl + 1;
		}
	ok(order && *p == '\0', "refusals: %d rows, listener by listener, reason by reason, "
	    "zeros included", n);
	line_with(last, "client_rate", row, sizeof(row));
	ok(strncmp(row, "echo", 4) == 0 && end_of(last, "REFUSED") == end_of(row, "42"),
	    "refusals: a count right-aligned under REFUSED: %s", row);
	strbuf_fini(&sb);

	/* With no closes and no backends the refusals follow the listeners. */
	struct stats_lview one = lv[0];
	struct stats_view v1 = view;

	memset(one.c.closed, 0, sizeof(one.c.closed));
	v1.l = &one;
	v1.nl = 1;
	v1.nb = 0;
	strbuf_init(&sb, 1 << 16);
	report_stats(&sb, &v1);
	p = strstr(sb.s, "\n\n");
	ok(p != NULL && strncmp(p + 2, "LISTENER  REASON", 16) == 0 &&
	    strstr(p + 2, "\n\n") == NULL && strstr(p + 2, "\necho      deny  ") != NULL,
	    "refusals of a listener that closed nothing: the second and last table");
	strbuf_fini(&sb);
}

static void
test_stats_empty(void)
{
	struct stats_view v = { .version = "0.1.0" };
	struct strbuf sb;

	strbuf_init(&sb, 1 << 16);
	is_int(report_stats(&sb, &v), 0, "stats of an empty view");
	ok(strchr(sb.s, '\n') == sb.s + strlen(sb.s) - 1, "  the header alone");
	strbuf_fini(&sb);
	is_int(report_stats_json(&sb, &v), 0, "json of an empty view");
	ok(json_valid(sb.s), "  valid: %s", sb.s);
	strbuf_fini(&sb);
}

static void
test_json(void)
{
	struct strbuf sb;

	strbuf_init(&sb, 1 << 16);
	is_int(report_stats_json(&sb, &view), 0, "json: rendered");
	ok(json_valid(sb.s), "json: valid");
	ok(sb.s[sb.len - 1] == '\n' && strchr(sb.s, '\n') == sb.s + sb.len - 1,
	    "json: one line ending in a newline");
	ok(strstr(sb.s, "\"name\":\"we\\\"b\\\\\\u0001\"") != NULL,
	    "json: quote, backslash and control character escaped");
	ok(strstr(sb.s, "\"accepted\":1234567") != NULL, "json: accepted");
	ok(strstr(sb.s, "\"idle_timeout\":234564") != NULL, "json: a close reason");
	ok(strstr(sb.s, "\"refused_total\":1042,\"refused\":{\"deny\":1000,"
	    "\"not_allowed\":0,\"untrusted_proxy\":0,\"client_limit\":0,\"client_rate\":42,"
	    "\"listener_full\":0},\"untracked\":5}") != NULL,
	    "json: refusals by reason, every reason, and untracked");
	ok(strstr(sb.s, "\"no_backend\":5,") != NULL && strstr(sb.s, "\"refused\":2}") != NULL,
	    "json: the close reason refused");
	ok(strstr(sb.s, "\"bytes_in\":98765432101") != NULL, "json: 64-bit counters whole");
	ok(strstr(sb.s, "\"state\":\"maint\",\"why\":\"operator\"") != NULL, "json: state, why");
	ok(strstr(sb.s, "\"check\":{\"last\":null,\"at\":null}") != NULL, "json: never checked");
	ok(strstr(sb.s, "\"check\":{\"last\":\"failed\",\"at\":925.000000}") != NULL,
	    "json: last check failed, when");
	ok(strstr(sb.s, "{\"le\":0.0005,\"count\":30}") != NULL &&
	    strstr(sb.s, "{\"le\":0.005,\"count\":40}") != NULL &&
	    strstr(sb.s, "{\"le\":\"+Inf\",\"count\":40}],\"sum\":0.040000,\"count\":40}") != NULL,
	    "json: histogram cumulative, sum and count");
	ok(strstr(sb.s, "\"workers\":[{\"slot\":0,\"pid\":4242,\"generation\":2,"
	    "\"state\":\"ready\",\"connections\":3,\"accepts\":1234560}") != NULL, "json: a worker");
	strbuf_fini(&sb);
	view.now = 1.0 / 0.0;
	report_stats_json(&sb, &view);
	ok(json_valid(sb.s) && strstr(sb.s, "\"now\":null") != NULL, "json: infinity is null");
	strbuf_fini(&sb);
	build_view();
}

static void
test_json_checker(void)
{
	ok(!json_valid("{\"a\":1,}"), "checker: refuses a trailing comma");
	ok(!json_valid("{\"a\":\"\x01\"}"), "checker: refuses a raw control character");
	ok(!json_valid("{\"a\":01}"), "checker: refuses a leading zero");
	ok(!json_valid("{\"a\":inf}"), "checker: refuses inf");
	ok(json_valid("{\"a\":[1,-2.5e-3,true,null,\"\\u00e9\"]}"), "checker: takes valid JSON");
}

static void
test_backends(void)
{
	struct strbuf sb;
	char line[256], head[256];

	strbuf_init(&sb, 1 << 16);
	is_int(report_backends(&sb, &view), 0, "backends: rendered");
	ok(tidy(sb.s), "backends: aligned");
	line_with(sb.s, "LAST_CHECK", head, sizeof(head));
	line_with(sb.s, "backup.example:9002", line, sizeof(line));
	ok(strstr(line, " down ") && strstr(line, " check failed ") &&
	    strstr(line, " yes ") && strstr(line, "failed 1m15s ago"),
	    "backends: down, why, backup, last check: %s", line);
	ok(column_of(head, "LAST_CHECK") == column_of(line, "failed 1m15s ago"),
	    "backends: last check under its header");
	line_with(sb.s, "127.0.0.1:9001", line, sizeof(line));
	ok(strstr(line, " maint ") && strstr(line, " operator ") &&
	    line[strlen(line) - 1] == '-', "backends: maint by the operator, never checked");
	line_with(sb.s, "127.0.0.1:9000", line, sizeof(line));
	ok(strstr(line, " up ") && strstr(line, "passed 10s ago"), "backends: up, passed");
	ok(column_of(head, "WHY") == column_of(line, "-"), "backends: no why is -");
	strbuf_fini(&sb);
}

static void
test_clients(void)
{
	static const struct clients_row rows[] = {
		{ "echo", "127.0.0.1", 12, 30 },
		{ "web", "2001:db8:1:2::/64", 3, 0 },
		{ "echo", "10.0.0.7", 0, 1234567 },
		{ "b\x01" "d", "::1/64", 1, 1 },
	};
	struct strbuf sb;

	strbuf_init(&sb, 1 << 16);
	is_int(report_clients(&sb, rows, 4), 0, "clients: rendered");
	ok(tidy(sb.s), "clients: aligned");
	is_str(sb.s,
	    "LISTENER  CLIENT             OPEN   RECENT\n"
	    "echo      127.0.0.1            12       30\n"
	    "web       2001:db8:1:2::/64     3        0\n"
	    "echo      10.0.0.7              0  1234567\n"
	    "b?d       ::1/64                1        1\n",
	    "clients: the table, exactly, rows in the order given");
	strbuf_fini(&sb);
	is_int(report_clients(&sb, rows, 0), 0, "clients: no rows");
	is_str(sb.s, "LISTENER  CLIENT  OPEN  RECENT\n", "clients: no rows, the header alone");
	strbuf_fini(&sb);
}

static void
test_workers(void)
{
	struct strbuf sb;

	strbuf_init(&sb, 1 << 16);
	is_int(report_workers(&sb, &view), 0, "workers: rendered");
	ok(tidy(sb.s), "workers: aligned");
	is_str(sb.s,
	    "SLOT   PID  GEN  STATE     CONNECTIONS  ACCEPTS\n"
	    "   0  4242    2  ready               3  1234560\n"
	    "   1  4243    1  draining            0       14\n", "workers: the table, exactly");
	strbuf_fini(&sb);
}

/* A strbuf that cannot hold the answer: -1, and what fitted. */
static void
test_limit(void)
{
	struct strbuf sb;

	strbuf_init(&sb, 100);
	is_int(report_stats_json(&sb, &view), -1, "json past the limit: -1");
	ok(sb.failed && sb.len <= 100, "  failed, within the limit");
	strbuf_fini(&sb);
	is_int(report_stats(&sb, &view), -1, "stats past the limit: -1");
	strbuf_fini(&sb);
	is_int(report_backends(&sb, &view), -1, "backends past the limit: -1");
	strbuf_fini(&sb);
	{
		struct clients_row rows[8];

		memset(rows, 0, sizeof(rows));
		for (size_t i = 0; i < 8; i++) {
			rows[i].listener = "a-listener";
			snprintf(rows[i].client, sizeof(rows[i].client), "192.0.2.%zu", i);
		}
		strbuf_init(&sb, 100);
		is_int(report_clients(&sb, rows, 8), -1, "clients past the limit: -1");
		strbuf_fini(&sb);
	}
}

static void
test_names(void)
{
	is_str(report_state_name(BACKEND_UP), "up", "state up");
	is_str(report_state_name(BACKEND_DRAIN), "drain", "state drain");
	is_str(report_state_name(BACKEND_MAINT), "maint", "state maint");
	is_str(report_state_name(BACKEND_DOWN), "down", "state down");
	is_str(reason_name(CONN_REFUSED), "refused", "the close reason refused");
	is_str(refuse_name(REFUSE_DENY), "deny", "the first refusal");
	is_str(refuse_name(REFUSE_LISTENER_FULL), "listener_full", "the last refusal");
	is_str(refuse_name(REFUSE_N), "?", "past the refusals: ?");
}

int
main(void)
{
	build_view();
	test_json_checker();
	test_info();
	test_stats();
	test_stats_empty();
	test_refusals();
	test_json();
	test_backends();
	test_clients();
	test_workers();
	test_limit();
	test_names();
	return done_testing();
}
