/*
 * tap.h: a tiny Test Anything Protocol harness for the unit tests.
 *
 * Header-only: every function is static inline, so a test that uses only
 * some of them still builds with -Wall -Werror.  Results go to stdout as
 * TAP ("ok N - name", "not ok N - name", then "1..N" from done_testing());
 * the diagnostics of a failure go to stderr as "# ..." lines, which prove
 * shows.  A test file ends with `return done_testing();`: the exit status is
 * 0 when every test passed and 1 otherwise.
 *
 *	ok(cond, fmt, ...)		pass when cond is true
 *	is_int(got, want, fmt, ...)	signed integers (intmax_t) equal
 *	is_uint(got, want, fmt, ...)	unsigned integers (uintmax_t) equal
 *	is_str(got, want, fmt, ...)	strings equal (NULL equals only NULL)
 *	is_mem(got, want, len, fmt, ...) len bytes equal
 *	skip(n, fmt, ...)		record n skipped tests
 *	diag(fmt, ...)			a "# ..." line on stderr
 *	note(fmt, ...)			a "# ..." line on stdout
 *	bail_out(fmt, ...)		"Bail out!" and exit(255)
 */
#ifndef PREFORKD_TAP_H
#define PREFORKD_TAP_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_PRINTF(f, a)	__attribute__((format(printf, f, a)))

static int tap_count;		/* tests run so far */
static int tap_failed;		/* of which failed */

/* Print a test name, escaping what TAP would misread ('#', '\\', newlines). */
static inline void
tap_vname(const char *fmt, va_list ap)
{
	char name[512];
	const char *p;

	vsnprintf(name, sizeof(name), fmt, ap);
	if (name[0] == '\0')
		return;
	fputs(" - ", stdout);
	for (p = name; *p != '\0'; p++) {
		if (*p == '#' || *p == '\\')
			putchar('\\');
		putchar(*p == '\n' || *p == '\r' ? ' ' : *p);
	}
}

static inline void TAP_PRINTF(1, 2)
diag(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("# ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static inline void TAP_PRINTF(1, 2)
note(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Record one result; returns pass so that callers can add diagnostics. */
static inline int
tap_vresult(int pass, const char *file, int line, const char *fmt, va_list ap)
{
	va_list aq;

	tap_count++;
	if (!pass)
		tap_failed++;
	printf("%sok %d", pass ? "" : "not ", tap_count);
	va_copy(aq, ap);
	tap_vname(fmt, aq);
	va_end(aq);
	putchar('\n');
	fflush(stdout);
	if (!pass)
		diag("  Failed test at %s line %d.", file, line);
	return pass;
}

static inline int TAP_PRINTF(4, 5)
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

static inline int TAP_PRINTF(5, 6)
tap_is_int(intmax_t got, intmax_t want, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int pass = got == want;

	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag("         got: %jd", got);
		diag("    expected: %jd", want);
	}
	return pass;
}

static inline int TAP_PRINTF(5, 6)
tap_is_uint(uintmax_t got, uintmax_t want, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int pass = got == want;

	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag("         got: %ju (0x%jx)", got, got);
		diag("    expected: %ju (0x%jx)", want, want);
	}
	return pass;
}

static inline int TAP_PRINTF(5, 6)
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int pass;

	if (got == NULL || want == NULL)
		pass = got == want;
	else
		pass = strcmp(got, want) == 0;
	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		if (got != NULL)
			diag("         got: \"%s\"", got);
		else
			diag("         got: NULL");
		if (want != NULL)
			diag("    expected: \"%s\"", want);
		else
			diag("    expected: NULL");
	}
	return pass;
}

static inline int TAP_PRINTF(6, 7)
tap_is_mem(const void *got, const void *want, size_t len, const char *file,
    int line, const char *fmt, ...)
{
	va_list ap;
	const unsigned char *g = got, *w = want;
	size_t i = 0;
	int pass;

	if (got == NULL || want == NULL)
		pass = got == want;
	else
		pass = memcmp(got, want, len) == 0;
	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass && g != NULL && w != NULL) {
		while (i < len && g[i] == w[i])
			i++;
		diag("    first difference at byte %zu of %zu: got 0x%02x, expected 0x%02x",
		    i, len, g[i], w[i]);
	}
	return pass;
}

static inline void TAP_PRINTF(2, 3)
skip(int n, const char *fmt, ...)
{
	va_list ap;
	char why[256];

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	while (n-- > 0)
		printf("ok %d # skip %s\n", ++tap_count, why);
	fflush(stdout);
}

static inline void TAP_PRINTF(1, 2) __attribute__((noreturn))
bail_out(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(255);
}

/* Print the plan; the exit status for main(): 0 all passed, 1 otherwise. */
static inline int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed > 0)
		diag("Looks like you failed %d test%s of %d.", tap_failed,
		    tap_failed == 1 ? "" : "s", tap_count);
	fflush(stdout);
	return tap_failed > 0 ? 1 : 0;
}

#define ok(cond, ...) \
	tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) \
	tap_is_int((intmax_t)(got), (intmax_t)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_uint(got, want, ...) \
	tap_is_uint((uintmax_t)(got), (uintmax_t)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) \
	tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_mem(got, want, len, ...) \
	tap_is_mem((got), (want), (len), __FILE__, __LINE__, __VA_ARGS__)

#endif
