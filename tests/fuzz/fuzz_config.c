/*
 * fuzz_config.c: libFuzzer harness for the config loader (src/config.c and
 * src/confkey.c): the input is a config file's text, parsed through
 * config_parse_string(), the same inih handler config_load() uses once it
 * has read the file.
 *
 * Invariants: no crash, no sanitizer report, no leak (libFuzzer checks
 * after every input); a config or a list of errors, never both and never
 * neither; each error one line.
 *
 * Host names in listen and backend would be resolved: getaddrinfo() is
 * wrapped here to numeric addresses only, so that an input never waits on
 * DNS (an input that names a host gets the error a failed lookup gives).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*real)(const char *, const char *,
	    const struct addrinfo *, struct addrinfo **);
	struct addrinfo h;

	if (real == NULL && (real = dlsym(RTLD_NEXT, "getaddrinfo")) == NULL)
		abort();
	if (hints != NULL)
		h = *hints;
	else {
		memset(&h, 0, sizeof(h));
		h.ai_family = AF_UNSPEC;
	}
	h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_overrides ov;
	struct config_errors errs = { NULL, 0, NULL };
	struct config *c;
	char *text;
	size_t i;

	if (size > (1 << 20))		/* config_load's own limit */
		return 0;
	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';		/* a NUL ends the text, as in C */

	memset(&ov, 0, sizeof(ov));
	ov.log_level = -1;
	ov.mode = -1;
	c = config_parse_string("fuzz.conf", text, &ov, &errs);
	if ((c == NULL) == (errs.n == 0)) {
		fprintf(stderr, "fuzz_config: config %p with %zu errors\n",
		    (void *)c, errs.n);
		abort();
	}
	for (i = 0; i < errs.n; i++)
		if (errs.msg[i] == NULL || strchr(errs.msg[i], '\n') != NULL) {
			fprintf(stderr, "fuzz_config: error %zu is not one line\n", i);
			abort();
		}
	if (c != NULL)
		config_free(c);
	config_errors_fini(&errs);
	free(text);
	return 0;
}
