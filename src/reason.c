/*
 * reason.c: the words that name why a connection closed or was refused
 * (reason.h).
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
	[CONN_REFUSED] = "refused",
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

static const char *const refusals[] = {
	[REFUSE_DENY] = "deny",
	[REFUSE_NOT_ALLOWED] = "not_allowed",
	[REFUSE_UNTRUSTED_PROXY] = "untrusted_proxy",
	[REFUSE_CLIENT_LIMIT] = "client_limit",
	[REFUSE_CLIENT_RATE] = "client_rate",
	[REFUSE_LISTENER_FULL] = "listener_full",
};

_Static_assert(sizeof(refusals) / sizeof(refusals[0]) == REFUSE_N,
    "a word for every refusal");

const char *
refuse_name(int why)
{
	if (why < 0 || why >= REFUSE_N)
		return "?";
	return refusals[why];
}
