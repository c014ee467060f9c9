/*
 * test_log.c: unit tests for the rate limit of src/log.c: one line per
 * interval, the lines held back counted and handed over with the next one,
 * on a clock the test moves itself.
 */
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

int
main(void)
{
	test_rate();
	test_held();
	test_warnx_rate();
	return done_testing();
}
