/*
 * reason.c: the words that name why a connection closed (reason.h).
 */
#include <stddef.h>

#include "reason.h"

static const char *const reasons[] = {
	[CONN_CLIENT_EOF] = "client_eof",
	[CONN_CLIENT_RESET] = "client_reset",
	[CONN_IDLE_TIMEOUT] = "idle_timeout",
	[CONN_DRAIN_DEADLINE] = "drain_deadline",
	[CONN_SHUTDOWN] = "shutdown",
	[CONN_ERROR] = "error",
	[CONN_BACKEND_EOF] = "backend_eof",
	[CONN_BACKEND_RESET] = "backend_reset",
	[CONN_CONNECT_TIMEOUT] = "connect_timeout",
	[CONN_CONNECT_FAILED] = "connect_failed",
	[CONN_NO_BACKEND] = "no_backend",
	[CONN_HALFCLOSE_TIMEOUT] = "halfclose_timeout",
	[CONN_BAD_PROXY_HEADER] = "bad_proxy_header",
	[CONN_PROXY_TIMEOUT] = "proxy_timeout",
};

_Static_assert(sizeof(reasons) / sizeof(reasons[0]) == CONN_NREASONS,
    "a word for every reason");

const char *
reason_name(int why)
{
	if (why < 0 || why >= CONN_NREASONS)
		return "?";
	return reasons[why];
}
