/*
 * reason.h: why a connection closed or was refused, and the word that
 * names each reason.
 * One list for the connection's summary line (conn.c), the statistics
 * (stats.c counts closes by reason), the control socket's tables
 * (report.c) and the metrics' reason label (prom.c).  Pure; includes
 * nothing of the project.
 */
#ifndef PREFORKD_REASON_H
#define PREFORKD_REASON_H

enum conn_reason {
	CONN_CLIENT_EOF,
	CONN_CLIENT_RESET,
	CONN_IDLE_TIMEOUT,
	CONN_DRAIN_DEADLINE,
	CONN_SHUTDOWN,
	CONN_ERROR,
	CONN_BACKEND_EOF,
	CONN_BACKEND_RESET,
	CONN_CONNECT_TIMEOUT,
	CONN_CONNECT_FAILED,
	CONN_NO_BACKEND,
	CONN_HALFCLOSE_TIMEOUT,
	CONN_BAD_PROXY_HEADER,
	CONN_PROXY_TIMEOUT,
	CONN_REFUSED,		/* the address a PROXY header carried was refused */
	CONN_NREASONS		/* how many; no connection closes with it */
};

/* The reason's word ("client_eof"); "?" for a number that is none. */
const char *reason_name(int why);

/* Why a connection was refused (acl.c), counted apart from the closes. */
enum refuse_reason {
	REFUSE_DENY,		/* a deny rule matched */
	REFUSE_NOT_ALLOWED,	/* allow rules set, none matched */
	REFUSE_UNTRUSTED_PROXY,	/* a sender outside accept_proxy_from */
	REFUSE_CLIENT_LIMIT,	/* max_conn_per_client */
	REFUSE_CLIENT_RATE,	/* conn_rate_per_client */
	REFUSE_LISTENER_FULL,	/* the listener's max_connections */
	REFUSE_N		/* how many; no connection is refused with it */
};

/* The refusal's word ("deny"); "?" for a number that is none. */
const char *refuse_name(int why);

#endif
