/*
 * relay.h: proxy mode, which relays a connection to a backend and back.
 * Owns a connection's backend side: the choice of backend, connecting and
 * retrying (relay.c), and the bytes, buffers or pipes, between the two
 * sides (pump.c, private to proxy mode: pump.h).  The
 * connection itself, its timers and its close belong to conn.c, which
 * reaches this file only through relay_ops; the backends' state is
 * upstream.c's.  May not touch the worker or the listen sockets.
 */
#ifndef PREFORKD_RELAY_H
#define PREFORKD_RELAY_H

#include "conn.h"

/*
 * Proxy mode's operations, for a listener with mode = proxy.  start
 * connects the connection to a backend of its listener and relays both
 * ways.  The PROXY header it is given (accept_proxy) is passed on with
 * send_proxy as it came, its source and destination, or UNKNOWN / LOCAL
 * as it did; without one, the header names the client's address and the
 * one it connected to.  free frees the backend side, its buffers and its
 * timer; summary gives the fields backend (its address) and connect (the
 * seconds connecting took), each none before there is one.
 */
extern const struct mode_ops relay_ops;

#endif
