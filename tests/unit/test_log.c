/*
 * test_log.c: unit tests for src/log.c: the rate limit (one line per
 * interval, the lines held back counted and handed over with the next one,
 * on a clock the test moves itself); the JSON format (string escaping,
 * the shape of event and structured lines, lines cut short that stay one
 * object); structured lines in text, byte for byte.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

/* A flood of calls at times t0, t0 + step, ...: how many lines pass. */
static unsigned long
flood(struct log_rate *r, double t0, double step, unsigned long n,
    double interval, unsigned long *held_sum)
{
	unsigned long i, passed = 0, held;

	for (i = 0; i < n; i++) {
		held = 0;
		if (log_rate_ok(r, t0 + step * (double)i, interval, &held)) {
			passed++;
			*held_sum += held;
		}
	}
	return passed;
}

static void
test_rate(void)
{
	struct log_rate r;
	unsigned long held = 99, sum = 0, passed;

	memset(&r, 0, sizeof(r));
	ok(log_rate_ok(&r, 0.0, 1.0, &held), "the first line passes, at time 0 too");
	is_uint(held, 0, "nothing held back before it");
	ok(!log_rate_ok(&r, 0.5, 1.0, &held), "a second within the interval is held");
	ok(!log_rate_ok(&r, 0.999, 1.0, &held), "and a third");
	held = 99;
	ok(log_rate_ok(&r, 1.0, 1.0, &held), "one interval later a line passes");
	is_uint(held, 2, "with the two held back");
	held = 99;
	ok(log_rate_ok(&r, 5.0, 1.0, &held), "after a quiet spell the next passes");
	is_uint(held, 0, "the count started over");

	/*
	 * 10,000 calls over 9.8 s (steps of 1/1024 s, exact in binary):
	 * 10 lines, and every call accounted for.
	 */
	memset(&r, 0, sizeof(r));
	passed = flood(&r, 1000.0, 1.0 / 1024, 10000, 1.0, &sum);
	is_uint(passed, 10, "a flood over 10 intervals: 10 lines");
	held = 0;
	ok(log_rate_ok(&r, 1011.0, 1.0, &held), "a line after the flood");
	is_uint(passed + 1 + sum + held, 10000 + 1,
	    "lines written plus lines held back: every call");

	/* Other intervals. */
	memset(&r, 0, sizeof(r));
	sum = 0;
	is_uint(flood(&r, 0.0, 1.0 / 128, 1000, 2.5, &sum), 4,
	    "interval 2.5 over 7.8 s: 4 lines");
	memset(&r, 0, sizeof(r));
	sum = 0;
	is_uint(flood(&r, 0.0, 1.0, 20, 0.0, &sum), 20, "interval 0: every line");
	is_uint(sum, 0, "interval 0: none held");
}

static void
test_held(void)
{
	char buf[LOG_HELD_MAX], small[8];

	is_str(log_held(0, buf, sizeof(buf)), "", "none held: no tail");
	is_str(log_held(1, buf, sizeof(buf)), " (1 more since the last such line)",
	    "one held");
	is_str(log_held(ULONG_MAX, buf, sizeof(buf)),
	    " (18446744073709551615 more since the last such line)",
	    "LOG_HELD_MAX holds the largest count");
	is_str(log_held(12345, small, sizeof(small)), " (12345", "cut to a short buffer");
}

