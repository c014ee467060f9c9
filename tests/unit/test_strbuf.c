/*
 * test_strbuf.c: unit tests for src/strbuf.c, the growing string with a
 * limit.
 */
#include <string.h>

#include "strbuf.h"
#include "tap.h"

static void
test_grows(void)
{
	struct strbuf sb;
	size_t i;

	strbuf_init(&sb, 1 << 20);
	for (i = 0; i < 1000; i++)
		strbuf_printf(&sb, "%04zu,", i);
	is_int(sb.len, 5000, "1000 appends of 5 bytes: 5000 bytes");
	ok(sb.failed == 0, "nothing dropped");
	ok(memcmp(sb.s, "0000,0001,", 10) == 0 && memcmp(sb.s + 4995, "0999,", 5) == 0,
	    "in order, first and last");
	is_int(sb.s[sb.len], 0, "NUL-terminated");
	strbuf_fini(&sb);
	ok(sb.s == NULL && sb.len == 0 && sb.max == (1 << 20), "fini: empty again, same limit");
}

static void
test_limit(void)
{
	struct strbuf sb;

	strbuf_init(&sb, 8);
	is_int(strbuf_append(&sb, "abcdefgh", 8), 0, "exactly the limit fits");
	is_int(strbuf_append(&sb, "i", 1), -1, "one byte past it does not");
	ok(sb.failed, "failed is set");
	is_int(sb.len, 8, "what fitted is kept");
	is_int(strbuf_printf(&sb, "%s", ""), -1, "after a failure every append fails");
	ok(strcmp(sb.s, "abcdefgh") == 0, "the string is intact");
	strbuf_fini(&sb);

	strbuf_init(&sb, 4);
	is_int(strbuf_printf(&sb, "%d", 12345), -1, "a formatted string past the limit");
	ok(sb.len == 0 && sb.failed, "nothing of it kept");
	strbuf_fini(&sb);
}

static void
test_empty(void)
{
	struct strbuf sb;

	strbuf_init(&sb, 16);
	is_int(strbuf_append(&sb, "", 0), 0, "an empty append");
	ok(sb.s != NULL && sb.s[0] == '\0' && sb.len == 0, "gives an empty string");
	strbuf_fini(&sb);
}

int
main(void)
{
	test_grows();
	test_limit();
	test_empty();
	return done_testing();
}
