/*
 * keydump.c: print preforkd's configuration key table.
 *
 *   keydump
 *
 * One line per key of config_keys(), in the table's order, with five fields
 * separated by tabs: section ("daemon" or "listener"), key, type, default
 * and description.  A key without a default has an empty default field.
 * The documentation check (tests/integration/test_docs.py) reads it, so that
 * the man page and the sample configuration are proved against the table the
 * daemon parses with, not against a copy.  Exit status: 0, 1 error, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"

/* A field may hold no tab or newline, or the line would not split back. */
static int
keydump_field_ok(const char *s)
{
	return s == NULL || strpbrk(s, "\t\n") == NULL;
}

int
main(int argc, char *argv[])
{
	const struct config_key *k;
	size_t i, n;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: keydump\n");
		return 2;
	}
	k = config_keys(&n);
	for (i = 0; i < n; i++) {
		if (!keydump_field_ok(k[i].section) || !keydump_field_ok(k[i].name) ||
		    !keydump_field_ok(k[i].type) || !keydump_field_ok(k[i].def) ||
		    !keydump_field_ok(k[i].doc)) {
			fprintf(stderr, "keydump: key %s: a field holds a tab or a newline\n",
			    k[i].name);
			return 1;
		}
		printf("%s\t%s\t%s\t%s\t%s\n", k[i].section, k[i].name, k[i].type,
		    k[i].def != NULL ? k[i].def : "", k[i].doc);
	}
	if (fflush(stdout) == EOF || ferror(stdout)) {
		perror("keydump: stdout");
		return 1;
	}
	return 0;
}