/* The lines log_warnx_rate() writes to a file target, each ending as expected. */
static void
test_warnx_rate(void)
{
	static const char *want[] = {
		"master: x: no worker took one\n",
		"master: x: no worker took one (2 more since the last such line)\n",
		"master: y (1 more since the last such line)\n",
	};
	char path[] = "/tmp/test_log.XXXXXX", line[1200];
	struct log_rate r;
	size_t n = 0, len;
	FILE *f;
	int fd;

	memset(&r, 0, sizeof(r));
	if ((fd = mkstemp(path)) == -1 || log_open(path) == -1) {
		ok(0, "a log file in /tmp");
		return;
	}
	close(fd);
	log_set_tag("master");
	log_warnx_rate(&r, 10.0, "%s: no worker took one", "x");
	log_warnx_rate(&r, 10.5, "%s: no worker took one", "x");
	log_warnx_rate(&r, 10.9, "%s: no worker took one", "x");
	log_warnx_rate(&r, 11.0, "%s: no worker took one", "x");
	log_warnx_rate(&r, 11.5, "never written");
	log_warnx_rate(&r, 12.0, "y");
	log_close();
	if ((f = fopen(path, "r")) == NULL) {
		ok(0, "reading the log file back");
		unlink(path);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		len = strlen(line);
		if (n < sizeof(want) / sizeof(want[0]) && len >= strlen(want[n]) &&
		    strstr(line, "[warning] ") != NULL)
			is_str(line + len - strlen(want[n]), want[n], "rate-limited line %zu", n);
		else
			ok(0, "unexpected line %s", line);
		n++;
	}
	is_uint(n, 3, "three lines of six calls");
	fclose(f);
	unlink(path);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static const struct {
	const char	*in;
	const char	*want;		/* the JSON string, quotes included */
	const char	*name;
} json_cases[] = {
	{ "", "\"\"", "empty" },
	{ "plain text 123", "\"plain text 123\"", "plain ASCII as is" },
	{ "say \"hi\"", "\"say \\\"hi\\\"\"", "quotes escaped" },
	{ "a\\b", "\"a\\\\b\"", "backslash escaped" },
	{ "/x/", "\"/x/\"", "slash as is" },
	{ "\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"", "named control characters" },
	{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"", "other control characters and DEL as \\u00XX" },
	{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf",
	  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf\"",
	  "valid UTF-8 of 2, 3 and 4 bytes as is, U+10FFFF included" },
	{ "\x80", "\"\\ufffd\"", "a stray continuation byte" },
	{ "a\xff", "\"a\\ufffd\"", "0xff" },
	{ "\xc0\xaf", "\"\\ufffd\\ufffd\"", "an overlong '/' (2 bytes): each byte replaced" },
	{ "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"", "an overlong '/' (3 bytes)" },
	{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", "a UTF-16 surrogate" },
	{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "past U+10FFFF" },
	{ "\xf5\x80", "\"\\ufffd\\ufffd\"", "0xf5 starts nothing" },
	{ "\xe2\x82", "\"\\ufffd\\ufffd\"", "a sequence cut short by the end" },
	{ "\xe2\x82z\xc3", "\"\\ufffd\\ufffdz\\ufffd\"", "cut short by another character" },
};

static void
test_json_str(void)
{
	char buf[128];
	size_t n;

	for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
		n = log_json_str(buf, sizeof(buf), json_cases[i].in);
		is_str(buf, json_cases[i].want, "json string: %s", json_cases[i].name);
		is_uint(n, strlen(json_cases[i].want), "json string: %s: length", json_cases[i].name);
	}

	/* Cut short: whole characters only, still between quotes. */
	n = log_json_str(buf, 6, "abcdef");
	is_str(buf, "\"abc\"", "cut short: 3 characters fit in 6 bytes");
	is_uint(n, 5, "cut short: the length written");
	log_json_str(buf, 6, "ab\"cd");
	is_str(buf, "\"ab\"", "cut short before an escape that does not fit");
	log_json_str(buf, 9, "a\x01");
	is_str(buf, "\"a\"", "a \\u0001 that does not fit is left out whole");
	log_json_str(buf, 5, "\xc3\xa9x");
	is_str(buf, "\"\xc3\xa9\"", "a 2-byte character that fits");
	log_json_str(buf, 4, "\xc3\xa9x");
	is_str(buf, "\"\"", "a 2-byte character that does not fit is not split");
	n = log_json_str(buf, 3, "x");
	is_str(buf, "\"\"", "3 bytes: the quotes");
	strcpy(buf, "junk");
	n = log_json_str(buf, 2, "x");
	is_uint(n, 0, "2 bytes: nothing");
	is_str(buf, "", "2 bytes: an empty string");
}

static void
test_parse(void)
{
	is_int(log_format_parse("text"), LOGF_TEXT, "log_format_parse text");
	is_int(log_format_parse("json"), LOGF_JSON, "log_format_parse json");
	is_int(log_format_parse("JSON"), -1, "log_format_parse is case-sensitive");
	is_int(log_format_parse(""), -1, "log_format_parse empty");
}

/* What the logger writes to a file target: start sends it there. */
static char capture_path[] = "/tmp/test_log.XXXXXX";

static int
capture_start(void)
{
	int fd;

	strcpy(capture_path, "/tmp/test_log.XXXXXX");
	if ((fd = mkstemp(capture_path)) == -1 || log_open(capture_path) == -1)
		return -1;
	close(fd);
	return 0;
}

/* Back to stderr; the file's bytes into out (size bytes, NUL ended). */
static size_t
capture_end(char *out, size_t size)
{
	size_t n = 0;
	FILE *f;

	log_close();
	out[0] = '\0';
	if ((f = fopen(capture_path, "r")) != NULL) {
		n = fread(out, 1, size - 1, f);
		out[n] = '\0';
		fclose(f);
	}
	unlink(capture_path);
	return n;
}

/*
 * The opening of a JSON line: {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ","level":
 * level,"proc": proc,"pid":<ours>.  Returns what follows, or NULL.
 */
static const char *
json_head(const char *line, const char *level, const char *proc)
{
	static const char stamp[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	char want[256];
	size_t n;

	if (strncmp(line, "{\"ts\":\"", 7) != 0)
		return NULL;
	line += 7;
	for (size_t i = 0; i < sizeof(stamp) - 1; i++)
		if (stamp[i] == 'd' ? !isdigit((unsigned char)line[i]) : line[i] != stamp[i])
			return NULL;
	line += sizeof(stamp) - 1;
	n = snprintf(want, sizeof(want), "\",\"level\":\"%s\",\"proc\":%s,\"pid\":%ld",
	    level, proc, (long)getpid());
	return strncmp(line, want, n) == 0 ? line + n : NULL;
}

static void
test_json_lines(void)
{
	char out[16384], big[3000];
	const char *rest, *nl;
	struct log_field f[] = {
		LOGKV_STR("listener", "l\"1"),
		LOGKV_STR("client", "127.0.0.1:5"),
		LOGKV_NONE("backend"),
		LOGKV_SECS("connect", 0.25),
		LOGKV_UINT("in", 5),
		LOGKV_UINT("out", ULLONG_MAX),
		LOGKV_SECS("duration", 1.5),
		LOGKV_STR("reason", "client_eof"),
		LOGKV_STR("none", NULL),
	};

	if (capture_start() == -1) {
		ok(0, "a log file in /tmp");
		return;
	}
	log_set_format(LOGF_JSON);
	log_set_level(LOGL_INFO);
	log_set_tag("master");
	log_notice("say \"hi\" \\ to\tall\n%s", "\x01\xff");
	errno = ENOENT;
	log_warn("open %s", "x");
	is_int(errno, ENOENT, "errno kept");
	log_set_worker(2, 3);
	log_kv(LOGL_INFO, "close", f, sizeof(f) / sizeof(f[0]));
	log_set_level(LOGL_NOTICE);
	log_kv(LOGL_INFO, "close", f, 1);
	log_info("below the level");
	capture_end(out, sizeof(out));

	rest = json_head(out, "notice", "\"master\"");
	ok(rest != NULL, "event line: ts, level, proc, pid");
	if (rest == NULL || (nl = strchr(rest, '\n')) == NULL) {
		diag("got: %s", out);
		return;
	}
	is_mem(rest, ",\"msg\":\"say \\\"hi\\\" \\\\ to\\tall\\n\\u0001\\ufffd\"}\n",
	    (size_t)(nl + 1 - rest), "event line: msg escaped, the object closed");
	rest = json_head(nl + 1, "warning", "\"master\"");
	ok(rest != NULL, "log_warn line: head");
	if (rest == NULL || (nl = strchr(rest, '\n')) == NULL)
		return;
	is_mem(rest, ",\"msg\":\"open x: No such file or directory\"}\n",
	    (size_t)(nl + 1 - rest), "log_warn line: strerror in msg");
	rest = json_head(nl + 1, "info", "\"worker\",\"worker\":2,\"gen\":3");
	ok(rest != NULL, "structured line: a worker's head");
	if (rest == NULL)
		return;
	is_str(rest, ",\"event\":\"close\",\"listener\":\"l\\\"1\",\"client\":\"127.0.0.1:5\","
	    "\"backend\":null,\"connect\":0.250,\"in\":5,\"out\":18446744073709551615,"
	    "\"duration\":1.500,\"reason\":\"client_eof\",\"none\":null}\n",
	    "structured line: typed fields, and nothing below the level after it");

	/* A message too long escaped: cut on an escape's boundary, one object. */
	memset(big, '\x01', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	if (capture_start() == -1)
		return;
	log_set_tag("master");
	log_notice("%s", big);
	capture_end(out, sizeof(out));
	rest = json_head(out, "notice", "\"master\"");
	ok(rest != NULL && strncmp(rest, ",\"msg\":\"", 8) == 0, "long msg: head");
	if (rest != NULL) {
		size_t len = strlen(out), body = strlen(rest + 8) - 3;
		int whole = 1;

		ok(len <= 4096, "long msg: one line of %zu bytes, 4096 at most", len);
		ok(len > 3000, "long msg: the line is filled (%zu bytes)", len);
		is_str(out + len - 3, "\"}\n", "long msg: the string and the object closed");
		for (size_t i = 0; i < body; i += 6)
			whole &= strncmp(rest + 8 + i, "\\u0001", 6) == 0;
		ok(whole && body % 6 == 0, "long msg: whole escapes only");
	}

	/* A field too long: left out whole, with those after it. */
	memset(big, '"', sizeof(big) - 1);
	f[0] = LOGKV_STR("listener", "a");
	f[1] = LOGKV_STR("client", big);
	if (capture_start() == -1)
		return;
	log_set_worker(0, 1);
	log_kv(LOGL_NOTICE, "close", f, 3);
	capture_end(out, sizeof(out));
	rest = json_head(out, "notice", "\"worker\",\"worker\":0,\"gen\":1");
	is_str(rest != NULL ? rest : out, ",\"event\":\"close\",\"listener\":\"a\"}\n",
	    "a field that does not fit is left out, the object closed");
	log_set_format(LOGF_TEXT);
}

/* The structured line in text: the summary line's bytes. */
static void
test_text_kv(void)
{
	char out[4096];
	struct log_field f[] = {
		LOGKV_STR("listener", "echo"),
		LOGKV_STR("client", "[::1]:4000"),
		LOGKV_NONE("backend"),
		LOGKV_STR("connect", NULL),
		LOGKV_UINT("in", 0),
		LOGKV_UINT("out", 123456789012ULL),
		LOGKV_SECS("duration", 0.0004),
		LOGKV_STR("reason", "idle_timeout"),
	};
	static const char want[] = "[info] worker 1 gen 7: close listener=echo "
	    "client=[::1]:4000 backend=- connect=- in=0 out=123456789012 "
	    "duration=0.000s reason=idle_timeout\n";
	size_t n;

	if (capture_start() == -1) {
		ok(0, "a log file in /tmp");
		return;
	}
	log_set_format(LOGF_TEXT);
	log_set_level(LOGL_INFO);
	log_set_worker(1, 7);
	log_kv(LOGL_INFO, "close", f, sizeof(f) / sizeof(f[0]));
	n = capture_end(out, sizeof(out));
	/* "YYYY-MM-DD HH:MM:SS.mmm " first, in local time */
	ok(n == 24 + strlen(want) && out[10] == ' ' && out[19] == '.',
	    "text: one line after the timestamp");
	is_str(n > 24 ? out + 24 : out, want, "text: the summary line's bytes");
	log_set_level(LOGL_NOTICE);
}

int
main(void)
{
	test_rate();
	test_held();
	test_warnx_rate();
	test_json_str();
	test_parse();
	test_json_lines();
	test_text_kv();
	return done_testing();
}
